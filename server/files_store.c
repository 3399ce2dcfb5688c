/* files_store.c - the on-disk layout of the file application: store root, room folders,
 * metadata records, staging names, atomic commit, quota usage and the staging sweep.
 * No state of its own beyond struct store; callers serialise nothing here (every
 * operation is a single filesystem call or works on private temp names). Across processes
 * (servers of a cluster sharing the store): an upload holds an open-file-description
 * write lock (F_OFD_SETLK) on its staging file, and the sweep removes none that is locked.
 */
#include "files_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files/rdf_proto.h"
#include "rd_err.h"
#include "rd_hash.h"
#include "rd_names.h"
#include "rd_proto.h"

#define META_MAX 1024u
#define META_MAGIC "roomdrop-meta 1"

static atomic_uint meta_tmp_counter;

static int mkdir_p(const char *path, mode_t mode)
{
	char *p = NULL, *s;
	int rc;

	p = strdup(path);
	if (p == NULL)
		return RD_ERR_NOMEM;
	for (s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) != 0 && errno != EEXIST) {
			rc = RD_ERR_SYSTEM;
			goto out;
		}
		*s = '/';
	}
	if (mkdir(p, mode) != 0 && errno != EEXIST) {
		rc = RD_ERR_SYSTEM;
		goto out;
	}
	rc = 0;
out:
	free(p);
	return rc;
}

static int open_private_dir(int base, const char *name, int *out)
{
	int fd;

	*out = -1;
	if (mkdirat(base, name, STORE_PRIVATE_MODE) != 0 && errno != EEXIST)
		return RD_ERR_SYSTEM;
	fd = openat(base, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return RD_ERR_SYSTEM;
	*out = fd;
	return 0;
}

int store_open(const char *root, struct store *st)
{
	int rc;

	if (st == NULL)
		return RD_ERR_INVAL;
	st->root_fd = st->meta_fd = st->staging_fd = -1;
	st->root_real = NULL;
	if (root == NULL || root[0] == '\0')
		return RD_ERR_INVAL;
	if ((rc = mkdir_p(root, STORE_DIR_MODE)) != 0)
		goto out;
	st->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->root_fd < 0) {
		rc = RD_ERR_SYSTEM;
		goto out;
	}
	if (faccessat(st->root_fd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
		rc = RD_ERR_SYSTEM;
		goto out;
	}
	if ((rc = open_private_dir(st->root_fd, STORE_META_DIR, &st->meta_fd)) != 0)
		goto out;
	if ((rc = open_private_dir(st->root_fd, STORE_STAGING_DIR, &st->staging_fd)) != 0)
		goto out;
	st->root_real = realpath(root, NULL);
	if (st->root_real == NULL) {
		rc = RD_ERR_SYSTEM;
		goto out;
	}
	rc = 0;
out:
	if (rc != 0) {
		int e = errno;

		store_close(st);
		errno = e;
	}
	return rc;
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	if (st->root_fd >= 0)
		close(st->root_fd);
	if (st->meta_fd >= 0)
		close(st->meta_fd);
	if (st->staging_fd >= 0)
		close(st->staging_fd);
	free(st->root_real);
	st->root_fd = st->meta_fd = st->staging_fd = -1;
	st->root_real = NULL;
}

/* Resolved path of an open descriptor through /proc. 1 if found, 0 if /proc is not
 * there (the caller then relies on the inode checks alone), or an error. */
static int fd_path(int fd, char *out, size_t cap)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, out, cap - 1);
	if (n < 0)
		return (errno == ENOENT || errno == ENOTDIR) ? 0 : RD_ERR_SYSTEM;
	if ((size_t)n >= cap - 1)
		return RD_ERR_TOO_BIG;
	out[n] = '\0';
	return 1;
}

int store_room_open(const struct store *st, enum store_tree tree, const char *room, int create,
		    int *out_fd)
{
	static const char *const sub[] = { "", "/" STORE_META_DIR, "/" STORE_STAGING_DIR };
	char want[PATH_MAX], got[PATH_MAX];
	int base, fd = -1, rc;

	if (out_fd != NULL)
		*out_fd = -1;
	if (st == NULL || room == NULL || out_fd == NULL || (unsigned)tree > STORE_STAGING)
		return RD_ERR_INVAL;
	if (rd_room_check(room, strlen(room)) != 0)
		return RD_ERR_INVAL;
	base = tree == STORE_VISIBLE ? st->root_fd :
	       tree == STORE_META    ? st->meta_fd :
				       st->staging_fd;
	if (create &&
	    mkdirat(base, room, tree == STORE_VISIBLE ? STORE_DIR_MODE : STORE_PRIVATE_MODE) != 0 &&
	    errno != EEXIST)
		return RD_ERR_SYSTEM;
	fd = openat(base, room, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return RD_ERR_NOT_FOUND;
		if (errno == ENOTDIR || errno == ELOOP)
			return RD_ERR_INVAL;
		return RD_ERR_SYSTEM;
	}
	/* Checked, not assumed: the folder we hold is STORE[/tree]/ROOM. */
	if ((size_t)snprintf(want, sizeof(want), "%s%s/%s", st->root_real, sub[tree], room) >=
	    sizeof(want)) {
		rc = RD_ERR_TOO_BIG;
		goto out;
	}
	rc = fd_path(fd, got, sizeof(got));
	if (rc < 0)
		goto out;
	if (rc == 1 && strcmp(want, got) != 0) {
		rc = RD_ERR_INVAL;
		goto out;
	}
	*out_fd = fd;
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int store_check_inside(int dir_fd, int fd)
{
	char dpath[PATH_MAX], fpath[PATH_MAX];
	struct stat d, a;
	size_t dl;
	int rc1, rc2;

	/* Judged from the two descriptors only: looking the name up again would see a newer
	 * version committed since the open (a rename over it) and fail a reader for nothing. */
	if (fstat(fd, &a) != 0 || fstat(dir_fd, &d) != 0)
		return RD_ERR_INVAL;
	if (!S_ISREG(a.st_mode) || !S_ISDIR(d.st_mode) || a.st_dev != d.st_dev)
		return RD_ERR_INVAL;
	rc1 = fd_path(dir_fd, dpath, sizeof(dpath));
	rc2 = fd_path(fd, fpath, sizeof(fpath));
	if (rc1 < 0 || rc2 < 0)
		return RD_ERR_INVAL;
	if (rc1 == 0 || rc2 == 0)
		return 0; /* no /proc: the device identity above is the check */
	/* "DIR/NAME", or "DIR/NAME (deleted)" once replaced: directly inside DIR either way */
	dl = strlen(dpath);
	if (strncmp(dpath, fpath, dl) != 0 || fpath[dl] != '/' || fpath[dl + 1] == '\0' ||
	    strchr(fpath + dl + 1, '/') != NULL)
		return RD_ERR_INVAL;
	return 0;
}

int store_open_file(int room_fd, const char *name, int *out_fd)
{
	struct stat sb;
	int fd, rc;

	if (out_fd != NULL)
		*out_fd = -1;
	if (out_fd == NULL || name == NULL || rd_filename_check(name, strlen(name)) != 0)
		return RD_ERR_INVAL;
	/* O_NONBLOCK: a FIFO planted in the folder must not hang the reader. */
	fd = openat(room_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR)
			return RD_ERR_NOT_FOUND;
		return RD_ERR_SYSTEM;
	}
	if (fstat(fd, &sb) != 0) {
		rc = RD_ERR_SYSTEM;
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		rc = RD_ERR_NOT_FOUND;
		goto out;
	}
	if ((rc = store_check_inside(room_fd, fd)) != 0)
		goto out;
	*out_fd = fd;
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

void store_staging_key(const uint8_t sha[RD_SHA256_SIZE], uint64_t size, unsigned alt,
		       char out[STORE_KEY_BUF])
{
	char hex[2 * RD_SHA256_SIZE + 1];

	rd_hex(sha, RD_SHA256_SIZE, hex);
	if (alt == 0)
		snprintf(out, STORE_KEY_BUF, "%s-%" PRIu64, hex, size);
	else
		snprintf(out, STORE_KEY_BUF, "%s-%" PRIu64 ".%u", hex, size, alt);
}

int store_rename_candidate(const char *name, unsigned n, char *out, size_t cap)
{
	return rdf_name_numbered(name, n, out, cap);
}

/* ---- metadata records --------------------------------------------------------------
 * roomdrop-meta 1
 * sha256 <64 hex>
 * size <bytes>
 * ino <inode of the committed file>
 * mtime_ns <its mtime in ns since the epoch>
 * time_ms <commit time>
 * uploader <nick or empty>
 */
int store_meta_format(const struct store_meta *m, char *buf, size_t cap, size_t *len)
{
	char hex[2 * RD_SHA256_SIZE + 1];
	int n;

	if (len != NULL)
		*len = 0;
	if (m == NULL || buf == NULL || len == NULL)
		return RD_ERR_INVAL;
	rd_hex(m->sha256, RD_SHA256_SIZE, hex);
	n = snprintf(buf, cap,
		     META_MAGIC "\nsha256 %s\nsize %" PRIu64 "\nino %" PRIu64 "\nmtime_ns %" PRId64
				"\ntime_ms %" PRIu64 "\nuploader %s\n",
		     hex, m->size, m->ino, m->mtime_ns, m->time_ms, m->uploader);
	if (n < 0 || (size_t)n >= cap)
		return RD_ERR_TOO_BIG;
	if (m->has_owner) { /* (a line of its own: records without it stay valid) */
		int k;

		rd_hex(m->owner_fp, RD_TLS_FP_LEN, hex);
		k = snprintf(buf + n, cap - (size_t)n, "owner %s\n", hex);
		if (k < 0 || (size_t)k >= cap - (size_t)n)
			return RD_ERR_TOO_BIG;
		n += k;
	}
	*len = (size_t)n;
	return 0;
}

static int parse_u64(const char *s, size_t n, uint64_t *v)
{
	uint64_t x = 0;
	size_t i;

	if (n == 0 || n > 20)
		return RD_ERR_MALFORMED;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return RD_ERR_MALFORMED;
		if (x > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return RD_ERR_MALFORMED;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	*v = x;
	return 0;
}

int store_meta_parse(const char *buf, size_t n, struct store_meta *m)
{
	enum {
		F_SHA = 1,
		F_SIZE = 2,
		F_INO = 4,
		F_MTIME = 8,
		F_TIME = 16,
		F_UP = 32,
		F_OWNER = 64
	};
	char hex[2 * RD_SHA256_SIZE + 1];
	const char *p = buf, *end = buf + n, *nl, *sp;
	unsigned seen = 0, bit;
	size_t klen, vlen;
	uint64_t v;
	int first = 1;

	if (m != NULL)
		memset(m, 0, sizeof(*m));
	if (m == NULL || (buf == NULL && n > 0))
		return RD_ERR_INVAL;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return RD_ERR_MALFORMED;
		if (first) {
			if ((size_t)(nl - p) != strlen(META_MAGIC) ||
			    memcmp(p, META_MAGIC, strlen(META_MAGIC)) != 0)
				return RD_ERR_MALFORMED;
			first = 0;
			p = nl + 1;
			continue;
		}
		sp = memchr(p, ' ', (size_t)(nl - p));
		if (sp == NULL)
			return RD_ERR_MALFORMED;
		klen = (size_t)(sp - p);
		vlen = (size_t)(nl - sp - 1);
		sp++;
#define KEY_IS(k) (klen == strlen(k) && memcmp(p, k, klen) == 0)
		if (KEY_IS("sha256")) {
			bit = F_SHA;
			if (vlen != 2 * RD_SHA256_SIZE)
				return RD_ERR_MALFORMED;
			memcpy(hex, sp, vlen);
			hex[vlen] = '\0';
			if (rd_hex_parse(hex, m->sha256, RD_SHA256_SIZE) != 0)
				return RD_ERR_MALFORMED;
		} else if (KEY_IS("owner")) {
			bit = F_OWNER;
			if (vlen != 2 * RD_TLS_FP_LEN)
				return RD_ERR_MALFORMED;
			memcpy(hex, sp, vlen);
			hex[vlen] = '\0';
			if (rd_hex_parse(hex, m->owner_fp, RD_TLS_FP_LEN) != 0)
				return RD_ERR_MALFORMED;
			m->has_owner = 1;
		} else if (KEY_IS("uploader")) {
			bit = F_UP;
			if (vlen > 0 && vlen < RD_NICK_BUF && rd_nick_check(sp, vlen) == 0) {
				memcpy(m->uploader, sp, vlen);
				m->uploader[vlen] = '\0';
			}
		} else {
			if (KEY_IS("size"))
				bit = F_SIZE;
			else if (KEY_IS("ino"))
				bit = F_INO;
			else if (KEY_IS("mtime_ns"))
				bit = F_MTIME;
			else if (KEY_IS("time_ms"))
				bit = F_TIME;
			else
				return RD_ERR_MALFORMED;
			if (parse_u64(sp, vlen, &v) != 0)
				return RD_ERR_MALFORMED;
			if (bit == F_SIZE)
				m->size = v;
			else if (bit == F_INO)
				m->ino = v;
			else if (bit == F_MTIME)
				m->mtime_ns = v > INT64_MAX ? INT64_MAX : (int64_t)v;
			else
				m->time_ms = v;
		}
#undef KEY_IS
		if (seen & bit)
			return RD_ERR_MALFORMED;
		seen |= bit;
		p = nl + 1;
	}
	if (first ||
	    (seen & (F_SHA | F_SIZE | F_INO | F_MTIME)) != (F_SHA | F_SIZE | F_INO | F_MTIME)) {
		memset(m, 0, sizeof(*m));
		return RD_ERR_MALFORMED;
	}
	return 0;
}

static int write_all_fd(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return RD_ERR_SYSTEM;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int meta_write(const struct store *st, const char *room, const char *name,
		      const struct store_meta *m, int sync)
{
	char buf[META_MAX], tmp[64];
	int dfd = -1, fd = -1, rc, made = 0;
	size_t len;

	if (st == NULL || room == NULL || name == NULL || m == NULL ||
	    rd_filename_check(name, strlen(name)) != 0)
		return RD_ERR_INVAL;
	if ((rc = store_meta_format(m, buf, sizeof(buf), &len)) != 0)
		return rc;
	if ((rc = store_room_open(st, STORE_META, room, 1, &dfd)) != 0)
		return rc;
	/* Temp names start with '.', which no room name can: no clash with a room folder. */
	snprintf(tmp, sizeof(tmp), ".tmp-%ld-%u", (long)getpid(),
		 atomic_fetch_add(&meta_tmp_counter, 1u));
	fd = openat(st->meta_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = RD_ERR_SYSTEM;
		goto out;
	}
	made = 1;
	if ((rc = write_all_fd(fd, buf, len)) != 0)
		goto out;
	if (sync && fsync(fd) != 0) {
		rc = RD_ERR_SYSTEM;
		goto out;
	}
	if (renameat(st->meta_fd, tmp, dfd, name) != 0) {
		rc = RD_ERR_SYSTEM;
		goto out;
	}
	made = 0;
	if (sync)
		(void)fsync(dfd);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (made)
		(void)unlinkat(st->meta_fd, tmp, 0);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

int store_meta_write(const struct store *st, const char *room, const char *name,
		     const struct store_meta *m)
{
	return meta_write(st, room, name, m, 1);
}

int store_meta_write_nosync(const struct store *st, const char *room, const char *name,
			    const struct store_meta *m)
{
	return meta_write(st, room, name, m, 0);
}

int store_meta_remove(const struct store *st, const char *room, const char *name)
{
	int dfd = -1, rc;

	if (st == NULL || room == NULL || name == NULL ||
	    rd_filename_check(name, strlen(name)) != 0)
		return RD_ERR_INVAL;
	rc = store_room_open(st, STORE_META, room, 0, &dfd);
	if (rc == RD_ERR_NOT_FOUND)
		return 0;
	if (rc != 0)
		return rc;
	rc = 0;
	if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT)
		rc = RD_ERR_SYSTEM;
	close(dfd);
	return rc;
}

static int meta_read(const struct store *st, const char *room, const char *name,
		     struct store_meta *m)
{
	char buf[META_MAX];
	int dfd = -1, fd = -1, rc;
	ssize_t n;

	if ((rc = store_room_open(st, STORE_META, room, 0, &dfd)) != 0)
		return rc;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		rc = errno == ENOENT ? RD_ERR_NOT_FOUND : RD_ERR_SYSTEM;
		goto out;
	}
	do
		n = pread(fd, buf, sizeof(buf), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		rc = RD_ERR_SYSTEM;
		goto out;
	}
	rc = store_meta_parse(buf, (size_t)n, m);
out:
	if (fd >= 0)
		close(fd);
	close(dfd);
	return rc;
}

static int64_t mtime_ns_of(const struct stat *sb)
{
	return (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
}

int store_meta_get(const struct store *st, const char *room, const char *name, int fd,
		   struct store_meta *out)
{
	struct stat sb;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (st == NULL || room == NULL || name == NULL || out == NULL)
		return RD_ERR_INVAL;
	if (fstat(fd, &sb) != 0)
		return RD_ERR_SYSTEM;
	if (meta_read(st, room, name, out) != 0 || out->ino != (uint64_t)sb.st_ino ||
	    out->size != (uint64_t)sb.st_size || out->mtime_ns != mtime_ns_of(&sb)) {
		memset(out, 0, sizeof(*out));
		return RD_ERR_NOT_FOUND;
	}
	return 0;
}

int store_file_info(const struct store *st, const char *room, const char *name, int fd,
		    struct store_meta *out)
{
	struct store_meta old;
	struct stat sb;
	uint64_t size;
	int rc, have_old;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (st == NULL || room == NULL || name == NULL || out == NULL)
		return RD_ERR_INVAL;
	if (fstat(fd, &sb) != 0)
		return RD_ERR_SYSTEM;
	have_old = meta_read(st, room, name, &old) == 0;
	if (have_old && old.ino == (uint64_t)sb.st_ino && old.size == (uint64_t)sb.st_size &&
	    old.mtime_ns == mtime_ns_of(&sb)) {
		*out = old;
		return 0;
	}
	/* Not the inode the record describes: hash it and remember (uploader unknown unless
	 * the content is the same as recorded). */
	if ((rc = rd_sha256_fd(fd, out->sha256, &size)) != 0)
		return rc;
	if (fstat(fd, &sb) != 0)
		return RD_ERR_SYSTEM;
	out->size = size;
	out->ino = (uint64_t)sb.st_ino;
	out->mtime_ns = mtime_ns_of(&sb);
	out->time_ms = (uint64_t)sb.st_mtim.tv_sec * 1000 + (uint64_t)sb.st_mtim.tv_nsec / 1000000;
	if (have_old && memcmp(old.sha256, out->sha256, RD_SHA256_SIZE) == 0) {
		memcpy(out->uploader, old.uploader, sizeof(out->uploader));
		out->has_owner = old.has_owner;
		memcpy(out->owner_fp, old.owner_fp, sizeof(out->owner_fp));
	}
	if (size == (uint64_t)sb.st_size)
		(void)store_meta_write(st, room, name, out); /* a cache: failure is not fatal */
	return 0;
}

#define LOCK_FILE ".locks"    /* in .meta: names starting with '.' are no room's */
#define LOCK_BYTES (1u << 20) /* bytes to hash names over */

int store_name_lock(const struct store *st, const char *room, const char *name, int *lock_fd)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a over "room/name", room folded */
	struct flock fl;
	int fd;

	*lock_fd = -1;
	for (const char *p = room; *p; p++)
		h = (h ^ (unsigned char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p)) *
		    1099511628211ull;
	h = (h ^ '/') * 1099511628211ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	fd = openat(st->meta_fd, LOCK_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return RD_ERR_SYSTEM;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)(h % LOCK_BYTES);
	fl.l_len = 1;
	while (fcntl(fd, F_OFD_SETLKW, &fl) != 0) {
		if (errno != EINTR) {
			int e = errno;

			close(fd);
			errno = e;
			return RD_ERR_SYSTEM;
		}
	}
	*lock_fd = fd;
	return 0;
}

void store_name_unlock(int lock_fd)
{
	if (lock_fd >= 0)
		close(lock_fd); /* (closing the description releases its locks) */
}

int store_commit(int from_dir, const char *from, int to_dir, const char *to, int replace)
{
	if (from == NULL || to == NULL)
		return RD_ERR_INVAL;
	if (replace)
		return renameat(from_dir, from, to_dir, to) == 0 ? 0 : RD_ERR_SYSTEM;
	if (renameat2(from_dir, from, to_dir, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EEXIST)
		return RD_ERR_EXISTS;
	if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
		return RD_ERR_SYSTEM;
	/* Filesystem without RENAME_NOREPLACE: link() never replaces either. */
	if (linkat(from_dir, from, to_dir, to, 0) != 0)
		return errno == EEXIST ? RD_ERR_EXISTS : RD_ERR_SYSTEM;
	(void)unlinkat(from_dir, from, 0);
	return 0;
}

int store_exists(int dir_fd, const char *name)
{
	struct stat sb;

	if (fstatat(dir_fd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0)
		return 1;
	return errno == ENOENT ? 0 : RD_ERR_SYSTEM;
}

/* An independent descriptor on the same folder, for readdir. */
static DIR *dir_reopen(int dir_fd)
{
	DIR *d;
	int fd;

	fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (d == NULL)
		close(fd);
	return d;
}

static int usage_of(int dir_fd, store_held_fn held, void *user, uint64_t *bytes)
{
	struct dirent *de;
	struct stat sb;
	uint64_t sum = 0;
	DIR *d;

	if (bytes != NULL)
		*bytes = 0;
	if (bytes == NULL)
		return RD_ERR_INVAL;
	d = dir_reopen(dir_fd);
	if (d == NULL)
		return RD_ERR_SYSTEM;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (held != NULL && held(de->d_name, user))
			continue;
		if (fstatat(dir_fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(sb.st_mode))
			sum += (uint64_t)sb.st_size;
	}
	closedir(d);
	*bytes = sum;
	return 0;
}

int store_room_usage(int room_fd, uint64_t *bytes)
{
	return usage_of(room_fd, NULL, NULL, bytes);
}

int store_staged_usage(int stage_fd, store_held_fn held, void *user, uint64_t *bytes)
{
	return usage_of(stage_fd, held, user, bytes);
}

#define PUNCH (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)

int store_release_reservation(int fd, uint64_t keep)
{
	struct stat sb;
	uint64_t alloc;

	if (fstat(fd, &sb) != 0)
		return RD_ERR_SYSTEM;
	alloc = (uint64_t)sb.st_blocks * 512u;
	/* Punch whatever can lie past keep (allocated bytes bound it), then truncate: either
	 * alone leaves KEEP_SIZE blocks behind on some filesystems. EOPNOTSUPP: truncate only. */
	if (alloc > 0 && fallocate(fd, PUNCH, (off_t)keep, (off_t)alloc) != 0 &&
	    errno != EOPNOTSUPP && errno != ENOSYS)
		return RD_ERR_SYSTEM;
	if (ftruncate(fd, (off_t)keep) != 0)
		return RD_ERR_SYSTEM;
	return 0;
}

static void release_room(int dfd, unsigned *released)
{
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int fd;

	d = dir_reopen(dfd);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		fd = openat(dfd, de->d_name, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			continue;
		/* more blocks than the size needs (rounded up to 64 KiB): a reservation */
		if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    (uint64_t)sb.st_blocks * 512u > (uint64_t)sb.st_size + 65536u &&
		    store_release_reservation(fd, (uint64_t)sb.st_size) == 0) {
			/* the staging TTL counts from the last write, not from this */
			struct timespec ts[2] = { sb.st_atim, sb.st_mtim };

			(void)futimens(fd, ts);
			(*released)++;
		}
		close(fd);
	}
	closedir(d);
}

/* Call fn for each room folder of the staging area (opened as a directory, closed after).
 * RD_ERR_SYSTEM if the staging area cannot be read. */
static int each_staging_room(const struct store *st,
			     void (*fn)(int rfd, const char *room, void *arg), void *arg)
{
	struct dirent *de;
	DIR *d;
	int rfd;

	d = dir_reopen(st->staging_fd);
	if (d == NULL)
		return RD_ERR_SYSTEM;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || rd_room_check(de->d_name, strlen(de->d_name)) != 0)
			continue;
		rfd = openat(st->staging_fd, de->d_name,
			     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (rfd < 0)
			continue;
		fn(rfd, de->d_name, arg);
		close(rfd);
	}
	closedir(d);
	return 0;
}

static void release_room_cb(int rfd, const char *room, void *arg)
{
	(void)room;
	release_room(rfd, arg);
}

int store_release_all(const struct store *st, unsigned *released)
{
	unsigned dummy = 0;

	if (released == NULL)
		released = &dummy;
	*released = 0;
	if (st == NULL)
		return RD_ERR_INVAL;
	return each_staging_room(st, release_room_cb, released);
}

static void sweep_room(int dfd, const char *room, int64_t now_s, uint32_t ttl_s,
		       store_claim_fn claim, void *user, unsigned *removed)
{
	struct dirent *de;
	struct stat sb;
	DIR *d;

	d = dir_reopen(dfd);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (now_s - (int64_t)sb.st_mtim.tv_sec <= (int64_t)ttl_s)
			continue;
		if (claim != NULL && claim(room, de->d_name, 0, user) != 0)
			continue;
		/* an upload through another server of a shared store holds it locked (files.c:
		 * F_OFD_SETLK on its descriptor): left alone, it may yet be resumed */
		int fd = openat(dfd, de->d_name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		if (fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) == 0 &&
		    unlinkat(dfd, de->d_name, 0) == 0)
			(*removed)++;
		if (fd >= 0)
			close(fd);
		if (claim != NULL)
			(void)claim(room, de->d_name, 1, user);
	}
	closedir(d);
}

struct sweep_args {
	int64_t now_s;
	uint32_t ttl_s;
	store_claim_fn claim;
	void *user;
	unsigned *removed;
};

static void sweep_room_cb(int rfd, const char *room, void *arg)
{
	struct sweep_args *a = arg;
	sweep_room(rfd, room, a->now_s, a->ttl_s, a->claim, a->user, a->removed);
}

int store_sweep(const struct store *st, int64_t now_s, uint32_t ttl_s, store_claim_fn claim,
		void *user, unsigned *removed)
{
	struct dirent *de;
	struct stat sb;
	unsigned dummy = 0;
	DIR *d;
	int rc;

	if (removed == NULL)
		removed = &dummy;
	*removed = 0;
	if (st == NULL)
		return RD_ERR_INVAL;
	struct sweep_args a = { now_s, ttl_s, claim, user, removed };
	if ((rc = each_staging_room(st, sweep_room_cb, &a)) != 0)
		return rc;
	/* metadata temp files left by a crash */
	d = dir_reopen(st->meta_fd);
	if (d == NULL)
		return RD_ERR_SYSTEM;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, ".tmp-", 5) != 0)
			continue;
		if (fstatat(st->meta_fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    now_s - (int64_t)sb.st_mtim.tv_sec > 60)
			(void)unlinkat(st->meta_fd, de->d_name, 0);
	}
	closedir(d);
	return 0;
}
