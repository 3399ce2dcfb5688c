#!/usr/bin/env bash
# bench_compress.sh - compression that weighs time as well as size (issue 13 point 2), run
# by `make bench`.
#
#   BUILD=build bench/bench_compress.sh
#
# A text file (BENCH_COMPRESS_MB, default 100 MiB of log lines) put and got over plaintext:
#   - through a 100 Mbit/s link (tests/helpers/rdproxy --rate 12500000, a frame-aware
#     proxy on 127.0.0.1 that forwards at most that many bytes a second each way): put
#     with the default (each chunk compressed while that saves time) against
#     `put --no-compress`, and get (the server decides the same way) against the time the
#     raw bytes need on that link (size / rate: no uncompressed copy can beat it);
#   - over loopback, where the compressor is the bottleneck: put and get with the default
#     against `put --no-compress` (the goal: the default at least 0.9x as fast).
# Best of BENCH_RUNS (default 2). Every process is started here and stopped by PID.
set -euo pipefail
RD_TEST=bench_compress
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/../tests/live/lib.sh"
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

MB=${BENCH_COMPRESS_MB:-100}
RUNS=${BENCH_RUNS:-2}
RATE=12500000
CLI=$BUILD/roomdrop
PROXY=$BUILD/tests/rdproxy
[[ -x $BUILD/roomdrop-server && -x $CLI && -x $PROXY ]] || skip "server, client or rdproxy not built"

work=$(rd_tmpdir)
awk 'BEGIN { srand(1); for (i = 0; i < 20000; i++)
	printf "2026-01-%02d 10:%02d:%02d.%03d info  user%d (127.0.0.1:%d) joined room%d\n",
		i % 28 + 1, i % 60, (i * 7) % 60, i % 1000, int(rand() * 500),
		40000 + int(rand() * 20000), int(rand() * 9) }' >"$work/seed.log"
: >"$work/text.log"
while (($(stat -c %s "$work/text.log") < MB * 1024 * 1024)); do cat "$work/seed.log" >>"$work/text.log"; done
truncate -s "$((MB * 1024 * 1024))" "$work/text.log"
size=$(stat -c %s "$work/text.log")

RD_SERVER_TLS=off rd_start_server --store "$work/store" --rooms slow,fast
port=$RD_PORT
rd_spawn "$PROXY" --port "$port" --port-file "$work/proxy.port" --rate "$RATE"
for ((i = 0; i < 200; i++)); do [[ -s $work/proxy.port ]] && break; sleep 0.02; done
pport=$(cat "$work/proxy.port")

declare -A BEST
timed() # timed NAME PORT ROOM ARGS...
{
	local name=$1 p=$2 room=$3 t0 t1
	shift 3
	settle
	t0=$(now_ns)
	"$CLI" --port "$p" --plain --nick bench --room "$room" --timeout 120 "$@" >"$work/out.txt" 2>&1 ||
		fail "$name failed: $(tail -3 "$work/out.txt")"
	t1=$(now_ns)
	best "$name" $((t1 - t0))
}
for ((run = 0; run < RUNS; run++)); do
	for where in slow fast; do
		p=$pport
		[[ $where == fast ]] && p=$port
		timed "$where put" "$p" "$where" put --overwrite "$work/text.log"
		timed "$where put raw" "$p" "$where" put --overwrite --no-compress "$work/text.log"
		rm -f "$work/got.log"
		timed "$where get" "$p" "$where" get --overwrite text.log -o "$work"
	done
done
cmp -s "$work/text.log" "$work/store/slow/text.log" || fail "the file came through different"

secs() { awk -v n="$1" 'BEGIN { printf "%.2f s", n / 1e9 }'; }
rate() { mbps "$size" "$1"; }
raw_ns=$(awk -v s="$size" -v r="$RATE" 'BEGIN { printf "%.0f", s / r * 1e9 }')
printf '\n%s MiB of text, best of %s       %10s %12s %10s\n' "$MB" "$RUNS" time MB/s "vs raw"
for where in slow fast; do
	label="100 Mbit/s link"
	[[ $where == fast ]] && label="loopback"
	printf '%-36s %10s %12s %9sx\n' "$label: put --no-compress" "$(secs "${BEST["$where put raw"]}")" \
		"$(rate "${BEST["$where put raw"]}")" 1.00
	printf '%-36s %10s %12s %9sx\n' "$label: put (adaptive)" "$(secs "${BEST["$where put"]}")" \
		"$(rate "${BEST["$where put"]}")" "$(ratio "${BEST["$where put raw"]}" "${BEST["$where put"]}")"
	printf '%-36s %10s %12s %9sx\n' "$label: get (adaptive)" "$(secs "${BEST["$where get"]}")" \
		"$(rate "${BEST["$where get"]}")" "$(ratio "${BEST["$where put raw"]}" "${BEST["$where get"]}")"
done
printf '%-36s %10s %12s\n' "100 Mbit/s: the raw bytes alone" "$(secs "$raw_ns")" "$(rate "$raw_ns")"
slow=$(ratio "${BEST["slow put raw"]}" "${BEST["slow put"]}")
fast=$(ratio "${BEST["fast put raw"]}" "${BEST["fast put"]}")
met() { awk -v r="$1" -v g="$2" 'BEGIN { exit !(r >= g) }' && echo met || echo NOT met; }
echo "goal: 100 Mbit/s, adaptive put at least 2x faster than raw: ${slow}x, $(met "$slow" 2)"
echo "goal: loopback, adaptive put at least 0.9x raw's speed: ${fast}x, $(met "$fast" 0.9)"
