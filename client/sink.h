/* sink.h - the writing side of a download, on a thread of its own.
 *
 * The thread that receives GET_CHUNK frames hands each chunk over (sink_push copies it)
 * and goes back to the network at once; the sink's thread hashes the bytes and writes them.
 * Receiving and decrypting then overlap hashing and writing instead of taking turns.
 *
 * Into a file of its own the sink writes at offsets, around the page cache (O_DIRECT) when
 * the file system allows, else through it, starting the disk's writeback every
 * SINK_FLUSH_EVERY bytes (sync_file_range) and waiting for the window before the last one:
 * the final fsync finds little left to write, and the dirty pages a download leaves in
 * memory stay bounded. Into standard output (get -o -) it writes in order.
 *
 * The first error of the writing thread (errno saved) is returned by the next sink_push and
 * by sink_finish; later chunks are then dropped.
 */
#ifndef RD_CLIENT_SINK_H
#define RD_CLIENT_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "rd_hash.h"

struct sink;

/* A sink writing to fd and hashing into h (may be NULL). SINK_FILE: fd is a regular file
 * of ours, written at offsets from pos (direct I/O when it can, writeback as it goes);
 * SINK_STREAM: fd is someone else's (standard output), written in order with write() and
 * left as it was given. RD_ERR_NOMEM / RD_ERR_SYSTEM. */
enum sink_kind {
	SINK_FILE,
	SINK_STREAM
};
int sink_start(struct sink **out, int fd, enum sink_kind kind, uint64_t pos, struct rd_sha256 *h);
/* Queue a copy of n bytes (n <= SINK_SLOT); waits while every slot is full.
 * 0, or the writer's error: RD_ERR_SYSTEM (errno as the writer saw it) or RD_ERR_CRYPTO. */
int sink_push(struct sink *s, const void *p, size_t n);
/* Wait until everything queued is written and hashed, stop the thread and free s.
 * Returns the writer's first error, as sink_push; errno is set for RD_ERR_SYSTEM. */
int sink_finish(struct sink *s);

#define SINK_SLOT (256u * 1024u) /* the largest chunk (RD_CHUNK_SIZE) */

#endif
