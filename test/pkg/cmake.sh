#!/bin/sh
# suite-cmake: ka_client taken by another CMake project in each of the three
# ways, each consumer (cmake/example/example.c) built against the shared and
# the static library and run:
#   find_package   after `make install` (staged with DESTDIR, so the package
#                  must find its files relative to itself) and after a CMake
#                  build's own install (CMAKE_INSTALL_PREFIX); a request for
#                  major version KA_MAJOR+1 must be refused by both
#   add_subdirectory  of this tree (cmake/consumers/subdir)
#   FetchContent   from a source tarball of this tree, by file:// URL and
#                  SHA-256 (cmake/consumers/fetch); no network needed
# The library's own CMake build runs with its tests and demos and
# KA_CLIENT_WERROR=ON. Ends with the summary line.
# Usage: test/pkg/cmake.sh   (from the top directory; MAKE honoured)
cd "$(dirname "$0")/../.." || exit 1
. test/pkg/lib.sh
top=$(pwd)

if ! have cmake; then
    skip "CMake consumers" "cmake not installed (Debian: cmake)"
    summary; exit
fi
cmake --version | head -n 1
gen=""
have ninja && gen="-G Ninja"

# consumer NAME SOURCE_DIR BUILD_DIR CMAKE_ARGS...: configure, build, run
# both programs; each must say it runs version KA_VERSION.
consumer() {
    name=$1 src=$2 b=$3; shift 3
    log=$b.log
    # shellcheck disable=SC2086
    check "$name: configure and build" cmake_step "$log" sh -c \
        'src=$1 b=$2; shift 2; cmake $0 -S "$src" -B "$b" "$@" && cmake --build "$b"' "$gen" "$src" "$b" "$@"
    for prog in example example_static; do
        [ -x "$b/$prog" ] || continue
        check "$name: $prog runs ka_client $KA_VERSION" sh -c \
            "'$b/$prog' > '$tmp/run' && grep -q '^ka_client $KA_VERSION ' '$tmp/run'"
    done
    if [ -x "$b/example" ] && have ldd; then
        check "$name: example loads libka_client.so.$KA_MAJOR" sh -c "ldd '$b/example' | grep -q 'libka_client.so.$KA_MAJOR => /'"
    fi
}

# refused NAME PREFIX: find_package(ka_client MAJOR+1) must fail.
refused() {
    next=$((KA_MAJOR + 1))
    # shellcheck disable=SC2086
    check "$1: find_package(ka_client $next) is refused" sh -c \
        "! cmake $gen -S cmake/example -B '$tmp/refuse-$1' -DCMAKE_PREFIX_PATH='$2' -DKA_EXAMPLE_VERSION=$next > '$tmp/refuse.log' 2>&1 &&
         grep -q 'compatible with requested version' '$tmp/refuse.log'"
}

# 1. find_package after make install, staged with DESTDIR.
stage=$tmp/stage
check "make install DESTDIR=<scratch> PREFIX=/usr/local" "$MAKE" -s install DESTDIR="$stage" PREFIX=/usr/local
consumer "find_package (make install)" cmake/example "$tmp/ex-make" -DCMAKE_PREFIX_PATH="$stage/usr/local"
refused "make install" "$stage/usr/local"

# 2. The library's own CMake build, then find_package after its install.
lb=$tmp/lib-build
check "CMake build of the library, tests and demos (-Werror)" cmake_step "$tmp/lib.log" sh -c \
    'cmake $0 -S . -B "$1" -DKA_CLIENT_WERROR=ON -DCMAKE_INSTALL_PREFIX="$2" && cmake --build "$1" && cmake --install "$1"' \
    "$gen" "$lb" "$tmp/cm"
for f in include/ka_client.h lib/libka_client.a lib/libka_client.so.$KA_VERSION lib/libka_client.so.$KA_MAJOR \
         lib/libka_client.so lib/pkgconfig/ka_client.pc lib/cmake/ka_client/ka_clientConfig.cmake \
         lib/cmake/ka_client/ka_clientConfigVersion.cmake lib/cmake/ka_client/ka_clientTargets.cmake bin/kacat; do
    [ -e "$tmp/cm/$f" ] || echo "$f" >> "$tmp/cm-missing"
done
check "cmake --install lays out header, libraries, .pc, package, kacat" test ! -s "$tmp/cm-missing"
[ -s "$tmp/cm-missing" ] && sed 's/^/    missing: /' "$tmp/cm-missing"
check "the CMake-built shared library exports only ka_ symbols" sh -c \
    "nm -D --defined-only '$lb/libka_client.so.$KA_VERSION' | awk 'NF >= 3 { print \$3 }' | grep -v '^ka_' | grep . && exit 1 || exit 0"
consumer "find_package (cmake --install)" cmake/example "$tmp/ex-cmake" -DCMAKE_PREFIX_PATH="$tmp/cm"
refused "cmake --install" "$tmp/cm"

# 3. add_subdirectory of this tree.
consumer "add_subdirectory" cmake/consumers/subdir "$tmp/ex-subdir" -DKA_CLIENT_SOURCE_DIR="$top"

# 4. FetchContent from a tarball of what the CMake build needs.
tarball=$tmp/ka_client-$KA_VERSION.tar.gz
if tar -czf "$tarball" --transform "s|^|ka_client-$KA_VERSION/|" \
        CMakeLists.txt ka_client.c ka_client.h LICENSE cmake mk/ka_client.map 2>"$tmp/tar.log"; then
    sum=$(sha256sum "$tarball" | cut -d' ' -f1)
    consumer "FetchContent (file:// URL)" cmake/consumers/fetch "$tmp/ex-fetch" \
        -DKA_CLIENT_URL="file://$tarball" -DKA_CLIENT_SHA256="$sum"
else
    bad "FetchContent: could not make the source tarball"; sed 's/^/    /' "$tmp/tar.log"
fi

summary
