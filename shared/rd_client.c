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
 * A peer that goes away (EOF, ECONNRESET, EPIPE) is RD_ERR_CLOSED from then on, after the
 * frames that arrived before it have been dispatched; sends use MSG_NOSIGNAL (through
 * rd_net_write_all), so no SIGPIPE.
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
	int fd;
	int eof;    /* the peer closed (or reset): no more bytes will come */
	int broken; /* the reader failed: 0 or the RD_ERR_* it returned */
	uint32_t next_id;
	struct rd_conn_options opt;
	char software[RD_SOFTWARE_MAX + 1];
	struct rd_conn_callbacks cb;
	struct rd_frame_reader *reader;
	struct rd_buf out; /* frame being sent */
	struct rd_msg_hello_ok info;
	char last_error[RD_CONN_ERRTEXT_MAX];
	uint16_t last_async_code; /* code of the last ERROR with request id 0 */
	int shutdown;             /* SHUTDOWN received */
	char shutdown_reason[RD_REASON_MAX + 1];
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
	return c ? c->fd : -1;
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

static int send_buf(struct rd_conn *c)
{
	int rc = rd_net_write_all(c->fd, c->out.data, c->out.len, c->opt.request_timeout_ms);

	rd_buf_reset(&c->out);
	if (rc == RD_ERR_SYSTEM && (errno == EPIPE || errno == ECONNRESET))
		rc = RD_ERR_CLOSED;
	return rc;
}

int rd_conn_send(struct rd_conn *c, uint16_t type, uint32_t req_id, const void *payload, size_t n,
		 unsigned opts)
{
	int rc;

	if (c == NULL || c->fd < 0)
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
	int rc;

	if (c == NULL || m == NULL || c->fd < 0)
		return RD_ERR_STATE;
	rd_buf_reset(&c->out);
	if ((rc = rd_msg_frame(&c->out, m, req_id, 0)) != 0) {
		rd_buf_reset(&c->out);
		return rc;
	}
	return send_buf(c);
}

/* ---- receiving ----------------------------------------------------------------------- */

/* Read what the socket has (waiting until deadline for at least one byte). */
static int fill(struct rd_conn *c, uint64_t deadline)
{
	struct pollfd pfd[2];
	uint8_t *p;
	size_t avail;
	ssize_t got;
	int rc, left, trimmed = 0;

	for (;;) {
		left = ms_left(deadline);
		pfd[0].fd = c->fd;
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		pfd[1].fd = c->opt.cancel_fd;
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		rc = poll(pfd, c->opt.cancel_fd > 0 ? 2 : 1, trimmed ? left : 0);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			return RD_ERR_SYSTEM;
		}
		if (c->opt.cancel_fd > 0 && (pfd[1].revents & POLLIN))
			return RD_ERR_CANCELLED;
		if (rc > 0 && pfd[0].revents == 0)
			continue; /* only the cancel descriptor hung up: keep waiting */
		if (rc == 0 && !trimmed && left != 0) {
			/* about to block: an idle connection holds no buffer */
			if (rd_frame_reader_pending(c->reader) == 0)
				rd_frame_reader_trim(c->reader);
			trimmed = 1;
			continue;
		}
		if (rc == 0)
			return RD_ERR_TIMEOUT;
		if ((rc = rd_frame_reader_space(c->reader, RD_CONN_READ_CHUNK, &p, &avail)) != 0)
			return rc;
		got = recv(c->fd, p, avail, 0);
		if (got > 0) {
			rd_frame_reader_commit(c->reader, (size_t)got);
			return 0;
		}
		if (got == 0) {
			c->eof = 1;
			return RD_ERR_CLOSED;
		}
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			continue;
		if (errno == ECONNRESET || errno == EPIPE || errno == ENOTCONN) {
			c->eof = 1;
			return RD_ERR_CLOSED;
		}
		return RD_ERR_SYSTEM;
	}
}

/* Next whole frame, from what is buffered or from the socket until deadline.
 * RD_ERR_TIMEOUT leaves the connection usable (a partial frame stays buffered). */
static int next_frame(struct rd_conn *c, uint64_t deadline, struct rd_frame *f)
{
	int rc;

	memset(f, 0, sizeof(*f));
	if (c->broken)
		return c->broken;
	for (;;) {
		rc = rd_frame_reader_next(c->reader, f);
		if (rc == 0)
			return 0;
		if (rc != RD_ERR_INCOMPLETE) {
			RD_LOG(RD_LOG_WARN, "bad frame from server: %s", rd_strerror(rc));
			c->broken = rc;
			return rc;
		}
		if (c->eof || c->fd < 0)
			return RD_ERR_CLOSED;
		if ((rc = fill(c, deadline)) != 0)
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

static void drop_socket(struct rd_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* HELLO / HELLO_OK on the current socket. A REDIRECT fills *redir and returns 1. */
static int hello(struct rd_conn *c, struct rd_msg_redirect *redir, uint16_t *werr)
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
	char cur_host[RD_HOST_MAX + 1];
	uint16_t cur_port = port;
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
	c->fd = -1;
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

	for (hops = 0;; hops++) {
		if ((rc = rd_frame_reader_new(c->opt.max_payload, &c->reader)) != 0)
			goto out;
		if ((rc = rd_net_connect(cur_host, cur_port, c->opt.connect_timeout_ms, &c->fd)) !=
		    0)
			goto out;
		rc = hello(c, &redir, werr);
		if (rc <= 0)
			goto out;
		/* REDIRECT: start again at the address it gives, a bounded number of times */
		drop_socket(c);
		rd_frame_reader_free(c->reader);
		c->reader = NULL;
		c->eof = 0;
		c->broken = 0;
		if (hops + 1 > RD_CONN_MAX_REDIRECTS || redir.host[0] == '\0' || redir.port == 0) {
			rc = RD_ERR_PROTOCOL;
			goto out;
		}
		RD_LOG(RD_LOG_INFO, "redirected from %s:%u to %s:%u", cur_host, cur_port,
		       redir.host, redir.port);
		snprintf(cur_host, sizeof(cur_host), "%s", redir.host);
		cur_port = redir.port;
	}
out:
	if (rc != 0) {
		drop_socket(c);
		rd_frame_reader_free(c->reader);
		rd_buf_free(&c->out);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* After BYE, wait (bounded) for the server to close its side, discarding what still
 * comes: once this returns the server has let the nickname go, so the next connection
 * can take it again. */
static void wait_server_close(struct rd_conn *c)
{
	uint64_t deadline = rd_now_mono_ms() + RD_CONN_BYE_TIMEOUT_MS;
	struct pollfd pfd;
	char sink[4096];
	ssize_t got;
	int left;

	for (;;) {
		left = ms_left(deadline);
		if (left <= 0)
			return;
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, left) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		got = recv(c->fd, sink, sizeof(sink), 0);
		if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
			return;
	}
}

void rd_conn_close(struct rd_conn *c)
{
	struct rd_msg m;

	if (c == NULL)
		return;
	if (c->fd >= 0 && !c->eof && !c->broken) {
		rd_msg_init(&m, RD_MSG_BYE);
		rd_buf_reset(&c->out);
		if (rd_msg_frame(&c->out, &m, 0, 0) == 0 &&
		    rd_net_write_all(c->fd, c->out.data, c->out.len, RD_CONN_BYE_TIMEOUT_MS) == 0) {
			shutdown(c->fd, SHUT_WR);
			wait_server_close(c);
		}
	}
	drop_socket(c);
	rd_frame_reader_free(c->reader);
	rd_buf_free(&c->out);
	free(c);
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

int rd_conn_join(struct rd_conn *c, const char *room, uint32_t *members, uint16_t *werr)
{
	struct rd_msg m, reply;
	int rc;

	if (werr)
		*werr = 0;
	if (members)
		*members = 0;
	if (c == NULL || room == NULL || strlen(room) > RD_ROOM_MAX)
		return RD_ERR_INVAL;
	rd_msg_init(&m, RD_MSG_JOIN);
	strcpy(m.u.room.room, room);
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
