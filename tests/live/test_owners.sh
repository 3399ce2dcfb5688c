#!/usr/bin/env bash
# test_owners.sh - nicknames and files owned by client keys (issue 12 points 1 and 2;
# PROTOCOL.md section 7, NICK and ERROR 207; section 17, "Owners", and ERROR 510), with a
# real server and clients on 127.0.0.1:
#   1. the first key that registers a nickname owns it: another key (any case of the
#      name) is refused with exit 4 and "registered to another key", and the server told
#      nobody of that connection; the owner comes back at will;
#   2. `ctl release NICK` frees it: the other key takes it and owns it from then on;
#      releasing a nickname nobody owns is exit 5;
#   3. ownership survives kill -9 of the server (SQLite, STORE.state.db);
#   3b. files have owners (issue 12 point 2): another key may not delete or --overwrite a
#      file (exit 16, the message names the uploader; --rename is fine), its uploader
#      and an operator of the room (ctl op / deop) may; a file put into the folder by
#      hand has no known owner;
#   4. --open-nicks: first come, first served (and ctl release is refused); a client
#      without a key (plaintext, --tls off) may take a nickname and owns nothing;
#   5. --nick-expiry: a bad value is exit 2; an unusable --state file is exit 4 with the
#      reason. (When a claim lapses is test_state's: it needs a clock of its own.)
#   6. two servers on one machine (a cluster's, say) given one --state share owners and
#      admitted keys: a key admitted through one is admitted by the other, and a nickname
#      its key owns there is refused to another key here.
# Each key is a client configuration folder of its own (XDG_CONFIG_HOME).
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"
CLI=$BUILD/roomdrop
SRV=$BUILD/roomdrop-server
CTL=$RD_TMP/ctl.sock
STORE=$RD_TMP/store

# as KEY NICK: a one-shot command (rooms) as NICK with the key kept in $RD_TMP/KEY
as() { XDG_CONFIG_HOME=$RD_TMP/$1 "$CLI" --port "$RD_PORT" --timeout 10 --nick "$2" rooms; }

rd_start_server --store "$STORE" --ctl-socket "$CTL"

# ---- 1. the first key owns it -----------------------------------------------------------------
run 0 as k1 alice
contains "$OUT" "general"
run 4 as k2 alice
contains "$OUT" "nickname 'alice' refused: alice is registered to another key"
run 4 as k2 ALICE
contains "$OUT" "is registered to another key"
grep -q "ALICE.*registered" "$RD_SERVER_LOG" && fail "the refused ALICE was registered"
run 0 as k1 Alice
run 0 as k2 bob
echo "1. alice is k1's: k2 refused (exit 4) in any case, k1 comes back"

# ---- 2. the administrator releases it -----------------------------------------------------------
run 0 "$SRV" ctl --socket "$CTL" release ALICE
run 5 "$SRV" ctl --socket "$CTL" release alice
contains "$OUT" "no key owns that nickname"
run 0 as k2 alice
run 4 as k1 alice
contains "$OUT" "registered to another key"
echo "2. ctl release freed alice: k2 took it and owns it now; a second release is exit 5"

# ---- 3. across kill -9 ----------------------------------------------------------------------------
kill -9 "$RD_SERVER_PID"
wait "$RD_SERVER_PID" 2>/dev/null || true
rd_start_server --store "$STORE" --ctl-socket "$CTL"
run 4 as k1 alice
contains "$OUT" "registered to another key"
run 0 as k2 alice
run 4 as k1 bob
run 0 as k2 bob
echo "3. after kill -9: alice and bob are still k2's"

# ---- 3b. files have owners --------------------------------------------------------------------
files() { XDG_CONFIG_HOME=$RD_TMP/$1 "$CLI" --port "$RD_PORT" --timeout 10 --nick "$2" "${@:3}"; }
work=$(rd_tmpdir)
printf 'ann wrote this\n' >"$work/a.txt"
printf 'ben tries to replace it\n' >"$work/b.txt"
run 0 files k1 ann put "$work/a.txt"
run 0 files k3 ben ls
contains "$OUT" "ann" # the listing names the uploader
run 16 files k3 ben rm a.txt
contains "$OUT" "a.txt belongs to ann's key: only its uploader or an operator of general may delete it"
mkdir -p "$work/up" "$work/got"
cp "$work/b.txt" "$work/up/a.txt"
run 16 files k3 ben put --overwrite "$work/up/a.txt"
contains "$OUT" "only its uploader or an operator of general may replace it"
run 0 files k3 ben get -o "$work/got" a.txt
cmp -s "$work/a.txt" "$work/got/a.txt" || fail "a.txt was changed by someone who may not"
run 0 files k3 ben put --rename "$work/up/a.txt" # another name is fine
contains "$OUT" "a (1).txt"
# the uploader may; then an operator may
run 0 files k1 ann put --overwrite "$work/up/a.txt"
run 0 files k1 ann rm a.txt
run 0 files k1 ann put "$work/a.txt"
run 5 "$SRV" ctl --socket "$CTL" op general nobody
contains "$OUT" "no key owns that nickname"
run 5 "$SRV" ctl --socket "$CTL" op nowhere ben
contains "$OUT" "no such room"
run 0 "$SRV" ctl --socket "$CTL" op general ben
run 0 files k3 ben rm a.txt
run 0 files k1 ann put "$work/a.txt"
run 0 "$SRV" ctl --socket "$CTL" deop general ben
run 5 "$SRV" ctl --socket "$CTL" deop general ben
run 16 files k3 ben rm a.txt
# a file nobody's key uploaded (put into the folder by hand) is anyone's to delete
printf 'by hand\n' >"$STORE/general/hand.txt"
run 0 files k3 ben rm hand.txt
echo "3b. files: another key may not replace or delete ann's file (exit 16), ann and an operator may"

# ---- 4. --open-nicks, and clients without a key ----------------------------------------------------
rd_stop_server
rd_start_server --store "$STORE" --ctl-socket "$CTL" --open-nicks
run 0 as k1 alice
run 1 "$SRV" ctl --socket "$CTL" release alice
contains "$OUT" "--open-nicks"
rd_stop_server
RD_SERVER_TLS=off rd_start_server --store "$RD_TMP/plainstore" --ctl-socket "$CTL"
run 0 "$CLI" --plain --port "$RD_PORT" --timeout 10 --nick carol rooms
run 5 "$SRV" ctl --socket "$CTL" release carol # a client without a key owns nothing
rd_stop_server
echo "4. --open-nicks: first come (ctl release refused); a keyless client owns nothing"

# ---- 5. options ------------------------------------------------------------------------------------
run 2 "$SRV" --headless --listen 127.0.0.1:0 --store "$STORE" --nick-expiry soon
contains "$OUT" "invalid value 'soon' for --nick-expiry"
mkdir -p "$RD_TMP/notafile.db"
run 4 "$SRV" --headless --listen 127.0.0.1:0 --store "$STORE" --state "$RD_TMP/notafile.db"
contains "$OUT" "cannot use the state database $RD_TMP/notafile.db"
rd_start_server --store "$STORE" --ctl-socket "$CTL" --nick-expiry 0
run 4 as k1 alice
echo "5. --nick-expiry: a bad value is exit 2, 0 is taken; an unusable --state: exit 4"

# ---- 6. two servers on one machine share one state database -------------------------------------
rd_stop_server
rd_start_server --store "$RD_TMP/one" --state "$RD_TMP/shared.db" --admission allowlist \
	--ctl-socket "$RD_TMP/one.sock"
PORT_ONE=$RD_PORT
rd_start_server --store "$RD_TMP/two" --state "$RD_TMP/shared.db" --admission allowlist \
	--ctl-socket "$RD_TMP/two.sock"
PORT_TWO=$RD_PORT
RD_PORT=$PORT_ONE run 17 as k7 gus
[[ $OUT =~ yours\ is\ ([A-Z2-7-]+) ]] || fail "no fingerprint in: $OUT"
run 0 "$SRV" ctl --socket "$RD_TMP/two.sock" admit "${BASH_REMATCH[1]}" # through the other
RD_PORT=$PORT_ONE run 0 as k7 gus
RD_PORT=$PORT_TWO run 0 as k7 gus
RD_PORT=$PORT_TWO run 17 as k8 gus
[[ $OUT =~ yours\ is\ ([A-Z2-7-]+) ]] || fail "no fingerprint in: $OUT"
run 0 "$SRV" ctl --socket "$RD_TMP/one.sock" admit "${BASH_REMATCH[1]}"
RD_PORT=$PORT_TWO run 4 as k8 gus # gus is k7's, whichever server it registered on
contains "$OUT" "gus is registered to another key"
echo "6. two servers with one --state: admitted keys and nickname owners are the same on both"

pass
