/* files.c - the file application of roomdrop-server: PUT/GET/LIST/DELETE on room folders.
 *
 * Threads and ownership. The client's reader thread (the core's "rd-c<id>") never waits
 * on the disk: files_on_frame copies each file frame, with the room the client is in at
 * that moment, onto the client's work queue and returns. One worker thread per client
 * ("rd-files-w", started with its first file frame) runs the handlers in the order the
 * frames came, so heartbeats measure the peer, not the disk: a slow fsync, a staging key
 * held by another connection (up to BUSY_WAIT_MS) or a download that must end before the
 * next one starts all wait on the worker while the reader goes on answering PING. The
 * queue is bounded (WORK_MAX_BYTES): past it the reader waits for room, which is how a
 * disk slower than the network slows an upload down (TCP pushes back on the sender).
 * XFER_CANCEL of a download is also acted on at once by the reader (the download thread
 * checks it), so it never waits behind a queued GET. The worker alone touches the
 * client's struct fclient (its uploads in progress); files_on_disconnect stops and joins
 * it before the client is freed. What uploads of different
 * clients share lives in struct files under files.lock (a leaf lock: nothing else is
 * locked while it is held, and no I/O is done under it):
 *   - the staging keys in use, so two uploads never write the same staging file and the
 *     sweeper never removes one that is being resumed;
 *   - the names reserved by --rename uploads, and the bytes each upload will add to its
 *     room and counts against its uploader's nickname;
 *   - the staging files that no connection holds any more ("abandoned": kept for a
 *     resume), with the nickname that left them and their size, for the per-user cap.
 *
 * Space. A PUT reserves the blocks of its declared size (fallocate KEEP_SIZE) so a full
 * disk is reported at once; when the upload ends without a commit (disconnect, cancel,
 * error) the reservation is given back (store_release_reservation: only the bytes
 * received stay, which is what a resume uses), and at start every staging file is trimmed
 * the same way. The room quota counts committed files + staged bytes of abandoned uploads
 * + the declared size of uploads in progress; the per-user cap counts, per nickname, the
 * declared sizes of its uploads in progress + what its abandoned uploads left staged
 * (staging files left before a restart count for the room only). A refused PUT leaves
 * no staging file behind.
 *
 * Upload: PUT checks name, room, limits and conflicts, opens (or resumes)
 * STORE/.staging/ROOM/<sha256>-<size>, re-hashing what is already there, and answers
 * PUT_READY with the offset to continue from. Each PUT_CHUNK must start exactly there;
 * it is hashed and written (writeback started every few MiB so the final fsync is short).
 * PUT_END checks size and SHA-256, fsyncs, renames into the room folder (RENAME_NOREPLACE
 * unless --overwrite: of two racing uploads exactly one wins, the other gets 501), fsyncs
 * the folder, writes the metadata record and tells the room. A crash at any point leaves
 * either the old file or the new one, never a partial one; the staging file stays for a
 * resume until staging_ttl_s passes without a write.
 *
 * Download: GET opens the file (the descriptor keeps that inode whole whatever happens to
 * the name), answers GET_BEGIN, then streams GET_CHUNK frames through the core's blocking
 * rd_client_send_file: raw chunks as header + fixed fields followed by sendfile() of the
 * data (no copy through user space); when a sample of the file's first 16 KiB compresses
 * (rd_zip_sample_worth), each chunk is read, compressed when that saves more than 10%, and
 * sent as a prebuilt frame with the prefix-only form (len 0). Either way the thread waits
 * for the socket, so a download never fills the client's output queue.
 */
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "files_store.h"
#include "state.h"
#include "files/rdf_proto.h"
#include "rd_buf.h"
#include "rd_err.h"
#include "rd_frame.h"
#include "rd_hash.h"
#include "rd_msg.h"
#include "rd_names.h"
#include "rd_net.h"
#include "rd_proto.h"
#include "rd_zip.h"

#define MAX_PUTS_PER_CLIENT 8u
#define SYNC_EVERY (8u << 20) /* start writeback of staged data every 8 MiB */
/* Uploads of at least DIRECT_MIN bytes write around the page cache (O_DIRECT) in blocks of
 * DIRECT_BUF: filling fresh page-cache memory was most of the server's time on a put
 * (perf: 62% of its samples in copy_folio_from_iter_atomic under pwrite on this VM), and
 * the fsync at the end then has nothing left to write. */
#define DIRECT_MIN (8u << 20)
#define DIRECT_BUF (1u << 20)
#define DIRECT_ALIGN 4096u
#define SEND_TIMEOUT_MS 30000 /* one GET chunk to a client that does not read */
#define BUSY_WAIT_MS 2000     /* a staging key held by a dying connection */
#define SWEEP_INTERVAL_MAX_S 60
#define RENAME_TRIES 10000u
#define SAMPLE_SIZE (16u * 1024u)
#define LIST_PAYLOAD_BUDGET (RD_MAX_PAYLOAD_DEFAULT - 4096u)
#define WORK_MAX_BYTES (4u << 20) /* frames queued for a client's worker before the reader waits */
/* Group commit (PROTOCOL.md section 17, "Batches"): an upload of at most BATCH_FILE_MAX
 * bytes that ends while more of its client's frames wait is committed with the others
 * that end before the queue runs dry, at most BATCH_MAX at a time: one syncfs makes their
 * data durable, then they are renamed into place and one more syncfs makes the names and
 * records durable, and only then is each PUT_DONE sent. */
#define BATCH_MAX 64u
#define BATCH_FILE_MAX (1u << 20)

struct active {
	struct active *next;
	char room[RD_ROOM_BUF];
	char key[STORE_KEY_BUF];  /* staging file held ("" for none) */
	char stored[RD_NAME_BUF]; /* name reserved by a --rename upload ("" for none) */
	char nick[RD_NICK_BUF];   /* the uploader ("" for the sweeper) */
	uint64_t size;            /* bytes this upload adds to its room */
	uint32_t xfer_id;         /* 0 = held by the sweeper */
	const void *owner;        /* the connection's fclient (NULL for the sweeper) */
};

/* A staging file kept for a resume after its upload ended without a commit. */
struct abandoned {
	struct abandoned *next;
	char room[RD_ROOM_BUF];
	char key[STORE_KEY_BUF];
	char nick[RD_NICK_BUF]; /* who left it */
	uint64_t bytes;         /* staged */
};

struct files {
	struct files_config cfg;
	char *root;
	struct store st;
	struct rd_server *srv;
	struct state *state;     /* operators (NULL: none); written before the server starts */
	pthread_mutex_t lock;    /* guards active, last_sweep_s */
	pthread_cond_t released; /* an active entry went away */
	struct active *active;
	struct abandoned *abandoned;
	unsigned released_at_start; /* staging files trimmed by files_new (logged on attach) */
	int64_t last_sweep_s;
	atomic_uint next_xfer;
};

struct put_xfer {
	struct put_xfer *next;
	uint32_t id;
	uint8_t mode;
	char room[RD_ROOM_BUF];
	char name[RD_NAME_BUF]; /* as asked */
	char key[STORE_KEY_BUF];
	uint8_t sha[RD_SHA256_SIZE];    /* declared; all zero for a streamed put until PUT_SEAL */
	uint8_t keysha[RD_SHA256_SIZE]; /* what the staging key is made of (see handle_put) */
	int streamed;                   /* PUT declared no SHA-256: PUT_SEAL brings it */
	uint64_t size, offset0, received, synced, start_ms;
	int fd;        /* staging file */
	int stage_dir; /* STORE/.staging/ROOM */
	int pct;       /* last percentage shown as activity */
	struct active *act;
	struct hasher *hs; /* hashes the staging file behind the writes */
	/* direct mode (a new upload of at least DIRECT_MIN bytes, on a filesystem that takes
	 * O_DIRECT): the bytes are hashed in memory (h, no hasher) and gathered in abuf, which
	 * is written around the page cache through dfd one DIRECT_BUF at a time; the staging
	 * file holds the first `aoff` bytes, abuf the next `afill` (written out, through fd,
	 * before anything reads the file or keeps it for a resume: direct_flush). */
	int dfd;
	struct rd_sha256 *h;
	uint8_t *abuf;
	size_t afill;
	uint64_t aoff;
	/* ended, waiting in its client's batch (no longer in fclient.puts): */
	struct rd_frame end; /* the PUT_END's header (no payload): whom to answer */
	uint8_t got[RD_SHA256_SIZE];
};

struct get_xfer;

/* One file frame waiting for the client's worker: a copy of the frame and the room the
 * client was in when it arrived. */
struct job {
	struct job *next;
	struct rd_frame f;
	char room[RD_ROOM_BUF];
	uint8_t payload[];
};

/* The client's worker and its queue (mu guards the queue fields). */
struct worker {
	pthread_t thread;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* work arrived / room in the queue / stop */
	struct job *head, *tail;
	size_t bytes;
	int stop;
	struct files *f;
	struct rd_client *c;
	atomic_uint cancel_get; /* xfer id of a download to stop now (0 = none) */
};

struct fclient {
	struct worker w;
	struct put_xfer *puts;
	unsigned nputs;
	struct put_xfer *batch; /* ended uploads waiting for their group commit, in order */
	unsigned nbatch;
	struct get_xfer *get; /* the download in progress (or finished, not yet joined) */
	uint32_t aborted[4];  /* uploads ended by an error: their chunks still on the */
	unsigned naborted;    /* way are dropped without a reply each */
};

void files_config_defaults(struct files_config *c)
{
	if (c == NULL)
		return;
	memset(c, 0, sizeof(*c));
	c->store_root = "roomdrop-store";
	c->max_file_size = 4ull << 30;
	c->room_quota = 0;
	c->max_staged_per_user = 8ull << 30;
	c->min_free_bytes = 64ull << 20;
	c->staging_ttl_s = RD_STAGING_TTL_S;
}

/* ---- shared table (files.lock) -------------------------------------------------------- */

static struct active *active_find_key(struct files *f, const char *room, const char *key)
{
	struct active *a;

	for (a = f->active; a != NULL; a = a->next)
		if (a->key[0] != '\0' && strcmp(a->room, room) == 0 && strcmp(a->key, key) == 0)
			return a;
	return NULL;
}

static int active_reserved_name(struct files *f, const char *room, const char *name)
{
	struct active *a;

	for (a = f->active; a != NULL; a = a->next)
		if (a->stored[0] != '\0' && strcmp(a->room, room) == 0 &&
		    strcmp(a->stored, name) == 0)
			return 1;
	return 0;
}

static uint64_t active_room_bytes(struct files *f, const char *room)
{
	struct active *a;
	uint64_t sum = 0;

	for (a = f->active; a != NULL; a = a->next)
		if (strcmp(a->room, room) == 0)
			sum += a->size;
	return sum;
}

/* Bytes nick has in unfinished uploads: declared sizes of its uploads in progress, plus
 * what its abandoned ones left staged (except the staging file `except_key` of room,
 * which the caller is resuming and counts by its declared size). */
static uint64_t user_staged_bytes(struct files *f, const char *nick, const char *room,
				  const char *except_key)
{
	struct abandoned *b;
	struct active *a;
	uint64_t sum = 0;

	for (a = f->active; a != NULL; a = a->next)
		if (a->nick[0] != '\0' && strcmp(a->nick, nick) == 0)
			sum += a->size;
	for (b = f->abandoned; b != NULL; b = b->next)
		if (strcmp(b->nick, nick) == 0 &&
		    !(strcmp(b->room, room) == 0 && strcmp(b->key, except_key) == 0))
			sum += b->bytes;
	return sum;
}

/* Forget the abandoned staging file room/key (resumed, removed or committed). */
static void abandoned_drop_locked(struct files *f, const char *room, const char *key)
{
	struct abandoned **pp = &f->abandoned, *b;

	while ((b = *pp) != NULL) {
		if (strcmp(b->room, room) == 0 && strcmp(b->key, key) == 0) {
			*pp = b->next;
			free(b);
		} else {
			pp = &b->next;
		}
	}
}

static void abandoned_drop(struct files *f, const char *room, const char *key)
{
	pthread_mutex_lock(&f->lock);
	abandoned_drop_locked(f, room, key);
	pthread_mutex_unlock(&f->lock);
}

/* Remember that nick left `bytes` staged in room/key (no entry when nick is unknown or
 * memory is short: the file still counts for its room). */
static void abandoned_add(struct files *f, const char *room, const char *key, const char *nick,
			  uint64_t bytes)
{
	struct abandoned *b = calloc(1, sizeof(*b));

	pthread_mutex_lock(&f->lock);
	abandoned_drop_locked(f, room, key);
	if (b != NULL && nick[0] != '\0') {
		snprintf(b->room, sizeof(b->room), "%s", room);
		snprintf(b->key, sizeof(b->key), "%s", key);
		snprintf(b->nick, sizeof(b->nick), "%s", nick);
		b->bytes = bytes;
		b->next = f->abandoned;
		f->abandoned = b;
		b = NULL;
	}
	pthread_mutex_unlock(&f->lock);
	free(b);
}

/* store_staged_usage filter: the staging file is held by an upload in progress (which
 * counts by its declared size). user = struct held_ctx. */
struct held_ctx {
	struct files *f;
	const char *room;
};

static int staged_is_held(const char *name, void *user)
{
	struct held_ctx *h = user;
	int held;

	pthread_mutex_lock(&h->f->lock);
	held = active_find_key(h->f, h->room, name) != NULL;
	pthread_mutex_unlock(&h->f->lock);
	return held;
}

static void active_unlink_locked(struct files *f, struct active *gone)
{
	struct active **pp;

	for (pp = &f->active; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == gone) {
			*pp = gone->next;
			break;
		}
	}
	pthread_cond_broadcast(&f->released);
}

static void active_release(struct files *f, struct active *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&f->lock);
	active_unlink_locked(f, a);
	pthread_mutex_unlock(&f->lock);
	free(a);
}

/* store_sweep's claim callback: hold (or let go of) a stale staging key. */
static int sweep_claim(const char *room, const char *key, int release, void *user)
{
	struct files *f = user;
	struct active *a;
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	a = active_find_key(f, room, key);
	if (release) {
		if (a != NULL && a->xfer_id == 0) {
			active_unlink_locked(f, a);
			free(a);
		}
		abandoned_drop_locked(f, room, key);
	} else if (a != NULL) {
		rc = 1;
	} else {
		a = calloc(1, sizeof(*a));
		if (a == NULL) {
			rc = 1;
		} else {
			snprintf(a->room, sizeof(a->room), "%s", room);
			snprintf(a->key, sizeof(a->key), "%s", key);
			a->next = f->active;
			f->active = a;
		}
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static void sweep(struct files *f, int force)
{
	int64_t now = (int64_t)time(NULL);
	int64_t every = f->cfg.staging_ttl_s < SWEEP_INTERVAL_MAX_S ? f->cfg.staging_ttl_s :
								      SWEEP_INTERVAL_MAX_S;
	unsigned removed = 0;

	pthread_mutex_lock(&f->lock);
	if (!force && now - f->last_sweep_s < every) {
		pthread_mutex_unlock(&f->lock);
		return;
	}
	f->last_sweep_s = now;
	pthread_mutex_unlock(&f->lock);
	(void)store_sweep(&f->st, now, f->cfg.staging_ttl_s, sweep_claim, f, &removed);
	if (removed > 0 && f->srv != NULL) {
		struct rd_event ev = { 0 };

		ev.kind = RD_EV_INFO;
		ev.time_ms = rd_now_wall_ms();
		snprintf(ev.text, sizeof(ev.text),
			 "removed %u stale staging file%s (older than %" PRIu32 " s)", removed,
			 removed == 1 ? "" : "s", f->cfg.staging_ttl_s);
		rd_server_post_event(f->srv, &ev);
	}
}

/* ---- life cycle ------------------------------------------------------------------------ */

int files_new(const struct files_config *cfg, struct files **out)
{
	struct files_config def;
	struct files *f = NULL;
	int rc;

	if (out == NULL)
		return RD_ERR_INVAL;
	*out = NULL;
	/* the core decodes the file messages once their rows are registered */
	if ((rc = rdf_proto_register()) != 0)
		return rc;
	if (cfg == NULL) {
		files_config_defaults(&def);
		cfg = &def;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return RD_ERR_NOMEM;
	f->st.root_fd = f->st.meta_fd = f->st.staging_fd = -1;
	f->cfg = *cfg;
	f->root = strdup(cfg->store_root != NULL ? cfg->store_root : "roomdrop-store");
	if (f->root == NULL) {
		free(f);
		return RD_ERR_NOMEM;
	}
	f->cfg.store_root = f->root;
	pthread_mutex_init(&f->lock, NULL);
	rd_cond_init_mono(&f->released);
	atomic_init(&f->next_xfer, 1u);
	if ((rc = store_open(f->root, &f->st)) != 0) {
		int e = errno;

		files_free(f);
		errno = e;
		return rc;
	}
	sweep(f, 1);
	/* no upload holds a staging file yet: give back what earlier runs had reserved */
	(void)store_release_all(&f->st, &f->released_at_start);
	*out = f;
	return 0;
}

void files_set_state(struct files *f, struct state *st)
{
	if (f != NULL)
		f->state = st;
}

void files_attach(struct files *f, struct rd_server *s)
{
	if (f == NULL)
		return;
	f->srv = s;
	if (f->released_at_start > 0) {
		struct rd_event ev = { 0 };

		ev.kind = RD_EV_INFO;
		ev.time_ms = rd_now_wall_ms();
		snprintf(ev.text, sizeof(ev.text),
			 "released the disk reservations of %u abandoned upload%s",
			 f->released_at_start, f->released_at_start == 1 ? "" : "s");
		rd_server_post_event(s, &ev);
	}
}

void files_free(struct files *f)
{
	struct abandoned *b;
	struct active *a;

	if (f == NULL)
		return;
	while ((a = f->active) != NULL) {
		f->active = a->next;
		free(a);
	}
	while ((b = f->abandoned) != NULL) {
		f->abandoned = b->next;
		free(b);
	}
	store_close(&f->st);
	pthread_cond_destroy(&f->released);
	pthread_mutex_destroy(&f->lock);
	free(f->root);
	free(f);
}

/* ---- helpers --------------------------------------------------------------------------- */

static uint32_t new_xfer_id(struct files *f)
{
	uint32_t id;

	do
		id = atomic_fetch_add(&f->next_xfer, 1u);
	while (id == 0);
	return id;
}

/* The room the client was in when the frame arrived (its job's), not the room it may have
 * moved to since. */
static void frame_room(const struct rd_frame *fr, char *out)
{
	const struct job *j = (const struct job *)((const char *)fr - offsetof(struct job, f));
	memcpy(out, j->room, RD_ROOM_BUF);
}

static struct fclient *fclient_of(struct rd_client *c)
{
	struct fclient *fc = rd_client_app_data(c);

	if (fc == NULL) {
		fc = calloc(1, sizeof(*fc));
		if (fc != NULL) {
			pthread_mutex_init(&fc->w.mu, NULL);
			rd_cond_init_mono(&fc->w.cv);
			atomic_init(&fc->w.cancel_get, 0u);
			rd_client_set_app_data(c, fc);
		}
	}
	return fc;
}

static void post_info(struct files *f, struct rd_client *c, const char *room, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void post_info(struct files *f, struct rd_client *c, const char *room, const char *fmt, ...)
{
	struct rd_event ev = { 0 };
	va_list ap;

	if (f->srv == NULL)
		return;
	ev.kind = RD_EV_INFO;
	ev.time_ms = rd_now_wall_ms();
	if (c != NULL) {
		ev.client_id = rd_client_id(c);
		rd_client_nick(c, ev.nick);
	}
	if (room != NULL)
		snprintf(ev.room, sizeof(ev.room), "%s", room);
	va_start(ap, fmt);
	vsnprintf(ev.text, sizeof(ev.text), fmt, ap);
	va_end(ap);
	rd_server_post_event(f->srv, &ev);
}

/* Reply with ERROR and a specific text; the handler then returns 0. */
static uint16_t fail(struct rd_client *c, const struct rd_frame *fr, uint16_t code, const char *fmt,
		     ...) __attribute__((format(printf, 4, 5)));

static uint16_t fail(struct rd_client *c, const struct rd_frame *fr, uint16_t code, const char *fmt,
		     ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (rd_client_send_error(c, fr->hdr.req_id, fr->hdr.type, code, text) != 0)
		return 0; /* it is going away anyway */
	return 0;
}

/* A name for messages and events: escaped, never raw bytes from the wire. */
static const char *shown(const char *name, char *buf, size_t cap)
{
	return rd_escape_display(name, strlen(name), buf, cap);
}

/* The wire code of a storage failure with errno e. */
static uint16_t store_errno_code(int e)
{
	if (e == EROFS)
		return RDF_E_READ_ONLY;
	if (e == ENOSPC || e == EDQUOT)
		return RDF_E_NO_SPACE;
	return RDF_E_STORAGE;
}

/* A failure of the store itself (errno e) while doing `what` ("cannot remove a.txt in
 * general"): a log line with the system's reason, and an ERROR with its own code (512,
 * 505 or 513) and a text a user can act on. The handler then returns 0. */
static uint16_t store_fail(struct files *f, struct rd_client *c, const struct rd_frame *fr, int e,
			   const char *room, const char *what)
{
	char why[128];
	const char *reason = strerror_r(e, why, sizeof(why));
	uint16_t code = store_errno_code(e);

	post_info(f, c, room, "store error: %s: %s", what, reason);
	if (code == RDF_E_READ_ONLY)
		return fail(c, fr, code, "%s: the server's store is read-only (%s)", what, reason);
	if (code == RDF_E_NO_SPACE)
		return fail(c, fr, code, "%s: the server's disk is full (%s)", what, reason);
	return fail(c, fr, code, "%s: the server could not read or write its store (%s)", what,
		    reason);
}

static void activity(struct rd_client *c, const char *verb, const char *name, uint64_t done,
		     uint64_t total, int *last_pct)
{
	char text[96], esc[64];
	int pct = total == 0 ? 100 : (int)(done * 100 / total);

	if (pct == *last_pct)
		return;
	*last_pct = pct;
	rd_escape_display(name, strlen(name), esc, sizeof(esc));
	snprintf(text, sizeof(text), "%s %s %d%%", verb, esc, pct);
	rd_client_set_activity(c, text);
}

static void notice_room(struct files *f, const char *room, const char *nick, uint8_t event,
			const char *name, uint64_t size)
{
	struct rd_msg m;
	struct rd_buf b;
	unsigned n = 0;

	rd_msg_init(&m, RDF_MSG_FILE_NOTICE);
	rdf_body(&m)->file_notice.event = event;
	snprintf(rdf_body(&m)->file_notice.room, sizeof(rdf_body(&m)->file_notice.room), "%s",
		 room);
	snprintf(rdf_body(&m)->file_notice.nick, sizeof(rdf_body(&m)->file_notice.nick), "%s",
		 nick);
	snprintf(rdf_body(&m)->file_notice.name, sizeof(rdf_body(&m)->file_notice.name), "%s",
		 name);
	rdf_body(&m)->file_notice.size = size;
	rd_buf_init(&b, 0);
	if (rd_msg_encode(&m, &b) == 0)
		(void)rd_room_send(f->srv, room, NULL, RDF_MSG_FILE_NOTICE, b.data, b.len, &n);
	rd_buf_free(&b);
}

/* Peek the name (first field of PUT, GET and DELETE) so that a hostile one gets 500 even
 * when it is too long or too strange for the decoder's fixed arrays. */
static int name_field_ok(const struct rd_frame *fr)
{
	struct rd_buf b;
	const char *p;
	size_t n;

	rd_buf_view(&b, fr->payload, fr->len);
	if (rd_buf_get_str_view(&b, &p, &n) != 0)
		return 1; /* not even a string: let the decoder call it malformed */
	return rd_filename_check(p, n) == 0;
}

/* ERROR 500 for a name that name_field_ok() refused, saying which rule it broke
 * (PROTOCOL.md section 7). */
static uint16_t refuse_name(struct rd_client *c, const struct rd_frame *fr)
{
	char why[160];
	struct rd_buf b;
	const char *p;
	size_t n;

	rd_buf_view(&b, fr->payload, fr->len);
	if (rd_buf_get_str_view(&b, &p, &n) != 0 ||
	    rd_filename_explain(p, n, why, sizeof(why)) == 0)
		snprintf(why, sizeof(why), "not a valid name");
	return fail(c, fr, RDF_E_BAD_FILENAME, "bad file name: %s", why);
}

static int pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
	const uint8_t *q = p;
	ssize_t w;

	while (n > 0) {
		w = pwrite(fd, q, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return RD_ERR_SYSTEM;
		}
		q += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Direct mode: write out what abuf holds. DIRECT_FULL: a full buffer, through dfd (around
 * the page cache). DIRECT_IDLE (nothing else waits for the worker): its whole DIRECT_ALIGN
 * blocks through dfd, so that what was received is staged while the client pauses.
 * DIRECT_ALL: everything, the unaligned tail through fd (the end of the file, or what an
 * interrupted upload keeps for its resume). 0, or RD_ERR_SYSTEM with errno. */
enum {
	DIRECT_FULL,
	DIRECT_IDLE,
	DIRECT_ALL
};
static int jobs_waiting(struct worker *w);
static int direct_flush(struct put_xfer *x, int how)
{
	size_t n = x->afill;

	if (x->abuf == NULL || n == 0 || (how == DIRECT_FULL && n < DIRECT_BUF))
		return 0;
	if (how == DIRECT_IDLE)
		n -= n % DIRECT_ALIGN;
	if (n == 0)
		return 0;
	if (pwrite_all(n % DIRECT_ALIGN == 0 ? x->dfd : x->fd, x->abuf, n, x->aoff) != 0)
		return RD_ERR_SYSTEM;
	x->aoff += n;
	x->afill -= n;
	if (x->afill > 0)
		memmove(x->abuf, x->abuf + n, x->afill);
	return 0;
}

/* Direct mode: hash n bytes and gather them, writing each full buffer out. */
static int direct_write(struct put_xfer *x, const uint8_t *p, size_t n)
{
	size_t take;

	if (rd_sha256_update(x->h, p, n) != 0) {
		errno = ENOMEM;
		return RD_ERR_SYSTEM;
	}
	while (n > 0) {
		take = DIRECT_BUF - x->afill < n ? DIRECT_BUF - x->afill : n;
		memcpy(x->abuf + x->afill, p, take);
		x->afill += take;
		p += take;
		n -= take;
		if (direct_flush(x, DIRECT_FULL) != 0)
			return RD_ERR_SYSTEM;
	}
	return 0;
}

/* Direct mode for a new upload of x->size bytes when the filesystem takes O_DIRECT;
 * otherwise (or out of memory) the buffered path with its hasher. */
static void direct_start(struct put_xfer *x)
{
	void *buf = NULL;

	if (x->size < DIRECT_MIN || x->received != 0)
		return;
	x->dfd = openat(x->stage_dir, x->key, O_WRONLY | O_DIRECT | O_NOFOLLOW | O_CLOEXEC);
	if (x->dfd < 0)
		return; /* (tmpfs and others: EINVAL) */
	if (posix_memalign(&buf, DIRECT_ALIGN, DIRECT_BUF) != 0 || rd_sha256_new(&x->h) != 0) {
		free(buf);
		close(x->dfd);
		x->dfd = -1;
		return;
	}
	x->abuf = buf;
	x->afill = 0;
	x->aoff = 0;
}

static void direct_end(struct put_xfer *x)
{
	if (x->dfd >= 0)
		close(x->dfd);
	x->dfd = -1;
	free(x->abuf);
	x->abuf = NULL;
	rd_sha256_free(x->h);
	x->h = NULL;
}

/* The SHA-256 of an upload is computed by a thread of its own that reads the staging
 * file behind the writes (the data is in the page cache), so that the client's reader
 * thread only receives and writes, and a resumed upload's staged prefix is re-hashed
 * while the rest streams in instead of before PUT_READY. The reader thread publishes
 * `written` after each pwrite; the hasher follows up to it. hasher.mu guards written,
 * hashed, stop, abandon and err (a leaf lock; no I/O under it). */
struct hasher {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t written, hashed;
	int stop, abandon, err;
	int fd;
	struct rd_sha256 *h;
};

#define HASH_STEP (512u * 1024u)

static void *hasher_main(void *arg)
{
	struct hasher *hs = arg;
	uint64_t off, n;
	uint8_t *buf;
	ssize_t got;
	int rc = 0;

	pthread_setname_np(pthread_self(), "rd-files-hash");
	buf = malloc(HASH_STEP);
	pthread_mutex_lock(&hs->mu);
	if (buf == NULL)
		hs->err = RD_ERR_NOMEM;
	while (hs->err == 0) {
		while (!hs->stop && hs->hashed == hs->written)
			pthread_cond_wait(&hs->cv, &hs->mu);
		if (hs->abandon || hs->hashed == hs->written)
			break;
		off = hs->hashed;
		n = hs->written - off < HASH_STEP ? hs->written - off : HASH_STEP;
		pthread_mutex_unlock(&hs->mu);
		do
			got = pread(hs->fd, buf, (size_t)n, (off_t)off);
		while (got < 0 && errno == EINTR);
		if (got <= 0)
			rc = got == 0 ? RD_ERR_MISMATCH : RD_ERR_SYSTEM;
		else
			rc = rd_sha256_update(hs->h, buf, (size_t)got);
		pthread_mutex_lock(&hs->mu);
		if (rc != 0)
			hs->err = rc;
		else
			hs->hashed += (uint64_t)got;
	}
	pthread_mutex_unlock(&hs->mu);
	free(buf);
	return NULL;
}

/* Start hashing fd, of which the first `staged` bytes are already there. */
static int hasher_start(int fd, uint64_t staged, struct hasher **out)
{
	struct hasher *hs;
	pthread_attr_t attr;
	int rc;

	*out = NULL;
	hs = calloc(1, sizeof(*hs));
	if (hs == NULL)
		return RD_ERR_NOMEM;
	if (rd_sha256_new(&hs->h) != 0) {
		free(hs);
		return RD_ERR_NOMEM;
	}
	hs->fd = fd;
	hs->written = staged;
	pthread_mutex_init(&hs->mu, NULL);
	rd_cond_init_mono(&hs->cv);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 128u * 1024u);
	rc = pthread_create(&hs->thread, &attr, hasher_main, hs);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		pthread_cond_destroy(&hs->cv);
		pthread_mutex_destroy(&hs->mu);
		rd_sha256_free(hs->h);
		free(hs);
		return RD_ERR_SYSTEM;
	}
	*out = hs;
	return 0;
}

static void hasher_written(struct hasher *hs, uint64_t written)
{
	pthread_mutex_lock(&hs->mu);
	hs->written = written;
	pthread_cond_signal(&hs->cv);
	pthread_mutex_unlock(&hs->mu);
}

/* Stop the thread: with finish, after it has hashed everything written, and put the
 * digest in out; without, at once (upload abandoned). Frees hs. */
static int hasher_end(struct hasher *hs, int finish, uint8_t out[RD_SHA256_SIZE])
{
	int rc;

	if (hs == NULL)
		return RD_ERR_INVAL;
	pthread_mutex_lock(&hs->mu);
	hs->stop = 1;
	hs->abandon = !finish;
	pthread_cond_signal(&hs->cv);
	pthread_mutex_unlock(&hs->mu);
	pthread_join(hs->thread, NULL);
	rc = hs->err;
	if (rc == 0 && finish)
		rc = hs->hashed == hs->written ? rd_sha256_final(hs->h, out) : RD_ERR_STATE;
	pthread_cond_destroy(&hs->cv);
	pthread_mutex_destroy(&hs->mu);
	rd_sha256_free(hs->h);
	free(hs);
	return rc;
}

/* ---- uploads --------------------------------------------------------------------------- */

static void put_free(struct files *f, struct rd_client *c, struct fclient *fc, struct put_xfer *x,
		     int drop_staging)
{
	struct put_xfer **pp;

	for (pp = &fc->puts; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == x) {
			*pp = x->next;
			fc->nputs--;
			break;
		}
	}
	if (x->hs != NULL)
		(void)hasher_end(x->hs, 0, NULL);
	if (!drop_staging && x->abuf != NULL) {
		if (direct_flush(x, DIRECT_ALL) != 0 && x->fd >= 0)
			(void)ftruncate(x->fd, (off_t)x->aoff); /* keep what is surely there */
		x->received = x->aoff;
	}
	direct_end(x);
	if (!drop_staging && x->fd >= 0 && x->key[0] != '\0') {
		/* kept for a resume: only the bytes received stay, the reservation goes */
		(void)store_release_reservation(x->fd, x->received);
		abandoned_add(f, x->room, x->key, x->act != NULL ? x->act->nick : "", x->received);
	}
	if (x->fd >= 0)
		close(x->fd);
	if (drop_staging && x->stage_dir >= 0 && x->key[0] != '\0')
		(void)unlinkat(x->stage_dir, x->key, 0);
	if (x->stage_dir >= 0)
		close(x->stage_dir);
	active_release(f, x->act);
	free(x);
	if (c != NULL && fc->puts == NULL)
		rd_client_set_activity(c, NULL);
}

static void put_abort(struct files *f, struct rd_client *c, struct fclient *fc, struct put_xfer *x,
		      int drop_staging)
{
	fc->aborted[fc->naborted++ % (sizeof(fc->aborted) / sizeof(fc->aborted[0]))] = x->id;
	put_free(f, c, fc, x, drop_staging);
}

static int put_was_aborted(const struct fclient *fc, uint32_t id)
{
	size_t i;

	for (i = 0; fc != NULL && i < sizeof(fc->aborted) / sizeof(fc->aborted[0]); i++)
		if (fc->aborted[i] == id && id != 0)
			return 1;
	return 0;
}

static struct put_xfer *put_find(struct fclient *fc, uint32_t id)
{
	struct put_xfer *x;

	for (x = fc ? fc->puts : NULL; x != NULL; x = x->next)
		if (x->id == id)
			return x;
	return NULL;
}

/* Claim the staging key of x, waiting a little for a connection that is going away
 * (a client killed and restarted at once). RDF_E_BUSY when the same upload (room, size,
 * SHA-256) stays in progress elsewhere. The same content twice on one connection (a
 * pipelined batch of equal files) takes the key's next variant instead ("<key>.1", ...):
 * waiting there would wait for itself. */
#define KEY_ALT_MAX 1000u
static uint16_t claim_key(struct files *f, struct put_xfer *x)
{
	char key[STORE_KEY_BUF];
	struct active *a;
	uint16_t code = 0;
	uint64_t until;
	unsigned alt;

	until = rd_now_mono_ms() + BUSY_WAIT_MS;
	pthread_mutex_lock(&f->lock);
	for (;;) {
		for (alt = 0;; alt++) {
			store_staging_key(x->keysha, x->size, alt, key);
			a = active_find_key(f, x->room, key);
			if (a == NULL || a->owner == NULL || a->owner != x->act->owner ||
			    alt == KEY_ALT_MAX)
				break;
		}
		if (a == NULL)
			break;
		if (rd_cond_wait_until(&f->released, &f->lock, until) == RD_ERR_TIMEOUT &&
		    active_find_key(f, x->room, key) != NULL) {
			code = RDF_E_BUSY;
			break;
		}
	}
	if (code == 0) {
		snprintf(x->act->key, sizeof(x->act->key), "%s", key);
		snprintf(x->key, sizeof(x->key), "%s", key);
	}
	pthread_mutex_unlock(&f->lock);
	return code;
}

/* Pick the stored name of a --rename upload: the name itself if free, else "name (n).ext",
 * reserved in the table so that two renaming uploads never pick the same one. */
static uint16_t pick_rename(struct files *f, int room_fd, struct put_xfer *x, char *out)
{
	char cand[RD_NAME_BUF];
	unsigned n;
	int e;

	for (n = 0; n < RENAME_TRIES; n++) {
		if (n == 0)
			snprintf(cand, sizeof(cand), "%s", x->name);
		else if (store_rename_candidate(x->name, n, cand, sizeof(cand)) != 0)
			return RDF_E_BAD_FILENAME;
		e = store_exists(room_fd, cand);
		if (e < 0)
			return RD_E_INTERNAL;
		if (e == 1)
			continue;
		pthread_mutex_lock(&f->lock);
		if (!active_reserved_name(f, x->room, cand)) {
			snprintf(x->act->stored, sizeof(x->act->stored), "%s", cand);
			pthread_mutex_unlock(&f->lock);
			snprintf(out, RD_NAME_BUF, "%s", cand);
			return 0;
		}
		pthread_mutex_unlock(&f->lock);
	}
	return RDF_E_FILE_EXISTS;
}

/* Files have owners (issue 12): may c replace or delete room's file `name` (open in room_fd)?
 * 0: yes (no such file, a file without a known uploader key, c's own, or c is an operator
 * of the room); RDF_E_PERMISSION with the reason sent to c (fr's request); RD_E_INTERNAL. */
static uint16_t may_change(struct files *f, struct rd_client *c, const struct rd_frame *fr,
			   const char *room, int room_fd, const char *name, const char *verb)
{
	struct store_meta meta;
	uint8_t fp[RD_TLS_FP_LEN];
	char esc[128];
	int fd, rc, has_fp;

	fd = openat(room_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT || errno == ELOOP ? 0 : RD_E_INTERNAL;
	rc = store_meta_get(&f->st, room, name, fd, &meta);
	close(fd);
	if (rc == RD_ERR_NOT_FOUND || (rc == 0 && !meta.has_owner))
		return 0;
	if (rc != 0)
		return RD_E_INTERNAL;
	has_fp = rd_client_fingerprint(c, fp) == 0;
	if (has_fp && rd_ct_equal(fp, meta.owner_fp, RD_TLS_FP_LEN))
		return 0;
	if (has_fp && f->state != NULL && state_op_is(f->state, room, fp))
		return 0;
	shown(name, esc, sizeof(esc));
	(void)fail(c, fr, RDF_E_PERMISSION,
		   "%s belongs to %s%s: only its uploader or an operator of %s may %s it", esc,
		   meta.uploader[0] ? meta.uploader : "another key",
		   meta.uploader[0] ? "'s key" : "", room, verb);
	return RDF_E_PERMISSION;
}

static uint16_t handle_put(struct files *f, struct rd_client *c, const struct rd_frame *fr)
{
	char room[RD_ROOM_BUF], nick[RD_NICK_BUF], esc[128], hs[32], hl[32], what[200];
	struct put_xfer *x = NULL;
	struct fclient *fc;
	struct statvfs vfs;
	struct stat sb;
	struct rd_msg m, r;
	uint64_t used = 0, inflight, replaced = 0, avail, after, staged = 0, staged_other = 0;
	int room_fd = -1, e, rc, inserted = 0, created = 0;
	uint16_t code = 0;

	rd_msg_init(&r, RDF_MSG_PUT_READY);
	if (!name_field_ok(fr))
		return refuse_name(c, fr);
	if (rd_msg_decode(RDF_MSG_PUT, fr->payload, fr->len, &m) != 0)
		return RD_E_MALFORMED;
	frame_room(fr, room);
	rd_client_nick(c, nick);
	if (room[0] == '\0')
		return fail(c, fr, RD_E_NOT_IN_ROOM, "join a room first");
	if (rdf_body(&m)->put.mode > RDF_PUT_RENAME)
		return fail(c, fr, RD_E_MALFORMED, "unknown put mode %u", rdf_body(&m)->put.mode);
	shown(rdf_body(&m)->put.name, esc, sizeof(esc));
	if (f->cfg.max_file_size != 0 && rdf_body(&m)->put.size > f->cfg.max_file_size) {
		rd_format_size(rdf_body(&m)->put.size, hs, sizeof(hs));
		rd_format_size(f->cfg.max_file_size, hl, sizeof(hl));
		return fail(c, fr, RDF_E_FILE_TOO_BIG, "%s is too big: %s, the limit is %s", esc,
			    hs, hl);
	}
	fc = fclient_of(c);
	if (fc == NULL)
		return RD_E_INTERNAL;
	if (fc->nputs >= MAX_PUTS_PER_CLIENT)
		return fail(c, fr, RDF_E_BUSY, "too many uploads at once (at most %u)",
			    MAX_PUTS_PER_CLIENT);
	sweep(f, 0);

	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return RD_E_INTERNAL;
	x->fd = x->stage_dir = x->dfd = room_fd = -1;
	x->pct = -1;
	x->act = calloc(1, sizeof(*x->act));
	if (x->act == NULL) {
		code = RD_E_INTERNAL;
		goto out;
	}
	x->id = new_xfer_id(f);
	x->mode = rdf_body(&m)->put.mode;
	x->size = rdf_body(&m)->put.size;
	memcpy(x->sha, rdf_body(&m)->put.sha256, RD_SHA256_SIZE);
	snprintf(x->room, sizeof(x->room), "%s", room);
	snprintf(x->name, sizeof(x->name), "%s", rdf_body(&m)->put.name);
	/* A streamed put (no SHA-256 yet: PROTOCOL.md section 17) is staged under a key of
	 * its room, nickname, name and size instead of its content, so that the same upload
	 * cut off and started again resumes; PUT_SEAL's SHA-256 then checks the whole. */
	x->streamed = rdf_put_streamed(x->sha);
	memcpy(x->keysha, x->sha, RD_SHA256_SIZE);
	if (x->streamed) {
		char id[sizeof(room) + RD_NICK_BUF + RD_NAME_BUF + 48];
		int n = snprintf(id, sizeof(id), "streamed put%c%s%c%s%c%s%c%" PRIu64, 0, room, 0,
				 nick, 0, x->name, 0, x->size);
		if (n < 0 || (size_t)n >= sizeof(id) || rd_sha256(id, (size_t)n, x->keysha) != 0) {
			code = RD_E_INTERNAL;
			goto out;
		}
	}
	x->start_ms = rd_now_mono_ms();
	snprintf(x->act->room, sizeof(x->act->room), "%s", room);
	x->act->xfer_id = x->id;
	x->act->owner = rd_client_app_data(c);
	x->act->size = x->size;
	snprintf(x->act->nick, sizeof(x->act->nick), "%s", nick);
	/* in the table from now on: holds a --rename reservation, counts for quotas */
	pthread_mutex_lock(&f->lock);
	x->act->next = f->active;
	f->active = x->act;
	pthread_mutex_unlock(&f->lock);
	inserted = 1;

	snprintf(what, sizeof(what), "cannot store %s in %s", esc, room);
	if ((rc = store_room_open(&f->st, STORE_VISIBLE, room, 1, &room_fd)) != 0 ||
	    (rc = store_room_open(&f->st, STORE_STAGING, room, 1, &x->stage_dir)) != 0) {
		if (rc == RD_ERR_SYSTEM)
			store_fail(f, c, fr, errno, room, what);
		else
			code = RD_E_INTERNAL;
		goto out;
	}
	/* conflicts */
	e = store_exists(room_fd, x->name);
	if (e < 0) {
		store_fail(f, c, fr, errno, room, what);
		goto out;
	}
	rdf_body(&r)->put_ready.xfer_id = x->id;
	if (x->mode == RDF_PUT_REFUSE && e == 1) {
		fail(c, fr, RDF_E_FILE_EXISTS,
		     "%s already exists in %s (use --overwrite or --rename)", esc, room);
		goto out;
	}
	/* (asked before the bytes come, and again when they are in: handle_end) */
	if (x->mode == RDF_PUT_OVERWRITE && e == 1 &&
	    (code = may_change(f, c, fr, room, room_fd, x->name, "replace")) != 0) {
		if (code == RDF_E_PERMISSION)
			code = 0; /* (sent) */
		goto out;
	}
	if (x->mode == RDF_PUT_RENAME) {
		if ((code = pick_rename(f, room_fd, x, rdf_body(&r)->put_ready.name)) != 0)
			goto out;
	} else {
		snprintf(rdf_body(&r)->put_ready.name, sizeof(rdf_body(&r)->put_ready.name), "%s",
			 x->name);
		if (x->mode == RDF_PUT_OVERWRITE && e == 1 &&
		    fstatat(room_fd, x->name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode))
			replaced = (uint64_t)sb.st_size;
	}
	/* the staging key first: a resumed staging file then counts once, by the declared size */
	if (claim_key(f, x) != 0) {
		fail(c, fr, RDF_E_BUSY,
		     "the same upload of %s is in progress on another connection", esc);
		goto out;
	}
	if (fstatat(x->stage_dir, x->key, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size <= x->size)
			staged = (uint64_t)sb.st_size;
	} else if (errno != ENOENT) {
		store_fail(f, c, fr, errno, room, what);
		goto out;
	}
	/* quota: committed files + what abandoned uploads left staged + uploads in progress
	 * (this one included, by declared size) - what it replaces */
	if (f->cfg.room_quota != 0) {
		struct held_ctx hc = { f, room };

		if (store_room_usage(room_fd, &used) != 0 ||
		    store_staged_usage(x->stage_dir, staged_is_held, &hc, &staged_other) != 0) {
			store_fail(f, c, fr, errno, room, what);
			goto out;
		}
		pthread_mutex_lock(&f->lock);
		inflight = active_room_bytes(f, room);
		pthread_mutex_unlock(&f->lock);
		after = used + staged_other + inflight;
		after = after > replaced ? after - replaced : 0;
		if (after > f->cfg.room_quota) {
			rd_format_size(used + staged_other + inflight - x->size, hs, sizeof(hs));
			rd_format_size(f->cfg.room_quota, hl, sizeof(hl));
			fail(c, fr, RDF_E_QUOTA,
			     "room %s is over its quota: %s stored, staged or in flight, quota %s",
			     room, hs, hl);
			goto out;
		}
	}
	/* per user: its uploads in progress (this one included) + what it left staged */
	if (f->cfg.max_staged_per_user != 0) {
		pthread_mutex_lock(&f->lock);
		after = user_staged_bytes(f, nick, room, x->key);
		pthread_mutex_unlock(&f->lock);
		if (after > f->cfg.max_staged_per_user) {
			rd_format_size(after - x->size, hs, sizeof(hs));
			rd_format_size(f->cfg.max_staged_per_user, hl, sizeof(hl));
			fail(c, fr, RDF_E_QUOTA,
			     "%s is over the limit per user for unfinished uploads: %s already in "
			     "unfinished uploads of %s (running or interrupted), limit %s; finish or "
			     "resume them first",
			     esc, hs, nick, hl);
			goto out;
		}
	}
	/* free space for what is still to come, keeping min_free_bytes; the disk already
	 * holds every staged byte and every reservation of an upload in progress */
	if (fstatvfs(x->stage_dir, &vfs) == 0) {
		avail = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
		if (avail < f->cfg.min_free_bytes ||
		    avail - f->cfg.min_free_bytes < x->size - staged) {
			rd_format_size(x->size - staged, hs, sizeof(hs));
			rd_format_size(avail, hl, sizeof(hl));
			fail(c, fr, RDF_E_NO_SPACE,
			     "not enough space on the server for %s (%s needed, %s free)", esc, hs,
			     hl);
			goto out;
		}
	}
	/* only now a staging file: a refused PUT leaves none behind */
	x->fd = openat(x->stage_dir, x->key, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		       STORE_FILE_MODE);
	if (x->fd >= 0)
		created = 1;
	else if (errno == EEXIST)
		x->fd = openat(x->stage_dir, x->key, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (x->fd < 0 || fstat(x->fd, &sb) != 0) {
		store_fail(f, c, fr, errno, room, what);
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		code = RD_E_INTERNAL;
		goto out;
	}
	/* another server of a shared store (a cluster) may be writing the same staging file:
	 * an open-file-description lock says so across processes (released with x->fd) */
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (fcntl(x->fd, F_OFD_SETLK, &fl) != 0) {
		code = errno == EAGAIN || errno == EACCES ? RDF_E_BUSY : RD_E_INTERNAL;
		goto out;
	}
	/* resume: what is staged is re-hashed (in the background); more than declared starts over */
	x->received = (uint64_t)sb.st_size;
	if (x->received > x->size) {
		if (ftruncate(x->fd, 0) != 0) {
			store_fail(f, c, fr, errno, room, what);
			goto out;
		}
		x->received = 0;
	}
	direct_start(x);
	if (x->abuf == NULL && hasher_start(x->fd, x->received, &x->hs) != 0) {
		code = RD_E_INTERNAL;
		goto out;
	}
	x->offset0 = x->synced = x->received;
	/* Reserve the blocks still to come: nothing to allocate while streaming, and a full
	 * disk is reported now rather than halfway. KEEP_SIZE: the staging file's size stays
	 * the count of bytes received, which resume relies on. */
	if (x->size > x->received &&
	    fallocate(x->fd, FALLOC_FL_KEEP_SIZE, (off_t)x->received,
		      (off_t)(x->size - x->received)) != 0 &&
	    errno == ENOSPC) {
		rd_format_size(x->size - x->received, hs, sizeof(hs));
		fail(c, fr, RDF_E_NO_SPACE, "not enough space on the server for %s (%s needed)",
		     esc, hs);
		goto out;
	}
	/* accepted: a resumed staging file is in progress again, no longer abandoned */
	abandoned_drop(f, room, x->key);
	rdf_body(&r)->put_ready.offset = x->received;
	if (rd_client_send_msg(c, &r, fr->hdr.req_id) != 0)
		goto out;
	x->next = fc->puts;
	fc->puts = x;
	fc->nputs++;
	activity(c, "uploading", x->name, x->received, x->size, &x->pct);
	x = NULL;
out:
	if (room_fd >= 0)
		close(room_fd);
	if (x != NULL) {
		if (x->hs != NULL)
			(void)hasher_end(x->hs, 0, NULL);
		direct_end(x);
		if (created && x->received == 0)
			(void)unlinkat(x->stage_dir, x->key, 0); /* refused: leave nothing */
		else if (x->fd >= 0)
			(void)store_release_reservation(x->fd, x->received);
		if (x->fd >= 0)
			close(x->fd);
		if (x->stage_dir >= 0)
			close(x->stage_dir);
		if (inserted)
			active_release(f, x->act);
		else
			free(x->act);
		free(x);
	}
	rd_msg_clear(&m);
	return code;
}

static uint16_t handle_chunk(struct files *f, struct rd_client *c, const struct rd_frame *fr)
{
	struct fclient *fc = rd_client_app_data(c);
	struct put_xfer *x;
	struct rd_msg m;
	int rc;

	if (rd_msg_decode(RDF_MSG_PUT_CHUNK, fr->payload, fr->len, &m) != 0)
		return RD_E_MALFORMED;
	x = put_find(fc, rdf_body(&m)->chunk.xfer_id);
	if (x == NULL && put_was_aborted(fc, rdf_body(&m)->chunk.xfer_id))
		return 0; /* its error was sent already */
	if (x == NULL)
		return fail(c, fr, RDF_E_NO_SUCH_TRANSFER,
			    "no upload %" PRIu32 " on this connection",
			    rdf_body(&m)->chunk.xfer_id);
	if (rdf_body(&m)->chunk.offset != x->received) {
		fail(c, fr, RDF_E_BAD_OFFSET,
		     "chunk at offset %" PRIu64 ", expected %" PRIu64 "; upload aborted",
		     rdf_body(&m)->chunk.offset, x->received);
		put_abort(f, c, fc, x, 0);
		return 0;
	}
	if (rdf_body(&m)->chunk.data.n > RD_CHUNK_SIZE ||
	    rdf_body(&m)->chunk.data.n > x->size - x->received) {
		fail(c, fr, RDF_E_SIZE_MISMATCH,
		     "chunk of %zu bytes at %" PRIu64 " passes the declared size %" PRIu64
		     " (or the chunk limit); upload aborted",
		     rdf_body(&m)->chunk.data.n, x->received, x->size);
		put_abort(f, c, fc, x, 1);
		return 0;
	}
	if (x->abuf != NULL) {
		rc = direct_write(x, rdf_body(&m)->chunk.data.p, rdf_body(&m)->chunk.data.n);
		if (rc == 0 && !jobs_waiting(&fc->w))
			rc = direct_flush(x, DIRECT_IDLE);
	} else
		rc = pwrite_all(x->fd, rdf_body(&m)->chunk.data.p, rdf_body(&m)->chunk.data.n,
				x->received);
	if (rc != 0) {
		int e = errno;
		char what[200], esc[128];

		snprintf(what, sizeof(what), "cannot write %s in %s; upload aborted",
			 shown(x->name, esc, sizeof(esc)), x->room);
		store_fail(f, c, fr, e, x->room, what);
		put_abort(f, c, fc, x, e == ENOSPC || e == EDQUOT);
		return 0;
	}
	x->received += rdf_body(&m)->chunk.data.n;
	if (x->hs != NULL)
		hasher_written(x->hs, x->received);
	if (x->abuf == NULL && x->received - x->synced >= SYNC_EVERY) {
		/* start writeback now so the fsync at PUT_END has little left to do */
		(void)sync_file_range(x->fd, (off_t)x->synced, (off_t)(x->received - x->synced),
				      SYNC_FILE_RANGE_WRITE);
		x->synced = x->received;
	}
	activity(c, "uploading", x->name, x->received, x->size, &x->pct);
	return 0;
}

/* Rename the verified staging file into the room folder per x->mode; *existed = 1 when a
 * file was replaced. */
static uint16_t commit(struct files *f, struct put_xfer *x, int room_fd, char *stored, int *existed)
{
	unsigned n;
	int rc, e;

	*existed = 0;
	if (x->mode == RDF_PUT_OVERWRITE) {
		e = store_exists(room_fd, x->name);
		*existed = e == 1;
		snprintf(stored, RD_NAME_BUF, "%s", x->name);
		return store_commit(x->stage_dir, x->key, room_fd, x->name, 1) == 0 ? 0 :
										      RD_E_INTERNAL;
	}
	if (x->mode == RDF_PUT_REFUSE) {
		snprintf(stored, RD_NAME_BUF, "%s", x->name);
		rc = store_commit(x->stage_dir, x->key, room_fd, x->name, 0);
		return rc == 0 ? 0 : rc == RD_ERR_EXISTS ? RDF_E_FILE_EXISTS : RD_E_INTERNAL;
	}
	/* rename: the reserved name, or the next free one if something else took it */
	for (n = 0; n < RENAME_TRIES; n++) {
		pthread_mutex_lock(&f->lock);
		snprintf(stored, RD_NAME_BUF, "%s", x->act->stored);
		pthread_mutex_unlock(&f->lock);
		rc = store_commit(x->stage_dir, x->key, room_fd, stored, 0);
		if (rc == 0)
			return 0;
		if (rc != RD_ERR_EXISTS)
			return RD_E_INTERNAL;
		pthread_mutex_lock(&f->lock);
		x->act->stored[0] = '\0';
		pthread_mutex_unlock(&f->lock);
		if (pick_rename(f, room_fd, x, stored) != 0)
			break;
	}
	return RDF_E_FILE_EXISTS;
}

/* Commit x (ended, its data durable) into its room: the owner check of a replacement, the
 * rename and the record, under the name's lock. sync: make the rename and the record
 * durable here (else the caller's syncfs will). 0 (stored, *existed set), or -1 when x
 * was answered with an ERROR and freed. */
static int put_commit(struct files *f, struct rd_client *c, struct fclient *fc, struct put_xfer *x,
		      int sync, char stored[RD_NAME_BUF], int *existed)
{
	const struct rd_frame *fr = &x->end;
	char nick[RD_NICK_BUF], esc[128], what[200];
	struct store_meta meta;
	struct stat sb;
	int room_fd = -1, name_lock = -1, rc;
	uint16_t code;

	*existed = 0;
	shown(x->name, esc, sizeof(esc));
	snprintf(what, sizeof(what), "cannot store %s in %s; nothing stored", esc, x->room);
	if (fstat(x->fd, &sb) != 0) {
		store_fail(f, c, fr, errno, x->room, what);
		put_free(f, c, fc, x, 0);
		return -1;
	}
	if ((rc = store_room_open(&f->st, STORE_VISIBLE, x->room, 1, &room_fd)) != 0) {
		if (rc == RD_ERR_SYSTEM)
			store_fail(f, c, fr, errno, x->room, what);
		else
			fail(c, fr, RD_E_INTERNAL, "%s", what);
		put_free(f, c, fc, x, 0);
		return -1;
	}
	/* the owner check of a replacement, the commit and the record are one step for every
	 * thread and server (a --rename's name is only known at its commit: none there) */
	if (x->mode != RDF_PUT_RENAME &&
	    store_name_lock(&f->st, x->room, x->name, &name_lock) != 0) {
		store_fail(f, c, fr, errno, x->room, what);
		put_free(f, c, fc, x, 0);
		close(room_fd);
		return -1;
	}
	if (x->mode == RDF_PUT_OVERWRITE &&
	    (code = may_change(f, c, fr, x->room, room_fd, x->name, "replace")) != 0) {
		if (code != RDF_E_PERMISSION) /* (that one is answered) */
			fail(c, fr, code, "%s", what);
		store_name_unlock(name_lock);
		put_free(f, c, fc, x, 0); /* (kept: a --rename of it resumes) */
		close(room_fd);
		return -1;
	}
	code = commit(f, x, room_fd, stored, existed);
	if (code != 0) {
		store_name_unlock(name_lock);
		if (code == RD_E_INTERNAL) /* errno says why */
			store_fail(f, c, fr, errno, x->room, what);
		else if (code == RDF_E_FILE_EXISTS)
			/* lost the race: the staging data stays for a retry with --overwrite/--rename */
			fail(c, fr, RDF_E_FILE_EXISTS,
			     "%s already exists in %s: someone else stored it first (use --overwrite or --rename)",
			     esc, x->room);
		else
			fail(c, fr, code, "%s", what);
		put_free(f, c, fc, x, 0);
		close(room_fd);
		return -1;
	}
	if (sync) {
		(void)fsync(room_fd);
		(void)fsync(x->stage_dir);
	}
	close(room_fd);
	x->key[0] = '\0'; /* renamed away */

	rd_client_nick(c, nick);
	memset(&meta, 0, sizeof(meta));
	memcpy(meta.sha256, x->got, RD_SHA256_SIZE);
	meta.size = x->size;
	meta.ino = (uint64_t)sb.st_ino;
	meta.mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
	meta.time_ms = rd_now_wall_ms();
	snprintf(meta.uploader, sizeof(meta.uploader), "%s", nick);
	meta.has_owner = rd_client_fingerprint(c, meta.owner_fp) == 0;
	/* (a cache and the owner: LIST re-hashes without it) */
	if (sync)
		(void)store_meta_write(&f->st, x->room, stored, &meta);
	else
		(void)store_meta_write_nosync(&f->st, x->room, stored, &meta);
	store_name_unlock(name_lock);
	return 0;
}

/* x is stored (durably) as `stored`: PUT_DONE, the room's notice, the log; x freed. */
static void put_done(struct files *f, struct rd_client *c, struct fclient *fc, struct put_xfer *x,
		     const char *stored, int existed)
{
	char nick[RD_NICK_BUF], esc[128], hs[32];
	struct rd_msg r;
	double secs;

	rd_client_nick(c, nick);
	rd_msg_init(&r, RDF_MSG_PUT_DONE);
	rdf_body(&r)->put_done.xfer_id = x->id;
	snprintf(rdf_body(&r)->put_done.name, sizeof(rdf_body(&r)->put_done.name), "%s", stored);
	rdf_body(&r)->put_done.size = x->size;
	memcpy(rdf_body(&r)->put_done.sha256, x->got, RD_SHA256_SIZE);
	(void)rd_client_send_msg(c, &r, x->end.hdr.req_id);
	notice_room(f, x->room, nick, existed ? RDF_FILE_REPLACED : RDF_FILE_ADDED, stored,
		    x->size);
	rd_format_size(x->size, hs, sizeof(hs));
	secs = (double)(rd_now_mono_ms() - x->start_ms) / 1000.0;
	shown(stored, esc, sizeof(esc));
	post_info(f, c, x->room, "%s %s %s (%s) in %s, %.1f s%s", nick,
		  existed ? "replaced" : "added", esc, hs, x->room, secs,
		  x->offset0 > 0 ? ", resumed" : "");
	put_free(f, c, fc, x, 0);
}

/* Whether more of the client's frames wait for its worker. */
static int jobs_waiting(struct worker *w)
{
	int more;

	pthread_mutex_lock(&w->mu);
	more = w->head != NULL;
	pthread_mutex_unlock(&w->mu);
	return more;
}

/* x ended (size and hash verified): out of the uploads in flight, onto the batch. */
static void batch_add(struct fclient *fc, struct put_xfer *x)
{
	struct put_xfer **pp;

	for (pp = &fc->puts; *pp != NULL; pp = &(*pp)->next)
		if (*pp == x) {
			*pp = x->next;
			fc->nputs--;
			break;
		}
	x->next = NULL;
	for (pp = &fc->batch; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = x;
	fc->nbatch++;
}

/* The group commit of the client's batch (see BATCH_MAX): its data made durable by one
 * syncfs, each file committed, one more syncfs for the names and records, then every
 * PUT_DONE. A failure is answered for the files it concerns only. */
static void batch_flush(struct files *f, struct rd_client *c, struct fclient *fc)
{
	char stored[BATCH_MAX][RD_NAME_BUF], esc[128], what[200];
	struct put_xfer *done[BATCH_MAX], *x;
	int existed[BATCH_MAX], data_ok;
	unsigned n = 0;

	if (fc->batch == NULL)
		return;
	/* durable before visible: the data of the whole batch at once */
	data_ok = syncfs(fc->batch->fd) == 0;
	while (n < BATCH_MAX && (x = fc->batch) != NULL) {
		fc->batch = x->next;
		fc->nbatch--;
		x->next = NULL;
		if (futimens(x->fd, NULL) != 0 || (!data_ok && fsync(x->fd) != 0)) {
			shown(x->name, esc, sizeof(esc));
			snprintf(what, sizeof(what), "cannot store %s in %s; nothing stored", esc,
				 x->room);
			store_fail(f, c, &x->end, errno, x->room, what);
			put_free(f, NULL, fc, x, 0);
			continue;
		}
		if (put_commit(f, c, fc, x, 0, stored[n], &existed[n]) == 0)
			done[n++] = x;
	}
	/* the renames and records: one more flush (the staging folders' entries ride along) */
	if (n > 0 && syncfs(done[0]->stage_dir) != 0)
		for (unsigned i = 0; i < n; i++)
			(void)fsync(done[i]->stage_dir);
	if (n > 1)
		post_info(f, c, done[0]->room, "%u uploads committed together (one flush)", n);
	for (unsigned i = 0; i < n; i++)
		put_done(f, c, fc, done[i], stored[i], existed[i]);
	if (fc->puts == NULL)
		rd_client_set_activity(c, NULL);
	if (fc->batch != NULL) /* (more than BATCH_MAX: the rest now) */
		batch_flush(f, c, fc);
}

/* PUT_END, or PUT_SEAL (which brings the SHA-256 the client says the data has). */
static uint16_t handle_end(struct files *f, struct rd_client *c, const struct rd_frame *fr)
{
	char esc[128], stored[RD_NAME_BUF], what[200];
	struct fclient *fc = rd_client_app_data(c);
	uint8_t got[RD_SHA256_SIZE], sealed[RD_SHA256_SIZE];
	struct put_xfer *x;
	struct rd_msg m;
	uint32_t id;
	int existed = 0, rc, seal = fr->hdr.type == RDF_MSG_PUT_SEAL;

	if (rd_msg_decode(fr->hdr.type, fr->payload, fr->len, &m) != 0)
		return RD_E_MALFORMED;
	id = seal ? rdf_body(&m)->put_seal.xfer_id : rdf_body(&m)->xfer.xfer_id;
	if (seal)
		memcpy(sealed, rdf_body(&m)->put_seal.sha256, RD_SHA256_SIZE);
	x = put_find(fc, id);
	if (x == NULL)
		return fail(c, fr, RDF_E_NO_SUCH_TRANSFER,
			    "no upload %" PRIu32 " on this connection", id);
	shown(x->name, esc, sizeof(esc));
	if (x->streamed && !seal) {
		fail(c, fr, RDF_E_HASH_MISMATCH,
		     "%s: a put that declared no SHA-256 ends with PUT_SEAL, not PUT_END; nothing "
		     "stored",
		     esc);
		put_free(f, c, fc, x, 1);
		return 0;
	}
	if (seal && !x->streamed && !rd_ct_equal(sealed, x->sha, RD_SHA256_SIZE)) {
		fail(c, fr, RDF_E_HASH_MISMATCH,
		     "%s: PUT_SEAL's SHA-256 is not the one PUT declared; nothing stored", esc);
		put_free(f, c, fc, x, 1);
		return 0;
	}
	if (seal)
		memcpy(x->sha, sealed, RD_SHA256_SIZE);
	if (x->received != x->size) {
		fail(c, fr, RDF_E_SIZE_MISMATCH,
		     "%s: received %" PRIu64 " bytes, declared %" PRIu64 "; nothing stored", esc,
		     x->received, x->size);
		put_free(f, c, fc, x, 1);
		return 0;
	}
	if (x->abuf != NULL) {
		rc = direct_flush(x, DIRECT_ALL);
		if (rc == RD_ERR_SYSTEM) {
			snprintf(what, sizeof(what), "cannot store %s in %s; nothing stored", esc,
				 x->room);
			store_fail(f, c, fr, errno, x->room, what);
			put_free(f, c, fc, x, 0);
			return 0;
		}
		rc = rd_sha256_final(x->h, got);
		direct_end(x);
	} else {
		rc = hasher_end(x->hs, 1, got);
		x->hs = NULL;
	}
	if (rc != 0) {
		/* the staged data could not be read back: start that upload over */
		put_free(f, c, fc, x, 1);
		return RD_E_INTERNAL;
	}
	if (!rd_ct_equal(got, x->sha, RD_SHA256_SIZE)) {
		fail(c, fr, RDF_E_HASH_MISMATCH,
		     "%s: SHA-256 of the data received does not match the one declared; nothing stored",
		     esc);
		post_info(f, c, x->room, "upload of %s refused: SHA-256 mismatch", esc);
		put_free(f, c, fc, x, 1);
		return 0;
	}
	memcpy(x->got, got, RD_SHA256_SIZE);
	x->end.hdr = fr->hdr;
	if (x->size <= BATCH_FILE_MAX && (fc->batch != NULL || jobs_waiting(&fc->w))) {
		batch_add(fc, x);
		if (fc->nbatch >= BATCH_MAX)
			batch_flush(f, c, fc);
		return 0;
	}
	/* durable before visible */
	snprintf(what, sizeof(what), "cannot store %s in %s; nothing stored", esc, x->room);
	if (futimens(x->fd, NULL) != 0 || fsync(x->fd) != 0) {
		store_fail(f, c, fr, errno, x->room, what);
		put_free(f, c, fc, x, 0);
		return 0;
	}
	if (put_commit(f, c, fc, x, 1, stored, &existed) == 0)
		put_done(f, c, fc, x, stored, existed);
	return 0;
}

/* ---- downloads ------------------------------------------------------------------------- */

/* The fixed part of a GET_CHUNK payload (xfer id, offset, data length) as the codec writes
 * it; the data follows. *fixed = its length. */
static int chunk_prefix(uint32_t id, uint64_t off, size_t n, struct rd_buf *out, size_t *fixed)
{
	struct rd_msg m;
	uint8_t *p;
	int rc;

	rd_msg_init(&m, RDF_MSG_GET_CHUNK);
	rdf_body(&m)->chunk.xfer_id = id;
	rdf_body(&m)->chunk.offset = off;
	rdf_body(&m)->chunk.data.p = NULL;
	rdf_body(&m)->chunk.data.n = 0;
	if ((rc = rd_msg_encode(&m, out)) != 0)
		return rc;
	/* the data is the last field, a u32 length then the bytes */
	if (out->len < 4 || rd_be32_get(out->data + out->len - 4) != 0)
		return RD_ERR_STATE;
	p = out->data + out->len - 4;
	rd_be32_put(p, (uint32_t)n);
	*fixed = out->len;
	return 0;
}

/* One download, streamed by its own thread so that the client's reader thread stays free
 * for PONG, XFER_CANCEL and uploads while a long download goes on. The worker owns fd and
 * touches nothing of struct fclient; the reader thread sets cancel and joins it (on the
 * next GET, or in files_on_disconnect before the client is freed). Frames are
 * built in buffers of its own and sent through rd_client_send_file only. */
struct get_xfer {
	pthread_t thread;
	atomic_int cancel;
	atomic_uint *cancel_id; /* the reader's XFER_CANCEL, acted on at once */
	struct files *f;
	struct rd_client *c;
	int fd;
	uint32_t id, req;
	uint64_t off, size;
	struct rd_zip_adapt za; /* compressible: each chunk compressed or not */
	int compressible;
	char room[RD_ROOM_BUF], nick[RD_NICK_BUF], name[RD_NAME_BUF];
};

/* Stream [off, size) of fd as GET_CHUNK frames, then GET_END, all with request id req. */
static int send_chunks(struct get_xfer *g)
{
	struct rd_buf pre, frame, payload;
	uint8_t hdr[RD_FRAME_HEADER_SIZE], *dst;
	struct rd_zip_adapt *za = &g->za;
	struct rd_frame_hdr h;
	struct rd_msg m;
	uint64_t off = g->off, t0;
	size_t fixed = 0, n;
	int rc = 0, pct = -1, zip;

	rd_buf_init(&pre, 0);
	rd_buf_init(&frame, 0);
	rd_buf_init(&payload, 0);
	while (off < g->size) {
		if (atomic_load(&g->cancel) || atomic_load(g->cancel_id) == g->id) {
			rc = RD_ERR_STATE;
			break;
		}
		n = g->size - off < RD_CHUNK_SIZE ? (size_t)(g->size - off) : RD_CHUNK_SIZE;
		rd_buf_reset(&pre);
		if ((rc = chunk_prefix(g->id, off, n, &pre, &fixed)) != 0)
			break;
		rd_buf_reset(&frame);
		/* a compressible file: each chunk compressed only while that saves time */
		zip = g->compressible && rd_zip_adapt_choose(za);
		t0 = rd_now_mono_ns();
		if (!zip) {
			/* header + fixed fields from memory, the data by sendfile */
			memset(&h, 0, sizeof(h));
			h.type = RDF_MSG_GET_CHUNK;
			h.req_id = g->req;
			h.len = (uint32_t)(fixed + n);
			rd_frame_hdr_encode(&h, hdr);
			if ((rc = rd_buf_put(&frame, hdr, sizeof(hdr))) != 0 ||
			    (rc = rd_buf_put(&frame, pre.data, fixed)) != 0)
				break;
			rc = rd_client_send_file(g->c, frame.data, frame.len, g->fd, (off_t)off, n,
						 SEND_TIMEOUT_MS);
		} else {
			rd_buf_reset(&payload);
			if ((rc = rd_buf_put(&payload, pre.data, fixed)) != 0 ||
			    (rc = rd_buf_append_space(&payload, n, &dst)) != 0 ||
			    (rc = rd_pread_full(g->fd, dst, n, off)) != 0)
				break;
			if ((rc = rd_frame_append(&frame, RDF_MSG_GET_CHUNK, g->req, payload.data,
						  payload.len, RD_FRAME_COMPRESS)) != 0)
				break;
			/* prefix-only form: waits for the socket like the raw path */
			rc = rd_client_send_file(g->c, frame.data, frame.len, -1, 0, 0,
						 SEND_TIMEOUT_MS);
		}
		if (rc != 0)
			break;
		if (g->compressible)
			rd_zip_adapt_record(za, zip, n, rd_now_mono_ns() - t0);
		off += n;
		activity(g->c, "downloading", g->name, off, g->size, &pct);
	}
	if (rc == 0) {
		rd_msg_init(&m, RDF_MSG_GET_END);
		rdf_body(&m)->xfer.xfer_id = g->id;
		rd_buf_reset(&frame);
		rc = rd_msg_frame(&frame, &m, g->req, 0);
		if (rc == 0)
			rc = rd_client_send_file(g->c, frame.data, frame.len, -1, 0, 0,
						 SEND_TIMEOUT_MS);
	}
	rd_buf_free(&pre);
	rd_buf_free(&frame);
	rd_buf_free(&payload);
	return rc;
}

static void *get_main(void *arg)
{
	struct get_xfer *g = arg;
	char esc[128], hs[32];

	pthread_setname_np(pthread_self(), "rd-files-get");
	if (send_chunks(g) == 0) {
		rd_format_size(g->size - g->off, hs, sizeof(hs));
		post_info(g->f, g->c, g->room, "%s downloaded %s (%s%s)", g->nick,
			  shown(g->name, esc, sizeof(esc)), hs, g->off > 0 ? ", resumed" : "");
	}
	rd_client_set_activity(g->c, NULL);
	close(g->fd);
	g->fd = -1;
	return NULL;
}

/* Join the client's download thread, if any (after asking it to stop when cancel). */
static void get_join(struct fclient *fc, int cancel)
{
	struct get_xfer *g = fc->get;

	if (g == NULL)
		return;
	if (cancel)
		atomic_store(&g->cancel, 1);
	pthread_join(g->thread, NULL);
	free(g);
	fc->get = NULL;
}

static uint16_t handle_get(struct files *f, struct rd_client *c, const struct rd_frame *fr)
{
	char room[RD_ROOM_BUF], esc[128];
	uint8_t sample[SAMPLE_SIZE];
	struct get_xfer *g = NULL;
	struct store_meta meta;
	struct fclient *fc;
	pthread_attr_t attr;
	struct rd_msg m, r;
	ssize_t got;
	int room_fd = -1, fd = -1, rc;
	uint16_t code = 0;

	if (!name_field_ok(fr))
		return refuse_name(c, fr);
	if (rd_msg_decode(RDF_MSG_GET, fr->payload, fr->len, &m) != 0)
		return RD_E_MALFORMED;
	frame_room(fr, room);
	if (room[0] == '\0')
		return fail(c, fr, RD_E_NOT_IN_ROOM, "join a room first");
	fc = fclient_of(c);
	if (fc == NULL)
		return RD_E_INTERNAL;
	/* one download at a time per connection: the previous one has usually sent GET_END
	 * and is finishing; a pipelined GET waits for it */
	get_join(fc, 0);
	shown(rdf_body(&m)->get.name, esc, sizeof(esc));
	rc = store_room_open(&f->st, STORE_VISIBLE, room, 0, &room_fd);
	if (rc == 0)
		rc = store_open_file(room_fd, rdf_body(&m)->get.name, &fd);
	if (rc == RD_ERR_NOT_FOUND) {
		fail(c, fr, RDF_E_NO_SUCH_FILE, "no file %s in %s", esc, room);
		goto out;
	}
	if (rc == RD_ERR_SYSTEM) {
		char what[200];

		snprintf(what, sizeof(what), "cannot read %s in %s", esc, room);
		store_fail(f, c, fr, errno, room, what);
		goto out;
	}
	if (rc != 0) {
		code = rc == RD_ERR_INVAL ? RDF_E_BAD_FILENAME : RD_E_INTERNAL;
		goto out;
	}
	/* the open fd is the version this download sends, whatever happens to the name */
	if (store_file_info(&f->st, room, rdf_body(&m)->get.name, fd, &meta) != 0) {
		code = RD_E_INTERNAL;
		goto out;
	}
	if (rdf_body(&m)->get.offset > meta.size) {
		fail(c, fr, RDF_E_BAD_OFFSET,
		     "offset %" PRIu64 " is past the end of %s (%" PRIu64 " bytes)",
		     rdf_body(&m)->get.offset, esc, meta.size);
		goto out;
	}
	g = calloc(1, sizeof(*g));
	if (g == NULL) {
		code = RD_E_INTERNAL;
		goto out;
	}
	g->f = f;
	g->cancel_id = &fc->w.cancel_get;
	g->c = c;
	g->id = new_xfer_id(f);
	g->req = fr->hdr.req_id;
	g->off = rdf_body(&m)->get.offset;
	g->size = meta.size;
	snprintf(g->room, sizeof(g->room), "%s", room);
	snprintf(g->name, sizeof(g->name), "%s", rdf_body(&m)->get.name);
	rd_client_nick(c, g->nick);
	/* chunk rule: compress only if a sample of the file's start compresses */
	do
		got = pread(fd, sample, sizeof(sample), 0);
	while (got < 0 && errno == EINTR);
	g->compressible = got > 0 && rd_zip_adapt_start(&g->za, sample, (size_t)got);

	rd_msg_init(&r, RDF_MSG_GET_BEGIN);
	rdf_body(&r)->get_begin.xfer_id = g->id;
	snprintf(rdf_body(&r)->get_begin.name, sizeof(rdf_body(&r)->get_begin.name), "%s",
		 rdf_body(&m)->get.name);
	rdf_body(&r)->get_begin.size = meta.size;
	rdf_body(&r)->get_begin.offset = rdf_body(&m)->get.offset;
	rdf_body(&r)->get_begin.mtime_ms = (uint64_t)(meta.mtime_ns / 1000000);
	memcpy(rdf_body(&r)->get_begin.sha256, meta.sha256, RD_SHA256_SIZE);
	if (rd_client_send_msg(c, &r, fr->hdr.req_id) != 0)
		goto out;
	g->fd = fd;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256u * 1024u);
	rc = pthread_create(&g->thread, &attr, get_main, g);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		g->fd = -1;
		code = RD_E_INTERNAL;
		goto out;
	}
	fd = -1; /* the worker's now */
	fc->get = g;
	g = NULL;
out:
	free(g);
	if (fd >= 0)
		close(fd);
	if (room_fd >= 0)
		close(room_fd);
	rd_msg_clear(&m);
	return code;
}

/* ---- listing and deleting -------------------------------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in the room folder that sort after `after` (byte order), sorted; *out is an
 * array of *n malloc'd names. */
static int names_after(int room_fd, const char *after, char ***out, size_t *n)
{
	char **names = NULL, **tmp;
	struct dirent *de;
	size_t cnt = 0, cap = 0;
	DIR *d;
	int dfd, rc = 0;

	*out = NULL;
	*n = 0;
	dfd = openat(room_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (d == NULL) {
		if (dfd >= 0)
			close(dfd);
		return RD_ERR_SYSTEM;
	}
	while ((de = readdir(d)) != NULL) {
		if (rd_filename_check(de->d_name, strlen(de->d_name)) != 0 ||
		    strcmp(de->d_name, after) <= 0)
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 64;
			tmp = realloc(names, cap * sizeof(*names));
			if (tmp == NULL) {
				rc = RD_ERR_NOMEM;
				break;
			}
			names = tmp;
		}
		if ((names[cnt] = strdup(de->d_name)) == NULL) {
			rc = RD_ERR_NOMEM;
			break;
		}
		cnt++;
	}
	closedir(d);
	if (rc != 0) {
		while (cnt > 0)
			free(names[--cnt]);
		free(names);
		return rc;
	}
	if (cnt > 1)
		qsort(names, cnt, sizeof(*names), name_cmp);
	*out = names;
	*n = cnt;
	return 0;
}

/* One page of the listing: the files after LIST.after, sorted, as many as fit one frame;
 * FILE_LIST.more = 1 when names remain (the client asks again after the last one). */
static uint16_t handle_list(struct files *f, struct rd_client *c, const struct rd_frame *fr)
{
	char room[RD_ROOM_BUF];
	struct rdf_file_entry *items = NULL;
	struct store_meta meta;
	struct rd_msg m, r;
	char **names = NULL;
	size_t n = 0, nnames = 0, i, len, budget;
	int room_fd = -1, fd, more = 0, rc;
	uint16_t code = 0;

	rd_msg_init(&m, RDF_MSG_LIST);
	/* an empty payload (an earlier draft's LIST) is the first page */
	if (fr->len > 0 && rd_msg_decode(RDF_MSG_LIST, fr->payload, fr->len, &m) != 0)
		return RD_E_MALFORMED;
	frame_room(fr, room);
	if (room[0] == '\0')
		return fail(c, fr, RD_E_NOT_IN_ROOM, "join a room first");
	rc = store_room_open(&f->st, STORE_VISIBLE, room, 0, &room_fd);
	if (rc == 0)
		rc = names_after(room_fd, rdf_body(&m)->list.after, &names, &nnames);
	if (rc == RD_ERR_SYSTEM) {
		char what[96];

		snprintf(what, sizeof(what), "cannot list %s", room);
		store_fail(f, c, fr, errno, room, what);
		goto out;
	}
	if (rc != 0 && rc != RD_ERR_NOT_FOUND) { /* no folder yet: an empty room */
		code = RD_E_INTERNAL;
		goto out;
	}
	if (nnames > 0 && (items = calloc(nnames, sizeof(*items))) == NULL) {
		code = RD_E_INTERNAL;
		goto out;
	}
	budget = 2 + strlen(room) + 4 + 1;
	for (i = 0; i < nnames; i++) {
		len = strlen(names[i]);
		if (store_open_file(room_fd, names[i], &fd) != 0)
			continue; /* not a regular file, or gone */
		rc = store_file_info(&f->st, room, names[i], fd, &meta);
		close(fd);
		if (rc != 0)
			continue;
		budget += 2 + len + 8 + 8 + RD_SHA256_SIZE + 2 + strlen(meta.uploader);
		if (budget > LIST_PAYLOAD_BUDGET) {
			more = 1; /* this one and the rest: next page */
			break;
		}
		memcpy(items[n].name, names[i], len + 1);
		items[n].size = meta.size;
		items[n].mtime_ms = (uint64_t)(meta.mtime_ns / 1000000);
		memcpy(items[n].sha256, meta.sha256, RD_SHA256_SIZE);
		snprintf(items[n].uploader, sizeof(items[n].uploader), "%s", meta.uploader);
		n++;
	}
	rd_msg_init(&r, RDF_MSG_FILE_LIST);
	snprintf(rdf_body(&r)->file_list.room, sizeof(rdf_body(&r)->file_list.room), "%s", room);
	rdf_body(&r)->file_list.count = (uint32_t)n;
	rdf_body(&r)->file_list.items = items;
	rdf_body(&r)->file_list.more = (uint8_t)more;
	if (rd_client_send_msg(c, &r, fr->hdr.req_id) == RD_ERR_INVAL)
		code = RD_E_INTERNAL;
out:
	for (i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	if (room_fd >= 0)
		close(room_fd);
	free(items);
	rd_msg_clear(&m);
	return code;
}

static uint16_t handle_delete(struct files *f, struct rd_client *c, const struct rd_frame *fr)
{
	char room[RD_ROOM_BUF], nick[RD_NICK_BUF], esc[128], hs[32], what[200];
	struct stat sb;
	struct rd_msg m, r;
	int room_fd = -1, name_lock = -1, rc;
	uint16_t code = 0;

	if (!name_field_ok(fr))
		return refuse_name(c, fr);
	if (rd_msg_decode(RDF_MSG_DELETE, fr->payload, fr->len, &m) != 0)
		return RD_E_MALFORMED;
	frame_room(fr, room);
	if (room[0] == '\0')
		return fail(c, fr, RD_E_NOT_IN_ROOM, "join a room first");
	shown(rdf_body(&m)->name.name, esc, sizeof(esc));
	snprintf(what, sizeof(what), "cannot remove %s in %s", esc, room);
	rc = store_room_open(&f->st, STORE_VISIBLE, room, 0, &room_fd);
	if (rc == 0 && fstatat(room_fd, rdf_body(&m)->name.name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
		rc = errno == ENOENT ? RD_ERR_NOT_FOUND : RD_ERR_SYSTEM;
	if (rc == 0 && !S_ISREG(sb.st_mode))
		rc = RD_ERR_NOT_FOUND;
	/* the owner check, the unlink and the record: one step for every server (and the
	 * file looked at again once the name is held) */
	if (rc == 0 && store_name_lock(&f->st, room, rdf_body(&m)->name.name, &name_lock) != 0)
		rc = RD_ERR_SYSTEM;
	if (rc == 0 && fstatat(room_fd, rdf_body(&m)->name.name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
		rc = errno == ENOENT ? RD_ERR_NOT_FOUND : RD_ERR_SYSTEM;
	if (rc == 0 && !S_ISREG(sb.st_mode))
		rc = RD_ERR_NOT_FOUND;
	if (rc == 0 &&
	    (code = may_change(f, c, fr, room, room_fd, rdf_body(&m)->name.name, "delete")) != 0) {
		if (code == RDF_E_PERMISSION)
			code = 0; /* (sent) */
		goto out;
	}
	if (rc == 0 && unlinkat(room_fd, rdf_body(&m)->name.name, 0) != 0)
		rc = errno == ENOENT ? RD_ERR_NOT_FOUND : RD_ERR_SYSTEM;
	if (rc == RD_ERR_SYSTEM) {
		store_fail(f, c, fr, errno, room, what);
		goto out;
	}
	if (rc != 0) {
		fail(c, fr, RDF_E_NO_SUCH_FILE, "no file %s in %s", esc, room);
		goto out;
	}
	(void)fsync(room_fd);
	(void)store_meta_remove(&f->st, room, rdf_body(&m)->name.name);
	store_name_unlock(name_lock);
	name_lock = -1;
	rd_msg_init(&r, RD_MSG_OK);
	r.u.ok.for_type = RDF_MSG_DELETE;
	(void)rd_client_send_msg(c, &r, fr->hdr.req_id);
	rd_client_nick(c, nick);
	notice_room(f, room, nick, RDF_FILE_REMOVED, rdf_body(&m)->name.name, (uint64_t)sb.st_size);
	rd_format_size((uint64_t)sb.st_size, hs, sizeof(hs));
	post_info(f, c, room, "%s removed %s (%s) from %s", nick, esc, hs, room);
out:
	store_name_unlock(name_lock);
	if (room_fd >= 0)
		close(room_fd);
	return code;
}

static uint16_t handle_cancel(struct files *f, struct rd_client *c, const struct rd_frame *fr)
{
	struct fclient *fc = rd_client_app_data(c);
	struct put_xfer *x;
	struct rd_msg m;

	if (rd_msg_decode(RDF_MSG_XFER_CANCEL, fr->payload, fr->len, &m) != 0)
		return RD_E_MALFORMED;
	x = put_find(fc, rdf_body(&m)->xfer_cancel.xfer_id);
	if (x != NULL)
		put_free(f, c, fc, x, 0); /* staging kept: a later put resumes */
	else if (fc != NULL && fc->get != NULL && fc->get->id == rdf_body(&m)->xfer_cancel.xfer_id)
		atomic_store(&fc->get->cancel, 1);
	return 0;
}

/* ---- hooks ----------------------------------------------------------------------------- */

static uint16_t dispatch_job(struct files *f, struct rd_client *c, const struct rd_frame *fr)
{
	switch (fr->hdr.type) {
	case RDF_MSG_PUT:
		return handle_put(f, c, fr);
	case RDF_MSG_PUT_CHUNK:
		return handle_chunk(f, c, fr);
	case RDF_MSG_PUT_END:
	case RDF_MSG_PUT_SEAL:
		return handle_end(f, c, fr);
	case RDF_MSG_GET:
		return handle_get(f, c, fr);
	case RDF_MSG_LIST:
		return handle_list(f, c, fr);
	case RDF_MSG_DELETE:
		return handle_delete(f, c, fr);
	case RDF_MSG_XFER_CANCEL:
		return handle_cancel(f, c, fr);
	default:
		return RD_E_UNKNOWN_TYPE;
	}
}

/* The client's worker: runs its file frames in order, answers a failed one with ERROR. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct job *j;

	pthread_setname_np(pthread_self(), "rd-files-w");
	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (w->head == NULL && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->head == NULL) { /* stopped, and everything the client sent is done */
			pthread_mutex_unlock(&w->mu);
			batch_flush(w->f, w->c, rd_client_app_data(w->c));
			return NULL;
		}
		j = w->head;
		w->head = j->next;
		if (w->head == NULL)
			w->tail = NULL;
		w->bytes -= j->f.len;
		pthread_cond_broadcast(&w->cv); /* room in the queue */
		pthread_mutex_unlock(&w->mu);
		struct fclient *fc = rd_client_app_data(w->c);

		/* a batch is committed before anything but an upload's frames, so that what
		 * follows (a LIST, a GET) sees it, and when nothing more waits */
		if (fc->batch != NULL && j->f.hdr.type != RDF_MSG_PUT &&
		    j->f.hdr.type != RDF_MSG_PUT_CHUNK && j->f.hdr.type != RDF_MSG_PUT_END &&
		    j->f.hdr.type != RDF_MSG_PUT_SEAL)
			batch_flush(w->f, w->c, fc);
		uint16_t code = dispatch_job(w->f, w->c, &j->f);
		if (code)
			rd_client_send_error(w->c, j->f.hdr.req_id, j->f.hdr.type, code, NULL);
		free(j);
		if (fc->batch != NULL && !jobs_waiting(w))
			batch_flush(w->f, w->c, fc);
	}
}

uint16_t files_on_frame(struct rd_server *s, struct rd_client *c, const struct rd_frame *fr,
			void *user)
{
	struct files *f = user;
	struct fclient *fc;
	struct worker *w;
	struct job *j;
	struct rd_msg m;

	(void)s;
	if (f == NULL || c == NULL || fr == NULL)
		return RD_E_INTERNAL;
	if ((fc = fclient_of(c)) == NULL)
		return RD_E_INTERNAL;
	w = &fc->w;
	/* a download is stopped at once, not after what is queued before the cancel */
	if (fr->hdr.type == RDF_MSG_XFER_CANCEL &&
	    rd_msg_decode(RDF_MSG_XFER_CANCEL, fr->payload, fr->len, &m) == 0 &&
	    rdf_body(&m)->xfer_cancel.xfer_id != 0)
		atomic_store(&w->cancel_get, rdf_body(&m)->xfer_cancel.xfer_id);
	if ((j = malloc(sizeof(*j) + (fr->len ? fr->len : 1))) == NULL)
		return RD_E_INTERNAL;
	j->next = NULL;
	j->f.hdr = fr->hdr;
	j->f.len = fr->len;
	if (fr->len)
		memcpy(j->payload, fr->payload, fr->len);
	j->f.payload = j->payload;
	rd_client_room(c, j->room);
	if (!w->started) {
		w->f = f;
		w->c = c;
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			free(j);
			return RD_E_INTERNAL;
		}
		w->started = 1;
	}
	pthread_mutex_lock(&w->mu);
	while (w->bytes > 0 && w->bytes + fr->len > WORK_MAX_BYTES && !w->stop)
		pthread_cond_wait(&w->cv, &w->mu);
	if (w->tail)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
	w->bytes += fr->len;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

/* Stop the client's worker once it has run every frame already received (the chunks a
 * client sent before it went are written, so a resume continues after them, as when the
 * reader wrote them itself), and join it. */
static void worker_stop(struct worker *w)
{
	struct job *j;

	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (w->started)
		pthread_join(w->thread, NULL);
	while ((j = w->head) != NULL) {
		w->head = j->next;
		free(j);
	}
	w->tail = NULL;
	w->bytes = 0;
}

void files_on_disconnect(struct rd_server *s, struct rd_client *c, const char *reason, void *user)
{
	struct files *f = user;
	struct fclient *fc;

	(void)s;
	(void)reason;
	if (f == NULL || c == NULL)
		return;
	fc = rd_client_app_data(c);
	if (fc == NULL)
		return;
	worker_stop(&fc->w);
	get_join(fc, 1);
	/* uploads in progress keep their staging data for a resume */
	while (fc->puts != NULL)
		put_free(f, NULL, fc, fc->puts, 0);
	rd_client_set_app_data(c, NULL);
	pthread_mutex_destroy(&fc->w.mu);
	pthread_cond_destroy(&fc->w.cv);
	free(fc);
}
