#!/usr/bin/env bash
# test_durability.sh - what reaches the disk before a name points at it. A downloaded file
# is written to NAME.part, and NAME.part must be fsync'd before it is renamed to NAME (and
# the folder after), so that a crash right after the rename never leaves NAME with blocks
# missing. Observed with strace on the real client.
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"
command -v strace >/dev/null 2>&1 || fail "strace is missing (scripts/install-deps.sh installs it)"

CLI=$BUILD/roomdrop
rd_start_server --store "$(rd_tmpdir)"
src=$(rd_tmpdir)
head -c 300000 /dev/urandom >"$src/blob.bin"
"$CLI" --port "$RD_PORT" --nick up put "$src/blob.bin" >/dev/null

dst=$(rd_tmpdir)
trace=$RD_TMP/get.trace
# (LeakSanitizer cannot run under ptrace: under SANITIZER=address the traced client checks
# memory errors only; the other live tests check its leaks)
ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
	strace -f -qq -e trace=openat,fsync,fdatasync,rename,renameat,renameat2 -o "$trace" \
	"$CLI" --port "$RD_PORT" --nick down -o "$dst" get blob.bin >/dev/null
cmp -s "$src/blob.bin" "$dst/blob.bin" || fail "the file did not arrive intact"

# the descriptor of blob.bin.part, the line of its fsync and the line of the rename
part_fd=$(grep -E 'openat\(.*"blob\.bin\.part".*= [0-9]+$' "$trace" | tail -n 1 | sed -E 's/.*= ([0-9]+)$/\1/')
[[ -n $part_fd ]] || fail "no open of blob.bin.part in the trace"
sync_line=$(grep -nE "(fsync|fdatasync)\\($part_fd\\)" "$trace" | tail -n 1 | cut -d: -f1)
rename_line=$(grep -nE 'rename(at2?)?\(.*"blob\.bin\.part".*"blob\.bin"' "$trace" | tail -n 1 | cut -d: -f1)
[[ -n $rename_line ]] || fail "no rename of blob.bin.part to blob.bin in the trace"
[[ -n $sync_line ]] || fail "blob.bin.part (fd $part_fd) was never fsync'd before it was renamed"
((sync_line < rename_line)) || fail "blob.bin.part was fsync'd only after the rename"
# and the folder after the rename
tail -n +"$rename_line" "$trace" | grep -qE '(fsync|fdatasync)\(' ||
	fail "the folder was not fsync'd after the rename"
pass
