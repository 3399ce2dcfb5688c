# shellcheck shell=bash
# lib.sh - helpers for live tests (bash). Source it after `set -euo pipefail`:
#
#   . "$(dirname "$0")/lib.sh"
#   rd_need_server                    # skip (77) when the server is not built yet
#   rd_start_server --store "$(rd_tmpdir)"
#   "$BUILD/roomdrop" --port "$RD_PORT" ... || fail "upload failed"
#   rd_stop_server
#   pass
# and run / contains / wait_for for the checks most tests make.
#
# Contract with scripts/run-live-tests.sh: exit 0 = pass, 77 = skip (say why), else fail.
# Everything a test starts through these helpers is stopped by PID when it exits, however
# it exits; nothing is ever killed by name. Servers listen on 127.0.0.1 only, on a port
# the kernel picks (the server reports it through --port-file).
#
# Environment: BUILD (build dir, default build; made absolute), RD_ROOT (repo root),
# RD_TMP (this test's scratch dir, removed at exit unless RD_KEEP_TMP=1), XDG_CONFIG_HOME
# (RD_TMP/config: the clients' keys and known_servers),
# RD_START_TIMEOUT / RD_STOP_TIMEOUT (seconds, default 10).

RD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$RD_ROOT/$BUILD
export RD_ROOT BUILD
RD_TEST=$(basename "$0" .sh)
RD_START_TIMEOUT=${RD_START_TIMEOUT:-10}
RD_STOP_TIMEOUT=${RD_STOP_TIMEOUT:-10}

RD_TMP=$(mktemp -d "${TMPDIR:-/tmp}/roomdrop-$RD_TEST.XXXXXX")
export RD_TMP
# The clients' keys and known_servers live in the test's scratch dir, never in the real
# ~/.config/roomdrop (each test starts as a user who never connected anywhere).
export XDG_CONFIG_HOME=$RD_TMP/config
# ...and so does the client's digest cache (client/digest.h), never ~/.cache/roomdrop.
export XDG_CACHE_HOME=$RD_TMP/cache
# Direct links between clients (file offers) listen on 127.0.0.1 only and report no other
# address (client/direct.h; a test may set "unreachable" for one client).
export ROOMDROP_TEST_P2P=${ROOMDROP_TEST_P2P:-loopback}
RD_PIDS=()         # every background process started through rd_spawn / rd_start_server
RD_SERVER_LOGS=()  # logs shown by fail()
RD_SERVER_COUNT=0
RD_ON_EXIT=()      # extra cleanup commands, run first (rd_on_exit)

# ---- results -------------------------------------------------------------------------

# fail MSG: report a failure (with the tail of each server log) and exit 1.
fail()
{
	local log
	echo "FAIL: $RD_TEST: $*" >&2
	for log in "${RD_SERVER_LOGS[@]}"; do
		[[ -s $log ]] || continue
		echo "---- last lines of $log" >&2
		tail -n 20 "$log" >&2
	done
	exit 1
}

# skip WHY: the test cannot run here (missing binary, no display...); exit 77.
skip()
{
	echo "SKIP: $RD_TEST: $*"
	exit 77
}

# pass [NOTE]: the test passed; exit 0.
# shellcheck disable=SC2120 # NOTE is optional
pass()
{
	echo "PASS: $RD_TEST${*:+: $*}"
	exit 0
}

# ---- scratch space ---------------------------------------------------------------------

# rd_tmpdir: print a new empty directory inside RD_TMP (safe in $(...): RD_TMP is removed
# as a whole at exit).
rd_tmpdir()
{
	mktemp -d "$RD_TMP/d.XXXXXX"
}

# ---- processes -------------------------------------------------------------------------

# rd_on_exit CMD...: run CMD (one string, eval'd) at exit, before processes are stopped.
rd_on_exit()
{
	RD_ON_EXIT+=("$*")
}

# rd_spawn CMD [ARGS...]: start a background process that the exit trap will stop; its
# PID is in RD_LAST_PID. Redirect its output yourself (rd_spawn cmd >log 2>&1 works).
rd_spawn()
{
	"$@" &
	RD_LAST_PID=$!
	RD_PIDS+=("$RD_LAST_PID")
}

# rd_stop_pid PID: TERM, wait up to RD_STOP_TIMEOUT seconds, then KILL; reap it.
# Sets RD_STOP_STATUS to its exit status (128+signal if killed; 0 if it was gone already).
# shellcheck disable=SC2034 # RD_STOP_STATUS is for the tests
rd_stop_pid()
{
	local pid=$1 i
	RD_STOP_STATUS=0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < RD_STOP_TIMEOUT * 20; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			# a zombie child still answers kill -0: reap it when it has exited
			[[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* ]] && break
			sleep 0.05
		done
		if kill -0 "$pid" 2>/dev/null &&
		   [[ $(ps -o stat= -p "$pid" 2>/dev/null) != Z* ]]; then
			echo "lib.sh: pid $pid did not stop within ${RD_STOP_TIMEOUT}s; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || RD_STOP_STATUS=$?
	rd__forget "$pid"
}

rd__forget()
{
	local p keep=()
	for p in "${RD_PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	RD_PIDS=("${keep[@]}")
}

# ---- the server ------------------------------------------------------------------------

# rd_need_server: skip unless $BUILD/roomdrop-server exists.
rd_need_server()
{
	[[ -x $BUILD/roomdrop-server ]] || skip "$BUILD/roomdrop-server is not built yet"
}

# rd_start_server [ARGS...]: start a headless server on 127.0.0.1 with an ephemeral port
# and wait (RD_START_TIMEOUT) until it has written that port to its --port-file. It runs
# with TLS (its key made in STORE.tls/ or the server's folder) unless RD_SERVER_TLS=off.
# Exports RD_PORT and RD_SERVER_PID; RD_SERVER_LOG is its stdout+stderr and RD_SERVER_DIR
# its working directory (a fresh directory, so defaults such as a relative store land
# there: pass absolute paths in ARGS). Can be called more than once; each call replaces
# RD_PORT/RD_SERVER_PID with the new server's and the old one keeps running.
# shellcheck disable=SC2120 # arguments are optional
rd_start_server()
{
	local n portfile port="" again i
	RD_SERVER_COUNT=$((RD_SERVER_COUNT + 1))
	n=$RD_SERVER_COUNT
	RD_SERVER_DIR=$RD_TMP/server$n
	mkdir -p "$RD_SERVER_DIR"
	portfile=$RD_SERVER_DIR/port
	RD_SERVER_LOG=$RD_SERVER_DIR/server.log
	RD_SERVER_LOGS+=("$RD_SERVER_LOG")

	[[ -x $BUILD/roomdrop-server ]] || fail "$BUILD/roomdrop-server not found (build it first)"
	local tls=()
	[[ ${RD_SERVER_TLS:-on} == off ]] && tls=(--tls off)
	(cd "$RD_SERVER_DIR" &&
		exec "$BUILD/roomdrop-server" --headless --listen 127.0.0.1:0 \
			--port-file "$portfile" "${tls[@]}" "$@") >"$RD_SERVER_LOG" 2>&1 &
	RD_SERVER_PID=$!
	RD_PIDS+=("$RD_SERVER_PID")

	for ((i = 0; i < RD_START_TIMEOUT * 20; i++)); do
		if [[ -s $portfile ]]; then
			port=$(<"$portfile")
			port=${port//[[:space:]]/}
			if [[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)); then
				# read it twice, in case the writer was caught half way
				sleep 0.05
				again=$(<"$portfile")
				[[ ${again//[[:space:]]/} == "$port" ]] && break
			fi
			port=""
		fi
		if ! kill -0 "$RD_SERVER_PID" 2>/dev/null; then
			wait "$RD_SERVER_PID" 2>/dev/null || true
			fail "server exited before it listened (see $RD_SERVER_LOG)"
		fi
		sleep 0.05
	done
	[[ -n $port ]] || fail "server wrote no port to $portfile within ${RD_START_TIMEOUT}s"
	RD_PORT=$port
	export RD_PORT RD_SERVER_PID RD_SERVER_LOG RD_SERVER_DIR
}

# rd_need_cluster: skip the test unless this build has cluster mode (hiredis); under CI,
# fail instead (scripts/install-deps.sh installs libhiredis-dev).
rd_need_cluster()
{
	if "$BUILD/roomdrop-server" --help | grep -q 'not in this build: it has no hiredis'; then
		[[ -n ${CI:-} ]] && fail "this build has no cluster mode, but CI must test it (scripts/install-deps.sh)"
		skip "this build has no cluster mode (no hiredis)"
	fi
	return 0
}

# rd_start_redis: a Redis of the test's own on the Unix socket RSOCK ($RD_TMP/redis.sock
# unless set), persistence off, empty; waits (10 s at most) until it answers. Sets RSOCK
# and REDIS_PID (stopped by PID with the rest at exit); its output goes to
# $RD_TMP/redis.log. redis-server or redis-cli missing is a failure, not a skip:
# scripts/install-deps.sh installs them. rcli ARGS... runs redis-cli on it.
rd_start_redis()
{
	local i
	command -v redis-server >/dev/null ||
		fail "redis-server not found: scripts/install-deps.sh installs it (package redis-server)"
	command -v redis-cli >/dev/null ||
		fail "redis-cli not found: scripts/install-deps.sh installs it (package redis-tools)"
	RSOCK=${RSOCK:-$RD_TMP/redis.sock}
	rd_spawn redis-server --port 0 --unixsocket "$RSOCK" --unixsocketperm 700 --save '' \
		--appendonly no --dir "$RD_TMP" >>"$RD_TMP/redis.log" 2>&1
	REDIS_PID=$RD_LAST_PID
	rd_on_exit rd__resume_redis # (a test may SIGSTOP it; a stopped process ignores TERM)
	for ((i = 0; i < 200; i++)); do
		[[ $(rcli ping 2>/dev/null || true) == PONG ]] && return 0
		kill -0 "$REDIS_PID" 2>/dev/null || fail "redis-server exited: $(cat "$RD_TMP/redis.log")"
		sleep 0.05
	done
	fail "redis-server did not answer within 10 s"
}
rcli() { timeout 10 redis-cli -s "$RSOCK" "$@"; }
rd__resume_redis() { kill -CONT "$REDIS_PID" 2>/dev/null || true; }

# rd_stop_server [PID]: stop the last server started (or PID); RD_STOP_STATUS is its exit
# status, so a test can check that a clean shutdown exits 0.
# shellcheck disable=SC2120 # arguments are optional
rd_stop_server()
{
	local pid=${1:-${RD_SERVER_PID:-}}
	[[ -n $pid ]] || return 0
	rd_stop_pid "$pid"
	[[ $pid == "${RD_SERVER_PID:-}" ]] && RD_SERVER_PID=""
	return 0
}

# ---- checks ------------------------------------------------------------------------------

# run WANT CMD...: run CMD with stdout+stderr in $OUT; fail unless it exits WANT.
run()
{
	local want=$1 rc=0
	shift
	"$@" >"$RD_TMP/out" 2>&1 || rc=$?
	OUT=$(<"$RD_TMP/out")
	[[ $rc == "$want" ]] || fail "expected exit $want, got $rc from: $* -- output: $OUT"
}

# contains TEXT PART: fail unless TEXT contains PART.
contains() { [[ $1 == *"$2"* ]] || fail "expected '$2' in: $1"; }

# wait_for FILE TEXT [SECONDS]: until FILE contains TEXT (default 10 s), else fail.
wait_for()
{
	local i
	for ((i = 0; i < ${3:-10} * 20; i++)); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "'$2' never appeared in $1: $(cat "$1" 2>/dev/null)"
}

# ---- exit trap -------------------------------------------------------------------------

rd__cleanup()
{
	local rc=$? cmd pid
	set +e
	for cmd in "${RD_ON_EXIT[@]}"; do
		eval "$cmd"
	done
	for pid in "${RD_PIDS[@]}"; do
		rd_stop_pid "$pid"
	done
	if [[ ${RD_KEEP_TMP:-0} == 1 ]]; then
		echo "lib.sh: kept $RD_TMP" >&2
	else
		rm -rf "$RD_TMP"
	fi
	exit "$rc"
}

trap rd__cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
