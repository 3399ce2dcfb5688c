/* test_peer.c - the direct link between two introduced clients (rd_peer.h): two peers in
 * one process, each racing on its own thread, on 127.0.0.1 with ephemeral ports. Where a
 * test needs a peer that misbehaves on purpose (a second P2P_HELLO with a used token, a
 * silent TCP peer), the main thread plays it with the transport and link layers.
 * Every wait is bounded: the races by their deadline, the raw peers by WAIT_MS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rd_err.h"
#include "rd_frame.h"
#include "rd_link.h"
#include "rd_msg.h"
#include "rd_net.h"
#include "rd_peer.h"
#include "rd_proto.h"
#include "rd_tls.h"

#define WAIT_MS 5000 /* bound on a wait that is expected to succeed */
#define RACE_MS 3000 /* deadline of a race that is expected to succeed */
#define FAIL_MS 600  /* deadline of a race that is expected to time out */
/* deadline of a race expected to time out after refusals that take a few milliseconds:
 * the real deadline, so that a loaded machine (sanitizers, shared cores) still sees them */
#define REFUSE_MS RD_PEER_TIMEOUT_MS
#define LATE_MS 10000    /* a race that has not returned by then broke its deadline */
#define APP_TYPE 0x2001u /* an application frame type for round trips */

struct fixture {
	char dir[64];
	struct rd_tls_identity *alice, *bob, *mallory;
	uint8_t alice_fp[RD_TLS_FP_LEN], bob_fp[RD_TLS_FP_LEN], mallory_fp[RD_TLS_FP_LEN];
};

/* One side of an introduction, raced on its own thread. */
struct side {
	struct rd_peer *p;
	uint16_t port;
	struct rd_peer_intro in;
	char cand[4][RD_PEER_ADDR_BUF];
	const char *candp[4];
	pthread_t th;
	int rc;
	char reason[2048];
	uint64_t took_ms;
	/* events seen by on_event (called on this side's thread only) */
	int ev[8];
	int bad_cert_dial, bad_cert_from;
	char texts[2048];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void make_id(const char *dir, const char *name, struct rd_tls_identity **id,
		    uint8_t fp[RD_TLS_FP_LEN])
{
	char crt[160], key[160];

	snprintf(crt, sizeof(crt), "%s/%s.crt", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	assert_int_equal(rd_tls_identity_ensure(crt, key, name, id, NULL), 0);
	rd_tls_identity_fp(*id, fp);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/rd_test_peer.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	make_id(f->dir, "alice", &f->alice, f->alice_fp);
	make_id(f->dir, "bob", &f->bob, f->bob_fp);
	make_id(f->dir, "mallory", &f->mallory, f->mallory_fp);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	rd_tls_identity_free(f->alice);
	rd_tls_identity_free(f->bob);
	rd_tls_identity_free(f->mallory);
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void on_event(void *user, enum rd_peer_event ev, const char *addr, const char *text)
{
	struct side *s = user;
	size_t n = strlen(s->texts);

	if ((int)ev >= 0 && (size_t)ev < sizeof(s->ev) / sizeof(s->ev[0]))
		s->ev[ev]++;
	if (ev == RD_PEER_EV_BAD_CERT && strncmp(addr, "dial ", 5) == 0)
		s->bad_cert_dial++;
	if (ev == RD_PEER_EV_BAD_CERT && strncmp(addr, "from ", 5) == 0)
		s->bad_cert_from++;
	snprintf(s->texts + n, sizeof(s->texts) - n, "[%s %s: %s]", rd_peer_event_name(ev), addr,
		 text);
}

static const uint8_t token_a[RD_TOKEN_SIZE] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
						0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };

/* A side listening on 127.0.0.1 for offer 7 with token_a, and no candidates yet. */
static void side_init(struct side *s, const struct rd_tls_identity *id, const char *nick,
		      const char *peer_nick, const uint8_t peer_fp[RD_TLS_FP_LEN], int chooser,
		      int timeout_ms)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(rd_peer_new(id, "127.0.0.1", &s->p, &s->port), 0);
	assert_true(s->port > 0);
	s->in.offer_id = 7;
	memcpy(s->in.token, token_a, RD_TOKEN_SIZE);
	s->in.nick = nick;
	s->in.peer_nick = peer_nick;
	memcpy(s->in.peer_fp, peer_fp, RD_TLS_FP_LEN);
	s->in.chooser = chooser;
	s->in.timeout_ms = timeout_ms;
	s->in.cancel_fd = -1;
	s->in.on_event = on_event;
	s->in.user = s;
	s->in.candidates = s->candp;
}

static void side_add_cand(struct side *s, uint16_t port)
{
	size_t i = s->in.ncandidates++;

	snprintf(s->cand[i], sizeof(s->cand[i]), "127.0.0.1:%u", port);
	s->candp[i] = s->cand[i];
}

static void *side_run(void *arg)
{
	struct side *s = arg;
	uint64_t t0 = rd_now_mono_ms();

	s->rc = rd_peer_connect(s->p, &s->in, s->reason, sizeof(s->reason));
	s->took_ms = rd_now_mono_ms() - t0;
	return NULL;
}

static void side_start(struct side *s)
{
	assert_int_equal(pthread_create(&s->th, NULL, side_run, s), 0);
}

static void side_join(struct side *s)
{
	assert_int_equal(pthread_join(s->th, NULL), 0);
}

static void race(struct side *a, struct side *b)
{
	side_start(a);
	side_start(b);
	side_join(a);
	side_join(b);
}

/* A port on 127.0.0.1 that nobody listens on (bound, then closed). */
static uint16_t closed_port(void)
{
	uint16_t port;
	int fd;

	assert_int_equal(rd_net_listen("127.0.0.1", 0, 1, &fd, &port), 0);
	close(fd);
	return port;
}

/* Both ends of the link are the two ends of one TCP connection. */
static void assert_same_connection(struct side *a, struct side *b)
{
	char ip[64];
	uint16_t a_local, a_peer, b_local, b_peer;

	assert_true(rd_peer_fd(a->p) >= 0);
	assert_true(rd_peer_fd(b->p) >= 0);
	assert_int_equal(rd_net_local(rd_peer_fd(a->p), ip, sizeof(ip), &a_local), 0);
	assert_int_equal(rd_net_peer(rd_peer_fd(a->p), ip, sizeof(ip), &a_peer), 0);
	assert_int_equal(rd_net_local(rd_peer_fd(b->p), ip, sizeof(ip), &b_local), 0);
	assert_int_equal(rd_net_peer(rd_peer_fd(b->p), ip, sizeof(ip), &b_peer), 0);
	assert_int_equal(a_local, b_peer);
	assert_int_equal(a_peer, b_local);
	assert_int_equal(rd_peer_dialled(a->p), !rd_peer_dialled(b->p));
}

/* from sends an application frame with text, to receives it (blocking helper). */
static void send_and_receive(struct side *from, struct side *to, const char *text)
{
	struct rd_frame f;

	assert_int_equal(rd_peer_send(from->p, APP_TYPE, 5, text, strlen(text), 0), 0);
	assert_int_equal(rd_peer_flush(from->p, WAIT_MS), 0);
	assert_int_equal(rd_peer_recv(to->p, WAIT_MS, &f), 0);
	assert_int_equal(f.hdr.type, APP_TYPE);
	assert_int_equal(f.hdr.req_id, 5);
	assert_int_equal(f.len, strlen(text));
	assert_memory_equal(f.payload, text, f.len);
}

/* The same through the event-loop calls: poll, rd_peer_process, rd_peer_next. */
static void send_and_process(struct side *from, struct side *to, const char *text)
{
	struct rd_frame f;
	struct pollfd pfd = { .fd = rd_peer_fd(to->p), .events = POLLIN };
	int rc, got = 0, rounds;

	assert_int_equal(rd_peer_send(from->p, APP_TYPE, 6, text, strlen(text), 0), 0);
	while (rd_peer_want_write(from->p))
		assert_int_equal(rd_peer_process(from->p), 0);
	for (rounds = 0; rounds < 100 && !got; rounds++) {
		assert_true(poll(&pfd, 1, WAIT_MS) > 0);
		assert_int_equal(rd_peer_process(to->p), 0);
		rc = rd_peer_next(to->p, &f);
		if (rc == RD_ERR_INCOMPLETE)
			continue;
		assert_int_equal(rc, 0);
		assert_int_equal(f.hdr.type, APP_TYPE);
		assert_memory_equal(f.payload, text, strlen(text));
		got = 1;
	}
	assert_true(got);
}

static void assert_link_works(struct fixture *fx, struct side *a, struct side *b)
{
	uint8_t fp[RD_TLS_FP_LEN];

	assert_int_equal(a->rc, 0);
	assert_int_equal(b->rc, 0);
	assert_same_connection(a, b);
	assert_int_equal(rd_peer_peer_fp(a->p, fp), 0);
	assert_memory_equal(fp, fx->bob_fp, RD_TLS_FP_LEN);
	assert_int_equal(rd_peer_peer_fp(b->p, fp), 0);
	assert_memory_equal(fp, fx->alice_fp, RD_TLS_FP_LEN);
	assert_int_equal(a->ev[RD_PEER_EV_CHOSEN], 1);
	assert_int_equal(b->ev[RD_PEER_EV_CHOSEN], 1);
	send_and_receive(a, b, "hello bob");
	send_and_receive(b, a, "hello alice");
	send_and_process(a, b, "again, bob");
	send_and_process(b, a, "again, alice");
}

static void side_free(struct side *s)
{
	rd_peer_free(s->p);
	s->p = NULL;
}

/* ---- happy paths ---------------------------------------------------------------------- */

/* alice (the chooser) dials bob: TLS both ways, HELLO, OK, READY. */
static void test_chooser_dials_link_works(void **state)
{
	struct fixture *fx = *state;
	struct side a, b;

	side_init(&a, fx->alice, "alice", "bob", fx->bob_fp, 1, RACE_MS);
	side_init(&b, fx->bob, "bob", "alice", fx->alice_fp, 0, RACE_MS);
	side_add_cand(&a, b.port);
	race(&a, &b);
	assert_link_works(fx, &a, &b);
	assert_int_equal(rd_peer_dialled(a.p), 1);
	side_free(&a);
	side_free(&b);
}

/* bob (not the chooser) dials alice: HELLO answered by READY directly. */
static void test_other_side_dials_link_works(void **state)
{
	struct fixture *fx = *state;
	struct side a, b;

	side_init(&a, fx->alice, "alice", "bob", fx->bob_fp, 1, RACE_MS);
	side_init(&b, fx->bob, "bob", "alice", fx->alice_fp, 0, RACE_MS);
	side_add_cand(&b, a.port);
	race(&a, &b);
	assert_link_works(fx, &a, &b);
	assert_int_equal(rd_peer_dialled(b.p), 1);
	side_free(&a);
	side_free(&b);
}

/* Both dial each other: up to two connections verify; exactly one is kept, the same one on
 * both sides, every time. */
static void test_both_dial_one_link_kept(void **state)
{
	struct fixture *fx = *state;
	struct side a, b;
	int round;

	for (round = 0; round < 8; round++) {
		side_init(&a, fx->alice, "alice", "bob", fx->bob_fp, 1, RACE_MS);
		side_init(&b, fx->bob, "bob", "alice", fx->alice_fp, 0, RACE_MS);
		side_add_cand(&a, b.port);
		side_add_cand(&b, a.port);
		race(&a, &b);
		assert_link_works(fx, &a, &b);
		side_free(&a);
		side_free(&b);
	}
}

/* A closed port listed before the good one: still connected, through the good one. */
static void test_unreachable_candidate_then_good_one(void **state)
{
	struct fixture *fx = *state;
	struct side a, b;
	uint16_t dead = closed_port();
	char want[64];

	side_init(&a, fx->alice, "alice", "bob", fx->bob_fp, 1, RACE_MS);
	side_init(&b, fx->bob, "bob", "alice", fx->alice_fp, 0, RACE_MS);
	side_add_cand(&a, dead);
	side_add_cand(&a, b.port);
	race(&a, &b);
	assert_link_works(fx, &a, &b);
	assert_true(a.ev[RD_PEER_EV_FAILED] >= 1);
	snprintf(want, sizeof(want), "dial 127.0.0.1:%u: ", dead);
	assert_non_null(strstr(a.reason, want));
	side_free(&a);
	side_free(&b);
}

/* The race from the caller's own poll loop, next to another descriptor (standing for the
 * server connection), which the loop keeps serving while the race runs. */
static void test_race_in_callers_poll_loop(void **state)
{
	struct fixture *fx = *state;
	struct pollfd fds[RD_PEER_POLLFDS + 1];
	struct side a, b;
	size_t n;
	int ms, rc, pipefd[2], served = 0, rounds = 0;
	char byte;

	side_init(&a, fx->alice, "alice", "bob", fx->bob_fp, 1, RACE_MS);
	side_init(&b, fx->bob, "bob", "alice", fx->alice_fp, 0, RACE_MS);
	side_add_cand(&a, b.port);
	side_add_cand(&b, a.port);
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(write(pipefd[1], "x", 1), 1);
	side_start(&b);
	assert_int_equal(rd_peer_start(a.p, &a.in), 0);
	assert_int_equal(rd_peer_start(a.p, &a.in), RD_ERR_STATE);
	do {
		assert_true(rounds++ < 10000);
		assert_int_equal(rd_peer_poll_set(a.p, fds + 1, RD_PEER_POLLFDS, &n, &ms), 0);
		fds[0] = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
		assert_true(poll(fds, n + 1, ms) >= 0);
		if (fds[0].revents & POLLIN) {
			assert_int_equal(read(pipefd[0], &byte, 1), 1);
			served++;
		}
		rc = rd_peer_step(a.p, fds + 1, n);
	} while (rc == RD_ERR_AGAIN);
	a.rc = rc;
	side_join(&b);
	assert_int_equal(served, 1);
	assert_link_works(fx, &a, &b);
	assert_int_equal(rd_peer_step(a.p, fds + 1, n), RD_ERR_STATE); /* over */
	close(pipefd[0]);
	close(pipefd[1]);
	side_free(&a);
	side_free(&b);
}

/* A readable cancel descriptor ends the race with RD_ERR_CANCELLED, long before its
 * deadline. */
static void test_cancel_fd_stops_the_race(void **state)
{
	struct fixture *fx = *state;
	struct side a;
	int pipefd[2];

	assert_int_equal(pipe(pipefd), 0);
	side_init(&a, fx->alice, "alice", "bob", fx->bob_fp, 1, LATE_MS * 10);
	side_add_cand(&a, closed_port());
	a.in.cancel_fd = pipefd[0];
	assert_int_equal(write(pipefd[1], "x", 1), 1);
	side_start(&a);
	side_join(&a);
	assert_int_equal(a.rc, RD_ERR_CANCELLED);
	assert_true(a.took_ms < LATE_MS);
	assert_true(rd_peer_fd(a.p) < 0);
	close(pipefd[0]);
	close(pipefd[1]);
	side_free(&a);
}

/* ---- refusals ------------------------------------------------------------------------- */

/* The two sides hold different tokens: each refuses the other's HELLO (ERROR 403 inside
 * TLS), each hears the refusal, and both time out with a reason. */
static void test_wrong_token_refused(void **state)
{
	struct fixture *fx = *state;
	struct side a, b;

	side_init(&a, fx->alice, "alice", "bob", fx->bob_fp, 1, REFUSE_MS);
	side_init(&b, fx->bob, "bob", "alice", fx->alice_fp, 0, REFUSE_MS);
	b.in.token[0] ^= 0x01;
	side_add_cand(&a, b.port);
	side_add_cand(&b, a.port);
	race(&a, &b);
	assert_int_equal(a.rc, RD_ERR_TIMEOUT);
	assert_int_equal(b.rc, RD_ERR_TIMEOUT);
	assert_true(rd_peer_fd(a.p) < 0);
	assert_int_equal(a.ev[RD_PEER_EV_BAD_TOKEN], 1);
	assert_int_equal(b.ev[RD_PEER_EV_BAD_TOKEN], 1);
	assert_int_equal(a.ev[RD_PEER_EV_REJECTED], 1);
	assert_int_equal(b.ev[RD_PEER_EV_REJECTED], 1);
	assert_int_equal(a.ev[RD_PEER_EV_CHOSEN] + b.ev[RD_PEER_EV_CHOSEN], 0);
	assert_non_null(strstr(a.reason, "wrong token"));
	assert_non_null(strstr(b.reason, "wrong token"));
	side_free(&a);
	side_free(&b);
}

/* A raw dialler with alice's key: TLS client on the P2P context, pinned to pin. */
static struct rd_link *raw_dial(const struct rd_tls_identity *id, uint16_t port,
				const uint8_t pin[RD_TLS_FP_LEN])
{
	struct rd_tls_expect ex = { .has_pin = 1 };
	struct rd_tls_ctx *ctx = NULL;
	struct rd_tls_conn *t = NULL;
	struct rd_link *l = NULL;
	int fd;

	memcpy(ex.pin, pin, RD_TLS_FP_LEN);
	assert_int_equal(rd_tls_ctx_client_new(id, NULL, RD_TLS_P2P, &ctx), 0);
	assert_int_equal(rd_net_connect("127.0.0.1", port, WAIT_MS, &fd), 0);
	assert_int_equal(rd_tls_conn_tls_new(ctx, fd, &ex, &t), 0);
	assert_int_equal(rd_link_new(t, NULL, &l), 0);
	assert_int_equal(rd_link_handshake(l, WAIT_MS), 0);
	rd_tls_ctx_free(ctx);
	return l;
}

static void raw_send(struct rd_link *l, const struct rd_msg *m, uint32_t req_id)
{
	struct rd_buf b;
	enum rd_tls_want want;
	int i;

	rd_buf_init(&b, 0);
	assert_int_equal(rd_msg_frame(&b, m, req_id, 0), 0);
	assert_int_equal(rd_link_queue(l, RD_LINK_EVENT, b.data, b.len, NULL), 0);
	for (i = 0; i < 100; i++) {
		assert_int_equal(rd_link_flush(l, &want), 0);
		if (want == RD_TLS_WANT_NONE)
			break;
		assert_int_equal(rd_net_wait(rd_link_fd(l), POLLOUT, WAIT_MS), 0);
	}
	rd_buf_free(&b);
}

static void raw_hello(struct rd_link *l, const char *nick)
{
	struct rd_msg m;

	rd_msg_init(&m, RD_MSG_P2P_HELLO);
	m.u.p2p_hello.offer_id = 7;
	memcpy(m.u.p2p_hello.token, token_a, RD_TOKEN_SIZE);
	snprintf(m.u.p2p_hello.nick, sizeof(m.u.p2p_hello.nick), "%s", nick);
	raw_send(l, &m, 1);
}

/* A second P2P_HELLO with the token already used is refused; the first connection, which
 * used it, still becomes the link when the chooser confirms it. */
static void test_reused_token_refused(void **state)
{
	struct fixture *fx = *state;
	struct side b;
	struct rd_link *first, *second;
	struct rd_frame f;
	struct rd_msg m;

	side_init(&b, fx->bob, "bob", "alice", fx->alice_fp, 0, RACE_MS);
	side_start(&b);

	first = raw_dial(fx->alice, b.port, fx->bob_fp);
	raw_hello(first, "alice");
	assert_int_equal(rd_link_recv(first, WAIT_MS, &f), 0);
	assert_int_equal(f.hdr.type, RD_MSG_OK); /* token good, bob waits for READY */

	second = raw_dial(fx->alice, b.port, fx->bob_fp);
	raw_hello(second, "alice");
	assert_int_equal(rd_link_recv(second, WAIT_MS, &f), 0);
	assert_int_equal(f.hdr.type, RD_MSG_ERROR);
	assert_int_equal(rd_msg_decode(f.hdr.type, f.payload, f.len, &m), 0);
	assert_int_equal(m.u.error.code, RD_E_BAD_TOKEN);
	assert_int_equal(m.u.error.for_type, RD_MSG_P2P_HELLO);
	assert_int_equal(f.hdr.req_id, 1);
	rd_msg_clear(&m);

	rd_msg_init(&m, RD_MSG_P2P_READY);
	m.u.offer_id.offer_id = 7;
	raw_send(first, &m, 1);
	side_join(&b);
	assert_int_equal(b.rc, 0);
	assert_int_equal(b.ev[RD_PEER_EV_BAD_TOKEN], 1);
	assert_non_null(strstr(b.texts, "token already used"));
	assert_int_equal(rd_peer_dialled(b.p), 0);

	rd_link_free(second);
	rd_link_free(first);
	side_free(&b);
}

/* A token past its expiry is refused even though it is the right one. */
static void test_expired_token_refused(void **state)
{
	struct fixture *fx = *state;
	struct side a, b;

	side_init(&a, fx->alice, "alice", "bob", fx->bob_fp, 1, REFUSE_MS);
	side_init(&b, fx->bob, "bob", "alice", fx->alice_fp, 0, REFUSE_MS);
	b.in.token_expires_ms = 1; /* long gone */
	side_add_cand(&a, b.port);
	race(&a, &b);
	assert_int_equal(a.rc, RD_ERR_TIMEOUT);
	assert_int_equal(b.rc, RD_ERR_TIMEOUT);
	assert_int_equal(b.ev[RD_PEER_EV_BAD_TOKEN], 1);
	assert_non_null(strstr(b.reason, "token expired"));
	assert_int_equal(a.ev[RD_PEER_EV_REJECTED], 1);
	assert_non_null(strstr(a.reason, "token expired")); /* the refusal's text reached alice */
	side_free(&a);
	side_free(&b);
}

/* mallory knows the token and pretends to be alice with her own key: bob's dialler pin
 * refuses her listener, and bob's acceptor refuses her connection after the handshake. */
static void test_wrong_certificate_refused_both_ways(void **state)
{
	struct fixture *fx = *state;
	struct side m, b;

	side_init(&m, fx->mallory, "alice", "bob", fx->bob_fp, 1, REFUSE_MS);
	side_init(&b, fx->bob, "bob", "alice", fx->alice_fp, 0, REFUSE_MS);
	side_add_cand(&m, b.port);
	side_add_cand(&b, m.port);
	race(&m, &b);
	assert_int_equal(b.rc, RD_ERR_TIMEOUT);
	assert_int_equal(m.rc, RD_ERR_TIMEOUT);
	assert_int_equal(b.bad_cert_dial, 1);
	assert_int_equal(b.bad_cert_from, 1);
	assert_int_equal(b.ev[RD_PEER_EV_VERIFIED], 0);
	assert_int_equal(b.ev[RD_PEER_EV_BAD_TOKEN], 0); /* refused before any HELLO */
	assert_non_null(strstr(b.reason, "wrong certificate"));
	/* mallory was told (ERROR 403 inside TLS) */
	assert_int_equal(m.ev[RD_PEER_EV_REJECTED], 1);
	assert_non_null(strstr(m.reason, "wrong certificate"));
	side_free(&m);
	side_free(&b);
}

/* The direct link has its own ALPN name: a client-server TLS client (ALPN roomdrop/1) with
 * the right key fails the handshake on a peer's port, and a peer's dialler fails on a
 * roomdrop server context. */
static void test_alpn_keeps_server_and_peer_ports_apart(void **state)
{
	struct fixture *fx = *state;
	struct rd_tls_expect ex = { .has_pin = 1 };
	struct rd_tls_ctx *ctx = NULL, *srv = NULL;
	struct rd_tls_conn *t = NULL;
	struct rd_link *l = NULL;
	struct rd_frame f;
	struct side b, a;
	uint16_t sport;
	int fd, lfd, sfd, rc;

	/* a roomdrop/1 client against bob's peer port */
	side_init(&b, fx->bob, "bob", "alice", fx->alice_fp, 0, REFUSE_MS);
	side_start(&b);
	memcpy(ex.pin, fx->bob_fp, RD_TLS_FP_LEN);
	assert_int_equal(rd_tls_ctx_client_new(fx->alice, NULL, 0, &ctx), 0);
	assert_int_equal(rd_net_connect("127.0.0.1", b.port, WAIT_MS, &fd), 0);
	assert_int_equal(rd_tls_conn_tls_new(ctx, fd, &ex, &t), 0);
	assert_int_equal(rd_link_new(t, NULL, &l), 0);
	rc = rd_link_handshake(l, WAIT_MS);
	if (rc == 0) /* TLS 1.3: the refusal may show on the first read */
		rc = rd_link_recv(l, WAIT_MS, &f);
	assert_true(rc != 0 && rc != RD_ERR_TIMEOUT);
	rd_link_free(l);
	rd_tls_ctx_free(ctx);
	side_join(&b);
	assert_int_equal(b.rc, RD_ERR_TIMEOUT);
	assert_int_equal(b.ev[RD_PEER_EV_VERIFIED], 0);
	assert_true(b.ev[RD_PEER_EV_FAILED] >= 1);
	assert_non_null(strstr(b.texts, "no application protocol"));
	side_free(&b);

	/* alice's dialler against a roomdrop server context with bob's key */
	assert_int_equal(rd_tls_ctx_server_new(fx->bob, 0, &srv), 0);
	assert_int_equal(rd_net_listen("127.0.0.1", 0, 4, &lfd, &sport), 0);
	side_init(&a, fx->alice, "alice", "bob", fx->bob_fp, 1, REFUSE_MS);
	side_add_cand(&a, sport);
	side_start(&a);
	assert_int_equal(rd_net_wait(lfd, POLLIN, WAIT_MS), 0);
	assert_int_equal(rd_net_accept(lfd, &sfd, NULL, 0, NULL), 0);
	assert_int_equal(rd_tls_conn_tls_new(srv, sfd, NULL, &t), 0);
	assert_int_equal(rd_link_new(t, NULL, &l), 0);
	assert_true(rd_link_handshake(l, WAIT_MS) != 0);
	side_join(&a);
	assert_int_equal(a.rc, RD_ERR_TIMEOUT);
	assert_int_equal(a.ev[RD_PEER_EV_VERIFIED], 0);
	assert_true(a.ev[RD_PEER_EV_FAILED] >= 1);
	assert_non_null(strstr(a.texts, "no application protocol"));
	rd_link_free(l);
	rd_tls_ctx_free(srv);
	close(lfd);
	side_free(&a);
}

/* ---- nothing to connect to ------------------------------------------------------------ */

/* Only a closed port: RD_ERR_TIMEOUT at the deadline, the reason names what was tried. */
static void test_nothing_reachable_times_out_with_reason(void **state)
{
	struct fixture *fx = *state;
	struct side a;
	uint16_t dead = closed_port();
	char want[64];

	side_init(&a, fx->alice, "alice", "bob", fx->bob_fp, 1, FAIL_MS);
	side_add_cand(&a, dead);
	side_start(&a);
	side_join(&a);
	assert_int_equal(a.rc, RD_ERR_TIMEOUT);
	assert_true(a.took_ms < LATE_MS);
	snprintf(want, sizeof(want), "dial 127.0.0.1:%u: connection refused", dead);
	assert_non_null(strstr(a.reason, want));
	side_free(&a);
}

/* A candidate that accepts TCP and says nothing, and a peer that connects to us and says
 * nothing: neither holds the race past its deadline, and the reason says where each
 * stopped. */
static void test_silent_peers_do_not_hold_the_deadline(void **state)
{
	struct fixture *fx = *state;
	struct side a;
	uint16_t silent_port;
	int lfd, dfd, afd = -1;
	char want[80];

	assert_int_equal(rd_net_listen("127.0.0.1", 0, 4, &lfd, &silent_port), 0);
	side_init(&a, fx->alice, "alice", "bob", fx->bob_fp, 1, FAIL_MS);
	side_add_cand(&a, silent_port);
	side_start(&a);
	assert_int_equal(rd_net_connect("127.0.0.1", a.port, WAIT_MS, &dfd), 0);
	if (rd_net_wait(lfd, POLLIN, WAIT_MS) == 0)
		assert_int_equal(rd_net_accept(lfd, &afd, NULL, 0, NULL), 0);
	side_join(&a);
	assert_int_equal(a.rc, RD_ERR_TIMEOUT);
	assert_true(a.took_ms < LATE_MS);
	snprintf(want, sizeof(want), "dial 127.0.0.1:%u: TLS handshake not finished", silent_port);
	assert_non_null(strstr(a.reason, want));
	assert_non_null(strstr(a.reason, "from 127.0.0.1:"));
	if (afd >= 0)
		close(afd);
	close(dfd);
	close(lfd);
	side_free(&a);
}

/* ---- the API's edges ------------------------------------------------------------------ */

static void test_bad_arguments_and_second_race(void **state)
{
	struct fixture *fx = *state;
	struct side a;
	char reason[200];
	uint16_t port;
	struct rd_peer *p;

	assert_int_equal(rd_peer_new(NULL, "127.0.0.1", &p, &port), RD_ERR_INVAL);
	side_init(&a, fx->alice, "alice", "bob", fx->bob_fp, 1, 50);
	a.in.nick = "";
	assert_int_equal(rd_peer_connect(a.p, &a.in, reason, sizeof(reason)), RD_ERR_INVAL);
	a.in.nick = "alice";
	a.in.ncandidates = RD_PEER_MAX_CANDIDATES + 1;
	assert_int_equal(rd_peer_connect(a.p, &a.in, reason, sizeof(reason)), RD_ERR_INVAL);
	a.in.ncandidates = 0;
	assert_int_equal(rd_peer_connect(a.p, &a.in, reason, sizeof(reason)), RD_ERR_TIMEOUT);
	assert_true(reason[0] != '\0');
	assert_int_equal(rd_peer_connect(a.p, &a.in, reason, sizeof(reason)), RD_ERR_STATE);
	assert_int_equal(rd_peer_send(a.p, APP_TYPE, 0, "x", 1, 0), RD_ERR_STATE);
	assert_int_equal(rd_peer_fd(a.p), -1);
	side_free(&a);
}

static void test_local_addrs_skip_loopback(void **state)
{
	char addrs[8][RD_PEER_ADDR_BUF];
	size_t n, i;

	(void)state;
	assert_int_equal(rd_peer_local_addrs(4242, addrs, 8, &n), 0);
	assert_true(n <= 8);
	for (i = 0; i < n; i++) {
		assert_null(strstr(addrs[i], "127.0.0.1"));
		assert_null(strstr(addrs[i], "[::1]"));
		assert_null(strstr(addrs[i], "[fe80"));
		assert_non_null(strstr(addrs[i], ":4242"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chooser_dials_link_works, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_side_dials_link_works, setup, teardown),
		cmocka_unit_test_setup_teardown(test_both_dial_one_link_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreachable_candidate_then_good_one, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_race_in_callers_poll_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_fd_stops_the_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_token_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reused_token_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired_token_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_certificate_refused_both_ways, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_alpn_keeps_server_and_peer_ports_apart, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_nothing_reachable_times_out_with_reason, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_silent_peers_do_not_hold_the_deadline, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments_and_second_race, setup,
						teardown),
		cmocka_unit_test(test_local_addrs_skip_loopback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
