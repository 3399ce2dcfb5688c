/* rd_frame.c - frame header codec, frame building, the incremental reader and blocking
 * frame I/O.
 *
 * Reader buffer: buf[start .. end) holds bytes not yet returned as frames. It is
 * allocated on first use, grown (after compaction) to hold the frame being received, and
 * bounded by max_payload + header + one read chunk; rd_frame_reader_trim frees it when
 * nothing is pending, and rd_frame_recv does so itself before it blocks in poll(), so an
 * idle connection holds no buffer at all. Compressed payloads are inflated into a
 * separate scratch buffer, also released by trim. The header decode and the path that
 * returns an uncompressed frame do not allocate.
 *
 * Errors other than RD_ERR_INCOMPLETE are sticky: a byte stream cannot be resynchronised
 * after a bad header or a corrupt payload.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "rd_buf.h"
#include "rd_err.h"
#include "rd_frame.h"
#include "rd_net.h"
#include "rd_proto.h"
#include "rd_zip.h"

#define HDR RD_FRAME_HEADER_SIZE
#define READ_CHUNK (64u * 1024u) /* largest single read() in rd_frame_recv */
#define READER_FIRST_ALLOC 4096u
#define FRAME_ZIP_MIN 32u /* below this, zlib cannot save 10% worth the work */
#define SEND_STACK 4096u  /* rd_frame_send builds frames up to this on the stack */

struct rd_frame_reader {
	uint8_t *buf;
	size_t cap;
	size_t start, end; /* pending bytes: buf[start .. end) */
	size_t limit;      /* cap never grows past this */
	uint32_t max_payload;
	int err;               /* sticky error, 0 if none */
	struct rd_buf scratch; /* inflated payload of the last compressed frame */
};

static const uint8_t empty_payload[1];

void rd_frame_hdr_encode(const struct rd_frame_hdr *h, uint8_t out[16])
{
	out[0] = RD_MAGIC0;
	out[1] = RD_MAGIC1;
	out[2] = RD_PROTO_VERSION;
	out[3] = (uint8_t)(h->flags & RD_FLAG_KNOWN_MASK);
	rd_be16_put(out + 4, h->type);
	out[6] = 0;
	out[7] = 0;
	rd_be32_put(out + 8, h->req_id);
	rd_be32_put(out + 12, h->len);
}

/* Checks on a possibly partial header, in the order rd_frame_hdr_decode makes them, so
 * garbage is refused as soon as its first bytes arrive. */
static int hdr_check_prefix(const uint8_t *p, size_t n)
{
	if (n >= 1 && p[0] != RD_MAGIC0)
		return RD_ERR_BAD_MAGIC;
	if (n >= 2 && p[1] != RD_MAGIC1)
		return RD_ERR_BAD_MAGIC;
	if (n >= 3 && p[2] != RD_PROTO_VERSION)
		return RD_ERR_BAD_VERSION;
	return 0;
}

int rd_frame_hdr_decode(const uint8_t *p, size_t n, uint32_t max_payload, struct rd_frame_hdr *h)
{
	memset(h, 0, sizeof(*h));
	if (n < HDR)
		return RD_ERR_INCOMPLETE;
	if (p[0] != RD_MAGIC0 || p[1] != RD_MAGIC1)
		return RD_ERR_BAD_MAGIC;
	if (p[2] != RD_PROTO_VERSION)
		return RD_ERR_BAD_VERSION;
	h->len = rd_be32_get(p + 12);
	if (h->len > max_payload) {
		h->len = 0;
		return RD_ERR_TOO_BIG;
	}
	h->version = p[2];
	h->flags = (uint8_t)(p[3] & RD_FLAG_KNOWN_MASK);
	h->type = rd_be16_get(p + 4);
	h->req_id = rd_be32_get(p + 8);
	return 0;
}

int rd_frame_append(struct rd_buf *out, uint16_t type, uint32_t req_id, const void *payload,
		    size_t n, unsigned opts)
{
	struct rd_frame_hdr h = { .type = type, .req_id = req_id };
	size_t hoff = out->len;
	uint8_t *hp;
	int rc, used = 0;

	if (n > RD_MAX_PAYLOAD_HARD)
		return RD_ERR_TOO_BIG;
	if (payload == NULL && n != 0)
		return RD_ERR_INVAL;
	if ((opts & RD_FRAME_COMPRESS) && n >= FRAME_ZIP_MIN) {
		if ((rc = rd_buf_reserve(out, HDR)) != 0)
			goto out;
		out->len += HDR;
		/* Compress straight behind the header: no intermediate copy. */
		if ((rc = rd_zip_compress(payload, n, RD_ZIP_LEVEL_DEFAULT, out, &used)) != 0)
			goto out;
		if (used) {
			h.flags = RD_FLAG_COMPRESSED;
			h.len = (uint32_t)(out->len - hoff - HDR);
		} else {
			out->len = hoff;
		}
	}
	if (!used) {
		if ((rc = rd_buf_reserve(out, HDR + n)) != 0)
			goto out;
		if (n > 0)
			memcpy(out->data + hoff + HDR, payload, n);
		out->len = hoff + HDR + n;
		h.len = (uint32_t)n;
	}
	hp = out->data + hoff; /* after any reallocation */
	rd_frame_hdr_encode(&h, hp);
	rc = 0;
out:
	if (rc != 0)
		out->len = hoff;
	return rc;
}

int rd_frame_open(const struct rd_frame_hdr *h, const uint8_t *p, size_t n, uint32_t max_payload,
		  struct rd_buf *scratch, struct rd_frame *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (n != h->len)
		return RD_ERR_MALFORMED;
	if (!(h->flags & RD_FLAG_COMPRESSED)) {
		out->hdr = *h;
		out->payload = n > 0 ? p : empty_payload;
		out->len = n;
		return 0;
	}
	rd_buf_reset(scratch);
	rc = rd_zip_decompress(p, n, max_payload, scratch);
	if (rc == RD_ERR_MALFORMED)
		rc = RD_ERR_ZLIB; /* shorter than the length prefix: corrupt compressed data */
	if (rc != 0)
		return rc;
	out->hdr = *h;
	out->payload = scratch->len > 0 ? scratch->data : empty_payload;
	out->len = scratch->len;
	return 0;
}

/* ---- incremental reader -------------------------------------------------------------- */

int rd_frame_reader_new(uint32_t max_payload, struct rd_frame_reader **out)
{
	struct rd_frame_reader *r;

	*out = NULL;
	/* 0 means the default; nothing goes past the hard limit. */
	if (max_payload == 0)
		max_payload = RD_MAX_PAYLOAD_DEFAULT;
	if (max_payload > RD_MAX_PAYLOAD_HARD)
		max_payload = RD_MAX_PAYLOAD_HARD;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return RD_ERR_NOMEM;
	rd_buf_init(&r->scratch, max_payload);
	rd_frame_reader_set_max(r, max_payload);
	*out = r;
	return 0;
}

void rd_frame_reader_set_max(struct rd_frame_reader *r, uint32_t max_payload)
{
	if (max_payload == 0)
		max_payload = RD_MAX_PAYLOAD_DEFAULT;
	if (max_payload > RD_MAX_PAYLOAD_HARD)
		max_payload = RD_MAX_PAYLOAD_HARD;
	r->max_payload = max_payload;
	r->limit = (size_t)max_payload + 2 * HDR + READ_CHUNK;
	r->scratch.max = max_payload;
}

void rd_frame_reader_free(struct rd_frame_reader *r)
{
	if (r == NULL)
		return;
	free(r->buf);
	rd_buf_free(&r->scratch);
	free(r);
}

size_t rd_frame_reader_pending(const struct rd_frame_reader *r)
{
	return r->end - r->start;
}

int rd_frame_reader_ready(const struct rd_frame_reader *r)
{
	size_t n = r->end - r->start;

	if (r->err)
		return 1;
	if (n < HDR)
		return n > 0 && hdr_check_prefix(r->buf + r->start, n) != 0;
	return (uint64_t)n >= (uint64_t)HDR + rd_be32_get(r->buf + r->start + 12);
}

void rd_frame_reader_trim(struct rd_frame_reader *r)
{
	rd_buf_free(&r->scratch);
	if (r->end != r->start)
		return;
	free(r->buf);
	r->buf = NULL;
	r->cap = 0;
	r->start = 0;
	r->end = 0;
}

/* Total size (header + payload) of the frame at the front, or 0 if not yet known. */
static size_t front_frame_size(const struct rd_frame_reader *r)
{
	uint32_t len;

	if (r->end - r->start < HDR)
		return 0;
	len = rd_be32_get(r->buf + r->start + 12);
	if (len > r->max_payload)
		return 0;
	return HDR + (size_t)len;
}

int rd_frame_reader_space(struct rd_frame_reader *r, size_t want, uint8_t **p, size_t *avail)
{
	size_t pending, target, ncap;
	uint8_t *nb;

	*p = NULL;
	*avail = 0;
	if (r->err != 0)
		return r->err;
	if (want == 0)
		want = 1;
	pending = r->end - r->start;
	if (want > r->limit - pending)
		return RD_ERR_TOO_BIG;
	if (r->cap - r->end < want) {
		/* Compact first: cheap when little is pending, which is the common case. */
		if (r->start > 0) {
			if (pending > 0)
				memmove(r->buf, r->buf + r->start, pending);
			r->start = 0;
			r->end = pending;
		}
		if (r->cap - r->end < want) {
			/* Grow once to fit the frame being received, not piecewise. */
			target = RD_MAX(pending + want, front_frame_size(r));
			ncap = r->cap != 0 ? r->cap * 2 : READER_FIRST_ALLOC;
			ncap = RD_MIN(RD_MAX(ncap, target), r->limit);
			if ((nb = realloc(r->buf, ncap)) == NULL)
				return RD_ERR_NOMEM;
			r->buf = nb;
			r->cap = ncap;
		}
	}
	*p = r->buf + r->end;
	*avail = r->cap - r->end;
	return 0;
}

void rd_frame_reader_commit(struct rd_frame_reader *r, size_t n)
{
	if (n > r->cap - r->end)
		n = r->cap - r->end; /* a caller bug; never step past the buffer */
	r->end += n;
}

int rd_frame_reader_feed(struct rd_frame_reader *r, const void *p, size_t n)
{
	uint8_t *dst;
	size_t avail;
	int rc;

	if (r->err != 0)
		return r->err;
	if (n == 0)
		return 0;
	if ((rc = rd_frame_reader_space(r, n, &dst, &avail)) != 0)
		return rc;
	memcpy(dst, p, n);
	r->end += n;
	return 0;
}

int rd_frame_reader_next(struct rd_frame_reader *r, struct rd_frame *f)
{
	struct rd_frame_hdr h;
	const uint8_t *p;
	size_t pending;
	int rc;

	memset(f, 0, sizeof(*f));
	if (r->err != 0)
		return r->err;
	pending = r->end - r->start;
	if (pending == 0)
		return RD_ERR_INCOMPLETE; /* also: a fresh reader's buf is NULL, no offset on it */
	p = r->buf + r->start;
	if (pending < HDR) {
		if (pending > 0 && (rc = hdr_check_prefix(p, pending)) != 0)
			goto fatal;
		return RD_ERR_INCOMPLETE;
	}
	if ((rc = rd_frame_hdr_decode(p, pending, r->max_payload, &h)) != 0)
		goto fatal;
	if (pending - HDR < h.len)
		return RD_ERR_INCOMPLETE;
	if (RD_LIKELY(!(h.flags & RD_FLAG_COMPRESSED))) {
		f->hdr = h;
		f->payload = h.len > 0 ? p + HDR : empty_payload;
		f->len = h.len;
	} else if ((rc = rd_frame_open(&h, p + HDR, h.len, r->max_payload, &r->scratch, f)) != 0) {
		goto fatal;
	}
	r->start += HDR + h.len;
	if (r->start == r->end) {
		/* Drained: next bytes go to the front. The payload stays readable until the
		 * next call on the reader writes over it. */
		r->start = 0;
		r->end = 0;
	}
	return 0;
fatal:
	r->err = rc;
	return rc;
}

/* ---- blocking socket I/O ------------------------------------------------------------- */

/* poll() for input; 1 readable (or hung up: read() will tell), 0 timeout, or an error. */
static int wait_readable(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int n;

	do {
		n = poll(&pfd, 1, ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return RD_ERR_SYSTEM;
	return n > 0;
}

int rd_frame_recv(int fd, struct rd_frame_reader *r, int timeout_ms, struct rd_frame *f)
{
	uint64_t deadline = 0;
	uint8_t *p;
	size_t avail;
	ssize_t got;
	int rc, ms, ready;

	memset(f, 0, sizeof(*f));
	if (timeout_ms >= 0)
		deadline = rd_now_mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		rc = rd_frame_reader_next(r, f);
		if (rc != RD_ERR_INCOMPLETE)
			return rc;
		ready = 0;
		if (r->end == r->start && r->buf != NULL) {
			/* Nothing pending: if we would block, hold no memory while we do. */
			if ((ready = wait_readable(fd, 0)) < 0)
				return ready;
			if (!ready)
				rd_frame_reader_trim(r);
		}
		while (!ready) {
			ms = -1;
			if (timeout_ms >= 0) {
				uint64_t now = rd_now_mono_ms();

				if (now >= deadline)
					return RD_ERR_TIMEOUT;
				ms = (int)RD_MIN(deadline - now, (uint64_t)INT32_MAX);
			}
			if ((ready = wait_readable(fd, ms)) < 0)
				return ready;
			if (!ready && timeout_ms >= 0 && rd_now_mono_ms() >= deadline)
				return RD_ERR_TIMEOUT;
		}
		if ((rc = rd_frame_reader_space(r, READ_CHUNK, &p, &avail)) != 0)
			return rc;
		got = read(fd, p, RD_MIN(avail, (size_t)READ_CHUNK));
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			return RD_ERR_SYSTEM;
		}
		if (got == 0)
			return r->end == r->start ? RD_ERR_CLOSED : RD_ERR_MALFORMED;
		rd_frame_reader_commit(r, (size_t)got);
	}
}

int rd_frame_send(int fd, uint16_t type, uint32_t req_id, const void *payload, size_t n,
		  unsigned opts, int timeout_ms)
{
	uint8_t stack[SEND_STACK];
	struct rd_buf b;
	int rc;

	if (n <= SEND_STACK - HDR) {
		/* Not owned, writable, fixed capacity: a compressed payload is always smaller. */
		memset(&b, 0, sizeof(b));
		b.data = stack;
		b.cap = sizeof(stack);
	} else {
		rd_buf_init(&b, 0);
	}
	if ((rc = rd_frame_append(&b, type, req_id, payload, n, opts)) != 0)
		goto out;
	rc = rd_net_write_all(fd, b.data, b.len, timeout_ms);
out:
	if (b.owned)
		rd_buf_free(&b);
	return rc;
}
