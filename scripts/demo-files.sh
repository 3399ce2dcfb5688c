#!/usr/bin/env bash
# demo-files.sh - the file part of `make demo`: alice puts sample_files/ into #general,
# bob lists the room and gets everything back into a temporary folder, and the copies are
# checked against sample_files/SHA256SUMS.
#
#   BUILD=build scripts/demo-files.sh              starts (and stops) its own server
#   RD_PORT=PORT BUILD=build scripts/demo-files.sh uses a server already running there
#
# Everything runs on 127.0.0.1; temporary files are removed at the end; every process
# is stopped by PID. Exit 0 when every file came back verified.
set -euo pipefail
RD_TEST=demo_files
port=${RD_PORT:-}
# (run from the demo: its clients' key too, so that alice is the alice of the demo: a
# nickname belongs to the key that registered it first)
keys=${XDG_CONFIG_HOME:-}
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/../tests/live/lib.sh"
if [[ -n $port && -n $keys ]]; then export XDG_CONFIG_HOME=$keys; fi

CLI=$BUILD/roomdrop
SAMPLES=$RD_ROOT/sample_files
[[ -x $CLI ]] || fail "$CLI is not built"
[[ -f $SAMPLES/SHA256SUMS ]] || fail "$SAMPLES/SHA256SUMS is missing (scripts/gen-sample-files.sh)"

say() { printf '\n== %s\n' "$*"; }
show() { printf '$ roomdrop %s\n' "$*"; "$CLI" --port "$RD_PORT" --quiet "$@"; }

own=0
if [[ -z $port ]]; then
	say "starting a headless server on 127.0.0.1 (ephemeral port), store in a temporary folder"
	rd_start_server --store "$RD_TMP/store"
	own=1
	echo "server pid $RD_SERVER_PID on 127.0.0.1:$RD_PORT"
else
	RD_PORT=$port
fi
room=${DEMO_ROOM:-general}

say "carol listens in #$room and sees every file notice"
rd_spawn "$CLI" --port "$RD_PORT" --nick carol --room "$room" listen >"$RD_TMP/carol.log" 2>&1
listener=$RD_LAST_PID
sleep 0.5

say "alice puts every sample file into #$room"
files=()
for f in "$SAMPLES"/*; do
	[[ -f $f && ${f##*/} != SHA256SUMS ]] && files+=("$f")
done
show --nick alice --room "$room" --rename put "${files[@]}"

say "bob lists the room's folder"
show --nick bob --room "$room" ls

dl=$(rd_tmpdir)
say "bob gets them back into $dl"
names=()
for f in "${files[@]}"; do
	names+=("${f##*/}")
done
show --nick bob --room "$room" -o "$dl" get "${names[@]}"

# columns TEXT: the terminal columns TEXT takes. printf's %-24s pads by bytes, so a UTF-8
# name ("naïve café.txt") pushed its row's verdict to the left; wc -L measures display
# width in a UTF-8 locale (C.UTF-8 is built into glibc).
columns() { printf '%s\n' "$1" | LC_ALL=C.UTF-8 wc -L; }

say "checking bob's copies against sample_files/SHA256SUMS"
ok=0
bad=0
width=24
while IFS= read -r line; do
	w=$(columns "${line#*  }")
	((w < width)) || width=$((w + 1))
done <"$SAMPLES/SHA256SUMS"
while IFS= read -r line; do
	sum=${line%%  *}
	name=${line#*  }
	[[ -f $dl/$name ]] || continue
	pad=$((width - $(columns "$name")))
	if [[ $(sha256sum "$dl/$name" | cut -d' ' -f1) == "$sum" ]]; then
		printf '  %s%*s OK\n' "$name" "$pad" ""
		ok=$((ok + 1))
	else
		printf '  %s%*s MISMATCH\n' "$name" "$pad" ""
		bad=$((bad + 1))
	fi
done <"$SAMPLES/SHA256SUMS"
((bad == 0 && ok == ${#names[@]})) || fail "$ok verified, $bad mismatched, ${#names[@]} expected"
echo "all $ok files verified"

say "bob streams hello.txt to standard output (get -o -), straight into sha256sum"
printf '$ roomdrop --nick bob get hello.txt -o - | sha256sum\n'
streamed=$("$CLI" --port "$RD_PORT" --quiet --nick bob --room "$room" -o - get hello.txt |
	sha256sum | cut -d' ' -f1)
echo "$streamed  (sample_files/SHA256SUMS says $(grep '  hello.txt$' "$SAMPLES/SHA256SUMS" | cut -c1-64))"
grep -q "^$streamed  hello.txt$" "$SAMPLES/SHA256SUMS" || fail "get -o - changed hello.txt"

say "bob removes hello.txt; carol's notices"
show --nick bob --room "$room" rm hello.txt || true
sleep 0.3
rd_stop_pid "$listener"
sed 's/^/  /' "$RD_TMP/carol.log"

if ((own)); then
	say "stopping the server (pid $RD_SERVER_PID)"
	rd_stop_server
	[[ $RD_STOP_STATUS == 0 ]] || fail "server did not shut down cleanly"
fi
echo
echo "demo-files: done"
