/* rd_names.c - validation of names that come from the wire.
 *
 * Everything here works on byte counts, not on NUL termination, so a name with an
 * embedded NUL is seen (and refused) rather than silently cut short. The Unicode data
 * (general categories, NFC) is libutf8proc's.
 */
#include "rd_names.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <utf8proc.h>

#include "internal.h"
#include "rd_display.h"
#include "rd_err.h"
#include "rd_proto.h"

/* Code points a name may take on its way to NFC: a canonical decomposition is at most 4
 * code points, so 255 bytes never need more. Longer input is refused as too big. */
#define NFC_CODEPOINTS_MAX 1024

size_t rd_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xBF;
	uint32_t v;
	size_t len, i;

	*cp = c;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		v = c & 0x0F;
		if (c == 0xE0)
			lo = 0xA0; /* overlong below U+0800 */
		else if (c == 0xED)
			hi = 0x9F; /* U+D800..U+DFFF are surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		v = c & 0x07;
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
	for (i = 1; i < len; i++)
		v = (v << 6) | (p[i] & 0x3F);
	*cp = v;
	return len;
}

int rd_utf8_valid(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0, len;
	uint32_t cp;

	if (s == NULL)
		return n == 0;
	while (i < n) {
		len = rd_utf8_decode(s + i, n - i, &cp);
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

/* printf into why[cap] when the caller wants the reason; returns the error code. */
static uint16_t bad_name(char *why, size_t cap, const char *fmt, ...) RD_PRINTF(3, 4);
static uint16_t bad_name(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && cap > 0) {
		va_start(ap, fmt);
		vsnprintf(why, cap, fmt, ap);
		va_end(ap);
	}
	return RD_FILENAME_REFUSED;
}

static int all_ascii(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] >= 0x80)
			return 0;
	return 1;
}

/* 1 if s[0..n) (valid UTF-8, at most RD_FILENAME_MAX bytes) is in NFC. */
static int is_nfc(const char *s, size_t n)
{
	char nfc[RD_FILENAME_MAX + 1];

	if (all_ascii((const unsigned char *)s, n))
		return 1; /* ASCII has no decompositions: always NFC */
	/* A longer NFC form does not fit in n + 1 bytes: then it differs too. */
	if (rd_name_nfc(s, n, nfc, n + 1) != 0)
		return 0;
	return strlen(nfc) == n && memcmp(nfc, s, n) == 0;
}

uint16_t rd_filename_explain(const char *s, size_t n, char *why, size_t cap)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i, len;
	uint32_t cp;

	if (why != NULL && cap > 0)
		why[0] = '\0';
	if (s == NULL || n == 0)
		return bad_name(why, cap, "a file name cannot be empty");
	if (n > RD_FILENAME_MAX)
		return bad_name(why, cap, "longer than %u bytes", (unsigned)RD_FILENAME_MAX);
	if (!rd_utf8_valid(p, n))
		return bad_name(why, cap, "not valid UTF-8");
	if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
		return bad_name(why, cap, "'.' and '..' are not file names");
	if (p[0] == ' ' || p[n - 1] == ' ')
		return bad_name(why, cap, "starts or ends with a space");
	for (i = 0; i < n; i += len) {
		len = rd_utf8_decode(p + i, n - i, &cp);
		if (cp == '/' || cp == '\\')
			return bad_name(why, cap, "contains '%c'", (char)cp);
		if (cp == 0x2028 || cp == 0x2029)
			return bad_name(why, cap, "contains the %s separator U+%04" PRIX32,
					cp == 0x2028 ? "line" : "paragraph", cp);
		if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
			return bad_name(why, cap, "contains the control character U+%04" PRIX32,
					cp);
		if (!rd_display_printable(cp))
			return bad_name(why, cap,
					"contains the invisible format character U+%04" PRIX32
					" (bidirectional, zero-width or similar)",
					cp);
	}
	if (!is_nfc(s, n))
		return bad_name(why, cap, "not in Unicode normalization form C (NFC)");
	return 0;
}

uint16_t rd_filename_check(const char *s, size_t n)
{
	return rd_filename_explain(s, n, NULL, 0);
}

int rd_name_nfc(const char *s, size_t n, char *out, size_t cap)
{
	utf8proc_int32_t cps[NFC_CODEPOINTS_MAX];
	utf8proc_ssize_t len, i;
	utf8proc_uint8_t enc[4];
	utf8proc_ssize_t k;
	size_t o = 0;
	const utf8proc_option_t nfc = UTF8PROC_STABLE | UTF8PROC_COMPOSE;

	if (out == NULL || cap == 0)
		return RD_ERR_INVAL;
	out[0] = '\0';
	if (s == NULL && n > 0)
		return RD_ERR_INVAL;
	if (!rd_utf8_valid(s, n))
		return RD_ERR_MALFORMED;
	if (n == 0)
		return 0;
	if (n > (size_t)NFC_CODEPOINTS_MAX)
		return RD_ERR_TOO_BIG;
	len = utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, cps,
				 NFC_CODEPOINTS_MAX, nfc);
	if (len < 0)
		return RD_ERR_MALFORMED;
	if (len > NFC_CODEPOINTS_MAX)
		return RD_ERR_TOO_BIG;
	len = utf8proc_normalize_utf32(cps, len, nfc);
	if (len < 0)
		return RD_ERR_MALFORMED;
	for (i = 0; i < len; i++) {
		k = utf8proc_encode_char(cps[i], enc);
		if (k <= 0)
			return RD_ERR_MALFORMED;
		if (o + (size_t)k + 1 > cap) {
			out[0] = '\0';
			return RD_ERR_TOO_BIG;
		}
		memcpy(out + o, enc, (size_t)k);
		o += (size_t)k;
	}
	out[o] = '\0';
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

char *rd_escape_display(const char *s, size_t n, char *out, size_t cap)
{
	return rd_display_escape(s, n, out, cap);
}

void rd_format_size(uint64_t n, char *out, size_t cap)
{
	static const char *const unit[] = { "KB", "MB", "GB", "TB", "PB", "EB" };
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
