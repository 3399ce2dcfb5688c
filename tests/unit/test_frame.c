/* test_frame.c - frame header codec against hand-written bytes, frame building with and
 * without zlib, the incremental reader under truncation, hostile headers, byte-at-a-time
 * and batched input, and rd_frame_recv / rd_frame_send over a socketpair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "files/rdf_proto.h"
#include "rd_buf.h"
#include "rd_err.h"
#include "rd_frame.h"
#include "rd_proto.h"
#include "rd_zip.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void fill_text(uint8_t *p, size_t n)
{
	static const char words[] = "lorem ipsum dolor sit amet, consectetur adipiscing; ";
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)words[i % (sizeof(words) - 1)];
}

/* ---- header -------------------------------------------------------------------------- */

static void test_hdr_encode_bytes(void **state)
{
	/* From the layout in rd_proto.h, written out by hand. */
	static const uint8_t expect[16] = {
		0x52, 0x44,             /* 'R' 'D' */
		0x01,                   /* version 1 */
		0x01,                   /* flags: compressed */
		0x10, 0x03,             /* type PUT_CHUNK */
		0x00, 0x00,             /* reserved */
		0x01, 0x02, 0x03, 0x04, /* request id */
		0x0A, 0x0B, 0x0C, 0x0D, /* length */
	};
	struct rd_frame_hdr h = { .version = 9,
				  .flags = 0xFF,
				  .type = 0x1003,
				  .req_id = 0x01020304u,
				  .len = 0x0A0B0C0Du };
	uint8_t out[16];

	(void)state;
	rd_frame_hdr_encode(&h, out);
	/* version comes from RD_PROTO_VERSION, unknown flag bits are sent as 0 */
	assert_memory_equal(out, expect, sizeof(expect));
}

static void test_hdr_decode_fields(void **state)
{
	static const uint8_t in[16] = { 0x52, 0x44, 0x01, 0x00, 0x00, 0x22, 0xAB, 0xCD,
					0xFF, 0xFF, 0xFF, 0xFE, 0x00, 0x00, 0x01, 0x00 };
	struct rd_frame_hdr h;

	(void)state;
	assert_int_equal(rd_frame_hdr_decode(in, sizeof(in), 256, &h), 0);
	assert_int_equal(h.version, 1);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.type, RD_MSG_ROOM_MSG);
	assert_int_equal(h.req_id, 0xFFFFFFFEu);
	assert_int_equal(h.len, 256); /* reserved bytes ignored; len == max is fine */
	assert_int_equal(rd_frame_hdr_decode(in, sizeof(in), 255, &h), RD_ERR_TOO_BIG);
	assert_int_equal(h.len, 0);
	assert_int_equal(rd_frame_hdr_decode(in, 15, 256, &h), RD_ERR_INCOMPLETE);
}

static void test_hdr_decode_checks_in_order(void **state)
{
	/* bad magic and bad version and too big: magic wins; then version. */
	uint8_t in[16] = { 'X', 'D', 0x07, 0x00, 0x00, 0x01, 0,    0,
			   0,   0,   0,    0,    0xFF, 0xFF, 0xFF, 0xFF };
	struct rd_frame_hdr h;

	(void)state;
	assert_int_equal(rd_frame_hdr_decode(in, 16, 1024, &h), RD_ERR_BAD_MAGIC);
	in[0] = 'R';
	in[1] = 'X';
	assert_int_equal(rd_frame_hdr_decode(in, 16, 1024, &h), RD_ERR_BAD_MAGIC);
	in[1] = 'D';
	assert_int_equal(rd_frame_hdr_decode(in, 16, 1024, &h), RD_ERR_BAD_VERSION);
	in[2] = 0;
	assert_int_equal(rd_frame_hdr_decode(in, 16, 1024, &h), RD_ERR_BAD_VERSION);
	in[2] = 1;
	assert_int_equal(rd_frame_hdr_decode(in, 16, 1024, &h), RD_ERR_TOO_BIG);
	in[12] = in[13] = in[14] = in[15] = 0;
	assert_int_equal(rd_frame_hdr_decode(in, 16, 1024, &h), 0);
}

static void test_unknown_flag_bits_ignored(void **state)
{
	uint8_t in[16 + 3] = { 0x52, 0x44, 0x01, 0xFE, 0x00, 0x05, 0x12, 0x34, 0,  0,
			       0,    1,    0,    0,    0,    3,    'a',  'b',  'c' };
	struct rd_frame_reader *r;
	struct rd_frame f;

	(void)state;
	assert_int_equal(rd_frame_reader_new(1024, &r), 0);
	assert_int_equal(rd_frame_reader_feed(r, in, sizeof(in)), 0);
	assert_int_equal(rd_frame_reader_next(r, &f), 0);
	assert_int_equal(f.hdr.flags, 0);
	assert_int_equal(f.hdr.type, RD_MSG_OK);
	assert_int_equal(f.len, 3);
	assert_memory_equal(f.payload, "abc", 3);
	rd_frame_reader_free(r);
}

/* ---- building ------------------------------------------------------------------------ */

static void test_append_plain_bytes(void **state)
{
	static const uint8_t expect[] = { 0x52, 0x44, 0x01, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00,
					  0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x02, 'h',  'i',
					  0x52, 0x44, 0x01, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00,
					  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
	struct rd_buf b;

	(void)state;
	rd_buf_init(&b, 0);
	assert_int_equal(rd_frame_append(&b, RD_MSG_PING, 9, "hi", 2, 0), 0);
	assert_int_equal(rd_frame_append(&b, RD_MSG_PONG, 0, NULL, 0, RD_FRAME_COMPRESS), 0);
	assert_int_equal(b.len, sizeof(expect));
	assert_memory_equal(b.data, expect, sizeof(expect));
	rd_buf_free(&b);
}

static void test_append_limits(void **state)
{
	struct rd_buf b;
	uint8_t one = 0;

	(void)state;
	rd_buf_init(&b, 0);
	/* the length is refused before the payload is read */
	assert_int_equal(rd_frame_append(&b, 1, 0, &one, RD_MAX_PAYLOAD_HARD + 1u, 0),
			 RD_ERR_TOO_BIG);
	assert_int_equal(b.len, 0);
	rd_buf_free(&b);
	rd_buf_init(&b, 20); /* room for a header and 4 bytes */
	assert_int_equal(rd_frame_append(&b, 1, 0, "12345", 5, 0), RD_ERR_TOO_BIG);
	assert_int_equal(b.len, 0); /* nothing half-written */
	assert_int_equal(rd_frame_append(&b, 1, 0, "1234", 4, 0), 0);
	assert_int_equal(b.len, 20);
	rd_buf_free(&b);
}

static void test_compressed_round_trip(void **state)
{
	size_t n = 20000;
	uint8_t *src = malloc(n);
	struct rd_buf b, scratch;
	struct rd_frame_hdr h;
	struct rd_frame f;
	struct rd_frame_reader *r;

	(void)state;
	assert_non_null(src);
	fill_text(src, n);
	rd_buf_init(&b, 0);
	assert_int_equal(rd_frame_append(&b, RDF_MSG_PUT_CHUNK, 42, src, n, RD_FRAME_COMPRESS), 0);
	assert_int_equal(rd_frame_hdr_decode(b.data, b.len, RD_MAX_PAYLOAD_DEFAULT, &h), 0);
	assert_int_equal(h.flags, RD_FLAG_COMPRESSED);
	assert_int_equal(h.len, b.len - 16);
	assert_true(rd_zip_worth(n, h.len));
	assert_int_equal(rd_be32_get(b.data + 16), n); /* original length prefix */

	rd_buf_init(&scratch, 0);
	assert_int_equal(
		rd_frame_open(&h, b.data + 16, h.len, RD_MAX_PAYLOAD_DEFAULT, &scratch, &f), 0);
	assert_int_equal(f.len, n);
	assert_memory_equal(f.payload, src, n);
	/* the same payload with a lower limit than its inflated size */
	assert_int_equal(rd_frame_open(&h, b.data + 16, h.len, (uint32_t)n - 1, &scratch, &f),
			 RD_ERR_TOO_BIG);
	assert_null(f.payload);

	assert_int_equal(rd_frame_reader_new(RD_MAX_PAYLOAD_DEFAULT, &r), 0);
	assert_int_equal(rd_frame_reader_feed(r, b.data, b.len), 0);
	assert_int_equal(rd_frame_reader_next(r, &f), 0);
	assert_int_equal(f.hdr.type, RDF_MSG_PUT_CHUNK);
	assert_int_equal(f.hdr.req_id, 42);
	assert_int_equal(f.len, n);
	assert_memory_equal(f.payload, src, n);
	assert_int_equal(rd_frame_reader_next(r, &f), RD_ERR_INCOMPLETE);
	rd_frame_reader_free(r);
	rd_buf_free(&scratch);
	rd_buf_free(&b);
	free(src);
}

static void test_incompressible_sent_plain(void **state)
{
	uint8_t src[3000];
	uint64_t x = 0x9E3779B97F4A7C15ull;
	struct rd_buf b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(src); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		src[i] = (uint8_t)x;
	}
	rd_buf_init(&b, 0);
	assert_int_equal(rd_frame_append(&b, 3, 1, src, sizeof(src), RD_FRAME_COMPRESS), 0);
	assert_int_equal(b.len, 16 + sizeof(src));
	assert_int_equal(b.data[3], 0); /* no compressed flag */
	assert_memory_equal(b.data + 16, src, sizeof(src));
	rd_buf_free(&b);
}

static void test_open_rejects_length_mismatch(void **state)
{
	struct rd_frame_hdr h = { .version = 1, .type = 5, .len = 4 };
	struct rd_buf scratch;
	struct rd_frame f;

	(void)state;
	rd_buf_init(&scratch, 0);
	assert_int_equal(rd_frame_open(&h, (const uint8_t *)"abc", 3, 100, &scratch, &f),
			 RD_ERR_MALFORMED);
	h.flags = RD_FLAG_COMPRESSED;
	h.len = 3;
	assert_int_equal(rd_frame_open(&h, (const uint8_t *)"abc", 3, 100, &scratch, &f),
			 RD_ERR_ZLIB);
	rd_buf_free(&scratch);
}

/* ---- reader -------------------------------------------------------------------------- */

/* Three frames: plain, empty, compressed. */
static void build_stream(struct rd_buf *b, uint8_t *big, size_t bign)
{
	fill_text(big, bign);
	rd_buf_init(b, 0);
	assert_int_equal(rd_frame_append(b, RD_MSG_SAY, 1, "hello", 5, 0), 0);
	assert_int_equal(rd_frame_append(b, RD_MSG_PING, 2, NULL, 0, 0), 0);
	assert_int_equal(rd_frame_append(b, RDF_MSG_GET_CHUNK, 3, big, bign, RD_FRAME_COMPRESS), 0);
}

static void check_frame(const struct rd_frame *f, int i, const uint8_t *big, size_t bign)
{
	switch (i) {
	case 0:
		assert_int_equal(f->hdr.type, RD_MSG_SAY);
		assert_int_equal(f->hdr.req_id, 1);
		assert_int_equal(f->len, 5);
		assert_memory_equal(f->payload, "hello", 5);
		break;
	case 1:
		assert_int_equal(f->hdr.type, RD_MSG_PING);
		assert_int_equal(f->hdr.req_id, 2);
		assert_int_equal(f->len, 0);
		assert_non_null(f->payload);
		break;
	case 2:
		assert_int_equal(f->hdr.type, RDF_MSG_GET_CHUNK);
		assert_int_equal(f->hdr.req_id, 3);
		assert_int_equal(f->hdr.flags, RD_FLAG_COMPRESSED);
		assert_int_equal(f->len, bign);
		assert_memory_equal(f->payload, big, bign);
		break;
	default:
		fail_msg("unexpected frame %d", i);
	}
}

static void test_truncation_at_every_byte(void **state)
{
	uint8_t big[2000];
	struct rd_buf b;
	struct rd_frame_reader *r;
	struct rd_frame f;
	size_t first, cut, off, i;
	size_t ends[3];
	struct rd_frame_hdr h;

	(void)state;
	build_stream(&b, big, sizeof(big));
	/* frame boundaries */
	for (off = 0, i = 0; i < 3; i++) {
		assert_int_equal(rd_frame_hdr_decode(b.data + off, b.len - off, 1u << 20, &h), 0);
		off += 16 + h.len;
		ends[i] = off;
	}
	assert_int_equal(off, b.len);
	first = 0;
	for (i = 0; i < 3; i++) {
		for (cut = first; cut < ends[i]; cut++) {
			assert_int_equal(rd_frame_reader_new(1u << 20, &r), 0);
			assert_int_equal(rd_frame_reader_feed(r, b.data + first, cut - first), 0);
			f.payload = (const uint8_t *)"x";
			assert_int_equal(rd_frame_reader_next(r, &f), RD_ERR_INCOMPLETE);
			assert_null(f.payload);
			assert_int_equal(f.len, 0);
			assert_int_equal(rd_frame_reader_pending(r), cut - first);
			/* the rest arrives: exactly one frame */
			assert_int_equal(rd_frame_reader_feed(r, b.data + cut, ends[i] - cut), 0);
			assert_int_equal(rd_frame_reader_next(r, &f), 0);
			check_frame(&f, (int)i, big, sizeof(big));
			assert_int_equal(rd_frame_reader_next(r, &f), RD_ERR_INCOMPLETE);
			rd_frame_reader_free(r);
		}
		first = ends[i];
	}
	rd_buf_free(&b);
}

static void test_one_byte_at_a_time(void **state)
{
	uint8_t big[5000];
	struct rd_buf b;
	struct rd_frame_reader *r;
	struct rd_frame f;
	size_t i;
	int got = 0, rc;

	(void)state;
	build_stream(&b, big, sizeof(big));
	assert_int_equal(rd_frame_reader_new(1u << 20, &r), 0);
	for (i = 0; i < b.len; i++) {
		assert_int_equal(rd_frame_reader_feed(r, b.data + i, 1), 0);
		while ((rc = rd_frame_reader_next(r, &f)) == 0)
			check_frame(&f, got++, big, sizeof(big));
		assert_int_equal(rc, RD_ERR_INCOMPLETE);
	}
	assert_int_equal(got, 3);
	assert_int_equal(rd_frame_reader_pending(r), 0);
	rd_frame_reader_free(r);
	rd_buf_free(&b);
}

static void test_several_frames_in_one_feed(void **state)
{
	uint8_t big[5000];
	struct rd_buf b;
	struct rd_frame_reader *r;
	struct rd_frame f;
	int got = 0, rc;

	(void)state;
	build_stream(&b, big, sizeof(big));
	assert_int_equal(rd_frame_reader_new(1u << 20, &r), 0);
	assert_int_equal(rd_frame_reader_feed(r, b.data, b.len), 0);
	assert_int_equal(rd_frame_reader_pending(r), b.len);
	while ((rc = rd_frame_reader_next(r, &f)) == 0)
		check_frame(&f, got++, big, sizeof(big));
	assert_int_equal(rc, RD_ERR_INCOMPLETE);
	assert_int_equal(got, 3);
	/* again, through space/commit, twice over */
	got = 0;
	for (int k = 0; k < 2; k++) {
		uint8_t *p;
		size_t avail;

		assert_int_equal(rd_frame_reader_space(r, b.len, &p, &avail), 0);
		assert_true(avail >= b.len);
		memcpy(p, b.data, b.len);
		rd_frame_reader_commit(r, b.len);
	}
	while ((rc = rd_frame_reader_next(r, &f)) == 0)
		check_frame(&f, got++ % 3, big, sizeof(big));
	assert_int_equal(got, 6);
	rd_frame_reader_free(r);
	rd_buf_free(&b);
}

static void test_oversized_length_refused_from_header(void **state)
{
	/* header alone, declaring 1025 bytes to a reader that accepts 1024 */
	static const uint8_t hdr[16] = { 0x52, 0x44, 0x01, 0x00, 0x00, 0x01, 0,    0,
					 0,    0,    0,    0,    0x00, 0x00, 0x04, 0x01 };
	struct rd_frame_reader *r;
	struct rd_frame f;
	uint8_t *p;
	size_t avail;

	(void)state;
	assert_int_equal(rd_frame_reader_new(1024, &r), 0);
	assert_int_equal(rd_frame_reader_feed(r, hdr, sizeof(hdr)), 0);
	assert_int_equal(rd_frame_reader_next(r, &f), RD_ERR_TOO_BIG);
	/* sticky: the stream cannot be resynchronised, and no buffer space is handed out */
	assert_int_equal(rd_frame_reader_next(r, &f), RD_ERR_TOO_BIG);
	assert_int_equal(rd_frame_reader_feed(r, "RD", 2), RD_ERR_TOO_BIG);
	assert_int_equal(rd_frame_reader_space(r, 1, &p, &avail), RD_ERR_TOO_BIG);
	assert_null(p);
	assert_int_equal(avail, 0);
	rd_frame_reader_free(r);

	/* 4 GiB - 1 declared: refused the same way */
	assert_int_equal(rd_frame_reader_new(1024, &r), 0);
	assert_int_equal(rd_frame_reader_feed(r, hdr, 12), 0);
	assert_int_equal(rd_frame_reader_feed(r, "\xff\xff\xff\xff", 4), 0);
	assert_int_equal(rd_frame_reader_next(r, &f), RD_ERR_TOO_BIG);
	rd_frame_reader_free(r);
}

static void test_feed_bounded(void **state)
{
	struct rd_frame_reader *r;
	uint8_t *junk;
	size_t n = 4u << 20;

	(void)state;
	junk = calloc(1, n);
	assert_non_null(junk);
	assert_int_equal(rd_frame_reader_new(1024, &r), 0);
	assert_int_equal(rd_frame_reader_feed(r, junk, n), RD_ERR_TOO_BIG);
	assert_int_equal(rd_frame_reader_pending(r), 0);
	rd_frame_reader_free(r);
	free(junk);
}

static void test_bad_magic_sticky(void **state)
{
	uint8_t frame[32];
	struct rd_buf b;
	struct rd_frame_reader *r;
	struct rd_frame f;

	(void)state;
	/* refused from the first byte, before a whole header arrives */
	assert_int_equal(rd_frame_reader_new(1024, &r), 0);
	assert_int_equal(rd_frame_reader_feed(r, "GET / HTTP/1.1\r\n", 16), 0);
	assert_int_equal(rd_frame_reader_next(r, &f), RD_ERR_BAD_MAGIC);
	rd_frame_reader_free(r);

	assert_int_equal(rd_frame_reader_new(1024, &r), 0);
	assert_int_equal(rd_frame_reader_feed(r, "R", 1), 0);
	assert_int_equal(rd_frame_reader_next(r, &f), RD_ERR_INCOMPLETE);
	assert_int_equal(rd_frame_reader_feed(r, "X", 1), 0);
	assert_int_equal(rd_frame_reader_next(r, &f), RD_ERR_BAD_MAGIC);
	/* a valid frame after it does not resynchronise the stream */
	memset(&b, 0, sizeof(b));
	b.data = frame;
	b.cap = sizeof(frame);
	assert_int_equal(rd_frame_append(&b, RD_MSG_PING, 0, "x", 1, 0), 0);
	assert_int_equal(rd_frame_reader_feed(r, b.data, b.len), RD_ERR_BAD_MAGIC);
	assert_int_equal(rd_frame_reader_next(r, &f), RD_ERR_BAD_MAGIC);
	rd_frame_reader_free(r);
}

static void test_wrong_version(void **state)
{
	static const uint8_t v2[16] = { 0x52, 0x44, 0x02, 0x00, 0x00, 0x01, 0, 0,
					0,    0,    0,    0,    0,    0,    0, 0 };
	struct rd_frame_reader *r;
	struct rd_frame f;

	(void)state;
	assert_int_equal(rd_frame_reader_new(1024, &r), 0);
	assert_int_equal(rd_frame_reader_feed(r, v2, 3), 0);
	assert_int_equal(rd_frame_reader_next(r, &f), RD_ERR_BAD_VERSION);
	assert_int_equal(rd_frame_reader_next(r, &f), RD_ERR_BAD_VERSION);
	rd_frame_reader_free(r);
}

static void test_corrupt_compressed_payload(void **state)
{
	uint8_t src[4000];
	struct rd_buf b;
	struct rd_frame_reader *r;
	struct rd_frame f;

	(void)state;
	fill_text(src, sizeof(src));
	rd_buf_init(&b, 0);
	assert_int_equal(rd_frame_append(&b, 9, 0, src, sizeof(src), RD_FRAME_COMPRESS), 0);
	assert_int_equal(b.data[3], RD_FLAG_COMPRESSED);
	b.data[b.len - 3] ^= 0x40; /* inside the stream's checksum */
	assert_int_equal(rd_frame_reader_new(1u << 20, &r), 0);
	assert_int_equal(rd_frame_reader_feed(r, b.data, b.len), 0);
	assert_int_equal(rd_frame_reader_next(r, &f), RD_ERR_ZLIB);
	assert_null(f.payload);
	assert_int_equal(rd_frame_reader_next(r, &f), RD_ERR_ZLIB);
	rd_frame_reader_free(r);

	/* compressed payload declaring more than the reader's max: TOO_BIG */
	b.data[b.len - 3] ^= 0x40;
	assert_int_equal(rd_frame_reader_new(sizeof(src) - 1, &r), 0);
	assert_int_equal(rd_frame_reader_feed(r, b.data, b.len), 0);
	assert_int_equal(rd_frame_reader_next(r, &f), RD_ERR_TOO_BIG);
	rd_frame_reader_free(r);
	rd_buf_free(&b);
}

static void test_trim_releases_idle_reader(void **state)
{
	struct rd_buf b;
	struct rd_frame_reader *r;
	struct rd_frame f;

	(void)state;
	rd_buf_init(&b, 0);
	assert_int_equal(rd_frame_append(&b, 1, 1, "abc", 3, 0), 0);
	assert_int_equal(rd_frame_append(&b, 2, 2, "def", 3, 0), 0);
	assert_int_equal(rd_frame_reader_new(1024, &r), 0);
	rd_frame_reader_trim(r); /* nothing allocated yet: harmless */
	assert_int_equal(rd_frame_reader_feed(r, b.data, b.len - 1), 0);
	assert_int_equal(rd_frame_reader_next(r, &f), 0);
	assert_int_equal(f.hdr.type, 1);
	rd_frame_reader_trim(r); /* pending bytes are kept */
	assert_int_equal(rd_frame_reader_pending(r), 18);
	assert_int_equal(rd_frame_reader_feed(r, b.data + b.len - 1, 1), 0);
	assert_int_equal(rd_frame_reader_next(r, &f), 0);
	assert_int_equal(f.hdr.type, 2);
	assert_memory_equal(f.payload, "def", 3);
	assert_int_equal(rd_frame_reader_pending(r), 0);
	rd_frame_reader_trim(r);
	assert_int_equal(rd_frame_reader_next(r, &f), RD_ERR_INCOMPLETE);
	assert_int_equal(rd_frame_reader_feed(r, b.data, b.len), 0); /* usable again */
	assert_int_equal(rd_frame_reader_next(r, &f), 0);
	assert_int_equal(f.hdr.type, 1);
	rd_frame_reader_free(r);
	rd_buf_free(&b);
}

static void test_max_size_frame_fits(void **state)
{
	const uint32_t max = 100000;
	uint8_t *src = malloc(max);
	struct rd_buf b;
	struct rd_frame_reader *r;
	struct rd_frame f;
	size_t off, step = 7777;

	(void)state;
	assert_non_null(src);
	memset(src, 0xA5, max);
	rd_buf_init(&b, 0);
	assert_int_equal(rd_frame_append(&b, 1, 1, src, max, 0), 0);
	assert_int_equal(rd_frame_append(&b, 2, 2, "z", 1, 0), 0);
	assert_int_equal(rd_frame_reader_new(max, &r), 0);
	for (off = 0; off < b.len; off += step)
		assert_int_equal(rd_frame_reader_feed(r, b.data + off,
						      off + step < b.len ? step : b.len - off),
				 0);
	assert_int_equal(rd_frame_reader_next(r, &f), 0);
	assert_int_equal(f.len, max);
	assert_memory_equal(f.payload, src, max);
	assert_int_equal(rd_frame_reader_next(r, &f), 0);
	assert_int_equal(f.hdr.type, 2);
	rd_frame_reader_free(r);
	rd_buf_free(&b);
	free(src);
}

/* ---- socket I/O ---------------------------------------------------------------------- */

static int setup_pair(void **state)
{
	int *sv = malloc(2 * sizeof(int));

	if (sv == NULL || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return -1;
	*state = sv;
	return 0;
}

static int teardown_pair(void **state)
{
	int *sv = *state;

	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	free(sv);
	return 0;
}

static void test_send_recv_round_trip(void **state)
{
	int *sv = *state;
	size_t n = 200000;
	uint8_t *big = malloc(n);
	struct rd_frame_reader *r;
	struct rd_frame f;
	struct rd_buf b;
	int status = -1;

	assert_non_null(big);
	fill_text(big, n);
	assert_int_equal(rd_frame_reader_new(1u << 20, &r), 0);
	/* several small frames in one write: read with one syscall, returned one by one */
	rd_buf_init(&b, 0);
	for (uint32_t i = 0; i < 50; i++)
		assert_int_equal(rd_frame_append(&b, RD_MSG_ROOM_MSG, i, "msg", 3, 0), 0);
	assert_int_equal(write(sv[0], b.data, b.len), (ssize_t)b.len);
	for (uint32_t i = 0; i < 50; i++) {
		assert_int_equal(rd_frame_recv(sv[1], r, 2000, &f), 0);
		assert_int_equal(f.hdr.req_id, i);
		assert_memory_equal(f.payload, "msg", 3);
	}
	assert_int_equal(rd_frame_send(sv[0], RD_MSG_PING, 77, "pp", 2, 0, 2000), 0);
	assert_int_equal(rd_frame_recv(sv[1], r, 2000, &f), 0);
	assert_int_equal(f.hdr.type, RD_MSG_PING);
	assert_int_equal(f.hdr.req_id, 77);
	assert_int_equal(f.len, 2);
	assert_int_equal(
		rd_frame_send(sv[0], RDF_MSG_PUT_CHUNK, 78, big, 3000, RD_FRAME_COMPRESS, 2000), 0);
	assert_int_equal(rd_frame_recv(sv[1], r, 2000, &f), 0);
	assert_int_equal(f.hdr.flags, RD_FLAG_COMPRESSED);
	assert_int_equal(f.len, 3000);
	assert_memory_equal(f.payload, big, 3000);
	/* larger than the socket buffer: the writer must be a separate thread of control,
	 * so send it compressed (it fits) and plain in a child */
	assert_int_equal(
		rd_frame_send(sv[0], RDF_MSG_PUT_CHUNK, 79, big, n, RD_FRAME_COMPRESS, 2000), 0);
	assert_int_equal(rd_frame_recv(sv[1], r, 2000, &f), 0);
	assert_int_equal(f.len, n);
	assert_memory_equal(f.payload, big, n);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(rd_frame_send(sv[0], RDF_MSG_PUT_CHUNK, 80, big, n, 0, 5000) == 0 ? 0 : 1);
	assert_int_equal(rd_frame_recv(sv[1], r, 5000, &f), 0);
	assert_int_equal(f.hdr.req_id, 80);
	assert_int_equal(f.hdr.flags, 0);
	assert_int_equal(f.len, n);
	assert_memory_equal(f.payload, big, n);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	rd_frame_reader_free(r);
	rd_buf_free(&b);
	free(big);
}

static void test_recv_eof_between_frames(void **state)
{
	int *sv = *state;
	struct rd_frame_reader *r;
	struct rd_frame f;

	assert_int_equal(rd_frame_reader_new(1024, &r), 0);
	assert_int_equal(rd_frame_send(sv[0], RD_MSG_BYE, 1, NULL, 0, 0, 1000), 0);
	close(sv[0]);
	sv[0] = -1;
	assert_int_equal(rd_frame_recv(sv[1], r, 2000, &f), 0);
	assert_int_equal(f.hdr.type, RD_MSG_BYE);
	assert_int_equal(rd_frame_recv(sv[1], r, 2000, &f), RD_ERR_CLOSED);
	rd_frame_reader_free(r);
}

static void test_recv_eof_mid_frame(void **state)
{
	int *sv = *state;
	struct rd_frame_reader *r;
	struct rd_frame f;
	uint8_t frame[64];
	struct rd_buf b;

	memset(&b, 0, sizeof(b));
	b.data = frame;
	b.cap = sizeof(frame);
	assert_int_equal(rd_frame_append(&b, RD_MSG_SAY, 1, "truncated", 9, 0), 0);
	assert_int_equal(write(sv[0], frame, b.len - 4), (ssize_t)b.len - 4);
	close(sv[0]);
	sv[0] = -1;
	assert_int_equal(rd_frame_reader_new(1024, &r), 0);
	assert_int_equal(rd_frame_recv(sv[1], r, 2000, &f), RD_ERR_MALFORMED);
	assert_null(f.payload);
	rd_frame_reader_free(r);
}

static void test_recv_timeout(void **state)
{
	int *sv = *state;
	struct rd_frame_reader *r;
	struct rd_frame f;
	uint64_t t0, dt;

	assert_int_equal(rd_frame_reader_new(1024, &r), 0);
	t0 = now_ms();
	assert_int_equal(rd_frame_recv(sv[1], r, 150, &f), RD_ERR_TIMEOUT);
	dt = now_ms() - t0;
	assert_true(dt >= 140 && dt < 2000);
	/* half a header, then silence: the deadline covers the whole frame */
	assert_int_equal(write(sv[0], "RD\x01\x00\x00\x05", 6), 6);
	t0 = now_ms();
	assert_int_equal(rd_frame_recv(sv[1], r, 150, &f), RD_ERR_TIMEOUT);
	dt = now_ms() - t0;
	assert_true(dt >= 140 && dt < 2000);
	assert_int_equal(rd_frame_reader_pending(r), 6);
	/* the rest comes late: the frame is still whole */
	assert_int_equal(write(sv[0], "\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00", 10), 10);
	assert_int_equal(rd_frame_recv(sv[1], r, 1000, &f), 0);
	assert_int_equal(f.hdr.type, RD_MSG_OK);
	assert_int_equal(f.hdr.req_id, 1);
	rd_frame_reader_free(r);
}

static void test_recv_bad_magic(void **state)
{
	int *sv = *state;
	struct rd_frame_reader *r;
	struct rd_frame f;

	assert_int_equal(rd_frame_reader_new(1024, &r), 0);
	assert_int_equal(write(sv[0], "SSH-2.0-x\r\n", 11), 11);
	assert_int_equal(rd_frame_recv(sv[1], r, 1000, &f), RD_ERR_BAD_MAGIC);
	rd_frame_reader_free(r);
}

/* rd_frame_reader_ready: a whole frame (or an error) is buffered, not a part of one. A
 * client that polls its socket relies on it not to wait for frames it already holds. */
static void test_reader_ready_only_for_whole_frames(void **state)
{
	struct rd_frame_reader *r = NULL;
	struct rd_frame f;
	struct rd_buf b;

	(void)state;
	rd_buf_init(&b, 0);
	assert_int_equal(rd_frame_append(&b, RD_MSG_PING, 9, "hello", 5, 0), 0);
	assert_int_equal(rd_frame_append(&b, RD_MSG_PONG, 9, "hi", 2, 0), 0);
	assert_int_equal(rd_frame_reader_new(1024, &r), 0);
	assert_int_equal(rd_frame_reader_ready(r), 0);
	assert_int_equal(rd_frame_reader_feed(r, b.data, 10), 0); /* part of the header */
	assert_int_equal(rd_frame_reader_ready(r), 0);
	assert_int_equal(rd_frame_reader_feed(r, b.data + 10, 10), 0); /* part of the payload */
	assert_int_equal(rd_frame_reader_ready(r), 0);
	assert_int_equal(rd_frame_reader_feed(r, b.data + 20, 1), 0); /* the first is whole */
	assert_int_equal(rd_frame_reader_ready(r), 1);
	assert_int_equal(rd_frame_reader_feed(r, b.data + 21, b.len - 22), 0);
	assert_int_equal(rd_frame_reader_next(r, &f), 0);
	assert_int_equal(rd_frame_reader_ready(r), 0); /* the second lacks its last byte */
	assert_int_equal(rd_frame_reader_feed(r, b.data + b.len - 1, 1), 0);
	assert_int_equal(rd_frame_reader_ready(r), 1);
	assert_int_equal(rd_frame_reader_next(r, &f), 0);
	assert_int_equal(rd_frame_reader_ready(r), 0);
	assert_int_equal(rd_frame_reader_feed(r, "XX", 2), 0); /* garbage: an error is ready */
	assert_int_equal(rd_frame_reader_ready(r), 1);
	rd_frame_reader_free(r);
	rd_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hdr_encode_bytes),
		cmocka_unit_test(test_reader_ready_only_for_whole_frames),
		cmocka_unit_test(test_hdr_decode_fields),
		cmocka_unit_test(test_hdr_decode_checks_in_order),
		cmocka_unit_test(test_unknown_flag_bits_ignored),
		cmocka_unit_test(test_append_plain_bytes),
		cmocka_unit_test(test_append_limits),
		cmocka_unit_test(test_compressed_round_trip),
		cmocka_unit_test(test_incompressible_sent_plain),
		cmocka_unit_test(test_open_rejects_length_mismatch),
		cmocka_unit_test(test_truncation_at_every_byte),
		cmocka_unit_test(test_one_byte_at_a_time),
		cmocka_unit_test(test_several_frames_in_one_feed),
		cmocka_unit_test(test_oversized_length_refused_from_header),
		cmocka_unit_test(test_feed_bounded),
		cmocka_unit_test(test_bad_magic_sticky),
		cmocka_unit_test(test_wrong_version),
		cmocka_unit_test(test_corrupt_compressed_payload),
		cmocka_unit_test(test_trim_releases_idle_reader),
		cmocka_unit_test(test_max_size_frame_fits),
		cmocka_unit_test_setup_teardown(test_send_recv_round_trip, setup_pair,
						teardown_pair),
		cmocka_unit_test_setup_teardown(test_recv_eof_between_frames, setup_pair,
						teardown_pair),
		cmocka_unit_test_setup_teardown(test_recv_eof_mid_frame, setup_pair, teardown_pair),
		cmocka_unit_test_setup_teardown(test_recv_timeout, setup_pair, teardown_pair),
		cmocka_unit_test_setup_teardown(test_recv_bad_magic, setup_pair, teardown_pair),
	};

	/* the file messages are an application's: the codec knows them once registered */
	if (rdf_proto_register() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
