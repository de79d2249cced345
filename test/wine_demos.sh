#!/bin/bash
# The Windows demos under Wine, run by test/wine.sh
# in its prepared prefix (WINEPREFIX, WINE set; demo/*.exe built). Wine
# shares the host's network stack, so the servers are Linux programs on
# 127.0.0.1: a socat echo (or, without socat, the Linux demo/flaky_server
# with a schedule that never fires), and the Linux demo/kacat talks to
# flaky_server.exe. Every wait is a deadline loop; servers run in their own
# process groups and are killed on exit.
# Ends with "N passed, N failed, N skipped", which test/wine.sh adds in.
# Usage: test/wine_demos.sh [NAME-SUBSTRING]
set -u
cd "$(dirname "$0")/.." || exit 1
wine=${WINE:-wine}
FILTER=${1:-}
. test/shlib.sh

# A Linux echo server on 127.0.0.1:PORT.
echo_server() {
    if command -v socat >/dev/null 2>&1; then
        start_server "$1" socat "TCP-LISTEN:$1,bind=127.0.0.1,reuseaddr,fork" EXEC:cat
    elif [ -x demo/flaky_server ]; then
        start_server "$1" ./demo/flaky_server --port "$1" --schedule 3600:close --duration 300
    else
        echo "    no socat and no Linux demo/flaky_server: cannot start an echo server"
        return 1
    fi
}

# start_kacat ARGS...: kacat.exe reading the fifo $T/in (held open on fd 7).
start_kacat() {
    mkfifo "$T/in"
    "$wine" demo/kacat.exe "$@" <"$T/in" >"$T/out" 2>"$T/err" &
    kacat_pid=$!
    procs="$procs $kacat_pid"
    exec 7>"$T/in"
}

# ---- tests ------------------------------------------------------------------------

t_help() {
    local want
    timeout 60 "$wine" demo/kacat.exe --help >"$T/help" 2>&1
    check "--help exits 0" [ $? = 0 ] || { show "$T/help"; return; }
    check "--exec runs cmd.exe" has_line "$T/help" "run CMD with cmd.exe /d /s /c"
    timeout 60 "$wine" demo/kacat.exe >/dev/null 2>&1
    check "no arguments exit 2" [ $? = 2 ]
    want=$(sed -n 's/^#define KA_VERSION_STRING "\(.*\)"/\1/p' ka_client.h)
    timeout 60 "$wine" demo/kacat.exe --version >"$T/version" 2>&1
    check "--version names kacat and the library ($want)" has_line "$T/version" "^kacat $want .*ka_client library $want$"
    timeout 60 "$wine" demo/kacat.exe -qx 127.0.0.1 1 >/dev/null 2>"$T/err"
    check "a bad letter in a cluster exits 2" [ $? = 2 ]
    check "and is named" has_line "$T/err" "unknown option '-x' in '-qx'"
    timeout 60 "$wine" demo/kacat.exe --backoff-jitter 2 127.0.0.1 1 >/dev/null 2>"$T/err"
    check "a value the library rejects is named by its option" has_line "$T/err" "^kacat: --backoff-jitter must be within 0..1 (given: 2)$"
    check "--version says there is no TLS in this build" has_line "$T/version" "^TLS: not in this build$"
    timeout 60 "$wine" demo/kacat.exe --tls 127.0.0.1 1 </dev/null >/dev/null 2>"$T/err"
    check "--tls exits 2" [ $? = 2 ]
    check "and says why" has_line "$T/err" "^kacat: --tls: kacat was built without TLS$"
}

# make_data FILE: 1 MiB of random bytes (more than the send queue and the
# input socket pair hold, so backpressure takes part) and every byte value.
make_data() {
    head -c $((1024 * 1024)) /dev/urandom >"$1"
    for i in $(seq 0 255); do printf '%b' "\\0$(printf %03o "$i")"; done >>"$1"
}

t_file_echo() {
    local p
    p=$(free_port); check "echo server starts" echo_server "$p" || return
    make_data "$T/data"
    timeout 120 "$wine" demo/kacat.exe --linger 20s "127.0.0.1:$p" <"$T/data" >"$T/out" 2>"$T/err"
    check "kacat.exe exits 0 after input ends" [ $? = 0 ] || { show "$T/err"; return; }
    check "the echo is byte-identical (no CRLF, nothing lost)" cmp -s "$T/data" "$T/out"
    check "stderr says where it connected (HOST:PORT was split)" has_line "$T/err" "connected to 127.0.0.1:$p"
    check "the last line: one connection, kacat closed first" ends_with "$T/err" "exit 0: all input sent (1048832 bytes) over one connection; kacat closed first, then the server$"
}

t_pipe_echo() {
    local p
    p=$(free_port); check "echo server starts" echo_server "$p" || return
    make_data "$T/data"
    cat "$T/data" | timeout 120 "$wine" demo/kacat.exe -q --linger 20s 127.0.0.1 "$p" >"$T/out" 2>"$T/err"
    check "kacat.exe exits 0 after the pipe ends" [ "${PIPESTATUS[1]}" = 0 ] || { show "$T/err"; return; }
    check "the echo is byte-identical" cmp -s "$T/data" "$T/out"
}

t_restart() {
    local p s1
    p=$(free_port); check "echo server starts" echo_server "$p" || return
    s1=$last_server
    start_kacat "${FAST[@]}" 127.0.0.1 "$p"
    echo "before the outage" >&7
    check "first line echoed" wait_until 30 has_line "$T/out" "before the outage" || { show "$T/err"; return; }
    stop_server "$s1"
    check "kacat.exe reports the connection lost" wait_until 20 has_line "$T/err" "connection lost after .*: peer closed" || { show "$T/err"; return; }
    check "a closed port is named refused (WSA error 10061)" wait_until 20 has_line "$T/err" "connect failed: refused (connection refused, WSA error 10061); retrying in" || return
    echo "typed during the outage" >&7
    check "kacat.exe says the input waits" wait_until 20 has_line "$T/err" "waiting for the connection" || return
    check "echo server starts again" echo_server "$p" || return
    check "kacat.exe reconnects by itself" wait_until 30 count_is_at_least "$T/err" "connected to 127.0.0.1:$p" 2 || return
    check "the queued line arrives after the reconnect" wait_until 20 has_line "$T/out" "typed during the outage" || return
    printf 'before the outage\ntyped during the outage\n' >"$T/want"
    check "nothing lost, nothing doubled, in order" cmp -s "$T/want" "$T/out"
    exec 7>&-
    check "kacat.exe ends when its input does" wait_for_kacat 30 || return
    check "exit status 5: the input went over two connections" [ "$kacat_rc" = 5 ] || show "$T/err"
    check "the last line says so" ends_with "$T/err" "exit 5: all input sent (42 bytes), split over 2 connections"
}

t_exec() {
    local p
    p=$(free_port); check "echo server starts" echo_server "$p" || return
    echo hi | timeout 60 "$wine" demo/kacat.exe \
        --exec 'echo hook %KA_EVENT% %KA_REASON% %KA_ERRNO% %KA_ATTEMPT% %KA_DELAY_MS% %KA_HOST% %KA_PORT%' \
        127.0.0.1 "$p" >"$T/out" 2>"$T/err"
    check "kacat.exe exits 0" [ $? = 0 ] || { show "$T/err"; return; }
    check "the connect hook saw its variables (its output on stderr)" wait_until 5 has_line "$T/err" "^hook connect none 0 0 0 127.0.0.1 $p$" || { show "$T/err"; return; }
    check "stdout is the server's bytes only" [ "$(cat "$T/out")" = hi ]
    p=$(free_port)
    echo "never sent" | timeout 60 "$wine" demo/kacat.exe "${FAST[@]}" --max-attempts 2 \
        --exec 'echo hook %KA_EVENT% %KA_REASON% %KA_ERRNO% %KA_ATTEMPT% %KA_DELAY_MS%' 127.0.0.1 "$p" >/dev/null 2>"$T/err2"
    check "give-up exits 3" [ $? = 3 ] || { show "$T/err2"; return; }
    check "retry hook: refused, WSAECONNREFUSED (10061), attempt 1, 100 ms" wait_until 10 has_line "$T/err2" "^hook retry refused 10061 1 100$"
    check "give_up hook ran" wait_until 10 has_line "$T/err2" "^hook give_up refused 10061 2 0$"
    check "stderr says it gave up" has_line "$T/err2" "gave up after 2 attempts: refused (connection refused, WSA error 10061)"
    check "unsent input is reported" ends_with "$T/err2" "exit 3: none of the input sent (11 bytes); gave up"
    echo hi | timeout 60 "$wine" demo/kacat.exe --exec 'exit 7' 127.0.0.1 1 --max-attempts 1 >/dev/null 2>"$T/err3"
    check "a failing hook is reported" has_line "$T/err3" "hook for give_up failed: exit status 7" || show "$T/err3"
}

t_interrupt() {
    local p
    p=$(free_port)
    start_kacat "${FAST[@]}" 127.0.0.1 "$p"
    echo "queued" >&7
    check "input is queued" wait_until 30 has_line "$T/err" "waiting for the connection" || return
    kill -INT "$kacat_pid"
    check "kacat.exe ends on SIGINT (Wine: Ctrl+C)" wait_for_kacat 10 || return
    check "exit status 130" [ "$kacat_rc" = 130 ]
    check "says what was not sent" has_line "$T/err" "interrupted while \(connecting\|backing off\); 7 bytes of input not sent"
}

# --once, combined short flags and durations, and hooks one at a time in
# event order (cmd.exe's echo of each event, on kacat's stderr).
t_once_and_hooks() {
    local p t0 took
    p=$(free_port)
    t0=$(now_ms)
    timeout 60 "$wine" demo/kacat.exe --once "127.0.0.1:$p" </dev/null >/dev/null 2>"$T/err"
    check "--once to a refused port exits 1" [ $? = 1 ] || { show "$T/err"; return; }
    took=$(( $(now_ms) - t0 ))
    check "promptly, Wine's start-up included ($took ms)" [ "$took" -lt 5000 ]
    check "--once: the last line" ends_with "$T/err" "exit 1: .*; no connection (--once): refused (connection refused, WSA error 10061)$"
    timeout 60 "$wine" demo/kacat.exe -qn4 --backoff-initial 0.05s --backoff-max 50ms --backoff-jitter 0 \
        --exec 'echo hook %KA_EVENT% %KA_ATTEMPT% %KA_COALESCED%' "127.0.0.1:$p" </dev/null >/dev/null 2>"$T/err2"
    check "-qn4 gives up, exit 3" [ $? = 3 ] || { show "$T/err2"; return; }
    tr -d '\r' <"$T/err2" | grep '^hook ' >"$T/hooks"
    printf 'hook retry 1 0\nhook retry 2 0\nhook retry 3 0\nhook give_up 4 0\n' >"$T/want"
    check "every hook ran, one after the other, in event order" cmp -s "$T/want" "$T/hooks" || show "$T/hooks"
}

t_own_loop() {
    local p
    p=$(free_port); check "echo server starts" echo_server "$p" || return
    printf 'hello from own_loop\n' | timeout 60 "$wine" demo/own_loop.exe 127.0.0.1 "$p" >"$T/out" 2>&1
    check "own_loop.exe exits 0" [ "${PIPESTATUS[1]}" = 0 ] || { show "$T/out"; return; }
    check "it connected" has_line "$T/out" "^\* connected$"
    check "the line came back through its select() loop" has_line "$T/out" "^< hello from own_loop$"
}

# flaky_server.exe, told apart by the Linux kacat, then by kacat.exe.
t_flaky_server() {
    local p
    [ -x demo/kacat ] || { skip "the Linux demo/kacat is not built"; return; }
    p=$(free_port)
    check "flaky_server.exe starts" start_server "$p" "$wine" demo/flaky_server.exe --port "$p" \
        --schedule "1:close,1:reset,1:down=1.5" --duration 60 || return
    start_linux_kacat "$p"
    check "its graceful close is named peer closed" wait_until 20 has_line "$T/err" "lost after .*: peer closed$" || { show "$T/err"; return; }
    check "its SO_LINGER 0 close is named peer reset" wait_until 20 has_line "$T/err" "lost after .*: peer reset (connection reset by peer, errno 104)$" || return
    check "its closed port is named refused" wait_until 20 has_line "$T/err" "connect failed: refused (connection refused, errno 111); retrying in" || return
    check "kacat is back after the server is" wait_until 20 count_is_at_least "$T/err" "^kacat: connected to" 4 || return
    echo "still echoing" >&7
    check "and the echo works again" wait_until 20 has_line "$T/out" "^still echoing$"
    check "the server said what it did" has_line "$T/server.log" "reset 1 connection (RST"
}

start_linux_kacat() {
    mkfifo "$T/in"
    ./demo/kacat "${FAST[@]}" --backoff-reset 500 127.0.0.1 "$1" <"$T/in" >"$T/out" 2>"$T/err" &
    kacat_pid=$!
    procs="$procs $kacat_pid"
    exec 7>"$T/in"
}

# An RST as seen by kacat.exe. Wine 8 hands the application an orderly
# EOF for it (recv() returns 0), so kacat.exe says "peer closed": listed
# as skipped with that reason; it passes where a reset is reported.
t_reset_seen_by_kacat_exe() {
    local p
    p=$(free_port)
    check "flaky_server.exe starts" start_server "$p" "$wine" demo/flaky_server.exe --port "$p" \
        --schedule "1:reset" --duration 60 || return
    start_kacat "${FAST[@]}" 127.0.0.1 "$p"
    check "the server resets the connection" wait_until 30 has_line "$T/server.log" "reset 1 connection" || return
    check "kacat.exe notices" wait_until 20 has_line "$T/err" "connection lost after" || { show "$T/err"; return; }
    if has_line "$T/err" "lost after .*: peer reset (connection reset by peer, WSA error 10054)$"; then return; fi
    if has_line "$T/err" "lost after .*: peer closed$"; then
        skip "Wine reports the RST to the application as an orderly EOF (recv() returns 0): 'peer closed'"
        return
    fi
    check "the reset is named peer reset (WSA error 10054)" false
    show "$T/err"
}

# --hello and a server list: the first refuses, the second echoes; the
# hello comes back first. --keep-sending: a socat that sends a banner and
# ends its side still gets the input (kacat.exe closes its stdout then).
t_sessions() {
    local p r
    command -v socat >/dev/null 2>&1 || { skip "socat not installed (make deps)"; return; }
    p=$(free_port); r=$(free_port)
    check "echo server starts" echo_server "$p" || return
    echo data | timeout 60 "$wine" demo/kacat.exe "${FAST[@]}" --hello 'HELLO\n' 127.0.0.1 "$r" "127.0.0.1:$p" >"$T/out" 2>"$T/err"
    check "kacat.exe exits 0" [ $? = 0 ] || { show "$T/err"; return; }
    check "it skipped the refusing server" has_line "$T/err" "connected to 127.0.0.1:$p$"
    check "the hello came back first, then the input" [ "$(tr -d '\r' <"$T/out" | tr '\n' ' ')" = "HELLO data " ] || show "$T/out"
    p=$(free_port)
    check "a half-closing socat starts" start_server "$p" socat -t 60 "TCP-LISTEN:$p,bind=127.0.0.1,reuseaddr" \
        "SYSTEM:echo banner!!OPEN:$T/sink,creat,trunc" || return
    make_data "$T/data"
    timeout 120 "$wine" demo/kacat.exe --keep-sending 127.0.0.1 "$p" <"$T/data" >"$T/out2" 2>"$T/err2"
    check "--keep-sending: exit 0" [ $? = 0 ] || { show "$T/err2"; return; }
    check "the banner on stdout" [ "$(tr -d '\r' <"$T/out2")" = banner ]
    check "the server got all of the input" wait_until 20 cmp -s "$T/data" "$T/sink"
    check "the last line says who ended first" ends_with "$T/err2" "the server ended its side first; kacat sent the rest, then closed$"
}

# --stats: the library's counters at exit (the kernel's view only where
# Wine gives SIO_TCP_INFO; the line says nothing it was not given).
t_stats() {
    local p
    p=$(free_port); check "echo server starts" echo_server "$p" || return
    echo hello | timeout 60 "$wine" demo/kacat.exe -q --stats 127.0.0.1 "$p" >"$T/out" 2>"$T/err"
    check "kacat.exe exits 0" [ $? = 0 ] || { show "$T/err"; return; }
    check "the statistics at exit, even with -q" has_line "$T/err" \
        "^kacat: stats: 1 attempt, 1 connection, 1 ended (1 peer closed); sent 6 bytes in 1 message, received 6 bytes in [0-9]* messages\?, 0 bytes dropped; connected " || show "$T/err"
    echo "    $(tr -d '\r' <"$T/err" | grep 'stats:')"
}

echo "wine demos: demo/*.exe under $("$wine" --version 2>/dev/null </dev/null), servers on 127.0.0.1"
for f in demo/kacat.exe demo/own_loop.exe demo/flaky_server.exe; do
    [ -f "$f" ] || { echo "$f missing"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
done
run_test "kacat.exe: --help names cmd.exe, --version, bad usage exits 2 and names the option; no TLS here" t_help
run_test "kacat.exe: 1 MiB file through a Linux echo server comes back byte-identical" t_file_echo
run_test "kacat.exe: the same from a pipe" t_pipe_echo
run_test "kacat.exe: the server restarts; kacat.exe reconnects, queued input arrives, exit 5 (split)" t_restart
run_test "kacat.exe: --exec runs cmd.exe with the KA_ variables; give-up exits 3" t_exec
run_test "kacat.exe: SIGINT exits 130 and reports unsent input" t_interrupt
run_test "kacat.exe: --once exits 1 on a refused port; -qn4 hooks run one at a time, in order" t_once_and_hooks
run_test "own_loop.exe: the embedding example echoes through a Linux server" t_own_loop
run_test "flaky_server.exe: FIN, RST and a closed port, named by the Linux kacat" t_flaky_server
run_test "kacat.exe names an RST from flaky_server.exe peer reset" t_reset_seen_by_kacat_exe
run_test "kacat.exe: --hello and a list of servers; --keep-sending to a server that half-closed first" t_sessions
run_test "kacat.exe: --stats prints the library's counters at exit" t_stats
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
