#!/usr/bin/env bash
# test_presence_storm.sh - a connection storm costs linear work (issue 13 point 5;
# PROTOCOL.md PRESENCE_SUMMARY): with --presence-burst 2, a listener sees at most the burst
# of arrivals and departures one by one each second, and the rest as counts once a second;
# every arrival and departure is told exactly once, one way or the other:
#   1. 30 clients connect and join #general at once: the observer's "connected" lines plus
#      the summaries' connection counts make 30, and so do its "joined" lines plus the
#      summaries' join counts; at least one summary came;
#   2. the 30 go at once: the same for "disconnected" (a client that goes is told as
#      DISCONNECTED, with its room, not as LEFT);
#   3. --presence-burst 0 (never summarise) and a bad value (exit 2).
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

rd_need_server
CLI=$BUILD/roomdrop
[[ -x $CLI ]] || skip "$CLI is not built yet"
N=30

rd_start_server --store "$RD_TMP/store" --presence-burst 2
rd_spawn "$CLI" --port "$RD_PORT" --nick obs listen >"$RD_TMP/obs.out" 2>&1
wait_for "$RD_TMP/obs.out" "listening in general as obs" 15

# sums NAME_PATTERN SUMMARY_WORD: individual lines + summary counts
count_one() { grep -Ec "^\* m[0-9]+ $1" "$RD_TMP/obs.out" || true; }
count_sum() { # count_sum FIELD(1 arrived, 2 departed) ROOMWORD(connected|joined)
	awk -v f="$1" -v w="$2" '$1 == "*" && $3 == "more" && $4 == w { n += (f == 1 ? $2 : $6) }
		END { print n + 0 }' "$RD_TMP/obs.out"
}

pids=()
for ((i = 0; i < N; i++)); do
	rd_spawn "$CLI" --port "$RD_PORT" --nick "m$i" listen >"$RD_TMP/m$i.out" 2>&1
	pids+=("$RD_LAST_PID")
done
for ((i = 0; i < N; i++)); do wait_for "$RD_TMP/m$i.out" "listening in general as m$i" 30; done
# everything counted is told within a second after its second ends
ok=0
for ((t = 0; t < 100; t++)); do
	c=$(($(count_one connected) + $(count_sum 1 connected)))
	j=$(($(count_one "joined general") + $(count_sum 1 joined)))
	((c == N && j == N)) && { ok=1; break; }
	sleep 0.1
done
((ok)) || fail "arrivals told: $c connected, $j joined of $N: $(cat "$RD_TMP/obs.out")"
(($(count_sum 1 connected) + $(count_sum 1 joined) > 0)) ||
	fail "no summary in a storm of $N: $(cat "$RD_TMP/obs.out")"
grep -q "too many to name" "$RD_TMP/obs.out" || fail "no summary line"
echo "1. $N arrivals: $(count_one connected) connections and $(count_one 'joined general') joins told one by one, the rest counted; each exactly once"

kill "${pids[@]}"
ok=0
for ((t = 0; t < 150; t++)); do
	d=$(($(count_one disconnected) + $(count_sum 2 connected)))
	((d == N)) && { ok=1; break; }
	sleep 0.1
done
((ok)) || fail "departures told: $d disconnected of $N: $(cat "$RD_TMP/obs.out")"
echo "2. $N departures: each told exactly once, one by one or in a count"

rd_stop_server
run 2 "$BUILD/roomdrop-server" --headless --listen 127.0.0.1:0 --store "$RD_TMP/s2" --presence-burst many
contains "$OUT" "--presence-burst"
rd_start_server --store "$RD_TMP/store0" --presence-burst 0
rd_spawn "$CLI" --port "$RD_PORT" --nick obs0 listen >"$RD_TMP/obs0.out" 2>&1
wait_for "$RD_TMP/obs0.out" "listening in general as obs0" 15
for ((i = 0; i < 10; i++)); do
	rd_spawn "$CLI" --port "$RD_PORT" --nick "z$i" listen >"$RD_TMP/z$i.out" 2>&1
done
for ((i = 0; i < 10; i++)); do wait_for "$RD_TMP/obs0.out" "z$i joined general" 30; done
grep -q "too many to name" "$RD_TMP/obs0.out" && fail "--presence-burst 0 summarised"
echo "3. --presence-burst 0: every arrival named; a bad value is exit 2"

pass
