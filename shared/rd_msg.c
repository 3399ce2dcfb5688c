/* rd_msg.c - the payload codec for every message type, driven by one table.
 *
 * Each message type maps to a list of field descriptors in wire order (the order of the
 * members of its struct in rd_msg.h). One encoder and one decoder walk those lists, so a
 * new message is a new table row, not new code. A descriptor knows where its member lives
 * (offset into the union), how it is encoded and which rule the strict encoder applies.
 * The descriptors are public (rd_codec.h): applications register rows of their own types,
 * which lookup() finds after the core's.
 *
 * Encoder errors: RD_ERR_INVAL for a value that breaks its rule (length, name, enum
 * range), errors of rd_buf (RD_ERR_NOMEM, RD_ERR_TOO_BIG past the buffer's max). On any
 * error the output buffer is left as it was.
 * Decoder errors: RD_ERR_MALFORMED for a field that runs past the payload, a NUL inside
 * a string, or a list count that the remaining bytes cannot hold; RD_ERR_TOO_BIG for a
 * string or byte field longer than its limit. Enum values and trailing bytes pass.
 */
#include "rd_msg.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "rd_codec.h"
#include "rd_err.h"
#include "rd_frame.h"
#include "rd_names.h"

/* The core's tables use short names for the public descriptors of rd_codec.h. */
#define K_END RD_FK_END
#define K_INT RD_FK_INT
#define K_CHARS RD_FK_CHARS
#define K_STR RD_FK_STR
#define K_BYTES RD_FK_BYTES
#define K_RAW RD_FK_RAW
#define K_LIST RD_FK_LIST
#define N_ANY RD_NAME_ANY
#define N_NICK RD_NAME_NICK
#define N_NICK_NEW RD_NAME_NICK_NEW
#define N_ROOM RD_NAME_ROOM
#define N_FILE RD_NAME_FILE
#define N_TARGET 5 /* core only: BROADCAST target, depends on the scope, see target_ok() */
#define N_NONEMPTY RD_NAME_NONEMPTY
#define N_MASK RD_NAME_MASK
#define N_EMPTY_OK RD_NAME_EMPTY_OK
#define INT RD_F_INT
#define ENUM RD_F_ENUM
#define CHARS RD_F_CHARS
#define STR RD_F_STR
#define BYTES RD_F_BYTES
#define RAW RD_F_RAW
#define LIST RD_F_LIST
#define END RD_F_END

struct msg_desc {
	uint16_t type;
	const struct rd_field *fields;
};

/* One descriptor per member and one message per block read best as written. */
/* clang-format off */

/* ---- field tables (wire order = member order in rd_msg.h) ------------------------- */

static const struct rd_field f_empty[] = { END };

static const struct rd_field f_hello[] = {
	INT(rd_msg_hello, version_min), INT(rd_msg_hello, version_max),
	INT(rd_msg_hello, features), CHARS(rd_msg_hello, software, N_ANY), END
};
static const struct rd_field f_hello_ok[] = {
	INT(rd_msg_hello_ok, version), INT(rd_msg_hello_ok, features),
	INT(rd_msg_hello_ok, max_payload), INT(rd_msg_hello_ok, ping_interval_ms),
	INT(rd_msg_hello_ok, ping_timeout_ms), CHARS(rd_msg_hello_ok, software, N_ANY), END
};
static const struct rd_field f_nick[] = { CHARS(rd_msg_nick, nick, N_NICK_NEW), END };
static const struct rd_field f_welcome[] = {
	CHARS(rd_msg_welcome, nick, N_NICK), INT(rd_msg_welcome, client_id),
	INT(rd_msg_welcome, server_time_ms), END
};
static const struct rd_field f_ok[] = { INT(rd_msg_ok, for_type), END };
static const struct rd_field f_error[] = {
	INT(rd_msg_error, code), INT(rd_msg_error, for_type),
	STR(rd_msg_error, text, RD_TEXT_MAX), END
};
static const struct rd_field f_ping[] = { INT(rd_msg_ping, nonce), END };
static const struct rd_field f_bye[] = { STR(rd_msg_bye, reason, RD_REASON_MAX), END };
static const struct rd_field f_redirect[] = {
	CHARS(rd_msg_redirect, host, N_NONEMPTY), INT(rd_msg_redirect, port),
	ENUM(rd_msg_redirect, temporary, 0, 1), STR(rd_msg_redirect, reason, RD_REASON_MAX),
	RAW(rd_msg_redirect, fp), END
};

static const struct rd_field f_room_entry[] = {
	CHARS(rd_room_entry, name, N_ROOM), INT(rd_room_entry, members), END
};
static const struct rd_field_list l_room = { sizeof(struct rd_room_entry), f_room_entry };
static const struct rd_field f_room_list[] = {
	LIST(rd_msg_room_list, count, items, l_room), END
};
static const struct rd_field f_join[] = { CHARS(rd_msg_room, room, N_ROOM), END };
static const struct rd_field f_join_key[] = { CHARS(rd_msg_join_key, room, N_ROOM),
					      BYTES(rd_msg_join_key, key, RD_SECRET_MAX), END };
static const struct rd_field f_who[] = { CHARS(rd_msg_room, room, N_ROOM | N_EMPTY_OK), END };
static const struct rd_field f_joined[] = {
	CHARS(rd_msg_joined, room, N_ROOM), INT(rd_msg_joined, members), END
};
static const struct rd_field f_who_entry[] = {
	CHARS(rd_who_entry, nick, N_NICK), INT(rd_who_entry, since_ms), END
};
static const struct rd_field_list l_who = { sizeof(struct rd_who_entry), f_who_entry };
static const struct rd_field f_who_list[] = {
	CHARS(rd_msg_who_list, room, N_ROOM), LIST(rd_msg_who_list, count, items, l_who), END
};

static const struct rd_field f_say[] = {
	INT(rd_msg_say, kind),
	BYTES(rd_msg_say, data, RD_CHAT_MAX), END
};
static const struct rd_field f_tell[] = {
	CHARS(rd_msg_tell, to, N_NICK), INT(rd_msg_tell, kind),
	BYTES(rd_msg_tell, data, RD_CHAT_MAX), END
};
static const struct rd_field f_room_msg[] = {
	CHARS(rd_msg_room_msg, room, N_ROOM), CHARS(rd_msg_room_msg, from, N_NICK),
	INT(rd_msg_room_msg, kind),
	INT(rd_msg_room_msg, time_ms), BYTES(rd_msg_room_msg, data, RD_CHAT_MAX), END
};
static const struct rd_field f_private_msg[] = {
	CHARS(rd_msg_private_msg, from, N_NICK),
	INT(rd_msg_private_msg, kind),
	INT(rd_msg_private_msg, time_ms), BYTES(rd_msg_private_msg, data, RD_CHAT_MAX), END
};
/* PRESENCE.room is "" for events of a user who is in no room (CONNECTED, ...). */
static const struct rd_field f_presence[] = {
	ENUM(rd_msg_presence, event, RD_PRESENCE_CONNECTED, RD_PRESENCE_NICK),
	CHARS(rd_msg_presence, nick, N_NICK), CHARS(rd_msg_presence, room, N_ROOM | N_EMPTY_OK),
	INT(rd_msg_presence, time_ms), STR(rd_msg_presence, reason, RD_REASON_MAX), END
};
static const struct rd_field f_broadcast[] = {
	ENUM(rd_msg_broadcast, scope, RD_SCOPE_ALL, RD_SCOPE_USER),
	CHARS(rd_msg_broadcast, target, N_TARGET), INT(rd_msg_broadcast, time_ms),
	STR(rd_msg_broadcast, text, RD_TEXT_MAX), END
};
static const struct rd_field f_kicked[] = {
	CHARS(rd_msg_kicked, by, N_NICK), STR(rd_msg_kicked, reason, RD_REASON_MAX), END
};
static const struct rd_field f_room_direct[] = { INT(rd_msg_room_direct, on), END };
static const struct rd_field f_room_mode[] = {
	CHARS(rd_msg_room_mode, room, N_ROOM), INT(rd_msg_room_mode, direct),
	CHARS(rd_msg_room_mode, by, N_NICK | N_EMPTY_OK), END
};
static const struct rd_field f_nick_entry[] = { CHARS(rd_nick_entry, nick, N_NICK), END };
static const struct rd_field_list l_nick = { sizeof(struct rd_nick_entry), f_nick_entry };
static const struct rd_field f_presence_summary[] = {
	CHARS(rd_msg_presence_summary, room, N_ROOM | N_EMPTY_OK),
	INT(rd_msg_presence_summary, arrived), INT(rd_msg_presence_summary, departed),
	INT(rd_msg_presence_summary, interval_ms), INT(rd_msg_presence_summary, time_ms), END
};
static const struct rd_field f_say_except[] = {
	INT(rd_msg_say_except, kind), BYTES(rd_msg_say_except, data, RD_CHAT_MAX),
	LIST(rd_msg_say_except, count, except, l_nick), END
};

static const struct rd_field f_offer[] = {
	ENUM(rd_msg_offer, scope, RD_OFFER_TO_USER, RD_OFFER_TO_ROOM),
	CHARS(rd_msg_offer, to, N_NICK | N_EMPTY_OK), INT(rd_msg_offer, app_type),
	INT(rd_msg_offer, timeout_ms), BYTES(rd_msg_offer, descriptor, RD_DESCRIPTOR_MAX), END
};
static const struct rd_field f_offer_pending[] = {
	INT(rd_msg_offer_pending, offer_id), INT(rd_msg_offer_pending, expires_in_ms),
	INT(rd_msg_offer_pending, recipients), END
};
static const struct rd_field f_offer_in[] = {
	INT(rd_msg_offer_in, offer_id), CHARS(rd_msg_offer_in, from, N_NICK),
	INT(rd_msg_offer_in, app_type), INT(rd_msg_offer_in, expires_in_ms),
	CHARS(rd_msg_offer_in, room, N_ROOM | N_EMPTY_OK),
	BYTES(rd_msg_offer_in, descriptor, RD_DESCRIPTOR_MAX), END
};
static const struct rd_field f_offer_answer[] = {
	INT(rd_msg_offer_answer, offer_id),
	ENUM(rd_msg_offer_answer, answer, RD_ANSWER_ACCEPT, RD_ANSWER_RESUME),
	INT(rd_msg_offer_answer, hold_ms), STR(rd_msg_offer_answer, reason, RD_REASON_MAX),
	BYTES(rd_msg_offer_answer, data, RD_DESCRIPTOR_MAX), END
};
static const struct rd_field f_offer_answered[] = {
	INT(rd_msg_offer_answered, offer_id), CHARS(rd_msg_offer_answered, peer, N_NICK),
	ENUM(rd_msg_offer_answered, answer, RD_ANSWER_ACCEPT, RD_ANSWER_RESUME),
	INT(rd_msg_offer_answered, expires_in_ms), STR(rd_msg_offer_answered, reason, RD_REASON_MAX),
	BYTES(rd_msg_offer_answered, data, RD_DESCRIPTOR_MAX), END
};
static const struct rd_field f_offer_id[] = { INT(rd_msg_offer_id, offer_id), END };
static const struct rd_field f_offer_result[] = {
	INT(rd_msg_offer_result, offer_id),
	ENUM(rd_msg_offer_result, outcome, RD_OFFER_ACCEPTED, RD_OFFER_FAILED),
	CHARS(rd_msg_offer_result, peer, N_NICK | N_EMPTY_OK),
	STR(rd_msg_offer_result, reason, RD_REASON_MAX), INT(rd_msg_offer_result, accepted), END
};
static const struct rd_field f_offer_data[] = {
	INT(rd_msg_offer_data, offer_id), INT(rd_msg_offer_data, offset),
	BYTES(rd_msg_offer_data, data, RD_CHUNK_SIZE), END
};
static const struct rd_field f_offer_end[] = {
	INT(rd_msg_offer_end, offer_id), INT(rd_msg_offer_end, status), END
};

static const struct rd_field f_p2p_addr[] = {
	CHARS(rd_p2p_addr, addr, N_NONEMPTY), END
};
static const struct rd_field_list l_p2p_addr = { sizeof(struct rd_p2p_addr), f_p2p_addr };
static const struct rd_field f_p2p_listen[] = {
	INT(rd_msg_p2p_listen, offer_id), INT(rd_msg_p2p_listen, port),
	LIST(rd_msg_p2p_listen, naddrs, addrs, l_p2p_addr), END
};
static const struct rd_field f_p2p_intro[] = {
	INT(rd_msg_p2p_intro, offer_id), ENUM(rd_msg_p2p_intro, role, RD_P2P_CHOOSER, RD_P2P_FOLLOWER),
	CHARS(rd_msg_p2p_intro, peer, N_NICK), RAW(rd_msg_p2p_intro, fp),
	LIST(rd_msg_p2p_intro, naddrs, addrs, l_p2p_addr), RAW(rd_msg_p2p_intro, token), END
};
static const struct rd_field f_p2p_hello[] = {
	INT(rd_msg_p2p_hello, offer_id), RAW(rd_msg_p2p_hello, token),
	CHARS(rd_msg_p2p_hello, nick, N_NICK), END
};
static const struct rd_field f_p2p_failed[] = {
	INT(rd_msg_p2p_failed, offer_id), STR(rd_msg_p2p_failed, reason, RD_REASON_MAX), END
};

/* Control-socket listing: unregistered connections have nick "" and room ""; plaintext
 * connections and TLS clients without a certificate have fingerprint "". */
static const struct rd_field f_ctl_client[] = {
	INT(rd_ctl_client, id), CHARS(rd_ctl_client, ip, N_ANY), INT(rd_ctl_client, port),
	CHARS(rd_ctl_client, nick, N_NICK | N_EMPTY_OK), CHARS(rd_ctl_client, room, N_ROOM | N_EMPTY_OK),
	INT(rd_ctl_client, connected_ms), INT(rd_ctl_client, last_msg_ms),
	INT(rd_ctl_client, bytes_in), INT(rd_ctl_client, bytes_out),
	CHARS(rd_ctl_client, activity, N_ANY), CHARS(rd_ctl_client, fingerprint, N_ANY),
	CHARS(rd_ctl_client, server, N_ANY), END
};
static const struct rd_field_list l_ctl_client = { sizeof(struct rd_ctl_client), f_ctl_client };
static const struct rd_field f_ctl_clients[] = {
	LIST(rd_msg_ctl_clients, count, items, l_ctl_client), END
};
static const struct rd_field f_auth[] = { ENUM(rd_msg_auth, kind, RD_AUTH_PASSWORD,
						 RD_AUTH_INVITE),
					    BYTES(rd_msg_auth, secret, RD_SECRET_MAX), END };
static const struct rd_field f_ctl_release[] = { CHARS(rd_msg_ctl_release, nick, N_NICK), END };
static const struct rd_field f_ctl_op[] = { CHARS(rd_msg_ctl_op, room, N_ROOM),
					    CHARS(rd_msg_ctl_op, nick, N_NICK),
					    ENUM(rd_msg_ctl_op, grant, 0, 1), END };
static const struct rd_field f_ctl_admit[] = { RAW(rd_msg_ctl_admit, fp),
					       ENUM(rd_msg_ctl_admit, grant, 0, 1), END };
static const struct rd_field f_ctl_invite[] = { INT(rd_msg_ctl_invite, uses),
						INT(rd_msg_ctl_invite, valid_ms), END };
static const struct rd_field f_ctl_invitation[] = { CHARS(rd_msg_ctl_invitation, id, N_NICK),
						    RAW(rd_msg_ctl_invitation, secret),
						    INT(rd_msg_ctl_invitation, expires_ms), END };
static const struct rd_field f_ctl_uninvite[] = { CHARS(rd_msg_ctl_uninvite, id, N_NICK), END };
static const struct rd_field f_ctl_kick[] = {
	CHARS(rd_msg_ctl_kick, nick, N_NICK), STR(rd_msg_ctl_kick, reason, RD_REASON_MAX), END
};
static const struct rd_field f_ctl_broadcast[] = {
	ENUM(rd_msg_ctl_broadcast, scope, RD_SCOPE_ALL, RD_SCOPE_USER),
	CHARS(rd_msg_ctl_broadcast, target, N_TARGET), STR(rd_msg_ctl_broadcast, text, RD_TEXT_MAX),
	END
};
static const struct rd_field f_ctl_server_info[] = {
	CHARS(rd_msg_ctl_server_info, software, N_ANY),
	CHARS(rd_msg_ctl_server_info, listen, N_NONEMPTY),
	ENUM(rd_msg_ctl_server_info, tls, 0, 1), CHARS(rd_msg_ctl_server_info, fingerprint, N_ANY),
	INT(rd_msg_ctl_server_info, clients), INT(rd_msg_ctl_server_info, registered),
	INT(rd_msg_ctl_server_info, rooms), INT(rd_msg_ctl_server_info, uptime_ms),
	INT(rd_msg_ctl_server_info, offers), INT(rd_msg_ctl_server_info, relay_peak), END
};

/* Sorted by type (binary search). */
static const struct msg_desc msg_table[] = {
	{ RD_MSG_HELLO, f_hello },
	{ RD_MSG_HELLO_OK, f_hello_ok },
	{ RD_MSG_NICK, f_nick },
	{ RD_MSG_WELCOME, f_welcome },
	{ RD_MSG_OK, f_ok },
	{ RD_MSG_ERROR, f_error },
	{ RD_MSG_PING, f_ping },
	{ RD_MSG_PONG, f_ping },
	{ RD_MSG_BYE, f_bye },
	{ RD_MSG_SHUTDOWN, f_bye },
	{ RD_MSG_REDIRECT, f_redirect },
	{ RD_MSG_AUTH, f_auth },
	{ RD_MSG_ROOMS, f_empty },
	{ RD_MSG_ROOM_LIST, f_room_list },
	{ RD_MSG_JOIN, f_join },
	{ RD_MSG_JOINED, f_joined },
	{ RD_MSG_LEAVE, f_empty },
	{ RD_MSG_WHO, f_who },
	{ RD_MSG_WHO_LIST, f_who_list },
	{ RD_MSG_JOIN_KEY, f_join_key },
	{ RD_MSG_SAY, f_say },
	{ RD_MSG_TELL, f_tell },
	{ RD_MSG_ROOM_MSG, f_room_msg },
	{ RD_MSG_PRIVATE_MSG, f_private_msg },
	{ RD_MSG_PRESENCE, f_presence },
	{ RD_MSG_BROADCAST, f_broadcast },
	{ RD_MSG_KICKED, f_kicked },
	{ RD_MSG_ROOM_DIRECT, f_room_direct },
	{ RD_MSG_ROOM_MODE, f_room_mode },
	{ RD_MSG_SAY_EXCEPT, f_say_except },
	{ RD_MSG_PRESENCE_SUMMARY, f_presence_summary },
	{ RD_MSG_OFFER, f_offer },
	{ RD_MSG_OFFER_PENDING, f_offer_pending },
	{ RD_MSG_OFFER_IN, f_offer_in },
	{ RD_MSG_OFFER_ANSWER, f_offer_answer },
	{ RD_MSG_OFFER_CANCEL, f_offer_id },
	{ RD_MSG_OFFER_RESULT, f_offer_result },
	{ RD_MSG_OFFER_DATA, f_offer_data },
	{ RD_MSG_OFFER_END, f_offer_end },
	{ RD_MSG_OFFER_ANSWERED, f_offer_answered },
	{ RD_MSG_P2P_LISTEN, f_p2p_listen },
	{ RD_MSG_P2P_INTRO, f_p2p_intro },
	{ RD_MSG_P2P_HELLO, f_p2p_hello },
	{ RD_MSG_P2P_READY, f_offer_id },
	{ RD_MSG_P2P_FAILED, f_p2p_failed },
	{ RD_MSG_CTL_LIST, f_empty },
	{ RD_MSG_CTL_CLIENTS, f_ctl_clients },
	{ RD_MSG_CTL_KICK, f_ctl_kick },
	{ RD_MSG_CTL_BROADCAST, f_ctl_broadcast },
	{ RD_MSG_CTL_INFO, f_empty },
	{ RD_MSG_CTL_SERVER_INFO, f_ctl_server_info },
	{ RD_MSG_CTL_RELEASE, f_ctl_release },
	{ RD_MSG_CTL_OP, f_ctl_op },
	{ RD_MSG_CTL_ADMIT, f_ctl_admit },
	{ RD_MSG_CTL_INVITE, f_ctl_invite },
	{ RD_MSG_CTL_INVITATION, f_ctl_invitation },
	{ RD_MSG_CTL_UNINVITE, f_ctl_uninvite },
};

/* clang-format on */

/* The core's types by binary search in msg_table, then what applications registered. */
static const struct rd_field *lookup(uint16_t type)
{
	size_t lo = 0, hi = RD_ARRAY_LEN(msg_table);

	if (type >= RD_TYPE_APP_FIRST)
		return rd_codec_app_fields(type);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (msg_table[mid].type == type)
			return msg_table[mid].fields;
		if (msg_table[mid].type < type)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- integers by member size ---------------------------------------------------------- */

static uint64_t load_int(const uint8_t *p, size_t size)
{
	switch (size) {
	case 1:
		return *p;
	case 2:
		return *(const uint16_t *)(const void *)p;
	case 4:
		return *(const uint32_t *)(const void *)p;
	default:
		return *(const uint64_t *)(const void *)p;
	}
}

static void store_int(uint8_t *p, size_t size, uint64_t v)
{
	switch (size) {
	case 1:
		*p = (uint8_t)v;
		break;
	case 2:
		*(uint16_t *)(void *)p = (uint16_t)v;
		break;
	case 4:
		*(uint32_t *)(void *)p = (uint32_t)v;
		break;
	default:
		*(uint64_t *)(void *)p = v;
		break;
	}
}

static int put_int(struct rd_buf *b, size_t size, uint64_t v)
{
	switch (size) {
	case 1:
		return rd_buf_put_u8(b, (uint8_t)v);
	case 2:
		return rd_buf_put_u16(b, (uint16_t)v);
	case 4:
		return rd_buf_put_u32(b, (uint32_t)v);
	default:
		return rd_buf_put_u64(b, v);
	}
}

static int get_int(struct rd_buf *b, size_t size, uint64_t *v)
{
	uint8_t u8 = 0;
	uint16_t u16 = 0;
	uint32_t u32 = 0;
	int rc;

	*v = 0;
	switch (size) {
	case 1:
		rc = rd_buf_get_u8(b, &u8);
		*v = u8;
		break;
	case 2:
		rc = rd_buf_get_u16(b, &u16);
		*v = u16;
		break;
	case 4:
		rc = rd_buf_get_u32(b, &u32);
		*v = u32;
		break;
	default:
		rc = rd_buf_get_u64(b, v);
		break;
	}
	return rc;
}

/* ---- encoder --------------------------------------------------------------------------- */

static int name_ok(unsigned rule, const char *s, size_t n)
{
	uint16_t e;

	if (n == 0 && (rule & N_EMPTY_OK))
		return 1;
	switch (rule & N_MASK) {
	case N_NICK:
		e = rd_nick_check(s, n);
		return e == 0 || e == RD_E_NICK_RESERVED;
	case N_NICK_NEW:
		return rd_nick_check(s, n) == 0;
	case N_ROOM:
		return rd_room_check(s, n) == 0;
	case N_FILE:
		return rd_filename_check(s, n) == 0;
	case N_NONEMPTY:
		return n > 0;
	default: /* N_ANY; N_TARGET is checked with its scope by target_ok() */
		return 1;
	}
}

/* BROADCAST / CTL_BROADCAST: no target for everyone, a room name or a nickname. */
static int target_ok(uint8_t scope, const char *target)
{
	size_t n = strlen(target);

	switch (scope) {
	case RD_SCOPE_ALL:
		return n == 0;
	case RD_SCOPE_ROOM:
		return name_ok(N_ROOM, target, n);
	case RD_SCOPE_USER:
		return name_ok(N_NICK, target, n);
	default:
		return 0;
	}
}

static int encode_fields(const struct rd_field *f, const uint8_t *base, struct rd_buf *out)
{
	for (; f->kind != K_END; f++) {
		const uint8_t *mp = base + f->off;
		int rc = 0;

		switch (f->kind) {
		case K_INT: {
			uint64_t v = load_int(mp, f->size);

			if (f->rule && (v < f->lo || v > f->hi))
				return RD_ERR_INVAL;
			rc = put_int(out, f->size, v);
			break;
		}
		case K_CHARS: {
			const char *s = (const char *)mp;
			size_t n = strnlen(s, f->size);

			if (n == f->size || !name_ok(f->rule, s, n))
				return RD_ERR_INVAL;
			rc = rd_buf_put_str(out, s, n);
			break;
		}
		case K_STR: {
			const struct rd_str *s = (const struct rd_str *)(const void *)mp;

			if (s->n > f->size || (s->n && (!s->p || memchr(s->p, 0, s->n))))
				return RD_ERR_INVAL;
			rc = rd_buf_put_str(out, s->p, s->n);
			break;
		}
		case K_BYTES: {
			const struct rd_bytes *d = (const struct rd_bytes *)(const void *)mp;

			if (d->n > f->size || (d->n && !d->p))
				return RD_ERR_INVAL;
			rc = rd_buf_put_bytes(out, d->p, d->n);
			break;
		}
		case K_RAW:
			rc = rd_buf_put(out, mp, f->size);
			break;
		case K_LIST: {
			uint32_t count = *(const uint32_t *)(const void *)mp;
			const uint8_t *items =
				*(const uint8_t *const *)(const void *)(base + f->off2);

			if (count && !items)
				return RD_ERR_INVAL;
			rc = rd_buf_put_u32(out, count);
			for (uint32_t i = 0; rc == 0 && i < count; i++)
				rc = encode_fields(f->list->fields, items + i * f->list->entry_size,
						   out);
			break;
		}
		default:
			return RD_ERR_INVAL;
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

int rd_msg_encode(const struct rd_msg *m, struct rd_buf *out)
{
	const struct rd_field *f;
	size_t start;
	int rc;

	if (!m || !out)
		return RD_ERR_INVAL;
	if (!(f = lookup(m->type)))
		return RD_ERR_UNKNOWN_TYPE;
	if ((m->type == RD_MSG_BROADCAST &&
	     !target_ok(m->u.broadcast.scope, m->u.broadcast.target)) ||
	    (m->type == RD_MSG_CTL_BROADCAST &&
	     !target_ok(m->u.ctl_broadcast.scope, m->u.ctl_broadcast.target)))
		return RD_ERR_INVAL;
	/* GONE and EXPIRED are the server's answers, never a recipient's */
	if (m->type == RD_MSG_OFFER_ANSWER && (m->u.offer_answer.answer == RD_ANSWER_GONE ||
					       m->u.offer_answer.answer == RD_ANSWER_EXPIRED))
		return RD_ERR_INVAL;
	start = out->len;
	if ((rc = encode_fields(f, (const uint8_t *)&m->u, out)) != 0)
		out->len = start; /* leave the buffer as it was */
	return rc;
}

/* ---- decoder --------------------------------------------------------------------------- */

/* Smallest number of wire bytes one entry of these fields can take. */
static size_t min_wire_size(const struct rd_field *f)
{
	size_t n = 0;

	for (; f->kind != K_END; f++) {
		switch (f->kind) {
		case K_INT:
		case K_RAW:
			n += f->size;
			break;
		case K_CHARS:
		case K_STR:
			n += 2;
			break;
		default:
			n += 4;
			break; /* K_BYTES, K_LIST */
		}
	}
	return n ? n : 1;
}

/* A short read is a lying payload: the whole frame was there. */
static int short_is_malformed(int rc)
{
	return rc == RD_ERR_INCOMPLETE ? RD_ERR_MALFORMED : rc;
}

static int decode_fields(const struct rd_field *f, struct rd_buf *b, uint8_t *base)
{
	for (; f->kind != K_END; f++) {
		uint8_t *mp = base + f->off;
		const char *sp = NULL;
		const uint8_t *bp = NULL;
		size_t n = 0;
		int rc;

		switch (f->kind) {
		case K_INT: {
			uint64_t v;

			if ((rc = get_int(b, f->size, &v)) != 0)
				return short_is_malformed(rc);
			store_int(mp, f->size, v);
			break;
		}
		case K_CHARS:
		case K_STR:
			if ((rc = rd_buf_get_str_view(b, &sp, &n)) != 0)
				return short_is_malformed(rc);
			if (f->kind == K_CHARS ? n >= f->size : n > f->size)
				return RD_ERR_TOO_BIG;
			if (n && memchr(sp, 0, n))
				return RD_ERR_MALFORMED;
			if (f->kind == K_CHARS) {
				if (n)
					memcpy(mp, sp, n);
				mp[n] = '\0';
			} else {
				((struct rd_str *)(void *)mp)->p = sp;
				((struct rd_str *)(void *)mp)->n = n;
			}
			break;
		case K_BYTES:
			if ((rc = rd_buf_get_bytes_view(b, &bp, &n)) != 0)
				return short_is_malformed(rc);
			if (n > f->size)
				return RD_ERR_TOO_BIG;
			((struct rd_bytes *)(void *)mp)->p = bp;
			((struct rd_bytes *)(void *)mp)->n = n;
			break;
		case K_RAW:
			if ((rc = rd_buf_get(b, mp, f->size)) != 0)
				return short_is_malformed(rc);
			break;
		case K_LIST: {
			uint32_t count;
			uint8_t *items;

			if ((rc = rd_buf_get_u32(b, &count)) != 0)
				return short_is_malformed(rc);
			/* a lying count is refused before anything is allocated for it */
			if (count > rd_buf_avail(b) / min_wire_size(f->list->fields))
				return RD_ERR_MALFORMED;
			if (count == 0)
				break;
			if (!(items = calloc(count, f->list->entry_size)))
				return RD_ERR_NOMEM;
			/* stored at once so that the caller's cleanup frees them on error */
			*(uint32_t *)(void *)mp = count;
			*(uint8_t **)(void *)(base + f->off2) = items;
			for (uint32_t i = 0; i < count; i++) {
				rc = decode_fields(f->list->fields, b,
						   items + i * f->list->entry_size);
				if (rc != 0)
					return rc;
			}
			break;
		}
		default:
			return RD_ERR_INVAL;
		}
	}
	return 0;
}

int rd_msg_decode(uint16_t type, const uint8_t *p, size_t n, struct rd_msg *m)
{
	const struct rd_field *f;
	struct rd_buf b;
	int rc;

	if (!m)
		return RD_ERR_INVAL;
	memset(m, 0, sizeof(*m));
	if (!p && n)
		return RD_ERR_INVAL;
	if (!(f = lookup(type)))
		return RD_ERR_UNKNOWN_TYPE;
	m->type = type;
	m->decoded_items_ = 1;
	rd_buf_view(&b, p, n);
	if ((rc = decode_fields(f, &b, (uint8_t *)&m->u)) != 0)
		rd_msg_clear(m);
	return rc;
}

/* ---- the rest --------------------------------------------------------------------------- */

void rd_msg_init(struct rd_msg *m, uint16_t type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
}

void rd_msg_clear(struct rd_msg *m)
{
	const struct rd_field *f;

	if (!m)
		return;
	if (m->decoded_items_ && (f = lookup(m->type)) != NULL) {
		for (; f->kind != K_END; f++)
			if (f->kind == K_LIST)
				free(*(void **)(void *)((uint8_t *)&m->u + f->off2));
	}
	memset(m, 0, sizeof(*m));
}

int rd_msg_known(uint16_t type)
{
	return lookup(type) != NULL;
}

struct rd_str rd_str_c(const char *s)
{
	struct rd_str r = { s ? s : "", s ? strlen(s) : 0 };

	return r;
}

int rd_msg_frame(struct rd_buf *out, const struct rd_msg *m, uint32_t req_id, unsigned opts)
{
	struct rd_frame_hdr h = { 0 };
	struct rd_buf tmp;
	uint8_t *space;
	size_t start;
	int rc;

	if (!out || !m)
		return RD_ERR_INVAL;
	if (opts & RD_FRAME_COMPRESS) {
		/* zlib needs the whole payload first: encode aside, let rd_frame_append decide */
		rd_buf_init(&tmp, RD_MAX_PAYLOAD_HARD);
		if ((rc = rd_msg_encode(m, &tmp)) == 0)
			rc = rd_frame_append(out, m->type, req_id, tmp.data, tmp.len, opts);
		rd_buf_free(&tmp);
		return rc;
	}
	/* Uncompressed: encode straight after a reserved header, then fill the header in. */
	start = out->len;
	if ((rc = rd_buf_append_space(out, RD_FRAME_HEADER_SIZE, &space)) != 0)
		goto out;
	(void)space; /* filled in below, once the payload length is known */
	if ((rc = rd_msg_encode(m, out)) != 0)
		goto out;
	if (out->len - start - RD_FRAME_HEADER_SIZE > RD_MAX_PAYLOAD_HARD) {
		rc = RD_ERR_TOO_BIG;
		goto out;
	}
	h.type = m->type;
	h.req_id = req_id;
	h.len = (uint32_t)(out->len - start - RD_FRAME_HEADER_SIZE);
	rd_frame_hdr_encode(&h, out->data + start); /* data may have moved since */
	rc = 0;
out:
	if (rc != 0 && out->len > start)
		out->len = start;
	return rc;
}

/* ---- payload formats that are not messages (rd_codec.h) ------------------------------ */

int rd_fields_encode(const struct rd_field *fields, const void *base, struct rd_buf *out)
{
	size_t start;
	int rc;

	if (!fields || !base || !out)
		return RD_ERR_INVAL;
	start = out->len;
	if ((rc = encode_fields(fields, base, out)) != 0)
		out->len = start; /* leave the buffer as it was */
	return rc;
}

void rd_fields_clear(const struct rd_field *fields, void *base)
{
	for (; fields != NULL && base != NULL && fields->kind != K_END; fields++)
		if (fields->kind == K_LIST) {
			free(*(void **)(void *)((uint8_t *)base + fields->off2));
			*(void **)(void *)((uint8_t *)base + fields->off2) = NULL;
			*(uint32_t *)(void *)((uint8_t *)base + fields->off) = 0;
		}
}

int rd_fields_decode(const struct rd_field *fields, const uint8_t *p, size_t n, void *base,
		     size_t base_size)
{
	struct rd_buf b;
	int rc;

	if (!fields || !base || (!p && n))
		return RD_ERR_INVAL;
	memset(base, 0, base_size);
	rd_buf_view(&b, p, n);
	if ((rc = decode_fields(fields, &b, base)) != 0)
		rd_fields_clear(fields, base);
	return rc;
}
