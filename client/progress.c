/* progress.c - the transfer progress bar and number formats (see progress.h). */
#include "progress.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "rd_names.h"
#include "rd_net.h"

#define REDRAW_MS 100u
#define FIRST_DRAW_MS 300u
#define BAR_MIN 10
#define BAR_MAX 30

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

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

void progress_start(struct progress *p, const char *verb, const char *name, uint64_t total,
		    uint64_t base, int quiet)
{
	char esc[80];

	memset(p, 0, sizeof(*p));
	rd_escape_display(name, strlen(name), esc, sizeof(esc));
	snprintf(p->label, sizeof(p->label), "%s %s", verb, esc);
	p->total = total;
	p->base = p->done = base;
	p->start_ms = rd_now_mono_ms();
	p->enabled = !quiet && isatty(STDERR_FILENO);
}

double progress_elapsed(const struct progress *p)
{
	return (double)(rd_now_mono_ms() - p->start_ms) / 1000.0;
}

static void draw(struct progress *p, uint64_t now)
{
	char line[512], bar[BAR_MAX + 1], sd[32], st[32], rate[32], left[32];
	double secs = (double)(now - p->start_ms) / 1000.0;
	uint64_t moved = p->done - p->base;
	int width = term_width(), pct, bw, fill, i;
	double bps, eta;

	pct = p->total == 0 ? 100 : (int)(p->done * 100 / p->total);
	bw = width - 70;
	bw = bw < BAR_MIN ? BAR_MIN : bw > BAR_MAX ? BAR_MAX : bw;
	fill = p->total == 0 ? bw : (int)((double)bw * (double)p->done / (double)p->total);
	for (i = 0; i < bw; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[bw] = '\0';
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
	snprintf(line, sizeof(line), "%s  [%s] %3d%%  %s / %s  %s  %s", p->label, bar, pct, sd, st,
		 rate, left);
	if ((int)strlen(line) > width - 1)
		line[width - 1] = '\0';
	fprintf(stderr, "\r\033[K%s", line);
	fflush(stderr);
	p->drawn = 1;
	p->last_draw_ms = now;
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
	draw(p, now);
}

void progress_end(struct progress *p)
{
	if (p->enabled && p->drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	p->drawn = 0;
}
