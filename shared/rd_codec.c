/* rd_codec.c - the registry of applications' message rows and error texts (rd_codec.h).
 *
 * Design: registration is rare (startup) and lookups are hot (every frame of an
 * application's type, on every reader thread). Each registry publishes an immutable
 * snapshot, sorted by key, through an atomic pointer: a lookup is one acquire load and a
 * binary search, with no lock. A registration takes the registry's mutex, builds a new
 * snapshot from the old one and the new rows, and publishes it. Old snapshots are never
 * freed (a reader may still be searching one); each new one points to the one it replaced,
 * so they all stay reachable. There are as many snapshots as registrations: a handful.
 */
#include "rd_codec.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "rd_err.h"

/* One registered row: a message type (a = name, b = fields) or an error code (a = text). */
struct entry {
	uint16_t key;
	const char *a;
	const void *b;
};

struct snapshot {
	const struct snapshot *prev; /* the one this replaced: kept, see the top */
	size_t n;
	struct entry e[]; /* sorted by key */
};

struct registry {
	pthread_mutex_t lock; /* serialises registrations; readers never take it */
	_Atomic(const struct snapshot *) cur;
	uint16_t first, last; /* the keys this registry accepts */
};

static struct registry msg_reg = { PTHREAD_MUTEX_INITIALIZER, NULL, RD_TYPE_APP_FIRST,
				   RD_TYPE_APP_LAST };
static struct registry err_reg = { PTHREAD_MUTEX_INITIALIZER, NULL, RD_WIRE_ERR_APP_FIRST,
				   RD_WIRE_ERR_APP_LAST };

static const struct entry *find(const struct snapshot *s, uint16_t key)
{
	size_t lo = 0, hi = s ? s->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->e[mid].key == key)
			return &s->e[mid];
		if (s->e[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const struct entry *reg_find(struct registry *r, uint16_t key)
{
	if (key < r->first || key > r->last)
		return NULL;
	return find(atomic_load_explicit(&r->cur, memory_order_acquire), key);
}

static int entry_cmp(const void *x, const void *y)
{
	const struct entry *a = x, *b = y;

	return (a->key > b->key) - (a->key < b->key);
}

static int same(const struct entry *x, const struct entry *y)
{
	return x->b == y->b && strcmp(x->a, y->a) == 0;
}

/* Publish the old snapshot's entries plus those of add[0..n) it lacks. All or nothing:
 * RD_ERR_INVAL for a key twice in add, RD_ERR_EXISTS for one known with another value. */
static int reg_add(struct registry *r, const struct entry *add, size_t n)
{
	const struct snapshot *old;
	struct snapshot *s = NULL;
	size_t i, k;
	int rc;

	pthread_mutex_lock(&r->lock);
	old = atomic_load_explicit(&r->cur, memory_order_relaxed);
	if (!(s = malloc(sizeof(*s) + ((old ? old->n : 0) + n) * sizeof(s->e[0])))) {
		rc = RD_ERR_NOMEM;
		goto out;
	}
	s->prev = old;
	s->n = 0;
	for (i = 0; i < n; i++) {
		const struct entry *have = find(old, add[i].key);

		for (k = 0; k < i; k++)
			if (add[k].key == add[i].key) {
				rc = RD_ERR_INVAL; /* twice in one table */
				goto out;
			}
		if (have && !same(have, &add[i])) {
			rc = RD_ERR_EXISTS;
			goto out;
		}
		if (!have)
			s->e[s->n++] = add[i];
	}
	if (s->n == 0) { /* all known already: nothing to publish */
		rc = 0;
		goto out;
	}
	if (old)
		memcpy(&s->e[s->n], old->e, old->n * sizeof(s->e[0]));
	s->n += old ? old->n : 0;
	qsort(s->e, s->n, sizeof(s->e[0]), entry_cmp);
	atomic_store_explicit(&r->cur, s, memory_order_release);
	s = NULL;
	rc = 0;
out:
	pthread_mutex_unlock(&r->lock);
	free(s);
	return rc;
}

/* 1 if a field list (and the lists it holds) uses only kinds and rules the codec knows
 * and an application may use. */
static int fields_ok(const struct rd_field *f, unsigned depth)
{
	if (!f || depth > 4)
		return 0;
	for (; f->kind != RD_FK_END; f++) {
		switch (f->kind) {
		case RD_FK_INT:
			if (f->size != 1 && f->size != 2 && f->size != 4 && f->size != 8)
				return 0;
			break;
		case RD_FK_CHARS:
			switch (f->rule & RD_NAME_MASK) {
			case RD_NAME_ANY:
			case RD_NAME_NICK:
			case RD_NAME_NICK_NEW:
			case RD_NAME_ROOM:
			case RD_NAME_FILE:
			case RD_NAME_NONEMPTY:
				break;
			default:
				return 0;
			}
			if (f->size == 0)
				return 0;
			break;
		case RD_FK_STR:
		case RD_FK_BYTES:
		case RD_FK_RAW:
			break;
		case RD_FK_LIST:
			if (!f->list || f->list->entry_size == 0 ||
			    !fields_ok(f->list->fields, depth + 1))
				return 0;
			break;
		default:
			return 0;
		}
	}
	return 1;
}

/* Turn row i of a caller's table into an entry; 0 when the row is not valid. */
typedef int (*row_fn)(const void *rows, size_t i, struct entry *e);

static int msg_entry(const void *rows, size_t i, struct entry *e)
{
	const struct rd_msg_row *row = (const struct rd_msg_row *)rows + i;

	*e = (struct entry){ row->type, row->name, row->fields };
	return row->name != NULL && fields_ok(row->fields, 0);
}

static int err_entry(const void *rows, size_t i, struct entry *e)
{
	const struct rd_err_row *row = (const struct rd_err_row *)rows + i;

	*e = (struct entry){ row->code, row->text, NULL };
	return row->text != NULL;
}

/* Check the n rows of a caller's table (keys in the registry's range) and add them. */
static int reg_add_rows(struct registry *r, const void *rows, size_t n, row_fn conv)
{
	struct entry *add;
	size_t i;
	int rc = RD_ERR_INVAL;

	if ((!rows && n) || n > (size_t)(r->last - r->first) + 1)
		return RD_ERR_INVAL;
	if (n == 0)
		return 0;
	if (!(add = calloc(n, sizeof(*add))))
		return RD_ERR_NOMEM;
	for (i = 0; i < n; i++)
		if (!conv(rows, i, &add[i]) || add[i].key < r->first || add[i].key > r->last)
			goto out;
	rc = reg_add(r, add, n);
out:
	free(add);
	return rc;
}

int rd_msg_register(const struct rd_msg_row *rows, size_t n)
{
	return reg_add_rows(&msg_reg, rows, n, msg_entry);
}

int rd_wire_err_register(const struct rd_err_row *rows, size_t n)
{
	return reg_add_rows(&err_reg, rows, n, err_entry);
}

const struct rd_field *rd_codec_app_fields(uint16_t type)
{
	const struct entry *e = reg_find(&msg_reg, type);

	return e ? e->b : NULL;
}

const char *rd_codec_app_name(uint16_t type)
{
	const struct entry *e = reg_find(&msg_reg, type);

	return e ? e->a : NULL;
}

const char *rd_codec_app_err(uint16_t code)
{
	const struct entry *e = reg_find(&err_reg, code);

	return e ? e->a : NULL;
}
