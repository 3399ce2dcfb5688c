/* fuzz_decode.c - libFuzzer target for the frame reader and the payload codec.
 *
 * The input is read as a byte stream of frames, once in one piece and once in small
 * pieces whose size the input's first byte picks; each frame's payload is decoded as its
 * type. The input is also decoded directly as the payload of every known type.
 * A message that decodes is re-encoded (which may refuse it: the encoder is stricter);
 * if that succeeds, the bytes must decode again and re-encode to the very same bytes.
 * Any other outcome, a crash or a sanitizer report is a bug.
 *
 * Seeds: tests/fuzz/seeds (scripts/make-fuzz-seeds.sh). Run: make fuzz FUZZ_SECONDS=N.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rd_buf.h"
#include "rd_err.h"
#include "rd_frame.h"
#include "files/rdf_proto.h"
#include "rd_msg.h"
#include "rd_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint16_t known[0x100];
static size_t nknown;

static void init_known(void)
{
	if (nknown)
		return;
	if (rdf_proto_register() != 0) /* the file messages are fuzzed too */
		abort();
	for (uint32_t t = 0; t <= 0xffff; t++)
		if (rd_msg_known((uint16_t)t) && nknown < sizeof(known) / sizeof(known[0]))
			known[nknown++] = (uint16_t)t;
	if (!nknown)
		abort();
}

/* Encode m; on success check that the bytes decode and encode to the same bytes. */
static void check_reencode(const struct rd_msg *m)
{
	struct rd_buf b1, b2;
	struct rd_msg again;

	rd_buf_init(&b1, 0);
	rd_buf_init(&b2, 0);
	if (rd_msg_encode(m, &b1) == 0) {
		if (rd_msg_decode(m->type, b1.data, b1.len, &again) != 0)
			abort(); /* the encoder wrote something its own decoder refuses */
		if (rd_msg_encode(&again, &b2) != 0 || b2.len != b1.len ||
		    (b1.len && memcmp(b1.data, b2.data, b1.len) != 0))
			abort(); /* the round trip is not stable */
		rd_msg_clear(&again);
		rd_buf_reset(&b2);
		if (rd_msg_frame(&b2, m, 7, 0) != 0 || b2.len != RD_FRAME_HEADER_SIZE + b1.len)
			abort();
	}
	rd_buf_free(&b1);
	rd_buf_free(&b2);
}

static void check_payload(uint16_t type, const uint8_t *p, size_t n)
{
	struct rd_msg m;
	int rc = rd_msg_decode(type, p, n, &m);

	if (rc == 0) {
		check_reencode(&m);
		rd_msg_clear(&m);
	} else if (rd_msg_known(type) == (rc == RD_ERR_UNKNOWN_TYPE)) {
		abort(); /* UNKNOWN_TYPE exactly for unknown types */
	}
}

/* Feed data to a fresh reader, `step` bytes at a time, decoding every frame it yields. */
static void read_frames(const uint8_t *data, size_t size, size_t step)
{
	struct rd_frame_reader *r = NULL;
	struct rd_frame f;
	size_t off = 0;
	int rc = 0;

	if (rd_frame_reader_new(RD_MAX_PAYLOAD_DEFAULT, &r) != 0)
		return;
	while (off < size && rc == 0) {
		size_t n = size - off < step ? size - off : step;

		if (rd_frame_reader_feed(r, data + off, n) != 0)
			break;
		off += n;
		while ((rc = rd_frame_reader_next(r, &f)) == 0) {
			if (f.len && !f.payload)
				abort();
			check_payload(f.hdr.type, f.payload, f.len);
		}
		if (rc == RD_ERR_INCOMPLETE)
			rc = 0;
	}
	rd_frame_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_known();
	read_frames(data, size, size ? size : 1);
	if (size > 1)
		read_frames(data, size, (size_t)(data[0] % 23) + 1);
	for (size_t i = 0; i < nknown; i++)
		check_payload(known[i], data, size);
	/* an unknown type is refused whatever the bytes */
	check_payload(0x7fff, data, size);
	return 0;
}
