/* admin_ops.h - what the administrator's window does about admission and ownership (issue
 * 12 point 6): the program's side of admin_ui_ops (admin_ui.h), on the state database,
 * the list of refused keys and the running server. Every action is logged through
 * ctx->log, and the window logs it too.
 */
#ifndef ROOMDROP_ADMIN_OPS_H
#define ROOMDROP_ADMIN_OPS_H

#include "admin_ui.h"
#include "rd_server.h"
#include "refused.h"

struct state;

struct admin_ops_ctx {
	struct rd_server *srv;
	struct state *state;     /* NULL: no owners, no admitted keys (actions refused) */
	struct refused *refused; /* keys lately refused admission */
	int open_nicks;          /* --open-nicks: no owners to release */
	int keys;                /* admission allowlist or invite: admitted keys matter */
	const char *mode;        /* "open", "password", "allowlist", "invite" */
	const char *listen;      /* "127.0.0.1:7878" (for invitation links) */
	const char *fingerprint; /* the server's key, "" without TLS */
	void (*log)(const char *level, const char *line);
};

/* Fill ops for ctx (which must outlive the window). */
void admin_ops_fill(struct admin_ops_ctx *ctx, struct admin_ui_ops *ops);

#endif
