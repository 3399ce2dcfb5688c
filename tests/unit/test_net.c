/* test_net.c - address parsing, listen/accept/connect on 127.0.0.1 with ephemeral ports,
 * full reads and writes, deadlines, peer close without SIGPIPE, sendfile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "rd_err.h"
#include "rd_net.h"

#define LOOP "127.0.0.1"
#define WAIT_MS 5000  /* upper bound on any wait that is expected to succeed */
#define WATCHDOG_S 30 /* no single test may take longer */
#define CONN_MAX 64
#define CONN_TIMEOUT 200
#define BIG (4 * 1024 * 1024 + 3)        /* far above the default socket buffers */
#define STALL (8 * 1024 * 1024)          /* more than any buffers can absorb */
#define FILE_SIZE (3 * 1024 * 1024 + 11) /* several sendfile chunks and a tail */
#define FILE_OFF 1001

/* ---- helpers ------------------------------------------------------------------------- */

struct pair {
	int lfd; /* listener */
	int cfd; /* client end (from rd_net_connect) */
	int sfd; /* server end (from rd_net_accept) */
	uint16_t port;
};

static void pair_open(struct pair *p)
{
	p->lfd = p->cfd = p->sfd = -1;
	assert_int_equal(rd_net_listen(LOOP, 0, 8, &p->lfd, &p->port), 0);
	assert_int_equal(rd_net_connect(LOOP, p->port, WAIT_MS, &p->cfd), 0);
	assert_int_equal(rd_net_wait(p->lfd, POLLIN, WAIT_MS), 0);
	assert_int_equal(rd_net_accept(p->lfd, &p->sfd, NULL, 0, NULL), 0);
}

static void pair_close(struct pair *p)
{
	if (p->lfd >= 0)
		close(p->lfd);
	if (p->cfd >= 0)
		close(p->cfd);
	if (p->sfd >= 0)
		close(p->sfd);
	p->lfd = p->cfd = p->sfd = -1;
}

/* Small kernel buffers so that a peer that does not read stalls a writer quickly. */
static void pair_small_bufs(struct pair *p)
{
	assert_int_equal(rd_net_set_bufs(p->cfd, 4096, 4096), 0);
	assert_int_equal(rd_net_set_bufs(p->sfd, 4096, 4096), 0);
}

static uint8_t pattern_byte(size_t i)
{
	return (uint8_t)((i * 131u) ^ (i >> 9));
}

static uint8_t *pattern(size_t n)
{
	uint8_t *b = malloc(n ? n : 1);
	size_t i;

	assert_non_null(b);
	for (i = 0; i < n; i++)
		b[i] = pattern_byte(i);
	return b;
}

struct writer {
	int fd;
	const void *p;
	size_t n;
	int rc;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	w->rc = rd_net_write_all(w->fd, w->p, w->n, WAIT_MS);
	return NULL;
}

/* ---- address parsing ----------------------------------------------------------------- */

static void test_parse_port_table(void **state)
{
	static const struct {
		const char *s;
		int rc;
		uint16_t port;
	} t[] = {
		{ "1", 0, 1 },
		{ "80", 0, 80 },
		{ "7878", 0, 7878 },
		{ "65535", 0, 65535 },
		{ "0080", 0, 80 }, /* still decimal digits only */
		{ "0", RD_ERR_INVAL, 0 },
		{ "00000", RD_ERR_INVAL, 0 },
		{ "65536", RD_ERR_INVAL, 0 },
		{ "99999999999999999999999", RD_ERR_INVAL, 0 },
		{ "-1", RD_ERR_INVAL, 0 },
		{ "+80", RD_ERR_INVAL, 0 },
		{ "12a", RD_ERR_INVAL, 0 },
		{ "0x50", RD_ERR_INVAL, 0 },
		{ "", RD_ERR_INVAL, 0 },
		{ " 80", RD_ERR_INVAL, 0 },
		{ "80 ", RD_ERR_INVAL, 0 },
		{ "8 0", RD_ERR_INVAL, 0 },
		{ "80\n", RD_ERR_INVAL, 0 },
	};
	size_t i;
	uint16_t port;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		port = 4242;
		rc = rd_net_parse_port(t[i].s, &port);
		if (rc != t[i].rc || port != t[i].port)
			fail_msg("port case %zu \"%s\": rc %d port %u, want rc %d port %u", i,
				 t[i].s, rc, port, t[i].rc, t[i].port);
	}
	assert_int_equal(rd_net_parse_port(NULL, &port), RD_ERR_INVAL);
	assert_int_equal(port, 0);
}

static void test_parse_hostport_table(void **state)
{
	static const struct {
		const char *s;
		int rc;
		const char *host;
		uint16_t port;
	} t[] = {
		{ "example.org:80", 0, "example.org", 80 },
		{ "10.1.2.3:65535", 0, "10.1.2.3", 65535 },
		{ "localhost", 0, "localhost", 7000 },
		{ "[::1]:80", 0, "::1", 80 },
		{ "[fe80::1%eth0]:9", 0, "fe80::1%eth0", 9 },
		{ "[::1]", 0, "::1", 7000 },
		{ "::1", 0, "::1", 7000 }, /* bare v6 address: no port possible */
		{ ":9000", 0, RD_DEFAULT_HOST, 9000 },
		{ "host:", RD_ERR_ADDR, "", 0 }, /* missing port */
		{ "[::1]:", RD_ERR_ADDR, "", 0 },
		{ "host:0", RD_ERR_ADDR, "", 0 },
		{ "host:65536", RD_ERR_ADDR, "", 0 },
		{ "host:-1", RD_ERR_ADDR, "", 0 },
		{ "host:8a", RD_ERR_ADDR, "", 0 },
		{ "host: 80", RD_ERR_ADDR, "", 0 },
		{ "", RD_ERR_ADDR, "", 0 },
		{ ":", RD_ERR_ADDR, "", 0 },
		{ "[::1", RD_ERR_ADDR, "", 0 },
		{ "[::1]80", RD_ERR_ADDR, "", 0 },
		{ "[]:80", RD_ERR_ADDR, "", 0 },
		{ "[host]:80", RD_ERR_ADDR, "", 0 }, /* brackets are for v6 only */
		{ "::1:80", 0, "::1:80", 7000 },     /* a bare v6 address never carries a port */
		{ "a b:80", RD_ERR_ADDR, "", 0 },
		{ "a\n:80", RD_ERR_ADDR, "", 0 },
		{ "a/b:80", RD_ERR_ADDR, "", 0 },
	};
	char host[64];
	size_t i;
	uint16_t port;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(host, 'Z', sizeof(host));
		port = 4242;
		rc = rd_net_parse_hostport(t[i].s, 7000, host, sizeof(host), &port);
		if (rc != t[i].rc || port != t[i].port || strcmp(host, t[i].host) != 0)
			fail_msg("hostport case %zu \"%s\": rc %d host \"%s\" port %u", i, t[i].s,
				 rc, host, port);
	}
	/* A host that does not fit is an error, never a shorter, different host. */
	assert_int_equal(rd_net_parse_hostport("abcdefgh:80", 1, host, 8, &port), RD_ERR_ADDR);
	assert_string_equal(host, "");
	assert_int_equal(rd_net_parse_hostport("abcdefg:80", 1, host, 8, &port), 0);
	assert_string_equal(host, "abcdefg");
	assert_int_equal(port, 80);
}

/* ---- listen / accept / connect ------------------------------------------------------- */

static void test_listen_ephemeral_then_port_in_use(void **state)
{
	int a = -1, b = -1;
	uint16_t pa = 0, pb = 7, lport = 0;
	char ip[64];

	(void)state;
	assert_int_equal(rd_net_listen(LOOP, 0, 4, &a, &pa), 0);
	assert_true(a >= 0);
	assert_int_not_equal(pa, 0);
	assert_int_equal(rd_net_local(a, ip, sizeof(ip), &lport), 0);
	assert_string_equal(ip, LOOP);
	assert_int_equal(lport, pa);
	assert_true(fcntl(a, F_GETFD) & FD_CLOEXEC);

	assert_int_equal(rd_net_listen(LOOP, pa, 4, &b, &pb), RD_ERR_ADDR_IN_USE);
	assert_int_equal(b, -1);
	assert_int_equal(pb, 0);
	close(a);
}

static void test_listen_and_connect_reject_bad_arguments(void **state)
{
	int fd = 5;
	uint16_t port = 5;

	(void)state;
	assert_int_equal(rd_net_listen(LOOP, 0, 4, NULL, &port), RD_ERR_INVAL);
	assert_int_equal(port, 0);
	assert_int_equal(rd_net_connect(LOOP, 0, 100, &fd), RD_ERR_INVAL);
	assert_int_equal(fd, -1);
	/* poll() would silently skip a negative descriptor and wait forever */
	assert_int_equal(rd_net_wait(-1, POLLIN, -1), RD_ERR_INVAL);
}

static void test_accept_reports_peer_and_connect_sets_options(void **state)
{
	struct pair p;
	char ip[64], ip2[64];
	uint16_t port = 0, cport = 0, sport = 0;
	int v = 0;
	socklen_t len = sizeof(v);

	(void)state;
	p.lfd = p.cfd = p.sfd = -1;
	assert_int_equal(rd_net_listen(LOOP, 0, 8, &p.lfd, &p.port), 0);
	assert_int_equal(rd_net_connect(LOOP, p.port, WAIT_MS, &p.cfd), 0);
	assert_int_equal(rd_net_wait(p.lfd, POLLIN, WAIT_MS), 0);
	assert_int_equal(rd_net_accept(p.lfd, &p.sfd, ip, sizeof(ip), &port), 0);
	assert_string_equal(ip, LOOP);

	/* the accepted peer is the connecting socket */
	assert_int_equal(rd_net_local(p.cfd, ip2, sizeof(ip2), &cport), 0);
	assert_int_equal(port, cport);
	assert_int_equal(rd_net_peer(p.cfd, ip2, sizeof(ip2), &sport), 0);
	assert_string_equal(ip2, LOOP);
	assert_int_equal(sport, p.port);

	/* connect returns a blocking, close-on-exec socket with TCP_NODELAY */
	assert_int_equal(fcntl(p.cfd, F_GETFL) & O_NONBLOCK, 0);
	assert_true(fcntl(p.cfd, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(p.sfd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(getsockopt(p.cfd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
	assert_int_not_equal(v, 0);
	assert_int_equal(rd_net_set_nodelay(p.cfd, 0), 0);
	assert_int_equal(getsockopt(p.cfd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
	assert_int_equal(v, 0);

	/* an address that does not fit the caller's buffer is refused, not cut */
	assert_int_equal(rd_net_peer(p.cfd, ip2, 4, &sport), RD_ERR_INVAL);
	assert_string_equal(ip2, "");
	assert_int_equal(sport, 0);
	pair_close(&p);
}

static void test_connect_to_closed_port_is_refused(void **state)
{
	int l = -1, fd = 5;
	uint16_t port = 0;
	uint64_t t0;

	(void)state;
	/* Take an ephemeral port and free it: nothing listens there now. */
	assert_int_equal(rd_net_listen(LOOP, 0, 1, &l, &port), 0);
	close(l);
	t0 = rd_now_mono_ms();
	assert_int_equal(rd_net_connect(LOOP, port, WAIT_MS, &fd), RD_ERR_REFUSED);
	assert_int_equal(fd, -1);
	assert_true(rd_now_mono_ms() - t0 < WAIT_MS);
}

/* The non-blocking connect: in progress at once, then connected or refused after POLLOUT;
 * names are refused (no lookup, which could block). */
static void test_connect_start_finish(void **state)
{
	int l = -1, fd = 5, done = 7, afd = -1, fl, rc;
	uint16_t port = 0;

	(void)state;
	assert_int_equal(rd_net_connect_start("localhost", 80, &fd, &done), RD_ERR_ADDR);
	assert_int_equal(fd, -1);
	assert_int_equal(done, 0);
	assert_int_equal(rd_net_connect_start(LOOP, 0, &fd, &done), RD_ERR_INVAL);

	assert_int_equal(rd_net_listen(LOOP, 0, 1, &l, &port), 0);
	assert_int_equal(rd_net_connect_start(LOOP, port, &fd, &done), 0);
	assert_true(fd >= 0);
	fl = fcntl(fd, F_GETFL);
	assert_true(fl >= 0 && (fl & O_NONBLOCK));
	assert_int_equal(rd_net_wait(fd, POLLOUT, WAIT_MS), 0);
	assert_int_equal(rd_net_connect_finish(fd), 0);
	assert_int_equal(rd_net_accept(l, &afd, NULL, 0, NULL), 0);
	close(afd);
	close(fd);

	close(l); /* nothing listens there now: refused at once, or after POLLOUT */
	rc = rd_net_connect_start(LOOP, port, &fd, &done);
	if (rc == 0) {
		assert_int_equal(rd_net_wait(fd, POLLOUT, WAIT_MS), 0);
		assert_int_equal(rd_net_connect_finish(fd), RD_ERR_REFUSED);
		close(fd);
	} else {
		assert_int_equal(rc, RD_ERR_REFUSED);
		assert_int_equal(fd, -1);
	}
}

static void test_connect_times_out_on_full_backlog(void **state)
{
	int l = -1, fds[CONN_MAX], n = 0, rc = 0, i;
	uint16_t port = 0;
	uint64_t t0 = 0, took = 0;

	(void)state;
	/* Linux drops SYNs for a listener whose accept queue is full, so with nobody
	 * accepting, one of the next connects waits until its deadline. */
	assert_int_equal(rd_net_listen(LOOP, 0, 1, &l, &port), 0);
	for (i = 0; i < CONN_MAX; i++) {
		t0 = rd_now_mono_ms();
		rc = rd_net_connect(LOOP, port, CONN_TIMEOUT, &fds[n]);
		took = rd_now_mono_ms() - t0;
		if (rc != 0)
			break;
		n++;
	}
	for (i = 0; i < n; i++)
		close(fds[i]);
	close(l);
	assert_int_equal(rc, RD_ERR_TIMEOUT);
	assert_true(took >= CONN_TIMEOUT - 10);
	assert_true(took < CONN_TIMEOUT + 2000);
}

/* ---- reads, writes, waits ------------------------------------------------------------ */

static void test_write_all_read_full_large_transfer(void **state)
{
	struct pair p;
	struct writer w;
	pthread_t th;
	uint8_t *src = pattern(BIG), *dst = malloc(BIG);

	(void)state;
	assert_non_null(dst);
	pair_open(&p);
	/* 4 MiB is far above the socket buffers: many partial sends and EAGAIN rounds.
	 * (Tiny buffers would make loopback crawl on delayed ACKs.) */
	w.fd = p.cfd;
	w.p = src;
	w.n = BIG;
	w.rc = 1;
	assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
	assert_int_equal(rd_net_read_full(p.sfd, dst, BIG, WAIT_MS), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.rc, 0);
	assert_memory_equal(src, dst, BIG);
	pair_close(&p);
	free(src);
	free(dst);
}

static void test_read_full_eof_cases(void **state)
{
	struct pair p;
	char buf[16];

	(void)state;
	pair_open(&p);
	assert_int_equal(rd_net_write_all(p.cfd, "abc", 3, WAIT_MS), 0);
	assert_int_equal(shutdown(p.cfd, SHUT_WR), 0);
	/* EOF after some bytes: the stream lied about what was coming */
	assert_int_equal(rd_net_read_full(p.sfd, buf, 10, WAIT_MS), RD_ERR_MALFORMED);
	assert_memory_equal(buf, "abc", 3);
	/* EOF before the first byte: a clean close */
	assert_int_equal(rd_net_read_full(p.sfd, buf, 10, WAIT_MS), RD_ERR_CLOSED);
	assert_int_equal(rd_net_read_full(p.sfd, buf, 0, WAIT_MS), 0);
	pair_close(&p);
}

static void test_read_some_and_timeouts(void **state)
{
	struct pair p;
	char buf[16];
	size_t got = 99;
	uint64_t t0, took;

	(void)state;
	pair_open(&p);
	t0 = rd_now_mono_ms();
	assert_int_equal(rd_net_read_some(p.sfd, buf, sizeof(buf), 150, &got), RD_ERR_TIMEOUT);
	took = rd_now_mono_ms() - t0;
	assert_int_equal(got, 0);
	assert_true(took >= 140 && took < 2000);

	t0 = rd_now_mono_ms();
	assert_int_equal(rd_net_read_full(p.sfd, buf, 1, 100), RD_ERR_TIMEOUT);
	took = rd_now_mono_ms() - t0;
	assert_true(took >= 90 && took < 2000);

	assert_int_equal(rd_net_write_all(p.cfd, "hello", 5, WAIT_MS), 0);
	assert_int_equal(rd_net_read_some(p.sfd, buf, sizeof(buf), WAIT_MS, &got), 0);
	assert_true(got >= 1 && got <= 5);
	assert_memory_equal(buf, "hello", got);
	assert_int_equal(rd_net_read_some(p.sfd, buf, 0, WAIT_MS, &got), RD_ERR_INVAL);

	close(p.cfd);
	p.cfd = -1;
	/* drain what is left, then EOF */
	while (rd_net_read_some(p.sfd, buf, sizeof(buf), WAIT_MS, &got) == 0)
		;
	assert_int_equal(rd_net_read_some(p.sfd, buf, sizeof(buf), WAIT_MS, &got), RD_ERR_CLOSED);
	pair_close(&p);
}

static void test_wait_times_out_then_sees_data(void **state)
{
	struct pair p;
	uint64_t t0, took;
	int closed;

	(void)state;
	pair_open(&p);
	t0 = rd_now_mono_ms();
	assert_int_equal(rd_net_wait(p.sfd, POLLIN, 120), RD_ERR_TIMEOUT);
	took = rd_now_mono_ms() - t0;
	assert_true(took >= 110 && took < 2000);
	assert_int_equal(rd_net_wait(p.sfd, POLLIN, 0), RD_ERR_TIMEOUT);
	assert_int_equal(rd_net_wait(p.cfd, POLLOUT, WAIT_MS), 0);
	assert_int_equal(rd_net_write_all(p.cfd, "x", 1, WAIT_MS), 0);
	assert_int_equal(rd_net_wait(p.sfd, POLLIN, WAIT_MS), 0);
	closed = p.sfd;
	pair_close(&p);
	/* a closed descriptor is an error, not "ready" (nothing reopens it meanwhile) */
	assert_int_equal(rd_net_wait(closed, POLLIN, 10), RD_ERR_SYSTEM);
}

static void test_write_all_times_out_on_stalled_reader(void **state)
{
	struct pair p;
	uint8_t *src = pattern(STALL);
	uint64_t t0, took;

	(void)state;
	pair_open(&p);
	pair_small_bufs(&p);
	/* The socket is blocking: the deadline must hold all the same. */
	t0 = rd_now_mono_ms();
	assert_int_equal(rd_net_write_all(p.cfd, src, STALL, 200), RD_ERR_TIMEOUT);
	took = rd_now_mono_ms() - t0;
	assert_true(took >= 190 && took < 2000);
	assert_int_equal(fcntl(p.cfd, F_GETFL) & O_NONBLOCK, 0);
	pair_close(&p);
	free(src);
}

static void test_write_to_closed_peer_is_closed_without_sigpipe(void **state)
{
	struct pair p;
	struct sigaction dfl, old;
	char chunk[65536];
	int rc = 0, i;

	(void)state;
	/* Default SIGPIPE action: a send without MSG_NOSIGNAL would kill this test. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);

	memset(chunk, 'p', sizeof(chunk));
	pair_open(&p);
	close(p.sfd);
	p.sfd = -1;
	/* The first writes may still be accepted by the kernel; the RST soon follows. */
	for (i = 0; i < 200 && rc == 0; i++)
		rc = rd_net_write_all(p.cfd, chunk, sizeof(chunk), WAIT_MS);
	assert_int_equal(rc, RD_ERR_CLOSED);
	assert_int_equal(rd_net_write_all(p.cfd, chunk, 1, WAIT_MS), RD_ERR_CLOSED);
	pair_close(&p);
	assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
}

/* ---- sendfile -------------------------------------------------------------------------- */

static int temp_file_with(const uint8_t *p, size_t n)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/rd_test_net_XXXXXX",
		 dir != NULL && dir[0] != '\0' ? dir : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	return fd;
}

struct sf_job {
	int sock, in_fd;
	off_t off;
	size_t n;
	int rc;
};

static void *sendfile_main(void *arg)
{
	struct sf_job *j = arg;

	j->rc = rd_net_sendfile_all(j->sock, j->in_fd, j->off, j->n, WAIT_MS);
	return NULL;
}

static void test_sendfile_all_range_of_temp_file(void **state)
{
	uint8_t *src = pattern(FILE_SIZE), *dst = malloc(FILE_SIZE);
	struct pair p;
	struct sf_job j;
	pthread_t th;
	int fd;

	(void)state;
	assert_non_null(dst);
	rd_net_ignore_sigpipe();
	fd = temp_file_with(src, FILE_SIZE);
	pair_open(&p);
	j.sock = p.cfd;
	j.in_fd = fd;
	j.off = FILE_OFF;
	j.n = FILE_SIZE - FILE_OFF;
	j.rc = 1;
	assert_int_equal(pthread_create(&th, NULL, sendfile_main, &j), 0);
	assert_int_equal(rd_net_read_full(p.sfd, dst, FILE_SIZE - FILE_OFF, WAIT_MS), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(j.rc, 0);
	assert_memory_equal(dst, src + FILE_OFF, FILE_SIZE - FILE_OFF);
	/* the file offset is untouched */
	assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)FILE_SIZE);

	/* asking for more than the file holds */
	assert_int_equal(rd_net_sendfile_all(p.cfd, fd, FILE_SIZE - 5, 10, WAIT_MS),
			 RD_ERR_MISMATCH);
	assert_int_equal(rd_net_read_full(p.sfd, dst, 5, WAIT_MS), 0);
	assert_memory_equal(dst, src + FILE_SIZE - 5, 5);
	assert_int_equal(rd_net_sendfile_all(p.cfd, fd, 0, 0, WAIT_MS), 0);
	pair_close(&p);
	close(fd);
	free(src);
	free(dst);
}

static void test_sendfile_all_times_out_on_stalled_reader(void **state)
{
	uint8_t *src = pattern(STALL);
	struct pair p;
	struct timeval tv = { 0, 0 };
	socklen_t len = sizeof(tv);
	uint64_t t0, took;
	int fd;

	(void)state;
	fd = temp_file_with(src, STALL);
	pair_open(&p);
	pair_small_bufs(&p);
	t0 = rd_now_mono_ms();
	assert_int_equal(rd_net_sendfile_all(p.cfd, fd, 0, STALL, 200), RD_ERR_TIMEOUT);
	took = rd_now_mono_ms() - t0;
	assert_true(took >= 190 && took < 2000);
	/* the socket's own send timeout is left as it was (none) */
	assert_int_equal(getsockopt(p.cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len), 0);
	assert_int_equal(tv.tv_sec, 0);
	assert_int_equal(tv.tv_usec, 0);

	/* the same on a non-blocking socket */
	assert_int_equal(rd_net_set_nonblock(p.cfd, 1), 0);
	assert_int_equal(rd_net_sendfile_all(p.cfd, fd, 0, STALL, 100), RD_ERR_TIMEOUT);
	assert_true(fcntl(p.cfd, F_GETFL) & O_NONBLOCK);
	pair_close(&p);
	close(fd);
	free(src);
}

/* sendfile() has no MSG_NOSIGNAL: with SIGPIPE at its default action (which kills), a
 * sendfile to a peer that is gone must still return RD_ERR_CLOSED, leave no SIGPIPE
 * pending, and leave the process's disposition and the thread's mask as they were. */
static void test_sendfile_to_closed_peer_without_sigpipe(void **state)
{
	uint8_t *src = pattern(STALL);
	struct pair p;
	struct sigaction dfl, old, now;
	sigset_t mask_before, mask_after, pending;
	int fd, rc = 0;

	(void)state;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);
	assert_int_equal(pthread_sigmask(SIG_SETMASK, NULL, &mask_before), 0);
	fd = temp_file_with(src, STALL);
	pair_open(&p);
	close(p.sfd);
	p.sfd = -1;
	for (int i = 0; i < 200 && rc == 0; i++)
		rc = rd_net_sendfile_all(p.cfd, fd, 0, STALL, WAIT_MS);
	assert_int_equal(rc, RD_ERR_CLOSED);
	assert_int_equal(sigaction(SIGPIPE, NULL, &now), 0);
	assert_true(now.sa_handler == SIG_DFL);
	assert_int_equal(pthread_sigmask(SIG_SETMASK, NULL, &mask_after), 0);
	assert_int_equal(sigismember(&mask_after, SIGPIPE), sigismember(&mask_before, SIGPIPE));
	sigemptyset(&pending);
	assert_int_equal(sigpending(&pending), 0);
	assert_int_equal(sigismember(&pending, SIGPIPE), 0);
	pair_close(&p);
	close(fd);
	free(src);
	assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
}

/* ---- condition variables on the monotonic clock --------------------------------------- */

static void test_cond_wait_until_monotonic_deadline(void **state)
{
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv;
	pthread_condattr_t ca;
	clockid_t clk = CLOCK_REALTIME;
	uint64_t t0, took;

	(void)state;
	assert_int_equal(rd_cond_init_mono(&cv), 0);
	/* the condition variable really runs on CLOCK_MONOTONIC: a deadline in monotonic
	 * milliseconds is honoured, neither at once nor late */
	pthread_mutex_lock(&m);
	t0 = rd_now_mono_ms();
	while (rd_cond_wait_until(&cv, &m, t0 + 150) == 0)
		;
	took = rd_now_mono_ms() - t0;
	pthread_mutex_unlock(&m);
	assert_true(took >= 150 && took < 3000);
	/* a deadline already past returns at once */
	pthread_mutex_lock(&m);
	assert_int_equal(rd_cond_wait_until(&cv, &m, rd_now_mono_ms() - 1), RD_ERR_TIMEOUT);
	pthread_mutex_unlock(&m);
	pthread_cond_destroy(&cv);
	/* (what pthread_cond_init with the attribute would have said) */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_condattr_getclock(&ca, &clk);
	assert_int_equal(clk, CLOCK_MONOTONIC);
	pthread_condattr_destroy(&ca);
}

/* ---- odds and ends ------------------------------------------------------------------- */

static void test_ignore_sigpipe_is_idempotent(void **state)
{
	struct sigaction sa;

	(void)state;
	rd_net_ignore_sigpipe();
	rd_net_ignore_sigpipe();
	assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
	assert_true(sa.sa_handler == SIG_IGN);
}

static void test_clocks(void **state)
{
	uint64_t a, b, wall;
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	(void)state;
	a = rd_now_mono_ms();
	nanosleep(&ts, NULL);
	b = rd_now_mono_ms();
	assert_true(b >= a + 19);
	wall = rd_now_wall_ms();
	assert_true(wall / 1000 + 2 >= (uint64_t)time(NULL));
	assert_true(wall / 1000 <= (uint64_t)time(NULL) + 2);
}

static void test_socket_option_setters(void **state)
{
	struct pair p;
	int v = 0;
	socklen_t len = sizeof(v);

	(void)state;
	pair_open(&p);
	assert_int_equal(rd_net_set_nonblock(p.sfd, 1), 0);
	assert_true(fcntl(p.sfd, F_GETFL) & O_NONBLOCK);
	assert_int_equal(rd_net_set_nonblock(p.sfd, 0), 0);
	assert_int_equal(fcntl(p.sfd, F_GETFL) & O_NONBLOCK, 0);
	assert_int_equal(rd_net_set_bufs(p.sfd, 0, 0), 0);
	assert_int_equal(rd_net_set_bufs(p.sfd, -1, 0), RD_ERR_INVAL);
	assert_int_equal(rd_net_set_bufs(p.sfd, 8192, 0), 0);
	assert_int_equal(getsockopt(p.sfd, SOL_SOCKET, SO_SNDBUF, &v, &len), 0);
	assert_true(v >= 8192); /* Linux doubles the value */
	assert_int_equal(rd_net_set_nodelay(-1, 1), RD_ERR_SYSTEM);
	pair_close(&p);
}

/* A test that hangs (a lost deadline) is killed by SIGALRM instead of stalling the run;
 * cmocka's "[ RUN ]" line shows which one it was. */
static int watchdog_arm(void **state)
{
	(void)state;
	alarm(WATCHDOG_S);
	return 0;
}

static int watchdog_disarm(void **state)
{
	(void)state;
	alarm(0);
	return 0;
}

#define T(f) cmocka_unit_test_setup_teardown(f, watchdog_arm, watchdog_disarm)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_parse_port_table),
		T(test_parse_hostport_table),
		T(test_listen_ephemeral_then_port_in_use),
		T(test_listen_and_connect_reject_bad_arguments),
		T(test_accept_reports_peer_and_connect_sets_options),
		T(test_connect_to_closed_port_is_refused),
		T(test_connect_start_finish),
		T(test_connect_times_out_on_full_backlog),
		T(test_write_all_read_full_large_transfer),
		T(test_read_full_eof_cases),
		T(test_read_some_and_timeouts),
		T(test_wait_times_out_then_sees_data),
		T(test_write_all_times_out_on_stalled_reader),
		T(test_write_to_closed_peer_is_closed_without_sigpipe),
		T(test_sendfile_all_range_of_temp_file),
		T(test_sendfile_all_times_out_on_stalled_reader),
		T(test_sendfile_to_closed_peer_without_sigpipe),
		T(test_cond_wait_until_monotonic_deadline),
		T(test_ignore_sigpipe_is_idempotent),
		T(test_clocks),
		T(test_socket_option_setters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
