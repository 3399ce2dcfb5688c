/* rd_chat.h - direct chat: a verified peer-to-peer link between two clients for their
 * messages, made through the generic offer and the server's introduction (PROTOCOL.md
 * section 14.4). Any program that links libroomdrop may use it.
 *
 * A direct chat is an OFFER to one user with app_type RD_APP_CHAT; its descriptor is
 * empty for a person-to-person chat, or the name of a room in direct mode for a link
 * between two of its members. Once accepted, both sides listen (P2P_LISTEN), the server
 * introduces them (P2P_INTRO) and they race (rd_peer.h); the offerer then ends the offer
 * (OFFER_END), link or not. Over the link travel ordinary PRIVATE_MSG and ROOM_MSG frames
 * (their `from` is replaced by the introduced nickname, whatever the peer wrote).
 *
 *   ch = rd_chat_new(&opts)             before anything is sent: the program's on_msg
 *                                       passes every server message to rd_chat_on_msg
 *   rd_chat_request(ch, conn, peer, room, why)   the offerer: waits for the answer,
 *                                       then for the introduction and the race
 *   rd_chat_accept(ch, conn, offer_id, peer, why) the recipient of an OFFER_IN with
 *                                       app_type RD_APP_CHAT (reject it with
 *                                       rd_conn_offer_answer)
 *   then rd_chat_fd / rd_chat_want_write / rd_chat_process / rd_chat_next in the
 *   program's poll loop, rd_chat_send to write; rd_chat_free.
 *
 * The two calls block (at most the offer's timeout for the answer, 5 s for the
 * introduction, 2 s (offerer) or 3 s (recipient) for the race), serving the server
 * connection meanwhile with rd_conn_poll, so its events keep flowing to the callbacks.
 * One thread at a time per struct rd_chat; nothing runs in the background.
 */
#ifndef RD_CHAT_H
#define RD_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "rd_client.h"
#include "rd_msg.h"
#include "rd_tls.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RD_APP_CHAT 0x0070u            /* OFFER.app_type of a direct chat (core vocabulary) */
#define RD_CHAT_INTRO_WAIT_MS 5000     /* from P2P_LISTEN to P2P_INTRO or P2P_FAILED */
#define RD_CHAT_FOLLOWER_EXTRA_MS 1000 /* the recipient races this much longer */

struct rd_chat;

struct rd_chat_options {
	const struct rd_tls_identity *id; /* this client's key (the one the server saw); borrowed
					   * until rd_chat_request / _accept returns */
	const char *nick;                 /* our nickname (sent in P2P_HELLO) */
	const char *listen_host;          /* NULL = every local address; tests "127.0.0.1" */
	int report_addrs;                 /* 1: report this machine's addresses too */
	int no_dial;                      /* tests: dial none of the peer's addresses */
	uint16_t report_port;             /* tests: report this port instead (0 = the real one) */
	uint32_t answer_timeout_ms;       /* the offer's timeout (0 = the server's default) */
	int cancel_fd;                    /* readable = stop waiting (RD_ERR_CANCELLED); -1 none */
};

/* NULL when out of memory. */
struct rd_chat *rd_chat_new(const struct rd_chat_options *o);
/* Close the link (if any) and free. NULL is ignored. */
void rd_chat_free(struct rd_chat *ch);

/* A server message: 1 when it belongs to this chat (its offer's OFFER_RESULT,
 * OFFER_ANSWERED, OFFER_END, P2P_INTRO, P2P_FAILED), which the program should then not
 * handle itself; else 0. Call it from the connection's on_msg callback. */
int rd_chat_on_msg(struct rd_chat *ch, const struct rd_msg *m);

/* Ask `peer` for a direct chat (room: "" or NULL for a person-to-person chat, else the
 * room in direct mode both are in), wait for the answer, listen, get introduced and race.
 * 0: the link is up. Else why (NUL-terminated) says why not: RD_ERR_REMOTE (rejected,
 * expired, the peer left, the other side or the server said no), RD_ERR_TIMEOUT (no link
 * verified in time), RD_ERR_CANCELLED (cancel_fd; the offer is cancelled),
 * RD_ERR_STATE (called twice), RD_ERR_CLOSED (the server went away), others from the
 * library. The offer is ended on the server either way. */
int rd_chat_request(struct rd_chat *ch, struct rd_conn *c, const char *peer, const char *room,
		    char *why, size_t cap);
/* Accept the direct chat offer_id from peer (an OFFER_IN with app_type RD_APP_CHAT) and
 * make the link. Returns as rd_chat_request. */
int rd_chat_accept(struct rd_chat *ch, struct rd_conn *c, uint32_t offer_id, const char *peer,
		   char *why, size_t cap);

/* 1 while the link is up. */
int rd_chat_up(const struct rd_chat *ch);
/* The peer's nickname ("" before the introduction), the offer id (0 before the offer). */
const char *rd_chat_peer(const struct rd_chat *ch);
uint32_t rd_chat_offer_id(const struct rd_chat *ch);

/* Send a message over the link: to the peer alone (room NULL or "": PRIVATE_MSG) or as a
 * message of room (ROOM_MSG). 0 once queued (one attempt to write is made);
 * RD_ERR_STATE (no link), RD_ERR_CLOSED (the link broke: it is down now), RD_ERR_INVAL
 * (data over RD_CHAT_MAX, a bad room name), RD_ERR_FULL. */
int rd_chat_send(struct rd_chat *ch, const char *room, uint8_t kind, const void *data, size_t n);

/* For the program's poll loop: the link's descriptor (-1 when down), 1 while bytes wait
 * to be written (poll POLLOUT too). */
int rd_chat_fd(const struct rd_chat *ch);
int rd_chat_want_write(const struct rd_chat *ch);
/* Write what is queued and read what arrived, without waiting. 0, or RD_ERR_CLOSED once
 * the link is gone (it is down from then on; messages read before stay for
 * rd_chat_next). */
int rd_chat_process(struct rd_chat *ch);
/* The next message read from the link: 0 with *m a PRIVATE_MSG or ROOM_MSG (its `from`
 * is the introduced peer; views valid until the next call on ch), RD_ERR_INCOMPLETE when
 * none is there. Frames of other types are skipped; a frame that does not decode closes
 * the link (RD_ERR_MALFORMED). */
int rd_chat_next(struct rd_chat *ch, struct rd_msg *m);

#ifdef __cplusplus
}
#endif
#endif
