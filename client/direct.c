/* direct.c - the direct link of one file offer (direct.h; PROTOCOL.md section 14).
 *
 * One thread (the command's). The race and the link are driven from small poll loops
 * that also hold the server connection's descriptor and call rd_conn_poll(conn, 0) on
 * every turn, so that the server's frames (heartbeats, OFFER_*, P2P_*) are handled while
 * the bytes go directly. No wait is longer than POLL_SLICE_MS without a look at both.
 */
#include "direct.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rd_display.h"
#include "rd_err.h"
#include "rd_net.h"
#include "rd_peer.h"
#include "rd_tls.h"

#define POLL_SLICE_MS 100
#define TEST_CUT_BYTES (1u << 20) /* ROOMDROP_TEST_P2P=cut: the link breaks after this */
#define FOLLOWER_EXTRA_MS \
	1000 /* the chooser decides first: its P2P_FAILED or P2P_READY
				* reaches the other side before that side gives up */

struct direct {
	uint32_t offer_id;
	struct rd_peer *p;
	int intro, peer_failed, up;
	int broken;                              /* the link failed after it was up */
	uint64_t received;                       /* payload bytes read from the link */
	char peer_reason[RD_REASON_MAX * 4 + 8]; /* escaped */
	struct rd_msg_p2p_intro in;              /* addrs copied below */
	uint64_t served_ms;                      /* the server connection was last read then */
	char cand[RD_PEER_MAX_CANDIDATES][RD_PEER_ADDR_BUF];
	size_t ncand;
};

static const char *test_mode(void)
{
	const char *v = getenv("ROOMDROP_TEST_P2P");

	return v != NULL ? v : "";
}

struct direct *direct_new(uint32_t offer_id)
{
	struct direct *d = calloc(1, sizeof(*d));

	if (d != NULL)
		d->offer_id = offer_id;
	return d;
}

void direct_free(struct direct *d)
{
	if (d == NULL)
		return;
	rd_peer_free(d->p);
	free(d);
}

void direct_on_msg(struct direct *d, const struct rd_msg *m)
{
	if (d == NULL)
		return;
	if (m->type == RD_MSG_P2P_INTRO && m->u.p2p_intro.offer_id == d->offer_id && !d->intro) {
		d->in = m->u.p2p_intro;
		d->in.addrs = NULL;
		d->in.naddrs = 0;
		for (uint32_t i = 0; i < m->u.p2p_intro.naddrs && d->ncand < RD_PEER_MAX_CANDIDATES;
		     i++)
			snprintf(d->cand[d->ncand++], RD_PEER_ADDR_BUF, "%s",
				 m->u.p2p_intro.addrs[i].addr);
		d->intro = 1;
	} else if (m->type == RD_MSG_P2P_FAILED && m->u.p2p_failed.offer_id == d->offer_id) {
		rd_display_escape(m->u.p2p_failed.reason.p, m->u.p2p_failed.reason.n,
				  d->peer_reason, sizeof(d->peer_reason));
		d->peer_failed = 1;
	}
}

int direct_refuse(struct cli_session *s, uint32_t offer_id, const char *reason)
{
	struct rd_msg m, reply;
	uint16_t werr = 0;
	int rc;

	rd_msg_init(&m, RD_MSG_P2P_FAILED);
	m.u.p2p_failed.offer_id = offer_id;
	m.u.p2p_failed.reason = (struct rd_str){ reason, strnlen(reason, RD_REASON_MAX) };
	rc = rd_conn_request(s->conn, &m, &reply, &werr);
	if (rc == 0)
		rd_msg_clear(&reply);
	return rc;
}

/* A port nothing listens on, for ROOMDROP_TEST_P2P=unreachable. */
static int closed_port(uint16_t *port)
{
	int fd, rc = rd_net_listen("127.0.0.1", 0, 1, &fd, port);

	if (rc == 0)
		close(fd);
	return rc;
}

/* Listen, report the port and addresses (P2P_LISTEN). */
static int listen_and_report(struct cli_session *s, struct direct *d, char *why, size_t cap)
{
	char dir[512], crt[600], key[600];
	char addrs[RD_P2P_MAX_ADDRS - 1][RD_PEER_ADDR_BUF];
	struct rd_p2p_addr wire[RD_P2P_MAX_ADDRS - 1];
	struct rd_tls_identity *id = NULL;
	const char *mode = test_mode();
	struct rd_msg m, reply;
	size_t n = 0;
	uint16_t port = 0, werr = 0;
	int rc;

	if (s->o->plain || !s->tls.has_client_fp) {
		snprintf(why, cap, "the connection to the server has no TLS client key");
		return RD_ERR_STATE;
	}
	if ((rc = rd_tls_config_dir(dir, sizeof(dir))) != 0) {
		snprintf(why, cap, "no configuration folder for this client's key");
		return rc;
	}
	snprintf(crt, sizeof(crt), "%s/%s", dir, RD_TLS_CLIENT_CERT);
	snprintf(key, sizeof(key), "%s/%s", dir, RD_TLS_CLIENT_KEY);
	if ((rc = rd_tls_identity_ensure(crt, key, "roomdrop client", &id, NULL)) == 0)
		rc = rd_peer_new(id, mode[0] ? "127.0.0.1" : NULL, &d->p, &port);
	rd_tls_identity_free(id);
	if (rc != 0) {
		snprintf(why, cap, "cannot listen for a direct link: %s", rd_strerror(rc));
		return rc;
	}
	if (strcmp(mode, "unreachable") == 0 && (rc = closed_port(&port)) != 0) {
		snprintf(why, cap, "cannot find a closed port: %s", rd_strerror(rc));
		return rc;
	}
	if (!mode[0] && rd_peer_local_addrs(port, addrs, RD_P2P_MAX_ADDRS - 1, &n) != 0)
		n = 0;
	for (size_t i = 0; i < n; i++)
		snprintf(wire[i].addr, sizeof(wire[i].addr), "%s", addrs[i]);
	rd_msg_init(&m, RD_MSG_P2P_LISTEN);
	m.u.p2p_listen.offer_id = d->offer_id;
	m.u.p2p_listen.port = port;
	m.u.p2p_listen.naddrs = (uint32_t)n;
	m.u.p2p_listen.addrs = wire;
	rc = rd_conn_request(s->conn, &m, &reply, &werr);
	if (rc == 0) {
		rd_msg_clear(&reply);
	} else if (rc == RD_ERR_REMOTE) {
		char *e = cli_escape(rd_conn_last_error(s->conn),
				     strlen(rd_conn_last_error(s->conn)));

		snprintf(why, cap, "the server said: %s", e);
		free(e);
	} else {
		snprintf(why, cap, "%s", rd_strerror(rc));
	}
	return rc;
}

/* Serve the server connection for up to ms (in slices). */
static int serve(struct cli_session *s, int ms)
{
	struct pollfd p = { .fd = rd_conn_fd(s->conn), .events = POLLIN };
	int rc = rd_conn_poll(s->conn, 0);

	if (rc != 0)
		return rc;
	if (poll(&p, 1, ms) < 0 && errno != EINTR)
		return RD_ERR_SYSTEM;
	if (cli_stop)
		return RD_ERR_CANCELLED;
	return rd_conn_poll(s->conn, 0);
}

static int wait_intro(struct cli_session *s, struct direct *d, char *why, size_t cap)
{
	uint64_t end = rd_now_mono_ms() + DIRECT_INTRO_WAIT_MS;
	int rc = 0;

	while (rc == 0 && !d->intro && !d->peer_failed) {
		if (rd_now_mono_ms() >= end) {
			snprintf(why, cap, "no introduction from the server within %d s",
				 DIRECT_INTRO_WAIT_MS / 1000);
			return RD_ERR_TIMEOUT;
		}
		rc = serve(s, POLL_SLICE_MS);
	}
	if (rc != 0)
		snprintf(why, cap, "%s", rd_strerror(rc));
	return rc;
}

/* The race, with the server connection in the same poll. */
static int race(struct cli_session *s, struct direct *d, int chooser, char *why, size_t cap)
{
	struct pollfd fds[RD_PEER_POLLFDS + 1];
	const char *candp[RD_PEER_MAX_CANDIDATES];
	struct rd_peer_intro in = { 0 };
	size_t n;
	int ms, rc;

	for (size_t i = 0; i < d->ncand; i++)
		candp[i] = d->cand[i];
	in.offer_id = d->offer_id;
	memcpy(in.token, d->in.token, sizeof(in.token));
	in.nick = s->o->nick;
	in.peer_nick = d->in.peer;
	memcpy(in.peer_fp, d->in.fp, sizeof(in.peer_fp));
	in.candidates = candp;
	in.ncandidates = strcmp(test_mode(), "unreachable") == 0 ? 0 : d->ncand;
	in.chooser = chooser;
	in.timeout_ms = RD_PEER_TIMEOUT_MS + (chooser ? 0 : FOLLOWER_EXTRA_MS);
	if ((rc = rd_peer_start(d->p, &in)) != 0) {
		snprintf(why, cap, "cannot start the direct attempt: %s", rd_strerror(rc));
		return rc;
	}
	do {
		if ((rc = rd_peer_poll_set(d->p, fds, RD_PEER_POLLFDS, &n, &ms)) != 0)
			break;
		fds[n].fd = rd_conn_fd(s->conn);
		fds[n].events = POLLIN;
		fds[n].revents = 0;
		if (poll(fds, n + 1, ms < POLL_SLICE_MS ? ms : POLL_SLICE_MS) < 0 &&
		    errno != EINTR) {
			rc = RD_ERR_SYSTEM;
			break;
		}
		rc = rd_peer_step(d->p, fds, n);
		if (rc == RD_ERR_AGAIN) {
			int crc = rd_conn_poll(s->conn, 0);

			if (crc != 0)
				return crc;
			if (cli_stop)
				return RD_ERR_CANCELLED;
			if (d->peer_failed)
				break; /* the other side gave up: no link */
		}
	} while (rc == RD_ERR_AGAIN);
	if (rc != 0 && rc != RD_ERR_AGAIN)
		snprintf(why, cap, "%s",
			 rd_peer_reason(d->p)[0] ? rd_peer_reason(d->p) : rd_strerror(rc));
	return rc == RD_ERR_AGAIN ? RD_ERR_REMOTE : rc;
}

int direct_start(struct cli_session *s, struct direct *d, int chooser, char *why, size_t cap)
{
	int rc;

	why[0] = '\0';
	rc = listen_and_report(s, d, why, cap);
	if (rc == 0)
		rc = wait_intro(s, d, why, cap);
	if (rc == 0 && !d->peer_failed)
		rc = race(s, d, chooser, why, cap);
	if (d->peer_failed) {
		snprintf(why, cap, "%s", d->peer_reason);
		rc = RD_ERR_REMOTE;
	} else if (rc != 0 && rc != RD_ERR_CLOSED) {
		char line[RD_REASON_MAX + 1];

		/* the other side stops waiting for us (its reason line is the relay's) */
		snprintf(line, sizeof(line), "%s", why);
		(void)direct_refuse(s, d->offer_id, line);
	}
	d->up = rc == 0;
	return rc;
}

/* Wait for the link to be writable (want_write) or readable, and the server connection. */
static int link_wait(struct cli_session *s, struct direct *d, int ms)
{
	struct pollfd p[2] = {
		{ .fd = rd_peer_fd(d->p), .events = POLLIN },
		{ .fd = rd_conn_fd(s->conn), .events = POLLIN },
	};
	int rc;

	if (rd_peer_want_write(d->p))
		p[0].events |= POLLOUT;
	if (poll(p, 2, ms) < 0 && errno != EINTR)
		return RD_ERR_SYSTEM;
	if (cli_stop)
		return RD_ERR_CANCELLED;
	if ((rc = rd_conn_poll(s->conn, 0)) != 0)
		return rc;
	return 0;
}

/* While bytes flow without a wait, still read the server connection every slice (its
 * PINGs must be answered whatever the link's speed). */
static int serve_now_and_then(struct cli_session *s, struct direct *d)
{
	uint64_t now = rd_now_mono_ms();

	if (now - d->served_ms < POLL_SLICE_MS)
		return 0;
	d->served_ms = now;
	if (cli_stop)
		return RD_ERR_CANCELLED;
	return rd_conn_poll(s->conn, 0);
}

int direct_flush(struct cli_session *s, struct direct *d)
{
	int rc;

	if (!d->up)
		return RD_ERR_STATE;
	while ((rc = rd_peer_process(d->p)) == 0 && rd_peer_want_write(d->p))
		if ((rc = link_wait(s, d, POLL_SLICE_MS)) != 0)
			return rc;
	if (rc != 0)
		d->broken = 1;
	return rc;
}

int direct_send_msg(struct cli_session *s, struct direct *d, const struct rd_msg *m)
{
	int rc;

	if (!d->up)
		return RD_ERR_STATE;
	if ((rc = rd_peer_send_msg(d->p, m, 0)) != 0) {
		d->broken = 1;
		return rc;
	}
	if ((rc = serve_now_and_then(s, d)) != 0)
		return rc;
	return direct_flush(s, d);
}

int direct_recv(struct cli_session *s, struct direct *d, int timeout_ms, struct rd_frame *f)
{
	uint64_t end = rd_now_mono_ms() + (uint64_t)timeout_ms;
	int closed = 0, rc;

	if (!d->up)
		return RD_ERR_STATE;
	for (;;) {
		if ((rc = serve_now_and_then(s, d)) != 0)
			return rc;
		if ((rc = rd_peer_next(d->p, f)) != RD_ERR_INCOMPLETE) {
			d->broken = rc != 0;
			d->received += rc == 0 ? f->len : 0;
			if (d->received > TEST_CUT_BYTES && strcmp(test_mode(), "cut") == 0) {
				rd_peer_free(d->p); /* ROOMDROP_TEST_P2P=cut: the link breaks */
				d->p = NULL;
				d->up = 0;
				d->broken = 1;
				return RD_ERR_CLOSED;
			}
			return rc;
		}
		if (closed) {
			d->broken = 1;
			return RD_ERR_CLOSED;
		}
		if (rd_now_mono_ms() >= end)
			return RD_ERR_TIMEOUT;
		if ((rc = link_wait(s, d, POLL_SLICE_MS)) != 0)
			return rc;
		rc = rd_peer_process(d->p);
		if (rc == RD_ERR_CLOSED) {
			closed = 1;
		} else if (rc != 0) {
			d->broken = 1;
			return rc;
		}
	}
}

int direct_broken(const struct direct *d)
{
	return d != NULL && d->broken;
}
