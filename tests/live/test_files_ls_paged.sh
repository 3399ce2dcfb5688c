#!/usr/bin/env bash
# test_files_ls_paged.sh - a room listing is complete however many files the room holds
# (PROTOCOL.md LIST / FILE_LIST and section 19.21: the listing comes in pages, LIST after
# the last name received until FILE_LIST says no more follow). 4,100 files with names of
# about 240 bytes do not fit one frame; `ls` must list every one, say "4100 files", exit
# 0, and show each name whole so that it can be pasted back into `get`. Then the pages as
# PROTOCOL.md states them, through rawput list-raw: an empty LIST payload is the first
# page, `after` need not exist, after the last name comes an empty page with more = 0.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rd_need_server
[[ -x $BUILD/roomdrop ]] || skip "$BUILD/roomdrop is not built yet"

CLI=$BUILD/roomdrop
N=4100
rdc() { "$CLI" --port "$RD_PORT" --timeout 60 --nick lister "$@"; }

# the first listing hashes every file placed by hand and writes its record (with fsync):
# on a tmpfs when one can be mounted, else on the scratch disk (slower, same result)
store=$RD_TMP/store
mkdir -p "$store"
if mount -t tmpfs -o size=256m,mode=0755 roomdrop-test "$store" 2>/dev/null; then
	rd_on_exit 'for p in "${RD_PIDS[@]}"; do rd_stop_pid "$p"; done; umount "$store" 2>/dev/null || umount -l "$store"'
fi
mkdir -p "$store/general"
# files placed by hand (the server hashes them on the first listing); each name is 240
# bytes, unique in its first characters, some with UTF-8 and spaces
pad=$(printf 'x%.0s' $(seq 1 220))
(
	cd "$store/general"
	for ((i = 0; i < N; i++)); do
		printf -v name 'f%05d %s é.txt' "$i" "$pad"
		printf '%d\n' "$i" >"$name"
	done
	: >"short.txt"
)
want=$((N + 1))
rd_start_server --store "$store"

"$CLI" --port "$RD_PORT" --timeout 60 --nick lister ls >"$RD_TMP/ls.out" 2>"$RD_TMP/ls.err" ||
	fail "ls exited $?: $(cat "$RD_TMP/ls.err")"
tail -n 1 "$RD_TMP/ls.out" | grep -qx "$want files in general" ||
	fail "ls summary: $(tail -n 1 "$RD_TMP/ls.out") (want $want files)"
# every name, whole, exactly once (the table: header, one line per file, summary)
listed=$(sed '1d;$d' "$RD_TMP/ls.out" | wc -l)
((listed == want)) || fail "ls printed $listed file lines, want $want"
for i in 0 1 2999 3000 3500 $((N - 1)); do
	name=$(printf 'f%05d %s é.txt' "$i" "$pad")
	[[ $(grep -cF -- "$name  " "$RD_TMP/ls.out") == 1 ]] || fail "ls does not show '$name' whole, once"
done
grep -q '^short.txt ' "$RD_TMP/ls.out" || fail "ls lost short.txt"
[[ $(sed '1d;$d' "$RD_TMP/ls.out" | cut -c1-6 | sort | uniq -d) == "" ]] || fail "ls listed a name twice"

# a name taken from the listing works in get
line=$(grep -F "f03999 " "$RD_TMP/ls.out")
name=${line%%.txt*}.txt
dl=$(rd_tmpdir)
rdc -o "$dl" get "$name" >"$RD_TMP/get.out" 2>&1 || fail "get of a name pasted from ls failed: $(cat "$RD_TMP/get.out")"
[[ $(<"$dl/$name") == 3999 ]] || fail "got the wrong file for $name"

# more than one page went by (the server's log does not say; the frame limit does: the
# listing is about 1.1 MB of names alone)
total=$(sed '1d;$d' "$RD_TMP/ls.out" | wc -c)
((total > 1048576)) || fail "the listing is only $total bytes: not enough to need pages"
# the pages as the protocol states them (rawput sends LIST with a payload given in hex)
if [[ -x $BUILD/tests/rawput ]]; then
	liststr() { printf '%04x' "${#1}"; printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
	rawlist() { "$BUILD/tests/rawput" --port "$RD_PORT" --nick raw list-raw "$1"; }
	# an empty payload is the first page; it has more after it
	page=$(rawlist "")
	[[ $page =~ ^count\ ([0-9]+)\ more\ 1\ last\ f ]] || fail "LIST with no payload: $page"
	first=${BASH_REMATCH[1]}
	page=$(rawlist "$(liststr "")")
	[[ $page == "count $first more 1 "* ]] || fail "LIST(after \"\") differs from an empty LIST: $page"
	# after a name that does not exist: what sorts after it, here the last page
	page=$(rawlist "$(liststr "f03999 zzz")")
	[[ $page == "count 101 more 0 last short.txt" ]] || fail "LIST after 'f03999 zzz': $page"
	# after the last name: an empty page, no more
	page=$(rawlist "$(liststr "short.txt")")
	[[ $page == "count 0 more 0 last " ]] || fail "LIST after the last name: $page"
fi
pass "ls listed all $want files ($total bytes) in pages"
