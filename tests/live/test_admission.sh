#!/usr/bin/env bash
# test_admission.sh - who may use the server at all (issue 12 points 3 and 4; PROTOCOL.md
# section 7, "Admission" and "Invitations"; AUTH, ERROR 208-210, CTL_ADMIT/INVITE), with a
# real server and clients on 127.0.0.1:
#   1. --admission password: no password is exit 17 ("wants a password"); a wrong one is
#      exit 17 and answered later each time (the server logs the growing delay); the right
#      one gets in, from --password-file or typed at the prompt on a terminal (not echoed); the server refuses to start with a password and --tls off, or without
#      --password-file;
#   2. --admission allowlist: an unknown key is refused (exit 17) and told its fingerprint;
#      `ctl admit` that fingerprint lets it in, `ctl revoke` shuts it out again;
#   3. --admission invite: `ctl invite` prints a link; `roomdrop join-invite LINK` pins the
#      server from the link (a link with another key is refused, exit 14, nothing sent),
#      gets the key admitted and records the server's key; the link works once; one with
#      --uses 2 twice; an expired one and a revoked one are refused;
#   4. admission survives kill -9 (the admitted keys are in the state database).
# Each key is a client configuration folder of its own (XDG_CONFIG_HOME).
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"
CLI=$BUILD/roomdrop
SRV=$BUILD/roomdrop-server
CTL=$RD_TMP/ctl.sock

# as KEY NICK [OPTIONS...]: `rooms` as NICK with the key kept in $RD_TMP/KEY
as() { XDG_CONFIG_HOME=$RD_TMP/$1 "$CLI" --port "$RD_PORT" --timeout 20 --nick "$2" "${@:3}" rooms; }
ctl() { "$SRV" ctl --socket "$CTL" "$@"; }

# ---- 1. password ------------------------------------------------------------------------------
printf 'correct horse\n' >"$RD_TMP/pw"
printf 'wrong horse\n' >"$RD_TMP/bad"
run 2 "$SRV" --headless --listen 127.0.0.1:0 --store "$RD_TMP/s0" --admission password
contains "$OUT" "--admission password and --password-file go together"
run 2 "$SRV" --headless --listen 127.0.0.1:0 --store "$RD_TMP/s0" --tls off \
	--admission password --password-file "$RD_TMP/pw"
contains "$OUT" "needs TLS"
rd_start_server --store "$RD_TMP/s1" --ctl-socket "$CTL" --admission password \
	--password-file "$RD_TMP/pw"
run 17 as k1 alice
contains "$OUT" "this server wants a password first"
run 17 as k1 alice --password-file "$RD_TMP/bad"
contains "$OUT" "password refused: wrong password"
run 17 as k1 alice --password-file "$RD_TMP/bad"
run 17 as k1 alice --password-file "$RD_TMP/bad"
grep -q "a wrong password refused (answered after 250 ms)" "$RD_SERVER_LOG" ||
	fail "the first failure was not delayed 250 ms: $(grep refused "$RD_SERVER_LOG")"
grep -q "a wrong password refused (answered after 1000 ms)" "$RD_SERVER_LOG" ||
	fail "the third failure was not delayed 1 s: $(grep refused "$RD_SERVER_LOG")"
run 0 as k1 alice --password-file "$RD_TMP/pw"
contains "$OUT" "general"
run 12 as k1 alice --password-file "$RD_TMP/missing"
contains "$OUT" "cannot read the password file"
# on a terminal without --password-file, it asks (and does not echo what is typed)
command -v script >/dev/null 2>&1 || fail "script (util-linux) is missing: install-deps installs it"
# (typed once the prompt is there, as a person would: echo is off by then)
: >"$RD_TMP/tty.out"
{
	for ((i = 0; i < 400; i++)); do
		grep -q "wants a password" "$RD_TMP/tty.out" && break
		sleep 0.05
	done
	printf 'correct horse\n'
} | XDG_CONFIG_HOME=$RD_TMP/k1 script -qec \
	"$CLI --port $RD_PORT --timeout 20 --nick alice rooms" /dev/null >"$RD_TMP/tty.out" 2>&1 ||
	fail "the password typed at the prompt was refused: $(cat "$RD_TMP/tty.out")"
contains "$(cat "$RD_TMP/tty.out")" "127.0.0.1:$RD_PORT wants a password: "
contains "$(cat "$RD_TMP/tty.out")" "general"
grep -q "correct horse" "$RD_TMP/tty.out" && fail "the password was echoed: $(cat "$RD_TMP/tty.out")"
rd_stop_server
echo "1. password: none and wrong ones refused (exit 17, slower each time), the right one admitted"

# ---- 2. allow-list --------------------------------------------------------------------------
rd_start_server --store "$RD_TMP/s2" --ctl-socket "$CTL" --admission allowlist
run 17 as k2 bob
contains "$OUT" "this server admits only known keys; yours is "
contains "$OUT" "ask its administrator to admit it"
[[ $OUT =~ yours\ is\ ([A-Z2-7-]+) ]] || fail "no fingerprint in: $OUT"
fp=${BASH_REMATCH[1]}
grep -q "the key $fp is not admitted (refused)" "$RD_SERVER_LOG" ||
	fail "the server did not log the refused key"
run 0 ctl admit "$fp"
run 0 as k2 bob
run 0 ctl revoke "$fp"
run 5 ctl revoke "$fp"
run 17 as k2 bob
run 2 ctl admit not-a-key
rd_stop_server
echo "2. allow-list: unknown key refused with its fingerprint; ctl admit lets it in, revoke out"

# ---- 3. invitations -------------------------------------------------------------------------
rd_start_server --store "$RD_TMP/s3" --ctl-socket "$CTL" --admission invite
run 17 as k3 carol
contains "$OUT" "ask its administrator for an invitation"
link=$(ctl invite 2>"$RD_TMP/invite.err")
[[ $link =~ ^roomdrop://127\.0\.0\.1:$RD_PORT/invite/[0-9a-f]{32}\?fp=[A-Z2-7-]+$ ]] ||
	fail "not an invitation link: $link"
contains "$(cat "$RD_TMP/invite.err")" "good for 1 use until"
# a link whose key is not the server's: nothing is sent, the invitation stays unused
forged=${link%\?fp=*}?fp=$("$SRV" fingerprint --store "$RD_TMP/s1")
run 14 env XDG_CONFIG_HOME="$RD_TMP/k3" "$CLI" join-invite "$forged"
contains "$OUT" "not the one pinned"
run 0 env XDG_CONFIG_HOME="$RD_TMP/k3" "$CLI" join-invite "$link"
contains "$OUT" "admitted to 127.0.0.1:$RD_PORT"
grep -q "127.0.0.1 $RD_PORT" "$RD_TMP/k3/roomdrop/known_servers" ||
	grep -q "127.0.0.1:$RD_PORT" "$RD_TMP/k3/roomdrop/known_servers" ||
	fail "join-invite did not record the server's key: $(cat "$RD_TMP/k3/roomdrop/known_servers")"
run 0 as k3 carol
run 17 env XDG_CONFIG_HOME="$RD_TMP/k4" "$CLI" join-invite "$link"
contains "$OUT" "invitation refused: this invitation is unknown, used up, expired or revoked"
# two uses
link2=$(ctl invite --uses 2 2>/dev/null)
run 0 env XDG_CONFIG_HOME="$RD_TMP/k4" "$CLI" join-invite "$link2"
run 0 env XDG_CONFIG_HOME="$RD_TMP/k5" "$CLI" join-invite "$link2"
run 17 env XDG_CONFIG_HOME="$RD_TMP/k6" "$CLI" join-invite "$link2"
# revoked, and expired
link3=$(ctl invite 2>"$RD_TMP/invite3.err")
[[ $(cat "$RD_TMP/invite3.err") =~ invitation\ ([0-9a-f]{8}) ]] || fail "no id in the output"
run 0 ctl uninvite "${BASH_REMATCH[1]}"
run 5 ctl uninvite "${BASH_REMATCH[1]}"
run 17 env XDG_CONFIG_HOME="$RD_TMP/k6" "$CLI" join-invite "$link3"
link4=$(ctl invite --valid 1s 2>/dev/null)
sleep 1.5
run 17 env XDG_CONFIG_HOME="$RD_TMP/k6" "$CLI" join-invite "$link4"
run 2 "$CLI" join-invite "https://example.invalid/"
contains "$OUT" "is not an invitation"
echo "3. invitations: pinned from the link, once, twice with --uses 2, not revoked or expired"

# ---- 4. across kill -9 ----------------------------------------------------------------------------
kill -9 "$RD_SERVER_PID"
wait "$RD_SERVER_PID" 2>/dev/null || true
rd_start_server --store "$RD_TMP/s3" --ctl-socket "$CTL" --admission invite
run 0 as k3 carol
run 0 as k5 erin
run 17 as k6 frank
echo "4. after kill -9: the admitted keys still are, the others still are not"

pass
