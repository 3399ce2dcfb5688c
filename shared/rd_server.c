/* rd_server.c - the room core, server side.
 *
 * Design
 * ------
 * Threads: one acceptor ("rd-accept"), one reader per connection ("rd-c<id>", detached,
 * counted in s->live), N flushers ("rd-flush<i>") that own all socket writes of queued
 * output, one timer ("rd-timer") for heartbeats and deadlines.
 *
 * Output path: any thread queues a frame to a client with client_enqueue(): it appends the
 * bytes to c->q under c->out_mtx (never blocking, never doing I/O) and, if the client was
 * idle, puts it on its flusher's ready list. A flusher swaps c->q with its private c->w and
 * writes c->w with one non-blocking send(): everything queued meanwhile goes out in one
 * write (coalescing). On EAGAIN it arms EPOLLOUT and moves on, so a stalled reader never
 * stalls anyone else; a client whose queue would pass out_limit is disconnected.
 *
 * Lifetime: struct rd_client is reference counted. The client table holds one reference,
 * the reader thread one, every ready-list entry and armed epoll registration one, and
 * fan-out holds one per member while it sends. The socket is closed by the last unref,
 * so no thread ever writes to a reused descriptor.
 *
 * Locks and what they guard (lock order: clients_mtx -> rooms_mtx -> c->mtx -> c->out_mtx
 * -> flusher->mtx; never the other way, never across a socket call or disk write):
 *   s->clients_mtx  the connection list, nicknames, registration, s->nclients
 *   s->rooms_mtx    room membership, both directions (room->members and c->room)
 *   c->mtx          the client's timers, activity text, last-message time, departure
 *   c->out_mtx      c->q, c->out_state, c->direct*, c->dead (c->w belongs to the flusher
 *                   while out_state != OUT_IDLE)
 *   f->mtx          a flusher's ready list
 *   s->live_mtx     the count of reader threads (rd_server_stop waits on it)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
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
#include "rd_names.h"
#include "rd_net.h"
#include "rd_server.h"

#define OUT_IDLE 0
#define OUT_SCHEDULED 1
#define OUT_WAITING 2

#define KEEP_BUF_MAX (64u * 1024u)  /* a flushing buffer larger than this is freed when drained */
#define CLOSE_GRACE_MS 2000u        /* after a polite close, force it after this long */
#define IDLE_TRIM_MS 2000            /* a reader idle this long releases its buffer */
#define EVENT_MSG_EVERY_MS 1000u     /* at most one RD_EV_MESSAGE per client per second */
#define COALESCE_MIN_BATCH 32        /* a flusher batch this large means a big fan-out... */
#define COALESCE_US 5000L            /* ...so it waits this long before the next batch */

struct flusher;

struct rd_room {
	char name[RD_ROOM_BUF];
	struct rd_client **members;
	size_t n, cap;
};

struct rd_client {
	uint32_t id;
	int fd;
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

	/* c->out_mtx */
	pthread_mutex_t out_mtx;
	pthread_cond_t out_cv;
	struct rd_buf q;
	int out_state;
	int direct_wanted, direct;
	int dead;
	int close_after_flush;
	atomic_size_t queued;

	struct rd_buf w; /* flusher-owned */
	int ep_added;    /* flusher-owned: fd registered in the flusher's epoll */

	atomic_uint_fast64_t bytes_in, bytes_out;
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

	int reserve_fd;      /* kept open to answer a connection at the descriptor limit */
	int fd_limit_logged; /* accept thread only: the limit was logged for this episode */

	atomic_uint_fast64_t bytes_in, bytes_out;
};

/* ---- small helpers ---------------------------------------------------------------------- */

static const char *const default_rooms[] = {"general", "random"};

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;
	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

static void client_ref(struct rd_client *c) { atomic_fetch_add(&c->refs, 1); }

static void client_unref(struct rd_client *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	if (c->ep_added)
		epoll_ctl(c->fl->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->fd >= 0)
		close(c->fd);
	rd_buf_free(&c->q);
	rd_buf_free(&c->w);
	pthread_mutex_destroy(&c->mtx);
	pthread_mutex_destroy(&c->out_mtx);
	pthread_cond_destroy(&c->out_cv);
	free(c);
}

static void emit(struct rd_server *s, enum rd_event_kind kind, struct rd_client *c,
		 const char *room, const char *text)
{
	struct rd_event ev;
	if (!s->hooks.on_event)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.time_ms = rd_now_wall_ms();
	if (c) {
		ev.client_id = c->id;
		copy_str(ev.ip, sizeof(ev.ip), c->ip);
		ev.port = c->port;
		if (c->registered)
			copy_str(ev.nick, sizeof(ev.nick), c->nick);
	}
	copy_str(ev.room, sizeof(ev.room), room);
	copy_str(ev.text, sizeof(ev.text), text);
	s->hooks.on_event(s, &ev, s->hooks.user);
}

/* ---- flushers -------------------------------------------------------------------------- */

/* Append clients (each already marked OUT_SCHEDULED and holding a reference for the list)
 * to a flusher's ready list under one lock. Returns 1 when the caller must wake the
 * flusher. If the list cannot grow, the clients are dropped rather than left unflushed. */
static int push_ready(struct flusher *f, struct rd_client *const *v, size_t n)
{
	int wake;
	pthread_mutex_lock(&f->mtx);
	if (f->n + n > f->cap) {
		size_t ncap = f->cap ? f->cap * 2 : 64;
		while (ncap < f->n + n)
			ncap *= 2;
		struct rd_client **p = realloc(f->ready, ncap * sizeof(*p));
		if (!p) {
			pthread_mutex_unlock(&f->mtx);
			for (size_t i = 0; i < n; i++) {
				pthread_mutex_lock(&v[i]->out_mtx);
				v[i]->out_state = OUT_IDLE;
				v[i]->dead = 1;
				pthread_mutex_unlock(&v[i]->out_mtx);
				shutdown(v[i]->fd, SHUT_RDWR);
				/* never the last reference: the caller holds one */
				atomic_fetch_sub(&v[i]->refs, 1);
			}
			return 0;
		}
		f->ready = p;
		f->cap = ncap;
	}
	memcpy(f->ready + f->n, v, n * sizeof(*v));
	f->n += n;
	wake = f->sleeping && f->n == n;
	pthread_mutex_unlock(&f->mtx);
	return wake;
}

/* Mark c scheduled and take the ready list's reference; c->out_mtx held. The caller then
 * pushes it (push_ready) after unlocking. */
static void mark_scheduled_locked(struct rd_client *c)
{
	c->out_state = OUT_SCHEDULED;
	client_ref(c);
}

static void wake_flusher(struct flusher *f)
{
	uint64_t one = 1;
	ssize_t r;
	do
		r = write(f->evfd, &one, sizeof(one));
	while (r < 0 && errno == EINTR);
}

/* Schedule one client now (c->out_mtx not held). */
static void schedule(struct rd_client *c)
{
	if (push_ready(c->fl, &c, 1))
		wake_flusher(c->fl);
}

static void buf_release(struct rd_buf *b)
{
	if (b->cap > KEEP_BUF_MAX)
		rd_buf_free(b);
	else
		rd_buf_reset(b);
}

/* Close a connection for good: no more output, the reader thread wakes up. */
static void client_kill(struct rd_client *c, const char *reason)
{
	pthread_mutex_lock(&c->mtx);
	if (reason && !c->reason[0])
		copy_str(c->reason, sizeof(c->reason), reason);
	pthread_mutex_unlock(&c->mtx);
	pthread_mutex_lock(&c->out_mtx);
	c->dead = 1;
	pthread_cond_broadcast(&c->out_cv);
	pthread_mutex_unlock(&c->out_mtx);
	shutdown(c->fd, SHUT_RDWR);
}

/* Write what c has queued; the flusher's only per-client routine. */
static void flush_client(struct rd_client *c)
{
	struct rd_server *s = c->srv;
	for (;;) {
		pthread_mutex_lock(&c->out_mtx);
		if (c->dead) {
			c->out_state = OUT_IDLE;
			rd_buf_free(&c->w);
			pthread_cond_broadcast(&c->out_cv);
			pthread_mutex_unlock(&c->out_mtx);
			return;
		}
		if (rd_buf_avail(&c->w) == 0) {
			if (rd_buf_avail(&c->q) == 0 || c->direct_wanted) {
				int half_close = c->close_after_flush && rd_buf_avail(&c->q) == 0;
				c->out_state = OUT_IDLE;
				/* an idle client keeps no output memory */
				rd_buf_free(&c->w);
				if (rd_buf_avail(&c->q) == 0)
					rd_buf_free(&c->q);
				pthread_cond_broadcast(&c->out_cv);
				pthread_mutex_unlock(&c->out_mtx);
				if (half_close)
					shutdown(c->fd, SHUT_WR);
				return;
			}
			struct rd_buf t = c->w;
			c->w = c->q;
			c->q = t;
			rd_buf_reset(&c->q);
		}
		pthread_mutex_unlock(&c->out_mtx);

		size_t n = rd_buf_avail(&c->w);
		ssize_t r = send(c->fd, rd_buf_rptr(&c->w), n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r > 0) {
			c->w.rpos += (size_t)r;
			atomic_fetch_sub(&c->queued, (size_t)r);
			atomic_fetch_add(&c->bytes_out, (uint64_t)r);
			atomic_fetch_add(&s->bytes_out, (uint64_t)r);
			if (rd_buf_avail(&c->w) == 0)
				buf_release(&c->w);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT, .data.ptr = c};
			pthread_mutex_lock(&c->out_mtx);
			c->out_state = OUT_WAITING;
			pthread_mutex_unlock(&c->out_mtx);
			/* Registered only now, and always one-shot: the kernel reports
			 * EPOLLHUP/EPOLLERR even for an fd registered with no events, and
			 * every reported event must match the reference taken here. */
			client_ref(c); /* held by the armed registration */
			int op = c->ep_added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
			c->ep_added = 1;
			if (epoll_ctl(c->fl->epfd, op, c->fd, &ev) < 0) {
				client_unref(c);
				client_kill(c, "write error");
			}
			return;
		}
		client_kill(c, "connection lost");
		pthread_mutex_lock(&c->out_mtx);
		c->out_state = OUT_IDLE;
		pthread_mutex_unlock(&c->out_mtx);
		return;
	}
}

static void *flusher_main(void *arg)
{
	struct flusher *f = arg;
	char name[16];
	struct epoll_event evs[64];
	struct rd_client **batch = NULL;
	size_t batch_cap = 0;

	snprintf(name, sizeof(name), "rd-flush%u", f->idx);
	pthread_setname_np(pthread_self(), name);
	size_t last_batch = 0;
	for (;;) {
		size_t nb = 0;
		int timeout = 0;

		/* Coalescing under load: after a large batch (a room fan-out in progress), let
		 * the next messages pile up briefly so each send() carries several frames. The
		 * server's CPU per delivery is almost all the kernel's work per send() (measured
		 * with perf), so this is the lever: about 7 frames per send at 1M deliveries/s
		 * with 1000 members, p99 still under 20 ms. Costs at most COALESCE_US of latency,
		 * and only while 32+ clients are being written to at once. */
		if (last_batch >= COALESCE_MIN_BATCH) {
			struct timespec ts = {0, COALESCE_US * 1000L};
			nanosleep(&ts, NULL);
		}

		pthread_mutex_lock(&f->mtx);
		if (f->stop && f->n == 0) {
			pthread_mutex_unlock(&f->mtx);
			break;
		}
		if (f->n == 0) {
			f->sleeping = 1;
			timeout = -1;
		}
		pthread_mutex_unlock(&f->mtx);

		int ne = epoll_wait(f->epfd, evs, 64, timeout);
		pthread_mutex_lock(&f->mtx);
		f->sleeping = 0;
		if (f->n > batch_cap) {
			struct rd_client **p = realloc(batch, f->n * sizeof(*p));
			if (p) {
				batch = p;
				batch_cap = f->n;
			}
		}
		nb = f->n <= batch_cap ? f->n : batch_cap;
		if (nb)
			memcpy(batch, f->ready, nb * sizeof(*batch));
		if (f->n > nb) /* what did not fit the batch stays for the next round */
			memmove(f->ready, f->ready + nb, (f->n - nb) * sizeof(*batch));
		f->n -= nb;
		pthread_mutex_unlock(&f->mtx);

		for (int i = 0; i < ne; i++) {
			struct rd_client *c = evs[i].data.ptr;
			if (!c) {
				uint64_t v;
				ssize_t r = read(f->evfd, &v, sizeof(v));
				(void)r;
				continue;
			}
			flush_client(c);
			client_unref(c);
		}
		for (size_t i = 0; i < nb; i++) {
			flush_client(batch[i]);
			client_unref(batch[i]);
		}
		last_batch = nb;
	}
	free(batch);
	return NULL;
}

/* Queue bytes (one or more whole frames) to c. Never blocks. When this makes c need a
 * flush, *marked = 1 and the caller must push it to its flusher (schedule / push_ready):
 * fan-out pushes all of a message's recipients under one lock per flusher. */
static int client_enqueue_defer(struct rd_client *c, const void *p, size_t n, int *marked)
{
	struct rd_server *s = c->srv;
	int over = 0, rc = 0;

	*marked = 0;
	pthread_mutex_lock(&c->out_mtx);
	if (c->dead || c->close_after_flush) {
		rc = RD_ERR_CLOSED;
	} else if (atomic_load(&c->queued) + n > s->cfg.out_limit) {
		over = 1;
		rc = RD_ERR_FULL;
	} else if ((rc = rd_buf_put(&c->q, p, n)) == 0) {
		atomic_fetch_add(&c->queued, n);
		if (c->out_state == OUT_IDLE && !c->direct && !c->direct_wanted) {
			mark_scheduled_locked(c);
			*marked = 1;
		}
	}
	pthread_mutex_unlock(&c->out_mtx);
	if (over) {
		RD_LOG(RD_LOG_WARN, "client %u (%s) over its output bound: disconnecting", c->id,
		       c->nick);
		client_kill(c, "slow reader");
	}
	return rc;
}

static int client_enqueue(struct rd_client *c, const void *p, size_t n)
{
	int marked;
	int rc = client_enqueue_defer(c, p, n, &marked);
	if (marked)
		schedule(c);
	return rc;
}

/* ---- frames to clients ------------------------------------------------------------------ */

/* Frames are built in a per-call buffer: one allocation per message however many members
 * receive it (fan-out copies the built bytes), and nothing left behind by exiting threads. */
int rd_client_send(struct rd_client *c, uint16_t type, uint32_t req_id, const void *payload,
		   size_t n, unsigned opts)
{
	struct rd_buf b;
	int rc;
	rd_buf_init(&b, 0);
	rc = rd_frame_append(&b, type, req_id, payload, n, opts);
	if (rc == 0)
		rc = client_enqueue(c, b.data, b.len);
	rd_buf_free(&b);
	return rc;
}

int rd_client_send_msg(struct rd_client *c, const struct rd_msg *m, uint32_t req_id)
{
	struct rd_buf b;
	int rc;
	rd_buf_init(&b, 0);
	rc = rd_msg_frame(&b, m, req_id, 0);
	if (rc == 0)
		rc = client_enqueue(c, b.data, b.len);
	else
		RD_LOG(RD_LOG_ERROR, "cannot encode %s: %s", rd_msg_type_name(m->type),
		       rd_strerror(rc));
	rd_buf_free(&b);
	return rc;
}

int rd_client_send_error(struct rd_client *c, uint32_t req_id, uint16_t for_type, uint16_t code,
			 const char *text)
{
	struct rd_msg m;
	rd_msg_init(&m, RD_MSG_ERROR);
	m.u.error.code = code;
	m.u.error.for_type = for_type;
	m.u.error.text = rd_str_c(text ? text : rd_wire_strerror(code));
	return rd_client_send_msg(c, &m, req_id);
}

static int send_ok(struct rd_client *c, uint32_t req_id, uint16_t for_type)
{
	struct rd_msg m;
	if (req_id == 0)
		return 0;
	rd_msg_init(&m, RD_MSG_OK);
	m.u.ok.for_type = for_type;
	return rd_client_send_msg(c, &m, req_id);
}

int rd_client_send_file(struct rd_client *c, const void *prefix, size_t plen, int in_fd,
			off_t off, size_t len, int timeout_ms)
{
	struct rd_buf pending;
	int rc = 0, wake = 0;

	rd_buf_init(&pending, 0);
	pthread_mutex_lock(&c->out_mtx);
	c->direct_wanted = 1;
	{
		uint64_t until = rd_now_mono_ms() + (timeout_ms < 0 ? 3600000u : (uint64_t)timeout_ms);
		while (!c->dead && c->out_state != OUT_IDLE)
			if (rd_cond_wait_until(&c->out_cv, &c->out_mtx, until) == RD_ERR_TIMEOUT)
				break;
	}
	if (c->dead || c->out_state != OUT_IDLE) {
		int timed_out = !c->dead;
		c->direct_wanted = 0;
		pthread_mutex_unlock(&c->out_mtx);
		if (timed_out)
			client_kill(c, "slow reader");
		return timed_out ? RD_ERR_TIMEOUT : RD_ERR_CLOSED;
	}
	c->direct = 1;
	c->direct_wanted = 0;
	pending = c->q; /* what was queued before us goes first */
	rd_buf_init(&c->q, 0);
	pthread_mutex_unlock(&c->out_mtx);

	size_t before = rd_buf_avail(&pending);
	if (before)
		rc = rd_net_write_all(c->fd, rd_buf_rptr(&pending), before, timeout_ms);
	if (rc == 0 && plen)
		rc = rd_net_write_all(c->fd, prefix, plen, timeout_ms);
	if (rc == 0 && len)
		rc = rd_net_sendfile_all(c->fd, in_fd, off, len, timeout_ms);
	rd_buf_free(&pending);
	if (rc == 0) {
		uint64_t sent = before + plen + len;
		atomic_fetch_sub(&c->queued, before);
		atomic_fetch_add(&c->bytes_out, sent);
		atomic_fetch_add(&c->srv->bytes_out, sent);
	}

	pthread_mutex_lock(&c->out_mtx);
	c->direct = 0;
	if (rc == 0 && !c->dead && rd_buf_avail(&c->q) && c->out_state == OUT_IDLE) {
		mark_scheduled_locked(c);
		wake = 1;
	}
	pthread_mutex_unlock(&c->out_mtx);
	if (wake)
		schedule(c);
	if (rc != 0)
		client_kill(c, rc == RD_ERR_TIMEOUT ? "slow reader" : "connection lost");
	return rc;
}

/* ---- membership ------------------------------------------------------------------------- */

static struct rd_room *room_find(struct rd_server *s, const char *name)
{
	for (size_t i = 0; i < s->nrooms; i++)
		if (rd_name_eq(s->rooms[i].name, name))
			return &s->rooms[i];
	return NULL;
}

/* rooms_mtx held. Both directions of the membership change here and only here. */
static void room_remove_locked(struct rd_client *c)
{
	struct rd_room *r = c->room;
	if (!r)
		return;
	size_t i = c->room_idx;
	r->members[i] = r->members[--r->n];
	r->members[i]->room_idx = i;
	c->room = NULL;
}

static int room_add_locked(struct rd_room *r, struct rd_client *c)
{
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 16;
		struct rd_client **p = realloc(r->members, ncap * sizeof(*p));
		if (!p)
			return RD_ERR_NOMEM;
		r->members = p;
		r->cap = ncap;
	}
	c->room = r;
	c->room_idx = r->n;
	r->members[r->n++] = c;
	return 0;
}

/* Take a reference to each member of room r, or to every registered client when r is
 * NULL, leaving out `except`. The caller sends outside the lock, then unrefs each and
 * frees *out. */
static int collect(struct rd_server *s, struct rd_room *r, const struct rd_client *except,
		   struct rd_client ***out, size_t *n)
{
	pthread_mutex_t *mtx = r ? &s->rooms_mtx : &s->clients_mtx;
	struct rd_client **v;
	size_t k = 0, max;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(mtx);
	max = r ? r->n : s->nclients;
	v = malloc((max ? max : 1) * sizeof(*v));
	if (v && r) {
		for (size_t i = 0; i < r->n; i++)
			if (r->members[i] != except)
				v[k++] = r->members[i];
	} else if (v) {
		for (struct rd_client *c = s->clients; c; c = c->next)
			if (c != except && c->registered)
				v[k++] = c;
	}
	for (size_t i = 0; i < k; i++)
		client_ref(v[i]);
	pthread_mutex_unlock(mtx);
	if (!v)
		return RD_ERR_NOMEM;
	*out = v;
	*n = k;
	return 0;
}

/* Queue one frame to every client of v (references collected by the caller, dropped
 * here), then hand those that need a flush to their flushers: one lock per flusher per
 * message instead of one per recipient. */
static void send_to_all(struct rd_server *s, struct rd_client **v, size_t n, const void *frame,
			size_t len)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		int marked;
		client_enqueue_defer(v[i], frame, len, &marked);
		if (marked) { /* gather the marked ones at the front */
			struct rd_client *t = v[k];
			v[k++] = v[i];
			v[i] = t;
		}
	}
	for (unsigned fi = 0; fi < s->nflushers && k; fi++) {
		struct flusher *f = &s->flushers[fi];
		struct rd_client *chunk[256];
		size_t m = 0;
		int wake = 0;
		for (size_t i = 0; i < k; i++) {
			if (v[i]->fl != f)
				continue;
			chunk[m++] = v[i];
			if (m == 256) {
				wake |= push_ready(f, chunk, m);
				m = 0;
			}
		}
		if (m)
			wake |= push_ready(f, chunk, m);
		if (wake)
			wake_flusher(f);
	}
	for (size_t i = 0; i < n; i++)
		client_unref(v[i]);
	free(v);
}

int rd_room_send(struct rd_server *s, const char *room, const struct rd_client *except,
		 uint16_t type, const void *payload, size_t len, unsigned *n)
{
	struct rd_room *r = room_find(s, room);
	struct rd_client **v;
	struct rd_buf b;
	size_t k;
	int rc;

	if (n)
		*n = 0;
	if (!r)
		return RD_ERR_NOT_FOUND;
	rd_buf_init(&b, 0);
	if ((rc = rd_frame_append(&b, type, 0, payload, len, 0)) != 0)
		goto out;
	if ((rc = collect(s, r, except, &v, &k)) != 0)
		goto out;
	send_to_all(s, v, k, b.data, b.len);
	if (n)
		*n = (unsigned)k;
out:
	rd_buf_free(&b);
	return rc;
}

/* Send a message frame to room members (r) or to all registered clients (r == NULL). */
static unsigned announce(struct rd_server *s, struct rd_room *r, const struct rd_client *except,
			 const struct rd_msg *m)
{
	struct rd_client **v;
	struct rd_buf b;
	size_t k = 0;

	rd_buf_init(&b, 0);
	if (rd_msg_frame(&b, m, 0, 0) != 0)
		goto out;
	if (collect(s, r, except, &v, &k) != 0)
		goto out;
	send_to_all(s, v, k, b.data, b.len);
out:
	rd_buf_free(&b);
	return (unsigned)k;
}

/* Announce what happened to `subject` (never sent to it). A quiet session (HELLO with
 * RD_FEAT_QUIET: a one-shot command) is never announced. */
static void presence(struct rd_server *s, struct rd_room *r, const struct rd_client *subject,
		     uint8_t event, const char *nick, const char *room, const char *reason)
{
	struct rd_msg m;
	if (subject->quiet)
		return;
	rd_msg_init(&m, RD_MSG_PRESENCE);
	m.u.presence.event = event;
	copy_str(m.u.presence.nick, sizeof(m.u.presence.nick), nick);
	copy_str(m.u.presence.room, sizeof(m.u.presence.room), room);
	m.u.presence.time_ms = rd_now_wall_ms();
	m.u.presence.reason = rd_str_c(reason);
	announce(s, r, subject, &m);
}

/* ---- handlers --------------------------------------------------------------------------- */

struct req {
	struct rd_client *c;
	const struct rd_frame *f;
	struct rd_msg m;
};

static void reply_error(struct req *q, uint16_t code, const char *text)
{
	rd_client_send_error(q->c, q->f->hdr.req_id, q->f->hdr.type, code, text);
}

static void begin_close(struct rd_client *c, uint8_t departure, const char *reason)
{
	pthread_mutex_lock(&c->mtx);
	if (!c->departure)
		c->departure = departure;
	if (reason && !c->reason[0])
		copy_str(c->reason, sizeof(c->reason), reason);
	if (!c->force_close_mono)
		c->force_close_mono = rd_now_mono_ms() + CLOSE_GRACE_MS;
	pthread_mutex_unlock(&c->mtx);

	int wake = 0;
	pthread_mutex_lock(&c->out_mtx);
	c->close_after_flush = 1;
	if (c->out_state == OUT_IDLE && !c->direct && !c->dead) {
		mark_scheduled_locked(c);
		wake = 1;
	}
	pthread_mutex_unlock(&c->out_mtx);
	if (wake)
		schedule(c);
}

static void handle_hello(struct req *q)
{
	struct rd_server *s = q->c->srv;
	const struct rd_msg_hello *h = &q->m.u.hello;
	struct rd_msg r;

	if (q->c->hello_done) {
		reply_error(q, RD_E_UNEXPECTED, "HELLO was already received");
		return;
	}
	if (h->version_min > RD_PROTO_VERSION || h->version_max < RD_PROTO_VERSION) {
		char text[96];
		snprintf(text, sizeof(text), "this server speaks protocol version %u only",
			 RD_PROTO_VERSION);
		reply_error(q, RD_E_BAD_VERSION, text);
		begin_close(q->c, 0, "protocol version mismatch");
		return;
	}
	q->c->hello_done = 1;
	q->c->quiet = (h->features & s->cfg.features & RD_FEAT_QUIET) != 0;
	rd_msg_init(&r, RD_MSG_HELLO_OK);
	r.u.hello_ok.version = RD_PROTO_VERSION;
	r.u.hello_ok.features = s->cfg.features;
	r.u.hello_ok.max_payload = s->cfg.max_payload;
	r.u.hello_ok.ping_interval_ms = s->cfg.ping_interval_ms;
	r.u.hello_ok.ping_timeout_ms = s->cfg.ping_timeout_ms;
	copy_str(r.u.hello_ok.software, sizeof(r.u.hello_ok.software), s->cfg.software);
	rd_client_send_msg(q->c, &r, q->f->hdr.req_id);
}

static struct rd_client *find_nick_locked(struct rd_server *s, const char *nick)
{
	for (struct rd_client *c = s->clients; c; c = c->next)
		if (c->registered && rd_name_eq(c->nick, nick))
			return c;
	return NULL;
}

static void handle_nick(struct req *q)
{
	struct rd_client *c = q->c;
	struct rd_server *s = c->srv;
	const char *nick = q->m.u.nick.nick;
	uint16_t code;
	struct rd_msg r;

	if (c->registered) {
		reply_error(q, RD_E_ALREADY_REGISTERED, NULL);
		return;
	}
	if (!c->hello_done) {
		reply_error(q, RD_E_UNEXPECTED, "send HELLO before NICK");
		return;
	}
	if ((code = rd_nick_check(nick, strlen(nick))) != 0) {
		const char *why = code == RD_E_NICK_LENGTH
					  ? "a nickname has 1 to 32 characters"
				  : code == RD_E_NICK_RESERVED
					  ? "that nickname is reserved"
					  : "a nickname uses letters, digits, '_', '.', '-' and starts "
					    "with a letter, digit or '_'";
		reply_error(q, code, why);
		return;
	}
	pthread_mutex_lock(&s->clients_mtx);
	if (find_nick_locked(s, nick)) {
		pthread_mutex_unlock(&s->clients_mtx);
		reply_error(q, RD_E_NICK_TAKEN, "that nickname is taken");
		return;
	}
	copy_str(c->nick, sizeof(c->nick), nick);
	/* The first PING is due one interval from now. Set under the same lock hold as
	 * `registered`, so the timer never sees a registered client without its deadline. */
	pthread_mutex_lock(&c->mtx);
	c->next_ping_mono = rd_now_mono_ms() + s->cfg.ping_interval_ms;
	c->rate_mono = rd_now_mono_ms();
	c->rate_milli = s->cfg.msg_rate * 2000u; /* a full bucket: two seconds' worth */
	pthread_mutex_unlock(&c->mtx);
	c->registered = 1;
	s->nregistered++;
	pthread_mutex_unlock(&s->clients_mtx);

	rd_msg_init(&r, RD_MSG_WELCOME);
	copy_str(r.u.welcome.nick, sizeof(r.u.welcome.nick), c->nick);
	r.u.welcome.client_id = c->id;
	r.u.welcome.server_time_ms = rd_now_wall_ms();
	rd_client_send_msg(c, &r, q->f->hdr.req_id);
	/* only now does anybody hear of this client */
	presence(s, NULL, c, RD_PRESENCE_CONNECTED, c->nick, "", NULL);
	emit(s, RD_EV_REGISTERED, c, "", NULL);
	if (s->hooks.on_register)
		s->hooks.on_register(s, c, s->hooks.user);
}

static void handle_rooms(struct req *q)
{
	struct rd_server *s = q->c->srv;
	struct rd_msg r;
	struct rd_room_entry *items = NULL;
	size_t n = 0;

	if (rd_server_rooms(s, &items, &n) != 0) {
		reply_error(q, RD_E_INTERNAL, NULL);
		return;
	}
	rd_msg_init(&r, RD_MSG_ROOM_LIST);
	r.u.room_list.count = (uint32_t)n;
	r.u.room_list.items = items;
	rd_client_send_msg(q->c, &r, q->f->hdr.req_id);
	free(items);
}

static void leave_room(struct rd_client *c, int announce_it)
{
	struct rd_server *s = c->srv;
	struct rd_room *old;
	pthread_mutex_lock(&s->rooms_mtx);
	old = c->room;
	room_remove_locked(c);
	pthread_mutex_unlock(&s->rooms_mtx);
	if (!old)
		return;
	if (announce_it) {
		presence(s, old, c, RD_PRESENCE_LEFT, c->nick, old->name, NULL);
		emit(s, RD_EV_LEFT, c, old->name, NULL);
	}
	if (s->hooks.on_leave)
		s->hooks.on_leave(s, c, old->name, s->hooks.user);
}

static void handle_join(struct req *q)
{
	struct rd_client *c = q->c;
	struct rd_server *s = c->srv;
	struct rd_room *r = room_find(s, q->m.u.room.room);
	struct rd_msg m;
	uint32_t members;

	if (!r) {
		char text[96];
		snprintf(text, sizeof(text), "no room named '%.32s' (the list: roomdrop rooms)",
			 q->m.u.room.room);
		reply_error(q, RD_E_NO_SUCH_ROOM, text);
		return;
	}
	if (c->room == r) { /* c->room only changes on this thread */
		pthread_mutex_lock(&s->rooms_mtx);
		members = (uint32_t)r->n;
		pthread_mutex_unlock(&s->rooms_mtx);
	} else {
		leave_room(c, 1);
		pthread_mutex_lock(&s->rooms_mtx);
		int rc = room_add_locked(r, c);
		members = (uint32_t)r->n;
		pthread_mutex_unlock(&s->rooms_mtx);
		if (rc) {
			reply_error(q, RD_E_INTERNAL, NULL);
			return;
		}
		presence(s, r, c, RD_PRESENCE_JOINED, c->nick, r->name, NULL);
		emit(s, RD_EV_JOINED, c, r->name, NULL);
		if (s->hooks.on_join)
			s->hooks.on_join(s, c, r->name, s->hooks.user);
	}
	rd_msg_init(&m, RD_MSG_JOINED);
	copy_str(m.u.joined.room, sizeof(m.u.joined.room), r->name);
	m.u.joined.members = members;
	rd_client_send_msg(c, &m, q->f->hdr.req_id);
}

static void handle_leave(struct req *q)
{
	if (!q->c->room) {
		reply_error(q, RD_E_NOT_IN_ROOM, "you are not in a room");
		return;
	}
	leave_room(q->c, 1);
	send_ok(q->c, q->f->hdr.req_id, q->f->hdr.type);
}

static void handle_who(struct req *q)
{
	struct rd_client *c = q->c;
	struct rd_server *s = c->srv;
	struct rd_room *r;
	struct rd_msg m;
	struct rd_who_entry *items = NULL;
	size_t n = 0;

	if (q->m.u.room.room[0]) {
		r = room_find(s, q->m.u.room.room);
		if (!r) {
			reply_error(q, RD_E_NO_SUCH_ROOM, NULL);
			return;
		}
	} else if (!(r = c->room)) {
		reply_error(q, RD_E_NOT_IN_ROOM, "you are not in a room: name one");
		return;
	}
	pthread_mutex_lock(&s->rooms_mtx);
	items = calloc(r->n ? r->n : 1, sizeof(*items));
	if (items) {
		n = r->n;
		for (size_t i = 0; i < n; i++) {
			copy_str(items[i].nick, sizeof(items[i].nick), r->members[i]->nick);
			items[i].since_ms = r->members[i]->connected_ms;
		}
	}
	pthread_mutex_unlock(&s->rooms_mtx);
	if (!items) {
		reply_error(q, RD_E_INTERNAL, NULL);
		return;
	}
	rd_msg_init(&m, RD_MSG_WHO_LIST);
	copy_str(m.u.who_list.room, sizeof(m.u.who_list.room), r->name);
	m.u.who_list.count = (uint32_t)n;
	m.u.who_list.items = items;
	rd_client_send_msg(c, &m, q->f->hdr.req_id);
	free(items);
}

/* The chat rate limit (config msg_rate messages per second, a bucket of two seconds'
 * worth; 0 = none): 0 when c may send one more message now, else RD_ERR_FULL. */
static int take_message_token(struct rd_client *c)
{
	uint32_t rate = c->srv->cfg.msg_rate;
	uint64_t now, cap, have;
	int rc = 0;

	if (rate == 0)
		return 0;
	now = rd_now_mono_ms();
	cap = (uint64_t)rate * 2000u;
	pthread_mutex_lock(&c->mtx);
	have = c->rate_milli + (now - c->rate_mono) * rate;
	c->rate_mono = now;
	if (have > cap)
		have = cap;
	if (have >= 1000u)
		have -= 1000u;
	else
		rc = RD_ERR_FULL;
	c->rate_milli = (uint32_t)have;
	pthread_mutex_unlock(&c->mtx);
	return rc;
}

static void refuse_rate(struct req *q)
{
	char text[96];
	snprintf(text, sizeof(text), "too many messages: at most %u per second",
		 q->c->srv->cfg.msg_rate);
	reply_error(q, RD_E_RATE, text);
}

static void note_message(struct rd_client *c)
{
	uint64_t now = rd_now_wall_ms();
	int post = 0;
	pthread_mutex_lock(&c->mtx);
	c->last_msg_ms = now;
	if (now - c->last_msg_event_ms >= EVENT_MSG_EVERY_MS) {
		c->last_msg_event_ms = now;
		post = 1;
	}
	pthread_mutex_unlock(&c->mtx);
	if (post)
		emit(c->srv, RD_EV_MESSAGE, c, "", NULL);
}

static void handle_say(struct req *q)
{
	struct rd_client *c = q->c;
	struct rd_server *s = c->srv;
	struct rd_room *r = c->room;
	struct rd_msg m;

	if (!r) {
		reply_error(q, RD_E_NOT_IN_ROOM, "join a room first");
		return;
	}
	if (take_message_token(c) != 0) {
		refuse_rate(q);
		return;
	}
	rd_msg_init(&m, RD_MSG_ROOM_MSG);
	copy_str(m.u.room_msg.room, sizeof(m.u.room_msg.room), r->name);
	memcpy(m.u.room_msg.from, c->nick, sizeof(c->nick));
	m.u.room_msg.kind = q->m.u.say.kind; /* relayed unchanged, like the data */
	m.u.room_msg.time_ms = rd_now_wall_ms();
	m.u.room_msg.data = q->m.u.say.data;
	announce(s, r, c, &m);
	note_message(c);
	send_ok(c, q->f->hdr.req_id, q->f->hdr.type);
}

/* Find a registered client by nickname and take a reference. */
static struct rd_client *get_by_nick(struct rd_server *s, const char *nick)
{
	struct rd_client *t;
	pthread_mutex_lock(&s->clients_mtx);
	t = find_nick_locked(s, nick);
	if (t)
		client_ref(t);
	pthread_mutex_unlock(&s->clients_mtx);
	return t;
}

static void handle_tell(struct req *q)
{
	struct rd_client *c = q->c;
	struct rd_client *t;
	struct rd_msg m;

	if (take_message_token(c) != 0) {
		refuse_rate(q);
		return;
	}
	t = get_by_nick(c->srv, q->m.u.tell.to);
	if (!t) {
		reply_error(q, RD_E_NO_SUCH_USER, "no such user is connected");
		return;
	}
	rd_msg_init(&m, RD_MSG_PRIVATE_MSG);
	memcpy(m.u.private_msg.from, c->nick, sizeof(c->nick));
	m.u.private_msg.kind = q->m.u.tell.kind; /* relayed unchanged, like the data */
	m.u.private_msg.time_ms = rd_now_wall_ms();
	m.u.private_msg.data = q->m.u.tell.data;
	rd_client_send_msg(t, &m, 0);
	client_unref(t);
	note_message(c);
	send_ok(c, q->f->hdr.req_id, q->f->hdr.type);
}

static void handle_ping(struct req *q)
{
	struct rd_msg m;
	rd_msg_init(&m, RD_MSG_PONG);
	m.u.ping.nonce = q->m.u.ping.nonce;
	rd_client_send_msg(q->c, &m, q->f->hdr.req_id);
}

static void handle_pong(struct req *q)
{
	struct rd_client *c = q->c;
	pthread_mutex_lock(&c->mtx);
	if (c->ping_outstanding && q->m.u.ping.nonce == c->ping_nonce) {
		c->ping_outstanding = 0;
		c->next_ping_mono = rd_now_mono_ms() + c->srv->cfg.ping_interval_ms;
	}
	pthread_mutex_unlock(&c->mtx);
}

static void handle_bye(struct req *q)
{
	char reason[RD_REASON_MAX + 8];
	size_t n = q->m.u.bye.reason.n;
	if (n > RD_REASON_MAX)
		n = RD_REASON_MAX;
	if (n)
		snprintf(reason, sizeof(reason), "quit: %.*s", (int)n, q->m.u.bye.reason.p);
	else
		snprintf(reason, sizeof(reason), "quit");
	begin_close(q->c, RD_PRESENCE_DISCONNECTED, reason);
	q->c->bye = 1; /* the reader stops now: the departure is announced and the nickname
			* freed at once, not when the peer gets round to closing its end */
}

/* What a client may send to the server, by type (PROTOCOL.md section 10). */
enum accept_class {
	A_NEVER,    /* no handler here: unknown, server-to-client, CTL_* (local socket only),
		     * and the offer, P2P and link messages this server does not implement */
	A_ANY,      /* accepted in every state */
	A_REG,      /* needs a registered client */
	A_IGNORED,  /* ERROR from a client: logged, never answered (two peers must never
		     * bounce errors at each other) */
};

static enum accept_class accept_class(uint16_t type)
{
	switch (type) {
	case RD_MSG_HELLO:
	case RD_MSG_NICK:
	case RD_MSG_PING:
	case RD_MSG_PONG:
	case RD_MSG_BYE: return A_ANY;
	case RD_MSG_ROOMS:
	case RD_MSG_JOIN:
	case RD_MSG_LEAVE:
	case RD_MSG_WHO:
	case RD_MSG_SAY:
	case RD_MSG_TELL: return A_REG;
	case RD_MSG_ERROR: return A_IGNORED;
	default: return A_NEVER;
	}
}

/* The wire error for a payload whose field is longer than its limit (section 4). */
static uint16_t too_long_code(uint16_t type)
{
	switch (type) {
	case RD_MSG_NICK: return RD_E_NICK_LENGTH;
	case RD_MSG_JOIN:
	case RD_MSG_WHO: return RD_E_NO_SUCH_ROOM;
	case RD_MSG_SAY:
	case RD_MSG_TELL: return RD_E_MESSAGE_TOO_LONG;
	default: return RD_E_MALFORMED;
	}
}

/* State, then decode, then dispatch: a connection is never made to decode (and allocate
 * for) a message it was not allowed to send in its state. */
static void dispatch(struct rd_client *c, const struct rd_frame *f)
{
	struct rd_server *s = c->srv;
	struct req q = {.c = c, .f = f};
	uint16_t type = f->hdr.type;
	enum accept_class cls;
	int rc;

	if (type >= RD_TYPE_APP_FIRST && type <= RD_TYPE_APP_LAST) {
		if (!c->registered) {
			reply_error(&q, RD_E_NOT_REGISTERED, "send HELLO and NICK first");
			return;
		}
		if (!s->hooks.on_frame) {
			reply_error(&q, RD_E_UNKNOWN_TYPE, "no application handles this type");
			return;
		}
		uint16_t code = s->hooks.on_frame(s, c, f, s->hooks.user);
		if (code)
			reply_error(&q, code, NULL);
		return;
	}
	cls = accept_class(type);
	if (cls == A_IGNORED) {
		RD_LOG(RD_LOG_DEBUG, "client %u sent an ERROR frame; not answered", c->id);
		return;
	}
	if (cls == A_NEVER) {
		char text[96];
		if (rd_msg_known(type))
			snprintf(text, sizeof(text), "%s is not a message this server accepts",
				 rd_msg_type_name(type));
		else
			snprintf(text, sizeof(text), "unknown message type 0x%04x", type);
		reply_error(&q, RD_E_UNKNOWN_TYPE, text);
		emit(s, RD_EV_ERROR, c, "", text);
		return;
	}
	if (cls == A_REG && !c->registered) {
		reply_error(&q, RD_E_NOT_REGISTERED,
			    c->hello_done ? "choose a nickname (NICK) first" : "send HELLO first");
		return;
	}
	if ((rc = rd_msg_decode(type, f->payload, f->len, &q.m)) != 0) {
		char text[96];
		uint16_t code = rc == RD_ERR_TOO_BIG ? too_long_code(type) : RD_E_MALFORMED;
		snprintf(text, sizeof(text), "%s %s payload: %s",
			 code == RD_E_MALFORMED ? "malformed" : "over-long field in",
			 rd_msg_type_name(type), rd_strerror(rc));
		reply_error(&q, code, text);
		emit(s, RD_EV_ERROR, c, "", text);
		return;
	}
	switch (type) {
	case RD_MSG_HELLO: handle_hello(&q); break;
	case RD_MSG_NICK: handle_nick(&q); break;
	case RD_MSG_PING: handle_ping(&q); break;
	case RD_MSG_PONG: handle_pong(&q); break;
	case RD_MSG_BYE: handle_bye(&q); break;
	case RD_MSG_ROOMS: handle_rooms(&q); break;
	case RD_MSG_JOIN: handle_join(&q); break;
	case RD_MSG_LEAVE: handle_leave(&q); break;
	case RD_MSG_WHO: handle_who(&q); break;
	case RD_MSG_SAY: handle_say(&q); break;
	case RD_MSG_TELL: handle_tell(&q); break;
	default: break; /* accept_class() lists exactly these */
	}
	rd_msg_clear(&q.m);
}

/* ---- connection threads ----------------------------------------------------------------- */

/* Remove c from the connection list; clients_mtx held. The table's reference is the
 * caller's to drop. */
static void table_unlink_locked(struct rd_server *s, struct rd_client *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	s->nclients--;
}

static void client_gone(struct rd_client *c)
{
	struct rd_server *s = c->srv;
	uint8_t departure;
	char reason[RD_REASON_MAX + 1];
	char room[RD_ROOM_BUF] = "";
	int registered;

	pthread_mutex_lock(&s->clients_mtx);
	table_unlink_locked(s, c);
	registered = c->registered;
	if (registered)
		s->nregistered--;
	pthread_mutex_unlock(&s->clients_mtx);

	pthread_mutex_lock(&s->rooms_mtx);
	if (c->room)
		copy_str(room, sizeof(room), c->room->name);
	pthread_mutex_unlock(&s->rooms_mtx);
	leave_room(c, 0);

	pthread_mutex_lock(&c->mtx);
	departure = c->departure ? c->departure : RD_PRESENCE_DISCONNECTED;
	copy_str(reason, sizeof(reason), c->reason[0] ? c->reason : "connection lost");
	pthread_mutex_unlock(&c->mtx);

	if (registered) {
		presence(s, NULL, c, departure, c->nick, room, reason);
		if (s->hooks.on_disconnect)
			s->hooks.on_disconnect(s, c, reason, s->hooks.user);
	}
	emit(s, departure == RD_PRESENCE_KICKED ? RD_EV_KICKED : RD_EV_DISCONNECTED, c, room,
	     reason);
	client_kill(c, NULL);
	client_unref(c); /* the table's reference: it was unlinked above */
}

static void *client_main(void *arg)
{
	struct rd_client *c = arg;
	struct rd_server *s = c->srv;
	struct rd_frame_reader *r = NULL;
	char name[16];
	int trimmed = 0;

	snprintf(name, sizeof(name), "rd-c%u", c->id);
	pthread_setname_np(pthread_self(), name);
	if (rd_frame_reader_new(s->cfg.max_payload, &r) != 0) {
		client_kill(c, "out of memory");
		goto out;
	}
	/* Until WELCOME only small frames can be valid (HELLO, NICK, PING, PONG, BYE). */
	rd_frame_reader_set_max(r, RD_MAX_PAYLOAD_UNREGISTERED);
	int was_registered = 0;
	while (!c->bye) {
		struct rd_frame f;
		int rc = rd_frame_recv(c->fd, r, trimmed ? -1 : IDLE_TRIM_MS, &f);
		if (rc == RD_ERR_TIMEOUT) {
			if (rd_frame_reader_pending(r) == 0) {
				rd_frame_reader_trim(r);
				trimmed = 1;
			}
			continue;
		}
		if (rc != 0) {
			uint16_t code = 0;
			switch (rc) {
			case RD_ERR_BAD_MAGIC: code = RD_E_BAD_MAGIC; break;
			case RD_ERR_BAD_VERSION: code = RD_E_BAD_VERSION; break;
			case RD_ERR_TOO_BIG: code = RD_E_TOO_BIG; break;
			case RD_ERR_ZLIB: code = RD_E_BAD_COMPRESSION; break;
			default: break;
			}
			if (code) {
				rd_client_send_error(c, 0, 0, code, rd_strerror(rc));
				begin_close(c, 0, rd_wire_strerror(code));
				emit(s, RD_EV_ERROR, c, "", rd_wire_strerror(code));
				/* wait (bounded by the timer's forced close) for the peer to go */
				char sink[4096];
				while (recv(c->fd, sink, sizeof(sink), 0) > 0)
					;
			} else if (rc != RD_ERR_CLOSED) {
				pthread_mutex_lock(&c->mtx);
				if (!c->reason[0])
					copy_str(c->reason, sizeof(c->reason),
						 rc == RD_ERR_MALFORMED ? "connection lost mid-frame"
									: "connection lost");
				pthread_mutex_unlock(&c->mtx);
			}
			break;
		}
		trimmed = 0;
		atomic_fetch_add(&c->bytes_in, RD_FRAME_HEADER_SIZE + f.hdr.len);
		atomic_fetch_add(&s->bytes_in, RD_FRAME_HEADER_SIZE + f.hdr.len);
		dispatch(c, &f);
		if (!was_registered && c->registered) {
			was_registered = 1;
			rd_frame_reader_set_max(r, s->cfg.max_payload);
		}
	}
out:
	rd_frame_reader_free(r);
	client_gone(c);
	client_unref(c); /* the thread's reference */

	pthread_mutex_lock(&s->live_mtx);
	if (--s->live == 0)
		pthread_cond_broadcast(&s->live_cv);
	pthread_mutex_unlock(&s->live_mtx);
	return NULL;
}

static void refuse(struct rd_server *s, int fd, const char *ip, uint16_t port, uint16_t code,
		   const char *text)
{
	struct rd_msg m;
	struct rd_buf b;
	rd_buf_init(&b, 4096);
	rd_msg_init(&m, RD_MSG_ERROR);
	m.u.error.code = code;
	m.u.error.text = rd_str_c(text);
	if (rd_msg_frame(&b, &m, 0, 0) == 0)
		rd_net_write_all(fd, b.data, b.len, 500);
	rd_buf_free(&b);
	shutdown(fd, SHUT_WR);
	close(fd);
	if (s->hooks.on_event) {
		struct rd_event ev;
		memset(&ev, 0, sizeof(ev));
		ev.kind = RD_EV_REFUSED;
		ev.time_ms = rd_now_wall_ms();
		copy_str(ev.ip, sizeof(ev.ip), ip);
		ev.port = port;
		copy_str(ev.text, sizeof(ev.text), text);
		s->hooks.on_event(s, &ev, s->hooks.user);
	}
}

/* accept() failed for want of descriptors (or memory). Log it once per episode; give up
 * the reserve descriptor to take the waiting connection, answer it ERROR 205 and close it,
 * then take the reserve back; without a reserve, pause so as not to spin. */
static void at_fd_limit(struct rd_server *s, int err)
{
	int fd;
	char ip[48];
	uint16_t port;

	if (!s->fd_limit_logged) {
		s->fd_limit_logged = 1;
		RD_LOG(RD_LOG_WARN,
		       "accept: %s: new connections are refused with ERROR 205 until "
		       "descriptors are free again",
		       strerror(err));
	}
	if (s->reserve_fd >= 0 && (err == EMFILE || err == ENFILE)) {
		close(s->reserve_fd);
		s->reserve_fd = -1;
		if (rd_net_accept(s->lfd, &fd, ip, sizeof(ip), &port) == 0)
			refuse(s, fd, ip, port, RD_E_SERVER_FULL,
			       "the server has no room for another connection: try again later");
		s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (s->reserve_fd >= 0)
			return;
	}
	usleep(100 * 1000);
}

static void *accept_main(void *arg)
{
	struct rd_server *s = arg;
	pthread_attr_t attr;

	pthread_setname_np(pthread_self(), "rd-accept");
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, s->cfg.thread_stack);
	while (!atomic_load(&s->stopping)) {
		int fd;
		char ip[48];
		uint16_t port;
		int rc = rd_net_accept(s->lfd, &fd, ip, sizeof(ip), &port);
		if (rc != 0) {
			if (atomic_load(&s->stopping))
				break;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				at_fd_limit(s, errno);
			continue;
		}
		if (s->fd_limit_logged) {
			s->fd_limit_logged = 0;
			RD_LOG(RD_LOG_INFO, "accepting connections again");
		}
		pthread_mutex_lock(&s->clients_mtx);
		int full = s->nclients >= s->cfg.max_clients;
		pthread_mutex_unlock(&s->clients_mtx);
		if (full) {
			refuse(s, fd, ip, port, RD_E_SERVER_FULL,
			       "the server is full: try again later");
			continue;
		}
		struct rd_client *c = calloc(1, sizeof(*c));
		if (!c) {
			refuse(s, fd, ip, port, RD_E_INTERNAL, "out of memory");
			continue;
		}
		c->fd = fd;
		c->srv = s;
		atomic_init(&c->refs, 2); /* table + thread */
		copy_str(c->ip, sizeof(c->ip), ip);
		c->port = port;
		c->connected_ms = rd_now_wall_ms();
		c->register_deadline_mono = rd_now_mono_ms() + s->cfg.register_timeout_ms;
		pthread_mutex_init(&c->mtx, NULL);
		pthread_mutex_init(&c->out_mtx, NULL);
		rd_cond_init_mono(&c->out_cv);
		rd_buf_init(&c->q, 0);
		rd_buf_init(&c->w, 0);
		rd_net_set_nodelay(fd, 1);
		struct timeval tv = {.tv_sec = 30};
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

		pthread_mutex_lock(&s->clients_mtx);
		c->id = ++s->next_id;
		pthread_mutex_unlock(&s->clients_mtx);
		/* fully set up before any other thread can see it */
		c->fl = &s->flushers[c->id % s->nflushers];
		pthread_mutex_lock(&s->clients_mtx);
		c->next = s->clients;
		if (s->clients)
			s->clients->prev = c;
		s->clients = c;
		s->nclients++;
		pthread_mutex_unlock(&s->clients_mtx);
		emit(s, RD_EV_CONNECTED, c, "", NULL);

		pthread_mutex_lock(&s->live_mtx);
		s->live++;
		pthread_mutex_unlock(&s->live_mtx);
		pthread_t th;
		if (pthread_create(&th, &attr, client_main, c) != 0) {
			pthread_mutex_lock(&s->live_mtx);
			s->live--;
			pthread_mutex_unlock(&s->live_mtx);
			client_kill(c, "cannot start thread");
			pthread_mutex_lock(&s->clients_mtx);
			table_unlink_locked(s, c);
			pthread_mutex_unlock(&s->clients_mtx);
			client_unref(c);
			client_unref(c);
			continue;
		}
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

/* ---- timer ----------------------------------------------------------------------------- */

enum timer_action { T_NONE, T_PING, T_PING_TIMEOUT, T_REGISTER_TIMEOUT, T_FORCE };

static void *timer_main(void *arg)
{
	struct rd_server *s = arg;
	uint32_t tick = s->cfg.ping_timeout_ms < s->cfg.register_timeout_ms
				? s->cfg.ping_timeout_ms
				: s->cfg.register_timeout_ms;
	tick /= 10;
	if (tick < 10)
		tick = 10;
	if (tick > 250)
		tick = 250;

	pthread_setname_np(pthread_self(), "rd-timer");
	struct rd_client **v = NULL;
	uint8_t *act = NULL;
	uint64_t *nonce = NULL;
	size_t cap = 0;
	for (;;) {
		pthread_mutex_lock(&s->timer_mtx);
		if (!s->timer_stop)
			rd_cond_wait_until(&s->timer_cv, &s->timer_mtx, rd_now_mono_ms() + tick);
		int stop = s->timer_stop;
		pthread_mutex_unlock(&s->timer_mtx);
		if (stop)
			break;

		uint64_t now = rd_now_mono_ms();
		size_t k = 0;
		pthread_mutex_lock(&s->clients_mtx);
		if (s->nclients > cap) {
			size_t ncap = s->nclients * 2;
			void *a = realloc(v, ncap * sizeof(*v));
			if (a)
				v = a;
			void *b = realloc(act, ncap);
			if (b)
				act = b;
			void *d = realloc(nonce, ncap * sizeof(*nonce));
			if (d)
				nonce = d;
			if (a && b && d)
				cap = ncap;
		}
		for (struct rd_client *c = s->clients; c && k < cap; c = c->next) {
			uint8_t a = T_NONE;
			pthread_mutex_lock(&c->mtx);
			if (c->force_close_mono && now >= c->force_close_mono) {
				a = T_FORCE;
				c->force_close_mono = now + CLOSE_GRACE_MS;
			} else if (c->force_close_mono) {
				a = T_NONE;
			} else if (!c->registered) {
				if (now >= c->register_deadline_mono)
					a = T_REGISTER_TIMEOUT;
			} else if (c->ping_outstanding) {
				if (now - c->ping_sent_mono >= s->cfg.ping_timeout_ms)
					a = T_PING_TIMEOUT;
			} else if (now >= c->next_ping_mono) {
				a = T_PING;
				c->ping_outstanding = 1;
				c->ping_sent_mono = now;
				c->ping_nonce++;
				nonce[k] = c->ping_nonce;
			}
			pthread_mutex_unlock(&c->mtx);
			if (a != T_NONE) {
				client_ref(c);
				v[k] = c;
				act[k++] = a;
			}
		}
		pthread_mutex_unlock(&s->clients_mtx);

		for (size_t i = 0; i < k; i++) {
			struct rd_client *c = v[i];
			struct rd_msg m;
			switch (act[i]) {
			case T_PING:
				rd_msg_init(&m, RD_MSG_PING);
				m.u.ping.nonce = nonce[i];
				rd_client_send_msg(c, &m, 0);
				break;
			case T_PING_TIMEOUT:
				pthread_mutex_lock(&c->mtx);
				if (!c->departure)
					c->departure = RD_PRESENCE_TIMED_OUT;
				pthread_mutex_unlock(&c->mtx);
				client_kill(c, "ping timeout");
				break;
			case T_REGISTER_TIMEOUT:
				rd_client_send_error(c, 0, 0, RD_E_REGISTER_TIMEOUT,
						     "no nickname chosen in time");
				begin_close(c, 0, "registration timeout");
				break;
			case T_FORCE:
				client_kill(c, NULL);
				break;
			default:
				break;
			}
			client_unref(c);
		}
	}
	free(v);
	free(act);
	free(nonce);
	return NULL;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

void rd_server_config_defaults(struct rd_server_config *c)
{
	memset(c, 0, sizeof(*c));
	c->host = RD_DEFAULT_HOST;
	c->port = RD_DEFAULT_PORT;
	c->max_clients = 1024;
	c->ping_interval_ms = RD_PING_INTERVAL_MS;
	c->ping_timeout_ms = RD_PING_TIMEOUT_MS;
	c->register_timeout_ms = RD_REGISTER_TIMEOUT_MS;
	c->max_payload = RD_MAX_PAYLOAD_DEFAULT;
	c->out_limit = 8u << 20;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	c->thread_stack = 1u << 20;
#else
	c->thread_stack = 256u << 10;
#endif
	c->flush_threads = 0;
	c->software = "libroomdrop/" RD_VERSION;
	c->features = RD_FEAT_ZLIB | RD_FEAT_QUIET;
	c->msg_rate = RD_MSG_RATE_DEFAULT;
}

int rd_server_new(const struct rd_server_config *cfg, const struct rd_server_hooks *hooks,
		  struct rd_server **out)
{
	struct rd_server *s;
	const char *const *names;
	size_t n;

	*out = NULL;
	if (!cfg)
		return RD_ERR_INVAL;
	names = cfg->rooms ? cfg->rooms : default_rooms;
	n = cfg->rooms ? cfg->nrooms : 2;
	if (n == 0 || n > RD_MAX_ROOMS || cfg->max_clients == 0 || cfg->max_payload < 1024 ||
	    cfg->max_payload > RD_MAX_PAYLOAD_HARD || cfg->ping_interval_ms == 0 ||
	    cfg->ping_timeout_ms == 0 || cfg->register_timeout_ms == 0)
		return RD_ERR_INVAL;
	for (size_t i = 0; i < n; i++) {
		if (!names[i] || rd_room_check(names[i], strlen(names[i])) != 0)
			return RD_ERR_INVAL;
		for (size_t j = 0; j < i; j++)
			if (rd_name_eq(names[i], names[j]))
				return RD_ERR_INVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return RD_ERR_NOMEM;
	s->cfg = *cfg;
	if (!s->cfg.host)
		s->cfg.host = RD_DEFAULT_HOST;
	if (!s->cfg.software)
		s->cfg.software = "libroomdrop/" RD_VERSION;
	if (s->cfg.out_limit < 64 * 1024)
		s->cfg.out_limit = 64 * 1024;
	if (s->cfg.thread_stack < 64 * 1024)
		s->cfg.thread_stack = 64 * 1024;
	if (hooks)
		s->hooks = *hooks;
	s->lfd = -1;
	s->reserve_fd = -1;
	s->rooms = calloc(n, sizeof(*s->rooms));
	if (!s->rooms) {
		free(s);
		return RD_ERR_NOMEM;
	}
	s->nrooms = n;
	for (size_t i = 0; i < n; i++)
		copy_str(s->rooms[i].name, sizeof(s->rooms[i].name), names[i]);
	pthread_mutex_init(&s->clients_mtx, NULL);
	pthread_mutex_init(&s->rooms_mtx, NULL);
	pthread_mutex_init(&s->live_mtx, NULL);
	rd_cond_init_mono(&s->live_cv);
	pthread_mutex_init(&s->timer_mtx, NULL);
	rd_cond_init_mono(&s->timer_cv);
	*out = s;
	return 0;
}

int rd_server_start(struct rd_server *s)
{
	int rc;
	unsigned nf = s->cfg.flush_threads;

	if (s->started)
		return RD_ERR_STATE;
	if ((rc = rd_net_listen(s->cfg.host, s->cfg.port, 1024, &s->lfd, &s->bound_port)) != 0)
		return rc;
	if (nf == 0) {
		int cpus = get_nprocs();
		nf = cpus < 1 ? 1 : cpus > 4 ? 4 : (unsigned)cpus;
	}
	s->flushers = calloc(nf, sizeof(*s->flushers));
	if (!s->flushers) {
		rc = RD_ERR_NOMEM;
		goto fail;
	}
	/* s->nflushers counts flushers whose thread runs: stop() joins exactly those, and
	 * free() releases their descriptors. A flusher that fails half-way is undone here. */
	for (unsigned i = 0; i < nf; i++) {
		struct flusher *f = &s->flushers[i];
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
		f->srv = s;
		f->idx = i;
		f->epfd = epoll_create1(EPOLL_CLOEXEC);
		f->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (f->epfd < 0 || f->evfd < 0 ||
		    epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->evfd, &ev) != 0) {
			rc = RD_ERR_SYSTEM;
			RD_LOG(RD_LOG_ERROR, "cannot set up flusher %u: %s", i, strerror(errno));
			goto flusher_fail;
		}
		pthread_mutex_init(&f->mtx, NULL);
		if (pthread_create(&f->th, NULL, flusher_main, f) != 0) {
			rc = RD_ERR_SYSTEM;
			pthread_mutex_destroy(&f->mtx);
			goto flusher_fail;
		}
		s->nflushers = i + 1;
		continue;
	flusher_fail:
		if (f->epfd >= 0)
			close(f->epfd);
		if (f->evfd >= 0)
			close(f->evfd);
		goto fail;
	}
	/* one descriptor kept in reserve: at the descriptor limit it is given up to accept a
	 * connection and tell it ERROR 205 (see accept_main) */
	s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (pthread_create(&s->timer_th, NULL, timer_main, s) != 0) {
		rc = RD_ERR_SYSTEM;
		goto fail;
	}
	s->timer_started = 1;
	if (pthread_create(&s->accept_th, NULL, accept_main, s) != 0) {
		rc = RD_ERR_SYSTEM;
		goto fail;
	}
	s->accept_started = 1;
	s->started = 1;
	RD_LOG(RD_LOG_INFO, "listening on %s:%u with %zu rooms", s->cfg.host, s->bound_port,
	       s->nrooms);
	return 0;
fail:
	s->started = 1; /* let stop() clean up what was started */
	rd_server_stop(s, NULL, 0);
	return rc;
}

uint16_t rd_server_port(const struct rd_server *s) { return s->bound_port; }

static void shutdown_all(struct rd_server *s, const char *reason, int polite)
{
	struct rd_client **v = NULL;
	size_t k = 0;
	pthread_mutex_lock(&s->clients_mtx);
	v = malloc((s->nclients ? s->nclients : 1) * sizeof(*v));
	if (v)
		for (struct rd_client *c = s->clients; c; c = c->next) {
			client_ref(c);
			v[k++] = c;
		}
	pthread_mutex_unlock(&s->clients_mtx);
	if (!v)
		return;
	for (size_t i = 0; i < k; i++) {
		if (polite) {
			struct rd_msg m;
			rd_msg_init(&m, RD_MSG_SHUTDOWN);
			m.u.bye.reason = rd_str_c(reason);
			rd_client_send_msg(v[i], &m, 0);
			begin_close(v[i], RD_PRESENCE_DISCONNECTED, "server shutting down");
		} else {
			client_kill(v[i], "server shutting down");
		}
		client_unref(v[i]);
	}
	free(v);
}

/* Wait up to timeout_ms for every connection thread to end: 1 when they all have. */
static int wait_live(struct rd_server *s, int timeout_ms)
{
	uint64_t until = rd_now_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	int done;
	pthread_mutex_lock(&s->live_mtx);
	while (s->live > 0)
		if (rd_cond_wait_until(&s->live_cv, &s->live_mtx, until) == RD_ERR_TIMEOUT)
			break;
	done = s->live == 0;
	pthread_mutex_unlock(&s->live_mtx);
	return done;
}

void rd_server_stop(struct rd_server *s, const char *reason, int timeout_ms)
{
	if (!s || !s->started || s->stopped)
		return;
	s->stopped = 1;
	atomic_store(&s->stopping, 1);
	emit(s, RD_EV_STOPPING, NULL, "", reason);
	if (s->lfd >= 0)
		shutdown(s->lfd, SHUT_RDWR);
	if (s->accept_started)
		pthread_join(s->accept_th, NULL);
	if (s->lfd >= 0) {
		close(s->lfd);
		s->lfd = -1;
	}
	if (s->nflushers) {
		shutdown_all(s, reason ? reason : "server shutting down", 1);
		if (!wait_live(s, timeout_ms > 0 ? timeout_ms : 0)) {
			shutdown_all(s, NULL, 0);
			/* Every socket is shut down now, so readers end once they leave whatever
			 * application hook holds them. They reference s: wait for all of them, however
			 * long, because freeing s under a running reader would be a use after free. */
			while (!wait_live(s, 5000)) {
				pthread_mutex_lock(&s->live_mtx);
				unsigned left = s->live;
				pthread_mutex_unlock(&s->live_mtx);
				RD_LOG(RD_LOG_WARN, "stopping: still waiting for %u connection threads",
				       left);
			}
		}
	}
	if (s->timer_started) {
		pthread_mutex_lock(&s->timer_mtx);
		s->timer_stop = 1;
		pthread_cond_broadcast(&s->timer_cv);
		pthread_mutex_unlock(&s->timer_mtx);
		pthread_join(s->timer_th, NULL);
	}
	for (unsigned i = 0; i < s->nflushers; i++) {
		struct flusher *f = &s->flushers[i];
		pthread_mutex_lock(&f->mtx);
		f->stop = 1;
		pthread_mutex_unlock(&f->mtx);
		wake_flusher(f);
		pthread_join(f->th, NULL);
	}
}

void rd_server_free(struct rd_server *s)
{
	if (!s)
		return;
	rd_server_stop(s, NULL, 0);
	/* any client still referenced now has no thread left to drop it */
	while (s->clients) {
		struct rd_client *c = s->clients;
		s->clients = c->next;
		client_unref(c);
	}
	for (unsigned i = 0; i < s->nflushers; i++) {
		struct flusher *f = &s->flushers[i];
		for (size_t j = 0; j < f->n; j++)
			client_unref(f->ready[j]);
		free(f->ready);
		close(f->epfd);
		close(f->evfd);
		pthread_mutex_destroy(&f->mtx);
	}
	free(s->flushers);
	if (s->reserve_fd >= 0)
		close(s->reserve_fd);
	for (size_t i = 0; i < s->nrooms; i++)
		free(s->rooms[i].members);
	free(s->rooms);
	pthread_mutex_destroy(&s->clients_mtx);
	pthread_mutex_destroy(&s->rooms_mtx);
	pthread_mutex_destroy(&s->live_mtx);
	pthread_cond_destroy(&s->live_cv);
	pthread_mutex_destroy(&s->timer_mtx);
	pthread_cond_destroy(&s->timer_cv);
	free(s);
}

/* ---- administration ------------------------------------------------------------------- */

int rd_server_clients(struct rd_server *s, struct rd_client_info **out, size_t *n)
{
	struct rd_client_info *v;
	size_t k = 0;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&s->clients_mtx);
	v = calloc(s->nclients ? s->nclients : 1, sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&s->clients_mtx);
		return RD_ERR_NOMEM;
	}
	pthread_mutex_lock(&s->rooms_mtx);
	for (struct rd_client *c = s->clients; c; c = c->next) {
		struct rd_client_info *i = &v[k++];
		i->id = c->id;
		copy_str(i->ip, sizeof(i->ip), c->ip);
		i->port = c->port;
		if (c->registered)
			copy_str(i->nick, sizeof(i->nick), c->nick);
		if (c->room)
			copy_str(i->room, sizeof(i->room), c->room->name);
		i->connected_ms = c->connected_ms;
		i->bytes_in = atomic_load(&c->bytes_in);
		i->bytes_out = atomic_load(&c->bytes_out);
		i->queued = atomic_load(&c->queued);
		pthread_mutex_lock(&c->mtx);
		i->last_msg_ms = c->last_msg_ms;
		copy_str(i->activity, sizeof(i->activity), c->activity);
		pthread_mutex_unlock(&c->mtx);
	}
	pthread_mutex_unlock(&s->rooms_mtx);
	pthread_mutex_unlock(&s->clients_mtx);
	/* the list is newest first: give it back by id */
	for (size_t i = 0; i < k / 2; i++) {
		struct rd_client_info t = v[i];
		v[i] = v[k - 1 - i];
		v[k - 1 - i] = t;
	}
	*out = v;
	*n = k;
	return 0;
}

int rd_server_kick(struct rd_server *s, const char *nick, const char *reason)
{
	struct rd_client *c;
	struct rd_msg m;
	char why[RD_REASON_MAX + 1];

	if (!nick)
		return RD_ERR_INVAL;
	c = get_by_nick(s, nick);
	if (!c)
		return RD_ERR_NOT_FOUND;
	copy_str(why, sizeof(why), reason && reason[0] ? reason : "no reason given");
	rd_msg_init(&m, RD_MSG_KICKED);
	copy_str(m.u.kicked.by, sizeof(m.u.kicked.by), "server");
	m.u.kicked.reason = rd_str_c(why);
	rd_client_send_msg(c, &m, 0);
	begin_close(c, RD_PRESENCE_KICKED, why);
	client_unref(c);
	return 0;
}

int rd_server_broadcast(struct rd_server *s, uint8_t scope, const char *target,
			const char *text, unsigned *delivered)
{
	struct rd_msg m;
	unsigned n = 0;
	int rc = 0;

	if (delivered)
		*delivered = 0;
	if (!text || strlen(text) > RD_TEXT_MAX)
		return RD_ERR_INVAL;
	rd_msg_init(&m, RD_MSG_BROADCAST);
	m.u.broadcast.scope = scope;
	m.u.broadcast.time_ms = rd_now_wall_ms();
	m.u.broadcast.text = rd_str_c(text);
	switch (scope) {
	case RD_SCOPE_ALL:
		n = announce(s, NULL, NULL, &m);
		break;
	case RD_SCOPE_ROOM: {
		struct rd_room *r = target ? room_find(s, target) : NULL;
		if (!r)
			return RD_ERR_NOT_FOUND;
		copy_str(m.u.broadcast.target, sizeof(m.u.broadcast.target), r->name);
		n = announce(s, r, NULL, &m);
		break;
	}
	case RD_SCOPE_USER: {
		struct rd_client *c = target ? get_by_nick(s, target) : NULL;
		if (!c)
			return RD_ERR_NOT_FOUND;
		copy_str(m.u.broadcast.target, sizeof(m.u.broadcast.target), c->nick);
		rc = rd_client_send_msg(c, &m, 0);
		n = rc == 0;
		client_unref(c);
		break;
	}
	default:
		return RD_ERR_INVAL;
	}
	if (delivered)
		*delivered = n;
	emit(s, RD_EV_BROADCAST, NULL, scope == RD_SCOPE_ROOM ? target : "", text);
	return rc;
}

int rd_server_rooms(struct rd_server *s, struct rd_room_entry **out, size_t *n)
{
	struct rd_room_entry *v = calloc(s->nrooms, sizeof(*v));
	*out = NULL;
	*n = 0;
	if (!v)
		return RD_ERR_NOMEM;
	pthread_mutex_lock(&s->rooms_mtx);
	for (size_t i = 0; i < s->nrooms; i++) {
		memcpy(v[i].name, s->rooms[i].name, sizeof(v[i].name));
		v[i].members = (uint32_t)s->rooms[i].n;
	}
	pthread_mutex_unlock(&s->rooms_mtx);
	*out = v;
	*n = s->nrooms;
	return 0;
}

void rd_server_post_event(struct rd_server *s, const struct rd_event *ev)
{
	if (s->hooks.on_event && ev)
		s->hooks.on_event(s, ev, s->hooks.user);
}

void rd_server_stats(struct rd_server *s, struct rd_server_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&s->clients_mtx);
	st->clients = s->nclients;
	st->registered = s->nregistered;
	pthread_mutex_unlock(&s->clients_mtx);
	st->rooms = (unsigned)s->nrooms;
	st->bytes_in = atomic_load(&s->bytes_in);
	st->bytes_out = atomic_load(&s->bytes_out);
}

/* ---- client accessors ------------------------------------------------------------------ */

uint32_t rd_client_id(const struct rd_client *c) { return c->id; }

void rd_client_nick(struct rd_client *c, char *out) { copy_str(out, RD_NICK_BUF, c->nick); }

void rd_client_room(struct rd_client *c, char *out)
{
	pthread_mutex_lock(&c->srv->rooms_mtx);
	copy_str(out, RD_ROOM_BUF, c->room ? c->room->name : "");
	pthread_mutex_unlock(&c->srv->rooms_mtx);
}

void *rd_client_app_data(const struct rd_client *c) { return c->app_data; }

void rd_client_set_app_data(struct rd_client *c, void *p) { c->app_data = p; }

void rd_client_set_activity(struct rd_client *c, const char *text)
{
	pthread_mutex_lock(&c->mtx);
	copy_str(c->activity, sizeof(c->activity), text);
	pthread_mutex_unlock(&c->mtx);
	emit(c->srv, RD_EV_ACTIVITY, c, "", text);
}
