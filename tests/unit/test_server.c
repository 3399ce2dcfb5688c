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

#include "rd_client.h"
#include "rd_err.h"
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_start_leaves_sigpipe_alone),
		cmocka_unit_test(test_start_fails_cleanly_at_the_descriptor_limit),
		cmocka_unit_test(test_master_redirects_past_its_threshold),
		cmocka_unit_test(test_nickname_claims_go_through_the_cluster),
	};
	return cmocka_run_group_tests_name("server", tests, NULL, NULL);
}
