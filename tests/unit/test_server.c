/* test_server.c - the room core's server object in this process: start and stop paths
 * that a live server process cannot show (signal policy, start-up failures). */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "rd_buf.h"
#include "rd_client.h"
#include "rd_err.h"
#include "rd_msg.h"
#include "rd_proto.h"
#include "rd_server.h"

static struct rd_server *new_server(void)
{
	struct rd_server_config cfg;
	struct rd_server *s = NULL;

	rd_server_config_defaults(&cfg);
	cfg.host = "127.0.0.1";
	cfg.port = 0;
	cfg.flush_threads = 2;
	cfg.plain = 1; /* (no key files written by these tests) */
	assert_int_equal(rd_server_new(&cfg, NULL, &s), 0);
	return s;
}

/* The library never changes the process's signal dispositions (the program decides). */
static void test_start_leaves_sigpipe_alone(void **state)
{
	struct sigaction dfl, old, now;
	struct rd_server *s;

	(void)state;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);
	s = new_server();
	assert_int_equal(rd_server_start(s), 0);
	assert_int_equal(sigaction(SIGPIPE, NULL, &now), 0);
	assert_true(now.sa_handler == SIG_DFL);
	rd_server_stop(s, "test over", 1000);
	rd_server_free(s);
	assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
}

static int highest_open_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int hi = 2;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		if (fd > hi)
			hi = fd;
	}
	closedir(d);
	return hi;
}

/* With too few descriptors for the flushers' epoll and eventfd, start fails with an error
 * and leaves an object that stop and free handle: it never joins a thread it did not
 * create, and leaks no descriptor. */
static void test_start_fails_cleanly_at_the_descriptor_limit(void **state)
{
	struct rlimit old, low;
	int failed = 0;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	/* every limit from "nothing free" to "enough": one of them lets the listening socket
	 * through and stops the flushers' descriptors half-way */
	int top = highest_open_fd() + 8;
	for (int lim = 3; lim <= top; lim++) {
		int hi = highest_open_fd();
		struct rd_server *s = new_server();
		int rc;

		low = old;
		low.rlim_cur = (rlim_t)lim;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
		rc = rd_server_start(s);
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
		if (rc != 0) {
			failed++;
			assert_true(rc == RD_ERR_SYSTEM || rc == RD_ERR_NOMEM);
		}
		rd_server_stop(s, NULL, 0);
		rd_server_free(s);
		assert_int_equal(highest_open_fd(), hi);
	}
	assert_true(failed > 0);
	assert_true(failed < top - 2); /* and enough descriptors do start it */
}

/* ---- cluster hooks (PROTOCOL.md section 15) ---------------------------------------- */

/* A fake cluster: a master that sends everyone past `above` clients to `port`, and a
 * nickname table of its own where "taken" is held by another server. */
struct fake_cluster {
	unsigned above;
	uint16_t port;
	pthread_mutex_t mtx; /* the hooks run on the server's threads */
	int routed;
	char claimed[8][RD_NICK_BUF];
	int nclaimed, released;
};

static int fake_get(struct fake_cluster *f, const int *v)
{
	int n;
	pthread_mutex_lock(&f->mtx);
	n = *v;
	pthread_mutex_unlock(&f->mtx);
	return n;
}

static int fake_route(void *user, unsigned others, struct rd_cluster_route *to)
{
	struct fake_cluster *f = user;

	if (others < f->above)
		return 0;
	pthread_mutex_lock(&f->mtx);
	f->routed++;
	pthread_mutex_unlock(&f->mtx);
	strcpy(to->host, "127.0.0.1");
	to->port = f->port;
	to->temporary = 1;
	strcpy(to->reason, "master full");
	return 1; /* fp all zero: the target runs plaintext */
}

static uint16_t fake_claim(void *user, const char *nick, char *why, size_t cap)
{
	struct fake_cluster *f = user;

	if (!strcmp(nick, "taken")) {
		snprintf(why, cap, "held on another server");
		return RD_E_NICK_TAKEN;
	}
	pthread_mutex_lock(&f->mtx);
	if (f->nclaimed < 8)
		strcpy(f->claimed[f->nclaimed++], nick);
	pthread_mutex_unlock(&f->mtx);
	return 0;
}

static void fake_release(void *user, const char *nick)
{
	struct fake_cluster *f = user;

	(void)nick;
	pthread_mutex_lock(&f->mtx);
	f->released++;
	pthread_mutex_unlock(&f->mtx);
}

static int open_plain(uint16_t port, uint32_t features, struct rd_conn **c, uint16_t *werr,
		      struct rd_conn_tls_report *rep)
{
	struct rd_conn_options o;

	rd_conn_options_defaults(&o);
	o.plain = 1;
	o.features = features;
	o.report = rep;
	o.connect_timeout_ms = 5000;
	o.request_timeout_ms = 5000;
	return rd_conn_open("127.0.0.1", port, &o, NULL, c, werr);
}

/* A master past its threshold answers HELLO with REDIRECT (host, port, temporary,
 * reason) and the client lands on the other server and says so; a client without
 * RD_FEAT_REDIRECT gets ERROR 205 SERVER_FULL instead; below the threshold it serves. */
static void test_master_redirects_past_its_threshold(void **state)
{
	struct fake_cluster f = { .above = 1, .mtx = PTHREAD_MUTEX_INITIALIZER };
	struct rd_cluster_ops ops = { .user = &f, .route = fake_route };
	struct rd_server *m = new_server(), *sec = new_server();
	struct rd_conn *c1 = NULL, *c2 = NULL, *c3 = NULL;
	struct rd_conn_tls_report rep;
	uint16_t werr = 0;

	(void)state;
	assert_int_equal(rd_server_set_cluster(m, &ops), 0);
	assert_int_equal(rd_server_start(m), 0);
	assert_int_equal(rd_server_start(sec), 0);
	assert_int_equal(rd_server_set_cluster(m, &ops), RD_ERR_STATE); /* only before start */
	f.port = rd_server_port(sec);

	assert_int_equal(open_plain(rd_server_port(m), RD_FEAT_REDIRECT, &c1, &werr, &rep), 0);
	assert_int_equal(rep.redirects, 0);
	assert_int_equal(rep.port, rd_server_port(m));

	assert_int_equal(open_plain(rd_server_port(m), RD_FEAT_REDIRECT, &c2, &werr, &rep), 0);
	assert_int_equal(rep.redirects, 1);
	assert_int_equal(rep.via_port, rd_server_port(m));
	assert_int_equal(rep.port, rd_server_port(sec));
	assert_int_equal(rep.redirect_temporary, 1);
	assert_string_equal(rep.redirect_reason, "master full");
	assert_int_equal(rd_conn_register(c2, "bob", &werr), 0);

	assert_int_equal(open_plain(rd_server_port(m), 0, &c3, &werr, &rep), RD_ERR_REMOTE);
	assert_int_equal(werr, RD_E_SERVER_FULL);
	assert_null(c3);
	assert_int_equal(fake_get(&f, &f.routed), 2);

	rd_conn_close(c1);
	rd_conn_close(c2);
	rd_server_free(m);
	rd_server_free(sec);
}

/* A nickname free here but held elsewhere in the cluster is refused with the cluster's
 * word; one the cluster gives is released when its client leaves. */
static void test_nickname_claims_go_through_the_cluster(void **state)
{
	struct fake_cluster f = { .above = 1000, .mtx = PTHREAD_MUTEX_INITIALIZER };
	struct rd_cluster_ops ops = { .user = &f,
				      .nick_claim = fake_claim,
				      .nick_release = fake_release };
	struct rd_server *s = new_server();
	struct rd_conn *c = NULL;
	uint16_t werr = 0;

	(void)state;
	assert_int_equal(rd_server_set_cluster(s, &ops), 0);
	assert_int_equal(rd_server_start(s), 0);
	assert_int_equal(open_plain(rd_server_port(s), 0, &c, &werr, NULL), 0);
	assert_int_equal(rd_conn_register(c, "taken", &werr), RD_ERR_REMOTE);
	assert_int_equal(werr, RD_E_NICK_TAKEN);
	assert_non_null(strstr(rd_conn_last_error(c), "another server"));
	assert_int_equal(rd_conn_register(c, "carol", &werr), 0);
	assert_int_equal(fake_get(&f, &f.nclaimed), 1);
	pthread_mutex_lock(&f.mtx);
	assert_string_equal(f.claimed[0], "carol");
	pthread_mutex_unlock(&f.mtx);
	rd_conn_close(c);
	/* the server lets it go as its reader ends, which may be just after the close */
	for (int i = 0; i < 500 && fake_get(&f, &f.released) == 0; i++)
		usleep(10000);
	assert_int_equal(fake_get(&f, &f.released), 1);
	rd_server_free(s);
}

/* ---- an offer's bytes relayed across servers (PROTOCOL.md 15.8) ------------------------ */

/* What a client saw (on_msg): the types, and the last OFFER_RESULT's outcome and reason. */
struct seen {
	uint16_t types[32];
	int n;
	uint8_t outcome;
	char reason[RD_REASON_MAX + 1];
	uint16_t error_code; /* the last unsolicited ERROR's */
};

static void seen_msg(struct rd_conn *c, const struct rd_msg *m, void *user)
{
	struct seen *w = user;

	(void)c;
	if (m->type == RD_MSG_PING || m->type == RD_MSG_PRESENCE)
		return;
	if (w->n < 32)
		w->types[w->n++] = m->type;
	if (m->type == RD_MSG_OFFER_RESULT) {
		w->outcome = m->u.offer_result.outcome;
		snprintf(w->reason, sizeof(w->reason), "%.*s", (int)m->u.offer_result.reason.n,
			 m->u.offer_result.reason.p ? m->u.offer_result.reason.p : "");
	}
	if (m->type == RD_MSG_ERROR)
		w->error_code = m->u.error.code;
}

static struct rd_conn *open_seen(uint16_t port, const char *nick, struct seen *w)
{
	struct rd_conn_options o;
	struct rd_conn_callbacks cb = { .user = w, .on_msg = seen_msg };
	struct rd_conn *c = NULL;
	uint16_t werr = 0;

	rd_conn_options_defaults(&o);
	o.plain = 1;
	o.connect_timeout_ms = 5000;
	o.request_timeout_ms = 5000;
	assert_int_equal(rd_conn_open("127.0.0.1", port, &o, &cb, &c, &werr), 0);
	assert_int_equal(rd_conn_register(c, nick, &werr), 0);
	return c;
}

/* Poll c until w has seen type (5 s at most). */
static void wait_seen(struct rd_conn *c, struct seen *w, uint16_t type)
{
	for (int i = 0; i < 500; i++) {
		for (int k = 0; k < w->n; k++)
			if (w->types[k] == type)
				return;
		(void)rd_conn_poll(c, 10);
	}
	fail_msg("no message of type 0x%04x came", type);
}

static size_t frame_of(const struct rd_msg *m, uint8_t *out, size_t cap)
{
	struct rd_buf b;
	size_t n;

	rd_buf_init(&b, 0);
	assert_int_equal(rd_msg_frame(&b, m, 0, 0), 0);
	assert_true(b.len <= cap);
	memcpy(out, b.data, b.len);
	n = b.len;
	rd_buf_free(&b);
	return n;
}

/* The recipient's server takes from another server only whole frames of the offer its
 * client waits for (OFFER_DATA, OFFER_END, OFFER_RESULT, request id 0): anything else is
 * refused and never reaches the client; the final OFFER_RESULT ends the offer there. */
static void test_relayed_frames_in_are_checked(void **state)
{
	struct rd_server *s = new_server();
	struct seen w = { 0 };
	struct rd_conn *bob;
	struct rd_msg m;
	uint8_t good[64], bad[64];
	size_t n;
	int last = 0;

	(void)state;
	assert_int_equal(rd_server_start(s), 0);
	bob = open_seen(rd_server_port(s), "bob", &w);
	assert_int_equal(rd_server_relay_in(s, "bob", 7, NULL, 0, &last), RD_ERR_NOT_FOUND);
	/* offer 7 of another server reaches bob: from now on he waits for its bytes */
	rd_msg_init(&m, RD_MSG_OFFER_IN);
	m.u.offer_in.offer_id = 7;
	strcpy(m.u.offer_in.from, "alice");
	m.u.offer_in.app_type = 0x1100;
	m.u.offer_in.expires_in_ms = 60000;
	assert_int_equal(rd_server_deliver(s, &m, "bob", NULL), 0);
	wait_seen(bob, &w, RD_MSG_OFFER_IN);
	assert_int_equal(rd_server_relay_in(s, "bob", 7, NULL, 0, &last), 0);
	assert_int_equal(rd_server_relay_in(s, "nobody", 7, NULL, 0, &last), RD_ERR_NOT_FOUND);
	assert_int_equal(rd_server_relay_in(s, "bob", 8, NULL, 0, &last), RD_ERR_NOT_FOUND);

	rd_msg_init(&m, RD_MSG_OFFER_DATA);
	m.u.offer_data.offer_id = 7;
	m.u.offer_data.data = (struct rd_bytes){ (const uint8_t *)"hi", 2 };
	n = frame_of(&m, good, sizeof(good));
	/* hostile: truncated, a lying length, bad magic, a request id, another type, another
	 * offer */
	assert_int_equal(rd_server_relay_in(s, "bob", 7, good, 10, &last), RD_ERR_MALFORMED);
	assert_int_equal(rd_server_relay_in(s, "bob", 7, good, n - 1, &last), RD_ERR_MALFORMED);
	memcpy(bad, good, n);
	bad[0] = 'X';
	assert_int_equal(rd_server_relay_in(s, "bob", 7, bad, n, &last), RD_ERR_MALFORMED);
	memcpy(bad, good, n);
	bad[11] = 1; /* request id 1 */
	assert_int_equal(rd_server_relay_in(s, "bob", 7, bad, n, &last), RD_ERR_MALFORMED);
	memcpy(bad, good, n);
	bad[5] = (uint8_t)RD_MSG_ROOM_MSG;
	assert_int_equal(rd_server_relay_in(s, "bob", 7, bad, n, &last), RD_ERR_MALFORMED);
	memcpy(bad, good, n);
	bad[16 + 3] = 8; /* offer 8 */
	assert_int_equal(rd_server_relay_in(s, "bob", 7, bad, n, &last), RD_ERR_MALFORMED);

	assert_int_equal(rd_server_relay_in(s, "bob", 7, good, n, &last), 0);
	assert_int_equal(last, 0);
	rd_msg_init(&m, RD_MSG_OFFER_RESULT);
	m.u.offer_result.offer_id = 7;
	m.u.offer_result.outcome = RD_OFFER_COMPLETED;
	strcpy(m.u.offer_result.peer, "alice");
	n = frame_of(&m, good, sizeof(good));
	assert_int_equal(rd_server_relay_in(s, "bob", 7, good, n, &last), 0);
	assert_int_equal(last, 1);
	assert_int_equal(rd_server_relay_in(s, "bob", 7, NULL, 0, &last), RD_ERR_NOT_FOUND);

	wait_seen(bob, &w, RD_MSG_OFFER_RESULT);
	assert_int_equal(w.n, 3); /* OFFER_IN, the one OFFER_DATA, OFFER_RESULT: nothing else */
	assert_int_equal(w.types[1], RD_MSG_OFFER_DATA);
	assert_int_equal(w.outcome, RD_OFFER_COMPLETED);
	rd_conn_close(bob);
	rd_server_free(s);
}

/* A fake relay for the offerer's server: bob is on another server; the relay records the
 * frames it is given, and fails from frame `fail_at` on (0: never). */
struct fake_relay {
	pthread_mutex_t mtx;
	uint16_t types[16];
	int lasts[16];
	int n, fail_at;
	uint32_t closed[4];
	int nclosed;
};

static int fr_holds(void *user, const char *nick)
{
	(void)user;
	return !strcmp(nick, "bob");
}

static int fr_tell(void *user, const struct rd_msg *m, const char *to)
{
	(void)user;
	(void)m;
	return strcmp(to, "bob") ? RD_ERR_NOT_FOUND : 0;
}

static int fr_relay(void *user, uint32_t offer_id, const char *from, const char *to,
		    const void *frame, size_t n, int last, int (*keep_going)(void *arg), void *arg,
		    char *why, size_t cap)
{
	struct fake_relay *f = user;
	const uint8_t *p = frame;
	int rc = 0;

	(void)offer_id;
	assert_string_equal(from, "alice");
	assert_string_equal(to, "bob");
	assert_true(n >= 16 && keep_going(arg));
	pthread_mutex_lock(&f->mtx);
	if (f->fail_at && f->n + 1 >= f->fail_at) {
		snprintf(why, cap, "the test's relay broke");
		rc = RD_ERR_CLOSED;
	} else if (f->n < 16) {
		f->types[f->n] = (uint16_t)(p[4] << 8 | p[5]);
		f->lasts[f->n++] = last;
	}
	pthread_mutex_unlock(&f->mtx);
	return rc;
}

static void fr_close(void *user, uint32_t offer_id)
{
	struct fake_relay *f = user;

	pthread_mutex_lock(&f->mtx);
	if (f->nclosed < 4)
		f->closed[f->nclosed++] = offer_id;
	pthread_mutex_unlock(&f->mtx);
}

/* alice offers to bob (another server's) and bob accepts there. Returns the offer's id. */
static uint32_t offer_to_remote_bob(struct rd_server *s, struct rd_conn *alice, struct seen *w)
{
	struct rd_msg m;
	uint32_t id = 0;
	uint16_t werr = 0;

	w->n = 0;
	assert_int_equal(rd_conn_offer(alice, "bob", 0x1100, 0, "x", 1, &id, NULL, &werr), 0);
	rd_msg_init(&m, RD_MSG_OFFER_ANSWERED);
	m.u.offer_answered.offer_id = id;
	strcpy(m.u.offer_answered.peer, "bob");
	m.u.offer_answered.answer = RD_ANSWER_ACCEPT;
	assert_int_equal(rd_server_offer_home(s, &m, "alice"), 0);
	wait_seen(alice, w, RD_MSG_OFFER_RESULT);
	assert_int_equal(w->outcome, RD_OFFER_ACCEPTED);
	w->n = 0;
	return id;
}

/* The offerer's server hands an offer's frames for a recipient on another server to the
 * relay hook, in order (OFFER_DATA..., OFFER_END, then the final OFFER_RESULT marked
 * last), and closes the relay when the offer ends; a relay that breaks fails the offer
 * with its reason, and later OFFER_DATA get NO_SUCH_OFFER. */
static void test_offer_bytes_to_another_server_go_through_the_relay(void **state)
{
	struct fake_relay f = { .mtx = PTHREAD_MUTEX_INITIALIZER };
	struct rd_cluster_ops ops = { .user = &f,
				      .holds = fr_holds,
				      .tell = fr_tell,
				      .relay = fr_relay,
				      .relay_close = fr_close };
	struct rd_server *s = new_server();
	struct seen w = { 0 };
	struct rd_conn *alice;
	uint32_t id;
	uint8_t outcome = 0;
	uint16_t werr = 0;

	(void)state;
	assert_int_equal(rd_server_set_cluster(s, &ops), 0);
	assert_int_equal(rd_server_start(s), 0);
	alice = open_seen(rd_server_port(s), "alice", &w);

	id = offer_to_remote_bob(s, alice, &w);
	assert_int_equal(rd_conn_offer_data(alice, id, 0, "hello", 5), 0);
	assert_int_equal(rd_conn_offer_data(alice, id, 5, "world", 5), 0);
	assert_int_equal(rd_conn_offer_end(alice, id, 0, &outcome, &werr), 0);
	assert_int_equal(outcome, RD_OFFER_COMPLETED);
	pthread_mutex_lock(&f.mtx);
	assert_int_equal(f.n, 4);
	assert_int_equal(f.types[0], RD_MSG_OFFER_DATA);
	assert_int_equal(f.types[1], RD_MSG_OFFER_DATA);
	assert_int_equal(f.types[2], RD_MSG_OFFER_END);
	assert_int_equal(f.types[3], RD_MSG_OFFER_RESULT);
	assert_int_equal(f.lasts[2], 0);
	assert_int_equal(f.lasts[3], 1);
	assert_int_equal(f.nclosed, 1);
	assert_int_equal(f.closed[0], id);
	f.n = 0;
	f.fail_at = 2; /* the next offer's second frame */
	pthread_mutex_unlock(&f.mtx);

	id = offer_to_remote_bob(s, alice, &w);
	assert_int_equal(rd_conn_offer_data(alice, id, 0, "hello", 5), 0);
	assert_int_equal(rd_conn_offer_data(alice, id, 5, "world", 5), 0);
	wait_seen(alice, &w, RD_MSG_OFFER_RESULT);
	assert_int_equal(w.outcome, RD_OFFER_FAILED);
	assert_string_equal(w.reason, "the test's relay broke");
	assert_int_equal(rd_conn_offer_data(alice, id, 10, "again", 5), 0);
	wait_seen(alice, &w, RD_MSG_ERROR);
	assert_int_equal(w.error_code, RD_E_NO_SUCH_OFFER);
	pthread_mutex_lock(&f.mtx);
	assert_int_equal(f.nclosed, 2);
	assert_int_equal(f.closed[1], id);
	pthread_mutex_unlock(&f.mtx);
	rd_conn_close(alice);
	rd_server_free(s);
}

/* A room on two servers: bob and carol are in it on another server (the who hook). */
struct fake_room {
	pthread_mutex_t mtx;
	char told[8][RD_NICK_BUF]; /* who got an OFFER_IN through tell */
	int ntold;
	char relayed[8][RD_NICK_BUF]; /* the recipient of each relayed frame */
	int nrelayed;
};

static int rm_who(void *user, const char *room, struct rd_who_entry **out, size_t *n)
{
	(void)user;
	assert_string_equal(room, "general");
	*out = calloc(3, sizeof(**out));
	assert_non_null(*out);
	strcpy((*out)[0].nick, "bob");
	strcpy((*out)[1].nick, "carol");
	strcpy((*out)[2].nick, "Alice"); /* (the offerer, as another server might list it) */
	*n = 3;
	return 0;
}

static int rm_holds(void *user, const char *nick)
{
	(void)user;
	return !strcmp(nick, "bob") || !strcmp(nick, "carol");
}

static int rm_tell(void *user, const struct rd_msg *m, const char *to)
{
	struct fake_room *f = user;

	pthread_mutex_lock(&f->mtx);
	if (m->type == RD_MSG_OFFER_IN && f->ntold < 8)
		snprintf(f->told[f->ntold++], RD_NICK_BUF, "%s", to);
	pthread_mutex_unlock(&f->mtx);
	return 0;
}

static int rm_relay(void *user, uint32_t offer_id, const char *from, const char *to,
		    const void *frame, size_t n, int last, int (*keep_going)(void *arg), void *arg,
		    char *why, size_t cap)
{
	struct fake_room *f = user;

	(void)offer_id, (void)from, (void)frame, (void)n, (void)last, (void)keep_going;
	(void)arg, (void)why, (void)cap;
	pthread_mutex_lock(&f->mtx);
	if (f->nrelayed < 8)
		snprintf(f->relayed[f->nrelayed++], RD_NICK_BUF, "%s", to);
	pthread_mutex_unlock(&f->mtx);
	return 0;
}

static void rm_close(void *user, uint32_t offer_id)
{
	(void)user, (void)offer_id;
}

static void answer_from_afar(struct rd_server *s, uint32_t id, const char *peer, uint8_t answer)
{
	struct rd_msg m;

	rd_msg_init(&m, RD_MSG_OFFER_ANSWERED);
	m.u.offer_answered.offer_id = id;
	strcpy(m.u.offer_answered.peer, peer);
	m.u.offer_answered.answer = answer;
	assert_int_equal(rd_server_offer_home(s, &m, "alice"), 0);
}

/* A room offer reaches the room's members on the other servers of the cluster (PROTOCOL.md
 * 15.8): alice, alone in her room on this server, is not "nobody to offer to"; bob and carol
 * (elsewhere) each get the OFFER_IN, answer it, and only the one that accepted gets bytes
 * through the relay. */
static void test_room_offer_reaches_members_on_other_servers(void **state)
{
	struct fake_room f = { .mtx = PTHREAD_MUTEX_INITIALIZER };
	struct rd_cluster_ops ops = { .user = &f,
				      .holds = rm_holds,
				      .tell = rm_tell,
				      .who = rm_who,
				      .relay = rm_relay,
				      .relay_close = rm_close };
	struct rd_server *s = new_server();
	struct seen w = { 0 };
	struct rd_conn *alice;
	uint32_t id = 0, members = 0;
	uint8_t outcome = 0;
	uint16_t werr = 0;

	(void)state;
	assert_int_equal(rd_server_set_cluster(s, &ops), 0);
	assert_int_equal(rd_server_start(s), 0);
	alice = open_seen(rd_server_port(s), "alice", &w);
	assert_int_equal(rd_conn_join(alice, "general", &members, &werr), 0);
	assert_int_equal(rd_conn_offer(alice, NULL, 0x1100, 0, "x", 1, &id, NULL, &werr), 0);
	/* (OFFER_PENDING comes first; the OFFER_IN for the others follow it) */
	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&f.mtx);
		int told = f.ntold;
		pthread_mutex_unlock(&f.mtx);
		if (told == 2)
			break;
		usleep(10000);
	}
	pthread_mutex_lock(&f.mtx);
	assert_int_equal(f.ntold, 2);
	assert_string_equal(f.told[0], "bob");
	assert_string_equal(f.told[1], "carol");
	pthread_mutex_unlock(&f.mtx);
	w.n = 0;
	answer_from_afar(s, id, "carol", RD_ANSWER_REJECT);
	answer_from_afar(s, id, "bob", RD_ANSWER_ACCEPT);
	wait_seen(alice, &w, RD_MSG_OFFER_RESULT);
	assert_int_equal(w.outcome, RD_OFFER_ACCEPTED);
	assert_int_equal(rd_conn_offer_data(alice, id, 0, "hello", 5), 0);
	assert_int_equal(rd_conn_offer_end(alice, id, 0, &outcome, &werr), 0);
	assert_int_equal(outcome, RD_OFFER_COMPLETED);
	pthread_mutex_lock(&f.mtx);
	assert_int_equal(f.nrelayed, 3); /* OFFER_DATA, OFFER_END, OFFER_RESULT */
	for (int i = 0; i < f.nrelayed; i++)
		assert_string_equal(f.relayed[i], "bob");
	pthread_mutex_unlock(&f.mtx);
	rd_conn_close(alice);
	rd_server_free(s);
}

/* Without a relay hook (a program that does not relay), bytes are not relayed across
 * servers: the first OFFER_DATA is refused with OFFER_STATE and the offer fails. */
static void test_offer_bytes_without_a_relay_are_refused(void **state)
{
	struct fake_relay f = { .mtx = PTHREAD_MUTEX_INITIALIZER };
	struct rd_cluster_ops ops = { .user = &f, .holds = fr_holds, .tell = fr_tell };
	struct rd_server *s = new_server();
	struct seen w = { 0 };
	struct rd_conn *alice;
	uint32_t id;

	(void)state;
	assert_int_equal(rd_server_set_cluster(s, &ops), 0);
	assert_int_equal(rd_server_start(s), 0);
	alice = open_seen(rd_server_port(s), "alice", &w);
	id = offer_to_remote_bob(s, alice, &w);
	assert_int_equal(rd_conn_offer_data(alice, id, 0, "hello", 5), 0);
	wait_seen(alice, &w, RD_MSG_OFFER_RESULT);
	assert_int_equal(w.error_code, RD_E_OFFER_STATE);
	assert_int_equal(w.outcome, RD_OFFER_FAILED);
	rd_conn_close(alice);
	rd_server_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_start_leaves_sigpipe_alone),
		cmocka_unit_test(test_start_fails_cleanly_at_the_descriptor_limit),
		cmocka_unit_test(test_master_redirects_past_its_threshold),
		cmocka_unit_test(test_nickname_claims_go_through_the_cluster),
		cmocka_unit_test(test_relayed_frames_in_are_checked),
		cmocka_unit_test(test_offer_bytes_to_another_server_go_through_the_relay),
		cmocka_unit_test(test_offer_bytes_without_a_relay_are_refused),
		cmocka_unit_test(test_room_offer_reaches_members_on_other_servers),
	};
	return cmocka_run_group_tests_name("server", tests, NULL, NULL);
}
