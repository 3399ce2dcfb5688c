#include <inttypes.h>
#include <stdio.h>
/* rd_names.c - validation of names that come from the wire, and safe display.
 *
 * Everything here works on byte counts, not on NUL termination, so a name with an
 * embedded NUL is seen (and refused) rather than silently cut short.
 */
#include "rd_names.h"

#include <string.h>

#include "rd_proto.h"

/* Length of the valid UTF-8 sequence (RFC 3629, table in section 4) that starts at p,
 * or 0 if the bytes at p do not start one (overlong, surrogate, above U+10FFFF,
 * stray continuation, truncated). */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xBF;
	size_t len, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0; /* overlong below U+0800 */
		else if (c == 0xED)
			hi = 0x9F; /* U+D800..U+DFFF are surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90; /* overlong below U+10000 */
		else if (c == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
	} else {
		return 0; /* 80..C1 (continuation or overlong lead), F5..FF */
	}
	if (n < len)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return len;
}

int rd_utf8_valid(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0, len;

	if (s == NULL)
		return n == 0;
	while (i < n) {
		len = utf8_seq_len(s + i, n - i);
		if (len == 0)
			return 0;
		i += len;
	}
	return 1;
}

static int name_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

static int name_first_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/* 0 if s[0..n) follows the nickname character rules (length checked by the caller). */
static int name_chars_ok(const char *s, size_t n)
{
	size_t i;

	if (!name_first_ok((unsigned char)s[0]))
		return 0;
	for (i = 1; i < n; i++)
		if (!name_char_ok((unsigned char)s[i]))
			return 0;
	return 1;
}

static unsigned char ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

static int bytes_eq_nocase(const char *a, size_t n, const char *lit)
{
	size_t i;

	if (strlen(lit) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)lit[i]))
			return 0;
	return 1;
}

uint16_t rd_nick_check(const char *s, size_t n)
{
	if (n == 0 || n > RD_NICK_MAX)
		return RD_E_NICK_LENGTH;
	if (s == NULL || !name_chars_ok(s, n))
		return RD_E_NICK_INVALID;
	if (bytes_eq_nocase(s, n, "server"))
		return RD_E_NICK_RESERVED;
	return 0;
}

uint16_t rd_room_check(const char *s, size_t n)
{
	if (s == NULL || n == 0 || n > RD_ROOM_MAX || !name_chars_ok(s, n))
		return RD_E_NO_SUCH_ROOM;
	return 0;
}

uint16_t rd_filename_check(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i;

	if (s == NULL || n == 0 || n > RD_FILENAME_MAX)
		return RD_E_BAD_FILENAME;
	if (!rd_utf8_valid(p, n))
		return RD_E_BAD_FILENAME;
	if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
		return RD_E_BAD_FILENAME;
	if (p[0] == ' ' || p[n - 1] == ' ')
		return RD_E_BAD_FILENAME;
	for (i = 0; i < n; i++) {
		/* C0 (includes NUL), DEL, and the separators. */
		if (p[i] < 0x20 || p[i] == 0x7F || p[i] == '/' || p[i] == '\\')
			return RD_E_BAD_FILENAME;
		/* C1 controls U+0080..U+009F are encoded C2 80..C2 9F; the UTF-8 is valid, so
		 * a C2 here is always a lead byte followed by a continuation. */
		if (p[i] == 0xC2 && p[i + 1] <= 0x9F)
			return RD_E_BAD_FILENAME;
	}
	return 0;
}

int rd_name_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	while (*a != '\0' && *b != '\0') {
		if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b))
			return 0;
		a++;
		b++;
	}
	return *a == *b;
}

/* Length of the next display unit at p: the bytes it covers in *in_len and the bytes it
 * produces in the output (as an escape when *esc). A valid UTF-8 sequence that is not a
 * control character is copied as is; anything else is one escaped byte. */
static size_t display_unit(const unsigned char *p, size_t n, size_t *in_len, int *esc)
{
	size_t len = utf8_seq_len(p, n);
	unsigned char c = p[0];

	*esc = 0;
	*in_len = 1;
	if (len == 0 || (len == 1 && (c < 0x20 || c == 0x7F || c == '\\')) ||
	    (len == 2 && c == 0xC2 && p[1] <= 0x9F)) {
		/* A C1 control (C2 80..C2 9F) is escaped byte by byte: two \xNN units. */
		*esc = 1;
		return 4;
	}
	*in_len = len;
	return len;
}

char *rd_escape_display(const char *s, size_t n, char *out, size_t cap)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i, total = 0, room, o = 0, in_len, out_len, dots;
	int esc;

	if (out == NULL || cap == 0)
		return out;
	if (p == NULL)
		n = 0;
	for (i = 0; i < n; i += in_len)
		total += display_unit(p + i, n - i, &in_len, &esc);
	room = cap - 1;
	dots = 0;
	if (total > room) {
		/* Keep room for "..." (or as much of it as fits in a tiny buffer). */
		dots = room < 3 ? room : 3;
		room -= dots;
	}
	for (i = 0; i < n; i += in_len) {
		out_len = display_unit(p + i, n - i, &in_len, &esc);
		if (o + out_len > room)
			break; /* never split an escape or a UTF-8 sequence */
		if (esc) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = digits[p[i] >> 4];
			out[o++] = digits[p[i] & 0x0F];
		} else {
			memcpy(out + o, p + i, in_len);
			o += in_len;
		}
	}
	while (dots-- > 0)
		out[o++] = '.';
	out[o] = '\0';
	return out;
}

void rd_format_size(uint64_t n, char *out, size_t cap)
{
	static const char *const unit[] = {"KB", "MB", "GB", "TB", "PB", "EB"};
	double v = (double)n;
	unsigned i = 0;

	if (n < 1000) {
		snprintf(out, cap, "%" PRIu64 " B", n);
		return;
	}
	v /= 1000.0;
	while (v >= 999.95 && i + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1000.0;
		i++;
	}
	snprintf(out, cap, "%.1f %s", v, unit[i]);
}
