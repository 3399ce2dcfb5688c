/* files.h - the file application of roomdrop-server: one folder per room under a store
 * root; PUT/GET/LIST/DELETE with chunks, zlib when it pays, SHA-256 verification, atomic
 * commit through a staging area, resume. It plugs into the room core through the hooks
 * of rd_server.h; main.c forwards application frames and disconnects to it.
 */
#ifndef ROOMDROP_FILES_H
#define ROOMDROP_FILES_H

#include <stdint.h>

#include "rd_server.h"

struct files;

struct files_config {
	const char *store_root; /* default "roomdrop-store" (relative to the working directory) */
	uint64_t max_file_size; /* 0 = no limit; default 4 GiB */
	uint64_t room_quota;    /* bytes per room folder (committed + staged + reserved),
				   * 0 = no limit; default 0 */
	uint64_t max_staged_per_user; /* bytes one nickname may have in unfinished uploads
				       * (declared sizes of running ones + what abandoned ones left
				       * staged), 0 = no limit; default 8 GiB */
	uint64_t min_free_bytes; /* refuse a put that would leave less free space; default 64 MiB */
	uint32_t staging_ttl_s; /* stale staging data removed after this; default RD_STAGING_TTL_S */
};

void files_config_defaults(struct files_config *c);
/* Create the store root if needed, clean stale staging data. RD_ERR_SYSTEM (errno) when the
 * store cannot be created or written. */
int files_new(const struct files_config *cfg, struct files **out);
/* Called once after rd_server_new and before rd_server_start. */
void files_attach(struct files *f, struct rd_server *s);
/* The operators of each room (state.h; NULL: none can be named, --open-nicks). A file's
 * uploader key is kept with it either way: only that key and the room's operators may
 * replace or delete it (RDF_E_PERMISSION otherwise). */
struct state;
void files_set_state(struct files *f, struct state *st);
/* hooks.on_frame / hooks.on_disconnect targets (user = struct files *). */
uint16_t files_on_frame(struct rd_server *s, struct rd_client *c, const struct rd_frame *fr,
			void *user);
void files_on_disconnect(struct rd_server *s, struct rd_client *c, const char *reason, void *user);
void files_free(struct files *f);

#endif
