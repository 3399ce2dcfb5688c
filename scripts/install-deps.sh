#!/usr/bin/env bash
# install-deps.sh - install what roomdrop needs to build and test, and only what is missing.
#
#   scripts/install-deps.sh           install missing Debian 12 packages (as root), else
#                                     print the sudo command and exit 1
#   scripts/install-deps.sh --check   only report; exit 1 if something is missing
#
# Presence is detected cheaply (pkg-config --exists for libraries, command -v for tools,
# dpkg-query for the rest), so on a machine that has everything this runs no apt at all
# and prints nothing (or one line with --check). Safe to run any number of times.
#
# Bash only: no test script needs python3, so it is not a dependency.
set -euo pipefail

prog=${0##*/}
check_only=0
for arg in "$@"; do
	case $arg in
	--check) check_only=1 ;;
	-h | --help)
		sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "$prog: unknown argument '$arg' (try --help)" >&2
		exit 2
		;;
	esac
done

missing=()

add() {
	local p
	for p in "${missing[@]}"; do
		[[ $p == "$1" ]] && return 0
	done
	missing+=("$1")
}

have_pkg() {
	[[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

# need_lib PC-NAME DEB: a library found through pkg-config (dpkg-query if pkg-config is absent).
need_lib() {
	if command -v pkg-config >/dev/null 2>&1; then
		pkg-config --exists "$1" 2>/dev/null || add "$2"
	else
		have_pkg "$2" || add "$2"
	fi
}

# need_cmd DEB CMD...: a tool; present when any of the commands is on PATH.
need_cmd() {
	local deb=$1 c
	shift
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 && return 0
	done
	add "$deb"
}

# need_deb DEB: a package with nothing cheaper to probe (meta packages, runtime libraries).
need_deb() {
	have_pkg "$1" || add "$1"
}

# build
need_cmd gcc gcc cc
need_cmd make make
need_cmd pkg-config pkg-config
if command -v dpkg-query >/dev/null 2>&1; then
	need_deb build-essential
fi
need_lib zlib zlib1g-dev
need_lib libcrypto libssl-dev
need_lib libutf8proc libutf8proc-dev
need_lib cmocka libcmocka-dev
need_lib libedit libedit-dev
need_lib gtk4 libgtk-4-dev
# fuzzing: clang with libFuzzer and the sanitizer runtimes
need_cmd clang clang
if command -v dpkg-query >/dev/null 2>&1; then
	need_deb libclang-rt-14-dev
fi
# GUI test: a virtual display, clicks and screenshots
need_cmd xvfb Xvfb
need_cmd xauth xauth
need_cmd xdotool xdotool
need_cmd xclip xclip
need_cmd x11-apps xwd
need_cmd imagemagick convert magick
# benchmarks and live tests
need_cmd socat socat
need_cmd procps ps pkill

if ((${#missing[@]} == 0)); then
	((check_only)) && echo "$prog: all dependencies present"
	exit 0
fi

if ((check_only)); then
	echo "$prog: missing: ${missing[*]}" >&2
	exit 1
fi

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
