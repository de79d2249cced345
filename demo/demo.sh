#!/bin/sh
# make demo: about twenty seconds of a misbehaving server and a client that
# keeps its connection anyway. Starts demo/flaky_server on loopback, feeds
# demo/kacat one numbered line a second, shows what both say, cleans up.
# Usage: demo/demo.sh   (after make; run from anywhere)
set -u
cd "$(dirname "$0")/.." || exit 1
for p in demo/kacat demo/flaky_server; do
    [ -x "$p" ] || { echo "demo: $p is missing; run make first" >&2; exit 1; }
done

LINES_TO_SEND=20
SCHEDULE="3:close,3:reset,2:down=6"
dir=$(mktemp -d) || exit 1
server_pid=""

cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat <<EOF
=== ka_client demo: a connection that survives a flaky server

  flaky_server  an echo server on 127.0.0.1. Every few seconds it closes the
                connection (FIN), resets it (RST), or stops listening for a
                while (connects refused). Schedule: $SCHEDULE
  kacat         the reconnecting cat in demo/kacat.c, fed one line a second.

  Watch for:
  - each disconnect named by its cause (peer closed, peer reset, refused);
  - retry delays doubling (250 ms, 500 ms, 1 s, 2 s, 4 s, less up to 20%
    jitter) while the server flaps: a connection must stay up 2 s before
    the attempt count starts over;
  - each connection opening with kacat's --hello line ("hello, it's kacat"),
    ahead of the lines typed while disconnected, which arrive after it;
  - the last line: where the input went and who closed first. Here the
    server drops the connection while lines are still coming, so they
    go over several connections: kacat exits 5, not 0, and says so.
  Prefixes: "server:" the server's log, "kacat:" kacat's status (stderr),
  "echo|" what came back from the server (stdout).

EOF

# The server picks a free port and names it in its first line.
mkfifo "$dir/server.out" || exit 1
./demo/flaky_server --port 0 --schedule "$SCHEDULE" --duration 40 > "$dir/server.out" &
server_pid=$!
exec 3< "$dir/server.out"
IFS= read -r first <&3 || { echo "demo: the server did not start" >&2; exit 1; }
echo "$first"
port=${first##*:}
cat <&3 &

feed() {
    i=1
    while [ "$i" -le "$LINES_TO_SEND" ]; do
        echo "line $i, typed at $(date +%H:%M:%S)"
        sleep 1                 # pacing, like a person typing
        i=$((i + 1))
    done
}

# Counts the echoed input lines; the hello is not input.
show_echo() {
    n=0
    while IFS= read -r l; do
        printf '        echo| %s\n' "$l"
        case $l in line*) n=$((n + 1)) ;; esac
    done
    echo "$n" > "$dir/echoed"
}

{ feed | { ./demo/kacat --timestamps --backoff-initial 250ms --backoff-max 4s --backoff-jitter 0.2 \
        --backoff-reset 2s --max-attempts 8 --hello "hello, it's kacat\n" "127.0.0.1:$port" 2>&4; echo $? > "$dir/rc"; } \
    | show_echo; } 4>&1

rc=$(cat "$dir/rc")
kill "$server_pid" 2>/dev/null
wait                            # the server and the cat showing its log
server_pid=""
echo
echoed="$(cat "$dir/echoed") of $LINES_TO_SEND lines came back from the server."
case $rc in
0) echo "=== kacat exited 0: every line went over one connection, and kacat closed it;"
   echo "    $echoed" ;;
5) echo "=== kacat exited 5: every line was sent, but over several connections (the"
   echo "    server dropped them in between); bytes in flight at a drop may be lost."
   echo "    $echoed" ;;
3) echo "=== kacat gave up (exit 3): the server stayed away longer than --max-attempts allows." ;;
*) echo "=== kacat exited $rc (see its last line above, and kacat --help)." ;;
esac
cat <<EOF
    Try it by hand:  ./demo/kacat --help        (or: man ./doc/kacat.1)
                     ./demo/flaky_server --port 7000 &  ./demo/kacat -T 127.0.0.1:7000
    Embedding it in your own select() loop: demo/own_loop.c
EOF
exit 0
