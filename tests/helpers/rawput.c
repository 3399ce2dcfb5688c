/* rawput.c - a raw file client for the live tests: sends what the real client never would.
 *
 *   rawput --port P [--nick N] [--room R] name-put|name-get|name-rm HEXNAME
 *       PUT / GET / DELETE with a file name given as hex bytes (any bytes, any length);
 *       prints "code N" (0 when the server accepted it) and exits 0.
 *   rawput --port P [...] list-raw HEXPAYLOAD
 *       LIST with this payload ("" = an empty payload); prints "count N more M last NAME"
 *       for the FILE_LIST page, or "code N", and exits 0.
 *   rawput --port P [...] put FILE [--name NAME] [--mode 0|1|2] [--lie-sha] [--short]
 *          [--stream] [--seal] [--seal-lie] [--plain-end] [--corrupt-chunk K]
 *          [--bad-offset K] [--bad-zlib K] [--stop-after K] [--wait-file PATH]
 *          [--chunk BYTES]
 *       An upload of FILE (as NAME) with the chosen fault:
 *         --lie-sha          declare a SHA-256 that is not the file's
 *         --short            stop one byte short, then PUT_END
 *         --stream           a streamed put: PUT declares no SHA-256 (32 zero bytes) and
 *                            PUT_SEAL brings it at the end (with --lie-sha, a wrong one)
 *         --seal             declare the SHA-256 in PUT and end with PUT_SEAL too
 *         --seal-lie         ... with a PUT_SEAL whose SHA-256 is not the declared one
 *         --plain-end        end with PUT_END even with --stream
 *         --corrupt-chunk K  flip a bit in chunk K (0-based) after hashing
 *         --bad-offset K     give chunk K a wrong offset
 *         --bad-zlib K       send chunk K flagged compressed but with garbage zlib data
 *         --stop-after K     send K chunks, print "stopped after K chunks", then sleep
 *                            until killed (the test kills it with -9)
 *         --wait-file PATH   after the last chunk, wait until PATH exists before PUT_END
 *                            (lets a test release two uploads at the same moment)
 *       Prints "ready offset=O xfer=X name=N", then "streamed", then "done NAME" or
 *       "error CODE TEXT". Exit 0 done, 1 the server refused, 2 usage, 3 connection.
 * Output lines are flushed at once so a test can wait for them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files/rdf_proto.h"
#include "rd_buf.h"
#include "rd_client.h"
#include "rd_err.h"
#include "rd_frame.h"
#include "rd_hash.h"
#include "rd_msg.h"
#include "rd_net.h"
#include "rd_proto.h"

#define NONE (-1L)

static struct {
	uint16_t port;
	const char *nick, *room, *name, *wait_file;
	int mode, lie_sha, shorten, stream, seal, seal_lie, plain_end;
	long corrupt, bad_offset, bad_zlib, stop_after;
	size_t chunk;
} opt = { .nick = "raw",
	  .room = "general",
	  .corrupt = NONE,
	  .bad_offset = NONE,
	  .bad_zlib = NONE,
	  .stop_after = NONE,
	  .chunk = RD_CHUNK_SIZE };

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Hex text to bytes (malloc'd). */
static uint8_t *unhex(const char *s, size_t *n)
{
	size_t len = strlen(s), i;
	uint8_t *p;

	if (len % 2 != 0)
		return NULL;
	p = malloc(len / 2 + 1);
	if (p == NULL)
		return NULL;
	for (i = 0; i < len / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(p);
			return NULL;
		}
		p[i] = (uint8_t)(hi << 4 | lo);
	}
	*n = len / 2;
	return p;
}

static int report(struct rd_conn *c, int rc, uint16_t werr)
{
	if (rc == RD_ERR_REMOTE) {
		out("error %u %s", werr, rd_conn_last_error(c));
		return 1;
	}
	out("error 0 %s", rd_strerror(rc));
	return 3;
}

/* LIST with a payload given as hex (possibly empty). */
static int raw_list(struct rd_conn *c, const char *hex)
{
	struct rd_frame f;
	struct rd_msg m;
	uint16_t werr = 0;
	uint32_t req;
	uint8_t *p;
	size_t n = 0;
	int rc;

	p = hex[0] != '\0' ? unhex(hex, &n) : NULL;
	if (hex[0] != '\0' && p == NULL) {
		fprintf(stderr, "rawput: bad hex payload\n");
		return 2;
	}
	req = rd_conn_next_id(c);
	rc = rd_conn_send(c, RDF_MSG_LIST, req, p, n, 0);
	free(p);
	if (rc == 0)
		rc = rd_conn_wait_reply(c, req, 30000, &f, &werr);
	if (rc == RD_ERR_REMOTE) {
		out("code %u", werr);
		return 0;
	}
	if (rc != 0)
		return report(c, rc, werr);
	if (f.hdr.type != RDF_MSG_FILE_LIST ||
	    rd_msg_decode(RDF_MSG_FILE_LIST, f.payload, f.len, &m) != 0) {
		out("error 0 not a FILE_LIST");
		return 3;
	}
	out("count %" PRIu32 " more %u last %s", rdf_body(&m)->file_list.count,
	    rdf_body(&m)->file_list.more,
	    rdf_body(&m)->file_list.count > 0 ?
		    rdf_body(&m)->file_list.items[rdf_body(&m)->file_list.count - 1].name :
		    "");
	rd_msg_clear(&m);
	return 0;
}

/* PUT / GET / DELETE with raw name bytes: the payload is built by hand, since the codec
 * refuses to encode such names. */
static int raw_name(struct rd_conn *c, const char *cmd, const char *hex)
{
	uint8_t sha[RD_SHA256_SIZE] = { 0 };
	struct rd_frame f;
	struct rd_buf b;
	uint16_t type, werr = 0;
	uint8_t *name;
	size_t n;
	int rc;

	name = unhex(hex, &n);
	if (name == NULL) {
		fprintf(stderr, "rawput: bad hex name\n");
		return 2;
	}
	rd_buf_init(&b, 0);
	rd_buf_put_str(&b, (const char *)name, n);
	if (strcmp(cmd, "name-put") == 0) {
		type = RDF_MSG_PUT;
		rd_buf_put_u64(&b, 1);
		rd_buf_put(&b, sha, sizeof(sha));
		rd_buf_put_u8(&b, RDF_PUT_OVERWRITE);
	} else if (strcmp(cmd, "name-get") == 0) {
		type = RDF_MSG_GET;
		rd_buf_put_u64(&b, 0);
	} else {
		type = RDF_MSG_DELETE;
	}
	rc = rd_conn_request_raw(c, type, b.data, b.len, 0, &f, &werr);
	rd_buf_free(&b);
	free(name);
	if (rc == RD_ERR_REMOTE) {
		out("code %u", werr);
		return 0;
	}
	if (rc != 0)
		return report(c, rc, werr);
	out("code 0");
	return 0;
}

/* one chunk frame's fields and data; static so that no early return leaks it */
static uint8_t buf[16 + RD_CHUNK_SIZE];

static int do_put(struct rd_conn *c, const char *path)
{
	uint8_t sha[RD_SHA256_SIZE];
	struct rd_frame f;
	struct rd_msg m, r;
	struct stat sb;
	uint64_t size, off, last;
	uint32_t req, xfer;
	uint16_t werr = 0;
	const char *name = opt.name;
	long k;
	int fd, rc;

	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &sb) != 0) {
		perror("rawput: open");
		return 2;
	}
	if (name == NULL) {
		name = strrchr(path, '/');
		name = name != NULL ? name + 1 : path;
	}
	size = (uint64_t)sb.st_size;
	if (rd_sha256_fd(fd, sha, NULL) != 0)
		return 2;
	if (opt.lie_sha)
		sha[0] ^= 0xff;
	rd_msg_init(&m, RDF_MSG_PUT);
	snprintf(rdf_body(&m)->put.name, sizeof(rdf_body(&m)->put.name), "%s", name);
	rdf_body(&m)->put.size = size;
	if (!opt.stream)
		memcpy(rdf_body(&m)->put.sha256, sha, RD_SHA256_SIZE);
	if (opt.seal_lie)
		sha[1] ^= 0xff; /* (for PUT_SEAL) */
	rdf_body(&m)->put.mode = (uint8_t)opt.mode;
	if ((rc = rd_conn_request(c, &m, &r, &werr)) != 0)
		return report(c, rc, werr);
	xfer = rdf_body(&r)->put_ready.xfer_id;
	out("ready offset=%" PRIu64 " xfer=%" PRIu32 " name=%s", rdf_body(&r)->put_ready.offset,
	    xfer, rdf_body(&r)->put_ready.name);
	off = rdf_body(&r)->put_ready.offset;
	rd_msg_clear(&r);
	last = opt.shorten && size > 0 ? size - 1 : size;
	req = rd_conn_next_id(c);
	for (k = 0; off < last; k++) {
		size_t n = last - off < opt.chunk ? (size_t)(last - off) : opt.chunk;

		if (k == opt.stop_after) {
			out("stopped after %ld chunks", k);
			for (;;)
				pause();
		}
		if (pread(fd, buf + 16, n, (off_t)off) != (ssize_t)n)
			return 2;
		if (k == opt.corrupt)
			buf[16 + n / 2] ^= 0x01;
		rd_be32_put(buf, xfer);
		rd_be64_put(buf + 4, k == opt.bad_offset ? off + 1 : off);
		rd_be32_put(buf + 12, (uint32_t)n);
		if (k == opt.bad_zlib) {
			/* flagged compressed; a length prefix, then bytes that are not zlib */
			uint8_t frame[RD_FRAME_HEADER_SIZE + 12];
			struct rd_frame_hdr h = { 0 };

			h.flags = RD_FLAG_COMPRESSED;
			h.type = RDF_MSG_PUT_CHUNK;
			h.req_id = req;
			h.len = 12;
			rd_frame_hdr_encode(&h, frame);
			rd_be32_put(frame + RD_FRAME_HEADER_SIZE, 1000);
			memcpy(frame + RD_FRAME_HEADER_SIZE + 4, "notzlib!", 8);
			rc = rd_conn_send_bytes(c, frame, sizeof(frame));
		} else {
			rc = rd_conn_send(c, RDF_MSG_PUT_CHUNK, req, buf, 16 + n, 0);
		}
		if (rc != 0)
			return report(c, rc, 0);
		off += n;
		rc = rd_conn_wait_reply(c, req, 0, &f, &werr);
		if (rc != RD_ERR_TIMEOUT)
			return report(c, rc == 0 ? RD_ERR_PROTOCOL : rc, werr);
	}
	if (opt.stop_after >= 0 && k <= opt.stop_after) {
		out("stopped after %ld chunks", k);
		for (;;)
			pause();
	}
	out("streamed");
	if (opt.wait_file != NULL) {
		while (access(opt.wait_file, F_OK) != 0) {
			if ((rc = rd_conn_poll(c, 20)) != 0)
				return report(c, rc, 0);
		}
	}
	if ((opt.stream || opt.seal || opt.seal_lie) && !opt.plain_end) {
		rd_msg_init(&m, RDF_MSG_PUT_SEAL);
		rdf_body(&m)->put_seal.xfer_id = xfer;
		memcpy(rdf_body(&m)->put_seal.sha256, sha, RD_SHA256_SIZE);
	} else {
		rd_msg_init(&m, RDF_MSG_PUT_END);
		rdf_body(&m)->xfer.xfer_id = xfer;
	}
	if ((rc = rd_conn_send_msg(c, &m, req)) != 0)
		return report(c, rc, 0);
	rc = rd_conn_wait_reply(c, req, 60000, &f, &werr);
	if (rc != 0)
		return report(c, rc, werr);
	if (f.hdr.type != RDF_MSG_PUT_DONE ||
	    rd_msg_decode(RDF_MSG_PUT_DONE, f.payload, f.len, &r) != 0)
		return report(c, RD_ERR_PROTOCOL, 0);
	out("done %s", rdf_body(&r)->put_done.name);
	rd_msg_clear(&r);
	close(fd);
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: rawput --port P [--nick N] [--room R] name-put|name-get|name-rm HEX\n"
		"       rawput --port P [...] list-raw HEXPAYLOAD\n"
		"       rawput --port P [...] put FILE [fault options] (see the source)\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct rd_conn_options o;
	struct rd_conn *c = NULL;
	const char *cmd = NULL, *arg = NULL;
	uint16_t werr = 0;
	int i, rc;

	if ((rc = rdf_proto_register()) != 0) {
		fprintf(stderr, "rawput: %s\n", rd_strerror(rc));
		return 1;
	}
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--port") == 0 && v) {
			if (rd_net_parse_port(v, &opt.port) != 0)
				return usage();
			i++;
		} else if (strcmp(a, "--nick") == 0 && v) {
			opt.nick = v, i++;
		} else if (strcmp(a, "--room") == 0 && v) {
			opt.room = v, i++;
		} else if (strcmp(a, "--name") == 0 && v) {
			opt.name = v, i++;
		} else if (strcmp(a, "--mode") == 0 && v) {
			opt.mode = atoi(v), i++;
		} else if (strcmp(a, "--lie-sha") == 0) {
			opt.lie_sha = 1;
		} else if (strcmp(a, "--short") == 0) {
			opt.shorten = 1;
		} else if (strcmp(a, "--stream") == 0) {
			opt.stream = 1;
		} else if (strcmp(a, "--seal") == 0) {
			opt.seal = 1;
		} else if (strcmp(a, "--seal-lie") == 0) {
			opt.seal_lie = 1;
		} else if (strcmp(a, "--plain-end") == 0) {
			opt.plain_end = 1;
		} else if (strcmp(a, "--corrupt-chunk") == 0 && v) {
			opt.corrupt = atol(v), i++;
		} else if (strcmp(a, "--bad-offset") == 0 && v) {
			opt.bad_offset = atol(v), i++;
		} else if (strcmp(a, "--bad-zlib") == 0 && v) {
			opt.bad_zlib = atol(v), i++;
		} else if (strcmp(a, "--stop-after") == 0 && v) {
			opt.stop_after = atol(v), i++;
		} else if (strcmp(a, "--wait-file") == 0 && v) {
			opt.wait_file = v, i++;
		} else if (strcmp(a, "--chunk") == 0 && v) {
			opt.chunk = (size_t)atol(v), i++;
			if (opt.chunk == 0 || opt.chunk > RD_CHUNK_SIZE)
				return usage();
		} else if (cmd == NULL) {
			cmd = a;
		} else if (arg == NULL) {
			arg = a;
		} else {
			return usage();
		}
	}
	if (cmd == NULL || arg == NULL || opt.port == 0)
		return usage();
	rd_conn_options_defaults(&o);
	o.request_timeout_ms = 30000;
	if ((rc = rd_conn_open("127.0.0.1", opt.port, &o, NULL, &c, &werr)) != 0 ||
	    (rc = rd_conn_register(c, opt.nick, &werr)) != 0 ||
	    (rc = rd_conn_join(c, opt.room, NULL, &werr)) != 0) {
		fprintf(stderr, "rawput: cannot connect/register/join: %s (%u)\n", rd_strerror(rc),
			werr);
		rd_conn_close(c);
		return 3;
	}
	if (strcmp(cmd, "put") == 0)
		rc = do_put(c, arg);
	else if (strcmp(cmd, "name-put") == 0 || strcmp(cmd, "name-get") == 0 ||
		 strcmp(cmd, "name-rm") == 0)
		rc = raw_name(c, cmd, arg);
	else if (strcmp(cmd, "list-raw") == 0)
		rc = raw_list(c, arg);
	else
		rc = usage();
	rd_conn_close(c);
	return rc;
}
