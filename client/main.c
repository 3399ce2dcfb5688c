/* main.c - build/roomdrop, the command-line client: options, one-shot commands, listen,
 * and the exit code table (cli.h). Input is checked before anything connects. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "files.h"
#include "offer.h"
#include "files/rdf_proto.h"
#include "rd_err.h"
#include "rd_hash.h"
#include "rd_names.h"
#include "rd_net.h"
#include "rd_proto.h"
#include "rd_tls.h"
#include "session.h"

#ifndef RD_VERSION
#define RD_VERSION "0"
#endif

#define DEFAULT_ROOM "general"
#define DEFAULT_TIMEOUT_MS 10000
#define MAX_TIMEOUT_S 86400.0
#define DEFAULT_RECONNECT_S 60
#define MAX_RECONNECT_S 86400

static const char usage_text[] =
	"Usage: roomdrop [OPTIONS] COMMAND [ARGS...]\n"
	"\n"
	"Command-line client of a roomdrop server: chat in rooms and share files.\n"
	"\n"
	"Commands:\n"
	"  rooms                     list the server's rooms and how many people are in each\n"
	"  who [ROOM]                list who is in ROOM (default: --room)\n"
	"  say TEXT...               say TEXT to everyone in --room\n"
	"  msg NICK TEXT...          send TEXT to NICK only\n"
	"  listen                    stay in --room and print every event, one per line\n"
	"                            (for scripts; stops on Ctrl-C / SIGTERM); file offers\n"
	"                            are shown, or answered with one of:\n"
	"      --accept-all          accept every file offer\n"
	"      --reject-all          reject every file offer\n"
	"      --accept-from NICK    accept NICK's offers, reject the others\n"
	"      --into DIR            where accepted files go (default .); a NAME.part there\n"
	"                            from an earlier attempt is resumed\n"
	"      --take PATTERN        take only the files whose path or name matches PATTERN\n"
	"                            (a shell pattern: '*.pdf'); alone, as --accept-all\n"
	"      --p2p auto|never      auto (default): take an offer made to you alone over a\n"
	"                            direct link when one is verified, else through the\n"
	"                            server; never: always through the server\n"
	"  shell                     interactive session (the default when stdin is a\n"
	"                            terminal and no command is given); /help inside;\n"
	"                            Ctrl-C drops the typed line or stops the running\n"
	"                            command, /quit or Ctrl-D leaves; reconnects by itself\n"
	"                            when the server restarts (see --reconnect)\n"
	"  put FILE|DIR... [--overwrite|--rename]\n"
	"                            upload files into the room's folder (a DIR: the\n"
	"                            files directly in it); small files go pipelined\n"
	"                            and are committed together; a big file not put\n"
	"                            before is hashed while it is sent; an interrupted\n"
	"                            put resumes when run again\n"
	"  get NAME|PATTERN... [-o DIR] [--overwrite]\n"
	"                            download files from the room's folder (a PATTERN\n"
	"                            such as '*.pdf' takes every file it matches)\n"
	"  offer NICK PATH...        offer files and folders to NICK: waits for the answer,\n"
	"                            sends what was accepted, then waits for the\n"
	"                            recipient's receipt of verified files\n"
	"      --p2p auto|never|only auto (default): directly to NICK when a verified direct\n"
	"                            link is made within about 2 s, else through the\n"
	"                            server, and on through it from where a broken direct\n"
	"                            link stopped; never: through the server; only:\n"
	"                            directly or not at all (exit 15; a link that breaks:\n"
	"                            exit 7, a new offer resumes)\n"
	"  offer --everyone PATH...  the same to every other member of --room (always\n"
	"                            through the server)\n"
	"  ls                        list the files of the room's folder\n"
	"  rm NAME                   delete a file from the room's folder\n"
	"  trust FP                  accept FP as the key of --host:--port from now on\n"
	"                            (after the server's key really changed)\n"
	"  join-invite LINK          use an invitation (roomdrop://HOST:PORT/invite/...):\n"
	"                            records the server's key from the link and gets your\n"
	"                            key admitted to the server\n"
	"Every command connects, takes --nick, enters --room (except rooms), does its work\n"
	"and quits. For say and msg, everything after the command word is the message.\n"
	"\n"
	"Options:\n"
	"  --host HOST        server address: HOST, HOST:PORT, IPv6 or [IPv6]:PORT\n"
	"                     (default 127.0.0.1)\n"
	"  --port PORT        server port, 1-65535 (default 7878)\n"
	"  --nick NICK        nickname: 1-32 letters, digits, '_', '.', '-', starting with a\n"
	"                     letter, digit or '_' (default: $USER, made valid)\n"
	"  --room ROOM        room to enter (default general); same rules as nicknames\n"
	"  --timeout SECONDS  limit for connecting and for each request (default 10)\n"
	"  --reconnect SECONDS\n"
	"                     shell: how long to keep reconnecting after the connection is\n"
	"                     lost or the server restarts (default 60; 0 = never), then exit 8\n"
	"  -q, --quiet        no progress bars or chatter: only errors and one summary line\n"
	"  --no-compress      put: send every chunk raw (by default a compressible file's\n"
	"                     chunks are compressed while that saves time on this link)\n"
	"  --server-fp FP     accept only the server whose key has this fingerprint (as\n"
	"                     `roomdrop-server fingerprint` prints it); for scripts\n"
	"  --ca FILE          verify the server's certificate with this CA and its name\n"
	"  --password-file FILE\n"
	"                     the server's password, on the first line of FILE (for a\n"
	"                     server run with --admission password; on a terminal,\n"
	"                     without it, roomdrop asks for the password)\n"
	"  --room-key-file FILE\n"
	"                     the key of --room, on the first line of FILE (for a room\n"
	"                     the server restricts to holders of its key)\n"
	"  --plain            no TLS: for a server run with --tls off only\n"
	"  --overwrite        put: replace a file of the same name; get: replace a local file\n"
	"  --rename           put: store as \"name (1).ext\" if the name is taken\n"
	"  -o, --output DIR   get: write into DIR (default .); -o - writes the file to\n"
	"                     standard output (checked at the end: exit 7 if it does not verify)\n"
	"  -h, --help         show this help\n"
	"  -V, --version      show the version\n"
	"  --                 end of options\n"
	"\n"
	"Environment (overridden by the options):\n"
	"  ROOMDROP_HOST, ROOMDROP_PORT, ROOMDROP_NICK, ROOMDROP_ROOM, ROOMDROP_PLAIN=1\n"
	"  (as --plain)\n"
	"\n"
	"Event lines (listen and shell):\n"
	"  [general] <alice> hello        [private] <bob> hi\n"
	"  * bob joined general           * bob disconnected (quit)\n"
	"  Message from the server on 2026-01-31 10:42: TEXT\n"
	"\n"
	"Exit codes:\n"
	"   0  success\n"
	"   1  the server refused the request (other than below)\n"
	"   2  bad command line or input: address, port, malformed nickname or room,\n"
	"      options\n"
	"   3  could not connect (refused, timeout, unknown host)\n"
	"   4  nickname refused (taken, reserved, registered to another key, or refused\n"
	"      by the server)\n"
	"   5  unknown room, user or file\n"
	"   6  file exists (remote without --overwrite/--rename, or local)\n"
	"   7  hash or size verification failed (offer: a recipient could not save or\n"
	"      verify a file it took, or left before saying it had; --p2p only: the\n"
	"      direct link broke)\n"
	"   8  connection lost, server shut down or stopped answering (shell: not\n"
	"      reconnected within --reconnect seconds)\n"
	"   9  kicked by the administrator\n"
	"  10  file too big, quota, server out of space, server full\n"
	"  11  offer: nobody accepted (rejected, expired or cancelled)\n"
	"  12  local I/O error (cannot read or write a local file)\n"
	"  13  the server's store failed (read-only, permission or I/O error)\n"
	"  14  the server's key is not the one recorded (known_servers) or pinned\n"
	"      (--server-fp): nothing was sent; see the message for what to do\n"
	"  15  offer --p2p only: no direct link to the recipient could be made; nothing\n"
	"      was sent\n"
	"  16  not allowed: the file belongs to another key (only its uploader or an\n"
	"      operator of the room may replace or delete it)\n"
	"  17  not admitted: the server wants a password (--password-file), the password or\n"
	"      the invitation was refused, or it admits only known keys and not yours\n"
	"  18  the server's cluster is degraded (its shared state, Redis, does not answer):\n"
	"      it cannot check nicknames or admissions now; try again in a moment\n"
	"\n"
	"Security: every connection uses TLS 1.3. The first connection to a server\n"
	"records its key in ~/.config/roomdrop/known_servers and says so; later ones\n"
	"must show the same key. This client's own key is ~/.config/roomdrop/client.key\n"
	"($XDG_CONFIG_HOME/roomdrop when set).\n";

int cli_exit_for(int rc, uint16_t werr)
{
	switch (rc) {
	case 0:
		return CLI_OK;
	case RD_ERR_REMOTE:
		break;
	case RD_ERR_REFUSED:
	case RD_ERR_ADDR:
		return CLI_ECONNECT;
	case RD_ERR_CLOSED:
	case RD_ERR_TIMEOUT:
	case RD_ERR_PROTOCOL:
	case RD_ERR_MALFORMED:
	case RD_ERR_BAD_MAGIC:
	case RD_ERR_BAD_VERSION:
	case RD_ERR_TOO_BIG:
	case RD_ERR_ZLIB:
		return CLI_ELOST;
	case RD_ERR_INVAL:
		return CLI_EUSAGE;
	case RD_ERR_NOT_FOUND:
		return CLI_ENOTFOUND;
	case RD_ERR_EXISTS:
		return CLI_ECONFLICT;
	case RD_ERR_MISMATCH:
		return CLI_EVERIFY;
	case RD_ERR_FULL:
		return CLI_ELIMIT;
	case RD_ERR_SYSTEM:
		return CLI_ELOCAL;
	default:
		return CLI_EFAIL;
	}
	switch (werr) {
	case RD_E_NICK_TAKEN:
	case RD_E_NICK_INVALID:
	case RD_E_NICK_LENGTH:
	case RD_E_NICK_RESERVED:
	case RD_E_NICK_OWNED:
	case RD_E_ALREADY_REGISTERED:
		return CLI_ENICK;
	case RD_E_NO_SUCH_ROOM:
	case RD_E_NO_SUCH_USER:
	case RDF_E_NO_SUCH_FILE:
		return CLI_ENOTFOUND;
	case RDF_E_FILE_EXISTS:
	case RDF_E_BUSY:
		return CLI_ECONFLICT;
	case RDF_E_PERMISSION:
		return CLI_EPERM;
	case RD_E_AUTH_REQUIRED:
	case RD_E_NOT_ADMITTED:
	case RD_E_BAD_SECRET:
		return CLI_EADMIT;
	case RD_E_CLUSTER_DEGRADED:
		return CLI_EDEGRADED;
	case RDF_E_HASH_MISMATCH:
	case RDF_E_SIZE_MISMATCH:
		return CLI_EVERIFY;
	case RDF_E_FILE_TOO_BIG:
	case RDF_E_QUOTA:
	case RDF_E_NO_SPACE:
	case RD_E_SERVER_FULL:
		return CLI_ELIMIT;
	case RD_E_BAD_VERSION:
		return CLI_ECONNECT;
	case RD_E_SHUTTING_DOWN:
	case RD_E_SLOW_READER:
	case RD_E_PING_TIMEOUT:
	case RD_E_REGISTER_TIMEOUT:
		return CLI_ELOST;
	case RD_E_NO_SUCH_OFFER:
	case RD_E_OFFER_STATE:
		return CLI_EREJECTED;
	case RD_E_OFFER_SELF:
		return CLI_EUSAGE;
	case RD_E_OFFER_NOBODY:
	case RD_E_NOT_IN_ROOM:
		return CLI_ENOTFOUND;
	case RDF_E_READ_ONLY:
	case RDF_E_STORAGE:
		return CLI_ESTORE;
	default:
		return CLI_EFAIL;
	}
}

/* ---- options ------------------------------------------------------------------------- */

/* "roomdrop: MESSAGE (try --help)" on stderr, the whole message escaped for the terminal
 * (it quotes what the user typed); returns CLI_EUSAGE. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_verror(" (try --help)", fmt, ap);
	va_end(ap);
	return CLI_EUSAGE;
}

static const char name_rule[] =
	"use 1-32 letters, digits, '_', '.', '-' (starting with a letter, digit or '_')";

static int check_nick(const char *nick, const char *source)
{
	uint16_t e = rd_nick_check(nick, strlen(nick));
	char *n;

	if (e == 0)
		return 0;
	n = cli_escape(nick, strlen(nick));
	if (e == RD_E_NICK_RESERVED)
		fprintf(stderr, "roomdrop: nickname '%s'%s is reserved: choose another\n", n,
			source);
	else
		fprintf(stderr, "roomdrop: nickname '%s'%s is invalid: %s\n", n, source, name_rule);
	free(n);
	/* a reserved name is well formed: the server would refuse it like a taken one */
	return e == RD_E_NICK_RESERVED ? CLI_ENICK : CLI_EUSAGE;
}

static int check_room(const char *room, const char *source)
{
	char *r;

	if (rd_room_check(room, strlen(room)) == 0)
		return 0;
	r = cli_escape(room, strlen(room));
	fprintf(stderr, "roomdrop: room name '%s'%s is invalid: %s\n", r, source, name_rule);
	free(r);
	return CLI_EUSAGE;
}

/* $USER turned into a valid nickname: invalid bytes become '_', cut to 32 bytes. */
static void default_nick(char out[RD_NICK_BUF])
{
	const char *u = getenv("USER");
	size_t i, n = 0;
	char c;

	if (u == NULL || *u == '\0')
		u = getenv("LOGNAME");
	for (i = 0; u && u[i] && n < RD_NICK_MAX; i++) {
		c = u[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			c = '_';
		out[n++] = c;
	}
	out[n] = '\0';
	if (n > 0 && (out[0] == '.' || out[0] == '-'))
		out[0] = '_';
	if (n > 0 && rd_nick_check(out, n) == RD_E_NICK_RESERVED && n < RD_NICK_MAX)
		strcat(out, "_");
	if (rd_nick_check(out, strlen(out)) != 0)
		strcpy(out, "user");
}

static int parse_timeout(const char *s, int *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !(v > 0) || v > MAX_TIMEOUT_S)
		return usage_error("invalid timeout '%s': use a number of seconds above 0", s);
	*ms = (int)(v * 1000.0 + 0.5);
	if (*ms < 1)
		*ms = 1;
	return 0;
}

static int parse_reconnect(const char *s, int *secs)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < 0 || v > MAX_RECONNECT_S)
		return usage_error("invalid --reconnect '%s': use a number of seconds from 0 to %d",
				   s, MAX_RECONNECT_S);
	*secs = (int)v;
	return 0;
}

struct cmdline {
	struct cli_opts o;
	const char *cmd;
	int argc;
	char **argv;  /* the command's arguments (after the command word) */
	char **words; /* malloc'd: command word and arguments (argv points into it) */
	const char *port_arg, *port_src;
	int show_help, show_version, output_set, p2p_set;
	char nick_buf[RD_NICK_BUF];
	char host_buf[RD_HOST_MAX + 1];
	/* join-invite LINK: what the link says */
	char link_host[RD_HOST_MAX + 3], link_port[8], link_fp[RD_TLS_FP_TEXT_LEN + 72];
};

/* Does the option at argv[*i] take a value? Fill *val and advance *i. */
static int take_value(int argc, char **argv, int *i, const char *name, const char *inline_val,
		      const char **val)
{
	if (inline_val) {
		*val = inline_val;
		return 0;
	}
	if (*i + 1 >= argc)
		return usage_error("option '%s' needs a value", name);
	*val = argv[++*i];
	return 0;
}

static int parse_args(int argc, char **argv, struct cmdline *cl)
{
	static char *none[1];
	char **pos;
	const char *e, *val;
	char name[64];
	int i, npos = 0, opts_done = 0, rc;

	memset(cl, 0, sizeof(*cl));
	cl->o.host = RD_DEFAULT_HOST;
	cl->o.port = RD_DEFAULT_PORT;
	cl->o.room = DEFAULT_ROOM;
	cl->o.outdir = ".";
	cl->o.timeout_ms = DEFAULT_TIMEOUT_MS;
	cl->o.reconnect_s = DEFAULT_RECONNECT_S;
	if ((e = getenv("ROOMDROP_HOST")) && *e)
		cl->o.host = e;
	if ((e = getenv("ROOMDROP_PORT")) && *e) {
		cl->port_arg = e;
		cl->port_src = " (from ROOMDROP_PORT)";
	}
	if ((e = getenv("ROOMDROP_NICK")) && *e)
		cl->o.nick = e;
	if ((e = getenv("ROOMDROP_ROOM")) && *e)
		cl->o.room = e;
	if ((e = getenv("ROOMDROP_PLAIN")) && !strcmp(e, "1"))
		cl->o.plain = 1;

	if ((pos = calloc((size_t)argc + 1, sizeof(*pos))) == NULL)
		return CLI_EFAIL;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *eq;

		if (opts_done || a[0] != '-' || a[1] == '\0') {
			pos[npos++] = argv[i];
			/* the message of say/msg is taken as it is */
			if (npos == 1 && (strcmp(a, "say") == 0 || strcmp(a, "msg") == 0))
				opts_done = 1;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			opts_done = 1;
			continue;
		}
		eq = NULL;
		snprintf(name, sizeof(name), "%s", a);
		if (a[1] == '-' && (eq = strchr(a, '=')) != NULL) {
			size_t n = (size_t)(eq - a);

			if (n >= sizeof(name))
				n = sizeof(name) - 1;
			memcpy(name, a, n);
			name[n] = '\0';
			eq++;
		}
		rc = 0;
		if (strcmp(name, "--host") == 0) {
			if ((rc = take_value(argc, argv, &i, name, eq, &val)) == 0)
				cl->o.host = val;
		} else if (strcmp(name, "--port") == 0) {
			if ((rc = take_value(argc, argv, &i, name, eq, &val)) == 0) {
				cl->port_arg = val;
				cl->port_src = "";
			}
		} else if (strcmp(name, "--nick") == 0) {
			if ((rc = take_value(argc, argv, &i, name, eq, &val)) == 0)
				cl->o.nick = val;
		} else if (strcmp(name, "--room") == 0) {
			if ((rc = take_value(argc, argv, &i, name, eq, &val)) == 0)
				cl->o.room = val;
		} else if (strcmp(name, "--timeout") == 0) {
			if ((rc = take_value(argc, argv, &i, name, eq, &val)) == 0)
				rc = parse_timeout(val, &cl->o.timeout_ms);
		} else if (strcmp(name, "--reconnect") == 0) {
			if ((rc = take_value(argc, argv, &i, name, eq, &val)) == 0)
				rc = parse_reconnect(val, &cl->o.reconnect_s);
		} else if (strcmp(name, "--server-fp") == 0) {
			if ((rc = take_value(argc, argv, &i, name, eq, &val)) == 0)
				cl->o.server_fp = val;
		} else if (strcmp(name, "--password-file") == 0) {
			if ((rc = take_value(argc, argv, &i, name, eq, &val)) == 0)
				cl->o.password_file = val;
		} else if (strcmp(name, "--room-key-file") == 0) {
			if ((rc = take_value(argc, argv, &i, name, eq, &val)) == 0)
				cl->o.room_key_file = val;
		} else if (strcmp(name, "--ca") == 0) {
			if ((rc = take_value(argc, argv, &i, name, eq, &val)) == 0)
				cl->o.ca_file = val;
		} else if (strcmp(name, "--accept-from") == 0) {
			if ((rc = take_value(argc, argv, &i, name, eq, &val)) == 0)
				cl->o.accept_from = val;
		} else if (strcmp(name, "--into") == 0) {
			if ((rc = take_value(argc, argv, &i, name, eq, &val)) == 0)
				cl->o.into = val;
		} else if (strcmp(name, "--take") == 0) {
			if ((rc = take_value(argc, argv, &i, name, eq, &val)) == 0)
				cl->o.take = val;
		} else if (strcmp(name, "--p2p") == 0) {
			if ((rc = take_value(argc, argv, &i, name, eq, &val)) == 0) {
				cl->p2p_set = 1;
				if (strcmp(val, "auto") == 0)
					cl->o.p2p = CLI_P2P_AUTO;
				else if (strcmp(val, "never") == 0)
					cl->o.p2p = CLI_P2P_NEVER;
				else if (strcmp(val, "only") == 0)
					cl->o.p2p = CLI_P2P_ONLY;
				else
					rc = usage_error("--p2p takes auto, never or only");
			}
		} else if (strcmp(name, "-o") == 0 || strcmp(name, "--output") == 0) {
			if ((rc = take_value(argc, argv, &i, name, eq, &val)) == 0) {
				cl->o.outdir = val;
				cl->output_set = 1;
			}
		} else if (eq) {
			rc = usage_error("option '%s' takes no value", name);
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			cl->o.quiet = 1;
		} else if (strcmp(a, "--plain") == 0) {
			cl->o.plain = 1;
		} else if (strcmp(a, "--no-compress") == 0) {
			cl->o.no_compress = 1;
		} else if (strcmp(a, "--overwrite") == 0) {
			cl->o.overwrite = 1;
		} else if (strcmp(a, "--rename") == 0) {
			cl->o.rename = 1;
		} else if (strcmp(a, "--everyone") == 0) {
			cl->o.everyone = 1;
		} else if (strcmp(a, "--accept-all") == 0) {
			cl->o.accept_all = 1;
		} else if (strcmp(a, "--reject-all") == 0) {
			cl->o.reject_all = 1;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			cl->show_help = 1;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			cl->show_version = 1;
		} else {
			rc = usage_error("unknown option '%s'", a);
		}
		if (rc != 0) {
			free(pos);
			return rc;
		}
	}
	cl->words = pos;
	cl->cmd = npos > 0 ? pos[0] : NULL;
	cl->argc = npos > 0 ? npos - 1 : 0;
	cl->argv = npos > 0 ? pos + 1 : none;
	return 0;
}

/* --host as HOST, HOST:PORT, [V6] or [V6]:PORT, or a bare IPv6 address: the host part
 * into cl->host_buf (brackets off), a port in it replaces the default (a different
 * --port as well is an error). */
static int parse_host(struct cmdline *cl)
{
	const char *h = cl->o.host;
	uint16_t port = 0;

	if (rd_net_parse_hostport(h, 0, cl->host_buf, sizeof(cl->host_buf), &port) != 0 ||
	    cl->host_buf[0] == '\0')
		return usage_error(
			"invalid server address '%s': use HOST, HOST:PORT or [IPv6]:PORT", h);
	if (port != 0) {
		if (cl->port_arg && cl->o.port != port)
			return usage_error("the server address '%s' and --port give two ports", h);
		cl->o.port = port;
	}
	cl->o.host = cl->host_buf;
	return 0;
}

/* roomdrop://HOST:PORT/invite/SECRET?fp=FINGERPRINT (ctl invite makes it): host, port and
 * pin into cl, the secret (32 hex digits) into cl->o. */
static int parse_invite_link(struct cmdline *cl, const char *link)
{
	const char *p, *slash, *colon, *q, *fp;
	char hex[2 * RD_INVITE_SECRET + 1];
	size_t n;

	if (strncmp(link, "roomdrop://", 11) != 0)
		goto bad;
	p = link + 11;
	if ((slash = strchr(p, '/')) == NULL || (size_t)(slash - p) >= sizeof(cl->link_host))
		goto bad;
	colon = slash;
	while (colon > p && colon[-1] != ':')
		colon--;
	if (colon <= p + 1 || (size_t)(slash - colon) >= sizeof(cl->link_port) || slash == colon)
		goto bad;
	memcpy(cl->link_host, p, (size_t)(colon - 1 - p));
	cl->link_host[colon - 1 - p] = '\0';
	memcpy(cl->link_port, colon, (size_t)(slash - colon));
	cl->link_port[slash - colon] = '\0';
	if (strncmp(slash, "/invite/", 8) != 0 || (q = strchr(slash + 8, '?')) == NULL ||
	    (size_t)(q - (slash + 8)) != 2 * RD_INVITE_SECRET || strncmp(q, "?fp=", 4) != 0)
		goto bad;
	memcpy(hex, slash + 8, 2 * RD_INVITE_SECRET);
	hex[2 * RD_INVITE_SECRET] = '\0';
	if (rd_hex_parse(hex, cl->o.secret, RD_INVITE_SECRET) != 0)
		goto bad;
	fp = q + 4;
	if ((n = strlen(fp)) == 0 || n >= sizeof(cl->link_fp))
		goto bad;
	memcpy(cl->link_fp, fp, n + 1);
	cl->o.secret_len = RD_INVITE_SECRET;
	cl->o.secret_kind = RD_AUTH_INVITE;
	cl->o.no_register = 1;
	cl->o.host = cl->link_host;
	cl->port_arg = cl->link_port;
	cl->port_src = " (from the invitation)";
	cl->o.server_fp = cl->link_fp;
	return 0;
bad:
	return usage_error("'%s' is not an invitation (roomdrop://HOST:PORT/invite/SECRET?fp=KEY, "
			   "as `roomdrop-server ctl invite` prints it)",
			   link);
}

/* The first line of a secret's file (what: "password" or "room key"), without the line
 * end, into out. */
static int read_secret(const char *path, const char *what, uint8_t *out, size_t *len)
{
	char line[RD_SECRET_MAX + 2];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "roomdrop: cannot read the %s file %s: %s\n", what, path,
			strerror(errno));
		return CLI_ELOCAL;
	}
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	n = strcspn(line, "\r\n");
	if (n == 0 || n > RD_SECRET_MAX)
		return usage_error("the %s file %s must hold the %s on its first line "
				   "(1 to %u bytes)",
				   what, path, what, RD_SECRET_MAX);
	memcpy(out, line, n);
	*len = n;
	explicit_bzero(line, sizeof(line));
	return 0;
}

/* --password-file: its first line, without the line end. */
static int read_password(struct cli_opts *o)
{
	int rc = read_secret(o->password_file, "password", o->secret, &o->secret_len);

	if (rc == 0)
		o->secret_kind = RD_AUTH_PASSWORD;
	return rc;
}

/* Everything that can be checked without the network. */
static int validate(struct cmdline *cl)
{
	const char *c = cl->cmd;
	int rc;

	if (c != NULL && strcmp(c, "join-invite") == 0) {
		if (cl->argc != 1)
			return usage_error("join-invite needs one invitation link");
		if (cl->o.password_file || cl->o.server_fp || cl->o.plain || cl->port_arg)
			return usage_error("join-invite takes the server, its key and the secret "
					   "from the link alone");
		if ((rc = parse_invite_link(cl, cl->argv[0])) != 0)
			return rc;
	}
	if (cl->o.password_file && (rc = read_password(&cl->o)) != 0)
		return rc;
	if (cl->o.room_key_file && (rc = read_secret(cl->o.room_key_file, "room key",
						     cl->o.room_key, &cl->o.room_key_len)) != 0)
		return rc;

	if (cl->port_arg && rd_net_parse_port(cl->port_arg, &cl->o.port) != 0) {
		char *p = cli_escape(cl->port_arg, strlen(cl->port_arg));

		fprintf(stderr, "roomdrop: invalid port '%s'%s: use a number from 1 to 65535\n", p,
			cl->port_src ? cl->port_src : "");
		free(p);
		return CLI_EUSAGE;
	}
	if (cl->o.host == NULL || cl->o.host[0] == '\0') {
		fputs("roomdrop: the server address (--host) must not be empty\n", stderr);
		return CLI_EUSAGE;
	}
	if (strlen(cl->o.host) > RD_HOST_MAX + 8)
		return usage_error("the server address '%s' is too long", cl->o.host);
	if ((rc = parse_host(cl)) != 0)
		return rc;
	if (cl->o.nick == NULL) {
		default_nick(cl->nick_buf);
		cl->o.nick = cl->nick_buf;
	} else if ((rc = check_nick(cl->o.nick, "")) != 0) {
		return rc;
	}
	if ((rc = check_room(cl->o.room, "")) != 0)
		return rc;
	if (cl->o.server_fp) {
		uint8_t fp[RD_TLS_FP_LEN];
		if (rd_tls_fp_parse(cl->o.server_fp, fp) != 0)
			return usage_error(
				"--server-fp '%s' is not a fingerprint (52 base32 characters "
				"in groups of 4, or 64 hex digits)",
				cl->o.server_fp);
	}
	if (cl->o.plain && (cl->o.server_fp || cl->o.ca_file))
		return usage_error("--plain excludes --server-fp and --ca");
	if (cl->o.overwrite && cl->o.rename) {
		fputs("roomdrop: --overwrite and --rename exclude each other (try --help)\n",
		      stderr);
		return CLI_EUSAGE;
	}

	if (c == NULL)
		return 0;
	if ((cl->o.overwrite && strcmp(c, "put") && strcmp(c, "get")) ||
	    (cl->o.rename && strcmp(c, "put")))
		return usage_error("%s: --overwrite is for put and get, --rename for put", c);
	if (cl->output_set && strcmp(c, "get"))
		return usage_error("%s: -o is for get only", c);
	if (cl->p2p_set && strcmp(c, "offer") && strcmp(c, "listen"))
		return usage_error("%s: --p2p is for offer and listen", c);
	if (cl->o.p2p == CLI_P2P_ONLY && strcmp(c, "listen") == 0)
		return usage_error("listen: --p2p takes auto or never (only is for offer)");
	if (cl->o.p2p == CLI_P2P_ONLY && cl->o.everyone)
		return usage_error("offer: --p2p only is for an offer to one user (a room offer "
				   "goes through the server)");
	if (cl->o.everyone && strcmp(c, "offer"))
		return usage_error("%s: --everyone is for offer only", c);
	if ((cl->o.accept_all || cl->o.reject_all || cl->o.accept_from || cl->o.into ||
	     cl->o.take) &&
	    strcmp(c, "listen"))
		return usage_error("%s: --accept-all, --reject-all, --accept-from, --into and "
				   "--take are for listen",
				   c);
	if (cl->o.accept_all + cl->o.reject_all + (cl->o.accept_from != NULL) > 1)
		return usage_error(
			"--accept-all, --reject-all and --accept-from exclude each other");
	if (cl->o.accept_from && (rc = check_nick(cl->o.accept_from, " (--accept-from)")) != 0)
		return rc;
	if (strcmp(c, "rooms") == 0 || strcmp(c, "listen") == 0 || strcmp(c, "shell") == 0 ||
	    strcmp(c, "ls") == 0) {
		if (cl->argc > 0)
			return usage_error("%s takes no arguments", c);
	} else if (strcmp(c, "who") == 0) {
		if (cl->argc > 1)
			return usage_error("%s takes at most one room name", c);
		if (cl->argc == 1 && (rc = check_room(cl->argv[0], "")) != 0)
			return rc;
	} else if (strcmp(c, "say") == 0) {
		if (cl->argc < 1)
			return usage_error("%s needs some text", c);
	} else if (strcmp(c, "msg") == 0) {
		if (cl->argc < 2)
			return usage_error("%s needs a nickname and some text", c);
		if ((rc = check_nick(cl->argv[0], "")) != 0)
			return rc;
	} else if (strcmp(c, "put") == 0 || strcmp(c, "get") == 0 || strcmp(c, "rm") == 0) {
		if (cl->argc < 1)
			return usage_error("%s needs at least one file name", c);
	} else if (strcmp(c, "offer") == 0) {
		if (cl->argc < (cl->o.everyone ? 1 : 2))
			return usage_error("offer needs %sat least one file or folder",
					   cl->o.everyone ? "" : "a nickname and ");
		if (!cl->o.everyone && (rc = check_nick(cl->argv[0], "")) != 0)
			return rc;
	} else if (strcmp(c, "join-invite") == 0) {
		/* (checked above) */
	} else if (strcmp(c, "trust") == 0) {
		uint8_t fp[RD_TLS_FP_LEN];
		if (cl->argc != 1 || rd_tls_fp_parse(cl->argv[0], fp) != 0)
			return usage_error("trust needs one fingerprint (as the server shows it)");
	} else {
		return usage_error("unknown command '%s'", c);
	}
	return 0;
}

/* ---- commands ------------------------------------------------------------------------ */

/* The words joined with single spaces (malloc'd), or NULL if longer than a message may be. */
static char *join_words(int argc, char **argv, size_t *len)
{
	size_t n = 0, off = 0;
	char *t;
	int i;

	for (i = 0; i < argc; i++)
		n += strlen(argv[i]) + 1;
	if (n - 1 > RD_CHAT_MAX || (t = malloc(n)) == NULL)
		return NULL;
	for (i = 0; i < argc; i++) {
		size_t k = strlen(argv[i]);

		if (i > 0)
			t[off++] = ' ';
		memcpy(t + off, argv[i], k);
		off += k;
	}
	t[off] = '\0';
	*len = off;
	return t;
}

static int cmd_rooms(struct cli_session *s)
{
	struct rd_msg l;
	uint16_t werr;
	int rc;

	if ((rc = rd_conn_rooms(s->conn, &l, &werr)) != 0)
		return cli_report(s, "cannot list the rooms", rc, werr);
	cli_print_rooms(stdout, &l.u.room_list, NULL);
	rd_msg_clear(&l);
	return CLI_OK;
}

static int cmd_who(struct cli_session *s, const char *room)
{
	struct rd_msg l;
	char what[80];
	uint16_t werr;
	int rc;

	if ((rc = rd_conn_who(s->conn, room, &l, &werr)) != 0) {
		snprintf(what, sizeof(what), "cannot list who is in '%s'", room ? room : s->room);
		return cli_report(s, what, rc, werr);
	}
	cli_print_who(stdout, &l.u.who_list);
	rd_msg_clear(&l);
	return CLI_OK;
}

/* SAY has no reply: a WHO round trip afterwards shows whether the server sent an ERROR
 * for it (it answers in order). */
static int cmd_say(struct cli_session *s, int argc, char **argv)
{
	struct rd_msg l;
	uint16_t werr;
	size_t n;
	char *text = join_words(argc, argv, &n);
	int rc;

	if (text == NULL) {
		fprintf(stderr, "roomdrop: the message is too long (at most %u bytes)\n",
			RD_CHAT_MAX);
		return CLI_EUSAGE;
	}
	rc = rd_conn_say(s->conn, RD_KIND_TEXT, text, n);
	free(text);
	if (rc != 0)
		return cli_report(s, "cannot send the message", rc, 0);
	if ((rc = rd_conn_who(s->conn, NULL, &l, &werr)) != 0)
		return cli_report(s, "cannot confirm the message", rc, werr);
	rd_msg_clear(&l);
	if (s->async_err)
		return cli_exit_for(RD_ERR_REMOTE, s->async_err);
	return CLI_OK;
}

static int cmd_msg(struct cli_session *s, int argc, char **argv)
{
	char what[80];
	uint16_t werr;
	size_t n;
	char *text = join_words(argc - 1, argv + 1, &n);
	int rc;

	if (text == NULL) {
		fprintf(stderr, "roomdrop: the message is too long (at most %u bytes)\n",
			RD_CHAT_MAX);
		return CLI_EUSAGE;
	}
	rc = rd_conn_tell(s->conn, argv[0], RD_KIND_TEXT, text, n, &werr);
	free(text);
	if (rc != 0) {
		snprintf(what, sizeof(what), "cannot send to '%s'", argv[0]);
		return cli_report(s, what, rc, werr);
	}
	return CLI_OK;
}

static int cmd_listen(struct cli_session *s)
{
	struct pollfd p[2];
	int rc;

	struct cli_offer_rules rules = {
		/* --take alone accepts the matching files of every offer */
		.policy = s->o->accept_all ||
					  (s->o->take && !s->o->reject_all && !s->o->accept_from) ?
				  CLI_OFFERS_ACCEPT_ALL :
			  s->o->reject_all  ? CLI_OFFERS_REJECT_ALL :
			  s->o->accept_from ? CLI_OFFERS_ACCEPT_FROM :
					      CLI_OFFERS_SHOW,
		.from = s->o->accept_from,
		.into = s->o->into,
		.take = s->o->take,
		.p2p = s->o->p2p,
	};

	if (cli_offers_listen(s, &rules) != 0)
		return CLI_ELOCAL;
	if (!s->o->quiet)
		fprintf(stderr, "roomdrop: listening in %s as %s (Ctrl-C to stop)\n", s->room,
			s->o->nick);
	for (;;) {
		/* frames may already be buffered (they came with the replies) */
		rc = rd_conn_poll(s->conn, 0);
		if (rc == 0) /* answers and receipts the callbacks decided */
			rc = cli_offers_pending(s);
		if (cli_stop)
			break;
		if (rc != 0)
			break;
		p[0].fd = rd_conn_fd(s->conn);
		p[0].events = POLLIN;
		p[1].fd = cli_signal_fd[0];
		p[1].events = POLLIN;
		p[0].revents = p[1].revents = 0;
		/* (frames read past the replies of cli_offers_pending wake nothing) */
		if (poll(p, 2, rd_conn_pending(s->conn) ? 0 : -1) < 0 && errno != EINTR) {
			rc = RD_ERR_SYSTEM;
			break;
		}
		if (cli_stop)
			break;
	}
	cli_offers_stop(s);
	if (cli_stop)
		return CLI_OK;
	if (rc == RD_ERR_CLOSED && s->kicked)
		return CLI_EKICKED;
	return cli_report(s, "stopped listening", rc, 0);
}

/* join-invite: connected, AUTH(INVITE) accepted: the key pinned from the link is
 * recorded as the server's (no first-use question later). */
static int join_invite_done(struct cmdline *cl)
{
	char addr[300];
	int rc;

	cli_addr_text(&cl->o, addr, sizeof(addr));
	if ((rc = cli_trust_quiet(&cl->o, cl->o.server_fp)) != CLI_OK)
		return rc;
	printf("admitted to %s: it knows your key now, and its key is recorded (connect with "
	       "`roomdrop --host %s --port %u shell`)\n",
	       addr, cl->o.host, cl->o.port);
	return CLI_OK;
}

static int run(struct cmdline *cl)
{
	struct cli_session s;
	const char *c = cl->cmd;
	int rc, interactive;

	if (strcmp(c, "trust") == 0)
		return cli_trust(&cl->o, cl->argv[0]);
	cli_session_init(&s, &cl->o);
	interactive = strcmp(c, "listen") == 0 || strcmp(c, "shell") == 0;
	s.quiet = !interactive; /* one-shot commands are not announced to the room */
	s.events = interactive;
	if (interactive && cli_signals_install() != 0) {
		perror("roomdrop: signals");
		return CLI_EFAIL;
	}
	if ((rc = cli_session_open(&s, strcmp(c, "rooms") != 0 && strcmp(c, "join-invite") != 0)) !=
	    CLI_OK) {
		cli_session_close(&s);
		return rc;
	}
	if (strcmp(c, "join-invite") == 0) {
		cli_session_close(&s);
		return join_invite_done(cl);
	}
	if (strcmp(c, "rooms") == 0)
		rc = cmd_rooms(&s);
	else if (strcmp(c, "who") == 0)
		rc = cmd_who(&s, cl->argc ? cl->argv[0] : NULL);
	else if (strcmp(c, "say") == 0)
		rc = cmd_say(&s, cl->argc, cl->argv);
	else if (strcmp(c, "msg") == 0)
		rc = cmd_msg(&s, cl->argc, cl->argv);
	else if (strcmp(c, "listen") == 0)
		rc = cmd_listen(&s);
	else if (strcmp(c, "shell") == 0)
		rc = cli_shell_run(&s);
	else if (strcmp(c, "put") == 0)
		rc = cli_files_put(s.conn, &cl->o, cl->argc, cl->argv);
	else if (strcmp(c, "get") == 0)
		rc = cli_files_get(s.conn, &cl->o, cl->argc, cl->argv);
	else if (strcmp(c, "ls") == 0)
		rc = cli_files_ls(s.conn, &cl->o);
	else if (strcmp(c, "offer") == 0)
		rc = cl->o.everyone ? cli_offer(&s, NULL, cl->argc, cl->argv) :
				      cli_offer(&s, cl->argv[0], cl->argc - 1, cl->argv + 1);
	else
		rc = cli_files_rm(s.conn, &cl->o, cl->argc, cl->argv);
	cli_session_close(&s);
	return rc;
}

static int run_cmdline(struct cmdline *cl)
{
	int rc;

	if (cl->show_help) {
		fputs(usage_text, stdout);
		return CLI_OK;
	}
	if (cl->show_version) {
		printf("roomdrop %s\n", RD_VERSION);
		return CLI_OK;
	}
	if (cl->cmd == NULL) {
		if (!isatty(STDIN_FILENO)) {
			fputs("roomdrop: no command given (try --help)\n", stderr);
			return CLI_EUSAGE;
		}
		cl->cmd = "shell";
	}
	if ((rc = validate(cl)) != 0)
		return rc;
	rd_net_ignore_sigpipe();
	return run(cl);
}

int main(int argc, char **argv)
{
	struct cmdline cl;
	int rc;

	/* the file messages are an application's: the codec knows them once registered */
	if ((rc = rdf_proto_register()) != 0) {
		fprintf(stderr, "roomdrop: %s\n", rd_strerror(rc));
		return 1;
	}
	if ((rc = parse_args(argc, argv, &cl)) != 0)
		return rc;
	rc = run_cmdline(&cl);
	free(cl.words);
	return rc;
}
