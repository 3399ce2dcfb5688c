/* state.c - the server's persistent state in SQLite (state.h). */
#include "state.h"

#include <ctype.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rd_err.h"
#include "rd_hash.h"
#include "state_redis.h"

#define BUSY_MS 2000 /* another process (ctl, a second server) holds the write lock */

struct state {
	pthread_mutex_t mu;
	sqlite3 *db; /* NULL in cluster mode: */
	struct state_redis *rs;
	const struct state_redis_ops *ro;
	uint64_t expiry_ms;
};

static const char SCHEMA[] =
	"PRAGMA synchronous=NORMAL;" /* with WAL: a commit survives the process (kill -9) */
	"PRAGMA journal_mode=WAL;"
	"CREATE TABLE IF NOT EXISTS nick_owner ("
	"  fold TEXT PRIMARY KEY," /* the nickname, ASCII lower case: the unique key */
	"  nick TEXT NOT NULL,"    /* as first claimed */
	"  fp BLOB NOT NULL,"      /* the owner's key fingerprint (SHA-256 of its public key) */
	"  claimed_ms INTEGER NOT NULL,"
	"  used_ms INTEGER NOT NULL"
	");"
	"CREATE TABLE IF NOT EXISTS room_operator ("
	"  room TEXT NOT NULL," /* ASCII lower case */
	"  fp BLOB NOT NULL,"
	"  granted_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (room, fp)"
	");"
	"CREATE TABLE IF NOT EXISTS admitted_key ("
	"  fp BLOB PRIMARY KEY,"
	"  admitted_ms INTEGER NOT NULL"
	");"
	"CREATE TABLE IF NOT EXISTS invitation ("
	"  hash BLOB PRIMARY KEY," /* SHA-256 of the secret: the secret itself is not kept */
	"  id TEXT NOT NULL,"
	"  uses_left INTEGER NOT NULL,"
	"  expires_ms INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL"
	");";

static void fold(const char *nick, char *out, size_t cap)
{
	size_t i;

	for (i = 0; nick[i] != '\0' && i + 1 < cap; i++)
		out[i] = (char)tolower((unsigned char)nick[i]);
	out[i] = '\0';
}

int state_open(const char *path, uint64_t expiry_ms, struct state **out, char *why, size_t cap)
{
	struct state *st;
	char *err = NULL;

	*out = NULL;
	if (why != NULL && cap > 0)
		why[0] = '\0';
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return RD_ERR_NOMEM;
	st->expiry_ms = expiry_ms;
	if (sqlite3_open_v2(path, &st->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(st->db, BUSY_MS) != SQLITE_OK ||
	    sqlite3_exec(st->db, SCHEMA, NULL, NULL, &err) != SQLITE_OK) {
		if (why != NULL)
			snprintf(why, cap, "%s",
				 err != NULL    ? err :
				 st->db != NULL ? sqlite3_errmsg(st->db) :
						  "out of memory");
		sqlite3_free(err);
		sqlite3_close(st->db);
		free(st);
		return RD_ERR_SYSTEM;
	}
	pthread_mutex_init(&st->mu, NULL);
	*out = st;
	return 0;
}

int state_open_cluster(struct cluster *cl, uint64_t expiry_ms, struct state **out, char *why,
		       size_t cap)
{
	struct state *st;
	int rc;

	*out = NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return RD_ERR_NOMEM;
	st->expiry_ms = expiry_ms;
	if ((rc = state_redis_open(cl, expiry_ms, &st->rs, &st->ro, why, cap)) != 0) {
		free(st);
		return rc;
	}
	*out = st;
	return 0;
}

void state_close(struct state *st)
{
	if (st == NULL)
		return;
	if (st->rs != NULL) {
		st->ro->close(st->rs);
		free(st);
		return;
	}
	sqlite3_close(st->db);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

/* The owner of nick (folded) if its claim is live: 1 (fp into owner), 0 none, -1 error. An
 * expired claim is deleted here. Under st->mu. */
static int owner_locked(struct state *st, const char *key, uint64_t now_ms,
			uint8_t owner[RD_TLS_FP_LEN])
{
	sqlite3_stmt *q = NULL;
	int rc = -1, step;

	if (sqlite3_prepare_v2(st->db, "SELECT fp, used_ms FROM nick_owner WHERE fold = ?1", -1, &q,
			       NULL) != SQLITE_OK ||
	    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC) != SQLITE_OK)
		goto out;
	step = sqlite3_step(q);
	if (step == SQLITE_DONE) {
		rc = 0;
	} else if (step == SQLITE_ROW) {
		uint64_t used = (uint64_t)sqlite3_column_int64(q, 1);

		if (st->expiry_ms != 0 && used + st->expiry_ms < now_ms) {
			sqlite3_finalize(q);
			q = NULL;
			if (sqlite3_prepare_v2(st->db, "DELETE FROM nick_owner WHERE fold = ?1", -1,
					       &q, NULL) != SQLITE_OK ||
			    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC) != SQLITE_OK ||
			    sqlite3_step(q) != SQLITE_DONE)
				goto out;
			rc = 0;
		} else if (sqlite3_column_bytes(q, 0) == RD_TLS_FP_LEN) {
			memcpy(owner, sqlite3_column_blob(q, 0), RD_TLS_FP_LEN);
			rc = 1;
		}
	}
out:
	sqlite3_finalize(q);
	return rc;
}

int state_nick_check(struct state *st, const char *nick, const uint8_t *fp, uint64_t now_ms,
		     uint8_t *owner_fp)
{
	uint8_t owner[RD_TLS_FP_LEN];
	char key[64];
	int own;

	if (st->rs != NULL)
		return st->ro->nick_check(st->rs, nick, fp, owner_fp);

	fold(nick, key, sizeof(key));
	pthread_mutex_lock(&st->mu);
	own = owner_locked(st, key, now_ms, owner);
	pthread_mutex_unlock(&st->mu);
	if (own < 0)
		return RD_ERR_SYSTEM;
	if (own == 0 || (fp != NULL && memcmp(owner, fp, RD_TLS_FP_LEN) == 0))
		return 0;
	if (owner_fp != NULL)
		memcpy(owner_fp, owner, RD_TLS_FP_LEN);
	return RD_ERR_EXISTS;
}

#define USED_GRAIN_MS 3600000u /* a claim's last use is recorded to the hour */

/* 1 when fp owns key and used it less than USED_GRAIN_MS ago. Under st->mu. */
static int owner_used_recently_locked(struct state *st, const char *key, const uint8_t *fp,
				      uint64_t now_ms)
{
	sqlite3_stmt *q = NULL;
	int yes = 0;

	if (sqlite3_prepare_v2(st->db, "SELECT fp, used_ms FROM nick_owner WHERE fold = ?1", -1, &q,
			       NULL) == SQLITE_OK &&
	    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW && sqlite3_column_bytes(q, 0) == RD_TLS_FP_LEN &&
	    memcmp(sqlite3_column_blob(q, 0), fp, RD_TLS_FP_LEN) == 0) {
		uint64_t used = (uint64_t)sqlite3_column_int64(q, 1);

		yes = now_ms >= used && now_ms - used < USED_GRAIN_MS;
	}
	sqlite3_finalize(q);
	return yes;
}

/* End the transaction begun under st->mu: COMMIT when rc is 0, else ROLLBACK. rc, or
 * RD_ERR_SYSTEM when the commit failed. */
static int tx_end_locked(struct state *st, int rc)
{
	if (rc == 0 && sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	(void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return rc == 0 ? RD_ERR_SYSTEM : rc;
}

int state_nick_claim(struct state *st, const char *nick, const uint8_t *fp, uint64_t now_ms)
{
	uint8_t owner[RD_TLS_FP_LEN];
	sqlite3_stmt *q = NULL;
	char key[64];
	int own, rc = RD_ERR_SYSTEM;

	if (st->rs != NULL)
		return st->ro->nick_claim(st->rs, nick, fp, now_ms);

	fold(nick, key, sizeof(key));
	pthread_mutex_lock(&st->mu);
	/* its owner back within the hour: no write (a reconnecting client costs a read) */
	if (owner_used_recently_locked(st, key, fp, now_ms)) {
		rc = 0;
		goto unlock;
	}
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto unlock;
	own = owner_locked(st, key, now_ms, owner);
	if (own < 0)
		goto rollback;
	if (own == 1 && memcmp(owner, fp, RD_TLS_FP_LEN) != 0) {
		rc = RD_ERR_EXISTS;
		goto rollback;
	}
	if (sqlite3_prepare_v2(
		    st->db,
		    own == 1 ? "UPDATE nick_owner SET used_ms = ?3 WHERE fold = ?1" :
			       "INSERT INTO nick_owner (fold, nick, fp, claimed_ms, used_ms) "
			       "VALUES (?1, ?2, ?4, ?3, ?3)",
		    -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC) != SQLITE_OK ||
	    (own == 0 && sqlite3_bind_text(q, 2, nick, -1, SQLITE_STATIC) != SQLITE_OK) ||
	    sqlite3_bind_int64(q, 3, (sqlite3_int64)now_ms) != SQLITE_OK ||
	    (own == 0 && sqlite3_bind_blob(q, 4, fp, RD_TLS_FP_LEN, SQLITE_STATIC) != SQLITE_OK) ||
	    sqlite3_step(q) != SQLITE_DONE)
		goto rollback;
	rc = 0;
rollback:
	sqlite3_finalize(q);
	rc = tx_end_locked(st, rc);
unlock:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int state_nick_release(struct state *st, const char *nick)
{
	sqlite3_stmt *q = NULL;
	char key[64];
	int rc = RD_ERR_SYSTEM;

	if (st->rs != NULL)
		return st->ro->nick_release(st->rs, nick);

	fold(nick, key, sizeof(key));
	pthread_mutex_lock(&st->mu);
	if (sqlite3_prepare_v2(st->db, "DELETE FROM nick_owner WHERE fold = ?1", -1, &q, NULL) ==
		    SQLITE_OK &&
	    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_DONE)
		rc = sqlite3_changes(st->db) > 0 ? 0 : RD_ERR_NOT_FOUND;
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int state_nick_list(struct state *st, uint64_t now_ms, struct state_owner **out, size_t *n)
{
	sqlite3_stmt *q = NULL;
	struct state_owner *v = NULL, *nv;
	size_t k = 0;
	int rc = RD_ERR_SYSTEM, step;

	if (st->rs != NULL)
		return st->ro->nick_list(st->rs, out, n);

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&st->mu);
	if (sqlite3_prepare_v2(st->db,
			       "SELECT nick, fp, claimed_ms, used_ms FROM nick_owner "
			       "WHERE ?1 = 0 OR used_ms + ?1 >= ?2 ORDER BY fold",
			       -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_bind_int64(q, 1, (sqlite3_int64)st->expiry_ms) != SQLITE_OK ||
	    sqlite3_bind_int64(q, 2, (sqlite3_int64)now_ms) != SQLITE_OK)
		goto out;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		if ((nv = realloc(v, (k + 1) * sizeof(*v))) == NULL) {
			rc = RD_ERR_NOMEM;
			goto out;
		}
		v = nv;
		memset(&v[k], 0, sizeof(v[k]));
		const unsigned char *nick = sqlite3_column_text(q, 0);

		snprintf(v[k].nick, sizeof(v[k].nick), "%s", nick ? (const char *)nick : "");
		if (sqlite3_column_bytes(q, 1) == RD_TLS_FP_LEN)
			memcpy(v[k].fp, sqlite3_column_blob(q, 1), RD_TLS_FP_LEN);
		v[k].claimed_ms = (uint64_t)sqlite3_column_int64(q, 2);
		v[k].used_ms = (uint64_t)sqlite3_column_int64(q, 3);
		k++;
	}
	if (step == SQLITE_DONE) {
		rc = 0;
		*out = v;
		*n = k;
		v = NULL;
	}
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->mu);
	free(v);
	return rc;
}

int state_nick_owner(struct state *st, const char *nick, uint64_t now_ms, uint8_t fp[RD_TLS_FP_LEN])
{
	char key[64];
	int own;

	if (st->rs != NULL)
		return st->ro->nick_owner(st->rs, nick, fp);

	fold(nick, key, sizeof(key));
	pthread_mutex_lock(&st->mu);
	own = owner_locked(st, key, now_ms, fp);
	pthread_mutex_unlock(&st->mu);
	return own < 0 ? RD_ERR_SYSTEM : own == 0 ? RD_ERR_NOT_FOUND : 0;
}

int state_op_set(struct state *st, const char *room, const uint8_t fp[RD_TLS_FP_LEN], int grant,
		 uint64_t now_ms)
{
	sqlite3_stmt *q = NULL;
	char key[64];
	int rc = RD_ERR_SYSTEM;

	if (st->rs != NULL)
		return st->ro->op_set(st->rs, room, fp, grant);

	fold(room, key, sizeof(key));
	pthread_mutex_lock(&st->mu);
	if (sqlite3_prepare_v2(st->db,
			       grant ? "INSERT OR IGNORE INTO room_operator (room, fp, granted_ms) "
				       "VALUES (?1, ?2, ?3)" :
				       "DELETE FROM room_operator WHERE room = ?1 AND fp = ?2",
			       -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_bind_blob(q, 2, fp, RD_TLS_FP_LEN, SQLITE_STATIC) == SQLITE_OK &&
	    (!grant || sqlite3_bind_int64(q, 3, (sqlite3_int64)now_ms) == SQLITE_OK) &&
	    sqlite3_step(q) == SQLITE_DONE)
		rc = sqlite3_changes(st->db) > 0 ? 0 : grant ? RD_ERR_EXISTS : RD_ERR_NOT_FOUND;
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int state_op_is(struct state *st, const char *room, const uint8_t fp[RD_TLS_FP_LEN])
{
	sqlite3_stmt *q = NULL;
	char key[64];
	int is = 0;

	if (st->rs != NULL)
		return st->ro->op_is(st->rs, room, fp);

	fold(room, key, sizeof(key));
	pthread_mutex_lock(&st->mu);
	if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM room_operator WHERE room = ?1 AND fp = ?2",
			       -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_bind_blob(q, 2, fp, RD_TLS_FP_LEN, SQLITE_STATIC) == SQLITE_OK)
		is = sqlite3_step(q) == SQLITE_ROW;
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->mu);
	return is;
}

int state_op_list(struct state *st, struct state_op **out, size_t *n)
{
	sqlite3_stmt *q = NULL;
	struct state_op *v = NULL, *nv;
	size_t k = 0;
	int rc = RD_ERR_SYSTEM, step;

	if (st->rs != NULL)
		return st->ro->op_list(st->rs, out, n);

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&st->mu);
	if (sqlite3_prepare_v2(st->db, "SELECT room, fp FROM room_operator ORDER BY room, fp", -1,
			       &q, NULL) != SQLITE_OK)
		goto out;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		const unsigned char *room = sqlite3_column_text(q, 0);

		if ((nv = realloc(v, (k + 1) * sizeof(*v))) == NULL) {
			rc = RD_ERR_NOMEM;
			goto out;
		}
		v = nv;
		memset(&v[k], 0, sizeof(v[k]));
		snprintf(v[k].room, sizeof(v[k].room), "%s", room ? (const char *)room : "");
		if (sqlite3_column_bytes(q, 1) == RD_TLS_FP_LEN)
			memcpy(v[k].fp, sqlite3_column_blob(q, 1), RD_TLS_FP_LEN);
		k++;
	}
	if (step == SQLITE_DONE) {
		rc = 0;
		*out = v;
		*n = k;
		v = NULL;
	}
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->mu);
	free(v);
	return rc;
}

/* One statement with blob/int parameters, under st->mu (the caller's). SQLITE_DONE or ROW. */
static int key_set_locked(struct state *st, const uint8_t fp[RD_TLS_FP_LEN], int admit,
			  uint64_t now_ms)
{
	sqlite3_stmt *q = NULL;
	int rc = RD_ERR_SYSTEM;

	if (sqlite3_prepare_v2(st->db,
			       admit ? "INSERT OR IGNORE INTO admitted_key (fp, admitted_ms) "
				       "VALUES (?1, ?2)" :
				       "DELETE FROM admitted_key WHERE fp = ?1",
			       -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_bind_blob(q, 1, fp, RD_TLS_FP_LEN, SQLITE_STATIC) == SQLITE_OK &&
	    (!admit || sqlite3_bind_int64(q, 2, (sqlite3_int64)now_ms) == SQLITE_OK) &&
	    sqlite3_step(q) == SQLITE_DONE)
		rc = sqlite3_changes(st->db) > 0 ? 0 : admit ? RD_ERR_EXISTS : RD_ERR_NOT_FOUND;
	sqlite3_finalize(q);
	return rc;
}

int state_key_set(struct state *st, const uint8_t fp[RD_TLS_FP_LEN], int admit, uint64_t now_ms)
{
	int rc;

	if (st->rs != NULL)
		return st->ro->key_set(st->rs, fp, admit, now_ms);

	pthread_mutex_lock(&st->mu);
	rc = key_set_locked(st, fp, admit, now_ms);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int state_key_admitted(struct state *st, const uint8_t fp[RD_TLS_FP_LEN])
{
	sqlite3_stmt *q = NULL;
	int is = RD_ERR_SYSTEM;

	if (st->rs != NULL)
		return st->ro->key_admitted(st->rs, fp);

	pthread_mutex_lock(&st->mu);
	if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM admitted_key WHERE fp = ?1", -1, &q, NULL) ==
		    SQLITE_OK &&
	    sqlite3_bind_blob(q, 1, fp, RD_TLS_FP_LEN, SQLITE_STATIC) == SQLITE_OK) {
		int step = sqlite3_step(q);

		is = step == SQLITE_ROW ? 1 : step == SQLITE_DONE ? 0 : RD_ERR_SYSTEM;
	}
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->mu);
	return is;
}

int state_invite_new(struct state *st, unsigned uses, uint64_t expires_ms, uint64_t now_ms,
		     uint8_t secret[RD_INVITE_SECRET], char id[STATE_INVITE_ID_BUF])
{
	uint8_t hash[RD_SHA256_SIZE];
	char hex[2 * RD_SHA256_SIZE + 1];
	sqlite3_stmt *q = NULL;
	int rc = RD_ERR_SYSTEM;

	if (rd_random(secret, RD_INVITE_SECRET) != 0 ||
	    rd_sha256(secret, RD_INVITE_SECRET, hash) != 0)
		return RD_ERR_CRYPTO;
	rd_hex(hash, RD_SHA256_SIZE, hex);
	snprintf(id, STATE_INVITE_ID_BUF, "%.8s", hex);
	if (st->rs != NULL)
		return st->ro->invite_new(st->rs, hash, id, uses, expires_ms, now_ms);
	pthread_mutex_lock(&st->mu);
	if (sqlite3_prepare_v2(
		    st->db,
		    "INSERT INTO invitation (hash, id, uses_left, expires_ms, created_ms) "
		    "VALUES (?1, ?2, ?3, ?4, ?5)",
		    -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_bind_blob(q, 1, hash, RD_SHA256_SIZE, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_bind_int64(q, 3, uses ? uses : 1) == SQLITE_OK &&
	    sqlite3_bind_int64(q, 4, (sqlite3_int64)expires_ms) == SQLITE_OK &&
	    sqlite3_bind_int64(q, 5, (sqlite3_int64)now_ms) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_DONE)
		rc = 0;
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int state_invite_use(struct state *st, const uint8_t *secret, size_t n,
		     const uint8_t fp[RD_TLS_FP_LEN], uint64_t now_ms)
{
	uint8_t hash[RD_SHA256_SIZE];
	sqlite3_stmt *q = NULL;
	int rc = RD_ERR_SYSTEM, k;

	/* (looked up by its hash: no secret is compared byte by byte) */
	if (rd_sha256(secret, n, hash) != 0)
		return RD_ERR_SYSTEM;
	if (st->rs != NULL)
		return st->ro->invite_use(st->rs, hash, fp, now_ms);
	pthread_mutex_lock(&st->mu);
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto unlock;
	if (sqlite3_prepare_v2(st->db,
			       "UPDATE invitation SET uses_left = uses_left - 1 WHERE hash = ?1 "
			       "AND uses_left > 0 AND expires_ms > ?2",
			       -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_bind_blob(q, 1, hash, RD_SHA256_SIZE, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(q, 2, (sqlite3_int64)now_ms) != SQLITE_OK ||
	    sqlite3_step(q) != SQLITE_DONE)
		goto rollback;
	if (sqlite3_changes(st->db) == 0) {
		rc = RD_ERR_NOT_FOUND;
		goto rollback;
	}
	k = key_set_locked(st, fp, 1, now_ms);
	if (k != 0 && k != RD_ERR_EXISTS)
		goto rollback;
	rc = 0;
rollback:
	sqlite3_finalize(q);
	rc = tx_end_locked(st, rc);
unlock:
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int state_invite_revoke(struct state *st, const char *id)
{
	sqlite3_stmt *q = NULL;
	int rc = RD_ERR_SYSTEM;

	if (st->rs != NULL)
		return st->ro->invite_revoke(st->rs, id);

	pthread_mutex_lock(&st->mu);
	if (sqlite3_prepare_v2(st->db, "DELETE FROM invitation WHERE id = ?1", -1, &q, NULL) ==
		    SQLITE_OK &&
	    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_DONE)
		rc = sqlite3_changes(st->db) > 0 ? 0 : RD_ERR_NOT_FOUND;
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->mu);
	return rc;
}
