/* loadbot.c - many scripted clients against a live server, for tests and benchmarks.
 *
 *   loadbot --port P[,P...] [--clients N] [--senders S] [--messages M] [--size B]
 *           [--room R] [--window W] [--rate MSGS_PER_S] [--stalled K] [--idle SECONDS]
 *           [--rooms K] [--timeout SECONDS] [--server-pid PID[,PID...]] [--plain] [--quiet]
 *           [--nick-prefix P]
 *
 * Registers N clients (bot0..botN-1, or P0..PN-1 with --nick-prefix) in room R. K extra "stalled" clients register and
 * join too, then never read again. The first S bots each send M room messages carrying
 * (sender, sequence, send time); every bot checks it receives every other sender's
 * messages exactly once and in order. Prints figures as "key=value" lines; exits 0 when
 * every message was delivered exactly once and in order, 1 otherwise, 2 on bad usage,
 * 3 when it cannot connect or register.
 *
 * Threads: 8 setup threads connect and register the bots (stalled ones last, on the main
 * thread); one receiver thread drains every socket with epoll from the start, while S
 * sender threads send. A sender keeps at most W messages in flight
 * (sent but not yet seen by an observing bot), so queues stay bounded; with --rate it also
 * paces itself to that many messages per second (to measure latency at a given load).
 * With --server-pid it reports the server's CPU time per delivery during the sending;
 * given several PIDs (the servers of a cluster and its Redis), their sum, and each one's
 * share as cpu_seconds_pid_PID. Several ports (a comma list, or --port repeated) spread
 * the bots over several servers, bot i on the (i mod count)th: the members of one room
 * on several servers of a cluster; the latency is then also reported apart for receivers
 * on their sender's server (latency_near_*) and on another (latency_far_*).
 * With --idle, the bots connect, then stay idle (answering PINGs) for that many seconds and
 * exit 0: used to measure the server's memory per idle client. --rooms K (K > 1, only with
 * --senders 0) spreads the bots over rooms R0..R(K-1), so that thousands of idle bots do
 * not cost the square of their number in presence notices while they join.
 *
 * Transport: TLS 1.3 by default, through the link layer (rd_link over rd_tls), with no
 * client certificate and no pin (a load generator trusts whatever answers); --plain
 * speaks plaintext frames, for a server run with --tls off. Every send is a blocking
 * rd_link_send_stream (serialised per bot, so senders and PONGs never interleave); the
 * receiver takes what each link has with rd_link_read_available, which also drains the
 * bytes TLS decrypted beyond what epoll can see.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rd_buf.h"
#include "rd_link.h"
#include "rd_err.h"
#include "rd_frame.h"
#include "rd_msg.h"
#include "rd_net.h"
#include "rd_tls.h"

enum {
	PORTS_MAX = 16,
	PIDS_MAX = 16
};

struct bot {
	int idx;
	int fd;
	struct rd_link *l;
	uint32_t *next_seq; /* per sender: the next sequence expected */
	uint64_t got;
	int dead;
};

static struct {
	const char *host;
	int ports[PORTS_MAX]; /* bot i connects to ports[i % nports] */
	int nports;
	int clients, senders, messages, size, window, stalled, idle_s, timeout_s, quiet, rooms;
	int server_pids[PIDS_MAX]; /* CPU of these processes is summed */
	int npids;
	int plain;   /* plaintext frames instead of TLS */
	double rate; /* messages per second per sender; 0 = as fast as the window allows */
	const char *room;
	const char *prefix; /* nicknames: PREFIX0..PREFIXn-1 */
} opt = { .host = "127.0.0.1",
	  .prefix = "bot",
	  .clients = 10,
	  .senders = 1,
	  .messages = 100,
	  .size = 32,
	  .window = 64,
	  .room = "general",
	  .rooms = 1,
	  .timeout_s = 60 };

static struct bot *bots;
static struct rd_tls_ctx *tls_ctx; /* client context: no identity, no pin */
static atomic_ullong delivered, errors_order, errors_dup;
static atomic_uint *last_seen; /* per sender: messages seen by the last bot */
static atomic_int stop_flag;
static uint64_t *lat_us; /* sampled latencies */
static uint8_t *lat_far; /* per sample: 1 = the receiver is on another server than the sender */
static atomic_size_t nlat;
static size_t lat_cap;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int send_msg(struct bot *b, const struct rd_msg *m, uint32_t req)
{
	struct rd_buf buf;
	int rc;
	rd_buf_init(&buf, 0);
	rc = rd_msg_frame(&buf, m, req, 0);
	if (rc == 0) {
		rc = rd_link_send_stream(b->l, buf.data, buf.len, -1, 0, 0, opt.timeout_s * 1000,
					 NULL);
	}
	rd_buf_free(&buf);
	return rc;
}

/* Send a request and wait for the reply with the same id, answering PINGs. */
static int request(struct bot *b, const struct rd_msg *m, uint32_t req, uint16_t *reply_type)
{
	int rc = send_msg(b, m, req);
	while (rc == 0) {
		struct rd_frame f;
		rc = rd_link_recv(b->l, opt.timeout_s * 1000, &f);
		if (rc)
			break;
		if (f.hdr.type == RD_MSG_PING) {
			struct rd_msg p, q;
			if (rd_msg_decode(RD_MSG_PING, f.payload, f.len, &p) == 0) {
				rd_msg_init(&q, RD_MSG_PONG);
				q.u.ping.nonce = p.u.ping.nonce;
				send_msg(b, &q, 0);
			}
			continue;
		}
		if (f.hdr.req_id == req) {
			*reply_type = f.hdr.type;
			return 0;
		}
	}
	return rc;
}

/* Connect b and run the transport's handshake (TLS unless --plain). */
static int connect_link(struct bot *b)
{
	struct rd_tls_conn *t;
	uint16_t port = (uint16_t)opt.ports[b->idx % opt.nports];
	int fd, rc;
	if ((rc = rd_net_connect(opt.host, port, 5000, &fd)) != 0)
		return rc;
	rc = opt.plain ? rd_tls_conn_plain_new(fd, &t) : rd_tls_conn_tls_new(tls_ctx, fd, NULL, &t);
	if (rc != 0) {
		close(fd);
		return rc;
	}
	if ((rc = rd_link_new(t, NULL, &b->l)) != 0)
		return rc;
	b->fd = fd;
	if ((rc = rd_link_handshake(b->l, opt.timeout_s * 1000)) != 0)
		fprintf(stderr, "loadbot: handshake: %s\n", rd_link_reason(b->l));
	return rc;
}

static int setup_bot(struct bot *b, int idx, const char *prefix)
{
	struct rd_msg m;
	uint16_t t = 0;
	int rc;

	b->idx = idx;
	if ((rc = connect_link(b)) != 0)
		return rc;
	rd_msg_init(&m, RD_MSG_HELLO);
	m.u.hello.version_min = m.u.hello.version_max = 1;
	snprintf(m.u.hello.software, sizeof(m.u.hello.software), "loadbot");
	if ((rc = request(b, &m, 1, &t)) != 0 || t != RD_MSG_HELLO_OK)
		return rc ? rc : RD_ERR_PROTOCOL;
	rd_msg_init(&m, RD_MSG_NICK);
	snprintf(m.u.nick.nick, sizeof(m.u.nick.nick), "%s%d", prefix, idx);
	if ((rc = request(b, &m, 2, &t)) != 0 || t != RD_MSG_WELCOME)
		return rc ? rc : RD_ERR_PROTOCOL;
	rd_msg_init(&m, RD_MSG_JOIN);
	if (opt.rooms > 1)
		snprintf(m.u.room.room, sizeof(m.u.room.room), "%s%d", opt.room, idx % opt.rooms);
	else
		snprintf(m.u.room.room, sizeof(m.u.room.room), "%s", opt.room);
	if ((rc = request(b, &m, 3, &t)) != 0 || t != RD_MSG_JOINED)
		return rc ? rc : RD_ERR_PROTOCOL;
	b->next_seq = calloc((size_t)opt.senders + 1, sizeof(uint32_t));
	return b->next_seq ? 0 : RD_ERR_NOMEM;
}

/* The bot whose progress paces a sender: the last one, or the one before for itself. */
static int observer(uint32_t sender)
{
	return (int)sender == opt.clients - 1 ? opt.clients - 2 : opt.clients - 1;
}

static void on_frame(struct bot *b, const struct rd_frame *f)
{
	struct rd_msg m;
	if (f->hdr.type == RD_MSG_PING) {
		if (rd_msg_decode(RD_MSG_PING, f->payload, f->len, &m) == 0) {
			struct rd_msg q;
			rd_msg_init(&q, RD_MSG_PONG);
			q.u.ping.nonce = m.u.ping.nonce;
			send_msg(b, &q, 0);
		}
		return;
	}
	if (f->hdr.type != RD_MSG_ROOM_MSG)
		return;
	if (rd_msg_decode(RD_MSG_ROOM_MSG, f->payload, f->len, &m) != 0 || m.u.room_msg.data.n < 16)
		return;
	const uint8_t *p = m.u.room_msg.data.p;
	uint32_t sender = rd_be32_get(p), seq = rd_be32_get(p + 4);
	uint64_t sent = rd_be64_get(p + 8);
	if (sender >= (uint32_t)opt.senders)
		return;
	if (seq == b->next_seq[sender]) {
		b->next_seq[sender]++;
	} else if (seq < b->next_seq[sender]) {
		atomic_fetch_add(&errors_dup, 1);
	} else {
		atomic_fetch_add(&errors_order, 1);
		b->next_seq[sender] = seq + 1;
	}
	b->got++;
	atomic_fetch_add(&delivered, 1);
	if (b->idx == observer(sender))
		atomic_store(&last_seen[sender], seq + 1);
	if ((seq & 7) == 0 || opt.messages < 1000) {
		size_t k = atomic_fetch_add(&nlat, 1);
		if (k < lat_cap) {
			lat_us[k] = (now_ns() - sent) / 1000;
			lat_far[k] = (uint32_t)b->idx % (uint32_t)opt.nports !=
				     sender % (uint32_t)opt.nports;
		}
	}
}

static void *receiver_main(void *arg)
{
	int ep = *(int *)arg;
	struct epoll_event evs[128];
	while (!atomic_load(&stop_flag)) {
		int n = epoll_wait(ep, evs, 128, 100);
		for (int i = 0; i < n; i++) {
			struct bot *b = evs[i].data.ptr;
			struct rd_frame f;
			int rc;
			if (b->dead)
				continue;
			/* level-triggered: bytes left in the socket wake us again; bytes TLS
			 * decrypted ahead are taken by rd_link_read_available itself */
			rc = rd_link_read_available(b->l);
			while (rc == 0 && (rc = rd_link_next(b->l, &f)) == 0)
				on_frame(b, &f);
			if (rc != RD_ERR_INCOMPLETE) {
				b->dead = 1;
				epoll_ctl(ep, EPOLL_CTL_DEL, b->fd, NULL);
			}
		}
	}
	return NULL;
}

static void *sender_main(void *arg)
{
	int s = (int)(intptr_t)arg;
	struct bot *b = &bots[s];
	uint8_t *data = calloc(1, (size_t)opt.size);
	struct rd_msg m;
	if (!data)
		return NULL;
	uint64_t t0 = now_ns();
	for (int i = 0; i < opt.messages && !atomic_load(&stop_flag); i++) {
		if (opt.rate > 0) { /* paced: message i leaves at t0 + i / rate */
			uint64_t due = t0 + (uint64_t)((double)i * 1e9 / opt.rate);
			uint64_t now = now_ns();
			if (due > now) {
				struct timespec ts = {
					.tv_sec = (time_t)((due - now) / 1000000000ull),
					.tv_nsec = (long)((due - now) % 1000000000ull)
				};
				nanosleep(&ts, NULL);
			}
		}
		/* flow control: at most `window` messages not yet seen by the observer; a
		 * sender that waits long sleeps, longer and longer (50 us doubling up to 2 ms),
		 * so that it leaves the CPU to the receiver and the server (2 cores): 200
		 * senders waking every 50 us while the server coalesced its writes for 10 ms
		 * took both cores in the kernel and starved the very threads they waited for */
		long nap = 50000;
		for (int spins = 0;
		     (int)(i - atomic_load(&last_seen[s])) > opt.window && !atomic_load(&stop_flag);
		     spins++) {
			if (spins < 64) {
				sched_yield();
			} else {
				struct timespec ts = { .tv_sec = 0, .tv_nsec = nap };
				nanosleep(&ts, NULL);
				nap = nap < 2000000 ? nap * 2 : 2000000;
			}
		}
		rd_be32_put(data, (uint32_t)s);
		rd_be32_put(data + 4, (uint32_t)i);
		rd_be64_put(data + 8, now_ns());
		rd_msg_init(&m, RD_MSG_SAY);
		m.u.say.kind = RD_KIND_BINARY;
		m.u.say.data.p = data;
		m.u.say.data.n = (size_t)opt.size;
		if (send_msg(b, &m, 0) != 0)
			break;
	}
	free(data);
	return NULL;
}

enum {
	SETUP_THREADS = 8
};
static atomic_int setup_next, setup_failed;
static int setup_ep;

/* Set up bots (not the stalled ones) until none is left or one failed. */
static void *setup_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&setup_failed)) {
		int i = atomic_fetch_add(&setup_next, 1);
		if (i >= opt.clients)
			break;
		struct bot *b = &bots[i];
		int rc = setup_bot(b, i, opt.prefix);
		if (rc != 0) {
			fprintf(stderr, "loadbot: client %d cannot connect/register: %s\n", i,
				rd_strerror(rc));
			atomic_store(&setup_failed, 1);
			break;
		}
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = b };
		epoll_ctl(setup_ep, EPOLL_CTL_ADD, b->fd, &ev);
	}
	return NULL;
}

/* CPU time (user + system) of a process, in seconds, from /proc; -1 if unknown. */
static double proc_cpu_seconds(int pid)
{
	char path[64], buf[1024];
	FILE *f;
	unsigned long ut = 0, st = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!(f = fopen(path, "r")))
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* the command name may contain spaces */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* One item of a comma list: a port, or a process id. */
static int port_item(const char *s, int *v)
{
	uint16_t port;
	if (rd_net_parse_port(s, &port) != 0)
		return -1;
	*v = port;
	return 0;
}

static int pid_item(const char *s, int *v)
{
	char *end;
	long n = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || n <= 0 || n > 0x7fffffff)
		return -1;
	*v = (int)n;
	return 0;
}

/* Append the items of the comma list s to out (n of them so far, max at most); -1 on a
 * bad item or too many. Repeating the option appends. */
static int parse_list(const char *s, int (*item)(const char *, int *), int *out, int *n, int max)
{
	char buf[256];
	if (strlen(s) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (*n >= max || item(t, &out[*n]) != 0)
			return -1;
		(*n)++;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* With several servers: the latency percentiles of receivers on the sender's server (near)
 * and on another (far: the message crossed the cluster's bus), from the first nl samples. */
static void print_near_far(size_t nl)
{
	uint64_t *v = malloc(nl * sizeof(*v));
	if (!v)
		return;
	for (int far = 0; far <= 1; far++) {
		size_t n = 0;
		for (size_t i = 0; i < nl; i++)
			if (lat_far[i] == far)
				v[n++] = lat_us[i];
		if (n == 0)
			continue;
		qsort(v, n, sizeof(*v), cmp_u64);
		printf("latency_%s_p50_us=%llu latency_%s_p99_us=%llu\n", far ? "far" : "near",
		       (unsigned long long)v[n / 2], far ? "far" : "near",
		       (unsigned long long)v[n * 99 / 100]);
	}
	free(v);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = { { "host", required_argument, NULL, 'H' },
					    { "port", required_argument, NULL, 'p' },
					    { "clients", required_argument, NULL, 'n' },
					    { "senders", required_argument, NULL, 's' },
					    { "messages", required_argument, NULL, 'm' },
					    { "size", required_argument, NULL, 'z' },
					    { "room", required_argument, NULL, 'r' },
					    { "window", required_argument, NULL, 'w' },
					    { "stalled", required_argument, NULL, 'k' },
					    { "idle", required_argument, NULL, 'i' },
					    { "timeout", required_argument, NULL, 't' },
					    { "quiet", no_argument, NULL, 'q' },
					    { "server-pid", required_argument, NULL, 'P' },
					    { "rate", required_argument, NULL, 'R' },
					    { "plain", no_argument, NULL, 'x' },
					    { "rooms", required_argument, NULL, 'o' },
					    { "nick-prefix", required_argument, NULL, 'N' },
					    { NULL, 0, NULL, 0 } };
	int ch, ep;
	pthread_t rth, *sth;
	struct rlimit rl;

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'H':
			opt.host = optarg;
			break;
		case 'p':
			if (parse_list(optarg, port_item, opt.ports, &opt.nports, PORTS_MAX) != 0)
				return 2;
			break;
		case 'n':
			opt.clients = atoi(optarg);
			break;
		case 's':
			opt.senders = atoi(optarg);
			break;
		case 'm':
			opt.messages = atoi(optarg);
			break;
		case 'z':
			opt.size = atoi(optarg);
			break;
		case 'r':
			opt.room = optarg;
			break;
		case 'w':
			opt.window = atoi(optarg);
			break;
		case 'k':
			opt.stalled = atoi(optarg);
			break;
		case 'i':
			opt.idle_s = atoi(optarg);
			break;
		case 't':
			opt.timeout_s = atoi(optarg);
			break;
		case 'q':
			opt.quiet = 1;
			break;
		case 'P':
			if (parse_list(optarg, pid_item, opt.server_pids, &opt.npids, PIDS_MAX) !=
			    0)
				return 2;
			break;
		case 'R':
			opt.rate = atof(optarg);
			break;
		case 'x':
			opt.plain = 1;
			break;
		case 'o':
			opt.rooms = atoi(optarg);
			break;
		case 'N':
			opt.prefix = optarg;
			break;
		default:
			return 2;
		}
	}
	if (!opt.nports || opt.clients < 2 || opt.senders < 0 || opt.senders > opt.clients ||
	    opt.size < 16 || opt.size > 65536 || opt.window < 1 || opt.rooms < 1 ||
	    opt.prefix[0] == '\0' || strlen(opt.prefix) > 20 ||
	    (opt.rooms > 1 && opt.senders > 0)) {
		fprintf(stderr, "loadbot: bad arguments\n");
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	rd_net_ignore_sigpipe();
	if (!opt.plain && rd_tls_ctx_client_new(NULL, NULL, 0, &tls_ctx) != 0) {
		fprintf(stderr, "loadbot: cannot make a TLS client context\n");
		return 1;
	}
	bots = calloc((size_t)opt.clients + (size_t)opt.stalled, sizeof(*bots));
	last_seen = calloc((size_t)opt.senders + 1, sizeof(*last_seen));
	/* room for every sample of the run (every 8th delivery from 1000 messages on), so that
	 * the percentiles cover all of it, not its first part; at most 4M samples (36 MB) */
	uint64_t all = (uint64_t)opt.clients * (uint64_t)opt.senders * (uint64_t)opt.messages;
	lat_cap =
		(size_t)(opt.messages < 1000 ? all : all / 8 + (uint64_t)opt.clients * opt.senders);
	lat_cap = lat_cap < 1024 ? 1024 : lat_cap > (1u << 22) ? (1u << 22) : lat_cap;
	lat_us = calloc(lat_cap, sizeof(*lat_us));
	lat_far = calloc(lat_cap, 1);
	ep = epoll_create1(0);
	if (!bots || !last_seen || !lat_us || !lat_far || ep < 0)
		return 1;

	/* the receiver runs during setup so presence notices are drained as they come */
	if (pthread_create(&rth, NULL, receiver_main, &ep) != 0)
		return 1;
	uint64_t t0 = now_ns();
	/* the bots register SETUP_THREADS at a time: every registration is announced to every
	 * registered client, and notices that come together leave the server in one write */
	pthread_t setup_th[SETUP_THREADS];
	int nsetup = 0;
	setup_ep = ep;
	for (; nsetup < SETUP_THREADS && nsetup < opt.clients; nsetup++)
		if (pthread_create(&setup_th[nsetup], NULL, setup_main, NULL) != 0)
			break;
	for (int k = 0; k < nsetup; k++)
		pthread_join(setup_th[k], NULL);
	int failed = nsetup == 0 ? 0 : atomic_load(&setup_failed);
	/* stalled bots last, one by one: they must not miss the bots registered after them */
	for (int i = opt.clients; failed == 0 && i < opt.clients + opt.stalled; i++) {
		int rc = setup_bot(&bots[i], i, "stall");
		int small = 4096; /* a stalled reader: tiny buffers, never read */
		if (rc != 0) {
			fprintf(stderr, "loadbot: client %d cannot connect/register: %s\n", i,
				rd_strerror(rc));
			failed = 1;
			break;
		}
		setsockopt(bots[i].fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	}
	if (nsetup == 0 || failed) {
		atomic_store(&stop_flag, 1);
		pthread_join(rth, NULL);
		return 3;
	}
	double setup_s = (double)(now_ns() - t0) / 1e9;
	if (!opt.quiet)
		printf("setup_seconds=%.2f clients=%d stalled=%d\n", setup_s, opt.clients,
		       opt.stalled);
	fflush(stdout);

	if (opt.idle_s > 0) {
		printf("idle=ready\n");
		fflush(stdout);
		sleep((unsigned)opt.idle_s);
		atomic_store(&stop_flag, 1);
		pthread_join(rth, NULL);
		int alive = 0;
		for (int i = 0; i < opt.clients; i++)
			alive += !bots[i].dead;
		printf("idle_connected=%d\n", alive); /* bots the server did not drop */
		fflush(stdout);
		for (int i = 0; i < opt.clients + opt.stalled; i++) {
			rd_link_free(bots[i].l);
			free(bots[i].next_seq);
		}
		free(bots);
		free(lat_us);
		free(lat_far);
		free((void *)last_seen);
		return 0;
	}

	sth = calloc((size_t)opt.senders + 1, sizeof(*sth));
	usleep(200000); /* let setup traffic (presence notices) drain before measuring */
	double cpu0[PIDS_MAX], cpu1[PIDS_MAX];
	for (int k = 0; k < opt.npids; k++)
		cpu0[k] = proc_cpu_seconds(opt.server_pids[k]);
	uint64_t start = now_ns();
	for (int s = 0; s < opt.senders; s++)
		pthread_create(&sth[s], NULL, sender_main, (void *)(intptr_t)s);
	uint64_t expected = 0;
	for (int i = 0; i < opt.clients; i++)
		expected += (uint64_t)opt.messages * (uint64_t)(opt.senders - (i < opt.senders));
	uint64_t deadline = start + (uint64_t)opt.timeout_s * 1000000000ull;
	while (atomic_load(&delivered) < expected && now_ns() < deadline)
		usleep(1000);
	uint64_t end = now_ns();
	for (int k = 0; k < opt.npids; k++)
		cpu1[k] = proc_cpu_seconds(opt.server_pids[k]);
	atomic_store(&stop_flag, 1);
	for (int s = 0; s < opt.senders; s++)
		pthread_join(sth[s], NULL);
	pthread_join(rth, NULL);

	/* exactness per receiver */
	uint64_t missing = 0;
	for (int i = 0; i < opt.clients; i++)
		for (int s = 0; s < opt.senders; s++)
			if (s != i && bots[i].next_seq[s] != (uint32_t)opt.messages)
				missing += (uint64_t)opt.messages - bots[i].next_seq[s];
	double secs = (double)(end - start) / 1e9;
	size_t nl = atomic_load(&nlat);
	if (nl > lat_cap)
		nl = lat_cap;
	if (opt.nports > 1 && nl)
		print_near_far(nl);
	qsort(lat_us, nl, sizeof(*lat_us), cmp_u64);
	printf("deliveries=%llu expected=%llu missing=%llu duplicates=%llu out_of_order=%llu\n",
	       (unsigned long long)atomic_load(&delivered), (unsigned long long)expected,
	       (unsigned long long)missing, (unsigned long long)atomic_load(&errors_dup),
	       (unsigned long long)atomic_load(&errors_order));
	printf("seconds=%.3f deliveries_per_second=%.0f\n", secs,
	       secs > 0 ? (double)atomic_load(&delivered) / secs : 0.0);
	double cpu = 0;
	int cpu_known = opt.npids > 0;
	for (int k = 0; k < opt.npids; k++) {
		if (cpu0[k] < 0 || cpu1[k] < 0)
			cpu_known = 0;
		cpu += cpu1[k] - cpu0[k];
		if (opt.npids > 1)
			printf("cpu_seconds_pid_%d=%.2f\n", opt.server_pids[k], cpu1[k] - cpu0[k]);
	}
	if (cpu_known && atomic_load(&delivered))
		printf("server_cpu_seconds=%.2f server_cpu_us_per_delivery=%.3f\n", cpu,
		       cpu * 1e6 / (double)atomic_load(&delivered));
	if (nl)
		printf("latency_p50_us=%llu latency_p99_us=%llu latency_max_us=%llu\n",
		       (unsigned long long)lat_us[nl / 2],
		       (unsigned long long)lat_us[nl * 99 / 100],
		       (unsigned long long)lat_us[nl - 1]);
	fflush(stdout);
	for (int i = 0; i < opt.clients + opt.stalled; i++) {
		rd_link_free(bots[i].l);
		free(bots[i].next_seq);
	}
	free(bots);
	free(sth);
	free(lat_us);
	free(lat_far);
	free((void *)last_seen);
	close(ep);
	int ok = missing == 0 && atomic_load(&errors_dup) == 0 && atomic_load(&errors_order) == 0 &&
		 atomic_load(&delivered) == expected;
	return ok ? 0 : 1;
}
