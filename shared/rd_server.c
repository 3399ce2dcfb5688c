/* rd_server.c - the room core, server side: lifecycle and the administration API.
 *
 * The design (threads, locks, lifetimes) is described once, in srv_internal.h.
 */
#include "srv_internal.h"

#include "rd_hash.h"

static const char *const default_rooms[] = { "general", "random" };

void rd_server_config_defaults(struct rd_server_config *c)
{
	memset(c, 0, sizeof(*c));
	c->host = RD_DEFAULT_HOST;
	c->port = RD_DEFAULT_PORT;
	c->max_clients = 1024;
	c->ping_interval_ms = RD_PING_INTERVAL_MS;
	c->ping_timeout_ms = RD_PING_TIMEOUT_MS;
	c->register_timeout_ms = RD_REGISTER_TIMEOUT_MS;
	c->max_payload = RD_MAX_PAYLOAD_DEFAULT;
	c->out_limit = 8u << 20;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	c->thread_stack = 1u << 20;
#else
	c->thread_stack = 256u << 10;
#endif
	c->flush_threads = 0;
	c->presence_burst = RD_PRESENCE_BURST_DEFAULT;
	c->software = "libroomdrop/" RD_VERSION;
	c->features = RD_FEAT_ZLIB | RD_FEAT_QUIET;
	c->msg_rate = RD_MSG_RATE_DEFAULT;
	c->max_offers = 1;
	c->offer_timeout_ms = RD_OFFER_TIMEOUT_MS;
	c->offer_max_ms = RD_OFFER_TIMEOUT_MAX_MS;
}

/* The server's TLS context: the one given, or one over the identity in tls_dir (made on
 * first start). Sets s->cfg.tls and the fingerprint. */
static int load_identity(struct rd_server *s, const struct rd_server_config *cfg)
{
	struct rd_tls_identity *id = NULL;
	char dir[512], crt[600], key[600];
	int rc;

	if (cfg->tls) {
		s->own_tls = NULL;
		return 0; /* the caller's; its fingerprint is set by the caller's identity */
	}
	if (cfg->tls_cert && cfg->tls_key) {
		if ((rc = rd_tls_identity_load(cfg->tls_cert, cfg->tls_key, &id)) != 0)
			return rc;
	} else {
		if (cfg->tls_dir)
			snprintf(dir, sizeof(dir), "%s", cfg->tls_dir);
		else if ((rc = rd_tls_config_dir(dir, sizeof(dir))) != 0)
			return rc;
		snprintf(crt, sizeof(crt), "%s/%s", dir, RD_TLS_SERVER_CERT);
		snprintf(key, sizeof(key), "%s/%s", dir, RD_TLS_SERVER_KEY);
		if ((rc = rd_tls_identity_ensure(crt, key, "roomdrop-server", &id, NULL)) != 0)
			return rc;
	}
	rd_tls_identity_fp(id, s->fp);
	s->has_fp = 1;
	rc = rd_tls_ctx_server_new(id, 0, &s->own_tls);
	rd_tls_identity_free(id);
	return rc;
}

int rd_server_new(const struct rd_server_config *cfg, const struct rd_server_hooks *hooks,
		  struct rd_server **out)
{
	struct rd_server *s;
	const char *const *names;
	size_t n;

	*out = NULL;
	if (!cfg)
		return RD_ERR_INVAL;
	names = cfg->rooms ? cfg->rooms : default_rooms;
	n = cfg->rooms ? cfg->nrooms : 2;
	if (n == 0 || n > RD_MAX_ROOMS || cfg->max_clients == 0 || cfg->max_payload < 1024 ||
	    cfg->max_payload > RD_MAX_PAYLOAD_HARD || cfg->ping_interval_ms == 0 ||
	    cfg->ping_timeout_ms == 0 || cfg->register_timeout_ms == 0)
		return RD_ERR_INVAL;
	for (size_t i = 0; i < n; i++) {
		if (!names[i] || rd_room_check(names[i], strlen(names[i])) != 0)
			return RD_ERR_INVAL;
		for (size_t j = 0; j < i; j++)
			if (rd_name_eq(names[i], names[j]))
				return RD_ERR_INVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return RD_ERR_NOMEM;
	if (!cfg->plain) {
		int rc = load_identity(s, cfg);
		if (rc != 0) {
			free(s);
			return rc;
		}
	}
	s->cfg = *cfg;
	if (s->own_tls)
		s->cfg.tls = s->own_tls;
	if (s->cfg.plain)
		s->cfg.tls = NULL;
	if (!s->cfg.host)
		s->cfg.host = RD_DEFAULT_HOST;
	if (!s->cfg.software)
		s->cfg.software = "libroomdrop/" RD_VERSION;
	if (s->cfg.out_limit < 64 * 1024)
		s->cfg.out_limit = 64 * 1024;
	if (s->cfg.thread_stack < 64 * 1024)
		s->cfg.thread_stack = 64 * 1024;
	if (s->cfg.max_offers == 0)
		s->cfg.max_offers = 1;
	if (s->cfg.offer_max_ms == 0)
		s->cfg.offer_max_ms = RD_OFFER_TIMEOUT_MAX_MS;
	if (s->cfg.offer_timeout_ms == 0)
		s->cfg.offer_timeout_ms = RD_OFFER_TIMEOUT_MS;
	if (s->cfg.offer_timeout_ms > s->cfg.offer_max_ms)
		s->cfg.offer_timeout_ms = s->cfg.offer_max_ms;
	if (hooks)
		s->hooks = *hooks;
	s->lfd = -1;
	s->reserve_fd = -1;
	s->rooms = calloc(n, sizeof(*s->rooms));
	if (!s->rooms) {
		rd_tls_ctx_free(s->own_tls);
		free(s);
		return RD_ERR_NOMEM;
	}
	s->nrooms = n;
	for (size_t i = 0; i < n; i++)
		srv_copy_str(s->rooms[i].name, sizeof(s->rooms[i].name), names[i]);
	pthread_mutex_init(&s->clients_mtx, NULL);
	pthread_mutex_init(&s->rooms_mtx, NULL);
	pthread_mutex_init(&s->offers_mtx, NULL);
	pthread_mutex_init(&s->storm_mtx, NULL);
	pthread_mutex_init(&s->live_mtx, NULL);
	rd_cond_init_mono(&s->live_cv);
	pthread_mutex_init(&s->timer_mtx, NULL);
	rd_cond_init_mono(&s->timer_cv);
	*out = s;
	return 0;
}

int rd_server_start(struct rd_server *s)
{
	int rc;
	unsigned nf = s->cfg.flush_threads;

	if (s->started)
		return RD_ERR_STATE;
	if ((rc = rd_net_listen(s->cfg.host, s->cfg.port, 1024, &s->lfd, &s->bound_port)) != 0)
		return rc;
	if (nf == 0) {
		int cpus = get_nprocs();
		nf = cpus < 1 ? 1 : cpus > 4 ? 4 : (unsigned)cpus;
	}
	s->flushers = calloc(nf, sizeof(*s->flushers));
	if (!s->flushers) {
		rc = RD_ERR_NOMEM;
		goto fail;
	}
	/* s->nflushers counts flushers whose thread runs: stop() joins exactly those, and
	 * free() releases their descriptors. A flusher that fails half-way is undone here. */
	for (unsigned i = 0; i < nf; i++) {
		struct flusher *f = &s->flushers[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
		f->srv = s;
		f->idx = i;
		f->epfd = epoll_create1(EPOLL_CLOEXEC);
		f->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (f->epfd < 0 || f->evfd < 0 ||
		    epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->evfd, &ev) != 0) {
			rc = RD_ERR_SYSTEM;
			RD_LOG(RD_LOG_ERROR, "cannot set up flusher %u: %s", i, strerror(errno));
			goto flusher_fail;
		}
		pthread_mutex_init(&f->mtx, NULL);
		if (pthread_create(&f->th, NULL, srv_flusher_main, f) != 0) {
			rc = RD_ERR_SYSTEM;
			pthread_mutex_destroy(&f->mtx);
			goto flusher_fail;
		}
		s->nflushers = i + 1;
		continue;
flusher_fail:
		if (f->epfd >= 0)
			close(f->epfd);
		if (f->evfd >= 0)
			close(f->evfd);
		goto fail;
	}
	/* one descriptor kept in reserve: at the descriptor limit it is given up to accept a
	 * connection and tell it ERROR 205 (see accept_main) */
	s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (pthread_create(&s->timer_th, NULL, srv_timer_main, s) != 0) {
		rc = RD_ERR_SYSTEM;
		goto fail;
	}
	s->timer_started = 1;
	if (pthread_create(&s->accept_th, NULL, srv_accept_main, s) != 0) {
		rc = RD_ERR_SYSTEM;
		goto fail;
	}
	s->accept_started = 1;
	s->started = 1;
	RD_LOG(RD_LOG_INFO, "listening on %s:%u with %zu rooms", s->cfg.host, s->bound_port,
	       s->nrooms);
	return 0;
fail:
	s->started = 1; /* let stop() clean up what was started */
	rd_server_stop(s, NULL, 0);
	return rc;
}

int rd_server_set_cluster(struct rd_server *s, const struct rd_cluster_ops *ops)
{
	if (s == NULL || ops == NULL)
		return RD_ERR_INVAL;
	if (s->started)
		return RD_ERR_STATE;
	s->cluster = *ops;
	/* offer ids of the servers of a cluster meet on the recipients' servers
	 * (srv_offers.c): start each server's at a random point */
	if (rd_random(&s->next_offer_id, sizeof(s->next_offer_id)) != 0)
		s->next_offer_id = 0;
	s->next_offer_id &= 0x7fffffffu;
	return 0;
}

int rd_server_fingerprint(const struct rd_server *s, uint8_t fp[RD_TLS_FP_LEN])
{
	if (!s->cfg.tls || !s->has_fp)
		return RD_ERR_STATE;
	memcpy(fp, s->fp, RD_TLS_FP_LEN);
	return 0;
}

uint16_t rd_server_port(const struct rd_server *s)
{
	return s->bound_port;
}

static void shutdown_all(struct rd_server *s, const char *reason, int polite)
{
	struct rd_client **v = NULL;
	size_t k = 0;
	pthread_mutex_lock(&s->clients_mtx);
	v = malloc((s->nclients ? s->nclients : 1) * sizeof(*v));
	if (v)
		for (struct rd_client *c = s->clients; c; c = c->next) {
			srv_client_ref(c);
			v[k++] = c;
		}
	pthread_mutex_unlock(&s->clients_mtx);
	if (!v)
		return;
	for (size_t i = 0; i < k; i++) {
		if (polite) {
			struct rd_msg m;
			rd_msg_init(&m, RD_MSG_SHUTDOWN);
			m.u.bye.reason = rd_str_c(reason);
			rd_client_send_msg(v[i], &m, 0);
			srv_begin_close(v[i], RD_PRESENCE_DISCONNECTED, "server shutting down");
		} else {
			srv_client_kill(v[i], "server shutting down");
		}
		srv_client_unref(v[i]);
	}
	free(v);
}

/* Wait up to timeout_ms for every connection thread to end: 1 when they all have. */
static int wait_live(struct rd_server *s, int timeout_ms)
{
	uint64_t until = rd_now_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	int done;
	pthread_mutex_lock(&s->live_mtx);
	while (s->live > 0)
		if (rd_cond_wait_until(&s->live_cv, &s->live_mtx, until) == RD_ERR_TIMEOUT)
			break;
	done = s->live == 0;
	pthread_mutex_unlock(&s->live_mtx);
	return done;
}

void rd_server_stop(struct rd_server *s, const char *reason, int timeout_ms)
{
	if (!s || !s->started || s->stopped)
		return;
	s->stopped = 1;
	atomic_store(&s->stopping, 1);
	srv_emit(s, RD_EV_STOPPING, NULL, "", reason);
	if (s->lfd >= 0)
		shutdown(s->lfd, SHUT_RDWR);
	if (s->accept_started)
		pthread_join(s->accept_th, NULL);
	if (s->lfd >= 0) {
		close(s->lfd);
		s->lfd = -1;
	}
	if (s->nflushers) {
		shutdown_all(s, reason ? reason : "server shutting down", 1);
		if (!wait_live(s, timeout_ms > 0 ? timeout_ms : 0)) {
			shutdown_all(s, NULL, 0);
			/* Every socket is shut down now, so readers end once they leave whatever
			 * application hook holds them. They reference s: wait for all of them, however
			 * long, because freeing s under a running reader would be a use after free. */
			while (!wait_live(s, 5000)) {
				pthread_mutex_lock(&s->live_mtx);
				unsigned left = s->live;
				pthread_mutex_unlock(&s->live_mtx);
				RD_LOG(RD_LOG_WARN,
				       "stopping: still waiting for %u connection threads", left);
			}
		}
	}
	if (s->timer_started) {
		pthread_mutex_lock(&s->timer_mtx);
		s->timer_stop = 1;
		pthread_cond_broadcast(&s->timer_cv);
		pthread_mutex_unlock(&s->timer_mtx);
		pthread_join(s->timer_th, NULL);
	}
	for (unsigned i = 0; i < s->nflushers; i++) {
		struct flusher *f = &s->flushers[i];
		pthread_mutex_lock(&f->mtx);
		f->stop = 1;
		pthread_mutex_unlock(&f->mtx);
		srv_wake_flusher(f);
		pthread_join(f->th, NULL);
	}
}

void rd_server_free(struct rd_server *s)
{
	if (!s)
		return;
	rd_server_stop(s, NULL, 0);
	srv_offers_free(s); /* (every client's departure ended its offers: this is a guard) */
	/* any client still referenced now has no thread left to drop it */
	while (s->clients) {
		struct rd_client *c = s->clients;
		s->clients = c->next;
		srv_client_unref(c);
	}
	for (unsigned i = 0; i < s->nflushers; i++) {
		struct flusher *f = &s->flushers[i];
		for (size_t j = 0; j < f->n; j++)
			srv_client_unref(f->ready[j]);
		free(f->ready);
		close(f->epfd);
		close(f->evfd);
		pthread_mutex_destroy(&f->mtx);
	}
	free(s->flushers);
	rd_tls_ctx_free(s->own_tls);
	if (s->reserve_fd >= 0)
		close(s->reserve_fd);
	for (size_t i = 0; i < s->nrooms; i++)
		free(s->rooms[i].members);
	free(s->rooms);
	pthread_mutex_destroy(&s->clients_mtx);
	pthread_mutex_destroy(&s->rooms_mtx);
	pthread_mutex_destroy(&s->offers_mtx);
	pthread_mutex_destroy(&s->storm_mtx);
	pthread_mutex_destroy(&s->live_mtx);
	pthread_cond_destroy(&s->live_cv);
	pthread_mutex_destroy(&s->timer_mtx);
	pthread_cond_destroy(&s->timer_cv);
	free(s);
}

int rd_server_clients(struct rd_server *s, struct rd_client_info **out, size_t *n)
{
	struct rd_client_info *v;
	size_t k = 0;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&s->clients_mtx);
	v = calloc(s->nclients ? s->nclients : 1, sizeof(*v));
	if (!v) {
		pthread_mutex_unlock(&s->clients_mtx);
		return RD_ERR_NOMEM;
	}
	pthread_mutex_lock(&s->rooms_mtx);
	for (struct rd_client *c = s->clients; c; c = c->next) {
		struct rd_client_info *i = &v[k++];
		i->id = c->id;
		srv_copy_str(i->ip, sizeof(i->ip), c->ip);
		i->port = c->port;
		if (c->registered)
			srv_copy_str(i->nick, sizeof(i->nick), c->nick);
		if (c->room)
			srv_copy_str(i->room, sizeof(i->room), c->room->name);
		i->connected_ms = c->connected_ms;
		i->bytes_in = rd_link_bytes_in(c->link);
		i->bytes_out = rd_link_bytes_out(c->link);
		i->queued = rd_link_queued(c->link);
		pthread_mutex_lock(&c->mtx);
		if (c->has_fp)
			rd_tls_fp_format(c->fp, i->fingerprint);
		i->last_msg_ms = c->last_msg_ms;
		srv_copy_str(i->activity, sizeof(i->activity), c->activity);
		pthread_mutex_unlock(&c->mtx);
	}
	pthread_mutex_unlock(&s->rooms_mtx);
	pthread_mutex_unlock(&s->clients_mtx);
	/* the list is newest first: give it back by id */
	for (size_t i = 0; i < k / 2; i++) {
		struct rd_client_info t = v[i];
		v[i] = v[k - 1 - i];
		v[k - 1 - i] = t;
	}
	*out = v;
	*n = k;
	return 0;
}

int srv_kick_local(struct rd_server *s, const char *nick, const char *reason)
{
	struct rd_client *c;
	struct rd_msg m;
	char why[RD_REASON_MAX + 1];

	c = srv_get_by_nick(s, nick);
	if (!c)
		return RD_ERR_NOT_FOUND;
	srv_copy_str(why, sizeof(why), reason && reason[0] ? reason : "no reason given");
	rd_msg_init(&m, RD_MSG_KICKED);
	srv_copy_str(m.u.kicked.by, sizeof(m.u.kicked.by), "server");
	m.u.kicked.reason = rd_str_c(why);
	rd_client_send_msg(c, &m, 0);
	srv_begin_close(c, RD_PRESENCE_KICKED, why);
	srv_client_unref(c);
	return 0;
}

int rd_server_kick(struct rd_server *s, const char *nick, const char *reason)
{
	struct rd_msg m;
	int rc;

	if (!nick)
		return RD_ERR_INVAL;
	if ((rc = srv_kick_local(s, nick, reason)) != RD_ERR_NOT_FOUND || !s->cluster.tell)
		return rc;
	/* on another server of the cluster, perhaps: that server kicks it */
	rd_msg_init(&m, RD_MSG_KICKED);
	srv_copy_str(m.u.kicked.by, sizeof(m.u.kicked.by), "server");
	m.u.kicked.reason = rd_str_c(reason && reason[0] ? reason : "no reason given");
	return s->cluster.tell(s->cluster.user, &m, nick) == 0 ? 0 : RD_ERR_NOT_FOUND;
}

int rd_server_broadcast(struct rd_server *s, uint8_t scope, const char *target, const char *text,
			unsigned *delivered)
{
	struct rd_msg m;
	unsigned n = 0;
	int rc = 0;

	if (delivered)
		*delivered = 0;
	if (!text || strlen(text) > RD_TEXT_MAX)
		return RD_ERR_INVAL;
	rd_msg_init(&m, RD_MSG_BROADCAST);
	m.u.broadcast.scope = scope;
	m.u.broadcast.time_ms = rd_now_wall_ms();
	m.u.broadcast.text = rd_str_c(text);
	switch (scope) {
	case RD_SCOPE_ALL:
		n = srv_announce(s, NULL, NULL, &m);
		if (s->cluster.publish)
			s->cluster.publish(s->cluster.user, &m, "");
		break;
	case RD_SCOPE_ROOM: {
		struct rd_room *r = target ? srv_room_find(s, target) : NULL;
		if (!r)
			return RD_ERR_NOT_FOUND;
		srv_copy_str(m.u.broadcast.target, sizeof(m.u.broadcast.target), r->name);
		n = srv_announce(s, r, NULL, &m);
		if (s->cluster.publish)
			s->cluster.publish(s->cluster.user, &m, r->name);
		break;
	}
	case RD_SCOPE_USER: {
		struct rd_client *c = target ? srv_get_by_nick(s, target) : NULL;
		if (!c) {
			/* on another server of the cluster, perhaps */
			if (!target || !s->cluster.tell || strlen(target) > RD_NICK_MAX)
				return RD_ERR_NOT_FOUND;
			srv_copy_str(m.u.broadcast.target, sizeof(m.u.broadcast.target), target);
			if (s->cluster.tell(s->cluster.user, &m, target) != 0)
				return RD_ERR_NOT_FOUND;
			n = 1;
			break;
		}
		srv_copy_str(m.u.broadcast.target, sizeof(m.u.broadcast.target), c->nick);
		rc = rd_client_send_msg(c, &m, 0);
		n = rc == 0;
		srv_client_unref(c);
		break;
	}
	default:
		return RD_ERR_INVAL;
	}
	if (delivered)
		*delivered = n;
	srv_emit(s, RD_EV_BROADCAST, NULL, scope == RD_SCOPE_ROOM ? target : "", text);
	return rc;
}

int rd_server_deliver(struct rd_server *s, const struct rd_msg *m, const char *target, unsigned *n)
{
	struct rd_room *r = NULL;
	struct rd_client *t;
	unsigned k = 0;
	int rc = 0;

	if (n)
		*n = 0;
	if (s == NULL || m == NULL || target == NULL)
		return RD_ERR_INVAL;
	switch (m->type) {
	case RD_MSG_BROADCAST:
		if (m->u.broadcast.scope == RD_SCOPE_USER)
			goto one;
		/* fall through */
	case RD_MSG_ROOM_MSG:
	case RD_MSG_PRESENCE:
		if ((target[0] || m->type == RD_MSG_ROOM_MSG) &&
		    (r = srv_room_find(s, target)) == NULL)
			return RD_ERR_NOT_FOUND;
		k = srv_announce(s, r, NULL, m);
		break;
	case RD_MSG_KICKED: {
		char reason[RD_REASON_MAX + 1];
		size_t len = m->u.kicked.reason.n < RD_REASON_MAX ? m->u.kicked.reason.n :
								    RD_REASON_MAX;
		memcpy(reason, m->u.kicked.reason.p ? m->u.kicked.reason.p : "", len);
		reason[len] = '\0';
		if ((rc = srv_kick_local(s, target, reason)) != 0)
			return rc;
		k = 1;
		break;
	}
	case RD_MSG_OFFER_IN:
	case RD_MSG_OFFER_RESULT:
	case RD_MSG_OFFER_END:
	case RD_MSG_P2P_INTRO:
	case RD_MSG_P2P_FAILED:
	case RD_MSG_PRIVATE_MSG:
one:
		if ((t = srv_get_by_nick(s, target)) == NULL)
			return RD_ERR_NOT_FOUND;
		if (m->type != RD_MSG_PRIVATE_MSG && m->type != RD_MSG_BROADCAST &&
		    (rc = srv_offers_note_remote(s, t, m)) != 0) {
			srv_client_unref(t);
			return rc;
		}
		rc = rd_client_send_msg(t, m, 0);
		k = rc == 0;
		srv_client_unref(t);
		break;
	default: {
		/* an application's frame to a room (rd_room_send on another server) */
		struct rd_buf b;
		if (m->type < RD_TYPE_APP_FIRST || !target[0])
			return RD_ERR_INVAL;
		rd_buf_init(&b, 0);
		if ((rc = rd_msg_encode(m, &b)) == 0)
			rc = srv_room_send_local(s, target, NULL, m->type, b.data, b.len, &k);
		rd_buf_free(&b);
		break;
	}
	}
	if (n)
		*n = k;
	return rc;
}

int rd_server_rooms(struct rd_server *s, struct rd_room_entry **out, size_t *n)
{
	struct rd_room_entry *v = calloc(s->nrooms, sizeof(*v));
	*out = NULL;
	*n = 0;
	if (!v)
		return RD_ERR_NOMEM;
	pthread_mutex_lock(&s->rooms_mtx);
	for (size_t i = 0; i < s->nrooms; i++) {
		memcpy(v[i].name, s->rooms[i].name, sizeof(v[i].name));
		v[i].members = (uint32_t)s->rooms[i].n;
	}
	pthread_mutex_unlock(&s->rooms_mtx);
	*out = v;
	*n = s->nrooms;
	return 0;
}

void rd_server_post_event(struct rd_server *s, const struct rd_event *ev)
{
	if (s->hooks.on_event && ev)
		s->hooks.on_event(s, ev, s->hooks.user);
}

void rd_server_stats(struct rd_server *s, struct rd_server_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&s->clients_mtx);
	st->clients = s->nclients;
	st->registered = s->nregistered;
	st->bytes_in = s->bytes_in_gone;
	st->bytes_out = s->bytes_out_gone;
	for (struct rd_client *c = s->clients; c; c = c->next) {
		st->bytes_in += rd_link_bytes_in(c->link);
		st->bytes_out += rd_link_bytes_out(c->link);
	}
	pthread_mutex_unlock(&s->clients_mtx);
	st->rooms = (unsigned)s->nrooms;
	pthread_mutex_lock(&s->offers_mtx);
	st->offers = s->noffers;
	pthread_mutex_unlock(&s->offers_mtx);
	st->relay_peak = atomic_load(&s->relay_peak);
}
