#!/usr/bin/env bash
# run-live-tests.sh - run the live tests (tests/live/test_*.sh) against the built programs.
#
#   BUILD=build GUI=1 scripts/run-live-tests.sh [NAME...]
#
# NAME selects tests (test_install, install or tests/live/test_install.sh); default all.
# Each test runs under `timeout 300` with BUILD (absolute) and GUI exported; it exits
# 0 = pass, 77 = skip (and prints why), anything else = fail. A test's output is kept in
# $BUILD/live-logs/NAME.log and shown when it fails (VERBOSE=1 streams it instead).
# Last line: "live: N passed, N failed, N skipped"; exit 1 if any test failed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$root/$BUILD
GUI=${GUI:-}
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
export BUILD GUI

tests=()
if (($# == 0)); then
	for t in tests/live/test_*.sh; do
		[[ -e $t ]] && tests+=("$t")
	done
else
	for name in "$@"; do
		name=${name##*/}
		name=${name%.sh}
		name=test_${name#test_}
		[[ -f tests/live/$name.sh ]] || {
			echo "run-live-tests: no such test: tests/live/$name.sh" >&2
			exit 2
		}
		tests+=("tests/live/$name.sh")
	done
fi

logdir=$BUILD/live-logs
mkdir -p "$logdir"

passed=0
failed=0
skipped=0
failures=()

for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	log=$logdir/$name.log
	start=$SECONDS
	rc=0
	if [[ ${VERBOSE:-0} == 1 ]]; then
		timeout -k 10 "$TEST_TIMEOUT" bash "$t" </dev/null 2>&1 | tee "$log" || rc=$?
	else
		timeout -k 10 "$TEST_TIMEOUT" bash "$t" </dev/null >"$log" 2>&1 || rc=$?
	fi
	took=$((SECONDS - start))
	case $rc in
	0)
		passed=$((passed + 1))
		echo "PASS  $name (${took}s)"
		;;
	77)
		skipped=$((skipped + 1))
		why=$(grep -m1 '^SKIP:' "$log" || tail -n 1 "$log" || true)
		echo "SKIP  $name: ${why:-no reason given}"
		;;
	*)
		failed=$((failed + 1))
		failures+=("$name")
		if ((rc == 124 || rc == 137)); then
			echo "FAIL  $name (timed out after ${TEST_TIMEOUT}s)"
		else
			echo "FAIL  $name (exit $rc, ${took}s)"
		fi
		if [[ ${VERBOSE:-0} != 1 ]]; then
			echo "---- output of $name ($log)"
			tail -n 100 "$log"
			echo "---- end of $name"
		fi
		;;
	esac
done

((failed == 0)) || echo "failed: ${failures[*]}"
echo "live: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
