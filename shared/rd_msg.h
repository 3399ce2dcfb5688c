/* rd_msg.h - the payload codec for the messages of PROTOCOL.md.
 *
 * struct rd_msg holds one message of any type. Encoders are strict: rd_msg_encode refuses
 * (RD_ERR_INVAL) to emit a field out of its limits or a name that breaks the rules of
 * rd_names.h. Decoders are lax in what they can be: unknown trailing bytes after the known
 * fields are ignored, unknown enum values are passed through for the handler to judge;
 * but a field that runs past the payload (RD_ERR_MALFORMED) or exceeds its limit
 * (RD_ERR_TOO_BIG) is an error.
 *
 * Ownership after rd_msg_decode: short names are copied into fixed NUL-terminated arrays;
 * struct rd_str / rd_bytes fields are views into the payload passed to the decoder and
 * live as long as it does; list items are malloc'd: call rd_msg_clear() when done.
 *
 * The core knows the room protocol's types; an application adds its own with
 * rd_msg_register (rd_codec.h) and keeps their structs in u.app.
 */
#ifndef RD_MSG_H
#define RD_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "rd_buf.h"
#include "rd_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A view of text (UTF-8, not NUL-terminated) or bytes. */
struct rd_str {
	const char *p;
	size_t n;
};
struct rd_bytes {
	const uint8_t *p;
	size_t n;
};
/* A view of a NUL-terminated C string (NULL -> empty). */
struct rd_str rd_str_c(const char *s);

#define RD_NICK_BUF (RD_NICK_MAX + 1)
#define RD_ROOM_BUF (RD_ROOM_MAX + 1)
#define RD_NAME_BUF (RD_FILENAME_MAX + 1)
#define RD_FP_TEXT_BUF 65 /* a key fingerprint's text form (64) and its NUL: rd_tls.h */
#define RD_LISTEN_BUF (RD_HOST_MAX + 9) /* "[" host "]:" port (5 digits), NUL */

struct rd_msg_hello {
	uint16_t version_min, version_max;
	uint32_t features;
	char software[RD_SOFTWARE_MAX + 1];
};
struct rd_msg_hello_ok {
	uint16_t version;
	uint32_t features;
	uint32_t max_payload;
	uint32_t ping_interval_ms, ping_timeout_ms;
	char software[RD_SOFTWARE_MAX + 1];
};
struct rd_msg_nick {
	char nick[RD_NICK_BUF];
};
struct rd_msg_welcome {
	char nick[RD_NICK_BUF];
	uint32_t client_id;
	uint64_t server_time_ms;
};
struct rd_msg_ok {
	uint16_t for_type;
};
struct rd_msg_error {
	uint16_t code;
	uint16_t for_type;
	struct rd_str text;
};
struct rd_msg_ping {
	uint64_t nonce;
}; /* PING and PONG */
struct rd_msg_bye {
	struct rd_str reason;
}; /* BYE and SHUTDOWN */
struct rd_msg_redirect {
	char host[RD_HOST_MAX + 1];
	uint16_t port;
	uint8_t temporary; /* 0 or 1: 1 = for this connection only (come back next time) */
	struct rd_str reason;
	uint8_t fp[RD_FP_SIZE]; /* that server's key as the redirecting server vouches for it;
				 * all zero = it runs plaintext */
};

struct rd_room_entry {
	char name[RD_ROOM_BUF];
	uint32_t members;
};
struct rd_msg_room_list {
	uint32_t count;
	struct rd_room_entry *items;
};
struct rd_msg_room {
	char room[RD_ROOM_BUF];
}; /* JOIN, WHO (empty room = mine) */
struct rd_msg_join_key {
	char room[RD_ROOM_BUF];
	struct rd_bytes key; /* 1..RD_SECRET_MAX bytes: the room key (PROTOCOL.md section 7) */
};
struct rd_msg_joined {
	char room[RD_ROOM_BUF];
	uint32_t members;
};
struct rd_who_entry {
	char nick[RD_NICK_BUF];
	uint64_t since_ms;
};
struct rd_msg_who_list {
	char room[RD_ROOM_BUF];
	uint32_t count;
	struct rd_who_entry *items;
};

struct rd_msg_say {
	uint8_t kind;
	struct rd_bytes data;
};
struct rd_msg_tell {
	char to[RD_NICK_BUF];
	uint8_t kind;
	struct rd_bytes data;
};
struct rd_msg_room_msg {
	char room[RD_ROOM_BUF];
	char from[RD_NICK_BUF];
	uint8_t kind;
	uint64_t time_ms;
	struct rd_bytes data;
};
struct rd_msg_private_msg {
	char from[RD_NICK_BUF];
	uint8_t kind;
	uint64_t time_ms;
	struct rd_bytes data;
};
struct rd_msg_presence {
	uint8_t event;
	char nick[RD_NICK_BUF];
	char room[RD_ROOM_BUF];
	uint64_t time_ms;
	struct rd_str reason;
};
struct rd_msg_broadcast {
	uint8_t scope;
	char target[RD_NICK_BUF];
	uint64_t time_ms;
	struct rd_str text;
};
struct rd_msg_kicked {
	char by[RD_NICK_BUF];
	struct rd_str reason;
};
struct rd_msg_room_direct {
	uint8_t on; /* 1 direct mode, 0 back through the server */
};
struct rd_msg_room_mode {
	char room[RD_ROOM_BUF];
	uint8_t direct;       /* 1: members link pairwise; 0: through the server */
	char by[RD_NICK_BUF]; /* who switched it; "" = the server (the room grew too big) */
};
/* PRESENCE_SUMMARY: in a connection storm, the PRESENCE notices of an interval counted
 * instead of sent one by one (PROTOCOL.md section 8). */
struct rd_msg_presence_summary {
	char room[RD_ROOM_BUF]; /* "" = the server: connections; else that room: joins */
	uint32_t arrived;       /* CONNECTED (or JOINED) not announced one by one */
	uint32_t departed;      /* DISCONNECTED, KICKED, TIMED_OUT (or LEFT) likewise */
	uint32_t interval_ms;   /* over this long */
	uint64_t time_ms;       /* the end of the interval */
};
struct rd_nick_entry {
	char nick[RD_NICK_BUF];
};
struct rd_msg_say_except {
	uint8_t kind;
	struct rd_bytes data;
	uint32_t count; /* members who do not get it (they had it directly) */
	struct rd_nick_entry *except;
};

struct rd_msg_offer {
	uint8_t scope; /* RD_OFFER_TO_USER (to = a nickname), RD_OFFER_TO_ROOM (to = "") */
	char to[RD_NICK_BUF];
	uint16_t app_type;
	uint32_t timeout_ms;
	struct rd_bytes descriptor;
};
struct rd_msg_offer_pending {
	uint32_t offer_id;
	uint32_t expires_in_ms;
	uint32_t recipients;
};
struct rd_msg_offer_in {
	uint32_t offer_id;
	char from[RD_NICK_BUF];
	uint16_t app_type;
	uint32_t expires_in_ms;
	char room[RD_ROOM_BUF]; /* "" = offered to you alone; else to this room */
	struct rd_bytes descriptor;
};
struct rd_msg_offer_answer {
	uint32_t offer_id;
	uint8_t answer;   /* RD_ANSWER_ACCEPT, _REJECT, _HOLD */
	uint32_t hold_ms; /* HOLD: more time wanted (0 = the server's default timeout) */
	struct rd_str reason;
	struct rd_bytes data; /* application bytes for the offerer */
};
struct rd_msg_offer_answered {
	uint32_t offer_id;
	char peer[RD_NICK_BUF]; /* the recipient who answered */
	uint8_t answer;         /* enum rd_offer_answer */
	uint32_t expires_in_ms; /* time left in the offer (HOLD moves it) */
	struct rd_str reason;
	struct rd_bytes data;
};
struct rd_msg_offer_id {
	uint32_t offer_id;
}; /* OFFER_CANCEL, P2P_READY */
struct rd_msg_offer_result {
	uint32_t offer_id;
	uint8_t outcome;
	char peer[RD_NICK_BUF];
	struct rd_str reason;
	uint32_t accepted; /* recipients who accepted (to the offerer), else 0 */
};
struct rd_msg_offer_data {
	uint32_t offer_id;
	uint64_t offset;
	struct rd_bytes data;
};
struct rd_msg_offer_end {
	uint32_t offer_id;
	uint8_t status;
};

/* One candidate address of a client for a direct link: "IP:PORT" or "[V6]:PORT". */
struct rd_p2p_addr {
	char addr[RD_P2P_ADDR_BUF];
};
struct rd_msg_p2p_listen {
	uint32_t offer_id;
	uint16_t port;   /* where it listens (1..65535) */
	uint32_t naddrs; /* its own addresses ("IP:PORT"), at most RD_P2P_MAX_ADDRS */
	struct rd_p2p_addr *addrs;
};
struct rd_msg_p2p_intro {
	uint32_t offer_id;
	uint8_t role;               /* enum rd_p2p_role */
	char peer[RD_NICK_BUF];     /* the other side */
	uint8_t fp[RD_P2P_FP_SIZE]; /* its key's fingerprint, as the server saw it */
	uint32_t naddrs;            /* its candidate addresses, the server's view first */
	struct rd_p2p_addr *addrs;
	uint8_t token[RD_TOKEN_SIZE]; /* the same on both sides */
};
struct rd_msg_p2p_hello {
	uint32_t offer_id;
	uint8_t token[RD_TOKEN_SIZE];
	char nick[RD_NICK_BUF];
};
struct rd_msg_p2p_failed {
	uint32_t offer_id;
	struct rd_str reason;
};

/* local administration */
struct rd_ctl_client {
	uint32_t id;
	char ip[48];
	uint16_t port;
	char nick[RD_NICK_BUF];
	char room[RD_ROOM_BUF];
	uint64_t connected_ms, last_msg_ms, bytes_in, bytes_out;
	char activity[96];
	char fingerprint[RD_FP_TEXT_BUF]; /* its TLS key's (rd_tls_fp_format), "" if none */
	char server[RD_HOST_MAX + 8];     /* "" = this server; else the HOST:PORT of the
					   * cluster's server it is on */
};
struct rd_msg_ctl_clients {
	uint32_t count;
	struct rd_ctl_client *items;
};
struct rd_msg_ctl_kick {
	char nick[RD_NICK_BUF];
	struct rd_str reason;
};
struct rd_msg_auth {
	uint8_t kind; /* enum rd_auth_kind */
	struct rd_bytes secret;
};
struct rd_msg_ctl_release {
	char nick[RD_NICK_BUF];
};
struct rd_msg_ctl_op {
	char room[RD_ROOM_BUF];
	char nick[RD_NICK_BUF];
	uint8_t grant; /* 1 grant, 0 revoke */
};
struct rd_msg_ctl_admit {
	uint8_t fp[RD_P2P_FP_SIZE]; /* the key's fingerprint */
	uint8_t grant;              /* 1 admit, 0 revoke */
};
struct rd_msg_ctl_invite {
	uint32_t uses;     /* admissions it allows (0 = 1) */
	uint32_t valid_ms; /* from now (0 = 24 h) */
};
struct rd_msg_ctl_invitation {
	char id[RD_NICK_BUF];             /* 8 hex digits: what ctl uninvite takes */
	uint8_t secret[RD_INVITE_SECRET]; /* for the link; the server keeps its hash only */
	uint64_t expires_ms;              /* wall clock */
};
struct rd_msg_ctl_uninvite {
	char id[RD_NICK_BUF];
};
struct rd_msg_ctl_broadcast {
	uint8_t scope;
	char target[RD_NICK_BUF];
	struct rd_str text;
};
struct rd_msg_ctl_server_info {
	char software[RD_SOFTWARE_MAX + 1];
	char listen[RD_LISTEN_BUF];       /* "127.0.0.1:7878", "[::1]:7878" */
	uint8_t tls;                      /* 0 plaintext, 1 TLS */
	char fingerprint[RD_FP_TEXT_BUF]; /* the server's key, "" when plaintext */
	uint32_t clients, registered, rooms;
	uint64_t uptime_ms;
	uint32_t offers;     /* offers open now (waiting for answers, or accepted) */
	uint64_t relay_peak; /* most bytes ever queued to one receiver by the offer relay */
};

/* Storage for a message of an application's type (rd_codec.h): its struct overlays
 * u.app. 512 bytes hold the file application's largest message (about 340) with room to
 * spare; an application checks its structs with RD_MSG_APP_FITS. */
#define RD_MSG_APP_SIZE 512u

struct rd_msg {
	uint16_t type; /* RD_MSG_* */
	union {
		struct rd_msg_hello hello;
		struct rd_msg_hello_ok hello_ok;
		struct rd_msg_nick nick;
		struct rd_msg_welcome welcome;
		struct rd_msg_ok ok;
		struct rd_msg_error error;
		struct rd_msg_ping ping; /* PING, PONG */
		struct rd_msg_bye bye;   /* BYE, SHUTDOWN */
		struct rd_msg_redirect redirect;
		struct rd_msg_room_list room_list;
		struct rd_msg_room room; /* JOIN, WHO */
		struct rd_msg_join_key join_key;
		struct rd_msg_joined joined;
		struct rd_msg_who_list who_list;
		struct rd_msg_say say;
		struct rd_msg_tell tell;
		struct rd_msg_room_msg room_msg;
		struct rd_msg_private_msg private_msg;
		struct rd_msg_presence presence;
		struct rd_msg_broadcast broadcast;
		struct rd_msg_kicked kicked;
		struct rd_msg_room_direct room_direct;
		struct rd_msg_room_mode room_mode;
		struct rd_msg_say_except say_except;
		struct rd_msg_presence_summary presence_summary;
		struct rd_msg_offer offer;
		struct rd_msg_offer_pending offer_pending;
		struct rd_msg_offer_in offer_in;
		struct rd_msg_offer_answer offer_answer;
		struct rd_msg_offer_answered offer_answered;
		struct rd_msg_offer_id offer_id; /* OFFER_CANCEL, P2P_READY */
		struct rd_msg_offer_result offer_result;
		struct rd_msg_offer_data offer_data;
		struct rd_msg_offer_end offer_end;
		struct rd_msg_p2p_listen p2p_listen;
		struct rd_msg_p2p_intro p2p_intro;
		struct rd_msg_p2p_hello p2p_hello;
		struct rd_msg_p2p_failed p2p_failed;
		struct rd_msg_ctl_clients ctl_clients; /* CTL_LIST has no fields */
		struct rd_msg_ctl_kick ctl_kick;
		struct rd_msg_ctl_release ctl_release;
		struct rd_msg_auth auth;
		struct rd_msg_ctl_op ctl_op;
		struct rd_msg_ctl_admit ctl_admit;
		struct rd_msg_ctl_invite ctl_invite;
		struct rd_msg_ctl_invitation ctl_invitation;
		struct rd_msg_ctl_uninvite ctl_uninvite;
		struct rd_msg_ctl_broadcast ctl_broadcast;
		struct rd_msg_ctl_server_info ctl_server_info;  /* CTL_INFO has no fields */
		_Alignas(8) unsigned char app[RD_MSG_APP_SIZE]; /* RD_MSG_APP */
	} u;
	/* Private to the codec: set by rd_msg_decode when it malloc'd list items, so that
	 * rd_msg_clear frees only what the decoder allocated. Zeroed by rd_msg_init. */
	uint8_t decoded_items_;
};

/* Zero m and set its type. */
void rd_msg_init(struct rd_msg *m, uint16_t type);
/* Free what a decoder allocated (list items) and zero m. Safe on any msg set up with
 * rd_msg_init or zero-initialised: items set by the caller are never freed (the caller
 * owns those). */
void rd_msg_clear(struct rd_msg *m);

/* Append m's payload (no header) to out. RD_ERR_INVAL if a field breaks its rule,
 * RD_ERR_UNKNOWN_TYPE for a type this codec does not know. */
int rd_msg_encode(const struct rd_msg *m, struct rd_buf *out);
/* Decode a payload of the given type into m (cleared first). */
int rd_msg_decode(uint16_t type, const uint8_t *p, size_t n, struct rd_msg *m);
/* Encode m and append a whole frame (header + payload) to out; see rd_frame_append. */
int rd_msg_frame(struct rd_buf *out, const struct rd_msg *m, uint32_t req_id, unsigned opts);

/* 1 if this codec knows the type (a core type, or one registered with rd_msg_register). */
int rd_msg_known(uint16_t type);

/* An application's message struct T inside m (rd_codec.h), and the compile-time check that
 * T fits there. */
#define RD_MSG_APP(m, T) ((T *)(void *)(m)->u.app)
#define RD_MSG_APP_FITS(T)                                               \
	_Static_assert(sizeof(T) <= RD_MSG_APP_SIZE && _Alignof(T) <= 8, \
		       #T " does not fit in struct rd_msg's application storage")

#ifdef __cplusplus
}
#endif
#endif
