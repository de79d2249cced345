#!/bin/sh
# The fuzz suite: builds each libFuzzer target with clang
# (-fsanitize=fuzzer,address,undefined), replays the checked-in seed corpus,
# then fuzzes for FUZZ_TIME seconds (default 30). New inputs go to a temp
# dir, never into fuzz/corpus; a crash, leak or timeout leaves its input in
# build/harden/fuzz/artifacts/ and fails the target. Without clang's fuzzer
# runtime every target is skipped, with the reason.
# Usage: CLANG=clang MAKE=make FUZZ_TIME=30 sh fuzz/run.sh TARGET...
CLANG=${CLANG:-clang}
MAKE=${MAKE:-make}
FUZZ_TIME=${FUZZ_TIME:-30}
out=build/harden/fuzz
pass=0; fail=0; skip=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

skip_all() {
    echo "    skipped: $1"
    skip=$ntargets
    echo "$pass passed, $fail failed, $skip skipped"
    exit 0
}
ntargets=$#

printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$tmp/probe.c"
command -v "$CLANG" >/dev/null 2>&1 || skip_all "$CLANG not installed"
"$CLANG" -fsanitize=fuzzer,address,undefined -o "$tmp/probe" "$tmp/probe.c" >/dev/null 2>&1 \
    || skip_all "$CLANG cannot link -fsanitize=fuzzer (libclang-rt-*-dev missing?)"

if ! $MAKE -s fuzz-build; then
    echo "FAIL building the fuzz targets"
    echo "0 passed, $ntargets failed, 0 skipped"
    exit 1
fi
mkdir -p "$out/artifacts"
# each target fuzzes on a core of its own (the machine has two), all at once:
# -max_total_time is wall time, so running them side by side costs nothing
# in inputs per target and halves the suite's time
fuzz_one() {    # fuzz_one TARGET: its log in $tmp/TARGET.log, its exit code in .rc
    t=$1
    mkdir -p "$tmp/$t"
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb: a leak
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$out/$t" -max_total_time="$FUZZ_TIME" -timeout=10 -rss_limit_mb=2048 -max_len=512 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" "$tmp/$t" "fuzz/corpus/$t" \
        > "$tmp/$t.log" 2>&1
    echo $? > "$tmp/$t.rc"
}
t0=$(date +%s)
for t in "$@"; do fuzz_one "$t" & done
wait
for t in "$@"; do
    log="$tmp/$t.log"
    rc=$(cat "$tmp/$t.rc" 2>/dev/null || echo 1)
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -nE 's/.*cov: ([0-9]+).*/\1/p')
    if [ "$rc" -eq 0 ]; then
        pass=$((pass + 1))
        echo "ok   $t: ${runs:-?} inputs in $(( $(date +%s) - t0 )) s, coverage ${cov:-?}, no crash"
    else
        fail=$((fail + 1))
        grep -E -A40 'ERROR|runtime error|deadly|descriptor|SUMMARY' "$log" | head -n 80 | sed 's/^/    /'
        echo "FAIL $t (exit $rc; reproducer in $out/artifacts/)"
    fi
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
