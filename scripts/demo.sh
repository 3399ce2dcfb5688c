#!/usr/bin/env bash
# demo.sh - `make demo`: a local server, two clients, files moving. (Skeleton: the client
# steps are filled in as the client commands land.)
#
# Everything runs on 127.0.0.1 with a port the kernel picks; the server's store lives in a
# temporary directory that is removed at the end; every process is stopped by PID.
#
#   BUILD=build scripts/demo.sh        (DEMO_KEEP=1 keeps the temporary directory)
set -euo pipefail
RD_KEEP_TMP=${DEMO_KEEP:-0}
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/../tests/live/lib.sh"

step()
{
	printf '\n== %s\n' "$*"
}

if [[ ! -x $BUILD/roomdrop-server ]]; then
	echo "demo: $BUILD/roomdrop-server is not built yet; nothing to show" >&2
	exit 1
fi

step "starting a headless server on 127.0.0.1 (ephemeral port)"
rd_start_server
echo "server pid $RD_SERVER_PID listening on 127.0.0.1:$RD_PORT, store under $RD_SERVER_DIR"

# (coming) each step below becomes real client commands, e.g.
#   "$BUILD/roomdrop" --port "$RD_PORT" --nick alice put sample_files/server.log
step "(coming) alice and bob connect, join #general and chat"
step "(coming) alice uploads sample_files/*; bob lists the room and downloads them"
step "(coming) bob's copies are checked against sample_files/SHA256SUMS"
step "(coming) alice offers a file to bob directly (peer to peer, relayed if that fails)"
step "(coming) the administrator lists clients, broadcasts, kicks (roomdrop-server ctl)"

step "stopping the server (pid $RD_SERVER_PID)"
rd_stop_server
echo "server exited with status $RD_STOP_STATUS"
[[ $RD_STOP_STATUS == 0 ]] || fail "server did not shut down cleanly"
echo
echo "demo: done"
