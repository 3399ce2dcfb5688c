/* files.c - the client's file commands: put, get, ls, rm (see files.h), shared by the
 * one-shot commands and the shell.
 *
 * put: PUT declares size and SHA-256, taken from the digest cache (digest.h) when it knows
 * the file; otherwise, on a server that offers RD_FEAT_PUT_SEAL, a file of at least
 * STREAM_MIN bytes is streamed at once with no SHA-256 declared while a thread of its own hashes it
 * (on the other core), and PUT_SEAL brings the SHA-256 at the end (a streamed put,
 * PROTOCOL.md section 17); else it is hashed first. The chunks go from the
 * offset PUT_READY gives (> 0 when the server holds part of it from an interrupted put)
 * in PUT_CHUNK frames of RD_CHUNK_SIZE bytes. Chunk rule: a sample of the file's first
 * 16 KiB is compressed once (rd_zip_sample_worth); if it does not shrink by more than 10%
 * every chunk goes raw, else every chunk frame is built with RD_FRAME_COMPRESS (and goes
 * compressed only when that saves more than 10%). Chunks and PUT_END carry one request id,
 * so an ERROR for any of them is seen by rd_conn_wait_reply (polled without waiting
 * between chunks, which also answers the server's PING).
 *
 * get: refuses to replace a local file unless --overwrite; writes NAME.part in the target
 * folder (or roomdrop-<hash of name>.part when NAME.part would be too long a name),
 * resuming from its length after re-hashing it; GET_BEGIN, GET_CHUNK and GET_END carry
 * the GET's request id. The SHA-256 is computed while receiving and NAME.part is renamed
 * to NAME only when size and hash match; a mismatch removes it. The name the server sends
 * is checked with rd_filename_check and must be the one asked for.
 */
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/tcp.h>
#include <netinet/in.h>

#include "digest.h"
#include "progress.h"
#include "files/rdf_proto.h"
#include "rd_buf.h"
#include "rd_err.h"
#include "rd_frame.h"
#include "rd_hash.h"
#include "rd_display.h"
#include "rd_msg.h"
#include "rd_names.h"
#include "rd_net.h"
#include "rd_proto.h"
#include "rd_zip.h"
#include "session.h"
#include "sink.h"

#define HASH_BLOCK (1u << 20)
/* A file of at least STREAM_MIN bytes whose digest is not cached is streamed (PUT_SEAL):
 * below it, hashing first costs under 10 ms, and a put that declares its SHA-256 can
 * resume from what any interrupted upload of the same content left staged. */
#define STREAM_MIN (16u << 20)
#define POLL_EVERY_MS 100u
#define END_EXTRA_MS 120000 /* PUT_END: the server fsyncs the whole file before it answers */
#define SAMPLE_SIZE (16u * 1024u)
#define CHUNK_FIXED 16u /* xfer_id u32, offset u64, data length u32 */
#define PART_SUFFIX ".part"
#define NAME_SHOWN 120

/* ---- small helpers ---------------------------------------------------------------------- */

static const char *shown(const char *s, char *buf, size_t cap)
{
	return rd_escape_display(s, strlen(s), buf, cap);
}

/* The file name as it goes on the wire: what the user gave, normalised to Unicode NFC
 * (PROTOCOL.md section 7: a name typed or stored in NFD, as on macOS, names the same
 * file), into out[RD_NAME_BUF]. 0, or RDF_E_BAD_FILENAME with the broken rule in why. */
static uint16_t wire_name(const char *in, char *out, char *why, size_t cap)
{
	if (rd_name_nfc(in, strlen(in), out, RD_NAME_BUF) != 0)
		return rd_filename_explain(in, strlen(in), why, cap);
	return rd_filename_explain(out, strlen(out), why, cap);
}

/* "roomdrop: VERB NAME: why" for a failed exchange with the server; the exit code. */
static int remote_fail(struct rd_conn *c, const char *verb, const char *name, int rc, uint16_t werr)
{
	char esc[NAME_SHOWN], why[600];
	const char *t;

	if (rc == RD_ERR_REMOTE) {
		t = rd_conn_last_error(c);
		if (t != NULL && t[0] != '\0')
			rd_escape_display(t, strlen(t), why, sizeof(why));
		else
			snprintf(why, sizeof(why), "%s", rd_wire_strerror(werr));
	} else if (rc == RD_ERR_CLOSED) {
		(void)rd_conn_poll(c, 0); /* a send failed first: read what came before the close */
		if (!cli_shutdown_said(c, why, sizeof(why)))
			snprintf(why, sizeof(why), "lost the connection to the server");
	} else if (rc == RD_ERR_TIMEOUT) {
		snprintf(why, sizeof(why), "no answer from the server in time");
	} else if (rc == RD_ERR_CANCELLED || (rc == RD_ERR_STATE && cli_stop)) {
		snprintf(why, sizeof(why), "interrupted");
	} else {
		snprintf(why, sizeof(why), "%s", rd_strerror(rc));
	}
	fprintf(stderr, "roomdrop: %s %s: %s\n", verb, shown(name, esc, sizeof(esc)), why);
	return cli_exit_for(rc, werr);
}

static int local_fail(const char *verb, const char *name, const char *what, int err)
{
	char esc[NAME_SHOWN];

	fprintf(stderr, "roomdrop: %s %s: %s%s%s\n", verb, shown(name, esc, sizeof(esc)), what,
		err ? ": " : "", err ? strerror(err) : "");
	return CLI_ELOCAL;
}

/* Hash the first n bytes of fd into h, answering the server meanwhile (PING) so a long
 * hash does not look like a dead client. */
static int hash_fd(struct rd_conn *c, int fd, uint64_t n, struct rd_sha256 *h, struct progress *pg)
{
	uint64_t off = 0, last = rd_now_mono_ms();
	uint8_t *buf;
	size_t want;
	int rc = 0;

	buf = malloc(HASH_BLOCK);
	if (buf == NULL)
		return RD_ERR_NOMEM;
	while (off < n) {
		want = n - off < HASH_BLOCK ? (size_t)(n - off) : HASH_BLOCK;
		if ((rc = rd_pread_full(fd, buf, want, off)) != 0 ||
		    (rc = rd_sha256_update(h, buf, want)) != 0)
			break;
		off += want;
		if (pg != NULL)
			progress_update(pg, off);
		if (rd_now_mono_ms() - last >= POLL_EVERY_MS) {
			last = rd_now_mono_ms();
			if ((rc = rd_conn_poll(c, 0)) != 0)
				break;
		}
		if (cli_stop) {
			rc = RD_ERR_STATE;
			break;
		}
	}
	free(buf);
	return rc;
}

static void send_cancel(struct rd_conn *c, uint32_t xfer_id, const char *why)
{
	struct rd_msg m;

	rd_msg_init(&m, RDF_MSG_XFER_CANCEL);
	rdf_body(&m)->xfer_cancel.xfer_id = xfer_id;
	rdf_body(&m)->xfer_cancel.code = 0;
	rdf_body(&m)->xfer_cancel.reason = rd_str_c(why);
	(void)rd_conn_send_msg(c, &m, 0);
}

/* TCP payload bytes this connection has sent (and had acknowledged) and received so far,
 * from the kernel (0 where TCP_INFO does not say): what a transfer really put on the wire. */
static void wire_counts(struct rd_conn *c, uint64_t *sent, uint64_t *recvd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	*sent = *recvd = 0;
	if (getsockopt(rd_conn_fd(c), IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	    len >= offsetof(struct tcp_info, tcpi_bytes_received) +
			    sizeof(ti.tcpi_bytes_received)) {
		*sent = ti.tcpi_bytes_acked;
		*recvd = ti.tcpi_bytes_received;
	}
}

/* What a put or get of several files did, for the one line --quiet prints at the end. */
static struct {
	int quiet;
	unsigned ok;
	uint64_t bytes;
	uint64_t start_ms;
	FILE *out; /* the reports: stdout, or stderr when stdout carries the data (get -o -) */
} g_tally;

static void tally_start(const struct cli_opts *o)
{
	memset(&g_tally, 0, sizeof(g_tally));
	g_tally.quiet = o->quiet;
	g_tally.start_ms = rd_now_mono_ms();
	g_tally.out = stdout;
}

static FILE *report_out(void)
{
	return g_tally.out != NULL ? g_tally.out : stdout;
}

/* --quiet: "put 40 files: 39 stored, 1 failed, 1.2 MB in 0.4 s" (a quiet run's only line
 * on stdout; its errors went to stderr as they happened). */
static void tally_print(const char *verb, const char *done_word, int nfiles)
{
	char hs[32];

	if (!g_tally.quiet)
		return;
	rd_format_size(g_tally.bytes, hs, sizeof(hs));
	fprintf(report_out(), "%s %d file%s: %u %s, %u failed, %s in %.1f s\n", verb, nfiles,
		nfiles == 1 ? "" : "s", g_tally.ok, done_word, (unsigned)nfiles - g_tally.ok, hs,
		(double)(rd_now_mono_ms() - g_tally.start_ms) / 1000.0);
	fflush(report_out());
}

/* The summary line of a transfer. wire = bytes it took on the connection (shown when
 * compression made it clearly less than the data moved). */
static void summary(const char *verb, const char *name, const char *stored, uint64_t size,
		    uint64_t from, double secs, const uint8_t sha[RD_SHA256_SIZE], uint64_t wire,
		    const char *note)
{
	char esc[NAME_SHOWN], esc2[NAME_SHOWN], hs[32], hf[32], hm[32], rate[32], hex[65], hw[32];

	g_tally.ok++;
	g_tally.bytes += size;
	if (g_tally.quiet)
		return;

	rd_format_size(size, hs, sizeof(hs));
	progress_human_rate(size - from, secs, rate, sizeof(rate));
	rd_hex(sha, RD_SHA256_SIZE, hex);
	hex[8] = '\0';
	fprintf(report_out(), "%s %s: %s in %.1f s (%s)", verb, shown(name, esc, sizeof(esc)), hs,
		secs, rate);
	if (from > 0) {
		rd_format_size(from, hf, sizeof(hf));
		rd_format_size(size - from, hm, sizeof(hm));
		fprintf(report_out(), ", resumed at %s (%s sent)", hf, hm);
	}
	if (wire > 0 && wire < (size - from) / 10 * 9) {
		rd_format_size(wire, hw, sizeof(hw));
		fprintf(report_out(), ", %s on the wire", hw);
	}
	if (stored != NULL && strcmp(stored, name) != 0)
		fprintf(report_out(), ", stored as \"%s\"", shown(stored, esc2, sizeof(esc2)));
	fprintf(report_out(), ", sha256 %s\u2026 verified%s\n", hex, note ? note : "");
	fflush(report_out());
}

/* ---- put -------------------------------------------------------------------------------- */

/* Stream [from, size) of fd as PUT_CHUNK frames with request id req. */
static int put_stream(struct rd_conn *c, int fd, uint32_t xfer, uint32_t req, uint64_t from,
		      uint64_t size, unsigned opts, struct rd_zip_adapt *za, struct progress *pg,
		      uint16_t *werr)
{
	struct rd_frame f;
	uint64_t off = from, t0;
	uint8_t *buf;
	size_t n;
	int rc = 0, zip;

	buf = malloc(CHUNK_FIXED + RD_CHUNK_SIZE);
	if (buf == NULL)
		return RD_ERR_NOMEM;
	while (off < size) {
		n = size - off < RD_CHUNK_SIZE ? (size_t)(size - off) : RD_CHUNK_SIZE;
		if ((rc = rd_pread_full(fd, buf + CHUNK_FIXED, n, off)) != 0)
			break;
		rd_be32_put(buf, xfer);
		rd_be64_put(buf + 4, off);
		rd_be32_put(buf + 12, (uint32_t)n);
		/* a compressible file: each chunk compressed only while that saves time */
		zip = (opts & RD_FRAME_COMPRESS) && rd_zip_adapt_choose(za);
		t0 = rd_now_mono_ns();
		if ((rc = rd_conn_send(c, RDF_MSG_PUT_CHUNK, req, buf, CHUNK_FIXED + n,
				       zip ? opts : opts & ~(unsigned)RD_FRAME_COMPRESS)) != 0)
			break;
		if (opts & RD_FRAME_COMPRESS)
			rd_zip_adapt_record(za, zip, n, rd_now_mono_ns() - t0);
		off += n;
		progress_update(pg, off);
		/* an ERROR for a chunk, PINGs, notices: handled without waiting */
		rc = rd_conn_wait_reply(c, req, 0, &f, werr);
		if (rc == RD_ERR_TIMEOUT) {
			rc = 0;
		} else if (rc == 0) {
			rc = RD_ERR_PROTOCOL; /* nothing but ERROR answers a chunk */
			break;
		} else {
			if (rc == RD_ERR_CANCELLED) /* Ctrl-C in the shell */
				send_cancel(c, xfer, "interrupted");
			break;
		}
		if (cli_stop) {
			send_cancel(c, xfer, "interrupted");
			rc = RD_ERR_STATE;
			break;
		}
	}
	free(buf);
	return rc;
}

/* A streamed put's SHA-256, computed by a thread of its own (reading the file again, from
 * the page cache) while the chunks go out on this one. */
struct bghash {
	pthread_t th;
	int fd;
	uint64_t size;
	atomic_int stop;
	int rc, err; /* err: errno of a failed read */
	uint8_t sha[RD_SHA256_SIZE];
};

static void *bghash_main(void *arg)
{
	struct bghash *b = arg;
	struct rd_sha256 *h = NULL;
	uint8_t *buf = malloc(HASH_BLOCK);
	uint64_t off = 0;
	size_t want;
	int rc = buf == NULL ? RD_ERR_NOMEM : rd_sha256_new(&h);

	while (rc == 0 && off < b->size) {
		if (atomic_load(&b->stop)) {
			rc = RD_ERR_STATE;
			break;
		}
		want = b->size - off < HASH_BLOCK ? (size_t)(b->size - off) : HASH_BLOCK;
		if ((rc = rd_pread_full(b->fd, buf, want, off)) != 0) {
			b->err = errno;
			break;
		}
		rc = rd_sha256_update(h, buf, want);
		off += want;
	}
	if (rc == 0)
		rc = rd_sha256_final(h, b->sha);
	rd_sha256_free(h);
	free(buf);
	b->rc = rc;
	return NULL;
}

static int bghash_start(struct bghash *b, int fd, uint64_t size)
{
	memset(b, 0, sizeof(*b));
	b->fd = fd;
	b->size = size;
	atomic_init(&b->stop, 0);
	return pthread_create(&b->th, NULL, bghash_main, b) == 0 ? 0 : RD_ERR_NOMEM;
}

/* Wait for the digest (stop: the put failed, do not finish). 0 or the thread's error. */
static int bghash_end(struct bghash *b, int stop)
{
	if (stop)
		atomic_store(&b->stop, 1);
	pthread_join(b->th, NULL);
	return b->rc;
}

/* fd is still the file sb described (size, mtime, ctime): what was read of it is its
 * content, and a digest of it may be cached. */
static int unchanged(int fd, const struct stat *sb, struct stat *after)
{
	return fstat(fd, after) == 0 && after->st_size == sb->st_size &&
	       after->st_mtim.tv_sec == sb->st_mtim.tv_sec &&
	       after->st_mtim.tv_nsec == sb->st_mtim.tv_nsec &&
	       after->st_ctim.tv_sec == sb->st_ctim.tv_sec &&
	       after->st_ctim.tv_nsec == sb->st_ctim.tv_nsec;
}

static int put_one(struct rd_conn *c, const struct cli_opts *o, const char *path)
{
	uint8_t sha[RD_SHA256_SIZE], sample[SAMPLE_SIZE];
	char esc[NAME_SHOWN], stored[RD_NAME_BUF], nfc[RD_NAME_BUF], why[160];
	struct rd_sha256 *h = NULL;
	struct progress pg;
	struct rd_frame f;
	struct rd_msg m, r;
	struct stat sb;
	const char *name = strrchr(path, '/');
	uint64_t size, from = 0, sent0 = 0, recv0 = 0, sent1, recv1;
	unsigned opts = 0;
	uint32_t req;
	uint16_t werr = 0;
	struct rd_zip_adapt za;
	struct bghash bg;
	struct stat after;
	int fd = -1, rc, hrc, code, attempt = 0, cached = 0, streamed = 0;
	ssize_t got;

	name = name != NULL ? name + 1 : path;
	rd_msg_init(&r, 0);
	if (wire_name(name, nfc, why, sizeof(why)) != 0) {
		fprintf(stderr, "roomdrop: put %s: not a file name the server accepts: %s\n",
			shown(path, esc, sizeof(esc)), why);
		return CLI_EUSAGE;
	}
	name = nfc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			return local_fail("put", path, "cannot open", errno);
		(void)local_fail("put", path, "no such file", 0);
		return CLI_ENOTFOUND;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		code = local_fail("put", path, "not a regular file", 0);
		goto out;
	}
	size = (uint64_t)sb.st_size;
	/* 1. declare size and SHA-256: from the digest cache when it knows this very file
	 * (same inode, size, mtime and ctime as when it was hashed: digest.h); else streamed
	 * (no SHA-256 now: PUT_SEAL brings it) when the server takes that and the file is
	 * at least STREAM_MIN; else hash first */
rehash:
	cached = digest_get(&sb, sha);
	if (cached && rdf_put_streamed(sha))
		cached = 0; /* (32 zero bytes would say "streamed": a record that cannot be true) */
	streamed = !cached && size >= STREAM_MIN &&
		   (rd_conn_server_info(c)->features & RD_FEAT_PUT_SEAL) != 0;
	if (streamed)
		memset(sha, 0, sizeof(sha));
	if (!cached && !streamed) {
		if (rd_sha256_new(&h) != 0) {
			code = local_fail("put", path, "out of memory", 0);
			goto out;
		}
		progress_start(&pg, "hash", name, size, 0, o->quiet);
		rc = hash_fd(c, fd, size, h, &pg);
		progress_end(&pg);
		if (rc == RD_ERR_SYSTEM || rc == RD_ERR_MISMATCH) {
			code = local_fail("put", path, "cannot read", errno);
			goto out;
		}
		if (rc != 0 || (rc = rd_sha256_final(h, sha)) != 0) {
			code = remote_fail(c, "put", name, rc, 0);
			goto out;
		}
		if (unchanged(fd, &sb, &after))
			digest_put(&after, sha); /* (unchanged while it was hashed) */
	}
	/* 2. chunk rule, decided once per file from a sample */
	do
		got = pread(fd, sample, sizeof(sample), 0);
	while (got < 0 && errno == EINTR);
	if (got > 0 && !o->no_compress && rd_zip_adapt_start(&za, sample, (size_t)got))
		opts = RD_FRAME_COMPRESS;
again:
	rd_msg_init(&m, RDF_MSG_PUT);
	snprintf(rdf_body(&m)->put.name, sizeof(rdf_body(&m)->put.name), "%s", name);
	rdf_body(&m)->put.size = size;
	memcpy(rdf_body(&m)->put.sha256, sha, RD_SHA256_SIZE);
	rdf_body(&m)->put.mode = o->overwrite ? RDF_PUT_OVERWRITE :
				 o->rename    ? RDF_PUT_RENAME :
						RDF_PUT_REFUSE;
	if ((rc = rd_conn_request(c, &m, &r, &werr)) != 0) {
		code = remote_fail(c, "put", name, rc, werr);
		goto out;
	}
	if (r.type != RDF_MSG_PUT_READY || rdf_body(&r)->put_ready.offset > size ||
	    rd_filename_check(rdf_body(&r)->put_ready.name, strlen(rdf_body(&r)->put_ready.name)) !=
		    0) {
		code = remote_fail(c, "put", name, RD_ERR_PROTOCOL, 0);
		goto out;
	}
	from = rdf_body(&r)->put_ready.offset;
	wire_counts(c, &sent0, &recv0);
	/* 3. the chunks, then PUT_END, all under one request id */
	req = rd_conn_next_id(c);
	progress_start(&pg, "put", name, size, from, o->quiet);
	if (streamed && bghash_start(&bg, fd, size) != 0) {
		progress_end(&pg);
		send_cancel(c, rdf_body(&r)->put_ready.xfer_id, "out of memory");
		code = local_fail("put", path, "out of memory", 0);
		goto out;
	}
	rc = put_stream(c, fd, rdf_body(&r)->put_ready.xfer_id, req, from, size, opts, &za, &pg,
			&werr);
	if (streamed && (hrc = bghash_end(&bg, rc != 0)) != 0 && rc == 0) {
		progress_end(&pg);
		send_cancel(c, rdf_body(&r)->put_ready.xfer_id, "cannot read the file");
		code = hrc == RD_ERR_SYSTEM || hrc == RD_ERR_MISMATCH ?
			       local_fail("put", path, "cannot read", bg.err) :
			       local_fail("put", path, "out of memory", 0);
		goto out;
	}
	if (rc == 0 && streamed) {
		/* the SHA-256 of what was read, which the server compares with what it got */
		memcpy(sha, bg.sha, sizeof(sha));
		rd_msg_init(&m, RDF_MSG_PUT_SEAL);
		rdf_body(&m)->put_seal.xfer_id = rdf_body(&r)->put_ready.xfer_id;
		memcpy(rdf_body(&m)->put_seal.sha256, sha, sizeof(sha));
		rc = rd_conn_send_msg(c, &m, req);
		if (rc == 0)
			rc = rd_conn_wait_reply(c, req, o->timeout_ms + END_EXTRA_MS, &f, &werr);
	} else if (rc == 0) {
		rd_msg_init(&m, RDF_MSG_PUT_END);
		rdf_body(&m)->xfer.xfer_id = rdf_body(&r)->put_ready.xfer_id;
		rc = rd_conn_send_msg(c, &m, req);
		if (rc == 0)
			rc = rd_conn_wait_reply(c, req, o->timeout_ms + END_EXTRA_MS, &f, &werr);
	}
	progress_end(&pg);
	if (rc == RD_ERR_SYSTEM || rc == RD_ERR_MISMATCH) {
		code = local_fail("put", path, "cannot read", errno);
		goto out;
	}
	if (rc == RD_ERR_REMOTE && werr == RDF_E_HASH_MISMATCH && cached) {
		/* the cached digest was wrong (it cannot be, short of a clock set back): forget
		 * it and hash the file */
		digest_forget(&sb);
		rd_msg_clear(&r);
		goto rehash;
	}
	if (rc == RD_ERR_REMOTE && werr == RDF_E_HASH_MISMATCH && from > 0 && attempt++ == 0) {
		/* what the server had staged was not a prefix of this file: it dropped it */
		if (!o->quiet)
			fprintf(stderr,
				"roomdrop: put %s: the partial upload on the server did not "
				"match; sending the whole file again\n",
				shown(name, esc, sizeof(esc)));
		rd_msg_clear(&r);
		goto again;
	}
	if (rc != 0) {
		code = remote_fail(c, "put", name, rc, werr);
		goto out;
	}
	rd_msg_clear(&r);
	if (f.hdr.type != RDF_MSG_PUT_DONE ||
	    rd_msg_decode(RDF_MSG_PUT_DONE, f.payload, f.len, &r) != 0 ||
	    rdf_body(&r)->put_done.size != size ||
	    !rd_ct_equal(rdf_body(&r)->put_done.sha256, sha, RD_SHA256_SIZE)) {
		code = remote_fail(c, "put", name, RD_ERR_PROTOCOL, 0);
		goto out;
	}
	snprintf(stored, sizeof(stored), "%s", rdf_body(&r)->put_done.name);
	if (streamed && unchanged(fd, &sb, &after))
		digest_put(&after, sha); /* the next put of this file declares it at once */
	wire_counts(c, &sent1, &recv1);
	summary("put", name, stored, size, from, progress_elapsed(&pg), sha,
		sent1 > sent0 ? sent1 - sent0 : 0, streamed ? " (hashed while sending)" : NULL);
	code = CLI_OK;
out:
	rd_msg_clear(&r);
	rd_sha256_free(h);
	if (fd >= 0)
		close(fd);
	return code;
}

/* ---- many small files: pipelined ----------------------------------------------------------
 * Files of at most one chunk are sent without a round trip each: up to PIPE_PUTS PUTs wait
 * for their PUT_READY at once (the server allows 8 uploads in flight per connection), each
 * PUT_READY is answered at once with the chunk and PUT_END, and up to PIPE_MAX files wait
 * for their PUT_DONE, which the server sends after a group commit (PROTOCOL.md section 17,
 * "Batches"). Replies are told apart by request id. A larger file waits until the pipe is
 * empty and goes on its own (put_one). */
#define PIPE_PUTS 8u
#define PIPE_MAX 64u

struct pput {
	const char *path;
	char name[RD_NAME_BUF];
	uint8_t *buf; /* CHUNK_FIXED + the file's bytes */
	size_t size;
	uint8_t sha[RD_SHA256_SIZE];
	uint32_t req_put, req_end;
	uint64_t from, t0;
	int ended;   /* chunk and PUT_END sent */
	int retried; /* sent whole again after the server dropped a partial upload */
};

/* A regular file of at most one chunk (pipelined), 0 otherwise or when it cannot be
 * looked at (put_one then says why). */
static int pipe_fits(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size <= RD_CHUNK_SIZE;
}

/* Read, hash and announce path (PUT). 0, or the exit code of a failure already reported. */
static int pipe_start(struct rd_conn *c, const struct cli_opts *o, const char *path, struct pput *p)
{
	char esc[NAME_SHOWN], why[160];
	const char *name = strrchr(path, '/');
	struct stat sb;
	struct rd_msg m;
	int fd, rc;

	memset(p, 0, sizeof(*p));
	p->path = path;
	name = name != NULL ? name + 1 : path;
	if (wire_name(name, p->name, why, sizeof(why)) != 0) {
		fprintf(stderr, "roomdrop: put %s: not a file name the server accepts: %s\n",
			shown(path, esc, sizeof(esc)), why);
		return CLI_EUSAGE;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return local_fail("put", path, "cannot open", errno);
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > RD_CHUNK_SIZE) {
		close(fd);
		return local_fail("put", path, "not a regular file (or it changed)", 0);
	}
	p->size = (size_t)sb.st_size;
	if ((p->buf = malloc(CHUNK_FIXED + p->size + 1)) == NULL) {
		close(fd);
		return local_fail("put", path, "out of memory", 0);
	}
	rc = rd_pread_full(fd, p->buf + CHUNK_FIXED, p->size, 0);
	close(fd);
	if (rc != 0)
		return local_fail("put", path, "cannot read", errno);
	if (rd_sha256(p->buf + CHUNK_FIXED, p->size, p->sha) != 0)
		return local_fail("put", path, "cannot hash", 0);
	rd_msg_init(&m, RDF_MSG_PUT);
	snprintf(rdf_body(&m)->put.name, sizeof(rdf_body(&m)->put.name), "%s", p->name);
	rdf_body(&m)->put.size = p->size;
	memcpy(rdf_body(&m)->put.sha256, p->sha, RD_SHA256_SIZE);
	rdf_body(&m)->put.mode = o->overwrite ? RDF_PUT_OVERWRITE :
				 o->rename    ? RDF_PUT_RENAME :
						RDF_PUT_REFUSE;
	p->req_put = rd_conn_next_id(c);
	p->t0 = rd_now_mono_ms();
	if ((rc = rd_conn_send_msg(c, &m, p->req_put)) != 0)
		return remote_fail(c, "put", p->name, rc, 0);
	return 0;
}

/* PUT_READY for p: its bytes from the offset asked for, and PUT_END, without waiting. */
static int pipe_send(struct rd_conn *c, struct pput *p, const struct rd_frame *f, int no_compress)
{
	struct rd_msg r;
	uint32_t xfer;
	unsigned opts = 0;
	size_t n;
	int rc;

	if (f->hdr.type != RDF_MSG_PUT_READY ||
	    rd_msg_decode(RDF_MSG_PUT_READY, f->payload, f->len, &r) != 0)
		return RD_ERR_PROTOCOL;
	xfer = rdf_body(&r)->put_ready.xfer_id;
	p->from = rdf_body(&r)->put_ready.offset;
	rc = p->from > p->size || rd_filename_check(rdf_body(&r)->put_ready.name,
						    strlen(rdf_body(&r)->put_ready.name)) != 0;
	rd_msg_clear(&r);
	if (rc)
		return RD_ERR_PROTOCOL;
	p->req_end = rd_conn_next_id(c);
	n = p->size - (size_t)p->from;
	if (n > 0) {
		/* (the chunk's bytes move to follow its fixed fields) */
		memmove(p->buf + CHUNK_FIXED, p->buf + CHUNK_FIXED + p->from, n);
		rd_be32_put(p->buf, xfer);
		rd_be64_put(p->buf + 4, p->from);
		rd_be32_put(p->buf + 12, (uint32_t)n);
		if (!no_compress &&
		    rd_zip_sample_worth(p->buf + CHUNK_FIXED, n < SAMPLE_SIZE ? n : SAMPLE_SIZE))
			opts = RD_FRAME_COMPRESS;
		if ((rc = rd_conn_send(c, RDF_MSG_PUT_CHUNK, p->req_end, p->buf, CHUNK_FIXED + n,
				       opts)) != 0)
			return rc;
	}
	rd_msg_init(&r, RDF_MSG_PUT_END);
	rdf_body(&r)->xfer.xfer_id = xfer;
	if ((rc = rd_conn_send_msg(c, &r, p->req_end)) != 0)
		return rc;
	p->ended = 1;
	return 0;
}

/* PUT_DONE for p: checked against what was sent, and reported. */
static int pipe_done(struct rd_conn *c, struct pput *p, const struct rd_frame *f)
{
	struct rd_msg r;
	int ok;

	ok = f->hdr.type == RDF_MSG_PUT_DONE &&
	     rd_msg_decode(RDF_MSG_PUT_DONE, f->payload, f->len, &r) == 0;
	if (ok) {
		ok = rdf_body(&r)->put_done.size == p->size &&
		     rd_ct_equal(rdf_body(&r)->put_done.sha256, p->sha, RD_SHA256_SIZE);
		if (ok)
			summary("put", p->name, rdf_body(&r)->put_done.name, p->size, p->from,
				(double)(rd_now_mono_ms() - p->t0) / 1000.0, p->sha, 0, NULL);
		rd_msg_clear(&r);
	}
	return ok ? CLI_OK : remote_fail(c, "put", p->name, RD_ERR_PROTOCOL, 0);
}

/* Put paths[0..n) through the pipe (put_one for those that do not fit it). The worst exit
 * code. */
static int put_many(struct rd_conn *c, const struct cli_opts *o, char **paths, int n)
{
	struct pput act[PIPE_MAX];
	char esc[NAME_SHOWN];
	unsigned nact = 0, waiting_ready = 0, i;
	int next = 0, worst = CLI_OK, code, rc;
	struct rd_frame f;
	uint16_t werr;

#define WORSE(x)                                     \
	do {                                         \
		int w_ = (x);                        \
		if (w_ != CLI_OK && worst == CLI_OK) \
			worst = w_;                  \
	} while (0)
	while ((next < n || nact > 0) && !cli_stop) {
		while (next < n && waiting_ready < PIPE_PUTS && nact < PIPE_MAX) {
			if (!pipe_fits(paths[next])) {
				if (nact > 0)
					break; /* the pipe empties first: replies stay in order */
				code = put_one(c, o, paths[next++]);
				WORSE(code);
				if (code == CLI_ELOST || cli_stop)
					goto out;
				continue;
			}
			code = pipe_start(c, o, paths[next++], &act[nact]);
			if (code != CLI_OK) {
				free(act[nact].buf);
				WORSE(code);
				if (code == CLI_ELOST)
					goto out;
				continue;
			}
			nact++;
			waiting_ready++;
		}
		if (nact == 0)
			continue;
		rc = rd_conn_wait_any_reply(c, o->timeout_ms + END_EXTRA_MS, &f, &werr);
		if (rc != 0 && rc != RD_ERR_REMOTE) { /* the connection: every file left fails */
			for (i = 0; i < nact; i++) {
				WORSE(remote_fail(c, "put", act[i].name, rc, 0));
				free(act[i].buf);
			}
			nact = 0;
			goto out;
		}
		for (i = 0; i < nact; i++)
			if ((!act[i].ended && f.hdr.req_id == act[i].req_put) ||
			    (act[i].ended && f.hdr.req_id == act[i].req_end))
				break;
		if (i == nact)
			continue; /* (a second ERROR for an upload already answered) */
		if (!act[i].ended) {
			waiting_ready--;
			code = rc == RD_ERR_REMOTE ? remote_fail(c, "put", act[i].name, rc, werr) :
			       (rc = pipe_send(c, &act[i], &f, o->no_compress)) != 0 ?
						     remote_fail(c, "put", act[i].name, rc, 0) :
						     CLI_OK;
			WORSE(code);
			if (code == CLI_OK)
				continue; /* now waits for its PUT_DONE */
		} else if (rc == RD_ERR_REMOTE && werr == RDF_E_HASH_MISMATCH && act[i].from > 0 &&
			   !act[i].retried) {
			/* what the server had staged was not a prefix of this file: it dropped
			 * it; the whole file again, once */
			if (!o->quiet)
				fprintf(stderr,
					"roomdrop: put %s: the partial upload on the server did not "
					"match; sending the whole file again\n",
					shown(act[i].name, esc, sizeof(esc)));
			free(act[i].buf);
			code = pipe_start(c, o, act[i].path, &act[i]);
			act[i].retried = 1;
			if (code == CLI_OK) {
				waiting_ready++;
				continue;
			}
			WORSE(code);
		} else {
			WORSE(rc == RD_ERR_REMOTE ? remote_fail(c, "put", act[i].name, rc, werr) :
						    pipe_done(c, &act[i], &f));
		}
		free(act[i].buf);
		memmove(&act[i], &act[i + 1], (nact - i - 1) * sizeof(act[0]));
		nact--;
	}
out:
	for (i = 0; i < nact; i++) { /* interrupted (Ctrl-C) */
		WORSE(remote_fail(c, "put", act[i].name, RD_ERR_CANCELLED, 0));
		free(act[i].buf);
	}
	return worst;
#undef WORSE
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* `put DIR`: the regular files directly in DIR (room folders are flat: a folder inside is
 * left out, and said so), sorted, appended to *v as malloc'd paths. 0 or an exit code. */
static int expand_dir(const char *dir, char ***v, size_t *n, size_t *cap)
{
	char esc[NAME_SHOWN], *path, **nv;
	struct dirent *de;
	struct stat sb;
	size_t first = *n;
	DIR *d = opendir(dir);

	if (d == NULL)
		return local_fail("put", dir, "cannot read the folder", errno);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' &&
		    (de->d_name[1] == '\0' || (de->d_name[1] == '.' && de->d_name[2] == '\0')))
			continue;
		if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
			closedir(d);
			return local_fail("put", dir, "out of memory", 0);
		}
		if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
			if (S_ISDIR(sb.st_mode))
				fprintf(stderr,
					"roomdrop: put %s: a folder inside a folder is left out (a "
					"room's folder is flat)\n",
					shown(path, esc, sizeof(esc)));
			free(path);
			continue;
		}
		if (*n == *cap) {
			*cap = *cap ? 2 * *cap : 64;
			if ((nv = realloc(*v, *cap * sizeof(*nv))) == NULL) {
				free(path);
				closedir(d);
				return local_fail("put", dir, "out of memory", 0);
			}
			*v = nv;
		}
		(*v)[(*n)++] = path;
	}
	closedir(d);
	qsort(*v + first, *n - first, sizeof(**v), name_cmp);
	return CLI_OK;
}

int cli_files_put(struct rd_conn *c, const struct cli_opts *o, int argc, char **argv)
{
	char **v = NULL, **nv;
	size_t n = 0, cap = 0;
	struct stat sb;
	int worst = CLI_OK, code;

	if (argc < 1) {
		fprintf(stderr, "roomdrop: put needs at least one FILE (try --help)\n");
		return CLI_EUSAGE;
	}
	for (int i = 0; i < argc; i++) {
		if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
			if ((code = expand_dir(argv[i], &v, &n, &cap)) != CLI_OK && worst == CLI_OK)
				worst = code;
			continue;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			if ((nv = realloc(v, cap * sizeof(*nv))) == NULL) {
				worst = local_fail("put", argv[i], "out of memory", 0);
				goto out;
			}
			v = nv;
		}
		if ((v[n] = strdup(argv[i])) == NULL) {
			worst = local_fail("put", argv[i], "out of memory", 0);
			goto out;
		}
		n++;
	}
	tally_start(o);
	code = put_many(c, o, v, (int)n);
	if (code != CLI_OK && worst == CLI_OK)
		worst = code;
	tally_print("put", "stored", (int)n);
out:
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return worst;
}

/* ---- get -------------------------------------------------------------------------------- */

/* NAME.part, or roomdrop-<first 16 hex of SHA-256(NAME)>.part when that is too long. */
static void part_name(const char *name, char *out, size_t cap)
{
	uint8_t d[RD_SHA256_SIZE];
	char hex[2 * RD_SHA256_SIZE + 1];

	if (strlen(name) + strlen(PART_SUFFIX) <= RD_FILENAME_MAX) {
		snprintf(out, cap, "%s" PART_SUFFIX, name);
		return;
	}
	(void)rd_sha256(name, strlen(name), d);
	rd_hex(d, RD_SHA256_SIZE, hex);
	hex[16] = '\0';
	snprintf(out, cap, "roomdrop-%s" PART_SUFFIX, hex);
}

struct get_state {
	uint32_t req, xfer;
	uint64_t from, size, pos, mtime_ms;
	uint8_t sha[RD_SHA256_SIZE];
};

/* Receive GET_CHUNK frames into pfd until GET_END. */
static int get_stream(struct rd_conn *c, const struct cli_opts *o, struct sink *sk,
		      struct get_state *g, struct progress *pg, uint16_t *werr)
{
	struct rd_frame f;
	struct rd_msg m;
	int rc;

	for (;;) {
		if ((rc = rd_conn_wait_reply(c, g->req, o->timeout_ms, &f, werr)) != 0) {
			if (rc == RD_ERR_CANCELLED) /* Ctrl-C in the shell */
				send_cancel(c, g->xfer, "interrupted");
			return rc;
		}
		if (f.hdr.type == RDF_MSG_GET_END) {
			if (rd_msg_decode(RDF_MSG_GET_END, f.payload, f.len, &m) != 0 ||
			    rdf_body(&m)->xfer.xfer_id != g->xfer)
				return RD_ERR_PROTOCOL;
			return 0;
		}
		if (f.hdr.type != RDF_MSG_GET_CHUNK ||
		    rd_msg_decode(RDF_MSG_GET_CHUNK, f.payload, f.len, &m) != 0)
			return RD_ERR_PROTOCOL;
		if (rdf_body(&m)->chunk.xfer_id != g->xfer ||
		    rdf_body(&m)->chunk.offset != g->pos ||
		    rdf_body(&m)->chunk.data.n > g->size - g->pos)
			return RD_ERR_PROTOCOL;
		if ((rc = sink_push(sk, rdf_body(&m)->chunk.data.p, rdf_body(&m)->chunk.data.n)) !=
		    0)
			return rc;
		g->pos += rdf_body(&m)->chunk.data.n;
		progress_update(pg, g->pos);
		if (cli_stop) {
			send_cancel(c, g->xfer, "interrupted");
			return RD_ERR_STATE;
		}
	}
}

/* NAME exists locally and there is no --overwrite: ask the server first, so that a name
 * the room does not have is reported as such (502, exit 5) rather than as a local
 * conflict; when it does have it, stop the download at once and report the conflict. */
static int get_conflict(struct rd_conn *c, const struct cli_opts *o, const char *dir,
			const char *name)
{
	char esc[NAME_SHOWN];
	struct rd_frame f;
	struct rd_msg m;
	uint16_t werr = 0;
	uint32_t req;
	int rc;

	rd_msg_init(&m, RDF_MSG_GET);
	snprintf(rdf_body(&m)->get.name, sizeof(rdf_body(&m)->get.name), "%s", name);
	rdf_body(&m)->get.offset = 0;
	req = rd_conn_next_id(c);
	rc = rd_conn_send_msg(c, &m, req);
	if (rc == 0)
		rc = rd_conn_wait_reply(c, req, o->timeout_ms, &f, &werr);
	if (rc != 0)
		return remote_fail(c, "get", name, rc, werr);
	if (f.hdr.type != RDF_MSG_GET_BEGIN ||
	    rd_msg_decode(RDF_MSG_GET_BEGIN, f.payload, f.len, &m) != 0)
		return remote_fail(c, "get", name, RD_ERR_PROTOCOL, 0);
	/* chunks already on the way are dropped as late frames (cli_files_print_frame) */
	send_cancel(c, rdf_body(&m)->get_begin.xfer_id, "exists locally");
	fprintf(stderr, "roomdrop: get %s: %s/%s already exists (use --overwrite to replace it)\n",
		shown(name, esc, sizeof(esc)), dir, esc);
	return CLI_ECONFLICT;
}

/* Ask for NAME from g->from and check the GET_BEGIN that answers: g gets the transfer's
 * id, size, time and SHA-256; r holds the decoded reply. RD_ERR_REMOTE with werr set,
 * RD_ERR_PROTOCOL for an answer that does not fit the question. */
static int get_request(struct rd_conn *c, const struct cli_opts *o, const char *name,
		       struct get_state *g, struct rd_msg *r, uint16_t *werr)
{
	struct rd_frame f;
	struct rd_msg m;
	int rc;

	rd_msg_init(&m, RDF_MSG_GET);
	snprintf(rdf_body(&m)->get.name, sizeof(rdf_body(&m)->get.name), "%s", name);
	rdf_body(&m)->get.offset = g->from;
	g->req = rd_conn_next_id(c);
	rc = rd_conn_send_msg(c, &m, g->req);
	if (rc == 0)
		rc = rd_conn_wait_reply(c, g->req, o->timeout_ms, &f, werr);
	if (rc != 0)
		return rc;
	rd_msg_clear(r);
	if (f.hdr.type != RDF_MSG_GET_BEGIN ||
	    rd_msg_decode(RDF_MSG_GET_BEGIN, f.payload, f.len, r) != 0 ||
	    rd_filename_check(rdf_body(r)->get_begin.name, strlen(rdf_body(r)->get_begin.name)) !=
		    0 ||
	    strcmp(rdf_body(r)->get_begin.name, name) != 0 ||
	    rdf_body(r)->get_begin.offset != g->from || rdf_body(r)->get_begin.size < g->from)
		return RD_ERR_PROTOCOL;
	g->xfer = rdf_body(r)->get_begin.xfer_id;
	g->size = rdf_body(r)->get_begin.size;
	g->mtime_ms = rdf_body(r)->get_begin.mtime_ms;
	g->pos = g->from;
	memcpy(g->sha, rdf_body(r)->get_begin.sha256, RD_SHA256_SIZE);
	return 0;
}

/* Receive the announced bytes into fd (from g->pos), hashed into h, the writing done by a
 * sink's thread while this one reads the network, with a progress bar. CLI_OK with
 * *verified telling whether size and SHA-256 match what GET_BEGIN announced, or the exit
 * code of a failure already reported (`what`: the local write that failed). *wire: the
 * bytes it took on the connection. */
static int get_receive(struct rd_conn *c, const struct cli_opts *o, const char *name, int fd,
		       enum sink_kind kind, const char *what, struct get_state *g,
		       struct rd_sha256 *h, uint64_t *wire, double *secs, int *verified)
{
	uint8_t got[RD_SHA256_SIZE];
	uint64_t sent0 = 0, recv0 = 0, sent1 = 0, recv1 = 0;
	struct progress pg;
	struct sink *sk;
	uint16_t werr = 0;
	int rc, rc2;

	*verified = 0;
	progress_start(&pg, "get", name, g->size, g->from, o->quiet);
	wire_counts(c, &sent0, &recv0);
	if ((rc = sink_start(&sk, fd, kind, g->pos, h)) == 0) {
		rc = get_stream(c, o, sk, g, &pg, &werr);
		if ((rc2 = sink_finish(sk)) != 0 && (rc == 0 || rc == RD_ERR_SYSTEM))
			rc = rc2; /* the writer's own error, errno set */
	}
	wire_counts(c, &sent1, &recv1);
	progress_end(&pg);
	*wire = recv1 > recv0 ? recv1 - recv0 : 0;
	*secs = progress_elapsed(&pg);
	if (rc == RD_ERR_SYSTEM || rc == RD_ERR_NOMEM)
		return local_fail("get", name, what, rc == RD_ERR_NOMEM ? ENOMEM : errno);
	if (rc != 0)
		return remote_fail(c, "get", name, rc, werr);
	*verified = rd_sha256_final(h, got) == 0 && g->pos == g->size &&
		    rd_ct_equal(got, g->sha, RD_SHA256_SIZE);
	return CLI_OK;
}

/* get -o -: NAME's bytes to standard output, checked against its SHA-256 at the end (the
 * bytes are out by then: a mismatch is an error for the reader of the pipe to heed). */
static int get_stdout(struct rd_conn *c, const struct cli_opts *o, const char *name)
{
	char esc[NAME_SHOWN];
	struct rd_sha256 *h = NULL;
	struct get_state g;
	struct rd_msg r;
	uint64_t wire = 0;
	double secs = 0;
	uint16_t werr = 0;
	int rc, code, ok;

	memset(&g, 0, sizeof(g));
	rd_msg_init(&r, 0);
	if (rd_sha256_new(&h) != 0)
		return local_fail("get", name, "out of memory", 0);
	if ((rc = get_request(c, o, name, &g, &r, &werr)) != 0) {
		code = remote_fail(c, "get", name, rc, werr);
		goto out;
	}
	code = get_receive(c, o, name, STDOUT_FILENO, SINK_STREAM,
			   "cannot write to standard output", &g, h, &wire, &secs, &ok);
	if (code != CLI_OK)
		goto out;
	if (!ok) {
		fprintf(stderr,
			"roomdrop: get %s: %s mismatch: the bytes written to standard output are "
			"not the file the server announced\n",
			shown(name, esc, sizeof(esc)), g.pos != g.size ? "size" : "SHA-256");
		code = CLI_EVERIFY;
		goto out;
	}
	summary("get", name, NULL, g.size, 0, secs, g.sha, wire, NULL);
out:
	rd_msg_clear(&r);
	rd_sha256_free(h);
	return code;
}

/* Small files of a multi-file get wait here, verified in their .part files, and are
 * flushed and named together: one syncfs for their data, the renames, one fsync of the
 * folder (instead of two flushes each). The promise is get's: NAME appears only complete,
 * verified and durable. */
#define GET_LATER_MAX 64u
#define GET_LATER_SIZE (1u << 20)
struct get_later {
	unsigned n;
	struct {
		char part[RD_NAME_BUF + 16], name[RD_NAME_BUF];
		uint64_t size, from, wire;
		double secs;
		uint8_t sha[RD_SHA256_SIZE];
	} f[GET_LATER_MAX];
};

static int get_later_has(const struct get_later *b, const char *name)
{
	for (unsigned i = 0; i < b->n; i++)
		if (strcmp(b->f[i].name, name) == 0)
			return 1;
	return 0;
}

/* Flush and name what waits in b. The worst exit code. */
static int get_later_flush(const struct cli_opts *o, int dfd, const char *dir, struct get_later *b)
{
	char esc[NAME_SHOWN];
	int worst = CLI_OK, rc, synced;

	if (b->n == 0)
		return CLI_OK;
	synced = syncfs(dfd) == 0;
	for (unsigned i = 0; i < b->n; i++) {
		int pfd;

		if (!synced) { /* (syncfs failed: each file on its own) */
			pfd = openat(dfd, b->f[i].part, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (pfd < 0 || fsync(pfd) != 0) {
				rc = local_fail("get", b->f[i].name,
						"cannot flush the .part file to disk", errno);
				if (pfd >= 0)
					close(pfd);
				if (worst == CLI_OK)
					worst = rc;
				b->f[i].size = UINT64_MAX; /* (not named) */
				continue;
			}
			close(pfd);
		}
		rc = o->overwrite ?
			     renameat(dfd, b->f[i].part, dfd, b->f[i].name) :
			     renameat2(dfd, b->f[i].part, dfd, b->f[i].name, RENAME_NOREPLACE);
		if (rc != 0) {
			if (errno == EEXIST) {
				fprintf(stderr,
					"roomdrop: get %s: %s/%s appeared meanwhile; the verified "
					"data stays in %s (use --overwrite)\n",
					shown(b->f[i].name, esc, sizeof(esc)), dir, esc,
					b->f[i].part);
				rc = CLI_ECONFLICT;
			} else {
				rc = local_fail("get", b->f[i].name, "cannot rename the .part file",
						errno);
			}
			if (worst == CLI_OK)
				worst = rc;
			b->f[i].size = UINT64_MAX;
		}
	}
	(void)fsync(dfd); /* the renames */
	for (unsigned i = 0; i < b->n; i++)
		if (b->f[i].size != UINT64_MAX)
			summary("get", b->f[i].name, NULL, b->f[i].size, b->f[i].from, b->f[i].secs,
				b->f[i].sha, b->f[i].wire, NULL);
	b->n = 0;
	return worst;
}

static int get_one(struct rd_conn *c, const struct cli_opts *o, int dfd, const char *dir,
		   const char *name, struct get_later *later)
{
	char esc[NAME_SHOWN], part[RD_NAME_BUF + 16];
	struct rd_sha256 *h = NULL;
	struct get_state g;
	struct progress pg;
	struct timespec ts[2];
	struct rd_msg r;
	struct stat sb;
	uint64_t wire = 0;
	double secs = 0;
	uint16_t werr = 0;
	int pfd = -1, rc, code, attempt = 0, ok;

	memset(&g, 0, sizeof(g));
	rd_msg_init(&r, 0);
	if (!o->overwrite && fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0)
		return get_conflict(c, o, dir, name);
	part_name(name, part, sizeof(part));
	pfd = openat(dfd, part, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (pfd < 0 || fstat(pfd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		code = local_fail("get", name, "cannot write the .part file", errno);
		goto out;
	}
	if (rd_sha256_new(&h) != 0) {
		code = local_fail("get", name, "out of memory", 0);
		goto out;
	}
again:
	/* resume from what NAME.part holds */
	if (rd_sha256_reset(h) != 0 || fstat(pfd, &sb) != 0) {
		code = local_fail("get", name, "cannot read the .part file", errno);
		goto out;
	}
	g.from = (uint64_t)sb.st_size;
	if (g.from > 0) {
		progress_start(&pg, "check", name, g.from, 0, o->quiet);
		rc = hash_fd(c, pfd, g.from, h, &pg);
		progress_end(&pg);
		if (rc == RD_ERR_SYSTEM || rc == RD_ERR_MISMATCH) {
			code = local_fail("get", name, "cannot read the .part file", errno);
			goto out;
		}
		if (rc != 0) {
			code = remote_fail(c, "get", name, rc, 0);
			goto out;
		}
	}
	rc = get_request(c, o, name, &g, &r, &werr);
	if (rc == RD_ERR_REMOTE && werr == RDF_E_BAD_OFFSET && g.from > 0 && attempt++ == 0) {
		/* the .part is longer than the file: start over */
		if (ftruncate(pfd, 0) != 0) {
			code = local_fail("get", name, "cannot truncate the .part file", errno);
			goto out;
		}
		goto again;
	}
	if (rc != 0) {
		code = remote_fail(c, "get", name, rc, werr);
		goto out;
	}
	code = get_receive(c, o, name, pfd, SINK_FILE, "cannot write the .part file", &g, h, &wire,
			   &secs, &ok);
	if (code != CLI_OK)
		goto out;
	/* verified, or nothing */
	if (!ok) {
		if (ftruncate(pfd, 0) != 0) {
			code = local_fail("get", name, "cannot truncate the .part file", errno);
			goto out;
		}
		if (g.from > 0 && attempt++ == 0) {
			/* the .part came from another version of the file: fetch it whole */
			if (!o->quiet)
				fprintf(stderr,
					"roomdrop: get %s: the partial download did not match; "
					"fetching the whole file again\n",
					shown(name, esc, sizeof(esc)));
			goto again;
		}
		(void)unlinkat(dfd, part, 0);
		fprintf(stderr,
			"roomdrop: get %s: %s mismatch: the data received is not the file the "
			"server announced; nothing kept\n",
			shown(name, esc, sizeof(esc)), g.pos != g.size ? "size" : "SHA-256");
		code = CLI_EVERIFY;
		goto out;
	}
	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_sec = (time_t)(g.mtime_ms / 1000);
	ts[1].tv_nsec = (long)(g.mtime_ms % 1000) * 1000000L;
	(void)futimens(pfd, ts);
	if (later != NULL && g.size <= GET_LATER_SIZE && later->n < GET_LATER_MAX) {
		unsigned k = later->n++;

		snprintf(later->f[k].part, sizeof(later->f[k].part), "%s", part);
		snprintf(later->f[k].name, sizeof(later->f[k].name), "%s", name);
		later->f[k].size = g.size;
		later->f[k].from = g.from;
		later->f[k].wire = wire;
		later->f[k].secs = secs;
		memcpy(later->f[k].sha, g.sha, RD_SHA256_SIZE);
		code = CLI_OK;
		goto out;
	}
	/* the data reaches the disk before its name does: a crash right after the rename must
	 * not leave NAME with missing blocks */
	if (fsync(pfd) != 0) {
		code = local_fail("get", name, "cannot flush the .part file to disk", errno);
		goto out;
	}
	if (o->overwrite)
		rc = renameat(dfd, part, dfd, name);
	else
		rc = renameat2(dfd, part, dfd, name, RENAME_NOREPLACE);
	if (rc != 0) {
		if (errno == EEXIST) {
			fprintf(stderr,
				"roomdrop: get %s: %s/%s appeared meanwhile; the verified data "
				"stays in %s (use --overwrite)\n",
				shown(name, esc, sizeof(esc)), dir, esc, part);
			code = CLI_ECONFLICT;
		} else {
			code = local_fail("get", name, "cannot rename the .part file", errno);
		}
		goto out;
	}
	(void)fsync(dfd); /* and the rename itself */
	summary("get", name, NULL, g.size, g.from, secs, g.sha, wire, NULL);
	code = CLI_OK;
out:
	/* a failed get leaves a .part only if it holds bytes to resume from */
	if (code != CLI_OK && pfd >= 0 && fstat(pfd, &sb) == 0 && sb.st_size == 0)
		(void)unlinkat(dfd, part, 0);
	rd_msg_clear(&r);
	rd_sha256_free(h);
	if (pfd >= 0)
		close(pfd);
	return code;
}

static int ls_fetch(struct rd_conn *c, const struct cli_opts *o, struct rdf_file_entry **out,
		    size_t *n, char *room, size_t room_cap);

/* v with room for twice *cap pointers (*cap updated), or NULL (v freed). */
static const char **grow_ptrs(const char **v, size_t *cap)
{
	const char **nv = realloc(v, 2 * *cap * sizeof(*v));

	if (nv == NULL) {
		free(v);
		return NULL;
	}
	*cap *= 2;
	return nv;
}

/* One NAME of `get` after its pattern is expanded (a name with *, ? or [ is a shell
 * pattern matched against the room's listing: fnmatch). Fills *names (malloc'd array of
 * pointers into argv or into *list). 0, or an exit code (the listing failed, or a pattern
 * matched nothing: CLI_ENOTFOUND, said). */
static int get_expand(struct rd_conn *c, const struct cli_opts *o, int argc, char **argv,
		      const char ***names, size_t *n, struct rdf_file_entry **list, size_t *nlist)
{
	char esc[NAME_SHOWN], room[RD_ROOM_BUF];
	const char **v;
	size_t k = 0, cap = (size_t)argc;
	int rc, worst = CLI_OK, listed = 0;

	if ((v = malloc(cap * sizeof(*v))) == NULL)
		return local_fail("get", argv[0], "out of memory", 0);
	for (int i = 0; i < argc; i++) {
		if (strpbrk(argv[i], "*?[") == NULL) {
			if (k == cap && (v = grow_ptrs(v, &cap)) == NULL)
				return local_fail("get", argv[i], "out of memory", 0);
			v[k++] = argv[i];
			continue;
		}
		if (!listed) {
			if ((rc = ls_fetch(c, o, list, nlist, room, sizeof(room))) != CLI_OK) {
				free(v);
				return rc;
			}
			listed = 1;
		}
		size_t before = k;

		for (size_t j = 0; j < *nlist; j++) {
			size_t d;

			if (fnmatch(argv[i], (*list)[j].name, FNM_PERIOD) != 0)
				continue;
			for (d = 0; d < k && strcmp(v[d], (*list)[j].name) != 0; d++)
				;
			if (d < k)
				continue; /* (named twice: fetched once) */
			if (k == cap && (v = grow_ptrs(v, &cap)) == NULL)
				return local_fail("get", argv[i], "out of memory", 0);
			v[k++] = (*list)[j].name;
		}
		if (k == before) {
			fprintf(stderr, "roomdrop: get %s: no file of the room matches\n",
				shown(argv[i], esc, sizeof(esc)));
			worst = CLI_ENOTFOUND;
		}
	}
	*names = v;
	*n = k;
	return worst;
}

int cli_files_get(struct rd_conn *c, const struct cli_opts *o, int argc, char **argv)
{
	const char *dir = o->outdir != NULL ? o->outdir : ".";
	char esc[NAME_SHOWN], nfc[RD_NAME_BUF], why[160];
	struct rdf_file_entry *list = NULL;
	struct get_later *later = NULL;
	const char **names = NULL;
	size_t nnames = 0, nlist = 0;
	int rc, worst = CLI_OK, dfd;

	if (argc < 1) {
		fprintf(stderr, "roomdrop: get needs at least one NAME (try --help)\n");
		return CLI_EUSAGE;
	}
	if (strcmp(dir, "-") == 0 && isatty(STDOUT_FILENO)) {
		fprintf(stderr, "roomdrop: get -o -: standard output is a terminal; send it to a "
				"file or a pipe\n");
		return CLI_EUSAGE;
	}
	dfd = strcmp(dir, "-") == 0 ? -1 : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 && strcmp(dir, "-") != 0) {
		fprintf(stderr, "roomdrop: get: cannot use the folder %s: %s\n",
			shown(dir, esc, sizeof(esc)), strerror(errno));
		return CLI_ELOCAL;
	}
	tally_start(o);
	if (dfd < 0)
		g_tally.out = stderr;
	worst = get_expand(c, o, argc, argv, &names, &nnames, &list, &nlist);
	if (worst == CLI_ELOST || names == NULL)
		goto out;
	later = dfd >= 0 && nnames > 1 ? calloc(1, sizeof(*later)) : NULL; /* (none: one by one) */
	for (size_t i = 0; i < nnames; i++) {
		if (wire_name(names[i], nfc, why, sizeof(why)) != 0) {
			fprintf(stderr, "roomdrop: get %s: not a valid file name: %s\n",
				shown(names[i], esc, sizeof(esc)), why);
			rc = CLI_EUSAGE;
		} else {
			/* the same name again: what waits is named first, as one by one */
			if (later != NULL && get_later_has(later, nfc) &&
			    (rc = get_later_flush(o, dfd, dir, later)) != CLI_OK && worst == CLI_OK)
				worst = rc;
			rc = dfd < 0 ? get_stdout(c, o, nfc) : get_one(c, o, dfd, dir, nfc, later);
		}
		if (rc != CLI_OK && worst == CLI_OK)
			worst = rc;
		if (rc == CLI_ELOST || cli_stop)
			break;
		if (later != NULL && later->n == GET_LATER_MAX &&
		    (rc = get_later_flush(o, dfd, dir, later)) != CLI_OK && worst == CLI_OK)
			worst = rc;
	}
	if (later != NULL && (rc = get_later_flush(o, dfd, dir, later)) != CLI_OK &&
	    worst == CLI_OK)
		worst = rc;
	tally_print("get", dfd < 0 ? "written out" : "saved", (int)nnames);
out:
	free(later);
	free(names);
	free(list);
	if (dfd >= 0)
		close(dfd);
	return worst;
}

/* ---- ls and rm -------------------------------------------------------------------------- */

/* Columns a UTF-8 string takes (one per code point: good enough for names). */
/* Terminal columns of escaped text (wide characters count 2). */
static size_t columns(const char *s)
{
	return rd_display_width(s, strlen(s));
}

/* Every page of the listing (LIST after the last name until FILE_LIST.more is 0), into
 * one array. */
static int ls_fetch(struct rd_conn *c, const struct cli_opts *o, struct rdf_file_entry **out,
		    size_t *n, char *room, size_t room_cap)
{
	struct rdf_file_entry *all = NULL, *tmp;
	struct rd_msg m, r;
	char after[RD_NAME_BUF] = "";
	uint16_t werr = 0;
	size_t cnt = 0;
	uint32_t i;
	int rc = 0, more;

	*out = NULL;
	*n = 0;
	do {
		rd_msg_init(&m, RDF_MSG_LIST);
		snprintf(rdf_body(&m)->list.after, sizeof(rdf_body(&m)->list.after), "%s", after);
		if ((rc = rd_conn_request(c, &m, &r, &werr)) != 0) {
			rc = remote_fail(c, "ls", o->room != NULL ? o->room : "", rc, werr);
			goto out;
		}
		more = r.type == RDF_MSG_FILE_LIST && rdf_body(&r)->file_list.more;
		/* a page must move forward: names in order, after the previous page */
		if (r.type != RDF_MSG_FILE_LIST || (more && rdf_body(&r)->file_list.count == 0) ||
		    (rdf_body(&r)->file_list.count > 0 &&
		     strcmp(rdf_body(&r)->file_list.items[0].name, after) <= 0)) {
			rd_msg_clear(&r);
			rc = remote_fail(c, "ls", o->room != NULL ? o->room : "", RD_ERR_PROTOCOL,
					 0);
			goto out;
		}
		if (rdf_body(&r)->file_list.count > 0) {
			tmp = realloc(all, (cnt + rdf_body(&r)->file_list.count) * sizeof(*all));
			if (tmp == NULL) {
				rd_msg_clear(&r);
				rc = local_fail("ls", "", "out of memory", 0);
				goto out;
			}
			all = tmp;
			for (i = 0; i < rdf_body(&r)->file_list.count; i++)
				all[cnt++] = rdf_body(&r)->file_list.items[i];
			snprintf(after, sizeof(after), "%s", all[cnt - 1].name);
		}
		snprintf(room, room_cap, "%s", rdf_body(&r)->file_list.room);
		rd_msg_clear(&r);
	} while (more && !cli_stop);
	if (cli_stop) {
		rc = remote_fail(c, "ls", o->room != NULL ? o->room : "", RD_ERR_STATE, 0);
		goto out;
	}
	*out = all;
	*n = cnt;
	all = NULL;
	rc = CLI_OK;
out:
	free(all);
	return rc;
}

int cli_files_ls(struct rd_conn *c, const struct cli_opts *o)
{
	/* names are shown whole (escaped, never cut), so they can be pasted into get */
	char esc[4 * RD_NAME_BUF + 16], hs[32], when[32], hex[65], up[96], rs[96];
	char room[RD_ROOM_BUF] = "";
	struct rdf_file_entry *items = NULL;
	size_t i, n = 0, w = 4, len;
	int rc;

	if ((rc = ls_fetch(c, o, &items, &n, room, sizeof(room))) != CLI_OK)
		return rc;
	if (n == 0) {
		printf("no files in %s\n", shown(room, rs, sizeof(rs)));
		fflush(stdout);
		return CLI_OK;
	}
	for (i = 0; i < n; i++) {
		len = columns(
			rd_escape_display(items[i].name, strlen(items[i].name), esc, sizeof(esc)));
		if (len > w)
			w = len;
	}
	printf("%-*s  %10s  %-16s  %-12s  %s\n", (int)w, "NAME", "SIZE", "MODIFIED", "SHA256",
	       "UPLOADER");
	for (i = 0; i < n; i++) {
		const struct rdf_file_entry *e = &items[i];

		rd_escape_display(e->name, strlen(e->name), esc, sizeof(esc));
		rd_format_size(e->size, hs, sizeof(hs));
		cli_format_time(e->mtime_ms, when, sizeof(when));
		rd_hex(e->sha256, RD_SHA256_SIZE, hex);
		hex[12] = '\0';
		printf("%s%*s  %10s  %-16s  %-12s  %s\n", esc, (int)(w - columns(esc)), "", hs,
		       when, hex,
		       e->uploader[0] != '\0' ? shown(e->uploader, up, sizeof(up)) : "?");
	}
	printf("%zu file%s in %s\n", n, n == 1 ? "" : "s", shown(room, rs, sizeof(rs)));
	fflush(stdout);
	free(items);
	return CLI_OK;
}

int cli_files_rm(struct rd_conn *c, const struct cli_opts *o, int argc, char **argv)
{
	char esc[NAME_SHOWN], nfc[RD_NAME_BUF], why[160];
	struct rd_msg m, r;
	uint16_t werr;
	int i, rc, worst = CLI_OK;

	(void)o;
	if (argc < 1) {
		fprintf(stderr, "roomdrop: rm needs at least one NAME (try --help)\n");
		return CLI_EUSAGE;
	}
	for (i = 0; i < argc; i++) {
		if (wire_name(argv[i], nfc, why, sizeof(why)) != 0) {
			fprintf(stderr, "roomdrop: rm %s: not a valid file name: %s\n",
				shown(argv[i], esc, sizeof(esc)), why);
			if (worst == CLI_OK)
				worst = CLI_EUSAGE;
			continue;
		}
		rd_msg_init(&m, RDF_MSG_DELETE);
		snprintf(rdf_body(&m)->name.name, sizeof(rdf_body(&m)->name.name), "%s", nfc);
		werr = 0;
		rc = rd_conn_request(c, &m, &r, &werr);
		if (rc != 0) {
			rc = remote_fail(c, "rm", argv[i], rc, werr);
			if (worst == CLI_OK)
				worst = rc;
			if (rc == CLI_ELOST)
				break;
			continue;
		}
		rd_msg_clear(&r);
		printf("rm %s: removed\n", shown(argv[i], esc, sizeof(esc)));
	}
	fflush(stdout);
	return worst;
}

/* ---- notices ---------------------------------------------------------------------------- */

int cli_files_print_frame(const struct rd_frame *f, FILE *out)
{
	char esc[NAME_SHOWN], hs[32], nick[96];
	struct rd_msg m;

	if (f == NULL)
		return 0;
	switch (f->hdr.type) {
	case RDF_MSG_FILE_NOTICE:
		if (rd_msg_decode(RDF_MSG_FILE_NOTICE, f->payload, f->len, &m) != 0)
			return 1;
		shown(rdf_body(&m)->file_notice.name, esc, sizeof(esc));
		shown(rdf_body(&m)->file_notice.nick, nick, sizeof(nick));
		rd_format_size(rdf_body(&m)->file_notice.size, hs, sizeof(hs));
		if (rdf_body(&m)->file_notice.event == RDF_FILE_REMOVED)
			fprintf(out, "* %s removed %s\n", nick, esc);
		else if (rdf_body(&m)->file_notice.event == RDF_FILE_REPLACED)
			fprintf(out, "* %s replaced %s (%s)\n", nick, esc, hs);
		else
			fprintf(out, "* %s added %s (%s)\n", nick, esc, hs);
		fflush(out);
		return 1;
	case RDF_MSG_XFER_CANCEL: {
		char why[256];

		if (rd_msg_decode(RDF_MSG_XFER_CANCEL, f->payload, f->len, &m) != 0)
			return 1;
		rd_escape_display(rdf_body(&m)->xfer_cancel.reason.p,
				  rdf_body(&m)->xfer_cancel.reason.n, why, sizeof(why));
		fprintf(out, "* transfer %" PRIu32 " stopped by the server: %s%s%s\n",
			rdf_body(&m)->xfer_cancel.xfer_id,
			rd_wire_strerror(rdf_body(&m)->xfer_cancel.code), why[0] ? ": " : "", why);
		fflush(out);
		return 1;
	}
	case RDF_MSG_PUT_READY:
	case RDF_MSG_PUT_DONE:
	case RDF_MSG_GET_BEGIN:
	case RDF_MSG_GET_CHUNK:
	case RDF_MSG_GET_END:
	case RDF_MSG_FILE_LIST:
		return 1; /* late frames of a transfer that was given up: nothing to show */
	default:
		return 0;
	}
}
