/* rd_client.c - the client side of the room core (see rd_client.h).
 *
 * Design: a struct rd_conn is driven by one caller thread at a time and starts no thread.
 * Every frame comes out of one rd_frame_reader fed from the socket by next_frame(), which
 * waits with poll() against an absolute deadline on the monotonic clock, so every wait is
 * bounded by the timeout the caller gave (request_timeout_ms for requests). Frames that are
 * not the awaited reply go through dispatch(): PING is answered with PONG at once, ERROR
 * frames keep their text for rd_conn_last_error(), core types are decoded and passed to
 * on_msg, application types to on_app_frame. A callback may send on the connection; it
 * may also make a request (the frame it was given is then no longer valid, which the
 * contract already says).
 *
 * Bytes go through one rd_link (rd_link.h): TLS 1.3 by default, with the server checked
 * against a pinned fingerprint, a CA, or the known_servers file (trust on first use), and
 * the client's own long-term key presented; plaintext when the options say so.
 *
 * A peer that goes away (EOF, ECONNRESET, EPIPE) is RD_ERR_CLOSED from then on, after the
 * frames that arrived before it have been dispatched; no send raises SIGPIPE.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "rd_buf.h"
#include "rd_client.h"
#include "rd_err.h"
#include "rd_frame.h"
#include "rd_link.h"
#include "rd_msg.h"
#include "rd_net.h"
#include "rd_proto.h"

#ifndef RD_VERSION
#define RD_VERSION "0"
#endif

#define RD_CONN_DEFAULT_CONNECT_MS 5000
#define RD_CONN_DEFAULT_REQUEST_MS 10000
#define RD_CONN_MAX_REDIRECTS 3
#define RD_CONN_ERRTEXT_MAX 1024
#define RD_CONN_READ_CHUNK 65536
#define RD_CONN_BYE_TIMEOUT_MS 1000

struct rd_conn {
	struct rd_link *link; /* NULL once closed */
	int eof;              /* the peer closed (or reset): no more bytes will come */
	int broken;           /* the reader failed: 0 or the RD_ERR_* it returned */
	uint32_t next_id;
	struct rd_conn_options opt;
	char software[RD_SOFTWARE_MAX + 1];
	struct rd_conn_callbacks cb;
	struct rd_buf out; /* frame being sent */
	struct rd_msg_hello_ok info;
	char last_error[RD_CONN_ERRTEXT_MAX];
	uint16_t last_async_code; /* code of the last ERROR with request id 0 */
	int shutdown;             /* SHUTDOWN received */
	struct rd_conn_tls_report report;
	char shutdown_reason[RD_REASON_MAX + 1];
	int vouched; /* after a REDIRECT that named a key: the next server must present it */
	uint8_t vouched_fp[RD_TLS_FP_LEN];
};

void rd_conn_options_defaults(struct rd_conn_options *o)
{
	memset(o, 0, sizeof(*o));
	o->connect_timeout_ms = RD_CONN_DEFAULT_CONNECT_MS;
	o->request_timeout_ms = RD_CONN_DEFAULT_REQUEST_MS;
	o->max_payload = RD_MAX_PAYLOAD_DEFAULT;
	o->software = NULL;
	o->features = 0;
	o->cancel_fd = -1;
}

int rd_conn_fd(const struct rd_conn *c)
{
	return c && c->link ? rd_link_fd(c->link) : -1;
}

const struct rd_msg_hello_ok *rd_conn_server_info(const struct rd_conn *c)
{
	return &c->info;
}

const char *rd_conn_last_error(const struct rd_conn *c)
{
	return c ? c->last_error : "";
}

int rd_conn_shutdown_reason(const struct rd_conn *c, const char **reason)
{
	if (reason)
		*reason = "";
	if (c == NULL || !c->shutdown)
		return 0;
	if (reason)
		*reason = c->shutdown_reason;
	return 1;
}

uint32_t rd_conn_next_id(struct rd_conn *c)
{
	uint32_t id = c->next_id++;

	if (c->next_id == 0)
		c->next_id = 1;
	return id;
}

/* Deadline helpers: deadline 0 means "do not wait", UINT64_MAX "wait forever". */
static uint64_t deadline_in(int timeout_ms)
{
	if (timeout_ms < 0)
		return UINT64_MAX;
	if (timeout_ms == 0)
		return 0;
	return rd_now_mono_ms() + (uint64_t)timeout_ms;
}

static int ms_left(uint64_t deadline)
{
	uint64_t now;

	if (deadline == UINT64_MAX)
		return -1;
	if (deadline == 0)
		return 0;
	now = rd_now_mono_ms();
	if (now >= deadline)
		return 0;
	return deadline - now > INT32_MAX ? INT32_MAX : (int)(deadline - now);
}

/* ---- sending ------------------------------------------------------------------------- */

static void dispatch(struct rd_conn *c, const struct rd_frame *f);

/* Write what is queued on the link, waiting for the socket (no longer than timeout_ms). */
static int flush_wait(struct rd_conn *c, int timeout_ms)
{
	uint64_t deadline = deadline_in(timeout_ms);
	enum rd_tls_want want;
	int rc;

	for (;;) {
		if ((rc = rd_link_flush(c->link, &want)) != 0)
			return rc;
		if (want == RD_TLS_WANT_NONE)
			return 0;
		struct pollfd p = { .fd = rd_link_fd(c->link),
				    .events = want == RD_TLS_WANT_WRITE ? POLLOUT : POLLIN };
		int left = ms_left(deadline);
		if (left == 0)
			return RD_ERR_TIMEOUT;
		if (poll(&p, 1, left) < 0 && errno != EINTR)
			return RD_ERR_SYSTEM;
	}
}

/* Queue what c->out holds; with wait, write it all before returning (blocking calls),
 * else make one attempt (rd_conn_process writes the rest). */
static int send_out(struct rd_conn *c, int wait)
{
	enum rd_tls_want want;
	int rc = rd_link_queue(c->link, RD_LINK_EVENT, c->out.data, c->out.len, NULL);

	rd_buf_reset(&c->out);
	if (rc == 0)
		rc = wait ? flush_wait(c, c->opt.request_timeout_ms) :
			    rd_link_flush(c->link, &want);
	if (rc == RD_ERR_SYSTEM && (errno == EPIPE || errno == ECONNRESET))
		rc = RD_ERR_CLOSED;
	return rc;
}

static int send_buf(struct rd_conn *c)
{
	return send_out(c, 1);
}

/* Frame m into c->out and send it (waiting for it to be written, or one attempt). */
static int send_msg(struct rd_conn *c, const struct rd_msg *m, uint32_t req_id, int wait)
{
	int rc;

	if (c == NULL || m == NULL || c->link == NULL)
		return RD_ERR_STATE;
	rd_buf_reset(&c->out);
	if ((rc = rd_msg_frame(&c->out, m, req_id, 0)) != 0) {
		rd_buf_reset(&c->out);
		return rc;
	}
	return send_out(c, wait);
}

int rd_conn_queue_msg(struct rd_conn *c, const struct rd_msg *m, uint32_t req_id)
{
	return send_msg(c, m, req_id, 0);
}

int rd_conn_want_write(const struct rd_conn *c)
{
	return c != NULL && c->link != NULL && rd_link_queued(c->link) > 0;
}

int rd_conn_process(struct rd_conn *c)
{
	enum rd_tls_want want;
	struct rd_frame f;
	int rc;

	if (c == NULL || c->link == NULL)
		return RD_ERR_STATE;
	if (rd_link_queued(c->link) > 0 && (rc = rd_link_flush(c->link, &want)) != 0)
		return rc == RD_ERR_SYSTEM ? RD_ERR_CLOSED : rc;
	if (!c->eof && !c->broken) {
		rc = rd_link_read_available(c->link);
		if (rc == RD_ERR_CLOSED || rc == RD_ERR_MALFORMED)
			c->eof = 1;
		else if (rc != 0)
			return rc;
	}
	/* every whole frame that is there, then the verdict on the connection */
	for (;;) {
		rc = rd_link_next(c->link, &f);
		if (rc == RD_ERR_INCOMPLETE)
			return c->eof ? RD_ERR_CLOSED : 0;
		if (rc != 0) {
			c->broken = rc;
			return rc;
		}
		dispatch(c, &f);
	}
}

int rd_conn_send(struct rd_conn *c, uint16_t type, uint32_t req_id, const void *payload, size_t n,
		 unsigned opts)
{
	int rc;

	if (c == NULL || c->link == NULL)
		return RD_ERR_STATE;
	rd_buf_reset(&c->out);
	if ((rc = rd_frame_append(&c->out, type, req_id, payload, n, opts)) != 0) {
		rd_buf_reset(&c->out);
		return rc;
	}
	return send_buf(c);
}

int rd_conn_send_msg(struct rd_conn *c, const struct rd_msg *m, uint32_t req_id)
{
	return send_msg(c, m, req_id, 1);
}

/* ---- receiving ----------------------------------------------------------------------- */

/* Next whole frame, from what is buffered or from the link until deadline.
 * RD_ERR_TIMEOUT leaves the connection usable (a partial frame stays buffered). */
static int next_frame(struct rd_conn *c, uint64_t deadline, struct rd_frame *f)
{
	int rc;

	memset(f, 0, sizeof(*f));
	if (c->broken)
		return c->broken;
	if (c->link == NULL)
		return RD_ERR_CLOSED;
	if (c->eof) { /* what was buffered before the close is still delivered */
		rc = rd_link_next(c->link, f);
		return rc == RD_ERR_INCOMPLETE ? RD_ERR_CLOSED : rc;
	}
	rc = rd_link_recv(c->link, ms_left(deadline), f);
	switch (rc) {
	case 0:
	case RD_ERR_TIMEOUT:
	case RD_ERR_CANCELLED:
		return rc;
	case RD_ERR_CLOSED:
	case RD_ERR_MALFORMED:
		c->eof = 1;
		return RD_ERR_CLOSED;
	case RD_ERR_SYSTEM:
		if (errno == ECONNRESET || errno == EPIPE || errno == ENOTCONN) {
			c->eof = 1;
			return RD_ERR_CLOSED;
		}
		return rc;
	default:
		RD_LOG(RD_LOG_WARN, "bad frame from server: %s", rd_strerror(rc));
		c->broken = rc;
		return rc;
	}
}

static void keep_error_text(struct rd_conn *c, const struct rd_msg_error *e)
{
	size_t n = e->text.n;

	if (n >= sizeof(c->last_error))
		n = sizeof(c->last_error) - 1;
	if (n > 0)
		memcpy(c->last_error, e->text.p, n);
	c->last_error[n] = '\0';
}

/* Handle one frame that is not the awaited reply. */
static void dispatch(struct rd_conn *c, const struct rd_frame *f)
{
	struct rd_msg m, pong;
	int rc;

	if (f->hdr.type >= RD_TYPE_APP_FIRST) {
		if (c->cb.on_app_frame)
			c->cb.on_app_frame(c, f, c->cb.user);
		return;
	}
	rc = rd_msg_decode(f->hdr.type, f->payload, f->len, &m);
	if (rc != 0) {
		RD_LOG(RD_LOG_WARN, "dropped %s frame from server: %s",
		       rd_msg_type_name(f->hdr.type) ? rd_msg_type_name(f->hdr.type) : "unknown",
		       rd_strerror(rc));
		return;
	}
	switch (m.type) {
	case RD_MSG_PING:
		rd_msg_init(&pong, RD_MSG_PONG);
		pong.u.ping.nonce = m.u.ping.nonce;
		/* A failed PONG shows up as EOF on the next read; nothing to do here. */
		(void)rd_conn_send_msg(c, &pong, f->hdr.req_id);
		break;
	case RD_MSG_PONG:
		break;
	case RD_MSG_SHUTDOWN:
		c->shutdown = 1;
		snprintf(c->shutdown_reason, sizeof(c->shutdown_reason), "%.*s",
			 (int)(m.u.bye.reason.n < RD_REASON_MAX ? m.u.bye.reason.n : RD_REASON_MAX),
			 m.u.bye.reason.p ? (const char *)m.u.bye.reason.p : "");
		if (c->cb.on_msg)
			c->cb.on_msg(c, &m, c->cb.user);
		break;
	case RD_MSG_ERROR:
		keep_error_text(c, &m.u.error);
		if (f->hdr.req_id == 0)
			c->last_async_code = m.u.error.code;
		if (c->cb.on_msg)
			c->cb.on_msg(c, &m, c->cb.user);
		break;
	default:
		if (c->cb.on_msg)
			c->cb.on_msg(c, &m, c->cb.user);
		break;
	}
	rd_msg_clear(&m);
}

int rd_conn_pending(struct rd_conn *c)
{
	return c != NULL && c->link != NULL && !c->broken && rd_link_frame_ready(c->link);
}

int rd_conn_poll(struct rd_conn *c, int timeout_ms)
{
	struct rd_frame f;
	uint64_t deadline = deadline_in(timeout_ms);
	int rc, handled = 0;

	if (c == NULL)
		return RD_ERR_INVAL;
	for (;;) {
		/* after the first frame, only drain what is already there */
		rc = next_frame(c, handled ? 0 : deadline, &f);
		if (rc == RD_ERR_TIMEOUT)
			return 0;
		if (rc != 0)
			return rc;
		handled = 1;
		dispatch(c, &f);
	}
}

int rd_conn_wait_reply(struct rd_conn *c, uint32_t req_id, int timeout_ms, struct rd_frame *f,
		       uint16_t *werr)
{
	struct rd_msg m;
	uint64_t deadline = deadline_in(timeout_ms);
	int rc;

	if (werr)
		*werr = 0;
	if (c == NULL || f == NULL)
		return RD_ERR_INVAL;
	for (;;) {
		if ((rc = next_frame(c, deadline, f)) != 0)
			return rc;
		if (req_id == 0 || f->hdr.req_id != req_id || f->hdr.type == RD_MSG_PING) {
			dispatch(c, f);
			continue;
		}
		if (f->hdr.type != RD_MSG_ERROR)
			return 0;
		rc = rd_msg_decode(RD_MSG_ERROR, f->payload, f->len, &m);
		if (rc != 0)
			return RD_ERR_PROTOCOL;
		keep_error_text(c, &m.u.error);
		if (werr)
			*werr = m.u.error.code;
		rd_msg_clear(&m);
		return RD_ERR_REMOTE;
	}
}

int rd_conn_wait_any_reply(struct rd_conn *c, int timeout_ms, struct rd_frame *f, uint16_t *werr)
{
	struct rd_msg m;
	uint64_t deadline = deadline_in(timeout_ms);
	int rc;

	if (werr)
		*werr = 0;
	if (c == NULL || f == NULL)
		return RD_ERR_INVAL;
	for (;;) {
		if ((rc = next_frame(c, deadline, f)) != 0)
			return rc;
		if (f->hdr.req_id == 0 || f->hdr.type == RD_MSG_PING) {
			dispatch(c, f);
			continue;
		}
		if (f->hdr.type != RD_MSG_ERROR)
			return 0;
		if (rd_msg_decode(RD_MSG_ERROR, f->payload, f->len, &m) != 0)
			return RD_ERR_PROTOCOL;
		keep_error_text(c, &m.u.error);
		if (werr)
			*werr = m.u.error.code;
		rd_msg_clear(&m);
		return RD_ERR_REMOTE;
	}
}

int rd_conn_request_raw(struct rd_conn *c, uint16_t type, const void *payload, size_t n,
			unsigned opts, struct rd_frame *reply_frame, uint16_t *werr)
{
	uint32_t id;
	int rc;

	if (werr)
		*werr = 0;
	if (c == NULL || reply_frame == NULL)
		return RD_ERR_INVAL;
	memset(reply_frame, 0, sizeof(*reply_frame));
	id = rd_conn_next_id(c);
	if ((rc = rd_conn_send(c, type, id, payload, n, opts)) != 0)
		return rc;
	return rd_conn_wait_reply(c, id, c->opt.request_timeout_ms, reply_frame, werr);
}

int rd_conn_request(struct rd_conn *c, const struct rd_msg *m, struct rd_msg *reply, uint16_t *werr)
{
	struct rd_frame f;
	uint32_t id;
	int rc;

	if (werr)
		*werr = 0;
	if (reply)
		memset(reply, 0, sizeof(*reply));
	if (c == NULL || m == NULL || reply == NULL)
		return RD_ERR_INVAL;
	id = rd_conn_next_id(c);
	if ((rc = rd_conn_send_msg(c, m, id)) != 0)
		return rc;
	if ((rc = rd_conn_wait_reply(c, id, c->opt.request_timeout_ms, &f, werr)) != 0)
		return rc;
	if ((rc = rd_msg_decode(f.hdr.type, f.payload, f.len, reply)) != 0) {
		RD_LOG(RD_LOG_WARN, "undecodable reply of type 0x%04x: %s", f.hdr.type,
		       rd_strerror(rc));
		return RD_ERR_PROTOCOL;
	}
	return 0;
}

/* A request whose reply must be of type want (anything else is a protocol error). */
static int request_expect(struct rd_conn *c, const struct rd_msg *m, uint16_t want,
			  struct rd_msg *reply, uint16_t *werr)
{
	int rc = rd_conn_request(c, m, reply, werr);

	if (rc != 0)
		return rc;
	if (reply->type != want) {
		RD_LOG(RD_LOG_WARN, "expected %s, server sent %s", rd_msg_type_name(want),
		       rd_msg_type_name(reply->type) ? rd_msg_type_name(reply->type) : "?");
		rd_msg_clear(reply);
		return RD_ERR_PROTOCOL;
	}
	return 0;
}

/* ---- opening and closing ------------------------------------------------------------- */

static void drop_link(struct rd_conn *c)
{
	rd_link_free(c->link);
	c->link = NULL;
}

/* The client's TLS context for one connection attempt: its identity (made on first use)
 * and the CA file if any. */
static int client_ctx(const struct rd_conn_options *o, const char *dir,
		      struct rd_conn_tls_report *rep, struct rd_tls_ctx **out)
{
	struct rd_tls_identity *id = NULL;
	char crt[600], key[600];
	int rc;

	*out = NULL;
	if (!o->no_client_cert && dir[0]) {
		snprintf(crt, sizeof(crt), "%s/%s", dir, RD_TLS_CLIENT_CERT);
		snprintf(key, sizeof(key), "%s/%s", dir, RD_TLS_CLIENT_KEY);
		if ((rc = rd_tls_identity_ensure(crt, key, "roomdrop client", &id, NULL)) != 0) {
			snprintf(rep->reason, sizeof(rep->reason),
				 "cannot load or make this client's key in %s: %s", dir,
				 rd_strerror(rc));
			return rc;
		}
		rd_tls_identity_fp(id, rep->client_fp);
		rep->has_client_fp = 1;
	}
	rc = rd_tls_ctx_client_new(id, o->ca_file, 0, out);
	if (rc != 0)
		snprintf(rep->reason, sizeof(rep->reason), "cannot use the CA file %s: %s",
			 o->ca_file ? o->ca_file : "", rd_strerror(rc));
	rd_tls_identity_free(id);
	return rc;
}

/* Connect to host:port and bring up the transport: TLS with the server checked (pin, CA or
 * known_servers), or plaintext. On failure rep says what happened. */
static int open_link(struct rd_conn *c, const char *host, uint16_t port,
		     struct rd_conn_tls_report *rep)
{
	const struct rd_conn_options *o = &c->opt;
	struct rd_link_config lc = { .max_payload = o->max_payload };
	struct rd_tls_expect ex = { .host = host };
	struct rd_tls_ctx *ctx = NULL;
	struct rd_tls_conn *t = NULL;
	char dir[512] = "", trust[600] = "";
	enum rd_tls_trust tr;
	int fd = -1, rc;

	memset(rep, 0, sizeof(*rep));
	if (!o->plain) {
		if (o->config_dir)
			snprintf(dir, sizeof(dir), "%s", o->config_dir);
		else if (rd_tls_config_dir(dir, sizeof(dir)) != 0)
			dir[0] = '\0';
		if (c->vouched) {
			/* trust carries over from the server that redirected us */
			memcpy(ex.pin, c->vouched_fp, sizeof(ex.pin));
			ex.has_pin = 1;
			rep->trust = RD_CONN_VOUCHED;
		} else if (o->server_fp) {
			if (rd_tls_fp_parse(o->server_fp, ex.pin) != 0) {
				snprintf(rep->reason, sizeof(rep->reason),
					 "'%.100s' is not a fingerprint", o->server_fp);
				return RD_ERR_INVAL;
			}
			ex.has_pin = 1;
			rep->trust = RD_CONN_PINNED;
		} else if (o->ca_file) {
			rep->trust = RD_CONN_CA;
		} else {
			if (o->known_servers)
				snprintf(trust, sizeof(trust), "%s", o->known_servers);
			else if (dir[0])
				snprintf(trust, sizeof(trust), "%s/%s", dir, RD_TLS_KNOWN_SERVERS);
			if (!trust[0]) {
				snprintf(
					rep->reason, sizeof(rep->reason),
					"no place for known_servers (set HOME or XDG_CONFIG_HOME, or "
					"pin the server's key)");
				return RD_ERR_NOT_FOUND;
			}
			snprintf(rep->trust_file, sizeof(rep->trust_file), "%s", trust);
		}
		if ((rc = client_ctx(o, dir, rep, &ctx)) != 0)
			return rc;
	}
	if ((rc = rd_net_connect(host, port, o->connect_timeout_ms, &fd)) != 0)
		goto out;
	rc = o->plain ? rd_tls_conn_plain_new(fd, &t) : rd_tls_conn_tls_new(ctx, fd, &ex, &t);
	if (rc != 0) {
		close(fd);
		goto out;
	}
	if ((rc = rd_link_new(t, &lc, &c->link)) != 0)
		goto out;
	rd_link_set_cancel_fd(c->link, o->cancel_fd > 0 ? o->cancel_fd : -1);
	if (o->plain)
		goto out;
	if ((rc = rd_link_handshake(c->link, o->connect_timeout_ms)) != 0) {
		snprintf(rep->reason, sizeof(rep->reason), "%s",
			 rc == RD_ERR_TIMEOUT ? "no TLS handshake within the timeout" :
						rd_link_reason(c->link));
		rep->server_plaintext = rd_link_peer_spoke(c->link) == RD_TLS_SNIFF_FRAME;
		if (rc == RD_ERR_MISMATCH && ex.has_pin)
			rep->trust = c->vouched ? RD_CONN_VOUCH_MISMATCH : RD_CONN_MISMATCH;
		goto out;
	}
	if ((rc = rd_link_peer_fp(c->link, rep->server_fp)) != 0)
		goto out;
	if (ex.has_pin || (o->ca_file && !c->vouched))
		goto out;
	/* trust on first use: known_servers decides before anything is sent */
	if ((rc = rd_tls_trust_check(trust, host, port, rep->server_fp, &tr, rep->known_fp)) != 0) {
		snprintf(rep->reason, sizeof(rep->reason), "cannot read %s: %s", trust,
			 rd_strerror(rc));
		goto out;
	}
	if (tr == RD_TRUST_MATCH) {
		rep->trust = RD_CONN_KNOWN;
	} else if (tr == RD_TRUST_CHANGED) {
		rep->trust = RD_CONN_CHANGED;
		snprintf(rep->reason, sizeof(rep->reason),
			 "the server's key is not the one recorded in %s", trust);
		rc = RD_ERR_MISMATCH;
	} else if ((rc = rd_tls_trust_add(trust, host, port, rep->server_fp)) == 0) {
		rep->trust = RD_CONN_FIRST_USE;
	} else {
		snprintf(rep->reason, sizeof(rep->reason),
			 "cannot record the server's key in %s: %s", trust, rd_strerror(rc));
	}
out:
	rd_tls_ctx_free(ctx);
	if (rc != 0)
		drop_link(c);
	return rc;
}

/* HELLO / HELLO_OK on the current socket. A REDIRECT fills *redir (its reason copied into
 * reason[RD_REASON_MAX + 1]) and returns 1. */
static int hello(struct rd_conn *c, struct rd_msg_redirect *redir, char *reason, uint16_t *werr)
{
	struct rd_frame f;
	struct rd_msg m, reply;
	int rc;

	rd_msg_init(&m, RD_MSG_HELLO);
	m.u.hello.version_min = RD_PROTO_VERSION;
	m.u.hello.version_max = RD_PROTO_VERSION;
	m.u.hello.features = c->opt.features;
	memcpy(m.u.hello.software, c->software, sizeof(m.u.hello.software));
	rc = rd_conn_request(c, &m, &reply, werr);
	if (rc == RD_ERR_CLOSED || rc == RD_ERR_SYSTEM) {
		/* A full server sends ERROR 205 (request id 0) on accept and closes: read what
		 * it sent before the close and report that error rather than the close. */
		while (next_frame(c, deadline_in(c->opt.request_timeout_ms), &f) == 0)
			dispatch(c, &f);
		if (c->last_async_code) {
			if (werr)
				*werr = c->last_async_code;
			rc = RD_ERR_REMOTE;
		}
	}
	if (rc != 0)
		return rc;
	switch (reply.type) {
	case RD_MSG_HELLO_OK:
		c->info = reply.u.hello_ok;
		rc = 0;
		break;
	case RD_MSG_REDIRECT:
		*redir = reply.u.redirect;
		snprintf(reason, RD_REASON_MAX + 1, "%.*s",
			 (int)(redir->reason.n > RD_REASON_MAX ? RD_REASON_MAX : redir->reason.n),
			 redir->reason.p ? redir->reason.p : "");
		redir->reason.p = NULL; /* a view into the reader: not kept */
		redir->reason.n = 0;
		rc = 1;
		break;
	default:
		rc = RD_ERR_PROTOCOL;
		break;
	}
	rd_msg_clear(&reply);
	return rc;
}

int rd_conn_open(const char *host, uint16_t port, const struct rd_conn_options *opt,
		 const struct rd_conn_callbacks *cb, struct rd_conn **out, uint16_t *werr)
{
	struct rd_conn *c = NULL;
	struct rd_msg_redirect redir;
	struct rd_conn_tls_report own, *rep = opt && opt->report ? opt->report : &own;
	struct rd_conn_tls_report route; /* the redirect part of the report, kept across hops */
	char cur_host[RD_HOST_MAX + 1], reason[RD_REASON_MAX + 1];
	uint16_t cur_port = port;
	static const uint8_t zero_fp[RD_TLS_FP_LEN];
	int rc, hops;

	if (werr)
		*werr = 0;
	if (out)
		*out = NULL;
	if (host == NULL || *host == '\0' || port == 0 || out == NULL)
		return RD_ERR_INVAL;
	if (strlen(host) > RD_HOST_MAX)
		return RD_ERR_ADDR;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return RD_ERR_NOMEM;
	c->next_id = 1;
	rd_conn_options_defaults(&c->opt);
	if (opt) {
		c->opt = *opt;
		if (c->opt.max_payload == 0)
			c->opt.max_payload = RD_MAX_PAYLOAD_DEFAULT;
		if (c->opt.max_payload > RD_MAX_PAYLOAD_HARD)
			c->opt.max_payload = RD_MAX_PAYLOAD_HARD;
		if (c->opt.connect_timeout_ms == 0)
			c->opt.connect_timeout_ms = RD_CONN_DEFAULT_CONNECT_MS;
		if (c->opt.request_timeout_ms == 0)
			c->opt.request_timeout_ms = RD_CONN_DEFAULT_REQUEST_MS;
	}
	if (c->opt.software && strlen(c->opt.software) <= RD_SOFTWARE_MAX)
		strcpy(c->software, c->opt.software);
	else
		strcpy(c->software, "libroomdrop/" RD_VERSION);
	c->opt.software = c->software;
	if (cb)
		c->cb = *cb;
	rd_buf_init(&c->out, 0);
	snprintf(cur_host, sizeof(cur_host), "%s", host);
	memset(&route, 0, sizeof(route));

	for (hops = 0;; hops++) {
		rc = open_link(c, cur_host, cur_port, rep);
		/* open_link starts the report afresh: put back where this connection went */
		snprintf(rep->host, sizeof(rep->host), "%s", cur_host);
		rep->port = cur_port;
		rep->redirects = route.redirects;
		memcpy(rep->via_host, route.via_host, sizeof(rep->via_host));
		rep->via_port = route.via_port;
		memcpy(rep->redirect_reason, route.redirect_reason, sizeof(rep->redirect_reason));
		rep->redirect_temporary = route.redirect_temporary;
		memcpy(rep->vouched_fp, route.vouched_fp, sizeof(rep->vouched_fp));
		if (rc != 0)
			goto out;
		rc = hello(c, &redir, reason, werr);
		if (rc <= 0)
			goto out;
		/* REDIRECT: start again at the address it gives, a bounded number of times */
		drop_link(c);
		c->eof = 0;
		c->broken = 0;
		if (hops + 1 > RD_CONN_MAX_REDIRECTS || redir.host[0] == '\0' || redir.port == 0) {
			snprintf(rep->reason, sizeof(rep->reason), "%s",
				 hops + 1 > RD_CONN_MAX_REDIRECTS ?
					 "more than 3 redirects in a row" :
					 "a redirect to no address");
			rc = RD_ERR_PROTOCOL;
			goto out;
		}
		RD_LOG(RD_LOG_INFO, "redirected from %s:%u to %s:%u (%s)", cur_host, cur_port,
		       redir.host, redir.port, reason);
		route.redirects = (unsigned)hops + 1;
		snprintf(route.via_host, sizeof(route.via_host), "%s", cur_host);
		route.via_port = cur_port;
		memcpy(route.redirect_reason, reason, sizeof(route.redirect_reason));
		route.redirect_temporary = redir.temporary != 0;
		memcpy(route.vouched_fp, redir.fp, sizeof(route.vouched_fp));
		/* a key of all zeros vouches for nothing: the next server runs plaintext, or the
		 * client falls back to its own checks (known_servers by host:port) */
		c->vouched = memcmp(redir.fp, zero_fp, sizeof(zero_fp)) != 0;
		memcpy(c->vouched_fp, redir.fp, sizeof(c->vouched_fp));
		snprintf(cur_host, sizeof(cur_host), "%s", redir.host);
		cur_port = redir.port;
	}
out:
	if (rc != 0) {
		drop_link(c);
		rd_buf_free(&c->out);
		free(c);
		return rc;
	}
	c->report = *rep;
	*out = c;
	return 0;
}

void rd_conn_close(struct rd_conn *c)
{
	struct rd_msg m;
	enum rd_tls_want want;
	int sched;

	if (c == NULL)
		return;
	if (c->link && !c->eof && !c->broken) {
		rd_msg_init(&m, RD_MSG_BYE);
		rd_buf_reset(&c->out);
		if (rd_msg_frame(&c->out, &m, 0, 0) == 0 && send_out(c, 0) == 0 &&
		    flush_wait(c, RD_CONN_BYE_TIMEOUT_MS) == 0) {
			/* shut our side, then wait (bounded) for the server to close its own:
			 * once this returns the server has let the nickname go */
			rd_link_close_after_flush(c->link, &sched);
			(void)rd_link_flush(c->link, &want);
			(void)rd_link_drain(c->link, RD_CONN_BYE_TIMEOUT_MS);
		}
	}
	drop_link(c);
	rd_buf_free(&c->out);
	free(c);
}

const struct rd_conn_tls_report *rd_conn_tls(const struct rd_conn *c)
{
	return &c->report;
}

int rd_conn_send_bytes(struct rd_conn *c, const void *p, size_t n)
{
	if (c == NULL || c->link == NULL)
		return RD_ERR_STATE;
	rd_buf_reset(&c->out);
	if (rd_buf_put(&c->out, p, n) != 0)
		return RD_ERR_NOMEM;
	return send_buf(c);
}

/* ---- helpers --------------------------------------------------------------------------- */

int rd_conn_register(struct rd_conn *c, const char *nick, uint16_t *werr)
{
	struct rd_msg m, reply;
	int rc;

	if (werr)
		*werr = 0;
	if (c == NULL || nick == NULL)
		return RD_ERR_INVAL;
	if (strlen(nick) > RD_NICK_MAX)
		return RD_ERR_INVAL;
	rd_msg_init(&m, RD_MSG_NICK);
	strcpy(m.u.nick.nick, nick);
	if ((rc = request_expect(c, &m, RD_MSG_WELCOME, &reply, werr)) != 0)
		return rc;
	rd_msg_clear(&reply);
	return 0;
}

int rd_conn_auth(struct rd_conn *c, uint8_t kind, const void *secret, size_t n, uint16_t *werr)
{
	struct rd_msg m, reply;
	int rc;

	if (werr)
		*werr = 0;
	if (c == NULL || (secret == NULL && n > 0) || n > RD_SECRET_MAX ||
	    (kind != RD_AUTH_PASSWORD && kind != RD_AUTH_INVITE))
		return RD_ERR_INVAL;
	rd_msg_init(&m, RD_MSG_AUTH);
	m.u.auth.kind = kind;
	m.u.auth.secret = (struct rd_bytes){ secret, n };
	if ((rc = request_expect(c, &m, RD_MSG_OK, &reply, werr)) != 0)
		return rc;
	rd_msg_clear(&reply);
	return 0;
}

int rd_conn_join(struct rd_conn *c, const char *room, uint32_t *members, uint16_t *werr)
{
	return rd_conn_join_key(c, room, NULL, 0, members, werr);
}

int rd_conn_join_key(struct rd_conn *c, const char *room, const void *key, size_t n,
		     uint32_t *members, uint16_t *werr)
{
	struct rd_msg m, reply;
	int rc;

	if (werr)
		*werr = 0;
	if (members)
		*members = 0;
	if (c == NULL || room == NULL || strlen(room) > RD_ROOM_MAX || n > RD_SECRET_MAX ||
	    (n > 0 && key == NULL))
		return RD_ERR_INVAL;
	if (n == 0) {
		rd_msg_init(&m, RD_MSG_JOIN);
		strcpy(m.u.room.room, room);
	} else {
		rd_msg_init(&m, RD_MSG_JOIN_KEY);
		strcpy(m.u.join_key.room, room);
		m.u.join_key.key.p = key;
		m.u.join_key.key.n = n;
	}
	if ((rc = request_expect(c, &m, RD_MSG_JOINED, &reply, werr)) != 0)
		return rc;
	if (members)
		*members = reply.u.joined.members;
	rd_msg_clear(&reply);
	return 0;
}

int rd_conn_leave(struct rd_conn *c, uint16_t *werr)
{
	struct rd_msg m, reply;
	int rc;

	if (werr)
		*werr = 0;
	if (c == NULL)
		return RD_ERR_INVAL;
	rd_msg_init(&m, RD_MSG_LEAVE);
	if ((rc = request_expect(c, &m, RD_MSG_OK, &reply, werr)) != 0)
		return rc;
	rd_msg_clear(&reply);
	return 0;
}

int rd_conn_rooms(struct rd_conn *c, struct rd_msg *out, uint16_t *werr)
{
	struct rd_msg m;

	if (werr)
		*werr = 0;
	if (out)
		memset(out, 0, sizeof(*out));
	if (c == NULL || out == NULL)
		return RD_ERR_INVAL;
	rd_msg_init(&m, RD_MSG_ROOMS);
	return request_expect(c, &m, RD_MSG_ROOM_LIST, out, werr);
}

int rd_conn_who(struct rd_conn *c, const char *room, struct rd_msg *out, uint16_t *werr)
{
	struct rd_msg m;

	if (werr)
		*werr = 0;
	if (out)
		memset(out, 0, sizeof(*out));
	if (c == NULL || out == NULL || (room && strlen(room) > RD_ROOM_MAX))
		return RD_ERR_INVAL;
	rd_msg_init(&m, RD_MSG_WHO);
	if (room)
		strcpy(m.u.room.room, room);
	return request_expect(c, &m, RD_MSG_WHO_LIST, out, werr);
}

int rd_conn_say(struct rd_conn *c, uint8_t kind, const void *data, size_t n)
{
	struct rd_msg m;

	if (c == NULL || (data == NULL && n > 0))
		return RD_ERR_INVAL;
	if (n > RD_CHAT_MAX)
		return RD_ERR_TOO_BIG;
	rd_msg_init(&m, RD_MSG_SAY);
	m.u.say.kind = kind;
	m.u.say.data.p = data;
	m.u.say.data.n = n;
	return rd_conn_send_msg(c, &m, 0);
}

int rd_conn_tell(struct rd_conn *c, const char *nick, uint8_t kind, const void *data, size_t n,
		 uint16_t *werr)
{
	struct rd_msg m, reply;
	int rc;

	if (werr)
		*werr = 0;
	if (c == NULL || nick == NULL || strlen(nick) > RD_NICK_MAX || (data == NULL && n > 0))
		return RD_ERR_INVAL;
	if (n > RD_CHAT_MAX)
		return RD_ERR_TOO_BIG;
	rd_msg_init(&m, RD_MSG_TELL);
	strcpy(m.u.tell.to, nick);
	m.u.tell.kind = kind;
	m.u.tell.data.p = data;
	m.u.tell.data.n = n;
	if ((rc = request_expect(c, &m, RD_MSG_OK, &reply, werr)) != 0)
		return rc;
	rd_msg_clear(&reply);
	return 0;
}

/* ---- offers ------------------------------------------------------------------------------ */

int rd_conn_offer(struct rd_conn *c, const char *to, uint16_t app_type, uint32_t timeout_ms,
		  const void *descriptor, size_t n, uint32_t *offer_id, uint32_t *expires_in_ms,
		  uint16_t *werr)
{
	struct rd_msg m, reply;
	int rc;

	if (werr)
		*werr = 0;
	if (offer_id)
		*offer_id = 0;
	if (expires_in_ms)
		*expires_in_ms = 0;
	if (c == NULL || (to && strlen(to) > RD_NICK_MAX) || (descriptor == NULL && n > 0) ||
	    n > RD_DESCRIPTOR_MAX)
		return RD_ERR_INVAL;
	rd_msg_init(&m, RD_MSG_OFFER);
	m.u.offer.scope = to ? RD_OFFER_TO_USER : RD_OFFER_TO_ROOM;
	if (to)
		strcpy(m.u.offer.to, to);
	m.u.offer.app_type = app_type;
	m.u.offer.timeout_ms = timeout_ms;
	m.u.offer.descriptor = (struct rd_bytes){ descriptor, n };
	if ((rc = request_expect(c, &m, RD_MSG_OFFER_PENDING, &reply, werr)) != 0)
		return rc;
	if (offer_id)
		*offer_id = reply.u.offer_pending.offer_id;
	if (expires_in_ms)
		*expires_in_ms = reply.u.offer_pending.expires_in_ms;
	rd_msg_clear(&reply);
	return 0;
}

int rd_conn_offer_answer(struct rd_conn *c, uint32_t offer_id, uint8_t answer, uint32_t hold_ms,
			 const char *reason, const void *data, size_t n, uint32_t *expires_in_ms,
			 uint16_t *werr)
{
	struct rd_msg m, reply;
	int rc;

	if (werr)
		*werr = 0;
	if (expires_in_ms)
		*expires_in_ms = 0;
	if (c == NULL ||
	    (answer != RD_ANSWER_ACCEPT && answer != RD_ANSWER_REJECT && answer != RD_ANSWER_HOLD &&
	     answer != RD_ANSWER_DONE && answer != RD_ANSWER_RESUME) ||
	    (reason && strlen(reason) > RD_REASON_MAX) || (data == NULL && n > 0) ||
	    n > RD_DESCRIPTOR_MAX)
		return RD_ERR_INVAL;
	rd_msg_init(&m, RD_MSG_OFFER_ANSWER);
	m.u.offer_answer.offer_id = offer_id;
	m.u.offer_answer.answer = answer;
	m.u.offer_answer.hold_ms = hold_ms;
	m.u.offer_answer.reason = rd_str_c(reason ? reason : "");
	m.u.offer_answer.data = (struct rd_bytes){ data, n };
	rc = request_expect(c, &m, answer == RD_ANSWER_HOLD ? RD_MSG_OFFER_PENDING : RD_MSG_OK,
			    &reply, werr);
	if (rc != 0)
		return rc;
	if (expires_in_ms && reply.type == RD_MSG_OFFER_PENDING)
		*expires_in_ms = reply.u.offer_pending.expires_in_ms;
	rd_msg_clear(&reply);
	return 0;
}

int rd_conn_offer_cancel(struct rd_conn *c, uint32_t offer_id, uint16_t *werr)
{
	struct rd_msg m, reply;
	int rc;

	if (werr)
		*werr = 0;
	if (c == NULL)
		return RD_ERR_INVAL;
	rd_msg_init(&m, RD_MSG_OFFER_CANCEL);
	m.u.offer_id.offer_id = offer_id;
	if ((rc = request_expect(c, &m, RD_MSG_OFFER_RESULT, &reply, werr)) != 0)
		return rc;
	rd_msg_clear(&reply);
	return 0;
}

int rd_conn_offer_data(struct rd_conn *c, uint32_t offer_id, uint64_t offset, const void *p,
		       size_t n)
{
	struct rd_msg m;
	uint64_t out, deadline;
	int rc;

	if (c == NULL || (p == NULL && n > 0) || n > RD_CHUNK_SIZE)
		return RD_ERR_INVAL;
	rd_msg_init(&m, RD_MSG_OFFER_DATA);
	m.u.offer_data = (struct rd_msg_offer_data){ offer_id, offset, { p, n } };
	if ((rc = rd_conn_queue_msg(c, &m, 0)) != 0)
		return rc;
	/* The server may stop reading while a receiver catches up: wait for the socket,
	 * reading and dispatching meanwhile (PING answered, and a program that also receives
	 * relayed data keeps draining it), giving up only after request_timeout_ms without
	 * a byte written. */
	out = rd_link_bytes_out(c->link);
	deadline = deadline_in(c->opt.request_timeout_ms);
	while (rd_conn_want_write(c)) {
		struct pollfd pf[2] = { { .fd = rd_link_fd(c->link), .events = POLLIN | POLLOUT },
					{ .fd = c->opt.cancel_fd > 0 ? c->opt.cancel_fd : -1,
					  .events = POLLIN } };
		int left = ms_left(deadline);
		if (left == 0)
			return RD_ERR_TIMEOUT;
		if (poll(pf, 2, left) < 0 && errno != EINTR)
			return RD_ERR_SYSTEM;
		if (pf[1].revents & POLLIN)
			return RD_ERR_CANCELLED;
		if ((rc = rd_conn_process(c)) != 0)
			return rc;
		if (rd_link_bytes_out(c->link) != out) {
			out = rd_link_bytes_out(c->link);
			deadline = deadline_in(c->opt.request_timeout_ms);
		}
	}
	return 0;
}

int rd_conn_offer_end(struct rd_conn *c, uint32_t offer_id, uint8_t status, uint8_t *outcome,
		      uint16_t *werr)
{
	struct rd_msg m, reply;
	int rc;

	if (werr)
		*werr = 0;
	if (outcome)
		*outcome = 0;
	if (c == NULL)
		return RD_ERR_INVAL;
	rd_msg_init(&m, RD_MSG_OFFER_END);
	m.u.offer_end.offer_id = offer_id;
	m.u.offer_end.status = status;
	if ((rc = request_expect(c, &m, RD_MSG_OFFER_RESULT, &reply, werr)) != 0)
		return rc;
	if (outcome)
		*outcome = reply.u.offer_result.outcome;
	rd_msg_clear(&reply);
	return 0;
}
