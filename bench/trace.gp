# A cable pulled under load, as ka_client reports it (kabench trace files):
# the smoothed round trip and its variation above, retransmissions and the
# data waiting for an acknowledgement below, from ka_client_stats every
# 20 ms; the pull, on_health's warning, the busy deadline and the reported
# TIMEOUT marked in both.
#   gnuplot -e "data='build/bench/trace.dat'; marks='build/bench/trace_marks.gp'; out='BENCHMARKS-trace.svg'" bench/trace.gp
# term may be given too (default: SVG, which diffs as text in the repository).
if (!exists("term")) term = "svg size 860,560 dynamic font 'sans,12'"
load marks
set terminal @term noenhanced
set output out

xmax = ended + 0.6
set xrange [tmin:xmax]
set grid ytics
set key top left
# headroom above the data for the keys and the labels
stats data using 2 nooutput
rtt_top = STATS_max * 1.7
stats data using 5 nooutput
retrans_top = STATS_max > 0 ? STATS_max * 1.9 : 1
stats data using 6 nooutput
kib_top = STATS_max > 0 ? STATS_max * 1.9 : 1

# the marks: a dashed line in each panel, labelled in the top one
mark(x) = sprintf("set arrow from %f, graph 0 to %f, graph 1 nohead dashtype 2 linecolor 'gray40' front", x, x)
eval mark(0)
eval mark(warn)
eval mark(ended)
set arrow from deadline, graph 0 to deadline, graph 1 nohead dashtype 3 linecolor 'red' front

set multiplot layout 2,1 title sprintf("A cable pulled while ka_client streams 100 kB/s (20 ms each way, busy deadline %.0f s)", busy / 1000.0)

set lmargin 10
set rmargin 10
set tmargin 2
set bmargin 1
set format x ""
set ylabel "round trip, ms"
set yrange [0:rtt_top]
set key at graph 0.02, graph 0.97 left Left reverse
set label 1 "cable pulled" at 0, graph 0.93 left offset 0.5, 0 textcolor "gray30"
set label 2 sprintf("on_health: degraded (+%.0f ms)", warn * 1000) at warn, graph 0.80 left offset 0.5, 0 textcolor "gray30"
set label 3 "busy deadline" at deadline, graph 0.93 right offset -0.5, 0 textcolor "red"
set label 4 sprintf("TIMEOUT reported (+%.0f ms)", ended * 1000) at ended, graph 0.80 right offset -0.5, 0 textcolor "gray30"
plot data using 1:($2 - $3 > 0 ? $2 - $3 : 0):($2 + $3) with filledcurves fillcolor "#c6dbef" title "rtt ± rttvar", \
     data using 1:2 with lines linewidth 2 linecolor "#08519c" title "smoothed rtt (rtt_us)"

unset label
set tmargin 0
set bmargin 4
set format x "%g"
set xlabel "seconds from the pull"
set ylabel "retransmissions"
set yrange [0:retrans_top]
set y2label "KiB"
set y2range [0:kib_top]
set key at graph 0.98, graph 0.97 right
set ytics nomirror
set y2tics
plot data using 1:5 with steps linewidth 2 linecolor "#a50f15" title "segments retransmitted (total_retrans)", \
     data using 1:4 with steps linewidth 2 dashtype 2 linecolor "#fb6a4a" title "timeouts of the oldest data (retransmits)", \
     data using 1:6 axes x1y2 with lines linewidth 1.5 linecolor "#31a354" title "unacknowledged (unacked_bytes)"
unset multiplot
