/* rd_hash.h - SHA-256 (OpenSSL EVP), hex, random tokens (RAND_bytes), constant-time compare. */
#ifndef RD_HASH_H
#define RD_HASH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RD_SHA256_LEN 32

/* Incremental SHA-256. */
struct rd_sha256;
int rd_sha256_new(struct rd_sha256 **out); /* RD_ERR_NOMEM / RD_ERR_CRYPTO */
int rd_sha256_update(struct rd_sha256 *h, const void *p, size_t n);
int rd_sha256_final(struct rd_sha256 *h,
		    uint8_t out[RD_SHA256_LEN]); /* then reusable after reset */
int rd_sha256_reset(struct rd_sha256 *h);
/* Copy the running state (for resume: hash of a prefix, kept going). */
int rd_sha256_copy(struct rd_sha256 *dst, const struct rd_sha256 *src);
void rd_sha256_free(struct rd_sha256 *h);

/* One-shot. */
int rd_sha256(const void *p, size_t n, uint8_t out[RD_SHA256_LEN]);
/* Hash a whole open file descriptor from offset 0 to EOF (pread; does not move the offset). */
int rd_sha256_fd(int fd, uint8_t out[RD_SHA256_LEN], uint64_t *size_out);

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void rd_hex(const uint8_t *p, size_t n, char *out);
/* Parse exactly 2n hex digits into out[n]; RD_ERR_INVAL otherwise. */
int rd_hex_parse(const char *s, uint8_t *out, size_t n);

/* n cryptographically random bytes (RAND_bytes). RD_ERR_CRYPTO on failure. */
int rd_random(void *p, size_t n);
/* 1 if a and b are equal, in time independent of where they differ. */
int rd_ct_equal(const void *a, const void *b, size_t n);

#ifdef __cplusplus
}
#endif
#endif
