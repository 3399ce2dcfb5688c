#!/usr/bin/env bash
# test_config.sh - roomdrop-server --config FILE (issue 12 point 5; README, "Configuration
# file"), with a real server and clients on 127.0.0.1:
#   1. a bad file is refused at start with exit 2, the file's line and the reason: a line
#      that is no setting, an unknown setting, a bad value, a bad fingerprint, a [room]
#      section of a room that is not in the list, a file that cannot be read;
#   2. a server runs from the file alone (listen, port-file, headless, store, ctl-socket,
#      rooms), and the command line wins over the file (--rooms);
#   3. operators named in the file ([operators] ROOM = KEY, KEY...; the same as
#      [room NAME] operator = KEY, which test_conf reads) may delete another key's file in
#      that room; without that line they may not (exit 16).
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"
command -v openssl >/dev/null || skip "openssl is not installed"
CLI=$BUILD/roomdrop
SRV=$BUILD/roomdrop-server
CTL=$RD_TMP/ctl.sock
CONF=$RD_TMP/server.ini

# cli KEY NICK ARGS...: a one-shot command as NICK with the key kept in $RD_TMP/KEY
cli() { XDG_CONFIG_HOME=$RD_TMP/$1 "$CLI" --port "$RD_PORT" --timeout 10 --nick "$2" "${@:3}"; }
# key_fp KEY: the fingerprint of that client key (hex SHA-256 of its public key)
key_fp()
{
	openssl pkey -in "$RD_TMP/$1/roomdrop/client.key" -pubout -outform DER |
		sha256sum | cut -d' ' -f1
}

# ---- 1. bad files ---------------------------------------------------------------------------
bad_file() # LINE REASON TEXT: the file TEXT is refused at LINE for REASON
{
	printf '%s' "$3" >"$RD_TMP/bad.ini"
	run 2 "$SRV" --config "$RD_TMP/bad.ini" --headless --listen 127.0.0.1:0 \
		--store "$RD_TMP/bad-store"
	contains "$OUT" "roomdrop-server: $RD_TMP/bad.ini:$1: $2"
}
bad_file 3 "expected [section], name = value or a # comment" \
	$'[server]\nrooms = a,b\nrooms a,b\n'
bad_file 2 "unknown setting 'max-cliens' in [server]" $'[server]\nmax-cliens = 3\n'
bad_file 4 "invalid value 'lots' for max-clients: a number from 1 to 100000" \
	$'# comment\n[server]\n\nmax-clients = lots\n'
bad_file 2 "'headless' is yes or no, not 'maybe'" $'[server]\nheadless = maybe\n'
bad_file 3 "'operator' wants a key fingerprint" $'[server]\n[room general]\noperator = 1234\n'
bad_file 4 "[room nowhere]: no such room" \
	$'[server]\nrooms = a\n[room nowhere]\nallow = '"$(printf 'f%.0s' {1..64})"$'\n'
bad_file 2 "unknown section [rooms]" $'[rooms]\na = 1\n'
run 2 "$SRV" --config "$RD_TMP/missing.ini" --headless
contains "$OUT" "cannot read the configuration file $RD_TMP/missing.ini: No such file or directory"
echo "1. bad files: exit 2 with the file's line and the reason"

# ---- 2. a server from the file alone; the command line wins -------------------------------------
cat >"$CONF" <<EOF
# a team's server
[server]
listen = 127.0.0.1:0
port-file = $RD_TMP/port
headless = yes
store = $RD_TMP/store
ctl-socket = $CTL
rooms = alpha,beta
EOF
(cd "$RD_TMP" && exec "$SRV" --config "$CONF") >"$RD_TMP/server-file.log" 2>&1 &
pid=$!
RD_PIDS+=("$pid")
for ((i = 0; i < 200; i++)); do
	[[ -s $RD_TMP/port ]] && break
	kill -0 "$pid" 2>/dev/null || fail "the server exited: $(cat "$RD_TMP/server-file.log")"
	sleep 0.05
done
[[ -s $RD_TMP/port ]] || fail "no port file within 10 s"
sleep 0.1
RD_PORT=$(<"$RD_TMP/port")
run 0 cli k1 ann rooms
contains "$OUT" "alpha"
contains "$OUT" "beta"
[[ $OUT == *general* ]] && fail "the default rooms are there too: $OUT"
run 0 "$SRV" ctl --socket "$CTL" info
[[ -d $RD_TMP/store ]] || fail "the store of the file was not made"
rd_stop_pid "$pid"
rd_start_server --config "$CONF" --rooms gamma --ctl-socket "$RD_TMP/ctl2.sock"
run 0 cli k1 ann rooms
contains "$OUT" "gamma"
[[ $OUT == *alpha* ]] && fail "--rooms did not win over the file: $OUT"
rd_stop_server
echo "2. the server ran from the file alone; --rooms on the command line wins over it"

# ---- 3. operators named in the file ---------------------------------------------------------------
work=$(rd_tmpdir)
printf 'ann wrote this\n' >"$work/a.txt"
cat >"$CONF" <<EOF
[server]
rooms = alpha,beta
store = $RD_TMP/store3
EOF
rd_start_server --config "$CONF" --ctl-socket "$CTL"
run 0 cli k1 ann --room alpha put "$work/a.txt"
run 0 cli k3 ben --room alpha ls # makes k3's key
run 16 cli k3 ben --room alpha rm a.txt
rd_stop_server
printf '\n[operators]\nalpha = %s, %s\n' "$(key_fp k2)" "$(key_fp k3)" >>"$CONF"
rd_start_server --config "$CONF" --ctl-socket "$CTL"
grep -q "operator of alpha (configuration file)" "$RD_SERVER_LOG" ||
	fail "the operator was not logged"
run 0 cli k3 ben --room alpha rm a.txt
echo "3. an operator named in the file deletes another key's file (refused without the line)"

pass
