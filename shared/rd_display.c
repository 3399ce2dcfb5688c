/* rd_display.c - showing text that came from the wire, safely (see rd_display.h).
 *
 * The Unicode character data (general categories, widths) is libutf8proc's: a small
 * library that keeps its tables current with Unicode, which we would otherwise have to
 * generate and maintain by hand.
 */
#include "rd_display.h"

#include <string.h>

#include <utf8proc.h>

#include "internal.h"

int rd_display_printable(uint32_t cp)
{
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	switch (utf8proc_category((utf8proc_int32_t)cp)) {
	case UTF8PROC_CATEGORY_CC: /* C0, DEL, C1 */
	case UTF8PROC_CATEGORY_CF: /* bidi controls, zero-width characters, BOM, tags */
	case UTF8PROC_CATEGORY_ZL: /* U+2028 */
	case UTF8PROC_CATEGORY_ZP: /* U+2029 */
	case UTF8PROC_CATEGORY_CS:
		return 0;
	default:
		return 1;
	}
}

enum unit_kind {
	U_COPY,
	U_BYTE,
	U_CODE
};

/* The next display unit at p: how many input bytes it covers (*in_len), how it is shown
 * (*kind, with the code point in *cp) and how many output bytes that takes (returned). */
static size_t display_unit(const unsigned char *p, size_t n, size_t *in_len, enum unit_kind *kind,
			   uint32_t *cp)
{
	size_t len = rd_utf8_decode(p, n, cp);

	*in_len = 1;
	*kind = U_BYTE;
	if (len == 0 || *p == '\\' || (len == 1 && !rd_display_printable(*cp)))
		return 4; /* \xNN */
	if (*cp >= 0x80 && *cp <= 0x9F)
		return 4; /* a C1 control: its lead byte here, the continuation as a stray */
	*in_len = len;
	if (!rd_display_printable(*cp)) {
		*kind = U_CODE;
		return *cp > 0xFFFF ? 10 : 6; /* \UXXXXXXXX or \uXXXX */
	}
	*kind = U_COPY;
	return len;
}

char *rd_display_escape(const char *s, size_t n, char *out, size_t cap)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i, total = 0, room, o = 0, in_len, out_len, dots, k;
	enum unit_kind kind;
	uint32_t cp;

	if (out == NULL || cap == 0)
		return out;
	if (p == NULL)
		n = 0;
	for (i = 0; i < n; i += in_len)
		total += display_unit(p + i, n - i, &in_len, &kind, &cp);
	room = cap - 1;
	dots = 0;
	if (total > room) {
		/* Keep room for "..." (or as much of it as fits in a tiny buffer). */
		dots = room < 3 ? room : 3;
		room -= dots;
	}
	for (i = 0; i < n; i += in_len) {
		out_len = display_unit(p + i, n - i, &in_len, &kind, &cp);
		if (o + out_len > room)
			break; /* never split an escape or a UTF-8 sequence */
		switch (kind) {
		case U_BYTE:
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = digits[p[i] >> 4];
			out[o++] = digits[p[i] & 0x0F];
			break;
		case U_CODE:
			out[o++] = '\\';
			out[o++] = out_len == 10 ? 'U' : 'u';
			for (k = out_len - 2; k > 0; k--)
				out[o++] = digits[(cp >> (4 * (k - 1))) & 0x0F];
			break;
		default:
			memcpy(out + o, p + i, in_len);
			o += in_len;
			break;
		}
	}
	while (dots-- > 0)
		out[o++] = '.';
	out[o] = '\0';
	return out;
}

size_t rd_display_width(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, len, w = 0;
	uint32_t cp;
	int cw;

	if (p == NULL)
		return 0;
	while (i < n) {
		len = rd_utf8_decode(p + i, n - i, &cp);
		if (len == 0) {
			w++;
			i++;
			continue;
		}
		cw = utf8proc_charwidth((utf8proc_int32_t)cp);
		w += cw > 0 ? (size_t)cw : 0;
		i += len;
	}
	return w;
}
