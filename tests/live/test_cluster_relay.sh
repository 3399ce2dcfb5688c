#!/usr/bin/env bash
# test_cluster_relay.sh - an offer's bytes relayed between two servers of a cluster through
# Redis (PROTOCOL.md 15.8), against a redis-server of its own (Unix socket, persistence
# off, stopped by PID):
#   * an offer from a client of S2 to a client of S1 that makes no direct link (--p2p
#     never) is relayed: the received file's SHA-256 is the sent one's, and each side says
#     it went through the server, as within one server;
#   * flow control: while the recipient reads nothing (SIGSTOP), the offer's Redis list
#     (rd:NAME:relay:SERVER:ID:NICK) fills to the window of 8 frames and no further, with an
#     expiry of at most 60 s; once it reads again the multi-MiB file arrives whole;
#   * the recipient's server killed with kill -9 mid-transfer: the offerer is told that
#     server stopped answering and exits 7; the recipient keeps its .part;
#   * the offerer's server killed mid-transfer: the recipient is told (PEER_GONE) and keeps
#     its .part;
#   * Redis stopped (SIGSTOP) mid-transfer: the offerer is told at once (FAILED) and exits
#     7, the recipient within 10 s (FAILED), and it keeps its .part;
#   * nothing of a finished relay is left in Redis;
#   * a room offer from a client of S2 reaches the room's members on both servers: a member
#     on S1 accepts and gets the file (relayed, SHA-256 verified), a member on S1 rejects,
#     a member on S2 accepts and gets it; the offerer's summary names each; no relay key is
#     left; and a room whose only other member is on S1 is not "nobody to offer to".
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

rd_need_server
CLI=$BUILD/roomdrop
SRV=$BUILD/roomdrop-server
[[ -x $CLI ]] || skip "$CLI is not built yet"
rd_need_cluster

rd_start_redis
cluster=(--redis "$RSOCK" --cluster t3 --ping-interval 300s)
rd_start_server --store "$(rd_tmpdir)" "${cluster[@]}"
S1=$RD_PORT
S1LOG=$RD_SERVER_LOG
S1PID=$RD_SERVER_PID
rd_start_server --store "$(rd_tmpdir)" "${cluster[@]}"
S2=$RD_PORT
S2PID=$RD_SERVER_PID
wait_for "$S1LOG" "at 127.0.0.1:$S2 joined" 10

dir=$(rd_tmpdir)
# relay_key: the one relay list in Redis (empty when none)
relay_key() { rcli --scan --pattern 'rd:t3:relay:*' | grep -v ':ack$' | head -n 1 || true; }
# wait_llen N: until the relay list holds N frames (30 s)
wait_llen()
{
	local i key n
	for ((i = 0; i < 300; i++)); do
		key=$(relay_key)
		if [[ -n $key ]]; then
			n=$(rcli llen "$key") || fail "redis-cli llen $key failed"
			((n <= 8)) || fail "the relay list holds $n frames: more than the window of 8"
			((n == $1)) && return 0
		fi
		sleep 0.1
	done
	fail "the relay list never held $1 frames (last: ${n:-none})"
}
# wait_part DIR: until a .part file with bytes in it is in DIR (30 s). Polled every 10 ms
# without spawning anything: the caller stops the recipient right after, long before the
# rest of a file of tens of MB can have crossed (a 40 MB relay takes about half a second).
wait_part()
{
	local i f
	for ((i = 0; i < 3000; i++)); do
		for f in "$1"/*.part; do
			[[ -s $f ]] && return 0
		done
		sleep 0.01
	done
	fail "no .part appeared in $1"
}

# ---- relayed, and the file arrives whole --------------------------------------------------
head -c 32000000 /dev/urandom >"$dir/big.bin"
want=$(sha256sum "$dir/big.bin" | cut -d' ' -f1)
mkdir -p "$dir/rx"
rd_spawn "$CLI" --port "$S1" --nick rx listen --accept-all --p2p never --into "$dir/rx" \
	>"$RD_TMP/rx.out" 2>&1
RX=$RD_LAST_PID
wait_for "$RD_TMP/rx.out" "listening" 15
rd_spawn "$CLI" --port "$S2" --nick tx --timeout 60 offer rx "$dir/big.bin" >"$RD_TMP/tx.out" 2>&1
TX=$RD_LAST_PID
# flow control: the recipient stops reading; the window fills and stops there
wait_part "$dir/rx"
kill -STOP "$RX" || fail "the recipient exited early: $(cat "$RD_TMP/rx.out")"
wait_llen 8
key=$(relay_key)
ttl=$(rcli pttl "$key")
((ttl > 0 && ttl <= 60000)) || fail "the relay list $key expires in $ttl ms (want 1..60000)"
sleep 1
(($(rcli llen "$key") == 8)) || fail "the relay list moved while its recipient read nothing"
kill -CONT "$RX"
rc=0
wait "$TX" || rc=$?
((rc == 0)) || fail "the relayed offer exited $rc: $(cat "$RD_TMP/tx.out")"
contains "$(cat "$RD_TMP/tx.out")" "through the server"
wait_for "$RD_TMP/rx.out" "received big.bin from tx (through the server)" 20
[[ $(sha256sum "$dir/rx/big.bin" | cut -d' ' -f1) == "$want" ]] ||
	fail "the file relayed across servers differs"
echo "a 32 MB offer from S2 to a client of S1 was relayed through Redis and verified"
for ((i = 0; i < 50; i++)); do
	[[ -z $(rcli --scan --pattern 'rd:t3:relay:*') ]] && break
	sleep 0.1
done
[[ -z $(rcli --scan --pattern 'rd:t3:relay:*') ]] ||
	fail "a finished relay left keys: $(rcli --scan --pattern 'rd:t3:relay:*')"
rd_stop_pid "$RX"

# ---- a room offer reaches the room's members on every server ----------------------------------
head -c 3000000 /dev/urandom >"$dir/room.bin"
want=$(sha256sum "$dir/room.bin" | cut -d' ' -f1)
mkdir -p "$dir/ra" "$dir/rr" "$dir/rl"
rd_spawn "$CLI" --port "$S1" --nick rr --room random listen --reject-all --into "$dir/rr" \
	>"$RD_TMP/rr.out" 2>&1
RR=$RD_LAST_PID
wait_for "$RD_TMP/rr.out" "listening" 15
# in_room NICK: until NICK's membership of room random is in Redis (10 s)
in_room()
{
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -n $(rcli hget rd:t3:room:random "$1") ]] && return 0
		sleep 0.1
	done
	fail "$1 never appeared in rd:t3:room:random"
}
# OFFER_NOBODY counts the room's members on every server: rr (on S1) is the only other one
in_room rr
rc=0
"$CLI" --port "$S2" --nick rtx --room random --timeout 60 offer --everyone "$dir/room.bin" \
	>"$RD_TMP/rtx0.out" 2>&1 || rc=$?
((rc == 11)) || fail "a room offer whose one other member is on S1 exited $rc, not 11: $(cat "$RD_TMP/rtx0.out")"
contains "$(cat "$RD_TMP/rtx0.out")" "rr rejects"
rd_spawn "$CLI" --port "$S1" --nick ra --room random listen --accept-all --into "$dir/ra" \
	>"$RD_TMP/ra.out" 2>&1
RA=$RD_LAST_PID
rd_spawn "$CLI" --port "$S2" --nick rl --room random listen --accept-all --into "$dir/rl" \
	>"$RD_TMP/rl.out" 2>&1
RL=$RD_LAST_PID
for f in ra rr rl; do wait_for "$RD_TMP/$f.out" "listening" 15; done
in_room ra
rc=0
"$CLI" --port "$S2" --nick rtx --room random --timeout 60 offer --everyone "$dir/room.bin" \
	>"$RD_TMP/rtx.out" 2>&1 || rc=$?
((rc == 0)) || fail "the room offer across servers exited $rc: $(cat "$RD_TMP/rtx.out")"
out=$(cat "$RD_TMP/rtx.out")
contains "$out" "ra accepts 1 of 1 file"
contains "$out" "rr rejects"
contains "$out" "rl accepts 1 of 1 file"
contains "$out" "ra: 1 of 1 file saved and verified"
contains "$out" "rl: 1 of 1 file saved and verified"
wait_for "$RD_TMP/ra.out" "received room.bin from rtx (through the server)" 20
wait_for "$RD_TMP/rl.out" "received room.bin from rtx" 20
for f in ra rl; do
	[[ $(sha256sum "$dir/$f/room.bin" | cut -d' ' -f1) == "$want" ]] ||
		fail "the room offer's file differs at $f"
done
[[ ! -e $dir/rr/room.bin ]] || fail "the member that rejected got the file"
for ((i = 0; i < 50; i++)); do
	[[ -z $(rcli --scan --pattern 'rd:t3:relay:*') ]] && break
	sleep 0.1
done
[[ -z $(rcli --scan --pattern 'rd:t3:relay:*') ]] ||
	fail "a finished room offer left relay keys: $(rcli --scan --pattern 'rd:t3:relay:*')"
for p in "$RA" "$RR" "$RL"; do rd_stop_pid "$p"; done
sed 's/^/  offerer: /' "$RD_TMP/rtx.out"
echo "a room offer from S2 reached members on S1 (one accepted, relayed and verified; one rejected) and on S2"

# ---- the recipient's server killed mid-transfer --------------------------------------------
rd_start_server --store "$(rd_tmpdir)" "${cluster[@]}"
S3=$RD_PORT
S3PID=$RD_SERVER_PID
wait_for "$S1LOG" "at 127.0.0.1:$S3 joined" 10
head -c 40000000 /dev/urandom >"$dir/huge.bin"
mkdir -p "$dir/rx2"
rd_spawn "$CLI" --port "$S3" --nick rx2 listen --accept-all --p2p never --into "$dir/rx2" \
	>"$RD_TMP/rx2.out" 2>&1
RX2=$RD_LAST_PID
wait_for "$RD_TMP/rx2.out" "listening" 15
rd_spawn "$CLI" --port "$S2" --nick tx2 --timeout 60 offer rx2 "$dir/huge.bin" \
	>"$RD_TMP/tx2.out" 2>&1
TX2=$RD_LAST_PID
wait_part "$dir/rx2"
kill -STOP "$RX2" || fail "the recipient exited early: $(cat "$RD_TMP/rx2.out")"
wait_llen 8
kill -9 "$S3PID"
rc=0
wait "$TX2" || rc=$?
((rc == 7)) || fail "the offerer exited $rc, not 7, when its recipient's server died: $(cat "$RD_TMP/tx2.out")"
contains "$(cat "$RD_TMP/tx2.out")" "ended: disconnected: its server 127.0.0.1:$S3 stopped answering"
kill -CONT "$RX2"
rd_stop_pid "$RX2"
[[ -n $(find "$dir/rx2" -name '*.part' -size +0) ]] || fail "the recipient lost its .part"
[[ -e $dir/rx2/huge.bin ]] && fail "the recipient saved a file that never arrived whole"
sed 's/^/  offerer: /' "$RD_TMP/tx2.out"
echo "the recipient's server died mid-transfer: the offerer was told and exited 7"

# ---- the offerer's server killed mid-transfer ---------------------------------------------
mkdir -p "$dir/rx3"
rd_spawn "$CLI" --port "$S1" --nick rx3 listen --accept-all --p2p never --into "$dir/rx3" \
	>"$RD_TMP/rx3.out" 2>&1
RX3=$RD_LAST_PID
wait_for "$RD_TMP/rx3.out" "listening" 15
rd_spawn "$CLI" --port "$S2" --nick tx3 --timeout 60 offer rx3 "$dir/huge.bin" \
	>"$RD_TMP/tx3.out" 2>&1
TX3=$RD_LAST_PID
wait_part "$dir/rx3"
kill -STOP "$RX3" || fail "the recipient exited early: $(cat "$RD_TMP/rx3.out")"
wait_llen 8
kill -9 "$S2PID"
kill -CONT "$RX3"
wait_for "$RD_TMP/rx3.out" "from tx3: the sender left" 20
rd_stop_pid "$TX3"
rd_stop_pid "$RX3"
[[ -n $(find "$dir/rx3" -name '*.part' -size +0) ]] || fail "the recipient lost its .part"
sed 's/^/  recipient: /' "$RD_TMP/rx3.out"
echo "the offerer's server died mid-transfer: the recipient was told"

# ---- Redis stops answering mid-transfer ------------------------------------------------------
rd_start_server --store "$(rd_tmpdir)" "${cluster[@]}"
S4=$RD_PORT
S4PID=$RD_SERVER_PID
wait_for "$S1LOG" "at 127.0.0.1:$S4 joined" 10
mkdir -p "$dir/rx4"
rd_spawn "$CLI" --port "$S1" --nick rx4 listen --accept-all --p2p never --into "$dir/rx4" \
	>"$RD_TMP/rx4.out" 2>&1
RX4=$RD_LAST_PID
wait_for "$RD_TMP/rx4.out" "listening" 15
rd_spawn "$CLI" --port "$S4" --nick tx4 --timeout 60 offer rx4 "$dir/huge.bin" \
	>"$RD_TMP/tx4.out" 2>&1
TX4=$RD_LAST_PID
wait_part "$dir/rx4"
kill -STOP "$RX4" || fail "the recipient exited early: $(cat "$RD_TMP/rx4.out")"
wait_llen 8
kill -STOP "$REDIS_PID"
kill -CONT "$RX4"
rc=0
wait "$TX4" || rc=$?
((rc == 7)) || fail "the offerer exited $rc, not 7, when Redis stopped answering: $(cat "$RD_TMP/tx4.out")"
contains "$(cat "$RD_TMP/tx4.out")" "ended: the cluster's Redis failed during the relay: no answer within 3 s"
wait_for "$RD_TMP/rx4.out" "from tx4: ended" 30
kill -CONT "$REDIS_PID"
rd_stop_pid "$RX4"
[[ -n $(find "$dir/rx4" -name '*.part' -size +0) ]] || fail "the recipient lost its .part"
[[ -e $dir/rx4/huge.bin ]] && fail "the recipient saved a file that never arrived whole"
sed 's/^/  offerer: /' "$RD_TMP/tx4.out"
sed 's/^/  recipient: /' "$RD_TMP/rx4.out"
echo "Redis stopped answering mid-transfer: both sides were told"

for pid in "$S1PID" "$S4PID"; do
	rd_stop_server "$pid"
	((RD_STOP_STATUS == 0)) || fail "a server exited $RD_STOP_STATUS on SIGTERM"
done
rd_stop_pid "$REDIS_PID"
pass
