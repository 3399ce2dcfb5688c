/* rd_display.h - showing text that came from the wire, safely.
 *
 * Names, chat text, reasons and broadcasts come from other people. Printed raw, a control
 * character drives the terminal and a format character (U+202E RIGHT-TO-LEFT OVERRIDE,
 * zero-width characters, the BOM) makes one text look like another: "n<U+202E>fdp.exe"
 * shows as "nexe.pdf". Everything a program shows from the wire goes through
 * rd_display_escape() first. The Unicode tables come from libutf8proc.
 * See PROTOCOL.md "Names" (Display).
 */
#ifndef RD_DISPLAY_H
#define RD_DISPLAY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 if code point cp is shown as it is; 0 if rd_display_escape() escapes it: the
 * controls (Unicode category Cc: C0, DEL, C1), the format characters (Cf: bidirectional
 * controls such as U+202E, zero-width characters, U+FEFF, U+00AD, tags), the line and
 * paragraph separators U+2028/U+2029 (Zl, Zp), surrogates and values above U+10FFFF. */
int rd_display_printable(uint32_t cp);

/* Copy s[0..n) to out[cap] for showing on a terminal or in a window:
 *   C0 controls, DEL, backslash  -> \xNN        ("\x1b", "\x7f", "\x5c")
 *   C1 controls (U+0080-U+009F)  -> \xc2\xNN    (their two UTF-8 bytes)
 *   other characters that are not printable (above): \uXXXX, or \UXXXXXXXX beyond the
 *                                   BMP ("\u202e", "\ufeff", "\U000e0001")
 *   bytes that are not valid UTF-8 -> \xNN each
 * and everything else (any script, emoji, combining marks) as it is. The backslash is
 * escaped so that an escape cannot be forged. Always NUL-terminated; when the result
 * does not fit, it ends in "..." and no escape or UTF-8 sequence is split. Nothing is
 * written when cap is 0. Returns out. */
char *rd_display_escape(const char *s, size_t n, char *out, size_t cap);

/* Terminal columns that s[0..n) takes (meant for escaped text): wide characters (CJK,
 * most emoji) count 2, combining marks 0, an invalid byte 1. For aligning tables. */
size_t rd_display_width(const char *s, size_t n);

#ifdef __cplusplus
}
#endif
#endif
