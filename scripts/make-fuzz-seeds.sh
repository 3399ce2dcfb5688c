#!/usr/bin/env bash
# make-fuzz-seeds.sh - (re)write the fuzz seed corpus in tests/fuzz/seeds.
#
#   scripts/make-fuzz-seeds.sh [PROTOCOL.md]
#
# 1. doc-NNN.bin: every ```hex block of PROTOCOL.md (default: ./PROTOCOL.md, else
#    docs/PROTOCOL.md), in order. A block is whitespace-separated hex byte pairs; a
#    "# comment" at the end of a line is ignored. Anything else in a block is an error.
# 2. msg-TYPE.bin (one valid frame per message type), msg-SAY-zlib.bin (a compressed
#    frame) and stream-all.bin (every frame back to back): written by the codec's unit
#    test (RD_MSG_SEED_DIR), built here in build/seeds.
# The seeds are data: commit them.
set -euo pipefail

prog=${0##*/}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=tests/fuzz/seeds
mkdir -p "$out"

doc=${1:-}
if [[ -z $doc ]]; then
	for cand in PROTOCOL.md docs/PROTOCOL.md; do
		[[ -f $cand ]] && { doc=$cand; break; }
	done
fi

# ---- 1. examples from the protocol document --------------------------------------------
rm -f "$out"/doc-*.bin
ndoc=0
if [[ -n $doc ]]; then
	inblock=0 esc="" lineno=0
	while IFS= read -r line || [[ -n $line ]]; do
		lineno=$((lineno + 1))
		if ((inblock == 0)); then
			[[ $line =~ ^[[:space:]]*\`\`\`hex[[:space:]]*$ ]] && { inblock=1; esc=; }
			continue
		fi
		if [[ $line =~ ^[[:space:]]*\`\`\`[[:space:]]*$ ]]; then
			inblock=0
			ndoc=$((ndoc + 1))
			# esc holds only validated \xHH escapes, so it is safe as a format
			# shellcheck disable=SC2059
			printf "$esc" >"$(printf '%s/doc-%03d.bin' "$out" "$ndoc")"
			continue
		fi
		line=${line%%#*}
		for tok in $line; do
			if [[ ! $tok =~ ^[0-9A-Fa-f]{2}$ ]]; then
				echo "$prog: $doc:$lineno: '$tok' is not a hex byte pair" >&2
				exit 1
			fi
			esc+="\\x$tok"
		done
	done <"$doc"
	if ((inblock)); then
		echo "$prog: $doc: unterminated \`\`\`hex block" >&2
		exit 1
	fi
fi

# ---- 2. one frame per message type, from the codec's own samples ------------------------
make --no-print-directory -s BUILD=build/seeds build/seeds/tests/test_msg
rm -f "$out"/msg-*.bin "$out"/stream-*.bin
RD_MSG_SEED_DIR=$out build/seeds/tests/test_msg

nmsg=$(find "$out" -name 'msg-*.bin' | wc -l)
echo "$prog: $ndoc from ${doc:-no PROTOCOL.md}, $nmsg message frames, in $out"
