/* direct.h - the direct link of one file offer to one user (PROTOCOL.md section 14), for
 * both sides of it in the command-line client (offer.c).
 *
 *   d = direct_new(offer_id)            before anything is sent: the server's P2P_INTRO
 *                                       and P2P_FAILED for the offer go to direct_on_msg
 *   direct_start(s, d, chooser, why)    listen, P2P_LISTEN, wait for the introduction,
 *                                       race (rd_peer, 2 s), serving the server meanwhile;
 *                                       on failure the server was told (P2P_FAILED)
 *   direct_send_msg / direct_flush      the offerer's frames over the link
 *   direct_recv                         the recipient's frames from the link
 *   direct_free(d)
 *
 * Every wait here also reads the server connection (rd_conn_poll), so heartbeats and the
 * offer's events keep flowing; the callbacks it runs may call direct_on_msg.
 *
 * For tests, ROOMDROP_TEST_P2P in the environment changes what a client reports:
 * "loopback" listens on 127.0.0.1 only and reports no interface address; "unreachable"
 * reports a closed port and no address, and dials none of the peer's addresses, so no
 * direct link can be made with it (the relay must take over); "cut" is "loopback" on a
 * recipient that drops the link after 1 MiB received (a link broken mid-transfer).
 */
#ifndef RD_CLIENT_DIRECT_H
#define RD_CLIENT_DIRECT_H

#include <stddef.h>
#include <stdint.h>

#include "rd_frame.h"
#include "rd_msg.h"
#include "session.h"

#define DIRECT_INTRO_WAIT_MS 5000 /* from P2P_LISTEN to P2P_INTRO or P2P_FAILED */

struct direct;

/* NULL when out of memory. */
struct direct *direct_new(uint32_t offer_id);
void direct_free(struct direct *d);

/* A server message for this side: P2P_INTRO or P2P_FAILED of d's offer (others ignored). */
void direct_on_msg(struct direct *d, const struct rd_msg *m);

/* 0: the link is up. Else why (NUL-terminated) says why there is none and the server
 * knows (this side sent P2P_FAILED, or the other side did): RD_ERR_TIMEOUT (no link
 * verified in time), RD_ERR_REMOTE (the other side or the server said no),
 * RD_ERR_STATE (no TLS client key on the server connection), RD_ERR_CANCELLED
 * (Ctrl-C), RD_ERR_CLOSED (the server went away), others from the library. */
int direct_start(struct cli_session *s, struct direct *d, int chooser, char *why, size_t cap);

/* Tell the server this side makes no direct link for the offer (P2P_FAILED, forwarded to
 * the other side). 0 or the request's error (a refused one is not fatal to the caller). */
int direct_refuse(struct cli_session *s, uint32_t offer_id, const char *reason);

/* Queue m on the link and write until little is queued. 0, RD_ERR_CLOSED (the link
 * broke), RD_ERR_CANCELLED, or the server connection's error. */
int direct_send_msg(struct cli_session *s, struct direct *d, const struct rd_msg *m);
/* Write everything queued. Same returns. */
int direct_flush(struct cli_session *s, struct direct *d);

/* The next frame from the link within timeout_ms: 0 (f valid until the next call on d),
 * RD_ERR_TIMEOUT, RD_ERR_CLOSED, RD_ERR_CANCELLED, or the server connection's error. */
int direct_recv(struct cli_session *s, struct direct *d, int timeout_ms, struct rd_frame *f);

/* 1 when the link failed after it was up (the errors above that came from the link, not
 * from the server connection or Ctrl-C). */
int direct_broken(const struct direct *d);

#endif
