/* rd_codec.h - how an application teaches the codec (rd_msg.h) its own message types.
 *
 * The core codec knows the room protocol (types 0x0001-0x0FFF). An application that
 * links libroomdrop describes each of its messages in the application range
 * (RD_TYPE_APP_FIRST..RD_TYPE_APP_LAST) as a list of field descriptors in wire order, and
 * registers those rows once at startup with rd_msg_register. From then on rd_msg_encode,
 * rd_msg_decode, rd_msg_frame, rd_msg_clear, rd_msg_known and rd_msg_type_name treat its
 * types like the core's, with the same strict encoder and lax decoder (rd_msg.h).
 *
 * The message itself lives in struct rd_msg's application storage: an application
 * defines one struct per message, checks that it fits (RD_MSG_APP_FITS) and reaches it
 * with RD_MSG_APP(m, struct my_msg). Descriptors give member offsets inside that struct:
 *
 *   struct dice_roll { uint8_t count; };
 *   RD_MSG_APP_FITS(struct dice_roll);
 *   static const struct rd_field f_roll[] = {
 *           RD_F_ENUM(dice_roll, count, 1, 10), RD_F_END };
 *   static const struct rd_msg_row rows[] = { { 0x1100, "ROLL", f_roll } };
 *   rc = rd_msg_register(rows, 1);
 *
 * Wire error codes: the core uses 1xx-4xx and 9xx; 500-899 belong to applications, which
 * give their codes' short texts to rd_wire_strerror with rd_wire_err_register.
 *
 * Tables passed to the register functions are not copied deeply: rows, names, texts and
 * field lists must live as long as the process (static const tables).
 */
#ifndef RD_CODEC_H
#define RD_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "rd_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How a field is encoded (PROTOCOL.md section 4). */
enum rd_field_kind {
	RD_FK_END = 0,
	RD_FK_INT,   /* u8/u16/u32/u64 by the member's size; optionally range-checked (enums) */
	RD_FK_CHARS, /* NUL-terminated char array <-> str (u16 length) */
	RD_FK_STR,   /* struct rd_str <-> str (u16 length) */
	RD_FK_BYTES, /* struct rd_bytes <-> bytes (u32 length) */
	RD_FK_RAW,   /* fixed-size byte array (sha256, token) */
	RD_FK_LIST,  /* u32 count, then count entries; member = count, off2 = items pointer */
};

/* Name rules for RD_FK_CHARS, applied by the encoder only (rd_names.h). */
enum rd_name_rule {
	RD_NAME_ANY = 0,      /* length only */
	RD_NAME_NICK = 1,     /* nickname characters; "server" allowed */
	RD_NAME_NICK_NEW = 2, /* a nickname someone asks for: reserved names refused too */
	RD_NAME_ROOM = 3,
	RD_NAME_FILE = 4, /* rd_filename_check */
	/* 5 is the core's own (BROADCAST targets): rd_msg_register refuses it */
	RD_NAME_NONEMPTY = 6, /* any text of 1.. bytes (host names) */
	RD_NAME_MASK = 0x0f,
	RD_NAME_EMPTY_OK = 0x10, /* "" is allowed as well */
};

struct rd_field_list;

/* One field of a message (or of a list entry). Build with the RD_F_* macros. */
struct rd_field {
	uint8_t kind;   /* enum rd_field_kind */
	uint8_t rule;   /* RD_FK_CHARS: enum rd_name_rule; RD_FK_INT: 1 = range-checked */
	uint8_t lo, hi; /* RD_FK_INT range (inclusive) when rule == 1 */
	uint16_t off;   /* member offset inside the message struct / list entry */
	uint16_t off2;  /* RD_FK_LIST: offset of the items pointer */
	uint32_t size;  /* INT/RAW/CHARS: sizeof member; STR/BYTES: length limit */
	const struct rd_field_list *list;
};

/* The entries of a list field: their size and their fields. */
struct rd_field_list {
	size_t entry_size;
	const struct rd_field *fields;
};

/* One message type: its number, its name ("ROLL") and its fields (ending in RD_F_END). */
struct rd_msg_row {
	uint16_t type;
	const char *name;
	const struct rd_field *fields;
};

/* One wire error code and its short text ("file exists"). */
struct rd_err_row {
	uint16_t code;
	const char *text;
};

/* The range of wire error codes that applications may register. */
#define RD_WIRE_ERR_APP_FIRST 500u
#define RD_WIRE_ERR_APP_LAST 899u

/* ---- descriptor macros: one per member, s is the struct tag without `struct` ---------- */
/* clang-format off */
#define RD_F_MSIZE(s, m) sizeof(((struct s *)0)->m)
/* Compile-time check that a member has the expected type (a _Generic with no match does
 * not compile); evaluates to 0. */
#define RD_F_TYPE_IS(s, m, t) (0 * sizeof(_Generic(((struct s *)0)->m, t: 1)))

#define RD_F_INT(s, m) { .kind = RD_FK_INT, .off = offsetof(struct s, m), .size = RD_F_MSIZE(s, m) }
/* a u8 member whose value must lie in l..h */
#define RD_F_ENUM(s, m, l, h)                                                              \
	{ .kind = RD_FK_INT, .rule = 1, .lo = (l), .hi = (h), .off = offsetof(struct s, m),  \
	  .size = RD_F_MSIZE(s, m) + RD_F_TYPE_IS(s, m, uint8_t) }
/* a char array, checked with the name rule r (enum rd_name_rule) */
#define RD_F_CHARS(s, m, r)                                                                \
	{ .kind = RD_FK_CHARS, .rule = (r), .off = offsetof(struct s, m), .size = RD_F_MSIZE(s, m) }
#define RD_F_STR(s, m, max)                                                                \
	{ .kind = RD_FK_STR, .off = offsetof(struct s, m),                                   \
	  .size = (max) + RD_F_TYPE_IS(s, m, struct rd_str) }
#define RD_F_BYTES(s, m, max)                                                              \
	{ .kind = RD_FK_BYTES, .off = offsetof(struct s, m),                                 \
	  .size = (max) + RD_F_TYPE_IS(s, m, struct rd_bytes) }
#define RD_F_RAW(s, m) { .kind = RD_FK_RAW, .off = offsetof(struct s, m), .size = RD_F_MSIZE(s, m) }
/* a u32 count member cnt and an items pointer its (malloc'd by the decoder), entries as ld */
#define RD_F_LIST(s, cnt, its, ld)                                                         \
	{ .kind = RD_FK_LIST, .off = offsetof(struct s, cnt) + RD_F_TYPE_IS(s, cnt, uint32_t), \
	  .off2 = offsetof(struct s, its), .list = &(ld) }
#define RD_F_END { .kind = RD_FK_END }
/* clang-format on */

/* Make the codec know rows[0..n): every type must lie in RD_TYPE_APP_FIRST..LAST, appear
 * once in rows and have fields. Registering a row that is already registered with the
 * same name and fields is harmless (a server and a client in one process may both
 * register the same table). All or nothing: 0, RD_ERR_INVAL (a type outside the
 * application range, a duplicate inside rows, a NULL name or fields, a field the codec
 * does not know), RD_ERR_EXISTS (a type registered with other fields or name),
 * RD_ERR_NOMEM. Thread-safe; lookups on other threads never wait for it. */
int rd_msg_register(const struct rd_msg_row *rows, size_t n);

/* Payload formats that are not messages of their own (an offer's descriptor, an answer's
 * application bytes): the same field lists, encoded and decoded without a type.
 * rd_fields_encode appends the fields of the struct at base to out (strict, as
 * rd_msg_encode; out unchanged on error). rd_fields_decode zeroes base_size bytes at base
 * and decodes p[0..n) into it (lax, as rd_msg_decode; string and byte views point into p,
 * lists are malloc'd); on error nothing stays allocated. rd_fields_clear frees the lists
 * a decode allocated (only call it on a struct filled by rd_fields_decode). */
int rd_fields_encode(const struct rd_field *fields, const void *base, struct rd_buf *out);
int rd_fields_decode(const struct rd_field *fields, const uint8_t *p, size_t n, void *base,
		     size_t base_size);
void rd_fields_clear(const struct rd_field *fields, void *base);

/* Give rd_wire_strerror the texts of rows[0..n): codes in RD_WIRE_ERR_APP_FIRST..LAST only,
 * same rules and errors as rd_msg_register (the same code and text again is harmless). */
int rd_wire_err_register(const struct rd_err_row *rows, size_t n);

#ifdef __cplusplus
}
#endif
#endif
