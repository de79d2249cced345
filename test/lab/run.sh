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
# unreachable; nftables bridge rules in the switch that drop one direction
# (an asymmetric partition) or every frame above a size (an MTU black hole);
# `ss -K` in the client namespace; a resolver whose queries are dropped, or
# a real one (dnsmasq on the switch) that stops or changes its answer. Delay
# and random loss come from lab_relay,
# which replaces the bridge for the scenarios that need them (this kernel has
# no netem qdisc): it relays frames between ports "c" and "s", holding each
# for the configured delay. 10.77.0.0/24 and fd77::/64 (dual-stack rows)
# exist only inside these namespaces. Names: `ip netns exec NS` bind-mounts
# the files of /etc/netns/NS/ (hosts, resolv.conf, gai.conf) over /etc, so a
# client namespace gets its own names and resolver without touching the
# host's; the driver writes them and removes them with the namespace.
#
# lab_client prints "<monotonic ms> <event> ..." lines; the driver puts its
# faults on the same timeline with "mark WORD" commands, then reads the
# detection time off the client's output. Every wait has a deadline, every
# process a lifetime, and everything is torn down on exit, failure or
# interrupt. Output: a table (scenario, expected reason, reason seen,
# detection time, bound) and "N passed, N failed, N skipped".
#
# Usage: test/lab/run.sh [SCENARIO-SUBSTRING]   (root; iproute2, nftables;
# tcpdump for the wire scenario, dnsmasq for the resolver rows).
# KA_LAB_KEEP=1 keeps the work directory; KA_LAB_TRACE=1 also captures every
# scenario's packets there (trace). The stress rows run KA_LAB_STRESS_PROG
# (default: build/lab/lab_stress) under KA_LAB_STRESS_WRAP (e.g. valgrind),
# with calls bounded by KA_LAB_STRESS_MAX_MS (50), so that sanitizer builds
# can run them: `make suite-lab-stress-asan suite-lab-stress-valgrind`.

set -u
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
CLIENT=$here/lab_client
SERVER=$here/lab_server
RELAY=$here/lab_relay
STRESS=${KA_LAB_STRESS_PROG:-$here/../../build/lab/lab_stress}
STRESS_WRAP=${KA_LAB_STRESS_WRAP:-}
ID=ka-lab-$$                       # every namespace of this run starts so
SRV_IP=10.77.0.2 CLI_IP=10.77.0.1 PORT=7000
SRV6=fd77::2 CLI6=fd77::1          # dual-stack rows: ULA addresses, inside the lab only
DNS_IP=10.77.0.53                  # the switch's resolver address (resolver rows)
SRV_MAC=02:77:00:00:00:02          # a rebooted host keeps its NIC's address
KA="-i 1000 -v 1000 -c 3"          # keepalive in the lab: idle + 1 s * 3 = 4 s
U=4000                             # ... and so the default user timeout (busy deadline)
SLACK=250                          # timer granularity; see RESULTS.md

# Bounds of a busy dead path (data unacknowledged), measured from the send:
# [U - 100, U + 410 + SLACK], so that two rules both pass. Linux's
# TCP_USER_TIMEOUT counts U from the first RTO retransmission, which comes a
# tail-loss probe plus an RTO (about 2 x 205 ms on this LAN) after the send:
# U + ~410 (RESULTS.md, point 6). A library that enforces U itself from
# TCP_INFO counts it from the later of the last ACK received and the last new
# data sent, which here is the send: U, and a little late for its own timer.
busy_lo() { echo $(($1 - 100)); }
busy_hi() { echo $(($1 + 410 + SLACK)); }

SCENARIOS="alive_idle crash reboot unplug brief_unplug icmp_idle icmp_data
           graceful killed syn_blackhole unacked outage silent wire
           relay_delay cut_cs_idle cut_cs_data cut_sc_idle cut_sc_data mtu_hole
           lossy slow_reader stall self_connect ss_kill
           mx_idle_lo mx_idle_hi mx_busy_lo mx_busy_hi mx_conn_lo mx_conn_hi mx_busy_off
           ka111_uto8 uto2_conn8 round_ka round_busy round_lost_probe lost_probe_uto1
           dns_blackhole dns_down dns_dark he_v6_dark he_v4_dark dns_move endpoints
           bind_addr bind_iface health_pull health_loss health_stall health_off stats_pull stats_stall
           session_unplug session_reboot stress_restart stress_fresh"
# The long ones start first: the suite lasts as long as they do. The stress
# rows (a thousand threads at once) start late, once every other scenario
# but the long ones is done, so that their load moves no other row's timing.
LONG="slow_reader lossy"
FIRST="$LONG uto2_conn8"
LATE="stress_restart stress_fresh"
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
[ -x "$CLIENT" ] && [ -x "$SERVER" ] && [ -x "$RELAY" ] && [ -x "$STRESS" ] ||
    skip "lab programs not built (make suite-lab builds them)"
ip netns add "$ID-probe" 2>/dev/null || skip "'ip netns add' does not work here"
if ! ip -n "$ID-probe" link add br0 type bridge 2>/dev/null ||
   ! ip -n "$ID-probe" link add v0 type veth peer name v1 2>/dev/null ||
   ! ip netns exec "$ID-probe" nft list tables >/dev/null 2>&1 ||
   ! ip netns exec "$ID-probe" nft add table bridge probe 2>/dev/null; then
    ip netns del "$ID-probe"
    skip "bridge, veth or nftables (ip and bridge families) unavailable in a network namespace"
fi
ip netns del "$ID-probe"

# ---- bookkeeping, teardown -----------------------------------------------

WORK=$(mktemp -d /tmp/ka-lab.XXXXXX)
mkfifo "$WORK/nap" && exec {NAP_FD}<>"$WORK/nap"  # nap's FIFO: open for reading and writing, never written
jobs_pids="" watchdog=""

kill_ns_procs() {   # kill_ns_procs NS SIGNAL: the processes we started in NS
    local p
    for p in $(ip netns pids "$1" 2>/dev/null); do kill "-$2" "$p" 2>/dev/null; done
}

del_lab_ns() {      # del_lab_ns PREFIX: every namespace whose name starts so, and its /etc/netns files
    local ns
    for ns in $(ip netns list | awk '{print $1}' | grep "^$1" || true); do
        kill_ns_procs "$ns" KILL
        ip netns del "$ns" 2>/dev/null
    done
    for ns in /etc/netns/"$1"*; do [ -d "$ns" ] && rm -rf "$ns"; done
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
for ns in $(ip netns list | awk '{print $1}' | grep '^ka-lab-[0-9]*-' || true) \
          $(cd /etc/netns 2>/dev/null && ls -d ka-lab-[0-9]*-* 2>/dev/null); do
    pid=${ns#ka-lab-}; pid=${pid%%-*}
    kill -0 "$pid" 2>/dev/null && continue
    kill_ns_procs "$ns" KILL; ip netns del "$ns" 2>/dev/null; rm -rf "/etc/netns/$ns"
done

# ---- time and waiting ----------------------------------------------------

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
tick() { local t=${EPOCHREALTIME/./}; NOW=$((t / 1000)); }     # NOW=now_ms, without a subshell

# The waits poll with bash builtins alone. Forty scenarios polling with grep
# and sleep every 20 ms started some two thousand processes a second, which
# on two cores delayed everything else, the faults' own commands included.
# nap SECONDS: a pause (read's timeout on a FIFO that nobody writes).
nap() { read -r -t "$1" -u "$NAP_FD" _ 2>/dev/null || :; }

# matches FILE REGEX: how many lines of FILE match (extended regex), in COUNT.
matches() {
    local line
    COUNT=0
    [ -f "$1" ] || return 0
    while IFS= read -r line || [ -n "$line" ]; do [[ $line =~ $2 ]] && COUNT=$((COUNT + 1)); done <"$1"
}

# wait_count FILE REGEX N MS: 0 once N lines of FILE match, 1 after MS. Long
# waits look less often.
wait_count() {
    local end gap=0.02
    tick; end=$((NOW + $4))
    [ "$4" -gt 5000 ] && gap=0.1
    while :; do
        matches "$1" "$2"
        [ "$COUNT" -ge "$3" ] && return 0
        tick; [ "$NOW" -ge "$end" ] && return 1
        nap "$gap"
    done
}

# wait_for FILE REGEX MS: 0 once a line of FILE matches, 1 after MS.
wait_for() { wait_count "$1" "$2" 1 "$3"; }

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

# server_host L NS PORT: a server host, namespace NS with its NIC (the
# server's IP and MAC) cabled to switch port PORT, not yet plugged in.
server_host() {
    local L=$1 ns=$2 port=$3
    ip netns add "$ns" &&
    ip -n "$L-w" link add "$port" type veth peer name eth0 netns "$ns" &&
    ip -n "$ns" link set eth0 address "$SRV_MAC" &&
    ip -n "$ns" addr add "$SRV_IP/24" dev eth0 &&
    ip -n "$ns" link set lo up && ip -n "$ns" link set eth0 up
}

plug() { ip -n "$1-w" link set "$2" master br0 && ip -n "$1-w" link set "$2" up; }   # plug L PORT

server_boot() {     # a host comes up: fresh namespace, stack and NIC, same IP and MAC
    server_host "$1" "$1-s" s && plug "$1" s
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

# switch_rule L RULE: one rule on the frames the switch forwards (nftables
# bridge family, in the switch namespace); `iifname "c"` is the client's
# direction, `iifname "s"` the server's.
switch_rule() {
    ip netns exec "$1-w" nft -f - 2>>"$W/nft.err" <<EOF
table bridge lab {
    chain through {
        type filter hook forward priority 0; policy accept;
        $2
    }
}
EOF
}

# relay_up L DELAY_MS LOSS_PCT [RELAY-OPTIONS...]: lab_relay in place of the
# bridge. The endpoints send one segment per frame (gso_max_segs 1), so that
# a loss rate is a rate of lost segments and not of 64 KiB TSO bursts; it is
# set before any connection, which takes the limit from its route when it
# connects. With -u the losses wait for relay_loss_on; relay_loss_off ends them.
relay_up() {
    local L=$1 d=$2 l=$3; shift 3
    ip -n "$L-c" link set eth0 gso_max_segs 1 && ip -n "$L-s" link set eth0 gso_max_segs 1 &&
    ip -n "$L-w" link set c nomaster && ip -n "$L-w" link set s nomaster || return 1
    ip netns exec "$L-w" "$RELAY" -a c -b s -d "$d" -l "$l" -s "$$" -T 90000 "$@" >>"$W/relay.out" 2>&1 &
    echo $! >"$W/relay.pid"             # ip netns exec execs: this is the relay
    wait_for "$W/relay.out" " relay-up " 2000
}

relay_loss_on() {   # relay_loss_on: the held-back losses begin
    kill -USR1 "$(cat "$W/relay.pid")"
    wait_for "$W/relay.out" " loss-on$" 1000
}

relay_loss_off() {  # relay_loss_off: the losses end (the delay stays)
    kill -USR2 "$(cat "$W/relay.pid")"
    wait_for "$W/relay.out" " loss-off$" 1000
}

# relay_down L: the relay reports and exits; the bridge is back.
relay_down() {
    local L=$1
    kill_ns_procs "$L-w" TERM
    wait_for "$W/relay.out" " exit$" 2000
    ip -n "$L-w" link set c master br0 && ip -n "$L-w" link set s master br0
}

firewall() {        # firewall L RULE [FAMILY]: one input rule in the server namespace (ip, ip6, inet)
    ip netns exec "$1-s" nft -f - 2>>"$W/nft.err" <<EOF
table ${3:-ip} lab {
    chain in {
        type filter hook input priority 0; policy accept;
        $2
    }
}
EOF
}

# ---- names, resolvers, more addresses -------------------------------------------

ns_file() {         # ns_file NS NAME: stdin becomes /etc/NAME inside NS (for ip netns exec)
    mkdir -p "/etc/netns/$1" && cat >"/etc/netns/$1/$2"
}

dual_stack() {      # dual_stack L: ULA addresses on both hosts (no DAD: usable at once)
    ip -n "$1-c" addr add "$CLI6/64" dev eth0 nodad && ip -n "$1-s" addr add "$SRV6/64" dev eth0 nodad
}

# client_names L RESOLV-OPTIONS [HOSTS-LINE...]: the client's own /etc/hosts
# (localhost and the given lines) and a resolv.conf that asks the switch's
# resolver address.
client_names() {
    local L=$1 opt=$2 h; shift 2
    { echo "127.0.0.1 localhost"; for h in "$@"; do echo "$h"; done; } | ns_file "$L-c" hosts
    { echo "nameserver $DNS_IP"; [ -n "$opt" ] && echo "options $opt"; } | ns_file "$L-c" resolv.conf
}

# resolver_blackhole L: the resolver address answers ARP, but every query to
# it is dropped (dns_drop): a lookup hangs until glibc's own timeout.
resolver_blackhole() { ip -n "$1-w" addr add "$DNS_IP/24" dev br0 && dns_drop "$1"; }

dns_drop() {        # dns_drop L: the switch drops every DNS query that comes to it
    ip netns exec "$1-w" nft -f - 2>>"$W/nft.err" <<EOF
table inet dns {
    chain in {
        type filter hook input priority 0; policy accept;
        udp dport 53 drop
        tcp dport 53 drop
    }
}
EOF
}

# dns_up L: dnsmasq on the switch's resolver address, answering from
# $W/dns.hosts alone (no upstream); dns_reload makes it read the file again.
dns_up() {
    local L=$1
    ip -n "$L-w" addr add "$DNS_IP/24" dev br0 || return 1
    ip netns exec "$L-w" dnsmasq --keep-in-foreground --no-resolv --no-hosts --addn-hosts="$W/dns.hosts" \
        --listen-address="$DNS_IP" --bind-interfaces --user=root --pid-file= --log-facility=- --log-queries \
        >>"$W/dns.out" 2>&1 &
    echo $! >"$W/dns.pid"               # ip netns exec execs: this is dnsmasq
    wait_for "$W/dns.out" "read $W/dns.hosts" 3000
}

dns_reload() {      # dns_reload: dnsmasq reads $W/dns.hosts again (SIGHUP; waits until it has)
    local n; n=$(grep -c "read $W/dns.hosts" "$W/dns.out")
    kill -HUP "$(cat "$W/dns.pid")"
    wait_count "$W/dns.out" "read $W/dns.hosts" $((n + 1)) 2000
}

no_dnsmasq() {      # no_dnsmasq SCENARIO: true (and a skipped row) when dnsmasq is missing
    command -v dnsmasq >/dev/null && return 1
    row "$1" "-" "skipped: dnsmasq not installed (Debian package dnsmasq-base)" "-" "-" skip
}

# ---- client and server processes ------------------------------------------
# Per scenario: $W/srv.out, $W/cli.out; the client reads commands from a FIFO
# the scenario holds open on fd 3.

start_server() {    # start_server L MODE [SERVER-OPTIONS...]
    local L=$1 m=$2; shift 2
    ip netns exec "${SRV_NS:-$L-s}" "$SERVER" -l "$SRV_IP" -p "$PORT" -m "$m" -T 60000 "$@" >>"$W/srv.out" 2>&1 &
    echo $! >"$W/srv.pid"               # ip netns exec execs: this is the server
    wait_for "$W/srv.out" "listen$" 2000
}

start_client() {    # start_client L CLIENT-OPTIONS...: returns once it has started
    local L=$1; shift
    mkfifo "$W/cmd"
    ip netns exec "$L-c" "$CLIENT" -h "$SRV_IP" -p "$PORT" -T 30000 "$@" <"$W/cmd" >"$W/cli.out" 2>&1 &
    exec 3>"$W/cmd"
}

cmd() { echo "$*" >&3; }     # a command to the client: mark WORD, send N, stream RATE MS, info, quit

# ---- results ----------------------------------------------------------------

# row SCENARIO EXPECTED SEEN MEASURED BOUND OK: one line of the table; OK is
# 1 (pass) or 0 (fail); a failure also shows the client's output.
row() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >>"$W/row"
    if [ "$6" != 1 ]; then
        { echo "--- $1: client output"; cat "$W/cli.out" 2>/dev/null
          echo "--- $1: server output"; cat "$W/srv.out" 2>/dev/null
          [ -s "$W/nft.err" ] && { echo "--- $1: nft errors"; cat "$W/nft.err"; }
          [ -s "$W/relay.out" ] && { echo "--- $1: relay output"; cat "$W/relay.out"; }; } >>"$W/log"
    fi
}

# within VALUE LOW HIGH: 1 if LOW <= VALUE <= HIGH (integers), else 0.
within() { [ -n "$1" ] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ] && echo 1 || echo 0; }

# mark_time WORD: when the client stamped "mark WORD" (waits for it).
mark_time() {
    wait_for "$W/cli.out" " mark $1$" 1000
    stamp "$W/cli.out" " mark $1$"
}

# fault WORD COMMAND...: applies a fault between two marks on the client's
# timeline, "WORD" (stamped before the command starts) and "WORD-done", and
# sets fault_t0 to the first and fault_ms to the time between them. `ip` and
# nft wait for the kernel's rtnl lock, which a busy lab holds for a while
# (up to 0.7 s seen with forty labs), so the fault took effect somewhere in
# [fault_t0, fault_t0 + fault_ms]: a bound counted from it widens by
# fault_ms, and the row says so.
fault() {
    local w=$1; shift
    cmd "mark $w"; fault_t0=$(mark_time "$w")
    "$@"
    cmd "mark $w-done"; fault_ms=$(($(mark_time "$w-done") - ${fault_t0:-0}))
}

# check_fault SCENARIO EXPECTED-REASON LOW HIGH BOUND-TEXT: check_disconnect
# from the fault, its upper bound widened by the time the fault took.
check_fault() {
    check_disconnect "$1" "$2" "$fault_t0" "$3" $(($4 + fault_ms)) "$5 +$fault_ms fault"
}

# disconnect_seen T0 MS: waits up to MS for the client's first disconnect and
# sets seen (its reason, "none" if none), en (its errno) and dt (ms from T0;
# empty if there was none, or no T0).
disconnect_seen() {
    local t0=$1 t1
    wait_for "$W/cli.out" " disconnect " "$2"
    t1=$(stamp "$W/cli.out" " disconnect " "${t0:-0}")
    seen=$(field "$W/cli.out" " disconnect " reason); seen=${seen:-none}
    en=$(field "$W/cli.out" " disconnect " errno)
    [ -n "$t1" ] && [ -n "$t0" ] && dt=$((t1 - t0)) || dt=""
}

# check_disconnect SCENARIO EXPECTED-REASON T0 LOW HIGH BOUND-TEXT: the first
# disconnect at or after T0 (ms) must have the reason and come between LOW
# and HIGH ms after T0.
check_disconnect() {
    local s=$1 want=$2 seen en dt
    disconnect_seen "$3" $(($5 + 2000))
    row "$s" "$want" "$seen${en:+ (errno $en)}" "${dt:-none} ms" "$6" \
        "$([ "$seen" = "$want" ] && within "$dt" "$4" "$5" || echo 0)"
}

connected() {       # connected SCENARIO [MS]: the client connected within MS (default 2 s)
    wait_for "$W/cli.out" " connect( |$)" "${2:-2000}" && return 0
    row "$1" "-" "never connected" "-" "-" 0
    return 1
}

# ---- scenarios ----------------------------------------------------------------
# Each runs in its own lab L, writes its row, and must end well within the
# client's 30 s lifetime.

sc_alive_idle() {   # alive and idle: probes answered, nothing ends
    start_server "$L" echo; start_client "$L" $KA
    connected "alive and idle, 6 s = 6 idle periods" || return
    local p0 p1 seen en dt
    p0=$(netstat "$L-c" TCPKeepAlive)
    cmd "mark idle"
    disconnect_seen "" 6000
    p1=$(netstat "$L-c" TCPKeepAlive)
    row "alive and idle, 6 s = 6 idle periods" "none" "$seen, $((p1 - p0)) probes answered" \
        "no disconnect" ">= 5 probes" "$([ "$seen" = none ] && within $((p1 - p0)) 5 7 || echo 0)"
}

sc_crash() {        # crashed / powered off: nothing answers, nothing is sent
    start_server "$L" echo; start_client "$L" $KA
    connected "crashed (powered off)" || return
    sleep 1.5                           # a few answered probes first
    fault crash unplug "$L"; crash "$L"   # dark from the unplug on
    check_fault "crashed (powered off)" TIMEOUT 3000 $((4000 + SLACK)) "3000..4000 +$SLACK"
}

# The rebooted host is built before the crash, cable out (namespace $L-r on
# switch port r): booting it is then plugging it in, quick however busy the
# lab is. Built afterwards, it took long enough on a loaded machine for the
# keepalive deadline to run out first.
sc_reboot() {       # crashed, then rebooted: the fresh stack answers a probe with RST
    local SRV_NS
    start_server "$L" echo; start_client "$L" $KA
    connected "crashed, rebooted after 1 s" || return
    server_host "$L" "$L-r" r || { row "crashed, rebooted after 1 s" "-" "lab setup failed: second host" "-" "-" 0; return; }
    sleep 1.5
    cmd "mark crash"; crash "$L"
    sleep 1
    plug "$L" r; SRV_NS=$L-r start_server "$L" echo
    cmd "mark rebooted"
    check_disconnect "crashed, rebooted after 1 s" PEER_RESET "$(mark_time rebooted)" 0 $((1000 + SLACK)) "next probe: 1000 +$SLACK"
}

sc_unplug() {       # alive but unreachable: the server's cable pulled, silence
    start_server "$L" echo; start_client "$L" $KA
    connected "server cable pulled" || return
    sleep 1.5
    fault unplug unplug "$L"
    check_fault "server cable pulled" TIMEOUT 3000 $((4000 + SLACK)) "3000..4000 +$SLACK"
}

sc_brief_unplug() { # a cable pulled for less than the deadline: the connection survives
    local s="cable pulled 1.5 s, replugged" seen en dt
    start_server "$L" echo; start_client "$L" $KA
    connected "$s" || return
    sleep 1.5
    cmd "mark unplug"; unplug "$L"
    sleep 1.5
    replug "$L"; cmd "mark replug"
    disconnect_seen "" 5000
    row "$s" "none" "$seen" "no disconnect in 5 s" "survives" "$([ "$seen" = none ] && echo 1 || echo 0)"
}

sc_icmp_idle() {    # unreachable with an ICMP error, idle: see RESULTS.md
    local s="ICMP host-unreachable, idle" oow
    start_server "$L" echo; start_client "$L" $KA
    connected "$s" || return
    sleep 1.5
    fault reject firewall "$L" "tcp dport $PORT reject with icmp type host-unreachable"
    check_fault "$s" TIMEOUT 3000 $((4000 + SLACK)) "3000..4000 +$SLACK"
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
    check_disconnect "$s" UNREACHABLE "$(mark_time send)" "$(busy_lo $U)" $(($(busy_hi $U) + 210)) \
        "$U -100 .. +410 (1st RTO) +210 (RTO) +$SLACK"
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
# timeout ends it (bounds: busy_lo and busy_hi above). With no user timeout
# at all: tcp_retries2 = 15, about 15 minutes.
# busy_row SCENARIO DEADLINE-MS BOUND-TEXT CLIENT-OPTIONS...: the path is
# lost, then 100 bytes are sent: TIMEOUT the busy deadline after the send.
busy_row() {
    local s=$1 d=$2 bound=$3; shift 3
    start_server "$L" echo; start_client "$L" "$@"
    connected "$s" || return
    unplug "$L"
    cmd "mark send"; cmd "send 100"
    check_disconnect "$s" TIMEOUT "$(mark_time send)" "$(busy_lo "$d")" "$(busy_hi "$d")" "$bound"
}
sc_unacked() { busy_row "path lost, data unacked (user_timeout 3 s)" 3000 "3000 -100 .. +410 (1st RTO) +$SLACK" -i 10000 -v 1000 -c 3 -u 3000; }

sc_outage() {       # the server is down for 3 s; the client must be back within one backoff delay
    local s="server back after 3 s outage" tb tc d seen
    start_server "$L" echo; start_client "$L" $KA -b 200 -B 1600 -j 0.5
    connected "$s" || return
    cmd "mark down"; kill -TERM "$(cat "$W/srv.pid")"
    sleep 3
    : >"$W/srv.out"; start_server "$L" echo
    tb=$(stamp "$W/srv.out" " listen$")
    local end=$(($(now_ms) + 3000))
    until [ -n "$(stamp "$W/cli.out" " connect( |$)" "$tb")" ] || [ "$(now_ms)" -ge "$end" ]; do nap 0.02; done
    tc=$(stamp "$W/cli.out" " connect( |$)" "$tb")
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
    tc=$(stamp "$W/cli.out" " connect( |$)"); t1=$(stamp "$W/cli.out" " disconnect ")
    seen=$(field "$W/cli.out" " disconnect " reason)
    # -50: the library's idle clock starts just before on_connect, whose
    # stamp a loaded machine can print late (1481 ms seen with 52 labs at once)
    row "$s" HEARTBEAT "${seen:-none}" "${t1:+$((t1 - tc)) ms}" "idle_timeout 1500 -50 .. +100" \
        "$([ "$seen" = HEARTBEAT ] && [ -n "$t1" ] && within $((t1 - tc)) 1450 1600 || echo 0)"
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
    # after the last answer, probe +1000, RST +1000: each up to 100 ms late,
    # and up to a jiffy early (the kernel stamps what it receives and times
    # its probes in jiffies: 4 ms at HZ=250, 10 ms at HZ=100; +1999 seen).
    ok=$(awk 'BEGIN { n = split("answered:2000 answered:2000 probe:2000 probe:1000 rst:1000", want, " "); ok = 1 }
        { split(want[NR], w, ":"); if ($1 != w[1] || $2 < w[2] - 10 || $2 > w[2] + 100) ok = 0 }
        END { print (NR == n && ok) ? 1 : 0 }' "$W/wire")
    row "$s" "probes +2000 +2000, silent: +2000 +1000, RST +1000" "${seen:-no probes seen}" "-" "each -10..+100 ms" "$ok"
}

# ---- scenarios with the relay, partitions, streams and local faults -----------

# kv LINE KEY: the value of KEY=value in LINE.
kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

relay_failed() {    # relay_failed SCENARIO: the row when the relay would not start
    row "$1" "-" "lab_relay did not start: $(tail -n 1 "$W/relay.out" 2>/dev/null)" "-" "-" 0
}

# The relay's own figure: 50 ms each way must show as a 100 ms round trip,
# to the application (a message echoed back, five times, one at a time) and
# to the kernel (TCP_INFO min_rtt). Without the relay the lab's round trip is
# well under a millisecond.
sc_relay_delay() {
    local s="relay: 50 ms each way, round trip" i rtts mr ok
    relay_up "$L" 50 0 || { relay_failed "$s"; return; }
    start_server "$L" echo; start_client "$L" $KA
    connected "$s" || return
    for i in 1 2 3 4 5; do
        cmd "mark ping$i"; cmd "send 10"
        wait_count "$W/cli.out" " data " "$i" 2000 || break
    done
    cmd info
    wait_for "$W/cli.out" " info " 1000
    rtts=$(awk '$2 == "mark" && $3 ~ /^ping/ { t = $1 } $2 == "data" && t { printf "%s%d", (n++ ? " " : ""), $1 - t; t = 0 }' "$W/cli.out")
    mr=$(field "$W/cli.out" " info " min_rtt_us)
    ok=$(echo "$rtts" | awk -v mr="${mr:-0}" '{ ok = NF == 5; for (i = 1; i <= NF; i++) if ($i < 100 || $i > 150) ok = 0 }
        END { print (ok && mr >= 100000 && mr <= 110000) ? 1 : 0 }')
    row "$s" "RTT 100 ms" "echo ${rtts:-none} ms; TCP min_rtt ${mr:-?} us" "-" "each 100..150 ms; min_rtt 100..110 ms" "$ok"
}

# An asymmetric partition: the switch drops every frame in one direction,
# the other still works. Idle: the keepalive probes (client->server cut) or
# their answers (server->client cut) are lost, so the idle deadline, from the
# last answer. With data in flight, the data or its ACKs are lost: the busy
# deadline, from the send.
partition() {       # partition PORT SCENARIO idle|data: drop what arrives on switch port PORT
    local port=$1 s=$2
    start_server "$L" sink; start_client "$L" $KA
    connected "$s" || return
    if [ "$3" = idle ]; then
        sleep 1.5                       # a few answered probes first
        fault cut switch_rule "$L" "iifname \"$port\" drop"
        check_fault "$s" TIMEOUT 3000 $((4000 + SLACK)) "3000..4000 +$SLACK"
    else
        switch_rule "$L" "iifname \"$port\" drop"
        cmd "mark send"; cmd "send 100"
        check_disconnect "$s" TIMEOUT "$(mark_time send)" "$(busy_lo $U)" "$(busy_hi $U)" "$U -100 .. +410 (1st RTO) +$SLACK"
    fi
}
sc_cut_cs_idle() { partition c "partition client->server, idle" idle; }
sc_cut_cs_data() { partition c "partition client->server, data unacked" data; }
sc_cut_sc_idle() { partition s "partition server->client, idle" idle; }
sc_cut_sc_data() { partition s "partition server->client, data unacked" data; }

# An MTU black hole: a link on the path drops every frame above 600 bytes and
# sends no ICMP "fragmentation needed", so path MTU discovery learns nothing.
# The handshake and the ACKs pass; every full-sized data segment is lost, and
# so is every retransmission (they are full-sized too: tcp_mtu_probing is 0
# by default). A 64 KiB message is in flight: the busy deadline.
sc_mtu_hole() {
    local s="MTU black hole (> 600 B dropped), 64 KiB in flight"
    start_server "$L" sink; start_client "$L" $KA
    connected "$s" || return
    switch_rule "$L" "meta length > 600 drop"
    cmd "mark send"; cmd "send 65536"
    check_disconnect "$s" TIMEOUT "$(mark_time send)" "$(busy_lo $U)" "$(busy_hi $U)" "$U -100 .. +410 (1st RTO) +$SLACK"
}

# stream_verdict SCENARIO EXPECTED DETECTION BOUND [EXTRA-OK [EXTRA-SEEN]]:
# the row for a stream that must arrive whole. The client's last stream-end
# says how many records and bytes the library accepted; the server's verify
# line for that many bytes must show them all, each once and in order, and
# the client must not have disconnected.
stream_verdict() {
    local s=$1 b r v ok=${5:-1} seen en dt k ms=20000
    b=$(field "$W/cli.out" " stream-end " bytes); r=$(field "$W/cli.out" " stream-end " records)
    grep -q " disconnect " "$W/cli.out" && ms=2000   # bytes were lost with the connection: no use waiting
    [ -n "$b" ] && wait_for "$W/srv.out" " verify bytes=$b " "$ms" || ok=0
    v=$(grep " verify " "$W/srv.out" | tail -n 1)
    disconnect_seen "" 0
    [ "$seen" = none ] && [ -n "$r" ] && [ "$(kv "$v" records)" = "$r" ] || ok=0
    for k in gaps dups reorders bad; do [ "$(kv "$v" "$k")" = 0 ] || ok=0; done
    row "$s" "$2" "disconnect $seen; $(kv "$v" records)/${r:-?} records, gaps $(kv "$v" gaps), dups $(kv "$v" dups), reorders $(kv "$v" reorders), bad $(kv "$v" bad)${6:+; $6}" \
        "$3" "$4" "$ok"
}

# 20% loss and 50 ms delay in each direction for 15 s, with the library's
# default deadlines (keepalive 5 s / 5 s / 3, user timeout derived: 20 s).
# The connection is made on the delayed path, then the losses begin (a lost
# SYN would cost seconds of the lab's time and test nothing here). The
# client streams 8000 B/s, a third of what TCP carried through this path in
# a trial; then the path is clean again and the backlog drains. No
# disconnect, and every record arrives once, in order.
# TCP itself can lose: a retransmission and its ACK both get through with
# probability 0.8 x 0.8, so five retransmissions in a row fail (backing off
# to 20 s without an ACK) with probability 0.36^5 = 0.6% per timeout. The
# client then rightly gives up at the busy deadline. Such a run shows the
# deadline held but cannot show survival: the row says so and is skipped.
sc_lossy() {
    local s="20% loss + 50 ms each way, 15 s, defaults" t gap seen en dt
    relay_up "$L" 50 20 -u || { relay_failed "$s"; return; }
    start_server "$L" verify; start_client "$L" -d -T 60000
    connected "$s" 3000 || return
    relay_loss_on
    cmd "stream 8000 15000"
    wait_for "$W/cli.out" " stream-end " 17000
    cmd info
    wait_for "$W/cli.out" " info " 1000
    relay_down "$L"
    gap=$(field "$W/cli.out" " stream-end " max_ack_gap_ms)
    disconnect_seen "" 0
    if [ "$seen" = TIMEOUT ] && [ "${gap:-0}" -ge 19800 ]; then
        row "$s" "no disconnect; all in order" "skipped: no ACK came through for $gap ms (TCP's own bad luck), TIMEOUT at the deadline" \
            "-" "-" skip
    else
        stream_verdict "$s" "no disconnect; all in order" "none in 15 s" "default deadlines (20 s busy)"
    fi
    t=$(grep " info " "$W/cli.out" | tail -n 1)
    echo "$s: client total_retrans=$(kv "$t" total_retrans) max_backoff=$(field "$W/cli.out" " stream-end " max_backoff)" \
         "max_ack_gap_ms=$gap" \
         "TCPTimeouts=$(netstat "$L-c" TCPTimeouts) TCPLossProbes=$(netstat "$L-c" TCPLossProbes);" \
         "relay: $(grep ' relay dir=' "$W/relay.out" | cut -d' ' -f3-6 | tr '\n' ';')" >>"$W/note"
}

# A server that stops reading for 30 s and then reads again, while the
# client keeps sending at 1 MB/s: the server's small receive buffer fills,
# the window closes, the client's send buffer and queue fill (ka_client_send
# says KA_EAGAIN), and the server's kernel answers every zero-window probe.
# The peer is alive throughout: with the default deadlines (busy 20 s, less
# than the pause) nothing may end the connection, and after the resume every
# record arrives.
sc_slow_reader() {
    local s="server stops reading 30 s, then resumes; defaults" tc to extra ok=1
    start_server "$L" verify -P 1000:30000 -r 65536; start_client "$L" -d -T 60000
    connected "$s" || return
    cmd "stream 1000000 33000"
    wait_for "$W/srv.out" " resume$" 33000
    wait_for "$W/cli.out" " stream-end " 4000
    tc=$(stamp "$W/cli.out" " window-closed"); to=$(stamp "$W/cli.out" " window-open" "${tc:-0}")
    [ -n "$tc" ] || ok=0                # the window must really have closed
    if [ -n "$tc" ]; then extra="window closed for $((${to:-$(now_ms)} - tc)) ms"; else extra="window never closed"; fi
    stream_verdict "$s" "no disconnect; all in order" "none in 33 s" "window closed ~30 s" "$ok" "$extra"
}

# stall_timeout_ms 3000 against a server that stops reading for good: the
# window closes, the zero-window probes are answered (the peer is alive), and
# the library ends the connection 3 s after the window closed: STALLED. The
# client sees the window close in its own TCP_INFO (tcpi_snd_wnd 0, sampled
# every 10 ms), the moment the bound counts from. Bound 3000 -250 .. +1000:
# a library may count from the last data it sent, which the zero window
# follows by the peer's delayed ACK (up to 40 ms) plus our sampling; and it
# may notice the closed window only at its next look (zero-window probes
# back off from one RTO).
sc_stall() {
    local s="stall_timeout 3 s, server stops reading"
    start_server "$L" verify -P 300:0 -r 16384; start_client "$L" $KA -S 3000
    connected "$s" || return
    cmd "stream 1000000 10000"
    wait_for "$W/cli.out" " window-closed" 3000
    check_disconnect "$s" STALLED "$(stamp "$W/cli.out" " window-closed")" $((3000 - SLACK)) 4000 \
        "3000 -$SLACK .. +1000 after the window closed"
}

# Self-connect: the client's ephemeral ports are 40000-40001 and nothing
# listens on 127.0.0.1:40000, so a connect from port 40000 meets itself
# (TCP simultaneous open) and succeeds: connect() tries ports of the range's
# low parity first (__inet_hash_connect), so 40000 whenever it is free. The
# library must take such a socket for a refused attempt: on_connect never
# fires while nothing listens. It must also close it without a TIME_WAIT
# (which would hold port 40000 for 60 s), so that a server started
# afterwards can bind 40000; the client then reaches it from port 40001.
# tcpdump on the loopback counts the self-connects (SYN 40000 > 40000).
sc_self_connect() {
    local s="self-connect: 127.0.0.1:40000, local ports 40000-40001" tl tc="" early selfsyn="?" ok=1 seen retries end
    ip netns exec "$L-c" sysctl -qw net.ipv4.ip_local_port_range="40000 40001"
    if command -v tcpdump >/dev/null; then
        ip netns exec "$L-c" tcpdump -i lo -n -l 'tcp[tcpflags] == tcp-syn and src port 40000 and dst port 40000' \
            >"$W/selfsyn" 2>"$W/selfsyn.err" &
        wait_for "$W/selfsyn.err" "listening on" 3000
    fi
    start_client "$L" $KA -h 127.0.0.1 -p 40000 -b 50 -B 100 -j 0
    wait_count "$W/cli.out" " retry " 30 6000
    retries=$(grep -c " retry " "$W/cli.out")
    ip netns exec "$L-c" "$SERVER" -l 127.0.0.1 -p 40000 -m echo -R 3000 -T 30000 >>"$W/srv.out" 2>&1 &
    wait_for "$W/srv.out" " listen$| error " 4000
    tl=$(stamp "$W/srv.out" " listen$")
    end=$(($(now_ms) + 3000))
    while [ -n "$tl" ] && [ -z "$(stamp "$W/cli.out" " connect( |$)" "$tl")" ] && [ "$(now_ms)" -lt "$end" ]; do nap 0.02; done
    [ -n "$tl" ] && tc=$(stamp "$W/cli.out" " connect( |$)" "$tl")
    early=$(awk -v tl="${tl:-999999999999999}" '$2 == "connect" && $1 < tl' "$W/cli.out" | wc -l)
    [ -f "$W/selfsyn" ] && selfsyn=$(grep -c " > " "$W/selfsyn")
    [ "$early" = 0 ] && [ "$retries" -ge 30 ] && [ -n "$tc" ] || ok=0
    [ "$selfsyn" = "?" ] || [ "$selfsyn" -ge 1 ] || ok=0    # else the scenario tested nothing
    if [ "$early" != 0 ]; then seen="connected to itself ($(field "$W/cli.out" " connect " lport))"
    else seen="$retries refused attempts ($selfsyn self-connects)"; fi
    if [ -z "$tl" ]; then
        seen="$seen; server could not bind 40000"
        ip netns exec "$L-c" ss -tan >>"$W/log" 2>&1
    else
        if [ -n "$tc" ]; then seen="$seen; server reached after $((tc - tl)) ms"; else seen="$seen; server not reached"; fi
    fi
    row "$s" "no on_connect; then server reached" "$seen" "-" ">= 30 attempts; server in 3 s" "$ok"
}

# `ss -K` (SOCK_DESTROY) kills the client's socket from outside the process,
# as an administrator or a mobile OS on a network change does: the kernel
# aborts it with ECONNABORTED. The peer did nothing, so the reason must be
# ABORTED, not PEER_RESET. The abort also sends the server an RST
# (tcp_abort()), which the switch drops: the server's socket stays open, so
# nothing at all comes from the server. Needs CONFIG_INET_DIAG_DESTROY;
# without it ss -K destroys nothing, and the row says so and is skipped.
sc_ss_kill() {
    local s="ss -K kills the client's socket" lport t0 ta ss_ms open seen en dt
    start_server "$L" echo; start_client "$L" $KA
    connected "$s" || return
    lport=$(field "$W/cli.out" " connect " lport)
    switch_rule "$L" 'iifname "c" tcp flags & rst == rst drop'
    ta=$(now_ms)
    cmd "mark kill"; t0=$(mark_time kill)
    ip netns exec "$L-c" ss -K dst "$SRV_IP" dport = ":$PORT" >"$W/ss.out" 2>&1
    ss_ms=$(($(now_ms) - ta))           # from the mark until ss has finished (a busy machine starts ss slowly)
    if ! wait_for "$W/cli.out" " disconnect " 1000 &&
       ip netns exec "$L-c" ss -Htn state established "( sport = :$lport )" | grep -q .; then
        row "$s" "ABORTED" "skipped: ss -K destroyed nothing (no CONFIG_INET_DIAG_DESTROY?)" "-" "-" skip
        return
    fi
    disconnect_seen "$t0" 1000
    open=$(ip netns exec "$L-s" ss -Htn state established "( dport = :$lport )" | wc -l)
    row "$s" "ABORTED; server open" "$seen${en:+ (errno $en)}; server socket $([ "$open" -gt 0 ] && echo open || echo gone)" \
        "${dt:-none} ms" "while ss ran ($ss_ms ms) +100" \
        "$([ "$seen" = ABORTED ] && [ "$open" -gt 0 ] && within "$dt" 0 $((ss_ms + 100)) || echo 0)"
}

# ---- the deadline matrix ------------------------------------------------------
# Each deadline measured with the two others set below it and above it: none
# may move another (ka_client.h, "The deadlines"). The idle rows pull the
# cable on an idle connection (keepalive 1/1/3: 4 s from the last answer,
# so 3..4 s after the fault); the busy rows lose the path and then send
# (busy deadline 3 s from the send); the connect rows drop every SYN
# (connect deadline from ka_client_start).

matrix_idle() {     # matrix_idle SCENARIO CLIENT-OPTIONS...
    local s=$1; shift
    start_server "$L" echo; start_client "$L" "$@"
    connected "$s" || return
    sleep 1.5                           # a few answered probes first
    fault unplug unplug "$L"
    check_fault "$s" TIMEOUT 3000 $((4000 + SLACK)) "idle 4 s: 3000..4000 +$SLACK"
}
sc_mx_idle_lo() { matrix_idle "idle deadline 4 s; user 1 s, connect 0.5 s" $KA -u 1000 -C 500; }
sc_mx_idle_hi() { matrix_idle "idle deadline 4 s; user 12 s, connect 12 s" $KA -u 12000 -C 12000; }

matrix_busy() {     # matrix_busy SCENARIO CLIENT-OPTIONS... (user timeout 3 s among them)
    local s=$1; shift
    busy_row "$s" 3000 "busy 3 s: -100 .. +410 +$SLACK" "$@"
}
sc_mx_busy_lo() { matrix_busy "busy deadline 3 s; keepalive 2 s, connect 1 s" -i 1000 -v 1000 -c 1 -u 3000 -C 1000; }
sc_mx_busy_hi() { matrix_busy "busy deadline 3 s; keepalive 20 s, connect 12 s" -i 5000 -v 5000 -c 3 -u 3000 -C 12000; }

# user_timeout_ms KA_TIMEOUT_OFF: no busy deadline at all. With keepalive
# 1/1/3 the derived one would end this at 4 s; off, the data waits on the
# kernel's own retransmission limit (minutes), and nothing ends it in 8 s.
sc_mx_busy_off() {
    local s="busy deadline off (KA_TIMEOUT_OFF), data unacked" seen en dt
    start_server "$L" echo; start_client "$L" -i 1000 -v 1000 -c 3 -u 4294967295
    connected "$s" || return
    unplug "$L"
    cmd "mark send"; cmd "send 100"
    disconnect_seen "" 8000
    row "$s" "none" "$seen" "no disconnect in 8 s" "off: not at 4 s" "$([ "$seen" = none ] && echo 1 || echo 0)"
}

# matrix_connect SCENARIO CONNECT-MS BOUND-NOTE CLIENT-OPTIONS...
matrix_connect() {
    local s=$1 ct=$2 note=$3 t0 t1 seen dt; shift 3
    firewall "$L" "tcp flags & (syn | ack) == syn drop"
    start_server "$L" echo; start_client "$L" "$@" -C "$ct"
    wait_for "$W/cli.out" " retry " $((ct + 2000))
    t0=$(stamp "$W/cli.out" " start$"); t1=$(stamp "$W/cli.out" " retry ")
    seen=$(field "$W/cli.out" " retry " reason)
    [ -n "$t1" ] && [ -n "$t0" ] && dt=$((t1 - t0)) || dt=""
    row "$s" CONNECT_TIMEOUT "${seen:-none}" "${dt:-none} ms" "connect $ct +100$note" \
        "$([ "$seen" = CONNECT_TIMEOUT ] && within "$dt" "$ct" $((ct + 100)) || echo 0)"
}
sc_mx_conn_lo() { matrix_connect "connect deadline 3 s; user 1 s, keepalive 2 s" 3000 "" -i 1000 -v 1000 -c 1 -u 1000; }
sc_mx_conn_hi() { matrix_connect "connect deadline 3 s; user 12 s, keepalive 20 s" 3000 "" -i 5000 -v 5000 -c 3 -u 12000; }

# Two cases from the library's history (README, "Why no TCP_USER_TIMEOUT on
# Linux"): with the kernel's user timeout at 8 s, keepalive 1/1/1 found a
# vanished idle peer after 8.2 s instead of 2 s; and a 2 s user timeout cut
# an 8 s connect timeout to 2 s.
sc_ka111_uto8() {
    local s="keepalive 1/1/1, user 8 s, idle peer vanishes"
    start_server "$L" echo; start_client "$L" -i 1000 -v 1000 -c 1 -u 8000
    connected "$s" || return
    sleep 1.5
    fault crash unplug "$L"; crash "$L"   # dark from the unplug on
    check_fault "$s" TIMEOUT 1000 $((2000 + SLACK)) "idle 2 s: 1000..2000 +$SLACK"
}
sc_uto2_conn8() { matrix_connect "user 2 s, connect 8 s, SYN blackholed" 8000 ", not 2 s" -u 2000; }

# ---- whole seconds --------------------------------------------------------------
# Linux holds keepalive times in whole seconds: 500/500/3 ms must become
# 1 s / 1 s / 3 (each rounded up), a 4 s idle deadline, with every deadline
# the library derives computed from the rounded values. lab_client reads the
# kernel's values back on connect (ka=IDLE/INTVL/CNT, uto=TCP_USER_TIMEOUT).

sc_round_ka() {
    local s="keepalive 500/500/3 ms, cable pulled" ka uto seen en dt ok
    start_server "$L" echo; start_client "$L" -i 500 -v 500 -c 3
    connected "$s" || return
    ka=$(field "$W/cli.out" " connect " ka); uto=$(field "$W/cli.out" " connect " uto)
    sleep 1.5
    fault unplug unplug "$L"
    disconnect_seen "$fault_t0" $((4000 + SLACK + fault_ms + 2000))
    ok=$([ "$seen" = TIMEOUT ] && [ "$ka" = 1/1/3 ] && [ "$uto" = 0 ] && within "$dt" 3000 $((4000 + SLACK + fault_ms)) || echo 0)
    row "$s" "TIMEOUT at 4 s; kernel 1/1/3" "$seen${en:+ (errno $en)}; kernel ${ka:-?}, user timeout ${uto:-?}" \
        "${dt:-none} ms" "3000..4000 +$SLACK +$fault_ms fault" "$ok"
}

# The busy deadline derived from keepalive 500/500/3 ms is the rounded idle
# deadline, 4 s, not the 2 s the unrounded values sum to.
sc_round_busy() { busy_row "keepalive 500/500/3 ms, data unacked: busy 4 s" 4000 "4000 -100 .. +410 +$SLACK, not 2 s" -i 500 -v 500 -c 3; }

# lose_one_probe L: the server namespace drops the next packet to the port,
# and only that one: a counting drop rule, removed once it has counted a
# packet. The connection is idle, so that packet is a keepalive probe. Says
# how many packets the rule dropped.
lose_one_probe() {
    local L=$1 n=0 end
    firewall "$L" "tcp dport $PORT counter drop"
    end=$(($(now_ms) + 3000))
    while [ "$(now_ms)" -lt "$end" ]; do
        n=$(ip netns exec "$L-s" nft list table ip lab 2>/dev/null | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
        [ "${n:-0}" -ge 1 ] && break
        nap 0.02
    done
    ip netns exec "$L-s" nft delete table ip lab
    echo "${n:-0}"
}

# One probe lost on a live idle connection: the next probe is answered and
# the count starts again. No disconnect (with TCP_USER_TIMEOUT shorter than
# the keepalive sum, Linux ended such a connection at the first probe after
# the lost one, about 2 s after the last answer).
lost_probe() {      # lost_probe SCENARIO CLIENT-OPTIONS...
    local s=$1 n p0 p1 seen en dt; shift
    start_server "$L" echo; start_client "$L" "$@"
    connected "$s" || return
    sleep 1.2                           # an answered probe first
    p0=$(netstat "$L-c" TCPKeepAlive)
    n=$(lose_one_probe "$L")
    cmd "mark lost"
    disconnect_seen "" 5000
    p1=$(netstat "$L-c" TCPKeepAlive)
    row "$s" "none" "$seen; $n probe dropped, $((p1 - p0)) sent" "no disconnect in 5 s" "survives; 1 dropped, >= 4 sent" \
        "$([ "$seen" = none ] && [ "$n" = 1 ] && [ $((p1 - p0)) -ge 4 ] && echo 1 || echo 0)"
}
sc_round_lost_probe() { lost_probe "keepalive 500/500/3 ms, one probe lost" -i 500 -v 500 -c 3; }
sc_lost_probe_uto1() { lost_probe "keepalive 1/1/3, user 1 s, one probe lost" $KA -u 1000; }

# ---- the connect path ---------------------------------------------------------------

# count_after FILE REGEX T0: lines stamped at or after T0 that match.
count_after() { awk -v re="$2" -v t0="$3" '$1 >= t0 && $0 ~ re { n++ } END { print n + 0 }' "$1"; }

# wait_after FILE REGEX T0 N MS: 0 once N lines stamped at or after T0 match.
wait_after() {
    local end line n
    tick; end=$((NOW + $5))
    while :; do
        n=0
        while IFS= read -r line; do [ "${line%% *}" -ge "$3" ] 2>/dev/null && [[ $line =~ $2 ]] && n=$((n + 1)); done <"$1"
        [ "$n" -ge "$4" ] && return 0
        tick; [ "$NOW" -ge "$end" ] && return 1
        nap 0.02
    done
}

# A resolver that never answers (queries dropped on the switch; glibc's
# default 5 s x 2 tries): each attempt must end RESOLVE with EAI_AGAIN (-3)
# at resolve_timeout_ms while the lookup goes on on its helper thread, and
# no library call may hold the caller's thread (lab_client times every call;
# the longest must stay under 50 ms). A second attempt of the same name
# joins the lookup still running.
sc_dns_blackhole() {
    local s="resolver unreachable, resolve_timeout 1 s" t0 t1 seen en dt n mx mc
    resolver_blackhole "$L" || { row "$s" "-" "lab setup failed" "-" "-" 0; return; }
    client_names "$L" ""
    start_client "$L" $KA -h srv.lab -R 1000 -b 300 -B 300 -j 0
    wait_count "$W/cli.out" " retry " 3 6000
    cmd calls
    wait_for "$W/cli.out" " calls " 1000
    t0=$(stamp "$W/cli.out" " start$"); t1=$(stamp "$W/cli.out" " retry ")
    seen=$(field "$W/cli.out" " retry " reason); en=$(field "$W/cli.out" " retry " errno)
    n=$(grep -c " retry .*reason=RESOLVE" "$W/cli.out")
    mx=$(field "$W/cli.out" " calls " max_us); mc=$(field "$W/cli.out" " calls " max_call)
    [ -n "$t1" ] && [ -n "$t0" ] && dt=$((t1 - t0)) || dt=""
    row "$s" "RESOLVE (EAI_AGAIN); calls < 50 ms" "${seen:-none} (errno ${en:-?}) x$n; longest call ${mx:-?} us ($mc)" \
        "${dt:-none} ms" "resolve 1000 +100; calls <= 50 ms" \
        "$([ "$seen" = RESOLVE ] && [ "$en" = -3 ] && [ "$n" -ge 3 ] && [ -n "$mx" ] && [ "$mx" -le 50000 ] &&
            within "$dt" 1000 1100 || echo 0)"
}

# DNS down, server up. A real resolver (dnsmasq on the switch) answers the
# first lookup, then goes: killed (its queries get ICMP port unreachable and
# fail at once, EAI_AGAIN), or dark (its queries dropped: each lookup runs
# into resolve_timeout_ms, 1 s here). Meanwhile the server closes every
# connection 300 ms after accepting it. Every reconnect must fall back on
# the name's last good address (on_log warns each time) and connect.
dns_down() {        # dns_down SCENARIO killed|dark
    local s=$1 t0 n w p r lk x ok lo=0 hi=100
    no_dnsmasq "$s" && return
    echo "$SRV_IP srv.lab" >"$W/dns.hosts"
    dns_up "$L" || { row "$s" "-" "dnsmasq did not start: $(tail -n 1 "$W/dns.out")" "-" "-" 0; return; }
    client_names "$L" "timeout:1 attempts:1"
    start_server "$L" echo -K 300
    start_client "$L" $KA -h srv.lab -R 1000 -b 200 -B 400 -j 0
    connected "$s" || return
    if [ "$2" = killed ]; then
        kill -TERM "$(cat "$W/dns.pid")"
        wait_for "$W/dns.out" "exiting" 2000
    else
        dns_drop "$L"
    fi
    cmd "mark dnsdown"; t0=$(mark_time dnsdown)
    wait_after "$W/cli.out" " connect " "$t0" 3 8000
    n=$(count_after "$W/cli.out" " connect " "$t0")
    w=$(count_after "$W/cli.out" " warning .*last good" "$t0")
    r=$(count_after "$W/cli.out" " retry .*reason=RESOLVE" "$t0")
    p=$(awk -v t0="$t0" '$1 >= t0 && $2 == "connect"' "$W/cli.out" | grep -vc " peer=$SRV_IP ")
    # How long each reconnect took beyond its backoff delay: the lookup's
    # part (at once when the resolver is gone, resolve_timeout_ms when dark).
    lk=$(awk -v t0="$t0" '$1 >= t0 && $2 == "retry" { t = $1; for (i = 3; i <= NF; i++) if ($i ~ /^delay=/) d = substr($i, 7) }
        $1 >= t0 && $2 == "connect" && t { printf "%s%d", (n++ ? " " : ""), $1 - t - d; t = 0 }' "$W/cli.out")
    [ "$2" = dark ] && lo=1000 hi=1150
    ok=$([ "$n" -ge 3 ] && [ "$p" = 0 ] && [ "$w" -ge 3 ] && [ "$r" = 0 ] && echo 1 || echo 0)
    for x in $lk; do [ "$x" -ge "$lo" ] && [ "$x" -le "$hi" ] || ok=0; done
    row "$s" ">= 3 reconnects, last good address" "$n reconnects ($p elsewhere), $w fallbacks logged, $r RESOLVE failures" \
        "lookup ${lk:-?} ms" ">= 3 in 8 s; lookup $lo..$hi ms" "$ok"
}
sc_dns_down() { dns_down "DNS killed after one good lookup; server closes each connection" killed; }
sc_dns_dark() { dns_down "DNS dark after one good lookup; server closes each connection" dark; }

# Happy Eyeballs (RFC 8305): a name with an IPv6 and an IPv4 address (the
# client's /etc/hosts), every SYN of one family dropped by the server. The
# first address tried is the resolver's first choice: IPv6 by glibc's
# RFC 6724 table, IPv4 where a gai.conf puts it first. The other family
# starts connection_attempt_delay_ms (250) later and wins: connected in
# 250..500 ms (the library once waited for half the connect timeout). Then
# the server closes the connection: the reconnect tries the family that
# worked first, and so connects at once (0..100 ms after its backoff delay).
he_row() {          # he_row SCENARIO DARK-FAMILY(ip|ip6) WANT-PEER [v4first]
    local s=$1 fam=$2 want=$3 t0 tc peer dt p2 d2 ok
    dual_stack "$L" || { row "$s" "-" "lab setup failed: no IPv6 in a namespace?" "-" "-" 0; return; }
    client_names "$L" "" "$SRV6 dual.lab" "$SRV_IP dual.lab"
    if [ "${4:-}" = v4first ]; then
        printf '%s\n' "precedence ::1/128 50" "precedence ::/0 40" "precedence 2002::/16 30" \
            "precedence ::/96 20" "precedence ::ffff:0:0/96 100" | ns_file "$L-c" gai.conf
    fi
    firewall "$L" "tcp dport $PORT tcp flags & (syn | ack) == syn drop" "$fam"
    start_server "$L" echo -l "$SRV6"
    start_client "$L" $KA -h dual.lab -C 3000
    wait_for "$W/cli.out" " connect " 3000
    t0=$(stamp "$W/cli.out" " start$"); tc=$(stamp "$W/cli.out" " connect ")
    peer=$(field "$W/cli.out" " connect " peer)
    [ -n "$tc" ] && [ -n "$t0" ] && dt=$((tc - t0)) || dt=""
    if [ -n "$tc" ]; then
        cmd "mark close"; t0=$(mark_time close)
        kill -USR1 "$(cat "$W/srv.pid")"
        wait_after "$W/cli.out" " connect " "$t0" 1 3000
        read -r p2 d2 <<<"$(awk -v t0="$t0" '$1 >= t0 && $2 == "retry" { t = $1; for (i = 3; i <= NF; i++) if ($i ~ /^delay=/) d = substr($i, 7) }
            $1 >= t0 && $2 == "connect" && t { for (i = 3; i <= NF; i++) if ($i ~ /^peer=/) p = substr($i, 6); print p, $1 - t - d; exit }' "$W/cli.out")"
    fi
    ok=0
    [ "$peer" = "$want" ] && [ "$p2" = "$want" ] && [ "$(within "${d2:-}" 0 100)" = 1 ] && ok=$(within "$dt" 240 500)
    row "$s" "via $want; again at once" "via ${peer:-nothing}; again via ${p2:-nothing}${d2:+ +$d2 ms}" "${dt:-none} ms" \
        "250 -10 .. 500; again 0..100" "$ok"
}
sc_he_v6_dark() { he_row "dual stack, IPv6 SYNs dropped (IPv6 first)" ip6 "$SRV_IP"; }
sc_he_v4_dark() { he_row "dual stack, IPv4 SYNs dropped (IPv4 first)" ip "$SRV6" v4first; }

# The server moves between two attempts: the name's address changes in the
# resolver (dnsmasq reads its hosts file again), the server closes the
# connection, and its old address goes dark (removed from the host: SYNs to
# it get no answer). The reconnect must look the name up again and reach
# the new address.
sc_dns_move() {
    local s="server moves to a new address (DNS changed, old one dark)" new=10.77.0.3 p0 t0 tc peer dt
    no_dnsmasq "$s" && return
    echo "$SRV_IP move.lab" >"$W/dns.hosts"
    dns_up "$L" || { row "$s" "-" "dnsmasq did not start: $(tail -n 1 "$W/dns.out")" "-" "-" 0; return; }
    client_names "$L" "timeout:1 attempts:1"
    ip netns exec "$L-s" sysctl -qw net.ipv4.conf.eth0.promote_secondaries=1   # the new address outlives the old
    ip -n "$L-s" addr add "$new/24" dev eth0
    start_server "$L" echo -l "$new"
    start_client "$L" $KA -h move.lab -b 200 -B 400 -j 0 -C 1000
    connected "$s" || return
    p0=$(field "$W/cli.out" " connect " peer)
    echo "$new move.lab" >"$W/dns.hosts"
    dns_reload
    cmd "mark move"; t0=$(mark_time move)
    kill -USR1 "$(cat "$W/srv.pid")"
    wait_for "$W/srv.out" " close " 1000
    ip -n "$L-s" addr del "$SRV_IP/24" dev eth0
    wait_after "$W/cli.out" " connect " "$t0" 1 3000
    tc=$(stamp "$W/cli.out" " connect " "$t0")
    peer=$(awk -v t0="$t0" '$1 >= t0 && $2 == "connect"' "$W/cli.out" | head -n 1 | tr ' ' '\n' | sed -n 's/^peer=//p')
    [ -n "$tc" ] && dt=$((tc - t0)) || dt=""
    row "$s" "reconnect to $new" "first ${p0:-?}, then ${peer:-nothing}" "${dt:-none} ms" "1000 after the move" \
        "$([ "$p0" = "$SRV_IP" ] && [ "$peer" = "$new" ] && within "$dt" 0 1000 || echo 0)"
}

# Two servers: endpoints[0] refuses (nothing listens on its port), [1] is up.
# The first attempt goes to [0], the retry to [1], which connects. Once that
# connection has been up backoff_reset_ms (1 s here) the server closes it,
# and the next outage starts again from [0] (refused), then [1].
sc_endpoints() {
    local s="endpoints: primary refused, backup up" e1 r1 t0 seq
    start_server "$L" echo
    start_client "$L" $KA -e "$SRV_IP:7001" -e "$SRV_IP:$PORT" -r 1000 -b 200 -B 400 -j 0
    connected "$s" 3000 || return
    e1=$(field "$W/cli.out" " connect " ep); r1=$(field "$W/cli.out" " retry " reason)
    sleep 1.5                           # up longer than backoff_reset_ms
    cmd "mark close"; t0=$(mark_time close)
    kill -USR1 "$(cat "$W/srv.pid")"
    wait_after "$W/cli.out" " connect " "$t0" 1 3000
    seq=$(awk -v t0="$t0" '$1 >= t0 && $2 == "retry" { for (i = 3; i <= NF; i++) if ($i ~ /^reason=/) printf "%s ", substr($i, 8) }
        $1 >= t0 && $2 == "connect" { for (i = 3; i <= NF; i++) if ($i ~ /^ep=/) printf "ep%s", substr($i, 4); exit }' "$W/cli.out")
    row "$s" "[0] REFUSED, [1] up; again after 1 s up" "${r1:-none}, then ep${e1:-?}; after the close: ${seq:-nothing}" "-" \
        "REFUSED ep1; PEER_CLOSED REFUSED ep1" \
        "$([ "$r1" = REFUSED ] && [ "$e1" = 1 ] && [ "$seq" = "PEER_CLOSED REFUSED ep1" ] && echo 1 || echo 0)"
}

# bind_address: the client namespace has a second address on its NIC; the
# server must see the connection come from it.
sc_bind_addr() {
    local s="bind_address: the client's second address" src=10.77.0.11 peer
    ip -n "$L-c" addr add "$src/24" dev eth0
    start_server "$L" echo; start_client "$L" $KA -s "$src"
    connected "$s" || return
    wait_for "$W/srv.out" " accept " 1000
    peer=$(field "$W/srv.out" " accept " peer)
    row "$s" "server sees $src" "server sees ${peer:-nothing}" "-" "-" "$([ "$peer" = "$src" ] && echo 1 || echo 0)"
}

# bind_interface: the client has a second NIC (eth1, 10.77.0.21) on the
# same switch. Unbound, the route to the server goes out of eth0; bound to
# eth1 (SO_BINDTODEVICE) the connection must leave through eth1 with its
# address. arp_ignore/arp_announce make each NIC answer ARP for its own
# address only, so the server's replies come back the same way.
sc_bind_iface() {
    local s="bind_interface eth1: a second NIC on the LAN" src=10.77.0.21 peer dflt
    ip -n "$L-w" link add c2 type veth peer name eth1 netns "$L-c" &&
    ip -n "$L-w" link set c2 master br0 && ip -n "$L-w" link set c2 up &&
    ip netns exec "$L-c" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 &&
    ip -n "$L-c" addr add "$src/24" dev eth1 && ip -n "$L-c" link set eth1 up ||
        { row "$s" "-" "lab setup failed: second NIC" "-" "-" 0; return; }
    dflt=$(ip -n "$L-c" route get "$SRV_IP" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
    start_server "$L" echo; start_client "$L" $KA -n eth1
    connected "$s" || return
    wait_for "$W/srv.out" " accept " 1000
    peer=$(field "$W/srv.out" " accept " peer)
    row "$s" "server sees $src" "server sees ${peer:-nothing} (unbound route: ${dflt:-?})" "-" "-" \
        "$([ "$peer" = "$src" ] && [ "$dflt" = eth0 ] && echo 1 || echo 0)"
}

# ---- seeing the link: the early warning and the kernel's view ---------------------------
# lab_client -w listens for on_health ("health degraded=1 cause=..." when the
# link turns bad, "health degraded=0" when it is good again); its "stats"
# command prints ka_client_stats.

# health_events FILE T0 T1: the health reports stamped in [T0, T1), as
# "+MS:d" (degraded) and "+MS:g" (good), MS from T0.
health_events() {
    awk -v t0="$2" -v t1="$3" '$2 == "health" && $1 >= t0 && $1 < t1 {
        printf "%s+%d:%s", (n++ ? " " : ""), $1 - t0, ($3 == "degraded=1") ? "d" : "g" }' "$1"
}

# A cable pulled while the client streams (100 kB/s into a sink): the data
# goes unacknowledged at once, the kernel retransmits after a tail-loss probe
# and one RTO (about 200 ms on this LAN), and the library, which looks at a
# connection with data outstanding every 250 ms when on_health is set, must
# say "degraded" within 1 s of the pull, with most of the busy deadline
# (4 s) still to run; the deadline then ends it: TIMEOUT, at the same bounds
# as every busy row. No warning before the pull.
sc_health_pull() {
    local s="early warning: cable pulled while streaming" tw td cause left early seen en dt ok=1
    start_server "$L" sink; start_client "$L" $KA -w 0
    connected "$s" || return
    cmd "stream 100000 8000"
    sleep 1                             # a second of healthy streaming first
    fault unplug unplug "$L"
    disconnect_seen "$fault_t0" $(($(busy_hi $U) + fault_ms + 2000))
    early=$(awk -v t0="$fault_t0" '$2 == "health" && $1 < t0' "$W/cli.out" | wc -l)
    tw=$(stamp "$W/cli.out" " health degraded=1 " "$fault_t0")
    cause=$(awk -v t0="$fault_t0" '$2 == "health" && $3 == "degraded=1" && $1 >= t0 { sub("cause=", "", $4); print $4; exit }' "$W/cli.out")
    left=$(awk -v t0="$fault_t0" '$2 == "health" && $3 == "degraded=1" && $1 >= t0 {
        for (i = 4; i <= NF; i++) if ($i ~ /^deadline_ms=/) { print substr($i, 13); exit } }' "$W/cli.out")
    [ -n "$tw" ] && td=$((tw - fault_t0)) || td=""
    [ "$early" = 0 ] && [ "$(within "$td" 0 $((1000 + fault_ms)))" = 1 ] && [ "${left:-0}" -ge 2000 ] || ok=0
    [ "$seen" = TIMEOUT ] && [ "$(within "$dt" "$(busy_lo $U)" $(($(busy_hi $U) + fault_ms)))" = 1 ] || ok=0
    row "$s" "degraded < 1 s; TIMEOUT at 4 s" \
        "degraded at +${td:-never} ms (${cause:-?}, ${left:-?} ms left); $seen${en:+ (errno $en)}${early:+; $early before the pull}" \
        "${dt:-none} ms" "warn 0..1000 +$fault_ms fault; TIMEOUT $U -100 .. +410 +$SLACK" "$ok"
}

# 20% loss and 50 ms delay each way (lab_relay, as in the 20% loss row
# above) for 8 s while the client streams 8 kB/s, then a clean path again
# (SIGUSR2 to the relay) while the stream goes on. Library default
# deadlines (busy 20 s). on_health must warn while the loss lasts, may go
# good and bad again meanwhile, and must end good: good again within 3 s of
# the loss stopping (in such loss the kernel's retransmissions back off to
# about 1.6 s at most), and no warning after that while the stream runs on
# (4 s). No disconnect.
# How soon the first warning comes is reported, not bounded: the library
# looks at the kernel's state every 250 ms while data is outstanding and
# sees a retransmission only while one is under way (an RTO backoff, or
# loss recovery), which a look may miss (RESULTS.md, point 26). The delay
# makes each recovery last a round trip or more, as on a real lossy path;
# on the sub-millisecond LAN a loaded run saw its first warning 3.5 s in.
sc_health_loss() {
    local s="early warning: 20% loss + 50 ms for 8 s, then clean" t_on t_off tw tg last n_d n_g seen en dt tr ok=1
    relay_up "$L" 50 20 -u || { relay_failed "$s"; return; }
    start_server "$L" sink; start_client "$L" -d -w 0 -T 40000
    connected "$s" 3000 || return
    cmd "stream 8000 14000"
    sleep 1
    relay_loss_on; t_on=$(stamp "$W/relay.out" " loss-on$")
    sleep 8
    relay_loss_off; t_off=$(stamp "$W/relay.out" " loss-off$")
    cmd stats
    wait_for "$W/cli.out" " stream-end " 8000
    relay_down "$L"
    disconnect_seen "" 0
    t_on=${t_on:-0} t_off=${t_off:-0}
    tw=$(stamp "$W/cli.out" " health degraded=1 " "$t_on")
    n_d=$(awk -v a="$t_on" -v b="$t_off" '$2 == "health" && $3 == "degraded=1" && $1 >= a && $1 < b' "$W/cli.out" | wc -l)
    n_g=$(awk -v a="$t_on" -v b="$t_off" '$2 == "health" && $3 == "degraded=0" && $1 >= a && $1 < b' "$W/cli.out" | wc -l)
    last=$(awk '$2 == "health" { l = $1 " " $3 } END { print l }' "$W/cli.out")
    tg=${last%% *}
    tr=$(field "$W/cli.out" " stats " total_retrans)
    [ "$t_on" != 0 ] && [ "$t_off" != 0 ] && [ -n "$tw" ] && [ "$tw" -lt "$t_off" ] || ok=0
    [ "${last#* }" = degraded=0 ] && [ "$(within "$((tg - t_off))" -100000 3000)" = 1 ] || ok=0
    [ "$seen" = none ] || ok=0
    row "$s" "warned; good < 3 s after" \
        "first warning +$([ -n "$tw" ] && echo $((tw - t_on)) || echo never) ms; ${n_d} warnings, ${n_g} recoveries in the loss, ${tr:-?} segments retransmitted; last: ${last#* } $([ -n "$tg" ] && echo $((tg - t_off)) || echo ?) ms after it; disconnect $seen" \
        "-" "warning in the 8 s; good ..3000 after" "$ok"
    echo "$s: health reports from the loss on: $(health_events "$W/cli.out" "$t_on" 999999999999999)" >>"$W/note"
}

# on_health with the busy deadline off (KA_TIMEOUT_OFF) and no
# health_threshold_ms: there is no quarter of a deadline to wait for, so
# data merely in flight (a stream over 50 ms each way, no loss, 3 s) must
# never read as degraded; then 20% loss for 8 s (as in health_loss, whose
# first warning came 0.5-4.3 s into it) must still be warned of
# (retransmissions): the early warning works without a busy deadline.
sc_health_off() {
    local s="early warning, busy deadline off: 50 ms, then 20% loss" t_on n0 n1 seen en dt ok=1
    relay_up "$L" 50 20 -u || { relay_failed "$s"; return; }
    start_server "$L" sink; start_client "$L" $KA -u 4294967295 -w 0
    connected "$s" 3000 || return
    cmd "stream 200000 13000"
    sleep 3
    relay_loss_on; t_on=$(stamp "$W/relay.out" " loss-on$")
    sleep 8
    relay_loss_off
    wait_for "$W/cli.out" " stream-end " 8000 || ok=0
    relay_down "$L"
    disconnect_seen "" 0
    t_on=${t_on:-0}
    n0=$(awk -v a="$t_on" '$2 == "health" && $3 == "degraded=1" && $1 < a' "$W/cli.out" | wc -l)
    n1=$(awk -v a="$t_on" '$2 == "health" && $3 == "degraded=1" && $1 >= a' "$W/cli.out" | wc -l)
    [ "$t_on" != 0 ] && [ "$n0" -eq 0 ] && [ "$n1" -ge 1 ] && [ "$seen" = none ] || ok=0
    row "$s" "none clean; warned in loss" "$n0 warnings clean, $n1 in the loss; disconnect $seen" "-" \
        "in flight is not a warning" "$ok"
}

# A server that stops reading for 3 s, then reads again (lab_server -P), its
# receive buffer 16 KiB, while the client streams 1 MB/s: the window closes
# and the server's kernel answers every zero-window probe. on_health must
# warn with cause STALLED (alone: the peer acknowledges everything, nothing
# is retransmitted) within 1 s of the client seeing the window close in its
# TCP_INFO, and say good again within 1 s of the window opening. No
# disconnect: no stall_timeout_ms, and a peer that answers is alive.
sc_health_stall() {
    local s="early warning: server stops reading 3 s" tc to tw tg cause seen en dt ok=1
    start_server "$L" verify -P 300:3000 -r 16384; start_client "$L" $KA -w 0
    connected "$s" || return
    cmd "stream 1000000 6000"
    wait_for "$W/cli.out" " window-closed" 3000
    tc=$(stamp "$W/cli.out" " window-closed")
    wait_for "$W/cli.out" " window-open" 6000
    to=$(stamp "$W/cli.out" " window-open" "${tc:-0}")
    [ -n "$to" ] && wait_after "$W/cli.out" " health degraded=0 " "$to" 1 2000
    disconnect_seen "" 0
    tw=$(stamp "$W/cli.out" " health degraded=1 " "$((${tc:-0} - 100))")
    cause=$(awk -v t0="$((${tc:-0} - 100))" '$2 == "health" && $3 == "degraded=1" && $1 >= t0 { sub("cause=", "", $4); print $4; exit }' "$W/cli.out")
    [ -n "$to" ] && tg=$(stamp "$W/cli.out" " health degraded=0 " "$to")
    [ -n "$tc" ] && [ -n "$to" ] && [ "$cause" = STALLED ] || ok=0
    [ -n "$tw" ] && [ "$(within $((tw - ${tc:-0})) -100 1000)" = 1 ] || ok=0
    [ -n "$tg" ] && [ "$(within $((tg - ${to:-0})) 0 1000)" = 1 ] || ok=0
    [ "$seen" = none ] || ok=0
    row "$s" "STALLED < 1 s; good < 1 s" \
        "degraded (${cause:-none}) at +$([ -n "$tw" ] && echo $((tw - ${tc:-0})) || echo never) ms; good at +$([ -n "$tg" ] && echo $((tg - to)) || echo never) ms after it opened; disconnect $seen" \
        "window closed $([ -n "$tc" ] && [ -n "$to" ] && echo $((to - tc)) || echo ?) ms" "warn -100..1000; good 0..1000" "$ok"
}

# ka_client_stats against `ss -tino` (and `-i`'s snd_wnd where iproute2
# prints it, 6.2 and later; else the window of the server's last segment as
# tcpdump saw it, times its window scale) for the same socket, in the
# client namespace. The kernel state is held still while both look: no ACK
# can come (cable pulled) or the window is closed, and a look is taken
# between two `stats` commands whose kernel fields agree, so that nothing
# changed in between (up to 5 tries, a retransmission may fall between).
#   ka_stats          ss
#   rtt_us/rttvar_us  rtt:A/B (ms)
#   retransmits       timer:(on,...,N)      (icsk_retransmits)
#   probes            timer:(persist,...,N) (icsk_probes_out); 0 under timer "on"
#   total_retrans     retrans:a/B
#   send_queue_bytes  Send-Q                (write_seq - snd_una)
#   unacked_bytes     Send-Q - notsent:N
#   peer_window       snd_wnd:N, or tcpdump's last "win W" << wscale's first value

# stats_kernel LINE: the kernel fields of a "stats" line, for comparing two.
stats_kernel() { echo "$1" | sed -n 's/.* \(rtt_us=.* probes=[^ ]*\).*/\1/p'; }

# snapshot: sets SNAP_ST (a stats line) and SNAP_SS (ss's two lines for the
# client's socket) from a still moment; SNAP_TRIES says how many it took.
snapshot() {
    local n a b try
    SNAP_ST="" SNAP_SS="" SNAP_TRIES=0
    for try in 1 2 3 4 5; do
        SNAP_TRIES=$try
        matches "$W/cli.out" " stats "; n=$COUNT
        cmd stats; wait_count "$W/cli.out" " stats " $((n + 1)) 1000 || continue
        SNAP_SS=$(ip netns exec "$L-c" ss -Htino dst "$SRV_IP" dport = ":$PORT" | tr '\n\t' '  ')
        cmd stats; wait_count "$W/cli.out" " stats " $((n + 2)) 1000 || continue
        a=$(grep " stats " "$W/cli.out" | sed -n "$((n + 1))p"); b=$(grep " stats " "$W/cli.out" | sed -n "$((n + 2))p")
        SNAP_ST=$b
        [ -n "$(stats_kernel "$a")" ] && [ "$(stats_kernel "$a")" = "$(stats_kernel "$b")" ] && return 0
        nap 0.1
    done
    return 1
}

# ss_field NAME: from SNAP_SS, the value after "NAME:" (empty if absent).
ss_field() { echo "$SNAP_SS" | tr ' ' '\n' | sed -n "s/^$1://p" | head -n 1; }

# last_win: the raw window of the server's last non-SYN segment in $W/win.pcap.txt.
last_win() {
    awk '$0 ~ / > / && $0 !~ /Flags \[S/ { for (i = 1; i < NF; i++) if ($i == "win") w = $(i + 1) }
        END { sub(/,$/, "", w); print w }' "$W/win.pcap.txt"
}

# near A B: A within 1 + B/1000 of B (ss prints milliseconds with %g).
near() { [ -n "$1" ] && [ -n "$2" ] && [ "$1" != - ] && awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1 + b / 1000) }'; }

# compare_stats SCENARIO: the row for one snapshot.
compare_stats() {
    local s=$1 st=$SNAP_ST rtt var ssq notsent timer tkind tcount rtr ws swnd wsrc pw bad="" seen
    v() { kv "$st" "$1"; }      # a field of the stats line
    ssq=$(echo "$SNAP_SS" | awk '{ print $3 }')
    read -r rtt var <<<"$(ss_field rtt | awk -F/ '{ printf "%.0f %.0f", $1 * 1000, $2 * 1000 }')"
    notsent=$(ss_field notsent); notsent=${notsent:-0}
    timer=$(echo "$SNAP_SS" | sed -n 's/.*timer:(\([^)]*\)).*/\1/p')
    tkind=${timer%%,*}; tcount=${timer##*,}
    rtr=$(ss_field retrans); rtr=${rtr#*/}; rtr=${rtr:-0}
    ws=$(ss_field wscale); ws=${ws%%,*}
    swnd=$(ss_field snd_wnd)
    if [ -n "$swnd" ]; then wsrc="ss"; pw=$swnd
    elif [ -s "$W/win.pcap.txt" ] && [ -n "$ws" ] && [ -n "$(last_win)" ]; then wsrc="tcpdump"; pw=$(($(last_win) << ws))
    else wsrc="none"; pw=""; fi
    near "$(v rtt_us)" "$rtt" || bad="$bad rtt"
    near "$(v rttvar_us)" "$var" || bad="$bad rttvar"
    [ "$(v total_retrans)" = "$rtr" ] || bad="$bad total_retrans"
    [ "$(v send_queue_bytes)" = "$ssq" ] || bad="$bad send-q"
    [ -n "$ssq" ] && [ "$(v unacked_bytes)" = "$((ssq - notsent))" ] || bad="$bad unacked"
    case $tkind in
        on) [ "$(v retransmits)" = "$tcount" ] && [ "$(v probes)" = 0 ] || bad="$bad retransmits/probes" ;;
        persist) [ "$(v probes)" = "$tcount" ] || bad="$bad probes" ;;
        *) bad="$bad timer(${timer:-none})" ;;
    esac
    [ "$wsrc" = none ] || [ "$(v peer_window)" = "$pw" ] || bad="$bad window"
    seen="rtt $(v rtt_us)/$(v rttvar_us) us, retrans $(v retransmits)/$(v total_retrans), probes $(v probes), unacked $(v unacked_bytes), send-q $(v send_queue_bytes), window $(v peer_window); ss: rtt $rtt/$var, timer $tkind $tcount, retrans $rtr, send-q $ssq - notsent $notsent, window ${pw:-?} ($wsrc)"
    row "$s" "equal" "${bad:+differ:$bad; }$seen" "-" "rtt +-1 us +0.1%; rest equal; $SNAP_TRIES look(s)" \
        "$([ -z "$bad" ] && [ -n "$SNAP_ST" ] && echo 1 || echo 0)"
    echo "$s: stats: $st" >>"$W/note"
    echo "$s: ss: $SNAP_SS" >>"$W/note"
}

# win_capture L: tcpdump of the server's segments in the client namespace
# (for the window when ss does not print it); returns once it listens.
win_capture() {
    command -v tcpdump >/dev/null || return 0
    ip netns exec "$1-c" tcpdump -i eth0 -n -l -S "tcp and src host $SRV_IP and src port $PORT" \
        >"$W/win.pcap.txt" 2>"$W/win.err" &
    wait_for "$W/win.err" "listening on" 3000
}

# Data behind a pulled cable: five echoed messages for real RTT samples,
# the cable pulled, 30 kB sent; 2 s later the kernel is between two
# retransmissions (busy deadline 20 s here, so nothing ends it meanwhile).
sc_stats_pull() {
    local s="ka_client_stats = ss -tino: data behind a pulled cable" i
    win_capture "$L"
    start_server "$L" echo; start_client "$L" $KA -u 20000
    connected "$s" || return
    for i in 1 2 3 4 5; do cmd "send 100"; wait_count "$W/cli.out" " data " "$i" 2000 || break; done
    unplug "$L"
    cmd "send 30000"
    sleep 2
    snapshot || true
    compare_stats "$s"
}

# A closed window: the server stops reading for good with a 16 KiB buffer
# while the client streams 1 MB/s; a second after the window closed, the
# kernel sends zero-window probes and the server answers them.
sc_stats_stall() {
    local s="ka_client_stats = ss -tino: window closed"
    win_capture "$L"
    start_server "$L" verify -P 300:0 -r 16384; start_client "$L" $KA
    connected "$s" || return
    cmd "stream 1000000 8000"
    wait_for "$W/cli.out" " window-closed" 3000
    sleep 1
    snapshot || true
    compare_stats "$s"
}

# ---- sessions: nothing lost across real faults -------------------------------------
# demo/telemetry_client (replay_until_acked, a LOGIN from on_connect, and
# hold_until_ready: nothing else until the server's OK) sends
# 800 numbered readings, one every 10 ms, to demo/telemetry_server, which
# answers "ACK N" and keeps a log outside the namespaces. Mid-stream the
# server's cable is pulled for 7 s (the demo's busy deadline is 5 s: the
# connection dies while the server lives on, holding lines whose ACKs never
# arrived), or its host crashes and reboots (a fresh stack answers the
# stream with RST, and a fresh server process goes on with the same log).
# The client must end with every reading acknowledged; the log, read by
# the server's own --report, must show none lost; and each later
# connection must begin at the first reading the client had no ACK for.
# Lines that come twice are the ones whose ACK was lost. The server says OK
# 200 ms after each LOGIN and logs how many bytes came before it: none may.
TCLIENT=$here/../../demo/telemetry_client
TSERVER=$here/../../demo/telemetry_server
TLINES=800

start_tserver() {   # start_tserver NS: the telemetry server, listening
    ip netns exec "$1" "$TSERVER" --host "$SRV_IP" --port "$PORT" --log "$W/tlog" --ack-after 300 --ok-after 200 >>"$W/srv.out" 2>&1 &
    echo $! >"$W/srv.pid"
    wait_count "$W/tlog" "^start " "$(($(grep -c "^start " "$W/tlog" 2>/dev/null) + 1))" 2000
}

session_row() {     # session_row SCENARIO unplug|reboot
    local s=$1 rc=none i rep lost dup conns reason want resumed oks early ok
    [ -x "$TCLIENT" ] && [ -x "$TSERVER" ] ||
        { row "$s" "-" "skipped: demo/telemetry_client and _server not built (make suite-lab builds them)" "-" "-" skip; return; }
    if [ "$2" = reboot ]; then
        server_host "$L" "$L-r" r || { row "$s" "-" "lab setup failed: second host" "-" "-" 0; return; }
    fi
    start_tserver "$L-s"
    ip netns exec "$L-c" "$TCLIENT" --lines "$TLINES" --every 10 --login lab --hold --deadline 40 "$SRV_IP" "$PORT" >"$W/cli.out" 2>&1 &
    local cpid=$!
    wait_count "$W/tlog" "^ack " 3 5000
    if [ "$2" = unplug ]; then
        unplug "$L"; sleep 7; replug "$L"
    else
        crash "$L"; sleep 1
        plug "$L" r; start_tserver "$L-r"
    fi
    for ((i = 0; i < 400; i++)); do kill -0 "$cpid" 2>/dev/null || break; nap 0.1; done
    kill -0 "$cpid" 2>/dev/null && kill -KILL "$cpid"
    wait "$cpid" 2>/dev/null; rc=$?
    rep=$("$TSERVER" --log "$W/tlog" --report --lines "$TLINES" 2>&1)
    lost=$(echo "$rep" | sed -n 's/.* \([0-9]*\) lost.*/\1/p')
    dup=$(echo "$rep" | sed -n 's/.* \([0-9]*\) duplicated.*/\1/p')
    conns=$(echo "$rep" | sed -n 's/.* \([0-9]*\) connections.*/\1/p')
    reason=$(sed -n 's/^telemetry: [^ ]* connection lost after [0-9]* ms: \([^(]*\) (.*/\1/p' "$W/cli.out" | head -n 1)
    # What the client had not had an ACK for when each connection was lost,
    # and where each later connection began. The server's own "after their
    # ACK" counts ACKs it handed to its kernel, which a pulled cable or a
    # crash never delivers, so the client's side is the measure here.
    want=$(sed -n 's/.* readings \([0-9]*\)\.\.[0-9]* not acknowledged.*/\1/p' "$W/cli.out" | tr '\n' ' ')
    resumed=$(awk '$1 == "conn" { n++; first = 1; next } $1 == "got" && first { if (n > 1) printf "%s ", $2; first = 0 }' "$W/tlog")
    want=${want% } resumed=${resumed% }
    # hold_until_ready: every connection's readings wait for the server's
    # OK, sent 200 ms after the LOGIN ("ok N": N bytes came before it).
    oks=$(grep -c "^ok " "$W/tlog"); early=$(grep -c "^ok [1-9]" "$W/tlog")
    ok=$([ "$rc" = 0 ] && [ -n "$reason" ] && [ "$lost" = 0 ] && [ "${conns:-0}" -ge 2 ] && [ -n "$want" ] && [ "$want" = "$resumed" ] &&
        [ "$oks" = "$conns" ] && [ "$early" = 0 ] && echo 1 || echo 0)
    { echo "--- $s: client output"; cat "$W/cli.out"; echo "--- $s: server report"; echo "$rep"; } >>"$W/srv.out"
    row "$s" "$TLINES acked, 0 lost" "exit $rc; ${lost:-?} lost, ${dup:-?} twice; resent from ${resumed:-?}, 1st unacked ${want:-?}; data before OK on $early of $oks connections" \
        "lost: ${reason:-none}" "0 lost; resent from the 1st unacked; none before OK" "$ok"
}
sc_session_unplug() { session_row "replay_until_acked: cable pulled 7 s mid-stream" unplug; }
sc_session_reboot() { session_row "replay_until_acked: host crashed and rebooted mid-stream" reboot; }

# ---- stress: start and stop while lookups hang ---------------------------------------
# lab_stress in a client namespace whose resolver drops every query (glibc
# timeout 1 s, one try): 1,000 cycles of start/stop of one client
# ("restart", 3 ms apart, so that they span three lookups' lifetimes) or of
# new/start/stop/free ("fresh", back to back). Threads and descriptors must
# come back to where they were within 20 s, and no call may hold the thread
# 50 ms. Restarting one client joins the lookup still running for its name:
# at most two lookup threads at once (one ending as the next begins).
stress_row() {      # stress_row SCENARIO MODE PAUSE-MS
    local s=$1 m=$2 max=${KA_LAB_STRESS_MAX_MS:-50} line th fd st mx rc ok
    resolver_blackhole "$L" || { row "$s" "-" "lab setup failed" "-" "-" 0; return; }
    client_names "$L" "timeout:1 attempts:1"
    # shellcheck disable=SC2086 # the wrapper is a command line
    timeout 85 ip netns exec "$L-c" $STRESS_WRAP "$STRESS" -h srv.lab -p "$PORT" -n 1000 -m "$m" -P "$3" -W 20000 \
        -M "$max" >"$W/cli.out" 2>&1
    rc=$?                               # a sanitizer's or valgrind's finding fails the row
    line=$(grep " stress " "$W/cli.out" | tail -n 1)
    th=$(kv "$line" threads); fd=$(kv "$line" fds); st=$(kv "$line" settle_ms); mx=$(kv "$line" max_call_us)
    ok=$([ "$rc" = 0 ] && grep -q "^1 passed, 0 failed" "$W/cli.out" && echo 1 || echo 0)
    if [ "$m" = restart ] && [ -n "$th" ]; then
        [ "$(echo "$th" | cut -d/ -f2)" -le $(($(echo "$th" | cut -d/ -f1) + 2)) ] || ok=0
    fi
    row "$s" "counts back; calls < $max ms" "threads ${th:-?}, fds ${fd:-?} (before/peak/after); $(kv "$line" cycles) cycles in $(kv "$line" ms) ms, longest call ${mx:-?} us ($(kv "$line" max_call))" \
        "back in ${st:-?} ms" "20 s; calls < $max ms$([ "$rc" = 0 ] || echo ", exit $rc")" "$ok"
}
sc_stress_restart() { stress_row "1,000 start/stop of one client, resolver dead" restart 3; }
sc_stress_fresh() { stress_row "1,000 new/start/stop/free, resolver dead" fresh 0; }

# ---- run ----------------------------------------------------------------------

# wait_ready MS: 0 once every lab of the first wave ($WORK/wave) is built.
wait_ready() {
    local end=$(($(now_ms) + $1)) n
    for n in $(cat "$WORK/wave"); do
        until [ -f "$WORK/$n/ready" ]; do
            [ "$(now_ms)" -ge "$end" ] && return 1
            nap 0.05
        done
    done
}

# Building and deleting namespaces holds the kernel's rtnl lock, which every
# `ip` command of a fault needs too: run beside the setup of forty labs, an
# `ip link set down` took up to 0.7 s, and the measured times grew by as
# much. So the scenarios of the first wave build their labs, wait until all
# are built, and only then start; and namespaces are deleted at the end of
# the run, not as each scenario ends (its processes are killed then).
run_scenario() {    # in a subshell: its own lab, its own fd 3
    local name=$1 up=1 ns
    L=$ID-$name
    W=$WORK/$name
    mkdir -p "$W"
    lab_up "$L" >"$W/setup.err" 2>&1 || up=0
    : >"$W/ready"
    case " $LATE " in *" $name "*) ;; *) wait_ready 30000 ;; esac
    if [ "$up" = 0 ]; then
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
    for ns in $(ip netns list | awk '{print $1}' | grep "^$L-"); do kill_ns_procs "$ns" KILL; done
    : >"$W/done"
}

# wait_done MS NAME...: 0 once every named scenario has finished, 1 after MS.
wait_done() {
    local end=$(($(now_ms) + $1)) n; shift
    for n in "$@"; do
        until [ -f "$WORK/$n/done" ]; do
            [ "$(now_ms)" -ge "$end" ] && return 1
            nap 0.1
        done
    done
}

start_scenario() {  # start_scenario NAME: in the background
    started="$started $1"
    ( run_scenario "$1" ) 2>"$WORK/$1.stderr" &
    jobs_pids="$jobs_pids $!"
}

t_start=$(now_ms)
wave="" late="" short=""
for name in $FIRST $SCENARIOS; do
    [ -n "$only" ] && [ "${name#*$only}" = "$name" ] && continue
    case " $wave $late " in *" $name "*) continue ;; esac
    case " $LATE " in *" $name "*) late="$late $name" ;; *) wave="$wave $name" ;; esac
    case " $LONG $LATE " in *" $name "*) ;; *) short="$short $name" ;; esac
done
echo "$wave" >"$WORK/wave"
started=""
for name in $wave; do start_scenario "$name"; done
# shellcheck disable=SC2086 # lists of names
[ -z "$late" ] || wait_done 60000 $short || echo "lab: short scenarios still running after 60 s: starting the late ones anyway"
for name in $late; do start_scenario "$name"; done
# wait_scenarios: until the started ones end; one that hangs must not hang
# the suite, so each has at most 90 s.
wait_scenarios() {
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
}
wait_scenarios

# A scenario that failed beside fifty others runs once more, alone: on two
# cores a late wake-up under that load once put a 1000 ms bound 323 ms over,
# and a second run alone tells such a wake-up from a broken promise. The
# table shows the second run; the first is noted with its output. More than
# a few failures are not load: then nothing runs again.
failed_rows() {     # failed_rows NAME...: those whose row says neither ok nor skip
    local n
    for n in "$@"; do
        [ -f "$WORK/$n/row" ] && awk -F'\t' '$6 != 1 && $6 != "skip" { bad = 1 } END { exit !bad }' "$WORK/$n/row" && echo "$n"
    done
}
# shellcheck disable=SC2086 # lists of names
again=$(failed_rows $started)
if [ -n "$again" ] && [ "$(echo $again | wc -w)" -le 3 ]; then
    for name in $again; do
        mv "$WORK/$name" "$WORK/$name.first"
        del_lab_ns "$ID-$name-"
        echo "$name" >"$WORK/wave"
        jobs_pids=""
        start_scenario "$name"
        wait_scenarios
        mkdir -p "$WORK/$name"
        { awk -F'\t' '$6 != 1 && $6 != "skip" { printf "%s: failed beside the other scenarios (seen: %s; %s; bound: %s); run again alone\n", $1, $3, $4, $5 }' \
              "$WORK/$name.first/row"
          sed 's/^/first run: /' "$WORK/$name.first/log" 2>/dev/null; } >>"$WORK/$name/note"
    done
fi
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
