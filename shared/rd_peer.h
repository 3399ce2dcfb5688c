/* rd_peer.h - a verified direct link between two clients that a server introduced
 * (PROTOCOL.md section 14).
 *
 * Both sides of an introduction know: their own identity, the other's nickname, the
 * fingerprint of the key the other showed the server, the other's candidate addresses, an
 * offer (session) id, a one-time 16-byte token (the same on both sides) and which of the
 * two is the CHOOSER (the offerer). Use:
 *
 *   rd_peer_new(identity, NULL, &p, &port);       listen on an ephemeral port
 *   ...tell the server the port (P2P_LISTEN), receive the introduction (P2P_INTRO)...
 *   rd_peer_connect(p, &intro, reason, sizeof(reason));
 *       dial every candidate at once while accepting on the port; every connection is
 *       mutual TLS 1.3 (ALPN "roomdrop-p2p/1") in which each side checks that the other's
 *       key has exactly the introduced fingerprint; the dialler sends P2P_HELLO(offer id,
 *       token, nick), the acceptor checks it (constant-time token comparison, single use,
 *       expiry); the chooser confirms the first connection verified both ways with
 *       P2P_READY and closes the others; the other side keeps the one with P2P_READY.
 *       0: a link, or RD_ERR_TIMEOUT (fall back to the relay) with reason listing what
 *       was tried.
 *   then frames: rd_peer_send* / rd_peer_process / rd_peer_next (an event loop polls
 *   rd_peer_fd, with POLLOUT while rd_peer_want_write) or rd_peer_recv (blocking).
 *   rd_peer_free(p).
 *
 * rd_peer_connect runs on the caller's thread and starts no thread; no wait in it is
 * longer than the introduction's deadline, whatever the other end does (a peer that
 * accepts TCP and never speaks TLS included). One thread at a time per struct rd_peer.
 */
#ifndef RD_PEER_H
#define RD_PEER_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "rd_frame.h"
#include "rd_msg.h"
#include "rd_proto.h"
#include "rd_tls.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RD_PEER_TIMEOUT_MS 2000 /* default deadline of rd_peer_connect */
#define RD_PEER_MAX_CANDIDATES 16
#define RD_PEER_MAX_ACCEPTED 16 /* incoming connections a race holds at once (more: closed) */
#define RD_PEER_ADDR_BUF 64     /* "HOST:PORT" or "[V6]:PORT" and NUL */
#define RD_PEER_REASON_BUF 1024 /* the reason line (longer ones end in "...") */
/* pollfd entries rd_peer_poll_set may fill: listener, cancel, every connection */
#define RD_PEER_POLLFDS (RD_PEER_MAX_CANDIDATES + RD_PEER_MAX_ACCEPTED + 2)

struct rd_peer;

/* What happened to one connection of the race, for the log callback. */
enum rd_peer_event {
	RD_PEER_EV_FAILED = 1,    /* TCP or TLS failed, or the peer closed (text says what) */
	RD_PEER_EV_BAD_CERT = 2,  /* the other end's key is not the introduced one: refused */
	RD_PEER_EV_BAD_TOKEN = 3, /* its P2P_HELLO was refused (wrong, used or expired token,
				     * wrong offer id or nickname, or another first frame) */
	RD_PEER_EV_REJECTED = 4,  /* the other end refused our P2P_HELLO (ERROR 403) */
	RD_PEER_EV_VERIFIED = 5,  /* verified both ways (key and token) */
	RD_PEER_EV_CHOSEN = 6,    /* this connection is the link */
};
const char *rd_peer_event_name(enum rd_peer_event ev);

/* The introduction, as the server made it (P2P_INTRO) and as this side knows it. */
struct rd_peer_intro {
	uint32_t offer_id;
	uint8_t token[RD_TOKEN_SIZE];
	const char *nick;               /* ours: sent in P2P_HELLO when we dial */
	const char *peer_nick;          /* theirs: required in the P2P_HELLO they send */
	uint8_t peer_fp[RD_TLS_FP_LEN]; /* their key, as the server saw it */
	const char *const *candidates;  /* their addresses, "IP:PORT" or "[V6]:PORT", tried
					  * all at once (IP literals only: no name lookup) */
	size_t ncandidates;             /* 0..RD_PEER_MAX_CANDIDATES */
	int chooser;                    /* 1 on the offerer's side, 0 on the other */
	int timeout_ms;                 /* 0 = RD_PEER_TIMEOUT_MS */
	uint64_t token_expires_ms;      /* rd_now_mono_ms() clock; 0 = RD_P2P_TOKEN_TTL_MS
					  * from the call. Their P2P_HELLO after it is refused */
	int cancel_fd; /* > 0: readable = stop waiting (RD_ERR_CANCELLED); <= 0 none */
	/* Called for every connection that fails, is refused, verified or chosen (addr is
	 * "dial IP:PORT" or "from IP:PORT", text one line); may be NULL. The same events go
	 * to the library log (RD_LOG_INFO, refusals RD_LOG_WARN). */
	void (*on_event)(void *user, enum rd_peer_event ev, const char *addr, const char *text);
	void *user;
};

/* Make the TLS contexts for id (borrowed: it may be freed after this returns) and listen
 * on listen_host (NULL = every local address; tests give "127.0.0.1") on an ephemeral
 * port, returned in *port for the caller to report (P2P_LISTEN). 0; RD_ERR_INVAL,
 * RD_ERR_NOMEM, RD_ERR_CRYPTO, RD_ERR_ADDR, RD_ERR_SYSTEM. */
int rd_peer_new(const struct rd_tls_identity *id, const char *listen_host, struct rd_peer **out,
		uint16_t *port);

/* The race (see the top of this file), once per struct rd_peer; the listener is closed
 * when it ends. 0: the link is up (rd_peer_fd >= 0). RD_ERR_TIMEOUT: nothing verified
 * both ways before the deadline; RD_ERR_CANCELLED; RD_ERR_INVAL (an intro field out of
 * its limits: no nickname, too many candidates); RD_ERR_STATE (called twice). reason (may
 * be NULL) gets one line on what each connection came to ("dial 127.0.0.1:40001:
 * connection refused; from 127.0.0.1:51234: wrong certificate ..."), on success too. */
int rd_peer_connect(struct rd_peer *p, const struct rd_peer_intro *in, char *reason, size_t rcap);

/* The same race for a program's own poll loop (a client that keeps serving its server
 * connection meanwhile); rd_peer_connect is these three in a loop:
 *
 *   rd_peer_start(p, &intro);                      checks intro (copied), starts dialling
 *   do {
 *       rd_peer_poll_set(p, fds, cap, &n, &ms);    fds[0..n): add them to your poll()
 *       poll(...);                                 with a timeout of at most ms
 *       rc = rd_peer_step(p, fds, n);              with the revents poll() set
 *   } while (rc == RD_ERR_AGAIN);
 *
 * rd_peer_start: 0, RD_ERR_INVAL, RD_ERR_STATE (started before), RD_ERR_NOMEM.
 * rd_peer_poll_set: fills at most RD_PEER_POLLFDS entries (cap smaller: RD_ERR_TOO_BIG);
 *   *timeout_ms is the time left to the deadline, 0 when there is work without waiting.
 * rd_peer_step: RD_ERR_AGAIN while the race goes on; then, once, what rd_peer_connect
 *   returns (0 with the link up, RD_ERR_TIMEOUT, RD_ERR_CANCELLED); RD_ERR_INVAL when
 *   fds/n are not what rd_peer_poll_set handed out. Every call to it needs a new poll set.
 * rd_peer_reason: the reason line (see rd_peer_connect), "" before the race ends. */
int rd_peer_start(struct rd_peer *p, const struct rd_peer_intro *in);
int rd_peer_poll_set(struct rd_peer *p, struct pollfd *fds, size_t cap, size_t *n, int *timeout_ms);
int rd_peer_step(struct rd_peer *p, const struct pollfd *fds, size_t n);
const char *rd_peer_reason(const struct rd_peer *p);

/* Close the link (close_notify, one attempt) and the listener; free. NULL is ignored. */
void rd_peer_free(struct rd_peer *p);

/* ---- the link, after rd_peer_connect returned 0 ------------------------------------------
 * Frames as on a server connection (same header, limits, compression). Calls before the
 * link is up return RD_ERR_STATE (rd_peer_fd: -1). */

int rd_peer_fd(const struct rd_peer *p);
/* The other end's fingerprint (the introduced one, verified in the handshake). */
int rd_peer_peer_fp(const struct rd_peer *p, uint8_t fp[RD_TLS_FP_LEN]);
/* 1 when this side dialled the chosen connection, 0 when it accepted it. */
int rd_peer_dialled(const struct rd_peer *p);

/* Queue one frame and make one attempt to write it (rd_peer_process or rd_peer_flush
 * write the rest). RD_ERR_CLOSED once the link is dead, RD_ERR_FULL past 8 MiB queued. */
int rd_peer_send(struct rd_peer *p, uint16_t type, uint32_t req_id, const void *payload, size_t n,
		 unsigned opts);
int rd_peer_send_msg(struct rd_peer *p, const struct rd_msg *m, uint32_t req_id);
/* 1 while bytes wait to be written: poll the fd for POLLOUT too. */
int rd_peer_want_write(const struct rd_peer *p);
/* Write what is queued until the socket would block, then read what arrived, without
 * waiting. 0, RD_ERR_CLOSED once the other end has closed (frames that came before stay
 * for rd_peer_next), or a fatal error. */
int rd_peer_process(struct rd_peer *p);
/* The next whole frame read so far, or RD_ERR_INCOMPLETE. f's payload is valid until the
 * next call on p. */
int rd_peer_next(struct rd_peer *p, struct rd_frame *f);
/* Blocking: the next frame within timeout_ms (< 0: no limit). RD_ERR_TIMEOUT,
 * RD_ERR_CLOSED, or a fatal frame or transport error. */
int rd_peer_recv(struct rd_peer *p, int timeout_ms, struct rd_frame *f);
/* Blocking: write everything queued within timeout_ms. 0, RD_ERR_TIMEOUT, RD_ERR_CLOSED. */
int rd_peer_flush(struct rd_peer *p, int timeout_ms);

/* ---- addresses to report -------------------------------------------------------------- */

/* This machine's addresses with port, as "IP:PORT" / "[V6]:PORT" (getifaddrs): interfaces
 * that are up, without loopback and link-local addresses (169.254/16, fe80::/10), IPv4
 * first. Up to cap entries in out; *n gets how many. 0, RD_ERR_SYSTEM. */
int rd_peer_local_addrs(uint16_t port, char (*out)[RD_PEER_ADDR_BUF], size_t cap, size_t *n);

#ifdef __cplusplus
}
#endif
#endif
