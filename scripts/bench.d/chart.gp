# chart.gp: scripts/bench --chart. Two panels from a data file whose rows are
#   "label" forkd_rps nginx_rps forkd_cpu_us nginx_cpu_us
# called as: gnuplot -e "data='FILE'; out='PNG'; subtitle='TEXT'" chart.gp
set terminal pngcairo size 1100,460 font "sans,10"
set output out
set multiplot layout 1,2 title "forkd beside nginx (same run, same CPUs) — " . subtitle . \
    "\n* json: forkd's /json beside nginx's /hello; budget: /hello at 64 connections, both held to the same CPU quota"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top left
set xtics scale 0 nomirror
set yrange [0:*]

set title "requests per second (higher is better; log scale)"
set logscale y
set yrange [10000:*]
plot data using 2:xtic(1) title "forkd" lc rgb "#2a7ab0", \
     '' using 3 title "nginx" lc rgb "#8c8c8c"

set title "server CPU µs per request (lower is better)"
unset logscale y
set yrange [0:*]
plot data using 4:xtic(1) title "forkd" lc rgb "#2a7ab0", \
     '' using 5 title "nginx" lc rgb "#8c8c8c"
unset multiplot
