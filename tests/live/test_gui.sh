#!/usr/bin/env bash
# test_gui.sh - the administrator's window (issue 5), driven the way a person would drive it.
#
# Starts a private Xvfb, the server WITH its window on it (no --headless), and clients;
# then, with real X input events from xdotool:
#   1. checks the table filled in (screenshot before/after differ where the rows are) and
#      keeps a screenshot (build/.../live-logs/gui-screenshot.png; docs/screenshot.png when
#      it is missing or RD_SCREENSHOT=update);
#   1b. copies the log as an administrator would (Alt+L, Ctrl+A, Ctrl+C; read back with
#      xclip): each line names the user once, no "idle" line after gina's finished upload;
#      and frank's stalled upload shows a progress bar in the Activity column;
#   2. selects bob with the keyboard (Ctrl+T, Home, Down: the table is sorted by nickname),
#      opens the kick dialog with Ctrl+K (its title, "Kick bob", proves the selection) and
#      cancels it with Escape: nobody is kicked;
#   3. opens it again, types a reason, presses Enter: bob reads "You were kicked: REASON",
#      the others "bob was kicked";
#   4. Ctrl+L, types a broadcast, presses Enter: every remaining client prints
#      "Message from the server on ...: TEXT"; then the scope drop-down (Alt+B) set to
#      Room, then User, with the target taken from the selected row: only that room /
#      that user gets the message;
#   5. 500 clients connect and leave quickly (tests/helpers/churn_clients, twice): the
#      server still answers, the window still exists and still takes input (a second
#      broadcast typed after the churn arrives);
#   6. Ctrl+Q while frank's upload is stalled half way (tests/helpers/rawput --stop-after):
#      the window asks first; Escape keeps everything running; Ctrl+Q again and Enter:
#      the window closes, the server exits 0, the connected clients are told and exit,
#      and the server's output shows no GTK/GLib criticals.
# Skips (77) only when the server is built without GTK or Xvfb cannot be started.
#
# (file-wide: the small predicates below are called through wait_for, unseen by shellcheck)
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

WAIT=${RD_GUI_WAIT:-15}   # seconds for anything to show up (x3 under ThreadSanitizer)
XKEY_DELAY=60             # ms between synthetic key strokes
SETTLE=0.3                # s for the focus to settle after a shortcut

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"
[[ ${GUI:-1} != 0 ]] || skip "built with GUI=0: the server has no window to test"
libs=""
if command -v ldd >/dev/null 2>&1; then
	# (read all of ldd's output: grep -q in a pipeline could SIGPIPE it under pipefail)
	libs=$(ldd "$BUILD/roomdrop-server" 2>/dev/null || true)
	[[ $libs == *libgtk-4* ]] || skip "$BUILD/roomdrop-server is built without GTK 4 (GUI=0?)"
fi
if [[ $libs == *libtsan* ]]; then
	# SANITIZER=thread: GLib/GTK are not instrumented; see gui-tsan.supp for why
	export TSAN_OPTIONS="suppressions=$RD_ROOT/tests/live/gui-tsan.supp ${TSAN_OPTIONS:-}"
	WAIT=$((WAIT * 3))
	CHURN_N=200 # (every connection is a TLS handshake, ten times slower under TSan)
fi
if [[ $libs == *libasan* ]]; then
	# SANITIZER=address: memory errors still abort the test; leak checking stays with the
	# headless tests, because fontconfig and GTK's loadable modules keep caches until exit
	export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
fi
command -v Xvfb >/dev/null 2>&1 ||
	skip "Xvfb is not installed, so no X server can be started (scripts/install-deps.sh installs it)"
for tool in xdotool xwd convert compare xclip; do
	command -v "$tool" >/dev/null 2>&1 ||
		fail "$tool is missing (scripts/install-deps.sh installs xdotool, x11-apps, imagemagick, xclip)"
done
CHURN=$BUILD/tests/churn_clients
CHURN_N=${CHURN_N:-500}
RAWPUT=$BUILD/tests/rawput
for helper in "$CHURN" "$RAWPUT"; do
	[[ -x $helper ]] || fail "$helper is not built (make tests)"
done

# ---- helpers -----------------------------------------------------------------------------

# wait_for SECONDS CMD...: retry CMD every 0.1 s until it succeeds; 1 if time runs out.
wait_for()
{
	local limit=$(($1 * 10)) i
	shift
	for ((i = 0; i < limit; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

has_line() { grep -qF -- "$2" "$1" 2>/dev/null; }
server_alive() { kill -0 "$SERVER_PID" 2>/dev/null && [[ $(ps -o stat= -p "$SERVER_PID") != Z* ]]; }

# the visible main window (its title starts with "roomdrop"; the dialogs' do not)
main_window() { xdotool search --onlyvisible --name '^roomdrop ' 2>/dev/null | head -n 1; }
find_window() { WIN=$(main_window) && [[ -n $WIN ]]; }
find_dialog() { DLG=$(xdotool search --onlyvisible --name "^$1\$" 2>/dev/null | head -n 1) && [[ -n $DLG ]]; }
dialog_gone() { ! xdotool search --onlyvisible --name "^$1\$" >/dev/null 2>&1; }

focus_main()
{
	find_window || fail "the window is gone"
	xdotool windowfocus --sync "$WIN" || fail "cannot focus the window"
}

keys() { xdotool key --clearmodifiers --delay "$XKEY_DELAY" "$@"; }
type_text() { xdotool type --clearmodifiers --delay 20 -- "$1"; }

shot() { xwd -silent -id "$WIN" | convert xwd:- "png:$1"; }

# select_row N: focus the client table (Ctrl+T), go to its first row, then N rows down
select_row()
{
	local i
	focus_main
	sleep 0.2
	keys ctrl+t
	sleep 0.2
	keys Home
	for ((i = 0; i < $1; i++)); do
		keys Down
	done
	sleep 0.3
}

# pick_scope N: open the scope drop-down (Alt+B, Space) and choose entry N
# (0 Everyone, 1 Room, 2 User). Each step waits for the popover: keys sent before it has
# the keyboard would go to the window behind it.
popover_count() { xdotool search --onlyvisible --class roomdrop-server 2>/dev/null | wc -l; }
popover_open() { (($(popover_count) > n_before)); }
popover_closed() { (($(popover_count) <= n_before)); }
pick_scope()
{
	local i n_before
	focus_main
	sleep 0.2
	n_before=$(popover_count)
	keys alt+b
	sleep 0.3
	keys space
	wait_for "$WAIT" popover_open || fail "the scope drop-down did not open"
	sleep 0.4
	keys Home
	for ((i = 0; i < $1; i++)); do
		keys Down
	done
	sleep 0.2
	keys Return
	wait_for "$WAIT" popover_closed || fail "the scope drop-down did not close"
	sleep 0.3
}

# ---- an X server of our own --------------------------------------------------------------

dispfile=$RD_TMP/xvfb.display
rd_spawn Xvfb -displayfd 9 -screen 0 1280x800x24 -nolisten tcp -noreset \
	9>"$dispfile" >"$RD_TMP/xvfb.log" 2>&1
XVFB_PID=$RD_LAST_PID
xvfb_ready() { [[ $(<"$dispfile") =~ ^[0-9]+$ ]] 2>/dev/null; }
if ! wait_for 10 xvfb_ready; then
	tail -n 5 "$RD_TMP/xvfb.log" >&2 || true
	skip "Xvfb could not be started (no X server for the window)"
fi
kill -0 "$XVFB_PID" 2>/dev/null || skip "Xvfb exited at start (see above)"
DISPLAY=:$(<"$dispfile")
export DISPLAY
unset WAYLAND_DISPLAY
# hermetic GTK: X11 backend, software rendering, never the developer's session bus
export GDK_BACKEND=x11 GSK_RENDERER=cairo DBUS_SESSION_BUS_ADDRESS=unix:path=$RD_TMP/no-bus
xdpyinfo_ok() { xdotool getdisplaygeometry >/dev/null 2>&1; }
wait_for 10 xdpyinfo_ok || skip "Xvfb on $DISPLAY does not answer"
echo "Xvfb on $DISPLAY (pid $XVFB_PID)"

# ---- the server, with its window -----------------------------------------------------------

srvdir=$RD_TMP/server
mkdir -p "$srvdir"
SERVER_LOG=$srvdir/server.log
RD_SERVER_LOGS+=("$SERVER_LOG")
(cd "$srvdir" && exec "$BUILD/roomdrop-server" --listen 127.0.0.1:0 --port-file "$srvdir/port" \
	--store "$srvdir/store" --ctl-socket "$srvdir/ctl.sock" --rooms general,random,music \
	--ping-interval 10m) \
	>"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
RD_PIDS+=("$SERVER_PID")

port_ready() { [[ -s $srvdir/port && $(<"$srvdir/port") =~ ^[0-9]+$ ]]; }
wait_for "$WAIT" port_ready || fail "the server wrote no port within ${WAIT}s"
PORT=$(<"$srvdir/port")
wait_for "$WAIT" find_window || fail "no window appeared within ${WAIT}s (server alive: $(server_alive && echo yes || echo no))"
echo "server pid $SERVER_PID on port $PORT, window $WIN"
geom=$(xdotool getwindowgeometry "$WIN")
echo "$geom"
sleep 1
shot "$RD_TMP/empty.png"

# ---- clients -------------------------------------------------------------------------------

declare -A CPID
start_client()   # NICK ROOM
{
	rd_spawn "$BUILD/roomdrop" --port "$PORT" --nick "$1" --room "$2" listen \
		>"$RD_TMP/$1.out" 2>&1 </dev/null
	CPID[$1]=$RD_LAST_PID
}
start_client alice general
start_client bob general
start_client carol music
start_client dave random
# erin chats through the shell, so the "Last message" column has something to show
# (fd 7 is opened read-write first: opening a FIFO for reading alone would block)
mkfifo "$RD_TMP/erin.in"
exec 7<>"$RD_TMP/erin.in"
rd_on_exit "exec 7>&-"
# (not through rd_spawn: a background command keeps its stdin only when the redirection
# is written on the command itself)
"$BUILD/roomdrop" --port "$PORT" --nick erin --room general shell \
	<"$RD_TMP/erin.in" >"$RD_TMP/erin.out" 2>&1 &
CPID[erin]=$!
RD_PIDS+=("$!")
# the exit trap stops processes in order: the X server goes last
rd__forget "$XVFB_PID"
RD_PIDS+=("$XVFB_PID")

# frank's upload stalls after 3 of 16 chunks: a transfer in progress (Activity column,
# summary line, and the question when the window is closed). The heartbeat is 10 minutes
# (above) so the silent uploader is not dropped while the test runs.
head -c $((4 << 20)) /dev/urandom >"$RD_TMP/report.pdf"
"$RAWPUT" --port "$PORT" --nick frank --room general put "$RD_TMP/report.pdf" \
	--name report.pdf --stop-after 3 >"$RD_TMP/frank.out" 2>&1 </dev/null &
CPID[frank]=$!
RD_PIDS+=("$!")

for n in alice bob carol dave; do
	wait_for "$WAIT" has_line "$RD_TMP/$n.out" "listening in" ||
		fail "client $n did not start listening: $(tail -n 3 "$RD_TMP/$n.out")"
done
wait_for "$WAIT" has_line "$RD_TMP/frank.out" "stopped after 3 chunks" ||
	fail "frank's upload did not start: $(tail -n 3 "$RD_TMP/frank.out")"
echo "hello everyone" >&7 || true
# gina's upload completes: the log gets its start ("uploading") and its end ("added")
echo "minutes of the meeting" >"$RD_TMP/minutes.txt"
"$BUILD/roomdrop" --port "$PORT" --nick gina --room general --quiet put "$RD_TMP/minutes.txt" \
	>"$RD_TMP/gina.out" 2>&1 || fail "gina's put failed: $(cat "$RD_TMP/gina.out")"
sleep 1.5 # a refresh is at most 0.5 s away; leave time for the shell's message too

# ---- 1. the table shows them --------------------------------------------------------------

shot "$RD_TMP/populated.png"
mkdir -p "$BUILD/live-logs"
cp "$RD_TMP/populated.png" "$BUILD/live-logs/gui-screenshot.png"
read -r w h colors < <(identify -format '%w %h %k\n' "$RD_TMP/populated.png")
echo "screenshot: ${w}x${h}, $colors colours"
((w >= 600 && h >= 400)) || fail "screenshot is only ${w}x${h}"
((colors >= 16)) || fail "screenshot has only $colors colours: an empty window?"
# the band under the column titles (rows 1-5) must differ from the empty window's
band=$((w - 20))x170+10+100
diff=$(compare -metric AE -fuzz 10% "$RD_TMP/empty.png[$band]" "$RD_TMP/populated.png[$band]" \
	null: 2>&1 >/dev/null || true)
diff=${diff%% *}
echo "pixels changed where the rows are: $diff"
if ! [[ $diff =~ ^[0-9]+$ ]] || ((diff <= 2000)); then
	fail "the client rows did not appear (changed pixels: $diff)"
fi
if [[ ! -f $RD_ROOT/docs/screenshot.png || ${RD_SCREENSHOT:-} == update ]]; then
	mkdir -p "$RD_ROOT/docs"
	convert "$RD_TMP/populated.png" -strip "png:$RD_ROOT/docs/screenshot.png"
	echo "wrote docs/screenshot.png"
fi

# ---- 1b. the log: each line names the user once, no "idle" after a transfer ----------------

# Alt+L takes the focus to the log; Ctrl+A, Ctrl+C copy it, as an administrator would
copy_log()
{
	focus_main
	sleep 0.2
	keys alt+l
	sleep "$SETTLE"
	keys ctrl+a ctrl+c
	sleep 0.3
	xclip -o -selection clipboard >"$RD_TMP/log.txt" 2>/dev/null
}
log_has() { copy_log && grep -q -- "$1" "$RD_TMP/log.txt"; }
wait_for "$WAIT" log_has "gina added minutes.txt" ||
	fail "the copied log lacks gina's upload: $(tail -n 5 "$RD_TMP/log.txt" 2>/dev/null)"
echo "--- the window's log"
cat "$RD_TMP/log.txt"
grep -q "gina: uploading minutes.txt" "$RD_TMP/log.txt" || fail "the log lacks the upload's start"
grep -q "frank: uploading report.pdf" "$RD_TMP/log.txt" || fail "the log lacks frank's upload"
if grep -E '(^| )(gina|frank): (gina|frank) ' "$RD_TMP/log.txt"; then
	fail "a log line names the user twice"
fi
if grep -E ': idle$' "$RD_TMP/log.txt"; then fail "the log says 'idle' after a transfer"; fi
echo "the log names each user once and has no 'idle' lines"
# the Activity column (from x = 780 in the 960-pixel window): frank's row shows a progress
# bar whose filled part is the theme's blue, so the percentage is never hidden behind an
# ellipsis (his upload is stopped at 3 of 16 chunks: 18%)
read -r ww < <(identify -format '%w\n' "$RD_TMP/populated.png")
bar_px=$(convert "$RD_TMP/populated.png" -crop "$((ww - 790))x220+780+90" +repage \
	-fx '(b-r)>0.3?1:0' -format '%[fx:int(w*h*mean)]' info:)
echo "blue progress-bar pixels in the Activity column: $bar_px"
((bar_px >= 10)) || fail "no progress bar in the Activity column (blue pixels: $bar_px)"

# ---- 2. kick: Cancel does nothing --------------------------------------------------------

select_row 1 # alice, bob, carol, ... (sorted by nickname)
keys ctrl+k
# the dialog's title names the client: it proves the selection too
wait_for "$WAIT" find_dialog "Kick bob" || fail "Ctrl+K opened no 'Kick bob' dialog"
xdotool windowfocus --sync "$DLG"
type_text "never sent"
keys Escape
wait_for "$WAIT" dialog_gone "Kick bob" || fail "Escape did not close the kick dialog"
sleep 1
has_line "$RD_TMP/bob.out" "kicked" && fail "bob was kicked although the dialog was cancelled"
kill -0 "${CPID[bob]}" || fail "bob's client ended although the dialog was cancelled"
echo "kick dialog cancelled: nobody kicked"

# ---- 3. kick through the dialog --------------------------------------------------------------

reason="flooding the room $$"
focus_main
keys ctrl+k
wait_for "$WAIT" find_dialog "Kick bob" || fail "Ctrl+K opened no 'Kick bob' dialog the second time"
xdotool windowfocus --sync "$DLG"
type_text "$reason"
keys Return
wait_for "$WAIT" has_line "$RD_TMP/bob.out" "You were kicked: $reason" ||
	fail "bob did not read 'You were kicked: $reason': $(tail -n 3 "$RD_TMP/bob.out")"
for n in alice carol dave; do
	wait_for "$WAIT" has_line "$RD_TMP/$n.out" "bob was kicked" ||
		fail "$n did not read 'bob was kicked': $(tail -n 3 "$RD_TMP/$n.out")"
done
has_line "$RD_TMP/alice.out" "You were kicked" && fail "alice was kicked instead of / as well as bob"
echo "kicked bob with reason '$reason'; the others were told"

# ---- 4. broadcast ------------------------------------------------------------------------------

broadcast()   # TEXT: typed into the entry, sent with Enter
{
	focus_main
	keys ctrl+l
	sleep "$SETTLE" # let the entry take the focus before the text comes
	type_text "$1"
	keys Return
}
# broadcast_to WHO TEXT: broadcast until WHO prints it. Synthetic keys that land while
# GTK is still moving the focus (slow under the sanitizers) are lost, so a broadcast that
# did not arrive is typed again (an extra copy harms no check below).
broadcast_to()
{
	local who=$1 text=$2 try
	for try in 1 2 3; do
		broadcast "$text"
		wait_for $((WAIT / 3 + 1)) has_line "$RD_TMP/$who.out" "$text" && return 0
		echo "broadcast '$text' not seen by $who yet (try $try)"
	done
	return 1
}
wait_for "$WAIT" dialog_gone "Kick bob" || fail "the kick dialog did not close"
msg="maintenance at noon $$"
broadcast_to alice "$msg" || true
for n in alice carol dave; do
	wait_for "$WAIT" has_line "$RD_TMP/$n.out" "Message from the server on" ||
		fail "$n got no broadcast: $(tail -n 3 "$RD_TMP/$n.out")"
	grep "Message from the server on" "$RD_TMP/$n.out" | grep -qF -- ": $msg" ||
		fail "$n's broadcast line lacks the text: $(grep 'Message from the server' "$RD_TMP/$n.out")"
done
echo "broadcast reached alice, carol and dave"

# to a room: select dave (in random), scope Room; the target follows the selection
select_row 2 # alice, carol, dave, erin
pick_scope 1
msg_room="only for the random room $$"
broadcast_to dave "$msg_room" ||
	fail "the room broadcast did not reach dave (in random)"
# to one user: select carol, scope User
select_row 1
pick_scope 2
msg_user="only for carol $$"
broadcast_to carol "$msg_user" ||
	fail "the user broadcast did not reach carol"
sleep 0.5
for n in alice carol erin; do
	has_line "$RD_TMP/$n.out" "$msg_room" && fail "$n (not in random) got the room broadcast"
done
for n in alice dave erin; do
	has_line "$RD_TMP/$n.out" "$msg_user" && fail "$n got carol's broadcast"
done
pick_scope 0
echo "room and user broadcasts reached only their targets"

# ---- 5. 500 clients connecting and leaving quickly ------------------------------------------

start=$SECONDS
"$CHURN" "$PORT" "$CHURN_N" 2 >"$RD_TMP/churn.out" 2>&1 || fail "churn: $(cat "$RD_TMP/churn.out")"
cat "$RD_TMP/churn.out"
echo "churn took $((SECONDS - start)) s"
server_alive || fail "the server died during the churn"
find_window || fail "the window is gone after the churn"
timeout 10 "$BUILD/roomdrop" --port "$PORT" --nick probe rooms >"$RD_TMP/rooms.out" 2>&1 ||
	fail "the server does not answer after the churn: $(cat "$RD_TMP/rooms.out")"
msg2="still here after the churn $$"
broadcast_to alice "$msg2" || true
for n in alice carol dave; do
	wait_for "$WAIT" has_line "$RD_TMP/$n.out" "$msg2" ||
		fail "the window took no input after the churn ($n got no second broadcast)"
done
echo "after 2 x 1000 churned connections the server answers and the window still works"

# ---- 6. closing the window stops the server ----------------------------------------------

# a transfer is in progress (frank's): closing asks first; Escape keeps the server running
focus_main
keys ctrl+q
wait_for "$WAIT" find_dialog 'Stop the server\?' ||
	fail "closing the window during a transfer did not ask first"
xdotool windowfocus --sync "$DLG"
keys Escape
wait_for "$WAIT" dialog_gone 'Stop the server\?' || fail "Escape did not close the question"
sleep 1
server_alive || fail "the server stopped although the question was cancelled"
find_window || fail "the window closed although the question was cancelled"
echo "closing during a transfer asks first; Cancel keeps the server running"

# ask again and confirm with Enter (the focused "Stop Server" button)
focus_main
keys ctrl+q
wait_for "$WAIT" find_dialog 'Stop the server\?' || fail "the second Ctrl+Q did not ask"
xdotool windowfocus --sync "$DLG"
keys Return
stopped() { ! server_alive; }
wait_for 20 stopped || fail "the server still runs 20 s after Ctrl+Q"
status=0
wait "$SERVER_PID" || status=$?
rd__forget "$SERVER_PID"
((status == 0)) || fail "the server exited with status $status after the window closed"
for n in alice carol dave; do
	pid=${CPID[$n]}
	gone() { ! kill -0 "$pid" 2>/dev/null || [[ $(ps -o stat= -p "$pid") == Z* ]]; }
	wait_for "$WAIT" gone || fail "client $n still runs after the server stopped"
done
if grep -E 'CRITICAL|Gtk-WARNING \*\*: .*(assert|invalid)' "$SERVER_LOG"; then
	fail "GTK/GLib criticals in the server's output"
fi
echo "confirmed: window closed, server exited 0, clients told"
pass
