/* nogui_stub.c - admin_ui.h for builds without GTK (make GUI=0): there is never a window,
 * so the server runs headless; events are dropped. */
#include <stddef.h>

#include "admin_ui.h"

int admin_ui_wanted(int headless)
{
	(void)headless;
	return 0;
}

int admin_ui_run(struct rd_server *s, const struct admin_ui_info *info)
{
	(void)s;
	(void)info;
	return 1;
}

void admin_ui_event(const struct rd_event *ev)
{
	(void)ev;
}

void admin_ui_quit(void) {}
