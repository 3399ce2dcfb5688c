/* digest.h - the client's cache of file digests, so that putting or offering a large file
 * that has not changed since it was last hashed does not read it twice (issue 13 point 1).
 *
 * One small file per hashed file under $XDG_CACHE_HOME/roomdrop/sha256/ (else
 * ~/.cache/roomdrop/sha256/), named by the file's device and inode, holding its size,
 * modification time and change time (nanoseconds) and its SHA-256. A digest is used only
 * when all of these still match: a change to the file's bytes changes its ctime, which no
 * program can set back (only the clock could lie), so the cache cannot describe other
 * bytes than the file holds. Files under DIGEST_MIN bytes are never cached (hashing them
 * costs less than the lookup). Every failure is silent: the file is hashed as before.
 */
#ifndef ROOMDROP_CLIENT_DIGEST_H
#define ROOMDROP_CLIENT_DIGEST_H

#include <stdint.h>
#include <sys/stat.h>

#include "rd_proto.h"

#define DIGEST_MIN (1u << 20)

/* 1 when sb's file has a cached digest (into sha), else 0. */
int digest_get(const struct stat *sb, uint8_t sha[RD_SHA256_SIZE]);

/* Remember sha for the file of sb (as fstat'ed before the hash and unchanged after it:
 * the caller checks). */
void digest_put(const struct stat *sb, const uint8_t sha[RD_SHA256_SIZE]);

/* Drop the digest of sb's file (the server found it wrong). */
void digest_forget(const struct stat *sb);

#endif
