/* test_chat.c - direct chat (rd_chat.h; PROTOCOL.md 14.4): a real server in this process
 * (rd_server, TLS, 127.0.0.1, ephemeral port) and two clients, alice on the test's thread
 * and bob on his own, each with its own key. Every wait is bounded: the chat calls by
 * their deadlines, bob's wait for the offer by WAIT_MS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rd_chat.h"
#include "rd_client.h"
#include "rd_err.h"
#include "rd_net.h"
#include "rd_proto.h"
#include "rd_server.h"
#include "rd_tls.h"

#define WAIT_MS 8000

/* One client: its connection, key, and what its callback saw. */
struct cl {
	const char *nick;
	char dir[96];
	struct rd_conn *c;
	struct rd_tls_identity *id;
	struct rd_chat *ch;
	uint32_t offer_in; /* a chat offered to it (0: none yet) */
	char offer_room[RD_ROOM_BUF];
	int other_msgs; /* messages the chat did not take */
};

struct fixture {
	char dir[64];
	struct rd_server *s;
	uint16_t port;
	struct cl alice, bob;
};

/* bob's side of a test, on his thread */
struct bob_job {
	struct cl *bob;
	int accept; /* 1 accept, 0 reject */
	int no_dial;
	uint16_t closed_port;
	int rc;
	char why[1200];
	pthread_t th;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void on_msg(struct rd_conn *c, const struct rd_msg *m, void *user)
{
	struct cl *k = user;

	(void)c;
	if (k->ch != NULL && rd_chat_on_msg(k->ch, m))
		return;
	if (m->type == RD_MSG_OFFER_IN && m->u.offer_in.app_type == RD_APP_CHAT) {
		size_t n = m->u.offer_in.descriptor.n < RD_ROOM_MAX ? m->u.offer_in.descriptor.n :
								      RD_ROOM_MAX;

		memcpy(k->offer_room,
		       m->u.offer_in.descriptor.p ? (const char *)m->u.offer_in.descriptor.p : "",
		       n);
		k->offer_room[n] = '\0';
		k->offer_in = m->u.offer_in.offer_id;
		return;
	}
	k->other_msgs++;
}

static void client_open(struct fixture *f, struct cl *k, const char *nick)
{
	struct rd_conn_callbacks cb = { .user = k, .on_msg = on_msg };
	struct rd_conn_options o;
	char crt[160], key[160];
	uint16_t werr = 0;

	k->nick = nick;
	snprintf(k->dir, sizeof(k->dir), "%s/%s", f->dir, nick);
	assert_int_equal(mkdir(k->dir, 0700), 0);
	rd_conn_options_defaults(&o);
	o.config_dir = k->dir;
	assert_int_equal(rd_conn_open("127.0.0.1", f->port, &o, &cb, &k->c, &werr), 0);
	assert_int_equal(rd_conn_register(k->c, nick, &werr), 0);
	snprintf(crt, sizeof(crt), "%s/%s", k->dir, RD_TLS_CLIENT_CERT);
	snprintf(key, sizeof(key), "%s/%s", k->dir, RD_TLS_CLIENT_KEY);
	assert_int_equal(rd_tls_identity_ensure(crt, key, nick, &k->id, NULL), 0);
}

static void client_close(struct cl *k)
{
	rd_chat_free(k->ch);
	k->ch = NULL;
	rd_conn_close(k->c);
	rd_tls_identity_free(k->id);
}

static struct rd_chat *new_chat(struct cl *k, int no_dial, uint16_t report_port)
{
	struct rd_chat_options o = { 0 };

	o.id = k->id;
	o.nick = k->nick;
	o.listen_host = "127.0.0.1";
	o.no_dial = no_dial;
	o.report_port = report_port;
	o.cancel_fd = -1;
	return rd_chat_new(&o);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct rd_server_config cfg;
	char tls[96];

	assert_non_null(f);
	strcpy(f->dir, "/tmp/rd_test_chat.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(tls, sizeof(tls), "%s/server", f->dir);
	rd_server_config_defaults(&cfg);
	cfg.host = "127.0.0.1";
	cfg.port = 0;
	cfg.tls_dir = tls;
	assert_int_equal(rd_server_new(&cfg, NULL, &f->s), 0);
	assert_int_equal(rd_server_start(f->s), 0);
	f->port = rd_server_port(f->s);
	client_open(f, &f->alice, "alice");
	client_open(f, &f->bob, "bob");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	client_close(&f->alice);
	client_close(&f->bob);
	rd_server_stop(f->s, "test over", 2000);
	rd_server_free(f->s);
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* bob waits for alice's offer, then accepts (making the link) or rejects it */
static void *bob_main(void *arg)
{
	struct bob_job *j = arg;
	struct cl *b = j->bob;
	uint64_t end = rd_now_mono_ms() + WAIT_MS;
	uint16_t werr;

	j->rc = RD_ERR_TIMEOUT;
	while (b->offer_in == 0 && rd_now_mono_ms() < end)
		if (rd_conn_poll(b->c, 50) != 0)
			return NULL;
	if (b->offer_in == 0)
		return NULL;
	if (!j->accept) {
		j->rc = rd_conn_offer_answer(b->c, b->offer_in, RD_ANSWER_REJECT, 0, "busy", NULL,
					     0, NULL, &werr);
		return NULL;
	}
	b->ch = new_chat(b, j->no_dial, j->closed_port);
	j->rc = rd_chat_accept(b->ch, b->c, b->offer_in, "alice", j->why, sizeof(j->why));
	return NULL;
}

static void bob_start(struct fixture *f, struct bob_job *j, int accept)
{
	j->bob = &f->bob;
	j->accept = accept;
	assert_int_equal(pthread_create(&j->th, NULL, bob_main, j), 0);
}

/* The next message on k's link within WAIT_MS. */
static void next_msg(struct cl *k, struct rd_msg *m)
{
	uint64_t end = rd_now_mono_ms() + WAIT_MS;

	while (rd_chat_next(k->ch, m) != 0) {
		struct pollfd p = { .fd = rd_chat_fd(k->ch), .events = POLLIN };

		assert_true(rd_now_mono_ms() < end);
		assert_true(p.fd >= 0);
		(void)poll(&p, 1, 50);
		(void)rd_chat_process(k->ch);
	}
}

static void test_accepted_chat_carries_messages_both_ways(void **state)
{
	struct fixture *f = *state;
	struct bob_job j = { 0 };
	struct rd_msg m;
	char why[1200];
	int rc;

	bob_start(f, &j, 1);
	f->alice.ch = new_chat(&f->alice, 0, 0);
	assert_non_null(f->alice.ch);
	rc = rd_chat_request(f->alice.ch, f->alice.c, "bob", NULL, why, sizeof(why));
	assert_int_equal(pthread_join(j.th, NULL), 0);
	if (rc != 0 || j.rc != 0)
		fail_msg("alice: %s (%s); bob: %s (%s)", rd_strerror(rc), why, rd_strerror(j.rc),
			 j.why);
	assert_true(rd_chat_up(f->alice.ch));
	assert_true(rd_chat_up(f->bob.ch));
	assert_string_equal(rd_chat_peer(f->alice.ch), "bob");
	assert_string_equal(f->bob.offer_room, ""); /* a person-to-person chat */

	assert_int_equal(rd_chat_send(f->alice.ch, NULL, RD_KIND_TEXT, "hi bob", 6), 0);
	next_msg(&f->bob, &m);
	assert_int_equal(m.type, RD_MSG_PRIVATE_MSG);
	assert_string_equal(m.u.private_msg.from, "alice");
	assert_int_equal(m.u.private_msg.data.n, 6);
	assert_memory_equal(m.u.private_msg.data.p, "hi bob", 6);

	assert_int_equal(rd_chat_send(f->bob.ch, "general", RD_KIND_TEXT, "room", 4), 0);
	next_msg(&f->alice, &m);
	assert_int_equal(m.type, RD_MSG_ROOM_MSG);
	assert_string_equal(m.u.room_msg.room, "general");
	assert_string_equal(m.u.room_msg.from, "bob");

	/* limits: too long, a bad room name */
	assert_int_equal(rd_chat_send(f->alice.ch, NULL, RD_KIND_TEXT, "x", RD_CHAT_MAX + 1),
			 RD_ERR_INVAL);
	assert_int_equal(rd_chat_send(f->alice.ch, "no way", RD_KIND_TEXT, "x", 1), RD_ERR_INVAL);

	/* bob closes: alice's link goes down, and sending says so */
	rd_chat_free(f->bob.ch);
	f->bob.ch = NULL;
	{
		uint64_t end = rd_now_mono_ms() + WAIT_MS;

		while (rd_chat_up(f->alice.ch) && rd_now_mono_ms() < end) {
			struct pollfd p = { .fd = rd_chat_fd(f->alice.ch), .events = POLLIN };

			(void)poll(&p, 1, 50);
			(void)rd_chat_process(f->alice.ch);
		}
	}
	assert_false(rd_chat_up(f->alice.ch));
	assert_int_equal(rd_chat_send(f->alice.ch, NULL, RD_KIND_TEXT, "x", 1), RD_ERR_STATE);
}

static void test_rejected_chat_says_why(void **state)
{
	struct fixture *f = *state;
	struct bob_job j = { 0 };
	char why[1200];
	int rc;

	bob_start(f, &j, 0);
	f->alice.ch = new_chat(&f->alice, 0, 0);
	rc = rd_chat_request(f->alice.ch, f->alice.c, "bob", NULL, why, sizeof(why));
	assert_int_equal(pthread_join(j.th, NULL), 0);
	assert_int_equal(j.rc, 0);
	assert_int_equal(rc, RD_ERR_REMOTE);
	assert_non_null(strstr(why, "bob said no: busy"));
	assert_false(rd_chat_up(f->alice.ch));
	assert_int_equal(rd_chat_send(f->alice.ch, NULL, RD_KIND_TEXT, "x", 1), RD_ERR_STATE);
	/* a chat object is for one chat */
	assert_int_equal(rd_chat_request(f->alice.ch, f->alice.c, "bob", NULL, why, sizeof(why)),
			 RD_ERR_STATE);
}

static void test_unknown_user_is_the_servers_error(void **state)
{
	struct fixture *f = *state;
	char why[1200];

	f->alice.ch = new_chat(&f->alice, 0, 0);
	assert_int_equal(rd_chat_request(f->alice.ch, f->alice.c, "nobody", NULL, why, sizeof(why)),
			 RD_ERR_REMOTE);
	assert_non_null(strstr(why, "the server said: "));
	assert_non_null(strstr(why, "nobody"));
}

static void test_unreachable_peer_gives_no_link(void **state)
{
	struct fixture *f = *state;
	struct bob_job j = { 0 };
	char why[1200];
	int fd, rc;

	/* bob reports a port nothing listens on and dials nothing */
	assert_int_equal(rd_net_listen("127.0.0.1", 0, 1, &fd, &j.closed_port), 0);
	close(fd);
	j.no_dial = 1;
	bob_start(f, &j, 1);
	f->alice.ch = new_chat(&f->alice, 0, 0);
	rc = rd_chat_request(f->alice.ch, f->alice.c, "bob", NULL, why, sizeof(why));
	assert_int_equal(pthread_join(j.th, NULL), 0);
	assert_int_not_equal(rc, 0);
	assert_int_not_equal(j.rc, 0);
	assert_non_null(strstr(why, "connection refused"));
	assert_false(rd_chat_up(f->alice.ch));
	assert_false(rd_chat_up(f->bob.ch));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_accepted_chat_carries_messages_both_ways,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejected_chat_says_why, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_user_is_the_servers_error, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unreachable_peer_gives_no_link, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
