#!/usr/bin/env bash
# test_cluster_gui.sh - the administrator's window of a cluster member shows every client
# of the cluster, with the server it is on, and kicks one on another server (issue 11
# point 5; PROTOCOL.md section 15), driven the way a person would drive it:
#   * a master with its window on a private Xvfb, and a headless secondary, sharing a
#     redis-server of the test's own (Unix socket, persistence off, stopped by PID);
#   * amy is on the master, zed on the secondary; the table is sorted by nickname, so the
#     last row (Ctrl+T, End) is zed's: Ctrl+K opens "Kick zed" (its title proves the row is
#     there; without it the last row is amy's);
#   * a reason typed and Enter: zed, on the other server, reads "You were kicked: REASON",
#     and amy reads "zed was kicked".
# Skips (77) when the server has no GTK, no cluster mode, or Xvfb cannot be started.
#
# shellcheck disable=SC2317 # (predicates called through wait_for)
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

WAIT=${RD_GUI_WAIT:-15}
XKEY_DELAY=60

rd_need_server
CLI=$BUILD/roomdrop
SRV=$BUILD/roomdrop-server
[[ -x $CLI ]] || skip "$CLI is not built yet"
[[ ${GUI:-1} != 0 ]] || skip "built with GUI=0: the server has no window to test"
libs=$(ldd "$SRV" 2>/dev/null || true)
[[ $libs == *libgtk-4* ]] || skip "$SRV is built without GTK 4 (GUI=0?)"
if [[ $libs == *libtsan* ]]; then
	export TSAN_OPTIONS="suppressions=$RD_ROOT/tests/live/gui-tsan.supp ${TSAN_OPTIONS:-}"
	WAIT=$((WAIT * 3))
fi
[[ $libs == *libasan* ]] && export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
rd_need_cluster
command -v Xvfb >/dev/null 2>&1 ||
	skip "Xvfb is not installed (scripts/install-deps.sh installs it)"
command -v xdotool >/dev/null 2>&1 || fail "xdotool is missing (scripts/install-deps.sh installs it)"

# wait_until SECONDS CMD...: retry CMD every 0.1 s until it succeeds; 1 if time runs out.
wait_until()
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
main_window() { xdotool search --onlyvisible --name '^roomdrop ' 2>/dev/null | head -n 1; }
find_window() { WIN=$(main_window) && [[ -n $WIN ]]; }
find_dialog() { DLG=$(xdotool search --onlyvisible --name "^$1\$" 2>/dev/null | head -n 1) && [[ -n $DLG ]]; }
keys() { xdotool key --clearmodifiers --delay "$XKEY_DELAY" "$@"; }

# ---- an X server of our own ------------------------------------------------------------------
dispfile=$RD_TMP/xvfb.display
rd_spawn Xvfb -displayfd 9 -screen 0 1280x800x24 -nolisten tcp -noreset \
	9>"$dispfile" >"$RD_TMP/xvfb.log" 2>&1
XVFB_PID=$RD_LAST_PID
xvfb_ready() { [[ $(<"$dispfile") =~ ^[0-9]+$ ]] 2>/dev/null; }
wait_until 10 xvfb_ready || skip "Xvfb could not be started"
DISPLAY=:$(<"$dispfile")
export DISPLAY
unset WAYLAND_DISPLAY
export GDK_BACKEND=x11 GSK_RENDERER=cairo DBUS_SESSION_BUS_ADDRESS=unix:path=$RD_TMP/no-bus
xdpy_ok() { xdotool getdisplaygeometry >/dev/null 2>&1; }
wait_until 10 xdpy_ok || skip "Xvfb on $DISPLAY does not answer"

# ---- Redis, the master with its window, a secondary ----------------------------------------
rd_start_redis

mdir=$RD_TMP/master
mkdir -p "$mdir"
MLOG=$mdir/server.log
RD_SERVER_LOGS+=("$MLOG")
(cd "$mdir" && exec "$SRV" --listen 127.0.0.1:0 --port-file "$mdir/port" --store "$mdir/store" \
	--redis "$RSOCK" --cluster g1 --master) >"$MLOG" 2>&1 &
MPID=$!
RD_PIDS+=("$MPID")
port_ready() { [[ -s $mdir/port && $(<"$mdir/port") =~ ^[0-9]+$ ]]; }
wait_until "$WAIT" port_ready || fail "the master wrote no port within ${WAIT}s"
M=$(<"$mdir/port")
wait_until "$WAIT" find_window || fail "no window appeared within ${WAIT}s"
rd_start_server --store "$(rd_tmpdir)" --redis "$RSOCK" --cluster g1
S=$RD_PORT
wait_until "$WAIT" has_line "$MLOG" "at 127.0.0.1:$S joined" || fail "the secondary never joined"
# the exit trap stops processes in order: the X server goes last
rd__forget "$XVFB_PID"
RD_PIDS+=("$XVFB_PID")

rd_spawn "$CLI" --port "$M" --nick amy listen >"$RD_TMP/amy.out" 2>&1 </dev/null
rd_spawn "$CLI" --port "$S" --nick zed listen >"$RD_TMP/zed.out" 2>&1 </dev/null
for n in amy zed; do
	wait_until "$WAIT" has_line "$RD_TMP/$n.out" "listening in general as $n" ||
		fail "$n did not start listening: $(tail -n 3 "$RD_TMP/$n.out")"
done
sleep 2.5 # the window asks for the other servers' clients once a second

# ---- the last row is zed's, on the other server: kick it from the window ------------------
xdotool windowfocus --sync "$WIN" || fail "cannot focus the window"
sleep 0.3
keys ctrl+t
sleep 0.3
keys End
sleep 0.3
keys ctrl+k
if ! wait_until "$WAIT" find_dialog "Kick zed"; then
	other=$(xdotool search --onlyvisible --name '^Kick ' getwindowname 2>/dev/null || true)
	fail "the window does not list zed, a client of the other server (Ctrl+K opened: '$other')"
fi
echo "the window lists zed, on the other server"
reason="kicked from the master's window $$"
xdotool windowfocus --sync "$DLG"
xdotool type --clearmodifiers --delay 20 -- "$reason"
keys Return
wait_until "$WAIT" has_line "$RD_TMP/zed.out" "You were kicked: $reason" ||
	fail "zed did not read 'You were kicked: $reason': $(tail -n 3 "$RD_TMP/zed.out")"
wait_until "$WAIT" has_line "$RD_TMP/amy.out" "zed was kicked" ||
	fail "amy did not read 'zed was kicked': $(tail -n 3 "$RD_TMP/amy.out")"
echo "zed, on the other server, was kicked from the master's window; amy was told"

rd_stop_pid "$MPID"
((RD_STOP_STATUS == 0)) || fail "the master exited $RD_STOP_STATUS on SIGTERM"
rd_stop_pid "$REDIS_PID"
pass
