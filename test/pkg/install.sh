#!/bin/sh
# suite-install: `make install DESTDIR=... PREFIX=...` lays out everything a
# package needs, and `make uninstall` takes all of it away again. Checks the
# header, both libraries and the shared library's links, ka_client.pc (its
# prefix, version and -pthread), the CMake package, kacat (it runs), the
# LICENSE and, once the tree has them, the manual pages (installed and
# clean under mandoc -Tlint). Ends with the summary line.
# Usage: test/pkg/install.sh   (from the top directory; MAKE honoured)
cd "$(dirname "$0")/../.." || exit 1
. test/pkg/lib.sh

root=$tmp/root
p=/opt/ka                       # not the default, so PREFIX is seen to count
d=$root$p
check "make install DESTDIR=<scratch> PREFIX=$p" "$MAKE" -s install DESTDIR="$root" PREFIX=$p

check "include/ka_client.h is the tree's header" cmp ka_client.h "$d/include/ka_client.h"
check "lib/libka_client.a" test -f "$d/lib/libka_client.a"
check "lib/libka_client.so.$KA_VERSION" test -f "$d/lib/libka_client.so.$KA_VERSION"
check "lib/libka_client.so.$KA_MAJOR -> libka_client.so.$KA_VERSION" \
    test "$(readlink "$d/lib/libka_client.so.$KA_MAJOR")" = "libka_client.so.$KA_VERSION"
check "lib/libka_client.so -> libka_client.so.$KA_MAJOR" \
    test "$(readlink "$d/lib/libka_client.so")" = "libka_client.so.$KA_MAJOR"

pc=$d/lib/pkgconfig/ka_client.pc
check "lib/pkgconfig/ka_client.pc names prefix $p" grep -qx "prefix=$p" "$pc"
check "ka_client.pc says Version: $KA_VERSION" grep -qx "Version: $KA_VERSION" "$pc"
check "ka_client.pc has Libs.private: -pthread" grep -qx "Libs.private: -pthread" "$pc"
check "ka_client.pc has no template left" sh -c "! grep -q @ '$pc'"

cm=$d/lib/cmake/ka_client
for f in ka_clientConfig.cmake ka_clientConfigVersion.cmake ka_clientTargets.cmake; do
    check "lib/cmake/ka_client/$f, no template left" sh -c "test -f '$cm/$f' && ! grep -q '@[A-Z_]*@' '$cm/$f'"
done
check "the CMake package finds its files relative to itself" grep -q '_ka_here}/../../../lib"' "$cm/ka_clientTargets.cmake"

check "bin/kacat runs (--help)" "$d/bin/kacat" --help
check "share/doc/ka_client/LICENSE" cmp LICENSE "$d/share/doc/ka_client/LICENSE"

for page in doc/kacat.1 doc/ka_client.3; do
    s=${page##*.}
    if [ ! -f "$page" ]; then
        skip "$page installed and lint-free" "the tree has no $page yet"
        continue
    fi
    check "$page installed in share/man/man$s" cmp "$page" "$d/share/man/man$s/${page##*/}"
    if have mandoc; then
        check "$page: mandoc -Tlint -Wwarning finds nothing" mandoc -Tlint -Wwarning "$page"
    else
        skip "$page lint" "mandoc not installed (Debian: mandoc)"
    fi
done

check "make uninstall DESTDIR=<scratch> PREFIX=$p" "$MAKE" -s uninstall DESTDIR="$root" PREFIX=$p
left=$(find "$root" ! -type d | sed "s|^$root||" | tr '\n' ' ')
check "uninstall leaves no file behind${left:+: $left}" test -z "$left"

summary
