/* churn_clients - many clients connecting and leaving quickly, for the window's robustness
 * test (tests/live/test_gui.sh) and anyone else who wants a crowd.
 *
 *   churn_clients PORT [COUNT] [ROUNDS]
 *
 * Each round: THREADS threads together open COUNT registered connections (nicknames
 * churn<round>_<i>, joining "general"), hold them all for a moment, close them all; then
 * the same threads open and close COUNT more one after the other, as fast as they can.
 * Prints one summary line; exits 0 when every connection registered, 1 otherwise, 2 on
 * bad arguments. Connects to 127.0.0.1 only.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rd_client.h"
#include "rd_err.h"

#define THREADS 8
#define HOLD_MS 300

struct job {
	uint16_t port;
	unsigned round, first, count; /* connections first .. first+count-1 */
	unsigned ok, failed;
	int last_rc;
};

static pthread_barrier_t all_open;

static int open_one(struct job *j, unsigned i, struct rd_conn **out)
{
	struct rd_conn_options opt;
	struct rd_conn_callbacks cb;
	char nick[32];
	uint16_t werr = 0;
	int rc;

	rd_conn_options_defaults(&opt);
	/* (what is checked is that every client gets in and out, not how fast: a sanitizer
	 * build on a loaded 2-core machine once took more than 5 s for one handshake) */
	opt.connect_timeout_ms = 20000;
	opt.request_timeout_ms = 20000;
	memset(&cb, 0, sizeof cb);
	*out = NULL;
	if ((rc = rd_conn_open("127.0.0.1", j->port, &opt, &cb, out, &werr)) != 0)
		return rc;
	snprintf(nick, sizeof nick, "churn%u_%u", j->round, i);
	if ((rc = rd_conn_register(*out, nick, &werr)) != 0 ||
	    (rc = rd_conn_join(*out, "general", NULL, &werr)) != 0) {
		rd_conn_close(*out);
		*out = NULL;
	}
	return rc;
}

static void *worker(void *arg)
{
	struct job *j = arg;
	struct rd_conn **held = calloc(j->count ? j->count : 1, sizeof(*held));
	struct timespec hold = { 0, HOLD_MS * 1000000L };
	int rc;

	/* all open at once, then all gone */
	for (unsigned k = 0; k < j->count; k++) {
		if (!held || (rc = open_one(j, j->first + k, &held[k])) != 0) {
			j->failed++;
			j->last_rc = held ? rc : RD_ERR_NOMEM;
		} else {
			j->ok++;
		}
	}
	pthread_barrier_wait(&all_open);
	nanosleep(&hold, NULL);
	for (unsigned k = 0; held && k < j->count; k++)
		if (held[k])
			rd_conn_close(held[k]);
	free(held);

	/* in and out, one after the other */
	for (unsigned k = 0; k < j->count; k++) {
		struct rd_conn *c;
		if ((rc = open_one(j, 100000 + j->first + k, &c)) != 0) {
			j->failed++;
			j->last_rc = rc;
		} else {
			j->ok++;
			rd_conn_close(c);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long port, count = 500, rounds = 1;
	unsigned ok = 0, failed = 0;
	int last_rc = 0;
	struct job jobs[THREADS];
	pthread_t th[THREADS];

	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: churn_clients PORT [COUNT] [ROUNDS]\n");
		return 2;
	}
	port = strtoul(argv[1], NULL, 10);
	if (argc > 2)
		count = strtoul(argv[2], NULL, 10);
	if (argc > 3)
		rounds = strtoul(argv[3], NULL, 10);
	if (port == 0 || port > 65535 || count == 0 || count > 5000 || rounds == 0 ||
	    rounds > 100) {
		fprintf(stderr, "churn_clients: bad arguments\n");
		return 2;
	}

	for (unsigned r = 0; r < rounds; r++) {
		pthread_barrier_init(&all_open, NULL, THREADS);
		for (unsigned t = 0; t < THREADS; t++) {
			unsigned per = (unsigned)count / THREADS, extra = (unsigned)count % THREADS;
			memset(&jobs[t], 0, sizeof jobs[t]);
			jobs[t].port = (uint16_t)port;
			jobs[t].round = r;
			jobs[t].first = t * per + (t < extra ? t : extra);
			jobs[t].count = per + (t < extra ? 1 : 0);
			if (pthread_create(&th[t], NULL, worker, &jobs[t]) != 0) {
				fprintf(stderr, "churn_clients: cannot start a thread\n");
				return 1;
			}
		}
		for (unsigned t = 0; t < THREADS; t++) {
			pthread_join(th[t], NULL);
			ok += jobs[t].ok;
			failed += jobs[t].failed;
			if (jobs[t].last_rc)
				last_rc = jobs[t].last_rc;
		}
		pthread_barrier_destroy(&all_open);
	}
	printf("churn_clients: %u connections registered, %u failed%s%s\n", ok, failed,
	       failed ? "; last error: " : "", failed ? rd_strerror(last_rc) : "");
	return failed ? 1 : 0;
}
