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

#ifdef __cplusplus
}
#endif
#endif
