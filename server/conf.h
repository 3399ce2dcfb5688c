/* conf.h - the server's configuration file (roomdrop-server --config FILE).
 *
 * An INI file read by inih (libinih, Debian's libinih-dev): '#' or ';' starts a comment
 * line, sections are [server] and [room NAME]. [server] takes the long options of the
 * command line by name, without the dashes ("max-clients = 50"; a flag such as
 * "headless" takes yes/no). [room NAME] takes "operator = FINGERPRINT" and
 * "allow = FINGERPRINT" (one key per line, repeat the line for more) and
 * "key-file = PATH" (the room key, its first line). [operators] takes "ROOM = KEY, KEY..."
 * (the same as operator lines in [room ROOM]). README.md, "Configuration file",
 * is the user's description; this module only reads and checks the file's shape: the
 * values of [server] are checked by the program, which knows what they mean.
 */
#ifndef RD_SERVER_CONF_H
#define RD_SERVER_CONF_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include "rd_msg.h"
#include "rd_tls.h"

struct conf_opt {
	char *name;  /* a long option's name, without "--" */
	char *value; /* as written; a flag's is "1" or "0" */
	int line;
};

struct conf_room {
	char name[RD_ROOM_BUF];
	int line; /* of its first setting (inih does not report headings) */
	uint8_t (*operators)[RD_TLS_FP_LEN];
	size_t noperators;
	uint8_t (*allow)[RD_TLS_FP_LEN];
	size_t nallow;
	char *key_file; /* NULL if none */
	int key_line;
};

struct conf {
	struct conf_opt *opts; /* [server], in file order */
	size_t nopts;
	struct conf_room *rooms; /* [room NAME] sections, in file order */
	size_t nrooms;
};

/* Read path. options: the program's long options (getopt_long's table, ended by a NULL
 * name); a [server] key must be one of them, except "config", "help" and "version".
 * Returns 0 and *out (conf_free it), or on a bad file RD_ERR_INVAL with *line (1-based)
 * and why (a sentence, no file name) filled; RD_ERR_SYSTEM (errno: the file cannot be
 * read; *line 0), RD_ERR_NOMEM. */
int conf_load(const char *path, const struct option *options, struct conf **out, int *line,
	      char *why, size_t cap);

/* The room section named name (ignoring ASCII case), or NULL. */
const struct conf_room *conf_room_find(const struct conf *c, const char *name);

void conf_free(struct conf *c);

#endif
