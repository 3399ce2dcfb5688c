/* rd_proto.h - protocol constants: frame layout, message type numbers, wire error codes,
 * limits and timers. PROTOCOL.md is the authority; this header mirrors it and a unit
 * test checks the two agree (tests/unit/test_protocol_doc.c).
 */
#ifndef RD_PROTO_H
#define RD_PROTO_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- frame header (16 bytes, big-endian) ------------------------------------------
 *  0..1  magic        'R' 'D' (0x52 0x44)
 *  2     version      RD_PROTO_VERSION
 *  3     flags        RD_FLAG_*; unknown bits are ignored on receipt, sent as 0
 *  4..5  type         message type (RD_MSG_*)
 *  6..7  reserved     sent as 0, ignored on receipt
 *  8..11 request id   chosen by the asker; replies echo it; 0 = unsolicited
 * 12..15 length       payload length in bytes (as on the wire, after compression)
 */
#define RD_MAGIC0 0x52u
#define RD_MAGIC1 0x44u
#define RD_PROTO_VERSION 1u
#define RD_FRAME_HEADER_SIZE 16u

#define RD_FLAG_COMPRESSED 0x01u /* payload = u32 original length + zlib stream */
#define RD_FLAG_KNOWN_MASK 0x01u

/* ---- limits ------------------------------------------------------------------------ */
#define RD_MAX_PAYLOAD_DEFAULT (1u << 20) /* 1 MiB: largest payload a peer must accept */
#define RD_MAX_PAYLOAD_UNREGISTERED 1024u /* a server's limit until WELCOME (section 6) */
#define RD_MAX_PAYLOAD_HARD (16u << 20)   /* no configuration goes above 16 MiB */
#define RD_NICK_MAX 32u                   /* bytes */
#define RD_ROOM_MAX 32u                   /* bytes */
#define RD_FILENAME_MAX 255u              /* bytes of UTF-8 */
#define RD_SOFTWARE_MAX 64u
#define RD_REASON_MAX 200u
#define RD_TEXT_MAX 65535u /* broadcast / error message text */
#define RD_CHAT_MAX 65536u /* room or private message data */
#define RD_HOST_MAX 255u
#define RD_TOKEN_SIZE 16u
#define RD_P2P_FP_SIZE 32u   /* a key fingerprint in P2P_INTRO (SHA-256) */
#define RD_FP_SIZE 32u       /* a key fingerprint in REDIRECT (SHA-256; all zero = none) */
#define RD_P2P_ADDR_BUF 64u  /* "IP:PORT" or "[V6]:PORT" and NUL */
#define RD_P2P_MAX_ADDRS 16u /* addresses in P2P_LISTEN / P2P_INTRO */
#define RD_SHA256_SIZE 32u
#define RD_CHUNK_SIZE (256u * 1024u) /* file chunk payload data, before compression */
#define RD_DESCRIPTOR_MAX 65536u     /* offer descriptor and answer data bytes */
#define RD_MAX_ROOMS 256u
#define RD_ROOM_DIRECT_MAX 8u /* members of a room in direct mode (PROTOCOL.md 14.5) */
#define RD_SAY_EXCEPT_MAX 32u /* names in SAY_EXCEPT.except */

/* ---- timers (defaults, milliseconds) ----------------------------------------------- */
#define RD_PRESENCE_BURST_DEFAULT 100000u /* PRESENCE deliveries a second told one by one */
#define RD_PING_INTERVAL_MS 30000u
#define RD_PING_TIMEOUT_MS 5000u
#define RD_REGISTER_TIMEOUT_MS 10000u
#define RD_OFFER_TIMEOUT_MS 60000u
#define RD_OFFER_TIMEOUT_MAX_MS 600000u
#define RD_P2P_TOKEN_TTL_MS 30000u
#define RD_STAGING_TTL_S (24u * 3600u)

/* ---- message type numbers ----------------------------------------------------------
 * 0x0001-0x0FFF  core room protocol (libroomdrop)
 * 0x1000-0x10FF  roomdrop file application (shared/files/rdf_proto.h)
 * 0x1100-0x7FFF  free for other applications that link libroomdrop
 * 0x8000-0xFFFF  reserved
 * An application registers the codec rows of its types with rd_msg_register (rd_codec.h).
 */
#define RD_TYPE_CORE_FIRST 0x0001u
#define RD_TYPE_CORE_LAST 0x0FFFu
#define RD_TYPE_APP_FIRST 0x1000u
#define RD_TYPE_APP_LAST 0x7FFFu

enum rd_msg_type {
	/* session */
	RD_MSG_HELLO = 0x0001,    /* C->S */
	RD_MSG_HELLO_OK = 0x0002, /* S->C */
	RD_MSG_NICK = 0x0003,     /* C->S */
	RD_MSG_WELCOME = 0x0004,  /* S->C */
	RD_MSG_OK = 0x0005,       /* S->C generic success reply */
	RD_MSG_ERROR = 0x0006,    /* either direction */
	RD_MSG_PING = 0x0007,     /* either direction */
	RD_MSG_PONG = 0x0008,     /* either direction */
	RD_MSG_BYE = 0x0009,      /* C->S: polite quit */
	RD_MSG_SHUTDOWN = 0x000A, /* S->C: server is stopping */
	RD_MSG_REDIRECT = 0x000B, /* S->C: go to another server */
	RD_MSG_AUTH = 0x000C,     /* C->S: a password or an invitation, before NICK */
	/* rooms */
	RD_MSG_ROOMS = 0x0010,     /* C->S */
	RD_MSG_ROOM_LIST = 0x0011, /* S->C */
	RD_MSG_JOIN = 0x0012,      /* C->S */
	RD_MSG_JOINED = 0x0013,    /* S->C */
	RD_MSG_LEAVE = 0x0014,     /* C->S */
	RD_MSG_WHO = 0x0015,       /* C->S */
	RD_MSG_WHO_LIST = 0x0016,  /* S->C */
	RD_MSG_JOIN_KEY = 0x0017,  /* C->S: JOIN with the room key of a restricted room */
	/* messages and notices */
	RD_MSG_SAY = 0x0020,              /* C->S: to my room */
	RD_MSG_TELL = 0x0021,             /* C->S: to one user */
	RD_MSG_ROOM_MSG = 0x0022,         /* S->C */
	RD_MSG_PRIVATE_MSG = 0x0023,      /* S->C */
	RD_MSG_PRESENCE = 0x0024,         /* S->C */
	RD_MSG_BROADCAST = 0x0025,        /* S->C */
	RD_MSG_KICKED = 0x0026,           /* S->C */
	RD_MSG_ROOM_DIRECT = 0x0027,      /* C->S: switch my room to direct mode, or back */
	RD_MSG_ROOM_MODE = 0x0028,        /* S->C: the room's mode (to every member) */
	RD_MSG_SAY_EXCEPT = 0x0029,       /* C->S: to my room, except the members named */
	RD_MSG_PRESENCE_SUMMARY = 0x002A, /* S->C: arrivals and departures too many to list */
	/* offers */
	RD_MSG_OFFER = 0x0030,          /* C->S */
	RD_MSG_OFFER_PENDING = 0x0031,  /* S->C (to offerer) */
	RD_MSG_OFFER_IN = 0x0032,       /* S->C (to receiver) */
	RD_MSG_OFFER_ANSWER = 0x0033,   /* C->S (receiver) */
	RD_MSG_OFFER_CANCEL = 0x0034,   /* C->S (offerer) */
	RD_MSG_OFFER_RESULT = 0x0035,   /* S->C (both sides) */
	RD_MSG_OFFER_DATA = 0x0036,     /* C->S->C relayed bytes of an accepted offer */
	RD_MSG_OFFER_END = 0x0037,      /* C->S->C end of relayed bytes */
	RD_MSG_OFFER_ANSWERED = 0x0038, /* S->C (to offerer): one recipient's answer */
	/* peer to peer */
	RD_MSG_P2P_LISTEN = 0x0040, /* C->S (both sides: I listen on port, at addresses) */
	RD_MSG_P2P_INTRO = 0x0041,  /* S->C (both sides) */
	RD_MSG_P2P_HELLO = 0x0042,  /* peer->peer (connecting side) */
	RD_MSG_P2P_READY = 0x0043,  /* peer->peer (listening side) */
	RD_MSG_P2P_FAILED = 0x0044, /* C->S, S->C: no direct link, fall back */
	/* 0x0050-0x005F: reserved (once planned for server links; servers of a cluster share
	 * state through Redis instead, PROTOCOL.md section 15) */
	/* local administration (Unix control socket only; never accepted over TCP) */
	RD_MSG_CTL_LIST = 0x0060,        /* ctl->S */
	RD_MSG_CTL_CLIENTS = 0x0061,     /* S->ctl */
	RD_MSG_CTL_KICK = 0x0062,        /* ctl->S, reply OK / ERROR */
	RD_MSG_CTL_BROADCAST = 0x0063,   /* ctl->S, reply OK / ERROR */
	RD_MSG_CTL_INFO = 0x0064,        /* ctl->S */
	RD_MSG_CTL_SERVER_INFO = 0x0065, /* S->ctl */
	RD_MSG_CTL_RELEASE = 0x0066,     /* ctl->S, reply OK / ERROR */
	RD_MSG_CTL_OP = 0x0067,          /* ctl->S, reply OK / ERROR */
	RD_MSG_CTL_ADMIT = 0x0068,       /* ctl->S, reply OK / ERROR */
	RD_MSG_CTL_INVITE = 0x0069,      /* ctl->S, reply CTL_INVITATION / ERROR */
	RD_MSG_CTL_INVITATION = 0x006A,  /* S->ctl */
	RD_MSG_CTL_UNINVITE = 0x006B,    /* ctl->S, reply OK / ERROR */
};

/* Name of a message type ("HELLO"), or NULL if neither the core nor a registered
 * application (rd_msg_register) knows it. */
const char *rd_msg_type_name(uint16_t type);

/* ---- wire error codes (ERROR.code) ---------------------------------------------- */
enum rd_wire_err {
	/* 1xx: framing and protocol */
	RD_E_MALFORMED = 100,       /* payload could not be decoded */
	RD_E_BAD_MAGIC = 101,       /* connection closed after it */
	RD_E_BAD_VERSION = 102,     /* protocol version not supported */
	RD_E_TOO_BIG = 103,         /* declared length above the limit; connection closed */
	RD_E_UNKNOWN_TYPE = 104,    /* no handler for this type */
	RD_E_UNEXPECTED = 105,      /* message not valid in this state (e.g. before NICK) */
	RD_E_BAD_COMPRESSION = 106, /* zlib data corrupt or larger than declared */
	RD_E_NOT_REGISTERED = 107,  /* HELLO and NICK must come first */
	RD_E_RATE = 108,            /* too many requests */
	RD_E_TLS_REQUIRED = 109,    /* a plaintext client reached a TLS-only server */
	/* 2xx: registration */
	RD_E_NICK_TAKEN = 200,
	RD_E_NICK_INVALID = 201,  /* characters outside the allowed set */
	RD_E_NICK_LENGTH = 202,   /* empty or longer than RD_NICK_MAX */
	RD_E_NICK_RESERVED = 203, /* e.g. "server" */
	RD_E_ALREADY_REGISTERED = 204,
	RD_E_SERVER_FULL = 205, /* --max-clients reached; connection closed */
	RD_E_REGISTER_TIMEOUT = 206,
	RD_E_NICK_OWNED = 207,    /* the nickname is registered to another client key */
	RD_E_AUTH_REQUIRED = 208, /* this server wants a password (AUTH) before NICK */
	RD_E_NOT_ADMITTED = 209,  /* this server admits only known keys, and not this one */
	RD_E_BAD_SECRET = 210,    /* AUTH: wrong password, or an unknown, used, expired or
				    * revoked invitation */
	/* 3xx: rooms and messages */
	RD_E_NO_SUCH_ROOM = 300,
	RD_E_NOT_IN_ROOM = 301,
	RD_E_NO_SUCH_USER = 302,
	RD_E_MESSAGE_TOO_LONG = 303,
	RD_E_SLOW_READER = 304, /* output bound exceeded; connection closed */
	RD_E_PING_TIMEOUT = 305,
	RD_E_ROOM_TOO_BIG = 306, /* direct mode: the room has more than RD_ROOM_DIRECT_MAX */
	/* 4xx: offers and peer to peer */
	RD_E_NO_SUCH_OFFER = 400,
	RD_E_OFFER_SELF = 401,
	RD_E_OFFER_STATE = 402, /* offer not in a state that allows this */
	RD_E_BAD_TOKEN = 403,
	RD_E_TOO_MANY_OFFERS = 404, /* the offerer already waits on its limit of offers */
	RD_E_OFFER_NOBODY = 405,    /* a room offer, and nobody else is in the room */
	/* 5xx-8xx: applications (rd_wire_err_register, rd_codec.h) */
	/* 9xx: server */
	RD_E_INTERNAL = 900,
	RD_E_SHUTTING_DOWN = 901,
	RD_E_CLUSTER_DEGRADED = 902, /* the cluster's shared state (Redis) does not answer */
};

/* Short fixed text for a wire error code ("nickname taken"), including the codes that
 * applications registered (rd_wire_err_register), or "unknown error". */
const char *rd_wire_strerror(uint16_t code);

/* Constants carried in fields */
enum rd_data_kind {
	RD_KIND_TEXT = 0,
	RD_KIND_BINARY = 1
};
enum rd_presence_event {
	RD_PRESENCE_CONNECTED = 1,
	RD_PRESENCE_DISCONNECTED = 2,
	RD_PRESENCE_JOINED = 3,
	RD_PRESENCE_LEFT = 4,
	RD_PRESENCE_KICKED = 5,
	RD_PRESENCE_TIMED_OUT = 6,
	RD_PRESENCE_NICK = 7 /* reserved: nickname change */
};
enum rd_broadcast_scope {
	RD_SCOPE_ALL = 0,
	RD_SCOPE_ROOM = 1,
	RD_SCOPE_USER = 2
};
enum rd_offer_outcome {
	RD_OFFER_ACCEPTED = 1,
	RD_OFFER_REJECTED = 2,
	RD_OFFER_CANCELLED = 3,
	RD_OFFER_EXPIRED = 4,
	RD_OFFER_PEER_GONE = 5,
	RD_OFFER_COMPLETED = 6,
	RD_OFFER_FAILED = 7
};
enum rd_offer_scope {
	RD_OFFER_TO_USER = 1,
	RD_OFFER_TO_ROOM = 2
};
enum rd_auth_kind {
	RD_AUTH_PASSWORD = 1,
	RD_AUTH_INVITE = 2 /* the secret of an invitation (admits the client's key) */
};
#define RD_SECRET_MAX 256u   /* bytes of AUTH.secret */
#define RD_INVITE_SECRET 16u /* bytes of an invitation's secret (32 hex digits in a link) */
enum rd_offer_answer {
	RD_ANSWER_ACCEPT = 1,
	RD_ANSWER_REJECT = 2,
	RD_ANSWER_HOLD = 3,
	RD_ANSWER_GONE = 4,    /* server-made: the recipient disconnected (counts as a rejection) */
	RD_ANSWER_EXPIRED = 5, /* server-made: no answer before the deadline */
	RD_ANSWER_DONE = 6, /* a recipient that accepted: it has what it took (data: how it went) */
	RD_ANSWER_RESUME = 7 /* a recipient that accepted, before DONE: what it needs now (data),
			      * e.g. after a direct link broke; as often as needed */
};
enum rd_p2p_role {
	RD_P2P_CHOOSER = 1, /* the offerer: confirms the first verified connection */
	RD_P2P_FOLLOWER = 2 /* the recipient: keeps the connection the chooser confirms */
};
/* HELLO.features bits */
#define RD_FEAT_ZLIB 0x00000001u
#define RD_FEAT_P2P 0x00000002u
#define RD_FEAT_FILES 0x00000004u
#define RD_FEAT_REDIRECT 0x00000008u
#define RD_FEAT_QUIET 0x00000010u    /* client: a short-lived session, not announced */
#define RD_FEAT_PUT_SEAL 0x00000020u /* files: a PUT may leave its SHA-256 to PUT_SEAL */

#ifdef __cplusplus
}
#endif
#endif
