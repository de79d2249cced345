#!/bin/sh
# suite-mingw-cmake: ka_client for Windows, built from Linux two ways.
#  - The CMake build cross-compiled with cmake/mingw-w64-x86_64.cmake
#    (demos too, -Werror) and installed: the DLL
#    bin/libka_client-MAJOR.dll, its import library lib/libka_client.dll.a,
#    the static library, the header, ka_client.pc and the CMake package. A
#    consumer (cmake/example) cross-built through find_package must import
#    the DLL when linked with ka_client::ka_client and must not with
#    ka_client::ka_client_static.
#  - Makefile.win's `shared`: the same DLL and import library, and a program
#    linked with -lka_client imports the DLL.
# Both DLLs must export the ka_ functions and nothing else. The programs are
# run under Wine only with KA_PKG_WINE=1: a fresh Wine prefix takes ~20 s to
# boot, and suite wine already runs the Windows programs.
# Usage: test/pkg/mingw.sh   (from the top directory; MAKE, WIN_CC honoured)
cd "$(dirname "$0")/../.." || exit 1
. test/pkg/lib.sh
triplet=x86_64-w64-mingw32
top=$(pwd)
cc=${WIN_CC:-$triplet-gcc}
objdump=$triplet-objdump
dll=libka_client-$KA_MAJOR.dll

have "$cc" || { skip "Windows builds" "no $cc (Debian: gcc-mingw-w64-x86-64)"; summary; exit; }
have "$objdump" || { skip "Windows builds" "no $objdump (Debian: binutils-mingw-w64-x86-64)"; summary; exit; }

# exports FILE: the names in a DLL's export table, one a line.
exports() { "$objdump" -p "$1" | sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' | sed -n 's/^[[:space:]]*\[ *[0-9]*\] //p'; }
# imports_dll EXE: EXE's import table names the DLL.
imports_dll() { "$objdump" -p "$1" | grep -q "DLL Name: $dll"; }
# only_ka FILE: FILE exports at least one symbol, every one ka_.
only_ka() {
    exports "$1" > "$tmp/exp"
    [ -s "$tmp/exp" ] || { echo "no export table in $1"; return 1; }
    ! grep -v '^ka_' "$tmp/exp"
}

if have cmake; then
    b=$tmp/win-build w=$tmp/win
    # -Os and no test program keep it quick: suite wine builds and runs unit.exe.
    check "CMake cross build (toolchain file, demos, -Os -Werror) and install" cmake_step "$tmp/win.log" sh -c \
        'cmake -S . -B "$0" -DCMAKE_TOOLCHAIN_FILE="$3" -DKA_MINGW_TRIPLET="$2" -DCMAKE_BUILD_TYPE=MinSizeRel \
              -DKA_CLIENT_TESTS=OFF -DKA_CLIENT_WERROR=ON -DCMAKE_INSTALL_PREFIX="$1" &&
         cmake --build "$0" && cmake --install "$0"' "$b" "$w" "$triplet" "$top/cmake/mingw-w64-x86_64.cmake"
    : > "$tmp/missing"
    for f in bin/$dll lib/libka_client.dll.a lib/libka_client.a include/ka_client.h bin/kacat.exe \
             lib/pkgconfig/ka_client.pc lib/cmake/ka_client/ka_clientConfig.cmake \
             lib/cmake/ka_client/ka_clientTargets.cmake lib/cmake/ka_client/ka_clientConfigVersion.cmake; do
        [ -e "$w/$f" ] || echo "$f" >> "$tmp/missing"
    done
    check "installed: $dll, import and static libraries, header, .pc, package, kacat.exe" test ! -s "$tmp/missing"
    sed 's/^/    missing: /' "$tmp/missing"
    check "ka_client.pc says Libs.private: -lws2_32" grep -qx "Libs.private: -lws2_32" "$w/lib/pkgconfig/ka_client.pc"
    [ -f "$w/bin/$dll" ] && check "the CMake-built $dll exports only ka_ functions" only_ka "$w/bin/$dll"

    e=$tmp/win-example
    check "find_package consumer cross-built against the installed package" cmake_step "$tmp/ex.log" sh -c \
        'cmake -S cmake/example -B "$0" -DCMAKE_TOOLCHAIN_FILE="$3" -DKA_MINGW_TRIPLET="$2" \
              -Dka_client_DIR="$1/lib/cmake/ka_client" && cmake --build "$0"' "$e" "$w" "$triplet" "$top/cmake/mingw-w64-x86_64.cmake"
    [ -f "$e/example.exe" ] && check "example.exe (ka_client::ka_client) imports $dll" imports_dll "$e/example.exe"
    [ -f "$e/example_static.exe" ] && check "example_static.exe (ka_client::ka_client_static) does not" \
        sh -c "! $objdump -p '$e/example_static.exe' | grep -q 'DLL Name: libka_client'"
else
    skip "CMake cross build" "cmake not installed (Debian: cmake)"
fi

# Makefile.win's DLL. The parent make's variables are for the host build.
check "make -f Makefile.win shared" env MAKEFLAGS= MAKEOVERRIDES= "$MAKE" -s -f Makefile.win CC="$cc" \
    CFLAGS="-O2 -g" LDFLAGS= WARN="-std=c99 -Wall -Wextra -Wpedantic -Werror" shared
if [ -f "build-win/$dll" ] && [ -f build-win/libka_client.dll.a ]; then
    check "Makefile.win's $dll exports only ka_ functions" only_ka "build-win/$dll"
    check "a program links with -Lbuild-win -lka_client" \
        "$cc" -std=c99 -Wall -Wextra -Wpedantic -Werror -I. -o "$tmp/shlib_test.exe" test/pkg/shlib_test.c -Lbuild-win -lka_client
    [ -f "$tmp/shlib_test.exe" ] && check "that program imports $dll" imports_dll "$tmp/shlib_test.exe"
fi

# Running them costs a Wine prefix.
wine=$(command -v wine 2>/dev/null)
if [ "${KA_PKG_WINE:-0}" = 1 ] && [ -n "$wine" ] && [ -f "$tmp/shlib_test.exe" ]; then
    export WINEPREFIX="$tmp/wineprefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
    unset DISPLAY WAYLAND_DISPLAY
    if timeout 300 "$wine" wineboot -i </dev/null >"$tmp/wineboot.log" 2>&1; then
        cp "build-win/$dll" "$tmp/"
        check "shlib_test.exe runs under Wine with Makefile.win's $dll" timeout 120 "$wine" "$tmp/shlib_test.exe"
        if [ -f "$e/example.exe" ]; then
            cp "$w/bin/$dll" "$e/"
            check "example.exe runs under Wine with the CMake-built $dll" timeout 120 "$wine" "$e/example.exe"
        fi
    else
        bad "wineboot -i in a fresh prefix"; tail -n 20 "$tmp/wineboot.log" | sed 's/^/    /'
    fi
    ws=$(command -v wineserver 2>/dev/null || echo /usr/lib/wine/wineserver)
    [ -x "$ws" ] && timeout 60 "$ws" -k >/dev/null 2>&1
else
    skip "running the DLL's programs under Wine" "set KA_PKG_WINE=1 (a fresh prefix costs ~20 s; suite wine runs the Windows programs)"
fi

summary
