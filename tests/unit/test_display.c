/* test_display.c - rd_display: showing text from the wire safely (escapes, width). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rd_display.h"
#include "rd_names.h"

#define N(lit) lit, sizeof(lit) - 1

struct esc_case {
	const char *s;
	size_t n;
	const char *want;
};

static void run_table(const struct esc_case *t, size_t count)
{
	char out[256];
	size_t i;

	for (i = 0; i < count; i++) {
		assert_ptr_equal(rd_display_escape(t[i].s, t[i].n, out, sizeof(out)), out);
		if (strcmp(out, t[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, out, t[i].want);
	}
}

static void test_format_and_bidi_characters_are_escaped(void **state)
{
	/* clang-format off */
	const struct esc_case t[] = {
		{ N("n\xe2\x80\xae" "fdp.exe"), "n\\u202efdp.exe" }, /* U+202E RLO */
		{ N("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad"),
		  "\\u202a\\u202b\\u202c\\u202d" },                    /* LRE RLE PDF LRO */
		{ N("\xe2\x81\xa6x\xe2\x81\xa9"), "\\u2066x\\u2069" }, /* LRI ... PDI */
		{ N("\xe2\x80\x8e\xe2\x80\x8f"), "\\u200e\\u200f" },   /* LRM RLM */
		{ N("\xd8\x9c"), "\\u061c" },                          /* ALM */
		{ N("a\xe2\x80\x8b" "b"), "a\\u200bb" },               /* zero width space */
		{ N("a\xe2\x80\x8d" "b"), "a\\u200db" },               /* ZWJ */
		{ N("\xef\xbb\xbf" "bom"), "\\ufeffbom" },             /* BOM */
		{ N("soft\xc2\xad" "hyphen"), "soft\\u00adhyphen" },   /* U+00AD */
		{ N("tag\xf3\xa0\x80\x81"), "tag\\U000e0001" },        /* U+E0001, beyond the BMP */
		{ N("line\xe2\x80\xa8" "sep"), "line\\u2028sep" },     /* U+2028 */
		{ N("para\xe2\x80\xa9" "sep"), "para\\u2029sep" },     /* U+2029 */
	};
	/* clang-format on */

	(void)state;
	run_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_controls_and_invalid_bytes_are_escaped(void **state)
{
	/* clang-format off */
	const struct esc_case t[] = {
		{ N("a\x1b[31mb"), "a\\x1b[31mb" },
		{ N("bell\x07"), "bell\\x07" },
		{ N("nl\ncr\r"), "nl\\x0acr\\x0d" },
		{ N("del\x7f"), "del\\x7f" },
		{ N("nul\0x"), "nul\\x00x" },
		{ N("back\\slash"), "back\\x5cslash" }, /* so an escape cannot be forged */
		{ N("\xc2\x9b" "2J"), "\\xc2\\x9b2J" }, /* C1 CSI */
		{ N("\xc2\x85"), "\\xc2\\x85" },        /* C1 NEL */
		{ N("\xc0\xaf"), "\\xc0\\xaf" },        /* overlong '/' */
		{ N("\xe0\x80\xaf"), "\\xe0\\x80\\xaf" },
		{ N("\xed\xa0\x80"), "\\xed\\xa0\\x80" }, /* surrogate */
		{ N("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80" },
		{ N("\xff"), "\\xff" },
		{ N("a\xe2\x80"), "a\\xe2\\x80" }, /* truncated U+202E */
	};
	/* clang-format on */

	(void)state;
	run_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_printable_text_is_kept(void **state)
{
	/* clang-format off */
	const struct esc_case t[] = {
		{ N("report.pdf"), "report.pdf" },
		{ N("na\xc3\xafve caf\xc3\xa9"), "na\xc3\xafve caf\xc3\xa9" },
		{ N("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"), "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
		{ N("\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7"), "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7" },
		{ N("\xce\x95\xce\xbb\xce\xbb\xce\xac\xce\xb4\xce\xb1"),
		  "\xce\x95\xce\xbb\xce\xbb\xce\xac\xce\xb4\xce\xb1" },
		{ N("\xf0\x9f\x98\x80 \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd"),
		  "\xf0\x9f\x98\x80 \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd" },
		{ N("e\xcc\x81"), "e\xcc\x81" }, /* a combining mark (Mn) is text */
		{ N("\xc2\xa0nbsp"), "\xc2\xa0nbsp" },
		{ N("tab-free text, with punctuation: ok!"), "tab-free text, with punctuation: ok!" },
	};
	/* clang-format on */

	(void)state;
	run_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_truncation_never_splits_an_escape(void **state)
{
	char out[16];

	(void)state;
	/* "ab\u202e" is 8 bytes + NUL: fits in 9 */
	rd_display_escape(N("ab\xe2\x80\xae"), out, 9);
	assert_string_equal(out, "ab\\u202e");
	/* one byte less: the escape goes whole, "..." marks the cut */
	rd_display_escape(N("ab\xe2\x80\xae"), out, 8);
	assert_string_equal(out, "ab...");
	rd_display_escape(N("\xf3\xa0\x80\x81"), out, 10);
	assert_string_equal(out, "...");
	memset(out, 'Z', sizeof(out));
	rd_display_escape(N("abc"), out, 0);
	assert_int_equal(out[0], 'Z');
}

/* Every code point, encoded, goes through the escaper: the output is valid UTF-8 and
 * holds no control byte, and every character that is not printable comes out escaped. */
static void test_no_code_point_reaches_the_terminal_raw(void **state)
{
	static const uint32_t bad[] = { 0x00,   0x1b,   0x7f,   0x85,   0x9b,
					0xad,   0x61c,  0x200b, 0x200e, 0x2028,
					0x2029, 0x202e, 0x2066, 0xfeff, 0xe0001 };
	char in[8], out[64];
	uint32_t cp;
	size_t n, i, k;

	(void)state;
	for (cp = 0; cp <= 0x10FFFF; cp++) {
		if (cp >= 0xD800 && cp <= 0xDFFF)
			continue;
		if (cp < 0x80) {
			in[0] = (char)cp;
			n = 1;
		} else if (cp < 0x800) {
			in[0] = (char)(0xC0 | (cp >> 6));
			in[1] = (char)(0x80 | (cp & 0x3F));
			n = 2;
		} else if (cp < 0x10000) {
			in[0] = (char)(0xE0 | (cp >> 12));
			in[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
			in[2] = (char)(0x80 | (cp & 0x3F));
			n = 3;
		} else {
			in[0] = (char)(0xF0 | (cp >> 18));
			in[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
			in[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
			in[3] = (char)(0x80 | (cp & 0x3F));
			n = 4;
		}
		rd_display_escape(in, n, out, sizeof(out));
		if (!rd_utf8_valid(out, strlen(out)))
			fail_msg("U+%04X: output is not valid UTF-8", cp);
		for (k = 0; out[k] != '\0'; k++)
			if ((unsigned char)out[k] < 0x20 || (unsigned char)out[k] == 0x7F)
				fail_msg("U+%04X: a control byte in the output", cp);
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			if (cp == bad[i] && out[0] != '\\')
				fail_msg("U+%04X was not escaped: \"%s\"", cp, out);
		if (strlen(out) == n && memcmp(out, in, n) == 0 && !rd_display_printable(cp))
			fail_msg("U+%04X is not printable but was copied", cp);
	}
}

static void test_display_width(void **state)
{
	(void)state;
	assert_int_equal(rd_display_width(N("")), 0);
	assert_int_equal(rd_display_width(N("abc")), 3);
	assert_int_equal(rd_display_width(N("na\xc3\xafve caf\xc3\xa9.txt")), 14);
	assert_int_equal(rd_display_width(N("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e")), 6);
	assert_int_equal(rd_display_width(N("e\xcc\x81")), 1);
	assert_int_equal(rd_display_width(N("\xf0\x9f\x98\x80")), 2);
	assert_int_equal(rd_display_width(N("\\x1b")), 4);
	/* an invalid byte counts one column (it is shown as something) */
	assert_int_equal(rd_display_width(N("a\xff")), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_and_bidi_characters_are_escaped),
		cmocka_unit_test(test_controls_and_invalid_bytes_are_escaped),
		cmocka_unit_test(test_printable_text_is_kept),
		cmocka_unit_test(test_truncation_never_splits_an_escape),
		cmocka_unit_test(test_no_code_point_reaches_the_terminal_raw),
		cmocka_unit_test(test_display_width),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
