#!/bin/bash
# Suite "sessions": the session features of ka_client (a handshake sent
# from on_connect, hold_until_ready, replay_until_acked,
# keep_writing_after_fin) as an embedded telemetry user meets them:
#   - demo/telemetry_client against demo/telemetry_server, killed and
#     started again ten times under it: no line lost, and only lines not
#     yet acknowledged when the server died come twice;
#   - a backlog queued while the server was away goes after the LOGIN, and
#     with hold_until_ready only after the server's OK;
#   - demo/mqtt_pub, a QoS 1 publisher, against Debian's mosquitto broker
#     restarted under it, with mosquitto_sub counting what arrived;
#   - demo/kacat --keep-sending uploading 10 MB to a server (socat) that
#     has sent its banner and ended its side.
# Every wait is a deadline loop on an observable fact (a record in a log, a
# port in LISTEN state, unread bytes in a socket, a process gone). Servers
# run in their own process groups and are killed on exit.
# Ends with "N passed, N failed, N skipped", which test/check.sh sums.
# Usage: test/demo/sessions_test.sh [NAME-SUBSTRING]
set -u
cd "$(dirname "$0")/../.." || exit 1
FILTER=${1:-}
. test/shlib.sh

TCLIENT=./demo/telemetry_client
TSERVER=./demo/telemetry_server
MQTT_PUB=./demo/mqtt_pub
KACAT=${KACAT:-./demo/kacat}

# ---- helpers --------------------------------------------------------------------

# running_got LOG N: the running telemetry server has taken N lines (new
# or sent again) and acknowledged some: its client is past the handshake,
# sending, and has had ACKs.
running_got() {
    awk -v n="$2" '$1 == "start" { got = acks = 0 } $1 == "got" { got++ } $1 == "ack" { acks++ }
        END { exit !(got >= n && acks > 0) }' "$1" 2>/dev/null
}

# unread PORT: the server's end of a connection on PORT holds bytes it has
# not read (a stopped server, a client still sending).
unread() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" '$4 == "01" && substr($2, length($2) - 4) == p { split($5, q, ":"); if (q[2] != "00000000") f = 1 }
        END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

start_tserver() { start_server "$1" "$TSERVER" --port "$1" --log "$T/log" "${@:2}"; }

# start_client NAME ARGS...: a demo client in the background, stderr in
# $T/NAME.err; its pid in client_pid.
start_client() {
    local name=$1; shift
    "$@" 2>"$T/$name.err" &
    client_pid=$!
    procs="$procs $client_pid"
}

# wait_client SECONDS: its exit status in client_rc.
wait_client() {
    client_rc=999
    wait_until "$1" gone "$client_pid" || return 1
    wait "$client_pid"
    client_rc=$?
}

# The telemetry log's checks, each an awk program over $T/log that prints
# what is wrong (nothing when all is well).
#   DUP_AFTER_ACK: a line that came again after an ACK covering it had
#   been logged (an ACK N covers lines 1..N: see demo/telemetry_server.c).
#   NO_LOGIN_FIRST: a connection whose first record is not its LOGIN.
#   EARLY_OK: an OK sent after bytes of the backlog had already come.
DUP_AFTER_ACK='$1 == "ack" && $2 > a { a = $2 } $1 == "got" && $2 <= a { print "line " $2 " came again after ACK " a }'
NO_LOGIN_FIRST='$1 == "conn" { want = 1; next } want { if ($1 != "login") print "connection " NR ": first " $0; want = 0 }'
EARLY_OK='$1 == "ok" && $2 != 0 { print "OK after " $2 " bytes of backlog" }'
empty_awk() { [ -z "$(awk "$1" "$2")" ] || { awk "$1" "$2" | head -n 5 | sed 's/^/    | /'; return 1; }; }

# ---- telemetry: ten restarts ------------------------------------------------------

# kill_server HOW: TERM, KILL, or STOP (stopped until the client's lines
# back up unread in its socket, then KILL: a crash under load).
kill_server() {
    local how=$1 pid=$last_server port=$2
    {
        case $how in
        STOP)
            kill -STOP -- "-$pid"
            wait_until 10 unread "$port" || { echo "    no unread bytes at the stopped server"; kill -KILL -- "-$pid"; return 1; }
            kill -KILL -- "-$pid" ;;
        *) kill "-$how" -- "-$pid" ;;
        esac
        wait_until 10 gone "$pid"
        wait "$pid"
    } 2>/dev/null               # no "Killed" from the shell
    return 0
}

t_telemetry_restarts() {
    local p i how label dups conns summary refused restarts="TERM KILL STOP TERM KILL STOP KILL TERM STOP KILL"
    p=$(free_port)
    check "telemetry_server starts" start_tserver "$p" --lines 1000 --ok-after 100 --ack-after 100 || return
    # 15 s of readings: the ten restarts (about 8 s here) happen while they flow.
    start_client client "$TCLIENT" --lines 1000 --every 15 --login sensor-7 --hold --deadline 60 127.0.0.1 "$p"
    i=0
    for how in $restarts; do
        i=$((i + 1))
        check "restart $i: the server has taken 30 lines and acknowledged some" wait_until 30 running_got "$T/log" 30 || return
        refused=$(grep -c "reconnecting in .*(refused)" "$T/client.err")
        label=SIG$how
        [ "$how" = STOP ] && label="SIGSTOP, then SIGKILL"
        check "restart $i: $label" kill_server "$how" "$p" || return
        # Every third restart waits until the client has been refused, so
        # lines pile up in its queue meanwhile; the others come back at once.
        if [ $((i % 3)) = 0 ]; then
            check "restart $i: the client is refused meanwhile" \
                wait_until 10 count_is_at_least "$T/client.err" "reconnecting in .*(refused)" $((refused + 1)) || return
        fi
        check "restart $i: telemetry_server starts again on port $p" start_tserver "$p" --lines 1000 --ok-after 100 --ack-after 100 || return
    done
    check "the client ends: every line acknowledged" wait_client 60 || return
    check "client exit 0" [ "$client_rc" = 0 ] || show "$T/client.err"
    stop_server "$last_server"
    summary=$(grep '^telemetry_server: .* received' "$T/server.log" | tail -n 1)
    echo "    $summary"
    check "1000 lines received, none lost" grep -q "^telemetry_server: 1000 lines received, 0 lost, " <<<"$summary"
    check "no line sent again after its ACK (the server's count)" grep -q "duplicated (0 after their ACK)" <<<"$summary"
    check "11 server processes" grep -q ", 11 server starts$" <<<"$summary"
    check "no line came again after its ACK (the log, read here)" empty_awk "$DUP_AFTER_ACK" "$T/log"
    check "every connection began with its LOGIN" empty_awk "$NO_LOGIN_FIRST" "$T/log"
    check "and nothing else came before the server's OK (hold_until_ready)" empty_awk "$EARLY_OK" "$T/log"
    conns=$(grep -c '^conn$' "$T/log")
    dups=$(sed -n 's/.* lost, \([0-9]*\) duplicated.*/\1/p' <<<"$summary")
    check "at least 11 connections ($conns)" [ "$conns" -ge 11 ]
    echo "    10 restarts (SIGTERM, SIGKILL, SIGSTOP then SIGKILL): $conns connections, ${dups:-?} lines received again, none of them acknowledged before"
}

# ---- telemetry: the backlog after the LOGIN ----------------------------------------

# backlog_run HOLD: 500 lines queued while the server is away, then the
# server comes up and delays its OK by 300 ms.
backlog_run() {
    local p hold=$1
    p=$(free_port)
    start_client client "$TCLIENT" --lines 500 --every 0 --login sensor-7 $hold --deadline 30 127.0.0.1 "$p"
    check "the client queues all 500 lines while the server is away" wait_until 10 has_line "$T/client.err" "all 500 readings made" || return 1
    check "and is refused meanwhile" wait_until 10 has_line "$T/client.err" "(refused)" || return 1
    check "telemetry_server starts" start_tserver "$p" --ok-after 300 --lines 500 || return 1
    check "the client ends: every line acknowledged" wait_client 30 || return 1
    check "client exit 0" [ "$client_rc" = 0 ] || show "$T/client.err"
    stop_server "$last_server"
}

t_backlog_after_login() {
    backlog_run --hold || return
    # start, conn, login, ok 0, then got 1..500 with their acks, in order
    check "the server's first records: conn, the LOGIN, then OK with no byte before it" \
        [ "$(grep -v '^ack ' "$T/log" | sed -n '2,4p' | tr '\n' ' ')" = "conn login sensor-7 ok 0 " ]
    check "then lines 1..500, each once, in order" \
        [ "$(awk '$1 == "got" { printf "%s ", $2 }' "$T/log")" = "$(seq -s ' ' 1 500) " ]
    check "nothing lost, nothing twice" grep -q "^telemetry_server: 500 lines received, 0 lost, 0 duplicated" "$T/server.log"
}

# The same without --hold: the backlog follows the LOGIN at once, so the
# check above can tell the difference.
t_backlog_without_hold() {
    backlog_run "" || return
    check "the LOGIN still comes first" [ "$(sed -n '3p' "$T/log")" = "login sensor-7" ]
    check "but the backlog right after it, before any OK" [ "$(sed -n '4p' "$T/log")" = "got 1" ]
    check "in order all the same" [ "$(awk '$1 == "got" { printf "%s ", $2 }' "$T/log")" = "$(seq -s ' ' 1 500) " ]
}

# ---- MQTT against mosquitto ----------------------------------------------------------

# start_broker PORT: mosquitto with a persistent store in $T, so that the
# subscriber's session (and what is queued for it) survives a restart.
start_broker() {
    cat >"$T/mosquitto.conf" <<EOF
listener $1 127.0.0.1
allow_anonymous true
persistence true
persistence_location $T/
autosave_interval 1
log_dest file $T/mosquitto.log
user $(id -un)
EOF
    start_server "$1" mosquitto -c "$T/mosquitto.conf"
}

# distinct_at_least FILE N: N different payloads arrived.
distinct_at_least() { [ "$(sort -u "$1" | wc -l)" -ge "$2" ]; }

t_mqtt_restarts() {
    local p i total=300 distinct copies sub
    need mosquitto || return
    need mosquitto_sub || return
    p=$(free_port)
    check "mosquitto starts" start_broker "$p" || return
    # QoS 1 and a persistent session (-c -i): what is published while the
    # subscriber reconnects is kept for it, not lost to the test itself.
    mosquitto_sub -h 127.0.0.1 -p "$p" -t ka/test -q 1 -c -i ka-test-sub >"$T/sub.out" 2>"$T/sub.err" &
    sub=$!; procs="$procs $sub"
    check "the subscriber is connected" wait_until 10 has_line "$T/mosquitto.log" "as ka-test-sub" || return
    # 6 s of messages; the subscriber takes a second to come back after
    # each restart, so the restarts are spread over the first 180.
    start_client pub "$MQTT_PUB" --count "$total" --every 20 --topic ka/test --id ka-test-pub --deadline 45 127.0.0.1 "$p"
    for i in 1 2 3; do
        check "restart $i: the subscriber has $((i * 60)) messages" wait_until 30 distinct_at_least "$T/sub.out" $((i * 60)) || return
        stop_server "$last_server"
        check "restart $i: mosquitto starts again on port $p" start_broker "$p" || return
    done
    check "the publisher ends: every PUBLISH acknowledged" wait_client 45 || return
    check "publisher exit 0" [ "$client_rc" = 0 ] || show "$T/pub.err"
    check "every message reached the subscriber at least once" wait_until 20 distinct_at_least "$T/sub.out" "$total" || {
        echo "    $(sort -u "$T/sub.out" | wc -l) of $total distinct"; return; }
    distinct=$(sort -u "$T/sub.out" | wc -l)
    copies=$(wc -l <"$T/sub.out")
    check "and nothing else ($distinct distinct)" [ "$distinct" = "$total" ]
    check "the publisher connected 4 times, each time CONNECT then CONNACK" \
        [ "$(grep -c 'CONNACK: session ready' "$T/pub.err")" -ge 4 ]
    echo "    $total messages over 4 broker processes: $copies deliveries, $((copies - total)) of them twice"
}

# PINGREQ as the heartbeat: an idle publisher keeps its session with the
# broker's PINGRESPs.
t_mqtt_ping() {
    local p
    need mosquitto || return
    p=$(free_port)
    check "mosquitto starts" start_broker "$p" || return
    start_client pub "$MQTT_PUB" --count 3 --keepalive 1 --stay 2600 --id ka-test-ping --deadline 20 127.0.0.1 "$p"
    check "the publisher ends" wait_client 20 || return
    check "exit 0" [ "$client_rc" = 0 ] || show "$T/pub.err"
    check "PINGREQ every 500 ms while idle, each answered" has_line "$T/pub.err" "stayed 2600 ms idle: [4-9] PINGRESP received" || show "$T/pub.err"
    check "one connection: the pings kept it" [ "$(grep -c 'connected (connection' "$T/pub.err")" = 1 ]
}

# ---- kacat --keep-sending --------------------------------------------------------

# half_closer PORT SINK: socat sends a banner, ends its side of the
# connection (socat half-closes when the banner's command is done), and
# goes on writing what arrives to SINK.
half_closer() {
    start_server "$1" socat -t 60 "TCP-LISTEN:$1,bind=127.0.0.1,reuseaddr" "SYSTEM:echo banner!!OPEN:$2,creat,trunc"
}

t_half_close_10mb() {
    local p
    need socat || return
    p=$(free_port)
    head -c $((10 * 1000 * 1000)) /dev/urandom >"$T/up"
    check "a half-closing socat starts" half_closer "$p" "$T/sink" || return
    timeout 60 "$KACAT" --keep-sending 127.0.0.1 "$p" <"$T/up" >"$T/out" 2>"$T/err"
    check "kacat exits 0" [ $? = 0 ] || { show "$T/err"; return; }
    check "the server's end came first" has_line "$T/err" "the server ended its side; still sending"
    check "the banner was printed" [ "$(cat "$T/out")" = banner ]
    check "one connection" [ "$(grep -c 'connected to' "$T/err")" = 1 ]
    check "the server got all 10 MB byte-identical" wait_until 10 cmp -s "$T/up" "$T/sink"
    check "the last line says who ended first" ends_with "$T/err" "exit 0: all input sent (10000000 bytes) over one connection; the server ended its side first; kacat sent the rest, then closed$"
}

echo "sessions suite: telemetry and MQTT demos, kacat --keep-sending, on 127.0.0.1"
for f in "$TCLIENT" "$TSERVER" "$MQTT_PUB" "$KACAT"; do
    [ -x "$f" ] || { echo "$f missing: run make"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
done
run_test "telemetry: 1000 lines through 10 server restarts (TERM, KILL, STOP+KILL): none lost, none resent after its ACK" t_telemetry_restarts
run_test "telemetry: 500 lines queued while the server was away go after the LOGIN, and only after its OK (hold_until_ready)" t_backlog_after_login
run_test "telemetry: without hold_until_ready the backlog follows the LOGIN at once" t_backlog_without_hold
run_test "mqtt_pub: 300 QoS 1 messages through 3 mosquitto restarts all reach mosquitto_sub" t_mqtt_restarts
run_test "mqtt_pub: PINGREQ as the heartbeat keeps an idle session" t_mqtt_ping
run_test "kacat --keep-sending: 10 MB to a server that half-closed first arrive byte-identical on one connection" t_half_close_10mb
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
