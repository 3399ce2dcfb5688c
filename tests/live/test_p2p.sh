#!/usr/bin/env bash
# test_p2p.sh - file offers over a direct link (issue 10 points 3 and 4; PROTOCOL.md section
# 14), with a real server and clients on 127.0.0.1:
#   1. an offer to one user goes directly: it arrives verified, both sides say "direct",
#      and the server did not carry it (the receiver's BYTES OUT in `ctl list` stays far
#      below the file's size);
#   1b. a direct link that breaks mid-transfer: the transfer goes on through the server
#      from what the recipient holds (RESUME), not from zero: it verifies (exit 0), both
#      sides say so, and the server sent bob less than the file;
#   1c. the same with --p2p only: what the link did not carry fails (exit 7), the .part
#      stays, and a new offer resumes from it, directly;
#   2. a receiver with --p2p never: the same offer goes through the server and both sides
#      say so (and the receiver's BYTES OUT grows by at least the file's size);
#   3. a peer that cannot be reached: after the direct attempt (about 2 s) the files go
#      through the server and still verify;
#   4. --p2p only with that peer: exit 15, nothing sent, a clear message;
#   5. --p2p usage errors (exit 2).
# ROOMDROP_TEST_P2P (read by client/direct.c, for tests only): "loopback" (lib.sh sets it
# for every live test) makes a client listen on 127.0.0.1 and report no interface address;
# "unreachable" makes it report a closed port and dial nothing, so that no direct link can
# be made with it.
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
SIZE=4194304
head -c $SIZE /dev/urandom >"$work/big.bin"

rdc() { "$CLI" --port "$RD_PORT" --timeout 20 "$@"; }

# listener NICK DIR ARGS...: NICK listening with --accept-all; its pid in LISTENER
listener()
{
	local nick=$1 dir=$2 i before re
	shift 2
	mkdir -p "$dir"
	# (the same nickname may have joined before: wait for one more join line)
	re="info  $nick \(127\.0\.0\.1:[0-9]+\) joined general"
	before=$(grep -cE "$re" "$RD_SERVER_LOG" || true)
	rd_spawn "$CLI" --port "$RD_PORT" --nick "$nick" listen --accept-all --into "$dir" "$@" \
		>"$RD_TMP/$nick.log" 2>&1
	LISTENER=$RD_LAST_PID
	for ((i = 0; i < 400; i++)); do
		(($(grep -cE "$re" "$RD_SERVER_LOG" || true) > before)) && return 0
		sleep 0.05
	done
	fail "$nick never joined general: $(tail -5 "$RD_SERVER_LOG")"
}

# bytes_out NICK: what the server has sent to NICK's connection (ctl list, BYTES OUT)
bytes_out()
{
	local line
	line=$("$SRV" ctl --socket "$CTL" list | grep -E "^127\.0\.0\.1 +[0-9]+  $1 ") ||
		fail "$1 is not in ctl list"
	[[ $line =~ \ ([0-9]+)\ +([0-9]+)\ \ [^\ ].*$ ]] || fail "no byte counts in: $line"
	echo "${BASH_REMATCH[2]}"
}

same() { cmp -s "$1" "$2" || fail "$2 differs from $1"; }

# ---- 1. directly ---------------------------------------------------------------------------
listener bob "$work/bob"
run 0 rdc --nick alice offer bob "$work/big.bin"
contains "$OUT" "sent directly to bob"
contains "$OUT" "bob: 1 of 1 file saved and verified"
same "$work/big.bin" "$work/bob/big.bin"
wait_for "$RD_TMP/bob.log" "received big.bin from alice (direct), sha256"
out=$(bytes_out bob)
((out < SIZE / 4)) || fail "the server sent bob $out bytes for a direct transfer of $SIZE"
rd_stop_pid "$LISTENER"
echo "1. direct: verified, said so, and the server sent bob only $out bytes"

# ---- 1b. the link breaks mid-transfer: the rest goes through the server -----------------------
ROOMDROP_TEST_P2P="cut" listener bob "$work/bob4"
run 0 rdc --nick alice offer bob "$work/big.bin"
contains "$OUT" "the direct link to bob broke after"
contains "$OUT" "sending the rest through the server"
contains "$OUT" "sent to bob directly until the link broke, the rest through the server"
contains "$OUT" "bob: 1 of 1 file saved and verified"
same "$work/big.bin" "$work/bob4/big.bin"
wait_for "$RD_TMP/bob.log" "received big.bin from alice (direct, then through the server), sha256"
contains "$(cat "$RD_TMP/bob.log")" "the direct link broke"
contains "$(cat "$RD_TMP/bob.log")" "asking for the rest through the server"
out=$(bytes_out bob)
((out < SIZE - 512 * 1024)) ||
	fail "the server sent bob $out bytes: the rest of $SIZE did not continue from the break"
((out > SIZE / 4)) || fail "the server sent bob only $out bytes: the rest did not go through it"
rd_stop_pid "$LISTENER"
echo "1b. link broken mid-transfer: continued through the server ($out of $SIZE bytes), verified"

# ---- 1c. the same with --p2p only: fails, and a new offer resumes --------------------------------
ROOMDROP_TEST_P2P="cut" listener bob "$work/bob3"
run 7 rdc --nick alice offer --p2p only bob "$work/big.bin"
contains "$OUT" "the direct link to bob broke after"
contains "$OUT" "not sent through the server (--p2p only)"
wait_for "$RD_TMP/bob.log" "the direct link broke"
wait_for "$RD_TMP/bob.log" "the offer ended before all of it came"
[[ -s $work/bob3/big.bin.part ]] || fail "no .part kept after the link broke"
[[ ! -e $work/bob3/big.bin ]] || fail "a file was saved from a broken link"
rd_stop_pid "$LISTENER"
listener bob "$work/bob3"
run 0 rdc --nick alice offer bob "$work/big.bin"
contains "$OUT" "resuming at"
contains "$OUT" "sent directly to bob"
same "$work/big.bin" "$work/bob3/big.bin"
rd_stop_pid "$LISTENER"
echo "1c. link broken with --p2p only: exit 7, .part kept, the next offer resumed directly"

# ---- 2. the receiver says never --------------------------------------------------------------
listener bob "$work/bob2" --p2p never
run 0 rdc --nick alice offer bob "$work/big.bin"
contains "$OUT" "sent through the server (no direct link: direct links off)"
contains "$OUT" "bob: 1 of 1 file saved and verified"
same "$work/big.bin" "$work/bob2/big.bin"
wait_for "$RD_TMP/bob.log" "received big.bin from alice (through the server), sha256"
out=$(bytes_out bob)
((out >= SIZE)) || fail "the server sent bob $out bytes for a relayed transfer of $SIZE"
rd_stop_pid "$LISTENER"
echo "2. --p2p never: through the server ($out bytes to bob), said so"

# ---- 3. a peer that cannot be reached ----------------------------------------------------------
ROOMDROP_TEST_P2P=unreachable listener carol "$work/carol"
CAROL=$LISTENER
run 0 rdc --nick alice offer carol "$work/big.bin"
contains "$OUT" "sent through the server (no direct link:"
contains "$OUT" "carol: 1 of 1 file saved and verified"
same "$work/big.bin" "$work/carol/big.bin"
wait_for "$RD_TMP/carol.log" "received big.bin from alice (through the server), sha256"
contains "$(cat "$RD_TMP/carol.log")" "no direct link"
echo "3. unreachable peer: fell back to the server, verified"

# ---- 4. --p2p only with that peer --------------------------------------------------------------
cp "$work/big.bin" "$work/only.bin"
run 15 rdc --nick alice offer --p2p only carol "$work/only.bin"
contains "$OUT" "no direct link to carol"
contains "$OUT" "nothing sent (--p2p only)"
[[ ! -e $work/carol/only.bin ]] || fail "--p2p only sent the file through the server"
rd_stop_pid "$CAROL"
echo "4. --p2p only without a direct link: exit 15, nothing sent"

# ---- 5. usage --------------------------------------------------------------------------------
run 2 rdc --nick alice offer --p2p sometimes carol "$work/big.bin"
contains "$OUT" "--p2p takes auto, never or only"
run 2 rdc --nick alice listen --p2p only
contains "$OUT" "only is for offer"
run 2 rdc --nick alice offer --everyone --p2p only "$work/big.bin"
contains "$OUT" "--p2p only is for an offer to one user"
run 2 rdc --nick alice put --p2p never "$work/big.bin"
contains "$OUT" "--p2p is for offer and listen"
echo "5. --p2p usage errors: exit 2"

pass
