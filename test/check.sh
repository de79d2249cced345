#!/bin/sh
# Runs each suite named on the command line as `make suite-NAME`, shows its
# output, and sums the "N passed, N failed[, N skipped]" line each one ends
# with. A suite that fails without such a line counts as one failure.
# Each suite's make runs with -j2: a suite's prerequisites are build
# products only, so what runs in parallel is compilation (the machine this
# is tuned for has two cores), never two tests at once.
# --beside SUITES names suites that use the CPU and nothing else (no
# sockets, no clock): they start at once, in the background, on one core
# (KA_ONE_CORE=1), while the others run one at a time beside them (most of
# those sleep on timers and sockets); each is reported at its place in the
# order. Their prerequisites must already be built.
# Usage: test/check.sh [--beside "SUITE..."] MAKE SUITE...
beside=""
if [ "$1" = --beside ]; then beside=$2; shift 2; fi
make=$1; shift
tp=0; tf=0; ts=0; bad=""
log=$(mktemp) || exit 1
trap 'rm -f "$log" "$log".bg.*; [ -z "$bgpids" ] || kill $bgpids 2>/dev/null' EXIT INT TERM
start=$(date +%s)
bgpids=""
for s in $beside; do
    case " $* " in *" $s "*) ;; *) continue ;; esac
    ( b0=$(date +%s); KA_ONE_CORE=1 $make -s "suite-$s" > "$log.bg.$s" 2>&1; brc=$?
      echo "rc=$brc secs=$(( $(date +%s) - b0 ))" > "$log.bg.$s.rc" ) &
    bgpids="$bgpids $!"
    echo "$!" > "$log.bg.$s.pid"
done
for s in "$@"; do
    echo "=== suite $s"
    t0=$(date +%s)
    if [ -f "$log.bg.$s.pid" ]; then
        wait "$(cat "$log.bg.$s.pid")"
        rm -f "$log.bg.$s.pid"
        tee "$log" < "$log.bg.$s"
        mv "$log.bg.$s.rc" "$log.rc" 2>/dev/null || echo "rc=1" > "$log.rc"
        secs=$(sed -n 's/.*secs=//p' "$log.rc")
        t0=$(( $(date +%s) - ${secs:-0} ))      # its own time, not the wait's
        echo "    (ran beside the suites before it)"
    else
        { $make -s -j2 "suite-$s" 2>&1; echo "rc=$?" > "$log.rc"; } | tee "$log"
    fi
    rc=$(sed 's/rc=\([0-9]*\).*/\1/' "$log.rc"); rm -f "$log.rc"
    line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "=== suite $s: no summary line"; tf=$((tf + 1)); bad="$bad $s"; continue
    fi
    p=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed.*/\2/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    k=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
    tp=$((tp + p)); tf=$((tf + f)); ts=$((ts + ${k:-0}))
    if [ "$rc" != 0 ] && [ "$f" -eq 0 ]; then
        echo "=== suite $s: exit status $rc after its summary: counted as a failure"; f=1; tf=$((tf + 1))
    fi
    [ "$f" -gt 0 ] && bad="$bad $s"
    echo "=== suite $s: $line ($(( $(date +%s) - t0 )) s)"
done
echo "=== all suites in $(( $(date +%s) - start )) s${bad:+; failing:$bad}"
echo "$tp passed, $tf failed, $ts skipped"
[ "$tf" -eq 0 ]
