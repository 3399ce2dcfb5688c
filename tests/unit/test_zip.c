/* test_zip.c - rd_zip: the 10% rule, round trips, bounded inflation (zlib bombs, lying
 * lengths, truncated and trailing data). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "rd_buf.h"
#include "rd_err.h"
#include "rd_zip.h"

/* Fixed-seed xorshift64: the same "random" bytes on every run. */
static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed;
	size_t i;

	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 24);
	}
}

static void fill_text(uint8_t *p, size_t n)
{
	static const char words[] = "the quick brown fox jumps over the lazy dog; ";
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)words[i % (sizeof(words) - 1)];
}

/* A prefixed payload made with zlib directly: declared length, then the stream of
 * `reps` copies of chunk. */
static void make_stream(struct rd_buf *out, uint32_t declared, const uint8_t *chunk, size_t clen,
			size_t reps)
{
	z_stream z;
	uint8_t tmp[65536];
	size_t i;
	int zr;

	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit(&z, 9), Z_OK);
	assert_int_equal(rd_buf_put_u32(out, declared), 0);
	for (i = 0; i <= reps; i++) {
		int flush = i == reps ? Z_FINISH : Z_NO_FLUSH;

		z.next_in = (Bytef *)(uintptr_t)chunk;
		z.avail_in = i == reps ? 0 : (uInt)clen;
		do {
			z.next_out = tmp;
			z.avail_out = sizeof(tmp);
			zr = deflate(&z, flush);
			assert_true(zr == Z_OK || zr == Z_STREAM_END || zr == Z_BUF_ERROR);
			assert_int_equal(rd_buf_put(out, tmp, sizeof(tmp) - z.avail_out), 0);
		} while (z.avail_out == 0);
	}
	assert_int_equal(zr, Z_STREAM_END);
	deflateEnd(&z);
}

static void test_worth_rule(void **state)
{
	(void)state;
	/* wire * 10 < orig * 9 */
	assert_int_equal(rd_zip_worth(100, 89), 1);
	assert_int_equal(rd_zip_worth(100, 90), 0);
	assert_int_equal(rd_zip_worth(100, 100), 0);
	assert_int_equal(rd_zip_worth(100, 150), 0);
	assert_int_equal(rd_zip_worth(10, 8), 1);
	assert_int_equal(rd_zip_worth(10, 9), 0);
	assert_int_equal(rd_zip_worth(0, 0), 0);
	assert_int_equal(rd_zip_worth(SIZE_MAX, 1), 1);
	/* no overflow near the top: the boundary is wire = orig - orig / 10 */
	assert_int_equal(rd_zip_worth(SIZE_MAX, SIZE_MAX - SIZE_MAX / 10), 0);
	assert_int_equal(rd_zip_worth(SIZE_MAX, SIZE_MAX - SIZE_MAX / 10 - 1), 1);
	assert_int_equal(rd_zip_worth(1000, 899), 1);
	assert_int_equal(rd_zip_worth(1000, 900), 0);
}

static void test_compressible_is_compressed(void **state)
{
	size_t n = 64 * 1024;
	uint8_t *src = malloc(n);
	struct rd_buf out, back;
	int used = 0;

	(void)state;
	assert_non_null(src);
	fill_text(src, n);
	rd_buf_init(&out, 0);
	rd_buf_init(&back, 0);
	assert_int_equal(rd_zip_compress(src, n, RD_ZIP_LEVEL_DEFAULT, &out, &used), 0);
	assert_int_equal(used, 1);
	assert_true(rd_zip_worth(n, out.len));
	assert_int_equal(rd_be32_get(out.data), n);
	assert_int_equal(rd_zip_decompress(out.data, out.len, n, &back), 0);
	assert_int_equal(back.len, n);
	assert_memory_equal(back.data, src, n);
	assert_int_equal(rd_zip_sample_worth(src, n), 1);
	rd_buf_free(&out);
	rd_buf_free(&back);
	free(src);
}

static void test_random_is_not_compressed(void **state)
{
	size_t n = 64 * 1024;
	uint8_t *src = malloc(n);
	struct rd_buf out;
	int used = 1;

	(void)state;
	assert_non_null(src);
	fill_random(src, n, 0x5eed1234abcdull);
	rd_buf_init(&out, 0);
	assert_int_equal(rd_buf_put(&out, "keep", 4), 0);
	assert_int_equal(rd_zip_compress(src, n, RD_ZIP_LEVEL_DEFAULT, &out, &used), 0);
	assert_int_equal(used, 0);
	assert_int_equal(out.len, 4); /* left as it was */
	assert_memory_equal(out.data, "keep", 4);
	assert_int_equal(rd_zip_sample_worth(src, n), 0);
	rd_buf_free(&out);
	free(src);
}

/* Data that compresses by about 5%: zlib shrinks it, but not by 10%, so it is not used. */
static void test_small_gain_is_not_enough(void **state)
{
	size_t n = 32 * 1024, i;
	uint8_t *src = malloc(n);
	struct rd_buf out;
	uLongf zl;
	uint8_t *z;
	int used = 1;

	(void)state;
	assert_non_null(src);
	fill_random(src, n, 77);
	for (i = 0; i < n; i += 16)
		memset(src + i, 0, 1); /* one byte in 16 predictable: a few percent saving */
	zl = compressBound(n);
	z = malloc(zl);
	assert_non_null(z);
	assert_int_equal(compress2(z, &zl, src, n, 1), Z_OK);
	assert_true(zl < n);                   /* zlib does save something */
	assert_false(rd_zip_worth(n, zl + 4)); /* but not 10% */
	rd_buf_init(&out, 0);
	assert_int_equal(rd_zip_compress(src, n, 1, &out, &used), 0);
	assert_int_equal(used, 0);
	assert_int_equal(out.len, 0);
	rd_buf_free(&out);
	free(z);
	free(src);
}

static void test_round_trip_sizes(void **state)
{
	static const size_t sizes[] = { 0, 1, 15, 16, 17, 100, 511, 4096, 70000, 300000 };
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];
		uint8_t *src = malloc(n + 1);
		struct rd_buf out, back;
		int used = 0;

		assert_non_null(src);
		memset(src, 'z', n);
		rd_buf_init(&out, 0);
		rd_buf_init(&back, 0);
		assert_int_equal(rd_zip_compress(src, n, 6, &out, &used), 0);
		if (n >= 100)
			assert_int_equal(used, 1);
		if (used) {
			assert_true(rd_zip_worth(n, out.len));
			assert_int_equal(rd_zip_decompress(out.data, out.len, n, &back), 0);
			assert_int_equal(back.len, n);
			assert_memory_equal(back.data, src, n);
		} else {
			assert_int_equal(out.len, 0);
		}
		rd_buf_free(&out);
		rd_buf_free(&back);
		free(src);
	}
}

static void test_decompress_appends(void **state)
{
	uint8_t src[1000];
	struct rd_buf z, out;
	int used;

	(void)state;
	fill_text(src, sizeof(src));
	rd_buf_init(&z, 0);
	rd_buf_init(&out, 0);
	assert_int_equal(rd_zip_compress(src, sizeof(src), 1, &z, &used), 0);
	assert_int_equal(used, 1);
	assert_int_equal(rd_buf_put(&out, "AB", 2), 0);
	assert_int_equal(rd_zip_decompress(z.data, z.len, sizeof(src), &out), 0);
	assert_int_equal(out.len, 2 + sizeof(src));
	assert_memory_equal(out.data, "AB", 2);
	assert_memory_equal(out.data + 2, src, sizeof(src));
	rd_buf_free(&z);
	rd_buf_free(&out);
}

static void test_bad_level_refused(void **state)
{
	uint8_t src[100] = { 0 };
	struct rd_buf out;
	int used = 1;

	(void)state;
	rd_buf_init(&out, 0);
	assert_int_equal(rd_zip_compress(src, sizeof(src), 42, &out, &used), RD_ERR_INVAL);
	assert_int_equal(used, 0);
	rd_buf_free(&out);
}

/* 100 MB of zeros deflate to about 100 KB. Declared honestly it is refused by length
 * before any allocation; declared small it is refused while inflating. */
static void test_zlib_bomb_refused(void **state)
{
	static uint8_t zeros[1 << 20];
	const uint32_t real = 100u << 20;
	struct rd_buf bomb, out;

	(void)state;
	rd_buf_init(&bomb, 0);
	make_stream(&bomb, real, zeros, sizeof(zeros), 100);
	assert_true(bomb.len < 200 * 1024);

	rd_buf_init(&out, 0);
	assert_int_equal(rd_zip_decompress(bomb.data, bomb.len, 1u << 20, &out), RD_ERR_TOO_BIG);
	assert_int_equal(out.len, 0);
	assert_null(out.data); /* refused before allocating */

	/* The same stream claiming to be 1000 bytes: inflation stops at 1000 + 1. */
	rd_be32_put(bomb.data, 1000);
	assert_int_equal(rd_zip_decompress(bomb.data, bomb.len, 1u << 20, &out), RD_ERR_ZLIB);
	assert_int_equal(out.len, 0);
	assert_true(out.cap <= 1000 + 256);
	rd_buf_free(&out);
	rd_buf_free(&bomb);
}

static void test_length_mismatch_refused(void **state)
{
	uint8_t src[1000];
	struct rd_buf z, out;

	(void)state;
	fill_text(src, sizeof(src));
	rd_buf_init(&z, 0);
	rd_buf_init(&out, 0);
	make_stream(&z, sizeof(src), src, sizeof(src), 1);
	assert_int_equal(rd_zip_decompress(z.data, z.len, 4096, &out), 0);
	rd_buf_reset(&out);

	rd_be32_put(z.data, sizeof(src) - 1); /* inflates past the declared length */
	assert_int_equal(rd_zip_decompress(z.data, z.len, 4096, &out), RD_ERR_ZLIB);
	assert_int_equal(out.len, 0);
	rd_be32_put(z.data, sizeof(src) + 1); /* ends short of it */
	assert_int_equal(rd_zip_decompress(z.data, z.len, 4096, &out), RD_ERR_ZLIB);
	assert_int_equal(out.len, 0);
	rd_be32_put(z.data, 0);
	assert_int_equal(rd_zip_decompress(z.data, z.len, 4096, &out), RD_ERR_ZLIB);
	rd_be32_put(z.data, 4097); /* above max_out */
	assert_int_equal(rd_zip_decompress(z.data, z.len, 4096, &out), RD_ERR_TOO_BIG);
	rd_buf_free(&z);
	rd_buf_free(&out);
}

static void test_truncated_streams(void **state)
{
	uint8_t src[5000];
	struct rd_buf z, out;
	size_t cut;
	int used, rc;

	(void)state;
	fill_text(src, sizeof(src));
	rd_buf_init(&z, 0);
	rd_buf_init(&out, 0);
	assert_int_equal(rd_zip_compress(src, sizeof(src), 1, &z, &used), 0);
	assert_int_equal(used, 1);
	for (cut = 0; cut < z.len; cut++) {
		rc = rd_zip_decompress(z.data, cut, sizeof(src), &out);
		if (cut < 4)
			assert_int_equal(rc, RD_ERR_MALFORMED);
		else
			assert_int_equal(rc, RD_ERR_ZLIB);
		assert_int_equal(out.len, 0);
	}
	rd_buf_free(&z);
	rd_buf_free(&out);
}

static void test_trailing_and_corrupt_refused(void **state)
{
	uint8_t src[2000];
	struct rd_buf z, out;
	size_t i;
	int used;

	(void)state;
	fill_text(src, sizeof(src));
	rd_buf_init(&z, 0);
	rd_buf_init(&out, 0);
	assert_int_equal(rd_zip_compress(src, sizeof(src), 1, &z, &used), 0);
	assert_int_equal(used, 1);
	assert_int_equal(rd_buf_put_u8(&z, 0), 0); /* one byte after the stream end */
	assert_int_equal(rd_zip_decompress(z.data, z.len, sizeof(src), &out), RD_ERR_ZLIB);
	z.len--;
	/* Flip each byte of the stream in turn: never accepted as a different payload. */
	for (i = 4; i < z.len; i++) {
		int rc;

		z.data[i] ^= 0x55;
		rd_buf_reset(&out);
		rc = rd_zip_decompress(z.data, z.len, sizeof(src), &out);
		assert_int_equal(rc, RD_ERR_ZLIB);
		z.data[i] ^= 0x55;
	}
	rd_buf_free(&z);
	rd_buf_free(&out);
}

static void test_sample_worth_small_inputs(void **state)
{
	uint8_t r[64];

	(void)state;
	fill_random(r, sizeof(r), 3);
	assert_int_equal(rd_zip_sample_worth(r, 0), 0);
	assert_int_equal(rd_zip_sample_worth(r, sizeof(r)), 0);
	memset(r, 'a', sizeof(r));
	assert_int_equal(rd_zip_sample_worth(r, sizeof(r)), 1);
}

/* rd_zip_adapt against a simulated link: ns_raw and ns_zip per input byte for each chunk.
 * Returns how many of the chunks [from, to) it compressed. */
static unsigned adapt_run(struct rd_zip_adapt *a, unsigned chunks, double ns_raw, double ns_zip)
{
	unsigned zipped = 0;

	for (unsigned i = 0; i < chunks; i++) {
		int zip = rd_zip_adapt_choose(a);

		zipped += (unsigned)zip;
		rd_zip_adapt_record(a, zip, 262144, (uint64_t)(262144 * (zip ? ns_zip : ns_raw)));
	}
	return zipped;
}

/* A fast link (the compressor is the bottleneck): every chunk raw but the one that times
 * the compressor; a slow link: nearly every chunk compressed; a link that
 * slows down mid-stream is followed within RD_ZIP_PROBE_MAX chunks. */
static void test_adapt_weighs_time(void **state)
{
	struct rd_zip_adapt a;
	unsigned z;

	(void)state;
	memset(&a, 0, sizeof(a));
	z = adapt_run(&a, 1000, 1.0, 5.0);
	assert_int_equal(z, 1); /* the first measure; raw chunks then keep measuring the path */
	/* started from a sample's guess: one compressed chunk tried, to time it, and no more */
	memset(&a, 0, sizeof(a));
	a.ns_zip = 0.5;
	z = adapt_run(&a, 1000, 1.0, 5.0);
	assert_int_equal(z, 1);
	memset(&a, 0, sizeof(a));
	z = adapt_run(&a, 1000, 80.0, 20.0);
	assert_true(z >= 988);
	/* fast for 600 chunks, then slow: compressed again well before the end */
	memset(&a, 0, sizeof(a));
	(void)adapt_run(&a, 600, 1.0, 5.0);
	(void)adapt_run(&a, RD_ZIP_PROBE_MAX + 8, 80.0, 20.0);
	assert_int_equal(adapt_run(&a, 10, 80.0, 20.0), 10);
	/* and back */
	(void)adapt_run(&a, RD_ZIP_PROBE_MAX + 8, 1.0, 5.0);
	assert_int_equal(adapt_run(&a, 10, 1.0, 5.0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worth_rule),
		cmocka_unit_test(test_compressible_is_compressed),
		cmocka_unit_test(test_random_is_not_compressed),
		cmocka_unit_test(test_small_gain_is_not_enough),
		cmocka_unit_test(test_round_trip_sizes),
		cmocka_unit_test(test_decompress_appends),
		cmocka_unit_test(test_bad_level_refused),
		cmocka_unit_test(test_zlib_bomb_refused),
		cmocka_unit_test(test_length_mismatch_refused),
		cmocka_unit_test(test_truncated_streams),
		cmocka_unit_test(test_trailing_and_corrupt_refused),
		cmocka_unit_test(test_sample_worth_small_inputs),
		cmocka_unit_test(test_adapt_weighs_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
