#!/usr/bin/env bash
# test_restricted.sh - rooms restricted to some keys or to holders of a room key (issue 12
# point 3; PROTOCOL.md section 7, "Restricted rooms"; JOIN_KEY), with a real server and
# clients on 127.0.0.1. In the document's words:
#   1. a restricted room is invisible to others: it is not in ROOM_LIST, and WHO of it
#      gets ERROR 300 NO_SUCH_ROOM exactly as a room that does not exist;
#   2. it is unjoinable to others: JOIN gets ERROR 300 (exit 5), the same answer as for
#      a room that does not exist; a wrong room key (JOIN_KEY) gets the same;
#   (that a departure's PRESENCE to everyone does not name the room, which the client does
#   not show, is test_server_live's test_restricted_room_on_the_wire)
#   3. the keys it lists (allow = KEY in the configuration file, --room-allow ROOM:KEY)
#      see it and enter it; so do its operators (--operator) and the holders of its room
#      key (key-file =, --room-key-file ROOM:FILE; clients --room-key-file FILE);
#   4. bad restrictions are refused at start (exit 2): a room not in the list, an
#      unreadable key file (with the configuration file's line), --tls off.
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"
command -v openssl >/dev/null || skip "openssl is not installed"
CLI=$BUILD/roomdrop
SRV=$BUILD/roomdrop-server
CONF=$RD_TMP/server.ini

# cli KEY NICK ARGS...: a one-shot command as NICK with the key kept in $RD_TMP/KEY
cli() { XDG_CONFIG_HOME=$RD_TMP/$1 "$CLI" --port "$RD_PORT" --timeout 10 --nick "$2" "${@:3}"; }
# same_as_no_room ROOM: the last line of $OUT is $nosuch's, with ROOM for the room's name
same_as_no_room() { [[ ${OUT##*$'\n'} == "${nosuch//ROOM/$1}" ]]; }
key_fp()
{
	openssl pkey -in "$RD_TMP/$1/roomdrop/client.key" -pubout -outform DER |
		sha256sum | cut -d' ' -f1
}

# the clients' keys exist once they have connected somewhere
rd_start_server --store "$RD_TMP/s0"
for k in k1 k2 k3; do run 0 cli "$k" "n$k" rooms; done
rd_stop_server
printf 'open sesame\n' >"$RD_TMP/vault.key"
printf 'open barley\n' >"$RD_TMP/wrong.key"
cat >"$CONF" <<EOF2
[server]
rooms = general,board,vault
store = $RD_TMP/store
[room board]
allow = $(key_fp k1)
[room vault]
key-file = $RD_TMP/vault.key
EOF2
rd_start_server --config "$CONF"

# ---- 1. invisible --------------------------------------------------------------------------
run 0 cli k2 bob rooms
contains "$OUT" "general"
[[ $OUT == *board* || $OUT == *vault* ]] && fail "bob sees a restricted room: $OUT"
run 5 cli k2 bob who nosuch
nosuch=${OUT##*$'\n'}
nosuch=${nosuch//nosuch/ROOM}
run 5 cli k2 bob who board
same_as_no_room board || fail "WHO board differs from WHO of no room: $OUT"
contains "$OUT" "there is no such room"
echo "1. bob: board and vault are not in ROOMS; WHO board is ERROR 300 as for no room"

# ---- 2. unjoinable ---------------------------------------------------------------------------
run 5 cli k2 bob --room nosuch say hello
nosuch=${OUT##*$'\n'}
nosuch=${nosuch//nosuch/ROOM}
run 5 cli k2 bob --room board say hello
same_as_no_room board || fail "JOIN board differs from JOIN of no room: $OUT"
run 5 cli k2 bob --room vault say hello
same_as_no_room vault || fail "JOIN vault differs from JOIN of no room: $OUT"
run 5 cli k3 carol --room vault --room-key-file "$RD_TMP/wrong.key" say hello
same_as_no_room vault || fail "a wrong room key differs from no room: $OUT"
run 5 cli k3 carol --room nosuch --room-key-file "$RD_TMP/vault.key" say hello
echo "2. bob cannot join board or vault, carol not vault with a wrong key: ERROR 300, as for no room"

# ---- 3. the allowed, the key holders, the operators ------------------------------------------
run 0 cli k1 alice rooms
contains "$OUT" "board"
[[ $OUT == *vault* ]] && fail "alice sees vault: $OUT"
run 0 cli k1 alice --room board say hello board
run 0 cli k1 alice who board
run 0 cli k3 carol --room vault --room-key-file "$RD_TMP/vault.key" say hello vault
run 0 cli k3 carol --room vault --room-key-file "$RD_TMP/vault.key" who
run 5 cli k1 alice --room vault say hello
rd_stop_server
rd_start_server --config "$CONF" --room-allow "board:$(key_fp k2)" \
	--operator "vault:$(key_fp k1)"
run 0 cli k2 bob --room board say bob is in # lists add up: the file's and the option's
run 0 cli k1 alice --room board say alice still is
run 0 cli k1 alice --room vault say an operator is
run 5 cli k3 carol --room board say hello
echo "3. allow-listed keys, --room-allow, operators and room-key holders enter; the rest do not"

rd_stop_server

# ---- 4. bad restrictions ------------------------------------------------------------------------
run 2 "$SRV" --headless --listen 127.0.0.1:0 --store "$RD_TMP/s5" --room-allow "nowhere:$(key_fp k1)"
contains "$OUT" "nowhere: no such room"
run 2 "$SRV" --headless --listen 127.0.0.1:0 --store "$RD_TMP/s5" --room-allow "general:xyz"
contains "$OUT" "invalid value 'general:xyz' for --room-allow"
printf '[server]\nrooms = a\n[room a]\nkey-file = %s\n' "$RD_TMP/none.key" >"$RD_TMP/bad.ini"
run 2 "$SRV" --headless --listen 127.0.0.1:0 --store "$RD_TMP/s5" --config "$RD_TMP/bad.ini"
contains "$OUT" "$RD_TMP/bad.ini:4: cannot read the room key file $RD_TMP/none.key"
run 2 "$SRV" --headless --listen 127.0.0.1:0 --store "$RD_TMP/s5" --tls off \
	--room-key-file "general:$RD_TMP/vault.key"
contains "$OUT" "restricted rooms need TLS"
echo "4. bad restrictions: exit 2 with the reason (and the file's line)"

pass
