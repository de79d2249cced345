#!/bin/sh
# suite-wine (issue 4): cross-builds the library and the loopback suite for
# Windows with MinGW-w64 (Makefile.win, -Wall -Wextra -Werror) and runs
# test/unit.exe under Wine in a fresh, headless WINEPREFIX. Ends with the
# suite's own "N passed, N failed, N skipped" line. Without the cross
# compiler or Wine it says why and counts one skip.
# Usage: test/wine.sh [MAKE]   (WIN_CC, WINE override the compiler and the wine command)
make=${1:-make}
cc=${WIN_CC:-x86_64-w64-mingw32-gcc}
cd "$(dirname "$0")/.." || exit 1

skip() { echo "wine: skipped: $*"; echo "0 passed, 0 failed, 1 skipped"; exit 0; }
fail() { echo "wine: $*"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }

command -v "$cc" >/dev/null 2>&1 || skip "no MinGW-w64 cross compiler $cc (Debian: gcc-mingw-w64-x86-64)"
# /usr/bin/wine comes from Debian's "wine" package; "wine64" alone has only the loader.
wine=${WINE:-$(command -v wine 2>/dev/null)}
[ -z "$wine" ] && [ -x /usr/lib/wine/wine64 ] && wine=/usr/lib/wine/wine64
[ -n "$wine" ] || skip "no Wine (Debian: wine, wine64)"
wineserver=$(command -v wineserver 2>/dev/null)
[ -z "$wineserver" ] && [ -x /usr/lib/wine/wineserver ] && wineserver=/usr/lib/wine/wineserver
command -v timeout >/dev/null 2>&1 || skip "no timeout(1)"

# The parent make's command-line variables (CC=..., CFLAGS=...) are for the
# host build: keep them away from the cross build.
MAKEFLAGS= MAKEOVERRIDES= "$make" -s -f Makefile.win CC="$cc" CFLAGS="${WIN_CFLAGS:--O2 -g}" LDFLAGS= \
    WARN="-std=c99 -Wall -Wextra -Wpedantic -Werror" all || fail "cross build with $cc failed"

# A fresh prefix per run: no state from earlier runs, nothing shared with
# other users. No display, no stdin, no Mono/Gecko installer prompts.
prefix=$(mktemp -d "${TMPDIR:-/tmp}/ka-wine.XXXXXX") || fail "mktemp failed"
cleanup() {
    WINEPREFIX="$prefix" timeout 60 "${wineserver:-true}" -k >/dev/null 2>&1
    rm -rf "$prefix" "$prefix.log" "$prefix.rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
export WINEPREFIX="$prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY WAYLAND_DISPLAY
[ -n "$HOME" ] || export HOME="$prefix"

t0=$(date +%s)
if ! timeout 600 "$wine" wineboot -i </dev/null >"$prefix.log" 2>&1; then
    sed 's/^/    /' "$prefix.log" | tail -n 20
    fail "wineboot -i failed in a fresh prefix"
fi
echo "wine: $("$wine" --version 2>/dev/null </dev/null || echo unknown version), prefix ready in $(( $(date +%s) - t0 )) s"

# Wine writes CRLF line ends; check.sh wants plain lines.
{ timeout 600 "$wine" test/unit.exe </dev/null 2>&1; echo $? > "$prefix.rc"; } | tr -d '\r'
rc=$(cat "$prefix.rc" 2>/dev/null)
case "$rc" in
    0) ;;
    124) fail "test/unit.exe did not finish within 600 s" ;;
    *) echo "wine: test/unit.exe exited with status $rc"; exit 1 ;;
esac
