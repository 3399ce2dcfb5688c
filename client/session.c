/* session.c - connecting with the user's options, event lines, error messages. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "files.h"
#include "progress.h"
#include "files/rdf_proto.h"
#include "rd_err.h"
#include "rd_names.h"
#include "rd_net.h"
#include "rd_proto.h"
#include "session.h"

#ifndef RD_VERSION
#define RD_VERSION "0"
#endif

volatile sig_atomic_t cli_stop;
volatile sig_atomic_t cli_quit;
int cli_signal_fd[2] = { -1, -1 };

static void on_signal(int sig)
{
	int saved = errno;
	char b = 1;

	cli_stop = 1;
	if (sig != SIGINT)
		cli_quit = 1;
	if (cli_signal_fd[1] >= 0)
		(void)!write(cli_signal_fd[1], &b, 1);
	errno = saved;
}

int cli_signals_install(void)
{
	struct sigaction sa;
	int i;

	if (cli_signal_fd[0] < 0) {
		if (pipe(cli_signal_fd) != 0)
			return -1;
		for (i = 0; i < 2; i++) {
			fcntl(cli_signal_fd[i], F_SETFL,
			      fcntl(cli_signal_fd[i], F_GETFL) | O_NONBLOCK);
			fcntl(cli_signal_fd[i], F_SETFD, FD_CLOEXEC);
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: let poll() see EINTR too */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	return 0;
}

char *cli_escape(const void *p, size_t n)
{
	size_t cap = n * 4 + 1;
	char *out;

	if (n > (SIZE_MAX - 1) / 4 || (out = malloc(cap)) == NULL) {
		fputs("roomdrop: out of memory\n", stderr);
		exit(CLI_EFAIL);
	}
	return rd_escape_display(p, n, out, cap);
}

void cli_format_time(uint64_t ms, char *out, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms == 0)
		t = time(NULL);
	if (localtime_r(&t, &tm) == NULL || strftime(out, cap, "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(out, cap, "?");
}

void cli_shutdown_text(const char *reason, char *out, size_t cap)
{
	char *t = cli_escape(reason, strlen(reason));

	if (t[0] == '\0' || strcasecmp(t, "the server is shutting down") == 0 ||
	    strcasecmp(t, "server shutting down") == 0)
		snprintf(out, cap, "the server is shutting down");
	else
		snprintf(out, cap, "the server is shutting down: %s", t);
	free(t);
}

int cli_shutdown_said(struct rd_conn *c, char *out, size_t cap)
{
	const char *reason;

	if (!rd_conn_shutdown_reason(c, &reason))
		return 0;
	cli_shutdown_text(reason, out, cap);
	return 1;
}

/* A password from the terminal, without echo, into s->typed: 0, or -1 when there is no
 * terminal to ask on (standard input and error) or nothing was typed. */
static int ask_password(struct cli_session *s, const char *addr)
{
	char line[RD_SECRET_MAX + 2];
	struct termios old, quiet;
	int got;
	size_t n;

	if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO) || tcgetattr(STDIN_FILENO, &old) != 0)
		return -1;
	fprintf(stderr, "%s wants a password: ", addr);
	fflush(stderr);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	(void)tcsetattr(STDIN_FILENO, TCSANOW, &quiet); /* (what was typed ahead is kept) */
	got = fgets(line, sizeof(line), stdin) != NULL;
	(void)tcsetattr(STDIN_FILENO, TCSANOW, &old);
	fputc('\n', stderr);
	n = got ? strcspn(line, "\r\n") : 0;
	if (n == 0 || n > RD_SECRET_MAX) {
		explicit_bzero(line, sizeof(line));
		return -1;
	}
	memcpy(s->typed, line, n);
	s->ntyped = n;
	explicit_bzero(line, sizeof(line));
	return 0;
}

void cli_session_init(struct cli_session *s, const struct cli_opts *o)
{
	memset(s, 0, sizeof(*s));
	s->o = o;
	s->out = stdout;
}

static void begin(struct cli_session *s)
{
	progress_hide(); /* a transfer's bar leaves its line to the event */
	if (s->print_begin)
		s->print_begin(s->print_user);
}

static void end(struct cli_session *s)
{
	fflush(s->out);
	fflush(stderr);
	if (s->print_end)
		s->print_end(s->print_user);
	progress_show();
}

/* "[room] <nick> text" and friends: the data as text or as a size. */
static void print_chat(FILE *out, const char *where, const char *from, uint8_t kind,
		       const struct rd_bytes *d)
{
	char *w = cli_escape(where, strlen(where)), *f = cli_escape(from, strlen(from)), *t;

	if (kind == RD_KIND_TEXT) {
		t = cli_escape(d->p, d->n);
		fprintf(out, "[%s] <%s> %s\n", w, f, t);
		free(t);
	} else {
		fprintf(out, "[%s] <%s> (binary, %zu bytes)\n", w, f, d->n);
	}
	free(w);
	free(f);
}

/* "* 312 more connected and 4 disconnected in the last second (too many to name)" */
static void print_presence_summary(FILE *out, const struct rd_msg_presence_summary *p)
{
	char *room = cli_escape(p->room, strlen(p->room));
	double secs = (double)p->interval_ms / 1000.0;

	fprintf(out,
		"* %" PRIu32 " more %s and %" PRIu32
		" %s%s%s in the last %.3g s (too many to name)\n",
		p->arrived, room[0] ? "joined" : "connected", p->departed,
		room[0] ? "left" : "disconnected", room[0] ? " " : "", room, secs);
	free(room);
}

static void print_presence(FILE *out, const struct rd_msg_presence *p)
{
	char *nick = cli_escape(p->nick, strlen(p->nick));
	char *room = cli_escape(p->room, strlen(p->room));
	char *why = cli_escape(p->reason.p, p->reason.n);
	const char *open = why[0] ? " (" : "", *close = why[0] ? ")" : "";

	switch (p->event) {
	case RD_PRESENCE_CONNECTED:
		fprintf(out, "* %s connected\n", nick);
		break;
	case RD_PRESENCE_DISCONNECTED:
		fprintf(out, "* %s disconnected%s%s%s\n", nick, open, why, close);
		break;
	case RD_PRESENCE_JOINED:
		fprintf(out, "* %s joined %s\n", nick, room);
		break;
	case RD_PRESENCE_LEFT:
		fprintf(out, "* %s left %s\n", nick, room);
		break;
	case RD_PRESENCE_KICKED:
		fprintf(out, "* %s was kicked%s%s%s\n", nick, open, why, close);
		break;
	case RD_PRESENCE_TIMED_OUT:
		fprintf(out, "* %s timed out\n", nick);
		break;
	case RD_PRESENCE_NICK:
		fprintf(out, "* %s is now known as %s\n", nick, why);
		break;
	default:
		fprintf(out, "* %s: presence event %u\n", nick, p->event);
		break;
	}
	free(nick);
	free(room);
	free(why);
}

/* A one-shot command with --quiet shows no room chatter (listen and the shell do). */
static int chatter_hidden(const struct cli_session *s)
{
	return !s->events && s->o->quiet;
}

void cli_print_msg(struct cli_session *s, const struct rd_msg *m)
{
	char when[64], *t;

	switch (m->type) {
	case RD_MSG_ROOM_MSG:
	case RD_MSG_PRIVATE_MSG:
	case RD_MSG_PRESENCE:
	case RD_MSG_PRESENCE_SUMMARY:
	case RD_MSG_BROADCAST:
		if (chatter_hidden(s))
			return;
		break;
	default:
		break;
	}
	switch (m->type) {
	case RD_MSG_ROOM_MSG:
		begin(s);
		print_chat(s->out, m->u.room_msg.room, m->u.room_msg.from, m->u.room_msg.kind,
			   &m->u.room_msg.data);
		end(s);
		break;
	case RD_MSG_PRIVATE_MSG:
		begin(s);
		print_chat(s->out, "private", m->u.private_msg.from, m->u.private_msg.kind,
			   &m->u.private_msg.data);
		end(s);
		break;
	case RD_MSG_PRESENCE:
		begin(s);
		print_presence(s->out, &m->u.presence);
		end(s);
		break;
	case RD_MSG_PRESENCE_SUMMARY:
		begin(s);
		print_presence_summary(s->out, &m->u.presence_summary);
		end(s);
		break;
	case RD_MSG_BROADCAST:
		cli_format_time(m->u.broadcast.time_ms, when, sizeof(when));
		t = cli_escape(m->u.broadcast.text.p, m->u.broadcast.text.n);
		begin(s);
		fprintf(s->out, "Message from the server on %s: %s\n", when, t);
		end(s);
		free(t);
		break;
	case RD_MSG_KICKED:
		s->kicked = 1;
		t = cli_escape(m->u.kicked.reason.p, m->u.kicked.reason.n);
		begin(s);
		fprintf(s->out, "* You were kicked%s%s\n", t[0] ? ": " : "", t);
		end(s);
		free(t);
		break;
	case RD_MSG_SHUTDOWN:
		/* an event line for listen; the shell and the commands say it as they end
		 * (the connection remembers the reason: cli_shutdown_said) */
		s->shutdown = 1;
		if (!s->events || s->shell)
			break;
		t = cli_escape(m->u.bye.reason.p, m->u.bye.reason.n);
		begin(s);
		fprintf(s->out, "* Server is shutting down%s%s\n", t[0] ? ": " : "", t);
		end(s);
		free(t);
		break;
	case RD_MSG_ERROR:
		s->async_err = m->u.error.code;
		t = cli_escape(m->u.error.text.p, m->u.error.text.n);
		if (s->opening) {
			snprintf(s->open_err, sizeof(s->open_err), "%s", t);
			free(t);
			break;
		}
		begin(s);
		fprintf(stderr, "roomdrop: the server says: %s%s%s%s\n",
			rd_wire_strerror(m->u.error.code), t[0] ? " (" : "", t, t[0] ? ")" : "");
		end(s);
		free(t);
		break;
	default:
		break; /* replies that came too late, offers: not events for this client */
	}
}

void cli_print_direct(struct cli_session *s, const struct rd_msg *m)
{
	char where[RD_ROOM_BUF + 16];

	begin(s);
	if (m->type == RD_MSG_ROOM_MSG) {
		snprintf(where, sizeof(where), "%s, direct", m->u.room_msg.room);
		print_chat(s->out, where, m->u.room_msg.from, m->u.room_msg.kind,
			   &m->u.room_msg.data);
	} else if (m->type == RD_MSG_PRIVATE_MSG) {
		print_chat(s->out, "private, direct", m->u.private_msg.from, m->u.private_msg.kind,
			   &m->u.private_msg.data);
	}
	end(s);
}

void cli_note(struct cli_session *s, const char *fmt, ...)
{
	va_list ap;

	begin(s);
	fputs("roomdrop: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	end(s);
}

static void on_msg(struct rd_conn *c, const struct rd_msg *m, void *user)
{
	struct cli_session *s = user;

	(void)c;
	if (s->on_chat != NULL && s->on_chat(s, m))
		return;
	if (s->on_offer != NULL &&
	    (m->type == RD_MSG_OFFER_IN || m->type == RD_MSG_OFFER_ANSWERED ||
	     m->type == RD_MSG_OFFER_RESULT || m->type == RD_MSG_OFFER_DATA ||
	     m->type == RD_MSG_OFFER_END || m->type == RD_MSG_P2P_INTRO ||
	     m->type == RD_MSG_P2P_FAILED)) {
		s->on_offer(s, m);
		return;
	}
	cli_print_msg(s, m);
}

static void on_app_frame(struct rd_conn *c, const struct rd_frame *f, void *user)
{
	struct cli_session *s = user;

	(void)c;
	if (chatter_hidden(s) && f->hdr.type == RDF_MSG_FILE_NOTICE)
		return;
	begin(s);
	cli_files_print_frame(f, s->out);
	end(s);
}

void cli_addr_text(const struct cli_opts *o, char *out, size_t cap)
{
	char *h = cli_escape(o->host, strlen(o->host));

	if (strchr(o->host, ':'))
		snprintf(out, cap, "[%s]:%u", h, o->port);
	else
		snprintf(out, cap, "%s:%u", h, o->port);
	free(h);
}

/* Why rc/werr happened, in words, into out. */
static void why_text(struct cli_session *s, int rc, uint16_t werr, char *out, size_t cap)
{
	const char *srv;
	char *t;

	switch (rc) {
	case RD_ERR_REMOTE:
		if (werr == RD_E_NO_SUCH_ROOM) {
			/* the server's text names the protocol's ROOMS request: say what to type */
			snprintf(out, cap, "there is no such room (%s lists the rooms)",
				 s->shell ? "/rooms" : "`roomdrop rooms`");
			break;
		}
		srv = s->conn ? rd_conn_last_error(s->conn) : "";
		t = cli_escape(srv, strlen(srv));
		if (t[0]) /* the server's own words are the more precise */
			snprintf(out, cap, "%s", t);
		else
			snprintf(out, cap, "%s", rd_wire_strerror(werr));
		free(t);
		break;
	case RD_ERR_CLOSED:
		if (s->conn) /* a send failed first: read what came before the close */
			(void)rd_conn_poll(s->conn, 0);
		if (s->kicked)
			snprintf(out, cap, "you were kicked");
		else if (!cli_shutdown_said(s->conn, out, cap))
			snprintf(out, cap, "lost the connection to the server");
		break;
	case RD_ERR_TIMEOUT:
		snprintf(out, cap, "no answer from the server within %d s",
			 (s->o->timeout_ms + 999) / 1000);
		break;
	case RD_ERR_SYSTEM:
		snprintf(out, cap, "%s", strerror(errno));
		break;
	default:
		snprintf(out, cap, "%s", rd_strerror(rc));
		break;
	}
}

int cli_report(struct cli_session *s, const char *what, int rc, uint16_t werr)
{
	char why[512];

	why_text(s, rc, werr, why, sizeof(why));
	fprintf(stderr, "roomdrop: %s: %s\n", what, why);
	if (rc == RD_ERR_CLOSED && s->kicked)
		return CLI_EKICKED;
	return cli_exit_for(rc, werr);
}

static void session_options(struct cli_session *s, struct rd_conn_options *opt)
{
	rd_conn_options_defaults(opt);
	opt->connect_timeout_ms = s->o->timeout_ms;
	opt->request_timeout_ms = s->o->timeout_ms;
	opt->software = "roomdrop/" RD_VERSION;
	opt->features = RD_FEAT_ZLIB | RD_FEAT_FILES | RD_FEAT_REDIRECT | RD_FEAT_PUT_SEAL;
	if (s->quiet)
		opt->features |= RD_FEAT_QUIET;
	opt->cancel_fd = cli_signal_fd[0]; /* a signal (listen, shell) ends every wait */
	opt->plain = s->o->plain;
	opt->server_fp = s->o->server_fp;
	opt->ca_file = s->o->ca_file;
	opt->report = &s->tls;
}

/* What the transport's report says the user must know: the first connection to a server
 * (one line), or why its key was refused (a hard failure, with the command that accepts
 * a new key). Returns CLI_EKEY for a refused key, else 0. */
static int tls_outcome(struct cli_session *s, const char *addr)
{
	const struct rd_conn_tls_report *r = &s->tls;
	char seen[RD_TLS_FP_TEXT_LEN], known[RD_TLS_FP_TEXT_LEN];

	rd_tls_fp_format(r->server_fp, seen);
	rd_tls_fp_format(r->known_fp, known);
	switch (r->trust) {
	case RD_CONN_FIRST_USE:
		if (!s->tls_told)
			fprintf(stderr,
				"roomdrop: first connection to %s: its key %s is now recorded in "
				"%s (compare it with `roomdrop-server fingerprint` on the server)\n",
				addr, seen, r->trust_file);
		s->tls_told = 1;
		return 0;
	case RD_CONN_CHANGED:
		fprintf(stderr,
			"roomdrop: the server at %s presented the key\n    %s\nbut %s records\n    "
			"%s\nNothing was sent. Either the server got a new key, or someone is "
			"between you and it. Check with the server's administrator "
			"(`roomdrop-server fingerprint`); if the new key is right, accept it with:\n"
			"    roomdrop --host %s --port %u trust %s\n",
			addr, seen, r->trust_file, known, s->o->host, s->o->port, seen);
		return CLI_EKEY;
	case RD_CONN_MISMATCH:
		fprintf(stderr,
			"roomdrop: the server at %s is not the one pinned with --server-fp: its key "
			"is %s. Nothing was sent.\n",
			addr, r->server_fp[0] || r->server_fp[1] ? seen : "unknown");
		return CLI_EKEY;
	case RD_CONN_VOUCH_MISMATCH: {
		char vouched[RD_TLS_FP_TEXT_LEN];
		rd_tls_fp_format(r->vouched_fp, vouched);
		fprintf(stderr,
			"roomdrop: %s:%u redirected you to %s:%u and vouched for the key\n    %s\n"
			"but the server there presented\n    %s\nNothing was sent. Either that server "
			"got a new key that the cluster does not know yet, or someone is between you "
			"and it: tell the administrator of %s.\n",
			r->via_host, r->via_port, r->host, r->port, vouched,
			r->server_fp[0] || r->server_fp[1] ? seen : "(none)", addr);
		return CLI_EKEY;
	}
	default:
		return 0;
	}
}

static int trust(const struct cli_opts *o, const char *fp_text, int say)
{
	char dir[512], path[600], addr[300], text[RD_TLS_FP_TEXT_LEN];
	uint8_t fp[RD_TLS_FP_LEN];
	int rc;

	cli_addr_text(o, addr, sizeof(addr));
	if (rd_tls_fp_parse(fp_text, fp) != 0) {
		fprintf(stderr, "roomdrop: trust: '%s' is not a fingerprint\n", fp_text);
		return CLI_EUSAGE;
	}
	if (rd_tls_config_dir(dir, sizeof(dir)) != 0) {
		fputs("roomdrop: trust: no configuration folder (set HOME or XDG_CONFIG_HOME)\n",
		      stderr);
		return CLI_ELOCAL;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, RD_TLS_KNOWN_SERVERS);
	if ((rc = rd_tls_trust_replace(path, o->host, o->port, fp)) != 0) {
		fprintf(stderr, "roomdrop: trust: cannot write %s: %s\n", path,
			rc == RD_ERR_SYSTEM ? strerror(errno) : rd_strerror(rc));
		return CLI_ELOCAL;
	}
	rd_tls_fp_format(fp, text);
	if (say)
		printf("%s: key %s recorded in %s\n", addr, text, path);
	return CLI_OK;
}

int cli_trust(const struct cli_opts *o, const char *fp_text)
{
	return trust(o, fp_text, 1);
}

int cli_trust_quiet(const struct cli_opts *o, const char *fp_text)
{
	return trust(o, fp_text, 0);
}

int cli_session_reconnect(struct cli_session *s, char *why, size_t cap)
{
	struct rd_conn_options opt;
	struct rd_conn_callbacks cb = { .user = s, .on_msg = on_msg, .on_app_frame = on_app_frame };
	uint16_t werr = 0;
	int rc;

	why[0] = '\0';
	rd_conn_close(s->conn);
	s->conn = NULL;
	s->kicked = s->shutdown = 0;
	s->async_err = 0;
	session_options(s, &opt);
	s->opening = 1;
	s->open_err[0] = '\0';
	rc = rd_conn_open(s->o->host, s->o->port, &opt, &cb, &s->conn, &werr);
	s->opening = 0;
	if (rc == 0 && s->o->secret_kind == 0 && s->ntyped > 0)
		rc = rd_conn_auth(s->conn, RD_AUTH_PASSWORD, s->typed, s->ntyped, &werr);
	if (rc == 0 && s->o->secret_kind != 0)
		rc = rd_conn_auth(s->conn, s->o->secret_kind, s->o->secret, s->o->secret_len,
				  &werr);
	if (rc == 0 && (rc = rd_conn_register(s->conn, s->o->nick, &werr)) == 0 && s->room[0] &&
	    (rc = rd_conn_join_key(s->conn, s->room, s->o->room_key,
				   rd_name_eq(s->room, s->o->room) ? s->o->room_key_len : 0, NULL,
				   &werr)) != 0 &&
	    rc == RD_ERR_REMOTE && werr == RD_E_NO_SUCH_ROOM) {
		s->room[0] = '\0'; /* connected; the room did not come back */
		rc = 0;
	}
	if (rc == 0)
		return 0;
	if (rc == RD_ERR_REFUSED)
		snprintf(why, cap, "connection refused");
	else if (rc == RD_ERR_REMOTE)
		snprintf(why, cap, "%s", s->open_err[0] ? s->open_err : rd_wire_strerror(werr));
	else
		why_text(s, rc, werr, why, cap);
	rd_conn_close(s->conn);
	s->conn = NULL;
	return rc;
}

int cli_session_open(struct cli_session *s, int join)
{
	const struct cli_opts *o = s->o;
	struct rd_conn_options opt;
	struct rd_conn_callbacks cb = { .user = s, .on_msg = on_msg, .on_app_frame = on_app_frame };
	char addr[300], what[400], why[512];
	uint16_t werr = 0;
	int rc, saved;

	cli_addr_text(o, addr, sizeof(addr));
	session_options(s, &opt);
	s->opening = 1;
	s->open_err[0] = '\0';
	rc = rd_conn_open(o->host, o->port, &opt, &cb, &s->conn, &werr);
	s->opening = 0;
	if ((saved = tls_outcome(s, addr)) != 0)
		return saved;
	if (s->tls.redirects > 0 && (rc != 0 || !o->quiet)) {
		/* say which server this is: the user asked for another one */
		char *text = cli_escape(s->tls.redirect_reason, strlen(s->tls.redirect_reason));
		char key[RD_TLS_FP_TEXT_LEN] = "";
		if (s->tls.trust == RD_CONN_VOUCHED)
			rd_tls_fp_format(s->tls.vouched_fp, key);
		fprintf(stderr, "roomdrop: %s:%u redirected you to %s:%u (%s%s)%s%s%s\n",
			s->tls.via_host, s->tls.via_port, s->tls.host, s->tls.port,
			s->tls.redirect_temporary ? "temporary: " : "", text ? text : "",
			rc == 0 ? "; connected there" : "", key[0] ? ", key vouched for: " : "",
			key);
		free(text);
	}
	if (rc == RD_ERR_REMOTE && werr == RD_E_TLS_REQUIRED) {
		fprintf(stderr,
			"roomdrop: cannot connect to %s: the server speaks TLS only; leave out "
			"--plain\n",
			addr);
		return CLI_ECONNECT;
	}
	if (rc == RD_ERR_REMOTE) {
		fprintf(stderr, "roomdrop: the server at %s refused the connection: %s\n", addr,
			s->open_err[0] ? s->open_err : rd_wire_strerror(werr));
		rc = cli_exit_for(rc, werr);
		return rc == CLI_EFAIL ? CLI_ECONNECT : rc;
	}
	if (rc != 0) {
		saved = errno;
		switch (rc) {
		case RD_ERR_REFUSED:
			snprintf(why, sizeof(why), "connection refused");
			break;
		case RD_ERR_TIMEOUT:
			snprintf(why, sizeof(why), "no answer within %d s",
				 (o->timeout_ms + 999) / 1000);
			break;
		case RD_ERR_ADDR:
			snprintf(why, sizeof(why), "unknown host");
			break;
		case RD_ERR_SYSTEM:
			snprintf(why, sizeof(why), "%s", strerror(saved));
			break;
		case RD_ERR_CLOSED:
			snprintf(why, sizeof(why), "the server closed the connection");
			break;
		case RD_ERR_PROTOCOL:
			if (s->tls.server_plaintext) {
				snprintf(why, sizeof(why),
					 "the server does not use TLS (it runs with --tls off); "
					 "connect with --plain if you accept an unencrypted link");
				break;
			}
			snprintf(why, sizeof(why), "%s",
				 s->tls.reason[0] ? s->tls.reason : "not a roomdrop server");
			break;
		case RD_ERR_MISMATCH:
		case RD_ERR_CRYPTO:
		case RD_ERR_NOT_FOUND:
		case RD_ERR_INVAL:
			snprintf(why, sizeof(why), "%s",
				 s->tls.reason[0] ? s->tls.reason : rd_strerror(rc));
			break;
		case RD_ERR_BAD_MAGIC:
		case RD_ERR_BAD_VERSION:
		case RD_ERR_MALFORMED:
			snprintf(why, sizeof(why), "not a roomdrop server (%s)", rd_strerror(rc));
			break;
		default:
			snprintf(why, sizeof(why), "%s", rd_strerror(rc));
			break;
		}
		fprintf(stderr, "roomdrop: cannot connect to %s: %s\n", addr, why);
		return CLI_ECONNECT;
	}
	if (o->secret_kind != 0 &&
	    (rc = rd_conn_auth(s->conn, o->secret_kind, o->secret, o->secret_len, &werr)) != 0)
		return cli_report(s,
				  o->secret_kind == RD_AUTH_PASSWORD ? "password refused" :
								       "invitation refused",
				  rc, werr);
	if (o->no_register)
		return CLI_OK;
	rc = rd_conn_register(s->conn, o->nick, &werr);
	if (rc == RD_ERR_REMOTE && werr == RD_E_AUTH_REQUIRED && o->secret_kind == 0 &&
	    ask_password(s, addr) == 0) {
		/* the server wants a password and a person is there to type it */
		if ((rc = rd_conn_auth(s->conn, RD_AUTH_PASSWORD, s->typed, s->ntyped, &werr)) != 0)
			return cli_report(s, "password refused", rc, werr);
		rc = rd_conn_register(s->conn, o->nick, &werr);
	}
	if (rc != 0) {
		snprintf(what, sizeof(what),
			 rc == RD_ERR_REMOTE ? "nickname '%s' refused" : "registering as '%s'",
			 o->nick);
		return cli_report(s, what, rc, werr);
	}
	if (join) {
		if ((rc = rd_conn_join_key(s->conn, o->room, o->room_key, o->room_key_len, NULL,
					   &werr)) != 0) {
			snprintf(what, sizeof(what), "cannot join room '%s'", o->room);
			return cli_report(s, what, rc, werr);
		}
		snprintf(s->room, sizeof(s->room), "%s", o->room);
	}
	return CLI_OK;
}

void cli_signals_drain(void)
{
	char sink[64];

	if (cli_signal_fd[0] >= 0)
		while (read(cli_signal_fd[0], sink, sizeof(sink)) > 0)
			;
}

void cli_session_close(struct cli_session *s)
{
	explicit_bzero(s->typed, sizeof(s->typed));
	rd_conn_close(s->conn);
	s->conn = NULL;
}

void cli_print_rooms(FILE *out, const struct rd_msg_room_list *l, const char *mine)
{
	uint32_t i;
	char *name;

	for (i = 0; i < l->count; i++) {
		name = cli_escape(l->items[i].name, strlen(l->items[i].name));
		fprintf(out, "%-20s %u member%s%s\n", name, l->items[i].members,
			l->items[i].members == 1 ? "" : "s",
			mine && rd_name_eq(mine, l->items[i].name) ? "  (you are here)" : "");
		free(name);
	}
}

void cli_print_who(FILE *out, const struct rd_msg_who_list *l)
{
	char when[64], *nick;
	uint32_t i;

	for (i = 0; i < l->count; i++) {
		nick = cli_escape(l->items[i].nick, strlen(l->items[i].nick));
		if (l->items[i].since_ms) {
			cli_format_time(l->items[i].since_ms, when, sizeof(when));
			fprintf(out, "%-20s since %s\n", nick, when);
		} else {
			fprintf(out, "%s\n", nick);
		}
		free(nick);
	}
}

void cli_verror(const char *suffix, const char *fmt, va_list ap)
{
	char buf[1024], *e;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	e = cli_escape(buf, strlen(buf));
	fprintf(stderr, "roomdrop: %s%s\n", e ? e : buf, suffix);
	free(e);
}
