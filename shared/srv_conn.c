/* srv_conn.c - connection threads: the acceptor, one reader per connection (read,
 * decode, dispatch), refusals at the door, and what happens when a client goes.
 */
#include "srv_internal.h"

/* Remove c from the connection list; clients_mtx held. The table's reference is the
 * caller's to drop. */
static void table_unlink_locked(struct rd_server *s, struct rd_client *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	s->nclients--;
}

static void client_gone(struct rd_client *c)
{
	struct rd_server *s = c->srv;
	uint8_t departure;
	char reason[RD_REASON_MAX + 1];
	char room[RD_ROOM_BUF] = "";
	int registered;

	pthread_mutex_lock(&s->clients_mtx);
	table_unlink_locked(s, c);
	s->bytes_in_gone += rd_link_bytes_in(c->link);
	s->bytes_out_gone += rd_link_bytes_out(c->link);
	registered = c->registered;
	if (registered)
		s->nregistered--;
	pthread_mutex_unlock(&s->clients_mtx);
	/* free across the cluster as soon as here (a client that quits may come back at once) */
	if (c->nick_claimed && s->cluster.nick_release)
		s->cluster.nick_release(s->cluster.user, c->nick);

	pthread_mutex_lock(&s->rooms_mtx);
	if (c->room)
		srv_copy_str(room, sizeof(room), c->room->name);
	pthread_mutex_unlock(&s->rooms_mtx);
	srv_leave_room(c, 0);

	pthread_mutex_lock(&c->mtx);
	departure = c->departure ? c->departure : RD_PRESENCE_DISCONNECTED;
	srv_copy_str(reason, sizeof(reason), c->reason[0] ? c->reason : "connection lost");
	pthread_mutex_unlock(&c->mtx);

	srv_offers_client_gone(c, reason);
	if (registered) {
		/* to every client: the name of a room not everyone may see stays out */
		int hide = room[0] && s->hooks.may_enter &&
			   !s->hooks.may_enter(s, NULL, room, NULL, 0, s->hooks.user);
		srv_presence(s, NULL, c, departure, c->nick, hide ? "" : room, reason);
		if (s->hooks.on_disconnect)
			s->hooks.on_disconnect(s, c, reason, s->hooks.user);
	}
	srv_emit(s, departure == RD_PRESENCE_KICKED ? RD_EV_KICKED : RD_EV_DISCONNECTED, c, room,
		 reason);
	srv_client_kill(c, NULL);
	srv_client_unref(c); /* the table's reference: it was unlinked above */
}

/* The TLS handshake of a new connection, within the registration timeout. 0, or the
 * connection is to be closed (what happened is logged and the reason set). A plaintext
 * roomdrop client is told, in plaintext, that this server speaks TLS only. */
static int handshake(struct rd_client *c)
{
	struct rd_server *s = c->srv;
	int rc = rd_link_handshake(c->link, (int)s->cfg.register_timeout_ms);
	if (rc == 0) {
		uint8_t fp[RD_TLS_FP_LEN];
		int has = rd_link_peer_fp(c->link, fp) == 0;
		pthread_mutex_lock(&c->mtx); /* (read by rd_server_clients) */
		c->has_fp = has;
		memcpy(c->fp, fp, sizeof(fp));
		pthread_mutex_unlock(&c->mtx);
		return 0;
	}
	if (rc == RD_ERR_PROTOCOL && rd_link_peer_spoke(c->link) == RD_TLS_SNIFF_FRAME) {
		srv_refuse_plaintext(s, rd_link_fd(c->link));
		srv_copy_str(c->reason, sizeof(c->reason), "plaintext client: TLS required");
	} else {
		char why[160];
		snprintf(why, sizeof(why), "TLS handshake failed: %s",
			 rc == RD_ERR_TIMEOUT ? "timed out" : rd_link_reason(c->link));
		srv_copy_str(c->reason, sizeof(c->reason), why);
	}
	RD_LOG(RD_LOG_INFO, "client %u (%s:%u): %s", c->id, c->ip, c->port, c->reason);
	return rc;
}

static void *client_main(void *arg)
{
	struct rd_client *c = arg;
	struct rd_server *s = c->srv;
	char name[16];

	snprintf(name, sizeof(name), "rd-c%u", c->id);
	pthread_setname_np(pthread_self(), name);
	if (s->cfg.tls && handshake(c) != 0)
		goto out;
	/* Until WELCOME only small frames can be valid (HELLO, NICK, PING, PONG, BYE). */
	rd_link_set_max_payload(c->link, RD_MAX_PAYLOAD_UNREGISTERED);
	int was_registered = 0;
	while (!c->bye) {
		struct rd_frame f;
		int rc = rd_link_recv(c->link, -1, &f);
		if (rc != 0) {
			uint16_t code = 0;
			switch (rc) {
			case RD_ERR_BAD_MAGIC:
				code = RD_E_BAD_MAGIC;
				break;
			case RD_ERR_BAD_VERSION:
				code = RD_E_BAD_VERSION;
				break;
			case RD_ERR_TOO_BIG:
				code = RD_E_TOO_BIG;
				break;
			case RD_ERR_ZLIB:
				code = RD_E_BAD_COMPRESSION;
				break;
			default:
				break;
			}
			if (code) {
				const char *text = rd_strerror(rc);
				if (code == RD_E_BAD_MAGIC &&
				    rd_link_peer_spoke(c->link) == RD_TLS_SNIFF_TLS) {
					text = "this server does not use TLS: connect with --plain";
					RD_LOG(RD_LOG_INFO, "client %u (%s:%u) expects TLS", c->id,
					       c->ip, c->port);
				}
				rd_client_send_error(c, 0, 0, code, text);
				srv_begin_close(c, 0, rd_wire_strerror(code));
				srv_emit(s, RD_EV_ERROR, c, "", rd_wire_strerror(code));
				/* wait (bounded by the timer's forced close) for the peer to go, so
				 * that the ERROR is read before the connection is reset */
				rd_link_drain(c->link, -1);
			} else if (rc != RD_ERR_CLOSED) {
				pthread_mutex_lock(&c->mtx);
				if (!c->reason[0])
					srv_copy_str(c->reason, sizeof(c->reason),
						     rc == RD_ERR_MALFORMED ?
							     "connection lost mid-frame" :
							     "connection lost");
				pthread_mutex_unlock(&c->mtx);
			}
			break;
		}
		srv_dispatch(c, &f);
		if (!was_registered && c->registered) {
			was_registered = 1;
			rd_link_set_max_payload(c->link, s->cfg.max_payload);
		}
	}
out:
	client_gone(c);
	srv_client_unref(c); /* the thread's reference */

	pthread_mutex_lock(&s->live_mtx);
	if (--s->live == 0)
		pthread_cond_broadcast(&s->live_cv);
	pthread_mutex_unlock(&s->live_mtx);
	return NULL;
}

/* A link for a new connection: TLS when the server has a context, else plain. */
static int new_link(struct rd_server *s, int fd, struct rd_link **out)
{
	struct rd_link_config lc = { .max_payload = s->cfg.max_payload,
				     .event_limit = s->cfg.out_limit };
	struct rd_tls_conn *t;
	int rc = s->cfg.tls ? rd_tls_conn_tls_new(s->cfg.tls, fd, NULL, &t) :
			      rd_tls_conn_plain_new(fd, &t);
	if (rc != 0) {
		close(fd);
		return rc;
	}
	return rd_link_new(t, &lc, out);
}

/* Write one ERROR frame (request id 0) on l and shut its write side, within ms. */
static void send_error_and_close(struct rd_link *l, uint16_t code, const char *text, int ms)
{
	struct rd_msg m;
	struct rd_buf b;
	enum rd_tls_want want;
	int sched;

	rd_buf_init(&b, 0);
	rd_msg_init(&m, RD_MSG_ERROR);
	m.u.error.code = code;
	m.u.error.text = rd_str_c(text);
	if (rd_msg_frame(&b, &m, 0, 0) == 0 &&
	    rd_link_send_stream(l, b.data, b.len, -1, 0, 0, ms, NULL) == 0) {
		rd_link_close_after_flush(l, &sched);
		(void)rd_link_flush(l, &want);
	}
	rd_buf_free(&b);
}

void srv_refuse_plaintext(struct rd_server *s, int fd)
{
	struct rd_tls_conn *t;
	struct rd_link *l;
	int copy = dup(fd);

	(void)s;
	if (copy < 0 || rd_tls_conn_plain_new(copy, &t) != 0) {
		if (copy >= 0)
			close(copy);
		return;
	}
	if (rd_link_new(t, NULL, &l) != 0)
		return;
	send_error_and_close(l, RD_E_TLS_REQUIRED,
			     "this server speaks TLS only: connect without --plain", 500);
	rd_link_free(l);
}

/* Answer a connection that cannot be taken with ERROR code and close it (over TLS when
 * the server uses TLS: a short handshake first, in the acceptor). */
static void refuse(struct rd_server *s, int fd, const char *ip, uint16_t port, uint16_t code,
		   const char *text)
{
	struct rd_link *l = NULL;

	if (new_link(s, fd, &l) == 0) {
		int rc = s->cfg.tls ? rd_link_handshake(l, 500) : 0;
		if (rc == 0)
			send_error_and_close(l, code, text, 500);
		else if (rc == RD_ERR_PROTOCOL && rd_link_peer_spoke(l) == RD_TLS_SNIFF_FRAME)
			send_error_and_close(l, code, text, 500); /* (plain) */
		rd_link_free(l);
	}
	if (s->hooks.on_event) {
		struct rd_event ev;
		memset(&ev, 0, sizeof(ev));
		ev.kind = RD_EV_REFUSED;
		ev.time_ms = rd_now_wall_ms();
		srv_copy_str(ev.ip, sizeof(ev.ip), ip);
		ev.port = port;
		srv_copy_str(ev.text, sizeof(ev.text), text);
		s->hooks.on_event(s, &ev, s->hooks.user);
	}
}

/* accept() failed for want of descriptors (or memory). Log it once per episode; give up
 * the reserve descriptor to take the waiting connection, answer it ERROR 205 and close it,
 * then take the reserve back; without a reserve, pause so as not to spin. */
static void at_fd_limit(struct rd_server *s, int err)
{
	int fd;
	char ip[48];
	uint16_t port;

	if (!s->fd_limit_logged) {
		s->fd_limit_logged = 1;
		RD_LOG(RD_LOG_WARN,
		       "accept: %s: new connections are refused with ERROR 205 until "
		       "descriptors are free again",
		       strerror(err));
	}
	if (s->reserve_fd >= 0 && (err == EMFILE || err == ENFILE)) {
		close(s->reserve_fd);
		s->reserve_fd = -1;
		if (rd_net_accept(s->lfd, &fd, ip, sizeof(ip), &port) == 0)
			refuse(s, fd, ip, port, RD_E_SERVER_FULL,
			       "the server has no room for another connection: try again later");
		s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (s->reserve_fd >= 0)
			return;
	}
	usleep(100 * 1000);
}

void *srv_accept_main(void *arg)
{
	struct rd_server *s = arg;
	pthread_attr_t attr;

	pthread_setname_np(pthread_self(), "rd-accept");
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, s->cfg.thread_stack);
	while (!atomic_load(&s->stopping)) {
		int fd;
		char ip[48];
		uint16_t port;
		int rc = rd_net_accept(s->lfd, &fd, ip, sizeof(ip), &port);
		if (rc != 0) {
			if (atomic_load(&s->stopping))
				break;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				at_fd_limit(s, errno);
			continue;
		}
		if (s->fd_limit_logged) {
			s->fd_limit_logged = 0;
			RD_LOG(RD_LOG_INFO, "accepting connections again");
		}
		pthread_mutex_lock(&s->clients_mtx);
		int full = s->nclients >= s->cfg.max_clients;
		pthread_mutex_unlock(&s->clients_mtx);
		if (full) {
			refuse(s, fd, ip, port, RD_E_SERVER_FULL,
			       "the server is full: try again later");
			continue;
		}
		struct rd_client *c = calloc(1, sizeof(*c));
		if (!c) {
			refuse(s, fd, ip, port, RD_E_INTERNAL, "out of memory");
			continue;
		}
		rd_net_set_nodelay(fd, 1);
		if (new_link(s, fd, &c->link) != 0) { /* (fd is closed) */
			free(c);
			continue;
		}
		c->fd = rd_link_fd(c->link);
		c->srv = s;
		atomic_init(&c->refs, 2); /* table + thread */
		srv_copy_str(c->ip, sizeof(c->ip), ip);
		c->port = port;
		c->connected_ms = rd_now_wall_ms();
		c->register_deadline_mono = rd_now_mono_ms() + s->cfg.register_timeout_ms;
		pthread_mutex_init(&c->mtx, NULL);

		pthread_mutex_lock(&s->clients_mtx);
		c->id = ++s->next_id;
		pthread_mutex_unlock(&s->clients_mtx);
		/* fully set up before any other thread can see it */
		c->fl = &s->flushers[c->id % s->nflushers];
		pthread_mutex_lock(&s->clients_mtx);
		c->next = s->clients;
		if (s->clients)
			s->clients->prev = c;
		s->clients = c;
		s->nclients++;
		pthread_mutex_unlock(&s->clients_mtx);
		srv_emit(s, RD_EV_CONNECTED, c, "", NULL);

		pthread_mutex_lock(&s->live_mtx);
		s->live++;
		pthread_mutex_unlock(&s->live_mtx);
		pthread_t th;
		if (pthread_create(&th, &attr, client_main, c) != 0) {
			pthread_mutex_lock(&s->live_mtx);
			s->live--;
			pthread_mutex_unlock(&s->live_mtx);
			srv_client_kill(c, "cannot start thread");
			pthread_mutex_lock(&s->clients_mtx);
			table_unlink_locked(s, c);
			pthread_mutex_unlock(&s->clients_mtx);
			srv_client_unref(c);
			srv_client_unref(c);
			continue;
		}
	}
	pthread_attr_destroy(&attr);
	return NULL;
}
