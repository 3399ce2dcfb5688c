#!/usr/bin/env bash
# test_ctl_keys.sh - the control socket shows identities (PROTOCOL.md section 16): `ctl list`
# shows each TLS client's key fingerprint under its line, exactly what `roomdrop-server
# fingerprint --tls-cert` prints for the client's certificate, and `ctl info` shows the
# server's own fingerprint, exactly what `roomdrop-server fingerprint --store` prints.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"

CLI=$BUILD/roomdrop
SRV=$BUILD/roomdrop-server
unset ROOMDROP_HOST ROOMDROP_PORT ROOMDROP_NICK ROOMDROP_ROOM

STORE=$(rd_tmpdir)/store
CTL=$RD_TMP/ctl.sock
rd_start_server --store "$STORE" --ctl-socket "$CTL"

rd_spawn "$CLI" --port "$RD_PORT" --nick kay listen >"$RD_TMP/kay.out" 2>"$RD_TMP/kay.err"
KAY=$RD_LAST_PID

# until the server lists kay (registered), at most 10 s
LIST=$RD_TMP/list
for ((i = 0; i < 200; i++)); do
	"$SRV" ctl --socket "$CTL" list >"$LIST" 2>&1 || fail "ctl list failed: $(cat "$LIST")"
	grep -q ' kay ' "$LIST" && break
	kill -0 "$KAY" 2>/dev/null || fail "listen exited: $(cat "$RD_TMP/kay.err")"
	sleep 0.05
done
grep -q ' kay ' "$LIST" || fail "kay did not appear in ctl list within 10s: $(cat "$LIST")"

# the client made its key on first use; the server shows that key's fingerprint
CERT=$XDG_CONFIG_HOME/roomdrop/client.crt
[[ -s $CERT ]] || fail "the client made no certificate at $CERT"
want=$("$SRV" fingerprint --tls-cert "$CERT") || fail "fingerprint --tls-cert $CERT failed"
[[ $want =~ ^([A-Z2-7]{4}-){12}[A-Z2-7]{4}$ ]] || fail "odd fingerprint '$want'"
# the KEY line follows the connection's line
got=$(awk '/ kay /{getline; print; exit}' "$LIST")
[[ ${got// /} == "$want" ]] ||
	fail "ctl list shows key '${got// /}' for kay, wanted '$want': $(cat "$LIST")"
grep -q '^ *KEY$' "$LIST" || fail "ctl list has no KEY heading: $(cat "$LIST")"

# ctl info: the server's own fingerprint and state
INFO=$RD_TMP/info
"$SRV" ctl --socket "$CTL" info >"$INFO" 2>&1 || fail "ctl info failed: $(cat "$INFO")"
sfp=$("$SRV" fingerprint --store "$STORE") || fail "fingerprint --store failed"
grep -qxF "fingerprint: $sfp" "$INFO" || fail "ctl info lacks 'fingerprint: $sfp': $(cat "$INFO")"
[[ $sfp != "$want" ]] || fail "the server and the client have the same key"
grep -qxF "tls: on" "$INFO" || fail "ctl info lacks 'tls: on': $(cat "$INFO")"
grep -qxF "listen: 127.0.0.1:$RD_PORT" "$INFO" || fail "ctl info lacks the listen address"
grep -qxF "clients: 1" "$INFO" || fail "ctl info lacks 'clients: 1': $(cat "$INFO")"
grep -qxF "registered: 1" "$INFO" || fail "ctl info lacks 'registered: 1': $(cat "$INFO")"

cat "$LIST" "$INFO"
rd_stop_pid "$KAY"
rd_stop_server
[[ $RD_STOP_STATUS == 0 ]] || fail "the server exited $RD_STOP_STATUS on SIGTERM"
pass
