/* test_state.c - the server's state database (server/state.c): nickname owners, with a
 * clock the test sets (claims lapse after the expiry), case folding, release, listing,
 * and what survives closing and reopening the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../server/state.h"
#include "rd_err.h"

#define DAY (86400000ull)
#define EXPIRY (90 * DAY)

static const uint8_t K1[RD_TLS_FP_LEN] = { 1, 2, 3 };
static const uint8_t K2[RD_TLS_FP_LEN] = { 9, 8, 7 };

struct fixture {
	char dir[64];
	char path[96];
	struct state *st;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char why[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rd-state-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
	assert_int_equal(state_open(f->path, EXPIRY, &f->st, why, sizeof(why)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	state_close(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* The first key owns a nickname, in any case; another key and a keyless client are
 * refused and told whose it is; the owner may come back. */
static void test_first_key_owns(void **state)
{
	struct fixture *f = *state;
	uint8_t who[RD_TLS_FP_LEN] = { 0 };

	assert_int_equal(state_nick_check(f->st, "alice", K1, 1000, NULL), 0);
	assert_int_equal(state_nick_claim(f->st, "alice", K1, 1000), 0);
	assert_int_equal(state_nick_check(f->st, "ALICE", K2, 2000, who), RD_ERR_EXISTS);
	assert_memory_equal(who, K1, RD_TLS_FP_LEN);
	assert_int_equal(state_nick_check(f->st, "Alice", NULL, 2000, NULL), RD_ERR_EXISTS);
	assert_int_equal(state_nick_claim(f->st, "aLiCe", K2, 2000), RD_ERR_EXISTS);
	assert_int_equal(state_nick_check(f->st, "alice", K1, 3000, NULL), 0);
	assert_int_equal(state_nick_claim(f->st, "Alice", K1, 3000), 0);
	/* nobody owns bob: anyone may have it, with or without a key */
	assert_int_equal(state_nick_check(f->st, "bob", NULL, 3000, NULL), 0);
	assert_int_equal(state_nick_check(f->st, "bob", K2, 3000, NULL), 0);
}

/* A claim lapses once unused for the expiry, counted from its last use. */
static void test_claim_lapses_after_expiry(void **state)
{
	struct fixture *f = *state;
	struct state_owner *v = NULL;
	size_t n = 9;

	assert_int_equal(state_nick_claim(f->st, "alice", K1, 0), 0);
	assert_int_equal(state_nick_claim(f->st, "alice", K1, 10 * DAY), 0); /* used again */
	assert_int_equal(state_nick_check(f->st, "alice", K2, 10 * DAY + EXPIRY, NULL),
			 RD_ERR_EXISTS);
	assert_int_equal(state_nick_list(f->st, 10 * DAY + EXPIRY + 1, &v, &n), 0);
	assert_int_equal(n, 0); /* listed only while live */
	free(v);
	assert_int_equal(state_nick_check(f->st, "alice", K2, 10 * DAY + EXPIRY + 1, NULL), 0);
	assert_int_equal(state_nick_claim(f->st, "alice", K2, 10 * DAY + EXPIRY + 1), 0);
	assert_int_equal(state_nick_check(f->st, "alice", K1, 10 * DAY + EXPIRY + 2, NULL),
			 RD_ERR_EXISTS);
}

/* Release frees whoever owns it; a second release finds nothing. */
static void test_release(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(state_nick_claim(f->st, "alice", K1, 1), 0);
	assert_int_equal(state_nick_release(f->st, "ALICE"), 0);
	assert_int_equal(state_nick_release(f->st, "alice"), RD_ERR_NOT_FOUND);
	assert_int_equal(state_nick_claim(f->st, "alice", K2, 2), 0);
	assert_int_equal(state_nick_check(f->st, "alice", K1, 3, NULL), RD_ERR_EXISTS);
}

/* Claims are kept in the file: a new state on it sees them, listed by nickname. */
static void test_survives_reopen_and_lists(void **state)
{
	struct fixture *f = *state;
	struct state_owner *v = NULL;
	size_t n = 0;
	char why[256];

	assert_int_equal(state_nick_claim(f->st, "zed", K2, 5), 0);
	assert_int_equal(state_nick_claim(f->st, "Alice", K1, 7), 0);
	state_close(f->st);
	f->st = NULL;
	assert_int_equal(state_open(f->path, EXPIRY, &f->st, why, sizeof(why)), 0);
	assert_int_equal(state_nick_check(f->st, "alice", K2, 8, NULL), RD_ERR_EXISTS);
	assert_int_equal(state_nick_list(f->st, 8, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].nick, "Alice"); /* as first claimed */
	assert_memory_equal(v[0].fp, K1, RD_TLS_FP_LEN);
	assert_int_equal(v[0].claimed_ms, 7);
	assert_string_equal(v[1].nick, "zed");
	free(v);
}

/* Expiry 0: claims never lapse. A file that is not a database is refused with a reason. */
static void test_no_expiry_and_bad_file(void **state)
{
	struct fixture *f = *state;
	struct state *st = NULL;
	char why[256] = "", bad[128];
	FILE *fp;

	state_close(f->st);
	assert_int_equal(state_open(f->path, 0, &f->st, why, sizeof(why)), 0);
	assert_int_equal(state_nick_claim(f->st, "alice", K1, 0), 0);
	assert_int_equal(state_nick_check(f->st, "alice", K2, 100000 * DAY, NULL), RD_ERR_EXISTS);
	snprintf(bad, sizeof(bad), "%s/garbage.db", f->dir);
	assert_non_null(fp = fopen(bad, "w"));
	for (int i = 0; i < 200; i++)
		fputs("this is not an SQLite database at all. ", fp);
	fclose(fp);
	assert_int_equal(state_open(bad, EXPIRY, &st, why, sizeof(why)), RD_ERR_SYSTEM);
	assert_null(st);
	assert_true(why[0] != '\0');
}

/* Operators per room (any case of its name); the owner of a nickname is looked up. */
static void test_operators_and_owner_lookup(void **state)
{
	struct fixture *f = *state;
	uint8_t fp[RD_TLS_FP_LEN];

	assert_int_equal(state_op_is(f->st, "general", K1), 0);
	assert_int_equal(state_op_set(f->st, "General", K1, 1, 5), 0);
	assert_int_equal(state_op_set(f->st, "general", K1, 1, 6), RD_ERR_EXISTS);
	assert_int_equal(state_op_is(f->st, "GENERAL", K1), 1);
	assert_int_equal(state_op_is(f->st, "general", K2), 0);
	assert_int_equal(state_op_is(f->st, "random", K1), 0);
	{
		/* the list, by room (folded), for the window */
		struct state_op *ops = NULL;
		size_t n = 9;

		assert_int_equal(state_op_set(f->st, "Random", K2, 1, 6), 0);
		assert_int_equal(state_op_list(f->st, &ops, &n), 0);
		assert_int_equal(n, 2);
		assert_string_equal(ops[0].room, "general");
		assert_memory_equal(ops[0].fp, K1, RD_TLS_FP_LEN);
		assert_string_equal(ops[1].room, "random");
		assert_memory_equal(ops[1].fp, K2, RD_TLS_FP_LEN);
		free(ops);
		assert_int_equal(state_op_set(f->st, "random", K2, 0, 6), 0);
	}
	assert_int_equal(state_op_set(f->st, "general", K1, 0, 7), 0);
	assert_int_equal(state_op_set(f->st, "general", K1, 0, 8), RD_ERR_NOT_FOUND);
	assert_int_equal(state_op_is(f->st, "general", K1), 0);
	assert_int_equal(state_nick_owner(f->st, "alice", 9, fp), RD_ERR_NOT_FOUND);
	assert_int_equal(state_nick_claim(f->st, "alice", K2, 9), 0);
	assert_int_equal(state_nick_owner(f->st, "ALICE", 10, fp), 0);
	assert_memory_equal(fp, K2, RD_TLS_FP_LEN);
}

/* Admitted keys, and invitations: single use unless said otherwise, expiring, revocable,
 * found by their secret only. */
static void test_admission_and_invitations(void **state)
{
	struct fixture *f = *state;
	uint8_t s1[RD_INVITE_SECRET], s2[RD_INVITE_SECRET], s3[RD_INVITE_SECRET], wrong[16] = { 0 };
	char id1[STATE_INVITE_ID_BUF], id2[STATE_INVITE_ID_BUF], id3[STATE_INVITE_ID_BUF];
	static const uint8_t K3[RD_TLS_FP_LEN] = { 5, 5, 5 };

	assert_int_equal(state_key_admitted(f->st, K1), 0);
	assert_int_equal(state_key_set(f->st, K1, 1, 1), 0);
	assert_int_equal(state_key_set(f->st, K1, 1, 2), RD_ERR_EXISTS);
	assert_int_equal(state_key_admitted(f->st, K1), 1);
	assert_int_equal(state_key_set(f->st, K1, 0, 3), 0);
	assert_int_equal(state_key_set(f->st, K1, 0, 4), RD_ERR_NOT_FOUND);
	assert_int_equal(state_key_admitted(f->st, K1), 0);

	assert_int_equal(state_invite_new(f->st, 1, 1000, 10, s1, id1), 0);
	assert_int_equal(strlen(id1), 8);
	assert_int_equal(state_invite_use(f->st, wrong, sizeof(wrong), K1, 20), RD_ERR_NOT_FOUND);
	assert_int_equal(state_invite_use(f->st, s1, sizeof(s1), K1, 20), 0);
	assert_int_equal(state_key_admitted(f->st, K1), 1);
	assert_int_equal(state_invite_use(f->st, s1, sizeof(s1), K2, 21), RD_ERR_NOT_FOUND);
	assert_int_equal(state_key_admitted(f->st, K2), 0);
	/* two uses; then expiry */
	assert_int_equal(state_invite_new(f->st, 2, 1000, 10, s2, id2), 0);
	assert_memory_not_equal(s1, s2, sizeof(s1));
	assert_int_equal(state_invite_use(f->st, s2, sizeof(s2), K2, 30), 0);
	assert_int_equal(state_invite_use(f->st, s2, sizeof(s2), K3, 1000), RD_ERR_NOT_FOUND);
	assert_int_equal(state_key_admitted(f->st, K3), 0);
	/* revoked before use */
	assert_int_equal(state_invite_new(f->st, 1, 5000, 10, s3, id3), 0);
	assert_int_equal(state_invite_revoke(f->st, id3), 0);
	assert_int_equal(state_invite_revoke(f->st, id3), RD_ERR_NOT_FOUND);
	assert_int_equal(state_invite_use(f->st, s3, sizeof(s3), K3, 40), RD_ERR_NOT_FOUND);
	assert_int_equal(state_key_admitted(f->st, K3), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_first_key_owns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_lapses_after_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_survives_reopen_and_lists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_expiry_and_bad_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_operators_and_owner_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_admission_and_invitations, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
