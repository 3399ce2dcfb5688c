/* srv_rooms.c - rooms and membership (both directions changed in one place), fan-out of
 * one frame to many clients, presence notices, nickname lookup.
 */
#include "srv_internal.h"

struct rd_room *srv_room_find(struct rd_server *s, const char *name)
{
	for (size_t i = 0; i < s->nrooms; i++)
		if (rd_name_eq(s->rooms[i].name, name))
			return &s->rooms[i];
	return NULL;
}

/* rooms_mtx held. Both directions of the membership change here and only here. */
static void room_remove_locked(struct rd_client *c)
{
	struct rd_room *r = c->room;
	if (!r)
		return;
	size_t i = c->room_idx;
	r->members[i] = r->members[--r->n];
	r->members[i]->room_idx = i;
	c->room = NULL;
}

int srv_room_add_locked(struct rd_room *r, struct rd_client *c)
{
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 16;
		struct rd_client **p = realloc(r->members, ncap * sizeof(*p));
		if (!p)
			return RD_ERR_NOMEM;
		r->members = p;
		r->cap = ncap;
	}
	c->room = r;
	c->room_idx = r->n;
	r->members[r->n++] = c;
	return 0;
}

static int named(const struct rd_client *c, const struct rd_nick_entry *names, size_t nnames)
{
	for (size_t i = 0; i < nnames; i++)
		if (rd_name_eq(c->nick, names[i].nick))
			return 1;
	return 0;
}

/* Take a reference to each member of room r, or to every registered client when r is
 * NULL, leaving out `except` and the members of r named in names. The caller sends
 * outside the lock, then unrefs each and frees *out. */
static int collect(struct rd_server *s, struct rd_room *r, const struct rd_client *except,
		   const struct rd_nick_entry *names, size_t nnames, struct rd_client ***out,
		   size_t *n)
{
	pthread_mutex_t *mtx = r ? &s->rooms_mtx : &s->clients_mtx;
	struct rd_client **v;
	size_t k = 0, max;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(mtx);
	max = r ? r->n : s->nclients;
	v = malloc((max ? max : 1) * sizeof(*v));
	if (v && r) {
		for (size_t i = 0; i < r->n; i++)
			if (r->members[i] != except && !named(r->members[i], names, nnames))
				v[k++] = r->members[i];
	} else if (v) {
		for (struct rd_client *c = s->clients; c; c = c->next)
			if (c != except && c->registered)
				v[k++] = c;
	}
	for (size_t i = 0; i < k; i++)
		srv_client_ref(v[i]);
	pthread_mutex_unlock(mtx);
	if (!v)
		return RD_ERR_NOMEM;
	*out = v;
	*n = k;
	return 0;
}

/* Queue one frame to every client of v (references collected by the caller, dropped
 * here), then hand those that need a flush to their flushers: one lock per flusher per
 * message instead of one per recipient. */
static void send_to_all(struct rd_server *s, struct rd_client **v, size_t n, const void *frame,
			size_t len)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		int marked;
		srv_client_enqueue_defer(v[i], frame, len, &marked);
		if (marked) { /* gather the marked ones at the front */
			struct rd_client *t = v[k];
			v[k++] = v[i];
			v[i] = t;
		}
	}
	for (unsigned fi = 0; fi < s->nflushers && k; fi++) {
		struct flusher *f = &s->flushers[fi];
		struct rd_client *chunk[256];
		size_t m = 0;
		int wake = 0;
		for (size_t i = 0; i < k; i++) {
			if (v[i]->fl != f)
				continue;
			chunk[m++] = v[i];
			if (m == 256) {
				wake |= srv_push_ready(f, chunk, m);
				m = 0;
			}
		}
		if (m)
			wake |= srv_push_ready(f, chunk, m);
		if (wake)
			srv_wake_flusher(f);
	}
	for (size_t i = 0; i < n; i++)
		srv_client_unref(v[i]);
	free(v);
}

int rd_room_send(struct rd_server *s, const char *room, const struct rd_client *except,
		 uint16_t type, const void *payload, size_t len, unsigned *n)
{
	int rc = srv_room_send_local(s, room, except, type, payload, len, n);
	struct rd_msg m;

	/* in a cluster: to the room's members on the other servers too (a type the codec
	 * knows: the application registered it) */
	if (rc == 0 && s->cluster.publish && rd_msg_decode(type, payload, len, &m) == 0) {
		s->cluster.publish(s->cluster.user, &m, room);
		rd_msg_clear(&m);
	}
	return rc;
}

int srv_room_send_local(struct rd_server *s, const char *room, const struct rd_client *except,
			uint16_t type, const void *payload, size_t len, unsigned *n)
{
	struct rd_room *r = srv_room_find(s, room);
	struct rd_client **v;
	struct rd_buf b;
	size_t k;
	int rc;

	if (n)
		*n = 0;
	if (!r)
		return RD_ERR_NOT_FOUND;
	rd_buf_init(&b, 0);
	if ((rc = rd_frame_append(&b, type, 0, payload, len, 0)) != 0)
		goto out;
	if ((rc = collect(s, r, except, NULL, 0, &v, &k)) != 0)
		goto out;
	send_to_all(s, v, k, b.data, b.len);
	if (n)
		*n = (unsigned)k;
out:
	rd_buf_free(&b);
	return rc;
}

/* Send a message frame to room members (r) or to all registered clients (r == NULL). */
unsigned srv_announce(struct rd_server *s, struct rd_room *r, const struct rd_client *except,
		      const struct rd_msg *m)
{
	return srv_announce_except(s, r, except, NULL, 0, m);
}

unsigned srv_announce_except(struct rd_server *s, struct rd_room *r, const struct rd_client *except,
			     const struct rd_nick_entry *names, size_t nnames,
			     const struct rd_msg *m)
{
	struct rd_client **v;
	struct rd_buf b;
	size_t k = 0;

	rd_buf_init(&b, 0);
	if (rd_msg_frame(&b, m, 0, 0) != 0)
		goto out;
	if (collect(s, r, except, names, nnames, &v, &k) != 0)
		goto out;
	send_to_all(s, v, k, b.data, b.len);
out:
	rd_buf_free(&b);
	return (unsigned)k;
}

/* A connection storm: 1 when this second's PRESENCE deliveries (notices times their
 * recipients) reached the burst, so this notice is counted for the PRESENCE_SUMMARY
 * instead of sent; else 0 (send it, then storm_told adds its recipients). A notice costs
 * work in proportion to its recipients, so that is what the burst bounds; past it, a
 * second's worth costs one summary per recipient. */
static int storm_absorb(struct rd_server *s, struct rd_room *r, uint8_t event)
{
	uint64_t second = rd_now_wall_ms() / 1000;
	int arrival = event == RD_PRESENCE_CONNECTED || event == RD_PRESENCE_JOINED, absorbed = 0;

	if (s->cfg.presence_burst == 0 || event == RD_PRESENCE_NICK)
		return 0;
	pthread_mutex_lock(&s->storm_mtx);
	if (second != s->storm_second) {
		s->storm_second = second;
		s->storm_told = 0;
	}
	if (s->storm_told >= s->cfg.presence_burst) {
		uint32_t *n = r ? (arrival ? &r->storm_arrived : &r->storm_departed) :
				  (arrival ? &s->storm_arrived : &s->storm_departed);

		(*n)++;
		s->storm_pending = 1;
		absorbed = 1;
	}
	pthread_mutex_unlock(&s->storm_mtx);
	return absorbed;
}

static void storm_told(struct rd_server *s, unsigned deliveries)
{
	if (s->cfg.presence_burst == 0)
		return;
	pthread_mutex_lock(&s->storm_mtx);
	s->storm_told += deliveries;
	pthread_mutex_unlock(&s->storm_mtx);
}

void srv_presence_summarise(struct rd_server *s, uint64_t now_wall_ms)
{
	struct rd_msg m;
	struct {
		struct rd_room *r;
		uint32_t arrived, departed;
	} *v = NULL;
	size_t k = 0;

	/* (a second's counts go out once that second is over) */
	pthread_mutex_lock(&s->storm_mtx);
	int due = s->storm_pending && now_wall_ms / 1000 != s->storm_second;
	pthread_mutex_unlock(&s->storm_mtx);
	if (!due)
		return;
	if ((v = calloc(s->nrooms + 1, sizeof(*v))) == NULL)
		return; /* (the counts wait for the next tick) */
	pthread_mutex_lock(&s->rooms_mtx);
	pthread_mutex_lock(&s->storm_mtx);
	v[k].r = NULL; /* the server's connections first */
	v[k].arrived = s->storm_arrived;
	v[k++].departed = s->storm_departed;
	s->storm_arrived = s->storm_departed = 0;
	for (size_t i = 0; i < s->nrooms; i++) {
		struct rd_room *r = &s->rooms[i];

		if (r->storm_arrived == 0 && r->storm_departed == 0)
			continue;
		v[k].r = r;
		v[k].arrived = r->storm_arrived;
		v[k++].departed = r->storm_departed;
		r->storm_arrived = r->storm_departed = 0;
	}
	s->storm_pending = 0;
	pthread_mutex_unlock(&s->storm_mtx);
	pthread_mutex_unlock(&s->rooms_mtx);
	for (size_t i = 0; i < k; i++) {
		if (v[i].arrived == 0 && v[i].departed == 0)
			continue;
		rd_msg_init(&m, RD_MSG_PRESENCE_SUMMARY);
		srv_copy_str(m.u.presence_summary.room, sizeof(m.u.presence_summary.room),
			     v[i].r ? v[i].r->name : "");
		m.u.presence_summary.arrived = v[i].arrived;
		m.u.presence_summary.departed = v[i].departed;
		m.u.presence_summary.interval_ms = 1000;
		m.u.presence_summary.time_ms = now_wall_ms / 1000 * 1000;
		(void)srv_announce(s, v[i].r, NULL, &m);
	}
	free(v);
}

/* Announce what happened to `subject` (never sent to it). A quiet session (HELLO with
 * RD_FEAT_QUIET: a one-shot command) is never announced. Past the second's burst of
 * notices (cfg.presence_burst), it is counted for a PRESENCE_SUMMARY instead (the other
 * servers of a cluster still hear of it one by one). */
void srv_presence(struct rd_server *s, struct rd_room *r, const struct rd_client *subject,
		  uint8_t event, const char *nick, const char *room, const char *reason)
{
	struct rd_msg m;
	if (subject->quiet)
		return;
	rd_msg_init(&m, RD_MSG_PRESENCE);
	m.u.presence.event = event;
	srv_copy_str(m.u.presence.nick, sizeof(m.u.presence.nick), nick);
	srv_copy_str(m.u.presence.room, sizeof(m.u.presence.room), room);
	m.u.presence.time_ms = rd_now_wall_ms();
	m.u.presence.reason = rd_str_c(reason);
	if (!storm_absorb(s, r, event))
		storm_told(s, srv_announce(s, r, subject, &m));
	if (s->cluster.publish)
		s->cluster.publish(s->cluster.user, &m, r ? r->name : "");
}

struct rd_client *srv_find_nick_locked(struct rd_server *s, const char *nick)
{
	for (struct rd_client *c = s->clients; c; c = c->next)
		if (c->registered && rd_name_eq(c->nick, nick))
			return c;
	return NULL;
}

void srv_leave_room(struct rd_client *c, int announce_it)
{
	struct rd_server *s = c->srv;
	struct rd_room *old;
	pthread_mutex_lock(&s->rooms_mtx);
	old = c->room;
	room_remove_locked(c);
	if (old && old->n == 0)
		old->direct = 0; /* an empty room starts over through the server */
	pthread_mutex_unlock(&s->rooms_mtx);
	if (!old)
		return;
	if (s->cluster.member)
		s->cluster.member(s->cluster.user, c->nick, old->name, 0, 0);
	if (announce_it) {
		srv_presence(s, old, c, RD_PRESENCE_LEFT, c->nick, old->name, NULL);
		srv_emit(s, RD_EV_LEFT, c, old->name, NULL);
	}
	if (s->hooks.on_leave)
		s->hooks.on_leave(s, c, old->name, s->hooks.user);
}

/* Find a registered client by nickname and take a reference. */
struct rd_client *srv_get_by_nick(struct rd_server *s, const char *nick)
{
	struct rd_client *t;
	pthread_mutex_lock(&s->clients_mtx);
	t = srv_find_nick_locked(s, nick);
	if (t)
		srv_client_ref(t);
	pthread_mutex_unlock(&s->clients_mtx);
	return t;
}
