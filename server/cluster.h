/* cluster.h - roomdrop-server's cluster mode: several servers as one, through Redis.
 *
 * With --redis, a server joins the cluster named by --cluster (PROTOCOL.md section 15):
 * it registers itself in Redis (where clients should connect, its key's fingerprint, how
 * many clients it has and may have) under a key that expires CLUSTER_TTL_MS after the
 * last refresh, refreshed every CLUSTER_REFRESH_MS by a thread of its own, so a server
 * killed without a word leaves the registry within CLUSTER_TTL_MS. A master
 * (--master --redirect-above N) sends the HELLO of a client that arrives while it has N
 * clients to the least-loaded live secondary (REDIRECT, through the room core's cluster
 * hooks: rd_server.h, struct rd_cluster_ops). Nicknames are claimed cluster-wide; room
 * membership, room and private messages, presence, broadcasts and kicks cross servers, and
 * so do an application's room messages (file notices) and what an offer to a client of
 * another server, or a room offer to the room's members there, needs (its answers, the
 * peer-to-peer introduction, and its bytes relayed through Redis: redis_relay.h).
 *
 * Two implementations: redis_cluster.c (hiredis) when the build has hiredis, and
 * noredis_cluster.c otherwise, whose cluster_new always fails with RD_ERR_STATE.
 */
#ifndef RD_SERVER_CLUSTER_H
#define RD_SERVER_CLUSTER_H

#include <stdint.h>

#include "rd_proto.h"
#include "rd_server.h"
#include "rd_tls.h"

#define CLUSTER_TTL_MS 5000u       /* a registry entry lives this long after a refresh */
#define CLUSTER_REFRESH_MS 1000u   /* ...and is refreshed this often */
#define CLUSTER_NICK_TTL_MS 15000u /* a nickname claim lives this long after a refresh */
#define CLUSTER_NICK_REFRESH_MS 5000u
#define CLUSTER_REDIS_TIMEOUT_MS 1000 /* every Redis call: connect, and each reply */
#define CLUSTER_NAME_MAX 64u

struct cluster;

struct cluster_config {
	const char *redis; /* a Unix socket path (has a '/') or host:port (port default 6379) */
	const char *name;  /* the cluster's name: letters, digits, '_', '.', '-' */
	int master;
	unsigned redirect_above; /* master: redirect past this many clients; 0 = never */
	const char *advertise;   /* HOST:PORT clients should use; NULL = the listen address */
};

/* 1 when this build has cluster mode (hiredis), else 0. */
int cluster_supported(void);

/* Check cfg and connect to Redis (within CLUSTER_REDIS_TIMEOUT_MS; PING must answer).
 * 0, or: RD_ERR_STATE (no cluster mode in this build), RD_ERR_INVAL (a bad value, why
 * says which), RD_ERR_REFUSED / RD_ERR_TIMEOUT / RD_ERR_SYSTEM (Redis cannot be reached,
 * why says where and what). why gets one line for the user on failure. */
int cluster_new(const struct cluster_config *cfg, struct cluster **out, char *why, size_t cap);

/* The hooks the room core calls (install with rd_server_set_cluster before start). */
void cluster_ops(struct cluster *cl, struct rd_cluster_ops *ops);

/* Start registering and reading the registry (the "rd-cluster" thread). listen_host and
 * port: where the server listens (the default advertised address); fp: its key, NULL when
 * it runs plaintext. capacity: --max-clients. 0, or RD_ERR_INVAL for a bad --advertise,
 * RD_ERR_SYSTEM when the thread cannot start. */
int cluster_start(struct cluster *cl, struct rd_server *srv, const char *listen_host, uint16_t port,
		  const uint8_t *fp, unsigned capacity, char *why, size_t cap);

/* For `ctl list`: the clients of the other live servers that are in a room (the room
 * entries in Redis), as CTL_CLIENTS entries with id 0, nick, room, connected_ms and server
 * (HOST:PORT) set. *out malloc'd (caller frees). 0, or an error (Redis away: none). */
int cluster_clients(struct cluster *cl, struct rd_ctl_client **out, size_t *n);

/* For the state kept in Redis (redis_state.c): a new connection to the cluster's Redis
 * (as cluster_new makes its own: the same timeouts; NULL, *rc and why on failure), and
 * the cluster's name. */
struct redisContext;
/* An RD_EV_INFO event (log and window) with printf-style text; nothing before
 * cluster_start. (For the relay too: redis_relay.c.) */
void cluster_post(struct cluster *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct redisContext *cluster_redis_connect(const struct cluster *cl, char *why, size_t cap,
					   int *rc);
const char *cluster_name(const struct cluster *cl);

/* Leave the registry (delete this server's entry and its nicknames), stop the thread,
 * free. NULL is fine. Call after rd_server_stop. */
void cluster_free(struct cluster *cl);

#endif
