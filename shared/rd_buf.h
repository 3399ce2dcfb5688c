/* rd_buf.h - bounds-checked byte buffer with big-endian field codecs.
 *
 * A struct rd_buf is a growable byte array with a read cursor:
 *   data[0 .. rpos)     consumed
 *   data[rpos .. len)   readable
 *   data[len .. cap)    free space for writers
 * Writers append (and grow up to `max`, if set); readers consume from rpos.
 * A read that would pass `len` returns RD_ERR_INCOMPLETE and consumes nothing.
 *
 * A read-only view over foreign memory: rd_buf_view(); it never grows or frees.
 *
 * Wire encodings (PROTOCOL.md "Field encodings"):
 *   u8/u16/u32/u64  big-endian
 *   str             u16 length, then that many bytes of UTF-8, no NUL
 *   bytes           u32 length, then that many bytes
 */
#ifndef RD_BUF_H
#define RD_BUF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rd_buf {
	uint8_t *data;
	size_t len;  /* bytes written */
	size_t rpos; /* read cursor */
	size_t cap;  /* allocated */
	size_t max;  /* 0 = no limit; else the buffer never grows past this many bytes */
	int owned;   /* 1 = data is malloc'd by us and freed by rd_buf_free */
};

/* An empty owned buffer that grows up to max bytes (0 = unbounded). No allocation yet. */
void rd_buf_init(struct rd_buf *b, size_t max);
/* A read-only view of n bytes at p (not copied, not freed). */
void rd_buf_view(struct rd_buf *b, const void *p, size_t n);
/* Free the storage of an owned buffer and reset it to empty (safe to call twice). */
void rd_buf_free(struct rd_buf *b);
/* Drop all content (keeps the allocation). */
void rd_buf_reset(struct rd_buf *b);
/* Move unread bytes to the front (after consuming), keeping the allocation. */
void rd_buf_compact(struct rd_buf *b);

/* Bytes left to read. */
static inline size_t rd_buf_avail(const struct rd_buf *b)
{
	return b->len - b->rpos;
}
/* Pointer to the next unread byte. */
static inline const uint8_t *rd_buf_rptr(const struct rd_buf *b)
{
	return b->data + b->rpos;
}

/* Ensure room for n more bytes; RD_ERR_TOO_BIG past max, RD_ERR_NOMEM, RD_ERR_STATE on a view. */
int rd_buf_reserve(struct rd_buf *b, size_t n);
/* Reserve n bytes at the end and return a pointer to them in *out (len grows by n). */
int rd_buf_append_space(struct rd_buf *b, size_t n, uint8_t **out);

int rd_buf_put(struct rd_buf *b, const void *p, size_t n);
int rd_buf_put_u8(struct rd_buf *b, uint8_t v);
int rd_buf_put_u16(struct rd_buf *b, uint16_t v);
int rd_buf_put_u32(struct rd_buf *b, uint32_t v);
int rd_buf_put_u64(struct rd_buf *b, uint64_t v);
/* str field: RD_ERR_TOO_BIG if n > 65535. s may be NULL when n == 0. */
int rd_buf_put_str(struct rd_buf *b, const char *s, size_t n);
/* NUL-terminated convenience for rd_buf_put_str. */
int rd_buf_put_cstr(struct rd_buf *b, const char *s);
/* bytes field: RD_ERR_TOO_BIG if n > UINT32_MAX. */
int rd_buf_put_bytes(struct rd_buf *b, const void *p, size_t n);

/* Readers: on error nothing is consumed and the out-parameter is zeroed. */
int rd_buf_get(struct rd_buf *b, void *p, size_t n);
int rd_buf_get_u8(struct rd_buf *b, uint8_t *v);
int rd_buf_get_u16(struct rd_buf *b, uint16_t *v);
int rd_buf_get_u32(struct rd_buf *b, uint32_t *v);
int rd_buf_get_u64(struct rd_buf *b, uint64_t *v);
/* Skip n bytes. */
int rd_buf_skip(struct rd_buf *b, size_t n);
/* str field as a view into the buffer (not NUL-terminated): *p, *n. */
int rd_buf_get_str_view(struct rd_buf *b, const char **p, size_t *n);
/* str field copied into out[cap] and NUL-terminated. RD_ERR_TOO_BIG if it needs more
 * than cap-1 bytes; RD_ERR_MALFORMED if it contains a NUL byte. */
int rd_buf_get_str(struct rd_buf *b, char *out, size_t cap);
/* bytes field as a view into the buffer. */
int rd_buf_get_bytes_view(struct rd_buf *b, const uint8_t **p, size_t *n);

/* Raw big-endian helpers for fixed layouts (no bounds checks: the caller checked). */
static inline void rd_be16_put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void rd_be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline void rd_be64_put(uint8_t *p, uint64_t v)
{
	rd_be32_put(p, (uint32_t)(v >> 32));
	rd_be32_put(p + 4, (uint32_t)v);
}
static inline uint16_t rd_be16_get(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t rd_be32_get(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t rd_be64_get(const uint8_t *p)
{
	return ((uint64_t)rd_be32_get(p) << 32) | rd_be32_get(p + 4);
}

#ifdef __cplusplus
}
#endif
#endif
