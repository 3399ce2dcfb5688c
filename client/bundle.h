/* bundle.h - the files of an offer, on the sending side and on the receiving side.
 *
 * Sending: bundle_add takes what the user named (files and folders) and lists every
 * regular file under it with the path the recipient will see: a file by its own name, a
 * folder's files below the folder's name ("photos/2026/a.jpg"). Folders are walked without
 * following symbolic links (links, devices, sockets and fifos inside them are skipped and
 * counted); a name the recipient would refuse (rdf_path_check) makes the whole offer fail
 * with the reason, before anything is sent.
 *
 * Receiving: bundle_summary says in one line what an offer holds; bundle_open_part opens
 * (creating) PATH.part inside the chosen folder, making the path's folders on the way and
 * refusing to pass through a symbolic link, so that a hostile path that passed
 * rdf_path_check still cannot write outside the folder.
 */
#ifndef RD_CLIENT_BUNDLE_H
#define RD_CLIENT_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "files/rdf_proto.h"

struct bundle_file {
	char *path;  /* as the recipient sees it: relative, '/'-separated, NFC */
	char *local; /* where to read it here */
	uint64_t size, mtime_ms;
	uint8_t sha256[RD_SHA256_SIZE]; /* once sent: hashed as it is read (offer.c) */
};

struct bundle {
	struct bundle_file *files;
	size_t n, cap;
	uint64_t total;   /* bytes of all files */
	unsigned skipped; /* links and special files left out of folders */
};

/* Add a file or a folder (recursively). 0; RD_ERR_NOT_FOUND (cannot read it),
 * RD_ERR_INVAL (a name the recipient would refuse, two files on one path, more than
 * RDF_OFFER_FILES_MAX files), RD_ERR_NOMEM; why says which file and what is wrong. */
int bundle_add(struct bundle *b, const char *arg, char *why, size_t cap);
void bundle_free(struct bundle *b);
/* The bundle as an offer's descriptor (rdf_file_offer_encode). */
int bundle_descriptor(const struct bundle *b, struct rd_buf *out);

/* "3 files (1.2 GB): report.pdf, photos/, notes.txt": the count, the total and the
 * distinct top-level names in offer order (a folder with a trailing '/'), escaped for
 * display, cut with "..." to fit cap. */
void bundle_summary(const struct rdf_file_offer *o, char *out, size_t cap);

/* Open dir/PATH.part for writing (created 0644 if missing) after creating PATH's folders
 * (0755) below dfd, never following a symbolic link on the way. *have gets the .part's
 * current size. 0, or RD_ERR_SYSTEM with errno (ELOOP/ENOTDIR for a link or a file where
 * a folder should be). *parent_fd is the folder holding it (close it), leaf its name. */
int bundle_open_part(int dfd, const char *path, int *parent_fd, int *part_fd, char *leaf,
		     size_t cap, uint64_t *have);

#endif
