/* rd_names.h - validation of names that come from the wire.
 *
 * Nicknames and room names: 1..32 bytes of [A-Za-z0-9_.-], first character a letter,
 * digit or '_'; compared ignoring ASCII case. "server" is reserved as a nickname.
 * File names: 1..255 bytes of valid UTF-8 (no overlong forms, no surrogates), no '/',
 * '\\', no control characters (Unicode Cc: C0 with NUL, DEL, C1), no format characters
 * (Cf: bidirectional controls, zero-width characters, BOM, ...), no U+2028/U+2029, not
 * "." or "..", no leading or trailing space, and in Unicode NFC. See PROTOCOL.md "Names".
 */
#ifndef RD_NAMES_H
#define RD_NAMES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 0 if valid, else the wire error code that explains why (RD_E_NICK_LENGTH,
 * RD_E_NICK_INVALID, RD_E_NICK_RESERVED). */
uint16_t rd_nick_check(const char *s, size_t n);
/* 0 if valid, else RD_E_NO_SUCH_ROOM (rooms follow the nickname character rules). */
uint16_t rd_room_check(const char *s, size_t n);
/* What rd_filename_check returns for a refused name: the wire code that the file
 * application sends for it (its RDF_E_BAD_FILENAME, in the applications' error range). */
#define RD_FILENAME_REFUSED 500u
/* 0 if valid, else RD_FILENAME_REFUSED. */
uint16_t rd_filename_check(const char *s, size_t n);
/* The same check; when the name is refused and why != NULL, why[cap] gets the broken rule
 * in words ("contains the invisible format character U+202E ...", "not in Unicode
 * normalization form C (NFC)"); "" when the name is valid. */
uint16_t rd_filename_explain(const char *s, size_t n, char *why, size_t cap);
/* Normalise the UTF-8 text s[0..n) to Unicode NFC into out[cap] (NUL-terminated), so that
 * a name typed or stored in another form (NFD on macOS) becomes the one form that
 * rd_filename_check accepts. 0, RD_ERR_MALFORMED (not valid UTF-8), RD_ERR_TOO_BIG (the
 * result and its NUL do not fit in cap, or s is far longer than any name), RD_ERR_INVAL
 * (out NULL or cap 0). Only normalises: check the result with rd_filename_check. */
int rd_name_nfc(const char *s, size_t n, char *out, size_t cap);
/* 1 if p[0..n) is valid UTF-8 (RFC 3629), else 0. */
int rd_utf8_valid(const void *p, size_t n);
/* ASCII case-insensitive equality of two NUL-terminated names. */
int rd_name_eq(const char *a, const char *b);
/* The same as rd_display_escape() (rd_display.h), under its older name: kept for the
 * programs and applications that call it. Returns out. */
char *rd_escape_display(const char *s, size_t n, char *out, size_t cap);
/* A byte count for people, in powers of 1000 with one decimal: "79 B", "1.2 MB",
 * "18.4 EB". Always NUL-terminated in out[cap]. */
void rd_format_size(uint64_t n, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
