/* test_link.c - the link layer: frames both ways over plain and TLS transports, the event
 * bound, bulk flow control with its watermarks, events overtaking queued bulk at frame
 * boundaries, streams from a file after what was queued before them, polite close, kill.
 * Every link pair is a non-blocking socketpair; every wait has a deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "rd_buf.h"
#include "rd_err.h"
#include "rd_frame.h"
#include "rd_link.h"
#include "rd_net.h"
#include "rd_tls.h"

#define WAIT_MS 5000

struct pair {
	struct rd_link *a, *b; /* a writes, b reads (and the other way round) */
	struct rd_tls_identity *srv_id, *cli_id;
	struct rd_tls_ctx *sctx, *cctx;
	char dir[64];
};

struct hs_job {
	struct rd_link *l;
	int rc;
};

static void *handshake_main(void *arg)
{
	struct hs_job *j = arg;
	j->rc = rd_link_handshake(j->l, WAIT_MS);
	return NULL;
}

static void pair_open(struct pair *p, int tls, const struct rd_link_config *cfg)
{
	int fds[2];
	struct rd_tls_conn *ta, *tb;

	memset(p, 0, sizeof(*p));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	if (!tls) {
		assert_int_equal(rd_tls_conn_plain_new(fds[0], &ta), 0);
		assert_int_equal(rd_tls_conn_plain_new(fds[1], &tb), 0);
	} else {
		char c[128], k[128];
		snprintf(p->dir, sizeof(p->dir), "/tmp/rd-link-XXXXXX");
		assert_non_null(mkdtemp(p->dir));
		snprintf(c, sizeof(c), "%s/s.crt", p->dir);
		snprintf(k, sizeof(k), "%s/s.key", p->dir);
		assert_int_equal(rd_tls_identity_ensure(c, k, "server", &p->srv_id, NULL), 0);
		snprintf(c, sizeof(c), "%s/c.crt", p->dir);
		snprintf(k, sizeof(k), "%s/c.key", p->dir);
		assert_int_equal(rd_tls_identity_ensure(c, k, "client", &p->cli_id, NULL), 0);
		assert_int_equal(rd_tls_ctx_server_new(p->srv_id, 0, &p->sctx), 0);
		assert_int_equal(rd_tls_ctx_client_new(p->cli_id, NULL, 0, &p->cctx), 0);
		struct rd_tls_expect ex = { .has_pin = 1 };
		rd_tls_identity_fp(p->srv_id, ex.pin);
		assert_int_equal(rd_tls_conn_tls_new(p->cctx, fds[0], &ex, &ta), 0);
		assert_int_equal(rd_tls_conn_tls_new(p->sctx, fds[1], NULL, &tb), 0);
	}
	assert_int_equal(rd_link_new(ta, cfg, &p->a), 0);
	assert_int_equal(rd_link_new(tb, cfg, &p->b), 0);
	if (tls) {
		pthread_t th;
		struct hs_job j = { .l = p->b, .rc = 1 };
		assert_int_equal(pthread_create(&th, NULL, handshake_main, &j), 0);
		assert_int_equal(rd_link_handshake(p->a, WAIT_MS), 0);
		assert_int_equal(pthread_join(th, NULL), 0);
		assert_int_equal(j.rc, 0);
	}
}

static void pair_close(struct pair *p)
{
	rd_link_free(p->a);
	rd_link_free(p->b);
	rd_tls_ctx_free(p->sctx);
	rd_tls_ctx_free(p->cctx);
	rd_tls_identity_free(p->srv_id);
	rd_tls_identity_free(p->cli_id);
	if (p->dir[0]) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p->dir);
		assert_int_equal(system(cmd), 0);
	}
}

/* One frame of type t whose payload is n bytes of the value v. */
static void frame_of(struct rd_buf *b, uint16_t t, size_t n, uint8_t v)
{
	uint8_t *p = malloc(n ? n : 1);
	assert_non_null(p);
	memset(p, v, n);
	rd_buf_reset(b);
	assert_int_equal(rd_frame_append(b, t, 0, p, n, 0), 0);
	free(p);
}

/* Flush l until everything is written, waiting for the socket as told. */
static void flush_all(struct rd_link *l)
{
	uint64_t end = rd_now_mono_ms() + WAIT_MS;
	enum rd_tls_want want;
	for (;;) {
		assert_int_equal(rd_link_flush(l, &want), 0);
		if (want == RD_TLS_WANT_NONE)
			return;
		struct pollfd p = { .fd = rd_link_fd(l),
				    .events = want == RD_TLS_WANT_WRITE ? POLLOUT : POLLIN };
		assert_true(rd_now_mono_ms() < end);
		poll(&p, 1, 100);
	}
}

struct flusher_job {
	struct rd_link *l;
	atomic_int stop;
};

/* A writer thread, as a server's flusher would be. */
static void *flusher_main(void *arg)
{
	struct flusher_job *j = arg;
	enum rd_tls_want want;
	while (!atomic_load(&j->stop)) {
		if (rd_link_flush(j->l, &want) != 0)
			return NULL;
		struct pollfd p = { .fd = rd_link_fd(j->l),
				    .events = want == RD_TLS_WANT_READ ? POLLIN : POLLOUT };
		if (want == RD_TLS_WANT_NONE) {
			usleep(1000);
			continue;
		}
		poll(&p, 1, 20);
	}
	return NULL;
}

static void expect_frame(struct rd_link *l, uint16_t type, size_t n, uint8_t v)
{
	struct rd_frame f;
	int rc = rd_link_recv(l, WAIT_MS, &f);
	if (rc)
		fail_msg("recv: %s", rd_strerror(rc));
	assert_int_equal(f.hdr.type, type);
	assert_int_equal(f.len, n);
	for (size_t i = 0; i < n; i++)
		if (f.payload[i] != v)
			fail_msg("byte %zu of a 0x%04x frame is %u, not %u", i, type, f.payload[i],
				 v);
}

static void round_trip(int tls)
{
	struct pair p;
	struct rd_buf b;
	int sched = 0;
	uint8_t fp[RD_TLS_FP_LEN], want_fp[RD_TLS_FP_LEN];

	pair_open(&p, tls, NULL);
	rd_buf_init(&b, 0);
	for (int i = 0; i < 20; i++) {
		frame_of(&b, (uint16_t)(0x1100 + i), (size_t)i * 1000, (uint8_t)i);
		assert_int_equal(rd_link_queue(p.a, i % 2 ? RD_LINK_BULK : RD_LINK_EVENT, b.data,
					       b.len, &sched),
				 0);
		assert_int_equal(sched, i == 0); /* only the first makes it need a flush */
	}
	flush_all(p.a);
	/* in order within each class, the events (even) before the bulk (odd) queued with
	 * them */
	for (int i = 0; i < 20; i += 2)
		expect_frame(p.b, (uint16_t)(0x1100 + i), (size_t)i * 1000, (uint8_t)i);
	for (int i = 1; i < 20; i += 2)
		expect_frame(p.b, (uint16_t)(0x1100 + i), (size_t)i * 1000, (uint8_t)i);
	/* and back */
	frame_of(&b, 0x1200, 5, 9);
	assert_int_equal(rd_link_queue(p.b, RD_LINK_EVENT, b.data, b.len, &sched), 0);
	assert_int_equal(sched, 1);
	flush_all(p.b);
	expect_frame(p.a, 0x1200, 5, 9);
	assert_int_equal(rd_link_queued(p.a), 0);
	assert_true(rd_link_bytes_out(p.a) > 95000);
	assert_int_equal(rd_link_bytes_in(p.b), rd_link_bytes_out(p.a));
	if (tls) {
		assert_int_equal(rd_link_peer_fp(p.a, fp), 0);
		rd_tls_identity_fp(p.srv_id, want_fp);
		assert_memory_equal(fp, want_fp, RD_TLS_FP_LEN);
		assert_int_equal(rd_link_peer_fp(p.b, fp), 0);
		rd_tls_identity_fp(p.cli_id, want_fp);
		assert_memory_equal(fp, want_fp, RD_TLS_FP_LEN);
	}
	rd_buf_free(&b);
	pair_close(&p);
}

static void test_frames_both_ways_plain(void **state)
{
	(void)state;
	round_trip(0);
}

static void test_frames_both_ways_tls(void **state)
{
	(void)state;
	round_trip(1);
}

/* Events are bounded: past event_limit the queue refuses (the server drops a slow reader)
 * and what was queued before is intact. */
static void test_event_bound(void **state)
{
	struct rd_link_config cfg = { .event_limit = 100000 };
	struct pair p;
	struct rd_buf b;
	int n = 0, rc;
	(void)state;
	pair_open(&p, 0, &cfg);
	rd_buf_init(&b, 0);
	frame_of(&b, 0x1100, 10000 - 16, 1);
	while ((rc = rd_link_queue(p.a, RD_LINK_EVENT, b.data, b.len, NULL)) == 0)
		n++;
	assert_int_equal(rc, RD_ERR_FULL);
	assert_int_equal(n, 10);
	assert_int_equal(rd_link_queued(p.a), 100000);
	rd_buf_free(&b);
	pair_close(&p);
}

struct bulk_job {
	struct rd_link *l;
	int frames, rc;
	size_t fsize;
	uint64_t deadline;
};

/* A producer that queues bulk frames as fast as flow control lets it. */
static void *producer_main(void *arg)
{
	struct bulk_job *j = arg;
	struct rd_buf b;
	int rc = 0;
	rd_buf_init(&b, 0);
	frame_of(&b, 0x1300, j->fsize, 7);
	for (int i = 0; i < j->frames && rc == 0;) {
		int sched;
		rc = rd_link_queue(j->l, RD_LINK_BULK, b.data, b.len, &sched);
		if (rc == RD_ERR_AGAIN) {
			rc = rd_link_wait_bulk(j->l, j->deadline);
			continue;
		}
		i++;
	}
	j->rc = rc;
	rd_buf_free(&b);
	return NULL;
}

/* Bulk is flow-controlled: a producer faster than the reader never has more than the
 * high watermark queued; it waits, and goes on when the writer has made room. */
static void test_bulk_flow_control(void **state)
{
	struct rd_link_config cfg = { .bulk_high = 256 * 1024, .bulk_low = 64 * 1024 };
	struct pair p;
	struct bulk_job j;
	struct flusher_job fj;
	pthread_t prod, fl;
	size_t most = 0;
	(void)state;
	pair_open(&p, 0, &cfg);
	j = (struct bulk_job){
		.l = p.a, .frames = 400, .fsize = 32 * 1024, .deadline = rd_now_mono_ms() + 20000
	};
	fj.l = p.a;
	atomic_init(&fj.stop, 0);
	assert_int_equal(pthread_create(&prod, NULL, producer_main, &j), 0);
	assert_int_equal(pthread_create(&fl, NULL, flusher_main, &fj), 0);
	/* a slow reader: a frame every millisecond */
	for (int i = 0; i < 400; i++) {
		size_t q = rd_link_queued(p.a);
		if (q > most)
			most = q;
		expect_frame(p.b, 0x1300, 32 * 1024, 7);
		if (i < 100)
			usleep(1000);
	}
	assert_int_equal(pthread_join(prod, NULL), 0);
	atomic_store(&fj.stop, 1);
	assert_int_equal(pthread_join(fl, NULL), 0);
	assert_int_equal(j.rc, 0);
	/* the queue never held much more than the high watermark (plus the frame that
	 * crossed it, plus what the writer had taken) */
	assert_true(most <= 256 * 1024 + 2 * (32 * 1024 + 16) + 256 * 1024);
	pair_close(&p);
}

/* An event queued while bulk is waiting goes out before the bulk still queued, after at
 * most what the writer had already taken (whole frames: the stream stays in sync). */
static void test_events_overtake_queued_bulk(void **state)
{
	struct rd_link_config cfg = { .bulk_high = 8u << 20 };
	struct pair p;
	struct rd_buf b;
	struct rd_frame f;
	enum rd_tls_want want;
	int bulk_before_event = 0, got_event = 0;
	(void)state;
	pair_open(&p, 0, &cfg);
	rd_buf_init(&b, 0);
	frame_of(&b, 0x1300, 64 * 1024, 3);
	for (int i = 0; i < 64; i++) /* 4 MiB: more than the socket buffers hold */
		assert_int_equal(rd_link_queue(p.a, RD_LINK_BULK, b.data, b.len, NULL), 0);
	assert_int_equal(rd_link_flush(p.a, &want), 0);
	assert_int_equal(want, RD_TLS_WANT_WRITE); /* the reader has not read yet */
	frame_of(&b, 0x1101, 10, 4);
	assert_int_equal(rd_link_queue(p.a, RD_LINK_EVENT, b.data, b.len, NULL), 0);
	/* read while flushing: the event must come before the last bulk frame */
	int total_bulk = 0;
	while (total_bulk < 64) {
		assert_int_equal(rd_link_flush(p.a, &want), 0);
		if (rd_link_recv(p.b, WAIT_MS, &f) != 0)
			fail_msg("stream broken");
		if (f.hdr.type == 0x1101) {
			got_event = 1;
			bulk_before_event = total_bulk;
		} else {
			assert_int_equal(f.hdr.type, 0x1300);
			total_bulk++;
		}
	}
	if (!got_event)
		expect_frame(p.b, 0x1101, 10, 4);
	assert_true(got_event);
	/* what the socket buffers and the writer's batch held, not the whole 4 MiB queue */
	assert_true(bulk_before_event < 40);
	rd_buf_free(&b);
	pair_close(&p);
}

static int temp_file(const void *p, size_t n)
{
	char path[] = "/tmp/rd-link-file-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	return fd;
}

struct reader_job {
	struct rd_link *l;
	uint16_t types[8];
	size_t lens[8];
	int n, rc;
	uint8_t *stream_copy;
};

static void *reader_main(void *arg)
{
	struct reader_job *j = arg;
	struct rd_frame f;
	while (j->n < 3) {
		if ((j->rc = rd_link_recv(j->l, WAIT_MS, &f)) != 0)
			return NULL;
		j->types[j->n] = f.hdr.type;
		j->lens[j->n] = f.len;
		if (f.hdr.type == 0x1400)
			memcpy(j->stream_copy, f.payload, f.len);
		j->n++;
	}
	return NULL;
}

/* A stream (prefix + file range) goes after what was queued before it and before what
 * is queued while it runs; its bytes arrive as they are in the file. */
static void stream_in_order(int tls)
{
	enum {
		FILE_SIZE = 3 * 1024 * 1024 + 17,
		OFF = 1000,
		LEN = 2 * 1024 * 1024
	};
	struct pair p;
	struct rd_buf b;
	struct rd_frame_hdr h;
	uint8_t hdr[16];
	uint8_t *data = malloc(FILE_SIZE);
	struct reader_job rj = { 0 };
	pthread_t th;
	int fd, sched;

	assert_non_null(data);
	for (size_t i = 0; i < FILE_SIZE; i++)
		data[i] = (uint8_t)(i * 31 + (i >> 9));
	fd = temp_file(data, FILE_SIZE);
	pair_open(&p, tls, NULL);
	rd_link_set_max_payload(p.b, 4u << 20);
	rd_buf_init(&b, 0);
	frame_of(&b, 0x1101, 10, 1);
	assert_int_equal(rd_link_queue(p.a, RD_LINK_EVENT, b.data, b.len, &sched), 0);
	assert_int_equal(sched, 1); /* left unflushed on purpose: the stream sends it first */
	rj.l = p.b;
	rj.stream_copy = malloc(LEN);
	assert_non_null(rj.stream_copy);
	assert_int_equal(pthread_create(&th, NULL, reader_main, &rj), 0);
	/* a stream waits for the link to go idle: let the scheduled flush run first */
	flush_all(p.a);
	memset(&h, 0, sizeof(h));
	h.type = 0x1400;
	h.len = LEN;
	rd_frame_hdr_encode(&h, hdr);
	frame_of(&b, 0x1102, 20, 2);
	assert_int_equal(rd_link_send_stream(p.a, hdr, sizeof(hdr), fd, OFF, LEN, WAIT_MS, &sched),
			 0);
	assert_int_equal(rd_link_queue(p.a, RD_LINK_EVENT, b.data, b.len, &sched), 0);
	flush_all(p.a);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(rj.rc, 0);
	assert_int_equal(rj.types[0], 0x1101);
	assert_int_equal(rj.types[1], 0x1400);
	assert_int_equal(rj.lens[1], LEN);
	assert_memory_equal(rj.stream_copy, data + OFF, LEN);
	assert_int_equal(rj.types[2], 0x1102);
	close(fd);
	free(rj.stream_copy);
	free(data);
	rd_buf_free(&b);
	pair_close(&p);
}

static void test_stream_in_order_plain(void **state)
{
	(void)state;
	stream_in_order(0);
}

static void test_stream_in_order_tls(void **state)
{
	(void)state;
	stream_in_order(1);
}

/* Close after flush: what was queued arrives, then the peer sees the end; nothing more can
 * be queued. */
static void test_close_after_flush(void **state)
{
	struct pair p;
	struct rd_buf b;
	struct rd_frame f;
	int sched;
	(void)state;
	pair_open(&p, 0, NULL);
	rd_buf_init(&b, 0);
	frame_of(&b, 0x1101, 100, 5);
	assert_int_equal(rd_link_queue(p.a, RD_LINK_EVENT, b.data, b.len, &sched), 0);
	rd_link_close_after_flush(p.a, &sched);
	assert_int_equal(rd_link_queue(p.a, RD_LINK_EVENT, b.data, b.len, NULL), RD_ERR_CLOSED);
	flush_all(p.a);
	expect_frame(p.b, 0x1101, 100, 5);
	assert_int_equal(rd_link_recv(p.b, WAIT_MS, &f), RD_ERR_CLOSED);
	rd_buf_free(&b);
	pair_close(&p);
}

struct wait_job {
	struct rd_link *l;
	int rc;
};

static void *recv_main(void *arg)
{
	struct wait_job *j = arg;
	struct rd_frame f;
	j->rc = rd_link_recv(j->l, WAIT_MS, &f);
	return NULL;
}

static void *bulk_wait_main(void *arg)
{
	struct wait_job *j = arg;
	j->rc = rd_link_wait_bulk(j->l, rd_now_mono_ms() + WAIT_MS);
	return NULL;
}

/* Kill wakes the link's own reader and a waiting bulk producer at once, and a flush of a
 * dead link fails. */
static void test_kill_wakes_everyone(void **state)
{
	struct rd_link_config cfg = { .bulk_high = 1000, .bulk_low = 100 };
	struct pair p;
	struct rd_buf b;
	struct wait_job r = { 0 }, w = { 0 };
	pthread_t tr, tw;
	enum rd_tls_want want;
	uint64_t t0;
	(void)state;
	pair_open(&p, 0, &cfg);
	rd_buf_init(&b, 0);
	frame_of(&b, 0x1300, 2000, 1);
	assert_int_equal(rd_link_queue(p.a, RD_LINK_BULK, b.data, b.len, NULL), 0);
	assert_int_equal(rd_link_queue(p.a, RD_LINK_BULK, b.data, b.len, NULL), RD_ERR_AGAIN);
	r.l = w.l = p.a;
	assert_int_equal(pthread_create(&tr, NULL, recv_main, &r), 0);
	assert_int_equal(pthread_create(&tw, NULL, bulk_wait_main, &w), 0);
	usleep(50 * 1000);
	t0 = rd_now_mono_ms();
	rd_link_kill(p.a);
	assert_int_equal(pthread_join(tr, NULL), 0);
	assert_int_equal(pthread_join(tw, NULL), 0);
	assert_true(rd_now_mono_ms() - t0 < 2000);
	assert_true(r.rc == RD_ERR_CLOSED || r.rc == RD_ERR_SYSTEM);
	assert_int_equal(w.rc, RD_ERR_CLOSED);
	assert_int_equal(rd_link_flush(p.a, &want), RD_ERR_CLOSED);
	assert_true(rd_link_dead(p.a));
	assert_int_equal(rd_link_queued(p.a), 0);
	rd_buf_free(&b);
	pair_close(&p);
}

/* A TLS link whose peer speaks plaintext frames fails its handshake and says so. */
static void test_tls_link_to_plaintext_peer_says_so(void **state)
{
	struct rd_tls_identity *id = NULL;
	struct rd_tls_ctx *sctx = NULL;
	struct rd_tls_conn *t;
	struct rd_link *l;
	char dir[] = "/tmp/rd-link-XXXXXX", c[64], k[64], cmd[96];
	int fds[2];
	uint8_t hello[16] = { 'R', 'D', 1, 0, 0, 1 };
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(c, sizeof(c), "%s/s.crt", dir);
	snprintf(k, sizeof(k), "%s/s.key", dir);
	assert_int_equal(rd_tls_identity_ensure(c, k, "server", &id, NULL), 0);
	assert_int_equal(rd_tls_ctx_server_new(id, 0, &sctx), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	assert_int_equal(write(fds[0], hello, sizeof(hello)), (ssize_t)sizeof(hello));
	assert_int_equal(rd_tls_conn_tls_new(sctx, fds[1], NULL, &t), 0);
	assert_int_equal(rd_link_new(t, NULL, &l), 0);
	assert_int_equal(rd_link_handshake(l, WAIT_MS), RD_ERR_PROTOCOL);
	assert_int_equal(rd_link_peer_spoke(l), RD_TLS_SNIFF_FRAME);
	assert_non_null(strstr(rd_link_reason(l), "plaintext"));
	rd_link_free(l);
	close(fds[0]);
	rd_tls_ctx_free(sctx);
	rd_tls_identity_free(id);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frames_both_ways_plain),
		cmocka_unit_test(test_frames_both_ways_tls),
		cmocka_unit_test(test_event_bound),
		cmocka_unit_test(test_bulk_flow_control),
		cmocka_unit_test(test_events_overtake_queued_bulk),
		cmocka_unit_test(test_stream_in_order_plain),
		cmocka_unit_test(test_stream_in_order_tls),
		cmocka_unit_test(test_close_after_flush),
		cmocka_unit_test(test_kill_wakes_everyone),
		cmocka_unit_test(test_tls_link_to_plaintext_peer_says_so),
	};
	return cmocka_run_group_tests_name("link", tests, NULL, NULL);
}
