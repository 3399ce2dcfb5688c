/* redis_state.c - the server's persistent state in the cluster's Redis (state_redis.h).
 *
 * In cluster mode every server of the cluster must see one set of nickname owners, room
 * operators, admitted keys and invitations (issue 12), so they live in the cluster's Redis
 * rather than in each server's SQLite file. Keys (PROTOCOL.md section 15.10), NAME the
 * cluster's name, fingerprints and hashes in lower-case hex:
 *   rd:NAME:owner:NICK   hash {nick, fp, claimed, used}; expires --nick-expiry after
 *                        its last recorded use (Redis's own expiry is the idle rule)
 *   rd:NAME:ops:ROOM     set of operator fingerprints (ROOM folded to lower case)
 *   rd:NAME:admitted     hash fingerprint -> when it was admitted (ms)
 *   rd:NAME:invite:HASH  hash {id, uses, expires, created}; expires with the invitation
 * Changes that must be atomic (a claim, an invitation spent and its key admitted) are Lua
 * scripts, which Redis runs as one step, so two servers never both win. Each write is
 * acknowledged by Redis before the client hears of it: a server killed with kill -9 loses
 * nothing. What survives a restart of Redis itself is Redis's persistence (the README asks
 * for appendonly on a cluster's Redis; state_redis_open logs a warning without it).
 *
 * One connection, used by one call at a time (mu), reconnected once per call when broken;
 * every reply has CLUSTER_REDIS_TIMEOUT_MS. A call that gets no answer returns
 * RD_ERR_SYSTEM, which the server turns into ERROR 902 CLUSTER_DEGRADED (retry later).
 */
#include "state_redis.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster.h"
#include "rd_err.h"
#include "rd_hash.h"

#define KEY_MAX (CLUSTER_NAME_MAX + 2 * RD_SHA256_SIZE + 32)
#define HEX_FP (2 * RD_TLS_FP_LEN + 1)
#define USED_GRAIN_MS 3600000u /* a claim's last use is recorded to the hour, as in SQLite */

struct state_redis {
	pthread_mutex_t mu;
	struct cluster *cl;
	redisContext *c;
	char name[CLUSTER_NAME_MAX + 1];
	uint64_t expiry_ms;
};

/* KEYS[1] the owner key. ARGV: fp, nick, now, expiry (0 = none), grain. 1 = fp holds it now,
 * 0 = another key does. */
static const char claim_lua[] =
	"local o = redis.call('HGET', KEYS[1], 'fp') "
	"if o and o ~= ARGV[1] then return 0 end "
	"if not o then "
	"  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'nick', ARGV[2], 'claimed', ARGV[3], "
	"             'used', ARGV[3]) "
	"else "
	"  local u = tonumber(redis.call('HGET', KEYS[1], 'used') or '0') "
	"  if tonumber(ARGV[3]) >= u and tonumber(ARGV[3]) - u < tonumber(ARGV[5]) then "
	"    return 1 end "
	"  redis.call('HSET', KEYS[1], 'used', ARGV[3]) "
	"end "
	"if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end "
	"return 1";

/* KEYS[1] the invitation, KEYS[2] the admitted hash. ARGV: fp, now. 1 = spent one use and
 * admitted fp, 0 = unknown, used up or expired. */
static const char invite_lua[] = "local e = redis.call('HGET', KEYS[1], 'expires') "
				 "if not e or tonumber(e) <= tonumber(ARGV[2]) then return 0 end "
				 "local left = redis.call('HINCRBY', KEYS[1], 'uses', -1) "
				 "if left < 0 then redis.call('DEL', KEYS[1]) return 0 end "
				 "if left == 0 then redis.call('DEL', KEYS[1]) end "
				 "redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) "
				 "return 1";

static void fold(const char *s, char *out, size_t cap)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < cap; i++)
		out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
	out[i] = '\0';
}

static void key_of(const struct state_redis *rs, const char *kind, const char *name, char *out,
		   size_t cap)
{
	char low[2 * RD_SHA256_SIZE + 1];

	fold(name, low, sizeof(low));
	snprintf(out, cap, "rd:%s:%s%s%s", rs->name, kind, name[0] ? ":" : "", low);
}

static const struct state_redis_ops redis_ops;

int state_redis_open(struct cluster *cl, uint64_t expiry_ms, struct state_redis **out,
		     const struct state_redis_ops **ops, char *why, size_t cap)
{
	struct state_redis *rs;
	redisReply *r;
	int rc;

	*out = NULL;
	if ((rs = calloc(1, sizeof(*rs))) == NULL)
		return RD_ERR_NOMEM;
	rs->cl = cl;
	rs->expiry_ms = expiry_ms;
	snprintf(rs->name, sizeof(rs->name), "%s", cluster_name(cl));
	if ((rs->c = cluster_redis_connect(cl, why, cap, &rc)) == NULL) {
		free(rs);
		return rc;
	}
	pthread_mutex_init(&rs->mu, NULL);
	/* only a warning: a test's Redis runs without persistence on purpose */
	r = redisCommand(rs->c, "INFO persistence");
	if (r != NULL && r->type == REDIS_REPLY_STRING && strstr(r->str, "aof_enabled:0"))
		snprintf(why, cap,
			 "Redis keeps no append-only file (appendonly no): nickname "
			 "owners, admitted keys and invitations are lost if Redis restarts");
	else if (cap > 0)
		why[0] = '\0';
	freeReplyObject(r);
	*out = rs;
	*ops = &redis_ops;
	return 0;
}

static void state_redis_close(struct state_redis *rs)
{
	if (rs == NULL)
		return;
	if (rs->c)
		redisFree(rs->c);
	pthread_mutex_destroy(&rs->mu);
	free(rs);
}

/* One command (printf-style, as redisCommand), reconnecting once if the connection broke.
 * NULL when Redis does not answer; an error reply is returned as such. rs->mu held. */
static redisReply *run_locked(struct state_redis *rs, const char *fmt, ...)
{
	char why[256];
	redisReply *r;
	va_list ap;
	int rc;

	for (int attempt = 0; attempt < 2; attempt++) {
		if (rs->c == NULL &&
		    (rs->c = cluster_redis_connect(rs->cl, why, sizeof(why), &rc)) == NULL)
			return NULL;
		va_start(ap, fmt);
		r = redisvCommand(rs->c, fmt, ap);
		va_end(ap);
		if (r != NULL)
			return r;
		redisFree(rs->c);
		rs->c = NULL;
	}
	return NULL;
}

static int is_int(const redisReply *r)
{
	return r != NULL && r->type == REDIS_REPLY_INTEGER;
}

/* The owner's fingerprint of nick: 1 (into fp), 0 nobody, -1 no answer. */
static int owner_of(struct state_redis *rs, const char *nick, uint8_t fp[RD_TLS_FP_LEN])
{
	char key[KEY_MAX];
	redisReply *r;
	int rc = -1;

	key_of(rs, "owner", nick, key, sizeof(key));
	pthread_mutex_lock(&rs->mu);
	r = run_locked(rs, "HGET %s fp", key);
	pthread_mutex_unlock(&rs->mu);
	if (r != NULL && r->type == REDIS_REPLY_NIL)
		rc = 0;
	else if (r != NULL && r->type == REDIS_REPLY_STRING &&
		 rd_hex_parse(r->str, fp, RD_TLS_FP_LEN) == 0)
		rc = 1;
	freeReplyObject(r);
	return rc;
}

static int state_redis_nick_check(struct state_redis *rs, const char *nick, const uint8_t *fp,
				  uint8_t *owner_fp)
{
	uint8_t owner[RD_TLS_FP_LEN];
	int own = owner_of(rs, nick, owner);

	if (own < 0)
		return RD_ERR_SYSTEM;
	if (own == 0 || (fp != NULL && memcmp(owner, fp, RD_TLS_FP_LEN) == 0))
		return 0;
	if (owner_fp != NULL)
		memcpy(owner_fp, owner, RD_TLS_FP_LEN);
	return RD_ERR_EXISTS;
}

static int state_redis_nick_claim(struct state_redis *rs, const char *nick, const uint8_t *fp,
				  uint64_t now_ms)
{
	char key[KEY_MAX], hex[HEX_FP], now[24], exp[24], grain[24];
	redisReply *r;
	int rc;

	key_of(rs, "owner", nick, key, sizeof(key));
	rd_hex(fp, RD_TLS_FP_LEN, hex);
	snprintf(now, sizeof(now), "%llu", (unsigned long long)now_ms);
	snprintf(exp, sizeof(exp), "%llu", (unsigned long long)rs->expiry_ms);
	snprintf(grain, sizeof(grain), "%u", USED_GRAIN_MS);
	pthread_mutex_lock(&rs->mu);
	r = run_locked(rs, "EVAL %s 1 %s %s %s %s %s %s", claim_lua, key, hex, nick, now, exp,
		       grain);
	pthread_mutex_unlock(&rs->mu);
	rc = !is_int(r) ? RD_ERR_SYSTEM : r->integer == 1 ? 0 : RD_ERR_EXISTS;
	freeReplyObject(r);
	return rc;
}

/* A reply that counts what changed: 0 when it is above 0, else none (RD_ERR_SYSTEM when
 * there was no answer). Frees r. */
static int changed(redisReply *r, int none)
{
	int rc = !is_int(r) ? RD_ERR_SYSTEM : r->integer > 0 ? 0 : none;

	freeReplyObject(r);
	return rc;
}

static int state_redis_nick_release(struct state_redis *rs, const char *nick)
{
	char key[KEY_MAX];
	redisReply *r;

	key_of(rs, "owner", nick, key, sizeof(key));
	pthread_mutex_lock(&rs->mu);
	r = run_locked(rs, "DEL %s", key);
	pthread_mutex_unlock(&rs->mu);
	return changed(r, RD_ERR_NOT_FOUND);
}

static int state_redis_nick_owner(struct state_redis *rs, const char *nick,
				  uint8_t fp[RD_TLS_FP_LEN])
{
	int own = owner_of(rs, nick, fp);

	return own < 0 ? RD_ERR_SYSTEM : own == 0 ? RD_ERR_NOT_FOUND : 0;
}

/* Every key matching pattern (SCAN: it never blocks Redis as KEYS would). *keys is a
 * malloc'd array of malloc'd strings. 0, RD_ERR_NOMEM, RD_ERR_SYSTEM. rs->mu held. */
static int scan_locked(struct state_redis *rs, const char *pattern, char ***keys, size_t *n)
{
	char cursor[32] = "0";
	char **v = NULL, **nv;
	size_t k = 0;
	redisReply *r;
	int rc = 0;

	do {
		r = run_locked(rs, "SCAN %s MATCH %s COUNT 500", cursor, pattern);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			rc = RD_ERR_SYSTEM;
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		for (size_t i = 0; i < r->element[1]->elements && rc == 0; i++) {
			const redisReply *e = r->element[1]->element[i];

			if (e->type != REDIS_REPLY_STRING)
				continue;
			if ((nv = realloc(v, (k + 1) * sizeof(*v))) == NULL ||
			    (nv[k] = strdup(e->str)) == NULL) {
				v = nv ? nv : v;
				rc = RD_ERR_NOMEM;
				break;
			}
			v = nv;
			k++;
		}
		freeReplyObject(r);
		r = NULL;
	} while (rc == 0 && strcmp(cursor, "0") != 0);
	freeReplyObject(r);
	if (rc != 0) {
		for (size_t i = 0; i < k; i++)
			free(v[i]);
		free(v);
		return rc;
	}
	*keys = v;
	*n = k;
	return 0;
}

static void free_keys(char **keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}

static int owner_cmp(const void *a, const void *b)
{
	return strcasecmp(((const struct state_owner *)a)->nick,
			  ((const struct state_owner *)b)->nick);
}

static int state_redis_nick_list(struct state_redis *rs, struct state_owner **out, size_t *n)
{
	char pattern[KEY_MAX], **keys = NULL;
	struct state_owner *v;
	size_t nk = 0, k = 0;
	redisReply *r;
	int rc;

	*out = NULL;
	*n = 0;
	snprintf(pattern, sizeof(pattern), "rd:%s:owner:*", rs->name);
	pthread_mutex_lock(&rs->mu);
	if ((rc = scan_locked(rs, pattern, &keys, &nk)) != 0)
		goto unlock;
	if ((v = calloc(nk ? nk : 1, sizeof(*v))) == NULL) {
		rc = RD_ERR_NOMEM;
		goto unlock;
	}
	for (size_t i = 0; i < nk; i++) {
		r = run_locked(rs, "HMGET %s nick fp claimed used", keys[i]);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
			freeReplyObject(r);
			free(v);
			rc = RD_ERR_SYSTEM;
			goto unlock;
		}
		if (r->element[0]->type == REDIS_REPLY_STRING &&
		    r->element[1]->type == REDIS_REPLY_STRING &&
		    rd_hex_parse(r->element[1]->str, v[k].fp, RD_TLS_FP_LEN) == 0) {
			snprintf(v[k].nick, sizeof(v[k].nick), "%s", r->element[0]->str);
			if (r->element[2]->type == REDIS_REPLY_STRING)
				v[k].claimed_ms = strtoull(r->element[2]->str, NULL, 10);
			if (r->element[3]->type == REDIS_REPLY_STRING)
				v[k].used_ms = strtoull(r->element[3]->str, NULL, 10);
			k++; /* (a key that expired between SCAN and HMGET is skipped) */
		}
		freeReplyObject(r);
	}
	qsort(v, k, sizeof(*v), owner_cmp);
	*out = v;
	*n = k;
unlock:
	pthread_mutex_unlock(&rs->mu);
	free_keys(keys, nk);
	return rc;
}

static int state_redis_op_set(struct state_redis *rs, const char *room,
			      const uint8_t fp[RD_TLS_FP_LEN], int grant)
{
	char key[KEY_MAX], hex[HEX_FP];
	redisReply *r;

	key_of(rs, "ops", room, key, sizeof(key));
	rd_hex(fp, RD_TLS_FP_LEN, hex);
	pthread_mutex_lock(&rs->mu);
	r = run_locked(rs, grant ? "SADD %s %s" : "SREM %s %s", key, hex);
	pthread_mutex_unlock(&rs->mu);
	return changed(r, grant ? RD_ERR_EXISTS : RD_ERR_NOT_FOUND);
}

static int state_redis_op_is(struct state_redis *rs, const char *room,
			     const uint8_t fp[RD_TLS_FP_LEN])
{
	char key[KEY_MAX], hex[HEX_FP];
	redisReply *r;
	int is;

	key_of(rs, "ops", room, key, sizeof(key));
	rd_hex(fp, RD_TLS_FP_LEN, hex);
	pthread_mutex_lock(&rs->mu);
	r = run_locked(rs, "SISMEMBER %s %s", key, hex);
	pthread_mutex_unlock(&rs->mu);
	is = is_int(r) && r->integer == 1;
	freeReplyObject(r);
	return is;
}

static int op_cmp(const void *a, const void *b)
{
	const struct state_op *x = a, *y = b;
	int c = strcmp(x->room, y->room);

	return c ? c : memcmp(x->fp, y->fp, RD_TLS_FP_LEN);
}

static int state_redis_op_list(struct state_redis *rs, struct state_op **out, size_t *n)
{
	char pattern[KEY_MAX], **keys = NULL;
	struct state_op *v = NULL, *nv;
	size_t nk = 0, k = 0, skip;
	redisReply *r;
	int rc;

	*out = NULL;
	*n = 0;
	skip = (size_t)snprintf(pattern, sizeof(pattern), "rd:%s:ops:", rs->name);
	snprintf(pattern + skip, sizeof(pattern) - skip, "*");
	pthread_mutex_lock(&rs->mu);
	if ((rc = scan_locked(rs, pattern, &keys, &nk)) != 0)
		goto unlock;
	for (size_t i = 0; i < nk && rc == 0; i++) {
		r = run_locked(rs, "SMEMBERS %s", keys[i]);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
			rc = RD_ERR_SYSTEM;
		} else {
			for (size_t j = 0; j < r->elements; j++) {
				if (r->element[j]->type != REDIS_REPLY_STRING)
					continue;
				if ((nv = realloc(v, (k + 1) * sizeof(*v))) == NULL) {
					rc = RD_ERR_NOMEM;
					break;
				}
				v = nv;
				memset(&v[k], 0, sizeof(v[k]));
				snprintf(v[k].room, sizeof(v[k].room), "%s", keys[i] + skip);
				if (rd_hex_parse(r->element[j]->str, v[k].fp, RD_TLS_FP_LEN) == 0)
					k++;
			}
		}
		freeReplyObject(r);
	}
	if (rc == 0) {
		if (k > 1)
			qsort(v, k, sizeof(*v), op_cmp);
		*out = v;
		*n = k;
		v = NULL;
	}
unlock:
	pthread_mutex_unlock(&rs->mu);
	free(v);
	free_keys(keys, nk);
	return rc;
}

static int state_redis_key_set(struct state_redis *rs, const uint8_t fp[RD_TLS_FP_LEN], int admit,
			       uint64_t now_ms)
{
	char key[KEY_MAX], hex[HEX_FP], now[24];
	redisReply *r;

	key_of(rs, "admitted", "", key, sizeof(key));
	rd_hex(fp, RD_TLS_FP_LEN, hex);
	snprintf(now, sizeof(now), "%llu", (unsigned long long)now_ms);
	pthread_mutex_lock(&rs->mu);
	r = admit ? run_locked(rs, "HSETNX %s %s %s", key, hex, now) :
		    run_locked(rs, "HDEL %s %s", key, hex);
	pthread_mutex_unlock(&rs->mu);
	return changed(r, admit ? RD_ERR_EXISTS : RD_ERR_NOT_FOUND);
}

static int state_redis_key_admitted(struct state_redis *rs, const uint8_t fp[RD_TLS_FP_LEN])
{
	char key[KEY_MAX], hex[HEX_FP];
	redisReply *r;
	int is;

	key_of(rs, "admitted", "", key, sizeof(key));
	rd_hex(fp, RD_TLS_FP_LEN, hex);
	pthread_mutex_lock(&rs->mu);
	r = run_locked(rs, "HEXISTS %s %s", key, hex);
	pthread_mutex_unlock(&rs->mu);
	is = !is_int(r) ? RD_ERR_SYSTEM : r->integer == 1;
	freeReplyObject(r);
	return is;
}

static int state_redis_invite_new(struct state_redis *rs, const uint8_t hash[RD_SHA256_SIZE],
				  const char *id, unsigned uses, uint64_t expires_ms,
				  uint64_t now_ms)
{
	char key[KEY_MAX], hex[2 * RD_SHA256_SIZE + 1], u[16], e[24], c[24];
	redisReply *r;
	int rc = RD_ERR_SYSTEM;

	rd_hex(hash, RD_SHA256_SIZE, hex);
	key_of(rs, "invite", hex, key, sizeof(key));
	snprintf(u, sizeof(u), "%u", uses ? uses : 1);
	snprintf(e, sizeof(e), "%llu", (unsigned long long)expires_ms);
	snprintf(c, sizeof(c), "%llu", (unsigned long long)now_ms);
	pthread_mutex_lock(&rs->mu);
	r = run_locked(rs, "HSET %s id %s uses %s expires %s created %s", key, id, u, e, c);
	if (is_int(r)) {
		freeReplyObject(r);
		r = run_locked(rs, "PEXPIREAT %s %s", key, e);
		rc = is_int(r) ? 0 : RD_ERR_SYSTEM;
	}
	pthread_mutex_unlock(&rs->mu);
	freeReplyObject(r);
	return rc;
}

static int state_redis_invite_use(struct state_redis *rs, const uint8_t hash[RD_SHA256_SIZE],
				  const uint8_t fp[RD_TLS_FP_LEN], uint64_t now_ms)
{
	char key[KEY_MAX], adm[KEY_MAX], hex[2 * RD_SHA256_SIZE + 1], fph[HEX_FP], now[24];
	redisReply *r;
	int rc;

	rd_hex(hash, RD_SHA256_SIZE, hex);
	key_of(rs, "invite", hex, key, sizeof(key));
	key_of(rs, "admitted", "", adm, sizeof(adm));
	rd_hex(fp, RD_TLS_FP_LEN, fph);
	snprintf(now, sizeof(now), "%llu", (unsigned long long)now_ms);
	pthread_mutex_lock(&rs->mu);
	r = run_locked(rs, "EVAL %s 2 %s %s %s %s", invite_lua, key, adm, fph, now);
	pthread_mutex_unlock(&rs->mu);
	rc = !is_int(r) ? RD_ERR_SYSTEM : r->integer == 1 ? 0 : RD_ERR_NOT_FOUND;
	freeReplyObject(r);
	return rc;
}

static int state_redis_invite_revoke(struct state_redis *rs, const char *id)
{
	char pattern[KEY_MAX], **keys = NULL;
	size_t nk = 0, deleted = 0;
	redisReply *r;
	int rc;

	/* the id is the first 8 hex digits of the hash, the key's last part */
	for (const char *p = id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return RD_ERR_NOT_FOUND;
	snprintf(pattern, sizeof(pattern), "rd:%s:invite:%s*", rs->name, id);
	pthread_mutex_lock(&rs->mu);
	if ((rc = scan_locked(rs, pattern, &keys, &nk)) == 0) {
		for (size_t i = 0; i < nk && rc == 0; i++) {
			r = run_locked(rs, "DEL %s", keys[i]);
			if (!is_int(r))
				rc = RD_ERR_SYSTEM;
			else
				deleted += (size_t)r->integer;
			freeReplyObject(r);
		}
	}
	pthread_mutex_unlock(&rs->mu);
	free_keys(keys, nk);
	return rc != 0 ? rc : deleted > 0 ? 0 : RD_ERR_NOT_FOUND;
}

static const struct state_redis_ops redis_ops = {
	.close = state_redis_close,
	.nick_check = state_redis_nick_check,
	.nick_claim = state_redis_nick_claim,
	.nick_release = state_redis_nick_release,
	.nick_list = state_redis_nick_list,
	.nick_owner = state_redis_nick_owner,
	.op_set = state_redis_op_set,
	.op_is = state_redis_op_is,
	.op_list = state_redis_op_list,
	.key_set = state_redis_key_set,
	.key_admitted = state_redis_key_admitted,
	.invite_new = state_redis_invite_new,
	.invite_use = state_redis_invite_use,
	.invite_revoke = state_redis_invite_revoke,
};
