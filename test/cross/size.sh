#!/bin/sh
# Prints the size of ka_client.o per target and optimisation level: .text
# (code) and .rodata (strings, tables) in bytes, from `size -A` of an object
# built with the suite's flags (-std=c99, no -g). Targets whose compiler is
# missing are listed as such.
#
# Usage: test/cross/size.sh [SRC_DIR] [-DSWITCH ...]
#   SRC_DIR    where ka_client.c and ka_client.h are (default: .)
#   -D...      extra defines, e.g. -DKA_NO_LOG, to measure a build option
set -u
src=.
case "${1:-}" in -*|"") ;; *) src=$1; shift ;; esac
defs="$*"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# label | compiler | size tool | extra flags | how the suite tests it
targets='x86-64|gcc|size||native, suite unit
x86-64|clang|size||compiled only (suite build)
x86-64 musl|musl-gcc|size||native, suite musl
armv7 thumb2|arm-linux-gnueabihf-gcc|arm-linux-gnueabihf-size|-mthumb|qemu-user, suite qemu-arm
armv7 arm|arm-linux-gnueabihf-gcc|arm-linux-gnueabihf-size|-marm|compiled only
aarch64|aarch64-linux-gnu-gcc|aarch64-linux-gnu-size||qemu-user, suite qemu-aarch64
s390x (BE)|s390x-linux-gnu-gcc|s390x-linux-gnu-size||qemu-user, suite qemu-s390x'

# sum of the sizes of the sections whose name starts with $2 in `size -A` output $1
sect() { awk -v p="$2" 'index($1, p) == 1 { n += $2 } END { print n + 0 }' "$1"; }

printf '%-13s %-11s %9s %9s %11s %11s  %s\n' target compiler 'text -O2' 'text -Os' 'rodata -O2' 'rodata -Os' tested
[ -n "$defs" ] && echo "(with $defs)"
echo "$targets" | while IFS='|' read -r label cc sz extra how; do
    if ! command -v "$cc" >/dev/null 2>&1 || ! command -v "$sz" >/dev/null 2>&1; then
        printf '%-13s %-11s %s\n' "$label" "${cc%%-*}" "not installed ($cc)"; continue
    fi
    row=""
    for o in -O2 -Os; do
        # shellcheck disable=SC2086
        if $cc -std=c99 $o $extra $defs -I"$src" -c "$src/ka_client.c" -o "$tmp/k.o" 2>"$tmp/err"; then
            $sz -A "$tmp/k.o" > "$tmp/s"
            row="$row $(sect "$tmp/s" .text)/$(sect "$tmp/s" .rodata)"
        else
            row="$row fail/fail"
        fi
    done
    # shellcheck disable=SC2086
    set -- $row
    name=$cc; case $cc in *-linux-gnu*-gcc) name=gcc ;; esac
    name="$name $($cc -dumpversion 2>/dev/null | cut -d. -f1)"
    printf '%-13s %-11s %9s %9s %11s %11s  %s\n' "$label" "$name" "${1%/*}" "${2%/*}" "${1#*/}" "${2#*/}" "$how"
done
