/* test_server_live.c - the room core's behaviour, against real roomdrop-server processes.
 *
 * Each test starts $BUILD/roomdrop-server (found beside this binary: ../roomdrop-server)
 * on 127.0.0.1 with a kernel-chosen port, talks raw frames to it, and stops it by PID.
 * Every wait has a deadline. What is checked is what PROTOCOL.md promises.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "files/rdf_proto.h"
#include "rd_buf.h"
#include "rd_err.h"
#include "rd_frame.h"
#include "rd_link.h"
#include "rd_msg.h"
#include "rd_net.h"
#include "rd_tls.h"
#include "rd_zip.h"

#define WAIT_MS 5000

static char g_bindir[PATH_MAX];
static int g_plain;                /* the next server runs with --tls off, peers plaintext */
static struct rd_tls_ctx *g_cctx;  /* the peers' TLS client context (no pin, no identity) */
static struct rd_tls_ctx *g_idctx; /* when set: the next peer_connect shows this key */
static rlim_t g_nofile;            /* when set, the next server starts with this descriptor limit */

/* ---- server processes -------------------------------------------------------------- */

struct srv {
	pid_t pid;
	uint16_t port;
	char dir[PATH_MAX];
	char ctl[PATH_MAX + 16];
};

/* Servers a test started and has not stopped: the teardown stops them by PID, so a
 * failing assertion (which leaves the test early) never leaves a process behind. */
static struct srv *g_running[8];

static void srv_track(struct srv *s, int on)
{
	for (size_t i = 0; i < 8; i++)
		if (on ? g_running[i] == NULL : g_running[i] == s) {
			g_running[i] = on ? s : NULL;
			return;
		}
}

static void srv_start(struct srv *s, ...)
{
	char portfile[PATH_MAX + 16], bin[PATH_MAX + 32], store[PATH_MAX + 16];
	const char *argv[40];
	int argc = 0;
	va_list ap;

	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/rd-live-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(portfile, sizeof(portfile), "%s/port", s->dir);
	snprintf(s->ctl, sizeof(s->ctl), "%s/ctl.sock", s->dir);
	snprintf(store, sizeof(store), "%s/store", s->dir);
	snprintf(bin, sizeof(bin), "%s/../roomdrop-server", g_bindir);
	argv[argc++] = bin;
	argv[argc++] = "--headless";
	argv[argc++] = "--listen";
	argv[argc++] = "127.0.0.1:0";
	argv[argc++] = "--port-file";
	argv[argc++] = portfile;
	argv[argc++] = "--ctl-socket";
	argv[argc++] = s->ctl;
	argv[argc++] = "--store";
	argv[argc++] = store;
	argv[argc++] = "--log-level";
	argv[argc++] = "warn";
	if (g_plain) {
		argv[argc++] = "--tls";
		argv[argc++] = "off";
	}
	va_start(ap, s);
	for (const char *a; (a = va_arg(ap, const char *)) != NULL && argc < 38;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;

	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid > 0)
		srv_track(s, 1);
	if (s->pid == 0) {
		char log[PATH_MAX + 16];
		snprintf(log, sizeof(log), "%s/server.log", s->dir);
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (g_nofile) {
			struct rlimit rl;
			getrlimit(RLIMIT_NOFILE, &rl);
			rl.rlim_cur = g_nofile;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 1000; i++) { /* 10 s */
		FILE *f = fopen(portfile, "r");
		unsigned p = 0;
		if (f) {
			int ok = fscanf(f, "%u", &p) == 1;
			fclose(f);
			if (ok && p) {
				s->port = (uint16_t)p;
				return;
			}
		}
		int st;
		if (waitpid(s->pid, &st, WNOHANG) == s->pid)
			fail_msg("server exited at start (status %d); see %s/server.log", st,
				 s->dir);
		usleep(10000);
	}
	fail_msg("server did not report its port");
}

/* SIGTERM, then wait (bounded); returns the exit status (or -1 if it had to be killed). */
static int srv_stop(struct srv *s)
{
	int st = 0;
	if (s->pid <= 0)
		return 0;
	srv_track(s, 0);
	kill(s->pid, SIGTERM);
	for (int i = 0; i < 1000; i++) {
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			char cmd[PATH_MAX + 64];
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				/* a failed stop says why: the server's own words (a sanitizer's
				 * report included) before its folder goes */
				snprintf(cmd, sizeof(cmd), "tail -n 80 '%s/server.log' >&2",
					 s->dir);
				if (system(cmd) != 0)
					print_message("no log in %s\n", s->dir);
			}
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
			if (system(cmd) != 0)
				print_message("could not remove %s\n", s->dir);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(10000);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &st, 0);
	s->pid = 0;
	return -1;
}

static int teardown_servers(void **state)
{
	(void)state;
	g_plain = 0; /* (a test that failed half way may have left it set) */
	for (size_t i = 0; i < 8; i++)
		if (g_running[i]) {
			print_message(
				"stopping server %d left by the test; its log: %s/server.log\n",
				(int)g_running[i]->pid, g_running[i]->dir);
			srv_stop(g_running[i]);
		}
	return 0;
}

/* ---- raw peers ------------------------------------------------------------------------ */

/* Peers speak TLS to the server (which runs with TLS unless g_plain, like a real one);
 * their bytes go through a link like the library's, and they check no certificate:
 * these tests are about what the server does with frames. */

struct peer {
	int fd;
	struct rd_link *l;
	int answer_pings;
	unsigned pings; /* PINGs received */
};

/* A received message, copied out of the reader's buffer. */
struct got {
	uint16_t type;
	uint32_t req;
	struct rd_msg m;
	uint8_t payload[4096];
};

/* Connect, with TLS unless plain; 0 or the handshake's error. */
static int peer_connect_as(struct peer *p, uint16_t port, int plain)
{
	struct rd_tls_conn *t;
	int fd;
	memset(p, 0, sizeof(*p));
	p->answer_pings = 1;
	p->fd = -1;
	assert_int_equal(rd_net_connect("127.0.0.1", port, WAIT_MS, &fd), 0);
	if (plain)
		assert_int_equal(rd_tls_conn_plain_new(fd, &t), 0);
	else
		assert_int_equal(rd_tls_conn_tls_new(g_idctx ? g_idctx : g_cctx, fd, NULL, &t), 0);
	assert_int_equal(rd_link_new(t, NULL, &p->l), 0);
	p->fd = rd_link_fd(p->l);
	return plain ? 0 : rd_link_handshake(p->l, WAIT_MS);
}

static void peer_connect(struct peer *p, uint16_t port)
{
	assert_int_equal(peer_connect_as(p, port, g_plain), 0);
}

static void peer_close(struct peer *p)
{
	rd_link_free(p->l);
	p->l = NULL;
	p->fd = -1;
}

static void peer_send_raw(struct peer *p, const void *b, size_t n)
{
	assert_int_equal(rd_link_send_stream(p->l, b, n, -1, 0, 0, WAIT_MS, NULL), 0);
}

static void peer_send(struct peer *p, const struct rd_msg *m, uint32_t req)
{
	struct rd_buf b;
	rd_buf_init(&b, 0);
	assert_int_equal(rd_msg_frame(&b, m, req, 0), 0);
	peer_send_raw(p, b.data, b.len);
	rd_buf_free(&b);
}

/* Next frame other than PING (answered) within ms: 0, RD_ERR_TIMEOUT or RD_ERR_CLOSED... */
static int peer_next(struct peer *p, int ms, struct got *g)
{
	uint64_t end = rd_now_mono_ms() + (uint64_t)ms;
	for (;;) {
		struct rd_frame f;
		int64_t left = (int64_t)(end - rd_now_mono_ms());
		int rc = rd_link_recv(p->l, left > 0 ? (int)left : 0, &f);
		if (rc)
			return rc;
		if (f.hdr.type == RD_MSG_PING)
			p->pings++;
		if (f.hdr.type == RD_MSG_PING && p->answer_pings) {
			struct rd_msg in, out;
			assert_int_equal(rd_msg_decode(RD_MSG_PING, f.payload, f.len, &in), 0);
			rd_msg_init(&out, RD_MSG_PONG);
			out.u.ping.nonce = in.u.ping.nonce;
			peer_send(p, &out, 0);
			continue;
		}
		if (f.hdr.type == RD_MSG_PING)
			continue;
		memset(g, 0, sizeof(*g));
		g->type = f.hdr.type;
		g->req = f.hdr.req_id;
		assert_true(f.len <= sizeof(g->payload));
		memcpy(g->payload, f.payload, f.len);
		assert_int_equal(rd_msg_decode(f.hdr.type, g->payload, f.len, &g->m), 0);
		return 0;
	}
}

/* The next frame must be of this type (and request id, if req != UINT32_MAX). */
static void expect(struct peer *p, uint16_t type, uint32_t req, struct got *g)
{
	int rc = peer_next(p, WAIT_MS, g);
	if (rc)
		fail_msg("waiting for %s: %s", rd_msg_type_name(type), rd_strerror(rc));
	if (g->type != type)
		fail_msg("expected %s, got %s (code %u)", rd_msg_type_name(type),
			 rd_msg_type_name(g->type) ? rd_msg_type_name(g->type) : "?",
			 g->type == RD_MSG_ERROR ? g->m.u.error.code : 0);
	if (req != UINT32_MAX)
		assert_int_equal(g->req, req);
	/* list replies (which allocate) are read with rd_frame_recv and cleared by the test */
}

static void expect_error(struct peer *p, uint32_t req, uint16_t code)
{
	struct got g;
	int rc = peer_next(p, WAIT_MS, &g);
	if (rc)
		fail_msg("waiting for ERROR %u: %s", code, rd_strerror(rc));
	if (g.type != RD_MSG_ERROR)
		fail_msg("expected ERROR %u, got %s", code, rd_msg_type_name(g.type));
	assert_int_equal(g.m.u.error.code, code);
	assert_int_equal(g.req, req);
}

/* Nothing but PINGs arrives within ms. */
static void expect_quiet(struct peer *p, int ms)
{
	struct got g;
	int rc = peer_next(p, ms, &g);
	if (rc == 0)
		fail_msg("expected silence, got %s", rd_msg_type_name(g.type));
	assert_int_equal(rc, RD_ERR_TIMEOUT);
}

static void expect_closed(struct peer *p)
{
	struct got g;
	int rc;
	do
		rc = peer_next(p, WAIT_MS, &g);
	while (rc == 0);
	assert_true(rc == RD_ERR_CLOSED || rc == RD_ERR_MALFORMED || rc == RD_ERR_SYSTEM ||
		    rc == RD_ERR_CRYPTO);
}

static void say_hello(struct peer *p)
{
	struct rd_msg m;
	struct got g;
	rd_msg_init(&m, RD_MSG_HELLO);
	m.u.hello.version_min = 1;
	m.u.hello.version_max = 1;
	snprintf(m.u.hello.software, sizeof(m.u.hello.software), "test");
	peer_send(p, &m, 1);
	expect(p, RD_MSG_HELLO_OK, 1, &g);
	assert_int_equal(g.m.u.hello_ok.version, 1);
}

static void send_nick(struct peer *p, const char *nick, uint32_t req)
{
	struct rd_msg m;
	rd_msg_init(&m, RD_MSG_NICK);
	snprintf(m.u.nick.nick, sizeof(m.u.nick.nick), "%s", nick);
	peer_send(p, &m, req);
}

/* NICK with any bytes: the strict encoder would refuse the invalid ones */
static void send_nick_raw(struct peer *p, const char *nick, size_t n, uint32_t req)
{
	struct rd_buf pb, fb;
	rd_buf_init(&pb, 0);
	rd_buf_init(&fb, 0);
	assert_int_equal(rd_buf_put_str(&pb, nick, n), 0);
	assert_int_equal(rd_frame_append(&fb, RD_MSG_NICK, req, pb.data, pb.len, 0), 0);
	peer_send_raw(p, fb.data, fb.len);
	rd_buf_free(&fb);
	rd_buf_free(&pb);
}

static void send_join(struct peer *p, const char *room, uint32_t req)
{
	struct rd_msg m;
	rd_msg_init(&m, RD_MSG_JOIN);
	snprintf(m.u.room.room, sizeof(m.u.room.room), "%s", room);
	peer_send(p, &m, req);
}

static void send_say(struct peer *p, const char *text, uint32_t req)
{
	struct rd_msg m;
	rd_msg_init(&m, RD_MSG_SAY);
	m.u.say.kind = RD_KIND_TEXT;
	m.u.say.data.p = (const uint8_t *)text;
	m.u.say.data.n = strlen(text);
	peer_send(p, &m, req);
}

/* Connect, HELLO, NICK, and JOIN room (if not NULL). */
static void enter(struct peer *p, uint16_t port, const char *nick, const char *room)
{
	struct got g;
	peer_connect(p, port);
	say_hello(p);
	send_nick(p, nick, 2);
	expect(p, RD_MSG_WELCOME, 2, &g);
	assert_string_equal(g.m.u.welcome.nick, nick);
	if (room) {
		send_join(p, room, 3);
		expect(p, RD_MSG_JOINED, 3, &g);
		assert_string_equal(g.m.u.joined.room, room);
	}
}

/* A server with alice and bob in the lobby (most offer tests), and its end. */
static void pair_start(struct srv *s, struct peer *a, struct peer *b)
{
	srv_start(s, NULL);
	enter(a, s->port, "alice", NULL);
	enter(b, s->port, "bob", NULL);
}

static void pair_stop(struct srv *s, struct peer *a, struct peer *b)
{
	peer_close(a);
	peer_close(b);
	assert_int_equal(srv_stop(s), 0);
}

static void expect_presence(struct peer *p, uint8_t event, const char *nick, const char *reason)
{
	struct got g;
	expect(p, RD_MSG_PRESENCE, 0, &g);
	assert_int_equal(g.m.u.presence.event, event);
	assert_string_equal(g.m.u.presence.nick, nick);
	if (reason) {
		char buf[256];
		snprintf(buf, sizeof(buf), "%.*s", (int)g.m.u.presence.reason.n,
			 g.m.u.presence.reason.p);
		if (!strstr(buf, reason))
			fail_msg("presence reason '%s' lacks '%s'", buf, reason);
	}
}

static void expect_room_text(struct peer *p, const char *from, const char *text)
{
	struct got g;
	expect(p, RD_MSG_ROOM_MSG, 0, &g);
	assert_string_equal(g.m.u.room_msg.from, from);
	assert_int_equal(g.m.u.room_msg.data.n, strlen(text));
	assert_memory_equal(g.m.u.room_msg.data.p, text, strlen(text));
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_registration_order_and_notices(void **state)
{
	struct srv s;
	struct peer a, b, c;
	struct got g;
	(void)state;
	srv_start(&s, NULL);
	enter(&a, s.port, "alice", "general");

	/* a connection that has only said HELLO is unknown to everybody */
	peer_connect(&b, s.port);
	say_hello(&b);
	expect_quiet(&a, 300);
	/* after NICK: "bob connected", to alice, not to bob */
	send_nick(&b, "bob", 2);
	expect(&b, RD_MSG_WELCOME, 2, &g);
	expect_presence(&a, RD_PRESENCE_CONNECTED, "bob", NULL);
	/* bob joins: alice hears it, bob gets only his reply */
	send_join(&b, "general", 3);
	expect(&b, RD_MSG_JOINED, 3, &g);
	assert_int_equal(g.m.u.joined.members, 2);
	expect_presence(&a, RD_PRESENCE_JOINED, "bob", NULL);
	expect_quiet(&b, 200);
	/* carol in another room hears connects, not joins of general */
	enter(&c, s.port, "carol", "random");
	expect_presence(&a, RD_PRESENCE_CONNECTED, "carol", NULL);
	expect_presence(&b, RD_PRESENCE_CONNECTED, "carol", NULL);
	expect_quiet(&a, 200);
	/* switching rooms: the old room hears LEFT, the new one JOINED */
	send_join(&b, "random", 4);
	expect(&b, RD_MSG_JOINED, 4, &g);
	expect_presence(&a, RD_PRESENCE_LEFT, "bob", NULL);
	expect_presence(&c, RD_PRESENCE_JOINED, "bob", NULL);
	/* disconnecting is announced to everyone */
	peer_close(&b);
	expect_presence(&a, RD_PRESENCE_DISCONNECTED, "bob", NULL);
	expect_presence(&c, RD_PRESENCE_DISCONNECTED, "bob", NULL);
	peer_close(&a);
	peer_close(&c);
	assert_int_equal(srv_stop(&s), 0);
}

static void test_nickname_refusals(void **state)
{
	struct srv s;
	struct peer a, b;
	struct got g;
	struct rd_msg m;
	(void)state;
	srv_start(&s, NULL);
	enter(&a, s.port, "alice", NULL);
	peer_connect(&b, s.port);
	say_hello(&b);
	send_nick(&b, "ALICE", 10); /* unique ignoring case */
	expect_error(&b, 10, RD_E_NICK_TAKEN);
	send_nick_raw(&b, "a b", 3, 11);
	expect_error(&b, 11, RD_E_NICK_INVALID);
	send_nick_raw(&b, "Server", 6, 12);
	expect_error(&b, 12, RD_E_NICK_RESERVED);
	send_nick_raw(&b, "-dash", 5, 13);
	expect_error(&b, 13, RD_E_NICK_INVALID);
	send_nick_raw(&b, "", 0, 14);
	expect_error(&b, 14, RD_E_NICK_LENGTH);
	/* 33 bytes do not fit the nickname field: refused, never accepted */
	send_nick_raw(&b, "abcdefghijabcdefghijabcdefghijabc", 33, 15);
	assert_int_equal(peer_next(&b, WAIT_MS, &g), 0);
	assert_int_equal(g.type, RD_MSG_ERROR);
	assert_int_equal(g.req, 15);
	assert_true(g.m.u.error.code == RD_E_NICK_LENGTH || g.m.u.error.code == RD_E_MALFORMED);
	/* nobody heard of any of that */
	expect_quiet(&a, 200);
	/* and the connection is still good for a valid name */
	send_nick(&b, "bob", 17);
	expect(&b, RD_MSG_WELCOME, 17, &g);
	expect_presence(&a, RD_PRESENCE_CONNECTED, "bob", NULL);
	send_nick(&b, "robert", 18);
	expect_error(&b, 18, RD_E_ALREADY_REGISTERED);
	rd_msg_init(&m, RD_MSG_HELLO);
	m.u.hello.version_min = m.u.hello.version_max = 1;
	peer_send(&b, &m, 19);
	expect_error(&b, 19, RD_E_UNEXPECTED);
	pair_stop(&s, &a, &b);
}

static void test_nothing_before_registration(void **state)
{
	struct srv s;
	struct peer p;
	struct rd_msg m;
	(void)state;
	srv_start(&s, NULL);
	peer_connect(&p, s.port);
	send_join(&p, "general", 5);
	expect_error(&p, 5, RD_E_NOT_REGISTERED);
	send_nick(&p, "early", 6);
	expect_error(&p, 6, RD_E_UNEXPECTED); /* HELLO first */
	say_hello(&p);
	send_say(&p, "hi", 7);
	expect_error(&p, 7, RD_E_NOT_REGISTERED);
	rd_msg_init(&m, RD_MSG_ROOMS);
	peer_send(&p, &m, 8);
	expect_error(&p, 8, RD_E_NOT_REGISTERED);
	/* an application frame too */
	rd_msg_init(&m, RDF_MSG_LIST);
	peer_send(&p, &m, 9);
	expect_error(&p, 9, RD_E_NOT_REGISTERED);
	peer_close(&p);
	assert_int_equal(srv_stop(&s), 0);
}

static void test_version_mismatch_is_refused(void **state)
{
	struct srv s;
	struct peer p;
	struct rd_msg m;
	(void)state;
	srv_start(&s, NULL);
	peer_connect(&p, s.port);
	rd_msg_init(&m, RD_MSG_HELLO);
	m.u.hello.version_min = 2;
	m.u.hello.version_max = 3;
	peer_send(&p, &m, 1);
	expect_error(&p, 1, RD_E_BAD_VERSION);
	expect_closed(&p);
	peer_close(&p);
	assert_int_equal(srv_stop(&s), 0);
}

static void test_room_isolation_and_private_messages(void **state)
{
	struct srv s;
	struct peer a, b, c;
	struct got g;
	struct rd_msg m;
	(void)state;
	srv_start(&s, NULL);
	enter(&a, s.port, "alice", "general");
	enter(&b, s.port, "bob", "general");
	enter(&c, s.port, "carol", "random");
	/* drain presence */
	expect_presence(&a, RD_PRESENCE_CONNECTED, "bob", NULL);
	expect_presence(&a, RD_PRESENCE_JOINED, "bob", NULL);
	expect_presence(&a, RD_PRESENCE_CONNECTED, "carol", NULL);
	expect_presence(&b, RD_PRESENCE_CONNECTED, "carol", NULL);

	send_say(&a, "hello general", 0);
	expect_room_text(&b, "alice", "hello general");
	expect_quiet(&c, 300);
	expect_quiet(&a, 100); /* not echoed to the sender */
	send_say(&c, "hello random", 21);
	expect(&c, RD_MSG_OK, 21, &g); /* a non-zero request id asks for OK */
	expect_quiet(&a, 200);
	expect_quiet(&b, 100);

	rd_msg_init(&m, RD_MSG_TELL);
	snprintf(m.u.tell.to, sizeof(m.u.tell.to), "CAROL");
	m.u.tell.data.p = (const uint8_t *)"psst";
	m.u.tell.data.n = 4;
	peer_send(&a, &m, 22);
	expect(&a, RD_MSG_OK, 22, &g);
	expect(&c, RD_MSG_PRIVATE_MSG, 0, &g);
	assert_string_equal(g.m.u.private_msg.from, "alice");
	assert_memory_equal(g.m.u.private_msg.data.p, "psst", 4);
	expect_quiet(&b, 200);
	snprintf(m.u.tell.to, sizeof(m.u.tell.to), "nobody");
	peer_send(&a, &m, 23);
	expect_error(&a, 23, RD_E_NO_SUCH_USER);

	/* who and rooms */
	rd_msg_init(&m, RD_MSG_WHO);
	peer_send(&a, &m, 24);
	{
		struct rd_frame f;
		struct rd_msg w;
		assert_int_equal(rd_link_recv(a.l, WAIT_MS, &f), 0);
		assert_int_equal(f.hdr.type, RD_MSG_WHO_LIST);
		assert_int_equal(rd_msg_decode(f.hdr.type, f.payload, f.len, &w), 0);
		assert_int_equal(w.u.who_list.count, 2);
		int seen = 0;
		for (uint32_t i = 0; i < w.u.who_list.count; i++)
			seen |= (strcmp(w.u.who_list.items[i].nick, "alice") == 0 ? 1 : 0) |
				(strcmp(w.u.who_list.items[i].nick, "bob") == 0 ? 2 : 0);
		assert_int_equal(seen, 3);
		rd_msg_clear(&w);
		rd_msg_init(&m, RD_MSG_ROOMS);
		peer_send(&a, &m, 25);
		assert_int_equal(rd_link_recv(a.l, WAIT_MS, &f), 0);
		assert_int_equal(f.hdr.type, RD_MSG_ROOM_LIST);
		assert_int_equal(rd_msg_decode(f.hdr.type, f.payload, f.len, &w), 0);
		assert_int_equal(w.u.room_list.count, 2);
		for (uint32_t i = 0; i < 2; i++)
			assert_int_equal(w.u.room_list.items[i].members,
					 !strcmp(w.u.room_list.items[i].name, "general") ? 2 : 1);
		rd_msg_clear(&w);
	}
	send_join(&a, "nowhere", 26);
	expect_error(&a, 26, RD_E_NO_SUCH_ROOM);
	peer_close(&a);
	peer_close(&b);
	peer_close(&c);
	assert_int_equal(srv_stop(&s), 0);
}

static void test_heartbeat_disconnects_silent_client(void **state)
{
	struct srv s;
	struct peer a, b;
	(void)state;
	srv_start(&s, "--ping-interval", "200ms", "--ping-timeout", "300ms", NULL);
	enter(&a, s.port, "alice", "general");
	enter(&b, s.port, "bob", "general");
	b.answer_pings = 0;
	expect_presence(&a, RD_PRESENCE_CONNECTED, "bob", NULL);
	expect_presence(&a, RD_PRESENCE_JOINED, "bob", NULL);
	/* alice answers her pings (peer_next does) and stays; bob does not */
	expect_presence(&a, RD_PRESENCE_TIMED_OUT, "bob", "ping timeout");
	expect_closed(&b);
	expect_quiet(&a, 800); /* alice survives several intervals */
	pair_stop(&s, &a, &b);
}

/* PROTOCOL.md section 8: the first PING comes one ping interval after registration, never
 * at once. The timer thread runs every 10 ms here (a 100 ms ping timeout) while 300
 * clients register one after another; with a 10-minute interval none may see a PING. */
static void test_no_ping_right_after_registering(void **state)
{
	enum {
		N = 300
	};
	static struct peer p[N];
	struct srv s;
	unsigned pings = 0;
	char nick[32];
	(void)state;
	/* (a short ping timeout makes the timer tick every 10 ms; the registration timeout
	 * stays long, so that 300 TLS handshakes on a busy machine all get to register) */
	srv_start(&s, "--ping-interval", "10m", "--ping-timeout", "100ms", "--register-timeout",
		  "30s", "--max-clients", "400", NULL);
	for (int i = 0; i < N; i++) {
		snprintf(nick, sizeof(nick), "early%d", i);
		enter(&p[i], s.port, nick, NULL);
	}
	for (int i = 0; i < N; i++) {
		struct got g;
		while (peer_next(&p[i], i == 0 ? 300 : 0, &g) == 0)
			; /* presence notices of the later ones */
		pings += p[i].pings;
		peer_close(&p[i]);
	}
	assert_int_equal(pings, 0);
	assert_int_equal(srv_stop(&s), 0);
}

/* Section 10: a connection the server cannot take for want of file descriptors gets
 * ERROR 205 SERVER_FULL and a close, never silence in the backlog; the condition is
 * logged once per episode, not once per attempt; when descriptors are free again new
 * connections are served. */
static void test_descriptor_limit_refuses_with_205(void **state)
{
	enum {
		MAX = 200
	};
	static struct peer p[MAX];
	struct srv s;
	struct peer x;
	struct got g;
	int n = 0, refused = 0;
	char nick[32], cmd[PATH_MAX * 2];
	(void)state;
	g_nofile = 64;
	srv_start(&s, "--log-level", "info", NULL);
	g_nofile = 0;
	/* fill the server up: each registered client costs it one descriptor */
	for (n = 0; n < MAX; n++) {
		struct rd_msg m;
		int rc;
		peer_connect(&p[n], s.port);
		rd_msg_init(&m, RD_MSG_HELLO);
		m.u.hello.version_min = 1;
		m.u.hello.version_max = 1;
		peer_send(&p[n], &m, 1);
		rc = peer_next(&p[n], WAIT_MS, &g);
		assert_int_equal(rc, 0);
		if (g.type == RD_MSG_ERROR) {
			assert_int_equal(g.m.u.error.code, RD_E_SERVER_FULL);
			expect_closed(&p[n]);
			peer_close(&p[n]);
			break;
		}
		assert_int_equal(g.type, RD_MSG_HELLO_OK);
		snprintf(nick, sizeof(nick), "fd%d", n);
		send_nick(&p[n], nick, 2);
		expect(&p[n], RD_MSG_WELCOME, 2, &g);
	}
	assert_true(n > 10 && n < MAX);
	/* more attempts at the limit: each is told, promptly */
	for (int i = 0; i < 5; i++) {
		peer_connect(&x, s.port);
		expect_error(&x, 0, RD_E_SERVER_FULL);
		expect_closed(&x);
		peer_close(&x);
		refused++;
	}
	/* free some descriptors: served again */
	for (int i = 0; i < 5; i++)
		peer_close(&p[i]);
	/* (the server closes a descriptor when the last thread lets go of its client) */
	for (int i = 0;; i++) {
		struct rd_msg m;
		peer_connect(&x, s.port);
		rd_msg_init(&m, RD_MSG_HELLO);
		m.u.hello.version_min = 1;
		m.u.hello.version_max = 1;
		peer_send(&x, &m, 1);
		assert_int_equal(peer_next(&x, WAIT_MS, &g), 0);
		if (g.type == RD_MSG_HELLO_OK)
			break;
		assert_int_equal(g.m.u.error.code, RD_E_SERVER_FULL);
		peer_close(&x);
		assert_true(i < 50);
		usleep(100 * 1000);
	}
	send_nick(&x, "afterwards", 2);
	expect(&x, RD_MSG_WELCOME, 2, &g);
	peer_close(&x);
	for (int i = 5; i < n; i++)
		peer_close(&p[i]);
	/* a warning per episode, not per refused connection: at least the 5 refusals above and
	 * the retries shared one (a descriptor the server opens for a moment, e.g. under a
	 * sanitizer, can end an episode early while filling up: then 2) */
	snprintf(cmd, sizeof(cmd),
		 "n=$(grep -c 'new connections are refused' '%s/server.log'); "
		 "test \"$n\" -ge 1 && test \"$n\" -le 2",
		 s.dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(refused, 5);
	assert_int_equal(srv_stop(&s), 0);
}

static void test_unregistered_connection_times_out(void **state)
{
	struct srv s;
	struct peer p;
	(void)state;
	srv_start(&s, "--register-timeout", "300ms", NULL);
	peer_connect(&p, s.port);
	expect_error(&p, 0, RD_E_REGISTER_TIMEOUT);
	expect_closed(&p);
	peer_close(&p);
	assert_int_equal(srv_stop(&s), 0);
}

static void raw_frame(struct peer *p, const uint8_t *hdr16, const void *payload, size_t n)
{
	peer_send_raw(p, hdr16, 16);
	if (n)
		peer_send_raw(p, payload, n);
}

static void test_hostile_frames_leave_others_served(void **state)
{
	struct srv s;
	struct peer a, b, x;
	struct rd_frame_hdr h;
	uint8_t hdr[16];
	(void)state;
	srv_start(&s, NULL);
	enter(&a, s.port, "alice", "general");
	enter(&b, s.port, "bob", "general");
	expect_presence(&a, RD_PRESENCE_CONNECTED, "bob", NULL);
	expect_presence(&a, RD_PRESENCE_JOINED, "bob", NULL);

	/* bad magic: ERROR then closed */
	peer_connect(&x, s.port);
	peer_send_raw(&x, "GET / HTTP/1.0\r\n\r\n", 18);
	expect_error(&x, 0, RD_E_BAD_MAGIC);
	expect_closed(&x);
	peer_close(&x);
	/* wrong version in the header */
	peer_connect(&x, s.port);
	memset(&h, 0, sizeof(h));
	h.type = RD_MSG_HELLO;
	rd_frame_hdr_encode(&h, hdr);
	hdr[2] = 9;
	raw_frame(&x, hdr, NULL, 0);
	expect_error(&x, 0, RD_E_BAD_VERSION);
	expect_closed(&x);
	peer_close(&x);
	/* a length far above the maximum: refused before anything is allocated */
	peer_connect(&x, s.port);
	h.len = 0xFFFFFFF0u;
	rd_frame_hdr_encode(&h, hdr);
	raw_frame(&x, hdr, NULL, 0);
	expect_error(&x, 0, RD_E_TOO_BIG);
	expect_closed(&x);
	peer_close(&x);
	/* unknown type and lying payload: ERROR, and the connection goes on */
	peer_connect(&x, s.port);
	say_hello(&x);
	h.type = 0x0FEE;
	h.len = 3;
	h.req_id = 40;
	rd_frame_hdr_encode(&h, hdr);
	raw_frame(&x, hdr, "abc", 3);
	expect_error(&x, 40, RD_E_UNKNOWN_TYPE);
	h.type = RD_MSG_NICK;
	h.len = 4;
	h.req_id = 41;
	rd_frame_hdr_encode(&h, hdr);
	raw_frame(&x, hdr,
		  "\xff\xff"
		  "ab",
		  4); /* a str claiming 65535 bytes */
	expect_error(&x, 41, RD_E_MALFORMED);
	send_nick(&x, "xavier", 42);
	{
		struct got g;
		expect(&x, RD_MSG_WELCOME, 42, &g);
	}
	/* corrupt compressed payload: ERROR, closed */
	h.type = RD_MSG_SAY;
	h.flags = RD_FLAG_COMPRESSED;
	h.len = 12;
	h.req_id = 43;
	rd_frame_hdr_encode(&h, hdr);
	raw_frame(&x, hdr, "\x00\x00\x10\x00garbage!", 12);
	/* the stream is lost at that point: the ERROR cannot echo a request id */
	expect_error(&x, 0, RD_E_BAD_COMPRESSION);
	expect_closed(&x);
	peer_close(&x);
	/* a connection that sends half a frame and vanishes */
	peer_connect(&x, s.port);
	peer_send_raw(&x, "RD\x01", 3);
	peer_close(&x);

	/* alice and bob never noticed anything but xavier coming and going */
	expect_presence(&a, RD_PRESENCE_CONNECTED, "xavier", NULL);
	expect_presence(&a, RD_PRESENCE_DISCONNECTED, "xavier", NULL);
	expect_presence(&b, RD_PRESENCE_CONNECTED, "xavier", NULL);
	expect_presence(&b, RD_PRESENCE_DISCONNECTED, "xavier", NULL);
	send_say(&a, "still here?", 0);
	expect_room_text(&b, "alice", "still here?");
	pair_stop(&s, &a, &b);
}

/* ---- PROTOCOL.md, in its own words (issue 8, item 8) -------------------------------- */

/* HELLO with these features (RD_FEAT_QUIET for a one-shot session). */
static void say_hello_features(struct peer *p, uint32_t features)
{
	struct rd_msg m;
	struct got g;
	rd_msg_init(&m, RD_MSG_HELLO);
	m.u.hello.version_min = 1;
	m.u.hello.version_max = 1;
	m.u.hello.features = features;
	peer_send(p, &m, 1);
	expect(p, RD_MSG_HELLO_OK, 1, &g);
}

/* A frame of any type with a str field of n bytes of 'x' (the strict encoder would refuse). */
static void send_long_str(struct peer *p, uint16_t type, size_t n, uint32_t req)
{
	struct rd_buf pb, fb;
	char *v = malloc(n ? n : 1);
	assert_non_null(v);
	memset(v, 'x', n);
	rd_buf_init(&pb, 0);
	rd_buf_init(&fb, 0);
	assert_int_equal(rd_buf_put_str(&pb, v, n), 0);
	assert_int_equal(rd_frame_append(&fb, type, req, pb.data, pb.len, 0), 0);
	peer_send_raw(p, fb.data, fb.len);
	rd_buf_free(&fb);
	rd_buf_free(&pb);
	free(v);
}

/* Sections 4 and 7: a nickname over 32 bytes is 202 NICK_LENGTH, a room name over 32
 * bytes is 300 NO_SUCH_ROOM, chat data over 65536 bytes is 303 MESSAGE_TOO_LONG; each
 * answers the request and the connection goes on. */
static void test_over_long_fields_get_their_own_codes(void **state)
{
	struct srv s;
	struct peer a;
	struct got g;
	struct rd_msg m;
	static uint8_t big[RD_CHAT_MAX + 1];
	(void)state;
	srv_start(&s, NULL);
	peer_connect(&a, s.port);
	say_hello(&a);
	send_long_str(&a, RD_MSG_NICK, 33, 2);
	expect_error(&a, 2, RD_E_NICK_LENGTH);
	send_nick(&a, "alice", 3);
	expect(&a, RD_MSG_WELCOME, 3, &g);
	send_long_str(&a, RD_MSG_JOIN, 40, 4);
	expect_error(&a, 4, RD_E_NO_SUCH_ROOM);
	send_long_str(&a, RD_MSG_WHO, 40, 5);
	expect_error(&a, 5, RD_E_NO_SUCH_ROOM);
	send_join(&a, "general", 6);
	expect(&a, RD_MSG_JOINED, 6, &g);
	rd_msg_init(&m, RD_MSG_SAY);
	m.u.say.data.p = big;
	m.u.say.data.n = sizeof(big);
	{
		/* the strict encoder refuses it, so build the payload by hand */
		struct rd_buf pb, fb;
		rd_buf_init(&pb, 0);
		rd_buf_init(&fb, 0);
		assert_int_equal(rd_buf_put_u8(&pb, RD_KIND_BINARY), 0);
		assert_int_equal(rd_buf_put_bytes(&pb, big, sizeof(big)), 0);
		assert_int_equal(rd_frame_append(&fb, RD_MSG_SAY, 7, pb.data, pb.len, 0), 0);
		peer_send_raw(&a, fb.data, fb.len);
		rd_buf_free(&fb);
		rd_buf_free(&pb);
	}
	expect_error(&a, 7, RD_E_MESSAGE_TOO_LONG);
	send_say(&a, "still connected", 8);
	expect(&a, RD_MSG_OK, 8, &g);
	peer_close(&a);
	assert_int_equal(srv_stop(&s), 0);
}

/* Sections 10 and 16: a type the server has no handler for from a client (server-to-client
 * messages, CTL_* over TCP, P2P_HELLO, which only peers speak) is
 * 104 UNKNOWN_TYPE, registered or not; an ERROR from a client is never answered. */
static void test_types_without_a_handler_are_104_and_errors_unanswered(void **state)
{
	static const uint16_t types[] = { RD_MSG_WELCOME,  RD_MSG_ROOM_MSG,       RD_MSG_CTL_LIST,
					  RD_MSG_CTL_KICK, RD_MSG_OFFER_ANSWERED, RD_MSG_P2P_HELLO,
					  RD_MSG_OK,       RD_MSG_SHUTDOWN,       RD_MSG_CTL_INFO };
	struct srv s;
	struct peer a;
	struct rd_frame_hdr h;
	uint8_t hdr[16];
	struct got g;
	(void)state;
	srv_start(&s, NULL);
	peer_connect(&a, s.port);
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
			memset(&h, 0, sizeof(h));
			h.type = types[i];
			h.req_id = (uint32_t)(100 * round + i + 10);
			rd_frame_hdr_encode(&h, hdr);
			raw_frame(&a, hdr, NULL, 0);
			expect_error(&a, h.req_id, RD_E_UNKNOWN_TYPE);
		}
		if (round == 0) {
			say_hello(&a);
			send_nick(&a, "alice", 2);
			expect(&a, RD_MSG_WELCOME, 2, &g);
		}
	}
	/* an ERROR (with or without a request id) gets nothing back */
	{
		struct rd_msg m;
		rd_msg_init(&m, RD_MSG_ERROR);
		m.u.error.code = RD_E_INTERNAL;
		m.u.error.text = rd_str_c("bounce me");
		peer_send(&a, &m, 77);
		peer_send(&a, &m, 0);
	}
	expect_quiet(&a, 300);
	peer_close(&a);
	assert_int_equal(srv_stop(&s), 0);
}

/* Section 5: a compressed frame whose declared original length is above the maximum
 * payload is 103 TOO_BIG; bytes after the end of the zlib stream are 106 BAD_COMPRESSION;
 * both close the connection. */
static void test_compressed_frame_limits(void **state)
{
	struct srv s;
	struct peer a;
	struct got g;
	struct rd_frame_hdr h;
	uint8_t hdr[16], pay[64];
	struct rd_buf z;
	(void)state;
	srv_start(&s, NULL);
	/* original length 2 MiB > 1 MiB */
	enter(&a, s.port, "alice", NULL);
	memset(&h, 0, sizeof(h));
	h.type = RD_MSG_SAY;
	h.flags = RD_FLAG_COMPRESSED;
	h.req_id = 9;
	h.len = 12;
	rd_frame_hdr_encode(&h, hdr);
	memcpy(pay,
	       "\x00\x20\x00\x00"
	       "xxxxxxxx",
	       12);
	raw_frame(&a, hdr, pay, 12);
	expect_error(&a, 0, RD_E_TOO_BIG);
	expect_closed(&a);
	peer_close(&a);
	/* a valid stream followed by junk */
	enter(&a, s.port, "bob", NULL);
	rd_buf_init(&z, 0);
	{
		uint8_t plain[200];
		memset(plain, 'a', sizeof(plain));
		plain[0] = RD_KIND_TEXT;
		rd_be32_put(plain + 1, sizeof(plain) - 5);
		int used = 0;
		assert_int_equal(rd_zip_compress(plain, sizeof(plain), 1, &z, &used), 0);
		assert_true(used); /* the 4-byte original length and the stream */
	}
	assert_int_equal(rd_buf_put(&z, "JUNK", 4), 0);
	h.len = (uint32_t)z.len;
	rd_frame_hdr_encode(&h, hdr);
	raw_frame(&a, hdr, z.data, z.len);
	rd_buf_free(&z);
	expect_error(&a, 0, RD_E_BAD_COMPRESSION);
	expect_closed(&a);
	(void)g;
	peer_close(&a);
	assert_int_equal(srv_stop(&s), 0);
}

/* Section 9: with request id 0, a request that succeeds gets no OK, while a request whose
 * result carries data (JOINED, ROOM_LIST, WHO_LIST) still gets it, with request id 0. */
static void test_request_id_zero(void **state)
{
	struct srv s;
	struct peer a;
	struct got g;
	struct rd_msg m;
	(void)state;
	srv_start(&s, NULL);
	enter(&a, s.port, "alice", NULL);
	send_join(&a, "general", 0);
	expect(&a, RD_MSG_JOINED, 0, &g);
	rd_msg_init(&m, RD_MSG_ROOMS);
	peer_send(&a, &m, 0);
	{
		struct rd_frame f;
		assert_int_equal(rd_link_recv(a.l, WAIT_MS, &f), 0);
		assert_int_equal(f.hdr.type, RD_MSG_ROOM_LIST);
		assert_int_equal(f.hdr.req_id, 0);
	}
	send_say(&a, "no reply to this", 0);
	rd_msg_init(&m, RD_MSG_LEAVE);
	peer_send(&a, &m, 0);
	expect_quiet(&a, 300);
	send_say(&a, "in no room now", 0); /* fails, so it is answered */
	expect_error(&a, 0, RD_E_NOT_IN_ROOM);
	peer_close(&a);
	assert_int_equal(srv_stop(&s), 0);
}

/* Section 10: chat data is relayed unchanged, whatever its kind. */
static void test_say_kind_is_relayed_unchanged(void **state)
{
	struct srv s;
	struct peer a, b;
	struct got g;
	struct rd_msg m;
	(void)state;
	srv_start(&s, NULL);
	enter(&a, s.port, "alice", "general");
	enter(&b, s.port, "bob", "general");
	expect_presence(&a, RD_PRESENCE_CONNECTED, "bob", NULL);
	expect_presence(&a, RD_PRESENCE_JOINED, "bob", NULL);
	rd_msg_init(&m, RD_MSG_SAY);
	m.u.say.kind = 7;
	m.u.say.data.p = (const uint8_t *)"\x01\x02";
	m.u.say.data.n = 2;
	peer_send(&b, &m, 0);
	expect(&a, RD_MSG_ROOM_MSG, 0, &g);
	assert_int_equal(g.m.u.room_msg.kind, 7);
	assert_int_equal(g.m.u.room_msg.data.n, 2);
	rd_msg_init(&m, RD_MSG_TELL);
	snprintf(m.u.tell.to, sizeof(m.u.tell.to), "alice");
	m.u.tell.kind = 9;
	m.u.tell.data.p = (const uint8_t *)"z";
	m.u.tell.data.n = 1;
	peer_send(&b, &m, 0);
	expect(&a, RD_MSG_PRIVATE_MSG, 0, &g);
	assert_int_equal(g.m.u.private_msg.kind, 9);
	pair_stop(&s, &a, &b);
}

/* Section 10: after BYE the departure is announced and the nickname is free at once, even
 * while the quitting client keeps its end of the connection open; a connection that just
 * goes away is announced with reason "connection lost". */
static void test_bye_frees_the_nickname_at_once(void **state)
{
	struct srv s;
	struct peer a, b, b2, c;
	struct got g;
	struct rd_msg m;
	(void)state;
	srv_start(&s, NULL);
	enter(&a, s.port, "alice", "general");
	enter(&b, s.port, "bob", "general");
	expect_presence(&a, RD_PRESENCE_CONNECTED, "bob", NULL);
	expect_presence(&a, RD_PRESENCE_JOINED, "bob", NULL);
	rd_msg_init(&m, RD_MSG_BYE);
	m.u.bye.reason = rd_str_c("lunch");
	peer_send(&b, &m, 0);
	/* bob does not close: the server must not wait for him (within 1 s, not ~2 s) */
	{
		int rc = peer_next(&a, 1000, &g);
		if (rc)
			fail_msg("no departure within 1 s of BYE: %s", rd_strerror(rc));
		assert_int_equal(g.type, RD_MSG_PRESENCE);
		assert_int_equal(g.m.u.presence.event, RD_PRESENCE_DISCONNECTED);
		assert_string_equal(g.m.u.presence.nick, "bob");
	}
	peer_connect(&b2, s.port);
	say_hello(&b2);
	send_nick(&b2, "bob", 2);
	expect(&b2, RD_MSG_WELCOME, 2, &g);
	expect_closed(&b);
	peer_close(&b);
	expect_presence(&a, RD_PRESENCE_CONNECTED, "bob", NULL);
	/* no BYE: "connection lost" */
	enter(&c, s.port, "carol", NULL);
	expect_presence(&a, RD_PRESENCE_CONNECTED, "carol", NULL);
	peer_close(&c);
	expect_presence(&a, RD_PRESENCE_DISCONNECTED, "carol", "connection lost");
	peer_close(&b2);
	peer_close(&a);
	assert_int_equal(srv_stop(&s), 0);
}

/* Section 10: at most --msg-rate chat messages per second (bursts of twice that); the
 * rest get ERROR 108 RATE with their request id, are not relayed, and the connection
 * stays. */
static void test_chat_rate_limit(void **state)
{
	struct srv s;
	struct peer a, b;
	struct got g;
	unsigned ok = 0, refused = 0, relayed = 0;
	(void)state;
	srv_start(&s, "--msg-rate", "5", NULL);
	enter(&a, s.port, "alice", "general");
	enter(&b, s.port, "bob", "general");
	expect_presence(&a, RD_PRESENCE_CONNECTED, "bob", NULL);
	expect_presence(&a, RD_PRESENCE_JOINED, "bob", NULL);
	uint64_t t0 = rd_now_mono_ms();
	for (uint32_t i = 1; i <= 40; i++)
		send_say(&b, "flood", 100 + i);
	for (int i = 0; i < 40; i++) {
		int rc = peer_next(&b, WAIT_MS, &g);
		assert_int_equal(rc, 0);
		if (g.type == RD_MSG_OK)
			ok++;
		else if (g.type == RD_MSG_ERROR && g.m.u.error.code == RD_E_RATE)
			refused++;
		else
			fail_msg("unexpected %s", rd_msg_type_name(g.type));
	}
	uint64_t took = rd_now_mono_ms() - t0;
	while (peer_next(&a, 300, &g) == 0)
		if (g.type == RD_MSG_ROOM_MSG)
			relayed++;
	/* a bucket of 10, plus at most what refilled (5 a second) while they were judged */
	assert_true(ok >= 10);
	if (ok > 10 + 5 * (took / 1000 + 1))
		fail_msg("%u messages passed in %llu ms at 5 per second", ok,
			 (unsigned long long)took);
	assert_true(refused > 0);
	assert_int_equal(ok + refused, 40);
	assert_int_equal(relayed, ok);
	pair_stop(&s, &a, &b);
}

/* Sections 2 and 10: a session that says RD_FEAT_QUIET in HELLO (a one-shot command) is
 * never announced: no CONNECTED, JOINED or DISCONNECTED; what it says still arrives, and
 * it is listed by WHO. */
static void test_quiet_session_is_not_announced(void **state)
{
	struct srv s;
	struct peer a, q;
	struct got g;
	(void)state;
	srv_start(&s, NULL);
	enter(&a, s.port, "alice", "general");
	peer_connect(&q, s.port);
	say_hello_features(&q, RD_FEAT_QUIET);
	send_nick(&q, "oneshot", 2);
	expect(&q, RD_MSG_WELCOME, 2, &g);
	send_join(&q, "general", 3);
	expect(&q, RD_MSG_JOINED, 3, &g);
	assert_int_equal(g.m.u.joined.members, 2);
	send_say(&q, "uploaded a file", 0);
	expect_room_text(&a, "oneshot", "uploaded a file");
	peer_close(&q);
	expect_quiet(&a, 500);
	peer_close(&a);
	assert_int_equal(srv_stop(&s), 0);
}

/* Sections 6 and 10: before WELCOME the largest payload accepted is 1024 bytes (103 and
 * close above it), and a message that needs registration is refused (107) without being
 * decoded. */
static void test_small_frames_only_before_registration(void **state)
{
	struct srv s;
	struct peer a;
	struct rd_frame_hdr h;
	uint8_t hdr[16];
	static uint8_t pay[2048];
	(void)state;
	srv_start(&s, NULL);
	peer_connect(&a, s.port);
	say_hello(&a);
	/* a WHO list payload that does not even decode: refused for its state first */
	memset(&h, 0, sizeof(h));
	h.type = RD_MSG_WHO;
	h.req_id = 5;
	h.len = 3;
	rd_frame_hdr_encode(&h, hdr);
	raw_frame(&a, hdr, "\xff\xff\xff", 3);
	expect_error(&a, 5, RD_E_NOT_REGISTERED);
	h.type = RD_MSG_SAY;
	h.req_id = 6;
	h.len = sizeof(pay);
	rd_frame_hdr_encode(&h, hdr);
	raw_frame(&a, hdr, pay, sizeof(pay));
	expect_error(&a, 0, RD_E_TOO_BIG);
	expect_closed(&a);
	peer_close(&a);
	assert_int_equal(srv_stop(&s), 0);
}

/* ---- the transport (PROTOCOL.md section 2.1) ------------------------------------------ */

/* Section 2.1: a plaintext client reaching a TLS server is answered, in plaintext, with
 * ERROR 109 TLS_REQUIRED and the connection is closed; others are served meanwhile. */
static void test_plaintext_client_to_tls_server_gets_109(void **state)
{
	struct srv s;
	struct peer p, a;
	struct rd_msg m;
	(void)state;
	srv_start(&s, NULL);
	assert_int_equal(peer_connect_as(&p, s.port, 1), 0);
	rd_msg_init(&m, RD_MSG_HELLO);
	m.u.hello.version_min = 1;
	m.u.hello.version_max = 1;
	peer_send(&p, &m, 1);
	expect_error(&p, 0, RD_E_TLS_REQUIRED);
	expect_closed(&p);
	peer_close(&p);
	enter(&a, s.port, "alice", NULL);
	peer_close(&a);
	assert_int_equal(srv_stop(&s), 0);
}

/* Section 2.1: a TLS client reaching a plaintext server fails its handshake and can tell
 * that the server spoke plaintext roomdrop (the server's ERROR 101 says so). */
static void test_tls_client_to_plaintext_server_is_told(void **state)
{
	struct srv s;
	struct peer p;
	(void)state;
	g_plain = 1;
	srv_start(&s, NULL);
	g_plain = 0;
	assert_int_equal(peer_connect_as(&p, s.port, 0), RD_ERR_PROTOCOL);
	assert_int_equal(rd_link_peer_spoke(p.l), RD_TLS_SNIFF_FRAME);
	assert_non_null(strstr(rd_link_reason(p.l), "plaintext"));
	peer_close(&p);
	assert_int_equal(srv_stop(&s), 0);
}

/* The plaintext subset: the same behaviour with --tls off. */
static void test_plaintext_registration_order(void **state)
{
	g_plain = 1;
	test_registration_order_and_notices(state);
	g_plain = 0;
}

static void test_plaintext_hostile_frames(void **state)
{
	g_plain = 1;
	test_hostile_frames_leave_others_served(state);
	g_plain = 0;
}

static int run_ctl(struct srv *s, const char *args)
{
	char cmd[PATH_MAX * 4];
	snprintf(cmd, sizeof(cmd), "'%s/../roomdrop-server' ctl --socket '%s' %s >/dev/null 2>&1",
		 g_bindir, s->ctl, args);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_kick_and_broadcast_through_ctl(void **state)
{
	struct srv s;
	struct peer a, b, c;
	struct got g;
	(void)state;
	srv_start(&s, NULL);
	enter(&a, s.port, "alice", "general");
	enter(&b, s.port, "bob", "general");
	enter(&c, s.port, "carol", "random");
	expect_presence(&a, RD_PRESENCE_CONNECTED, "bob", NULL);
	expect_presence(&a, RD_PRESENCE_JOINED, "bob", NULL);
	expect_presence(&a, RD_PRESENCE_CONNECTED, "carol", NULL);
	expect_presence(&b, RD_PRESENCE_CONNECTED, "carol", NULL);

	assert_int_equal(run_ctl(&s, "broadcast 'hello all'"), 0);
	expect(&a, RD_MSG_BROADCAST, 0, &g);
	assert_int_equal(g.m.u.broadcast.scope, RD_SCOPE_ALL);
	assert_int_equal(g.m.u.broadcast.text.n, 9);
	assert_true(g.m.u.broadcast.time_ms > 1700000000000ull);
	expect(&b, RD_MSG_BROADCAST, 0, &g);
	expect(&c, RD_MSG_BROADCAST, 0, &g);
	assert_int_equal(run_ctl(&s, "broadcast --room random 'only random'"), 0);
	expect(&c, RD_MSG_BROADCAST, 0, &g);
	assert_int_equal(g.m.u.broadcast.scope, RD_SCOPE_ROOM);
	assert_string_equal(g.m.u.broadcast.target, "random");
	expect_quiet(&a, 200);
	assert_int_equal(run_ctl(&s, "broadcast --to bob 'just bob'"), 0);
	expect(&b, RD_MSG_BROADCAST, 0, &g);
	assert_int_equal(g.m.u.broadcast.scope, RD_SCOPE_USER);
	expect_quiet(&a, 200);
	assert_int_equal(run_ctl(&s, "broadcast --room nowhere x"), 5);
	assert_int_equal(run_ctl(&s, "kick nobody"), 5);
	assert_int_equal(run_ctl(&s, "frobnicate"), 2);
	assert_int_equal(run_ctl(&s, "list"), 0);

	assert_int_equal(run_ctl(&s, "kick bob --reason 'too loud'"), 0);
	expect(&b, RD_MSG_KICKED, 0, &g);
	assert_int_equal(g.m.u.kicked.reason.n, 8);
	assert_memory_equal(g.m.u.kicked.reason.p, "too loud", 8);
	expect_closed(&b);
	peer_close(&b);
	expect_presence(&a, RD_PRESENCE_KICKED, "bob", "too loud");
	expect_presence(&c, RD_PRESENCE_KICKED, "bob", "too loud");
	/* no ban: bob may come back */
	enter(&b, s.port, "bob", "general");
	expect_presence(&a, RD_PRESENCE_CONNECTED, "bob", NULL);
	peer_close(&a);
	peer_close(&b);
	peer_close(&c);
	assert_int_equal(srv_stop(&s), 0);
}

/* Run `roomdrop-server ARGS` and keep the first line of its output (or of the whole output
 * with all = 1) in out; returns the exit code. */
static int run_capture(const char *args, int all, char *out, size_t cap)
{
	char cmd[PATH_MAX * 4];
	size_t n = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "'%s/../roomdrop-server' %s 2>/dev/null", g_bindir, args);
	out[0] = '\0';
	assert_non_null(f = popen(cmd, "r"));
	while (n + 1 < cap && fgets(out + n, (int)(cap - n), f)) {
		n += strlen(out + n);
		if (!all)
			break;
	}
	while (fgetc(f) != EOF) /* the rest, so that the child never blocks on a full pipe */
		;
	if (!all && n && out[n - 1] == '\n')
		out[n - 1] = '\0';
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Section 16: `ctl info` (CTL_INFO -> CTL_SERVER_INFO) shows the server's own key
 * fingerprint, the same as `roomdrop-server fingerprint` prints, and its counters; `ctl
 * list` shows a TLS peer without a client certificate with an empty KEY ("-"). */
static void test_ctl_info_shows_the_server_fingerprint(void **state)
{
	struct srv s;
	struct peer a, b;
	char args[PATH_MAX * 2], fp[128], line[128], info[4096];
	(void)state;
	srv_start(&s, NULL);
	enter(&a, s.port, "alice", "general");
	enter(&b, s.port, "bob", "general");
	expect_presence(&a, RD_PRESENCE_CONNECTED, "bob", NULL);

	snprintf(args, sizeof(args), "fingerprint --store '%s/store'", s.dir);
	assert_int_equal(run_capture(args, 0, fp, sizeof(fp)), 0);
	assert_int_equal(strlen(fp), RD_TLS_FP_TEXT_LEN - 1);
	snprintf(args, sizeof(args), "ctl --socket '%s' info", s.ctl);
	assert_int_equal(run_capture(args, 1, info, sizeof(info)), 0);
	snprintf(line, sizeof(line), "fingerprint: %s\n", fp);
	if (!strstr(info, line))
		fail_msg("no '%s' in ctl info:\n%s", line, info);
	assert_non_null(strstr(info, "tls: on\n"));
	assert_non_null(strstr(info, "clients: 2\n"));
	assert_non_null(strstr(info, "registered: 2\n"));
	snprintf(line, sizeof(line), "listen: 127.0.0.1:%u\n", s.port);
	if (!strstr(info, line))
		fail_msg("no '%s' in ctl info:\n%s", line, info);
	assert_non_null(strstr(info, "software: roomdrop-server/"));

	/* the peers have no client certificate: the KEY line under each shows "-" */
	snprintf(args, sizeof(args), "ctl --socket '%s' list", s.ctl);
	assert_int_equal(run_capture(args, 1, info, sizeof(info)), 0);
	char *p = strstr(info, "\n                       KEY\n");
	if (!p)
		fail_msg("no KEY heading in ctl list:\n%s", info);
	int dashes = 0;
	while ((p = strstr(p + 1, "\n                       -\n")) != NULL)
		dashes++;
	if (dashes != 2)
		fail_msg("wanted a '-' KEY line for each of 2 peers in ctl list:\n%s", info);
	peer_close(&a);
	peer_close(&b);
	assert_int_equal(srv_stop(&s), 0);

	/* plaintext (--tls off): no key to show */
	g_plain = 1;
	srv_start(&s, NULL);
	g_plain = 0;
	snprintf(args, sizeof(args), "ctl --socket '%s' info", s.ctl);
	assert_int_equal(run_capture(args, 1, info, sizeof(info)), 0);
	if (!strstr(info, "\ntls: off") || !strstr(info, "\nfingerprint: -\n"))
		fail_msg("a plaintext server's ctl info:\n%s", info);
	assert_int_equal(srv_stop(&s), 0);
}

static void test_stalled_reader_does_not_delay_others(void **state)
{
	struct srv s;
	struct peer a, b, z;
	char text[1024];
	(void)state;
	srv_start(&s, "--out-limit", "256K", "--msg-rate", "0", NULL);
	enter(&z, s.port, "zombie", "general");
	int small = 4096;
	setsockopt(z.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	enter(&a, s.port, "alice", "general");
	enter(&b, s.port, "bob", "general");
	expect_presence(&a, RD_PRESENCE_CONNECTED, "bob", NULL);
	expect_presence(&a, RD_PRESENCE_JOINED, "bob", NULL);
	/* 12 MB of chat: more than the kernel buffers on both sides plus the 256K bound */
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	uint64_t t0 = rd_now_mono_ms();
	int got_kicked_notice = 0;
	for (int i = 0; i < 12000; i++) {
		struct got g;
		snprintf(text, 12, "%010d", i);
		text[10] = 'x';
		send_say(&a, text, 0);
		/* bob keeps up, message by message */
		for (;;) {
			int rc = peer_next(&b, WAIT_MS, &g);
			assert_int_equal(rc, 0);
			if (g.type == RD_MSG_PRESENCE) {
				assert_string_equal(g.m.u.presence.nick, "zombie");
				got_kicked_notice = 1;
				continue;
			}
			assert_int_equal(g.type, RD_MSG_ROOM_MSG);
			char want[11];
			snprintf(want, sizeof(want), "%010d", i);
			assert_memory_equal(g.m.u.room_msg.data.p, want, 10);
			break;
		}
	}
	uint64_t took = rd_now_mono_ms() - t0;
	print_message("12000 messages relayed to bob in %llu ms beside a stalled reader\n",
		      (unsigned long long)took);
	/* the stalled reader was dropped with a reason, and everybody was told */
	if (!got_kicked_notice) {
		struct got g;
		assert_int_equal(peer_next(&b, WAIT_MS, &g), 0);
		assert_int_equal(g.type, RD_MSG_PRESENCE);
		assert_int_equal(g.m.u.presence.event, RD_PRESENCE_DISCONNECTED);
		assert_string_equal(g.m.u.presence.nick, "zombie");
		assert_true(g.m.u.presence.reason.n >= 11);
		assert_memory_equal(g.m.u.presence.reason.p, "slow reader", 11);
	}
	peer_close(&z);
	pair_stop(&s, &a, &b);
}

static void test_max_clients_refuses_extra(void **state)
{
	struct srv s;
	struct peer p[3];
	(void)state;
	srv_start(&s, "--max-clients", "2", NULL);
	enter(&p[0], s.port, "one", NULL);
	enter(&p[1], s.port, "two", NULL);
	peer_connect(&p[2], s.port);
	expect_error(&p[2], 0, RD_E_SERVER_FULL);
	expect_closed(&p[2]);
	for (int i = 0; i < 3; i++)
		peer_close(&p[i]);
	assert_int_equal(srv_stop(&s), 0);
}

static void test_sigterm_sends_shutdown_and_exits_zero(void **state)
{
	struct srv s;
	struct peer a;
	struct got g;
	(void)state;
	srv_start(&s, NULL);
	enter(&a, s.port, "alice", "general");
	kill(s.pid, SIGTERM);
	expect(&a, RD_MSG_SHUTDOWN, 0, &g);
	expect_closed(&a);
	peer_close(&a);
	assert_int_equal(srv_stop(&s), 0);
}

static void test_port_in_use_is_a_clear_error(void **state)
{
	struct srv s;
	char cmd[PATH_MAX * 6];
	(void)state;
	srv_start(&s, NULL);
	snprintf(
		cmd, sizeof(cmd),
		"'%s/../roomdrop-server' --headless --listen 127.0.0.1:%u --ctl-socket '%s/x.sock' "
		"--store '%s/st2' 2>'%s/err.txt'",
		g_bindir, s.port, s.dir, s.dir, s.dir);
	int st = system(cmd);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 3);
	snprintf(cmd, sizeof(cmd), "grep -q 'already in use' '%s/err.txt'", s.dir);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "'%s/../roomdrop-server' --listen 127.0.0.1:70000 2>/dev/null",
		 g_bindir);
	st = system(cmd);
	assert_int_equal(WEXITSTATUS(st), 2);
	assert_int_equal(srv_stop(&s), 0);
}

static void test_200_clients_chat_exactly_once_in_order(void **state)
{
	struct srv s;
	char cmd[PATH_MAX * 2];
	(void)state;
	g_plain = 1; /* loadbot speaks plaintext */
	srv_start(&s, "--max-clients", "400", NULL);
	g_plain = 0;
	/* 200 clients in one room, each sends 30 messages: 200*199*30 deliveries, each
	 * checked for exactly-once and per-sender order by loadbot (exit 0 only then) */
#if defined(__SANITIZE_THREAD__)
	/* (ThreadSanitizer makes the server some 40 times slower: fewer messages each, the
	 * same exactly-once and order checks) */
	const int messages = 8;
#else
	const int messages = 30;
#endif
	snprintf(cmd, sizeof(cmd),
		 "'%s/loadbot' --port %u --clients 200 --senders 200 --messages %d --window 16 "
		 "--timeout 120 --quiet --plain",
		 g_bindir, s.port, messages);
	int st = system(cmd);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(srv_stop(&s), 0);
}

/* ---- offers (PROTOCOL.md section 13) -------------------------------------------------- */

#define APP_DUEL 0x1100

static void send_offer(struct peer *p, uint8_t scope, const char *to, uint32_t timeout_ms,
		       const char *desc, uint32_t req)
{
	struct rd_msg m;
	rd_msg_init(&m, RD_MSG_OFFER);
	m.u.offer.scope = scope;
	snprintf(m.u.offer.to, sizeof(m.u.offer.to), "%s", to);
	m.u.offer.app_type = APP_DUEL;
	m.u.offer.timeout_ms = timeout_ms;
	m.u.offer.descriptor = (struct rd_bytes){ (const uint8_t *)desc, strlen(desc) };
	peer_send(p, &m, req);
}

static void send_answer(struct peer *p, uint32_t id, uint8_t answer, uint32_t hold_ms,
			const char *reason, const char *data, uint32_t req)
{
	struct rd_msg m;
	rd_msg_init(&m, RD_MSG_OFFER_ANSWER);
	m.u.offer_answer.offer_id = id;
	m.u.offer_answer.answer = answer;
	m.u.offer_answer.hold_ms = hold_ms;
	m.u.offer_answer.reason = rd_str_c(reason);
	m.u.offer_answer.data = (struct rd_bytes){ (const uint8_t *)data, strlen(data) };
	peer_send(p, &m, req);
}

static void send_offer_id(struct peer *p, uint16_t type, uint32_t id, uint32_t req)
{
	struct rd_msg m;
	rd_msg_init(&m, type);
	if (type == RD_MSG_OFFER_END)
		m.u.offer_end.offer_id = id; /* status 0 */
	else
		m.u.offer_id.offer_id = id;
	peer_send(p, &m, req);
}

static void send_offer_data(struct peer *p, uint32_t id, uint64_t off, const void *d, size_t n)
{
	struct rd_msg m;
	rd_msg_init(&m, RD_MSG_OFFER_DATA);
	m.u.offer_data = (struct rd_msg_offer_data){ id, off, { d, n } };
	peer_send(p, &m, 0);
}

static int text_is(struct rd_str s, const char *want)
{
	return s.n == strlen(want) && (s.n == 0 || memcmp(s.p, want, s.n) == 0);
}

static int text_has(struct rd_str s, const char *want)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%.*s", (int)s.n, s.p ? s.p : "");
	return strstr(buf, want) != NULL;
}

/* Like expect(), passing over presence notices (who comes and goes is not the point). */
static void expect_np(struct peer *p, uint16_t type, uint32_t req, struct got *g)
{
	for (;;) {
		int rc = peer_next(p, WAIT_MS, g);
		if (rc)
			fail_msg("waiting for %s: %s", rd_msg_type_name(type), rd_strerror(rc));
		if (g->type == RD_MSG_PRESENCE)
			continue;
		if (g->type != type) {
			char text[256] = "";
			if (g->type == RD_MSG_ERROR)
				snprintf(text, sizeof(text), "%u %.*s", g->m.u.error.code,
					 (int)g->m.u.error.text.n, g->m.u.error.text.p);
			fail_msg("expected %s, got %s %s", rd_msg_type_name(type),
				 rd_msg_type_name(g->type) ? rd_msg_type_name(g->type) : "?", text);
		}
		if (req != UINT32_MAX)
			assert_int_equal(g->req, req);
		return;
	}
}

static void expect_np_error(struct peer *p, uint32_t req, uint16_t code, const char *text)
{
	struct got g;
	expect_np(p, RD_MSG_ERROR, req, &g);
	if (g.m.u.error.code != code)
		fail_msg("expected ERROR %u, got %u (%.*s)", code, g.m.u.error.code,
			 (int)g.m.u.error.text.n, g.m.u.error.text.p);
	if (text && !text_has(g.m.u.error.text, text))
		fail_msg("ERROR %u text '%.*s' lacks '%s'", code, (int)g.m.u.error.text.n,
			 g.m.u.error.text.p, text);
}

/* Nothing but PINGs and presence notices arrives within ms. */
static void expect_quiet_np(struct peer *p, int ms)
{
	uint64_t end = rd_now_mono_ms() + (uint64_t)ms;
	struct got g;
	int rc;
	do {
		int64_t left = (int64_t)(end - rd_now_mono_ms());
		rc = peer_next(p, left > 0 ? (int)left : 0, &g);
	} while (rc == 0 && g.type == RD_MSG_PRESENCE);
	if (rc == 0)
		fail_msg("expected silence, got %s", rd_msg_type_name(g.type));
	assert_int_equal(rc, RD_ERR_TIMEOUT);
}

/* OFFER to one user; returns the offer id after checking OFFER_PENDING and OFFER_IN. */
static uint32_t offer_to(struct peer *a, struct peer *b, const char *bnick, const char *desc,
			 uint32_t timeout_ms, uint32_t req)
{
	struct got g;
	uint32_t id;
	send_offer(a, RD_OFFER_TO_USER, bnick, timeout_ms, desc, req);
	expect_np(a, RD_MSG_OFFER_PENDING, req, &g);
	id = g.m.u.offer_pending.offer_id;
	assert_true(id != 0);
	assert_int_equal(g.m.u.offer_pending.recipients, 1);
	expect_np(b, RD_MSG_OFFER_IN, 0, &g);
	assert_int_equal(g.m.u.offer_in.offer_id, id);
	assert_int_equal(g.m.u.offer_in.app_type, APP_DUEL);
	assert_string_equal(g.m.u.offer_in.room, "");
	assert_int_equal(g.m.u.offer_in.descriptor.n, strlen(desc));
	assert_memory_equal(g.m.u.offer_in.descriptor.p, desc, strlen(desc));
	return id;
}

static void expect_answered(struct peer *a, uint32_t id, const char *peer, uint8_t answer,
			    const char *reason, const char *data)
{
	struct got g;
	expect_np(a, RD_MSG_OFFER_ANSWERED, 0, &g);
	assert_int_equal(g.m.u.offer_answered.offer_id, id);
	assert_string_equal(g.m.u.offer_answered.peer, peer);
	assert_int_equal(g.m.u.offer_answered.answer, answer);
	if (reason && !text_has(g.m.u.offer_answered.reason, reason))
		fail_msg("OFFER_ANSWERED reason '%.*s' lacks '%s'",
			 (int)g.m.u.offer_answered.reason.n, g.m.u.offer_answered.reason.p, reason);
	if (data) {
		assert_int_equal(g.m.u.offer_answered.data.n, strlen(data));
		assert_memory_equal(g.m.u.offer_answered.data.p, data, strlen(data));
	}
}

static void expect_result(struct peer *p, uint32_t req, uint32_t id, uint8_t outcome,
			  const char *peer, const char *reason, uint32_t accepted)
{
	struct got g;
	expect_np(p, RD_MSG_OFFER_RESULT, req, &g);
	assert_int_equal(g.m.u.offer_result.offer_id, id);
	if (g.m.u.offer_result.outcome != outcome)
		fail_msg("OFFER_RESULT outcome %u, wanted %u", g.m.u.offer_result.outcome, outcome);
	assert_string_equal(g.m.u.offer_result.peer, peer);
	if (reason && !text_has(g.m.u.offer_result.reason, reason))
		fail_msg("OFFER_RESULT reason '%.*s' lacks '%s'", (int)g.m.u.offer_result.reason.n,
			 g.m.u.offer_result.reason.p, reason);
	assert_int_equal(g.m.u.offer_result.accepted, accepted);
}

static void send_room_direct(struct peer *p, int on, uint32_t req)
{
	struct rd_msg m;
	rd_msg_init(&m, RD_MSG_ROOM_DIRECT);
	m.u.room_direct.on = (uint8_t)on;
	peer_send(p, &m, req);
}

static void expect_mode(struct peer *p, int direct, const char *by)
{
	struct got g;
	expect_np(p, RD_MSG_ROOM_MODE, 0, &g);
	assert_string_equal(g.m.u.room_mode.room, "general");
	assert_int_equal(g.m.u.room_mode.direct, direct);
	assert_string_equal(g.m.u.room_mode.by, by);
}

static void expect_text_skipping_presence(struct peer *p, const char *from, const char *text)
{
	struct got g;
	expect_np(p, RD_MSG_ROOM_MSG, 0, &g);
	assert_string_equal(g.m.u.room_msg.from, from);
	assert_int_equal(g.m.u.room_msg.data.n, strlen(text));
	assert_memory_equal(g.m.u.room_msg.data.p, text, strlen(text));
}

/* Section 14.5 on the wire: ROOM_DIRECT needs a room (301); switching on answers OK and
 * sends ROOM_MODE(room, 1, by) to every member, and again to the asker alone; SAY_EXCEPT
 * reaches the members it does not name, none it names, and more than 32 names are 100;
 * a newcomer hears the mode after its JOINED; switching off is told to every member. */
static void test_direct_mode_on_the_wire(void **state)
{
	struct srv s;
	struct peer a, b, c, d;
	struct rd_nick_entry names[RD_SAY_EXCEPT_MAX + 1];
	struct got g;
	struct rd_msg m;
	(void)state;
	srv_start(&s, NULL);
	enter(&a, s.port, "alice", NULL);
	send_room_direct(&a, 1, 4);
	expect_error(&a, 4, RD_E_NOT_IN_ROOM);
	send_join(&a, "general", 5);
	expect(&a, RD_MSG_JOINED, 5, &g);
	enter(&b, s.port, "bob", "general");
	enter(&c, s.port, "carol", "general");

	send_room_direct(&a, 1, 6);
	expect_np(&a, RD_MSG_OK, 6, &g);
	expect_mode(&a, 1, "alice");
	expect_mode(&b, 1, "alice");
	expect_mode(&c, 1, "alice");
	/* no change: the asker alone hears the mode (alice's next frame is carol's text) */
	send_room_direct(&b, 1, 7);
	expect(&b, RD_MSG_OK, 7, &g);
	expect_mode(&b, 1, "bob");
	send_say(&c, "after", 0);
	expect_text_skipping_presence(&a, "carol", "after");
	expect_text_skipping_presence(&b, "carol", "after");

	/* SAY_EXCEPT naming bob: carol gets it, bob's next message is the one after */
	memset(names, 0, sizeof(names));
	snprintf(names[0].nick, sizeof(names[0].nick), "BOB"); /* (names match ignoring case) */
	rd_msg_init(&m, RD_MSG_SAY_EXCEPT);
	m.u.say_except.kind = RD_KIND_TEXT;
	m.u.say_except.data = (struct rd_bytes){ (const uint8_t *)"x", 1 };
	m.u.say_except.count = 1;
	m.u.say_except.except = names;
	peer_send(&a, &m, 0);
	send_say(&a, "y", 0);
	expect_text_skipping_presence(&c, "alice", "x");
	expect_text_skipping_presence(&c, "alice", "y");
	expect_text_skipping_presence(&b, "alice", "y");
	/* more than 32 names: 100, nothing relayed */
	for (size_t i = 0; i <= RD_SAY_EXCEPT_MAX; i++)
		snprintf(names[i].nick, sizeof(names[i].nick), "n%zu", i);
	m.u.say_except.count = RD_SAY_EXCEPT_MAX + 1;
	peer_send(&a, &m, 8);
	expect_error(&a, 8, RD_E_MALFORMED);

	/* a newcomer hears the mode after its JOINED */
	enter(&d, s.port, "dave", "general");
	expect_mode(&d, 1, "");
	/* off: every member hears it */
	send_room_direct(&c, 0, 9);
	expect_np(&c, RD_MSG_OK, 9, &g);
	expect_mode(&c, 0, "carol");
	expect_mode(&a, 0, "carol");
	expect_mode(&b, 0, "carol");
	expect_mode(&d, 0, "carol");
	peer_close(&a);
	peer_close(&b);
	peer_close(&c);
	peer_close(&d);
	assert_int_equal(srv_stop(&s), 0);
}

/* Section 13: an accepted offer reaches both sides: OFFER_IN with the descriptor, the
 * answer with its application bytes to the offerer, ACCEPTED, and an OFFER_END (an
 * invitation that moves no bytes) completes it on both sides. */
static void test_offer_accepted_reaches_both_sides(void **state)
{
	struct srv s;
	struct peer a, b;
	struct got g;
	uint32_t id;
	(void)state;
	pair_start(&s, &a, &b);
	id = offer_to(&a, &b, "bob", "duel 3d6", 0, 5);
	/* the window's activity column (ctl list shows the same) */
	char args[PATH_MAX * 2], list[4096], want[64];
	snprintf(args, sizeof(args), "ctl --socket '%s' list", s.ctl);
	assert_int_equal(run_capture(args, 1, list, sizeof(list)), 0);
	snprintf(want, sizeof(want), "offer %u to bob: waiting", id);
	if (!strstr(list, want))
		fail_msg("no '%s' in ctl list:\n%s", want, list);
	snprintf(want, sizeof(want), "offer %u from alice: deciding", id);
	if (!strstr(list, want))
		fail_msg("no '%s' in ctl list:\n%s", want, list);
	/* a receipt before accepting is out of turn */
	send_answer(&b, id, RD_ANSWER_DONE, 0, "", "", 60);
	expect_np_error(&b, 60, RD_E_OFFER_STATE, "did not accept");
	send_answer(&b, id, RD_ANSWER_RESUME, 0, "", "", 59);
	expect_np_error(&b, 59, RD_E_OFFER_STATE, "did not accept");
	send_answer(&b, id, RD_ANSWER_ACCEPT, 0, "", "files 1,3 offsets 0,4096", 6);
	expect_np(&b, RD_MSG_OK, 6, &g);
	assert_int_equal(g.m.u.ok.for_type, RD_MSG_OFFER_ANSWER);
	expect_answered(&a, id, "bob", RD_ANSWER_ACCEPT, "", "files 1,3 offsets 0,4096");
	expect_result(&a, 0, id, RD_OFFER_ACCEPTED, "bob", "", 1);
	/* after the accept, a new account of what it holds reaches the offerer, each time */
	for (uint32_t k = 0; k < 2; k++) {
		send_answer(&b, id, RD_ANSWER_RESUME, 0, "link broke", "file 1 offset 65536",
			    57 + k);
		expect_np(&b, RD_MSG_OK, 57 + k, &g);
		expect_answered(&a, id, "bob", RD_ANSWER_RESUME, "link broke",
				"file 1 offset 65536");
	}
	/* the recipient's receipt reaches the offerer, once */
	send_answer(&b, id, RD_ANSWER_DONE, 0, "all verified", "2 saved", 61);
	expect_np(&b, RD_MSG_OK, 61, &g);
	expect_answered(&a, id, "bob", RD_ANSWER_DONE, "all verified", "2 saved");
	send_answer(&b, id, RD_ANSWER_DONE, 0, "", "", 62);
	expect_np_error(&b, 62, RD_E_OFFER_STATE, "done already");
	send_answer(&b, id, RD_ANSWER_RESUME, 0, "", "", 63);
	expect_np_error(&b, 63, RD_E_OFFER_STATE, "done already");
	send_offer_id(&a, RD_MSG_OFFER_END, id, 7);
	expect_result(&a, 7, id, RD_OFFER_COMPLETED, "bob", "", 1);
	expect_np(&b, RD_MSG_OFFER_END, 0, &g);
	assert_int_equal(g.m.u.offer_end.offer_id, id);
	expect_result(&b, 0, id, RD_OFFER_COMPLETED, "alice", "", 0);
	/* finished: the id is no longer valid */
	send_answer(&b, id, RD_ANSWER_ACCEPT, 0, "", "", 8);
	expect_np_error(&b, 8, RD_E_NO_SUCH_OFFER, NULL);
	pair_stop(&s, &a, &b);
}

/* Section 13: a rejection's reason reaches the offerer (OFFER_ANSWERED, then REJECTED),
 * the offer is finished, and the offerer may offer again at once. */
static void test_offer_rejection_reason_reaches_offerer(void **state)
{
	struct srv s;
	struct peer a, b;
	uint32_t id;
	(void)state;
	pair_start(&s, &a, &b);
	id = offer_to(&a, &b, "bob", "duel", 0, 5);
	send_answer(&b, id, RD_ANSWER_REJECT, 0, "busy rolling", "", 6);
	expect_np(&b, RD_MSG_OK, 6, &(struct got){ 0 });
	expect_answered(&a, id, "bob", RD_ANSWER_REJECT, "busy rolling", "");
	expect_result(&a, 0, id, RD_OFFER_REJECTED, "bob", "busy rolling", 0);
	send_answer(&b, id, RD_ANSWER_ACCEPT, 0, "", "", 7); /* too late */
	expect_np_error(&b, 7, RD_E_NO_SUCH_OFFER, NULL);
	send_offer_id(&a, RD_MSG_OFFER_CANCEL, id, 9);
	expect_np_error(&a, 9, RD_E_NO_SUCH_OFFER, NULL);
	send_offer_data(&a, id, 0, "x", 1);
	expect_np_error(&a, 0, RD_E_NO_SUCH_OFFER, NULL);
	(void)offer_to(&a, &b, "bob", "again", 0, 8);
	pair_stop(&s, &a, &b);
}

/* Sections 8 and 13: with --offer-timeout 200ms an unanswered offer expires: EXPIRED to
 * the recipient, OFFER_ANSWERED(EXPIRED) and OFFER_RESULT(EXPIRED) to the offerer; a
 * longer timeout_ms is capped at --offer-max. */
static void test_offer_expires_with_short_timeout(void **state)
{
	struct srv s;
	struct peer a, b;
	struct got g;
	uint32_t id;
	(void)state;
	srv_start(&s, "--offer-timeout", "200ms", "--offer-max", "2s", NULL);
	enter(&a, s.port, "alice", NULL);
	enter(&b, s.port, "bob", NULL);
	send_offer(&a, RD_OFFER_TO_USER, "bob", 0, "duel", 5);
	expect_np(&a, RD_MSG_OFFER_PENDING, 5, &g);
	id = g.m.u.offer_pending.offer_id;
	assert_true(g.m.u.offer_pending.expires_in_ms <= 200);
	expect_np(&b, RD_MSG_OFFER_IN, 0, &g);
	expect_result(&b, 0, id, RD_OFFER_EXPIRED, "alice", "", 0);
	expect_answered(&a, id, "bob", RD_ANSWER_EXPIRED, "no answer in time", "");
	expect_result(&a, 0, id, RD_OFFER_EXPIRED, "bob", "", 0);
	send_answer(&b, id, RD_ANSWER_ACCEPT, 0, "", "", 6);
	expect_np_error(&b, 6, RD_E_NO_SUCH_OFFER, NULL);

	send_offer(&a, RD_OFFER_TO_USER, "bob", 600000, "long", 7);
	expect_np(&a, RD_MSG_OFFER_PENDING, 7, &g);
	assert_true(g.m.u.offer_pending.expires_in_ms <= 2000);
	assert_true(g.m.u.offer_pending.expires_in_ms > 1000);
	pair_stop(&s, &a, &b);
}

/* Section 13: HOLD moves the deadline (reply OFFER_PENDING with the new time, the offerer
 * hears OFFER_ANSWERED(HOLD)), never past --offer-max; the offer outlives its first
 * deadline and is then accepted. */
static void test_offer_hold_extends_then_accept(void **state)
{
	struct srv s;
	struct peer a, b;
	struct rd_msg m;
	struct got g;
	uint32_t id;
	(void)state;
	srv_start(&s, "--offer-timeout", "300ms", "--offer-max", "10s", NULL);
	enter(&a, s.port, "alice", NULL);
	enter(&b, s.port, "bob", NULL);
	id = offer_to(&a, &b, "bob", "duel", 0, 5);
	send_answer(&b, id, RD_ANSWER_HOLD, 5000, "finishing a game", "", 6);
	expect_np(&b, RD_MSG_OFFER_PENDING, 6, &g);
	assert_int_equal(g.m.u.offer_pending.offer_id, id);
	assert_true(g.m.u.offer_pending.expires_in_ms > 4000);
	expect_np(&a, RD_MSG_OFFER_ANSWERED, 0, &g);
	assert_int_equal(g.m.u.offer_answered.answer, RD_ANSWER_HOLD);
	assert_true(g.m.u.offer_answered.expires_in_ms > 4000);
	assert_true(text_is(g.m.u.offer_answered.reason, "finishing a game"));
	/* past the first deadline (300 ms): still open; the waiting offerer still hears
	 * everything else */
	expect_quiet_np(&b, 700);
	rd_msg_init(&m, RD_MSG_TELL);
	snprintf(m.u.tell.to, sizeof(m.u.tell.to), "alice");
	m.u.tell.data = (struct rd_bytes){ (const uint8_t *)"wait", 4 };
	peer_send(&b, &m, 10);
	expect_np(&b, RD_MSG_OK, 10, &g);
	expect_np(&a, RD_MSG_PRIVATE_MSG, 0, &g);
	assert_string_equal(g.m.u.private_msg.from, "bob");
	send_answer(&b, id, RD_ANSWER_HOLD, 600000, "", "", 7);
	expect_np(&b, RD_MSG_OFFER_PENDING, 7, &g);
	assert_true(g.m.u.offer_pending.expires_in_ms <= 10000);
	expect_answered(&a, id, "bob", RD_ANSWER_HOLD, NULL, NULL);
	send_answer(&b, id, RD_ANSWER_ACCEPT, 0, "", "", 8);
	expect_np(&b, RD_MSG_OK, 8, &g);
	expect_answered(&a, id, "bob", RD_ANSWER_ACCEPT, NULL, NULL);
	expect_result(&a, 0, id, RD_OFFER_ACCEPTED, "bob", "", 1);
	send_answer(&b, id, RD_ANSWER_REJECT, 0, "", "", 9); /* a final answer is final */
	expect_np_error(&b, 9, RD_E_OFFER_STATE, NULL);
	pair_stop(&s, &a, &b);
}

/* Section 13: the offerer cancels: CANCELLED as the reply and to the recipient; the id
 * is gone for both. */
static void test_offer_cancelled_by_offerer(void **state)
{
	struct srv s;
	struct peer a, b;
	uint32_t id;
	(void)state;
	pair_start(&s, &a, &b);
	id = offer_to(&a, &b, "bob", "duel", 0, 5);
	send_offer_id(&a, RD_MSG_OFFER_CANCEL, id, 6);
	expect_result(&a, 6, id, RD_OFFER_CANCELLED, "bob", "", 0);
	expect_result(&b, 0, id, RD_OFFER_CANCELLED, "alice", "", 0);
	send_answer(&b, id, RD_ANSWER_ACCEPT, 0, "", "", 7);
	expect_np_error(&b, 7, RD_E_NO_SUCH_OFFER, NULL);
	send_offer_id(&a, RD_MSG_OFFER_CANCEL, id, 8);
	expect_np_error(&a, 8, RD_E_NO_SUCH_OFFER, NULL);
	/* only the offerer may cancel */
	id = offer_to(&a, &b, "bob", "duel", 0, 9);
	send_offer_id(&b, RD_MSG_OFFER_CANCEL, id, 10);
	expect_np_error(&b, 10, RD_E_NO_SUCH_OFFER, NULL);
	pair_stop(&s, &a, &b);
}

/* Section 13: a recipient who disconnects while deciding counts as a rejection with that
 * reason (OFFER_ANSWERED(GONE), REJECTED); an offerer who disconnects leaves its
 * recipients PEER_GONE. */
static void test_offer_recipient_disconnects_while_deciding(void **state)
{
	struct srv s;
	struct peer a, b, c;
	struct rd_msg m;
	uint32_t id;
	(void)state;
	pair_start(&s, &a, &b);
	enter(&c, s.port, "carol", NULL);
	id = offer_to(&a, &b, "bob", "duel", 0, 5);
	rd_msg_init(&m, RD_MSG_BYE);
	m.u.bye.reason = rd_str_c("dinner");
	peer_send(&b, &m, 0);
	expect_answered(&a, id, "bob", RD_ANSWER_GONE, "disconnected: quit: dinner", "");
	expect_result(&a, 0, id, RD_OFFER_REJECTED, "bob", "disconnected: quit: dinner", 0);
	peer_close(&b);

	id = offer_to(&a, &c, "carol", "duel", 0, 6);
	peer_close(&a);
	expect_result(&c, 0, id, RD_OFFER_PEER_GONE, "alice", "disconnected", 0);
	peer_close(&c);
	assert_int_equal(srv_stop(&s), 0);
}

/* Section 13: one offer may wait at a time by default: a second gets 404 naming the
 * first; --max-offers 2 allows two; an accepted offer no longer counts. */
static void test_second_offer_while_waiting_is_404(void **state)
{
	struct srv s;
	struct peer a, b, c;
	char text[64];
	uint32_t id, id2;
	(void)state;
	pair_start(&s, &a, &b);
	enter(&c, s.port, "carol", NULL);
	id = offer_to(&a, &b, "bob", "duel", 0, 5);
	send_offer(&a, RD_OFFER_TO_USER, "carol", 0, "duel", 6);
	snprintf(text, sizeof(text), "waiting on offer %u", id);
	expect_np_error(&a, 6, RD_E_TOO_MANY_OFFERS, text);
	send_answer(&b, id, RD_ANSWER_ACCEPT, 0, "", "", 7);
	expect_answered(&a, id, "bob", RD_ANSWER_ACCEPT, NULL, NULL);
	expect_result(&a, 0, id, RD_OFFER_ACCEPTED, "bob", "", 1);
	(void)offer_to(&a, &c, "carol", "duel", 0, 8); /* accepted: no longer waiting */
	peer_close(&a);
	peer_close(&b);
	peer_close(&c);
	assert_int_equal(srv_stop(&s), 0);

	srv_start(&s, "--max-offers", "2", NULL);
	enter(&a, s.port, "alice", NULL);
	enter(&b, s.port, "bob", NULL);
	enter(&c, s.port, "carol", NULL);
	id = offer_to(&a, &b, "bob", "one", 0, 5);
	id2 = offer_to(&a, &c, "carol", "two", 0, 6);
	assert_true(id2 != id);
	send_offer(&a, RD_OFFER_TO_USER, "bob", 0, "three", 7);
	expect_np_error(&a, 7, RD_E_TOO_MANY_OFFERS, "at most 2 offers");
	expect_quiet_np(&b, 200); /* (the third never went out) */
	peer_close(&a);
	peer_close(&b);
	peer_close(&c);
	assert_int_equal(srv_stop(&s), 0);
}

/* Section 13: a room offer goes to every other member of the offerer's room (not to other
 * rooms); with two accepting and one rejecting, the offerer sees three answers, then
 * ACCEPTED with accepted = 2; relayed data then reaches the two who accepted only. */
static void test_room_offer_two_accept_one_rejects(void **state)
{
	struct srv s;
	struct peer a, b, c, d, e;
	struct got g;
	uint32_t id;
	(void)state;
	srv_start(&s, NULL);
	enter(&a, s.port, "alice", "general");
	enter(&b, s.port, "bob", "general");
	enter(&c, s.port, "carol", "general");
	enter(&d, s.port, "dave", "general");
	enter(&e, s.port, "eve", "random");
	send_offer(&a, RD_OFFER_TO_ROOM, "", 0, "tournament", 5);
	expect_np(&a, RD_MSG_OFFER_PENDING, 5, &g);
	id = g.m.u.offer_pending.offer_id;
	assert_int_equal(g.m.u.offer_pending.recipients, 3);
	struct peer *in[] = { &b, &c, &d };
	for (size_t i = 0; i < 3; i++) {
		expect_np(in[i], RD_MSG_OFFER_IN, 0, &g);
		assert_int_equal(g.m.u.offer_in.offer_id, id);
		assert_string_equal(g.m.u.offer_in.from, "alice");
		assert_string_equal(g.m.u.offer_in.room, "general");
	}
	send_answer(&b, id, RD_ANSWER_ACCEPT, 0, "", "b", 6);
	expect_np(&b, RD_MSG_OK, 6, &g);
	expect_answered(&a, id, "bob", RD_ANSWER_ACCEPT, NULL, "b");
	send_answer(&c, id, RD_ANSWER_REJECT, 0, "not today", "", 6);
	expect_np(&c, RD_MSG_OK, 6, &g);
	expect_answered(&a, id, "carol", RD_ANSWER_REJECT, "not today", NULL);
	send_offer_data(&a, id, 0, "early", 5); /* not decided yet: dave has not answered */
	expect_np_error(&a, 0, RD_E_OFFER_STATE, NULL);
	send_answer(&d, id, RD_ANSWER_ACCEPT, 0, "", "d", 6);
	expect_np(&d, RD_MSG_OK, 6, &g);
	expect_answered(&a, id, "dave", RD_ANSWER_ACCEPT, NULL, "d");
	expect_result(&a, 0, id, RD_OFFER_ACCEPTED, "", "", 2);

	send_offer_data(&a, id, 0, "xyz", 3);
	send_offer_id(&a, RD_MSG_OFFER_END, id, 7);
	expect_result(&a, 7, id, RD_OFFER_COMPLETED, "", "", 2);
	struct peer *acc[] = { &b, &d };
	for (size_t i = 0; i < 2; i++) {
		expect_np(acc[i], RD_MSG_OFFER_DATA, 0, &g);
		assert_int_equal(g.m.u.offer_data.data.n, 3);
		assert_memory_equal(g.m.u.offer_data.data.p, "xyz", 3);
		expect_np(acc[i], RD_MSG_OFFER_END, 0, &g);
		expect_result(acc[i], 0, id, RD_OFFER_COMPLETED, "alice", "", 0);
	}
	expect_quiet_np(&c, 200);
	expect_quiet_np(&e, 10);
	peer_close(&a);
	peer_close(&b);
	peer_close(&c);
	peer_close(&d);
	peer_close(&e);
	assert_int_equal(srv_stop(&s), 0);
}

/* Section 13: offers to an unknown user (302), to oneself (401), to a room from no room
 * (301) or from an empty room (405, a new code), and answers or relay frames for offers
 * that are not the client's (400) or not accepted (402). */
static void test_offer_errors(void **state)
{
	struct srv s;
	struct peer a, b;
	uint32_t id;
	(void)state;
	pair_start(&s, &a, &b);
	send_offer(&a, RD_OFFER_TO_USER, "nobody", 0, "x", 5);
	expect_np_error(&a, 5, RD_E_NO_SUCH_USER, "nobody");
	send_offer(&a, RD_OFFER_TO_USER, "alice", 0, "x", 6);
	expect_np_error(&a, 6, RD_E_OFFER_SELF, "yourself");
	send_offer(&a, RD_OFFER_TO_USER, "ALICE", 0, "x", 6); /* (nicknames ignore case) */
	expect_np_error(&a, 6, RD_E_OFFER_SELF, "yourself");
	send_offer(&a, RD_OFFER_TO_ROOM, "", 0, "x", 7);
	expect_np_error(&a, 7, RD_E_NOT_IN_ROOM, "join a room");
	send_join(&a, "random", 8);
	expect_np(&a, RD_MSG_JOINED, 8, &(struct got){ 0 });
	send_offer(&a, RD_OFFER_TO_ROOM, "", 0, "x", 9);
	expect_np_error(&a, 9, RD_E_OFFER_NOBODY, "nobody else is in room 'random'");
	send_answer(&b, 4242, RD_ANSWER_ACCEPT, 0, "", "", 10);
	expect_np_error(&b, 10, RD_E_NO_SUCH_OFFER, "4242");
	/* none of those left an offer waiting */
	id = offer_to(&a, &b, "bob", "x", 0, 11);
	send_offer_data(&a, id, 0, "x", 1);
	expect_np_error(&a, 0, RD_E_OFFER_STATE, "not accepted");
	send_offer_id(&a, RD_MSG_OFFER_END, id, 12);
	expect_np_error(&a, 12, RD_E_OFFER_STATE, NULL);
	send_offer_data(&b, id, 0, "x", 1); /* the recipient is not the offerer */
	expect_np_error(&b, 0, RD_E_NO_SUCH_OFFER, NULL);
	send_answer(&a, id, RD_ANSWER_ACCEPT, 0, "", "", 13); /* nor the offerer a recipient */
	expect_np_error(&a, 13, RD_E_NO_SUCH_OFFER, NULL);
	/* values the strict encoder refuses, sent raw: an answer only the server may give
	 * (4 GONE) and a scope that does not exist (3) are MALFORMED, nothing changes */
	struct rd_buf pb, fb;
	rd_buf_init(&pb, 0);
	rd_buf_init(&fb, 0);
	assert_int_equal(rd_buf_put_u32(&pb, id), 0);
	assert_int_equal(rd_buf_put_u8(&pb, RD_ANSWER_GONE), 0);
	assert_int_equal(rd_buf_put_u32(&pb, 0), 0);
	assert_int_equal(rd_buf_put_str(&pb, "", 0), 0);
	assert_int_equal(rd_buf_put_bytes(&pb, "", 0), 0);
	assert_int_equal(rd_frame_append(&fb, RD_MSG_OFFER_ANSWER, 14, pb.data, pb.len, 0), 0);
	peer_send_raw(&b, fb.data, fb.len);
	expect_np_error(&b, 14, RD_E_MALFORMED, "answer");
	pb.len = fb.len = 0;
	assert_int_equal(rd_buf_put_u8(&pb, 3), 0);
	assert_int_equal(rd_buf_put_str(&pb, "bob", 3), 0);
	assert_int_equal(rd_buf_put_u8(&pb, 0x11), 0);
	assert_int_equal(rd_buf_put_u8(&pb, 0x00), 0);
	assert_int_equal(rd_buf_put_u32(&pb, 0), 0);
	assert_int_equal(rd_buf_put_bytes(&pb, "", 0), 0);
	assert_int_equal(rd_frame_append(&fb, RD_MSG_OFFER, 15, pb.data, pb.len, 0), 0);
	peer_send_raw(&a, fb.data, fb.len);
	expect_np_error(&a, 15, RD_E_MALFORMED, "scope");
	rd_buf_free(&pb);
	rd_buf_free(&fb);
	/* the offer still waits for bob, who may still answer */
	send_answer(&b, id, RD_ANSWER_REJECT, 0, "", "", 16);
	expect_np(&b, RD_MSG_OK, 16, &(struct got){ 0 });
	expect_answered(&a, id, "bob", RD_ANSWER_REJECT, NULL, NULL);
	pair_stop(&s, &a, &b);
}

/* Next non-PING frame of any size (relayed chunks are bigger than struct got holds). */
static int raw_next(struct peer *p, struct rd_frame *f)
{
	int rc;
	do
		rc = rd_link_recv(p->l, WAIT_MS, f);
	while (rc == 0 && (f->hdr.type == RD_MSG_PING || f->hdr.type == RD_MSG_PRESENCE));
	return rc;
}

static uint8_t pattern_byte(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 11));
}

struct relay_writer {
	struct peer *a;
	uint32_t id;
	size_t chunk, nchunks;
	int rc;
};

/* The offerer's side of a relay: every chunk, then OFFER_END (request id 9), written with
 * a generous timeout because the server stops reading while the receiver is behind. */
static void *relay_write(void *arg)
{
	struct relay_writer *w = arg;
	uint8_t *d = malloc(w->chunk);
	struct rd_buf b;
	w->rc = d ? 0 : RD_ERR_NOMEM;
	rd_buf_init(&b, 0);
	for (size_t i = 0; w->rc == 0 && i <= w->nchunks; i++) {
		struct rd_msg m;
		uint64_t off = (uint64_t)i * w->chunk;
		b.len = 0;
		if (i < w->nchunks) {
			for (size_t k = 0; k < w->chunk; k++)
				d[k] = pattern_byte(off + k);
			rd_msg_init(&m, RD_MSG_OFFER_DATA);
			m.u.offer_data = (struct rd_msg_offer_data){ w->id, off, { d, w->chunk } };
			w->rc = rd_msg_frame(&b, &m, 0, 0);
		} else {
			rd_msg_init(&m, RD_MSG_OFFER_END);
			m.u.offer_end.offer_id = w->id;
			w->rc = rd_msg_frame(&b, &m, 9, 0);
		}
		if (w->rc == 0)
			w->rc = rd_link_send_stream(w->a->l, b.data, b.len, -1, 0, 0, 60000, NULL);
	}
	rd_buf_free(&b);
	free(d);
	return NULL;
}

/* Read every relayed chunk in order, checking offsets and bytes, then OFFER_END and
 * COMPLETED; with pause_first, read nothing until the server reports (ctl info) that it
 * has queued this receiver up to its bulk watermark. Returns the peak relay_peak. */
static uint64_t ctl_relay_peak(struct srv *s)
{
	char args[PATH_MAX * 2], info[4096];
	const char *p;
	snprintf(args, sizeof(args), "ctl --socket '%s' info", s->ctl);
	assert_int_equal(run_capture(args, 1, info, sizeof(info)), 0);
	assert_non_null(p = strstr(info, "relay peak queued: "));
	return strtoull(p + strlen("relay peak queued: "), NULL, 10);
}

static void relay_and_check(struct srv *s, size_t chunk, size_t nchunks, int pause_first)
{
	struct peer a, b;
	struct got g;
	struct rd_frame f;
	struct rd_msg m;
	pthread_t th;
	uint32_t id;
	uint64_t want = 0;

	enter(&a, s->port, "alice", NULL);
	enter(&b, s->port, "bob", NULL);
	id = offer_to(&a, &b, "bob", "file", 0, 5);
	send_answer(&b, id, RD_ANSWER_ACCEPT, 0, "", "", 6);
	expect_np(&b, RD_MSG_OK, 6, &g);
	expect_answered(&a, id, "bob", RD_ANSWER_ACCEPT, NULL, NULL);
	expect_result(&a, 0, id, RD_OFFER_ACCEPTED, "bob", "", 1);

	struct relay_writer w = { &a, id, chunk, nchunks, 0 };
	assert_int_equal(pthread_create(&th, NULL, relay_write, &w), 0);
	if (pause_first) {
		/* the receiver reads nothing until the server has queued it to the watermark */
		uint64_t end = rd_now_mono_ms() + 4 * WAIT_MS;
		while (ctl_relay_peak(s) < (1u << 20) && rd_now_mono_ms() < end)
			usleep(20000);
		assert_true(ctl_relay_peak(s) >= (1u << 20));
	}
	for (size_t i = 0; i < nchunks; i++) {
		int rc = raw_next(&b, &f);
		if (rc)
			fail_msg("chunk %zu of %zu: %s", i, nchunks, rd_strerror(rc));
		assert_int_equal(f.hdr.type, RD_MSG_OFFER_DATA);
		assert_int_equal(rd_msg_decode(f.hdr.type, f.payload, f.len, &m), 0);
		assert_int_equal(m.u.offer_data.offer_id, id);
		assert_true(m.u.offer_data.offset == want);
		assert_int_equal(m.u.offer_data.data.n, chunk);
		for (size_t k = 0; k < chunk; k++)
			if (m.u.offer_data.data.p[k] != pattern_byte(want + k))
				fail_msg("byte %llu differs", (unsigned long long)(want + k));
		want += chunk;
		if (pause_first && i % 8 == 0)
			usleep(1000); /* a slow reader (speed is not what is checked) */
	}
	assert_int_equal(raw_next(&b, &f), 0);
	assert_int_equal(f.hdr.type, RD_MSG_OFFER_END);
	expect_result(&b, 0, id, RD_OFFER_COMPLETED, "alice", "", 0);
	pthread_join(th, NULL);
	assert_int_equal(w.rc, 0);
	expect_result(&a, 9, id, RD_OFFER_COMPLETED, "bob", "", 1);
	peer_close(&a);
	peer_close(&b);
}

/* Section 13: relayed data reaches the accepting receiver in order and whole, then
 * OFFER_END and COMPLETED on both sides. */
static void test_offer_relay_in_order_then_completed(void **state)
{
	struct srv s;
	(void)state;
	srv_start(&s, NULL);
	relay_and_check(&s, 65536, 40, 0);
	assert_int_equal(srv_stop(&s), 0);
}

/* Sections 10 and 13: a receiver that reads slowly through the relay is not dropped
 * (32 MiB pass through a server whose event bound is 8 MiB) and the most the server ever
 * queued to it (ctl info's relay peak) stays under the bulk watermark plus one frame and
 * some events. */
static void test_offer_relay_slow_receiver_bounded(void **state)
{
	struct srv s;
	(void)state;
	srv_start(&s, NULL);
	relay_and_check(&s, RD_CHUNK_SIZE, 128, 1);
	uint64_t peak = ctl_relay_peak(&s);
	if (peak > (1u << 20) + RD_CHUNK_SIZE + 65536)
		fail_msg("the server queued %llu bytes to one receiver", (unsigned long long)peak);
	assert_int_equal(srv_stop(&s), 0);
}

/* ---- direct links: the introduction (section 14, P2P_LISTEN / P2P_INTRO / P2P_FAILED) --- */

/* A client key in dir (made), its TLS context and fingerprint. */
static struct rd_tls_ctx *key_ctx(const char *dir, const char *name, uint8_t fp[RD_TLS_FP_LEN])
{
	struct rd_tls_identity *id = NULL;
	struct rd_tls_ctx *ctx = NULL;
	char crt[PATH_MAX], key[PATH_MAX];

	snprintf(crt, sizeof(crt), "%s/%s.crt", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	assert_int_equal(rd_tls_identity_ensure(crt, key, name, &id, NULL), 0);
	rd_tls_identity_fp(id, fp);
	assert_int_equal(rd_tls_ctx_client_new(id, NULL, 0, &ctx), 0);
	rd_tls_identity_free(id);
	return ctx;
}

static void send_p2p_listen(struct peer *p, uint32_t id, uint16_t port, const char *addr,
			    uint32_t req)
{
	struct rd_p2p_addr a;
	struct rd_msg m;

	rd_msg_init(&m, RD_MSG_P2P_LISTEN);
	m.u.p2p_listen.offer_id = id;
	m.u.p2p_listen.port = port;
	if (addr) {
		snprintf(a.addr, sizeof(a.addr), "%s", addr);
		m.u.p2p_listen.naddrs = 1;
		m.u.p2p_listen.addrs = &a;
	}
	peer_send(p, &m, req);
}

static void send_p2p_failed(struct peer *p, uint32_t id, const char *reason, uint32_t req)
{
	struct rd_msg m;

	rd_msg_init(&m, RD_MSG_P2P_FAILED);
	m.u.p2p_failed.offer_id = id;
	m.u.p2p_failed.reason = rd_str_c(reason);
	peer_send(p, &m, req);
}

/* P2P_INTRO of offer id to p: role, peer, fp and the addresses (NULL-terminated list);
 * its token into token. */
static void expect_intro(struct peer *p, uint32_t id, uint8_t role, const char *peer,
			 const uint8_t fp[RD_TLS_FP_LEN], const char *const *addrs, uint8_t *token)
{
	struct got g;
	uint32_t n = 0;

	expect_np(p, RD_MSG_P2P_INTRO, 0, &g);
	assert_int_equal(g.m.u.p2p_intro.offer_id, id);
	assert_int_equal(g.m.u.p2p_intro.role, role);
	assert_string_equal(g.m.u.p2p_intro.peer, peer);
	assert_memory_equal(g.m.u.p2p_intro.fp, fp, RD_TLS_FP_LEN);
	while (addrs[n])
		n++;
	assert_int_equal(g.m.u.p2p_intro.naddrs, n);
	for (uint32_t i = 0; i < n; i++)
		assert_string_equal(g.m.u.p2p_intro.addrs[i].addr, addrs[i]);
	memcpy(token, g.m.u.p2p_intro.token, RD_TOKEN_SIZE);
	rd_msg_clear(&g.m);
}

/* Section 14 / 12.5: P2P_LISTEN before the accept and from a stranger is refused; once
 * both sides of an accepted offer listen, each gets P2P_INTRO with the other's nickname,
 * the key it showed the server, its addresses (the server's view first) and the same
 * token; P2P_FAILED is forwarded to the other side; a client without a key, and a room
 * offer, get 402. */
static void test_p2p_intro_reaches_both_sides(void **state)
{
	char dir[] = "/tmp/rd-p2p-keys-XXXXXX";
	uint8_t fpa[RD_TLS_FP_LEN], fpb[RD_TLS_FP_LEN], ta[RD_TOKEN_SIZE], tb[RD_TOKEN_SIZE],
		zero[RD_TOKEN_SIZE] = { 0 };
	struct rd_tls_ctx *ca, *cb;
	struct srv s;
	struct peer a, b, c;
	struct got g;
	uint32_t id, id2;
	(void)state;

	assert_non_null(mkdtemp(dir));
	ca = key_ctx(dir, "alice", fpa);
	cb = key_ctx(dir, "bob", fpb);
	srv_start(&s, NULL);
	g_idctx = ca;
	enter(&a, s.port, "alice", "general");
	g_idctx = cb;
	enter(&b, s.port, "bob", "general");
	g_idctx = NULL;
	enter(&c, s.port, "carol", "general");
	id = offer_to(&a, &b, "bob", "files", 0, 5);
	send_p2p_listen(&a, id, 40001, "192.0.2.1:40001", 6);
	expect_np_error(&a, 6, RD_E_OFFER_STATE, "not accepted");
	send_answer(&b, id, RD_ANSWER_ACCEPT, 0, "", "", 7);
	expect_np(&b, RD_MSG_OK, 7, &g);
	expect_answered(&a, id, "bob", RD_ANSWER_ACCEPT, "", "");
	expect_result(&a, 0, id, RD_OFFER_ACCEPTED, "bob", "", 1);
	send_p2p_listen(&c, id, 40003, NULL, 8);
	expect_np_error(&c, 8, RD_E_NO_SUCH_OFFER, "not part of");
	send_p2p_failed(&c, id, "x", 9);
	expect_np_error(&c, 9, RD_E_NO_SUCH_OFFER, "not part of");
	send_p2p_listen(&a, id, 0, NULL, 10);
	expect_np_error(&a, 10, RD_E_MALFORMED, "port");
	send_p2p_listen(&a, id, 40001, "192.0.2.1:40001", 11);
	expect_np(&a, RD_MSG_OK, 11, &g);
	assert_int_equal(g.m.u.ok.for_type, RD_MSG_P2P_LISTEN);
	send_p2p_listen(&a, id, 40001, NULL, 12);
	expect_np_error(&a, 12, RD_E_OFFER_STATE, "already");
	send_p2p_listen(&b, id, 40002, "127.0.0.1:40002", 13); /* = the server's view: once */
	expect_np(&b, RD_MSG_OK, 13, &g);
	expect_intro(&b, id, RD_P2P_FOLLOWER, "alice", fpa,
		     (const char *const[]){ "127.0.0.1:40001", "192.0.2.1:40001", NULL }, tb);
	expect_intro(&a, id, RD_P2P_CHOOSER, "bob", fpb,
		     (const char *const[]){ "127.0.0.1:40002", NULL }, ta);
	assert_memory_equal(ta, tb, RD_TOKEN_SIZE);
	assert_memory_not_equal(ta, zero, RD_TOKEN_SIZE);
	/* the window's activity column (ctl list shows the same) says which way */
	char args[PATH_MAX * 2], list[4096], want[80];
	snprintf(args, sizeof(args), "ctl --socket '%s' list", s.ctl);
	assert_int_equal(run_capture(args, 1, list, sizeof(list)), 0);
	snprintf(want, sizeof(want), "offer %u to bob: direct link being made", id);
	if (!strstr(list, want))
		fail_msg("no '%s' in ctl list:\n%s", want, list);
	/* the race failed on bob's side: alice hears it, with the reason */
	send_p2p_failed(&b, id, "timeout", 14);
	expect_np(&b, RD_MSG_OK, 14, &g);
	assert_int_equal(g.m.u.ok.for_type, RD_MSG_P2P_FAILED);
	expect_np(&a, RD_MSG_P2P_FAILED, 0, &g);
	assert_int_equal(g.m.u.p2p_failed.offer_id, id);
	assert_true(text_has(g.m.u.p2p_failed.reason, "timeout"));
	assert_int_equal(run_capture(args, 1, list, sizeof(list)), 0);
	snprintf(want, sizeof(want), "offer %u from alice: through the server", id);
	if (!strstr(list, want))
		fail_msg("no '%s' in ctl list:\n%s", want, list);
	send_offer_id(&a, RD_MSG_OFFER_END, id, 15);
	expect_result(&a, 15, id, RD_OFFER_COMPLETED, "bob", "", 1);
	expect_np(&b, RD_MSG_OFFER_END, 0, &g);
	expect_result(&b, 0, id, RD_OFFER_COMPLETED, "alice", "", 0);
	/* carol shows no key: she cannot be introduced */
	id2 = offer_to(&a, &c, "carol", "files", 0, 16);
	send_answer(&c, id2, RD_ANSWER_ACCEPT, 0, "", "", 17);
	expect_np(&c, RD_MSG_OK, 17, &g);
	send_p2p_listen(&c, id2, 40003, NULL, 18);
	expect_np_error(&c, 18, RD_E_OFFER_STATE, "TLS");
	send_offer_id(&a, RD_MSG_OFFER_CANCEL, id2, 19);
	/* a room offer keeps the relay */
	send_offer(&b, RD_OFFER_TO_ROOM, "", 0, "files", 20);
	expect_np(&b, RD_MSG_OFFER_PENDING, 20, &g);
	id = g.m.u.offer_pending.offer_id;
	send_p2p_listen(&b, id, 40002, NULL, 21);
	expect_np_error(&b, 21, RD_E_OFFER_STATE, "room");
	peer_close(&a);
	peer_close(&b);
	peer_close(&c);
	assert_int_equal(srv_stop(&s), 0);
	rd_tls_ctx_free(ca);
	rd_tls_ctx_free(cb);
	{
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		assert_int_equal(system(cmd), 0);
	}
}

/* ROOMS as p: the rooms listed, "a,b,..." into out. */
static void room_names(struct peer *p, uint32_t req, char *out, size_t cap)
{
	struct rd_frame f;
	struct rd_msg m, w;

	rd_msg_init(&m, RD_MSG_ROOMS);
	peer_send(p, &m, req);
	assert_int_equal(rd_link_recv(p->l, WAIT_MS, &f), 0);
	assert_int_equal(f.hdr.type, RD_MSG_ROOM_LIST);
	assert_int_equal(rd_msg_decode(f.hdr.type, f.payload, f.len, &w), 0);
	out[0] = '\0';
	for (uint32_t i = 0; i < w.u.room_list.count; i++)
		snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "",
			 w.u.room_list.items[i].name);
	rd_msg_clear(&w);
}

static void send_join_key(struct peer *p, const char *room, const char *key, uint32_t req)
{
	struct rd_msg m;
	rd_msg_init(&m, RD_MSG_JOIN_KEY);
	snprintf(m.u.join_key.room, sizeof(m.u.join_key.room), "%s", room);
	m.u.join_key.key.p = (const uint8_t *)key;
	m.u.join_key.key.n = strlen(key);
	peer_send(p, &m, req);
}

/* PROTOCOL.md section 7, "Restricted rooms": a room restricted to holders of its key is
 * not in ROOM_LIST, WHO and JOIN of it are ERROR 300 as for no room, and so is JOIN_KEY
 * with a wrong key; JOIN_KEY with its key enters it, and then its member sees it; a
 * departure's PRESENCE to everyone does not name it. */
static void test_restricted_room_on_the_wire(void **state)
{
	struct srv s;
	struct peer a, b;
	struct got g;
	struct rd_msg m;
	char keyfile[PATH_MAX], arg[PATH_MAX + 16], names[256];
	FILE *f;

	(void)state;
	snprintf(keyfile, sizeof(keyfile), "/tmp/rd-roomkey-%d", (int)getpid());
	assert_non_null(f = fopen(keyfile, "w"));
	fputs("open sesame\n", f);
	fclose(f);
	snprintf(arg, sizeof(arg), "vault:%s", keyfile);
	srv_start(&s, "--rooms", "general,vault", "--room-key-file", arg, NULL);
	unlink(keyfile);
	enter(&a, s.port, "alice", "general");
	enter(&b, s.port, "bob", NULL);
	expect_presence(&a, RD_PRESENCE_CONNECTED, "bob", NULL);

	room_names(&b, 3, names, sizeof(names));
	assert_string_equal(names, "general");
	send_join(&b, "vault", 4);
	expect_error(&b, 4, RD_E_NO_SUCH_ROOM);
	rd_msg_init(&m, RD_MSG_WHO);
	snprintf(m.u.room.room, sizeof(m.u.room.room), "vault");
	peer_send(&b, &m, 5);
	expect_error(&b, 5, RD_E_NO_SUCH_ROOM);
	send_join_key(&b, "vault", "open barley", 6);
	expect_error(&b, 6, RD_E_NO_SUCH_ROOM);
	send_join_key(&b, "nowhere", "open sesame", 7);
	expect_error(&b, 7, RD_E_NO_SUCH_ROOM);

	send_join_key(&b, "VAULT", "open sesame", 8);
	expect(&b, RD_MSG_JOINED, 8, &g);
	assert_string_equal(g.m.u.joined.room, "vault");
	room_names(&b, 9, names, sizeof(names)); /* its own room it sees */
	assert_string_equal(names, "general,vault");
	send_join(&b, "vault", 10); /* the room it is in: no key needed */
	expect(&b, RD_MSG_JOINED, 10, &g);
	room_names(&a, 11, names, sizeof(names));
	assert_string_equal(names, "general");
	expect_quiet(&a, 200); /* alice heard nothing of bob's joining vault */

	peer_close(&b);
	expect(&a, RD_MSG_PRESENCE, 0, &g);
	assert_int_equal(g.m.u.presence.event, RD_PRESENCE_DISCONNECTED);
	assert_string_equal(g.m.u.presence.nick, "bob");
	assert_string_equal(g.m.u.presence.room, ""); /* not "vault" */
	peer_close(&a);
	assert_int_equal(srv_stop(&s), 0);
}

/* JOIN_KEY carries a secret: never over plaintext (ERROR 109). */
static void test_join_key_needs_tls(void **state)
{
	struct srv s;
	struct peer a;

	(void)state;
	g_plain = 1;
	srv_start(&s, NULL);
	enter(&a, s.port, "alice", NULL);
	send_join_key(&a, "general", "open sesame", 3);
	expect_error(&a, 3, RD_E_TLS_REQUIRED);
	peer_close(&a);
	g_plain = 0;
	assert_int_equal(srv_stop(&s), 0);
}

int main(int argc, char **argv)
{
	char self[PATH_MAX];
	(void)argc;
	snprintf(self, sizeof(self), "%s", argv[0]);
	snprintf(g_bindir, sizeof(g_bindir), "%s", dirname(self));
	signal(SIGPIPE, SIG_IGN);
	if (rd_tls_ctx_client_new(NULL, NULL, 0, &g_cctx) != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_registration_order_and_notices, teardown_servers),
		cmocka_unit_test_teardown(test_nickname_refusals, teardown_servers),
		cmocka_unit_test_teardown(test_restricted_room_on_the_wire, teardown_servers),
		cmocka_unit_test_teardown(test_join_key_needs_tls, teardown_servers),
		cmocka_unit_test_teardown(test_direct_mode_on_the_wire, teardown_servers),
		cmocka_unit_test_teardown(test_nothing_before_registration, teardown_servers),
		cmocka_unit_test_teardown(test_version_mismatch_is_refused, teardown_servers),
		cmocka_unit_test_teardown(test_room_isolation_and_private_messages,
					  teardown_servers),
		cmocka_unit_test_teardown(test_heartbeat_disconnects_silent_client,
					  teardown_servers),
		cmocka_unit_test_teardown(test_no_ping_right_after_registering, teardown_servers),
		cmocka_unit_test_teardown(test_descriptor_limit_refuses_with_205, teardown_servers),
		cmocka_unit_test_teardown(test_unregistered_connection_times_out, teardown_servers),
		cmocka_unit_test_teardown(test_hostile_frames_leave_others_served,
					  teardown_servers),
		cmocka_unit_test_teardown(test_over_long_fields_get_their_own_codes,
					  teardown_servers),
		cmocka_unit_test_teardown(test_types_without_a_handler_are_104_and_errors_unanswered,
					  teardown_servers),
		cmocka_unit_test_teardown(test_compressed_frame_limits, teardown_servers),
		cmocka_unit_test_teardown(test_request_id_zero, teardown_servers),
		cmocka_unit_test_teardown(test_say_kind_is_relayed_unchanged, teardown_servers),
		cmocka_unit_test_teardown(test_bye_frees_the_nickname_at_once, teardown_servers),
		cmocka_unit_test_teardown(test_chat_rate_limit, teardown_servers),
		cmocka_unit_test_teardown(test_quiet_session_is_not_announced, teardown_servers),
		cmocka_unit_test_teardown(test_small_frames_only_before_registration,
					  teardown_servers),
		cmocka_unit_test_teardown(test_plaintext_client_to_tls_server_gets_109,
					  teardown_servers),
		cmocka_unit_test_teardown(test_tls_client_to_plaintext_server_is_told,
					  teardown_servers),
		cmocka_unit_test_teardown(test_plaintext_registration_order, teardown_servers),
		cmocka_unit_test_teardown(test_plaintext_hostile_frames, teardown_servers),
		cmocka_unit_test_teardown(test_kick_and_broadcast_through_ctl, teardown_servers),
		cmocka_unit_test_teardown(test_ctl_info_shows_the_server_fingerprint,
					  teardown_servers),
		cmocka_unit_test_teardown(test_stalled_reader_does_not_delay_others,
					  teardown_servers),
		cmocka_unit_test_teardown(test_max_clients_refuses_extra, teardown_servers),
		cmocka_unit_test_teardown(test_sigterm_sends_shutdown_and_exits_zero,
					  teardown_servers),
		cmocka_unit_test_teardown(test_port_in_use_is_a_clear_error, teardown_servers),
		cmocka_unit_test_teardown(test_offer_accepted_reaches_both_sides, teardown_servers),
		cmocka_unit_test_teardown(test_offer_rejection_reason_reaches_offerer,
					  teardown_servers),
		cmocka_unit_test_teardown(test_offer_expires_with_short_timeout, teardown_servers),
		cmocka_unit_test_teardown(test_offer_hold_extends_then_accept, teardown_servers),
		cmocka_unit_test_teardown(test_offer_cancelled_by_offerer, teardown_servers),
		cmocka_unit_test_teardown(test_offer_recipient_disconnects_while_deciding,
					  teardown_servers),
		cmocka_unit_test_teardown(test_second_offer_while_waiting_is_404, teardown_servers),
		cmocka_unit_test_teardown(test_room_offer_two_accept_one_rejects, teardown_servers),
		cmocka_unit_test_teardown(test_offer_errors, teardown_servers),
		cmocka_unit_test_teardown(test_p2p_intro_reaches_both_sides, teardown_servers),
		cmocka_unit_test_teardown(test_offer_relay_in_order_then_completed,
					  teardown_servers),
		cmocka_unit_test_teardown(test_offer_relay_slow_receiver_bounded, teardown_servers),
		cmocka_unit_test_teardown(test_200_clients_chat_exactly_once_in_order,
					  teardown_servers),
	};
	int failed;

	/* the file messages are an application's: the codec knows them once registered */
	if (rdf_proto_register() != 0)
		return 1;
	/* RD_TEST_FILTER=pattern runs only the matching tests (cmocka's wildcards) */
	if (getenv("RD_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("RD_TEST_FILTER"));
	failed = cmocka_run_group_tests_name("server_live", tests, NULL, NULL);
	rd_tls_ctx_free(g_cctx);
	return failed;
}
