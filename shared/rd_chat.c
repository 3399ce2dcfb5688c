/* rd_chat.c - direct chat over a verified peer-to-peer link (rd_chat.h; PROTOCOL.md 14.4).
 *
 * The caller's thread does everything. Every wait here is a poll on the server
 * connection (and, during the race, on the race's sockets) in slices of at most
 * SLICE_MS, each followed by rd_conn_poll(c, 0): the program's callbacks run meanwhile,
 * and they hand this chat's messages back through rd_chat_on_msg, which only records
 * them (no request from inside a callback).
 */
#include "rd_chat.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rd_display.h"
#include "rd_err.h"
#include "rd_names.h"
#include "rd_net.h"
#include "rd_peer.h"
#include "rd_proto.h"

#define SLICE_MS 100

struct rd_chat {
	struct rd_chat_options o;
	char nick[RD_NICK_BUF];
	char peer[RD_NICK_BUF];
	uint32_t offer_id;
	int started;
	struct rd_peer *p;
	int up;
	/* what the server said about our offer (fed by rd_chat_on_msg) */
	int result; /* 0, or the OFFER_RESULT outcome */
	char result_reason[RD_REASON_MAX * 4 + 8];
	int intro, peer_failed;
	char peer_reason[RD_REASON_MAX * 4 + 8]; /* escaped */
	struct rd_msg_p2p_intro in;              /* addrs copied to cand */
	char cand[RD_PEER_MAX_CANDIDATES][RD_PEER_ADDR_BUF];
	size_t ncand;
	struct rd_frame f; /* the last frame read (rd_chat_next) */
};

struct rd_chat *rd_chat_new(const struct rd_chat_options *o)
{
	struct rd_chat *ch = calloc(1, sizeof(*ch));

	if (ch == NULL)
		return NULL;
	ch->o = *o;
	snprintf(ch->nick, sizeof(ch->nick), "%s", o->nick ? o->nick : "");
	ch->o.nick = ch->nick;
	return ch;
}

void rd_chat_free(struct rd_chat *ch)
{
	if (ch == NULL)
		return;
	rd_peer_free(ch->p);
	free(ch);
}

int rd_chat_up(const struct rd_chat *ch)
{
	return ch != NULL && ch->up;
}

const char *rd_chat_peer(const struct rd_chat *ch)
{
	return ch->peer;
}

uint32_t rd_chat_offer_id(const struct rd_chat *ch)
{
	return ch->offer_id;
}

int rd_chat_on_msg(struct rd_chat *ch, const struct rd_msg *m)
{
	if (ch == NULL || ch->offer_id == 0)
		return 0;
	switch (m->type) {
	case RD_MSG_OFFER_RESULT:
		if (m->u.offer_result.offer_id != ch->offer_id)
			return 0;
		if (!ch->result) {
			ch->result = m->u.offer_result.outcome;
			rd_display_escape(m->u.offer_result.reason.p, m->u.offer_result.reason.n,
					  ch->result_reason, sizeof(ch->result_reason));
		}
		return 1;
	case RD_MSG_OFFER_ANSWERED:
		return m->u.offer_answered.offer_id == ch->offer_id;
	case RD_MSG_OFFER_END:
		return m->u.offer_end.offer_id == ch->offer_id;
	case RD_MSG_P2P_INTRO:
		if (m->u.p2p_intro.offer_id != ch->offer_id)
			return 0;
		if (!ch->intro) {
			ch->in = m->u.p2p_intro;
			ch->in.addrs = NULL;
			ch->in.naddrs = 0;
			for (uint32_t i = 0;
			     i < m->u.p2p_intro.naddrs && ch->ncand < RD_PEER_MAX_CANDIDATES; i++)
				snprintf(ch->cand[ch->ncand++], RD_PEER_ADDR_BUF, "%s",
					 m->u.p2p_intro.addrs[i].addr);
			ch->intro = 1;
		}
		return 1;
	case RD_MSG_P2P_FAILED:
		if (m->u.p2p_failed.offer_id != ch->offer_id)
			return 0;
		rd_display_escape(m->u.p2p_failed.reason.p, m->u.p2p_failed.reason.n,
				  ch->peer_reason, sizeof(ch->peer_reason));
		ch->peer_failed = 1;
		return 1;
	default:
		return 0;
	}
}

/* ---- waiting while the server connection is served ---------------------------------- */

static int cancelled(const struct rd_chat *ch)
{
	struct pollfd p = { .fd = ch->o.cancel_fd, .events = POLLIN };

	return ch->o.cancel_fd > 0 && poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* One slice: wait for the server connection (at most ms), then dispatch what came. */
static int serve(struct rd_chat *ch, struct rd_conn *c, int ms)
{
	struct pollfd p[2] = { { .fd = rd_conn_fd(c), .events = POLLIN },
			       { .fd = ch->o.cancel_fd > 0 ? ch->o.cancel_fd : -1,
				 .events = POLLIN } };
	int rc = rd_conn_poll(c, 0);

	if (rc != 0)
		return rc;
	if (poll(p, 2, ms) < 0 && errno != EINTR)
		return RD_ERR_SYSTEM;
	if (cancelled(ch))
		return RD_ERR_CANCELLED;
	return rd_conn_poll(c, 0);
}

static void remote_text(struct rd_conn *c, int rc, char *why, size_t cap)
{
	if (rc == RD_ERR_REMOTE) {
		char esc[512];
		const char *t = rd_conn_last_error(c);

		rd_display_escape(t, strlen(t), esc, sizeof(esc));
		snprintf(why, cap, "the server said: %s", esc);
	} else {
		snprintf(why, cap, "%s", rd_strerror(rc));
	}
}

/* Listen for the link (before the offer or the answer, so that a failure costs nothing). */
static int chat_listen(struct rd_chat *ch, uint16_t *port, char *why, size_t cap)
{
	int rc;

	if (ch->o.id == NULL) {
		snprintf(why, cap, "no TLS client key: direct links need one");
		return RD_ERR_STATE;
	}
	if ((rc = rd_peer_new(ch->o.id, ch->o.listen_host, &ch->p, port)) != 0)
		snprintf(why, cap, "cannot listen for a direct link: %s", rd_strerror(rc));
	return rc;
}

/* P2P_LISTEN with the port and (if asked) this machine's addresses. */
static int report(struct rd_chat *ch, struct rd_conn *c, uint16_t port, char *why, size_t cap)
{
	char addrs[RD_P2P_MAX_ADDRS - 1][RD_PEER_ADDR_BUF];
	struct rd_p2p_addr wire[RD_P2P_MAX_ADDRS - 1];
	struct rd_msg m, reply;
	size_t n = 0;
	uint16_t werr = 0;
	int rc;

	if (ch->o.report_port)
		port = ch->o.report_port;
	if (ch->o.report_addrs && rd_peer_local_addrs(port, addrs, RD_P2P_MAX_ADDRS - 1, &n) != 0)
		n = 0;
	for (size_t i = 0; i < n; i++)
		snprintf(wire[i].addr, sizeof(wire[i].addr), "%s", addrs[i]);
	rd_msg_init(&m, RD_MSG_P2P_LISTEN);
	m.u.p2p_listen.offer_id = ch->offer_id;
	m.u.p2p_listen.port = port;
	m.u.p2p_listen.naddrs = (uint32_t)n;
	m.u.p2p_listen.addrs = wire;
	rc = rd_conn_request(c, &m, &reply, &werr);
	if (rc == 0)
		rd_msg_clear(&reply);
	else
		remote_text(c, rc, why, cap);
	return rc;
}

static int wait_intro(struct rd_chat *ch, struct rd_conn *c, char *why, size_t cap)
{
	uint64_t end = rd_now_mono_ms() + RD_CHAT_INTRO_WAIT_MS;
	int rc = 0;

	while (rc == 0 && !ch->intro && !ch->peer_failed) {
		if (rd_now_mono_ms() >= end) {
			snprintf(why, cap, "no introduction from the server within %d s",
				 RD_CHAT_INTRO_WAIT_MS / 1000);
			return RD_ERR_TIMEOUT;
		}
		rc = serve(ch, c, SLICE_MS);
	}
	if (rc != 0)
		snprintf(why, cap, "%s", rd_strerror(rc));
	return rc;
}

/* The race (rd_peer), with the server connection in the same poll. */
static int race(struct rd_chat *ch, struct rd_conn *c, int chooser, char *why, size_t cap)
{
	struct pollfd fds[RD_PEER_POLLFDS + 1];
	const char *candp[RD_PEER_MAX_CANDIDATES];
	struct rd_peer_intro in = { 0 };
	size_t n;
	int ms, rc;

	for (size_t i = 0; i < ch->ncand; i++)
		candp[i] = ch->cand[i];
	in.offer_id = ch->offer_id;
	memcpy(in.token, ch->in.token, sizeof(in.token));
	in.nick = ch->nick;
	in.peer_nick = ch->in.peer;
	memcpy(in.peer_fp, ch->in.fp, sizeof(in.peer_fp));
	in.candidates = candp;
	in.ncandidates = ch->o.no_dial ? 0 : ch->ncand;
	in.chooser = chooser;
	in.timeout_ms = RD_PEER_TIMEOUT_MS + (chooser ? 0 : RD_CHAT_FOLLOWER_EXTRA_MS);
	in.cancel_fd = ch->o.cancel_fd;
	if ((rc = rd_peer_start(ch->p, &in)) != 0) {
		snprintf(why, cap, "cannot start the direct attempt: %s", rd_strerror(rc));
		return rc;
	}
	do {
		if ((rc = rd_peer_poll_set(ch->p, fds, RD_PEER_POLLFDS, &n, &ms)) != 0)
			break;
		fds[n].fd = rd_conn_fd(c);
		fds[n].events = POLLIN;
		fds[n].revents = 0;
		if (poll(fds, n + 1, ms < SLICE_MS ? ms : SLICE_MS) < 0 && errno != EINTR) {
			rc = RD_ERR_SYSTEM;
			break;
		}
		rc = rd_peer_step(ch->p, fds, n);
		if (rc == RD_ERR_AGAIN) {
			int crc = rd_conn_poll(c, 0);

			if (crc != 0)
				return crc;
			if (ch->peer_failed)
				break; /* the other side gave up: no link */
		}
	} while (rc == RD_ERR_AGAIN);
	if (rc != 0 && rc != RD_ERR_AGAIN)
		snprintf(why, cap, "%s",
			 rd_peer_reason(ch->p)[0] ? rd_peer_reason(ch->p) : rd_strerror(rc));
	return rc == RD_ERR_AGAIN ? RD_ERR_REMOTE : rc;
}

/* Listen was done: report, wait for the introduction, race. On failure the other side
 * is told (P2P_FAILED) unless it told us. */
static int connect_link(struct rd_chat *ch, struct rd_conn *c, uint16_t port, int chooser,
			char *why, size_t cap)
{
	int rc = report(ch, c, port, why, cap);

	if (rc == 0)
		rc = wait_intro(ch, c, why, cap);
	if (rc == 0 && !ch->peer_failed) {
		snprintf(ch->peer, sizeof(ch->peer), "%s", ch->in.peer);
		rc = race(ch, c, chooser, why, cap);
	}
	if (ch->peer_failed) {
		snprintf(why, cap, "%s", ch->peer_reason);
		return RD_ERR_REMOTE;
	}
	if (rc != 0 && rc != RD_ERR_CLOSED) {
		struct rd_msg m, reply;
		uint16_t werr;
		char line[RD_REASON_MAX + 1];

		snprintf(line, sizeof(line), "%s", why);
		rd_msg_init(&m, RD_MSG_P2P_FAILED);
		m.u.p2p_failed.offer_id = ch->offer_id;
		m.u.p2p_failed.reason = rd_str_c(line);
		if (rd_conn_request(c, &m, &reply, &werr) == 0)
			rd_msg_clear(&reply);
	}
	return rc;
}

static const char *outcome_text(int outcome)
{
	switch (outcome) {
	case RD_OFFER_REJECTED:
		return "said no";
	case RD_OFFER_EXPIRED:
		return "did not answer in time";
	case RD_OFFER_PEER_GONE:
		return "left";
	case RD_OFFER_CANCELLED:
		return "cancelled";
	default:
		return "could not take it";
	}
}

/* The end of a call: without a link, nothing stays open (listener, race). */
static int settle(struct rd_chat *ch, int rc)
{
	ch->up = rc == 0;
	if (rc != 0) {
		rd_peer_free(ch->p);
		ch->p = NULL;
	}
	return rc;
}

static int request(struct rd_chat *ch, struct rd_conn *c, const char *peer, const char *room,
		   char *why, size_t cap)
{
	size_t rn = room ? strlen(room) : 0;
	uint16_t port = 0, werr = 0;
	uint8_t outcome;
	int rc;

	why[0] = '\0';
	if (ch->started) {
		snprintf(why, cap, "this chat was started before");
		return RD_ERR_STATE;
	}
	ch->started = 1;
	snprintf(ch->peer, sizeof(ch->peer), "%s", peer);
	if ((rc = chat_listen(ch, &port, why, cap)) != 0)
		return rc;
	rc = rd_conn_offer(c, peer, RD_APP_CHAT, ch->o.answer_timeout_ms, room, rn, &ch->offer_id,
			   NULL, &werr);
	if (rc != 0) {
		remote_text(c, rc, why, cap);
		return rc;
	}
	while (rc == 0 && !ch->result)
		rc = serve(ch, c, SLICE_MS);
	if (rc == RD_ERR_CANCELLED) {
		(void)rd_conn_offer_cancel(c, ch->offer_id, &werr);
		snprintf(why, cap, "cancelled");
		return rc;
	}
	if (rc != 0) {
		snprintf(why, cap, "%s", rd_strerror(rc));
		return rc;
	}
	if (ch->result != RD_OFFER_ACCEPTED) {
		char esc[RD_NICK_BUF * 4];

		rd_display_escape(peer, strlen(peer), esc, sizeof(esc));
		snprintf(why, cap, "%s %s%s%s", esc, outcome_text(ch->result),
			 ch->result_reason[0] ? ": " : "", ch->result_reason);
		return RD_ERR_REMOTE;
	}
	rc = connect_link(ch, c, port, 1, why, cap);
	/* the offer was only the question: it ends here, link or not */
	if (rc != RD_ERR_CLOSED)
		(void)rd_conn_offer_end(c, ch->offer_id, 0, &outcome, &werr);
	return rc;
}

int rd_chat_request(struct rd_chat *ch, struct rd_conn *c, const char *peer, const char *room,
		    char *why, size_t cap)
{
	if (ch->started) {
		snprintf(why, cap, "this chat was started before");
		return RD_ERR_STATE;
	}
	return settle(ch, request(ch, c, peer, room, why, cap));
}

static int accept_chat(struct rd_chat *ch, struct rd_conn *c, uint32_t offer_id, const char *peer,
		       char *why, size_t cap)
{
	uint16_t port = 0, werr = 0;
	int rc;

	why[0] = '\0';
	if (ch->started) {
		snprintf(why, cap, "this chat was started before");
		return RD_ERR_STATE;
	}
	ch->started = 1;
	ch->offer_id = offer_id;
	snprintf(ch->peer, sizeof(ch->peer), "%s", peer);
	if ((rc = chat_listen(ch, &port, why, cap)) != 0) {
		char line[RD_REASON_MAX + 1];

		snprintf(line, sizeof(line), "%s", why);
		(void)rd_conn_offer_answer(c, offer_id, RD_ANSWER_REJECT, 0, line, NULL, 0, NULL,
					   &werr);
		return rc;
	}
	rc = rd_conn_offer_answer(c, offer_id, RD_ANSWER_ACCEPT, 0, NULL, NULL, 0, NULL, &werr);
	if (rc != 0) {
		remote_text(c, rc, why, cap);
		return rc;
	}
	return connect_link(ch, c, port, 0, why, cap);
}

int rd_chat_accept(struct rd_chat *ch, struct rd_conn *c, uint32_t offer_id, const char *peer,
		   char *why, size_t cap)
{
	if (ch->started) {
		snprintf(why, cap, "this chat was started before");
		return RD_ERR_STATE;
	}
	return settle(ch, accept_chat(ch, c, offer_id, peer, why, cap));
}

/* ---- the link ------------------------------------------------------------------------- */

static void link_down(struct rd_chat *ch)
{
	ch->up = 0;
}

int rd_chat_send(struct rd_chat *ch, const char *room, uint8_t kind, const void *data, size_t n)
{
	struct rd_msg m;
	int rc;

	if (!ch->up)
		return RD_ERR_STATE;
	if (n > RD_CHAT_MAX)
		return RD_ERR_INVAL;
	if (room != NULL && room[0]) {
		if (rd_room_check(room, strlen(room)) != 0)
			return RD_ERR_INVAL;
		rd_msg_init(&m, RD_MSG_ROOM_MSG);
		snprintf(m.u.room_msg.room, sizeof(m.u.room_msg.room), "%s", room);
		snprintf(m.u.room_msg.from, sizeof(m.u.room_msg.from), "%s", ch->nick);
		m.u.room_msg.kind = kind;
		m.u.room_msg.time_ms = rd_now_wall_ms();
		m.u.room_msg.data = (struct rd_bytes){ data, n };
	} else {
		rd_msg_init(&m, RD_MSG_PRIVATE_MSG);
		snprintf(m.u.private_msg.from, sizeof(m.u.private_msg.from), "%s", ch->nick);
		m.u.private_msg.kind = kind;
		m.u.private_msg.time_ms = rd_now_wall_ms();
		m.u.private_msg.data = (struct rd_bytes){ data, n };
	}
	if ((rc = rd_peer_send_msg(ch->p, &m, 0)) == 0)
		rc = rd_peer_process(ch->p);
	if (rc == RD_ERR_CLOSED || (rc != 0 && rc != RD_ERR_FULL && rc != RD_ERR_INVAL))
		link_down(ch);
	return rc;
}

int rd_chat_fd(const struct rd_chat *ch)
{
	return ch->up ? rd_peer_fd(ch->p) : -1;
}

int rd_chat_want_write(const struct rd_chat *ch)
{
	return ch->up && rd_peer_want_write(ch->p);
}

int rd_chat_process(struct rd_chat *ch)
{
	int rc;

	if (!ch->up)
		return RD_ERR_CLOSED;
	if ((rc = rd_peer_process(ch->p)) != 0)
		link_down(ch);
	return rc;
}

int rd_chat_next(struct rd_chat *ch, struct rd_msg *m)
{
	int rc;

	if (ch->p == NULL || ch->offer_id == 0)
		return RD_ERR_INCOMPLETE;
	for (;;) {
		if ((rc = rd_peer_next(ch->p, &ch->f)) != 0) {
			if (rc != RD_ERR_INCOMPLETE && rc != RD_ERR_STATE)
				link_down(ch);
			return rc == RD_ERR_STATE ? RD_ERR_INCOMPLETE : rc;
		}
		if (ch->f.hdr.type != RD_MSG_PRIVATE_MSG && ch->f.hdr.type != RD_MSG_ROOM_MSG)
			continue; /* (a later version's frame: not ours to show) */
		if ((rc = rd_msg_decode(ch->f.hdr.type, ch->f.payload, ch->f.len, m)) != 0) {
			link_down(ch);
			return RD_ERR_MALFORMED;
		}
		/* the peer is who the server introduced, whatever it wrote */
		if (m->type == RD_MSG_PRIVATE_MSG)
			snprintf(m->u.private_msg.from, sizeof(m->u.private_msg.from), "%s",
				 ch->peer);
		else
			snprintf(m->u.room_msg.from, sizeof(m->u.room_msg.from), "%s", ch->peer);
		return 0;
	}
}
