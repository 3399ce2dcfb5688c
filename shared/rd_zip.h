/* rd_zip.h - zlib for frame payloads and file chunks.
 *
 * A compressed payload is: u32 original length (big-endian), then a zlib stream.
 * Compression is used only when it saves more than 10%: the compressed form including its
 * 4-byte prefix must be smaller than 90% of the original (PROTOCOL.md "Compression").
 * Inflation is bounded: a declared length above the caller's maximum, or a stream that
 * inflates to anything but exactly the declared length, is an error (zlib bombs included).
 */
#ifndef RD_ZIP_H
#define RD_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "rd_buf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when a payload of original size orig compressed (with prefix) to wire bytes is worth
 * sending compressed under the 10% rule, else 0. */
int rd_zip_worth(size_t orig, size_t wire);

/* Compress n bytes at p and append prefix + stream to out if worth it: *used = 1.
 * If not worth it, out is left as it was and *used = 0 (return 0). level: zlib level
 * (1 = fast; RD_ZIP_LEVEL_DEFAULT). */
#define RD_ZIP_LEVEL_DEFAULT 1
int rd_zip_compress(const void *p, size_t n, int level, struct rd_buf *out, int *used);

/* Inflate a prefixed stream, appending the original bytes to out. RD_ERR_TOO_BIG if the
 * declared length exceeds max_out; RD_ERR_ZLIB on a corrupt stream or length mismatch;
 * RD_ERR_MALFORMED when shorter than the prefix. */
int rd_zip_decompress(const void *p, size_t n, size_t max_out, struct rd_buf *out);

/* Cheap guess whether data is compressible: compresses a sample of up to 16 KiB at level 1
 * and applies the 10% rule to it. Used to skip compressing incompressible files. */
int rd_zip_sample_worth(const void *p, size_t n);

/* Compression that weighs time as well as size (issue 13 point 2), for a sender of a
 * stream of chunks. rd_zip_adapt_start times the compression of a sample (the compressor's
 * cost per byte on this data and this CPU) and says whether the data is compressible at
 * all (rd_zip_sample_worth). Then each chunk is timed from its start until the socket took
 * it: raw chunks measure how fast the path drains (the link, or the receiver), compressed
 * ones what compressing and sending cost. A chunk is compressed while the path costs more
 * than twice what compression does per byte (twice: on a small machine the compressor
 * takes a core the receiver or the sender's I/O would use). On loopback the path is fast
 * and chunks go raw; on a slow link they go compressed. While chunks go compressed, now
 * and then one goes raw, so that a link that gets faster is followed: RD_ZIP_PROBE_MIN
 * chunks after the choice last changed, twice as many after each try that confirms it (at
 * most RD_ZIP_PROBE_MAX). While they go raw, each one measures the path anyway, and once a
 * compressed chunk has been timed (the first try) no more are tried: a path that slows
 * down turns compression on by itself, and a try would only cost time on a fast one (on
 * loopback each try cost about 10 ms). One per stream, zero-initialised; not
 * thread-safe. */
#define RD_ZIP_PROBE_MIN 16u
#define RD_ZIP_PROBE_MAX 256u
struct rd_zip_adapt {
	double ns_raw, ns_zip; /* moving averages, ns per input byte; 0 = not measured yet */
	unsigned chunks;       /* since the start */
	unsigned gap;          /* chunks between tries of the other way (0: RD_ZIP_PROBE_MIN) */
	unsigned next_probe;   /* the chunk that tries it next */
	int probing;           /* the chunk being sent is such a try */
	int zip_timed;         /* a compressed chunk has been timed (ns_zip is no longer a guess) */
};
/* Start a stream whose first bytes are sample[0..n): 1 when they are compressible (as
 * rd_zip_sample_worth), with the compressor's cost measured; 0 (send everything raw). */
int rd_zip_adapt_start(struct rd_zip_adapt *a, const void *sample, size_t n);
/* 1: compress the next chunk; 0: send it raw. */
int rd_zip_adapt_choose(struct rd_zip_adapt *a);
/* The chunk of n input bytes just sent, compressed (1) or raw (0), took ns nanoseconds. */
void rd_zip_adapt_record(struct rd_zip_adapt *a, int compressed, size_t n, uint64_t ns);

#ifdef __cplusplus
}
#endif
#endif
