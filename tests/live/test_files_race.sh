#!/usr/bin/env bash
# test_files_race.sh - a GET racing overwrites (PROTOCOL.md section 17, download step 2:
# "The file sent is the one that existed at GET time, even if it is replaced meanwhile"):
# one client commits v.bin over and over with --overwrite, alternating two contents, while
# four others get it again and again. Every get must succeed, and every version received
# must be one of the two, whole (the client verifies size and SHA-256 of what it got
# against GET_BEGIN; the test checks that SHA-256 is one of the two versions').
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"

CLI=$BUILD/roomdrop
GETTERS=4
ROUNDS=${ROUNDS:-16}
PER_ROUND=${PER_ROUND:-40} # gets per client command (one connection)
rdc() { "$CLI" --port "$RD_PORT" --timeout 20 --quiet "$@"; }

rd_start_server --store "$RD_TMP/store"
work=$(rd_tmpdir)
head -c 32768 /dev/urandom >"$work/v1"
head -c 40000 /dev/urandom >"$work/v2"
h1=$(sha256sum "$work/v1" | cut -c1-8)
h2=$(sha256sum "$work/v2" | cut -c1-8)
# 40 copies named v.bin, alternating the versions: one put command commits 40 times
paths=()
for i in $(seq 1 40); do
	mkdir -p "$work/p/$i"
	if ((i % 2)); then cp "$work/v1" "$work/p/$i/v.bin"; else cp "$work/v2" "$work/p/$i/v.bin"; fi
	paths+=("$work/p/$i/v.bin")
done
rdc --nick writer put "${paths[0]}" >/dev/null || fail "first put failed"

# the writer: overwrite until the getters are done
done_flag=$work/done
(
	while [[ ! -e $done_flag ]]; do
		rdc --nick writer --overwrite put "${paths[@]}" >/dev/null 2>"$work/writer.err" ||
			{ echo "writer failed: $(cat "$work/writer.err")" >"$work/writer.fail"; exit 1; }
	done
) &
writer=$!
RD_PIDS+=("$writer")

names=()
for ((i = 0; i < PER_ROUND; i++)); do names+=(v.bin); done
getter()
{
	local g=$1 r dir
	for ((r = 0; r < ROUNDS; r++)); do
		dir=$work/g$g.$r
		mkdir -p "$dir"
		"$CLI" --port "$RD_PORT" --timeout 20 --nick "getter$g" --overwrite -o "$dir" \
			get "${names[@]}" >"$dir/out" 2>&1 || { echo "exit $?" >>"$dir/out"; return 1; }
	done
}
pids=()
for ((g = 0; g < GETTERS; g++)); do
	getter "$g" &
	pids+=($!)
done
bad=0
for p in "${pids[@]}"; do
	wait "$p" || bad=1
done
touch "$done_flag"
wait "$writer" || true
rd__forget "$writer"
[[ ! -e $work/writer.fail ]] || fail "$(cat "$work/writer.fail")"

total=0
for out in "$work"/g*/out; do
	if ((bad)) && grep -q 'roomdrop: get' "$out"; then
		fail "a get racing an overwrite failed: $(grep 'roomdrop: get' "$out" | sort | uniq -c)"
	fi
	while read -r line; do
		[[ $line =~ sha256\ ([0-9a-f]{8}) ]] || fail "no hash in: $line"
		[[ ${BASH_REMATCH[1]} == "$h1" || ${BASH_REMATCH[1]} == "$h2" ]] ||
			fail "a get received neither version: $line"
		total=$((total + 1))
	done < <(grep '^get v.bin' "$out")
done
((bad == 0)) || fail "a getter failed: $(cat "$work"/g*/out | grep -v '^get v.bin' | head)"
((total == GETTERS * ROUNDS * PER_ROUND)) ||
	fail "$total gets verified, want $((GETTERS * ROUNDS * PER_ROUND))"
for out in "$work"/g*; do
	cmp -s "$out/v.bin" "$work/v1" || cmp -s "$out/v.bin" "$work/v2" ||
		fail "$out/v.bin is neither version"
done
pass "$total gets during $(grep -c "writer replaced" "$RD_SERVER_LOG") overwrites, each one version whole"
