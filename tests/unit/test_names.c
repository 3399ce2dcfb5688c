/* test_names.c - nick, room and file name validation, UTF-8, display escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rd_err.h"
#include "rd_names.h"
#include "rd_proto.h"

/* A name with an explicit length (names may carry NUL bytes). */
struct name_case {
	const char *s;
	size_t n; /* bytes of s to check */
	uint16_t want;
};

#define N(lit) lit, sizeof(lit) - 1

static char name32[RD_NICK_MAX + 1];
static char name33[RD_NICK_MAX + 2];

static int setup_long_names(void **state)
{
	(void)state;
	memset(name32, 'n', RD_NICK_MAX);
	name32[RD_NICK_MAX] = '\0';
	memset(name33, 'n', RD_NICK_MAX + 1);
	name33[RD_NICK_MAX + 1] = '\0';
	return 0;
}

static void run_nick_table(const struct name_case *t, size_t count)
{
	size_t i;
	uint16_t got;

	for (i = 0; i < count; i++) {
		got = rd_nick_check(t[i].s, t[i].n);
		if (got != t[i].want)
			fail_msg("nick case %zu (\"%s\"): got %u, want %u", i, t[i].s, got,
				 t[i].want);
	}
}

static void test_nick_valid(void **state)
{
	/* One case a line reads better than packed columns. */
	/* clang-format off */
	const struct name_case t[] = {
		{ N("alice"), 0 },
		{ N("A"), 0 },              /* one byte is enough */
		{ N("7"), 0 },              /* a digit may come first */
		{ N("_hidden"), 0 },        /* so may an underscore */
		{ N("a.b-c_d"), 0 },        /* the whole set */
		{ N("Bob99"), 0 },
		{ N("serve"), 0 },          /* a prefix of the reserved name */
		{ N("servers"), 0 },        /* the reserved name plus more */
		{ N("server_"), 0 },
		{ N("x-"), 0 },             /* '-' and '.' may end a name */
		{ N("x."), 0 },
		{ name32, RD_NICK_MAX, 0 }, /* the longest allowed */
	};
	/* clang-format on */

	(void)state;
	run_nick_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_nick_invalid_with_exact_code(void **state)
{
	const struct name_case t[] = {
		{ N(""), RD_E_NICK_LENGTH },
		{ name33, RD_NICK_MAX + 1, RD_E_NICK_LENGTH },
		{ N("server"), RD_E_NICK_RESERVED },
		{ N("SERVER"), RD_E_NICK_RESERVED },
		{ N("SeRvEr"), RD_E_NICK_RESERVED },
		{ N(".alice"), RD_E_NICK_INVALID }, /* first char must be letter, digit or _ */
		{ N("-bob"), RD_E_NICK_INVALID },
		{ N("al ice"), RD_E_NICK_INVALID },
		{ N(" alice"), RD_E_NICK_INVALID },
		{ N("alice "), RD_E_NICK_INVALID },
		{ N("al@ice"), RD_E_NICK_INVALID },
		{ N("a/b"), RD_E_NICK_INVALID },
		{ N("a\\b"), RD_E_NICK_INVALID },
		{ N("ali\0ce"), RD_E_NICK_INVALID }, /* embedded NUL is seen, not cut at */
		{ N("\x1b[31m"), RD_E_NICK_INVALID },
		{ N("bob\n"), RD_E_NICK_INVALID },
		{ N("caf\xc3\xa9"), RD_E_NICK_INVALID }, /* UTF-8 letters are not allowed */
		{ N("\xff"), RD_E_NICK_INVALID },
		{ N("server\0"), RD_E_NICK_INVALID }, /* not the reserved name: a NUL is in it */
		{ NULL, 3, RD_E_NICK_INVALID },
		{ NULL, 0, RD_E_NICK_LENGTH },
	};

	(void)state;
	run_nick_table(t, sizeof(t) / sizeof(t[0]));
	/* Length is judged before the characters. */
	assert_int_equal(rd_nick_check("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", 33), RD_E_NICK_LENGTH);
}

static void test_room_names(void **state)
{
	const struct name_case t[] = {
		{ N("lobby"), 0 },
		{ N("Room-1"), 0 },
		{ N("_priv"), 0 },
		{ N("server"), 0 }, /* reserved only as a nickname */
		{ name32, RD_ROOM_MAX, 0 },
		{ N(""), RD_E_NO_SUCH_ROOM },
		{ name33, RD_ROOM_MAX + 1, RD_E_NO_SUCH_ROOM },
		{ N(".hidden"), RD_E_NO_SUCH_ROOM },
		{ N("-x"), RD_E_NO_SUCH_ROOM },
		{ N("a b"), RD_E_NO_SUCH_ROOM },
		{ N("../etc"), RD_E_NO_SUCH_ROOM },
		{ N("a/b"), RD_E_NO_SUCH_ROOM },
		{ N("ro\0om"), RD_E_NO_SUCH_ROOM },
		{ N("r\xc3\xb6\x6f"), RD_E_NO_SUCH_ROOM },
		{ NULL, 4, RD_E_NO_SUCH_ROOM },
	};
	size_t i;
	uint16_t got;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		got = rd_room_check(t[i].s, t[i].n);
		if (got != t[i].want)
			fail_msg("room case %zu (\"%s\"): got %u, want %u", i, t[i].s, got,
				 t[i].want);
	}
}

static void test_filename_valid(void **state)
{
	const struct name_case t[] = {
		{ N("report.pdf"), 0 },
		{ N("na\xc3\xafve caf\xc3\xa9.txt"), 0 },             /* naïve café.txt */
		{ N("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.txt"), 0 }, /* 日本語.txt */
		{ N("a (1).txt"), 0 },
		{ N(".bashrc"), 0 },
		{ N("..."), 0 },
		{ N("..x"), 0 },
		{ N("x"), 0 },
		{ N("\xf0\x9f\x98\x80.png"), 0 }, /* U+1F600, 4 bytes */
		{ N("\xf4\x8f\xbf\xbf"), 0 },     /* U+10FFFF, the last code point */
		{ N("\xc2\xa0nbsp"), 0 },         /* U+00A0 is not a C1 control */
		{ N("\xed\x9f\xbf"), 0 },         /* U+D7FF, just below the surrogates */
		{ N("\xee\x80\x80"), 0 },         /* U+E000, just above them */
	};
	size_t i;
	uint16_t got;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		got = rd_filename_check(t[i].s, t[i].n);
		if (got != t[i].want)
			fail_msg("filename case %zu (\"%s\"): got %u, want 0", i, t[i].s, got);
	}
}

static void test_filename_invalid(void **state)
{
	const struct name_case t[] = {
		{ N(""), RD_FILENAME_REFUSED },
		{ N("."), RD_FILENAME_REFUSED },
		{ N(".."), RD_FILENAME_REFUSED },
		{ N("../x"), RD_FILENAME_REFUSED },
		{ N("/etc/passwd"), RD_FILENAME_REFUSED },
		{ N("a/b"), RD_FILENAME_REFUSED },
		{ N("a\\b"), RD_FILENAME_REFUSED },
		{ N("..\\x"), RD_FILENAME_REFUSED },
		{ N("a\nb"), RD_FILENAME_REFUSED },
		{ N("a\rb"), RD_FILENAME_REFUSED },
		{ N("a\tb"), RD_FILENAME_REFUSED },
		{ N("\x1b[2Jx"), RD_FILENAME_REFUSED },
		{ N("a\0b"), RD_FILENAME_REFUSED },
		{ N("a\x7f"), RD_FILENAME_REFUSED },
		{ N("a\xc2\x80"), RD_FILENAME_REFUSED },  /* U+0080, first C1 control */
		{ N("a\xc2\x9bz"), RD_FILENAME_REFUSED }, /* U+009B, CSI */
		{ N("a\xc2\x9f"), RD_FILENAME_REFUSED },  /* U+009F, last C1 control */
		{ N(" lead"), RD_FILENAME_REFUSED },
		{ N("trail "), RD_FILENAME_REFUSED },
		{ N(" "), RD_FILENAME_REFUSED },
		/* invalid UTF-8 */
		{ N("\xc0\x80"), RD_FILENAME_REFUSED },         /* overlong NUL */
		{ N("\xc1\xbf"), RD_FILENAME_REFUSED },         /* overlong 0x7F */
		{ N("\xe0\x80\xaf"), RD_FILENAME_REFUSED },     /* overlong '/' */
		{ N("\xf0\x80\x80\xaf"), RD_FILENAME_REFUSED }, /* overlong '/' */
		{ N("\xed\xa0\x80"), RD_FILENAME_REFUSED },     /* U+D800 surrogate */
		{ N("\xed\xbf\xbf"), RD_FILENAME_REFUSED },     /* U+DFFF surrogate */
		{ N("\x80"), RD_FILENAME_REFUSED },             /* lone continuation */
		{ N("a\xbfz"), RD_FILENAME_REFUSED },
		{ N("\xf4\x90\x80\x80"), RD_FILENAME_REFUSED }, /* U+110000 */
		{ N("\xf5\x80\x80\x80"), RD_FILENAME_REFUSED },
		{ N("\xf8\x88\x80\x80\x80"), RD_FILENAME_REFUSED },
		{ N("\xfe"), RD_FILENAME_REFUSED },
		{ N("\xff"), RD_FILENAME_REFUSED },
		{ N("a\xc3"), RD_FILENAME_REFUSED },         /* truncated 2-byte */
		{ N("a\xe6\x97"), RD_FILENAME_REFUSED },     /* truncated 3-byte */
		{ N("a\xf0\x9f\x98"), RD_FILENAME_REFUSED }, /* truncated 4-byte */
		{ N("\xe6\x97x.txt"), RD_FILENAME_REFUSED }, /* lead followed by ASCII */
		{ NULL, 5, RD_FILENAME_REFUSED },
	};
	size_t i;
	uint16_t got;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		got = rd_filename_check(t[i].s, t[i].n);
		if (got != t[i].want)
			fail_msg("filename case %zu: got %u, want %u", i, got, t[i].want);
	}
}

static void test_filename_length_limits(void **state)
{
	char *big = malloc(10000);
	size_t i;

	(void)state;
	assert_non_null(big);
	memset(big, 'f', 10000);
	assert_int_equal(rd_filename_check(big, RD_FILENAME_MAX), 0);
	assert_int_equal(rd_filename_check(big, 256), RD_FILENAME_REFUSED);
	assert_int_equal(rd_filename_check(big, 10000), RD_FILENAME_REFUSED);

	/* The limit is in bytes, not characters: 85 x 3-byte chars = 255 bytes fits,
	 * one more does not. */
	for (i = 0; i + 3 <= 258; i += 3)
		memcpy(big + i, "\xe6\x97\xa5", 3);
	assert_int_equal(rd_filename_check(big, 255), 0);
	assert_int_equal(rd_filename_check(big, 258), RD_FILENAME_REFUSED);
	free(big);
}

static void test_utf8_valid(void **state)
{
	(void)state;
	assert_int_equal(rd_utf8_valid("", 0), 1);
	assert_int_equal(rd_utf8_valid(NULL, 0), 1);
	assert_int_equal(rd_utf8_valid(NULL, 1), 0);
	assert_int_equal(rd_utf8_valid(N("plain ascii")), 1);
	assert_int_equal(rd_utf8_valid(N("a\0b")), 1); /* NUL is valid UTF-8 */
	assert_int_equal(rd_utf8_valid(N("\xc2\x80")), 1);
	assert_int_equal(rd_utf8_valid(N("\xdf\xbf")), 1);
	assert_int_equal(rd_utf8_valid(N("\xe0\xa0\x80")), 1);
	assert_int_equal(rd_utf8_valid(N("\xef\xbf\xbf")), 1);
	assert_int_equal(rd_utf8_valid(N("\xf0\x90\x80\x80")), 1);
	assert_int_equal(rd_utf8_valid(N("\xf4\x8f\xbf\xbf")), 1);

	assert_int_equal(rd_utf8_valid(N("\xc0\x80")), 0);
	assert_int_equal(rd_utf8_valid(N("\xe0\x9f\xbf")), 0);
	assert_int_equal(rd_utf8_valid(N("\xed\xa0\x80")), 0);
	assert_int_equal(rd_utf8_valid(N("\xf0\x8f\xbf\xbf")), 0);
	assert_int_equal(rd_utf8_valid(N("\xf4\x90\x80\x80")), 0);
	assert_int_equal(rd_utf8_valid(N("\x80")), 0);
	assert_int_equal(rd_utf8_valid(N("\xc2")), 0);
	assert_int_equal(rd_utf8_valid(N("\xc2\xc2\x80")), 0);
	/* The length is respected: a valid prefix of an invalid buffer is valid. */
	assert_int_equal(rd_utf8_valid("ab\xff", 2), 1);
	assert_int_equal(rd_utf8_valid("\xe6\x97\xa5", 2), 0);
}

/* Item 7 of issue 8: names that look like other names. Format and bidirectional
 * characters (Unicode Cf), the line and paragraph separators and controls are refused;
 * a name must be in NFC, so the NFD spelling of a name cannot be a second file. */
static void test_filename_refuses_format_bidi_and_separators(void **state)
{
	/* clang-format off */
	const struct name_case t[] = {
		{ N("n\xe2\x80\xae" "fdp.exe"), RD_FILENAME_REFUSED }, /* U+202E RLO */
		{ N("a\xe2\x80\xad" "b"), RD_FILENAME_REFUSED },       /* U+202D LRO */
		{ N("a\xe2\x80\xab" "b"), RD_FILENAME_REFUSED },       /* U+202B RLE */
		{ N("a\xe2\x81\xa6" "b"), RD_FILENAME_REFUSED },       /* U+2066 LRI */
		{ N("a\xe2\x81\xa9" "b"), RD_FILENAME_REFUSED },       /* U+2069 PDI */
		{ N("a\xe2\x80\x8f" "b"), RD_FILENAME_REFUSED },       /* U+200F RLM */
		{ N("a\xd8\x9c" "b"), RD_FILENAME_REFUSED },           /* U+061C ALM */
		{ N("a\xe2\x80\x8b" "b"), RD_FILENAME_REFUSED },       /* U+200B zero width space */
		{ N("a\xe2\x80\x8c" "b"), RD_FILENAME_REFUSED },       /* U+200C ZWNJ */
		{ N("a\xe2\x80\x8d" "b"), RD_FILENAME_REFUSED },       /* U+200D ZWJ */
		{ N("a\xe2\x81\xa0" "b"), RD_FILENAME_REFUSED },       /* U+2060 word joiner */
		{ N("\xef\xbb\xbf" "a.txt"), RD_FILENAME_REFUSED },    /* U+FEFF BOM */
		{ N("a\xc2\xad" "b"), RD_FILENAME_REFUSED },           /* U+00AD soft hyphen */
		{ N("a\xf3\xa0\x80\x81"), RD_FILENAME_REFUSED },       /* U+E0001 language tag */
		{ N("a\xe2\x80\xa8" "b"), RD_FILENAME_REFUSED },       /* U+2028 line separator */
		{ N("a\xe2\x80\xa9" "b"), RD_FILENAME_REFUSED },       /* U+2029 paragraph sep. */
		{ N("a\xc2\x85" "b"), RD_FILENAME_REFUSED },           /* U+0085 NEL (C1) */
	};
	/* clang-format on */
	size_t i;
	uint16_t got;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		got = rd_filename_check(t[i].s, t[i].n);
		if (got != t[i].want)
			fail_msg("format case %zu: got %u, want %u", i, got, t[i].want);
	}
}

static void test_filename_must_be_nfc(void **state)
{
	/* clang-format off */
	const struct name_case t[] = {
		{ N("caf\xc3\xa9.txt"), 0 },                     /* é precomposed: NFC */
		{ N("cafe\xcc\x81.txt"), RD_FILENAME_REFUSED },    /* e + U+0301: NFD */
		{ N("\xed\x95\x9c"), 0 },                        /* 한 precomposed */
		{ N("\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab"), RD_FILENAME_REFUSED }, /* 한 as jamo */
		{ N("\xe2\x84\xab"), RD_FILENAME_REFUSED },        /* U+212B ANGSTROM SIGN -> U+00C5 */
		{ N("\xc3\x85"), 0 },                            /* U+00C5 */
		{ N("a\xcc\x81\xcc\xa3"), RD_FILENAME_REFUSED },   /* marks in non-canonical order */
		{ N("\xe1\xba\xa1\xcc\x81"), 0 },                /* ạ + U+0301: canonical, NFC */
		{ N("\xcc\x81" "x"), 0 },                        /* a lone mark first is NFC */
		{ N("\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd"), 0 },    /* emoji + skin tone */
	};
	/* clang-format on */
	size_t i;
	uint16_t got;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		got = rd_filename_check(t[i].s, t[i].n);
		if (got != t[i].want)
			fail_msg("nfc case %zu: got %u, want %u", i, got, t[i].want);
	}
}

static void test_filename_explain_names_the_rule(void **state)
{
	char why[128];

	(void)state;
	assert_int_equal(rd_filename_explain(N("n\xe2\x80\xae"
					       "fdp.exe"),
					     why, sizeof(why)),
			 RD_FILENAME_REFUSED);
	assert_non_null(strstr(why, "U+202E"));
	assert_int_equal(rd_filename_explain(N("a\xe2\x80\xa8"), why, sizeof(why)),
			 RD_FILENAME_REFUSED);
	assert_non_null(strstr(why, "U+2028"));
	assert_int_equal(rd_filename_explain(N("cafe\xcc\x81"), why, sizeof(why)),
			 RD_FILENAME_REFUSED);
	assert_non_null(strstr(why, "NFC"));
	assert_int_equal(rd_filename_explain(N("a/b"), why, sizeof(why)), RD_FILENAME_REFUSED);
	assert_non_null(strstr(why, "/"));
	assert_int_equal(rd_filename_explain(N("\xff"), why, sizeof(why)), RD_FILENAME_REFUSED);
	assert_non_null(strstr(why, "UTF-8"));
	assert_int_equal(rd_filename_explain(N("ok.txt"), why, sizeof(why)), 0);
	assert_string_equal(why, "");
	/* a tiny buffer is still terminated; NULL is allowed */
	assert_int_equal(rd_filename_explain(N("a/b"), why, 4), RD_FILENAME_REFUSED);
	assert_int_equal(strlen(why), 3);
	assert_int_equal(rd_filename_explain(N("a/b"), NULL, 0), RD_FILENAME_REFUSED);
}

static void test_name_nfc_normalises(void **state)
{
	char out[RD_FILENAME_MAX + 1];
	char *big = malloc(400);
	size_t i;

	(void)state;
	assert_non_null(big);
	assert_int_equal(rd_name_nfc(N("cafe\xcc\x81.txt"), out, sizeof(out)), 0);
	assert_string_equal(out, "caf\xc3\xa9.txt");
	assert_int_equal(rd_filename_check(out, strlen(out)), 0);
	assert_int_equal(rd_name_nfc(N("\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab"), out, sizeof(out)),
			 0);
	assert_string_equal(out, "\xed\x95\x9c");
	assert_int_equal(rd_name_nfc(N("\xe2\x84\xab"), out, sizeof(out)), 0);
	assert_string_equal(out, "\xc3\x85");
	assert_int_equal(rd_name_nfc(N("plain.txt"), out, sizeof(out)), 0);
	assert_string_equal(out, "plain.txt");
	/* already NFC: unchanged, byte for byte */
	assert_int_equal(rd_name_nfc(N("caf\xc3\xa9"), out, sizeof(out)), 0);
	assert_string_equal(out, "caf\xc3\xa9");
	/* invalid UTF-8 (overlong, surrogate, truncated) is not "normalised" into anything */
	assert_int_equal(rd_name_nfc(N("\xc0\xaf"), out, sizeof(out)), RD_ERR_MALFORMED);
	assert_int_equal(rd_name_nfc(N("\xed\xa0\x80"), out, sizeof(out)), RD_ERR_MALFORMED);
	assert_int_equal(rd_name_nfc(N("a\xe6\x97"), out, sizeof(out)), RD_ERR_MALFORMED);
	/* the result must fit with its NUL */
	assert_int_equal(rd_name_nfc(N("abc"), out, 3), RD_ERR_TOO_BIG);
	assert_int_equal(rd_name_nfc(N("abc"), out, 4), 0);
	/* U+0958 is excluded from composition: its 3 bytes become 3 + 3 in NFC */
	for (i = 0; i + 3 <= 255; i += 3)
		memcpy(big + i, "\xe0\xa5\x98", 3);
	assert_int_equal(rd_name_nfc(big, 255, out, sizeof(out)), RD_ERR_TOO_BIG);
	free(big);
}

static void test_nick_and_room_refuse_format_characters(void **state)
{
	/* clang-format off */
	static const char *const hostile[] = {
		"a\xe2\x80\xae" "b", "a\xe2\x80\x8b" "b", "\xef\xbb\xbf" "ab", "a\xe2\x80\xa8" "b",
		"a\xe2\x80\xa9" "b", "a\xc2\xad" "b",     "cafe\xcc\x81",       "a\xc2\x85",
	};
	/* clang-format on */
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		assert_int_equal(rd_nick_check(hostile[i], strlen(hostile[i])), RD_E_NICK_INVALID);
		assert_int_equal(rd_room_check(hostile[i], strlen(hostile[i])), RD_E_NO_SUCH_ROOM);
	}
}

static void test_name_eq_ignores_ascii_case_only(void **state)
{
	(void)state;
	assert_int_equal(rd_name_eq("Alice", "aLICE"), 1);
	assert_int_equal(rd_name_eq("a.b-c_9", "A.B-C_9"), 1);
	assert_int_equal(rd_name_eq("alice", "alic"), 0);
	assert_int_equal(rd_name_eq("alic", "alice"), 0);
	assert_int_equal(rd_name_eq("", ""), 1);
	assert_int_equal(rd_name_eq("a", ""), 0);
	/* '@' (0x40) and '`' (0x60) differ by the case bit but are not letters. */
	assert_int_equal(rd_name_eq("@", "`"), 0);
	assert_int_equal(rd_name_eq("[", "{"), 0);
	assert_int_equal(rd_name_eq("\xc3\xa9", "\xc3\x89"), 0); /* é vs É: bytes differ */
	assert_int_equal(rd_name_eq(NULL, "a"), 0);
	assert_int_equal(rd_name_eq("a", NULL), 0);
}

struct escape_case {
	const char *s;
	size_t n;
	size_t cap;
	const char *want;
};

static void test_escape_display_literal(void **state)
{
	const struct escape_case t[] = {
		{ N("plain.txt"), 64, "plain.txt" },
		{ N("a\x1b[31mb"), 64, "a\\x1b[31mb" },
		{ N("a\\b"), 64, "a\\x5cb" },
		{ N("tab\tnl\n"), 64, "tab\\x09nl\\x0a" },
		{ N("del\x7f"), 64, "del\\x7f" },
		{ N("a\0b"), 64, "a\\x00b" },
		{ N("na\xc3\xafve"), 64, "na\xc3\xafve" },
		{ N("\xe6\x97\xa5"), 64, "\xe6\x97\xa5" },
		{ N("\xc0\x80"), 64, "\\xc0\\x80" },
		{ N("x\xed\xa0\x80"), 64, "x\\xed\\xa0\\x80" },
		{ N("\xff\xfe"), 64, "\\xff\\xfe" },
		{ N("a\xc3"), 64, "a\\xc3" },
		{ N("\xc2\x9b[2J"), 64, "\\xc2\\x9b[2J" }, /* C1 CSI */
		{ N("\xc2\xa0"), 64, "\xc2\xa0" },
		{ N(""), 64, "" },
		{ NULL, 5, 64, "" },
		/* exactly fits: 9 bytes + NUL */
		{ N("abcdefghi"), 10, "abcdefghi" },
		/* truncation keeps room for "..." */
		{ N("abcdefghij"), 10, "abcdef..." },
		{ N("abcdefghij"), 8, "abcd..." },
		/* an escape is never split */
		{ N("abc\x1bxyz"), 8, "abc..." },
		{ N("ab\x1b"), 7, "ab\\x1b" },
		/* a UTF-8 sequence is never split */
		{ N("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"), 8, "\xe6\x97\xa5..." },
		/* tiny buffers */
		{ N("abcdef"), 4, "..." },
		{ N("abcdef"), 3, ".." },
		{ N("abcdef"), 2, "." },
		{ N("abcdef"), 1, "" },
	};
	char out[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(out, 'Z', sizeof(out));
		assert_ptr_equal(rd_escape_display(t[i].s, t[i].n, out, t[i].cap), out);
		if (strcmp(out, t[i].want) != 0)
			fail_msg("escape case %zu: got \"%s\", want \"%s\"", i, out, t[i].want);
		/* nothing written past cap */
		if (t[i].cap < sizeof(out))
			assert_int_equal(out[t[i].cap], 'Z');
	}
	/* cap 0: nothing may be written at all */
	memset(out, 'Z', sizeof(out));
	assert_ptr_equal(rd_escape_display("abc", 3, out, 0), out);
	assert_int_equal(out[0], 'Z');
}

static void test_escape_display_output_is_safe(void **state)
{
	char in[256], out[1100];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (char)i;
	rd_escape_display(in, sizeof(in), out, sizeof(out));
	/* Every byte value in, yet no control byte, DEL or raw high byte out. */
	/* 32 C0 escapes, 94 printable ASCII copied, backslash and DEL escaped, and all 128
	 * high bytes escaped (in ascending order no two of them form a valid sequence). */
	assert_int_equal(strlen(out), 32 * 4 + 94 + 4 + 4 + 128 * 4);
	for (i = 0; out[i] != '\0'; i++) {
		assert_true((unsigned char)out[i] >= 0x20);
		assert_true((unsigned char)out[i] < 0x7f);
	}
	assert_true(rd_utf8_valid(out, strlen(out)));
}

static void test_format_size(void **state)
{
	static const struct {
		uint64_t n;
		const char *want;
	} t[] = {
		{ 0, "0 B" },
		{ 999, "999 B" },
		{ 1000, "1.0 KB" },
		{ 1234567, "1.2 MB" },
		{ 999999, "1.0 MB" },
		{ 1073741824ULL, "1.1 GB" },
		{ UINT64_MAX, "18.4 EB" },
	};
	char out[32];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		rd_format_size(t[i].n, out, sizeof(out));
		assert_string_equal(out, t[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nick_valid),
		cmocka_unit_test(test_nick_invalid_with_exact_code),
		cmocka_unit_test(test_room_names),
		cmocka_unit_test(test_filename_valid),
		cmocka_unit_test(test_filename_invalid),
		cmocka_unit_test(test_filename_length_limits),
		cmocka_unit_test(test_filename_refuses_format_bidi_and_separators),
		cmocka_unit_test(test_filename_must_be_nfc),
		cmocka_unit_test(test_filename_explain_names_the_rule),
		cmocka_unit_test(test_name_nfc_normalises),
		cmocka_unit_test(test_nick_and_room_refuse_format_characters),
		cmocka_unit_test(test_utf8_valid),
		cmocka_unit_test(test_name_eq_ignores_ascii_case_only),
		cmocka_unit_test(test_escape_display_literal),
		cmocka_unit_test(test_escape_display_output_is_safe),
		cmocka_unit_test(test_format_size),
	};

	return cmocka_run_group_tests(tests, setup_long_names, NULL);
}
