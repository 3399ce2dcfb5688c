/* rd_link.c - one connection: transport, frame reader, output queue (see rd_link.h).
 *
 * Locks (order: out_mtx -> io; never the other way):
 *   io       every call on the transport (an SSL object must not be used by two threads
 *            at once). Held only for the call itself, never while polling.
 *   out_mtx  the queues (evq, bulkq), state, dead/closing/shut, stream_wanted; out_cv is
 *            signalled when bulk room appears, when the writer goes idle and on death.
 * The write buffer w belongs to the writer while state is not IDLE: the flusher (state
 * SCHEDULED or WAITING) or a stream (state STREAM). The frame reader belongs to the reader
 * thread.
 */
#include "rd_link.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "rd_buf.h"
#include "rd_err.h"
#include "rd_net.h"
#include "rd_proto.h"

#define READ_CHUNK (64u * 1024u)    /* largest single transport read */
#define READ_BUDGET (256u * 1024u)  /* rd_link_read_available: socket bytes per call */
#define STREAM_CHUNK (256u * 1024u) /* file bytes read per TLS write in a stream */
#define KEEP_BUF_MAX (64u * 1024u)  /* a drained write buffer larger than this is freed */
#define BULK_BATCH (256u * 1024u)   /* bulk bytes the writer takes at a time */

enum {
	L_IDLE = 0,
	L_SCHEDULED,
	L_WAITING,
	L_STREAM
};

struct rd_link {
	struct rd_tls_conn *t;
	int fd;
	int cancel_fd; /* readable = stop waiting (rd_link_set_cancel_fd), -1 = none */
	struct rd_link_config cfg;
	pthread_mutex_t io;

	struct rd_frame_reader *r; /* the reader thread's */

	pthread_mutex_t out_mtx;
	pthread_cond_t out_cv;
	struct rd_buf evq, bulkq;
	struct rd_buf w;
	int state;
	int stream_wanted;
	int dead, closing, shut;
	atomic_size_t queued;
	atomic_uint_fast64_t bytes_in, bytes_out;
	char reason[200];
};

int rd_link_new(struct rd_tls_conn *t, const struct rd_link_config *cfg, struct rd_link **out)
{
	struct rd_link *l;
	int rc;

	*out = NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		rd_tls_conn_close(t);
		return RD_ERR_NOMEM;
	}
	if (cfg)
		l->cfg = *cfg;
	if (l->cfg.event_limit == 0)
		l->cfg.event_limit = 8u << 20;
	if (l->cfg.bulk_high == 0)
		l->cfg.bulk_high = 1u << 20;
	if (l->cfg.bulk_low == 0 || l->cfg.bulk_low >= l->cfg.bulk_high)
		l->cfg.bulk_low = l->cfg.bulk_high / 4;
	if ((rc = rd_frame_reader_new(l->cfg.max_payload, &l->r)) != 0) {
		rd_tls_conn_close(t);
		free(l);
		return rc;
	}
	l->t = t;
	l->fd = rd_tls_conn_fd(t);
	l->cancel_fd = -1;
	pthread_mutex_init(&l->io, NULL);
	pthread_mutex_init(&l->out_mtx, NULL);
	rd_cond_init_mono(&l->out_cv);
	rd_buf_init(&l->evq, 0);
	rd_buf_init(&l->bulkq, 0);
	rd_buf_init(&l->w, 0);
	*out = l;
	return 0;
}

void rd_link_free(struct rd_link *l)
{
	if (l == NULL)
		return;
	rd_tls_conn_close(l->t);
	rd_frame_reader_free(l->r);
	rd_buf_free(&l->evq);
	rd_buf_free(&l->bulkq);
	rd_buf_free(&l->w);
	pthread_mutex_destroy(&l->io);
	pthread_mutex_destroy(&l->out_mtx);
	pthread_cond_destroy(&l->out_cv);
	free(l);
}

int rd_link_fd(const struct rd_link *l)
{
	return l->fd;
}

int rd_link_is_tls(const struct rd_link *l)
{
	return rd_tls_conn_is_tls(l->t);
}

int rd_link_peer_fp(struct rd_link *l, uint8_t fp[RD_TLS_FP_LEN])
{
	int rc;
	pthread_mutex_lock(&l->io);
	rc = rd_tls_conn_peer_fp(l->t, fp);
	pthread_mutex_unlock(&l->io);
	return rc;
}

const char *rd_link_reason(struct rd_link *l)
{
	const char *r;
	pthread_mutex_lock(&l->io);
	r = rd_tls_conn_reason(l->t);
	if (r && r[0])
		snprintf(l->reason, sizeof(l->reason), "%s", r);
	pthread_mutex_unlock(&l->io);
	return l->reason;
}

enum rd_tls_sniff rd_link_peer_spoke(struct rd_link *l)
{
	enum rd_tls_sniff s;
	pthread_mutex_lock(&l->io);
	s = rd_tls_conn_peer_spoke(l->t);
	pthread_mutex_unlock(&l->io);
	return s;
}

/* ---- waiting for the socket (no lock held) ---------------------------------------------- */

/* Milliseconds left until deadline (0 = none: -1 for poll). */
static int left_ms(uint64_t deadline)
{
	uint64_t now;
	if (deadline == 0)
		return -1;
	now = rd_now_mono_ms();
	if (now >= deadline)
		return 0;
	return (int)RD_MIN(deadline - now, (uint64_t)INT32_MAX);
}

/* Wait until l's socket is ready for want: 0, RD_ERR_TIMEOUT, RD_ERR_SYSTEM, or
 * RD_ERR_CANCELLED while the cancel descriptor is readable. */
static int wait_for(struct rd_link *l, enum rd_tls_want want, uint64_t deadline)
{
	struct pollfd p[2] = { { .fd = l->fd,
				 .events = want == RD_TLS_WANT_WRITE ? POLLOUT : POLLIN },
			       { .fd = l->cancel_fd, .events = POLLIN } };
	int n, ms;
	for (;;) {
		ms = left_ms(deadline);
		if (ms == 0)
			return RD_ERR_TIMEOUT;
		n = poll(p, l->cancel_fd >= 0 ? 2 : 1, ms);
		if (n > 0 && l->cancel_fd >= 0 && (p[1].revents & POLLIN))
			return RD_ERR_CANCELLED;
		if (n > 0 && p[0].revents)
			return 0;
		if (n < 0 && errno != EINTR)
			return RD_ERR_SYSTEM;
	}
}

void rd_link_set_cancel_fd(struct rd_link *l, int fd)
{
	l->cancel_fd = fd;
}

/* 0 = no deadline; a timeout of 0 is "now": a call looks at what the socket has and
 * does not wait (an event loop calls rd_conn_poll(c, 0) once per turn: a 1 ms sleep there
 * capped a direct link at one frame per millisecond). */
static uint64_t deadline_in(int timeout_ms)
{
	uint64_t now;
	if (timeout_ms < 0)
		return 0;
	now = rd_now_mono_ms();
	return now + (uint64_t)timeout_ms + (now == 0); /* never 0, which means "no deadline" */
}

int rd_link_handshake(struct rd_link *l, int timeout_ms)
{
	uint64_t deadline = deadline_in(timeout_ms);
	enum rd_tls_want want;
	int rc;
	for (;;) {
		pthread_mutex_lock(&l->io);
		rc = rd_tls_conn_handshake(l->t, &want);
		pthread_mutex_unlock(&l->io);
		if (rc != 0 || want == RD_TLS_WANT_NONE)
			return rc;
		if ((rc = wait_for(l, want, deadline)) != 0)
			return rc;
	}
}

/* ---- input ------------------------------------------------------------------------------ */

/* One transport read into the frame reader: 0 with *got (maybe 0, then *want says what to
 * wait for), or an error (RD_ERR_CLOSED becomes RD_ERR_MALFORMED inside a frame). */
static int read_once(struct rd_link *l, size_t *got, enum rd_tls_want *want)
{
	uint8_t *p;
	size_t avail;
	int rc;

	*got = 0;
	*want = RD_TLS_WANT_NONE;
	if ((rc = rd_frame_reader_space(l->r, READ_CHUNK, &p, &avail)) != 0)
		return rc;
	pthread_mutex_lock(&l->io);
	rc = rd_tls_conn_read(l->t, p, RD_MIN(avail, (size_t)READ_CHUNK), got);
	if (rc == 0 && *got == 0)
		*want = rd_tls_conn_want(l->t);
	pthread_mutex_unlock(&l->io);
	if (rc == RD_ERR_CLOSED)
		return rd_frame_reader_pending(l->r) ? RD_ERR_MALFORMED : RD_ERR_CLOSED;
	if (rc != 0)
		return rc;
	if (*got) {
		rd_frame_reader_commit(l->r, *got);
		atomic_fetch_add(&l->bytes_in, *got);
	}
	return 0;
}

int rd_link_next(struct rd_link *l, struct rd_frame *f)
{
	return rd_frame_reader_next(l->r, f);
}

int rd_link_read_available(struct rd_link *l)
{
	size_t got, total = 0;
	enum rd_tls_want want;
	int rc;
	/* Up to READ_BUDGET from the socket per call (and whatever TLS holds already): an
	 * event loop that woke on the first bytes of a burst takes the rest of it now rather
	 * than in one wake-up per record. */
	do {
		rc = read_once(l, &got, &want);
		total += got;
	} while (rc == 0 && got > 0 && (total < READ_BUDGET || rd_link_input_buffered(l)));
	return rc;
}

int rd_link_input_buffered(struct rd_link *l)
{
	size_t n;
	pthread_mutex_lock(&l->io);
	n = rd_tls_conn_pending(l->t);
	pthread_mutex_unlock(&l->io);
	return n > 0;
}

int rd_link_frame_ready(struct rd_link *l)
{
	return rd_frame_reader_ready(l->r) || rd_link_input_buffered(l);
}

int rd_link_recv(struct rd_link *l, int timeout_ms, struct rd_frame *f)
{
	uint64_t deadline = deadline_in(timeout_ms);
	enum rd_tls_want want;
	size_t got;
	int rc;

	memset(f, 0, sizeof(*f));
	for (;;) {
		rc = rd_frame_reader_next(l->r, f);
		if (rc != RD_ERR_INCOMPLETE)
			return rc;
		if ((rc = read_once(l, &got, &want)) != 0)
			return rc;
		if (got)
			continue;
		/* about to wait: an idle reader holds no memory meanwhile */
		if (rd_frame_reader_pending(l->r) == 0)
			rd_frame_reader_trim(l->r);
		if ((rc = wait_for(l, want, deadline)) != 0)
			return rc;
	}
}

int rd_link_drain(struct rd_link *l, int timeout_ms)
{
	uint64_t deadline = deadline_in(timeout_ms);
	uint8_t sink[4096];
	enum rd_tls_want want;
	size_t got;
	int rc;
	for (;;) {
		pthread_mutex_lock(&l->io);
		rc = rd_tls_conn_read(l->t, sink, sizeof(sink), &got);
		want = rc == 0 && got == 0 ? rd_tls_conn_want(l->t) : RD_TLS_WANT_NONE;
		pthread_mutex_unlock(&l->io);
		if (rc == RD_ERR_CLOSED)
			return 0;
		if (rc != 0)
			return rc;
		if (got == 0 && (rc = wait_for(l, want, deadline)) != 0)
			return rc;
	}
}

void rd_link_set_max_payload(struct rd_link *l, uint32_t max_payload)
{
	rd_frame_reader_set_max(l->r, max_payload);
}

void rd_link_trim(struct rd_link *l)
{
	if (rd_frame_reader_pending(l->r) == 0)
		rd_frame_reader_trim(l->r);
}

/* ---- output ----------------------------------------------------------------------------- */

/* out_mtx held: mark the link as needing a flush if it was idle. */
static int want_flush_locked(struct rd_link *l)
{
	if (l->state != L_IDLE || l->stream_wanted || l->dead)
		return 0;
	l->state = L_SCHEDULED;
	return 1;
}

int rd_link_queue(struct rd_link *l, enum rd_link_class cls, const void *p, size_t n, int *schedule)
{
	int rc = 0, s = 0;

	pthread_mutex_lock(&l->out_mtx);
	if (l->dead || l->closing) {
		rc = RD_ERR_CLOSED;
	} else if (cls == RD_LINK_EVENT) {
		if (rd_buf_avail(&l->evq) + n > l->cfg.event_limit)
			rc = RD_ERR_FULL;
		else if ((rc = rd_buf_put(&l->evq, p, n)) == 0)
			s = want_flush_locked(l);
	} else {
		if (rd_buf_avail(&l->bulkq) >= l->cfg.bulk_high)
			rc = RD_ERR_AGAIN;
		else if ((rc = rd_buf_put(&l->bulkq, p, n)) == 0)
			s = want_flush_locked(l);
	}
	if (rc == 0)
		atomic_fetch_add(&l->queued, n);
	pthread_mutex_unlock(&l->out_mtx);
	if (schedule)
		*schedule = s;
	return rc;
}

int rd_link_wait_bulk(struct rd_link *l, uint64_t deadline_ms)
{
	int rc = 0;
	pthread_mutex_lock(&l->out_mtx);
	while (!l->dead && !l->closing && rd_buf_avail(&l->bulkq) >= l->cfg.bulk_low)
		if (rd_cond_wait_until(&l->out_cv, &l->out_mtx, deadline_ms) == RD_ERR_TIMEOUT) {
			rc = RD_ERR_TIMEOUT;
			break;
		}
	if (l->dead || l->closing)
		rc = RD_ERR_CLOSED;
	else if (rd_buf_avail(&l->bulkq) < l->cfg.bulk_low)
		rc = 0;
	pthread_mutex_unlock(&l->out_mtx);
	return rc;
}

static void release_buf(struct rd_buf *b)
{
	if (b->cap > KEEP_BUF_MAX)
		rd_buf_free(b);
	else
		rd_buf_reset(b);
}

/* out_mtx held, w empty: move what goes next into w. Events first; bulk only when no
 * stream waits. Returns 1 if w has bytes now. */
static int refill_locked(struct rd_link *l)
{
	struct rd_buf t;
	if (rd_buf_avail(&l->evq)) {
		t = l->w;
		l->w = l->evq;
		l->evq = t;
		rd_buf_reset(&l->evq);
		return 1;
	}
	if (rd_buf_avail(&l->bulkq) && !l->stream_wanted) {
		size_t take = 0, avail = rd_buf_avail(&l->bulkq);
		const uint8_t *p = rd_buf_rptr(&l->bulkq);
		if (avail <= BULK_BATCH) {
			t = l->w;
			l->w = l->bulkq;
			l->bulkq = t;
			rd_buf_reset(&l->bulkq);
		} else {
			/* whole frames, about BULK_BATCH of them, so that an event queued now
			 * waits for at most that much bulk */
			while (take < avail && take < BULK_BATCH &&
			       avail - take >= RD_FRAME_HEADER_SIZE)
				take += RD_FRAME_HEADER_SIZE + rd_be32_get(p + take + 12);
			if (take == 0 || take > avail)
				take = avail; /* (cannot happen: bulk is queued in whole frames) */
			if (rd_buf_put(&l->w, p, take) != 0)
				return 0;
			l->bulkq.rpos += take;
		}
		pthread_cond_broadcast(&l->out_cv); /* bulk room */
		return 1;
	}
	return 0;
}

static void kill_locked(struct rd_link *l)
{
	if (!l->dead) {
		l->dead = 1;
		shutdown(l->fd, SHUT_RDWR);
	}
	pthread_cond_broadcast(&l->out_cv);
}

int rd_link_flush(struct rd_link *l, enum rd_tls_want *want)
{
	size_t put;
	int rc;

	*want = RD_TLS_WANT_NONE;
	for (;;) {
		pthread_mutex_lock(&l->out_mtx);
		if (l->dead) {
			l->state = L_IDLE;
			rd_buf_free(&l->w);
			rd_buf_free(&l->evq);
			rd_buf_free(&l->bulkq);
			atomic_store(&l->queued, 0);
			pthread_cond_broadcast(&l->out_cv);
			pthread_mutex_unlock(&l->out_mtx);
			return RD_ERR_CLOSED;
		}
		if (rd_buf_avail(&l->w) == 0 && !refill_locked(l)) {
			int shut = l->closing && !l->shut && !l->stream_wanted;
			l->state = L_IDLE;
			/* an idle link keeps no output memory */
			rd_buf_free(&l->w);
			rd_buf_free(&l->evq);
			if (rd_buf_avail(&l->bulkq) == 0) /* (kept for after a waiting stream) */
				rd_buf_free(&l->bulkq);
			if (shut)
				l->shut = 1;
			pthread_cond_broadcast(&l->out_cv);
			pthread_mutex_unlock(&l->out_mtx);
			if (shut)
				shutdown(l->fd, SHUT_WR);
			return 0;
		}
		l->state = L_SCHEDULED;
		pthread_mutex_unlock(&l->out_mtx);

		pthread_mutex_lock(&l->io);
		rc = rd_tls_conn_write(l->t, rd_buf_rptr(&l->w), rd_buf_avail(&l->w), &put);
		if (rc == 0 && put == 0)
			*want = rd_tls_conn_want(l->t);
		pthread_mutex_unlock(&l->io);
		if (rc != 0) {
			rd_link_kill(l);
			return rc;
		}
		if (put == 0) {
			pthread_mutex_lock(&l->out_mtx);
			l->state = L_WAITING;
			pthread_mutex_unlock(&l->out_mtx);
			if (*want == RD_TLS_WANT_NONE)
				*want = RD_TLS_WANT_WRITE;
			return 0;
		}
		l->w.rpos += put;
		atomic_fetch_sub(&l->queued, put);
		atomic_fetch_add(&l->bytes_out, put);
		if (rd_buf_avail(&l->w) == 0)
			release_buf(&l->w);
	}
}

/* Write all n bytes with the calling thread, polling without locks, until deadline. */
static int write_all(struct rd_link *l, const void *p, size_t n, uint64_t deadline)
{
	const uint8_t *b = p;
	enum rd_tls_want want;
	size_t put;
	int rc;
	while (n > 0) {
		pthread_mutex_lock(&l->io);
		rc = rd_tls_conn_write(l->t, b, n, &put);
		want = rc == 0 && put == 0 ? rd_tls_conn_want(l->t) : RD_TLS_WANT_NONE;
		pthread_mutex_unlock(&l->io);
		if (rc != 0)
			return rc;
		if (put == 0) {
			if ((rc = wait_for(l, want ? want : RD_TLS_WANT_WRITE, deadline)) != 0)
				return rc;
			continue;
		}
		atomic_fetch_add(&l->bytes_out, put);
		b += put;
		n -= put;
	}
	return 0;
}

/* len bytes of in_fd from off: sendfile on a plain link, read and write on TLS. */
static int write_file(struct rd_link *l, int in_fd, off_t off, size_t len, uint64_t deadline)
{
	uint8_t *buf;
	int rc = 0;

	if (!rd_link_is_tls(l)) {
		int ms = deadline ? left_ms(deadline) : -1;
		if (ms == 0)
			return RD_ERR_TIMEOUT;
		rc = rd_net_sendfile_all(l->fd, in_fd, off, len, ms);
		if (rc == 0)
			atomic_fetch_add(&l->bytes_out, len);
		return rc;
	}
	if ((buf = malloc(RD_MIN(len, (size_t)STREAM_CHUNK))) == NULL)
		return RD_ERR_NOMEM;
	while (len > 0 && rc == 0) {
		size_t n = RD_MIN(len, (size_t)STREAM_CHUNK);
		if ((rc = rd_pread_full(in_fd, buf, n, (uint64_t)off)) == 0 &&
		    (rc = write_all(l, buf, n, deadline)) == 0) {
			off += (off_t)n;
			len -= n;
		}
	}
	free(buf);
	return rc;
}

int rd_link_send_stream(struct rd_link *l, const void *prefix, size_t plen, int in_fd, off_t off,
			size_t len, int timeout_ms, int *schedule)
{
	uint64_t deadline = deadline_in(timeout_ms);
	struct rd_buf before;
	size_t nbefore;
	int rc = 0, s = 0;

	if (schedule)
		*schedule = 0;
	pthread_mutex_lock(&l->out_mtx);
	l->stream_wanted++;
	while (!l->dead && l->state != L_IDLE)
		if (rd_cond_wait_until(&l->out_cv, &l->out_mtx, deadline ? deadline : UINT64_MAX) ==
		    RD_ERR_TIMEOUT)
			break;
	l->stream_wanted--;
	if (l->dead || l->state != L_IDLE) {
		rc = l->dead ? RD_ERR_CLOSED : RD_ERR_TIMEOUT;
		pthread_mutex_unlock(&l->out_mtx);
		if (rc == RD_ERR_TIMEOUT)
			rd_link_kill(l);
		return rc;
	}
	l->state = L_STREAM;
	/* what was queued before the stream goes first, events then bulk */
	before = l->evq;
	rd_buf_init(&l->evq, 0);
	if (rd_buf_avail(&l->bulkq))
		rc = rd_buf_put(&before, rd_buf_rptr(&l->bulkq), rd_buf_avail(&l->bulkq));
	rd_buf_free(&l->bulkq);
	pthread_cond_broadcast(&l->out_cv);
	pthread_mutex_unlock(&l->out_mtx);

	nbefore = rd_buf_avail(&before);
	if (rc == 0 && nbefore)
		rc = write_all(l, rd_buf_rptr(&before), nbefore, deadline);
	if (rc == 0)
		atomic_fetch_sub(&l->queued, nbefore);
	rd_buf_free(&before);
	if (rc == 0 && plen)
		rc = write_all(l, prefix, plen, deadline);
	if (rc == 0 && len)
		rc = write_file(l, in_fd, off, len, deadline);

	pthread_mutex_lock(&l->out_mtx);
	l->state = L_IDLE;
	if (rc == 0 && (rd_buf_avail(&l->evq) || rd_buf_avail(&l->bulkq) || l->closing))
		s = want_flush_locked(l);
	pthread_cond_broadcast(&l->out_cv);
	pthread_mutex_unlock(&l->out_mtx);
	if (rc != 0)
		rd_link_kill(l);
	if (schedule)
		*schedule = s;
	return rc;
}

void rd_link_close_after_flush(struct rd_link *l, int *schedule)
{
	int s;
	pthread_mutex_lock(&l->out_mtx);
	l->closing = 1;
	s = want_flush_locked(l);
	pthread_cond_broadcast(&l->out_cv);
	pthread_mutex_unlock(&l->out_mtx);
	if (schedule)
		*schedule = s;
}

void rd_link_kill(struct rd_link *l)
{
	pthread_mutex_lock(&l->out_mtx);
	kill_locked(l);
	pthread_mutex_unlock(&l->out_mtx);
}

int rd_link_dead(struct rd_link *l)
{
	int d;
	pthread_mutex_lock(&l->out_mtx);
	d = l->dead;
	pthread_mutex_unlock(&l->out_mtx);
	return d;
}

size_t rd_link_queued(const struct rd_link *l)
{
	return atomic_load(&l->queued);
}

uint64_t rd_link_bytes_in(const struct rd_link *l)
{
	return atomic_load(&l->bytes_in);
}

uint64_t rd_link_bytes_out(const struct rd_link *l)
{
	return atomic_load(&l->bytes_out);
}
