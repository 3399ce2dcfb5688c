/* rd_zip.c - zlib for frame payloads and file chunks.
 *
 * Compression writes straight into the caller's buffer, after a 4-byte length prefix,
 * into a window sized to the largest result the 10% rule accepts: if deflate cannot
 * finish inside it, compression does not pay and the output is dropped. So nothing is
 * copied twice and incompressible data costs no extra allocation. Small inputs get a
 * small deflate window (windowBits sized to the input) to keep per-call memory low.
 *
 * Inflation is into exactly the declared length, after checking it against the caller's
 * limit; a stream that ends short, runs long or has trailing bytes is RD_ERR_ZLIB.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "internal.h"
#include "rd_buf.h"
#include "rd_err.h"
#include "rd_net.h"
#include "rd_zip.h"

#define ZIP_PREFIX 4u
#define ZIP_MIN_STREAM 8u /* smallest possible zlib stream (header + adler) */
#define ZIP_SAMPLE (16u * 1024u)

int rd_zip_worth(size_t orig, size_t wire)
{
	size_t d;

	/* wire * 10 < orig * 9, without overflow: 10 * (orig - wire) > orig */
	if (wire >= orig)
		return 0;
	d = orig - wire;
	if (d > SIZE_MAX / 10)
		return 1;
	return d * 10 > orig;
}

/* Largest wire size (prefix included) that rd_zip_worth accepts for orig, or 0. */
static size_t worth_limit(size_t orig)
{
	if (orig == 0)
		return 0;
	return orig - orig / 10 - 1;
}

/* Deflate n bytes at p into dst[cap]. 1 with *produced set when the whole stream fits,
 * 0 when it does not, or a negative RD_ERR_*. */
static int deflate_bounded(const void *p, size_t n, int level, uint8_t *dst, size_t cap,
			   size_t *produced)
{
	z_stream z;
	int wbits = 9, zr, rc;

	*produced = 0;
	if (n > UINT_MAX || cap > UINT_MAX)
		return 0; /* far beyond any payload; not worth a chunked loop */
	while (wbits < 15 && ((size_t)1 << wbits) < n)
		wbits++;
	memset(&z, 0, sizeof(z));
	zr = deflateInit2(&z, level, Z_DEFLATED, wbits, RD_MIN(RD_MAX(wbits - 6, 1), 8),
			  Z_DEFAULT_STRATEGY);
	if (zr != Z_OK)
		return zr == Z_MEM_ERROR ? RD_ERR_NOMEM : RD_ERR_INVAL;
	/* zlib does not write through next_in; the cast is its API. */
	z.next_in = (Bytef *)(uintptr_t)p;
	z.avail_in = (uInt)n;
	z.next_out = dst;
	z.avail_out = (uInt)cap;
	zr = deflate(&z, Z_FINISH);
	if (zr == Z_STREAM_END) {
		*produced = cap - z.avail_out;
		rc = 1;
	} else if (zr == Z_OK || zr == Z_BUF_ERROR) {
		rc = 0; /* ran out of window */
	} else {
		rc = RD_ERR_ZLIB;
	}
	deflateEnd(&z);
	return rc;
}

int rd_zip_compress(const void *p, size_t n, int level, struct rd_buf *out, int *used)
{
	size_t wmax, produced = 0, start = out->len;
	int rc;

	*used = 0;
	if (level < Z_DEFAULT_COMPRESSION || level > Z_BEST_COMPRESSION)
		return RD_ERR_INVAL;
	wmax = worth_limit(n);
	if (wmax < ZIP_PREFIX + ZIP_MIN_STREAM)
		return 0; /* too small to ever pay */
	if ((rc = rd_buf_reserve(out, wmax)) != 0)
		goto out;
	rc = deflate_bounded(p, n, level, out->data + start + ZIP_PREFIX, wmax - ZIP_PREFIX,
			     &produced);
	if (rc <= 0)
		goto out;
	rd_be32_put(out->data + start, (uint32_t)n);
	out->len = start + ZIP_PREFIX + produced;
	*used = 1;
	rc = 0;
out:
	return rc;
}

int rd_zip_decompress(const void *p, size_t n, size_t max_out, struct rd_buf *out)
{
	const uint8_t *in = p;
	size_t start = out->len;
	uint32_t declared;
	uint8_t *dst = NULL, spill[1];
	z_stream z;
	int zr, rc, inited = 0;

	if (n < ZIP_PREFIX)
		return RD_ERR_MALFORMED;
	declared = rd_be32_get(in);
	if (declared > max_out)
		return RD_ERR_TOO_BIG;
	if (n - ZIP_PREFIX > UINT_MAX)
		return RD_ERR_TOO_BIG;
	if ((rc = rd_buf_append_space(out, declared, &dst)) != 0)
		goto out;
	memset(&z, 0, sizeof(z));
	if ((zr = inflateInit(&z)) != Z_OK) {
		rc = zr == Z_MEM_ERROR ? RD_ERR_NOMEM : RD_ERR_ZLIB;
		goto out;
	}
	inited = 1;
	z.next_in = (Bytef *)(uintptr_t)(in + ZIP_PREFIX);
	z.avail_in = (uInt)(n - ZIP_PREFIX);
	z.next_out = declared > 0 ? dst : spill;
	z.avail_out = declared;
	zr = inflate(&z, Z_FINISH);
	if (zr != Z_STREAM_END && z.avail_out == 0) {
		/* Output is full but the stream has not ended: let it produce one more byte.
		 * If it can, the stream is longer than declared (a bomb or a lie). */
		z.next_out = spill;
		z.avail_out = 1;
		zr = inflate(&z, Z_FINISH);
		if (z.avail_out == 0) {
			rc = RD_ERR_ZLIB;
			goto out;
		}
	}
	if (zr != Z_STREAM_END) {
		rc = zr == Z_MEM_ERROR ? RD_ERR_NOMEM : RD_ERR_ZLIB; /* corrupt or truncated */
		goto out;
	}
	if (z.total_out != declared || z.avail_in != 0) {
		rc = RD_ERR_ZLIB; /* short of the declared length, or trailing bytes */
		goto out;
	}
	rc = 0;
out:
	if (inited)
		inflateEnd(&z);
	if (rc != 0)
		out->len = start;
	return rc;
}

int rd_zip_sample_worth(const void *p, size_t n)
{
	size_t sample = RD_MIN(n, (size_t)ZIP_SAMPLE);
	size_t wmax = worth_limit(sample), produced;
	uint8_t *dst;
	int rc;

	if (wmax < ZIP_PREFIX + ZIP_MIN_STREAM)
		return 0;
	if ((dst = malloc(wmax)) == NULL)
		return 0;
	rc = deflate_bounded(p, sample, 1, dst, wmax - ZIP_PREFIX, &produced);
	free(dst);
	return rc == 1;
}

int rd_zip_adapt_start(struct rd_zip_adapt *a, const void *sample, size_t n)
{
	uint64_t t0 = rd_now_mono_ns();
	int worth = rd_zip_sample_worth(sample, n);
	double per = n > 0 ? (double)(rd_now_mono_ns() - t0) / (double)n : 0;

	memset(a, 0, sizeof(*a));
	/* (the sample is compressed at level 1, chunks at the frame's level: the measure is a
	 * first guess, which compressed chunks then correct) */
	a->ns_zip = per > 0 ? per : 1e-3;
	return worth;
}

int rd_zip_adapt_choose(struct rd_zip_adapt *a)
{
	int zip;

	a->probing = 0;
	if (a->ns_raw == 0)
		return 0; /* measure the path first */
	zip = a->ns_raw > 2 * a->ns_zip;
	if (a->gap == 0) {
		a->gap = RD_ZIP_PROBE_MIN;
		a->next_probe = a->chunks + a->gap;
	}
	if (a->chunks >= a->next_probe && (zip || !a->zip_timed)) {
		a->probing = 1;
		return !zip; /* now and then, the other way */
	}
	return zip;
}

void rd_zip_adapt_record(struct rd_zip_adapt *a, int compressed, size_t n, uint64_t ns)
{
	double per = n > 0 ? (double)ns / (double)n : 0,
	       *avg = compressed ? &a->ns_zip : &a->ns_raw;
	int was_zip = a->ns_raw > 2 * a->ns_zip;

	if (per <= 0)
		per = 1e-3; /* (a clock too coarse to see it: nearly free) */
	/* a try is the first look at that way in a while: it replaces what is known of it */
	*avg = *avg == 0 || a->probing ? per : 0.75 * *avg + 0.25 * per;
	a->chunks++;
	if (compressed)
		a->zip_timed = 1;
	if (a->probing) { /* did the try change the choice? back off, or look again soon */
		a->gap = (a->ns_raw > 2 * a->ns_zip) == was_zip ?
				 (a->gap * 2 > RD_ZIP_PROBE_MAX ? RD_ZIP_PROBE_MAX : a->gap * 2) :
				 RD_ZIP_PROBE_MIN;
		a->next_probe = a->chunks + a->gap;
		a->probing = 0;
	}
}
