/* test_err.c - error texts and the log sink: call site, level filtering, removal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "internal.h"
#include "rd_err.h"

static void test_every_code_has_distinct_text(void **state)
{
	int a, b;

	(void)state;
	for (a = 0; a > RD_ERR__LAST; a--) {
		const char *ta = rd_strerror(a);

		assert_non_null(ta);
		assert_true(strlen(ta) > 0);
		assert_string_not_equal(ta, "unknown error");
		for (b = a - 1; b > RD_ERR__LAST; b--)
			assert_string_not_equal(ta, rd_strerror(b));
	}
}

static void test_unknown_codes_have_text(void **state)
{
	(void)state;
	assert_string_equal(rd_strerror(RD_ERR__LAST), "unknown error");
	assert_string_equal(rd_strerror(-1000), "unknown error");
	assert_string_equal(rd_strerror(5), "unknown error");
	assert_string_equal(rd_strerror(RD_ERR_TOO_BIG), "length exceeds limit");
}

static void test_level_names_round_trip(void **state)
{
	enum rd_log_level l = RD_LOG_DEBUG;
	int i;

	(void)state;
	for (i = RD_LOG_ERROR; i <= RD_LOG_DEBUG; i++) {
		assert_int_equal(rd_log_level_parse(rd_log_level_name((enum rd_log_level)i), &l),
				 0);
		assert_int_equal(l, i);
	}
	assert_string_equal(rd_log_level_name(RD_LOG_WARN), "warn");
	assert_int_equal(rd_log_level_parse("DEBUG", &l), 0);
	assert_int_equal(l, RD_LOG_DEBUG);
	assert_int_equal(rd_log_level_parse("warning", &l), 0);
	assert_int_equal(l, RD_LOG_WARN);
	assert_int_equal(rd_log_level_parse("loud", &l), RD_ERR_INVAL);
	assert_int_equal(l, RD_LOG_ERROR); /* cleared */
	assert_int_equal(rd_log_level_parse(NULL, &l), RD_ERR_INVAL);
	assert_string_equal(rd_log_level_name((enum rd_log_level)9), "unknown");
}

struct captured {
	int calls;
	enum rd_log_level level;
	char file[128];
	int line;
	char func[64];
	char msg[256];
};

static void sink(enum rd_log_level level, const char *file, int line, const char *func,
		 const char *msg, void *user)
{
	struct captured *c = user;

	c->calls++;
	c->level = level;
	strncpy(c->file, file, sizeof(c->file) - 1);
	c->line = line;
	strncpy(c->func, func, sizeof(c->func) - 1);
	strncpy(c->msg, msg, sizeof(c->msg) - 1);
}

static int side_effects;

static int bump(void)
{
	return ++side_effects;
}

static void test_log_reaches_sink_with_call_site(void **state)
{
	struct captured c;
	int line;

	(void)state;
	memset(&c, 0, sizeof(c));
	rd_log_set(sink, RD_LOG_INFO, &c);
	line = __LINE__ + 1;
	RD_LOG(RD_LOG_WARN, "client %u: %s", 7u, "gone");
	rd_log_set(NULL, RD_LOG_ERROR, NULL);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.level, RD_LOG_WARN);
	assert_string_equal(c.msg, "client 7: gone");
	assert_int_equal(c.line, line);
	assert_non_null(strstr(c.file, "test_err.c"));
	assert_string_equal(c.func, "test_log_reaches_sink_with_call_site");
}

static void test_log_level_filter(void **state)
{
	struct captured c;

	(void)state;
	memset(&c, 0, sizeof(c));
	side_effects = 0;
	rd_log_set(sink, RD_LOG_WARN, &c);
	RD_LOG(RD_LOG_ERROR, "e");
	RD_LOG(RD_LOG_WARN, "w");
	RD_LOG(RD_LOG_INFO, "i %d", bump());
	RD_LOG(RD_LOG_DEBUG, "d %d", bump());
	assert_int_equal(c.calls, 2);
	assert_string_equal(c.msg, "w");
	assert_int_equal(side_effects, 0); /* filtered messages are not even evaluated */

	rd_log_set(sink, RD_LOG_DEBUG, &c);
	RD_LOG(RD_LOG_DEBUG, "d %d", bump());
	assert_int_equal(c.calls, 3);
	assert_string_equal(c.msg, "d 1");

	/* rd_log_emit called directly filters too. */
	rd_log_set(sink, RD_LOG_ERROR, &c);
	rd_log_emit(RD_LOG_INFO, "f.c", 1, "fn", "x");
	assert_int_equal(c.calls, 3);
	rd_log_set(NULL, RD_LOG_DEBUG, NULL);
}

static void test_log_without_sink_is_silent(void **state)
{
	struct captured c;

	(void)state;
	memset(&c, 0, sizeof(c));
	rd_log_set(sink, RD_LOG_DEBUG, &c);
	rd_log_set(NULL, RD_LOG_DEBUG, &c);
	RD_LOG(RD_LOG_ERROR, "nobody hears this");
	rd_log_emit(RD_LOG_ERROR, "f.c", 1, "fn", "nor this");
	assert_int_equal(c.calls, 0);
	assert_int_equal(atomic_load(&rd_log_max_level), -1);
}

static void test_log_long_message_truncated(void **state)
{
	struct captured c;
	char big[2000];

	(void)state;
	memset(&c, 0, sizeof(c));
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	rd_log_set(sink, RD_LOG_DEBUG, &c);
	RD_LOG(RD_LOG_INFO, "%s", big);
	rd_log_set(NULL, RD_LOG_DEBUG, NULL);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.msg[0], 'x');
}

#define LOG_THREADS 4
#define LOG_PER_THREAD 20000

static atomic_int count_a, count_b;
static atomic_int logging_done;

static void sink_a(enum rd_log_level level, const char *file, int line, const char *func,
		   const char *msg, void *user)
{
	(void)level, (void)file, (void)line, (void)func, (void)msg, (void)user;
	atomic_fetch_add(&count_a, 1);
}

static void sink_b(enum rd_log_level level, const char *file, int line, const char *func,
		   const char *msg, void *user)
{
	(void)level, (void)file, (void)line, (void)func, (void)msg, (void)user;
	atomic_fetch_add(&count_b, 1);
}

static void *log_many(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < LOG_PER_THREAD; i++)
		RD_LOG(RD_LOG_INFO, "message %d", i);
	atomic_fetch_add(&logging_done, 1);
	return NULL;
}

/* Sinks swapped while other threads log: a sink is installed throughout, so every
 * message reaches exactly one of them. */
static void test_log_set_while_logging(void **state)
{
	pthread_t th[LOG_THREADS];
	int i, flip = 0;

	(void)state;
	atomic_store(&count_a, 0);
	atomic_store(&count_b, 0);
	atomic_store(&logging_done, 0);
	rd_log_set(sink_a, RD_LOG_DEBUG, NULL);
	for (i = 0; i < LOG_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, log_many, NULL), 0);
	while (atomic_load(&logging_done) < LOG_THREADS) {
		rd_log_set(flip ? sink_a : sink_b, RD_LOG_DEBUG, NULL);
		flip = !flip;
	}
	for (i = 0; i < LOG_THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	rd_log_set(NULL, RD_LOG_ERROR, NULL);
	assert_int_equal(atomic_load(&count_a) + atomic_load(&count_b),
			 LOG_THREADS * LOG_PER_THREAD);
	RD_LOG(RD_LOG_ERROR, "after removal");
	assert_int_equal(atomic_load(&count_a) + atomic_load(&count_b),
			 LOG_THREADS * LOG_PER_THREAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_code_has_distinct_text),
		cmocka_unit_test(test_unknown_codes_have_text),
		cmocka_unit_test(test_level_names_round_trip),
		cmocka_unit_test(test_log_reaches_sink_with_call_site),
		cmocka_unit_test(test_log_level_filter),
		cmocka_unit_test(test_log_without_sink_is_silent),
		cmocka_unit_test(test_log_long_message_truncated),
		cmocka_unit_test(test_log_set_while_logging),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
