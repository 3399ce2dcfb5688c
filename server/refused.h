/* refused.h - the keys lately refused admission (--admission allowlist or invite), kept
 * in memory for the administrator's window, which offers to admit one with a click.
 *
 * Bounded: at most REFUSED_MAX entries, one per key (a client without a key counts by its
 * address); a key refused again moves to the front and counts one more attempt; when the
 * list is full the entry refused longest ago goes. Thread-safe: a mutex guards the list
 * (refused_add runs on client threads, the window reads from the main thread).
 */
#ifndef ROOMDROP_REFUSED_H
#define ROOMDROP_REFUSED_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "rd_msg.h"
#include "rd_tls.h"

#define REFUSED_MAX 64

struct refused_entry {
	uint64_t last_ms; /* wall clock of the latest attempt */
	unsigned count;   /* attempts */
	int has_fp;       /* 0: the client showed no key */
	uint8_t fp[RD_TLS_FP_LEN];
	char ip[48];
	char nick[RD_NICK_BUF]; /* the nickname it asked for */
};

struct refused {
	pthread_mutex_t mu;
	struct refused_entry v[REFUSED_MAX]; /* newest first */
	size_t n;
};

void refused_init(struct refused *r);
void refused_destroy(struct refused *r);
/* One refused attempt. fp NULL: no key (counted by ip). */
void refused_add(struct refused *r, const uint8_t *fp, const char *ip, const char *nick,
		 uint64_t now_ms);
/* Forget fp (once admitted). 1 if it was listed. */
int refused_forget(struct refused *r, const uint8_t fp[RD_TLS_FP_LEN]);
/* Copy at most max entries, newest first, into out; returns how many. */
size_t refused_list(struct refused *r, struct refused_entry *out, size_t max);

#endif
