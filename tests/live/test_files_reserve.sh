#!/usr/bin/env bash
# test_files_reserve.sh - disk reservations and staged bytes (PROTOCOL.md section 17,
# "Reservations and staged bytes"), on a 40 MB tmpfs the test mounts:
#   A. an upload reserves its declared size; when its connection goes, the reservation is
#      punched back to the bytes written: three uploaders that declare 12 MiB, send 10
#      bytes and die do not block the next 12 MiB upload;
#   B. across a restart: reservations left by a killed server are released at start;
#   C. the room quota counts staged bytes of uploads nobody is connected to;
#   D. the per-user cap (--max-staged-per-user) counts a nickname's uploads in progress
#      and what its abandoned uploads left staged; a resume is not counted twice;
#   E. a refused PUT leaves no staging file.
# Abandoned uploads come from tests/helpers/rawput.c (--stop-after, then kill -9).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"
[[ -x $BUILD/tests/rawput ]] || skip "$BUILD/tests/rawput is not built (make tests)"

CLI=$BUILD/roomdrop
RAW=$BUILD/tests/rawput
MiB=1048576
rdc() { "$CLI" --port "$RD_PORT" --timeout 20 "$@"; }
kill9() { kill -KILL "$1" 2>/dev/null || true; rd_stop_pid "$1"; }
staging_count() { find "$1/.staging" -type f | wc -l; }
# bytes allocated to the files under DIR (what reservations hold)
allocated() { find "$1" -type f -printf '%b\n' | awk '{ s += $1 * 512 } END { print s + 0 }'; }
# wait_released DIR MAX: until the staging files under DIR hold at most MAX bytes of disk
wait_released()
{
	local i
	for ((i = 0; i < 200; i++)); do
		(($(allocated "$1") <= $2)) && return 0
		sleep 0.05
	done
	fail "staging under $1 still holds $(allocated "$1") bytes of disk (want <= $2): $(find "$1" -type f -printf '%p %s bytes, %b blocks\n')"
}
# abandon NICK FILE CHUNK K: an upload of FILE that sends K chunks of CHUNK bytes, then
# its client is killed (-9)
abandon()
{
	local log=$RD_TMP/raw-$1.log
	rd_spawn "$RAW" --port "$RD_PORT" --nick "$1" put "$2" --chunk "$3" --stop-after "$4" >"$log" 2>&1
	local pid=$RD_LAST_PID
	wait_for "$log" "stopped after $4 chunks"
	kill9 "$pid"
}

mnt=$RD_TMP/mnt
mkdir -p "$mnt"
mount -t tmpfs -o size=40m,mode=0755 roomdrop-test "$mnt" 2>"$RD_TMP/mount.err" ||
	skip "cannot mount a tmpfs here ($(cat "$RD_TMP/mount.err")); needs root or CAP_SYS_ADMIN"
rd_on_exit 'for p in "${RD_PIDS[@]}"; do rd_stop_pid "$p"; done; umount "$mnt" 2>/dev/null || umount -l "$mnt"'

work=$(rd_tmpdir)
for i in 1 2 3 4; do head -c $((12 * MiB)) /dev/urandom >"$work/big$i.bin"; done

# ---- A. a reservation nobody holds is released -------------------------------------------
store=$mnt/a
rd_start_server --store "$store" --min-free 1M
for n in 1 2 3; do
	abandon "gone$n" "$work/big$n.bin" 10 1
done
[[ $(staging_count "$store") == 3 ]] || fail "want 3 staging files: $(find "$store/.staging" -type f)"
for f in "$store"/.staging/general/*; do
	[[ $(stat -c %s "$f") == 10 ]] || fail "staging file $f holds $(stat -c %s "$f") bytes, want 10"
done
wait_released "$store/.staging" $((3 * 64 * 1024))
run 0 rdc --nick alice put "$work/big4.bin"
contains "$OUT" "verified"
# the abandoned uploads still resume from their 10 bytes
run 0 rdc --nick gone1 put "$work/big1.bin"
contains "$OUT" "resumed at 10 B"
rd_stop_server

# ---- B. reservations left by a killed server are released when it starts -----------------
rd_start_server --store "$store" --min-free 1M
log=$RD_TMP/raw-b.log
rd_spawn "$RAW" --port "$RD_PORT" --nick held put "$work/big2.bin" --chunk 10 --stop-after 1 >"$log" 2>&1
rawpid=$RD_LAST_PID
wait_for "$log" "stopped after 1 chunks"
kill9 "$RD_SERVER_PID"
kill9 "$rawpid"
rd_start_server --store "$store" --min-free 1M
wait_released "$store/.staging" $((3 * 64 * 1024))
wait_for "$RD_SERVER_LOG" "released the disk reservations of 1 abandoned upload"
rd_stop_server
rm -rf "$store"

# ---- C. the room quota counts what abandoned uploads left staged ---------------------------
store=$mnt/c
rd_start_server --store "$store" --min-free 1M --room-quota 10M
head -c $((8 * MiB)) /dev/urandom >"$work/q8.bin"
head -c $((7 * MiB)) /dev/urandom >"$work/q7.bin"
abandon quitter "$work/q8.bin" 262144 16 # 4 MiB staged, nobody connected
run 10 rdc --nick alice put "$work/q7.bin"
contains "$OUT" "quota"
[[ $(staging_count "$store") == 1 ]] || fail "a PUT refused for quota left a staging file: $(find "$store/.staging" -type f)"
# finishing the abandoned upload is allowed (its staged bytes are not counted twice)
run 0 rdc --nick quitter put "$work/q8.bin"
contains "$OUT" "resumed at 4.2 MB"
rd_stop_server
rm -rf "$store"

# ---- D. a cap per nickname on staged bytes ---------------------------------------------
store=$mnt/d
rd_start_server --store "$store" --min-free 1M --max-staged-per-user 3M
head -c $((4 * MiB)) /dev/urandom >"$work/u4.bin"
head -c $((2 * MiB)) /dev/urandom >"$work/u2.bin"
head -c $((5 * MiB / 2)) /dev/urandom >"$work/u25.bin"
run 10 rdc --nick hog put "$work/u4.bin"
contains "$OUT" "per user"
abandon hog "$work/u2.bin" 262144 4 # 1 MiB staged by hog
run 10 rdc --nick hog put "$work/u25.bin"
contains "$OUT" "per user"
[[ $(staging_count "$store") == 1 ]] || fail "PUTs refused by the cap left staging files: $(find "$store/.staging" -type f)"
run 0 rdc --nick bob put "$work/u25.bin"
run 0 rdc --nick hog put "$work/u2.bin"
contains "$OUT" "resumed at 1.0 MB"
run 0 rdc --nick hog put "$work/u25.bin" --rename
rd_stop_server
rm -rf "$store"

# ---- E. a PUT refused for space leaves no staging file ----------------------------------
store=$mnt/e
rd_start_server --store "$store" --min-free 1000T
run 10 rdc --nick alice put "$work/u2.bin"
contains "$OUT" "space"
[[ $(staging_count "$store") == 0 ]] || fail "a PUT refused for space left a staging file: $(find "$store/.staging" -type f)"
rd_stop_server

pass "reservations released on disconnect and at start, staged bytes in quota and per-user cap"
