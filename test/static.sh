#!/bin/sh
# Static analysis suite: cppcheck and clang-tidy over the library,
# the tests and the fuzz targets, with no findings beyond the suppressions
# (test/cppcheck.supp, .clang-tidy: each with its reason); and nm: every
# external symbol ka_client.o defines starts with ka_. A missing tool is a
# skip, with the reason. Ends with "N passed, N failed, N skipped".
CPPCHECK=${CPPCHECK:-cppcheck}
CLANG_TIDY=${CLANG_TIDY:-clang-tidy}
NM=${NM:-nm}
SRC="ka_client.c test/testlib.c test/unit.c test/harden.c test/soak.c"
for f in fuzz/*.c; do [ -f "$f" ] && SRC="$SRC $f"; done
# clang-tidy is slow (its analyzer): the library, its harness and the fuzz
# targets; cppcheck reads everything.
TIDY_SRC="ka_client.c test/testlib.c"
for f in fuzz/*.c; do [ -f "$f" ] && TIDY_SRC="$TIDY_SRC $f"; done
# KA_ONE_CORE=1 (test/check.sh, running this beside other suites): one
# process at a time.
jobs=2
[ "${KA_ONE_CORE:-0}" = 1 ] && jobs=1
pass=0; fail=0; skip=0
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT INT TERM

result() {  # name status(0 pass, 1 fail, 2 skip) [why]
    case $2 in
    0) pass=$((pass + 1)); echo "ok   $1" ;;
    1) fail=$((fail + 1)); echo "FAIL $1" ;;
    *) skip=$((skip + 1)); echo "    skipped: $3"; echo "skip $1" ;;
    esac
}

# cppcheck would try every #ifdef combination of ka_client.c (a minute and
# more); instead each platform the code is built for is named: Linux (every
# file), Linux without threads, and Windows.
cppcheck_one() {    # cppcheck_one DEFINES FILES...
    defs=$1; shift
    # shellcheck disable=SC2086
    "$CPPCHECK" -j$jobs $defs --enable=warning,style,performance,portability --std=c99 --inline-suppr \
        --suppressions-list=test/cppcheck.supp --error-exitcode=1 -q -I. -Itest "$@" >> "$out" 2>&1
}
# clang-tidy's analyzer on ka_client.c is the long pole (a minute and more on
# one core): it starts first, in the background, and cppcheck runs beside it
# (after it, with one core).
tidy_pid=
if command -v "$CLANG_TIDY" >/dev/null 2>&1; then
    # two files at a time; -quiet still prints "N warnings generated" for
    # suppressed ones on stderr, so findings are read off the text
    for f in $TIDY_SRC; do echo "$f"; done |
        xargs -P "$jobs" -I{} sh -c '"$0" -quiet "$1" -- -std=c99 -I. -Itest > "$1.tidy" 2>&1; :' "$CLANG_TIDY" {} &
    tidy_pid=$!
    [ "$jobs" = 1 ] && wait "$tidy_pid"     # one core: cppcheck after it, not beside it
fi

if command -v "$CPPCHECK" >/dev/null 2>&1; then
    : > "$out"
    rc=0
    cppcheck_one "-D__linux__" $SRC || rc=1
    cppcheck_one "-D__linux__ -DKA_NO_THREADS" ka_client.c || rc=1
    cppcheck_one "-D_WIN32" ka_client.c test/testlib.c || rc=1
    sed 's/^/    /' "$out"
    result "cppcheck finds nothing (Linux, Linux without threads, Windows)" $rc
else
    result "cppcheck finds nothing" 2 "$CPPCHECK not installed"
fi

if [ -n "$tidy_pid" ]; then
    [ "$jobs" = 1 ] || wait "$tidy_pid"
    bad=0
    for f in $TIDY_SRC; do
        grep -E -A3 'warning:|error:' "$f.tidy" | sed 's/^/    /'
        grep -qE 'warning:|error:' "$f.tidy" && bad=1
        rm -f "$f.tidy"
    done
    result "clang-tidy finds nothing (.clang-tidy)" $bad
else
    result "clang-tidy finds nothing (.clang-tidy)" 2 "$CLANG_TIDY not installed"
fi

if command -v "$NM" >/dev/null 2>&1 && [ -f ka_client.o ]; then
    # defined external symbols: T (text), D/B/R (data), C (common), W/V (weak)
    others=$("$NM" -g --defined-only ka_client.o | awk 'NF >= 3 { print $3 }' | grep -v '^ka_')
    n=$("$NM" -g --defined-only ka_client.o | awk 'NF >= 3' | wc -l)
    if [ -n "$others" ] || [ "$n" -eq 0 ]; then
        echo "    external symbols without the ka_ prefix:"; echo "$others" | sed 's/^/      /'
        result "every external symbol of ka_client.o starts with ka_" 1
    else
        echo "    $n external symbols, all ka_*"
        result "every external symbol of ka_client.o starts with ka_" 0
    fi
else
    result "every external symbol of ka_client.o starts with ka_" 2 "$NM or ka_client.o missing"
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
