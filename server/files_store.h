/* files_store.h - the on-disk layout of the file application (internal to server/).
 *
 * Layout under the store root (see PROTOCOL.md "Files" and README "Store"):
 *
 *   STORE/                      0755, created on first start
 *   STORE/ROOM/NAME             committed files, 0644; room folders 0755, created lazily
 *   STORE/.meta/ROOM/NAME       one small text file per committed file: SHA-256,
 *                               uploader, and the inode/size/mtime it describes (0700 dirs)
 *   STORE/.meta/.tmp-N          metadata being written (renamed into place)
 *   STORE/.staging/ROOM/KEY     uploads in progress, KEY = <sha256 hex>-<size>
 *                               (or KEY.<n> when that key is busy), 0700 dirs
 *
 * Room names cannot start with '.', so ".meta" and ".staging" never collide with a room,
 * and neither is ever listed. Every name from the wire is checked with rd_filename_check
 * before it reaches these functions; they work relative to directory descriptors opened
 * with O_NOFOLLOW and re-check that what they opened is where it should be.
 *
 * Metadata is a cache of facts about one inode: when the file at NAME is not the inode the
 * metadata describes (crash between rename and metadata write, a file dropped in by hand),
 * the file is re-hashed and the metadata rewritten with an unknown uploader.
 */
#ifndef ROOMDROP_FILES_STORE_H
#define ROOMDROP_FILES_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rd_msg.h"
#include "rd_tls.h"

#define STORE_META_DIR ".meta"
#define STORE_STAGING_DIR ".staging"
#define STORE_DIR_MODE 0755
#define STORE_PRIVATE_MODE 0700
#define STORE_FILE_MODE 0644
/* "<64 hex>-<20 digits>.<10 digits>" + NUL */
#define STORE_KEY_BUF 100

struct store {
	int root_fd;     /* STORE */
	int meta_fd;     /* STORE/.meta */
	int staging_fd;  /* STORE/.staging */
	char *root_real; /* realpath of STORE, for the resolved-path checks */
};

struct store_meta {
	uint8_t sha256[RD_SHA256_SIZE];
	uint64_t size;
	uint64_t ino;
	int64_t mtime_ns;
	uint64_t time_ms;           /* when it was committed (wall clock) */
	char uploader[RD_NICK_BUF]; /* "" = unknown */
	int has_owner;              /* the uploader showed a key: owner_fp is its fingerprint */
	uint8_t owner_fp[RD_TLS_FP_LEN];
};

/* Create (mode 0755, parents included) and open the store root and its private folders.
 * RD_ERR_SYSTEM with errno when it cannot be created or is not a writable directory. */
int store_open(const char *root, struct store *st);
void store_close(struct store *st);

/* Which of the three trees a room folder is opened in. */
enum store_tree {
	STORE_VISIBLE = 0,
	STORE_META = 1,
	STORE_STAGING = 2
};
/* Open the folder of room in tree (O_DIRECTORY|O_NOFOLLOW), creating it first when
 * create != 0. The room name is checked again (rd_room_check) and the resolved path of
 * the opened folder must be STORE[/.meta|/.staging]/ROOM. RD_ERR_NOT_FOUND when it does
 * not exist and create == 0, RD_ERR_INVAL for a bad room name, RD_ERR_SYSTEM. */
int store_room_open(const struct store *st, enum store_tree tree, const char *room, int create,
		    int *out_fd);
/* 0 if fd is a regular file directly inside the folder dir_fd: same device and (where
 * /proc is mounted) the resolved path of fd is in the resolved folder of dir_fd. Judged
 * from the descriptors alone, never by looking a name up again, so a file replaced (renamed
 * over) since it was opened still passes. RD_ERR_INVAL otherwise. */
int store_check_inside(int dir_fd, int fd);
/* Open the committed file name in the room folder for reading (O_NOFOLLOW, regular files
 * only, checked with store_check_inside). RD_ERR_NOT_FOUND, RD_ERR_INVAL, RD_ERR_SYSTEM. */
int store_open_file(int room_fd, const char *name, int *out_fd);

/* Staging key "<sha256 hex>-<size>", or with alt != 0 "<...>.<alt>". */
void store_staging_key(const uint8_t sha[RD_SHA256_SIZE], uint64_t size, unsigned alt,
		       char out[STORE_KEY_BUF]);
/* The n-th name tried by --rename: "report (n).pdf", "archive (n).tar.gz" is
 * "archive.tar (n).gz" (last dot only), ".bashrc (n)", "README (n)". The base is cut on a
 * UTF-8 boundary when the result would pass RD_FILENAME_MAX. RD_ERR_INVAL if out is too
 * small or name is not a valid file name. */
int store_rename_candidate(const char *name, unsigned n, char *out, size_t cap);

/* Text form of a metadata record (see the .c for the format); *len bytes written. */
int store_meta_format(const struct store_meta *m, char *buf, size_t cap, size_t *len);
/* Parse one; RD_ERR_MALFORMED for anything unexpected (never trusts the file). */
int store_meta_parse(const char *buf, size_t n, struct store_meta *m);
/* Write the record of name in room (temp file, fsync, rename, fsync folder). */
int store_meta_write(const struct store *st, const char *room, const char *name,
		     const struct store_meta *m);
/* The same without its fsyncs, for a batch that makes the whole filesystem durable at once
 * afterwards (syncfs). */
int store_meta_write_nosync(const struct store *st, const char *room, const char *name,
			    const struct store_meta *m);
/* Remove the record (missing is fine). */
int store_meta_remove(const struct store *st, const char *room, const char *name);
/* Facts about the open committed file fd (called name in room): the record when it still
 * describes fd's inode, size and mtime; else fd is re-hashed and the record rewritten with
 * an unknown uploader. */
int store_file_info(const struct store *st, const char *room, const char *name, int fd,
		    struct store_meta *out);
/* The record of name in room when it still describes the open file fd (no hashing): 0,
 * or RD_ERR_NOT_FOUND (none, or it describes another inode, size or mtime: nothing is
 * known of the file's uploader); RD_ERR_SYSTEM. */
int store_meta_get(const struct store *st, const char *room, const char *name, int fd,
		   struct store_meta *out);

/* Hold the name ROOM/NAME against every other thread and process using this store (a
 * cluster's servers share one): an open-file-description write lock (F_OFD_SETLKW) on one
 * byte of STORE/.meta/.locks chosen by a hash of the folded room and the name, so two
 * names rarely share a byte (and then only wait for each other). Held around what must
 * not interleave with another server's: the owner check, the commit of a replacement or
 * a delete, and the file's record. The kernel drops it if the process dies. *lock_fd is
 * released by store_name_unlock. 0, RD_ERR_SYSTEM (errno). */
int store_name_lock(const struct store *st, const char *room, const char *name, int *lock_fd);
void store_name_unlock(int lock_fd);

/* Move from_dir/from to to_dir/to. replace != 0: atomically replace an existing file;
 * replace == 0: RD_ERR_EXISTS if to exists (renameat2 RENAME_NOREPLACE, or link + unlink
 * where the filesystem lacks it), so of two racing commits exactly one wins. */
int store_commit(int from_dir, const char *from, int to_dir, const char *to, int replace);
/* 1 if name exists in dir_fd (any type, symlinks not followed), 0 if not, or an error. */
int store_exists(int dir_fd, const char *name);
/* Sum of the sizes of the regular files in a room folder (fd not moved or closed). */
int store_room_usage(int room_fd, uint64_t *bytes);
/* The same for a staging folder, leaving out the files for which held(name, user) returns
 * non-zero (uploads in progress, counted by their declared size instead). */
typedef int (*store_held_fn)(const char *name, void *user);
int store_staged_usage(int stage_fd, store_held_fn held, void *user, uint64_t *bytes);

/* Give back the blocks reserved beyond the first keep bytes of the staging file fd
 * (fallocate PUNCH_HOLE over them, then truncate to keep): what stays is the data a
 * resume can use. 0, or RD_ERR_SYSTEM with errno. */
int store_release_reservation(int fd, uint64_t keep);
/* store_release_reservation on every staging file (at start, when no upload holds any),
 * keeping each file's size. *released counts the files that held more blocks than their
 * size needs. */
int store_release_all(const struct store *st, unsigned *released);

/* Remove staging files (all rooms) last written more than ttl_s seconds before now_s.
 * Before removing one, claim(room, key, 0, user) must return 0 (it then holds the key so
 * no upload can resume into it); after, claim(room, key, 1, user) releases it. A claim
 * that returns non-zero (key in use) spares the file. Also removes metadata temp files
 * older than a minute. *removed counts the staging files removed. */
typedef int (*store_claim_fn)(const char *room, const char *key, int release, void *user);
int store_sweep(const struct store *st, int64_t now_s, uint32_t ttl_s, store_claim_fn claim,
		void *user, unsigned *removed);

#endif
