/* rd_hash.c - SHA-256 over OpenSSL EVP, hex, random tokens, constant-time compare. */
#include "rd_hash.h"

#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "rd_err.h"

#define RD_HASH_FD_BLOCK (256u * 1024u)

struct rd_sha256 {
	EVP_MD_CTX *ctx;
};

int rd_sha256_new(struct rd_sha256 **out)
{
	struct rd_sha256 *h = NULL;
	int rc;

	if (out == NULL)
		return RD_ERR_INVAL;
	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		rc = RD_ERR_NOMEM;
		goto out;
	}
	h->ctx = EVP_MD_CTX_new();
	if (h->ctx == NULL) {
		rc = RD_ERR_NOMEM;
		goto out;
	}
	if ((rc = rd_sha256_reset(h)) != 0)
		goto out;
	*out = h;
	h = NULL;
	rc = 0;
out:
	rd_sha256_free(h);
	return rc;
}

int rd_sha256_reset(struct rd_sha256 *h)
{
	if (h == NULL || h->ctx == NULL)
		return RD_ERR_INVAL;
	if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
		return RD_ERR_CRYPTO;
	return 0;
}

int rd_sha256_update(struct rd_sha256 *h, const void *p, size_t n)
{
	if (h == NULL || (p == NULL && n > 0))
		return RD_ERR_INVAL;
	if (n == 0)
		return 0;
	if (EVP_DigestUpdate(h->ctx, p, n) != 1)
		return RD_ERR_CRYPTO;
	return 0;
}

int rd_sha256_final(struct rd_sha256 *h, uint8_t out[RD_SHA256_LEN])
{
	unsigned int len = 0;

	if (out != NULL)
		memset(out, 0, RD_SHA256_LEN);
	if (h == NULL || out == NULL)
		return RD_ERR_INVAL;
	if (EVP_DigestFinal_ex(h->ctx, out, &len) != 1 || len != RD_SHA256_LEN) {
		memset(out, 0, RD_SHA256_LEN);
		return RD_ERR_CRYPTO;
	}
	return 0;
}

int rd_sha256_copy(struct rd_sha256 *dst, const struct rd_sha256 *src)
{
	if (dst == NULL || src == NULL)
		return RD_ERR_INVAL;
	if (dst == src)
		return 0;
	if (EVP_MD_CTX_copy_ex(dst->ctx, src->ctx) != 1)
		return RD_ERR_CRYPTO;
	return 0;
}

void rd_sha256_free(struct rd_sha256 *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

int rd_sha256(const void *p, size_t n, uint8_t out[RD_SHA256_LEN])
{
	unsigned int len = 0;

	if (out != NULL)
		memset(out, 0, RD_SHA256_LEN);
	if (out == NULL || (p == NULL && n > 0))
		return RD_ERR_INVAL;
	/* EVP_Digest wants a non-NULL pointer even for zero bytes. */
	if (EVP_Digest(n > 0 ? p : "", n, out, &len, EVP_sha256(), NULL) != 1 ||
	    len != RD_SHA256_LEN) {
		memset(out, 0, RD_SHA256_LEN);
		return RD_ERR_CRYPTO;
	}
	return 0;
}

int rd_sha256_fd(int fd, uint8_t out[RD_SHA256_LEN], uint64_t *size_out)
{
	struct rd_sha256 *h = NULL;
	uint8_t *buf = NULL;
	uint64_t off = 0;
	ssize_t got;
	int rc;

	if (out != NULL)
		memset(out, 0, RD_SHA256_LEN);
	if (size_out != NULL)
		*size_out = 0;
	if (fd < 0 || out == NULL)
		return RD_ERR_INVAL;
	buf = malloc(RD_HASH_FD_BLOCK);
	if (buf == NULL) {
		rc = RD_ERR_NOMEM;
		goto out;
	}
	if ((rc = rd_sha256_new(&h)) != 0)
		goto out;
	for (;;) {
		got = pread(fd, buf, RD_HASH_FD_BLOCK, (off_t)off);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			rc = RD_ERR_SYSTEM;
			goto out;
		}
		if (got == 0)
			break;
		if ((rc = rd_sha256_update(h, buf, (size_t)got)) != 0)
			goto out;
		off += (uint64_t)got;
	}
	if ((rc = rd_sha256_final(h, out)) != 0)
		goto out;
	if (size_out != NULL)
		*size_out = off;
	rc = 0;
out:
	rd_sha256_free(h);
	free(buf);
	return rc;
}

void rd_hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	if (out == NULL)
		return;
	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

int rd_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int rd_hex_parse(const char *s, uint8_t *out, size_t n)
{
	size_t i;
	int hi, lo;

	if (out != NULL && n > 0)
		memset(out, 0, n);
	if (s == NULL || (out == NULL && n > 0))
		return RD_ERR_INVAL;
	/* strnlen bounds the scan: a string longer than 2n is rejected without reading it all. */
	if (strnlen(s, 2 * n + 1) != 2 * n)
		return RD_ERR_INVAL;
	for (i = 0; i < n; i++) {
		hi = rd_hex_digit(s[2 * i]);
		lo = rd_hex_digit(s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			memset(out, 0, n);
			return RD_ERR_INVAL;
		}
		out[i] = (uint8_t)((hi << 4) | lo);
	}
	return 0;
}

int rd_random(void *p, size_t n)
{
	unsigned char *q = p;
	size_t chunk;

	if (p == NULL && n > 0)
		return RD_ERR_INVAL;
	/* RAND_bytes takes an int length. */
	while (n > 0) {
		chunk = n > (1u << 30) ? (1u << 30) : n;
		if (RAND_bytes(q, (int)chunk) != 1)
			return RD_ERR_CRYPTO;
		q += chunk;
		n -= chunk;
	}
	return 0;
}

int rd_ct_equal(const void *a, const void *b, size_t n)
{
	if (n == 0)
		return 1;
	return CRYPTO_memcmp(a, b, n) == 0;
}
