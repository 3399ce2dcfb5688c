#!/usr/bin/env bash
# test_demo.sh - what `make demo` prints (issue 8, item 9):
#   1. written to a file (stdout not a terminal): no escape sequence at all;
#   2. on a terminal (a pty from `script`): the step titles are bold; with NO_COLOR set
#      (https://no-color.org), no escape sequence again;
#   3. the checksum table is aligned by display width, with "naïve café.txt" (two 2-byte
#      characters) among the names: every row's OK ends in the same column;
#   also: a nickname refused to another key, a private server, a folder of small files
#      committed together and files got by a pattern, a big file whose first put streams
#      while it is hashed and whose second declares the cached digest;
#   6. the cluster step (issue 11 point 10) ran: two clients redirected by the master, a
#      room message heard on all three servers, the master's ctl list showing the other
#      servers' clients; or it said why it was skipped (no hiredis, no redis-server).
# The demo runs headless (DEMO_HEADLESS=1) on its own server; about 12 s a run.
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"
DEMO=$RD_ROOT/scripts/demo.sh
export DEMO_HEADLESS=1
unset NO_COLOR

# ---- 1. to a file ------------------------------------------------------------------------

out=$RD_TMP/demo.out
"$DEMO" >"$out" 2>&1 || fail "the demo failed: $(tail -n 20 "$out")"
grep -q '^demo: done$' "$out" || fail "the demo did not finish: $(tail -n 5 "$out")"
if grep -n $'\e' "$out" | cat -v | head -n 5 | grep .; then
	fail "escape sequences in the demo's output to a file (above)"
fi
echo "no escape sequence when the output is a file"

# ---- 1c. a nickname owned by a key ----------------------------------------------------------
grep -q "nickname 'alice' refused: alice is registered to another key" "$out" ||
	fail "the demo does not show a nickname refused to another key"
echo "the demo shows a nickname refused to another key"
grep -q "this server admits only known keys" "$out" ||
	fail "the demo does not show a stranger refused by the private server"
grep -q "admitted to 127.0.0.1:" "$out" || fail "the demo does not show an invitation used"
echo "the demo shows a private server: a stranger refused, an invitation used"
grep -q "put 200 files: 200 stored, 0 failed" "$out" || fail "the demo does not put a folder of 200 files"
grep -q "uploads committed together" "$out" || fail "the demo does not show a group commit"
grep -q "get 10 files: 10 saved, 0 failed" "$out" || fail "the demo does not get files by a pattern"
echo "the demo shows a folder of small files committed together and files got by a pattern"
sed -n '/^== 3b\./,/^== 3c\./p' "$out" >"$RD_TMP/big.out"
grep -q "put big.bin: .*verified (hashed while sending)" "$RD_TMP/big.out" ||
	fail "the demo's first put of a big file did not stream: $(cat "$RD_TMP/big.out")"
(($(grep -c "put big.bin: .*verified$" "$RD_TMP/big.out") == 1)) ||
	fail "the demo's second put did not declare the cached digest: $(cat "$RD_TMP/big.out")"
grep -q "(the copy is identical)" "$RD_TMP/big.out" || fail "the demo's big file came back different"
echo "the demo streams a big file on its first put and declares its cached digest on the second"

# ---- 6. the cluster step ran, or said why it could not --------------------------------------
if grep -q '^cluster step skipped: ' "$out"; then
	grep '^cluster step skipped: ' "$out"
	[[ -n ${CI:-} ]] && fail "the demo skipped its cluster step, but CI must show it"
else
	grep -q '^cluster step done' "$out" || fail "the demo's cluster step did not finish: $out"
	sed -n '/^== 6\./,/^cluster step done/p' "$out" >"$RD_TMP/cluster.out"
	(($(grep -c 'redirected you to 127.0.0.1:' "$RD_TMP/cluster.out") >= 2)) ||
		fail "the cluster step shows no two redirects: $(cat "$RD_TMP/cluster.out")"
	for n in kim lee max; do
		sed -n "/^--- what $n saw/,/^---\|^cluster step/p" "$RD_TMP/cluster.out" |
			grep -q '\[general\] <nia> hello, all three servers' ||
			fail "$n did not hear the conversation across servers: $(cat "$RD_TMP/cluster.out")"
	done
	grep -q 'on server 127.0.0.1:' "$RD_TMP/cluster.out" ||
		fail "the master's ctl list shows no client on another server"
	echo "the demo shows a master redirecting to two secondaries and a conversation across them"
fi

# ---- 3. the checksum table (from the same run) ------------------------------------------

mapfile -t rows < <(grep -E '^ +[^ ].* (OK|MISMATCH)$' "$out")
((${#rows[@]} >= 5)) || fail "the checksum table has ${#rows[@]} rows: $(cat "$out")"
printf '%s\n' "${rows[@]}" | grep -qF $'na\xc3\xafve caf\xc3\xa9.txt' ||
	fail "no UTF-8 name in the checksum table: ${rows[*]}"
# wc -L counts display columns in a UTF-8 locale (C.UTF-8 is built into glibc)
widths=$(for r in "${rows[@]}"; do printf '%s\n' "$r" | LC_ALL=C.UTF-8 wc -L; done | sort -u)
printf '%s\n' "${rows[@]}"
[[ $(wc -l <<<"$widths") == 1 ]] ||
	fail "the checksum table's rows end in different columns: $(tr '\n' ' ' <<<"$widths")"
echo "checksum table aligned (every row $widths columns)"

# ---- 2. on a terminal ------------------------------------------------------------------------

command -v script >/dev/null 2>&1 || skip "script (util-linux) is missing: no pty to test colour"
tty_out=$RD_TMP/demo-tty.out
script -qefc "$(printf '%q' "$DEMO")" /dev/null >"$tty_out" 2>&1 </dev/null ||
	fail "the demo failed on a terminal: $(tail -n 20 "$tty_out")"
grep -q $'\e\\[1m== 1\\. the server' "$tty_out" ||
	fail "no bold step title on a terminal: $(head -n 5 "$tty_out" | cat -v)"
echo "bold step titles on a terminal"
NO_COLOR=1 script -qefc "$(printf '%q' "$DEMO")" /dev/null >"$tty_out" 2>&1 </dev/null ||
	fail "the demo failed on a terminal with NO_COLOR: $(tail -n 20 "$tty_out")"
grep -q 'demo: done' "$tty_out" || fail "the demo did not finish with NO_COLOR"
if grep -n $'\e' "$tty_out" | cat -v | head -n 5 | grep .; then
	fail "escape sequences on a terminal although NO_COLOR is set (above)"
fi
echo "NO_COLOR honoured"
pass
