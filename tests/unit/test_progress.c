/* test_progress.c - the client's progress line (client/progress.c): at any terminal width
 * the numbers are whole and the line fits; a long name is shortened in the middle by
 * display width, on code point boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../client/progress.h"

#define MB (1000u * 1000u)

/* Columns of UTF-8 text: CJK (U+4E00..U+9FFF) 2, other code points 1. */
static int columns(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	int w = 0;

	while (*u) {
		if (*u < 0x80) {
			w++;
			u++;
		} else if ((*u & 0xE0) == 0xC0) {
			w++;
			u += 2;
		} else if ((*u & 0xF0) == 0xE0) {
			unsigned cp = (unsigned)(u[0] & 0x0F) << 12 | (unsigned)(u[1] & 0x3F) << 6 |
				      (u[2] & 0x3F);
			w += cp >= 0x4E00 && cp <= 0x9FFF ? 2 : 1;
			u += 3;
		} else {
			w++;
			u += 4;
		}
	}
	return w;
}

static int valid_utf8(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	int n, i;

	while (*u) {
		n = *u < 0x80           ? 0 :
		    (*u & 0xE0) == 0xC0 ? 1 :
		    (*u & 0xF0) == 0xE0 ? 2 :
		    (*u & 0xF8) == 0xF0 ? 3 :
					  -1;
		if (n < 0)
			return 0;
		for (i = 1; i <= n; i++)
			if ((u[i] & 0xC0) != 0x80)
				return 0;
		u += n + 1;
	}
	return 1;
}

static void line_for(const char *name, int width, char *out, size_t cap)
{
	struct progress p;

	progress_start(&p, "put", name, 30 * MB, 0, 1);
	p.done = 12 * MB;
	progress_format(&p, p.start_ms + 4000, width, out, cap);
}

static int ends_with(const char *s, const char *tail)
{
	size_t a = strlen(s), b = strlen(tail);

	return a >= b && strcmp(s + a - b, tail) == 0;
}

static void test_short_name_is_whole(void **state)
{
	char line[2048];

	(void)state;
	line_for("report.pdf", 80, line, sizeof(line));
	assert_true(strncmp(line, "put report.pdf  [", 17) == 0);
	assert_non_null(strstr(line, " 40%  "));
	assert_true(ends_with(line, " left"));
	assert_true(columns(line) <= 79);
}

static void test_long_name_shortened_in_the_middle_numbers_kept(void **state)
{
	char name[256], line[2048];

	(void)state;
	memset(name, 'x', 200);
	memcpy(name, "start-", 6);
	memcpy(name + 200 - 8, "-end.pdf", 8);
	name[200] = '\0';
	line_for(name, 80, line, sizeof(line));
	assert_true(strncmp(line, "put start-", 10) == 0);
	assert_non_null(strstr(line, "\u2026"));
	assert_non_null(strstr(line, "end.pdf  ["));
	assert_non_null(strstr(line, " 40%  12.0 MB / 30.0 MB  "));
	assert_true(ends_with(line, " left"));
	assert_int_equal(columns(line), 79);
}

static void test_wide_characters_counted_by_display_width(void **state)
{
	char name[256] = "", line[2048];
	int i;

	(void)state;
	for (i = 0; i < 60; i++)
		strcat(name, "\xe5\xad\x97"); /* U+5B57, two columns each */
	strcat(name, ".txt");
	line_for(name, 80, line, sizeof(line));
	assert_true(valid_utf8(line));
	assert_true(columns(line) <= 79);
	assert_non_null(strstr(line, "\u2026"));
	assert_true(ends_with(line, " left"));
}

static void test_narrow_terminal_gives_up_the_bar_not_the_numbers(void **state)
{
	char name[256], line[2048];

	(void)state;
	memset(name, 'n', 100);
	name[100] = '\0';
	line_for(name, 60, line, sizeof(line));
	assert_null(strstr(line, "["));
	assert_non_null(strstr(line, " 40%  12.0 MB / 30.0 MB  "));
	assert_true(ends_with(line, " left"));
	assert_true(columns(line) <= 59);
}

static void test_wider_terminal_shows_more_of_the_name(void **state)
{
	char name[256], narrow[2048], wide[2048];

	(void)state;
	memset(name, 'w', 100);
	name[100] = '\0';
	line_for(name, 80, narrow, sizeof(narrow));
	line_for(name, 200, wide, sizeof(wide));
	assert_non_null(strstr(wide, name)); /* fits whole */
	assert_null(strstr(narrow, name));
	assert_true(columns(wide) <= 199);
	assert_true(columns(narrow) <= 79);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_name_is_whole),
		cmocka_unit_test(test_long_name_shortened_in_the_middle_numbers_kept),
		cmocka_unit_test(test_wide_characters_counted_by_display_width),
		cmocka_unit_test(test_narrow_terminal_gives_up_the_bar_not_the_numbers),
		cmocka_unit_test(test_wider_terminal_shows_more_of_the_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
