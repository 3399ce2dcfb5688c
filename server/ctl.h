/* ctl.h - local administration over a Unix socket: the server side (a thread that answers
 * CTL_LIST / CTL_INFO / CTL_KICK / CTL_BROADCAST / CTL_RELEASE with the same rd_server_* calls the window
 * uses) and the `roomdrop-server ctl ...` command.
 *
 * The socket is created with mode 0600 and every connection's peer credentials are checked
 * (SO_PEERCRED): only the server's own user (or root) is served.
 */
#ifndef ROOMDROP_CTL_H
#define ROOMDROP_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "rd_server.h"

/* The server's name and version, as HELLO_OK and CTL_SERVER_INFO give it. */
#define CTL_SOFTWARE "roomdrop-server/" RD_VERSION

struct ctl_server;
struct state; /* state.h: nickname owners, for CTL_RELEASE (NULL: --open-nicks) */

/* Default socket path for a server listening on port: $XDG_RUNTIME_DIR/roomdrop-PORT.sock
 * if XDG_RUNTIME_DIR is set, else /tmp/roomdrop-UID-PORT.sock. */
void ctl_default_path(uint16_t port, char *out, size_t cap);

/* Bind the socket (replacing a stale one; RD_ERR_ADDR_IN_USE if a live server answers on
 * it) and start the "rd-ctl" thread. listen_text is the listening address as text
 * ("127.0.0.1:7878", "[::1]:7878"; copied) and started_mono_ms the rd_now_mono_ms() at which
 * the server started listening: CTL_SERVER_INFO reports them. */
struct cluster;
/* cl (NULL when alone): `ctl list` adds the clients of the cluster's other servers. */
int ctl_server_start(struct rd_server *s, struct cluster *cl, struct state *st, int open_nicks,
		     const char *path, const char *listen_text, uint64_t started_mono_ms,
		     struct ctl_server **out);
/* Stop the thread, remove the socket file. */
void ctl_server_stop(struct ctl_server *c);

/* `roomdrop-server ctl ARGS...`; returns the process exit code. */
int ctl_main(int argc, char **argv);

#endif
