/* admin_ui.h - the narrow interface between the server core and the administrator's
 * window. server/gui_gtk.c implements it with GTK 4 (the only file set that includes GTK);
 * server/nogui_stub.c implements it with nothing, for GUI=0 builds.
 *
 * Threads: admin_ui_run() runs the GTK main loop on the main thread and is the only
 * caller of GTK. admin_ui_event() and admin_ui_quit() may be called from any thread: they
 * only hand data to the main loop (g_idle_add / a locked queue), never touch widgets.
 */
#ifndef ROOMDROP_ADMIN_UI_H
#define ROOMDROP_ADMIN_UI_H

#include "rd_server.h"

/* A key lately refused admission (newest first), for admin_ui_ops.refused. */
struct admin_ui_refused {
	uint64_t last_ms;                     /* wall clock */
	unsigned count;                       /* attempts */
	char fingerprint[RD_TLS_FP_TEXT_LEN]; /* "" for a client that showed no key */
	char ip[48];
	char nick[RD_NICK_BUF];
};

/* An operator of a room, for admin_ui_ops.operators. */
struct admin_ui_operator {
	char room[RD_ROOM_BUF];
	char fingerprint[RD_TLS_FP_TEXT_LEN];
};

/* What the window may ask of the program about admission and ownership (issue 12 point 6).
 * Called on the window's (main) thread only; each call is short (a local SQLite statement)
 * and logs what it did in the server's log. Actions return 0 or -1, with a sentence for
 * the administrator in msg either way. A NULL member: the window offers no such action
 * (e.g. release with --open-nicks). */
struct admin_ui_ops {
	void *user;
	/* the admission state of a client, a few words ("key admitted", "password", ...) */
	void (*admission)(void *user, const struct rd_client_info *ci, char *out, size_t cap);
	size_t (*refused)(void *user, struct admin_ui_refused *out, size_t max);
	size_t (*operators)(void *user, struct admin_ui_operator *out, size_t max);
	/* admit (1) or revoke (0) the key with this fingerprint (text form) */
	int (*admit)(void *user, const char *fingerprint, int admit, char *msg, size_t cap);
	int (*release)(void *user, const char *nick, char *msg, size_t cap);
	/* an invitation for one use, valid 24 h; host: where the invited connect (NULL or
	 * "": the listening address). link gets the roomdrop:// link. */
	int (*invite)(void *user, const char *host, char *link, size_t lcap, char *msg, size_t cap);
};

struct admin_ui_info {
	const char *listen;             /* "127.0.0.1:7878", for the window title/subtitle */
	const char *store;              /* store root, or NULL */
	const char *fingerprint;        /* the server's TLS key fingerprint, "" when TLS is off */
	const struct admin_ui_ops *ops; /* NULL: no admission panel */
	/* In a cluster: the clients of the other servers (NULL when alone), into *out
	 * (malloc'd, the caller frees), *n entries, with id 0, ip "-", port 0 and activity
	 * "on server HOST:PORT". 0, or an error (none shown). May wait on the network
	 * (bounded): the window calls it on a worker thread, at most once a second. */
	int (*others)(void *user, struct rd_client_info **out, size_t *n);
	void *others_user;
};

/* 1 if this build has a window and it can be shown: not headless, and a display
 * (DISPLAY or WAYLAND_DISPLAY) is set and can be opened. */
int admin_ui_wanted(int headless);
/* Show the window and run the main loop until the window is closed or admin_ui_quit()
 * is called. Returns 0, or non-zero if the window could not be created. The caller then
 * stops the server. */
int admin_ui_run(struct rd_server *s, const struct admin_ui_info *info);
/* Hand one event to the window (any thread, never blocks; dropped when no window runs). */
void admin_ui_event(const struct rd_event *ev);
/* Ask the window to close (any thread; e.g. from the signal thread on SIGTERM). */
void admin_ui_quit(void);

#endif
