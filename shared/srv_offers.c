/* srv_offers.c - offers (PROTOCOL.md section 13): one client offers something opaque to one
 * user or to every other member of its room; each recipient accepts, rejects or holds; the
 * offerer hears every answer and the outcome; accepted offers may relay bytes.
 *
 * Design
 * ------
 * The table: s->offers, a list under s->offers_mtx (lock order: after rooms_mtx, before
 * c->mtx). An offer holds a reference on its offerer and on each recipient, so that a
 * frame can be queued to any of them after the lock is released. Every operation works
 * in two steps: under the lock it changes the table and encodes the frames it owes into an
 * outbox (memory only); after the lock it queues them and drops the references it took
 * out of the table. No socket call, no wait and no unref under offers_mtx.
 *
 * Threads: the handlers run on the sending client's reader thread; deadlines on the timer
 * thread (srv_offers_tick); departures on the departing client's reader thread
 * (srv_offers_client_gone). The relay (OFFER_DATA, OFFER_END) queues to each accepting
 * receiver's bulk class on the offerer's reader thread, which waits while a receiver's
 * bulk queue is over its high watermark: the server stops reading from the offerer, so a
 * slow receiver slows its sender and the server's memory stays bounded
 * (srv_client_queue_bulk).
 *
 * Across servers (PROTOCOL.md 15.8): an offer to a user on another server of the cluster
 * lives here, on its offerer's server, with a stand-in client for the recipient (remote = 1,
 * no link): what the table owes the stand-in is encoded as a message and handed to the
 * cluster's tell hook after the lock (out_send), and that server delivers it. There the
 * OFFER_IN is noted in s->proxies (offers_mtx), so that the recipient's OFFER_ANSWER,
 * P2P_LISTEN and P2P_FAILED go back through the offer_home hook, as OFFER_ANSWERED,
 * P2P_INTRO (its key and addresses as that server sees them) and P2P_FAILED; its own
 * server answers its requests (OK, OFFER_PENDING). Its relayed bytes (OFFER_DATA, then
 * OFFER_END and the outcome behind them) go to the cluster's relay hook on the offerer's
 * reader thread, no lock held; the hook may keep that thread while the offer's window is
 * full, as srv_client_queue_bulk does for a slow recipient here. On the recipient's server
 * they come back in through rd_server_relay_in, into the recipient's bulk class. When such
 * an offer leaves the table, relay_close is called after the lock (the outbox's `closed`),
 * before the outbox's frames are queued. Without a relay hook, OFFER_DATA to a stand-in is
 * refused with OFFER_STATE. A room offer has such a stand-in for each of the room's members
 * on the other servers (the who hook, add_remote_members), each answering and relayed to
 * on its own; there a relay that breaks ends that member's part only (relay_failed).
 *
 * The administrator's window shows offers in the activity column ("offer 7 to bob:
 * waiting", "offer 7 from alice: deciding") and its log (RD_EV_INFO), through the core's
 * usual events.
 */
#include "srv_internal.h"

#include <stdarg.h>
#include <strings.h>

#include "rd_display.h"
#include "rd_hash.h"

/* A recipient's state: 0 = no final answer yet (maybe held), else an RD_ANSWER_* that
 * ends its part (ACCEPT, REJECT, GONE, EXPIRED). */
struct rcpt {
	struct rd_client *c;
	char nick[RD_NICK_BUF];
	uint8_t answer;
	uint8_t done; /* after ACCEPT: it sent its receipt (RD_ANSWER_DONE) */
};

struct srv_offer {
	struct srv_offer *next;
	uint32_t id;
	struct rd_client *from;
	char from_nick[RD_NICK_BUF];
	uint16_t app_type;
	int decided;            /* every recipient answered and at least one accepted */
	uint64_t deadline_mono; /* answers are due by then (HOLD moves it) */
	uint64_t limit_mono;    /* no HOLD moves the deadline past this */
	char room[RD_ROOM_BUF]; /* "" = to one user */
	/* direct links (section 14), offers to one user only: side 0 the offerer, 1 the
	 * recipient; what each said in P2P_LISTEN */
	struct p2p_side {
		int listened;
		uint16_t port;
		uint32_t naddrs;
		struct rd_p2p_addr addrs[RD_P2P_MAX_ADDRS];
	} p2p[2];
	int introduced; /* P2P_INTRO sent to both */
	int relayed;    /* bytes went to a stand-in through the cluster's relay hook */
	size_t n;
	struct rcpt r[];
};

/* ---- the outbox: frames owed, sent after the lock --------------------------------------- */

struct out_item {
	struct rd_client *c; /* referenced */
	struct rd_buf b;     /* whole frames; to a stand-in (c->remote): one message's payload */
	int bulk;            /* 1: behind relayed data (bulk class), 0: events */
	uint16_t type;       /* to a stand-in: the message's type */
};

/* An offer of another server to a client of this one (offers_mtx): noted when its OFFER_IN
 * is delivered here, forgotten after its final OFFER_RESULT or when the client goes. */
struct srv_proxy {
	struct srv_proxy *next;
	uint32_t id;
	struct rd_client *c; /* not referenced: srv_offers_client_gone removes its entries */
	char from[RD_NICK_BUF];
};

#define PROXIES_MAX 1024u /* per server; past it the oldest is forgotten */

/* An activity text for the administrator's window ("" = clear it), applied after the lock:
 * it only replaces an empty text or an offer's, so a running upload keeps its own. */
struct act_item {
	struct rd_client *c; /* referenced */
	char text[64];
};

struct outbox {
	struct out_item *v;
	size_t n, cap;
	struct rd_client **drop; /* references to give back */
	size_t ndrop, capdrop;
	struct act_item *act;
	size_t nact, capact;
	struct rd_server *srv; /* set with closed */
	uint32_t *closed;      /* relayed offers that left the table: relay_close after the lock */
	size_t nclosed, capclosed;
};

#define ACT_PREFIX "offer "

static void out_activity(struct outbox *o, struct rd_client *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void out_activity(struct outbox *o, struct rd_client *c, const char *fmt, ...)
{
	va_list ap;

	if (o->nact == o->capact) {
		size_t ncap = o->capact ? o->capact * 2 : 8;
		struct act_item *p = realloc(o->act, ncap * sizeof(*p));
		if (!p)
			return; /* (only the window's column misses it) */
		o->act = p;
		o->capact = ncap;
	}
	va_start(ap, fmt);
	vsnprintf(o->act[o->nact].text, sizeof(o->act[o->nact].text), fmt, ap);
	va_end(ap);
	srv_client_ref(c);
	o->act[o->nact++].c = c;
}

static void apply_activity(struct rd_client *c, const char *text)
{
	int changed = 0;
	if (c->remote)
		return; /* (its own server's window shows it) */
	pthread_mutex_lock(&c->mtx);
	if (!c->activity[0] || strncmp(c->activity, ACT_PREFIX, strlen(ACT_PREFIX)) == 0) {
		changed = strcmp(c->activity, text) != 0;
		srv_copy_str(c->activity, sizeof(c->activity), text);
	}
	pthread_mutex_unlock(&c->mtx);
	if (changed)
		srv_emit(c->srv, RD_EV_ACTIVITY, c, "", text);
}

static void out_drop(struct outbox *o, struct rd_client *c)
{
	if (o->ndrop == o->capdrop) {
		size_t ncap = o->capdrop ? o->capdrop * 2 : 8;
		struct rd_client **p = realloc(o->drop, ncap * sizeof(*p));
		if (!p) {
			/* cannot defer: never the last reference while the caller holds c's
			 * own (the reader thread's), so dropping it here frees nothing */
			atomic_fetch_sub(&c->refs, 1);
			return;
		}
		o->drop = p;
		o->capdrop = ncap;
	}
	o->drop[o->ndrop++] = c;
}

/* Encode m for c into the outbox (a new reference on c). A frame that cannot be built is
 * logged and skipped: the peer then misses one notice, the table stays right. */
static void out_msg(struct outbox *o, struct rd_client *c, const struct rd_msg *m, uint32_t req,
		    int bulk)
{
	struct out_item *it;
	int rc;

	if (o->n == o->cap) {
		size_t ncap = o->cap ? o->cap * 2 : 8;
		struct out_item *p = realloc(o->v, ncap * sizeof(*p));
		if (!p) {
			RD_LOG(RD_LOG_ERROR, "offers: out of memory for a %s",
			       rd_msg_type_name(m->type));
			return;
		}
		o->v = p;
		o->cap = ncap;
	}
	it = &o->v[o->n];
	rd_buf_init(&it->b, 0);
	it->type = m->type;
	if (c->remote) {
		/* its own server answers its requests; the rest goes there as a message */
		if (m->type == RD_MSG_OK || m->type == RD_MSG_OFFER_PENDING)
			return;
		rc = rd_msg_encode(m, &it->b);
	} else {
		rc = rd_msg_frame(&it->b, m, req, 0);
	}
	if (rc != 0) {
		RD_LOG(RD_LOG_ERROR, "offers: cannot encode %s: %s", rd_msg_type_name(m->type),
		       rd_strerror(rc));
		rd_buf_free(&it->b);
		return;
	}
	srv_client_ref(c);
	it->c = c;
	it->bulk = bulk;
	o->n++;
}

/* To a stand-in: the message to its server, through the cluster (bounded wait). */
static void remote_send(const struct out_item *it)
{
	struct rd_server *s = it->c->srv;
	struct rd_msg m;

	if (!s->cluster.tell || rd_msg_decode(it->type, it->b.data, it->b.len, &m) != 0)
		return;
	if (s->cluster.tell(s->cluster.user, &m, it->c->nick) != 0)
		RD_LOG(RD_LOG_WARN, "offers: %s for %s: no server of the cluster holds it",
		       rd_msg_type_name(it->type), it->c->nick);
	rd_msg_clear(&m);
}

/* Queue everything owed, in order, then give back the references. No lock held. The relays
 * of offers that left the table are closed first, so that whoever hears the offer's end
 * finds its relay over. */
static void out_send(struct outbox *o, struct rd_client *producer)
{
	for (size_t i = 0; i < o->nclosed; i++)
		if (o->srv->cluster.relay_close)
			o->srv->cluster.relay_close(o->srv->cluster.user, o->closed[i]);
	for (size_t i = 0; i < o->n; i++) {
		struct out_item *it = &o->v[i];
		if (it->c->remote)
			remote_send(it);
		else if (it->bulk)
			(void)srv_client_queue_bulk(it->c, it->b.data, it->b.len, producer);
		else
			(void)srv_client_queue_event(it->c, it->b.data, it->b.len);
		rd_buf_free(&it->b);
		srv_client_unref(it->c);
	}
	for (size_t i = 0; i < o->nact; i++) {
		apply_activity(o->act[i].c, o->act[i].text);
		srv_client_unref(o->act[i].c);
	}
	for (size_t i = 0; i < o->ndrop; i++)
		srv_client_unref(o->drop[i]);
	free(o->v);
	free(o->drop);
	free(o->act);
	free(o->closed);
	memset(o, 0, sizeof(*o));
}

/* ---- the table (offers_mtx held) ------------------------------------------------------ */

static struct srv_offer *find_locked(struct rd_server *s, uint32_t id)
{
	for (struct srv_offer *o = s->offers; o; o = o->next)
		if (o->id == id)
			return o;
	return NULL;
}

/* Unlink and free o; its references go to the outbox. */
static void remove_locked(struct rd_server *s, struct srv_offer *o, struct outbox *ob)
{
	for (struct srv_offer **pp = &s->offers; *pp; pp = &(*pp)->next)
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	s->noffers--;
	if (o->relayed) {
		if (ob->nclosed == ob->capclosed) {
			size_t ncap = ob->capclosed ? ob->capclosed * 2 : 4;
			uint32_t *p = realloc(ob->closed, ncap * sizeof(*p));
			if (p) {
				ob->closed = p;
				ob->capclosed = ncap;
			}
		}
		if (ob->nclosed < ob->capclosed) /* (else its relay ends by its own checks) */
			ob->closed[ob->nclosed++] = o->id;
		ob->srv = s;
	}
	out_activity(ob, o->from, "%s", "");
	out_drop(ob, o->from);
	for (size_t i = 0; i < o->n; i++) {
		if (o->r[i].answer == 0 || o->r[i].answer == RD_ANSWER_ACCEPT)
			out_activity(ob, o->r[i].c, "%s", "");
		out_drop(ob, o->r[i].c);
	}
	free(o);
}

static uint32_t left_ms(const struct srv_offer *o, uint64_t now)
{
	return o->deadline_mono > now ? (uint32_t)(o->deadline_mono - now) : 0;
}

/* The peer named in the offerer's OFFER_RESULT: the one recipient, "" for a room. */
static const char *result_peer(const struct srv_offer *o)
{
	return o->room[0] ? "" : o->r[0].nick;
}

static size_t count(const struct srv_offer *o, uint8_t answer)
{
	size_t k = 0;
	for (size_t i = 0; i < o->n; i++)
		k += o->r[i].answer == answer;
	return k;
}

static void result_to(struct outbox *ob, struct rd_client *c, uint32_t req, uint32_t id,
		      uint8_t outcome, const char *peer, const char *reason, uint32_t accepted,
		      int bulk)
{
	struct rd_msg m;
	rd_msg_init(&m, RD_MSG_OFFER_RESULT);
	m.u.offer_result.offer_id = id;
	m.u.offer_result.outcome = outcome;
	srv_copy_str(m.u.offer_result.peer, sizeof(m.u.offer_result.peer), peer);
	m.u.offer_result.reason = rd_str_c(reason ? reason : "");
	m.u.offer_result.accepted = accepted;
	out_msg(ob, c, &m, req, bulk);
}

static void answered_to_offerer(struct outbox *ob, const struct srv_offer *o, const char *peer,
				uint8_t answer, uint64_t now, struct rd_str reason,
				struct rd_bytes data)
{
	struct rd_msg m;
	rd_msg_init(&m, RD_MSG_OFFER_ANSWERED);
	m.u.offer_answered.offer_id = o->id;
	srv_copy_str(m.u.offer_answered.peer, sizeof(m.u.offer_answered.peer), peer);
	m.u.offer_answered.answer = answer;
	m.u.offer_answered.expires_in_ms = left_ms(o, now);
	m.u.offer_answered.reason = reason;
	m.u.offer_answered.data = data;
	out_msg(ob, o->from, &m, 0, 0);
}

/* When no recipient is left without a final answer, the decision is over: accepted (by at
 * least one: the offer stays for the relay or OFFER_END), else rejected or expired (the
 * offer is finished). last_reason: the reason of the answer that ended it. Returns 1 when
 * o was removed. */
static int maybe_decide_locked(struct rd_server *s, struct srv_offer *o, const char *last_reason,
			       struct outbox *ob, char *event, size_t evn)
{
	size_t accepted;

	if (o->decided || count(o, 0) != 0)
		return 0;
	accepted = count(o, RD_ANSWER_ACCEPT);
	if (accepted) {
		o->decided = 1;
		result_to(ob, o->from, 0, o->id, RD_OFFER_ACCEPTED, result_peer(o), "",
			  (uint32_t)accepted, 0);
		out_activity(ob, o->from, ACT_PREFIX "%u: accepted by %zu", o->id, accepted);
		snprintf(event, evn, "offer %u accepted by %zu of %zu", o->id, accepted, o->n);
		return 0;
	}
	uint8_t outcome = count(o, RD_ANSWER_EXPIRED) ? RD_OFFER_EXPIRED : RD_OFFER_REJECTED;
	result_to(ob, o->from, 0, o->id, outcome, result_peer(o),
		  o->n == 1 && outcome == RD_OFFER_REJECTED ? last_reason : "", 0, 0);
	snprintf(event, evn, "offer %u %s", o->id,
		 outcome == RD_OFFER_EXPIRED ? "expired" : "rejected");
	remove_locked(s, o, ob);
	return 1;
}

/* ---- errors to the sender ---------------------------------------------------------------- */

static void reply_error(struct req *q, uint16_t code, const char *text)
{
	rd_client_send_error(q->c, q->f->hdr.req_id, q->f->hdr.type, code, text);
}

/* ---- offers of other servers to clients here (s->proxies) ----------------------------- */

static uint32_t p2p_candidates(const struct p2p_side *sd, const struct rd_client *c,
			       struct rd_p2p_addr *out);

/* Forget the entry (id, c), if any (offers_mtx held). */
static void proxy_forget_locked(struct rd_server *s, uint32_t id, const struct rd_client *c)
{
	for (struct srv_proxy **pp = &s->proxies; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id && (*pp)->c == c) {
			struct srv_proxy *p = *pp;
			*pp = p->next;
			free(p);
			s->nproxies--;
			return;
		}
}

int srv_offers_note_remote(struct rd_server *s, struct rd_client *t, const struct rd_msg *m)
{
	struct srv_proxy *p = NULL;

	if (m->type == RD_MSG_OFFER_IN && (p = calloc(1, sizeof(*p))) == NULL)
		RD_LOG(RD_LOG_ERROR, "offers: out of memory: %s cannot answer offer %u", t->nick,
		       m->u.offer_in.offer_id);
	pthread_mutex_lock(&s->offers_mtx);
	if (t->offers_gone) {
		pthread_mutex_unlock(&s->offers_mtx);
		free(p);
		return RD_ERR_NOT_FOUND;
	}
	if (p) {
		if (s->nproxies >= PROXIES_MAX) { /* forget the oldest (the list's tail) */
			struct srv_proxy **pp = &s->proxies;
			while ((*pp)->next)
				pp = &(*pp)->next;
			free(*pp);
			*pp = NULL;
			s->nproxies--;
		}
		p->id = m->u.offer_in.offer_id;
		p->c = t;
		srv_copy_str(p->from, sizeof(p->from), m->u.offer_in.from);
		p->next = s->proxies;
		s->proxies = p;
		s->nproxies++;
	} else if (m->type == RD_MSG_OFFER_RESULT) { /* (to a recipient: always the last word) */
		proxy_forget_locked(s, m->u.offer_result.offer_id, t);
	}
	pthread_mutex_unlock(&s->offers_mtx);
	return 0;
}

/* An OFFER_ANSWER, P2P_LISTEN or P2P_FAILED from q's client about an offer of another
 * server: sent there (offer_home) as OFFER_ANSWERED, P2P_INTRO or P2P_FAILED, and answered
 * here (OK, or OFFER_PENDING to a HOLD). 1 when it was handled (or an error sent), 0 when
 * the offer is not another server's. */
static int proxy_forward(struct req *q)
{
	struct rd_client *c = q->c;
	struct rd_server *s = c->srv;
	struct rd_p2p_addr addrs[RD_P2P_MAX_ADDRS];
	char from[RD_NICK_BUF] = "", text[200];
	struct rd_msg m, r;
	uint32_t id;
	int forget = 0;

	switch (q->m.type) {
	case RD_MSG_OFFER_ANSWER:
		id = q->m.u.offer_answer.offer_id;
		break;
	case RD_MSG_P2P_LISTEN:
		id = q->m.u.p2p_listen.offer_id;
		break;
	case RD_MSG_P2P_FAILED:
		id = q->m.u.p2p_failed.offer_id;
		break;
	default:
		return 0;
	}
	if (!s->cluster.offer_home)
		return 0;
	pthread_mutex_lock(&s->offers_mtx);
	for (struct srv_proxy *p = s->proxies; p; p = p->next)
		if (p->id == id && p->c == c) {
			srv_copy_str(from, sizeof(from), p->from);
			break;
		}
	pthread_mutex_unlock(&s->offers_mtx);
	if (!from[0])
		return 0;
	rd_msg_init(&r, RD_MSG_OK);
	r.u.ok.for_type = q->m.type;
	if (q->m.type == RD_MSG_OFFER_ANSWER) {
		const struct rd_msg_offer_answer *a = &q->m.u.offer_answer;
		if ((a->answer < RD_ANSWER_ACCEPT || a->answer > RD_ANSWER_HOLD) &&
		    a->answer != RD_ANSWER_DONE && a->answer != RD_ANSWER_RESUME)
			return 0; /* (answer_offer says what is wrong) */
		rd_msg_init(&m, RD_MSG_OFFER_ANSWERED);
		m.u.offer_answered.offer_id = id;
		srv_copy_str(m.u.offer_answered.peer, sizeof(m.u.offer_answered.peer), c->nick);
		m.u.offer_answered.answer = a->answer;
		m.u.offer_answered.expires_in_ms = a->hold_ms; /* HOLD: the time it wants */
		m.u.offer_answered.reason = a->reason;
		m.u.offer_answered.data = a->data;
		if (a->answer == RD_ANSWER_HOLD) {
			rd_msg_init(&r, RD_MSG_OFFER_PENDING);
			r.u.offer_pending.offer_id = id;
			r.u.offer_pending.expires_in_ms = a->hold_ms ? a->hold_ms :
								       s->cfg.offer_timeout_ms;
			r.u.offer_pending.recipients = 1;
		}
		forget = a->answer == RD_ANSWER_REJECT;
	} else if (q->m.type == RD_MSG_P2P_LISTEN) {
		const struct rd_msg_p2p_listen *l = &q->m.u.p2p_listen;
		struct p2p_side sd = { .listened = 1, .port = l->port };
		int has_fp;

		pthread_mutex_lock(&c->mtx);
		has_fp = c->has_fp;
		rd_msg_init(&m, RD_MSG_P2P_INTRO);
		memcpy(m.u.p2p_intro.fp, c->fp, sizeof(m.u.p2p_intro.fp));
		pthread_mutex_unlock(&c->mtx);
		if (l->port == 0) {
			reply_error(q, RD_E_MALFORMED, "P2P_LISTEN port is 1..65535");
			return 1;
		}
		if (!has_fp) {
			reply_error(q, RD_E_OFFER_STATE,
				    "direct links need TLS and a client key on the server "
				    "connection");
			return 1;
		}
		for (uint32_t i = 0; i < l->naddrs && i < RD_P2P_MAX_ADDRS - 1; i++)
			sd.addrs[sd.naddrs++] = l->addrs[i];
		m.u.p2p_intro.offer_id = id;
		m.u.p2p_intro.role = RD_P2P_FOLLOWER; /* (what it is; the offer's server decides) */
		srv_copy_str(m.u.p2p_intro.peer, sizeof(m.u.p2p_intro.peer), c->nick);
		m.u.p2p_intro.naddrs = p2p_candidates(&sd, c, addrs);
		m.u.p2p_intro.addrs = addrs;
	} else {
		rd_msg_init(&m, RD_MSG_P2P_FAILED);
		m.u.p2p_failed = q->m.u.p2p_failed;
	}
	if (s->cluster.offer_home(s->cluster.user, &m, from) != 0) {
		forget = 1;
		snprintf(text, sizeof(text), "offer %u: its offerer %s is no longer connected", id,
			 from);
		reply_error(q, RD_E_NO_SUCH_OFFER, text);
	} else {
		(void)rd_client_send_msg(c, &r, q->f->hdr.req_id);
	}
	if (forget) {
		pthread_mutex_lock(&s->offers_mtx);
		proxy_forget_locked(s, id, c);
		pthread_mutex_unlock(&s->offers_mtx);
	}
	return 1;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* 1 when c waits for offer id of another server (offers_mtx held). */
static int proxy_noted_locked(const struct rd_server *s, uint32_t id, const struct rd_client *c)
{
	for (const struct srv_proxy *p = s->proxies; p; p = p->next)
		if (p->id == id && p->c == c)
			return 1;
	return 0;
}

int rd_server_relay_in(struct rd_server *s, const char *to, uint32_t offer_id, const void *frame,
		       size_t n, int *last)
{
	struct rd_client *c;
	struct rd_frame_hdr h;
	const uint8_t *p = frame;
	int rc = 0, noted;

	if (last)
		*last = 0;
	if (s == NULL || to == NULL || last == NULL || (frame == NULL && n > 0))
		return RD_ERR_INVAL;
	if ((c = srv_get_by_nick(s, to)) == NULL)
		return RD_ERR_NOT_FOUND;
	pthread_mutex_lock(&s->offers_mtx);
	noted = !c->offers_gone && proxy_noted_locked(s, offer_id, c);
	pthread_mutex_unlock(&s->offers_mtx);
	if (!noted) {
		rc = RD_ERR_NOT_FOUND;
		goto out;
	}
	if (n == 0)
		goto out;
	/* another server's bytes: one whole frame of this offer, or nothing */
	if (rd_frame_hdr_decode(p, n, RD_MAX_PAYLOAD_HARD, &h) != 0 ||
	    (size_t)h.len != n - RD_FRAME_HEADER_SIZE || h.req_id != 0 ||
	    (h.type != RD_MSG_OFFER_DATA && h.type != RD_MSG_OFFER_END &&
	     h.type != RD_MSG_OFFER_RESULT) ||
	    (!(h.flags & RD_FLAG_COMPRESSED) &&
	     (h.len < 4 || be32(p + RD_FRAME_HEADER_SIZE) != offer_id))) {
		RD_LOG(RD_LOG_WARN,
		       "offers: a relayed frame for %s (offer %u) is not one of its "
		       "frames: dropped",
		       c->nick, offer_id);
		rc = RD_ERR_MALFORMED;
		goto out;
	}
	if ((rc = srv_client_queue_bulk(c, p, n, NULL)) != 0)
		goto out;
	if (h.type == RD_MSG_OFFER_RESULT) { /* (to a recipient: always the last word) */
		*last = 1;
		pthread_mutex_lock(&s->offers_mtx);
		proxy_forget_locked(s, offer_id, c);
		pthread_mutex_unlock(&s->offers_mtx);
	}
out:
	srv_client_unref(c);
	return rc;
}

/* The recipient gone: its offers of other servers hear it (offer_home, no lock held). */
static void proxy_client_gone(struct rd_client *c, const char *why)
{
	struct rd_server *s = c->srv;
	struct srv_proxy *mine = NULL;

	pthread_mutex_lock(&s->offers_mtx);
	for (struct srv_proxy **pp = &s->proxies; *pp;) {
		struct srv_proxy *p = *pp;
		if (p->c != c) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		s->nproxies--;
		p->next = mine;
		mine = p;
	}
	pthread_mutex_unlock(&s->offers_mtx);
	while (mine) {
		struct srv_proxy *p = mine;
		struct rd_msg m;
		mine = p->next;
		rd_msg_init(&m, RD_MSG_OFFER_ANSWERED);
		m.u.offer_answered.offer_id = p->id;
		srv_copy_str(m.u.offer_answered.peer, sizeof(m.u.offer_answered.peer), c->nick);
		m.u.offer_answered.answer = RD_ANSWER_GONE;
		m.u.offer_answered.reason = rd_str_c(why);
		if (s->cluster.offer_home)
			(void)s->cluster.offer_home(s->cluster.user, &m, p->from);
		free(p);
	}
}

/* ---- handlers (the client's reader thread) ------------------------------------------- */

/* A stand-in for nick, a client of another server of the cluster (one reference), or NULL
 * when out of memory. */
static struct rd_client *remote_client(struct rd_server *s, const char *nick)
{
	struct rd_client *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->remote = 1;
	c->srv = s;
	c->fd = -1;
	c->registered = 1;
	atomic_init(&c->refs, 1);
	srv_copy_str(c->nick, sizeof(c->nick), nick);
	pthread_mutex_init(&c->mtx, NULL);
	return c;
}

/* A room offer of c to `room`: its members on the other servers of the cluster (the who
 * hook; each still held there, the holds hook) join *out (n entries, c's local members) as
 * stand-ins, so that the offer reaches the room's members on every server (PROTOCOL.md
 * 15.8). No lock held. 0, or RD_ERR_NOMEM. A
 * cluster that cannot tell (Redis away) adds nobody: the offer goes to this server's members,
 * as a WHO then lists them; so does one that does not relay bytes (no relay hook). */
static int add_remote_members(struct rd_server *s, const struct rd_client *c, const char *room,
			      struct rd_client ***out, size_t *n)
{
	struct rd_who_entry *w = NULL;
	struct rd_client **bigger;
	size_t nw = 0;
	int rc = 0;

	if (!s->cluster.who || !s->cluster.tell || !s->cluster.relay ||
	    s->cluster.who(s->cluster.user, room, &w, &nw) != 0 || nw == 0)
		goto out;
	if (!(bigger = realloc(*out, (*n + nw) * sizeof(**out)))) {
		rc = RD_ERR_NOMEM;
		goto out;
	}
	*out = bigger;
	for (size_t i = 0; i < nw; i++) {
		struct rd_client *t;
		int seen = !w[i].nick[0] || !strcasecmp(w[i].nick, c->nick);

		for (size_t j = 0; j < *n && !seen; j++) /* (a nickname the cluster lists twice) */
			seen = !strcasecmp((*out)[j]->nick, w[i].nick);
		/* (an entry left behind while Redis was away: nobody would answer for it) */
		if (seen || (s->cluster.holds && s->cluster.holds(s->cluster.user, w[i].nick) != 1))
			continue;
		if (!(t = remote_client(s, w[i].nick))) {
			rc = RD_ERR_NOMEM;
			goto out;
		}
		(*out)[(*n)++] = t;
	}
out:
	free(w);
	return rc;
}

/* The recipients of a new offer, referenced, into *out (caller frees and unrefs). 0, or a
 * wire error already sent. */
static int pick_recipients(struct req *q, struct rd_client ***out, size_t *n, char *room)
{
	struct rd_client *c = q->c;
	struct rd_server *s = c->srv;
	const struct rd_msg_offer *m = &q->m.u.offer;
	char text[128];

	*out = NULL;
	*n = 0;
	room[0] = '\0';
	if (m->scope == RD_OFFER_TO_USER) {
		struct rd_client *t = m->to[0] ? srv_get_by_nick(s, m->to) : NULL;
		/* not here: on another server of the cluster? */
		if (!t && m->to[0] && s->cluster.holds && s->cluster.tell &&
		    s->cluster.holds(s->cluster.user, m->to) == 1 &&
		    !(t = remote_client(s, m->to))) {
			reply_error(q, RD_E_INTERNAL, NULL);
			return -1;
		}
		if (!t) {
			snprintf(text, sizeof(text), "no user '%.32s' is connected", m->to);
			reply_error(q, RD_E_NO_SUCH_USER, text);
			return -1;
		}
		if (t == c) { /* (nicknames match ignoring case) */
			srv_client_unref(t);
			reply_error(q, RD_E_OFFER_SELF, "you cannot make an offer to yourself");
			return -1;
		}
		if (!(*out = malloc(sizeof(**out)))) {
			srv_client_unref(t);
			reply_error(q, RD_E_INTERNAL, NULL);
			return -1;
		}
		(*out)[0] = t;
		*n = 1;
		return 0;
	}
	pthread_mutex_lock(&s->rooms_mtx);
	struct rd_room *r = c->room;
	if (r) {
		srv_copy_str(room, RD_ROOM_BUF, r->name);
		*out = calloc(r->n ? r->n : 1, sizeof(**out));
		for (size_t i = 0; *out && i < r->n; i++)
			if (r->members[i] != c) {
				srv_client_ref(r->members[i]);
				(*out)[(*n)++] = r->members[i];
			}
	}
	pthread_mutex_unlock(&s->rooms_mtx);
	if (r && *out && add_remote_members(s, c, room, out, n) != 0) {
		for (size_t i = 0; i < *n; i++)
			srv_client_unref((*out)[i]);
		free(*out);
		*out = NULL;
		*n = 0;
		reply_error(q, RD_E_INTERNAL, NULL);
		return -1;
	}
	if (!r) {
		reply_error(q, RD_E_NOT_IN_ROOM,
			    "join a room first: a room offer goes to the other members of your "
			    "room");
		return -1;
	}
	if (!*out) {
		reply_error(q, RD_E_INTERNAL, NULL);
		return -1;
	}
	if (*n == 0) {
		free(*out);
		*out = NULL;
		snprintf(text, sizeof(text), "nobody else is in room '%.32s' to offer to", room);
		reply_error(q, RD_E_OFFER_NOBODY, text);
		return -1;
	}
	return 0;
}

void srv_handle_offer(struct req *q)
{
	struct rd_client *c = q->c;
	struct rd_server *s = c->srv;
	const struct rd_msg_offer *m = &q->m.u.offer;
	struct rd_client **to = NULL;
	struct outbox ob = { 0 };
	struct srv_offer *o = NULL;
	char room[RD_ROOM_BUF], event[160] = "";
	size_t n = 0, waiting = 0;
	uint32_t first = 0;
	uint64_t now;

	if (m->scope != RD_OFFER_TO_USER && m->scope != RD_OFFER_TO_ROOM) {
		reply_error(q, RD_E_MALFORMED, "OFFER scope is 1 (a user) or 2 (your room)");
		return;
	}
	if (pick_recipients(q, &to, &n, room) != 0)
		return;
	o = calloc(1, sizeof(*o) + n * sizeof(o->r[0]));
	if (!o) {
		reply_error(q, RD_E_INTERNAL, NULL);
		goto out;
	}
	now = rd_now_mono_ms();
	uint32_t t = m->timeout_ms ? m->timeout_ms : s->cfg.offer_timeout_ms;
	if (t > s->cfg.offer_max_ms)
		t = s->cfg.offer_max_ms;
	o->deadline_mono = now + t;
	o->limit_mono = now + s->cfg.offer_max_ms;
	o->app_type = m->app_type;
	o->from = c;
	srv_copy_str(o->from_nick, sizeof(o->from_nick), c->nick);
	srv_copy_str(o->room, sizeof(o->room), room);
	o->n = n;
	for (size_t i = 0; i < n; i++) {
		o->r[i].c = to[i];
		srv_copy_str(o->r[i].nick, sizeof(o->r[i].nick), to[i]->nick);
	}

	pthread_mutex_lock(&s->offers_mtx);
	for (struct srv_offer *p = s->offers; p; p = p->next)
		if (p->from == c && !p->decided) {
			waiting++;
			if (!first || p->id < first)
				first = p->id;
		}
	if (waiting >= s->cfg.max_offers) {
		pthread_mutex_unlock(&s->offers_mtx);
		char text[200];
		snprintf(text, sizeof(text),
			 "you are waiting on offer %u: at most %u offer%s may wait for answers at "
			 "once (cancel it or wait for its outcome)",
			 first, s->cfg.max_offers, s->cfg.max_offers == 1 ? "" : "s");
		reply_error(q, RD_E_TOO_MANY_OFFERS, text);
		goto out;
	}
	do
		o->id = ++s->next_offer_id;
	while (o->id == 0 || find_locked(s, o->id));
	srv_client_ref(c);
	o->next = s->offers;
	s->offers = o;
	s->noffers++;

	struct rd_msg r;
	rd_msg_init(&r, RD_MSG_OFFER_PENDING);
	r.u.offer_pending.offer_id = o->id;
	r.u.offer_pending.expires_in_ms = left_ms(o, now);
	r.u.offer_pending.recipients = (uint32_t)n;
	out_msg(&ob, c, &r, q->f->hdr.req_id, 0);
	rd_msg_init(&r, RD_MSG_OFFER_IN);
	r.u.offer_in.offer_id = o->id;
	srv_copy_str(r.u.offer_in.from, sizeof(r.u.offer_in.from), c->nick);
	r.u.offer_in.app_type = o->app_type;
	r.u.offer_in.expires_in_ms = left_ms(o, now);
	srv_copy_str(r.u.offer_in.room, sizeof(r.u.offer_in.room), room);
	r.u.offer_in.descriptor = m->descriptor;
	for (size_t i = 0; i < n; i++) {
		if (o->r[i].c->offers_gone) { /* left between the pick and now */
			o->r[i].answer = RD_ANSWER_GONE;
			answered_to_offerer(&ob, o, o->r[i].nick, RD_ANSWER_GONE, now,
					    rd_str_c("disconnected"), (struct rd_bytes){ 0 });
			continue;
		}
		out_msg(&ob, o->r[i].c, &r, 0, 0);
		out_activity(&ob, o->r[i].c, ACT_PREFIX "%u from %s: deciding", o->id, c->nick);
	}
	out_activity(&ob, c, ACT_PREFIX "%u to %s%s: waiting", o->id, room[0] ? "room " : "",
		     room[0] ? room : o->r[0].nick);
	snprintf(event, sizeof(event), "offer %u (type 0x%04x) to %s%s: waiting for answers", o->id,
		 o->app_type, room[0] ? "room " : "", room[0] ? room : o->r[0].nick);
	(void)maybe_decide_locked(s, o, "disconnected", &ob, event, sizeof(event));
	pthread_mutex_unlock(&s->offers_mtx);
	o = NULL; /* (the table's now) */
	n = 0;    /* (the references went to the offer) */
	out_send(&ob, c);
	srv_emit(s, RD_EV_INFO, c, room, event);
out:
	for (size_t i = 0; i < n; i++)
		srv_client_unref(to[i]);
	free(to);
	free(o);
}

/* The answer a of c (a client here, or a stand-in for one of another server) to an offer
 * made here; req: its request's id. 0, or a wire error code with its text in text (nothing
 * sent). event: a line for the log, or "". */
static uint16_t answer_offer(struct rd_server *s, struct rd_client *c,
			     const struct rd_msg_offer_answer *a, uint32_t req, char *text,
			     size_t tn, char *event, size_t evn)
{
	struct outbox ob = { 0 };
	struct srv_offer *o;
	struct rcpt *me = NULL;
	uint64_t now = rd_now_mono_ms();

	if ((a->answer < RD_ANSWER_ACCEPT || a->answer > RD_ANSWER_HOLD) &&
	    a->answer != RD_ANSWER_DONE && a->answer != RD_ANSWER_RESUME) {
		snprintf(text, tn,
			 "OFFER_ANSWER answer is 1 (accept), 2 (reject), 3 (hold), 6 (done) or "
			 "7 (resume)");
		return RD_E_MALFORMED;
	}
	pthread_mutex_lock(&s->offers_mtx);
	o = find_locked(s, a->offer_id);
	for (size_t i = 0; o && i < o->n; i++)
		if (o->r[i].c == c)
			me = &o->r[i];
	if (!me) {
		pthread_mutex_unlock(&s->offers_mtx);
		snprintf(text, tn, "no offer %u is waiting for your answer", a->offer_id);
		return RD_E_NO_SUCH_OFFER;
	}
	if (a->answer == RD_ANSWER_DONE || a->answer == RD_ANSWER_RESUME) {
		/* a receipt: only from a recipient that accepted, once; a new account of what
		 * it needs (resume): from one that accepted, before its receipt, any number */
		if (me->answer != RD_ANSWER_ACCEPT || me->done) {
			pthread_mutex_unlock(&s->offers_mtx);
			snprintf(text, tn, "offer %u: %s", a->offer_id,
				 me->done ? "you said done already" : "you did not accept it");
			return RD_E_OFFER_STATE;
		}
		struct rd_msg r;

		me->done = a->answer == RD_ANSWER_DONE;
		answered_to_offerer(&ob, o, c->nick, a->answer, now, a->reason, a->data);
		if (a->answer == RD_ANSWER_RESUME)
			out_activity(&ob, c, ACT_PREFIX "%u from %s: resumed, through the server",
				     o->id, o->from_nick);
		else
			out_activity(&ob, c, "%s", "");
		rd_msg_init(&r, RD_MSG_OK);
		r.u.ok.for_type = RD_MSG_OFFER_ANSWER;
		if (req)
			out_msg(&ob, c, &r, req, 0);
		pthread_mutex_unlock(&s->offers_mtx);
		out_send(&ob, c->remote ? NULL : c);
		return 0;
	}
	if (me->answer) {
		pthread_mutex_unlock(&s->offers_mtx);
		snprintf(text, tn, "offer %u already has your answer", a->offer_id);
		return RD_E_OFFER_STATE;
	}
	if (a->answer == RD_ANSWER_HOLD) {
		uint64_t want = a->hold_ms ? a->hold_ms : s->cfg.offer_timeout_ms;
		uint64_t until = now + want < o->limit_mono ? now + want : o->limit_mono;
		struct rd_msg r;
		if (until > o->deadline_mono)
			o->deadline_mono = until;
		rd_msg_init(&r, RD_MSG_OFFER_PENDING);
		r.u.offer_pending.offer_id = o->id;
		r.u.offer_pending.expires_in_ms = left_ms(o, now);
		r.u.offer_pending.recipients = (uint32_t)o->n;
		out_msg(&ob, c, &r, req, 0);
		answered_to_offerer(&ob, o, c->nick, RD_ANSWER_HOLD, now, a->reason, a->data);
	} else {
		char reason[RD_REASON_MAX + 1];
		snprintf(reason, sizeof(reason), "%.*s", (int)a->reason.n,
			 a->reason.p ? a->reason.p : "");
		me->answer = a->answer;
		answered_to_offerer(&ob, o, c->nick, a->answer, now, a->reason, a->data);
		if (a->answer == RD_ANSWER_ACCEPT)
			out_activity(&ob, c, ACT_PREFIX "%u from %s: accepted", o->id,
				     o->from_nick);
		else
			out_activity(&ob, c, "%s", "");
		struct rd_msg r;
		rd_msg_init(&r, RD_MSG_OK);
		r.u.ok.for_type = RD_MSG_OFFER_ANSWER;
		if (req)
			out_msg(&ob, c, &r, req, 0);
		(void)maybe_decide_locked(s, o, reason, &ob, event, evn);
	}
	pthread_mutex_unlock(&s->offers_mtx);
	out_send(&ob, c->remote ? NULL : c);
	return 0;
}

void srv_handle_offer_answer(struct req *q)
{
	char text[160], event[160] = "";
	uint16_t code;

	if (proxy_forward(q))
		return;
	code = answer_offer(q->c->srv, q->c, &q->m.u.offer_answer, q->f->hdr.req_id, text,
			    sizeof(text), event, sizeof(event));
	if (code)
		reply_error(q, code, text);
	if (event[0])
		srv_emit(q->c->srv, RD_EV_INFO, q->c, "", event);
}

void srv_handle_offer_cancel(struct req *q)
{
	struct rd_client *c = q->c;
	struct rd_server *s = c->srv;
	struct outbox ob = { 0 };
	struct srv_offer *o;
	char text[160];

	pthread_mutex_lock(&s->offers_mtx);
	o = find_locked(s, q->m.u.offer_id.offer_id);
	if (!o || o->from != c) {
		pthread_mutex_unlock(&s->offers_mtx);
		snprintf(text, sizeof(text), "you have no offer %u", q->m.u.offer_id.offer_id);
		reply_error(q, RD_E_NO_SUCH_OFFER, text);
		return;
	}
	for (size_t i = 0; i < o->n; i++)
		if (o->r[i].answer == 0 || o->r[i].answer == RD_ANSWER_ACCEPT)
			result_to(&ob, o->r[i].c, 0, o->id, RD_OFFER_CANCELLED, o->from_nick, "", 0,
				  0);
	result_to(&ob, c, q->f->hdr.req_id, o->id, RD_OFFER_CANCELLED, result_peer(o), "",
		  (uint32_t)count(o, RD_ANSWER_ACCEPT), 0);
	snprintf(text, sizeof(text), "offer %u cancelled", o->id);
	remove_locked(s, o, &ob);
	pthread_mutex_unlock(&s->offers_mtx);
	out_send(&ob, c);
	srv_emit(s, RD_EV_INFO, c, "", text);
}

/* The accepting recipients of offer id, if q's client is its offerer and it is accepted
 * (else the error is sent and NULL returned). Referenced; *n of them (the array may be
 * empty but is not NULL). With remove, the offer leaves the table (its references to ob)
 * and *peer gets the name for the offerer's OFFER_RESULT. *relayed: bytes of the offer
 * went (or, without remove, now go) to a stand-in through the cluster's relay hook. */
static struct rd_client **relay_targets(struct req *q, uint32_t id, size_t *n, int remove,
					char *peer, struct outbox *ob, int *relayed)
{
	struct rd_server *s = q->c->srv;
	struct rd_client **v = NULL;
	struct outbox mine = { 0 };
	struct srv_offer *o;
	char text[200];
	uint16_t code = 0;

	*n = 0;
	*relayed = 0;
	pthread_mutex_lock(&s->offers_mtx);
	o = find_locked(s, id);
	if (!o || o->from != q->c) {
		code = RD_E_NO_SUCH_OFFER;
		snprintf(text, sizeof(text), "you have no offer %u", id);
	} else if (!o->decided) {
		code = RD_E_OFFER_STATE;
		snprintf(text, sizeof(text), "offer %u is not accepted (yet)", id);
	} else if (!remove && !o->room[0] && o->r[0].c->remote && !s->cluster.relay) {
		/* (a stand-in is only ever the one recipient of an offer to a user): the offer
		 * fails on both sides, once; what is still on its way gets NO_SUCH_OFFER */
		code = RD_E_OFFER_STATE;
		snprintf(text, sizeof(text),
			 "offer %u: %s is on another server of the cluster: bytes are not relayed "
			 "across servers (only a direct link can carry them)",
			 id, o->r[0].nick);
		result_to(&mine, o->r[0].c, 0, o->id, RD_OFFER_FAILED, o->from_nick,
			  "no direct link, and bytes are not relayed across servers", 0, 0);
		result_to(&mine, o->from, 0, o->id, RD_OFFER_FAILED, o->r[0].nick,
			  "no direct link, and bytes are not relayed across servers", 0, 0);
		remove_locked(s, o, &mine);
	} else if (!(v = calloc(o->n, sizeof(*v)))) {
		code = RD_E_INTERNAL;
		snprintf(text, sizeof(text), "out of memory");
	} else {
		for (size_t i = 0; i < o->n; i++)
			if (o->r[i].answer == RD_ANSWER_ACCEPT) {
				srv_client_ref(o->r[i].c);
				v[(*n)++] = o->r[i].c;
				if (!remove && o->r[i].c->remote)
					o->relayed = 1;
			}
		*relayed = o->relayed;
		if (peer)
			srv_copy_str(peer, RD_NICK_BUF, result_peer(o));
		if (remove)
			remove_locked(s, o, ob);
	}
	pthread_mutex_unlock(&s->offers_mtx);
	if (code)
		reply_error(q, code, text);
	out_send(&mine, q->c);
	return v;
}

/* The relay hook's keep_going: the offerer is still here and the server not stopping. */
static int offerer_here(void *arg)
{
	struct rd_client *c = arg;
	return !rd_link_dead(c->link) && !atomic_load(&c->srv->stopping);
}

static void rcpt_gone_locked(struct rd_server *s, struct srv_offer *o, struct rcpt *r,
			     const char *why, uint64_t now, struct outbox *ob, char *event,
			     size_t evn);

/* The relay of offer id (made by q's client) to `to` through the cluster broke (why). An
 * offer to one user fails on both sides, once; what is still on its way gets
 * NO_SUCH_OFFER. In a room offer only that member's part fails (it gets OFFER_RESULT(FAILED),
 * the offerer OFFER_ANSWERED(GONE, why)): the other members' go on. */
static void relay_failed(struct req *q, uint32_t id, const char *to, const char *why)
{
	struct rd_server *s = q->c->srv;
	struct outbox ob = { 0 };
	struct srv_offer *o;
	char text[320], event[160] = "";

	pthread_mutex_lock(&s->offers_mtx);
	o = find_locked(s, id);
	if (o && o->from == q->c && !o->room[0]) {
		result_to(&ob, o->r[0].c, 0, o->id, RD_OFFER_FAILED, o->from_nick, why, 0, 0);
		result_to(&ob, o->from, 0, o->id, RD_OFFER_FAILED, o->r[0].nick, why, 1, 0);
		remove_locked(s, o, &ob);
	} else if (o && o->from == q->c) {
		for (size_t i = 0; i < o->n; i++)
			if (o->r[i].c->remote && o->r[i].answer == RD_ANSWER_ACCEPT &&
			    !strcasecmp(o->r[i].nick, to)) {
				result_to(&ob, o->r[i].c, 0, o->id, RD_OFFER_FAILED, o->from_nick,
					  why, 0, 0);
				rcpt_gone_locked(s, o, &o->r[i], why, rd_now_mono_ms(), &ob, event,
						 sizeof(event));
				break;
			}
	}
	pthread_mutex_unlock(&s->offers_mtx);
	out_send(&ob, q->c);
	snprintf(text, sizeof(text), "offer %u to %s (on another server) failed: %s", id, to, why);
	srv_emit(s, RD_EV_INFO, q->c, "", text);
}

/* One whole frame for the stand-in `to` through the cluster's relay hook, on the offerer's
 * reader thread (which the hook may keep while the offer's window is full: the offerer is
 * spared the heartbeat timeout meanwhile, as for a slow receiver here). 0, or the hook's
 * error with why filled. */
static int relay_remote(struct req *q, uint32_t id, const struct rd_client *to,
			const struct rd_buf *b, int last, char *why, size_t cap)
{
	struct rd_client *c = q->c;
	struct rd_server *s = c->srv;
	int rc;

	pthread_mutex_lock(&c->mtx);
	c->relay_wait_mono = rd_now_mono_ms();
	pthread_mutex_unlock(&c->mtx);
	why[0] = '\0';
	rc = s->cluster.relay(s->cluster.user, id, c->nick, to->nick, b->data, b->len, last,
			      offerer_here, c, why, cap);
	pthread_mutex_lock(&c->mtx);
	c->relay_wait_mono = 0;
	if (c->ping_outstanding)
		c->ping_sent_mono = rd_now_mono_ms();
	pthread_mutex_unlock(&c->mtx);
	if (rc != 0 && !why[0])
		snprintf(why, cap, "the relay to %s's server failed: %s", to->nick,
			 rd_strerror(rc));
	return rc;
}

void srv_handle_offer_data(struct req *q)
{
	size_t n;
	struct rd_buf b;
	uint32_t id = q->m.u.offer_data.offer_id;
	int relayed;
	struct rd_client **v = relay_targets(q, id, &n, 0, NULL, NULL, &relayed);
	int rc;

	if (!v)
		return;
	rd_buf_init(&b, 0);
	/* the payload as received, compressed again if it came compressed (section 5) */
	rc = rd_frame_append(&b, RD_MSG_OFFER_DATA, 0, q->f->payload, q->f->len,
			     (q->f->hdr.flags & RD_FLAG_COMPRESSED) ? RD_FRAME_COMPRESS : 0);
	for (size_t i = 0; i < n; i++) {
		char why[RD_REASON_MAX + 1];

		if (rc == 0 && v[i]->remote) {
			int err = relay_remote(q, id, v[i], &b, 0, why, sizeof(why));
			/* (an offerer that left: its departure ends the offer, PEER_GONE) */
			if (err != 0 && !(err == RD_ERR_CANCELLED && rd_link_dead(q->c->link)))
				relay_failed(q, id, v[i]->nick, why);
		} else if (rc == 0) {
			(void)srv_client_queue_bulk(v[i], b.data, b.len, q->c);
		}
		srv_client_unref(v[i]);
	}
	rd_buf_free(&b);
	free(v);
}

/* OFFER_END, then OFFER_RESULT(outcome, why), to the stand-in `to` through the relay,
 * behind the relayed bytes. 0, or an error with broke filled. */
static int relay_end_remote(struct req *q, const struct rd_msg_offer_end *e,
			    const struct rd_client *to, uint8_t outcome, const char *why,
			    char *broke, size_t cap)
{
	struct rd_msg m;
	struct rd_buf b;
	int rc;

	rd_buf_init(&b, 0);
	rd_msg_init(&m, RD_MSG_OFFER_END);
	m.u.offer_end = *e;
	if ((rc = rd_msg_frame(&b, &m, 0, 0)) != 0 ||
	    (rc = relay_remote(q, e->offer_id, to, &b, 0, broke, cap)) != 0)
		goto out;
	rd_buf_free(&b);
	rd_buf_init(&b, 0);
	rd_msg_init(&m, RD_MSG_OFFER_RESULT);
	m.u.offer_result.offer_id = e->offer_id;
	m.u.offer_result.outcome = outcome;
	srv_copy_str(m.u.offer_result.peer, sizeof(m.u.offer_result.peer), q->c->nick);
	m.u.offer_result.reason = rd_str_c(why);
	if ((rc = rd_msg_frame(&b, &m, 0, 0)) != 0)
		goto out;
	rc = relay_remote(q, e->offer_id, to, &b, 1, broke, cap);
out:
	if (rc != 0 && !broke[0])
		snprintf(broke, cap, "%s", rd_strerror(rc));
	rd_buf_free(&b);
	return rc;
}

void srv_handle_offer_end(struct req *q)
{
	struct rd_client *c = q->c;
	const struct rd_msg_offer_end *e = &q->m.u.offer_end;
	struct outbox ob = { 0 };
	char peer[RD_NICK_BUF] = "";
	struct rd_msg m;
	size_t n;
	int relayed;
	struct rd_client **v = relay_targets(q, e->offer_id, &n, 1, peer, &ob, &relayed);
	uint8_t outcome = e->status == 0 ? RD_OFFER_COMPLETED : RD_OFFER_FAILED;
	const char *why = e->status == 0 ? "" : "the sender aborted";
	char text[96], broke[RD_REASON_MAX + 1] = "";

	if (!v)
		return;
	/* behind the relayed data: OFFER_END, then the outcome, in the bulk class (to a
	 * stand-in whose bytes were relayed: through the relay, behind them) */
	rd_msg_init(&m, RD_MSG_OFFER_END);
	m.u.offer_end = *e;
	for (size_t i = 0; i < n; i++) {
		if (relayed && v[i]->remote) {
			/* a failure: its server hears it through the bus, if it still can */
			if (relay_end_remote(q, e, v[i], outcome, why, broke, sizeof(broke)) == 0)
				continue;
			if (!peer[0]) { /* a room offer: that member's part failed, not the others' */
				result_to(&ob, v[i], 0, e->offer_id, RD_OFFER_FAILED, c->nick,
					  broke, 0, 0);
				continue;
			}
			outcome = RD_OFFER_FAILED;
			why = broke;
			result_to(&ob, v[i], 0, e->offer_id, outcome, c->nick, why, 0, 0);
			continue;
		}
		out_msg(&ob, v[i], &m, 0, 1);
		result_to(&ob, v[i], 0, e->offer_id, outcome, c->nick, why, 0, 1);
	}
	result_to(&ob, c, q->f->hdr.req_id, e->offer_id, outcome, peer, why, (uint32_t)n, 0);
	out_send(&ob, c);
	for (size_t i = 0; i < n; i++)
		srv_client_unref(v[i]);
	free(v);
	snprintf(text, sizeof(text), "offer %u %s", e->offer_id,
		 e->status == 0 ? "completed" : "failed");
	srv_emit(c->srv, RD_EV_INFO, c, "", text);
}

/* ---- direct links: P2P_LISTEN, P2P_INTRO, P2P_FAILED (section 14) ---------------------- */

/* Which side of o q's client is (0 the offerer, 1 the recipient of an offer to one user),
 * if o is in a state for a direct link; else the error is put in *code / text and -1. */
static int p2p_side_locked(const struct srv_offer *o, const struct rd_client *c, uint32_t id,
			   uint16_t *code, char *text, size_t tn)
{
	int part = o && o->from == c;

	for (size_t i = 0; o && !part && i < o->n; i++)
		part = o->r[i].c == c;
	if (!part) {
		*code = RD_E_NO_SUCH_OFFER;
		snprintf(text, tn, "you are not part of offer %u", id);
		return -1;
	}
	if (o->room[0]) {
		*code = RD_E_OFFER_STATE;
		snprintf(text, tn, "offer %u is to a room: direct links are for offers to one user",
			 id);
		return -1;
	}
	if (!o->decided || o->r[0].answer != RD_ANSWER_ACCEPT) {
		*code = RD_E_OFFER_STATE;
		snprintf(text, tn, "offer %u is not accepted (yet)", id);
		return -1;
	}
	return o->from == c ? 0 : 1;
}

/* The candidates of side k for the other: the address the server sees it on with the port
 * it listens on, then the ones it reported (without repeating the first). */
static uint32_t p2p_candidates(const struct p2p_side *sd, const struct rd_client *c,
			       struct rd_p2p_addr *out)
{
	uint32_t n = 0;

	if (c->remote) { /* its server made the list (proxy_forward) */
		for (uint32_t i = 0; i < sd->naddrs && n < RD_P2P_MAX_ADDRS; i++)
			out[n++] = sd->addrs[i];
		return n;
	}
	snprintf(out[n++].addr, RD_P2P_ADDR_BUF, strchr(c->ip, ':') ? "[%s]:%u" : "%s:%u", c->ip,
		 sd->port);
	for (uint32_t i = 0; i < sd->naddrs && n < RD_P2P_MAX_ADDRS; i++)
		if (strcmp(sd->addrs[i].addr, out[0].addr) != 0)
			out[n++] = sd->addrs[i];
	return n;
}

/* Both sides listen: one token, and to each the other's nickname, key and addresses. */
static void p2p_introduce_locked(struct srv_offer *o, struct outbox *ob)
{
	struct rd_client *c[2] = { o->from, o->r[0].c };
	const char *nick[2] = { o->from_nick, o->r[0].nick };
	struct rd_p2p_addr addrs[RD_P2P_MAX_ADDRS];
	uint8_t token[RD_TOKEN_SIZE];
	struct rd_msg m;

	if (rd_random(token, sizeof(token)) != 0) {
		RD_LOG(RD_LOG_ERROR, "offers: no random token for offer %u: no introduction",
		       o->id);
		return;
	}
	/* the window's activity column says which way the bytes are about to go */
	out_activity(ob, c[0], ACT_PREFIX "%u to %s: direct link being made", o->id, nick[1]);
	out_activity(ob, c[1], ACT_PREFIX "%u from %s: direct link being made", o->id, nick[0]);
	o->introduced = 1;
	for (int k = 0; k < 2; k++) {
		struct rd_client *peer = c[1 - k];

		rd_msg_init(&m, RD_MSG_P2P_INTRO);
		m.u.p2p_intro.offer_id = o->id;
		m.u.p2p_intro.role = k == 0 ? RD_P2P_CHOOSER : RD_P2P_FOLLOWER;
		srv_copy_str(m.u.p2p_intro.peer, sizeof(m.u.p2p_intro.peer), nick[1 - k]);
		pthread_mutex_lock(&peer->mtx);
		memcpy(m.u.p2p_intro.fp, peer->fp, sizeof(m.u.p2p_intro.fp));
		pthread_mutex_unlock(&peer->mtx);
		m.u.p2p_intro.naddrs = p2p_candidates(&o->p2p[1 - k], peer, addrs);
		m.u.p2p_intro.addrs = addrs;
		memcpy(m.u.p2p_intro.token, token, sizeof(token));
		out_msg(ob, c[k], &m, 0, 0);
	}
	memset(token, 0, sizeof(token));
}

/* c (a client here, or a stand-in) listens for a direct link for offer l->offer_id; req:
 * its request's id. 0, or a wire error code with its text (nothing sent). */
static uint16_t p2p_listen(struct rd_server *s, struct rd_client *c,
			   const struct rd_msg_p2p_listen *l, uint32_t req, char *text, size_t tn)
{
	struct outbox ob = { 0 };
	struct srv_offer *o;
	uint16_t code = 0;
	int side, has_fp;
	struct rd_msg ok;

	pthread_mutex_lock(&c->mtx);
	has_fp = c->has_fp;
	pthread_mutex_unlock(&c->mtx);
	pthread_mutex_lock(&s->offers_mtx);
	o = find_locked(s, l->offer_id);
	side = p2p_side_locked(o, c, l->offer_id, &code, text, tn);
	if (side >= 0 && (o->introduced || o->p2p[side].listened)) {
		code = RD_E_OFFER_STATE;
		snprintf(text, tn, "offer %u: you are already listening", o->id);
	} else if (side >= 0 && l->port == 0 && !c->remote) {
		code = RD_E_MALFORMED;
		snprintf(text, tn, "P2P_LISTEN port is 1..65535");
	} else if (side >= 0 && !has_fp) {
		code = RD_E_OFFER_STATE;
		snprintf(text, tn,
			 "direct links need TLS and a client key on the server connection");
	}
	if (code) {
		pthread_mutex_unlock(&s->offers_mtx);
		return code;
	}
	o->p2p[side].listened = 1;
	o->p2p[side].port = l->port;
	o->p2p[side].naddrs = 0;
	for (uint32_t i = 0; i < l->naddrs && i < RD_P2P_MAX_ADDRS - !c->remote; i++)
		o->p2p[side].addrs[o->p2p[side].naddrs++] = l->addrs[i];
	rd_msg_init(&ok, RD_MSG_OK);
	ok.u.ok.for_type = RD_MSG_P2P_LISTEN;
	out_msg(&ob, c, &ok, req, 0);
	if (o->p2p[0].listened && o->p2p[1].listened)
		p2p_introduce_locked(o, &ob);
	snprintf(text, tn, "offer %u: %s listens for a direct link%s", o->id, c->nick,
		 o->introduced ? "; both introduced" : "");
	pthread_mutex_unlock(&s->offers_mtx);
	out_send(&ob, c->remote ? NULL : c);
	return 0;
}

void srv_handle_p2p_listen(struct req *q)
{
	char text[160];
	uint16_t code;

	if (proxy_forward(q))
		return;
	code = p2p_listen(q->c->srv, q->c, &q->m.u.p2p_listen, q->f->hdr.req_id, text,
			  sizeof(text));
	if (code)
		reply_error(q, code, text);
	else
		srv_emit(q->c->srv, RD_EV_INFO, q->c, "", text);
}

/* c (a client here, or a stand-in) could make no direct link for offer f->offer_id: the
 * other side hears it. 0, or a wire error code with its text (nothing sent). */
static uint16_t p2p_failed(struct rd_server *s, struct rd_client *c,
			   const struct rd_msg_p2p_failed *f, uint32_t req, char *text, size_t tn)
{
	struct outbox ob = { 0 };
	struct srv_offer *o;
	uint16_t code = 0;
	int side;
	struct rd_msg m;

	pthread_mutex_lock(&s->offers_mtx);
	o = find_locked(s, f->offer_id);
	side = p2p_side_locked(o, c, f->offer_id, &code, text, tn);
	if (side < 0) {
		pthread_mutex_unlock(&s->offers_mtx);
		return code;
	}
	rd_msg_init(&m, RD_MSG_OK);
	m.u.ok.for_type = RD_MSG_P2P_FAILED;
	out_msg(&ob, c, &m, req, 0);
	rd_msg_init(&m, RD_MSG_P2P_FAILED);
	m.u.p2p_failed = *f;
	out_msg(&ob, side == 0 ? o->r[0].c : o->from, &m, 0, 0);
	out_activity(&ob, o->from, ACT_PREFIX "%u to %s: through the server", o->id, o->r[0].nick);
	out_activity(&ob, o->r[0].c, ACT_PREFIX "%u from %s: through the server", o->id,
		     o->from_nick);
	pthread_mutex_unlock(&s->offers_mtx);
	out_send(&ob, c->remote ? NULL : c);
	return 0;
}

void srv_handle_p2p_failed(struct req *q)
{
	const struct rd_msg_p2p_failed *f = &q->m.u.p2p_failed;
	char text[300], esc[RD_REASON_MAX * 4 + 8];
	uint16_t code;

	if (proxy_forward(q))
		return;
	code = p2p_failed(q->c->srv, q->c, f, q->f->hdr.req_id, text, sizeof(text));
	if (code) {
		reply_error(q, code, text);
		return;
	}
	rd_display_escape(f->reason.p, f->reason.n, esc, sizeof(esc));
	snprintf(text, sizeof(text), "offer %u: no direct link from %s: %.100s", f->offer_id,
		 q->c->nick, esc);
	srv_emit(q->c->srv, RD_EV_INFO, q->c, "", text);
}

/* ---- deadlines (timer thread) and departures (the departing client's thread) ---------- */

void srv_offers_tick(struct rd_server *s, uint64_t now)
{
	struct outbox ob = { 0 };
	char event[160] = "";

	pthread_mutex_lock(&s->offers_mtx);
	for (struct srv_offer *o = s->offers, *next; o; o = next) {
		next = o->next;
		if (o->decided || now < o->deadline_mono)
			continue;
		for (size_t i = 0; i < o->n; i++) {
			if (o->r[i].answer)
				continue;
			o->r[i].answer = RD_ANSWER_EXPIRED;
			out_activity(&ob, o->r[i].c, "%s", "");
			result_to(&ob, o->r[i].c, 0, o->id, RD_OFFER_EXPIRED, o->from_nick, "", 0,
				  0);
			answered_to_offerer(&ob, o, o->r[i].nick, RD_ANSWER_EXPIRED, now,
					    rd_str_c("no answer in time"), (struct rd_bytes){ 0 });
		}
		(void)maybe_decide_locked(s, o, "", &ob, event, sizeof(event));
	}
	pthread_mutex_unlock(&s->offers_mtx);
	out_send(&ob, NULL);
}

/* The recipient r of o is gone (why): the offerer hears it; o is decided, or removed when
 * nobody who accepted is left. */
static void rcpt_gone_locked(struct rd_server *s, struct srv_offer *o, struct rcpt *r,
			     const char *why, uint64_t now, struct outbox *ob, char *event,
			     size_t evn)
{
	if (r->answer && r->answer != RD_ANSWER_ACCEPT)
		return;
	r->answer = RD_ANSWER_GONE;
	answered_to_offerer(ob, o, r->nick, RD_ANSWER_GONE, now, rd_str_c(why),
			    (struct rd_bytes){ 0 });
	if (!o->decided) {
		(void)maybe_decide_locked(s, o, why, ob, event, evn);
	} else if (count(o, RD_ANSWER_ACCEPT) == 0) {
		result_to(ob, o->from, 0, o->id, RD_OFFER_PEER_GONE, result_peer(o), why, 0, 0);
		remove_locked(s, o, ob);
	}
}

void srv_offers_client_gone(struct rd_client *c, const char *reason)
{
	struct rd_server *s = c->srv;
	struct outbox ob = { 0 };
	char why[RD_REASON_MAX + 1], event[160] = "";
	uint64_t now = rd_now_mono_ms();

	snprintf(why, sizeof(why), "disconnected: %s", reason ? reason : "connection lost");
	pthread_mutex_lock(&s->offers_mtx);
	c->offers_gone = 1;
	for (struct srv_offer *o = s->offers, *next; o; o = next) {
		next = o->next;
		if (o->from == c) {
			for (size_t i = 0; i < o->n; i++)
				if (o->r[i].answer == 0 || o->r[i].answer == RD_ANSWER_ACCEPT)
					result_to(&ob, o->r[i].c, 0, o->id, RD_OFFER_PEER_GONE,
						  o->from_nick, why, 0, 0);
			remove_locked(s, o, &ob);
			continue;
		}
		for (size_t i = 0; i < o->n; i++)
			if (o->r[i].c == c) {
				rcpt_gone_locked(s, o, &o->r[i], why, now, &ob, event,
						 sizeof(event));
				break;
			}
	}
	pthread_mutex_unlock(&s->offers_mtx);
	out_send(&ob, NULL);
	proxy_client_gone(c, why);
}

int rd_server_offer_home(struct rd_server *s, const struct rd_msg *m, const char *offerer)
{
	struct rd_client *c = NULL;
	struct srv_offer *o;
	const char *peer = NULL;
	char text[300], event[160] = "";
	uint16_t code = 0;
	uint32_t id;

	if (s == NULL || m == NULL || offerer == NULL)
		return RD_ERR_INVAL;
	switch (m->type) {
	case RD_MSG_OFFER_ANSWERED:
		id = m->u.offer_answered.offer_id;
		peer = m->u.offer_answered.peer;
		break;
	case RD_MSG_P2P_INTRO:
		id = m->u.p2p_intro.offer_id;
		peer = m->u.p2p_intro.peer;
		break;
	case RD_MSG_P2P_FAILED:
		id = m->u.p2p_failed.offer_id;
		break;
	default:
		return RD_ERR_INVAL;
	}
	/* the stand-in for the recipient `peer` of offer id, made here by offerer (a P2P_FAILED
	 * names nobody: an offer to one user) */
	pthread_mutex_lock(&s->offers_mtx);
	o = find_locked(s, id);
	struct rcpt *rp = NULL;
	for (size_t i = 0; o && !rp && i < o->n; i++)
		if (o->r[i].c->remote && (peer ? !strcasecmp(o->r[i].nick, peer) : !o->room[0]))
			rp = &o->r[i];
	if (rp && !strcasecmp(o->from_nick, offerer)) {
		c = rp->c;
		srv_client_ref(c);
		if (m->type == RD_MSG_OFFER_ANSWERED &&
		    m->u.offer_answered.answer == RD_ANSWER_GONE) {
			struct outbox ob = { 0 };
			char why[RD_REASON_MAX + 1];
			snprintf(why, sizeof(why), "%.*s", (int)m->u.offer_answered.reason.n,
				 m->u.offer_answered.reason.p ? m->u.offer_answered.reason.p : "");
			rcpt_gone_locked(s, o, rp, why, rd_now_mono_ms(), &ob, event,
					 sizeof(event));
			pthread_mutex_unlock(&s->offers_mtx);
			out_send(&ob, NULL);
			goto out;
		}
	}
	pthread_mutex_unlock(&s->offers_mtx);
	if (c == NULL)
		return RD_ERR_NOT_FOUND;
	if (m->type == RD_MSG_OFFER_ANSWERED) {
		const struct rd_msg_offer_answered *a = &m->u.offer_answered;
		struct rd_msg_offer_answer an = { .offer_id = id,
						  .answer = a->answer,
						  .hold_ms = a->expires_in_ms,
						  .reason = a->reason,
						  .data = a->data };
		code = answer_offer(s, c, &an, 0, text, sizeof(text), event, sizeof(event));
	} else if (m->type == RD_MSG_P2P_INTRO) {
		struct rd_msg_p2p_listen l = { .offer_id = id,
					       .naddrs = m->u.p2p_intro.naddrs,
					       .addrs = m->u.p2p_intro.addrs };
		pthread_mutex_lock(&c->mtx);
		memcpy(c->fp, m->u.p2p_intro.fp, sizeof(c->fp));
		c->has_fp = 1;
		pthread_mutex_unlock(&c->mtx);
		if ((code = p2p_listen(s, c, &l, 0, text, sizeof(text))) == 0)
			srv_copy_str(event, sizeof(event), text);
	} else {
		code = p2p_failed(s, c, &m->u.p2p_failed, 0, text, sizeof(text));
	}
	if (code)
		RD_LOG(RD_LOG_WARN, "offers: %s from %s (on another server) for offer %u: %s",
		       rd_msg_type_name(m->type), c->nick, id, text);
out:
	if (event[0])
		srv_emit(s, RD_EV_INFO, NULL, "", event);
	srv_client_unref(c);
	return 0;
}

void srv_offers_free(struct rd_server *s)
{
	struct outbox ob = { 0 };
	pthread_mutex_lock(&s->offers_mtx);
	while (s->offers)
		remove_locked(s, s->offers, &ob);
	while (s->proxies) {
		struct srv_proxy *p = s->proxies;
		s->proxies = p->next;
		free(p);
	}
	s->nproxies = 0;
	pthread_mutex_unlock(&s->offers_mtx);
	for (size_t i = 0; i < ob.nact; i++)
		srv_client_unref(ob.act[i].c);
	for (size_t i = 0; i < ob.ndrop; i++)
		srv_client_unref(ob.drop[i]);
	free(ob.v);
	free(ob.drop);
	free(ob.act);
	free(ob.closed); /* (the cluster's relays stop with it) */
}
