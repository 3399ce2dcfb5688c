/* test_protocol_doc.c - PROTOCOL.md against the code, so the document cannot drift.
 *
 * PROTOCOL.md (path from $RD_PROTOCOL_MD, default "PROTOCOL.md" in the working directory:
 * the tests run from the repo root) carries one example frame per message, each tagged
 *
 *     <!-- example: NAME -->
 *     ```hex
 *     52 44 01 00 ...   # comment
 *     ```
 *
 * The bytes there were computed by hand from the document's own rules. This file holds,
 * for every NAME, the same message built field by field from values typed here, with the
 * same request id. Each is encoded with rd_msg_frame (no compression) and compared byte
 * for byte to the document; the document's bytes are also decoded (rd_frame_hdr_decode +
 * rd_msg_decode) and a few fields checked. An example with no entry here, an entry with
 * no example there, or a type the codec knows with no example is a failure.
 *
 * The message type table ("<!-- table: types -->") and the error code table
 * ("<!-- table: errors -->") are parsed too and checked, number and name, both ways,
 * against rd_proto.h (rd_msg_type_name and the RD_E_* enum).
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "files/rdf_proto.h"
#include "rd_buf.h"
#include "rd_err.h"
#include "rd_frame.h"
#include "rd_msg.h"
#include "rd_proto.h"
#include "rd_tls.h"

#define MAX_EXAMPLES 256
#define MAX_FRAME 4096
#define NAME_MAX_LEN 64

/* ---- the document ------------------------------------------------------------------------ */

struct doc_example {
	char name[NAME_MAX_LEN];
	int line; /* line of the tag, for messages */
	uint8_t bytes[MAX_FRAME];
	size_t n;
};

static char *doc; /* whole file, NUL-terminated */
static struct doc_example *examples;
static size_t nexamples;
static int parse_errors; /* syntax problems found while reading the examples */
static char doc_path[512];

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long len;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)len + 1)) != NULL) {
		if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
			free(buf);
			buf = NULL;
		} else {
			buf[len] = '\0';
		}
	}
	fclose(f);
	return buf;
}

/* Next line of the document: *line points at it, returns its length (no '\n'), or -1 at
 * the end. *pos advances past the line. */
static long next_line(size_t *pos, const char **line)
{
	const char *s = doc + *pos, *e;

	if (*s == '\0')
		return -1;
	e = strchr(s, '\n');
	if (!e)
		e = s + strlen(s);
	*line = s;
	*pos = (size_t)(e - doc) + (*e == '\n');
	return (long)(e - s);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Parse one line of a hex block into ex; text after '#' is a comment. 0, or -1 with a
 * message printed. */
static int parse_hex_line(const char *s, size_t n, int lineno, struct doc_example *ex)
{
	size_t i = 0;

	while (i < n && s[i] != '#') {
		if (isspace((unsigned char)s[i])) {
			i++;
			continue;
		}
		if (i + 1 >= n || hexval(s[i]) < 0 || hexval(s[i + 1]) < 0 ||
		    (i + 2 < n && !isspace((unsigned char)s[i + 2]) && s[i + 2] != '#')) {
			print_error("%s:%d: example '%s': not a byte pair: '%.*s'\n", doc_path,
				    lineno, ex->name, (int)(n - i), s + i);
			return -1;
		}
		if (ex->n >= sizeof(ex->bytes)) {
			print_error("%s:%d: example '%s' too long\n", doc_path, lineno, ex->name);
			return -1;
		}
		ex->bytes[ex->n++] = (uint8_t)(hexval(s[i]) << 4 | hexval(s[i + 1]));
		i += 2;
	}
	return 0;
}

static void parse_examples(void)
{
	static const char tag[] = "<!-- example: ";
	size_t pos = 0;
	const char *line;
	long len;
	int lineno = 0;

	while ((len = next_line(&pos, &line)) >= 0) {
		struct doc_example *ex;
		const char *name, *end;

		lineno++;
		if ((size_t)len < sizeof(tag) - 1 || strncmp(line, tag, sizeof(tag) - 1) != 0)
			continue;
		name = line + sizeof(tag) - 1;
		end = strstr(name, " -->");
		if (!end || end > line + len || end == name || end - name >= NAME_MAX_LEN) {
			print_error("%s:%d: bad example tag\n", doc_path, lineno);
			parse_errors++;
			continue;
		}
		if (nexamples == MAX_EXAMPLES) {
			print_error("%s:%d: more than %d examples\n", doc_path, lineno,
				    MAX_EXAMPLES);
			parse_errors++;
			return;
		}
		ex = &examples[nexamples];
		memset(ex, 0, sizeof(*ex));
		memcpy(ex->name, name, (size_t)(end - name));
		ex->line = lineno;
		for (size_t i = 0; i < nexamples; i++) {
			if (strcmp(examples[i].name, ex->name) == 0) {
				print_error("%s:%d: example '%s' given twice (line %d)\n", doc_path,
					    lineno, ex->name, examples[i].line);
				parse_errors++;
			}
		}
		/* the tag is followed directly by ```hex */
		if ((len = next_line(&pos, &line)) < 0 || (lineno++, len < 6) ||
		    strncmp(line, "```hex", 6) != 0) {
			print_error("%s:%d: example '%s' is not followed by a ```hex block\n",
				    doc_path, lineno, ex->name);
			parse_errors++;
			continue;
		}
		for (;;) {
			if ((len = next_line(&pos, &line)) < 0) {
				print_error("%s: example '%s': hex block never closed\n", doc_path,
					    ex->name);
				parse_errors++;
				return;
			}
			lineno++;
			if (len >= 3 && strncmp(line, "```", 3) == 0)
				break;
			if (parse_hex_line(line, (size_t)len, lineno, ex) != 0) {
				parse_errors++;
				break;
			}
		}
		nexamples++;
	}
}

static const struct doc_example *find_example(const char *name)
{
	for (size_t i = 0; i < nexamples; i++)
		if (strcmp(examples[i].name, name) == 0)
			return &examples[i];
	return NULL;
}

/* Rows of the markdown table that follows "<!-- table: WHICH -->": calls row() with the
 * first two cells (trimmed) and the line number. Returns the number of rows, or -1 if
 * the marker is missing. */
static int for_table_rows(const char *which,
			  void (*row)(const char *c1, const char *c2, const char *c4, int lineno,
				      void *u),
			  void *u)
{
	char marker[64];
	size_t pos = 0;
	const char *line;
	long len;
	int lineno = 0, in_table = 0, rows = 0, found = 0;

	snprintf(marker, sizeof(marker), "<!-- table: %s -->", which);
	while ((len = next_line(&pos, &line)) >= 0) {
		lineno++;
		if (!found) {
			if ((size_t)len >= strlen(marker) &&
			    strncmp(line, marker, strlen(marker)) == 0)
				found = 1;
			continue;
		}
		if (len == 0 || line[0] != '|') {
			if (in_table)
				break;
			continue;
		}
		in_table = 1;
		/* split into cells */
		char cells[5][128] = { { 0 } };
		int ncell = 0;
		const char *p = line + 1, *e = line + len;

		while (p < e && ncell < 5) {
			const char *bar = memchr(p, '|', (size_t)(e - p));
			const char *a = p, *b = bar ? bar : e;

			while (a < b && isspace((unsigned char)*a))
				a++;
			while (b > a && isspace((unsigned char)b[-1]))
				b--;
			snprintf(cells[ncell++], sizeof(cells[0]), "%.*s", (int)(b - a), a);
			if (!bar)
				break;
			p = bar + 1;
		}
		if (strncmp(cells[0], "---", 3) == 0 || !isdigit((unsigned char)cells[0][0]))
			continue; /* separator or heading row */
		row(cells[0], cells[1], cells[3], lineno, u);
		rows++;
	}
	return found ? rows : -1;
}

/* ---- values typed by hand --------------------------------------------------------------- */

#define T_MS 1769856120000ull /* 2026-01-31 10:42:00 UTC */

static const uint8_t sha_abc[RD_SHA256_SIZE] = {
	0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
	0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
	0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
};
static const uint8_t token[RD_TOKEN_SIZE] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
					      0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
static const uint8_t descriptor[2] = { 0x01, 0x02 };
static struct rd_room_entry room_items[1] = { { "general", 2 } };
static struct rd_who_entry who_items[1] = { { "alice", T_MS } };
static struct rd_nick_entry except_items[1] = { { "bob" } };
/* the key fingerprint of the examples: the 32 bytes 00 01 ... 1f in text form (rd_tls.h) */
#define FP_TEXT "AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT-CQKR-MFYY-DENB-WHA5-DYPQ"
static struct rd_ctl_client ctl_items[1] = {
	{ 1, "127.0.0.1", 50000, "alice", "general", T_MS, T_MS, 100, 200, "", FP_TEXT },
};
static struct rdf_file_entry file_items[1];

static struct rd_bytes B(const void *p, size_t n) {
	struct rd_bytes b = { p, n };

	return b;
}

static struct rd_str
S(const char *s) {
	return rd_str_c(s);
}

static int
str_is(struct rd_str s, const char *want)
{
	return s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

static int bytes_are(struct rd_bytes b, const void *want, size_t n)
{
	return b.n == n && (n == 0 || memcmp(b.p, want, n) == 0);
}

/* ---- the table: one entry per example of the document ------------------------------------ */

struct entry {
	const char *name;
	uint16_t type;
	uint32_t req_id;
	void (*build)(struct rd_msg *m);       /* fill the union member (type already set) */
	void (*check)(const struct rd_msg *m); /* a few fields of the decoded document bytes */
};

#define M (&m->u)

/* session */
static void b_hello(struct rd_msg *m)
{
	M->hello = (struct rd_msg_hello){ 1, 1, 0x00000007, "rd" };
}
static void c_hello(const struct rd_msg *m)
{
	assert_int_equal(M->hello.version_min, 1);
	assert_int_equal(M->hello.version_max, 1);
	assert_int_equal(M->hello.features, RD_FEAT_ZLIB | RD_FEAT_P2P | RD_FEAT_FILES);
	assert_string_equal(M->hello.software, "rd");
}
static void b_hello_ok(struct rd_msg *m)
{
	M->hello_ok = (struct rd_msg_hello_ok){ 1, 0x0000000f, 1048576, 30000, 5000, "rd" };
}
static void c_hello_ok(const struct rd_msg *m)
{
	assert_int_equal(M->hello_ok.max_payload, RD_MAX_PAYLOAD_DEFAULT);
	assert_int_equal(M->hello_ok.ping_interval_ms, RD_PING_INTERVAL_MS);
	assert_int_equal(M->hello_ok.ping_timeout_ms, RD_PING_TIMEOUT_MS);
}
static void b_nick(struct rd_msg *m)
{
	strcpy(M->nick.nick, "alice");
}
static void c_nick(const struct rd_msg *m)
{
	assert_string_equal(M->nick.nick, "alice");
}
static void b_welcome(struct rd_msg *m)
{
	M->welcome = (struct rd_msg_welcome){ "alice", 1, T_MS };
}
static void c_welcome(const struct rd_msg *m)
{
	assert_string_equal(M->welcome.nick, "alice");
	assert_int_equal(M->welcome.client_id, 1);
	assert_true(M->welcome.server_time_ms == T_MS);
}
static void b_ok(struct rd_msg *m)
{
	M->ok.for_type = RD_MSG_LEAVE;
}
static void c_ok(const struct rd_msg *m)
{
	assert_int_equal(M->ok.for_type, RD_MSG_LEAVE);
}
static void b_error(struct rd_msg *m)
{
	M->error = (struct rd_msg_error){ RD_E_NICK_TAKEN, RD_MSG_NICK, S("nick taken") };
}
static void c_error(const struct rd_msg *m)
{
	assert_int_equal(M->error.code, RD_E_NICK_TAKEN);
	assert_int_equal(M->error.for_type, RD_MSG_NICK);
	assert_true(str_is(M->error.text, "nick taken"));
}
static void b_error_version(struct rd_msg *m)
{
	M->error = (struct rd_msg_error){ RD_E_BAD_VERSION, RD_MSG_HELLO, S("version") };
}
static void c_error_version(const struct rd_msg *m)
{
	assert_int_equal(M->error.code, RD_E_BAD_VERSION);
	assert_int_equal(M->error.for_type, RD_MSG_HELLO);
	assert_true(str_is(M->error.text, "version"));
}
static void b_ping(struct rd_msg *m)
{
	M->ping.nonce = 42;
}
static void c_ping(const struct rd_msg *m)
{
	assert_true(M->ping.nonce == 42);
}
static void b_bye(struct rd_msg *m)
{
	M->bye.reason = S("bye");
}
static void c_bye(const struct rd_msg *m)
{
	assert_true(str_is(M->bye.reason, "bye"));
}
static void b_shutdown(struct rd_msg *m)
{
	M->bye.reason = S("stop");
}
static void c_shutdown(const struct rd_msg *m)
{
	assert_true(str_is(M->bye.reason, "stop"));
}
static void b_redirect(struct rd_msg *m)
{
	M->redirect = (struct rd_msg_redirect){ "10.0.0.2", 7000, 1, S("full") };
	for (unsigned i = 0; i < RD_FP_SIZE; i++)
		M->redirect.fp[i] = (uint8_t)i; /* the examples' key: FP_TEXT */
}
static void c_redirect(const struct rd_msg *m)
{
	assert_string_equal(M->redirect.host, "10.0.0.2");
	assert_int_equal(M->redirect.port, 7000);
	assert_int_equal(M->redirect.temporary, 1);
	assert_true(str_is(M->redirect.reason, "full"));
	for (unsigned i = 0; i < RD_FP_SIZE; i++)
		assert_int_equal(M->redirect.fp[i], i);
}

/* rooms */
static void b_empty(struct rd_msg *m)
{
	(void)m;
}
static void c_empty(const struct rd_msg *m)
{
	(void)m;
}
static void b_room_list(struct rd_msg *m)
{
	M->room_list = (struct rd_msg_room_list){ 1, room_items };
}
static void c_room_list(const struct rd_msg *m)
{
	assert_int_equal(M->room_list.count, 1);
	assert_string_equal(M->room_list.items[0].name, "general");
	assert_int_equal(M->room_list.items[0].members, 2);
}
static void b_join(struct rd_msg *m)
{
	strcpy(M->room.room, "general");
}
static void c_join(const struct rd_msg *m)
{
	assert_string_equal(M->room.room, "general");
}
static void b_join_key(struct rd_msg *m)
{
	strcpy(M->join_key.room, "vault");
	M->join_key.key = (struct rd_bytes){ (const uint8_t *)"open sesame", 11 };
}
static void c_join_key(const struct rd_msg *m)
{
	assert_string_equal(M->join_key.room, "vault");
	assert_int_equal(M->join_key.key.n, 11);
	assert_memory_equal(M->join_key.key.p, "open sesame", 11);
}
static void b_joined(struct rd_msg *m)
{
	M->joined = (struct rd_msg_joined){ "general", 2 };
}
static void c_joined(const struct rd_msg *m)
{
	assert_string_equal(M->joined.room, "general");
	assert_int_equal(M->joined.members, 2);
}
static void b_who(struct rd_msg *m)
{
	M->room.room[0] = '\0';
}
static void c_who(const struct rd_msg *m)
{
	assert_string_equal(M->room.room, "");
}
static void b_who_list(struct rd_msg *m)
{
	M->who_list = (struct rd_msg_who_list){ "general", 1, who_items };
}
static void c_who_list(const struct rd_msg *m)
{
	assert_string_equal(M->who_list.room, "general");
	assert_int_equal(M->who_list.count, 1);
	assert_string_equal(M->who_list.items[0].nick, "alice");
	assert_true(M->who_list.items[0].since_ms == T_MS);
}

/* messages and notices */
static void b_say(struct rd_msg *m)
{
	M->say = (struct rd_msg_say){ RD_KIND_TEXT, B("hi", 2) };
}
static void c_say(const struct rd_msg *m)
{
	assert_int_equal(M->say.kind, RD_KIND_TEXT);
	assert_true(bytes_are(M->say.data, "hi", 2));
}
static void b_tell(struct rd_msg *m)
{
	M->tell = (struct rd_msg_tell){ "bob", RD_KIND_TEXT, B("hi", 2) };
}
static void c_tell(const struct rd_msg *m)
{
	assert_string_equal(M->tell.to, "bob");
	assert_true(bytes_are(M->tell.data, "hi", 2));
}
static void b_room_msg(struct rd_msg *m)
{
	M->room_msg =
		(struct rd_msg_room_msg){ "general", "alice", RD_KIND_TEXT, T_MS, B("hi", 2) };
}
static void c_room_msg(const struct rd_msg *m)
{
	assert_string_equal(M->room_msg.room, "general");
	assert_string_equal(M->room_msg.from, "alice");
	assert_true(M->room_msg.time_ms == T_MS);
	assert_true(bytes_are(M->room_msg.data, "hi", 2));
}
static void b_private_msg(struct rd_msg *m)
{
	M->private_msg = (struct rd_msg_private_msg){ "alice", RD_KIND_TEXT, T_MS, B("hi", 2) };
}
static void c_private_msg(const struct rd_msg *m)
{
	assert_string_equal(M->private_msg.from, "alice");
	assert_true(M->private_msg.time_ms == T_MS);
	assert_true(bytes_are(M->private_msg.data, "hi", 2));
}
static void b_presence(struct rd_msg *m)
{
	M->presence = (struct rd_msg_presence){ RD_PRESENCE_CONNECTED, "bob", "", T_MS, S("") };
}
static void c_presence(const struct rd_msg *m)
{
	assert_int_equal(M->presence.event, RD_PRESENCE_CONNECTED);
	assert_string_equal(M->presence.nick, "bob");
	assert_string_equal(M->presence.room, "");
	assert_int_equal(M->presence.reason.n, 0);
}
static void b_presence_kicked(struct rd_msg *m)
{
	M->presence =
		(struct rd_msg_presence){ RD_PRESENCE_KICKED, "bob", "general", T_MS, S("spam") };
}
static void c_presence_kicked(const struct rd_msg *m)
{
	assert_int_equal(M->presence.event, RD_PRESENCE_KICKED);
	assert_string_equal(M->presence.room, "general");
	assert_true(str_is(M->presence.reason, "spam"));
}
static void b_broadcast(struct rd_msg *m)
{
	M->broadcast = (struct rd_msg_broadcast){ RD_SCOPE_ALL, "", T_MS, S("hello") };
}
static void c_broadcast(const struct rd_msg *m)
{
	assert_int_equal(M->broadcast.scope, RD_SCOPE_ALL);
	assert_string_equal(M->broadcast.target, "");
	assert_true(M->broadcast.time_ms == T_MS);
	assert_true(str_is(M->broadcast.text, "hello"));
}
static void b_kicked(struct rd_msg *m)
{
	M->kicked = (struct rd_msg_kicked){ "server", S("spam") };
}
static void c_kicked(const struct rd_msg *m)
{
	assert_string_equal(M->kicked.by, "server");
	assert_true(str_is(M->kicked.reason, "spam"));
}

/* direct mode (section 14.5) */
static void b_room_direct(struct rd_msg *m)
{
	M->room_direct = (struct rd_msg_room_direct){ 1 };
}
static void c_room_direct(const struct rd_msg *m)
{
	assert_int_equal(M->room_direct.on, 1);
}
static void b_room_mode(struct rd_msg *m)
{
	M->room_mode = (struct rd_msg_room_mode){ "general", 1, "alice" };
}
static void c_room_mode(const struct rd_msg *m)
{
	assert_string_equal(M->room_mode.room, "general");
	assert_int_equal(M->room_mode.direct, 1);
	assert_string_equal(M->room_mode.by, "alice");
}
static void b_presence_summary(struct rd_msg *m)
{
	M->presence_summary =
		(struct rd_msg_presence_summary){ "general", 312, 4, 1000, 1767225600000ull };
}
static void c_presence_summary(const struct rd_msg *m)
{
	assert_string_equal(M->presence_summary.room, "general");
	assert_int_equal(M->presence_summary.arrived, 312);
	assert_int_equal(M->presence_summary.departed, 4);
	assert_int_equal(M->presence_summary.interval_ms, 1000);
	assert_true(M->presence_summary.time_ms == 1767225600000ull);
}
static void b_say_except(struct rd_msg *m)
{
	M->say_except = (struct rd_msg_say_except){ RD_KIND_TEXT, B("hi", 2), 1, except_items };
}
static void c_say_except(const struct rd_msg *m)
{
	assert_int_equal(M->say_except.kind, RD_KIND_TEXT);
	assert_true(bytes_are(M->say_except.data, "hi", 2));
	assert_int_equal(M->say_except.count, 1);
	assert_string_equal(M->say_except.except[0].nick, "bob");
}
static void b_error_room_too_big(struct rd_msg *m)
{
	M->error = (struct rd_msg_error){ RD_E_ROOM_TOO_BIG, RD_MSG_ROOM_DIRECT, S("9 members") };
}
static void c_error_room_too_big(const struct rd_msg *m)
{
	assert_int_equal(M->error.code, RD_E_ROOM_TOO_BIG);
	assert_int_equal(M->error.for_type, RD_MSG_ROOM_DIRECT);
	assert_true(str_is(M->error.text, "9 members"));
}

/* offers */
static void b_offer(struct rd_msg *m)
{
	M->offer = (struct rd_msg_offer){ RD_OFFER_TO_USER, "bob", 0x1100, 60000,
					  B(descriptor, sizeof(descriptor)) };
}
static void c_offer(const struct rd_msg *m)
{
	assert_int_equal(M->offer.scope, RD_OFFER_TO_USER);
	assert_string_equal(M->offer.to, "bob");
	assert_int_equal(M->offer.app_type, 0x1100);
	assert_int_equal(M->offer.timeout_ms, 60000);
	assert_true(bytes_are(M->offer.descriptor, descriptor, sizeof(descriptor)));
}
static void b_offer_pending(struct rd_msg *m)
{
	M->offer_pending = (struct rd_msg_offer_pending){ 7, 60000, 1 };
}
static void c_offer_pending(const struct rd_msg *m)
{
	assert_int_equal(M->offer_pending.offer_id, 7);
	assert_int_equal(M->offer_pending.expires_in_ms, 60000);
	assert_int_equal(M->offer_pending.recipients, 1);
}
static void b_offer_in(struct rd_msg *m)
{
	M->offer_in = (struct rd_msg_offer_in){ 7,     "alice", 0x1100,
						60000, "",      B(descriptor, sizeof(descriptor)) };
}
static void c_offer_in(const struct rd_msg *m)
{
	assert_int_equal(M->offer_in.offer_id, 7);
	assert_string_equal(M->offer_in.from, "alice");
	assert_string_equal(M->offer_in.room, "");
	assert_true(bytes_are(M->offer_in.descriptor, descriptor, sizeof(descriptor)));
}
static void b_offer_answer(struct rd_msg *m)
{
	M->offer_answer = (struct rd_msg_offer_answer){ 7, RD_ANSWER_ACCEPT, 0, S(""),
							B(descriptor, sizeof(descriptor)) };
}
static void c_offer_answer(const struct rd_msg *m)
{
	assert_int_equal(M->offer_answer.offer_id, 7);
	assert_int_equal(M->offer_answer.answer, RD_ANSWER_ACCEPT);
	assert_int_equal(M->offer_answer.hold_ms, 0);
	assert_true(bytes_are(M->offer_answer.data, descriptor, sizeof(descriptor)));
}
static void b_offer_answered(struct rd_msg *m)
{
	M->offer_answered = (struct rd_msg_offer_answered){ 7,     "bob",     RD_ANSWER_REJECT,
							    42000, S("busy"), B("", 0) };
}
static void c_offer_answered(const struct rd_msg *m)
{
	assert_int_equal(M->offer_answered.offer_id, 7);
	assert_string_equal(M->offer_answered.peer, "bob");
	assert_int_equal(M->offer_answered.answer, RD_ANSWER_REJECT);
	assert_int_equal(M->offer_answered.expires_in_ms, 42000);
	assert_true(str_is(M->offer_answered.reason, "busy"));
	assert_int_equal(M->offer_answered.data.n, 0);
}
static void b_offer_id(struct rd_msg *m)
{
	M->offer_id.offer_id = 7;
}
static void c_offer_id(const struct rd_msg *m)
{
	assert_int_equal(M->offer_id.offer_id, 7);
}
static void b_offer_result(struct rd_msg *m)
{
	M->offer_result = (struct rd_msg_offer_result){ 7, RD_OFFER_ACCEPTED, "bob", S(""), 1 };
}
static void c_offer_result(const struct rd_msg *m)
{
	assert_int_equal(M->offer_result.offer_id, 7);
	assert_int_equal(M->offer_result.outcome, RD_OFFER_ACCEPTED);
	assert_string_equal(M->offer_result.peer, "bob");
	assert_int_equal(M->offer_result.accepted, 1);
}
static void b_offer_data(struct rd_msg *m)
{
	M->offer_data = (struct rd_msg_offer_data){ 7, 0, B("hi", 2) };
}
static void c_offer_data(const struct rd_msg *m)
{
	assert_int_equal(M->offer_data.offer_id, 7);
	assert_true(M->offer_data.offset == 0);
	assert_true(bytes_are(M->offer_data.data, "hi", 2));
}
static void b_offer_end(struct rd_msg *m)
{
	M->offer_end = (struct rd_msg_offer_end){ 7, 0 };
}
static void c_offer_end(const struct rd_msg *m)
{
	assert_int_equal(M->offer_end.offer_id, 7);
	assert_int_equal(M->offer_end.status, 0);
}

/* peer to peer */
static struct rd_p2p_addr doc_addrs[2] = { { "10.0.0.1:40000" }, { "192.168.1.20:40000" } };
static void b_p2p_listen(struct rd_msg *m)
{
	M->p2p_listen = (struct rd_msg_p2p_listen){ 7, 40000, 1, &doc_addrs[1] };
}
static void c_p2p_listen(const struct rd_msg *m)
{
	assert_int_equal(M->p2p_listen.offer_id, 7);
	assert_int_equal(M->p2p_listen.port, 40000);
	assert_int_equal(M->p2p_listen.naddrs, 1);
	assert_string_equal(M->p2p_listen.addrs[0].addr, "192.168.1.20:40000");
}
static void b_p2p_intro(struct rd_msg *m)
{
	M->p2p_intro = (struct rd_msg_p2p_intro){ 7, RD_P2P_FOLLOWER, "alice" };
	memset(M->p2p_intro.fp, 0xab, sizeof(M->p2p_intro.fp));
	M->p2p_intro.naddrs = 2;
	M->p2p_intro.addrs = doc_addrs;
	memcpy(M->p2p_intro.token, token, sizeof(token));
}
static void c_p2p_intro(const struct rd_msg *m)
{
	assert_int_equal(M->p2p_intro.role, RD_P2P_FOLLOWER);
	assert_string_equal(M->p2p_intro.peer, "alice");
	assert_int_equal(M->p2p_intro.fp[0], 0xab);
	assert_int_equal(M->p2p_intro.naddrs, 2);
	assert_string_equal(M->p2p_intro.addrs[0].addr, "10.0.0.1:40000");
	assert_string_equal(M->p2p_intro.addrs[1].addr, "192.168.1.20:40000");
	assert_memory_equal(M->p2p_intro.token, token, sizeof(token));
}
static void b_p2p_hello(struct rd_msg *m)
{
	M->p2p_hello.offer_id = 7;
	memcpy(M->p2p_hello.token, token, sizeof(token));
	strcpy(M->p2p_hello.nick, "bob");
}
static void c_p2p_hello(const struct rd_msg *m)
{
	assert_int_equal(M->p2p_hello.offer_id, 7);
	assert_memory_equal(M->p2p_hello.token, token, sizeof(token));
	assert_string_equal(M->p2p_hello.nick, "bob");
}
static void b_ok_p2p_hello(struct rd_msg *m)
{
	M->ok.for_type = RD_MSG_P2P_HELLO;
}
static void c_ok_p2p_hello(const struct rd_msg *m)
{
	assert_int_equal(M->ok.for_type, RD_MSG_P2P_HELLO);
}
static void b_error_bad_token(struct rd_msg *m)
{
	M->error =
		(struct rd_msg_error){ RD_E_BAD_TOKEN, RD_MSG_P2P_HELLO, S("token already used") };
}
static void c_error_bad_token(const struct rd_msg *m)
{
	assert_int_equal(M->error.code, RD_E_BAD_TOKEN);
	assert_int_equal(M->error.for_type, RD_MSG_P2P_HELLO);
	assert_true(str_is(M->error.text, "token already used"));
}
static void b_p2p_failed(struct rd_msg *m)
{
	M->p2p_failed = (struct rd_msg_p2p_failed){ 7, S("refused") };
}
static void c_p2p_failed(const struct rd_msg *m)
{
	assert_int_equal(M->p2p_failed.offer_id, 7);
	assert_true(str_is(M->p2p_failed.reason, "refused"));
}

/* local administration */
static void b_ctl_clients(struct rd_msg *m)
{
	M->ctl_clients = (struct rd_msg_ctl_clients){ 1, ctl_items };
}
static void c_ctl_clients(const struct rd_msg *m)
{
	const struct rd_ctl_client *e;
	uint8_t fp[RD_TLS_FP_LEN];

	assert_int_equal(M->ctl_clients.count, 1);
	e = &M->ctl_clients.items[0];
	assert_string_equal(e->ip, "127.0.0.1");
	assert_int_equal(e->port, 50000);
	assert_string_equal(e->nick, "alice");
	assert_true(e->bytes_in == 100 && e->bytes_out == 200);
	assert_string_equal(e->activity, "");
	assert_string_equal(e->fingerprint, FP_TEXT);
	assert_string_equal(e->server, "");
	/* the document's claim: FP_TEXT is the text form of the bytes 00 01 ... 1f */
	assert_int_equal(rd_tls_fp_parse(e->fingerprint, fp), 0);
	for (int i = 0; i < RD_TLS_FP_LEN; i++)
		assert_int_equal(fp[i], i);
}
static void b_ctl_kick(struct rd_msg *m)
{
	M->ctl_kick = (struct rd_msg_ctl_kick){ "bob", S("spam") };
}
static void c_ctl_kick(const struct rd_msg *m)
{
	assert_string_equal(M->ctl_kick.nick, "bob");
	assert_true(str_is(M->ctl_kick.reason, "spam"));
}
static void b_ctl_release(struct rd_msg *m)
{
	M->ctl_release = (struct rd_msg_ctl_release){ "alice" };
}
static void c_ctl_release(const struct rd_msg *m)
{
	assert_string_equal(M->ctl_release.nick, "alice");
}
static void b_ctl_op(struct rd_msg *m)
{
	M->ctl_op = (struct rd_msg_ctl_op){ "general", "alice", 1 };
}
static void c_ctl_op(const struct rd_msg *m)
{
	assert_string_equal(M->ctl_op.room, "general");
	assert_string_equal(M->ctl_op.nick, "alice");
	assert_int_equal(M->ctl_op.grant, 1);
}
static void b_auth(struct rd_msg *m)
{
	M->auth = (struct rd_msg_auth){ RD_AUTH_PASSWORD, { (const uint8_t *)"hunter2", 7 } };
}
static void c_auth(const struct rd_msg *m)
{
	assert_int_equal(M->auth.kind, RD_AUTH_PASSWORD);
	assert_int_equal(M->auth.secret.n, 7);
	assert_memory_equal(M->auth.secret.p, "hunter2", 7);
}
static void b_ctl_admit(struct rd_msg *m)
{
	for (int i = 0; i < 32; i++)
		M->ctl_admit.fp[i] = (uint8_t)(0xa0 + i);
	M->ctl_admit.grant = 1;
}
static void c_ctl_admit(const struct rd_msg *m)
{
	for (int i = 0; i < 32; i++)
		assert_int_equal(M->ctl_admit.fp[i], 0xa0 + i);
	assert_int_equal(M->ctl_admit.grant, 1);
}
static void b_ctl_invite(struct rd_msg *m)
{
	M->ctl_invite = (struct rd_msg_ctl_invite){ 3, 3600000 };
}
static void c_ctl_invite(const struct rd_msg *m)
{
	assert_int_equal(M->ctl_invite.uses, 3);
	assert_int_equal(M->ctl_invite.valid_ms, 3600000);
}
static void b_ctl_invitation(struct rd_msg *m)
{
	snprintf(M->ctl_invitation.id, sizeof(M->ctl_invitation.id), "0a1b2c3d");
	for (int i = 0; i < 16; i++)
		M->ctl_invitation.secret[i] = (uint8_t)i;
	M->ctl_invitation.expires_ms = 1700000000000ull;
}
static void c_ctl_invitation(const struct rd_msg *m)
{
	assert_string_equal(M->ctl_invitation.id, "0a1b2c3d");
	for (int i = 0; i < 16; i++)
		assert_int_equal(M->ctl_invitation.secret[i], i);
	assert_true(M->ctl_invitation.expires_ms == 1700000000000ull);
}
static void b_ctl_uninvite(struct rd_msg *m)
{
	snprintf(M->ctl_uninvite.id, sizeof(M->ctl_uninvite.id), "0a1b2c3d");
}
static void c_ctl_uninvite(const struct rd_msg *m)
{
	assert_string_equal(M->ctl_uninvite.id, "0a1b2c3d");
}
static void b_ctl_broadcast(struct rd_msg *m)
{
	M->ctl_broadcast = (struct rd_msg_ctl_broadcast){ RD_SCOPE_ROOM, "general", S("hello") };
}
static void c_ctl_broadcast(const struct rd_msg *m)
{
	assert_int_equal(M->ctl_broadcast.scope, RD_SCOPE_ROOM);
	assert_string_equal(M->ctl_broadcast.target, "general");
	assert_true(str_is(M->ctl_broadcast.text, "hello"));
}

static void b_ctl_server_info(struct rd_msg *m)
{
	M->ctl_server_info = (struct rd_msg_ctl_server_info){
		"roomdrop-server/0.1.0", "127.0.0.1:7878", 1, FP_TEXT, 2, 1, 2, 90000, 1, 1048576
	};
}
static void c_ctl_server_info(const struct rd_msg *m)
{
	assert_string_equal(M->ctl_server_info.software, "roomdrop-server/0.1.0");
	assert_string_equal(M->ctl_server_info.listen, "127.0.0.1:7878");
	assert_int_equal(M->ctl_server_info.tls, 1);
	assert_string_equal(M->ctl_server_info.fingerprint, FP_TEXT);
	assert_int_equal(M->ctl_server_info.clients, 2);
	assert_int_equal(M->ctl_server_info.registered, 1);
	assert_int_equal(M->ctl_server_info.rooms, 2);
	assert_true(M->ctl_server_info.uptime_ms == 90000);
	assert_int_equal(M->ctl_server_info.offers, 1);
	assert_true(M->ctl_server_info.relay_peak == 1048576);
}

/* file application: its messages live in the application storage (rdf_body) */
#undef M
#define M rdf_body(m)
static void b_put(struct rd_msg *m)
{
	strcpy(M->put.name, "a.txt");
	M->put.size = 3;
	memcpy(M->put.sha256, sha_abc, sizeof(sha_abc));
	M->put.mode = RDF_PUT_REFUSE;
}
static void c_put(const struct rd_msg *m)
{
	assert_string_equal(M->put.name, "a.txt");
	assert_true(M->put.size == 3);
	assert_memory_equal(M->put.sha256, sha_abc, sizeof(sha_abc));
	assert_int_equal(M->put.mode, RDF_PUT_REFUSE);
}
static void b_put_ready(struct rd_msg *m)
{
	M->put_ready = (struct rdf_msg_put_ready){ 1, 0, "a.txt" };
}
static void c_put_ready(const struct rd_msg *m)
{
	assert_int_equal(M->put_ready.xfer_id, 1);
	assert_true(M->put_ready.offset == 0);
	assert_string_equal(M->put_ready.name, "a.txt");
}
static void b_chunk(struct rd_msg *m)
{
	M->chunk = (struct rdf_msg_chunk){ 1, 0, B("abc", 3) };
}
static void c_chunk(const struct rd_msg *m)
{
	assert_int_equal(M->chunk.xfer_id, 1);
	assert_true(M->chunk.offset == 0);
	assert_true(bytes_are(M->chunk.data, "abc", 3));
}
static void b_xfer(struct rd_msg *m)
{
	M->xfer.xfer_id = 1;
}
static void c_xfer(const struct rd_msg *m)
{
	assert_int_equal(M->xfer.xfer_id, 1);
}
static void b_put_seal(struct rd_msg *m)
{
	M->put_seal.xfer_id = 1;
	memcpy(M->put_seal.sha256, sha_abc, sizeof(sha_abc));
}
static void c_put_seal(const struct rd_msg *m)
{
	assert_int_equal(M->put_seal.xfer_id, 1);
	assert_memory_equal(M->put_seal.sha256, sha_abc, sizeof(sha_abc));
}
static void b_put_done(struct rd_msg *m)
{
	M->put_done.xfer_id = 1;
	strcpy(M->put_done.name, "a.txt");
	M->put_done.size = 3;
	memcpy(M->put_done.sha256, sha_abc, sizeof(sha_abc));
}
static void c_put_done(const struct rd_msg *m)
{
	assert_string_equal(M->put_done.name, "a.txt");
	assert_true(M->put_done.size == 3);
	assert_memory_equal(M->put_done.sha256, sha_abc, sizeof(sha_abc));
}
static void b_get(struct rd_msg *m)
{
	M->get = (struct rdf_msg_get){ "a.txt", 0 };
}
static void c_get(const struct rd_msg *m)
{
	assert_string_equal(M->get.name, "a.txt");
	assert_true(M->get.offset == 0);
}
static void b_get_begin(struct rd_msg *m)
{
	M->get_begin = (struct rdf_msg_get_begin){ 1, "a.txt", 3, 0, T_MS };
	memcpy(M->get_begin.sha256, sha_abc, sizeof(sha_abc));
}
static void c_get_begin(const struct rd_msg *m)
{
	assert_int_equal(M->get_begin.xfer_id, 1);
	assert_true(M->get_begin.size == 3 && M->get_begin.offset == 0);
	assert_true(M->get_begin.mtime_ms == T_MS);
	assert_memory_equal(M->get_begin.sha256, sha_abc, sizeof(sha_abc));
}
static void b_file_list(struct rd_msg *m)
{
	file_items[0] = (struct rdf_file_entry){ "a.txt", 3, T_MS, { 0 }, "alice" };
	memcpy(file_items[0].sha256, sha_abc, sizeof(sha_abc));
	M->file_list = (struct rdf_msg_file_list){ "general", 1, file_items, 1 };
}
static void c_file_list(const struct rd_msg *m)
{
	const struct rdf_file_entry *e;

	assert_string_equal(M->file_list.room, "general");
	assert_int_equal(M->file_list.count, 1);
	e = &M->file_list.items[0];
	assert_string_equal(e->name, "a.txt");
	assert_true(e->size == 3 && e->mtime_ms == T_MS);
	assert_memory_equal(e->sha256, sha_abc, sizeof(sha_abc));
	assert_string_equal(e->uploader, "alice");
	assert_int_equal(M->file_list.more, 1);
}
static void b_list(struct rd_msg *m)
{
	strcpy(M->list.after, "a.txt");
}
static void c_list(const struct rd_msg *m)
{
	assert_string_equal(M->list.after, "a.txt");
}
static void b_delete(struct rd_msg *m)
{
	strcpy(M->name.name, "a.txt");
}
static void c_delete(const struct rd_msg *m)
{
	assert_string_equal(M->name.name, "a.txt");
}
static void b_file_notice(struct rd_msg *m)
{
	M->file_notice =
		(struct rdf_msg_file_notice){ RDF_FILE_ADDED, "general", "alice", "a.txt", 3 };
}
static void c_file_notice(const struct rd_msg *m)
{
	assert_int_equal(M->file_notice.event, RDF_FILE_ADDED);
	assert_string_equal(M->file_notice.room, "general");
	assert_string_equal(M->file_notice.nick, "alice");
	assert_string_equal(M->file_notice.name, "a.txt");
	assert_true(M->file_notice.size == 3);
}
static void b_xfer_cancel(struct rd_msg *m)
{
	M->xfer_cancel = (struct rdf_msg_xfer_cancel){ 1, 0, S("stop") };
}
static void c_xfer_cancel(const struct rd_msg *m)
{
	assert_int_equal(M->xfer_cancel.xfer_id, 1);
	assert_int_equal(M->xfer_cancel.code, 0);
	assert_true(str_is(M->xfer_cancel.reason, "stop"));
}

#undef M

static const struct entry entries[] = {
	{ "hello", RD_MSG_HELLO, 1, b_hello, c_hello },
	{ "hello_ok", RD_MSG_HELLO_OK, 1, b_hello_ok, c_hello_ok },
	{ "nick", RD_MSG_NICK, 1, b_nick, c_nick },
	{ "welcome", RD_MSG_WELCOME, 1, b_welcome, c_welcome },
	{ "ok", RD_MSG_OK, 1, b_ok, c_ok },
	{ "error", RD_MSG_ERROR, 1, b_error, c_error },
	{ "error-version", RD_MSG_ERROR, 1, b_error_version, c_error_version },
	{ "ping", RD_MSG_PING, 0, b_ping, c_ping },
	{ "pong", RD_MSG_PONG, 0, b_ping, c_ping },
	{ "bye", RD_MSG_BYE, 0, b_bye, c_bye },
	{ "shutdown", RD_MSG_SHUTDOWN, 0, b_shutdown, c_shutdown },
	{ "redirect", RD_MSG_REDIRECT, 1, b_redirect, c_redirect },
	{ "rooms", RD_MSG_ROOMS, 1, b_empty, c_empty },
	{ "room_list", RD_MSG_ROOM_LIST, 1, b_room_list, c_room_list },
	{ "join", RD_MSG_JOIN, 1, b_join, c_join },
	{ "joined", RD_MSG_JOINED, 1, b_joined, c_joined },
	{ "join_key", RD_MSG_JOIN_KEY, 1, b_join_key, c_join_key },
	{ "leave", RD_MSG_LEAVE, 1, b_empty, c_empty },
	{ "who", RD_MSG_WHO, 1, b_who, c_who },
	{ "who_list", RD_MSG_WHO_LIST, 1, b_who_list, c_who_list },
	{ "say", RD_MSG_SAY, 0, b_say, c_say },
	{ "tell", RD_MSG_TELL, 1, b_tell, c_tell },
	{ "room_msg", RD_MSG_ROOM_MSG, 0, b_room_msg, c_room_msg },
	{ "private_msg", RD_MSG_PRIVATE_MSG, 0, b_private_msg, c_private_msg },
	{ "presence", RD_MSG_PRESENCE, 0, b_presence, c_presence },
	{ "presence-kicked", RD_MSG_PRESENCE, 0, b_presence_kicked, c_presence_kicked },
	{ "broadcast", RD_MSG_BROADCAST, 0, b_broadcast, c_broadcast },
	{ "kicked", RD_MSG_KICKED, 0, b_kicked, c_kicked },
	{ "room_direct", RD_MSG_ROOM_DIRECT, 1, b_room_direct, c_room_direct },
	{ "room_mode", RD_MSG_ROOM_MODE, 0, b_room_mode, c_room_mode },
	{ "presence_summary", RD_MSG_PRESENCE_SUMMARY, 0, b_presence_summary, c_presence_summary },
	{ "say_except", RD_MSG_SAY_EXCEPT, 0, b_say_except, c_say_except },
	{ "error-room-too-big", RD_MSG_ERROR, 1, b_error_room_too_big, c_error_room_too_big },
	{ "offer", RD_MSG_OFFER, 1, b_offer, c_offer },
	{ "offer_pending", RD_MSG_OFFER_PENDING, 1, b_offer_pending, c_offer_pending },
	{ "offer_in", RD_MSG_OFFER_IN, 0, b_offer_in, c_offer_in },
	{ "offer_answer", RD_MSG_OFFER_ANSWER, 1, b_offer_answer, c_offer_answer },
	{ "offer_cancel", RD_MSG_OFFER_CANCEL, 1, b_offer_id, c_offer_id },
	{ "offer_result", RD_MSG_OFFER_RESULT, 0, b_offer_result, c_offer_result },
	{ "offer_data", RD_MSG_OFFER_DATA, 0, b_offer_data, c_offer_data },
	{ "offer_end", RD_MSG_OFFER_END, 1, b_offer_end, c_offer_end },
	{ "offer_answered", RD_MSG_OFFER_ANSWERED, 0, b_offer_answered, c_offer_answered },
	{ "p2p_listen", RD_MSG_P2P_LISTEN, 1, b_p2p_listen, c_p2p_listen },
	{ "p2p_intro", RD_MSG_P2P_INTRO, 0, b_p2p_intro, c_p2p_intro },
	{ "p2p_hello", RD_MSG_P2P_HELLO, 1, b_p2p_hello, c_p2p_hello },
	{ "p2p_ready", RD_MSG_P2P_READY, 1, b_offer_id, c_offer_id },
	{ "p2p_failed", RD_MSG_P2P_FAILED, 1, b_p2p_failed, c_p2p_failed },
	{ "ok-p2p-hello", RD_MSG_OK, 1, b_ok_p2p_hello, c_ok_p2p_hello },
	{ "error-bad-token", RD_MSG_ERROR, 1, b_error_bad_token, c_error_bad_token },
	{ "ctl_list", RD_MSG_CTL_LIST, 1, b_empty, c_empty },
	{ "ctl_clients", RD_MSG_CTL_CLIENTS, 1, b_ctl_clients, c_ctl_clients },
	{ "ctl_kick", RD_MSG_CTL_KICK, 1, b_ctl_kick, c_ctl_kick },
	{ "ctl_release", RD_MSG_CTL_RELEASE, 1, b_ctl_release, c_ctl_release },
	{ "ctl_op", RD_MSG_CTL_OP, 1, b_ctl_op, c_ctl_op },
	{ "ctl_admit", RD_MSG_CTL_ADMIT, 1, b_ctl_admit, c_ctl_admit },
	{ "ctl_invite", RD_MSG_CTL_INVITE, 1, b_ctl_invite, c_ctl_invite },
	{ "ctl_invitation", RD_MSG_CTL_INVITATION, 1, b_ctl_invitation, c_ctl_invitation },
	{ "ctl_uninvite", RD_MSG_CTL_UNINVITE, 1, b_ctl_uninvite, c_ctl_uninvite },
	{ "auth", RD_MSG_AUTH, 1, b_auth, c_auth },
	{ "ctl_broadcast", RD_MSG_CTL_BROADCAST, 1, b_ctl_broadcast, c_ctl_broadcast },
	{ "ctl_info", RD_MSG_CTL_INFO, 1, b_empty, c_empty },
	{ "ctl_server_info", RD_MSG_CTL_SERVER_INFO, 1, b_ctl_server_info, c_ctl_server_info },
	{ "put", RDF_MSG_PUT, 1, b_put, c_put },
	{ "put_ready", RDF_MSG_PUT_READY, 1, b_put_ready, c_put_ready },
	{ "put_chunk", RDF_MSG_PUT_CHUNK, 0, b_chunk, c_chunk },
	{ "put_end", RDF_MSG_PUT_END, 1, b_xfer, c_xfer },
	{ "put_seal", RDF_MSG_PUT_SEAL, 1, b_put_seal, c_put_seal },
	{ "put_done", RDF_MSG_PUT_DONE, 1, b_put_done, c_put_done },
	{ "get", RDF_MSG_GET, 1, b_get, c_get },
	{ "get_begin", RDF_MSG_GET_BEGIN, 1, b_get_begin, c_get_begin },
	{ "get_chunk", RDF_MSG_GET_CHUNK, 1, b_chunk, c_chunk },
	{ "get_end", RDF_MSG_GET_END, 1, b_xfer, c_xfer },
	{ "list", RDF_MSG_LIST, 1, b_list, c_list },
	{ "file_list", RDF_MSG_FILE_LIST, 1, b_file_list, c_file_list },
	{ "delete", RDF_MSG_DELETE, 1, b_delete, c_delete },
	{ "file_notice", RDF_MSG_FILE_NOTICE, 0, b_file_notice, c_file_notice },
	{ "xfer_cancel", RDF_MSG_XFER_CANCEL, 0, b_xfer_cancel, c_xfer_cancel },
};
#define NENTRIES (sizeof(entries) / sizeof(entries[0]))

static const struct entry *find_entry(const char *name)
{
	for (size_t i = 0; i < NENTRIES; i++)
		if (strcmp(entries[i].name, name) == 0)
			return &entries[i];
	return NULL;
}

/* The error codes of rd_proto.h with their names, as PROTOCOL.md's table must list them. */
struct code_name {
	uint16_t code;
	const char *name;
};
static const struct code_name wire_errors[] = {
	{ RD_E_MALFORMED, "MALFORMED" },
	{ RD_E_BAD_MAGIC, "BAD_MAGIC" },
	{ RD_E_BAD_VERSION, "BAD_VERSION" },
	{ RD_E_TOO_BIG, "TOO_BIG" },
	{ RD_E_UNKNOWN_TYPE, "UNKNOWN_TYPE" },
	{ RD_E_UNEXPECTED, "UNEXPECTED" },
	{ RD_E_BAD_COMPRESSION, "BAD_COMPRESSION" },
	{ RD_E_NOT_REGISTERED, "NOT_REGISTERED" },
	{ RD_E_RATE, "RATE" },
	{ RD_E_TLS_REQUIRED, "TLS_REQUIRED" },
	{ RD_E_NICK_TAKEN, "NICK_TAKEN" },
	{ RD_E_NICK_INVALID, "NICK_INVALID" },
	{ RD_E_NICK_LENGTH, "NICK_LENGTH" },
	{ RD_E_NICK_RESERVED, "NICK_RESERVED" },
	{ RD_E_ALREADY_REGISTERED, "ALREADY_REGISTERED" },
	{ RD_E_SERVER_FULL, "SERVER_FULL" },
	{ RD_E_REGISTER_TIMEOUT, "REGISTER_TIMEOUT" },
	{ RD_E_NICK_OWNED, "NICK_OWNED" },
	{ RD_E_AUTH_REQUIRED, "AUTH_REQUIRED" },
	{ RD_E_NOT_ADMITTED, "NOT_ADMITTED" },
	{ RD_E_BAD_SECRET, "BAD_SECRET" },
	{ RD_E_NO_SUCH_ROOM, "NO_SUCH_ROOM" },
	{ RD_E_NOT_IN_ROOM, "NOT_IN_ROOM" },
	{ RD_E_NO_SUCH_USER, "NO_SUCH_USER" },
	{ RD_E_MESSAGE_TOO_LONG, "MESSAGE_TOO_LONG" },
	{ RD_E_SLOW_READER, "SLOW_READER" },
	{ RD_E_PING_TIMEOUT, "PING_TIMEOUT" },
	{ RD_E_ROOM_TOO_BIG, "ROOM_TOO_BIG" },
	{ RD_E_NO_SUCH_OFFER, "NO_SUCH_OFFER" },
	{ RD_E_OFFER_SELF, "OFFER_SELF" },
	{ RD_E_OFFER_STATE, "OFFER_STATE" },
	{ RD_E_BAD_TOKEN, "BAD_TOKEN" },
	{ RD_E_TOO_MANY_OFFERS, "TOO_MANY_OFFERS" },
	{ RD_E_OFFER_NOBODY, "OFFER_NOBODY" },
	{ RDF_E_BAD_FILENAME, "BAD_FILENAME" },
	{ RDF_E_FILE_EXISTS, "FILE_EXISTS" },
	{ RDF_E_NO_SUCH_FILE, "NO_SUCH_FILE" },
	{ RDF_E_FILE_TOO_BIG, "FILE_TOO_BIG" },
	{ RDF_E_QUOTA, "QUOTA" },
	{ RDF_E_NO_SPACE, "NO_SPACE" },
	{ RDF_E_HASH_MISMATCH, "HASH_MISMATCH" },
	{ RDF_E_SIZE_MISMATCH, "SIZE_MISMATCH" },
	{ RDF_E_BAD_OFFSET, "BAD_OFFSET" },
	{ RDF_E_BUSY, "BUSY" },
	{ RDF_E_PERMISSION, "PERMISSION" },
	{ RDF_E_NO_SUCH_TRANSFER, "NO_SUCH_TRANSFER" },
	{ RDF_E_READ_ONLY, "READ_ONLY" },
	{ RDF_E_STORAGE, "STORAGE" },
	{ RD_E_INTERNAL, "INTERNAL" },
	{ RD_E_SHUTTING_DOWN, "SHUTTING_DOWN" },
	{ RD_E_CLUSTER_DEGRADED, "CLUSTER_DEGRADED" },
};
#define NERRORS (sizeof(wire_errors) / sizeof(wire_errors[0]))

/* ---- helpers ------------------------------------------------------------------------------ */

static void print_hex_diff(const char *name, const uint8_t *want, size_t nw, const uint8_t *got,
			   size_t ng)
{
	size_t n = nw > ng ? nw : ng, first = n;

	for (size_t i = 0; i < n; i++) {
		if (i >= nw || i >= ng || want[i] != got[i]) {
			first = i;
			break;
		}
	}
	print_error("example '%s': PROTOCOL.md has %zu bytes, the encoder %zu; first difference "
		    "at byte %zu\n",
		    name, nw, ng, first);
	print_error("  document:");
	for (size_t i = 0; i < nw; i++)
		print_error("%s%02x", i % 16 ? " " : "\n    ", want[i]);
	print_error("\n  encoder: ");
	for (size_t i = 0; i < ng; i++)
		print_error("%s%02x", i % 16 ? " " : "\n    ", got[i]);
	print_error("\n");
}

static void lower(char *out, size_t cap, const char *s)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < cap; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[i] = '\0';
}

/* ---- setup --------------------------------------------------------------------------------- */

static int setup(void **state)
{
	const char *path = getenv("RD_PROTOCOL_MD");

	(void)state;
	snprintf(doc_path, sizeof(doc_path), "%s", path && *path ? path : "PROTOCOL.md");
	doc = read_file(doc_path);
	if (!doc) {
		print_error("cannot read %s (set RD_PROTOCOL_MD, or run from the repo root)\n",
			    doc_path);
		return -1;
	}
	examples = calloc(MAX_EXAMPLES, sizeof(*examples));
	if (!examples)
		return -1;
	parse_examples();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(doc);
	free(examples);
	return 0;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_examples_are_well_formed(void **state)
{
	(void)state;
	assert_int_equal(parse_errors, 0);
	assert_true(nexamples > 0);
	for (size_t i = 0; i < nexamples; i++) {
		const struct doc_example *ex = &examples[i];

		if (ex->n < RD_FRAME_HEADER_SIZE ||
		    rd_be32_get(ex->bytes + 12) != ex->n - RD_FRAME_HEADER_SIZE) {
			print_error("%s:%d: example '%s': %zu bytes, header says payload %u\n",
				    doc_path, ex->line, ex->name, ex->n,
				    ex->n >= 16 ? rd_be32_get(ex->bytes + 12) : 0);
			fail();
		}
	}
}

/* Every example of the document equals what the encoder makes of the table's message. */
static void test_examples_match_encoder(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < nexamples; i++) {
		const struct doc_example *ex = &examples[i];
		const struct entry *e = find_entry(ex->name);
		struct rd_msg m;
		struct rd_buf out;
		int rc;

		if (!e) {
			print_error("%s:%d: example '%s' has no entry in test_protocol_doc.c\n",
				    doc_path, ex->line, ex->name);
			bad++;
			continue;
		}
		rd_msg_init(&m, e->type);
		e->build(&m);
		rd_buf_init(&out, 0);
		rc = rd_msg_frame(&out, &m, e->req_id, 0 /* no compression */);
		if (rc != 0) {
			print_error("example '%s': rd_msg_frame refused the message: %s\n",
				    ex->name, rd_strerror(rc));
			bad++;
		} else if (out.len != ex->n || memcmp(out.data, ex->bytes, ex->n) != 0) {
			print_hex_diff(ex->name, ex->bytes, ex->n, out.data, out.len);
			bad++;
		}
		rd_buf_free(&out);
	}
	assert_int_equal(bad, 0);
}

/* Every table entry has its example in the document. */
static void test_entries_have_examples(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < NENTRIES; i++) {
		if (!find_example(entries[i].name)) {
			print_error("entry '%s' has no <!-- example: %s --> in %s\n",
				    entries[i].name, entries[i].name, doc_path);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* The document's bytes decode: header fields as the table says, payload fields checked,
 * and the decoded message encodes back to the same payload. Example names start with the
 * message's name in lower case. */
static void test_examples_decode(void **state)
{
	(void)state;
	for (size_t i = 0; i < nexamples; i++) {
		const struct doc_example *ex = &examples[i];
		const struct entry *e = find_entry(ex->name);
		struct rd_frame_hdr h;
		struct rd_msg m;
		struct rd_buf out;
		char want[NAME_MAX_LEN];
		size_t base;
		int rc;

		if (!e)
			continue; /* reported by test_examples_match_encoder */
		rc = rd_frame_hdr_decode(ex->bytes, ex->n, RD_MAX_PAYLOAD_DEFAULT, &h);
		if (rc != 0) {
			print_error("example '%s': header refused: %s\n", ex->name,
				    rd_strerror(rc));
			fail();
		}
		assert_int_equal(h.version, RD_PROTO_VERSION);
		assert_int_equal(h.flags, 0);
		assert_int_equal(h.type, e->type);
		assert_int_equal(h.req_id, e->req_id);
		assert_int_equal(h.len, ex->n - RD_FRAME_HEADER_SIZE);
		assert_int_equal(rd_be16_get(ex->bytes + 6), 0); /* reserved */

		assert_non_null(rd_msg_type_name(h.type));
		lower(want, sizeof(want), rd_msg_type_name(h.type));
		base = strcspn(ex->name, "-");
		if (strlen(want) != base || strncmp(ex->name, want, base) != 0) {
			print_error("example '%s' is a %s frame: name it '%s' or '%s-SUFFIX'\n",
				    ex->name, rd_msg_type_name(h.type), want, want);
			fail();
		}

		rc = rd_msg_decode(h.type, ex->bytes + RD_FRAME_HEADER_SIZE, h.len, &m);
		if (rc != 0) {
			print_error("example '%s': payload refused by the decoder: %s\n", ex->name,
				    rd_strerror(rc));
			fail();
		}
		e->check(&m);
		rd_buf_init(&out, 0);
		assert_int_equal(rd_msg_encode(&m, &out), 0);
		assert_int_equal(out.len, h.len);
		assert_memory_equal(out.data, ex->bytes + RD_FRAME_HEADER_SIZE, h.len);
		rd_buf_free(&out);
		rd_msg_clear(&m);
	}
}

/* Every message type the codec knows has at least one example in the document. */
static void test_every_known_type_has_example(void **state)
{
	int bad = 0, known = 0;

	(void)state;
	for (uint32_t t = 0x0001; t <= 0x10FF; t++) {
		int seen = 0;

		if (!rd_msg_known((uint16_t)t))
			continue;
		known++;
		for (size_t i = 0; i < nexamples && !seen; i++)
			seen = examples[i].n >= RD_FRAME_HEADER_SIZE &&
			       rd_be16_get(examples[i].bytes + 4) == t;
		if (!seen) {
			print_error("type 0x%04x %s has no example in %s\n", t,
				    rd_msg_type_name((uint16_t)t) ? rd_msg_type_name((uint16_t)t) :
								    "?",
				    doc_path);
			bad++;
		}
	}
	assert_true(known > 0);
	assert_int_equal(bad, 0);
}

/* The message type table. */
struct type_rows {
	uint8_t seen[0x10000];
	int bad;
};

static void type_row(const char *c1, const char *c2, const char *c4, int lineno, void *u)
{
	struct type_rows *r = u;
	char *end;
	unsigned long t = strtoul(c1, &end, 16);
	const char *name;

	(void)c4;
	if (strncmp(c1, "0x", 2) != 0 || *end != '\0' || t == 0 || t > 0xFFFF) {
		print_error("%s:%d: type table: bad number '%s'\n", doc_path, lineno, c1);
		r->bad++;
		return;
	}
	if (r->seen[t]++) {
		print_error("%s:%d: type table: 0x%04lx listed twice\n", doc_path, lineno, t);
		r->bad++;
	}
	name = rd_msg_type_name((uint16_t)t);
	if (!name || strcmp(name, c2) != 0) {
		print_error(
			"%s:%d: type table: 0x%04lx is '%s' in the document, '%s' in rd_proto.h\n",
			doc_path, lineno, t, c2, name ? name : "(unknown)");
		r->bad++;
	}
	if (!rd_msg_known((uint16_t)t)) {
		print_error("%s:%d: type table: 0x%04lx %s unknown to the codec\n", doc_path,
			    lineno, t, c2);
		r->bad++;
	}
}

static void test_type_table_matches_proto(void **state)
{
	struct type_rows *r = calloc(1, sizeof(*r));
	int rows;

	(void)state;
	assert_non_null(r);
	rows = for_table_rows("types", type_row, r);
	if (rows < 0) {
		print_error("%s: no <!-- table: types --> marker\n", doc_path);
		r->bad++;
	}
	for (uint32_t t = 1; t <= 0xFFFF; t++) {
		if ((rd_msg_type_name((uint16_t)t) || rd_msg_known((uint16_t)t)) && !r->seen[t]) {
			print_error("type 0x%04x %s is missing from the type table of %s\n", t,
				    rd_msg_type_name((uint16_t)t) ? rd_msg_type_name((uint16_t)t) :
								    "?",
				    doc_path);
			r->bad++;
		}
	}
	int bad = r->bad;
	free(r);
	assert_int_equal(bad, 0);
}

/* The error code table. */
struct error_rows {
	uint8_t seen[NERRORS];
	int bad;
};

static void error_row(const char *c1, const char *c2, const char *c4, int lineno, void *u)
{
	struct error_rows *r = u;
	char *end;
	unsigned long code = strtoul(c1, &end, 10);
	size_t i;

	if (*end != '\0' || code == 0 || code > 0xFFFF) {
		print_error("%s:%d: error table: bad code '%s'\n", doc_path, lineno, c1);
		r->bad++;
		return;
	}
	if (strcmp(c4, "yes") != 0 && strcmp(c4, "no") != 0) {
		print_error("%s:%d: error table: 'closes' must be yes or no, not '%s'\n", doc_path,
			    lineno, c4);
		r->bad++;
	}
	for (i = 0; i < NERRORS; i++)
		if (wire_errors[i].code == code)
			break;
	if (i == NERRORS) {
		print_error("%s:%d: error table: code %lu %s is not in rd_proto.h or rdf_proto.h\n",
			    doc_path, lineno, code, c2);
		r->bad++;
		return;
	}
	if (r->seen[i]++) {
		print_error("%s:%d: error table: code %lu listed twice\n", doc_path, lineno, code);
		r->bad++;
	}
	if (strcmp(wire_errors[i].name, c2) != 0) {
		print_error("%s:%d: error table: code %lu is '%s' in the document, RD_E_%s in "
			    "rd_proto.h\n",
			    doc_path, lineno, code, c2, wire_errors[i].name);
		r->bad++;
	}
	if (strcmp(rd_wire_strerror((uint16_t)code), rd_wire_strerror(0xFFFF)) == 0) {
		print_error("error code %lu %s has no text in rd_wire_strerror\n", code, c2);
		r->bad++;
	}
}

static void test_error_table_matches_proto(void **state)
{
	struct error_rows r;
	int rows;

	(void)state;
	memset(&r, 0, sizeof(r));
	rows = for_table_rows("errors", error_row, &r);
	if (rows < 0) {
		print_error("%s: no <!-- table: errors --> marker\n", doc_path);
		r.bad++;
	}
	for (size_t i = 0; i < NERRORS; i++) {
		if (!r.seen[i]) {
			print_error("RD_E_%s (%u) is missing from the error table of %s\n",
				    wire_errors[i].name, wire_errors[i].code, doc_path);
			r.bad++;
		}
	}
	assert_int_equal(r.bad, 0);
}

/* Every ```mermaid block is a sequence diagram. */
static void test_mermaid_blocks_are_sequence_diagrams(void **state)
{
	size_t pos = 0;
	const char *line;
	long len;
	int lineno = 0, blocks = 0, bad = 0;

	(void)state;
	while ((len = next_line(&pos, &line)) >= 0) {
		lineno++;
		if (len < 10 || strncmp(line, "```mermaid", 10) != 0)
			continue;
		blocks++;
		if ((len = next_line(&pos, &line)) < 0 || (lineno++, len < 15) ||
		    strncmp(line, "sequenceDiagram", 15) != 0) {
			print_error("%s:%d: a mermaid block that is not a sequenceDiagram\n",
				    doc_path, lineno);
			bad++;
		}
	}
	assert_true(blocks > 0);
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_examples_are_well_formed),
		cmocka_unit_test(test_examples_match_encoder),
		cmocka_unit_test(test_entries_have_examples),
		cmocka_unit_test(test_examples_decode),
		cmocka_unit_test(test_every_known_type_has_example),
		cmocka_unit_test(test_type_table_matches_proto),
		cmocka_unit_test(test_error_table_matches_proto),
		cmocka_unit_test(test_mermaid_blocks_are_sequence_diagrams),
	};

	/* the file messages are an application's: the codec knows them once registered */
	if (rdf_proto_register() != 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
