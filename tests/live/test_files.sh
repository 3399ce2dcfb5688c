#!/usr/bin/env bash
# test_files.sh - the file application end to end, against the real server on 127.0.0.1:
# round trips of sample_files/, ls/rm and the notices a listener sees, conflicts (refuse,
# --rename, --overwrite, a race of two uploads at commit), get's local refusal and resume,
# hostile names and a symlink planted in a room folder, corrupt uploads, a client and a
# server killed mid-put (then resumed), large uploads written around the page cache (odd
# chunks, corrupt, paused, cut off and resumed), streamed puts (PUT_SEAL: right, wrong or
# missing SHA-256, the client's own, resumed, and over another file's prefix), stale
# staging removal, size/quota/space limits.
# Faults the real client never makes come from tests/helpers/rawput.c.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"
[[ -x $BUILD/tests/rawput ]] || skip "$BUILD/tests/rawput is not built (make tests)"

CLI=$BUILD/roomdrop
RAW=$BUILD/tests/rawput
SAMPLES=$RD_ROOT/sample_files
CHUNK=262144

# ---- helpers -------------------------------------------------------------------------

rdc() { "$CLI" --port "$RD_PORT" --timeout 20 "$@"; }
raw() { "$RAW" --port "$RD_PORT" "$@"; }
hexof() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }




# wait_staged DIR BYTES: until a staging file in DIR holds exactly BYTES.
wait_staged()
{
	local i f
	for ((i = 0; i < 200; i++)); do
		for f in "$1"/*; do
			[[ -f $f && $(stat -c %s "$f") == "$2" ]] && return 0
		done
		sleep 0.05
	done
	fail "no staging file of $2 bytes in $1: $(ls -l "$1")"
}

staging_files() { find "$1/.staging" -type f | wc -l; }

# a file of N KiB of random bytes
mkrand() { head -c "$(($2 * 1024))" /dev/urandom >"$1"; }

kill9() { kill -KILL "$1" 2>/dev/null || true; rd_stop_pid "$1"; }

# ---- server and listener -------------------------------------------------------------

store=$RD_TMP/store
rd_start_server --store "$store"
room=$store/general
work=$(rd_tmpdir)

rd_spawn "$CLI" --port "$RD_PORT" --nick watcher listen >"$RD_TMP/listen.log" 2>&1
listener=$RD_LAST_PID
wait_for "$RD_SERVER_LOG" "watcher (127.0.0.1"
wait_for "$RD_SERVER_LOG" "joined general"

# ---- 1. round trip of every sample file, the empty one included ------------------------

n=0
for f in "$SAMPLES"/*; do
	[[ -f $f ]] || continue
	run 0 rdc --nick alice put "$f"
	contains "$OUT" "verified"
	n=$((n + 1))
done
((n >= 2)) || fail "sample_files/ has only $n files"
[[ -f $room/empty.txt && ! -s $room/empty.txt ]] || fail "empty.txt not stored empty"
[[ $(find "$room" -type f | wc -l) == "$n" ]] || fail "room folder holds $(ls "$room") (want $n files)"
[[ $(staging_files "$store") == 0 ]] || fail "staging not empty after clean puts"

out=$(rd_tmpdir)
for f in "$SAMPLES"/*; do
	[[ -f $f ]] || continue
	name=$(basename "$f")
	run 0 rdc --nick bob -o "$out" get "$name"
	cmp "$f" "$out/$name" || fail "round trip changed $name"
	[[ ! -e $out/$name.part ]] || fail "$name.part left behind"
done

# several files on one connection (one download after the other)
out2=$(rd_tmpdir)
names=()
for f in "$SAMPLES"/*; do
	[[ -f $f ]] && names+=("$(basename "$f")")
done
run 0 rdc --nick bob -o "$out2" get "${names[@]}"
for name in "${names[@]}"; do
	cmp "$SAMPLES/$name" "$out2/$name" || fail "multi-file get changed $name"
done

# a file that does not end on a block boundary: written around the page cache, then its
# tail through it
mkrand "$work/odd.bin" 3001
run 0 rdc --nick alice put "$work/odd.bin"
run 0 rdc --nick bob -o "$out2" get odd.bin
cmp "$work/odd.bin" "$out2/odd.bin" || fail "get of odd.bin changed it"

# get -o -: the bytes on standard output, the report on stderr; appended where stdout is
for name in "${names[@]}" odd.bin; do
	src=$SAMPLES/$name
	[[ $name == odd.bin ]] && src=$work/odd.bin
	rdc --nick bob -o - get "$name" >"$out2/stdout-$name" 2>"$RD_TMP/err" ||
		fail "get -o - $name: exit $? ($(<"$RD_TMP/err"))"
	cmp "$src" "$out2/stdout-$name" || fail "get -o - changed $name"
	contains "$(<"$RD_TMP/err")" "verified"
done
printf 'head:' >"$out2/appended"
rdc --nick bob -q -o - get hello.txt >>"$out2/appended" 2>"$RD_TMP/err" || fail "get -o - >> failed"
cmp <(printf 'head:'; cat "$SAMPLES/hello.txt") "$out2/appended" ||
	fail "get -o - did not append where standard output stood"
rc=0
rdc --nick bob -o - get no-such-file >"$out2/none" 2>"$RD_TMP/err" || rc=$?
[[ $rc == 5 ]] || fail "get -o - of a missing file: exit $rc, want 5"
[[ ! -s $out2/none ]] || fail "get -o - of a missing file wrote to stdout"

# ls: every name with its uploader
run 0 rdc --nick bob ls
for f in "$SAMPLES"/*; do
	[[ -f $f ]] || continue
	contains "$OUT" "$(basename "$f")"
done
contains "$OUT" "alice"
contains "$OUT" "$(sha256sum "$SAMPLES/hello.txt" | cut -c1-12)"

# ---- 2. conflicts --------------------------------------------------------------------

run 6 rdc --nick alice put "$SAMPLES/hello.txt"
contains "$OUT" "already exists"
run 0 rdc --nick alice --rename put "$SAMPLES/hello.txt"
contains "$OUT" 'stored as "hello (1).txt"'
cmp "$SAMPLES/hello.txt" "$room/hello (1).txt" || fail "renamed copy differs"
printf 'new content\n' >"$work/hello.txt"
run 0 rdc --nick alice --overwrite put "$work/hello.txt"
cmp "$work/hello.txt" "$room/hello.txt" || fail "overwrite did not replace"

# get refuses to replace a local file unless --overwrite
printf 'mine\n' >"$out/hello.txt"
run 6 rdc --nick bob -o "$out" get hello.txt
[[ $(<"$out/hello.txt") == mine ]] || fail "get replaced a local file without --overwrite"
run 0 rdc --nick bob -o "$out" --overwrite get hello.txt
# the server's answer comes before the local conflict: a name the room does not have is
# "no file" (exit 5) even when a local file has that name
printf 'mine\n' >"$out/only-here.txt"
run 5 rdc --nick bob -o "$out" get only-here.txt
contains "$OUT" "no file only-here.txt"
[[ $(<"$out/only-here.txt") == mine && ! -e $out/only-here.txt.part ]] ||
	fail "get of a missing remote file touched the local one"
# a conflict is still a conflict, and the next name on that connection is answered
run 6 rdc --nick bob -o "$out" get hello.txt only-here.txt
contains "$OUT" "hello.txt already exists"
contains "$OUT" "no file only-here.txt"
cmp "$work/hello.txt" "$out/hello.txt" || fail "get --overwrite did not replace"

# rm, and a second rm of the same name
run 0 rdc --nick bob rm "hello (1).txt"
[[ ! -e "$room/hello (1).txt" ]] || fail "rm left the file"
run 5 rdc --nick bob rm "hello (1).txt"
run 5 rdc --nick bob -o "$out" get "no such file"
[[ ! -e "$out/no such file.part" ]] || fail "a failed get left an empty .part behind"

# the listener saw adds, the replace and the removal
wait_for "$RD_TMP/listen.log" "* alice added hello.txt (79 B)"
wait_for "$RD_TMP/listen.log" "* alice added empty.txt (0 B)"
wait_for "$RD_TMP/listen.log" "* alice replaced hello.txt (12 B)"
wait_for "$RD_TMP/listen.log" "* bob removed hello (1).txt"

# ---- 3. hostile names: refused, nothing written anywhere -----------------------------

snapshot() { find "$RD_TMP" -path "$RD_TMP/out" -prune -o -print | sort; }
before=$(snapshot)
passwd_sum=$(sha256sum /etc/passwd)
long=$(printf 'A%.0s' $(seq 1 10000))
for name in "../x" "/etc/passwd" "a/b" "a\\b" $'a\nb' $'\e[31mred' "$long" $'\xff\xfe.txt' \
	"." ".." "" " lead" "trail " $'nul\x01'; do
	for cmd in name-put name-get name-rm; do
		run 0 raw --nick mallory "$cmd" "$(hexof "$name")"
		[[ $OUT == "code 500" ]] || fail "$cmd of a hostile name ($(printf %q "${name:0:40}")) got: $OUT"
	done
done
[[ $(snapshot) == "$before" ]] || fail "hostile names changed files: $(diff <(echo "$before") <(snapshot))"
[[ $(sha256sum /etc/passwd) == "$passwd_sum" ]] || fail "/etc/passwd changed"

# a symlink planted in the room folder is never followed, listed or deleted through
ln -s /etc/passwd "$room/evil"
ln -s "$RD_TMP" "$room/evildir"
run 5 rdc --nick mallory -o "$work" get evil
run 5 rdc --nick mallory rm evil
run 5 rdc --nick mallory get evildir
run 0 rdc --nick mallory ls
[[ $OUT != *evil* ]] || fail "ls listed a symlink: $OUT"
[[ -L $room/evil && $(sha256sum /etc/passwd) == "$passwd_sum" ]] || fail "symlink followed"
rm -f "$room/evil" "$room/evildir"

# ---- 4. corrupt uploads: refused, nothing committed ----------------------------------

mkrand "$work/c.bin" 1024
run 1 raw --nick mallory put "$work/c.bin" --corrupt-chunk 1
contains "$OUT" "error 506"
[[ ! -e $room/c.bin ]] || fail "corrupt upload committed"
run 1 raw --nick mallory put "$work/c.bin" --lie-sha
contains "$OUT" "error 506"
run 1 raw --nick mallory put "$work/c.bin" --short
contains "$OUT" "error 507"
[[ ! -e $room/c.bin ]] || fail "mismatched upload committed"
[[ $(staging_files "$store") == 0 ]] || fail "mismatch left staging data: $(find "$store/.staging" -type f)"
# corrupt zlib breaks the framing: the core answers 106 and closes the connection
run 3 raw --nick mallory put "$work/c.bin" --bad-zlib 1
wait_for "$RD_SERVER_LOG" "bad compressed data"
[[ ! -e $room/c.bin ]] || fail "upload with corrupt zlib committed"
# a chunk at the wrong offset ends the upload; what came before stays staged and the
# real client resumes from it
mkrand "$work/d.bin" 1024
run 1 raw --nick mallory put "$work/d.bin" --bad-offset 2
contains "$OUT" "error 508"
[[ ! -e $room/d.bin ]] || fail "aborted upload committed"
run 0 rdc --nick alice put "$work/d.bin"
contains "$OUT" "resumed at 524.3 KB"
cmp "$work/d.bin" "$room/d.bin" || fail "resumed upload differs"
# the staging data left by the corrupt-zlib connection (a verified prefix) is resumed too
run 0 rdc --nick alice put "$work/c.bin"
cmp "$work/c.bin" "$room/c.bin" || fail "upload after a broken one differs"

# resumed_part OUT: the put resumed from a non-zero offset and sent less than the file
# ("resumed at 2.6 MB (5.8 MB sent)"); how much was staged before a kill depends on timing.
resumed_part()
{
	[[ $1 =~ resumed\ at\ ([0-9.]+)\ (KB|MB) ]] || fail "no resume in: $1"
	[[ ${BASH_REMATCH[1]} != 0 && ${BASH_REMATCH[1]} != 0.0 ]] || fail "resumed at 0: $1"
	[[ $1 =~ \(([0-9.]+)\ MB\ sent\) ]] || fail "no byte count in: $1"
	awk -v s="${BASH_REMATCH[1]}" 'BEGIN { exit !(s < 8.3) }' ||
		fail "resumed put sent the whole file again: $1"
}

# ---- 5. client killed mid-put: no partial file, the next put resumes ------------------

mkrand "$work/big.bin" 8192
rd_spawn "$RAW" --port "$RD_PORT" --nick ghost put "$work/big.bin" --stop-after 10 >"$RD_TMP/raw1.log" 2>&1
rawpid=$RD_LAST_PID
wait_for "$RD_TMP/raw1.log" "stopped after 10 chunks"
wait_staged "$store/.staging/general" $((10 * CHUNK))
kill9 "$rawpid"
[[ ! -e $room/big.bin ]] || fail "partial upload visible after the client was killed"
run 0 rdc --nick alice put "$work/big.bin"
resumed_part "$OUT"
cmp "$work/big.bin" "$room/big.bin" || fail "resumed upload differs"

# ---- 6. get resume from a .part, and a .part from another file -----------------------

dl=$(rd_tmpdir)
head -c $((3 * 1024 * 1024)) "$work/big.bin" >"$dl/big.bin.part"
run 0 rdc --nick bob -o "$dl" get big.bin
contains "$OUT" "resumed at 3.1 MB"
cmp "$work/big.bin" "$dl/big.bin" || fail "resumed download differs"
head -c 100000 /dev/zero >"$dl/c.bin.part"
run 0 rdc --nick bob -o "$dl" get c.bin
contains "$OUT" "did not match"
cmp "$work/c.bin" "$dl/c.bin" || fail "download after a bad .part differs"

# ---- 7. two uploads of the same name released at the same moment: one wins ----------

mkdir -p "$work/a" "$work/b"
mkrand "$work/a/same.bin" 3072
mkrand "$work/b/same.bin" 3072
rd_spawn "$RAW" --port "$RD_PORT" --nick alice put "$work/a/same.bin" --wait-file "$work/go" >"$RD_TMP/ra.log" 2>&1
pa=$RD_LAST_PID
rd_spawn "$RAW" --port "$RD_PORT" --nick carol put "$work/b/same.bin" --wait-file "$work/go" >"$RD_TMP/rb.log" 2>&1
pb=$RD_LAST_PID
wait_for "$RD_TMP/ra.log" "streamed"
wait_for "$RD_TMP/rb.log" "streamed"
touch "$work/go"
ra=0 rb=0
wait "$pa" || ra=$?
wait "$pb" || rb=$?
rd__forget "$pa"
rd__forget "$pb"
if ((ra == 0 && rb == 1)); then
	grep -q "error 501" "$RD_TMP/rb.log" || fail "loser did not get 501: $(cat "$RD_TMP/rb.log")"
	cmp "$work/a/same.bin" "$room/same.bin" || fail "winner's file not stored"
elif ((ra == 1 && rb == 0)); then
	grep -q "error 501" "$RD_TMP/ra.log" || fail "loser did not get 501: $(cat "$RD_TMP/ra.log")"
	cmp "$work/b/same.bin" "$room/same.bin" || fail "winner's file not stored"
else
	fail "race: exits $ra and $rb: $(cat "$RD_TMP/ra.log" "$RD_TMP/rb.log")"
fi

# a reader during a put sees the old file whole: a get started before an overwrite
# finishes with the old content
mkrand "$work/v1.bin" 16384
mkrand "$work/v2.bin" 16384
cp "$work/v1.bin" "$work/v.bin"
run 0 rdc --nick alice put "$work/v.bin"
rd_spawn "$CLI" --port "$RD_PORT" --timeout 20 --nick bob -o "$dl" get v.bin >"$RD_TMP/getv.log" 2>&1
pg=$RD_LAST_PID
cp "$work/v2.bin" "$work/v.bin"
run 0 rdc --nick alice --overwrite put "$work/v.bin"
wait "$pg" || fail "get during an overwrite failed: $(cat "$RD_TMP/getv.log")"
rd__forget "$pg"
cmp -s "$dl/v.bin" "$work/v1.bin" || cmp -s "$dl/v.bin" "$work/v2.bin" ||
	fail "get during an overwrite gave neither version whole"
cmp "$room/v.bin" "$work/v2.bin" || fail "overwrite lost"

# ---- 8. server killed mid-put, restarted on the same store: consistent, resumes -------

mkrand "$work/big2.bin" 8192
rd_spawn "$RAW" --port "$RD_PORT" --nick ghost put "$work/big2.bin" --stop-after 12 >"$RD_TMP/raw2.log" 2>&1
rawpid=$RD_LAST_PID
wait_for "$RD_TMP/raw2.log" "stopped after 12 chunks"
wait_staged "$store/.staging/general" $((12 * CHUNK))
kill9 "$RD_SERVER_PID"
kill9 "$rawpid"
kill9 "$listener"
[[ ! -e $room/big2.bin ]] || fail "partial upload visible after the server was killed"
rd_start_server --store "$store"
run 0 rdc --nick bob ls
contains "$OUT" "big.bin"
[[ $OUT != *big2.bin* ]] || fail "ls shows a partial upload"
run 0 rdc --nick alice put "$work/big2.bin"
resumed_part "$OUT"
cmp "$work/big2.bin" "$room/big2.bin" || fail "upload resumed after a server restart differs"
[[ -z $(find "$room" -name '*.part' -o -name '.tmp*') ]] || fail "temporary files in the room folder"

# ---- 8b. large uploads (>= 8 MiB) write around the page cache in 1 MiB blocks ------------
# (server/files.c, direct mode): chunks of an odd size (100,003 bytes) straddle the blocks;
# the stored file is exact; a corrupt chunk is caught by the in-memory hash; a pause leaves
# the whole 4 KiB blocks received on disk, and an upload cut off keeps every byte received
# (its unaligned tail too) for the resume
mkrand "$work/big3.bin" 12289
run 0 raw --nick odd put "$work/big3.bin" --chunk 100003
contains "$OUT" "done big3.bin"
cmp "$work/big3.bin" "$room/big3.bin" || fail "a large upload in odd chunks differs"
run 1 raw --nick odd put "$work/big3.bin" --name big3c.bin --chunk 100003 --corrupt-chunk 90
contains "$OUT" "error 506"
[[ ! -e $room/big3c.bin ]] || fail "a corrupt large upload was committed"
mkrand "$work/big4.bin" 9000
rd_spawn "$RAW" --port "$RD_PORT" --nick ghost put "$work/big4.bin" --chunk 100003 \
	--stop-after 37 >"$RD_TMP/raw4.log" 2>&1
rawpid=$RD_LAST_PID
wait_for "$RD_TMP/raw4.log" "stopped after 37 chunks"
wait_staged "$store/.staging/general" $((37 * 100003 / 4096 * 4096))
kill9 "$rawpid"
wait_staged "$store/.staging/general" $((37 * 100003))
run 0 rdc --nick alice put "$work/big4.bin"
contains "$OUT" "resumed at 3.7 MB"
cmp "$work/big4.bin" "$room/big4.bin" || fail "a large upload resumed from an unaligned offset differs"

# ---- 8c. streamed puts: no SHA-256 in PUT, PUT_SEAL brings it (PROTOCOL.md section 17) ----
# put_as NICK FILE: the real client's put as NICK, retried while a killed connection still
# holds NICK (exit 4) until the server has seen it close
put_as()
{
	local i rc
	for ((i = 0; i < 50; i++)); do
		rc=0
		rdc --nick "$1" put "$2" >"$RD_TMP/out" 2>&1 || rc=$?
		OUT=$(<"$RD_TMP/out")
		((rc == 4)) || break
		sleep 0.1
	done
	[[ $rc == 0 ]] || fail "put as $1 of $2: exit $rc: $OUT"
}
mkrand "$work/s1.bin" 3000
run 0 raw --nick st put "$work/s1.bin" --stream --chunk 100003
contains "$OUT" "done s1.bin"
cmp "$work/s1.bin" "$room/s1.bin" || fail "a streamed upload differs"
run 1 raw --nick st put "$work/s1.bin" --name s1-lie.bin --stream --lie-sha
contains "$OUT" "error 506"
run 1 raw --nick st put "$work/s1.bin" --name s1-end.bin --stream --plain-end
contains "$OUT" "error 506"
contains "$OUT" "ends with PUT_SEAL"
run 0 raw --nick st put "$work/s1.bin" --name s1-seal.bin --seal
contains "$OUT" "done s1-seal.bin"
run 1 raw --nick st put "$work/s1.bin" --name s1-seal-lie.bin --seal-lie
contains "$OUT" "error 506"
for n in s1-lie.bin s1-end.bin s1-seal-lie.bin; do
	[[ ! -e $room/$n ]] || fail "$n was committed with a wrong or missing SHA-256"
done
# the real client streams a file of 16 MiB or more it has not hashed yet, and declares it
# the next time (the digest it computed while sending is cached)
mkrand "$work/s2.bin" 16384
run 0 rdc --nick carol put "$work/s2.bin"
contains "$OUT" "(hashed while sending)"
cmp "$work/s2.bin" "$room/s2.bin" || fail "the client's streamed upload differs"
run 0 rdc --nick carol put --overwrite "$work/s2.bin"
[[ $OUT != *"hashed while sending"* ]] || fail "the second put of an unchanged file streamed again: $OUT"
# a streamed upload cut off resumes under the same room, nickname, name and size
# cut_streamed NICK FILE: a streamed put of FILE by NICK, killed after 5 chunks are staged
cut_streamed()
{
	rd_spawn "$RAW" --port "$RD_PORT" --nick "$1" put "$2" --stream --stop-after 5 \
		>"$RD_TMP/cut-$1.log" 2>&1
	local pid=$RD_LAST_PID
	wait_for "$RD_TMP/cut-$1.log" "stopped after 5 chunks"
	wait_staged "$store/.staging/general" $((5 * CHUNK))
	kill9 "$pid"
}
mkrand "$work/s3.bin" 16500
cut_streamed dave "$work/s3.bin"
put_as dave "$work/s3.bin"
contains "$OUT" "resumed at 1.3 MB"
contains "$OUT" "(hashed while sending)"
cmp "$work/s3.bin" "$room/s3.bin" || fail "a resumed streamed upload differs"
# ...and a staged prefix that is not this file's is caught by PUT_SEAL and sent whole again
mkrand "$work/s4.bin" 16500
cut_streamed erin "$work/s4.bin"
mkdir -p "$work/other"
mkrand "$work/other/s4.bin" 16500
put_as erin "$work/other/s4.bin"
contains "$OUT" "did not match; sending the whole file again"
cmp "$work/other/s4.bin" "$room/s4.bin" || fail "the file sent whole again differs"
rd_stop_server
[[ $RD_STOP_STATUS == 0 ]] || fail "server did not stop cleanly ($RD_STOP_STATUS)"

# ---- 9. stale staging data is removed after --staging-ttl ----------------------------

store2=$RD_TMP/store2
rd_start_server --store "$store2" --staging-ttl 1s
rd_spawn "$RAW" --port "$RD_PORT" --nick ghost put "$work/big.bin" --stop-after 2 >"$RD_TMP/raw3.log" 2>&1
rawpid=$RD_LAST_PID
wait_for "$RD_TMP/raw3.log" "stopped after 2 chunks"
wait_staged "$store2/.staging/general" $((2 * CHUNK))
kill9 "$rawpid"
sleep 2.2
run 0 rdc --nick alice put "$SAMPLES/hello.txt"
[[ $(staging_files "$store2") == 0 ]] || fail "stale staging data kept: $(find "$store2/.staging" -type f)"
wait_for "$RD_SERVER_LOG" "stale staging file"
run 0 rdc --nick alice put "$work/big.bin"
[[ $OUT != *resumed* ]] || fail "resumed from staging data that should be gone"
rd_stop_server

# ---- 10. limits: file size, room quota, free space -----------------------------------

rd_start_server --store "$RD_TMP/store3" --max-file-size 100K --room-quota 200K
mkrand "$work/k64.bin" 64
mkrand "$work/k150.bin" 150
run 0 rdc --nick alice put "$work/k64.bin"
run 10 rdc --nick alice put "$SAMPLES/server.log"
contains "$OUT" "too big"
mkrand "$work/k99.bin" 99
run 0 rdc --nick alice put "$work/k99.bin"
mkrand "$work/k40.bin" 40
run 10 rdc --nick alice put "$work/k40.bin"
contains "$OUT" "quota"
# replacing a file counts only the difference
run 0 rdc --nick alice --overwrite put "$work/k64.bin"
[[ ! -e $RD_TMP/store3/general/k40.bin ]] || fail "over-quota upload stored"
rd_stop_server

rd_start_server --store "$RD_TMP/store4" --min-free 1000T
run 10 rdc --nick alice put "$SAMPLES/hello.txt"
contains "$OUT" "space"
rd_stop_server

pass "round trips, conflicts, hostile names, corrupt and killed uploads, resume, limits"
