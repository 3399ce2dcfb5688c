/* rdf_proto.h - the vocabulary of roomdrop's file application (PROTOCOL.md section 17):
 * its message types, its wire error codes, the structs of its messages and the constants
 * they carry. It is an application of libroomdrop like any other: its codec rows and
 * error texts reach the core through rd_codec.h when rdf_proto_register() is called.
 * Not part of libroomdrop: it is built into libroomdrop_files.a, which the server, the
 * client and their tests link.
 */
#ifndef RDF_PROTO_H
#define RDF_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "rd_buf.h"
#include "rd_msg.h"
#include "rd_names.h"
#include "rd_proto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Message types, in the application range (rd_proto.h): 0x1000-0x10FF is the file
 * application's. */
enum rdf_msg_type {
	RDF_MSG_PUT = 0x1001,         /* C->S */
	RDF_MSG_PUT_READY = 0x1002,   /* S->C */
	RDF_MSG_PUT_CHUNK = 0x1003,   /* C->S */
	RDF_MSG_PUT_END = 0x1004,     /* C->S */
	RDF_MSG_PUT_DONE = 0x1005,    /* S->C */
	RDF_MSG_GET = 0x1006,         /* C->S */
	RDF_MSG_GET_BEGIN = 0x1007,   /* S->C (also peer->peer) */
	RDF_MSG_GET_CHUNK = 0x1008,   /* S->C (also peer->peer) */
	RDF_MSG_GET_END = 0x1009,     /* S->C (also peer->peer) */
	RDF_MSG_LIST = 0x100A,        /* C->S */
	RDF_MSG_FILE_LIST = 0x100B,   /* S->C */
	RDF_MSG_DELETE = 0x100C,      /* C->S */
	RDF_MSG_FILE_NOTICE = 0x100D, /* S->C */
	RDF_MSG_XFER_CANCEL = 0x100E, /* either direction */
	RDF_MSG_PUT_SEAL = 0x100F,    /* C->S: PUT_END with the SHA-256 (a streamed put) */
};

/* Wire error codes (ERROR.code, XFER_CANCEL.code): 5xx, in the applications' range. */
enum rdf_wire_err {
	RDF_E_BAD_FILENAME = 500,
	RDF_E_FILE_EXISTS = 501,
	RDF_E_NO_SUCH_FILE = 502,
	RDF_E_FILE_TOO_BIG = 503,
	RDF_E_QUOTA = 504,
	RDF_E_NO_SPACE = 505,
	RDF_E_HASH_MISMATCH = 506,
	RDF_E_SIZE_MISMATCH = 507,
	RDF_E_BAD_OFFSET = 508,
	RDF_E_BUSY = 509, /* another transfer holds this name */
	RDF_E_PERMISSION = 510,
	RDF_E_NO_SUCH_TRANSFER = 511,
	RDF_E_READ_ONLY = 512, /* the server's store is read-only */
	RDF_E_STORAGE = 513,   /* the store failed: permission or I/O error */
};
_Static_assert(RDF_E_BAD_FILENAME == RD_FILENAME_REFUSED, "rd_filename_check's code");

/* Constants carried in fields */
enum rdf_put_mode {
	RDF_PUT_REFUSE = 0,
	RDF_PUT_OVERWRITE = 1,
	RDF_PUT_RENAME = 2
};
enum rdf_file_event {
	RDF_FILE_ADDED = 1,
	RDF_FILE_REMOVED = 2,
	RDF_FILE_REPLACED = 3
};

/* ---- file offers (PROTOCOL.md section 17.2) ---------------------------------------------
 * An offer of files (OFFER.app_type RDF_OFFER_APP_FILES) describes a bundle: each file by
 * its path relative to the bundle ("report.pdf", "photos/2026/a.jpg": components joined by
 * '/', each one a valid file name, rdf_path_check), its size and time. The recipient's
 * answer carries, for an accept, one entry per file in the same order: taken or not, and
 * the bytes of it the recipient already holds (a .part from an earlier attempt), from which
 * the sender starts. The SHA-256 of each file travels with its data, so the sender may
 * still be hashing while the recipient decides. */
#define RDF_OFFER_APP_FILES 0x1010u /* OFFER.app_type; not a message type */
#define RDF_PATH_MAX 1024u          /* bytes of a relative path in a file offer */
#define RDF_PATH_DEPTH 32u          /* folders a path may go down */
#define RDF_OFFER_FILES_MAX 1000u   /* files in one offer */

struct rdf_offer_entry {
	char path[RDF_PATH_MAX + 1];
	uint64_t size;
	uint64_t mtime_ms;
};
struct rdf_file_offer { /* OFFER.descriptor */
	uint32_t count;
	struct rdf_offer_entry *items;
};
struct rdf_accept_entry {
	uint8_t take;    /* 1 = send it, 0 = not this one */
	uint64_t offset; /* bytes already held (0 = from the start) */
};
struct rdf_file_accept { /* OFFER_ANSWER.data of an accept */
	uint32_t count;
	struct rdf_accept_entry *items;
};

enum rdf_done_status {
	RDF_DONE_NOT_TAKEN = 0,
	RDF_DONE_SAVED = 1, /* received, verified, in place */
	RDF_DONE_FAILED = 2 /* code says why (RDF_E_HASH_MISMATCH, RDF_E_STORAGE...) */
};
struct rdf_done_entry {
	uint8_t status; /* enum rdf_done_status */
	uint16_t code;  /* RDF_DONE_FAILED: a wire error code; else 0 */
};
struct rdf_file_done { /* OFFER_ANSWER.data of DONE: one entry per offered file */
	uint32_t count;
	struct rdf_done_entry *items;
};

/* A file offer's descriptor and an accept's data, to and from their wire bytes (rd_codec.h
 * rd_fields_*: decode views the input; free the decoded lists with the *_clear calls).
 * rdf_file_offer_decode also checks every path (rdf_path_check), that no path repeats and
 * that one path is not the folder of another: RD_ERR_INVAL for a hostile descriptor. */
int rdf_file_offer_encode(const struct rdf_file_offer *o, struct rd_buf *out);
int rdf_file_offer_decode(const uint8_t *p, size_t n, struct rdf_file_offer *o, char *why,
			  size_t cap);
void rdf_file_offer_clear(struct rdf_file_offer *o);
int rdf_file_accept_encode(const struct rdf_file_accept *a, struct rd_buf *out);
int rdf_file_accept_decode(const uint8_t *p, size_t n, struct rdf_file_accept *a);
void rdf_file_accept_clear(struct rdf_file_accept *a);
int rdf_file_done_encode(const struct rdf_file_done *d, struct rd_buf *out);
int rdf_file_done_decode(const uint8_t *p, size_t n, struct rdf_file_done *d);
void rdf_file_done_clear(struct rdf_file_done *d);

/* 1 when a PUT's sha256 is 32 zero bytes: a streamed put, whose SHA-256 comes with
 * PUT_SEAL (PROTOCOL.md section 17); no real digest is ever declared so. */
int rdf_put_streamed(const uint8_t sha256[RD_SHA256_SIZE]);

/* The n-th name tried when a name is taken (put --rename, a received file whose name
 * exists): "report (n).pdf"; "archive.tar (n).gz" (last dot only); ".bashrc (n)";
 * "README (n)". The base is cut on a UTF-8 boundary when the result would pass
 * RD_FILENAME_MAX. RD_ERR_INVAL if out is too small or name is not a valid file name. */
int rdf_name_numbered(const char *name, unsigned n, char *out, size_t cap);

/* A relative path of a file offer: 1..RDF_PATH_MAX bytes, components separated by single
 * '/', none empty, each a valid file name (rd_filename_check: no "." or "..", no control or
 * invisible characters, NFC...), at most RDF_PATH_DEPTH folders deep; so no absolute path
 * and no way out of the folder it is received into. 0, or RDF_E_BAD_FILENAME with why. */
uint16_t rdf_path_check(const char *s, size_t n, char *why, size_t cap);

struct rdf_msg_put {
	char name[RD_NAME_BUF];
	uint64_t size;
	uint8_t sha256[RD_SHA256_SIZE];
	uint8_t mode;
};
struct rdf_msg_put_ready {
	uint32_t xfer_id;
	uint64_t offset;
	char name[RD_NAME_BUF];
};
struct rdf_msg_chunk {
	uint32_t xfer_id;
	uint64_t offset;
	struct rd_bytes data;
}; /* PUT_CHUNK, GET_CHUNK */
struct rdf_msg_xfer_id {
	uint32_t xfer_id;
}; /* PUT_END, GET_END */
struct rdf_msg_put_seal {
	uint32_t xfer_id;
	uint8_t sha256[RD_SHA256_SIZE];
}; /* PUT_SEAL */
struct rdf_msg_put_done {
	uint32_t xfer_id;
	char name[RD_NAME_BUF];
	uint64_t size;
	uint8_t sha256[RD_SHA256_SIZE];
};
struct rdf_msg_get {
	char name[RD_NAME_BUF];
	uint64_t offset;
};
struct rdf_msg_get_begin {
	uint32_t xfer_id;
	char name[RD_NAME_BUF];
	uint64_t size;
	uint64_t offset;
	uint64_t mtime_ms;
	uint8_t sha256[RD_SHA256_SIZE];
};
struct rdf_file_entry {
	char name[RD_NAME_BUF];
	uint64_t size;
	uint64_t mtime_ms;
	uint8_t sha256[RD_SHA256_SIZE];
	char uploader[RD_NICK_BUF];
};
struct rdf_msg_list {
	char after[RD_NAME_BUF];
}; /* "" = from the first name */
struct rdf_msg_file_list {
	char room[RD_ROOM_BUF];
	uint32_t count;
	struct rdf_file_entry *items;
	uint8_t more;
};
struct rdf_msg_name {
	char name[RD_NAME_BUF];
}; /* DELETE */
struct rdf_msg_file_notice {
	uint8_t event;
	char room[RD_ROOM_BUF];
	char nick[RD_NICK_BUF];
	char name[RD_NAME_BUF];
	uint64_t size;
};
struct rdf_msg_xfer_cancel {
	uint32_t xfer_id;
	uint16_t code;
	struct rd_str reason;
};

/* The file messages overlay struct rd_msg's application storage: rdf_body(&m)->put. */
union rdf_body {
	struct rdf_msg_put put;
	struct rdf_msg_put_ready put_ready;
	struct rdf_msg_chunk chunk;  /* PUT_CHUNK, GET_CHUNK */
	struct rdf_msg_xfer_id xfer; /* PUT_END, GET_END */
	struct rdf_msg_put_done put_done;
	struct rdf_msg_put_seal put_seal;
	struct rdf_msg_get get;
	struct rdf_msg_get_begin get_begin;
	struct rdf_msg_list list;
	struct rdf_msg_file_list file_list;
	struct rdf_msg_name name; /* DELETE */
	struct rdf_msg_file_notice file_notice;
	struct rdf_msg_xfer_cancel xfer_cancel;
};
RD_MSG_APP_FITS(union rdf_body);
#define rdf_body(m) RD_MSG_APP(m, union rdf_body)

/* Register the file messages' codec rows and the 5xx error texts with the core
 * (rd_msg_register, rd_wire_err_register). Call once before encoding or decoding a file
 * message; calling it again (a server and a client in one process) is harmless.
 * 0, or the error of the register functions. */
int rdf_proto_register(void);

#ifdef __cplusplus
}
#endif
#endif
