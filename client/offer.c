/* offer.c - roomdrop's file offers in the command-line client (offer.h).
 *
 * Sending: the bundle (bundle.c) is listed and its descriptor offered at once while a
 * thread hashes the files; answers are shown as they come; after OFFER_RESULT(ACCEPTED)
 * every file taken by at least one recipient is streamed, from the smallest offset any of
 * them holds, as GET_BEGIN / GET_CHUNK / GET_END frames: over the direct link when one is
 * verified (an offer to one user, direct.h), else cut into OFFER_DATA pieces through the
 * server; then the sender waits for each accepting recipient's DONE receipt (always
 * through the server) before OFFER_END.
 *
 * Receiving: the callbacks run inside the library's dispatch, so they only decide and
 * write files; answers (requests) wait in the offer's state until cli_offers_pending.
 * Each taken file is written to PATH.part below the chosen folder (bundle_open_part: no
 * link is followed), hashed from its first byte (a .part from an earlier attempt is read
 * back), checked against the SHA-256 of its GET_BEGIN, and renamed into place, under a
 * numbered name ("a (1).txt") when the name is taken. Bytes before what the .part holds
 * are skipped: a new offer of the same files resumes.
 */
#include "offer.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "direct.h"
#include "files/rdf_proto.h"
#include "progress.h"
#include "rd_buf.h"
#include "rd_chat.h"
#include "rd_display.h"
#include "rd_err.h"
#include "rd_frame.h"
#include "rd_hash.h"
#include "rd_names.h"
#include "rd_net.h"
#include "rd_peer.h"
#include "sink.h"

#define STREAM_PIECE (128u * 1024u) /* file bytes per GET_CHUNK in the relayed stream */
#define READ_BLOCK (1u << 20)       /* reading back a .part to hash it */
#define RECEIPT_WAIT_MS 120000      /* how long the sender waits for receipts */
#define POLL_MS 200
#define RESUME_WAIT_MS 20000 /* a broken direct link: how long the sender waits for RESUME */

static const char *answer_word(uint8_t a)
{
	switch (a) {
	case RD_ANSWER_ACCEPT:
		return "accepts";
	case RD_ANSWER_REJECT:
		return "rejects";
	case RD_ANSWER_HOLD:
		return "asks for more time";
	case RD_ANSWER_GONE:
		return "left";
	case RD_ANSWER_EXPIRED:
		return "did not answer in time";
	default:
		return "answers";
	}
}

static void reason_suffix(struct rd_str r, char *out, size_t cap)
{
	char esc[RD_REASON_MAX * 4 + 8];

	if (r.n == 0) {
		out[0] = '\0';
		return;
	}
	rd_display_escape(r.p, r.n, esc, sizeof(esc));
	snprintf(out, cap, ": %s", esc);
}

/* ==== sending ============================================================================ */

struct tx_rcpt {
	char nick[RD_NICK_BUF];
	uint8_t answer; /* last answer (ACCEPT, REJECT, GONE, EXPIRED) */
	int accepted, receipt;
	struct rdf_file_accept acc; /* what it takes (decoded when it accepted) */
	struct rdf_file_done done;  /* its receipt */
};

struct tx {
	uint32_t id;
	size_t nfiles;
	struct tx_rcpt *r;
	size_t nr;
	int result; /* OFFER_RESULT came */
	uint8_t outcome;
	int ended;    /* cancelled, peer gone... while streaming */
	int told_end; /* ...and the user was told why */
	struct cli_session *s;
	struct direct *d; /* the direct link's state (offers to one user), or NULL */
	int direct;       /* the bytes go over it */
	int resume;       /* a RESUME came (the recipient's acc is its new account) */
	int switched;     /* the direct link broke: the rest went through the server */
};

static struct tx_rcpt *tx_rcpt(struct tx *t, const char *nick)
{
	struct tx_rcpt *n;

	for (size_t i = 0; i < t->nr; i++)
		if (strcmp(t->r[i].nick, nick) == 0)
			return &t->r[i];
	if ((n = realloc(t->r, (t->nr + 1) * sizeof(*n))) == NULL)
		return NULL;
	t->r = n;
	n = &t->r[t->nr++];
	memset(n, 0, sizeof(*n));
	snprintf(n->nick, sizeof(n->nick), "%s", nick);
	return n;
}

static void tx_on_offer(struct cli_session *s, const struct rd_msg *m)
{
	struct tx *t = s->offer_user;
	char why[RD_REASON_MAX * 4 + 16];
	struct tx_rcpt *r;

	if (m->type == RD_MSG_P2P_INTRO || m->type == RD_MSG_P2P_FAILED) {
		direct_on_msg(t->d, m);
		return;
	}
	if (m->type == RD_MSG_OFFER_ANSWERED &&
	    (t->id == 0 || m->u.offer_answered.offer_id == t->id)) {
		const struct rd_msg_offer_answered *a = &m->u.offer_answered;

		if ((r = tx_rcpt(t, a->peer)) == NULL)
			return;
		reason_suffix(a->reason, why, sizeof(why));
		if (a->answer == RD_ANSWER_RESUME) {
			/* what it still needs, after a direct link broke: the same list as its
			 * accept, with the offsets it now holds and the files it has done off */
			struct rdf_file_accept acc = { 0 };

			if (!r->accepted ||
			    rdf_file_accept_decode(a->data.p, a->data.n, &acc) != 0 ||
			    acc.count != t->nfiles) {
				rdf_file_accept_clear(&acc);
				return;
			}
			rdf_file_accept_clear(&r->acc);
			r->acc = acc;
			t->resume = 1;
			return;
		}
		if (a->answer == RD_ANSWER_DONE) {
			rdf_file_done_clear(&r->done);
			if (rdf_file_done_decode(a->data.p, a->data.n, &r->done) != 0 ||
			    r->done.count != t->nfiles)
				rdf_file_done_clear(
					&r->done); /* an unreadable receipt: no file saved */
			r->receipt = 1;
			return;
		}
		r->answer = a->answer;
		if (a->answer == RD_ANSWER_ACCEPT) {
			unsigned taken = 0;

			rdf_file_accept_clear(&r->acc);
			if (rdf_file_accept_decode(a->data.p, a->data.n, &r->acc) != 0 ||
			    r->acc.count != t->nfiles) {
				rdf_file_accept_clear(&r->acc);
				fprintf(stderr,
					"roomdrop: %s accepted with an answer that does not list the "
					"files; nothing will be sent to it\n",
					a->peer);
				return;
			}
			r->accepted = 1;
			for (uint32_t i = 0; i < r->acc.count; i++)
				taken += r->acc.items[i].take != 0;
			printf("%s accepts %u of %zu file%s%s\n", a->peer, taken, t->nfiles,
			       t->nfiles == 1 ? "" : "s", why);
		} else {
			/* the server's own reason for EXPIRED says what answer_word says */
			printf("%s %s%s\n", a->peer, answer_word(a->answer),
			       a->answer == RD_ANSWER_EXPIRED ? "" : why);
		}
		fflush(stdout);
	} else if (m->type == RD_MSG_OFFER_RESULT && m->u.offer_result.offer_id == t->id) {
		t->outcome = m->u.offer_result.outcome;
		if (t->result && t->outcome != RD_OFFER_COMPLETED) {
			t->ended = 1; /* cancelled or everyone gone while we stream */
			/* the server's reason (a relay between servers that broke...) */
			reason_suffix(m->u.offer_result.reason, why, sizeof(why));
			if (why[0] && !t->told_end)
				fprintf(stderr, "roomdrop: offer %" PRIu32 " ended%s\n", t->id,
					why);
			t->told_end = 1;
		}
		t->result = 1;
	}
}

/* The smallest offset any accepting recipient holds of file i, or UINT64_MAX if none
 * takes it. */
static uint64_t tx_from(const struct tx *t, size_t i)
{
	uint64_t from = UINT64_MAX;

	for (size_t k = 0; k < t->nr; k++) {
		const struct tx_rcpt *r = &t->r[k];

		if (r->accepted && r->answer == RD_ANSWER_ACCEPT && r->acc.items[i].take &&
		    r->acc.items[i].offset < from)
			from = r->acc.items[i].offset;
	}
	return from;
}

struct stream {
	struct rd_conn *c;
	uint32_t id;
	uint64_t off; /* bytes of the stream sent so far (direct: file bytes) */
	struct rd_buf b;
	struct cli_session *s;
	struct direct *d; /* set: the frames go over this direct link, one by one */
	const int *ended; /* the offer ended meanwhile (its tx's): stop */
};

/* Send the buffered stream in OFFER_DATA pieces; all of it when flush, else whole pieces
 * only. */
static int stream_push(struct stream *st, int flush)
{
	size_t done = 0;
	int rc = 0;

	while (rc == 0 && (st->b.len - done >= RD_CHUNK_SIZE || (flush && st->b.len > done))) {
		size_t n = st->b.len - done < RD_CHUNK_SIZE ? st->b.len - done : RD_CHUNK_SIZE;

		rc = rd_conn_offer_data(st->c, st->id, st->off, st->b.data + done, n);
		done += n;
		st->off += n;
	}
	if (done > 0) {
		memmove(st->b.data, st->b.data + done, st->b.len - done);
		st->b.len -= done;
	}
	return rc;
}

static int stream_msg(struct stream *st, const struct rd_msg *m)
{
	int rc;

	if (st->d != NULL) {
		if (m->type == RDF_MSG_GET_CHUNK)
			st->off += rdf_body(m)->chunk.data.n;
		return direct_send_msg(st->s, st->d, m);
	}
	rc = rd_msg_frame(&st->b, m, 0, 0);

	return rc != 0 ? rc : stream_push(st, 0);
}

static const char *leaf_of(const char *path)
{
	const char *sl = strrchr(path, '/');

	return sl != NULL ? sl + 1 : path;
}

/* XFER_CANCEL for file i: it cannot be sent (or not to its end). */
static int stream_cancel(struct stream *st, const struct bundle_file *f, size_t i, const char *why)
{
	struct rd_msg m;

	fprintf(stderr, "roomdrop: offer: cannot send %s: %s\n", f->path, why);
	rd_msg_init(&m, RDF_MSG_XFER_CANCEL);
	rdf_body(&m)->xfer_cancel.xfer_id = (uint32_t)i;
	rdf_body(&m)->xfer_cancel.code = RDF_E_STORAGE;
	rdf_body(&m)->xfer_cancel.reason = rd_str_c(why);
	return stream_msg(st, &m);
}

/* One file into the stream, read once: GET_BEGIN (its SHA-256 left zero: it comes at the
 * end), GET_CHUNK from `from` on, PUT_DONE with the SHA-256 of the whole file (the bytes
 * before `from`, which the recipients hold, are hashed here too), GET_END; or
 * XFER_CANCEL if the file cannot be read as it was offered. */
static int stream_file(struct stream *st, struct bundle *b, size_t i, uint64_t from, int quiet,
		       uint8_t *buf)
{
	struct bundle_file *f = &b->files[i];
	struct rd_sha256 *h = NULL;
	struct progress pg;
	struct stat sb;
	struct rd_msg m;
	int rc, fd;

	if (from > f->size)
		return stream_cancel(st, f, i, "a recipient holds more than the file");
	if ((fd = open(f->local, O_RDONLY | O_CLOEXEC)) < 0)
		return stream_cancel(st, f, i, strerror(errno));
	if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_size != f->size) {
		close(fd);
		return stream_cancel(st, f, i, "it changed since it was offered");
	}
	if ((rc = rd_sha256_new(&h)) != 0) {
		close(fd);
		return rc;
	}
	rd_msg_init(&m, RDF_MSG_GET_BEGIN);
	rdf_body(&m)->get_begin.xfer_id = (uint32_t)i;
	snprintf(rdf_body(&m)->get_begin.name, sizeof(rdf_body(&m)->get_begin.name), "%s",
		 leaf_of(f->path));
	rdf_body(&m)->get_begin.size = f->size;
	rdf_body(&m)->get_begin.offset = from;
	rdf_body(&m)->get_begin.mtime_ms = f->mtime_ms;
	if ((rc = stream_msg(st, &m)) != 0)
		goto out;
	if (from > 0 && !quiet) {
		char hf[32];

		rd_format_size(from, hf, sizeof(hf));
		fprintf(stderr,
			"roomdrop: offer: %s: resuming at %s (the recipient holds that much)\n",
			f->path, hf);
	}
	progress_start(&pg, "offer", f->path, f->size, from, quiet);
	for (uint64_t off = 0; off < f->size && rc == 0;) {
		size_t n = f->size - off < STREAM_PIECE ? (size_t)(f->size - off) : STREAM_PIECE;

		if (rd_pread_full(fd, buf, n, off) != 0) {
			progress_end(&pg);
			rc = stream_cancel(st, f, i, "it changed or could not be read while sent");
			goto out;
		}
		if ((rc = rd_sha256_update(h, buf, n)) != 0)
			break;
		if (off + n > from) { /* what the recipients do not hold */
			size_t skip = off < from ? (size_t)(from - off) : 0;

			rd_msg_init(&m, RDF_MSG_GET_CHUNK);
			rdf_body(&m)->chunk.xfer_id = (uint32_t)i;
			rdf_body(&m)->chunk.offset = off + skip;
			rdf_body(&m)->chunk.data = (struct rd_bytes){ buf + skip, n - skip };
			rc = stream_msg(st, &m);
			progress_update(&pg, off + n);
		}
		off += n;
		if (cli_stop)
			rc = RD_ERR_CANCELLED;
		if (rc == 0 && st->ended && *st->ended) {
			progress_end(&pg);
			goto out; /* (the caller says why) */
		}
	}
	progress_end(&pg);
	if (rc == 0) {
		rd_msg_init(&m, RDF_MSG_PUT_DONE);
		rdf_body(&m)->put_done.xfer_id = (uint32_t)i;
		snprintf(rdf_body(&m)->put_done.name, sizeof(rdf_body(&m)->put_done.name), "%s",
			 leaf_of(f->path));
		rdf_body(&m)->put_done.size = f->size;
		if ((rc = rd_sha256_final(h, rdf_body(&m)->put_done.sha256)) == 0) {
			memcpy(f->sha256, rdf_body(&m)->put_done.sha256, RD_SHA256_SIZE);
			rc = stream_msg(st, &m);
		}
	}
	if (rc == 0) {
		rd_msg_init(&m, RDF_MSG_GET_END);
		rdf_body(&m)->xfer.xfer_id = (uint32_t)i;
		rc = stream_msg(st, &m);
	}
out:
	rd_sha256_free(h);
	close(fd);
	return rc;
}

static int tx_receipts_in(const struct tx *t)
{
	for (size_t k = 0; k < t->nr; k++)
		if (t->r[k].accepted && t->r[k].answer == RD_ANSWER_ACCEPT && !t->r[k].receipt)
			return 0;
	return 1;
}

/* Through the server: the offer's end (it failed, or everyone who took something is gone)
 * also ends the wait for receipts: none can come. */
static int tx_receipts_or_end(const struct tx *t)
{
	return tx_receipts_in(t) || t->ended;
}

/* While the direct link is the path: a RESUME also ends the wait (the link broke on the
 * recipient's side), as does the offer's end. */
static int tx_receipts_or_resume(const struct tx *t)
{
	return tx_receipts_in(t) || (t->direct && t->resume) || t->ended;
}

static int tx_resume_or_end(const struct tx *t)
{
	return t->resume || t->ended || tx_receipts_in(t);
}

/* One line per accepting recipient; CLI_OK when each saved every file it took. */
static int tx_report(const struct tx *t, const struct bundle *b)
{
	int code = CLI_OK;

	for (size_t k = 0; k < t->nr; k++) {
		const struct tx_rcpt *r = &t->r[k];
		unsigned taken = 0, saved = 0, failed = 0;

		if (!r->accepted)
			continue;
		for (uint32_t i = 0; i < r->acc.count; i++) {
			taken += r->acc.items[i].take != 0;
			if (r->receipt && r->done.count == r->acc.count) {
				saved += r->done.items[i].status == RDF_DONE_SAVED;
				failed += r->done.items[i].status == RDF_DONE_FAILED;
			}
		}
		if (!r->receipt || r->answer != RD_ANSWER_ACCEPT) {
			printf("%s: no receipt (%s): its files are not known to have arrived\n",
			       r->nick, r->answer == RD_ANSWER_GONE ? "it left" : "none came");
			code = CLI_EVERIFY;
			continue;
		}
		printf("%s: %u of %u file%s saved and verified", r->nick, saved, taken,
		       taken == 1 ? "" : "s");
		if (failed > 0) {
			printf(", %u failed:", failed);
			for (uint32_t i = 0; i < r->done.count; i++)
				if (r->done.items[i].status == RDF_DONE_FAILED)
					printf(" %s (%s)", b->files[i].path,
					       rd_wire_strerror(r->done.items[i].code));
		}
		printf("\n");
		if (saved != taken)
			code = CLI_EVERIFY;
	}
	fflush(stdout);
	return code;
}

static int wait_until(struct cli_session *s, struct tx *t, int (*done)(const struct tx *),
		      uint64_t deadline_ms)
{
	int rc = 0;

	while (!done(t) && rc == 0) {
		if (cli_stop)
			return RD_ERR_CANCELLED;
		if (deadline_ms && rd_now_mono_ms() >= deadline_ms)
			return RD_ERR_TIMEOUT;
		rc = rd_conn_poll(s->conn, POLL_MS);
	}
	return rc;
}

static int tx_has_result(const struct tx *t)
{
	return t->result;
}

/* Every file someone takes, from the least offset any of them holds, then a flush. */
static int stream_all(struct stream *st, struct tx *t, struct bundle *b, int quiet, uint8_t *buf)
{
	int rc = 0;

	for (size_t i = 0; i < b->n && rc == 0 && !t->ended; i++) {
		uint64_t from = tx_from(t, i);

		if (from != UINT64_MAX)
			rc = stream_file(st, b, i, from, quiet, buf);
	}
	if (rc == 0 && !t->ended)
		rc = st->d != NULL ? direct_flush(st->s, st->d) : stream_push(st, 1);
	return rc;
}

/* The direct link to `to` broke mid-transfer (why: how, as this side saw it). With --p2p
 * auto, wait for the recipient's RESUME (what it holds now) and send the rest through the
 * server, from there: 0 when it went (the receipts come next), else an error. With --p2p
 * only, or no RESUME in time, end the offer as failed: CLI_EVERIFY (via *code) and the
 * .part files stay for a new offer to resume. */
static int tx_relay_rest(struct cli_session *s, struct tx *t, struct stream *st, struct bundle *b,
			 uint8_t *buf, const char *to, const char *why, int *code)
{
	char held[32];
	uint8_t outcome = 0;
	uint16_t werr = 0;
	int rc;

	rd_format_size(st->off, held, sizeof(held));
	/* closed here too, so that a recipient still reading it sees it end */
	direct_free(t->d);
	t->d = NULL;
	st->d = NULL;
	if (s->o->p2p == CLI_P2P_ONLY) {
		fprintf(stderr,
			"roomdrop: offer %" PRIu32 ": the direct link to %s broke after %s (%s); "
			"the rest is not sent through the server (--p2p only): a new offer resumes "
			"it\n",
			t->id, to, held, why);
		(void)rd_conn_offer_end(s->conn, t->id, 1, &outcome, &werr);
		*code = CLI_EVERIFY;
		return 0;
	}
	if (!s->o->quiet)
		fprintf(stderr,
			"roomdrop: offer %" PRIu32 ": the direct link to %s broke after %s (%s); "
			"waiting for it to say what it holds\n",
			t->id, to, held, why);
	rc = wait_until(s, t, tx_resume_or_end, rd_now_mono_ms() + RESUME_WAIT_MS);
	if (rc != 0 && rc != RD_ERR_TIMEOUT)
		return rc;
	if (t->ended || (!t->resume && tx_receipts_in(t)))
		return 0; /* gone meanwhile, or it had everything after all */
	if (!t->resume) {
		fprintf(stderr,
			"roomdrop: offer %" PRIu32
			": %s did not say what it holds after the direct "
			"link broke; what the link did not carry fails (a new offer resumes it)\n",
			t->id, to);
		(void)rd_conn_offer_end(s->conn, t->id, 1, &outcome, &werr);
		*code = CLI_EVERIFY;
		return 0;
	}
	t->resume = 0;
	t->direct = 0;
	t->switched = 1;
	st->off = 0;
	st->b.len = 0;
	if (!s->o->quiet)
		fprintf(stderr,
			"roomdrop: offer %" PRIu32 ": sending the rest through the server\n",
			t->id);
	return stream_all(st, t, b, s->o->quiet, buf);
}

/* Which path the bytes took, and that the receipts are awaited. */
static void tx_tell_path(struct cli_session *s, const struct tx *t, uint64_t sent, const char *to,
			 const char *nodirect)
{
	char hs[32];

	rd_format_size(sent, hs, sizeof(hs));
	if (t->direct) {
		printf("sent directly to %s\n", to);
	} else if (t->switched) {
		printf("sent to %s directly until the link broke, the rest through the server\n",
		       to);
	} else {
		char *e = cli_escape(nodirect, strlen(nodirect));

		printf("sent through the server (no direct link: %s)\n", e);
		free(e);
	}
	fflush(stdout);
	if (!s->o->quiet)
		fprintf(stderr, "roomdrop: offer %" PRIu32 ": %s sent; waiting for the receipts\n",
			t->id, hs);
}

/* After the accept: the direct link to `to`, or why there is none (nodirect). 0 (t->direct
 * says which path), or an error that ends the command (cancelled, server gone). */
static int tx_path(struct cli_session *s, struct tx *t, const char *to, char *nodirect, size_t cap)
{
	int rc;

	if (to == NULL) {
		snprintf(nodirect, cap, "an offer to a room goes through the server");
		return 0;
	}
	if (s->o->p2p == CLI_P2P_NEVER) {
		snprintf(nodirect, cap, "direct links off (--p2p never)");
		rc = direct_refuse(s, t->id, "direct links off");
		return rc == RD_ERR_REMOTE ? 0 : rc;
	}
	if (t->d == NULL)
		return RD_ERR_NOMEM;
	rc = direct_start(s, t->d, 1, nodirect, cap);
	t->direct = rc == 0;
	return rc == RD_ERR_CANCELLED || rc == RD_ERR_CLOSED ? rc : 0;
}

int cli_offer(struct cli_session *s, const char *to, int argc, char **argv)
{
	struct bundle b = { 0 };
	struct tx t = { 0 };
	struct stream st = { 0 };
	struct rd_buf desc;
	char why[600], summary[300], nodirect[RD_PEER_REASON_BUF];
	struct rdf_file_offer o = { 0 };
	uint32_t expires = 0;
	uint16_t werr = 0;
	uint8_t outcome = 0;
	uint8_t *buf = NULL;
	void (*prev_on)(struct cli_session *, const struct rd_msg *) = NULL;
	void *prev_user = NULL;
	int rc, code = CLI_OK, told = 0, waited = 0;

	rd_buf_init(&desc, RD_DESCRIPTOR_MAX);
	for (int i = 0; i < argc; i++) {
		if ((rc = bundle_add(&b, argv[i], why, sizeof(why))) != 0) {
			char *e = cli_escape(why, strlen(why));

			fprintf(stderr, "roomdrop: offer: %s\n", e);
			free(e);
			code = rc == RD_ERR_NOT_FOUND ? CLI_ENOTFOUND : CLI_EUSAGE;
			goto out;
		}
	}
	if (b.n == 0) {
		fprintf(stderr, "roomdrop: offer: nothing to offer (the folders hold no files)\n");
		code = CLI_EUSAGE;
		goto out;
	}
	if (b.skipped > 0 && !s->o->quiet)
		fprintf(stderr, "roomdrop: offer: left out %u symbolic link%s or special file%s\n",
			b.skipped, b.skipped == 1 ? "" : "s", b.skipped == 1 ? "" : "s");
	rc = bundle_descriptor(&b, &desc);
	if (rc == RD_ERR_TOO_BIG) {
		fprintf(stderr,
			"roomdrop: offer: the list of %zu files takes more than %u bytes; offer "
			"them in several parts\n",
			b.n, RD_DESCRIPTOR_MAX);
		code = CLI_EUSAGE;
		goto out;
	}
	if (rc != 0) {
		code = cli_report(s, "offer", rc, 0);
		goto out;
	}
	t.nfiles = b.n;
	t.s = s;
	/* the shell's own offer handling steps aside while this offer runs */
	prev_on = s->on_offer;
	prev_user = s->offer_user;
	s->on_offer = tx_on_offer;
	s->offer_user = &t;
	rc = rd_conn_offer(s->conn, to, RDF_OFFER_APP_FILES, 0, desc.data, desc.len, &t.id,
			   &expires, &werr);
	if (rc != 0) {
		code = cli_report(s, "offer", rc, werr);
		goto out;
	}
	if (to != NULL) /* from now on the other side may say it makes no direct link */
		t.d = direct_new(t.id);
	if (rdf_file_offer_decode(desc.data, desc.len, &o, why, sizeof(why)) == 0)
		bundle_summary(&o, summary, sizeof(summary));
	else
		snprintf(summary, sizeof(summary), "%zu files", b.n);
	rdf_file_offer_clear(&o);
	printf("offered %s to %s (offer %" PRIu32 "); waiting for %s (up to %" PRIu32 " s)\n",
	       summary, to != NULL ? to : "everyone in the room", t.id,
	       to != NULL ? "the answer" : "the answers", (expires + 999) / 1000);
	fflush(stdout);

	if ((rc = wait_until(s, &t, tx_has_result, 0)) != 0) {
		if (rc == RD_ERR_CANCELLED)
			(void)rd_conn_offer_cancel(s->conn, t.id, &werr);
		code = cli_report(s, "offer", rc, 0);
		goto out;
	}
	if (t.outcome != RD_OFFER_ACCEPTED) {
		printf("offer %" PRIu32 ": %s\n", t.id,
		       t.outcome == RD_OFFER_EXPIRED   ? "expired without an accept" :
		       t.outcome == RD_OFFER_CANCELLED ? "cancelled" :
							 "rejected");
		code = CLI_EREJECTED;
		goto out;
	}

	if ((rc = tx_path(s, &t, to, nodirect, sizeof(nodirect))) != 0) {
		if (rc == RD_ERR_CANCELLED)
			(void)rd_conn_offer_cancel(s->conn, t.id, &werr);
		code = cli_report(s, "offer", rc, 0);
		goto out;
	}
	if (!t.direct && s->o->p2p == CLI_P2P_ONLY) {
		char *e = cli_escape(nodirect, strlen(nodirect));

		fprintf(stderr,
			"roomdrop: offer %" PRIu32 ": no direct link to %s (%s); nothing sent "
			"(--p2p only)\n",
			t.id, to != NULL ? to : "the room", e);
		free(e);
		(void)rd_conn_offer_end(s->conn, t.id, 1, &outcome, &werr);
		code = CLI_ENODIRECT;
		goto out;
	}

	/* stream what anyone took */
	if ((buf = malloc(STREAM_PIECE)) == NULL) {
		code = cli_report(s, "offer", RD_ERR_NOMEM, 0);
		goto out;
	}
	st.c = s->conn;
	st.id = t.id;
	st.s = s;
	st.d = t.direct ? t.d : NULL;
	st.ended = &t.ended;
	rd_buf_init(&st.b, 4 * RD_CHUNK_SIZE);
	rc = stream_all(&st, &t, &b, s->o->quiet, buf);
	if (rc == 0 && t.direct && !t.ended) {
		/* all of it is in the link; the recipient may still find it broken (RESUME) */
		tx_tell_path(s, &t, st.off, to, nodirect);
		told = 1;
		rc = wait_until(s, &t, tx_receipts_or_resume, rd_now_mono_ms() + RECEIPT_WAIT_MS);
		if (rc == 0 && t.resume && !tx_receipts_in(&t)) {
			told = 0;
			rc = tx_relay_rest(s, &t, &st, &b, buf, to, "the recipient lost it", &code);
		} else if (rc == RD_ERR_TIMEOUT) {
			rc = 0; /* no receipt: the report says so */
			waited = 1;
		}
	} else if (rc != 0 && direct_broken(st.d)) {
		rc = tx_relay_rest(s, &t, &st, &b, buf, to, rd_strerror(rc), &code);
	}
	rd_buf_free(&st.b);
	if (code != CLI_OK)
		goto out;
	if (rc != 0 || t.ended) {
		if (rc == RD_ERR_CANCELLED)
			(void)rd_conn_offer_cancel(s->conn, t.id, &werr);
		code = t.ended && rc == 0 ? CLI_EVERIFY : cli_report(s, "offer", rc, 0);
		if (t.ended && rc == 0)
			fprintf(stderr, "roomdrop: offer %" PRIu32 ": ended before it was sent%s\n",
				t.id, t.told_end ? "" : ": the recipients are gone");
		goto out;
	}
	if (!told)
		tx_tell_path(s, &t, st.off, to, nodirect);
	rc = waited ? 0 : wait_until(s, &t, tx_receipts_or_end, rd_now_mono_ms() + RECEIPT_WAIT_MS);
	if (rc != 0 && rc != RD_ERR_TIMEOUT) {
		code = cli_report(s, "offer", rc, 0);
		goto out;
	}
	rc = rd_conn_offer_end(s->conn, t.id, 0, &outcome, &werr);
	if (rc != 0 && !(rc == RD_ERR_REMOTE && werr == RD_E_NO_SUCH_OFFER)) {
		code = cli_report(s, "offer", rc, werr);
		goto out;
	}
	code = tx_report(&t, &b);
out:
	if (s->on_offer == tx_on_offer) {
		s->on_offer = prev_on;
		s->offer_user = prev_user;
	}
	for (size_t k = 0; k < t.nr; k++) {
		rdf_file_accept_clear(&t.r[k].acc);
		rdf_file_done_clear(&t.r[k].done);
	}
	free(t.r);
	direct_free(t.d);
	free(buf);
	rd_buf_free(&desc);
	bundle_free(&b);
	return code;
}

/* ==== receiving ========================================================================== */

struct rx_file {
	int take;
	int parent_fd, part_fd;
	char leaf[RD_NAME_BUF];
	uint64_t have; /* bytes the .part held when the offer came */
	uint64_t pos;  /* bytes of the file received or skipped so far */
	uint64_t size, mtime_ms;
	uint8_t sha[RD_SHA256_SIZE]; /* from the sender's PUT_DONE */
	int has_sha;
	struct rd_sha256 *h;
	struct sink *sk; /* writes and hashes what comes after `have`, on its own thread */
	int begun, ended;
	int some_direct; /* some of its bytes came over a direct link that later broke */
	uint8_t status;
	uint16_t code;
};

struct rx_offer {
	struct rx_offer *next;
	uint32_t id;
	char from[RD_NICK_BUF];
	struct rdf_file_offer desc;
	struct rx_file *f;
	struct rd_frame_reader *rd;
	int answer; /* to send: RD_ANSWER_ACCEPT / REJECT, 0 = none (sent or not ours) */
	char reason[RD_REASON_MAX + 1]; /* with a REJECT */
	int accepted, receipt_due, receipt_sent, broken;
	/* the shell's question (CLI_OFFERS_ASK): asking, then with picks[] file by file */
	int asking;
	uint8_t *picks;
	uint32_t next_pick;
	int to_user;      /* offered to this user alone: a direct link may carry it */
	struct direct *d; /* while the direct attempt or link runs */
	int direct;       /* the bytes come over the direct link */
	int busy;         /* cli_offers_pending works on it: OFFER_RESULT only marks it */
	int finished;     /* OFFER_RESULT came while busy: free it afterwards */
};

struct rx {
	struct cli_offer_rules rules;
	int dfd;
	struct rx_offer *list;
};

static struct rx_offer *rx_find(struct rx *x, uint32_t id)
{
	for (struct rx_offer *o = x->list; o != NULL; o = o->next)
		if (o->id == id)
			return o;
	return NULL;
}

/* Stop f's writer: 0 when everything it was given is written and hashed. */
static int rx_sink_stop(struct rx_file *f)
{
	int rc = 0;

	if (f->sk != NULL) {
		rc = sink_finish(f->sk);
		f->sk = NULL;
	}
	return rc;
}

static void rx_close_file(struct rx_file *f)
{
	(void)rx_sink_stop(f);
	if (f->part_fd >= 0)
		close(f->part_fd);
	if (f->parent_fd >= 0)
		close(f->parent_fd);
	f->part_fd = f->parent_fd = -1;
	rd_sha256_free(f->h);
	f->h = NULL;
}

static void rx_free(struct rx_offer *o)
{
	for (uint32_t i = 0; o->f != NULL && i < o->desc.count; i++)
		rx_close_file(&o->f[i]);
	free(o->f);
	free(o->picks);
	direct_free(o->d);
	rdf_file_offer_clear(&o->desc);
	rd_frame_reader_free(o->rd);
	free(o);
}

static int rx_wants(const struct cli_offer_rules *r, const char *path)
{
	if (r->take == NULL)
		return 1;
	return fnmatch(r->take, path, 0) == 0 || fnmatch(r->take, leaf_of(path), 0) == 0;
}

static void rx_fail(struct rx_offer *o, uint32_t i, uint16_t code, const char *what)
{
	struct rx_file *f = &o->f[i];

	if (f->ended)
		return;
	f->ended = 1;
	f->status = RDF_DONE_FAILED;
	f->code = code;
	fprintf(stderr, "roomdrop: offer %" PRIu32 " from %s: %s: %s\n", o->id, o->from,
		o->desc.items[i].path, what);
	rx_close_file(f);
}

/* Every taken file ended: the receipt is due. */
static void rx_check_done(struct rx_offer *o)
{
	for (uint32_t i = 0; i < o->desc.count; i++)
		if (o->f[i].take && !o->f[i].ended)
			return;
	o->receipt_due = 1;
}

/* Hash what the .part already holds, so the file's hash can go on from there. */
static int rx_hash_held(struct rx_file *f)
{
	uint8_t *buf = malloc(READ_BLOCK);
	int rc = buf != NULL ? 0 : RD_ERR_NOMEM;

	for (uint64_t off = 0; rc == 0 && off < f->have;) {
		size_t n = f->have - off < READ_BLOCK ? (size_t)(f->have - off) : READ_BLOCK;

		if ((rc = rd_pread_full(f->part_fd, buf, n, off)) == 0)
			rc = rd_sha256_update(f->h, buf, n);
		off += n;
	}
	free(buf);
	return rc;
}

static void rx_begin(struct rx_offer *o, const struct rdf_msg_get_begin *g)
{
	struct rx_file *f;

	if (g->xfer_id >= o->desc.count) {
		o->broken = 1;
		return;
	}
	f = &o->f[g->xfer_id];
	if (!f->take || f->ended)
		return;
	if (strcmp(g->name, leaf_of(o->desc.items[g->xfer_id].path)) != 0 ||
	    g->size != o->desc.items[g->xfer_id].size || g->offset > f->have) {
		rx_fail(o, g->xfer_id, RDF_E_SIZE_MISMATCH,
			"the sender's announcement does not match its offer");
		return;
	}
	f->size = g->size;
	f->mtime_ms = g->mtime_ms;
	f->has_sha = 0; /* the SHA-256 comes in PUT_DONE, after the bytes */
	f->pos = g->offset;
	f->begun = 1;
	if (rd_sha256_new(&f->h) != 0 || rx_hash_held(f) != 0)
		rx_fail(o, g->xfer_id, RDF_E_STORAGE, "cannot read back its .part file");
}

static void rx_chunk(struct rx_offer *o, const struct rdf_msg_chunk *ch)
{
	struct rx_file *f;
	const uint8_t *p = ch->data.p;
	size_t n = ch->data.n;
	int rc;

	if (ch->xfer_id >= o->desc.count) {
		o->broken = 1;
		return;
	}
	f = &o->f[ch->xfer_id];
	if (!f->take || f->ended)
		return;
	if (!f->begun || ch->offset != f->pos || n > f->size - f->pos) {
		rx_fail(o, ch->xfer_id, RDF_E_BAD_OFFSET, "its bytes came out of order");
		return;
	}
	f->pos += n;
	f->some_direct |= o->direct;
	if (f->pos <= f->have) /* already held */
		return;
	if (f->pos - n < f->have) { /* partly held */
		size_t skip = (size_t)(f->have - (f->pos - n));

		p += skip;
		n -= skip;
	}
	/* the writer thread hashes and writes from here on, while this one receives */
	if (f->sk == NULL && sink_start(&f->sk, f->part_fd, SINK_FILE, f->pos - n, f->h) != 0) {
		rx_fail(o, ch->xfer_id, RDF_E_STORAGE, "cannot start writing it");
		return;
	}
	if ((rc = sink_push(f->sk, p, n)) != 0)
		rx_fail(o, ch->xfer_id,
			rc == RD_ERR_SYSTEM && errno == ENOSPC ? RDF_E_NO_SPACE : RDF_E_STORAGE,
			rc == RD_ERR_SYSTEM ? strerror(errno) : "cannot hash it");
}

/* PUT_DONE(xfer_id, name, size, sha256) after a file's chunks: what to verify against. */
static void rx_trailer(struct rx_offer *o, const struct rdf_msg_put_done *d)
{
	struct rx_file *f;

	if (d->xfer_id >= o->desc.count) {
		o->broken = 1;
		return;
	}
	f = &o->f[d->xfer_id];
	if (!f->take || f->ended)
		return;
	if (!f->begun || d->size != f->size || strcmp(d->name, f->leaf) != 0) {
		rx_fail(o, d->xfer_id, RDF_E_SIZE_MISMATCH,
			"the sender's account of the file does not match its offer");
		return;
	}
	memcpy(f->sha, d->sha256, RD_SHA256_SIZE);
	f->has_sha = 1;
}

/* Verified: fsync, time, rename into place (numbered when the name is taken). */
static void rx_end(struct rx_offer *o, uint32_t i)
{
	struct rx_file *f;
	char part[RD_NAME_BUF + 8], name[RD_NAME_BUF], hex[2 * RD_SHA256_SIZE + 1];
	uint8_t got[RD_SHA256_SIZE];
	struct timespec ts[2];
	unsigned k;
	int rc;

	if (i >= o->desc.count) {
		o->broken = 1;
		return;
	}
	f = &o->f[i];
	if (!f->take || f->ended)
		return;
	if ((rc = rx_sink_stop(f)) != 0) {
		rx_fail(o, i,
			rc == RD_ERR_SYSTEM && errno == ENOSPC ? RDF_E_NO_SPACE : RDF_E_STORAGE,
			rc == RD_ERR_SYSTEM ? strerror(errno) : "cannot hash it");
		return;
	}
	if (!f->begun || !f->has_sha || f->pos != f->size || rd_sha256_final(f->h, got) != 0 ||
	    !rd_ct_equal(got, f->sha, RD_SHA256_SIZE)) {
		snprintf(part, sizeof(part), "%s.part", f->leaf);
		/* a .part that did not verify is wrong from its first byte: start over next time */
		(void)unlinkat(f->parent_fd, part, 0);
		rx_fail(o, i, f->pos != f->size ? RDF_E_SIZE_MISMATCH : RDF_E_HASH_MISMATCH,
			"the data received is not the file announced; nothing kept");
		return;
	}
	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_sec = (time_t)(f->mtime_ms / 1000);
	ts[1].tv_nsec = (long)(f->mtime_ms % 1000) * 1000000L;
	(void)futimens(f->part_fd, ts);
	if (fsync(f->part_fd) != 0) {
		rx_fail(o, i, RDF_E_STORAGE, strerror(errno));
		return;
	}
	snprintf(part, sizeof(part), "%s.part", f->leaf);
	snprintf(name, sizeof(name), "%s", f->leaf);
	for (k = 1; renameat2(f->parent_fd, part, f->parent_fd, name, RENAME_NOREPLACE) != 0; k++) {
		if (errno != EEXIST || k > 999 ||
		    rdf_name_numbered(f->leaf, k, name, sizeof(name)) != 0) {
			rx_fail(o, i, RDF_E_STORAGE, strerror(errno == EEXIST ? EEXIST : errno));
			return;
		}
	}
	(void)fsync(f->parent_fd);
	f->ended = 1;
	f->status = RDF_DONE_SAVED;
	rd_hex(f->sha, RD_SHA256_SIZE, hex);
	hex[8] = '\0';
	printf("received %s from %s (%s), sha256 %s\u2026 verified%s%s%s\n", o->desc.items[i].path,
	       o->from,
	       o->direct      ? "direct" :
	       f->some_direct ? "direct, then through the server" :
				"through the server",
	       hex, strcmp(name, f->leaf) != 0 ? " (saved as \"" : "",
	       strcmp(name, f->leaf) != 0 ? name : "", strcmp(name, f->leaf) != 0 ? "\")" : "");
	fflush(stdout);
	rx_close_file(f);
}

/* One frame of the offer's stream, relayed (rx_data) or direct (rx_direct). */
static void rx_frame(struct rx_offer *o, const struct rd_frame *fr)
{
	struct rd_msg m;

	if (rd_msg_decode(fr->hdr.type, fr->payload, fr->len, &m) != 0) {
		o->broken = 1;
		return;
	}
	switch (m.type) {
	case RDF_MSG_GET_BEGIN:
		rx_begin(o, &rdf_body(&m)->get_begin);
		break;
	case RDF_MSG_GET_CHUNK:
		rx_chunk(o, &rdf_body(&m)->chunk);
		break;
	case RDF_MSG_PUT_DONE: /* the file's SHA-256, once the sender has read it all */
		rx_trailer(o, &rdf_body(&m)->put_done);
		break;
	case RDF_MSG_GET_END:
		rx_end(o, rdf_body(&m)->xfer.xfer_id);
		break;
	case RDF_MSG_XFER_CANCEL:
		if (rdf_body(&m)->xfer_cancel.xfer_id < o->desc.count)
			rx_fail(o, rdf_body(&m)->xfer_cancel.xfer_id,
				rdf_body(&m)->xfer_cancel.code, "the sender could not send it");
		break;
	default:
		o->broken = 1;
		break;
	}
	rd_msg_clear(&m);
}

/* After some frames: an unreadable stream fails what is left; the receipt may be due. */
static void rx_settle(struct rx_offer *o)
{
	if (o->broken) {
		for (uint32_t i = 0; i < o->desc.count; i++)
			if (o->f[i].take)
				rx_fail(o, i, RD_E_MALFORMED, "the sender's stream is unreadable");
	}
	rx_check_done(o);
}

static void rx_data(struct rx_offer *o, const struct rd_msg_offer_data *d)
{
	struct rd_frame fr;

	if (!o->accepted || o->broken)
		return;
	if (rd_frame_reader_feed(o->rd, d->data.p, d->data.n) != 0) {
		o->broken = 1;
		return;
	}
	while (!o->broken && rd_frame_reader_next(o->rd, &fr) == 0)
		rx_frame(o, &fr);
	rx_settle(o);
}

static int rx_all_ended(const struct rx_offer *o)
{
	for (uint32_t i = 0; i < o->desc.count; i++)
		if (o->f[i].take && !o->f[i].ended)
			return 0;
	return 1;
}

/* The direct link broke before every taken file ended: what the .part files hold now is
 * where the rest starts, through the server (RESUME, sent by cli_offers_pending; the
 * relayed stream repeats GET_BEGIN, so each file is hashed again from its .part). */
static void rx_resume(struct cli_session *s, struct rx_offer *o, const char *why)
{
	uint64_t held = 0;
	char hs[32];

	for (uint32_t i = 0; i < o->desc.count; i++) {
		struct rx_file *f = &o->f[i];

		if (!f->take || f->ended)
			continue;
		if (rx_sink_stop(f) != 0) { /* what it wrote is not all there: fail it */
			rx_fail(o, i, RDF_E_STORAGE, strerror(errno));
			continue;
		}
		if (f->begun)
			f->have = f->pos;
		f->begun = 0;
		f->has_sha = 0;
		rd_sha256_free(f->h);
		f->h = NULL;
		held += f->have;
	}
	o->direct = 0;
	o->answer = RD_ANSWER_RESUME;
	if (!s->o->quiet) {
		char *e = cli_escape(why, strlen(why));

		rd_format_size(held, hs, sizeof(hs));
		fprintf(stderr,
			"roomdrop: offer %" PRIu32 ": %s; asking for the rest through the server "
			"(%s held)\n",
			o->id, e, hs);
		free(e);
	}
}

/* After our accept of an offer to us alone: try the direct link and, if it comes up,
 * receive the whole stream over it here (the server connection is served meanwhile);
 * else the bytes come relayed, through rx_data. 0, or an error that ends listen. */
static int rx_direct(struct cli_session *s, struct rx *x, struct rx_offer *o)
{
	char why[RD_PEER_REASON_BUF];
	struct rd_frame f;
	int rc;

	if (x->rules.p2p == CLI_P2P_NEVER) {
		rc = direct_refuse(s, o->id, "direct links off");
		return rc == RD_ERR_REMOTE ? 0 : rc;
	}
	if (o->d == NULL)
		return RD_ERR_NOMEM;
	rc = direct_start(s, o->d, 0, why, sizeof(why)); /* (o is busy: rx_owed's caller) */
	if (rc == 0) {
		o->direct = 1;
		while (!o->finished && !o->broken && !rx_all_ended(o)) {
			if ((rc = direct_recv(s, o->d, RECEIPT_WAIT_MS, &f)) != 0)
				break;
			rx_frame(o, &f);
		}
		if (!o->finished && !rx_all_ended(o)) {
			snprintf(why, sizeof(why), "the direct link broke: %s", rd_strerror(rc));
			if (direct_broken(o->d) && !o->broken) {
				rc = 0; /* (not the server connection: listen goes on) */
				rx_resume(s, o, why);
			} else {
				for (uint32_t i = 0; i < o->desc.count; i++)
					if (o->f[i].take)
						rx_fail(o, i, RDF_E_SIZE_MISMATCH, why);
			}
		}
		rx_settle(o);
	} else if (!s->o->quiet && !o->finished && rc != RD_ERR_CANCELLED && rc != RD_ERR_CLOSED) {
		char *e = cli_escape(why, strlen(why));

		fprintf(stderr,
			"roomdrop: offer %" PRIu32 ": no direct link (%s); the files come through "
			"the server\n",
			o->id, e);
		free(e);
	}
	direct_free(o->d);
	o->d = NULL;
	return rc == RD_ERR_CANCELLED || rc == RD_ERR_CLOSED ? rc : 0;
}

/* Accept o: take the files the rules (or, when not NULL, picks[i]) want, open their .part
 * files and queue the ACCEPT with the offsets held, or a REJECT if none can be taken. */
static void rx_accept(struct rx *x, struct rx_offer *o, const uint8_t *picks)
{
	if ((o->f = calloc(o->desc.count, sizeof(*o->f))) == NULL ||
	    rd_frame_reader_new(RD_MAX_PAYLOAD_DEFAULT, &o->rd) != 0) {
		o->answer = RD_ANSWER_REJECT;
		snprintf(o->reason, sizeof(o->reason), "out of memory");
		return;
	}
	for (uint32_t i = 0; i < o->desc.count; i++) {
		struct rx_file *f = &o->f[i];

		f->parent_fd = f->part_fd = -1;
		if (picks != NULL ? !picks[i] : !rx_wants(&x->rules, o->desc.items[i].path))
			continue;
		if (bundle_open_part(x->dfd, o->desc.items[i].path, &f->parent_fd, &f->part_fd,
				     f->leaf, sizeof(f->leaf), &f->have) != 0) {
			fprintf(stderr, "roomdrop: offer %" PRIu32 ": cannot write %s: %s\n", o->id,
				o->desc.items[i].path, strerror(errno));
			continue;
		}
		if (f->have > o->desc.items[i].size) { /* a .part of something else */
			if (ftruncate(f->part_fd, 0) != 0) {
				rx_close_file(f);
				continue;
			}
			f->have = 0;
		}
		f->take = 1;
		o->accepted = 1;
	}
	if (!o->accepted) {
		o->answer = RD_ANSWER_REJECT;
		snprintf(o->reason, sizeof(o->reason), "no file of the offer is taken");
		return;
	}
	o->answer = RD_ANSWER_ACCEPT;
	if (o->to_user && x->rules.p2p != CLI_P2P_NEVER)
		o->d = direct_new(o->id); /* gets the offerer's P2P_FAILED from now on */
}

/* A new file offer: decide by the rules; the answer goes out in cli_offers_pending. */
static void rx_offer_in(struct cli_session *s, struct rx *x, const struct rd_msg_offer_in *in)
{
	struct rx_offer *o;
	char why[180], summary[400], *from;
	int accept;

	from = cli_escape(in->from, strlen(in->from));
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		free(from);
		return;
	}
	o->id = in->offer_id;
	o->to_user = in->room[0] == '\0';
	snprintf(o->from, sizeof(o->from), "%s", in->from);
	o->next = x->list;
	x->list = o;
	if (in->app_type != RDF_OFFER_APP_FILES) {
		/* said at once, so that the offerer does not wait for an answer that never comes */
		printf("%s offers something this program does not take (type 0x%04x): rejected\n",
		       from, in->app_type);
		fflush(stdout);
		o->answer = RD_ANSWER_REJECT;
		snprintf(o->reason, sizeof(o->reason), "%s",
			 in->app_type == RD_APP_CHAT ? "no direct chat here (roomdrop listen)" :
						       "roomdrop takes file offers only");
		goto out;
	}
	if (rdf_file_offer_decode(in->descriptor.p, in->descriptor.n, &o->desc, why, sizeof(why)) !=
	    0) {
		printf("%s offers files, refused: %s\n", from, why);
		o->answer = RD_ANSWER_REJECT;
		snprintf(o->reason, sizeof(o->reason), "refused: %s", why);
		goto out;
	}
	bundle_summary(&o->desc, summary, sizeof(summary));
	accept = x->rules.policy == CLI_OFFERS_ACCEPT_ALL ||
		 (x->rules.policy == CLI_OFFERS_ACCEPT_FROM && x->rules.from != NULL &&
		  rd_name_eq(x->rules.from, in->from));
	if (x->rules.policy == CLI_OFFERS_ASK) {
		/* the shell asks; its next lines answer (cli_offers_reply) */
		printf("%s offers %s - accept? [y/N/s] (offer %" PRIu32 ")\n", from, summary,
		       o->id);
		fflush(stdout);
		o->asking = 1;
		goto out;
	}
	printf("%s offers %s (offer %" PRIu32 ")%s\n", from, summary, o->id,
	       accept                             ? ": accepting" :
	       x->rules.policy == CLI_OFFERS_SHOW ? "" :
						    ": rejecting");
	fflush(stdout);
	if (x->rules.policy == CLI_OFFERS_SHOW)
		goto out;
	if (!accept) {
		o->answer = RD_ANSWER_REJECT;
		snprintf(o->reason, sizeof(o->reason), "%s",
			 x->rules.policy == CLI_OFFERS_REJECT_ALL ?
				 "not accepting offers" :
				 "not accepting offers from you");
		goto out;
	}
	rx_accept(x, o, NULL);
out:
	(void)s;
	free(from);
}

static void rx_on_offer(struct cli_session *s, const struct rd_msg *m)
{
	struct rx *x = s->offer_user;
	struct rx_offer *o, **pp;

	switch (m->type) {
	case RD_MSG_OFFER_IN:
		rx_offer_in(s, x, &m->u.offer_in);
		break;
	case RD_MSG_OFFER_DATA:
		if ((o = rx_find(x, m->u.offer_data.offer_id)) != NULL)
			rx_data(o, &m->u.offer_data);
		break;
	case RD_MSG_P2P_INTRO:
		if ((o = rx_find(x, m->u.p2p_intro.offer_id)) != NULL)
			direct_on_msg(o->d, m);
		break;
	case RD_MSG_P2P_FAILED:
		if ((o = rx_find(x, m->u.p2p_failed.offer_id)) != NULL)
			direct_on_msg(o->d, m);
		break;
	case RD_MSG_OFFER_END:
		if ((o = rx_find(x, m->u.offer_end.offer_id)) != NULL && o->accepted) {
			for (uint32_t i = 0; i < o->desc.count; i++)
				if (o->f[i].take && !o->f[i].ended)
					rx_fail(o, i, RDF_E_SIZE_MISMATCH,
						"the offer ended before all of it came");
			rx_check_done(o);
		}
		break;
	case RD_MSG_OFFER_RESULT:
		if ((o = rx_find(x, m->u.offer_result.offer_id)) == NULL)
			break;
		if (m->u.offer_result.outcome != RD_OFFER_COMPLETED) {
			char *from = cli_escape(o->from, strlen(o->from));

			printf("offer %" PRIu32 " from %s: %s\n", o->id, from,
			       m->u.offer_result.outcome == RD_OFFER_CANCELLED ? "cancelled" :
			       m->u.offer_result.outcome == RD_OFFER_EXPIRED   ? "expired" :
			       m->u.offer_result.outcome == RD_OFFER_PEER_GONE ? "the sender left" :
										 "ended");
			fflush(stdout);
			free(from);
		}
		/* finished: unlink and free (a .part stays for a later offer to resume); one
		 * that cli_offers_pending works on is freed when it is done with it */
		if (o->busy) {
			o->finished = 1;
			break;
		}
		for (pp = &x->list; *pp != NULL; pp = &(*pp)->next)
			if (*pp == o) {
				*pp = o->next;
				break;
			}
		rx_free(o);
		break;
	default:
		break;
	}
}

int cli_offers_listen(struct cli_session *s, const struct cli_offer_rules *rules)
{
	struct rx *x = calloc(1, sizeof(*x));
	const char *into = rules->into != NULL ? rules->into : ".";

	if (x == NULL)
		return RD_ERR_NOMEM;
	x->rules = *rules;
	x->dfd = open(into, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x->dfd < 0) {
		char *e = cli_escape(into, strlen(into));

		fprintf(stderr, "roomdrop: listen: cannot use the folder %s: %s\n", e,
			strerror(errno));
		free(e);
		free(x);
		return RD_ERR_NOT_FOUND;
	}
	s->on_offer = rx_on_offer;
	s->offer_user = x;
	return 0;
}

/* What o owes the server now: its answer (and, after an accept of an offer to us alone,
 * the direct link's attempt), or its receipt. Every request here waits for its reply and
 * meanwhile runs the callbacks, which may free offers that are not busy: the caller marks
 * o busy, and walks the list again from its head afterwards. */
static int rx_owed(struct cli_session *s, struct rx *x, struct rx_offer *o, struct rd_buf *data)
{
	uint16_t werr = 0;
	int rc = 0;

	data->len = 0;
	if (o->answer == RD_ANSWER_ACCEPT || o->answer == RD_ANSWER_RESUME) {
		struct rdf_file_accept a = { o->desc.count, NULL };

		if ((a.items = calloc(o->desc.count, sizeof(*a.items))) == NULL)
			return RD_ERR_NOMEM;
		/* (a RESUME leaves out the files that ended) */
		for (uint32_t i = 0; i < o->desc.count; i++) {
			a.items[i].take =
				(uint8_t)(o->f[i].take &&
					  (o->answer == RD_ANSWER_ACCEPT || !o->f[i].ended));
			a.items[i].offset = a.items[i].take ? o->f[i].have : 0;
		}
		rc = rdf_file_accept_encode(&a, data);
		free(a.items);
	}
	if (rc == 0 && o->answer != 0) {
		uint8_t answer = (uint8_t)o->answer;

		o->answer = 0; /* once, whatever happens */
		rc = rd_conn_offer_answer(s->conn, o->id, answer, 0,
					  answer == RD_ANSWER_REJECT ? o->reason : NULL, data->data,
					  data->len, NULL, &werr);
		if (rc == 0 && answer == RD_ANSWER_ACCEPT && o->to_user)
			rc = rx_direct(s, x, o);
		if (rc == RD_ERR_REMOTE) /* gone or expired meanwhile: not fatal */
			rc = 0;
	}
	if (rc == 0 && o->receipt_due && !o->receipt_sent) {
		struct rdf_file_done d = { o->desc.count, NULL };

		o->receipt_sent = 1;
		if ((d.items = calloc(o->desc.count, sizeof(*d.items))) == NULL)
			return RD_ERR_NOMEM;
		for (uint32_t i = 0; i < o->desc.count; i++) {
			d.items[i].status = o->f[i].take ? o->f[i].status : RDF_DONE_NOT_TAKEN;
			d.items[i].code = o->f[i].code;
		}
		data->len = 0;
		rc = rdf_file_done_encode(&d, data);
		free(d.items);
		if (rc == 0)
			rc = rd_conn_offer_answer(s->conn, o->id, RD_ANSWER_DONE, 0, NULL,
						  data->data, data->len, NULL, &werr);
		if (rc == RD_ERR_REMOTE)
			rc = 0;
	}
	return rc;
}

int cli_offers_pending(struct cli_session *s)
{
	struct rx *x = s->offer_user;
	struct rd_buf data;
	int rc = 0, ran;

	if (x == NULL || s->on_offer != rx_on_offer)
		return 0;
	rd_buf_init(&data, RD_DESCRIPTOR_MAX);
again:
	ran = 0;
	for (struct rx_offer *o = x->list; o != NULL; o = o->next) {
		if (o->answer == 0 && !(o->receipt_due && !o->receipt_sent))
			continue;
		o->busy = 1; /* (not freed by the callbacks while its requests wait) */
		rc = rx_owed(s, x, o, &data);
		o->busy = 0;
		ran = 1;
		break; /* the list may have changed meanwhile: from its head again */
	}
	for (struct rx_offer **pp = &x->list; *pp != NULL;) {
		struct rx_offer *o = *pp;

		if (o->finished && !o->busy) {
			*pp = o->next;
			rx_free(o);
		} else {
			pp = &o->next;
		}
	}
	if (ran && rc == 0)
		goto again;
	rd_buf_free(&data);
	return rc;
}

void cli_offers_stop(struct cli_session *s)
{
	struct rx *x = s->offer_user;

	if (x == NULL || s->on_offer != rx_on_offer)
		return;
	while (x->list != NULL) {
		struct rx_offer *o = x->list;

		x->list = o->next;
		rx_free(o);
	}
	close(x->dfd);
	free(x);
	s->on_offer = NULL;
	s->offer_user = NULL;
}

/* ---- the shell's questions ------------------------------------------------------------- */

/* The offer a question is pending for (the oldest), or NULL. */
static struct rx_offer *rx_asking(struct cli_session *s)
{
	struct rx *x = s->offer_user;
	struct rx_offer *found = NULL;

	if (x == NULL || s->on_offer != rx_on_offer)
		return NULL;
	for (struct rx_offer *o = x->list; o != NULL; o = o->next)
		if (o->asking)
			found = o; /* the list is newest first: the last one is the oldest */
	return found;
}

int cli_offers_question(struct cli_session *s, char *out, size_t cap)
{
	struct rx_offer *o = rx_asking(s);
	char hs[32], *path;

	if (o == NULL)
		return 0;
	if (o->picks == NULL) {
		snprintf(out, cap, "accept offer %" PRIu32 " from %s? [y/N/s] ", o->id, o->from);
		return 1;
	}
	rd_format_size(o->desc.items[o->next_pick].size, hs, sizeof(hs));
	path = cli_escape(o->desc.items[o->next_pick].path,
			  strlen(o->desc.items[o->next_pick].path));
	snprintf(out, cap, "take %s (%s)? [y/N] ", path, hs);
	free(path);
	return 1;
}

int cli_offers_reply(struct cli_session *s, const char *line)
{
	struct rx *x = s->offer_user;
	struct rx_offer *o = rx_asking(s);
	int yes;

	if (o == NULL)
		return 0;
	while (*line == ' ' || *line == '\t')
		line++;
	yes = *line == 'y' || *line == 'Y';
	if (o->picks == NULL) {
		if (*line == 's' || *line == 'S') { /* file by file */
			if ((o->picks = calloc(o->desc.count, 1)) == NULL)
				return 1;
			o->next_pick = 0;
			return 1;
		}
		o->asking = 0;
		if (yes) {
			printf("accepting offer %" PRIu32 " into %s\n", o->id,
			       x->rules.into != NULL ? x->rules.into : ".");
			rx_accept(x, o, NULL);
		} else {
			printf("rejecting offer %" PRIu32 "\n", o->id);
			o->answer = RD_ANSWER_REJECT;
			snprintf(o->reason, sizeof(o->reason), "declined");
		}
		return 1;
	}
	o->picks[o->next_pick++] = (uint8_t)yes;
	if (o->next_pick == o->desc.count) {
		o->asking = 0;
		rx_accept(x, o, o->picks);
		if (o->answer == RD_ANSWER_REJECT)
			printf("no file taken: rejecting offer %" PRIu32 "\n", o->id);
	}
	return 1;
}
