# The reconnect storm picture: connect attempts per 100 ms window after the
# server's restart, one line per jitter setting (kabench storm -o files).
#   gnuplot -e "dir='build/bench'; out='BENCHMARKS-storm.svg'; n=1000" bench/storm.gp
# term may be given too (default: SVG, which diffs as text in the repository).
if (!exists("term")) term = "svg size 800,420 dynamic font 'sans,12'"
set terminal @term noenhanced
set output out
set title sprintf("Reconnect storm: %d ka_client clients, server back 1.2 s after a restart", n)
set xlabel "seconds since the restart"
set ylabel "connect attempts per 100 ms"
set key top right
set grid ytics
set style data steps
set arrow from 1.2, graph 0 to 1.2, graph 1 nohead dashtype 2 linecolor "gray40"
set label "server listening again" at 1.1, graph 0.32 rotate by 90 left textcolor "gray40"
plot dir.'/storm_j0.dat'   using 1:2 title 'jitter 0'   lw 2, \
     dir.'/storm_j0.5.dat' using 1:2 title 'jitter 0.5' lw 2, \
     dir.'/storm_j1.dat'   using 1:2 title 'jitter 1'   lw 2
