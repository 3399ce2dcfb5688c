/* internal.h - declarations shared between libroomdrop's own files.
 *
 * Never included by server/, client/ or applications: nothing here is API and it is not
 * installed. Public names live in the rd_*.h headers.
 */
#ifndef RD_INTERNAL_H
#define RD_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "rd_err.h"

#if defined(__GNUC__) || defined(__clang__)
#define RD_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define RD_LIKELY(x) __builtin_expect(!!(x), 1)
#define RD_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define RD_PRINTF(f, a)
#define RD_LIKELY(x) (x)
#define RD_UNLIKELY(x) (x)
/* The value of one hex digit (either case), or -1 (rd_hash.c). */
int rd_hex_digit(char c);

/* What applications registered (rd_codec.c): the fields and name of an application's
 * message type, the text of an application's wire error code; NULL when not registered.
 * Lock-free: safe on any thread. */
struct rd_field;
const struct rd_field *rd_codec_app_fields(uint16_t type);
const char *rd_codec_app_name(uint16_t type);
const char *rd_codec_app_err(uint16_t code);

#endif

#define RD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define RD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RD_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Highest level that currently reaches a sink, or -1 when no sink is installed.
 * Read without a lock by RD_LOG so that a disabled message costs one load. */
extern atomic_int rd_log_max_level;

/* Format and deliver one message to the installed sink (if any and if level passes).
 * Use through RD_LOG so the call site is filled in. */
void rd_log_emit(enum rd_log_level level, const char *file, int line, const char *func,
		 const char *fmt, ...) RD_PRINTF(5, 6);

/* Decode the UTF-8 sequence (RFC 3629) at p[0..n): its length, and the code point in *cp;
 * 0 when the bytes do not start a valid sequence (overlong, surrogate, above U+10FFFF,
 * stray continuation, truncated). n must be at least 1. (rd_names.c) */
size_t rd_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp);

/* The chosen link of a direct peer connection (rd_peer.c), NULL before it is up: for the
 * library's own transfer code (streams, bulk queues). */
struct rd_link;
struct rd_peer;
struct rd_link *rd_peer_link(struct rd_peer *p);

/* RD_LOG(RD_LOG_WARN, "client %u: %s", id, rd_strerror(rc));
 * Arguments are not evaluated when the level is filtered out. */
#define RD_LOG(level, ...)                                                                         \
	do {                                                                                       \
		if ((int)(level) <= atomic_load_explicit(&rd_log_max_level, memory_order_relaxed)) \
			rd_log_emit((level), __FILE__, __LINE__, __func__, __VA_ARGS__);           \
	} while (0)

/* The value of one hex digit (either case), or -1 (rd_hash.c). */
int rd_hex_digit(char c);

/* What applications registered (rd_codec.c): the fields and name of an application's
 * message type, the text of an application's wire error code; NULL when not registered.
 * Lock-free: safe on any thread. */
struct rd_field;
const struct rd_field *rd_codec_app_fields(uint16_t type);
const char *rd_codec_app_name(uint16_t type);
const char *rd_codec_app_err(uint16_t code);

#endif
