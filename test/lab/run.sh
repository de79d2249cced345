#!/usr/bin/env bash
# The network-namespace lab: ka_client against real network faults.
#
# Each scenario builds its own small LAN out of three network namespaces and
# runs in parallel with the others:
#
#     client ns                 switch ns                  server ns
#   +-----------+        +-------------------+        +---------------+
#   | lab_client|        |       br0         |        |  lab_server   |
#   | eth0      |--veth--| c               s |--veth--| eth0          |
#   | 10.77.0.1 |        +-------------------+        | 10.77.0.2     |
#   +-----------+                                     +---------------+
#
# The client's cable goes to a switch port, so pulling the server's cable
# (switch port "s" down) leaves the client with link carrier, as on a real
# LAN. Faults: unplug/replug "s"; crash (port dark, processes SIGKILLed, NIC
# and namespace deleted: nothing at all leaves the host); reboot (a fresh
# server namespace with the same IP and MAC); nftables rules in the server
# namespace that drop SYNs, drop everything, or reject with ICMP host
# unreachable. 10.77.0.0/24 exists only inside these namespaces.
#
# lab_client prints "<monotonic ms> <event> ..." lines; the driver puts its
# faults on the same timeline with "mark WORD" commands, then reads the
# detection time off the client's output. Every wait has a deadline, every
# process a lifetime, and everything is torn down on exit, failure or
# interrupt. Output: a table (scenario, expected reason, reason seen,
# detection time, bound) and "N passed, N failed, N skipped".
#
# Usage: test/lab/run.sh [SCENARIO-SUBSTRING]   (root; iproute2, nftables;
# tcpdump for the wire scenario). KA_LAB_KEEP=1 keeps the work directory;
# KA_LAB_TRACE=1 also captures every scenario's packets there (trace).

set -u
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
CLIENT=$here/lab_client
SERVER=$here/lab_server
ID=ka-lab-$$                       # every namespace of this run starts so
SRV_IP=10.77.0.2 CLI_IP=10.77.0.1 PORT=7000
SRV_MAC=02:77:00:00:00:02          # a rebooted host keeps its NIC's address
KA="-i 1000 -v 1000 -c 3"          # keepalive in the lab: idle + 1 s * 3 = 4 s
SLACK=250                          # timer granularity; see RESULTS.md

SCENARIOS="alive_idle crash reboot unplug brief_unplug icmp_idle icmp_data
           graceful killed syn_blackhole unacked outage silent wire"
only=${1:-}

# ---- preconditions: skip, with one line saying why ------------------------

nscen=$(echo $SCENARIOS | wc -w)
skip() {
    echo "lab: skipped: $1"
    echo "0 passed, 0 failed, $nscen skipped"
    exit 0
}
[ "$(uname -s)" = Linux ] || skip "network namespaces need Linux"
[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "ip (iproute2) not installed"
command -v nft >/dev/null || skip "nft (nftables) not installed"
[ -x "$CLIENT" ] && [ -x "$SERVER" ] || skip "lab programs not built (make suite-lab builds them)"
ip netns add "$ID-probe" 2>/dev/null || skip "'ip netns add' does not work here"
if ! ip -n "$ID-probe" link add br0 type bridge 2>/dev/null ||
   ! ip -n "$ID-probe" link add v0 type veth peer name v1 2>/dev/null ||
   ! ip netns exec "$ID-probe" nft list tables >/dev/null 2>&1; then
    ip netns del "$ID-probe"
    skip "bridge, veth or nftables unavailable in a network namespace"
fi
ip netns del "$ID-probe"

# ---- bookkeeping, teardown -----------------------------------------------

WORK=$(mktemp -d /tmp/ka-lab.XXXXXX)
jobs_pids="" watchdog=""

kill_ns_procs() {   # kill_ns_procs NS SIGNAL: the processes we started in NS
    local p
    for p in $(ip netns pids "$1" 2>/dev/null); do kill "-$2" "$p" 2>/dev/null; done
}

del_lab_ns() {      # del_lab_ns PREFIX: every namespace whose name starts so
    local ns
    for ns in $(ip netns list | awk '{print $1}' | grep "^$1" || true); do
        kill_ns_procs "$ns" KILL
        ip netns del "$ns" 2>/dev/null
    done
}

cleanup() {
    local p
    trap - EXIT INT TERM
    for p in $watchdog $jobs_pids; do kill -TERM "$p" 2>/dev/null; done
    del_lab_ns "$ID-"
    [ -n "${KA_LAB_KEEP:-}" ] && echo "lab: work directory kept: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "lab: interrupted"; exit 1' INT TERM

# A run that crashed or was killed -9 left namespaces behind: remove those
# whose run (the PID in the name) is gone.
for ns in $(ip netns list | awk '{print $1}' | grep '^ka-lab-[0-9]*-' || true); do
    pid=${ns#ka-lab-}; pid=${pid%%-*}
    kill -0 "$pid" 2>/dev/null || { kill_ns_procs "$ns" KILL; ip netns del "$ns" 2>/dev/null; }
done

# ---- time and waiting ----------------------------------------------------

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# wait_for FILE REGEX MS: 0 once a line of FILE matches, 1 after MS.
wait_for() {
    local end=$(($(now_ms) + $3))
    until grep -qE -- "$2" "$1" 2>/dev/null; do
        [ "$(now_ms)" -ge "$end" ] && return 1
        sleep 0.02
    done
}

# stamp FILE REGEX [AFTER]: the time of the first line matching REGEX (and
# stamped at or after AFTER); empty if none.
stamp() { awk -v re="$2" -v after="${3:-0}" '$1 >= after && $0 ~ re { print $1; exit }' "$1"; }

# field FILE REGEX KEY: KEY=value from the first line matching REGEX.
field() {
    awk -v re="$2" -v key="$3" '$0 ~ re { for (i = 2; i <= NF; i++) if (index($i, key "=") == 1) {
        print substr($i, length(key) + 2); exit } }' "$1"
}

# netstat NS COUNTER: a TcpExt counter of namespace NS (/proc/net is per ns).
netstat() {
    ip netns exec "$1" cat /proc/net/netstat | awk -v k="$2" '
        /^TcpExt:/ { if (!h) { split($0, n); h = 1 } else { split($0, v); for (i in n) if (n[i] == k) print v[i] } }'
}

# ---- the lab: build, faults, tear down ------------------------------------
# A lab is named by its prefix L ($ID-<scenario>); its namespaces are L-c,
# L-s, L-w.

server_boot() {     # a host comes up: fresh namespace, stack and NIC, same IP and MAC
    local L=$1
    ip netns add "$L-s" &&
    ip -n "$L-w" link add s type veth peer name eth0 netns "$L-s" &&
    ip -n "$L-s" link set eth0 address "$SRV_MAC" &&
    ip -n "$L-s" addr add "$SRV_IP/24" dev eth0 &&
    ip -n "$L-s" link set lo up && ip -n "$L-s" link set eth0 up &&
    ip -n "$L-w" link set s master br0 && ip -n "$L-w" link set s up
}

lab_up() {
    local L=$1
    ip netns add "$L-w" && ip netns add "$L-c" &&
    ip -n "$L-w" link add br0 type bridge && ip -n "$L-w" link set br0 up &&
    ip -n "$L-w" link add c type veth peer name eth0 netns "$L-c" &&
    ip -n "$L-w" link set c master br0 && ip -n "$L-w" link set c up &&
    ip -n "$L-c" addr add "$CLI_IP/24" dev eth0 &&
    ip -n "$L-c" link set lo up && ip -n "$L-c" link set eth0 up &&
    server_boot "$L"
}

unplug() { ip -n "$1-w" link set s down; }
replug() { ip -n "$1-w" link set s up; }

crash() {           # power lost: nothing more leaves the host, not even a FIN
    local L=$1
    unplug "$L"                         # the port goes dark first, so the
    kill_ns_procs "$L-s" KILL           # killed server's FIN goes nowhere;
    ip -n "$L-w" link del s             # then its NIC (both veth ends)
    ip netns del "$L-s"                 # and its whole TCP stack are gone
}

firewall() {        # firewall L RULE: one input rule in the server namespace
    ip netns exec "$1-s" nft -f - <<EOF
table ip lab {
    chain in {
        type filter hook input priority 0; policy accept;
        $2
    }
}
EOF
}

# ---- client and server processes ------------------------------------------
# Per scenario: $W/srv.out, $W/cli.out; the client reads commands from a FIFO
# the scenario holds open on fd 3.

start_server() {    # start_server L MODE
    ip netns exec "$1-s" "$SERVER" -l "$SRV_IP" -p "$PORT" -m "$2" -T 60000 >>"$W/srv.out" 2>&1 &
    echo $! >"$W/srv.pid"               # ip netns exec execs: this is the server
    wait_for "$W/srv.out" "listen$" 2000
}

start_client() {    # start_client L CLIENT-OPTIONS...: returns once it has started
    local L=$1; shift
    mkfifo "$W/cmd"
    ip netns exec "$L-c" "$CLIENT" -h "$SRV_IP" -p "$PORT" -T 30000 "$@" <"$W/cmd" >"$W/cli.out" 2>&1 &
    exec 3>"$W/cmd"
}

cmd() { echo "$*" >&3; }     # a command to the client: mark WORD, send N, quit

# ---- results ----------------------------------------------------------------

# row SCENARIO EXPECTED SEEN MEASURED BOUND OK: one line of the table; OK is
# 1 (pass) or 0 (fail); a failure also shows the client's output.
row() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >>"$W/row"
    if [ "$6" != 1 ]; then
        { echo "--- $1: client output"; cat "$W/cli.out" 2>/dev/null
          echo "--- $1: server output"; cat "$W/srv.out" 2>/dev/null; } >>"$W/log"
    fi
}

# within VALUE LOW HIGH: 1 if LOW <= VALUE <= HIGH (integers), else 0.
within() { [ -n "$1" ] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ] && echo 1 || echo 0; }

# mark_time WORD: when the client stamped "mark WORD" (waits for it).
mark_time() {
    wait_for "$W/cli.out" " mark $1$" 1000
    stamp "$W/cli.out" " mark $1$"
}

# check_disconnect SCENARIO EXPECTED-REASON T0 LOW HIGH BOUND-TEXT: the first
# disconnect at or after T0 (ms) must have the reason and come between LOW
# and HIGH ms after T0.
check_disconnect() {
    local s=$1 want=$2 t0=$3 t1 seen dt
    wait_for "$W/cli.out" " disconnect " $(($5 + 2000))
    t1=$(stamp "$W/cli.out" " disconnect " "${t0:-0}")
    seen=$(field "$W/cli.out" " disconnect " reason)
    [ -n "$t1" ] && [ -n "$t0" ] && dt=$((t1 - t0)) || dt=""
    local en; en=$(field "$W/cli.out" " disconnect " errno)
    row "$s" "$want" "${seen:-none}${en:+ (errno $en)}" "${dt:-none} ms" "$6" \
        "$([ "$seen" = "$want" ] && within "$dt" "$4" "$5" || echo 0)"
}

connected() {       # connected SCENARIO: the client connected within 2 s
    wait_for "$W/cli.out" " connect$" 2000 && return 0
    row "$1" "-" "never connected" "-" "-" 0
    return 1
}

# ---- scenarios ----------------------------------------------------------------
# Each runs in its own lab L, writes its row, and must end well within the
# client's 30 s lifetime.

sc_alive_idle() {   # alive and idle: probes answered, nothing ends
    start_server "$L" echo; start_client "$L" $KA
    connected "alive and idle, 6 s = 6 idle periods" || return
    local p0 p1 seen=none
    p0=$(netstat "$L-c" TCPKeepAlive)
    cmd "mark idle"
    wait_for "$W/cli.out" " disconnect " 6000 && seen=$(field "$W/cli.out" " disconnect " reason)
    p1=$(netstat "$L-c" TCPKeepAlive)
    row "alive and idle, 6 s = 6 idle periods" "none" "$seen, $((p1 - p0)) probes answered" \
        "no disconnect" ">= 5 probes" "$([ "$seen" = none ] && within $((p1 - p0)) 5 7 || echo 0)"
}

sc_crash() {        # crashed / powered off: nothing answers, nothing is sent
    start_server "$L" echo; start_client "$L" $KA
    connected "crashed (powered off)" || return
    sleep 1.5                           # a few answered probes first
    cmd "mark crash"; crash "$L"
    check_disconnect "crashed (powered off)" TIMEOUT "$(mark_time crash)" 3000 $((4000 + SLACK)) "3000..4000 +$SLACK"
}

sc_reboot() {       # crashed, then rebooted: the fresh stack answers a probe with RST
    start_server "$L" echo; start_client "$L" $KA
    connected "crashed, rebooted after 1 s" || return
    sleep 1.5
    cmd "mark crash"; crash "$L"
    sleep 1
    server_boot "$L"; start_server "$L" echo
    cmd "mark rebooted"
    check_disconnect "crashed, rebooted after 1 s" PEER_RESET "$(mark_time rebooted)" 0 $((1000 + SLACK)) "next probe: 1000 +$SLACK"
}

sc_unplug() {       # alive but unreachable: the server's cable pulled, silence
    start_server "$L" echo; start_client "$L" $KA
    connected "server cable pulled" || return
    sleep 1.5
    cmd "mark unplug"; unplug "$L"
    check_disconnect "server cable pulled" TIMEOUT "$(mark_time unplug)" 3000 $((4000 + SLACK)) "3000..4000 +$SLACK"
}

sc_brief_unplug() { # a cable pulled for less than the deadline: the connection survives
    local s="cable pulled 1.5 s, replugged" seen=none
    start_server "$L" echo; start_client "$L" $KA
    connected "$s" || return
    sleep 1.5
    cmd "mark unplug"; unplug "$L"
    sleep 1.5
    replug "$L"; cmd "mark replug"
    wait_for "$W/cli.out" " disconnect " 5000 && seen=$(field "$W/cli.out" " disconnect " reason)
    row "$s" "none" "$seen" "no disconnect in 5 s" "survives" "$([ "$seen" = none ] && echo 1 || echo 0)"
}

sc_icmp_idle() {    # unreachable with an ICMP error, idle: see RESULTS.md
    local s="ICMP host-unreachable, idle" oow
    start_server "$L" echo; start_client "$L" $KA
    connected "$s" || return
    sleep 1.5
    cmd "mark reject"; firewall "$L" "tcp dport $PORT reject with icmp type host-unreachable"
    check_disconnect "$s" TIMEOUT "$(mark_time reject)" 3000 $((4000 + SLACK)) "3000..4000 +$SLACK"
    oow=$(netstat "$L-c" OutOfWindowIcmps)
    echo "$s: client ns OutOfWindowIcmps=$oow" >>"$W/note"
}

# Unreachable with an ICMP error while data is unacknowledged. The segments
# are in window, so each ICMP counts: the socket dies with EHOSTUNREACH at the
# user timeout, counted from the first RTO retransmission (about 410 ms after
# the send: tail loss probe, then RTO), plus up to one RTO because each ICMP
# re-arms the retransmit timer unclamped (RFC 6069 backoff revert). The
# server's ICMP rate limit (6 then 1/s) is lifted so that each retransmission
# is answered and the RTO stays at its base. See RESULTS.md.
sc_icmp_data() {
    local s="ICMP host-unreachable, data unacked"
    start_server "$L" echo; start_client "$L" $KA
    connected "$s" || return
    ip netns exec "$L-s" sysctl -qw net.ipv4.icmp_ratelimit=0
    firewall "$L" "tcp dport $PORT reject with icmp type host-unreachable"
    cmd "mark send"; cmd "send 100"
    check_disconnect "$s" UNREACHABLE "$(mark_time send)" 4300 $((4000 + 410 + 210 + SLACK)) "4000 +410 (1st RTO) +210 (RTO) +$SLACK"
}

sc_graceful() {     # the server closes: FIN
    start_server "$L" echo; start_client "$L" $KA
    connected "graceful close" || return
    kill -USR1 "$(cat "$W/srv.pid")"
    wait_for "$W/srv.out" " close " 1000
    check_disconnect "graceful close" PEER_CLOSED "$(stamp "$W/srv.out" " close ")" 0 100 "at once (100)"
}

sc_killed() {       # the server process killed while holding unread data: RST
    local s="server process killed (unread data)"
    start_server "$L" hold; start_client "$L" $KA
    connected "$s" || return
    cmd "send 64"
    wait_for "$W/srv.out" " unread$" 2000
    local pid; pid=$(cat "$W/srv.pid")
    cmd "mark kill"; kill -KILL "$pid"      # nothing forked between mark and kill
    check_disconnect "$s" PEER_RESET "$(mark_time kill)" 0 100 "at once (100)"
}

sc_syn_blackhole() { # SYNs dropped: the attempt ends at connect_timeout_ms
    local s="SYN blackholed" t0 t1 seen dt
    firewall "$L" "tcp flags & (syn | ack) == syn drop"
    start_server "$L" echo; start_client "$L" $KA -C 1500
    wait_for "$W/cli.out" " retry " 3500
    t0=$(stamp "$W/cli.out" " start$"); t1=$(stamp "$W/cli.out" " retry ")
    seen=$(field "$W/cli.out" " retry " reason)
    [ -n "$t1" ] && dt=$((t1 - t0)) || dt=""
    row "$s" CONNECT_TIMEOUT "${seen:-none}" "${dt:-none} ms" "connect_timeout 1500 +100" \
        "$([ "$seen" = CONNECT_TIMEOUT ] && within "$dt" 1500 1600 || echo 0)"
}

# The path dies while sent data is unacknowledged: keepalive is out of the
# picture (idle 10 s, and it never probes while data is in flight); the user
# timeout ends it, counted from the first RTO retransmission, which comes a
# tail-loss-probe timeout plus an RTO (2 x ~205 ms on this LAN) after the
# send. Without TCP_USER_TIMEOUT: tcp_retries2 = 15, about 15 minutes.
sc_unacked() {
    local s="path lost, data unacked (user_timeout 3 s)"
    start_server "$L" echo; start_client "$L" -i 10000 -v 1000 -c 3 -u 3000
    connected "$s" || return
    unplug "$L"
    cmd "mark send"; cmd "send 100"
    check_disconnect "$s" TIMEOUT "$(mark_time send)" 3300 $((3000 + 410 + SLACK)) "3000 +410 (1st RTO) +$SLACK"
}

sc_outage() {       # the server is down for 3 s; the client must be back within one backoff delay
    local s="server back after 3 s outage" tb tc d seen
    start_server "$L" echo; start_client "$L" $KA -b 200 -B 1600 -j 0.5
    connected "$s" || return
    cmd "mark down"; kill -TERM "$(cat "$W/srv.pid")"
    sleep 3
    : >"$W/srv.out"; start_server "$L" echo
    tb=$(stamp "$W/srv.out" " listen$")
    local end=$(($(now_ms) + 3000))
    until [ -n "$(stamp "$W/cli.out" " connect$" "$tb")" ] || [ "$(now_ms)" -ge "$end" ]; do sleep 0.02; done
    tc=$(stamp "$W/cli.out" " connect$" "$tb")
    # the retry that was pending when the server came back: last one before tb
    read -r _ d <<<"$(awk -v tb="$tb" '$2 == "retry" && $1 < tb { t = $1; for (i = 3; i <= NF; i++)
        if ($i ~ /^delay=/) d = substr($i, 7) } END { print t, d }' "$W/cli.out")"
    seen=$(awk '$2 == "retry" { sub("reason=", "", $5); r = r (r ? "," : "") $5 } END { print r }' "$W/cli.out" |
        tr ',' '\n' | sort | uniq -c | awk '{ printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1 }')
    row "$s" "reconnect" "${tc:+reconnected }after ${seen:-no retries}" \
        "${tc:+$((tc - tb)) ms}" "pending delay ${d:-?} (+100)" \
        "$([ -n "$tc" ] && [ -n "$d" ] && within $((tc - tb)) 0 $((d + 100)) || echo 0)"
}

sc_silent() {       # an application that hangs while its kernel answers probes
    local s="silent server, idle_timeout 1.5 s"
    start_server "$L" sink; start_client "$L" $KA -I 1500 -H 500
    connected "$s" || return
    local tc t1 seen
    wait_for "$W/cli.out" " disconnect " 3500
    tc=$(stamp "$W/cli.out" " connect$"); t1=$(stamp "$W/cli.out" " disconnect ")
    seen=$(field "$W/cli.out" " disconnect " reason)
    row "$s" HEARTBEAT "${seen:-none}" "${t1:+$((t1 - tc)) ms}" "idle_timeout 1500 +100" \
        "$([ "$seen" = HEARTBEAT ] && [ -n "$t1" ] && within $((t1 - tc)) 1500 1600 || echo 0)"
}

# On the wire: idle 2 s, interval 1 s, count 2. The peer answers two probes
# (each idle period), then goes silent: the next probe comes one idle period
# after the last answer, the one after that one interval later, and one
# interval after that the client gives up (user timeout 4 s since the last
# answer) and sends RST.
sc_wire() {
    local s="on the wire: idle 2 s, interval 1 s, count 2"
    if ! command -v tcpdump >/dev/null; then
        row "$s" "-" "skipped: tcpdump not installed" "-" "-" skip; return
    fi
    ip netns exec "$L-c" tcpdump -i eth0 -tt -n -S -l -x "tcp port $PORT" >"$W/tcpdump" 2>"$W/tcpdump.err" &
    wait_for "$W/tcpdump.err" "listening on" 3000
    start_server "$L" echo; start_client "$L" -i 2000 -v 1000 -c 2
    connected "$s" || return
    cmd "send 5"
    wait_for "$W/cli.out" " data " 1000
    sleep 4.6                           # two answered probes, at +2 s and +4 s
    firewall "$L" "drop"
    wait_for "$W/cli.out" " disconnect " 6000
    sleep 0.2
    kill_ns_procs "$L-c" INT; sleep 0.2
    # The client's keepalive probes: pure ACKs (length 0 or 1) from the client
    # whose sequence number is snd_nxt - 1. tcpdump -x gives the raw header.
    awk -v cli="$CLI_IP" -f "$here/wire.awk" "$W/tcpdump" >"$W/wire"
    local seen ok
    seen=$(awk '{ printf "%s%s %+d", (NR > 1 ? ", " : ""), $1, $2 }' "$W/wire")
    # Expect: probe +2000 (answered), probe +2000 (answered), probe +2000
    # after the last answer, probe +1000, RST +1000: each up to 100 ms late.
    ok=$(awk 'BEGIN { n = split("answered:2000 answered:2000 probe:2000 probe:1000 rst:1000", want, " "); ok = 1 }
        { split(want[NR], w, ":"); if ($1 != w[1] || $2 < w[2] || $2 > w[2] + 100) ok = 0 }
        END { print (NR == n && ok) ? 1 : 0 }' "$W/wire")
    row "$s" "probes +2000 +2000, silent: +2000 +1000, RST +1000" "${seen:-no probes seen}" "-" "each +0..100 ms" "$ok"
}

# ---- run ----------------------------------------------------------------------

run_scenario() {    # in a subshell: its own lab, its own fd 3
    local name=$1
    L=$ID-$name
    W=$WORK/$name
    mkdir -p "$W"
    if ! lab_up "$L" >"$W/setup.err" 2>&1; then
        row "$name" "-" "lab setup failed: $(head -c 200 "$W/setup.err")" "-" "-" 0
    else
        if [ -n "${KA_LAB_TRACE:-}" ] && [ "$name" != wire ]; then
            ip netns exec "$L-c" tcpdump -i eth0 -tt -n -S -l >"$W/trace" 2>"$W/trace.err" &
            wait_for "$W/trace.err" "listening on" 3000
        fi
        "sc_$name"
    fi
    exec 3>&- 2>/dev/null               # end of input: the client quits
    sleep 0.1
    del_lab_ns "$L-"
}

t_start=$(now_ms)
for name in $SCENARIOS; do
    [ -n "$only" ] && [ "${name#*$only}" = "$name" ] && continue
    ( run_scenario "$name" ) 2>"$WORK/$name.stderr" &
    jobs_pids="$jobs_pids $!"
done
# A scenario that hangs must not hang the suite: each has at most 90 s.
(
    sleep 90 >/dev/null 2>&1 & nap=$!
    trap 'kill $nap 2>/dev/null; exit 0' TERM
    wait $nap
    echo "lab: scenarios still running after 90 s: stopping them"
    kill -TERM $jobs_pids 2>/dev/null
) &
watchdog=$!
wait $jobs_pids 2>/dev/null
kill "$watchdog" 2>/dev/null; watchdog=""
elapsed=$(($(now_ms) - t_start))

# ---- the table and the summary line --------------------------------------------

pass=0 fail=0 skipped=0
printf '| %-44s | %-16s | %-46s | %-14s | %-28s | %s |\n' scenario expected seen detection bound result
printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..18})" \
    "$(printf -- '-%.0s' {1..48})" "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..30})" "--------"
for name in $SCENARIOS; do
    [ -f "$WORK/$name/row" ] || continue
    while IFS=$'\t' read -r sc want seen dt bound ok; do
        case $ok in
            1) r=ok; pass=$((pass + 1)) ;;
            skip) r=skip; skipped=$((skipped + 1)) ;;
            *) r=FAIL; fail=$((fail + 1)) ;;
        esac
        printf '| %-44s | %-16s | %-46s | %-14s | %-28s | %-6s |\n' "$sc" "$want" "$seen" "$dt" "$bound" "$r"
    done <"$WORK/$name/row"
done
for name in $SCENARIOS; do
    [ -f "$WORK/$name/note" ] && sed 's/^/note: /' "$WORK/$name/note"
    [ -f "$WORK/$name/log" ] && cat "$WORK/$name/log"
done
[ -n "$only" ] || [ $((pass + fail + skipped)) -eq "$nscen" ] || {
    echo "lab: only $((pass + fail + skipped)) of $nscen scenarios reported"; fail=$((fail + nscen - pass - fail - skipped)); }
echo "lab: $(uname -r), scenarios in parallel, $elapsed ms"
echo "$pass passed, $fail failed, $skipped skipped"
[ "$fail" -eq 0 ]
