#!/usr/bin/env bash
# bench_rooms.sh - room fan-out and idle memory of roomdrop-server (issue 3's goals).
#
#   BUILD=build bench/bench_rooms.sh        (run by `make bench`)
#
# Fan-out: 100 and 1000 members in one room, 1 or 4 senders, 32-byte messages; loadbot
# checks every delivery (exactly once, in order), and reports deliveries per second,
# send-to-receipt latency (p50/p99) and the server's CPU time per delivery, read from
# /proc around the sending phase only. A sender keeps at most WINDOW messages in flight:
# the first table is the most the server delivers (latency there is mostly the queue the
# window allows); the second paces the senders to 1,000,000 deliveries/s, the load at which
# the latency goal is set.
# Memory: the server's resident size with 1000 and 5000 idle registered clients, minus
# its resident size before they came, per client.
#
# Reference (the goals of issue 3, for a mature single-threaded IRC server on 2 cores):
# >= 1,000,000 deliveries/s to 1000 members, <= 0.5 us server CPU per delivery,
# p99 < 50 ms at that load, < 32 KiB per idle client.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$root/$BUILD
WINDOW=${WINDOW:-64}
bot=$BUILD/tests/loadbot
srvbin=$BUILD/roomdrop-server
[[ -x $bot && -x $srvbin ]] || { echo "bench_rooms: build first (make all tests)"; exit 1; }

tmp=$(mktemp -d)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

start_server() {
	rm -f "$tmp/port"
	"$srvbin" --headless --listen 127.0.0.1:0 --port-file "$tmp/port" --store "$tmp/store" \
		--ctl-socket "$tmp/ctl.sock" --max-clients 6000 --msg-rate 0 --log-level error \
		>"$tmp/server.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do [[ -s $tmp/port ]] && break; sleep 0.1; done
	[[ -s $tmp/port ]] || { echo "bench_rooms: server did not start"; cat "$tmp/server.log"; exit 1; }
	port=$(cat "$tmp/port")
}
stop_server() { kill "$pid"; wait "$pid" || true; pid=; }
val() { sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p" "$2" | head -1; }

# run_fan MEMBERS SENDERS MESSAGES [RATE]: one loadbot run against a fresh server
run_fan() {
	local members=$1 senders=$2 msgs=$3 rate=${4:-0} out=$tmp/fan.out ok=yes label
	start_server
	"$bot" --port "$port" --clients "$members" --senders "$senders" --messages "$msgs" \
		--window "$WINDOW" --rate "$rate" --server-pid "$pid" --timeout 120 --quiet >"$out" || ok=NO
	label="$members members, $senders sender(s)"
	printf '%-28s %14s %9.1f %9.1f %10s %8s\n' "$label" \
		"$(val deliveries_per_second "$out")" \
		"$(awk -v v="$(val latency_p50_us "$out")" 'BEGIN{print v/1000}')" \
		"$(awk -v v="$(val latency_p99_us "$out")" 'BEGIN{print v/1000}')" \
		"$(val server_cpu_us_per_delivery "$out")" "$ok"
	stop_server
}
hdr() { printf '%-28s %14s %9s %9s %10s %8s\n' "$1" "deliveries/s" "p50 ms" "p99 ms" "us/deliv" "exact"; }

hdr "fan-out, as fast as it goes"
for members in 100 1000; do
	for senders in 1 4; do
		msgs=$((members == 100 ? 20000 : 3000))
		((senders == 4)) && msgs=$((msgs / 2))
		run_fan "$members" "$senders" "$msgs"
	done
done
echo
hdr "fan-out paced to 1M/s"
# 1,000,000 deliveries/s to 999 other members = about 1001 messages/s in all, 5 s long
run_fan 1000 1 5000 1001
run_fan 1000 4 1250 250.25
echo "goals (1000 members): >= 1000000 deliveries/s, p99 < 50 ms at that load,"
echo "                      <= 0.5 us server CPU per delivery"
echo

printf '%-28s %12s %14s %12s\n' "idle clients" "server RSS" "per client" "ratio to 32K"
for n in 1000 5000; do
	start_server
	sleep 0.3
	base=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
	"$bot" --port "$port" --clients "$n" --senders 0 --idle 6 --timeout 300 >"$tmp/idle.out" &
	b=$!
	for _ in $(seq 1 3000); do grep -q idle=ready "$tmp/idle.out" 2>/dev/null && break; sleep 0.1; done
	sleep 3 # idle readers release their buffers after 2 s
	rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
	wait "$b" || true
	per=$(((rss - base) * 1024 / n))
	printf '%-28s %9s KiB %11s B %12s\n' "$n clients" "$rss" "$per" "$(awk -v v="$per" 'BEGIN{printf "%.2f", v/32768}')"
	stop_server
done
echo "goal: < 32 KiB (32768 B) resident per idle client"
