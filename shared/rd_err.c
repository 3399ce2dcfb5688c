/* rd_err.c - error texts and the library-wide log sink.
 *
 * The sink (function, user pointer, threshold) is guarded by sink_lock, a rwlock:
 * rd_log_emit holds it for reading while it calls the sink, rd_log_set takes it for
 * writing. So once rd_log_set returns, the previous sink is never called again and its
 * user pointer may be freed. A sink must therefore not call rd_log_set itself.
 * rd_log_max_level mirrors the threshold (-1 = no sink) for a lock-free early exit.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

#include "internal.h"
#include "rd_err.h"

atomic_int rd_log_max_level = -1;

static pthread_rwlock_t sink_lock = PTHREAD_RWLOCK_INITIALIZER;
static rd_log_fn sink_fn;
static void *sink_user;
static enum rd_log_level sink_max;

/* Indexed by -rc. */
static const char *const err_text[] = {
	[0] = "success",
	[-RD_ERR_SYSTEM] = "system call failed",
	[-RD_ERR_NOMEM] = "out of memory",
	[-RD_ERR_INVAL] = "invalid argument",
	[-RD_ERR_INCOMPLETE] = "incomplete data",
	[-RD_ERR_MALFORMED] = "malformed data",
	[-RD_ERR_TOO_BIG] = "length exceeds limit",
	[-RD_ERR_BAD_MAGIC] = "bad frame magic",
	[-RD_ERR_BAD_VERSION] = "unsupported protocol version",
	[-RD_ERR_UNKNOWN_TYPE] = "unknown message type",
	[-RD_ERR_CLOSED] = "connection closed by peer",
	[-RD_ERR_TIMEOUT] = "timed out",
	[-RD_ERR_ZLIB] = "corrupt compressed data",
	[-RD_ERR_CRYPTO] = "cryptographic library failure",
	[-RD_ERR_ADDR] = "bad or unresolvable address",
	[-RD_ERR_ADDR_IN_USE] = "address already in use",
	[-RD_ERR_REFUSED] = "connection refused",
	[-RD_ERR_PROTOCOL] = "protocol violation by peer",
	[-RD_ERR_REMOTE] = "peer reported an error",
	[-RD_ERR_EXISTS] = "already exists",
	[-RD_ERR_NOT_FOUND] = "not found",
	[-RD_ERR_FULL] = "limit reached",
	[-RD_ERR_STATE] = "invalid in current state",
	[-RD_ERR_MISMATCH] = "size or hash mismatch",
	[-RD_ERR_AGAIN] = "no room yet: try again",
	[-RD_ERR_CANCELLED] = "cancelled",
};

_Static_assert(sizeof(err_text) / sizeof(err_text[0]) == (size_t)-RD_ERR__LAST,
	       "every RD_ERR_* code needs a text");

const char *rd_strerror(int rc)
{
	if (rc > 0 || rc <= RD_ERR__LAST || err_text[-rc] == NULL)
		return "unknown error";
	return err_text[-rc];
}

static const char *const level_names[] = { "error", "warn", "info", "debug" };

const char *rd_log_level_name(enum rd_log_level level)
{
	if ((unsigned)level >= RD_ARRAY_LEN(level_names))
		return "unknown";
	return level_names[level];
}

int rd_log_level_parse(const char *s, enum rd_log_level *out)
{
	size_t i;

	if (out != NULL)
		*out = RD_LOG_ERROR;
	if (s == NULL || out == NULL)
		return RD_ERR_INVAL;
	for (i = 0; i < RD_ARRAY_LEN(level_names); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum rd_log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = RD_LOG_WARN;
		return 0;
	}
	return RD_ERR_INVAL;
}

void rd_log_set(rd_log_fn fn, enum rd_log_level max_level, void *user)
{
	pthread_rwlock_wrlock(&sink_lock);
	sink_fn = fn;
	sink_user = fn != NULL ? user : NULL;
	sink_max = max_level;
	atomic_store(&rd_log_max_level, fn != NULL ? (int)max_level : -1);
	pthread_rwlock_unlock(&sink_lock);
}

void rd_log_emit(enum rd_log_level level, const char *file, int line, const char *func,
		 const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if ((int)level > atomic_load_explicit(&rd_log_max_level, memory_order_relaxed))
		return;
	pthread_rwlock_rdlock(&sink_lock);
	if (sink_fn != NULL && level <= sink_max) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		sink_fn(level, file, line, func, msg, sink_user);
	}
	pthread_rwlock_unlock(&sink_lock);
}
