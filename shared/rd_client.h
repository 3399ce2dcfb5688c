/* rd_client.h - the client side of the room core.
 *
 * A struct rd_conn is one connection to a server, driven by the caller's thread: nothing
 * runs in the background. Requests (rd_conn_request and the helpers built on it) send a
 * frame and wait for the reply with the same request id; frames that arrive meanwhile
 * (room messages, presence, PING...) are dispatched to the callbacks, and PING is answered
 * automatically. Call rd_conn_poll() when idle to receive events.
 * One thread at a time per rd_conn.
 */
#ifndef RD_CLIENT_H
#define RD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "rd_frame.h"
#include "rd_msg.h"
#include "rd_tls.h"

#ifdef __cplusplus
extern "C" {
#endif

struct rd_conn;

/* How rd_conn_open came to trust the server (or why it did not). */
enum rd_conn_trust {
	RD_CONN_PLAIN = 0,         /* plaintext: nothing checked */
	RD_CONN_PINNED = 1,        /* the key is the one given in server_fp */
	RD_CONN_CA = 2,            /* the certificate chains to ca_file and names the host */
	RD_CONN_KNOWN = 3,         /* the key is the one known_servers records for host:port */
	RD_CONN_FIRST_USE = 4,     /* first connection to host:port: its key was recorded now */
	RD_CONN_CHANGED = 5,       /* refused: known_servers records another key (known_fp) */
	RD_CONN_MISMATCH = 6,      /* refused: the key is not the pinned one */
	RD_CONN_VOUCHED = 7,       /* after a REDIRECT: the key is the one the redirecting server
				* vouched for (REDIRECT.fp), which the client trusted */
	RD_CONN_VOUCH_MISMATCH = 8 /* refused: after a REDIRECT, the key is not the vouched one */
};

struct rd_conn_tls_report {
	enum rd_conn_trust trust;
	uint8_t server_fp[RD_TLS_FP_LEN]; /* the key the server presented (when it got that far) */
	uint8_t known_fp[RD_TLS_FP_LEN];  /* RD_CONN_CHANGED: the recorded one */
	char trust_file[600];             /* the known_servers file used, "" if none */
	int has_client_fp;
	uint8_t client_fp[RD_TLS_FP_LEN]; /* the key this client presented */
	int server_plaintext; /* the server answered in plaintext: it runs with --tls off */
	char reason[200];     /* one line on what failed, "" if nothing did */
	/* Where the connection went (PROTOCOL.md section 15): the server connected to (or
	 * last tried), and after REDIRECTs how many were followed, which server sent the last
	 * one, its reason, whether it was temporary, and the key it vouched for (all zero:
	 * none, the new server runs plaintext). */
	char host[RD_HOST_MAX + 1];
	uint16_t port;
	unsigned redirects;
	char via_host[RD_HOST_MAX + 1];
	uint16_t via_port;
	char redirect_reason[RD_REASON_MAX + 1];
	int redirect_temporary;
	uint8_t vouched_fp[RD_TLS_FP_LEN];
};

struct rd_conn_callbacks {
	void *user;
	/* Every decoded unsolicited frame of a core type (ROOM_MSG, PRIVATE_MSG, PRESENCE,
	 * BROADCAST, KICKED, SHUTDOWN, OFFER_*, P2P_*, ERROR with request id 0...).
	 * m is valid during the call only. */
	void (*on_msg)(struct rd_conn *c, const struct rd_msg *m, void *user);
	/* Every unsolicited frame of an application type (payload not decoded). */
	void (*on_app_frame)(struct rd_conn *c, const struct rd_frame *f, void *user);
};

struct rd_conn_options {
	int connect_timeout_ms; /* default 5000 */
	int request_timeout_ms; /* default 10000 */
	uint32_t max_payload;   /* default RD_MAX_PAYLOAD_DEFAULT */
	const char *software;   /* HELLO.software, default "libroomdrop/VERSION" */
	uint32_t features;      /* HELLO.features */
	/* A descriptor that becomes readable when the caller wants every wait on this
	 * connection to stop (e.g. the read end of a signal self-pipe), or -1 / 0 (none;
	 * -1 is the default). While it is readable, waits return RD_ERR_CANCELLED; the library never
	 * reads it (draining it is the caller's business). Sends are not affected. */
	int cancel_fd;

	/* Transport (PROTOCOL.md section 2.1). TLS 1.3 unless plain is set; the server is
	 * checked, in this order, against server_fp, against ca_file (chain and host name),
	 * or against the known_servers file (trust on first use: a new host:port is recorded,
	 * a changed key is refused with RD_ERR_MISMATCH before anything is sent). The client
	 * presents its own long-term key (made on first use in config_dir). */
	int plain;                         /* 1 = plaintext: only for a server run with --tls off */
	const char *config_dir;            /* its key, certificate and known_servers; NULL =
				    * rd_tls_config_dir() (~/.config/roomdrop) */
	const char *known_servers;         /* NULL = CONFIG_DIR/known_servers */
	const char *server_fp;             /* pin: the server's fingerprint, in any form
				    * rd_tls_fp_parse accepts */
	const char *ca_file;               /* verify by this CA (PEM) and the host name instead */
	int no_client_cert;                /* present no certificate */
	struct rd_conn_tls_report *report; /* filled by rd_conn_open, on failure too */
};
void rd_conn_options_defaults(struct rd_conn_options *o);

/* Connect and exchange HELLO / HELLO_OK. On RD_ERR_REMOTE, *werr (if not NULL) holds the
 * server's ERROR code (e.g. RD_E_SERVER_FULL, RD_E_BAD_VERSION). A REDIRECT is followed
 * (at most 3 in a row, else RD_ERR_PROTOCOL): the next server must present the key the
 * redirecting one vouched for (REDIRECT.fp; instead of server_fp, ca_file and
 * known_servers, which name the first server), else RD_ERR_MISMATCH with report->trust
 * RD_CONN_VOUCH_MISMATCH. The report says where the connection landed. */
int rd_conn_open(const char *host, uint16_t port, const struct rd_conn_options *opt,
		 const struct rd_conn_callbacks *cb, struct rd_conn **out, uint16_t *werr);
/* Send BYE if still connected, wait (at most 1 s) for the server to close its side, so
 * that the nickname is free again when this returns; then free. */
void rd_conn_close(struct rd_conn *c);
int rd_conn_fd(const struct rd_conn *c);
/* What HELLO_OK said. */
const struct rd_msg_hello_ok *rd_conn_server_info(const struct rd_conn *c);

/* Before rd_conn_register, on a server that admits by password or invitation (PROTOCOL.md
 * section 7, "Admission"): AUTH(kind, secret), kind RD_AUTH_PASSWORD or RD_AUTH_INVITE,
 * n <= RD_SECRET_MAX. 0 once admitted; RD_ERR_REMOTE with *werr RD_E_BAD_SECRET,
 * RD_E_TLS_REQUIRED (plaintext), RD_E_UNEXPECTED (the server asks for none). */
int rd_conn_auth(struct rd_conn *c, uint8_t kind, const void *secret, size_t n, uint16_t *werr);
/* Register a nickname. RD_ERR_REMOTE with *werr = RD_E_NICK_TAKEN etc. */
int rd_conn_register(struct rd_conn *c, const char *nick, uint16_t *werr);
int rd_conn_join(struct rd_conn *c, const char *room, uint32_t *members, uint16_t *werr);
/* JOIN_KEY: join a room restricted to holders of its key (PROTOCOL.md section 7,
 * "Restricted rooms"), 1 <= n <= RD_SECRET_MAX, TLS only. As rd_conn_join; a wrong key
 * is RD_ERR_REMOTE with *werr RD_E_NO_SUCH_ROOM, like a room that does not exist. */
int rd_conn_join_key(struct rd_conn *c, const char *room, const void *key, size_t n,
		     uint32_t *members, uint16_t *werr);
int rd_conn_leave(struct rd_conn *c, uint16_t *werr);
/* ROOM_LIST / WHO_LIST into *out (rd_msg_clear it afterwards). */
int rd_conn_rooms(struct rd_conn *c, struct rd_msg *out, uint16_t *werr);
int rd_conn_who(struct rd_conn *c, const char *room, struct rd_msg *out, uint16_t *werr);
/* Room message (no reply awaited: errors come back as unsolicited ERROR). */
int rd_conn_say(struct rd_conn *c, uint8_t kind, const void *data, size_t n);
/* Private message; waits for OK or ERROR (RD_E_NO_SUCH_USER). */
int rd_conn_tell(struct rd_conn *c, const char *nick, uint8_t kind, const void *data, size_t n,
		 uint16_t *werr);

/* ---- offers (PROTOCOL.md section 13) ---------------------------------------------------
 * What happens to an offer arrives through callbacks.on_msg (or rd_conn_poll): a
 * recipient gets OFFER_IN (m->u.offer_in) and, if the offer ends before its final answer,
 * OFFER_RESULT; the offerer gets OFFER_ANSWERED for each recipient's answer as it comes
 * (m->u.offer_answered: peer, answer, reason, the recipient's application bytes) and
 * OFFER_RESULT (ACCEPTED, REJECTED, EXPIRED... m->u.offer_result) when the decision is
 * over. The calls below wait for their reply, dispatching every other frame meanwhile;
 * a program with its own loop queues the same messages with rd_conn_queue_msg instead. */

/* Offer descriptor (n bytes, at most RD_DESCRIPTOR_MAX) of application type app_type to
 * the user `to`, or, with to NULL, to every other member of your room. timeout_ms 0 = the
 * server's default. On OFFER_PENDING: 0, *offer_id and *expires_in_ms (either may be
 * NULL). RD_ERR_REMOTE with *werr: RD_E_NO_SUCH_USER, RD_E_OFFER_SELF, RD_E_NOT_IN_ROOM,
 * RD_E_OFFER_NOBODY, RD_E_TOO_MANY_OFFERS (rd_conn_last_error names the offer waited on);
 * RD_ERR_INVAL for a nickname or descriptor too long. */
int rd_conn_offer(struct rd_conn *c, const char *to, uint16_t app_type, uint32_t timeout_ms,
		  const void *descriptor, size_t n, uint32_t *offer_id, uint32_t *expires_in_ms,
		  uint16_t *werr);
/* Answer an offer made to you: RD_ANSWER_ACCEPT, RD_ANSWER_REJECT (final) or
 * RD_ANSWER_HOLD (hold_ms more time; *expires_in_ms, if not NULL, gets the new time
 * left); after accepting, RD_ANSWER_DONE once you have what you took (a receipt: data
 * says how it went, in the application's format), or RD_ANSWER_RESUME before that to
 * say again what you need (the data a new account, e.g. after a direct link broke: the
 * offerer sends the rest through the server). reason (NULL = "") and the
 * application bytes data (n, at most RD_DESCRIPTOR_MAX) go to the offerer. RD_ERR_REMOTE with *werr RD_E_NO_SUCH_OFFER or
 * RD_E_OFFER_STATE; RD_ERR_INVAL for a bad answer or over-long reason or data. */
int rd_conn_offer_answer(struct rd_conn *c, uint32_t offer_id, uint8_t answer, uint32_t hold_ms,
			 const char *reason, const void *data, size_t n, uint32_t *expires_in_ms,
			 uint16_t *werr);
/* Withdraw your offer: 0 once the server confirmed (OFFER_RESULT CANCELLED).
 * RD_ERR_REMOTE with *werr RD_E_NO_SUCH_OFFER. */
int rd_conn_offer_cancel(struct rd_conn *c, uint32_t offer_id, uint16_t *werr);
/* Relay n bytes (at most RD_CHUNK_SIZE) of an accepted offer at offset; no reply (an
 * error comes back as an unsolicited ERROR). Returns once the frame is written; while the
 * server pushes back (a receiver catching up) it waits, dispatching what arrives
 * meanwhile. RD_ERR_TIMEOUT after request_timeout_ms with no byte written (the frame stays
 * queued: rd_conn_process finishes it), RD_ERR_CANCELLED, RD_ERR_CLOSED. */
int rd_conn_offer_data(struct rd_conn *c, uint32_t offer_id, uint64_t offset, const void *p,
		       size_t n);
/* End your accepted offer (status 0 complete, else aborted); *outcome (may be NULL) gets
 * the server's RD_OFFER_COMPLETED or RD_OFFER_FAILED. RD_ERR_REMOTE with *werr
 * RD_E_NO_SUCH_OFFER or RD_E_OFFER_STATE (not accepted yet). */
int rd_conn_offer_end(struct rd_conn *c, uint32_t offer_id, uint8_t status, uint8_t *outcome,
		      uint16_t *werr);

/* Send m with a fresh request id and wait for the reply frame with that id, dispatching
 * everything else. An ERROR reply gives RD_ERR_REMOTE with *werr set (and the text via
 * rd_conn_last_error). On success *reply is decoded; its views live until the next call
 * on c; rd_msg_clear it. */
int rd_conn_request(struct rd_conn *c, const struct rd_msg *m, struct rd_msg *reply,
		    uint16_t *werr);
/* Same with a raw payload of any type (application messages); *reply_frame views live
 * until the next call on c. */
int rd_conn_request_raw(struct rd_conn *c, uint16_t type, const void *payload, size_t n,
			unsigned opts, struct rd_frame *reply_frame, uint16_t *werr);
/* Send a frame without waiting (req_id 0 if you pass 0). */
int rd_conn_send(struct rd_conn *c, uint16_t type, uint32_t req_id, const void *payload, size_t n,
		 unsigned opts);
int rd_conn_send_msg(struct rd_conn *c, const struct rd_msg *m, uint32_t req_id);
/* Next request id (never 0). */
uint32_t rd_conn_next_id(struct rd_conn *c);
/* Wait up to timeout_ms (0 = just drain what is there, < 0 = forever) for frames and
 * dispatch them. 0 if something was handled or time ran out, RD_ERR_CLOSED when the
 * server closed the connection. */
int rd_conn_poll(struct rd_conn *c, int timeout_ms);
/* 1 when frames from the server are already read into memory (a request's wait read past
 * its reply): rd_conn_poll(c, 0) handles them, and a caller that polls rd_conn_fd must
 * not wait while this is 1, since the descriptor will not wake it for them. */
int rd_conn_pending(struct rd_conn *c);
/* Wait for the next reply to any request (a frame whose request id is not 0; notices and
 * PINGs are dispatched meanwhile), for a caller with several requests in flight: f gets
 * it, and the caller tells them apart by f->hdr.req_id. 0, RD_ERR_REMOTE when it is an
 * ERROR (f set too, *werr its code, its text kept as rd_conn_wait_reply keeps it), or
 * the errors of rd_conn_wait_reply. */
int rd_conn_wait_any_reply(struct rd_conn *c, int timeout_ms, struct rd_frame *f, uint16_t *werr);
/* Wait for the next frame with request id req_id (dispatching others). */
int rd_conn_wait_reply(struct rd_conn *c, uint32_t req_id, int timeout_ms, struct rd_frame *f,
		       uint16_t *werr);
/* ---- non-blocking use ------------------------------------------------------------------
 * For a program whose own loop holds this connection among others: poll rd_conn_fd() for
 * POLLIN, and for POLLOUT too while rd_conn_want_write() is 1; then call rd_conn_process.
 * rd_conn_queue_msg queues a frame and makes one attempt to write it; rd_conn_process
 * writes what is still queued, reads what arrived and dispatches every whole frame to the
 * callbacks (answering PING). 0, or RD_ERR_CLOSED once the server is gone (after the
 * frames it sent before were dispatched). The blocking calls above share the same link:
 * do not mix them with a half-written queue of your own. */
int rd_conn_queue_msg(struct rd_conn *c, const struct rd_msg *m, uint32_t req_id);
int rd_conn_want_write(const struct rd_conn *c);
int rd_conn_process(struct rd_conn *c);

/* What the transport found when the connection was opened. */
const struct rd_conn_tls_report *rd_conn_tls(const struct rd_conn *c);
/* Write bytes as they are (whole frames the caller built; for tools that must send what
 * the encoder refuses), after what was sent before. */
int rd_conn_send_bytes(struct rd_conn *c, const void *p, size_t n);
/* Text of the last ERROR the server sent ("" if none). */
const char *rd_conn_last_error(const struct rd_conn *c);
/* 1 if the server announced SHUTDOWN on this connection (then *reason, if not NULL, is
 * its reason, "" when it gave none; valid until rd_conn_close), else 0. */
int rd_conn_shutdown_reason(const struct rd_conn *c, const char **reason);

#ifdef __cplusplus
}
#endif
#endif
