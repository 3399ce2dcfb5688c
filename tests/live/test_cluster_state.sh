#!/usr/bin/env bash
# test_cluster_state.sh - who may do what, the same on every server of a cluster (issue 12
# point 8, "in cluster mode, are the same on every server"; PROTOCOL.md section 15.10).
# Two servers of one cluster with stores and no --state of their own (no shared file):
#   1. --admission invite: a key refused by server 1 is admitted through server 2's
#      control socket, and is then let in by both;
#   2. a nickname owned through server 1 is refused to another key on server 2 (exit 4),
#      `ctl release` on server 2 frees it for server 1; an operator granted on server 1
#      is revoked on server 2 (and a second revoke finds none: exit 5);
#   3. an invitation made on server 1 is used through server 2 and is spent on both; one
#      revoked on server 2 is refused on server 1;
#   4. kill -9 of server 1 and a new server 1: owners and admitted keys are still there
#      (each was acknowledged by Redis before the client heard of it), and they are in
#      Redis under the documented keys;
#   5. Redis frozen (SIGSTOP): a key's admission cannot be checked, so the client is
#      refused with ERROR 902 and exit 18 ("try again"), not as "not admitted"; after
#      SIGCONT it gets in.
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

rd_need_server
CLI=$BUILD/roomdrop
SRV=$BUILD/roomdrop-server
[[ -x $CLI ]] || skip "$CLI is not built yet"
rd_need_cluster

rd_start_redis
cluster=(--redis "$RSOCK" --cluster t5 --admission invite)
start_one()
{
	rd_start_server --store "$RD_TMP/one" --ctl-socket "$RD_TMP/one.sock" "${cluster[@]}"
	P1=$RD_PORT
	PID1=$RD_SERVER_PID
}
start_one
rd_start_server --store "$RD_TMP/two" --ctl-socket "$RD_TMP/two.sock" "${cluster[@]}"
P2=$RD_PORT
grep -q "kept in the cluster's Redis" "$RD_SERVER_LOG" || fail "server 2 did not say where its state is"
grep -q "appendonly no" "$RD_SERVER_LOG" || fail "no warning about a Redis without persistence"

# as KEY PORT NICK: a one-shot command (rooms) as NICK with the key kept in $RD_TMP/KEY
as() { XDG_CONFIG_HOME=$RD_TMP/$1 "$CLI" --port "$2" --timeout 10 --nick "$3" rooms; }
ctl1() { "$SRV" ctl --socket "$RD_TMP/one.sock" "$@"; }
ctl2() { "$SRV" ctl --socket "$RD_TMP/two.sock" "$@"; }

# ---- 1. admitted through one, admitted by both --------------------------------------------
run 17 as k1 "$P1" alice
[[ $OUT =~ yours\ is\ ([A-Z2-7-]+) ]] || fail "no fingerprint in: $OUT"
K1=${BASH_REMATCH[1]}
run 0 ctl2 admit "$K1"
run 0 as k1 "$P1" alice
run 0 as k1 "$P2" alice
run 17 as k2 "$P2" bob
[[ $OUT =~ yours\ is\ ([A-Z2-7-]+) ]] || fail "no fingerprint in: $OUT"
run 0 ctl1 admit "$K1"
run 0 ctl1 admit "${BASH_REMATCH[1]}"
run 0 as k2 "$P2" bob
echo "1. a key admitted through server 2 is let in by server 1 too"

# ---- 2. owners and operators across servers --------------------------------------------------
run 4 as k2 "$P2" alice
contains "$OUT" "alice is registered to another key"
run 0 ctl1 op general alice
run 0 ctl2 deop general alice
run 5 ctl2 deop general alice
run 5 ctl1 deop general alice
run 0 ctl2 release alice
run 0 as k2 "$P1" alice
run 4 as k1 "$P2" alice
echo "2. alice's owner is the same on both servers; ctl release and deop act cluster-wide"

# ---- 3. invitations across servers ----------------------------------------------------------
link=$(ctl1 invite --host 127.0.0.1 2>/dev/null)
[[ $link =~ ^roomdrop://127\.0\.0\.1:$P1/invite/([0-9a-f]{32})\?fp=(.*)$ ]] || fail "bad link: $link"
secret=${BASH_REMATCH[1]}
# the same secret, presented to server 2 (the link names server 1; both have their own key)
fp2=$(ctl2 info | sed -n 's/^fingerprint: //p')
[[ -n $fp2 ]] || fail "no fingerprint in ctl info: $(ctl2 info)"
run 0 env XDG_CONFIG_HOME="$RD_TMP/k3" "$CLI" join-invite \
	"roomdrop://127.0.0.1:$P2/invite/$secret?fp=$fp2"
run 0 as k3 "$P1" carol
run 17 env XDG_CONFIG_HOME="$RD_TMP/k4" "$CLI" join-invite "$link"
contains "$OUT" "refused"
link=$(ctl1 invite 2>"$RD_TMP/invite.err")
[[ $(cat "$RD_TMP/invite.err") =~ invitation\ ([0-9a-f]{8}) ]] || fail "no id: $(cat "$RD_TMP/invite.err")"
run 0 ctl2 uninvite "${BASH_REMATCH[1]}"
run 5 ctl1 uninvite "${BASH_REMATCH[1]}"
run 17 env XDG_CONFIG_HOME="$RD_TMP/k4" "$CLI" join-invite "$link"
echo "3. an invitation made on server 1 works once through server 2; one revoked on 2 is dead on 1"

# ---- 4. kill -9 -------------------------------------------------------------------------------
kill -9 "$PID1"
wait "$PID1" 2>/dev/null || true
start_one
run 0 as k2 "$P1" alice
run 4 as k1 "$P1" alice
run 0 as k3 "$P1" carol
run 17 as k4 "$P1" dave
[[ $(rcli hget rd:t5:owner:alice fp) =~ ^[0-9a-f]{64}$ ]] || fail "no owner key in Redis"
[[ $(rcli hlen rd:t5:admitted) == 3 ]] || fail "expected 3 admitted keys: $(rcli hkeys rd:t5:admitted)"
echo "4. after kill -9 of server 1, a new server 1 knows the same owners and admitted keys"

# ---- 5. Redis frozen: a retryable refusal ---------------------------------------------------
kill -STOP "$REDIS_PID"
run 18 as k3 "$P2" carol2
contains "$OUT" "try again"
kill -CONT "$REDIS_PID"
run 0 as k3 "$P2" carol2
echo "5. with Redis frozen an admission is refused with exit 18 (try again), and works after"

pass
