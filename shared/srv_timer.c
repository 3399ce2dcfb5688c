/* srv_timer.c - the timer thread: heartbeats (PING / ping timeout), the registration
 * deadline, forced closes and offer deadlines.
 */
#include "srv_internal.h"

enum timer_action {
	T_NONE,
	T_PING,
	T_PING_TIMEOUT,
	T_REGISTER_TIMEOUT,
	T_FORCE
};

void *srv_timer_main(void *arg)
{
	struct rd_server *s = arg;
	uint32_t tick = s->cfg.ping_timeout_ms < s->cfg.register_timeout_ms ?
				s->cfg.ping_timeout_ms :
				s->cfg.register_timeout_ms;
	tick /= 10;
	if (tick < 10)
		tick = 10;
	if (tick > 250)
		tick = 250;

	pthread_setname_np(pthread_self(), "rd-timer");
	struct rd_client **v = NULL;
	uint8_t *act = NULL;
	uint64_t *nonce = NULL;
	size_t cap = 0;
	for (;;) {
		pthread_mutex_lock(&s->timer_mtx);
		if (!s->timer_stop)
			rd_cond_wait_until(&s->timer_cv, &s->timer_mtx, rd_now_mono_ms() + tick);
		int stop = s->timer_stop;
		pthread_mutex_unlock(&s->timer_mtx);
		if (stop)
			break;

		uint64_t now = rd_now_mono_ms();
		size_t k = 0;
		pthread_mutex_lock(&s->clients_mtx);
		if (s->nclients > cap) {
			size_t ncap = s->nclients * 2;
			void *a = realloc(v, ncap * sizeof(*v));
			if (a)
				v = a;
			void *b = realloc(act, ncap);
			if (b)
				act = b;
			void *d = realloc(nonce, ncap * sizeof(*nonce));
			if (d)
				nonce = d;
			if (a && b && d)
				cap = ncap;
		}
		for (struct rd_client *c = s->clients; c && k < cap; c = c->next) {
			uint8_t a = T_NONE;
			pthread_mutex_lock(&c->mtx);
			if (c->force_close_mono && now >= c->force_close_mono) {
				a = T_FORCE;
				c->force_close_mono = now + CLOSE_GRACE_MS;
			} else if (c->force_close_mono) {
				a = T_NONE;
			} else if (!c->registered) {
				if (now >= c->register_deadline_mono)
					a = T_REGISTER_TIMEOUT;
			} else if (c->ping_outstanding) {
				/* (not while its reader waits for a relay receiver) */
				if (!c->relay_wait_mono &&
				    now - c->ping_sent_mono >= s->cfg.ping_timeout_ms)
					a = T_PING_TIMEOUT;
			} else if (now >= c->next_ping_mono) {
				a = T_PING;
				c->ping_outstanding = 1;
				c->ping_sent_mono = now;
				c->ping_nonce++;
				nonce[k] = c->ping_nonce;
			}
			pthread_mutex_unlock(&c->mtx);
			if (a != T_NONE) {
				srv_client_ref(c);
				v[k] = c;
				act[k++] = a;
			}
		}
		pthread_mutex_unlock(&s->clients_mtx);
		srv_offers_tick(s, now);
		srv_presence_summarise(s, rd_now_wall_ms());

		for (size_t i = 0; i < k; i++) {
			struct rd_client *c = v[i];
			struct rd_msg m;
			switch (act[i]) {
			case T_PING:
				rd_msg_init(&m, RD_MSG_PING);
				m.u.ping.nonce = nonce[i];
				rd_client_send_msg(c, &m, 0);
				break;
			case T_PING_TIMEOUT:
				pthread_mutex_lock(&c->mtx);
				if (!c->departure)
					c->departure = RD_PRESENCE_TIMED_OUT;
				pthread_mutex_unlock(&c->mtx);
				srv_client_kill(c, "ping timeout");
				break;
			case T_REGISTER_TIMEOUT:
				rd_client_send_error(c, 0, 0, RD_E_REGISTER_TIMEOUT,
						     "no nickname chosen in time");
				srv_begin_close(c, 0, "registration timeout");
				break;
			case T_FORCE:
				srv_client_kill(c, NULL);
				break;
			default:
				break;
			}
			srv_client_unref(c);
		}
	}
	free(v);
	free(act);
	free(nonce);
	return NULL;
}
