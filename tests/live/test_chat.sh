#!/usr/bin/env bash
# test_chat.sh - direct chat and rooms in direct mode (issue 10 point 5; PROTOCOL.md 14.4
# and 14.5), with a real server and shells on 127.0.0.1:
#   1. /p2p bob, bob accepts: /msg bob goes over the direct link, both shells say
#      "direct", and the server did not carry it (its BYTES IN from alice and BYTES OUT to
#      bob in `ctl list` grow far less than the message's size);
#   2. a direct chat request refused: the asker hears it, and /msg goes through the server;
#      a `roomdrop listen` refuses one at once with its reason;
#   3. a peer that cannot be reached (ROOMDROP_TEST_P2P=unreachable): no link, and /msg
#      still arrives, through the server, and the shell says so; a link that closes (bob
#      leaves) is said too;
#   4. a room of 3 in direct mode where one member cannot be reached: every member gets
#      every message exactly once, directly where a link was made, else through the server
#      (SAY_EXCEPT);
#   5. direct mode for a room above 8 members is refused (ERROR 306); a member who joins
#      a room in direct mode hears its mode; a join that makes 9 members switches it
#      back, and every member hears why. Shells end by /quit with exit 0.
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"
CLI=$BUILD/roomdrop
SRV=$BUILD/roomdrop-server
CTL=$RD_TMP/ctl.sock

rd_start_server --store "$RD_TMP/store" --ctl-socket "$CTL" --offer-timeout 10s
work=$(rd_tmpdir)

# joined NICK: until the server logs NICK entering general (10 s at most)
joined()
{
	local i
	for ((i = 0; i < 200; i++)); do
		grep -qE "info  $1 \(127\.0\.0\.1:[0-9]+\) joined general" "$RD_SERVER_LOG" && return 0
		sleep 0.05
	done
	fail "$1 never joined general: $(tail -5 "$RD_SERVER_LOG")"
}

# shell NICK: a shell reading the fifo $work/NICK.in, its output in $RD_TMP/NICK.log; its
# pid in PID_NICK and the fifo's write end in FD_NICK (environment passes through)
shell()
{
	local nick=$1 fd
	mkfifo "$work/$nick.in"
	# (the fifo opens in the background: it blocks until the write end below is open)
	(exec "$CLI" --port "$RD_PORT" --nick "$nick" shell <"$work/$nick.in" \
		>"$RD_TMP/$nick.log" 2>&1) &
	RD_PIDS+=("$!")
	printf -v "PID_$nick" '%s' "$!"
	exec {fd}>"$work/$nick.in"
	printf -v "FD_$nick" '%s' "$fd"
	joined "$nick"
}

# say NICK LINE: type LINE in NICK's shell
say()
{
	local v="FD_$1"
	echo "$2" >&"${!v}"
}

# quit NICK: /quit; the shell must end by itself (10 s at most) with exit 0 (a
# sanitizer's report at exit fails the test too)
quit()
{
	local p="PID_$1" f="FD_$1" i
	echo /quit >&"${!f}"
	exec {f}>&-
	for ((i = 0; i < 200; i++)); do
		kill -0 "${!p}" 2>/dev/null || break
		[[ $(ps -o stat= -p "${!p}" 2>/dev/null) == Z* ]] && break
		sleep 0.05
	done
	rd_stop_pid "${!p}"
	[[ $RD_STOP_STATUS == 0 ]] || fail "$1's shell exited $RD_STOP_STATUS: $(tail -5 "$RD_TMP/$1.log")"
}

# counts NICK: "BYTES_IN BYTES_OUT" the server has for NICK's connection (ctl list)
counts()
{
	local line
	line=$("$SRV" ctl --socket "$CTL" list | grep -E "^127\.0\.0\.1 +[0-9]+  $1 ") ||
		fail "$1 is not in ctl list"
	[[ $line =~ \ ([0-9]+)\ +([0-9]+)\ \ [^\ ].*$ ]] || fail "no byte counts in: $line"
	echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
}

# once FILE TEXT: FILE has exactly one line containing TEXT
once()
{
	local n
	n=$(grep -cF -- "$2" "$1" || true)
	((n == 1)) || fail "'$2' is in $1 $n times, not once: $(cat "$1")"
}

# ---- 1. /p2p, accepted, then /msg goes directly ------------------------------------------
shell alice
shell bob
say alice "/p2p bob"
wait_for "$RD_TMP/bob.log" "alice asks for a direct chat - accept? [y/N]"
say bob y
wait_for "$RD_TMP/alice.log" "direct link with bob: /msg bob goes over it"
wait_for "$RD_TMP/bob.log" "direct link with alice: /msg alice goes over it"
read -r a_in0 _ <<<"$(counts alice)"
read -r _ b_out0 <<<"$(counts bob)"
long="direct-$(head -c 15000 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 30000)"
say alice "/msg bob $long"
wait_for "$RD_TMP/bob.log" "[private, direct] <alice> $long"
wait_for "$RD_TMP/alice.log" "-> bob (direct)"
read -r a_in1 _ <<<"$(counts alice)"
read -r _ b_out1 <<<"$(counts bob)"
((a_in1 - a_in0 < 5000)) || fail "the server read $((a_in1 - a_in0)) bytes from alice for a direct /msg of ${#long}"
((b_out1 - b_out0 < 5000)) || fail "the server sent bob $((b_out1 - b_out0)) bytes for a direct /msg of ${#long}"
grep -qF "$long" "$RD_SERVER_LOG" && fail "the direct message is in the server's log"
# and back, bob to alice
say bob "/msg alice back-over-the-link"
wait_for "$RD_TMP/alice.log" "[private, direct] <bob> back-over-the-link"
echo "1. /p2p then /msg: directly (the server read $((a_in1 - a_in0)) bytes from alice, sent $((b_out1 - b_out0)) to bob, for ${#long})"

# ---- 2. refused -----------------------------------------------------------------------------
shell carol
say alice "/p2p carol"
wait_for "$RD_TMP/carol.log" "alice asks for a direct chat - accept? [y/N]"
say carol n
wait_for "$RD_TMP/alice.log" "no direct link with carol (carol said no: no thanks)"
read -r _ c_out0 <<<"$(counts carol)"
say alice "/msg carol relayed-to-carol $long"
wait_for "$RD_TMP/carol.log" "[private] <alice> relayed-to-carol $long"
wait_for "$RD_TMP/alice.log" "-> carol (through the server)"
read -r _ c_out1 <<<"$(counts carol)"
# (the counters do see a relayed message: the check of 1 can fail)
((c_out1 - c_out0 > ${#long})) || fail "the server sent carol only $((c_out1 - c_out0)) bytes for a relayed /msg of ${#long}"
echo "2. refused: the asker heard it; /msg went through the server ($((c_out1 - c_out0)) bytes to carol)"
# a `roomdrop listen` takes file offers only: it refuses a chat at once, with its reason
rd_spawn "$CLI" --port "$RD_PORT" --nick lena listen >"$RD_TMP/lena.log" 2>&1
LENA=$RD_LAST_PID
joined lena
say alice "/p2p lena"
wait_for "$RD_TMP/alice.log" "no direct link with lena (lena said no: no direct chat here (roomdrop listen))"
wait_for "$RD_TMP/lena.log" "offers something this program does not take (type 0x0070): rejected"
rd_stop_pid "$LENA"
echo "2b. roomdrop listen refused a direct chat at once, and said why"

# ---- 3. unreachable --------------------------------------------------------------------------
ROOMDROP_TEST_P2P=unreachable shell dave
say alice "/p2p dave"
wait_for "$RD_TMP/dave.log" "alice asks for a direct chat - accept? [y/N]"
say dave y
wait_for "$RD_TMP/alice.log" "no direct link with dave (" 15
contains "$(cat "$RD_TMP/alice.log")" "messages to dave go through the server"
say alice "/msg dave relayed-to-dave"
wait_for "$RD_TMP/dave.log" "[private] <alice> relayed-to-dave"
wait_for "$RD_TMP/alice.log" "-> dave (through the server)"
grep -qF "[private, direct] <alice> relayed-to-dave" "$RD_TMP/dave.log" &&
	fail "dave got a direct message without a link"
echo "3. unreachable: no link, /msg arrived through the server and the shell said so"
# the link breaks (bob leaves): alice's shell says so, and /msg goes through the server
quit bob
wait_for "$RD_TMP/alice.log" "the direct link with bob closed: messages to bob go through the server"
echo "3b. a link that closes is said, and not used again"
for n in alice carol dave; do quit "$n"; done

# ---- 4. a room of 3 in direct mode, one member unreachable ---------------------------------
shell ann
shell ben
ROOMDROP_TEST_P2P=unreachable shell cat
say ann "/direct on"
for n in ann ben cat; do
	wait_for "$RD_TMP/$n.log" "general is in direct mode (switched by ann)"
done
wait_for "$RD_TMP/ann.log" "direct link with ben (room general)"
wait_for "$RD_TMP/ben.log" "direct link with ann (room general)"
wait_for "$RD_TMP/ann.log" "no direct link with cat" 15
wait_for "$RD_TMP/ben.log" "no direct link with cat" 15
for n in ann ben cat; do
	say "$n" "room-from-$n"
	wait_for "$RD_TMP/$n.log" "-> general: "
done
wait_for "$RD_TMP/ben.log" "[general, direct] <ann> room-from-ann"
wait_for "$RD_TMP/ann.log" "[general, direct] <ben> room-from-ben"
wait_for "$RD_TMP/cat.log" "[general] <ann> room-from-ann"
wait_for "$RD_TMP/cat.log" "[general] <ben> room-from-ben"
wait_for "$RD_TMP/ann.log" "[general] <cat> room-from-cat"
wait_for "$RD_TMP/ben.log" "[general] <cat> room-from-cat"
contains "$(cat "$RD_TMP/ann.log")" "-> general: 1 direct, 1 through the server"
contains "$(cat "$RD_TMP/cat.log")" "-> general: 0 direct, 2 through the server"
# a last message from each, then every count: exactly once everywhere
for n in ann ben cat; do say "$n" "/msg $n done-$n"; done
for n in ann ben cat; do wait_for "$RD_TMP/$n.log" "<$n> done-$n"; done
for from in ann ben cat; do
	for to in ann ben cat; do
		[[ $from == "$to" ]] && continue
		once "$RD_TMP/$to.log" "> room-from-$from"
	done
done
echo "4. a room of 3 in direct mode: every message once, directly ann<->ben, through the server for cat"

# ---- 5. too big for direct mode; a newcomer hears the mode; a 9th member ends it -----------
say ann "/direct off"
wait_for "$RD_TMP/ben.log" "general goes through the server again (ann)"
quit cat
for i in 1 2 3 4 5 6 7; do shell "f$i"; done
say ann "/direct on"
wait_for "$RD_TMP/ann.log" "cannot switch the room to direct mode: room 'general' has 9 members: direct mode is for at most 8"
quit f7
quit f6
# (the server announces a departure after the member left the room)
wait_for "$RD_TMP/ann.log" "* f6 disconnected"
wait_for "$RD_TMP/ann.log" "* f7 disconnected"
say ann "/direct on"
for n in ben f1 f5; do
	wait_for "$RD_TMP/$n.log" "general is in direct mode (switched by ann)"
done
# (the refused switch was never announced: once in each log, from the second one)
once "$RD_TMP/f1.log" "general is in direct mode"
shell eve
wait_for "$RD_TMP/eve.log" "general is in direct mode: messages go from member to member"
shell f8
for n in eve ben f1; do
	wait_for "$RD_TMP/$n.log" "general goes through the server again (it has too many members for direct mode)"
done
echo "5. direct mode refused above 8 members, told to a newcomer, and switched back when a 9th joined"
for n in ann ben eve f1 f2 f3 f4 f5 f8; do quit "$n"; done
pass
