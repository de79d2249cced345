#!/usr/bin/env bash
# make tls-bench: TLS through ka_client's adapters, beside socat and
# openssl s_client on the same machine, against servers on loopback:
#
#   handshake    openssl s_server (TLS 1.3, and TLS 1.2 only), each adapter,
#                a new transport per connection (full) or one kept (resumed):
#                median time from open to the session being up, bytes each
#                way, round trips (the adapter's own count)
#   round trip   64-byte echoes through socat's TLS echo: ka_client with
#                each adapter, a blocking OpenSSL loop (the floor), socat's
#                and s_client's own clients driven through their stdin and
#                stdout, and plain ka_client over TCP for reference
#   throughput   256 MiB into a TLS sink (socat): ka_client with each
#                adapter, socat's and s_client's own clients, plain TCP
#
# Writes build/tls/BENCH-tls.md (a Markdown section, ready to append to
# BENCHMARKS.md) and prints it. BENCH_QUICK=1: fewer rounds, 32 MiB.
# Numbers from a shared 2-core machine: compare rows of one run only.
set -u
export LC_ALL=C
cd "$(dirname "$0")/.." || exit 1
. test/shlib.sh
B=build/tls/tls_bench
OUT=build/tls/BENCH-tls.md
[ -x "$B" ] || { echo "tls-bench: $B not built"; exit 1; }
HS_N=200 RTT_N=5000 BULK=$((256 << 20))
[ -n "${BENCH_QUICK:-}" ] && HS_N=50 RTT_N=1000 BULK=$((32 << 20))
T=$work
C=$work/certs
sh test/tls/certs.sh "$C" >/dev/null || exit 1
ADAPTERS=""
for a in openssl mbedtls; do
    "$B" probe -a $a -p 1 --cafile "$C/ca.pem" >/dev/null 2>&1 && ADAPTERS="$ADAPTERS $a"
done
ms() { echo $(( $(date +%s%N) / 1000000 )); }
val() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

p13=$(free_port) p12=$(free_port) pecho=$(free_port) psink=$(free_port) ptcp=$(free_port) ptsink=$(free_port)
start_server "$p13" openssl s_server -quiet -rev -accept "$p13" -cert "$C/server.pem" -key "$C/server.key" || exit 1
start_server "$p12" openssl s_server -quiet -rev -tls1_2 -accept "$p12" -cert "$C/server.pem" -key "$C/server.key" || exit 1
start_server "$pecho" socat "OPENSSL-LISTEN:$pecho,bind=127.0.0.1,cert=$C/server.pem,key=$C/server.key,verify=0,reuseaddr,fork" PIPE || exit 1
start_server "$psink" socat -u "OPENSSL-LISTEN:$psink,bind=127.0.0.1,cert=$C/server.pem,key=$C/server.key,verify=0,reuseaddr,fork" OPEN:/dev/null,wronly || exit 1
start_server "$ptcp" socat "TCP4-LISTEN:$ptcp,bind=127.0.0.1,reuseaddr,fork" PIPE || exit 1
start_server "$ptsink" socat -u "TCP4-LISTEN:$ptsink,bind=127.0.0.1,reuseaddr,fork" OPEN:/dev/null,wronly || exit 1
common=(-h localhost --cafile "$C/ca.pem")

{
echo "### TLS (transport/ka_openssl, transport/ka_mbedtls)"
echo
echo "$(openssl version), Mbed TLS $(sed -n 's/^#define MBEDTLS_VERSION_STRING *"\(.*\)"/\1/p' /usr/include/mbedtls/version.h 2>/dev/null), socat $(socat -V 2>/dev/null | sed -n 's/^socat version \([^ ]*\).*/\1/p'); loopback, $(nproc) cores; \`make tls-bench\`."
echo
echo "Handshakes ($HS_N each, median; round trips and bytes counted by the adapter):"
echo
echo "| adapter | server | session | time | round trips | bytes in / out |"
echo "|---|---|---|---|---|---|"
for a in $ADAPTERS; do
    for v in 1.3 1.2; do
        [ "$a" = mbedtls ] && [ "$v" = 1.3 ] && continue
        port=$p13; [ "$v" = 1.2 ] && port=$p12
        for r in 0 1; do
            line=$("$B" hs -a "$a" -p "$port" "${common[@]}" -n "$HS_N" -r "$r")
            echo "| $a | TLS $v | $([ $r = 1 ] && echo "resumed ($(val "$line" resumed) of $(val "$line" n))" || echo full) | $(val "$line" median_us) µs | $(val "$line" round_trips) | $(val "$line" bytes_in) / $(val "$line" bytes_out) |"
        done
    done
done
echo
echo "Round trip, 64 bytes, $RTT_N echoes one at a time (TCP_NODELAY):"
echo
echo "| client | server | median | p99 |"
echo "|---|---|---|---|"
for a in $ADAPTERS raw; do
    [ "$a" = raw ] && ! grep -q openssl <<<"$ADAPTERS" && continue
    line=$("$B" rtt -a "$a" -p "$pecho" "${common[@]}" -n "$RTT_N" -s 64)
    who="ka_client + $a"; [ "$a" = raw ] && who="blocking OpenSSL loop (SSL_write, SSL_read)"
    echo "| $who | socat TLS echo | $(val "$line" median_us) µs | $(val "$line" p99_us) µs |"
done
line=$("$B" rtt -a cmd -p 1 -n "$RTT_N" -s 64 -- socat - "OPENSSL:localhost:$pecho,cafile=$C/ca.pem,nodelay")
echo "| socat - OPENSSL: (its stdin and stdout: two pipe hops each way) | socat TLS echo | $(val "$line" median_us) µs | $(val "$line" p99_us) µs |"
line=$("$B" rtt -a cmd -p 1 -n "$RTT_N" -s 64 -- openssl s_client -quiet -connect "localhost:$pecho" -CAfile "$C/ca.pem" 2>/dev/null)
echo "| openssl s_client -quiet (the same) | socat TLS echo | $(val "$line" median_us) µs | $(val "$line" p99_us) µs |"
line=$("$B" rtt -a plain -h 127.0.0.1 -p "$ptcp" -n "$RTT_N" -s 64)
echo "| ka_client, plain TCP | socat TCP echo | $(val "$line" median_us) µs | $(val "$line" p99_us) µs |"
echo
echo "Throughput, $((BULK >> 20)) MiB into a sink (socat), from the first connect to the sink's close:"
echo
echo "| client | MiB/s |"
echo "|---|---|"
for a in $ADAPTERS; do
    line=$("$B" bulk -a "$a" -p "$psink" "${common[@]}" -b "$BULK")
    echo "| ka_client + $a | $(val "$line" mib_s) |"
done
t0=$(ms); head -c "$BULK" /dev/zero | socat -u - "OPENSSL:localhost:$psink,cafile=$C/ca.pem" ; t1=$(ms)
echo "| socat - OPENSSL: | $(awk -v b="$BULK" -v t=$((t1 - t0)) 'BEGIN { printf "%.1f", b / 1048576 / (t / 1000) }') |"
t0=$(ms); head -c "$BULK" /dev/zero | openssl s_client -quiet -no_ign_eof -connect "localhost:$psink" -CAfile "$C/ca.pem" >/dev/null 2>&1; t1=$(ms)
echo "| openssl s_client | $(awk -v b="$BULK" -v t=$((t1 - t0)) 'BEGIN { printf "%.1f", b / 1048576 / (t / 1000) }') |"
line=$("$B" bulk -a plain -h 127.0.0.1 -p "$ptsink" -b "$BULK")
echo "| ka_client, plain TCP | $(val "$line" mib_s) |"
} | tee "$OUT"
stop_all
