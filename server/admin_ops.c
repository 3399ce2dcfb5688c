/* admin_ops.c - the window's admission and ownership actions (see admin_ops.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_ops.h"
#include "rd_err.h"
#include "rd_hash.h"
#include "rd_names.h"
#include "rd_net.h"
#include "state.h"

#define INVITE_VALID_MS 86400000ull /* as `ctl invite` without --valid */

static void say(struct admin_ops_ctx *x, const char *level, char *msg, size_t cap, const char *fmt,
		...) __attribute__((format(printf, 5, 6)));
/* The sentence for the administrator into msg; logged (from the window) too. */
static void say(struct admin_ops_ctx *x, const char *level, char *msg, size_t cap, const char *fmt,
		...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, cap, fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "window: %s", msg);
	if (x->log)
		x->log(level, line);
}

static void op_admission(void *user, const struct rd_client_info *ci, char *out, size_t cap)
{
	struct admin_ops_ctx *x = user;

	if (!ci->nick[0])
		snprintf(out, cap, "not registered yet");
	else if (!strcmp(x->mode, "password"))
		snprintf(out, cap, "admitted: password");
	else if (x->keys)
		snprintf(out, cap, "admitted: key");
	else
		snprintf(out, cap, "open server%s", ci->fingerprint[0] ? "" : ", no key");
}

static size_t op_refused(void *user, struct admin_ui_refused *out, size_t max)
{
	struct admin_ops_ctx *x = user;
	struct refused_entry v[REFUSED_MAX];
	size_t n = refused_list(x->refused, v, max < REFUSED_MAX ? max : REFUSED_MAX);

	for (size_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].last_ms = v[i].last_ms;
		out[i].count = v[i].count;
		if (v[i].has_fp)
			rd_tls_fp_format(v[i].fp, out[i].fingerprint);
		snprintf(out[i].ip, sizeof(out[i].ip), "%s", v[i].ip);
		snprintf(out[i].nick, sizeof(out[i].nick), "%s", v[i].nick);
	}
	return n;
}

static size_t op_operators(void *user, struct admin_ui_operator *out, size_t max)
{
	struct admin_ops_ctx *x = user;
	struct state_op *v = NULL;
	size_t n = 0, k;

	if (!x->state || state_op_list(x->state, &v, &n) != 0)
		return 0;
	for (k = 0; k < n && k < max; k++) {
		snprintf(out[k].room, sizeof(out[k].room), "%.*s", RD_ROOM_MAX, v[k].room);
		rd_tls_fp_format(v[k].fp, out[k].fingerprint);
	}
	free(v);
	return k;
}

/* Disconnect the connected clients that show the key text (its admission was revoked). */
static unsigned kick_key(struct admin_ops_ctx *x, const char *text)
{
	struct rd_client_info *v = NULL;
	size_t n = 0;
	unsigned kicked = 0;

	if (rd_server_clients(x->srv, &v, &n) != 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (v[i].nick[0] && !strcmp(v[i].fingerprint, text) &&
		    rd_server_kick(x->srv, v[i].nick, "the administrator revoked your key") == 0)
			kicked++;
	free(v);
	return kicked;
}

static int op_admit(void *user, const char *fingerprint, int admit, char *msg, size_t cap)
{
	struct admin_ops_ctx *x = user;
	uint8_t fp[RD_TLS_FP_LEN];
	char text[RD_TLS_FP_TEXT_LEN];
	int rc;

	if (!x->keys || !x->state) {
		snprintf(msg, cap,
			 "this server does not admit by key (it runs with --admission "
			 "%s, not allowlist or invite)",
			 x->mode);
		return -1;
	}
	if (rd_tls_fp_parse(fingerprint, fp) != 0) {
		snprintf(msg, cap, "'%s' is not a key fingerprint", fingerprint);
		return -1;
	}
	rd_tls_fp_format(fp, text);
	rc = state_key_set(x->state, fp, admit, rd_now_wall_ms());
	if (admit && (rc == 0 || rc == RD_ERR_EXISTS)) {
		refused_forget(x->refused, fp);
		say(x, "info", msg, cap, "admitted the key %s%s", text,
		    rc == RD_ERR_EXISTS ? " (it was already)" : "");
		return 0;
	}
	if (!admit && rc == 0) {
		unsigned kicked = kick_key(x, text);
		say(x, "info", msg, cap, "revoked the key %s (%u connection%s closed)", text,
		    kicked, kicked == 1 ? "" : "s");
		return 0;
	}
	if (rc == RD_ERR_NOT_FOUND)
		snprintf(msg, cap, "the key %s is not admitted", text);
	else
		say(x, "error", msg, cap, "could not %s the key %s: the state database failed",
		    admit ? "admit" : "revoke", text);
	return -1;
}

static int op_release(void *user, const char *nick, char *msg, size_t cap)
{
	struct admin_ops_ctx *x = user;
	int rc;

	if (!x->state || x->open_nicks) {
		snprintf(msg, cap, "this server runs with --open-nicks: nicknames have no owners");
		return -1;
	}
	if (rd_nick_check(nick, strlen(nick)) != 0) {
		snprintf(msg, cap, "'%s' is not a nickname", nick);
		return -1;
	}
	rc = state_nick_release(x->state, nick);
	if (rc == 0) {
		say(x, "info", msg, cap,
		    "released the nickname %s: the next key to register it "
		    "owns it",
		    nick);
		return 0;
	}
	if (rc == RD_ERR_NOT_FOUND)
		snprintf(msg, cap, "no key owns the nickname %s", nick);
	else
		say(x, "error", msg, cap, "could not release %s: the state database failed", nick);
	return -1;
}

static int op_invite(void *user, const char *host, char *link, size_t lcap, char *msg, size_t cap)
{
	struct admin_ops_ctx *x = user;
	const char *colon = strrchr(x->listen, ':');
	uint8_t secret[RD_INVITE_SECRET];
	char id[STATE_INVITE_ID_BUF], hex[2 * RD_INVITE_SECRET + 1], lhost[128], when[32];
	uint64_t now = rd_now_wall_ms();
	time_t t = (time_t)((now + INVITE_VALID_MS) / 1000);
	struct tm tm;

	link[0] = '\0';
	if (!x->keys || !x->state) {
		snprintf(msg, cap,
			 "invitations admit keys: run the server with --admission invite "
			 "(or allowlist)");
		return -1;
	}
	if (!x->fingerprint[0] || !colon) {
		snprintf(msg, cap, "invitations need a server with TLS");
		return -1;
	}
	snprintf(lhost, sizeof(lhost), "%.*s", (int)(colon - x->listen), x->listen);
	if (!host || !host[0]) {
		if (!strcmp(lhost, "0.0.0.0") || !strcmp(lhost, "[::]")) {
			snprintf(msg, cap,
				 "the server listens on every address (%s): say which one "
				 "the invited should use",
				 x->listen);
			return -1;
		}
		host = lhost;
	}
	if (state_invite_new(x->state, 1, now + INVITE_VALID_MS, now, secret, id) != 0) {
		say(x, "error", msg, cap, "no invitation could be made (random bytes or database)");
		return -1;
	}
	rd_hex(secret, RD_INVITE_SECRET, hex);
	snprintf(link, lcap, "roomdrop://%s%s%s:%s/invite/%s?fp=%s",
		 strchr(host, ':') && host[0] != '[' ? "[" : "", host,
		 strchr(host, ':') && host[0] != '[' ? "]" : "", colon + 1, hex, x->fingerprint);
	explicit_bzero(hex, sizeof(hex));
	explicit_bzero(secret, sizeof(secret));
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
	/* (the log names the invitation, never its secret) */
	say(x, "info", msg, cap,
	    "made invitation %s, good for 1 use until %s (revoke: "
	    "roomdrop-server ctl uninvite %s)",
	    id, when, id);
	return 0;
}

void admin_ops_fill(struct admin_ops_ctx *ctx, struct admin_ui_ops *ops)
{
	memset(ops, 0, sizeof(*ops));
	ops->user = ctx;
	ops->admission = op_admission;
	ops->refused = op_refused;
	ops->operators = op_operators;
	ops->admit = op_admit;
	ops->release = op_release;
	ops->invite = op_invite;
}
