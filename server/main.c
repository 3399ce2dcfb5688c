/* main.c - roomdrop-server: options, the room core, the file application, the control
 * socket and the administrator's window, put together.
 *
 * Threads: SIGINT/SIGTERM are blocked in every thread before any is started. Headless, the
 * main thread waits for them with sigwait(); with a window, the main thread runs the GTK
 * main loop (admin_ui_run) and a "rd-signal" thread turns a signal into admin_ui_quit().
 * Either way the main thread then stops the server (SHUTDOWN to every client, threads
 * joined) and exits 0.
 */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "admin_ui.h"
#include "cluster.h"
#include "ctl.h"
#include "files.h"
#include "rd_err.h"
#include "rd_names.h"
#include "rd_net.h"
#include "rd_hash.h"
#include "rd_server.h"
#include "state.h"
#include "conf.h"
#include "admin_ops.h"
#include "refused.h"

/* --admission (PROTOCOL.md section 7, "Admission"). */
enum admission {
	ADMIT_OPEN = 0,  /* anyone who reaches the port */
	ADMIT_PASSWORD,  /* AUTH(PASSWORD) with the secret of --password-file */
	ADMIT_ALLOWLIST, /* keys admitted by the administrator (ctl admit) or an invitation */
	ADMIT_INVITE     /* the same gate; refused users are told to ask for an invitation */
};

enum server_exit {
	SRV_OK = 0,
	SRV_EFAIL = 1,      /* unexpected failure */
	SRV_EUSAGE = 2,     /* bad option or value */
	SRV_ELISTEN = 3,    /* cannot listen: port in use, bad address, control socket taken */
	SRV_ESTORE = 4,     /* the store folder cannot be created or written */
	SRV_ETLS = 5,       /* the TLS key or certificate cannot be made or used */
	SRV_ENOCLUSTER = 6, /* --redis, but this build has no cluster mode (no hiredis) */
	SRV_EREDIS = 7      /* --redis: Redis cannot be reached at start */
};

static enum rd_log_level g_level = RD_LOG_INFO;
static pthread_mutex_t g_log_mtx = PTHREAD_MUTEX_INITIALIZER;

static void usage(FILE *to)
{
	fprintf(to,
		"Usage: roomdrop-server [OPTIONS]\n"
		"       roomdrop-server fingerprint [--store DIR | --tls-cert FILE]\n"
		"       roomdrop-server ctl [--socket PATH | --port PORT] list | info | kick NICK [--reason TEXT]\n"
		"                       | broadcast [--room ROOM | --to NICK] TEXT\n"
		"\n"
		"Share rooms, chat and files with roomdrop clients. With a display and without\n"
		"--headless, the administrator's window opens; otherwise the server runs in the\n"
		"foreground until SIGINT or SIGTERM, and `roomdrop-server ctl` administers it.\n"
		"\n"
		"Network:\n"
		"  --listen ADDR:PORT       where to listen (default %s:%u; port 0 = any free port)\n"
		"  --port-file PATH         write the bound port to PATH once listening\n"
		"  --max-clients N          connections at most (default 1024)\n"
		"  --presence-burst N       PRESENCE deliveries (notices times recipients) a\n"
		"                           second told one by one (default 100000; past that,\n"
		"                           a count once a second: PRESENCE_SUMMARY; 0 = never)\n"
		"  --msg-rate N             chat messages per second per client, bursts of twice\n"
		"                           that; more get ERROR 108 (default 100, 0 = no limit)\n"
		"  --rooms A,B,...          the rooms (default general,random)\n"
		"  --max-offers N           offers one client may have waiting for answers at\n"
		"                           once; more get ERROR 404 (default 1)\n"
		"Timers (a number of seconds, or with a unit: 500ms, 30s, 2m, 1h):\n"
		"  --ping-interval T        heartbeat period (default 30s)\n"
		"  --ping-timeout T         disconnect when PONG is late by this (default 5s)\n"
		"  --register-timeout T     close connections that do not register (default 10s)\n"
		"  --offer-timeout T        time to answer an offer that names none (default 60s)\n"
		"  --offer-max T            longest an offer may wait, holds included (default 10m)\n"
		"Nicknames (owned by the client key that registers them first):\n"
		"  --open-nicks             no owners: any client may take any free nickname\n"
		"  --nick-expiry DAYS       a nickname unused this long is free again (default\n"
		"                           90, 0 = never)\n"
		"  --state FILE             where owners are kept (SQLite; default\n"
		"                           STORE.state.db beside the store)\n"
		"Admission (who may use the server at all):\n"
		"  --admission MODE         open (default): anyone who reaches the port;\n"
		"                           password: the secret of --password-file first;\n"
		"                           allowlist: keys admitted with `ctl admit` or an\n"
		"                           invitation (`ctl invite`); invite: the same, and the\n"
		"                           refused are told to ask for an invitation\n"
		"  --password-file FILE     the password (its first line), for --admission\n"
		"                           password; never sent in clear (TLS only)\n"
		"Files (sizes in bytes or with K, M, G, T: powers of 1024):\n"
		"  --store DIR              the room folders (default ./roomdrop-store)\n"
		"  --max-file-size SIZE     largest file accepted (default 4G, 0 = no limit)\n"
		"  --room-quota SIZE        bytes per room folder, staged uploads included\n"
		"                           (default 0 = no limit)\n"
		"  --max-staged-per-user SIZE\n"
		"                           bytes one nickname may have in unfinished uploads,\n"
		"                           running or abandoned (default 8G, 0 = no limit)\n"
		"  --min-free SIZE          keep this much disk free (default 64M)\n"
		"  --staging-ttl T          remove abandoned partial uploads after T (default 24h)\n"
		"Security (TLS 1.3 on every connection unless --tls off):\n"
		"  --tls on|off             off = plaintext, for clients run with --plain (default on)\n"
		"  --tls-cert FILE          use this certificate (PEM, chain allowed) and\n"
		"  --tls-key FILE           this key instead of the one made on first start\n"
		"                           (kept in STORE.tls/, mode 0600)\n"
		"Cluster (several servers as one, through Redis; PROTOCOL.md section 15):\n"
		"  --redis URL              join a cluster: Redis at a Unix socket path (with a\n"
		"                           '/') or HOST:PORT (default port 6379)%s\n"
		"  --cluster NAME           the cluster's name (default roomdrop)\n"
		"  --advertise HOST:PORT    where clients should connect to this server (default\n"
		"                           the --listen address and the bound port)\n"
		"  --master                 this server sends clients on past --redirect-above\n"
		"  --redirect-above N       a master redirects the HELLO of a client arriving\n"
		"                           while it has N clients to the least-loaded secondary\n"
		"                           (serves it itself when no secondary is live)\n"
		"Administration:\n"
		"  --config FILE            read settings from FILE first (INI: [server] takes\n"
		"                           these options without the dashes, [room NAME] takes\n"
		"                           operator, allow = KEY and key-file = FILE, and\n"
		"                           [operators] ROOM = KEY, KEY...; README\n"
		"                           \"Configuration file\"); the command line wins\n"
		"                           over the file\n"
		"  --operator ROOM:KEY      the key with that fingerprint may delete and replace\n"
		"                           anyone's files in ROOM (repeat for more)\n"
		"  --room-allow ROOM:KEY    restrict ROOM to the keys named so (repeat for more),\n"
		"                           its operators and the holders of its room key; to\n"
		"                           everyone else it does not exist\n"
		"  --room-key-file ROOM:FILE\n"
		"                           restrict ROOM to the holders of the key on FILE's\n"
		"                           first line (clients: --room-key-file FILE), its\n"
		"                           operators and the --room-allow keys\n"
		"  --ctl-socket PATH        control socket (default $XDG_RUNTIME_DIR/roomdrop-PORT.sock\n"
		"                           or /tmp/roomdrop-UID-PORT.sock)\n"
		"  --headless               never open the window\n"
		"  --out-limit SIZE         output queued per client before it is dropped as a\n"
		"                           slow reader (default 8M)\n"
		"  --log-level LEVEL        error, warn, info (default) or debug\n"
		"  -h, --help               this text\n"
		"  -V, --version            the version\n"
		"\n"
		"Exit codes: 0 stopped cleanly, 1 unexpected failure, 2 bad option, 3 cannot listen\n"
		"(address in use or invalid), 4 store folder or state database unusable, 5 TLS\n"
		"key or certificate unusable, 6 --redis given but this build has no cluster mode\n"
		"(no hiredis), 7 --redis: Redis cannot be reached.\n",
		RD_DEFAULT_HOST, RD_DEFAULT_PORT,
		cluster_supported() ?
			"" :
			"\n                           (not in this build: it has no hiredis)");
}

/* ---- option values -------------------------------------------------------------------- */

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!s[0] || s[0] == '-')
		return -1;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	double mul = 1;
	if (*end) {
		switch (*end) {
		case 'k':
		case 'K':
			mul = 1024.0;
			break;
		case 'm':
		case 'M':
			mul = 1024.0 * 1024;
			break;
		case 'g':
		case 'G':
			mul = 1024.0 * 1024 * 1024;
			break;
		case 't':
		case 'T':
			mul = 1024.0 * 1024 * 1024 * 1024;
			break;
		default:
			return -1;
		}
		end++;
		if (*end == 'i' && end[1] == 'B')
			end += 2;
		else if (*end == 'B')
			end++;
		if (*end)
			return -1;
	}
	v *= mul;
	if (v > 1.8e19)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

static int parse_duration_ms(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!s[0] || s[0] == '-')
		return -1;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0 || isnan(v))
		return -1;
	double mul = 1000;
	if (!strcmp(end, "ms"))
		mul = 1;
	else if (!strcmp(end, "s") || !*end)
		mul = 1000;
	else if (!strcmp(end, "m"))
		mul = 60000;
	else if (!strcmp(end, "h"))
		mul = 3600000;
	else
		return -1;
	v *= mul;
	if (v > 4.0e9)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

/* A key made operator of a room at start (PROTOCOL.md section 7, "Files have owners"). */
struct operator_entry {
	char room[RD_ROOM_BUF];
	uint8_t fp[RD_TLS_FP_LEN];
	int line; /* in the configuration file, 0 = from --operator */
};

/* A restricted room (PROTOCOL.md section 7, "Restricted rooms"): only these keys, the
 * room's operators and holders of its key may see and enter it. */
struct room_rule {
	char room[RD_ROOM_BUF];
	uint8_t (*allow)[RD_TLS_FP_LEN];
	size_t nallow;
	const char *key_file; /* NULL: no room key */
	int key_line;         /* its line in the configuration file, 0 = --room-key-file */
	int has_key;
	uint8_t key_hash[RD_SHA256_SIZE];
};

struct opts {
	char host[RD_HOST_MAX + 1];
	uint16_t port;
	const char *port_file;
	const char *ctl_socket;
	int headless;
	char **rooms;
	size_t nrooms;
	struct rd_server_config cfg;
	struct files_config files;
	int tls_off;          /* --tls off */
	const char *tls_cert; /* --tls-cert / --tls-key: a given identity */
	const char *tls_key;
	const char *state_path; /* --state FILE (default STORE.state.db) */
	int open_nicks;         /* --open-nicks: first come, first served, no owners */
	uint64_t nick_expiry_ms;
	enum admission admission;      /* --admission */
	const char *password_file;     /* --password-file (admission password) */
	struct cluster_config cluster; /* cluster.redis NULL = alone */
	struct conf *conf;             /* --config FILE: its values live as long as o */
	const char *config_path;
	struct operator_entry *operators; /* --operator and the file's [room] operator */
	size_t noperators;
	struct room_rule *rules; /* restricted rooms: --room-allow, --room-key-file, [room] */
	size_t nrules;
};

#define FAIL_SLOTS 64         /* addresses whose recent AUTH failures are remembered */
#define FAIL_WINDOW_MS 600000 /* a failure counts for 10 minutes */
#define FAIL_DELAY_MAX_MS 8000

/* What the server's hooks work on (hooks.user). */
struct app {
	struct files *files;
	struct state *state;           /* NULL with --open-nicks and open or password admission */
	int clustered;                 /* --redis: state failures are the cluster's (902) */
	const struct room_rule *rules; /* restricted rooms (the options' list) */
	size_t nrules;
	int open_nicks;
	enum admission admission;
	uint8_t password_hash[RD_SHA256_SIZE]; /* admission password: SHA-256 of the secret */
	struct refused refused;                /* keys lately refused admission, for the window */
	/* AUTH failures by address: each failure is answered after a delay that doubles
	 * (250 ms, 500 ms ... 8 s) while the address keeps failing */
	pthread_mutex_t fail_mu;
	struct {
		char ip[48];
		unsigned count;
		uint64_t last_ms;
	} fails[FAIL_SLOTS];
};

/* "FILE:LINE: " while the configuration file's settings are applied, else "" */
static char g_where[PATH_MAX + 32];

static int bad(const char *opt, const char *val, const char *why)
{
	if (g_where[0]) {
		fprintf(stderr, "roomdrop-server: %sinvalid value '%s' for %s: %s\n", g_where, val,
			opt + 2, why);
		return SRV_EUSAGE;
	}
	fprintf(stderr, "roomdrop-server: invalid value '%s' for %s: %s\n", val, opt, why);
	fprintf(stderr, "Try 'roomdrop-server --help'.\n");
	return SRV_EUSAGE;
}

/* The rule of room (n bytes of name), made if new; NULL for a bad name or no memory. */
static struct room_rule *rule_for(struct opts *o, const char *name, size_t n)
{
	char room[RD_ROOM_BUF];
	struct room_rule *v;

	if (n == 0 || n > RD_ROOM_MAX || rd_room_check(name, n) != 0)
		return NULL;
	snprintf(room, sizeof(room), "%.*s", (int)n, name);
	for (size_t i = 0; i < o->nrules; i++)
		if (rd_name_eq(o->rules[i].room, room))
			return &o->rules[i];
	if (!(v = realloc(o->rules, (o->nrules + 1) * sizeof(*v))))
		return NULL;
	o->rules = v;
	v += o->nrules++;
	memset(v, 0, sizeof(*v));
	memcpy(v->room, room, sizeof(room));
	return v;
}

static int rule_allow(struct room_rule *r, const uint8_t fp[RD_TLS_FP_LEN])
{
	uint8_t(*v)[RD_TLS_FP_LEN];

	for (size_t i = 0; i < r->nallow; i++)
		if (!memcmp(r->allow[i], fp, RD_TLS_FP_LEN))
			return 0;
	if (!(v = realloc(r->allow, (r->nallow + 1) * sizeof(*v))))
		return -1;
	r->allow = v;
	memcpy(v[r->nallow++], fp, RD_TLS_FP_LEN);
	return 0;
}

/* --operator ROOM:FP (the room is checked against the room list once all is read) */
static int add_operator(struct opts *o, const char *arg)
{
	const char *colon = strchr(arg, ':'); /* room names have none; fingerprints may */
	struct operator_entry *v;
	uint8_t fp[RD_TLS_FP_LEN];

	if (!colon || colon == arg || (size_t)(colon - arg) > RD_ROOM_MAX ||
	    rd_tls_fp_parse(colon + 1, fp) != 0)
		return -1;
	if (!(v = realloc(o->operators, (o->noperators + 1) * sizeof(*v))))
		return -1;
	o->operators = v;
	v += o->noperators++;
	snprintf(v->room, sizeof(v->room), "%.*s", (int)(colon - arg), arg);
	memcpy(v->fp, fp, RD_TLS_FP_LEN);
	v->line = 0;
	return 0;
}

static int split_rooms(struct opts *o, const char *list)
{
	char *copy = strdup(list), *save = NULL;
	if (!copy)
		return -1;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (rd_room_check(t, strlen(t)) != 0) {
			fprintf(stderr,
				"roomdrop-server: %sinvalid room name '%s': use 1-32 letters, digits, "
				"'_', '.', '-'\n",
				g_where, t);
			free(copy);
			return -1;
		}
		for (size_t i = 0; i < o->nrooms; i++)
			if (rd_name_eq(o->rooms[i], t)) {
				fprintf(stderr, "roomdrop-server: %sroom '%s' is listed twice\n",
					g_where, t);
				free(copy);
				return -1;
			}
		if (o->nrooms == RD_MAX_ROOMS) {
			fprintf(stderr, "roomdrop-server: at most %u rooms\n", RD_MAX_ROOMS);
			free(copy);
			return -1;
		}
		/* on failure o->rooms stays a valid list of o->nrooms names: main frees it */
		char **v = realloc(o->rooms, (o->nrooms + 1) * sizeof(*v));
		if (!v) {
			free(copy);
			return -1;
		}
		o->rooms = v;
		if (!(v[o->nrooms] = strdup(t))) {
			free(copy);
			return -1;
		}
		o->nrooms++;
	}
	free(copy);
	if (o->nrooms == 0) {
		fprintf(stderr, "roomdrop-server: --rooms needs at least one room\n");
		return -1;
	}
	return 0;
}

enum {
	O_LISTEN = 256,
	O_ROOMS,
	O_MAXC,
	O_PBURST,
	O_PINGI,
	O_PINGT,
	O_REGT,
	O_LOG,
	O_STORE,
	O_MAXF,
	O_QUOTA,
	O_MINFREE,
	O_STTL,
	O_CTL,
	O_PORTFILE,
	O_HEADLESS,
	O_OUTLIM,
	O_RATE,
	O_USTAGED,
	O_TLS,
	O_TLSCERT,
	O_TLSKEY,
	O_MAXOFFERS,
	O_OFFERT,
	O_OFFERMAX,
	O_STATE,
	O_OPENNICKS,
	O_NICKEXP,
	O_ADMISSION,
	O_PASSFILE,
	O_REDIS,
	O_CLUSTER,
	O_MASTER,
	O_REDIRECT,
	O_ADVERTISE,
	O_CONFIG,
	O_OPERATOR,
	O_ROOMALLOW,
	O_ROOMKEY
};
static const struct option g_options[] = {
	{ "listen", required_argument, NULL, O_LISTEN },
	{ "rooms", required_argument, NULL, O_ROOMS },
	{ "max-clients", required_argument, NULL, O_MAXC },
	{ "presence-burst", required_argument, NULL, O_PBURST },
	{ "ping-interval", required_argument, NULL, O_PINGI },
	{ "ping-timeout", required_argument, NULL, O_PINGT },
	{ "register-timeout", required_argument, NULL, O_REGT },
	{ "log-level", required_argument, NULL, O_LOG },
	{ "store", required_argument, NULL, O_STORE },
	{ "max-file-size", required_argument, NULL, O_MAXF },
	{ "room-quota", required_argument, NULL, O_QUOTA },
	{ "min-free", required_argument, NULL, O_MINFREE },
	{ "max-staged-per-user", required_argument, NULL, O_USTAGED },
	{ "staging-ttl", required_argument, NULL, O_STTL },
	{ "ctl-socket", required_argument, NULL, O_CTL },
	{ "port-file", required_argument, NULL, O_PORTFILE },
	{ "headless", no_argument, NULL, O_HEADLESS },
	{ "out-limit", required_argument, NULL, O_OUTLIM },
	{ "msg-rate", required_argument, NULL, O_RATE },
	{ "tls", required_argument, NULL, O_TLS },
	{ "tls-cert", required_argument, NULL, O_TLSCERT },
	{ "tls-key", required_argument, NULL, O_TLSKEY },
	{ "max-offers", required_argument, NULL, O_MAXOFFERS },
	{ "offer-timeout", required_argument, NULL, O_OFFERT },
	{ "offer-max", required_argument, NULL, O_OFFERMAX },
	{ "state", required_argument, NULL, O_STATE },
	{ "open-nicks", no_argument, NULL, O_OPENNICKS },
	{ "nick-expiry", required_argument, NULL, O_NICKEXP },
	{ "admission", required_argument, NULL, O_ADMISSION },
	{ "password-file", required_argument, NULL, O_PASSFILE },
	{ "redis", required_argument, NULL, O_REDIS },
	{ "cluster", required_argument, NULL, O_CLUSTER },
	{ "master", no_argument, NULL, O_MASTER },
	{ "redirect-above", required_argument, NULL, O_REDIRECT },
	{ "advertise", required_argument, NULL, O_ADVERTISE },
	{ "config", required_argument, NULL, O_CONFIG },
	{ "operator", required_argument, NULL, O_OPERATOR },
	{ "room-allow", required_argument, NULL, O_ROOMALLOW },
	{ "room-key-file", required_argument, NULL, O_ROOMKEY },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};
/* One option, from the command line or the configuration file (where g_where names the
 * line). Returns -1 to continue, else an exit code. */
static int apply_opt(struct opts *o, int ch, const char *arg)
{
	uint64_t v;

	switch (ch) {
	case O_LISTEN: {
		/* port 0 is allowed here (any free port), unlike for clients */
		const char *colon = strrchr(arg, ':');
		if (colon && !strcmp(colon, ":0")) {
			char tmp[RD_HOST_MAX + 8];
			snprintf(tmp, sizeof(tmp), "%.*s:1", (int)(colon - arg), arg);
			if (rd_net_parse_hostport(tmp, RD_DEFAULT_PORT, o->host, sizeof(o->host),
						  &o->port) != 0)
				return bad("--listen", arg, "expected ADDR:PORT");
			o->port = 0;
		} else if (rd_net_parse_hostport(arg, RD_DEFAULT_PORT, o->host, sizeof(o->host),
						 &o->port) != 0) {
			return bad("--listen", arg,
				   "expected ADDR:PORT with a port from 0 to 65535");
		}
		break;
	}
	case O_ROOMS:
		for (size_t i = 0; i < o->nrooms; i++)
			free(o->rooms[i]);
		o->nrooms = 0;
		if (split_rooms(o, arg) != 0)
			return SRV_EUSAGE;
		break;
	case O_MAXC:
		if (parse_size(arg, &v) != 0 || v < 1 || v > 100000)
			return bad("--max-clients", arg, "a number from 1 to 100000");
		o->cfg.max_clients = (unsigned)v;
		break;
	case O_PBURST:
		if (parse_size(arg, &v) != 0 || v > 100000000)
			return bad("--presence-burst", arg, "a number from 0 to 100000000");
		o->cfg.presence_burst = (unsigned)v;
		break;
	case O_PINGI:
	case O_PINGT:
	case O_REGT:
		if (parse_duration_ms(arg, &v) != 0 || v < 10)
			return bad(ch == O_PINGI ? "--ping-interval" :
				   ch == O_PINGT ? "--ping-timeout" :
						   "--register-timeout",
				   arg, "a duration of at least 10ms, e.g. 30s or 500ms");
		if (ch == O_PINGI)
			o->cfg.ping_interval_ms = (uint32_t)v;
		else if (ch == O_PINGT)
			o->cfg.ping_timeout_ms = (uint32_t)v;
		else
			o->cfg.register_timeout_ms = (uint32_t)v;
		break;
	case O_LOG:
		if (rd_log_level_parse(arg, &g_level) != 0)
			return bad("--log-level", arg, "one of error, warn, info, debug");
		break;
	case O_STORE:
		if (!arg[0])
			return bad("--store", arg, "a folder name");
		o->files.store_root = arg;
		break;
	case O_MAXF:
		if (parse_size(arg, &v) != 0)
			return bad("--max-file-size", arg, "a size such as 100M or 2G");
		o->files.max_file_size = v;
		break;
	case O_QUOTA:
		if (parse_size(arg, &v) != 0)
			return bad("--room-quota", arg, "a size such as 1G");
		o->files.room_quota = v;
		break;
	case O_TLS:
		if (strcmp(arg, "on") && strcmp(arg, "off"))
			return bad("--tls", arg, "on or off");
		o->tls_off = !strcmp(arg, "off");
		break;
	case O_TLSCERT:
		o->tls_cert = arg;
		break;
	case O_TLSKEY:
		o->tls_key = arg;
		break;
	case O_USTAGED:
		if (parse_size(arg, &v) != 0)
			return bad("--max-staged-per-user", arg, "a size such as 8G");
		o->files.max_staged_per_user = v;
		break;
	case O_MINFREE:
		if (parse_size(arg, &v) != 0)
			return bad("--min-free", arg, "a size such as 64M");
		o->files.min_free_bytes = v;
		break;
	case O_STTL:
		if (parse_duration_ms(arg, &v) != 0 || v < 1000)
			return bad("--staging-ttl", arg, "a duration of at least 1s");
		o->files.staging_ttl_s = (uint32_t)(v / 1000);
		break;
	case O_OUTLIM:
		if (parse_size(arg, &v) != 0 || v < 65536 || v > (1ull << 32))
			return bad("--out-limit", arg, "a size from 64K to 4G");
		o->cfg.out_limit = (size_t)v;
		break;
	case O_RATE:
		if (parse_size(arg, &v) != 0 || v > 1000000)
			return bad("--msg-rate", arg, "a number from 0 (no limit) to 1000000");
		o->cfg.msg_rate = (uint32_t)v;
		break;
	case O_MAXOFFERS:
		if (parse_size(arg, &v) != 0 || v < 1 || v > 1000)
			return bad("--max-offers", arg, "a number from 1 to 1000");
		o->cfg.max_offers = (unsigned)v;
		break;
	case O_OFFERT:
	case O_OFFERMAX:
		if (parse_duration_ms(arg, &v) != 0 || v < 10 || v > 86400000)
			return bad(ch == O_OFFERT ? "--offer-timeout" : "--offer-max", arg,
				   "a duration from 10ms to 24h, e.g. 60s");
		if (ch == O_OFFERT)
			o->cfg.offer_timeout_ms = (uint32_t)v;
		else
			o->cfg.offer_max_ms = (uint32_t)v;
		break;
	case O_STATE:
		if (!arg[0])
			return bad("--state", arg, "a file name");
		o->state_path = arg;
		break;
	case O_OPENNICKS:
		o->open_nicks = !arg || strcmp(arg, "0");
		break;
	case O_ADMISSION:
		if (!strcmp(arg, "open"))
			o->admission = ADMIT_OPEN;
		else if (!strcmp(arg, "password"))
			o->admission = ADMIT_PASSWORD;
		else if (!strcmp(arg, "allowlist"))
			o->admission = ADMIT_ALLOWLIST;
		else if (!strcmp(arg, "invite"))
			o->admission = ADMIT_INVITE;
		else
			return bad("--admission", arg, "open, password, allowlist or invite");
		break;
	case O_PASSFILE:
		o->password_file = arg;
		break;
	case O_NICKEXP: {
		char *end = NULL;
		unsigned long days;

		errno = 0;
		days = strtoul(arg, &end, 10);
		if (errno || end == arg || *end || arg[0] == '-' || days > 36500)
			return bad("--nick-expiry", arg,
				   "a number of days from 0 (never) to 36500");
		o->nick_expiry_ms = (uint64_t)days * 86400000ull;
		break;
	}
	case O_REDIS:
		if (!arg[0])
			return bad("--redis", arg, "a Unix socket path or HOST:PORT");
		o->cluster.redis = arg;
		break;
	case O_CLUSTER:
		o->cluster.name = arg;
		break;
	case O_MASTER:
		o->cluster.master = !arg || strcmp(arg, "0");
		break;
	case O_REDIRECT:
		if (parse_size(arg, &v) != 0 || v < 1 || v > 100000)
			return bad("--redirect-above", arg, "a number from 1 to 100000");
		o->cluster.redirect_above = (unsigned)v;
		break;
	case O_ADVERTISE: {
		char h[RD_HOST_MAX + 1];
		uint16_t p;
		if (rd_net_parse_hostport(arg, 0, h, sizeof(h), &p) != 0 || p == 0)
			return bad("--advertise", arg,
				   "HOST:PORT where clients can reach this server");
		o->cluster.advertise = arg;
		break;
	}
	case O_CTL:
		o->ctl_socket = arg;
		break;
	case O_PORTFILE:
		o->port_file = arg;
		break;
	case O_HEADLESS:
		o->headless = !arg || strcmp(arg, "0");
		break;
	case O_OPERATOR:
		if (add_operator(o, arg) != 0)
			return bad("--operator", arg, "ROOM:FINGERPRINT");
		break;
	case O_ROOMALLOW: {
		const char *colon = strchr(arg, ':');
		struct room_rule *r;
		uint8_t fp[RD_TLS_FP_LEN];

		if (!colon || rd_tls_fp_parse(colon + 1, fp) != 0 ||
		    !(r = rule_for(o, arg, (size_t)(colon - arg))))
			return bad("--room-allow", arg, "ROOM:FINGERPRINT");
		if (rule_allow(r, fp) != 0)
			return SRV_EFAIL;
		break;
	}
	case O_ROOMKEY: {
		const char *colon = strchr(arg, ':');
		struct room_rule *r;

		if (!colon || !colon[1] || !(r = rule_for(o, arg, (size_t)(colon - arg))))
			return bad("--room-key-file", arg, "ROOM:FILE");
		r->key_file = colon + 1;
		r->key_line = 0;
		break;
	}
	default:
		return -1;
	}
	return -1;
}

/* --config FILE: read it (a bad file is refused with its line) and apply its [server]
 * settings as if given first on the command line; keep its [room] sections in o->conf.
 * Returns -1 to continue, else an exit code. */
static int load_config(struct opts *o, const char *path)
{
	char why[256];
	int line, rc;

	o->config_path = path;
	rc = conf_load(path, g_options, &o->conf, &line, why, sizeof(why));
	if (rc == RD_ERR_INVAL) {
		fprintf(stderr, "roomdrop-server: %s:%d: %s\n", path, line, why);
		return SRV_EUSAGE;
	}
	if (rc != 0) {
		fprintf(stderr, "roomdrop-server: cannot read the configuration file %s: %s\n",
			path, rc == RD_ERR_SYSTEM ? strerror(errno) : rd_strerror(rc));
		return SRV_EUSAGE;
	}
	for (size_t i = 0; i < o->conf->nopts; i++) {
		const struct conf_opt *c = &o->conf->opts[i];
		int ch = 0;

		for (const struct option *p = g_options; p->name; p++)
			if (!strcmp(p->name, c->name))
				ch = p->val;
		snprintf(g_where, sizeof(g_where), "%s:%d: ", path, c->line);
		rc = apply_opt(o, ch, c->value);
		g_where[0] = '\0';
		if (rc >= 0)
			return rc;
	}
	for (size_t i = 0; i < o->conf->nrooms; i++) {
		const struct conf_room *r = &o->conf->rooms[i];
		struct operator_entry *v;

		if (r->nallow || r->key_file) {
			struct room_rule *rule = rule_for(o, r->name, strlen(r->name));

			if (!rule)
				return SRV_EFAIL;
			for (size_t k = 0; k < r->nallow; k++)
				if (rule_allow(rule, r->allow[k]) != 0)
					return SRV_EFAIL;
			if (r->key_file) {
				rule->key_file = r->key_file;
				rule->key_line = r->key_line;
			}
		}
		if (r->noperators == 0)
			continue;
		v = realloc(o->operators, (o->noperators + r->noperators) * sizeof(*v));
		if (!v)
			return SRV_EFAIL;
		o->operators = v;
		for (size_t k = 0; k < r->noperators; k++) {
			v = &o->operators[o->noperators++];
			snprintf(v->room, sizeof(v->room), "%s", r->name);
			memcpy(v->fp, r->operators[k], RD_TLS_FP_LEN);
			v->line = r->line;
		}
	}
	return -1;
}

/* Is room one of the server's rooms (the list, or the default one)? */
static int room_listed(const struct opts *o, const char *room)
{
	static const char *const defaults[] = { "general", "random" };

	if (o->nrooms == 0)
		return rd_name_eq(room, defaults[0]) || rd_name_eq(room, defaults[1]);
	for (size_t i = 0; i < o->nrooms; i++)
		if (rd_name_eq(o->rooms[i], room))
			return 1;
	return 0;
}

/* Returns -1 to continue, else an exit code. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	const char *config = NULL;
	int ch, rc;

	snprintf(o->host, sizeof(o->host), "%s", RD_DEFAULT_HOST);
	o->port = RD_DEFAULT_PORT;
	rd_server_config_defaults(&o->cfg);
	files_config_defaults(&o->files);
	o->nick_expiry_ms = (uint64_t)STATE_NICK_EXPIRY_DAYS * 86400000ull;
	opterr = 0;
	/* the file first, so that the command line wins over it */
	while ((ch = getopt_long(argc, argv, ":hV", g_options, NULL)) != -1)
		if (ch == O_CONFIG)
			config = optarg;
	if (config && (rc = load_config(o, config)) >= 0)
		return rc;
	optind = 0;
	while ((ch = getopt_long(argc, argv, ":hV", g_options, NULL)) != -1) {
		switch (ch) {
		case 'h':
			usage(stdout);
			return SRV_OK;
		case 'V':
			printf("roomdrop-server %s\n", RD_VERSION);
			return SRV_OK;
		case ':':
			fprintf(stderr, "roomdrop-server: option '%s' needs a value\n",
				argv[optind - 1]);
			fprintf(stderr, "Try 'roomdrop-server --help'.\n");
			return SRV_EUSAGE;
		case O_CONFIG: /* read first, below */
			break;
		default:
			if (ch >= O_LISTEN) {
				if ((rc = apply_opt(o, ch, optarg)) >= 0)
					return rc;
				break;
			}
			fprintf(stderr, "roomdrop-server: unknown option '%s'\n", argv[optind - 1]);
			fprintf(stderr, "Try 'roomdrop-server --help'.\n");
			return SRV_EUSAGE;
		}
	}
	if (!o->tls_cert != !o->tls_key) {
		fprintf(stderr, "roomdrop-server: --tls-cert and --tls-key go together\n");
		return SRV_EUSAGE;
	}
	if ((o->admission == ADMIT_PASSWORD) != (o->password_file != NULL)) {
		fprintf(stderr, "roomdrop-server: --admission password and --password-file go "
				"together\n");
		return SRV_EUSAGE;
	}
	if (o->admission != ADMIT_OPEN && o->tls_off) {
		fprintf(stderr,
			"roomdrop-server: --admission %s needs TLS (a password or a key is never "
			"checked over a plaintext link): leave out --tls off\n",
			o->admission == ADMIT_PASSWORD  ? "password" :
			o->admission == ADMIT_ALLOWLIST ? "allowlist" :
							  "invite");
		return SRV_EUSAGE;
	}
	if (!o->cluster.redis && (o->cluster.name || o->cluster.master ||
				  o->cluster.redirect_above || o->cluster.advertise)) {
		fprintf(stderr, "roomdrop-server: --cluster, --master, --redirect-above and "
				"--advertise need --redis\n");
		return SRV_EUSAGE;
	}
	if (o->cluster.redirect_above && !o->cluster.master) {
		fprintf(stderr, "roomdrop-server: --redirect-above needs --master\n");
		return SRV_EUSAGE;
	}
	if (o->cluster.redis && !o->cluster.name)
		o->cluster.name = "roomdrop";
	for (size_t i = 0; o->conf && i < o->conf->nrooms; i++)
		if (!room_listed(o, o->conf->rooms[i].name)) {
			fprintf(stderr,
				"roomdrop-server: %s:%d: [room %s]: no such room (the rooms "
				"are those of 'rooms =' or --rooms)\n",
				o->config_path, o->conf->rooms[i].line, o->conf->rooms[i].name);
			return SRV_EUSAGE;
		}
	for (size_t i = 0; i < o->nrules; i++)
		if (!room_listed(o, o->rules[i].room)) {
			fprintf(stderr,
				"roomdrop-server: --room-allow / --room-key-file %s: no such room\n",
				o->rules[i].room);
			return SRV_EUSAGE;
		}
	if (o->nrules && o->tls_off) {
		fprintf(stderr,
			"roomdrop-server: restricted rooms need TLS (a key or a room key is "
			"never checked over a plaintext link): leave out --tls off\n");
		return SRV_EUSAGE;
	}
	for (size_t i = 0; i < o->noperators; i++)
		if (!o->operators[i].line && !room_listed(o, o->operators[i].room)) {
			fprintf(stderr, "roomdrop-server: --operator %s: no such room\n",
				o->operators[i].room);
			return SRV_EUSAGE;
		}
	if (optind < argc) {
		fprintf(stderr, "roomdrop-server: unexpected argument '%s'\n", argv[optind]);
		fprintf(stderr, "Try 'roomdrop-server --help'.\n");
		return SRV_EUSAGE;
	}
	return -1;
}

/* ---- events and logs ------------------------------------------------------------------ */

static void log_line(const char *level, const char *text)
{
	char ts[32];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	pthread_mutex_lock(&g_log_mtx);
	fprintf(stderr, "%s.%03ld %-5s %s\n", ts, now.tv_nsec / 1000000L, level, text);
	pthread_mutex_unlock(&g_log_mtx);
}

static void lib_log(enum rd_log_level level, const char *file, int line, const char *func,
		    const char *msg, void *user)
{
	char buf[600];
	(void)user;
	(void)func;
	if (level >= RD_LOG_DEBUG)
		snprintf(buf, sizeof(buf), "%s (%s:%d)", msg, file, line);
	else
		snprintf(buf, sizeof(buf), "%s", msg);
	log_line(rd_log_level_name(level), buf);
}

static void describe(const struct rd_event *ev, char *out, size_t cap)
{
	char who[160], nick[80], text[400];
	rd_escape_display(ev->nick, strlen(ev->nick), nick, sizeof(nick));
	rd_escape_display(ev->text, strlen(ev->text), text, sizeof(text));
	snprintf(who, sizeof(who), "%s%s(%s:%u)", nick, nick[0] ? " " : "", ev->ip, ev->port);
	switch (ev->kind) {
	case RD_EV_CONNECTED:
		snprintf(out, cap, "%s connected", who);
		break;
	case RD_EV_REGISTERED:
		snprintf(out, cap, "%s registered", who);
		break;
	case RD_EV_JOINED:
		snprintf(out, cap, "%s joined %s", who, ev->room);
		break;
	case RD_EV_LEFT:
		snprintf(out, cap, "%s left %s", who, ev->room);
		break;
	case RD_EV_DISCONNECTED:
		snprintf(out, cap, "%s disconnected (%s)", who, text);
		break;
	case RD_EV_KICKED:
		snprintf(out, cap, "%s was kicked (%s)", who, text);
		break;
	case RD_EV_MESSAGE:
		snprintf(out, cap, "%s sent a message", who);
		break;
	case RD_EV_ACTIVITY:
		snprintf(out, cap, "%s %s", who, text[0] ? text : "is idle");
		break;
	case RD_EV_REFUSED:
		snprintf(out, cap, "refused %s:%u: %s", ev->ip, ev->port, text);
		break;
	case RD_EV_BROADCAST:
		snprintf(out, cap, "broadcast%s%s: %s", ev->room[0] ? " to " : "", ev->room, text);
		break;
	case RD_EV_ERROR:
		snprintf(out, cap, "%s protocol error: %s", who, text);
		break;
	case RD_EV_INFO:
		snprintf(out, cap, "%s", text);
		break;
	case RD_EV_STOPPING:
		snprintf(out, cap, "stopping: %s", text[0] ? text : "shutdown");
		break;
	default:
		snprintf(out, cap, "event %d", ev->kind);
		break;
	}
}

static void on_event(struct rd_server *s, const struct rd_event *ev, void *user)
{
	(void)s;
	(void)user;
	enum rd_log_level lv = RD_LOG_INFO;
	if (ev->kind == RD_EV_MESSAGE || ev->kind == RD_EV_ACTIVITY || ev->kind == RD_EV_CONNECTED)
		lv = RD_LOG_DEBUG;
	else if (ev->kind == RD_EV_ERROR || ev->kind == RD_EV_REFUSED)
		lv = RD_LOG_WARN;
	if (lv <= g_level) {
		char line[700];
		describe(ev, line, sizeof(line));
		log_line(rd_log_level_name(lv), line);
	}
	admin_ui_event(ev);
}

/* ---- signals -------------------------------------------------------------------------- */

static sigset_t g_sigs;

static void *signal_main(void *arg)
{
	int sig = 0;
	(void)arg;
	pthread_setname_np(pthread_self(), "rd-signal");
	sigwait(&g_sigs, &sig);
	if (sig != SIGUSR1)
		admin_ui_quit();
	return NULL;
}

/* admin_ui_info.others: the clients of the other servers of the cluster, as the window's
 * rows (cluster_clients, as `ctl list` shows them). */
static int window_others(void *user, struct rd_client_info **out, size_t *n)
{
	struct rd_ctl_client *v = NULL;
	size_t k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = cluster_clients(user, &v, &k)) != 0)
		return rc;
	if (k && (*out = calloc(k, sizeof(**out))) == NULL) {
		free(v);
		return RD_ERR_NOMEM;
	}
	for (size_t i = 0; i < k; i++) {
		struct rd_client_info *c = &(*out)[i];
		snprintf(c->ip, sizeof(c->ip), "-");
		memcpy(c->nick, v[i].nick, sizeof(c->nick));
		memcpy(c->room, v[i].room, sizeof(c->room));
		c->connected_ms = v[i].connected_ms;
		c->last_msg_ms = v[i].last_msg_ms;
		snprintf(c->activity, sizeof(c->activity), "on server %.80s", v[i].server);
	}
	*n = k;
	free(v);
	return 0;
}

static int write_port_file(const char *path, uint16_t port)
{
	char tmp[4096];
	FILE *f;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, path);
}

/* ---- hooks: the files, and nicknames owned by keys (state.h) --------------------------- */

static uint16_t app_on_frame(struct rd_server *s, struct rd_client *c, const struct rd_frame *f,
			     void *user)
{
	return files_on_frame(s, c, f, ((struct app *)user)->files);
}

static void app_on_disconnect(struct rd_server *s, struct rd_client *c, const char *reason,
			      void *user)
{
	files_on_disconnect(s, c, reason, ((struct app *)user)->files);
}

/* How long to hold back the answer to a failed AUTH from ip, counting this failure. */
static unsigned fail_delay_ms(struct app *a, const char *ip, int failed)
{
	uint64_t now = rd_now_mono_ms();
	unsigned slot = 0, count = 0;

	pthread_mutex_lock(&a->fail_mu);
	for (unsigned i = 0; i < FAIL_SLOTS; i++) {
		if (strcmp(a->fails[i].ip, ip) == 0) {
			slot = i;
			break;
		}
		if (a->fails[i].last_ms < a->fails[slot].last_ms) /* else the oldest */
			slot = i;
	}
	if (strcmp(a->fails[slot].ip, ip) != 0 || now - a->fails[slot].last_ms > FAIL_WINDOW_MS) {
		snprintf(a->fails[slot].ip, sizeof(a->fails[slot].ip), "%s", ip);
		a->fails[slot].count = 0;
	}
	if (failed) {
		count = ++a->fails[slot].count;
		a->fails[slot].last_ms = now;
	} else {
		a->fails[slot].count = 0;
	}
	pthread_mutex_unlock(&a->fail_mu);
	if (count == 0)
		return 0;
	return count >= 6 ? FAIL_DELAY_MAX_MS : 250u << (count - 1);
}

/* The state (SQLite, or Redis in cluster mode) did not answer while the server had to
 * `what`: logged, and a retryable refusal: 902 CLUSTER_DEGRADED in a cluster, else 900. */
static uint16_t state_down(struct app *a, const char *what, char *why, size_t cap)
{
	char line[200];

	snprintf(line, sizeof(line), "the %s did not answer: could not %s",
		 a->clustered ? "cluster's Redis" : "state database", what);
	log_line("error", line);
	if (a->clustered) {
		snprintf(why, cap,
			 "the cluster is degraded (its shared state does not answer): the server "
			 "cannot %s now; try again in a moment",
			 what);
		return RD_E_CLUSTER_DEGRADED;
	}
	snprintf(why, cap, "the server cannot %s now (its state database failed); try again later",
		 what);
	return RD_E_INTERNAL;
}

/* AUTH: a password (admission password), or an invitation (any mode but open: it admits
 * the key for good). A failure is answered late (fail_delay_ms) and logged. */
static uint16_t app_on_auth(struct rd_server *s, struct rd_client *c, uint8_t kind,
			    const uint8_t *secret, size_t n, char *why, size_t cap, void *user)
{
	struct app *a = user;
	uint8_t fp[RD_TLS_FP_LEN], got[RD_SHA256_SIZE];
	char ip[48], line[200];
	unsigned delay;
	int ok = 0;

	(void)s;
	rd_client_ip(c, ip);
	if (kind == RD_AUTH_PASSWORD) {
		if (a->admission != ADMIT_PASSWORD) {
			snprintf(why, cap, "this server asks for no password");
			return RD_E_UNEXPECTED;
		}
		ok = rd_sha256(secret, n, got) == 0 &&
		     rd_ct_equal(got, a->password_hash, RD_SHA256_SIZE);
	} else {
		if (a->state == NULL || a->admission == ADMIT_OPEN) {
			snprintf(why, cap, "this server takes no invitations (it is open)");
			return RD_E_UNEXPECTED;
		}
		if (rd_client_fingerprint(c, fp) != 0) {
			snprintf(why, cap,
				 "an invitation admits a key, and this client shows none");
			return RD_E_BAD_SECRET;
		}
		int rc = state_invite_use(a->state, secret, n, fp, rd_now_wall_ms());

		if (rc == RD_ERR_SYSTEM) /* not the client's fault: no delay, a retryable code */
			return state_down(a, "use the invitation", why, cap);
		ok = rc == 0;
		if (ok) {
			char text[RD_TLS_FP_TEXT_LEN];

			rd_tls_fp_format(fp, text);
			snprintf(line, sizeof(line), "%s: an invitation admitted the key %s", ip,
				 text);
			log_line("info", line);
		}
	}
	delay = fail_delay_ms(a, ip, !ok);
	if (ok)
		return 0;
	snprintf(line, sizeof(line), "%s: %s refused (answered after %u ms)", ip,
		 kind == RD_AUTH_PASSWORD ? "a wrong password" : "an invitation", delay);
	log_line("warn", line);
	if (delay > 0) {
		struct timespec ts = { (time_t)(delay / 1000), (long)(delay % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	snprintf(
		why, cap, "%s",
		kind == RD_AUTH_PASSWORD ?
			"wrong password" :
			"this invitation is unknown, used up, expired or revoked: ask for a new one");
	return RD_E_BAD_SECRET;
}

/* NICK: the admission gate, then refused when another key owns the nickname (ERROR 207). */
/* hooks.may_enter: a restricted room is for its listed keys, its operators and the
 * holders of its key; to everyone else it does not exist. */
static int app_may_enter(struct rd_server *s, struct rd_client *c, const char *room,
			 const uint8_t *key, size_t n, void *user)
{
	struct app *a = user;
	const struct room_rule *r = NULL;
	uint8_t fp[RD_TLS_FP_LEN], h[RD_SHA256_SIZE];

	(void)s;
	for (size_t i = 0; i < a->nrules && !r; i++)
		if (rd_name_eq(a->rules[i].room, room))
			r = &a->rules[i];
	if (!r)
		return 1;
	if (!c)
		return 0;
	if (rd_client_fingerprint(c, fp) == 0) {
		for (size_t i = 0; i < r->nallow; i++)
			if (rd_tls_fp_equal(r->allow[i], fp))
				return 1;
		if (a->state && state_op_is(a->state, r->room, fp))
			return 1;
	}
	return n > 0 && r->has_key && rd_sha256(key, n, h) == 0 &&
	       rd_ct_equal(h, r->key_hash, RD_SHA256_SIZE);
}

static uint16_t app_on_nick(struct rd_server *s, struct rd_client *c, const char *nick,
			    const uint8_t *fp, char *why, size_t cap, void *user)
{
	struct app *a = user;
	int rc = 0;

	(void)s;
	if (a->admission == ADMIT_PASSWORD && !rd_client_admitted(c)) {
		snprintf(why, cap,
			 "this server wants a password first (roomdrop --password-file "
			 "FILE)");
		return RD_E_AUTH_REQUIRED;
	}
	if ((a->admission == ADMIT_ALLOWLIST || a->admission == ADMIT_INVITE) &&
	    !rd_client_admitted(c) && fp != NULL && (rc = state_key_admitted(a->state, fp)) != 0 &&
	    rc != 1)
		return state_down(a, "check that your key is admitted", why, cap);
	if ((a->admission == ADMIT_ALLOWLIST || a->admission == ADMIT_INVITE) &&
	    !rd_client_admitted(c) && (fp == NULL || rc != 1)) {
		char text[RD_TLS_FP_TEXT_LEN] = "none", ip[48], line[200];

		if (fp != NULL)
			rd_tls_fp_format(fp, text);
		rd_client_ip(c, ip);
		snprintf(line, sizeof(line), "%s: the key %s is not admitted (refused)", ip, text);
		log_line("warn", line);
		refused_add(&a->refused, fp, ip, nick, rd_now_wall_ms());
		snprintf(why, cap, "this server admits only known keys; yours is %s: %s", text,
			 a->admission == ADMIT_INVITE ?
				 "ask its administrator for an invitation" :
				 "ask its administrator to admit it (or for an invitation)");
		return RD_E_NOT_ADMITTED;
	}
	if (a->state == NULL || a->open_nicks)
		return 0;
	rc = state_nick_check(a->state, nick, fp, rd_now_wall_ms(), NULL);
	if (rc == 0)
		return 0;
	if (rc == RD_ERR_EXISTS) {
		snprintf(why, cap, "%s is registered to another key%s", nick,
			 fp != NULL ? "" : " (this connection shows none)");
		return RD_E_NICK_OWNED;
	}
	return state_down(a, "check who owns this nickname", why, cap);
}

/* Registered: its key owns the nickname from now on (or used it once more). */
static void app_on_register(struct rd_server *s, struct rd_client *c, void *user)
{
	struct app *a = user;
	uint8_t fp[RD_TLS_FP_LEN];
	char nick[RD_NICK_BUF];
	int rc;

	(void)s;
	if (a->state == NULL || a->open_nicks || rd_client_fingerprint(c, fp) != 0)
		return;
	rd_client_nick(c, nick);
	if ((rc = state_nick_claim(a->state, nick, fp, rd_now_wall_ms())) != 0) {
		char line[160];

		snprintf(line, sizeof(line), "could not record %s's owner: %s", nick,
			 rc == RD_ERR_EXISTS ? "another key claimed it meanwhile" :
					       "the state database failed");
		log_line("warn", line);
	}
}

/* --password-file, a room's key-file: its first line, kept as its SHA-256 only (where:
 * "FILE:LINE: " of the configuration file that names it, or ""). 0 or SRV_EUSAGE. */
static int load_secret(const char *path, const char *what, const char *where,
		       uint8_t hash[RD_SHA256_SIZE])
{
	char line[RD_SECRET_MAX + 2];
	FILE *f = fopen(path, "r");
	size_t n;
	int rc;

	if (f == NULL) {
		fprintf(stderr, "roomdrop-server: %scannot read the %s file %s: %s\n", where, what,
			path, strerror(errno));
		return SRV_EUSAGE;
	}
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	n = strcspn(line, "\r\n");
	if (n == 0 || n > RD_SECRET_MAX) {
		fprintf(stderr,
			"roomdrop-server: %sthe %s file %s must hold the %s on its first line (1 "
			"to %u bytes)\n",
			where, what, path, what, RD_SECRET_MAX);
		return SRV_EUSAGE;
	}
	rc = rd_sha256(line, n, hash);
	explicit_bzero(line, sizeof(line));
	return rc == 0 ? 0 : SRV_EFAIL;
}

/* The room keys of restricted rooms: each key file's first line, as its SHA-256. */
static int load_room_keys(struct opts *o)
{
	char where[PATH_MAX + 32];
	int rc;

	for (size_t i = 0; i < o->nrules; i++) {
		struct room_rule *r = &o->rules[i];

		if (!r->key_file)
			continue;
		where[0] = '\0';
		if (r->key_line)
			snprintf(where, sizeof(where), "%s:%d: ", o->config_path, r->key_line);
		if ((rc = load_secret(r->key_file, "room key", where, r->key_hash)) != 0)
			return rc;
		r->has_key = 1;
	}
	return 0;
}

/* STORE.state.db (or --state FILE), or in cluster mode without --state the cluster's
 * Redis: open it, or say why not. 0, SRV_ESTORE or SRV_EREDIS. */
static int open_state(const struct opts *o, struct cluster *cl, struct state **st)
{
	char path[PATH_MAX + 16], why[256];
	size_t n;

	if (cl != NULL && o->state_path == NULL) {
		why[0] = '\0';
		if (state_open_cluster(cl, o->nick_expiry_ms, st, why, sizeof(why)) != 0) {
			fprintf(stderr, "roomdrop-server: cannot keep the state in Redis: %s\n",
				why[0] ? why : "out of memory");
			return SRV_EREDIS;
		}
		if (why[0] != '\0')
			log_line("warn", why);
		log_line("info", "nickname owners, operators, admitted keys and invitations are "
				 "kept in the cluster's Redis (shared by its servers)");
		return 0;
	}
	if (o->state_path != NULL) {
		snprintf(path, sizeof(path), "%s", o->state_path);
	} else {
		snprintf(path, sizeof(path), "%s",
			 o->files.store_root ? o->files.store_root : "roomdrop-store");
		n = strlen(path);
		while (n > 1 && path[n - 1] == '/')
			path[--n] = '\0';
		snprintf(path + n, sizeof(path) - n, ".state.db");
	}
	if (state_open(path, o->nick_expiry_ms, st, why, sizeof(why)) != 0) {
		fprintf(stderr, "roomdrop-server: cannot use the state database %s: %s\n", path,
			why[0] ? why : "out of memory");
		return SRV_ESTORE;
	}
	return 0;
}

/* The operators named in the configuration file and by --operator: granted at every
 * start (a `ctl deop` lasts until the next one). 0 or SRV_ESTORE. */
static int grant_operators(const struct opts *o, struct state *st)
{
	char text[RD_TLS_FP_TEXT_LEN], line[512];
	uint64_t now = (uint64_t)time(NULL) * 1000;
	int rc;

	for (size_t i = 0; i < o->noperators; i++) {
		rc = state_op_set(st, o->operators[i].room, o->operators[i].fp, 1, now);
		if (rc != 0 && rc != RD_ERR_EXISTS) {
			fprintf(stderr, "roomdrop-server: cannot record the operators: %s\n",
				rd_strerror(rc));
			return SRV_ESTORE;
		}
		rd_tls_fp_format(o->operators[i].fp, text);
		snprintf(line, sizeof(line), "operator of %s (%s): %s", o->operators[i].room,
			 o->operators[i].line ? "configuration file" : "--operator", text);
		log_line("info", line);
	}
	return 0;
}

/* Where the server keeps its TLS identity when none is given: STORE.tls/ beside the store
 * (mode 0700, files 0600), so that it lives and moves with the store. */
static void identity_dir(const char *store, char *out, size_t cap)
{
	char base[PATH_MAX];
	size_t n;

	snprintf(base, sizeof(base), "%s", store ? store : "roomdrop-store");
	n = strlen(base);
	while (n > 1 && base[n - 1] == '/')
		base[--n] = '\0';
	snprintf(out, cap, "%s.tls", base);
}

/* The message for a TLS identity that rd_server_new could not load or make. */
static void tls_failed(const struct opts *o, int rc, const char *dir)
{
	char crt[2 * PATH_MAX], key[2 * PATH_MAX];

	if (o->tls_cert) {
		snprintf(crt, sizeof(crt), "%s", o->tls_cert);
		snprintf(key, sizeof(key), "%s", o->tls_key);
	} else {
		snprintf(crt, sizeof(crt), "%s/%s", dir, RD_TLS_SERVER_CERT);
		snprintf(key, sizeof(key), "%s/%s", dir, RD_TLS_SERVER_KEY);
	}
	fprintf(stderr, "roomdrop-server: cannot use the TLS key %s with certificate %s: %s\n", key,
		crt,
		rc == RD_ERR_SYSTEM    ? strerror(errno) :
		rc == RD_ERR_MISMATCH  ? "the key is not the certificate's" :
		rc == RD_ERR_NOT_FOUND ? "missing (with the certificate kept, no new key is made: "
					 "remove both to start over)" :
		rc == RD_ERR_CRYPTO    ? "not a usable PEM key or certificate" :
					 rd_strerror(rc));
}

/* roomdrop-server fingerprint [--store DIR | --tls-cert FILE]: print the key's fingerprint. */
static int fingerprint_main(int argc, char **argv)
{
	const char *store = NULL, *cert = NULL;
	char crt[2 * PATH_MAX], text[RD_TLS_FP_TEXT_LEN];
	uint8_t fp[RD_TLS_FP_LEN];
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--store") && i + 1 < argc)
			store = argv[++i];
		else if (!strcmp(argv[i], "--tls-cert") && i + 1 < argc)
			cert = argv[++i];
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("Usage: roomdrop-server fingerprint [--store DIR | --tls-cert FILE]\n"
			       "Print the fingerprint of the server's key, as clients see it.\n");
			return SRV_OK;
		} else {
			fprintf(stderr, "roomdrop-server fingerprint: unexpected '%s'\n", argv[i]);
			return SRV_EUSAGE;
		}
	}
	if (cert) {
		snprintf(crt, sizeof(crt), "%s", cert);
	} else {
		char dir[PATH_MAX + 8];
		identity_dir(store, dir, sizeof(dir));
		snprintf(crt, sizeof(crt), "%s/%s", dir, RD_TLS_SERVER_CERT);
	}
	if ((rc = rd_tls_cert_file_fp(crt, fp)) != 0) {
		fprintf(stderr, "roomdrop-server fingerprint: %s: %s\n", crt,
			rc == RD_ERR_NOT_FOUND ?
				"no certificate yet (the server makes its key on its "
				"first start with TLS)" :
				"not a certificate");
		return SRV_ETLS;
	}
	rd_tls_fp_format(fp, text);
	printf("%s\n", text);
	return SRV_OK;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct rd_server *srv = NULL;
	struct files *files = NULL;
	struct ctl_server *ctl = NULL;
	struct cluster *cluster = NULL;
	struct rd_server_hooks hooks;
	struct app app = { 0 };
	char listen_text[RD_HOST_MAX + 16], ctl_path[108], fp_text[RD_TLS_FP_TEXT_LEN] = "";
	char tls_dir[PATH_MAX + 8];
	uint8_t fp[RD_TLS_FP_LEN];
	int tls = 0;
	int rc, code = SRV_EFAIL;

	if (argc > 1 && !strcmp(argv[1], "ctl"))
		return ctl_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "fingerprint"))
		return fingerprint_main(argc - 1, argv + 1);

	memset(&o, 0, sizeof(o));
	if ((code = parse_args(argc, argv, &o)) >= 0)
		goto out;
	code = SRV_EFAIL;
	rd_log_set(lib_log, g_level, NULL);

	/* before any thread exists, so that every thread inherits the mask */
	sigemptyset(&g_sigs);
	sigaddset(&g_sigs, SIGINT);
	sigaddset(&g_sigs, SIGTERM);
	sigaddset(&g_sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &g_sigs, NULL);
	rd_net_ignore_sigpipe();

	if (o.cluster.redis) {
		/* before anything else: a cluster member that cannot join must not serve */
		char why[512];
		if ((rc = cluster_new(&o.cluster, &cluster, why, sizeof(why))) != 0) {
			fprintf(stderr, "roomdrop-server: cluster mode: %s\n", why);
			code = rc == RD_ERR_STATE ? SRV_ENOCLUSTER :
			       rc == RD_ERR_INVAL ? SRV_EUSAGE :
						    SRV_EREDIS;
			goto out;
		}
	}

	if ((rc = files_new(&o.files, &files)) != 0) {
		fprintf(stderr, "roomdrop-server: cannot use the store folder '%s': %s\n",
			o.files.store_root ? o.files.store_root : "roomdrop-store",
			rc == RD_ERR_SYSTEM ? strerror(errno) : rd_strerror(rc));
		code = SRV_ESTORE;
		goto out;
	}

	pthread_mutex_init(&app.fail_mu, NULL);
	refused_init(&app.refused);
	app.open_nicks = o.open_nicks;
	app.admission = o.admission;
	app.clustered = cluster != NULL && o.state_path == NULL;
	if (o.admission == ADMIT_PASSWORD &&
	    (code = load_secret(o.password_file, "password", "", app.password_hash)) != 0)
		goto out;
	if ((code = load_room_keys(&o)) != 0)
		goto out;
	app.rules = o.rules;
	app.nrules = o.nrules;
	/* (the database holds owners, operators, admitted keys and invitations) */
	if ((!o.open_nicks || o.admission == ADMIT_ALLOWLIST || o.admission == ADMIT_INVITE ||
	     o.noperators > 0) &&
	    (code = open_state(&o, cluster, &app.state)) != 0)
		goto out;
	if ((code = grant_operators(&o, app.state)) != 0)
		goto out;
	code = SRV_EFAIL;

	identity_dir(o.files.store_root, tls_dir, sizeof(tls_dir));
	o.cfg.plain = o.tls_off;
	o.cfg.tls_cert = o.tls_cert;
	o.cfg.tls_key = o.tls_key;
	o.cfg.tls_dir = tls_dir;
	o.cfg.host = o.host;
	o.cfg.port = o.port;
	o.cfg.rooms = (const char *const *)o.rooms;
	o.cfg.nrooms = o.nrooms;
	o.cfg.software = CTL_SOFTWARE;
	o.cfg.features = RD_FEAT_ZLIB | RD_FEAT_FILES | RD_FEAT_QUIET | RD_FEAT_PUT_SEAL;
	memset(&hooks, 0, sizeof(hooks));
	app.files = files;
	hooks.user = &app;
	hooks.on_frame = app_on_frame;
	hooks.on_disconnect = app_on_disconnect;
	hooks.on_nick = app_on_nick;
	hooks.on_auth = app_on_auth;
	hooks.on_register = app_on_register;
	if (o.nrules > 0)
		hooks.may_enter = app_may_enter;
	hooks.on_event = on_event;
	if ((rc = rd_server_new(&o.cfg, &hooks, &srv)) != 0) {
		if (rc == RD_ERR_INVAL) {
			fprintf(stderr, "roomdrop-server: invalid configuration: %s\n",
				rd_strerror(rc));
			code = SRV_EUSAGE;
		} else {
			tls_failed(&o, rc, tls_dir);
			code = SRV_ETLS;
		}
		goto out;
	}
	if (rd_server_fingerprint(srv, fp) == 0) {
		tls = 1;
		rd_tls_fp_format(fp, fp_text);
	}
	files_attach(files, srv);
	files_set_state(files, app.state);
	if (cluster) {
		struct rd_cluster_ops ops;
		cluster_ops(cluster, &ops);
		rd_server_set_cluster(srv, &ops);
	}
	if ((rc = rd_server_start(srv)) != 0) {
		if (rc == RD_ERR_ADDR_IN_USE)
			fprintf(stderr,
				"roomdrop-server: cannot listen on %s:%u: the address is already in "
				"use (another server running? choose another port with --listen)\n",
				o.host, o.port);
		else if (rc == RD_ERR_ADDR)
			fprintf(stderr,
				"roomdrop-server: cannot listen on %s:%u: not a local address\n",
				o.host, o.port);
		else if (rc == RD_ERR_SYSTEM && errno == EADDRNOTAVAIL)
			fprintf(stderr,
				"roomdrop-server: cannot listen on %s:%u: that address is not on this "
				"machine (use one of its own addresses, 127.0.0.1 or 0.0.0.0)\n",
				o.host, o.port);
		else if (rc == RD_ERR_SYSTEM && errno == EACCES)
			fprintf(stderr,
				"roomdrop-server: cannot listen on %s:%u: ports below 1024 need "
				"administrator rights (choose a port from 1024 up)\n",
				o.host, o.port);
		else
			fprintf(stderr, "roomdrop-server: cannot listen on %s:%u: %s\n", o.host,
				o.port, rc == RD_ERR_SYSTEM ? strerror(errno) : rd_strerror(rc));
		code = SRV_ELISTEN;
		goto out;
	}
	uint64_t started = rd_now_mono_ms();
	uint16_t port = rd_server_port(srv);
	snprintf(listen_text, sizeof(listen_text), strchr(o.host, ':') ? "[%s]:%u" : "%s:%u",
		 o.host, port);
	if (o.ctl_socket)
		snprintf(ctl_path, sizeof(ctl_path), "%s", o.ctl_socket);
	else
		ctl_default_path(port, ctl_path, sizeof(ctl_path));
	if ((rc = ctl_server_start(srv, cluster, app.state, o.open_nicks, ctl_path, listen_text,
				   started, &ctl)) != 0) {
		fprintf(stderr, "roomdrop-server: cannot create the control socket %s: %s\n",
			ctl_path,
			rc == RD_ERR_ADDR_IN_USE ? "another server is using it" :
			rc == RD_ERR_SYSTEM      ? strerror(errno) :
						   rd_strerror(rc));
		code = SRV_ELISTEN;
		goto out;
	}
	if (cluster) {
		char why[512];
		if ((rc = cluster_start(cluster, srv, o.host, port, tls ? fp : NULL,
					o.cfg.max_clients, why, sizeof(why))) != 0) {
			fprintf(stderr, "roomdrop-server: cluster mode: %s\n", why);
			code = rc == RD_ERR_INVAL ? SRV_EUSAGE : SRV_EFAIL;
			goto out;
		}
	}
	if (o.port_file && write_port_file(o.port_file, port) != 0) {
		fprintf(stderr, "roomdrop-server: cannot write %s: %s\n", o.port_file,
			strerror(errno));
		code = SRV_EFAIL;
		goto out;
	}
	{
		char line[512];
		snprintf(line, sizeof(line),
			 "roomdrop-server %s listening on %s (control socket %s)", RD_VERSION,
			 listen_text, ctl_path);
		log_line("info", line);
		if (tls)
			snprintf(
				line, sizeof(line),
				"TLS 1.3; the server's key fingerprint is %s (clients record it on "
				"their first connection; compare it with what they show)",
				fp_text);
		else
			snprintf(line, sizeof(line),
				 "TLS is off (--tls off): connections are plaintext, clients need "
				 "--plain");
		log_line(tls ? "info" : "warn", line);
	}

	int want_ui = admin_ui_wanted(o.headless);
	if (!want_ui && !o.headless && (getenv("DISPLAY") || getenv("WAYLAND_DISPLAY")))
		log_line("info", "a display is set but no window can be shown there (or this "
				 "build has no GTK): running headless");
	if (want_ui) {
		pthread_t sth;
		static const char *const modes[] = { "open", "password", "allowlist", "invite" };
		struct admin_ops_ctx actx = { .srv = srv,
					      .state = app.state,
					      .refused = &app.refused,
					      .open_nicks = o.open_nicks,
					      .keys = o.admission == ADMIT_ALLOWLIST ||
						      o.admission == ADMIT_INVITE,
					      .mode = modes[o.admission],
					      .listen = listen_text,
					      .fingerprint = fp_text,
					      .log = log_line };
		struct admin_ui_ops ops;
		struct admin_ui_info info = { .listen = listen_text,
					      .store = o.files.store_root,
					      .fingerprint = fp_text,
					      .ops = &ops,
					      .others = cluster ? window_others : NULL,
					      .others_user = cluster };
		admin_ops_fill(&actx, &ops);
		int have_sig = pthread_create(&sth, NULL, signal_main, NULL) == 0;
		if (admin_ui_run(srv, &info) != 0) {
			log_line("warn", "the window could not be opened: running headless");
			int sig;
			if (have_sig) {
				pthread_join(sth, NULL); /* it waits for the signal for us */
				have_sig = 0;
			} else {
				sigwait(&g_sigs, &sig);
			}
		}
		if (have_sig) {
			pthread_kill(sth, SIGUSR1);
			pthread_join(sth, NULL);
		}
	} else {
		int sig = 0;
		do
			sigwait(&g_sigs, &sig);
		while (sig == SIGUSR1);
		log_line("info", sig == SIGINT ? "interrupted: shutting down" :
						 "terminated: shutting down");
	}
	code = SRV_OK;
out:
	ctl_server_stop(ctl);
	if (srv)
		rd_server_stop(srv, "the server is shutting down", 3000);
	cluster_free(cluster); /* after the stop: the core calls its hooks until then */
	rd_server_free(srv);
	files_free(files);
	state_close(app.state);
	for (size_t i = 0; i < o.nrooms; i++)
		free(o.rooms[i]);
	free(o.rooms);
	free(o.operators);
	for (size_t i = 0; i < o.nrules; i++)
		free(o.rules[i].allow);
	free(o.rules);
	conf_free(o.conf);
	if (code == SRV_OK && srv)
		log_line("info", "stopped");
	return code;
}
