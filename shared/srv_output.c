/* srv_output.c - output: the flushers that write every client's queued output (through
 * its link), replies and errors, file streams, and the polite close.
 */
#include "srv_internal.h"

/* Append clients (each holding a reference for the list) to a flusher's ready list under
 * one lock. Returns 1 when the caller must wake the flusher. If the list cannot grow, the
 * clients are killed and their references dropped rather than left unflushed. */
int srv_push_ready(struct flusher *f, struct rd_client *const *v, size_t n)
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
				rd_link_kill(v[i]->link);
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

void srv_wake_flusher(struct flusher *f)
{
	uint64_t one = 1;
	ssize_t r;
	do
		r = write(f->evfd, &one, sizeof(one));
	while (r < 0 && errno == EINTR);
}

/* Hand c to its flusher now (the link said it needs a flush). */
static void schedule(struct rd_client *c)
{
	srv_client_ref(c); /* the ready list's */
	if (srv_push_ready(c->fl, &c, 1))
		srv_wake_flusher(c->fl);
}

/* Write what c has queued; the flusher's only per-client routine. */
static void flush_client(struct rd_client *c)
{
	enum rd_tls_want want;
	struct epoll_event ev = { .data.ptr = c };
	int rc = rd_link_flush(c->link, &want);

	if (rc != 0) {
		srv_client_kill(c, rc == RD_ERR_CLOSED ? NULL : "connection lost");
		return;
	}
	if (want == RD_TLS_WANT_NONE)
		return;
	/* Registered only now, and always one-shot: the kernel reports EPOLLHUP/EPOLLERR even
	 * for an fd registered with no events, and every reported event must match the
	 * reference taken here. TLS may need the socket readable to go on writing. */
	ev.events = (want == RD_TLS_WANT_READ ? EPOLLIN : EPOLLOUT) | EPOLLONESHOT;
	srv_client_ref(c); /* held by the armed registration */
	int op = c->ep_added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	c->ep_added = 1;
	if (epoll_ctl(c->fl->epfd, op, c->fd, &ev) < 0) {
		srv_client_unref(c);
		srv_client_kill(c, "write error");
	}
}

void *srv_flusher_main(void *arg)
{
	struct flusher *f = arg;
	char name[16];
	struct epoll_event evs[64];
	struct rd_client **batch = NULL;
	size_t batch_cap = 0;

	snprintf(name, sizeof(name), "rd-flush%u", f->idx);
	pthread_setname_np(pthread_self(), name);
	size_t last_batch = 0;
	uint64_t prev_big_ns = 0; /* when the last batch of 32+ clients began (0 = never) */
	uint64_t slept_ns = 0;    /* how long the coalescing wait before it lasted */
	for (;;) {
		size_t nb = 0;
		int timeout = 0;

		/* Coalescing under load: after a large batch (a room fan-out in progress), let
		 * the next messages pile up briefly so each send() carries several frames. The
		 * server's CPU per delivery is almost all the kernel's work per send() (measured
		 * with perf), so this is the lever. At 1M deliveries/s to 1000 members, 10 ms
		 * instead of 5 took the server from 0.82-0.86 to 0.51-0.67 us per delivery in
		 * plaintext and from 0.99-1.02 to 0.71-0.78 over TLS, and p99 fell too (the
		 * receivers on the same two cores got the CPU back). Costs at most COALESCE_US
		 * of latency, and only under load: the last batch wrote to 32+ clients and so did
		 * the one before, less than COALESCE_BUSY_US earlier. A big fan-out at low load (one
		 * message now and then to a large room) goes out at once: waiting would gain
		 * nothing but latency. */
		if (last_batch >= COALESCE_MIN_BATCH) {
			uint64_t now = rd_now_mono_ns();
			/* (the time since the last big batch, less the wait before it) */
			int busy = prev_big_ns != 0 &&
				   now - prev_big_ns < COALESCE_BUSY_US * 1000u + slept_ns;

			prev_big_ns = now;
			slept_ns = 0;
			if (busy) {
				struct timespec ts = { 0, COALESCE_US * 1000L };
				nanosleep(&ts, NULL);
				slept_ns = rd_now_mono_ns() - now;
			}
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
			srv_client_unref(c);
		}
		for (size_t i = 0; i < nb; i++) {
			flush_client(batch[i]);
			srv_client_unref(batch[i]);
		}
		last_batch = nb;
	}
	free(batch);
	return NULL;
}

/* Queue bytes (one or more whole frames) to c as events. Never blocks. When this makes c
 * need a flush, *marked = 1 and a reference is taken for the caller, who must push c to
 * its flusher (schedule / srv_push_ready): fan-out pushes all of a message's recipients
 * under one lock per flusher. A client past its event bound is dropped as a slow reader. */
int srv_client_enqueue_defer(struct rd_client *c, const void *p, size_t n, int *marked)
{
	int rc = rd_link_queue(c->link, RD_LINK_EVENT, p, n, marked);
	if (rc == RD_ERR_FULL) {
		RD_LOG(RD_LOG_WARN, "client %u (%s) over its output bound: disconnecting", c->id,
		       c->nick);
		srv_client_kill(c, "slow reader");
	}
	if (*marked)
		srv_client_ref(c);
	return rc;
}

static int client_enqueue(struct rd_client *c, const void *p, size_t n)
{
	int marked;
	int rc = srv_client_enqueue_defer(c, p, n, &marked);
	if (marked) {
		if (srv_push_ready(c->fl, &c, 1))
			srv_wake_flusher(c->fl);
	}
	return rc;
}

/* Queue whole frames to c as events (never blocks); errors as srv_client_enqueue_defer. */
int srv_client_queue_event(struct rd_client *c, const void *p, size_t n)
{
	return client_enqueue(c, p, n);
}

static void note_relay_peak(struct rd_server *s, uint64_t queued)
{
	uint_fast64_t peak = atomic_load(&s->relay_peak);
	while (queued > peak && !atomic_compare_exchange_weak(&s->relay_peak, &peak, queued))
		;
}

/* How long one wait for bulk room lasts before the producer's own link is looked at. */
#define BULK_WAIT_SLICE_MS 100u

/* Queue whole frames to `to` in the bulk class (relayed data). While its bulk queue is at
 * its high watermark this waits, on the producer's thread (the producer's reader: nothing
 * more is read from it meanwhile, which is the push-back), until the writer brings the
 * queue under the low watermark. The wait ends early when `to` dies (RD_ERR_CLOSED), the
 * producer's own link dies or the server stops (RD_ERR_CANCELLED). While it waits, the
 * producer is spared the ping timeout: its PONG is unread because of the receiver, not
 * because of it (its ping clock restarts when the wait ends). 0 when queued. */
int srv_client_queue_bulk(struct rd_client *to, const void *p, size_t n, struct rd_client *producer)
{
	struct rd_server *s = to->srv;
	int rc, waited = 0;

	for (;;) {
		int sched = 0;
		rc = rd_link_queue(to->link, RD_LINK_BULK, p, n, &sched);
		if (sched)
			schedule(to);
		if (rc != RD_ERR_AGAIN)
			break;
		if (producer && !waited) {
			pthread_mutex_lock(&producer->mtx);
			producer->relay_wait_mono = rd_now_mono_ms();
			pthread_mutex_unlock(&producer->mtx);
		}
		waited = 1;
		rc = rd_link_wait_bulk(to->link, rd_now_mono_ms() + BULK_WAIT_SLICE_MS);
		if (rc == RD_ERR_CLOSED)
			break;
		if ((producer && rd_link_dead(producer->link)) || atomic_load(&s->stopping)) {
			rc = RD_ERR_CANCELLED;
			break;
		}
	}
	if (rc == 0)
		note_relay_peak(s, rd_link_queued(to->link));
	if (producer && waited) {
		pthread_mutex_lock(&producer->mtx);
		producer->relay_wait_mono = 0;
		if (producer->ping_outstanding)
			producer->ping_sent_mono = rd_now_mono_ms();
		pthread_mutex_unlock(&producer->mtx);
	}
	return rc;
}

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

int srv_send_ok(struct rd_client *c, uint32_t req_id, uint16_t for_type)
{
	struct rd_msg m;
	if (req_id == 0)
		return 0;
	rd_msg_init(&m, RD_MSG_OK);
	m.u.ok.for_type = for_type;
	return rd_client_send_msg(c, &m, req_id);
}

int rd_client_send_file(struct rd_client *c, const void *prefix, size_t plen, int in_fd, off_t off,
			size_t len, int timeout_ms)
{
	int sched = 0;
	int rc = rd_link_send_stream(c->link, prefix, plen, in_fd, off, len, timeout_ms, &sched);
	if (sched)
		schedule(c);
	if (rc != 0)
		srv_client_kill(c, rc == RD_ERR_TIMEOUT ? "slow reader" : "connection lost");
	return rc;
}

void srv_begin_close(struct rd_client *c, uint8_t departure, const char *reason)
{
	int sched;
	pthread_mutex_lock(&c->mtx);
	if (!c->departure)
		c->departure = departure;
	if (reason && !c->reason[0])
		srv_copy_str(c->reason, sizeof(c->reason), reason);
	if (!c->force_close_mono)
		c->force_close_mono = rd_now_mono_ms() + CLOSE_GRACE_MS;
	pthread_mutex_unlock(&c->mtx);
	rd_link_close_after_flush(c->link, &sched);
	if (sched)
		schedule(c);
}
