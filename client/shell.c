/* shell.c - the interactive session: /commands, chat, events while typing.
 *
 * One thread: poll() on stdin, the connection and the signal pipe. On a terminal, lines
 * are edited with libedit's readline-compatible callback interface; an event that arrives
 * while the user types is printed by taking the prompt and the typed text off the screen
 * (carriage return, clear to end of screen), writing the event line, then having libedit
 * draw the prompt and the text again (rl_forced_update_display). While a /command runs,
 * libedit has already finished the line, so events print as plain lines.
 * Without a terminal (a pipe, a script), lines are read as they come and no prompt is
 * shown.
 *
 * Ctrl-C (SIGINT) sets cli_stop and writes to the signal pipe, which is also the
 * connection's cancel_fd: a command that waits on the server returns RD_ERR_CANCELLED (a
 * transfer sends XFER_CANCEL first) and on_line drains the pipe afterwards; at the
 * prompt the main loop drains it and drops the typed text. SIGTERM/SIGHUP (cli_quit) end
 * the shell.
 *
 * A lost connection (idle poll, or a command that got CLI_ELOST) makes the shell
 * "offline": it keeps reading the terminal (the typed line stays), refuses commands
 * that need the server, and calls cli_session_reconnect at 1, 2, 4, 8, 15, 15... s
 * until it succeeds or --reconnect seconds have passed (then exit 8). */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>

#include "chat.h"
#include "cli.h"
#include "files.h"
#include "offer.h"
#include "rd_err.h"
#include "rd_names.h"
#include "rd_net.h"
#include "rd_proto.h"
#include "session.h"

#define SHELL_MAX_ARGS 64
#define RETRY_FIRST_S 1
#define RETRY_MAX_S 15
#define SHELL_HISTORY 1000
#define SHELL_LINE_MAX (RD_CHAT_MAX + 1024)

struct shell {
	struct cli_session *s;
	int tty;
	int in_command; /* a line is being executed: libedit is not showing one */
	int line_done;  /* on_line ran during the last rl_callback_read_char */
	int quit;
	int rc;           /* exit code once quit */
	char prompt[512]; /* "nick@room> ", or an offer's question */
	char *pending;    /* non-terminal input not yet ending with a newline */
	size_t npending;
	/* connection lost: reconnecting (s->conn is NULL or dead meanwhile) */
	int lost; /* a command saw the connection go: reconnect next */
	int offline;
	int delay_s;       /* next backoff step */
	uint64_t since_ms; /* offline since (monotonic) */
	uint64_t retry_ms; /* next attempt (monotonic) */
};

/* The readline callback takes no user pointer. */
static struct shell *g_shell;
static void on_line_cb(char *line);

static const char shell_help[] =
	"Commands:\n"
	"  /join ROOM           leave the current room and enter ROOM\n"
	"  /leave               leave the current room\n"
	"  /msg NICK TEXT       send TEXT to NICK only (over the direct link if there is one)\n"
	"  /p2p NICK            ask NICK for a direct chat: /msg NICK then goes peer to peer\n"
	"  /direct on|off       switch the room to direct mode (at most 8 members): room\n"
	"                       messages go member to member, through the server only to\n"
	"                       members without a direct link\n"
	"  /who [ROOM]          who is in ROOM (default: this room)\n"
	"  /rooms               list the rooms\n"
	"  /put FILE|DIR... [--overwrite|--rename]\n"
	"  /get NAME|PATTERN... [-o DIR] [--overwrite]\n"
	"  /ls                  list the room's files\n"
	"  /rm NAME             delete a file\n"
	"  /offer NICK PATH...  offer files and folders to NICK (--everyone: to the room)\n"
	"An offer made to you asks \"accept? [y/N/s]\": y takes everything into the current\n"
	"folder, s asks file by file, anything else rejects it. A direct chat request asks\n"
	"\"accept? [y/N]\".\n"
	"  /help                this text\n"
	"  /quit                leave (Ctrl-D does the same)\n"
	"Ctrl-C drops the line being typed, or stops the running command or transfer.\n"
	"Any other line is said to the room (start it with // to say a line beginning with /).\n"
	"File names with spaces: quote them (\"my file.txt\").\n";

static void set_prompt(struct shell *sh)
{
	if (cli_offers_question(sh->s, sh->prompt, sizeof(sh->prompt)) ||
	    cli_chat_question(sh->s, sh->prompt, sizeof(sh->prompt))) {
		/* an offer or a direct chat waits for the user's answer: the prompt asks */
	} else if (sh->s->room[0])
		snprintf(sh->prompt, sizeof(sh->prompt), "%s@%s> ", sh->s->o->nick, sh->s->room);
	else
		snprintf(sh->prompt, sizeof(sh->prompt), "%s> ", sh->s->o->nick);
	if (sh->tty)
		rl_set_prompt(sh->prompt);
}

/* ---- events while the user types ------------------------------------------------------ */

static void print_begin(void *user)
{
	struct shell *sh = user;

	if (!sh->tty || sh->in_command)
		return;
	/* Take the prompt and the typed text off the screen: back to the start of the row,
	 * up over the rows a long line wrapped onto, clear to the end of the screen. */
	{
		int rows = 0, cols = 0, width, up;

		rl_get_screen_size(&rows, &cols);
		width = (int)strlen(sh->prompt) + rl_point;
		up = cols > 0 ? width / cols : 0;
		fputs("\r", stdout);
		if (up > 0)
			fprintf(stdout, "\033[%dA", up);
		fputs("\033[J", stdout);
	}
	fflush(stdout);
}

static void print_end(void *user)
{
	struct shell *sh = user;

	if (!sh->tty || sh->in_command)
		return;
	rl_forced_update_display();
	fflush(stdout);
}

/* ---- parsing ------------------------------------------------------------------------------ */

/* Split line into words in place: blanks separate, "..." and '...' quote, \ escapes one
 * character. Returns the number of words, or -1 on an unterminated quote / too many. */
static int split_words(char *line, char **argv, int max)
{
	char *r = line, *w = line, q;
	int argc = 0;

	for (;;) {
		while (*r == ' ' || *r == '\t')
			r++;
		if (*r == '\0')
			return argc;
		if (argc == max)
			return -1;
		argv[argc++] = w;
		q = 0;
		while (*r && (q || (*r != ' ' && *r != '\t'))) {
			if (q && *r == q) {
				q = 0;
				r++;
			} else if (!q && (*r == '"' || *r == '\'')) {
				q = *r++;
			} else if (*r == '\\' && r[1] && q != '\'') {
				r++;
				*w++ = *r++;
			} else {
				*w++ = *r++;
			}
		}
		if (q)
			return -1;
		if (*r)
			r++;
		*w++ = '\0';
	}
}

/* "roomdrop: MESSAGE" on stderr, escaped for the terminal (it quotes what was typed). */
static void shell_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void shell_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_verror("", fmt, ap);
	va_end(ap);
}

/* After a command: a kick ends the shell; a lost connection is reconnected. */
static void after_code(struct shell *sh, int code)
{
	if (code == CLI_EKICKED || (code == CLI_ELOST && sh->s->kicked)) {
		sh->quit = 1;
		sh->rc = CLI_EKICKED;
	} else if (code == CLI_ELOST) {
		sh->lost = 1;
	}
}

/* Report rc (see after_code). */
static void failed(struct shell *sh, const char *what, int rc, uint16_t werr)
{
	after_code(sh, cli_report(sh->s, what, rc, werr));
}

/* A copy of the options for a file command, with the current room and the per-command
 * flags from argv (removed from it). -1 on a usage error (printed). */
static int file_opts(struct shell *sh, const char *cmd, struct cli_opts *o, int *argc, char **argv)
{
	int i, n = 0;

	*o = *sh->s->o;
	o->room = sh->s->room;
	o->overwrite = o->rename = 0;
	o->outdir = ".";
	for (i = 0; i < *argc; i++) {
		if (strcmp(argv[i], "--overwrite") == 0 && strcmp(cmd, "rm") && strcmp(cmd, "ls")) {
			o->overwrite = 1;
		} else if (strcmp(argv[i], "--rename") == 0 && strcmp(cmd, "put") == 0) {
			o->rename = 1;
		} else if (strcmp(argv[i], "-o") == 0 && strcmp(cmd, "get") == 0) {
			if (i + 1 >= *argc) {
				shell_error("/get: -o needs a directory");
				return -1;
			}
			o->outdir = argv[++i];
		} else if (strcmp(argv[i], "--") == 0) {
			while (++i < *argc)
				argv[n++] = argv[i];
		} else {
			argv[n++] = argv[i];
		}
	}
	*argc = n;
	if (o->overwrite && o->rename) {
		shell_error("/put: --overwrite and --rename exclude each other");
		return -1;
	}
	return 0;
}

static void after_files(struct shell *sh, int code)
{
	after_code(sh, code);
}

/* A status line ("roomdrop: ...") on stderr, with the typed line taken off the screen and
 * put back (print_begin / print_end). */
static void note(struct shell *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct shell *sh, const char *fmt, ...)
{
	va_list ap;

	print_begin(sh);
	fputs("roomdrop: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	print_end(sh);
}

/* ---- reconnecting ---------------------------------------------------------------------- */

/* The connection is gone (rc from the idle poll, or a command saw it: rc 0, already
 * reported). Say so and schedule the first attempt, or end the shell when --reconnect 0. */
static void go_offline(struct shell *sh, int rc)
{
	char why[512];

	sh->lost = 0;
	cli_chat_offline(sh->s);
	if (sh->s->kicked) {
		sh->quit = 1;
		sh->rc = CLI_EKICKED;
		return;
	}
	if (!cli_shutdown_said(sh->s->conn, why, sizeof(why)))
		snprintf(why, sizeof(why), "connection lost");
	if (sh->s->o->reconnect_s == 0) {
		if (rc != 0)
			note(sh, "%s", why);
		sh->quit = 1;
		sh->rc = CLI_ELOST;
		return;
	}
	sh->offline = 1;
	sh->delay_s = RETRY_FIRST_S;
	sh->since_ms = rd_now_mono_ms();
	sh->retry_ms = sh->since_ms + (uint64_t)sh->delay_s * 1000u;
	if (rc != 0)
		note(sh, "%s; reconnecting in %ds\u2026", why, sh->delay_s);
	else
		note(sh, "reconnecting in %ds\u2026", sh->delay_s);
}

static void try_reconnect(struct shell *sh)
{
	char why[512], addr[300], room[RD_ROOM_BUF];
	uint64_t now, spent, budget = (uint64_t)sh->s->o->reconnect_s * 1000u;

	snprintf(room, sizeof(room), "%s", sh->s->room);
	cli_addr_text(sh->s->o, addr, sizeof(addr));
	if (cli_session_reconnect(sh->s, why, sizeof(why)) == 0) {
		sh->offline = 0;
		set_prompt(sh); /* the room may be gone */
		if (sh->s->room[0])
			note(sh, "reconnected to %s as %s, back in %s", addr, sh->s->o->nick,
			     sh->s->room);
		else if (room[0])
			note(sh, "reconnected to %s as %s; the room %s is gone: /join another",
			     addr, sh->s->o->nick, room);
		else
			note(sh, "reconnected to %s as %s", addr, sh->s->o->nick);
		return;
	}
	now = rd_now_mono_ms();
	spent = now - sh->since_ms;
	if (spent >= budget) {
		note(sh, "cannot reconnect to %s (%s); giving up after %d s", addr, why,
		     sh->s->o->reconnect_s);
		sh->quit = 1;
		sh->rc = CLI_ELOST;
		return;
	}
	sh->delay_s = sh->delay_s * 2 > RETRY_MAX_S ? RETRY_MAX_S : sh->delay_s * 2;
	if (spent + (uint64_t)sh->delay_s * 1000u > budget) /* the last try at the deadline */
		sh->delay_s = (int)((budget - spent + 999) / 1000);
	sh->retry_ms = now + (uint64_t)sh->delay_s * 1000u;
	note(sh, "cannot reconnect to %s (%s); trying again in %ds\u2026", addr, why, sh->delay_s);
}

/* Ctrl-C at the prompt: the typed text is dropped, a fresh prompt on the next row. */
static void cancel_line(struct shell *sh)
{
	if (!sh->tty)
		return;
	fputs("^C\n", stdout);
	fflush(stdout);
	rl_callback_handler_remove();
	rl_callback_handler_install(sh->prompt, on_line_cb);
}

/* ---- commands ------------------------------------------------------------------------------ */

static void do_say(struct shell *sh, const char *text)
{
	int rc;

	if (sh->s->room[0] == '\0') {
		fputs("roomdrop: you are in no room: /join one first\n", stderr);
		return;
	}
	if (strlen(text) > RD_CHAT_MAX) {
		fprintf(stderr, "roomdrop: the message is too long (at most %u bytes)\n",
			RD_CHAT_MAX);
		return;
	}
	if ((rc = cli_chat_say(sh->s, text)) == 1)
		return; /* a room in direct mode */
	if (rc == 0)
		rc = rd_conn_say(sh->s->conn, RD_KIND_TEXT, text, strlen(text));
	if (rc != 0)
		failed(sh, "cannot send the message", rc, 0);
}

static void do_join(struct shell *sh, int argc, char **argv)
{
	char what[80];
	uint32_t members = 0;
	uint16_t werr;
	int rc;

	if (argc != 1) {
		shell_error("usage: /join ROOM");
		return;
	}
	if (rd_room_check(argv[0], strlen(argv[0])) != 0) {
		shell_error("room name '%s' is invalid: use 1-32 letters, digits, '_', '.', '-'",
			    argv[0]);
		return;
	}
	/* --room-key-file is the key of --room: given for that room only */
	if ((rc = rd_conn_join_key(sh->s->conn, argv[0], sh->s->o->room_key,
				   rd_name_eq(argv[0], sh->s->o->room) ? sh->s->o->room_key_len : 0,
				   &members, &werr)) != 0) {
		snprintf(what, sizeof(what), "cannot join room '%s'", argv[0]);
		failed(sh, what, rc, werr);
		return;
	}
	snprintf(sh->s->room, sizeof(sh->s->room), "%s", argv[0]);
	printf("* You are in %s (%u member%s)\n", sh->s->room, members, members == 1 ? "" : "s");
	set_prompt(sh);
}

static void do_leave(struct shell *sh)
{
	uint16_t werr;
	int rc;

	if (sh->s->room[0] == '\0') {
		fputs("roomdrop: you are in no room\n", stderr);
		return;
	}
	if ((rc = rd_conn_leave(sh->s->conn, &werr)) != 0) {
		failed(sh, "cannot leave the room", rc, werr);
		return;
	}
	printf("* You left %s\n", sh->s->room);
	sh->s->room[0] = '\0';
	set_prompt(sh);
}

static void do_msg(struct shell *sh, char *rest)
{
	char *nick, *text, what[80];
	uint16_t werr;
	int rc, said = 0;

	while (*rest == ' ' || *rest == '\t')
		rest++;
	nick = rest;
	while (*rest && *rest != ' ' && *rest != '\t')
		rest++;
	if (*rest)
		*rest++ = '\0';
	while (*rest == ' ' || *rest == '\t')
		rest++;
	text = rest;
	if (*nick == '\0' || *text == '\0') {
		shell_error("usage: /msg NICK TEXT");
		return;
	}
	if (rd_nick_check(nick, strlen(nick)) != 0) {
		shell_error("nickname '%s' is invalid", nick);
		return;
	}
	if (strlen(text) > RD_CHAT_MAX) {
		fprintf(stderr, "roomdrop: the message is too long (at most %u bytes)\n",
			RD_CHAT_MAX);
		return;
	}
	if (cli_chat_msg(sh->s, nick, text, &said))
		return; /* over the direct link */
	if ((rc = rd_conn_tell(sh->s->conn, nick, RD_KIND_TEXT, text, strlen(text), &werr)) != 0) {
		snprintf(what, sizeof(what), "cannot send to '%s'", nick);
		failed(sh, what, rc, werr);
	} else if (said) {
		char *n = cli_escape(nick, strlen(nick));

		note(sh, "-> %s (through the server)", n);
		free(n);
	}
}

static void do_who(struct shell *sh, int argc, char **argv)
{
	struct rd_msg l;
	char what[80], shown[96];
	const char *where;
	uint16_t werr;
	int rc;

	if (argc > 1) {
		shell_error("usage: /who [ROOM]");
		return;
	}
	if (argc == 1 && rd_room_check(argv[0], strlen(argv[0])) != 0) {
		shell_error("room name '%s' is invalid", argv[0]);
		return;
	}
	if (argc == 0 && sh->s->room[0] == '\0') {
		fputs("roomdrop: you are in no room: /who ROOM\n", stderr);
		return;
	}
	if ((rc = rd_conn_who(sh->s->conn, argc ? argv[0] : NULL, &l, &werr)) != 0) {
		snprintf(what, sizeof(what), "cannot list who is in '%s'",
			 argc ? argv[0] : sh->s->room);
		failed(sh, what, rc, werr);
		return;
	}
	where = l.u.who_list.room[0] ? l.u.who_list.room : (argc ? argv[0] : sh->s->room);
	rd_escape_display(where, strlen(where), shown, sizeof(shown));
	printf("In %s:\n", shown);
	cli_print_who(stdout, &l.u.who_list);
	rd_msg_clear(&l);
}

static void do_rooms(struct shell *sh)
{
	struct rd_msg l;
	uint16_t werr;
	int rc;

	if ((rc = rd_conn_rooms(sh->s->conn, &l, &werr)) != 0) {
		failed(sh, "cannot list the rooms", rc, werr);
		return;
	}
	cli_print_rooms(stdout, &l.u.room_list, sh->s->room);
	rd_msg_clear(&l);
}

static void do_files(struct shell *sh, const char *cmd, int argc, char **argv)
{
	struct cli_opts o;

	if (sh->s->room[0] == '\0') {
		fputs("roomdrop: files live in rooms: /join one first\n", stderr);
		return;
	}
	if (file_opts(sh, cmd, &o, &argc, argv) != 0)
		return;
	if (strcmp(cmd, "ls") == 0) {
		if (argc != 0) {
			shell_error("usage: /ls");
			return;
		}
		after_files(sh, cli_files_ls(sh->s->conn, &o));
		return;
	}
	if (argc < 1) {
		shell_error("usage: /%s NAME...", cmd);
		return;
	}
	if (strcmp(cmd, "put") == 0)
		after_files(sh, cli_files_put(sh->s->conn, &o, argc, argv));
	else if (strcmp(cmd, "get") == 0)
		after_files(sh, cli_files_get(sh->s->conn, &o, argc, argv));
	else
		after_files(sh, cli_files_rm(sh->s->conn, &o, argc, argv));
}

/* /offer NICK PATH... or /offer --everyone PATH... */
static void do_offer(struct shell *sh, int argc, char **argv)
{
	int everyone = argc > 0 && strcmp(argv[0], "--everyone") == 0;

	if (argc < 2) {
		shell_error("usage: /offer NICK PATH... or /offer --everyone PATH...");
		return;
	}
	after_code(sh, everyone ? cli_offer(sh->s, NULL, argc - 1, argv + 1) :
				  cli_offer(sh->s, argv[0], argc - 1, argv + 1));
}

/* /p2p NICK */
static void do_p2p(struct shell *sh, int argc, char **argv)
{
	if (argc != 1 || rd_nick_check(argv[0], strlen(argv[0])) != 0) {
		shell_error("usage: /p2p NICK");
		return;
	}
	after_code(sh, cli_chat_open(sh->s, argv[0]));
}

/* /direct on|off */
static void do_direct(struct shell *sh, int argc, char **argv)
{
	if (argc != 1 || (strcmp(argv[0], "on") != 0 && strcmp(argv[0], "off") != 0)) {
		shell_error("usage: /direct on|off");
		return;
	}
	after_code(sh, cli_chat_direct(sh->s, strcmp(argv[0], "on") == 0));
}

static void run_line(struct shell *sh, char *line)
{
	char *argv[SHELL_MAX_ARGS], *cmd, *rest;
	size_t n = strlen(line);
	int argc;

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	/* an offer's question takes the line as its answer */
	if (!sh->offline && (cli_offers_reply(sh->s, line) || cli_chat_reply(sh->s, line)))
		return;
	if (sh->offline && (line[0] != '/' || line[1] == '/') && n > 0) {
		fputs("roomdrop: not connected (reconnecting): the line was not sent; Up brings "
		      "it back\n",
		      stderr);
		return;
	}
	if (line[0] != '/') {
		if (n > 0)
			do_say(sh, line);
		return;
	}
	if (line[1] == '/') {
		do_say(sh, line + 1);
		return;
	}
	cmd = line + 1;
	rest = cmd + strcspn(cmd, " \t");
	if (*rest)
		*rest++ = '\0';
	if (sh->offline && strcmp(cmd, "quit") && strcmp(cmd, "exit") && strcmp(cmd, "help")) {
		fputs("roomdrop: not connected (reconnecting): nothing done; Up brings the line "
		      "back\n",
		      stderr);
		return;
	}
	if (strcmp(cmd, "msg") == 0) {
		do_msg(sh, rest);
		return;
	}
	if ((argc = split_words(rest, argv, SHELL_MAX_ARGS)) < 0) {
		shell_error("unbalanced quotes or too many words");
		return;
	}
	if (strcmp(cmd, "quit") == 0 || strcmp(cmd, "exit") == 0) {
		sh->quit = 1;
	} else if (strcmp(cmd, "help") == 0) {
		fputs(shell_help, stdout);
	} else if (strcmp(cmd, "join") == 0) {
		do_join(sh, argc, argv);
	} else if (strcmp(cmd, "leave") == 0) {
		do_leave(sh);
	} else if (strcmp(cmd, "who") == 0) {
		do_who(sh, argc, argv);
	} else if (strcmp(cmd, "rooms") == 0) {
		do_rooms(sh);
	} else if (strcmp(cmd, "put") == 0 || strcmp(cmd, "get") == 0 || strcmp(cmd, "ls") == 0 ||
		   strcmp(cmd, "rm") == 0) {
		do_files(sh, cmd, argc, argv);
	} else if (strcmp(cmd, "offer") == 0) {
		do_offer(sh, argc, argv);
	} else if (strcmp(cmd, "p2p") == 0) {
		do_p2p(sh, argc, argv);
	} else if (strcmp(cmd, "direct") == 0) {
		do_direct(sh, argc, argv);
	} else {
		shell_error("unknown command /%s (try /help)", cmd);
	}
}

/* libedit calls this with a finished line (malloc'd), or NULL at end of input. */
static void on_line(char *line)
{
	struct shell *sh = g_shell;

	if (line == NULL) {
		sh->quit = 1;
		fputc('\n', stdout);
		return;
	}
	sh->in_command = 1;
	sh->line_done = 1;
	/* libedit has already drawn the next prompt: take it off until the command is done */
	fputs("\r\033[K", stdout);
	if (line[0] != '\0')
		add_history(line);
	run_line(sh, line);
	fflush(stdout);
	fflush(stderr);
	if (cli_stop && !cli_quit) {
		/* a Ctrl-C during the command stopped it (its wait or its transfer): done */
		cli_signals_drain();
		cli_stop = 0;
	}
	sh->in_command = 0;
	free(line);
}

static void on_line_cb(char *line)
{
	on_line(line);
}

/* Non-terminal input: take whole lines out of what read() gave. */
static void read_plain(struct shell *sh)
{
	char buf[4096], *nl, *p;
	ssize_t got = read(STDIN_FILENO, buf, sizeof(buf));
	size_t len;

	if (got < 0) {
		if (errno != EINTR && errno != EAGAIN)
			sh->quit = 1;
		return;
	}
	if (got == 0) {
		if (sh->npending > 0 && (p = realloc(sh->pending, sh->npending + 1)) != NULL) {
			sh->pending = p;
			p[sh->npending] = '\0';
			sh->in_command = 1;
			run_line(sh, p);
			sh->in_command = 0;
		}
		sh->npending = 0;
		sh->quit = 1;
		return;
	}
	if (sh->npending + (size_t)got > SHELL_LINE_MAX) {
		fputs("roomdrop: input line too long: dropped\n", stderr);
		sh->npending = 0;
		return;
	}
	if ((p = realloc(sh->pending, sh->npending + (size_t)got + 1)) == NULL) {
		sh->quit = 1;
		return;
	}
	sh->pending = p;
	memcpy(p + sh->npending, buf, (size_t)got);
	sh->npending += (size_t)got;
	while (!sh->quit && (nl = memchr(sh->pending, '\n', sh->npending)) != NULL) {
		*nl = '\0';
		len = (size_t)(nl - sh->pending) + 1;
		sh->in_command = 1;
		run_line(sh, sh->pending);
		fflush(stdout);
		sh->in_command = 0;
		memmove(sh->pending, sh->pending + len, sh->npending - len);
		sh->npending -= len;
	}
}

int cli_shell_run(struct cli_session *s)
{
	struct shell sh;
	struct pollfd p[3 + CLI_CHAT_LINKS];
	size_t nlinks;
	int rc = 0;

	memset(&sh, 0, sizeof(sh));
	sh.s = s;
	s->shell = 1;
	sh.tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	g_shell = &sh;
	s->print_begin = print_begin;
	s->print_end = print_end;
	s->print_user = &sh;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (sh.tty) {
		rl_readline_name = "roomdrop";
		using_history();
		stifle_history(SHELL_HISTORY);
		char addr[300];

		cli_addr_text(s->o, addr, sizeof(addr));
		printf("Connected to %s as %s. Type /help for commands, /quit to leave.\n", addr,
		       s->o->nick);
	}
	{
		struct cli_offer_rules rules = { .policy = CLI_OFFERS_ASK, .into = "." };

		if (cli_offers_listen(s, &rules) != 0 || cli_chat_init(s) != 0)
			return CLI_ELOCAL;
	}
	set_prompt(&sh);
	if (sh.tty)
		rl_callback_handler_install(sh.prompt, on_line);

	while (!sh.quit) {
		int timeout = -1;

		if (!sh.offline && !sh.lost) {
			char before[sizeof(sh.prompt)];

			rc = rd_conn_poll(s->conn, 0);
			if (rc == 0) /* answers decided meanwhile */
				rc = cli_offers_pending(s);
			if (rc == 0) /* direct links to accept or to ask for */
				rc = cli_chat_pending(s);
			if (rc == RD_ERR_CANCELLED)
				rc = 0; /* a signal: seen below */
			if (rc != 0)
				go_offline(&sh, rc);
			rc = 0;
			/* an offer's question came or was answered: the prompt follows */
			snprintf(before, sizeof(before), "%s", sh.prompt);
			set_prompt(&sh);
			if (strcmp(before, sh.prompt) != 0 && sh.tty)
				rl_forced_update_display();
			else if (strcmp(before, sh.prompt) != 0 &&
				 cli_offers_question(s, before, sizeof(before)))
				printf("%s\n", before); /* no prompt without a terminal: say it */
		}
		if (sh.lost)
			go_offline(&sh, 0);
		if (cli_quit || sh.quit)
			break;
		if (sh.offline) {
			uint64_t now = rd_now_mono_ms();

			if (now >= sh.retry_ms) {
				try_reconnect(&sh);
				continue;
			}
			timeout = (int)(sh.retry_ms - now);
		}
		p[0].fd = STDIN_FILENO;
		p[1].fd = sh.offline ? -1 : rd_conn_fd(s->conn);
		p[2].fd = cli_signal_fd[0];
		p[0].events = p[1].events = p[2].events = POLLIN;
		p[0].revents = p[1].revents = p[2].revents = 0;
		nlinks = cli_chat_pollfds(s, p + 3, CLI_CHAT_LINKS);
		if (!sh.offline && (cli_chat_busy(s) || rd_conn_pending(s->conn)))
			timeout = 0; /* work recorded while a link was being made, or frames
				      * read past a reply: the descriptor will not wake us */
		if (poll(p, 3 + nlinks, timeout) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[2].revents & POLLIN) {
			cli_signals_drain();
			if (cli_quit)
				break;
			if (cli_stop) { /* Ctrl-C at the prompt */
				cli_stop = 0;
				cancel_line(&sh);
			}
		}
		cli_chat_events(s, p + 3, nlinks);
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (sh.tty) {
				sh.line_done = 0;
				rl_callback_read_char();
				/* libedit leaves the terminal as the command left it (cooked):
				 * start the next line in editing mode, prompt below the output */
				if (sh.line_done && !sh.quit) {
					rl_callback_handler_remove();
					rl_callback_handler_install(sh.prompt, on_line);
				}
			} else
				read_plain(&sh);
		}
	}
	if (sh.tty) {
		rl_callback_handler_remove();
		if (cli_quit || sh.rc != 0)
			fputc('\n', stdout);
	}
	fflush(stdout);
	free(sh.pending);
	cli_offers_stop(s);
	cli_chat_stop(s);
	s->print_begin = s->print_end = NULL;
	g_shell = NULL;
	return sh.rc;
}
