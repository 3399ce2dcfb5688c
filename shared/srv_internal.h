/* srv_internal.h - the room core's server side: the structures its files share.
 *
 * Internal to libroomdrop: never installed, never included by server/, client/ or
 * applications (the public API is rd_server.h).
 *
 * Design
 * ------
 * Threads: one acceptor ("rd-accept"), one reader per connection ("rd-c<id>", detached,
 * counted in s->live), N flushers ("rd-flush<i>") that own all socket writes of queued
 * output, one timer ("rd-timer") for heartbeats and deadlines.
 *
 * Connections: every client is an rd_link (rd_link.h): the transport (plain or TLS), the
 * frame reader and the two-class output queue. Nothing here touches a socket.
 *
 * Output path: any thread queues a frame to a client with client_enqueue(): the link
 * appends it (never blocking, never doing I/O) and says when the client went from idle to
 * needing a flush; then it goes on its flusher's ready list. A flusher calls
 * rd_link_flush, which writes everything queued meanwhile in as few writes as it can
 * (coalescing). When the socket would block it arms EPOLLOUT (EPOLLIN when TLS needs to
 * read) and moves on, so a stalled reader never stalls anyone else; a client whose event
 * queue would pass out_limit is disconnected as a slow reader. Downloads are streams
 * (rd_client_send_file -> rd_link_send_stream) written by the producer's own thread.
 *
 * Lifetime: struct rd_client is reference counted. The client table holds one reference,
 * the reader thread one, every ready-list entry and armed epoll registration one, and
 * fan-out holds one per member while it sends. The socket is closed by the last unref,
 * so no thread ever writes to a reused descriptor.
 *
 * Locks and what they guard (lock order: clients_mtx -> rooms_mtx -> offers_mtx -> c->mtx
 * -> link locks -> flusher->mtx; never the other way, never across a socket call or disk
 * write):
 *   s->clients_mtx  the connection list, nicknames, registration, s->nclients
 *   s->rooms_mtx    room membership, both directions (room->members and c->room)
 *   s->offers_mtx   the offer table (srv_offers.c): every offer, its recipients and their
 *                   answers, c->offers_gone
 *   c->mtx          the client's timers, activity text, last-message time, departure
 *   (link)          the link's own locks (rd_link.c): taken below every lock here
 *   f->mtx          a flusher's ready list
 *   s->storm_mtx    connection-storm counters (srv_rooms.c); after rooms_mtx, alone otherwise
 *   s->live_mtx     the count of reader threads (rd_server_stop waits on it)
 *
 * Files, each calling only the ones listed below it (no cycles):
 *   rd_server.c     lifecycle (new, start, stop, free) and the administration API
 *   srv_conn.c      connection threads: accept, the reader loop, refusals, departures
 *   srv_dispatch.c  decode-then-dispatch: what a client may send in which state, one
 *                   handler per core message
 *   srv_offers.c    offers: the table, answers, deadlines, departures, the relay
 *   srv_rooms.c     membership (both directions), fan-out, presence, nickname lookup
 *   srv_timer.c     heartbeats, registration and forced-close deadlines, offer deadlines
 *   srv_output.c    output queues, flushers (all socket writes), replies, polite close
 *   srv_client.c    client objects: references, kill, events, accessors
 */
#ifndef RD_SRV_INTERNAL_H
#define RD_SRV_INTERNAL_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "rd_err.h"
#include "rd_msg.h"
#include "rd_names.h"
#include "rd_net.h"
#include "rd_link.h"
#include "rd_server.h"

#define CLOSE_GRACE_MS 2000u     /* after a polite close, force it after this long */
#define EVENT_MSG_EVERY_MS 1000u /* at most one RD_EV_MESSAGE per client per second */
#define COALESCE_MIN_BATCH 32    /* a flusher batch this large means a big fan-out... */
#ifndef COALESCE_US              /* (-DCOALESCE_US=N to try another in a benchmark build) */
#define COALESCE_US 10000L       /* ...so, if more work is already waiting, it waits this long */
#endif
#define COALESCE_BUSY_US 10000L /* ...when the big batch before began less than this ago */

struct flusher;
struct srv_offer;

struct rd_room {
	char name[RD_ROOM_BUF];
	struct rd_client **members;
	size_t n, cap;
	int direct; /* direct mode (PROTOCOL.md 14.5); rooms_mtx, like the members */
	uint32_t storm_arrived,
		storm_departed; /* storm_mtx: joins, leaves not told (srv_rooms.c) */
};

struct rd_client {
	uint32_t id;
	struct rd_link *link; /* the connection: transport, reader, output queue (rd_link.h) */
	int fd;               /* rd_link_fd(link), for the flusher's epoll */
	atomic_int refs;
	struct rd_server *srv;
	struct flusher *fl;
	char ip[48];
	uint16_t port;
	uint64_t connected_ms;

	/* clients_mtx */
	struct rd_client *prev, *next;
	int registered;
	int hello_done; /* only its own thread */
	int quiet;      /* HELLO asked RD_FEAT_QUIET: no presence notices (own thread, before
			 * registration; read by others after it) */
	int bye;        /* BYE received: the reader stops (own thread) */
	char nick[RD_NICK_BUF]; /* immutable once registered */
	int nick_claimed;       /* the cluster holds nick for it (own thread, then client_gone) */

	/* rooms_mtx */
	struct rd_room *room;
	size_t room_idx;

	/* c->mtx */
	pthread_mutex_t mtx;
	uint64_t last_msg_ms, last_msg_event_ms;
	uint64_t rate_mono;  /* chat rate limit: time of the last refill */
	uint32_t rate_milli; /* tokens, in thousandths of a message */
	char activity[96];
	uint64_t next_ping_mono, ping_sent_mono, ping_nonce;
	int ping_outstanding;
	uint64_t register_deadline_mono;
	uint64_t force_close_mono; /* 0 = none */
	uint8_t departure;         /* RD_PRESENCE_* announced when it goes; 0 = DISCONNECTED */
	char reason[RD_REASON_MAX + 1];

	uint64_t relay_wait_mono; /* c->mtx: its reader waits for a receiver's bulk room since
				   * then (0 = not waiting): no ping timeout meanwhile */
	int offers_gone;          /* offers_mtx: gone, no new offer may name it */

	int ep_added; /* flusher-owned: fd registered in the flusher's epoll */
	int remote;   /* immutable: a stand-in for a client of another server of the cluster,
		       * the recipient of an offer made here (srv_offers.c): no link; what is
		       * owed to it goes through the cluster's tell hook */
	int has_fp;   /* c->mtx: TLS: the client showed a certificate, fp is its fingerprint */
	int admitted; /* c->mtx: hooks.on_auth admitted it (AUTH) */
	uint8_t fp[RD_TLS_FP_LEN];
	void *app_data;
};

struct flusher {
	struct rd_server *srv;
	pthread_t th;
	int epfd, evfd;
	pthread_mutex_t mtx;
	struct rd_client **ready;
	size_t n, cap;
	int sleeping;
	int stop;
	unsigned idx;
};

struct rd_server {
	struct rd_server_config cfg;
	struct rd_server_hooks hooks;
	int lfd;
	uint16_t bound_port;
	int started, stopped;
	atomic_int stopping;

	pthread_mutex_t clients_mtx;
	struct rd_client *clients; /* list head */
	unsigned nclients, nregistered;
	uint32_t next_id;

	pthread_mutex_t rooms_mtx;
	struct rd_room *rooms;
	size_t nrooms;

	pthread_mutex_t live_mtx;
	pthread_cond_t live_cv;
	unsigned live;

	pthread_t accept_th, timer_th;
	int accept_started, timer_started;
	pthread_mutex_t timer_mtx;
	pthread_cond_t timer_cv;
	int timer_stop;

	struct flusher *flushers;
	unsigned nflushers;

	struct rd_tls_ctx *own_tls; /* made by rd_server_new from tls_dir (freed with s) */
	int has_fp;
	uint8_t fp[RD_TLS_FP_LEN]; /* the TLS key's fingerprint */

	int reserve_fd;      /* kept open to answer a connection at the descriptor limit */
	int fd_limit_logged; /* accept thread only: the limit was logged for this episode */

	/* clients_mtx: bytes of clients already gone (rd_server_stats adds the live ones) */
	uint64_t bytes_in_gone, bytes_out_gone;

	pthread_mutex_t offers_mtx;
	struct srv_offer *offers; /* list head (srv_offers.c) */
	unsigned noffers;
	uint32_t next_offer_id;
	struct srv_proxy *proxies; /* offers_mtx: offers of other servers to clients here */
	unsigned nproxies;
	atomic_uint_fast64_t relay_peak; /* most bulk bytes queued to one relay receiver */

	struct rd_cluster_ops cluster; /* set before start, read-only after (all NULL = alone) */

	/* connection storms (srv_rooms.c): PRESENCE notices told in the current second, and
	 * the arrivals and departures counted instead once past cfg.presence_burst */
	pthread_mutex_t storm_mtx;
	uint64_t storm_second; /* wall clock, in seconds, of storm_told */
	unsigned storm_told;
	uint32_t storm_arrived, storm_departed; /* connections to the server */
	int storm_pending;                      /* something counted, not yet summarised */
};

struct req {
	struct rd_client *c;
	const struct rd_frame *f;
	struct rd_msg m;
};

/* srv_rooms.c: the PRESENCE_SUMMARY of what a connection storm counted, once its second
 * is over (called by the timer) */
void srv_presence_summarise(struct rd_server *s, uint64_t now_wall_ms);

/* srv_client.c */
void srv_copy_str(char *dst, size_t cap, const char *src);
void srv_client_ref(struct rd_client *c);
void srv_client_unref(struct rd_client *c);
void srv_emit(struct rd_server *s, enum rd_event_kind kind, struct rd_client *c, const char *room,
	      const char *text);
void srv_client_kill(struct rd_client *c, const char *reason);

/* srv_output.c */
int srv_push_ready(struct flusher *f, struct rd_client *const *v, size_t n);
void srv_wake_flusher(struct flusher *f);
void *srv_flusher_main(void *arg);
int srv_client_enqueue_defer(struct rd_client *c, const void *p, size_t n, int *marked);
int srv_send_ok(struct rd_client *c, uint32_t req_id, uint16_t for_type);
int srv_client_queue_event(struct rd_client *c, const void *p, size_t n);
int srv_client_queue_bulk(struct rd_client *to, const void *p, size_t n,
			  struct rd_client *producer);
void srv_begin_close(struct rd_client *c, uint8_t departure, const char *reason);

/* srv_rooms.c */
struct rd_room *srv_room_find(struct rd_server *s, const char *name);
int srv_room_add_locked(struct rd_room *r, struct rd_client *c);
/* srv_announce to the members of r but except and the members named in names[0..n). */
unsigned srv_announce_except(struct rd_server *s, struct rd_room *r, const struct rd_client *except,
			     const struct rd_nick_entry *names, size_t nnames,
			     const struct rd_msg *m);
unsigned srv_announce(struct rd_server *s, struct rd_room *r, const struct rd_client *except,
		      const struct rd_msg *m);
void srv_presence(struct rd_server *s, struct rd_room *r, const struct rd_client *subject,
		  uint8_t event, const char *nick, const char *room, const char *reason);
struct rd_client *srv_find_nick_locked(struct rd_server *s, const char *nick);
void srv_leave_room(struct rd_client *c, int announce_it);
struct rd_client *srv_get_by_nick(struct rd_server *s, const char *nick);
/* rd_room_send to this server's members only (what came from another server). */
int srv_room_send_local(struct rd_server *s, const char *room, const struct rd_client *except,
			uint16_t type, const void *payload, size_t len, unsigned *n);

/* srv_offers.c */
void srv_handle_offer(struct req *q);
void srv_handle_offer_answer(struct req *q);
void srv_handle_offer_cancel(struct req *q);
void srv_handle_offer_data(struct req *q);
void srv_handle_offer_end(struct req *q);
void srv_handle_p2p_listen(struct req *q);
void srv_handle_p2p_failed(struct req *q);
void srv_offers_tick(struct rd_server *s, uint64_t now);
void srv_offers_client_gone(struct rd_client *c, const char *reason);
void srv_offers_free(struct rd_server *s);
/* Offers across servers (PROTOCOL.md 15.8). Before rd_server_deliver hands m to the client
 * t: note an OFFER_IN (t may answer it here), forget one after a final OFFER_RESULT. 0, or
 * RD_ERR_NOT_FOUND when t is gone (nothing to deliver). */
int srv_offers_note_remote(struct rd_server *s, struct rd_client *t, const struct rd_msg *m);

/* rd_server.c */
int srv_kick_local(struct rd_server *s, const char *nick, const char *reason);

/* srv_timer.c */
void *srv_timer_main(void *arg);

/* srv_dispatch.c */
void srv_dispatch(struct rd_client *c, const struct rd_frame *f);

/* srv_conn.c */
void *srv_accept_main(void *arg);
void srv_refuse_plaintext(struct rd_server *s, int fd);

#endif
