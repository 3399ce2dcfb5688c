/* test_codec.c - an application's message rows and error texts (rd_codec.h): what the codec
 * does with a type before and after it is registered, and which tables it refuses.
 * Registrations last for the process: each test uses its own type numbers.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rd_buf.h"
#include "rd_codec.h"
#include "rd_err.h"
#include "rd_frame.h"
#include "rd_msg.h"
#include "rd_proto.h"

/* A demo application: one message with a field of every kind, one with a list. */
struct demo_msg {
	uint32_t id;
	uint8_t colour; /* 1..3 */
	char room[RD_ROOM_BUF];
	struct rd_str note;
	struct rd_bytes blob;
	uint8_t tag[4];
};
struct demo_entry {
	char nick[RD_NICK_BUF];
	uint64_t score;
};
struct demo_board {
	uint32_t count;
	struct demo_entry *items;
};
RD_MSG_APP_FITS(struct demo_msg);
RD_MSG_APP_FITS(struct demo_board);

/* clang-format off */
static const struct rd_field f_demo[] = {
	RD_F_INT(demo_msg, id), RD_F_ENUM(demo_msg, colour, 1, 3),
	RD_F_CHARS(demo_msg, room, RD_NAME_ROOM), RD_F_STR(demo_msg, note, 100),
	RD_F_BYTES(demo_msg, blob, 1000), RD_F_RAW(demo_msg, tag), RD_F_END
};
static const struct rd_field f_entry[] = {
	RD_F_CHARS(demo_entry, nick, RD_NAME_NICK), RD_F_INT(demo_entry, score), RD_F_END
};
static const struct rd_field_list l_entry = { sizeof(struct demo_entry), f_entry };
static const struct rd_field f_board[] = { RD_F_LIST(demo_board, count, items, l_entry), RD_F_END };
static const struct rd_field f_other[] = { RD_F_INT(demo_msg, id), RD_F_END };
/* clang-format on */

#define DEMO 0x1200u
#define BOARD 0x1201u

static const struct rd_msg_row demo_rows[] = {
	{ DEMO, "DEMO", f_demo },
	{ BOARD, "BOARD", f_board },
};

static void encode(const struct rd_msg *m, struct rd_buf *b)
{
	rd_buf_init(b, 0);
	assert_int_equal(rd_msg_encode(m, b), 0);
}

static void test_unknown_before_registration(void **state)
{
	uint8_t payload[4] = { 0, 0, 0, 7 };
	struct rd_msg m;
	struct rd_buf b;

	(void)state;
	assert_false(rd_msg_known(0x1300));
	assert_null(rd_msg_type_name(0x1300));
	assert_int_equal(rd_msg_decode(0x1300, payload, sizeof(payload), &m), RD_ERR_UNKNOWN_TYPE);
	rd_msg_init(&m, 0x1300);
	rd_buf_init(&b, 0);
	assert_int_equal(rd_msg_encode(&m, &b), RD_ERR_UNKNOWN_TYPE);
	assert_int_equal(b.len, 0);
	rd_buf_free(&b);
	assert_string_equal(rd_wire_strerror(850), "unknown error");
}

static void test_registered_type_round_trips(void **state)
{
	static const uint8_t blob[3] = { 0xde, 0xad, 0x00 };
	struct demo_msg *d;
	struct rd_msg m, got;
	struct rd_buf b, fr;
	struct rd_frame_hdr h;

	(void)state;
	assert_false(rd_msg_known(DEMO));
	assert_int_equal(rd_msg_register(demo_rows, 2), 0);
	assert_true(rd_msg_known(DEMO));
	assert_true(rd_msg_known(BOARD));
	assert_string_equal(rd_msg_type_name(DEMO), "DEMO");
	assert_string_equal(rd_msg_type_name(BOARD), "BOARD");

	rd_msg_init(&m, DEMO);
	d = RD_MSG_APP(&m, struct demo_msg);
	d->id = 0x01020304;
	d->colour = 2;
	strcpy(d->room, "lobby");
	d->note = rd_str_c("hi");
	d->blob = (struct rd_bytes){ blob, sizeof(blob) };
	memcpy(d->tag, "ABCD", 4);
	encode(&m, &b);
	/* u32 id, u8 colour, str room, str note, bytes blob, raw tag */
	static const uint8_t want[] = { 1,   2,   3, 4, 2, 0, 5,    'l',  'o', 'b', 'b', 'y', 0,  2,
					'h', 'i', 0, 0, 0, 3, 0xde, 0xad, 0,   'A', 'B', 'C', 'D' };
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));

	assert_int_equal(rd_msg_decode(DEMO, b.data, b.len, &got), 0);
	d = RD_MSG_APP(&got, struct demo_msg);
	assert_int_equal(got.type, DEMO);
	assert_int_equal(d->id, 0x01020304);
	assert_int_equal(d->colour, 2);
	assert_string_equal(d->room, "lobby");
	assert_int_equal(d->note.n, 2);
	assert_memory_equal(d->note.p, "hi", 2);
	assert_int_equal(d->blob.n, 3);
	assert_memory_equal(d->blob.p, blob, 3);
	assert_memory_equal(d->tag, "ABCD", 4);
	rd_msg_clear(&got);

	/* a whole frame carries the type in its header */
	rd_buf_init(&fr, 0);
	assert_int_equal(rd_msg_frame(&fr, &m, 9, 0), 0);
	assert_int_equal(rd_frame_hdr_decode(fr.data, fr.len, RD_MAX_PAYLOAD_DEFAULT, &h), 0);
	assert_int_equal(h.type, DEMO);
	assert_int_equal(h.len, sizeof(want));
	rd_buf_free(&fr);
	rd_buf_free(&b);
}

/* The strict encoder and the lax decoder treat an application's fields like the core's. */
static void test_registered_fields_keep_their_rules(void **state)
{
	struct rd_msg m;
	struct rd_buf b;
	struct demo_msg *d;

	(void)state;
	assert_int_equal(rd_msg_register(demo_rows, 2), 0);
	rd_msg_init(&m, DEMO);
	d = RD_MSG_APP(&m, struct demo_msg);
	d->colour = 4; /* out of 1..3 */
	strcpy(d->room, "lobby");
	rd_buf_init(&b, 0);
	assert_int_equal(rd_msg_encode(&m, &b), RD_ERR_INVAL);
	d->colour = 1;
	strcpy(d->room, "no spaces"); /* not a room name */
	assert_int_equal(rd_msg_encode(&m, &b), RD_ERR_INVAL);
	assert_int_equal(b.len, 0);
	rd_buf_free(&b);
	/* a field that runs past the payload */
	static const uint8_t cut[] = { 1, 2, 3, 4, 2, 0, 9, 'l' };
	assert_int_equal(rd_msg_decode(DEMO, cut, sizeof(cut), &m), RD_ERR_MALFORMED);
}

/* Decoded list items are malloc'd; rd_msg_clear frees them for an application's row as
 * for the core's (a leak here fails under SANITIZER=address). */
static void test_clear_frees_list_items_of_registered_rows(void **state)
{
	struct demo_entry e[2] = { { "ann", 10 }, { "bob", 20 } };
	struct rd_msg m, got;
	struct demo_board *bd;
	struct rd_buf b;

	(void)state;
	assert_int_equal(rd_msg_register(demo_rows, 2), 0);
	rd_msg_init(&m, BOARD);
	bd = RD_MSG_APP(&m, struct demo_board);
	bd->count = 2;
	bd->items = e;
	encode(&m, &b);
	assert_int_equal(rd_msg_decode(BOARD, b.data, b.len, &got), 0);
	bd = RD_MSG_APP(&got, struct demo_board);
	assert_int_equal(bd->count, 2);
	assert_non_null(bd->items);
	assert_string_equal(bd->items[1].nick, "bob");
	assert_int_equal(bd->items[1].score, 20);
	rd_msg_clear(&got);
	assert_int_equal(got.type, 0);
	/* a list the caller owns is never freed by rd_msg_clear */
	rd_msg_clear(&m);
	assert_string_equal(e[0].nick, "ann");
	rd_buf_free(&b);
}

static void test_refuses_types_outside_the_application_range(void **state)
{
	const struct rd_msg_row core[] = { { RD_MSG_SAY, "SAY", f_other } };
	const struct rd_msg_row last_core[] = { { RD_TYPE_CORE_LAST, "X", f_other } };
	const struct rd_msg_row reserved[] = { { 0x8000, "X", f_other } };
	/* all or nothing: the good row of a refused table is not registered either */
	const struct rd_msg_row mixed[] = { { 0x1210, "GOOD", f_other },
					    { 0x0001, "BAD", f_other } };

	(void)state;
	assert_int_equal(rd_msg_register(core, 1), RD_ERR_INVAL);
	assert_int_equal(rd_msg_register(last_core, 1), RD_ERR_INVAL);
	assert_int_equal(rd_msg_register(reserved, 1), RD_ERR_INVAL);
	assert_int_equal(rd_msg_register(mixed, 2), RD_ERR_INVAL);
	assert_false(rd_msg_known(0x1210));
	assert_false(rd_msg_known(0x8000));
	assert_string_equal(rd_msg_type_name(RD_MSG_SAY), "SAY");
}

static void test_refuses_a_clash_and_accepts_the_same_table_again(void **state)
{
	const struct rd_msg_row first[] = { { 0x1220, "ONE", f_other } };
	const struct rd_msg_row other_fields[] = { { 0x1220, "ONE", f_demo } };
	const struct rd_msg_row other_name[] = { { 0x1220, "TWO", f_other } };
	const struct rd_msg_row twice[] = { { 0x1221, "A", f_other }, { 0x1221, "A", f_other } };
	/* a copy of the name in other memory is the same name */
	char name[4] = "ONE";
	const struct rd_msg_row same[] = { { 0x1220, name, f_other } };

	(void)state;
	assert_int_equal(rd_msg_register(first, 1), 0);
	assert_int_equal(rd_msg_register(first, 1), 0);
	assert_int_equal(rd_msg_register(same, 1), 0);
	assert_int_equal(rd_msg_register(other_fields, 1), RD_ERR_EXISTS);
	assert_int_equal(rd_msg_register(other_name, 1), RD_ERR_EXISTS);
	assert_string_equal(rd_msg_type_name(0x1220), "ONE");
	assert_int_equal(rd_msg_register(twice, 2), RD_ERR_INVAL);
	assert_false(rd_msg_known(0x1221));
}

static void test_refuses_malformed_rows(void **state)
{
	static const struct rd_field bad_kind[] = { { .kind = 99 }, RD_F_END };
	/* the BROADCAST target rule is the core's alone */
	static const struct rd_field bad_rule[] = { { .kind = RD_FK_CHARS, .rule = 5, .size = 8 },
						    RD_F_END };
	static const struct rd_field bad_list[] = { { .kind = RD_FK_LIST }, RD_F_END };
	const struct rd_msg_row rows[][1] = {
		{ { 0x1230, "K", bad_kind } }, { { 0x1231, "R", bad_rule } },
		{ { 0x1232, "L", bad_list } }, { { 0x1233, NULL, f_other } },
		{ { 0x1234, "F", NULL } },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		assert_int_equal(rd_msg_register(rows[i], 1), RD_ERR_INVAL);
		assert_false(rd_msg_known(rows[i][0].type));
	}
	assert_int_equal(rd_msg_register(NULL, 1), RD_ERR_INVAL);
	assert_int_equal(rd_msg_register(NULL, 0), 0);
}

static void test_error_texts_are_registered_in_the_application_range(void **state)
{
	const struct rd_err_row mine[] = { { 800, "dice fell off the table" }, { 801, "no dice" } };
	const struct rd_err_row clash[] = { { 800, "something else" } };
	const struct rd_err_row core[] = { { RD_E_NICK_TAKEN, "mine now" } };
	const struct rd_err_row server[] = { { RD_E_INTERNAL, "mine now" } };
	const struct rd_err_row below[] = { { 499, "x" } };
	const struct rd_err_row mixed[] = { { 810, "good" }, { 900, "bad" } };

	(void)state;
	assert_string_equal(rd_wire_strerror(800), "unknown error");
	assert_int_equal(rd_wire_err_register(mine, 2), 0);
	assert_int_equal(rd_wire_err_register(mine, 2), 0);
	assert_string_equal(rd_wire_strerror(800), "dice fell off the table");
	assert_string_equal(rd_wire_strerror(801), "no dice");
	assert_int_equal(rd_wire_err_register(clash, 1), RD_ERR_EXISTS);
	assert_string_equal(rd_wire_strerror(800), "dice fell off the table");
	assert_int_equal(rd_wire_err_register(core, 1), RD_ERR_INVAL);
	assert_int_equal(rd_wire_err_register(server, 1), RD_ERR_INVAL);
	assert_int_equal(rd_wire_err_register(below, 1), RD_ERR_INVAL);
	assert_int_equal(rd_wire_err_register(mixed, 2), RD_ERR_INVAL);
	assert_string_equal(rd_wire_strerror(810), "unknown error");
	assert_string_equal(rd_wire_strerror(RD_E_NICK_TAKEN), "nickname taken");
	assert_string_equal(rd_wire_strerror(RD_E_INTERNAL), "internal server error");
}

/* Readers on other threads look types up while registrations publish new tables: a type
 * registered before they started is always found (run under SANITIZER=thread for races). */
#define READERS 3
#define RACE_ROWS 40

static atomic_int race_stop;

static void *reader(void *arg)
{
	unsigned long misses = 0;

	(void)arg;
	while (!atomic_load(&race_stop)) {
		if (!rd_msg_known(DEMO) || !rd_msg_known(RD_MSG_HELLO))
			misses++;
		(void)rd_msg_type_name(0x1240 + (uint16_t)(misses % RACE_ROWS));
	}
	return (void *)misses;
}

static void test_lookups_run_while_others_register(void **state)
{
	static struct rd_msg_row rows[RACE_ROWS];
	pthread_t th[READERS];
	void *misses;
	int i;

	(void)state;
	assert_int_equal(rd_msg_register(demo_rows, 2), 0);
	atomic_store(&race_stop, 0);
	for (i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, NULL), 0);
	for (i = 0; i < RACE_ROWS; i++) {
		rows[i] = (struct rd_msg_row){ (uint16_t)(0x1240 + i), "RACE", f_other };
		assert_int_equal(rd_msg_register(&rows[i], 1), 0);
	}
	atomic_store(&race_stop, 1);
	for (i = 0; i < READERS; i++) {
		assert_int_equal(pthread_join(th[i], &misses), 0);
		assert_null(misses);
	}
	for (i = 0; i < RACE_ROWS; i++)
		assert_true(rd_msg_known((uint16_t)(0x1240 + i)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_before_registration),
		cmocka_unit_test(test_registered_type_round_trips),
		cmocka_unit_test(test_registered_fields_keep_their_rules),
		cmocka_unit_test(test_clear_frees_list_items_of_registered_rows),
		cmocka_unit_test(test_refuses_types_outside_the_application_range),
		cmocka_unit_test(test_refuses_a_clash_and_accepts_the_same_table_again),
		cmocka_unit_test(test_refuses_malformed_rows),
		cmocka_unit_test(test_error_texts_are_registered_in_the_application_range),
		cmocka_unit_test(test_lookups_run_while_others_register),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
