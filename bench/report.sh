#!/bin/bash
# Writes the benchmark report from what bench/run.sh left in its directory:
#   report.sh OUT DIR
# DIR/results.txt ("key value" lines), DIR/meta.sh (the run's settings and
# notes), DIR/strace_calls.txt (system calls by name). It can be rerun on
# its own to rewrite the report from the same results.
set -u
OUT=$1 D=$2
RES=$D/results.txt
# shellcheck disable=SC1090
. "$D/meta.sh"

# st KEY: "median p10 p90 n" over every value of KEY (p10/p90 interpolated);
# a KEY starting with ^ is a regular expression over the keys
st() {
    awk -v k="$1" '($1 == k || (k ~ /^\^/ && $1 ~ k)) && $2 != "" { v[n++] = $2 + 0 }
        function q(p,   h, i) { h = (n - 1) * p; i = int(h); return (i + 1 < n) ? v[i] + (h - i) * (v[i + 1] - v[i]) : v[i] }
        END {
            if (n == 0) { print "- - - 0"; exit }
            for (i = 1; i < n; i++) { x = v[i]; for (j = i - 1; j >= 0 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
            printf "%.6g %.6g %.6g %d\n", q(0.5), q(0.1), q(0.9), n
        }' "$RES"
}
med() { st "$1" | cut -d' ' -f1; }
# fmt X: three or so significant figures
fmt() {
    awk -v x="$1" 'BEGIN {
        if (x == "-" || x == "") { print "-"; exit }
        a = x < 0 ? -x : x
        if (a >= 100) printf "%.0f\n", x; else if (a >= 10) printf "%.1f\n", x
        else if (a >= 1) printf "%.2f\n", x; else if (a == 0) print "0"; else printf "%.3f\n", x }'
}
# cell KEY: "median (p10–p90)", or "—" when there is nothing
cell() {
    local m lo hi n
    read -r m lo hi n <<< "$(st "$1")"
    if [ "$n" = 0 ]; then echo "—"
    elif [ "$n" -lt 3 ] || [ "$(fmt "$lo")" = "$(fmt "$hi")" ]; then fmt "$m"
    else echo "$(fmt "$m") ($(fmt "$lo")–$(fmt "$hi"))"; fi
}
# ok MEDIAN OP LIMIT: 1 when the goal holds
ok() { awk -v m="$1" -v op="$2" -v l="$3" 'BEGIN { if (m == "-" || m == "") exit 2
    exit !((op == "<=") ? (m + 0 <= l + 0) : (m + 0 >= l + 0)) }'; }
x() { [ "$1" = "-" ] && echo "—" || echo "×$(awk -v a="$1" 'BEGIN { printf "%.3f", a }')"; }

SEC() { awk -v ms="$1" 'BEGIN { s = ms / 1000; if (s >= 100) printf "%.0f s", s; else if (s >= 10) printf "%.1f s", s; else printf "%.2f s", s }'; }
# det CASE C: the detection cell for one contender
det() {
    local k=$1 c=$2 m n dl bound r
    read -r m _ _ n <<< "$(st "det_ms_${k}_$c")"
    dl=$(med "det_deadline_ms_${k}_$c")
    bound=$(med "det_bound_ms_${k}_$c")
    if [ "$bound" = "-" ]; then echo "—"; return; fi
    if [ "$dl" = "-" ]; then echo "not ready"; return; fi
    local what="keepalive off"
    [ "$dl" != 0 ] && what="deadline $(SEC "$dl")"
    if [ "$n" = 0 ]; then echo "> $BOUND_S s ($what)"; return; fi
    r=$(med "det_ratio_${k}_$c")
    echo "$(SEC "$m") ($what, $(x "$r"))"
}

name() { local v="NAME_$1"; echo "${!v:-$1}"; }
ver() { local v="VERSION_$1"; echo "${!v:-?}"; }
kanote() { local v="KEEPALIVE_$1"; echo "${!v:-}"; }
calls() { awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "$D/strace_calls.txt" 2>/dev/null; }

in_race() { [[ " $RACERS " == *" $1 "* ]]; }

# ---- the verdicts -------------------------------------------------------------------
# verdict_two R1 LIMIT1 OP R2 LIMIT2: both goals on medians of per-repeat ratios
verdict_pair() {
    local a=$1 la=$2 op=$3 b=$4 lb=$5 res
    if [ "$a" = "-" ] || [ "$b" = "-" ]; then echo "not measured"; return; fi
    if ok "$a" "$op" "$la" && ok "$b" "$op" "$lb"; then res="**met**"; else res="**missed**"; fi
    echo "$res: $(x "$a") libuv, $(x "$b") plain"
}
verdict_vs() {
    local a=$1 op=$2 b=$3
    if [ "$a" = "-" ] || [ "$b" = "-" ]; then echo "not measured"; return; fi
    ok "$a" "$op" "$b" && echo "**met**" || echo "**missed**"
}

R1U=$(med rtt_ratio_1_ka_uv); R1P=$(med rtt_ratio_1_ka_raw)
R64U=$(med rtt_ratio_64_ka_uv); R64P=$(med rtt_ratio_64_ka_raw)
TU=$(med bulk_ratio_ka_uv); TP=$(med bulk_ratio_ka_raw)
RSSK=$(med "rss_kib_per_client_${RSS_N}_ka"); RSSU=$(med "rss_kib_per_client_${RSS_N}_uv")
RSSKA=$(med "rss_kib_per_client_all_${RSS_N}_ka"); RSSUA=$(med "rss_kib_per_client_all_${RSS_N}_uv")
RSSK1=$(med rss_kib_per_client_1_ka); RSSU1=$(med rss_kib_per_client_1_uv)
SCK=$(med calls_rc_ka); SCU=$(med calls_rc_uv)
# detection: every median ratio ka_client has, the race's and the lab's own
DETW=$(for k in default_ka tight_ka cable_1-1-3 cable_2-1-2 cable_1-1-5 crash_1-1-3 crash_2-1-2 crash_1-1-5; do med "det_ratio_$k"; done |
       awk '$1 != "-" { if (w == "" || $1 > w) w = $1 } END { print (w == "") ? "-" : w }')

V_R1=$(verdict_pair "$R1U" 1.00 "<=" "$R1P" 1.10)
V_R64=$(verdict_pair "$R64U" 1.00 "<=" "$R64P" 1.10)
V_TP=$(verdict_pair "$TU" 1.00 ">=" "$TP" 0.97)
V_RSS1=$(verdict_vs "$RSSK" "<=" "$RSSU")
V_RSSA=$(verdict_vs "$RSSKA" "<=" "$RSSUA")
case "$V_RSS1 $V_RSSA" in *missed*) V_RSS="**missed**";; *"not measured"*) V_RSS="not measured";; *) V_RSS="**met**";; esac
V_SC=$(verdict_vs "$SCK" "<=" "$SCU")
if [ "$DETW" = "-" ]; then V_DET="not measured"
elif ok "$DETW" "<=" 1.03; then V_DET="**met**: worst median $(x "$DETW")"
else V_DET="**missed**: worst median $(x "$DETW")"; fi

# ---- machine and run ------------------------------------------------------------------
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
CORES=$(nproc)
KERNEL=$(uname -srm)
GCC=$(${CC:-cc} --version 2>/dev/null | head -1)
LIBC=$(ldd --version 2>/dev/null | head -1)
IDLEDRV=$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo unknown)
VM=""; grep -qw hypervisor /proc/cpuinfo && VM=" on a virtual machine (hypervisor flag set)"
DATE=${BENCH_DATE:-$(date -u '+%Y-%m-%d %H:%M UTC')}
L1=${LOAD_START%% *}; L2=${LOAD_END%% *}
# Only the load at the start says whether other work was running: the
# one-minute average at the end is mostly the bench's own.
if awk -v a="$L1" 'BEGIN { exit !(a + 0 > 0.5) }'; then
    QUIET="**This run was not quiet**: load average $L1 when it started on $CORES CPUs (other work was running; $L2 at the end, the bench's own load included). Every figure carries that noise; the ratios, taken per repeat between runs seconds apart, carry less of it than the absolute numbers."
else
    QUIET="The machine was quiet: load average $L1 when the run started on $CORES CPUs ($L2 at the end, the bench's own load included)."
fi

# ---- the report ------------------------------------------------------------------------
{
echo "# ka_client benchmarks"
echo
[ "$QUICK" = 1 ] && { echo "> BENCH_QUICK=1 run: small sizes and few repeats, a smoke test, not a measurement."; echo; }
echo "Written by \`make bench\` on $DATE in $((RUN_SECONDS / 60)) min $((RUN_SECONDS % 60)) s. Not part of"
echo "\`make check\`. $QUIET"
echo
echo "## Side by side"
echo
echo "The same server (bench/raceserv.c, one epoll thread) for every contender, the"
echo "contenders' runs interleaved repeat by repeat. Each cell: median (p10–p90)"
echo "over the repeats; round trips and throughput with client and server pinned"
echo "to one CPU. Goals and verdicts are ka_client's, judged on the medians of the"
echo "ratios taken within each repeat."
echo
hdr="| measurement |"; sep="|---|"
for c in $RACERS; do hdr="$hdr $(name "$c") |"; sep="$sep---|"; done
echo "$hdr goal | verdict |"
echo "$sep---|---|"
row() {   # row LABEL KEYSTEM GOAL VERDICT: KEYSTEM_c per contender
    local l="| $1 |" c
    for c in $RACERS; do l="$l $(cell "$2_$c") |"; done
    echo "$l $3 | $4 |"
}
row "round trip, 1 B, µs" rtt_us_1 "≤ libuv, ≤ 1.10 × plain" "$V_R1"
row "round trip, 64 B, µs" rtt_us_64 "≤ libuv, ≤ 1.10 × plain" "$V_R64"
row "throughput, $((BULK >> 20)) MiB to a sink, MiB/s" bulk_MiBps "≥ libuv, ≥ 0.97 × plain" "$V_TP"
row "RSS per extra idle client, 1 client, KiB" rss_kib_per_client_1 "" ""
row "RSS per extra idle client, $RSS_N clients connected one at a time, KiB" "rss_kib_per_client_$RSS_N" "≤ libuv" "$V_RSS1"
row "RSS per extra idle client, $RSS_N clients started all at once, KiB" "rss_kib_per_client_all_$RSS_N" "≤ libuv" "$V_RSSA"
row "system calls per round trip" calls_rtt "" ""
row "system calls per reconnect" calls_rc "≤ libuv" "$V_SC"
row "system calls per MiB sent (bulk)" calls_bulk "" ""
row "reconnect lateness, µs" late_us "" ""
row "wake-ups in $IDLE_S s idle" idle_nvcsw "" ""
l="| pulled cable, out of the box: reported after |"
for c in $RACERS; do l="$l $(det default "$c") |"; done
echo "$l within 1.03 × the kernel's deadline | $V_DET |"
l="| pulled cable, tightest the API allows: reported after |"
for c in $RACERS; do l="$l $(det tight "$c") |"; done
echo "$l | |"
echo
echo "Contenders: $(for c in $RACERS; do printf '%s %s; ' "$(name "$c")" "$(ver "$c")"; done | sed 's/; $//')."
[ -n "$LAB_NOTE" ] && echo "Pulled-cable rows: $LAB_NOTE."
echo
echo "Ratios behind the verdicts (ka_client ÷ the other, per repeat: median (p10–p90)):"
echo
echo "| ratio | ÷ libuv | ÷ plain |"
echo "|---|---|---|"
echo "| round trip, 1 B | $(cell rtt_ratio_1_ka_uv) | $(cell rtt_ratio_1_ka_raw) |"
echo "| round trip, 64 B | $(cell rtt_ratio_64_ka_uv) | $(cell rtt_ratio_64_ka_raw) |"
echo "| throughput | $(cell bulk_ratio_ka_uv) | $(cell bulk_ratio_ka_raw) |"
echo
echo "System calls by name, per operation (the difference of two \`strace -f -c\` runs):"
echo
echo "| contender | per round trip (1 B) | per reconnect | per MiB sent |"
echo "|---|---|---|---|"
bycall() { [ "$(med "$1")" = "-" ] && echo "—" || echo "$(fmt "$(med "$1")"): $(calls "$1")"; }
for c in $RACERS; do
    echo "| $(name "$c") | $(bycall "calls_rtt_$c") | $(bycall "calls_rc_$c") | $(bycall "calls_bulk_$c") |"
done
echo
echo "Keepalive, as each API offers it (what \"out of the box\" and \"tightest\" mean above):"
echo
for c in $RACERS; do echo "- $(name "$c"): $(kanote "$c")."; done
echo
cat <<EOF
What the rows show, and where a row does not apply:

- hiredis has no streaming write: no throughput. Its round trip is \`PING
  <payload>\` through the same echo server (the echo of a RESP request is a
  valid RESP array reply, parsed by hiredis' own reader), so 22–23 bytes of
  framing ride along with each payload. It has no timer: its reconnect waits
  in the application's \`poll()\` and then calls \`redisReconnect\`, which
  closes the old socket first; idle and pulled-cable rows use its async
  context on its own libevent adapter.
- libevent's bufferevent writes at most 16 KiB per writev() unless told
  otherwise (\`bufferevent_set_max_single_write\`; the bench keeps every
  library's defaults): four times the system calls per MiB of the others,
  and its throughput row.
- "RSS per extra idle client, 1 client" is the growth of the resident set
  from one more client, after one was already connected: heap growth comes
  in whole pages, so a client smaller than the free space left in resident
  pages reads 0. The $RSS_N-client row averages that out. Kernel socket
  buffers are not in a process's RSS, for any contender.
- Reconnect lateness: disconnect at t0, reconnect meant for t0 + $RC_DELAY ms,
  through each library's own timer; the row is the connection being up
  (connect callback) minus that. It can be negative when a loop schedules
  from a clock it read before t0 (libuv's cached loop time).
EOF
echo
echo "## Goals"
echo
echo "| goal | measured | verdict |"
echo "|---|---|---|"
echo "| round trip ≤ libuv and ≤ 1.10 × plain, 1 B | $(x "$R1U") libuv, $(x "$R1P") plain | ${V_R1%%:*} |"
echo "| round trip ≤ libuv and ≤ 1.10 × plain, 64 B | $(x "$R64U") libuv, $(x "$R64P") plain | ${V_R64%%:*} |"
echo "| throughput ≥ libuv and ≥ 0.97 × plain | $(x "$TU") libuv, $(x "$TP") plain | ${V_TP%%:*} |"
echo "| RSS per idle client ≤ libuv ($RSS_N clients) | one at a time $(fmt "$RSSK") KiB against $(fmt "$RSSU") KiB, all at once $(fmt "$RSSKA") against $(fmt "$RSSUA") (1 client: $(fmt "$RSSK1") against $(fmt "$RSSU1")) | $V_RSS |"
echo "| system calls per reconnect ≤ libuv | $(fmt "$SCK") against $(fmt "$SCU") | $V_SC |"
echo "| detection within 1.03 × the kernel's deadline | worst median ratio $(x "$DETW") over every keepalive setting and fault | ${V_DET%%:*} |"
echo
echo "For scale: \`ka_client_new\` allocates $(fmt "$(med client_heap_block_bytes)") bytes for a client of the default"
echo "configuration whose settings another client already holds ($(fmt "$(med client_heap_block_first_bytes)") for the first),"
echo "and, beyond that, one 88-byte block per connection attempt, given back when"
echo "the connection is made, and queues only when a message has to wait; the"
echo "event-loop libraries allocate a small handle per connection and buffer"
echo "nothing until data moves. An idle connected client of this bench (x86-64,"
echo "an address literal, a 5-digit port) is its block alone: 232 bytes, a"
echo "240-byte malloc chunk, where libuv's 248-byte handle takes 256. The client"
echo "is 208 (seven 64-bit counters and ten per-reason counts, two 64-bit and"
echo "two 32-bit timestamps, four pointers, state with its flags as bits,"
echo "backoff), the server's record, name and port 22; the literal is read"
echo "again with inet_pton() at each attempt rather than kept. Started all at"
echo "once, each client also leaves"
echo "behind the 96-byte chunk its attempt's work block was given back into, as"
echo "each libuv client leaves its connect request's."
echo "The system calls per reconnect are listed by name above."
echo
echo "Why the misses, where there are any:"
echo
# A goal that lies inside the p10–p90 of its own ratio in this run is
# not decided by it: say so, so that a noisy host's run is read as one.
for pair in "rtt_ratio_1_ka_uv 1.00 round trip 1 B ÷ libuv" "rtt_ratio_1_ka_raw 1.10 round trip 1 B ÷ plain" \
            "rtt_ratio_64_ka_uv 1.00 round trip 64 B ÷ libuv" "rtt_ratio_64_ka_raw 1.10 round trip 64 B ÷ plain" \
            "bulk_ratio_ka_uv 1.00 throughput ÷ libuv" "bulk_ratio_ka_raw 0.97 throughput ÷ plain"; do
    read -r key goal what <<< "$pair"
    read -r m lo hi n <<< "$(st "$key")"
    [ "$n" -ge 3 ] 2>/dev/null || continue
    if awk -v l="$lo" -v h="$hi" -v g="$goal" 'BEGIN { exit !(l + 0 <= g + 0 && g + 0 <= h + 0) }'; then
        echo "- $what: the goal ($goal) lies inside this run's own spread of the ratio"
        echo "  (p10–p90 $(fmt "$lo")–$(fmt "$hi"), median $(fmt "$m")): this run does not decide it."
    fi
done
case "$V_R1$V_R64" in *missed*)
echo "- **Round trip**: \`ka_client_poll\` waits in \`select()\` and then reads, where"
echo "  the plain blocking loop sleeps inside \`recv()\`: 3 system calls per reply"
echo "  against 2 (see the system call rows). A library that keeps deadlines"
echo "  must not block inside \`recv()\`, and the design keeps \`select()\`.";; esac
case "$V_TP" in *missed*)
echo "- **Throughput**: when the kernel's buffer is full, the rest of a message"
echo "  and the messages after it are copied into the send queue (the caller may"
echo "  reuse its buffer at once); libuv keeps the caller's buffers instead and"
echo "  the blocking loop sleeps in \`send()\`.";; esac
case "$V_RSS" in *missed*)
echo "- **Memory**: an idle connected ka_client is its block alone (see above),"
echo "  libuv's its handle and a loop entry: the application keeps the rest"
echo "  (this bench's libuv client holds no reconnect timer, no server address"
echo "  and no counters). A client of a name keeps room for 8 addresses of its last good"
echo "  lookup (224 bytes) and 24 bytes for its lookup besides: see the"
echo "  localhost rows under \"ka_client on its own\".";; esac
cat <<'EOF'

## ka_client on its own

Measurements no other contender has a counterpart for. Median, p10–p90, n
values.

EOF
echo "| measurement | median | p10–p90 | n |"
echo "|---|---|---|---|"
krow() {   # krow LABEL KEY [r: a ratio, three decimals]
    local m lo hi n f=fmt
    [ "${3:-}" = r ] && f=fmt3
    read -r m lo hi n <<< "$(st "$2")"
    if [ "$n" = 0 ]; then echo "| $1 | skipped | | 0 |"; else echo "| $1 | $($f "$m") | $($f "$lo")–$($f "$hi") | $n |"; fi
}
fmt3() { awk -v x="$1" 'BEGIN { printf "%.3f\n", x }'; }
for f in cable crash; do
    for s in 1-1-3 2-1-2 1-1-5; do
        krow "detection ÷ deadline, $( [ $f = cable ] && echo "pulled cable" || echo "crashed host"), idle/interval/count $s s" "det_ratio_${f}_$s" r
    done
done
krow "library delay: kernel error → on_disconnect, µs" "^det_overhead_us_(cable|crash)"
krow "library processing: select() return → on_disconnect, µs" "^det_libproc_us_(cable|crash)"
krow "busy dead path, ka_client (deadline 4 s), detection ms" det_ms_busy_ut
krow "busy dead path, plain socket, no user timeout, tcp_retries2=4, ms" det_ms_busy_raw_r4
for j in 0.0 0.5 1.0; do
    krow "storm, $STORM_N clients, jitter $j: peak attempts per 100 ms" "storm_peak_j$j"
    krow "storm, jitter $j: peak ÷ mean" "storm_peak_mean_j$j" r
    krow "storm, jitter $j: restart → all reconnected, ms" "storm_all_back_ms_j$j"
done
krow ".text of ka_client.o, -O2, bytes" text_bytes_O2
krow ".text of ka_client.o, -Os, bytes" text_bytes_Os
krow "client block with default buffers, no-heap mode (ka_client_size), bytes" client_default_block_bytes
krow "client block from ka_client_new, the first with its settings, bytes" client_heap_block_first_bytes
krow "client block from ka_client_new, sharing the settings, bytes" client_heap_block_bytes
krow "RSS per idle client of a name (localhost), $RSS_N connected one at a time, KiB" "rss_kib_per_client_name_$RSS_N"
krow "RSS per idle client of a name (localhost), $RSS_N started all at once, KiB" "rss_kib_per_client_name_all_$RSS_N"
krow "allocations per reconnect, library (hooks)" alloc_hooks_per_cycle_numeric
krow "allocations per reconnect, library (--wrap=malloc)" alloc_lib_per_cycle_numeric
krow "allocations per reconnect, whole process, host 127.0.0.1" alloc_process_per_cycle_numeric
krow "allocations per 1000 messages while connected" alloc_steady_per_1000_msgs_numeric
krow "peak RSS of kacat sending 64 MiB, KiB" rss_kib_kacat
krow "cable pulled under load (busy deadline 8 s): on_health degraded after, ms" trace_warn_ms
krow "cable pulled under load: busy deadline left at the warning, ms" trace_left_at_warn_ms
krow "cable pulled under load: TIMEOUT reported after, ms" trace_end_ms
krow "wake-ups in $IDLE_S s idle after an exchange, on_health set" idle_health_nvcsw
krow "wake-ups in $IDLE_S s idle after an exchange, on_health not set" idle_plain_nvcsw
krow "resolver dark, restarts every 100 ms: longest library call, µs" dns_max_call_us
[ -n "$KACAT_NOTE" ] && { echo; echo "$KACAT_NOTE."; }
echo
echo "## Connect time on a dual-stack name"
echo
echo "A name with an IPv6 and an IPv4 address, the server's SYNs of one family"
echo "dropped; from the start (\`ka_client_start\`, curl's own start) to the connection"
echo "being up, median (p10–p90) over $HE_RUNS runs each, in ms. ka_client starts the"
echo "next family \`connection_attempt_delay_ms\` (250) after the first; libcurl gives"
echo "the first family 200 ms (\`CURLOPT_HAPPY_EYEBALLS_TIMEOUT_MS\`)."
echo
echo "| case | ka_client | curl ${CURL_VERSION:-} |"
echo "|---|---|---|"
echo "| both families answer | $(cell connect_ms_he_none_ka) | $(cell connect_ms_he_none_curl) |"
echo "| IPv6 blackholed, IPv6 first (glibc's order) | $(cell connect_ms_he_v6dark_ka) | $(cell connect_ms_he_v6dark_curl) |"
echo "| IPv4 blackholed, IPv4 first (gai.conf) | $(cell connect_ms_he_v4dark_ka) | $(cell connect_ms_he_v4dark_curl) |"
[ -n "${HE_NOTE:-}" ] && { echo; echo "Connect time: $HE_NOTE."; }
[ -n "${SEE_NOTE:-}" ] && { echo; echo "Seeing-the-link rows: $SEE_NOTE."; }
echo
echo "## Pictures"
echo
if [ -n "$STORM_IMG" ]; then
    echo "![Reconnect storm: connect attempts per 100 ms after a server restart, at jitter 0, 0.5 and 1]($STORM_IMG)"
    echo
    echo "The reconnect storm ($STORM_N clients, run $STORM_REPS time(s) per setting; the last run drawn):"
    echo "with jitter 0 every client retries in the same window; jitter spreads each"
    echo "retry over [d × (1 − jitter), d], so the peak drops while the whole recovery"
    echo "takes longer."
else
    echo "Reconnect storm picture: not drawn in this run (storm not run, or gnuplot missing)."
fi
echo
if [ -n "${TRACE_IMG:-}" ]; then
    echo "![A cable pulled under load: round trip, retransmissions and unacknowledged data from ka_client_stats, with on_health's warning, the busy deadline and the TIMEOUT marked]($TRACE_IMG)"
    echo
    echo "A cable pulled while ka_client streams (the last of $LAB_REPS run(s) drawn):"
    echo "no acknowledgement comes back, so the smoothed round trip stays where it"
    echo "was; the kernel retransmits the oldest data with a doubling timeout, and"
    echo "on_health says \"degraded\" at the first retransmission, with most of the"
    echo "deadline left. The busy deadline ends the connection (\`KA_REASON_TIMEOUT\`)."
else
    echo "RTT and retransmissions of a cable pulled under load, with the library's warning"
    echo "and its deadline marked: ${TRACE_NOTE:-not drawn: the trace did not run}."
fi
echo
cat <<EOF
## How each number is taken

Every program is built at -O2 into build/bench/ by \`make bench\`, which first
installs what it needs from Debian (root; otherwise it names what is missing and
races without it). One program per contender (bench/race_*.c with the shared
driver bench/race.c), each linked with its own library only.

1. **Server**: bench/raceserv.c, one process for the whole loopback race,
   pinned to CPU 0, an echo port and a sink port. Every contender's every
   connection goes to it. Every connection has keepalive on where the API
   has a way: idle 5 s, interval 5 s, 3 probes (ka_client's defaults) through
   setsockopt for plain and libevent, \`uv_tcp_keepalive(h, 1, 5)\` for libuv,
   \`redisEnableKeepAlive\` for hiredis, the default configuration for ka_client.
2. **Round trip** (\`race-NAME rtt\`): one connection, $RTT_N messages of 1 B (then
   64 B), each sent when the previous one's echo is back, client and server
   pinned to CPU 0 (\`taskset -c 0\`). Plain: blocking send()/recv(). ka_client:
   \`ka_client_send\`, then \`ka_client_poll\` until \`on_data\` has the echo.
   libuv: \`uv_write\` and a \`uv_read_start\` callback; libevent: \`bufferevent_write\`
   and its read callback; hiredis: \`redisCommand(c, "PING %b")\`. Timed from the
   first send to the last reply. $REPS repeats, each running every contender
   once, 1 B then 64 B; ratios are ka_client's time over the other's within
   each repeat.
3. **Throughput** (\`race-NAME bulk\`): $((BULK >> 20)) MiB in 64 KiB writes to
   the sink port, pinned as above, then FIN, timed from the first write to the
   server's close (it closes when it has read everything). User-space queueing
   capped at 256 KiB for all: ka_client's send_buffer_size, four outstanding
   \`uv_write\`s, libevent refilling to 256 KiB from its write callback (write
   low-water mark 192 KiB). $REPS repeats, interleaved with the round trips.
4. **RSS per idle client** (\`race-NAME rss\`): one client connected first (the
   library's code and once-only allocations in the baseline), Rss from
   /proc/self/smaps_rollup, then N more clients, each connected (its connect
   callback run) and left idle, Rss again; the row is the difference over N.
   N = 1 and N = $RSS_N, $RSS_REPS repeats. One at a time: each client
   connected before the next starts, so what a library holds only while
   connecting is reused from one client to the next. All at once
   (\`-a\`): every client started first, then all waited for together, so
   that memory is held by all of them at the same time, and what it leaves
   behind in the heap stays resident. plain and hiredis connect with a
   blocking call: one at a time in both rows. ka_client's all-at-once run
   keeps its client pointers in an array (8 bytes a client), counted against it.
5. **System calls** (\`strace -f -c\`, the client process and its threads):
   each command twice, with ${SC_RTT% *} and ${SC_RTT#* } round trips of 1 B,
   ${SC_RC% *} and ${SC_RC#* } reconnects (1 ms delay), $((BULK >> 22)) and
   $((BULK >> 20)) MiB of bulk; per call, the count difference divided by the
   difference in operations, so start-up, the first connect and exit cancel out. Every
   call counts, timers' included; keepalive is set on every new connection
   as in 1.
6. **Reconnect lateness** (\`race-NAME reconnect\`): $RC_CYCLES cycles per
   repeat, $RC_REPS repeats, unpinned: disconnect, reconnect after
   $RC_DELAY ms by the library's own timer (ka_client's backoff with initial =
   max = $RC_DELAY ms and jitter 0, a \`uv_timer\`, an \`evtimer\`, the plain
   program's and hiredis' \`poll()\`), then lateness = connected − (t0 +
   $RC_DELAY ms).
7. **Idle** (\`race-NAME idle\`): one connection, then the library's loop alone
   for $IDLE_S s (server silent); voluntary context switches of the whole
   process from \`getrusage\` minus the one that ends the period. Keepalive
   probes are the kernel's and wake no process. All contenders at once, in
   the background of the rest of the run.
8. **Pulled cable** (namespace lab, root): three namespaces made for the run,
   client 10.78.0.1 and server 10.78.0.2 each on a veth into a bridge in the
   third; pulling the server's port (\`ip link set vs down\` in the bridge
   namespace) leaves the client's carrier up. Every contender twice, out of
   the box and at its tightest keepalive, all connected at once to one
   raceserv with ka_client's detail clients; each exchanges one message,
   then the cable is pulled. Reported after = from the echo's arrival to the
   library telling the application (error callback, \`on_disconnect\`, a
   failing read); the deadline is read back from the socket
   (SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT: idle + interval × count) whatever
   the library set. A contender that reports nothing within $BOUND_S s reads
   "> $BOUND_S s". $LAB_REPS repeat(s).
9. **ka_client detail** (same lab, \`kabench detect\`): three keepalive
   settings, pulled cable and crashed host (nft drops everything in the server
   namespace, then the server is SIGKILLed). Detection = \`tcpi_last_ack_recv\`
   at the moment the kernel reports the error, plus the library's delay after
   that; the library's delay: a second thread polls a \`dup()\` of the socket
   for POLLERR/POLLHUP and stamps the clock, \`on_disconnect\` stamps it again
   (both wake from the same kernel event, so it can be negative). Busy dead
   path: the client sends 1 KiB every 10 ms, so data is unacknowledged when
   the cable goes; ka_client's busy-path deadline is its default (the idle
   deadline, 4 s here); the baseline is a plain socket with the same keepalive
   and no user timeout, where only retransmission gives up: the lab sets
   tcp_retries2=4 in the client namespace only (6.2 s by the kernel's model;
   the default 15 is about 924.6 s, 15.4 minutes).
10. **Reconnect storm** (\`kabench storm\`): $STORM_N ka_client clients in one
   process and one poll() loop, a server child that closes everything once
   all have been up 400 ms and listens again 1.2 s later. Backoff 500 ms
   initial, ×2, 4 s max. Every connect attempt stamped through \`on_log\`,
   counted in 100 ms windows from the restart to the last reconnect.
11. **Footprint**: \`size -A\` of ka_client.o at -O2 and -Os (gcc, x86-64);
   allocations per reconnect counted through the allocator hooks (the
   client is made with hooks), through \`-Wl,--wrap=malloc\` on ka_client.o
   (calls that bypass the hooks), and for the whole process (the hooks' and
   libc's getaddrinfo included) by a malloc defined in bench/kaalloc.c; kacat's peak
   RSS from wait4().
12. **Cable pulled under load** (\`kabench trace\`, namespace lab with
   test/lab/lab_relay in place of the bridge, 20 ms each way): one client with
   \`on_health\` set streams 100 kB/s in 1 KiB messages to raceserv's sink,
   \`user_timeout_ms\` 8000 (health threshold: its default, a quarter of that);
   \`ka_client_stats\` every 20 ms. The driver signals the client, pulls the
   server's port, signals again; times are from the first signal. The client
   namespace's tcp_retries2 is put back to 15 for this, so that only the
   library's deadline can end the connection. $LAB_REPS run(s).
13. **Connect time on a dual-stack name** (\`kabench connect\` and curl, namespace
   lab): the client namespace's /etc/hosts gives \`dual.bench\` fd78::2 and
   10.78.0.2; \`kabench acceptor\` in the server namespace accepts on both and
   closes at once; nftables in the server namespace drops the SYNs of one
   family. ka_client: default configuration, \`ka_client_start\` to
   \`on_connect\`, a new client per run. curl: \`curl -so /dev/null
   --connect-timeout 5 -w '%{time_connect}' telnet://dual.bench:7001\`
   (the server's close ends the session). $HE_RUNS runs per case and client.
14. **Resolver dark** (\`kabench dnsout\`, namespace lab): the client namespace's
   resolv.conf names 10.78.0.53, which the bridge answers ARP for while
   nftables drops every DNS query to it (glibc: 5 s, two tries). One client
   for a name only DNS could answer, \`resolve_timeout_ms\` 1000, driven by the
   bench's own \`select()\` loop (20 ms waits at most), stopped, given a
   message and started again every 100 ms, for $DNS_S s; every library call
   timed (start, stop, send, fdset, timeout, process, free), the loop's own
   \`select()\` not. $LAB_REPS run(s).
15. **Idle with on_health** (\`kabench idle\`, loopback, raceserv's echo): one
   message exchanged, then the client's loop waits until it has no timer
   left, then runs alone for $IDLE_S s; voluntary context switches less the one
   that ends the period, with \`on_health\` set and without.

Machine: $CPU, $CORES CPUs online, $KERNEL$VM, cpuidle driver $IDLEDRV;
$GCC; $LIBC.
EOF
} > "$OUT"
