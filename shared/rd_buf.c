/* rd_buf.c - bounds-checked byte buffer with big-endian field codecs.
 *
 * Owned buffers grow by doubling (first allocation 256 bytes, or more if asked) and never
 * past max. A zero-initialised struct rd_buf is an empty, unbounded owned buffer.
 * Views (rd_buf_view) never grow: a write that needs more room is RD_ERR_STATE. A
 * non-owned struct built by hand over writable memory (data, cap set) accepts writes
 * that fit in cap, which lets callers build small frames in stack memory.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "rd_buf.h"
#include "rd_err.h"

#define BUF_FIRST_ALLOC 256u

/* The one byte an empty view points at, so that a view's data is never NULL. */
static const uint8_t empty_view[1];

void rd_buf_init(struct rd_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
	b->owned = 1;
}

void rd_buf_view(struct rd_buf *b, const void *p, size_t n)
{
	memset(b, 0, sizeof(*b));
	/* The cast drops const: a view is never written through (cap == len, no growth). */
	b->data = (uint8_t *)(p != NULL ? p : empty_view);
	if (p == NULL)
		n = 0;
	b->len = n;
	b->cap = n;
	b->owned = 0;
}

void rd_buf_free(struct rd_buf *b)
{
	size_t max = b->max;

	if (b->owned)
		free(b->data);
	rd_buf_init(b, max);
}

void rd_buf_reset(struct rd_buf *b)
{
	b->len = 0;
	b->rpos = 0;
}

void rd_buf_compact(struct rd_buf *b)
{
	size_t left = b->len - b->rpos;

	if (b->rpos == 0)
		return;
	if (!b->owned && b->data != NULL && b->cap == b->len) {
		/* A view: foreign memory is read-only, slide the window instead. */
		b->data += b->rpos;
		b->len = left;
		b->cap = left;
		b->rpos = 0;
		return;
	}
	if (left > 0)
		memmove(b->data, b->data + b->rpos, left);
	b->len = left;
	b->rpos = 0;
}

int rd_buf_reserve(struct rd_buf *b, size_t n)
{
	size_t need, ncap;
	uint8_t *nd;

	if (RD_LIKELY(b->cap - b->len >= n))
		return 0;
	if (!b->owned) {
		if (b->data != NULL || b->cap != 0)
			return RD_ERR_STATE;
		b->owned = 1; /* zero-initialised struct: becomes an owned buffer */
	}
	if (n > SIZE_MAX - b->len)
		return RD_ERR_TOO_BIG;
	need = b->len + n;
	if (b->max != 0 && need > b->max)
		return RD_ERR_TOO_BIG;
	ncap = b->cap != 0 ? b->cap : BUF_FIRST_ALLOC;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	if (b->max != 0 && ncap > b->max)
		ncap = b->max;
	nd = realloc(b->data, ncap);
	if (nd == NULL)
		return RD_ERR_NOMEM;
	b->data = nd;
	b->cap = ncap;
	return 0;
}

int rd_buf_append_space(struct rd_buf *b, size_t n, uint8_t **out)
{
	int rc;

	*out = NULL;
	/* even for n == 0 the caller gets a real pointer, never NULL + 0 */
	if ((rc = rd_buf_reserve(b, n ? n : 1)) != 0)
		return rc;
	*out = b->data + b->len;
	b->len += n;
	return 0;
}

int rd_buf_put(struct rd_buf *b, const void *p, size_t n)
{
	int rc;

	if (n == 0)
		return 0;
	if ((rc = rd_buf_reserve(b, n)) != 0)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int rd_buf_put_u8(struct rd_buf *b, uint8_t v)
{
	int rc;

	if ((rc = rd_buf_reserve(b, 1)) != 0)
		return rc;
	b->data[b->len++] = v;
	return 0;
}

int rd_buf_put_u16(struct rd_buf *b, uint16_t v)
{
	int rc;

	if ((rc = rd_buf_reserve(b, 2)) != 0)
		return rc;
	rd_be16_put(b->data + b->len, v);
	b->len += 2;
	return 0;
}

int rd_buf_put_u32(struct rd_buf *b, uint32_t v)
{
	int rc;

	if ((rc = rd_buf_reserve(b, 4)) != 0)
		return rc;
	rd_be32_put(b->data + b->len, v);
	b->len += 4;
	return 0;
}

int rd_buf_put_u64(struct rd_buf *b, uint64_t v)
{
	int rc;

	if ((rc = rd_buf_reserve(b, 8)) != 0)
		return rc;
	rd_be64_put(b->data + b->len, v);
	b->len += 8;
	return 0;
}

int rd_buf_put_str(struct rd_buf *b, const char *s, size_t n)
{
	int rc;

	if (n > UINT16_MAX)
		return RD_ERR_TOO_BIG;
	if (s == NULL && n != 0)
		return RD_ERR_INVAL;
	/* Reserve the whole field first so a failure writes nothing. */
	if ((rc = rd_buf_reserve(b, 2 + n)) != 0)
		return rc;
	rd_be16_put(b->data + b->len, (uint16_t)n);
	if (n > 0)
		memcpy(b->data + b->len + 2, s, n);
	b->len += 2 + n;
	return 0;
}

int rd_buf_put_cstr(struct rd_buf *b, const char *s)
{
	return rd_buf_put_str(b, s, s != NULL ? strlen(s) : 0);
}

int rd_buf_put_bytes(struct rd_buf *b, const void *p, size_t n)
{
	int rc;

	if (n > UINT32_MAX)
		return RD_ERR_TOO_BIG;
	if (p == NULL && n != 0)
		return RD_ERR_INVAL;
	if (n > SIZE_MAX - 4)
		return RD_ERR_TOO_BIG;
	if ((rc = rd_buf_reserve(b, 4 + n)) != 0)
		return rc;
	rd_be32_put(b->data + b->len, (uint32_t)n);
	if (n > 0)
		memcpy(b->data + b->len + 4, p, n);
	b->len += 4 + n;
	return 0;
}

int rd_buf_get(struct rd_buf *b, void *p, size_t n)
{
	if (rd_buf_avail(b) < n) {
		if (n > 0)
			memset(p, 0, n);
		return RD_ERR_INCOMPLETE;
	}
	if (n > 0)
		memcpy(p, b->data + b->rpos, n);
	b->rpos += n;
	return 0;
}

int rd_buf_get_u8(struct rd_buf *b, uint8_t *v)
{
	*v = 0;
	if (rd_buf_avail(b) < 1)
		return RD_ERR_INCOMPLETE;
	*v = b->data[b->rpos++];
	return 0;
}

int rd_buf_get_u16(struct rd_buf *b, uint16_t *v)
{
	*v = 0;
	if (rd_buf_avail(b) < 2)
		return RD_ERR_INCOMPLETE;
	*v = rd_be16_get(b->data + b->rpos);
	b->rpos += 2;
	return 0;
}

int rd_buf_get_u32(struct rd_buf *b, uint32_t *v)
{
	*v = 0;
	if (rd_buf_avail(b) < 4)
		return RD_ERR_INCOMPLETE;
	*v = rd_be32_get(b->data + b->rpos);
	b->rpos += 4;
	return 0;
}

int rd_buf_get_u64(struct rd_buf *b, uint64_t *v)
{
	*v = 0;
	if (rd_buf_avail(b) < 8)
		return RD_ERR_INCOMPLETE;
	*v = rd_be64_get(b->data + b->rpos);
	b->rpos += 8;
	return 0;
}

int rd_buf_skip(struct rd_buf *b, size_t n)
{
	if (rd_buf_avail(b) < n)
		return RD_ERR_INCOMPLETE;
	b->rpos += n;
	return 0;
}

int rd_buf_get_str_view(struct rd_buf *b, const char **p, size_t *n)
{
	size_t avail = rd_buf_avail(b);
	size_t sl;

	*p = NULL;
	*n = 0;
	if (avail < 2)
		return RD_ERR_INCOMPLETE;
	sl = rd_be16_get(b->data + b->rpos);
	if (avail - 2 < sl)
		return RD_ERR_INCOMPLETE;
	*p = (const char *)(b->data + b->rpos + 2);
	*n = sl;
	b->rpos += 2 + sl;
	return 0;
}

int rd_buf_get_str(struct rd_buf *b, char *out, size_t cap)
{
	size_t avail = rd_buf_avail(b);
	size_t sl;
	const uint8_t *s;

	if (cap == 0)
		return RD_ERR_INVAL;
	out[0] = '\0';
	if (avail < 2)
		return RD_ERR_INCOMPLETE;
	sl = rd_be16_get(b->data + b->rpos);
	if (sl > cap - 1)
		return RD_ERR_TOO_BIG;
	if (avail - 2 < sl)
		return RD_ERR_INCOMPLETE;
	s = b->data + b->rpos + 2;
	if (sl > 0 && memchr(s, 0, sl) != NULL)
		return RD_ERR_MALFORMED;
	memcpy(out, s, sl);
	out[sl] = '\0';
	b->rpos += 2 + sl;
	return 0;
}

int rd_buf_get_bytes_view(struct rd_buf *b, const uint8_t **p, size_t *n)
{
	size_t avail = rd_buf_avail(b);
	uint32_t bl;

	*p = NULL;
	*n = 0;
	if (avail < 4)
		return RD_ERR_INCOMPLETE;
	bl = rd_be32_get(b->data + b->rpos);
	if (avail - 4 < bl)
		return RD_ERR_INCOMPLETE;
	*p = b->data + b->rpos + 4;
	*n = bl;
	b->rpos += 4 + (size_t)bl;
	return 0;
}
