#!/usr/bin/env bash
# test_offers.sh - file offers end to end (issue 10 point 2; PROTOCOL.md sections 13 and 17),
# through a real server on 127.0.0.1 (offers to one user go over a direct link when one
# is made, see test_p2p.sh; room offers through the server):
#   1. a folder and files offered to bob, who accepts everything: every file arrives
#      verified, below the folder's name, the symbolic link inside it left out; exit 0;
#   2. a rejection: the offerer hears the reason and exits 11;
#   3. a partial accept (listen --take): only the matching file is sent and received; and
#      in the shell, "accept? [y/N/s]" answered "s" then file by file;
#   4. a resume: a .part holding the first MiB makes the sender start there; a .part of
#      other bytes fails verification (exit 7) and is removed, so the next offer works;
#   5. a name that exists at the receiver: saved as "name (1).ext";
#   6. a room offer: two members accept, one rejects; both receive;
#   7. --accept-from: an offer from someone else is rejected;
#   8. errors: unknown user (5), oneself (2), a missing path (5), nobody else in the room
#      (5), an unanswered offer that expires (11).
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"
CLI=$BUILD/roomdrop

rdc() { "$CLI" --port "$RD_PORT" --timeout 20 "$@"; }

rd_start_server --store "$RD_TMP/store"
work=$(rd_tmpdir)

# the bundle: photos/2026/a.jpg, photos/b.txt, a link inside photos, report.bin, notes.txt
mkdir -p "$work/src/photos/2026"
head -c 3000000 /dev/urandom >"$work/src/report.bin"
head -c 70000 /dev/urandom >"$work/src/photos/2026/a.jpg"
echo "bee" >"$work/src/photos/b.txt"
echo "notes" >"$work/src/notes.txt"
ln -s /etc "$work/src/photos/etc-link"

# listener NICK DIR ARGS...: bob & co. listening with rules; its pid in LISTENER
listener()
{
	local nick=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	rd_spawn "$CLI" --port "$RD_PORT" --nick "$nick" listen --into "$dir" "$@" \
		>"$RD_TMP/$nick.log" 2>&1
	LISTENER=$RD_LAST_PID
	joined "$nick"
}

# joined NICK: until the server logs NICK entering #general (10 s at most)
joined()
{
	local i
	for ((i = 0; i < 200; i++)); do
		grep -qE "info  $1 \(127\.0\.0\.1:[0-9]+\) joined general" "$RD_SERVER_LOG" && return 0
		sleep 0.05
	done
	fail "$1 never joined general: $(tail -5 "$RD_SERVER_LOG")"
}

same() { cmp -s "$1" "$2" || fail "$2 differs from $1"; }

# ---- 1. accept everything ------------------------------------------------------------------
listener bob "$work/bob" --accept-all
run 0 rdc --nick alice offer bob "$work/src/report.bin" "$work/src/photos" "$work/src/notes.txt"
contains "$OUT" "bob accepts 4 of 4 files"
contains "$OUT" "bob: 4 of 4 files saved and verified"
contains "$OUT" "left out 1 symbolic link"
same "$work/src/report.bin" "$work/bob/report.bin"
same "$work/src/photos/2026/a.jpg" "$work/bob/photos/2026/a.jpg"
same "$work/src/photos/b.txt" "$work/bob/photos/b.txt"
same "$work/src/notes.txt" "$work/bob/notes.txt"
[[ ! -e $work/bob/photos/etc-link ]] || fail "the link was sent"
[[ -z $(find "$work/bob" -name '*.part') ]] || fail ".part files left: $(find "$work/bob" -name '*.part')"
wait_for "$RD_TMP/bob.log" "received photos/2026/a.jpg from alice"
rd_stop_pid "$LISTENER"
echo "1. accepted offer: every file arrived verified"

# ---- 2. a rejection ------------------------------------------------------------------------
listener carol "$work/carol" --reject-all
run 11 rdc --nick alice offer carol "$work/src/notes.txt"
contains "$OUT" "carol rejects: not accepting offers"
[[ ! -e $work/carol/notes.txt ]] || fail "a rejected file arrived"
rd_stop_pid "$LISTENER"
echo "2. rejected offer: exit 11 with the reason"

# ---- 3. a partial accept -------------------------------------------------------------------
listener dave "$work/dave" --accept-all --take '*.txt'
run 0 rdc --nick alice offer dave "$work/src/report.bin" "$work/src/photos" "$work/src/notes.txt"
contains "$OUT" "dave accepts 2 of 4 files"
contains "$OUT" "dave: 2 of 2 files saved and verified"
same "$work/src/notes.txt" "$work/dave/notes.txt"
same "$work/src/photos/b.txt" "$work/dave/photos/b.txt"
[[ ! -e $work/dave/report.bin && ! -e $work/dave/photos/2026/a.jpg ]] ||
	fail "files outside --take arrived"
rd_stop_pid "$LISTENER"
echo "3. partial accept: only the files taken were sent"

# ---- 3b. the shell asks; "s" picks file by file ----------------------------------------------
mkdir -p "$work/kim"
mkfifo "$work/kim.in"
(cd "$work/kim" && exec "$CLI" --port "$RD_PORT" --nick kim shell <"$work/kim.in" \
	>"$RD_TMP/kim.log" 2>&1) &
kim=$!
exec 7>"$work/kim.in"
joined kim
rd_spawn "$CLI" --port "$RD_PORT" --timeout 20 --nick alice offer kim "$work/src/notes.txt" \
	"$work/src/photos"
offerer=$RD_LAST_PID
wait_for "$RD_TMP/kim.log" "accept? [y/N/s]"
echo s >&7
# three questions, in the offer's order (the folder's order on disk): all but a.jpg
for n in 1 2 3; do
	for ((i = 0; i < 200; i++)); do
		(($(grep -c '^take .*? \[y/N\]' "$RD_TMP/kim.log") >= n)) && break
		sleep 0.05
	done
	q=$(grep '^take .*? \[y/N\]' "$RD_TMP/kim.log" | sed -n "${n}p")
	[[ -n $q ]] || fail "question $n never came: $(cat "$RD_TMP/kim.log")"
	if [[ $q == *a.jpg* ]]; then echo n >&7; else echo y >&7; fi
done
wait_for "$RD_TMP/kim.log" "received photos/b.txt from alice"
wait "$offerer" || fail "the offer to kim's shell exited $?"
rd__forget "$offerer"
same "$work/src/notes.txt" "$work/kim/notes.txt"
same "$work/src/photos/b.txt" "$work/kim/photos/b.txt"
[[ ! -e $work/kim/photos/2026/a.jpg ]] || fail "a file kim declined arrived"
echo /quit >&7
exec 7>&-
wait "$kim" || fail "kim's shell exited $?"
echo "3b. the shell asked, and took 2 of 3 files one by one"

# ---- 4. resume from a .part, and a .part of other bytes -----------------------------------
mkdir -p "$work/erin"
head -c 1048576 "$work/src/report.bin" >"$work/erin/report.bin.part"
listener erin "$work/erin" --accept-all
run 0 rdc --nick alice offer erin "$work/src/report.bin"
contains "$OUT" "resuming at 1.0 MB"
contains "$OUT" "erin: 1 of 1 file saved and verified"
same "$work/src/report.bin" "$work/erin/report.bin"
rm "$work/erin/report.bin"
head -c 1048576 /dev/urandom >"$work/erin/report.bin.part"
run 7 rdc --nick alice offer erin "$work/src/report.bin"
contains "$OUT" "1 failed: report.bin (hash mismatch)"
[[ ! -e $work/erin/report.bin && ! -e $work/erin/report.bin.part ]] ||
	fail "a file that did not verify was kept"
run 0 rdc --nick alice offer erin "$work/src/report.bin"
same "$work/src/report.bin" "$work/erin/report.bin"
echo "4. resume from a .part; a wrong .part fails (exit 7) and is not kept"

# ---- 5. a name already there ---------------------------------------------------------------
run 0 rdc --nick alice offer erin "$work/src/notes.txt"
run 0 rdc --nick alice offer erin "$work/src/notes.txt"
same "$work/src/notes.txt" "$work/erin/notes (1).txt"
wait_for "$RD_TMP/erin.log" 'saved as "notes (1).txt"'
rd_stop_pid "$LISTENER"
echo "5. an existing name: saved as notes (1).txt"

# ---- 6. a room offer: two accept, one rejects ----------------------------------------------
listener frank "$work/frank" --accept-all
l1=$LISTENER
listener gina "$work/gina" --accept-all
l2=$LISTENER
listener hank "$work/hank" --reject-all
l3=$LISTENER
run 0 rdc --nick alice offer --everyone "$work/src/notes.txt"
contains "$OUT" "frank accepts 1 of 1 file"
contains "$OUT" "gina accepts 1 of 1 file"
contains "$OUT" "hank rejects"
contains "$OUT" "frank: 1 of 1 file saved"
contains "$OUT" "gina: 1 of 1 file saved"
same "$work/src/notes.txt" "$work/frank/notes.txt"
same "$work/src/notes.txt" "$work/gina/notes.txt"
[[ ! -e $work/hank/notes.txt ]] || fail "the rejecting member got the file"
rd_stop_pid "$l1" "$l2" "$l3"
echo "6. room offer: two accepted and received, one rejected"

# ---- 7. --accept-from ------------------------------------------------------------------------
listener ivan "$work/ivan" --accept-from alice
run 11 rdc --nick mallory offer ivan "$work/src/notes.txt"
contains "$OUT" "ivan rejects: not accepting offers from you"
run 0 rdc --nick alice offer ivan "$work/src/notes.txt"
same "$work/src/notes.txt" "$work/ivan/notes.txt"
echo "7. --accept-from: only alice's offer accepted"

# ---- 8. errors ------------------------------------------------------------------------------
run 5 rdc --nick alice offer nobody-here "$work/src/notes.txt"
run 2 rdc --nick alice offer alice "$work/src/notes.txt"
run 5 rdc --nick alice offer ivan "$work/src/missing.txt"
contains "$OUT" "missing.txt"
run 5 rdc --nick alice --room random offer --everyone "$work/src/notes.txt"
rd_stop_pid "$LISTENER"
# an unanswered offer, on a server whose offers expire after 1 s
rd_stop_server
rd_start_server --store "$RD_TMP/store2" --offer-timeout 1s
listener judy "$work/judy" # shows offers, answers none
run 11 rdc --nick alice offer judy "$work/src/notes.txt"
contains "$OUT" "judy did not answer in time"
contains "$OUT" "expired"
wait_for "$RD_TMP/judy.log" "alice offers 1 file"
rd_stop_pid "$LISTENER"
echo "8. errors: unknown user, oneself, missing path, empty room, expiry"

rd_stop_server
[[ $RD_STOP_STATUS == 0 ]] || fail "server did not shut down cleanly"
echo "test_offers: all passed"
