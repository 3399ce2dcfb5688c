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
 *   lobby serve [--port N] [--port-file F]        rooms "lobby" and "table1"
 *   lobby play --port N --nick NAME [--host H] [--room R] [--roll N] [--seconds S]
 *
 * `serve` runs until SIGINT or SIGTERM. `play` joins the room (default "lobby"), rolls
 * if asked, prints what it hears for a few seconds (default 2) and leaves.
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
	      " [--seconds S]\n",
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

static void show_msg(struct rd_conn *c, const struct rd_msg *m, void *user)
{
	char text[1024];

	(void)c;
	(void)user;
	switch (m->type) {
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

static int play(int argc, char **argv)
{
	const char *host = "127.0.0.1", *nick = NULL, *room = "lobby";
	struct rd_conn_callbacks cb = { .on_msg = show_msg, .on_app_frame = show_app };
	struct rd_conn_options opt;
	struct rd_conn *c = NULL;
	uint16_t port = LOBBY_DEFAULT_PORT, werr = 0;
	int i, dice = 0, rc;
	double seconds = 2.0;
	uint64_t end;
	struct rd_msg roll;

	for (i = 0; i < argc; i++) {
		if (i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		if (strcmp(argv[i], "--port") == 0) {
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
	end = rd_now_mono_ms() + (uint64_t)(seconds * 1000.0);
	for (;;) {
		uint64_t now = rd_now_mono_ms();

		if (now >= end)
			break;
		if ((rc = rd_conn_poll(c, (int)(end - now))) != 0) {
			fprintf(stderr, "lobby: %s\n", rd_strerror(rc));
			rd_conn_close(c);
			return 1;
		}
	}
	rd_conn_close(c);
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
