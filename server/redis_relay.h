/* redis_relay.h - relaying an offer's bytes between servers of a cluster through Redis
 * (PROTOCOL.md 15.8), for redis_cluster.c: the room core's relay and relay_close hooks on the
 * offerer's server, and the consumers that pop the bytes on the recipient's.
 *
 * Internal to roomdrop-server's cluster mode (built with hiredis only).
 */
#ifndef RD_SERVER_REDIS_RELAY_H
#define RD_SERVER_REDIS_RELAY_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "rd_msg.h"
#include "rd_server.h"

#define RELAY_WINDOW 8u          /* frames in Redis per offer before the offerer waits */
#define RELAY_KEY_TTL_MS 60000u  /* a relay's lists expire this long after their last write */
#define RELAY_STALL_MS 10000u    /* Redis away this long: the recipient is told */
#define RELAY_ANNOUNCE_MS 5000u  /* a full window this long: the relay is announced again */
#define RELAY_CONSUMERS_MAX 256u /* relays into one server at once */

struct cluster;
struct relay;

/* ---- provided by redis_cluster.c ---- */
/* (and cluster_redis_connect, cluster.h) */
/* 1 when server `id` is live in the registry as last read (addr gets its HOST:PORT), else
 * 0 (addr gets "" or the address it had when it was last seen). */
int cluster_peer_live(struct cluster *cl, const char *id, char *addr, size_t cap);
/* Queue m for the bus (scope, target), behind the events queued before it. */
void cluster_bus_send(struct cluster *cl, const struct rd_msg *m, char scope, const char *target);

/* ---- redis_relay.c ---- */
/* The relay state of cluster cl (name: the cluster's name, id: this server's id). NULL when
 * out of memory. */
struct relay *relay_new(struct cluster *cl, const char *name, const char *id);
/* The core to deliver to (cluster_start). */
void relay_set_server(struct relay *r, struct rd_server *srv);
/* The bodies of the rd_cluster_ops hooks relay and relay_close (rd_server.h says what they
 * do). */
int relay_push(struct relay *r, uint32_t offer_id, const char *from, const char *to,
	       const void *frame, size_t n, int last, int (*keep_going)(void *arg), void *arg,
	       char *why, size_t cap);
void relay_close(struct relay *r, uint32_t offer_id);
/* The bus said: server `origin` relays offer m (an OFFER_DATA whose data is the offerer's
 * nickname) to our client `to`: start popping it, unless that is done already. */
void relay_announced(struct relay *r, const char *origin, const char *to, const struct rd_msg *m);
/* Server `id` left the registry (addr: where it was): the relays to and from it fail. */
void relay_peer_gone(struct relay *r, const char *id, const char *addr);
/* Stop the consumers (join them) and free. After rd_server_stop. NULL is fine. */
void relay_free(struct relay *r);

#endif
