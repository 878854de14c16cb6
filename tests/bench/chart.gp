# tests/bench/chart.gp - the bench chart: rows/s per strategy (left) and the application's p99
# latency per strategy and alone (right, log scale).
# Called by tests/bench/run.sh as
#   gnuplot -e "term='pngcairo'; rates='r.tsv'; p99s='p.tsv'; out='latest.png'; title='...'" chart.gp
# rates: tab-separated lines "strategy rows_per_s"; p99s: "label app_p99_ms" (the baseline and
# each strategy), or "" for no application chart. "-" marks a missing value, "#" starts a comment.

eval sprintf("set terminal %s size 1200,520 font \",10\"", term)
set output out
set datafile separator "\t"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.8
set grid ytics
set key off
set xtics nomirror rotate by -20
set yrange [0:*]
set multiplot layout 1,(p99s eq "" ? 1 : 2) title title

set title "Backfill throughput (rows/s, higher is better)"
set ylabel "rows/s"
plot rates using 2:xtic(1) linecolor rgb "#3b7dd8", \
     "" using 0:2:(sprintf("%.0f", $2)) with labels offset 0,0.7 notitle

if (p99s eq "") { unset multiplot; exit }

set title "Application p99 latency (ms, log scale, lower is better)"
set ylabel "p99 ms"
set logscale y
set yrange [*:*]
plot p99s using 2:xtic(1) linecolor rgb "#d8683b", \
     "" using 0:2:(sprintf("%.2f", $2)) with labels offset 0,0.7 notitle

unset multiplot
