#!/bin/sh
# Build checks: what a user who drops the two files into their tree relies on.
# Usage: test/build.sh   (CC defaults to cc; clang and c++ are used if present)
CC=${CC:-cc}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
pass=0; fail=0; skip=0
ok()   { pass=$((pass + 1)); echo "ok   $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL $1"; }
skip() { skip=$((skip + 1)); echo "skip $1"; }
check() { name=$1; shift; if "$@" >"$tmp/out" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/    /' "$tmp/out"; fi; }

W="-std=c99 -Wall -Wextra -Wpedantic -Werror"

# The header includes what its declarations need and compiles on its own.
printf '#include "ka_client.h"\nint main(void) { fd_set s; FD_ZERO(&s); return (int)sizeof(ka_config) == 0; }\n' > "$tmp/h.c"
check "header compiles on its own ($CC)" $CC $W -I. "$tmp/h.c" -o "$tmp/h"
if command -v c++ >/dev/null 2>&1; then
    cp "$tmp/h.c" "$tmp/h.cpp"
    check "header compiles as C++" c++ -Wall -Wextra -Wpedantic -Werror -I. -c "$tmp/h.cpp" -o "$tmp/hpp.o"
else skip "header as C++: no c++ compiler"; fi

# Plain -std=c99 with no feature macros still gets keepalive tuning and the
# Linux busy-path deadline: the option names appear only in the code
# compiled under their #ifdefs, and TCP_INFO must be visible to ka_client.c
# after its own feature macros and includes.
check "plain 'cc -std=c99 -c ka_client.c' builds" $CC -std=c99 -c ka_client.c -o "$tmp/plain.o"
for opt in TCP_KEEPIDLE TCP_KEEPINTVL TCP_KEEPCNT; do
    check "plain build sets $opt" grep -q "$opt" "$tmp/plain.o"
done
if [ "$(uname -s)" = Linux ]; then
    printf '#include "ka_client.c"\n#ifndef TCP_INFO\n#error "no TCP_INFO: the busy-path deadline is compiled out"\n#endif\n' > "$tmp/ti.c"
    check "plain build sees TCP_INFO (Linux busy-path deadline)" $CC -std=c99 -I. -c "$tmp/ti.c" -o "$tmp/ti.o"
fi

for cc in gcc clang; do
    if command -v $cc >/dev/null 2>&1; then
        check "warning-free under $cc -O2 and -O0" sh -c "$cc $W -O2 -c ka_client.c -o $tmp/a.o && $cc $W -O0 -c ka_client.c -o $tmp/b.o"
    else skip "$cc not installed"; fi
done

# The size switch: -DKA_NO_LOG builds clean and drops the snprintf dependency.
check "-DKA_NO_LOG builds warning-free and needs no snprintf" sh -c \
    "$CC $W -DKA_NO_LOG -Os -c ka_client.c -o $tmp/nolog.o && ! nm -u $tmp/nolog.o | grep -q printf"

# The README's example is real code.
sed -n '/^```c$/,/^```$/p' README.md | sed '1d;$d' | sed '/^```/,$d' > "$tmp/example.c"
check "README example compiles and links" $CC $W -I. "$tmp/example.c" ka_client.c -o "$tmp/example"

# Every external symbol carries the prefix.
check "every external symbol of ka_client.o starts with ka_" sh -c \
    "nm -g --defined-only $tmp/plain.o | awk '{print \$3}' | grep -v '^ka_' | grep . && exit 1 || exit 0"

# The Makefile names each fragment it includes: a new mk/*.mk must be added
# there, or its suites would silently never run.
for f in mk/*.mk; do
    check "Makefile includes $f" grep -q "^include $f\( \|\$\)" Makefile
done

# Windows: the header works whether <windows.h> (which may bring the old
# <winsock.h>) came before it or after, and -DKA_NO_THREADS still builds.
if command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; then
    printf '#include <windows.h>\n#include "ka_client.h"\nint main(void) { ka_config k; ka_config_init(&k); return 0; }\n' > "$tmp/w1.c"
    printf '#include "ka_client.h"\n#include <windows.h>\nint main(void) { ka_config k; ka_config_init(&k); return 0; }\n' > "$tmp/w2.c"
    check "Windows: <windows.h> before the header" x86_64-w64-mingw32-gcc $W -I. -c "$tmp/w1.c" -o "$tmp/w1.o"
    check "Windows: <windows.h> after the header" x86_64-w64-mingw32-gcc $W -I. -c "$tmp/w2.c" -o "$tmp/w2.o"
else
    skip "Windows header order (no x86_64-w64-mingw32-gcc)"
fi
check "-DKA_NO_THREADS builds warning-free (blocking lookups)" $CC $W -DKA_NO_THREADS -c ka_client.c -o "$tmp/nothr.o"

# make install and the packages it writes: suites install, shared and cmake.

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
