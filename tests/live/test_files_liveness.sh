#!/usr/bin/env bash
# test_files_liveness.sh - a connection's reader never waits on the disk (issue 9, point 2):
# heartbeats measure the peer. With a 1 s heartbeat timeout, a client survives
#   - a PUT_END whose fsync takes 2.5 s (an LD_PRELOAD shim slows fsync in the server),
#   - a PUT of content another connection is uploading (the staging key is busy; it is
#     waited for, up to 2 s, off the reader thread),
# because the server's reader keeps reading its PONGs meanwhile.
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

rd_need_server
CLI=$BUILD/roomdrop
RAW=$BUILD/tests/rawput
SLOW=$BUILD/tests/slowfsync.so
[[ -x $CLI && -x $RAW && -f $SLOW ]] || skip "client, rawput or slowfsync.so not built (make tests)"
HB=(--ping-interval 200ms --ping-timeout 1s)
src=$(rd_tmpdir)
head -c 100000 /dev/urandom >"$src/a.bin"
head -c 3000000 /dev/urandom >"$src/big.bin"

# ---- a slow fsync ---------------------------------------------------------------------------
# (a sanitizer runtime must not object to the shim coming first)
ASAN_OPTIONS="verify_asan_link_order=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
	LD_PRELOAD=$SLOW SLOWFSYNC_MS=2500 rd_start_server --store "$(rd_tmpdir)" "${HB[@]}" \
	--open-nicks # (creating the nickname database takes 7 slowed syncs: not under test)
t0=$SECONDS
"$CLI" --port "$RD_PORT" --nick slowdisk --quiet put "$src/a.bin" >"$RD_TMP/put1.out" 2>&1 ||
	fail "put during a slow fsync failed: $(cat "$RD_TMP/put1.out")"
((SECONDS - t0 >= 2)) || fail "the fsync was not slowed (the shim did not load?)"
grep -q 'slowdisk.*timed out\|slowdisk.*ping timeout' "$RD_SERVER_LOG" &&
	fail "the client was dropped while the server flushed to disk"
rd_stop_server

# ---- a busy staging key ------------------------------------------------------------------
rd_start_server --store "$(rd_tmpdir)" "${HB[@]}"
# A starts the same content and stops answering after two chunks: it holds the staging
# key until the heartbeat drops it (about 1.2 s)
rd_spawn "$RAW" --port "$RD_PORT" --nick holder put "$src/big.bin" --stop-after 2 \
	>"$RD_TMP/holder.out" 2>&1
for ((i = 0; i < 100; i++)); do grep -q 'stopped after' "$RD_TMP/holder.out" && break; sleep 0.05; done
grep -q 'stopped after' "$RD_TMP/holder.out" || fail "rawput did not start: $(cat "$RD_TMP/holder.out")"
"$CLI" --port "$RD_PORT" --nick second --quiet put "$src/big.bin" >"$RD_TMP/put2.out" 2>&1 ||
	fail "the second put of the same content failed: $(cat "$RD_TMP/put2.out")"
grep -q 'second.*ping timeout' "$RD_SERVER_LOG" &&
	fail "the waiting client was dropped: its reader did not read PONG"
grep -q 'holder.*ping timeout' "$RD_SERVER_LOG" ||
	fail "the silent holder was not dropped by the heartbeat (test premise)"
pass
