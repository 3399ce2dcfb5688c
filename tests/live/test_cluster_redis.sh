#!/usr/bin/env bash
# test_cluster_redis.sh - a cluster whose Redis goes away (PROTOCOL.md section 15): nothing
# blocks and nothing crashes, and service heals when Redis comes back:
#   * Redis frozen (SIGSTOP): the servers keep serving their connected clients (a
#     broadcast from the control socket still arrives); a new nickname claim is refused
#     within the client's timeout with ERROR 902 (exit 18) and "try again" (every Redis call has a
#     1 s timeout); after SIGCONT the same nickname is accepted;
#   * Redis killed: the servers log that they lost it, tell their clients once that the
#     cluster is degraded, and keep serving; Redis restarted
#     empty on the same socket: each server registers again, re-asserts its clients'
#     nicknames, the master redirects again, and room messages cross servers again.
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

rd_need_server
CLI=$BUILD/roomdrop
SRV=$BUILD/roomdrop-server
[[ -x $CLI ]] || skip "$CLI is not built yet"
rd_need_cluster


rd_start_redis
cluster=(--redis "$RSOCK" --cluster t3)
rd_start_server --store "$(rd_tmpdir)" --ctl-socket "$RD_TMP/m.ctl" "${cluster[@]}" \
	--master --redirect-above 1
M=$RD_PORT
MLOG=$RD_SERVER_LOG
MPID=$RD_SERVER_PID
rd_start_server --store "$(rd_tmpdir)" --ctl-socket "$RD_TMP/s.ctl" "${cluster[@]}"
S=$RD_PORT
SLOG=$RD_SERVER_LOG
SPID=$RD_SERVER_PID
wait_for "$MLOG" "at 127.0.0.1:$S joined" 10

listen_as()
{
	rd_spawn "$CLI" --port "$M" --nick "$1" listen >"$RD_TMP/$1.out" 2>&1
	wait_for "$RD_TMP/$1.out" "listening in general as $1" 15
}
listen_as a1
listen_as a2
contains "$(cat "$RD_TMP/a2.out")" "redirected you to 127.0.0.1:$S"

# ---- Redis frozen -------------------------------------------------------------------------
kill -STOP "$REDIS_PID"
"$SRV" ctl --socket "$RD_TMP/m.ctl" broadcast "still serving" >/dev/null ||
	fail "ctl broadcast failed while Redis is frozen"
wait_for "$RD_TMP/a1.out" "still serving" 10
run 18 "$CLI" --port "$S" --nick newbie --timeout 10 rooms
contains "$OUT" "try again"
kill -CONT "$REDIS_PID"
ok=0
for ((i = 0; i < 20; i++)); do
	if "$CLI" --port "$S" --nick newbie --timeout 10 rooms >"$RD_TMP/out" 2>&1; then
		ok=1
		break
	fi
	sleep 0.5
done
((ok)) || fail "after SIGCONT the nickname is still refused: $(cat "$RD_TMP/out")"

# ---- Redis killed, then back, empty --------------------------------------------------------
# wait_more FILE REGEX N: until FILE has more than N lines matching REGEX (10 s), else fail
wait_more()
{
	local i
	for ((i = 0; i < 200; i++)); do
		(($(grep -cE -- "$2" "$1" || true) > $3)) && return 0
		sleep 0.05
	done
	fail "no new '$2' in $1 within 10 s"
}
DOWN='lost Redis|Redis does not answer'
UP='Redis answers again'
# both servers healed from the freeze (as many recoveries as losses), then count
for log in "$MLOG" "$SLOG"; do
	for ((i = 0; i < 200; i++)); do
		(($(grep -cE "$DOWN" "$log" || true) == $(grep -cE "$UP" "$log" || true))) && break
		sleep 0.05
	done
	(($(grep -cE "$DOWN" "$log" || true) == $(grep -cE "$UP" "$log" || true))) ||
		fail "a server did not recover from the freeze within 10 s: $log"
done
m_down=$(grep -cE "$DOWN" "$MLOG" || true)
s_down=$(grep -cE "$DOWN" "$SLOG" || true)
rd_stop_pid "$REDIS_PID"
wait_more "$MLOG" "$DOWN" "$m_down"
wait_more "$SLOG" "$DOWN" "$s_down"
# each server tells its own clients, once per outage
wait_more "$RD_TMP/a1.out" "the cluster is degraded" "$m_down"
wait_more "$RD_TMP/a2.out" "the cluster is degraded" "$s_down"
"$SRV" ctl --socket "$RD_TMP/s.ctl" broadcast "secondary still serving" >/dev/null ||
	fail "ctl broadcast failed while Redis is gone"
wait_for "$RD_TMP/a2.out" "secondary still serving" 10
rd_start_redis
wait_more "$MLOG" "$UP" "$m_down"
wait_more "$SLOG" "$UP" "$s_down"
wait_more "$RD_TMP/a1.out" "the cluster is whole again" "$m_down"
(($(grep -c "the cluster is degraded" "$RD_TMP/a1.out") == m_down + 1)) ||
	fail "a1 was not told once per outage: $(grep -c "the cluster is degraded" "$RD_TMP/a1.out") notices for $((m_down + 1)) outages"
for n in a1 a2; do
	for ((i = 0; i < 200; i++)); do
		[[ -n $(rcli get "rd:t3:nick:$n") ]] && break
		sleep 0.05
	done
	[[ -n $(rcli get "rd:t3:nick:$n") ]] || fail "$n's nickname was not claimed again"
done
(($(rcli scard rd:t3:servers) == 2)) || fail "registry after the restart: $(rcli smembers rd:t3:servers)"
# the master redirects again, and a room message from the secondary reaches the master's
# a1 (each server re-reads the registry and re-subscribes within a second or two of
# Redis answering: until then a message may stay on its server, so try a few times)
healed=0
for ((i = 1; i <= 20 && !healed; i++)); do
	"$CLI" --port "$M" --nick "talker$i" say "after the storm $i" >"$RD_TMP/out" 2>&1 ||
		fail "say failed after Redis came back: $(cat "$RD_TMP/out")"
	if grep -q "redirected you to 127.0.0.1:$S" "$RD_TMP/out"; then
		for ((j = 0; j < 40; j++)); do
			grep -qF "[general] <talker$i> after the storm $i" "$RD_TMP/a1.out" && healed=1 && break
			sleep 0.05
		done
	fi
	((healed)) || sleep 0.5
done
((healed)) || fail "no redirect, or no message across servers, within 20 tries after Redis came back"

for pid in "$SPID" "$MPID"; do
	rd_stop_server "$pid"
	((RD_STOP_STATUS == 0)) || fail "a cluster member exited $RD_STOP_STATUS on SIGTERM"
done
rd_stop_pid "$REDIS_PID"
pass
