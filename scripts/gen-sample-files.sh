#!/usr/bin/env bash
# gen-sample-files.sh - (re)generate sample_files/ and its SHA256SUMS, deterministically.
#
# The files are committed; this script documents how they were made and can rebuild them
# byte for byte (no clock, no randomness: counters and AES-CTR over zeros with a fixed
# key). After a run, `git status sample_files` shows no change.
#
#   scripts/gen-sample-files.sh [DIR]     default DIR: sample_files next to scripts/
set -euo pipefail

dir=${1:-"$(cd "$(dirname "$0")/.." && pwd)/sample_files"}
mkdir -p "$dir"
cd "$dir"
export LC_ALL=C

printf 'Hello from roomdrop!\nThis small text file is the first thing the demo uploads.\n' >hello.txt

: >empty.txt

printf 'A file whose name is not ASCII: it checks that UTF-8 names survive the trip.\n' \
	>"naïve café.txt"

# 64 KiB of pseudo-random bytes: AES-128-CTR keystream under a fixed key and IV.
head -c 65536 /dev/zero |
	openssl enc -aes-128-ctr -nosalt \
		-K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000 \
		>random.bin

# About 300 KiB of plausible server log lines: compresses well, like real logs.
awk -v limit=$((300 * 1024)) '
BEGIN {
	split("alice bob carol dave erin frank", nick, " ")
	split("general random music photos", room, " ")
	split("report.pdf holiday.jpg notes.txt song.ogg backup.tar.gz slides.odp", file, " ")
	bytes = 0
	for (i = 0; bytes < limit; i++) {
		t = 36000 + i * 7
		ts = sprintf("2026-01-15T%02d:%02d:%02d.%03dZ", int(t / 3600) % 24,
			     int(t / 60) % 60, t % 60, (i * 37) % 1000)
		n = nick[i % 6 + 1]
		r = room[int(i / 5) % 4 + 1]
		f = file[(i * 7) % 6 + 1]
		conn = 100 + (i * 13) % 57
		k = i % 10
		if (k < 3)
			line = sprintf("%s INFO  [conn-%d] %s uploaded %s to #%s (%d bytes, %d ms)",
				       ts, conn, n, f, r, 1024 + (i * 7919) % 900000, 3 + (i * 31) % 400)
		else if (k < 5)
			line = sprintf("%s INFO  [conn-%d] %s downloaded %s from #%s (%d bytes)",
				       ts, conn, n, f, r, 1024 + (i * 104729) % 900000)
		else if (k < 7)
			line = sprintf("%s INFO  [conn-%d] %s joined #%s (%d members)",
				       ts, conn, n, r, 1 + i % 9)
		else if (k < 8)
			line = sprintf("%s DEBUG [timer] ping sent to %d clients, %d pongs pending",
				       ts, 3 + i % 12, i % 3)
		else if (k < 9)
			line = sprintf("%s INFO  [conn-%d] %s says %d bytes in #%s",
				       ts, conn, n, 5 + (i * 17) % 120, r)
		else
			line = sprintf("%s WARN  [conn-%d] %s: slow reader, %d KiB queued",
				       ts, conn, n, 64 + (i * 29) % 4000)
		print line
		bytes += length(line) + 1
	}
}' >server.log

# Checksums of everything but the list itself, in name order.
find . -maxdepth 1 -type f ! -name SHA256SUMS ! -name '.*' -printf '%P\0' | sort -z |
	xargs -0 sha256sum >.SHA256SUMS.tmp
mv .SHA256SUMS.tmp SHA256SUMS
