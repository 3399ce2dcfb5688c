/* session.h - one connection of the command-line client: connecting with the user's
 * options, turning events into lines for a terminal or a script, and turning errors into
 * messages and exit codes. Shared by the one-shot commands (main.c) and the shell. */
#ifndef ROOMDROP_CLIENT_SESSION_H
#define ROOMDROP_CLIENT_SESSION_H

#include <signal.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>

#include "cli.h"
#include "rd_client.h"
#include "rd_msg.h"

struct cli_session {
	const struct cli_opts *o;
	struct rd_conn *conn;
	/* the password typed at the prompt (the server asked for one and o has none): kept
	 * for the shell's reconnections */
	uint8_t typed[RD_SECRET_MAX];
	size_t ntyped;
	char room[RD_ROOM_BUF];        /* room joined, "" if none */
	int kicked;                    /* KICKED received */
	int shutdown;                  /* SHUTDOWN received */
	uint16_t async_err;            /* code of the last unsolicited ERROR, 0 if none */
	int opening;                   /* in cli_session_open: unsolicited ERRORs are kept, */
	char open_err[256];            /* not printed (the refusal says it) */
	FILE *out;                     /* where event lines go (stdout) */
	struct rd_conn_tls_report tls; /* what the transport found at the last connection */
	int tls_told;                  /* the first-use line was printed already */
	int quiet;                     /* a one-shot command: HELLO says RD_FEAT_QUIET, so the
				 * server announces none of its comings and goings */
	int shell;                     /* the interactive shell runs (messages name /commands) */
	int events; /* listen or shell: events are the output, even with --quiet */
	/* Called around every event line, so the shell can take its input line off the
	 * screen and put it back (NULL = nothing to do). */
	void (*print_begin)(void *user);
	void (*print_end)(void *user);
	void *print_user;
	/* Offers (OFFER_IN, OFFER_ANSWERED, OFFER_RESULT, OFFER_DATA, OFFER_END, and the
	 * direct link's P2P_INTRO and P2P_FAILED) go here
	 * instead of being printed, when set (offer.c). Called from inside the library's
	 * dispatch: it must not make requests on the connection. */
	void (*on_offer)(struct cli_session *s, const struct rd_msg *m);
	void *offer_user;
	/* Direct chats (chat.c) see every server message first: 1 = it was theirs (not
	 * printed, not passed on). Same rule: no request from inside. */
	int (*on_chat)(struct cli_session *s, const struct rd_msg *m);
	void *chat_user;
};

void cli_session_init(struct cli_session *s, const struct cli_opts *o);
/* Connect, register o->nick and, if join, enter o->room. Prints what went wrong
 * ("roomdrop: cannot connect to ...") and returns the exit code (CLI_OK on success). */
int cli_session_open(struct cli_session *s, int join);
/* roomdrop trust FP: record FP as the key of o->host:o->port in known_servers (replacing
 * what was recorded). Returns the exit code. */
int cli_trust(const struct cli_opts *o, const char *fp_text);
/* The same, printing nothing (join-invite says it its own way). */
int cli_trust_quiet(const struct cli_opts *o, const char *fp_text);
/* Send BYE and close. */
void cli_session_close(struct cli_session *s);
/* Drop the connection and open a new one as before: register o->nick and enter s->room
 * again (if the room is gone, s->room becomes "" and this still succeeds). Prints
 * nothing; on failure returns the library's code with the reason in why, and s->conn is
 * NULL. */
int cli_session_reconnect(struct cli_session *s, char *why, size_t cap);
/* "host:port", with brackets for an IPv6 address, escaped. */
void cli_addr_text(const struct cli_opts *o, char *out, size_t cap);

/* Print "roomdrop: WHAT: WHY" on stderr for rc/werr (WHY from the server's ERROR text when
 * it sent one) and return cli_exit_for(rc, werr). */
int cli_report(struct cli_session *s, const char *what, int rc, uint16_t werr);

/* "the server is shutting down: REASON" (escaped; without ": REASON" when the reason is
 * empty or says just that) into out. */
void cli_shutdown_text(const char *reason, char *out, size_t cap);
/* If the server announced SHUTDOWN on c, its words (cli_shutdown_text) into out and 1. */
int cli_shutdown_said(struct rd_conn *c, char *out, size_t cap);

/* Print one event as one line (flushed); nothing for messages that are not events. */
void cli_print_msg(struct cli_session *s, const struct rd_msg *m);
/* A PRIVATE_MSG or ROOM_MSG that came over a direct link: "[private, direct] <alice> hi",
 * "[general, direct] <alice> hi". */
void cli_print_direct(struct cli_session *s, const struct rd_msg *m);
/* A status line "roomdrop: ..." on stderr, around the shell's input line (escaped by the
 * caller). */
void cli_note(struct cli_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copy n bytes for the terminal (control characters and invalid UTF-8 as \xNN) into a
 * malloc'd string; never NULL (aborts on out of memory, like the rest of the program). */
char *cli_escape(const void *p, size_t n);
/* "roomdrop: MESSAGE" + suffix on stderr, the whole message escaped for the terminal
 * (messages quote what the user typed). */
void cli_verror(const char *suffix, const char *fmt, va_list ap);
/* Local "%Y-%m-%d %H:%M" of a wall-clock time in ms. */
void cli_format_time(uint64_t ms, char *out, size_t cap);

/* Room and who listings as printed by both the commands and the shell. */
void cli_print_rooms(FILE *out, const struct rd_msg_room_list *l, const char *mine);
void cli_print_who(FILE *out, const struct rd_msg_who_list *l);

/* The interactive shell (shell.c): returns an exit code. */
int cli_shell_run(struct cli_session *s);

/* cli_stop is set by SIGINT, SIGTERM and SIGHUP ("stop what you are doing"), cli_quit by
 * SIGTERM and SIGHUP only ("and leave"): in the shell, Ctrl-C cancels the typed line or
 * the running command and the session goes on. Each signal also writes a byte to
 * cli_signal_fd[1], so that poll() wakes up; the read end is the connection's cancel_fd
 * (every wait of the library returns RD_ERR_CANCELLED while a byte is there). */
extern volatile sig_atomic_t cli_stop;
extern volatile sig_atomic_t cli_quit;
extern int cli_signal_fd[2];
int cli_signals_install(void);
/* Read the bytes the signals wrote (after the interrupted work has stopped). */
void cli_signals_drain(void);

#endif
