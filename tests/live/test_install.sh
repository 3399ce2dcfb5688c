#!/usr/bin/env bash
# test_install.sh - `make install` into a DESTDIR gives a usable libroomdrop: public headers
# only, the static library and a pkg-config file with which an outside program compiles,
# links and runs (SHA-256 of "abc", one frame built and parsed back). Then
# `make uninstall` removes what install put there.
set -euo pipefail
# shellcheck source=tests/live/lib.sh
. "$(dirname "$0")/lib.sh"

command -v pkg-config >/dev/null || skip "pkg-config not installed"
cc=${CC:-cc}

dest=$(rd_tmpdir)
# A sub-make of ours must not join the jobserver or flags of a `make check` above us.
unset MAKEFLAGS MFLAGS MAKELEVEL
make -s --no-print-directory -C "$RD_ROOT" install DESTDIR="$dest" PREFIX=/usr BUILD="$BUILD" \
	>"$RD_TMP/install.log" 2>&1 || { cat "$RD_TMP/install.log" >&2; fail "make install failed"; }

inc=$dest/usr/include/roomdrop
for f in rd_buf.h rd_frame.h rd_hash.h rd_err.h rd_proto.h; do
	[[ -f $inc/$f ]] || fail "$inc/$f not installed"
done
for f in internal.h srv_internal.h; do
	[[ ! -e $inc/$f ]] || fail "$f was installed; it is not a public header"
done
[[ -f $dest/usr/lib/libroomdrop.a ]] || fail "libroomdrop.a not installed"
pc=$dest/usr/lib/pkgconfig/roomdrop.pc
[[ -f $pc ]] || fail "$pc not installed"
grep -q '@' "$pc" && fail "unsubstituted @VARIABLE@ left in $pc"

# The library must define what the program below calls; while they are still being
# written, say so rather than fail.
lib_syms=$(nm -g --defined-only "$dest/usr/lib/libroomdrop.a" 2>/dev/null | awk '{print $3}')
for s in rd_sha256 rd_hex rd_buf_init rd_buf_free rd_frame_append rd_frame_hdr_decode \
	rd_strerror; do
	grep -qx "$s" <<<"$lib_syms" || skip "libroomdrop does not define $s yet"
done

export PKG_CONFIG_PATH=$dest/usr/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
pkg-config --exists roomdrop || fail "pkg-config does not find roomdrop: $(pkg-config --print-errors --exists roomdrop 2>&1)"
[[ $(pkg-config --modversion roomdrop) =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "bad version in $pc"
read -r -a flags <<<"$(pkg-config --cflags --libs roomdrop)"
[[ " ${flags[*]} " == *" -I$inc "* ]] || fail "pkg-config --cflags does not give -I$inc: ${flags[*]}"

# A library built with a sanitizer needs its runtime at link time.
san=()
case ${BUILD##*/} in address | undefined | thread) san=("-fsanitize=${BUILD##*/}") ;; esac

cat >"$RD_TMP/use_roomdrop.c" <<'EOF'
#include <stdio.h>

#include <rd_buf.h>
#include <rd_err.h>
#include <rd_frame.h>
#include <rd_hash.h>
#include <rd_proto.h>

int main(void)
{
	uint8_t d[RD_SHA256_LEN];
	char hex[2 * RD_SHA256_LEN + 1];
	struct rd_buf b;
	struct rd_frame_hdr h;
	int rc;

	if ((rc = rd_sha256("abc", 3, d)) != 0)
		return fprintf(stderr, "rd_sha256: %s\n", rd_strerror(rc)), 1;
	rd_hex(d, sizeof(d), hex);
	printf("sha256 %s\n", hex);
	rd_buf_init(&b, 0);
	if ((rc = rd_frame_append(&b, 0x1100, 7, "hello", 5, 0)) != 0 ||
	    (rc = rd_frame_hdr_decode(b.data, b.len, RD_MAX_PAYLOAD_DEFAULT, &h)) != 0)
		return fprintf(stderr, "frame: %s\n", rd_strerror(rc)), 1;
	printf("frame %zu bytes type 0x%04x req %u len %u\n", b.len, (unsigned)h.type,
	       (unsigned)h.req_id, (unsigned)h.len);
	rd_buf_free(&b);
	return 0;
}
EOF
# Strict flags on purpose: public headers must compile cleanly in another program's build.
"$cc" -std=c11 -Wall -Wextra -Werror "${san[@]}" -o "$RD_TMP/use_roomdrop" \
	"$RD_TMP/use_roomdrop.c" "${flags[@]}" 2>"$RD_TMP/cc.log" ||
	{ cat "$RD_TMP/cc.log" >&2; fail "compiling against the installed library failed: $cc ${flags[*]}"; }

out=$("$RD_TMP/use_roomdrop") || fail "the program linked with libroomdrop failed: $out"
expect="sha256 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
frame 21 bytes type 0x1100 req 7 len 5"
[[ $out == "$expect" ]] || fail "unexpected output:
$out
expected:
$expect"

make -s --no-print-directory -C "$RD_ROOT" uninstall DESTDIR="$dest" PREFIX=/usr \
	BUILD="$BUILD" >"$RD_TMP/uninstall.log" 2>&1 ||
	{ cat "$RD_TMP/uninstall.log" >&2; fail "make uninstall failed"; }
left=$(find "$dest" -type f)
[[ -z $left ]] || fail "make uninstall left files behind: $left"

pass
