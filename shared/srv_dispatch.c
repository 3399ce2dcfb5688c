/* srv_dispatch.c - decode, then dispatch: the state check comes first (what a client may
 * send in its state), then the payload is decoded, then one handler per core message.
 */
#include "srv_internal.h"

static void reply_error(struct req *q, uint16_t code, const char *text)
{
	rd_client_send_error(q->c, q->f->hdr.req_id, q->f->hdr.type, code, text);
}

/* A master past its threshold sends the client elsewhere (PROTOCOL.md section 15):
 * REDIRECT to a client that follows redirects, ERROR 205 SERVER_FULL to one that does
 * not; then it closes. Returns 1 when it did. */
static int route_elsewhere(struct req *q)
{
	struct rd_server *s = q->c->srv;
	struct rd_cluster_route to;
	struct rd_msg r;
	unsigned others;
	char text[2 * RD_HOST_MAX + RD_REASON_MAX + 64];

	if (s->cluster.route == NULL)
		return 0;
	pthread_mutex_lock(&s->clients_mtx);
	others = s->nclients > 0 ? s->nclients - 1 : 0;
	pthread_mutex_unlock(&s->clients_mtx);
	memset(&to, 0, sizeof(to));
	if (s->cluster.route(s->cluster.user, others, &to) != 1 || to.host[0] == '\0' ||
	    to.port == 0)
		return 0;
	to.host[RD_HOST_MAX] = '\0';
	to.reason[RD_REASON_MAX] = '\0';
	if (!(q->m.u.hello.features & RD_FEAT_REDIRECT)) {
		reply_error(q, RD_E_SERVER_FULL,
			    "this server is full and your client does not follow redirects");
		srv_emit(s, RD_EV_REFUSED, q->c, "",
			 "full, and the client does not follow redirects");
		srv_begin_close(q->c, 0, "server full");
		return 1;
	}
	rd_msg_init(&r, RD_MSG_REDIRECT);
	memcpy(r.u.redirect.host, to.host, sizeof(to.host));
	r.u.redirect.port = to.port;
	r.u.redirect.temporary = to.temporary ? 1 : 0;
	r.u.redirect.reason = rd_str_c(to.reason);
	memcpy(r.u.redirect.fp, to.fp, sizeof(to.fp));
	rd_client_send_msg(q->c, &r, q->f->hdr.req_id);
	snprintf(text, sizeof(text), "%s:%u redirected to %s:%u (%s)", q->c->ip, q->c->port,
		 to.host, to.port, to.reason);
	srv_emit(s, RD_EV_INFO, q->c, "", text);
	srv_begin_close(q->c, 0, "redirected");
	return 1;
}

static void handle_hello(struct req *q)
{
	struct rd_server *s = q->c->srv;
	const struct rd_msg_hello *h = &q->m.u.hello;
	struct rd_msg r;

	if (q->c->hello_done) {
		reply_error(q, RD_E_UNEXPECTED, "HELLO was already received");
		return;
	}
	if (h->version_min > RD_PROTO_VERSION || h->version_max < RD_PROTO_VERSION) {
		char text[96];
		snprintf(text, sizeof(text), "this server speaks protocol version %u only",
			 RD_PROTO_VERSION);
		reply_error(q, RD_E_BAD_VERSION, text);
		srv_begin_close(q->c, 0, "protocol version mismatch");
		return;
	}
	if (route_elsewhere(q))
		return;
	q->c->hello_done = 1;
	q->c->quiet = (h->features & s->cfg.features & RD_FEAT_QUIET) != 0;
	rd_msg_init(&r, RD_MSG_HELLO_OK);
	r.u.hello_ok.version = RD_PROTO_VERSION;
	r.u.hello_ok.features = s->cfg.features;
	r.u.hello_ok.max_payload = s->cfg.max_payload;
	r.u.hello_ok.ping_interval_ms = s->cfg.ping_interval_ms;
	r.u.hello_ok.ping_timeout_ms = s->cfg.ping_timeout_ms;
	srv_copy_str(r.u.hello_ok.software, sizeof(r.u.hello_ok.software), s->cfg.software);
	rd_client_send_msg(q->c, &r, q->f->hdr.req_id);
}

static void handle_auth(struct req *q)
{
	struct rd_client *c = q->c;
	struct rd_server *s = c->srv;
	const struct rd_msg_auth *a = &q->m.u.auth;
	char why[RD_REASON_MAX + 1] = "";
	uint16_t code;
	struct rd_msg r;

	if (c->registered) {
		reply_error(q, RD_E_ALREADY_REGISTERED, "AUTH comes before NICK");
		return;
	}
	if (!c->hello_done) {
		reply_error(q, RD_E_UNEXPECTED, "send HELLO before AUTH");
		return;
	}
	if (!s->hooks.on_auth) {
		reply_error(q, RD_E_UNEXPECTED, "this server asks for no password or invitation");
		return;
	}
	if (s->cfg.plain) { /* a secret never travels in clear */
		reply_error(q, RD_E_TLS_REQUIRED, "AUTH needs a TLS connection");
		return;
	}
	code = s->hooks.on_auth(s, c, a->kind, a->secret.p, a->secret.n, why, sizeof(why),
				s->hooks.user);
	if (code != 0) {
		reply_error(q, code, why[0] ? why : NULL);
		return;
	}
	pthread_mutex_lock(&c->mtx);
	c->admitted = 1;
	pthread_mutex_unlock(&c->mtx);
	rd_msg_init(&r, RD_MSG_OK);
	r.u.ok.for_type = RD_MSG_AUTH;
	rd_client_send_msg(c, &r, q->f->hdr.req_id);
}

static void handle_nick(struct req *q)
{
	struct rd_client *c = q->c;
	struct rd_server *s = c->srv;
	const char *nick = q->m.u.nick.nick;
	uint16_t code;
	struct rd_msg r;

	if (c->registered) {
		reply_error(q, RD_E_ALREADY_REGISTERED, NULL);
		return;
	}
	if (!c->hello_done) {
		reply_error(q, RD_E_UNEXPECTED, "send HELLO before NICK");
		return;
	}
	if ((code = rd_nick_check(nick, strlen(nick))) != 0) {
		const char *why =
			code == RD_E_NICK_LENGTH ?
				"a nickname has 1 to 32 characters" :
			code == RD_E_NICK_RESERVED ?
				"that nickname is reserved" :
				"a nickname uses letters, digits, '_', '.', '-' and starts "
				"with a letter, digit or '_'";
		reply_error(q, code, why);
		return;
	}
	if (s->hooks.on_nick) {
		char why[RD_REASON_MAX + 1] = "";
		uint8_t fp[RD_TLS_FP_LEN];
		int has_fp;

		pthread_mutex_lock(&c->mtx);
		has_fp = c->has_fp;
		memcpy(fp, c->fp, sizeof(fp));
		pthread_mutex_unlock(&c->mtx);
		code = s->hooks.on_nick(s, c, nick, has_fp ? fp : NULL, why, sizeof(why),
					s->hooks.user);
		if (code != 0) {
			reply_error(q, code, why[0] ? why : NULL);
			return;
		}
	}
	pthread_mutex_lock(&s->clients_mtx);
	if (srv_find_nick_locked(s, nick)) {
		pthread_mutex_unlock(&s->clients_mtx);
		reply_error(q, RD_E_NICK_TAKEN, "that nickname is taken");
		return;
	}
	if (s->cluster.nick_claim) {
		/* free here; now across the cluster (no lock held while the cluster answers),
		 * then here again, since another of our clients may have taken it meanwhile */
		char why[RD_REASON_MAX + 1] = "";
		pthread_mutex_unlock(&s->clients_mtx);
		if ((code = s->cluster.nick_claim(s->cluster.user, nick, why, sizeof(why))) != 0) {
			reply_error(q, code, why[0] ? why : NULL);
			return;
		}
		pthread_mutex_lock(&s->clients_mtx);
		if (srv_find_nick_locked(s, nick)) {
			pthread_mutex_unlock(&s->clients_mtx);
			if (s->cluster.nick_release)
				s->cluster.nick_release(s->cluster.user, nick);
			reply_error(q, RD_E_NICK_TAKEN, "that nickname is taken");
			return;
		}
		c->nick_claimed = 1;
	}
	srv_copy_str(c->nick, sizeof(c->nick), nick);
	/* The first PING is due one interval from now. Set under the same lock hold as
	 * `registered`, so the timer never sees a registered client without its deadline. */
	pthread_mutex_lock(&c->mtx);
	c->next_ping_mono = rd_now_mono_ms() + s->cfg.ping_interval_ms;
	c->rate_mono = rd_now_mono_ms();
	c->rate_milli = s->cfg.msg_rate * 2000u; /* a full bucket: two seconds' worth */
	pthread_mutex_unlock(&c->mtx);
	c->registered = 1;
	s->nregistered++;
	pthread_mutex_unlock(&s->clients_mtx);

	rd_msg_init(&r, RD_MSG_WELCOME);
	srv_copy_str(r.u.welcome.nick, sizeof(r.u.welcome.nick), c->nick);
	r.u.welcome.client_id = c->id;
	r.u.welcome.server_time_ms = rd_now_wall_ms();
	rd_client_send_msg(c, &r, q->f->hdr.req_id);
	/* only now does anybody hear of this client */
	srv_presence(s, NULL, c, RD_PRESENCE_CONNECTED, c->nick, "", NULL);
	srv_emit(s, RD_EV_REGISTERED, c, "", NULL);
	if (s->hooks.on_register)
		s->hooks.on_register(s, c, s->hooks.user);
}

/* May c see room (its own, or one the application lets it enter without a room key)? */
static int room_visible(struct rd_client *c, const char *room)
{
	struct rd_server *s = c->srv;
	int mine;

	if (!s->hooks.may_enter)
		return 1;
	pthread_mutex_lock(&s->rooms_mtx);
	mine = c->room && rd_name_eq(c->room->name, room);
	pthread_mutex_unlock(&s->rooms_mtx);
	return mine || s->hooks.may_enter(s, c, room, NULL, 0, s->hooks.user);
}

static void handle_rooms(struct req *q)
{
	struct rd_server *s = q->c->srv;
	struct rd_msg r;
	struct rd_room_entry *items = NULL;
	size_t n = 0, kept = 0;

	if (rd_server_rooms(s, &items, &n) != 0) {
		reply_error(q, RD_E_INTERNAL, NULL);
		return;
	}
	for (size_t i = 0; i < n; i++) /* a room it may not see does not exist for it */
		if (room_visible(q->c, items[i].name))
			items[kept++] = items[i];
	n = kept;
	if (s->cluster.room_counts)
		s->cluster.room_counts(s->cluster.user, items, n);
	rd_msg_init(&r, RD_MSG_ROOM_LIST);
	r.u.room_list.count = (uint32_t)n;
	r.u.room_list.items = items;
	rd_client_send_msg(q->c, &r, q->f->hdr.req_id);
	free(items);
}

static void direct_at_join_locked(struct rd_room *r, int *direct, int *off);
static void direct_after_join(struct rd_client *c, struct rd_room *r, int direct, int off);

/* JOIN, and JOIN_KEY with the room key (key, n). */
static void join_room(struct req *q, const char *room, const uint8_t *key, size_t n)
{
	struct rd_client *c = q->c;
	struct rd_server *s = c->srv;
	struct rd_room *r = srv_room_find(s, room);
	struct rd_msg m;
	uint32_t members;
	int direct = 0, off = 0;

	/* a room it may not enter answers exactly as one that does not exist */
	if (!r || (s->hooks.may_enter && c->room != r &&
		   !s->hooks.may_enter(s, c, r->name, key, n, s->hooks.user))) {
		char text[96];
		snprintf(text, sizeof(text), "no room named '%.32s' (the list: roomdrop rooms)",
			 room);
		reply_error(q, RD_E_NO_SUCH_ROOM, text);
		return;
	}
	if (c->room == r) { /* c->room only changes on this thread */
		pthread_mutex_lock(&s->rooms_mtx);
		members = (uint32_t)r->n;
		direct_at_join_locked(r, &direct, &off);
		pthread_mutex_unlock(&s->rooms_mtx);
	} else {
		srv_leave_room(c, 1);
		pthread_mutex_lock(&s->rooms_mtx);
		int rc = srv_room_add_locked(r, c);
		members = (uint32_t)r->n;
		if (rc == 0)
			direct_at_join_locked(r, &direct, &off);
		pthread_mutex_unlock(&s->rooms_mtx);
		if (rc) {
			reply_error(q, RD_E_INTERNAL, NULL);
			return;
		}
		if (s->cluster.member)
			s->cluster.member(s->cluster.user, c->nick, r->name, 1, c->connected_ms);
		srv_presence(s, r, c, RD_PRESENCE_JOINED, c->nick, r->name, NULL);
		srv_emit(s, RD_EV_JOINED, c, r->name, NULL);
		if (s->hooks.on_join)
			s->hooks.on_join(s, c, r->name, s->hooks.user);
	}
	if (s->cluster.room_counts) {
		struct rd_room_entry e = { .members = members };
		srv_copy_str(e.name, sizeof(e.name), r->name);
		s->cluster.room_counts(s->cluster.user, &e, 1);
		members = e.members;
	}
	rd_msg_init(&m, RD_MSG_JOINED);
	srv_copy_str(m.u.joined.room, sizeof(m.u.joined.room), r->name);
	m.u.joined.members = members;
	rd_client_send_msg(c, &m, q->f->hdr.req_id);
	direct_after_join(c, r, direct, off);
}

/* ---- direct mode (PROTOCOL.md 14.5) ---------------------------------------------------- */

static void room_mode_msg(struct rd_msg *m, const struct rd_room *r, int direct, const char *by)
{
	rd_msg_init(m, RD_MSG_ROOM_MODE);
	srv_copy_str(m->u.room_mode.room, sizeof(m->u.room_mode.room), r->name);
	m->u.room_mode.direct = (uint8_t)direct;
	srv_copy_str(m->u.room_mode.by, sizeof(m->u.room_mode.by), by);
}

/* The room's mode as c joins it, read in the same hold of rooms_mtx that made c a member
 * (a switch after that is announced to c as to every member, so it must not also be told
 * as the newcomer's notice); a join past the limit switches the room back (*off). */
static void direct_at_join_locked(struct rd_room *r, int *direct, int *off)
{
	*direct = r->direct;
	*off = 0;
	if (r->direct && r->n > RD_ROOM_DIRECT_MAX) {
		r->direct = 0;
		*off = 1;
	}
}

/* c just joined r (direct, off: direct_at_join_locked): in direct mode, it hears so
 * (after JOINED); a join past the limit switched the room back, and every member hears
 * that. */
static void direct_after_join(struct rd_client *c, struct rd_room *r, int direct, int off)
{
	struct rd_server *s = c->srv;
	struct rd_msg m;

	if (!direct)
		return;
	room_mode_msg(&m, r, !off, "");
	if (off) {
		srv_announce(s, r, NULL, &m);
		srv_emit(s, RD_EV_INFO, c, r->name,
			 "room back through the server: too many members");
	} else {
		rd_client_send_msg(c, &m, 0);
	}
}

static void handle_room_direct(struct req *q)
{
	struct rd_client *c = q->c;
	struct rd_server *s = c->srv;
	struct rd_room *r = c->room;
	struct rd_msg m;
	size_t n;
	int on = q->m.u.room_direct.on != 0, was;
	char text[160];

	if (!r) {
		reply_error(q, RD_E_NOT_IN_ROOM, "join a room first");
		return;
	}
	pthread_mutex_lock(&s->rooms_mtx);
	n = r->n;
	was = r->direct;
	if (!on || n <= RD_ROOM_DIRECT_MAX)
		r->direct = on;
	pthread_mutex_unlock(&s->rooms_mtx);
	if (on && n > RD_ROOM_DIRECT_MAX) {
		snprintf(text, sizeof(text),
			 "room '%.32s' has %zu members: direct mode is for at most %u", r->name, n,
			 RD_ROOM_DIRECT_MAX);
		reply_error(q, RD_E_ROOM_TOO_BIG, text);
		return;
	}
	srv_send_ok(c, q->f->hdr.req_id, q->f->hdr.type);
	room_mode_msg(&m, r, on, c->nick);
	if (was == on) {
		rd_client_send_msg(c, &m, 0); /* (no change: only the asker hears the mode) */
		return;
	}
	srv_announce(s, r, NULL, &m);
	snprintf(text, sizeof(text), "room %.32s %s", r->name,
		 on ? "in direct mode" : "back through the server");
	srv_emit(s, RD_EV_INFO, c, r->name, text);
}

static void handle_leave(struct req *q)
{
	if (!q->c->room) {
		reply_error(q, RD_E_NOT_IN_ROOM, "you are not in a room");
		return;
	}
	srv_leave_room(q->c, 1);
	srv_send_ok(q->c, q->f->hdr.req_id, q->f->hdr.type);
}

static void handle_join(struct req *q)
{
	join_room(q, q->m.u.room.room, NULL, 0);
}

static void handle_join_key(struct req *q)
{
	if (q->c->srv->cfg.plain) { /* a secret never travels in clear */
		reply_error(q, RD_E_TLS_REQUIRED, "JOIN_KEY needs a TLS connection");
		return;
	}
	join_room(q, q->m.u.join_key.room, q->m.u.join_key.key.p, q->m.u.join_key.key.n);
}

static void handle_who(struct req *q)
{
	struct rd_client *c = q->c;
	struct rd_server *s = c->srv;
	struct rd_room *r;
	struct rd_msg m;
	struct rd_who_entry *items = NULL;
	size_t n = 0;

	if (q->m.u.room.room[0]) {
		r = srv_room_find(s, q->m.u.room.room);
		if (!r || !room_visible(c, r->name)) {
			reply_error(q, RD_E_NO_SUCH_ROOM, NULL);
			return;
		}
	} else if (!(r = c->room)) {
		reply_error(q, RD_E_NOT_IN_ROOM, "you are not in a room: name one");
		return;
	}
	pthread_mutex_lock(&s->rooms_mtx);
	items = calloc(r->n ? r->n : 1, sizeof(*items));
	if (items) {
		n = r->n;
		for (size_t i = 0; i < n; i++) {
			srv_copy_str(items[i].nick, sizeof(items[i].nick), r->members[i]->nick);
			items[i].since_ms = r->members[i]->connected_ms;
		}
	}
	pthread_mutex_unlock(&s->rooms_mtx);
	if (items && s->cluster.who) {
		/* and the members on the other servers of the cluster */
		struct rd_who_entry *more = NULL, *all;
		size_t k = 0;
		if (s->cluster.who(s->cluster.user, r->name, &more, &k) == 0 && k > 0 &&
		    (all = realloc(items, (n + k) * sizeof(*all))) != NULL) {
			memcpy(all + n, more, k * sizeof(*all));
			items = all;
			n += k;
		}
		free(more);
	}
	if (!items) {
		reply_error(q, RD_E_INTERNAL, NULL);
		return;
	}
	rd_msg_init(&m, RD_MSG_WHO_LIST);
	srv_copy_str(m.u.who_list.room, sizeof(m.u.who_list.room), r->name);
	m.u.who_list.count = (uint32_t)n;
	m.u.who_list.items = items;
	rd_client_send_msg(c, &m, q->f->hdr.req_id);
	free(items);
}

/* The chat rate limit (config msg_rate messages per second, a bucket of two seconds'
 * worth; 0 = none): 0 when c may send one more message now, else RD_ERR_FULL. */
static int take_message_token(struct rd_client *c)
{
	uint32_t rate = c->srv->cfg.msg_rate;
	uint64_t now, cap, have;
	int rc = 0;

	if (rate == 0)
		return 0;
	now = rd_now_mono_ms();
	cap = (uint64_t)rate * 2000u;
	pthread_mutex_lock(&c->mtx);
	have = c->rate_milli + (now - c->rate_mono) * rate;
	c->rate_mono = now;
	if (have > cap)
		have = cap;
	if (have >= 1000u)
		have -= 1000u;
	else
		rc = RD_ERR_FULL;
	c->rate_milli = (uint32_t)have;
	pthread_mutex_unlock(&c->mtx);
	return rc;
}

static void refuse_rate(struct req *q)
{
	char text[96];
	snprintf(text, sizeof(text), "too many messages: at most %u per second",
		 q->c->srv->cfg.msg_rate);
	reply_error(q, RD_E_RATE, text);
}

static void note_message(struct rd_client *c)
{
	uint64_t now = rd_now_wall_ms();
	int post = 0;
	pthread_mutex_lock(&c->mtx);
	c->last_msg_ms = now;
	if (now - c->last_msg_event_ms >= EVENT_MSG_EVERY_MS) {
		c->last_msg_event_ms = now;
		post = 1;
	}
	pthread_mutex_unlock(&c->mtx);
	if (post)
		srv_emit(c->srv, RD_EV_MESSAGE, c, "", NULL);
}

static void handle_say(struct req *q)
{
	struct rd_client *c = q->c;
	struct rd_server *s = c->srv;
	struct rd_room *r = c->room;
	struct rd_msg m;

	if (!r) {
		reply_error(q, RD_E_NOT_IN_ROOM, "join a room first");
		return;
	}
	if (take_message_token(c) != 0) {
		refuse_rate(q);
		return;
	}
	rd_msg_init(&m, RD_MSG_ROOM_MSG);
	srv_copy_str(m.u.room_msg.room, sizeof(m.u.room_msg.room), r->name);
	memcpy(m.u.room_msg.from, c->nick, sizeof(c->nick));
	m.u.room_msg.kind = q->m.u.say.kind; /* relayed unchanged, like the data */
	m.u.room_msg.time_ms = rd_now_wall_ms();
	m.u.room_msg.data = q->m.u.say.data;
	srv_announce(s, r, c, &m);
	if (s->cluster.publish)
		s->cluster.publish(s->cluster.user, &m, r->name);
	note_message(c);
	srv_send_ok(c, q->f->hdr.req_id, q->f->hdr.type);
}

/* A room message for the members that did not get it over a direct link. */
static void handle_say_except(struct req *q)
{
	struct rd_client *c = q->c;
	struct rd_room *r = c->room;
	const struct rd_msg_say_except *e = &q->m.u.say_except;
	struct rd_msg m;

	if (!r) {
		reply_error(q, RD_E_NOT_IN_ROOM, "join a room first");
		return;
	}
	if (e->count > RD_SAY_EXCEPT_MAX) {
		reply_error(q, RD_E_MALFORMED, "SAY_EXCEPT names at most 32 members");
		return;
	}
	if (take_message_token(c) != 0) {
		refuse_rate(q);
		return;
	}
	rd_msg_init(&m, RD_MSG_ROOM_MSG);
	srv_copy_str(m.u.room_msg.room, sizeof(m.u.room_msg.room), r->name);
	memcpy(m.u.room_msg.from, c->nick, sizeof(c->nick));
	m.u.room_msg.kind = e->kind;
	m.u.room_msg.time_ms = rd_now_wall_ms();
	m.u.room_msg.data = e->data;
	srv_announce_except(c->srv, r, c, e->except, e->count, &m);
	note_message(c);
	srv_send_ok(c, q->f->hdr.req_id, q->f->hdr.type);
}

static void handle_tell(struct req *q)
{
	struct rd_client *c = q->c;
	struct rd_client *t;
	struct rd_msg m;

	if (take_message_token(c) != 0) {
		refuse_rate(q);
		return;
	}
	rd_msg_init(&m, RD_MSG_PRIVATE_MSG);
	memcpy(m.u.private_msg.from, c->nick, sizeof(c->nick));
	m.u.private_msg.kind = q->m.u.tell.kind; /* relayed unchanged, like the data */
	m.u.private_msg.time_ms = rd_now_wall_ms();
	m.u.private_msg.data = q->m.u.tell.data;
	t = srv_get_by_nick(c->srv, q->m.u.tell.to);
	if (t) {
		rd_client_send_msg(t, &m, 0);
		srv_client_unref(t);
	} else if (!c->srv->cluster.tell ||
		   c->srv->cluster.tell(c->srv->cluster.user, &m, q->m.u.tell.to) != 0) {
		reply_error(q, RD_E_NO_SUCH_USER, "no such user is connected");
		return;
	}
	note_message(c);
	srv_send_ok(c, q->f->hdr.req_id, q->f->hdr.type);
}

static void handle_ping(struct req *q)
{
	struct rd_msg m;
	rd_msg_init(&m, RD_MSG_PONG);
	m.u.ping.nonce = q->m.u.ping.nonce;
	rd_client_send_msg(q->c, &m, q->f->hdr.req_id);
}

static void handle_pong(struct req *q)
{
	struct rd_client *c = q->c;
	pthread_mutex_lock(&c->mtx);
	if (c->ping_outstanding && q->m.u.ping.nonce == c->ping_nonce) {
		c->ping_outstanding = 0;
		c->next_ping_mono = rd_now_mono_ms() + c->srv->cfg.ping_interval_ms;
	}
	pthread_mutex_unlock(&c->mtx);
}

static void handle_bye(struct req *q)
{
	char reason[RD_REASON_MAX + 8];
	size_t n = q->m.u.bye.reason.n;
	if (n > RD_REASON_MAX)
		n = RD_REASON_MAX;
	if (n)
		snprintf(reason, sizeof(reason), "quit: %.*s", (int)n, q->m.u.bye.reason.p);
	else
		snprintf(reason, sizeof(reason), "quit");
	srv_begin_close(q->c, RD_PRESENCE_DISCONNECTED, reason);
	q->c->bye = 1; /* the reader stops now: the departure is announced and the nickname
			* freed at once, not when the peer gets round to closing its end */
}

/* What a client may send to the server, by type (PROTOCOL.md section 10). */
enum accept_class {
	A_NEVER,   /* no handler here: unknown, server-to-client, CTL_* (local socket only),
		     * the peer-to-peer messages the server does not take, reserved numbers */
	A_ANY,     /* accepted in every state */
	A_REG,     /* needs a registered client */
	A_IGNORED, /* ERROR from a client: logged, never answered (two peers must never
		     * bounce errors at each other) */
};

static enum accept_class accept_class(uint16_t type)
{
	switch (type) {
	case RD_MSG_HELLO:
	case RD_MSG_AUTH:
	case RD_MSG_NICK:
	case RD_MSG_PING:
	case RD_MSG_PONG:
	case RD_MSG_BYE:
		return A_ANY;
	case RD_MSG_ROOMS:
	case RD_MSG_JOIN:
	case RD_MSG_JOIN_KEY:
	case RD_MSG_LEAVE:
	case RD_MSG_WHO:
	case RD_MSG_SAY:
	case RD_MSG_TELL:
	case RD_MSG_ROOM_DIRECT:
	case RD_MSG_SAY_EXCEPT:
	case RD_MSG_OFFER:
	case RD_MSG_OFFER_ANSWER:
	case RD_MSG_OFFER_CANCEL:
	case RD_MSG_OFFER_DATA:
	case RD_MSG_OFFER_END:
	case RD_MSG_P2P_LISTEN:
	case RD_MSG_P2P_FAILED:
		return A_REG;
	case RD_MSG_ERROR:
		return A_IGNORED;
	default:
		return A_NEVER;
	}
}

/* The wire error for a payload whose field is longer than its limit (section 4). */
static uint16_t too_long_code(uint16_t type)
{
	switch (type) {
	case RD_MSG_NICK:
		return RD_E_NICK_LENGTH;
	case RD_MSG_JOIN:
	case RD_MSG_JOIN_KEY:
	case RD_MSG_WHO:
		return RD_E_NO_SUCH_ROOM;
	case RD_MSG_SAY:
	case RD_MSG_TELL:
	case RD_MSG_SAY_EXCEPT:
		return RD_E_MESSAGE_TOO_LONG;
	default:
		return RD_E_MALFORMED;
	}
}

/* State, then decode, then dispatch: a connection is never made to decode (and allocate
 * for) a message it was not allowed to send in its state. */
void srv_dispatch(struct rd_client *c, const struct rd_frame *f)
{
	struct rd_server *s = c->srv;
	struct req q = { .c = c, .f = f };
	uint16_t type = f->hdr.type;
	enum accept_class cls;
	int rc;

	if (type >= RD_TYPE_APP_FIRST && type <= RD_TYPE_APP_LAST) {
		if (!c->registered) {
			reply_error(&q, RD_E_NOT_REGISTERED, "send HELLO and NICK first");
			return;
		}
		if (!s->hooks.on_frame) {
			reply_error(&q, RD_E_UNKNOWN_TYPE, "no application handles this type");
			return;
		}
		uint16_t code = s->hooks.on_frame(s, c, f, s->hooks.user);
		if (code)
			reply_error(&q, code, NULL);
		return;
	}
	cls = accept_class(type);
	if (cls == A_IGNORED) {
		RD_LOG(RD_LOG_DEBUG, "client %u sent an ERROR frame; not answered", c->id);
		return;
	}
	if (cls == A_NEVER) {
		char text[96];
		if (rd_msg_known(type))
			snprintf(text, sizeof(text), "%s is not a message this server accepts",
				 rd_msg_type_name(type));
		else
			snprintf(text, sizeof(text), "unknown message type 0x%04x", type);
		reply_error(&q, RD_E_UNKNOWN_TYPE, text);
		srv_emit(s, RD_EV_ERROR, c, "", text);
		return;
	}
	if (cls == A_REG && !c->registered) {
		reply_error(&q, RD_E_NOT_REGISTERED,
			    c->hello_done ? "choose a nickname (NICK) first" : "send HELLO first");
		return;
	}
	if ((rc = rd_msg_decode(type, f->payload, f->len, &q.m)) != 0) {
		char text[96];
		uint16_t code = rc == RD_ERR_TOO_BIG ? too_long_code(type) : RD_E_MALFORMED;
		snprintf(text, sizeof(text), "%s %s payload: %s",
			 code == RD_E_MALFORMED ? "malformed" : "over-long field in",
			 rd_msg_type_name(type), rd_strerror(rc));
		reply_error(&q, code, text);
		srv_emit(s, RD_EV_ERROR, c, "", text);
		return;
	}
	switch (type) {
	case RD_MSG_HELLO:
		handle_hello(&q);
		break;
	case RD_MSG_NICK:
		handle_nick(&q);
		break;
	case RD_MSG_AUTH:
		handle_auth(&q);
		break;
	case RD_MSG_PING:
		handle_ping(&q);
		break;
	case RD_MSG_PONG:
		handle_pong(&q);
		break;
	case RD_MSG_BYE:
		handle_bye(&q);
		break;
	case RD_MSG_ROOMS:
		handle_rooms(&q);
		break;
	case RD_MSG_JOIN:
		handle_join(&q);
		break;
	case RD_MSG_JOIN_KEY:
		handle_join_key(&q);
		break;
	case RD_MSG_LEAVE:
		handle_leave(&q);
		break;
	case RD_MSG_WHO:
		handle_who(&q);
		break;
	case RD_MSG_SAY:
		handle_say(&q);
		break;
	case RD_MSG_TELL:
		handle_tell(&q);
		break;
	case RD_MSG_ROOM_DIRECT:
		handle_room_direct(&q);
		break;
	case RD_MSG_SAY_EXCEPT:
		handle_say_except(&q);
		break;
	case RD_MSG_OFFER:
		srv_handle_offer(&q);
		break;
	case RD_MSG_OFFER_ANSWER:
		srv_handle_offer_answer(&q);
		break;
	case RD_MSG_OFFER_CANCEL:
		srv_handle_offer_cancel(&q);
		break;
	case RD_MSG_OFFER_DATA:
		srv_handle_offer_data(&q);
		break;
	case RD_MSG_OFFER_END:
		srv_handle_offer_end(&q);
		break;
	case RD_MSG_P2P_LISTEN:
		srv_handle_p2p_listen(&q);
		break;
	case RD_MSG_P2P_FAILED:
		srv_handle_p2p_failed(&q);
		break;
	default:
		break; /* accept_class() lists exactly these */
	}
	rd_msg_clear(&q.m);
}
