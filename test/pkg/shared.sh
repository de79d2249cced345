#!/bin/sh
# suite-shared: the shared library as a user gets it. Installs into a
# scratch PREFIX with `make install`, then checks the file names and links
# (libka_client.so -> .so.MAJOR -> .so.X.Y.Z), the soname, that only ka_
# symbols are exported and nothing is left undefined, and runs
# test/pkg/shlib_test.c linked against the installed library two ways:
# -L/-rpath by hand and through pkg-config. Ends with the summary line.
# Usage: test/pkg/shared.sh   (from the top directory; CC, MAKE honoured)
cd "$(dirname "$0")/../.." || exit 1
. test/pkg/lib.sh
CC=${CC:-cc}
W="-std=c99 -Wall -Wextra -Wpedantic -Werror"

if [ "$(uname -s)" != Linux ]; then
    skip "shared library suite" "written for Linux ELF (ldd, readelf); this is $(uname -s)"
    summary; exit
fi

prefix=$tmp/prefix
lib=$prefix/lib
check "make install PREFIX=<scratch>" "$MAKE" -s install PREFIX="$prefix"

so=libka_client.so
check "$so.$KA_VERSION is a file" test -f "$lib/$so.$KA_VERSION" -a ! -L "$lib/$so.$KA_VERSION"
check "$so.$KA_MAJOR links to $so.$KA_VERSION" test "$(readlink "$lib/$so.$KA_MAJOR")" = "$so.$KA_VERSION"
check "$so links to $so.$KA_MAJOR" test "$(readlink "$lib/$so")" = "$so.$KA_MAJOR"

soname=$(readelf -d "$lib/$so.$KA_VERSION" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
check "soname is $so.$KA_MAJOR (it is: ${soname:-none})" test "$soname" = "$so.$KA_MAJOR"

nm -D --defined-only "$lib/$so.$KA_VERSION" | awk 'NF >= 3 { print $3 }' > "$tmp/exports"
n=$(wc -l < "$tmp/exports")
others=$(grep -v '^ka_' "$tmp/exports" | tr '\n' ' ')
check "exports only ka_ symbols ($n exported${others:+; also: $others})" sh -c "[ $n -gt 0 ] && [ -z '$others' ]"
# Every function the header declares is exported.
sed -n 's/^[A-Za-z_][A-Za-z_ *]*[ *]\(ka_[a-z_0-9]*\)(.*/\1/p' ka_client.h | sort -u > "$tmp/declared"
missing=$(sort -u "$tmp/exports" | comm -23 "$tmp/declared" - | tr '\n' ' ')
check "exports every function ka_client.h declares ($(wc -l < "$tmp/declared")${missing:+; missing: $missing})" test -z "$missing"
check "nothing left undefined (ldd -r)" sh -c "! ldd -r '$lib/$so.$KA_VERSION' 2>&1 | grep -q 'undefined symbol'"

# By hand: -L and -rpath into the scratch prefix.
check "a program builds against it with -L/-rpath" \
    $CC $W -I"$prefix/include" -o "$tmp/by_hand" test/pkg/shlib_test.c -L"$lib" -Wl,-rpath,"$lib" -lka_client
if [ -x "$tmp/by_hand" ]; then
    check "the program loads the installed library (ldd)" sh -c "ldd '$tmp/by_hand' | grep -q '$so.$KA_MAJOR => $lib/$so.$KA_MAJOR'"
    check "the program runs: version and calls through the .so" "$tmp/by_hand"
fi

# Through pkg-config, as a Makefile-based consumer would.
if have pkg-config; then
    export PKG_CONFIG_PATH="$lib/pkgconfig"
    check "pkg-config --modversion says $KA_VERSION" test "$(pkg-config --modversion ka_client)" = "$KA_VERSION"
    check "pkg-config --static --libs adds -pthread" sh -c "pkg-config --static --libs ka_client | grep -q -- -pthread"
    # shellcheck disable=SC2046
    check "a program builds with pkg-config's flags" \
        $CC $W $(pkg-config --cflags ka_client) -o "$tmp/by_pc" test/pkg/shlib_test.c \
        $(pkg-config --libs ka_client) -Wl,-rpath,"$lib"
    [ -x "$tmp/by_pc" ] && check "the pkg-config-built program runs" "$tmp/by_pc"
    # shellcheck disable=SC2046
    check "a static program builds with pkg-config --static" \
        $CC $W $(pkg-config --cflags ka_client) -o "$tmp/static" test/pkg/shlib_test.c \
        "$lib/libka_client.a" $(pkg-config --static --libs-only-other ka_client)
    [ -x "$tmp/static" ] && check "the static program runs and needs no libka_client.so" \
        sh -c "! ldd '$tmp/static' | grep -q libka_client && '$tmp/static'"
else
    skip "pkg-config consumers" "pkg-config not installed (Debian: pkgconf)"
fi

summary
