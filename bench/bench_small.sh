#!/usr/bin/env bash
# bench_small.sh - many small files (issue 13 point 3), run by `make bench`.
#
#   BUILD=build bench/bench_small.sh
#
# 1,000 files of 10 bytes (BENCH_SMALL_FILES, BENCH_SMALL_BYTES), in the same run and on
# the same filesystem (one temporary directory):
#   - `roomdrop put DIR` into a fresh room, over TLS 1.3 (the default) and over plaintext,
#     and `roomdrop get '*'` of that room into a fresh folder;
#   - `rsync -a DIR/ rsync://127.0.0.1:PORT/dst/RUN/` to an rsync daemon of the benchmark's
#     own (plaintext, started on an ephemeral 127.0.0.1 port, stopped by PID), and back.
# Best of BENCH_RUNS (default 3). Note what each side promises: roomdrop confirms a file
# only once it is durable (a group commit: two syncfs per batch of up to 64 files) and
# verifies every SHA-256; rsync flushes nothing (its files may still be in the page cache
# when it exits). The goal (issue 13): put within 3x rsync's time.
set -euo pipefail
RD_TEST=bench_small
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/../tests/live/lib.sh"
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

N=${BENCH_SMALL_FILES:-1000}
BYTES=${BENCH_SMALL_BYTES:-10}
RUNS=${BENCH_RUNS:-3}
CLI=$BUILD/roomdrop
[[ -x $BUILD/roomdrop-server && -x $CLI ]] || skip "server or client not built"
command -v rsync >/dev/null || skip "rsync is not installed (scripts/install-deps.sh)"

work=$(rd_tmpdir)
src=$work/src
mkdir -p "$src" "$work/rsync-dst"
for ((i = 0; i < N; i++)); do
	printf "%0${BYTES}d" "$i" | head -c "$BYTES" >"$src/f$i.txt"
done
echo "bench_small: $N files of $BYTES bytes in $work (df: $(df -h --output=fstype,target "$work" | tail -1))"

# ---- the rsync daemon ----------------------------------------------------------------
bench_rsyncd_start "$work" "$work/rsync-dst"

# ---- the roomdrop servers --------------------------------------------------------------
rooms=$(seq -s, -f 'run%g' 0 $((RUNS - 1)))
RD_SERVER_TLS=on rd_start_server --store "$work/store-tls" --rooms "$rooms"
tls_port=$RD_PORT
fp=$("$BUILD/roomdrop-server" fingerprint --store "$work/store-tls") || fail "no fingerprint"
RD_SERVER_TLS=off rd_start_server --store "$work/store-plain" --rooms "$rooms"
plain_port=$RD_PORT
cli() # cli TRANSPORT ARGS...
{
	local tr=$1
	shift
	if [[ $tr == tls ]]; then
		"$CLI" --port "$tls_port" --server-fp "$fp" --nick bench --timeout 60 --quiet "$@"
	else
		"$CLI" --port "$plain_port" --plain --nick bench --timeout 60 --quiet "$@"
	fi
}

declare -A BEST
timed() # timed NAME CMD...: run CMD, keep its best time (ns) under NAME
{
	local name=$1 t0 t1
	shift
	settle
	t0=$(now_ns)
	"$@" >"$work/out.txt" 2>&1 || fail "$name failed: $(tail -3 "$work/out.txt")"
	t1=$(now_ns)
	best "$name" $((t1 - t0))
}

cat "$src"/* >/dev/null
for ((run = 0; run < RUNS; run++)); do
	timed rsync_put rsync -a "$src/" "$RS/run$run/"
	mkdir -p "$work/rget$run"
	timed rsync_get rsync -a "$RS/run$run/" "$work/rget$run/"
	for tr in tls plain; do
		timed "${tr}_put" cli "$tr" --room "run$run" put "$src"
		mkdir -p "$work/${tr}get$run"
		timed "${tr}_get" cli "$tr" --room "run$run" get '*' -o "$work/${tr}get$run"
		(($(find "$work/${tr}get$run" -type f | wc -l) == N)) || fail "$tr get: not $N files"
	done
done
cmp -s "$src/f7.txt" "$work/plainget0/f7.txt" || fail "a file came back different"

secs() { awk -v n="$1" 'BEGIN { printf "%.3f s", n / 1e9 }'; }
printf '\n%-34s %12s %12s %10s\n' "$N files of $BYTES B (best of $RUNS)" roomdrop "rsync -a" ratio
for tr in tls plain; do
	for op in put get; do
		printf '%-34s %12s %12s %9sx\n' "$op, $tr" "$(secs "${BEST[${tr}_$op]}")" \
			"$(secs "${BEST[rsync_$op]}")" "$(ratio "${BEST[${tr}_$op]}" "${BEST[rsync_$op]}")"
	done
done
r=$(ratio "${BEST[tls_put]}" "${BEST[rsync_put]}")
met=NOT
awk -v r="$r" 'BEGIN { exit !(r <= 3) }' && met=""
echo "goal: put (TLS) within 3x rsync's time: ${r}x, ${met:+$met }met"
