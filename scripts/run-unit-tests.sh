#!/usr/bin/env bash
# run-unit-tests.sh - run cmocka unit test binaries and sum up their results.
#
#   scripts/run-unit-tests.sh BUILD_DIR TEST_BIN...
#
# Each binary runs under `timeout $UNIT_TIMEOUT` (default 300 s) with
# CMOCKA_MESSAGE_OUTPUT=stdout; its output is kept in BUILD_DIR/unit-logs/NAME.log and
# shown when it fails (VERBOSE=1 streams every binary's output instead).
# Test cases are counted from cmocka's "[  PASSED  ] N test(s)." and
# "[  FAILED  ] N test(s)" lines. A binary that crashes, times out, exits non-zero after
# reporting success (e.g. a sanitizer's leak report) or prints no summary counts as one
# more failed case; the cases it finished before a crash still count as passed.
# Last line: "unit: N passed, N failed"; exit 1 if anything failed.
set -euo pipefail

if (($# < 1)); then
	echo "usage: $0 BUILD_DIR TEST_BIN..." >&2
	exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

BUILD=$1
shift
[[ $BUILD == /* ]] || BUILD=$root/$BUILD
UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
export BUILD CMOCKA_MESSAGE_OUTPUT=stdout

logdir=$BUILD/unit-logs
mkdir -p "$logdir"

passed=0
failed=0
failures=()

# A unit test links the objects it tests (Makefile); it never compiles another program's
# .c into itself, where it would reach static functions and hide the real interface.
if inc=$(grep -ln '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*\.c"' tests/unit/*.c); then
	echo "FAIL  unit-sources (a unit test includes a .c file: $(echo $inc))"
	failed=$((failed + 1))
	failures+=(unit-sources)
fi

for bin in "$@"; do
	name=$(basename "$bin")
	log=$logdir/$name.log
	start=$SECONDS
	rc=0
	if [[ ! -x $bin ]]; then
		echo "FAIL  $name (no such executable: $bin)"
		failed=$((failed + 1))
		failures+=("$name")
		continue
	fi
	if [[ ${VERBOSE:-0} == 1 ]]; then
		timeout -k 10 "$UNIT_TIMEOUT" "$bin" </dev/null 2>&1 | tee "$log" || rc=$?
	else
		timeout -k 10 "$UNIT_TIMEOUT" "$bin" </dev/null >"$log" 2>&1 || rc=$?
	fi
	took=$((SECONDS - start))

	# cmocka's summary: "[  PASSED  ] 12 test(s)." and "[  FAILED  ] 1 test(s), listed below:"
	p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$log" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$log" | tail -n 1)
	why=""
	if [[ -z $p && -z $f ]]; then
		# No summary: it died mid-run. Count what finished, plus the crash.
		p=$(grep -c '^\[       OK \]' "$log" || true)
		f=$(grep -c '^\[  FAILED  \] test' "$log" || true)
		f=$((f + 1))
		if ((rc == 124 || rc == 137)); then
			why="timed out after ${UNIT_TIMEOUT}s"
		elif ((rc > 128)); then
			why="killed by signal $((rc - 128))"
		else
			why="no summary, exit $rc"
		fi
	else
		p=${p:-0}
		f=${f:-0}
		if ((rc != 0 && f == 0)); then
			f=1
			why="exit $rc after its tests passed"
		fi
	fi
	passed=$((passed + p))
	failed=$((failed + f))

	if ((f == 0)); then
		echo "PASS  $name ($p tests, ${took}s)"
	else
		failures+=("$name")
		echo "FAIL  $name ($p passed, $f failed${why:+, $why}, ${took}s)"
		if [[ ${VERBOSE:-0} != 1 ]]; then
			echo "---- output of $name ($log)"
			tail -n 100 "$log"
			echo "---- end of $name"
		fi
	fi
done

if (($# == 0)); then
	echo "run-unit-tests: no test binaries given" >&2
	failed=$((failed + 1))
fi
((${#failures[@]} == 0)) || echo "failed: ${failures[*]}"
echo "unit: $passed passed, $failed failed"
((failed == 0))
