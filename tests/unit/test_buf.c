/* test_buf.c - rd_buf: every field codec round trip, big-endian layout against literal
 * bytes, reads past the end, growth limits, views and str limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rd_buf.h"
#include "rd_err.h"

static void test_ints_round_trip(void **state)
{
	struct rd_buf b;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;

	(void)state;
	rd_buf_init(&b, 0);
	assert_int_equal(rd_buf_put_u8(&b, 0xA5), 0);
	assert_int_equal(rd_buf_put_u16(&b, 0xBEEF), 0);
	assert_int_equal(rd_buf_put_u32(&b, 0xDEADBEEFu), 0);
	assert_int_equal(rd_buf_put_u64(&b, 0x0123456789ABCDEFull), 0);
	assert_int_equal(rd_buf_put_u64(&b, UINT64_MAX), 0);
	assert_int_equal(b.len, 1 + 2 + 4 + 8 + 8);
	assert_int_equal(rd_buf_get_u8(&b, &u8), 0);
	assert_int_equal(u8, 0xA5);
	assert_int_equal(rd_buf_get_u16(&b, &u16), 0);
	assert_int_equal(u16, 0xBEEF);
	assert_int_equal(rd_buf_get_u32(&b, &u32), 0);
	assert_int_equal(u32, 0xDEADBEEFu);
	assert_int_equal(rd_buf_get_u64(&b, &u64), 0);
	assert_true(u64 == 0x0123456789ABCDEFull);
	assert_int_equal(rd_buf_get_u64(&b, &u64), 0);
	assert_true(u64 == UINT64_MAX);
	assert_int_equal(rd_buf_avail(&b), 0);
	rd_buf_free(&b);
}

static void test_big_endian_layout(void **state)
{
	static const uint8_t expect[] = {
		0x7F,                                           /* u8 */
		0x12, 0x34,                                     /* u16 */
		0x89, 0xAB, 0xCD, 0xEF,                         /* u32 */
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* u64 */
		0x00, 0x03, 'a',  'b',  'c',                    /* str */
		0x00, 0x00, 0x00, 0x02, 0xFF, 0x00,             /* bytes */
	};
	static const uint8_t two[] = { 0xFF, 0x00 };
	struct rd_buf b;

	(void)state;
	rd_buf_init(&b, 0);
	assert_int_equal(rd_buf_put_u8(&b, 0x7F), 0);
	assert_int_equal(rd_buf_put_u16(&b, 0x1234), 0);
	assert_int_equal(rd_buf_put_u32(&b, 0x89ABCDEFu), 0);
	assert_int_equal(rd_buf_put_u64(&b, 0x0102030405060708ull), 0);
	assert_int_equal(rd_buf_put_cstr(&b, "abc"), 0);
	assert_int_equal(rd_buf_put_bytes(&b, two, 2), 0);
	assert_int_equal(b.len, sizeof(expect));
	assert_memory_equal(b.data, expect, sizeof(expect));
	rd_buf_free(&b);
}

static void test_raw_be_helpers(void **state)
{
	uint8_t p[8];

	(void)state;
	rd_be16_put(p, 0xA1B2);
	assert_int_equal(p[0], 0xA1);
	assert_int_equal(p[1], 0xB2);
	assert_int_equal(rd_be16_get(p), 0xA1B2);
	rd_be32_put(p, 0x80000001u);
	assert_int_equal(p[0], 0x80);
	assert_int_equal(p[3], 0x01);
	assert_int_equal(rd_be32_get(p), 0x80000001u);
	rd_be64_put(p, 0xF0E0D0C0B0A09080ull);
	assert_int_equal(p[0], 0xF0);
	assert_int_equal(p[7], 0x80);
	assert_true(rd_be64_get(p) == 0xF0E0D0C0B0A09080ull);
}

static void test_str_and_bytes_round_trip(void **state)
{
	struct rd_buf b;
	const char *sp;
	const uint8_t *bp;
	size_t n;
	char out[16];

	(void)state;
	rd_buf_init(&b, 0);
	assert_int_equal(rd_buf_put_str(&b, "hello", 5), 0);
	assert_int_equal(rd_buf_put_str(&b, NULL, 0), 0);
	assert_int_equal(rd_buf_put_cstr(&b, "world"), 0);
	assert_int_equal(rd_buf_put_bytes(&b, "\0\1\2", 3), 0);
	assert_int_equal(rd_buf_put_bytes(&b, NULL, 0), 0);

	assert_int_equal(rd_buf_get_str_view(&b, &sp, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(sp, "hello", 5);
	assert_int_equal(rd_buf_get_str(&b, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(rd_buf_get_str(&b, out, sizeof(out)), 0);
	assert_string_equal(out, "world");
	assert_int_equal(rd_buf_get_bytes_view(&b, &bp, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(bp, "\0\1\2", 3);
	assert_int_equal(rd_buf_get_bytes_view(&b, &bp, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(rd_buf_avail(&b), 0);
	rd_buf_free(&b);
}

static void test_raw_put_get_skip(void **state)
{
	struct rd_buf b;
	uint8_t out[4];
	uint8_t *sp;

	(void)state;
	rd_buf_init(&b, 0);
	assert_int_equal(rd_buf_put(&b, "abcdef", 6), 0);
	assert_int_equal(rd_buf_append_space(&b, 2, &sp), 0);
	memcpy(sp, "gh", 2);
	assert_int_equal(b.len, 8);
	assert_int_equal(rd_buf_skip(&b, 2), 0);
	assert_int_equal(rd_buf_get(&b, out, 4), 0);
	assert_memory_equal(out, "cdef", 4);
	assert_int_equal(rd_buf_skip(&b, 3), RD_ERR_INCOMPLETE);
	assert_int_equal(rd_buf_avail(&b), 2);
	assert_memory_equal(rd_buf_rptr(&b), "gh", 2);
	rd_buf_free(&b);
}

/* Every reader on a buffer that ends early: RD_ERR_INCOMPLETE, nothing consumed, the
 * out-parameter zeroed. */
static void test_reads_past_end(void **state)
{
	static const uint8_t data[] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77 };
	struct rd_buf b;
	uint8_t u8 = 9, raw[8];
	uint16_t u16 = 9;
	uint32_t u32 = 9;
	uint64_t u64 = 9;
	const char *sp = "x";
	const uint8_t *bp = data;
	size_t n = 9;
	char s[8] = "zz";
	static const uint8_t short_str[] = { 0x00, 0x05, 'a', 'b', 'c' }; /* 2 bytes short */

	(void)state;
	rd_buf_view(&b, data, 0);
	assert_int_equal(rd_buf_get_u8(&b, &u8), RD_ERR_INCOMPLETE);
	assert_int_equal(u8, 0);
	rd_buf_view(&b, data, 1);
	assert_int_equal(rd_buf_get_u16(&b, &u16), RD_ERR_INCOMPLETE);
	assert_int_equal(u16, 0);
	rd_buf_view(&b, data, 3);
	assert_int_equal(rd_buf_get_u32(&b, &u32), RD_ERR_INCOMPLETE);
	assert_int_equal(u32, 0);
	rd_buf_view(&b, data, 7);
	assert_int_equal(rd_buf_get_u64(&b, &u64), RD_ERR_INCOMPLETE);
	assert_true(u64 == 0);
	memset(raw, 0xEE, sizeof(raw));
	assert_int_equal(rd_buf_get(&b, raw, 8), RD_ERR_INCOMPLETE);
	assert_int_equal(raw[0], 0);
	assert_int_equal(rd_buf_skip(&b, 8), RD_ERR_INCOMPLETE);
	/* str declares 0x1122 bytes, bytes declares 0x11223344: both lie. */
	assert_int_equal(rd_buf_get_str_view(&b, &sp, &n), RD_ERR_INCOMPLETE);
	assert_null(sp);
	assert_int_equal(n, 0);
	n = 9;
	assert_int_equal(rd_buf_get_bytes_view(&b, &bp, &n), RD_ERR_INCOMPLETE);
	assert_null(bp);
	assert_int_equal(n, 0);
	rd_buf_view(&b, short_str, sizeof(short_str));
	assert_int_equal(rd_buf_get_str(&b, s, sizeof(s)), RD_ERR_INCOMPLETE);
	assert_string_equal(s, "");
	/* Nothing consumed by any of the failures. */
	assert_int_equal(b.rpos, 0);
	assert_int_equal(rd_buf_avail(&b), 5);
}

static void test_partial_str_prefix(void **state)
{
	struct rd_buf b;
	const char *sp;
	size_t n;
	char s[4];

	(void)state;
	rd_buf_view(&b, "\x00", 1);
	assert_int_equal(rd_buf_get_str_view(&b, &sp, &n), RD_ERR_INCOMPLETE);
	assert_int_equal(rd_buf_get_str(&b, s, sizeof(s)), RD_ERR_INCOMPLETE);
	assert_int_equal(b.rpos, 0);
}

static void test_growth_stops_at_max(void **state)
{
	struct rd_buf b;
	uint8_t chunk[100];
	int i, rc = 0;

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	rd_buf_init(&b, 1000);
	for (i = 0; i < 10; i++)
		assert_int_equal(rd_buf_put(&b, chunk, sizeof(chunk)), 0);
	assert_int_equal(b.len, 1000);
	assert_true(b.cap <= 1000);
	rc = rd_buf_put_u8(&b, 1);
	assert_int_equal(rc, RD_ERR_TOO_BIG);
	assert_int_equal(b.len, 1000);
	rd_buf_free(&b);

	/* A field that does not fit is not half-written. */
	rd_buf_init(&b, 10);
	assert_int_equal(rd_buf_put_u32(&b, 1), 0);
	assert_int_equal(rd_buf_put_str(&b, "abcdef", 6), RD_ERR_TOO_BIG);
	assert_int_equal(b.len, 4);
	assert_int_equal(rd_buf_put_bytes(&b, "abc", 3), RD_ERR_TOO_BIG);
	assert_int_equal(b.len, 4);
	assert_int_equal(rd_buf_reserve(&b, 6), 0);
	assert_int_equal(rd_buf_reserve(&b, 7), RD_ERR_TOO_BIG);
	rd_buf_free(&b);
}

static void test_growth_doubles(void **state)
{
	struct rd_buf b;
	size_t prev;
	int i;

	(void)state;
	rd_buf_init(&b, 0);
	assert_null(b.data); /* no allocation before the first write */
	assert_int_equal(rd_buf_put_u8(&b, 1), 0);
	prev = b.cap;
	assert_true(prev >= 1);
	for (i = 0; i < 20000; i++)
		assert_int_equal(rd_buf_put_u8(&b, (uint8_t)i), 0);
	assert_true(b.cap >= b.len);
	assert_true(b.cap < 2 * b.len + 256); /* doubling, not exact-fit and not runaway */
	for (i = 0; i < 20000; i++)
		assert_int_equal(b.data[1 + i], (uint8_t)i);
	rd_buf_free(&b);
	rd_buf_free(&b); /* twice is safe */
	assert_null(b.data);
}

static void test_zeroed_struct_is_owned_buffer(void **state)
{
	struct rd_buf b;

	(void)state;
	memset(&b, 0, sizeof(b));
	assert_int_equal(rd_buf_put_u32(&b, 7), 0);
	assert_int_equal(b.len, 4);
	rd_buf_free(&b);
}

static void test_view_cannot_grow(void **state)
{
	static const uint8_t data[] = { 0, 0, 0, 42, 1, 2 };
	struct rd_buf b;
	uint32_t v;
	uint8_t *sp = (uint8_t *)1;

	(void)state;
	rd_buf_view(&b, data, sizeof(data));
	assert_int_equal(b.owned, 0);
	assert_int_equal(rd_buf_put_u8(&b, 1), RD_ERR_STATE);
	assert_int_equal(rd_buf_reserve(&b, 1), RD_ERR_STATE);
	assert_int_equal(rd_buf_append_space(&b, 1, &sp), RD_ERR_STATE);
	assert_null(sp);
	assert_int_equal(rd_buf_get_u32(&b, &v), 0);
	assert_int_equal(v, 42);
	rd_buf_compact(&b);
	assert_int_equal(rd_buf_avail(&b), 2);
	assert_int_equal(rd_buf_rptr(&b)[0], 1);
	assert_memory_equal(data, "\0\0\0\x2a\1\2", 6); /* foreign memory untouched */
	/* does not free foreign memory */
	rd_buf_free(&b);

	rd_buf_view(&b, NULL, 0);
	assert_non_null(b.data);
	assert_int_equal(rd_buf_put_u8(&b, 1), RD_ERR_STATE);
}

static void test_compact_and_reset(void **state)
{
	struct rd_buf b;
	uint16_t v;
	size_t cap;

	(void)state;
	rd_buf_init(&b, 0);
	assert_int_equal(rd_buf_put_u16(&b, 1), 0);
	assert_int_equal(rd_buf_put_u16(&b, 2), 0);
	assert_int_equal(rd_buf_get_u16(&b, &v), 0);
	cap = b.cap;
	rd_buf_compact(&b);
	assert_int_equal(b.rpos, 0);
	assert_int_equal(b.len, 2);
	assert_int_equal(rd_buf_get_u16(&b, &v), 0);
	assert_int_equal(v, 2);
	rd_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.rpos, 0);
	assert_int_equal(b.cap, cap);
	rd_buf_free(&b);
}

static void test_str_limits(void **state)
{
	struct rd_buf b;
	char *big;
	char out[6];
	const char *sp;
	size_t n;

	(void)state;
	big = malloc(65536);
	assert_non_null(big);
	memset(big, 'a', 65536);
	rd_buf_init(&b, 0);
	assert_int_equal(rd_buf_put_str(&b, big, 65536), RD_ERR_TOO_BIG);
	assert_int_equal(b.len, 0);
	assert_int_equal(rd_buf_put_str(&b, big, 65535), 0);
	assert_int_equal(b.data[0], 0xFF);
	assert_int_equal(b.data[1], 0xFF);
	assert_int_equal(rd_buf_get_str_view(&b, &sp, &n), 0);
	assert_int_equal(n, 65535);
	free(big);
	rd_buf_reset(&b);

	/* out[6] holds 5 bytes + NUL */
	assert_int_equal(rd_buf_put_cstr(&b, "12345"), 0);
	assert_int_equal(rd_buf_put_cstr(&b, "123456"), 0);
	assert_int_equal(rd_buf_get_str(&b, out, sizeof(out)), 0);
	assert_string_equal(out, "12345");
	assert_int_equal(rd_buf_get_str(&b, out, sizeof(out)), RD_ERR_TOO_BIG);
	assert_string_equal(out, "");
	assert_int_equal(rd_buf_avail(&b), 8); /* not consumed */
	assert_int_equal(rd_buf_get_str(&b, out, 0), RD_ERR_INVAL);
	rd_buf_free(&b);
}

static void test_str_with_nul_is_malformed(void **state)
{
	struct rd_buf b;
	char out[16] = "junk";
	static const uint8_t nul_inside[] = { 0x00, 0x03, 'a', 0x00, 'b' };

	(void)state;
	rd_buf_view(&b, nul_inside, sizeof(nul_inside));
	assert_int_equal(rd_buf_get_str(&b, out, sizeof(out)), RD_ERR_MALFORMED);
	assert_string_equal(out, "");
	assert_int_equal(b.rpos, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ints_round_trip),
		cmocka_unit_test(test_big_endian_layout),
		cmocka_unit_test(test_raw_be_helpers),
		cmocka_unit_test(test_str_and_bytes_round_trip),
		cmocka_unit_test(test_raw_put_get_skip),
		cmocka_unit_test(test_reads_past_end),
		cmocka_unit_test(test_partial_str_prefix),
		cmocka_unit_test(test_growth_stops_at_max),
		cmocka_unit_test(test_growth_doubles),
		cmocka_unit_test(test_zeroed_struct_is_owned_buffer),
		cmocka_unit_test(test_view_cannot_grow),
		cmocka_unit_test(test_compact_and_reset),
		cmocka_unit_test(test_str_limits),
		cmocka_unit_test(test_str_with_nul_is_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
