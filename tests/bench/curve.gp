# tests/bench/curve.gp - the commit-latency budget's curve: for each budget (ms), the
# application's p99 during the backfill beside the promise (1.25 x the budget) and its p99
# alone (left), and the backfill's rows/s beside backfilld-fast's (right).
# Called by tests/bench/run.sh as
#   gnuplot -e "term='pngcairo'; curve='c.tsv'; base=1.1; fast=300000; out='x.png'; title='...'" curve.gp
# curve: tab-separated lines "budget_ms app_p99_ms rows_per_s label", by budget; "#" starts a
# comment. base: the application's p99 alone (ms); fast: backfilld-fast's rows/s (0: none).

eval sprintf("set terminal %s size 1200,480 font \",10\"", term)
set output out
set termoption noenhanced
set datafile separator "\t"
set grid
set key top left
set xlabel "max_commit_latency (ms)"
set multiplot layout 1,2 title title

set title "Application p99 during the backfill (ms)"
set ylabel "p99 ms"
set yrange [0:*]
plot curve using 1:2 with linespoints pt 7 lw 2 linecolor rgb "#d8683b" title "app p99", \
     "" using 1:2:4 with labels offset 0,1 font ",8" notitle, \
     "" using 1:(1.25 * $1) with lines dt 2 linecolor rgb "#555555" title "1.25 x budget (the promise)", \
     base with lines dt 3 linecolor rgb "#3b9d5d" title "app p99 alone"

set title "Backfill throughput (rows/s)"
set ylabel "rows/s"
set yrange [0:*]
if (fast > 0) {
	plot curve using 1:3 with linespoints pt 7 lw 2 linecolor rgb "#3b7dd8" title "rows/s", \
	     fast with lines dt 2 linecolor rgb "#555555" title "backfilld-fast", \
	     0.2 * fast with lines dt 3 linecolor rgb "#999999" title "20% of backfilld-fast"
} else {
	plot curve using 1:3 with linespoints pt 7 lw 2 linecolor rgb "#3b7dd8" title "rows/s"
}
unset multiplot
