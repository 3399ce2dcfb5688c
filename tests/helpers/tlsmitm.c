/* tlsmitm - a man in the middle between a roomdrop client and server, for the TLS tests.
 *
 *   tlsmitm --to PORT --port-file FILE --mode terminate --dir DIR
 *   tlsmitm --to PORT --port-file FILE --mode relay --record FILE
 *
 * It listens on 127.0.0.1 (a port the kernel picks, written to --port-file) and, for each
 * connection in turn, connects to 127.0.0.1:PORT.
 *   terminate: it ends the client's TLS with a key of its own (made in DIR) and opens its
 *              own TLS connection to the server, relaying what it decrypted: what an
 *              attacker who cannot show the server's key would do. A client that checks
 *              the server's key must refuse it.
 *   relay:     it copies the bytes both ways untouched and appends them to --record:
 *              what an eavesdropper on the path sees.
 * Runs until killed. Connects to 127.0.0.1 only.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rd_err.h"
#include "rd_net.h"
#include "rd_tls.h"

struct side {
	struct rd_tls_conn *c;
	uint8_t buf[65536];
	size_t n, off; /* bytes read from this side, not yet written to the other */
};

static FILE *g_record;

static int handshake(struct rd_tls_conn *c)
{
	enum rd_tls_want want;
	for (int i = 0; i < 1000; i++) {
		if (rd_tls_conn_handshake(c, &want) != 0)
			return -1;
		if (want == RD_TLS_WANT_NONE)
			return 0;
		struct pollfd p = { .fd = rd_tls_conn_fd(c),
				    .events = want == RD_TLS_WANT_WRITE ? POLLOUT : POLLIN };
		if (poll(&p, 1, 5000) <= 0)
			return -1;
	}
	return -1;
}

/* Move what a has read to b, and read more from a when it is drained. -1 when done. */
static int pump(struct side *a, struct side *b)
{
	size_t got, put;
	if (a->off == a->n) {
		a->off = a->n = 0;
		if (rd_tls_conn_read(a->c, a->buf, sizeof(a->buf), &got) != 0)
			return -1;
		a->n = got;
		if (got && g_record) {
			fwrite(a->buf, 1, got, g_record);
			fflush(g_record);
		}
	}
	while (a->off < a->n) {
		if (rd_tls_conn_write(b->c, a->buf + a->off, a->n - a->off, &put) != 0)
			return -1;
		if (put == 0)
			break;
		a->off += put;
	}
	return 0;
}

static void serve(struct rd_tls_conn *cl, struct rd_tls_conn *sv)
{
	static struct side a, b;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.c = cl;
	b.c = sv;
	for (;;) {
		struct pollfd p[2] = { { .fd = rd_tls_conn_fd(cl), .events = POLLIN },
				       { .fd = rd_tls_conn_fd(sv), .events = POLLIN } };
		if (a.off < a.n)
			p[1].events |= POLLOUT;
		if (b.off < b.n)
			p[0].events |= POLLOUT;
		if (rd_tls_conn_pending(cl) == 0 && rd_tls_conn_pending(sv) == 0 &&
		    poll(p, 2, 30000) <= 0)
			return;
		if (pump(&a, &b) != 0 || pump(&b, &a) != 0)
			return;
	}
}

int main(int argc, char **argv)
{
	const char *mode = NULL, *port_file = NULL, *dir = NULL, *record = NULL;
	uint16_t to = 0, port;
	struct rd_tls_identity *id = NULL;
	struct rd_tls_ctx *sctx = NULL, *cctx = NULL;
	int lfd;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--to"))
			to = (uint16_t)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--port-file"))
			port_file = argv[i + 1];
		else if (!strcmp(argv[i], "--mode"))
			mode = argv[i + 1];
		else if (!strcmp(argv[i], "--dir"))
			dir = argv[i + 1];
		else if (!strcmp(argv[i], "--record"))
			record = argv[i + 1];
	}
	if (!to || !port_file || !mode || (strcmp(mode, "relay") && strcmp(mode, "terminate")) ||
	    (!strcmp(mode, "terminate") && !dir)) {
		fprintf(stderr,
			"usage: tlsmitm --to PORT --port-file FILE --mode terminate --dir DIR"
			" | --mode relay --record FILE\n");
		return 2;
	}
	if (!strcmp(mode, "terminate")) {
		char crt[512], key[512];
		snprintf(crt, sizeof(crt), "%s/mitm.crt", dir);
		snprintf(key, sizeof(key), "%s/mitm.key", dir);
		if (rd_tls_identity_ensure(crt, key, "roomdrop-server", &id, NULL) != 0 ||
		    rd_tls_ctx_server_new(id, 0, &sctx) != 0 ||
		    rd_tls_ctx_client_new(NULL, NULL, 0, &cctx) != 0) {
			fprintf(stderr, "tlsmitm: cannot set up TLS\n");
			return 1;
		}
	} else if (record && !(g_record = fopen(record, "ab"))) {
		perror("tlsmitm: --record");
		return 1;
	}
	if (rd_net_listen("127.0.0.1", 0, 16, &lfd, &port) != 0) {
		fprintf(stderr, "tlsmitm: cannot listen\n");
		return 1;
	}
	FILE *pf = fopen(port_file, "w");
	if (!pf || fprintf(pf, "%u\n", port) < 0 || fclose(pf) != 0) {
		perror("tlsmitm: --port-file");
		return 1;
	}
	for (;;) {
		int cfd, sfd;
		struct rd_tls_conn *cl = NULL, *sv = NULL;
		if (rd_net_accept(lfd, &cfd, NULL, 0, NULL) != 0)
			continue;
		if (rd_net_connect("127.0.0.1", to, 5000, &sfd) != 0) {
			close(cfd);
			continue;
		}
		if (sctx) {
			if (rd_tls_conn_tls_new(sctx, cfd, NULL, &cl) != 0 ||
			    rd_tls_conn_tls_new(cctx, sfd, NULL, &sv) != 0) {
				close(cfd);
				close(sfd);
				continue;
			}
			if (handshake(cl) == 0 && handshake(sv) == 0)
				serve(cl, sv);
		} else if (rd_tls_conn_plain_new(cfd, &cl) == 0 &&
			   rd_tls_conn_plain_new(sfd, &sv) == 0) {
			serve(cl, sv);
		}
		rd_tls_conn_close(cl);
		rd_tls_conn_close(sv);
	}
}
