/* sink.c - the writing side of a download, on a thread of its own (sink.h).
 *
 * A ring of SINK_SLOTS buffers: the receiving thread fills the slot at `head`, the writer
 * empties the one at `tail`. One mutex guards the indexes and the error; the copying,
 * hashing and writing happen outside it, each slot owned by one side at a time.
 */
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "rd_err.h"
#include "rd_net.h"

#define SINK_SLOTS 16u                         /* 4 MiB in flight */
#define SINK_FLUSH_EVERY (16u * 1024u * 1024u) /* writeback window */
#define SINK_ALIGN 4096u                       /* O_DIRECT: buffers, offsets, lengths */

struct sink_slot {
	uint8_t *data;
	size_t n;
};

struct sink {
	int fd, seekable;
	int direct;            /* writer: the fd has O_DIRECT (see sink_start) */
	uint64_t pos;          /* writer: where the next byte goes */
	uint64_t window_start; /* writer: first byte not yet handed to writeback */
	uint64_t prev_window;  /* writer: start of the window handed over last */
	struct rd_sha256 *h;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a slot was filled or emptied, or the sink is closing */
	struct sink_slot slot[SINK_SLOTS];
	unsigned head, tail, count; /* guarded by mu */
	int closing;                /* guarded by mu: no more pushes */
	int err, err_errno;         /* guarded by mu: the writer's first error */
};

static int write_all(struct sink *s, const uint8_t *p, size_t n)
{
	ssize_t w;

	if (s->seekable) {
		if (rd_pwrite_full(s->fd, p, n, s->pos) != 0)
			return RD_ERR_SYSTEM;
		s->pos += n;
		return 0;
	}
	while (n > 0) {
		w = write(s->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return RD_ERR_SYSTEM;
		p += w;
		n -= (size_t)w;
		s->pos += (uint64_t)w;
	}
	return 0;
}

static void direct_off(struct sink *s)
{
	int fl = fcntl(s->fd, F_GETFL);

	if (fl >= 0)
		(void)fcntl(s->fd, F_SETFL, fl & ~O_DIRECT);
	s->direct = 0;
}

/* Write k slots from `first` (consecutive in the ring) in one call when it can. */
static int write_slots(struct sink *s, unsigned first, unsigned k)
{
	struct iovec iov[SINK_SLOTS];
	size_t total = 0;
	ssize_t w;

	for (unsigned i = 0; i < k; i++) {
		iov[i].iov_base = s->slot[first + i].data;
		iov[i].iov_len = s->slot[first + i].n;
		total += iov[i].iov_len;
		if (s->direct && iov[i].iov_len % SINK_ALIGN != 0)
			direct_off(s); /* the last, short chunk: the page cache takes it */
	}
	if (s->seekable) {
		do
			w = pwritev(s->fd, iov, (int)k, (off_t)s->pos);
		while (w < 0 && errno == EINTR);
		if (w < 0 && errno == EINVAL && s->direct) {
			direct_off(s); /* the file system refuses direct writes after all */
			w = 0;
		}
		if (w < 0)
			return RD_ERR_SYSTEM;
		s->pos += (uint64_t)w;
		if ((size_t)w == total)
			return 0;
		/* short: finish slot by slot from where it stopped */
		for (unsigned i = 0; i < k; i++) {
			size_t len = iov[i].iov_len;
			int rc;

			if ((size_t)w >= len) {
				w -= (ssize_t)len;
				continue;
			}
			if (s->direct)
				direct_off(s);
			if ((rc = write_all(s, (uint8_t *)iov[i].iov_base + w, len - (size_t)w)) !=
			    0)
				return rc;
			w = 0;
		}
		return 0;
	}
	for (unsigned i = 0; i < k; i++) {
		int rc = write_all(s, iov[i].iov_base, iov[i].iov_len);

		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Start writing back the window just filled, and wait for the one before it: the disk
 * works while the network does, and a download keeps at most two windows dirty. Failures
 * here are not errors: the fsync at the end reports what the disk refused. */
static void writeback(struct sink *s)
{
	if (!s->seekable || s->direct || s->pos - s->window_start < SINK_FLUSH_EVERY)
		return;
	(void)sync_file_range(s->fd, (off_t)s->window_start, (off_t)(s->pos - s->window_start),
			      SYNC_FILE_RANGE_WRITE);
	if (s->prev_window < s->window_start)
		(void)sync_file_range(s->fd, (off_t)s->prev_window,
				      (off_t)(s->window_start - s->prev_window),
				      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
					      SYNC_FILE_RANGE_WAIT_AFTER);
	s->prev_window = s->window_start;
	s->window_start = s->pos;
}

static void *sink_main(void *arg)
{
	struct sink *s = arg;
	unsigned first, k;
	int rc = 0;

	for (;;) {
		pthread_mutex_lock(&s->mu);
		while (s->count == 0 && !s->closing)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->count == 0) { /* closing and drained */
			pthread_mutex_unlock(&s->mu);
			return NULL;
		}
		/* every filled slot up to the end of the ring, in one write */
		first = s->tail;
		k = s->count < SINK_SLOTS - first ? s->count : SINK_SLOTS - first;
		pthread_mutex_unlock(&s->mu);

		for (unsigned i = 0; rc == 0 && s->h != NULL && i < k; i++)
			rc = rd_sha256_update(s->h, s->slot[first + i].data, s->slot[first + i].n);
		if (rc == 0 && (rc = write_slots(s, first, k)) == 0)
			writeback(s);

		pthread_mutex_lock(&s->mu);
		if (rc != 0 && s->err == 0) {
			s->err = rc;
			s->err_errno = errno;
		}
		s->tail = (s->tail + k) % SINK_SLOTS;
		s->count -= k;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
}

static void sink_free(struct sink *s)
{
	for (unsigned i = 0; i < SINK_SLOTS; i++)
		free(s->slot[i].data);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int sink_start(struct sink **out, int fd, enum sink_kind kind, uint64_t pos, struct rd_sha256 *h)
{
	struct sink *s;
	struct stat sb;
	sigset_t all, old;
	int rc;

	*out = NULL;
	if (!(s = calloc(1, sizeof(*s))))
		return RD_ERR_NOMEM;
	s->fd = fd;
	s->seekable = kind == SINK_FILE && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
	s->pos = s->window_start = s->prev_window = pos;
	s->h = h;
	pthread_mutex_init(&s->mu, NULL);
	if (rd_cond_init_mono(&s->cv) != 0) {
		pthread_mutex_destroy(&s->mu);
		free(s);
		return RD_ERR_SYSTEM;
	}
	for (unsigned i = 0; i < SINK_SLOTS; i++) {
		void *p = NULL;

		if (posix_memalign(&p, SINK_ALIGN, SINK_SLOT) != 0) {
			sink_free(s);
			return RD_ERR_NOMEM;
		}
		s->slot[i].data = p;
	}
	/* A long download from a block boundary goes around the page cache: no memory to
	 * fill (on some machines the costliest part of writing), no dirty pages to flush at
	 * the end. A file system without O_DIRECT keeps the page cache. */
	if (s->seekable && pos % SINK_ALIGN == 0) {
		int fl = fcntl(fd, F_GETFL);

		s->direct = fl >= 0 && fcntl(fd, F_SETFL, fl | O_DIRECT) == 0;
	}
	/* the writer takes no signal: they stay with the thread that polls (cli_stop is read
	 * there, and a handler run on this thread would race with it) */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&s->thread, NULL, sink_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		sink_free(s);
		return RD_ERR_SYSTEM;
	}
	*out = s;
	return 0;
}

int sink_push(struct sink *s, const void *p, size_t n)
{
	struct sink_slot *sl;
	int err;

	if (n > SINK_SLOT)
		return RD_ERR_INVAL;
	pthread_mutex_lock(&s->mu);
	while (s->count == SINK_SLOTS && s->err == 0)
		pthread_cond_wait(&s->cv, &s->mu);
	if ((err = s->err) != 0) {
		errno = s->err_errno;
		pthread_mutex_unlock(&s->mu);
		return err;
	}
	sl = &s->slot[s->head];
	pthread_mutex_unlock(&s->mu);

	/* the slot at head is ours until count says otherwise */
	memcpy(sl->data, p, n);
	sl->n = n;

	pthread_mutex_lock(&s->mu);
	s->head = (s->head + 1) % SINK_SLOTS;
	s->count++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return 0;
}

int sink_finish(struct sink *s)
{
	int err, saved;

	if (s == NULL)
		return 0;
	pthread_mutex_lock(&s->mu);
	s->closing = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	if (s->direct)
		direct_off(s);
	err = s->err;
	saved = s->err_errno;
	sink_free(s);
	if (err != 0)
		errno = saved;
	return err;
}
