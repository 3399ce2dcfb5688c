/* rdf_proto.c - the file application's codec rows and error texts (rdf_proto.h), given to
 * the core codec through rd_codec.h. Wire order of each row = member order in rdf_proto.h.
 */
#include "rdf_proto.h"

#include <stdio.h>
#include <string.h>

#include "rd_codec.h"
#include "rd_err.h"
#include "rd_names.h"

/* One descriptor per member and one message per block read best as written. */
/* clang-format off */
static const struct rd_field f_put[] = {
	RD_F_CHARS(rdf_msg_put, name, RD_NAME_FILE), RD_F_INT(rdf_msg_put, size),
	RD_F_RAW(rdf_msg_put, sha256), RD_F_ENUM(rdf_msg_put, mode, RDF_PUT_REFUSE, RDF_PUT_RENAME),
	RD_F_END
};
static const struct rd_field f_put_ready[] = {
	RD_F_INT(rdf_msg_put_ready, xfer_id), RD_F_INT(rdf_msg_put_ready, offset),
	RD_F_CHARS(rdf_msg_put_ready, name, RD_NAME_FILE), RD_F_END
};
static const struct rd_field f_chunk[] = {
	RD_F_INT(rdf_msg_chunk, xfer_id), RD_F_INT(rdf_msg_chunk, offset),
	RD_F_BYTES(rdf_msg_chunk, data, RD_CHUNK_SIZE), RD_F_END
};
static const struct rd_field f_xfer_id[] = { RD_F_INT(rdf_msg_xfer_id, xfer_id), RD_F_END };
static const struct rd_field f_put_seal[] = {
	RD_F_INT(rdf_msg_put_seal, xfer_id), RD_F_RAW(rdf_msg_put_seal, sha256), RD_F_END
};
static const struct rd_field f_put_done[] = {
	RD_F_INT(rdf_msg_put_done, xfer_id), RD_F_CHARS(rdf_msg_put_done, name, RD_NAME_FILE),
	RD_F_INT(rdf_msg_put_done, size), RD_F_RAW(rdf_msg_put_done, sha256), RD_F_END
};
static const struct rd_field f_get[] = {
	RD_F_CHARS(rdf_msg_get, name, RD_NAME_FILE), RD_F_INT(rdf_msg_get, offset), RD_F_END
};
static const struct rd_field f_get_begin[] = {
	RD_F_INT(rdf_msg_get_begin, xfer_id), RD_F_CHARS(rdf_msg_get_begin, name, RD_NAME_FILE),
	RD_F_INT(rdf_msg_get_begin, size), RD_F_INT(rdf_msg_get_begin, offset),
	RD_F_INT(rdf_msg_get_begin, mtime_ms), RD_F_RAW(rdf_msg_get_begin, sha256), RD_F_END
};
/* The uploader of a file that was put in the folder by hand is unknown: "". */
static const struct rd_field f_file_entry[] = {
	RD_F_CHARS(rdf_file_entry, name, RD_NAME_FILE), RD_F_INT(rdf_file_entry, size),
	RD_F_INT(rdf_file_entry, mtime_ms), RD_F_RAW(rdf_file_entry, sha256),
	RD_F_CHARS(rdf_file_entry, uploader, RD_NAME_NICK | RD_NAME_EMPTY_OK), RD_F_END
};
static const struct rd_field_list l_file = { sizeof(struct rdf_file_entry), f_file_entry };
/* A listing comes in pages: LIST after the last name of a FILE_LIST whose `more` is 1. */
static const struct rd_field f_list[] = {
	RD_F_CHARS(rdf_msg_list, after, RD_NAME_FILE | RD_NAME_EMPTY_OK), RD_F_END
};
static const struct rd_field f_file_list[] = {
	RD_F_CHARS(rdf_msg_file_list, room, RD_NAME_ROOM),
	RD_F_LIST(rdf_msg_file_list, count, items, l_file), RD_F_ENUM(rdf_msg_file_list, more, 0, 1),
	RD_F_END
};
static const struct rd_field f_name[] = { RD_F_CHARS(rdf_msg_name, name, RD_NAME_FILE), RD_F_END };
static const struct rd_field f_file_notice[] = {
	RD_F_ENUM(rdf_msg_file_notice, event, RDF_FILE_ADDED, RDF_FILE_REPLACED),
	RD_F_CHARS(rdf_msg_file_notice, room, RD_NAME_ROOM),
	RD_F_CHARS(rdf_msg_file_notice, nick, RD_NAME_NICK | RD_NAME_EMPTY_OK),
	RD_F_CHARS(rdf_msg_file_notice, name, RD_NAME_FILE), RD_F_INT(rdf_msg_file_notice, size),
	RD_F_END
};
static const struct rd_field f_xfer_cancel[] = {
	RD_F_INT(rdf_msg_xfer_cancel, xfer_id), RD_F_INT(rdf_msg_xfer_cancel, code),
	RD_F_STR(rdf_msg_xfer_cancel, reason, RD_REASON_MAX), RD_F_END
};
/* clang-format on */

static const struct rd_msg_row rows[] = {
	{ RDF_MSG_PUT, "PUT", f_put },
	{ RDF_MSG_PUT_READY, "PUT_READY", f_put_ready },
	{ RDF_MSG_PUT_CHUNK, "PUT_CHUNK", f_chunk },
	{ RDF_MSG_PUT_END, "PUT_END", f_xfer_id },
	{ RDF_MSG_PUT_DONE, "PUT_DONE", f_put_done },
	{ RDF_MSG_PUT_SEAL, "PUT_SEAL", f_put_seal },
	{ RDF_MSG_GET, "GET", f_get },
	{ RDF_MSG_GET_BEGIN, "GET_BEGIN", f_get_begin },
	{ RDF_MSG_GET_CHUNK, "GET_CHUNK", f_chunk },
	{ RDF_MSG_GET_END, "GET_END", f_xfer_id },
	{ RDF_MSG_LIST, "LIST", f_list },
	{ RDF_MSG_FILE_LIST, "FILE_LIST", f_file_list },
	{ RDF_MSG_DELETE, "DELETE", f_name },
	{ RDF_MSG_FILE_NOTICE, "FILE_NOTICE", f_file_notice },
	{ RDF_MSG_XFER_CANCEL, "XFER_CANCEL", f_xfer_cancel },
};

static const struct rd_err_row errors[] = {
	{ RDF_E_BAD_FILENAME, "bad file name" },
	{ RDF_E_FILE_EXISTS, "file exists" },
	{ RDF_E_NO_SUCH_FILE, "no such file" },
	{ RDF_E_FILE_TOO_BIG, "file too big" },
	{ RDF_E_QUOTA, "quota exceeded" },
	{ RDF_E_NO_SPACE, "no space left on server" },
	{ RDF_E_HASH_MISMATCH, "hash mismatch" },
	{ RDF_E_SIZE_MISMATCH, "size mismatch" },
	{ RDF_E_BAD_OFFSET, "bad offset" },
	{ RDF_E_BUSY, "file busy with another transfer" },
	{ RDF_E_PERMISSION, "permission denied" },
	{ RDF_E_NO_SUCH_TRANSFER, "no such transfer" },
	{ RDF_E_READ_ONLY, "the server's store is read-only" },
	{ RDF_E_STORAGE, "the server could not read or write its store" },
};

int rdf_proto_register(void)
{
	int rc;

	if ((rc = rd_msg_register(rows, sizeof(rows) / sizeof(rows[0]))) != 0)
		return rc;
	return rd_wire_err_register(errors, sizeof(errors) / sizeof(errors[0]));
}

/* ---- file offers -------------------------------------------------------------------------- */

/* clang-format off */
static const struct rd_field f_offer_entry[] = {
	RD_F_CHARS(rdf_offer_entry, path, RD_NAME_NONEMPTY), RD_F_INT(rdf_offer_entry, size),
	RD_F_INT(rdf_offer_entry, mtime_ms), RD_F_END
};
static const struct rd_field_list l_offer_entry = { sizeof(struct rdf_offer_entry), f_offer_entry };
static const struct rd_field f_file_offer[] = {
	RD_F_LIST(rdf_file_offer, count, items, l_offer_entry), RD_F_END
};
static const struct rd_field f_accept_entry[] = {
	RD_F_ENUM(rdf_accept_entry, take, 0, 1), RD_F_INT(rdf_accept_entry, offset), RD_F_END
};
static const struct rd_field_list l_accept_entry = { sizeof(struct rdf_accept_entry), f_accept_entry };
static const struct rd_field f_file_accept[] = {
	RD_F_LIST(rdf_file_accept, count, items, l_accept_entry), RD_F_END
};
static const struct rd_field f_done_entry[] = {
	RD_F_ENUM(rdf_done_entry, status, RDF_DONE_NOT_TAKEN, RDF_DONE_FAILED),
	RD_F_INT(rdf_done_entry, code), RD_F_END
};
static const struct rd_field_list l_done_entry = { sizeof(struct rdf_done_entry), f_done_entry };
static const struct rd_field f_file_done[] = {
	RD_F_LIST(rdf_file_done, count, items, l_done_entry), RD_F_END
};
/* clang-format on */

uint16_t rdf_path_check(const char *s, size_t n, char *why, size_t cap)
{
	char cwhy[160];
	size_t i = 0, depth = 0;

	if (why != NULL && cap > 0)
		why[0] = '\0';
	if (s == NULL || n == 0 || n > RDF_PATH_MAX || memchr(s, '\0', n) != NULL) {
		if (why != NULL)
			snprintf(why, cap, "a path must have 1 to %u bytes", RDF_PATH_MAX);
		return RDF_E_BAD_FILENAME;
	}
	if (s[0] == '/') {
		if (why != NULL)
			snprintf(why, cap, "an absolute path");
		return RDF_E_BAD_FILENAME;
	}
	while (i <= n) {
		const char *sl = memchr(s + i, '/', n - i);
		size_t len = (sl != NULL ? (size_t)(sl - s) : n) - i;

		if (len == 0) {
			if (why != NULL)
				snprintf(why, cap,
					 "an empty component (\"//\" or a trailing \"/\")");
			return RDF_E_BAD_FILENAME;
		}
		if (rd_filename_explain(s + i, len, cwhy, sizeof(cwhy)) != 0) {
			if (why != NULL)
				snprintf(why, cap, "component %zu: %s", depth + 1, cwhy);
			return RDF_E_BAD_FILENAME;
		}
		if (sl == NULL)
			break;
		if (++depth > RDF_PATH_DEPTH) {
			if (why != NULL)
				snprintf(why, cap, "more than %u folders deep", RDF_PATH_DEPTH);
			return RDF_E_BAD_FILENAME;
		}
		i += len + 1;
	}
	return 0;
}

int rdf_file_offer_encode(const struct rdf_file_offer *o, struct rd_buf *out)
{
	for (uint32_t i = 0; o != NULL && i < o->count; i++)
		if (rdf_path_check(o->items[i].path, strlen(o->items[i].path), NULL, 0) != 0)
			return RD_ERR_INVAL;
	if (o == NULL || o->count == 0 || o->count > RDF_OFFER_FILES_MAX)
		return RD_ERR_INVAL;
	return rd_fields_encode(f_file_offer, o, out);
}

/* 1 if path a is b's folder ("photos" of "photos/a.jpg") or the same path. */
static int path_covers(const char *a, const char *b)
{
	size_t n = strlen(a);

	return strncmp(a, b, n) == 0 && (b[n] == '\0' || b[n] == '/');
}

int rdf_file_offer_decode(const uint8_t *p, size_t n, struct rdf_file_offer *o, char *why,
			  size_t cap)
{
	char pwhy[200];
	int rc;

	if (why != NULL && cap > 0)
		why[0] = '\0';
	if ((rc = rd_fields_decode(f_file_offer, p, n, o, sizeof(*o))) != 0) {
		if (why != NULL)
			snprintf(why, cap, "the offer's list of files cannot be read");
		return rc;
	}
	if (o->count == 0 || o->count > RDF_OFFER_FILES_MAX) {
		if (why != NULL)
			snprintf(why, cap, "an offer of %u files (1 to %u allowed)", o->count,
				 RDF_OFFER_FILES_MAX);
		rdf_file_offer_clear(o);
		return RD_ERR_INVAL;
	}
	for (uint32_t i = 0; i < o->count; i++) {
		const char *pa = o->items[i].path;

		if (rdf_path_check(pa, strlen(pa), pwhy, sizeof(pwhy)) != 0) {
			if (why != NULL)
				snprintf(why, cap, "file %u: %s", i + 1, pwhy);
			rdf_file_offer_clear(o);
			return RD_ERR_INVAL;
		}
		/* quadratic, but bounded by RDF_OFFER_FILES_MAX */
		for (uint32_t j = 0; j < i; j++) {
			const char *pb = o->items[j].path;

			if (path_covers(pa, pb) || path_covers(pb, pa) || rd_name_eq(pa, pb)) {
				if (why != NULL)
					snprintf(why, cap,
						 "files %u and %u would land on the same path",
						 j + 1, i + 1);
				rdf_file_offer_clear(o);
				return RD_ERR_INVAL;
			}
		}
	}
	return 0;
}

void rdf_file_offer_clear(struct rdf_file_offer *o)
{
	rd_fields_clear(f_file_offer, o);
}

int rdf_file_accept_encode(const struct rdf_file_accept *a, struct rd_buf *out)
{
	return rd_fields_encode(f_file_accept, a, out);
}

int rdf_file_accept_decode(const uint8_t *p, size_t n, struct rdf_file_accept *a)
{
	return rd_fields_decode(f_file_accept, p, n, a, sizeof(*a));
}

void rdf_file_accept_clear(struct rdf_file_accept *a)
{
	rd_fields_clear(f_file_accept, a);
}

int rdf_file_done_encode(const struct rdf_file_done *d, struct rd_buf *out)
{
	return rd_fields_encode(f_file_done, d, out);
}

int rdf_file_done_decode(const uint8_t *p, size_t n, struct rdf_file_done *d)
{
	return rd_fields_decode(f_file_done, p, n, d, sizeof(*d));
}

void rdf_file_done_clear(struct rdf_file_done *d)
{
	rd_fields_clear(f_file_done, d);
}

int rdf_put_streamed(const uint8_t sha256[RD_SHA256_SIZE])
{
	uint8_t acc = 0;

	for (size_t i = 0; i < RD_SHA256_SIZE; i++)
		acc |= sha256[i];
	return acc == 0;
}

int rdf_name_numbered(const char *name, unsigned n, char *out, size_t cap)
{
	char suffix[16];
	const char *dot;
	size_t len, blen, elen, slen;

	if (name == NULL || out == NULL)
		return RD_ERR_INVAL;
	len = strlen(name);
	if (rd_filename_check(name, len) != 0)
		return RD_ERR_INVAL;
	slen = (size_t)snprintf(suffix, sizeof(suffix), " (%u)", n);
	dot = strrchr(name, '.');
	/* A leading dot names a hidden file, not an extension. */
	if (dot == NULL || dot == name)
		dot = name + len;
	blen = (size_t)(dot - name);
	elen = len - blen;
	if (elen + slen + 1 > RD_FILENAME_MAX) { /* absurd extension: treat it as base */
		blen = len;
		elen = 0;
	}
	if (blen + slen + elen > RD_FILENAME_MAX) {
		blen = RD_FILENAME_MAX - slen - elen;
		/* never cut a UTF-8 sequence: back off over continuation bytes */
		while (blen > 0 && ((unsigned char)name[blen] & 0xC0) == 0x80)
			blen--;
	}
	if (blen == 0 || blen + slen + elen + 1 > cap)
		return RD_ERR_INVAL;
	memcpy(out, name, blen);
	memcpy(out + blen, suffix, slen);
	memcpy(out + blen + slen, name + len - elen, elen);
	out[blen + slen + elen] = '\0';
	if (rd_filename_check(out, blen + slen + elen) != 0)
		return RD_ERR_INVAL;
	return 0;
}
