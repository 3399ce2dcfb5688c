/* lobby.c - a dice lobby on libroomdrop: proof that the room stack is reusable.
 *
 * It uses only the library's public headers and knows nothing of files. The server side
 * gets nicknames, rooms, presence, chat and heartbeat from rd_server, and adds two
 * application messages of its own in the free range, described as codec rows that both
 * sides register (rd_codec.h), so that rd_msg_encode / rd_msg_decode handle them:
 *
 *   0x1100 ROLL    client -> server   u8 count (1..10)
 *   0x1101 ROLLED  server -> room     str nick, bytes values (count bytes, each 1..6)
 *
 * and one offer type (the core's generic offer, PROTOCOL.md section 13, carries it; the
 * server does nothing for it):
 *
 *   0x1102 DUEL    offer app_type; descriptor = text ("best of 3 dice")
 *
 *   lobby serve [--port N] [--port-file F]        rooms "lobby" and "table1"
 *   lobby play --port N --nick NAME [--host H] [--room R] [--roll N] [--seconds S]
 *              [--challenge NICK] [--accept-duels]
 *
 * `serve` runs until SIGINT or SIGTERM. `play` joins the room (default "lobby"), rolls
 * if asked, prints what it hears for a few seconds (default 2) and leaves. With
 * --challenge it offers NICK a duel (the offer expires with the play time) and leaves
 * once the outcome is known: exit 0 when accepted, 4 when refused, expired or the player
 * left. A player accepts the duels offered to it with --accept-duels, and refuses them
 * ("not accepting duels") without.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rd_buf.h"
#include "rd_client.h"
#include "rd_codec.h"
#include "rd_err.h"
#include "rd_hash.h"
#include "rd_msg.h"
#include "rd_names.h"
#include "rd_net.h"
#include "rd_proto.h"
#include "rd_server.h"

#define LOBBY_ROLL 0x1100u
#define LOBBY_ROLLED 0x1101u
#define LOBBY_DUEL 0x1102u   /* an offer's app_type */
#define LOBBY_NOT_ACCEPTED 4 /* exit code of a challenge that was not accepted */
#define LOBBY_MAX_DICE 10u
#define LOBBY_DEFAULT_PORT 7979u

/* The lobby's messages, kept in struct rd_msg's application storage. */
struct lobby_roll {
	uint8_t count;
};
struct lobby_rolled {
	char nick[RD_NICK_BUF];
	struct rd_bytes values;
};
RD_MSG_APP_FITS(struct lobby_roll);
RD_MSG_APP_FITS(struct lobby_rolled);

static const struct rd_field f_roll[] = { RD_F_ENUM(lobby_roll, count, 1, LOBBY_MAX_DICE),
					  RD_F_END };
static const struct rd_field f_rolled[] = { RD_F_CHARS(lobby_rolled, nick, RD_NAME_NICK),
					    RD_F_BYTES(lobby_rolled, values, LOBBY_MAX_DICE),
					    RD_F_END };
static const struct rd_msg_row lobby_rows[] = {
	{ LOBBY_ROLL, "ROLL", f_roll },
	{ LOBBY_ROLLED, "ROLLED", f_rolled },
};

static void usage(FILE *out)
{
	fputs("usage: lobby serve [--port N] [--port-file FILE]\n"
	      "       lobby play --port N --nick NAME [--host HOST] [--room ROOM] [--roll N]"
	      " [--seconds S]\n"
	      "                  [--challenge NICK] [--accept-duels]\n"
	      "A challenge exits 0 when accepted, 4 when refused, expired or its player left.\n",
	      out);
}

/* ---- server ------------------------------------------------------------------------------ */

/* One fair die from random bytes: values 252..255 would favour 1..4, so they are drawn
 * again. */
static int roll_die(uint8_t *out)
{
	uint8_t b;
	int rc;

	do {
		if ((rc = rd_random(&b, 1)) != 0)
			return rc;
	} while (b >= 252);
	*out = (uint8_t)(b % 6 + 1);
	return 0;
}

static uint16_t on_frame(struct rd_server *s, struct rd_client *c, const struct rd_frame *f,
			 void *user)
{
	char room[RD_ROOM_BUF];
	uint8_t values[LOBBY_MAX_DICE];
	struct rd_msg in, out;
	struct lobby_rolled *rolled;
	struct rd_buf b;
	unsigned i, count, delivered = 0;
	int rc = 0;

	(void)user;
	if (f->hdr.type != LOBBY_ROLL)
		return RD_E_UNKNOWN_TYPE;
	/* the decoder passes any count through: the handler judges it */
	if (rd_msg_decode(f->hdr.type, f->payload, f->len, &in) != 0)
		return RD_E_MALFORMED;
	count = RD_MSG_APP(&in, struct lobby_roll)->count;
	rd_msg_clear(&in);
	if (count < 1 || count > LOBBY_MAX_DICE)
		return RD_E_MALFORMED;
	rd_client_room(c, room);
	if (room[0] == '\0')
		return RD_E_NOT_IN_ROOM;

	rd_msg_init(&out, LOBBY_ROLLED);
	rolled = RD_MSG_APP(&out, struct lobby_rolled);
	rd_client_nick(c, rolled->nick);
	for (i = 0; rc == 0 && i < count; i++)
		rc = roll_die(&values[i]);
	rolled->values = (struct rd_bytes){ values, count };
	rd_buf_init(&b, 0);
	if (rc == 0)
		rc = rd_msg_encode(&out, &b);
	if (rc == 0)
		rc = rd_room_send(s, room, NULL, LOBBY_ROLLED, b.data, b.len, &delivered);
	rd_buf_free(&b);
	return rc == 0 ? 0 : RD_E_INTERNAL;
}

static void on_event(struct rd_server *s, const struct rd_event *ev, void *user)
{
	(void)s;
	(void)user;
	switch (ev->kind) {
	case RD_EV_REGISTERED:
		printf("lobby: %s arrived\n", ev->nick);
		break;
	case RD_EV_JOINED:
		printf("lobby: %s sat down at %s\n", ev->nick, ev->room);
		break;
	case RD_EV_DISCONNECTED:
		printf("lobby: %s left\n", ev->nick[0] ? ev->nick : "a visitor");
		break;
	default:
		return;
	}
	fflush(stdout);
}

static int write_port_file(const char *path, uint16_t port)
{
	char tmp[4096];
	FILE *f;

	/* written whole under another name, then renamed: a reader never sees half of it */
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -1;
	if ((f = fopen(tmp, "w")) == NULL)
		return -1;
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return -1;
	return 0;
}

static int serve(int argc, char **argv)
{
	static const char *const rooms[] = { "lobby", "table1" };
	struct rd_server_config cfg;
	struct rd_server_hooks hooks;
	struct rd_server *s = NULL;
	const char *port_file = NULL;
	uint16_t port = LOBBY_DEFAULT_PORT;
	sigset_t set;
	int i, sig, rc;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			if (strcmp(argv[++i], "0") == 0) {
				port = 0;
			} else if (rd_net_parse_port(argv[i], &port) != 0) {
				fprintf(stderr, "lobby: invalid port '%s'\n", argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc) {
			port_file = argv[++i];
		} else {
			usage(stderr);
			return 2;
		}
	}

	/* Block the stop signals before any thread starts, so that all threads inherit the
	 * mask and sigwait() below is the only place they are taken. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	rd_server_config_defaults(&cfg);
	cfg.host = "127.0.0.1";
	cfg.port = port;
	cfg.rooms = rooms;
	cfg.nrooms = sizeof(rooms) / sizeof(rooms[0]);
	cfg.software = "dice-lobby/1";
	memset(&hooks, 0, sizeof(hooks));
	hooks.on_frame = on_frame;
	hooks.on_event = on_event;
	if ((rc = rd_server_new(&cfg, &hooks, &s)) != 0 || (rc = rd_server_start(s)) != 0) {
		fprintf(stderr, "lobby: cannot serve on port %u: %s\n", port, rd_strerror(rc));
		rd_server_free(s);
		return 1;
	}
	printf("lobby: serving on 127.0.0.1:%u (rooms lobby, table1)\n", rd_server_port(s));
	fflush(stdout);
	if (port_file && write_port_file(port_file, rd_server_port(s)) != 0) {
		fprintf(stderr, "lobby: cannot write %s: %s\n", port_file, strerror(errno));
		rd_server_free(s);
		return 1;
	}
	while (sigwait(&set, &sig) != 0)
		;
	printf("lobby: closing\n");
	fflush(stdout);
	rd_server_stop(s, "the lobby is closing", 2000);
	rd_server_free(s);
	return 0;
}

/* ---- client ------------------------------------------------------------------------------ */

/* What the callbacks saw that the play loop must act on (callbacks never send). */
struct play_state {
	int accept_duels;
	uint32_t duel_id;     /* our challenge, 0 = none */
	uint8_t duel_outcome; /* its OFFER_RESULT outcome, 0 = not known yet */
	uint32_t answer_id;   /* an offer made to us, to answer after the poll */
	int answer_yes;
};

static const char *answer_text(uint8_t answer)
{
	switch (answer) {
	case RD_ANSWER_ACCEPT:
		return "accepts";
	case RD_ANSWER_REJECT:
		return "refuses";
	case RD_ANSWER_HOLD:
		return "asks for time before";
	case RD_ANSWER_GONE:
		return "left before answering";
	default:
		return "did not answer";
	}
}

static const char *outcome_text(uint8_t outcome)
{
	switch (outcome) {
	case RD_OFFER_ACCEPTED:
		return "accepted";
	case RD_OFFER_REJECTED:
		return "refused";
	case RD_OFFER_CANCELLED:
		return "cancelled";
	case RD_OFFER_EXPIRED:
		return "expired";
	case RD_OFFER_PEER_GONE:
		return "the other player left";
	case RD_OFFER_COMPLETED:
		return "on";
	default:
		return "failed";
	}
}

static void show_offer(const struct rd_msg *m, struct play_state *st)
{
	char text[1024];

	switch (m->type) {
	case RD_MSG_OFFER_IN:
		if (m->u.offer_in.app_type != LOBBY_DUEL) {
			st->answer_id = m->u.offer_in.offer_id; /* not ours: refused */
			st->answer_yes = 0;
			break;
		}
		printf("%s challenges you to a duel (%s): %s\n", m->u.offer_in.from,
		       rd_escape_display((const char *)m->u.offer_in.descriptor.p,
					 m->u.offer_in.descriptor.n, text, sizeof(text)),
		       st->accept_duels ? "accepted" : "refused");
		st->answer_id = m->u.offer_in.offer_id;
		st->answer_yes = st->accept_duels;
		break;
	case RD_MSG_OFFER_ANSWERED:
		printf("%s %s the duel", m->u.offer_answered.peer,
		       answer_text(m->u.offer_answered.answer));
		if (m->u.offer_answered.reason.n)
			printf(": %s",
			       rd_escape_display(m->u.offer_answered.reason.p,
						 m->u.offer_answered.reason.n, text, sizeof(text)));
		printf("\n");
		break;
	case RD_MSG_OFFER_RESULT:
		if (m->u.offer_result.offer_id == st->duel_id)
			st->duel_outcome = m->u.offer_result.outcome;
		printf("duel with %s: %s\n",
		       m->u.offer_result.peer[0] ? m->u.offer_result.peer : "the room",
		       outcome_text(m->u.offer_result.outcome));
		break;
	default:
		break;
	}
}

static void show_msg(struct rd_conn *c, const struct rd_msg *m, void *user)
{
	char text[1024];

	(void)c;
	switch (m->type) {
	case RD_MSG_OFFER_IN:
	case RD_MSG_OFFER_ANSWERED:
	case RD_MSG_OFFER_RESULT:
		show_offer(m, user);
		break;
	case RD_MSG_ROOM_MSG:
		/* what players type reaches the terminal escaped */
		if (m->u.room_msg.kind == RD_KIND_TEXT)
			printf("<%s> %s\n", m->u.room_msg.from,
			       rd_escape_display((const char *)m->u.room_msg.data.p,
						 m->u.room_msg.data.n, text, sizeof(text)));
		break;
	case RD_MSG_PRESENCE:
		if (m->u.presence.event == RD_PRESENCE_JOINED)
			printf("* %s sat down at %s\n", m->u.presence.nick, m->u.presence.room);
		else if (m->u.presence.event == RD_PRESENCE_LEFT ||
			 m->u.presence.event == RD_PRESENCE_DISCONNECTED)
			printf("* %s left\n", m->u.presence.nick);
		break;
	case RD_MSG_ERROR:
		printf("! the lobby says: %s\n",
		       rd_escape_display(m->u.error.text.p, m->u.error.text.n, text, sizeof(text)));
		break;
	case RD_MSG_SHUTDOWN:
		printf("* the lobby is closing\n");
		break;
	default:
		break;
	}
	fflush(stdout);
}

/* ROLLED from the room. Anything malformed is ignored. */
static void show_app(struct rd_conn *c, const struct rd_frame *f, void *user)
{
	const struct lobby_rolled *r;
	struct rd_msg m;
	size_t i;

	(void)c;
	(void)user;
	if (f->hdr.type != LOBBY_ROLLED || rd_msg_decode(f->hdr.type, f->payload, f->len, &m) != 0)
		return;
	r = RD_MSG_APP(&m, struct lobby_rolled);
	printf("%s rolled %zu:", r->nick, r->values.n);
	for (i = 0; i < r->values.n; i++)
		printf(" %u", r->values.p[i]);
	printf("\n");
	fflush(stdout);
	rd_msg_clear(&m);
}

/* Answer the offer the callbacks noted, if any. */
static int answer_pending(struct rd_conn *c, struct play_state *st)
{
	uint32_t id = st->answer_id;
	uint16_t werr = 0;
	int rc;

	if (!id)
		return 0;
	st->answer_id = 0;
	rc = rd_conn_offer_answer(c, id, st->answer_yes ? RD_ANSWER_ACCEPT : RD_ANSWER_REJECT, 0,
				  st->answer_yes ? "" : "not accepting duels", NULL, 0, NULL,
				  &werr);
	if (rc == RD_ERR_REMOTE) /* (it expired or was cancelled meanwhile) */
		return 0;
	return rc;
}

static int play(int argc, char **argv)
{
	const char *host = "127.0.0.1", *nick = NULL, *room = "lobby", *challenge = NULL;
	struct play_state st = { 0 };
	struct rd_conn_callbacks cb = { .on_msg = show_msg, .on_app_frame = show_app, .user = &st };
	struct rd_conn_options opt;
	struct rd_conn *c = NULL;
	uint16_t port = LOBBY_DEFAULT_PORT, werr = 0;
	int i, dice = 0, rc;
	double seconds = 2.0;
	uint64_t end;
	struct rd_msg roll;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--accept-duels") == 0) {
			st.accept_duels = 1;
			continue;
		}
		if (i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		if (strcmp(argv[i], "--challenge") == 0) {
			challenge = argv[++i];
		} else if (strcmp(argv[i], "--port") == 0) {
			if (rd_net_parse_port(argv[++i], &port) != 0) {
				fprintf(stderr, "lobby: invalid port '%s'\n", argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--host") == 0) {
			host = argv[++i];
		} else if (strcmp(argv[i], "--nick") == 0) {
			nick = argv[++i];
		} else if (strcmp(argv[i], "--room") == 0) {
			room = argv[++i];
		} else if (strcmp(argv[i], "--roll") == 0) {
			dice = atoi(argv[++i]);
			if (dice < 1 || dice > (int)LOBBY_MAX_DICE) {
				fprintf(stderr, "lobby: roll 1 to %u dice\n", LOBBY_MAX_DICE);
				return 2;
			}
		} else if (strcmp(argv[i], "--seconds") == 0) {
			seconds = atof(argv[++i]);
			if (!(seconds >= 0 && seconds <= 3600)) {
				fprintf(stderr, "lobby: --seconds takes 0 to 3600\n");
				return 2;
			}
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (nick == NULL) {
		usage(stderr);
		return 2;
	}

	rd_conn_options_defaults(&opt);
	opt.software = "dice-lobby/1";
	if ((rc = rd_conn_open(host, port, &opt, &cb, &c, &werr)) != 0) {
		fprintf(stderr, "lobby: cannot reach %s:%u: %s\n", host, port,
			rc == RD_ERR_REMOTE ? rd_wire_strerror(werr) : rd_strerror(rc));
		return 3;
	}
	if ((rc = rd_conn_register(c, nick, &werr)) != 0 ||
	    (rc = rd_conn_join(c, room, NULL, &werr)) != 0) {
		fprintf(stderr, "lobby: %s\n",
			rc == RD_ERR_REMOTE ? rd_wire_strerror(werr) : rd_strerror(rc));
		rd_conn_close(c);
		return 1;
	}
	printf("%s sits at %s\n", nick, room);
	fflush(stdout);
	if (dice > 0) {
		rd_msg_init(&roll, LOBBY_ROLL);
		RD_MSG_APP(&roll, struct lobby_roll)->count = (uint8_t)dice;
		if ((rc = rd_conn_send_msg(c, &roll, 0)) != 0) {
			fprintf(stderr, "lobby: %s\n", rd_strerror(rc));
			rd_conn_close(c);
			return 1;
		}
	}
	if (challenge) {
		static const char what[] = "best of 3 dice";
		uint32_t ms = (uint32_t)(seconds * 1000.0);
		rc = rd_conn_offer(c, challenge, LOBBY_DUEL, ms ? ms : 1, what, sizeof(what) - 1,
				   &st.duel_id, NULL, &werr);
		if (rc != 0) {
			fprintf(stderr, "lobby: cannot challenge %s: %s\n", challenge,
				rc == RD_ERR_REMOTE ? rd_conn_last_error(c) : rd_strerror(rc));
			rd_conn_close(c);
			return 1;
		}
		printf("you challenge %s to a duel\n", challenge);
		fflush(stdout);
	}
	/* (a challenge expires with the play time; a little more lets its outcome arrive) */
	end = rd_now_mono_ms() + (uint64_t)(seconds * 1000.0) + (challenge ? 2000 : 0);
	for (;;) {
		uint64_t now = rd_now_mono_ms();

		if (now >= end || (challenge && st.duel_outcome))
			break;
		if ((rc = rd_conn_poll(c, (int)(end - now))) != 0 ||
		    (rc = answer_pending(c, &st)) != 0) {
			fprintf(stderr, "lobby: %s\n", rd_strerror(rc));
			rd_conn_close(c);
			return 1;
		}
	}
	if (challenge && st.duel_outcome == RD_OFFER_ACCEPTED) {
		uint8_t outcome = 0;
		/* the duel needs no bytes moved: the accepted offer ends here */
		if ((rc = rd_conn_offer_end(c, st.duel_id, 0, &outcome, &werr)) == 0)
			printf("duel with %s: %s\n", challenge, outcome_text(outcome));
		fflush(stdout);
	}
	rd_conn_close(c);
	if (challenge && st.duel_outcome != RD_OFFER_ACCEPTED) {
		if (!st.duel_outcome)
			printf("duel with %s: no outcome in time\n", challenge);
		return LOBBY_NOT_ACCEPTED;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int rc;

	/* both sides speak ROLL and ROLLED through the codec */
	if ((rc = rd_msg_register(lobby_rows, sizeof(lobby_rows) / sizeof(lobby_rows[0]))) != 0) {
		fprintf(stderr, "lobby: %s\n", rd_strerror(rc));
		return 1;
	}
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return serve(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "play") == 0)
		return play(argc - 2, argv + 2);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
