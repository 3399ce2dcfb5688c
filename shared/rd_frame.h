/* rd_frame.h - frames: the 16-byte header (see rd_proto.h), building frames into a
 * buffer (with zlib when it pays), an incremental decoder usable from any byte source,
 * and blocking frame I/O over a socket with timeouts.
 */
#ifndef RD_FRAME_H
#define RD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "rd_buf.h"

#ifdef __cplusplus
extern "C" {
#endif

struct rd_frame_hdr {
	uint8_t version;
	uint8_t flags;
	uint16_t type;
	uint32_t req_id;
	uint32_t len; /* payload length on the wire */
};

/* A decoded frame. payload points at the (decompressed) payload; it stays valid until
 * the next call on the reader that produced it. */
struct rd_frame {
	struct rd_frame_hdr hdr;
	const uint8_t *payload;
	size_t len; /* payload length after decompression */
};

/* Write the 16 header bytes for h (magic and version filled in; h->version ignored). */
void rd_frame_hdr_encode(const struct rd_frame_hdr *h, uint8_t out[16]);

/* Parse 16 header bytes. Checks, in order: magic (RD_ERR_BAD_MAGIC), version
 * (RD_ERR_BAD_VERSION), length <= max_payload (RD_ERR_TOO_BIG). RD_ERR_INCOMPLETE when
 * n < 16. Unknown flag bits are cleared, not refused. The type is not checked here. */
int rd_frame_hdr_decode(const uint8_t *p, size_t n, uint32_t max_payload, struct rd_frame_hdr *h);

/* Options for rd_frame_append */
#define RD_FRAME_COMPRESS 0x1u /* try zlib; used only if it saves more than 10% */

/* Append one frame (header + payload) to out. With RD_FRAME_COMPRESS the payload is
 * compressed when rd_zip_worth() says so. RD_ERR_TOO_BIG if n > RD_MAX_PAYLOAD_HARD. */
int rd_frame_append(struct rd_buf *out, uint16_t type, uint32_t req_id, const void *payload,
		    size_t n, unsigned opts);

/* Decode a frame's payload given its header: copies nothing when not compressed
 * (out->payload = p), inflates into scratch when compressed (bounded by max_payload).
 * p/n are exactly the hdr.len payload bytes. */
int rd_frame_open(const struct rd_frame_hdr *h, const uint8_t *p, size_t n, uint32_t max_payload,
		  struct rd_buf *scratch, struct rd_frame *out);

/* ---- incremental decoder ------------------------------------------------------------
 * Feed it bytes as they come (from a socket, a file, a fuzzer); take whole frames out.
 * After an error other than RD_ERR_INCOMPLETE the stream cannot be resynchronised: the
 * reader stays in the error state and the connection should be closed. */
struct rd_frame_reader;

int rd_frame_reader_new(uint32_t max_payload, struct rd_frame_reader **out);
void rd_frame_reader_free(struct rd_frame_reader *r);
/* Change the largest payload accepted from the next frame on (0 = the default, capped at
 * the hard limit). A server lowers it for connections that have not registered yet. */
void rd_frame_reader_set_max(struct rd_frame_reader *r, uint32_t max_payload);
/* Copy n bytes in. RD_ERR_TOO_BIG if buffering them would exceed max_payload + 2 frames. */
int rd_frame_reader_feed(struct rd_frame_reader *r, const void *p, size_t n);
/* Space to read into directly (avoids a copy): returns a pointer to at least want bytes
 * of free space in *p; then call rd_frame_reader_commit with what was written. */
int rd_frame_reader_space(struct rd_frame_reader *r, size_t want, uint8_t **p, size_t *avail);
void rd_frame_reader_commit(struct rd_frame_reader *r, size_t n);
/* 0 with *f filled; RD_ERR_INCOMPLETE when no whole frame is buffered; or a fatal error
 * (RD_ERR_BAD_MAGIC, RD_ERR_BAD_VERSION, RD_ERR_TOO_BIG, RD_ERR_ZLIB). */
int rd_frame_reader_next(struct rd_frame_reader *r, struct rd_frame *f);
/* Bytes buffered and not yet returned as frames. */
size_t rd_frame_reader_pending(const struct rd_frame_reader *r);
/* 1 when rd_frame_reader_next would return without more bytes: a whole frame is
 * buffered, or the bytes are already an error. */
int rd_frame_reader_ready(const struct rd_frame_reader *r);
/* Release memory held by an idle reader (no pending bytes): keeps idle clients small. */
void rd_frame_reader_trim(struct rd_frame_reader *r);

/* ---- blocking socket I/O ------------------------------------------------------------ */
/* Read from fd until r yields a frame. timeout_ms < 0 waits forever; the deadline covers
 * the whole frame. RD_ERR_CLOSED when the peer closed cleanly between frames,
 * RD_ERR_MALFORMED when it closed in the middle of one, RD_ERR_TIMEOUT, RD_ERR_SYSTEM. */
int rd_frame_recv(int fd, struct rd_frame_reader *r, int timeout_ms, struct rd_frame *f);

/* Build and write one frame with rd_net_write_all. */
int rd_frame_send(int fd, uint16_t type, uint32_t req_id, const void *payload, size_t n,
		  unsigned opts, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
