/* chat.c - direct chats and rooms in direct mode in the shell (chat.h).
 *
 * The table of links (struct chats, one per session, s->chat_user) belongs to the
 * shell's thread. on_chat runs inside the connection's dispatch: it only records (an
 * incoming chat to ask about or to accept, a room's mode, a member who came or went);
 * cli_chat_pending does the requests. A slot being linked (L_LINKING) is never freed by
 * the callback, so a pointer to it stays good through the blocking rd_chat calls.
 *
 * Rooms in direct mode: the member whose nickname sorts first (case-insensitively) asks
 * for the link, the other accepts without a question (the offer's descriptor names the
 * room, and it must be the room both are in, in direct mode); so every pair gets one
 * offer and no two shells wait on each other in a circle. A pair whose link could not be
 * made is not tried again while the room stays in direct mode: its messages go through
 * the server.
 */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "rd_chat.h"
#include "rd_display.h"
#include "rd_err.h"
#include "rd_names.h"
#include "rd_net.h"
#include "rd_proto.h"

#define MEMBERS_MAX (RD_ROOM_DIRECT_MAX * 2)
#define REJECTS_MAX 8

enum link_state {
	L_FREE = 0,
	L_ASKED,   /* an incoming person-to-person chat: the user decides */
	L_AUTO,    /* an incoming link of our direct room: accepted in cli_chat_pending */
	L_LINKING, /* rd_chat_request / _accept running */
	L_UP,
	L_DOWN /* tried and failed, or broke: messages go through the server */
};

struct link {
	enum link_state state;
	char nick[RD_NICK_BUF];
	char room[RD_ROOM_BUF]; /* the direct room it was made for, "" for a chat */
	uint32_t offer_id;      /* an incoming offer not answered yet */
	struct rd_chat *ch;
};

struct chats {
	struct link l[CLI_CHAT_LINKS];
	struct rd_tls_identity *id;
	int no_key;              /* no TLS client key: no direct links at all */
	char droom[RD_ROOM_BUF]; /* our room while it is in direct mode, else "" */
	char mem[MEMBERS_MAX][RD_NICK_BUF];
	size_t nmem;
	int need_who, need_links;
	/* cli_chat_pending made requests: frames that came meanwhile may wait in the
	 * connection's buffer, where poll() cannot see them (cli_chat_busy) */
	int served;
	struct {
		uint32_t id;
		char reason[64];
	} rej[REJECTS_MAX];
	size_t nrej;
};

static struct chats *chats(struct cli_session *s)
{
	return s->chat_user;
}

static struct link *find(struct chats *x, const char *nick)
{
	for (size_t i = 0; i < CLI_CHAT_LINKS; i++)
		if (x->l[i].state != L_FREE && rd_name_eq(x->l[i].nick, nick))
			return &x->l[i];
	return NULL;
}

static void drop(struct link *L)
{
	rd_chat_free(L->ch);
	memset(L, 0, sizeof(*L));
}

/* A link we stop using is closed, so that the other side stops using it too. */
static void link_down(struct link *L)
{
	rd_chat_free(L->ch);
	L->ch = NULL;
	L->state = L_DOWN;
}

/* A slot for nick: its own (freed first unless it is being linked or asked about), or
 * a free one, or a DOWN one. NULL when none. */
static struct link *slot(struct chats *x, const char *nick)
{
	struct link *L = find(x, nick);

	if (L != NULL) {
		if (L->state == L_LINKING || L->state == L_ASKED || L->state == L_AUTO)
			return NULL;
		drop(L);
		return L;
	}
	for (size_t i = 0; i < CLI_CHAT_LINKS; i++)
		if (x->l[i].state == L_FREE)
			return &x->l[i];
	for (size_t i = 0; i < CLI_CHAT_LINKS; i++)
		if (x->l[i].state == L_DOWN) {
			drop(&x->l[i]);
			return &x->l[i];
		}
	return NULL;
}

static void reject_later(struct chats *x, uint32_t id, const char *reason)
{
	if (x->nrej == REJECTS_MAX)
		return; /* (it expires on the server instead) */
	x->rej[x->nrej].id = id;
	snprintf(x->rej[x->nrej].reason, sizeof(x->rej[x->nrej].reason), "%s", reason);
	x->nrej++;
}

static void mem_add(struct chats *x, const char *nick)
{
	for (size_t i = 0; i < x->nmem; i++)
		if (rd_name_eq(x->mem[i], nick))
			return;
	if (x->nmem < MEMBERS_MAX)
		snprintf(x->mem[x->nmem++], RD_NICK_BUF, "%s", nick);
}

static void mem_del(struct chats *x, const char *nick)
{
	for (size_t i = 0; i < x->nmem; i++)
		if (rd_name_eq(x->mem[i], nick)) {
			memmove(x->mem[i], x->mem[i + 1], (x->nmem - i - 1) * RD_NICK_BUF);
			x->nmem--;
			return;
		}
}

/* ---- the callback (inside the connection's dispatch) ---------------------------------- */

static void on_offer_in(struct cli_session *s, struct chats *x, const struct rd_msg_offer_in *in)
{
	char room[RD_ROOM_BUF] = "", *from;
	struct link *L;

	if (in->descriptor.n > RD_ROOM_MAX ||
	    (in->descriptor.n > 0 &&
	     rd_room_check((const char *)in->descriptor.p, in->descriptor.n) != 0)) {
		reject_later(x, in->offer_id, "not a room name");
		return;
	}
	if (in->descriptor.n > 0)
		memcpy(room, in->descriptor.p, in->descriptor.n);
	room[in->descriptor.n] = '\0';
	if (x->no_key) {
		reject_later(x, in->offer_id, "no direct links here (no TLS client key)");
		return;
	}
	if (room[0] &&
	    (!x->droom[0] || !rd_name_eq(room, x->droom) || !rd_name_eq(room, s->room))) {
		reject_later(x, in->offer_id, "not in that room in direct mode");
		return;
	}
	if ((L = slot(x, in->from)) == NULL) {
		reject_later(x, in->offer_id, "busy: too many direct links");
		return;
	}
	L->state = room[0] ? L_AUTO : L_ASKED;
	L->offer_id = in->offer_id;
	snprintf(L->nick, sizeof(L->nick), "%s", in->from);
	snprintf(L->room, sizeof(L->room), "%s", room);
	if (L->state == L_ASKED) {
		from = cli_escape(in->from, strlen(in->from));
		cli_note(s, "%s asks for a direct chat - accept? [y/N]", from);
		free(from);
	}
}

static int on_chat(struct cli_session *s, const struct rd_msg *m)
{
	struct chats *x = chats(s);
	char *a, *b;

	for (size_t i = 0; i < CLI_CHAT_LINKS; i++)
		if (x->l[i].ch != NULL && rd_chat_on_msg(x->l[i].ch, m))
			return 1;
	switch (m->type) {
	case RD_MSG_OFFER_IN:
		if (m->u.offer_in.app_type != RD_APP_CHAT)
			return 0;
		on_offer_in(s, x, &m->u.offer_in);
		return 1;
	case RD_MSG_OFFER_RESULT: /* an offer we had not answered yet ended */
		for (size_t i = 0; i < CLI_CHAT_LINKS; i++) {
			struct link *L = &x->l[i];

			if ((L->state == L_ASKED || L->state == L_AUTO) &&
			    L->offer_id == m->u.offer_result.offer_id) {
				if (L->state == L_ASKED) {
					a = cli_escape(L->nick, strlen(L->nick));
					cli_note(s, "%s's direct chat request is over", a);
					free(a);
				}
				drop(L);
				return 1;
			}
		}
		return 0;
	case RD_MSG_ROOM_MODE:
		if (!rd_name_eq(m->u.room_mode.room, s->room))
			return 1; /* (a room we left meanwhile) */
		a = cli_escape(m->u.room_mode.room, strlen(m->u.room_mode.room));
		b = cli_escape(m->u.room_mode.by, strlen(m->u.room_mode.by));
		if (m->u.room_mode.direct) {
			snprintf(x->droom, sizeof(x->droom), "%s", m->u.room_mode.room);
			x->need_who = 1;
			if (b[0])
				cli_note(s, "%s is in direct mode (switched by %s): %s", a, b,
					 "messages go from member to member");
			else /* (told on joining) */
				cli_note(s,
					 "%s is in direct mode: messages go from member to member",
					 a);
		} else {
			x->droom[0] = '\0';
			x->nmem = 0;
			cli_note(s, "%s goes through the server again (%s)", a,
				 b[0] ? b : "it has too many members for direct mode");
		}
		free(a);
		free(b);
		return 1;
	case RD_MSG_PRESENCE:
		if (!x->droom[0] || !rd_name_eq(m->u.presence.room, x->droom))
			return 0;
		if (m->u.presence.event == RD_PRESENCE_JOINED) {
			mem_add(x, m->u.presence.nick);
			x->need_links = 1;
		} else {
			mem_del(x, m->u.presence.nick);
		}
		return 0;
	default:
		return 0;
	}
}

/* ---- making links ---------------------------------------------------------------------- */

static const char *test_mode(void)
{
	const char *v = getenv("ROOMDROP_TEST_P2P");

	return v != NULL ? v : "";
}

/* The key for direct links (loaded once). 0, or -1 when there is none. */
static int identity(struct cli_session *s, struct chats *x)
{
	char dir[512], crt[600], key[600];

	if (x->id != NULL)
		return 0;
	if (s->o->plain || !s->tls.has_client_fp || rd_tls_config_dir(dir, sizeof(dir)) != 0)
		return -1;
	snprintf(crt, sizeof(crt), "%s/%s", dir, RD_TLS_CLIENT_CERT);
	snprintf(key, sizeof(key), "%s/%s", dir, RD_TLS_CLIENT_KEY);
	return rd_tls_identity_ensure(crt, key, "roomdrop client", &x->id, NULL) == 0 ? 0 : -1;
}

/* Make the link of L (accepting L->offer_id, or asking L->nick). rc of rd_chat. */
static int make_link(struct cli_session *s, struct chats *x, struct link *L, int accept, char *why,
		     size_t cap)
{
	struct rd_chat_options o = { 0 };
	const char *mode = test_mode();
	int rc, fd;

	if (identity(s, x) != 0) {
		snprintf(why, cap, "direct links need TLS with a client key");
		L->state = L_DOWN;
		return RD_ERR_STATE;
	}
	o.id = x->id;
	o.nick = s->o->nick;
	o.listen_host = mode[0] ? "127.0.0.1" : NULL;
	o.report_addrs = !mode[0];
	o.cancel_fd = cli_signal_fd[0];
	o.answer_timeout_ms = L->room[0] ? 10000 : 0;
	if (strcmp(mode, "unreachable") == 0) {
		o.no_dial = 1; /* report a closed port, dial nothing */
		if (rd_net_listen("127.0.0.1", 0, 1, &fd, &o.report_port) == 0)
			close(fd);
	}
	if ((L->ch = rd_chat_new(&o)) == NULL) {
		snprintf(why, cap, "out of memory");
		L->state = L_DOWN;
		return RD_ERR_NOMEM;
	}
	L->state = L_LINKING;
	rc = accept ? rd_chat_accept(L->ch, s->conn, L->offer_id, L->nick, why, cap) :
		      rd_chat_request(L->ch, s->conn, L->nick, L->room, why, cap);
	L->offer_id = 0;
	L->state = rc == 0 ? L_UP : L_DOWN;
	return rc;
}

/* Say how a link came out; returns rc. */
static int tell_link(struct cli_session *s, struct link *L, int rc, const char *why)
{
	char *n = cli_escape(L->nick, strlen(L->nick));

	if (rc == 0 && L->room[0])
		cli_note(s, "direct link with %s (room %s)", n, L->room);
	else if (rc == 0)
		cli_note(s, "direct link with %s: /msg %s goes over it", n, n);
	else if (rc != RD_ERR_CLOSED)
		cli_note(s, "no direct link with %s (%s): messages to %s go through the server", n,
			 why, n);
	free(n);
	return rc;
}

int cli_chat_init(struct cli_session *s)
{
	struct chats *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return -1;
	x->no_key = s->o->plain;
	s->chat_user = x;
	s->on_chat = on_chat;
	return 0;
}

void cli_chat_stop(struct cli_session *s)
{
	struct chats *x = chats(s);

	if (x == NULL)
		return;
	for (size_t i = 0; i < CLI_CHAT_LINKS; i++)
		drop(&x->l[i]);
	rd_tls_identity_free(x->id);
	free(x);
	s->chat_user = NULL;
	s->on_chat = NULL;
}

int cli_chat_open(struct cli_session *s, const char *nick)
{
	struct chats *x = chats(s);
	struct link *L;
	char why[1200], *n;
	int rc;

	if (rd_name_eq(nick, s->o->nick)) {
		cli_note(s, "a direct chat with yourself? /msg someone else");
		return CLI_EUSAGE;
	}
	if ((L = find(x, nick)) != NULL && L->state == L_UP) {
		n = cli_escape(nick, strlen(nick));
		cli_note(s, "already linked directly with %s", n);
		free(n);
		return CLI_OK;
	}
	if ((L = slot(x, nick)) == NULL) {
		cli_note(
			s,
			"cannot ask for a direct chat now (answer the question first, or too many links)");
		return CLI_EFAIL;
	}
	snprintf(L->nick, sizeof(L->nick), "%s", nick);
	L->room[0] = '\0';
	rc = tell_link(s, L, make_link(s, x, L, 0, why, sizeof(why)), why);
	if (rc == RD_ERR_CLOSED)
		return CLI_ELOST;
	return CLI_OK;
}

int cli_chat_msg(struct cli_session *s, const char *nick, const char *text, int *said)
{
	struct chats *x = chats(s);
	struct link *L = find(x, nick);
	char *n;
	int rc;

	*said = L != NULL && L->state == L_DOWN;
	if (L == NULL || L->state != L_UP)
		return 0;
	n = cli_escape(nick, strlen(nick));
	if ((rc = rd_chat_send(L->ch, NULL, RD_KIND_TEXT, text, strlen(text))) == 0) {
		cli_note(s, "-> %s (direct)", n);
		free(n);
		return 1;
	}
	link_down(L);
	cli_note(s, "the direct link with %s broke (%s)", n, rd_strerror(rc));
	free(n);
	*said = 1;
	return 0;
}

int cli_chat_say(struct cli_session *s, const char *text)
{
	struct chats *x = chats(s);
	struct rd_nick_entry except[MEMBERS_MAX];
	struct rd_msg m;
	size_t nex = 0, others = 0;
	int rc;

	if (x == NULL || !x->droom[0] || !rd_name_eq(x->droom, s->room))
		return 0;
	for (size_t i = 0; i < x->nmem; i++) {
		struct link *L;

		if (rd_name_eq(x->mem[i], s->o->nick))
			continue;
		others++;
		L = find(x, x->mem[i]);
		if (L != NULL && L->state == L_UP &&
		    rd_chat_send(L->ch, s->room, RD_KIND_TEXT, text, strlen(text)) == 0)
			snprintf(except[nex++].nick, RD_NICK_BUF, "%s", x->mem[i]);
		else if (L != NULL && L->state == L_UP)
			link_down(L); /* (broken: through the server from now on) */
	}
	if (others == 0 || nex < others) {
		rd_msg_init(&m, RD_MSG_SAY_EXCEPT);
		m.u.say_except.kind = RD_KIND_TEXT;
		m.u.say_except.data = (struct rd_bytes){ (const uint8_t *)text, strlen(text) };
		m.u.say_except.count = (uint32_t)nex;
		m.u.say_except.except = except;
		if ((rc = rd_conn_send_msg(s->conn, &m, 0)) != 0)
			return rc;
	}
	cli_note(s, "-> %s: %zu direct, %zu through the server", s->room, nex, others - nex);
	return 1;
}

int cli_chat_direct(struct cli_session *s, int on)
{
	struct rd_msg m, reply;
	uint16_t werr = 0;
	int rc;

	if (s->room[0] == '\0') {
		cli_note(s, "you are in no room: /join one first");
		return CLI_EUSAGE;
	}
	rd_msg_init(&m, RD_MSG_ROOM_DIRECT);
	m.u.room_direct.on = on ? 1 : 0;
	rc = rd_conn_request(s->conn, &m, &reply, &werr);
	if (rc == 0) {
		rd_msg_clear(&reply);
		return CLI_OK;
	}
	return cli_report(
		s, on ? "cannot switch the room to direct mode" : "cannot switch the room back", rc,
		werr);
}

int cli_chat_question(struct cli_session *s, char *out, size_t cap)
{
	struct chats *x = chats(s);

	for (size_t i = 0; x != NULL && i < CLI_CHAT_LINKS; i++)
		if (x->l[i].state == L_ASKED) {
			char *n = cli_escape(x->l[i].nick, strlen(x->l[i].nick));

			snprintf(out, cap, "%s asks for a direct chat - accept? [y/N] ", n);
			free(n);
			return 1;
		}
	return 0;
}

int cli_chat_reply(struct cli_session *s, const char *line)
{
	struct chats *x = chats(s);
	struct link *L = NULL;
	char why[1200];
	uint16_t werr;

	for (size_t i = 0; x != NULL && i < CLI_CHAT_LINKS && L == NULL; i++)
		if (x->l[i].state == L_ASKED)
			L = &x->l[i];
	if (L == NULL)
		return 0;
	while (*line == ' ' || *line == '\t')
		line++;
	if (line[0] == 'y' || line[0] == 'Y') {
		(void)tell_link(s, L, make_link(s, x, L, 1, why, sizeof(why)), why);
		return 1;
	}
	(void)rd_conn_offer_answer(s->conn, L->offer_id, RD_ANSWER_REJECT, 0, "no thanks", NULL, 0,
				   NULL, &werr);
	cli_note(s, "refused");
	drop(L);
	return 1;
}

/* Make L's link (a room's, without a question) and say how it went: 0, or
 * RD_ERR_CLOSED when the server went away meanwhile. */
static int link_now(struct cli_session *s, struct chats *x, struct link *L, int accept)
{
	char why[1200];

	x->served = 1;
	if (tell_link(s, L, make_link(s, x, L, accept, why, sizeof(why)), why) == RD_ERR_CLOSED)
		return RD_ERR_CLOSED;
	return 0;
}

int cli_chat_pending(struct cli_session *s)
{
	struct chats *x = chats(s);
	uint16_t werr;
	int rc;

	if (x == NULL)
		return 0;
	if (x->droom[0] && !rd_name_eq(x->droom, s->room)) {
		x->droom[0] = '\0'; /* we left the room */
		x->nmem = 0;
	}
	while (x->nrej > 0) {
		x->served = 1;
		x->nrej--;
		rc = rd_conn_offer_answer(s->conn, x->rej[x->nrej].id, RD_ANSWER_REJECT, 0,
					  x->rej[x->nrej].reason, NULL, 0, NULL, &werr);
		if (rc != 0 && rc != RD_ERR_REMOTE)
			return rc;
	}
	/* one link per call: the shell reads the terminal and its links in between
	 * (cli_chat_busy keeps its poll from waiting while there is more) */
	for (size_t i = 0; i < CLI_CHAT_LINKS; i++)
		if (x->l[i].state == L_AUTO)
			return link_now(s, x, &x->l[i], 1);
	if (x->need_who && x->droom[0]) {
		struct rd_msg l;

		x->need_who = 0;
		x->served = 1;
		if ((rc = rd_conn_who(s->conn, x->droom, &l, &werr)) != 0)
			return rc == RD_ERR_REMOTE ? 0 : rc;
		x->nmem = 0;
		for (uint32_t i = 0; i < l.u.who_list.count; i++)
			mem_add(x, l.u.who_list.items[i].nick);
		rd_msg_clear(&l);
		x->need_links = 1;
	}
	if (x->need_links && x->droom[0]) {
		x->need_links = 0;
		for (size_t i = 0; i < x->nmem; i++) {
			struct link *L;

			/* the member whose nickname sorts first asks */
			if (strcasecmp(s->o->nick, x->mem[i]) >= 0 || find(x, x->mem[i]) != NULL)
				continue;
			if ((L = slot(x, x->mem[i])) == NULL)
				break;
			snprintf(L->nick, sizeof(L->nick), "%s", x->mem[i]);
			snprintf(L->room, sizeof(L->room), "%s", x->droom);
			x->need_links = 1; /* the others on the next turns */
			return link_now(s, x, L, 0);
		}
	}
	return 0;
}

void cli_chat_offline(struct cli_session *s)
{
	struct chats *x = chats(s);

	if (x == NULL)
		return;
	x->droom[0] = '\0';
	x->nmem = 0;
	x->need_who = x->need_links = 0;
	x->nrej = 0;
	for (size_t i = 0; i < CLI_CHAT_LINKS; i++)
		if (x->l[i].state == L_ASKED || x->l[i].state == L_AUTO)
			drop(&x->l[i]);
}

int cli_chat_busy(struct cli_session *s)
{
	struct chats *x = chats(s);

	if (x == NULL)
		return 0;
	if (x->served) {
		x->served = 0;
		return 1;
	}
	for (size_t i = 0; i < CLI_CHAT_LINKS; i++)
		if (x->l[i].state == L_AUTO)
			return 1;
	return x->nrej > 0 || (x->droom[0] && (x->need_who || x->need_links));
}

size_t cli_chat_pollfds(struct cli_session *s, struct pollfd *fds, size_t cap)
{
	struct chats *x = chats(s);
	size_t n = 0;

	for (size_t i = 0; x != NULL && i < CLI_CHAT_LINKS && n < cap; i++) {
		struct link *L = &x->l[i];

		if (L->state != L_UP || rd_chat_fd(L->ch) < 0)
			continue;
		fds[n].fd = rd_chat_fd(L->ch);
		fds[n].events = POLLIN | (rd_chat_want_write(L->ch) ? POLLOUT : 0);
		fds[n].revents = 0;
		n++;
	}
	return n;
}

void cli_chat_events(struct cli_session *s, const struct pollfd *fds, size_t n)
{
	struct chats *x = chats(s);

	for (size_t k = 0; x != NULL && k < n; k++) {
		if (fds[k].revents == 0)
			continue;
		for (size_t i = 0; i < CLI_CHAT_LINKS; i++) {
			struct link *L = &x->l[i];
			struct rd_msg m;
			char *nk;

			if (L->state != L_UP || rd_chat_fd(L->ch) != fds[k].fd)
				continue;
			(void)rd_chat_process(L->ch);
			while (rd_chat_next(L->ch, &m) == 0)
				/* a room message only for the room we are in (no other room's
				 * messages made up by a peer), whatever its mode: a peer may have
				 * sent it before it heard the room switch back */
				if (m.type == RD_MSG_PRIVATE_MSG ||
				    (s->room[0] && rd_name_eq(m.u.room_msg.room, s->room)))
					cli_print_direct(s, &m);
			if (!rd_chat_up(L->ch)) {
				link_down(L);
				nk = cli_escape(L->nick, strlen(L->nick));
				cli_note(
					s,
					"the direct link with %s closed: messages to %s go through the server",
					nk, nk);
				free(nk);
			}
			break;
		}
	}
}
