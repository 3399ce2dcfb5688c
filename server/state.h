/* state.h - the server's persistent state, in an SQLite database beside the store
 * (STORE.state.db unless --state FILE): which client key owns which nickname, and which
 * keys are the operators of which room (issue 12).
 *
 * SQLite because this is what it does well: transactions that a kill -9 cannot tear
 * (write-ahead log; a committed claim survives the process), one file, and safe access
 * from the server's threads and from another process at once. Every call takes the
 * state's mutex and runs one short statement; none is made under a core lock.
 *
 * Nicknames are compared as the server compares them (ASCII case folded: rd_name_eq).
 * A claim unused for longer than the expiry is free again: the next client takes it.
 */
#ifndef ROOMDROP_STATE_H
#define ROOMDROP_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "rd_proto.h"
#include "rd_tls.h"

#define STATE_NICK_EXPIRY_DAYS 90 /* default --nick-expiry */

struct state;

/* One owner, for state_nick_list. */
struct state_owner {
	char nick[64];
	uint8_t fp[RD_TLS_FP_LEN];
	uint64_t claimed_ms, used_ms; /* wall clock */
};

/* Open (create) the database at path, its tables made if missing. expiry_ms: how long an
 * unused claim lasts (0 = forever). 0; RD_ERR_SYSTEM (the file cannot be opened or is not
 * a roomdrop state database: why, if not NULL, gets SQLite's message); RD_ERR_NOMEM. */
int state_open(const char *path, uint64_t expiry_ms, struct state **out, char *why, size_t cap);
void state_close(struct state *st);

/* Cluster mode: the same state in the cluster's Redis (redis_state.c), shared by every
 * server of the cluster; each call below then asks Redis (RD_ERR_SYSTEM when it does not
 * answer within CLUSTER_REDIS_TIMEOUT_MS), and claims expire by Redis's own expiry. 0
 * (why may hold a warning to log), or as cluster_new (why says what). */
struct cluster;
int state_open_cluster(struct cluster *cl, uint64_t expiry_ms, struct state **out, char *why,
		       size_t cap);

/* May the key fp (NULL: a client without a key) have nick at now_ms? 0: yes (nobody owns
 * it, its claim expired, or fp owns it); RD_ERR_EXISTS: another key owns it (*owner_fp, if
 * not NULL, gets that key); RD_ERR_SYSTEM: the database failed (the caller refuses). */
int state_nick_check(struct state *st, const char *nick, const uint8_t *fp, uint64_t now_ms,
		     uint8_t *owner_fp);

/* fp now holds nick: claim it if free (or expired), else mark it used (to the hour: a
 * use within the hour of the last one writes nothing). 0; RD_ERR_EXISTS
 * (another key claimed it meanwhile); RD_ERR_SYSTEM. */
int state_nick_claim(struct state *st, const char *nick, const uint8_t *fp, uint64_t now_ms);

/* Free nick whoever owns it (the administrator). 0; RD_ERR_NOT_FOUND (nobody owns it);
 * RD_ERR_SYSTEM. */
int state_nick_release(struct state *st, const char *nick);

/* Every live claim, sorted by nickname; caller frees *out. 0, RD_ERR_NOMEM, RD_ERR_SYSTEM. */
int state_nick_list(struct state *st, uint64_t now_ms, struct state_owner **out, size_t *n);

/* The key that owns nick at now_ms: 0 (fp filled), RD_ERR_NOT_FOUND, RD_ERR_SYSTEM. */
int state_nick_owner(struct state *st, const char *nick, uint64_t now_ms,
		     uint8_t fp[RD_TLS_FP_LEN]);

/* Operators of a room (room names compared ignoring ASCII case): keys that may delete and
 * replace anyone's files there. state_op_set: grant (1) or revoke (0); 0, RD_ERR_EXISTS
 * (granted already), RD_ERR_NOT_FOUND (revoking a key that is not one), RD_ERR_SYSTEM.
 * state_op_is: 1 if fp is an operator of room, else 0 (a failing database says 0). */
int state_op_set(struct state *st, const char *room, const uint8_t fp[RD_TLS_FP_LEN], int grant,
		 uint64_t now_ms);
int state_op_is(struct state *st, const char *room, const uint8_t fp[RD_TLS_FP_LEN]);

/* One operator, for state_op_list (room in its folded, lower-case spelling). */
struct state_op {
	char room[64];
	uint8_t fp[RD_TLS_FP_LEN];
};
/* Every operator, sorted by room; caller frees *out. 0, RD_ERR_NOMEM, RD_ERR_SYSTEM. */
int state_op_list(struct state *st, struct state_op **out, size_t *n);

/* Admitted keys (--admission allowlist or invite). state_key_set: admit (1) or revoke (0);
 * 0, RD_ERR_EXISTS (admitted already), RD_ERR_NOT_FOUND (revoking one that is not),
 * RD_ERR_SYSTEM. state_key_admitted: 1, 0, or RD_ERR_SYSTEM (the database or, in cluster
 * mode, Redis does not answer: the caller cannot tell, and refuses for now). */
int state_key_set(struct state *st, const uint8_t fp[RD_TLS_FP_LEN], int admit, uint64_t now_ms);
int state_key_admitted(struct state *st, const uint8_t fp[RD_TLS_FP_LEN]);

/* Invitations: a random secret (RD_INVITE_SECRET bytes, only its SHA-256 is kept) good for
 * `uses` admissions until expires_ms (wall clock). id: the first 8 hex digits of that
 * hash, which names it for state_invite_revoke. 0, RD_ERR_CRYPTO, RD_ERR_SYSTEM. */
#define STATE_INVITE_ID_BUF 9
int state_invite_new(struct state *st, unsigned uses, uint64_t expires_ms, uint64_t now_ms,
		     uint8_t secret[RD_INVITE_SECRET], char id[STATE_INVITE_ID_BUF]);
/* Use one: admits fp (state_key_set) and spends a use, in one transaction. 0; RD_ERR_NOT_FOUND
 * (unknown, used up, expired or revoked: the caller cannot tell which); RD_ERR_SYSTEM. */
int state_invite_use(struct state *st, const uint8_t *secret, size_t n,
		     const uint8_t fp[RD_TLS_FP_LEN], uint64_t now_ms);
/* 0, RD_ERR_NOT_FOUND, RD_ERR_SYSTEM. */
int state_invite_revoke(struct state *st, const char *id);

#endif
