#!/usr/bin/env bash
# bench_files.sh - file transfer benchmark (issue 4, point 10), run by `make bench`.
#
#   BUILD=build bench/bench_files.sh
#
# On 127.0.0.1, for a random file (incompressible, 1 GiB) and a compressible text file
# (~200 MiB of log lines): a raw TCP copy of the file with socat, then `roomdrop put` and
# `roomdrop get` of the same file, in the same run. Each figure is the best of
# BENCH_RUNS runs (default 2): this machine's disk and page cache are noisy. Prints MB/s
# (MB = 10^6 bytes), the ratio to the socat copy (> 1 = faster than socat), the bytes the
# compressible file took on the connection (the client reports them from TCP_INFO), and
# the server's peak resident memory (VmHWM) above its idle size (VmRSS before the first
# transfer).
#
# Timings are of whole commands: connect, register, hash (put declares the SHA-256
# first), transfer, the server's fsync and rename for put, verification and rename for
# get. socat writes its copy without fsync.
#
# Environment: BENCH_RANDOM_MB (default 1024), BENCH_TEXT_MB (default 200), BENCH_RUNS.
# Files live in a temporary directory removed at the end; every process is stopped by PID.
set -euo pipefail
RD_TEST=bench_files
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/../tests/live/lib.sh"

RANDOM_MB=${BENCH_RANDOM_MB:-1024}
TEXT_MB=${BENCH_TEXT_MB:-200}
RUNS=${BENCH_RUNS:-2}
CLI=$BUILD/roomdrop

[[ -x $BUILD/roomdrop-server && -x $CLI ]] || skip "server or client not built"
command -v socat >/dev/null || skip "socat is not installed (scripts/install-deps.sh)"

now_ns() { date +%s%N; }
mbps() { awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.1f", b / (ns / 1e9) / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
kb_of() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
settle() { sync; sleep 1; }

# A port nobody listens on (checked in /proc/net/tcp), for socat.
free_port()
{
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		grep -qi ":$(printf %04X "$p") " /proc/net/tcp /proc/net/tcp6 2>/dev/null || break
	done
	echo "$p"
}

wait_listen()
{
	local i hex
	hex=$(printf %04X "$1")
	for ((i = 0; i < 200; i++)); do
		awk -v h=":$hex" '$2 ~ h"$" && $4 == "0A" { found = 1 } END { exit !found }' \
			/proc/net/tcp && return 0
		sleep 0.02
	done
	fail "socat did not listen on port $1"
}

# best NAME NS: keep the smallest time per NAME
declare -A BEST
best() { [[ -z ${BEST[$1]:-} || $2 -lt ${BEST[$1]} ]] && BEST[$1]=$2 || true; }

work=$(rd_tmpdir)
echo "bench_files: generating ${RANDOM_MB} MiB of random bytes and ${TEXT_MB} MiB of text in $work"
head -c "$((RANDOM_MB * 1024 * 1024))" /dev/urandom >"$work/random.bin"
seed=$RD_ROOT/sample_files/server.log
if [[ ! -s $seed ]]; then
	seed=$work/seed.log
	awk 'BEGIN { srand(1); for (i = 0; i < 20000; i++)
		printf "2026-01-%02d 10:%02d:%02d.%03d info  user%d (127.0.0.1:%d) joined room%d\n",
			i % 28 + 1, i % 60, (i * 7) % 60, i % 1000, int(rand() * 500),
			40000 + int(rand() * 20000), int(rand() * 9) }' >"$seed"
fi
: >"$work/text.log"
while (($(stat -c %s "$work/text.log") < TEXT_MB * 1024 * 1024)); do
	cat "$seed" >>"$work/text.log"
done
truncate -s "$((TEXT_MB * 1024 * 1024))" "$work/text.log"

rd_start_server --store "$work/store" --max-file-size 0
sleep 0.5
idle_kb=$(kb_of "$RD_SERVER_PID" VmRSS)
dl=$work/dl
mkdir -p "$dl"
declare -A WIRE_PUT WIRE_GET

for run in $(seq 1 "$RUNS"); do
	for f in random.bin text.log; do
		src=$work/$f
		size=$(stat -c %s "$src")
		# a name per run, so nothing is overwritten (deleting big files slows the disk)
		name=${f%.*}-$run.${f##*.}
		ln -s "$src" "$work/$name"

		settle
		port=$(free_port)
		rd_spawn socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" \
			"OPEN:$work/socat-$name,creat,trunc"
		lpid=$RD_LAST_PID
		wait_listen "$port"
		t0=$(now_ns)
		socat -u "OPEN:$src" "TCP:127.0.0.1:$port"
		wait "$lpid" || fail "socat listener failed"
		t1=$(now_ns)
		rd__forget "$lpid"
		[[ $(stat -c %s "$work/socat-$name") == "$size" ]] || fail "socat copy incomplete"
		best "socat $f" $((t1 - t0))

		settle
		t0=$(now_ns)
		out=$("$CLI" --port "$RD_PORT" --nick bench --quiet --timeout 60 put "$work/$name") ||
			fail "put $name failed: $out"
		t1=$(now_ns)
		best "put $f" $((t1 - t0))
		[[ $out == *" on the wire"* ]] && WIRE_PUT[$f]=$(sed -n 's/.*, \([0-9.]* [KMGTPE]*B\) on the wire.*/\1/p' <<<"$out")

		settle
		t0=$(now_ns)
		out=$("$CLI" --port "$RD_PORT" --nick bench --quiet --timeout 60 -o "$dl" get "$name") ||
			fail "get $name failed: $out"
		t1=$(now_ns)
		best "get $f" $((t1 - t0))
		[[ $out == *" on the wire"* ]] && WIRE_GET[$f]=$(sed -n 's/.*, \([0-9.]* [KMGTPE]*B\) on the wire.*/\1/p' <<<"$out")
		cmp -s "$src" "$dl/$name" || fail "downloaded $name differs"
	done
done
peak_kb=$(kb_of "$RD_SERVER_PID" VmHWM)
rd_stop_server

echo
echo "file transfers on 127.0.0.1, best of $RUNS runs (MB = 10^6 bytes; ratio = speed / socat's)"
printf '%-11s %10s  %12s  %22s  %22s\n' FILE SIZE "SOCAT RAW" PUT GET
verdict=()
for f in random.bin text.log; do
	size=$(stat -c %s "$work/$f")
	s=${BEST["socat $f"]} p=${BEST["put $f"]} g=${BEST["get $f"]}
	rp=$(ratio "$s" "$p")
	rg=$(ratio "$s" "$g")
	printf '%-11s %7.1f MB  %7s MB/s  %10s MB/s (%sx)  %10s MB/s (%sx)\n' "$f" \
		"$(awk -v b="$size" 'BEGIN { print b / 1e6 }')" "$(mbps "$size" "$s")" \
		"$(mbps "$size" "$p")" "$rp" "$(mbps "$size" "$g")" "$rg"
	if [[ $f == random.bin ]]; then
		verdict+=("random put >= 1.0x socat: $(awk -v r="$rp" 'BEGIN { print (r >= 1.0) ? "yes" : "NO" }')")
		verdict+=("random get >= 1.0x socat: $(awk -v r="$rg" 'BEGIN { print (r >= 1.0) ? "yes" : "NO" }')")
	fi
done
tsize=$(awk -v b="$(stat -c %s "$work/text.log")" 'BEGIN { printf "%.1f MB", b / 1e6 }')
echo "text.log on the wire: put ${WIRE_PUT[text.log]:-$tsize (not compressed)}, get ${WIRE_GET[text.log]:-$tsize (not compressed)} (file $tsize)"
echo "random.bin on the wire: put ${WIRE_PUT[random.bin]:-as is (raw chunks)}, get ${WIRE_GET[random.bin]:-as is (raw chunks, sendfile)}"
growth_kb=$((peak_kb - idle_kb))
echo "server memory: idle $(mib "$idle_kb"), peak $(mib "$peak_kb"), growth $(mib "$growth_kb") during the transfers"
verdict+=("text moves fewer bytes than its size: $([[ -n ${WIRE_PUT[text.log]:-} && -n ${WIRE_GET[text.log]:-} ]] && echo yes || echo NO)")
verdict+=("server growth under 32 MiB: $( ((growth_kb < 32 * 1024)) && echo yes || echo NO)")
printf 'goal: %s\n' "${verdict[@]}"
