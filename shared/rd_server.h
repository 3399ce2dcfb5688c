/* rd_server.h - the server side of the room core: clients, rooms, presence, chat,
 * broadcast, kick, heartbeat; applications plug in their own message types.
 *
 * The core knows nothing about files. An application registers hooks; every frame whose
 * type lies in the application range (RD_TYPE_APP_FIRST..RD_TYPE_APP_LAST) from a
 * registered client goes to hooks.on_frame, on that client's own thread.
 *
 * Threads (all started by rd_server_start, all stopped by rd_server_stop):
 *   "rd-accept"   accepts connections, refuses past max_clients
 *   "rd-c<id>"    one per connection: reads frames, runs handlers (detached; counted, and
 *                 rd_server_stop waits for the count to reach zero)
 *   "rd-flush<i>" writes queued output to sockets (epoll), coalescing queued frames
 *   "rd-timer"    heartbeats, registration deadlines, forced closes
 * Sending never blocks the caller: output is queued per client up to out_limit bytes;
 * a client whose queue would pass the bound is disconnected as a slow reader.
 */
#ifndef RD_SERVER_H
#define RD_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rd_frame.h"
#include "rd_msg.h"
#include "rd_tls.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RD_MSG_RATE_DEFAULT 100u /* chat messages per second per client */

struct rd_server;
struct rd_client; /* one connection; valid inside a hook call, or while you hold a ref */

struct rd_server_config {
	const char *host;         /* listen address (default RD_DEFAULT_HOST) */
	uint16_t port;            /* 0 = ephemeral; see rd_server_port() */
	const char *const *rooms; /* room names; NULL = {"general", "random"} */
	size_t nrooms;
	unsigned max_clients;         /* connections, registered or not (default 1024) */
	uint32_t ping_interval_ms;    /* default RD_PING_INTERVAL_MS */
	uint32_t ping_timeout_ms;     /* default RD_PING_TIMEOUT_MS */
	uint32_t register_timeout_ms; /* default RD_REGISTER_TIMEOUT_MS */
	uint32_t max_payload;         /* default RD_MAX_PAYLOAD_DEFAULT */
	size_t out_limit;             /* queued output bytes per client (default 8 MiB) */
	size_t thread_stack;          /* per-connection stack bytes (default 256 KiB, virtual) */
	unsigned flush_threads;       /* default: number of CPUs, at most 4 */
	/* PRESENCE deliveries (notices times recipients) per second, server-wide, told one
	 * by one; past that, counted and told as PRESENCE_SUMMARY once a second (a connection
	 * storm costs linear work). Default RD_PRESENCE_BURST_DEFAULT; 0 = always one by one. */
	unsigned presence_burst;
	const char *software; /* HELLO_OK.software */
	uint32_t features;    /* HELLO_OK.features (RD_FEAT_*) */
	/* Transport: TLS 1.3 unless plain is set. With tls set, that context is used (the
	 * caller keeps it until rd_server_free, and rd_server_fingerprint cannot tell its
	 * key); with tls_cert and tls_key, those files are loaded (a CA-signed certificate
	 * may carry its chain); otherwise the server loads its key and certificate from
	 * tls_dir (server.key, server.crt; made on first start, mode 0600) or, without
	 * tls_dir, from rd_tls_config_dir(). */
	int plain;
	struct rd_tls_ctx *tls;
	const char *tls_cert, *tls_key;
	const char *tls_dir;
	uint32_t msg_rate; /* chat messages (SAY, TELL) per second per client,
					 * bursts of twice that; 0 = no limit (default
					 * RD_MSG_RATE_DEFAULT) */
	/* Offers (PROTOCOL.md section 13): how many offers one client may have waiting for
	 * answers at once (default 1), the timeout of an offer that asks for none (default
	 * RD_OFFER_TIMEOUT_MS) and the longest an offer may wait, holds included (default
	 * RD_OFFER_TIMEOUT_MAX_MS). */
	unsigned max_offers;
	uint32_t offer_timeout_ms;
	uint32_t offer_max_ms;
};

/* Fill c with the defaults above. */
void rd_server_config_defaults(struct rd_server_config *c);

/* What happened, for logs and the admin window (see hooks.on_event). */
enum rd_event_kind {
	RD_EV_CONNECTED = 1, /* TCP connection accepted (not yet registered) */
	RD_EV_REGISTERED,    /* nickname accepted */
	RD_EV_JOINED,
	RD_EV_LEFT,
	RD_EV_DISCONNECTED, /* text = reason */
	RD_EV_KICKED,       /* text = reason */
	RD_EV_MESSAGE,      /* a room or private message was sent (last-message time changed) */
	RD_EV_ACTIVITY,     /* the application changed the client's activity text */
	RD_EV_REFUSED,      /* connection refused (full, protocol error...) text = why */
	RD_EV_BROADCAST,
	RD_EV_ERROR, /* a client caused a protocol error; text says which */
	RD_EV_INFO,  /* free text from the application (files, offers) */
	RD_EV_STOPPING
};

struct rd_event {
	enum rd_event_kind kind;
	uint32_t client_id; /* 0 if none */
	uint64_t time_ms;   /* wall clock */
	char nick[RD_NICK_BUF];
	char room[RD_ROOM_BUF];
	char ip[48];
	uint16_t port;
	char text[256];
};

/* A snapshot of one client (rd_server_clients). */
struct rd_client_info {
	uint32_t id;
	char ip[48];
	uint16_t port;
	char nick[RD_NICK_BUF]; /* "" until registered */
	char room[RD_ROOM_BUF]; /* "" if in no room */
	uint64_t connected_ms;  /* wall clock */
	uint64_t last_msg_ms;   /* wall clock of the last message it sent, 0 = none */
	uint64_t bytes_in, bytes_out;
	size_t queued;                        /* bytes waiting in its output queue */
	char activity[96];                    /* set by the application, "" = idle */
	char fingerprint[RD_TLS_FP_TEXT_LEN]; /* its certificate's (TLS), "" if none */
};

struct rd_server_hooks {
	void *user;
	/* An application-range frame from a registered client. Runs on the client's thread;
	 * may block on disk, must not block on another client. Return 0, or a wire error
	 * code (RD_E_*) that the core sends back as ERROR with the frame's request id. */
	uint16_t (*on_frame)(struct rd_server *s, struct rd_client *c, const struct rd_frame *f,
			     void *user);
	/* A client asks for a nickname (NICK) that follows the name rules, before the core
	 * looks at who is connected with it. fp: the key the client showed in TLS, NULL
	 * without one. Return 0 to let the core go on, else a wire error code (RD_E_*) with
	 * why (a NUL-terminated line, may stay "") for the ERROR. Runs on the client's
	 * thread with no core lock held; may block briefly on disk. */
	uint16_t (*on_nick)(struct rd_server *s, struct rd_client *c, const char *nick,
			    const uint8_t *fp, char *why, size_t cap, void *user);
	/* AUTH before NICK, on a TLS connection (the core refuses it in plaintext: 109):
	 * kind (enum rd_auth_kind) and the secret. Return 0 to admit the client
	 * (rd_client_admitted says so from then on; the core replies OK), else a wire error
	 * code with why. NULL: the core answers 105 (this server asks no secret). Runs on
	 * the client's thread, no core lock held; may sleep (a delay after failures). */
	uint16_t (*on_auth)(struct rd_server *s, struct rd_client *c, uint8_t kind,
			    const uint8_t *secret, size_t n, char *why, size_t cap, void *user);
	/* The client registered / joined / left a room / is going away (its thread, before
	 * the client is freed: release application state here). */
	void (*on_register)(struct rd_server *s, struct rd_client *c, void *user);
	void (*on_join)(struct rd_server *s, struct rd_client *c, const char *room, void *user);
	void (*on_leave)(struct rd_server *s, struct rd_client *c, const char *room, void *user);
	void (*on_disconnect)(struct rd_server *s, struct rd_client *c, const char *reason,
			      void *user);
	/* Restricted rooms (PROTOCOL.md section 7, "Restricted rooms"): may client c see and
	 * enter room? key, n: the room key of JOIN_KEY (NULL, 0 for JOIN, ROOMS and WHO).
	 * Return 1 to allow; 0 and the room does not exist for c: it is left out of
	 * ROOM_LIST, and JOIN, JOIN_KEY and WHO get ERROR 300 as for an unknown room. A
	 * client always sees the room it is in. c NULL asks "may anyone?": when not, the
	 * room's name is left out of what goes to every client (a departure's PRESENCE).
	 * NULL hook: every room is open. Client's thread (any thread for c NULL), no core
	 * lock held; must not block on another client. */
	int (*may_enter)(struct rd_server *s, struct rd_client *c, const char *room,
			 const uint8_t *key, size_t n, void *user);
	/* Every event, from any thread, with no core lock held. Must not block. */
	void (*on_event)(struct rd_server *s, const struct rd_event *ev, void *user);
};

/* ---- cluster hooks (PROTOCOL.md section 15) ------------------------------------------
 * The core knows nothing about Redis: a program that runs several servers as one installs
 * this table (rd_server_set_cluster) and the core calls it at the points below. Every
 * member may be NULL. Calls come from client threads with no core lock held; a call that
 * talks to a store of its own must bound its wait (the client's thread waits for it). */
struct rd_cluster_route {
	char host[RD_HOST_MAX + 1]; /* where the client should go */
	uint16_t port;
	uint8_t temporary;              /* 1: the redirect holds for this connection only */
	char reason[RD_REASON_MAX + 1]; /* why, for the client's log */
	uint8_t fp[RD_TLS_FP_LEN];      /* that server's key (all zero: it runs plaintext) */
};
struct rd_cluster_ops {
	void *user;
	/* A HELLO arrived while this server has `others` other connections. Return 1 with
	 * *to filled to answer REDIRECT (or ERROR 205 SERVER_FULL to a client that does not
	 * follow redirects) and close; 0 to serve the client here. Must answer from memory. */
	int (*route)(void *user, unsigned others, struct rd_cluster_route *to);
	/* Claim nick for this server across the cluster before it is given to a client:
	 * 0 = claimed, else a wire error code sent to the client (RD_E_NICK_TAKEN when
	 * another server holds it) with the text put in why (cap bytes, "" = the code's
	 * usual text). Called after the local table found it free. */
	uint16_t (*nick_claim)(void *user, const char *nick, char *why, size_t cap);
	/* A nickname claimed above is free again (its client left, or the core could not
	 * give it after all). */
	void (*nick_release)(void *user, const char *nick);
	/* This server made an event that the clients of the other servers must see too: m is
	 * a ROOM_MSG, a PRESENCE or a BROADCAST (scope ALL or ROOM), or an application's
	 * message to a room (rd_room_send, e.g. a file notice), already delivered here;
	 * scope is the room whose members get it, or "" for every registered client. m (and
	 * its views) is valid during the call only: copy what you keep. Must not block. */
	void (*publish)(void *user, const struct rd_msg *m, const char *scope);
	/* A message for `to`, a nickname that no client of this server has: a PRIVATE_MSG, a
	 * BROADCAST of scope USER, or a KICKED (the administrator kicks `to`). 0 when the
	 * cluster took it for the server that holds `to`, RD_ERR_NOT_FOUND when no server
	 * does (ERROR 302 NO_SUCH_USER to the sender; RD_ERR_NOT_FOUND from
	 * rd_server_broadcast / rd_server_kick). May wait, bounded. */
	int (*tell)(void *user, const struct rd_msg *m, const char *to);
	/* Membership changed here: the client `nick` entered `room` (joined 1; since_ms: when
	 * it connected, wall clock) or left it (joined 0). Must not block. */
	void (*member)(void *user, const char *nick, const char *room, int joined,
		       uint64_t since_ms);
	/* WHO: the members of `room` on the other servers, into *out (malloc'd, freed by the
	 * core), *n entries. 0, or an error (the reply then lists this server's members). */
	int (*who)(void *user, const char *room, struct rd_who_entry **out, size_t *n);
	/* ROOMS and JOINED: add to each count the members on the other servers. */
	void (*room_counts)(void *user, struct rd_room_entry *rooms, size_t n);
	/* Offers across servers (PROTOCOL.md 15.8). 1 when another live server of the cluster
	 * holds nick, else 0 (no such server, or the cluster cannot tell). May wait, bounded. */
	int (*holds)(void *user, const char *nick);
	/* A recipient on this server acted on an offer whose offerer `to` is on another server:
	 * m is an OFFER_ANSWERED (its answer), a P2P_INTRO (it listens for a direct link: its
	 * nickname, key and addresses) or a P2P_FAILED, for that server's
	 * rd_server_offer_home. 0, or RD_ERR_NOT_FOUND when no server holds `to`. May wait,
	 * bounded. (What the offer's server owes such a recipient goes through tell: an
	 * OFFER_IN, OFFER_RESULT, OFFER_END, P2P_INTRO or P2P_FAILED for it.) */
	int (*offer_home)(void *user, const struct rd_msg *m, const char *to);
	/* Relaying an offer's bytes to its recipient `to` on another server (PROTOCOL.md
	 * 15.8): frame is one whole frame that `to` must get behind the ones before it, in its
	 * bulk class: an OFFER_DATA as this server would queue it to a recipient of its own,
	 * then OFFER_END and the final OFFER_RESULT(COMPLETED or FAILED) (last = 1). Offer
	 * `offer_id` was made here by `from`. Called on the offerer's reader thread, which it
	 * may keep while the offer's window is full (the server then reads nothing more from
	 * the offerer), polling keep_going(arg) at least every second and returning
	 * RD_ERR_CANCELLED when it says 0. 0 when the frame is on its way; else the relay is
	 * over and why (cap bytes) says why for the users: RD_ERR_CLOSED (the recipient or its
	 * server is gone, or relay_close came), another error (Redis failed). NULL: bytes are
	 * not relayed across servers (OFFER_DATA is refused with ERROR 402 OFFER_STATE). */
	int (*relay)(void *user, uint32_t offer_id, const char *from, const char *to,
		     const void *frame, size_t n, int last, int (*keep_going)(void *arg), void *arg,
		     char *why, size_t cap);
	/* Offer `offer_id` made here, whose bytes went through relay, is finished (ended,
	 * cancelled, or one side gone): its relay stops. Must not block. */
	void (*relay_close)(void *user, uint32_t offer_id);
};

/* Install the cluster hooks (copied). Before rd_server_start: RD_ERR_STATE after it. */
int rd_server_set_cluster(struct rd_server *s, const struct rd_cluster_ops *ops);

/* Deliver an event that happened on another server of the cluster to this server's
 * clients, exactly as if it had happened here: ROOM_MSG, PRESENCE and BROADCAST (scope
 * ALL or ROOM) to the members of the room `target` (PRESENCE and BROADCAST with target
 * "": to every registered client); PRIVATE_MSG and BROADCAST of scope USER to the client
 * named `target`; KICKED: that client is kicked (m's reason), and its departure is
 * announced as a local kick's; an application's message (type RD_TYPE_APP_FIRST and up)
 * to the members of the room `target`. Never hands the event back to the cluster hooks, except
 * the departure of a kicked client, which is this server's own event. Any thread.
 * *n (may be NULL) = recipients. RD_ERR_NOT_FOUND for a room or nickname that is not
 * here, RD_ERR_INVAL for another type. */
int rd_server_deliver(struct rd_server *s, const struct rd_msg *m, const char *target, unsigned *n);
/* Offers across servers: also delivered by rd_server_deliver to the client `target` are an
 * OFFER_IN (the client may then answer it here: its answers go to the offer's server
 * through the offer_home hook), an OFFER_RESULT, OFFER_END, P2P_INTRO and P2P_FAILED of
 * such an offer. rd_server_offer_home takes what offer_home sent: m (OFFER_ANSWERED,
 * P2P_INTRO or P2P_FAILED) about an offer made here by the client `offerer`, from its
 * recipient on another server (named in m). 0, RD_ERR_NOT_FOUND when no such offer or
 * recipient is here, RD_ERR_INVAL for another type. Any thread. */
int rd_server_offer_home(struct rd_server *s, const struct rd_msg *m, const char *offerer);
/* The other end of the relay hook, on the recipient's server: frame (n bytes, one whole
 * frame as the relay hook got it) for the client `to` here, about offer `offer_id` of
 * another server. Queued in the client's bulk class, waiting while that class is over its
 * high watermark (so that the caller, one thread per relayed offer, is slowed by its
 * recipient alone). *last = 1 after the offer's final OFFER_RESULT (the offer is then
 * forgotten here). With n == 0, only checks that `to` still waits for that offer. 0;
 * RD_ERR_NOT_FOUND (no client `to`, or it no longer waits for that offer: stop);
 * RD_ERR_MALFORMED (not a frame of that offer: dropped); RD_ERR_CLOSED or
 * RD_ERR_CANCELLED (the client or the server went while waiting). Any thread. */
int rd_server_relay_in(struct rd_server *s, const char *to, uint32_t offer_id, const void *frame,
		       size_t n, int *last);

/* Create a server (nothing started). RD_ERR_INVAL for a bad config (room names...); the
 * errors of rd_tls_identity_ensure when its TLS identity cannot be loaded or made. */
int rd_server_new(const struct rd_server_config *cfg, const struct rd_server_hooks *hooks,
		  struct rd_server **out);
/* Bind and start the threads. RD_ERR_ADDR_IN_USE, RD_ERR_ADDR, RD_ERR_SYSTEM. */
int rd_server_start(struct rd_server *s);
/* The fingerprint of the server's TLS key: 0, or RD_ERR_STATE when it runs plaintext. */
int rd_server_fingerprint(const struct rd_server *s, uint8_t fp[RD_TLS_FP_LEN]);
/* The bound port (after start). */
uint16_t rd_server_port(const struct rd_server *s);
/* Send SHUTDOWN(reason) to everyone, close all connections, join the threads.
 * Idempotent. Waits at most timeout_ms for clients to drain their output. */
void rd_server_stop(struct rd_server *s, const char *reason, int timeout_ms);
/* Free (calls rd_server_stop first if needed). */
void rd_server_free(struct rd_server *s);

/* ---- administration (any thread) --------------------------------------------------- */
/* Snapshot of all connections (registered or not), sorted by id. Caller frees *out. */
int rd_server_clients(struct rd_server *s, struct rd_client_info **out, size_t *n);
/* Kick by nickname: KICKED(by="server", reason) to it, "NICK was kicked" to the others.
 * RD_ERR_NOT_FOUND if no such registered client (here, or through the cluster hooks on
 * another server of the cluster). */
int rd_server_kick(struct rd_server *s, const char *nick, const char *reason);
/* Broadcast text to everyone (scope RD_SCOPE_ALL, target NULL), a room or one user (in a
 * cluster: on every server). *delivered = number of recipients on this server (a user on
 * another server counts as 1). RD_ERR_NOT_FOUND for an unknown room or user. */
int rd_server_broadcast(struct rd_server *s, uint8_t scope, const char *target, const char *text,
			unsigned *delivered);
/* Room names and member counts. Caller frees *out. */
int rd_server_rooms(struct rd_server *s, struct rd_room_entry **out, size_t *n);
/* Post an RD_EV_INFO (or other kind) event from the application. */
void rd_server_post_event(struct rd_server *s, const struct rd_event *ev);
/* Totals for a summary line. */
struct rd_server_stats {
	unsigned clients, registered, rooms;
	uint64_t bytes_in, bytes_out;
	unsigned offers;     /* offers open now (waiting for answers, or accepted) */
	uint64_t relay_peak; /* most bytes ever queued to one receiver by the offer relay */
};
void rd_server_stats(struct rd_server *s, struct rd_server_stats *st);

/* ---- for application handlers ------------------------------------------------------ */
uint32_t rd_client_id(const struct rd_client *c);
/* Copy the nickname / current room ("" if none) into out[RD_NICK_BUF] / out[RD_ROOM_BUF]. */
void rd_client_nick(struct rd_client *c, char *out);
void rd_client_room(struct rd_client *c, char *out);
/* The fingerprint of the key the client showed in TLS: 0, or RD_ERR_NOT_FOUND (plaintext,
 * or no certificate). */
int rd_client_fingerprint(struct rd_client *c, uint8_t fp[RD_TLS_FP_LEN]);
/* The client's address as text (at most 47 characters and NUL). */
void rd_client_ip(const struct rd_client *c, char out[48]);
/* 1 once on_auth admitted the client, else 0. */
int rd_client_admitted(struct rd_client *c);
/* Per-client application state (the core never looks at it). */
void *rd_client_app_data(const struct rd_client *c);
void rd_client_set_app_data(struct rd_client *c, void *p);
/* Activity text shown by admin tools ("uploading a.pdf 45%"); NULL or "" = idle. */
void rd_client_set_activity(struct rd_client *c, const char *text);

/* Queue one frame to the client (never blocks). RD_ERR_CLOSED if it is going away,
 * RD_ERR_FULL if this pushed it over out_limit (it is then being disconnected). */
int rd_client_send(struct rd_client *c, uint16_t type, uint32_t req_id, const void *payload,
		   size_t n, unsigned opts);
int rd_client_send_msg(struct rd_client *c, const struct rd_msg *m, uint32_t req_id);
int rd_client_send_error(struct rd_client *c, uint32_t req_id, uint16_t for_type, uint16_t code,
			 const char *text);
/* Write prefix then len bytes of in_fd from off straight to the socket (sendfile), after
 * everything queued before it, blocking the calling thread (the client's own) until done
 * or timeout_ms passes. Frames queued meanwhile by others follow it. */
int rd_client_send_file(struct rd_client *c, const void *prefix, size_t plen, int in_fd, off_t off,
			size_t len, int timeout_ms);
/* Queue one frame to every member of room except `except` (NULL = all). *n = recipients. */
int rd_room_send(struct rd_server *s, const char *room, const struct rd_client *except,
		 uint16_t type, const void *payload, size_t len, unsigned *n);

#ifdef __cplusplus
}
#endif
#endif
