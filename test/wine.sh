#!/bin/sh
# suite-wine: cross-builds the library, the loopback suite and the
# demos for Windows with MinGW-w64 (Makefile.win, -Wall -Wextra -Werror),
# runs test/unit.exe under Wine in a fresh, headless WINEPREFIX, then the
# demos against Linux servers on loopback (test/wine_demos.sh). Ends with
# one "N passed, N failed, N skipped" line, the sum of both. Without the
# cross compiler or Wine it says why and counts one skip.
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
# wineserver -k does not always take Wine's services with it (once, the
# server was gone and services.exe, winedevice.exe and rpcss.exe lived
# on); they hold the caller's pipes open, and make waited for them for
# good. Whatever still runs in this prefix is killed by its WINEPREFIX.
kill_prefix() {
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [ "$pid" = "$$" ] && continue
        { tr '\0' '\n' < "$d/environ"; } 2>/dev/null | grep -qxF "WINEPREFIX=$prefix" && kill -9 "$pid" 2>/dev/null
    done
    return 0
}
cleanup() {
    WINEPREFIX="$prefix" timeout 60 "${wineserver:-true}" -k >/dev/null 2>&1
    kill_prefix
    rm -rf "$prefix" "$prefix.log" "$prefix.rc" "$prefix.out"
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

# Wine writes CRLF line ends; check.sh wants plain lines. Each part's own
# "N passed, N failed, N skipped" line is shown with its name in front
# ("wine: unit.exe: ..."), which check.sh does not count; the last line is
# their sum, the suite's one summary line.
total_p=0 total_f=0 total_s=0
# part NAME STATUS LOG: shows LOG, adds its summary line in.
part() {
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$3" | tail -n 1)
    grep -vE '^[0-9]+ passed, [0-9]+ failed' "$3"
    if [ -z "$line" ]; then
        echo "wine: $1 ended without a summary line (status $2): counted as one failure"
        total_f=$((total_f + 1)); return
    fi
    echo "wine: $1: $line"
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    k=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
    total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + ${k:-0}))
    case "$2" in
        0) ;;
        124) echo "wine: $1 did not finish in time: counted as one failure"; total_f=$((total_f + 1)) ;;
        *) [ "$f" -eq 0 ] && { echo "wine: $1 exited with status $2: counted as one failure"; total_f=$((total_f + 1)); } ;;
    esac
}

{ timeout 600 "$wine" test/unit.exe </dev/null 2>&1; echo $? > "$prefix.rc"; } | tr -d '\r' > "$prefix.out"
part unit.exe "$(cat "$prefix.rc" 2>/dev/null)" "$prefix.out"

# The demos: kacat.exe, own_loop.exe, flaky_server.exe against Linux
# servers on loopback (test/wine_demos.sh).
{ WINE="$wine" timeout 900 bash test/wine_demos.sh </dev/null 2>&1; echo $? > "$prefix.rc"; } | tr -d '\r' > "$prefix.out"
part demos "$(cat "$prefix.rc" 2>/dev/null)" "$prefix.out"

echo "$total_p passed, $total_f failed, $total_s skipped"
[ "$total_f" -eq 0 ]
