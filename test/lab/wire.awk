# Finds the client's keepalive probes in `tcpdump -tt -n -S -x` output.
#
# A keepalive probe is a pure ACK (length 0, or 1 with a garbage byte) from
# the client whose sequence number is snd_nxt - 1: one byte the server has
# already acknowledged, so it must answer with an ACK. tcpdump prints no
# sequence number for a pure ACK, so it is read from the hex dump (-x).
#
# Prints one line per probe and for the client's RST:
#   answered|probe|rst  ms-since-the-last-packet-received-or-probe-sent
# Usage: awk -v cli=CLIENT_IP -f wire.awk tcpdump.txt

function hexval(h,    i, v) {
    v = 0
    for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
    return v
}

# The packet collected so far: header line fields and hex bytes.
function flush(    ihl, seq, from_cli, len, m) {
    if (t == "") return
    from_cli = index(src, cli ".") == 1
    ihl = hexval(substr(hex, 2, 1))                   # IPv4 header length in words
    seq = hexval(substr(hex, ihl * 8 + 9, 8))         # TCP sequence number
    len = 0
    if (match(hdr, /length [0-9]+/)) len = substr(hdr, RSTART + 7, RLENGTH - 7) + 0
    if (from_cli) {
        if (flags ~ /R/) {
            out[++n] = "rst " int((t - last) * 1000 + 0.5)
        } else if (flags == "[.]" && len <= 1 && have_nxt && seq == (nxt + 4294967295) % 4294967296) {
            out[++n] = "probe " int((t - last) * 1000 + 0.5)
            last = t; pending = n
        } else {
            m = seq + len + (flags ~ /[SF]/ ? 1 : 0)
            if (!have_nxt || m > nxt) nxt = m % 4294967296
            have_nxt = 1
        }
    } else {
        last = t                                      # anything received
        if (pending) { sub(/^probe/, "answered", out[pending]); pending = 0 }
    }
    t = ""
}

/^[0-9]+\.[0-9]+ IP / {
    flush()
    t = $1; src = $3; hdr = $0; hex = ""
    flags = ""; if (match($0, /Flags \[[^]]*\]/)) flags = substr($0, RSTART + 6, RLENGTH - 6)
    next
}
/^[ \t]+0x[0-9a-f]+:/ { for (i = 2; i <= NF; i++) hex = hex $i }

END {
    flush()
    for (i = 1; i <= n; i++) print out[i]
}
