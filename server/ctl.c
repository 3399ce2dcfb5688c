/* ctl.c - the Unix control socket: server thread and `roomdrop-server ctl` command.
 *
 * Thread "rd-ctl" (owned by struct ctl_server, joined by ctl_server_stop) accepts one local
 * connection at a time and answers its frames; it only calls the non-blocking rd_server_*
 * administration functions, so a slow ctl client can delay nobody but other ctl clients.
 * struct ctl_server is written before the thread starts and only read after.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "ctl.h"
#include "rd_display.h"
#include "rd_err.h"
#include "rd_frame.h"
#include "rd_hash.h"
#include "rd_msg.h"
#include "rd_names.h"
#include "rd_net.h"
#include "rd_tls.h"
#include "state.h"

_Static_assert(RD_FP_TEXT_BUF == RD_TLS_FP_TEXT_LEN, "a fingerprint's text fits the codec");

#define CTL_TIMEOUT_MS 5000

enum ctl_exit {
	CTL_OK = 0,
	CTL_EFAIL = 1,
	CTL_EUSAGE = 2,
	CTL_ECONNECT = 3,
	CTL_ENOTFOUND = 5
};

struct ctl_server {
	struct rd_server *srv;
	struct state *state;     /* owners, operators, admitted keys, invitations; or NULL */
	int open_nicks;          /* --open-nicks: CTL_RELEASE and CTL_OP mean nothing */
	struct cluster *cluster; /* NULL when alone */
	int fd;
	int stop_pipe[2];
	pthread_t th;
	char path[108];
	char listen[RD_LISTEN_BUF];
	uint64_t started_mono_ms;
};

void ctl_default_path(uint16_t port, char *out, size_t cap)
{
	const char *dir = getenv("XDG_RUNTIME_DIR");
	if (dir && dir[0])
		snprintf(out, cap, "%s/roomdrop-%u.sock", dir, port);
	else
		snprintf(out, cap, "/tmp/roomdrop-%u-%u.sock", (unsigned)getuid(), port);
}

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return RD_ERR_INVAL;
	strcpy(sa->sun_path, path);
	return 0;
}

static int unix_connect(const char *path, int *out)
{
	struct sockaddr_un sa;
	int fd;
	*out = -1;
	if (unix_addr(path, &sa) != 0)
		return RD_ERR_INVAL;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return RD_ERR_SYSTEM;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return e == ECONNREFUSED ? RD_ERR_REFUSED : RD_ERR_SYSTEM;
	}
	*out = fd;
	return 0;
}

/* ---- server side ---------------------------------------------------------------------- */

static int peer_allowed(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return 0;
	return cr.uid == getuid() || cr.uid == 0;
}

static void reply_error(int fd, uint32_t req, uint16_t for_type, uint16_t code, const char *text)
{
	struct rd_msg m;
	struct rd_buf b;
	rd_buf_init(&b, 0);
	rd_msg_init(&m, RD_MSG_ERROR);
	m.u.error.code = code;
	m.u.error.for_type = for_type;
	m.u.error.text = rd_str_c(text);
	if (rd_msg_frame(&b, &m, req, 0) == 0)
		rd_net_write_all(fd, b.data, b.len, CTL_TIMEOUT_MS);
	rd_buf_free(&b);
}

static void reply_msg(int fd, const struct rd_msg *m, uint32_t req)
{
	struct rd_buf b;
	rd_buf_init(&b, 0);
	if (rd_msg_frame(&b, m, req, RD_FRAME_COMPRESS) == 0)
		rd_net_write_all(fd, b.data, b.len, CTL_TIMEOUT_MS);
	rd_buf_free(&b);
}

static void serve_list(struct ctl_server *cs, int fd, uint32_t req)
{
	struct rd_client_info *v = NULL;
	struct rd_ctl_client *items = NULL, *more = NULL, *all;
	size_t n = 0, k = 0;
	struct rd_msg m;

	if (rd_server_clients(cs->srv, &v, &n) != 0 ||
	    !(items = calloc(n ? n : 1, sizeof(*items)))) {
		reply_error(fd, req, RD_MSG_CTL_LIST, RD_E_INTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		items[i].id = v[i].id;
		memcpy(items[i].ip, v[i].ip, sizeof(items[i].ip));
		items[i].port = v[i].port;
		memcpy(items[i].nick, v[i].nick, sizeof(items[i].nick));
		memcpy(items[i].room, v[i].room, sizeof(items[i].room));
		items[i].connected_ms = v[i].connected_ms;
		items[i].last_msg_ms = v[i].last_msg_ms;
		items[i].bytes_in = v[i].bytes_in;
		items[i].bytes_out = v[i].bytes_out;
		memcpy(items[i].activity, v[i].activity, sizeof(items[i].activity));
		memcpy(items[i].fingerprint, v[i].fingerprint, sizeof(items[i].fingerprint));
	}
	/* then the clients of the other servers of the cluster (none when Redis is away) */
	if (cs->cluster && cluster_clients(cs->cluster, &more, &k) == 0 && k > 0 &&
	    (all = realloc(items, (n + k) * sizeof(*all))) != NULL) {
		memcpy(all + n, more, k * sizeof(*all));
		items = all;
		n += k;
	}
	free(more);
	rd_msg_init(&m, RD_MSG_CTL_CLIENTS);
	m.u.ctl_clients.count = (uint32_t)n;
	m.u.ctl_clients.items = items;
	reply_msg(fd, &m, req);
out:
	free(items);
	free(v);
}

static void serve_info(struct ctl_server *cs, int fd, uint32_t req)
{
	struct rd_msg_ctl_server_info *i;
	struct rd_server_stats st;
	uint8_t fp[RD_TLS_FP_LEN];
	struct rd_msg m;

	rd_msg_init(&m, RD_MSG_CTL_SERVER_INFO);
	i = &m.u.ctl_server_info;
	snprintf(i->software, sizeof(i->software), "%s", CTL_SOFTWARE);
	memcpy(i->listen, cs->listen, sizeof(i->listen));
	if (rd_server_fingerprint(cs->srv, fp) == 0) {
		i->tls = 1;
		rd_tls_fp_format(fp, i->fingerprint);
	}
	rd_server_stats(cs->srv, &st);
	i->clients = st.clients;
	i->registered = st.registered;
	i->rooms = st.rooms;
	i->uptime_ms = rd_now_mono_ms() - cs->started_mono_ms;
	i->offers = st.offers;
	i->relay_peak = st.relay_peak;
	reply_msg(fd, &m, req);
}

/* CTL_OP: the room must exist and a key must own the nickname. */
static void serve_op(struct ctl_server *cs, int fd, uint32_t req, const struct rd_msg_ctl_op *op)
{
	struct rd_room_entry *rooms = NULL;
	uint8_t fp[RD_TLS_FP_LEN];
	struct rd_msg ok;
	size_t n = 0;
	int found = 0, rc;

	if (rd_server_rooms(cs->srv, &rooms, &n) == 0)
		for (size_t i = 0; i < n && !found; i++)
			found = rd_name_eq(rooms[i].name, op->room);
	free(rooms);
	if (!found) {
		reply_error(fd, req, RD_MSG_CTL_OP, RD_E_NO_SUCH_ROOM, "no such room");
		return;
	}
	rc = state_nick_owner(cs->state, op->nick, rd_now_wall_ms(), fp);
	if (rc == RD_ERR_NOT_FOUND) {
		reply_error(fd, req, RD_MSG_CTL_OP, RD_E_NO_SUCH_USER,
			    "no key owns that nickname (its owner must register with it once)");
		return;
	}
	if (rc == 0)
		rc = state_op_set(cs->state, op->room, fp, op->grant, rd_now_wall_ms());
	if (rc == RD_ERR_NOT_FOUND) {
		reply_error(fd, req, RD_MSG_CTL_OP, RD_E_NO_SUCH_USER,
			    "that nickname's key is not an operator of that room");
		return;
	}
	if (rc != 0 && rc != RD_ERR_EXISTS) {
		reply_error(fd, req, RD_MSG_CTL_OP, RD_E_INTERNAL, "the state database failed");
		return;
	}
	rd_msg_init(&ok, RD_MSG_OK);
	ok.u.ok.for_type = RD_MSG_CTL_OP;
	reply_msg(fd, &ok, req);
}

static void serve_frame(struct ctl_server *cs, int fd, const struct rd_frame *f)
{
	struct rd_msg m;
	struct rd_msg ok;
	uint32_t req = f->hdr.req_id;
	int rc;

	if ((f->hdr.type == RD_MSG_CTL_RELEASE || f->hdr.type == RD_MSG_CTL_OP) &&
	    (cs->state == NULL || cs->open_nicks)) {
		reply_error(fd, req, f->hdr.type, RD_E_UNKNOWN_TYPE,
			    "this server runs with --open-nicks: nicknames have no owners");
		return;
	}
	if ((f->hdr.type == RD_MSG_CTL_ADMIT || f->hdr.type == RD_MSG_CTL_INVITE ||
	     f->hdr.type == RD_MSG_CTL_UNINVITE) &&
	    cs->state == NULL) {
		reply_error(fd, req, f->hdr.type, RD_E_UNKNOWN_TYPE,
			    "this server keeps no admitted keys (run it with --admission allowlist "
			    "or invite)");
		return;
	}
	if (f->hdr.type != RD_MSG_CTL_LIST && f->hdr.type != RD_MSG_CTL_INFO &&
	    f->hdr.type != RD_MSG_CTL_KICK && f->hdr.type != RD_MSG_CTL_BROADCAST &&
	    f->hdr.type != RD_MSG_CTL_RELEASE && f->hdr.type != RD_MSG_CTL_OP &&
	    f->hdr.type != RD_MSG_CTL_ADMIT && f->hdr.type != RD_MSG_CTL_INVITE &&
	    f->hdr.type != RD_MSG_CTL_UNINVITE) {
		reply_error(fd, req, f->hdr.type, RD_E_UNKNOWN_TYPE,
			    "the control socket takes CTL_LIST, CTL_INFO, CTL_KICK, CTL_BROADCAST, "
			    "CTL_RELEASE, CTL_OP, CTL_ADMIT, CTL_INVITE, CTL_UNINVITE");
		return;
	}
	if ((rc = rd_msg_decode(f->hdr.type, f->payload, f->len, &m)) != 0) {
		reply_error(fd, req, f->hdr.type, RD_E_MALFORMED, rd_strerror(rc));
		return;
	}
	rd_msg_init(&ok, RD_MSG_OK);
	ok.u.ok.for_type = f->hdr.type;
	switch (f->hdr.type) {
	case RD_MSG_CTL_LIST:
		serve_list(cs, fd, req);
		break;
	case RD_MSG_CTL_INFO:
		serve_info(cs, fd, req);
		break;
	case RD_MSG_CTL_KICK: {
		char reason[RD_REASON_MAX + 1];
		size_t n = m.u.ctl_kick.reason.n > RD_REASON_MAX ? RD_REASON_MAX :
								   m.u.ctl_kick.reason.n;
		memcpy(reason, m.u.ctl_kick.reason.p ? m.u.ctl_kick.reason.p : "", n);
		reason[n] = '\0';
		rc = rd_server_kick(cs->srv, m.u.ctl_kick.nick, reason);
		if (rc == RD_ERR_NOT_FOUND)
			reply_error(fd, req, f->hdr.type, RD_E_NO_SUCH_USER,
				    "no such user is connected");
		else if (rc)
			reply_error(fd, req, f->hdr.type, RD_E_INTERNAL, rd_strerror(rc));
		else
			reply_msg(fd, &ok, req);
		break;
	}
	case RD_MSG_CTL_RELEASE:
		rc = state_nick_release(cs->state, m.u.ctl_release.nick);
		if (rc == RD_ERR_NOT_FOUND)
			reply_error(fd, req, f->hdr.type, RD_E_NO_SUCH_USER,
				    "no key owns that nickname");
		else if (rc)
			reply_error(fd, req, f->hdr.type, RD_E_INTERNAL,
				    "the state database failed");
		else
			reply_msg(fd, &ok, req);
		break;
	case RD_MSG_CTL_OP:
		serve_op(cs, fd, req, &m.u.ctl_op);
		break;
	case RD_MSG_CTL_ADMIT:
		rc = state_key_set(cs->state, m.u.ctl_admit.fp, m.u.ctl_admit.grant,
				   rd_now_wall_ms());
		if (rc == RD_ERR_NOT_FOUND)
			reply_error(fd, req, f->hdr.type, RD_E_NO_SUCH_USER,
				    "that key is not admitted");
		else if (rc != 0 && rc != RD_ERR_EXISTS)
			reply_error(fd, req, f->hdr.type, RD_E_INTERNAL,
				    "the state database failed");
		else
			reply_msg(fd, &ok, req);
		break;
	case RD_MSG_CTL_INVITE: {
		struct rd_msg inv;
		uint64_t now = rd_now_wall_ms();
		uint64_t valid = m.u.ctl_invite.valid_ms ? m.u.ctl_invite.valid_ms : 86400000u;

		rd_msg_init(&inv, RD_MSG_CTL_INVITATION);
		inv.u.ctl_invitation.expires_ms = now + valid;
		rc = state_invite_new(cs->state, m.u.ctl_invite.uses, now + valid, now,
				      inv.u.ctl_invitation.secret, inv.u.ctl_invitation.id);
		if (rc != 0)
			reply_error(fd, req, f->hdr.type, RD_E_INTERNAL,
				    "no invitation could be made (random bytes or database)");
		else
			reply_msg(fd, &inv, req);
		explicit_bzero(&inv, sizeof(inv));
		break;
	}
	case RD_MSG_CTL_UNINVITE:
		rc = state_invite_revoke(cs->state, m.u.ctl_uninvite.id);
		if (rc == RD_ERR_NOT_FOUND)
			reply_error(fd, req, f->hdr.type, RD_E_NO_SUCH_USER, "no such invitation");
		else if (rc != 0)
			reply_error(fd, req, f->hdr.type, RD_E_INTERNAL,
				    "the state database failed");
		else
			reply_msg(fd, &ok, req);
		break;
	case RD_MSG_CTL_BROADCAST: {
		const struct rd_msg_ctl_broadcast *b = &m.u.ctl_broadcast;
		char *text = strndup(b->text.p ? b->text.p : "", b->text.n);
		unsigned delivered = 0;
		if (!text) {
			reply_error(fd, req, f->hdr.type, RD_E_INTERNAL, "out of memory");
			break;
		}
		rc = rd_server_broadcast(cs->srv, b->scope, b->target, text, &delivered);
		free(text);
		if (rc == RD_ERR_NOT_FOUND)
			reply_error(fd, req, f->hdr.type,
				    b->scope == RD_SCOPE_ROOM ? RD_E_NO_SUCH_ROOM :
								RD_E_NO_SUCH_USER,
				    b->scope == RD_SCOPE_ROOM ? "no such room" :
								"no such user is connected");
		else if (rc)
			reply_error(fd, req, f->hdr.type, RD_E_MALFORMED, rd_strerror(rc));
		else
			reply_msg(fd, &ok, req);
		break;
	}
	}
	rd_msg_clear(&m);
}

static void serve_conn(struct ctl_server *cs, int fd)
{
	struct rd_frame_reader *r = NULL;
	if (!peer_allowed(fd) || rd_frame_reader_new(RD_MAX_PAYLOAD_DEFAULT, &r) != 0)
		goto out;
	for (;;) {
		struct rd_frame f;
		if (rd_frame_recv(fd, r, CTL_TIMEOUT_MS, &f) != 0)
			break;
		serve_frame(cs, fd, &f);
	}
out:
	rd_frame_reader_free(r);
	close(fd);
}

static void *ctl_main_thread(void *arg)
{
	struct ctl_server *cs = arg;
	pthread_setname_np(pthread_self(), "rd-ctl");
	for (;;) {
		struct pollfd p[2] = { { .fd = cs->fd, .events = POLLIN },
				       { .fd = cs->stop_pipe[0], .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (p[0].revents & POLLIN) {
			int fd = accept4(cs->fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				serve_conn(cs, fd);
		}
	}
	return NULL;
}

int ctl_server_start(struct rd_server *s, struct cluster *cl, struct state *st, int open_nicks,
		     const char *path, const char *listen_text, uint64_t started_mono_ms,
		     struct ctl_server **out)
{
	struct ctl_server *cs;
	struct sockaddr_un sa;
	int probe;

	*out = NULL;
	if (unix_addr(path, &sa) != 0)
		return RD_ERR_INVAL;
	if (unix_connect(path, &probe) == 0) { /* a live server owns it */
		close(probe);
		return RD_ERR_ADDR_IN_USE;
	}
	unlink(path); /* stale socket from a server that died */
	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return RD_ERR_NOMEM;
	cs->srv = s;
	cs->state = st;
	cs->open_nicks = open_nicks;
	cs->cluster = cl;
	snprintf(cs->path, sizeof(cs->path), "%s", path);
	snprintf(cs->listen, sizeof(cs->listen), "%s", listen_text);
	cs->started_mono_ms = started_mono_ms;
	cs->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cs->fd < 0 || pipe2(cs->stop_pipe, O_CLOEXEC) < 0)
		goto fail;
	if (bind(cs->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	/* peers are also checked with SO_PEERCRED, so the moment before chmod is harmless */
	if (chmod(path, 0600) < 0 || listen(cs->fd, 8) < 0)
		goto fail;
	if (pthread_create(&cs->th, NULL, ctl_main_thread, cs) != 0)
		goto fail;
	*out = cs;
	return 0;
fail : {
	int e = errno;
	if (cs->fd >= 0)
		close(cs->fd);
	unlink(path);
	free(cs);
	errno = e;
	return RD_ERR_SYSTEM;
}
}

void ctl_server_stop(struct ctl_server *cs)
{
	char c = 'x';
	if (!cs)
		return;
	if (write(cs->stop_pipe[1], &c, 1) < 0) {
		/* nothing more we can do: the join below would hang; leak the thread */
		return;
	}
	pthread_join(cs->th, NULL);
	close(cs->fd);
	close(cs->stop_pipe[0]);
	close(cs->stop_pipe[1]);
	unlink(cs->path);
	free(cs);
}

/* ---- the ctl command ------------------------------------------------------------------ */

static void ctl_usage(FILE *to)
{
	fprintf(to,
		"Usage: roomdrop-server ctl [--socket PATH | --port PORT] COMMAND\n"
		"\n"
		"Administer a running roomdrop-server through its control socket (mode 0600,\n"
		"only the server's user may use it).\n"
		"\n"
		"Commands:\n"
		"  list                              each connection: address, port, nickname,\n"
		"                                    room, connected since, last message, bytes\n"
		"                                    received and sent on it, activity,\n"
		"                                    and under it the fingerprint of its client's\n"
		"                                    key (KEY; - for none: plaintext or no certificate)\n"
		"  info                              the server: software, listen address, TLS,\n"
		"                                    its key's fingerprint, connections, registered\n"
		"                                    clients, rooms, uptime\n"
		"  kick NICK [--reason TEXT]         disconnect NICK; everyone hears it was kicked\n"
		"  broadcast [--room ROOM | --to NICK] TEXT\n"
		"                                    message from the server to everyone, a room\n"
		"                                    or one user\n"
		"  release NICK                      free a nickname a client key owns: the next\n"
		"                                    key to register it owns it\n"
		"  op ROOM NICK                      make the key that owns NICK an operator of\n"
		"                                    ROOM: it may replace and delete anyone's files\n"
		"                                    there\n"
		"  deop ROOM NICK                    no longer\n"
		"  admit KEY / revoke KEY            admit a client key (its fingerprint, as its\n"
		"                                    refusal shows it), or no longer: for servers\n"
		"                                    run with --admission allowlist or invite\n"
		"  invite [--uses N] [--valid T] [--host HOST]\n"
		"                                    print an invitation link (N admissions, 1 by\n"
		"                                    default, within T: 24h; HOST: the address the\n"
		"                                    invited reach the server on); they use it with\n"
		"                                    `roomdrop join-invite LINK`\n"
		"  uninvite ID                       revoke an invitation\n"
		"\n"
		"Options:\n"
		"  --socket PATH   the control socket (default: from --port, see below)\n"
		"  --port PORT     the server's TCP port, to find its default socket\n"
		"                  ($XDG_RUNTIME_DIR/roomdrop-PORT.sock or\n"
		"                  /tmp/roomdrop-UID-PORT.sock; default port %u)\n"
		"  -h, --help      this text\n"
		"\n"
		"Exit codes: 0 done, 1 the server refused, 2 usage, 3 cannot reach the server,\n"
		"5 no such user or room.\n",
		RD_DEFAULT_PORT);
}

static void fmt_time(uint64_t ms, char *out, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (!ms) {
		snprintf(out, cap, "-");
		return;
	}
	localtime_r(&t, &tm);
	strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

/* `ctl list`: a table of one line per connection, and under each the fingerprint of its
 * client's key in a KEY column that starts under NICK. A full fingerprint is 64 characters:
 * as a last column it would push every line past 180 columns and wrap in a terminal; on its
 * own line it stays whole (an administrator compares it with what the client shows) and the
 * table stays readable at 100 columns. */
static void print_clients(const struct rd_msg_ctl_clients *l)
{
	printf("%-15s %5s  %-16s %-12s %-19s  %-19s  %11s %11s  %s\n", "ADDRESS", "PORT", "NICK",
	       "ROOM", "CONNECTED", "LAST MESSAGE", "BYTES IN", "BYTES OUT", "ACTIVITY");
	printf("%23s%s\n", "", "KEY");
	for (uint32_t i = 0; i < l->count; i++) {
		const struct rd_ctl_client *e = &l->items[i];
		char since[32], last[32], nick[80], act[200], key[80];
		fmt_time(e->connected_ms, since, sizeof(since));
		fmt_time(e->last_msg_ms, last, sizeof(last));
		rd_escape_display(e->nick, strlen(e->nick), nick, sizeof(nick));
		rd_escape_display(e->activity, strlen(e->activity), act, sizeof(act));
		rd_escape_display(e->fingerprint, strlen(e->fingerprint), key, sizeof(key));
		if (e->server[0]) {
			/* a client of another server of the cluster: where it is, not how */
			char where[300];
			rd_escape_display(e->server, strlen(e->server), where, sizeof(where));
			printf("%-15s %5s  %-16s %-12s %-19s  %-19s  %11s %11s  on server %s\n",
			       "-", "-", nick, e->room[0] ? e->room : "-", since, "-", "-", "-",
			       where);
			printf("%23s%s\n", "", "-");
			continue;
		}
		printf("%-15s %5u  %-16s %-12s %-19s  %-19s  %11" PRIu64 " %11" PRIu64 "  %s\n",
		       e->ip, e->port, nick[0] ? nick : "(unregistered)",
		       e->room[0] ? e->room : "-", since, last, e->bytes_in, e->bytes_out,
		       act[0] ? act : "-");
		printf("%23s%s\n", "", key[0] ? key : "-");
	}
}

/* `ctl info`: one "name: value" line each, for people and for grep. */
static void print_info(const struct rd_msg_ctl_server_info *i)
{
	char sw[200], where[800], fp[80];
	uint64_t s = i->uptime_ms / 1000;
	rd_escape_display(i->software, strlen(i->software), sw, sizeof(sw));
	rd_escape_display(i->listen, strlen(i->listen), where, sizeof(where));
	rd_escape_display(i->fingerprint, strlen(i->fingerprint), fp, sizeof(fp));
	printf("software: %s\n", sw);
	printf("listen: %s\n", where);
	printf("tls: %s\n", i->tls ? "on" : "off (plaintext)");
	printf("fingerprint: %s\n", fp[0] ? fp : "-");
	printf("clients: %u\n", i->clients);
	printf("registered: %u\n", i->registered);
	printf("rooms: %u\n", i->rooms);
	printf("offers: %u\n", i->offers);
	printf("relay peak queued: %llu bytes\n", (unsigned long long)i->relay_peak);
	printf("uptime: %llud %02llu:%02llu:%02llu\n", (unsigned long long)(s / 86400),
	       (unsigned long long)(s / 3600 % 24), (unsigned long long)(s / 60 % 60),
	       (unsigned long long)(s % 60));
}

static int ctl_request(int fd, const struct rd_msg *m, struct rd_frame_reader *r,
		       struct rd_msg *reply)
{
	struct rd_buf b;
	struct rd_frame f;
	int rc;

	rd_buf_init(&b, 0);
	rc = rd_msg_frame(&b, m, 1, 0);
	if (rc == 0)
		rc = rd_net_write_all(fd, b.data, b.len, CTL_TIMEOUT_MS);
	rd_buf_free(&b);
	if (rc == 0)
		rc = rd_frame_recv(fd, r, CTL_TIMEOUT_MS, &f);
	if (rc == 0)
		rc = rd_msg_decode(f.hdr.type, f.payload, f.len, reply);
	if (rc == 0)
		reply->type = f.hdr.type;
	return rc;
}

static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* --valid: N followed by s, m, h or d; 1 s to 30 d. */
static int parse_valid(const char *s, uint32_t *ms)
{
	char *end = NULL;
	unsigned long v, unit;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || s[0] == '-' || end[0] == '\0' || end[1] != '\0')
		return -1;
	unit = end[0] == 's' ? 1000ul :
	       end[0] == 'm' ? 60000ul :
	       end[0] == 'h' ? 3600000ul :
	       end[0] == 'd' ? 86400000ul :
			       0;
	if (unit == 0 || v == 0 || v > 30ul * 86400000ul / unit)
		return -1;
	*ms = (uint32_t)(v * unit);
	return 0;
}

/* "roomdrop://HOST:PORT/invite/" and "?fp=KEY" for the server that CTL_INFO described;
 * host (NULL: the listen address, unless it is a wildcard) overrides the host. */
static int link_base(const struct rd_msg_ctl_server_info *i, const char *host, char *out,
		     size_t cap, char *end, size_t ecap)
{
	const char *colon = strrchr(i->listen, ':');
	char lhost[RD_LISTEN_BUF];
	size_t n;

	if (!i->tls || !i->fingerprint[0]) {
		fprintf(stderr, "roomdrop-server ctl: invitations need a server with TLS\n");
		return CTL_EFAIL;
	}
	if (colon == NULL) {
		fprintf(stderr, "roomdrop-server ctl: the server's address '%s' has no port\n",
			i->listen);
		return CTL_EFAIL;
	}
	n = (size_t)(colon - i->listen);
	snprintf(lhost, sizeof(lhost), "%.*s", (int)n, i->listen);
	if (host == NULL) {
		if (!strcmp(lhost, "0.0.0.0") || !strcmp(lhost, "[::]")) {
			fprintf(stderr,
				"roomdrop-server ctl: the server listens on every address (%s): say "
				"which one the invited should use with --host HOST\n",
				i->listen);
			return CTL_EUSAGE;
		}
		host = lhost;
	}
	snprintf(out, cap, "roomdrop://%s%s%s:%s/invite/",
		 strchr(host, ':') && host[0] != '[' ? "[" : "", host,
		 strchr(host, ':') && host[0] != '[' ? "]" : "", colon + 1);
	snprintf(end, ecap, "?fp=%s", i->fingerprint);
	return CTL_OK;
}

int ctl_main(int argc, char **argv)
{
	static const struct option opts[] = { { "socket", required_argument, NULL, 's' },
					      { "port", required_argument, NULL, 'p' },
					      { "reason", required_argument, NULL, 'r' },
					      { "room", required_argument, NULL, 'R' },
					      { "to", required_argument, NULL, 't' },
					      { "uses", required_argument, NULL, 'u' },
					      { "valid", required_argument, NULL, 'v' },
					      { "host", required_argument, NULL, 'H' },
					      { NULL, 0, NULL, 0 } };
	char path[108] = "";
	const char *reason = NULL, *room = NULL, *to = NULL, *link_host = NULL;
	uint16_t port = RD_DEFAULT_PORT;
	uint32_t uses = 0, valid_ms = 0;
	struct rd_msg m, reply;
	struct rd_frame_reader *r = NULL;
	int fd = -1, rc, code = CTL_EFAIL;

	char link[512] = "", link_end[128] = "";
	char *words[8];
	int nw = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			ctl_usage(stdout);
			return CTL_OK;
		}
		if (a[0] == '-' && a[1] == '-' && a[2]) {
			const char *o = a + 2, *v = strchr(o, '=');
			size_t ol = v ? (size_t)(v - o) : strlen(o);
			int known = 0;
			for (const struct option *op = opts; op->name; op++)
				if (op->has_arg && strlen(op->name) == ol &&
				    !strncmp(op->name, o, ol))
					known = op->val;
			if (!known) {
				fprintf(stderr, "roomdrop-server ctl: unknown option '%s'\n", a);
				ctl_usage(stderr);
				return CTL_EUSAGE;
			}
			if (v) {
				v++;
			} else if (i + 1 < argc) {
				v = argv[++i];
			} else {
				fprintf(stderr, "roomdrop-server ctl: %s needs a value\n", a);
				return CTL_EUSAGE;
			}
			switch (known) {
			case 's':
				snprintf(path, sizeof(path), "%s", v);
				break;
			case 'r':
				reason = v;
				break;
			case 'R':
				room = v;
				break;
			case 't':
				to = v;
				break;
			case 'u':
				if (parse_u32(v, 1, 1000000, &uses) != 0) {
					fprintf(stderr,
						"roomdrop-server ctl: --uses takes 1 to 1000000\n");
					return CTL_EUSAGE;
				}
				break;
			case 'v':
				if (parse_valid(v, &valid_ms) != 0) {
					fprintf(stderr,
						"roomdrop-server ctl: --valid takes a time from 1s to "
						"30d, e.g. 90s, 45m, 24h or 7d\n");
					return CTL_EUSAGE;
				}
				break;
			case 'H':
				link_host = v;
				break;
			case 'p':
				if (rd_net_parse_port(v, &port) != 0) {
					fprintf(stderr,
						"roomdrop-server ctl: invalid port '%s' (1-65535)\n",
						v);
					return CTL_EUSAGE;
				}
				break;
			}
			continue;
		}
		if (nw == 8) {
			fprintf(stderr, "roomdrop-server ctl: too many arguments\n");
			return CTL_EUSAGE;
		}
		words[nw++] = argv[i];
	}
	if (nw == 0) {
		ctl_usage(stderr);
		return CTL_EUSAGE;
	}
	if (!path[0])
		ctl_default_path(port, path, sizeof(path));

	if (!strcmp(words[0], "list") && nw == 1) {
		rd_msg_init(&m, RD_MSG_CTL_LIST);
	} else if (!strcmp(words[0], "info") && nw == 1) {
		rd_msg_init(&m, RD_MSG_CTL_INFO);
	} else if (!strcmp(words[0], "kick") && nw == 2) {
		if (rd_nick_check(words[1], strlen(words[1])) != 0) {
			fprintf(stderr, "roomdrop-server ctl: '%s' is not a valid nickname\n",
				words[1]);
			return CTL_EUSAGE;
		}
		if (reason && strlen(reason) > RD_REASON_MAX) {
			fprintf(stderr, "roomdrop-server ctl: the reason is longer than %u bytes\n",
				RD_REASON_MAX);
			return CTL_EUSAGE;
		}
		rd_msg_init(&m, RD_MSG_CTL_KICK);
		snprintf(m.u.ctl_kick.nick, sizeof(m.u.ctl_kick.nick), "%s", words[1]);
		m.u.ctl_kick.reason = rd_str_c(reason);
	} else if (!strcmp(words[0], "release") && nw == 2) {
		if (rd_nick_check(words[1], strlen(words[1])) != 0) {
			fprintf(stderr, "roomdrop-server ctl: '%s' is not a valid nickname\n",
				words[1]);
			return CTL_EUSAGE;
		}
		rd_msg_init(&m, RD_MSG_CTL_RELEASE);
		snprintf(m.u.ctl_release.nick, sizeof(m.u.ctl_release.nick), "%s", words[1]);
	} else if ((!strcmp(words[0], "op") || !strcmp(words[0], "deop")) && nw == 3) {
		if (rd_room_check(words[1], strlen(words[1])) != 0 ||
		    rd_nick_check(words[2], strlen(words[2])) != 0) {
			fprintf(stderr,
				"roomdrop-server ctl: usage: %s ROOM NICK (a room name and a "
				"nickname)\n",
				words[0]);
			return CTL_EUSAGE;
		}
		rd_msg_init(&m, RD_MSG_CTL_OP);
		snprintf(m.u.ctl_op.room, sizeof(m.u.ctl_op.room), "%s", words[1]);
		snprintf(m.u.ctl_op.nick, sizeof(m.u.ctl_op.nick), "%s", words[2]);
		m.u.ctl_op.grant = !strcmp(words[0], "op");
	} else if ((!strcmp(words[0], "admit") || !strcmp(words[0], "revoke")) && nw == 2) {
		rd_msg_init(&m, RD_MSG_CTL_ADMIT);
		if (rd_tls_fp_parse(words[1], m.u.ctl_admit.fp) != 0) {
			fprintf(stderr,
				"roomdrop-server ctl: '%s' is not a key fingerprint (as the refused "
				"client or `roomdrop-server fingerprint` shows it)\n",
				words[1]);
			return CTL_EUSAGE;
		}
		m.u.ctl_admit.grant = !strcmp(words[0], "admit");
	} else if (!strcmp(words[0], "invite") && nw == 1) {
		rd_msg_init(&m, RD_MSG_CTL_INVITE);
		m.u.ctl_invite.uses = uses;
		m.u.ctl_invite.valid_ms = valid_ms;
	} else if (!strcmp(words[0], "uninvite") && nw == 2) {
		if (strlen(words[1]) != 8 || strspn(words[1], "0123456789abcdef") != 8) {
			fprintf(stderr,
				"roomdrop-server ctl: '%s' is not an invitation id (8 hex digits, as "
				"ctl invite prints it)\n",
				words[1]);
			return CTL_EUSAGE;
		}
		rd_msg_init(&m, RD_MSG_CTL_UNINVITE);
		snprintf(m.u.ctl_uninvite.id, sizeof(m.u.ctl_uninvite.id), "%s", words[1]);
	} else if (!strcmp(words[0], "broadcast") && nw == 2) {
		if (room && to) {
			fprintf(stderr, "roomdrop-server ctl: give --room or --to, not both\n");
			return CTL_EUSAGE;
		}
		const char *target = room ? room : to;
		if (target && strlen(target) > RD_NICK_MAX) {
			fprintf(stderr, "roomdrop-server ctl: '%s' is too long for a name\n",
				target);
			return CTL_EUSAGE;
		}
		rd_msg_init(&m, RD_MSG_CTL_BROADCAST);
		m.u.ctl_broadcast.scope = room ? RD_SCOPE_ROOM : to ? RD_SCOPE_USER : RD_SCOPE_ALL;
		snprintf(m.u.ctl_broadcast.target, sizeof(m.u.ctl_broadcast.target), "%s",
			 target ? target : "");
		m.u.ctl_broadcast.text = rd_str_c(words[1]);
	} else {
		fprintf(stderr,
			"roomdrop-server ctl: unknown command or wrong arguments: '%s'\n"
			"Try 'roomdrop-server ctl --help'.\n",
			words[0]);
		return CTL_EUSAGE;
	}

	if ((rc = unix_connect(path, &fd)) != 0) {
		fprintf(stderr,
			"roomdrop-server ctl: cannot reach the server's control socket %s: %s\n"
			"(is roomdrop-server running on that port, as this user?)\n",
			path, rc == RD_ERR_SYSTEM ? strerror(errno) : rd_strerror(rc));
		return CTL_ECONNECT;
	}
	rd_msg_init(&reply, 0);
	if (m.type == RD_MSG_CTL_INVITE) { /* the link needs the server's address and key */
		struct rd_msg info;

		rd_msg_init(&info, RD_MSG_CTL_INFO);
		if (rd_frame_reader_new(RD_MAX_PAYLOAD_HARD, &r) != 0 ||
		    ctl_request(fd, &info, r, &reply) != 0 ||
		    reply.type != RD_MSG_CTL_SERVER_INFO) {
			fprintf(stderr, "roomdrop-server ctl: no answer from the server\n");
			code = CTL_ECONNECT;
			goto out;
		}
		if ((code = link_base(&reply.u.ctl_server_info, link_host, link, sizeof(link),
				      link_end, sizeof(link_end))) != CTL_OK)
			goto out;
		rd_msg_clear(&reply);
		code = CTL_EFAIL;
	}
	if ((r == NULL && rd_frame_reader_new(RD_MAX_PAYLOAD_HARD, &r) != 0) ||
	    (rc = ctl_request(fd, &m, r, &reply)) != 0) {
		fprintf(stderr, "roomdrop-server ctl: no answer from the server: %s\n",
			rd_strerror(rc));
		code = CTL_ECONNECT;
		goto out;
	}
	if (reply.type == RD_MSG_ERROR) {
		char esc[RD_REASON_MAX * 4 + 8];

		rd_display_escape(reply.u.error.text.p ? reply.u.error.text.p : "",
				  reply.u.error.text.n, esc, sizeof(esc)); /* (from the wire) */
		fprintf(stderr, "roomdrop-server ctl: %s\n", esc);
		code = (reply.u.error.code == RD_E_NO_SUCH_USER ||
			reply.u.error.code == RD_E_NO_SUCH_ROOM) ?
			       CTL_ENOTFOUND :
			       CTL_EFAIL;
		goto out;
	}
	if (reply.type == RD_MSG_CTL_CLIENTS) {
		print_clients(&reply.u.ctl_clients);
		code = CTL_OK;
	} else if (reply.type == RD_MSG_CTL_SERVER_INFO) {
		print_info(&reply.u.ctl_server_info);
		code = CTL_OK;
	} else if (reply.type == RD_MSG_CTL_INVITATION) {
		char hex[2 * RD_INVITE_SECRET + 1];
		time_t t = (time_t)(reply.u.ctl_invitation.expires_ms / 1000);
		struct tm tm;
		char when[64];

		rd_hex(reply.u.ctl_invitation.secret, RD_INVITE_SECRET, hex);
		localtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
		printf("%s%s%s\n", link, hex, link_end);
		fprintf(stderr,
			"invitation %s, good for %u use%s until %s (revoke: roomdrop-server ctl "
			"uninvite %s); the one who uses it: roomdrop join-invite LINK\n",
			reply.u.ctl_invitation.id, uses ? uses : 1, uses > 1 ? "s" : "", when,
			reply.u.ctl_invitation.id);
		explicit_bzero(hex, sizeof(hex));
		code = CTL_OK;
	} else if (reply.type == RD_MSG_OK) {
		code = CTL_OK;
	} else {
		fprintf(stderr, "roomdrop-server ctl: unexpected answer %s\n",
			rd_msg_type_name(reply.type) ? rd_msg_type_name(reply.type) : "?");
	}
out:
	rd_msg_clear(&reply);
	rd_frame_reader_free(r);
	if (fd >= 0)
		close(fd);
	return code;
}
