#!/usr/bin/env bash
# Suite "tls": the TLS adapters (transport/ka_openssl, transport/ka_mbedtls)
# drive build/tls/tls_client (test/tls/tls_client.c) against servers nobody
# here wrote, with certificates made for the run (test/tls/certs.sh):
#
#   s_server          openssl s_server -rev (reverses each line): echo, a
#                     reconnect that resumes the session (fewer bytes; TLS
#                     1.2: one round trip instead of two), a server restart
#   redis             redis-server --tls-port, client certificate required:
#                     PING, restart, PING again through the same client; and
#                     a client without a certificate refused with KA_REASON_TLS
#   stunnel           stunnel in front of socat's echo
#   SNI               sent for a name (s_server picks its certificate by it),
#                     never for an IP literal
#   certificates      expired, unknown CA, self-signed, wrong name, wrong IP:
#                     KA_REASON_TLS, words from ka_client_transport_error(),
#                     and the backoff's pace (no retry storm)
#   16 MiB            through stunnel+socat with replay_until_acked; the
#                     server restarts while 512 KiB wait unacknowledged; every
#                     byte comes back, in order
#   reconnects        200 TLS reconnects: descriptors and RSS flat (1,000
#                     under ASan and valgrind: make suite-tls-soak)
#   mingw             the adapters compile for Windows (syntax only)
#   namespaces        (root) a pulled cable (idle, and with data in flight)
#                     and a crashed host during a TLS session, found within
#                     the same bounds as plain TCP, measured beside it
#
# Every wait is a deadline loop on a line of output or a listening port.
# Ends with "N passed, N failed, N skipped".
# Usage: test/tls/run.sh [NAME-SUBSTRING]
set -u
export LC_ALL=C
cd "$(dirname "$0")/../.." || exit 1
FILTER=${1:-}
CLIENT=${TLS_CLIENT:-build/tls/tls_client}
. test/shlib.sh

ADAPTERS=""
[ -x "$CLIENT" ] || { echo "tls: $CLIENT not built"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
for a in openssl mbedtls; do
    if "$CLIENT" -a $a -h 127.0.0.1 -p 1 -T 1 2>/dev/null | grep -q "not built in"; then
        echo "tls: the $a adapter is not built (its -dev package is missing: make deps): its tests are skipped"
    else
        ADAPTERS="$ADAPTERS $a"
    fi
done

C=$work/certs
sh test/tls/certs.sh "$C" || { echo "tls: making the test certificates failed"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }

# ---- servers and the client ------------------------------------------------------

sserver() {         # sserver PORT CERT [s_server options]: s_server -rev on every address
    local port=$1 cert=$2; shift 2
    start_server "$port" openssl s_server -quiet -rev -accept "$port" -cert "$C/$cert.pem" -key "$C/server.key" "$@"
}

echo_server() {     # echo_server PORT: socat's echo on 127.0.0.1
    start_server "$1" socat "TCP4-LISTEN:$1,bind=127.0.0.1,reuseaddr,fork" PIPE
}

stunnel_up() {      # stunnel_up PORT BACKEND: TLS on PORT, plain to BACKEND
    cat >"$T/stunnel.conf" <<EOF
foreground = yes
pid =
[echo]
accept = 127.0.0.1:$1
connect = 127.0.0.1:$2
cert = $C/server.pem
key = $C/server.key
EOF
    start_server "$1" stunnel4 "$T/stunnel.conf"
}

# client NAME OPTIONS...: tls_client in the background, its output in
# $T/NAME.out; commands go to it with cmd (fd 7).
client() {
    local name=$1; shift
    rm -f "$T/in"; mkfifo "$T/in"
    "$CLIENT" "$@" <"$T/in" >"$T/$name.out" 2>&1 &
    cpid=$!
    procs="$procs $cpid"
    exec 7>"$T/in"
    out=$T/$name.out
}

cmd() { echo "$*" >&7; }

between() { [ -n "$1" ] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }    # between VALUE LOW HIGH

client_done() {     # client_done SECONDS: waits for its exit; status in crc
    crc=999
    wait_until "$1" gone "$cpid" || return 1
    wait "$cpid"
    crc=$?
}

# field FILE PATTERN KEY [N]: KEY=value on the Nth (default first) line matching PATTERN
field() {
    grep -- "$2" "$1" 2>/dev/null | sed -n "${4:-1}p" | tr ' ' '\n' | sed -n "s/^$3=//p"
}

tls_opts() { echo "-a $adapter --cafile $C/ca.pem"; }

# ---- s_server: echo, resumption, restart -----------------------------------------------

t_sserver() {
    local port in1 in2
    need openssl || return
    port=$(free_port) || { skip "no free loopback port"; return; }
    sserver "$port" server || { check "s_server listening" false; return; }
    # shellcheck disable=SC2046
    client c $(tls_opts) -h localhost -p "$port" -s ping -B 100 -T 20000
    check "the first line is echoed (reversed)" wait_until 5 has_line "$out" " line gnip$" || { show "$out"; return; }
    cmd disconnect
    check "a reconnect resumes the session" wait_until 5 has_line "$out" "connected n=2 resumed=1 " || { show "$out"; return; }
    in1=$(field "$out" "connected n=1 " in) in2=$(field "$out" "connected n=2 " in)
    check "the resumed handshake reads fewer bytes ($in2 < $in1)" [ "$in2" -lt "$in1" ]
    echo "    full: $(grep "connected n=1 " "$out" | cut -d' ' -f4-)"
    echo "    resumed: $(grep "connected n=2 " "$out" | cut -d' ' -f4-)"
    check "two echoes" wait_until 5 count_is_at_least "$out" " line gnip$" 2
    stop_server "$last_server"
    check "the server's end is seen" wait_until 5 has_line "$out" " lost reason=" || { show "$out"; return; }
    sserver "$port" server || { check "s_server back" false; return; }
    check "reconnected to the restarted server" wait_until 10 has_line "$out" "connected n=3 " || { show "$out"; return; }
    check "and echoed again" wait_until 5 count_is_at_least "$out" " line gnip$" 3
    cmd quit
    check "the client exits 0" client_done 5 && check "exit status 0 ($crc)" [ "$crc" = 0 ] || show "$out"
}

# TLS 1.2 (the server allows nothing newer): a resumed session saves a round trip.
t_sserver_tls12() {
    local port r1 r2
    need openssl || return
    port=$(free_port) || { skip "no free loopback port"; return; }
    sserver "$port" server -tls1_2 || { check "s_server listening" false; return; }
    # shellcheck disable=SC2046
    client c $(tls_opts) -h 127.0.0.1 -p "$port" -s ping -B 100 -T 10000
    check "echo" wait_until 5 has_line "$out" " line gnip$" || { show "$out"; return; }
    cmd disconnect
    check "resumed" wait_until 5 has_line "$out" "connected n=2 resumed=1 " || { show "$out"; return; }
    r1=$(field "$out" "connected n=1 " rtt) r2=$(field "$out" "connected n=2 " rtt)
    check "full handshake 2 round trips, resumed 1 (seen $r1, $r2)" [ "$r1/$r2" = 2/1 ]
    echo "    full: $(grep "connected n=1 " "$out" | cut -d' ' -f4-)"
    echo "    resumed: $(grep "connected n=2 " "$out" | cut -d' ' -f4-)"
    cmd quit
    client_done 5
}

# SNI: s_server answers a client that names "localhost" with the good
# certificate and any other with one from an unknown CA. By name the client
# connects; by IP literal it sends no SNI (RFC 6066) and gets the other.
t_sni() {
    local port
    need openssl || return
    port=$(free_port) || { skip "no free loopback port"; return; }
    start_server "$port" openssl s_server -quiet -rev -accept "$port" -cert "$C/rogue.pem" -key "$C/server.key" \
        -servername localhost -cert2 "$C/server.pem" -key2 "$C/server.key" || { check "s_server listening" false; return; }
    # shellcheck disable=SC2046
    client name $(tls_opts) -h localhost -p "$port" -s ping -B 200 -n 1 -T 5000
    client_done 8
    check "by name: SNI sent, the right certificate" has_line "$out" " line gnip$" || show "$out"
    # shellcheck disable=SC2046
    client ip $(tls_opts) -h 127.0.0.1 -p "$port" -s ping -B 200 -A 1 -T 5000
    client_done 8
    check "by IP: no SNI, so the other certificate" has_line "$out" "tls=TLS: .*issued by CN *= *ka other CA" || show "$out"
}

# Windows: the adapters compile for MinGW-w64 against Debian's OpenSSL 3
# and Mbed TLS headers (syntax only: Debian ships neither library built for
# Windows, so nothing can be linked or run here).
t_mingw() {
    local d=$T/inc f
    need x86_64-w64-mingw32-gcc || return
    mkdir -p "$d/openssl"
    for f in /usr/include/openssl/*.h /usr/include/*-linux-gnu/openssl/*.h; do [ -f "$f" ] && ln -sf "$f" "$d/openssl/"; done
    [ -d /usr/include/mbedtls ] && ln -s /usr/include/mbedtls "$d/mbedtls"
    for f in $ADAPTERS; do
        check "transport/ka_$f.c compiles for Windows" \
            x86_64-w64-mingw32-gcc -fsyntax-only -std=c99 -Wall -Wextra -Wpedantic -Werror -I. -Itransport -I"$d" "transport/ka_$f.c"
    done
}

# ---- redis-server --tls-port ---------------------------------------------------------------

redis_up() {        # redis_up PORT [OPTIONS]: TLS only, client certificates required
    local port=$1; shift
    start_server "$port" redis-server --port 0 --tls-port "$port" --bind 127.0.0.1 --tls-cert-file "$C/server.pem" \
        --tls-key-file "$C/server.key" --tls-ca-cert-file "$C/ca.pem" --tls-auth-clients yes \
        --save "" --appendonly no --dir "$T" "$@"
}

redis_tls_missing() {   # true (and a skip) when this redis-server cannot do TLS
    grep -qi "tls.*not\|not.*tls\|Bad directive" "$T/server.log" 2>/dev/null || return 1
    skip "this redis-server is built without TLS: $(grep -i -m1 tls "$T/server.log")"
}

t_redis() {
    local port
    need redis-server || return
    port=$(free_port) || { skip "no free loopback port"; return; }
    redis_up "$port" || { redis_tls_missing || check "redis listening on its TLS port" false; return; }
    # shellcheck disable=SC2046
    client c $(tls_opts) --cert "$C/client.pem" --key "$C/client.key" -h 127.0.0.1 -p "$port" -s PING -B 100 -T 20000
    check "PING answered" wait_until 5 has_line "$out" " line +PONG$" || { show "$out"; return; }
    stop_server "$last_server"
    check "the server's end is seen" wait_until 5 has_line "$out" " lost reason=" || { show "$out"; return; }
    redis_up "$port" || { check "redis back" false; return; }
    check "PING answered again after the restart" wait_until 10 count_is_at_least "$out" " line +PONG$" 2 || { show "$out"; return; }
    cmd quit
    check "the client exits 0" client_done 5 && check "exit status 0 ($crc)" [ "$crc" = 0 ] || show "$out"
}

# Without a client certificate redis refuses: with TLS 1.3 after the
# client's side of the handshake is done (its alert ends the session),
# with TLS 1.2 during the handshake, where the alert comes before the reset
# the client's next send meets. Either way KA_REASON_TLS, in words.
t_redis_no_cert() {
    local port text v
    need redis-server || return
    for v in TLSv1.3 TLSv1.2; do
        [ "$adapter" = mbedtls ] && [ "$v" = TLSv1.3 ] && continue     # Mbed TLS 2.28 speaks TLS 1.2 only
        port=$(free_port) || { skip "no free loopback port"; return; }
        redis_up "$port" --tls-protocols "$v" || { redis_tls_missing || check "redis listening on its TLS port" false; return; }
        # shellcheck disable=SC2046
        client "$v" $(tls_opts) -h 127.0.0.1 -p "$port" -s PING -B 200 -T 2000
        client_done 6
        check "$v: never answered" lacks "$out" " line +PONG"
        # A TLS 1.3 client finishes its handshake before the server refuses
        # it; the server then closes with the client's last record unread,
        # so its alert travels just ahead of an RST, and a client slow to
        # read (a loaded machine) loses the alert to the reset: the kernel
        # discards unread data when an RST arrives. Then "peer reset" is the
        # truth as far as the client can know.
        if [ "$v" = TLSv1.3 ] && ! has_line "$out" 'reason="TLS' && has_line "$out" 'reason="peer reset"'; then
            echo "    $v: every alert was overtaken by the server's reset: reported as peer reset"
            stop_server "$last_server"
            continue
        fi
        check "$v: refused with KA_REASON_TLS" has_line "$out" 'reason="TLS' || { show "$out"; continue; }
        text=$(grep -m1 'reason="TLS' "$out" | sed 's/.* tls=//')
        check "$v: the words say why" has_line "$out" "tls=TLS: .*\(certificate\|alert\)" || show "$out"
        echo "    $v: $text"
        stop_server "$last_server"
    done
}

# ---- stunnel in front of socat ------------------------------------------------------------

t_stunnel() {
    local port back
    need stunnel4 || return
    need socat || return
    port=$(free_port) && back=$(free_port) || { skip "no free loopback port"; return; }
    echo_server "$back" || { check "socat listening" false; return; }
    stunnel_up "$port" "$back" || { check "stunnel listening" false; return; }
    # shellcheck disable=SC2046
    client c $(tls_opts) -h 127.0.0.1 -p "$port" -s "through stunnel" -B 100 -T 10000
    check "echoed through stunnel and socat" wait_until 5 has_line "$out" " line through stunnel$" || { show "$out"; return; }
    cmd disconnect
    check "and again on a new connection" wait_until 5 count_is_at_least "$out" " line through stunnel$" 2 || show "$out"
    cmd quit
    client_done 5
}

# ---- certificate failures ------------------------------------------------------------------

# Five servers, each with a bad certificate for the client, all at once.
# Backoff 200 ms doubling to 800 ms: in 3 s at most 6 attempts; a storm
# would be hundreds.
t_certs() {
    local case cert host sname port n text
    need openssl || return
    local -A pat=(
        [openssl,expired]="certificate has expired (CN = localhost expired Jan  2 00:00:00 2020 GMT)"
        [openssl,unknown]="unable to get local issuer certificate (CN = localhost, issued by CN = ka other CA"
        [openssl,self]="self-signed certificate"
        [openssl,name]="hostname mismatch (CN = localhost is for DNS:localhost"
        [openssl,ip]="IP address mismatch"
        [mbedtls,expired]="validity has expired (CN=localhost expired 2020-01-02"
        [mbedtls,unknown]="not correctly signed by the trusted CA (CN=localhost, issued by CN=ka other CA"
        [mbedtls,self]="not correctly signed by the trusted CA"
        [mbedtls,name]="Common Name (CN) does not match"
        [mbedtls,ip]="Common Name (CN) does not match")
    for case in expired:expired:127.0.0.1: unknown:rogue:127.0.0.1: self:selfsigned:127.0.0.1: \
                name:server:127.0.0.1:wrong.example ip:server:127.0.0.2:; do
        IFS=: read -r n cert host sname <<<"$case"
        port=$(free_port) || { skip "no free loopback port"; return; }
        sserver "$port" "$cert" || { check "s_server ($n) listening" false; return; }
        # shellcheck disable=SC2046
        "$CLIENT" $(tls_opts) -h "$host" -p "$port" ${sname:+--servername "$sname"} -B 200 -T 3000 \
            >"$T/$n.out" 2>&1 </dev/null &
        procs="$procs $!"
    done
    for n in expired unknown self name ip; do
        local o=$T/$n.out retries
        wait_until 6 has_line "$o" " exit " || { check "$n: the client ended" false; show "$o"; continue; }
        retries=$(grep -c ' retry .*reason="TLS' "$o")
        text=$(grep -m1 'reason="TLS' "$o" | sed 's/.* tls=//')
        check "$n: never connected" lacks "$o" " connected "
        check "$n: KA_REASON_TLS, $retries attempts in 3 s (3..6: the backoff holds)" between "$retries" 3 6
        check "$n: the text says why" has_line "$o" "tls=TLS: the certificate of .* was rejected: .*${pat[$adapter,$n]}" || show "$o"
        echo "    $n: $text"
    done
}

# ---- 16 MiB across a restart ---------------------------------------------------------------

# The client checks every echoed byte and acknowledges each 16 KiB message
# once its echo is back. After 6 MiB it holds the acknowledgements: its
# 512 KiB window fills with unacknowledged messages; then stunnel and socat
# are killed and started again. The held messages go again on the new
# connection, and all 16 MiB come back in order.
t_bulk() {
    local port back t0
    need stunnel4 || return
    need socat || return
    port=$(free_port) && back=$(free_port) || { skip "no free loopback port"; return; }
    echo_server "$back" || { check "socat listening" false; return; }
    local echo_pid=$last_server
    stunnel_up "$port" "$back" || { check "stunnel listening" false; return; }
    t0=$(now_ms)
    # shellcheck disable=SC2046
    client c $(tls_opts) -h 127.0.0.1 -p "$port" -m bulk -b 16777216 -M 16384 -H 6291456 -B 100 -T 40000
    check "the window fills with held messages" wait_until 20 has_line "$out" " held unacked=" || { show "$out"; return; }
    stop_server "$last_server"
    stop_server "$echo_pid"
    echo_server "$back" && stunnel_up "$port" "$back" || { check "servers back" false; return; }
    check "the client finishes" client_done 40 || { show "$out"; return; }
    check "exit status 0 ($crc)" [ "$crc" = 0 ] || { show "$out"; return; }
    check "16 MiB checked byte for byte" has_line "$out" " bulk verified=16777216 of=16777216 "
    check "over two connections" has_line "$out" "connected n=2 "
    echo "    $(grep " held unacked=" "$out" | cut -d' ' -f2-); $(grep " bulk verified" "$out" | cut -d' ' -f2-); $(( $(now_ms) - t0 )) ms"
}

# ---- reconnects: descriptors and memory flat --------------------------------------------------

t_reconnects() {
    local port fds0 fds1 rss0 rss1
    need openssl || return
    port=$(free_port) || { skip "no free loopback port"; return; }
    sserver "$port" server || { check "s_server listening" false; return; }
    # shellcheck disable=SC2046
    client c $(tls_opts) -h 127.0.0.1 -p "$port" -m soak -n 200 -N -T 40000
    check "200 reconnects done" client_done 45 && check "exit status 0 ($crc)" [ "$crc" = 0 ] || { show "$out"; return; }
    fds0=$(field "$out" " soak " fds | cut -d. -f1) fds1=$(field "$out" " soak " fds | sed 's/.*\.\.//')
    rss0=$(field "$out" " soak " rss_kib | cut -d. -f1) rss1=$(field "$out" " soak " rss_kib | sed 's/.*\.\.//')
    check "descriptors flat from cycle 20 to 200 ($fds0 -> $fds1)" [ "$fds0" = "$fds1" ]
    check "RSS grew at most 256 KiB from cycle 20 to 200 ($rss0 -> $rss1 KiB)" [ $((rss1 - rss0)) -le 256 ]
    echo "    $(grep " soak " "$out" | cut -d' ' -f2-), resumed $(field "$out" " exit " resumed) of $(field "$out" " exit " handshakes)"
}

# ---- namespaces: a pulled cable, a crashed host ---------------------------------------------------
# Per row a LAN of three namespaces as in the fault lab (test/lab/run.sh):
# client and server cabled to a bridge in a switch namespace, so pulling the
# server's cable leaves the client its carrier. Keepalive 1 s / 1 s / 3:
# an idle dead peer is found 3..4 s after the fault (Linux counts from the
# last packet received), a busy one 4 s after the data was sent (the
# default user timeout). All rows run at once; each transport's rows
# (openssl, mbedtls and plain TCP for reference) share the bounds.

LAB_SRV=10.79.0.2 LAB_CLI=10.79.0.1 LAB_PORT=7000 SLACK=250
LAB_ID=ka-tls-$$

lab_teardown() {
    local ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$LAB_ID-" || true); do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
}

lab_sweep() {       # namespaces of runs that were killed: their PID is gone
    local ns pid
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^ka-tls-[0-9]*-' || true); do
        pid=${ns#ka-tls-}; pid=${pid%%-*}
        kill -0 "$pid" 2>/dev/null && continue
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
}

lab_up() {          # lab_up L: L-c and L-s cabled to br0 in L-w
    local L=$1
    ip netns add "$L-w" && ip netns add "$L-c" && ip netns add "$L-s" &&
    ip -n "$L-w" link add br0 type bridge && ip -n "$L-w" link set br0 up &&
    ip -n "$L-w" link add c type veth peer name eth0 netns "$L-c" &&
    ip -n "$L-w" link add s type veth peer name eth0 netns "$L-s" &&
    ip -n "$L-w" link set c master br0 && ip -n "$L-w" link set s master br0 &&
    ip -n "$L-w" link set c up && ip -n "$L-w" link set s up &&
    ip -n "$L-c" addr add "$LAB_CLI/24" dev eth0 && ip -n "$L-s" addr add "$LAB_SRV/24" dev eth0 &&
    ip -n "$L-c" link set lo up && ip -n "$L-c" link set eth0 up &&
    ip -n "$L-s" link set lo up && ip -n "$L-s" link set eth0 up
}

lab_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# lab_row DIR TRANSPORT FAULT: one row, in the background; writes DIR/result
# as "reason detection_ms fault_ms" or "error WHAT".
lab_row() {
    local d=$1 tp=$2 fault=$3 L=$LAB_ID-$2-$3 t0 t1 tl
    mkdir -p "$d"
    lab_up "$L" || { echo "error lab" >"$d/result"; return; }
    if [ "$tp" = plain ]; then
        ip netns exec "$L-s" socat "TCP4-LISTEN:$LAB_PORT,reuseaddr,fork" PIPE >"$d/srv.out" 2>&1 &
    else
        ip netns exec "$L-s" openssl s_server -quiet -rev -accept "$LAB_PORT" -cert "$C/server.pem" \
            -key "$C/server.key" >"$d/srv.out" 2>&1 &
    fi
    disown $!                           # the crash kills it: no job report
    mkfifo "$d/in"
    ip netns exec "$L-c" "$CLIENT" -a "$tp" -h "$LAB_SRV" -p "$LAB_PORT" --cafile "$C/ca.pem" -s ping \
        -I 1000 -V 1000 -C 3 -B 5000 -T 20000 <"$d/in" >"$d/cli.out" 2>&1 &
    exec {fd}>"$d/in"
    wait_until 8 has_line "$d/cli.out" " line \(ping\|gnip\)$" || { echo "error no echo" >"$d/result"; exec {fd}>&-; return; }
    wait_until 1 false                  # the session settles (TLS 1.3 tickets, ACKs)
    echo "mark fault" >&"$fd"
    wait_until 2 has_line "$d/cli.out" " mark fault$"
    case $fault in
        unplug) ip -n "$L-w" link set s down ;;
        busy)   ip -n "$L-w" link set s down ;;
        crash)  ip -n "$L-w" link set s down
                for p in $(ip netns pids "$L-s"); do kill -KILL "$p"; done
                ip -n "$L-w" link del s; ip netns del "$L-s" ;;
    esac
    echo "mark done" >&"$fd"
    [ "$fault" = busy ] && echo "send data in flight" >&"$fd"
    wait_until 2 has_line "$d/cli.out" " mark done$"
    wait_until 12 has_line "$d/cli.out" " lost reason=" || { echo "error not detected" >"$d/result"; exec {fd}>&-; return; }
    exec {fd}>&-
    t0=$(awk '/ mark fault$/ { print $1; exit }' "$d/cli.out")
    t1=$(awk '/ mark done$/ { print $1; exit }' "$d/cli.out")
    tl=$(awk '/ lost reason=/ { print $1; exit }' "$d/cli.out")
    if [ "$fault" = busy ]; then        # counted from the send, made with the cable already out
        t0=$(awk '/ send rc=/ { print $1; exit }' "$d/cli.out") t1=$t0
    fi
    echo "$(sed -n 's/.* lost reason="\([^" ]*\).*/\1/p' "$d/cli.out" | head -n 1) $((tl - t0)) $((t1 - t0))" >"$d/result"
}

lab_ok=""
lab_start() {
    local tp fault
    [ "$(uname -s)" = Linux ] || { lab_ok="network namespaces need Linux"; return; }
    [ "$(id -u)" = 0 ] || { lab_ok="needs root to create network namespaces"; return; }
    command -v ip >/dev/null || { lab_ok="ip (iproute2) not installed"; return; }
    lab_sweep
    ip netns add "$LAB_ID-probe" 2>/dev/null && ip -n "$LAB_ID-probe" link add br0 type bridge 2>/dev/null ||
        lab_ok="bridges in network namespaces are not available here"
    ip netns del "$LAB_ID-probe" 2>/dev/null
    [ -n "$lab_ok" ] && return
    mkdir -p "$work/lab"
    for tp in plain $ADAPTERS; do
        for fault in unplug busy crash; do
            lab_row "$work/lab/$tp-$fault" "$tp" "$fault" &
            lab_jobs="${lab_jobs:-} $!"
        done
    done
}

# One row: the reason, and the detection time within the bounds.
t_lab() {
    local d=$work/lab/$adapter-$fault reason ms fms lo hi
    [ -n "$lab_ok" ] && { skip "$lab_ok"; return; }
    wait_until 40 test -s "$d/result" || { check "the row finished" false; return; }
    read -r reason ms fms <"$d/result"
    [ "$reason" = error ] && { check "row: $ms $fms" false; show "$d/cli.out"; return; }
    if [ "$fault" = busy ]; then lo=3900 hi=$((4000 + 410 + SLACK + fms)); else lo=3000 hi=$((4000 + SLACK + fms)); fi
    check "timeout seen ($reason)" [ "$reason" = timeout ] || show "$d/cli.out"
    check "found in $ms ms, within $lo..$hi" between "$ms" "$lo" "$hi" || show "$d/cli.out"
    echo "    $adapter, $fault: $reason after $ms ms (fault took $fms ms)"
}

# ---- run ----------------------------------------------------------------------------------------

trap 'lab_teardown; cleanup' EXIT
if [ -z "$FILTER" ] || [[ namespaces == *"$FILTER"* ]]; then lab_start; else lab_ok="not run (filter)"; fi
[ -n "$lab_ok" ] && echo "tls: the namespace rows skipped: $lab_ok"
for adapter in $ADAPTERS; do
    run_test "$adapter: s_server -rev: echo, resumed reconnect, restart" t_sserver
    [ "$adapter" = openssl ] && run_test "$adapter: TLS 1.2 resumption saves a round trip" t_sserver_tls12
    run_test "$adapter: SNI for a name, none for an IP literal" t_sni
    run_test "$adapter: redis --tls-port with a client certificate: PING, restart, PING" t_redis
    run_test "$adapter: redis refuses a client without a certificate, in words" t_redis_no_cert
    run_test "$adapter: stunnel in front of socat" t_stunnel
    run_test "$adapter: bad certificates: KA_REASON_TLS in words, backoff kept" t_certs
    run_test "$adapter: 16 MiB through a server restart, replay_until_acked" t_bulk
    run_test "$adapter: 200 reconnects, descriptors and memory flat" t_reconnects
done
run_test "mingw: the adapters compile for Windows (syntax only)" t_mingw
for adapter in plain $ADAPTERS; do
    for fault in unplug busy crash; do
        case $fault in unplug) what="cable pulled, idle";; busy) what="cable pulled, data in flight";; crash) what="host crashed";; esac
        run_test "namespaces: $adapter: $what" t_lab
    done
done
for p in ${lab_jobs:-}; do wait "$p" 2>/dev/null; done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
