/* test_msg.c - the payload codec (rd_msg.h) and the protocol name tables (rd_proto.h).
 *
 * Every known type is built from a sample, encoded, decoded and compared member by member
 * (views and list items by content, everything else bytewise); truncated, oversized,
 * lying, unknown and hostile payloads are fed to the decoder; a few encodings are checked
 * against byte arrays written out by hand from PROTOCOL.md's field rules.
 *
 * With RD_MSG_SEED_DIR set in the environment, the program instead writes one frame per
 * sample into that directory (scripts/make-fuzz-seeds.sh uses it for the fuzz corpus).
 */
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

#define NTYPES_KNOWN 72 /* message types in rd_proto.h */

static const uint8_t token16[RD_TOKEN_SIZE] = { 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
						0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf };
static uint8_t sha[RD_SHA256_SIZE];
static uint8_t blob[300];
static struct rd_p2p_addr addrs_s[2] = { { "192.0.2.7:45679" }, { "[2001:db8::1]:45679" } };

static struct rd_room_entry rooms_s[2] = { { "general", 3 }, { "random", 0 } };
static struct rd_who_entry who_s[3] = { { "alice", 11 }, { "bob", 22 }, { "carol_9", 33 } };
static struct rd_nick_entry except_s[2] = { { "bob" }, { "carol_9" } };
static struct rdf_file_entry files_s[2] = {
	{ "report.pdf", 1000, 111, { 0 }, "alice" },
	{ "caf\xc3\xa9 menu.txt", 0, 222, { 0 }, "" }, /* uploader unknown */
};
/* a key fingerprint in its text form: the 32 bytes 00 01 ... 1f (rd_tls.h) */
#define FP_TEXT "AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT-CQKR-MFYY-DENB-WHA5-DYPQ"
static struct rd_ctl_client clients_s[2] = {
	{ 7, "127.0.0.1", 40000, "alice", "general", 1, 2, 3, 4, "uploading a.pdf 45%", FP_TEXT },
	{ 8, "::1", 40001, "", "", 5, 6, 7, 8, "", "" }, /* not registered yet, no key */
};
/* a client of another server of the cluster (CTL_CLIENTS entry with server set) */
static const char remote_server[] = "10.0.0.2:7000";

static struct rd_bytes bytes_of(const void *p, size_t n)
{
	struct rd_bytes b = { p, n };

	return b;
}

/* A valid message of the given type with a distinct value in every member.
 * Returns 0, or -1 for a type with no sample (which fails the tests that enumerate). */
static int sample(uint16_t type, struct rd_msg *m)
{
	struct rd_str reason = rd_str_c("because \xe2\x9c\x93");

	rd_msg_init(m, type);
	switch (type) {
	case RD_MSG_HELLO:
		m->u.hello = (struct rd_msg_hello){ 1, 2, 0x0000000f, "rdtest/0.1" };
		break;
	case RD_MSG_HELLO_OK:
		m->u.hello_ok =
			(struct rd_msg_hello_ok){ 1, 5, 1u << 20, 30000, 5000, "roomdrop-server" };
		break;
	case RD_MSG_NICK:
		strcpy(m->u.nick.nick, "alice");
		break;
	case RD_MSG_WELCOME:
		m->u.welcome = (struct rd_msg_welcome){ "Alice-2", 42, 1700000000123ull };
		break;
	case RD_MSG_OK:
		m->u.ok.for_type = RD_MSG_JOIN;
		break;
	case RD_MSG_ERROR:
		m->u.error = (struct rd_msg_error){ RD_E_NICK_TAKEN, RD_MSG_NICK,
						    rd_str_c("nickname taken") };
		break;
	case RD_MSG_PING:
	case RD_MSG_PONG:
		m->u.ping.nonce = 0x0102030405060708ull;
		break;
	case RD_MSG_BYE:
	case RD_MSG_SHUTDOWN:
		m->u.bye.reason = reason;
		break;
	case RD_MSG_REDIRECT:
		m->u.redirect = (struct rd_msg_redirect){ "second.example.org", 7001, 1, reason };
		memset(m->u.redirect.fp, 0xcd, sizeof(m->u.redirect.fp));
		break;
	case RD_MSG_ROOM_LIST:
		m->u.room_list = (struct rd_msg_room_list){ 2, rooms_s };
		break;
	case RD_MSG_JOIN:
		strcpy(m->u.room.room, "general");
		break;
	case RD_MSG_WHO:
		strcpy(m->u.room.room, "");
		break;
	case RD_MSG_JOIN_KEY:
		strcpy(m->u.join_key.room, "vault");
		m->u.join_key.key = bytes_of(blob, 16);
		break;
	case RD_MSG_JOINED:
		m->u.joined = (struct rd_msg_joined){ "random", 9 };
		break;
	case RD_MSG_WHO_LIST:
		m->u.who_list = (struct rd_msg_who_list){ "general", 3, who_s };
		break;
	case RD_MSG_SAY:
		m->u.say = (struct rd_msg_say){ RD_KIND_BINARY, bytes_of(blob, 200) };
		break;
	case RD_MSG_TELL:
		m->u.tell = (struct rd_msg_tell){ "bob", RD_KIND_TEXT, bytes_of("hi bob", 6) };
		break;
	case RD_MSG_ROOM_MSG:
		m->u.room_msg = (struct rd_msg_room_msg){ "general", "alice", RD_KIND_TEXT, 99,
							  bytes_of("hello", 5) };
		break;
	case RD_MSG_PRIVATE_MSG:
		m->u.private_msg = (struct rd_msg_private_msg){ "carol", RD_KIND_BINARY, 98,
								bytes_of(blob, 3) };
		break;
	case RD_MSG_PRESENCE:
		m->u.presence = (struct rd_msg_presence){ RD_PRESENCE_KICKED, "dave", "random", 97,
							  reason };
		break;
	case RD_MSG_BROADCAST:
		m->u.broadcast =
			(struct rd_msg_broadcast){ RD_SCOPE_ROOM, "general", 96, rd_str_c("up") };
		break;
	case RD_MSG_KICKED:
		m->u.kicked = (struct rd_msg_kicked){ "server", reason };
		break;
	case RD_MSG_ROOM_DIRECT:
		m->u.room_direct.on = 1;
		break;
	case RD_MSG_ROOM_MODE:
		m->u.room_mode = (struct rd_msg_room_mode){ "general", 1, "alice" };
		break;
	case RD_MSG_PRESENCE_SUMMARY:
		m->u.presence_summary = (struct rd_msg_presence_summary){ "general", 312, 4, 1000,
									  1767225600000ull };
		break;
	case RD_MSG_SAY_EXCEPT:
		m->u.say_except = (struct rd_msg_say_except){ RD_KIND_TEXT, bytes_of("hi all", 6),
							      2, except_s };
		break;
	case RD_MSG_OFFER:
		m->u.offer = (struct rd_msg_offer){ RD_OFFER_TO_USER, "bob", RDF_OFFER_APP_FILES,
						    60000, bytes_of(blob, 77) };
		break;
	case RD_MSG_OFFER_PENDING:
		m->u.offer_pending = (struct rd_msg_offer_pending){ 5, 59000, 3 };
		break;
	case RD_MSG_OFFER_IN:
		m->u.offer_in = (struct rd_msg_offer_in){ 6,     "alice",   0x1234,
							  58000, "general", bytes_of(blob, 1) };
		break;
	case RD_MSG_OFFER_ANSWER:
		m->u.offer_answer = (struct rd_msg_offer_answer){ 7, RD_ANSWER_HOLD, 30000, reason,
								  bytes_of(blob, 9) };
		break;
	case RD_MSG_OFFER_ANSWERED:
		m->u.offer_answered =
			(struct rd_msg_offer_answered){ 7,    "bob",  RD_ANSWER_GONE,
							1234, reason, bytes_of(blob, 5) };
		break;
	case RD_MSG_OFFER_CANCEL:
	case RD_MSG_P2P_READY:
		m->u.offer_id.offer_id = 0x01020304;
		break;
	case RD_MSG_OFFER_RESULT:
		m->u.offer_result =
			(struct rd_msg_offer_result){ 8, RD_OFFER_EXPIRED, "bob", reason, 2 };
		break;
	case RD_MSG_OFFER_DATA:
		m->u.offer_data = (struct rd_msg_offer_data){ 9, 1ull << 40, bytes_of(blob, 300) };
		break;
	case RD_MSG_OFFER_END:
		m->u.offer_end = (struct rd_msg_offer_end){ 10, 3 };
		break;
	case RD_MSG_P2P_LISTEN:
		m->u.p2p_listen = (struct rd_msg_p2p_listen){ 11, 45678, 2, addrs_s };
		break;
	case RD_MSG_P2P_INTRO:
		m->u.p2p_intro = (struct rd_msg_p2p_intro){ 12, RD_P2P_FOLLOWER, "bob" };
		memset(m->u.p2p_intro.fp, 0x5a, sizeof(m->u.p2p_intro.fp));
		m->u.p2p_intro.naddrs = 1;
		m->u.p2p_intro.addrs = addrs_s;
		memcpy(m->u.p2p_intro.token, token16, sizeof(token16));
		break;
	case RD_MSG_P2P_HELLO:
		m->u.p2p_hello.offer_id = 13;
		memcpy(m->u.p2p_hello.token, token16, sizeof(token16));
		strcpy(m->u.p2p_hello.nick, "alice");
		break;
	case RD_MSG_P2P_FAILED:
		m->u.p2p_failed = (struct rd_msg_p2p_failed){ 14, reason };
		break;
	case RD_MSG_CTL_CLIENTS:
		m->u.ctl_clients = (struct rd_msg_ctl_clients){ 2, clients_s };
		break;
	case RD_MSG_CTL_KICK:
		m->u.ctl_kick = (struct rd_msg_ctl_kick){ "bob", reason };
		break;
	case RD_MSG_CTL_RELEASE:
		m->u.ctl_release = (struct rd_msg_ctl_release){ "alice" };
		break;
	case RD_MSG_CTL_OP:
		m->u.ctl_op = (struct rd_msg_ctl_op){ "general", "alice", 1 };
		break;
	case RD_MSG_CTL_ADMIT:
		memcpy(m->u.ctl_admit.fp, sha, sizeof(m->u.ctl_admit.fp));
		m->u.ctl_admit.grant = 1;
		break;
	case RD_MSG_CTL_INVITE:
		m->u.ctl_invite = (struct rd_msg_ctl_invite){ 3, 3600000 };
		break;
	case RD_MSG_CTL_INVITATION:
		snprintf(m->u.ctl_invitation.id, sizeof(m->u.ctl_invitation.id), "0a1b2c3d");
		memcpy(m->u.ctl_invitation.secret, sha, RD_INVITE_SECRET);
		m->u.ctl_invitation.expires_ms = 1700000000000ull;
		break;
	case RD_MSG_CTL_UNINVITE:
		snprintf(m->u.ctl_uninvite.id, sizeof(m->u.ctl_uninvite.id), "0a1b2c3d");
		break;
	case RD_MSG_AUTH:
		m->u.auth = (struct rd_msg_auth){ RD_AUTH_PASSWORD, bytes_of(blob, 12) };
		break;
	case RD_MSG_CTL_BROADCAST:
		m->u.ctl_broadcast =
			(struct rd_msg_ctl_broadcast){ RD_SCOPE_USER, "bob", rd_str_c("hey") };
		break;
	case RD_MSG_CTL_SERVER_INFO:
		m->u.ctl_server_info = (struct rd_msg_ctl_server_info){
			"roomdrop-server/9.9", "[::1]:7878", 1, FP_TEXT, 21, 19, 4, 1ull << 36
		};
		break;
	case RDF_MSG_PUT:
		strcpy(rdf_body(m)->put.name, "report.pdf");
		rdf_body(m)->put.size = 123456789;
		memcpy(rdf_body(m)->put.sha256, sha, sizeof(sha));
		rdf_body(m)->put.mode = RDF_PUT_RENAME;
		break;
	case RDF_MSG_PUT_READY:
		rdf_body(m)->put_ready = (struct rdf_msg_put_ready){ 15, 4096, "report (1).pdf" };
		break;
	case RDF_MSG_PUT_CHUNK:
	case RDF_MSG_GET_CHUNK:
		rdf_body(m)->chunk = (struct rdf_msg_chunk){ 16, 8192, bytes_of(blob, 250) };
		break;
	case RDF_MSG_PUT_END:
	case RDF_MSG_GET_END:
		rdf_body(m)->xfer.xfer_id = 17;
		break;
	case RDF_MSG_PUT_SEAL:
		rdf_body(m)->put_seal.xfer_id = 17;
		memcpy(rdf_body(m)->put_seal.sha256, sha, sizeof(sha));
		break;
	case RDF_MSG_PUT_DONE:
		rdf_body(m)->put_done = (struct rdf_msg_put_done){ 18, "report.pdf", 123456789 };
		memcpy(rdf_body(m)->put_done.sha256, sha, sizeof(sha));
		break;
	case RDF_MSG_GET:
		rdf_body(m)->get = (struct rdf_msg_get){ "report.pdf", 65536 };
		break;
	case RDF_MSG_GET_BEGIN:
		rdf_body(m)->get_begin =
			(struct rdf_msg_get_begin){ 19, "report.pdf", 123456789, 65536, 5555 };
		memcpy(rdf_body(m)->get_begin.sha256, sha, sizeof(sha));
		break;
	case RDF_MSG_FILE_LIST:
		rdf_body(m)->file_list = (struct rdf_msg_file_list){ "general", 2, files_s, 1 };
		break;
	case RDF_MSG_DELETE:
		strcpy(rdf_body(m)->name.name, "old.txt");
		break;
	case RDF_MSG_FILE_NOTICE:
		rdf_body(m)->file_notice = (struct rdf_msg_file_notice){ RDF_FILE_REPLACED,
									 "general", "alice",
									 "report.pdf", 77 };
		break;
	case RDF_MSG_XFER_CANCEL:
		rdf_body(m)->xfer_cancel =
			(struct rdf_msg_xfer_cancel){ 20, RDF_E_HASH_MISMATCH, reason };
		break;
	case RDF_MSG_LIST:
		strcpy(rdf_body(m)->list.after, "report.pdf");
		break;
	case RD_MSG_ROOMS:
	case RD_MSG_LEAVE:
	case RD_MSG_CTL_LIST:
	case RD_MSG_CTL_INFO:
		break;
	default:
		return -1;
	}
	return 0;
}

/* The one rd_str / rd_bytes member of a message, if it has one (both have the layout
 * { pointer, size_t }, so they are compared through struct rd_bytes). */
static struct rd_bytes *view_of(struct rd_msg *m)
{
	void *v = NULL;

	switch (m->type) {
	case RD_MSG_ERROR:
		v = &m->u.error.text;
		break;
	case RD_MSG_BYE:
	case RD_MSG_SHUTDOWN:
		v = &m->u.bye.reason;
		break;
	case RD_MSG_REDIRECT:
		v = &m->u.redirect.reason;
		break;
	case RD_MSG_AUTH:
		v = &m->u.auth.secret;
		break;
	case RD_MSG_JOIN_KEY:
		v = &m->u.join_key.key;
		break;
	case RD_MSG_SAY:
		v = &m->u.say.data;
		break;
	case RD_MSG_TELL:
		v = &m->u.tell.data;
		break;
	case RD_MSG_ROOM_MSG:
		v = &m->u.room_msg.data;
		break;
	case RD_MSG_PRIVATE_MSG:
		v = &m->u.private_msg.data;
		break;
	case RD_MSG_PRESENCE:
		v = &m->u.presence.reason;
		break;
	case RD_MSG_BROADCAST:
		v = &m->u.broadcast.text;
		break;
	case RD_MSG_KICKED:
		v = &m->u.kicked.reason;
		break;
	case RD_MSG_SAY_EXCEPT:
		v = &m->u.say_except.data;
		break;
	case RD_MSG_OFFER:
		v = &m->u.offer.descriptor;
		break;
	case RD_MSG_OFFER_IN:
		v = &m->u.offer_in.descriptor;
		break;
	case RD_MSG_OFFER_ANSWER:
		v = &m->u.offer_answer.data;
		break;
	case RD_MSG_OFFER_ANSWERED:
		v = &m->u.offer_answered.data;
		break;
	case RD_MSG_OFFER_RESULT:
		v = &m->u.offer_result.reason;
		break;
	case RD_MSG_OFFER_DATA:
		v = &m->u.offer_data.data;
		break;
	case RD_MSG_P2P_FAILED:
		v = &m->u.p2p_failed.reason;
		break;
	case RD_MSG_CTL_KICK:
		v = &m->u.ctl_kick.reason;
		break;
	case RD_MSG_CTL_BROADCAST:
		v = &m->u.ctl_broadcast.text;
		break;
	case RDF_MSG_PUT_CHUNK:
	case RDF_MSG_GET_CHUNK:
		v = &rdf_body(m)->chunk.data;
		break;
	case RDF_MSG_XFER_CANCEL:
		v = &rdf_body(m)->xfer_cancel.reason;
		break;
	}
	return v;
}

/* The list of a message, if it has one: count, items pointer, entry size. */
static int list_of(struct rd_msg *m, uint32_t **count, void ***items, size_t *size)
{
	switch (m->type) {
	case RD_MSG_ROOM_LIST:
		*count = &m->u.room_list.count;
		*items = (void **)&m->u.room_list.items;
		*size = sizeof(struct rd_room_entry);
		return 1;
	case RD_MSG_WHO_LIST:
		*count = &m->u.who_list.count;
		*items = (void **)&m->u.who_list.items;
		*size = sizeof(struct rd_who_entry);
		return 1;
	case RD_MSG_CTL_CLIENTS:
		*count = &m->u.ctl_clients.count;
		*items = (void **)&m->u.ctl_clients.items;
		*size = sizeof(struct rd_ctl_client);
		return 1;
	case RD_MSG_SAY_EXCEPT:
		*count = &m->u.say_except.count;
		*items = (void **)&m->u.say_except.except;
		*size = sizeof(struct rd_nick_entry);
		return 1;
	case RD_MSG_P2P_LISTEN:
		*count = &m->u.p2p_listen.naddrs;
		*items = (void **)&m->u.p2p_listen.addrs;
		*size = sizeof(struct rd_p2p_addr);
		return 1;
	case RD_MSG_P2P_INTRO:
		*count = &m->u.p2p_intro.naddrs;
		*items = (void **)&m->u.p2p_intro.addrs;
		*size = sizeof(struct rd_p2p_addr);
		return 1;
	case RDF_MSG_FILE_LIST:
		*count = &rdf_body(m)->file_list.count;
		*items = (void **)&rdf_body(m)->file_list.items;
		*size = sizeof(struct rdf_file_entry);
		return 1;
	}
	return 0;
}

/* Every member equal: the view and list items by content, the rest bytewise (both
 * messages start zeroed, so unused bytes compare equal too). */
static void assert_msg_equal(const struct rd_msg *want, const struct rd_msg *got)
{
	struct rd_msg a = *want, b = *got;
	struct rd_bytes *va = view_of(&a), *vb = view_of(&b);
	uint32_t *ca = NULL, *cb = NULL;
	void **ia = NULL, **ib = NULL;
	size_t sz = 0;

	assert_int_equal(a.type, b.type);
	/* the answers carry a reason and application bytes: the reason is compared here */
	struct rd_str *ra = a.type == RD_MSG_OFFER_ANSWER   ? &a.u.offer_answer.reason :
			    a.type == RD_MSG_OFFER_ANSWERED ? &a.u.offer_answered.reason :
							      NULL;
	if (ra) {
		struct rd_str *rb = a.type == RD_MSG_OFFER_ANSWER ? &b.u.offer_answer.reason :
								    &b.u.offer_answered.reason;
		assert_int_equal(ra->n, rb->n);
		if (ra->n)
			assert_memory_equal(ra->p, rb->p, ra->n);
		ra->p = rb->p = NULL;
	}
	if (va) {
		assert_int_equal(va->n, vb->n);
		if (va->n)
			assert_memory_equal(va->p, vb->p, va->n);
		va->p = vb->p = NULL;
	}
	if (list_of(&a, &ca, &ia, &sz)) {
		assert_true(list_of(&b, &cb, &ib, &sz));
		assert_int_equal(*ca, *cb);
		if (*ca)
			assert_memory_equal(*ia, *ib, *ca * sz);
		*ia = *ib = NULL;
	}
	a.decoded_items_ = b.decoded_items_ = 0;
	assert_memory_equal(&a, &b, sizeof(a));
}

static void assert_all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		assert_int_equal(b[i], 0);
}

/* All known types, found by asking the codec about every number. */
static uint16_t known[0x100];
static size_t nknown;

static int setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(sha); i++)
		sha[i] = (uint8_t)(0xc0 + i);
	memcpy(files_s[0].sha256, sha, sizeof(sha));
	nknown = 0;
	for (uint32_t t = 0; t <= 0xffff; t++)
		if (rd_msg_known((uint16_t)t) && nknown < sizeof(known) / sizeof(known[0]))
			known[nknown++] = (uint16_t)t;
	return 0;
}

static void encode_sample(uint16_t type, struct rd_buf *out)
{
	struct rd_msg m;

	assert_int_equal(sample(type, &m), 0);
	rd_buf_init(out, 0);
	assert_int_equal(rd_msg_encode(&m, out), 0);
}

/* ---- round trips ------------------------------------------------------------------------ */

static void test_every_proto_type_is_known_and_named(void **state)
{
	struct rd_msg m;

	(void)state;
	assert_int_equal(nknown, NTYPES_KNOWN);
	for (size_t i = 0; i < nknown; i++) {
		assert_non_null(rd_msg_type_name(known[i]));
		assert_int_equal(sample(known[i], &m), 0);
	}
	assert_string_equal(rd_msg_type_name(RD_MSG_HELLO), "HELLO");
	assert_string_equal(rd_msg_type_name(RDF_MSG_XFER_CANCEL), "XFER_CANCEL");
	assert_string_equal(rd_msg_type_name(RD_MSG_P2P_INTRO), "P2P_INTRO");
	assert_null(rd_msg_type_name(0));
	assert_null(rd_msg_type_name(0x1100));
}

static void test_every_type_round_trips(void **state)
{
	struct rd_msg m, d;
	struct rd_buf b, b2;

	(void)state;
	for (size_t i = 0; i < nknown; i++) {
		encode_sample(known[i], &b);
		assert_int_equal(sample(known[i], &m), 0);
		assert_int_equal(rd_msg_decode(known[i], b.data, b.len, &d), 0);
		assert_msg_equal(&m, &d);
		/* the decoded message encodes to the same bytes */
		rd_buf_init(&b2, 0);
		assert_int_equal(rd_msg_encode(&d, &b2), 0);
		assert_int_equal(b2.len, b.len);
		if (b.len)
			assert_memory_equal(b2.data, b.data, b.len);
		rd_msg_clear(&d);
		assert_all_zero(&d, sizeof(d));
		rd_buf_free(&b2);
		rd_buf_free(&b);
	}
}

static void test_empty_types_have_empty_payload(void **state)
{
	static const uint16_t empty[] = { RD_MSG_ROOMS, RD_MSG_LEAVE, RD_MSG_CTL_LIST,
					  RD_MSG_CTL_INFO };
	struct rd_buf b;
	struct rd_msg d;

	(void)state;
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		encode_sample(empty[i], &b);
		assert_int_equal(b.len, 0);
		assert_int_equal(rd_msg_decode(empty[i], NULL, 0, &d), 0);
		assert_int_equal(d.type, empty[i]);
		rd_buf_free(&b);
	}
}

/* ---- hand-derived encodings ------------------------------------------------------------- */

static void assert_encodes_to(const struct rd_msg *m, const uint8_t *want, size_t n)
{
	struct rd_buf b;
	struct rd_msg d;

	rd_buf_init(&b, 0);
	assert_int_equal(rd_msg_encode(m, &b), 0);
	assert_int_equal(b.len, n);
	assert_memory_equal(b.data, want, n);
	/* and the literal decodes back to the message */
	assert_int_equal(rd_msg_decode(m->type, want, n, &d), 0);
	assert_msg_equal(m, &d);
	rd_msg_clear(&d);
	rd_buf_free(&b);
}

static void test_hello_bytes(void **state)
{
	static const uint8_t want[] = {
		0x00, 0x01,             /* version_min 1 */
		0x00, 0x02,             /* version_max 2 */
		0x00, 0x00, 0x00, 0x0f, /* features */
		0x00, 0x0a, 'r',  'd',  't', 'e', 's', 't', '/', '0', '.', '1',
	};
	struct rd_msg m;

	(void)state;
	sample(RD_MSG_HELLO, &m);
	assert_encodes_to(&m, want, sizeof(want));
}

static void test_room_msg_bytes(void **state)
{
	static const uint8_t want[] = {
		0x00, 0x07, 'g',  'e',  'n', 'e', 'r', 'a', 'l', /* room */
		0x00, 0x05, 'a',  'l',  'i', 'c', 'e',           /* from */
		0x00,                                            /* kind TEXT */
		0,    0,    0,    0,    0,   0,   0,   99,       /* time_ms */
		0x00, 0x00, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', /* data: bytes, u32 length */
	};
	struct rd_msg m;

	(void)state;
	sample(RD_MSG_ROOM_MSG, &m);
	assert_encodes_to(&m, want, sizeof(want));
}

static void test_who_list_bytes(void **state)
{
	static const uint8_t want[] = {
		0x00, 0x07, 'g',  'e',  'n', 'e', 'r', 'a', 'l', /* room */
		0x00, 0x00, 0x00, 0x03,                          /* count */
		0x00, 0x05, 'a',  'l',  'i', 'c', 'e', 0,   0,   0, 0, 0, 0,  0,    11,
		0x00, 0x03, 'b',  'o',  'b', 0,   0,   0,   0,   0, 0, 0, 22, 0x00, 0x07,
		'c',  'a',  'r',  'o',  'l', '_', '9', 0,   0,   0, 0, 0, 0,  0,    33,
	};
	struct rd_msg m;

	(void)state;
	sample(RD_MSG_WHO_LIST, &m);
	assert_encodes_to(&m, want, sizeof(want));
}

static void test_p2p_intro_bytes(void **state)
{
	static const uint8_t want[] = {
		0x00, 0x00, 0x00, 0x0c,      /* offer_id 12 */
		0x02,                        /* role FOLLOWER */
		0x00, 0x03, 'b',  'o',  'b', /* peer */
		0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
		0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
		0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, /* fp */
		0x00, 0x00, 0x00, 0x01,                                     /* one address */
		0x00, 0x0f, '1',  '9',  '2',  '.',  '0',  '.',  '2',  '.',  '7',
		':',  '4',  '5',  '6',  '7',  '9',  0xa0, 0xa1, 0xa2, 0xa3, 0xa4,
		0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, /* token */
	};
	struct rd_msg m;

	(void)state;
	sample(RD_MSG_P2P_INTRO, &m);
	assert_encodes_to(&m, want, sizeof(want));
}

static void test_frame_bytes_and_same_as_frame_append(void **state)
{
	static const uint8_t want[] = {
		'R',  'D',  0x01, 0x00, /* magic, version, flags */
		0x00, 0x07, 0x00, 0x00, /* type PING, reserved */
		0x00, 0x00, 0x01, 0x02, /* request id 258 */
		0x00, 0x00, 0x00, 0x08, /* length */
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
	};
	struct rd_buf b, p, f;
	struct rd_msg m;

	(void)state;
	sample(RD_MSG_PING, &m);
	rd_buf_init(&b, 0);
	assert_int_equal(rd_buf_put(&b, "xy", 2), 0); /* appends after what is there */
	assert_int_equal(rd_msg_frame(&b, &m, 258, 0), 0);
	assert_int_equal(b.len, 2 + sizeof(want));
	assert_memory_equal(b.data + 2, want, sizeof(want));
	rd_buf_free(&b);

	/* for every type, the same bytes as encode + rd_frame_append */
	for (size_t i = 0; i < nknown; i++) {
		encode_sample(known[i], &p);
		sample(known[i], &m);
		rd_buf_init(&f, 0);
		rd_buf_init(&b, 0);
		assert_int_equal(rd_frame_append(&f, known[i], 77, p.data, p.len, 0), 0);
		assert_int_equal(rd_msg_frame(&b, &m, 77, 0), 0);
		assert_int_equal(b.len, f.len);
		assert_memory_equal(b.data, f.data, f.len);
		rd_buf_free(&f);
		rd_buf_free(&b);
		rd_buf_free(&p);
	}
}

static void test_frame_compressed_reads_back(void **state)
{
	struct rd_frame_reader *r = NULL;
	struct rd_frame fr;
	struct rd_msg m, d;
	struct rd_buf b;
	char text[4000];

	(void)state;
	memset(text, 'a', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	rd_msg_init(&m, RD_MSG_BROADCAST);
	m.u.broadcast.scope = RD_SCOPE_ALL;
	m.u.broadcast.text = rd_str_c(text);
	rd_buf_init(&b, 0);
	assert_int_equal(rd_msg_frame(&b, &m, 5, RD_FRAME_COMPRESS), 0);
	assert_true(b.len < 1000); /* it was compressed */
	assert_int_equal(rd_frame_reader_new(RD_MAX_PAYLOAD_DEFAULT, &r), 0);
	assert_int_equal(rd_frame_reader_feed(r, b.data, b.len), 0);
	assert_int_equal(rd_frame_reader_next(r, &fr), 0);
	assert_int_equal(fr.hdr.type, RD_MSG_BROADCAST);
	assert_int_equal(fr.hdr.req_id, 5);
	assert_int_equal(rd_msg_decode(fr.hdr.type, fr.payload, fr.len, &d), 0);
	assert_msg_equal(&m, &d);
	rd_frame_reader_free(r);
	rd_buf_free(&b);
}

static void test_frame_refused_leaves_buffer_alone(void **state)
{
	struct rd_msg m;
	struct rd_buf b;

	(void)state;
	rd_msg_init(&m, RD_MSG_NICK);
	strcpy(m.u.nick.nick, "no spaces");
	rd_buf_init(&b, 0);
	assert_int_equal(rd_buf_put(&b, "abc", 3), 0);
	assert_int_equal(rd_msg_frame(&b, &m, 1, 0), RD_ERR_INVAL);
	assert_int_equal(rd_msg_frame(&b, &m, 1, RD_FRAME_COMPRESS), RD_ERR_INVAL);
	assert_int_equal(b.len, 3);
	rd_buf_free(&b);
}

/* ---- truncation, trailing bytes, unknown types ------------------------------------------- */

static void test_every_truncation_is_malformed(void **state)
{
	struct rd_buf b;
	struct rd_msg d;

	(void)state;
	for (size_t i = 0; i < nknown; i++) {
		encode_sample(known[i], &b);
		for (size_t cut = 0; cut < b.len; cut++) {
			/* an exact-size copy, so that a sanitizer sees any read past the end */
			uint8_t *p = malloc(cut ? cut : 1);

			assert_non_null(p);
			memcpy(p, b.data, cut);
			assert_int_equal(rd_msg_decode(known[i], p, cut, &d), RD_ERR_MALFORMED);
			assert_all_zero(&d, sizeof(d));
			free(p);
		}
		rd_buf_free(&b);
	}
}

static void test_trailing_bytes_are_ignored(void **state)
{
	struct rd_msg m, d;
	struct rd_buf b;

	(void)state;
	for (size_t i = 0; i < nknown; i++) {
		encode_sample(known[i], &b);
		assert_int_equal(rd_buf_put(&b, "\xff\x00\x01future", 9), 0);
		sample(known[i], &m);
		assert_int_equal(rd_msg_decode(known[i], b.data, b.len, &d), 0);
		assert_msg_equal(&m, &d);
		rd_msg_clear(&d);
		rd_buf_free(&b);
	}
}

static void test_unknown_type_is_refused(void **state)
{
	static const uint16_t unknown[] = { 0x0000, 0x000d, 0x0018, 0x0045, 0x1000,
					    0x1010, 0x1100, 0x7fff, 0x8000, 0xffff };
	struct rd_msg m, d;
	struct rd_buf b;

	(void)state;
	rd_buf_init(&b, 0);
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		assert_false(rd_msg_known(unknown[i]));
		assert_int_equal(rd_msg_decode(unknown[i], (const uint8_t *)"abc", 3, &d),
				 RD_ERR_UNKNOWN_TYPE);
		rd_msg_init(&m, unknown[i]);
		assert_int_equal(rd_msg_encode(&m, &b), RD_ERR_UNKNOWN_TYPE);
		assert_int_equal(rd_msg_frame(&b, &m, 0, 0), RD_ERR_UNKNOWN_TYPE);
		assert_int_equal(b.len, 0);
	}
	rd_buf_free(&b);
}

/* ---- strict encoder ------------------------------------------------------------------------ */

/* Encoding fails with RD_ERR_INVAL and leaves the buffer as it was. */
static void assert_refused(const struct rd_msg *m)
{
	struct rd_buf b;

	rd_buf_init(&b, 0);
	assert_int_equal(rd_buf_put(&b, "keep", 4), 0);
	assert_int_equal(rd_msg_encode(m, &b), RD_ERR_INVAL);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, "keep", 4);
	rd_buf_free(&b);
}

static void assert_encodes(const struct rd_msg *m)
{
	struct rd_buf b;

	rd_buf_init(&b, 0);
	assert_int_equal(rd_msg_encode(m, &b), 0);
	rd_buf_free(&b);
}

static void test_encoder_refuses_oversized_fields(void **state)
{
	static char big[RD_CHUNK_SIZE + 2];
	struct rd_msg m;

	(void)state;
	memset(big, 'a', sizeof(big) - 1);

	/* char arrays: exactly the limit passes; an unterminated array is refused */
	sample(RD_MSG_NICK, &m);
	memset(m.u.nick.nick, 'a', RD_NICK_MAX);
	assert_encodes(&m);
	memset(m.u.nick.nick, 'a', sizeof(m.u.nick.nick));
	assert_refused(&m);
	sample(RD_MSG_HELLO, &m);
	memset(m.u.hello.software, 's', sizeof(m.u.hello.software));
	assert_refused(&m);
	sample(RDF_MSG_DELETE, &m);
	memset(rdf_body(&m)->name.name, 'f', RD_FILENAME_MAX);
	assert_encodes(&m);
	memset(rdf_body(&m)->name.name, 'f', sizeof(rdf_body(&m)->name.name));
	assert_refused(&m);
	sample(RD_MSG_CTL_CLIENTS, &m);
	memset(clients_s[1].activity, 'x', sizeof(clients_s[1].activity));
	assert_refused(&m);
	clients_s[1].activity[0] = '\0';
	assert_encodes(&m);
	memset(clients_s[1].fingerprint, 'K', sizeof(clients_s[1].fingerprint));
	assert_refused(&m);
	clients_s[1].fingerprint[0] = '\0';
	assert_encodes(&m);
	strcpy(clients_s[1].server, remote_server);
	assert_encodes(&m);
	memset(clients_s[1].server, 'h', sizeof(clients_s[1].server)); /* no room for its NUL */
	assert_refused(&m);
	clients_s[1].server[0] = '\0';
	sample(RD_MSG_CTL_SERVER_INFO, &m);
	memset(m.u.ctl_server_info.fingerprint, 'K', sizeof(m.u.ctl_server_info.fingerprint));
	assert_refused(&m);
	m.u.ctl_server_info.fingerprint[0] = '\0'; /* plaintext */
	assert_encodes(&m);
	m.u.ctl_server_info.listen[0] = '\0';
	assert_refused(&m);

	/* reasons and texts */
	sample(RD_MSG_BYE, &m);
	m.u.bye.reason = (struct rd_str){ big, RD_REASON_MAX };
	assert_encodes(&m);
	m.u.bye.reason.n++;
	assert_refused(&m);
	sample(RD_MSG_ERROR, &m);
	m.u.error.text = (struct rd_str){ big, RD_TEXT_MAX };
	assert_encodes(&m);
	m.u.error.text.n++;
	assert_refused(&m);

	/* byte fields */
	sample(RD_MSG_SAY, &m);
	m.u.say.data = bytes_of(big, RD_CHAT_MAX);
	assert_encodes(&m);
	m.u.say.data.n++;
	assert_refused(&m);
	sample(RD_MSG_OFFER, &m);
	m.u.offer.descriptor = bytes_of(big, RD_DESCRIPTOR_MAX + 1);
	assert_refused(&m);
	sample(RDF_MSG_PUT_CHUNK, &m);
	rdf_body(&m)->chunk.data = bytes_of(big, RD_CHUNK_SIZE);
	assert_encodes(&m);
	rdf_body(&m)->chunk.data.n++;
	assert_refused(&m);

	/* a view with a length but no bytes, and text with a NUL in it */
	sample(RD_MSG_TELL, &m);
	m.u.tell.data = bytes_of(NULL, 3);
	assert_refused(&m);
	sample(RD_MSG_KICKED, &m);
	m.u.kicked.reason = (struct rd_str){ "a\0b", 3 };
	assert_refused(&m);
	/* a list with a count but no items */
	sample(RD_MSG_ROOM_LIST, &m);
	m.u.room_list.items = NULL;
	assert_refused(&m);
}

/* Direct mode (PROTOCOL.md 14.5): a SAY_EXCEPT count the payload cannot hold is
 * malformed; the encoder wants nicknames in it; ROOM_MODE's `by` may be empty (the
 * server) but its room not. */
static void test_direct_mode_rows(void **state)
{
	static const uint8_t lying[] = { 0x00, 0x00, 0x00, 0x00, 0x00, /* kind, data "" */
					 0xff, 0xff, 0xff, 0xff,       /* count 2^32-1 */
					 0x00, 0x03, 'b',  'o',  'b' };
	static const uint8_t bad_name[] = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
					    0x00, 0x01, 0x00, 0x03, 'b',  ' ',  'b' };
	struct rd_msg m, d;
	struct rd_buf b;

	(void)state;
	assert_int_equal(rd_msg_decode(RD_MSG_SAY_EXCEPT, lying, sizeof(lying), &d),
			 RD_ERR_MALFORMED);
	/* the decoder is lax on names (a name that is no nickname matches no member) */
	assert_int_equal(rd_msg_decode(RD_MSG_SAY_EXCEPT, bad_name, sizeof(bad_name), &d), 0);
	assert_int_equal(d.u.say_except.count, 1);
	assert_string_equal(d.u.say_except.except[0].nick, "b b");
	rd_msg_clear(&d);
	sample(RD_MSG_ROOM_MODE, &m);
	m.u.room_mode.by[0] = '\0';
	rd_buf_init(&b, 0);
	assert_int_equal(rd_msg_encode(&m, &b), 0);
	assert_int_equal(rd_msg_decode(RD_MSG_ROOM_MODE, b.data, b.len, &d), 0);
	assert_string_equal(d.u.room_mode.by, "");
	rd_buf_free(&b);
	m.u.room_mode.room[0] = '\0';
	assert_refused(&m);
	sample(RD_MSG_SAY_EXCEPT, &m);
	strcpy(except_s[1].nick, "no way");
	assert_refused(&m);
	strcpy(except_s[1].nick, "carol_9");
}

static void test_encoder_refuses_bad_names(void **state)
{
	struct rd_msg m;

	(void)state;
	sample(RD_MSG_NICK, &m);
	strcpy(m.u.nick.nick, "");
	assert_refused(&m);
	strcpy(m.u.nick.nick, "al ice");
	assert_refused(&m);
	strcpy(m.u.nick.nick, "server"); /* reserved: nobody may ask for it */
	assert_refused(&m);
	sample(RD_MSG_KICKED, &m); /* ...but the server kicks under that name */
	assert_encodes(&m);
	strcpy(m.u.kicked.by, "-dash");
	assert_refused(&m);

	sample(RD_MSG_JOIN, &m);
	strcpy(m.u.room.room, "");
	assert_refused(&m);
	strcpy(m.u.room.room, "a/b");
	assert_refused(&m);
	rd_msg_init(&m, RD_MSG_WHO); /* "" = my room */
	assert_encodes(&m);
	strcpy(m.u.room.room, "no way");
	assert_refused(&m);

	sample(RDF_MSG_PUT, &m);
	strcpy(rdf_body(&m)->put.name, "../etc/passwd");
	assert_refused(&m);
	strcpy(rdf_body(&m)->put.name, "..");
	assert_refused(&m);
	strcpy(rdf_body(&m)->put.name, "a\x01.txt");
	assert_refused(&m);
	strcpy(rdf_body(&m)->put.name, "bad\xc3(utf8");
	assert_refused(&m);

	sample(RDF_MSG_FILE_LIST, &m);
	strcpy(files_s[0].name, "x/y");
	assert_refused(&m);
	strcpy(files_s[0].name, "report.pdf");
	strcpy(files_s[0].uploader, "not a nick");
	assert_refused(&m);
	strcpy(files_s[0].uploader, "alice");
	assert_encodes(&m);

	sample(RD_MSG_ROOM_MSG, &m);
	strcpy(m.u.room_msg.from, "");
	assert_refused(&m);
	/* where PROTOCOL.md allows "" (0..32), and where a host must be given (1..255) */
	sample(RD_MSG_OFFER_RESULT, &m);
	strcpy(m.u.offer_result.peer, "");
	assert_encodes(&m);
	sample(RDF_MSG_FILE_NOTICE, &m);
	strcpy(rdf_body(&m)->file_notice.nick, "");
	assert_encodes(&m);
	strcpy(rdf_body(&m)->file_notice.room, "");
	assert_refused(&m);
	sample(RD_MSG_PRESENCE, &m);
	strcpy(m.u.presence.room, "");
	assert_encodes(&m);
	strcpy(m.u.presence.nick, "");
	assert_refused(&m);
	sample(RD_MSG_REDIRECT, &m);
	strcpy(m.u.redirect.host, "");
	assert_refused(&m);
	sample(RD_MSG_REDIRECT, &m);
	m.u.redirect.temporary = 2; /* 0 or 1 only */
	assert_refused(&m);
	sample(RD_MSG_REDIRECT, &m);
	m.u.redirect.port = 0; /* a u16 like any: the client refuses port 0, not the codec */
	assert_encodes(&m);
	sample(RD_MSG_P2P_INTRO, &m);
	m.u.p2p_intro.naddrs = 0;
	assert_encodes(&m);
	sample(RD_MSG_P2P_LISTEN, &m);
	strcpy(addrs_s[1].addr, "");
	assert_refused(&m);
	strcpy(addrs_s[1].addr, "[2001:db8::1]:45679");
	sample(RD_MSG_P2P_HELLO, &m);
	strcpy(m.u.p2p_hello.nick, "a:b");
	assert_refused(&m);

	/* broadcast targets follow the scope */
	sample(RD_MSG_BROADCAST, &m);
	m.u.broadcast.scope = RD_SCOPE_ALL;
	assert_refused(&m); /* "general" given to everyone */
	m.u.broadcast.target[0] = '\0';
	assert_encodes(&m);
	m.u.broadcast.scope = RD_SCOPE_ROOM;
	assert_refused(&m);
	m.u.broadcast.scope = RD_SCOPE_USER;
	assert_refused(&m);
	sample(RD_MSG_CTL_BROADCAST, &m);
	assert_encodes(&m);
	strcpy(m.u.ctl_broadcast.target, "b c");
	assert_refused(&m);
	m.u.ctl_broadcast.scope = RD_SCOPE_ALL;
	m.u.ctl_broadcast.target[0] = '\0';
	assert_encodes(&m);
}

static void test_encoder_refuses_bad_enums(void **state)
{
	struct rd_msg m;

	(void)state;
#define REFUSE_VALUE(type, member, bad) \
	do {                            \
		sample(type, &m);       \
		assert_encodes(&m);     \
		m.u.member = (bad);     \
		assert_refused(&m);     \
	} while (0)
	/* chat kinds are not an enum: 2..255 belong to applications and are relayed as is */
	sample(RD_MSG_SAY, &m);
	m.u.say.kind = 2;
	assert_encodes(&m);
	sample(RD_MSG_PRIVATE_MSG, &m);
	m.u.private_msg.kind = 0xff;
	assert_encodes(&m);
	REFUSE_VALUE(RD_MSG_PRESENCE, presence.event, 0);
	REFUSE_VALUE(RD_MSG_PRESENCE, presence.event, RD_PRESENCE_NICK + 1);
	REFUSE_VALUE(RD_MSG_BROADCAST, broadcast.scope, 3);
	REFUSE_VALUE(RD_MSG_CTL_BROADCAST, ctl_broadcast.scope, 3);
	REFUSE_VALUE(RD_MSG_CTL_SERVER_INFO, ctl_server_info.tls, 2);
	REFUSE_VALUE(RD_MSG_OFFER_RESULT, offer_result.outcome, 0);
	REFUSE_VALUE(RD_MSG_OFFER_RESULT, offer_result.outcome, RD_OFFER_FAILED + 1);
	REFUSE_VALUE(RD_MSG_OFFER_ANSWER, offer_answer.answer, 0);
	REFUSE_VALUE(RD_MSG_OFFER_ANSWER, offer_answer.answer, RD_ANSWER_GONE);
	REFUSE_VALUE(RD_MSG_OFFER_ANSWER, offer_answer.answer, RD_ANSWER_EXPIRED);
	REFUSE_VALUE(RD_MSG_OFFER_ANSWER, offer_answer.answer, RD_ANSWER_RESUME + 1);
	REFUSE_VALUE(RD_MSG_OFFER_ANSWERED, offer_answered.answer, RD_ANSWER_RESUME + 1);
	REFUSE_VALUE(RD_MSG_OFFER, offer.scope, 0);
	REFUSE_VALUE(RD_MSG_OFFER, offer.scope, RD_OFFER_TO_ROOM + 1);
	REFUSE_VALUE(RD_MSG_P2P_INTRO, p2p_intro.role, 0);
	REFUSE_VALUE(RD_MSG_P2P_INTRO, p2p_intro.role, 3);
#undef REFUSE_VALUE
	/* an application's enums (rd_codec.h), in its storage */
#define REFUSE_VALUE(type, member, bad)       \
	do {                                  \
		sample(type, &m);             \
		assert_encodes(&m);           \
		rdf_body(&m)->member = (bad); \
		assert_refused(&m);           \
	} while (0)
	REFUSE_VALUE(RDF_MSG_PUT, put.mode, RDF_PUT_RENAME + 1);
	REFUSE_VALUE(RDF_MSG_FILE_NOTICE, file_notice.event, 0);
	REFUSE_VALUE(RDF_MSG_FILE_NOTICE, file_notice.event, RDF_FILE_REPLACED + 1);
#undef REFUSE_VALUE
}

/* ---- lax decoder ----------------------------------------------------------------------------- */

static void test_decoder_string_limits(void **state)
{
	uint8_t p[2 + 300];
	struct rd_msg d;
	struct rd_buf b;

	(void)state;
	memset(p, 'n', sizeof(p));
	/* NICK with 32 bytes fits, 33 does not fit the array */
	p[0] = 0;
	p[1] = RD_NICK_MAX;
	assert_int_equal(rd_msg_decode(RD_MSG_NICK, p, 2 + RD_NICK_MAX, &d), 0);
	assert_int_equal(strlen(d.u.nick.nick), RD_NICK_MAX);
	p[1] = RD_NICK_MAX + 1;
	assert_int_equal(rd_msg_decode(RD_MSG_NICK, p, 2 + RD_NICK_MAX + 1, &d), RD_ERR_TOO_BIG);
	/* a length that also runs past the payload is a lie first */
	assert_int_equal(rd_msg_decode(RD_MSG_NICK, p, 2 + RD_NICK_MAX, &d), RD_ERR_MALFORMED);
	/* a reason over RD_REASON_MAX */
	p[1] = RD_REASON_MAX + 1;
	assert_int_equal(rd_msg_decode(RD_MSG_BYE, p, 2 + RD_REASON_MAX + 1, &d), RD_ERR_TOO_BIG);
	p[1] = RD_REASON_MAX;
	assert_int_equal(rd_msg_decode(RD_MSG_BYE, p, 2 + RD_REASON_MAX, &d), 0);
	assert_int_equal(d.u.bye.reason.n, RD_REASON_MAX);
	assert_ptr_equal(d.u.bye.reason.p, (const char *)p + 2); /* a view, not a copy */

	/* chunk data over RD_CHUNK_SIZE */
	rd_buf_init(&b, 0);
	assert_int_equal(rd_buf_put_u32(&b, 1), 0);
	assert_int_equal(rd_buf_put_u64(&b, 0), 0);
	assert_int_equal(rd_buf_put_u32(&b, RD_CHUNK_SIZE + 1), 0);
	assert_int_equal(rd_buf_append_space(&b, RD_CHUNK_SIZE + 1, &(uint8_t *){ NULL }), 0);
	assert_int_equal(rd_msg_decode(RDF_MSG_PUT_CHUNK, b.data, b.len, &d), RD_ERR_TOO_BIG);
	assert_int_equal(rd_msg_decode(RDF_MSG_GET_CHUNK, b.data, b.len - 1, &d), RD_ERR_MALFORMED);
	rd_buf_free(&b);
}

static void test_decoder_refuses_embedded_nul(void **state)
{
	static const uint8_t nick[] = { 0, 3, 'a', 0, 'b' };
	static const uint8_t bye[] = { 0, 3, 'a', 0, 'b' };
	static const uint8_t say[] = { 0, 0, 0, 0, 3, 'a', 0, 'b' }; /* bytes may hold NUL */
	struct rd_msg d;

	(void)state;
	assert_int_equal(rd_msg_decode(RD_MSG_NICK, nick, sizeof(nick), &d), RD_ERR_MALFORMED);
	assert_int_equal(rd_msg_decode(RD_MSG_BYE, bye, sizeof(bye), &d), RD_ERR_MALFORMED);
	assert_int_equal(rd_msg_decode(RD_MSG_SAY, say, sizeof(say), &d), 0);
	assert_int_equal(d.u.say.data.n, 3);
}

static void test_decoder_passes_unknown_enums_and_names(void **state)
{
	static const uint8_t say[] = { 7, 0, 0, 0, 1, 'x' };
	static const uint8_t presence[] = { 99, 0, 3, 'a', ' ', 'b', 0, 0, 0, 0,
					    0,  0, 0, 0,   0,   0,   0, 0, 0 };
	struct rd_msg d;
	struct rd_buf b;

	(void)state;
	assert_int_equal(rd_msg_decode(RD_MSG_SAY, say, sizeof(say), &d), 0);
	assert_int_equal(d.u.say.kind, 7);
	/* the handler judges the event and the name; the strict encoder would not send them */
	assert_int_equal(rd_msg_decode(RD_MSG_PRESENCE, presence, sizeof(presence), &d), 0);
	assert_int_equal(d.u.presence.event, 99);
	assert_string_equal(d.u.presence.nick, "a b");
	rd_buf_init(&b, 0);
	assert_int_equal(rd_msg_encode(&d, &b), RD_ERR_INVAL);
	rd_buf_free(&b);
}

/* A list payload: room (for WHO_LIST), a count, then `real` minimal entries. */
static void build_list(struct rd_buf *b, uint16_t type, uint32_t count, uint32_t real)
{
	rd_buf_init(b, 0);
	if (type == RD_MSG_WHO_LIST || type == RDF_MSG_FILE_LIST)
		assert_int_equal(rd_buf_put_cstr(b, "general"), 0);
	assert_int_equal(rd_buf_put_u32(b, count), 0);
	for (uint32_t i = 0; i < real; i++) {
		switch (type) {
		case RD_MSG_ROOM_LIST: /* str name, u32 members: 6 bytes at least */
			assert_int_equal(rd_buf_put_cstr(b, ""), 0);
			assert_int_equal(rd_buf_put_u32(b, i), 0);
			break;
		case RD_MSG_WHO_LIST: /* str nick, u64 since: 10 */
			assert_int_equal(rd_buf_put_cstr(b, ""), 0);
			assert_int_equal(rd_buf_put_u64(b, i), 0);
			break;
		case RDF_MSG_FILE_LIST: /* str, u64, u64, sha256, str: 54 */
			assert_int_equal(rd_buf_put_cstr(b, ""), 0);
			assert_int_equal(rd_buf_put_u64(b, i), 0);
			assert_int_equal(rd_buf_put_u64(b, i), 0);
			assert_int_equal(rd_buf_put(b, sha, sizeof(sha)), 0);
			assert_int_equal(rd_buf_put_cstr(b, ""), 0);
			break;
		default: /* CTL_CLIENTS: u32, str, u16, str, str, 4 x u64, str, str: 48 */
			assert_int_equal(rd_buf_put_u32(b, i), 0);
			assert_int_equal(rd_buf_put_cstr(b, ""), 0);
			assert_int_equal(rd_buf_put_u16(b, 0), 0);
			assert_int_equal(rd_buf_put_cstr(b, ""), 0);
			assert_int_equal(rd_buf_put_cstr(b, ""), 0);
			for (int k = 0; k < 4; k++)
				assert_int_equal(rd_buf_put_u64(b, i), 0);
			assert_int_equal(rd_buf_put_cstr(b, ""), 0); /* activity */
			assert_int_equal(rd_buf_put_cstr(b, ""), 0); /* fingerprint */
			assert_int_equal(rd_buf_put_cstr(b, ""), 0); /* server */
			break;
		}
	}
	if (type == RDF_MSG_FILE_LIST) /* u8 more */
		assert_int_equal(rd_buf_put_u8(b, 0), 0);
}

static void test_list_count_lies_are_refused_before_allocating(void **state)
{
	static const uint16_t lists[] = { RD_MSG_ROOM_LIST, RD_MSG_WHO_LIST, RDF_MSG_FILE_LIST,
					  RD_MSG_CTL_CLIENTS };
	struct rd_msg d;
	struct rd_buf b;
	uint32_t *count = NULL;
	void **items = NULL;
	size_t size = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		/* honest: 5 minimal entries */
		build_list(&b, lists[i], 5, 5);
		assert_int_equal(rd_msg_decode(lists[i], b.data, b.len, &d), 0);
		assert_true(list_of(&d, &count, &items, &size));
		assert_int_equal(*count, 5);
		assert_non_null(*items);
		rd_msg_clear(&d);
		rd_buf_free(&b);
		/* one entry more than the bytes can hold */
		build_list(&b, lists[i], 6, 5);
		assert_int_equal(rd_msg_decode(lists[i], b.data, b.len, &d), RD_ERR_MALFORMED);
		rd_buf_free(&b);
		/* a huge count: an allocation for it would fail (or trip the sanitizer), so
		 * MALFORMED here means the count was refused first */
		build_list(&b, lists[i], UINT32_MAX, 2);
		assert_int_equal(rd_msg_decode(lists[i], b.data, b.len, &d), RD_ERR_MALFORMED);
		assert_all_zero(&d, sizeof(d));
		rd_buf_free(&b);
	}
}

static void test_list_items_freed_after_a_bad_entry(void **state)
{
	struct rd_msg d;
	struct rd_buf b;

	(void)state;
	/* two good rooms, then one whose name is too long: items were allocated, the error
	 * frees them (the leak checker sees it if not) */
	build_list(&b, RD_MSG_ROOM_LIST, 3, 2);
	assert_int_equal(rd_buf_put_u16(&b, RD_ROOM_MAX + 1), 0);
	for (unsigned i = 0; i < RD_ROOM_MAX + 1 + 4; i++)
		assert_int_equal(rd_buf_put_u8(&b, 'r'), 0);
	assert_int_equal(rd_msg_decode(RD_MSG_ROOM_LIST, b.data, b.len, &d), RD_ERR_TOO_BIG);
	assert_all_zero(&d, sizeof(d));
	rd_buf_free(&b);
}

static void test_clear_frees_only_what_decoder_allocated(void **state)
{
	struct rd_room_entry mine[1] = { { "general", 1 } };
	struct rd_msg m;

	(void)state;
	/* items set by the caller: freeing a stack array would abort the test */
	rd_msg_init(&m, RD_MSG_ROOM_LIST);
	m.u.room_list.count = 1;
	m.u.room_list.items = mine;
	rd_msg_clear(&m);
	assert_all_zero(&m, sizeof(m));
	assert_string_equal(mine[0].name, "general");
	rd_msg_clear(&m); /* twice is fine */
	rd_msg_clear(NULL);
}

/* ---- hostile input ----------------------------------------------------------------------- */

static uint32_t rng_state = 12345;
static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static int is_list_type(uint16_t t)
{
	return t == RD_MSG_ROOM_LIST || t == RD_MSG_CTL_CLIENTS;
}

static void test_all_ff_payloads(void **state)
{
	uint8_t *p;
	struct rd_msg d;

	(void)state;
	for (size_t len = 0; len <= 600; len += (len < 80 ? 1 : 37)) {
		p = malloc(len ? len : 1);
		assert_non_null(p);
		memset(p, 0xff, len);
		for (size_t i = 0; i < nknown; i++) {
			int rc = rd_msg_decode(known[i], p, len, &d);

			/* a count of 0xffffffff never fits; nor does a u16 length of 0xffff here */
			if (is_list_type(known[i]) || known[i] == RD_MSG_NICK)
				assert_int_equal(rc, RD_ERR_MALFORMED);
			if (rc == 0)
				rd_msg_clear(&d);
			else
				assert_all_zero(&d, sizeof(d));
		}
		free(p);
	}
}

/* Random payloads: whatever decodes and re-encodes must decode to the same message. */
static void test_random_payloads_are_consistent(void **state)
{
	uint8_t p[256];
	struct rd_msg d, d2;
	struct rd_buf b;
	unsigned decoded = 0;

	(void)state;
	for (int round = 0; round < 3000; round++) {
		size_t len = rng() % sizeof(p);

		for (size_t k = 0; k < len; k++)
			p[k] = (uint8_t)rng();
		/* small lengths and counts now and then, so that some payloads decode */
		if (len > 4 && rng() % 2) {
			p[0] = 0;
			p[1] = (uint8_t)(rng() % 6);
		}
		for (size_t i = 0; i < nknown; i++) {
			if (rd_msg_decode(known[i], p, len, &d) != 0)
				continue;
			decoded++;
			rd_buf_init(&b, 0);
			if (rd_msg_encode(&d, &b) == 0) {
				assert_int_equal(rd_msg_decode(known[i], b.data, b.len, &d2), 0);
				assert_msg_equal(&d, &d2);
				rd_msg_clear(&d2);
			}
			rd_buf_free(&b);
			rd_msg_clear(&d);
		}
	}
	assert_true(decoded > 1000);
}

static void test_bad_arguments(void **state)
{
	struct rd_msg m;
	struct rd_buf b;

	(void)state;
	rd_buf_init(&b, 0);
	assert_int_equal(rd_msg_decode(RD_MSG_PING, NULL, 8, &m), RD_ERR_INVAL);
	assert_int_equal(rd_msg_decode(RD_MSG_PING, (const uint8_t *)"12345678", 8, NULL),
			 RD_ERR_INVAL);
	assert_int_equal(rd_msg_encode(NULL, &b), RD_ERR_INVAL);
	sample(RD_MSG_PING, &m);
	assert_int_equal(rd_msg_encode(&m, NULL), RD_ERR_INVAL);
	assert_int_equal(rd_msg_frame(NULL, &m, 0, 0), RD_ERR_INVAL);
	/* an encoder running into the buffer's max reports it and leaves the buffer alone */
	rd_buf_free(&b);
	rd_buf_init(&b, 10);
	sample(RD_MSG_ROOM_MSG, &m);
	assert_int_equal(rd_msg_encode(&m, &b), RD_ERR_TOO_BIG);
	assert_int_equal(b.len, 0);
	rd_buf_free(&b);
}

static void test_str_c(void **state)
{
	struct rd_str s = rd_str_c("abc");

	(void)state;
	assert_int_equal(s.n, 3);
	assert_memory_equal(s.p, "abc", 3);
	s = rd_str_c(NULL);
	assert_int_equal(s.n, 0);
	assert_non_null(s.p);
}

static void test_wire_error_texts(void **state)
{
	static const uint16_t codes[] = {
		100, 101, 102, 103, 104, 105, 106, 107, 108, 200, 201, 202, 203, 204,
		205, 206, 300, 301, 302, 303, 304, 305, 400, 401, 402, 403, 404, 500,
		501, 502, 503, 504, 505, 506, 507, 508, 509, 510, 511, 900, 901,
	};

	(void)state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *s = rd_wire_strerror(codes[i]);

		assert_non_null(s);
		assert_string_not_equal(s, "unknown error");
		/* each text is its own */
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(s, rd_wire_strerror(codes[j]));
	}
	assert_string_equal(rd_wire_strerror(RD_E_NICK_TAKEN), "nickname taken");
	assert_string_equal(rd_wire_strerror(0), "unknown error");
	assert_string_equal(rd_wire_strerror(999), "unknown error");
}

/* ---- PROTOCOL.md examples ---------------------------------------------------------------- */

/* Next ```hex block of the document from *pos: its bytes into out (at most cap).
 * Returns the byte count, or -1 when there are no more blocks. */
static long next_hex_block(const char *doc, const char **pos, uint8_t *out, size_t cap)
{
	const char *p = *pos, *line;
	size_t n = 0;

	while ((line = strstr(p, "```hex\n")) != NULL) {
		if (line == doc || line[-1] == '\n' || line[-1] == ' ')
			break;
		p = line + 1;
	}
	if (!line)
		return -1;
	p = line + 7;
	for (;;) {
		const char *eol = strchr(p, '\n');
		const char *end = eol ? eol : p + strlen(p);
		const char *q = p;

		while (q < end && (*q == ' ' || *q == '\t'))
			q++;
		if (end - q >= 3 && strncmp(q, "```", 3) == 0) {
			*pos = end;
			return (long)n;
		}
		while (q < end && *q != '#') {
			char *stop;
			unsigned long v;

			if (*q == ' ' || *q == '\t') {
				q++;
				continue;
			}
			v = strtoul(q, &stop, 16);
			assert_int_equal(stop - q, 2); /* a hex byte pair */
			assert_true(n < cap);
			out[n++] = (uint8_t)v;
			q = stop;
		}
		assert_non_null(eol); /* the block is closed */
		p = eol + 1;
	}
}

static char *load_protocol_md(void)
{
	char *doc;
	long len;
	FILE *f = fopen("PROTOCOL.md", "rb");

	assert_non_null(f); /* tests run from the top of the tree */
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	assert_true(len > 0);
	rewind(f);
	doc = calloc(1, (size_t)len + 1);
	assert_non_null(doc);
	assert_int_equal(fread(doc, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return doc;
}

/* Every example frame of PROTOCOL.md decodes, and encodes back to the very same bytes:
 * the document and the codec agree on the encoding of every field of every message. */
static void test_protocol_md_examples_round_trip(void **state)
{
	static uint8_t ex[70000];
	uint8_t seen[0x10000 / 8] = { 0 };
	struct rd_frame_hdr h;
	struct rd_msg m;
	struct rd_buf b;
	const char *pos;
	char *doc = load_protocol_md();
	size_t examples = 0;
	long n;

	(void)state;
	pos = doc;
	while ((n = next_hex_block(doc, &pos, ex, sizeof(ex))) >= 0) {
		assert_true(n >= (long)RD_FRAME_HEADER_SIZE);
		assert_int_equal(rd_frame_hdr_decode(ex, (size_t)n, RD_MAX_PAYLOAD_DEFAULT, &h), 0);
		assert_int_equal(h.len, (size_t)n - RD_FRAME_HEADER_SIZE);
		assert_int_equal(h.flags, 0);
		if (rd_msg_decode(h.type, ex + RD_FRAME_HEADER_SIZE, h.len, &m) != 0)
			fail_msg("PROTOCOL.md example %zu (type 0x%04x) does not decode",
				 examples + 1, h.type);
		rd_buf_init(&b, 0);
		if (rd_msg_frame(&b, &m, h.req_id, 0) != 0 || b.len != (size_t)n ||
		    memcmp(b.data, ex, (size_t)n) != 0)
			fail_msg("PROTOCOL.md example %zu (%s) does not encode back to itself",
				 examples + 1, rd_msg_type_name(h.type));
		rd_buf_free(&b);
		rd_msg_clear(&m);
		seen[h.type / 8] |= (uint8_t)(1u << (h.type % 8));
		examples++;
	}
	free(doc);
	/* one example at least for every message type */
	for (size_t i = 0; i < nknown; i++)
		if (!(seen[known[i] / 8] & (1u << (known[i] % 8))))
			fail_msg("PROTOCOL.md has no example of %s", rd_msg_type_name(known[i]));
	assert_true(examples >= NTYPES_KNOWN);
}

/* The first PROTOCOL.md example of m->type decodes to exactly m. */
static void assert_doc_example_is(const char *doc, const struct rd_msg *m)
{
	static uint8_t ex[70000];
	const char *pos = doc;
	struct rd_frame_hdr h;
	struct rd_msg d;
	long n;

	while ((n = next_hex_block(doc, &pos, ex, sizeof(ex))) >= 0) {
		assert_int_equal(rd_frame_hdr_decode(ex, (size_t)n, RD_MAX_PAYLOAD_DEFAULT, &h), 0);
		if (h.type != m->type)
			continue;
		assert_int_equal(rd_msg_decode(h.type, ex + RD_FRAME_HEADER_SIZE, h.len, &d), 0);
		assert_msg_equal(m, &d);
		rd_msg_clear(&d);
		return;
	}
	fail_msg("no PROTOCOL.md example of %s", rd_msg_type_name(m->type));
}

/* Values written in the document's examples land in the right members: this catches two
 * fields of the same encoding swapped, which a round trip cannot see. */
static void test_protocol_md_example_values(void **state)
{
	static const uint64_t T = 0x0000019c13a534c0ull; /* the document's time stamp */
	static const uint8_t abc_sha[RD_SHA256_SIZE] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
		0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
		0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	struct rd_ctl_client client = { 1, "127.0.0.1", 50000, "alice", "general", T,
					T, 100,         200,   "",      FP_TEXT };
	struct rdf_file_entry file = { "a.txt", 3, T, { 0 }, "alice" };
	char *doc = load_protocol_md();
	struct rd_msg m;

	(void)state;
	rd_msg_init(&m, RD_MSG_HELLO);
	m.u.hello = (struct rd_msg_hello){ 1, 1, 7, "rd" };
	assert_doc_example_is(doc, &m);
	rd_msg_init(&m, RD_MSG_HELLO_OK);
	m.u.hello_ok = (struct rd_msg_hello_ok){ 1, 15, 1048576, 30000, 5000, "rd" };
	assert_doc_example_is(doc, &m);
	rd_msg_init(&m, RD_MSG_WELCOME);
	m.u.welcome = (struct rd_msg_welcome){ "alice", 1, T };
	assert_doc_example_is(doc, &m);
	rd_msg_init(&m, RD_MSG_ERROR);
	m.u.error = (struct rd_msg_error){ 200, RD_MSG_NICK, rd_str_c("nick taken") };
	assert_doc_example_is(doc, &m);
	rd_msg_init(&m, RD_MSG_PRESENCE);
	m.u.presence = (struct rd_msg_presence){ 1, "bob", "", T, rd_str_c("") };
	assert_doc_example_is(doc, &m);
	rd_msg_init(&m, RD_MSG_OFFER_PENDING);
	m.u.offer_pending = (struct rd_msg_offer_pending){ 7, 60000, 1 };
	assert_doc_example_is(doc, &m);
	rd_msg_init(&m, RD_MSG_P2P_INTRO);
	{
		static struct rd_p2p_addr a[2] = { { "10.0.0.1:40000" }, { "192.168.1.20:40000" } };

		m.u.p2p_intro = (struct rd_msg_p2p_intro){ 7, RD_P2P_FOLLOWER, "alice" };
		memset(m.u.p2p_intro.fp, 0xab, sizeof(m.u.p2p_intro.fp));
		m.u.p2p_intro.naddrs = 2;
		m.u.p2p_intro.addrs = a;
	}
	for (int i = 0; i < 16; i++)
		m.u.p2p_intro.token[i] = (uint8_t)(i * 0x11);
	assert_doc_example_is(doc, &m);
	rd_msg_init(&m, RD_MSG_CTL_CLIENTS);
	m.u.ctl_clients = (struct rd_msg_ctl_clients){ 1, &client };
	assert_doc_example_is(doc, &m);
	rd_msg_init(&m, RD_MSG_CTL_SERVER_INFO);
	m.u.ctl_server_info = (struct rd_msg_ctl_server_info){
		"roomdrop-server/0.1.0", "127.0.0.1:7878", 1, FP_TEXT, 2, 1, 2, 90000, 1, 1048576
	};
	assert_doc_example_is(doc, &m);
	rd_msg_init(&m, RDF_MSG_PUT_READY);
	rdf_body(&m)->put_ready = (struct rdf_msg_put_ready){ 1, 0, "a.txt" };
	assert_doc_example_is(doc, &m);
	rd_msg_init(&m, RDF_MSG_GET_BEGIN);
	rdf_body(&m)->get_begin = (struct rdf_msg_get_begin){ 1, "a.txt", 3, 0, T };
	memcpy(rdf_body(&m)->get_begin.sha256, abc_sha, sizeof(abc_sha));
	assert_doc_example_is(doc, &m);
	rd_msg_init(&m, RDF_MSG_FILE_LIST);
	memcpy(file.sha256, abc_sha, sizeof(abc_sha));
	rdf_body(&m)->file_list = (struct rdf_msg_file_list){ "general", 1, &file, 1 };
	assert_doc_example_is(doc, &m);
	rd_msg_init(&m, RDF_MSG_LIST);
	strcpy(rdf_body(&m)->list.after, "a.txt");
	assert_doc_example_is(doc, &m);
	rd_msg_init(&m, RDF_MSG_FILE_NOTICE);
	rdf_body(&m)->file_notice =
		(struct rdf_msg_file_notice){ 1, "general", "alice", "a.txt", 3 };
	assert_doc_example_is(doc, &m);
	free(doc);
}

/* ---- fuzz seeds ---------------------------------------------------------------------------- */

static int write_file(const char *dir, const char *name, const struct rd_buf *b)
{
	char path[4096];
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s.bin", dir, name);
	if (!(f = fopen(path, "wb")))
		return -1;
	if (fwrite(b->data, 1, b->len, f) != b->len)
		rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

/* One frame per known type, a compressed frame, and all frames back to back. */
static int write_seeds(const char *dir)
{
	static char text[2000];
	struct rd_buf b, all;
	struct rd_msg m;
	char name[64];
	int rc = 0;

	setup(NULL);
	rd_buf_init(&all, 0);
	for (size_t i = 0; i < nknown && rc == 0; i++) {
		sample(known[i], &m);
		rd_buf_init(&b, 0);
		snprintf(name, sizeof(name), "msg-%s", rd_msg_type_name(known[i]));
		if (rd_msg_frame(&b, &m, (uint32_t)i + 1, 0) != 0 ||
		    write_file(dir, name, &b) != 0 || rd_buf_put(&all, b.data, b.len) != 0)
			rc = -1;
		rd_buf_free(&b);
	}
	memset(text, 'z', sizeof(text));
	rd_msg_init(&m, RD_MSG_SAY);
	m.u.say.data = bytes_of(text, sizeof(text));
	rd_buf_init(&b, 0);
	if (rc == 0 &&
	    (rd_msg_frame(&b, &m, 99, RD_FRAME_COMPRESS) != 0 ||
	     write_file(dir, "msg-SAY-zlib", &b) != 0 || write_file(dir, "stream-all", &all) != 0))
		rc = -1;
	rd_buf_free(&b);
	rd_buf_free(&all);
	if (rc)
		fprintf(stderr, "test_msg: could not write seeds to %s\n", dir);
	return rc ? 1 : 0;
}

int main(void)
{
	const char *seed_dir = getenv("RD_MSG_SEED_DIR");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_proto_type_is_known_and_named),
		cmocka_unit_test(test_every_type_round_trips),
		cmocka_unit_test(test_empty_types_have_empty_payload),
		cmocka_unit_test(test_hello_bytes),
		cmocka_unit_test(test_room_msg_bytes),
		cmocka_unit_test(test_who_list_bytes),
		cmocka_unit_test(test_p2p_intro_bytes),
		cmocka_unit_test(test_frame_bytes_and_same_as_frame_append),
		cmocka_unit_test(test_frame_compressed_reads_back),
		cmocka_unit_test(test_frame_refused_leaves_buffer_alone),
		cmocka_unit_test(test_every_truncation_is_malformed),
		cmocka_unit_test(test_trailing_bytes_are_ignored),
		cmocka_unit_test(test_unknown_type_is_refused),
		cmocka_unit_test(test_encoder_refuses_oversized_fields),
		cmocka_unit_test(test_encoder_refuses_bad_names),
		cmocka_unit_test(test_direct_mode_rows),
		cmocka_unit_test(test_encoder_refuses_bad_enums),
		cmocka_unit_test(test_decoder_string_limits),
		cmocka_unit_test(test_decoder_refuses_embedded_nul),
		cmocka_unit_test(test_decoder_passes_unknown_enums_and_names),
		cmocka_unit_test(test_list_count_lies_are_refused_before_allocating),
		cmocka_unit_test(test_list_items_freed_after_a_bad_entry),
		cmocka_unit_test(test_clear_frees_only_what_decoder_allocated),
		cmocka_unit_test(test_all_ff_payloads),
		cmocka_unit_test(test_random_payloads_are_consistent),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_str_c),
		cmocka_unit_test(test_wire_error_texts),
		cmocka_unit_test(test_protocol_md_examples_round_trip),
		cmocka_unit_test(test_protocol_md_example_values),
	};

	if (seed_dir && *seed_dir)
		return write_seeds(seed_dir);
	/* the file messages are an application's: the codec knows them once registered */
	if (rdf_proto_register() != 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, NULL);
}
