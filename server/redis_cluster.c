/* redis_cluster.c - cluster mode through Redis (hiredis): the registry, redirects,
 * cluster-wide nicknames and membership, and the bus that carries events between servers
 * (cluster.h; PROTOCOL.md section 15 says what lives in Redis).
 *
 * Design
 * ------
 * Thread "rd-cluster" (started by cluster_start, joined by cluster_free) owns the
 * registry connection `reg`: every CLUSTER_REFRESH_MS it writes this server's entry
 * (HSET + PEXPIRE CLUSTER_TTL_MS, SADD to the member set), every CLUSTER_NICK_REFRESH_MS
 * it re-asserts the nicknames this server holds, and it reads the registry back into
 * `peers`, the snapshot that route() answers from, in memory, on a client's thread.
 * When Redis does not answer it drops the connection, logs it once, and tries again on
 * the next tick; the snapshot then goes stale and route() stops redirecting once it is
 * older than CLUSTER_TTL_MS (the entries it holds may be gone by then). When a server
 * leaves the registry, this thread may be the one that reaps it (reap(): its clients'
 * departures announced, their room entries and nicknames cleared); when Redis answers
 * again after an outage it re-asserts this server's nicknames and members.
 *
 * Client threads claim and release nicknames over a second connection, `cmd`, one at a
 * time (cmd_mtx). Every hiredis call has a timeout (CLUSTER_REDIS_TIMEOUT_MS for the
 * connect and for each reply), so no thread ever waits on Redis longer than that.
 *
 * The bus (room messages, private messages, presence across servers): the core hands
 * each event to publish() on the client's thread, which encodes it into the queue `outq`
 * and returns; thread "rd-cl-pub" sends the queue in order, pipelined, with PUBLISH on
 * the cluster's one channel rd:NAME:bus over its own connection `pub`, so events of one
 * sender reach every server in the order they were made. Each message is tagged with
 * this server's id and a sequence number; thread "rd-cl-sub" reads the channel over
 * `sub` (SUBSCRIBE; it polls the socket so that it can stop), drops its own messages
 * and out-of-order duplicates, and injects the others with rd_server_deliver. While
 * Redis is away the queue holds at most CLUSTER_BUS_QUEUE_MAX events and
 * CLUSTER_BUS_QUEUE_BYTES bytes; later ones are dropped (counted and logged): those
 * clients' events reach their own server only.
 *
 * Locks (never held together, never across a Redis call except cmd_mtx, which exists to
 * serialise the use of `cmd`):
 *   cl->mtx      peers, npeers, read_mono, held nicknames, stop
 *   cl->cmd_mtx  the cmd connection
 *   cl->q_mtx    outq, nq, dropped, seq (and q_cv wakes the publisher)
 */
#include "cluster.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rd_err.h"
#include "rd_hash.h"
#include "rd_net.h"
#include "redis_relay.h"

#define ID_BYTES 8
#define ID_TEXT (2 * ID_BYTES + 1)
#define KEY_MAX (CLUSTER_NAME_MAX + RD_NICK_BUF + 32)
#define PENDING_MS (3 * CLUSTER_REFRESH_MS) /* a redirect counts against its target so long */
#define CLUSTER_BUS_QUEUE_MAX 65536u        /* events waiting for the publisher */
#define CLUSTER_BUS_QUEUE_BYTES (64u * 1024 * 1024) /* ...and their bytes */
#define BUS_HEAD_MAX (ID_TEXT + RD_NICK_BUF + RD_ROOM_BUF + 64)
#define MAX_ORIGINS 64 /* servers whose last sequence number the subscriber keeps */

/* Claim a nickname when it is free or already ours; 1 = ours now, 0 = another's. */
static const char claim_lua[] =
	"local v = redis.call('GET', KEYS[1]) "
	"if v == false or v == ARGV[1] then "
	"redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end return 0";
/* Delete a key only when it is ours. */
static const char release_lua[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
	"return 0";

struct peer {
	char id[ID_TEXT];
	char host[RD_HOST_MAX + 1];
	uint16_t port;
	uint8_t fp[RD_TLS_FP_LEN]; /* all zero: plaintext */
	unsigned clients, capacity;
	int master;
	unsigned pending;      /* redirects sent to it lately (not yet in its entry) */
	uint64_t pending_mono; /* when the last of them was sent */
};

struct cluster {
	char redis[RD_HOST_MAX + 1]; /* Unix socket path, or host */
	uint16_t redis_port;         /* 0 = Unix socket */
	char name[CLUSTER_NAME_MAX + 1];
	int master;
	unsigned redirect_above;
	char advertise[RD_HOST_MAX + 16]; /* as given, "" = the listen address */

	char id[ID_TEXT];
	char entry_key[KEY_MAX]; /* rd:NAME:server:ID */
	char set_key[KEY_MAX];   /* rd:NAME:servers */

	struct rd_server *srv;
	char host[RD_HOST_MAX + 1]; /* advertised */
	uint16_t port;
	char fp_hex[2 * RD_TLS_FP_LEN + 1]; /* "" when plaintext */
	unsigned capacity;

	pthread_mutex_t mtx;
	pthread_cond_t cv; /* rd_cond_init_mono: stop */
	int stop;
	struct peer *peers; /* the other live servers, as last read */
	size_t npeers;
	uint64_t read_mono; /* when peers was last read (0 = never) */
	int route_why; /* why the master last served a client past its threshold (0 = it did not) */
	char **nicks;  /* nicknames this server holds (lower case) */
	size_t nnicks, nickcap;

	pthread_mutex_t cmd_mtx;
	redisContext *cmd;

	redisContext *reg; /* the cluster thread's own */
	int reg_down_told; /* the thread said Redis is unreachable (and not yet that it is back) */
	uint64_t nicks_mono;
	pthread_t th;
	int started;

	/* the bus */
	char bus_key[KEY_MAX]; /* rd:NAME:bus */
	pthread_mutex_t q_mtx;
	pthread_cond_t q_cv;
	struct rd_buf *outq; /* encoded messages, in order */
	size_t nq, qcap, qbytes;
	uint64_t seq, dropped;
	int q_stop;
	pthread_t pub_th, sub_th;
	int pub_started, sub_started;
	redisContext *pub, *sub;
	struct {
		char id[ID_TEXT];
		uint64_t seq;
	} origins[MAX_ORIGINS]; /* subscriber thread only */
	unsigned norigins;

	struct relay *relay; /* offers' bytes between servers (redis_relay.c) */
};

int cluster_supported(void)
{
	return 1;
}

/* ---- small helpers -------------------------------------------------------------------- */

void cluster_post(struct cluster *cl, const char *fmt, ...)
{
	struct rd_event ev;
	va_list ap;

	if (cl->srv == NULL)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.kind = RD_EV_INFO;
	ev.time_ms = rd_now_wall_ms();
	va_start(ap, fmt);
	vsnprintf(ev.text, sizeof(ev.text), fmt, ap);
	va_end(ap);
	rd_server_post_event(cl->srv, &ev);
}

/* "rd:NAME:KIND:name" with name in lower case (names compare without case), or, with
 * kind NULL, the name alone in lower case. */
static void lower_key(const struct cluster *cl, const char *kind, const char *name, char *out,
		      size_t cap)
{
	size_t n = kind ? (size_t)snprintf(out, cap, "rd:%s:%s:", cl->name, kind) : 0;
	for (; *name && n + 1 < cap; name++)
		out[n++] = (char)(*name >= 'A' && *name <= 'Z' ? *name - 'A' + 'a' : *name);
	out[n < cap ? n : cap - 1] = '\0';
}

static void nick_key(const struct cluster *cl, const char *nick, char *out, size_t cap)
{
	lower_key(cl, "nick", nick, out, cap);
}

static void reassert_members(struct cluster *cl);
static void reap(struct cluster *cl, const struct peer *dead);

static int name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > CLUSTER_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
			return 0;
	return 1;
}

/* A connection to Redis with a timeout on the connect and on every reply. NULL on failure
 * (why says what happened). */
static redisContext *redis_open(const struct cluster *cl, char *why, size_t cap, int *rc)
{
	struct timeval tv = { CLUSTER_REDIS_TIMEOUT_MS / 1000,
			      (CLUSTER_REDIS_TIMEOUT_MS % 1000) * 1000 };
	redisContext *c;
	redisReply *r;

	*rc = 0;
	c = cl->redis_port ? redisConnectWithTimeout(cl->redis, cl->redis_port, tv) :
			     redisConnectUnixWithTimeout(cl->redis, tv);
	if (c == NULL) {
		snprintf(why, cap, "out of memory");
		*rc = RD_ERR_NOMEM;
		return NULL;
	}
	if (c->err == 0 && redisSetTimeout(c, tv) != REDIS_OK && c->err == 0)
		c->err = REDIS_ERR_IO;
	if (c->err == 0) {
		r = redisCommand(c, "PING");
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			snprintf(why, cap, "%s",
				 r            ? r->str :
				 c->errstr[0] ? c->errstr :
						"no answer to PING");
			freeReplyObject(r);
			redisFree(c);
			*rc = RD_ERR_PROTOCOL;
			return NULL;
		}
		freeReplyObject(r);
		return c;
	}
	snprintf(why, cap, "%s", c->errstr[0] ? c->errstr : "cannot connect");
	*rc = strstr(c->errstr, "refused")  ? RD_ERR_REFUSED :
	      strstr(c->errstr, "imed out") ? RD_ERR_TIMEOUT :
					      RD_ERR_SYSTEM;
	redisFree(c);
	return NULL;
}

redisContext *cluster_redis_connect(const struct cluster *cl, char *why, size_t cap, int *rc)
{
	return redis_open(cl, why, cap, rc);
}

const char *cluster_name(const struct cluster *cl)
{
	return cl->name;
}

/* ---- configuration ------------------------------------------------------------------- */

int cluster_new(const struct cluster_config *cfg, struct cluster **out, char *why, size_t cap)
{
	struct cluster *cl;
	uint8_t id[ID_BYTES];
	char err[256];
	int rc;

	*out = NULL;
	if ((cl = calloc(1, sizeof(*cl))) == NULL) {
		snprintf(why, cap, "out of memory");
		return RD_ERR_NOMEM;
	}
	if (cfg->redis == NULL || cfg->redis[0] == '\0') {
		snprintf(why, cap, "--redis needs a Unix socket path or HOST:PORT");
		rc = RD_ERR_INVAL;
		goto fail;
	}
	if (strchr(cfg->redis, '/')) {
		if (strlen(cfg->redis) > RD_HOST_MAX) {
			snprintf(why, cap, "--redis: the socket path is too long");
			rc = RD_ERR_INVAL;
			goto fail;
		}
		snprintf(cl->redis, sizeof(cl->redis), "%s", cfg->redis);
	} else if (rd_net_parse_hostport(cfg->redis, 6379, cl->redis, sizeof(cl->redis),
					 &cl->redis_port) != 0) {
		snprintf(why, cap, "--redis '%s': expected a Unix socket path or HOST:PORT",
			 cfg->redis);
		rc = RD_ERR_INVAL;
		goto fail;
	}
	if (!name_ok(cfg->name ? cfg->name : "")) {
		snprintf(why, cap, "--cluster '%s': use 1-%u letters, digits, '_', '.', '-'",
			 cfg->name ? cfg->name : "", CLUSTER_NAME_MAX);
		rc = RD_ERR_INVAL;
		goto fail;
	}
	snprintf(cl->name, sizeof(cl->name), "%s", cfg->name);
	cl->master = cfg->master;
	cl->redirect_above = cfg->redirect_above;
	if (cfg->advertise)
		snprintf(cl->advertise, sizeof(cl->advertise), "%s", cfg->advertise);
	if ((rc = rd_random(id, sizeof(id))) != 0) {
		snprintf(why, cap, "no random bytes for the server's id");
		goto fail;
	}
	rd_hex(id, sizeof(id), cl->id);
	snprintf(cl->entry_key, sizeof(cl->entry_key), "rd:%s:server:%s", cl->name, cl->id);
	snprintf(cl->set_key, sizeof(cl->set_key), "rd:%s:servers", cl->name);
	snprintf(cl->bus_key, sizeof(cl->bus_key), "rd:%s:bus", cl->name);
	pthread_mutex_init(&cl->q_mtx, NULL);
	rd_cond_init_mono(&cl->q_cv);
	pthread_mutex_init(&cl->mtx, NULL);
	pthread_mutex_init(&cl->cmd_mtx, NULL);
	rd_cond_init_mono(&cl->cv);
	if ((cl->relay = relay_new(cl, cl->name, cl->id)) == NULL) {
		snprintf(why, cap, "out of memory");
		rc = RD_ERR_NOMEM;
	} else if ((cl->cmd = redis_open(cl, err, sizeof(err), &rc)) == NULL) {
		relay_free(cl->relay);
		if (cl->redis_port)
			snprintf(why, cap, "cannot reach Redis at %s:%u: %s", cl->redis,
				 cl->redis_port, err);
		else
			snprintf(why, cap, "cannot reach Redis at %s: %s", cl->redis, err);
	}
	if (rc != 0) {
		pthread_mutex_destroy(&cl->mtx);
		pthread_mutex_destroy(&cl->cmd_mtx);
		pthread_cond_destroy(&cl->cv);
		pthread_mutex_destroy(&cl->q_mtx);
		pthread_cond_destroy(&cl->q_cv);
		goto fail;
	}
	*out = cl;
	return 0;
fail:
	free(cl);
	return rc;
}

/* ---- the registry --------------------------------------------------------------------- */

/* Write this server's entry (one round trip: MULTI/EXEC pipelined). 0 or -1. */
static int register_self(struct cluster *cl)
{
	struct rd_server_stats st;
	char addr[RD_HOST_MAX + 16], clients[16], capacity[16];
	redisReply *r;
	int ok = 1, i;

	rd_server_stats(cl->srv, &st);
	snprintf(addr, sizeof(addr), strchr(cl->host, ':') ? "[%s]:%u" : "%s:%u", cl->host,
		 cl->port);
	snprintf(clients, sizeof(clients), "%u", st.clients);
	snprintf(capacity, sizeof(capacity), "%u", cl->capacity);
	redisAppendCommand(cl->reg, "MULTI");
	redisAppendCommand(cl->reg, "HSET %s addr %s fp %s clients %s capacity %s role %s",
			   cl->entry_key, addr, cl->fp_hex, clients, capacity,
			   cl->master ? "master" : "secondary");
	redisAppendCommand(cl->reg, "PEXPIRE %s %u", cl->entry_key, CLUSTER_TTL_MS);
	redisAppendCommand(cl->reg, "SADD %s %s", cl->set_key, cl->id);
	redisAppendCommand(cl->reg, "EXEC");
	for (i = 0; i < 5; i++) {
		if (redisGetReply(cl->reg, (void **)&r) != REDIS_OK || r == NULL)
			return -1;
		if (r->type == REDIS_REPLY_ERROR)
			ok = 0;
		freeReplyObject(r);
	}
	return ok ? 0 : -1;
}

/* Re-assert every nickname this server holds (claim_lua: free or ours -> ours again). */
static int refresh_nicks(struct cluster *cl)
{
	char **v = NULL, key[KEY_MAX], ttl[16];
	size_t n, i;
	redisReply *r;
	int rc = 0;

	pthread_mutex_lock(&cl->mtx);
	n = cl->nnicks;
	if (n && (v = calloc(n, sizeof(*v))) != NULL)
		for (i = 0; i < n; i++)
			v[i] = strdup(cl->nicks[i]);
	pthread_mutex_unlock(&cl->mtx);
	if (n && v == NULL)
		return 0; /* next time */
	snprintf(ttl, sizeof(ttl), "%u", CLUSTER_NICK_TTL_MS);
	for (i = 0; i < n; i++) {
		nick_key(cl, v[i] ? v[i] : "", key, sizeof(key));
		redisAppendCommand(cl->reg, "EVAL %s 1 %s %s %s", claim_lua, key, cl->id, ttl);
	}
	for (i = 0; i < n; i++) {
		if (redisGetReply(cl->reg, (void **)&r) != REDIS_OK || r == NULL) {
			rc = -1;
			break;
		}
		if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
			cluster_post(cl, "cluster: another server holds the nickname %s too", v[i]);
		freeReplyObject(r);
	}
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return rc;
}

static const char *field(const redisReply *h, const char *name)
{
	if (h->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (size_t i = 0; i + 1 < h->elements; i += 2)
		if (h->element[i]->type == REDIS_REPLY_STRING &&
		    h->element[i + 1]->type == REDIS_REPLY_STRING &&
		    !strcmp(h->element[i]->str, name))
			return h->element[i + 1]->str;
	return NULL;
}

/* One entry into p: 0, or -1 when it is gone (expired) or unreadable. */
static int parse_entry(const redisReply *h, const char *id, struct peer *p)
{
	const char *addr = field(h, "addr"), *fp = field(h, "fp"), *cl = field(h, "clients"),
		   *cap = field(h, "capacity"), *role = field(h, "role");

	memset(p, 0, sizeof(*p));
	if (!addr || !cl || !cap || !role || strlen(id) >= sizeof(p->id))
		return -1;
	snprintf(p->id, sizeof(p->id), "%s", id);
	if (rd_net_parse_hostport(addr, 0, p->host, sizeof(p->host), &p->port) != 0 || p->port == 0)
		return -1;
	if (fp && fp[0] && rd_hex_parse(fp, p->fp, sizeof(p->fp)) != 0)
		return -1;
	p->clients = (unsigned)strtoul(cl, NULL, 10);
	p->capacity = (unsigned)strtoul(cap, NULL, 10);
	p->master = !strcmp(role, "master");
	return 0;
}

static struct peer *find_peer(struct peer *v, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].id, id))
			return &v[i];
	return NULL;
}

/* Read every live entry (but ours) into cl->peers; forget members whose entry expired. */
static int read_registry(struct cluster *cl)
{
	redisReply *set = NULL, *h;
	struct peer *v = NULL, *old, *pp;
	char addr[RD_HOST_MAX + 16];
	size_t n = 0, i, nold;
	int rc = -1;
	uint64_t now = rd_now_mono_ms();

	set = redisCommand(cl->reg, "SMEMBERS %s", cl->set_key);
	if (set == NULL || set->type != REDIS_REPLY_ARRAY)
		goto out;
	if (set->elements && (v = calloc(set->elements, sizeof(*v))) == NULL)
		goto out;
	for (i = 0; i < set->elements; i++) {
		const char *id =
			set->element[i]->type == REDIS_REPLY_STRING ? set->element[i]->str : "";
		redisAppendCommand(cl->reg, "HGETALL rd:%s:server:%s", cl->name, id);
	}
	for (i = 0; i < set->elements; i++) {
		const char *id =
			set->element[i]->type == REDIS_REPLY_STRING ? set->element[i]->str : "";
		if (redisGetReply(cl->reg, (void **)&h) != REDIS_OK || h == NULL)
			goto out;
		if (!strcmp(id, cl->id)) {
			freeReplyObject(h);
			continue;
		}
		if (parse_entry(h, id, &v[n]) == 0) {
			n++;
		} else if (h->type == REDIS_REPLY_ARRAY && h->elements == 0) {
			/* expired: its server stopped refreshing it */
			redisReply *d = redisCommand(cl->reg, "SREM %s %s", cl->set_key, id);
			freeReplyObject(d);
		}
		freeReplyObject(h);
	}
	pthread_mutex_lock(&cl->mtx);
	old = cl->peers;
	nold = cl->npeers;
	for (i = 0; i < n; i++)
		if ((pp = find_peer(old, nold, v[i].id)) != NULL &&
		    now - pp->pending_mono < PENDING_MS) {
			v[i].pending = pp->pending;
			v[i].pending_mono = pp->pending_mono;
		}
	cl->peers = v;
	cl->npeers = n;
	cl->read_mono = now;
	pthread_mutex_unlock(&cl->mtx);
	/* say who came and who went (only this thread changes peers) */
	for (i = 0; i < n; i++)
		if (!find_peer(old, nold, v[i].id))
			cluster_post(cl, "cluster %s: %s %s at %s:%u joined (%u/%u clients)",
				     cl->name, v[i].master ? "master" : "secondary", v[i].id,
				     v[i].host, v[i].port, v[i].clients, v[i].capacity);
	for (i = 0; i < nold; i++)
		if (!find_peer(v, n, old[i].id)) {
			cluster_post(cl, "cluster %s: %s %s at %s:%u left the registry", cl->name,
				     old[i].master ? "master" : "secondary", old[i].id, old[i].host,
				     old[i].port);
			reap(cl, &old[i]);
			snprintf(addr, sizeof(addr), "%s:%u", old[i].host, old[i].port);
			relay_peer_gone(cl->relay, old[i].id, addr);
		}
	free(old);
	v = NULL;
	rc = 0;
out:
	free(v);
	freeReplyObject(set);
	return rc;
}

#define DEGRADED_TEXT                                                                         \
	"the cluster is degraded (its shared state does not answer): you are served by this " \
	"server alone, new nicknames and redirects wait until it heals"
#define HEALED_TEXT "the cluster is whole again"

/* Tell this server's clients (only them: the other servers have their own view). */
static void tell_clients(struct cluster *cl, const char *text)
{
	struct rd_msg m;

	rd_msg_init(&m, RD_MSG_BROADCAST);
	m.u.broadcast.scope = RD_SCOPE_ALL;
	m.u.broadcast.time_ms = rd_now_wall_ms();
	m.u.broadcast.text = rd_str_c(text);
	(void)rd_server_deliver(cl->srv, &m, "", NULL);
}

/* Redis stopped answering: say it once, in the log and to this server's clients. */
static void went_down(struct cluster *cl, const char *what, const char *why)
{
	if (cl->reg_down_told)
		return;
	cluster_post(cl, "cluster %s: %s (%s); serving the clients here, trying again every %u ms",
		     cl->name, what, why, CLUSTER_REFRESH_MS);
	tell_clients(cl, DEGRADED_TEXT);
	cl->reg_down_told = 1;
}

static void *cluster_main(void *arg)
{
	struct cluster *cl = arg;
	char why[256];
	uint64_t next = rd_now_mono_ms(), dropped, dropped_told = 0;
	int rc, failed;

	pthread_setname_np(pthread_self(), "rd-cluster");
	for (;;) {
		pthread_mutex_lock(&cl->mtx);
		while (!cl->stop && rd_now_mono_ms() < next)
			rd_cond_wait_until(&cl->cv, &cl->mtx, next);
		if (cl->stop) {
			pthread_mutex_unlock(&cl->mtx);
			break;
		}
		pthread_mutex_unlock(&cl->mtx);
		next = rd_now_mono_ms() + CLUSTER_REFRESH_MS;
		pthread_mutex_lock(&cl->q_mtx);
		dropped = cl->dropped;
		pthread_mutex_unlock(&cl->q_mtx);
		if (dropped != dropped_told)
			cluster_post(
				cl,
				"cluster %s: %" PRIu64 " events so far could not be queued for the "
				"other servers (Redis away): they reached this server's clients only",
				cl->name, dropped);
		dropped_told = dropped;

		if (cl->reg == NULL && (cl->reg = redis_open(cl, why, sizeof(why), &rc)) == NULL) {
			went_down(cl, "Redis does not answer", why);
			continue;
		}
		failed = register_self(cl) != 0;
		if (!failed && rd_now_mono_ms() >= cl->nicks_mono) {
			failed = refresh_nicks(cl) != 0;
			cl->nicks_mono = rd_now_mono_ms() + CLUSTER_NICK_REFRESH_MS;
		}
		if (!failed)
			failed = read_registry(cl) != 0;
		if (failed) {
			went_down(cl, "lost Redis",
				  cl->reg->errstr[0] ? cl->reg->errstr : "bad reply");
			redisFree(cl->reg);
			cl->reg = NULL;
			continue;
		}
		if (cl->reg_down_told) {
			cluster_post(cl, "cluster %s: Redis answers again", cl->name);
			tell_clients(cl, HEALED_TEXT);
			cl->reg_down_told = 0;
			cl->nicks_mono = 0; /* re-assert the nicknames now */
			reassert_members(cl);
		}
	}
	return NULL;
}

/* ---- the core's hooks ---------------------------------------------------------------- */

static int route(void *user, unsigned others, struct rd_cluster_route *to)
{
	struct cluster *cl = user;
	struct peer *best = NULL;
	uint64_t now = rd_now_mono_ms(), age = 0;
	unsigned load = 0, best_load = 0, secondaries = 0;
	int why = 0, told;

	if (!cl->master || cl->redirect_above == 0 || others < cl->redirect_above)
		return 0;
	pthread_mutex_lock(&cl->mtx);
	/* a registry read older than an entry's life may list servers that are gone */
	if (cl->read_mono == 0 || now - cl->read_mono > CLUSTER_TTL_MS) {
		why = 1;
		age = cl->read_mono ? now - cl->read_mono : 0;
		goto out;
	}
	for (size_t i = 0; i < cl->npeers; i++) {
		struct peer *p = &cl->peers[i];
		if (p->master)
			continue;
		secondaries++;
		if (now - p->pending_mono >= PENDING_MS)
			p->pending = 0;
		load = p->clients + p->pending;
		if (p->capacity && load >= p->capacity)
			continue;
		if (best == NULL || load < best_load) {
			best = p;
			best_load = load;
		}
	}
	if (best) {
		best->pending++;
		best->pending_mono = now;
		snprintf(to->host, sizeof(to->host), "%s", best->host);
		to->port = best->port;
		to->temporary = 1;
		snprintf(to->reason, sizeof(to->reason),
			 "the master has %u clients: server %s has %u", others, best->id,
			 best_load);
		memcpy(to->fp, best->fp, sizeof(to->fp));
	} else {
		why = secondaries ? 3 : 2;
	}
out:
	told = cl->route_why;
	cl->route_why = why;
	pthread_mutex_unlock(&cl->mtx);
	/* the administrator hears once per change why clients past the threshold stay here */
	if (why == 1 && told != 1)
		cluster_post(cl,
			     "cluster %s: serving clients here past --redirect-above %u: the "
			     "registry was last read %" PRIu64 " ms ago (%s)",
			     cl->name, cl->redirect_above, age,
			     age ? "older than an entry's life" : "never");
	else if (why == 2 && told != 2)
		cluster_post(cl,
			     "cluster %s: serving clients here past --redirect-above %u: no live "
			     "secondary in the registry",
			     cl->name, cl->redirect_above);
	else if (why == 3 && told != 3)
		cluster_post(cl,
			     "cluster %s: serving clients here past --redirect-above %u: every "
			     "secondary is full",
			     cl->name, cl->redirect_above);
	return best != NULL;
}

/* One command on the cmd connection (reconnecting once if it was lost). cmd_mtx held. */
static redisReply *cmd_eval(struct cluster *cl, const char *script, const char *key,
			    const char *ttl)
{
	char why[256];
	redisReply *r;
	int rc;

	for (int attempt = 0; attempt < 2; attempt++) {
		if (cl->cmd == NULL && (cl->cmd = redis_open(cl, why, sizeof(why), &rc)) == NULL)
			return NULL;
		r = ttl ? redisCommand(cl->cmd, "EVAL %s 1 %s %s %s", script, key, cl->id, ttl) :
			  redisCommand(cl->cmd, "EVAL %s 1 %s %s", script, key, cl->id);
		if (r != NULL)
			return r;
		redisFree(cl->cmd); /* broken: a fresh connection, once */
		cl->cmd = NULL;
	}
	return NULL;
}

/* Note that this server holds nick: 0, 1 when it holds it already (another of its clients
 * claims it at the same moment), -1 out of memory. The claim in Redis ("free or this
 * server's") cannot tell two clients of one server apart: this list does. */
static int hold_nick(struct cluster *cl, const char *nick)
{
	char **v;

	pthread_mutex_lock(&cl->mtx);
	for (size_t i = 0; i < cl->nnicks; i++)
		if (!strcasecmp(cl->nicks[i], nick)) {
			pthread_mutex_unlock(&cl->mtx);
			return 1;
		}
	if (cl->nnicks == cl->nickcap) {
		size_t cap = cl->nickcap ? 2 * cl->nickcap : 16;
		if ((v = realloc(cl->nicks, cap * sizeof(*v))) == NULL) {
			pthread_mutex_unlock(&cl->mtx);
			return -1;
		}
		cl->nicks = v;
		cl->nickcap = cap;
	}
	if ((cl->nicks[cl->nnicks] = strdup(nick)) == NULL) {
		pthread_mutex_unlock(&cl->mtx);
		return -1;
	}
	cl->nnicks++;
	pthread_mutex_unlock(&cl->mtx);
	return 0;
}

static void drop_nick(struct cluster *cl, const char *nick)
{
	pthread_mutex_lock(&cl->mtx);
	for (size_t i = 0; i < cl->nnicks; i++)
		if (!strcasecmp(cl->nicks[i], nick)) {
			free(cl->nicks[i]);
			cl->nicks[i] = cl->nicks[--cl->nnicks];
			break;
		}
	pthread_mutex_unlock(&cl->mtx);
}

static uint16_t nick_claim(void *user, const char *nick, char *why, size_t cap)
{
	struct cluster *cl = user;
	char key[KEY_MAX], ttl[16];
	redisReply *r;
	uint16_t code;

	switch (hold_nick(cl, nick)) { /* first here, so two of our clients cannot both win */
	case 0:
		break;
	case 1:
		snprintf(why, cap, "that nickname is taken");
		return RD_E_NICK_TAKEN;
	default:
		return RD_E_INTERNAL;
	}
	nick_key(cl, nick, key, sizeof(key));
	snprintf(ttl, sizeof(ttl), "%u", CLUSTER_NICK_TTL_MS);
	pthread_mutex_lock(&cl->cmd_mtx);
	r = cmd_eval(cl, claim_lua, key, ttl);
	pthread_mutex_unlock(&cl->cmd_mtx);
	if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
		snprintf(why, cap,
			 "the cluster is degraded (its shared state does not answer): it cannot "
			 "check nicknames right now; try again in a moment");
		code = RD_E_CLUSTER_DEGRADED;
	} else if (r->integer == 1) {
		code = 0;
	} else {
		snprintf(why, cap, "that nickname is taken (on another server of the cluster)");
		code = RD_E_NICK_TAKEN;
	}
	if (code != 0)
		drop_nick(cl, nick);
	freeReplyObject(r);
	return code;
}

static void nick_release(void *user, const char *nick)
{
	struct cluster *cl = user;
	char key[KEY_MAX];
	redisReply *r;

	drop_nick(cl, nick);
	nick_key(cl, nick, key, sizeof(key));
	pthread_mutex_lock(&cl->cmd_mtx);
	r = cmd_eval(cl, release_lua, key, NULL);
	pthread_mutex_unlock(&cl->cmd_mtx);
	freeReplyObject(r); /* unanswered: the claim expires by itself */
}

/* ---- the bus ---------------------------------------------------------------------------
 * A bus message: one text line "ORIGIN SEQ TYPE SCOPE TARGET\n" (SCOPE r = the members
 * of room TARGET, a = everyone (TARGET -), u = the user TARGET), then the payload of the
 * message as PROTOCOL.md section 12 defines it. */

/* Queue items: 'P' then a bus message (PUBLISH it), or 'C' then a command's arguments,
 * each ended by a NUL (keys, names and numbers: none has a NUL of its own). */
#define ITEM_PUBLISH 'P'
#define ITEM_COMMAND 'C'
#define ITEM_MAX_ARGS 6

/* Room for one more item: q_mtx held. 0, or -1 (counted as dropped). */
static int queue_room(struct cluster *cl)
{
	if (cl->nq >= CLUSTER_BUS_QUEUE_MAX || cl->q_stop)
		return -1;
	if (cl->nq == cl->qcap) {
		size_t cap = cl->qcap ? 2 * cl->qcap : 64;
		struct rd_buf *v = realloc(cl->outq, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		cl->outq = v;
		cl->qcap = cap;
	}
	return 0;
}

/* Queue one Redis command (argc arguments) for the publisher thread, after every event
 * queued before it. */
static void enqueue_cmd(struct cluster *cl, int argc, const char *const *argv)
{
	struct rd_buf b;
	char kind = ITEM_COMMAND;
	int ok;

	rd_buf_init(&b, 0);
	ok = rd_buf_put(&b, &kind, 1) == 0;
	for (int i = 0; ok && i < argc; i++)
		ok = rd_buf_put(&b, argv[i], strlen(argv[i]) + 1) == 0;
	pthread_mutex_lock(&cl->q_mtx);
	if (!ok || queue_room(cl) != 0 || cl->qbytes + b.len > CLUSTER_BUS_QUEUE_BYTES) {
		cl->dropped++;
	} else {
		cl->qbytes += b.len;
		cl->outq[cl->nq++] = b;
		b.data = NULL;
		pthread_cond_signal(&cl->q_cv);
	}
	pthread_mutex_unlock(&cl->q_mtx);
	rd_buf_free(&b);
}

static void enqueue(struct cluster *cl, const struct rd_msg *m, char scope, const char *target)
{
	struct rd_buf b;
	char head[BUS_HEAD_MAX];
	int n;

	rd_buf_init(&b, 0);
	pthread_mutex_lock(&cl->q_mtx);
	if (queue_room(cl) != 0) {
		cl->dropped++;
		goto out;
	}
	n = snprintf(head, sizeof(head), "%c%s %" PRIu64 " %u %c %s\n", ITEM_PUBLISH, cl->id,
		     ++cl->seq, (unsigned)m->type, scope, target[0] ? target : "-");
	if (n < 0 || (size_t)n >= sizeof(head) || rd_buf_put(&b, head, (size_t)n) != 0 ||
	    rd_msg_encode(m, &b) != 0 || cl->qbytes + b.len > CLUSTER_BUS_QUEUE_BYTES) {
		cl->dropped++;
		goto out;
	}
	cl->qbytes += b.len;
	cl->outq[cl->nq++] = b;
	b.data = NULL;
	pthread_cond_signal(&cl->q_cv);
out:
	pthread_mutex_unlock(&cl->q_mtx);
	rd_buf_free(&b);
}

static void publish(void *user, const struct rd_msg *m, const char *scope)
{
	enqueue(user, m, scope[0] ? 'r' : 'a', scope);
}

/* 1 when another server holds the nickname `to` (its claim in Redis), else 0. */
static int held_elsewhere(struct cluster *cl, const char *to)
{
	char key[KEY_MAX];
	redisReply *r = NULL;
	int rc = 0;

	nick_key(cl, to, key, sizeof(key));
	pthread_mutex_lock(&cl->cmd_mtx);
	for (int attempt = 0; attempt < 2 && r == NULL; attempt++) {
		char why[256];
		int erc;
		if (cl->cmd == NULL && (cl->cmd = redis_open(cl, why, sizeof(why), &erc)) == NULL)
			break;
		if ((r = redisCommand(cl->cmd, "GET %s", key)) == NULL) {
			redisFree(cl->cmd);
			cl->cmd = NULL;
		}
	}
	pthread_mutex_unlock(&cl->cmd_mtx);
	rc = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, cl->id) != 0;
	freeReplyObject(r);
	return rc;
}

/* A private message, a broadcast to one user, a kick, or what an offer made here owes its
 * recipient: to the server that holds the nickname, if one does. */
static int tell(void *user, const struct rd_msg *m, const char *to)
{
	struct cluster *cl = user;

	if (!held_elsewhere(cl, to))
		return RD_ERR_NOT_FOUND;
	enqueue(cl, m, 'u', to);
	return 0;
}

static int holds(void *user, const char *nick)
{
	return held_elsewhere(user, nick);
}

/* A recipient's answer, listen or failure: to the server of the offerer `to` (scope 'o'). */
static int offer_home(void *user, const struct rd_msg *m, const char *to)
{
	struct cluster *cl = user;

	if (!held_elsewhere(cl, to))
		return RD_ERR_NOT_FOUND;
	enqueue(cl, m, 'o', to);
	return 0;
}

/* Wait ms (less when the bus stops). */
static void bus_pause(struct cluster *cl, uint64_t ms)
{
	uint64_t until = rd_now_mono_ms() + ms;

	pthread_mutex_lock(&cl->q_mtx);
	while (!cl->q_stop && rd_now_mono_ms() < until)
		rd_cond_wait_until(&cl->q_cv, &cl->q_mtx, until);
	pthread_mutex_unlock(&cl->q_mtx);
}

/* Thread "rd-cl-pub": PUBLISH the queue in order, pipelined. A batch that Redis did not
 * take is sent again once it answers (a subscriber drops what it has seen). */
static void *pub_main(void *arg)
{
	struct cluster *cl = arg;
	struct rd_buf *batch = NULL;
	size_t n = 0, i;
	char why[256];
	redisReply *r;
	int rc, ok;

	pthread_setname_np(pthread_self(), "rd-cl-pub");
	for (;;) {
		pthread_mutex_lock(&cl->q_mtx);
		while (n == 0 && cl->nq == 0 && !cl->q_stop)
			pthread_cond_wait(&cl->q_cv, &cl->q_mtx);
		if (n == 0 && cl->nq) {
			batch = cl->outq;
			n = cl->nq;
			cl->outq = NULL;
			cl->nq = cl->qcap = cl->qbytes = 0;
		}
		if (cl->q_stop && (n == 0 || cl->pub == NULL)) {
			pthread_mutex_unlock(&cl->q_mtx);
			break;
		}
		pthread_mutex_unlock(&cl->q_mtx);

		if (cl->pub == NULL && (cl->pub = redis_open(cl, why, sizeof(why), &rc)) == NULL) {
			/* try again shortly: the registry thread tells the log about Redis */
			bus_pause(cl, CLUSTER_REFRESH_MS);
			continue;
		}
		for (i = 0; i < n; i++) {
			const char *argv[ITEM_MAX_ARGS], *p = (const char *)batch[i].data + 1;
			const char *end = (const char *)batch[i].data + batch[i].len;
			size_t lens[ITEM_MAX_ARGS];
			int argc = 0;
			if (batch[i].data[0] == ITEM_PUBLISH) {
				argv[0] = "PUBLISH";
				argv[1] = cl->bus_key;
				argv[2] = p;
				lens[0] = 7;
				lens[1] = strlen(cl->bus_key);
				lens[2] = (size_t)(end - p);
				argc = 3;
			} else {
				while (p < end && argc < ITEM_MAX_ARGS) {
					argv[argc] = p;
					lens[argc] = strlen(p);
					p += lens[argc++] + 1;
				}
			}
			redisAppendCommandArgv(cl->pub, argc, argv, lens);
		}
		ok = 1;
		for (i = 0; i < n; i++) {
			if (redisGetReply(cl->pub, (void **)&r) != REDIS_OK || r == NULL) {
				ok = 0;
				break;
			}
			freeReplyObject(r);
		}
		if (!ok) {
			redisFree(cl->pub);
			cl->pub = NULL;
			continue; /* the same batch again */
		}
		for (i = 0; i < n; i++)
			rd_buf_free(&batch[i]);
		free(batch);
		batch = NULL;
		n = 0;
	}
	for (i = 0; i < n; i++)
		rd_buf_free(&batch[i]);
	free(batch);
	return NULL;
}

/* 1 when this message from origin was seen already (its sequence is not above the last). */
static int seen_before(struct cluster *cl, const char *origin, uint64_t seq)
{
	unsigned i;

	for (i = 0; i < cl->norigins; i++)
		if (!strcmp(cl->origins[i].id, origin))
			break;
	if (i == cl->norigins) {
		if (cl->norigins == MAX_ORIGINS)
			i = 0; /* forget one: at worst it is not checked for duplicates */
		else
			cl->norigins++;
		snprintf(cl->origins[i].id, sizeof(cl->origins[i].id), "%s", origin);
		cl->origins[i].seq = 0;
	}
	if (seq <= cl->origins[i].seq)
		return 1;
	cl->origins[i].seq = seq;
	return 0;
}

/* One message from the channel: decode, drop our own and repeats, deliver the others. */
static void bus_message(struct cluster *cl, const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n);
	char head[BUS_HEAD_MAX], origin[ID_TEXT], target[RD_HOST_MAX + 1], scope;
	unsigned type;
	uint64_t seq;
	struct rd_msg m;

	if (nl == NULL || (size_t)(nl - p) >= sizeof(head))
		return;
	memcpy(head, p, (size_t)(nl - p));
	head[nl - p] = '\0';
	if (sscanf(head, "%16s %" SCNu64 " %u %c %255s", origin, &seq, &type, &scope, target) != 5)
		return;
	if (!strcmp(origin, cl->id) || seen_before(cl, origin, seq))
		return;
	if (rd_msg_decode((uint16_t)type, (const uint8_t *)nl + 1, n - (size_t)(nl + 1 - p), &m) !=
	    0)
		return;
	if ((scope == 'a' && (m.type == RD_MSG_PRESENCE || m.type == RD_MSG_BROADCAST)) ||
	    (scope == 'r' && (m.type == RD_MSG_PRESENCE || m.type == RD_MSG_ROOM_MSG ||
			      m.type == RD_MSG_BROADCAST || m.type >= RD_TYPE_APP_FIRST)) ||
	    (scope == 'u' && (m.type == RD_MSG_PRIVATE_MSG || m.type == RD_MSG_BROADCAST ||
			      m.type == RD_MSG_KICKED || m.type == RD_MSG_OFFER_IN ||
			      m.type == RD_MSG_OFFER_RESULT || m.type == RD_MSG_OFFER_END ||
			      m.type == RD_MSG_P2P_INTRO || m.type == RD_MSG_P2P_FAILED)))
		(void)rd_server_deliver(cl->srv, &m, scope == 'a' ? "" : target, NULL);
	else if (scope == 'o')
		(void)rd_server_offer_home(cl->srv, &m, target);
	else if (scope == 'd' && m.type == RD_MSG_OFFER_DATA)
		relay_announced(cl->relay, origin, target, &m);
	rd_msg_clear(&m);
}

/* Thread "rd-cl-sub": SUBSCRIBE to the bus and deliver what comes. */
static void *sub_main(void *arg)
{
	struct cluster *cl = arg;
	char why[256];
	redisReply *r;
	int rc, stop;

	pthread_setname_np(pthread_self(), "rd-cl-sub");
	for (;;) {
		pthread_mutex_lock(&cl->q_mtx);
		stop = cl->q_stop;
		pthread_mutex_unlock(&cl->q_mtx);
		if (stop)
			break;
		if (cl->sub == NULL) {
			if ((cl->sub = redis_open(cl, why, sizeof(why), &rc)) == NULL ||
			    (r = redisCommand(cl->sub, "SUBSCRIBE %s", cl->bus_key)) == NULL) {
				if (cl->sub)
					redisFree(cl->sub);
				cl->sub = NULL;
				bus_pause(cl, CLUSTER_REFRESH_MS);
				continue;
			}
			freeReplyObject(r);
		}
		/* wait for bytes (bounded, to see stop), then take every whole reply */
		rc = rd_net_wait(cl->sub->fd, POLLIN, 200);
		if (rc == RD_ERR_TIMEOUT)
			continue;
		if (rc != 0 || redisBufferRead(cl->sub) != REDIS_OK) {
			redisFree(cl->sub);
			cl->sub = NULL;
			continue;
		}
		while (redisGetReplyFromReader(cl->sub, (void **)&r) == REDIS_OK && r) {
			if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
			    r->element[0]->type == REDIS_REPLY_STRING &&
			    !strcmp(r->element[0]->str, "message") &&
			    r->element[2]->type == REDIS_REPLY_STRING)
				bus_message(cl, r->element[2]->str, r->element[2]->len);
			freeReplyObject(r);
		}
	}
	return NULL;
}

/* ---- membership across servers --------------------------------------------------------
 * rd:NAME:room:ROOM   hash: nick (lower case) -> "SERVERID SINCE_MS Nick"
 * rd:NAME:members:ID  hash: nick (lower case) -> Room, what server ID has where (to
 *                     re-assert it, and to clear it when ID dies)
 * Written in order by the publisher thread; read by WHO and ROOMS, which count only the
 * entries of servers live in the registry as last read. */

static void member(void *user, const char *nick, const char *room, int joined, uint64_t since_ms)
{
	struct cluster *cl = user;
	char rkey[KEY_MAX], mkey[KEY_MAX], field[RD_NICK_BUF], value[ID_TEXT + RD_NICK_BUF + 32];

	lower_key(cl, "room", room, rkey, sizeof(rkey));
	snprintf(mkey, sizeof(mkey), "rd:%s:members:%s", cl->name, cl->id);
	lower_key(cl, NULL, nick, field, sizeof(field));
	if (joined) {
		snprintf(value, sizeof(value), "%s %" PRIu64 " %s", cl->id, since_ms, nick);
		enqueue_cmd(cl, 4, (const char *const[]){ "HSET", rkey, field, value });
		enqueue_cmd(cl, 4, (const char *const[]){ "HSET", mkey, field, room });
	} else {
		enqueue_cmd(cl, 3, (const char *const[]){ "HDEL", rkey, field });
		enqueue_cmd(cl, 3, (const char *const[]){ "HDEL", mkey, field });
	}
}

/* The server id, since and nickname of a room entry; 0, or -1 when it is not one. */
static int parse_member(const char *v, char id[ID_TEXT], uint64_t *since, char nick[RD_NICK_BUF])
{
	return sscanf(v, "%16s %" SCNu64 " %32s", id, since, nick) == 3 ? 0 : -1;
}

/* Is id another server, live in the registry as last read? cl->mtx held. */
static int live_other_locked(const struct cluster *cl, const char *id)
{
	uint64_t now = rd_now_mono_ms();

	if (!strcmp(id, cl->id) || cl->read_mono == 0 || now - cl->read_mono > CLUSTER_TTL_MS)
		return 0;
	for (size_t i = 0; i < cl->npeers; i++)
		if (!strcmp(cl->peers[i].id, id))
			return 1;
	return 0;
}

/* HGETALL / HVALS of one key on the cmd connection (reconnecting once). */
static redisReply *cmd_get(struct cluster *cl, const char *verb, const char *key)
{
	redisReply *r = NULL;
	char why[256];
	int rc;

	pthread_mutex_lock(&cl->cmd_mtx);
	for (int attempt = 0; attempt < 2 && r == NULL; attempt++) {
		if (cl->cmd == NULL && (cl->cmd = redis_open(cl, why, sizeof(why), &rc)) == NULL)
			break;
		if ((r = redisCommand(cl->cmd, "%s %s", verb, key)) == NULL) {
			redisFree(cl->cmd);
			cl->cmd = NULL;
		}
	}
	pthread_mutex_unlock(&cl->cmd_mtx);
	if (r && r->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(r);
		r = NULL;
	}
	return r;
}

static int who(void *user, const char *room, struct rd_who_entry **out, size_t *n)
{
	struct cluster *cl = user;
	char key[KEY_MAX], id[ID_TEXT];
	redisReply *r;
	struct rd_who_entry *v;
	uint64_t since;

	*out = NULL;
	*n = 0;
	lower_key(cl, "room", room, key, sizeof(key));
	if ((r = cmd_get(cl, "HVALS", key)) == NULL)
		return RD_ERR_STATE;
	if ((v = calloc(r->elements ? r->elements : 1, sizeof(*v))) == NULL) {
		freeReplyObject(r);
		return RD_ERR_NOMEM;
	}
	pthread_mutex_lock(&cl->mtx);
	for (size_t i = 0; i < r->elements; i++)
		if (r->element[i]->type == REDIS_REPLY_STRING &&
		    parse_member(r->element[i]->str, id, &since, v[*n].nick) == 0 &&
		    live_other_locked(cl, id))
			v[(*n)++].since_ms = since;
	pthread_mutex_unlock(&cl->mtx);
	freeReplyObject(r);
	*out = v;
	return 0;
}

static void room_counts(void *user, struct rd_room_entry *rooms, size_t n)
{
	struct cluster *cl = user;
	char key[KEY_MAX], id[ID_TEXT], nick[RD_NICK_BUF];
	uint64_t since;
	redisReply *r;

	for (size_t i = 0; i < n; i++) {
		lower_key(cl, "room", rooms[i].name, key, sizeof(key));
		if ((r = cmd_get(cl, "HVALS", key)) == NULL)
			return; /* Redis away: this server's counts */
		pthread_mutex_lock(&cl->mtx);
		for (size_t j = 0; j < r->elements; j++)
			if (r->element[j]->type == REDIS_REPLY_STRING &&
			    parse_member(r->element[j]->str, id, &since, nick) == 0 &&
			    live_other_locked(cl, id))
				rooms[i].members++;
		pthread_mutex_unlock(&cl->mtx);
		freeReplyObject(r);
	}
}

int cluster_clients(struct cluster *cl, struct rd_ctl_client **out, size_t *n)
{
	struct rd_room_entry *rooms = NULL;
	struct rd_ctl_client *v = NULL, *bigger;
	size_t nrooms = 0, cap = 0;
	char key[KEY_MAX], id[ID_TEXT];
	redisReply *r;
	uint64_t since;
	int rc = 0;

	*out = NULL;
	*n = 0;
	if ((rc = rd_server_rooms(cl->srv, &rooms, &nrooms)) != 0)
		return rc;
	for (size_t i = 0; i < nrooms && rc == 0; i++) {
		lower_key(cl, "room", rooms[i].name, key, sizeof(key));
		if ((r = cmd_get(cl, "HVALS", key)) == NULL) {
			rc = RD_ERR_STATE;
			break;
		}
		pthread_mutex_lock(&cl->mtx);
		for (size_t j = 0; j < r->elements; j++) {
			struct rd_ctl_client e;
			const struct peer *p = NULL;
			memset(&e, 0, sizeof(e));
			if (r->element[j]->type != REDIS_REPLY_STRING ||
			    parse_member(r->element[j]->str, id, &since, e.nick) != 0 ||
			    !live_other_locked(cl, id))
				continue;
			for (size_t k = 0; k < cl->npeers && !p; k++)
				if (!strcmp(cl->peers[k].id, id))
					p = &cl->peers[k];
			snprintf(e.room, sizeof(e.room), "%s", rooms[i].name);
			e.connected_ms = since;
			snprintf(e.server, sizeof(e.server),
				 strchr(p->host, ':') ? "[%s]:%u" : "%s:%u", p->host, p->port);
			if (*n == cap) {
				cap = cap ? 2 * cap : 16;
				if ((bigger = realloc(v, cap * sizeof(*v))) == NULL) {
					rc = RD_ERR_NOMEM;
					break;
				}
				v = bigger;
			}
			v[(*n)++] = e;
		}
		pthread_mutex_unlock(&cl->mtx);
		freeReplyObject(r);
	}
	free(rooms);
	if (rc != 0) {
		free(v);
		*n = 0;
		return rc;
	}
	*out = v;
	return 0;
}

/* Redis answers again (perhaps empty, after a restart): write this server's members. */
static void reassert_members(struct cluster *cl)
{
	struct rd_client_info *v = NULL;
	size_t n = 0;

	if (rd_server_clients(cl->srv, &v, &n) != 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (v[i].nick[0] && v[i].room[0])
			member(cl, v[i].nick, v[i].room, 1, v[i].connected_ms);
	free(v);
}

/* A server left the registry without a word (killed, or cut off from Redis): one server
 * (the first to take rd:NAME:reap:ID) announces its clients' departure everywhere, clears
 * their room entries and frees their nicknames. Registry thread, on `reg`. */
static void reap(struct cluster *cl, const struct peer *dead)
{
	char key[KEY_MAX], mkey[KEY_MAX], rkey[KEY_MAX], reason[96], id[ID_TEXT], nick[RD_NICK_BUF];
	redisReply *r, *m, *e;
	struct rd_msg msg;
	uint64_t since;
	unsigned gone = 0;

	snprintf(key, sizeof(key), "rd:%s:reap:%s", cl->name, dead->id);
	r = redisCommand(cl->reg, "SET %s %s NX PX 60000", key, cl->id);
	if (r == NULL || r->type != REDIS_REPLY_STATUS) {
		freeReplyObject(r);
		return; /* another server does it (or Redis is away: the next one will) */
	}
	freeReplyObject(r);
	snprintf(mkey, sizeof(mkey), "rd:%s:members:%s", cl->name, dead->id);
	if ((m = redisCommand(cl->reg, "HGETALL %s", mkey)) == NULL)
		return;
	snprintf(reason, sizeof(reason), "its server %s:%u stopped answering", dead->host,
		 dead->port);
	for (size_t i = 0; m->type == REDIS_REPLY_ARRAY && i + 1 < m->elements; i += 2) {
		const char *field = m->element[i]->str, *room = m->element[i + 1]->str;
		if (m->element[i]->type != REDIS_REPLY_STRING ||
		    m->element[i + 1]->type != REDIS_REPLY_STRING)
			continue;
		lower_key(cl, "room", room, rkey, sizeof(rkey));
		e = redisCommand(cl->reg, "HGET %s %s", rkey, field);
		snprintf(nick, sizeof(nick), "%s", field);
		if (e && e->type == REDIS_REPLY_STRING &&
		    parse_member(e->str, id, &since, nick) == 0 && !strcmp(id, dead->id)) {
			freeReplyObject(redisCommand(cl->reg, "HDEL %s %s", rkey, field));
		}
		freeReplyObject(e);
		nick_key(cl, field, key, sizeof(key));
		freeReplyObject(
			redisCommand(cl->reg, "EVAL %s 1 %s %s", release_lua, key, dead->id));
		/* everyone hears it, here too (our own bus messages are not delivered back) */
		rd_msg_init(&msg, RD_MSG_PRESENCE);
		msg.u.presence.event = RD_PRESENCE_DISCONNECTED;
		snprintf(msg.u.presence.nick, sizeof(msg.u.presence.nick), "%s", nick);
		snprintf(msg.u.presence.room, sizeof(msg.u.presence.room), "%s", room);
		msg.u.presence.time_ms = rd_now_wall_ms();
		msg.u.presence.reason = rd_str_c(reason);
		(void)rd_server_deliver(cl->srv, &msg, "", NULL);
		enqueue(cl, &msg, 'a', "");
		gone++;
	}
	freeReplyObject(m);
	freeReplyObject(redisCommand(cl->reg, "DEL %s", mkey));
	if (gone)
		cluster_post(cl, "cluster %s: announced the departure of the %u client%s of %s:%u",
			     cl->name, gone, gone == 1 ? "" : "s", dead->host, dead->port);
}

static int relay_hook(void *user, uint32_t offer_id, const char *from, const char *to,
		      const void *frame, size_t n, int last, int (*keep_going)(void *arg),
		      void *arg, char *why, size_t cap)
{
	return relay_push(((struct cluster *)user)->relay, offer_id, from, to, frame, n, last,
			  keep_going, arg, why, cap);
}

static void relay_close_hook(void *user, uint32_t offer_id)
{
	relay_close(((struct cluster *)user)->relay, offer_id);
}

/* ---- for redis_relay.c (redis_relay.h) ---- */

int cluster_peer_live(struct cluster *cl, const char *id, char *addr, size_t cap)
{
	const struct peer *p;
	int live;

	pthread_mutex_lock(&cl->mtx);
	p = find_peer(cl->peers, cl->npeers, id);
	live = p != NULL;
	snprintf(addr, cap, p && strchr(p->host, ':') ? "[%s]:%u" : "%s:%u", p ? p->host : "",
		 p ? p->port : 0);
	if (!p)
		addr[0] = '\0';
	pthread_mutex_unlock(&cl->mtx);
	return live;
}

void cluster_bus_send(struct cluster *cl, const struct rd_msg *m, char scope, const char *target)
{
	enqueue(cl, m, scope, target);
}

void cluster_ops(struct cluster *cl, struct rd_cluster_ops *ops)
{
	memset(ops, 0, sizeof(*ops));
	ops->user = cl;
	ops->route = route;
	ops->nick_claim = nick_claim;
	ops->nick_release = nick_release;
	ops->publish = publish;
	ops->tell = tell;
	ops->member = member;
	ops->who = who;
	ops->room_counts = room_counts;
	ops->holds = holds;
	ops->offer_home = offer_home;
	ops->relay = relay_hook;
	ops->relay_close = relay_close_hook;
}

/* ---- start and stop ------------------------------------------------------------------- */

int cluster_start(struct cluster *cl, struct rd_server *srv, const char *listen_host, uint16_t port,
		  const uint8_t *fp, unsigned capacity, char *why, size_t cap)
{
	cl->srv = srv;
	relay_set_server(cl->relay, srv);
	cl->capacity = capacity;
	if (cl->advertise[0]) {
		if (rd_net_parse_hostport(cl->advertise, port, cl->host, sizeof(cl->host),
					  &cl->port) != 0 ||
		    cl->port == 0) {
			snprintf(why, cap, "--advertise '%s': expected HOST:PORT", cl->advertise);
			return RD_ERR_INVAL;
		}
	} else {
		if (!strcmp(listen_host, "0.0.0.0") || !strcmp(listen_host, "::")) {
			snprintf(why, cap,
				 "listening on every address (%s): say with --advertise HOST:PORT "
				 "where clients should connect",
				 listen_host);
			return RD_ERR_INVAL;
		}
		snprintf(cl->host, sizeof(cl->host), "%s", listen_host);
		cl->port = port;
	}
	if (fp)
		rd_hex(fp, RD_TLS_FP_LEN, cl->fp_hex);
	if (pthread_create(&cl->th, NULL, cluster_main, cl) != 0) {
		snprintf(why, cap, "cannot start the cluster thread: %s", strerror(errno));
		return RD_ERR_SYSTEM;
	}
	cl->started = 1;
	if (pthread_create(&cl->pub_th, NULL, pub_main, cl) != 0) {
		snprintf(why, cap, "cannot start the cluster's publisher: %s", strerror(errno));
		return RD_ERR_SYSTEM;
	}
	cl->pub_started = 1;
	if (pthread_create(&cl->sub_th, NULL, sub_main, cl) != 0) {
		snprintf(why, cap, "cannot start the cluster's subscriber: %s", strerror(errno));
		return RD_ERR_SYSTEM;
	}
	cl->sub_started = 1;
	cluster_post(cl, "cluster %s: this %s is %s, advertised at %s:%u%s", cl->name,
		     cl->master ? "master" : "secondary", cl->id, cl->host, cl->port,
		     cl->master && cl->redirect_above ? " (redirects past the clients below)" : "");
	if (cl->master && cl->redirect_above)
		cluster_post(cl,
			     "cluster %s: new clients go to a secondary while this server has %u",
			     cl->name, cl->redirect_above);
	return 0;
}

void cluster_free(struct cluster *cl)
{
	char key[KEY_MAX];
	redisReply *r;

	if (cl == NULL)
		return;
	if (cl->started) {
		pthread_mutex_lock(&cl->mtx);
		cl->stop = 1;
		pthread_cond_signal(&cl->cv);
		pthread_mutex_unlock(&cl->mtx);
		pthread_join(cl->th, NULL);
	}
	/* the publisher sends what is queued (the departures of this server's clients) */
	pthread_mutex_lock(&cl->q_mtx);
	cl->q_stop = 1;
	pthread_cond_broadcast(&cl->q_cv);
	pthread_mutex_unlock(&cl->q_mtx);
	if (cl->pub_started)
		pthread_join(cl->pub_th, NULL);
	if (cl->sub_started)
		pthread_join(cl->sub_th, NULL);
	relay_free(cl->relay); /* (after the threads that call it) */
	if (cl->pub)
		redisFree(cl->pub);
	if (cl->sub)
		redisFree(cl->sub);
	for (size_t i = 0; i < cl->nq; i++)
		rd_buf_free(&cl->outq[i]);
	free(cl->outq);
	if (cl->dropped)
		fprintf(stderr,
			"roomdrop-server: cluster: %" PRIu64 " events could not reach the "
			"other servers (Redis away)\n",
			cl->dropped);
	/* leave the registry at once rather than when the entry expires */
	if (cl->cmd) {
		r = redisCommand(cl->cmd, "DEL %s", cl->entry_key);
		freeReplyObject(r);
		r = redisCommand(cl->cmd, "SREM %s %s", cl->set_key, cl->id);
		freeReplyObject(r);
		r = redisCommand(cl->cmd, "DEL rd:%s:members:%s", cl->name, cl->id);
		freeReplyObject(r);
		for (size_t i = 0; i < cl->nnicks && cl->cmd && !cl->cmd->err; i++) {
			nick_key(cl, cl->nicks[i], key, sizeof(key));
			r = redisCommand(cl->cmd, "EVAL %s 1 %s %s", release_lua, key, cl->id);
			freeReplyObject(r);
		}
		redisFree(cl->cmd);
	}
	if (cl->reg)
		redisFree(cl->reg);
	for (size_t i = 0; i < cl->nnicks; i++)
		free(cl->nicks[i]);
	free(cl->nicks);
	free(cl->peers);
	pthread_mutex_destroy(&cl->mtx);
	pthread_mutex_destroy(&cl->cmd_mtx);
	pthread_cond_destroy(&cl->cv);
	pthread_mutex_destroy(&cl->q_mtx);
	pthread_cond_destroy(&cl->q_cv);
	free(cl);
}
