/* rd_proto.c - names of message types and texts of wire error codes (rd_proto.h): the
 * core's here, applications' from the registry of rd_codec.c. */
#include "rd_proto.h"

#include <stddef.h>

#include "internal.h"

struct code_text {
	uint16_t code;
	const char *text;
};

#define NAME(t)                \
	{                      \
		RD_MSG_##t, #t \
	}
/* clang-format off */
static const struct code_text type_names[] = {
	NAME(HELLO),
	NAME(HELLO_OK),
	NAME(NICK),
	NAME(WELCOME),
	NAME(OK),
	NAME(ERROR),
	NAME(PING),
	NAME(PONG),
	NAME(BYE),
	NAME(SHUTDOWN),
	NAME(REDIRECT),
	NAME(AUTH),
	NAME(ROOMS),
	NAME(ROOM_LIST),
	NAME(JOIN),
	NAME(JOINED),
	NAME(LEAVE),
	NAME(WHO),
	NAME(WHO_LIST),
	NAME(JOIN_KEY),
	NAME(SAY),
	NAME(TELL),
	NAME(ROOM_MSG),
	NAME(PRIVATE_MSG),
	NAME(PRESENCE),
	NAME(BROADCAST),
	NAME(KICKED),
	NAME(ROOM_DIRECT),
	NAME(ROOM_MODE),
	NAME(SAY_EXCEPT),
	NAME(PRESENCE_SUMMARY),
	NAME(OFFER),
	NAME(OFFER_PENDING),
	NAME(OFFER_IN),
	NAME(OFFER_ANSWER),
	NAME(OFFER_CANCEL),
	NAME(OFFER_RESULT),
	NAME(OFFER_DATA),
	NAME(OFFER_END),
	NAME(P2P_LISTEN),
	NAME(P2P_INTRO),
	NAME(P2P_HELLO),
	NAME(P2P_READY),
	NAME(P2P_FAILED),
	NAME(CTL_LIST),
	NAME(CTL_CLIENTS),
	NAME(CTL_KICK),
	NAME(CTL_BROADCAST),
	NAME(CTL_INFO),
	NAME(CTL_SERVER_INFO),
	NAME(CTL_RELEASE),
	NAME(CTL_OP),
	NAME(CTL_ADMIT),
	NAME(CTL_INVITE),
	NAME(CTL_INVITATION),
	NAME(CTL_UNINVITE),
	NAME(OFFER_ANSWERED),
};
/* clang-format on */
#undef NAME

static const struct code_text wire_errors[] = {
	{ RD_E_MALFORMED, "malformed message" },
	{ RD_E_BAD_MAGIC, "bad frame magic" },
	{ RD_E_BAD_VERSION, "protocol version not supported" },
	{ RD_E_TOO_BIG, "frame too big" },
	{ RD_E_UNKNOWN_TYPE, "unknown message type" },
	{ RD_E_UNEXPECTED, "unexpected message" },
	{ RD_E_BAD_COMPRESSION, "bad compressed data" },
	{ RD_E_NOT_REGISTERED, "not registered" },
	{ RD_E_RATE, "too many requests" },
	{ RD_E_TLS_REQUIRED, "this server speaks TLS only" },
	{ RD_E_NICK_TAKEN, "nickname taken" },
	{ RD_E_NICK_INVALID, "invalid nickname" },
	{ RD_E_NICK_LENGTH, "nickname empty or too long" },
	{ RD_E_NICK_RESERVED, "nickname reserved" },
	{ RD_E_NICK_OWNED, "nickname registered to another key" },
	{ RD_E_AUTH_REQUIRED, "password required" },
	{ RD_E_NOT_ADMITTED, "not admitted" },
	{ RD_E_BAD_SECRET, "wrong password or invitation" },
	{ RD_E_ALREADY_REGISTERED, "already registered" },
	{ RD_E_SERVER_FULL, "server full" },
	{ RD_E_REGISTER_TIMEOUT, "registration timed out" },
	{ RD_E_NO_SUCH_ROOM, "no such room" },
	{ RD_E_NOT_IN_ROOM, "not in a room" },
	{ RD_E_NO_SUCH_USER, "no such user" },
	{ RD_E_MESSAGE_TOO_LONG, "message too long" },
	{ RD_E_SLOW_READER, "too slow reading" },
	{ RD_E_PING_TIMEOUT, "ping timeout" },
	{ RD_E_ROOM_TOO_BIG, "room too big for direct mode" },
	{ RD_E_NO_SUCH_OFFER, "no such offer" },
	{ RD_E_OFFER_SELF, "cannot offer to yourself" },
	{ RD_E_OFFER_STATE, "offer not in a state that allows this" },
	{ RD_E_BAD_TOKEN, "bad token" },
	{ RD_E_TOO_MANY_OFFERS, "too many offers" },
	{ RD_E_OFFER_NOBODY, "nobody to offer to" },
	{ RD_E_INTERNAL, "internal server error" },
	{ RD_E_SHUTTING_DOWN, "server shutting down" },
	{ RD_E_CLUSTER_DEGRADED, "cluster degraded, try again" },
};

static const char *find(const struct code_text *t, size_t n, uint16_t code)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].code == code)
			return t[i].text;
	return NULL;
}

const char *rd_msg_type_name(uint16_t type)
{
	if (type >= RD_TYPE_APP_FIRST)
		return rd_codec_app_name(type);
	return find(type_names, RD_ARRAY_LEN(type_names), type);
}

const char *rd_wire_strerror(uint16_t code)
{
	const char *s = find(wire_errors, RD_ARRAY_LEN(wire_errors), code);

	if (!s)
		s = rd_codec_app_err(code);
	return s ? s : "unknown error";
}
