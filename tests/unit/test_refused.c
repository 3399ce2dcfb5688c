/* test_refused.c - the bounded list of refused keys (server/refused.c): newest first, one
 * entry per key (keyless clients by address) with its count, the oldest dropped when
 * full, and forgetting an admitted key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../server/refused.h"

static void key(uint8_t fp[RD_TLS_FP_LEN], unsigned i)
{
	memset(fp, 0, RD_TLS_FP_LEN);
	fp[0] = (uint8_t)i;
	fp[1] = (uint8_t)(i >> 8);
}

static void test_newest_first_one_per_key(void **state)
{
	struct refused r;
	struct refused_entry v[REFUSED_MAX];
	uint8_t k1[RD_TLS_FP_LEN], k2[RD_TLS_FP_LEN];

	(void)state;
	refused_init(&r);
	key(k1, 1);
	key(k2, 2);
	refused_add(&r, k1, "10.0.0.1", "alice", 100);
	refused_add(&r, k2, "10.0.0.2", "bob", 200);
	refused_add(&r, NULL, "10.0.0.3", "carol", 300);
	refused_add(&r, k1, "10.0.0.9", "alicia", 400); /* again: to the front, counted */
	refused_add(&r, NULL, "10.0.0.3", "carol", 500);
	assert_int_equal(refused_list(&r, v, REFUSED_MAX), 3);
	assert_false(v[0].has_fp);
	assert_string_equal(v[0].ip, "10.0.0.3");
	assert_int_equal(v[0].count, 2);
	assert_int_equal(v[0].last_ms, 500);
	assert_true(v[1].has_fp);
	assert_memory_equal(v[1].fp, k1, RD_TLS_FP_LEN);
	assert_int_equal(v[1].count, 2);
	assert_string_equal(v[1].nick, "alicia");
	assert_string_equal(v[1].ip, "10.0.0.9");
	assert_memory_equal(v[2].fp, k2, RD_TLS_FP_LEN);
	assert_int_equal(v[2].count, 1);
	assert_int_equal(refused_list(&r, v, 1), 1); /* max is honoured */
	refused_destroy(&r);
}

static void test_bounded_oldest_goes(void **state)
{
	struct refused r;
	struct refused_entry v[REFUSED_MAX + 8];
	uint8_t k[RD_TLS_FP_LEN];

	(void)state;
	refused_init(&r);
	for (unsigned i = 0; i < REFUSED_MAX + 5; i++) {
		key(k, i + 1);
		refused_add(&r, k, "10.0.0.1", "x", i);
	}
	assert_int_equal(refused_list(&r, v, REFUSED_MAX + 8), REFUSED_MAX);
	key(k, REFUSED_MAX + 5);
	assert_memory_equal(v[0].fp, k, RD_TLS_FP_LEN);
	key(k, 6); /* keys 1-5 went, the oldest first */
	assert_memory_equal(v[REFUSED_MAX - 1].fp, k, RD_TLS_FP_LEN);
	refused_destroy(&r);
}

static void test_forget(void **state)
{
	struct refused r;
	struct refused_entry v[4];
	uint8_t k1[RD_TLS_FP_LEN], k2[RD_TLS_FP_LEN];

	(void)state;
	refused_init(&r);
	key(k1, 1);
	key(k2, 2);
	refused_add(&r, k1, "10.0.0.1", "a", 1);
	refused_add(&r, k2, "10.0.0.2", "b", 2);
	assert_int_equal(refused_forget(&r, k1), 1);
	assert_int_equal(refused_forget(&r, k1), 0);
	assert_int_equal(refused_list(&r, v, 4), 1);
	assert_memory_equal(v[0].fp, k2, RD_TLS_FP_LEN);
	refused_destroy(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_newest_first_one_per_key),
		cmocka_unit_test(test_bounded_oldest_goes),
		cmocka_unit_test(test_forget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
