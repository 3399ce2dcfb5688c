/* digest.c - the client's cache of file digests (digest.h). */
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rd_hash.h"

#define RECORD_MAX 192

static int64_t ns_of(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* The cache folder (made when make is 1) into dir. 0 or -1. */
static int cache_dir(char *dir, size_t cap, int make)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char base[PATH_MAX];
	int n;

	if (xdg != NULL && xdg[0] == '/')
		n = snprintf(base, sizeof(base), "%s/roomdrop", xdg);
	else if (home != NULL && home[0] == '/')
		n = snprintf(base, sizeof(base), "%s/.cache/roomdrop", home);
	else
		return -1;
	if (n < 0 || (size_t)n >= sizeof(base))
		return -1;
	n = snprintf(dir, cap, "%s/sha256", base);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	if (make) {
		char parent[PATH_MAX];

		snprintf(parent, sizeof(parent), "%.*s", (int)(strrchr(base, '/') - base), base);
		(void)mkdir(parent, 0700);
		(void)mkdir(base, 0700);
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			return -1;
	}
	return 0;
}

/* "size mtime_ns ctime_ns" of sb, the part of a record that must match. */
static void key_of(const struct stat *sb, char *out, size_t cap)
{
	snprintf(out, cap, "%" PRIu64 " %" PRId64 " %" PRId64, (uint64_t)sb->st_size,
		 ns_of(&sb->st_mtim), ns_of(&sb->st_ctim));
}

static void path_of(const char *dir, const struct stat *sb, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%" PRIu64 "-%" PRIu64, dir, (uint64_t)sb->st_dev,
		 (uint64_t)sb->st_ino);
}

int digest_get(const struct stat *sb, uint8_t sha[RD_SHA256_SIZE])
{
	char dir[PATH_MAX], path[PATH_MAX + 64], rec[RECORD_MAX + 1], key[96];
	size_t klen;
	ssize_t n;
	int fd;

	if ((uint64_t)sb->st_size < DIGEST_MIN || cache_dir(dir, sizeof(dir), 0) != 0)
		return 0;
	path_of(dir, sb, path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, rec, RECORD_MAX);
	close(fd);
	if (n <= 0)
		return 0;
	rec[n] = '\0';
	key_of(sb, key, sizeof(key));
	klen = strlen(key);
	/* "KEY HEX\n": the key must match exactly, then 64 hex digits */
	if ((size_t)n != klen + 1 + 2 * RD_SHA256_SIZE + 1 || memcmp(rec, key, klen) != 0 ||
	    rec[klen] != ' ' || rec[n - 1] != '\n')
		return 0;
	rec[n - 1] = '\0';
	return rd_hex_parse(rec + klen + 1, sha, RD_SHA256_SIZE) == 0;
}

void digest_put(const struct stat *sb, const uint8_t sha[RD_SHA256_SIZE])
{
	char dir[PATH_MAX], path[PATH_MAX + 64], tmp[PATH_MAX + 96], rec[RECORD_MAX], key[96];
	char hex[2 * RD_SHA256_SIZE + 1];
	int fd, n;

	if ((uint64_t)sb->st_size < DIGEST_MIN || cache_dir(dir, sizeof(dir), 1) != 0)
		return;
	path_of(dir, sb, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	key_of(sb, key, sizeof(key));
	rd_hex(sha, RD_SHA256_SIZE, hex);
	n = snprintf(rec, sizeof(rec), "%s %s\n", key, hex);
	if (n < 0 || (size_t)n >= sizeof(rec))
		return;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
		return;
	if (write(fd, rec, (size_t)n) != n) {
		close(fd);
		(void)unlink(tmp);
		return;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0)
		(void)unlink(tmp);
}

void digest_forget(const struct stat *sb)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];

	if (cache_dir(dir, sizeof(dir), 0) != 0)
		return;
	path_of(dir, sb, path, sizeof(path));
	(void)unlink(path);
}
