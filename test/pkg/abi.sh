#!/bin/sh
# The shared library's ABI against the committed baseline abi/ka_client.abi
# (libabigail: abidw writes it, abidiff compares; Debian: abigail-tools).
#
#   test/pkg/abi.sh check abi/ka_client.abi    suite-abi
#   test/pkg/abi.sh dump  abi/ka_client.abi    make abi-dump: rewrite the baseline
#
# The baseline is the ABI of the last release tag (see mk/pkg.mk for when to
# rewrite it). Both sides are built here the same way, whatever CFLAGS say:
# gcc -O2 -g (abidw reads the DWARF), -fPIC, the version script, and
# described with the public header only, so the client's private struct
# may change freely. abidiff's exit status is a bit field: 1 error, 2 usage
# error, 4 the ABI changed, 8 the change is incompatible for sure (a removed
# symbol). Any bit fails the check: a changed parameter, return or struct
# type only sets 4. Added functions are left out of the comparison
# (--no-added-syms) and appended enumerators are harmless to libabigail, so
# those two pass. Three control builds prove the check can tell: an added
# function with an appended enumerator passes, a renamed function is
# incompatible, a ka_config with one more field is a change.
# Ends with "N passed, N failed, N skipped" (check).
cd "$(dirname "$0")/../.." || exit 1
mode=${1:?usage: test/pkg/abi.sh check|dump BASELINE}
baseline=${2:?usage: test/pkg/abi.sh check|dump BASELINE}
. test/pkg/lib.sh
cc=${ABI_CC:-gcc}
have "$cc" || cc=cc
out=build/abi
so=libka_client.so.$KA_VERSION
ABIDW_FLAGS="--drop-private-types --no-show-locs --no-corpus-path --no-comp-dir-path --type-id-style hash"

# build_lib DIR [EXTRA_SOURCE...]: DIR/$so from DIR/ka_client.[ch] (copied
# from the tree unless DIR has them), as the ABI sees it.
build_lib() {
    dir=$1; shift
    mkdir -p "$dir"
    [ -f "$dir/ka_client.c" ] || cp ka_client.c ka_client.h "$dir/"
    "$cc" -std=c99 -Wall -Wextra -Wpedantic -O2 -g -fPIC -pthread -shared \
        -Wl,-soname,libka_client.so.$KA_MAJOR -Wl,--version-script=mk/ka_client.map \
        -I"$dir" -o "$dir/$so" "$dir/ka_client.c" "$@"
}

# dump DIR FILE: the ABI of DIR's library, described by DIR's header.
dump() { abidw $ABIDW_FLAGS --header-file "$1/ka_client.h" --out-file "$2" "$1/$so"; }

# compare FILE: abidiff's status against the baseline; its report in $tmp/report.
compare() {
    abidiff --no-added-syms --no-show-locs "$baseline" "$1" > "$tmp/report" 2>&1
}

bits() {  # STATUS: abidiff's bits in words
    w=""
    [ $(($1 & 1)) -ne 0 ] && w="$w error"
    [ $(($1 & 2)) -ne 0 ] && w="$w usage-error"
    [ $(($1 & 4)) -ne 0 ] && w="$w abi-change"
    [ $(($1 & 8)) -ne 0 ] && w="$w incompatible"
    w=${w# }
    echo "${w:-none}"
}

if ! have abidw || ! have abidiff; then
    if [ "$mode" = dump ]; then echo "abi-dump: abidw not installed (Debian: abigail-tools)"; exit 1; fi
    skip "ABI check" "abidw/abidiff not installed (Debian: abigail-tools)"
    summary; exit
fi

rm -rf "$out"
if ! build_lib "$out/current" > "$tmp/build.log" 2>&1; then
    cat "$tmp/build.log"
    [ "$mode" = dump ] && exit 1
    bad "the shared library builds for the ABI check"; summary; exit
fi

if [ "$mode" = dump ]; then
    mkdir -p "$(dirname "$baseline")"
    dump "$out/current" "$baseline" || exit 1
    echo "abi-dump: wrote $baseline: $(grep -c '<elf-symbol ' "$baseline") symbols, libka_client.so.$KA_MAJOR $KA_VERSION ($("$cc" --version | head -n 1))"
    exit 0
fi

[ -f "$baseline" ] || { bad "baseline $baseline exists (make abi-dump writes it)"; summary; exit; }
echo "abidiff $(abidiff --version | awk '{ print $NF }'), baseline $baseline"

dump "$out/current" "$out/current.abi"
compare "$out/current.abi"; rc=$?
if [ $rc -eq 0 ]; then
    ok "the ABI is the baseline's, or adds to it"
else
    bad "the ABI differs from the baseline ($(bits $rc))"
    sed 's/^/    /' "$tmp/report"
    echo "    An intended break needs a new KA_VERSION_MAJOR and make abi-dump; see mk/pkg.mk."
fi
want=libka_client.so.$KA_MAJOR
had=$(sed -n "1s/.* soname='\([^']*\)'.*/\1/p" "$baseline")
check "the soname is the baseline's ($want; baseline: ${had:-none})" test "$had" = "$want"

# The controls, each a variant of this tree's source.
v=$out/added
mkdir -p "$v" && cp ka_client.c ka_client.h "$v/"
printf 'int ka_abi_probe_added(void);\nint ka_abi_probe_added(void) { return 1; }\n' > "$v/added.c"
# A new last enumerator: the old last one gains a comma unless it has one.
awk '/^} ka_reason;/ && have {
         code = prev; note = ""; i = index(code, "/*")
         if (i) { note = " " substr(code, i); code = substr(code, 1, i - 1) }
         sub(/[ \t]+$/, "", code)
         if (code !~ /,$/) code = code ","
         print code note; print "    KA_REASON_ABI_PROBE"; print; have = 0; next }
     { if (have) print prev; prev = $0; have = 1 }
     END { if (have) print prev }' ka_client.h > "$v/ka_client.h"
if grep -q KA_REASON_ABI_PROBE "$v/ka_client.h" && build_lib "$v" "$v/added.c" > "$tmp/build.log" 2>&1 \
        && dump "$v" "$v.abi"; then
    compare "$v.abi"; rc=$?
    check "control: a new function and an appended enumerator pass (status $rc: $(bits $rc))" test $rc -eq 0
    [ $rc -ne 0 ] && sed 's/^/    /' "$tmp/report"
else
    bad "control: could not build the added-function variant"; sed 's/^/    /' "$tmp/build.log"
fi

v=$out/renamed
if build_lib "$v" -Dka_version_num=ka_abi_probe_renamed > "$tmp/build.log" 2>&1 && dump "$v" "$v.abi"; then
    compare "$v.abi"; rc=$?
    check "control: a renamed (removed) function is incompatible (status $rc: $(bits $rc))" test $((rc & 8)) -ne 0
else
    bad "control: could not build the renamed-function variant"; sed 's/^/    /' "$tmp/build.log"
fi

v=$out/grown
mkdir -p "$v" && cp ka_client.c ka_client.h "$v/"
sed -i 's/^typedef struct ka_config {.*$/&\n    int ka_abi_probe_field;/' "$v/ka_client.h"
if grep -q ka_abi_probe_field "$v/ka_client.h" && build_lib "$v" > "$tmp/build.log" 2>&1 && dump "$v" "$v.abi"; then
    compare "$v.abi"; rc=$?
    check "control: ka_config with a new field is a change (status $rc: $(bits $rc))" test $((rc & 4)) -ne 0
else
    bad "control: could not build the grown-ka_config variant"; sed 's/^/    /' "$tmp/build.log"
fi

summary
