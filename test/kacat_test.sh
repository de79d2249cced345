#!/bin/bash
# Suite "kacat": demo/kacat against real servers nobody here wrote
# (redis-server, socat, openssl s_server, redis-server --tls-port), a
# refused port and the IPv6 loopback, and against itself being misused;
# and its manual page, linted. TLS certificates are made for the run by
# test/tls/certs.sh, in the suite's temporary directory (none is committed).
#
# Every wait is a deadline loop on an observable fact (a line on stderr, a
# port in LISTEN state, a queue backing up, a process gone), never a sleep
# guess. Servers run in their own process groups and are killed on exit.
# Ends with the line "N passed, N failed, N skipped" that test/check.sh sums.
# Usage: test/kacat_test.sh [NAME-SUBSTRING]
set -u
cd "$(dirname "$0")/.." || exit 1
KACAT=${KACAT:-./demo/kacat}     # KACAT=path/to/build runs the suite on another build (e.g. ASan)
FILTER=${1:-}
. test/shlib.sh

# start_redis PORT [ARGS...]
start_redis() {
    local p=$1; shift
    start_server "$p" redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --daemonize no "$@"
}

socat_echo() { start_server "$1" socat "TCP-LISTEN:$1,bind=127.0.0.1,reuseaddr,fork" EXEC:cat; }
socat_echo6() { start_server "$1" socat "TCP6-LISTEN:$1,bind=[::1],reuseaddr,fork" EXEC:cat; }

# A server that accepts and never reads: socat copies sleep's (empty)
# output to the connection and never reads from it; a small receive
# buffer closes the window soon.
never_reads() {
    start_server "$1" socat -u EXEC:'sleep 60' "TCP-LISTEN:$1,bind=127.0.0.1,reuseaddr,rcvbuf=4096"
}

# start_kacat ARGS...: kacat reading the fifo $T/in (held open on fd 7 so
# the test decides when input ends), stdout in $T/out, stderr in $T/err.
start_kacat() {
    mkfifo "$T/in"
    "$KACAT" "$@" <"$T/in" >"$T/out" 2>"$T/err" &
    kacat_pid=$!
    procs="$procs $kacat_pid"
    exec 7>"$T/in"
}

# end_input_and_wait SECONDS: close kacat's stdin, wait for it to exit, set
# kacat_rc.
end_input_and_wait() {
    exec 7>&-
    wait_for_kacat "$1"
}

# one_of N A B...: N is one of them.
one_of() { local n=$1 x; shift; for x; do [ "$n" = "$x" ] && return 0; done; return 1; }

# between N LO HI: LO <= N < HI.
between() { [ "$1" -ge "$2" ] && [ "$1" -lt "$3" ]; }

# usage_error MESSAGE ARGS...: kacat ARGS exits 2 and says MESSAGE (a grep
# pattern) on stderr.
usage_error() {
    local want=$1 rc; shift
    timeout 10 "$KACAT" "$@" </dev/null >/dev/null 2>"$T/usage"
    rc=$?
    check "kacat $* exits 2" [ "$rc" = 2 ] || { show "$T/usage"; return 1; }
    check "kacat $* says: $want" has_line "$T/usage" "$want" || show "$T/usage"
}

# ---- tests ---------------------------------------------------------------------

t_usage() {
    "$KACAT" >/dev/null 2>"$T/e"; check "no arguments exit 2" [ $? = 2 ]
    check "and show the usage" has_line "$T/e" "^usage: kacat"
    usage_error "unknown option '--no-such-option'" --no-such-option 127.0.0.1 1
    usage_error "unknown option '-x' in '-qx'" -qx 127.0.0.1 1
    usage_error "option '--quiet' takes no value" --quiet=1 127.0.0.1 1
    usage_error "option '--connect-timeout' needs a value" --connect-timeout
    usage_error "--keepalive-count: 'x' is not a whole number" --keepalive-count x 127.0.0.1 1
    usage_error "--max-attempts: '-1' is not a whole number" --max-attempts -1 127.0.0.1 1
    usage_error "PORT is missing after 'extra': each server is HOST PORT or HOST:PORT" 127.0.0.1 1 extra
    usage_error "at most 16 servers (from '127.0.0.1:17' on)" $(for i in $(seq 1 17); do echo "127.0.0.1:$i"; done)
    usage_error "^kacat: '::1:80' looks like an IPv6 address" 127.0.0.1 1 ::1:80
    usage_error "^kacat: HOST '\[::1\]:80' has a port in it" 127.0.0.1 1 '[::1]:80' 80
    usage_error "^kacat: PORT '99999' must be a number 1..65535 or a service name" 127.0.0.1 1 127.0.0.1 99999
    usage_error "^kacat: --hello must be 1..1024 bytes (given: '')$" --hello '' 127.0.0.1 1
    usage_error "^kacat: option '--keep-sending' takes no value" --keep-sending=1 127.0.0.1 1
    usage_error "--linger: '5x' is not a duration" --linger 5x 127.0.0.1 1
    usage_error "--linger: '1.5' is not a duration" --linger 1.5 127.0.0.1 1
    usage_error "--linger: '99999h' is too long" --linger 99999h 127.0.0.1 1
    usage_error "--heartbeat-interval needs --heartbeat" --heartbeat-interval 1s 127.0.0.1 1
    usage_error "--once makes a single attempt" --once -n 3 127.0.0.1 1
    usage_error "-4 and -6 do not go together" -46 127.0.0.1 1
}

# The library's ka_config_error names the field; kacat names the option.
t_config_errors() {
    usage_error "^kacat: --backoff-jitter must be within 0..1 (given: 2)$" --backoff-jitter 2 127.0.0.1 1
    usage_error "^kacat: --keepalive-count must be within 1..127 (given: 0)$" --keepalive-count 0 127.0.0.1 1
    usage_error "^kacat: --keepalive-idle must be within 1ms..32767s (given: 10h)$" --keepalive-idle 10h 127.0.0.1 1
    usage_error "^kacat: --connect-timeout must be within" -w 0 127.0.0.1 1
    usage_error "^kacat: --backoff-multiplier must be within 1..1000" --backoff-multiplier 0.5 127.0.0.1 1
    usage_error "^kacat: --backoff-initial must be at least 1ms and no more than --backoff-max (given: 40s)$" --backoff-initial 40s 127.0.0.1 1
    usage_error "^kacat: --send-buffer must be within 1..1073741824" --send-buffer 0 127.0.0.1 1
    usage_error "^kacat: --heartbeat must be 1..1024 bytes and no longer than --send-buffer" \
        --heartbeat 'PING\r\n' --heartbeat-interval 1s --send-buffer 4 127.0.0.1 1
    usage_error "^kacat: PORT '99999' must be a number 1..65535 or a service name" 127.0.0.1 99999
    usage_error "^kacat: HOST 'a b' is not a host name or address" 'a b' 1
    usage_error "^kacat: HOST '127.0.0.1:80' has a port in it" 127.0.0.1:80 80
    usage_error "'::1:80' looks like an IPv6 address: write \[ADDRESS\]:PORT" ::1:80
    usage_error "'\[::1': no ']'" '[::1'
    usage_error "PORT is missing: write HOST PORT or HOST:PORT" 127.0.0.1
    usage_error "^kacat: --source must be an IPv4 or IPv6 address (not a name)" -s localhost 127.0.0.1 1
    usage_error "^kacat: --interface must be an interface name: 1..15 characters, no spaces or '/' (given: a b)$" --interface 'a b' 127.0.0.1 1
    usage_error "^kacat: --interface must be an interface name" --interface 0123456789abcdef 127.0.0.1 1
}

t_help_version() {
    local want rc
    "$KACAT" --help >"$T/help" 2>&1; rc=$?
    check "--help exits 0" [ $rc = 0 ] || return
    check "--help shows the keepalive default from ka_config_init, as a duration" has_line "$T/help" "keepalive-idle TIME.*\[5s\]"
    check "--help shows the send buffer default" has_line "$T/help" "send-buffer BYTES.*\[65536\]"
    check "--help names -w as the connect timeout" has_line "$T/help" "^  -w, --connect-timeout TIME"
    check "--help documents the hook variables" has_line "$T/help" "KA_COALESCED"
    check "--help documents exit status 5" has_line "$T/help" "^  5  all input sent, but split"
    check "--help says how -q differs from nc's" has_line "$T/help" "-q is --quiet, not nc's -q SECS"
    "$KACAT" -Th >"$T/help2" 2>&1
    check "-h works inside a cluster" cmp -s "$T/help" "$T/help2"
    want=$(sed -n 's/^#define KA_VERSION_STRING "\(.*\)"/\1/p' ka_client.h)
    "$KACAT" --version >"$T/version" 2>&1; rc=$?
    check "--version exits 0" [ $rc = 0 ]
    check "--version names kacat's version ($want)" has_line "$T/version" "^kacat $want "
    check "--version names the library's, from ka_version()" has_line "$T/version" "ka_client library $want$"
    check "--version says whether TLS is built in" has_line "$T/version" "^TLS: "
}

t_socat_echo_binary() {
    local p
    need socat || return
    p=$(free_port); check "socat echo starts" socat_echo "$p" || return
    head -c 4096 /dev/urandom >"$T/data"
    printf 'every byte value:' >>"$T/data"
    for i in $(seq 0 255); do printf '%b' "\\0$(printf %03o "$i")"; done >>"$T/data"
    timeout 30 "$KACAT" --linger 10s 127.0.0.1 "$p" <"$T/data" >"$T/out" 2>"$T/err"
    check "kacat exits 0 after input ends" [ $? = 0 ] || { show "$T/err"; return; }
    check "the echo is byte-identical" cmp -s "$T/data" "$T/out"
    check "stderr says where it connected" has_line "$T/err" "connected to 127.0.0.1:$p"
    check "the last line: one connection, kacat closed first" \
        ends_with "$T/err" "exit 0: all input sent (4369 bytes) over one connection; kacat closed first, then the server$"
}

t_short_flags() {
    local p r
    need socat || return
    p=$(free_port); check "socat echo starts" socat_echo "$p" || return
    echo hi | timeout 20 "$KACAT" -qT "127.0.0.1:$p" >"$T/out" 2>"$T/err"
    check "-qT: exit 0" [ $? = 0 ]
    check "-qT: the echo came back" has_line "$T/out" "^hi$"
    check "-qT: quiet, so nothing on stderr, not even the last line" [ ! -s "$T/err" ] || show "$T/err"
    echo hi | timeout 20 "$KACAT" -vT "127.0.0.1:$p" >/dev/null 2>"$T/err"
    check "-vT: status lines carry the time of day" has_line "$T/err" "^kacat: [0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9] connected to"
    check "-vT: and the verbose ones" has_line "$T/err" "input ended"
    r=$(free_port)
    timeout 20 "$KACAT" -qn2 --backoff-initial 10ms "127.0.0.1:$r" </dev/null >/dev/null 2>"$T/err2"
    check "-qn2: gives up after 2 attempts, exit 3" [ $? = 3 ]
    check "-qn2: warnings still show with -q" has_line "$T/err2" "gave up after 2 attempts"
    timeout 20 "$KACAT" -n1 -qw300ms "127.0.0.1:$r" </dev/null >/dev/null 2>"$T/err3"
    check "-qw300ms: a value glued to its letter" [ $? = 3 ]
    check "one attempt is an attempt, not attempts" has_line "$T/err3" "gave up after 1 attempt: refused"
}

# Durations with units where a time is taken; a bare number is ms.
t_durations() {
    local r spec
    r=$(free_port)
    for spec in 100 100ms 0.1s; do
        timeout 20 "$KACAT" --backoff-initial "$spec" --backoff-max 1m --backoff-jitter 0 -n 3 \
            --exec 'echo "hook $KA_EVENT $KA_ATTEMPT $KA_DELAY_MS"' 127.0.0.1 "$r" </dev/null >/dev/null 2>"$T/err"
        check "--backoff-initial $spec: gives up, exit 3" [ $? = 3 ] || { show "$T/err"; return; }
        check "--backoff-initial $spec: the first retry waits 100 ms" has_line "$T/err" "^hook retry 1 100$"
        check "--backoff-initial $spec: the second 200 ms" has_line "$T/err" "^hook retry 2 200$"
        check "--backoff-initial $spec: said in words" has_line "$T/err" "retrying in 100 ms (attempt 1)"
    done
}

# --linger 250ms: a server that takes the input and never closes.
t_linger_units() {
    local p t0 took
    need socat || return
    p=$(free_port)
    check "socat reader starts" start_server "$p" socat "TCP-LISTEN:$p,bind=127.0.0.1,reuseaddr,fork" SYSTEM:"cat >/dev/null; sleep 5" || return
    t0=$(now_ms)
    echo hi | timeout 20 "$KACAT" --linger 250ms 127.0.0.1 "$p" >/dev/null 2>"$T/err"
    check "kacat exits 0" [ $? = 0 ] || show "$T/err"
    took=$(( $(now_ms) - t0 ))
    check "it waited about 250 ms for the server, not the default 2 s ($took ms)" [ "$took" -lt 1800 ]
    check "the last line says the linger ran out" ends_with "$T/err" "kacat closed first; the server had not closed after --linger 250ms$"
}

# -w is --connect-timeout. redis-server with a backlog of 0 and stopped
# (SIGSTOP) accepts nothing: once one connection fills its accept queue,
# the kernel drops further SYNs, and a connect can only time out.
t_connect_timeout() {
    local p r t0 took rc
    need redis-server || return
    p=$(free_port)
    check "redis-server starts" start_redis "$p" --tcp-backlog 0 || return
    r=$last_server
    kill -STOP -- "-$r"
    exec 8<>"/dev/tcp/127.0.0.1/$p"
    t0=$(now_ms)
    timeout 20 "$KACAT" --once -w 300ms 127.0.0.1 "$p" </dev/null >/dev/null 2>"$T/err"
    rc=$?
    took=$(( $(now_ms) - t0 ))
    exec 8>&-
    kill -CONT -- "-$r"
    check "exit 1: no connection (--once)" [ "$rc" = 1 ] || { show "$T/err"; return; }
    check "named a connect timeout" has_line "$T/err" "cannot connect to 127.0.0.1:$p: connect timeout"
    check "after about 300 ms ($took ms)" between "$took" 250 3000
}

t_endpoint_forms() {
    local p p6
    need socat || return
    p=$(free_port); check "socat echo starts" socat_echo "$p" || return
    echo v4 | timeout 20 "$KACAT" "127.0.0.1:$p" >"$T/out" 2>"$T/err"
    check "HOST:PORT: exit 0" [ $? = 0 ] || show "$T/err"
    check "HOST:PORT: echoed" has_line "$T/out" "^v4$"
    ipv6_loopback || { skip "no IPv6 loopback (::1) here"; return; }
    p6=$(free_port); check "socat echo on [::1] starts" socat_echo6 "$p6" || return
    echo one | timeout 20 "$KACAT" "[::1]:$p6" >"$T/out1" 2>"$T/err1"
    check "[::1]:PORT: exit 0" [ $? = 0 ] || show "$T/err1"
    check "[::1]:PORT: echoed" has_line "$T/out1" "^one$"
    check "[::1]:PORT: said with brackets" has_line "$T/err1" "connected to \[::1\]:$p6$"
    echo two | timeout 20 "$KACAT" --exec 'echo "hook host=$KA_HOST port=$KA_PORT"' '[::1]' "$p6" >"$T/out2" 2>"$T/err2"
    check "'[::1]' PORT: exit 0" [ $? = 0 ] || show "$T/err2"
    check "'[::1]' PORT: echoed" has_line "$T/out2" "^two$"
    check "KA_HOST is the address without brackets" has_line "$T/err2" "^hook host=::1 port=$p6$"
    echo three | timeout 20 "$KACAT" ::1 "$p6" >"$T/out3" 2>"$T/err3"
    check "::1 PORT: exit 0, echoed" has_line "$T/out3" "^three$"
}

# -4, -6 and -s as in nc. The server tells who called (socat's
# SOCAT_PEERADDR), so -s is seen from the other side.
t_family_source() {
    local p
    need socat || return
    p=$(free_port)
    check "socat 'who are you' server starts" start_server "$p" socat "TCP-LISTEN:$p,bind=127.0.0.1,reuseaddr,fork" \
        SYSTEM:'echo "peer \$SOCAT_PEERADDR"' || return
    timeout 20 "$KACAT" -4 -s 127.0.0.2 --once "127.0.0.1:$p" </dev/null >"$T/out" 2>"$T/err"
    check "-s 127.0.0.2: the server saw the call come from there" has_line "$T/out" "^peer 127.0.0.2$" || show "$T/err"
    timeout 20 "$KACAT" -6 --once "127.0.0.1:$p" </dev/null >/dev/null 2>"$T/err2"
    check "-6 with an IPv4 address: no connection, exit 1" [ $? = 1 ]
    check "named by the library" has_line "$T/err2" "cannot connect to 127.0.0.1:$p: name resolution failed"
}

t_once_refused() {
    local p t0 took rc
    p=$(free_port)
    t0=$(now_ms)
    timeout 10 "$KACAT" --once 127.0.0.1 "$p" </dev/null >/dev/null 2>"$T/err"
    rc=$?
    took=$(( $(now_ms) - t0 ))
    check "exit 1, like nc" [ "$rc" = 1 ] || show "$T/err"
    check "within a second ($took ms)" [ "$took" -lt 1000 ]
    check "names the cause in the library's words" has_line "$T/err" "cannot connect to 127.0.0.1:$p: refused (connection refused, errno 111)$"
    check "the last line: no connection" ends_with "$T/err" "exit 1: no input; no connection (--once): refused"
    start_kacat --once 127.0.0.1 "$p"
    check "with input still open: ends at once too" wait_for_kacat 2 || return
    check "exit 1" [ "$kacat_rc" = 1 ]
    exec 7>&-
}

# --once against a server that talks first and closes: kacat stops there.
t_once_server_first() {
    local p
    need socat || return
    p=$(free_port)
    check "socat banner server starts" start_server "$p" socat "TCP-LISTEN:$p,bind=127.0.0.1,reuseaddr,fork" SYSTEM:"echo banner" || return
    start_kacat --once 127.0.0.1 "$p"
    check "kacat ends when the server closes, input still open" wait_for_kacat 10 || return
    check "exit 4: the server closed first" [ "$kacat_rc" = 4 ] || show "$T/err"
    check "the banner was printed" has_line "$T/out" "^banner$"
    check "the last line says so" ends_with "$T/err" "exit 4: nothing sent, and kacat stopped before the end of its input; the server closed first$"
}

# --once with redis: kacat's end of input reaches redis, which then closes.
t_once_kacat_first() {
    local p
    need redis-server || return
    p=$(free_port); check "redis-server starts" start_redis "$p" || return
    printf 'PING\r\n' | timeout 20 "$KACAT" --once "127.0.0.1:$p" >"$T/out" 2>"$T/err"
    check "exit 0" [ $? = 0 ] || show "$T/err"
    check "+PONG" has_line "$T/out" "+PONG"
    check "the last line: kacat closed first, then the server" \
        ends_with "$T/err" "exit 0: all input sent (6 bytes) over one connection; kacat closed first, then the server$"
}

# Input on two connections (redis restarts between them) is not a success.
t_redis_restart_split() {
    local p r1
    need redis-server || return
    p=$(free_port)
    check "redis-server starts" start_redis "$p" || return
    r1=$last_server
    start_kacat "${FAST[@]}" 127.0.0.1 "$p"
    printf 'PING\r\n' >&7
    check "PING answers +PONG" wait_until 20 has_line "$T/out" "+PONG" || return
    stop_server "$r1"
    check "kacat reports the connection lost" wait_until 20 has_line "$T/err" "connection lost after" || return
    check "the loss is classified as peer closed" has_line "$T/err" "lost after .*: peer closed$"
    check "redis-server starts again" start_redis "$p" || return
    check "kacat reconnects by itself" wait_until 20 count_is_at_least "$T/err" "connected to 127.0.0.1:$p" 2 || return
    printf 'PING\r\n' >&7
    check "the next PING answers" wait_until 20 count_is_at_least "$T/out" "+PONG" 2 || return
    end_input_and_wait 20
    check "exit 5: the input went over two connections" [ "$kacat_rc" = 5 ] || show "$T/err"
    check "the last line says it was split" ends_with "$T/err" "exit 5: all input sent (12 bytes), split over 2 connections; kacat closed first, then the server$"
}

t_queued_through_outage() {
    local p s1
    need socat || return
    p=$(free_port); check "socat echo starts" socat_echo "$p" || return
    s1=$last_server
    start_kacat "${FAST[@]}" 127.0.0.1 "$p"
    echo "before the outage" >&7
    check "first line echoed" wait_until 20 has_line "$T/out" "before the outage" || return
    stop_server "$s1"
    check "kacat notices the outage" wait_until 20 has_line "$T/err" "connection lost" || return
    echo "typed during the outage" >&7
    check "kacat says the input waits" wait_until 20 has_line "$T/err" "waiting for the connection" || return
    check "socat echo starts again" socat_echo "$p" || return
    check "the queued line arrives after the reconnect" wait_until 20 has_line "$T/out" "typed during the outage" || return
    printf 'before the outage\ntyped during the outage\n' >"$T/want"
    check "nothing lost, nothing doubled, in order" cmp -s "$T/want" "$T/out"
    end_input_and_wait 20
    check "exit 5: split over two connections" [ "$kacat_rc" = 5 ]
}

# The one connection that carried the input was closed by the server
# before kacat's end of input; the next one carried nothing: not a success.
t_server_closed_carrier() {
    local p s1
    need socat || return
    p=$(free_port); check "socat echo starts" socat_echo "$p" || return
    s1=$last_server
    start_kacat "${FAST[@]}" 127.0.0.1 "$p"
    echo "the only line" >&7
    check "echoed" wait_until 20 has_line "$T/out" "the only line" || return
    stop_server "$s1"
    check "kacat notices the server closed" wait_until 20 has_line "$T/err" "connection lost" || return
    exec 7>&-
    check "socat echo starts again" socat_echo "$p" || return
    check "kacat ends" wait_for_kacat 20 || return
    check "exit 4: the server closed first" [ "$kacat_rc" = 4 ] || show "$T/err"
    check "the last line says which connection" ends_with "$T/err" "over one connection, which ended before kacat's end of input; kacat closed first, then the server$"
}

t_queue_full_waits() {
    local p
    need socat || return
    p=$(free_port)
    head -c 50000 /dev/urandom >"$T/data"
    "$KACAT" "${FAST[@]}" --send-buffer 4096 127.0.0.1 "$p" <"$T/data" >/dev/null 2>"$T/err" &
    kacat_pid=$!; procs="$procs $kacat_pid"
    check "kacat stops reading when the queue is full" wait_until 20 has_line "$T/err" "send queue full (4096 bytes)" || return
    check "kacat keeps running meanwhile" kill -0 "$kacat_pid" || return
    # fork: a one-shot sink could take kacat's retry and stop listening
    # before the test ever saw it listen.
    check "socat sink starts" start_server "$p" socat -u "TCP-LISTEN:$p,bind=127.0.0.1,reuseaddr,fork" "OPEN:$T/sink,creat,append" || return
    check "kacat finishes" wait_for_kacat 30 || return
    check "exit 0: all of it went over the one connection" [ "$kacat_rc" = 0 ] || show "$T/err"
    check "all 50000 bytes arrived intact" cmp -s "$T/data" "$T/sink"
}

# A connection dies (RST) while a message is half sent: the rest of it is
# dropped, counted, and the exit status says so.
t_dropped() {
    local p s
    need socat || return
    p=$(free_port); check "a server that never reads starts" never_reads "$p" || return
    s=$last_server
    head -c $((4 * 1024 * 1024)) /dev/zero >"$T/data"
    "$KACAT" --once 127.0.0.1 "$p" <"$T/data" >/dev/null 2>"$T/err" &
    kacat_pid=$!; procs="$procs $kacat_pid"
    check "the server's window closes, kacat's data backs up" wait_until 20 stuck "$p" || return
    kill -KILL -- "-$s"             # unread data: the kernel answers with RST
    check "kacat ends" wait_for_kacat 20 || return
    check "the reset is named" has_line "$T/err" "connection lost after .*: peer reset (connection reset by peer, errno 104)$"
    if [ "$kacat_rc" = 4 ] && lacks "$T/err" "^kacat: dropped "; then
        skip "the kernel had taken whole messages only when the RST came: nothing was cut"
        return
    fi
    check "exit 6: input dropped" [ "$kacat_rc" = 6 ] || show "$T/err"
    check "the drop is counted" has_line "$T/err" "dropped [0-9]* bytes\\? of input: the connection died in the middle of a message"
    check "the last line leads with it" ends_with "$T/err" "exit 6: [0-9]* bytes of input dropped (cut off when a connection died)"
}

# A peer that answers but reads nothing, ended by --stall-timeout.
t_stalled() {
    local p
    need socat || return
    p=$(free_port); check "a server that never reads starts" never_reads "$p" || return
    head -c $((4 * 1024 * 1024)) /dev/zero >"$T/data"
    timeout 20 "$KACAT" --once --stall-timeout 500ms --exec 'echo "hook $KA_EVENT $KA_REASON $KA_REASON_CODE"' \
        127.0.0.1 "$p" <"$T/data" >/dev/null 2>"$T/err"
    check "kacat ends, not 0" [ $? -ne 0 ] || return
    check "the loss reads as a stall" has_line "$T/err" "connection lost after [0-9.]* s: peer stalled (window closed)$" || { show "$T/err"; return; }
    check "and says what that means" has_line "$T/err" "the server is alive but took no data for --stall-timeout 500ms"
    check "the hook sees KA_REASON peer_stalled (ka_reason 11)" has_line "$T/err" "^hook disconnect peer_stalled 11$"
    check "the last line names it" ends_with "$T/err" "the connection ended first: peer stalled (window closed)$"
}

# sink_time TOOL PORT: sends $T/big to a fresh socat sink with TOOL; sets
# took_ms. The sink exits after the connection, so its file is complete then.
sink_time() {
    local tool=$1 p=$2 t0 rc sink=$T/sink.$1
    start_server "$p" socat -u "TCP-LISTEN:$p,bind=127.0.0.1,reuseaddr" "OPEN:$sink,creat,trunc" || return 1
    t0=$(now_ms)
    if [ "$tool" = kacat ]; then timeout 60 "$KACAT" -q --linger 30s 127.0.0.1 "$p" <"$T/big"
    else timeout 60 socat -u "FILE:$T/big" "TCP:127.0.0.1:$p"; fi
    rc=$?
    took_ms=$(( $(now_ms) - t0 ))
    wait_until 30 gone "$last_server" || return 1
    [ "$rc" = 0 ] && cmp -s "$T/big" "$sink"
}

t_big_file() {
    local k s
    need socat || return
    head -c $((20 * 1024 * 1024)) /dev/urandom >"$T/big"
    check "20 MiB through socat as the reference" sink_time socat "$(free_port)" || return
    s=$took_ms
    check "20 MiB through kacat arrive byte-identical" sink_time kacat "$(free_port)" || return
    k=$took_ms
    echo "    20 MiB to a socat sink: kacat $k ms, socat $s ms"
    # Generous: the machine is shared; this catches a stall, not a 2x.
    check "kacat is within 10x of socat (+3 s)" [ "$k" -le $(( s * 10 + 3000 )) ]
}

t_echo_big_both_ways() {
    local p
    need socat || return
    p=$(free_port); check "socat echo starts" socat_echo "$p" || return
    head -c $((4 * 1024 * 1024)) /dev/urandom >"$T/data"
    timeout 60 "$KACAT" -q --linger 30s 127.0.0.1 "$p" <"$T/data" >"$T/out" 2>"$T/err"
    check "kacat exits 0" [ $? = 0 ] || { show "$T/err"; return; }
    check "4 MiB come back byte-identical" cmp -s "$T/data" "$T/out"
}

# shellcheck disable=SC2016  # expanded by the hook's shell, not this one
# The hook writes its KA_ variables to $HOOKDIR/EVENT.ATTEMPT (via a temp
# file and mv, so the test never reads a half-written file).
HOOK='env | grep "^KA_" | sort >"$HOOKDIR/.t$$" && mv "$HOOKDIR/.t$$" "$HOOKDIR/$KA_EVENT.$KA_ATTEMPT"'

t_exec_hook_env() {
    local p s1 h
    need socat || return
    p=$(free_port); check "socat echo starts" socat_echo "$p" || return
    s1=$last_server
    export HOOKDIR=$T
    start_kacat "${FAST[@]}" --max-attempts 3 --exec "$HOOK" 127.0.0.1 "$p"
    check "connect hook ran" wait_until 20 test -f "$T/connect.0" || return
    stop_server "$s1"
    check "kacat gives up" wait_for_kacat 30 || return
    check "give-up exit status is 3" [ "$kacat_rc" = 3 ]
    for h in disconnect.0 retry.1 retry.2 give_up.3; do
        check "$h hook ran before kacat exited" test -f "$T/$h" || return
    done
    check "connect: KA_EVENT" has_line "$T/connect.0" "^KA_EVENT=connect$"
    check "connect: KA_HOST" has_line "$T/connect.0" "^KA_HOST=127.0.0.1$"
    check "connect: KA_PORT" has_line "$T/connect.0" "^KA_PORT=$p$"
    check "connect: KA_REASON none" has_line "$T/connect.0" "^KA_REASON=none$"
    check "connect: KA_COALESCED 0" has_line "$T/connect.0" "^KA_COALESCED=0$"
    check "disconnect: reason peer closed or reset" has_line "$T/disconnect.0" "^KA_REASON=peer_\(closed\|reset\)$"
    check "retry 1: KA_ATTEMPT" has_line "$T/retry.1" "^KA_ATTEMPT=1$"
    check "retry 1: KA_DELAY_MS is the 100 ms asked for" has_line "$T/retry.1" "^KA_DELAY_MS=100$"
    check "retry 2: refused" has_line "$T/retry.2" "^KA_REASON=refused$"
    check "retry 2: KA_REASON_TEXT, the library's words" has_line "$T/retry.2" "^KA_REASON_TEXT=refused$"
    check "retry 2: KA_REASON_CODE is KA_REASON_REFUSED (5)" has_line "$T/retry.2" "^KA_REASON_CODE=5$"
    check "retry 2: KA_ERRNO is ECONNREFUSED" has_line "$T/retry.2" "^KA_ERRNO=111$"
    check "retry 2: KA_ERROR_TEXT from ka_sys_strerror" has_line "$T/retry.2" "^KA_ERROR_TEXT=connection refused$"
    check "retry 2: delay doubled" has_line "$T/retry.2" "^KA_DELAY_MS=200$"
    check "give_up: KA_EVENT" has_line "$T/give_up.3" "^KA_EVENT=give_up$"
    check "stderr says it gave up" has_line "$T/err" "gave up after 3 attempts: refused (connection refused, errno 111)"
}

# A hook that blocks until the test lets it go, while 20 events happen:
# they run one at a time, in order, the oldest folded when 8 wait, give_up
# last, and every event accounted for (1 + KA_COALESCED each).
# shellcheck disable=SC2016
SLOW_HOOK='mkdir "$HOOKDIR/running" 2>/dev/null || echo OVERLAP >>"$HOOKDIR/log"
while [ ! -f "$HOOKDIR/go" ]; do sleep 0.02; done
echo "$KA_EVENT $KA_ATTEMPT $KA_COALESCED" >>"$HOOKDIR/log"; rmdir "$HOOKDIR/running"'

hooks_in_order() {
    local r quiet=$1 total
    export HOOKDIR=$T/$quiet
    mkdir -p "$HOOKDIR"
    r=$(free_port)
    "$KACAT" $quiet --backoff-initial 1 --backoff-max 5 --backoff-jitter 0 -n 20 --exec "$SLOW_HOOK" \
        127.0.0.1 "$r" </dev/null >/dev/null 2>"$HOOKDIR/err" &
    kacat_pid=$!; procs="$procs $kacat_pid"
    check "$quiet: 20 attempts fail while the first hook blocks" wait_until 20 has_line "$HOOKDIR/err" "gave up after 20 attempts" || return
    check "$quiet: kacat waits for the hooks before it exits" kill -0 "$kacat_pid" || return
    touch "$HOOKDIR/go"
    check "$quiet: kacat ends once they have run" wait_for_kacat 30 || return
    check "$quiet: exit 3" [ "$kacat_rc" = 3 ]
    check "$quiet: never two hooks at once" lacks "$HOOKDIR/log" OVERLAP
    check "$quiet: give_up ran last" [ "$(tail -n 1 "$HOOKDIR/log")" = "give_up 20 0" ]
    check "$quiet: attempts in order" sh -c "grep '^retry' '$HOOKDIR/log' | cut -d' ' -f2 | sort -n -c"
    total=$(awk '{ n += 1 + $3 } END { print n }' "$HOOKDIR/log")
    check "$quiet: every one of the 20 events ran or was counted in KA_COALESCED ($total)" [ "$total" = 20 ]
    check "$quiet: some were folded" [ "$(wc -l <"$HOOKDIR/log")" -lt 20 ]
}

t_exec_queue() {
    hooks_in_order --verbose
    check "the folding is announced" has_line "$T/--verbose/err" "hooks are falling behind (8 events waiting): folding the oldest into the next"
    check "and the catching up" has_line "$T/--verbose/err" "hooks caught up; [0-9]* events had been folded into later ones"
    check "the last line comes after the hooks" ends_with "$T/--verbose/err" "exit 3: no input; gave up after 20 attempts"
    hooks_in_order --quiet
    check "-q silences the hook warnings" lacks "$T/--quiet/err" "hook"
}

t_exec_hook_failures() {
    local p t0 took reader
    need socat || return
    p=$(free_port); check "socat echo starts" socat_echo "$p" || return
    echo hi | timeout 30 "$KACAT" --exec 'exit 7' 127.0.0.1 "$p" >"$T/out" 2>"$T/err"
    check "a failing hook is not fatal" [ $? = 0 ] || return
    check "its exit status is reported" has_line "$T/err" "hook for connect failed: exit status 7"
    check "the data still went through" has_line "$T/out" "^hi$"
    echo hi | timeout 30 "$KACAT" -q --exec 'exit 7' 127.0.0.1 "$p" >/dev/null 2>"$T/errq"
    check "-q silences it" [ ! -s "$T/errq" ] || show "$T/errq"
    echo hi | timeout 30 "$KACAT" --exec 'no-such-command-here' 127.0.0.1 "$p" >/dev/null 2>"$T/err2"
    check "a missing command is reported" has_line "$T/err2" "exit status 127 (command not found"
    # A slow hook: kacat closes stdout at once (the reader is not held up),
    # then waits for the hook, whose output comes before the last line.
    # (No timeout(1) around kacat here: it would hold the pipe open too.)
    mkfifo "$T/pipe"
    { cat "$T/pipe" >"$T/out3"; now_ms >"$T/eof"; } &
    reader=$!
    t0=$(now_ms)
    echo hi | "$KACAT" --exec 'sleep 1; echo slow hook done' 127.0.0.1 "$p" >"$T/pipe" 2>"$T/err3" &
    kacat_pid=$!; procs="$procs $kacat_pid"
    check "kacat ends" wait_for_kacat 30 || return
    now_ms >"$T/exited"
    wait "$reader"
    took=$(( $(cat "$T/exited") - t0 ))
    check "kacat waited for the slow hook ($took ms)" [ "$took" -ge 1000 ]
    check "stdout ended before that" [ "$(cat "$T/eof")" -lt "$(cat "$T/exited")" ]
    check "the hook's output, then the last line" sh -c "tail -n 2 '$T/err3' | head -n 1 | grep -q 'slow hook done'"
    check "the echo still came back" has_line "$T/out3" "^hi$"
    # A signal ends the wait.
    start_kacat --linger 0 --exec 'sleep 3' 127.0.0.1 "$p"
    echo hi >&7
    exec 7>&-
    check "kacat waits for the hook at exit" wait_until 10 has_line "$T/err" "waiting for the hook for connect" || return
    kill -TERM "$kacat_pid"
    check "SIGTERM ends the wait" wait_for_kacat 5 || return
    check "it says which hook was left running" has_line "$T/err" "stopped waiting for hooks: the hook for connect is left running"
}

t_give_up() {
    local p rc
    p=$(free_port)
    echo "never sent" | timeout 30 "$KACAT" "${FAST[@]}" --max-attempts 2 127.0.0.1 "$p" >/dev/null 2>"$T/err"
    rc=$?
    check "give-up exits 3" [ "$rc" = 3 ]
    check "stderr says so" has_line "$T/err" "gave up after 2 attempts"
    check "the last line: none of the input sent" ends_with "$T/err" "exit 3: none of the input sent (11 bytes); gave up after 2 attempts: refused"
}

t_interrupt() {
    local p
    p=$(free_port)
    start_kacat "${FAST[@]}" 127.0.0.1 "$p"
    echo "queued" >&7
    check "input is queued" wait_until 20 has_line "$T/err" "waiting for the connection" || return
    kill -INT "$kacat_pid"
    check "kacat ends on SIGINT" wait_for_kacat 10 || return
    check "exit status 130" [ "$kacat_rc" = 130 ]
    check "says what was not sent, in the library's state words" has_line "$T/err" "interrupted while \(connecting\|backing off\); 7 bytes of input not sent"
    check "the last line" ends_with "$T/err" "exit 130: none of the input sent (7 bytes), and kacat stopped before the end of its input; interrupted by signal 2 while \(connecting\|backing off\)$"
    exec 7>&-
}

# kacat's own counts read right in the singular.
t_grammar() {
    local p
    need socat || return
    p=$(free_port); check "socat echo starts" socat_echo "$p" || return
    printf x | timeout 20 "$KACAT" 127.0.0.1 "$p" >/dev/null 2>"$T/err"
    check "1 byte, not 1 bytes" ends_with "$T/err" "all input sent (1 byte) over one connection"
    check "no '1 bytes' anywhere" lacks "$T/err" "[^0-9]1 bytes"
    printf x | timeout 20 "$KACAT" -v 127.0.0.1 "$p" >/dev/null 2>"$T/err"
    check "-v: '1 address', not '1 addresses'" has_line "$T/err" "connecting to 127.0.0.1 port $p: 1 address$"
}

# fd numbers >= FD_SETSIZE cannot go in an fd_set: kacat must use poll().
t_high_fd() {
    local p
    need socat || return
    [ "$(ulimit -n)" -ge 1200 ] || { skip "ulimit -n below 1200"; return; }
    p=$(free_port); check "socat echo starts" socat_echo "$p" || return
    (
        for ((i = 3; i < 1100; i++)); do eval "exec $i</dev/null"; done
        echo "high fd" | timeout 30 "$KACAT" 127.0.0.1 "$p" >"$T/out" 2>"$T/err"
    )
    check "kacat exits 0 with its socket above 1023" [ $? = 0 ] || { cat "$T/err"; return; }
    check "the echo came back" has_line "$T/out" "^high fd$"
}

t_heartbeat() {
    local p
    need redis-server || return
    p=$(free_port); check "redis-server starts" start_redis "$p" || return
    start_kacat --heartbeat 'PING\r\n' --heartbeat-interval 200ms 127.0.0.1 "$p"
    check "an idle kacat sends the heartbeat, redis answers each" wait_until 20 count_is_at_least "$T/out" "+PONG" 2 || return
    end_input_and_wait 20
    check "kacat exits 0" [ "$kacat_rc" = 0 ]
}

# A server that reads to EOF but does not close. ka_client_finish stops
# the heartbeat at the half-close (before it, a heartbeat written after
# kacat's own shutdown() got EPIPE); the linger then ends kacat, exit 0.
t_heartbeat_after_half_close() {
    local p
    need socat || return
    p=$(free_port)
    check "socat reader starts" start_server "$p" socat "TCP-LISTEN:$p,bind=127.0.0.1,reuseaddr,fork" SYSTEM:"cat >$T/got; sleep 5" || return
    echo hi | timeout 30 "$KACAT" --heartbeat x --heartbeat-interval 100ms --linger 1.5s 127.0.0.1 "$p" >/dev/null 2>"$T/err"
    check "kacat exits 0" [ $? = 0 ] || show "$T/err"
    check "the input arrived, and no heartbeat after it" [ "$(tail -c 3 "$T/got" 2>/dev/null)" = hi ]
}

# Our own flaky server: each kind of misbehaviour gets its own name.
t_flaky_server() {
    local p
    p=$(free_port)
    check "flaky_server starts" start_server "$p" ./demo/flaky_server --port "$p" \
        --schedule "1:close,1:reset,1:down=1.5" --duration 30 || return
    start_kacat "${FAST[@]}" --backoff-reset 500 127.0.0.1 "$p"
    check "a graceful close is named peer closed" wait_until 20 has_line "$T/err" "lost after .*: peer closed$" || return
    check "SO_LINGER 0 is named peer reset" wait_until 20 has_line "$T/err" "lost after .*: peer reset (connection reset by peer, errno 104)$" || return
    check "a closed port is named refused" wait_until 20 has_line "$T/err" "connect failed: refused (connection refused, errno 111); retrying in" || return
    check "kacat is back after the server is" wait_until 20 count_is_at_least "$T/err" "^kacat: connected to" 4 || return
    check "the server said what it did" has_line "$T/server.log" "reset 1 connection (RST"
    echo "still echoing" >&7
    check "and the echo works again" wait_until 20 has_line "$T/out" "^still echoing$"
}

# The embedding example works as documented.
t_own_loop() {
    local p
    need socat || return
    p=$(free_port); check "socat echo starts" socat_echo "$p" || return
    printf 'hello from own_loop\n' | timeout 30 ./demo/own_loop 127.0.0.1 "$p" >"$T/out" 2>&1
    check "own_loop exits 0" [ $? = 0 ] || { cat "$T/out"; return; }
    check "it connected" has_line "$T/out" "^\* connected$"
    check "the line came back through its select() loop" has_line "$T/out" "^< hello from own_loop$"
}

# socat_sink PORT FILE: a server (forking) that appends what it reads to FILE.
socat_sink() { start_server "$1" socat -u "TCP-LISTEN:$1,bind=127.0.0.1,reuseaddr,fork" "OPEN:$2,creat,append"; }

# --hello opens every connection, ahead of input queued while the server
# was away; a server restart gets it again.
t_hello() {
    local p s1
    need socat || return
    p=$(free_port)
    start_kacat "${FAST[@]}" --hello 'LOGIN kacat\n' 127.0.0.1 "$p"
    echo "queued while away" >&7
    check "the input waits for the server" wait_until 20 has_line "$T/err" "waiting for the connection" || return
    check "a socat sink starts" socat_sink "$p" "$T/sink" || return
    s1=$last_server
    check "the hello, then the queued input" wait_until 20 has_line "$T/sink" "queued while away" || return
    stop_server "$s1"
    check "kacat notices the server went" wait_until 20 has_line "$T/err" "connection lost" || return
    echo "after the restart" >&7
    check "the sink starts again" socat_sink "$p" "$T/sink" || return
    check "the next line arrives" wait_until 20 has_line "$T/sink" "after the restart" || return
    printf 'LOGIN kacat\nqueued while away\nLOGIN kacat\nafter the restart\n' >"$T/want"
    check "each connection began with the hello, before any input" cmp -s "$T/want" "$T/sink" || show "$T/sink"
    end_input_and_wait 20
    check "exit 5: the input went over two connections (the hello is not input)" [ "$kacat_rc" = 5 ] || show "$T/err"
    check "the last line counts the input only" ends_with "$T/err" "exit 5: all input sent (36 bytes), split over 2 connections"
}

# The hello goes first even with all the input already queued and ended.
t_hello_then_eof() {
    local p
    need socat || return
    p=$(free_port); check "socat echo starts" socat_echo "$p" || return
    printf 'data\n' | timeout 20 "$KACAT" --hello 'HELLO\r\n' 127.0.0.1 "$p" >"$T/out" 2>"$T/err"
    check "exit 0" [ $? = 0 ] || show "$T/err"
    printf 'HELLO\r\ndata\n' >"$T/want"
    check "the echo: the decoded hello, then the input" cmp -s "$T/want" "$T/out"
    check "the last line counts the input only" ends_with "$T/err" "exit 0: all input sent (5 bytes) over one connection; kacat closed first, then the server$"
}

# Several servers: a refused one is skipped; when the one in use goes, the
# next one takes over; the exit status still says the input was split.
t_several_servers() {
    local r a b sa
    need socat || return
    r=$(free_port); a=$(free_port); b=$(free_port)
    echo hi | timeout 20 "$KACAT" "${FAST[@]}" 127.0.0.1 "$r" "127.0.0.1:$a" >"$T/out0" 2>"$T/err0" &
    kacat_pid=$!; procs="$procs $kacat_pid"
    check "socat echo A starts" socat_echo "$a" || return
    sa=$last_server
    check "kacat ends" wait_for_kacat 20 || return
    check "a refused first server, then the second: exit 0" [ "$kacat_rc" = 0 ] || show "$T/err0"
    check "the first line names both" has_line "$T/err0" "connecting to 127.0.0.1:$r (then 127.0.0.1:$a)$"
    check "it connected to the second" has_line "$T/err0" "connected to 127.0.0.1:$a$"
    check "the echo came back" has_line "$T/out0" "^hi$"
    check "socat echo B starts" socat_echo "$b" || return
    export HOOKDIR=$T
    start_kacat "${FAST[@]}" --backoff-reset 200 --exec 'echo "$KA_EVENT $KA_PORT" >>"$HOOKDIR/events"' \
        127.0.0.1 "$a" 127.0.0.1 "$b"
    echo "to A" >&7
    check "the first line comes back from A" wait_until 20 has_line "$T/out" "^to A$" || return
    stop_server "$sa"
    check "kacat moves on to B" wait_until 20 has_line "$T/err" "connected to 127.0.0.1:$b$" || return
    echo "to B" >&7
    check "the next line comes back from B" wait_until 20 has_line "$T/out" "^to B$" || return
    end_input_and_wait 20
    check "exit 5: split over two servers, not 0" [ "$kacat_rc" = 5 ] || show "$T/err"
    check "hooks name the server of each connection" \
        [ "$(grep '^connect\|^disconnect' "$T/events" | tr '\n' ' ')" = "connect $a disconnect $a connect $b " ] || show "$T/events"
    check "and of each failed retry (A, refused, after it went)" has_line "$T/events" "^retry $a$"
    timeout 20 "$KACAT" --once 127.0.0.1 "$r" 127.0.0.1 "$(free_port)" </dev/null >/dev/null 2>"$T/err2"
    check "--once with two refused servers: exit 1" [ $? = 1 ] || show "$T/err2"
    check "each was tried once" [ "$(grep -c 'refused' "$T/err2")" -ge 2 ]
    check "the last line" ends_with "$T/err2" "exit 1: no input; no connection (--once): refused"
}

# --interface: SO_BINDTODEVICE. lo reaches 127.0.0.1; a missing interface
# is named; in a namespace of its own (root), a socket bound to a veth
# cannot reach 127.0.0.1 at all.
t_interface() {
    local p rc
    need socat || return
    p=$(free_port); check "socat echo starts" socat_echo "$p" || return
    echo hi | timeout 20 "$KACAT" --interface lo 127.0.0.1 "$p" >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc != 0 ] && has_line "$T/err" "operation not permitted"; then
        skip "SO_BINDTODEVICE needs CAP_NET_RAW on this kernel"; return
    fi
    check "--interface lo: exit 0" [ $rc = 0 ] || show "$T/err"
    check "--interface lo: echoed" has_line "$T/out" "^hi$"
    timeout 20 "$KACAT" --once --interface no-such-if0 127.0.0.1 "$p" </dev/null >/dev/null 2>"$T/err2"
    check "--interface no-such-if0: exit 1" [ $? = 1 ]
    check "named by the library" has_line "$T/err2" "cannot connect to 127.0.0.1:$p: socket error (no such device, errno 19)$"
    if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null 2>&1; then
        skip "the veth half needs root and ip (iproute2)"; return
    fi
    unshare -n sh -c "ip link set lo up && ip link add kc0 type veth peer name kc1 && ip link set kc0 up &&
        ip link set kc1 up && ip addr add 10.77.0.1/24 dev kc0 || exit 9
        socat TCP-LISTEN:$p,bind=127.0.0.1,reuseaddr,fork EXEC:cat & s=\$!
        i=0; while [ \$i -lt 100 ] && ! grep -q ':$(printf %04X "$p") .* 0A ' /proc/net/tcp; do sleep 0.05; i=\$((i + 1)); done
        echo lo | timeout 20 $KACAT --once -w 1s --interface lo 127.0.0.1 $p >$T/ns.lo 2>&1; echo \"lo \$?\" >$T/ns.rc
        timeout 20 $KACAT --once -w 1s --interface kc0 127.0.0.1 $p </dev/null >$T/ns.kc0 2>&1; echo \"kc0 \$?\" >>$T/ns.rc
        kill \$s" 2>"$T/ns.err"
    if [ $? = 9 ]; then skip "cannot make a veth pair here: $(head -c 100 "$T/ns.err")"; return; fi
    check "in a namespace: bound to lo, 127.0.0.1 answers" has_line "$T/ns.rc" "^lo 0$" || show "$T/ns.lo"
    check "bound to a veth, it cannot (exit 1)" has_line "$T/ns.rc" "^kc0 1$" || show "$T/ns.kc0"
    check "the attempt timed out" has_line "$T/ns.kc0" "cannot connect to 127.0.0.1:$p: connect timeout"
}

# half_closer PORT SINK: socat sends a banner, ends its side (the banner's
# command is done), and goes on writing what arrives to SINK.
half_closer() {
    start_server "$1" socat -t 60 "TCP-LISTEN:$1,bind=127.0.0.1,reuseaddr" "SYSTEM:echo banner!!OPEN:$2,creat,trunc"
}

# --keep-sending: the server's FIN ends kacat's stdout, not the upload.
t_keep_sending() {
    local p reader
    need socat || return
    p=$(free_port)
    check "a half-closing socat starts" half_closer "$p" "$T/sink" || return
    mkfifo "$T/in" "$T/pipe"
    { cat "$T/pipe" >"$T/out"; echo done >"$T/eof"; } &
    reader=$!
    "$KACAT" --keep-sending 127.0.0.1 "$p" <"$T/in" >"$T/pipe" 2>"$T/err" &
    kacat_pid=$!; procs="$procs $kacat_pid"
    exec 7>"$T/in"
    echo "before" >&7
    check "kacat says the server ended its side" wait_until 20 has_line "$T/err" "the server ended its side; still sending, stdout closed" || return
    check "stdout ends there, while kacat runs" wait_until 10 test -f "$T/eof" || return
    wait "$reader"
    check "kacat still runs" kill -0 "$kacat_pid"
    check "stdout held the banner" [ "$(cat "$T/out")" = banner ]
    echo "after" >&7
    end_input_and_wait 20
    check "exit 0: all input over one connection" [ "$kacat_rc" = 0 ] || show "$T/err"
    check "the server got all of it" wait_until 10 cmp -s <(printf 'before\nafter\n') "$T/sink"
    check "the last line: the server ended first, kacat sent the rest" \
        ends_with "$T/err" "exit 0: all input sent (13 bytes) over one connection; the server ended its side first; kacat sent the rest, then closed$"
}

# Without --keep-sending the same server's FIN ends the connection: the
# input does not all reach it, and kacat does not exit 0.
t_no_keep_sending() {
    local p
    need socat || return
    p=$(free_port)
    check "a half-closing socat starts" half_closer "$p" "$T/sink" || return
    start_kacat --once 127.0.0.1 "$p"
    check "kacat ends when the server's FIN comes" wait_for_kacat 20 || return
    check "exit 4: the server closed first" [ "$kacat_rc" = 4 ] || show "$T/err"
    check "named peer closed" has_line "$T/err" "connection lost after .*: peer closed$"
    exec 7>&-
}

# --keep-sending and a server that dies mid-upload (it reads 100 KB and
# goes; its unread bytes make the kernel answer with RST): not 0. 32 MiB,
# far more than the kernel holds for the connection (kacat's send buffer
# grows to tcp_wmem's 4 MiB by default; the server's receive buffer is held
# at 64 KiB): with 4 MiB the kernel could take it all before the server
# ran, and kacat rightly called it sent.
t_keep_sending_reset() {
    local p
    need socat || return
    p=$(free_port)
    check "a half-closing socat that reads 100 KB starts" start_server "$p" socat -t 60 \
        "TCP-LISTEN:$p,bind=127.0.0.1,reuseaddr,rcvbuf=65536" "SYSTEM:echo banner!!SYSTEM:head -c 100000 >/dev/null" || return
    head -c $((32 * 1024 * 1024)) /dev/zero | timeout 30 "$KACAT" --once --keep-sending 127.0.0.1 "$p" >"$T/out" 2>"$T/err"
    kacat_rc=${PIPESTATUS[1]}
    check "exit 4 or 6 (the input did not all arrive), never 0" one_of "$kacat_rc" 4 6 || { show "$T/err"; return; }
    check "the server's end came first" has_line "$T/err" "the server ended its side"
    check "then the reset" has_line "$T/err" "connection lost after .*: peer reset"
}

# ---- TLS (--tls): openssl s_server and redis-server --tls-port ---------------------

CERTS=$work/certs
kacat_has_tls() { "$KACAT" --version 2>/dev/null | grep -q "^TLS: OpenSSL"; }

# tls_ready: kacat was built with TLS, and the test CA and certificates
# exist (made on first use); else a skip, or a failure if they cannot be made.
tls_ready() {
    kacat_has_tls || { skip "kacat was built without TLS (libssl-dev: make deps)"; return 1; }
    need openssl || return 1
    [ -f "$CERTS/ca.pem" ] && return 0
    sh test/tls/certs.sh "$CERTS" >"$T/certs.log" 2>&1 && return 0
    check "the test certificates are made (test/tls/certs.sh)" false
    show "$T/certs.log"
    return 1
}

# sserver PORT CERT: openssl s_server -rev (each line comes back reversed)
# with CERT.pem from the test CA's set.
sserver() {
    start_server "$1" openssl s_server -quiet -rev -accept "$1" -cert "$CERTS/$2.pem" -key "$CERTS/server.key"
}

TLS_CA=(--tls --cafile "$CERTS/ca.pem")

# What the TLS options do not take, in either build.
t_tls_usage() {
    if ! kacat_has_tls; then
        usage_error "^kacat: --tls: kacat was built without TLS$" --tls 127.0.0.1 1
        usage_error "^kacat: --cafile: kacat was built without TLS$" --cafile x 127.0.0.1 1
        return
    fi
    usage_error "^kacat: --cafile, --cert, --key, --servername and --insecure need --tls$" --cafile x 127.0.0.1 1
    usage_error "^kacat: --cafile, --cert, --key, --servername and --insecure need --tls$" --insecure 127.0.0.1 1
    usage_error "^kacat: TLS: cannot load the CA file $T/none.pem" --tls --cafile "$T/none.pem" 127.0.0.1 1
    usage_error "^kacat: TLS: a key file without a certificate file$" --tls --key "$T/none.key" 127.0.0.1 1
    usage_error "^kacat: option '--tls' takes no value" --tls=1 127.0.0.1 1
}

t_tls_sserver() {
    local p
    tls_ready || return
    p=$(free_port); check "openssl s_server starts" sserver "$p" server || return
    echo hello | timeout 20 "$KACAT" "${TLS_CA[@]}" --once 127.0.0.1 "$p" >"$T/out" 2>"$T/err"
    check "exit 0" [ $? = 0 ] || { show "$T/err"; return; }
    check "s_server's answer came back through TLS" has_line "$T/out" "^olleh$"
    check "the first line names the transport" has_line "$T/err" "connecting to 127.0.0.1:$p with TLS (OpenSSL [0-9]"
    check "the last line: all input over one connection" ends_with "$T/err" "exit 0: all input sent (6 bytes) over one connection; kacat closed first"
    echo named | timeout 20 "$KACAT" "${TLS_CA[@]}" --once localhost "$p" >"$T/out2" 2>"$T/err2"
    check "by name (SNI localhost): exit 0" [ $? = 0 ] || show "$T/err2"
    check "by name: answered" has_line "$T/out2" "^deman$"
}

# The session features over TLS: the hello goes before input queued while
# connecting, heartbeats go out while input is idle, and idle_timeout is fed
# by their echoes (s_server -rev answers each line, reversed), all inside
# one TLS session.
t_tls_session() {
    local p n
    tls_ready || return
    p=$(free_port); check "openssl s_server starts" sserver "$p" server || return
    { echo data1; sleep 1.2; } | timeout 20 "$KACAT" "${TLS_CA[@]}" --once --hello 'HELLO\n' \
        --heartbeat 'PING\n' --heartbeat-interval 200ms --idle-timeout 600ms 127.0.0.1 "$p" >"$T/out" 2>"$T/err"
    check "exit 0" [ $? = 0 ] || { show "$T/err"; return; }
    check "the hello came back first" [ "$(head -n 1 "$T/out")" = OLLEH ] || show "$T/out"
    check "then the input" has_line "$T/out" "^1atad$"
    n=$(grep -c '^GNIP$' "$T/out")
    check "heartbeats while the input was idle ($n)" [ "$n" -ge 2 ]
    check "one connection: idle_timeout never fired" ends_with "$T/err" "over one connection; kacat closed first"
}

# A certificate for another name: every attempt fails with KA_REASON_TLS,
# in the adapter's words, on stderr and in the hook; the backoff holds.
t_tls_wrong_name() {
    local p rc
    tls_ready || return
    p=$(free_port); check "openssl s_server starts" sserver "$p" server || return
    export HOOKDIR=$T
    timeout 20 "$KACAT" "${TLS_CA[@]}" --servername wrong.example -n 2 --backoff-initial 100 --backoff-jitter 0 \
        --exec "$HOOK" 127.0.0.1 "$p" </dev/null >/dev/null 2>"$T/err"
    rc=$?
    check "exit 3: gave up" [ "$rc" = 3 ] || { show "$T/err"; return; }
    check "never connected" lacks "$T/err" "connected to"
    check "the attempt failed with the reason and the adapter's words" has_line "$T/err" \
        "connect failed: TLS / transport failure: TLS: the certificate of wrong.example was rejected: hostname mismatch (.*, not wrong.example); retrying in 100 ms (attempt 1)$" || show "$T/err"
    check "the last line says why" ends_with "$T/err" "exit 3: no input; gave up after 2 attempts: TLS / transport failure: TLS: .*hostname mismatch"
    check "the hook has the hooks' reason word" has_line "$T/retry.1" "^KA_REASON=tls_transport_failure$"
    check "and KA_REASON_TLS's number (13)" has_line "$T/retry.1" "^KA_REASON_CODE=13$"
    check "KA_ERROR_TEXT is the adapter's text" has_line "$T/retry.1" "^KA_ERROR_TEXT=TLS: the certificate of wrong.example was rejected: hostname mismatch"
    check "give_up too" has_line "$T/give_up.2" "^KA_REASON=tls_transport_failure$"
}

# A self-signed certificate fails; --insecure takes it, with a warning
# that even -q shows.
t_tls_insecure() {
    local p
    tls_ready || return
    p=$(free_port); check "openssl s_server (self-signed) starts" sserver "$p" selfsigned || return
    echo hi | timeout 20 "$KACAT" "${TLS_CA[@]}" --once 127.0.0.1 "$p" >/dev/null 2>"$T/err"
    check "verified: exit 1" [ $? = 1 ] || show "$T/err"
    check "verified: rejected in the adapter's words" has_line "$T/err" "cannot connect to 127.0.0.1:$p: TLS / transport failure: TLS: .*self-signed certificate"
    echo hi | timeout 20 "$KACAT" --tls --insecure --once 127.0.0.1 "$p" >"$T/out2" 2>"$T/err2"
    check "--insecure: exit 0" [ $? = 0 ] || show "$T/err2"
    check "--insecure: answered" has_line "$T/out2" "^ih$"
    check "--insecure: the warning" has_line "$T/err2" "^kacat: TLS: WARNING: server certificates are not verified (insecure)"
    check "--insecure: the first line says so too" has_line "$T/err2" "with TLS (OpenSSL .*, certificates NOT verified)"
    echo hi | timeout 20 "$KACAT" -q --tls --insecure --once 127.0.0.1 "$p" >/dev/null 2>"$T/err3"
    check "--insecure -q: the warning is the only line" \
        [ "$(grep -c . "$T/err3")/$(grep -c 'WARNING: server certificates are not verified' "$T/err3")" = 1/1 ] || show "$T/err3"
}

# redis-server with TLS only, client certificates required: --cert, --key.
t_tls_redis() {
    local p
    tls_ready || return
    need redis-server || return
    p=$(free_port)
    if ! start_server "$p" redis-server --port 0 --tls-port "$p" --bind 127.0.0.1 --tls-cert-file "$CERTS/server.pem" \
        --tls-key-file "$CERTS/server.key" --tls-ca-cert-file "$CERTS/ca.pem" --tls-auth-clients yes \
        --save '' --appendonly no --dir "$T"; then
        if has_line "$T/server.log" "tls.*not\|not.*tls\|Bad directive"; then skip "this redis-server is built without TLS"; return; fi
        check "redis-server listens on its TLS port" false
        return
    fi
    printf 'PING\r\n' | timeout 20 "$KACAT" --once --stats "${TLS_CA[@]}" --cert "$CERTS/client.pem" --key "$CERTS/client.key" \
        127.0.0.1 "$p" >"$T/out" 2>"$T/err"
    check "exit 0" [ $? = 0 ] || { show "$T/err"; return; }
    check "+PONG through TLS" has_line "$T/out" "^+PONG"
    check "--stats counts the plaintext" has_line "$T/err" "^kacat: stats: 1 attempt, 1 connection, .*; sent 6 bytes in 1 message, received 7 bytes in 1 message, 0 bytes dropped;"
}

# ---- --stats, SIGUSR1, health -------------------------------------------------------

t_stats() {
    local p
    need socat || return
    p=$(free_port); check "socat echo starts" socat_echo "$p" || return
    echo hello | timeout 20 "$KACAT" -q --stats 127.0.0.1 "$p" >/dev/null 2>"$T/err"
    check "exit 0" [ $? = 0 ] || { show "$T/err"; return; }
    check "-q --stats: the statistics are the only line" [ "$(grep -c . "$T/err")" = 1 ] || show "$T/err"
    check "counters: attempts, connections, how they ended, bytes and messages, drops, time" has_line "$T/err" \
        "^kacat: stats: 1 attempt, 1 connection, 1 ended (1 peer closed); sent 6 bytes in 1 message, received 6 bytes in [0-9]* messages\?, 0 bytes dropped; connected [0-9.]* m\?s; " || show "$T/err"
    check "the kernel's view, as last seen (Linux TCP_INFO)" has_line "$T/err" \
        "; last seen: rtt [0-9.]* ms (var [0-9.]* ms), retransmissions [0-9]* now, [0-9]* in all, [0-9]* bytes\? unacknowledged$"
    # SIGUSR1, with or without --stats: the line now, and kacat goes on.
    start_kacat 127.0.0.1 "$p"
    echo one >&7
    check "echoed" wait_until 20 has_line "$T/out" "^one$" || return
    kill -USR1 "$kacat_pid"
    check "SIGUSR1 prints the statistics, live" wait_until 10 has_line "$T/err" \
        "^kacat: stats: 1 attempt, 1 connection, 0 ended; sent 4 bytes in 1 message, received 4 bytes in 1 message, 0 bytes dropped; connected [0-9.]* m\?s; rtt [0-9.]* ms" || { show "$T/err"; return; }
    check "kacat goes on" kill -0 "$kacat_pid" || return
    echo two >&7
    check "and still echoes" wait_until 20 has_line "$T/out" "^two$" || return
    kill -USR1 "$kacat_pid"
    check "a second SIGUSR1, a second line" wait_until 10 has_line "$T/err" "stats: .*; sent 8 bytes in 2 messages" || return
    end_input_and_wait 20
    check "exit 0" [ "$kacat_rc" = 0 ] || show "$T/err"
    check "without --stats, no line at exit" [ "$(grep -c 'stats:' "$T/err")" = 2 ]
}

# shellcheck disable=SC2016
HEALTH_HOOK='env | grep "^KA_" | sort >"$HOOKDIR/.t$$" && mv "$HOOKDIR/.t$$" "$HOOKDIR/$KA_EVENT${KA_HEALTH:+.$KA_HEALTH}"
echo "$KA_EVENT${KA_HEALTH:+ $KA_HEALTH}" >>"$HOOKDIR/events"'

# The server stops reading while kacat sends: its window closes, kacat's
# queue fills, and the hook hears "health degraded (stalled)" long before
# any deadline; when the server reads again, "health good". socat opens
# the fifo for writing only after accepting, and the open waits for a
# reader: until the test starts one, the server reads nothing.
t_health_hook() {
    local p writer
    [ "$(uname -s)" = Linux ] || { skip "the link's health is read from TCP_INFO here: Linux only"; return; }
    need socat || return
    p=$(free_port)
    mkfifo "$T/drain"
    check "a server that reads nothing until told starts" start_server "$p" socat -u \
        "TCP-LISTEN:$p,bind=127.0.0.1,reuseaddr,rcvbuf=4096" "OPEN:$T/drain" || return
    export HOOKDIR=$T
    start_kacat -v --exec "$HEALTH_HOOK" 127.0.0.1 "$p"
    head -c $((4 * 1024 * 1024)) /dev/zero >&7 &
    writer=$!; procs="$procs $writer"
    check "the hook hears health degraded" wait_until 20 test -f "$T/health.degraded" || { show "$T/err"; return; }
    check "while the server's window is closed and data waits" stuck "$p"
    check "KA_HEALTH_CAUSE says stalled" has_line "$T/health.degraded" "^KA_HEALTH_CAUSE=\(.*,\)\?stalled$" || show "$T/health.degraded"
    check "KA_RTT_US and KA_RETRANS are numbers" sh -c "grep -q '^KA_RTT_US=[0-9][0-9]*$' '$T/health.degraded' && grep -q '^KA_RETRANS=[0-9][0-9]*$' '$T/health.degraded'"
    check "KA_REASON none, the server named" sh -c "grep -q '^KA_REASON=none$' '$T/health.degraded' && grep -q '^KA_PORT=$p$' '$T/health.degraded'"
    check "-v says it in words" has_line "$T/err" "link degraded (stalled): rtt .*the server takes no data"
    check "the connection is still up" lacks "$T/err" "connection lost"
    cat "$T/drain" >/dev/null 7>&- &     # not holding kacat's input open
    procs="$procs $!"
    check "once the server reads, all the input goes" wait_until 30 gone "$writer" || return
    check "and the hook hears health good" wait_until 20 test -f "$T/health.good" || { show "$T/err"; return; }
    check "KA_HEALTH_CAUSE is empty when good" has_line "$T/health.good" "^KA_HEALTH_CAUSE=$"
    check "-v: good again" has_line "$T/err" "link good again: rtt "
    end_input_and_wait 30
    check "exit 0" [ "$kacat_rc" = 0 ] || show "$T/err"
    check "the hooks ran in event order" [ "$(head -n 3 "$T/events" | tr '\n' ' ')" = "connect health degraded health good " ] || show "$T/events"
    check "the other events have no KA_HEALTH" lacks "$T/connect" "^KA_HEALTH"
    check "-v: a status line with the round trip on connect" has_line "$T/err" "^kacat: status: rtt [0-9.]* ms (var [0-9.]* ms), retransmissions [0-9]* now"
}

# doc/kacat.1: lint-clean, and it documents every option --help lists.
t_manpage() {
    local o missing=""
    [ -f doc/kacat.1 ] || { check "doc/kacat.1 exists" false; return; }
    if command -v mandoc >/dev/null 2>&1; then
        mandoc -T lint doc/kacat.1 >"$T/lint" 2>&1
        check "mandoc -T lint finds nothing" test ! -s "$T/lint" || show "$T/lint"
    else
        skip "mandoc not installed (make deps)"
    fi
    if command -v groff >/dev/null 2>&1; then
        groff -ww -man -Tutf8 doc/kacat.1 >"$T/page" 2>"$T/groff"
        check "groff -ww -man -Tutf8 warns about nothing" test ! -s "$T/groff" || show "$T/groff"
        check "groff renders it" test -s "$T/page"
    else
        skip "groff not installed (make deps)"
    fi
    sed 's/\\-/-/g' doc/kacat.1 >"$T/plain"
    "$KACAT" --help | grep -o -- '--[a-z][a-z-]*[a-z]' | sort -u >"$T/opts"
    while read -r o; do grep -q -- "$o" "$T/plain" || missing="$missing $o"; done <"$T/opts"
    check "the page names every option --help lists${missing:+ (missing:$missing)}" [ -z "$missing" ]
    for o in 0 1 2 3 4 5 6; do
        check "the page documents exit status $o" grep -q "^\.B $o$" doc/kacat.1
    done
    check "the page lists the hook variables" grep -q "^\.B KA_COALESCED$" doc/kacat.1
    check "and the health event's" grep -q "^\.B KA_HEALTH_CAUSE$" doc/kacat.1
}

echo "kacat suite: $KACAT against redis-server and socat on 127.0.0.1 (and ::1)"
[ -x "$KACAT" ] || { echo "$KACAT missing: run make"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
run_test "bad usage exits 2 and names what is wrong" t_usage
run_test "a value the library rejects is named by its option (ka_config_error)" t_config_errors
run_test "--help shows the library defaults and the exit statuses; --version" t_help_version
run_test "socat echo: binary input comes back byte-identical, exit 0" t_socat_echo_binary
run_test "combined short flags: -qT, -vT, -qn2, -qw300ms" t_short_flags
run_test "durations: 100, 100ms and 0.1s are the same backoff" t_durations
run_test "--linger 250ms ends the wait for a server that never closes" t_linger_units
run_test "-w 300ms: a connect to a server that accepts nothing times out" t_connect_timeout
run_test "HOST:PORT, [::1]:PORT, '[::1]' PORT and ::1 PORT" t_endpoint_forms
run_test "-4, -6 and -s ADDR as in nc" t_family_source
run_test "--once to a refused port exits 1 within a second" t_once_refused
run_test "--once: a server that closes first ends kacat, exit 4" t_once_server_first
run_test "--once: redis closes after kacat's end of input, exit 0" t_once_kacat_first
run_test "redis restarts between two PINGs: input split over 2 connections, exit 5" t_redis_restart_split
run_test "input typed during an outage arrives after the reconnect, exit 5" t_queued_through_outage
run_test "the connection that carried all input was closed by the server: exit 4" t_server_closed_carrier
run_test "a full queue pauses input until the server is back; nothing lost, exit 0" t_queue_full_waits
run_test "a reset while a message is half sent: dropped bytes counted, exit 6" t_dropped
run_test "a server that reads nothing: --stall-timeout names it peer stalled" t_stalled
run_test "20 MiB to a socat sink arrive byte-identical, about as fast as socat" t_big_file
run_test "4 MiB through a socat echo come back byte-identical" t_echo_big_both_ways
run_test "--exec hook sees KA_EVENT, KA_REASON(_TEXT, _CODE), KA_ERRNO, KA_ERROR_TEXT, KA_ATTEMPT, KA_DELAY_MS, KA_HOST, KA_PORT" t_exec_hook_env
run_test "--exec hooks run one at a time, in order; the oldest are folded, none lost; -q silences" t_exec_queue
run_test "--exec failures are reported (not with -q); kacat waits for hooks at exit, a signal stops it" t_exec_hook_failures
run_test "giving up exits 3 and reports unsent input" t_give_up
run_test "SIGINT exits 130 and reports unsent input" t_interrupt
run_test "kacat's counts in the singular: 1 byte, 1 attempt, 1 address" t_grammar
run_test "--heartbeat 'PING\r\n' keeps redis answering while input is idle" t_heartbeat
run_test "no heartbeat after the final half-close; a server that never closes ends with --linger" t_heartbeat_after_half_close
run_test "a socket above FD_SETSIZE falls back to poll()" t_high_fd
run_test "flaky_server: FIN, RST and a closed port are each named; kacat comes back" t_flaky_server
run_test "own_loop: the embedding example echoes through socat" t_own_loop
run_test "--hello opens every connection, before queued input; not counted as input" t_hello
run_test "--hello 'HELLO\r\n' is decoded and goes before input that had already ended" t_hello_then_eof
run_test "several servers: a refused one is skipped; when one goes the next takes over; exit 5, not 0" t_several_servers
run_test "--interface lo reaches 127.0.0.1; a missing one is named; bound to a veth it cannot" t_interface
run_test "--keep-sending: a server that half-closed first gets the rest; stdout ends at its FIN; exit 0" t_keep_sending
run_test "without --keep-sending the same server's FIN ends the connection: exit 4" t_no_keep_sending
run_test "--keep-sending and a server that dies mid-upload: exit 4 or 6, never 0" t_keep_sending_reset
run_test "TLS options: --cafile without --tls, a missing CA file, a build without TLS: exit 2" t_tls_usage
run_test "--tls --cafile CA against openssl s_server: by address and by name, exit 0" t_tls_sserver
run_test "--tls: --hello first, heartbeats and --idle-timeout inside one TLS session" t_tls_session
run_test "--tls: a certificate for another name fails each attempt, in the adapter's words, hook included" t_tls_wrong_name
run_test "--tls: a self-signed certificate fails; --insecure takes it with a warning -q keeps" t_tls_insecure
run_test "--tls --cert --key: redis-server --tls-port answers PING" t_tls_redis
run_test "--stats at exit; SIGUSR1 prints the statistics and kacat goes on" t_stats
run_test "a server that stops reading: the hook hears health degraded (stalled), then good" t_health_hook
run_test "doc/kacat.1 is lint-clean and documents every option and exit status" t_manpage
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
