#!/usr/bin/env bash
# test_deps.sh - scripts/install-deps.sh probes each external command by the exact name a
# test, the demo or a benchmark runs, and tells an impostor from the real program: on a
# PATH where `convert` is another program and ImageMagick's `compare` is absent, --check
# must report imagemagick as missing (and say what it is for) and exit 1; on the real PATH
# with everything installed it must exit 0.
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

deps=$RD_ROOT/scripts/install-deps.sh

# A PATH made of links to every program on this one, except ImageMagick's, plus an
# impostor named convert (as some images ship a stand-in of that name).
bin=$RD_TMP/bin
mkdir -p "$bin"
IFS=: read -r -a dirs <<<"$PATH"
for d in "${dirs[@]}"; do
	[[ -d $d ]] || continue
	for f in "$d"/*; do
		n=${f##*/}
		case $n in convert | compare | magick | convert-im6* | compare-im6* | magick-im6*) continue ;; esac
		[[ -x $f && ! -e $bin/$n ]] && ln -s "$f" "$bin/$n"
	done
done
printf '#!/bin/sh\necho "convert: not the image tool"\n' >"$bin/convert"
chmod +x "$bin/convert"

rc=0
PATH=$bin "$deps" --check >"$RD_TMP/fake.out" 2>&1 || rc=$?
cat "$RD_TMP/fake.out"
((rc == 1)) || fail "--check exited $rc with an impostor convert and no compare (want 1)"
grep -Eq '^MISSING +convert +\(imagemagick\) +test_gui' "$RD_TMP/fake.out" ||
	fail "the impostor convert was taken for ImageMagick"
grep -Eq '^MISSING +compare +\(imagemagick\)' "$RD_TMP/fake.out" || fail "a missing compare was not reported"
grep -q 'missing: .*imagemagick' "$RD_TMP/fake.out" || fail "the summary does not name imagemagick"

# On this machine everything is installed (make check ran install-deps.sh first).
"$deps" --check >"$RD_TMP/real.out" 2>&1 || { cat "$RD_TMP/real.out"; fail "--check fails on the real PATH"; }
grep -q '^MISSING' "$RD_TMP/real.out" && fail "a probe failed on the real PATH"
pass
