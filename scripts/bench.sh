#!/usr/bin/env bash
# bench.sh - `make bench`: run every benchmark program built in $BUILD/bench/ and print what
# it reports. (Skeleton: benchmarks against a live server are added here as they land.)
#
#   BUILD=build scripts/bench.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$root/$BUILD
export BUILD

ran=0
failed=0
for b in "$BUILD"/bench/* "$root"/bench/*.sh; do
	[[ -f $b && -x $b ]] || continue
	echo "== ${b##*/}"
	ran=$((ran + 1))
	"$b" || { echo "bench: ${b##*/} exited with status $?" >&2; failed=$((failed + 1)); }
	echo
done

if ((ran == 0)); then
	echo "bench: no benchmarks built yet (bench/*.c builds into $BUILD/bench/)"
	exit 0
fi
echo "bench: ran $ran, $failed failed"
((failed == 0))
