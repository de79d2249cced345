#!/bin/bash
# make bench (issue 6): runs every measurement a few times, prints one table
# of medians and spreads, and writes it with the machine description to
# BENCHMARKS.md. BENCH_QUICK=1 runs small versions (64 MiB, 50 storm
# clients, 3 s idle, fewer repeats) and writes build/bench/BENCHMARKS.quick.md
# instead. The namespace parts need root, `ip netns` and nft; without them
# those rows say "skipped" and the rest still runs.
#
# Every wait below is bounded; namespaces and processes are removed on exit.
set -u
cd "$(dirname "$0")/.."

B=build/bench
K=$B/kabench
QUICK=${BENCH_QUICK:-0}
RES=$B/results.txt
LOG=$B/log.txt
: > "$RES"
: > "$LOG"
: > $B/strace_names.txt

if [ "$QUICK" = 1 ]; then
    REPS=2; BULK=$((64 << 20)); PINGS=10000; IDLE_S=3; STORM_N=50; RC_CYCLES=3; LAB_REPS=1
    OUT=$B/BENCHMARKS.quick.md
else
    REPS=3; BULK=$((1 << 30)); PINGS=100000; IDLE_S=30; STORM_N=1000; RC_CYCLES=8; LAB_REPS=3
    OUT=BENCHMARKS.md
fi
# a partial run (BENCH_ONLY) must not replace the full report
[ -n "${BENCH_ONLY:-}" ] && OUT=$B/BENCHMARKS.only.md

say() { printf '%s\n' "$*" >&2; }
# BENCH_ONLY="lab storm ..." runs only those parts (development aid)
want() { [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $1 "* ]]; }
# run CMD...: its RESULT lines go to the results file, everything to the log
run() {
    "$@" 2>>"$LOG" | tee -a "$LOG" | grep '^RESULT ' | cut -d' ' -f2- >> "$RES"
}
# last value of KEY in the results so far
last() { awk -v k="$1" '$1 == k { v = $2 } END { print v }' "$RES"; }
add() { echo "$1 $2" >> "$RES"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print ""; else printf "%.3f\n", a / b }'; }

# ---- background: idle cost (two 30 s runs at once, they sleep) -------------
say "idle: ${IDLE_S} s without and with a 1 s heartbeat, in the background"
( $K idle -s "$IDLE_S" > $B/idle_nohb.out 2>>"$LOG" ) &
IDLE1=$!
( $K idle -s "$IDLE_S" -H 1000 > $B/idle_hb.out 2>>"$LOG" ) &
IDLE2=$!

# ---- namespace lab: detection latency and the busy dead path ---------------
NS=kab$$
NS_C=${NS}c; NS_S=${NS}s; NS_B=${NS}b
LAB_PIDS=""
LAB_UP=0
lab_down() {
    local p ns
    for p in $LAB_PIDS; do kill "$p" 2>/dev/null; done
    for p in $LAB_PIDS; do wait "$p" 2>/dev/null; done
    LAB_PIDS=""
    if [ "$LAB_UP" = 1 ]; then
        for ns in $NS_C $NS_S $NS_B; do
            for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
            ip netns del "$ns" 2>/dev/null
        done
        LAB_UP=0
    fi
}
cleanup() {
    lab_down
    kill "$IDLE1" "$IDLE2" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

lab_up() {
    [ "$(id -u)" = 0 ] || { echo "not root"; return 1; }
    command -v ip >/dev/null && command -v nft >/dev/null || { echo "ip or nft missing"; return 1; }
    ip netns add $NS_C && ip netns add $NS_S && ip netns add $NS_B || { echo "ip netns add failed"; return 1; }
    LAB_UP=1
    # client -- vc [br0 in NS_B] vs -- server: pulling vs leaves the client's carrier up
    ip -n $NS_B link add br0 type bridge &&
    ip -n $NS_C link add eth0 type veth peer name vc netns $NS_B &&
    ip -n $NS_S link add eth0 type veth peer name vs netns $NS_B &&
    ip -n $NS_B link set vc master br0 && ip -n $NS_B link set vs master br0 &&
    ip -n $NS_B link set br0 up && ip -n $NS_B link set vc up && ip -n $NS_B link set vs up &&
    ip -n $NS_C addr add 10.78.0.1/24 dev eth0 && ip -n $NS_C link set eth0 up && ip -n $NS_C link set lo up &&
    ip -n $NS_S addr add 10.78.0.2/24 dev eth0 && ip -n $NS_S link set eth0 up && ip -n $NS_S link set lo up &&
    # sysctls are per namespace: only the lab's client sees a short tcp_retries2
    ip netns exec $NS_C sysctl -qw net.ipv4.tcp_retries2=4 || { echo "topology setup failed"; return 1; }
}

start_server() {
    ip netns exec $NS_S $K server -p 7000 -T 60000 >>"$LOG" 2>&1 &
    SRV=$!
    LAB_PIDS="$LAB_PIDS $SRV"
    local i
    for i in $(seq 1 50); do
        ip netns exec $NS_S ss -Hltn 'sport = :7000' 2>/dev/null | grep -q 7000 && return 0
        sleep 0.05
    done
    return 1
}

# start_client OUTFILE ARGS...: a kabench in the client namespace
CLIENTS=""
start_client() {
    local out=$1; shift
    ip netns exec $NS_C $K "$@" > "$out" 2>>"$LOG" &
    CLIENTS="$CLIENTS $!"
    LAB_PIDS="$LAB_PIDS $!"
    CLIENT_OUTS="$CLIENT_OUTS $out"
}
wait_ready() {
    local i f n
    for i in $(seq 1 100); do
        n=0
        for f in $CLIENT_OUTS; do grep -q READY "$f" 2>/dev/null || n=$((n + 1)); done
        [ $n = 0 ] && return 0
        sleep 0.02
    done
    return 1
}
wait_clients() {
    local p
    for p in $CLIENTS; do wait "$p" 2>/dev/null; done
    for f in $CLIENT_OUTS; do cat "$f" >> "$LOG"; grep '^RESULT ' "$f" | cut -d' ' -f2- >> "$RES"; done
    CLIENTS=""; CLIENT_OUTS=""
}
stop_server() { kill "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null; }

SETTINGS="1000:1000:3 2000:1000:2 1000:1000:5"
start_idle_clients() {
    local fault=$1 s i v c
    for s in $SETTINGS; do
        IFS=: read -r i v c <<< "$s"
        start_client "$B/lab/$fault-$s.out" detect -h 10.78.0.2 -p 7000 -i "$i" -v "$v" -c "$c" -T 20000 \
            -t "${fault}_$((i / 1000))-$((v / 1000))-$c"
    done
}

LAB_NOTE=""
if ! want lab; then
    LAB_NOTE="namespace lab not run (BENCH_ONLY)"
elif lab_up > $B/lab_why.txt 2>&1; then
    mkdir -p $B/lab
    for rep in $(seq 1 $LAB_REPS); do
        say "lab $rep/$LAB_REPS: pulled cable (3 idle settings, busy with and without user timeout)"
        CLIENT_OUTS=""
        if start_server; then
            start_idle_clients cable
            start_client $B/lab/busy-ut.out detect -b -h 10.78.0.2 -p 7000 -i 1000 -v 1000 -c 3 -T 20000 -t busy_ut
            start_client $B/lab/busy-raw.out rawbusy -h 10.78.0.2 -p 7000 -i 1000 -v 1000 -c 3 -T 30000 -t busy_raw_r4
            wait_ready || say "  not every client got ready"
            ip -n $NS_B link set vs down
            wait_clients
            ip -n $NS_B link set vs up
            stop_server
        fi
        say "lab $rep/$LAB_REPS: crashed host (drops everything, then the server is killed)"
        CLIENT_OUTS=""
        if start_server; then
            start_idle_clients crash
            wait_ready || say "  not every client got ready"
            printf 'table inet kabcrash {\n chain i { type filter hook input priority 0; policy drop; }\n chain o { type filter hook output priority 0; policy drop; }\n}\n' |
                ip netns exec $NS_S nft -f -
            kill -9 "$SRV" 2>/dev/null
            wait_clients
            ip netns exec $NS_S nft delete table inet kabcrash
            stop_server
        fi
    done
    lab_down
else
    LAB_NOTE="namespace lab skipped: $(tail -1 $B/lab_why.txt)"
    say "$LAB_NOTE"
    lab_down
fi

# What a busy connection without TCP_USER_TIMEOUT waits, from the kernel's
# own model (tcp_model_timeout, RTO from TCP_RTO_MIN 200 ms doubling up to
# TCP_RTO_MAX 120 s): tcp_retries2=4 -> 6.2 s (the lab measures this one),
# tcp_retries2=15 (the default) -> 924.6 s, about 15.4 minutes.
add busy_raw_r4_model_ms 6200
add busy_raw_r15_model_ms 924600

# ---- reconnect latency ------------------------------------------------------
if want reconnect; then
    say "reconnect: $RC_CYCLES outages on loopback"
    run $K reconnect -n "$RC_CYCLES"
fi

# ---- throughput and round trip (interleaved, ratios per repeat) ------------
# Bulk and round trips are taken twice: free to run on any CPU (what an
# application sees; on a virtual machine dominated by cross-CPU wake-ups and
# very noisy) and with the process and its child pinned to one CPU (taskset),
# where the CPU each byte or round trip costs, the library's part, shows.
PIN=""
if command -v taskset >/dev/null && taskset -c 0 true 2>/dev/null; then PIN="taskset -c 0"; fi
want loopback &&
for rep in $(seq 1 $REPS); do
    say "bulk $rep/$REPS: $((BULK >> 20)) MiB raw / ka / socat"
    for m in raw ka socat; do run $K bulk -m $m -n "$BULK"; done
    add tp_ratio_ka_raw "$(ratio "$(last bulk_MiBps_ka)" "$(last bulk_MiBps_raw)")"
    add tp_ratio_ka_socat "$(ratio "$(last bulk_MiBps_ka)" "$(last bulk_MiBps_socat)")"
    if [ -n "$PIN" ]; then
        # three pairs per repeat: one pinned 1 GiB run takes well under a
        # second and its ratio still varies by ±10 %, so take more of them
        say "bulk $rep/$REPS: $((BULK >> 20)) MiB raw / ka, pinned to CPU 0, 3 pairs"
        for k in 1 2 3; do
            for m in raw ka; do run $PIN $K bulk -m $m -k pin_$m -n "$BULK"; done
            add tp_ratio_pin_ka_raw "$(ratio "$(last bulk_MiBps_pin_ka)" "$(last bulk_MiBps_pin_raw)")"
        done
    fi
    say "pingpong $rep/$REPS: $PINGS round trips raw / ka / socat"
    for m in raw ka socat; do run $K pingpong -m $m -n "$PINGS"; done
    add rtt_ratio_ka_raw "$(ratio "$(last rtt_us_ka)" "$(last rtt_us_raw)")"
    add rtt_ratio_ka_socat "$(ratio "$(last rtt_us_ka)" "$(last rtt_us_socat)")"
    if [ -n "$PIN" ]; then
        say "pingpong $rep/$REPS: $PINGS round trips raw / ka, pinned to CPU 0"
        for m in raw ka; do run $PIN $K pingpong -m $m -k pin_$m -n "$PINGS"; done
        add rtt_ratio_pin_ka_raw "$(ratio "$(last rtt_us_pin_ka)" "$(last rtt_us_pin_raw)")"
    fi
done

# System calls per round trip, counted by strace -c on the measuring process
# only (not the echo child): every call made at least once per round trip
# (so not the set-up ones), summed, divided by the round trips.
STRACE_N=10000
want loopback && command -v strace >/dev/null &&
for m in raw ka; do
    say "pingpong under strace -c: $STRACE_N round trips, $m"
    strace -c -o $B/strace_$m.txt $K pingpong -m $m -n $STRACE_N >>"$LOG" 2>&1 || continue
    add "rtt_syscalls_$m" "$(awk -v n=$STRACE_N '$4 ~ /^[0-9]+$/ && $4 >= n && $NF != "total" { s += $4 } END { if (s) printf "%.2f\n", s / n }' $B/strace_$m.txt)"
    echo "strace_calls_$m $(awk -v n=$STRACE_N '$4 ~ /^[0-9]+$/ && $4 >= n && $NF != "total" { printf "%s%s", sep, $NF; sep = "+" }' $B/strace_$m.txt)" >> $B/strace_names.txt
done

# ---- reconnect storm ----------------------------------------------------------
want storm &&
for rep in $(seq 1 $REPS); do
    for j in 0 0.5 1; do
        say "storm $rep/$REPS: $STORM_N clients, jitter $j"
        run $K storm -n "$STORM_N" -j "$j"
    done
done

# ---- footprint ----------------------------------------------------------------
say "footprint"
for o in O2 Os; do
    add "text_bytes_$o" "$(size -A $B/ka_client-$o.o | awk '$1 == ".text" { print $2 }')"
done
run $B/kaalloc 200
KACAT_NOTE=""
if [ -x $B/kacat ]; then
    PORT=$((30000 + $$ % 20000))
    timeout 30 socat -u TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr OPEN:/dev/null 2>>"$LOG" &
    SINK=$!
    for i in $(seq 1 50); do ss -Hltn "sport = :$PORT" | grep -q "$PORT" && break; sleep 0.05; done
    head -c $((64 << 20)) /dev/zero | run timeout 30 $K rss -t kacat -- $B/kacat 127.0.0.1 $PORT
    kill "$SINK" 2>/dev/null; wait "$SINK" 2>/dev/null
else
    KACAT_NOTE="demo/kacat.c not present or did not build: no kacat RSS"
fi

say "waiting for the idle runs"
wait "$IDLE1" "$IDLE2"
for f in $B/idle_nohb.out $B/idle_hb.out; do cat "$f" >> "$LOG"; grep '^RESULT ' "$f" | cut -d' ' -f2- >> "$RES"; done

# ---- the table ------------------------------------------------------------------
# stat REGEX: "median min max n" over every value whose key matches REGEX
stat() {
    awk -v re="$1" '$1 ~ re && $2 != "" { v[n++] = $2 + 0 }
        END {
            if (n == 0) { print "- - - 0"; exit }
            for (i = 1; i < n; i++) { x = v[i]; for (j = i - 1; j >= 0 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
            m = (n % 2) ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
            printf "%g %g %g %d\n", m, v[0], v[n - 1], n
        }' "$RES"
}
med() { stat "$1" | cut -d' ' -f1; }
# verdict MEDIAN OP LIMIT
verdict() {
    awk -v m="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (m == "-") { print "n/a"; exit }
        ok = (op == "<=") ? (m + 0 <= l + 0) : (op == ">=") ? (m + 0 >= l + 0) : (m + 0 == l + 0)
        print ok ? "met" : "MISSED" }'
}
TABLE=$B/table.md
{
    echo "| # | measurement | median | spread (min–max) | n | goal | verdict |"
    echo "|---|---|---|---|---|---|---|"
} > "$TABLE"
# row NUM LABEL REGEX [GOAL OP LIMIT]
row() {
    local s m lo hi n g="" v=""
    s=$(stat "$3"); read -r m lo hi n <<< "$s"
    if [ $# -ge 6 ]; then g=$4; v=$(verdict "$m" "$5" "$6"); fi
    if [ "$n" = 0 ]; then m="skipped"; lo="-"; hi="-"; fi
    echo "| $1 | $2 | $m | $lo – $hi | $n | $g | $v |" >> "$TABLE"
}
for f in cable crash; do
    for s in 1-1-3 2-1-2 1-1-5; do
        row 1 "detection / deadline, $( [ $f = cable ] && echo "pulled cable" || echo "crashed host"), idle/intvl/count $s s" "^det_ratio_${f}_$s\$"
    done
done
row 1 "library delay: kernel error (watcher thread) → on_disconnect, µs, all idle runs" "^det_overhead_us_(cable|crash)" "< 1000 µs" "<=" 1000
row 1 "library processing: select() return → on_disconnect, µs" "^det_libproc_us_(cable|crash)"
row 2 "busy dead path, ka_client (user timeout 4 s), detection ms" "^det_ms_busy_ut\$"
row 2 "busy dead path, plain socket, no user timeout, tcp_retries2=4, ms" "^det_ms_busy_raw_r4\$"
row 2 "busy dead path, same, kernel model for tcp_retries2=4, ms" "^busy_raw_r4_model_ms\$"
row 2 "busy dead path, kernel default tcp_retries2=15 (computed, not run), ms" "^busy_raw_r15_model_ms\$"
row 3 "reconnect: server back → on_connect, ms" "^rc_total_ms\$"
row 3 "reconnect: server back → scheduled attempt, ms" "^rc_sched_ms\$"
row 3 "reconnect: scheduled attempt → on_connect, µs" "^rc_overhead_us\$"
row 4 "bulk $((BULK >> 20)) MiB, plain send() loop, MiB/s" "^bulk_MiBps_raw\$"
row 4 "bulk, ka_client, MiB/s" "^bulk_MiBps_ka\$"
row 4 "bulk, socat, MiB/s" "^bulk_MiBps_socat\$"
row 4 "throughput ratio ka_client / plain loop" "^tp_ratio_ka_raw\$"
row 4 "throughput ratio ka_client / socat" "^tp_ratio_ka_socat\$"
row 4 "bulk pinned to one CPU, plain send() loop, MiB/s" "^bulk_MiBps_pin_raw\$"
row 4 "bulk pinned to one CPU, ka_client, MiB/s" "^bulk_MiBps_pin_ka\$"
row 4 "throughput ratio pinned, ka_client / plain loop" "^tp_ratio_pin_ka_raw\$" "≥ 0.95" ">=" 0.95
row 4 "round trip $PINGS × 32 B, plain send()/recv(), µs" "^rtt_us_raw\$"
row 4 "round trip, ka_client, µs" "^rtt_us_ka\$"
row 4 "round trip, socat relay, µs" "^rtt_us_socat\$"
row 4 "round-trip ratio ka_client / plain loop" "^rtt_ratio_ka_raw\$"
row 4 "round-trip ratio ka_client / socat" "^rtt_ratio_ka_socat\$"
row 4 "round trip pinned to one CPU, plain send()/recv(), µs" "^rtt_us_pin_raw\$"
row 4 "round trip pinned to one CPU, ka_client, µs" "^rtt_us_pin_ka\$"
row 4 "round-trip ratio pinned, ka_client / plain loop" "^rtt_ratio_pin_ka_raw\$" "≤ 1.05" "<=" 1.05
row 4 "system calls per round trip, plain loop (strace -c)" "^rtt_syscalls_raw\$"
row 4 "system calls per round trip, ka_client (strace -c)" "^rtt_syscalls_ka\$"
row 5 "idle ${IDLE_S} s, no heartbeat: voluntary context switches" "^idle_nvcsw_nohb\$" "0" "<=" 0
row 5 "idle ${IDLE_S} s, 1 s heartbeat: voluntary context switches" "^idle_nvcsw_hb\$"
for j in 0.0 0.5 1.0; do
    row 6 "storm $STORM_N clients, jitter $j: peak attempts / 100 ms" "^storm_peak_j$j\$"
    row 6 "storm, jitter $j: mean attempts / 100 ms" "^storm_mean_j$j\$"
    row 6 "storm, jitter $j: peak / mean" "^storm_peak_mean_j$j\$"
    row 6 "storm, jitter $j: restart → all reconnected, ms" "^storm_all_back_ms_j$j\$"
done
row 7 ".text of ka_client.o, -O2, bytes" "^text_bytes_O2\$"
row 7 ".text of ka_client.o, -Os, bytes" "^text_bytes_Os\$" "< 16384" "<=" 16383
row 7 "sizeof client without buffers, bytes" "^client_struct_bytes\$"
row 7 "client block with default buffers, bytes" "^client_default_block_bytes\$"
row 7 "allocations per reconnect, library (mem hooks)" "^alloc_hooks_per_cycle_numeric\$" "0" "<=" 0
row 7 "allocations per reconnect, library (--wrap=malloc)" "^alloc_lib_per_cycle_numeric\$" "0" "<=" 0
row 7 "allocations per reconnect, whole process, host 127.0.0.1 (libc getaddrinfo)" "^alloc_process_per_cycle_numeric\$"
row 7 "allocations per reconnect, whole process, host localhost" "^alloc_process_per_cycle_localhost\$"
row 7 "allocations per 1000 messages while connected" "^alloc_steady_per_1000_msgs_numeric\$" "0" "<=" 0
row 7 "peak RSS of kacat sending 64 MiB, KiB" "^rss_kib_kacat\$"

cat "$TABLE"
bash bench/report.sh "$OUT" "$TABLE" "$RES" "$QUICK" "$LAB_NOTE" "$KACAT_NOTE" $B/strace_names.txt
say "wrote $OUT"
