#!/usr/bin/env bash
# demo.sh - `make demo`: everything that works so far, on one local server, then a cluster.
#
#   1. a server on 127.0.0.1 (a kernel-chosen port; the store in a temporary folder);
#      with a display (DISPLAY or WAYLAND_DISPLAY) and GTK built in, its admin window opens.
#      Every connection is TLS 1.3: the server's key fingerprint, a client's first
#      connection recording it, a client pinned to it, and a plaintext client refused
#      A nickname belongs to the key that registered it first: another key is refused,
#      and the administrator frees it with `ctl release`. A second, private server admits
#      by invitation: a stranger is refused, `ctl invite` makes a link, join-invite uses it
#   2. dave, erin and frank listen (frank in #random); alice chats, whispers, lists rooms
#   3. files: alice puts sample_files/ into #general, bob lists and gets them back, and
#      the copies are verified against sample_files/SHA256SUMS (scripts/demo-files.sh);
#      200 small files put as a folder (committed together) and some got back by pattern;
#      a 32 MiB file streamed while it is hashed, then put again with its cached digest
#   4. the administrator: `roomdrop-server ctl info` and `list` (with each client's key),
#      broadcast, kick
#   5. what each listener saw
#   6. several servers as one: a redis-server of the demo's own, a master that redirects
#      past one client and two secondaries; three clients land on three servers and hear a
#      conversation across them (when the build has hiredis and redis-server is installed;
#      otherwise the step says why it is skipped)
#   then (with a window, on a terminal) the demo waits while you try the window yourself:
#   kick someone, broadcast; close the window to finish
#
#   BUILD=build scripts/demo.sh     DEMO_HEADLESS=1 never opens the window
#                                   DEMO_KEEP=1 keeps the temporary folder
#                                   NO_COLOR=1 plain titles on a terminal too
set -euo pipefail
RD_KEEP_TMP=${DEMO_KEEP:-0}
RD_TEST=demo
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/../tests/live/lib.sh"

CLI=$BUILD/roomdrop
SRV=$BUILD/roomdrop-server
[[ -x $SRV && -x $CLI ]] || fail "build first: $SRV and $CLI are needed"

# bold step titles only on a terminal, and not when NO_COLOR is set (https://no-color.org):
# a log file or a pipe gets plain text
if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
	step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	step() { printf '\n== %s\n' "$*"; }
fi
run() {
	printf '$ roomdrop %s\n' "$*"
	"$CLI" --port "$RD_PORT" "$@" | sed 's/^/  /'
}
ctl() {
	printf '$ roomdrop-server ctl %s\n' "$*"
	"$SRV" ctl --socket "$RD_TMP/ctl.sock" "$@" | sed 's/^/  /'
}

window=0
# the window opens when there is a display and the server was built with GTK (GUI=1)
if [[ -z ${DEMO_HEADLESS:-} && -n ${DISPLAY:-}${WAYLAND_DISPLAY:-} ]] &&
	ldd "$SRV" 2>/dev/null | grep -q 'libgtk-4'; then
	window=1
fi

step "1. the server"
if ((window)); then
	# rd_start_server adds --headless; start this one ourselves so its window opens
	rd_spawn "$SRV" --listen 127.0.0.1:0 --port-file "$RD_TMP/port" --store "$RD_TMP/store" \
		--ctl-socket "$RD_TMP/ctl.sock" --rooms general,random,music >"$RD_TMP/server.log" 2>&1
	RD_SERVER_PID=$RD_LAST_PID
	for _ in $(seq 1 100); do [[ -s $RD_TMP/port ]] && break; sleep 0.1; done
	[[ -s $RD_TMP/port ]] || fail "the server did not start (see $RD_TMP/server.log)"
	RD_PORT=$(cat "$RD_TMP/port")
	echo "server pid $RD_SERVER_PID on 127.0.0.1:$RD_PORT, with its admin window"
else
	rd_start_server --store "$RD_TMP/store" --ctl-socket "$RD_TMP/ctl.sock" \
		--rooms general,random,music
	echo "server pid $RD_SERVER_PID on 127.0.0.1:$RD_PORT (headless), store $RD_TMP/store"
fi

DEMO_PORT=$RD_PORT
DEMO_SERVER_PID=$RD_SERVER_PID
DEMO_SERVER_LOG=$RD_SERVER_LOG

step "1b. TLS: the server's key, a first connection, a pinned one, a plaintext one"
# (the demo's clients keep their key and known_servers in its temporary folder)
fp=$("$SRV" fingerprint --store "$RD_TMP/store")
printf '$ roomdrop-server fingerprint\n  %s\n' "$fp"
printf '$ roomdrop --nick alice rooms      (the first connection records the key)\n'
"$CLI" --port "$RD_PORT" --nick alice rooms 2>&1 | sed 's/^/  /'
printf '$ roomdrop --nick alice --server-fp %s... rooms\n' "${fp:0:9}"
"$CLI" --port "$RD_PORT" --nick alice --server-fp "$fp" rooms 2>&1 | sed 's/^/  /'
printf '$ roomdrop --plain --nick eve rooms\n'
"$CLI" --port "$RD_PORT" --nick eve --plain rooms 2>&1 | sed 's/^/  /' || true

step "1c. a nickname belongs to the key that registered it first"
printf '$ roomdrop --nick alice rooms      (mallory, with a key of her own)\n'
XDG_CONFIG_HOME=$RD_TMP/mallory "$CLI" --port "$RD_PORT" --nick alice rooms 2>&1 |
	grep -v 'first connection' | sed 's/^/  /' || true
ctl release alice
printf '  (alice is free: the next key to register it owns it; this demo gives it back)\n'
"$CLI" --port "$RD_PORT" --nick alice --quiet rooms >/dev/null

step "1d. a private server: admission by invitation"
rd_start_server --store "$RD_TMP/private" --ctl-socket "$RD_TMP/private.sock" --admission invite
private_port=$RD_PORT
printf '$ roomdrop --port %s --nick zoe rooms      (a key the server does not know)\n' \
	"$private_port"
XDG_CONFIG_HOME=$RD_TMP/zoe "$CLI" --port "$private_port" --nick zoe rooms 2>&1 |
	grep -v 'first connection' | sed 's/^/  /' || true
printf '$ roomdrop-server ctl invite\n'
link=$("$SRV" ctl --socket "$RD_TMP/private.sock" invite 2>/dev/null)
printf '  %s\n' "$link"
printf '$ roomdrop join-invite LINK\n'
XDG_CONFIG_HOME=$RD_TMP/zoe "$CLI" join-invite "$link" 2>&1 | sed 's/^/  /'
printf '$ roomdrop --port %s --nick zoe rooms\n' "$private_port"
XDG_CONFIG_HOME=$RD_TMP/zoe "$CLI" --port "$private_port" --nick zoe rooms 2>&1 |
	sed 's/^/  /'
rd_stop_server
RD_PORT=$DEMO_PORT
RD_SERVER_PID=$DEMO_SERVER_PID

step "2. people join and chat"
for who in dave:general erin:general frank:random; do
	nick=${who%%:*}
	room=${who#*:}
	rd_spawn "$CLI" --port "$RD_PORT" --nick "$nick" --room "$room" listen \
		>"$RD_TMP/$nick.log" 2>&1
	echo "$nick listens in #$room (pid $RD_LAST_PID)"
	sleep 0.2
done
run --nick alice rooms
run --nick alice say "hello everyone in #general"
run --nick alice msg frank "psst, frank: this one is private"
run --nick alice --room random say "and hello #random"
run --nick alice who

step "3. files"
DEMO_ROOM=general RD_PORT=$RD_PORT "$RD_ROOT/scripts/demo-files.sh" 2>&1 |
	grep -v -e '^demo-files: done' | sed 's/^/  /'

step "3a. many small files: put DIR, committed together; get PATTERN"
mkdir -p "$RD_TMP/notes" "$RD_TMP/notes-back"
for i in $(seq 1 200); do printf 'note %d\n' "$i" >"$RD_TMP/notes/note-$i.txt"; done
echo "(200 files of a few bytes in $RD_TMP/notes: pipelined on one connection, and the"
echo " server commits each batch with one flush of its disk instead of one per file)"
printf '$ roomdrop --nick alice --quiet put %s\n' "$RD_TMP/notes"
"$CLI" --port "$RD_PORT" --nick alice --quiet put "$RD_TMP/notes" | sed 's/^/  /'
grep -m 3 "uploads committed together" "$DEMO_SERVER_LOG" | sed 's/^.*info  /  server log: /' || true
printf "\$ roomdrop --nick bob --quiet get 'note-1?.txt' -o %s\n" "$RD_TMP/notes-back"
"$CLI" --port "$RD_PORT" --nick bob --quiet get 'note-1?.txt' -o "$RD_TMP/notes-back" |
	sed 's/^/  /'

step "3b. a big file: sent while it is hashed, then known by its cached digest"
head -c $((32 * 1024 * 1024)) /dev/urandom >"$RD_TMP/big.bin"
echo "(32 MiB: the first put streams at once and hashes on another thread, its SHA-256"
echo " following the bytes; the server writes it around the page cache; the second put"
echo " declares the digest the client cached, and get verifies it)"
printf '$ roomdrop --nick alice put %s\n' "$RD_TMP/big.bin"
"$CLI" --port "$RD_PORT" --nick alice put "$RD_TMP/big.bin" 2>&1 | sed 's/^/  /'
printf '$ roomdrop --nick alice put --overwrite %s\n' "$RD_TMP/big.bin"
"$CLI" --port "$RD_PORT" --nick alice put --overwrite "$RD_TMP/big.bin" 2>&1 | sed 's/^/  /'
printf '$ roomdrop --nick bob get big.bin -o %s\n' "$RD_TMP/notes-back"
"$CLI" --port "$RD_PORT" --nick bob get big.bin -o "$RD_TMP/notes-back" 2>&1 | sed 's/^/  /'
cmp -s "$RD_TMP/big.bin" "$RD_TMP/notes-back/big.bin" && echo "  (the copy is identical)"

step "3c. offers: files handed to one person, who accepts (all or some) or rejects"
inbox=$(rd_tmpdir)
SAMPLES_DIR=$RD_ROOT/sample_files
for who in grace:--accept-all heidi:--take=*.txt ivan:--reject-all; do
	nick=${who%%:*}
	mkdir -p "$inbox/$nick"
	rd_spawn "$CLI" --port "$RD_PORT" --nick "$nick" --room music listen \
		--into "$inbox/$nick" "${who#*:}" >"$RD_TMP/$nick.log" 2>&1
	echo "$nick listens in #music with ${who#*:} (pid $RD_LAST_PID)"
done
sleep 0.5
offer() { # offer NICK PATH...: the command and its exit code
	local rc=0
	printf '$ roomdrop --nick alice offer %s\n' "$*"
	"$CLI" --port "$RD_PORT" --nick alice offer "$@" 2>&1 | sed 's/^/  /' || rc=$?
	echo "  (exit ${rc})"
}
offer grace "$SAMPLES_DIR"
offer heidi "$SAMPLES_DIR"
offer ivan "$SAMPLES_DIR/hello.txt"
sleep 0.3
for nick in grace heidi ivan; do
	echo "--- what $nick saw, and what $nick's folder holds"
	sed 's/^/  /' "$RD_TMP/$nick.log"
	(cd "$inbox/$nick" && find . -type f | sort | sed 's/^/  /')
done

step "4. the administrator"
ctl info
ctl list
ctl broadcast "the server says hello to everyone"
ctl broadcast --room random "a word for #random only"
ctl kick erin --reason "demo: showing how a kick looks"
sleep 0.5

step "5. what each listener saw"
for nick in dave erin frank; do
	echo "--- $nick"
	sed 's/^/  /' "$RD_TMP/$nick.log"
done

step "6. several servers as one (a cluster through Redis)"
# a master that redirects past one client and two secondaries, sharing rooms through a
# redis-server of the demo's own (a Unix socket in the temporary folder, persistence off)
cluster_skip=""
if "$SRV" --help | grep -q 'not in this build: it has no hiredis'; then
	cluster_skip="this roomdrop-server was built without hiredis (scripts/install-deps.sh installs libhiredis-dev)"
elif ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
	cluster_skip="redis-server is not installed (scripts/install-deps.sh installs it)"
fi
if [[ -n $cluster_skip ]]; then
	echo "cluster step skipped: $cluster_skip"
else
	main_pid=$RD_SERVER_PID main_port=$RD_PORT # the first server keeps running
	rsock=$RD_TMP/redis.sock
	rd_spawn redis-server --port 0 --unixsocket "$rsock" --unixsocketperm 700 --save '' \
		--appendonly no --dir "$RD_TMP" >"$RD_TMP/redis.log" 2>&1
	redis_pid=$RD_LAST_PID
	for _ in $(seq 1 100); do
		[[ $(timeout 5 redis-cli -s "$rsock" ping 2>/dev/null || true) == PONG ]] && break
		sleep 0.05
	done
	echo "redis-server pid $redis_pid on $rsock"
	cl=(--redis "$rsock" --cluster demo --rooms general)
	printf '$ roomdrop-server --redis %s --cluster demo --master --redirect-above 1\n' "$rsock"
	rd_start_server --store "$RD_TMP/cstore" --ctl-socket "$RD_TMP/m.ctl" "${cl[@]}" \
		--master --redirect-above 1
	m_port=$RD_PORT m_pid=$RD_SERVER_PID m_log=$RD_SERVER_LOG
	echo "  master pid $m_pid on 127.0.0.1:$m_port"
	sec_pids=()
	for i in 1 2; do
		printf '$ roomdrop-server --redis %s --cluster demo      (secondary %s)\n' "$rsock" "$i"
		rd_start_server --store "$RD_TMP/cstore" "${cl[@]}"
		sec_pids+=("$RD_SERVER_PID")
		echo "  secondary pid $RD_SERVER_PID on 127.0.0.1:$RD_PORT"
		for _ in $(seq 1 100); do
			grep -q "at 127.0.0.1:$RD_PORT joined" "$m_log" && break
			sleep 0.1
		done
	done
	echo "(all three use one store; the master keeps its first client and sends the next ones on)"
	for nick in kim lee max; do
		rd_spawn "$CLI" --port "$m_port" --nick "$nick" listen >"$RD_TMP/c-$nick.log" 2>&1
		for _ in $(seq 1 150); do
			grep -q "listening in general as $nick" "$RD_TMP/c-$nick.log" && break
			sleep 0.1
		done
		printf '$ roomdrop --port %s --nick %s listen\n' "$m_port" "$nick"
		if grep -q 'redirected you' "$RD_TMP/c-$nick.log"; then
			grep 'redirected you' "$RD_TMP/c-$nick.log" | sed 's/^/  /'
		else
			echo "  (stays on the master)"
		fi
	done
	RD_PORT=$m_port
	run --nick nia who general
	printf '$ roomdrop --port %s --nick nia say ...\n' "$m_port"
	"$CLI" --port "$m_port" --nick nia --quiet say "hello, all three servers"
	"$CLI" --port "$m_port" --nick nia --quiet msg max "max, this crosses servers too"
	for _ in $(seq 1 100); do
		grep -q "this crosses servers" "$RD_TMP/c-max.log" &&
			grep -q "all three servers" "$RD_TMP/c-kim.log" &&
			grep -q "all three servers" "$RD_TMP/c-lee.log" && break
		sleep 0.1
	done
	printf '$ roomdrop-server ctl list      (on the master: every client, with its server)\n'
	"$SRV" ctl --socket "$RD_TMP/m.ctl" list | sed 's/^/  /'
	for nick in kim lee max; do
		echo "--- what $nick saw"
		grep -v 'first connection' "$RD_TMP/c-$nick.log" | sed 's/^/  /' || true
	done
	for pid in "${sec_pids[@]}" "$m_pid" "$redis_pid"; do rd_stop_pid "$pid"; done
	echo "cluster step done: the servers and redis-server stopped"
	RD_SERVER_PID=$main_pid RD_PORT=$main_port
fi

if ((window)) && [[ -t 0 ]]; then
	step "the window is yours"
	echo "dave and frank are still connected. In the window: select one, press Kick (or Delete),"
	echo "or type a broadcast and press Enter. Close the window (Ctrl+Q) to end the demo."
	while kill -0 "$RD_SERVER_PID" 2>/dev/null; do sleep 0.5; done
	echo "window closed: the server stopped"
else
	step "stopping the server (pid $RD_SERVER_PID)"
	rd_stop_server "$RD_SERVER_PID"
	echo "server exited with status $RD_STOP_STATUS"
	[[ $RD_STOP_STATUS == 0 ]] || fail "server did not shut down cleanly"
fi
echo
echo "demo: done"
