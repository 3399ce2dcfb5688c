/* rd_tls.c - identities, fingerprints, the known_servers trust store, TLS 1.3 contexts and
 * the plain / TLS transports (see rd_tls.h for the contracts).
 *
 * Design notes:
 * - The TLS transport talks to the socket through its own small BIO (recv / send with
 *   MSG_NOSIGNAL) instead of OpenSSL's socket BIO: writes never raise SIGPIPE, and the BIO
 *   sees the peer's first bytes before OpenSSL parses them, so a peer speaking plaintext
 *   roomdrop ("RD" frame magic) is named as such instead of "wrong version number".
 * - The client checks the server in a certificate verification callback (pin, or CA
 *   chain + host name), so a refused server never sees the client's certificate; the
 *   server accepts any client certificate and the application reads its fingerprint.
 * - OpenSSL keeps an error queue per thread: every SSL call here starts with
 *   ERR_clear_error() and every failure drains the queue into the connection's reason.
 */
#include "rd_tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "internal.h"
#include "rd_err.h"
#include "rd_hash.h"
#include "rd_net.h"
#include "rd_proto.h"

#define FP_PARSE_MAX 256                /* bytes of input rd_tls_fp_parse looks at */
#define PEM_FILE_MAX (1u << 20)         /* a key or certificate chain file */
#define TRUST_FILE_MAX (16u << 20)      /* known_servers */
#define TRUST_KEY_MAX (RD_HOST_MAX + 9) /* "[" host "]:" port NUL */
#define CERT_DAYS (20 * 365 + 5)        /* 20 years and the leap days */
#define NAME_MAX_LEN 64                 /* upper bound of an X.509 CN */
#define REASON_MAX 320
#define TLS_READ_BUF (64u * 1024u) /* read-ahead: bytes one recv may bring */
#define TLS_BATCH 4u               /* records one tls_write encrypts, then sends at once */
#define TLS_RECORD_PLAIN 16384u    /* plaintext bytes in a full TLS record */
/* room for TLS_BATCH records (header, type byte and tag are 22 bytes; 256 is generous) and
 * for a few small records OpenSSL may add (close_notify) behind them */
#define TLS_WB_CAP (TLS_BATCH * (TLS_RECORD_PLAIN + 256u) + 1024u)

/* ---- fingerprints ---------------------------------------------------------------------
 * Why base32 in groups of 4: people compare fingerprints by reading them aloud or side by
 * side. Base32 is case-insensitive (base64, as SSH prints, is not, so it cannot be read
 * aloud), its alphabet has no 0/O, 1/I/l or 8/B pairs to confuse, and 256 bits take 52
 * characters instead of 64 hex digits; groups of 4 let a reader keep their place. The hex
 * form is accepted too, because that is what sha256sum and openssl print. */
static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

#define FP_B32_CHARS 52
#define FP_HEX_CHARS 64

void rd_tls_fp_format(const uint8_t fp[RD_TLS_FP_LEN], char out[RD_TLS_FP_TEXT_LEN])
{
	unsigned acc = 0, bits = 0, k = 0, o = 0, v;
	size_t i;

	for (i = 0; i <= RD_TLS_FP_LEN; i++) {
		if (i < RD_TLS_FP_LEN) {
			acc = ((acc << 8) | fp[i]) & 0xffffu;
			bits += 8;
		} else if (bits > 0) {
			acc = (acc << (5 - bits)) & 0xffffu; /* zero padding bits */
			bits = 5;
		}
		while (bits >= 5) {
			v = (acc >> (bits - 5)) & 31u;
			bits -= 5;
			if (k > 0 && k % 4 == 0)
				out[o++] = '-';
			out[o++] = b32_alphabet[v];
			k++;
		}
	}
	out[o] = '\0';
}

static int b32_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

int rd_tls_fp_parse(const char *s, uint8_t out[RD_TLS_FP_LEN])
{
	char sig[FP_HEX_CHARS];
	size_t len, i, n = 0, o = 0;
	unsigned acc = 0, bits = 0;
	int v, hi, lo;

	if (out == NULL)
		return RD_ERR_INVAL;
	memset(out, 0, RD_TLS_FP_LEN);
	if (s == NULL)
		return RD_ERR_INVAL;
	len = strnlen(s, FP_PARSE_MAX + 1);
	if (len > FP_PARSE_MAX)
		return RD_ERR_INVAL;
	for (i = 0; i < len; i++) {
		if (s[i] == '-' || s[i] == ':' || s[i] == ' ')
			continue;
		if (n == sizeof(sig))
			return RD_ERR_INVAL;
		sig[n++] = s[i];
	}
	if (n == FP_HEX_CHARS) {
		for (i = 0; i < RD_TLS_FP_LEN; i++) {
			hi = rd_hex_digit(sig[2 * i]);
			lo = rd_hex_digit(sig[2 * i + 1]);
			if (hi < 0 || lo < 0)
				goto bad;
			out[i] = (uint8_t)((hi << 4) | lo);
		}
		return 0;
	}
	if (n != FP_B32_CHARS)
		return RD_ERR_INVAL;
	for (i = 0; i < n; i++) {
		if ((v = b32_value(sig[i])) < 0)
			goto bad;
		acc = ((acc << 5) | (unsigned)v) & 0xffffu;
		bits += 5;
		if (bits >= 8) {
			out[o++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	/* 52 * 5 = 260 bits: 256 of data and 4 that must be zero. */
	if (o != RD_TLS_FP_LEN || bits != 4 || (acc & 0xfu) != 0)
		goto bad;
	return 0;
bad:
	memset(out, 0, RD_TLS_FP_LEN);
	return RD_ERR_INVAL;
}

int rd_tls_fp_equal(const uint8_t a[RD_TLS_FP_LEN], const uint8_t b[RD_TLS_FP_LEN])
{
	return rd_ct_equal(a, b, RD_TLS_FP_LEN);
}

static int fp_of_pkey(const EVP_PKEY *pk, uint8_t fp[RD_TLS_FP_LEN])
{
	unsigned char *der = NULL;
	int n, rc;

	memset(fp, 0, RD_TLS_FP_LEN);
	if (pk == NULL)
		return RD_ERR_CRYPTO;
	n = i2d_PUBKEY(pk, &der);
	if (n <= 0)
		return RD_ERR_CRYPTO;
	rc = rd_sha256(der, (size_t)n, fp);
	OPENSSL_free(der);
	return rc;
}

static int fp_of_cert(const X509 *x, uint8_t fp[RD_TLS_FP_LEN])
{
	return fp_of_pkey(X509_get0_pubkey(x), fp);
}

/* ---- files ------------------------------------------------------------------------------ */

/* Directory part of path into out ("." when there is none). */
static int dir_of(const char *path, char *out, size_t cap)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL) {
		if (cap < 2)
			return RD_ERR_TOO_BIG;
		strcpy(out, ".");
		return 0;
	}
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= cap)
		return RD_ERR_TOO_BIG;
	memcpy(out, path, n);
	out[n] = '\0';
	return 0;
}

/* mkdir -p with mode 0700 for what is missing; existing directories are left alone. */
static int mkdir_private(const char *dir)
{
	char tmp[PATH_MAX];
	size_t n = strlen(dir), i;

	if (n == 0 || n >= sizeof(tmp))
		return RD_ERR_INVAL;
	memcpy(tmp, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return RD_ERR_SYSTEM;
		tmp[i] = dir[i];
	}
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return RD_ERR_SYSTEM;
	if (fsync(fd) != 0 && errno != EINVAL)
		rc = RD_ERR_SYSTEM;
	close(fd);
	return rc;
}

/* Make path's directory (0700) if missing and take an exclusive lock on it, held until
 * *dfd is closed. This serialises processes that read-modify-write files in it (two
 * clients started at once on first use); flock on a directory works on Linux and leaves
 * no lock file behind. Not reentrant: one lock at a time per process and directory. */
static int lock_dir_of(const char *path, int *dfd)
{
	char dir[PATH_MAX];
	int rc;

	*dfd = -1;
	if ((rc = dir_of(path, dir, sizeof(dir))) != 0 || (rc = mkdir_private(dir)) != 0)
		return rc;
	*dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dfd < 0)
		return RD_ERR_SYSTEM;
	while (flock(*dfd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			rc = errno;
			close(*dfd);
			*dfd = -1;
			errno = rc;
			return RD_ERR_SYSTEM;
		}
	}
	return 0;
}

/* Replace path by n bytes of p, mode 0600: temporary file in the same directory, fsync,
 * rename, fsync of the directory. Readers see the old or the new file, never a part. */
static int write_atomic(const char *path, const void *p, size_t n)
{
	char dir[PATH_MAX], tmp[PATH_MAX];
	const char *q = p;
	int fd = -1, rc, saved = 0;
	ssize_t w;

	if ((rc = dir_of(path, dir, sizeof(dir))) != 0)
		return rc;
	if ((rc = mkdir_private(dir)) != 0)
		return rc;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= sizeof(tmp))
		return RD_ERR_TOO_BIG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return RD_ERR_SYSTEM;
	rc = RD_ERR_SYSTEM;
	if (fchmod(fd, 0600) != 0)
		goto out;
	while (n > 0) {
		w = write(fd, q, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		q += w;
		n -= (size_t)w;
	}
	if (fsync(fd) != 0)
		goto out;
	if (close(fd) != 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto out;
	tmp[0] = '\0';
	rc = fsync_dir(dir);
out:
	if (rc != 0)
		saved = errno;
	if (fd >= 0)
		close(fd);
	if (tmp[0] != '\0')
		unlink(tmp);
	if (rc != 0)
		errno = saved;
	return rc;
}

/* Whole small file into a malloc'd, NUL-terminated buffer. RD_ERR_NOT_FOUND if missing,
 * RD_ERR_TOO_BIG above max. *mode gets the file's permission bits (optional). */
static int read_small_file(const char *path, size_t max, char **out, size_t *len, mode_t *mode)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	ssize_t r;
	int fd, rc;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us */
	if (fd < 0)
		return errno == ENOENT ? RD_ERR_NOT_FOUND : RD_ERR_SYSTEM;
	if (fstat(fd, &st) != 0) {
		rc = RD_ERR_SYSTEM;
		goto out;
	}
	if (mode != NULL)
		*mode = st.st_mode & 07777;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		rc = RD_ERR_SYSTEM;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		rc = RD_ERR_TOO_BIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		rc = RD_ERR_NOMEM;
		goto out;
	}
	/* Read to EOF (bounded by max) rather than trusting st_size: the file may change. */
	for (;;) {
		if (n == (size_t)st.st_size)
			break;
		r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = RD_ERR_SYSTEM;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

static void free_secret(char *p, size_t n)
{
	if (p != NULL)
		OPENSSL_cleanse(p, n);
	free(p);
}

/* ---- identities --------------------------------------------------------------------------- */

struct rd_tls_identity {
	X509 *cert;
	EVP_PKEY *key;
	/* STACK_OF(X509), spelt out so that clang-format reads it as a type: the certificates
	 * after the first in the file (its chain); may be empty. */
	struct stack_st_X509 *chain;
	uint8_t fp[RD_TLS_FP_LEN];
};

/* Passphrase callback that refuses: the library never prompts on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

void rd_tls_identity_free(struct rd_tls_identity *id)
{
	if (id == NULL)
		return;
	X509_free(id->cert);
	EVP_PKEY_free(id->key);
	sk_X509_pop_free(id->chain, X509_free);
	free(id);
}

void rd_tls_identity_fp(const struct rd_tls_identity *id, uint8_t fp[RD_TLS_FP_LEN])
{
	memcpy(fp, id->fp, RD_TLS_FP_LEN);
}

static int load_key(const char *path, EVP_PKEY **out)
{
	char *buf = NULL;
	size_t n = 0;
	mode_t mode = 0;
	BIO *b = NULL;
	int rc;

	*out = NULL;
	if ((rc = read_small_file(path, PEM_FILE_MAX, &buf, &n, &mode)) != 0)
		return rc;
	if ((mode & 077) != 0)
		RD_LOG(RD_LOG_WARN, "%s: private key is readable by others (mode %04o)", path,
		       (unsigned)mode);
	b = BIO_new_mem_buf(buf, (int)n);
	if (b == NULL) {
		rc = RD_ERR_NOMEM;
		goto out;
	}
	*out = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
	if (*out == NULL) {
		RD_LOG(RD_LOG_WARN, "%s: not an unencrypted PEM private key", path);
		rc = RD_ERR_CRYPTO;
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	BIO_free(b);
	free_secret(buf, n);
	return rc;
}

static int load_certs(const char *path, X509 **cert, struct stack_st_X509 **chain)
{
	char *buf = NULL;
	size_t n = 0;
	BIO *b = NULL;
	X509 *x;
	int rc;

	*cert = NULL;
	*chain = NULL;
	if ((rc = read_small_file(path, PEM_FILE_MAX, &buf, &n, NULL)) != 0)
		return rc;
	rc = RD_ERR_NOMEM;
	if ((b = BIO_new_mem_buf(buf, (int)n)) == NULL || (*chain = sk_X509_new_null()) == NULL)
		goto out;
	*cert = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
	if (*cert == NULL) {
		RD_LOG(RD_LOG_WARN, "%s: no PEM certificate", path);
		rc = RD_ERR_CRYPTO;
		goto out;
	}
	while ((x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL) {
		if (sk_X509_push(*chain, x) <= 0) {
			X509_free(x);
			goto out;
		}
	}
	rc = 0;
out:
	ERR_clear_error(); /* the loop ends on a "no start line" error */
	if (rc != 0) {
		X509_free(*cert);
		sk_X509_pop_free(*chain, X509_free);
		*cert = NULL;
		*chain = NULL;
	}
	BIO_free(b);
	free(buf);
	return rc;
}

int rd_tls_identity_load(const char *cert_path, const char *key_path, struct rd_tls_identity **out)
{
	struct rd_tls_identity *id = NULL;
	int rc;

	if (out == NULL)
		return RD_ERR_INVAL;
	*out = NULL;
	if (cert_path == NULL || key_path == NULL)
		return RD_ERR_INVAL;
	if ((id = calloc(1, sizeof(*id))) == NULL)
		return RD_ERR_NOMEM;
	if ((rc = load_certs(cert_path, &id->cert, &id->chain)) != 0)
		goto out;
	if ((rc = load_key(key_path, &id->key)) != 0)
		goto out;
	if (EVP_PKEY_eq(X509_get0_pubkey(id->cert), id->key) != 1) {
		RD_LOG(RD_LOG_WARN, "%s is not the key of %s", key_path, cert_path);
		rc = RD_ERR_MISMATCH;
		goto out;
	}
	if ((rc = fp_of_cert(id->cert, id->fp)) != 0)
		goto out;
	*out = id;
	id = NULL;
	rc = 0;
out:
	ERR_clear_error();
	rd_tls_identity_free(id);
	return rc;
}

int rd_tls_cert_file_fp(const char *cert_path, uint8_t fp[RD_TLS_FP_LEN])
{
	struct stack_st_X509 *chain = NULL;
	X509 *cert = NULL;
	int rc;

	if (fp == NULL)
		return RD_ERR_INVAL;
	memset(fp, 0, RD_TLS_FP_LEN);
	if (cert_path == NULL)
		return RD_ERR_INVAL;
	if ((rc = load_certs(cert_path, &cert, &chain)) != 0)
		return rc;
	rc = fp_of_cert(cert, fp);
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

static int valid_name(const char *name)
{
	size_t n, i;

	if (name == NULL)
		return 0;
	n = strnlen(name, NAME_MAX_LEN + 1);
	if (n == 0 || n > NAME_MAX_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return 0;
	return 1;
}

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return RD_ERR_CRYPTO;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : RD_ERR_CRYPTO;
}

/* A self-signed certificate for key: CN = name, valid from a day ago for 20 years. */
static int make_cert(EVP_PKEY *key, const char *name, X509 **out)
{
	unsigned char serial[16];
	X509_NAME *subj;
	BIGNUM *bn = NULL;
	X509 *x = NULL;
	int rc;

	*out = NULL;
	if ((rc = rd_random(serial, sizeof(serial))) != 0)
		return rc;
	serial[0] &= 0x7f; /* a positive serial number */
	serial[0] |= 0x01; /* of full length */
	rc = RD_ERR_CRYPTO;
	if ((x = X509_new()) == NULL || X509_set_version(x, 2) != 1)
		goto out;
	if ((bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto out;
	if (X509_gmtime_adj(X509_getm_notBefore(x), -86400L) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), CERT_DAYS, 0, NULL) == NULL)
		goto out;
	if (X509_set_pubkey(x, key) != 1)
		goto out;
	subj = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1,
				       -1, 0) != 1 ||
	    X509_set_issuer_name(x, subj) != 1)
		goto out;
	if ((rc = add_ext(x, NID_basic_constraints, "critical,CA:FALSE")) != 0 ||
	    (rc = add_ext(x, NID_key_usage, "critical,digitalSignature")) != 0)
		goto out;
	rc = RD_ERR_CRYPTO;
	/* Ed25519 signs the message itself: no separate digest. */
	if (X509_sign(x, key, NULL) <= 0)
		goto out;
	*out = x;
	x = NULL;
	rc = 0;
out:
	ERR_clear_error();
	BN_free(bn);
	X509_free(x);
	return rc;
}

/* PEM of a key (PKCS#8, unencrypted) or a certificate, written with write_atomic. */
static int write_pem(const char *path, EVP_PKEY *key, X509 *cert)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n;
	int rc, ok;

	if (b == NULL)
		return RD_ERR_NOMEM;
	ok = key != NULL ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) :
			   PEM_write_bio_X509(b, cert);
	n = BIO_get_mem_data(b, &p);
	if (ok != 1 || n <= 0) {
		rc = RD_ERR_CRYPTO;
		goto out;
	}
	rc = write_atomic(path, p, (size_t)n);
out:
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, (size_t)n);
	BIO_free(b);
	ERR_clear_error();
	return rc;
}

static int path_exists(const char *path, int *exists)
{
	struct stat st;

	*exists = 0;
	if (stat(path, &st) == 0) {
		*exists = 1;
		return 0;
	}
	return errno == ENOENT ? 0 : RD_ERR_SYSTEM;
}

int rd_tls_identity_ensure(const char *cert_path, const char *key_path, const char *name,
			   struct rd_tls_identity **out, int *created)
{
	int have_cert, have_key, rc, dfd = -1;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;

	if (created != NULL)
		*created = 0;
	if (out == NULL)
		return RD_ERR_INVAL;
	*out = NULL;
	if (cert_path == NULL || key_path == NULL || !valid_name(name))
		return RD_ERR_INVAL;
	/* Under the lock, so that two processes making the identity at once cannot end with
	 * one's key and the other's certificate. */
	if ((rc = lock_dir_of(key_path, &dfd)) != 0)
		return rc;
	if ((rc = path_exists(cert_path, &have_cert)) != 0 ||
	    (rc = path_exists(key_path, &have_key)) != 0)
		goto out;
	if (have_cert && have_key) {
		rc = rd_tls_identity_load(cert_path, key_path, out);
		goto out;
	}
	if (have_cert) {
		RD_LOG(RD_LOG_WARN, "%s exists but its key %s does not: not replacing it",
		       cert_path, key_path);
		rc = RD_ERR_NOT_FOUND;
		goto out;
	}
	if (have_key) {
		/* The key is the identity: a certificate made again over it keeps the fingerprint. */
		if ((rc = load_key(key_path, &key)) != 0)
			goto out;
	} else {
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		if (key == NULL) {
			rc = RD_ERR_CRYPTO;
			goto out;
		}
		/* Key first: if we stop between the two writes the next call keeps this key. */
		if ((rc = write_pem(key_path, key, NULL)) != 0)
			goto out;
		if (created != NULL)
			*created = 1;
	}
	if ((rc = make_cert(key, name, &cert)) != 0)
		goto out;
	if ((rc = write_pem(cert_path, NULL, cert)) != 0)
		goto out;
	/* Read back what is on disk, so that what we use is what the next start loads. */
	rc = rd_tls_identity_load(cert_path, key_path, out);
out:
	ERR_clear_error();
	EVP_PKEY_free(key);
	X509_free(cert);
	if (dfd >= 0)
		close(dfd); /* releases the lock */
	return rc;
}

/* ---- trust store ------------------------------------------------------------------------ */

int rd_tls_config_dir(char *out, size_t cap)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int n;

	if (out == NULL || cap == 0)
		return RD_ERR_INVAL;
	out[0] = '\0';
	/* The XDG spec says a relative XDG_CONFIG_HOME is invalid and to be ignored. */
	if (xdg != NULL && xdg[0] == '/')
		n = snprintf(out, cap, "%s/roomdrop", xdg);
	else if (home != NULL && home[0] == '/')
		n = snprintf(out, cap, "%s/.config/roomdrop", home);
	else
		return RD_ERR_NOT_FOUND;
	if (n < 0 || (size_t)n >= cap) {
		out[0] = '\0';
		return RD_ERR_TOO_BIG;
	}
	return 0;
}

/* The canonical "host:port" / "[v6]:port" key of an entry: host names lower-cased, IPv6
 * literals in inet_ntop's form. RD_ERR_INVAL for a host the file cannot hold. */
static int trust_key(const char *host, size_t hlen, uint16_t port, char out[TRUST_KEY_MAX])
{
	char h[RD_HOST_MAX + 1];
	struct in6_addr a6;
	char v6[INET6_ADDRSTRLEN];
	size_t i;

	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen > RD_HOST_MAX || port == 0)
		return RD_ERR_INVAL;
	for (i = 0; i < hlen; i++) {
		unsigned char ch = (unsigned char)host[i];

		if (ch <= 0x20 || ch == 0x7f || ch == '#' || ch == '[' || ch == ']')
			return RD_ERR_INVAL;
		h[i] = (char)tolower(ch);
	}
	h[hlen] = '\0';
	if (strchr(h, ':') == NULL) {
		snprintf(out, TRUST_KEY_MAX, "%s:%u", h, (unsigned)port);
		return 0;
	}
	if (inet_pton(AF_INET6, h, &a6) == 1 && inet_ntop(AF_INET6, &a6, v6, sizeof(v6)) != NULL)
		snprintf(out, TRUST_KEY_MAX, "[%s]:%u", v6, (unsigned)port);
	else
		snprintf(out, TRUST_KEY_MAX, "[%s]:%u", h, (unsigned)port); /* e.g. a zone id */
	return 0;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Parse one line (without its '\n') of n bytes. 0 with key and fp for an entry;
 * RD_ERR_NOT_FOUND for a blank line or a comment; RD_ERR_MALFORMED otherwise. */
static int trust_parse_line(const char *line, size_t n, char key[TRUST_KEY_MAX],
			    uint8_t fp[RD_TLS_FP_LEN])
{
	const char *p = line, *end = line + n, *t1, *t2, *colon;
	char fptext[FP_PARSE_MAX + 1];
	size_t l1, l2, plen;
	uint16_t port;
	char portbuf[8];

	while (p < end && is_blank(*p))
		p++;
	if (p == end || *p == '#')
		return RD_ERR_NOT_FOUND;
	t1 = p;
	while (p < end && !is_blank(*p))
		p++;
	l1 = (size_t)(p - t1);
	while (p < end && is_blank(*p))
		p++;
	t2 = p;
	while (p < end && !is_blank(*p))
		p++;
	l2 = (size_t)(p - t2);
	while (p < end && is_blank(*p))
		p++;
	if (l2 == 0 || l2 > FP_PARSE_MAX || (p < end && *p != '#'))
		return RD_ERR_MALFORMED;
	/* host:port, split at the last ':' (an IPv6 literal is in brackets). */
	colon = NULL;
	for (p = t1; p < t1 + l1; p++)
		if (*p == ':')
			colon = p;
	if (colon == NULL || colon == t1)
		return RD_ERR_MALFORMED;
	plen = (size_t)(t1 + l1 - colon - 1);
	if (plen == 0 || plen >= sizeof(portbuf))
		return RD_ERR_MALFORMED;
	memcpy(portbuf, colon + 1, plen);
	portbuf[plen] = '\0';
	if (rd_net_parse_port(portbuf, &port) != 0)
		return RD_ERR_MALFORMED;
	if (colon[-1] != ']' && memchr(t1, ':', (size_t)(colon - t1)) != NULL)
		return RD_ERR_MALFORMED; /* a bare IPv6 literal: ambiguous, not written by us */
	if (trust_key(t1, (size_t)(colon - t1), port, key) != 0)
		return RD_ERR_MALFORMED;
	memcpy(fptext, t2, l2);
	fptext[l2] = '\0';
	if (rd_tls_fp_parse(fptext, fp) != 0)
		return RD_ERR_MALFORMED;
	return 0;
}

/* Find the first entry for key in buf. 0 with fp; RD_ERR_NOT_FOUND. */
static int trust_find(const char *buf, size_t n, const char *key, uint8_t fp[RD_TLS_FP_LEN])
{
	const char *p = buf, *end = buf + n, *nl;
	char k[TRUST_KEY_MAX];

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (trust_parse_line(p, (size_t)(nl - p), k, fp) == 0 && strcmp(k, key) == 0)
			return 0;
		p = nl + 1;
	}
	memset(fp, 0, RD_TLS_FP_LEN);
	return RD_ERR_NOT_FOUND;
}

/* Read the trust file: a missing one reads as empty. */
static int trust_read(const char *path, char **buf, size_t *n)
{
	int rc = read_small_file(path, TRUST_FILE_MAX, buf, n, NULL);

	if (rc == RD_ERR_NOT_FOUND) {
		*buf = NULL;
		*n = 0;
		return 0;
	}
	return rc;
}

int rd_tls_trust_lookup(const char *path, const char *host, uint16_t port,
			uint8_t fp[RD_TLS_FP_LEN])
{
	char key[TRUST_KEY_MAX];
	char *buf = NULL;
	size_t n = 0;
	int rc;

	if (fp == NULL)
		return RD_ERR_INVAL;
	memset(fp, 0, RD_TLS_FP_LEN);
	if (path == NULL || host == NULL)
		return RD_ERR_INVAL;
	if ((rc = trust_key(host, strlen(host), port, key)) != 0)
		return rc;
	if ((rc = trust_read(path, &buf, &n)) != 0)
		return rc;
	rc = trust_find(buf != NULL ? buf : "", n, key, fp);
	free(buf);
	return rc;
}

int rd_tls_trust_check(const char *path, const char *host, uint16_t port,
		       const uint8_t fp[RD_TLS_FP_LEN], enum rd_tls_trust *res,
		       uint8_t known[RD_TLS_FP_LEN])
{
	uint8_t rec[RD_TLS_FP_LEN];
	int rc;

	if (known != NULL)
		memset(known, 0, RD_TLS_FP_LEN);
	if (res == NULL || fp == NULL)
		return RD_ERR_INVAL;
	*res = RD_TRUST_NEW;
	rc = rd_tls_trust_lookup(path, host, port, rec);
	if (rc == RD_ERR_NOT_FOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (rd_tls_fp_equal(rec, fp)) {
		*res = RD_TRUST_MATCH;
	} else {
		*res = RD_TRUST_CHANGED;
		if (known != NULL)
			memcpy(known, rec, RD_TLS_FP_LEN);
	}
	return 0;
}

enum trust_op {
	TRUST_ADD,
	TRUST_REPLACE,
	TRUST_REMOVE
};

/* Read-modify-write of the trust file under the lock on its directory. */
static int trust_update(const char *path, const char *host, uint16_t port,
			const uint8_t fp[RD_TLS_FP_LEN], enum trust_op op)
{
	char key[TRUST_KEY_MAX], k[TRUST_KEY_MAX], fptext[RD_TLS_FP_TEXT_LEN];
	uint8_t rec[RD_TLS_FP_LEN];
	char *buf = NULL, *outb = NULL;
	const char *p, *end, *nl;
	size_t n = 0, o = 0, cap;
	int dfd = -1, rc, found = 0;

	if (path == NULL || host == NULL || (op != TRUST_REMOVE && fp == NULL))
		return RD_ERR_INVAL;
	if ((rc = trust_key(host, strlen(host), port, key)) != 0)
		return rc;
	if ((rc = lock_dir_of(path, &dfd)) != 0)
		return rc;
	if ((rc = trust_read(path, &buf, &n)) != 0)
		goto out;
	if (op == TRUST_ADD && trust_find(buf != NULL ? buf : "", n, key, rec) == 0) {
		rc = rd_tls_fp_equal(rec, fp) ? 0 : RD_ERR_EXISTS;
		goto out;
	}
	cap = n + TRUST_KEY_MAX + RD_TLS_FP_TEXT_LEN + 4;
	if ((outb = malloc(cap)) == NULL) {
		rc = RD_ERR_NOMEM;
		goto out;
	}
	/* Copy every line but the entries of key, byte for byte. */
	for (p = buf, end = buf + n; p != NULL && p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (trust_parse_line(p, (size_t)(nl - p), k, rec) == 0 && strcmp(k, key) == 0) {
			found = 1;
			continue;
		}
		memcpy(outb + o, p, (size_t)(nl - p));
		o += (size_t)(nl - p);
		outb[o++] = '\n';
	}
	if (op == TRUST_REMOVE && !found) {
		rc = RD_ERR_NOT_FOUND;
		goto out;
	}
	if (op != TRUST_REMOVE) {
		rd_tls_fp_format(fp, fptext);
		o += (size_t)snprintf(outb + o, cap - o, "%s %s\n", key, fptext);
	}
	rc = write_atomic(path, outb, o);
out:
	free(buf);
	free(outb);
	close(dfd); /* releases the lock */
	return rc;
}

int rd_tls_trust_add(const char *path, const char *host, uint16_t port,
		     const uint8_t fp[RD_TLS_FP_LEN])
{
	return trust_update(path, host, port, fp, TRUST_ADD);
}

int rd_tls_trust_replace(const char *path, const char *host, uint16_t port,
			 const uint8_t fp[RD_TLS_FP_LEN])
{
	return trust_update(path, host, port, fp, TRUST_REPLACE);
}

int rd_tls_trust_remove(const char *path, const char *host, uint16_t port)
{
	return trust_update(path, host, port, NULL, TRUST_REMOVE);
}

/* ---- TLS contexts --------------------------------------------------------------------- */

struct rd_tls_ctx {
	SSL_CTX *ssl_ctx;
	int is_server;
	int ca_mode; /* client: verify the chain against a CA file and the host name */
	const unsigned char *alpn; /* alpn_wire or alpn_p2p_wire */
};

/* ALPN protocol lists in wire form: one length byte, then the name. A direct link between
 * two clients (RD_TLS_P2P) has its own name, so that neither kind of endpoint can be
 * mistaken for the other. */
static const unsigned char alpn_wire[] = { 10, 'r', 'o', 'o', 'm', 'd', 'r', 'o', 'p', '/', '1' };
static const unsigned char alpn_p2p_wire[] = { 14,  'r', 'o', 'o', 'm', 'd', 'r', 'o',
					       'p', '-', 'p', '2', 'p', '/', '1' };

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	const unsigned char *want = arg;
	unsigned int i = 0, l;

	(void)ssl;
	while (i < inlen) {
		l = in[i];
		if (l > inlen - i - 1)
			break;
		if (l == want[0] && memcmp(in + i + 1, want + 1, l) == 0) {
			*out = in + i + 1;
			*outlen = (unsigned char)l;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + l;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int cert_verify_cb(X509_STORE_CTX *xs, void *arg);

static int ctx_new(const struct rd_tls_identity *id, int is_server, struct rd_tls_ctx **out)
{
	struct rd_tls_ctx *ctx;
	SSL_CTX *s;
	int rc = RD_ERR_CRYPTO;

	*out = NULL;
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL)
		return RD_ERR_NOMEM;
	ctx->is_server = is_server;
	ERR_clear_error();
	s = ctx->ssl_ctx = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
	if (s == NULL)
		goto out;
	if (SSL_CTX_set_min_proto_version(s, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(s, TLS1_3_VERSION) != 1)
		goto out;
	SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
				    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(s, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_TICKET);
	/* Read what the socket has, up to TLS_READ_BUF, in one recv instead of a header and a
	 * body per record: a bulk transfer makes four times fewer system calls. The buffer
	 * exists only while it holds bytes (RELEASE_BUFFERS): idle links keep none. */
	SSL_CTX_set_read_ahead(s, 1);
	SSL_CTX_set_default_read_buffer_len(s, TLS_READ_BUF);
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_set_num_tickets(s, 0) != 1)
		goto out;
	if (id != NULL && SSL_CTX_use_cert_and_key(s, id->cert, id->key, id->chain, 1) != 1)
		goto out;
	SSL_CTX_set_cert_verify_callback(s, cert_verify_cb, NULL);
	*out = ctx;
	ctx = NULL;
	rc = 0;
out:
	ERR_clear_error();
	rd_tls_ctx_free(ctx);
	return rc;
}

int rd_tls_ctx_server_new(const struct rd_tls_identity *id, unsigned flags, struct rd_tls_ctx **out)
{
	int rc;

	if (out == NULL)
		return RD_ERR_INVAL;
	*out = NULL;
	if (id == NULL || (flags & ~(RD_TLS_REQUIRE_PEER_CERT | RD_TLS_P2P)) != 0)
		return RD_ERR_INVAL;
	if ((rc = ctx_new(id, 1, out)) != 0)
		return rc;
	(*out)->alpn = (flags & RD_TLS_P2P) ? alpn_p2p_wire : alpn_wire;
	SSL_CTX_set_verify((*out)->ssl_ctx,
			   SSL_VERIFY_PEER | ((flags & RD_TLS_REQUIRE_PEER_CERT) ?
						      SSL_VERIFY_FAIL_IF_NO_PEER_CERT :
						      0),
			   NULL);
	SSL_CTX_set_alpn_select_cb((*out)->ssl_ctx, alpn_select, (void *)(*out)->alpn);
	return 0;
}

int rd_tls_ctx_client_new(const struct rd_tls_identity *id, const char *ca_file, unsigned flags,
			  struct rd_tls_ctx **out)
{
	int rc, exists;

	if (out == NULL)
		return RD_ERR_INVAL;
	*out = NULL;
	if ((flags & ~RD_TLS_P2P) != 0 || (ca_file != NULL && (flags & RD_TLS_P2P)))
		return RD_ERR_INVAL;
	if (ca_file != NULL) {
		if ((rc = path_exists(ca_file, &exists)) != 0)
			return rc;
		if (!exists)
			return RD_ERR_NOT_FOUND;
	}
	if ((rc = ctx_new(id, 0, out)) != 0)
		return rc;
	SSL_CTX_set_verify((*out)->ssl_ctx, SSL_VERIFY_PEER, NULL);
	(*out)->alpn = (flags & RD_TLS_P2P) ? alpn_p2p_wire : alpn_wire;
	/* set_alpn_protos returns 0 on success, unlike the rest of the API. */
	if (SSL_CTX_set_alpn_protos((*out)->ssl_ctx, (*out)->alpn, 1u + (*out)->alpn[0]) != 0)
		goto fail;
	if (ca_file != NULL) {
		if (SSL_CTX_load_verify_file((*out)->ssl_ctx, ca_file) != 1) {
			RD_LOG(RD_LOG_WARN, "%s: no usable CA certificate", ca_file);
			goto fail;
		}
		(*out)->ca_mode = 1;
	}
	return 0;
fail:
	ERR_clear_error();
	rd_tls_ctx_free(*out);
	*out = NULL;
	return RD_ERR_CRYPTO;
}

void rd_tls_ctx_free(struct rd_tls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	SSL_CTX_free(ctx->ssl_ctx);
	free(ctx);
}

/* ---- transports ---------------------------------------------------------------------------
 * struct conn_type is the table of functions (Redis's ConnectionType); the public
 * rd_tls_conn_* calls dispatch through it. */

struct conn_type {
	const char *name;
	int (*handshake)(struct rd_tls_conn *c, enum rd_tls_want *want);
	int (*read)(struct rd_tls_conn *c, void *buf, size_t n, size_t *got);
	int (*write)(struct rd_tls_conn *c, const void *buf, size_t n, size_t *put);
	size_t (*pending)(const struct rd_tls_conn *c);
	void (*close)(struct rd_tls_conn *c);
};

struct rd_tls_conn {
	const struct conn_type *type;
	int fd;
	enum rd_tls_want want;
	char reason[REASON_MAX];
	/* TLS only */
	SSL *ssl;
	int is_server;
	int ca_mode;
	int has_pin;
	uint8_t pin[RD_TLS_FP_LEN];
	int hs_done;    /* handshake finished and checked */
	int fatal;      /* a TLS or socket error: no close_notify, no more calls */
	int first_seen; /* the BIO has seen the peer's first byte */
	enum rd_tls_sniff first_kind;
	int eof;       /* recv returned 0 */
	int sys_errno; /* errno of the BIO's last failed call */
	int refused;   /* the verify callback refused the peer (reason set) */
	/* the context's ALPN name, wire form */
	const unsigned char *alpn;
	/* Write batching (tls_write): the records of up to TLS_BATCH plaintext slices are
	 * encrypted into wb and leave in one send. A slice counts as written once all of its
	 * record is on the socket; the caller offers the rest again, as after a short write.
	 * wb exists only while it holds bytes. */
	uint8_t *wb;
	size_t wb_len, wb_sent;
	int collecting; /* the BIO appends to wb instead of sending */
	struct {
		size_t end; /* offset in wb just past this slice's record */
		size_t plain;
	} wrec[TLS_BATCH];
	unsigned nrec, rec_done; /* slices in wb; of them, already reported as written */
};

static void set_reason(struct rd_tls_conn *c, const char *fmt, ...) RD_PRINTF(2, 3);
static void set_reason(struct rd_tls_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
}

enum rd_tls_sniff rd_tls_sniff(const uint8_t *p, size_t n)
{
	if (p == NULL || n < 2)
		return RD_TLS_SNIFF_SHORT;
	if (p[0] == RD_MAGIC0 && p[1] == RD_MAGIC1)
		return RD_TLS_SNIFF_FRAME;
	/* Record types 21 (alert) and 22 (handshake), legacy version 3.x. */
	if ((p[0] == 0x15 || p[0] == 0x16) && p[1] == 0x03)
		return RD_TLS_SNIFF_TLS;
	return RD_TLS_SNIFF_OTHER;
}

/* -- plain ------------------------------------------------------------------------------ */

static int plain_handshake(struct rd_tls_conn *c, enum rd_tls_want *want)
{
	(void)c;
	*want = RD_TLS_WANT_NONE;
	return 0;
}

static int sock_error(struct rd_tls_conn *c, int err)
{
	if (err == EPIPE || err == ECONNRESET) {
		set_reason(c, "peer closed the connection (%s)", strerror(err));
		return RD_ERR_CLOSED;
	}
	set_reason(c, "socket error: %s", strerror(err));
	errno = err;
	return RD_ERR_SYSTEM;
}

static int plain_read(struct rd_tls_conn *c, void *buf, size_t n, size_t *got)
{
	ssize_t r;

	for (;;) {
		r = recv(c->fd, buf, n, 0);
		if (r > 0) {
			*got = (size_t)r;
			if (!c->first_seen && r >= 2) { /* what the peer spoke, as for TLS */
				c->first_seen = 1;
				c->first_kind = rd_tls_sniff(buf, (size_t)r);
			}
			return 0;
		}
		if (r == 0) {
			set_reason(c, "peer closed the connection");
			return RD_ERR_CLOSED;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			c->want = RD_TLS_WANT_READ;
			return 0;
		}
		return sock_error(c, errno);
	}
}

static int plain_write(struct rd_tls_conn *c, const void *buf, size_t n, size_t *put)
{
	ssize_t r;

	for (;;) {
		r = send(c->fd, buf, n, MSG_NOSIGNAL);
		if (r >= 0) {
			*put = (size_t)r;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			c->want = RD_TLS_WANT_WRITE;
			return 0;
		}
		return sock_error(c, errno);
	}
}

static size_t plain_pending(const struct rd_tls_conn *c)
{
	(void)c;
	return 0;
}

static void plain_close(struct rd_tls_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static const struct conn_type plain_type = {
	.name = "plain",
	.handshake = plain_handshake,
	.read = plain_read,
	.write = plain_write,
	.pending = plain_pending,
	.close = plain_close,
};

/* -- the socket BIO under TLS ---------------------------------------------------------- */

static BIO_METHOD *sock_method;
static pthread_once_t sock_method_once = PTHREAD_ONCE_INIT;

/* rd_tls_sniff, and a verdict from one byte too: a TLS record starts with 0x16 or 0x15. */
static enum rd_tls_sniff first_bytes_kind(const uint8_t *p, size_t n)
{
	if (n >= 2)
		return rd_tls_sniff(p, n);
	if (p[0] == 0x15 || p[0] == 0x16)
		return RD_TLS_SNIFF_TLS;
	return p[0] == RD_MAGIC0 ? RD_TLS_SNIFF_FRAME : RD_TLS_SNIFF_OTHER;
}

static int bio_read_ex(BIO *b, char *buf, size_t n, size_t *got)
{
	struct rd_tls_conn *c = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	*got = 0;
	do
		r = recv(c->fd, buf, n, 0);
	while (r < 0 && errno == EINTR);
	if (r > 0) {
		if (!c->first_seen) {
			/* The first byte of any TLS record a peer starts with is 0x16 (or 0x15, an
			 * alert); anything else is not TLS and is not handed to OpenSSL. */
			c->first_seen = 1;
			c->first_kind = first_bytes_kind((const uint8_t *)buf, (size_t)r);
			if (c->first_kind != RD_TLS_SNIFF_TLS)
				return 0;
		}
		*got = (size_t)r;
		return 1;
	}
	if (r == 0) {
		c->eof = 1;
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		BIO_set_retry_read(b);
		return 0;
	}
	c->sys_errno = errno;
	return 0;
}

/* Send what waits in wb, until the socket takes no more: 0, or -1 with sys_errno set. */
static int wb_send(struct rd_tls_conn *c)
{
	ssize_t r;

	while (c->wb_sent < c->wb_len) {
		r = send(c->fd, c->wb + c->wb_sent, c->wb_len - c->wb_sent, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (r < 0) {
			c->sys_errno = errno;
			return -1;
		}
		c->wb_sent += (size_t)r;
	}
	/* all out: an idle link keeps no buffer */
	free(c->wb);
	c->wb = NULL;
	c->wb_len = c->wb_sent = 0;
	return 0;
}

static int bio_write_ex(BIO *b, const char *buf, size_t n, size_t *put)
{
	struct rd_tls_conn *c = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	*put = 0;
	if (c->collecting || c->wb_len > 0) {
		/* batching, or bytes wait in wb: these go behind them, in order */
		if (c->wb == NULL && (c->wb = malloc(TLS_WB_CAP)) == NULL) {
			c->sys_errno = ENOMEM;
			return 0;
		}
		if (n > TLS_WB_CAP - c->wb_len) {
			BIO_set_retry_write(b); /* not while collecting: TLS_WB_CAP holds a batch */
			return 0;
		}
		memcpy(c->wb + c->wb_len, buf, n);
		c->wb_len += n;
		*put = n;
		return 1;
	}
	do
		r = send(c->fd, buf, n, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r >= 0) {
		*put = (size_t)r;
		return 1;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		BIO_set_retry_write(b);
		return 0;
	}
	c->sys_errno = errno;
	return 0;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct rd_tls_conn *c = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		return c != NULL && c->eof;
	default:
		return 0;
	}
}

static void make_sock_method(void)
{
	int idx = BIO_get_new_index();
	BIO_METHOD *m;

	if (idx < 0)
		return;
	m = BIO_meth_new(idx | BIO_TYPE_SOURCE_SINK, "roomdrop socket");
	if (m == NULL)
		return;
	if (BIO_meth_set_read_ex(m, bio_read_ex) != 1 ||
	    BIO_meth_set_write_ex(m, bio_write_ex) != 1 || BIO_meth_set_ctrl(m, bio_ctrl) != 1) {
		BIO_meth_free(m);
		return;
	}
	sock_method = m;
}

/* -- TLS -------------------------------------------------------------------------------- */

static int cert_verify_cb(X509_STORE_CTX *xs, void *arg)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct rd_tls_conn *c = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
	X509 *leaf = X509_STORE_CTX_get0_cert(xs);
	char seen_text[RD_TLS_FP_TEXT_LEN], pin_text[RD_TLS_FP_TEXT_LEN];
	uint8_t seen[RD_TLS_FP_LEN];

	(void)arg;
	if (c == NULL || leaf == NULL)
		return 0;
	/* The server identifies clients by fingerprint: any certificate will do, and the
	 * handshake itself proves the client holds its key. */
	if (c->is_server)
		return 1;
	if (c->ca_mode && X509_verify_cert(xs) != 1) {
		set_reason(c, "server certificate refused: %s",
			   X509_verify_cert_error_string(X509_STORE_CTX_get_error(xs)));
		c->refused = 1;
		return 0;
	}
	if (c->has_pin) {
		if (fp_of_cert(leaf, seen) != 0) {
			set_reason(c, "server certificate has no usable public key");
			c->refused = 1;
			return 0;
		}
		if (!rd_tls_fp_equal(seen, c->pin)) {
			rd_tls_fp_format(seen, seen_text);
			rd_tls_fp_format(c->pin, pin_text);
			set_reason(c, "server fingerprint %s is not the expected %s", seen_text,
				   pin_text);
			X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
			c->refused = 1;
			return 0;
		}
	}
	return 1;
}

/* Turn a failed SSL call into an RD_ERR_* and a reason; drains OpenSSL's error queue. */
static int tls_fail(struct rd_tls_conn *c, int ssl_err, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *lib = e != 0 ? ERR_reason_error_string(e) : NULL;
	int rc;

	c->fatal = 1;
	if (c->first_seen && c->first_kind != RD_TLS_SNIFF_TLS) {
		if (c->first_kind == RD_TLS_SNIFF_FRAME && c->is_server)
			set_reason(c, "peer spoke plaintext roomdrop: it runs without TLS "
				      "(this side requires TLS)");
		else if (c->first_kind == RD_TLS_SNIFF_FRAME)
			set_reason(c, "peer spoke plaintext roomdrop: the server runs without TLS "
				      "(connect without TLS to use it)");
		else
			set_reason(c, "peer does not speak TLS");
		rc = RD_ERR_PROTOCOL;
	} else if (c->refused) {
		rc = RD_ERR_MISMATCH; /* reason set by the callback */
	} else if (c->eof) {
		set_reason(c, "peer closed the connection%s",
			   c->hs_done ? "" : " during the TLS handshake");
		rc = RD_ERR_CLOSED;
	} else if (ssl_err == SSL_ERROR_SYSCALL && c->sys_errno != 0) {
		rc = sock_error(c, c->sys_errno);
		if (rc == RD_ERR_CLOSED && !c->hs_done)
			set_reason(c, "peer closed the connection during the TLS handshake (%s)",
				   strerror(c->sys_errno));
	} else {
		set_reason(c, "%s failed: %s", what, lib != NULL ? lib : "TLS error");
		rc = RD_ERR_CRYPTO;
	}
	ERR_clear_error();
	return rc;
}

static int tls_want(struct rd_tls_conn *c, int ssl_err)
{
	if (ssl_err == SSL_ERROR_WANT_READ) {
		c->want = RD_TLS_WANT_READ;
		return 1;
	}
	if (ssl_err == SSL_ERROR_WANT_WRITE) {
		c->want = RD_TLS_WANT_WRITE;
		return 1;
	}
	return 0;
}

/* After a completed handshake: ALPN agreed, and (client) the pin once more, so that no
 * path through OpenSSL that skips the callback can skip the check. */
static int tls_check_done(struct rd_tls_conn *c)
{
	const unsigned char *alpn = NULL;
	unsigned int alpn_len = 0;
	uint8_t fp[RD_TLS_FP_LEN];
	X509 *peer;

	SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
	if (alpn_len != c->alpn[0] || memcmp(alpn, c->alpn + 1, alpn_len) != 0) {
		set_reason(c, "peer did not agree on ALPN \"%.*s\"", (int)c->alpn[0], c->alpn + 1);
		return RD_ERR_PROTOCOL;
	}
	if (!c->is_server && c->has_pin) {
		peer = SSL_get0_peer_certificate(c->ssl);
		if (peer == NULL || fp_of_cert(peer, fp) != 0 || !rd_tls_fp_equal(fp, c->pin)) {
			set_reason(c, "server fingerprint is not the expected one");
			return RD_ERR_MISMATCH;
		}
	}
	return 0;
}

static int tls_handshake(struct rd_tls_conn *c, enum rd_tls_want *want)
{
	int r, err, rc;

	*want = RD_TLS_WANT_NONE;
	if (c->hs_done)
		return 0;
	if (c->fatal)
		return RD_ERR_STATE;
	ERR_clear_error();
	c->sys_errno = 0;
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		if ((rc = tls_check_done(c)) != 0) {
			c->fatal = 1;
			ERR_clear_error();
			return rc;
		}
		c->hs_done = 1;
		return 0;
	}
	err = SSL_get_error(c->ssl, r);
	if (tls_want(c, err)) {
		*want = c->want;
		return 0;
	}
	return tls_fail(c, err, "TLS handshake");
}

static int tls_read(struct rd_tls_conn *c, void *buf, size_t n, size_t *got)
{
	int err;

	if (!c->hs_done || c->fatal)
		return RD_ERR_STATE;
	ERR_clear_error();
	c->sys_errno = 0;
	if (SSL_read_ex(c->ssl, buf, n, got) == 1)
		return 0;
	*got = 0;
	err = SSL_get_error(c->ssl, 0);
	if (tls_want(c, err))
		return 0;
	if (err == SSL_ERROR_ZERO_RETURN) {
		ERR_clear_error();
		set_reason(c, "peer closed the connection");
		return RD_ERR_CLOSED;
	}
	return tls_fail(c, err, "TLS read");
}

/* Plaintext bytes of the slices whose records are now all on the socket (not reported
 * before); forgets the slices once all are. */
static size_t wb_done(struct rd_tls_conn *c)
{
	size_t done = 0;

	while (c->rec_done < c->nrec && (c->wb == NULL || c->wrec[c->rec_done].end <= c->wb_sent))
		done += c->wrec[c->rec_done++].plain;
	if (c->rec_done == c->nrec)
		c->nrec = c->rec_done = 0;
	return done;
}

static int write_failed(struct rd_tls_conn *c, int err)
{
	if (tls_want(c, err))
		return 0;
	if (err == SSL_ERROR_ZERO_RETURN) {
		ERR_clear_error();
		set_reason(c, "peer closed the connection");
		return RD_ERR_CLOSED;
	}
	return tls_fail(c, err, "TLS write");
}

static int tls_write(struct rd_tls_conn *c, const void *buf, size_t n, size_t *put)
{
	size_t off = 0, w;

	*put = 0;
	if (!c->hs_done || c->fatal)
		return RD_ERR_STATE;
	c->sys_errno = 0;
	/* first what an earlier call encrypted: the caller offers those bytes again */
	if (c->wb_len > 0 && wb_send(c) != 0)
		return tls_fail(c, SSL_ERROR_SYSCALL, "TLS write");
	if (c->nrec > 0) {
		*put = wb_done(c);
		if (*put == 0)
			c->want = RD_TLS_WANT_WRITE;
		return 0;
	}
	if (c->wb_len > 0) { /* not ours (close_notify...), still waiting */
		c->want = RD_TLS_WANT_WRITE;
		return 0;
	}
	ERR_clear_error();
	if (n <= TLS_RECORD_PLAIN) {
		/* one record (chat, notices): straight to the socket, nothing to batch */
		if (SSL_write_ex(c->ssl, buf, n, put) == 1)
			return 0;
		*put = 0;
		return write_failed(c, SSL_get_error(c->ssl, 0));
	}
	/* encrypt up to TLS_BATCH records into wb, then send them together */
	c->collecting = 1;
	while (off < n && c->nrec < TLS_BATCH) {
		size_t k = n - off < TLS_RECORD_PLAIN ? n - off : TLS_RECORD_PLAIN;

		if (SSL_write_ex(c->ssl, (const uint8_t *)buf + off, k, &w) != 1)
			break;
		c->wrec[c->nrec].end = c->wb_len;
		c->wrec[c->nrec].plain = w;
		c->nrec++;
		off += w;
	}
	c->collecting = 0;
	if (c->nrec == 0) /* the first SSL_write_ex failed */
		return write_failed(c, SSL_get_error(c->ssl, 0));
	ERR_clear_error(); /* a later slice's failure shows again on the next call */
	if (wb_send(c) != 0)
		return tls_fail(c, SSL_ERROR_SYSCALL, "TLS write");
	*put = wb_done(c);
	if (*put == 0)
		c->want = RD_TLS_WANT_WRITE;
	return 0;
}

static size_t tls_pending(const struct rd_tls_conn *c)
{
	int n = SSL_pending(c->ssl);

	/* With read-ahead, records not yet decrypted wait in OpenSSL's buffer too, where
	 * poll() cannot see them: they count as one byte, enough for "read before waiting". */
	if (n > 0)
		return (size_t)n;
	return SSL_has_pending(c->ssl) ? 1 : 0;
}

static void tls_close(struct rd_tls_conn *c)
{
	if (c->ssl != NULL) {
		if (c->hs_done && !c->fatal) {
			ERR_clear_error();
			(void)SSL_shutdown(c->ssl); /* one attempt: queues close_notify */
			if (c->wb_len > 0)
				(void)wb_send(c); /* and what waits before it, as far as it goes */
		}
		ERR_clear_error();
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	free(c->wb);
	c->wb = NULL;
	plain_close(c);
}

static const struct conn_type tls_type = {
	.name = "tls",
	.handshake = tls_handshake,
	.read = tls_read,
	.write = tls_write,
	.pending = tls_pending,
	.close = tls_close,
};

/* -- construction and dispatch ------------------------------------------------------------ */

int rd_tls_conn_plain_new(int fd, struct rd_tls_conn **out)
{
	struct rd_tls_conn *c;

	if (out == NULL)
		return RD_ERR_INVAL;
	*out = NULL;
	if (fd < 0)
		return RD_ERR_INVAL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return RD_ERR_NOMEM;
	if (rd_net_set_nonblock(fd, 1) != 0) {
		free(c);
		return RD_ERR_SYSTEM;
	}
	c->type = &plain_type;
	c->fd = fd;
	*out = c;
	return 0;
}

static int is_ip_literal(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

int rd_tls_conn_tls_new(struct rd_tls_ctx *ctx, int fd, const struct rd_tls_expect *expect,
			struct rd_tls_conn **out)
{
	struct rd_tls_conn *c = NULL;
	const char *host = expect != NULL ? expect->host : NULL;
	X509_VERIFY_PARAM *param;
	BIO *bio;
	int rc;

	if (out == NULL)
		return RD_ERR_INVAL;
	*out = NULL;
	if (ctx == NULL || fd < 0 || (ctx->is_server && expect != NULL) ||
	    (ctx->ca_mode && (host == NULL || host[0] == '\0')))
		return RD_ERR_INVAL;
	if (pthread_once(&sock_method_once, make_sock_method) != 0 || sock_method == NULL)
		return RD_ERR_CRYPTO;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return RD_ERR_NOMEM;
	c->type = &tls_type;
	c->fd = fd;
	c->is_server = ctx->is_server;
	c->ca_mode = ctx->ca_mode;
	c->alpn = ctx->alpn;
	if (expect != NULL && expect->has_pin) {
		c->has_pin = 1;
		memcpy(c->pin, expect->pin, RD_TLS_FP_LEN);
	}
	if ((rc = rd_net_set_nonblock(fd, 1)) != 0)
		goto out;
	ERR_clear_error();
	rc = RD_ERR_CRYPTO;
	if ((c->ssl = SSL_new(ctx->ssl_ctx)) == NULL)
		goto out;
	if (SSL_set_app_data(c->ssl, c) != 1)
		goto out;
	if ((bio = BIO_new(sock_method)) == NULL)
		goto out;
	BIO_set_data(bio, c);
	BIO_set_init(bio, 1);
	SSL_set_bio(c->ssl, bio, bio); /* the SSL owns the one reference */
	if (c->is_server) {
		SSL_set_accept_state(c->ssl);
	} else {
		SSL_set_connect_state(c->ssl);
		/* SNI carries names only (RFC 6066). */
		if (host != NULL && host[0] != '\0' && !is_ip_literal(host) &&
		    SSL_set_tlsext_host_name(c->ssl, host) != 1)
			goto out;
		if (c->ca_mode) {
			param = SSL_get0_param(c->ssl);
			X509_VERIFY_PARAM_set_hostflags(param,
							X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			if (is_ip_literal(host) ? X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1 :
						  SSL_set1_host(c->ssl, host) != 1)
				goto out;
		}
	}
	*out = c;
	c = NULL;
	rc = 0;
out:
	ERR_clear_error();
	if (c != NULL) {
		SSL_free(c->ssl);
		free(c);
	}
	return rc;
}

int rd_tls_conn_handshake(struct rd_tls_conn *c, enum rd_tls_want *want)
{
	if (want == NULL)
		return RD_ERR_INVAL;
	*want = RD_TLS_WANT_NONE;
	if (c == NULL)
		return RD_ERR_INVAL;
	c->want = RD_TLS_WANT_NONE;
	c->reason[0] = '\0';
	return c->type->handshake(c, want);
}

int rd_tls_conn_read(struct rd_tls_conn *c, void *buf, size_t n, size_t *got)
{
	if (got == NULL)
		return RD_ERR_INVAL;
	*got = 0;
	if (c == NULL || buf == NULL || n == 0)
		return RD_ERR_INVAL;
	c->want = RD_TLS_WANT_NONE;
	c->reason[0] = '\0';
	return c->type->read(c, buf, n, got);
}

int rd_tls_conn_write(struct rd_tls_conn *c, const void *buf, size_t n, size_t *put)
{
	if (put == NULL)
		return RD_ERR_INVAL;
	*put = 0;
	if (c == NULL || buf == NULL || n == 0)
		return RD_ERR_INVAL;
	c->want = RD_TLS_WANT_NONE;
	c->reason[0] = '\0';
	return c->type->write(c, buf, n, put);
}

size_t rd_tls_conn_pending(const struct rd_tls_conn *c)
{
	return c != NULL ? c->type->pending(c) : 0;
}

enum rd_tls_want rd_tls_conn_want(const struct rd_tls_conn *c)
{
	return c != NULL ? c->want : RD_TLS_WANT_NONE;
}

const char *rd_tls_conn_reason(const struct rd_tls_conn *c)
{
	return c != NULL ? c->reason : "";
}

int rd_tls_conn_peer_fp(const struct rd_tls_conn *c, uint8_t fp[RD_TLS_FP_LEN])
{
	X509 *peer;

	if (fp == NULL)
		return RD_ERR_INVAL;
	memset(fp, 0, RD_TLS_FP_LEN);
	if (c == NULL)
		return RD_ERR_INVAL;
	if (c->ssl == NULL || !c->hs_done)
		return RD_ERR_STATE;
	peer = SSL_get0_peer_certificate(c->ssl);
	if (peer == NULL)
		return RD_ERR_NOT_FOUND;
	return fp_of_cert(peer, fp);
}

enum rd_tls_sniff rd_tls_conn_peer_spoke(const struct rd_tls_conn *c)
{
	return c != NULL && c->first_seen ? c->first_kind : RD_TLS_SNIFF_SHORT;
}

int rd_tls_conn_fd(const struct rd_tls_conn *c)
{
	return c != NULL ? c->fd : -1;
}

int rd_tls_conn_is_tls(const struct rd_tls_conn *c)
{
	return c != NULL && c->type == &tls_type;
}

const char *rd_tls_conn_type_name(const struct rd_tls_conn *c)
{
	return c != NULL ? c->type->name : "none";
}

void rd_tls_conn_close(struct rd_tls_conn *c)
{
	if (c == NULL)
		return;
	c->type->close(c);
	free(c);
}
