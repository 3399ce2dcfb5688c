#!/usr/bin/env bash
# run-fuzz.sh BIN... - run libFuzzer binaries on a scratch copy of the seed corpus.
#
# Each binary runs for $FUZZ_SECONDS (default 60) with -max_len=65536 -timeout=10 on a
# fresh work corpus under build/fuzz/ (a copy of tests/fuzz/seeds, so new inputs found
# never touch the committed seeds). Crash reproducers go to build/fuzz/artifacts/ and
# the log to build/fuzz/NAME.log. Exits non-zero if any binary found a crash, leak or
# timeout. Last line: "fuzz: P passed, F failed".
set -uo pipefail

prog=${0##*/}
secs=${FUZZ_SECONDS:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
seeds=$root/tests/fuzz/seeds
base=$root/build/fuzz

if (($# == 0)); then
	echo "usage: $prog FUZZ_BINARY..." >&2
	exit 2
fi
if [[ ! $secs =~ ^[0-9]+$ ]]; then
	echo "$prog: FUZZ_SECONDS must be a number of seconds, not '$secs'" >&2
	exit 2
fi
mkdir -p "$base/artifacts"

passed=0 failed=0
for bin in "$@"; do
	name=${bin##*/}
	if [[ ! -x $bin ]]; then
		echo "$prog: $bin: no such executable" >&2
		failed=$((failed + 1))
		continue
	fi
	work=$(mktemp -d "$base/corpus-$name.XXXXXX")
	if [[ -d $seeds ]] && compgen -G "$seeds/*" >/dev/null; then
		cp "$seeds"/* "$work"/
	fi
	log=$base/$name.log
	echo "$prog: $name for ${secs}s on $(find "$work" -type f | wc -l) seeds (log: $log)"
	if "$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$base/artifacts/$name-" "$work" >"$log" 2>&1; then
		passed=$((passed + 1))
		grep -E '^stat::number_of_executed_units|^Done ' "$log" | sed "s/^/$prog: $name: /"
	else
		failed=$((failed + 1))
		echo "$prog: $name FAILED; end of its log:" >&2
		tail -n 40 "$log" >&2
		find "$base/artifacts" -name "$name-*" | sed "s/^/$prog: reproducer: /" >&2
	fi
	rm -rf "$work"
done

echo "fuzz: $passed passed, $failed failed"
((failed == 0))
