# lib.sh - what the benchmark scripts share (sourced after tests/live/lib.sh; not a
# benchmark itself, so not executable: scripts/bench.sh runs the executable ones).

now_ns() { date +%s%N; }
mbps() { awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.1f", b / (ns / 1e9) / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
kb_of() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
settle() { sync; sleep 1; }

# A port nobody listens on (checked in /proc/net/tcp), for socat and nginx. Another
# program may still take it before them: nginx is retried on another port.
free_port()
{
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		grep -qi ":$(printf %04X "$p") " /proc/net/tcp /proc/net/tcp6 2>/dev/null || break
	done
	echo "$p"
}

# is_listening PORT: a socket listens on 127.0.0.1:PORT
is_listening()
{
	awk -v h=":$(printf %04X "$1")" '$2 ~ h"$" && $4 == "0A" { found = 1 } END { exit !found }' \
		/proc/net/tcp
}

wait_listen()
{
	local i
	for ((i = 0; i < 200; i++)); do
		is_listening "$1" && return 0
		sleep 0.02
	done
	fail "socat did not listen on port $1"
}

# best NAME NS: keep the smallest time per NAME
declare -gA BEST
best() { [[ -z ${BEST[$1]:-} || $2 -lt ${BEST[$1]} ]] && BEST[$1]=$2 || true; }

# socat_copy SRC DEST NAME: a raw TCP copy of SRC into the file DEST over 127.0.0.1 with
# socat, its time kept under NAME (best); the baseline of the transfer ratios.
socat_copy()
{
	local port lpid t0 t1
	settle
	port=$(free_port)
	rd_spawn socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "OPEN:$2,creat,trunc"
	lpid=$RD_LAST_PID
	wait_listen "$port"
	t0=$(now_ns)
	socat -u "OPEN:$1" "TCP:127.0.0.1:$port"
	wait "$lpid" || fail "socat listener failed"
	t1=$(now_ns)
	rd__forget "$lpid"
	[[ $(stat -c %s "$2") == $(stat -c %s "$1") ]] || fail "socat copy incomplete"
	best "$3" $((t1 - t0))
}

# bench_redis_start DIR: a redis-server of the benchmark's own on the Unix socket
# DIR/redis.sock (no TCP port), persistence off, empty, as the live tests start theirs
# (tests/live/lib.sh rd_start_redis) but needing nothing else from there. Sets RSOCK and
# REDIS_PID (the caller stops it by PID); returns 1, with its log on stderr, when it does not
# answer within 10 s. Its output goes to DIR/redis.log.
bench_redis_start()
{
	local i
	RSOCK=$1/redis.sock
	redis-server --port 0 --unixsocket "$RSOCK" --unixsocketperm 700 --save '' \
		--appendonly no --dir "$1" >>"$1/redis.log" 2>&1 &
	REDIS_PID=$!
	for ((i = 0; i < 200; i++)); do
		if command -v redis-cli >/dev/null; then
			[[ $(timeout 5 redis-cli -s "$RSOCK" ping 2>/dev/null || true) == PONG ]] &&
				return 0
		elif [[ -S $RSOCK ]]; then
			return 0
		fi
		kill -0 "$REDIS_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$1/redis.log" >&2
	return 1
}

# bench_rsyncd_start DIR MODULE_PATH: an rsync daemon of the benchmark's own on 127.0.0.1
# (an ephemeral port), its config, pid file and log in DIR, serving MODULE_PATH read-write
# as the module "dst". Sets RS (rsync://127.0.0.1:PORT/dst); rd_spawn stops it by PID at
# exit.
bench_rsyncd_start()
{
	local i port
	cat >"$1/rsyncd.conf" <<CONF
use chroot = no
uid = $(id -un)
gid = $(id -gn)
pid file = $1/rsyncd.pid
[dst]
path = $2
read only = no
CONF
	port=$(free_port)
	rd_spawn rsync --daemon --no-detach --config="$1/rsyncd.conf" --address=127.0.0.1 \
		--port="$port" --log-file="$1/rsyncd.log"
	for ((i = 0; i < 200; i++)); do is_listening "$port" && break; sleep 0.02; done
	is_listening "$port" || fail "the rsync daemon did not listen: $(cat "$1/rsyncd.log")"
	RS=rsync://127.0.0.1:$port/dst
}
