/* redis_relay.c - an offer's relayed bytes between two servers of a cluster, through Redis
 * (redis_relay.h; PROTOCOL.md 15.8 says what a peer sees, 15.2 what lives in Redis).
 *
 * Design
 * ------
 * Redis is the bus: no server talks to another. For offer ID made on server A to a client
 * NICK of server B, A pushes each frame that the recipient must get (OFFER_DATA as A would
 * queue it to a recipient of its own, then OFFER_END and the final OFFER_RESULT) onto the
 * list rd:NAME:relay:A:ID:NICK (RPUSH + PEXPIRE RELAY_KEY_TTL_MS; NICK in lower case), and B
 * pops it (BLPOP) and queues each frame in the recipient's bulk class, then pushes a token
 * onto rd:NAME:relay:A:ID:NICK:ack (trimmed to RELAY_WINDOW tokens, same expiry). A relay is
 * one (offer, recipient): a room offer with accepting members on other servers has one
 * relay per such member, each with its own window, failure and end, exactly as its own
 * offer to one user would (its bytes cross Redis once per remote member).
 *
 * Flow control: the list's length is the window. After its RPUSH, A's pushing thread (the
 * offerer's reader, through the core's relay hook) waits while the list holds RELAY_WINDOW
 * frames or more: BLPOP on the ack list (1 s at most), then LLEN again, so at most
 * RELAY_WINDOW frames (each at most one OFFER_DATA, 256 KiB of data) of an offer are in
 * Redis, one in B's hands, and the recipient's bulk queue holds what it holds for a
 * recipient on its own server (its high watermark): a slow recipient slows the offerer,
 * through two servers, and nothing grows. The ack tokens only wake A; LLEN is the truth.
 *
 * Starting: A's first frame of an offer announces the relay on the bus (scope 'd', an
 * OFFER_DATA whose data is the offerer's nickname, to the recipient); B starts a consumer
 * thread ("rd-cl-relay", its own connection) for it unless one runs, after checking that
 * the recipient waits for that offer (rd_server_relay_in with no frame). One thread per
 * relay on B, so that a stalled recipient stalls its own relay only. A window that stays
 * full for RELAY_ANNOUNCE_MS is announced again (a lost announcement: pub/sub keeps
 * nothing; B ignores a second one while its consumer runs).
 *
 * Ending: the consumer stops after the final OFFER_RESULT, or when the recipient no longer
 * waits for the offer (it left, or the offer was cancelled: the core forgot it), and deletes
 * both lists. On A, relay_close (the core: the offer left its table) frees the sender.
 * Failures: a server that leaves the registry (relay_peer_gone, from the registry thread)
 * fails the relays to it (on A the recipient counts as gone: OFFER_ANSWERED(GONE) and
 * OFFER_RESULT(PEER_GONE) to the offerer, through rd_server_offer_home) and from it (on B
 * the recipient gets OFFER_RESULT(PEER_GONE)); a Redis call that fails on A fails the offer
 * at once (a frame sent again could arrive twice); a consumer whose Redis stays away for
 * RELAY_STALL_MS tells its recipient OFFER_RESULT(FAILED). Keys left by a crash expire.
 *
 * Threads and locks: senders are used by the offerer's reader thread (one push at a time
 * per offer: `busy`), closed by any thread; consumers are started by the subscriber thread,
 * joined by the next announcement or by relay_free. r->mtx guards the two lists, their
 * flags and `stop`; it is never held across a Redis call or a call into the core.
 */
#include "redis_relay.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster.h"
#include "rd_err.h"
#include "rd_net.h"

#define ID_TEXT 17
#define KEY_MAX (CLUSTER_NAME_MAX + 64)
#define RELAY_CONN_TIMEOUT_MS 3000 /* a relay's connection: above BLPOP's 1 s */
#define CLOSED_RING 64u

struct sender {
	struct sender *next;
	uint32_t id;
	char from[RD_NICK_BUF], to[RD_NICK_BUF];
	char dest[ID_TEXT];               /* the recipient's server, "" until known */
	char dest_addr[RD_HOST_MAX + 16]; /* ...and where it was, as the registry said */
	redisContext *c;                  /* used by the pushing thread only */
	int busy;                         /* a push runs: the record stays */
	int closed;                       /* the relay failed (why): every push fails */
	int released;                     /* relay_close came: freed once not busy */
	char why[RD_REASON_MAX + 1];
};

struct consumer {
	struct consumer *next;
	struct relay *r;
	char origin[ID_TEXT];
	uint32_t id;
	char to[RD_NICK_BUF], from[RD_NICK_BUF];
	pthread_t th;
	int finished;    /* the thread returned: join it */
	int origin_gone; /* its server left the registry (why) */
	char why[RD_REASON_MAX + 1];
};

struct relay {
	struct cluster *cl;
	struct rd_server *srv;
	char name[CLUSTER_NAME_MAX + 1];
	char id[ID_TEXT];
	pthread_mutex_t mtx;
	pthread_cond_t cv; /* rd_cond_init_mono: stop */
	int stop;
	struct sender *senders;
	struct consumer *consumers;
	unsigned nconsumers;
	uint32_t closed_ids[CLOSED_RING]; /* offers whose relay is over (a late push fails) */
	unsigned nclosed;
};

struct relay *relay_new(struct cluster *cl, const char *name, const char *id)
{
	struct relay *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->cl = cl;
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->id, sizeof(r->id), "%s", id);
	pthread_mutex_init(&r->mtx, NULL);
	rd_cond_init_mono(&r->cv);
	return r;
}

void relay_set_server(struct relay *r, struct rd_server *srv)
{
	r->srv = srv;
}

/* The keys of the relay of offer id (made on server origin) to the client `to`. */
static void relay_keys(const struct relay *r, const char *origin, uint32_t id, const char *to,
		       char *data, char *ack)
{
	char low[RD_NICK_BUF];
	size_t i;

	for (i = 0; to[i] && i + 1 < sizeof(low); i++)
		low[i] = (char)(to[i] >= 'A' && to[i] <= 'Z' ? to[i] - 'A' + 'a' : to[i]);
	low[i] = '\0';
	snprintf(data, KEY_MAX, "rd:%s:relay:%s:%" PRIu32 ":%s", r->name, origin, id, low);
	snprintf(ack, KEY_MAX, "rd:%s:relay:%s:%" PRIu32 ":%s:ack", r->name, origin, id, low);
}

/* A connection for a relay: a longer reply timeout than the cluster's (a BLPOP waits 1 s). */
static redisContext *relay_open(struct relay *r, char *why, size_t cap)
{
	struct timeval tv = { RELAY_CONN_TIMEOUT_MS / 1000, (RELAY_CONN_TIMEOUT_MS % 1000) * 1000 };
	int rc;
	redisContext *c = cluster_redis_connect(r->cl, why, cap, &rc);

	if (c != NULL && redisSetTimeout(c, tv) != REDIS_OK) {
		snprintf(why, cap, "cannot set a timeout");
		redisFree(c);
		c = NULL;
	}
	return c;
}

/* What went wrong on c, for a user: hiredis says "Resource temporarily unavailable" for a
 * reply that did not come in time. */
static const char *redis_why(const redisContext *c, const redisReply *rep)
{
	if (c->err == REDIS_ERR_IO && strstr(c->errstr, "temporarily unavailable"))
		return "no answer within 3 s";
	if (c->errstr[0])
		return c->errstr;
	return rep && rep->type == REDIS_REPLY_ERROR && rep->str ? rep->str : "bad reply";
}

/* Wait ms, less when the relay stops. */
static void relay_pause(struct relay *r, uint64_t ms)
{
	uint64_t until = rd_now_mono_ms() + ms;

	pthread_mutex_lock(&r->mtx);
	while (!r->stop && rd_now_mono_ms() < until)
		rd_cond_wait_until(&r->cv, &r->mtx, until);
	pthread_mutex_unlock(&r->mtx);
}

/* ---- the offerer's side ------------------------------------------------------------------ */

static int closed_recently_locked(const struct relay *r, uint32_t id)
{
	unsigned n = r->nclosed < CLOSED_RING ? r->nclosed : CLOSED_RING;

	for (unsigned i = 0; i < n; i++)
		if (r->closed_ids[i] == id)
			return 1;
	return 0;
}

static struct sender *find_sender_locked(const struct relay *r, uint32_t id, const char *to)
{
	for (struct sender *s = r->senders; s; s = s->next)
		if (s->id == id && !strcasecmp(s->to, to))
			return s;
	return NULL;
}

static void unlink_sender_locked(struct relay *r, const struct sender *s)
{
	for (struct sender **pp = &r->senders; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			return;
		}
}

static void free_sender(struct sender *s)
{
	if (s->c)
		redisFree(s->c);
	free(s);
}

/* Tell the recipient's server that this relay runs (the bus, scope 'd'). */
static void announce(struct relay *r, const struct sender *s)
{
	struct rd_msg m;

	rd_msg_init(&m, RD_MSG_OFFER_DATA);
	m.u.offer_data.offer_id = s->id;
	m.u.offer_data.data.p = (const uint8_t *)s->from;
	m.u.offer_data.data.n = strlen(s->from);
	cluster_bus_send(r->cl, &m, 'd', s->to);
}

/* The recipient's server, from its nickname's claim; announces the relay there. 0, or an
 * error with why filled. */
static int find_dest(struct relay *r, struct sender *s, char *why, size_t cap)
{
	char key[KEY_MAX + RD_NICK_BUF];
	size_t n = (size_t)snprintf(key, sizeof(key), "rd:%s:nick:", r->name);
	redisReply *rep;
	int rc = 0;

	for (const char *p = s->to; *p && n + 1 < sizeof(key); p++)
		key[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	key[n] = '\0';
	if ((rep = redisCommand(s->c, "GET %s", key)) == NULL) {
		snprintf(why, cap, "the cluster's Redis failed during the relay: %s",
			 redis_why(s->c, NULL));
		return RD_ERR_PROTOCOL;
	}
	if (rep->type != REDIS_REPLY_STRING || rep->len >= ID_TEXT || !strcmp(rep->str, r->id)) {
		snprintf(why, cap, "%s is no longer connected to the cluster", s->to);
		rc = RD_ERR_CLOSED;
	} else {
		snprintf(s->dest, sizeof(s->dest), "%s", rep->str);
		(void)cluster_peer_live(r->cl, s->dest, s->dest_addr, sizeof(s->dest_addr));
		announce(r, s);
	}
	freeReplyObject(rep);
	return rc;
}

/* The recipient's server (at addr) is gone: for the offer's server, its recipient left
 * (OFFER_ANSWERED(GONE) and OFFER_RESULT(PEER_GONE) to the offerer, the offer removed,
 * relay_close). No lock held. */
static void recipient_gone(struct relay *r, uint32_t id, const char *from, const char *to,
			   const char *addr)
{
	char why[RD_REASON_MAX + 1];
	struct rd_msg m;

	snprintf(why, sizeof(why), "disconnected: its server %.120s stopped answering", addr);
	rd_msg_init(&m, RD_MSG_OFFER_ANSWERED);
	m.u.offer_answered.offer_id = id;
	snprintf(m.u.offer_answered.peer, sizeof(m.u.offer_answered.peer), "%s", to);
	m.u.offer_answered.answer = RD_ANSWER_GONE;
	m.u.offer_answered.reason = rd_str_c(why);
	if (rd_server_offer_home(r->srv, &m, from) == 0)
		cluster_post(r->cl,
			     "offer %" PRIu32
			     " from %s: the relay to %s failed: its server %s stopped "
			     "answering",
			     id, from, to, addr);
}

/* s's relay fails because its recipient's server is gone (addr), once; 1 when this call
 * did it (then call recipient_gone). r->mtx held. */
static int sender_dest_gone_locked(struct sender *s, const char *addr)
{
	if (s->closed || s->released)
		return 0;
	s->closed = 1;
	snprintf(s->why, sizeof(s->why), "%s's server %.120s stopped answering", s->to, addr);
	return 1;
}

/* 0 while the relay may go on; else an error with why filled. */
static int sender_check(struct relay *r, struct sender *s, int (*keep_going)(void *), void *arg,
			char *why, size_t cap)
{
	char addr[RD_HOST_MAX + 16];
	int rc = 0, gone = 0;

	if (!keep_going(arg)) {
		snprintf(why, cap, "the offerer or this server is going");
		return RD_ERR_CANCELLED;
	}
	pthread_mutex_lock(&r->mtx);
	if (s->closed || s->released) {
		snprintf(why, cap, "%s", s->why[0] ? s->why : "the relay is over");
		rc = RD_ERR_CLOSED;
	}
	pthread_mutex_unlock(&r->mtx);
	if (rc == 0 && !cluster_peer_live(r->cl, s->dest, addr, sizeof(addr))) {
		/* (the registry thread may be about to say so too: the first one does it) */
		snprintf(addr, sizeof(addr), "%s", s->dest_addr[0] ? s->dest_addr : s->dest);
		pthread_mutex_lock(&r->mtx);
		gone = sender_dest_gone_locked(s, addr);
		snprintf(why, cap, "%s", s->why);
		pthread_mutex_unlock(&r->mtx);
		if (gone)
			recipient_gone(r, s->id, s->from, s->to, addr);
		rc = RD_ERR_CLOSED;
	}
	return rc;
}

/* One frame onto the offer's list; then, unless last, wait while the window is full. */
static int push_frame(struct relay *r, struct sender *s, const void *frame, size_t n, int last,
		      int (*keep_going)(void *), void *arg, char *why, size_t cap)
{
	char data[KEY_MAX], ack[KEY_MAX];
	redisReply *rep = NULL, *exp = NULL;
	long long len = 0, prev;
	uint64_t progress_mono, announced_mono;
	int rc = 0;

	relay_keys(r, r->id, s->id, s->to, data, ack);
	if (s->c == NULL && (s->c = relay_open(r, why, cap)) == NULL) {
		char e[200];
		snprintf(e, sizeof(e), "%s", why);
		snprintf(why, cap, "the cluster's Redis does not answer: %s", e);
		return RD_ERR_PROTOCOL;
	}
	if (s->dest[0] == '\0' && (rc = find_dest(r, s, why, cap)) != 0)
		goto fail;
	redisAppendCommand(s->c, "RPUSH %s %b", data, frame, n);
	redisAppendCommand(s->c, "PEXPIRE %s %u", data, RELAY_KEY_TTL_MS);
	if (redisGetReply(s->c, (void **)&rep) != REDIS_OK || rep == NULL ||
	    redisGetReply(s->c, (void **)&exp) != REDIS_OK || exp == NULL ||
	    rep->type != REDIS_REPLY_INTEGER) {
		snprintf(why, cap, "the cluster's Redis failed during the relay: %s",
			 redis_why(s->c, rep));
		rc = RD_ERR_PROTOCOL;
		goto fail;
	}
	len = rep->integer;
	freeReplyObject(rep);
	freeReplyObject(exp);
	rep = exp = NULL;
	prev = len;
	progress_mono = announced_mono = rd_now_mono_ms();
	while (!last && len >= (long long)RELAY_WINDOW) {
		uint64_t now;

		if ((rc = sender_check(r, s, keep_going, arg, why, cap)) != 0)
			return rc;
		rep = redisCommand(s->c, "BLPOP %s 1", ack);
		if (rep != NULL) {
			freeReplyObject(rep);
			rep = redisCommand(s->c, "LLEN %s", data);
		}
		if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
			snprintf(why, cap, "the cluster's Redis failed during the relay: %s",
				 redis_why(s->c, rep));
			rc = RD_ERR_PROTOCOL;
			goto fail;
		}
		len = rep->integer;
		freeReplyObject(rep);
		rep = NULL;
		now = rd_now_mono_ms();
		if (len < prev) {
			progress_mono = now;
		} else if (now - progress_mono >= RELAY_ANNOUNCE_MS &&
			   now - announced_mono >= RELAY_ANNOUNCE_MS) {
			announce(r, s); /* (the first may have been lost) */
			announced_mono = now;
		}
		prev = len;
	}
	return 0;
fail:
	freeReplyObject(rep);
	freeReplyObject(exp);
	if (rc == RD_ERR_PROTOCOL) { /* the connection is in an unknown state */
		redisFree(s->c);
		s->c = NULL;
	}
	return rc;
}

int relay_push(struct relay *r, uint32_t offer_id, const char *from, const char *to,
	       const void *frame, size_t n, int last, int (*keep_going)(void *arg), void *arg,
	       char *why, size_t cap)
{
	struct sender *s;
	int rc, drop = 0;

	pthread_mutex_lock(&r->mtx);
	if (closed_recently_locked(r, offer_id)) {
		pthread_mutex_unlock(&r->mtx);
		snprintf(why, cap, "offer %" PRIu32 ": its relay is over", offer_id);
		return RD_ERR_CLOSED;
	}
	if ((s = find_sender_locked(r, offer_id, to)) == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL) {
			pthread_mutex_unlock(&r->mtx);
			snprintf(why, cap, "out of memory");
			return RD_ERR_NOMEM;
		}
		s->id = offer_id;
		snprintf(s->from, sizeof(s->from), "%s", from);
		snprintf(s->to, sizeof(s->to), "%s", to);
		s->next = r->senders;
		r->senders = s;
	}
	if (s->closed) {
		snprintf(why, cap, "%s", s->why);
		pthread_mutex_unlock(&r->mtx);
		return RD_ERR_CLOSED;
	}
	s->busy = 1;
	pthread_mutex_unlock(&r->mtx);

	rc = push_frame(r, s, frame, n, last, keep_going, arg, why, cap);

	pthread_mutex_lock(&r->mtx);
	s->busy = 0;
	if (rc != 0 && !s->closed) { /* every later push fails the same way */
		s->closed = 1;
		snprintf(s->why, sizeof(s->why), "%s", why);
	}
	if (s->released) {
		unlink_sender_locked(r, s);
		drop = 1;
	}
	pthread_mutex_unlock(&r->mtx);
	if (drop)
		free_sender(s);
	return rc;
}

void relay_close(struct relay *r, uint32_t offer_id)
{
	struct sender *drop = NULL;

	pthread_mutex_lock(&r->mtx);
	r->closed_ids[r->nclosed++ % CLOSED_RING] = offer_id;
	for (struct sender **pp = &r->senders; *pp;) { /* (one per recipient of a room offer) */
		struct sender *s = *pp;
		if (s->id != offer_id) {
			pp = &s->next;
			continue;
		}
		s->released = 1;
		if (s->busy) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		s->next = drop;
		drop = s;
	}
	pthread_mutex_unlock(&r->mtx);
	while (drop) {
		struct sender *s = drop;
		drop = s->next;
		free_sender(s);
	}
}

/* ---- the recipient's side ----------------------------------------------------------------- */

/* The offer ends for our recipient (outcome, reason): its server says so. */
static void tell_recipient(struct relay *r, const struct consumer *k, uint8_t outcome,
			   const char *reason)
{
	struct rd_msg m;

	rd_msg_init(&m, RD_MSG_OFFER_RESULT);
	m.u.offer_result.offer_id = k->id;
	m.u.offer_result.outcome = outcome;
	snprintf(m.u.offer_result.peer, sizeof(m.u.offer_result.peer), "%s", k->from);
	m.u.offer_result.reason = rd_str_c(reason);
	(void)rd_server_deliver(r->srv, &m, k->to, NULL);
	cluster_post(r->cl, "offer %" PRIu32 " from %s to %s (relayed from another server): %s",
		     k->id, k->from, k->to, reason);
}

/* Took a frame: a token for the offerer's server (it only wakes it). */
static int ack(redisContext *c, const char *key)
{
	redisReply *rep;
	int ok = 1;

	redisAppendCommand(c, "RPUSH %s 1", key);
	redisAppendCommand(c, "LTRIM %s -%u -1", key, RELAY_WINDOW);
	redisAppendCommand(c, "PEXPIRE %s %u", key, RELAY_KEY_TTL_MS);
	for (int i = 0; i < 3; i++) {
		if (redisGetReply(c, (void **)&rep) != REDIS_OK || rep == NULL) {
			ok = 0;
			break;
		}
		freeReplyObject(rep);
	}
	return ok ? 0 : -1;
}

/* Thread "rd-cl-relay": pop one relay's frames into its recipient's bulk class. */
static void *consume_main(void *arg)
{
	struct consumer *k = arg;
	struct relay *r = k->r;
	char data[KEY_MAX], ackkey[KEY_MAX], why[RD_REASON_MAX + 1];
	redisContext *c = NULL;
	uint64_t down_mono = 0;
	int stop, gone, last = 0, rc;

	pthread_setname_np(pthread_self(), "rd-cl-relay");
	relay_keys(r, k->origin, k->id, k->to, data, ackkey);
	for (;;) {
		redisReply *rep;

		pthread_mutex_lock(&r->mtx);
		stop = r->stop;
		gone = k->origin_gone;
		snprintf(why, sizeof(why), "%s", k->why);
		pthread_mutex_unlock(&r->mtx);
		if (stop)
			break;
		if (gone) {
			tell_recipient(r, k, RD_OFFER_PEER_GONE, why);
			break;
		}
		if (down_mono && rd_now_mono_ms() - down_mono >= RELAY_STALL_MS) {
			snprintf(why, sizeof(why),
				 "the relay from %s's server broke: the cluster's Redis does not "
				 "answer",
				 k->from);
			tell_recipient(r, k, RD_OFFER_FAILED, why);
			break;
		}
		if (c == NULL && (c = relay_open(r, why, sizeof(why))) == NULL) {
			if (!down_mono)
				down_mono = rd_now_mono_ms();
			relay_pause(r, CLUSTER_REFRESH_MS);
			continue;
		}
		if ((rep = redisCommand(c, "BLPOP %s 1", data)) == NULL) {
			redisFree(c);
			c = NULL;
			if (!down_mono)
				down_mono = rd_now_mono_ms();
			continue;
		}
		down_mono = 0;
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
		    rep->element[1]->type == REDIS_REPLY_STRING) {
			rc = rd_server_relay_in(r->srv, k->to, k->id, rep->element[1]->str,
						rep->element[1]->len, &last);
			freeReplyObject(rep);
			if (rc != 0 && rc != RD_ERR_MALFORMED)
				break; /* the recipient no longer waits for it, or is gone */
			if (ack(c, ackkey) != 0) {
				redisFree(c);
				c = NULL;
			}
			if (last)
				break;
			continue;
		}
		freeReplyObject(rep); /* nothing for 1 s: still wanted? */
		if (rd_server_relay_in(r->srv, k->to, k->id, NULL, 0, &last) != 0)
			break;
	}
	if (c != NULL) {
		freeReplyObject(redisCommand(c, "DEL %s %s", data, ackkey));
		redisFree(c);
	}
	pthread_mutex_lock(&r->mtx);
	k->finished = 1;
	pthread_mutex_unlock(&r->mtx);
	return NULL;
}

/* Unlink the consumers whose thread returned, into *done (r->mtx held). */
static void reap_locked(struct relay *r, struct consumer **done)
{
	for (struct consumer **pp = &r->consumers; *pp;) {
		struct consumer *k = *pp;
		if (!k->finished) {
			pp = &k->next;
			continue;
		}
		*pp = k->next;
		r->nconsumers--;
		k->next = *done;
		*done = k;
	}
}

static void join_all(struct consumer *v)
{
	while (v) {
		struct consumer *k = v;
		v = k->next;
		pthread_join(k->th, NULL);
		free(k);
	}
}

void relay_announced(struct relay *r, const char *origin, const char *to, const struct rd_msg *m)
{
	const struct rd_msg_offer_data *d = &m->u.offer_data;
	struct consumer *k = NULL, *done = NULL;
	int last, busy = 0, full = 0;

	if (r->srv == NULL || d->data.n == 0 || d->data.n >= RD_NICK_BUF ||
	    memchr(d->data.p, '\0', d->data.n) || strlen(origin) >= ID_TEXT)
		return;
	/* (the recipient must wait for that offer: the core noted its OFFER_IN) */
	if (rd_server_relay_in(r->srv, to, d->offer_id, NULL, 0, &last) != 0)
		return;
	pthread_mutex_lock(&r->mtx);
	reap_locked(r, &done);
	for (struct consumer *p = r->consumers; p && !busy; p = p->next)
		busy = p->id == d->offer_id && !strcmp(p->origin, origin) && !strcasecmp(p->to, to);
	full = r->nconsumers >= RELAY_CONSUMERS_MAX;
	if (!busy && !full && !r->stop && (k = calloc(1, sizeof(*k))) != NULL) {
		k->r = r;
		k->id = d->offer_id;
		snprintf(k->origin, sizeof(k->origin), "%s", origin);
		snprintf(k->to, sizeof(k->to), "%s", to);
		memcpy(k->from, d->data.p, d->data.n);
		if (pthread_create(&k->th, NULL, consume_main, k) == 0) {
			k->next = r->consumers;
			r->consumers = k;
			r->nconsumers++;
		} else {
			free(k);
			k = NULL;
		}
	}
	pthread_mutex_unlock(&r->mtx);
	join_all(done);
	if (full)
		cluster_post(r->cl,
			     "offer %" PRIu32
			     " to %s: %u relays already come into this server; it waits",
			     d->offer_id, to, RELAY_CONSUMERS_MAX);
	else if (k != NULL)
		cluster_post(r->cl,
			     "offer %" PRIu32 " from %.*s to %s: relayed from another server",
			     k->id, (int)d->data.n, (const char *)d->data.p, to);
}

void relay_peer_gone(struct relay *r, const char *id, const char *addr)
{
	struct gone {
		uint32_t id;
		char from[RD_NICK_BUF], to[RD_NICK_BUF];
	} *v = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&r->mtx);
	for (struct sender *s = r->senders; s; s = s->next) {
		if (strcmp(s->dest, id) != 0 || s->closed || s->released)
			continue;
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 4;
			struct gone *p = realloc(v, ncap * sizeof(*p));
			if (p == NULL)
				continue; /* (its pusher finds the server gone on its own) */
			v = p;
			cap = ncap;
		}
		(void)sender_dest_gone_locked(s, addr);
		v[n].id = s->id;
		snprintf(v[n].from, sizeof(v[n].from), "%s", s->from);
		snprintf(v[n].to, sizeof(v[n].to), "%s", s->to);
		n++;
	}
	for (struct consumer *k = r->consumers; k; k = k->next)
		if (!strcmp(k->origin, id)) {
			k->origin_gone = 1;
			snprintf(k->why, sizeof(k->why),
				 "disconnected: its server %.120s stopped answering", addr);
		}
	pthread_mutex_unlock(&r->mtx);
	for (size_t i = 0; i < n; i++)
		recipient_gone(r, v[i].id, v[i].from, v[i].to, addr);
	free(v);
}

void relay_free(struct relay *r)
{
	struct consumer *all;

	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mtx);
	r->stop = 1;
	pthread_cond_broadcast(&r->cv);
	all = r->consumers;
	r->consumers = NULL;
	pthread_mutex_unlock(&r->mtx);
	join_all(all);
	while (r->senders) {
		struct sender *s = r->senders;
		r->senders = s->next;
		free_sender(s);
	}
	pthread_mutex_destroy(&r->mtx);
	pthread_cond_destroy(&r->cv);
	free(r);
}
