/* progress.c - the transfer progress bar and number formats (see progress.h).
 * One bar at a time is on the screen (g_shown): output that must not mix with it goes
 * between progress_hide() and progress_show(). Single-threaded, like the client. */
#include "progress.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "rd_names.h"
#include "rd_net.h"

#define REDRAW_MS 100u
#define FIRST_DRAW_MS 300u
#define BAR_MIN 10
#define BAR_MAX 30
#define BAR_LEAST 3   /* narrower than this: no bar at all */
#define NAME_LEAST 12 /* columns of the name kept before the bar shrinks */
#define ELLIPSIS "\u2026"

static struct progress *g_shown; /* the bar on the screen, NULL if none */
static int g_hidden;             /* ...taken off its line by progress_hide */

void progress_human_rate(uint64_t n, double secs, char *out, size_t cap)
{
	char s[24];

	if (secs < 0.001)
		secs = 0.001;
	rd_format_size((uint64_t)((double)n / secs), s, sizeof(s));
	snprintf(out, cap, "%s/s", s);
}

static int term_width(void)
{
	struct winsize ws;
	const char *c;
	long v;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	if ((c = getenv("COLUMNS")) != NULL && (v = strtol(c, NULL, 10)) > 0 && v < 10000)
		return (int)v;
	return 80;
}

/* ---- display width of UTF-8 text ----------------------------------------------------- */

/* Decode one code point at s (valid UTF-8 from rd_escape_display); its length in *len. */
static uint32_t cp_at(const char *s, size_t *len)
{
	const unsigned char *u = (const unsigned char *)s;

	if (u[0] < 0x80) {
		*len = 1;
		return u[0];
	}
	if ((u[0] & 0xE0) == 0xC0 && u[1]) {
		*len = 2;
		return (uint32_t)(u[0] & 0x1F) << 6 | (u[1] & 0x3F);
	}
	if ((u[0] & 0xF0) == 0xE0 && u[1] && u[2]) {
		*len = 3;
		return (uint32_t)(u[0] & 0x0F) << 12 | (uint32_t)(u[1] & 0x3F) << 6 | (u[2] & 0x3F);
	}
	if ((u[0] & 0xF8) == 0xF0 && u[1] && u[2] && u[3]) {
		*len = 4;
		return (uint32_t)(u[0] & 0x07) << 18 | (uint32_t)(u[1] & 0x3F) << 12 |
		       (uint32_t)(u[2] & 0x3F) << 6 | (u[3] & 0x3F);
	}
	*len = 1;
	return u[0];
}

/* Columns a code point takes: 0 for combining marks, 2 for East Asian wide and emoji. */
static int cp_width(uint32_t c)
{
	if ((c >= 0x0300 && c <= 0x036F) || (c >= 0x1AB0 && c <= 0x1AFF) ||
	    (c >= 0x1DC0 && c <= 0x1DFF) || (c >= 0x20D0 && c <= 0x20FF) ||
	    (c >= 0xFE20 && c <= 0xFE2F) || c == 0x200D || (c >= 0xFE00 && c <= 0xFE0F))
		return 0;
	if ((c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0x303E) ||
	    (c >= 0x3041 && c <= 0x33FF) || (c >= 0x3400 && c <= 0x4DBF) ||
	    (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xA000 && c <= 0xA4CF) ||
	    (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) ||
	    (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF60) ||
	    (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x1F300 && c <= 0x1F64F) ||
	    (c >= 0x1F900 && c <= 0x1F9FF) || (c >= 0x20000 && c <= 0x3FFFD))
		return 2;
	return 1;
}

static int text_width(const char *s)
{
	size_t len;
	int w = 0;

	while (*s) {
		w += cp_width(cp_at(s, &len));
		s += len;
	}
	return w;
}

/* name shortened to at most cols columns: "head…tail" (cols >= 3), whole code points. */
static void shorten(const char *name, int cols, char *out, size_t cap)
{
	const char *p, *tail;
	int head_w = cols / 2, tail_w = (cols - 1) / 2, w = 0, cw;
	size_t len, n = 0, total = strlen(name);

	if (text_width(name) <= cols) {
		snprintf(out, cap, "%s", name);
		return;
	}
	/* the head: code points while they fit */
	for (p = name; *p; p += len) {
		cw = cp_width(cp_at(p, &len));
		if (w + cw > head_w)
			break;
		w += cw;
	}
	n = (size_t)(p - name);
	tail_w += head_w - w; /* a wide character that did not fit gives its room to the tail */
	/* the tail: the shortest suffix on a code point boundary that fits */
	tail = name + total;
	w = 0;
	for (p = name + total; p > name + n;) {
		const char *q = p - 1;

		while (q > name && ((unsigned char)*q & 0xC0) == 0x80)
			q--;
		cw = cp_width(cp_at(q, &len));
		if (w + cw > tail_w)
			break;
		w += cw;
		p = q;
		tail = q;
	}
	snprintf(out, cap, "%.*s" ELLIPSIS "%s", (int)n, name, tail);
}

/* ---- the bar -------------------------------------------------------------------------- */

void progress_start(struct progress *p, const char *verb, const char *name, uint64_t total,
		    uint64_t base, int quiet)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->verb, sizeof(p->verb), "%s", verb);
	rd_escape_display(name, strlen(name), p->name, sizeof(p->name));
	p->total = total;
	p->base = p->done = base;
	p->start_ms = rd_now_mono_ms();
	p->enabled = !quiet && isatty(STDERR_FILENO);
}

double progress_elapsed(const struct progress *p)
{
	return (double)(rd_now_mono_ms() - p->start_ms) / 1000.0;
}

void progress_format(const struct progress *p, uint64_t now, int width, char *out, size_t cap)
{
	char nums[160], bar[BAR_MAX + 1], sd[32], st[32], rate[32], left[32], name[1100];
	double secs = (double)(now - p->start_ms) / 1000.0;
	uint64_t moved = p->done - p->base;
	int pct, bw, fill, i, avail, label_w, fixed, name_cols;
	double bps, eta;

	pct = p->total == 0 ? 100 : (int)(p->done * 100 / p->total);
	rd_format_size(p->done, sd, sizeof(sd));
	rd_format_size(p->total, st, sizeof(st));
	progress_human_rate(moved, secs, rate, sizeof(rate));
	bps = secs > 0.05 ? (double)moved / secs : 0;
	if (bps > 0) {
		eta = (double)(p->total - p->done) / bps;
		snprintf(left, sizeof(left), "%d:%02d left", (int)(eta / 60), (int)eta % 60);
	} else {
		snprintf(left, sizeof(left), "--:-- left");
	}
	snprintf(nums, sizeof(nums), " %3d%%  %s / %s  %s  %s", pct, sd, st, rate, left);

	/* columns: label, "  [bar]" (bw + 4, or nothing), nums; the last column stays free */
	avail = width - 1;
	fixed = (int)strlen(p->verb) + 1 + (int)strlen(nums);
	bw = width - 70;
	bw = bw < BAR_MIN ? BAR_MIN : bw > BAR_MAX ? BAR_MAX : bw;
	label_w = text_width(p->name);
	name_cols = avail - fixed - (bw + 4);
	if (name_cols < label_w && name_cols < NAME_LEAST) {
		/* the name at its least, then the bar gives way */
		name_cols = label_w < NAME_LEAST ? label_w : NAME_LEAST;
		bw = avail - fixed - name_cols - 4;
		if (bw < BAR_LEAST) {
			bw = 0;
			name_cols = avail - fixed - 1;
		}
	}
	if (name_cols < 3)
		name_cols = 3;
	shorten(p->name, name_cols, name, sizeof(name));
	if (bw > 0) {
		fill = p->total == 0 ? bw : (int)((double)bw * (double)p->done / (double)p->total);
		for (i = 0; i < bw; i++)
			bar[i] = i < fill ? '#' : '-';
		bar[bw] = '\0';
		snprintf(out, cap, "%s %s  [%s]%s", p->verb, name, bar, nums);
	} else {
		snprintf(out, cap, "%s %s %s", p->verb, name, nums);
	}
}

static void draw(struct progress *p, uint64_t now)
{
	char line[1400];

	progress_format(p, now, term_width(), line, sizeof(line));
	fprintf(stderr, "\r\033[K%s", line);
	fflush(stderr);
	p->drawn = 1;
	p->last_draw_ms = now;
	g_shown = p;
	g_hidden = 0;
}

void progress_update(struct progress *p, uint64_t done)
{
	uint64_t now;

	p->done = done > p->total ? p->total : done;
	if (!p->enabled)
		return;
	now = rd_now_mono_ms();
	/* nothing for transfers that end in a blink; then at most 10 redraws a second */
	if (now - p->start_ms < FIRST_DRAW_MS || (p->drawn && now - p->last_draw_ms < REDRAW_MS))
		return;
	if (g_hidden && g_shown == p)
		return; /* someone is printing between hide and show */
	draw(p, now);
}

void progress_end(struct progress *p)
{
	if (p->enabled && p->drawn && !(g_hidden && g_shown == p)) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	p->drawn = 0;
	if (g_shown == p) {
		g_shown = NULL;
		g_hidden = 0;
	}
}

void progress_hide(void)
{
	if (g_shown == NULL || g_hidden)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
	g_hidden = 1;
}

void progress_show(void)
{
	if (g_shown == NULL || !g_hidden)
		return;
	draw(g_shown, rd_now_mono_ms());
}
