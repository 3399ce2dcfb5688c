/* progress.h - transfer progress on the client's terminal, and the number formats of the
 * summary lines.
 *
 * A bar is drawn on stderr only when stderr is a terminal and --quiet was not given:
 *   put report.pdf  [########------------]  41%  12.3 MB / 30.0 MB  3.0 MB/s  0:06 left
 * redrawn at most 10 times a second, erased when the transfer ends (the caller then prints
 * its one-line summary on stdout). When stderr is not a terminal nothing is drawn. The
 * width is the terminal's (TIOCGWINSZ on stderr, else $COLUMNS, else 80).
 * Speeds and times count only the bytes moved in this run (a resumed transfer's
 * skipped prefix is not counted as speed). */
#ifndef ROOMDROP_CLIENT_PROGRESS_H
#define ROOMDROP_CLIENT_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

struct progress {
	char verb[16];     /* "put" */
	char name[1024];   /* the file name, escaped for the terminal */
	uint64_t total;    /* bytes of the whole file */
	uint64_t base;     /* bytes already there when this run started (resume) */
	uint64_t done;     /* bytes of the file now there */
	uint64_t start_ms; /* monotonic */
	uint64_t last_draw_ms;
	int enabled; /* drawing on a terminal */
	int drawn;   /* a bar is on the screen */
};

/* Start a bar labelled "VERB NAME" for a file of total bytes of which base are already
 * there. quiet != 0 (or stderr not a terminal) draws nothing. */
void progress_start(struct progress *p, const char *verb, const char *name, uint64_t total,
		    uint64_t base, int quiet);
/* done = bytes of the file now there (base included). Draws if 100 ms have passed. */
void progress_update(struct progress *p, uint64_t done);
/* Erase the bar. */
void progress_end(struct progress *p);
/* Take the bar being drawn (if any) off its line before other output, and draw it again
 * after it: a notice never prints over the bar. */
void progress_hide(void);
void progress_show(void);
/* The bar's line for a terminal of width columns, into out: "VERB NAME  [###---]  41%
 * 12.3 MB / 30.0 MB  3.0 MB/s  0:06 left". It takes at most width - 1 columns: a long
 * name is shortened in the middle ("start…end.pdf", by display width), then the bar;
 * the numbers are never cut. */
void progress_format(const struct progress *p, uint64_t now_ms, int width, char *out, size_t cap);
/* Seconds since progress_start. */
double progress_elapsed(const struct progress *p);

/* "3.0 MB/s" for n bytes in secs seconds. */
void progress_human_rate(uint64_t n, double secs, char *out, size_t cap);

#endif
