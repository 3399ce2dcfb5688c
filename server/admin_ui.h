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

struct admin_ui_info {
	const char *listen;      /* "127.0.0.1:7878", for the window title/subtitle */
	const char *store;       /* store root, or NULL */
	const char *fingerprint; /* the server's TLS key fingerprint, "" when TLS is off */
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
