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
#   core-vocab   libroomdrop (shared/*.[ch]) does not name the file application's messages,
#                error codes or structs: they live in shared/files/rdf_proto.h and reach
#                the codec through rd_msg_register (rd_codec.h)
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

files_msg='PUT|PUT_READY|PUT_CHUNK|PUT_END|PUT_DONE|GET|GET_BEGIN|GET_CHUNK|GET_END|LIST|FILE_LIST|DELETE|FILE_NOTICE|XFER_CANCEL'
files_err='BAD_FILENAME|FILE_EXISTS|NO_SUCH_FILE|FILE_TOO_BIG|QUOTA|NO_SPACE|HASH_MISMATCH|SIZE_MISMATCH|BAD_OFFSET|BUSY|PERMISSION|NO_SUCH_TRANSFER|READ_ONLY|STORAGE'
while IFS= read -r hit; do
	[[ -n $hit ]] || continue
	breach core-vocab "$hit (the file application's words belong in shared/files/rdf_proto.h)"
done < <(grep -nE "\b(RD_MSG_($files_msg)|NAME\(($files_msg)\)|RD_E_($files_err)|RD_(PUT_(REFUSE|OVERWRITE|RENAME)|FILE_(ADDED|REMOVED|REPLACED))|rd_file_entry|rd_(put_mode|file_event)|rd_msg_(put|put_ready|chunk|xfer_id|put_done|get|get_begin|list|file_list|name|file_notice|xfer_cancel))\b" \
	shared/*.c shared/*.h || true)

((bad == 0)) && echo "lint: 4 rules hold"
exit $bad
