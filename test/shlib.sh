# Shared harness for the shell test suites (test/kacat_test.sh,
# test/wine_demos.sh, test/demo/sessions_test.sh). Source it after setting
# FILTER; it creates $work and cleans it, and every server started through
# it, on exit (KEEP_WORK=1 keeps $work, each test's logs, for a look).
#
# A test is a function run by `run_test NAME FUNCTION`; `check WHAT CMD...`
# records a failure, `skip WHY` a skip. Every wait is a deadline loop on an
# observable fact (a line in a log, a port in LISTEN state, a process gone),
# never a sleep guess. The caller prints the summary line at the end:
#   echo "$passed passed, $failed failed, $skipped skipped"

work=$(mktemp -d) || exit 1
passed=0 failed=0 skipped=0
groups=""                       # process groups (servers) to kill on exit
procs=""                        # single processes (clients) to kill on exit

cleanup() {
    local p
    for p in $groups; do kill -- "-$p" 2>/dev/null; done
    for p in $procs; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    [ -n "${KEEP_WORK:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cur_failed=0 cur_skipped=""

# check DESCRIPTION COMMAND...: records a failure when COMMAND fails.
check() {
    local what=$1; shift
    if "$@"; then return 0; fi
    echo "    check failed: $what"
    cur_failed=1
    return 1
}

skip() { cur_skipped=$1; echo "    skipped: $1"; }

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# run_test NAME FUNCTION: runs it in its own directory $T, then stops
# whatever it started.
run_test() {
    local name=$1 fn=$2 t0
    [ -n "$FILTER" ] && [[ $name != *"$FILTER"* ]] && return
    cur_failed=0 cur_skipped=""
    t0=$(now_ms)
    mkdir -p "$work/$fn"
    T="$work/$fn"
    "$fn"
    stop_all
    if [ "$cur_failed" = 1 ]; then failed=$((failed + 1)); printf 'FAIL %s' "$name"
    elif [ -n "$cur_skipped" ]; then skipped=$((skipped + 1)); printf 'skip %s' "$name"
    else passed=$((passed + 1)); printf 'ok   %s' "$name"; fi
    echo " ($(( $(now_ms) - t0 )) ms)"
}

# wait_until SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds
# or the deadline passes.
wait_until() {
    local end=$(( $(now_ms) + $1 * 1000 )); shift
    until "$@"; do
        [ "$(now_ms)" -ge "$end" ] && return 1
        sleep 0.05
    done
}

# Log readers ignore CR, which Windows programs under Wine write.
has_line() { tr -d '\r' 2>/dev/null <"$1" | grep -q -- "$2"; }
lacks() { ! has_line "$@"; }
count_is_at_least() { [ "$(tr -d '\r' 2>/dev/null <"$1" | grep -c -- "$2")" -ge "$3" ]; }
show() { tr -d '\r' <"$1" | sed 's/^/    | /'; }
gone() { ! kill -0 "$1" 2>/dev/null; }
need() { command -v "$1" >/dev/null 2>&1 || { skip "$1 not installed (make deps)"; return 1; }; }

# listening PORT: a socket in LISTEN state on it. Read from /proc so the
# probe does not connect and use up a one-shot server's only connection.
listening() {
    local hex
    hex=$(printf ':%04X ' "$1")
    grep -q "${hex}[0-9A-F:]* 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# ipv6_loopback: ::1 is configured (containers may run without IPv6).
ipv6_loopback() { grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null; }

# stuck PORT: a connection to PORT whose data backs up both ways: the
# server holds unread bytes (rx_queue) and the client unacknowledged or
# unsent ones (tx_queue). How a test knows a never-reading server has
# closed its window, without guessing a time.
stuck() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" '
        $4 == "01" { split($5, q, ":")
                     if (substr($2, length($2) - 4) == p && q[2] != "00000000") srv = 1
                     if (substr($3, length($3) - 4) == p && q[1] != "00000000") cli = 1 }
        END { exit !(srv && cli) }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# in_use PORT: any socket has it as its local port.
in_use() {
    grep -q "^ *[0-9]*: [0-9A-F]*$(printf ':%04X ' "$1")" /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# free_port: a loopback port nobody uses, below Linux's ephemeral range
# (32768 and up) so no outgoing connection can take it meanwhile.
free_port() {
    local p i
    for i in $(seq 1 50); do
        p=$(( 20000 + RANDOM % 12000 ))
        in_use "$p" || { echo "$p"; return 0; }
    done
    return 1
}

# start_server PORT COMMAND...: runs COMMAND in its own process group (so
# socat's forked children die with it) and waits until PORT listens. The
# server must not inherit fd 7, the writer that decides when a client's
# input ends: the client would never see EOF.
start_server() {
    local port=$1; shift
    setsid "$@" >>"$T/server.log" 2>&1 7>&- &
    last_server=$!
    groups="$groups $last_server"
    wait_until 20 listening "$port" && return 0
    show "$T/server.log"
    return 1
}

stop_server() {
    kill -- "-$1" 2>/dev/null
    wait_until 10 gone "$1"
    wait "$1" 2>/dev/null
    return 0
}

stop_all() {
    local p
    for p in $groups; do kill -- "-$p" 2>/dev/null; done
    for p in $procs; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    groups="" procs=""
    exec 7>&- 2>/dev/null
}

# last_word FILE: kacat's last line ("kacat: exit N: ..."), CR removed.
last_word() { tr -d '\r' 2>/dev/null <"$1" | grep '^kacat: \(.* \)\?exit [0-9]*: ' | tail -n 1; }
# ends_with FILE PATTERN: kacat's last line matches PATTERN.
ends_with() { last_word "$1" | grep -q -- "$2"; }

# Both suites run kacat (start_kacat, theirs, sets kacat_pid).
# wait_for_kacat SECONDS: waits for it to exit; its status in kacat_rc.
wait_for_kacat() {
    kacat_rc=999
    wait_until "$1" gone "$kacat_pid" || return 1
    wait "$kacat_pid"
    kacat_rc=$?
}

# Retry fast and predictably: tests wait on reconnects.
FAST=(--backoff-initial 100 --backoff-max 400 --backoff-jitter 0)
