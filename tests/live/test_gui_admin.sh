#!/usr/bin/env bash
# test_gui_admin.sh - admission and keys in the administrator's window (issue 12 point 6),
# driven with real X input events (xdotool) as test_gui.sh drives the window, on a private
# Xvfb, against a server run with --admission invite:
#   1. Ctrl+I makes an invitation (the host is filled in; Enter): the link reaches the
#      window's log and the clipboard, and `roomdrop join-invite LINK` gets alice in;
#      the server's log names the invitation, never its secret;
#   2. a refused key (bob, exit 17) shows in the refused-keys list (Alt+F, Ctrl+C copies
#      its row); Ctrl+Shift+A asks "Admit key" about it, Enter admits it: bob gets in;
#   3. the table shows each client's key and admission state: Ctrl+Shift+C copies the
#      selected row (alice) with her whole key and "admitted: key";
#   4. the operators list shows an operator granted by `ctl op` (Alt+O, Ctrl+C);
#   5. Ctrl+Shift+R on alice's row asks "Revoke key", Enter revokes it: her connection
#      is closed and she is refused from then on (exit 17);
#   6. Ctrl+Shift+N asks "Release nickname" (typed: bob), Enter frees it: another key
#      takes bob, which was refused to it before (exit 4);
# and every action is in the server's log ("window: ...") and the window's log.
# Skips (77) only when the server is built without GTK or Xvfb cannot be started.
#
# shellcheck disable=SC2317
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

WAIT=${RD_GUI_WAIT:-15}
XKEY_DELAY=60
SETTLE=0.3

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"
[[ ${GUI:-1} != 0 ]] || skip "built with GUI=0: the server has no window to test"
libs=""
if command -v ldd >/dev/null 2>&1; then
	libs=$(ldd "$BUILD/roomdrop-server" 2>/dev/null || true)
	[[ $libs == *libgtk-4* ]] || skip "$BUILD/roomdrop-server is built without GTK 4 (GUI=0?)"
fi
if [[ $libs == *libtsan* ]]; then
	export TSAN_OPTIONS="suppressions=$RD_ROOT/tests/live/gui-tsan.supp ${TSAN_OPTIONS:-}"
	WAIT=$((WAIT * 3))
fi
if [[ $libs == *libasan* ]]; then
	export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
fi
command -v Xvfb >/dev/null 2>&1 || skip "Xvfb is not installed"
for tool in xdotool xclip; do
	command -v "$tool" >/dev/null 2>&1 || fail "$tool is missing (scripts/install-deps.sh)"
done
CLI=$BUILD/roomdrop
SRV=$BUILD/roomdrop-server

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
main_window() { xdotool search --onlyvisible --name '^roomdrop ' 2>/dev/null | head -n 1; }
find_window() { WIN=$(main_window) && [[ -n $WIN ]]; }
find_dialog() { DLG=$(xdotool search --onlyvisible --name "^$1\$" 2>/dev/null | head -n 1) && [[ -n $DLG ]]; }
dialog_gone() { ! xdotool search --onlyvisible --name "^$1\$" >/dev/null 2>&1; }
focus_main()
{
	find_window || fail "the window is gone"
	xdotool windowfocus --sync "$WIN" || fail "cannot focus the window"
	sleep 0.2
}
keys() { xdotool key --clearmodifiers --delay "$XKEY_DELAY" "$@"; }
type_text() { xdotool type --clearmodifiers --delay 20 -- "$1"; }
clip() { xclip -o -selection clipboard 2>/dev/null || true; }
# clear the clipboard (so that a copy that did not happen is not mistaken for one)
clip_clear() { printf 'nothing' | xclip -selection clipboard -i; }

# ---- an X server of our own, the server with its window --------------------------------------

dispfile=$RD_TMP/xvfb.display
rd_spawn Xvfb -displayfd 9 -screen 0 1280x800x24 -nolisten tcp -noreset \
	9>"$dispfile" >"$RD_TMP/xvfb.log" 2>&1
XVFB_PID=$RD_LAST_PID
xvfb_ready() { [[ $(<"$dispfile") =~ ^[0-9]+$ ]] 2>/dev/null; }
wait_for 10 xvfb_ready || skip "Xvfb could not be started (no X server for the window)"
DISPLAY=:$(<"$dispfile")
export DISPLAY
unset WAYLAND_DISPLAY
export GDK_BACKEND=x11 GSK_RENDERER=cairo DBUS_SESSION_BUS_ADDRESS=unix:path=$RD_TMP/no-bus
xdpyinfo_ok() { xdotool getdisplaygeometry >/dev/null 2>&1; }
wait_for 10 xdpyinfo_ok || skip "Xvfb on $DISPLAY does not answer"

srvdir=$RD_TMP/server
mkdir -p "$srvdir"
SERVER_LOG=$srvdir/server.log
RD_SERVER_LOGS+=("$SERVER_LOG")
CTL=$srvdir/ctl.sock
(cd "$srvdir" && exec "$SRV" --listen 127.0.0.1:0 --port-file "$srvdir/port" \
	--store "$srvdir/store" --ctl-socket "$CTL" --admission invite) \
	>"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
RD_PIDS+=("$SERVER_PID")
# the exit trap stops processes in order: the X server goes last
rd__forget "$XVFB_PID"
RD_PIDS+=("$XVFB_PID")
port_ready() { [[ -s $srvdir/port && $(<"$srvdir/port") =~ ^[0-9]+$ ]]; }
wait_for "$WAIT" port_ready || fail "the server wrote no port within ${WAIT}s"
PORT=$(<"$srvdir/port")
wait_for "$WAIT" find_window || fail "no window appeared within ${WAIT}s"
sleep 1

# as KEY NICK ARGS...: a client whose key is kept in $RD_TMP/KEY
as() { XDG_CONFIG_HOME=$RD_TMP/$1 "$CLI" --port "$PORT" --timeout 10 --nick "$2" "${@:3}"; }

# the window's log, copied as an administrator would (Alt+L, Ctrl+A, Ctrl+C)
copy_log()
{
	focus_main
	keys alt+l
	sleep "$SETTLE"
	keys ctrl+a ctrl+c
	sleep 0.3
	clip >"$RD_TMP/log.txt"
}
log_has() { copy_log && grep -q -- "$1" "$RD_TMP/log.txt"; }
# confirm TITLE: the dialog TITLE is open; Enter confirms it
confirm()
{
	wait_for "$WAIT" find_dialog "$1" || fail "no '$1' dialog"
	xdotool windowfocus --sync "$DLG"
	sleep "$SETTLE"
	keys Return
	wait_for "$WAIT" dialog_gone "$1" || fail "the '$1' dialog did not close"
}

# ---- 1. an invitation from the window -------------------------------------------------------------

focus_main
clip_clear
keys ctrl+i
confirm "Make an invitation"
link_ready() { [[ $(clip) == roomdrop://* ]]; }
wait_for "$WAIT" link_ready || fail "no invitation link in the clipboard: $(clip)"
link=$(clip)
[[ $link =~ ^roomdrop://127\.0\.0\.1:$PORT/invite/[0-9a-f]{32}\?fp=[A-Z2-7-]+$ ]] ||
	fail "not an invitation link: $link"
wait_for "$WAIT" log_has "invitation link: $link" || fail "the window's log lacks the link"
secret=${link#*/invite/}
secret=${secret%%\?*}
grep -q "window: made invitation" "$SERVER_LOG" || fail "the server's log lacks the invitation"
grep -q "$secret" "$SERVER_LOG" && fail "the server's log shows the invitation's secret"
run 0 env XDG_CONFIG_HOME="$RD_TMP/k1" "$CLI" --timeout 10 join-invite "$link"
contains "$OUT" "admitted to 127.0.0.1:$PORT"
echo "1. Ctrl+I made an invitation: its link (in the window's log and clipboard) admitted alice"

# ---- 2. a refused key, admitted from the window ---------------------------------------------------

run 17 as k2 bob rooms
[[ $OUT =~ yours\ is\ ([A-Z2-7-]+) ]] || fail "no fingerprint in: $OUT"
bob_fp=${BASH_REMATCH[1]}
refused_shown()
{
	focus_main
	clip_clear
	keys alt+f
	sleep "$SETTLE"
	keys ctrl+c
	sleep 0.3
	[[ $(clip) == "$bob_fp"*bob* ]]
}
wait_for "$WAIT" refused_shown || fail "bob's key is not in the refused list: $(clip)"
focus_main
keys ctrl+shift+a
confirm "Admit key"
run 0 as k2 bob rooms
grep -q "window: admitted the key $bob_fp" "$SERVER_LOG" || fail "the server's log lacks the admission"
wait_for "$WAIT" log_has "admitted the key $bob_fp" || fail "the window's log lacks the admission"
echo "2. bob's refused key was listed; Ctrl+Shift+A and Enter admitted it"

# ---- 3. the table: key and admission state --------------------------------------------------------

as k1 alice listen >"$RD_TMP/alice.out" 2>&1 </dev/null &
alice_pid=$!
RD_PIDS+=("$alice_pid")
wait_for "$WAIT" has_line "$RD_TMP/alice.out" "listening in" || fail "alice is not listening"
alice_shown()
{
	focus_main
	clip_clear
	keys ctrl+t
	sleep 0.2
	keys Home ctrl+shift+c
	sleep 0.3
	[[ $(clip) == alice\ 127.0.0.1:*\ key\ *\ admission\ admitted:\ key ]]
}
wait_for "$WAIT" alice_shown || fail "the table's alice row: $(clip)"
alice_fp=$(clip)
alice_fp=${alice_fp#* key }
alice_fp=${alice_fp%% admission*}
"$SRV" ctl --socket "$CTL" list | grep -q -- "$alice_fp" || fail "alice's key is not $alice_fp"
echo "3. the table shows alice's key ($alice_fp) and 'admitted: key'"

# ---- 4. operators -------------------------------------------------------------------------------------

run 0 "$SRV" ctl --socket "$CTL" op general alice
op_shown()
{
	focus_main
	clip_clear
	keys alt+o
	sleep "$SETTLE"
	keys ctrl+c
	sleep 0.3
	[[ $(clip) == "general: $alice_fp" ]]
}
wait_for "$WAIT" op_shown || fail "the operators list lacks alice: $(clip)"
echo "4. the operators list shows alice's key for general"

# ---- 5. revoke alice's key --------------------------------------------------------------------------

focus_main
keys ctrl+t
sleep 0.2
keys Home ctrl+shift+r
confirm "Revoke key"
alice_gone() { ! kill -0 "$alice_pid" 2>/dev/null || [[ $(ps -o stat= -p "$alice_pid") == Z* ]]; }
wait_for "$WAIT" alice_gone || fail "alice's connection was not closed"
wait "$alice_pid" 2>/dev/null || true
run 17 as k1 alice rooms
grep -q "window: revoked the key $alice_fp (1 connection closed)" "$SERVER_LOG" ||
	fail "the server's log lacks the revocation"
echo "5. Ctrl+Shift+R revoked alice's key: her connection closed, she is refused now"

# ---- 6. release a nickname ------------------------------------------------------------------------

run 0 "$SRV" ctl --socket "$CTL" admit "$alice_fp"
run 4 as k1 bob rooms # bob is k2's
focus_main
keys ctrl+shift+n
wait_for "$WAIT" find_dialog "Release nickname" || fail "no 'Release nickname' dialog"
xdotool windowfocus --sync "$DLG"
sleep "$SETTLE"
keys ctrl+a
type_text "bob"
keys Return
wait_for "$WAIT" dialog_gone "Release nickname" || fail "the release dialog did not close"
wait_for "$WAIT" has_line "$SERVER_LOG" "window: released the nickname bob" ||
	fail "the server's log lacks the release"
run 0 as k1 bob rooms
wait_for "$WAIT" log_has "released the nickname bob" || fail "the window's log lacks the release"
echo "6. Ctrl+Shift+N released bob: another key took it"

pass
