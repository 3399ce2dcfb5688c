/* srv_client.c - client objects: references and release, kill, events for the
 * application, and the accessors of rd_server.h.
 */
#include "srv_internal.h"

void srv_copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;
	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

void srv_client_ref(struct rd_client *c)
{
	atomic_fetch_add(&c->refs, 1);
}

void srv_client_unref(struct rd_client *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	if (c->ep_added)
		epoll_ctl(c->fl->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	rd_link_free(c->link); /* closes the socket: no thread can write to a reused fd */
	pthread_mutex_destroy(&c->mtx);
	free(c);
}

void srv_emit(struct rd_server *s, enum rd_event_kind kind, struct rd_client *c, const char *room,
	      const char *text)
{
	struct rd_event ev;
	if (!s->hooks.on_event)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.time_ms = rd_now_wall_ms();
	if (c) {
		ev.client_id = c->id;
		srv_copy_str(ev.ip, sizeof(ev.ip), c->ip);
		ev.port = c->port;
		if (c->registered)
			srv_copy_str(ev.nick, sizeof(ev.nick), c->nick);
	}
	srv_copy_str(ev.room, sizeof(ev.room), room);
	srv_copy_str(ev.text, sizeof(ev.text), text);
	s->hooks.on_event(s, &ev, s->hooks.user);
}

/* Close a connection for good: no more output, the reader thread wakes up. */
void srv_client_kill(struct rd_client *c, const char *reason)
{
	pthread_mutex_lock(&c->mtx);
	if (reason && !c->reason[0])
		srv_copy_str(c->reason, sizeof(c->reason), reason);
	pthread_mutex_unlock(&c->mtx);
	rd_link_kill(c->link);
}

uint32_t rd_client_id(const struct rd_client *c)
{
	return c->id;
}

void rd_client_nick(struct rd_client *c, char *out)
{
	srv_copy_str(out, RD_NICK_BUF, c->nick);
}

void rd_client_room(struct rd_client *c, char *out)
{
	pthread_mutex_lock(&c->srv->rooms_mtx);
	srv_copy_str(out, RD_ROOM_BUF, c->room ? c->room->name : "");
	pthread_mutex_unlock(&c->srv->rooms_mtx);
}

int rd_client_fingerprint(struct rd_client *c, uint8_t fp[RD_TLS_FP_LEN])
{
	int has;

	pthread_mutex_lock(&c->mtx);
	has = c->has_fp;
	memcpy(fp, c->fp, RD_TLS_FP_LEN);
	pthread_mutex_unlock(&c->mtx);
	return has ? 0 : RD_ERR_NOT_FOUND;
}

void rd_client_ip(const struct rd_client *c, char out[48])
{
	snprintf(out, 48, "%s", c->ip); /* (set at accept, never changed) */
}

int rd_client_admitted(struct rd_client *c)
{
	int a;

	pthread_mutex_lock(&c->mtx);
	a = c->admitted;
	pthread_mutex_unlock(&c->mtx);
	return a;
}

void *rd_client_app_data(const struct rd_client *c)
{
	return c->app_data;
}

void rd_client_set_app_data(struct rd_client *c, void *p)
{
	c->app_data = p;
}

void rd_client_set_activity(struct rd_client *c, const char *text)
{
	pthread_mutex_lock(&c->mtx);
	srv_copy_str(c->activity, sizeof(c->activity), text);
	pthread_mutex_unlock(&c->mtx);
	srv_emit(c->srv, RD_EV_ACTIVITY, c, "", text);
}
