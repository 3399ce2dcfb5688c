/* rd_tls.h - TLS 1.3 for roomdrop links: long-term identities (key + self-signed
 * certificate), fingerprints in a form people can read aloud, the known_servers trust
 * store (SSH's known_hosts model), TLS contexts, and a transport: a small table of
 * functions (read, write, pending, handshake, close) with a plain and a TLS
 * implementation over a non-blocking socket, for the link layer to build on.
 *
 * Public part (identities, fingerprints, trust store): what a program that links
 * libroomdrop needs to choose where its keys and trust file live, to print a fingerprint
 * and to accept a changed key. Link-layer part (contexts, transport): used by the link
 * layer inside the library; declared here so that one module holds all of TLS, and free
 * of OpenSSL types so that including this header needs no OpenSSL headers.
 *
 * OpenSSL 3 (libssl + libcrypto), EVP interfaces only. Every function is thread-safe
 * on distinct objects; one struct rd_tls_conn must not be used by two threads at once.
 */
#ifndef RD_TLS_H
#define RD_TLS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- fingerprints -------------------------------------------------------------------
 * A fingerprint is the SHA-256 of the DER SubjectPublicKeyInfo of a certificate's key:
 * it names the key, not the certificate, so a renewed certificate over the same key keeps
 * its fingerprint. Any user can recompute it with the openssl tool:
 *   openssl x509 -in CERT -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum
 * (this prints the hex form, which rd_tls_fp_parse accepts).
 *
 * Text form: RFC 4648 base32 (A-Z, 2-7) without padding, upper case, in 13 groups of
 * 4 separated by '-' (256 bits are 52 base32 characters; the last one carries one bit
 * and four zero bits). The 32 bytes 00 01 02 ... 1f read
 * "AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT-CQKR-MFYY-DENB-WHA5-DYPQ". */
#define RD_TLS_FP_LEN 32      /* bytes of a fingerprint */
#define RD_TLS_FP_TEXT_LEN 65 /* bytes of its text form, NUL included */

/* Format fp in the text form above into out (RD_TLS_FP_TEXT_LEN bytes). */
void rd_tls_fp_format(const uint8_t fp[RD_TLS_FP_LEN], char out[RD_TLS_FP_TEXT_LEN]);

/* Parse a fingerprint typed or pasted by a person. Accepted, case-insensitively, with any
 * number of '-', ':' and space separators anywhere: the 52 base32 characters of the text
 * form, or 64 hex digits (sha256sum's or openssl's "AB:CD:..." output). 0 with out filled;
 * RD_ERR_INVAL for anything else (wrong length, a character outside the alphabet, or
 * non-zero padding bits in the last base32 character, so that one fingerprint has one
 * spelling). Reads at most 256 bytes of s. out is zeroed on failure. */
int rd_tls_fp_parse(const char *s, uint8_t out[RD_TLS_FP_LEN]);

/* 1 if equal (constant time), else 0. */
int rd_tls_fp_equal(const uint8_t a[RD_TLS_FP_LEN], const uint8_t b[RD_TLS_FP_LEN]);

/* ---- identities -----------------------------------------------------------------------
 * A long-term key pair (Ed25519) with an X.509 certificate. Made identities have a
 * self-signed certificate with CN = the given name, valid from one day back for 20 years.
 * Files are PEM: the key as unencrypted PKCS#8, the certificate optionally followed by
 * its chain (for CA-signed certificates given with --tls-cert). Both files are written
 * with mode 0600 atomically (temporary file, fsync, rename, fsync of the directory);
 * missing directories are created with mode 0700. Making an identity holds a lock on the
 * key's directory, so processes started together agree on one identity. */
struct rd_tls_identity;

/* Load the certificate (and chain) at cert_path and the private key at key_path.
 * RD_ERR_NOT_FOUND if a file is missing, RD_ERR_CRYPTO if one does not parse (or the key
 * is encrypted: the library never prompts), RD_ERR_MISMATCH if the key is not the
 * certificate's, RD_ERR_SYSTEM for other I/O errors. */
int rd_tls_identity_load(const char *cert_path, const char *key_path, struct rd_tls_identity **out);

/* Load the identity if both files exist; otherwise make one: a new Ed25519 key when
 * key_path is missing, and a new self-signed certificate for name (1..64 bytes, no
 * control characters). When only the certificate is missing it is made again over the
 * existing key, which keeps the fingerprint. When only the key is missing nothing is
 * written and RD_ERR_NOT_FOUND is returned: an identity is never replaced silently.
 * *created (optional) is set to 1 when the key was made. Errors as rd_tls_identity_load. */
int rd_tls_identity_ensure(const char *cert_path, const char *key_path, const char *name,
			   struct rd_tls_identity **out, int *created);

void rd_tls_identity_free(struct rd_tls_identity *id);

/* The identity's fingerprint (of its certificate's public key). */
void rd_tls_identity_fp(const struct rd_tls_identity *id, uint8_t fp[RD_TLS_FP_LEN]);

/* Fingerprint of the first certificate in a PEM file; no key needed (for
 * "roomdrop-server fingerprint", or to pin a server from its certificate file).
 * RD_ERR_NOT_FOUND if the file is missing, RD_ERR_CRYPTO if it holds no certificate. */
int rd_tls_cert_file_fp(const char *cert_path, uint8_t fp[RD_TLS_FP_LEN]);

/* ---- trust store (known_servers) ------------------------------------------------------
 * A text file of lines "HOST:PORT FINGERPRINT" ("[V6]:PORT" for IPv6 literals), written
 * by the library in the text form above. Blank lines and lines starting with '#' are
 * comments; malformed lines are ignored (and kept by rewrites), never fatal. A missing
 * file is an empty store. Host names compare case-insensitively and IPv6 literals by
 * value. Rewrites are atomic (mode 0600, directory made 0700) and serialised between
 * processes with a lock on the directory. */
enum rd_tls_trust {
	RD_TRUST_NEW = 0,    /* no entry: first use; record it and tell the user */
	RD_TRUST_MATCH = 1,  /* the recorded fingerprint is this one */
	RD_TRUST_CHANGED = 2 /* another fingerprint is recorded: a hard failure */
};

/* Where the client keeps its files: $XDG_CONFIG_HOME/roomdrop, else $HOME/.config/roomdrop.
 * RD_ERR_NOT_FOUND if neither variable is set (non-empty and absolute), RD_ERR_TOO_BIG if
 * out is too small. Nothing is created. */
int rd_tls_config_dir(char *out, size_t cap);
#define RD_TLS_KNOWN_SERVERS "known_servers" /* file names inside that directory */
#define RD_TLS_CLIENT_CERT "client.crt"
#define RD_TLS_CLIENT_KEY "client.key"
#define RD_TLS_SERVER_CERT "server.crt" /* next to the server's store */
#define RD_TLS_SERVER_KEY "server.key"

/* Compare fp with the entry for host:port. *res says NEW, MATCH or CHANGED; when CHANGED
 * and known is not NULL, the recorded fingerprint is copied there (to show both).
 * RD_ERR_INVAL for a host that cannot be written to the file (empty, longer than 255
 * bytes, whitespace, control characters or '#'); RD_ERR_SYSTEM if the file exists but
 * cannot be read. The first well-formed entry for host:port wins. */
int rd_tls_trust_check(const char *path, const char *host, uint16_t port,
		       const uint8_t fp[RD_TLS_FP_LEN], enum rd_tls_trust *res,
		       uint8_t known[RD_TLS_FP_LEN]);

/* The recorded fingerprint of host:port; RD_ERR_NOT_FOUND when there is none. */
int rd_tls_trust_lookup(const char *path, const char *host, uint16_t port,
			uint8_t fp[RD_TLS_FP_LEN]);

/* Record host:port -> fp (first use). 0 if recorded or already recorded with this fp;
 * RD_ERR_EXISTS (file unchanged) if another fingerprint is recorded for host:port. */
int rd_tls_trust_add(const char *path, const char *host, uint16_t port,
		     const uint8_t fp[RD_TLS_FP_LEN]);

/* Replace every entry of host:port by one with fp (the "accept the new key" command);
 * adds it if there was none. Other lines, comments and malformed lines are kept. */
int rd_tls_trust_replace(const char *path, const char *host, uint16_t port,
			 const uint8_t fp[RD_TLS_FP_LEN]);

/* Remove every entry of host:port. RD_ERR_NOT_FOUND if there was none. */
int rd_tls_trust_remove(const char *path, const char *host, uint16_t port);

/* ---- link layer: TLS contexts ---------------------------------------------------------
 * Both sides speak TLS 1.3 only, with ALPN "roomdrop/1", no session tickets or
 * resumption (so every handshake shows the peer's certificate), and
 * SSL_MODE_RELEASE_BUFFERS (idle connections hold no record buffers). A peer that closes
 * without close_notify is reported as closed: frames carry their own lengths, so a cut
 * is seen by the frame reader. */
#define RD_TLS_ALPN "roomdrop/1"

struct rd_tls_ctx;

/* Server context presenting id. It asks every client for a certificate and accepts any
 * (self-signed ones included): a client is identified by its fingerprint, which the
 * application reads with rd_tls_conn_peer_fp. With RD_TLS_REQUIRE_PEER_CERT a client
 * without a certificate fails the handshake. A client that does not offer ALPN
 * "roomdrop/1" fails the handshake (no_application_protocol). */
#define RD_TLS_REQUIRE_PEER_CERT 0x1u
/* For either context: a direct link between two clients (rd_peer.h), with ALPN
 * "roomdrop-p2p/1" instead of "roomdrop/1" (a client context with it takes no CA file). */
#define RD_TLS_P2P 0x2u
#define RD_TLS_ALPN_P2P "roomdrop-p2p/1"
int rd_tls_ctx_server_new(const struct rd_tls_identity *id, unsigned flags,
			  struct rd_tls_ctx **out);

/* Client context presenting id (NULL: no client certificate); flags 0 or RD_TLS_P2P.
 * With ca_file == NULL the
 * server is verified by fingerprint (see struct rd_tls_expect); with a CA file (PEM) the
 * chain must lead to one of its certificates and the certificate must name the host.
 * RD_ERR_NOT_FOUND / RD_ERR_CRYPTO when the CA file is missing or unusable. */
int rd_tls_ctx_client_new(const struct rd_tls_identity *id, const char *ca_file, unsigned flags,
			  struct rd_tls_ctx **out);

/* Connections hold their own reference: a context may be freed while they live. */
void rd_tls_ctx_free(struct rd_tls_ctx *ctx);

/* What a client expects of the server, per connection. */
struct rd_tls_expect {
	/* Name (or IP literal) dialled. Required with a CA file: checked against the
	 * certificate's names and sent as SNI (names only). Optional otherwise. */
	const char *host;
	/* With has_pin, the server's fingerprint must be pin (checked during the handshake,
	 * before the client shows its own certificate). Without it and without a CA file any
	 * server is accepted and the caller must check rd_tls_conn_peer_fp against its trust
	 * store (rd_tls_trust_check) before sending anything. */
	int has_pin;
	uint8_t pin[RD_TLS_FP_LEN];
};

/* ---- link layer: transport ------------------------------------------------------------
 * One connection over a connected, non-blocking socket, in the spirit of Redis's
 * ConnectionType: the calls below dispatch through a table of functions, one for plain
 * sockets and one for TLS. The transport owns the socket: rd_tls_conn_close closes it.
 *
 * Non-blocking contract: a call that cannot make progress returns 0 with nothing done
 * (*got / *put == 0, or *want != NONE for the handshake) and rd_tls_conn_want() says which
 * readiness to wait for. With TLS a read may need the socket writable and a write
 * readable. After a write returned 0 bytes, the next write must offer the same bytes
 * again (more may follow them); an output queue does so naturally. */
struct rd_tls_conn;

enum rd_tls_want {
	RD_TLS_WANT_NONE = 0, /* the last call made progress or failed */
	RD_TLS_WANT_READ = 1, /* call again when the socket is readable (POLLIN) */
	RD_TLS_WANT_WRITE = 2 /* call again when the socket is writable (POLLOUT) */
};

/* Classify the first bytes a peer sent, for a plaintext side whose frame reader just
 * said RD_ERR_BAD_MAGIC (log "peer expects TLS") and for tests. */
enum rd_tls_sniff {
	RD_TLS_SNIFF_SHORT = 0, /* fewer than 2 bytes: cannot tell yet */
	RD_TLS_SNIFF_FRAME = 1, /* "RD": a roomdrop frame header */
	RD_TLS_SNIFF_TLS = 2,   /* a TLS record (handshake or alert, version 3.x) */
	RD_TLS_SNIFF_OTHER = 3
};
enum rd_tls_sniff rd_tls_sniff(const uint8_t *p, size_t n);

/* A plain transport (send/recv with MSG_NOSIGNAL). Its handshake is done at once. The fd
 * is set non-blocking; on failure it is not closed. */
int rd_tls_conn_plain_new(int fd, struct rd_tls_conn **out);

/* A TLS transport on ctx: the server side for a server context (expect must be NULL),
 * the client side for a client context (expect may be NULL: no pin, no host). The fd is
 * set non-blocking. On failure the fd is not closed. */
int rd_tls_conn_tls_new(struct rd_tls_ctx *ctx, int fd, const struct rd_tls_expect *expect,
			struct rd_tls_conn **out);

/* Advance the handshake. 0 with *want == RD_TLS_WANT_NONE: done (the client has checked
 * the pin or the CA chain and name, and ALPN); 0 with READ or WRITE: call again when the
 * socket is ready. On failure rd_tls_conn_reason() says why in one line:
 *   RD_ERR_PROTOCOL  the peer does not speak TLS: "peer spoke plaintext roomdrop ..." when
 *                    its first bytes are a roomdrop frame header, or ALPN is missing
 *   RD_ERR_MISMATCH  the server's certificate is refused (pin, chain or name)
 *   RD_ERR_CLOSED    the peer closed the connection during the handshake
 *   RD_ERR_CRYPTO    any other TLS failure (an alert from the peer, ...)
 *   RD_ERR_SYSTEM    a socket error (errno)
 * In TLS 1.3 a client finishes before the server has checked the client's certificate:
 * a server that refuses it is seen as an error on the client's first read. */
int rd_tls_conn_handshake(struct rd_tls_conn *c, enum rd_tls_want *want);

/* What the peer's first bytes were (RD_TLS_SNIFF_SHORT before any): after a handshake
 * failed with RD_ERR_PROTOCOL, RD_TLS_SNIFF_FRAME means a plaintext roomdrop peer, which
 * the server answers with a plaintext ERROR frame so that the client can say why. */
enum rd_tls_sniff rd_tls_conn_peer_spoke(const struct rd_tls_conn *c);

/* Read up to n (> 0) bytes: 0 with *got > 0, or 0 with *got == 0 and a want set.
 * RD_ERR_CLOSED when the peer closed, RD_ERR_SYSTEM, RD_ERR_CRYPTO; RD_ERR_STATE before
 * the handshake is done or after a failure (a failed transport is only closed). */
int rd_tls_conn_read(struct rd_tls_conn *c, void *buf, size_t n, size_t *got);

/* Write up to n (> 0) bytes: 0 with *put > 0 (maybe fewer than n), or 0 with *put == 0
 * and a want set. RD_ERR_CLOSED when the peer is gone, RD_ERR_SYSTEM, RD_ERR_CRYPTO,
 * RD_ERR_STATE as for read. Never raises SIGPIPE. */
int rd_tls_conn_write(struct rd_tls_conn *c, const void *buf, size_t n, size_t *put);

/* Bytes buffered inside the transport, which poll() does not report: a reader must read
 * before it waits on the socket when this is not 0. Decrypted bytes count as themselves;
 * received bytes not yet decrypted (TLS reads ahead) count as 1, and may be only part of
 * a record: a read then returns nothing and waiting is right. 0 for plain. */
size_t rd_tls_conn_pending(const struct rd_tls_conn *c);

/* Readiness the last call that made no progress needs (RD_TLS_WANT_NONE otherwise). */
enum rd_tls_want rd_tls_conn_want(const struct rd_tls_conn *c);

/* One line on why the last failed call failed ("" if none). Valid until the next call. */
const char *rd_tls_conn_reason(const struct rd_tls_conn *c);

/* The peer's fingerprint once the handshake is done. RD_ERR_STATE for a plain transport
 * or before the handshake, RD_ERR_NOT_FOUND if the peer showed no certificate. */
int rd_tls_conn_peer_fp(const struct rd_tls_conn *c, uint8_t fp[RD_TLS_FP_LEN]);

int rd_tls_conn_fd(const struct rd_tls_conn *c);
int rd_tls_conn_is_tls(const struct rd_tls_conn *c);
const char *rd_tls_conn_type_name(const struct rd_tls_conn *c); /* "plain" or "tls" */

/* Send close_notify when the handshake finished and nothing failed (one non-blocking
 * attempt), close the socket and free c. NULL is ignored. */
void rd_tls_conn_close(struct rd_tls_conn *c);

#ifdef __cplusplus
}
#endif
#endif
