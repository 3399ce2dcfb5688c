/* test_client.c - rd_client.c against a fake server thread on 127.0.0.1.
 *
 * The fake server is a thread that accepts connections on an ephemeral port and runs a
 * script for each: it reads frames with rd_frame_recv and answers with rd_frame_send, as
 * a real server would, or misbehaves on purpose. The script never calls cmocka asserts
 * (they are not thread-safe): it records what it saw in struct fake, and the test checks
 * that after joining the thread. Every wait has a timeout. */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rd_buf.h"
#include "rd_client.h"
#include "rd_err.h"
#include "rd_frame.h"
#include "rd_msg.h"
#include "rd_net.h"
#include "rd_proto.h"

#define IO_MS 5000
#define APP_TYPE 0x1100u

struct fake;
typedef void (*script_fn)(struct fake *fk, int fd, int index);

struct fake {
	int lfd;
	uint16_t port;
	pthread_t th;
	script_fn script;
	int nconns;             /* connections to accept */
	uint16_t redirect_port; /* for the redirect scripts */
	/* what the script saw */
	int accepted;
	char nick[RD_NICK_BUF];
	uint64_t pong_nonce;
	uint32_t pong_req;
	uint32_t say_req;
	int steps; /* scripts count what went as planned */
	char fail[200];
};

/* ---- the fake server's side --------------------------------------------------------- */

static void fk_fail(struct fake *fk, const char *what)
{
	if (fk->fail[0] == '\0')
		snprintf(fk->fail, sizeof(fk->fail), "%s", what);
}

/* Receive one frame and decode it into *m (the views live until the next recv). */
static int fk_recv(struct fake *fk, int fd, struct rd_frame_reader *r, struct rd_frame *f,
		   struct rd_msg *m)
{
	int rc = rd_frame_recv(fd, r, IO_MS, f);

	if (rc != 0) {
		fk_fail(fk, "server: recv failed");
		return rc;
	}
	if (f->hdr.type < RD_TYPE_APP_FIRST && m != NULL &&
	    rd_msg_decode(f->hdr.type, f->payload, f->len, m) != 0) {
		fk_fail(fk, "server: undecodable frame");
		return RD_ERR_MALFORMED;
	}
	return 0;
}

static int fk_send(int fd, const struct rd_msg *m, uint32_t req)
{
	struct rd_buf b;
	int rc;

	rd_buf_init(&b, 0);
	rc = rd_msg_encode(m, &b);
	if (rc == 0)
		rc = rd_frame_send(fd, m->type, req, b.data, b.len, 0, IO_MS);
	rd_buf_free(&b);
	return rc;
}

static int fk_error(int fd, uint32_t req, uint16_t for_type, uint16_t code, const char *text)
{
	struct rd_msg m;

	rd_msg_init(&m, RD_MSG_ERROR);
	m.u.error.code = code;
	m.u.error.for_type = for_type;
	m.u.error.text = rd_str_c(text);
	return fk_send(fd, &m, req);
}

/* Expect HELLO, answer HELLO_OK; then expect NICK, answer WELCOME. */
static int fk_handshake(struct fake *fk, int fd, struct rd_frame_reader *r, int with_nick)
{
	struct rd_frame f;
	struct rd_msg m, out;

	if (fk_recv(fk, fd, r, &f, &m) != 0)
		return -1;
	if (m.type != RD_MSG_HELLO || f.hdr.req_id == 0 || m.u.hello.version_min != 1) {
		fk_fail(fk, "server: first frame is not a proper HELLO");
		return -1;
	}
	rd_msg_init(&out, RD_MSG_HELLO_OK);
	out.u.hello_ok.version = 1;
	out.u.hello_ok.max_payload = RD_MAX_PAYLOAD_DEFAULT;
	out.u.hello_ok.ping_interval_ms = 1234;
	out.u.hello_ok.ping_timeout_ms = 567;
	strcpy(out.u.hello_ok.software, "fake/1");
	if (fk_send(fd, &out, f.hdr.req_id) != 0)
		return -1;
	if (!with_nick)
		return 0;
	if (fk_recv(fk, fd, r, &f, &m) != 0)
		return -1;
	if (m.type != RD_MSG_NICK) {
		fk_fail(fk, "server: expected NICK");
		return -1;
	}
	snprintf(fk->nick, sizeof(fk->nick), "%s", m.u.nick.nick);
	rd_msg_init(&out, RD_MSG_WELCOME);
	strcpy(out.u.welcome.nick, m.u.nick.nick);
	out.u.welcome.client_id = 7;
	return fk_send(fd, &out, f.hdr.req_id);
}

/* Wait (bounded) until the client closes its side. */
static void fk_wait_eof(int fd)
{
	char buf[256];
	uint64_t end = rd_now_mono_ms() + IO_MS;

	while (rd_now_mono_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 100) > 0 && read(fd, buf, sizeof(buf)) <= 0)
			return;
	}
}

static void *fk_main(void *arg)
{
	struct fake *fk = arg;
	int i, fd;

	for (i = 0; i < fk->nconns; i++) {
		struct pollfd p = { .fd = fk->lfd, .events = POLLIN };

		if (poll(&p, 1, IO_MS) <= 0) {
			fk_fail(fk, "server: no connection came");
			break;
		}
		if (rd_net_accept(fk->lfd, &fd, NULL, 0, NULL) != 0) {
			fk_fail(fk, "server: accept failed");
			break;
		}
		fk->accepted++;
		fk->script(fk, fd, i);
		close(fd);
	}
	return NULL;
}

static void fake_start(struct fake *fk, script_fn script, int nconns)
{
	memset(fk, 0, sizeof(*fk));
	fk->script = script;
	fk->nconns = nconns;
	assert_int_equal(rd_net_listen("127.0.0.1", 0, 8, &fk->lfd, &fk->port), 0);
	assert_int_equal(pthread_create(&fk->th, NULL, fk_main, fk), 0);
}

static void fake_finish(struct fake *fk)
{
	assert_int_equal(pthread_join(fk->th, NULL), 0);
	close(fk->lfd);
	if (fk->fail[0])
		fail_msg("%s", fk->fail);
}

static struct rd_conn_options quick_opts(int request_ms)
{
	struct rd_conn_options o;

	rd_conn_options_defaults(&o);
	o.connect_timeout_ms = IO_MS;
	o.request_timeout_ms = request_ms;
	o.plain = 1; /* the fake server speaks plaintext frames; TLS has its own tests */
	return o;
}

/* ---- what the client saw ------------------------------------------------------------- */

struct seen {
	int n;
	uint16_t types[16];
	char text[16][64];
};

static void on_msg(struct rd_conn *c, const struct rd_msg *m, void *user)
{
	struct seen *s = user;
	size_t n = 0;
	const char *p = NULL;

	(void)c;
	if (s->n >= 16)
		return;
	switch (m->type) {
	case RD_MSG_ROOM_MSG:
		p = (const char *)m->u.room_msg.data.p;
		n = m->u.room_msg.data.n;
		break;
	case RD_MSG_PRESENCE:
		p = m->u.presence.nick;
		n = strlen(p);
		break;
	case RD_MSG_BROADCAST:
		p = m->u.broadcast.text.p;
		n = m->u.broadcast.text.n;
		break;
	case RD_MSG_ERROR:
		p = m->u.error.text.p;
		n = m->u.error.text.n;
		break;
	case RD_MSG_OFFER_ANSWERED:
		p = (const char *)m->u.offer_answered.data.p;
		n = m->u.offer_answered.data.n;
		break;
	default:
		break;
	}
	if (n >= sizeof(s->text[0]))
		n = sizeof(s->text[0]) - 1;
	if (n)
		memcpy(s->text[s->n], p, n);
	s->text[s->n][n] = '\0';
	s->types[s->n++] = m->type;
}

static void on_app(struct rd_conn *c, const struct rd_frame *f, void *user)
{
	struct seen *s = user;
	size_t n = f->len < 63 ? f->len : 63;

	(void)c;
	if (s->n >= 16)
		return;
	memcpy(s->text[s->n], f->payload, n);
	s->text[s->n][n] = '\0';
	s->types[s->n++] = f->hdr.type;
}

/* ---- scripts and tests ----------------------------------------------------------------- */

static void script_hello_nick(struct fake *fk, int fd, int index)
{
	struct rd_frame_reader *r = NULL;
	struct rd_frame f;
	struct rd_msg m;

	(void)index;
	if (rd_frame_reader_new(RD_MAX_PAYLOAD_DEFAULT, &r) != 0)
		return;
	if (fk_handshake(fk, fd, r, 1) == 0)
		fk->steps++;
	/* then BYE from rd_conn_close */
	if (fk_recv(fk, fd, r, &f, &m) == 0 && m.type == RD_MSG_BYE)
		fk->steps++;
	rd_frame_reader_free(r);
}

static void test_hello_and_nick(void **state)
{
	struct fake fk;
	struct rd_conn_options o = quick_opts(IO_MS);
	struct rd_conn *c = NULL;
	const struct rd_msg_hello_ok *info;
	uint16_t werr = 99;

	(void)state;
	fake_start(&fk, script_hello_nick, 1);
	assert_int_equal(rd_conn_open("127.0.0.1", fk.port, &o, NULL, &c, &werr), 0);
	assert_int_equal(werr, 0);
	assert_true(rd_conn_fd(c) >= 0);
	info = rd_conn_server_info(c);
	assert_int_equal(info->ping_interval_ms, 1234);
	assert_string_equal(info->software, "fake/1");
	assert_int_equal(rd_conn_register(c, "alice", &werr), 0);
	assert_string_equal(rd_conn_last_error(c), "");
	rd_conn_close(c);
	fake_finish(&fk);
	assert_string_equal(fk.nick, "alice");
	assert_int_equal(fk.steps, 2);
}

static void script_ping_while_waiting(struct fake *fk, int fd, int index)
{
	struct rd_frame_reader *r = NULL;
	struct rd_frame f;
	struct rd_msg m, out;
	uint32_t who_req;

	(void)index;
	if (rd_frame_reader_new(RD_MAX_PAYLOAD_DEFAULT, &r) != 0)
		return;
	if (fk_handshake(fk, fd, r, 1) != 0)
		goto out;
	if (fk_recv(fk, fd, r, &f, &m) != 0 || m.type != RD_MSG_WHO) {
		fk_fail(fk, "server: expected WHO");
		goto out;
	}
	who_req = f.hdr.req_id;
	/* Before answering, make sure the client answers a PING while it waits. */
	rd_msg_init(&out, RD_MSG_PING);
	out.u.ping.nonce = 0x1122334455667788ull;
	fk_send(fd, &out, 0);
	if (fk_recv(fk, fd, r, &f, &m) != 0 || m.type != RD_MSG_PONG) {
		fk_fail(fk, "server: expected PONG");
		goto out;
	}
	fk->pong_nonce = m.u.ping.nonce;
	fk->pong_req = f.hdr.req_id;
	rd_msg_init(&out, RD_MSG_WHO_LIST);
	strcpy(out.u.who_list.room, "general");
	{
		struct rd_who_entry e[2] = { { "alice", 1 }, { "bob", 2 } };

		out.u.who_list.count = 2;
		out.u.who_list.items = e;
		fk_send(fd, &out, who_req);
	}
	fk->steps++;
	fk_wait_eof(fd);
out:
	rd_frame_reader_free(r);
}

static void test_pong_while_waiting_for_reply(void **state)
{
	struct fake fk;
	struct rd_conn_options o = quick_opts(IO_MS);
	struct rd_conn *c = NULL;
	struct rd_msg who;
	uint16_t werr;

	(void)state;
	fake_start(&fk, script_ping_while_waiting, 1);
	assert_int_equal(rd_conn_open("127.0.0.1", fk.port, &o, NULL, &c, &werr), 0);
	assert_int_equal(rd_conn_register(c, "alice", &werr), 0);
	assert_int_equal(rd_conn_who(c, NULL, &who, &werr), 0);
	assert_int_equal(who.type, RD_MSG_WHO_LIST);
	assert_int_equal(who.u.who_list.count, 2);
	assert_string_equal(who.u.who_list.items[1].nick, "bob");
	rd_msg_clear(&who);
	rd_conn_close(c);
	fake_finish(&fk);
	assert_int_equal(fk.steps, 1);
	assert_true(fk.pong_nonce == 0x1122334455667788ull);
	assert_int_equal(fk.pong_req, 0);
}

static void script_error_reply(struct fake *fk, int fd, int index)
{
	struct rd_frame_reader *r = NULL;
	struct rd_frame f;
	struct rd_msg m;

	(void)index;
	if (rd_frame_reader_new(RD_MAX_PAYLOAD_DEFAULT, &r) != 0)
		return;
	if (fk_handshake(fk, fd, r, 1) != 0)
		goto out;
	if (fk_recv(fk, fd, r, &f, &m) != 0 || m.type != RD_MSG_JOIN) {
		fk_fail(fk, "server: expected JOIN");
		goto out;
	}
	fk_error(fd, f.hdr.req_id, RD_MSG_JOIN, RD_E_NO_SUCH_ROOM, "no room called nowhere");
	/* TELL to someone unknown: same path through rd_conn_tell */
	if (fk_recv(fk, fd, r, &f, &m) != 0 || m.type != RD_MSG_TELL) {
		fk_fail(fk, "server: expected TELL");
		goto out;
	}
	fk_error(fd, f.hdr.req_id, RD_MSG_TELL, RD_E_NO_SUCH_USER, "nobody called carol");
	fk->steps++;
	fk_wait_eof(fd);
out:
	rd_frame_reader_free(r);
}

static void test_error_reply_is_remote_with_code(void **state)
{
	struct fake fk;
	struct rd_conn_options o = quick_opts(IO_MS);
	struct rd_conn *c = NULL;
	uint32_t members = 5;
	uint16_t werr;

	(void)state;
	fake_start(&fk, script_error_reply, 1);
	assert_int_equal(rd_conn_open("127.0.0.1", fk.port, &o, NULL, &c, &werr), 0);
	assert_int_equal(rd_conn_register(c, "alice", &werr), 0);
	assert_int_equal(rd_conn_join(c, "nowhere", &members, &werr), RD_ERR_REMOTE);
	assert_int_equal(werr, RD_E_NO_SUCH_ROOM);
	assert_int_equal(members, 0);
	assert_string_equal(rd_conn_last_error(c), "no room called nowhere");
	assert_int_equal(rd_conn_tell(c, "carol", RD_KIND_TEXT, "hi", 2, &werr), RD_ERR_REMOTE);
	assert_int_equal(werr, RD_E_NO_SUCH_USER);
	assert_string_equal(rd_conn_last_error(c), "nobody called carol");
	rd_conn_close(c);
	fake_finish(&fk);
	assert_int_equal(fk.steps, 1);
}

static void script_hello_refused(struct fake *fk, int fd, int index)
{
	struct rd_frame_reader *r = NULL;
	struct rd_frame f;
	struct rd_msg m;

	(void)index;
	if (rd_frame_reader_new(RD_MAX_PAYLOAD_DEFAULT, &r) != 0)
		return;
	if (fk_recv(fk, fd, r, &f, &m) == 0 && m.type == RD_MSG_HELLO) {
		fk_error(fd, f.hdr.req_id, RD_MSG_HELLO, RD_E_SERVER_FULL, "full");
		fk->steps++;
	}
	rd_frame_reader_free(r);
}

static void test_hello_refused_gives_code(void **state)
{
	struct fake fk;
	struct rd_conn_options o = quick_opts(IO_MS);
	struct rd_conn *c = NULL;
	uint16_t werr = 0;

	(void)state;
	fake_start(&fk, script_hello_refused, 1);
	assert_int_equal(rd_conn_open("127.0.0.1", fk.port, &o, NULL, &c, &werr), RD_ERR_REMOTE);
	assert_null(c);
	assert_int_equal(werr, RD_E_SERVER_FULL);
	fake_finish(&fk);
	assert_int_equal(fk.steps, 1);
}

/* What a full server does: ERROR 205 with request id 0 as soon as it accepts, then close
 * (before the client's HELLO has even been read). */
static void script_full_on_accept(struct fake *fk, int fd, int index)
{
	(void)index;
	if (fk_error(fd, 0, 0, RD_E_SERVER_FULL, "too many connections") == 0)
		fk->steps++;
}

static void test_full_server_error_on_accept(void **state)
{
	struct fake fk;
	struct rd_conn_options o = quick_opts(IO_MS);
	struct rd_conn *c = NULL;
	uint16_t werr = 0;

	(void)state;
	fake_start(&fk, script_full_on_accept, 1);
	assert_int_equal(rd_conn_open("127.0.0.1", fk.port, &o, NULL, &c, &werr), RD_ERR_REMOTE);
	assert_null(c);
	assert_int_equal(werr, RD_E_SERVER_FULL);
	fake_finish(&fk);
	assert_int_equal(fk.steps, 1);
}

static void script_close_mid_request(struct fake *fk, int fd, int index)
{
	struct rd_frame_reader *r = NULL;
	struct rd_frame f;
	struct rd_msg m;

	(void)index;
	if (rd_frame_reader_new(RD_MAX_PAYLOAD_DEFAULT, &r) != 0)
		return;
	if (fk_handshake(fk, fd, r, 1) != 0)
		goto out;
	if (fk_recv(fk, fd, r, &f, &m) == 0 && m.type == RD_MSG_ROOMS)
		fk->steps++;
	/* and go away without answering: the caller closes fd */
out:
	rd_frame_reader_free(r);
}

static void test_server_closing_mid_request_is_closed(void **state)
{
	struct fake fk;
	struct rd_conn_options o = quick_opts(IO_MS);
	struct rd_conn *c = NULL;
	struct rd_msg rooms;
	uint16_t werr;
	uint64_t t0;

	(void)state;
	fake_start(&fk, script_close_mid_request, 1);
	assert_int_equal(rd_conn_open("127.0.0.1", fk.port, &o, NULL, &c, &werr), 0);
	assert_int_equal(rd_conn_register(c, "alice", &werr), 0);
	t0 = rd_now_mono_ms();
	assert_int_equal(rd_conn_rooms(c, &rooms, &werr), RD_ERR_CLOSED);
	assert_true(rd_now_mono_ms() - t0 < IO_MS);
	fake_finish(&fk);
	/* Everything after that is CLOSED too, and sending does not raise SIGPIPE. */
	assert_int_equal(rd_conn_poll(c, 100), RD_ERR_CLOSED);
	assert_int_equal(rd_conn_rooms(c, &rooms, &werr), RD_ERR_CLOSED);
	(void)rd_conn_say(c, RD_KIND_TEXT, "x", 1);
	(void)rd_conn_say(c, RD_KIND_TEXT, "x", 1);
	rd_conn_close(c);
	assert_int_equal(fk.steps, 1);
}

static void script_silent(struct fake *fk, int fd, int index)
{
	struct rd_frame_reader *r = NULL;
	struct rd_frame f;
	struct rd_msg m;

	(void)index;
	if (rd_frame_reader_new(RD_MAX_PAYLOAD_DEFAULT, &r) != 0)
		return;
	if (fk_handshake(fk, fd, r, 1) != 0)
		goto out;
	if (fk_recv(fk, fd, r, &f, &m) == 0 && m.type == RD_MSG_WHO)
		fk->steps++;
	fk_wait_eof(fd); /* never answers */
out:
	rd_frame_reader_free(r);
}

static void test_request_timeout(void **state)
{
	struct fake fk;
	struct rd_conn_options o = quick_opts(300);
	struct rd_conn *c = NULL;
	struct rd_msg who;
	uint16_t werr;
	uint64_t t0, dt;

	(void)state;
	fake_start(&fk, script_silent, 1);
	assert_int_equal(rd_conn_open("127.0.0.1", fk.port, &o, NULL, &c, &werr), 0);
	assert_int_equal(rd_conn_register(c, "alice", &werr), 0);
	t0 = rd_now_mono_ms();
	assert_int_equal(rd_conn_who(c, "general", &who, &werr), RD_ERR_TIMEOUT);
	dt = rd_now_mono_ms() - t0;
	assert_true(dt >= 250);
	assert_true(dt < 3000);
	/* poll with a small timeout returns in time, with nothing */
	t0 = rd_now_mono_ms();
	assert_int_equal(rd_conn_poll(c, 100), 0);
	assert_true(rd_now_mono_ms() - t0 < 2000);
	rd_conn_close(c);
	fake_finish(&fk);
	assert_int_equal(fk.steps, 1);
}

/* SHUTDOWN arrives while a request waits, then the server closes: the request fails with
 * CLOSED and the connection remembers that it was told why (rd_conn_shutdown_reason). */
static void script_shutdown_mid_request(struct fake *fk, int fd, int index)
{
	struct rd_frame_reader *r = NULL;
	struct rd_frame f;
	struct rd_msg m;
	static const char why[] = "maintenance";

	(void)index;
	if (rd_frame_reader_new(RD_MAX_PAYLOAD_DEFAULT, &r) != 0)
		return;
	if (fk_handshake(fk, fd, r, 1) != 0)
		goto out;
	if (fk_recv(fk, fd, r, &f, &m) == 0 && m.type == RD_MSG_ROOMS)
		fk->steps++;
	rd_msg_init(&m, RD_MSG_SHUTDOWN);
	m.u.bye.reason.p = (const void *)why;
	m.u.bye.reason.n = sizeof(why) - 1;
	fk_send(fd, &m, 0);
out:
	rd_frame_reader_free(r);
}

static void test_shutdown_reason_kept(void **state)
{
	struct fake fk;
	struct rd_conn_options o = quick_opts(IO_MS);
	struct rd_conn *c = NULL;
	struct rd_msg rooms;
	const char *why = NULL;
	uint16_t werr;

	(void)state;
	fake_start(&fk, script_shutdown_mid_request, 1);
	assert_int_equal(rd_conn_open("127.0.0.1", fk.port, &o, NULL, &c, &werr), 0);
	assert_int_equal(rd_conn_register(c, "alice", &werr), 0);
	assert_int_equal(rd_conn_shutdown_reason(c, &why), 0);
	assert_string_equal(why, "");
	assert_int_equal(rd_conn_rooms(c, &rooms, &werr), RD_ERR_CLOSED);
	fake_finish(&fk);
	assert_int_equal(rd_conn_shutdown_reason(c, &why), 1);
	assert_string_equal(why, "maintenance");
	rd_conn_close(c);
	assert_int_equal(fk.steps, 1);
}

/* A readable cancel_fd ends a wait at once with CANCELLED; the connection stays usable. */
static void test_cancel_fd_stops_a_wait(void **state)
{
	struct fake fk;
	struct rd_conn_options o = quick_opts(IO_MS);
	struct rd_conn *c = NULL;
	struct rd_msg who;
	uint16_t werr;
	uint64_t t0;
	int pfd[2];
	char b = 1;

	(void)state;
	assert_int_equal(pipe(pfd), 0);
	o.cancel_fd = pfd[0];
	fake_start(&fk, script_silent, 1);
	assert_int_equal(rd_conn_open("127.0.0.1", fk.port, &o, NULL, &c, &werr), 0);
	assert_int_equal(rd_conn_register(c, "alice", &werr), 0);
	assert_int_equal(write(pfd[1], &b, 1), 1);
	t0 = rd_now_mono_ms();
	assert_int_equal(rd_conn_who(c, "general", &who, &werr), RD_ERR_CANCELLED);
	assert_true(rd_now_mono_ms() - t0 < IO_MS);
	assert_int_equal(rd_conn_poll(c, -1), RD_ERR_CANCELLED);
	assert_int_equal(read(pfd[0], &b, 1), 1);
	assert_int_equal(rd_conn_poll(c, 50), 0);
	rd_conn_close(c);
	fake_finish(&fk);
	close(pfd[0]);
	close(pfd[1]);
	assert_int_equal(fk.steps, 1);
}

static void send_events(int fd)
{
	struct rd_msg m;
	static const char text[] = "hello room";

	rd_msg_init(&m, RD_MSG_ROOM_MSG);
	strcpy(m.u.room_msg.room, "general");
	strcpy(m.u.room_msg.from, "bob");
	m.u.room_msg.data.p = (const uint8_t *)text;
	m.u.room_msg.data.n = sizeof(text) - 1;
	fk_send(fd, &m, 0);
	rd_msg_init(&m, RD_MSG_PRESENCE);
	m.u.presence.event = RD_PRESENCE_JOINED;
	strcpy(m.u.presence.nick, "carol");
	strcpy(m.u.presence.room, "general");
	fk_send(fd, &m, 0);
	rd_frame_send(fd, APP_TYPE, 0, "app!", 4, 0, IO_MS);
	rd_msg_init(&m, RD_MSG_BROADCAST);
	m.u.broadcast.text = rd_str_c("maintenance at noon");
	fk_send(fd, &m, 0);
	fk_error(fd, 0, RD_MSG_SAY, RD_E_MESSAGE_TOO_LONG, "too long");
}

static void script_events(struct fake *fk, int fd, int index)
{
	struct rd_frame_reader *r = NULL;
	struct rd_frame f;
	struct rd_msg m, out;

	(void)index;
	if (rd_frame_reader_new(RD_MAX_PAYLOAD_DEFAULT, &r) != 0)
		return;
	if (fk_handshake(fk, fd, r, 1) != 0)
		goto out;
	/* events while the client waits for its JOINED */
	if (fk_recv(fk, fd, r, &f, &m) != 0 || m.type != RD_MSG_JOIN) {
		fk_fail(fk, "server: expected JOIN");
		goto out;
	}
	send_events(fd);
	rd_msg_init(&out, RD_MSG_JOINED);
	strcpy(out.u.joined.room, m.u.room.room);
	out.u.joined.members = 3;
	fk_send(fd, &out, f.hdr.req_id);
	/* a SAY goes with request id 0 */
	if (fk_recv(fk, fd, r, &f, &m) != 0 || m.type != RD_MSG_SAY) {
		fk_fail(fk, "server: expected SAY");
		goto out;
	}
	fk->say_req = f.hdr.req_id;
	if (m.u.say.data.n != 2 || memcmp(m.u.say.data.p, "hi", 2) != 0)
		fk_fail(fk, "server: SAY data differs");
	/* events while the client is idle, picked up by rd_conn_poll */
	send_events(fd);
	fk->steps++;
	fk_wait_eof(fd);
out:
	rd_frame_reader_free(r);
}

static void check_event_order(const struct seen *s, int first)
{
	assert_int_equal(s->types[first], RD_MSG_ROOM_MSG);
	assert_string_equal(s->text[first], "hello room");
	assert_int_equal(s->types[first + 1], RD_MSG_PRESENCE);
	assert_string_equal(s->text[first + 1], "carol");
	assert_int_equal(s->types[first + 2], APP_TYPE);
	assert_string_equal(s->text[first + 2], "app!");
	assert_int_equal(s->types[first + 3], RD_MSG_BROADCAST);
	assert_string_equal(s->text[first + 3], "maintenance at noon");
	assert_int_equal(s->types[first + 4], RD_MSG_ERROR);
	assert_string_equal(s->text[first + 4], "too long");
}

static void test_unsolicited_events_dispatched_in_order(void **state)
{
	struct fake fk;
	struct rd_conn_options o = quick_opts(IO_MS);
	struct rd_conn *c = NULL;
	struct seen s;
	struct rd_conn_callbacks cb = { .user = &s, .on_msg = on_msg, .on_app_frame = on_app };
	uint32_t members = 0;
	uint16_t werr;
	uint64_t end;

	(void)state;
	memset(&s, 0, sizeof(s));
	fake_start(&fk, script_events, 1);
	assert_int_equal(rd_conn_open("127.0.0.1", fk.port, &o, &cb, &c, &werr), 0);
	assert_int_equal(rd_conn_register(c, "alice", &werr), 0);
	assert_int_equal(rd_conn_join(c, "general", &members, &werr), 0);
	assert_int_equal(members, 3);
	assert_int_equal(s.n, 5);
	check_event_order(&s, 0);
	assert_string_equal(rd_conn_last_error(c), "too long");
	assert_int_equal(rd_conn_say(c, RD_KIND_TEXT, "hi", 2), 0);
	end = rd_now_mono_ms() + IO_MS;
	while (s.n < 10 && rd_now_mono_ms() < end)
		assert_int_equal(rd_conn_poll(c, 200), 0);
	assert_int_equal(s.n, 10);
	check_event_order(&s, 5);
	rd_conn_close(c);
	fake_finish(&fk);
	assert_int_equal(fk.steps, 1);
	assert_int_equal(fk.say_req, 0);
}

/* The non-blocking pair: a SAY queued with rd_conn_queue_msg reaches the server, and a
 * loop of poll + rd_conn_process delivers the events that follow, in order, without any
 * blocking call. */
static void test_nonblocking_queue_and_process(void **state)
{
	struct fake fk;
	struct rd_conn_options o = quick_opts(IO_MS);
	struct rd_conn *c = NULL;
	struct seen s;
	struct rd_conn_callbacks cb = { .user = &s, .on_msg = on_msg, .on_app_frame = on_app };
	struct rd_msg m;
	uint16_t werr;
	uint64_t end;

	(void)state;
	memset(&s, 0, sizeof(s));
	fake_start(&fk, script_events, 1);
	assert_int_equal(rd_conn_open("127.0.0.1", fk.port, &o, &cb, &c, &werr), 0);
	assert_int_equal(rd_conn_register(c, "alice", &werr), 0);
	assert_int_equal(rd_conn_join(c, "general", NULL, &werr), 0);
	assert_int_equal(s.n, 5);
	rd_msg_init(&m, RD_MSG_SAY);
	m.u.say.kind = RD_KIND_TEXT;
	m.u.say.data.p = (const uint8_t *)"hi";
	m.u.say.data.n = 2;
	assert_int_equal(rd_conn_queue_msg(c, &m, 0), 0);
	end = rd_now_mono_ms() + IO_MS;
	while (s.n < 10 && rd_now_mono_ms() < end) {
		struct pollfd p = { .fd = rd_conn_fd(c),
				    .events = (short)(POLLIN |
						      (rd_conn_want_write(c) ? POLLOUT : 0)) };
		assert_true(poll(&p, 1, 200) >= 0);
		assert_int_equal(rd_conn_process(c), 0);
	}
	assert_int_equal(s.n, 10);
	check_event_order(&s, 5);
	assert_int_equal(rd_conn_want_write(c), 0);
	rd_conn_close(c);
	fake_finish(&fk);
	assert_int_equal(fk.steps, 1);
}

/* Connection 0 redirects to the same fake (connection 1), which accepts. */
static void script_redirect_once(struct fake *fk, int fd, int index)
{
	struct rd_frame_reader *r = NULL;
	struct rd_frame f;
	struct rd_msg m, out;

	if (rd_frame_reader_new(RD_MAX_PAYLOAD_DEFAULT, &r) != 0)
		return;
	if (index == 0) {
		if (fk_recv(fk, fd, r, &f, &m) == 0 && m.type == RD_MSG_HELLO) {
			rd_msg_init(&out, RD_MSG_REDIRECT);
			strcpy(out.u.redirect.host, "127.0.0.1");
			out.u.redirect.port = fk->port;
			out.u.redirect.reason = rd_str_c("busy");
			fk_send(fd, &out, f.hdr.req_id);
			fk->steps++;
		}
		fk_wait_eof(fd);
	} else if (fk_handshake(fk, fd, r, 1) == 0) {
		fk->steps++;
		fk_wait_eof(fd);
	}
	rd_frame_reader_free(r);
}

static void test_redirect_followed(void **state)
{
	struct fake fk;
	struct rd_conn_options o = quick_opts(IO_MS);
	struct rd_conn *c = NULL;
	uint16_t werr;

	(void)state;
	fake_start(&fk, script_redirect_once, 2);
	assert_int_equal(rd_conn_open("127.0.0.1", fk.port, &o, NULL, &c, &werr), 0);
	assert_int_equal(rd_conn_register(c, "bob", &werr), 0);
	rd_conn_close(c);
	fake_finish(&fk);
	assert_int_equal(fk.accepted, 2);
	assert_int_equal(fk.steps, 2);
	assert_string_equal(fk.nick, "bob");
}

static void script_redirect_forever(struct fake *fk, int fd, int index)
{
	struct rd_frame_reader *r = NULL;
	struct rd_frame f;
	struct rd_msg m, out;

	(void)index;
	if (rd_frame_reader_new(RD_MAX_PAYLOAD_DEFAULT, &r) != 0)
		return;
	if (fk_recv(fk, fd, r, &f, &m) == 0 && m.type == RD_MSG_HELLO) {
		rd_msg_init(&out, RD_MSG_REDIRECT);
		strcpy(out.u.redirect.host, "127.0.0.1");
		out.u.redirect.port = fk->port;
		fk_send(fd, &out, f.hdr.req_id);
		fk->steps++;
	}
	rd_frame_reader_free(r);
}

static void test_redirect_loop_is_bounded(void **state)
{
	struct fake fk;
	struct rd_conn_options o = quick_opts(IO_MS);
	struct rd_conn *c = NULL;
	uint16_t werr;

	(void)state;
	/* the first connection and three redirects; a fifth is never made */
	fake_start(&fk, script_redirect_forever, 4);
	assert_int_equal(rd_conn_open("127.0.0.1", fk.port, &o, NULL, &c, &werr), RD_ERR_PROTOCOL);
	assert_null(c);
	fake_finish(&fk);
	assert_int_equal(fk.steps, 4);
}

static void test_connect_refused(void **state)
{
	struct rd_conn_options o = quick_opts(IO_MS);
	struct rd_conn *c = NULL;
	uint16_t werr, port;
	int lfd;

	(void)state;
	/* a port that was just free: bind one, close it, connect to it */
	assert_int_equal(rd_net_listen("127.0.0.1", 0, 1, &lfd, &port), 0);
	close(lfd);
	assert_int_equal(rd_conn_open("127.0.0.1", port, &o, NULL, &c, &werr), RD_ERR_REFUSED);
	assert_null(c);
	assert_int_equal(rd_conn_open("", port, &o, NULL, &c, &werr), RD_ERR_INVAL);
	assert_int_equal(rd_conn_open("127.0.0.1", 0, &o, NULL, &c, &werr), RD_ERR_INVAL);
}

/* The offer calls: OFFER waits for OFFER_PENDING (id and time left out), OFFER_ANSWERED
 * meanwhile reaches on_msg with the recipient's bytes, HOLD waits for OFFER_PENDING,
 * CANCEL for OFFER_RESULT, an ERROR reply is RD_ERR_REMOTE with its code; bad arguments
 * are refused before anything is sent. */
static void script_offers(struct fake *fk, int fd, int index)
{
	struct rd_frame_reader *r = NULL;
	struct rd_frame f;
	struct rd_msg m, out;

	(void)index;
	if (rd_frame_reader_new(RD_MAX_PAYLOAD_DEFAULT, &r) != 0)
		return;
	if (fk_handshake(fk, fd, r, 1) != 0)
		goto out;
	if (fk_recv(fk, fd, r, &f, &m) != 0 || m.type != RD_MSG_OFFER ||
	    m.u.offer.scope != RD_OFFER_TO_USER || strcmp(m.u.offer.to, "bob") != 0 ||
	    m.u.offer.app_type != APP_TYPE || m.u.offer.descriptor.n != 4) {
		fk_fail(fk, "server: expected OFFER to bob");
		goto out;
	}
	rd_msg_init(&out, RD_MSG_OFFER_ANSWERED); /* (early, to test the dispatch) */
	out.u.offer_answered =
		(struct rd_msg_offer_answered){ 7,   "bob",        RD_ANSWER_ACCEPT,
						100, rd_str_c(""), { (const uint8_t *)"ok", 2 } };
	fk_send(fd, &out, 0);
	rd_msg_init(&out, RD_MSG_OFFER_PENDING);
	out.u.offer_pending = (struct rd_msg_offer_pending){ 7, 60000, 1 };
	fk_send(fd, &out, f.hdr.req_id);
	if (fk_recv(fk, fd, r, &f, &m) != 0 || m.type != RD_MSG_OFFER ||
	    m.u.offer.scope != RD_OFFER_TO_ROOM) {
		fk_fail(fk, "server: expected a room OFFER");
		goto out;
	}
	fk_error(fd, f.hdr.req_id, RD_MSG_OFFER, RD_E_TOO_MANY_OFFERS,
		 "you are waiting on offer 7");
	if (fk_recv(fk, fd, r, &f, &m) != 0 || m.type != RD_MSG_OFFER_ANSWER ||
	    m.u.offer_answer.answer != RD_ANSWER_HOLD || m.u.offer_answer.hold_ms != 5000 ||
	    m.u.offer_answer.data.n != 3) {
		fk_fail(fk, "server: expected OFFER_ANSWER(HOLD)");
		goto out;
	}
	rd_msg_init(&out, RD_MSG_OFFER_PENDING);
	out.u.offer_pending = (struct rd_msg_offer_pending){ 9, 5000, 1 };
	fk_send(fd, &out, f.hdr.req_id);
	if (fk_recv(fk, fd, r, &f, &m) != 0 || m.type != RD_MSG_OFFER_CANCEL ||
	    m.u.offer_id.offer_id != 7) {
		fk_fail(fk, "server: expected OFFER_CANCEL");
		goto out;
	}
	rd_msg_init(&out, RD_MSG_OFFER_RESULT);
	out.u.offer_result =
		(struct rd_msg_offer_result){ 7, RD_OFFER_CANCELLED, "bob", rd_str_c(""), 1 };
	fk_send(fd, &out, f.hdr.req_id);
	fk->steps++;
	fk_wait_eof(fd);
out:
	rd_frame_reader_free(r);
}

static void test_offer_calls(void **state)
{
	struct fake fk;
	struct rd_conn_options o = quick_opts(IO_MS);
	struct rd_conn *c = NULL;
	struct seen s;
	struct rd_conn_callbacks cb = { .user = &s, .on_msg = on_msg };
	static uint8_t big[RD_DESCRIPTOR_MAX + 1];
	uint32_t id = 0, left = 0;
	uint16_t werr;

	(void)state;
	memset(&s, 0, sizeof(s));
	fake_start(&fk, script_offers, 1);
	assert_int_equal(rd_conn_open("127.0.0.1", fk.port, &o, &cb, &c, &werr), 0);
	assert_int_equal(rd_conn_register(c, "alice", &werr), 0);
	assert_int_equal(rd_conn_offer(c, "bob", APP_TYPE, 0, big, sizeof(big), &id, &left, &werr),
			 RD_ERR_INVAL);
	assert_int_equal(rd_conn_offer(c, "bob", APP_TYPE, 0, "duel", 4, &id, &left, &werr), 0);
	assert_int_equal(id, 7);
	assert_int_equal(left, 60000);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.types[0], RD_MSG_OFFER_ANSWERED);
	assert_string_equal(s.text[0], "ok");
	assert_int_equal(rd_conn_offer(c, NULL, APP_TYPE, 0, NULL, 0, &id, &left, &werr),
			 RD_ERR_REMOTE);
	assert_int_equal(werr, RD_E_TOO_MANY_OFFERS);
	assert_int_equal(id, 0);
	assert_string_equal(rd_conn_last_error(c), "you are waiting on offer 7");
	assert_int_equal(rd_conn_offer_answer(c, 9, RD_ANSWER_GONE, 0, NULL, NULL, 0, &left, &werr),
			 RD_ERR_INVAL);
	assert_int_equal(rd_conn_offer_answer(c, 9, RD_ANSWER_HOLD, 5000, "soon", "abc", 3, &left,
					      &werr),
			 0);
	assert_int_equal(left, 5000);
	assert_int_equal(rd_conn_offer_cancel(c, 7, &werr), 0);
	rd_conn_close(c);
	fake_finish(&fk);
	assert_null(fk.fail[0] ? fk.fail : NULL);
	assert_int_equal(fk.steps, 1);
}

/* rd_conn_offer_data while the server reads nothing (it pushes back): the call waits for
 * the socket, and meanwhile still reads, so a PING sent then is answered; every chunk
 * arrives once the server reads again. */
#define RELAY_CHUNKS 128 /* 32 MiB: more than the socket buffers hold */
static void script_offer_data(struct fake *fk, int fd, int index)
{
	struct rd_frame_reader *r = NULL;
	struct rd_frame f;
	struct rd_msg m, out;
	int chunks = 0;

	(void)index;
	if (rd_frame_reader_new(RD_MAX_PAYLOAD_DEFAULT, &r) != 0)
		return;
	if (fk_handshake(fk, fd, r, 1) != 0)
		goto out;
	rd_msg_init(&out, RD_MSG_PING);
	out.u.ping.nonce = 42;
	fk_send(fd, &out, 0);
	usleep(300 * 1000); /* reading nothing: the client's writes stall */
	while (chunks < RELAY_CHUNKS || fk->pong_nonce != 42) {
		if (fk_recv(fk, fd, r, &f, &m) != 0)
			goto out;
		if (m.type == RD_MSG_PONG)
			fk->pong_nonce = m.u.ping.nonce;
		else if (m.type == RD_MSG_OFFER_DATA &&
			 m.u.offer_data.offset == (uint64_t)chunks * RD_CHUNK_SIZE)
			chunks++;
		else
			fk_fail(fk, "server: unexpected frame during the relay");
	}
	fk->steps++;
	fk_wait_eof(fd);
out:
	rd_frame_reader_free(r);
}

static void test_offer_data_waits_and_still_reads(void **state)
{
	struct fake fk;
	struct rd_conn_options o = quick_opts(IO_MS);
	struct rd_conn *c = NULL;
	static uint8_t chunk[RD_CHUNK_SIZE];
	uint16_t werr;

	(void)state;
	fake_start(&fk, script_offer_data, 1);
	assert_int_equal(rd_conn_open("127.0.0.1", fk.port, &o, NULL, &c, &werr), 0);
	assert_int_equal(rd_conn_register(c, "alice", &werr), 0);
	for (int i = 0; i < RELAY_CHUNKS; i++)
		assert_int_equal(rd_conn_offer_data(c, 7, (uint64_t)i * RD_CHUNK_SIZE, chunk,
						    sizeof(chunk)),
				 0);
	assert_int_equal(rd_conn_offer_data(c, 7, 0, chunk, RD_CHUNK_SIZE + 1), RD_ERR_INVAL);
	rd_conn_close(c);
	fake_finish(&fk);
	assert_int_equal(fk.steps, 1);
	assert_true(fk.pong_nonce == 42);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_and_nick),
		cmocka_unit_test(test_pong_while_waiting_for_reply),
		cmocka_unit_test(test_error_reply_is_remote_with_code),
		cmocka_unit_test(test_hello_refused_gives_code),
		cmocka_unit_test(test_full_server_error_on_accept),
		cmocka_unit_test(test_server_closing_mid_request_is_closed),
		cmocka_unit_test(test_request_timeout),
		cmocka_unit_test(test_shutdown_reason_kept),
		cmocka_unit_test(test_cancel_fd_stops_a_wait),
		cmocka_unit_test(test_unsolicited_events_dispatched_in_order),
		cmocka_unit_test(test_nonblocking_queue_and_process),
		cmocka_unit_test(test_redirect_followed),
		cmocka_unit_test(test_redirect_loop_is_bounded),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_offer_calls),
		cmocka_unit_test(test_offer_data_waits_and_still_reads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
