#!/usr/bin/env bash
# suite-tls-soak: 1,000 TLS reconnects per adapter against openssl s_server,
# each cycle a full session (handshake, resumed after the first; a line
# echoed; disconnect), under ASan+UBSan (build/tls/asan/tls_client, which
# compiles the library and both adapters in) and under valgrind (the plain
# build). Each run must exit 0 with no sanitizer or valgrind report (leaks
# included), and the descriptors and the RSS it counts between cycle 100
# and cycle 1,000 must stay flat (RSS: at most 256 KiB more; not checked
# under the tools, whose allocators keep freed memory aside).
# Ends with "N passed, N failed, N skipped".
# Usage: test/tls/soak.sh   (SOAK_CYCLES=N to change the count)
set -u
export LC_ALL=C
cd "$(dirname "$0")/../.." || exit 1
FILTER=""
. test/shlib.sh
CYCLES=${SOAK_CYCLES:-1000}
PLAIN=build/tls/tls_client ASAN=build/tls/asan/tls_client
VALGRIND=${VALGRIND:-valgrind}
VG="$VALGRIND -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible --show-leak-kinds=definite,indirect,possible"

sh test/tls/certs.sh "$work/certs" || { echo "tls-soak: making the test certificates failed"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
C=$work/certs

# soak TOOL ADAPTER: one run of CYCLES reconnects.
soak() {
    local tool=$1 adapter=$2 port prog wrap out fds rss0 rss1 t0
    need openssl || return
    case $tool in
        plain) prog=$PLAIN wrap="" ;;
        asan)  prog=$ASAN wrap="" ;;
        valgrind) need "$VALGRIND" || return; prog=$PLAIN wrap=$VG ;;
    esac
    [ -x "$prog" ] || { skip "$prog not built"; return; }
    if "$prog" -a "$adapter" -h 127.0.0.1 -p 1 -T 1 2>/dev/null | grep -q "not built in"; then
        skip "the $adapter adapter is not built"; return
    fi
    port=$(free_port) || { skip "no free loopback port"; return; }
    start_server "$port" openssl s_server -quiet -rev -accept "$port" -cert "$C/server.pem" -key "$C/server.key" ||
        { check "s_server listening" false; return; }
    out=$T/out t0=$(now_ms)
    # shellcheck disable=SC2086
    $wrap "$prog" -a "$adapter" -h 127.0.0.1 -p "$port" --cafile "$C/ca.pem" -m soak -n "$CYCLES" -N -T 600000 \
        </dev/null >"$out" 2>&1
    check "exit status 0, no report ($?)" [ $? = 0 ] || { show "$out"; return; }
    check "$CYCLES cycles" has_line "$out" " soak cycles=$CYCLES " || { show "$out"; return; }
    fds=$(sed -n 's/.* soak .* fds=\([0-9.]*\) .*/\1/p' "$out")
    rss0=$(sed -n 's/.* rss_kib=\([0-9]*\)\.\..*/\1/p' "$out") rss1=$(sed -n 's/.* rss_kib=[0-9]*\.\.\([0-9]*\).*/\1/p' "$out")
    check "descriptors flat ($fds)" [ "${fds%%.*}" = "${fds##*.}" ]
    [ "$tool" = plain ] && check "RSS flat within 256 KiB ($rss0 -> $rss1 KiB)" [ $((rss1 - rss0)) -le 256 ]
    echo "    $(grep " soak " "$out" | cut -d' ' -f2-), $(( $(now_ms) - t0 )) ms"
}

for tool in plain asan valgrind; do
    for adapter in openssl mbedtls; do
        eval "t_${tool}_$adapter() { soak $tool $adapter; }"
        run_test "$tool: $adapter: $CYCLES TLS reconnects" "t_${tool}_$adapter"
    done
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
