#!/bin/sh
# Runs each command line given as one argument, shows its output, and adds
# up the "N passed, N failed[, N skipped]" line each one ends with. A
# program that ends without that line (a crash, a sanitizer abort) or exits
# non-zero after it counts as one more failure. Ends with the total line.
# Usage: test/sumrun.sh "cmd args" "cmd args" ...
tp=0; tf=0; ts=0; bad=""
log=$(mktemp) || exit 1
trap 'rm -f "$log" "$log.rc"' EXIT INT TERM
for cmd in "$@"; do
    echo "--- $cmd"
    { sh -c "$cmd" 2>&1; echo $? > "$log.rc"; } | tee "$log"
    rc=$(cat "$log.rc")
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "--- $cmd: exit $rc with no summary line: one failure"; tf=$((tf + 1)); bad="$bad [$cmd]"; continue
    fi
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    k=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
    if [ "$rc" != 0 ] && [ "$f" -eq 0 ]; then
        echo "--- $cmd: exit $rc after its summary (sanitizer or valgrind finding?): one failure"; f=1
    fi
    tp=$((tp + p)); tf=$((tf + f)); ts=$((ts + ${k:-0}))
    [ "$f" -gt 0 ] && bad="$bad [$cmd]"
done
[ -n "$bad" ] && echo "--- failing:$bad"
echo "$tp passed, $tf failed, $ts skipped"
[ "$tf" -eq 0 ]
