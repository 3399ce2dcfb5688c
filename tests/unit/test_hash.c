/* test_hash.c - SHA-256 against the FIPS 180 examples, incremental use, copies, files,
 * hex, random tokens and constant-time compare. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rd_err.h"
#include "rd_hash.h"

struct vector {
	const char *msg;
	size_t repeat; /* msg is repeated this many times */
	const char *hex;
};

/* FIPS 180-2 appendix B / NIST CSHA examples. */
static const struct vector vectors[] = {
	{ "", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
	{ "abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
	{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
	  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	{ "a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0" },
};

static uint8_t *expand(const struct vector *v, size_t *len)
{
	size_t m = strlen(v->msg), i;
	uint8_t *buf = malloc(m * v->repeat + 1);

	assert_non_null(buf);
	for (i = 0; i < v->repeat; i++)
		memcpy(buf + i * m, v->msg, m);
	*len = m * v->repeat;
	return buf;
}

static void test_sha256_nist_vectors_one_shot(void **state)
{
	uint8_t d[RD_SHA256_LEN];
	char hex[2 * RD_SHA256_LEN + 1];
	size_t i, len;
	uint8_t *buf;

	(void)state;
	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		buf = expand(&vectors[i], &len);
		assert_int_equal(rd_sha256(buf, len, d), 0);
		rd_hex(d, sizeof(d), hex);
		assert_string_equal(hex, vectors[i].hex);
		free(buf);
	}
}

static void test_sha256_null_empty_input(void **state)
{
	uint8_t d[RD_SHA256_LEN];
	char hex[2 * RD_SHA256_LEN + 1];

	(void)state;
	assert_int_equal(rd_sha256(NULL, 0, d), 0);
	rd_hex(d, sizeof(d), hex);
	assert_string_equal(hex, vectors[0].hex);
	assert_int_equal(rd_sha256(NULL, 1, d), RD_ERR_INVAL);
}

static void test_sha256_incremental_odd_pieces(void **state)
{
	static const size_t pieces[] = { 1, 3, 7, 63, 64, 65, 127, 4093 };
	struct rd_sha256 *h = NULL;
	uint8_t d[RD_SHA256_LEN], want[RD_SHA256_LEN];
	char hex[2 * RD_SHA256_LEN + 1];
	size_t i, len, off, k = 0, step;
	uint8_t *buf;

	(void)state;
	assert_int_equal(rd_sha256_new(&h), 0);
	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		buf = expand(&vectors[i], &len);
		for (off = 0; off < len; off += step) {
			step = pieces[k++ % (sizeof(pieces) / sizeof(pieces[0]))];
			if (step > len - off)
				step = len - off;
			assert_int_equal(rd_sha256_update(h, buf + off, step), 0);
		}
		assert_int_equal(rd_sha256_final(h, d), 0);
		rd_hex(d, sizeof(d), hex);
		assert_string_equal(hex, vectors[i].hex);
		assert_int_equal(rd_sha256(buf, len, want), 0);
		assert_memory_equal(d, want, sizeof(d));
		assert_int_equal(rd_sha256_reset(h), 0);
		free(buf);
	}
	rd_sha256_free(h);
}

static void test_sha256_reset_discards_input(void **state)
{
	struct rd_sha256 *h = NULL;
	uint8_t d[RD_SHA256_LEN];
	char hex[2 * RD_SHA256_LEN + 1];

	(void)state;
	assert_int_equal(rd_sha256_new(&h), 0);
	assert_int_equal(rd_sha256_update(h, "junk", 4), 0);
	assert_int_equal(rd_sha256_reset(h), 0);
	assert_int_equal(rd_sha256_update(h, "abc", 3), 0);
	assert_int_equal(rd_sha256_final(h, d), 0);
	rd_hex(d, sizeof(d), hex);
	assert_string_equal(hex, vectors[1].hex);
	rd_sha256_free(h);
	rd_sha256_free(NULL);
}

static void test_sha256_copy_of_running_state(void **state)
{
	struct rd_sha256 *a = NULL, *b = NULL;
	uint8_t da[RD_SHA256_LEN], db[RD_SHA256_LEN], want[RD_SHA256_LEN];
	const char *msg = vectors[2].msg;
	size_t n = strlen(msg);

	(void)state;
	assert_int_equal(rd_sha256_new(&a), 0);
	assert_int_equal(rd_sha256_new(&b), 0);
	/* b holds some unrelated state that the copy must replace. */
	assert_int_equal(rd_sha256_update(b, "zzz", 3), 0);
	assert_int_equal(rd_sha256_update(a, msg, 20), 0);
	assert_int_equal(rd_sha256_copy(b, a), 0);
	/* Both go on independently from the same prefix. */
	assert_int_equal(rd_sha256_update(a, msg + 20, n - 20), 0);
	assert_int_equal(rd_sha256_update(b, msg + 20, n - 20), 0);
	assert_int_equal(rd_sha256_final(a, da), 0);
	assert_int_equal(rd_sha256_final(b, db), 0);
	assert_int_equal(rd_sha256(msg, n, want), 0);
	assert_memory_equal(da, want, sizeof(want));
	assert_memory_equal(db, want, sizeof(want));

	/* A copy finalised on its own gives the hash of the prefix only. */
	assert_int_equal(rd_sha256_reset(a), 0);
	assert_int_equal(rd_sha256_update(a, "ab", 2), 0);
	assert_int_equal(rd_sha256_copy(b, a), 0);
	assert_int_equal(rd_sha256_update(a, "c", 1), 0);
	assert_int_equal(rd_sha256_final(b, db), 0);
	assert_int_equal(rd_sha256(msg, 2, want), 0);
	assert_memory_equal(db, want, sizeof(want));
	assert_int_equal(rd_sha256_final(a, da), 0);
	assert_int_equal(rd_sha256("abc", 3, want), 0);
	assert_memory_equal(da, want, sizeof(want));
	rd_sha256_free(a);
	rd_sha256_free(b);
}

static int temp_file(char *path, size_t cap)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	snprintf(path, cap, "%s/rd_test_hash_XXXXXX", dir != NULL && dir[0] != '\0' ? dir : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	return fd;
}

static void test_sha256_fd_whole_file_keeps_offset(void **state)
{
	char path[4096];
	uint8_t d[RD_SHA256_LEN], want[RD_SHA256_LEN];
	size_t len = 600 * 1024 + 17, i; /* several 256 KiB blocks and a tail */
	uint8_t *buf = malloc(len);
	uint64_t size = 1;
	int fd;

	(void)state;
	assert_non_null(buf);
	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 31u + (i >> 8));
	fd = temp_file(path, sizeof(path));
	unlink(path);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	/* The offset is at the end now; rd_sha256_fd must not care nor move it. */
	assert_int_equal(rd_sha256_fd(fd, d, &size), 0);
	assert_int_equal(size, len);
	assert_int_equal(rd_sha256(buf, len, want), 0);
	assert_memory_equal(d, want, sizeof(want));
	assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)len);

	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(rd_sha256_fd(fd, d, &size), 0);
	assert_int_equal(size, 0);
	assert_int_equal(rd_sha256("", 0, want), 0);
	assert_memory_equal(d, want, sizeof(want));
	close(fd);

	assert_int_equal(rd_sha256_fd(-1, d, &size), RD_ERR_INVAL);
	assert_int_equal(size, 0);
	free(buf);
}

static void test_sha256_fd_unreadable_is_system_error(void **state)
{
	int p[2];
	uint8_t d[RD_SHA256_LEN];
	uint64_t size = 5;

	(void)state;
	/* pread on a pipe fails with ESPIPE. */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(rd_sha256_fd(p[0], d, &size), RD_ERR_SYSTEM);
	assert_int_equal(size, 0);
	close(p[0]);
	close(p[1]);
}

static void test_hex_round_trip(void **state)
{
	uint8_t in[256], back[256];
	char hex[2 * 256 + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	rd_hex(in, sizeof(in), hex);
	assert_int_equal(strlen(hex), 2 * sizeof(in));
	assert_memory_equal(hex, "000102030405060708090a0b0c0d0e0f10", 34);
	assert_string_equal(hex + 2 * 250, "fafbfcfdfeff");
	assert_int_equal(rd_hex_parse(hex, back, sizeof(back)), 0);
	assert_memory_equal(in, back, sizeof(in));

	/* Upper case parses too. */
	assert_int_equal(rd_hex_parse("DEADbeef", back, 4), 0);
	assert_memory_equal(back, "\xde\xad\xbe\xef", 4);

	rd_hex(in, 0, hex);
	assert_string_equal(hex, "");
	assert_int_equal(rd_hex_parse("", back, 0), 0);
}

static void test_hex_parse_rejects_bad_input(void **state)
{
	static const char *bad[] = {
		"0",       /* odd, too short */
		"00",      /* too short */
		"000000",  /* too long */
		"0000000", /* too long and odd */
		"0g00",    /* not a digit */
		"00 0",    /* blank */
		" 0000",   "0x00", "-000", "00\n0",
	};
	uint8_t out[2];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(out, 0xAA, sizeof(out));
		assert_int_equal(rd_hex_parse(bad[i], out, sizeof(out)), RD_ERR_INVAL);
		/* out is cleared, never left half-written */
		assert_memory_equal(out, "\0\0", 2);
	}
	assert_int_equal(rd_hex_parse(NULL, out, sizeof(out)), RD_ERR_INVAL);
	assert_int_equal(rd_hex_parse("00ff", out, sizeof(out)), 0);
	assert_memory_equal(out, "\x00\xff", 2);
}

static void test_random_tokens_differ(void **state)
{
	uint8_t a[32], b[32], zero[32];

	(void)state;
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	memset(zero, 0, sizeof(zero));
	assert_int_equal(rd_random(a, sizeof(a)), 0);
	assert_int_equal(rd_random(b, sizeof(b)), 0);
	/* 2^-256 chance of a false failure. */
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_int_equal(rd_random(NULL, 0), 0);
	assert_int_equal(rd_random(NULL, 1), RD_ERR_INVAL);
}

static void test_ct_equal(void **state)
{
	uint8_t a[32], b[32];
	size_t i;

	(void)state;
	assert_int_equal(rd_random(a, sizeof(a)), 0);
	memcpy(b, a, sizeof(a));
	assert_int_equal(rd_ct_equal(a, b, sizeof(a)), 1);
	for (i = 0; i < sizeof(a); i++) {
		b[i] ^= 0x01;
		assert_int_equal(rd_ct_equal(a, b, sizeof(a)), 0);
		b[i] ^= 0x81; /* differs only in the top bit */
		assert_int_equal(rd_ct_equal(a, b, sizeof(a)), 0);
		b[i] ^= 0x80;
	}
	assert_int_equal(rd_ct_equal(a, b, sizeof(a)), 1);
	assert_int_equal(rd_ct_equal(a, b, 0), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_nist_vectors_one_shot),
		cmocka_unit_test(test_sha256_null_empty_input),
		cmocka_unit_test(test_sha256_incremental_odd_pieces),
		cmocka_unit_test(test_sha256_reset_discards_input),
		cmocka_unit_test(test_sha256_copy_of_running_state),
		cmocka_unit_test(test_sha256_fd_whole_file_keeps_offset),
		cmocka_unit_test(test_sha256_fd_unreadable_is_system_error),
		cmocka_unit_test(test_hex_round_trip),
		cmocka_unit_test(test_hex_parse_rejects_bad_input),
		cmocka_unit_test(test_random_tokens_differ),
		cmocka_unit_test(test_ct_equal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
