/* rd_names.h - validation of names that come from the wire, and safe display.
 *
 * Nicknames and room names: 1..32 bytes of [A-Za-z0-9_.-], first character a letter,
 * digit or '_'; compared ignoring ASCII case. "server" is reserved as a nickname.
 * File names: 1..255 bytes of valid UTF-8 (no overlong forms, no surrogates), no '/',
 * '\\', NUL or control characters (C0, DEL, C1), not "." or "..", no leading or trailing
 * space. See PROTOCOL.md "Names".
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
/* 0 if valid, else RD_E_BAD_FILENAME. */
uint16_t rd_filename_check(const char *s, size_t n);
/* 1 if p[0..n) is valid UTF-8 (RFC 3629), else 0. */
int rd_utf8_valid(const void *p, size_t n);
/* ASCII case-insensitive equality of two NUL-terminated names. */
int rd_name_eq(const char *a, const char *b);
/* Copy s[0..n) to out[cap] for showing on a terminal: control characters, ESC, DEL,
 * backslash and invalid UTF-8 bytes become \xNN escapes; always NUL-terminated, truncated
 * with "..." if needed. Returns out. */
char *rd_escape_display(const char *s, size_t n, char *out, size_t cap);
/* A byte count for people, in powers of 1000 with one decimal: "79 B", "1.2 MB",
 * "18.4 EB". Always NUL-terminated in out[cap]. */
void rd_format_size(uint64_t n, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
