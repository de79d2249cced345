#!/bin/sh
# One cross suite: builds the loopback suite (test/unit.c, test/testlib.c,
# ka_client.c) for TARGET into build/TARGET/ and runs it, natively (musl) or
# under qemu-user; qemu passes socket calls to the host kernel, so loopback
# works. Around the loopback suite it checks what emulation alone would not
# show: the library builds warning-free for the target, the keepalive
# options are really compiled into both the library and the suite, and the
# keepalive read-back test really ran.
#
# Usage: test/cross/run.sh musl|arm|aarch64|s390x   (from the top directory)
# Ends with "N passed, N failed, N skipped": the suite's own counts plus
# these checks. A missing compiler, C library or qemu skips the whole suite.
# CROSS_CFLAGS (default -O2 -g) replaces CFLAGS, which may hold host-only flags.
set -u
target=${1:?usage: test/cross/run.sh musl|arm|aarch64|s390x}
cflags=${CROSS_CFLAGS:--O2 -g}
W="-std=c99 -Wall -Wextra -Wpedantic -Werror"
# As the Makefile builds it: the library may run a helper thread.
thr=-pthread

case $target in
musl)    cc=musl-gcc;                qemu="";     sysroot=""; ldflags=-static; pkg=musl-tools ;;
arm)     cc=arm-linux-gnueabihf-gcc; qemu=arm;     pkg="gcc-arm-linux-gnueabihf libc6-dev-armhf-cross" ;;
aarch64) cc=aarch64-linux-gnu-gcc;   qemu=aarch64; pkg="gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;;
s390x)   cc=s390x-linux-gnu-gcc;     qemu=s390x;   pkg="gcc-s390x-linux-gnu libc6-dev-s390x-cross" ;;
*) echo "unknown target $target"; echo "0 passed, 1 failed, 0 skipped"; exit 1 ;;
esac
if [ -n "$qemu" ]; then
    sysroot=/usr/${cc%-gcc}         # the cross libc: dynamic linker and libraries
    ldflags=""                      # dynamic, run with qemu -L: no static-getaddrinfo caveats
fi

name=$target; [ -n "$qemu" ] && name=qemu-$target

skip_all() {
    rm -f "$out/probe" "$out/probe.c"
    echo "suite $name skipped: $1"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
}

out=build/$target
mkdir -p "$out" || skip_all "cannot create $out"

command -v "$cc" >/dev/null 2>&1 || skip_all "$cc not installed (Debian: $pkg)"
printf 'int main(void) { return 0; }\n' > "$out/probe.c"
# shellcheck disable=SC2086
$cc -o "$out/probe" "$out/probe.c" $ldflags >/dev/null 2>&1 || skip_all "$cc cannot link a program (Debian: $pkg)"
run=""
if [ -n "$qemu" ]; then
    for q in qemu-$qemu-static qemu-$qemu; do
        command -v "$q" >/dev/null 2>&1 && { run="$q -L $sysroot"; break; }
    done
    [ -n "$run" ] || skip_all "neither qemu-$qemu-static nor qemu-$qemu installed (Debian: qemu-user-static)"
    $run "$out/probe" >/dev/null 2>&1 || skip_all "$run cannot run a $target program"
fi
rm -f "$out/probe" "$out/probe.c"

pass=0; fail=0; skip=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -s "$out/log" ] && sed 's/^/    /' "$out/log"; }
check() { what=$1; shift; if "$@" >"$out/log" 2>&1; then ok "$what"; else bad "$what"; fi; }

mach=$($cc -dumpmachine); [ "$target" = musl ] && mach="$(uname -m), musl libc"
echo "target $target: $cc ($mach), ${run:-native}"

# The library as a user builds it for this target, warnings as errors.
# shellcheck disable=SC2086
check "ka_client.c builds warning-free for $target ($W $cflags)" \
    $cc $W $thr $cflags -I. -c ka_client.c -o "$out/ka_client.o"

# The keepalive option names reach the object only from the code under their
# #ifdefs (they are its log messages); the guard fails to compile otherwise.
if [ -f "$out/ka_client.o" ]; then
    check "ka_client.o contains the TCP_KEEPIDLE/KEEPINTVL/KEEPCNT code" sh -c \
        "for o in TCP_KEEPIDLE TCP_KEEPINTVL TCP_KEEPCNT; do grep -q \$o '$out/ka_client.o' || { echo \"no \$o in ka_client.o\"; exit 1; }; done"
fi
# shellcheck disable=SC2086
check "ka_client.c sees the keepalive options and TCP_INFO under -std=c99" \
    $cc $W $thr $cflags -I. -c test/cross/lib_guard.c -o "$out/lib_guard.o"

# The suite binary is built from the guard, so the read-back test in it
# cannot have been compiled out.
rm -f "$out/unit"
# shellcheck disable=SC2086
check "loopback suite builds with its keepalive read-back compiled in" \
    $cc $W $thr $cflags -I. -Itest -o "$out/unit" test/cross/unit_guard.c test/testlib.c ka_client.c $ldflags

if [ -x "$out/unit" ]; then
    to=""
    command -v timeout >/dev/null 2>&1 && to="timeout 600"
    # shellcheck disable=SC2086
    KA_TEST_QUICK=1 $to $run "$out/unit" > "$out/unit.log" 2>&1
    rc=$?
    cat "$out/unit.log"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out/unit.log" | tail -n 1)
    if [ -z "$line" ]; then
        : > "$out/log"; bad "loopback suite ended without a summary (exit status $rc)"
    else
        p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
        f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
        k=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
        pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + ${k:-0}))
        [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && { : > "$out/log"; bad "loopback suite exit status $rc"; }
    fi
    : > "$out/log"
    check "keepalive read-back (getsockopt) ran and passed on $target" \
        grep -q '^ok *keepalive options are set on every socket' "$out/unit.log"
fi

rm -f "$out/log"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
