#!/usr/bin/env bash
# test_shell.sh - what a new user of the command-line client trips on (issue 8, item 9):
# Ctrl-C in the shell cancels the typed line or the running transfer and keeps the session;
# the shell reconnects when the server restarts (and gives up after --reconnect seconds
# with exit 8); a server's SHUTDOWN is reported with its reason by every command; --quiet
# prints errors and one summary; notices do not print over the progress bar and a long
# name never pushes the numbers off an 80-column line; the wording and exit codes of
# --nick server, --host [::1]:PORT, an unknown room and --listen on a foreign address.
# A frame-aware proxy (build/tests/rdproxy) makes the server's timing deterministic.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"
[[ -x $BUILD/tests/rdproxy ]] || skip "$BUILD/tests/rdproxy is not built yet (make tests)"
command -v tmux >/dev/null 2>&1 || fail "tmux is missing (scripts/install-deps.sh installs it)"

CLI=$BUILD/roomdrop
# This test runs plaintext (server --tls off, client --plain): its proxy (rdproxy) reads
# and rewrites frames between client and server, which TLS is there to prevent. It is
# the live tests' plaintext subset; the other live tests run over TLS.
export RD_SERVER_TLS=off ROOMDROP_PLAIN=1
SRV=$BUILD/roomdrop-server
PROXY=$BUILD/tests/rdproxy
unset ROOMDROP_HOST ROOMDROP_PORT ROOMDROP_NICK ROOMDROP_ROOM

OUT=$RD_TMP/out
expect()
{
	local want=$1 rc=0
	shift
	"$@" >"$OUT" 2>&1 || rc=$?
	[[ $rc == "$want" ]] || fail "'$*' exited $rc, wanted $want: $(head -c 600 "$OUT")"
}
has() { grep -qF -- "$2" "$1" || fail "expected '$2' in $1, got: $(head -c 800 "$1")"; }
hasnt() { ! grep -qF -- "$2" "$1" || fail "did not expect '$2' in $1: $(head -c 800 "$1")"; }
wait_for()
{
	local i n=$((${3:-10} * 20))
	for ((i = 0; i < n; i++)); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "'$2' did not appear in $1 within ${3:-10}s; it has: $(head -c 800 "$1" 2>/dev/null)"
}
rdc() { "$CLI" --port "$RD_PORT" --timeout 10 "$@"; }

# proxy ARGS...: start rdproxy in front of the current server; its port in PPORT, its
# frame log in $RD_TMP/proxyN.log (PLOG), its PID in PPID_.
NPROXY=0
proxy()
{
	NPROXY=$((NPROXY + 1))
	PLOG=$RD_TMP/proxy$NPROXY.log
	rm -f "$RD_TMP/proxy.port"
	rd_spawn "$PROXY" --port "$RD_PORT" --port-file "$RD_TMP/proxy.port" --log "$PLOG" "$@" \
		>"$RD_TMP/proxy$NPROXY.err" 2>&1
	PPID_=$RD_LAST_PID
	wait_for "$RD_TMP/proxy.port" "" 10
	for ((i = 0; i < 100; i++)); do
		PPORT=$(<"$RD_TMP/proxy.port")
		[[ $PPORT =~ ^[0-9]+$ ]] && return 0
		sleep 0.05
	done
	fail "proxy wrote no port"
}

# ---- tmux ---------------------------------------------------------------------------------
# one tmux server per terminal session (a killed server takes a moment to go)
NTMUX=0
TMUX_SOCK=$RD_TMP/tmux0.sock
tm() { LC_ALL=C.UTF-8 tmux -u -S "$TMUX_SOCK" "$@"; }
# shellcheck disable=SC2016 # expanded when the exit trap runs
rd_on_exit 'for s in "$RD_TMP"/tmux*.sock; do tmux -S "$s" kill-server 2>/dev/null; done'
screen() { tm capture-pane -p -J; }
# on_screen TEXT [SECONDS]: until the pane shows TEXT (fixed string).
on_screen()
{
	local i n=$((${2:-10} * 20))
	for ((i = 0; i < n; i++)); do
		screen | grep -qF -- "$1" && return 0
		sleep 0.05
	done
	fail "'$1' not on the screen within ${2:-10}s: $(screen)"
}
# last_line: the last non-empty line of the pane.
last_line() { screen | sed 's/[[:space:]]*$//' | grep -v '^$' | tail -n 1; }
# term CMD: run CMD in a fresh 80x30 tmux session; "EXIT=<status>" is printed after it.
term()
{
	tm kill-server 2>/dev/null || true
	NTMUX=$((NTMUX + 1))
	TMUX_SOCK=$RD_TMP/tmux$NTMUX.sock
	tm new-session -d -x 80 -y 30 "$1; echo EXIT=\$?; sleep 120"
}

# ==== item: wording and exit codes (checked before or without a server) =====================

# a reserved nickname is a nickname refusal: exit 4, like the README's table says
expect 4 "$CLI" --nick server rooms
has "$OUT" "nickname 'server' is reserved"

# --listen on an address that is not this machine's: said in words, exit 3, nothing sent
expect 3 "$SRV" --headless --listen 10.1.2.3:7878 --store "$RD_TMP/nostore"
has "$OUT" "cannot listen on 10.1.2.3:7878: that address is not on this machine"
hasnt "$OUT" "Cannot assign requested address"

rd_start_server --store "$(rd_tmpdir)" --rooms general,random
PORT1=$RD_PORT
PID1=$RD_SERVER_PID

# an unknown room points at the command that lists them
expect 5 rdc --nick wordy --room nowhere say hi
has "$OUT" "roomdrop rooms"
hasnt "$OUT" "ask ROOMS"

# --host with a bracketed IPv6 address and port, and a bare IPv6 address
if grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null; then # ::1 is configured
	rd_start_server --store "$(rd_tmpdir)" --listen '[::1]:0'
	V6PORT=$RD_PORT
	expect 0 "$CLI" --timeout 10 --host "[::1]:$V6PORT" --nick six rooms
	has "$OUT" "general"
	expect 0 "$CLI" --timeout 10 --host ::1 --port "$V6PORT" --nick six rooms
	expect 0 env ROOMDROP_HOST="[::1]:$V6PORT" "$CLI" --timeout 10 --nick six rooms
	expect 2 "$CLI" --host "[::1]:$V6PORT" --port 1 --nick six rooms
	has "$OUT" "two ports"
	expect 2 "$CLI" --host "[::1" --nick six rooms
	rd_stop_server
	dead6=$V6PORT
	expect 3 "$CLI" --timeout 5 --host "[::1]:$dead6" --nick six rooms
	has "$OUT" "cannot connect to [::1]:$dead6: connection refused"
	RD_PORT=$PORT1
	RD_SERVER_PID=$PID1
fi

# ==== item: the server's SHUTDOWN, reported by every command with its reason, exit 8 =========

mkdir -p "$RD_TMP/up" "$RD_TMP/down"
head -c 3000000 /dev/urandom >"$RD_TMP/up/big.bin"
rdc --nick seeder put "$RD_TMP/up/big.bin" >/dev/null 2>&1 || fail "seeding big.bin failed"
echo small >"$RD_TMP/up/small.txt"
for spec in "ls 0x100a" "who 0x0015" "rooms 0x0010" "get 0x1006" "put 0x1003" "say 0x0020" \
	"msg 0x0021" "listen 0x0012"; do
	read -r cmd type <<<"$spec"
	proxy --shutdown-on "$type" --reason "upgrade at noon"
	case $cmd in
	get) args=(get big.bin -o "$RD_TMP/down") ;;
	put) args=(put "$RD_TMP/up/big.bin" --overwrite) ;;
	say) args=(say hello) ;;
	msg) args=(msg seeder hello) ;;
	*) args=("$cmd") ;;
	esac
	expect 8 "$CLI" --port "$PPORT" --timeout 10 --nick "sd$cmd" "${args[@]}"
	has "$OUT" "the server is shutting down: upgrade at noon"
	hasnt "$OUT" "lost the connection"
	rd_stop_pid "$PPID_"
done

# ==== item: --quiet means errors and one summary line ========================================

mkdir -p "$RD_TMP/many"
for ((i = 0; i < 40; i++)); do echo "file $i" >"$RD_TMP/many/f$i.txt"; done
# presence chatter while the upload runs
( for ((i = 0; i < 20; i++)); do "$CLI" --port "$RD_PORT" --nick "chat$i" say hi >/dev/null 2>&1 || true; done ) &
chatter=$!
expect 0 rdc --nick quietly --quiet put "$RD_TMP"/many/*.txt
wait "$chatter" || true
[[ $(wc -l <"$OUT") == 1 ]] || fail "--quiet put printed $(wc -l <"$OUT") lines: $(head -c 800 "$OUT")"
grep -Eq '^put 40 files: 40 stored, 0 failed' "$OUT" || fail "quiet summary: $(cat "$OUT")"
# an error is still printed, and the summary counts it
expect 5 rdc --nick quietly --quiet put "$RD_TMP/many/f1.txt" "$RD_TMP/many/missing.txt" --overwrite
[[ $(wc -l <"$OUT") == 2 ]] || fail "--quiet put with an error: $(cat "$OUT")"
has "$OUT" "missing.txt: no such file"
grep -Eq '^put 2 files: 1 stored, 1 failed' "$OUT" || fail "quiet summary: $(cat "$OUT")"
expect 0 rdc --nick quietly --quiet get f1.txt f2.txt -o "$RD_TMP/down"
[[ $(wc -l <"$OUT") == 1 ]] || fail "--quiet get printed: $(cat "$OUT")"
grep -Eq '^get 2 files: 2 saved, 0 failed' "$OUT" || fail "quiet get summary: $(cat "$OUT")"

# ==== item: Ctrl-C in the shell ==============================================================

# at the prompt: the typed line is dropped, the session stays
term "$CLI --port $RD_PORT --nick tina --room general shell"
on_screen "tina@general>"
tm send-keys "never sent"
on_screen "tina@general> never sent"
tm send-keys C-c
for ((i = 0; i < 200; i++)); do
	[[ $(last_line) == "tina@general>" ]] && break
	sleep 0.05
done
[[ $(last_line) == "tina@general>" ]] || fail "Ctrl-C did not give a fresh prompt: $(screen)"
screen | grep -q '^EXIT=' && fail "Ctrl-C at the prompt ended the shell: $(screen)"
tm send-keys "/who" Enter
on_screen "In general:"
screen | grep -q "^tina " || fail "/who after Ctrl-C: $(screen)"
tm send-keys C-d
on_screen "EXIT=0"

# during a download: XFER_CANCEL goes to the server, the shell stays, the next command works
proxy --hold-after 0x1008
term "$CLI --port $PPORT --timeout 30 --nick tina --room general shell"
on_screen "tina@general>"
tm send-keys "/get big.bin -o $RD_TMP/down" Enter
wait_for "$PLOG" "s2c 0x1008" 10
sleep 0.3
tm send-keys C-c
on_screen "interrupted" 10
wait_for "$PLOG" "c2s 0x100e" 10
for ((i = 0; i < 200; i++)); do
	[[ $(last_line) == "tina@general>" ]] && break
	sleep 0.05
done
[[ $(last_line) == "tina@general>" ]] || fail "no prompt after a cancelled transfer: $(screen)"
screen | grep -q '^EXIT=' && fail "Ctrl-C during a transfer ended the shell: $(screen)"
tm send-keys "/quit" Enter
on_screen "EXIT=0"
rd_stop_pid "$PPID_"

# ==== item: notices and the progress bar at 80 columns =====================================

long=$(printf 'a-very-long-file-name-%.0s' {1..6})end.bin
cp "$RD_TMP/up/big.bin" "$RD_TMP/up/$long"
rdc --nick seeder put "$RD_TMP/up/$long" >/dev/null 2>&1 || fail "seeding the long name failed"
proxy --delay 0x1008 250 --notice-after 4
term "$CLI --port $PPORT --timeout 30 --nick gina get $long -o $RD_TMP/down"
on_screen "left" 10
bar=$(screen | grep -F "left" | head -n 1)
[[ $bar == *"%"* && $bar == *"/s"* && $bar == *" left" ]] || fail "bar lost its numbers: '$bar'"
[[ $bar == *"…"* ]] || fail "long name not shortened in the middle: '$bar'"
[[ $bar == "get a-very"* && $bar == *"d.bin  ["* ]] || fail "name not kept at both ends: '$bar'"
(($(printf '%s' "$bar" | LC_ALL=C.UTF-8 wc -m) <= 80)) || fail "bar wider than 80 columns: '$bar'"
on_screen "* bob " 10
screen | grep -q '^\* bob \(added\|replaced\) small.txt' ||
	fail "notice printed over the bar: $(screen)"
on_screen "EXIT=0" 30
rd_stop_pid "$PPID_"

# ==== item: the shell reconnects when the server restarts ====================================

term "$CLI --port $RD_PORT --nick rita --room general shell"
on_screen "rita@general>"
tm send-keys "/join random" Enter
on_screen "rita@random>"
tm send-keys "keep th"
rd_stop_server
on_screen "the server is shutting down" 10
on_screen "reconnecting in" 10
screen | grep -q '^EXIT=' && fail "the shell ended when the server stopped: $(screen)"
rd_start_server --store "$(rd_tmpdir)" --rooms general,random --listen "127.0.0.1:$PORT1"
on_screen "reconnected to 127.0.0.1:$PORT1 as rita, back in random" 30
for ((i = 0; i < 100; i++)); do
	[[ $(last_line) == "rita@random> keep th" ]] && break
	sleep 0.05
done
[[ $(last_line) == "rita@random> keep th" ]] || fail "typed line lost: '$(last_line)' in $(screen)"
rd_spawn "$CLI" --port "$RD_PORT" --nick lars --room random listen >"$RD_TMP/lars.out" \
	2>"$RD_TMP/lars.err"
lars=$RD_LAST_PID
wait_for "$RD_TMP/lars.err" "listening in random"
tm send-keys "is" Enter
wait_for "$RD_TMP/lars.out" "[random] <rita> keep this" 10
tm send-keys "/quit" Enter
on_screen "EXIT=0"
rd_stop_pid "$lars"

# bounded: with no server, it gives up after --reconnect seconds with exit 8
term "$CLI --port $RD_PORT --reconnect 2 --nick rita shell"
on_screen "rita@general>"
rd_stop_server
on_screen "reconnecting in" 10
on_screen "giving up" 20
on_screen "EXIT=8" 10

pass
