#!/usr/bin/env bash
# test_files_batch.sh - many files at once (issue 13 point 3; PROTOCOL.md section 17,
# "Batches"), against the real server on 127.0.0.1:
#   1. `put DIR` of 300 files (distinct small ones, 100 of identical content, an empty one,
#      names with spaces, one of 1 MiB that goes on its own) puts every one, verified; a
#      folder inside DIR is left out and said so; the server committed them in groups
#      ("committed together" in its log), and `ls` lists every file with its size;
#   2. `get PATTERN` brings back exactly the files the pattern matches, byte for byte; a
#      pattern that matches nothing is exit 5;
#   3. `put --overwrite DIR` again: every file replaced, verified;
#   4. a batch in which one file may not be replaced (another key's: exit 16) stores the
#      others all the same;
#   5. a listing right after a batch, on the same connection (the shell), shows the batch;
#   6. the digest cache (issue 13 point 1): a put of a large file records its SHA-256 under
#      $XDG_CACHE_HOME/roomdrop/sha256/, keyed by the file's inode, size, mtime and ctime;
#      a change of its bytes that keeps size and mtime does not reuse it (ctime moved); a
#      record that lies (planted) is caught by the server, forgotten, and the file is
#      hashed and stored right.
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

rd_need_server
CLI=$BUILD/roomdrop
[[ -x $CLI ]] || skip "$CLI is not built yet"

rd_start_server --store "$RD_TMP/store"
rdc() { XDG_CONFIG_HOME=$RD_TMP/${KEY:-k1} "$CLI" --port "$RD_PORT" --timeout 20 --nick "${NICK:-alice}" "$@"; }

src=$RD_TMP/src
mkdir -p "$src/inner"
for ((i = 0; i < 150; i++)); do printf 'file %d\n' "$i" >"$src/f$i.txt"; done
for ((i = 0; i < 100; i++)); do printf 'same\n' >"$src/dup$i.txt"; done
for ((i = 0; i < 48; i++)); do printf 'spaced %d\n' "$i" >"$src/with space $i.txt"; done
: >"$src/empty.txt"
head -c 1048576 /dev/urandom >"$src/big.bin"
echo hidden >"$src/inner/not-sent.txt"

# ---- 1. put DIR -------------------------------------------------------------------------------
run 0 rdc put "$src"
(($(grep -c ' verified$' <<<"$OUT") == 300)) || fail "expected 300 verified files: $OUT"
contains "$OUT" "inner: a folder inside a folder is left out"
grep -q "uploads committed together" "$RD_SERVER_LOG" || fail "no group commit in the server's log"
for f in "$src"/*; do
	[[ -f $f ]] || continue
	b=$(basename "$f")
	cmp -s "$f" "$RD_TMP/store/general/$b" || fail "$b differs in the store"
done
[[ ! -e $RD_TMP/store/general/not-sent.txt ]] || fail "a file of the inner folder was put"
run 0 rdc ls
(($(grep -c 'alice' <<<"$OUT") == 300)) || fail "ls does not list 300 files of alice's: $OUT"
echo "1. put DIR: 300 files stored and verified, committed in groups; the inner folder left out"

# ---- 2. get PATTERN -------------------------------------------------------------------------
mkdir -p "$RD_TMP/got"
run 0 rdc get 'dup*' 'with space 1?.txt' big.bin -o "$RD_TMP/got"
(($(find "$RD_TMP/got" -type f | wc -l) == 111)) ||
	fail "expected 100 + 10 + 1 files: $(ls "$RD_TMP/got" | head)"
for f in "$RD_TMP/got"/*; do cmp -s "$f" "$src/$(basename "$f")" || fail "$f differs"; done
run 5 rdc get 'nothing*' -o "$RD_TMP/got"
contains "$OUT" "nothing*: no file of the room matches"
echo "2. get with patterns: exactly the 111 files matched, byte for byte; no match is exit 5"

# ---- 3. put --overwrite DIR -----------------------------------------------------------------
for ((i = 0; i < 150; i++)); do printf 'changed %d\n' "$i" >"$src/f$i.txt"; done
run 0 rdc put --overwrite "$src"
(($(grep -c ' verified$' <<<"$OUT") == 300)) || fail "expected 300 replaced: $OUT"
cmp -s "$src/f42.txt" "$RD_TMP/store/general/f42.txt" || fail "f42.txt was not replaced"
echo "3. put --overwrite DIR: every file replaced"

# ---- 4. one refused member does not hold back the others --------------------------------------
mixed=$RD_TMP/mixed
mkdir "$mixed"
for ((i = 0; i < 20; i++)); do printf 'bob %d\n' "$i" >"$mixed/bob$i.txt"; done
printf 'not yours\n' >"$mixed/f7.txt"
KEY=k2 NICK=bob run 16 rdc put --overwrite "$mixed"
contains "$OUT" "f7.txt belongs to alice's key"
(($(grep -c ' verified$' <<<"$OUT") == 20)) || fail "the 20 others were not all stored: $OUT"
cmp -s "$src/f7.txt" "$RD_TMP/store/general/f7.txt" || fail "alice's f7.txt was replaced"
echo "4. a batch with one refused file (exit 16) stores the 20 others"

# ---- 5. the shell: a listing right after a batch sees it ---------------------------------------
mkdir "$RD_TMP/shellset"
for ((i = 0; i < 30; i++)); do printf 's %d\n' "$i" >"$RD_TMP/shellset/s$i.txt"; done
printf '/put %s\n/ls\n/quit\n' "$RD_TMP/shellset" >"$RD_TMP/shell.in"
run 0 rdc shell <"$RD_TMP/shell.in"
contains "$OUT" "s29.txt"
(($(grep -Ec '^ *s[0-9]+\.txt ' <<<"$OUT") >= 30)) || fail "/ls after /put did not list the batch: $OUT"
echo "5. the shell: /ls right after /put lists the whole batch"

# ---- 6. the digest cache ---------------------------------------------------------------------
cache=$XDG_CACHE_HOME/roomdrop/sha256
big=$RD_TMP/cached.bin
head -c 3000000 /dev/urandom >"$big"
run 0 rdc put "$big"
rec=$cache/$(stat -c '%d-%i' "$big")
[[ -f $rec ]] || fail "no digest recorded in $cache: $(ls "$cache" 2>&1)"
[[ $(cut -d' ' -f4 "$rec") == $(sha256sum "$big" | cut -d' ' -f1) ]] || fail "wrong digest: $(cat "$rec")"
mtime=$(stat -c %y "$big")
printf 'XXXX' | dd of="$big" bs=1 seek=1000 conv=notrunc status=none
touch -d "$mtime" "$big" # same size, same mtime: only its ctime says it changed
run 0 rdc put --overwrite "$big"
cmp -s "$big" "$RD_TMP/store/general/cached.bin" || fail "the changed file was not stored right"
[[ $(cut -d' ' -f4 "$rec") == $(sha256sum "$big" | cut -d' ' -f1) ]] || fail "the record was not renewed"
# a lying record for the file as it is now: the server refuses the digest, the client
# forgets it, hashes, and stores the file
read -r s m c _ <"$rec"
printf '%s %s %s %064d\n' "$s" "$m" "$c" 1 >"$rec"
head -c 3000000 /dev/urandom >"$RD_TMP/other.bin"
before=$(grep -c "SHA-256 mismatch" "$RD_SERVER_LOG" || true)
run 0 rdc put --overwrite "$big"
(($(grep -c "SHA-256 mismatch" "$RD_SERVER_LOG") > before)) || fail "the planted digest was not used"
cmp -s "$big" "$RD_TMP/store/general/cached.bin" || fail "not stored right after the lying record"
[[ $(cut -d' ' -f4 "$rec") == $(sha256sum "$big" | cut -d' ' -f1) ]] || fail "the lying record stayed"
echo "6. the digest cache: recorded, not reused after a change that kept size and mtime, a lie caught"

pass
