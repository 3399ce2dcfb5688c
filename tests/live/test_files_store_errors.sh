#!/usr/bin/env bash
# test_files_store_errors.sh - a store that fails (PROTOCOL.md section 18, 512 READ_ONLY
# and 513 STORAGE; README exit code 13): on a tmpfs the test mounts, a file made immutable
# (chattr +i: root cannot delete it either) and then the whole store remounted read-only.
# rm and put must say what failed (not "no file", not "internal server error"), exit 13,
# and the server must log the errno text; reading still works, a missing file is still
# "no file" (exit 5), and everything works again once the store is writable.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"

CLI=$BUILD/roomdrop
SAMPLES=$RD_ROOT/sample_files
rdc() { "$CLI" --port "$RD_PORT" --timeout 20 --nick alice "$@"; }

mnt=$RD_TMP/mnt
mkdir -p "$mnt"
mount -t tmpfs -o size=16m,mode=0755 roomdrop-test "$mnt" 2>"$RD_TMP/mount.err" ||
	skip "cannot mount a tmpfs here ($(cat "$RD_TMP/mount.err")); needs root or CAP_SYS_ADMIN"
# stop the server before unmounting (it holds the store open)
rd_on_exit 'chattr -i "$mnt/store/general/b.txt" 2>/dev/null; rd_stop_server; umount "$mnt" 2>/dev/null || umount -l "$mnt"'

store=$mnt/store
# (the nickname database beside the store would keep the tmpfs busy: it lives elsewhere)
rd_start_server --store "$store" --min-free 1M --state "$RD_TMP/state.db"
work=$(rd_tmpdir)
printf 'aaa\n' >"$work/a.txt"
printf 'bbb\n' >"$work/b.txt"
printf 'ccc\n' >"$work/c.txt"
run 0 rdc put "$work/a.txt" "$work/b.txt"

# ---- a permission error: an immutable file ------------------------------------------
if chattr +i "$store/general/b.txt" 2>/dev/null; then
	run 13 rdc rm b.txt
	contains "$OUT" "rm b.txt:"
	[[ $OUT != *"no file"* ]] || fail "rm of an undeletable file said: $OUT"
	contains "$OUT" "Operation not permitted"
	[[ -e $store/general/b.txt ]] || fail "immutable file gone"
	wait_for "$RD_SERVER_LOG" "Operation not permitted"
	chattr -i "$store/general/b.txt"
else
	echo "note: chattr +i is not supported here; the permission case is not checked"
fi

# ---- the store remounted read-only -----------------------------------------------------
mount -o remount,ro "$mnt" || fail "cannot remount the test tmpfs read-only"
run 13 rdc rm a.txt
contains "$OUT" "rm a.txt:"
contains "$OUT" "read-only"
[[ $OUT != *"no file"* ]] || fail "rm on a read-only store said: $OUT"
[[ -e $store/general/a.txt ]] || fail "file gone from a read-only store"
wait_for "$RD_SERVER_LOG" "cannot remove a.txt in general: Read-only file system"

run 13 rdc put "$work/c.txt"
contains "$OUT" "put c.txt:"
contains "$OUT" "read-only"
[[ $OUT != *"internal server error"* ]] || fail "put on a read-only store said: $OUT"
wait_for "$RD_SERVER_LOG" "c.txt in general: Read-only file system"

# reading still works; a missing file is still "no file"
dl=$(rd_tmpdir)
run 0 rdc -o "$dl" get a.txt
cmp "$work/a.txt" "$dl/a.txt" || fail "get from a read-only store differs"
run 0 rdc ls
contains "$OUT" "a.txt"
run 5 rdc rm missing.txt
contains "$OUT" "no file missing.txt"

# ---- writable again: everything works ------------------------------------------------
mount -o remount,rw "$mnt" || fail "cannot remount the test tmpfs read-write"
run 0 rdc rm a.txt b.txt
run 0 rdc put "$work/c.txt"
[[ -z $(find "$store/.staging" -type f) ]] || fail "staging files left: $(find "$store/.staging" -type f)"
pass "rm and put on a failing store: own codes, exit 13, errno text in the log"
