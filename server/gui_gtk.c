/* gui_gtk.c - the administrator's window (GTK 4); implements admin_ui.h.
 *
 * Threads. Everything in this file that touches GTK runs on the main thread, inside
 * admin_ui_run(). Other threads reach the window through two functions only:
 *   admin_ui_event()  copies the event into a bounded queue under q_lock (no GTK, no
 *                     wait beyond that lock); past QUEUE_MAX pending events it counts
 *                     them as dropped instead.
 *   admin_ui_quit()   sets an atomic flag.
 * A TICK_MS timer on the main loop swaps the queue out under q_lock, appends the events
 * to the log pane (one text insertion per tick; the log keeps the last LOG_KEEP lines,
 * trimmed in batches), and refreshes the client table from an rd_server_clients()
 * snapshot when events made it dirty (at most every REFRESH_MIN_MS) and at least every
 * REFRESH_MAX_MS, so 500 clients arriving at once cost a few table refreshes, not 500.
 * Rows are GObjects updated in place by client id, so selection and sort order survive
 * refreshes. The rd_server_* admin calls never block (their contract), so the window
 * never waits on the network. In a cluster the clients of the other servers (info->others,
 * which asks Redis) are fetched on a GTask worker thread at most every OTHERS_EVERY_MS,
 * and their last list is merged into each refresh with ids of their own (OTHERS_ID_BIT
 * set: a hash of server and nickname, stable across refreshes); admin_ui_run waits for a
 * fetch in flight before it returns.
 */
#include <gtk/gtk.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_ui.h"
#include "rd_display.h"
#include "rd_err.h"
#include "rd_proto.h"

#define APP_ID "org.roomdrop.Server"
#define TICK_MS 100
#define REFRESH_MIN_MS 200
#define REFRESH_MAX_MS 500
#define QUEUE_MAX 8192
#define LOG_KEEP 5000
#define LOG_SLACK 500 /* trim when LOG_KEEP + LOG_SLACK lines are reached */
#define DEFAULT_KICK_REASON "kicked by the administrator"
#define OTHERS_EVERY_MS 1000
#define OTHERS_ID_BIT 0x80000000u /* local ids stay below it */

/* ---- the event queue (any thread) ------------------------------------------------- */

struct evq {
	struct rd_event *v;
	size_t n, cap;
};

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static struct evq q_pending;    /* guarded by q_lock */
static int q_open;              /* guarded by q_lock: a window is running */
static unsigned long q_dropped; /* guarded by q_lock */
static atomic_int quit_requested;

void admin_ui_event(const struct rd_event *ev)
{
	if (!ev)
		return;
	pthread_mutex_lock(&q_lock);
	if (q_open) {
		if (q_pending.n == q_pending.cap && q_pending.cap < QUEUE_MAX) {
			size_t cap = q_pending.cap ? q_pending.cap * 2 : 256;
			struct rd_event *v = realloc(q_pending.v, cap * sizeof(*v));
			if (v) {
				q_pending.v = v;
				q_pending.cap = cap;
			}
		}
		if (q_pending.n < q_pending.cap)
			q_pending.v[q_pending.n++] = *ev;
		else
			q_dropped++;
	}
	pthread_mutex_unlock(&q_lock);
}

void admin_ui_quit(void)
{
	atomic_store(&quit_requested, 1);
}

int admin_ui_wanted(int headless)
{
	const char *x11 = getenv("DISPLAY"), *wl = getenv("WAYLAND_DISPLAY");

	if (headless)
		return 0;
	if ((!x11 || !*x11) && (!wl || !*wl))
		return 0;
	/* Opens the display on this (the main) thread, which admin_ui_run then uses. */
	return gtk_init_check() ? 1 : 0;
}

/* ---- one client row ---------------------------------------------------------------- */

#define ADM_TYPE_ROW (adm_row_get_type())
G_DECLARE_FINAL_TYPE(AdmRow, adm_row, ADM, ROW, GObject)

struct _AdmRow {
	GObject parent;
	struct rd_client_info info;
};

G_DEFINE_FINAL_TYPE(AdmRow, adm_row, G_TYPE_OBJECT)

static guint row_changed_signal;

static void adm_row_class_init(AdmRowClass *klass)
{
	/* "changed": a shown field changed; bound cells refresh their text. */
	row_changed_signal = g_signal_new("changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
					  NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void adm_row_init(AdmRow *self)
{
	(void)self;
}

static AdmRow *adm_row_new(const struct rd_client_info *ci)
{
	AdmRow *r = g_object_new(ADM_TYPE_ROW, NULL);
	r->info = *ci;
	return r;
}

/* Fields shown in the table (bytes and queue are not). */
static int row_shown_differs(const struct rd_client_info *a, const struct rd_client_info *b)
{
	return a->port != b->port || a->connected_ms != b->connected_ms ||
	       a->last_msg_ms != b->last_msg_ms || strcmp(a->ip, b->ip) != 0 ||
	       strcmp(a->nick, b->nick) != 0 || strcmp(a->room, b->room) != 0 ||
	       strcmp(a->activity, b->activity) != 0 || strcmp(a->fingerprint, b->fingerprint) != 0;
}

/* ---- the window's state (main thread only) -------------------------------------- */

enum col {
	COL_IP,
	COL_PORT,
	COL_NICK,
	COL_ROOM,
	COL_SINCE,
	COL_LAST,
	COL_ACTIVITY,
	COL_KEY,
	COL_ADMISSION,
	NCOLS
};

static const char *const col_titles[NCOLS] = {
	"IP address",   "Port",     "Nickname",   "Room",      "Connected since",
	"Last message", "Activity", "Client key", "Admission",
};

enum scope_item {
	SCOPE_EVERYONE,
	SCOPE_ROOM,
	SCOPE_USER
};

struct ui {
	struct rd_server *server;
	char listen[128];
	char fingerprint[RD_TLS_FP_TEXT_LEN]; /* "" when TLS is off */
	GtkWindow *win;
	GtkColumnView *view;
	GListStore *store; /* AdmRow, ordered by client id */
	GtkSingleSelection *sel;
	GtkLabel *summary;
	GtkLabel *status;
	GtkTextView *log;
	GtkTextBuffer *logbuf;
	int log_follow;       /* keep the newest line in view */
	GString *log_pending; /* lines waiting for the next tick */
	GtkDropDown *scope;
	GtkDropDown *target;
	GtkStringList *targets;
	GtkEntry *bcast;
	GSimpleAction *kick_action;
	GtkWindow *dialog; /* the open modal dialog, if any */
	guint tick_id;
	gint64 last_refresh_us;
	int dirty;
	int close_confirmed;
	/* admission and keys (issue 12): the program's actions, and the side panel */
	struct admin_ui_ops ops;
	int has_ops;
	GtkListBox *refused_list;
	GtkListBox *op_list;
	char *refused_sig, *op_sig; /* what the lists show, to rebuild them only on change */
	gint64 ops_refresh_us;
	char **nicks;     /* registered nicknames of the last snapshot (NULL-ended) */
	struct evq drain; /* swapped with q_pending each tick */
	/* the clients of the other servers of a cluster (main thread only) */
	int (*others)(void *user, struct rd_client_info **out, size_t *n);
	void *others_user;
	struct rd_client_info *other; /* the last list, ids set, sorted by id */
	size_t nother;
	int others_busy;       /* a fetch is in flight */
	gint64 others_last_us; /* when the last one started */
};

static struct ui ui;

/* ---- small helpers -------------------------------------------------------------------- */

static void fmt_time(uint64_t ms, char *out, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms == 0 || !localtime_r(&t, &tm) || strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(out, cap, "%s", ms ? "?" : "\u2014");
}

static void fmt_bytes(uint64_t n, char *out, size_t cap)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	unsigned u = 0;

	while (v >= 1024.0 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(out, cap, "%" PRIu64 " B", n);
	else
		snprintf(out, cap, "%.1f %s", v, unit[u]);
}

/* Text that came from the wire, as the window shows it: escaped (rd_display.h), so that
 * controls and invisible format characters (U+202E...) are visible, and always valid
 * UTF-8 for GTK. */
static const char *esc(const char *s, char *buf, size_t cap)
{
	return rd_display_escape(s, strlen(s), buf, cap);
}

/* The progress at the end of an activity text ("uploading a.pdf 45%"): 0..100 with the
 * text before it in *head_len, or -1 when there is none. */
static int activity_percent(const char *text, size_t *head_len)
{
	size_t n = strlen(text), i;
	int pct = 0;

	if (n < 2 || text[n - 1] != '%')
		return -1;
	for (i = n - 1; i > 0 && text[i - 1] >= '0' && text[i - 1] <= '9'; i--)
		;
	if (i == n - 1 || n - 1 - i > 3)
		return -1;
	for (size_t k = i; k < n - 1; k++)
		pct = pct * 10 + (text[k] - '0');
	if (pct > 100)
		return -1;
	while (i > 0 && text[i - 1] == ' ')
		i--;
	*head_len = i;
	return pct;
}

static void cell_text(const struct rd_client_info *ci, enum col c, char *out, size_t cap)
{
	switch (c) {
	case COL_IP:
		snprintf(out, cap, "%s", ci->ip);
		break;
	case COL_PORT:
		snprintf(out, cap, "%u", (unsigned)ci->port);
		break;
	case COL_NICK:
		if (ci->nick[0])
			esc(ci->nick, out, cap);
		else
			snprintf(out, cap, "(registering)");
		break;
	case COL_ROOM:
		if (ci->room[0])
			esc(ci->room, out, cap);
		else
			snprintf(out, cap, "\u2014");
		break;
	case COL_SINCE:
		fmt_time(ci->connected_ms, out, cap);
		break;
	case COL_LAST:
		fmt_time(ci->last_msg_ms, out, cap);
		break;
	case COL_ACTIVITY:
		if (ci->activity[0])
			esc(ci->activity, out, cap);
		else
			snprintf(out, cap, "idle");
		break;
	case COL_KEY: /* the first two groups of its TLS key's fingerprint (ctl list: all) */
		if (ci->fingerprint[0])
			snprintf(out, cap, "%.9s\u2026", ci->fingerprint);
		else
			snprintf(out, cap, "\u2014");
		break;
	case COL_ADMISSION:
		if (ui.has_ops && ui.ops.admission)
			ui.ops.admission(ui.ops.user, ci, out, cap);
		else
			snprintf(out, cap, "\u2014");
		break;
	default:
		out[0] = '\0';
		break;
	}
}

static void set_accessible_label(GtkWidget *w, const char *name, const char *label)
{
	gtk_widget_set_name(w, name);
	gtk_accessible_update_property(GTK_ACCESSIBLE(w), GTK_ACCESSIBLE_PROPERTY_LABEL, label, -1);
}

/* Queue one log line (main thread); it reaches the pane on the next tick. */
static void log_line(uint64_t ms, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void log_line(uint64_t ms, const char *fmt, ...)
{
	char ts[32];
	va_list ap;
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!ui.log_pending)
		return;
	if (!localtime_r(&t, &tm) || strftime(ts, sizeof ts, "%H:%M:%S", &tm) == 0)
		snprintf(ts, sizeof ts, "--:--:--");
	g_string_append_printf(ui.log_pending, "%s  ", ts);
	va_start(ap, fmt);
	g_string_append_vprintf(ui.log_pending, fmt, ap);
	va_end(ap);
	g_string_append_c(ui.log_pending, '\n');
}

static uint64_t now_ms(void)
{
	return (uint64_t)(g_get_real_time() / 1000);
}

static void set_status(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void set_status(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	gtk_label_set_text(ui.status, s);
	log_line(now_ms(), "%s", s);
	g_free(s);
}

/* ---- table cells ------------------------------------------------------------------- */

/* The Activity cell: a progress bar that always shows the percentage (a label alone hid
 * it behind an ellipsis at the default width), the text before it, and the whole text
 * in the tooltip. */
static void activity_update(GtkWidget *box, const struct rd_client_info *ci)
{
	GtkWidget *bar = gtk_widget_get_first_child(box);
	GtkWidget *label = gtk_widget_get_next_sibling(bar);
	char text[128], shown[128];
	size_t head = 0;
	int pct;

	cell_text(ci, COL_ACTIVITY, text, sizeof text);
	pct = ci->activity[0] ? activity_percent(text, &head) : -1;
	gtk_widget_set_visible(bar, pct >= 0);
	if (pct >= 0) {
		gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(bar), pct / 100.0);
		snprintf(shown, sizeof shown, "%d%%", pct);
		gtk_progress_bar_set_text(GTK_PROGRESS_BAR(bar), shown);
		snprintf(shown, sizeof shown, "%.*s", (int)head, text);
		gtk_label_set_text(GTK_LABEL(label), shown);
	} else {
		gtk_label_set_text(GTK_LABEL(label), text);
	}
	gtk_widget_set_tooltip_text(box, ci->activity[0] ? text : NULL);
}

static void cell_update(GtkListItem *li)
{
	AdmRow *row = gtk_list_item_get_item(li);
	GtkWidget *label = gtk_list_item_get_child(li);
	enum col c = (enum col)GPOINTER_TO_INT(g_object_get_data(G_OBJECT(li), "adm-col"));
	char text[128];

	if (!row || !label)
		return;
	if (c == COL_ACTIVITY) {
		activity_update(label, &row->info);
		return;
	}
	cell_text(&row->info, c, text, sizeof text);
	gtk_label_set_text(GTK_LABEL(label), text);
}

static void cell_row_changed(AdmRow *row, gpointer li)
{
	(void)row;
	cell_update(GTK_LIST_ITEM(li));
}

static void cell_setup(GtkSignalListItemFactory *f, GtkListItem *li, gpointer col)
{
	GtkWidget *label = gtk_label_new(NULL), *box, *bar;

	(void)f;
	gtk_label_set_xalign(GTK_LABEL(label), GPOINTER_TO_INT(col) == COL_PORT ? 1.0f : 0.0f);
	gtk_label_set_ellipsize(GTK_LABEL(label), PANGO_ELLIPSIZE_END);
	g_object_set_data(G_OBJECT(li), "adm-col", col);
	if (GPOINTER_TO_INT(col) != COL_ACTIVITY) {
		gtk_list_item_set_child(li, label);
		return;
	}
	/* [ 45% ] uploading report.pdf: the bar first, so the name is what gets cut */
	box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
	bar = gtk_progress_bar_new();
	gtk_progress_bar_set_show_text(GTK_PROGRESS_BAR(bar), TRUE);
	gtk_widget_add_css_class(bar, "rd-activity");
	gtk_widget_set_hexpand(bar, FALSE); /* the label takes the rest */
	gtk_widget_set_valign(bar, GTK_ALIGN_CENTER);
	gtk_widget_set_visible(bar, FALSE);
	gtk_widget_set_hexpand(label, TRUE);
	gtk_box_append(GTK_BOX(box), bar);
	gtk_box_append(GTK_BOX(box), label);
	gtk_list_item_set_child(li, box);
}

static void cell_bind(GtkSignalListItemFactory *f, GtkListItem *li, gpointer col)
{
	AdmRow *row = gtk_list_item_get_item(li);
	gulong id;

	(void)f;
	(void)col;
	cell_update(li);
	id = g_signal_connect(row, "changed", G_CALLBACK(cell_row_changed), li);
	g_object_set_data(G_OBJECT(li), "adm-handler", GSIZE_TO_POINTER((gsize)id));
}

static void cell_unbind(GtkSignalListItemFactory *f, GtkListItem *li, gpointer col)
{
	AdmRow *row = gtk_list_item_get_item(li);
	gulong id = (gulong)GPOINTER_TO_SIZE(g_object_get_data(G_OBJECT(li), "adm-handler"));

	(void)f;
	(void)col;
	if (row && id)
		g_signal_handler_disconnect(row, id);
	g_object_set_data(G_OBJECT(li), "adm-handler", NULL);
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_str(const char *a, const char *b)
{
	/* empty (unregistered, no room, idle) sorts last */
	if (!*a != !*b)
		return *a ? -1 : 1;
	return g_utf8_collate(a, b);
}

static int cmp_ip(const char *a, const char *b)
{
	unsigned x[4], y[4];

	if (sscanf(a, "%u.%u.%u.%u", &x[0], &x[1], &x[2], &x[3]) == 4 &&
	    sscanf(b, "%u.%u.%u.%u", &y[0], &y[1], &y[2], &y[3]) == 4) {
		for (int i = 0; i < 4; i++)
			if (x[i] != y[i])
				return x[i] < y[i] ? -1 : 1;
		return 0;
	}
	return strcmp(a, b);
}

static int row_compare(gconstpointer pa, gconstpointer pb, gpointer col)
{
	const struct rd_client_info *a = &((const AdmRow *)pa)->info;
	const struct rd_client_info *b = &((const AdmRow *)pb)->info;
	int r = 0;

	switch ((enum col)GPOINTER_TO_INT(col)) {
	case COL_IP:
		r = cmp_ip(a->ip, b->ip);
		break;
	case COL_PORT:
		r = cmp_u64(a->port, b->port);
		break;
	case COL_NICK:
		r = cmp_str(a->nick, b->nick);
		break;
	case COL_ROOM:
		r = cmp_str(a->room, b->room);
		break;
	case COL_SINCE:
		r = cmp_u64(a->connected_ms, b->connected_ms);
		break;
	case COL_LAST:
		r = cmp_u64(a->last_msg_ms, b->last_msg_ms);
		break;
	case COL_ACTIVITY:
		r = cmp_str(a->activity, b->activity);
		break;
	case COL_KEY:
		r = cmp_str(a->fingerprint, b->fingerprint);
		break;
	case COL_ADMISSION: /* by what decides it */
		r = cmp_str(a->nick[0] ? "1" : "0", b->nick[0] ? "1" : "0");
		break;
	default:
		break;
	}
	if (r == 0)
		r = cmp_u64(a->id, b->id);
	return r < 0 ? GTK_ORDERING_SMALLER : r > 0 ? GTK_ORDERING_LARGER : GTK_ORDERING_EQUAL;
}

/* ---- selection ---------------------------------------------------------------------- */

static AdmRow *selected_row(void)
{
	return ui.sel ? gtk_single_selection_get_selected_item(ui.sel) : NULL;
}

static void select_id(uint32_t id)
{
	GListModel *m = G_LIST_MODEL(ui.sel);
	guint n = g_list_model_get_n_items(m);

	for (guint i = 0; i < n; i++) {
		AdmRow *r = g_list_model_get_item(m, i);
		int hit = r->info.id == id;
		g_object_unref(r);
		if (hit) {
			gtk_single_selection_set_selected(ui.sel, i);
			return;
		}
	}
}

static void update_kick_sensitivity(void)
{
	AdmRow *r = selected_row();

	g_simple_action_set_enabled(ui.kick_action, r && r->info.nick[0] && !ui.dialog);
}

/* With scope Room or User, the broadcast target follows the selected client: its room,
 * or its nickname. */
static void target_follow_selection(void)
{
	AdmRow *r = selected_row();
	guint scope, n;
	const char *want = NULL;

	if (!r || !ui.scope || !ui.targets)
		return;
	scope = gtk_drop_down_get_selected(ui.scope);
	if (scope == SCOPE_USER && r->info.nick[0])
		want = r->info.nick;
	else if (scope == SCOPE_ROOM && r->info.room[0])
		want = r->info.room;
	if (!want)
		return;
	n = g_list_model_get_n_items(G_LIST_MODEL(ui.targets));
	for (guint i = 0; i < n; i++) {
		if (strcmp(gtk_string_list_get_string(ui.targets, i), want) == 0) {
			if (gtk_drop_down_get_selected(ui.target) != i)
				gtk_drop_down_set_selected(ui.target, i);
			break;
		}
	}
}

static void on_selection_changed(GObject *o, GParamSpec *p, gpointer data)
{
	(void)o;
	(void)p;
	(void)data;
	update_kick_sensitivity();
	target_follow_selection();
}

/* ---- refresh from a snapshot --------------------------------------------------------- */

static void flush_run(guint *pos, guint *nrem, GPtrArray *add)
{
	if (*nrem == 0 && add->len == 0)
		return;
	g_list_store_splice(ui.store, *pos, *nrem, add->pdata, add->len);
	*pos += add->len;
	*nrem = 0;
	g_ptr_array_set_size(add, 0);
}

/* Merge the id-ordered snapshot into the id-ordered store: consecutive removals and
 * insertions go in one splice; rows that stay are updated in place. */
static void merge_rows(const struct rd_client_info *ci, size_t n)
{
	guint n_old = g_list_model_get_n_items(G_LIST_MODEL(ui.store));
	AdmRow **old = g_new0(AdmRow *, n_old + 1);
	GPtrArray *add = g_ptr_array_new_with_free_func(g_object_unref);
	guint pos = 0, nrem = 0, k = 0;
	size_t j = 0;

	for (guint i = 0; i < n_old; i++)
		old[i] = g_list_model_get_item(G_LIST_MODEL(ui.store), i);
	while (k < n_old || j < n) {
		if (k < n_old && (j == n || old[k]->info.id < ci[j].id)) {
			nrem++;
			k++;
		} else if (k == n_old || old[k]->info.id > ci[j].id) {
			g_ptr_array_add(add, adm_row_new(&ci[j]));
			j++;
		} else {
			AdmRow *r = old[k];
			flush_run(&pos, &nrem, add);
			if (row_shown_differs(&r->info, &ci[j])) {
				r->info = ci[j];
				g_signal_emit(r, row_changed_signal, 0);
				/* same item in place: lets the sort model move it */
				g_list_store_splice(ui.store, pos, 1, (gpointer *)&r, 1);
			} else {
				r->info = ci[j];
			}
			pos++;
			k++;
			j++;
		}
	}
	flush_run(&pos, &nrem, add);
	for (guint i = 0; i < n_old; i++)
		g_object_unref(old[i]);
	g_free(old);
	g_ptr_array_unref(add);
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static gboolean strv_equal(char **a, char **b)
{
	if (!a || !b)
		return a == b;
	return g_strv_equal((const char *const *)a, (const char *const *)b);
}

/* The target drop-down lists rooms (scope Room) or nicknames (scope User); it is
 * rebuilt only when that list changes, keeping the chosen entry. */
static void refresh_targets(void)
{
	guint scope = gtk_drop_down_get_selected(ui.scope);
	GPtrArray *want = g_ptr_array_new_with_free_func(g_free);
	guint n_have = g_list_model_get_n_items(G_LIST_MODEL(ui.targets));
	char **have = g_new0(char *, n_have + 1);
	char *chosen = NULL;
	GtkStringObject *so;

	if (scope == SCOPE_ROOM) {
		struct rd_room_entry *rooms = NULL;
		size_t nr = 0;
		if (rd_server_rooms(ui.server, &rooms, &nr) == 0)
			for (size_t i = 0; i < nr; i++)
				g_ptr_array_add(want, g_strdup(rooms[i].name));
		free(rooms);
	} else if (scope == SCOPE_USER && ui.nicks) {
		for (char **p = ui.nicks; *p; p++)
			g_ptr_array_add(want, g_strdup(*p));
	}
	g_ptr_array_add(want, NULL);
	for (guint i = 0; i < n_have; i++)
		have[i] = g_strdup(gtk_string_list_get_string(ui.targets, i));
	if (!strv_equal(have, (char **)want->pdata)) {
		so = gtk_drop_down_get_selected_item(ui.target);
		chosen = so ? g_strdup(gtk_string_object_get_string(so)) : NULL;
		gtk_string_list_splice(ui.targets, 0, n_have, (const char *const *)want->pdata);
		if (chosen) {
			for (guint i = 0; i + 1 < want->len; i++) {
				if (strcmp(want->pdata[i], chosen) == 0) {
					gtk_drop_down_set_selected(ui.target, i);
					break;
				}
			}
		}
		g_free(chosen);
	}
	gtk_widget_set_sensitive(GTK_WIDGET(ui.target), scope != SCOPE_EVERYONE);
	g_strfreev(have);
	g_ptr_array_unref(want);
}

static void keys_refresh(int force);

/* ---- the clients of the other servers (a cluster) ------------------------------------- */

struct others_result {
	struct rd_client_info *v;
	size_t n;
};

static void others_result_free(gpointer p)
{
	struct others_result *r = p;
	free(r->v);
	g_free(r);
}

/* The worker thread: the only place that calls ui.others (it may wait on Redis). */
static void others_fetch(GTask *task, gpointer src, gpointer data, GCancellable *cancel)
{
	int (*fn)(void *, struct rd_client_info **, size_t *) = ui.others;
	struct others_result *r = g_new0(struct others_result, 1);
	(void)src;
	(void)cancel;
	if (fn(data, &r->v, &r->n) != 0) {
		r->v = NULL;
		r->n = 0;
	}
	g_task_return_pointer(task, r, others_result_free);
}

static int cmp_info_id(const void *a, const void *b)
{
	uint32_t x = ((const struct rd_client_info *)a)->id,
		 y = ((const struct rd_client_info *)b)->id;
	return x < y ? -1 : x > y;
}

/* Back on the main thread: keep the list (ids of their own), and show it at the next tick. */
static void others_done(GObject *src, GAsyncResult *res, gpointer data)
{
	struct others_result *r = g_task_propagate_pointer(G_TASK(res), NULL);
	(void)src;
	(void)data;
	ui.others_busy = 0;
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++) {
		char key[RD_NICK_BUF + 128];
		snprintf(key, sizeof key, "%s@%s", r->v[i].nick, r->v[i].activity);
		r->v[i].id = OTHERS_ID_BIT | (g_str_hash(key) & ~OTHERS_ID_BIT);
	}
	qsort(r->v, r->n, sizeof(*r->v), cmp_info_id);
	free(ui.other);
	ui.other = r->v;
	ui.nother = r->n;
	r->v = NULL;
	others_result_free(r);
	ui.dirty = 1;
}

static void others_maybe_fetch(void)
{
	GTask *task;

	if (!ui.others || ui.others_busy ||
	    g_get_monotonic_time() - ui.others_last_us < OTHERS_EVERY_MS * 1000)
		return;
	ui.others_busy = 1;
	ui.others_last_us = g_get_monotonic_time();
	task = g_task_new(NULL, NULL, others_done, NULL);
	g_task_set_task_data(task, ui.others_user, NULL);
	g_task_run_in_thread(task, others_fetch);
	g_object_unref(task);
}

static void refresh(void)
{
	struct rd_client_info *ci = NULL;
	struct rd_server_stats st;
	size_t n = 0, nreg = 0;
	AdmRow *sel;
	uint32_t sel_id;
	unsigned transfers = 0;
	char in[32], out[32], *text;

	ui.last_refresh_us = g_get_monotonic_time();
	ui.dirty = 0;
	if (rd_server_clients(ui.server, &ci, &n) != 0) {
		ci = NULL;
		n = 0;
	}
	size_t nlocal = n;
	others_maybe_fetch();
	if (ui.nother) { /* after the local ones: their ids are all above */
		struct rd_client_info *all = realloc(ci, (n + ui.nother) * sizeof(*ci));
		if (all) {
			memcpy(all + n, ui.other, ui.nother * sizeof(*ci));
			ci = all;
			n += ui.nother;
		}
	}
	sel = selected_row();
	sel_id = sel ? sel->info.id : 0;
	merge_rows(ci, n);
	if (sel_id) {
		sel = selected_row();
		if (!sel || sel->info.id != sel_id)
			select_id(sel_id);
	}

	g_strfreev(ui.nicks);
	ui.nicks = g_new0(char *, n + 1);
	for (size_t i = 0; i < n; i++) {
		if (i < nlocal && ci[i].activity[0])
			transfers++;
		if (ci[i].nick[0])
			ui.nicks[nreg++] = g_strdup(ci[i].nick);
	}
	qsort(ui.nicks, nreg, sizeof(char *), cmp_strp);

	rd_server_stats(ui.server, &st);
	fmt_bytes(st.bytes_in, in, sizeof in);
	fmt_bytes(st.bytes_out, out, sizeof out);
	char more[64] = "";
	if (n > nlocal)
		snprintf(more, sizeof more, " + %zu on other servers", n - nlocal);
	text = g_strdup_printf("%zu client%s (%zu registered)%s \u00b7 %u room%s \u00b7 "
			       "%u transfer%s in progress \u00b7 in %s \u00b7 out %s",
			       nlocal, nlocal == 1 ? "" : "s", nreg - (n - nlocal), more, st.rooms,
			       st.rooms == 1 ? "" : "s", transfers, transfers == 1 ? "" : "s", in,
			       out);
	gtk_label_set_text(ui.summary, text);
	g_free(text);
	free(ci);
	refresh_targets();
	update_kick_sensitivity();
	keys_refresh(0);
}

/* ---- the log pane --------------------------------------------------------------------- */

static const char *who(const struct rd_event *ev, char *buf, size_t cap)
{
	if (ev->nick[0])
		esc(ev->nick, buf, cap);
	else if (ev->ip[0])
		snprintf(buf, cap, "%s:%u", ev->ip, (unsigned)ev->port);
	else if (ev->client_id)
		snprintf(buf, cap, "#%" PRIu32, ev->client_id);
	else
		snprintf(buf, cap, "server");
	return buf;
}

/* "uploading a.pdf 45%": a percentage other than 0% at the end */
static int is_progress_update(const char *text)
{
	size_t n = strlen(text);

	return n >= 2 && text[n - 1] == '%' &&
	       !(text[n - 2] == '0' && (n == 2 || text[n - 3] == ' '));
}

/* 1 if text already starts with the nickname as a word ("alice uploaded ..."). */
static int names_nick(const char *text, const char *nick)
{
	size_t n = strlen(nick);

	return n > 0 && strncmp(text, nick, n) == 0 && text[n] == ' ';
}

/* Log one event; returns 1 if it changes what the table shows. Every text from the
 * wire (nicknames, rooms, reasons, file names in the application's texts) is escaped. */
static int log_event(const struct rd_event *ev)
{
	char w[96], room[96], text[sizeof ev->text * 4];
	uint64_t t = ev->time_ms ? ev->time_ms : now_ms();

	who(ev, w, sizeof w);
	esc(ev->room, room, sizeof room);
	esc(ev->text, text, sizeof text);
	switch (ev->kind) {
	case RD_EV_CONNECTED:
		log_line(t, "connection #%" PRIu32 " from %s:%u", ev->client_id, ev->ip,
			 (unsigned)ev->port);
		return 1;
	case RD_EV_REGISTERED:
		log_line(t, "%s:%u registered as %s", ev->ip, (unsigned)ev->port, w);
		return 1;
	case RD_EV_JOINED:
		log_line(t, "%s joined %s", w, room);
		return 1;
	case RD_EV_LEFT:
		log_line(t, "%s left %s", w, room);
		return 1;
	case RD_EV_DISCONNECTED:
		log_line(t, "%s disconnected%s%s", w, text[0] ? ": " : "", text);
		return 1;
	case RD_EV_KICKED:
		log_line(t, "%s was kicked%s%s", w, text[0] ? ": " : "", text);
		return 1;
	case RD_EV_MESSAGE:
		log_line(t, "%s sent a message%s%s", w, room[0] ? " in " : "", room);
		return 1;
	case RD_EV_ACTIVITY:
		/* The table shows progress live; the log keeps the start. The end is the
		 * application's own line ("alice uploaded ..."), so "idle" is not logged. */
		if (ev->text[0] && !is_progress_update(ev->text)) {
			size_t head = strlen(text);

			(void)activity_percent(text, &head); /* "uploading a.pdf", not "... 0%" */
			log_line(t, "%s: %.*s", w, (int)head, text);
		}
		return 1;
	case RD_EV_REFUSED:
		log_line(t, "refused %s: %s", w, text);
		return 1;
	case RD_EV_BROADCAST:
		log_line(t, "broadcast: %s", text);
		return 0;
	case RD_EV_ERROR:
		log_line(t, "error from %s: %s", w, text);
		return 0;
	case RD_EV_INFO:
		/* "alice uploaded a.pdf": the text names the client already */
		if (!ev->nick[0] || names_nick(ev->text, ev->nick))
			log_line(t, "%s", text);
		else
			log_line(t, "%s: %s", w, text);
		return 1;
	case RD_EV_STOPPING:
		log_line(t, "server stopping%s%s", text[0] ? ": " : "", text);
		return 0;
	}
	log_line(t, "event %d from %s: %s", (int)ev->kind, w, text);
	return 1;
}

/* The log follows new lines while it is scrolled to the bottom; scrolling up stops that
 * until the administrator scrolls back down. The flag is kept from the adjustment's
 * signals because its values lag behind an insertion until the next layout. */
static void log_value_changed(GtkAdjustment *a, gpointer data)
{
	(void)data;
	ui.log_follow = gtk_adjustment_get_value(a) + gtk_adjustment_get_page_size(a) >=
			gtk_adjustment_get_upper(a) - 8.0;
}

static void log_bounds_changed(GtkAdjustment *a, gpointer data)
{
	(void)data;
	if (ui.log_follow)
		gtk_adjustment_set_value(a, gtk_adjustment_get_upper(a) -
						    gtk_adjustment_get_page_size(a));
}

/* One insertion per tick, then trim to LOG_KEEP lines once LOG_SLACK more have piled up. */
static void log_flush(void)
{
	GtkTextIter a, b;
	int lines;

	if (ui.log_pending->len == 0)
		return;
	gtk_text_buffer_get_end_iter(ui.logbuf, &a);
	gtk_text_buffer_insert(ui.logbuf, &a, ui.log_pending->str, (int)ui.log_pending->len);
	g_string_truncate(ui.log_pending, 0);
	lines = gtk_text_buffer_get_line_count(ui.logbuf);
	if (lines > LOG_KEEP + LOG_SLACK) {
		gtk_text_buffer_get_start_iter(ui.logbuf, &a);
		gtk_text_buffer_get_iter_at_line(ui.logbuf, &b, lines - LOG_KEEP);
		gtk_text_buffer_delete(ui.logbuf, &a, &b);
	}
}

/* ---- the tick ----------------------------------------------------------------------- */

static void close_window_now(void)
{
	if (ui.dialog)
		gtk_window_destroy(ui.dialog);
	if (ui.win)
		gtk_window_destroy(ui.win);
}

static gboolean tick(gpointer data)
{
	struct evq tmp;
	unsigned long dropped;
	size_t first;
	gint64 since;

	(void)data;
	if (atomic_load(&quit_requested)) {
		ui.tick_id = 0;
		close_window_now();
		return G_SOURCE_REMOVE;
	}

	pthread_mutex_lock(&q_lock);
	tmp = q_pending;
	q_pending = ui.drain;
	ui.drain = tmp;
	dropped = q_dropped;
	q_dropped = 0;
	pthread_mutex_unlock(&q_lock);

	/* a flood: only the newest LOG_KEEP events would stay in the pane anyway */
	first = ui.drain.n > LOG_KEEP ? ui.drain.n - LOG_KEEP : 0;
	if (first || dropped) {
		log_line(now_ms(), "(%lu events not shown: too many at once)",
			 (unsigned long)first + dropped);
		ui.dirty = 1;
	}
	for (size_t i = 0; i < ui.drain.n; i++) {
		if (i < first) {
			ui.dirty = 1;
			continue;
		}
		if (log_event(&ui.drain.v[i]))
			ui.dirty = 1;
	}
	ui.drain.n = 0;

	since = (g_get_monotonic_time() - ui.last_refresh_us) / 1000;
	if ((ui.dirty && since >= REFRESH_MIN_MS) || since >= REFRESH_MAX_MS)
		refresh();
	log_flush();
	return G_SOURCE_CONTINUE;
}

/* ---- modal dialogs -------------------------------------------------------------------- */

typedef void (*confirm_fn)(const char *entry_text, void *arg);

struct confirm {
	confirm_fn fn;
	void *arg;
	GDestroyNotify free_arg;
	GtkEntry *entry;
	int done;
};

static void confirm_free(gpointer p)
{
	struct confirm *c = p;

	if (c->free_arg)
		c->free_arg(c->arg);
	g_free(c);
}

static void dialog_destroyed(GtkWidget *w, gpointer data)
{
	(void)data;
	if (ui.dialog == GTK_WINDOW(w))
		ui.dialog = NULL;
	if (ui.win)
		update_kick_sensitivity();
}

static void confirm_ok(GtkWidget *w, gpointer data)
{
	GtkWindow *dlg = GTK_WINDOW(gtk_widget_get_root(w));
	struct confirm *c = data;

	if (c->done)
		return;
	c->done = 1;
	c->fn(c->entry ? gtk_editable_get_text(GTK_EDITABLE(c->entry)) : NULL, c->arg);
	gtk_window_destroy(dlg);
}

static void confirm_cancel(GtkWidget *w, gpointer data)
{
	(void)data;
	gtk_window_destroy(GTK_WINDOW(gtk_widget_get_root(w)));
}

/* A modal window with a message, an optional entry and Cancel / confirm buttons.
 * Enter (in the entry or on the focused confirm button) confirms; Escape cancels. */
static void confirm_dialog(const char *title, const char *markup, const char *entry_label,
			   const char *confirm_label, const char *name, confirm_fn fn, void *arg,
			   GDestroyNotify free_arg)
{
	GtkWidget *dlg, *box, *msg, *buttons, *cancel, *ok;
	GtkEventController *keys;
	struct confirm *c = g_new0(struct confirm, 1);

	c->fn = fn;
	c->arg = arg;
	c->free_arg = free_arg;
	if (ui.dialog)
		gtk_window_destroy(ui.dialog);

	dlg = gtk_window_new();
	gtk_window_set_title(GTK_WINDOW(dlg), title);
	gtk_window_set_transient_for(GTK_WINDOW(dlg), ui.win);
	gtk_window_set_modal(GTK_WINDOW(dlg), TRUE);
	gtk_window_set_destroy_with_parent(GTK_WINDOW(dlg), TRUE);
	gtk_window_set_resizable(GTK_WINDOW(dlg), FALSE);
	gtk_window_set_default_size(GTK_WINDOW(dlg), 420, -1);
	gtk_widget_set_name(dlg, name);
	g_object_set_data_full(G_OBJECT(dlg), "adm-confirm", c, confirm_free);

	box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
	gtk_widget_set_margin_top(box, 18);
	gtk_widget_set_margin_bottom(box, 18);
	gtk_widget_set_margin_start(box, 18);
	gtk_widget_set_margin_end(box, 18);
	msg = gtk_label_new(NULL);
	gtk_label_set_markup(GTK_LABEL(msg), markup);
	gtk_label_set_wrap(GTK_LABEL(msg), TRUE);
	gtk_label_set_xalign(GTK_LABEL(msg), 0.0f);
	gtk_box_append(GTK_BOX(box), msg);

	buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
	gtk_widget_set_halign(buttons, GTK_ALIGN_END);
	cancel = gtk_button_new_with_mnemonic("_Cancel");
	ok = gtk_button_new_with_mnemonic(confirm_label);
	gtk_widget_add_css_class(ok, "destructive-action");
	set_accessible_label(cancel, "dialog-cancel", "Cancel");
	set_accessible_label(ok, "dialog-confirm", confirm_label);
	g_signal_connect(cancel, "clicked", G_CALLBACK(confirm_cancel), NULL);
	g_signal_connect(ok, "clicked", G_CALLBACK(confirm_ok), c);
	gtk_box_append(GTK_BOX(buttons), cancel);
	gtk_box_append(GTK_BOX(buttons), ok);

	if (entry_label) {
		GtkWidget *lab = gtk_label_new_with_mnemonic(entry_label);
		GtkWidget *entry = gtk_entry_new();
		gtk_label_set_xalign(GTK_LABEL(lab), 0.0f);
		gtk_label_set_mnemonic_widget(GTK_LABEL(lab), entry);
		gtk_entry_set_max_length(GTK_ENTRY(entry), RD_REASON_MAX);
		gtk_entry_set_placeholder_text(GTK_ENTRY(entry), DEFAULT_KICK_REASON);
		set_accessible_label(entry, "kick-reason", "Reason");
		g_signal_connect(entry, "activate", G_CALLBACK(confirm_ok), c);
		gtk_box_append(GTK_BOX(box), lab);
		gtk_box_append(GTK_BOX(box), entry);
		c->entry = GTK_ENTRY(entry);
	}
	gtk_box_append(GTK_BOX(box), buttons);
	gtk_window_set_child(GTK_WINDOW(dlg), box);

	/* Escape cancels */
	keys = GTK_EVENT_CONTROLLER(gtk_shortcut_controller_new());
	gtk_shortcut_controller_add_shortcut(
		GTK_SHORTCUT_CONTROLLER(keys),
		gtk_shortcut_new(gtk_keyval_trigger_new(GDK_KEY_Escape, 0),
				 gtk_named_action_new("window.close")));
	gtk_widget_add_controller(dlg, keys);

	g_signal_connect(dlg, "destroy", G_CALLBACK(dialog_destroyed), NULL);
	ui.dialog = GTK_WINDOW(dlg);
	update_kick_sensitivity();
	gtk_window_present(GTK_WINDOW(dlg));
	gtk_widget_grab_focus(c->entry ? GTK_WIDGET(c->entry) : ok);
}

/* ---- kick ------------------------------------------------------------------------------ */

static void do_kick(const char *reason, void *arg)
{
	const char *nick = arg;
	int rc;

	if (!reason || !*reason)
		reason = DEFAULT_KICK_REASON;
	rc = rd_server_kick(ui.server, nick, reason);
	if (rc == 0)
		set_status("Kicked %s (%s)", nick, reason);
	else
		set_status("Could not kick %s: %s", nick, rd_strerror(rc));
	ui.dirty = 1;
}

static void kick_activated(GSimpleAction *a, GVariant *param, gpointer data)
{
	AdmRow *r = selected_row();
	char *markup, *title;

	(void)a;
	(void)param;
	(void)data;
	if (!r) {
		set_status("Select a client to kick first");
		return;
	}
	if (!r->info.nick[0]) {
		set_status("%s:%u has not registered a nickname yet", r->info.ip,
			   (unsigned)r->info.port);
		return;
	}
	markup = g_markup_printf_escaped(
		"<b><big>Kick %s?</big></b>\n\n%s:%u%s%s. The connection is closed and "
		"everyone else is told.",
		r->info.nick, r->info.ip, (unsigned)r->info.port, r->info.room[0] ? ", in " : "",
		r->info.room);
	title = g_strdup_printf("Kick %s", r->info.nick);
	confirm_dialog(title, markup, "_Reason (optional):", "_Kick", "kick-dialog", do_kick,
		       g_strdup(r->info.nick), g_free);
	g_free(title);
	g_free(markup);
}

/* ---- broadcast ------------------------------------------------------------------------- */

static void send_broadcast(GtkWidget *w, gpointer data)
{
	const char *text = gtk_editable_get_text(GTK_EDITABLE(ui.bcast));
	guint scope = gtk_drop_down_get_selected(ui.scope);
	GtkStringObject *so = gtk_drop_down_get_selected_item(ui.target);
	const char *target = so ? gtk_string_object_get_string(so) : NULL;
	static const uint8_t wire_scope[] = { RD_SCOPE_ALL, RD_SCOPE_ROOM, RD_SCOPE_USER };
	unsigned delivered = 0;
	int rc;

	(void)w;
	(void)data;
	if (!*text) {
		set_status("Type a message to broadcast first");
		return;
	}
	if (scope > SCOPE_USER)
		scope = SCOPE_EVERYONE;
	if (scope == SCOPE_EVERYONE) {
		target = NULL;
	} else if (!target || !*target) {
		set_status("Choose a %s to send to", scope == SCOPE_ROOM ? "room" : "user");
		return;
	}
	rc = rd_server_broadcast(ui.server, wire_scope[scope], target, text, &delivered);
	if (rc == 0) {
		set_status("Broadcast to %s%s: delivered to %u client%s",
			   scope == SCOPE_EVERYONE ? "everyone" :
			   scope == SCOPE_ROOM     ? "room " :
						     "",
			   target ? target : "", delivered, delivered == 1 ? "" : "s");
		gtk_editable_set_text(GTK_EDITABLE(ui.bcast), "");
	} else {
		set_status("Broadcast failed: %s", rd_strerror(rc));
	}
}

static void scope_changed(GObject *o, GParamSpec *p, gpointer data)
{
	(void)o;
	(void)p;
	(void)data;
	refresh_targets();
	target_follow_selection();
}

/* ---- window actions ---------------------------------------------------------------------- */

static void close_activated(GSimpleAction *a, GVariant *param, gpointer data)
{
	(void)a;
	(void)param;
	(void)data;
	gtk_window_close(ui.win);
}

static void focus_broadcast_activated(GSimpleAction *a, GVariant *param, gpointer data)
{
	(void)a;
	(void)param;
	(void)data;
	gtk_widget_grab_focus(GTK_WIDGET(ui.bcast));
}

static void focus_clients_activated(GSimpleAction *a, GVariant *param, gpointer data)
{
	(void)a;
	(void)param;
	(void)data;
	if (!selected_row() && g_list_model_get_n_items(G_LIST_MODEL(ui.sel)) > 0)
		gtk_single_selection_set_selected(ui.sel, 0);
	gtk_widget_grab_focus(GTK_WIDGET(ui.view));
}

static void close_window_idle(gpointer data)
{
	(void)data;
	close_window_now();
}

static void do_close(const char *unused, void *arg)
{
	(void)unused;
	(void)arg;
	ui.close_confirmed = 1;
	/* after the dialog is gone */
	g_idle_add_once(close_window_idle, NULL);
}

static gboolean on_close_request(GtkWindow *w, gpointer data)
{
	struct rd_client_info *ci = NULL;
	size_t n = 0;
	unsigned busy = 0;
	char *markup;

	(void)w;
	(void)data;
	if (ui.close_confirmed || atomic_load(&quit_requested))
		return FALSE;
	if (rd_server_clients(ui.server, &ci, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			busy += ci[i].activity[0] != '\0';
		free(ci);
	}
	if (busy == 0)
		return FALSE;
	markup = g_strdup_printf("<b><big>Stop the server?</big></b>\n\n"
				 "%u transfer%s in progress. Closing this window stops the server "
				 "and interrupts %s.",
				 busy, busy == 1 ? " is" : "s are", busy == 1 ? "it" : "them");
	confirm_dialog("Stop the server?", markup, NULL, "_Stop Server", "close-dialog", do_close,
		       NULL, NULL);
	g_free(markup);
	return TRUE;
}

static void on_window_destroy(GtkWidget *w, gpointer data)
{
	(void)w;
	(void)data;
	if (ui.tick_id) {
		g_source_remove(ui.tick_id);
		ui.tick_id = 0;
	}
	ui.win = NULL;
}

/* ---- admission and keys (issue 12): refused keys, operators, admit / revoke / release /
 * invite. The program does the work (admin_ui_ops, logged in the server's log); the
 * window asks first, says what happened in the status line and its log. ---------------- */

#define KEYS_REFRESH_US (2 * G_USEC_PER_SEC) /* the operators come from the database */

/* The text of a list row (set when the row is made), for Ctrl+C and the admit dialog. */
static const char *row_text(GtkWidget *row, const char *what)
{
	return row ? g_object_get_data(G_OBJECT(row), what) : NULL;
}

static void remove_rows(GtkListBox *list)
{
	GtkWidget *child;

	while ((child = gtk_widget_get_first_child(GTK_WIDGET(list))) != NULL)
		gtk_list_box_remove(list, child);
}

static void admit_row_clicked(GtkWidget *w, gpointer data);

/* One row: its text (selectable by Ctrl+C), and an Admit button for a refused key. */
static void add_row(GtkListBox *list, const char *text, const char *fp, int admit_button)
{
	GtkWidget *row = gtk_list_box_row_new(), *box, *lab;

	box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
	lab = gtk_label_new(text);
	gtk_label_set_xalign(GTK_LABEL(lab), 0.0f);
	gtk_label_set_ellipsize(GTK_LABEL(lab), PANGO_ELLIPSIZE_END);
	gtk_widget_set_hexpand(lab, TRUE);
	gtk_widget_set_tooltip_text(lab, text);
	gtk_box_append(GTK_BOX(box), lab);
	if (admit_button && fp[0]) {
		GtkWidget *b = gtk_button_new_with_label("Admit");
		gtk_widget_set_tooltip_text(b, "Admit this key (or Enter on the row)");
		g_signal_connect(b, "clicked", G_CALLBACK(admit_row_clicked), row);
		gtk_box_append(GTK_BOX(box), b);
	}
	gtk_list_box_row_set_child(GTK_LIST_BOX_ROW(row), box);
	g_object_set_data_full(G_OBJECT(row), "text", g_strdup(text), g_free);
	g_object_set_data_full(G_OBJECT(row), "fp", g_strdup(fp), g_free);
	gtk_list_box_append(list, row);
}

/* Rebuild list from lines ("fp\ttext" each) only when they changed since last time. */
static void set_rows(GtkListBox *list, char **sig, GString *lines, int admit_button,
		     const char *empty)
{
	char **v;

	if (*sig && !strcmp(*sig, lines->str))
		return;
	g_free(*sig);
	*sig = g_strdup(lines->str);
	remove_rows(list);
	v = g_strsplit(lines->str, "\n", -1);
	for (char **l = v; *l; l++) {
		char *tab = strchr(*l, '\t');
		if (!**l || !tab)
			continue;
		*tab = '\0';
		add_row(list, tab + 1, *l, admit_button);
	}
	if (!lines->len)
		add_row(list, empty, "", 0);
	g_strfreev(v);
}

static void keys_refresh(int force)
{
	struct admin_ui_refused r[64];
	struct admin_ui_operator o[256];
	GString *lines;
	size_t n;
	char when[32], nick[96], fp[RD_TLS_FP_TEXT_LEN + 8];

	if (!ui.has_ops || !ui.refused_list)
		return;
	lines = g_string_new(NULL);
	n = ui.ops.refused ? ui.ops.refused(ui.ops.user, r, G_N_ELEMENTS(r)) : 0;
	for (size_t i = 0; i < n; i++) {
		fmt_time(r[i].last_ms, when, sizeof when);
		esc(r[i].nick, nick, sizeof nick);
		g_string_append_printf(lines, "%s\t%s \u2014 %s from %s, %u time%s, last %s\n",
				       r[i].fingerprint,
				       r[i].fingerprint[0] ? r[i].fingerprint : "(no key)", nick,
				       r[i].ip, r[i].count, r[i].count == 1 ? "" : "s", when);
	}
	set_rows(ui.refused_list, &ui.refused_sig, lines, 1, "No key refused");
	if (force || g_get_monotonic_time() - ui.ops_refresh_us >= KEYS_REFRESH_US) {
		ui.ops_refresh_us = g_get_monotonic_time();
		g_string_truncate(lines, 0);
		n = ui.ops.operators ? ui.ops.operators(ui.ops.user, o, G_N_ELEMENTS(o)) : 0;
		for (size_t i = 0; i < n; i++) {
			snprintf(fp, sizeof fp, "%s", o[i].fingerprint);
			g_string_append_printf(lines, "%s\t%s: %s\n", fp, o[i].room,
					       o[i].fingerprint);
		}
		set_rows(ui.op_list, &ui.op_sig, lines, 0, "No operators");
	}
	g_string_free(lines, TRUE);
}

static void copy_text(const char *text)
{
	gdk_clipboard_set_text(gtk_widget_get_clipboard(GTK_WIDGET(ui.win)), text);
}

/* After an action: the status line (and the window's log) says what the program did. */
static void action_done(int rc, const char *msg)
{
	set_status("%s%s", rc == 0 ? "" : "Not done: ", msg);
	keys_refresh(1);
	ui.dirty = 1;
}

static void do_admit(const char *unused, void *arg)
{
	char msg[512];
	int rc;

	(void)unused;
	rc = ui.ops.admit(ui.ops.user, arg, 1, msg, sizeof msg);
	action_done(rc, msg);
}

static void admit_dialog(const char *fp, const char *about)
{
	char *markup;

	if (!fp || !fp[0]) {
		set_status("That client showed no key: there is nothing to admit");
		return;
	}
	markup = g_markup_printf_escaped("<b><big>Admit this key?</big></b>\n\n%s\n\n%s\n\n"
					 "Its owner can then use this server.",
					 fp, about ? about : "");
	confirm_dialog("Admit key", markup, NULL, "_Admit", "admit-dialog", do_admit, g_strdup(fp),
		       g_free);
	g_free(markup);
}

static void admit_row_clicked(GtkWidget *w, gpointer data)
{
	(void)w;
	admit_dialog(row_text(data, "fp"), row_text(data, "text"));
}

static void refused_row_activated(GtkListBox *list, GtkListBoxRow *row, gpointer data)
{
	(void)list;
	(void)data;
	admit_row_clicked(NULL, row);
}

/* win.admit: the refused key whose row has the focus, else the one refused last. */
static void admit_activated(GSimpleAction *a, GVariant *param, gpointer data)
{
	GtkWidget *row;

	(void)a;
	(void)param;
	(void)data;
	if (!ui.refused_list)
		return;
	row = gtk_widget_get_focus_child(GTK_WIDGET(ui.refused_list));
	if (!row || !row_text(row, "fp") || !row_text(row, "fp")[0])
		row = GTK_WIDGET(gtk_list_box_get_row_at_index(ui.refused_list, 0));
	if (!row || !row_text(row, "fp") || !row_text(row, "fp")[0]) {
		set_status("No refused key to admit");
		return;
	}
	admit_row_clicked(NULL, row);
}

static void do_revoke(const char *unused, void *arg)
{
	char msg[512];
	int rc;

	(void)unused;
	rc = ui.ops.admit(ui.ops.user, arg, 0, msg, sizeof msg);
	action_done(rc, msg);
}

/* win.revoke: the key of the selected client. */
static void revoke_activated(GSimpleAction *a, GVariant *param, gpointer data)
{
	AdmRow *r = selected_row();
	char *markup;

	(void)a;
	(void)param;
	(void)data;
	if (!r || !r->info.fingerprint[0]) {
		set_status(r ? "That client showed no key" : "Select a client to revoke first");
		return;
	}
	markup = g_markup_printf_escaped(
		"<b><big>Revoke the key of %s?</big></b>\n\n%s\n\nIt is no longer admitted, and "
		"its connections are closed.",
		r->info.nick[0] ? r->info.nick : r->info.ip, r->info.fingerprint);
	confirm_dialog("Revoke key", markup, NULL, "Re_voke", "revoke-dialog", do_revoke,
		       g_strdup(r->info.fingerprint), g_free);
	g_free(markup);
}

/* The entry of the open dialog: its text, selected, and what it is for. */
static void dialog_entry(const char *text, const char *placeholder, const char *name,
			 const char *label)
{
	struct confirm *c = ui.dialog ? g_object_get_data(G_OBJECT(ui.dialog), "adm-confirm") :
					NULL;

	if (!c || !c->entry)
		return;
	gtk_entry_set_max_length(c->entry, 255);
	gtk_entry_set_placeholder_text(c->entry, placeholder);
	gtk_editable_set_text(GTK_EDITABLE(c->entry), text ? text : "");
	gtk_editable_select_region(GTK_EDITABLE(c->entry), 0, -1);
	set_accessible_label(GTK_WIDGET(c->entry), name, label);
}

static void do_release(const char *nick, void *arg)
{
	char msg[512];
	int rc;

	(void)arg;
	if (!nick || !*nick) {
		set_status("Not done: no nickname given");
		return;
	}
	rc = ui.ops.release(ui.ops.user, nick, msg, sizeof msg);
	action_done(rc, msg);
}

/* win.release: a nickname (the selected client's, or typed). */
static void release_activated(GSimpleAction *a, GVariant *param, gpointer data)
{
	AdmRow *r = selected_row();

	(void)a;
	(void)param;
	(void)data;
	confirm_dialog("Release nickname",
		       "<b><big>Release a nickname?</big></b>\n\nThe key that owns it loses it; "
		       "the next key to register it owns it.",
		       "_Nickname:", "_Release", "release-dialog", do_release, NULL, NULL);
	dialog_entry(r && r->info.nick[0] ? r->info.nick : "", "nickname", "release-nick",
		     "Nickname");
}

static void do_invite(const char *host, void *arg)
{
	char msg[512], link[512];
	int rc;

	(void)arg;
	rc = ui.ops.invite(ui.ops.user, host, link, sizeof link, msg, sizeof msg);
	if (rc == 0) {
		/* the link is for the administrator's eyes: the window's log, the clipboard */
		log_line(now_ms(), "invitation link: %s", link);
		copy_text(link);
		explicit_bzero(link, sizeof link);
	}
	action_done(rc, msg);
}

/* win.invite: a link for one person, one use, 24 hours. */
static void invite_activated(GSimpleAction *a, GVariant *param, gpointer data)
{
	char host[128];
	const char *colon = strrchr(ui.listen, ':');

	(void)a;
	(void)param;
	(void)data;
	snprintf(host, sizeof host, "%.*s", colon ? (int)(colon - ui.listen) : 0, ui.listen);
	if (!strcmp(host, "0.0.0.0") || !strcmp(host, "[::]"))
		host[0] = '\0';
	confirm_dialog("Make an invitation",
		       "<b><big>Make an invitation?</big></b>\n\nA link for one person, good for "
		       "one use within 24 hours: it carries this server's key, and admits the "
		       "key of whoever uses it (roomdrop join-invite LINK). It goes to the log "
		       "below and to the clipboard.",
		       "_Host the invited connect to:", "_Invite", "invite-dialog", do_invite, NULL,
		       NULL);
	dialog_entry(host, "host name or address", "invite-host", "Host");
}

/* win.copy-client: the selected client, with its whole key, to the clipboard. */
static void copy_client_activated(GSimpleAction *a, GVariant *param, gpointer data)
{
	AdmRow *r = selected_row();
	char adm[96] = "", nick[96], *text;

	(void)a;
	(void)param;
	(void)data;
	if (!r) {
		set_status("Select a client to copy first");
		return;
	}
	cell_text(&r->info, COL_ADMISSION, adm, sizeof adm);
	esc(r->info.nick[0] ? r->info.nick : "(registering)", nick, sizeof nick);
	text = g_strdup_printf("%s %s:%u key %s admission %s", nick, r->info.ip,
			       (unsigned)r->info.port,
			       r->info.fingerprint[0] ? r->info.fingerprint : "none", adm);
	copy_text(text);
	gtk_label_set_text(ui.status, "Copied the selected client (with its key)");
	g_free(text);
}

/* Ctrl+C in a list: the focused row's text. */
static gboolean copy_row(GtkWidget *list, GVariant *args, gpointer data)
{
	GtkWidget *row = gtk_widget_get_focus_child(list);

	(void)args;
	(void)data;
	if (row && row_text(row, "text"))
		copy_text(row_text(row, "text"));
	return TRUE;
}

/* The header bar's buttons of the actions. */
static void add_key_buttons(GtkHeaderBar *header)
{
	static const struct {
		const char *label, *action, *tip;
	} acts[] = {
		{ "_Admit\u2026", "win.admit", "Admit the refused key (Ctrl+Shift+A)" },
		{ "Re_voke\u2026", "win.revoke",
		  "Revoke the selected client's key (Ctrl+Shift+R)" },
		{ "_Release\u2026", "win.release", "Free a nickname (Ctrl+Shift+N)" },
		{ "_Invite\u2026", "win.invite", "Make an invitation link (Ctrl+I)" },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(acts); i++) {
		GtkWidget *b = gtk_button_new_with_mnemonic(acts[i].label);
		gtk_actionable_set_action_name(GTK_ACTIONABLE(b), acts[i].action);
		gtk_widget_set_tooltip_text(b, acts[i].tip);
		gtk_header_bar_pack_start(header, b);
	}
}

/* Alt+F, Alt+O: the keyboard to the refused keys / the operators (the first row). */
static void focus_list(GtkListBox *list)
{
	GtkListBoxRow *row = gtk_list_box_get_row_at_index(list, 0);

	if (row) {
		gtk_list_box_select_row(list, row);
		gtk_widget_grab_focus(GTK_WIDGET(row));
	}
}

static void focus_refused_activated(GSimpleAction *a, GVariant *param, gpointer data)
{
	(void)a;
	(void)param;
	(void)data;
	focus_list(ui.refused_list);
}

static void focus_operators_activated(GSimpleAction *a, GVariant *param, gpointer data)
{
	(void)a;
	(void)param;
	(void)data;
	focus_list(ui.op_list);
}

/* The side panel: refused keys (Enter or Admit on a row admits it) and operators. */
static GtkWidget *build_keys(void)
{
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4), *lab, *sw, *list;

	gtk_widget_set_margin_start(box, 6);
	gtk_widget_set_margin_end(box, 6);
	for (int k = 0; k < 2; k++) {
		lab = gtk_label_new(k == 0 ? "Refused keys (Alt+F)" : "Operators (Alt+O)");
		gtk_label_set_xalign(GTK_LABEL(lab), 0.0f);
		gtk_widget_add_css_class(lab, "heading");
		gtk_widget_set_margin_top(lab, 4);
		list = gtk_list_box_new();
		gtk_list_box_set_selection_mode(GTK_LIST_BOX(list), GTK_SELECTION_SINGLE);
		set_accessible_label(list, k == 0 ? "refused-keys" : "operators",
				     k == 0 ? "Keys refused admission" : "Room operators");
		{
			GtkEventController *keys = gtk_shortcut_controller_new();
			gtk_shortcut_controller_add_shortcut(
				GTK_SHORTCUT_CONTROLLER(keys),
				gtk_shortcut_new(gtk_keyval_trigger_new(GDK_KEY_c,
									GDK_CONTROL_MASK),
						 gtk_callback_action_new(copy_row, NULL, NULL)));
			gtk_widget_add_controller(list, keys);
		}
		sw = gtk_scrolled_window_new();
		gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sw), list);
		gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(sw), GTK_POLICY_NEVER,
					       GTK_POLICY_AUTOMATIC);
		gtk_widget_set_vexpand(sw, TRUE);
		gtk_box_append(GTK_BOX(box), lab);
		gtk_box_append(GTK_BOX(box), sw);
		if (k == 0) {
			ui.refused_list = GTK_LIST_BOX(list);
			g_signal_connect(list, "row-activated", G_CALLBACK(refused_row_activated),
					 NULL);
		} else {
			ui.op_list = GTK_LIST_BOX(list);
		}
	}
	gtk_widget_set_size_request(box, 300, -1);
	return box;
}

/* ---- building the window ---------------------------------------------------------------- */

static GtkWidget *build_table(void)
{
	GtkWidget *view = gtk_column_view_new(NULL), *sw;
	GtkColumnViewColumn *cols[NCOLS];
	GtkSorter *sorter;
	GtkSortListModel *sorted;
	GtkEventController *keys;
	static const int widths[NCOLS] = { 120, 70, 140, 110, 165, 165, -1, 110, 130 };

	ui.view = GTK_COLUMN_VIEW(view);
	for (int c = 0; c < NCOLS; c++) {
		GtkListItemFactory *f = gtk_signal_list_item_factory_new();
		g_signal_connect(f, "setup", G_CALLBACK(cell_setup), GINT_TO_POINTER(c));
		g_signal_connect(f, "bind", G_CALLBACK(cell_bind), GINT_TO_POINTER(c));
		g_signal_connect(f, "unbind", G_CALLBACK(cell_unbind), GINT_TO_POINTER(c));
		cols[c] = gtk_column_view_column_new(col_titles[c], f);
		sorter = GTK_SORTER(gtk_custom_sorter_new(row_compare, GINT_TO_POINTER(c), NULL));
		gtk_column_view_column_set_sorter(cols[c], sorter);
		g_object_unref(sorter);
		gtk_column_view_column_set_resizable(cols[c], TRUE);
		if (widths[c] > 0)
			gtk_column_view_column_set_fixed_width(cols[c], widths[c]);
		else
			gtk_column_view_column_set_expand(cols[c], TRUE);
		gtk_column_view_append_column(ui.view, cols[c]);
	}
	gtk_column_view_set_show_column_separators(ui.view, TRUE);
	gtk_column_view_set_reorderable(ui.view, FALSE);

	ui.store = g_list_store_new(ADM_TYPE_ROW);
	sorter = g_object_ref(gtk_column_view_get_sorter(ui.view));
	sorted = gtk_sort_list_model_new(G_LIST_MODEL(g_object_ref(ui.store)), sorter);
	ui.sel = gtk_single_selection_new(G_LIST_MODEL(sorted));
	gtk_single_selection_set_autoselect(ui.sel, FALSE);
	gtk_single_selection_set_can_unselect(ui.sel, TRUE);
	g_signal_connect(ui.sel, "notify::selected-item", G_CALLBACK(on_selection_changed), NULL);
	gtk_column_view_set_model(ui.view, GTK_SELECTION_MODEL(ui.sel));
	/* nicknames A..Z until the administrator clicks another header */
	gtk_column_view_sort_by_column(ui.view, cols[COL_NICK], GTK_SORT_ASCENDING);
	for (int c = 0; c < NCOLS; c++)
		g_object_unref(cols[c]);
	set_accessible_label(view, "clients", "Connected clients");

	/* Delete kicks, but only while the table has the focus (entries keep their Delete) */
	keys = GTK_EVENT_CONTROLLER(gtk_shortcut_controller_new());
	gtk_shortcut_controller_add_shortcut(
		GTK_SHORTCUT_CONTROLLER(keys),
		gtk_shortcut_new(
			gtk_alternative_trigger_new(gtk_keyval_trigger_new(GDK_KEY_Delete, 0),
						    gtk_keyval_trigger_new(GDK_KEY_KP_Delete, 0)),
			gtk_named_action_new("win.kick")));
	gtk_widget_add_controller(view, keys);

	sw = gtk_scrolled_window_new();
	gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sw), view);
	gtk_widget_set_vexpand(sw, TRUE);
	return sw;
}

static GtkWidget *build_log(void)
{
	GtkWidget *tv = gtk_text_view_new(), *sw;
	GtkAdjustment *adj;

	ui.log = GTK_TEXT_VIEW(tv);
	ui.logbuf = gtk_text_view_get_buffer(ui.log);
	gtk_text_view_set_editable(ui.log, FALSE);
	gtk_text_view_set_cursor_visible(ui.log, FALSE);
	gtk_text_view_set_monospace(ui.log, TRUE);
	/* no wrapping: thousands of lines lay out much faster */
	gtk_text_view_set_wrap_mode(ui.log, GTK_WRAP_NONE);
	gtk_text_view_set_left_margin(ui.log, 6);
	set_accessible_label(tv, "log", "Server log");
	sw = gtk_scrolled_window_new();
	gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sw), tv);
	ui.log_follow = 1;
	adj = gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(sw));
	g_signal_connect(adj, "value-changed", G_CALLBACK(log_value_changed), NULL);
	g_signal_connect(adj, "changed", G_CALLBACK(log_bounds_changed), NULL);
	gtk_widget_set_vexpand(sw, TRUE);
	return sw;
}

static GtkWidget *build_broadcast_bar(void)
{
	static const char *const scopes[] = { "Everyone", "Room", "User", NULL };
	GtkWidget *bar = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6), *lab, *entry, *send;
	GtkWidget *scope, *target;

	gtk_widget_set_margin_start(bar, 6);
	gtk_widget_set_margin_end(bar, 6);
	gtk_widget_set_margin_top(bar, 6);
	gtk_widget_set_margin_bottom(bar, 6);

	lab = gtk_label_new_with_mnemonic("_Broadcast to");
	scope = gtk_drop_down_new_from_strings(scopes);
	ui.scope = GTK_DROP_DOWN(scope);
	set_accessible_label(scope, "broadcast-scope", "Broadcast scope");
	g_signal_connect(scope, "notify::selected", G_CALLBACK(scope_changed), NULL);
	gtk_label_set_mnemonic_widget(GTK_LABEL(lab), scope);

	ui.targets = gtk_string_list_new(NULL);
	target = gtk_drop_down_new(G_LIST_MODEL(g_object_ref(ui.targets)),
				   gtk_property_expression_new(GTK_TYPE_STRING_OBJECT, NULL,
							       "string"));
	ui.target = GTK_DROP_DOWN(target);
	gtk_drop_down_set_enable_search(ui.target, TRUE);
	gtk_widget_set_size_request(target, 160, -1);
	gtk_widget_set_sensitive(target, FALSE);
	set_accessible_label(target, "broadcast-target", "Broadcast target (room or user)");

	entry = gtk_entry_new();
	ui.bcast = GTK_ENTRY(entry);
	gtk_widget_set_hexpand(entry, TRUE);
	gtk_entry_set_max_length(ui.bcast, 1000);
	gtk_entry_set_placeholder_text(ui.bcast, "Message to broadcast (Ctrl+L, Enter sends)");
	set_accessible_label(entry, "broadcast-text", "Broadcast message");
	g_signal_connect(entry, "activate", G_CALLBACK(send_broadcast), NULL);

	send = gtk_button_new_with_mnemonic("_Send");
	set_accessible_label(send, "broadcast-send", "Send broadcast");
	g_signal_connect(send, "clicked", G_CALLBACK(send_broadcast), NULL);

	gtk_box_append(GTK_BOX(bar), lab);
	gtk_box_append(GTK_BOX(bar), scope);
	gtk_box_append(GTK_BOX(bar), target);
	gtk_box_append(GTK_BOX(bar), entry);
	gtk_box_append(GTK_BOX(bar), send);
	return bar;
}

static const GActionEntry win_actions[] = {
	{ .name = "kick", .activate = kick_activated },
	{ .name = "close", .activate = close_activated },
	{ .name = "focus-broadcast", .activate = focus_broadcast_activated },
	{ .name = "focus-clients", .activate = focus_clients_activated },
	{ .name = "admit", .activate = admit_activated },
	{ .name = "revoke", .activate = revoke_activated },
	{ .name = "release", .activate = release_activated },
	{ .name = "invite", .activate = invite_activated },
	{ .name = "copy-client", .activate = copy_client_activated },
	{ .name = "focus-refused", .activate = focus_refused_activated },
	{ .name = "focus-operators", .activate = focus_operators_activated },
};

/* The theme gives a progress bar a minimum width of about 150 px, wider than the
 * Activity column; its bar stays narrow so that the file name gets the rest. */
static void add_css(void)
{
	GtkCssProvider *css = gtk_css_provider_new();

	gtk_css_provider_load_from_data(
		css, "progressbar.rd-activity > trough { min-width: 48px; }", -1);
	gtk_style_context_add_provider_for_display(gdk_display_get_default(),
						   GTK_STYLE_PROVIDER(css),
						   GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
	g_object_unref(css);
}

static void on_activate(GtkApplication *app, gpointer data)
{
	GtkWidget *win, *header, *titlebox, *title, *subtitle, *kick, *vbox, *paned, *logbox;
	GtkWidget *loglabel;
	static const char *const accel_kick[] = { "<Control>k", NULL };
	static const char *const accel_close[] = { "<Control>q", "<Control>w", NULL };
	static const char *const accel_bcast[] = { "<Control>l", NULL };
	static const char *const accel_clients[] = { "<Control>t", NULL };
	char *wtitle;

	(void)data;
	if (ui.win) {
		gtk_window_present(ui.win);
		return;
	}
	win = gtk_application_window_new(app);
	ui.win = GTK_WINDOW(win);
	wtitle = g_strdup_printf("roomdrop \u2014 %s", ui.listen);
	gtk_window_set_title(ui.win, wtitle);
	g_free(wtitle);
	gtk_window_set_default_size(ui.win, ui.has_ops ? 1240 : 960, 600);
	gtk_widget_set_name(win, "roomdrop-admin");
	add_css();

	g_action_map_add_action_entries(G_ACTION_MAP(win), win_actions, G_N_ELEMENTS(win_actions),
					NULL);
	ui.kick_action = G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(win), "kick"));
	gtk_application_set_accels_for_action(app, "win.kick", accel_kick);
	gtk_application_set_accels_for_action(app, "win.close", accel_close);
	gtk_application_set_accels_for_action(app, "win.focus-broadcast", accel_bcast);
	gtk_application_set_accels_for_action(app, "win.focus-clients", accel_clients);
	if (ui.has_ops) {
		static const char *const admit[] = { "<Control><Shift>a", NULL };
		static const char *const revoke[] = { "<Control><Shift>r", NULL };
		static const char *const release[] = { "<Control><Shift>n", NULL };
		static const char *const invite[] = { "<Control>i", NULL };
		static const char *const copy[] = { "<Control><Shift>c", NULL };
		static const char *const frefused[] = { "<Alt>f", NULL };
		static const char *const fops[] = { "<Alt>o", NULL };

		gtk_application_set_accels_for_action(app, "win.admit", admit);
		gtk_application_set_accels_for_action(app, "win.revoke", revoke);
		gtk_application_set_accels_for_action(app, "win.release", release);
		gtk_application_set_accels_for_action(app, "win.invite", invite);
		gtk_application_set_accels_for_action(app, "win.copy-client", copy);
		gtk_application_set_accels_for_action(app, "win.focus-refused", frefused);
		gtk_application_set_accels_for_action(app, "win.focus-operators", fops);
	}

	header = gtk_header_bar_new();
	titlebox = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
	gtk_widget_set_valign(titlebox, GTK_ALIGN_CENTER);
	title = gtk_label_new("roomdrop");
	gtk_widget_add_css_class(title, "title");
	{
		/* the address, and the key fingerprint clients are told to compare */
		char *sub =
			ui.fingerprint[0] ?
				g_strdup_printf("%s \u2014 TLS key %s", ui.listen, ui.fingerprint) :
				g_strdup_printf("%s \u2014 plaintext (TLS off)", ui.listen);
		subtitle = gtk_label_new(sub);
		g_free(sub);
	}
	gtk_label_set_selectable(GTK_LABEL(subtitle), TRUE);
	gtk_widget_add_css_class(subtitle, "subtitle");
	gtk_widget_add_css_class(subtitle, "dim-label");
	gtk_box_append(GTK_BOX(titlebox), title);
	gtk_box_append(GTK_BOX(titlebox), subtitle);
	gtk_header_bar_set_title_widget(GTK_HEADER_BAR(header), titlebox);
	kick = gtk_button_new_with_mnemonic("_Kick\u2026");
	gtk_actionable_set_action_name(GTK_ACTIONABLE(kick), "win.kick");
	gtk_widget_set_tooltip_text(kick,
				    "Kick the selected client (Ctrl+K, or Delete in the table)");
	set_accessible_label(kick, "kick-button", "Kick the selected client");
	gtk_header_bar_pack_start(GTK_HEADER_BAR(header), kick);
	if (ui.has_ops)
		add_key_buttons(GTK_HEADER_BAR(header));
	gtk_window_set_titlebar(ui.win, header);

	vbox = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
	ui.summary = GTK_LABEL(gtk_label_new("starting\u2026"));
	gtk_label_set_xalign(ui.summary, 0.0f);
	gtk_widget_set_margin_start(GTK_WIDGET(ui.summary), 8);
	gtk_widget_set_margin_top(GTK_WIDGET(ui.summary), 6);
	gtk_widget_set_margin_bottom(GTK_WIDGET(ui.summary), 6);
	set_accessible_label(GTK_WIDGET(ui.summary), "summary", "Summary");
	gtk_box_append(GTK_BOX(vbox), GTK_WIDGET(ui.summary));

	paned = gtk_paned_new(GTK_ORIENTATION_VERTICAL);
	gtk_paned_set_start_child(GTK_PANED(paned), build_table());
	logbox = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
	/* Alt+L moves the keyboard focus to the log (to select and copy from it) */
	loglabel = gtk_label_new_with_mnemonic("Server _log");
	gtk_label_set_xalign(GTK_LABEL(loglabel), 0.0f);
	gtk_widget_add_css_class(loglabel, "heading");
	gtk_widget_set_margin_start(loglabel, 8);
	gtk_widget_set_margin_top(loglabel, 4);
	gtk_widget_set_margin_bottom(loglabel, 4);
	gtk_box_append(GTK_BOX(logbox), loglabel);
	gtk_box_append(GTK_BOX(logbox), build_log());
	gtk_label_set_mnemonic_widget(GTK_LABEL(loglabel), GTK_WIDGET(ui.log));
	if (ui.has_ops) { /* the keys panel beside the log */
		GtkWidget *hp = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
		gtk_paned_set_start_child(GTK_PANED(hp), logbox);
		gtk_paned_set_end_child(GTK_PANED(hp), build_keys());
		gtk_paned_set_resize_end_child(GTK_PANED(hp), FALSE);
		gtk_paned_set_shrink_end_child(GTK_PANED(hp), FALSE);
		logbox = hp;
	}
	gtk_paned_set_end_child(GTK_PANED(paned), logbox);
	gtk_paned_set_position(GTK_PANED(paned), 300);
	gtk_paned_set_resize_end_child(GTK_PANED(paned), TRUE);
	gtk_widget_set_vexpand(paned, TRUE);
	gtk_box_append(GTK_BOX(vbox), paned);

	gtk_box_append(GTK_BOX(vbox), gtk_separator_new(GTK_ORIENTATION_HORIZONTAL));
	gtk_box_append(GTK_BOX(vbox), build_broadcast_bar());
	ui.status = GTK_LABEL(gtk_label_new(""));
	gtk_label_set_xalign(ui.status, 0.0f);
	gtk_label_set_ellipsize(ui.status, PANGO_ELLIPSIZE_END);
	gtk_widget_add_css_class(GTK_WIDGET(ui.status), "dim-label");
	gtk_widget_set_margin_start(GTK_WIDGET(ui.status), 8);
	gtk_widget_set_margin_bottom(GTK_WIDGET(ui.status), 4);
	set_accessible_label(GTK_WIDGET(ui.status), "status", "Status");
	gtk_box_append(GTK_BOX(vbox), GTK_WIDGET(ui.status));
	gtk_window_set_child(ui.win, vbox);

	g_signal_connect(win, "close-request", G_CALLBACK(on_close_request), NULL);
	g_signal_connect(win, "destroy", G_CALLBACK(on_window_destroy), NULL);

	log_line(now_ms(), "administration window open; server listening on %s", ui.listen);
	refresh();
	log_flush();
	ui.tick_id = g_timeout_add(TICK_MS, tick, NULL);
	gtk_window_present(ui.win);
	gtk_widget_grab_focus(GTK_WIDGET(ui.view));
}

/* ---- admin_ui_run ------------------------------------------------------------------------ */

int admin_ui_run(struct rd_server *s, const struct admin_ui_info *info)
{
	GtkApplication *app;
	int status, shown;

	if (!s || !gtk_init_check())
		return 1;
	memset(&ui, 0, sizeof ui);
	ui.server = s;
	snprintf(ui.listen, sizeof ui.listen, "%s",
		 info && info->listen && *info->listen ? info->listen : "(unknown address)");
	snprintf(ui.fingerprint, sizeof ui.fingerprint, "%s",
		 info && info->fingerprint ? info->fingerprint : "");
	ui.log_pending = g_string_new(NULL);
	if (info) {
		ui.others = info->others;
		ui.others_user = info->others_user;
	}
	if (info && info->ops) {
		ui.ops = *info->ops;
		ui.has_ops = 1;
	}

	pthread_mutex_lock(&q_lock);
	q_open = 1;
	pthread_mutex_unlock(&q_lock);

	/* NON_UNIQUE: several servers may run side by side, each with its own window */
	app = gtk_application_new(APP_ID, G_APPLICATION_NON_UNIQUE);
	g_signal_connect(app, "activate", G_CALLBACK(on_activate), NULL);
	status = g_application_run(G_APPLICATION(app), 0, NULL);
	shown = ui.view != NULL;
	if (ui.win)
		gtk_window_destroy(ui.win);
	if (ui.tick_id)
		g_source_remove(ui.tick_id);
	while (ui.others_busy) /* its worker uses what the caller frees next */
		g_main_context_iteration(NULL, TRUE);
	free(ui.other);
	g_object_unref(app);

	pthread_mutex_lock(&q_lock);
	q_open = 0;
	free(q_pending.v);
	memset(&q_pending, 0, sizeof q_pending);
	q_dropped = 0;
	pthread_mutex_unlock(&q_lock);

	free(ui.drain.v);
	g_strfreev(ui.nicks);
	g_string_free(ui.log_pending, TRUE);
	g_clear_object(&ui.store);
	g_clear_object(&ui.sel);
	g_clear_object(&ui.targets);
	g_free(ui.refused_sig);
	g_free(ui.op_sig);
	memset(&ui, 0, sizeof ui);
	return status == 0 && shown ? 0 : 1;
}
