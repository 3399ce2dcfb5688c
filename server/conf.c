/* conf.c - the server's configuration file, read by inih (see conf.h).
 *
 * inih reports the line of the first syntax error but calls the handler without a line
 * number, so the file is fed to it through a reader that counts lines: when the handler
 * runs, ctx.line is the line it was called for. The first error wins; later lines are
 * still read by inih but no longer looked at.
 */
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "rd_err.h"
#include "rd_names.h"

/* inih's line buffer (Debian builds it with the default INI_MAX_LINE, 200) */
#define CONF_LINE_MAX 200

struct ctx {
	FILE *fp;
	const struct option *options;
	struct conf *c;
	int line;     /* lines read so far: the one inih works on */
	int err_line; /* first error: its line (0 = none) and why */
	char *why;
	size_t cap;
	int nomem;
};

static void fail(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct ctx *x, const char *fmt, ...)
{
	va_list ap;

	if (x->err_line)
		return;
	x->err_line = x->line > 0 ? x->line : 1;
	va_start(ap, fmt);
	vsnprintf(x->why, x->cap, fmt, ap);
	va_end(ap);
}

static char *reader(char *str, int num, void *stream)
{
	struct ctx *x = stream;
	size_t n;
	int ch;

	if (!fgets(str, num, x->fp))
		return NULL;
	x->line++;
	n = strlen(str);
	if (n > 0 && str[n - 1] != '\n' && !feof(x->fp)) {
		fail(x, "the line is longer than %d characters", CONF_LINE_MAX - 2);
		while ((ch = fgetc(x->fp)) != EOF && ch != '\n')
			;
		str[0] = '\0'; /* an empty line to inih: the error is ours */
	}
	return str;
}

static const struct option *find_option(const struct option *o, const char *name)
{
	for (; o->name; o++)
		if (!strcmp(o->name, name))
			return o;
	return NULL;
}

static int parse_flag(const char *v)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcasecmp(v, "on") ||
	    !strcmp(v, "1"))
		return 1;
	if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcasecmp(v, "off") ||
	    !strcmp(v, "0"))
		return 0;
	return -1;
}

static int server_key(struct ctx *x, const char *name, const char *value)
{
	const struct option *o;
	struct conf_opt *v;
	int flag = -1;

	if (!strcmp(name, "config") || !strcmp(name, "help") || !strcmp(name, "version")) {
		fail(x, "'%s' is for the command line only", name);
		return 0;
	}
	if (!(o = find_option(x->options, name))) {
		fail(x,
		     "unknown setting '%s' in [server] (the long options of "
		     "roomdrop-server --help, without the dashes)",
		     name);
		return 0;
	}
	if (o->has_arg == no_argument && (flag = parse_flag(value)) < 0) {
		fail(x, "'%s' is yes or no, not '%s'", name, value);
		return 0;
	}
	if (o->has_arg != no_argument && !value[0]) {
		fail(x, "'%s' needs a value", name);
		return 0;
	}
	v = realloc(x->c->opts, (x->c->nopts + 1) * sizeof(*v));
	if (!v)
		goto nomem;
	x->c->opts = v;
	v += x->c->nopts;
	v->line = x->line;
	v->name = strdup(name);
	v->value = strdup(flag < 0 ? value : flag ? "1" : "0");
	x->c->nopts++;
	if (!v->name || !v->value)
		goto nomem;
	return 1;
nomem:
	x->nomem = 1;
	return 0;
}

static struct conf_room *room_section(struct ctx *x, const char *name)
{
	struct conf_room *r;

	for (size_t i = 0; i < x->c->nrooms; i++)
		if (rd_name_eq(x->c->rooms[i].name, name))
			return &x->c->rooms[i];
	if (rd_room_check(name, strlen(name)) != 0) {
		fail(x,
		     "invalid room name '%s' in [room %s]: use 1-32 letters, digits, '_', "
		     "'.', '-'",
		     name, name);
		return NULL;
	}
	r = realloc(x->c->rooms, (x->c->nrooms + 1) * sizeof(*r));
	if (!r) {
		x->nomem = 1;
		return NULL;
	}
	x->c->rooms = r;
	r += x->c->nrooms++;
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->line = x->line;
	return r;
}

static int add_fp(struct ctx *x, uint8_t (**list)[RD_TLS_FP_LEN], size_t *n, const char *name,
		  const char *value)
{
	uint8_t fp[RD_TLS_FP_LEN];
	uint8_t(*v)[RD_TLS_FP_LEN];

	if (rd_tls_fp_parse(value, fp) != 0) {
		fail(x,
		     "'%s' wants a key fingerprint (as `roomdrop-server ctl list` shows "
		     "it), not '%s'",
		     name, value);
		return 0;
	}
	for (size_t i = 0; i < *n; i++)
		if (!memcmp((*list)[i], fp, RD_TLS_FP_LEN))
			return 1;
	if (!(v = realloc(*list, (*n + 1) * sizeof(*v)))) {
		x->nomem = 1;
		return 0;
	}
	*list = v;
	memcpy(v[(*n)++], fp, RD_TLS_FP_LEN);
	return 1;
}

static int room_key(struct ctx *x, const char *room, const char *name, const char *value)
{
	struct conf_room *r = room_section(x, room);

	if (!r)
		return 0;
	if (!strcmp(name, "operator"))
		return add_fp(x, &r->operators, &r->noperators, name, value);
	if (!strcmp(name, "allow"))
		return add_fp(x, &r->allow, &r->nallow, name, value);
	if (!strcmp(name, "key-file")) {
		if (!value[0]) {
			fail(x, "'key-file' needs a file name");
			return 0;
		}
		if (r->key_file) {
			fail(x, "room '%s' has a key-file already (line %d)", r->name, r->key_line);
			return 0;
		}
		if (!(r->key_file = strdup(value))) {
			x->nomem = 1;
			return 0;
		}
		r->key_line = x->line;
		return 1;
	}
	fail(x, "unknown setting '%s' in [room %s] (operator, allow or key-file)", name, room);
	return 0;
}

/* [operators] ROOM = KEY, KEY...: the same as [room ROOM] operator = KEY for each. */
static int operators_key(struct ctx *x, const char *room, const char *value)
{
	struct conf_room *r = room_section(x, room);
	char *copy, *save = NULL;
	int ok = 1;

	if (!r)
		return 0;
	if (!(copy = strdup(value))) {
		x->nomem = 1;
		return 0;
	}
	for (char *t = strtok_r(copy, ",", &save); t && ok; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ' || *t == '\t')
			t++;
		ok = add_fp(x, &r->operators, &r->noperators, "operators", t);
	}
	free(copy);
	return ok;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct ctx *x = user;

	if (x->err_line || x->nomem)
		return 1; /* the first error is the one reported */
	if (!strcmp(section, "server"))
		return server_key(x, name, value);
	if (!strcmp(section, "operators"))
		return operators_key(x, name, value);
	if (!strncmp(section, "room", 4) && (section[4] == ' ' || section[4] == '\t')) {
		const char *room = section + 5;
		while (*room == ' ' || *room == '\t')
			room++;
		return room_key(x, room, name, value);
	}
	if (!section[0])
		fail(x, "'%s' comes before any section: start with [server] or [room NAME]", name);
	else
		fail(x, "unknown section [%s]: [server], [operators] or [room NAME]", section);
	return 0;
}

int conf_load(const char *path, const struct option *options, struct conf **out, int *line,
	      char *why, size_t cap)
{
	struct ctx x = { 0 };
	int rc, r;

	*out = NULL;
	*line = 0;
	if (cap)
		why[0] = '\0';
	x.options = options;
	x.why = why;
	x.cap = cap;
	if (!(x.c = calloc(1, sizeof(*x.c))))
		return RD_ERR_NOMEM;
	if (!(x.fp = fopen(path, "r"))) {
		rc = RD_ERR_SYSTEM;
		goto out;
	}
	r = ini_parse_stream(reader, &x, handler, &x);
	if (ferror(x.fp)) {
		errno = EIO;
		rc = RD_ERR_SYSTEM;
		goto out;
	}
	if (x.nomem || r == -2) {
		rc = RD_ERR_NOMEM;
		goto out;
	}
	if (r > 0 && (!x.err_line || r < x.err_line)) {
		/* a line inih could not read: neither "[section]" nor "name = value" */
		x.err_line = r;
		snprintf(why, cap, "expected [section], name = value or a # comment");
	}
	if (x.err_line) {
		*line = x.err_line;
		rc = RD_ERR_INVAL;
		goto out;
	}
	*out = x.c;
	x.c = NULL;
	rc = 0;
out:
	if (x.fp)
		fclose(x.fp);
	conf_free(x.c);
	return rc;
}

const struct conf_room *conf_room_find(const struct conf *c, const char *name)
{
	for (size_t i = 0; c && i < c->nrooms; i++)
		if (rd_name_eq(c->rooms[i].name, name))
			return &c->rooms[i];
	return NULL;
}

void conf_free(struct conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nopts; i++) {
		free(c->opts[i].name);
		free(c->opts[i].value);
	}
	for (size_t i = 0; i < c->nrooms; i++) {
		free(c->rooms[i].operators);
		free(c->rooms[i].allow);
		free(c->rooms[i].key_file);
	}
	free(c->opts);
	free(c->rooms);
	free(c);
}
