/* state_redis.h - the server's persistent state kept in the cluster's Redis (issue 12):
 * the same calls as state.h, made by state.c on a state opened with state_open_cluster.
 * redis_state.c implements them with hiredis; without hiredis, noredis_cluster.c's
 * state_redis_open fails with RD_ERR_STATE (a build without cluster mode never gets here,
 * since cluster_new fails first). PROTOCOL.md section 15.10 lists the keys.
 */
#ifndef ROOMDROP_STATE_REDIS_H
#define ROOMDROP_STATE_REDIS_H

#include "state.h"

struct state_redis;
struct cluster;

/* The calls, made by state.c on a state opened with state_open_cluster (as state.h's; the
 * expiry of claims is Redis's own, so no call needs the time to judge it). */
struct state_redis_ops {
	void (*close)(struct state_redis *rs);
	int (*nick_check)(struct state_redis *rs, const char *nick, const uint8_t *fp,
			  uint8_t *owner_fp);
	int (*nick_claim)(struct state_redis *rs, const char *nick, const uint8_t *fp,
			  uint64_t now_ms);
	int (*nick_release)(struct state_redis *rs, const char *nick);
	int (*nick_list)(struct state_redis *rs, struct state_owner **out, size_t *n);
	int (*nick_owner)(struct state_redis *rs, const char *nick, uint8_t fp[RD_TLS_FP_LEN]);
	int (*op_set)(struct state_redis *rs, const char *room, const uint8_t fp[RD_TLS_FP_LEN],
		      int grant);
	int (*op_is)(struct state_redis *rs, const char *room, const uint8_t fp[RD_TLS_FP_LEN]);
	int (*op_list)(struct state_redis *rs, struct state_op **out, size_t *n);
	int (*key_set)(struct state_redis *rs, const uint8_t fp[RD_TLS_FP_LEN], int admit,
		       uint64_t now_ms);
	int (*key_admitted)(struct state_redis *rs, const uint8_t fp[RD_TLS_FP_LEN]);
	int (*invite_new)(struct state_redis *rs, const uint8_t hash[RD_SHA256_SIZE],
			  const char *id, unsigned uses, uint64_t expires_ms, uint64_t now_ms);
	int (*invite_use)(struct state_redis *rs, const uint8_t hash[RD_SHA256_SIZE],
			  const uint8_t fp[RD_TLS_FP_LEN], uint64_t now_ms);
	int (*invite_revoke)(struct state_redis *rs, const char *id);
};

/* Connect (a connection of its own, with the cluster's settings). 0 with *out and *ops set
 * (why may then hold a warning to log: Redis keeps no append-only file), or an error with
 * why saying what: RD_ERR_STATE without hiredis, else as cluster_new's. */
int state_redis_open(struct cluster *cl, uint64_t expiry_ms, struct state_redis **out,
		     const struct state_redis_ops **ops, char *why, size_t cap);

#endif
