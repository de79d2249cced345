#!/bin/bash
# make bench: measures, then bench/report.sh writes the report.
#
# The race: every contender built (build/bench/race-NAME: plain, ka_client,
# libuv, libevent, hiredis) against one raceserv, interleaved repeat by
# repeat (A B C D E, A B C D E, ...) so drift hits them all alike; round
# trips and bulk with client and server pinned to CPU 0. Then ka_client's own
# rows: the namespace lab (detection detail, busy dead path, crashed host),
# the reconnect storm, footprint. The race's pulled-cable rows run in the
# same lab, on the same pull as ka_client's. Seeing the link: the trace of a
# cable pulled under load with the early warning (trace), connect time on a
# dual-stack name with each family blackholed, ka_client beside curl
# (eyeballs), the longest library call while the resolver is dark (dns),
# idle wake-ups with on_health set (health). TLS through the adapters
# beside socat and s_client (tls: bench/tls_bench.sh, appended as its own
# section).
#
# BENCH_QUICK=1: small sizes and few repeats (< 2 minutes), report in
# build/bench/BENCHMARKS.quick.md. BENCH_ONLY="race lab storm footprint
# trace eyeballs dns health tls": only those parts, report in
# build/bench/BENCHMARKS.only.md. The namespace parts need root, `ip netns`
# and nft; without them their rows say skipped.
#
# Every wait below is bounded; namespaces and processes go on exit.
set -u
cd "$(dirname "$0")/.." || exit 1

B=build/bench
K=$B/kabench
QUICK=${BENCH_QUICK:-0}
RES=$B/results.txt
LOG=$B/log.txt
META=$B/meta.sh
mkdir -p $B/lab
: > "$RES"; : > "$LOG"; : > $B/strace_calls.txt; : > "$META"
T_START=$(date +%s)

if [ "$QUICK" = 1 ]; then
    REPS=3 RTT_N=2000 BULK=$((32 << 20)) RSS_REPS=1 RSS_N=200 RC_REPS=1 RC_CYCLES=5 RC_DELAY=50
    SC_RTT="200 1000" SC_RC="20 100" IDLE_S=3 LAB_REPS=1 BOUND_S=12 STORM_N=100 STORM_REPS=1
    HE_RUNS=2 DNS_S=3
    OUT=$B/BENCHMARKS.quick.md
else
    REPS=9 RTT_N=20000 BULK=$((256 << 20)) RSS_REPS=3 RSS_N=1000 RC_REPS=3 RC_CYCLES=20 RC_DELAY=100
    SC_RTT="1000 5000" SC_RC="50 300" IDLE_S=30 LAB_REPS=3 BOUND_S=60 STORM_N=1000 STORM_REPS=3
    HE_RUNS=7 DNS_S=12
    OUT=BENCHMARKS.md
fi
# a partial run must not replace the full report
[ -n "${BENCH_ONLY:-}" ] && OUT=$B/BENCHMARKS.only.md
IMG_DIR=$(dirname "$OUT")

say() { printf '%s\n' "$*" >&2; }
want() { [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $1 "* ]]; }
# run CMD...: its RESULT lines go to the results file, everything to the log
run() { "$@" 2>>"$LOG" | tee -a "$LOG" | grep '^RESULT ' | cut -d' ' -f2- >> "$RES"; }
add() { [ -n "$2" ] && echo "$1 $2" >> "$RES"; }
# cur KEY: KEY's value from this repeat (added after line MARK), else empty
MARK=0
cur() { awk -v k="$1" -v m="$MARK" 'NR > m && $1 == k { v = $2 } END { print v }' "$RES"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print ""; else printf "%.4f\n", a / b }'; }
meta() { printf '%s=%q\n' "$1" "$2" >> "$META"; }

PIN=""
if command -v taskset >/dev/null && taskset -c 0 true 2>/dev/null; then PIN="taskset -c 0"; fi

# ---- contenders: whichever were built ------------------------------------------
ALL="raw ka uv ev hiredis"
RACERS=""
for c in $ALL; do
    if [ -x $B/race-$c ]; then
        RACERS="$RACERS $c"
        $B/race-$c info > $B/info_$c.txt
        meta "NAME_$c" "$(sed -n 's/^NAME //p' $B/info_$c.txt)"
        meta "VERSION_$c" "$(sed -n 's/^VERSION //p' $B/info_$c.txt)"
        meta "KEEPALIVE_$c" "$(sed -n 's/^KEEPALIVE //p' $B/info_$c.txt)"
    else
        say "race: $B/race-$c not built; its column stays empty"
    fi
done
meta RACERS "$RACERS"
meta LOAD_START "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- the loopback server, pinned with the pinned clients ------------------------
SRV_PID=""
IDLE_PIDS=""
start_raceserv() {
    local i
    $PIN $B/raceserv -T 1800 > $B/raceserv.out 2>>"$LOG" &
    SRV_PID=$!
    for i in $(seq 1 100); do
        read -r _ _ ECHO _ SINK < $B/raceserv.out 2>/dev/null && [ -n "${SINK:-}" ] && return 0
        sleep 0.05
    done
    return 1
}

# ---- namespace lab ------------------------------------------------------------
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
            rm -rf "/etc/netns/$ns"
        done
        LAB_UP=0
    fi
}
cleanup() {
    local p
    lab_down
    for p in $IDLE_PIDS $SRV_PID; do kill "$p" 2>/dev/null; done
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

start_lab_server() {
    local i
    ip netns exec $NS_S $B/raceserv -b 0.0.0.0 -e 7000 -T 600 >>"$LOG" 2>&1 &
    LAB_SRV=$!
    LAB_PIDS="$LAB_PIDS $LAB_SRV"
    for i in $(seq 1 50); do
        ip netns exec $NS_S ss -Hltn 'sport = :7000' 2>/dev/null | grep -q 7000 && return 0
        sleep 0.05
    done
    return 1
}
stop_lab_server() { kill "$LAB_SRV" 2>/dev/null; wait "$LAB_SRV" 2>/dev/null; }

# start_client OUTFILE PROG ARGS...: a program in the client namespace
CLIENTS=""; CLIENT_OUTS=""
start_client() {
    local out=$1; shift
    ip netns exec $NS_C "$@" > "$out" 2>>"$LOG" &
    CLIENTS="$CLIENTS $!"
    LAB_PIDS="$LAB_PIDS $!"
    CLIENT_OUTS="$CLIENT_OUTS $out"
}
wait_ready() {
    local i f n
    for i in $(seq 1 150); do
        n=0
        for f in $CLIENT_OUTS; do grep -q READY "$f" 2>/dev/null || n=$((n + 1)); done
        [ $n = 0 ] && return 0
        sleep 0.02
    done
    return 1
}
# the race's detection ratio, from the client's own file (absent when it
# reported nothing within its bound)
race_ratio() {
    awk '$1 == "RESULT" && $2 ~ /^det_ms_/ { sub(/^det_ms_/, "", $2); t = $2; ms = $3 }
         $1 == "RESULT" && $2 ~ /^det_deadline_ms_/ { dl = $3 }
         END { if (ms != "" && dl > 0) printf "det_ratio_%s %.4f\n", t, ms / dl }' "$1" >> "$RES"
}
wait_clients() {
    local p f
    for p in $CLIENTS; do wait "$p" 2>/dev/null; done
    for f in $CLIENT_OUTS; do
        cat "$f" >> "$LOG"
        grep '^RESULT ' "$f" | cut -d' ' -f2- >> "$RES"
        case $f in */race-*) race_ratio "$f" ;; esac
    done
    CLIENTS=""; CLIENT_OUTS=""
}

SETTINGS="1000:1000:3 2000:1000:2 1000:1000:5"
start_ka_idle_clients() {
    local fault=$1 s i v c
    for s in $SETTINGS; do
        IFS=: read -r i v c <<< "$s"
        start_client "$B/lab/$fault-$s.out" $K detect -h 10.78.0.2 -p 7000 -i "$i" -v "$v" -c "$c" -T 20000 \
            -t "${fault}_$((i / 1000))-$((v / 1000))-$c"
    done
}
# every contender, out of the box and at its tightest; -T leaves room for
# the seconds between its start and the pull, so each waits BOUND_S at least
start_race_clients() {
    local c k
    for c in $RACERS; do
        for k in default tight; do
            start_client "$B/lab/race-$c-$k.out" $B/race-$c detect -h 10.78.0.2 -p 7000 -k $k \
                -T $(( (BOUND_S + 3) * 1000 )) -t "${k}_$c"
        done
    done
}

# ---- seeing the link ------------------------------------------------------------------

RELAY=test/lab/lab_relay
# relay_in DELAY_MS: lab_relay in place of the bridge, DELAY_MS each way;
# relay_out puts the bridge back.
relay_in() {
    local i
    ip -n $NS_B link set vc nomaster && ip -n $NS_B link set vs nomaster || return 1
    ip netns exec $NS_B $RELAY -a vc -b vs -d "$1" -T 120000 > $B/lab/relay.out 2>&1 &
    RELAY_PID=$!
    LAB_PIDS="$LAB_PIDS $RELAY_PID"
    for i in $(seq 1 100); do grep -q relay-up $B/lab/relay.out 2>/dev/null && return 0; sleep 0.02; done
    return 1
}
relay_out() {
    kill "$RELAY_PID" 2>/dev/null; wait "$RELAY_PID" 2>/dev/null
    ip -n $NS_B link set vc master br0; ip -n $NS_B link set vs master br0
}

# The picture the README's early-warning section links: a client streams
# 100 kB/s through 20 ms each way (lab_relay in place of the bridge, so the
# round trip is worth drawing), the server's cable is pulled, and
# ka_client_stats is sampled every 20 ms until the busy deadline (8 s) ends
# the connection; on_health's warning and the deadline are marked. The
# client namespace has the kernel's own retransmission limit back
# (tcp_retries2 15) meanwhile, so that only the library's deadline ends the
# connection. LAB_REPS runs; the last one is drawn.
TRACE_IMG=""
trace_pulled_cable_under_load() {
    local rep i pid ok=0
    ip netns exec $NS_C sysctl -qw net.ipv4.tcp_retries2=15
    if ! relay_in 20; then
        meta TRACE_NOTE "not drawn: lab_relay did not start ($(tail -1 $B/lab/relay.out 2>/dev/null))"
        return 0
    fi
    ip netns exec $NS_S $B/raceserv -b 0.0.0.0 -e 7003 -s 7002 -T 600 >>"$LOG" 2>&1 &
    LAB_PIDS="$LAB_PIDS $!"
    for i in $(seq 1 50); do ip netns exec $NS_S ss -Hltn 'sport = :7002' | grep -q 7002 && break; sleep 0.05; done
    for rep in $(seq 1 $LAB_REPS); do
        say "trace $rep/$LAB_REPS: 100 kB/s through 20 ms each way, cable pulled, busy deadline 8 s"
        ip netns exec $NS_C $K trace -h 10.78.0.2 -p 7002 -u 8000 -r 100000 -T 20000 \
            -o $B/trace.dat -e $B/trace_marks.gp -t trace > $B/lab/trace.out 2>>"$LOG" &
        pid=$!
        for i in $(seq 1 250); do grep -q READY $B/lab/trace.out 2>/dev/null && break; sleep 0.02; done
        sleep 2                         # two seconds of healthy streaming in the picture
        kill -USR1 $pid; ip -n $NS_B link set vs down; kill -USR2 $pid
        wait $pid && ok=1
        ip -n $NS_B link set vs up
        cat $B/lab/trace.out >> "$LOG"
        grep '^RESULT ' $B/lab/trace.out | cut -d' ' -f2- >> "$RES"
    done
    relay_out
    ip netns exec $NS_C sysctl -qw net.ipv4.tcp_retries2=4
    if [ "$ok" = 1 ] && command -v gnuplot >/dev/null; then
        TRACE_IMG=BENCHMARKS-trace.svg
        gnuplot -e "data='$B/trace.dat'; marks='$B/trace_marks.gp'; out='$IMG_DIR/$TRACE_IMG'" bench/trace.gp 2>>"$LOG" ||
            TRACE_IMG=""
    fi
    [ -n "$TRACE_IMG" ] || meta TRACE_NOTE "not drawn: $([ "$ok" = 1 ] && echo "gnuplot missing or failed" || echo "the trace run did not complete (see $LOG)")"
}

# Connect time to a name with an IPv6 and an IPv4 address (the client
# namespace's own /etc/hosts), the server's SYNs of one family dropped:
# ka_client (start to on_connect, its own Happy Eyeballs: the next family
# 250 ms after the first) beside curl (`--connect-timeout 5 telnet://`,
# %{time_connect}; libcurl gives the first family 200 ms). "IPv4 first"
# puts IPv4 ahead with a gai.conf for the namespace, since glibc's default
# order puts IPv6 first. The server (kabench acceptor) accepts on both
# families and closes at once, which also ends curl's telnet session.
he_case() {     # he_case KEY DARK-FAMILY(none|ip|ip6) v4first|v6first
    local key=$1 fam=$2 i t
    rm -f /etc/netns/$NS_C/gai.conf
    [ "$3" = v4first ] && printf '%s\n' "precedence ::1/128 50" "precedence ::/0 40" "precedence 2002::/16 30" \
        "precedence ::/96 20" "precedence ::ffff:0:0/96 100" > /etc/netns/$NS_C/gai.conf
    ip netns exec $NS_S nft delete table inet kabhe 2>/dev/null
    [ "$fam" != none ] && printf 'table inet kabhe {\n chain i { type filter hook input priority 0; policy accept;\n  meta nfproto %s tcp dport 7001 tcp flags & (syn | ack) == syn drop\n }\n}\n' \
        "$([ "$fam" = ip ] && echo ipv4 || echo ipv6)" | ip netns exec $NS_S nft -f -
    run ip netns exec $NS_C $K connect -h dual.bench -p 7001 -n "$HE_RUNS" -C 5000 -t "${key}_ka"
    command -v curl >/dev/null || return 0
    for i in $(seq 1 "$HE_RUNS"); do
        t=$(ip netns exec $NS_C curl -so /dev/null --connect-timeout 5 -w '%{time_connect}' telnet://dual.bench:7001 </dev/null 2>>"$LOG")
        awk -v t="$t" -v k="connect_ms_${key}_curl" 'BEGIN { if (t + 0 > 0) printf "%s %.2f\n", k, t * 1000 }' >> "$RES"
    done
}
eyeballs() {
    local i
    ip -n $NS_C addr add fd78::1/64 dev eth0 nodad && ip -n $NS_S addr add fd78::2/64 dev eth0 nodad ||
        { meta HE_NOTE "skipped: no IPv6 in the namespaces"; return 0; }
    mkdir -p /etc/netns/$NS_C
    printf '127.0.0.1 localhost\nfd78::2 dual.bench\n10.78.0.2 dual.bench\n' > /etc/netns/$NS_C/hosts
    ip netns exec $NS_S $K acceptor -p 7001 -T 600 > $B/lab/acceptor.out 2>>"$LOG" &
    LAB_PIDS="$LAB_PIDS $!"
    for i in $(seq 1 100); do grep -q LISTENING $B/lab/acceptor.out 2>/dev/null && break; sleep 0.02; done
    say "eyeballs: connect to a dual-stack name, $HE_RUNS runs each, ka_client and curl"
    he_case he_none none v6first
    he_case he_v6dark ip6 v6first
    he_case he_v4dark ip v4first
    ip netns exec $NS_S nft delete table inet kabhe 2>/dev/null
    rm -f /etc/netns/$NS_C/gai.conf
    if command -v curl >/dev/null; then meta CURL_VERSION "$(curl --version | head -1 | cut -d' ' -f2)"
    else meta HE_NOTE "curl not installed: its column is empty"; fi
}

# The resolver dark: the client namespace's resolv.conf names an address
# the bridge answers ARP for but whose DNS queries it drops, so every lookup
# hangs until glibc gives up (5 s, twice). A client for a name only DNS
# knows is polled (20 ms at most) and stopped and started again every
# 100 ms for DNS_S seconds, with resolve_timeout_ms 1 s; every library call
# is timed.
dns_outage() {
    local rep
    mkdir -p /etc/netns/$NS_C
    printf '127.0.0.1 localhost\n' > /etc/netns/$NS_C/hosts
    printf 'nameserver 10.78.0.53\n' > /etc/netns/$NS_C/resolv.conf
    ip -n $NS_B addr add 10.78.0.53/24 dev br0 2>/dev/null
    printf 'table inet kabdns {\n chain i { type filter hook input priority 0; policy accept;\n  udp dport 53 drop\n  tcp dport 53 drop\n }\n}\n' |
        ip netns exec $NS_B nft -f -
    for rep in $(seq 1 $LAB_REPS); do
        say "dns $rep/$LAB_REPS: resolver dark, poll and restart for $DNS_S s"
        run ip netns exec $NS_C $K dnsout -h dark.bench -p 7000 -R 1000 -s "$DNS_S" -t dns
    done
    ip netns exec $NS_B nft delete table inet kabdns
    rm -f /etc/netns/$NS_C/resolv.conf
}

# ---- background: idle cost, one process per contender, they sleep ---------------
if want race; then
    start_raceserv || { say "raceserv did not start"; exit 1; }
    say "idle: $IDLE_S s per contender, in the background"
    for c in $RACERS; do
        $B/race-$c idle -p "$ECHO" -s "$IDLE_S" -t "$c" > $B/idle_$c.out 2>>"$LOG" &
        IDLE_PIDS="$IDLE_PIDS $!"
    done
fi
# ka_client idle after one exchange, with on_health set and without
IDLE_KA=""
if want health; then
    if [ -n "$SRV_PID" ] || start_raceserv; then
        say "health: $IDLE_S s idle with on_health set and without, in the background"
        for w in health plain; do
            flag=""; [ $w = health ] && flag=-w
            # shellcheck disable=SC2086 # an empty flag is no argument
            $K idle -p "$ECHO" -s "$IDLE_S" $flag -t "idle_$w" > $B/idle_ka_$w.out 2>>"$LOG" &
            IDLE_PIDS="$IDLE_PIDS $!"
            IDLE_KA="$IDLE_KA $B/idle_ka_$w.out"
        done
    else
        say "health: raceserv did not start"
    fi
fi

# ---- the lab: pulled cable (every contender, ka_client's detail, busy path),
# ---- crashed host (ka_client) ---------------------------------------------------------
LAB_NOTE="" SEE_NOTE=""
if ! want lab && ! want trace && ! want eyeballs && ! want dns; then
    LAB_NOTE="namespace lab not run (BENCH_ONLY)"
elif lab_up > $B/lab_why.txt 2>&1; then
    want lab || LAB_NOTE="namespace lab not run (BENCH_ONLY)"
    for rep in $(want lab && seq 1 $LAB_REPS); do
        say "lab $rep/$LAB_REPS: pulled cable, every contender out of the box and tightest (up to $BOUND_S s)"
        CLIENT_OUTS=""
        if start_lab_server; then
            start_ka_idle_clients cable
            start_race_clients
            start_client $B/lab/busy-ut.out $K detect -b -h 10.78.0.2 -p 7000 -i 1000 -v 1000 -c 3 -T 20000 -t busy_ut
            start_client $B/lab/busy-raw.out $K rawbusy -h 10.78.0.2 -p 7000 -i 1000 -v 1000 -c 3 -T 30000 -t busy_raw_r4
            wait_ready || say "  not every client got ready"
            ip -n $NS_B link set vs down
            wait_clients
            ip -n $NS_B link set vs up
            stop_lab_server
        fi
        say "lab $rep/$LAB_REPS: crashed host (drops everything, then the server is killed)"
        CLIENT_OUTS=""
        if start_lab_server; then
            start_ka_idle_clients crash
            wait_ready || say "  not every client got ready"
            printf 'table inet kabcrash {\n chain i { type filter hook input priority 0; policy drop; }\n chain o { type filter hook output priority 0; policy drop; }\n}\n' |
                ip netns exec $NS_S nft -f -
            kill -9 "$LAB_SRV" 2>/dev/null
            wait_clients
            ip netns exec $NS_S nft delete table inet kabcrash
            stop_lab_server
        fi
    done
    if want trace; then
        if [ -x $RELAY ]; then trace_pulled_cable_under_load
        else meta TRACE_NOTE "not drawn: $RELAY not built"; fi
    fi
    want eyeballs && eyeballs
    want dns && dns_outage
    lab_down
else
    LAB_NOTE="namespace lab skipped: $(tail -1 $B/lab_why.txt)"
    SEE_NOTE=$LAB_NOTE
    say "$LAB_NOTE"
    lab_down
fi
meta LAB_NOTE "$LAB_NOTE"
meta SEE_NOTE "$SEE_NOTE"

# ---- the race on loopback ---------------------------------------------------------
# calls_per KEY N1 N2 UNIT CMD...: system calls per operation, by
# difference: the command runs under strace -f -c with N1 and then N2
# operations (@N@ in its arguments), and each call's count difference is
# divided by (N2 - N1) / UNIT, so start-up, connect and exit cancel out.
calls_per() {
    local key=$1 n1=$2 n2=$3 unit=$4 n
    shift 4
    for n in $n1 $n2; do
        strace -f -c -o $B/strace_${key}_$n.txt "${@//@N@/$n}" >>"$LOG" 2>&1 || { say "  strace run failed: $key"; return 1; }
    done
    awk -v n1=$n1 -v n2=$n2 -v u=$unit -v key="$key" '
        FNR == 1 { f++ }
        $4 ~ /^[0-9]+$/ && $NF != "total" { c[f, $NF] = $4; names[$NF] = 1 }
        END {
            for (s in names) {
                d = (c[2, s] - c[1, s]) * u / (n2 - n1)
                if (d >= 0.05) { tot += d; list = list sprintf(" %s=%.2g", s, d) }
            }
            printf "%s %.2f\n", key, tot > "/dev/stderr"
            print key list
        }' $B/strace_${key}_$n1.txt $B/strace_${key}_$n2.txt 2>>"$RES" >> $B/strace_calls.txt
}

if want race; then
    for rep in $(seq 1 $REPS); do
        say "race $rep/$REPS: round trips 1 B and 64 B ($RTT_N each), bulk $((BULK >> 20)) MiB, pinned:$RACERS"
        MARK=$(wc -l < "$RES")
        for s in 1 64; do
            for c in $RACERS; do run $PIN $B/race-$c rtt -p "$ECHO" -s $s -n $RTT_N -t "${s}_$c"; done
            for c in raw uv; do
                add "rtt_ratio_${s}_ka_$c" "$(ratio "$(cur rtt_us_${s}_ka)" "$(cur rtt_us_${s}_$c)")"
            done
        done
        for c in $RACERS; do run $PIN $B/race-$c bulk -p "$SINK" -n $BULK -t "$c"; done
        for c in raw uv; do
            add "bulk_ratio_ka_$c" "$(ratio "$(cur bulk_MiBps_ka)" "$(cur bulk_MiBps_$c)")"
        done
    done

    for rep in $(seq 1 $RSS_REPS); do
        say "race $rep/$RSS_REPS: RSS per idle client, 1 and $RSS_N clients, one at a time and all at once"
        for n in 1 $RSS_N; do
            for c in $RACERS; do run $B/race-$c rss -p "$ECHO" -n $n -t "${n}_$c"; done
        done
        for c in $RACERS; do run $B/race-$c rss -p "$ECHO" -n $RSS_N -a -t "all_${RSS_N}_$c"; done
        # ka_client's clients of a name (localhost): the lookup's mailbox and 8 address slots each
        run $B/race-ka rss -h localhost -p "$ECHO" -n $RSS_N -t "name_${RSS_N}"
        run $B/race-ka rss -h localhost -p "$ECHO" -n $RSS_N -a -t "name_all_${RSS_N}"
    done

    for rep in $(seq 1 $RC_REPS); do
        say "race $rep/$RC_REPS: reconnect lateness, $RC_CYCLES reconnects $RC_DELAY ms after each disconnect"
        for c in $RACERS; do run $B/race-$c reconnect -p "$ECHO" -n $RC_CYCLES -d $RC_DELAY -t "$c"; done
    done

    if command -v strace >/dev/null; then
        for c in $RACERS; do
            say "race: system calls per round trip, per reconnect and per MiB sent under strace -f -c: $c"
            read -r a b <<< "$SC_RTT"
            calls_per "calls_rtt_$c" $a $b 1 $B/race-$c rtt -p "$ECHO" -s 1 -n @N@
            read -r a b <<< "$SC_RC"
            calls_per "calls_rc_$c" $a $b 1 $B/race-$c reconnect -p "$ECHO" -n @N@ -d 1 -q
            [ $c = hiredis ] && continue    # no bulk transfer
            calls_per "calls_bulk_$c" $((BULK / 4)) $BULK $((1 << 20)) $B/race-$c bulk -p "$SINK" -n @N@
        done
    else
        say "race: strace missing, no system call counts"
    fi
fi

# ---- reconnect storm (ka_client), with the picture's data ---------------------------
if want storm; then
    for rep in $(seq 1 $STORM_REPS); do
        for j in 0 0.5 1; do
            say "storm $rep/$STORM_REPS: $STORM_N clients, jitter $j"
            run $K storm -n "$STORM_N" -j "$j" -o $B/storm_j$j.dat
        done
    done
fi

# ---- footprint --------------------------------------------------------------------
KACAT_NOTE=""
if want footprint; then
    say "footprint"
    for o in O2 Os; do
        add "text_bytes_$o" "$(size -A $B/ka_client-$o.o | awk '$1 == ".text" { print $2 }')"
    done
    run $B/kaalloc 200
    # kacat's peak RSS sending 64 MiB into raceserv's sink
    if [ -x $B/kacat ] && { [ -n "$SRV_PID" ] || start_raceserv; }; then
        head -c $((64 << 20)) /dev/zero | run timeout 60 $K rss -t kacat -- $B/kacat 127.0.0.1 "$SINK"
    else
        KACAT_NOTE="demo/kacat.c not present or did not build: no kacat RSS"
    fi
fi
meta KACAT_NOTE "$KACAT_NOTE"

if [ -n "$IDLE_PIDS" ]; then
    say "waiting for the idle runs"
    for p in $IDLE_PIDS; do wait "$p" 2>/dev/null; done
    IDLE_PIDS=""
    if want race; then
        for c in $RACERS; do cat $B/idle_$c.out >> "$LOG"; grep '^RESULT ' $B/idle_$c.out | cut -d' ' -f2- >> "$RES"; done
    fi
    for f in $IDLE_KA; do cat "$f" >> "$LOG"; grep '^RESULT ' "$f" | cut -d' ' -f2- >> "$RES"; done
fi
[ -n "$SRV_PID" ] && { kill "$SRV_PID" 2>/dev/null; wait "$SRV_PID" 2>/dev/null; SRV_PID=""; }

# ---- pictures -----------------------------------------------------------------------
STORM_IMG=""
if want storm && [ -s $B/storm_j0.dat ]; then
    if command -v gnuplot >/dev/null; then
        STORM_IMG=BENCHMARKS-storm.svg
        gnuplot -e "dir='$B'; out='$IMG_DIR/$STORM_IMG'; n=$STORM_N" bench/storm.gp 2>>"$LOG" || STORM_IMG=""
    else
        say "gnuplot missing: no storm picture"
    fi
fi
meta STORM_IMG "$STORM_IMG"
meta TRACE_IMG "$TRACE_IMG"

meta LOAD_END "$(cut -d' ' -f1-3 /proc/loadavg)"
meta RUN_SECONDS "$(( $(date +%s) - T_START ))"
for v in QUICK REPS RTT_N BULK RSS_REPS RSS_N RC_REPS RC_CYCLES RC_DELAY SC_RTT SC_RC IDLE_S LAB_REPS BOUND_S \
         STORM_N STORM_REPS PIN HE_RUNS DNS_S; do
    meta "$v" "${!v}"
done
bash bench/report.sh "$OUT" "$B"
if want tls; then
    say "TLS: bench/tls_bench.sh"
    if [ -x build/tls/tls_bench ] && BENCH_QUICK=$([ "$QUICK" = 1 ] && echo 1) bash bench/tls_bench.sh >> "$LOG" 2>&1 \
            && [ -s build/tls/BENCH-tls.md ]; then
        { echo; cat build/tls/BENCH-tls.md; } >> "$OUT"
    else
        printf '\n## TLS\n\nNot run: build/tls/tls_bench missing or bench/tls_bench.sh failed (see %s).\n' "$LOG" >> "$OUT"
    fi
fi
say "wrote $OUT in $(( $(date +%s) - T_START )) s"
