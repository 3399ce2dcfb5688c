/* bundle.c - the files of an offer, on the sending side and on the receiving side
 * (bundle.h).
 */
#include "bundle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rd_display.h"
#include "rd_err.h"
#include "rd_names.h"

#define PART_SUFFIX ".part"

static uint64_t mtime_ms_of(const struct stat *sb)
{
	return (uint64_t)sb->st_mtim.tv_sec * 1000u + (uint64_t)sb->st_mtim.tv_nsec / 1000000u;
}

/* A name as the recipient will see it: NFC, checked; why says what is wrong. */
static int wire_component(const char *name, char *out, size_t cap, char *why, size_t wcap)
{
	char ewhy[160];

	if (rd_name_nfc(name, strlen(name), out, cap) != 0 ||
	    rd_filename_explain(out, strlen(out), ewhy, sizeof(ewhy)) != 0) {
		char esc[300];

		snprintf(why, wcap, "%s: not a name others can receive: %s",
			 rd_display_escape(name, strlen(name), esc, sizeof(esc)),
			 ewhy[0] != '\0' ? ewhy : "not valid UTF-8 or too long");
		return RD_ERR_INVAL;
	}
	return 0;
}

static int push(struct bundle *b, const char *path, const char *local, const struct stat *sb,
		char *why, size_t cap)
{
	struct bundle_file *f;
	char pwhy[200];

	if (rdf_path_check(path, strlen(path), pwhy, sizeof(pwhy)) != 0) {
		snprintf(why, cap, "%s: %s", local, pwhy);
		return RD_ERR_INVAL;
	}
	for (size_t i = 0; i < b->n; i++)
		if (rd_name_eq(b->files[i].path, path)) {
			snprintf(why, cap, "%s and %s would both be received as %s",
				 b->files[i].local, local, path);
			return RD_ERR_INVAL;
		}
	if (b->n >= RDF_OFFER_FILES_MAX) {
		snprintf(why, cap, "more than %u files in one offer", RDF_OFFER_FILES_MAX);
		return RD_ERR_INVAL;
	}
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 16;
		struct bundle_file *nf = realloc(b->files, ncap * sizeof(*nf));

		if (nf == NULL)
			return RD_ERR_NOMEM;
		b->files = nf;
		b->cap = ncap;
	}
	f = &b->files[b->n];
	memset(f, 0, sizeof(*f));
	if ((f->path = strdup(path)) == NULL || (f->local = strdup(local)) == NULL) {
		free(f->path);
		return RD_ERR_NOMEM;
	}
	f->size = (uint64_t)sb->st_size;
	f->mtime_ms = mtime_ms_of(sb);
	b->n++;
	b->total += f->size;
	return 0;
}

/* Every regular file below the folder dfd (path: its name in the offer, local: here). */
static int walk(struct bundle *b, int dfd, const char *path, const char *local, unsigned depth,
		char *why, size_t cap)
{
	char name[RD_NAME_BUF], *cpath = NULL, *clocal = NULL;
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int rc = 0, fd;

	if (depth >= RDF_PATH_DEPTH) {
		snprintf(why, cap, "%s: more than %u folders deep", local, RDF_PATH_DEPTH);
		close(dfd);
		return RD_ERR_INVAL;
	}
	if ((d = fdopendir(dfd)) == NULL) {
		snprintf(why, cap, "%s: %s", local, strerror(errno));
		close(dfd);
		return RD_ERR_NOT_FOUND;
	}
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		free(cpath);
		free(clocal);
		cpath = clocal = NULL;
		if (asprintf(&clocal, "%s/%s", local, de->d_name) < 0) {
			clocal = NULL;
			rc = RD_ERR_NOMEM;
			break;
		}
		/* never through a link: lstat, and open with O_NOFOLLOW */
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
			snprintf(why, cap, "%s: %s", clocal, strerror(errno));
			rc = RD_ERR_NOT_FOUND;
			break;
		}
		if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode)) {
			b->skipped++;
			continue;
		}
		if ((rc = wire_component(de->d_name, name, sizeof(name), why, cap)) != 0)
			break;
		if (asprintf(&cpath, "%s/%s", path, name) < 0) {
			cpath = NULL;
			rc = RD_ERR_NOMEM;
			break;
		}
		if (S_ISREG(sb.st_mode)) {
			rc = push(b, cpath, clocal, &sb, why, cap);
			continue;
		}
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			snprintf(why, cap, "%s: %s", clocal, strerror(errno));
			rc = RD_ERR_NOT_FOUND;
			break;
		}
		rc = walk(b, fd, cpath, clocal, depth + 1, why, cap);
	}
	if (rc == 0 && errno != 0) {
		snprintf(why, cap, "%s: %s", local, strerror(errno));
		rc = RD_ERR_NOT_FOUND;
	}
	free(cpath);
	free(clocal);
	closedir(d);
	return rc;
}

int bundle_add(struct bundle *b, const char *arg, char *why, size_t cap)
{
	char name[RD_NAME_BUF], *base, *copy;
	struct stat sb;
	size_t len;
	int rc, fd;

	why[0] = '\0';
	/* what the user named is followed if it is a link (as cp does); links inside folders
	 * are not */
	if (stat(arg, &sb) != 0) {
		snprintf(why, cap, "%s: %s", arg, strerror(errno));
		return RD_ERR_NOT_FOUND;
	}
	if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode)) {
		snprintf(why, cap, "%s: not a file or a folder", arg);
		return RD_ERR_INVAL;
	}
	if ((copy = strdup(arg)) == NULL)
		return RD_ERR_NOMEM;
	/* the last component, without trailing slashes ("photos/" -> "photos") */
	for (len = strlen(copy); len > 1 && copy[len - 1] == '/'; len--)
		copy[len - 1] = '\0';
	base = strrchr(copy, '/') != NULL && strrchr(copy, '/')[1] != '\0' ?
		       strrchr(copy, '/') + 1 :
		       copy;
	if (strcmp(base, "/") == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		/* "." or "/" has no name of its own to give the recipient */
		snprintf(why, cap,
			 "%s: has no name to give the recipient; name the folder "
			 "itself (../NAME) or its files",
			 arg);
		free(copy);
		return RD_ERR_INVAL;
	}
	rc = wire_component(base, name, sizeof(name), why, cap);
	if (rc == 0 && S_ISREG(sb.st_mode)) {
		rc = push(b, name, arg, &sb, why, cap);
	} else if (rc == 0) {
		fd = open(arg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			snprintf(why, cap, "%s: %s", arg, strerror(errno));
			rc = RD_ERR_NOT_FOUND;
		} else {
			rc = walk(b, fd, name, copy, 0, why, cap);
		}
	}
	free(copy);
	return rc;
}

void bundle_free(struct bundle *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->files[i].path);
		free(b->files[i].local);
	}
	free(b->files);
	memset(b, 0, sizeof(*b));
}

int bundle_descriptor(const struct bundle *b, struct rd_buf *out)
{
	struct rdf_file_offer o = { 0 };
	int rc;

	if (b->n == 0)
		return RD_ERR_INVAL;
	if ((o.items = calloc(b->n, sizeof(*o.items))) == NULL)
		return RD_ERR_NOMEM;
	o.count = (uint32_t)b->n;
	for (size_t i = 0; i < b->n; i++) {
		snprintf(o.items[i].path, sizeof(o.items[i].path), "%s", b->files[i].path);
		o.items[i].size = b->files[i].size;
		o.items[i].mtime_ms = b->files[i].mtime_ms;
	}
	rc = rdf_file_offer_encode(&o, out);
	free(o.items);
	return rc;
}

void bundle_summary(const struct rdf_file_offer *o, char *out, size_t cap)
{
	char hs[32], esc[RDF_PATH_MAX * 4 + 8], top[RDF_PATH_MAX * 4 + 10];
	uint64_t total = 0;
	size_t len;

	for (uint32_t i = 0; i < o->count; i++)
		total += o->items[i].size;
	rd_format_size(total, hs, sizeof(hs));
	snprintf(out, cap, "%u file%s (%s):", o->count, o->count == 1 ? "" : "s", hs);
	for (uint32_t i = 0; i < o->count; i++) {
		const char *p = o->items[i].path, *sl = strchr(p, '/');
		size_t n = sl != NULL ? (size_t)(sl - p) : strlen(p);
		int seen = 0;

		/* a top-level name once, in the order it first appears */
		for (uint32_t j = 0; j < i && !seen; j++)
			seen = strncmp(o->items[j].path, p, n) == 0 &&
			       (o->items[j].path[n] == '/' || o->items[j].path[n] == '\0');
		if (seen)
			continue;
		rd_display_escape(p, n, esc, sizeof(esc));
		snprintf(top, sizeof(top), "%s%s", esc, sl != NULL ? "/" : "");
		len = strlen(out);
		if (len + strlen(top) + 7 > cap) { /* " " top "," and room for " ..." */
			if (len + 5 <= cap)
				snprintf(out + len, cap - len, " ...");
			return;
		}
		snprintf(out + len, cap - len, "%s %s", i == 0 ? "" : ",", top);
	}
}

int bundle_open_part(int dfd, const char *path, int *parent_fd, int *part_fd, char *leaf,
		     size_t cap, uint64_t *have)
{
	char comp[RD_NAME_BUF];
	const char *p = path, *sl;
	struct stat sb;
	int cur, next, saved;

	*parent_fd = *part_fd = -1;
	if ((cur = dup(dfd)) < 0)
		return RD_ERR_SYSTEM;
	while ((sl = strchr(p, '/')) != NULL) {
		size_t n = (size_t)(sl - p);

		if (n == 0 || n >= sizeof(comp)) {
			close(cur);
			errno = EINVAL;
			return RD_ERR_SYSTEM;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		if (mkdirat(cur, comp, 0755) != 0 && errno != EEXIST)
			goto fail;
		/* O_NOFOLLOW: a link planted where a folder should be stops here (ELOOP) */
		next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
			goto fail;
		close(cur);
		cur = next;
		p = sl + 1;
	}
	if (snprintf(leaf, cap, "%s", p) >= (int)cap ||
	    strlen(p) + sizeof(PART_SUFFIX) > sizeof(comp)) {
		close(cur);
		errno = ENAMETOOLONG;
		return RD_ERR_SYSTEM;
	}
	snprintf(comp, sizeof(comp), "%s" PART_SUFFIX, p);
	*part_fd = openat(cur, comp, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (*part_fd < 0)
		goto fail;
	if (fstat(*part_fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		if (errno == 0 || S_ISREG(sb.st_mode) == 0)
			errno = EINVAL;
		saved = errno;
		close(*part_fd);
		*part_fd = -1;
		close(cur);
		errno = saved;
		return RD_ERR_SYSTEM;
	}
	*have = (uint64_t)sb.st_size;
	*parent_fd = cur;
	return 0;
fail:
	saved = errno;
	close(cur);
	errno = saved;
	return RD_ERR_SYSTEM;
}
