/* test_conf.c - the server's configuration file (server/conf.c): a good file read into
 * settings and room sections, and each kind of bad file refused with its line and why. */
#include <getopt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../server/conf.h"
#include "rd_err.h"

/* base32 text form of the bytes 00 01 02 ... 1f (rd_tls.h) */
#define FP_A "AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT-CQKR-MFYY-DENB-WHA5-DYPQ"
/* the same key, hex */
#define FP_A_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define FP_B "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

static const struct option options[] = {
	{ "listen", required_argument, NULL, 1 }, { "rooms", required_argument, NULL, 2 },
	{ "headless", no_argument, NULL, 3 },     { "config", required_argument, NULL, 4 },
	{ "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 }
};

static char g_path[64];

static int setup(void **state)
{
	(void)state;
	snprintf(g_path, sizeof(g_path), "/tmp/rd-conf-XXXXXX");
	int fd = mkstemp(g_path);
	assert_true(fd >= 0);
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(g_path);
	return 0;
}

static void write_file(const char *text)
{
	FILE *f = fopen(g_path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Load text expecting a refusal: returns the line, why into why. */
static int refused(const char *text, char *why, size_t cap)
{
	struct conf *c = (struct conf *)1;
	int line = -1;

	write_file(text);
	assert_int_equal(conf_load(g_path, options, &c, &line, why, cap), RD_ERR_INVAL);
	assert_null(c);
	return line;
}

static void test_good_file(void **state)
{
	struct conf *c = NULL;
	const struct conf_room *r;
	char why[256];
	int line = -1;

	(void)state;
	write_file("# a team's server\n"
		   "[server]\n"
		   "listen = 127.0.0.1:0\n"
		   "; comments of both kinds\n"
		   "rooms = general,team\n"
		   "headless = yes\n"
		   "\n"
		   "[room team]\n"
		   "operator = " FP_A "\n"
		   "allow = " FP_A_HEX "\n"
		   "allow = " FP_B "\n"
		   "allow = " FP_B "\n"
		   "key-file = /etc/roomdrop/team.key\n"
		   "[room General]\n"
		   "operator = " FP_B "\n"
		   "[operators]\n"
		   "random = " FP_A ", " FP_B "\n"
		   "team = " FP_B "\n");
	assert_int_equal(conf_load(g_path, options, &c, &line, why, sizeof(why)), 0);
	assert_non_null(c);
	assert_int_equal(line, 0);
	assert_int_equal(c->nopts, 3);
	assert_string_equal(c->opts[0].name, "listen");
	assert_string_equal(c->opts[0].value, "127.0.0.1:0");
	assert_int_equal(c->opts[0].line, 3);
	assert_string_equal(c->opts[1].value, "general,team");
	assert_int_equal(c->opts[1].line, 5);
	assert_string_equal(c->opts[2].name, "headless");
	assert_string_equal(c->opts[2].value, "1"); /* a flag: yes -> "1" */
	assert_int_equal(c->nrooms, 3);
	assert_non_null(r = conf_room_find(c, "TEAM"));
	assert_int_equal(r->line, 9);       /* its first setting's line */
	assert_int_equal(r->noperators, 2); /* its own, and [operators] team = (line 18) */
	assert_int_equal(r->operators[0][0], 0x00);
	assert_int_equal(r->operators[0][31], 0x1f);
	assert_int_equal(r->nallow, 2); /* the same key in hex is the same key; twice is once */
	assert_int_equal(r->allow[1][0], 0xff);
	assert_string_equal(r->key_file, "/etc/roomdrop/team.key");
	assert_non_null(r = conf_room_find(c, "general"));
	assert_int_equal(r->noperators, 1);
	assert_null(r->key_file);
	assert_non_null(r = conf_room_find(c, "random")); /* [operators]: a list per room */
	assert_int_equal(r->noperators, 2);
	assert_int_equal(r->operators[1][0], 0xff);
	assert_int_equal(r->line, 17);
	assert_int_equal(conf_room_find(c, "team")->noperators, 2); /* both sections add up */
	conf_free(c);
}

static void test_flag_no(void **state)
{
	struct conf *c = NULL;
	char why[256];
	int line;

	(void)state;
	write_file("[server]\nheadless = off\n");
	assert_int_equal(conf_load(g_path, options, &c, &line, why, sizeof(why)), 0);
	assert_string_equal(c->opts[0].value, "0");
	conf_free(c);
}

static void test_syntax_error_line(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(refused("[server]\nlisten = 127.0.0.1:0\n\nthis is not a setting\n", why,
				 sizeof(why)),
			 4);
	assert_non_null(strstr(why, "expected [section]"));
	assert_int_equal(refused("[server\nlisten = x\n", why, sizeof(why)), 1);
}

static void test_unknown_setting(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(refused("[server]\nrooms = a\nmax-cliens = 5\n", why, sizeof(why)), 3);
	assert_non_null(strstr(why, "unknown setting 'max-cliens'"));
	assert_int_equal(refused("[server]\nconfig = other.ini\n", why, sizeof(why)), 2);
	assert_non_null(strstr(why, "command line only"));
	assert_int_equal(refused("[server]\nhelp = yes\n", why, sizeof(why)), 2);
	assert_int_equal(refused("[room a]\nowner = " FP_B "\n", why, sizeof(why)), 2);
	assert_non_null(strstr(why, "unknown setting 'owner' in [room a]"));
}

static void test_unknown_section(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(refused("[server]\n\n[rooms]\nx = 1\n", why, sizeof(why)), 4);
	assert_non_null(strstr(why, "unknown section [rooms]"));
	assert_int_equal(refused("rooms = a\n", why, sizeof(why)), 1);
	assert_non_null(strstr(why, "before any section"));
}

static void test_bad_values(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(refused("[server]\nheadless = maybe\n", why, sizeof(why)), 2);
	assert_non_null(strstr(why, "yes or no"));
	assert_int_equal(refused("[server]\nrooms =\n", why, sizeof(why)), 2);
	assert_non_null(strstr(why, "needs a value"));
	assert_int_equal(refused("[room a]\noperator = " FP_A "\nallow = 12\n", why, sizeof(why)),
			 3);
	assert_non_null(strstr(why, "wants a key fingerprint"));
	assert_int_equal(refused("[room bad/name]\nallow = " FP_A "\n", why, sizeof(why)), 2);
	assert_non_null(strstr(why, "invalid room name"));
	assert_int_equal(refused("[operators]\na = " FP_A ",nope\n", why, sizeof(why)), 2);
	assert_non_null(strstr(why, "'operators' wants a key fingerprint"));
	assert_int_equal(refused("[room a]\nkey-file = k1\nkey-file = k2\n", why, sizeof(why)), 3);
	assert_non_null(strstr(why, "key-file already (line 2)"));
}

/* The first error is the one reported, whichever kind comes first. */
static void test_first_error_wins(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(refused("[server]\nnope = 1\ngarbage\n", why, sizeof(why)), 2);
	assert_int_equal(refused("[server]\ngarbage\nnope = 1\n", why, sizeof(why)), 2);
	assert_non_null(strstr(why, "expected [section]"));
}

static void test_long_line(void **state)
{
	char text[600], why[256];

	(void)state;
	snprintf(text, sizeof(text), "[server]\nrooms = ");
	memset(text + strlen(text), 'a', 400);
	snprintf(text + strlen("[server]\nrooms = ") + 400, 32, "\nnope = 1\n");
	assert_int_equal(refused(text, why, sizeof(why)), 2);
	assert_non_null(strstr(why, "longer than"));
}

static void test_missing_file(void **state)
{
	struct conf *c = NULL;
	char why[256];
	int line = -1;

	(void)state;
	assert_int_equal(conf_load("/nonexistent/rd.ini", options, &c, &line, why, sizeof(why)),
			 RD_ERR_SYSTEM);
	assert_null(c);
	assert_int_equal(line, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flag_no, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax_error_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_setting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_section, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_error_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_line, setup, teardown),
		cmocka_unit_test(test_missing_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
