/* test_files_store.c - the server's storage helpers (server/files_store.c): rename
 * candidates, metadata records (hostile ones included), staging keys, atomic commit with
 * and without replacement, room folders and files that must not be symlinks or escape the
 * store, stale metadata rebuilt by hashing, room and staged usage, reservations given back,
 * the staging sweep.
 *
 * files_store.c belongs to the server program, not to libroomdrop: this test links its
 * object (build/obj/server/files_store.o, see the Makefile) and uses only what
 * files_store.h declares. Every test works in its own temporary store. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../server/files_store.h"
#include "rd_err.h"
#include "rd_hash.h"
#include "rd_names.h"

struct fixture {
	char dir[64];  /* temporary parent */
	char root[96]; /* dir/store */
	struct store st;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_files_store.XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(fx->root, sizeof(fx->root), "%s/store", fx->dir);
	if (store_open(fx->root, &fx->st) != 0)
		return -1;
	*state = fx;
	return 0;
}

static int64_t mtime_ns_of(const struct stat *sb)
{
	return (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
}

/* The record of name in room as the store wrote it, parsed. */
static int meta_read(const struct store *st, const char *room, const char *name,
		     struct store_meta *m)
{
	char buf[1024];
	ssize_t n;
	int dfd, fd, rc;

	if ((rc = store_room_open(st, STORE_META, room, 0, &dfd)) != 0)
		return rc;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW);
	close(dfd);
	if (fd < 0)
		return errno == ENOENT ? RD_ERR_NOT_FOUND : RD_ERR_SYSTEM;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return RD_ERR_SYSTEM;
	return store_meta_parse(buf, (size_t)n, m);
}

static int rm_rf_at(int dfd)
{
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int sub;

	sub = openat(dfd, ".", O_RDONLY | O_DIRECTORY);
	d = sub >= 0 ? fdopendir(sub) : NULL;
	if (d == NULL) {
		if (sub >= 0)
			close(sub);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(sb.st_mode)) {
			sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
			if (sub >= 0) {
				rm_rf_at(sub);
				close(sub);
			}
			unlinkat(dfd, de->d_name, AT_REMOVEDIR);
		} else {
			unlinkat(dfd, de->d_name, 0);
		}
	}
	closedir(d);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	int fd;

	store_close(&fx->st);
	fd = open(fx->dir, O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		rm_rf_at(fd);
		close(fd);
	}
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static void write_file(int dfd, const char *name, const char *content)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

static void test_rename_candidates(void **state)
{
	static const struct {
		const char *in;
		unsigned n;
		const char *want;
	} t[] = {
		{ "report.pdf", 1, "report (1).pdf" },
		{ "notes", 2, "notes (2)" },
		{ ".bashrc", 1, ".bashrc (1)" },
		{ "archive.tar.gz", 3, "archive.tar (3).gz" },
		{ "naïve café.txt", 1, "naïve café (1).txt" },
		{ "a.", 1, "a (1)." },
	};
	char out[RD_NAME_BUF], name[RD_FILENAME_MAX + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(store_rename_candidate(t[i].in, t[i].n, out, sizeof(out)), 0);
		assert_string_equal(out, t[i].want);
	}
	/* at the length limit the base is cut, on a UTF-8 boundary, and the result is valid */
	memset(name, 'x', RD_FILENAME_MAX);
	memcpy(name + RD_FILENAME_MAX - 4, ".pdf", 4);
	name[RD_FILENAME_MAX] = '\0';
	assert_int_equal(store_rename_candidate(name, 12, out, sizeof(out)), 0);
	assert_int_equal(strlen(out), RD_FILENAME_MAX);
	assert_string_equal(out + RD_FILENAME_MAX - 9, " (12).pdf");
	for (i = 0; i + 1 < RD_FILENAME_MAX; i += 2)
		memcpy(name + i, "\xc3\xa9", 2); /* é é é ... */
	name[RD_FILENAME_MAX - 1] = '\0';
	assert_int_equal(store_rename_candidate(name, 7, out, sizeof(out)), 0);
	assert_int_equal(rd_filename_check(out, strlen(out)), 0);
	/* hostile input and small buffers are refused */
	assert_int_equal(store_rename_candidate("../x", 1, out, sizeof(out)), RD_ERR_INVAL);
	assert_int_equal(store_rename_candidate("a/b", 1, out, sizeof(out)), RD_ERR_INVAL);
	assert_int_equal(store_rename_candidate("ok.txt", 1, out, 5), RD_ERR_INVAL);
}

static void test_meta_round_trip(void **state)
{
	struct store_meta m, back;
	char buf[1024];
	size_t len;

	(void)state;
	memset(&m, 0, sizeof(m));
	for (size_t i = 0; i < RD_SHA256_SIZE; i++)
		m.sha256[i] = (uint8_t)(i * 7);
	m.size = UINT64_MAX;
	m.ino = 1234567;
	m.mtime_ns = 1700000000123456789LL;
	m.time_ms = 1700000000123ULL;
	snprintf(m.uploader, sizeof(m.uploader), "alice");
	assert_int_equal(store_meta_format(&m, buf, sizeof(buf), &len), 0);
	assert_int_equal(store_meta_parse(buf, len, &back), 0);
	assert_memory_equal(&m, &back, sizeof(m));
	/* unknown uploader */
	m.uploader[0] = '\0';
	assert_int_equal(store_meta_format(&m, buf, sizeof(buf), &len), 0);
	assert_int_equal(store_meta_parse(buf, len, &back), 0);
	assert_string_equal(back.uploader, "");
	assert_int_equal(store_meta_format(&m, buf, 10, &len), RD_ERR_TOO_BIG);
	/* the uploader's key (issue 12: files have owners) */
	memset(m.uploader, 0, sizeof(m.uploader));
	snprintf(m.uploader, sizeof(m.uploader), "bob");
	m.has_owner = 1;
	for (size_t i = 0; i < RD_TLS_FP_LEN; i++)
		m.owner_fp[i] = (uint8_t)(0xf0 - i);
	assert_int_equal(store_meta_format(&m, buf, sizeof(buf), &len), 0);
	assert_int_equal(store_meta_parse(buf, len, &back), 0);
	assert_memory_equal(&m, &back, sizeof(m));
	assert_int_equal(store_meta_format(&m, buf, len - 1, &len), RD_ERR_TOO_BIG);
}

static void test_meta_parse_refuses_hostile_records(void **state)
{
	static const char *const bad[] = {
		"",
		"roomdrop-meta 2\n",
		"roomdrop-meta 1", /* no newline */
		"roomdrop-meta 1\nsha256 00\nsize 1\nino 1\nmtime_ns 1\n",
		"roomdrop-meta 1\nsize 1\nino 1\nmtime_ns 1\n", /* no sha256 */
		"roomdrop-meta 1\nsha256 "
		"zz00000000000000000000000000000000000000000000000000000000000000\nsize 1\nino "
		"1\nmtime_ns 1\n",
		"roomdrop-meta 1\nsha256 "
		"0000000000000000000000000000000000000000000000000000000000000000\nsize "
		"99999999999999999999\nino 1\nmtime_ns 1\n", /* overflows u64 */
		"roomdrop-meta 1\nsha256 "
		"0000000000000000000000000000000000000000000000000000000000000000\nsize 1\nsize "
		"2\nino 1\nmtime_ns 1\n", /* duplicate */
		"roomdrop-meta 1\nsha256 "
		"0000000000000000000000000000000000000000000000000000000000000000\nsize -1\nino "
		"1\nmtime_ns 1\n",
		"roomdrop-meta 1\nsha256 "
		"0000000000000000000000000000000000000000000000000000000000000000\nsize 1\nino "
		"1\nmtime_ns 1\nevil yes\n", /* unknown key */
		"roomdrop-meta 1\nsha256 "
		"0000000000000000000000000000000000000000000000000000000000000000\nsize 1\nino "
		"1\nmtime_ns 1\nowner 00ff\n", /* an owner that is not a fingerprint */
	};
	struct store_meta m;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(store_meta_parse(bad[i], strlen(bad[i]), &m), RD_ERR_MALFORMED);
	/* an uploader that is not a valid nickname is dropped, not trusted */
	{
		const char *s = "roomdrop-meta 1\nsha256 "
				"0000000000000000000000000000000000000000000000000000000000000000\n"
				"size 1\nino 1\nmtime_ns 1\nuploader \x1b[31mevil\n";

		assert_int_equal(store_meta_parse(s, strlen(s), &m), 0);
		assert_string_equal(m.uploader, "");
	}
}

static void test_staging_key(void **state)
{
	uint8_t sha[RD_SHA256_SIZE];
	char key[STORE_KEY_BUF];

	(void)state;
	memset(sha, 0xab, sizeof(sha));
	store_staging_key(sha, 42, 0, key);
	assert_int_equal(strlen(key), 64 + 3);
	assert_string_equal(key + 64, "-42");
	store_staging_key(sha, UINT64_MAX, UINT32_MAX, key);
	assert_string_equal(key + 64, "-18446744073709551615.4294967295");
}

static void test_commit_one_winner(void **state)
{
	struct fixture *fx = *state;
	int room, stage;
	char buf[16] = { 0 };
	int fd;

	assert_int_equal(store_room_open(&fx->st, STORE_VISIBLE, "general", 1, &room), 0);
	assert_int_equal(store_room_open(&fx->st, STORE_STAGING, "general", 1, &stage), 0);
	write_file(stage, "k1", "first");
	write_file(stage, "k2", "second");
	write_file(stage, "k3", "third");
	assert_int_equal(store_commit(stage, "k1", room, "a.txt", 0), 0);
	/* refuse mode: the second commit of the name loses and its data stays staged */
	assert_int_equal(store_commit(stage, "k2", room, "a.txt", 0), RD_ERR_EXISTS);
	assert_int_equal(store_exists(stage, "k2"), 1);
	fd = openat(room, "a.txt", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 5);
	assert_string_equal(buf, "first");
	close(fd);
	/* overwrite replaces */
	assert_int_equal(store_commit(stage, "k3", room, "a.txt", 1), 0);
	fd = openat(room, "a.txt", O_RDONLY);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 5);
	assert_string_equal(buf, "third");
	close(fd);
	assert_int_equal(store_exists(stage, "k3"), 0);
	close(room);
	close(stage);
}

/* Whether a lock held by another open file description covers any byte of .meta/.locks:
 * F_OFD_GETLK from a description of our own (which holds nothing). */
static int locks_held(const struct fixture *fx)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	int fd = openat(fx->st.meta_fd, ".locks", O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
	close(fd);
	return fl.l_type != F_UNLCK;
}

/* store_name_lock holds a name against other descriptions, threads and processes (a
 * cluster's servers sharing the store) until store_name_unlock, and a process that dies
 * holding it leaves nothing locked. */
static void test_name_lock_across_processes(void **state)
{
	struct fixture *fx = *state;
	int fd, fd2, go[2], hold[2];
	char c;
	pid_t pid;

	assert_int_equal(store_name_lock(&fx->st, "general", "a.txt", &fd), 0);
	assert_true(fd >= 0);
	assert_true(locks_held(fx));
	store_name_unlock(fd);
	assert_false(locks_held(fx));
	/* the room's case does not matter; two names can both be held at once */
	assert_int_equal(store_name_lock(&fx->st, "General", "a.txt", &fd), 0);
	assert_int_equal(store_name_lock(&fx->st, "general", "b.txt", &fd2), 0);
	store_name_unlock(fd2);
	assert_true(locks_held(fx));
	store_name_unlock(fd);

	/* another process holds it: seen from here, released when that process dies */
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(hold), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int lfd;

		close(go[0]);
		close(hold[1]);
		if (store_name_lock(&fx->st, "general", "a.txt", &lfd) != 0)
			_exit(1);
		(void)!write(go[1], "x", 1);
		(void)!read(hold[0], &c, 1); /* until the parent closes its end */
		_exit(0);                    /* (no unlock: the kernel drops the lock) */
	}
	close(go[1]);
	close(hold[0]);
	assert_int_equal(read(go[0], &c, 1), 1);
	assert_true(locks_held(fx));
	close(hold[1]);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_false(locks_held(fx));
	close(go[0]);
	store_name_unlock(-1); /* nothing held: nothing done */
}

static void test_room_folders_are_checked(void **state)
{
	struct fixture *fx = *state;
	char path[256];
	int fd;

	assert_int_equal(store_room_open(&fx->st, STORE_VISIBLE, "..", 1, &fd), RD_ERR_INVAL);
	assert_int_equal(store_room_open(&fx->st, STORE_VISIBLE, ".meta", 1, &fd), RD_ERR_INVAL);
	assert_int_equal(store_room_open(&fx->st, STORE_VISIBLE, "a/b", 1, &fd), RD_ERR_INVAL);
	assert_int_equal(store_room_open(&fx->st, STORE_VISIBLE, "nope", 0, &fd), RD_ERR_NOT_FOUND);
	assert_int_equal(fd, -1);
	/* a room folder replaced by a symlink to elsewhere is refused */
	snprintf(path, sizeof(path), "%s/evil", fx->root);
	assert_int_equal(symlink(fx->dir, path), 0);
	assert_int_equal(store_room_open(&fx->st, STORE_VISIBLE, "evil", 0, &fd), RD_ERR_INVAL);
	assert_int_equal(store_room_open(&fx->st, STORE_VISIBLE, "evil", 1, &fd), RD_ERR_INVAL);
}

static void test_open_file_refuses_links_and_specials(void **state)
{
	struct fixture *fx = *state;
	int room, fd;

	assert_int_equal(store_room_open(&fx->st, STORE_VISIBLE, "general", 1, &room), 0);
	write_file(room, "ok.txt", "ok");
	assert_int_equal(symlinkat("/etc/passwd", room, "link"), 0);
	assert_int_equal(mkfifoat(room, "fifo", 0600), 0);
	assert_int_equal(mkdirat(room, "sub", 0700), 0);
	assert_int_equal(store_open_file(room, "ok.txt", &fd), 0);
	assert_int_equal(store_check_inside(room, fd), 0);
	close(fd);
	/* a descriptor of something outside the room folder is refused */
	fd = open("/etc/passwd", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(store_check_inside(room, fd), RD_ERR_INVAL);
	close(fd);
	assert_int_equal(store_open_file(room, "link", &fd), RD_ERR_NOT_FOUND);
	assert_int_equal(store_open_file(room, "fifo", &fd), RD_ERR_NOT_FOUND);
	assert_int_equal(store_open_file(room, "sub", &fd), RD_ERR_NOT_FOUND);
	assert_int_equal(store_open_file(room, "../store", &fd), RD_ERR_INVAL);
	assert_int_equal(store_open_file(room, "missing", &fd), RD_ERR_NOT_FOUND);
	assert_int_equal(fd, -1);
	close(room);
}

/* A reader holds the version it opened: a new version renamed over the name afterwards
 * (a concurrent commit) does not make the open descriptor fail the check. */
static void test_opened_file_survives_a_replacing_commit(void **state)
{
	struct fixture *fx = *state;
	int room, fd, fd2;

	assert_int_equal(store_room_open(&fx->st, STORE_VISIBLE, "general", 1, &room), 0);
	write_file(room, "v.bin", "old");
	assert_int_equal(store_open_file(room, "v.bin", &fd), 0);
	write_file(room, ".new", "new version");
	assert_int_equal(store_commit(room, ".new", room, "v.bin", 1), 0);
	assert_int_equal(store_check_inside(room, fd), 0);
	/* and the name now opens the new version */
	assert_int_equal(store_open_file(room, "v.bin", &fd2), 0);
	assert_int_equal(store_check_inside(room, fd2), 0);
	close(fd2);
	close(fd);
	close(room);
}

static void test_file_info_uses_or_rebuilds_metadata(void **state)
{
	struct fixture *fx = *state;
	struct store_meta m, got;
	uint8_t want[RD_SHA256_SIZE];
	struct stat sb;
	int room, fd;

	assert_int_equal(store_room_open(&fx->st, STORE_VISIBLE, "general", 1, &room), 0);
	write_file(room, "f.txt", "abc");
	assert_int_equal(store_open_file(room, "f.txt", &fd), 0);
	assert_int_equal(fstat(fd, &sb), 0);
	rd_sha256("abc", 3, want);
	/* a record that matches the inode is used as is (even its made-up hash) */
	memset(&m, 0, sizeof(m));
	memset(m.sha256, 0x11, sizeof(m.sha256));
	m.size = 3;
	m.ino = (uint64_t)sb.st_ino;
	m.mtime_ns = mtime_ns_of(&sb);
	snprintf(m.uploader, sizeof(m.uploader), "alice");
	assert_int_equal(store_meta_write(&fx->st, "general", "f.txt", &m), 0);
	assert_int_equal(store_file_info(&fx->st, "general", "f.txt", fd, &got), 0);
	assert_memory_equal(got.sha256, m.sha256, RD_SHA256_SIZE);
	assert_string_equal(got.uploader, "alice");
	/* a record of another inode is stale: the file is hashed, the uploader unknown */
	m.ino++;
	assert_int_equal(store_meta_write(&fx->st, "general", "f.txt", &m), 0);
	assert_int_equal(store_file_info(&fx->st, "general", "f.txt", fd, &got), 0);
	assert_memory_equal(got.sha256, want, RD_SHA256_SIZE);
	assert_string_equal(got.uploader, "");
	assert_int_equal(got.size, 3);
	/* and the rebuilt record is remembered */
	assert_int_equal(meta_read(&fx->st, "general", "f.txt", &m), 0);
	assert_memory_equal(m.sha256, want, RD_SHA256_SIZE);
	/* no record at all: same */
	assert_int_equal(store_meta_remove(&fx->st, "general", "f.txt"), 0);
	assert_int_equal(store_file_info(&fx->st, "general", "f.txt", fd, &got), 0);
	assert_memory_equal(got.sha256, want, RD_SHA256_SIZE);
	close(fd);
	close(room);
}

static void test_room_usage_counts_regular_files(void **state)
{
	struct fixture *fx = *state;
	uint64_t used;
	int room;

	assert_int_equal(store_room_open(&fx->st, STORE_VISIBLE, "general", 1, &room), 0);
	assert_int_equal(store_room_usage(room, &used), 0);
	assert_int_equal(used, 0);
	write_file(room, "a", "12345");
	write_file(room, "b", "123");
	assert_int_equal(symlinkat("/etc/passwd", room, "link"), 0);
	assert_int_equal(store_room_usage(room, &used), 0);
	assert_int_equal(used, 8);
	close(room);
}

static int held_is_k1(const char *name, void *user)
{
	(void)user;
	return strcmp(name, "k1") == 0;
}

static void test_staged_usage_leaves_out_held_files(void **state)
{
	struct fixture *fx = *state;
	uint64_t used;
	int dir;

	assert_int_equal(store_room_open(&fx->st, STORE_STAGING, "general", 1, &dir), 0);
	write_file(dir, "k1", "12345");
	write_file(dir, "k2", "123");
	assert_int_equal(store_staged_usage(dir, NULL, NULL, &used), 0);
	assert_int_equal(used, 8);
	assert_int_equal(store_staged_usage(dir, held_is_k1, NULL, &used), 0);
	assert_int_equal(used, 3);
	close(dir);
}

/* A reservation (KEEP_SIZE blocks past the data) is given back; the data and the size
 * a resume relies on stay. */
static void test_release_reservation_keeps_the_data(void **state)
{
	struct fixture *fx = *state;
	char buf[16];
	struct stat sb;
	int dir, fd;

	assert_int_equal(store_room_open(&fx->st, STORE_STAGING, "general", 1, &dir), 0);
	fd = openat(dir, "k", O_RDWR | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "0123456789", 10), 10);
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 10, 8 << 20) != 0) {
		close(fd);
		close(dir);
		skip(); /* the filesystem of /tmp cannot reserve */
	}
	assert_int_equal(fstat(fd, &sb), 0);
	assert_true((uint64_t)sb.st_blocks * 512u >= 8u << 20);
	assert_int_equal(store_release_reservation(fd, 10), 0);
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(sb.st_size, 10);
	assert_true((uint64_t)sb.st_blocks * 512u <= 65536u);
	assert_int_equal(pread(fd, buf, sizeof(buf), 0), 10);
	assert_memory_equal(buf, "0123456789", 10);
	/* and at start, for every staging file */
	assert_int_equal(fallocate(fd, FALLOC_FL_KEEP_SIZE, 10, 8 << 20), 0);
	{
		unsigned n = 0;

		assert_int_equal(store_release_all(&fx->st, &n), 0);
		assert_int_equal(n, 1);
	}
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(sb.st_size, 10);
	assert_true((uint64_t)sb.st_blocks * 512u <= 65536u);
	close(fd);
	close(dir);
}

static int claim_busy_k2(const char *room, const char *key, int release, void *user)
{
	int *released = user;

	(void)room;
	if (release) {
		(*released)++;
		return 0;
	}
	return strcmp(key, "k2") == 0;
}

static void test_sweep_removes_only_stale_unclaimed(void **state)
{
	struct fixture *fx = *state;
	struct timespec old[2] = { { .tv_sec = 1000 }, { .tv_sec = 1000 } };
	unsigned removed = 0;
	int stage, released = 0;

	assert_int_equal(store_room_open(&fx->st, STORE_STAGING, "general", 1, &stage), 0);
	write_file(stage, "k1", "stale");
	write_file(stage, "k2", "stale but busy");
	write_file(stage, "k3", "fresh");
	assert_int_equal(utimensat(stage, "k1", old, 0), 0);
	assert_int_equal(utimensat(stage, "k2", old, 0), 0);
	assert_int_equal(store_sweep(&fx->st, (int64_t)time(NULL), 3600, claim_busy_k2, &released,
				     &removed),
			 0);
	assert_int_equal(removed, 1);
	assert_int_equal(released, 1);
	assert_int_equal(store_exists(stage, "k1"), 0);
	assert_int_equal(store_exists(stage, "k2"), 1);
	assert_int_equal(store_exists(stage, "k3"), 1);
	close(stage);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rename_candidates),
		cmocka_unit_test(test_meta_round_trip),
		cmocka_unit_test(test_meta_parse_refuses_hostile_records),
		cmocka_unit_test(test_staging_key),
		cmocka_unit_test_setup_teardown(test_commit_one_winner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_name_lock_across_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_room_folders_are_checked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_file_refuses_links_and_specials, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_opened_file_survives_a_replacing_commit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_file_info_uses_or_rebuilds_metadata, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_room_usage_counts_regular_files, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_staged_usage_leaves_out_held_files, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_release_reservation_keeps_the_data, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_sweep_removes_only_stale_unclaimed, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
