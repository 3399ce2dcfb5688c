#!/usr/bin/env bash
# lint.sh - rules of the house that a compiler does not check; part of `make check`.
#
#   scripts/lint.sh            exit 0 when every rule holds, else 1 with one line per breach
#
# Rules:
#   timed-wait   every condition-variable wait with a deadline goes through
#                rd_cond_wait_until() on a CLOCK_MONOTONIC condition variable
#                (rd_cond_init_mono): pthread_cond_timedwait and pthread_cond_init appear
#                in shared/rd_net.c only, so a step of the wall clock never stalls a timer
#   signals      the library (shared/) never changes a signal disposition, except in the
#                helper that programs call on purpose (rd_net_ignore_sigpipe)
#   one-door     no code outside the link layer and its transport (shared/rd_link.c,
#                shared/rd_tls.c) and the socket helpers under them (shared/rd_net.c,
#                shared/rd_frame.c) calls send, recv, sendfile or SSL_* itself
set -euo pipefail
cd "$(dirname "$0")/.."

bad=0
breach() {
	echo "lint: $1: $2"
	bad=1
}

src=$(git ls-files 'shared/*.c' 'shared/*.h' 'server/*.c' 'server/*.h' 'client/*.c' \
	'client/*.h' 'tests/helpers/*.c' 'bench/*.c' 2>/dev/null ||
	ls shared/*.[ch] server/*.[ch] client/*.[ch])

while IFS= read -r hit; do
	[[ -n $hit ]] || continue
	breach timed-wait "$hit (use rd_cond_init_mono / rd_cond_wait_until)"
done < <(grep -nE 'pthread_cond_(timedwait|init)[[:space:]]*\(' $src | grep -v '^shared/rd_net\.c:' || true)

while IFS= read -r hit; do
	[[ -n $hit ]] || continue
	breach signals "$hit (the library leaves signal policy to the program)"
done < <(grep -nE '\b(sigaction|signal)[[:space:]]*\(' shared/*.c | grep -v '^shared/rd_net\.c:' || true)

while IFS= read -r hit; do
	[[ -n $hit ]] || continue
	breach one-door "$hit (go through the link layer: rd_link.h)"
done < <(grep -nE '(^|[^_a-z.>])(send|recv|sendfile|SSL_[a-z_]+)[[:space:]]*\(' \
	shared/*.c server/*.c client/*.c shared/examples/*.c |
	grep -vE '^shared/(rd_link|rd_tls|rd_net|rd_frame)\.c:' |
	grep -vE ':[0-9]+:[[:space:]]*(/\*|\*)' || true)

((bad == 0)) && echo "lint: 3 rules hold"
exit $bad
