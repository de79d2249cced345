#!/bin/bash
# Suite "kacat": demo/kacat against real servers nobody here wrote
# (redis-server, socat) and against itself being misused.
#
# Every wait is a deadline loop on an observable fact (a line on stderr, a
# port in LISTEN state, a process gone), never a sleep guess. Servers run in
# their own process groups and are killed on exit. Ends with the line
# "N passed, N failed, N skipped" that test/check.sh sums.
# Usage: test/kacat_test.sh [NAME-SUBSTRING]
set -u
cd "$(dirname "$0")/.." || exit 1
KACAT=${KACAT:-./demo/kacat}     # KACAT=path/to/build runs the suite on another build (e.g. ASan)
FILTER=${1:-}
. test/shlib.sh

start_redis() {
    start_server "$1" redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --daemonize no
}

socat_echo() { start_server "$1" socat "TCP-LISTEN:$1,bind=127.0.0.1,reuseaddr,fork" EXEC:cat; }

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


# ---- tests ---------------------------------------------------------------------

t_usage() {
    local rc
    $KACAT >/dev/null 2>&1; check "no arguments exit 2" [ $? = 2 ]
    "$KACAT" --no-such-option 127.0.0.1 1 >/dev/null 2>&1; check "unknown option exits 2" [ $? = 2 ]
    "$KACAT" --keepalive-count x 127.0.0.1 1 >/dev/null 2>&1; check "non-number exits 2" [ $? = 2 ]
    "$KACAT" --max-attempts -1 127.0.0.1 1 >/dev/null 2>&1; check "negative number exits 2" [ $? = 2 ]
    $KACAT 127.0.0.1 1 extra >/dev/null 2>&1; check "third argument exits 2" [ $? = 2 ]
    "$KACAT" --connect-timeout >/dev/null 2>&1; check "missing value exits 2" [ $? = 2 ]
    "$KACAT" --backoff-jitter 2 127.0.0.1 1 >/dev/null 2>&1; check "value the library rejects exits 2" [ $? = 2 ]
    "$KACAT" --heartbeat-interval 1000 127.0.0.1 1 >/dev/null 2>&1; check "heartbeat interval without text exits 2" [ $? = 2 ]
    $KACAT 127.0.0.1 99999 </dev/null >/dev/null 2>&1; check "port out of range exits 2" [ $? = 2 ]
    "$KACAT" --help >"$T/help" 2>&1; rc=$?
    check "--help exits 0" [ $rc = 0 ] || return
    check "--help shows the keepalive default from ka_config_init" has_line "$T/help" "keepalive-idle MS.*\[5000\]"
    check "--help shows the send buffer default" has_line "$T/help" "send-buffer BYTES.*\[65536\]"
    check "--help documents the hook variables" has_line "$T/help" "KA_DELAY_MS"
}

t_socat_echo_binary() {
    local p
    need socat || return
    p=$(free_port); check "socat echo starts" socat_echo "$p" || return
    head -c 4096 /dev/urandom >"$T/data"
    printf 'every byte value:' >>"$T/data"
    for i in $(seq 0 255); do printf '%b' "\\0$(printf %03o "$i")"; done >>"$T/data"
    timeout 30 "$KACAT" --linger 10000 127.0.0.1 "$p" <"$T/data" >"$T/out" 2>"$T/err"
    check "kacat exits 0 after input ends" [ $? = 0 ] || { cat "$T/err"; return; }
    check "the echo is byte-identical" cmp -s "$T/data" "$T/out"
    check "stderr says where it connected" has_line "$T/err" "connected to 127.0.0.1:$p"
}

t_redis_restart() {
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
    check "the loss is classified as peer closed" has_line "$T/err" "lost after .*: peer closed"
    check "redis-server starts again" start_redis "$p" || return
    check "kacat reconnects by itself" wait_until 20 count_is_at_least "$T/err" "connected to 127.0.0.1:$p" 2 || return
    printf 'PING\r\n' >&7
    check "the next PING answers" wait_until 20 count_is_at_least "$T/out" "+PONG" 2 || return
    end_input_and_wait 20
    check "kacat exits 0 when input ends" [ "$kacat_rc" = 0 ]
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
    check "kacat exits 0" [ "$kacat_rc" = 0 ]
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
    check "kacat exits 0" [ "$kacat_rc" = 0 ]
    check "all 50000 bytes arrived intact" cmp -s "$T/data" "$T/sink"
}

# sink_time TOOL PORT: sends $T/big to a fresh socat sink with TOOL; sets
# took_ms. The sink exits after the connection, so its file is complete then.
sink_time() {
    local tool=$1 p=$2 t0 rc sink=$T/sink.$1
    start_server "$p" socat -u "TCP-LISTEN:$p,bind=127.0.0.1,reuseaddr" "OPEN:$sink,creat,trunc" || return 1
    t0=$(now_ms)
    if [ "$tool" = kacat ]; then timeout 60 "$KACAT" -q --linger 30000 127.0.0.1 "$p" <"$T/big"
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
    timeout 60 "$KACAT" -q --linger 30000 127.0.0.1 "$p" <"$T/data" >"$T/out" 2>"$T/err"
    check "kacat exits 0" [ $? = 0 ] || { cat "$T/err"; return; }
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
        check "$h hook ran" wait_until 10 test -f "$T/$h" || return
    done
    check "connect: KA_EVENT" has_line "$T/connect.0" "^KA_EVENT=connect$"
    check "connect: KA_HOST" has_line "$T/connect.0" "^KA_HOST=127.0.0.1$"
    check "connect: KA_PORT" has_line "$T/connect.0" "^KA_PORT=$p$"
    check "connect: KA_REASON none" has_line "$T/connect.0" "^KA_REASON=none$"
    check "disconnect: reason peer closed or reset" has_line "$T/disconnect.0" "^KA_REASON=peer_\(closed\|reset\)$"
    check "retry 1: KA_ATTEMPT" has_line "$T/retry.1" "^KA_ATTEMPT=1$"
    check "retry 1: KA_DELAY_MS is the 100 ms asked for" has_line "$T/retry.1" "^KA_DELAY_MS=100$"
    check "retry 2: refused" has_line "$T/retry.2" "^KA_REASON=refused$"
    check "retry 2: KA_ERRNO is ECONNREFUSED" has_line "$T/retry.2" "^KA_ERRNO=111$"
    check "retry 2: delay doubled" has_line "$T/retry.2" "^KA_DELAY_MS=200$"
    check "give_up: KA_EVENT" has_line "$T/give_up.3" "^KA_EVENT=give_up$"
    check "stderr says it gave up" has_line "$T/err" "gave up after 3 attempts: refused (ECONNREFUSED)"
}

t_exec_hook_failures() {
    local p t0
    need socat || return
    p=$(free_port); check "socat echo starts" socat_echo "$p" || return
    echo hi | timeout 30 "$KACAT" --exec 'exit 7' 127.0.0.1 "$p" >"$T/out" 2>"$T/err"
    check "a failing hook is not fatal" [ $? = 0 ] || return
    check "its exit status is reported" has_line "$T/err" "hook for connect failed: exit status 7"
    check "the data still went through" has_line "$T/out" "^hi$"
    echo hi | timeout 30 "$KACAT" --exec 'no-such-command-here' 127.0.0.1 "$p" >/dev/null 2>"$T/err2"
    check "a missing command is reported" has_line "$T/err2" "exit status 127"
    t0=$(now_ms)
    echo hi | timeout 30 "$KACAT" --linger 0 --exec 'sleep 3' 127.0.0.1 "$p" >"$T/out3" 2>"$T/err3"
    check "a slow hook does not hold kacat up" [ $(( $(now_ms) - t0 )) -lt 3500 ]
    check "kacat says it left the hook running" has_line "$T/err3" "hook still running"
}

t_give_up() {
    local p rc
    p=$(free_port)
    echo "never sent" | timeout 30 "$KACAT" "${FAST[@]}" --max-attempts 2 127.0.0.1 "$p" >/dev/null 2>"$T/err"
    rc=$?
    check "give-up exits 3" [ "$rc" = 3 ]
    check "stderr says so" has_line "$T/err" "gave up after 2 attempts"
    check "unsent input is not dropped silently" has_line "$T/err" "11 bytes of input were never sent"
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
    check "says what was not sent" has_line "$T/err" "interrupted; 7 bytes of input were not sent"
    exec 7>&-
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
    start_kacat --heartbeat 'PING\r\n' --heartbeat-interval 200 127.0.0.1 "$p"
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
    echo hi | timeout 30 "$KACAT" --heartbeat x --heartbeat-interval 100 --linger 1500 127.0.0.1 "$p" >/dev/null 2>"$T/err"
    check "kacat exits 0" [ $? = 0 ] || cat "$T/err"
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
    check "SO_LINGER 0 is named peer reset" wait_until 20 has_line "$T/err" "lost after .*: peer reset (ECONNRESET)$" || return
    check "a closed port is named refused" wait_until 20 has_line "$T/err" "connect failed: refused (ECONNREFUSED); retrying in" || return
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

echo "kacat suite: $KACAT against redis-server and socat on 127.0.0.1"
[ -x "$KACAT" ] || { echo "$KACAT missing: run make"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
run_test "bad usage exits 2; --help shows the library defaults" t_usage
run_test "socat echo: binary input comes back byte-identical" t_socat_echo_binary
run_test "redis: PING answers, redis restarts, kacat reconnects, PING answers" t_redis_restart
run_test "input typed during an outage arrives after the reconnect" t_queued_through_outage
run_test "a full queue pauses input until the server is back; nothing lost" t_queue_full_waits
run_test "20 MiB to a socat sink arrive byte-identical, about as fast as socat" t_big_file
run_test "4 MiB through a socat echo come back byte-identical" t_echo_big_both_ways
run_test "--exec hook sees KA_EVENT, KA_REASON, KA_ERRNO, KA_ATTEMPT, KA_DELAY_MS, KA_HOST, KA_PORT" t_exec_hook_env
run_test "--exec failures are reported, not fatal, and do not block" t_exec_hook_failures
run_test "giving up exits 3 and reports unsent input" t_give_up
run_test "SIGINT exits 130 and reports unsent input" t_interrupt
run_test "--heartbeat 'PING\r\n' keeps redis answering while input is idle" t_heartbeat
run_test "no heartbeat after the final half-close; a server that never closes ends with --linger" t_heartbeat_after_half_close
run_test "a socket above FD_SETSIZE falls back to poll()" t_high_fd
run_test "flaky_server: FIN, RST and a closed port are each named; kacat comes back" t_flaky_server
run_test "own_loop: the embedding example echoes through socat" t_own_loop
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
