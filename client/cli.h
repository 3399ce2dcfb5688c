/* cli.h - what the pieces of the command-line client share: exit codes and options.
 * Exit codes are documented in README.md ("Exit codes") and `roomdrop --help`. */
#ifndef ROOMDROP_CLI_H
#define ROOMDROP_CLI_H

#include <stdint.h>

#include "rd_client.h"

enum cli_exit {
	CLI_OK = 0,
	CLI_EFAIL = 1,      /* the server refused the request (other than below) */
	CLI_EUSAGE = 2,     /* bad command line or input: address, port, malformed nickname */
	CLI_ECONNECT = 3,   /* could not connect (refused, timeout, unknown host) */
	CLI_ENICK = 4,      /* nickname refused (taken, reserved, refused by the server) */
	CLI_ENOTFOUND = 5,  /* unknown room, user, or file (local or remote) */
	CLI_ECONFLICT = 6,  /* file exists (remote without --overwrite/--rename, or local) */
	CLI_EVERIFY = 7,    /* hash or size verification failed */
	CLI_ELOST = 8,      /* connection lost, server shut down, shell not reconnected */
	CLI_EKICKED = 9,    /* kicked by the administrator */
	CLI_ELIMIT = 10,    /* file too big, quota, server out of space, server full */
	CLI_EREJECTED = 11, /* offer: nobody accepted (rejected, expired, cancelled) */
	CLI_ELOCAL = 12,    /* local I/O error (cannot read or write a local file) */
	CLI_ESTORE = 13,    /* the server's store failed (read-only, permission or I/O error) */
	CLI_EKEY = 14,      /* the server's key is not the recorded or pinned one */
	CLI_ENODIRECT = 15, /* offer --p2p only: no direct link to the recipient */
	CLI_EPERM = 16,     /* not allowed: the file belongs to another key */
	CLI_EADMIT = 17,    /* not admitted: password, key or invitation refused */
	CLI_EDEGRADED = 18  /* the cluster is degraded (Redis away): try again in a moment */
};

struct cli_opts {
	const char *host;      /* --host / ROOMDROP_HOST, default RD_DEFAULT_HOST */
	uint16_t port;         /* --port / ROOMDROP_PORT, default RD_DEFAULT_PORT */
	const char *nick;      /* --nick / ROOMDROP_NICK, default $USER (made valid) */
	const char *room;      /* --room / ROOMDROP_ROOM, default "general" */
	int quiet;             /* --quiet: no progress bars or chatter, errors and one summary */
	int no_compress;       /* --no-compress: put sends every chunk raw */
	int overwrite;         /* --overwrite */
	int rename;            /* --rename */
	const char *outdir;    /* -o DIR for get, default "." */
	int timeout_ms;        /* --timeout SECONDS, default 10 s per request */
	int reconnect_s;       /* --reconnect SECONDS: how long the shell tries to reconnect
				(default 60, 0 = never) */
	int plain;             /* --plain: no TLS (a server run with --tls off) */
	const char *server_fp; /* --server-fp FP: pin the server's key */
	const char *ca_file;   /* --ca FILE: verify the server's certificate by this CA */
	/* admission (PROTOCOL.md section 7): AUTH before NICK when secret_kind is set */
	const char *password_file;     /* --password-file FILE (its first line) */
	uint8_t secret_kind;           /* RD_AUTH_PASSWORD / RD_AUTH_INVITE, 0 = none */
	uint8_t secret[RD_SECRET_MAX]; /* read from password_file, or join-invite's link */
	size_t secret_len;
	int no_register; /* join-invite: connect and AUTH only */
	/* --room-key-file FILE: the key of a restricted --room (its first line), JOIN_KEY */
	const char *room_key_file;
	uint8_t room_key[RD_SECRET_MAX];
	size_t room_key_len;
	/* offers */
	int everyone;            /* offer --everyone: to every other member of the room */
	int accept_all;          /* listen --accept-all */
	int reject_all;          /* listen --reject-all */
	const char *accept_from; /* listen --accept-from NICK */
	const char *into;        /* listen --into DIR: where accepted files go */
	const char *take;        /* listen --take PATTERN: only the files that match */
	int p2p;                 /* offer / listen --p2p: enum cli_p2p */
};

/* --p2p: how the bytes of a file offer to one user travel. */
enum cli_p2p {
	CLI_P2P_AUTO = 0, /* directly when a verified link is made within ~2 s, else relayed */
	CLI_P2P_NEVER,    /* always through the server (no listening, no dialling) */
	CLI_P2P_ONLY      /* offer: directly or not at all (exit CLI_ENODIRECT) */
};

/* Map a library error / wire error to an exit code (client/main.c). */
int cli_exit_for(int rc, uint16_t werr);

#endif
