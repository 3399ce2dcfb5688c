#!/usr/bin/env bash
# bench_rooms.sh - room fan-out and idle memory of roomdrop-server, over TLS (the default)
# and over plaintext (server --tls off, loadbot --plain), measured in the same run.
#
#   BUILD=build bench/bench_rooms.sh        (run by `make bench`)
#
# Fan-out: 1000 members in one room, 1 or 4 senders, 32-byte messages; loadbot
# checks every delivery (exactly once, in order), and reports deliveries per second,
# send-to-receipt latency (p50/p99) and the server's CPU time per delivery, read from
# /proc around the sending phase only. A sender keeps at most WINDOW messages in flight:
# the first table is the most the server delivers (latency there is mostly the queue the
# window allows); the second paces the senders to 1,000,000 deliveries/s, the load at which
# the latency goal is set. Every row runs once over TLS and once over plaintext against a
# fresh server; the last column is TLS CPU per delivery / plaintext's (issue 9: <= 1.3x).
# The goal line takes the geometric mean of the four rows' ratios (one row is noisy here).
# Memory: the server's resident size with IDLE_MAX (default 10000) idle registered
# clients in rooms of 100 (one room of 10,000 would cost 50 million presence notices while
# they join), minus its resident size before they came, per client, over both transports
# (issue 9: < 64 KiB per idle TLS client at 10,000 clients; issue 3: < 32 KiB plaintext).
# Scale (issue 13): the same again with SCALE_MAX (default 20000) idle clients, and in
# every idle row, while the idle clients stay connected, a probe: two more clients in a
# room of their own, one sending 300 chat messages paced at 100/s to the other through the
# server; the row prints the send-to-receipt latency p50/p99 (goal: p99 < 10 ms at 20,000
# idle clients). The open-files limit is raised to its hard limit for the server and
# loadbot; each holds one descriptor per client, so a hard limit below SCALE_MAX + 100
# caps the row (this machine's: 20,000, which cannot be raised here: 19,900 clients).
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

IDLE_MAX=${IDLE_MAX:-10000}
SCALE_MAX=${SCALE_MAX:-20000}
# the server and loadbot each hold one descriptor per client, plus a few
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
if [[ $nofile != unlimited ]] && ((nofile < IDLE_MAX + 100)); then
	echo "bench_rooms: open-files limit $nofile: idle clients capped at $((nofile - 100))"
	IDLE_MAX=$((nofile - 100))
fi
if [[ $nofile != unlimited ]] && ((nofile < SCALE_MAX + 100)); then
	echo "bench_rooms: open-files limit $nofile (hard): the scale row is capped at" \
		"$((nofile - 100)) clients instead of $SCALE_MAX"
	SCALE_MAX=$((nofile - 100))
fi
MAX_CLIENTS=$(((SCALE_MAX > IDLE_MAX ? SCALE_MAX : IDLE_MAX) + 50))

tmp=$(mktemp -d)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# start_server tls|plain [ARGS...]
start_server() {
	local tls=()
	[[ $1 == plain ]] && tls=(--tls off)
	shift
	rm -f "$tmp/port"
	"$srvbin" --headless --listen 127.0.0.1:0 --port-file "$tmp/port" --store "$tmp/store" \
		--ctl-socket "$tmp/ctl.sock" --max-clients "$MAX_CLIENTS" --msg-rate 0 \
		--log-level error "${tls[@]}" "$@" >"$tmp/server.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do [[ -s $tmp/port ]] && break; sleep 0.1; done
	[[ -s $tmp/port ]] || { echo "bench_rooms: server did not start"; cat "$tmp/server.log"; exit 1; }
	port=$(cat "$tmp/port")
}
stop_server() { kill "$pid"; wait "$pid" || true; pid=; }
val() { sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p" "$2" | head -1; }
botargs() { [[ $1 == plain ]] && echo --plain || true; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

declare -A CPU
RATIOS=()
# run_fan TRANSPORT MEMBERS SENDERS MESSAGES [RATE]: one loadbot run against a fresh server
run_fan() {
	local tr=$1 members=$2 senders=$3 msgs=$4 rate=${5:-0} out=$tmp/fan.out ok=yes label us r
	start_server "$tr"
	# shellcheck disable=SC2046 # botargs is one word or none
	"$bot" --port "$port" --clients "$members" --senders "$senders" --messages "$msgs" \
		--window "$WINDOW" --rate "$rate" --server-pid "$pid" --timeout 120 --quiet \
		$(botargs "$tr") >"$out" || ok=NO
	label="$members members, $senders sender(s)"
	us=$(val server_cpu_us_per_delivery "$out")
	CPU["$tr $label $rate"]=$us
	r=
	if [[ $tr == plain ]]; then
		r=$(ratio "${CPU["tls $label $rate"]:-0}" "$us")
		RATIOS+=("$r")
		r=${r}x
	fi
	printf '%-28s %-5s %14s %9.1f %9.1f %10s %6s %9s\n' "$label" "$tr" \
		"$(val deliveries_per_second "$out")" \
		"$(awk -v v="$(val latency_p50_us "$out")" 'BEGIN{print v/1000}')" \
		"$(awk -v v="$(val latency_p99_us "$out")" 'BEGIN{print v/1000}')" \
		"$us" "$ok" "$r"
	stop_server
}
hdr() { printf '%-28s %-5s %14s %9s %9s %10s %6s %9s\n' "$1" "link" "deliveries/s" "p50 ms" "p99 ms" "us/deliv" "exact" "TLS/plain"; }

if [[ ${FANOUT:-1} != 0 ]]; then # FANOUT=0: the idle rows only
	hdr "fan-out, as fast as it goes"
	for senders in 1 4; do
		msgs=$((senders == 4 ? 1000 : 2000))
		run_fan tls 1000 "$senders" "$msgs"
		run_fan plain 1000 "$senders" "$msgs"
	done
	echo
	hdr "fan-out paced to 1M/s"
	# 1,000,000 deliveries/s to 999 other members = about 1001 messages/s in all, 5 s long
	for tr in tls plain; do run_fan "$tr" 1000 1 5000 1001; done
	for tr in tls plain; do run_fan "$tr" 1000 4 1250 250.25; done
	echo "goals (1000 members): >= 1000000 deliveries/s, p99 < 50 ms at that load,"
	echo "                      <= 0.5 us server CPU per delivery, TLS/plain <= 1.3x"
	fan_ratio=$(printf '%s\n' "${RATIOS[@]}" |
		awk '$1 > 0 { s += log($1); n++ } END { if (n) printf "%.2f", exp(s / n); else print "-" }')
	echo "goal: TLS server CPU per delivery <= 1.3x plaintext (geometric mean of the ${#RATIOS[@]} rows:" \
		"${fan_ratio}x): $(awk -v r="$fan_ratio" 'BEGIN { print (r > 0 && r <= 1.3) ? "yes" : "NO" }')"
	echo
fi

printf '%-20s %-5s %12s %14s %10s %9s %9s\n' "idle clients" "link" "server RSS" "per client" \
	"goal" "probe p50" "p99 ms"
declare -A PER SETUP P99
for n in $IDLE_MAX $SCALE_MAX; do
	for tr in plain tls; do
		rooms=$((n / 100))
		# on this loaded 2-core machine one loadbot thread cannot answer 10,000 TLS PINGs
		# within 5 s while the others register: idle clients are not pinged here
		start_server "$tr" --rooms "$(seq -s, -f 'general%.0f' 0 $((rooms - 1))),probe" \
			--ping-interval 1h --ping-timeout 1h --register-timeout 1h
		sleep 0.3
		base=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
		# shellcheck disable=SC2046
		"$bot" --port "$port" --clients "$n" --rooms "$rooms" --senders 0 --idle 15 \
			--timeout 300 $(botargs "$tr") >"$tmp/idle.out" &
		b=$!
		for _ in $(seq 1 6000); do
			grep -q idle=ready "$tmp/idle.out" 2>/dev/null && break
			kill -0 "$b" 2>/dev/null || break
			sleep 0.1
		done
		sleep 3 # idle readers release their buffers after 2 s
		rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
		# the probe: a chat between two more clients while the idle ones stay connected
		# shellcheck disable=SC2046
		"$bot" --port "$port" --clients 2 --senders 1 --messages 300 --rate 100 \
			--room probe --nick-prefix probe --timeout 60 --quiet $(botargs "$tr") \
			>"$tmp/probe.out" || echo "bench_rooms: the probe failed: $(tail -1 "$tmp/probe.out")"
		wait "$b" || echo "bench_rooms: loadbot --idle $n ($tr) failed: $(tail -1 "$tmp/idle.out")"
		alive=$(val idle_connected "$tmp/idle.out")
		SETUP[$tr $n]=$(val setup_seconds "$tmp/idle.out")
		[[ $alive == "$n" ]] || echo "bench_rooms: only ${alive:-?} of $n idle clients stayed connected"
		per=$(((rss - base) * 1024 / n))
		PER[$tr $n]=$per
		P99[$tr $n]=$(awk -v v="$(val latency_p99_us "$tmp/probe.out")" 'BEGIN{printf "%.2f", v/1000}')
		goal=$([[ $tr == tls ]] && echo 65536 || echo 32768)
		printf '%-20s %-5s %8s KiB %12s B %9sx %9s %9s\n' "$n clients" "$tr" "$rss" "$per" \
			"$(awk -v v="$per" -v g="$goal" 'BEGIN{printf "%.2f", v/g}')" \
			"$(awk -v v="$(val latency_p50_us "$tmp/probe.out")" 'BEGIN{printf "%.2f", v/1000}')" \
			"${P99[$tr $n]}"
		stop_server
	done
done
echo "goal: < 32 KiB (32768 B) resident per idle plaintext client (issue 3)"
per=${PER[tls $IDLE_MAX]}
echo "goal: < 64 KiB (65536 B) resident per idle TLS client at $IDLE_MAX clients ($per B):" \
	"$( ((per < 65536)) && echo yes || echo NO)"
for tr in plain tls; do
	echo "connection storm ($tr): $IDLE_MAX clients connected, registered and joined in" \
		"${SETUP[$tr $IDLE_MAX]:-?} s, $SCALE_MAX in ${SETUP[$tr $SCALE_MAX]:-?} s (goal," \
		"issue 13: 10,000 in under 15 s; PRESENCE_SUMMARY past --presence-burst)"
	echo "goal: chat p99 < 10 ms with $SCALE_MAX idle clients ($tr): ${P99[$tr $SCALE_MAX]} ms:" \
		"$(awk -v v="${P99[$tr $SCALE_MAX]}" 'BEGIN { print (v > 0 && v < 10) ? "yes" : "NO" }')"
done
