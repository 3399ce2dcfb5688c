/* test_server.c - the room core's server object in this process: start and stop paths
 * that a live server process cannot show (signal policy, start-up failures). */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "rd_err.h"
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_start_leaves_sigpipe_alone),
		cmocka_unit_test(test_start_fails_cleanly_at_the_descriptor_limit),
	};
	return cmocka_run_group_tests_name("server", tests, NULL, NULL);
}
