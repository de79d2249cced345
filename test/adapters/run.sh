#!/usr/bin/env bash
# Suite "adapters": the event-loop adapters (adapters/ka_epoll, ka_uv,
# ka_glib) each drive the test client of test/adapters/ad_test.h (one
# program per adapter) against socat:
#
#   loopback restart   127.0.0.1; the server goes away and comes back
#   loopback redial    127.0.0.1; twice the client drops the connection and
#                      dials again from inside on_data: the new socket gets
#                      the number just withdrawn, within one library call
#   two addresses      a name with an IPv6 ULA and an IPv4 address, the
#                      server listening on IPv4 only: IPv6 is refused, IPv4
#                      connects; then a reconnect from inside on_data
#   IPv6 blackholed    the same name, nftables drops the IPv6 SYNs: IPv4
#                      wins the Happy Eyeballs race after its 250 ms delay
#   server restart     the same name; the server goes away and comes back
#
# The client program checks the adapter's registrations at every on_socket
# and that nothing is left after the free (ad_test.h). The last three run in
# two network namespaces joined by a veth pair; fd00:78::/64 and
# 10.78.0.0/24 exist only inside them, and the name lives in the client
# namespace's own /etc/hosts (ip netns exec bind-mounts /etc/netns/NS/hosts
# over /etc/hosts). Without root, ip or nft they are skipped with one line.
#
# Every wait is a deadline loop on a line of output or a listening port.
# Ends with "N passed, N failed, N skipped".
# Usage: test/adapters/run.sh [NAME-SUBSTRING]
# AD_BIN=DIR runs the programs of another build (ASan...); AD_RUN=WRAPPER
# runs each under a wrapper, e.g. AD_RUN="valgrind -q --error-exitcode=9".
set -u
export LC_ALL=C
cd "$(dirname "$0")/../.." || exit 1
FILTER=${1:-}
AD_BIN=${AD_BIN:-test/adapters}
AD_RUN=${AD_RUN:-}
. test/shlib.sh

ADAPTERS="epoll uv glib"
ID=ka-ad-$$                     # both namespaces of this run start so
C=$ID-c S=$ID-s
NAME=kasrv PORT=7000
SRV4=10.78.0.2 CLI4=10.78.0.1 SRV6=fd00:78::2 CLI6=fd00:78::1
ns_ok=""                        # empty once the namespaces are up; else why not

# ---- the namespaces -------------------------------------------------------------

ns_teardown() {
    local ns
    for ns in "$@"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
        rm -rf "/etc/netns/$ns"
    done
}

# Namespaces left by a run that was killed: its PID is gone.
ns_sweep() {
    local ns pid
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^ka-ad-[0-9]*-' || true); do
        pid=${ns#ka-ad-}; pid=${pid%%-*}
        kill -0 "$pid" 2>/dev/null || ns_teardown "$ns"
    done
}

ns_up() {
    [ "$(uname -s)" = Linux ] || { ns_ok="network namespaces need Linux"; return; }
    [ "$(id -u)" = 0 ] || { ns_ok="needs root to create network namespaces"; return; }
    command -v ip >/dev/null || { ns_ok="ip (iproute2) not installed"; return; }
    command -v nft >/dev/null || { ns_ok="nft (nftables) not installed"; return; }
    ns_sweep
    ip netns add "$C" 2>/dev/null && ip netns add "$S" 2>/dev/null &&
    ip -n "$C" link add eth0 type veth peer name eth0 netns "$S" 2>/dev/null &&
    ip -n "$C" link set lo up && ip -n "$S" link set lo up &&
    ip -n "$C" link set eth0 up && ip -n "$S" link set eth0 up &&
    ip -n "$C" addr add "$CLI4/24" dev eth0 && ip -n "$S" addr add "$SRV4/24" dev eth0 &&
    ip -n "$C" addr add "$CLI6/64" dev eth0 nodad && ip -n "$S" addr add "$SRV6/64" dev eth0 nodad &&
    ip netns exec "$S" nft list tables >/dev/null 2>&1 &&
    mkdir -p "/etc/netns/$C" &&
    printf '127.0.0.1 localhost\n%s %s\n%s %s\n' "$SRV6" "$NAME" "$SRV4" "$NAME" >"/etc/netns/$C/hosts" ||
        ns_ok="veth, addresses or nftables unavailable in a network namespace"
}

# nftables in the server namespace: IPv6 SYNs to the port vanish.
blackhole_v6() {
    ip netns exec "$S" nft -f - <<EOF
table ip6 adapters {
    chain in {
        type filter hook input priority 0; policy accept;
        tcp dport $PORT tcp flags & (syn | ack) == syn drop
    }
}
EOF
}
blackhole_off() { ip netns exec "$S" nft delete table ip6 adapters 2>/dev/null; }

# ---- servers and clients ------------------------------------------------------------

ns_listening() { ip netns exec "$S" ss -Htln "sport = :$PORT" 2>/dev/null | grep -q .; }

# server_up: socat echoes, IPv4 only, in the server namespace ($where ns)
# or on 127.0.0.1 ($where lo, port $port). Its own process group: its
# forked children die with it.
server_up() {
    if [ "$where" = lo ]; then
        start_server "$port" socat "TCP4-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" PIPE
        return
    fi
    setsid ip netns exec "$S" socat "TCP4-LISTEN:$PORT,reuseaddr,fork" PIPE >>"$T/server.log" 2>&1 &
    last_server=$!
    groups="$groups $last_server"
    wait_until 5 ns_listening || { show "$T/server.log"; return 1; }
}

# client N MODE: the adapter's test client in the background, output in
# $T/out (ad_test.h says what N and MODE mean). $AD_RUN is a command line:
# split on purpose.
# shellcheck disable=SC2086
client() {
    local prog=$AD_BIN/ad_$adapter
    if [ "$where" = lo ]; then
        timeout 20 $AD_RUN "$prog" 127.0.0.1 "$port" "$1" "$2" 8000 >"$T/out" 2>&1 &
    else
        ip netns exec "$C" timeout 20 $AD_RUN "$prog" "$NAME" "$PORT" "$1" "$2" 8000 >"$T/out" 2>&1 &
    fi
    cpid=$!
    procs="$procs $cpid"
}

# client_done: waits (bounded) for the client's exit; its status in crc.
client_done() {
    crc=999
    wait_until 15 gone "$cpid" || return 1
    wait "$cpid"
    crc=$?
}

passes() {          # the client exited 0 after its own checks
    check "the client's checks hold (exit $crc)" [ "$crc" = 0 ] && has_line "$T/out" "^done " && return 0
    show "$T/out"
    return 1
}

stamp() { awk -v re="$1" '$0 ~ re { print $1; exit }' "$T/out"; }

# ---- tests ------------------------------------------------------------------------

# The server goes away after the first echo and comes back once the client
# has seen it go: the client reconnects and the adapter follows.
restart() {
    server_up || { check "server listening" false; return; }
    client 2 server
    check "first echo" wait_until 5 has_line "$T/out" " echo 1$" || { show "$T/out"; return; }
    stop_server "$last_server"
    check "disconnect seen" wait_until 5 has_line "$T/out" " lost 1 " || { show "$T/out"; return; }
    server_up || { check "server back" false; return; }
    check "client exits" client_done || { show "$T/out"; return; }
    passes && check "reconnected" has_line "$T/out" " connected 2 family 4$"
}

t_loopback_restart() {
    where=lo
    need socat || return
    port=$(free_port) || { skip "no free loopback port"; return; }
    restart
}

t_loopback_redial() {
    where=lo
    need socat || return
    port=$(free_port) || { skip "no free loopback port"; return; }
    server_up || { check "server listening" false; return; }
    client 3 local
    check "client exits" client_done || { show "$T/out"; return; }
    passes || return
    check "the number was reused while its registration went away" has_line "$T/out" "^done .* reused [1-9]" || show "$T/out"
}

# IPv6 first (glibc sorts the ULA before IPv4), refused at once; then IPv4.
t_two_addresses() {
    where=ns
    need socat || return
    server_up || { check "server listening" false; return; }
    client 2 local
    check "client exits" client_done || { show "$T/out"; return; }
    passes || return
    check "the name has two addresses" has_line "$T/out" "connecting to $NAME port $PORT: 2 addresses"
    check "connected over IPv4, twice" [ "$(grep -c ' connected [12] family 4$' "$T/out")" = 2 ] || show "$T/out"
    echo "    connected over IPv4 after $(stamp ' connected 1 ') ms"
}

# The IPv6 attempt hangs; IPv4 starts 250 ms later and connects. The
# bounds are wide for a busy machine; connect_timeout is 5 s.
t_blackhole() {
    local t
    where=ns
    need socat || return
    server_up || { check "server listening" false; return; }
    blackhole_v6 || { check "nft rule" false; return; }
    client 1 local
    check "client exits" client_done
    blackhole_off
    passes || return
    t=$(stamp ' connected 1 family 4$')
    check "connected over IPv4" [ -n "$t" ] || { show "$T/out"; return; }
    check "connected in 200..2000 ms (IPv4 starts at 250): $t ms" [ "$t" -ge 200 ] && [ "$t" -le 2000 ]
    check "both attempts were registered at once" has_line "$T/out" "^done max_regs [2-9]"
    echo "    connected over IPv4 after $t ms"
}

t_ns_restart() {
    where=ns
    need socat || return
    restart
}

# ---- run --------------------------------------------------------------------------

trap 'ns_teardown "$C" "$S"; cleanup' EXIT
ns_up
[ -n "$ns_ok" ] && echo "adapters: the namespace tests (3 per adapter) skipped: $ns_ok"
for adapter in $ADAPTERS; do
    if [ ! -x "$AD_BIN/ad_$adapter" ]; then
        echo "adapters: $AD_BIN/ad_$adapter not built (its library is missing: make deps): 5 skipped"
        skipped=$((skipped + 5))
        continue
    fi
    run_test "$adapter: loopback, server restart" t_loopback_restart
    run_test "$adapter: loopback, redial from a callback" t_loopback_redial
    if [ -n "$ns_ok" ]; then skipped=$((skipped + 3)); continue; fi
    run_test "$adapter: two addresses, IPv6 refused" t_two_addresses
    run_test "$adapter: IPv6 blackholed" t_blackhole
    run_test "$adapter: server restart in namespaces" t_ns_restart
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
