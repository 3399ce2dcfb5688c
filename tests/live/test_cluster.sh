#!/usr/bin/env bash
# test_cluster.sh - several servers as one through Redis (PROTOCOL.md section 15), against
# a redis-server of its own (Unix socket in the scratch dir, persistence off, stopped by
# PID at exit):
#   * a master with --redirect-above 2 and two secondaries: the first two clients stay on
#     the master, the third and fourth are redirected, one to each secondary, and each
#     says where it landed; ctl list on each secondary shows its client;
#   * a nickname held on one server is refused on another (cluster-wide nicknames);
#   * presence notices, room messages (exactly once) and private messages reach clients
#     on other servers (the bus: Redis pub/sub), and so do the broadcasts (all, room, one
#     user) and kicks of the master's control socket;
#   * a secondary whose advertised address leads to a server with another key than the
#     one the registry vouches for is refused by the client (exit 14, nothing sent);
#   * an offer to a client on another server goes over a direct link (the introduction
#     crosses servers) and verifies; one with no direct link (--p2p never) is relayed
#     between the servers through Redis and verifies (PROTOCOL.md 15.8; more in
#     test_cluster_relay.sh);
#   * two servers with one store: a file put through one is listed and fetched through the
#     other, and its added/removed notices reach a listener on the other (the bus); an
#     upload in progress on one holds its staging file against the other (busy);
#   * who and rooms count the members of every server, and the master's ctl list shows
#     the clients of the secondaries with the server each is on;
#   * a secondary killed with kill -9 leaves the registry within its entry's life
#     (CLUSTER_TTL_MS = 5 s, read every second: the wait allows 10 s), its clients'
#     departure is announced once on the other servers, who no longer lists them, their
#     nicknames are free again, and the next client goes to the other secondary;
#   * a master with no live secondary serves the client itself up to --max-clients, then
#     answers SERVER_FULL (exit 10);
#   * --redis where nothing answers: exit 7 and a clear message (a build without hiredis:
#     exit 6 and a clear message, and the rest of the test cannot run).
# redis-server missing is a failure, not a skip: scripts/install-deps.sh installs it.
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

rd_need_server
CLI=$BUILD/roomdrop
SRV=$BUILD/roomdrop-server
[[ -x $CLI ]] || skip "$CLI is not built yet"

# ---- cluster mode present in this build? --------------------------------------------------
if "$SRV" --help | grep -q 'not in this build: it has no hiredis'; then
	run 6 "$SRV" --headless --listen 127.0.0.1:0 --store "$(rd_tmpdir)" --redis "$RD_TMP/r.sock"
	contains "$OUT" "built without cluster mode"
	[[ -n ${CI:-} ]] && fail "this build has no cluster mode, but CI must test it (install libhiredis-dev: scripts/install-deps.sh)"
	skip "this build has no cluster mode (no hiredis); its refusal was checked"
fi

# ---- usage errors and an unreachable Redis ----------------------------------------------
run 2 "$SRV" --headless --redirect-above 2
contains "$OUT" "need --redis"
run 2 "$SRV" --headless --redis "$RD_TMP/r.sock" --redirect-above 2
contains "$OUT" "--redirect-above needs --master"
run 7 "$SRV" --headless --listen 127.0.0.1:0 --store "$(rd_tmpdir)" --redis "$RD_TMP/nothing.sock"
contains "$OUT" "cannot reach Redis at $RD_TMP/nothing.sock"

# ---- our own Redis -----------------------------------------------------------------------
rd_start_redis

# ---- a master and two secondaries ----------------------------------------------------------
cluster=(--redis "$RSOCK" --cluster t1)
rd_start_server --store "$(rd_tmpdir)" --ctl-socket "$RD_TMP/m.ctl" "${cluster[@]}" \
	--master --redirect-above 2
M=$RD_PORT
MLOG=$RD_SERVER_LOG
MPID=$RD_SERVER_PID
rd_start_server --store "$(rd_tmpdir)" --ctl-socket "$RD_TMP/s1.ctl" "${cluster[@]}"
S1=$RD_PORT
S1PID=$RD_SERVER_PID
rd_start_server --store "$(rd_tmpdir)" --ctl-socket "$RD_TMP/s2.ctl" "${cluster[@]}"
S2=$RD_PORT
S2PID=$RD_SERVER_PID
wait_for "$MLOG" "at 127.0.0.1:$S1 joined" 10
wait_for "$MLOG" "at 127.0.0.1:$S2 joined" 10

# the registry: three entries, each expiring within 5 s unless refreshed
ids=$(rcli smembers rd:t1:servers)
(($(wc -w <<<"$ids") == 3)) || fail "registry members: $ids"
for id in $ids; do
	ttl=$(rcli pttl "rd:t1:server:$id")
	((ttl > 0 && ttl <= 5000)) || fail "entry $id expires in $ttl ms (want 1..5000)"
done
S1ID=$(grep -o "secondary [0-9a-f]* at 127.0.0.1:$S1 joined" "$MLOG" | cut -d' ' -f2)
S2ID=$(grep -o "secondary [0-9a-f]* at 127.0.0.1:$S2 joined" "$MLOG" | cut -d' ' -f2)
[[ $(rcli hget "rd:t1:server:$S1ID" addr) == "127.0.0.1:$S1" ]] ||
	fail "S1's entry: $(rcli hgetall "rd:t1:server:$S1ID")"
[[ $(rcli hget "rd:t1:server:$S1ID" role) == secondary ]] || fail "S1's role"

# listen_as NICK: a client that stays, started on the master; waits until it is in.
listen_as()
{
	rd_spawn "$CLI" --port "$M" --nick "$1" listen >"$RD_TMP/$1.out" 2>&1
	wait_for "$RD_TMP/$1.out" "listening in general as $1" 15
}
landed() { grep -o 'redirected you to 127.0.0.1:[0-9]*' "$RD_TMP/$1.out" | cut -d: -f2; }

listen_as c1
listen_as c2
[[ -z $(landed c1) && -z $(landed c2) ]] || fail "a client below the threshold was redirected"
listen_as c3
listen_as c4
p3=$(landed c3)
p4=$(landed c4)
[[ -n $p3 && -n $p4 ]] || fail "the third and fourth clients were not redirected: $(cat "$RD_TMP/c3.out" "$RD_TMP/c4.out")"
[[ "$(printf '%s\n' "$p3" "$p4" | sort -n | tr '\n' ' ')" == "$(printf '%s\n' "$S1" "$S2" | sort -n | tr '\n' ' ')" ]] ||
	fail "not spread over both secondaries: c3 on $p3, c4 on $p4 (secondaries $S1 $S2)"
contains "$(cat "$RD_TMP/c3.out")" "127.0.0.1:$M redirected you to 127.0.0.1:$p3"
contains "$(cat "$RD_TMP/c3.out")" "key vouched for: "
grep -q "redirected to 127.0.0.1:$p3" "$MLOG" || fail "the master did not log the redirect"
for n in c3 c4; do
	p=$(landed $n)
	ctl=$RD_TMP/s1.ctl
	[[ $p == "$S2" ]] && ctl=$RD_TMP/s2.ctl
	"$SRV" ctl --socket "$ctl" list >"$RD_TMP/list" || fail "ctl list failed"
	grep -qw "$n" "$RD_TMP/list" || fail "ctl list on port $p does not show $n: $(cat "$RD_TMP/list")"
done
# the master's ctl list shows every client of the cluster, with the server it is on
"$SRV" ctl --socket "$RD_TMP/m.ctl" list >"$RD_TMP/list" || fail "ctl list failed"
grep -Eq "^127\.0\.0\.1 +[0-9]+ +c1 " "$RD_TMP/list" || fail "master's ctl list lacks c1: $(cat "$RD_TMP/list")"
grep -Eq "^- +- +c3 .*on server 127\.0\.0\.1:$p3\$" "$RD_TMP/list" ||
	fail "master's ctl list does not show c3 on 127.0.0.1:$p3: $(cat "$RD_TMP/list")"
grep -Eq "^- +- +c4 .*on server 127\.0\.0\.1:$p4\$" "$RD_TMP/list" ||
	fail "master's ctl list does not show c4 on 127.0.0.1:$p4: $(cat "$RD_TMP/list")"

# ---- nicknames are unique across the cluster ------------------------------------------
# (this client is redirected to a secondary: c1 is on the master)
run 4 "$CLI" --port "$M" --nick c1 rooms
contains "$OUT" "taken"
run 4 "$CLI" --port "$M" --nick C3 rooms
contains "$OUT" "taken"

# ---- one set of rooms: membership, presence, room and private messages cross servers -------
# who and rooms count every member on every server (asked of the master and of S2)
run 0 "$CLI" --port "$M" --nick asker1 --quiet who general
for n in c1 c2 c3 c4; do grep -Eq "^$n " <<<"$OUT" || fail "who general lacks $n: $OUT"; done
run 0 "$CLI" --port "$M" --nick asker2 --quiet rooms
grep -Eq '^general +4 members' <<<"$OUT" || fail "rooms on the master: $OUT"
run 0 "$CLI" --port "$S2" --nick asker3 --quiet rooms
grep -Eq '^general +4 members' <<<"$OUT" || fail "rooms on a secondary: $OUT"
# c1 (master) heard c3 and c4 (secondaries) arrive; c3 heard c4 (the other secondary)
wait_for "$RD_TMP/c1.out" "* c3 joined general" 10
wait_for "$RD_TMP/c1.out" "* c4 joined general" 10
wait_for "$RD_TMP/c3.out" "* c4 joined general" 10
# a room message from a client on a secondary reaches every member on every server, once
run 0 "$CLI" --port "$M" --nick talker --quiet say "hello cluster one"
for n in c1 c2 c3 c4; do wait_for "$RD_TMP/$n.out" "[general] <talker> hello cluster one" 10; done
run 0 "$CLI" --port "$M" --nick talker --quiet say "hello cluster two"
for n in c1 c2 c3 c4; do
	wait_for "$RD_TMP/$n.out" "[general] <talker> hello cluster two" 10
	(($(grep -c "hello cluster one" "$RD_TMP/$n.out") == 1)) ||
		fail "$n got the room message $(grep -c "hello cluster one" "$RD_TMP/$n.out") times"
done
# a private message to a client on another server; to nobody: exit 5
run 0 "$CLI" --port "$M" --nick whisperer --quiet msg c1 "psst c1"
wait_for "$RD_TMP/c1.out" "[private] <whisperer> psst c1" 10
run 0 "$CLI" --port "$M" --nick whisperer --quiet msg c3 "psst c3"
wait_for "$RD_TMP/c3.out" "[private] <whisperer> psst c3" 10
run 5 "$CLI" --port "$M" --nick whisperer msg nobody "hello?"
contains "$OUT" "no such user"

# ---- an offer between clients on different servers (PROTOCOL.md 15.8) -----------------------
# ob1 listens on S1, ob2 (--p2p never) on S2; the offers come from a client on the other
# secondary: directly (the introduction crosses the bus), and relayed through Redis
offer_dir=$(rd_tmpdir)
head -c 300000 /dev/urandom >"$offer_dir/cross.bin"
want=$(sha256sum "$offer_dir/cross.bin" | cut -d' ' -f1)
mkdir -p "$offer_dir/ob1" "$offer_dir/ob2"
rd_spawn "$CLI" --port "$S1" --nick ob1 listen --accept-all --into "$offer_dir/ob1" \
	>"$RD_TMP/ob1.out" 2>&1
rd_spawn "$CLI" --port "$S2" --nick ob2 listen --accept-all --p2p never \
	--into "$offer_dir/ob2" >"$RD_TMP/ob2.out" 2>&1
wait_for "$RD_TMP/ob1.out" "listening in general as ob1" 15
wait_for "$RD_TMP/ob2.out" "listening in general as ob2" 15
run 0 "$CLI" --port "$S2" --nick offerer --timeout 20 offer ob1 "$offer_dir/cross.bin"
contains "$OUT" "sent directly to ob1"
wait_for "$RD_TMP/ob1.out" "received cross.bin from offerer (direct), sha256" 10
[[ $(sha256sum "$offer_dir/ob1/cross.bin" | cut -d' ' -f1) == "$want" ]] ||
	fail "the file offered across servers differs"
echo "an offer from S2 to a client on S1 went directly and verified"
run 0 "$CLI" --port "$S1" --nick offerer2 --timeout 20 offer ob2 "$offer_dir/cross.bin"
contains "$OUT" "sent through the server (no direct link"
wait_for "$RD_TMP/ob2.out" "received cross.bin from offerer2 (through the server), sha256" 10
[[ $(sha256sum "$offer_dir/ob2/cross.bin" | cut -d' ' -f1) == "$want" ]] ||
	fail "the file relayed across servers differs"
echo "an offer across servers with no direct link: relayed through Redis and verified"

# ---- broadcast and kick from the master's control socket act on every server -------------
mctl() { "$SRV" ctl --socket "$RD_TMP/m.ctl" "$@"; }
mctl broadcast "maintenance at noon" >/dev/null || fail "ctl broadcast failed"
mctl broadcast --room general "general closes at six" >/dev/null || fail "ctl broadcast --room failed"
mctl broadcast --to c3 "just for c3" >/dev/null || fail "ctl broadcast --to c3 (another server) failed"
for n in c1 c2 c3 c4; do
	wait_for "$RD_TMP/$n.out" "maintenance at noon" 10
	wait_for "$RD_TMP/$n.out" "general closes at six" 10
done
wait_for "$RD_TMP/c3.out" "just for c3" 10
run 5 mctl broadcast --to nobody "hello?"
listen_as k1 # on a secondary: the master has c1 and c2
[[ -n $(landed k1) ]] || fail "k1 was not redirected"
mctl kick k1 --reason flooding >/dev/null || fail "ctl kick of a client on another server failed"
wait_for "$RD_TMP/k1.out" "* You were kicked: flooding" 10
wait_for "$RD_TMP/c1.out" "* k1 was kicked (flooding)" 10
run 5 mctl kick nobody

# ---- a secondary whose key is not the one the registry vouches for ---------------------
# S3 registers its own key but advertises the address of R, a server with another key:
# the client, sent there with S3's key, refuses R before sending anything.
rd_start_server --store "$(rd_tmpdir)"
R=$RD_PORT
RLOG=$RD_SERVER_LOG
rd_start_server --store "$(rd_tmpdir)" "${cluster[@]}" --advertise "127.0.0.1:$R"
S3PID=$RD_SERVER_PID
wait_for "$MLOG" "at 127.0.0.1:$R joined" 10
run 14 "$CLI" --port "$M" --nick mallory rooms
contains "$OUT" "redirected you to 127.0.0.1:$R and vouched for the key"
contains "$OUT" "Nothing was sent"
grep -q "mallory" "$RLOG" && fail "the client registered on the server with the wrong key"
rd_stop_server "$S3PID"
wait_for "$MLOG" "at 127.0.0.1:$R left the registry" 10

# ---- kill -9 of a secondary: gone from the registry within the documented time ----------
on_s1=c3
[[ $(landed c3) == "$S1" ]] || on_s1=c4
[[ -n $(rcli get "rd:t1:nick:$on_s1") ]] || fail "no claim for $on_s1 in Redis"
kill -KILL "$S1PID"
rd_stop_pid "$S1PID"
wait_for "$MLOG" "at 127.0.0.1:$S1 left the registry" 10
[[ $(rcli exists "rd:t1:server:$S1ID") == 0 ]] || fail "S1's entry is still in Redis"
# its clients' departure is announced everywhere (once, by one surviving server)
wait_for "$RD_TMP/c1.out" "* $on_s1 disconnected (its server 127.0.0.1:$S1 stopped answering)" 10
(($(grep -c "$on_s1 disconnected" "$RD_TMP/c1.out") == 1)) || fail "the departure came twice"
run 0 "$CLI" --port "$M" --nick asker4 --quiet who general
grep -Eq "^$on_s1 " <<<"$OUT" && fail "who still lists $on_s1 after its server died: $OUT"
listen_as c5
if [[ $(landed c5) != "$S2" ]]; then
	fail "after S1 died, c5 went to $(landed c5), not $S2 (S2 $S2ID)." \
		"c5: $(cat "$RD_TMP/c5.out") registry: $(rcli smembers rd:t1:servers | tr '\n' ' ')" \
		"S2's entry: $(rcli hgetall "rd:t1:server:$S2ID" | tr '\n' ' ')" \
		"master: $(grep -E 'serving clients here|left the registry|joined' "$MLOG" | tail -5)"
fi
# its nicknames: freed by the server that announced the departures
for ((i = 0; i < 200; i++)); do
	[[ $(rcli exists "rd:t1:nick:$on_s1") == 0 ]] && break
	sleep 0.05
done
[[ $(rcli exists "rd:t1:nick:$on_s1") == 0 ]] || fail "$on_s1's claim outlived its dead server"

# ---- one store for two servers: files and their notices cross servers ---------------------
# F1 and F2 share a store (as servers of one machine do): a file put through F2 is listed
# and fetched through F1, a listener on F1 hears it added and removed (the notice crosses
# the bus), and a put of the same name through F1 meets the same conflict as on one server
fstore=$(rd_tmpdir)
rd_start_server --store "$fstore" --redis "$RSOCK" --cluster t5
F1=$RD_PORT
F1LOG=$RD_SERVER_LOG
rd_start_server --store "$fstore" --redis "$RSOCK" --cluster t5
F2=$RD_PORT
wait_for "$F1LOG" "at 127.0.0.1:$F2 joined" 10
rd_spawn "$CLI" --port "$F1" --nick fl listen >"$RD_TMP/fl.out" 2>&1
wait_for "$RD_TMP/fl.out" "listening in general as fl" 15
head -c 200000 /dev/urandom >"$offer_dir/shared.bin"
run 0 "$CLI" --port "$F2" --nick fput --quiet put "$offer_dir/shared.bin"
wait_for "$RD_TMP/fl.out" "* fput added shared.bin" 10
run 0 "$CLI" --port "$F1" --nick fls --quiet ls
contains "$OUT" "shared.bin"
mkdir -p "$offer_dir/got"
run 0 "$CLI" --port "$F1" --nick fget --quiet -o "$offer_dir/got" get shared.bin
cmp "$offer_dir/shared.bin" "$offer_dir/got/shared.bin" || fail "the file fetched through F1 differs"
run 6 "$CLI" --port "$F1" --nick fput2 put "$offer_dir/shared.bin"
run 0 "$CLI" --port "$F2" --nick fput --quiet rm shared.bin
wait_for "$RD_TMP/fl.out" "* fput removed shared.bin" 10
# an upload in progress through F1 holds its staging file across processes: the same
# content through F2 meanwhile is refused as busy, not written into the same file
head -c 3000000 /dev/urandom >"$offer_dir/staged.bin"
rd_spawn "$BUILD/tests/rawput" --port "$F1" --nick holder put "$offer_dir/staged.bin" \
	--stop-after 2 >"$RD_TMP/holder.out" 2>&1
HOLDER=$RD_LAST_PID
wait_for "$RD_TMP/holder.out" "stopped after" 10
run 6 "$CLI" --port "$F2" --nick second put "$offer_dir/staged.bin"
contains "$OUT" "busy with another transfer"
rd_stop_pid "$HOLDER"
echo "one store: put through one server, listed, fetched and noticed through the other"

# ---- a master with no live secondary: serves up to its limit, then SERVER_FULL -------------
rd_start_server --store "$(rd_tmpdir)" --redis "$RSOCK" --cluster t2 --master \
	--redirect-above 1 --max-clients 2
M=$RD_PORT
listen_as d1
listen_as d2
[[ -z $(landed d2) ]] || fail "d2 was redirected with no secondary"
# the log says why the master served d2 past its threshold
wait_for "$RD_SERVER_LOG" "serving clients here past --redirect-above 1: no live secondary" 5
run 10 "$CLI" --port "$M" --nick d3 rooms
contains "$OUT" "full"

# every cluster member stops cleanly (exit 0: a sanitizer's report would change it), and
# leaves the registry at once
for pid in "$RD_SERVER_PID" "$S2PID" "$MPID"; do
	rd_stop_server "$pid"
	((RD_STOP_STATUS == 0)) || fail "a cluster member exited $RD_STOP_STATUS on SIGTERM"
done
[[ -z $(rcli keys 'rd:t1:server:*') ]] || fail "entries left behind: $(rcli keys 'rd:t1:server:*')"
rd_stop_pid "$REDIS_PID"
pass
