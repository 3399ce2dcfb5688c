/* rdproxy.c - a frame-aware TCP proxy for the live tests: sits between a client and a
 * real server on 127.0.0.1 and misbehaves on cue, so a test can put the client in a state
 * that a real server reaches only by chance of timing.
 *
 *   rdproxy --port SERVERPORT --port-file PATH [--log PATH]
 *           [--shutdown-on TYPE [--reason TEXT]] [--hold-after TYPE] [--delay TYPE MS]
 *
 *   --shutdown-on TYPE  when the client sends a frame of TYPE (hex, e.g. 0x100a), send it
 *                       SHUTDOWN(TEXT) instead of forwarding, and close both sides
 *   --hold-after TYPE   after forwarding the first server frame of TYPE, forward nothing
 *                       more from the server (read and drop it): the client sees silence
 *   --delay TYPE MS     wait MS milliseconds before forwarding each server frame of TYPE
 *   --notice-after K    after the K-th delayed frame, send the client a FILE_NOTICE
 *                       ("bob added small.txt (6 B)") as if the server had
 *   --log PATH          one line per frame: "c2s 0x1234" or "s2c 0x1234" (flushed)
 *   --rate BYTES_PER_S  a slow link: each direction forwards at most this many bytes a
 *                       second (whole frames, paced; the sender feels it as a full socket)
 *
 * Listens on 127.0.0.1 on a port the kernel picks and writes it to PATH; one thread per
 * connection; runs until killed (the test stops it by PID; the threads die with it). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "files/rdf_proto.h"
#include "rd_buf.h"
#include "rd_err.h"
#include "rd_frame.h"
#include "rd_msg.h"
#include "rd_net.h"
#include "rd_proto.h"

#define HDR 16u
#define MAX_FRAME (32u << 20)

static uint16_t g_port;
static long g_shutdown_on = -1, g_hold_after = -1, g_delay_type = -1;
static int g_delay_ms, g_notice_after = -1;
static double g_rate; /* bytes per second per direction; 0 = as fast as it goes */
static const char *g_reason = "proxy shutdown";
static FILE *g_log;
static pthread_mutex_t g_log_mtx = PTHREAD_MUTEX_INITIALIZER;

struct dir {
	int from, to;
	uint8_t *buf;
	size_t len, cap;
	int s2c;          /* server to client */
	int held;         /* dropping everything */
	int delayed;      /* frames delayed so far */
	uint64_t next_ns; /* --rate: when the link is free again (CLOCK_MONOTONIC) */
};

/* --rate: wait until the link is free, then hold it for n bytes' time. */
static void pace(struct dir *d, size_t n)
{
	uint64_t now = rd_now_mono_ns(), start = d->next_ns > now ? d->next_ns : now;

	if (start > now) {
		struct timespec ts = { (time_t)((start - now) / 1000000000u),
				       (long)((start - now) % 1000000000u) };

		nanosleep(&ts, NULL);
	}
	d->next_ns = start + (uint64_t)((double)n * 1e9 / g_rate);
}

struct pair {
	int cfd, sfd;
};

static void log_frame(const char *d, unsigned type)
{
	if (g_log == NULL)
		return;
	pthread_mutex_lock(&g_log_mtx);
	fprintf(g_log, "%s 0x%04x\n", d, type);
	fflush(g_log);
	pthread_mutex_unlock(&g_log_mtx);
}

static int send_shutdown(int fd)
{
	struct rd_buf b;
	struct rd_msg m;
	int rc;

	rd_buf_init(&b, 0);
	rd_msg_init(&m, RD_MSG_SHUTDOWN);
	m.u.bye.reason = rd_str_c(g_reason);
	rc = rd_msg_frame(&b, &m, 0, 0);
	if (rc == 0)
		rc = rd_net_write_all(fd, b.data, b.len, 5000);
	rd_buf_free(&b);
	return rc;
}

static int send_notice(int fd)
{
	struct rd_buf b;
	struct rd_msg m;
	int rc;

	rd_buf_init(&b, 0);
	rd_msg_init(&m, RDF_MSG_FILE_NOTICE);
	rdf_body(&m)->file_notice.event = RDF_FILE_ADDED;
	strcpy(rdf_body(&m)->file_notice.room, "general");
	strcpy(rdf_body(&m)->file_notice.nick, "bob");
	strcpy(rdf_body(&m)->file_notice.name, "small.txt");
	rdf_body(&m)->file_notice.size = 6;
	rc = rd_msg_frame(&b, &m, 0, 0);
	if (rc == 0)
		rc = rd_net_write_all(fd, b.data, b.len, 5000);
	rd_buf_free(&b);
	return rc;
}

/* Forward the whole frames buffered in d. 1 = end the connection. */
static int pump(struct dir *d)
{
	size_t n;
	unsigned type;

	for (;;) {
		if (d->len < HDR)
			return 0;
		n = HDR + ((size_t)d->buf[12] << 24 | (size_t)d->buf[13] << 16 |
			   (size_t)d->buf[14] << 8 | d->buf[15]);
		if (n > MAX_FRAME)
			return 1;
		if (d->len < n)
			return 0;
		type = (unsigned)d->buf[4] << 8 | d->buf[5];
		log_frame(d->s2c ? "s2c" : "c2s", type);
		if (!d->s2c && (long)type == g_shutdown_on) {
			(void)send_shutdown(d->from);
			return 1;
		}
		if (d->s2c && (long)type == g_delay_type && !d->held) {
			struct timespec ts = { g_delay_ms / 1000,
					       (long)(g_delay_ms % 1000) * 1000000L };

			nanosleep(&ts, NULL);
		}
		if (g_rate > 0 && !d->held)
			pace(d, n);
		if (!d->held && rd_net_write_all(d->to, d->buf, n, 10000) != 0)
			return 1;
		if (d->s2c && (long)type == g_hold_after)
			d->held = 1;
		if (d->s2c && (long)type == g_delay_type && ++d->delayed == g_notice_after &&
		    send_notice(d->to) != 0)
			return 1;
		memmove(d->buf, d->buf + n, d->len - n);
		d->len -= n;
	}
}

static int take(struct dir *d)
{
	ssize_t got;
	uint8_t *p;

	if (d->cap - d->len < 65536) {
		if (d->cap > MAX_FRAME * 2 || (p = realloc(d->buf, d->cap * 2 + 65536)) == NULL)
			return 1;
		d->buf = p;
		d->cap = d->cap * 2 + 65536;
	}
	got = recv(d->from, d->buf + d->len, d->cap - d->len, 0);
	if (got < 0 && errno == EINTR)
		return 0;
	if (got <= 0)
		return 1;
	d->len += (size_t)got;
	return pump(d);
}

static void *serve(void *arg)
{
	struct pair *pr = arg;
	struct dir d[2];
	struct pollfd p[2];
	int i, done = 0;

	memset(d, 0, sizeof(d));
	d[0].from = pr->cfd;
	d[0].to = pr->sfd;
	d[1].from = pr->sfd;
	d[1].to = pr->cfd;
	d[1].s2c = 1;
	while (!done) {
		p[0].fd = pr->cfd;
		p[1].fd = pr->sfd;
		p[0].events = p[1].events = POLLIN;
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < 2 && !done; i++)
			if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
				done = take(&d[i]);
	}
	close(pr->cfd);
	close(pr->sfd);
	free(d[0].buf);
	free(d[1].buf);
	free(pr);
	return NULL;
}

static long parse_type(const char *s)
{
	return strtol(s, NULL, 0);
}

int main(int argc, char **argv)
{
	const char *port_file = NULL;
	uint16_t bound = 0;
	pthread_t th;
	FILE *f;
	int i, lfd, cfd, sfd;

	if (rdf_proto_register() != 0)
		return 1;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			g_port = (uint16_t)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--port-file") && i + 1 < argc)
			port_file = argv[++i];
		else if (!strcmp(argv[i], "--rate") && i + 1 < argc)
			g_rate = atof(argv[++i]);
		else if (!strcmp(argv[i], "--log") && i + 1 < argc)
			g_log = fopen(argv[++i], "w");
		else if (!strcmp(argv[i], "--shutdown-on") && i + 1 < argc)
			g_shutdown_on = parse_type(argv[++i]);
		else if (!strcmp(argv[i], "--reason") && i + 1 < argc)
			g_reason = argv[++i];
		else if (!strcmp(argv[i], "--hold-after") && i + 1 < argc)
			g_hold_after = parse_type(argv[++i]);
		else if (!strcmp(argv[i], "--delay") && i + 2 < argc) {
			g_delay_type = parse_type(argv[++i]);
			g_delay_ms = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--notice-after") && i + 1 < argc) {
			g_notice_after = atoi(argv[++i]);
		} else {
			fprintf(stderr, "rdproxy: bad argument '%s' (see the source)\n", argv[i]);
			return 2;
		}
	}
	if (g_port == 0 || port_file == NULL) {
		fputs("rdproxy: --port and --port-file are needed\n", stderr);
		return 2;
	}
	if (rd_net_listen("127.0.0.1", 0, 16, &lfd, &bound) != 0) {
		fputs("rdproxy: cannot listen\n", stderr);
		return 3;
	}
	if ((f = fopen(port_file, "w")) == NULL)
		return 3;
	fprintf(f, "%u\n", bound);
	fclose(f);
	for (;;) {
		struct pair *pr;

		if (rd_net_accept(lfd, &cfd, NULL, 0, NULL) != 0)
			continue;
		if (rd_net_connect("127.0.0.1", g_port, 5000, &sfd) != 0) {
			close(cfd);
			continue;
		}
		if ((pr = malloc(sizeof(*pr))) == NULL) {
			close(cfd);
			close(sfd);
			continue;
		}
		pr->cfd = cfd;
		pr->sfd = sfd;
		if (pthread_create(&th, NULL, serve, pr) != 0) {
			close(cfd);
			close(sfd);
			free(pr);
			continue;
		}
		pthread_detach(th);
	}
}
