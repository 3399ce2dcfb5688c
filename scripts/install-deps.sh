#!/usr/bin/env bash
# install-deps.sh - install what roomdrop needs to build and test, and only what is missing.
#
#   scripts/install-deps.sh           install missing Debian 12 packages (as root), else
#                                     print the sudo command and exit 1
#   scripts/install-deps.sh --check   only report, one line per probe with what it is for;
#                                     exit 1 if something is missing
#
# Presence is detected cheaply (pkg-config --exists for libraries; for tools, the exact
# command name that a test, the demo or a benchmark runs, and its -version banner where
# another program may carry the same name; dpkg-query for the rest), so on a machine that
# has everything this runs no apt at all and prints nothing. Safe to run any number of times.
#
# Bash only: no test script needs python3, so it is not a dependency.
set -euo pipefail

prog=${0##*/}
check_only=0
for arg in "$@"; do
	case $arg in
	--check) check_only=1 ;;
	-h | --help)
		sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "$prog: unknown argument '$arg' (try --help)" >&2
		exit 2
		;;
	esac
done

missing=()
report=() # with --check: one line per probe, "ok|MISSING  what  (package) - what for"

add() {
	local p
	for p in "${missing[@]}"; do
		[[ $p == "$1" ]] && return 0
	done
	missing+=("$1")
}

# note OK DEB WHAT WHY: record one probe's result (and the package when it failed).
note() {
	local ok=$1 deb=$2 what=$3 why=$4
	((ok)) || add "$deb"
	report+=("$( ((ok)) && echo "ok     " || echo "MISSING") $(printf '%-26s %-22s %s' "$what" "($deb)" "$why")")
}

have_pkg() {
	[[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

# need_lib PC-NAME DEB WHY: a library found through pkg-config (dpkg-query without pkg-config).
need_lib() {
	local ok=0
	if command -v pkg-config >/dev/null 2>&1; then
		pkg-config --exists "$1" 2>/dev/null && ok=1
	else
		have_pkg "$2" && ok=1
	fi
	note "$ok" "$2" "lib $1" "$3"
}

# need_cmd DEB CMD WHY [PATTERN]: the exact command that the tests, the demo or the
# benchmarks run, by that name. With PATTERN, `CMD -version` or `CMD --version` must print
# it too, because another program may carry the same name (a `convert` that is not
# ImageMagick's, say).
need_cmd() {
	local deb=$1 cmd=$2 why=$3 pattern=${4:-} ok=0 out
	if command -v "$cmd" >/dev/null 2>&1; then
		if [[ -z $pattern ]]; then
			ok=1
		else
			out=$("$cmd" -version 2>&1 </dev/null || "$cmd" --version 2>&1 </dev/null || true)
			[[ $out == *"$pattern"* ]] && ok=1
		fi
	fi
	note "$ok" "$deb" "$cmd" "$why"
}

# need_deb DEB WHY: a package with nothing cheaper to probe (meta packages, runtimes).
need_deb() {
	local ok=0
	have_pkg "$1" && ok=1
	note "$ok" "$1" "package $1" "$2"
}

# build
need_cmd gcc cc "the C compiler (make)"
need_cmd make make "the build"
need_cmd pkg-config pkg-config "finding the libraries below (make)"
need_cmd clang-format clang-format "make format-check (part of make check)"
if command -v dpkg-query >/dev/null 2>&1; then
	need_deb build-essential "libc headers and the toolchain"
fi
need_lib zlib zlib1g-dev "per-frame compression"
need_lib libcrypto libssl-dev "SHA-256 and random tokens (OpenSSL)"
need_lib libssl libssl-dev "TLS 1.3 on every connection (OpenSSL)"
need_lib libutf8proc libutf8proc-dev "Unicode rules for names: NFC, format characters"
need_lib cmocka libcmocka-dev "the unit tests"
need_lib libedit libedit-dev "the client's interactive shell"
need_lib sqlite3 libsqlite3-dev "the server's persistent state: nickname owners (an embedded database)"
need_lib inih libinih-dev "the server's configuration file (--config: an INI reader)"
need_lib gtk4 libgtk-4-dev "the server's admin window"
need_lib hiredis libhiredis-dev "the server's cluster mode (--redis; hiredis/hiredis.h)"
# fuzzing: clang with libFuzzer and the sanitizer runtimes
need_cmd clang clang "make fuzz (libFuzzer)"
if command -v dpkg-query >/dev/null 2>&1; then
	need_deb libclang-rt-14-dev "libFuzzer and sanitizer runtimes for clang"
fi
# GUI test: a virtual display, clicks and screenshots
need_cmd xvfb Xvfb "test_gui: a virtual X display"
need_cmd xauth xauth "test_gui: X authority for Xvfb"
need_cmd xdotool xdotool "test_gui: keys and clicks in the window"
need_cmd xclip xclip "test_gui: reads the window's log through the clipboard"
need_cmd x11-apps xwd "test_gui: window screenshots"
need_cmd imagemagick convert "test_gui: screenshot to PNG" ImageMagick
need_cmd imagemagick compare "test_gui: the table is drawn (pixel compare)" ImageMagick
# live tests, the demo and the benchmarks
need_cmd tmux tmux "test_cli: the shell on a real terminal"
need_cmd bsdutils script "test_demo: the demo on a pseudo-terminal"
need_cmd redis-server redis-server "test_cluster: the cluster's registry and bus" "Redis server"
need_cmd redis-tools redis-cli "test_cluster: reads the registry in Redis"
need_cmd socat socat "make bench: the raw-copy baseline"
need_cmd nginx-light nginx "make bench: HTTPS (TLS 1.3) file server to compare get with" nginx
need_cmd curl curl "make bench: the HTTPS client of that comparison"
need_cmd openssl openssl "make bench: a self-signed certificate for nginx (openssl req)"
need_cmd rsync rsync "make bench: the rsync daemon that 1,000 small files are compared with" "rsync  version"
need_cmd procps ps "live tests: process checks"
need_cmd procps pkill "live tests: stopping helpers"
need_cmd coreutils timeout "every wait in the tests is bounded"
need_cmd coreutils sha256sum "checking transferred files"
need_cmd strace strace "test_durability: fsync before rename, seen from outside"
need_cmd mount mount "test_files_*: a small tmpfs store the test makes (root)"
need_cmd mount umount "test_files_*: removing that tmpfs again"
need_cmd e2fsprogs chattr "test_files_store_errors: an immutable file the server cannot remove"

if ((check_only)); then
	printf '%s\n' "${report[@]}"
	if ((${#missing[@]} == 0)); then
		echo "$prog: all dependencies present"
		exit 0
	fi
	echo "$prog: missing: ${missing[*]}" >&2
	exit 1
fi

((${#missing[@]} == 0)) && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "$prog: missing: ${missing[*]}" >&2
	echo "$prog: apt-get not found; install the equivalents of these Debian 12 packages by hand" >&2
	exit 1
fi

if ((EUID != 0)); then
	echo "$prog: missing packages: ${missing[*]}" >&2
	echo "$prog: not root, so nothing was installed. Run:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi

echo "$prog: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=120 update -qq ||
	{ sleep 5 && apt-get -o DPkg::Lock::Timeout=120 update -qq; }
apt-get install -qq -y --no-install-recommends -o DPkg::Lock::Timeout=120 "${missing[@]}"

# Re-check, so a package that installed but did not provide what we probe is reported.
if ! "$0" --check >/dev/null 2>&1; then
	"$0" --check || true
	echo "$prog: some dependencies are still missing after apt-get install" >&2
	exit 1
fi
echo "$prog: done"
