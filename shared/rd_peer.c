/* rd_peer.c - a verified direct link between two introduced clients (see rd_peer.h).
 *
 * Design: the race (struct race, alive from rd_peer_start to the end of the race) is
 * driven by the caller's poll loop through rd_peer_poll_set / rd_peer_step, or by
 * rd_peer_connect, which is that loop; one absolute deadline on the monotonic clock bounds
 * every wait. It holds the listening socket and a table of connections (struct pconn),
 * each a small state machine:
 *
 *   CONNECT    (dialled) TCP connect in progress: POLLOUT, then rd_net_connect_finish
 *   HANDSHAKE  TLS 1.3 handshake, non-blocking (rd_tls_conn_handshake); the dialler pins
 *              the introduced fingerprint in it, the acceptor compares it when it is done
 *   WAIT_HELLO (accepted) waiting for the dialler's P2P_HELLO
 *   WAIT_REPLY (dialled) P2P_HELLO sent; waiting for OK (the chooser dialled),
 *              P2P_READY (the other side dialled) or ERROR 403
 *   WAIT_READY (accepted, not the chooser) P2P_HELLO accepted with OK; waiting for the
 *              chooser's P2P_READY
 *   CLOSING    refused with ERROR 403: the error is written, the rest read and dropped
 *              until the other end closes (so that our close does not reset the error)
 *
 * Bytes go through the transport (rd_tls.h) during the handshake and through an rd_link
 * after it (frame reader, output queue), so that the chosen link is what the rest of the
 * library uses. Nothing here is shared between threads.
 */
#include "rd_peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "rd_buf.h"
#include "rd_err.h"
#include "rd_hash.h"
#include "rd_link.h"
#include "rd_net.h"

#define MAX_CONNS (RD_PEER_MAX_CANDIDATES + RD_PEER_MAX_ACCEPTED)
#define HELLO_REQ_ID 1u
#define ADDR_TEXT 80
/* A refused connection is read only to let our ERROR reach the peer before we close: a
 * larger frame from it just ends the wait. */
#define REFUSED_MAX_PAYLOAD 256u

struct race;

struct rd_peer {
	struct rd_tls_ctx *srv, *cli; /* acceptor and dialler contexts (ALPN roomdrop-p2p/1) */
	int lfd;                      /* listener, -1 once the race is over */
	int raced;                    /* the race was started (once per rd_peer) */
	struct race *race;            /* while it runs */
	struct rd_link *link;         /* the chosen connection */
	int dialled;
	int eof;
	uint8_t peer_fp[RD_TLS_FP_LEN];
	struct rd_buf out; /* frame being queued */
	char reason[RD_PEER_REASON_BUF];
};

enum pc_state {
	PC_FREE = 0,
	PC_CONNECT,
	PC_HANDSHAKE,
	PC_WAIT_HELLO,
	PC_WAIT_REPLY,
	PC_WAIT_READY,
	PC_CLOSING
};

struct pconn {
	enum pc_state state;
	int dialled;
	char addr[ADDR_TEXT]; /* "dial IP:PORT" / "from IP:PORT" */
	int fd;               /* CONNECT */
	struct rd_tls_conn *t;
	struct rd_link *l; /* from the end of the handshake */
	enum rd_tls_want want;
};

struct race {
	struct rd_peer *p;
	const struct rd_peer_intro *in; /* = &intro, whose strings point into this struct */
	struct rd_peer_intro intro;
	char nick[RD_NICK_BUF], peer_nick[RD_NICK_BUF];
	char cand[RD_PEER_MAX_CANDIDATES][RD_PEER_ADDR_BUF];
	const char *candp[RD_PEER_MAX_CANDIDATES];
	uint64_t deadline, token_expires;
	int token_used;
	struct pconn *chosen;
	struct pconn c[MAX_CONNS];
	/* what the last rd_peer_poll_set handed out: fds[0] the listener, then the cancel
	 * descriptor when has_cancel, then who[0..nwho) */
	struct pconn *who[MAX_CONNS];
	size_t nwho, nfds;
	int has_cancel;
	char *reason; /* = p->reason */
	size_t rcap, rlen;
	struct rd_buf out;
};

const char *rd_peer_event_name(enum rd_peer_event ev)
{
	switch (ev) {
	case RD_PEER_EV_FAILED:
		return "failed";
	case RD_PEER_EV_BAD_CERT:
		return "wrong certificate";
	case RD_PEER_EV_BAD_TOKEN:
		return "refused hello";
	case RD_PEER_EV_REJECTED:
		return "rejected by peer";
	case RD_PEER_EV_VERIFIED:
		return "verified";
	case RD_PEER_EV_CHOSEN:
		return "chosen";
	}
	return "?";
}

/* ---- reporting ------------------------------------------------------------------------ */

static void note(struct race *r, struct pconn *pc, enum rd_peer_event ev, const char *fmt, ...)
	RD_PRINTF(4, 5);

/* One event on pc: to the callback, the library log and the reason line. */
static void note(struct race *r, struct pconn *pc, enum rd_peer_event ev, const char *fmt, ...)
{
	char text[400];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (r->in->on_event)
		r->in->on_event(r->in->user, ev, pc->addr, text);
	RD_LOG(ev == RD_PEER_EV_BAD_CERT || ev == RD_PEER_EV_BAD_TOKEN ? RD_LOG_WARN : RD_LOG_INFO,
	       "p2p offer %u: %s: %s", (unsigned)r->in->offer_id, pc->addr, text);
	if (r->reason == NULL || r->rlen + 1 >= r->rcap)
		return;
	n = snprintf(r->reason + r->rlen, r->rcap - r->rlen, "%s%s: %s", r->rlen ? "; " : "",
		     pc->addr, text);
	if (n < 0)
		return;
	r->rlen += (size_t)n;
	if (r->rlen >= r->rcap) { /* truncated: say so */
		r->rlen = r->rcap - 1;
		if (r->rcap > 4)
			memcpy(r->reason + r->rcap - 4, "...", 4);
	}
}

/* ---- connections ---------------------------------------------------------------------- */

static void pc_drop(struct pconn *pc)
{
	if (pc->l)
		rd_link_free(pc->l);
	else if (pc->t)
		rd_tls_conn_close(pc->t);
	else if (pc->fd >= 0)
		close(pc->fd);
	pc->l = NULL;
	pc->t = NULL;
	pc->fd = -1;
	pc->state = PC_FREE;
}

/* A free slot: dialled connections have one each (never reused, so that each candidate
 * is tried once); accepted ones reuse the slots of connections already closed. */
static struct pconn *pc_new(struct race *r, int dialled)
{
	size_t i, lo = dialled ? 0 : RD_PEER_MAX_CANDIDATES;
	size_t hi = dialled ? RD_PEER_MAX_CANDIDATES : MAX_CONNS;

	for (i = lo; i < hi; i++) {
		struct pconn *pc = &r->c[i];
		if (pc->state != PC_FREE || (dialled && pc->addr[0] != '\0'))
			continue;
		memset(pc, 0, sizeof(*pc));
		pc->fd = -1;
		pc->dialled = dialled;
		return pc;
	}
	return NULL;
}

/* Queue m on pc's link and make one attempt to write it. */
static int pc_send(struct race *r, struct pconn *pc, const struct rd_msg *m, uint32_t req_id)
{
	enum rd_tls_want want;
	int rc;

	rd_buf_reset(&r->out);
	if ((rc = rd_msg_frame(&r->out, m, req_id, 0)) != 0)
		return rc;
	if ((rc = rd_link_queue(pc->l, RD_LINK_EVENT, r->out.data, r->out.len, NULL)) != 0)
		return rc;
	return rd_link_flush(pc->l, &want);
}

/* Refuse pc: ERROR 403 BAD_TOKEN with text (inside TLS), then close once it is written. */
static void pc_refuse(struct race *r, struct pconn *pc, uint32_t req_id, const char *text)
{
	struct rd_msg m;
	enum rd_tls_want want;
	int sched;

	rd_msg_init(&m, RD_MSG_ERROR);
	m.u.error.code = RD_E_BAD_TOKEN;
	m.u.error.for_type = RD_MSG_P2P_HELLO;
	m.u.error.text = rd_str_c(text);
	if (pc_send(r, pc, &m, req_id) != 0) {
		pc_drop(pc);
		return;
	}
	rd_link_set_max_payload(pc->l, REFUSED_MAX_PAYLOAD); /* what it sends is dropped */
	rd_link_close_after_flush(pc->l, &sched);
	(void)rd_link_flush(pc->l, &want);
	pc->state = PC_CLOSING;
}

static void fp_text(const uint8_t fp[RD_TLS_FP_LEN], char out[RD_TLS_FP_TEXT_LEN])
{
	rd_tls_fp_format(fp, out);
}

static void choose(struct race *r, struct pconn *pc)
{
	r->chosen = pc;
	note(r, pc, RD_PEER_EV_CHOSEN, "%s", pc->dialled ? "dialled" : "accepted");
}

/* The acceptor's check of the first frame. State before decode: only P2P_HELLO. */
static void on_hello(struct race *r, struct pconn *pc, const struct rd_frame *f)
{
	const struct rd_peer_intro *in = r->in;
	const char *bad = NULL;
	struct rd_msg m, reply;

	if (f->hdr.type != RD_MSG_P2P_HELLO) {
		note(r, pc, RD_PEER_EV_BAD_TOKEN, "first frame is type 0x%04x, not P2P_HELLO",
		     f->hdr.type);
		pc_refuse(r, pc, f->hdr.req_id, "P2P_HELLO expected");
		return;
	}
	if (rd_msg_decode(f->hdr.type, f->payload, f->len, &m) != 0) {
		note(r, pc, RD_PEER_EV_BAD_TOKEN, "malformed P2P_HELLO");
		pc_refuse(r, pc, f->hdr.req_id, "malformed P2P_HELLO");
		return;
	}
	if (!rd_ct_equal(m.u.p2p_hello.token, in->token, RD_TOKEN_SIZE))
		bad = "wrong token";
	else if (r->token_used)
		bad = "token already used";
	else if (rd_now_mono_ms() >= r->token_expires)
		bad = "token expired";
	else if (m.u.p2p_hello.offer_id != in->offer_id)
		bad = "wrong offer id";
	else if (strcmp(m.u.p2p_hello.nick, in->peer_nick) != 0)
		bad = "wrong nickname";
	if (bad) {
		note(r, pc, RD_PEER_EV_BAD_TOKEN, "refused P2P_HELLO(%u, %s): %s",
		     (unsigned)m.u.p2p_hello.offer_id, m.u.p2p_hello.nick, bad);
		rd_msg_clear(&m);
		pc_refuse(r, pc, f->hdr.req_id, bad);
		return;
	}
	rd_msg_clear(&m);
	r->token_used = 1;
	note(r, pc, RD_PEER_EV_VERIFIED, "certificate and token good");
	if (in->chooser) {
		rd_msg_init(&reply, RD_MSG_P2P_READY);
		reply.u.offer_id.offer_id = in->offer_id;
		if (pc_send(r, pc, &reply, f->hdr.req_id) != 0) {
			note(r, pc, RD_PEER_EV_FAILED, "cannot send P2P_READY");
			pc_drop(pc);
			return;
		}
		choose(r, pc);
		return;
	}
	rd_msg_init(&reply, RD_MSG_OK);
	reply.u.ok.for_type = RD_MSG_P2P_HELLO;
	if (pc_send(r, pc, &reply, f->hdr.req_id) != 0) {
		note(r, pc, RD_PEER_EV_FAILED, "cannot send OK");
		pc_drop(pc);
		return;
	}
	pc->state = PC_WAIT_READY;
}

/* P2P_READY for our offer: this connection is the link (the side that is not the
 * chooser). */
static int is_ready(struct race *r, const struct rd_frame *f)
{
	struct rd_msg m;
	int ok;

	if (f->hdr.type != RD_MSG_P2P_READY || rd_msg_decode(f->hdr.type, f->payload, f->len, &m))
		return 0;
	ok = m.u.offer_id.offer_id == r->in->offer_id;
	rd_msg_clear(&m);
	return ok;
}

/* The dialler: the answer to our P2P_HELLO. */
static void on_reply(struct race *r, struct pconn *pc, const struct rd_frame *f)
{
	struct rd_msg m;

	if (f->hdr.type == RD_MSG_ERROR &&
	    rd_msg_decode(f->hdr.type, f->payload, f->len, &m) == 0) {
		note(r, pc, RD_PEER_EV_REJECTED, "refused our P2P_HELLO: ERROR %u %.*s",
		     (unsigned)m.u.error.code, (int)RD_MIN(m.u.error.text.n, (size_t)200),
		     m.u.error.text.p ? m.u.error.text.p : "");
		rd_msg_clear(&m);
		pc_drop(pc);
		return;
	}
	if (r->in->chooser && f->hdr.type == RD_MSG_OK) {
		note(r, pc, RD_PEER_EV_VERIFIED, "certificate and token good");
		rd_msg_init(&m, RD_MSG_P2P_READY);
		m.u.offer_id.offer_id = r->in->offer_id;
		if (pc_send(r, pc, &m, HELLO_REQ_ID) != 0) {
			note(r, pc, RD_PEER_EV_FAILED, "cannot send P2P_READY");
			pc_drop(pc);
			return;
		}
		choose(r, pc);
		return;
	}
	if (!r->in->chooser && is_ready(r, f)) {
		note(r, pc, RD_PEER_EV_VERIFIED, "certificate and token good");
		choose(r, pc);
		return;
	}
	note(r, pc, RD_PEER_EV_FAILED, "unexpected frame type 0x%04x after P2P_HELLO", f->hdr.type);
	pc_drop(pc);
}

static void on_frame(struct race *r, struct pconn *pc, const struct rd_frame *f)
{
	switch (pc->state) {
	case PC_WAIT_HELLO:
		on_hello(r, pc, f);
		break;
	case PC_WAIT_REPLY:
		on_reply(r, pc, f);
		break;
	case PC_WAIT_READY:
		if (is_ready(r, f)) {
			choose(r, pc);
		} else {
			note(r, pc, RD_PEER_EV_FAILED, "frame type 0x%04x instead of P2P_READY",
			     f->hdr.type);
			pc_drop(pc);
		}
		break;
	default: /* CLOSING: whatever comes is dropped */
		break;
	}
}

/* Read what arrived on pc's link and handle whole frames, until the race is decided. */
static void pc_read(struct race *r, struct pconn *pc)
{
	struct rd_frame f;
	int rc, frc;

	rc = rd_link_read_available(pc->l);
	while (pc->state != PC_FREE && r->chosen == NULL) {
		frc = rd_link_next(pc->l, &f);
		if (frc == RD_ERR_INCOMPLETE)
			break;
		if (frc != 0) {
			if (pc->state != PC_CLOSING)
				note(r, pc, RD_PEER_EV_FAILED, "bad frame: %s", rd_strerror(frc));
			pc_drop(pc);
			return;
		}
		on_frame(r, pc, &f);
	}
	if (pc->state == PC_FREE || r->chosen == pc || rc == 0)
		return;
	if (pc->state != PC_CLOSING)
		note(r, pc, RD_PEER_EV_FAILED, "%s",
		     rc == RD_ERR_CLOSED || rc == RD_ERR_MALFORMED ? "closed by the other end" :
		     rd_link_reason(pc->l)[0]                      ? rd_link_reason(pc->l) :
								     rd_strerror(rc));
	pc_drop(pc);
}

/* Advance pc's TLS handshake; at its end check the key and start the exchange. */
static void pc_handshake(struct race *r, struct pconn *pc)
{
	const struct rd_peer_intro *in = r->in;
	uint8_t fp[RD_TLS_FP_LEN];
	char seen[RD_TLS_FP_TEXT_LEN], want[RD_TLS_FP_TEXT_LEN];
	struct rd_msg m;
	int rc;

	rc = rd_tls_conn_handshake(pc->t, &pc->want);
	if (rc != 0) {
		if (rc == RD_ERR_MISMATCH)
			note(r, pc, RD_PEER_EV_BAD_CERT, "wrong certificate: %s",
			     rd_tls_conn_reason(pc->t));
		else
			note(r, pc, RD_PEER_EV_FAILED, "TLS: %s",
			     rd_tls_conn_reason(pc->t)[0] ? rd_tls_conn_reason(pc->t) :
							    rd_strerror(rc));
		pc_drop(pc);
		return;
	}
	if (pc->want != RD_TLS_WANT_NONE)
		return;
	rc = rd_link_new(pc->t, NULL, &pc->l);
	pc->t = NULL; /* the link owns it, also on failure */
	if (rc != 0) {
		note(r, pc, RD_PEER_EV_FAILED, "%s", rd_strerror(rc));
		pc_drop(pc);
		return;
	}
	if (pc->dialled) { /* the pin was checked in the handshake */
		rd_msg_init(&m, RD_MSG_P2P_HELLO);
		m.u.p2p_hello.offer_id = in->offer_id;
		memcpy(m.u.p2p_hello.token, in->token, RD_TOKEN_SIZE);
		snprintf(m.u.p2p_hello.nick, sizeof(m.u.p2p_hello.nick), "%s", in->nick);
		if ((rc = pc_send(r, pc, &m, HELLO_REQ_ID)) != 0) {
			note(r, pc, RD_PEER_EV_FAILED, "cannot send P2P_HELLO: %s",
			     rd_strerror(rc));
			pc_drop(pc);
			return;
		}
		pc->state = PC_WAIT_REPLY;
	} else {
		rc = rd_link_peer_fp(pc->l, fp);
		if (rc != 0 || !rd_tls_fp_equal(fp, in->peer_fp)) {
			fp_text(fp, seen);
			fp_text(in->peer_fp, want);
			note(r, pc, RD_PEER_EV_BAD_CERT, "wrong certificate %s (expected %s)",
			     rc == 0 ? seen : "(none)", want);
			pc_refuse(r, pc, 0, "wrong certificate");
			return;
		}
		pc->state = PC_WAIT_HELLO;
	}
	pc_read(r, pc); /* TLS may have read the first frame along with the handshake */
}

static void pc_connected(struct race *r, struct pconn *pc)
{
	struct rd_tls_expect ex = { .has_pin = 1 };
	int rc;

	if ((rc = rd_net_connect_finish(pc->fd)) != 0) {
		note(r, pc, RD_PEER_EV_FAILED, "%s",
		     rc == RD_ERR_SYSTEM ? strerror(errno) : rd_strerror(rc));
		pc_drop(pc);
		return;
	}
	memcpy(ex.pin, r->in->peer_fp, RD_TLS_FP_LEN);
	if ((rc = rd_tls_conn_tls_new(r->p->cli, pc->fd, &ex, &pc->t)) != 0) {
		note(r, pc, RD_PEER_EV_FAILED, "TLS: %s", rd_strerror(rc));
		pc_drop(pc);
		return;
	}
	pc->fd = -1;
	pc->state = PC_HANDSHAKE;
	pc_handshake(r, pc);
}

static void dial(struct race *r, const char *cand)
{
	char host[RD_PEER_ADDR_BUF];
	struct pconn *pc = pc_new(r, 1);
	uint16_t port;
	int rc, done;

	if (pc == NULL)
		return;
	snprintf(pc->addr, sizeof(pc->addr), "dial %.*s", RD_PEER_ADDR_BUF, cand);
	if (rd_net_parse_hostport(cand, 0, host, sizeof(host), &port) != 0 || port == 0) {
		note(r, pc, RD_PEER_EV_FAILED, "not an address with a port");
		return;
	}
	if ((rc = rd_net_connect_start(host, port, &pc->fd, &done)) != 0) {
		note(r, pc, RD_PEER_EV_FAILED, "%s",
		     rc == RD_ERR_SYSTEM ? strerror(errno) :
		     rc == RD_ERR_ADDR   ? "not an IP address" :
					   rd_strerror(rc));
		return;
	}
	pc->state = PC_CONNECT;
	if (done)
		pc_connected(r, pc);
}

static void accept_all(struct race *r)
{
	char ip[RD_PEER_ADDR_BUF];
	struct pconn *pc;
	uint16_t port;
	int fd, rc;

	for (;;) {
		if (rd_net_accept(r->p->lfd, &fd, ip, sizeof(ip), &port) != 0)
			return; /* EAGAIN: nothing more now (other errors: the next poll says) */
		if ((pc = pc_new(r, 0)) == NULL) {
			RD_LOG(RD_LOG_WARN,
			       "p2p offer %u: too many incoming connections, %s:%u "
			       "closed",
			       (unsigned)r->in->offer_id, ip, port);
			close(fd);
			continue;
		}
		snprintf(pc->addr, sizeof(pc->addr),
			 strchr(ip, ':') ? "from [%s]:%u" : "from %s:%u", ip, port);
		/* as on the dialling side: no Nagle wait behind each burst's last segment */
		(void)rd_net_set_nodelay(fd, 1);
		if ((rc = rd_tls_conn_tls_new(r->p->srv, fd, NULL, &pc->t)) != 0) {
			close(fd);
			note(r, pc, RD_PEER_EV_FAILED, "TLS: %s", rd_strerror(rc));
			continue;
		}
		pc->state = PC_HANDSHAKE;
		pc_handshake(r, pc);
	}
}

/* ---- the race ------------------------------------------------------------------------- */

static short pc_events(struct pconn *pc)
{
	switch (pc->state) {
	case PC_CONNECT:
		return POLLOUT;
	case PC_HANDSHAKE:
		return pc->want == RD_TLS_WANT_WRITE ? POLLOUT : POLLIN;
	case PC_FREE:
		return 0;
	default:
		return (short)(POLLIN | (rd_link_queued(pc->l) ? POLLOUT : 0));
	}
}

static void pc_step(struct race *r, struct pconn *pc, short revents)
{
	enum rd_tls_want want;

	switch (pc->state) {
	case PC_CONNECT:
		pc_connected(r, pc);
		break;
	case PC_HANDSHAKE:
		pc_handshake(r, pc);
		break;
	case PC_FREE:
		break;
	default:
		if ((revents & POLLOUT) && rd_link_queued(pc->l) &&
		    rd_link_flush(pc->l, &want) != 0) {
			if (pc->state != PC_CLOSING)
				note(r, pc, RD_PEER_EV_FAILED, "write failed");
			pc_drop(pc);
			return;
		}
		pc_read(r, pc);
		break;
	}
}

static int valid_intro(const struct rd_peer_intro *in)
{
	return in->nick != NULL && in->nick[0] != '\0' && strlen(in->nick) <= RD_NICK_MAX &&
	       in->peer_nick != NULL && in->peer_nick[0] != '\0' &&
	       in->ncandidates <= RD_PEER_MAX_CANDIDATES &&
	       (in->ncandidates == 0 || in->candidates != NULL) && in->timeout_ms >= 0;
}

/* Write the chosen link's P2P_READY out before handing it over, within the deadline. */
static int flush_until(struct rd_link *l, uint64_t deadline)
{
	enum rd_tls_want want;
	int rc;

	for (;;) {
		if ((rc = rd_link_flush(l, &want)) != 0)
			return rc;
		if (want == RD_TLS_WANT_NONE)
			return 0;
		uint64_t now = rd_now_mono_ms();
		if (now >= deadline)
			return RD_ERR_TIMEOUT;
		if ((rc = rd_net_wait(rd_link_fd(l), want == RD_TLS_WANT_READ ? POLLIN : POLLOUT,
				      (int)RD_MIN(deadline - now, (uint64_t)INT32_MAX))) != 0)
			return rc;
	}
}

/* Describe the connections still undecided when the race ends without a link. */
static void note_pending(struct race *r)
{
	static const char *const what[] = {
		[PC_CONNECT] = "no TCP connection", [PC_HANDSHAKE] = "TLS handshake not finished",
		[PC_WAIT_HELLO] = "no P2P_HELLO",   [PC_WAIT_REPLY] = "no answer to P2P_HELLO",
		[PC_WAIT_READY] = "no P2P_READY",
	};
	size_t i;

	for (i = 0; i < MAX_CONNS; i++) {
		struct pconn *pc = &r->c[i];
		if (pc->state >= PC_CONNECT && pc->state <= PC_WAIT_READY)
			note(r, pc, RD_PEER_EV_FAILED, "%s before the deadline", what[pc->state]);
	}
}

static void race_end_free(struct rd_peer *p)
{
	struct race *r = p->race;
	size_t i;

	for (i = 0; i < MAX_CONNS; i++)
		pc_drop(&r->c[i]);
	if (p->lfd >= 0)
		close(p->lfd);
	p->lfd = -1;
	rd_buf_free(&r->out);
	free(r);
	p->race = NULL;
}

/* The race is over with rc: hand the chosen link over, or say what was left undecided. */
static int race_finish(struct rd_peer *p, int rc)
{
	struct race *r = p->race;

	if (rc == 0 && r->in->chooser && (rc = flush_until(r->chosen->l, r->deadline)) != 0) {
		note(r, r->chosen, RD_PEER_EV_FAILED, "P2P_READY not written: %s", rd_strerror(rc));
		pc_drop(r->chosen);
		r->chosen = NULL;
	}
	if (rc == 0) {
		p->link = r->chosen->l;
		p->dialled = r->chosen->dialled;
		memcpy(p->peer_fp, r->in->peer_fp, RD_TLS_FP_LEN);
		r->chosen->l = NULL;
		r->chosen->state = PC_FREE;
	} else {
		note_pending(r);
		if (r->rlen == 0)
			snprintf(p->reason, sizeof(p->reason), "%s",
				 rc == RD_ERR_TIMEOUT ? "no candidate address and no incoming "
							"connection" :
							rd_strerror(rc));
	}
	race_end_free(p);
	return rc;
}

int rd_peer_start(struct rd_peer *p, const struct rd_peer_intro *in)
{
	struct race *r;
	size_t i;

	if (p == NULL || in == NULL || !valid_intro(in))
		return RD_ERR_INVAL;
	if (p->raced)
		return RD_ERR_STATE;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return RD_ERR_NOMEM;
	p->raced = 1;
	p->race = r;
	p->reason[0] = '\0';
	r->p = p;
	r->intro = *in;
	snprintf(r->nick, sizeof(r->nick), "%s", in->nick);
	snprintf(r->peer_nick, sizeof(r->peer_nick), "%s", in->peer_nick);
	r->intro.nick = r->nick;
	r->intro.peer_nick = r->peer_nick;
	for (i = 0; i < in->ncandidates; i++) {
		snprintf(r->cand[i], sizeof(r->cand[i]), "%s", in->candidates[i]);
		r->candp[i] = r->cand[i];
	}
	r->intro.candidates = r->candp;
	r->in = &r->intro;
	r->reason = p->reason;
	r->rcap = sizeof(p->reason);
	r->deadline =
		rd_now_mono_ms() + (uint64_t)(in->timeout_ms ? in->timeout_ms : RD_PEER_TIMEOUT_MS);
	r->token_expires = in->token_expires_ms ? in->token_expires_ms :
						  rd_now_mono_ms() + RD_P2P_TOKEN_TTL_MS;
	rd_buf_init(&r->out, 0);
	for (i = 0; i < MAX_CONNS; i++)
		r->c[i].fd = -1;
	for (i = 0; i < r->intro.ncandidates; i++)
		dial(r, r->candp[i]);
	return 0;
}

int rd_peer_poll_set(struct rd_peer *p, struct pollfd *fds, size_t cap, size_t *n, int *timeout_ms)
{
	struct race *r;
	uint64_t now;
	size_t i;
	int ms;

	if (n)
		*n = 0;
	if (timeout_ms)
		*timeout_ms = 0;
	if (p == NULL || fds == NULL || n == NULL || timeout_ms == NULL)
		return RD_ERR_INVAL;
	if ((r = p->race) == NULL)
		return RD_ERR_STATE;
	if (cap < RD_PEER_POLLFDS)
		return RD_ERR_TOO_BIG;
	now = rd_now_mono_ms();
	ms = now >= r->deadline ? 0 : (int)RD_MIN(r->deadline - now, (uint64_t)INT32_MAX);
	r->nfds = 0;
	r->nwho = 0;
	fds[r->nfds++] = (struct pollfd){ .fd = p->lfd, .events = POLLIN };
	r->has_cancel = r->in->cancel_fd > 0;
	if (r->has_cancel)
		fds[r->nfds++] = (struct pollfd){ .fd = r->in->cancel_fd, .events = POLLIN };
	for (i = 0; i < MAX_CONNS; i++) {
		struct pconn *pc = &r->c[i];
		short ev = pc_events(pc);
		if (ev == 0)
			continue;
		if (pc->l && rd_link_input_buffered(pc->l))
			ms = 0; /* TLS holds bytes poll() cannot see */
		r->who[r->nwho++] = pc;
		fds[r->nfds++] = (struct pollfd){ .fd = pc->state == PC_CONNECT ? pc->fd :
							pc->l ? rd_link_fd(pc->l) :
								rd_tls_conn_fd(pc->t),
						  .events = ev };
	}
	if (r->chosen)
		ms = 0;
	*n = r->nfds;
	*timeout_ms = ms;
	return 0;
}

int rd_peer_step(struct rd_peer *p, const struct pollfd *fds, size_t n)
{
	struct race *r;
	size_t i, first;

	if (p == NULL || (fds == NULL && n > 0))
		return RD_ERR_INVAL;
	if ((r = p->race) == NULL)
		return RD_ERR_STATE;
	if (n != r->nfds)
		return RD_ERR_INVAL; /* not what rd_peer_poll_set handed out */
	if (r->chosen)
		return race_finish(p, 0);
	if (r->has_cancel && (fds[1].revents & POLLIN))
		return race_finish(p, RD_ERR_CANCELLED);
	if (n > 0 && fds[0].revents)
		accept_all(r);
	first = r->nfds - r->nwho;
	for (i = 0; i < r->nwho && r->chosen == NULL; i++) {
		short rev = fds[first + i].revents;
		struct pconn *pc = r->who[i];
		if (rev || (pc->l && rd_link_input_buffered(pc->l)))
			pc_step(r, pc, rev ? rev : POLLIN);
	}
	r->nfds = r->nwho = 0; /* a second step needs a new poll set */
	if (r->chosen)
		return race_finish(p, 0);
	if (rd_now_mono_ms() >= r->deadline)
		return race_finish(p, RD_ERR_TIMEOUT);
	return RD_ERR_AGAIN;
}

const char *rd_peer_reason(const struct rd_peer *p)
{
	return p ? p->reason : "";
}

int rd_peer_connect(struct rd_peer *p, const struct rd_peer_intro *in, char *reason, size_t rcap)
{
	struct pollfd fds[RD_PEER_POLLFDS];
	size_t n;
	int rc, ms;

	if (reason && rcap)
		reason[0] = '\0';
	if ((rc = rd_peer_start(p, in)) != 0)
		return rc;
	do {
		if ((rc = rd_peer_poll_set(p, fds, RD_PEER_POLLFDS, &n, &ms)) != 0)
			break;
		if (poll(fds, n, ms) < 0) {
			if (errno != EINTR) {
				rc = race_finish(p, RD_ERR_SYSTEM);
				break;
			}
			for (size_t i = 0; i < n; i++)
				fds[i].revents = 0;
		}
		rc = rd_peer_step(p, fds, n);
	} while (rc == RD_ERR_AGAIN);
	if (reason && rcap)
		snprintf(reason, rcap, "%s", p->reason);
	return rc;
}

/* ---- setting up, tearing down --------------------------------------------------------- */

int rd_peer_new(const struct rd_tls_identity *id, const char *listen_host, struct rd_peer **out,
		uint16_t *port)
{
	struct rd_peer *p;
	int rc;

	if (out)
		*out = NULL;
	if (port)
		*port = 0;
	if (id == NULL || out == NULL || port == NULL)
		return RD_ERR_INVAL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return RD_ERR_NOMEM;
	p->lfd = -1;
	rd_buf_init(&p->out, 0);
	if ((rc = rd_tls_ctx_server_new(id, RD_TLS_REQUIRE_PEER_CERT | RD_TLS_P2P, &p->srv)) != 0 ||
	    (rc = rd_tls_ctx_client_new(id, NULL, RD_TLS_P2P, &p->cli)) != 0)
		goto out;
	if ((rc = rd_net_listen(listen_host, 0, 16, &p->lfd, port)) != 0)
		goto out;
	if ((rc = rd_net_set_nonblock(p->lfd, 1)) != 0)
		goto out;
	*out = p;
	p = NULL;
	rc = 0;
out:
	rd_peer_free(p);
	if (rc != 0 && port)
		*port = 0;
	return rc;
}

void rd_peer_free(struct rd_peer *p)
{
	if (p == NULL)
		return;
	if (p->race)
		race_end_free(p);
	rd_link_free(p->link);
	if (p->lfd >= 0)
		close(p->lfd);
	rd_tls_ctx_free(p->srv);
	rd_tls_ctx_free(p->cli);
	rd_buf_free(&p->out);
	free(p);
}

/* ---- the link ------------------------------------------------------------------------- */

int rd_peer_fd(const struct rd_peer *p)
{
	return p && p->link ? rd_link_fd(p->link) : -1;
}

int rd_peer_peer_fp(const struct rd_peer *p, uint8_t fp[RD_TLS_FP_LEN])
{
	if (fp)
		memset(fp, 0, RD_TLS_FP_LEN);
	if (p == NULL || fp == NULL)
		return RD_ERR_INVAL;
	if (p->link == NULL)
		return RD_ERR_STATE;
	memcpy(fp, p->peer_fp, RD_TLS_FP_LEN);
	return 0;
}

int rd_peer_dialled(const struct rd_peer *p)
{
	return p && p->link ? p->dialled : 0;
}

static int queue_out(struct rd_peer *p)
{
	enum rd_tls_want want;
	int rc = rd_link_queue(p->link, RD_LINK_EVENT, p->out.data, p->out.len, NULL);

	rd_buf_reset(&p->out);
	if (rc == 0)
		rc = rd_link_flush(p->link, &want);
	return rc == RD_ERR_SYSTEM && (errno == EPIPE || errno == ECONNRESET) ? RD_ERR_CLOSED : rc;
}

int rd_peer_send(struct rd_peer *p, uint16_t type, uint32_t req_id, const void *payload, size_t n,
		 unsigned opts)
{
	int rc;

	if (p == NULL || p->link == NULL)
		return RD_ERR_STATE;
	rd_buf_reset(&p->out);
	if ((rc = rd_frame_append(&p->out, type, req_id, payload, n, opts)) != 0)
		return rc;
	return queue_out(p);
}

int rd_peer_send_msg(struct rd_peer *p, const struct rd_msg *m, uint32_t req_id)
{
	int rc;

	if (p == NULL || p->link == NULL)
		return RD_ERR_STATE;
	if (m == NULL)
		return RD_ERR_INVAL;
	rd_buf_reset(&p->out);
	if ((rc = rd_msg_frame(&p->out, m, req_id, 0)) != 0)
		return rc;
	return queue_out(p);
}

int rd_peer_want_write(const struct rd_peer *p)
{
	return p != NULL && p->link != NULL && rd_link_queued(p->link) > 0;
}

int rd_peer_process(struct rd_peer *p)
{
	enum rd_tls_want want;
	int rc;

	if (p == NULL || p->link == NULL)
		return RD_ERR_STATE;
	if (rd_link_queued(p->link) > 0 && (rc = rd_link_flush(p->link, &want)) != 0)
		return rc == RD_ERR_SYSTEM ? RD_ERR_CLOSED : rc;
	if (p->eof)
		return RD_ERR_CLOSED;
	rc = rd_link_read_available(p->link);
	if (rc == RD_ERR_CLOSED || rc == RD_ERR_MALFORMED) {
		p->eof = 1;
		return RD_ERR_CLOSED;
	}
	return rc;
}

int rd_peer_next(struct rd_peer *p, struct rd_frame *f)
{
	if (p == NULL || f == NULL)
		return RD_ERR_INVAL;
	if (p->link == NULL)
		return RD_ERR_STATE;
	return rd_link_next(p->link, f);
}

int rd_peer_recv(struct rd_peer *p, int timeout_ms, struct rd_frame *f)
{
	int rc;

	if (p == NULL || f == NULL)
		return RD_ERR_INVAL;
	if (p->link == NULL)
		return RD_ERR_STATE;
	if (p->eof) {
		rc = rd_link_next(p->link, f);
		return rc == RD_ERR_INCOMPLETE ? RD_ERR_CLOSED : rc;
	}
	rc = rd_link_recv(p->link, timeout_ms, f);
	if (rc == RD_ERR_CLOSED || rc == RD_ERR_MALFORMED)
		p->eof = 1;
	return rc;
}

int rd_peer_flush(struct rd_peer *p, int timeout_ms)
{
	if (p == NULL)
		return RD_ERR_INVAL;
	if (p->link == NULL)
		return RD_ERR_STATE;
	return flush_until(p->link,
			   timeout_ms < 0 ? UINT64_MAX : rd_now_mono_ms() + (uint64_t)timeout_ms);
}

struct rd_link *rd_peer_link(struct rd_peer *p)
{
	return p ? p->link : NULL;
}

/* ---- addresses ------------------------------------------------------------------------ */

static int reportable(const struct sockaddr *sa, int family)
{
	if (sa == NULL || sa->sa_family != family)
		return 0;
	if (family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr);
		return (a >> 24) != 127 && (a >> 16) != 0xa9fe && a != 0;
	}
	const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	return !IN6_IS_ADDR_LINKLOCAL(a6) && !IN6_IS_ADDR_LOOPBACK(a6) &&
	       !IN6_IS_ADDR_V4MAPPED(a6) && !IN6_IS_ADDR_UNSPECIFIED(a6);
}

int rd_peer_local_addrs(uint16_t port, char (*out)[RD_PEER_ADDR_BUF], size_t cap, size_t *n)
{
	static const int families[] = { AF_INET, AF_INET6 };
	struct ifaddrs *all = NULL, *ifa;
	char ip[INET6_ADDRSTRLEN];
	size_t f;

	if (n)
		*n = 0;
	if (n == NULL || (out == NULL && cap > 0))
		return RD_ERR_INVAL;
	if (getifaddrs(&all) != 0)
		return RD_ERR_SYSTEM;
	for (f = 0; f < RD_ARRAY_LEN(families); f++) {
		for (ifa = all; ifa != NULL && *n < cap; ifa = ifa->ifa_next) {
			const void *a;
			if (!(ifa->ifa_flags & IFF_UP) || (ifa->ifa_flags & IFF_LOOPBACK) ||
			    !reportable(ifa->ifa_addr, families[f]))
				continue;
			a = families[f] == AF_INET ?
				    (const void *)&(
					    (const struct sockaddr_in *)(const void *)ifa->ifa_addr)
					    ->sin_addr :
				    (const void *)&((const struct sockaddr_in6 *)(const void *)
							    ifa->ifa_addr)
					    ->sin6_addr;
			if (inet_ntop(families[f], a, ip, sizeof(ip)) == NULL)
				continue;
			snprintf(out[*n], RD_PEER_ADDR_BUF,
				 families[f] == AF_INET ? "%s:%u" : "[%s]:%u", ip, port);
			(*n)++;
		}
	}
	freeifaddrs(all);
	return 0;
}
