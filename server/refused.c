/* refused.c - the keys lately refused admission (see refused.h). */
#include <stdio.h>
#include <string.h>

#include "refused.h"

void refused_init(struct refused *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
}

void refused_destroy(struct refused *r)
{
	pthread_mutex_destroy(&r->mu);
}

static int same(const struct refused_entry *e, const uint8_t *fp, const char *ip)
{
	if (fp)
		return e->has_fp && !memcmp(e->fp, fp, RD_TLS_FP_LEN);
	return !e->has_fp && !strcmp(e->ip, ip);
}

void refused_add(struct refused *r, const uint8_t *fp, const char *ip, const char *nick,
		 uint64_t now_ms)
{
	struct refused_entry e = { 0 };
	size_t i;

	pthread_mutex_lock(&r->mu);
	for (i = 0; i < r->n && !same(&r->v[i], fp, ip); i++)
		;
	if (i < r->n)
		e = r->v[i]; /* refused again: counted, moved to the front */
	else if (r->n < REFUSED_MAX)
		i = r->n++;
	else
		i = REFUSED_MAX - 1; /* full: the oldest goes */
	memmove(&r->v[1], &r->v[0], i * sizeof(r->v[0]));
	e.count++;
	e.last_ms = now_ms;
	e.has_fp = fp != NULL;
	if (fp)
		memcpy(e.fp, fp, RD_TLS_FP_LEN);
	snprintf(e.ip, sizeof(e.ip), "%s", ip ? ip : "");
	snprintf(e.nick, sizeof(e.nick), "%s", nick ? nick : "");
	r->v[0] = e;
	pthread_mutex_unlock(&r->mu);
}

int refused_forget(struct refused *r, const uint8_t fp[RD_TLS_FP_LEN])
{
	int found = 0;

	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].has_fp && !memcmp(r->v[i].fp, fp, RD_TLS_FP_LEN)) {
			memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof(r->v[0]));
			r->n--;
			found = 1;
			break;
		}
	pthread_mutex_unlock(&r->mu);
	return found;
}

size_t refused_list(struct refused *r, struct refused_entry *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&r->mu);
	n = r->n < max ? r->n : max;
	memcpy(out, r->v, n * sizeof(*out));
	pthread_mutex_unlock(&r->mu);
	return n;
}
