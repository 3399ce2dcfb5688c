/* rd_link.h - one connection: the one door for bytes (internal to libroomdrop).
 *
 * A link owns a transport (struct rd_tls_conn: plain or TLS over a non-blocking socket),
 * the frame reader of its input, and its output queue. Nothing outside the link layer and
 * the transport reads or writes a peer socket.
 *
 * Output has two classes:
 *   events  (chat, notices, replies): queued without limit on the producer's side but
 *           bounded per link: past event_limit queued bytes the queue call fails with
 *           RD_ERR_FULL and the caller drops the peer as a slow reader;
 *   bulk    (file streams, relayed data): flow-controlled. Past bulk_high queued bytes the
 *           queue call refuses with RD_ERR_AGAIN (nothing queued) and the producer waits
 *           (rd_link_wait_bulk) until the writer has brought the bulk queue under
 *           bulk_low: a slow receiver slows its sender and never grows memory.
 * Whole frames go out in order within a class; between classes the writer takes every
 * queued event before the next bulk frame, so heartbeats and replies never wait behind a
 * long transfer for more than one bulk frame.
 *
 * A stream (rd_link_send_stream) is bulk written by the producer itself: it waits until
 * the queues are drained, then writes a prefix and a range of a file straight from the
 * file (sendfile() on a plain link, read and encrypt on TLS), frames queued meanwhile
 * following it.
 *
 * Threads: one reader (rd_link_recv / rd_link_read_available), any number of producers
 * (rd_link_queue), one writer at a time (rd_link_flush, called by whoever got *schedule,
 * or a stream). Every transport call is made under the link's io lock; no lock is held
 * while waiting for the network.
 */
#ifndef RD_LINK_H
#define RD_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rd_frame.h"
#include "rd_tls.h"

struct rd_link;

struct rd_link_config {
	uint32_t max_payload; /* largest payload the reader accepts (0 = default) */
	size_t event_limit;   /* queued event bytes before RD_ERR_FULL (0 = 8 MiB) */
	size_t bulk_high;     /* bulk refused at or above this many queued bytes (0 = 1 MiB) */
	size_t bulk_low;      /* bulk producers wake below this (0 = bulk_high / 4) */
};

/* A link over transport t, which it owns from now on (also on failure: t is closed).
 * RD_ERR_NOMEM. */
int rd_link_new(struct rd_tls_conn *t, const struct rd_link_config *cfg, struct rd_link **out);
/* Close the transport and free. The caller guarantees no other thread uses l. */
void rd_link_free(struct rd_link *l);

int rd_link_fd(const struct rd_link *l);
int rd_link_is_tls(const struct rd_link *l);
/* The peer's certificate fingerprint (TLS, after the handshake); errors as
 * rd_tls_conn_peer_fp. */
int rd_link_peer_fp(struct rd_link *l, uint8_t fp[RD_TLS_FP_LEN]);

/* While fd (>= 0) is readable, every wait of this link (handshake, recv, streams, drain)
 * returns RD_ERR_CANCELLED; the link never reads it. -1 (the default) = none. */
void rd_link_set_cancel_fd(struct rd_link *l, int fd);

/* Run the transport's handshake to its end within timeout_ms (< 0: no limit), waiting for
 * the socket without holding the lock. 0, RD_ERR_TIMEOUT, or the transport's error, whose
 * one-line reason rd_link_reason() gives. */
int rd_link_handshake(struct rd_link *l, int timeout_ms);
/* One line on the last transport failure ("" if none); valid until the next call. */
const char *rd_link_reason(struct rd_link *l);
/* What the peer's first bytes looked like (see rd_tls_sniff). */
enum rd_tls_sniff rd_link_peer_spoke(struct rd_link *l);

/* ---- input (one reader thread) -------------------------------------------------------- */

/* The next frame, waiting at most timeout_ms (< 0: no limit). f->payload stays valid until
 * the next input call. RD_ERR_CLOSED when the peer closed between frames,
 * RD_ERR_MALFORMED when it closed inside one, RD_ERR_TIMEOUT, the frame reader's fatal
 * errors (RD_ERR_BAD_MAGIC, RD_ERR_BAD_VERSION, RD_ERR_TOO_BIG, RD_ERR_ZLIB), or the
 * transport's (RD_ERR_SYSTEM, RD_ERR_CRYPTO). An idle reader holds no buffer while it
 * waits. */
int rd_link_recv(struct rd_link *l, int timeout_ms, struct rd_frame *f);
/* For event loops: read what the transport has now (up to 256 KiB from the socket, and
 * everything TLS holds), without waiting. 0 (maybe nothing new), RD_ERR_CLOSED, or an
 * error as above. Then take frames with rd_link_next. */
int rd_link_read_available(struct rd_link *l);
/* A whole buffered frame, or RD_ERR_INCOMPLETE; fatal frame errors as rd_link_recv. */
int rd_link_next(struct rd_link *l, struct rd_frame *f);
/* 1 when a read may make progress without waiting (bytes buffered in the transport). */
int rd_link_input_buffered(struct rd_link *l);
/* 1 when rd_link_recv would return without waiting on the socket: a whole frame is in the
 * reader, or bytes wait in the transport. A program that polls the descriptor must not
 * wait while this is 1: those bytes will not wake it. */
int rd_link_frame_ready(struct rd_link *l);
/* Change the reader's payload limit from the next frame on (rd_frame_reader_set_max). */
void rd_link_set_max_payload(struct rd_link *l, uint32_t max_payload);
/* Read and throw away whatever the peer still sends until it closes, the link dies or
 * timeout_ms passes (after a fatal frame error, so that the ERROR frame sent before is
 * not destroyed by a reset). 0 when the peer closed, else the error. */
int rd_link_drain(struct rd_link *l, int timeout_ms);
/* Give the reader's memory back if nothing is buffered. */
void rd_link_trim(struct rd_link *l);

/* ---- output ----------------------------------------------------------------------------- */

enum rd_link_class {
	RD_LINK_EVENT = 0,
	RD_LINK_BULK = 1
};

/* Queue n bytes of whole frames. Never waits, never writes. *schedule (may be NULL) is set
 * to 1 when the link went from idle to "needs a flush": the caller then makes sure
 * rd_link_flush is called (a server hands it to a flusher thread; a loop flushes when the
 * socket is writable). RD_ERR_CLOSED once the link is dead or closing; events:
 * RD_ERR_FULL past event_limit (nothing queued: drop the peer); bulk: RD_ERR_AGAIN at or
 * past bulk_high (nothing queued: rd_link_wait_bulk, then again). */
int rd_link_queue(struct rd_link *l, enum rd_link_class cls, const void *p, size_t n,
		  int *schedule);
/* Wait until bulk may be queued again (below bulk_low), the link dies (RD_ERR_CLOSED) or
 * rd_now_mono_ms() reaches deadline_ms (RD_ERR_TIMEOUT). */
int rd_link_wait_bulk(struct rd_link *l, uint64_t deadline_ms);

/* Write what is queued until done or the socket would block. 0 with *want NONE: all
 * written (the link is idle again, and when close-after-flush was asked, its write side
 * is shut); 0 with *want READ or WRITE: call again when the socket is ready; an error
 * (RD_ERR_CLOSED, RD_ERR_SYSTEM, RD_ERR_CRYPTO): the link is dead. A dead link returns
 * RD_ERR_CLOSED at once. Only one thread flushes at a time (the one that was told to
 * schedule, or its flusher). */
int rd_link_flush(struct rd_link *l, enum rd_tls_want *want);

/* Write prefix (plen bytes), then len bytes of in_fd from off (in_fd < 0 with len 0: the
 * prefix alone), after everything queued before and before anything queued meanwhile,
 * blocking the calling thread until done or timeout_ms (< 0: no limit) passes.
 * RD_ERR_TIMEOUT (the link is then killed: a stalled reader), RD_ERR_CLOSED,
 * RD_ERR_MISMATCH (the file is shorter), RD_ERR_SYSTEM, RD_ERR_CRYPTO. When it returns
 * with frames queued meanwhile, *schedule (may be NULL) says whether to flush them. */
int rd_link_send_stream(struct rd_link *l, const void *prefix, size_t plen, int in_fd, off_t off,
			size_t len, int timeout_ms, int *schedule);

/* After what is queued now has been written, shut the write side (a polite close). New
 * output is refused from now on. *schedule as for rd_link_queue. */
void rd_link_close_after_flush(struct rd_link *l, int *schedule);
/* Kill the link: output is dropped, waiting producers and the reader wake up (the socket
 * is shut down both ways; the descriptor stays open until rd_link_free). Idempotent. */
void rd_link_kill(struct rd_link *l);
/* 1 once killed or failed. */
int rd_link_dead(struct rd_link *l);

/* Bytes queued and not yet written (both classes). */
size_t rd_link_queued(const struct rd_link *l);
/* Bytes read from / written to the peer so far (frames, after TLS is taken off). */
uint64_t rd_link_bytes_in(const struct rd_link *l);
uint64_t rd_link_bytes_out(const struct rd_link *l);

#endif
