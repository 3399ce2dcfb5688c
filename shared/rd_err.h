/* rd_err.h - the one error enum of libroomdrop, and its log callback.
 *
 * Every library function that can fail returns int: 0 on success or a negative
 * RD_ERR_* code. Results go through out-parameters, cleared on entry.
 * RD_ERR_SYSTEM means "see errno" (the library leaves errno as the failing call set it).
 * The library never prints and never exits: it reports through return codes and the
 * optional log callback below.
 */
#ifndef RD_ERR_H
#define RD_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

enum rd_err {
	RD_OK = 0,
	RD_ERR_SYSTEM = -1,       /* a system call failed: see errno */
	RD_ERR_NOMEM = -2,        /* allocation failed */
	RD_ERR_INVAL = -3,        /* invalid argument (a programmer's or user's value) */
	RD_ERR_INCOMPLETE = -4,   /* buffer ends before the item does: wait for more bytes */
	RD_ERR_MALFORMED = -5,    /* bytes contradict themselves (a lying length, bad UTF-8...) */
	RD_ERR_TOO_BIG = -6,      /* a declared length exceeds its limit */
	RD_ERR_BAD_MAGIC = -7,    /* frame does not start with "RD" */
	RD_ERR_BAD_VERSION = -8,  /* frame carries a protocol version we do not speak */
	RD_ERR_UNKNOWN_TYPE = -9, /* message type unknown to this decoder */
	RD_ERR_CLOSED = -10,      /* the peer closed the connection */
	RD_ERR_TIMEOUT = -11,     /* a deadline passed */
	RD_ERR_ZLIB = -12,        /* compressed data is corrupt */
	RD_ERR_CRYPTO = -13,      /* OpenSSL reported a failure */
	RD_ERR_ADDR = -14,        /* address could not be parsed or resolved */
	RD_ERR_ADDR_IN_USE = -15, /* the listening port is taken */
	RD_ERR_REFUSED = -16,     /* connection refused */
	RD_ERR_PROTOCOL = -17,    /* peer broke the protocol (unexpected message, bad sequence) */
	RD_ERR_REMOTE = -18,      /* the peer answered with an ERROR frame (see its code) */
	RD_ERR_EXISTS = -19,      /* the thing already exists */
	RD_ERR_NOT_FOUND = -20,   /* the thing does not exist */
	RD_ERR_FULL = -21,        /* a bound (queue, table, quota) is reached */
	RD_ERR_STATE = -22,       /* call not valid in the object's current state */
	RD_ERR_MISMATCH = -23,    /* a hash or size check failed */
	RD_ERR_AGAIN = -24,       /* not now: wait for room (a flow-controlled queue) */
	RD_ERR_CANCELLED = -25,   /* the caller asked to stop waiting (rd_conn_options.cancel_fd) */
	RD_ERR__LAST = -26
};

/* Human-readable text for an RD_ERR_* code (or 0). Never NULL; static storage. */
const char *rd_strerror(int rc);

/* Log levels, most severe first. */
enum rd_log_level {
	RD_LOG_ERROR = 0,
	RD_LOG_WARN = 1,
	RD_LOG_INFO = 2,
	RD_LOG_DEBUG = 3
};

/* A log sink. file/line/func name the call site inside the library.
 * Called from any library thread; must be thread-safe. */
typedef void (*rd_log_fn)(enum rd_log_level level, const char *file, int line, const char *func,
			  const char *msg, void *user);

/* Install (or with fn == NULL remove) the library-wide log sink and its threshold.
 * Messages above max_level are not formatted at all. */
void rd_log_set(rd_log_fn fn, enum rd_log_level max_level, void *user);

/* Name of a level ("error", "warn", "info", "debug"); parse one (0, or RD_ERR_INVAL). */
const char *rd_log_level_name(enum rd_log_level level);
int rd_log_level_parse(const char *s, enum rd_log_level *out);

#ifdef __cplusplus
}
#endif
#endif
