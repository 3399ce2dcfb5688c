#!/usr/bin/env bash
# bench_offers.sh - a file offer of a 1 GiB random file, accepted and sent (issue 10 point
# 9), run by `make bench`.
#
#   BUILD=build bench/bench_offers.sh
#
# On 127.0.0.1, in the same run: a raw TCP copy of the file into a file with socat (the
# baseline), and `roomdrop offer bob FILE` to a `roomdrop listen --accept-all`, over a
# direct TLS link between the two clients (the default when they reach each other), and
# through the server's relay (the receiver with --p2p never). The offer's time is the whole command: offer, answer,
# hashing, transfer, the receiver's verification, fsync and rename, and its receipt.
# Prints MB/s (MB = 10^6 bytes), the ratio to socat (> 1 = faster) and the server's
# resident memory: idle before, the most seen while relaying (sampled every 100 ms), so
# that "memory flat during the relay" is a number. Best of BENCH_RUNS runs (default 2).
#
# Environment: BENCH_OFFER_MB (default 1024), BENCH_RUNS. Files live in a temporary
# directory removed at the end; every process is stopped by PID.
set -euo pipefail
RD_TEST=bench_offers
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/../tests/live/lib.sh"

MB=${BENCH_OFFER_MB:-1024}
RUNS=${BENCH_RUNS:-2}
CLI=$BUILD/roomdrop

[[ -x $BUILD/roomdrop-server && -x $CLI ]] || skip "server or client not built"
command -v socat >/dev/null || skip "socat is not installed (scripts/install-deps.sh)"

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

work=$(rd_tmpdir)
src=$work/offer.bin
echo "bench_offers: generating ${MB} MiB of random bytes in $work"
head -c "$((MB * 1024 * 1024))" /dev/urandom >"$src"
size=$(stat -c %s "$src")
cat "$src" >/dev/null # warm: every side reads it from the page cache

RD_SERVER_TLS=on rd_start_server --store "$work/store"
srv=$RD_SERVER_PID
fp=$("$BUILD/roomdrop-server" fingerprint --store "$work/store") || fail "no fingerprint"
sleep 0.3
idle_kb=$(kb_of "$srv" VmRSS)
peak_kb=$idle_kb

for run in $(seq 1 "$RUNS"); do
	socat_copy "$src" "$work/socat-$run" socat
	rm -f "$work/socat-$run"

	for mode in direct relay; do
		inbox=$work/inbox-$run-$mode
		mkdir -p "$inbox"
		p2p=auto
		[[ $mode == relay ]] && p2p=never
		rd_spawn "$CLI" --port "$RD_PORT" --server-fp "$fp" --nick "bob$mode" listen \
			--accept-all --p2p "$p2p" --into "$inbox" >"$work/bob-$run-$mode.log" 2>&1
		bob=$RD_LAST_PID
		for _ in $(seq 1 100); do
			grep -q "bob$mode (127.0.0.1.*joined" "$RD_SERVER_LOG" && break
			sleep 0.05
		done
		settle
		# the server's memory while the bytes go (through it, for the relay)
		(while kill -0 "$srv" 2>/dev/null; do kb_of "$srv" VmRSS; sleep 0.1; done) \
			>"$work/rss-$run-$mode" &
		sampler=$!
		t0=$(now_ns)
		out=$("$CLI" --port "$RD_PORT" --server-fp "$fp" --nick alice --timeout 120 \
			offer "bob$mode" "$src" 2>&1) || fail "offer failed: $out"
		t1=$(now_ns)
		kill "$sampler" 2>/dev/null || true
		wait "$sampler" 2>/dev/null || true
		[[ $out == *"1 of 1 file saved and verified"* ]] || fail "offer not verified: $out"
		if [[ $mode == direct ]]; then
			[[ $out == *"sent directly"* ]] || fail "the offer did not go direct: $out"
		else
			[[ $out == *"through the server"* ]] || fail "the offer did not go through the server: $out"
		fi
		cmp -s "$src" "$inbox/offer.bin" || fail "the received copy differs"
		best "offer $mode" $((t1 - t0))
		if [[ $mode == relay ]]; then
			p=$(sort -n "$work/rss-$run-$mode" | tail -1)
			((p > peak_kb)) && peak_kb=$p
		fi
		rd_stop_pid "$bob"
		rm -rf "$inbox"
	done
done
rd_stop_server "$srv"

s=${BEST[socat]} r=${BEST["offer relay"]} d=${BEST["offer direct"]}
rr=$(ratio "$s" "$r")
rd=$(ratio "$s" "$d")
echo
echo "file offer of $((size / 1000000)) MB on 127.0.0.1, best of $RUNS runs (MB = 10^6 bytes; ratio = speed / socat's)"
printf 'socat raw copy into a file:        %8s MB/s\n' "$(mbps "$size" "$s")"
printf 'offer over a direct link (TLS):    %8s MB/s (%sx)\n' "$(mbps "$size" "$d")" "$rd"
printf 'offer through the server (TLS):    %8s MB/s (%sx)\n' "$(mbps "$size" "$r")" "$rr"
grow=$(((peak_kb - idle_kb) / 1024))
echo "server memory: idle $((idle_kb / 1024)) MiB, peak $((peak_kb / 1024)) MiB while relaying (+${grow} MiB)"
echo "goal: offer over a direct link >= 0.9x socat: $(awk -v r="$rd" 'BEGIN { print (r >= 0.9) ? "yes" : "NO" }')"
echo "goal: offer through the server >= 0.6x socat: $(awk -v r="$rr" 'BEGIN { print (r >= 0.6) ? "yes" : "NO" }')"
echo "goal: server memory flat during the relay (< 32 MiB growth): $( ((grow < 32)) && echo yes || echo NO)"
