/* test_tls.c - identities (files, modes, reload), fingerprints (known vectors, the openssl
 * tool's definition, lenient and hostile parsing), the known_servers trust store, and
 * real TLS 1.3 handshakes over non-blocking socketpairs driven by poll(): pins, client
 * certificates, data through the transport with WANT_WRITE, plaintext/TLS mismatches,
 * and CA mode with a test CA made here. Everything runs on one thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "rd_err.h"
#include "rd_frame.h"
#include "rd_hash.h"
#include "rd_net.h"
#include "rd_proto.h"
#include "rd_tls.h"

#define WAIT_MS 5000   /* upper bound on any wait that is expected to succeed */
#define MAX_STEPS 1000 /* upper bound on poll rounds of one exchange */
#define BIG (1024 * 1024)
#define REASON_CAP 400

/* ---- helpers --------------------------------------------------------------------------- */

struct fixture {
	char dir[64];
	char srv_crt[128], srv_key[128], cli_crt[128], cli_key[128], trust[128];
	struct rd_tls_identity *srv, *cli;
	uint8_t srv_fp[RD_TLS_FP_LEN], cli_fp[RD_TLS_FP_LEN];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/rd_test_tls.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->srv_crt, sizeof(f->srv_crt), "%s/srv/server.crt", f->dir);
	snprintf(f->srv_key, sizeof(f->srv_key), "%s/srv/server.key", f->dir);
	snprintf(f->cli_crt, sizeof(f->cli_crt), "%s/cfg/roomdrop/client.crt", f->dir);
	snprintf(f->cli_key, sizeof(f->cli_key), "%s/cfg/roomdrop/client.key", f->dir);
	snprintf(f->trust, sizeof(f->trust), "%s/cfg/roomdrop/known_servers", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	rd_tls_identity_free(f->srv);
	rd_tls_identity_free(f->cli);
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Both identities made (setup for the handshake tests). */
static void make_identities(struct fixture *f)
{
	assert_int_equal(rd_tls_identity_ensure(f->srv_crt, f->srv_key, "server", &f->srv, NULL),
			 0);
	assert_int_equal(rd_tls_identity_ensure(f->cli_crt, f->cli_key, "alice", &f->cli, NULL), 0);
	rd_tls_identity_fp(f->srv, f->srv_fp);
	rd_tls_identity_fp(f->cli, f->cli_fp);
}

static char *slurp(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "rb");
	char *buf = calloc(1, 1 << 16);

	assert_non_null(fp);
	assert_non_null(buf);
	*n = fread(buf, 1, (1 << 16) - 1, fp);
	fclose(fp);
	return buf;
}

static void spit(const char *path, const char *text)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

static unsigned mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (unsigned)(st.st_mode & 07777);
}

static int count_entries(const char *dir)
{
	char cmd[256];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

/* Two ends of a non-blocking stream socketpair. */
static void socket_pair(int fds[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	assert_int_equal(rd_net_set_nonblock(fds[0], 1), 0);
	assert_int_equal(rd_net_set_nonblock(fds[1], 1), 0);
}

/* Drive both handshakes until each is done or failed; rc[i] gets the result. A side that
 * fails shuts its socket down, as a caller would close it, so that the other side sees
 * the end instead of waiting. Fails the test if a poll round times out. */
static void drive_handshakes(struct rd_tls_conn *c[2], int rc[2])
{
	enum rd_tls_want want[2] = { RD_TLS_WANT_READ, RD_TLS_WANT_READ };
	int finished[2] = { 0, 0 }, step, i, nfds;
	struct pollfd pfd[2];

	for (step = 0; step < MAX_STEPS && !(finished[0] && finished[1]); step++) {
		for (i = 0; i < 2; i++) {
			if (finished[i])
				continue;
			rc[i] = rd_tls_conn_handshake(c[i], &want[i]);
			if (rc[i] != 0 || want[i] == RD_TLS_WANT_NONE) {
				finished[i] = 1;
				if (rc[i] != 0)
					shutdown(rd_tls_conn_fd(c[i]), SHUT_RDWR);
			}
		}
		nfds = 0;
		for (i = 0; i < 2; i++) {
			if (finished[i])
				continue;
			pfd[nfds].fd = rd_tls_conn_fd(c[i]);
			pfd[nfds].events = want[i] == RD_TLS_WANT_WRITE ? POLLOUT : POLLIN;
			pfd[nfds].revents = 0;
			nfds++;
		}
		if (nfds > 0)
			assert_true(poll(pfd, (nfds_t)nfds, WAIT_MS) > 0);
	}
	assert_true(finished[0] && finished[1]);
}

struct tls_pair {
	int fds[2];
	struct rd_tls_ctx *sctx, *cctx;
	struct rd_tls_conn *c[2]; /* [0] server, [1] client */
	int rc[2];
};

/* A server conn on fds[0] and a client conn on fds[1]; handshake driven to its end. */
static void tls_pair_open(struct tls_pair *p, const struct rd_tls_identity *srv, unsigned sflags,
			  const struct rd_tls_identity *cli, const char *ca_file,
			  const struct rd_tls_expect *expect)
{
	memset(p, 0, sizeof(*p));
	socket_pair(p->fds);
	assert_int_equal(rd_tls_ctx_server_new(srv, sflags, &p->sctx), 0);
	assert_int_equal(rd_tls_ctx_client_new(cli, ca_file, 0, &p->cctx), 0);
	assert_int_equal(rd_tls_conn_tls_new(p->sctx, p->fds[0], NULL, &p->c[0]), 0);
	assert_int_equal(rd_tls_conn_tls_new(p->cctx, p->fds[1], expect, &p->c[1]), 0);
	/* The connections keep the contexts alive. */
	rd_tls_ctx_free(p->sctx);
	rd_tls_ctx_free(p->cctx);
	p->sctx = p->cctx = NULL;
	drive_handshakes(p->c, p->rc);
}

static void tls_pair_close(struct tls_pair *p)
{
	rd_tls_conn_close(p->c[0]);
	rd_tls_conn_close(p->c[1]);
}

static void wait_for(struct rd_tls_conn *c, enum rd_tls_want w)
{
	struct pollfd pfd = { .fd = rd_tls_conn_fd(c),
			      .events = w == RD_TLS_WANT_WRITE ? POLLOUT : POLLIN };

	assert_true(poll(&pfd, 1, WAIT_MS) > 0);
}

/* Read exactly n bytes from c (polling as the transport asks). */
static void read_exact(struct rd_tls_conn *c, uint8_t *buf, size_t n)
{
	size_t have = 0, got;
	int steps = 0;

	while (have < n) {
		assert_int_equal(rd_tls_conn_read(c, buf + have, n - have, &got), 0);
		have += got;
		if (got == 0) {
			assert_int_not_equal(rd_tls_conn_want(c), RD_TLS_WANT_NONE);
			wait_for(c, rd_tls_conn_want(c));
			assert_true(++steps < 100000);
		}
	}
}

static void write_all(struct rd_tls_conn *c, const uint8_t *buf, size_t n)
{
	size_t done = 0, put;

	while (done < n) {
		assert_int_equal(rd_tls_conn_write(c, buf + done, n - done, &put), 0);
		done += put;
		if (put == 0)
			wait_for(c, rd_tls_conn_want(c));
	}
}

/* ---- identities -------------------------------------------------------------------------- */

static void test_identity_created_private_and_reloaded_identical(void **state)
{
	struct fixture *f = *state;
	struct rd_tls_identity *again = NULL, *loaded = NULL;
	uint8_t fp1[RD_TLS_FP_LEN], fp2[RD_TLS_FP_LEN], fp3[RD_TLS_FP_LEN];
	char dir[160], *k1, *k2, *c1, *c2;
	size_t nk1, nk2, nc1, nc2;
	int created = -1;

	/* cfg/roomdrop does not exist: both levels are made 0700. */
	assert_int_equal(rd_tls_identity_ensure(f->cli_crt, f->cli_key, "alice", &f->cli, &created),
			 0);
	assert_int_equal(created, 1);
	assert_int_equal(mode_of(f->cli_key), 0600);
	assert_int_equal(mode_of(f->cli_crt), 0600);
	snprintf(dir, sizeof(dir), "%s/cfg", f->dir);
	assert_int_equal(mode_of(dir), 0700);
	snprintf(dir, sizeof(dir), "%s/cfg/roomdrop", f->dir);
	assert_int_equal(mode_of(dir), 0700);
	assert_int_equal(count_entries(dir), 2); /* no temporary file left behind */
	rd_tls_identity_fp(f->cli, fp1);

	k1 = slurp(f->cli_key, &nk1);
	c1 = slurp(f->cli_crt, &nc1);
	assert_non_null(strstr(k1, "-----BEGIN PRIVATE KEY-----"));
	assert_non_null(strstr(c1, "-----BEGIN CERTIFICATE-----"));

	assert_int_equal(rd_tls_identity_ensure(f->cli_crt, f->cli_key, "alice", &again, &created),
			 0);
	assert_int_equal(created, 0);
	rd_tls_identity_fp(again, fp2);
	assert_memory_equal(fp1, fp2, RD_TLS_FP_LEN);
	assert_int_equal(rd_tls_identity_load(f->cli_crt, f->cli_key, &loaded), 0);
	rd_tls_identity_fp(loaded, fp3);
	assert_memory_equal(fp1, fp3, RD_TLS_FP_LEN);

	k2 = slurp(f->cli_key, &nk2);
	c2 = slurp(f->cli_crt, &nc2);
	assert_int_equal(nk1, nk2);
	assert_int_equal(nc1, nc2);
	assert_memory_equal(k1, k2, nk1);
	assert_memory_equal(c1, c2, nc1);
	free(k1);
	free(k2);
	free(c1);
	free(c2);
	rd_tls_identity_free(again);
	rd_tls_identity_free(loaded);
}

static void test_identity_certificate_is_self_signed_ed25519_for_20_years(void **state)
{
	struct fixture *f = *state;
	char *pem, cn[80];
	size_t n;
	BIO *b;
	X509 *x;
	int days = 0, secs = 0;

	make_identities(f);
	pem = slurp(f->srv_crt, &n);
	b = BIO_new_mem_buf(pem, (int)n);
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	assert_non_null(x);
	assert_int_equal(EVP_PKEY_get_id(X509_get0_pubkey(x)), EVP_PKEY_ED25519);
	assert_int_equal(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
						   sizeof(cn)),
			 6);
	assert_string_equal(cn, "server");
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
	assert_int_equal(X509_verify(x, X509_get0_pubkey(x)), 1);
	assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)), 1);
	assert_true(days >= 20 * 365 - 1);
	assert_true(X509_cmp_current_time(X509_get0_notBefore(x)) < 0);
	X509_free(x);
	BIO_free(b);
	free(pem);
}

static void test_identity_cert_made_again_over_kept_key(void **state)
{
	struct fixture *f = *state;
	struct rd_tls_identity *id = NULL;
	uint8_t fp[RD_TLS_FP_LEN];
	int created = -1;

	make_identities(f);
	assert_int_equal(unlink(f->srv_crt), 0);
	assert_int_equal(rd_tls_identity_ensure(f->srv_crt, f->srv_key, "server", &id, &created),
			 0);
	assert_int_equal(created, 0);
	rd_tls_identity_fp(id, fp);
	assert_memory_equal(fp, f->srv_fp, RD_TLS_FP_LEN);
	assert_int_equal(mode_of(f->srv_crt), 0600);
	rd_tls_identity_free(id);
}

static void test_identity_never_replaced_when_key_missing(void **state)
{
	struct fixture *f = *state;
	struct rd_tls_identity *id = NULL;
	char *before, *after;
	size_t nb, na;
	int created = -1;

	make_identities(f);
	before = slurp(f->srv_crt, &nb);
	assert_int_equal(unlink(f->srv_key), 0);
	assert_int_equal(rd_tls_identity_ensure(f->srv_crt, f->srv_key, "server", &id, &created),
			 RD_ERR_NOT_FOUND);
	assert_null(id);
	assert_int_equal(created, 0);
	assert_int_equal(access(f->srv_key, F_OK), -1);
	after = slurp(f->srv_crt, &na);
	assert_int_equal(nb, na);
	assert_memory_equal(before, after, nb);
	free(before);
	free(after);
}

static void test_identity_made_once_by_processes_starting_together(void **state)
{
	struct fixture *f = *state;
	uint8_t fp[RD_TLS_FP_LEN], child_fp[RD_TLS_FP_LEN];
	struct rd_tls_identity *id = NULL;
	int pipes[2], i, st, made = 0;
	pid_t pids[4];

	assert_int_equal(pipe(pipes), 0);
	for (i = 0; i < 4; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct rd_tls_identity *mine = NULL;
			uint8_t buf[1 + RD_TLS_FP_LEN];
			int created = 0;

			if (rd_tls_identity_ensure(f->cli_crt, f->cli_key, "alice", &mine,
						   &created) != 0)
				_exit(1);
			buf[0] = (uint8_t)created;
			rd_tls_identity_fp(mine, buf + 1);
			if (write(pipes[1], buf, sizeof(buf)) != (ssize_t)sizeof(buf))
				_exit(1);
			_exit(0);
		}
	}
	close(pipes[1]);
	for (i = 0; i < 4; i++) {
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(rd_tls_identity_load(f->cli_crt, f->cli_key, &id), 0);
	rd_tls_identity_fp(id, fp);
	for (i = 0; i < 4; i++) {
		uint8_t buf[1 + RD_TLS_FP_LEN];

		assert_int_equal(read(pipes[0], buf, sizeof(buf)), sizeof(buf));
		made += buf[0];
		memcpy(child_fp, buf + 1, RD_TLS_FP_LEN);
		assert_memory_equal(child_fp, fp, RD_TLS_FP_LEN);
	}
	assert_int_equal(made, 1);
	close(pipes[0]);
	rd_tls_identity_free(id);
}

static void test_identity_load_errors(void **state)
{
	struct fixture *f = *state;
	struct rd_tls_identity *id = NULL;
	char junk[160], enc[160], name[100];
	EVP_PKEY *k;
	FILE *fp;

	make_identities(f);
	assert_int_equal(rd_tls_identity_load("/nonexistent/x.crt", f->srv_key, &id),
			 RD_ERR_NOT_FOUND);
	assert_int_equal(rd_tls_identity_load(f->srv_crt, "/nonexistent/x.key", &id),
			 RD_ERR_NOT_FOUND);
	snprintf(junk, sizeof(junk), "%s/junk", f->dir);
	spit(junk, "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n");
	assert_int_equal(rd_tls_identity_load(junk, f->srv_key, &id), RD_ERR_CRYPTO);
	assert_int_equal(rd_tls_identity_load(f->srv_crt, junk, &id), RD_ERR_CRYPTO);
	/* The client's key is not the server certificate's. */
	assert_int_equal(rd_tls_identity_load(f->srv_crt, f->cli_key, &id), RD_ERR_MISMATCH);
	/* An encrypted key is refused without prompting for a passphrase. */
	snprintf(enc, sizeof(enc), "%s/enc.key", f->dir);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	fp = fopen(enc, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PrivateKey(fp, k, EVP_aes_256_cbc(), NULL, 0, NULL, "secret"),
			 1);
	fclose(fp);
	EVP_PKEY_free(k);
	assert_int_equal(rd_tls_identity_load(f->srv_crt, enc, &id), RD_ERR_CRYPTO);
	assert_null(id);
	/* Names the certificate cannot hold. */
	assert_int_equal(rd_tls_identity_ensure(junk, junk, "", &id, NULL), RD_ERR_INVAL);
	assert_int_equal(rd_tls_identity_ensure(junk, junk, "a\nb", &id, NULL), RD_ERR_INVAL);
	memset(name, 'x', 65);
	name[65] = '\0';
	assert_int_equal(rd_tls_identity_ensure(junk, junk, name, &id, NULL), RD_ERR_INVAL);
	assert_int_equal(rd_tls_identity_ensure(junk, junk, NULL, &id, NULL), RD_ERR_INVAL);
	assert_null(id);
}

/* ---- fingerprints ------------------------------------------------------------------------ */

static void test_fp_is_sha256_of_spki_as_openssl_computes_it(void **state)
{
	struct fixture *f = *state;
	uint8_t want[RD_TLS_FP_LEN];
	unsigned char *der = NULL;
	unsigned int len = 0;
	char *pem;
	size_t n;
	int dlen;
	BIO *b;
	X509 *x;

	make_identities(f);
	pem = slurp(f->srv_crt, &n);
	b = BIO_new_mem_buf(pem, (int)n);
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	assert_non_null(x);
	dlen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	assert_true(dlen > 0);
	assert_int_equal(EVP_Digest(der, (size_t)dlen, want, &len, EVP_sha256(), NULL), 1);
	assert_memory_equal(want, f->srv_fp, RD_TLS_FP_LEN);
	assert_memory_not_equal(f->srv_fp, f->cli_fp, RD_TLS_FP_LEN);
	/* The same from the certificate file alone. */
	memset(want, 0, sizeof(want));
	assert_int_equal(rd_tls_cert_file_fp(f->srv_crt, want), 0);
	assert_memory_equal(want, f->srv_fp, RD_TLS_FP_LEN);
	assert_int_equal(rd_tls_cert_file_fp(f->srv_key, want), RD_ERR_CRYPTO);
	assert_int_equal(rd_tls_cert_file_fp("/nonexistent/c.crt", want), RD_ERR_NOT_FOUND);
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(b);
	free(pem);
}

static void test_fp_format_known_vectors(void **state)
{
	uint8_t fp[RD_TLS_FP_LEN], back[RD_TLS_FP_LEN];
	char text[RD_TLS_FP_TEXT_LEN];
	size_t i;

	(void)state;
	for (i = 0; i < RD_TLS_FP_LEN; i++)
		fp[i] = (uint8_t)i;
	rd_tls_fp_format(fp, text);
	/* Python: base64.b32encode(bytes(range(32))), '=' removed, grouped by 4. */
	assert_string_equal(text,
			    "AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT-CQKR-MFYY-DENB-WHA5-DYPQ");
	assert_int_equal(strlen(text), RD_TLS_FP_TEXT_LEN - 1);
	assert_int_equal(rd_tls_fp_parse(text, back), 0);
	assert_memory_equal(fp, back, RD_TLS_FP_LEN);
	memset(fp, 0xff, sizeof(fp));
	rd_tls_fp_format(fp, text);
	assert_string_equal(text,
			    "7777-7777-7777-7777-7777-7777-7777-7777-7777-7777-7777-7777-777Q");
}

static void test_fp_format_round_trips(void **state)
{
	uint8_t fp[RD_TLS_FP_LEN], back[RD_TLS_FP_LEN];
	char text[RD_TLS_FP_TEXT_LEN];
	int i, j;

	(void)state;
	for (i = 0; i < 1000; i++) {
		assert_int_equal(rd_random(fp, sizeof(fp)), 0);
		rd_tls_fp_format(fp, text);
		assert_int_equal(strlen(text), 64);
		for (j = 0; j < 64; j++) {
			if (j % 5 == 4)
				assert_int_equal(text[j], '-');
			else
				assert_non_null(
					strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", text[j]));
		}
		assert_int_equal(rd_tls_fp_parse(text, back), 0);
		assert_memory_equal(fp, back, RD_TLS_FP_LEN);
		assert_true(rd_tls_fp_equal(fp, back));
		back[i % RD_TLS_FP_LEN] ^= 1;
		assert_false(rd_tls_fp_equal(fp, back));
	}
}

static void test_fp_parse_lenient(void **state)
{
	static const char *same[] = {
		"AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT-CQKR-MFYY-DENB-WHA5-DYPQ",
		"aaaq-eaye-auda-ocaj-bifq-ydio-b4ib-ceqt-cqkr-mfyy-denb-wha5-dypq",
		"AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPQ",
		"AAAQ EAYE AUDA OCAJ BIFQ YDIO B4IB CEQT CQKR MFYY DENB WHA5 DYPQ",
		"  AaAq-EAYE:auda--OCAJ BIFQYDIO-B4IB-CEQT-CQKR-MFYY-DENB-WHA5-DYPQ  ",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
		"00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:"
		"1C:1D:1E:1F",
		"00010203 04050607 08090a0b 0c0d0e0f 10111213 14151617 18191a1b 1c1d1e1f",
	};
	uint8_t want[RD_TLS_FP_LEN], got[RD_TLS_FP_LEN];
	size_t i;

	(void)state;
	for (i = 0; i < RD_TLS_FP_LEN; i++)
		want[i] = (uint8_t)i;
	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		memset(got, 0xee, sizeof(got));
		assert_int_equal(rd_tls_fp_parse(same[i], got), 0);
		assert_memory_equal(want, got, RD_TLS_FP_LEN);
	}
}

static void test_fp_parse_rejects_hostile_input(void **state)
{
	static const char *bad[] = {
		"",
		"----",
		"AAAQ",
		/* 51 and 53 base32 characters */
		"AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT-CQKR-MFYY-DENB-WHA5-DYP",
		"AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT-CQKR-MFYY-DENB-WHA5-DYPQA",
		/* outside the alphabet: 0, 1, 8, 9 and punctuation */
		"AAA0-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT-CQKR-MFYY-DENB-WHA5-DYPQ",
		"AAA1-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT-CQKR-MFYY-DENB-WHA5-DYPQ",
		"AAA8-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT-CQKR-MFYY-DENB-WHA5-DYPQ",
		"AAAQ_EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT-CQKR-MFYY-DENB-WHA5-DYPQ",
		"AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT-CQKR-MFYY-DENB-WHA5-DYP=",
		"AAAQ\tEAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT-CQKR-MFYY-DENB-WHA5-DYPQ",
		/* non-zero padding bits: a second spelling of a fingerprint */
		"7777-7777-7777-7777-7777-7777-7777-7777-7777-7777-7777-7777-7777",
		"7777-7777-7777-7777-7777-7777-7777-7777-7777-7777-7777-7777-777R",
		/* 63 and 65 hex digits, and a non-hex digit */
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f0",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g",
		/* a prefix people might paste */
		"SHA256:AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT-CQKR-MFYY-DENB-WHA5-DYPQ",
		"AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT-CQKR-MFYY-DENB-WHA5-DYPQ\n",
		"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
	};
	uint8_t got[RD_TLS_FP_LEN], zero[RD_TLS_FP_LEN] = { 0 };
	char *huge;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(got, 0xee, sizeof(got));
		assert_int_equal(rd_tls_fp_parse(bad[i], got), RD_ERR_INVAL);
		assert_memory_equal(got, zero, RD_TLS_FP_LEN);
	}
	assert_int_equal(rd_tls_fp_parse(NULL, got), RD_ERR_INVAL);
	assert_int_equal(rd_tls_fp_parse("x", NULL), RD_ERR_INVAL);
	/* Megabytes of separators around a valid fingerprint: refused after 256 bytes. */
	huge = malloc(4u << 20);
	assert_non_null(huge);
	memset(huge, '-', (4u << 20) - 1);
	memcpy(huge + 10, "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPQ", 52);
	huge[(4u << 20) - 1] = '\0';
	assert_int_equal(rd_tls_fp_parse(huge, got), RD_ERR_INVAL);
	free(huge);
}

/* ---- trust store ----------------------------------------------------------------------- */

static void test_trust_new_match_changed_replace(void **state)
{
	struct fixture *f = *state;
	uint8_t a[RD_TLS_FP_LEN], b[RD_TLS_FP_LEN], known[RD_TLS_FP_LEN], got[RD_TLS_FP_LEN];
	enum rd_tls_trust res = RD_TRUST_MATCH;
	char line[200], text[RD_TLS_FP_TEXT_LEN], *file;
	size_t n;

	memset(a, 0xa1, sizeof(a));
	memset(b, 0xb2, sizeof(b));
	/* Missing file and missing directory: first use. */
	assert_int_equal(rd_tls_trust_check(f->trust, "example.org", 7878, a, &res, known), 0);
	assert_int_equal(res, RD_TRUST_NEW);
	assert_int_equal(rd_tls_trust_lookup(f->trust, "example.org", 7878, got), RD_ERR_NOT_FOUND);
	assert_int_equal(rd_tls_trust_add(f->trust, "example.org", 7878, a), 0);
	assert_int_equal(mode_of(f->trust), 0600);
	file = slurp(f->trust, &n);
	rd_tls_fp_format(a, text);
	snprintf(line, sizeof(line), "example.org:7878 %s\n", text);
	assert_string_equal(file, line);
	free(file);

	assert_int_equal(rd_tls_trust_check(f->trust, "example.org", 7878, a, &res, known), 0);
	assert_int_equal(res, RD_TRUST_MATCH);
	/* Host names compare case-insensitively; the port is part of the key. */
	assert_int_equal(rd_tls_trust_check(f->trust, "EXAMPLE.Org", 7878, a, &res, known), 0);
	assert_int_equal(res, RD_TRUST_MATCH);
	assert_int_equal(rd_tls_trust_check(f->trust, "example.org", 7879, a, &res, known), 0);
	assert_int_equal(res, RD_TRUST_NEW);

	assert_int_equal(rd_tls_trust_check(f->trust, "example.org", 7878, b, &res, known), 0);
	assert_int_equal(res, RD_TRUST_CHANGED);
	assert_memory_equal(known, a, RD_TLS_FP_LEN);
	/* add never overwrites; adding the same again is fine. */
	assert_int_equal(rd_tls_trust_add(f->trust, "example.org", 7878, b), RD_ERR_EXISTS);
	assert_int_equal(rd_tls_trust_add(f->trust, "example.org", 7878, a), 0);
	assert_int_equal(rd_tls_trust_check(f->trust, "example.org", 7878, b, &res, NULL), 0);
	assert_int_equal(res, RD_TRUST_CHANGED);

	/* Accept the new key. */
	assert_int_equal(rd_tls_trust_replace(f->trust, "example.org", 7878, b), 0);
	assert_int_equal(rd_tls_trust_check(f->trust, "example.org", 7878, b, &res, known), 0);
	assert_int_equal(res, RD_TRUST_MATCH);
	assert_int_equal(rd_tls_trust_lookup(f->trust, "example.org", 7878, got), 0);
	assert_memory_equal(got, b, RD_TLS_FP_LEN);
	assert_int_equal(mode_of(f->trust), 0600);

	assert_int_equal(rd_tls_trust_remove(f->trust, "example.org", 7878), 0);
	assert_int_equal(rd_tls_trust_remove(f->trust, "example.org", 7878), RD_ERR_NOT_FOUND);
	assert_int_equal(rd_tls_trust_check(f->trust, "example.org", 7878, b, &res, known), 0);
	assert_int_equal(res, RD_TRUST_NEW);
}

static void test_trust_ipv6_in_brackets_compared_by_value(void **state)
{
	struct fixture *f = *state;
	uint8_t a[RD_TLS_FP_LEN], got[RD_TLS_FP_LEN];
	enum rd_tls_trust res;
	char *file;
	size_t n;

	memset(a, 0x3c, sizeof(a));
	assert_int_equal(rd_tls_trust_add(f->trust, "2001:DB8:0:0::1", 443, a), 0);
	file = slurp(f->trust, &n);
	assert_memory_equal(file, "[2001:db8::1]:443 ", 18);
	free(file);
	assert_int_equal(rd_tls_trust_lookup(f->trust, "[2001:db8::0:1]", 443, got), 0);
	assert_memory_equal(got, a, RD_TLS_FP_LEN);
	assert_int_equal(rd_tls_trust_check(f->trust, "2001:db8::1", 443, a, &res, NULL), 0);
	assert_int_equal(res, RD_TRUST_MATCH);
	assert_int_equal(rd_tls_trust_check(f->trust, "::1", 443, a, &res, NULL), 0);
	assert_int_equal(res, RD_TRUST_NEW);
}

static void test_trust_malformed_lines_ignored_and_kept(void **state)
{
	struct fixture *f = *state;
	uint8_t a[RD_TLS_FP_LEN], b[RD_TLS_FP_LEN], got[RD_TLS_FP_LEN];
	char text_a[RD_TLS_FP_TEXT_LEN], text_b[RD_TLS_FP_TEXT_LEN], content[2048], *file;
	enum rd_tls_trust res;
	size_t n;

	memset(a, 0x11, sizeof(a));
	memset(b, 0x22, sizeof(b));
	rd_tls_fp_format(a, text_a);
	rd_tls_fp_format(b, text_b);
	assert_int_equal(rd_tls_trust_add(f->trust, "seed.invalid", 1, a), 0); /* makes the dir */
	snprintf(content, sizeof(content),
		 "# my servers\n"
		 "\n"
		 "   \t\n"
		 "garbage line without fingerprint\n"
		 "host.one:7878 NOT-A-FINGERPRINT\n"
		 "host.one:99999 %s\n"
		 "host.one %s\n"
		 "::1:7878 %s\n"
		 "host one:7878 %s\n"
		 "host.one:7878 %s extra\n"
		 "\t host.one:7878   %s   # note\r\n"
		 "host.one:7878 %s\n"
		 "other.host:7878 %s", /* no final newline */
		 text_b, text_b, text_b, text_b, text_b, text_a, text_b, text_b);
	spit(f->trust, content);
	/* The first well-formed entry wins; every malformed line was skipped. */
	assert_int_equal(rd_tls_trust_lookup(f->trust, "host.one", 7878, got), 0);
	assert_memory_equal(got, a, RD_TLS_FP_LEN);
	assert_int_equal(rd_tls_trust_check(f->trust, "other.host", 7878, b, &res, NULL), 0);
	assert_int_equal(res, RD_TRUST_MATCH);
	assert_int_equal(rd_tls_trust_lookup(f->trust, "::1", 7878, got), RD_ERR_NOT_FOUND);

	/* Replace drops both entries of host.one and keeps every other line as it was. */
	assert_int_equal(rd_tls_trust_replace(f->trust, "host.one", 7878, b), 0);
	file = slurp(f->trust, &n);
	assert_non_null(strstr(file, "# my servers\n\n   \t\ngarbage line without fingerprint\n"
				     "host.one:7878 NOT-A-FINGERPRINT\n"));
	assert_non_null(strstr(file, "host.one:7878 ")); /* the malformed ones and the new */
	assert_null(strstr(file, text_a));
	assert_non_null(strstr(file, "other.host:7878 "));
	assert_int_equal(file[n - 1], '\n');
	free(file);
	assert_int_equal(rd_tls_trust_lookup(f->trust, "host.one", 7878, got), 0);
	assert_memory_equal(got, b, RD_TLS_FP_LEN);
	assert_int_equal(rd_tls_trust_lookup(f->trust, "other.host", 7878, got), 0);
	assert_memory_equal(got, b, RD_TLS_FP_LEN);
}

static void test_trust_refuses_hosts_the_file_cannot_hold(void **state)
{
	struct fixture *f = *state;
	static const char *bad[] = { "", "a b", "a\tb", "a\nb", "#x", "[", "a]", "[]" };
	uint8_t a[RD_TLS_FP_LEN] = { 0 };
	enum rd_tls_trust res;
	char longname[300];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(rd_tls_trust_add(f->trust, bad[i], 7878, a), RD_ERR_INVAL);
		assert_int_equal(rd_tls_trust_check(f->trust, bad[i], 7878, a, &res, NULL),
				 RD_ERR_INVAL);
	}
	assert_int_equal(rd_tls_trust_add(f->trust, "ok.host", 0, a), RD_ERR_INVAL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(rd_tls_trust_add(f->trust, longname, 7878, a), RD_ERR_INVAL);
	assert_int_equal(access(f->trust, F_OK), -1); /* nothing was written */
}

static void test_trust_concurrent_adds_from_processes_all_kept(void **state)
{
	struct fixture *f = *state;
	uint8_t fp[RD_TLS_FP_LEN], got[RD_TLS_FP_LEN];
	char host[32];
	pid_t pids[6];
	int i, j, st;

	for (i = 0; i < 6; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			for (j = 0; j < 15; j++) {
				snprintf(host, sizeof(host), "h%d-%d.test", i, j);
				memset(fp, i * 16 + j, sizeof(fp));
				if (rd_tls_trust_add(f->trust, host, 7878, fp) != 0)
					_exit(1);
			}
			_exit(0);
		}
	}
	for (i = 0; i < 6; i++) {
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	for (i = 0; i < 6; i++) {
		for (j = 0; j < 15; j++) {
			snprintf(host, sizeof(host), "h%d-%d.test", i, j);
			memset(fp, i * 16 + j, sizeof(fp));
			assert_int_equal(rd_tls_trust_lookup(f->trust, host, 7878, got), 0);
			assert_memory_equal(got, fp, RD_TLS_FP_LEN);
		}
	}
}

static void test_config_dir_follows_xdg_then_home(void **state)
{
	char out[256], small[8];

	(void)state;
	setenv("XDG_CONFIG_HOME", "/x/cfg", 1);
	setenv("HOME", "/home/u", 1);
	assert_int_equal(rd_tls_config_dir(out, sizeof(out)), 0);
	assert_string_equal(out, "/x/cfg/roomdrop");
	setenv("XDG_CONFIG_HOME", "relative", 1);
	assert_int_equal(rd_tls_config_dir(out, sizeof(out)), 0);
	assert_string_equal(out, "/home/u/.config/roomdrop");
	unsetenv("XDG_CONFIG_HOME");
	assert_int_equal(rd_tls_config_dir(out, sizeof(out)), 0);
	assert_string_equal(out, "/home/u/.config/roomdrop");
	assert_int_equal(rd_tls_config_dir(small, sizeof(small)), RD_ERR_TOO_BIG);
	unsetenv("HOME");
	assert_int_equal(rd_tls_config_dir(out, sizeof(out)), RD_ERR_NOT_FOUND);
}

/* ---- handshakes -------------------------------------------------------------------------- */

static void test_tls_pinned_handshake_and_both_fingerprints(void **state)
{
	struct fixture *f = *state;
	struct rd_tls_expect exp = { .host = "127.0.0.1", .has_pin = 1 };
	uint8_t fp[RD_TLS_FP_LEN];
	struct tls_pair p;

	make_identities(f);
	memcpy(exp.pin, f->srv_fp, RD_TLS_FP_LEN);
	tls_pair_open(&p, f->srv, RD_TLS_REQUIRE_PEER_CERT, f->cli, NULL, &exp);
	assert_int_equal(p.rc[0], 0);
	assert_int_equal(p.rc[1], 0);
	assert_int_equal(rd_tls_conn_peer_spoke(p.c[0]), RD_TLS_SNIFF_TLS);
	assert_int_equal(rd_tls_conn_peer_spoke(p.c[1]), RD_TLS_SNIFF_TLS);
	assert_true(rd_tls_conn_is_tls(p.c[0]));
	assert_string_equal(rd_tls_conn_type_name(p.c[1]), "tls");
	/* The server sees the client's fingerprint, the client the server's. */
	assert_int_equal(rd_tls_conn_peer_fp(p.c[0], fp), 0);
	assert_memory_equal(fp, f->cli_fp, RD_TLS_FP_LEN);
	assert_int_equal(rd_tls_conn_peer_fp(p.c[1], fp), 0);
	assert_memory_equal(fp, f->srv_fp, RD_TLS_FP_LEN);
	tls_pair_close(&p);
}

static void test_tls_over_tcp_loopback(void **state)
{
	struct fixture *f = *state;
	struct rd_tls_expect exp = { .host = "127.0.0.1", .has_pin = 1 };
	struct rd_tls_ctx *sctx = NULL, *cctx = NULL;
	struct rd_tls_conn *c[2] = { NULL, NULL };
	int lfd = -1, sfd = -1, cfd = -1, rc[2];
	uint8_t fp[RD_TLS_FP_LEN], buf[32];
	uint16_t port = 0;

	make_identities(f);
	memcpy(exp.pin, f->srv_fp, RD_TLS_FP_LEN);
	assert_int_equal(rd_net_listen("127.0.0.1", 0, 4, &lfd, &port), 0);
	assert_int_equal(rd_net_connect("127.0.0.1", port, WAIT_MS, &cfd), 0);
	assert_int_equal(rd_net_wait(lfd, POLLIN, WAIT_MS), 0);
	assert_int_equal(rd_net_accept(lfd, &sfd, NULL, 0, NULL), 0);
	assert_int_equal(rd_tls_ctx_server_new(f->srv, RD_TLS_REQUIRE_PEER_CERT, &sctx), 0);
	assert_int_equal(rd_tls_ctx_client_new(f->cli, NULL, 0, &cctx), 0);
	assert_int_equal(rd_tls_conn_tls_new(sctx, sfd, NULL, &c[0]), 0);
	assert_int_equal(rd_tls_conn_tls_new(cctx, cfd, &exp, &c[1]), 0);
	drive_handshakes(c, rc);
	assert_int_equal(rc[0], 0);
	assert_int_equal(rc[1], 0);
	assert_int_equal(rd_tls_conn_peer_fp(c[0], fp), 0);
	assert_memory_equal(fp, f->cli_fp, RD_TLS_FP_LEN);
	write_all(c[1], (const uint8_t *)"over tcp", 8);
	read_exact(c[0], buf, 8);
	assert_memory_equal(buf, "over tcp", 8);
	rd_tls_conn_close(c[0]);
	rd_tls_conn_close(c[1]);
	rd_tls_ctx_free(sctx);
	rd_tls_ctx_free(cctx);
	close(lfd);
}

static void test_tls_wrong_pin_refused_before_client_shows_its_cert(void **state)
{
	struct fixture *f = *state;
	struct rd_tls_expect exp = { .host = "127.0.0.1", .has_pin = 1 };
	char text[RD_TLS_FP_TEXT_LEN];
	uint8_t fp[RD_TLS_FP_LEN];
	struct tls_pair p;

	make_identities(f);
	memcpy(exp.pin, f->srv_fp, RD_TLS_FP_LEN);
	exp.pin[7] ^= 0x40;
	tls_pair_open(&p, f->srv, 0, f->cli, NULL, &exp);
	assert_int_equal(p.rc[1], RD_ERR_MISMATCH);
	assert_non_null(strstr(rd_tls_conn_reason(p.c[1]), "server fingerprint"));
	rd_tls_fp_format(f->srv_fp, text);
	assert_non_null(strstr(rd_tls_conn_reason(p.c[1]), text)); /* the one it saw */
	assert_int_not_equal(p.rc[0], 0);
	assert_int_equal(rd_tls_conn_peer_fp(p.c[0], fp), RD_ERR_STATE);
	assert_int_equal(rd_tls_conn_peer_fp(p.c[1], fp), RD_ERR_STATE);
	tls_pair_close(&p);
}

static void test_tls_unpinned_client_learns_fingerprint_for_trust(void **state)
{
	struct fixture *f = *state;
	uint8_t fp[RD_TLS_FP_LEN];
	enum rd_tls_trust res;
	struct tls_pair p;

	make_identities(f);
	tls_pair_open(&p, f->srv, 0, f->cli, NULL, NULL);
	assert_int_equal(p.rc[0], 0);
	assert_int_equal(p.rc[1], 0);
	assert_int_equal(rd_tls_conn_peer_fp(p.c[1], fp), 0);
	assert_int_equal(rd_tls_trust_check(f->trust, "127.0.0.1", 7878, fp, &res, NULL), 0);
	assert_int_equal(res, RD_TRUST_NEW);
	assert_int_equal(rd_tls_trust_add(f->trust, "127.0.0.1", 7878, fp), 0);
	assert_int_equal(rd_tls_trust_check(f->trust, "127.0.0.1", 7878, f->srv_fp, &res, NULL), 0);
	assert_int_equal(res, RD_TRUST_MATCH);
	tls_pair_close(&p);
}

static void test_tls_client_without_certificate(void **state)
{
	struct fixture *f = *state;
	uint8_t fp[RD_TLS_FP_LEN], buf[64];
	struct tls_pair p;
	size_t got = 0;
	int rc;

	make_identities(f);
	/* Asked, not required: the handshake succeeds and the server knows no fingerprint. */
	tls_pair_open(&p, f->srv, 0, NULL, NULL, NULL);
	assert_int_equal(p.rc[0], 0);
	assert_int_equal(p.rc[1], 0);
	assert_int_equal(rd_tls_conn_peer_fp(p.c[0], fp), RD_ERR_NOT_FOUND);
	tls_pair_close(&p);
	/* Required: the server refuses the handshake. In TLS 1.3 the client has finished
	 * its side by then, so it learns of the refusal (an alert) on its first read. */
	tls_pair_open(&p, f->srv, RD_TLS_REQUIRE_PEER_CERT, NULL, NULL, NULL);
	assert_int_equal(p.rc[0], RD_ERR_CRYPTO);
	assert_non_null(strstr(rd_tls_conn_reason(p.c[0]), "certificate"));
	assert_int_equal(p.rc[1], 0);
	while ((rc = rd_tls_conn_read(p.c[1], buf, sizeof(buf), &got)) == 0) {
		assert_int_equal(got, 0);
		wait_for(p.c[1], rd_tls_conn_want(p.c[1]));
	}
	assert_int_equal(rc, RD_ERR_CRYPTO);
	assert_non_null(strstr(rd_tls_conn_reason(p.c[1]), "certificate required"));
	tls_pair_close(&p);
}

static void test_tls_data_round_trip_with_partial_writes(void **state)
{
	struct fixture *f = *state;
	uint8_t *out = malloc(BIG), *in = malloc(BIG), small[64];
	size_t sent = 0, recvd = 0, put, got;
	int wants_write = 0, partial = 0, steps = 0;
	struct pollfd pfd[2];
	struct tls_pair p;

	assert_non_null(out);
	assert_non_null(in);
	make_identities(f);
	tls_pair_open(&p, f->srv, 0, f->cli, NULL, NULL);
	assert_int_equal(p.rc[0] | p.rc[1], 0);
	/* Small kernel buffers so that 1 MiB cannot go out in one call. */
	assert_int_equal(rd_net_set_bufs(p.fds[1], 16384, 16384), 0);
	assert_int_equal(rd_net_set_bufs(p.fds[0], 16384, 16384), 0);
	assert_int_equal(rd_random(out, BIG), 0);

	/* The client writes until the transport says WANT_WRITE, then the server reads
	 * until WANT_READ, and so on: the writer offers the unsent rest each time. */
	while (recvd < BIG) {
		assert_true(++steps < 100000);
		while (sent < BIG) {
			assert_int_equal(rd_tls_conn_write(p.c[1], out + sent, BIG - sent, &put),
					 0);
			if (put == 0) {
				assert_int_equal(rd_tls_conn_want(p.c[1]), RD_TLS_WANT_WRITE);
				wants_write++;
				break;
			}
			if (put < BIG - sent)
				partial++;
			sent += put;
		}
		for (;;) {
			assert_int_equal(rd_tls_conn_read(p.c[0], in + recvd, BIG - recvd, &got),
					 0);
			if (got == 0) {
				assert_int_equal(rd_tls_conn_want(p.c[0]), RD_TLS_WANT_READ);
				/* nothing decrypted waits: what read-ahead holds is part of a
				 * record, and another read finds nothing either */
				assert_true(rd_tls_conn_pending(p.c[0]) <= 1);
				assert_int_equal(
					rd_tls_conn_read(p.c[0], in + recvd, BIG - recvd, &got), 0);
				assert_int_equal(got, 0);
				break;
			}
			recvd += got;
			if (recvd == BIG)
				break;
		}
		if (recvd < BIG) {
			pfd[0] = (struct pollfd){ .fd = p.fds[0], .events = POLLIN };
			pfd[1] = (struct pollfd){ .fd = p.fds[1],
						  .events = sent < BIG ? POLLOUT : 0 };
			assert_true(poll(pfd, 2, WAIT_MS) > 0);
		}
	}
	assert_int_equal(sent, BIG);
	assert_memory_equal(in, out, BIG);
	assert_true(wants_write > 0);
	assert_true(partial > 0);

	/* The other way, and a read that finds decrypted bytes waiting in the transport. */
	write_all(p.c[0], (const uint8_t *)"hello, client", 13);
	read_exact(p.c[1], small, 5);
	assert_memory_equal(small, "hello", 5);
	assert_int_equal(rd_tls_conn_pending(p.c[1]), 8);
	assert_int_equal(rd_tls_conn_read(p.c[1], small, sizeof(small), &got), 0);
	assert_int_equal(got, 8);
	assert_memory_equal(small, ", client", 8);

	/* A clean close reads as closed on the other side. */
	rd_tls_conn_close(p.c[1]);
	p.c[1] = NULL;
	wait_for(p.c[0], RD_TLS_WANT_READ);
	assert_int_equal(rd_tls_conn_read(p.c[0], small, sizeof(small), &got), RD_ERR_CLOSED);
	tls_pair_close(&p);
	free(out);
	free(in);
}

static void test_tls_peer_vanishing_mid_handshake_is_closed(void **state)
{
	struct fixture *f = *state;
	struct rd_tls_ctx *ctx = NULL;
	struct rd_tls_conn *c = NULL;
	enum rd_tls_want want;
	int fds[2];

	make_identities(f);
	socket_pair(fds);
	assert_int_equal(rd_tls_ctx_client_new(f->cli, NULL, 0, &ctx), 0);
	assert_int_equal(rd_tls_conn_tls_new(ctx, fds[1], NULL, &c), 0);
	assert_int_equal(rd_tls_conn_handshake(c, &want), 0);
	assert_int_equal(want, RD_TLS_WANT_READ);
	close(fds[0]);
	assert_int_equal(rd_tls_conn_handshake(c, &want), RD_ERR_CLOSED);
	assert_non_null(strstr(rd_tls_conn_reason(c), "closed the connection during the TLS"));
	rd_tls_conn_close(c);
	rd_tls_ctx_free(ctx);
}

static void test_tls_write_to_vanished_peer_is_closed_without_sigpipe(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[4096] = { 0 };
	struct tls_pair p;
	size_t put;
	int rc = 0, i;

	make_identities(f);
	tls_pair_open(&p, f->srv, 0, f->cli, NULL, NULL);
	assert_int_equal(p.rc[0] | p.rc[1], 0);
	/* SIGPIPE keeps its default action here: a send without MSG_NOSIGNAL would kill us. */
	assert_int_equal(shutdown(p.fds[1], SHUT_RDWR), 0);
	for (i = 0; i < 1000 && rc == 0; i++) {
		rc = rd_tls_conn_write(p.c[0], buf, sizeof(buf), &put);
		if (rc == 0 && put == 0)
			wait_for(p.c[0], rd_tls_conn_want(p.c[0]));
	}
	assert_int_equal(rc, RD_ERR_CLOSED);
	assert_non_null(strstr(rd_tls_conn_reason(p.c[0]), "peer closed the connection"));
	/* A failed transport is not used again. */
	assert_int_equal(rd_tls_conn_write(p.c[0], buf, 1, &put), RD_ERR_STATE);
	tls_pair_close(&p);
}

/* A client made with OpenSSL directly against our server context; returns the server's
 * handshake result and copies its reason. */
static int raw_client_against_server(struct fixture *f, int max_version, const char *alpn,
				     char *reason, size_t cap)
{
	struct rd_tls_ctx *sctx = NULL;
	struct rd_tls_conn *srv = NULL;
	enum rd_tls_want want = RD_TLS_WANT_READ;
	int fds[2], src = 0, sdone = 0, step, r, e;
	struct pollfd pfd[2];
	SSL_CTX *rctx;
	SSL *raw;

	socket_pair(fds);
	assert_int_equal(rd_tls_ctx_server_new(f->srv, 0, &sctx), 0);
	assert_int_equal(rd_tls_conn_tls_new(sctx, fds[0], NULL, &srv), 0);
	rctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(rctx);
	assert_int_equal(SSL_CTX_set_max_proto_version(rctx, max_version), 1);
	if (alpn != NULL)
		assert_int_equal(SSL_CTX_set_alpn_protos(rctx, (const unsigned char *)alpn,
							 (unsigned)strlen(alpn)),
				 0);
	raw = SSL_new(rctx);
	assert_non_null(raw);
	assert_int_equal(SSL_set_fd(raw, fds[1]), 1);
	SSL_set_connect_state(raw);
	for (step = 0; step < MAX_STEPS && !sdone; step++) {
		src = rd_tls_conn_handshake(srv, &want);
		if (src != 0 || want == RD_TLS_WANT_NONE)
			break;
		r = SSL_do_handshake(raw);
		e = SSL_get_error(raw, r);
		assert_true(r == 1 || e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ||
			    e == SSL_ERROR_SSL);
		pfd[0] = (struct pollfd){ .fd = fds[0], .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = fds[1], .events = POLLIN };
		assert_true(poll(pfd, 2, WAIT_MS) > 0);
	}
	snprintf(reason, cap, "%s", rd_tls_conn_reason(srv));
	SSL_free(raw);
	SSL_CTX_free(rctx);
	close(fds[1]);
	rd_tls_conn_close(srv);
	rd_tls_ctx_free(sctx);
	return src;
}

static void test_tls_server_refuses_tls12_and_other_alpn(void **state)
{
	struct fixture *f = *state;
	char reason[REASON_CAP];

	make_identities(f);
	/* The reference: an OpenSSL client with our ALPN gets through. */
	assert_int_equal(raw_client_against_server(f, TLS1_3_VERSION, "\x0aroomdrop/1", reason,
						   sizeof(reason)),
			 0);
	assert_int_equal(raw_client_against_server(f, TLS1_2_VERSION, "\x0aroomdrop/1", reason,
						   sizeof(reason)),
			 RD_ERR_CRYPTO);
	assert_non_null(strstr(reason, "protocol"));
	assert_int_equal(raw_client_against_server(f, TLS1_3_VERSION, "\x08http/1.1", reason,
						   sizeof(reason)),
			 RD_ERR_CRYPTO);
	assert_non_null(strstr(reason, "application protocol"));
	assert_int_equal(raw_client_against_server(f, TLS1_3_VERSION, NULL, reason, sizeof(reason)),
			 RD_ERR_PROTOCOL);
	assert_non_null(strstr(reason, "ALPN"));
}

/* ---- plaintext / TLS mismatches ------------------------------------------------------------ */

static void test_plain_client_to_tls_server_says_plaintext(void **state)
{
	struct fixture *f = *state;
	struct rd_frame_hdr h = { .type = 1, .req_id = 1, .len = 0 };
	struct rd_tls_ctx *ctx = NULL;
	struct rd_tls_conn *srv = NULL, *plain = NULL;
	enum rd_tls_want want;
	uint8_t hdr[RD_FRAME_HEADER_SIZE];
	size_t put;
	int fds[2];

	make_identities(f);
	socket_pair(fds);
	assert_int_equal(rd_tls_ctx_server_new(f->srv, 0, &ctx), 0);
	assert_int_equal(rd_tls_conn_tls_new(ctx, fds[0], NULL, &srv), 0);
	assert_int_equal(rd_tls_conn_plain_new(fds[1], &plain), 0);
	assert_int_equal(rd_tls_conn_handshake(plain, &want), 0);
	assert_int_equal(want, RD_TLS_WANT_NONE);
	assert_int_equal(rd_tls_conn_handshake(srv, &want), 0);
	assert_int_equal(want, RD_TLS_WANT_READ);
	rd_frame_hdr_encode(&h, hdr);
	assert_int_equal(rd_tls_conn_write(plain, hdr, sizeof(hdr), &put), 0);
	assert_int_equal(put, sizeof(hdr));
	wait_for(srv, RD_TLS_WANT_READ);
	assert_int_equal(rd_tls_conn_handshake(srv, &want), RD_ERR_PROTOCOL);
	assert_non_null(strstr(rd_tls_conn_reason(srv), "peer spoke plaintext roomdrop"));
	assert_int_equal(rd_tls_conn_peer_spoke(srv), RD_TLS_SNIFF_FRAME);
	/* A failed transport refuses further use instead of touching OpenSSL again. */
	assert_int_equal(rd_tls_conn_handshake(srv, &want), RD_ERR_STATE);
	rd_tls_conn_close(srv);
	rd_tls_conn_close(plain);
	rd_tls_ctx_free(ctx);
}

static void test_tls_client_to_plain_server_says_plaintext(void **state)
{
	struct fixture *f = *state;
	struct rd_frame_hdr h = { .type = 0x0002, .req_id = 0, .len = 0 };
	struct rd_tls_ctx *ctx = NULL;
	struct rd_tls_conn *cli = NULL, *plain = NULL;
	uint8_t buf[4096], hdr[RD_FRAME_HEADER_SIZE];
	enum rd_tls_want want;
	size_t got, put;
	int fds[2];

	make_identities(f);
	socket_pair(fds);
	assert_int_equal(rd_tls_ctx_client_new(f->cli, NULL, 0, &ctx), 0);
	assert_int_equal(rd_tls_conn_tls_new(ctx, fds[1], NULL, &cli), 0);
	assert_int_equal(rd_tls_conn_plain_new(fds[0], &plain), 0);
	assert_int_equal(rd_tls_conn_handshake(cli, &want), 0);
	assert_int_equal(want, RD_TLS_WANT_READ);
	/* The plaintext side sees a ClientHello where a frame header should be... */
	wait_for(plain, RD_TLS_WANT_READ);
	assert_int_equal(rd_tls_conn_read(plain, buf, sizeof(buf), &got), 0);
	assert_true(got > 5);
	assert_int_equal(rd_frame_hdr_decode(buf, got, RD_MAX_PAYLOAD_DEFAULT,
					     &(struct rd_frame_hdr){ 0 }),
			 RD_ERR_BAD_MAGIC);
	assert_int_equal(rd_tls_sniff(buf, got), RD_TLS_SNIFF_TLS);
	/* ...and answers in plaintext, as today's server does (an ERROR frame). */
	rd_frame_hdr_encode(&h, hdr);
	assert_int_equal(rd_tls_conn_write(plain, hdr, sizeof(hdr), &put), 0);
	wait_for(cli, RD_TLS_WANT_READ);
	assert_int_equal(rd_tls_conn_handshake(cli, &want), RD_ERR_PROTOCOL);
	assert_non_null(strstr(rd_tls_conn_reason(cli), "peer spoke plaintext roomdrop"));
	assert_non_null(strstr(rd_tls_conn_reason(cli), "server runs without TLS"));
	rd_tls_conn_close(cli);
	rd_tls_conn_close(plain);
	rd_tls_ctx_free(ctx);
}

static void test_tls_client_to_other_protocol_says_not_tls(void **state)
{
	struct fixture *f = *state;
	struct rd_tls_ctx *ctx = NULL;
	struct rd_tls_conn *cli = NULL;
	enum rd_tls_want want;
	int fds[2];

	make_identities(f);
	socket_pair(fds);
	assert_int_equal(rd_tls_ctx_client_new(f->cli, NULL, 0, &ctx), 0);
	assert_int_equal(rd_tls_conn_tls_new(ctx, fds[1], NULL, &cli), 0);
	assert_int_equal(rd_tls_conn_handshake(cli, &want), 0);
	assert_int_equal(write(fds[0], "HTTP/1.1 400 Bad Request\r\n\r\n", 28), 28);
	wait_for(cli, RD_TLS_WANT_READ);
	assert_int_equal(rd_tls_conn_handshake(cli, &want), RD_ERR_PROTOCOL);
	assert_string_equal(rd_tls_conn_reason(cli), "peer does not speak TLS");
	assert_int_equal(rd_tls_conn_peer_spoke(cli), RD_TLS_SNIFF_OTHER);
	rd_tls_conn_close(cli);
	close(fds[0]);
	rd_tls_ctx_free(ctx);
}

static void test_sniff_first_bytes(void **state)
{
	static const uint8_t frame[] = { 'R', 'D', 1, 0 };
	static const uint8_t hello[] = { 0x16, 0x03, 0x01, 0x00, 0xf4 };
	static const uint8_t alert[] = { 0x15, 0x03, 0x03, 0x00, 0x02 };
	static const uint8_t http[] = { 'G', 'E', 'T', ' ' };

	(void)state;
	assert_int_equal(rd_tls_sniff(frame, sizeof(frame)), RD_TLS_SNIFF_FRAME);
	assert_int_equal(rd_tls_sniff(hello, sizeof(hello)), RD_TLS_SNIFF_TLS);
	assert_int_equal(rd_tls_sniff(alert, sizeof(alert)), RD_TLS_SNIFF_TLS);
	assert_int_equal(rd_tls_sniff(http, sizeof(http)), RD_TLS_SNIFF_OTHER);
	assert_int_equal(rd_tls_sniff(hello, 1), RD_TLS_SNIFF_SHORT);
	assert_int_equal(rd_tls_sniff(NULL, 0), RD_TLS_SNIFF_SHORT);
}

static void test_plain_transport_round_trip_and_close(void **state)
{
	struct rd_tls_conn *a = NULL, *b = NULL;
	uint8_t buf[16], fp[RD_TLS_FP_LEN];
	size_t got, put;
	int fds[2];

	(void)state;
	socket_pair(fds);
	assert_int_equal(rd_tls_conn_plain_new(fds[0], &a), 0);
	assert_int_equal(rd_tls_conn_plain_new(fds[1], &b), 0);
	assert_false(rd_tls_conn_is_tls(a));
	assert_string_equal(rd_tls_conn_type_name(a), "plain");
	assert_int_equal(rd_tls_conn_read(b, buf, sizeof(buf), &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(rd_tls_conn_want(b), RD_TLS_WANT_READ);
	assert_int_equal(rd_tls_conn_write(a, "ping", 4, &put), 0);
	assert_int_equal(put, 4);
	assert_int_equal(rd_tls_conn_read(b, buf, sizeof(buf), &got), 0);
	assert_int_equal(got, 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(rd_tls_conn_pending(b), 0);
	assert_int_equal(rd_tls_conn_peer_fp(b, fp), RD_ERR_STATE);
	rd_tls_conn_close(a);
	assert_int_equal(rd_tls_conn_read(b, buf, sizeof(buf), &got), RD_ERR_CLOSED);
	/* Writing to a closed peer reports closed and raises no SIGPIPE. */
	assert_int_equal(rd_tls_conn_write(b, "x", 1, &put), RD_ERR_CLOSED);
	rd_tls_conn_close(b);
}

/* ---- CA mode -------------------------------------------------------------------------------- */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &v3, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

static X509 *make_x509(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
		       long serial)
{
	X509 *x = X509_new();
	X509_NAME *n;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	n = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
						    (const unsigned char *)cn, -1, -1, 0),
			 1);
	assert_int_equal(
		X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n), 1);
	if (issuer == NULL) {
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, issuer, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
	}
	assert_true(X509_sign(x, issuer_key, NULL) > 0);
	return x;
}

static void write_pem_cert(const char *path, X509 *x, X509 *chain)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(PEM_write_X509(fp, x), 1);
	if (chain != NULL)
		assert_int_equal(PEM_write_X509(fp, chain), 1);
	fclose(fp);
}

static void test_tls_ca_mode_checks_chain_and_name(void **state)
{
	struct fixture *f = *state;
	char ca_path[160], crt[160], key[160];
	EVP_PKEY *ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *leaf_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	struct rd_tls_identity *leaf = NULL;
	struct rd_tls_expect exp = { 0 };
	struct rd_tls_ctx *cctx = NULL;
	struct rd_tls_conn *c = NULL;
	struct tls_pair p;
	X509 *ca, *lx;
	FILE *fp;

	make_identities(f);
	ca = make_x509(ca_key, "roomdrop test CA", NULL, ca_key, 1);
	lx = make_x509(leaf_key, "localhost", ca, ca_key, 2);
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", f->dir);
	snprintf(crt, sizeof(crt), "%s/leaf.crt", f->dir);
	snprintf(key, sizeof(key), "%s/leaf.key", f->dir);
	write_pem_cert(ca_path, ca, NULL);
	write_pem_cert(crt, lx, ca); /* leaf followed by its chain */
	fp = fopen(key, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PrivateKey(fp, leaf_key, NULL, NULL, 0, NULL, NULL), 1);
	fclose(fp);
	assert_int_equal(rd_tls_identity_load(crt, key, &leaf), 0);

	/* The name in the certificate: accepted. */
	exp.host = "localhost";
	tls_pair_open(&p, leaf, 0, f->cli, ca_path, &exp);
	assert_int_equal(p.rc[0], 0);
	assert_int_equal(p.rc[1], 0);
	tls_pair_close(&p);
	/* An IP address in the certificate: accepted. */
	exp.host = "127.0.0.1";
	tls_pair_open(&p, leaf, 0, f->cli, ca_path, &exp);
	assert_int_equal(p.rc[1], 0);
	tls_pair_close(&p);
	/* Another name: refused, with the reason. */
	exp.host = "wrong.example";
	tls_pair_open(&p, leaf, 0, f->cli, ca_path, &exp);
	assert_int_equal(p.rc[1], RD_ERR_MISMATCH);
	assert_non_null(strstr(rd_tls_conn_reason(p.c[1]), "server certificate refused"));
	assert_non_null(strstr(rd_tls_conn_reason(p.c[1]), "mismatch"));
	assert_int_not_equal(p.rc[0], 0);
	tls_pair_close(&p);
	/* A self-signed server the CA did not sign: refused. */
	exp.host = "localhost";
	tls_pair_open(&p, f->srv, 0, f->cli, ca_path, &exp);
	assert_int_equal(p.rc[1], RD_ERR_MISMATCH);
	assert_non_null(strstr(rd_tls_conn_reason(p.c[1]), "server certificate refused"));
	tls_pair_close(&p);
	/* CA mode needs a host; a missing CA file is reported as such. */
	assert_int_equal(rd_tls_ctx_client_new(f->cli, ca_path, 0, &cctx), 0);
	assert_int_equal(rd_tls_conn_tls_new(cctx, 0, NULL, &c), RD_ERR_INVAL);
	assert_null(c);
	rd_tls_ctx_free(cctx);
	assert_int_equal(rd_tls_ctx_client_new(f->cli, "/nonexistent/ca.pem", 0, &cctx),
			 RD_ERR_NOT_FOUND);
	assert_int_equal(rd_tls_ctx_client_new(f->cli, key, 0, &cctx), RD_ERR_CRYPTO);
	assert_null(cctx);

	rd_tls_identity_free(leaf);
	X509_free(ca);
	X509_free(lx);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(leaf_key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_identity_created_private_and_reloaded_identical, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_identity_certificate_is_self_signed_ed25519_for_20_years, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_identity_cert_made_again_over_kept_key, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_identity_never_replaced_when_key_missing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_identity_made_once_by_processes_starting_together, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identity_load_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fp_is_sha256_of_spki_as_openssl_computes_it,
						setup, teardown),
		cmocka_unit_test(test_fp_format_known_vectors),
		cmocka_unit_test(test_fp_format_round_trips),
		cmocka_unit_test(test_fp_parse_lenient),
		cmocka_unit_test(test_fp_parse_rejects_hostile_input),
		cmocka_unit_test_setup_teardown(test_trust_new_match_changed_replace, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_trust_ipv6_in_brackets_compared_by_value,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_trust_malformed_lines_ignored_and_kept, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_trust_refuses_hosts_the_file_cannot_hold,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_trust_concurrent_adds_from_processes_all_kept,
						setup, teardown),
		cmocka_unit_test(test_config_dir_follows_xdg_then_home),
		cmocka_unit_test_setup_teardown(test_tls_pinned_handshake_and_both_fingerprints,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_over_tcp_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_tls_wrong_pin_refused_before_client_shows_its_cert, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_tls_unpinned_client_learns_fingerprint_for_trust, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_client_without_certificate, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tls_data_round_trip_with_partial_writes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tls_peer_vanishing_mid_handshake_is_closed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_tls_write_to_vanished_peer_is_closed_without_sigpipe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_server_refuses_tls12_and_other_alpn, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_plain_client_to_tls_server_says_plaintext,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_client_to_plain_server_says_plaintext,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_client_to_other_protocol_says_not_tls,
						setup, teardown),
		cmocka_unit_test(test_sniff_first_bytes),
		cmocka_unit_test(test_plain_transport_round_trip_and_close),
		cmocka_unit_test_setup_teardown(test_tls_ca_mode_checks_chain_and_name, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
