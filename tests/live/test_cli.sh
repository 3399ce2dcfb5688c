#!/usr/bin/env bash
# test_cli.sh - the command-line client against the real server on 127.0.0.1: input
# checked before connecting (exit 2), unreachable and full servers, say/msg/listen between
# clients, presence lines, room isolation, rooms/who output, escaping of hostile text,
# broadcast and kick through ctl, listen's exit codes (signal, kick, server shutdown), the
# shell fed from a pipe, and the dice lobby example end to end.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"
[[ -x $BUILD/examples/lobby ]] || skip "$BUILD/examples/lobby is not built yet"

CLI=$BUILD/roomdrop
SRV=$BUILD/roomdrop-server
LOBBY=$BUILD/examples/lobby
unset ROOMDROP_HOST ROOMDROP_PORT ROOMDROP_NICK ROOMDROP_ROOM

# ---- helpers -------------------------------------------------------------------------

# expect WANT CMD...: run CMD with stdout+stderr in $OUT; fail unless it exits WANT.
OUT=$RD_TMP/out
expect()
{
	local want=$1 rc=0
	shift
	"$@" >"$OUT" 2>&1 || rc=$?
	[[ $rc == "$want" ]] || fail "'$*' exited $rc, wanted $want: $(head -c 400 "$OUT")"
}

# has FILE TEXT: FILE contains TEXT (fixed string).
has()
{
	grep -qF -- "$2" "$1" || fail "expected '$2' in $1, got: $(head -c 600 "$1")"
}

hasnt()
{
	! grep -qF -- "$2" "$1" || fail "did not expect '$2' in $1"
}

# wait_for FILE TEXT [SECONDS]: until FILE contains TEXT, at most SECONDS (default 10).
wait_for()
{
	local i n=$((${3:-10} * 20))
	for ((i = 0; i < n; i++)); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "'$2' did not appear in $1 within ${3:-10}s; it has: $(head -c 600 "$1" 2>/dev/null)"
}

# wait_exit PID SECONDS: wait for a process started with rd_spawn to end; its status in
# WAIT_STATUS. Fails if it is still running after SECONDS.
wait_exit()
{
	local pid=$1 i
	for ((i = 0; i < $2 * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		[[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* ]] && break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && [[ $(ps -o stat= -p "$pid" 2>/dev/null) != Z* ]] &&
		fail "pid $pid still running after $2 s"
	WAIT_STATUS=0
	wait "$pid" 2>/dev/null || WAIT_STATUS=$?
	rd__forget "$pid"
}

# listener NAME NICK [ROOM]: start `roomdrop listen` in the background; output in
# $RD_TMP/NAME.out / NAME.err, PID in LPID; returns once it is in its room.
listener()
{
	local name=$1 nick=$2 room=${3:-general}
	rd_spawn "$CLI" --port "$RD_PORT" --nick "$nick" --room "$room" listen \
		>"$RD_TMP/$name.out" 2>"$RD_TMP/$name.err"
	LPID=$RD_LAST_PID
	wait_for "$RD_TMP/$name.err" "listening in $room as $nick"
}

rdc() { "$CLI" --port "$RD_PORT" --timeout 10 "$@"; }

# ---- input checked before connecting -----------------------------------------------------

expect 2 "$CLI" --port 0 rooms
has "$OUT" "roomdrop: invalid port '0': use a number from 1 to 65535"
expect 2 "$CLI" --port 70000 rooms
has "$OUT" "invalid port '70000'"
expect 2 "$CLI" --port abc rooms
expect 2 env ROOMDROP_PORT=12x "$CLI" rooms
has "$OUT" "invalid port '12x' (from ROOMDROP_PORT)"
expect 2 "$CLI" --nick 'x y' rooms
has "$OUT" "roomdrop: nickname 'x y' is invalid: use 1-32 letters, digits, '_', '.', '-'"
expect 2 "$CLI" --nick "$(printf 'n%.0s' {1..33})" rooms
has "$OUT" "is invalid"
expect 4 "$CLI" --nick server rooms
has "$OUT" "nickname 'server' is reserved"
expect 2 env ROOMDROP_NICK='bad/nick' "$CLI" rooms
expect 2 "$CLI" --room 'no room' who
has "$OUT" "room name 'no room' is invalid"
expect 2 "$CLI" --host '' rooms
has "$OUT" "must not be empty"
expect 2 "$CLI" frobnicate
has "$OUT" "unknown command 'frobnicate'"
expect 2 "$CLI" --bogus rooms
has "$OUT" "unknown option '--bogus'"
expect 2 "$CLI" --timeout 0 rooms
expect 2 "$CLI" msg 'bad nick' hello
expect 2 "$CLI" say
expect 2 "$CLI" </dev/null
has "$OUT" "no command given"
# a nickname with terminal escapes is refused and shown escaped
expect 2 "$CLI" --nick $'a\e[2Jb' rooms
has "$OUT" 'a\x1b[2Jb'
expect 0 "$CLI" --help
for word in rooms who say msg listen shell put get ls rm --host --port --nick --room \
	--timeout --quiet ROOMDROP_HOST ROOMDROP_PORT ROOMDROP_NICK ROOMDROP_ROOM "Exit codes"; do
	has "$OUT" "$word"
done
expect 0 "$CLI" --version
has "$OUT" "roomdrop "

# ---- unreachable server ------------------------------------------------------------------

rd_start_server --store "$(rd_tmpdir)"
dead_port=$RD_PORT
rd_stop_server
expect 3 "$CLI" --port "$dead_port" rooms
has "$OUT" "roomdrop: cannot connect to 127.0.0.1:$dead_port: connection refused"
expect 3 "$CLI" --port "$dead_port" --timeout 2 say hello

# ---- a full server -------------------------------------------------------------------------

rd_start_server --store "$(rd_tmpdir)" --max-clients 1
listener full1 holder
expect 10 rdc --nick late rooms
has "$OUT" "refused the connection"
has "$OUT" "full"
rd_stop_pid "$LPID"
rd_stop_server

# ---- chat between clients --------------------------------------------------------------------

CTL=$RD_TMP/ctl.sock
rd_start_server --store "$(rd_tmpdir)" --rooms general,random --ctl-socket "$CTL"
listener bob bob general
bob_pid=$LPID
listener bob2 bobby general
listener dora dora random

expect 0 rdc --nick alice say hello everyone
wait_for "$RD_TMP/bob.out" "[general] <alice> hello everyone"
# people who really join are announced; a one-shot command is a quiet session (PROTOCOL.md
# section 10) and floods nobody with connected/joined/disconnected lines
has "$RD_TMP/bob.out" "* bobby joined general"
wait_for "$RD_TMP/bob.out" "* dora connected"
sleep 0.3
hasnt "$RD_TMP/bob.out" "alice connected"
hasnt "$RD_TMP/bob.out" "alice joined"
hasnt "$RD_TMP/bob.out" "alice disconnected"

expect 0 rdc --nick alice msg bob hi bob, just you
wait_for "$RD_TMP/bob.out" "[private] <alice> hi bob, just you"
expect 5 rdc --nick alice msg nobody hello
has "$OUT" "cannot send to 'nobody'"

# room isolation: dora's room message does not reach bob, alice's does not reach dora
expect 0 rdc --nick erin --room random say "only for random"
wait_for "$RD_TMP/dora.out" "[random] <erin> only for random"
hasnt "$RD_TMP/dora.out" "hello everyone"

# hostile bytes arrive escaped, never raw
expect 0 rdc --nick alice say $'clear\e[2Jscreen\x07'
wait_for "$RD_TMP/bob.out" '[general] <alice> clear\x1b[2Jscreen\x07'
if grep -q $'\e' "$RD_TMP/bob.out"; then fail "an ESC byte reached listen's output"; fi
sleep 0.2
hasnt "$RD_TMP/bob.out" "only for random"

# rooms and who
expect 0 rdc --nick alice rooms
has "$OUT" "general"
grep -Eq '^general +2 members$' "$OUT" || fail "rooms: $(cat "$OUT")"
grep -Eq '^random +1 member$' "$OUT" || fail "rooms: $(cat "$OUT")"
expect 0 rdc --nick alice who
grep -Eq '^bob ' "$OUT" || fail "who: $(cat "$OUT")"
grep -Eq '^alice ' "$OUT" || fail "who lists the asker too: $(cat "$OUT")"
expect 0 rdc --nick alice who random
grep -Eq '^dora ' "$OUT" || fail "who random: $(cat "$OUT")"
hasnt "$OUT" "bob"
expect 5 rdc --nick alice who nowhere
expect 5 rdc --nick alice --room nowhere say hi
has "$OUT" "cannot join room 'nowhere'"

# a nickname in use
expect 4 rdc --nick BOB say hi
has "$OUT" "nickname 'BOB' refused"

# environment variables as defaults, options over them
expect 0 env ROOMDROP_PORT="$RD_PORT" ROOMDROP_NICK=envnick ROOMDROP_ROOM=random \
	"$CLI" say from the environment
wait_for "$RD_TMP/dora.out" "[random] <envnick> from the environment"
expect 0 env ROOMDROP_PORT=1 ROOMDROP_NICK=envnick "$CLI" --port "$RD_PORT" --nick optnick \
	say options win
wait_for "$RD_TMP/bob.out" "[general] <optnick> options win"

# the shell, fed from a pipe: /commands and chat
printf '/who\n/rooms\n/join random\nhello from the shell\n/msg bob psst\n/nope\n/quit\n' |
	rdc --nick shelly shell >"$OUT" 2>&1 || fail "shell exited $?: $(cat "$OUT")"
has "$OUT" "In general:"
has "$OUT" "* You are in random"
has "$OUT" "unknown command /nope"
wait_for "$RD_TMP/dora.out" "[random] <shelly> hello from the shell"
wait_for "$RD_TMP/bob.out" "[private] <shelly> psst"

# the interactive shell on a terminal (tmux): an event arrives while a line is half typed;
# it prints above the prompt and the typed text comes back intact (tmux is a dependency:
# scripts/install-deps.sh installs it, so a missing tmux fails rather than hides the test)
command -v tmux >/dev/null 2>&1 || fail "tmux is missing (scripts/install-deps.sh installs it)"
if true; then
	TMUX_SOCK=$RD_TMP/tmux.sock
	tm() { tmux -S "$TMUX_SOCK" "$@"; }
	# shellcheck disable=SC2016 # expanded when the exit trap runs
	rd_on_exit 'tmux -S "$TMUX_SOCK" kill-server 2>/dev/null'
	tm new-session -d -x 120 -y 30 \
		"$CLI --port $RD_PORT --nick tina --room general shell; echo EXIT=\$?; sleep 60"
	screen() { tm capture-pane -p; }
	for ((i = 0; i < 200; i++)); do
		screen | grep -q '^tina@general>' && break
		sleep 0.05
	done
	screen | grep -q '^tina@general>' || fail "no shell prompt: $(screen)"
	tm send-keys "half a li"
	sleep 0.2
	expect 0 rdc --nick ursula say interrupting you
	for ((i = 0; i < 200; i++)); do
		screen | grep -qF '[general] <ursula> interrupting you' && break
		sleep 0.05
	done
	screen | grep -qF '[general] <ursula> interrupting you' || fail "event not shown: $(screen)"
	sleep 0.3
	last=$(screen | grep -v '^$' | tail -n 1)
	[[ $last == "tina@general> half a li" ]] || fail "typed line garbled: '$last' in: $(screen)"
	tm send-keys "ne" Enter
	wait_for "$RD_TMP/bob2.out" "[general] <tina> half a line" 10
	tm send-keys "/who" Enter
	for ((i = 0; i < 200; i++)); do
		screen | grep -q '^In general:' && break
		sleep 0.05
	done
	# the prompt comes back below the command's output, not above it
	screen | grep -v '^$' | tail -n 1 | grep -q '^tina@general>$' ||
		fail "prompt not below /who's output: $(screen)"
	tm send-keys "/quit" Enter
	for ((i = 0; i < 200; i++)); do
		screen | grep -q '^EXIT=' && break
		sleep 0.05
	done
	screen | grep -q '^EXIT=0$' || fail "shell did not quit with 0: $(screen)"
	tm kill-server 2>/dev/null || true
fi

# broadcast and kick through ctl
"$SRV" ctl --socket "$CTL" broadcast "maintenance at noon" >/dev/null ||
	fail "ctl broadcast failed"
wait_for "$RD_TMP/bob.out" "Message from the server on "
grep -Eq '^Message from the server on [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}: maintenance at noon$' \
	"$RD_TMP/bob.out" || fail "broadcast line: $(grep Message "$RD_TMP/bob.out")"
"$SRV" ctl --socket "$CTL" kick bob --reason spamming >/dev/null || fail "ctl kick failed"
wait_exit "$bob_pid" 10
[[ $WAIT_STATUS == 9 ]] || fail "a kicked listen exited $WAIT_STATUS, wanted 9"
has "$RD_TMP/bob.out" "* You were kicked: spamming"
wait_for "$RD_TMP/dora.out" "* bob was kicked (spamming)"

# listen ends with 0 on SIGTERM and SIGINT
listener term1 termy
kill -TERM "$LPID"
wait_exit "$LPID" 10
[[ $WAIT_STATUS == 0 ]] || fail "listen exited $WAIT_STATUS on SIGTERM"
listener int1 inty
kill -INT "$LPID"
wait_exit "$LPID" 10
[[ $WAIT_STATUS == 0 ]] || fail "listen exited $WAIT_STATUS on SIGINT"

# the server going away: listen reports it and exits 8
listener gone goner
gone_pid=$LPID
rd_stop_server
wait_exit "$gone_pid" 10
[[ $WAIT_STATUS == 8 ]] || fail "listen exited $WAIT_STATUS when the server stopped, wanted 8"
has "$RD_TMP/gone.out" "* Server is shutting down"

# ---- heartbeat: an idle listen answers PING and stays --------------------------------------

rd_start_server --store "$(rd_tmpdir)" --ping-interval 300ms --ping-timeout 500ms
listener beat idler
sleep 2
kill -0 "$LPID" 2>/dev/null || fail "listen was dropped by the heartbeat"
expect 0 rdc --nick checker who
grep -Eq '^idler ' "$OUT" || fail "idle listener gone after heartbeats: $(cat "$OUT")"
rd_stop_pid "$LPID"
rd_stop_server

# ---- display spoofing: format characters, NFC, escaping (PROTOCOL.md section 7) -------------

RAW=$BUILD/tests/rawput
[[ -x $RAW ]] || fail "$RAW is not built (make tests)"
RLO=$'\xe2\x80\xae' # U+202E RIGHT-TO-LEFT OVERRIDE: "n${RLO}fdp.exe" shows as "nexe.pdf"
hexof() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
rd_start_server --store "$(rd_tmpdir)"
listener spoof watcher general
# the server refuses a PUT of n<U+202E>fdp.exe with ERROR 500 BAD_FILENAME
expect 0 "$RAW" --port "$RD_PORT" --nick mallory name-put "$(hexof "n${RLO}fdp.exe")"
has "$OUT" "code 500"
for cp in $'\xe2\x80\x8b' $'\xef\xbb\xbf' $'\xe2\x80\xa8' $'\xe2\x80\xa9'; do # ZWSP BOM LS PS
	expect 0 "$RAW" --port "$RD_PORT" --nick mallory name-put "$(hexof "a${cp}b.txt")"
	has "$OUT" "code 500"
done
# the client refuses to send such a name, says which character, and exits 2
sdir=$(rd_tmpdir)
echo "not a pdf" >"$sdir/n${RLO}fdp.exe"
expect 2 rdc --nick mallory put "$sdir/n${RLO}fdp.exe"
has "$OUT" 'n\u202efdp.exe'
has "$OUT" "U+202E"
if grep -qF -- "$RLO" "$OUT"; then fail "the raw U+202E reached the terminal: $(cat "$OUT")"; fi
# nicknames and room names are ASCII: a format character is refused before connecting
expect 2 "$CLI" --port "$RD_PORT" --nick "ev${RLO}il" rooms
has "$OUT" 'ev\u202eil'
expect 2 "$CLI" --port "$RD_PORT" --nick eve --room "gen${RLO}eral" rooms

# NFC and NFD spellings of one name are one file: the server refuses NFD on the wire, the
# client normalises what it is given to NFC (a name typed or stored in NFD on macOS works)
NFD=$'cafe\xcc\x81.txt' NFC=$'caf\xc3\xa9.txt'
expect 0 "$RAW" --port "$RD_PORT" --nick mallory name-put "$(hexof "$NFD")"
has "$OUT" "code 500"
echo "first" >"$sdir/$NFD"
expect 0 rdc --nick alice put "$sdir/$NFD"
expect 0 rdc --nick alice ls
has "$OUT" "$NFC"
hasnt "$OUT" "$NFD"
echo "second" >"$sdir/$NFC"
expect 6 rdc --nick alice put "$sdir/$NFC" # the same name: exists, not a second file
expect 0 rdc --nick alice ls
[[ $(grep -c 'caf' "$OUT") == 1 ]] || fail "NFC and NFD made two files: $(cat "$OUT")"
gdir=$(rd_tmpdir)
expect 0 rdc --nick alice -o "$gdir" get "$NFD" # typed in NFD: found, saved under NFC
[[ $(cat "$gdir/$NFC") == first ]] || fail "get by the NFD name: $(ls "$gdir")"
[[ ! -e $gdir/$NFD ]] || fail "get saved the file under its NFD name"

# chat may carry U+202E (data is relayed unchanged), but the listener prints it escaped
expect 0 rdc --nick alice say "see n${RLO}fdp.exe and"$'\xe2\x80\x8b'"more"
wait_for "$RD_TMP/spoof.out" '<alice> see n\u202efdp.exe and\u200bmore'
if grep -qF -- "$RLO" "$RD_TMP/spoof.out"; then fail "a raw U+202E reached listen's output"; fi
rd_stop_pid "$LPID"
rd_stop_server

# ---- the dice lobby example ---------------------------------------------------------------------

rd_spawn "$LOBBY" serve --port 0 --port-file "$RD_TMP/lobby.port" >"$RD_TMP/lobby.log" 2>&1
lobby_pid=$RD_LAST_PID
wait_for "$RD_TMP/lobby.port" "" 10
lport=$(<"$RD_TMP/lobby.port")
rd_spawn "$LOBBY" play --port "$lport" --nick carol --seconds 8 --accept-duels >"$RD_TMP/carol.out" 2>&1
carol_pid=$RD_LAST_PID
wait_for "$RD_TMP/carol.out" "carol sits at lobby"
expect 0 "$LOBBY" play --port "$lport" --nick dave --roll 3 --seconds 1
grep -Eq '^dave rolled 3: [1-6] [1-6] [1-6]$' "$OUT" || fail "lobby roll: $(cat "$OUT")"
wait_for "$RD_TMP/carol.out" "* dave sat down at lobby"
wait_for "$RD_TMP/carol.out" "dave rolled 3:"
# the same roll reached both players
[[ $(grep 'dave rolled' "$OUT") == $(grep 'dave rolled' "$RD_TMP/carol.out") ]] ||
	fail "the players saw different rolls"
# the lobby is a roomdrop server too: the roomdrop client can talk in it
expect 0 "$CLI" --port "$lport" --nick frank --room lobby say hi from roomdrop
wait_for "$RD_TMP/carol.out" "<frank> hi from roomdrop"
expect 0 "$CLI" --port "$lport" --nick frank rooms
has "$OUT" "table1"
expect 1 "$LOBBY" play --port "$lport" --nick gina --room cellar --seconds 0
# a duel is an offer (PROTOCOL.md section 13) of the lobby's own type: accepted...
expect 0 "$LOBBY" play --port "$lport" --nick erin --challenge carol --seconds 5
has "$OUT" "carol accepts the duel"
has "$OUT" "duel with carol: accepted"
has "$OUT" "duel with carol: on"
wait_for "$RD_TMP/carol.out" "erin challenges you to a duel (best of 3 dice): accepted"
wait_for "$RD_TMP/carol.out" "duel with erin: on"
# ...refused with a reason by a player who does not accept duels...
rd_spawn "$LOBBY" play --port "$lport" --nick hal --seconds 8 >"$RD_TMP/hal.out" 2>&1
hal_pid=$RD_LAST_PID
wait_for "$RD_TMP/hal.out" "hal sits at lobby"
expect 4 "$LOBBY" play --port "$lport" --nick erin --challenge hal --seconds 5
has "$OUT" "hal refuses the duel: not accepting duels"
has "$OUT" "duel with hal: refused"
# ...and refused by the core when nobody of that name is there
expect 1 "$LOBBY" play --port "$lport" --nick erin --challenge nobody --seconds 1
has "$OUT" "cannot challenge nobody: no user 'nobody' is connected"
wait_exit "$hal_pid" 15
wait_exit "$carol_pid" 10
[[ $WAIT_STATUS == 0 ]] || fail "lobby play exited $WAIT_STATUS"
rd_stop_pid "$lobby_pid"
[[ $RD_STOP_STATUS == 0 ]] || fail "lobby serve exited $RD_STOP_STATUS on SIGTERM"

pass
