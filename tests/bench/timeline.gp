# tests/bench/timeline.gp - one strategy's run second by second: what the application felt
# (its p99 and max per second), what the daemon's commit probes read and the pace it kept, and
# the server's I/O at that moment (buffer writes by backends, the background writer and
# checkpoints; the kernel's dirty and writeback memory), checkpoints shaded.
# Called by tests/bench/run.sh as
#   gnuplot -e "term='pngcairo'; base='dir/name'; out='x.png'; duration=60; budget=4.4;
#               baseline=1.1; title='...'" timeline.gp
# Files, tab-separated, time in seconds from the strategy's start (any may be empty):
#   base.app.tsv          sec  app_p99_ms  app_max_ms
#   base.probes.tsv       sec  probe_ms  probe_p90_ms
#   base.batches.tsv      sec  pace_percent
#   base.samples.tsv      sec  MB written since the start by backends, the background writer,
#                         the checkpointer; the kernel's dirty_MB, writeback_MB
#   base.checkpoints.tsv  start_sec  end_sec
# duration: the strategy's seconds; budget: the job's max_commit_latency in ms (0: none); baseline: the application's p99 alone.

eval sprintf("set terminal %s size 1200,960 font \",10\"", term)
set output out
set termoption noenhanced
set datafile separator "\t"
set grid
set key top left opaque

# rows in a file (0 for an empty or missing one): a plot of nothing is an error
rows(f) = system(sprintf("grep -c . '%s' 2>/dev/null || true", f)) + 0
app = base.".app.tsv"; probes = base.".probes.tsv"; batches = base.".batches.tsv"
samples = base.".samples.tsv"; ckpts = base.".checkpoints.tsv"
n_app = rows(app); n_probes = rows(probes); n_batches = rows(batches)
n_samples = rows(samples); n_ckpts = rows(ckpts)
# checkpoints: grey rectangles behind every panel (objects, so they span each panel's height)
ck = n_ckpts > 0 ? system(sprintf("tr '\\t\\n' '  ' < '%s'", ckpts)) : ""
if (n_ckpts > 0) {
	do for [i = 1:words(ck):2] {
		eval sprintf("set object %d rectangle from first %s, graph 0 to first %s, graph 1 behind fillcolor rgb '#888888' fillstyle transparent solid 0.2 noborder", \
		             (i + 1) / 2, word(ck, i), word(ck, i + 1))
	}
}
set xrange [0:duration]

# a panel with nothing to plot (a run shorter than a sample) still needs a valid plot: an
# invisible line, and says so
finish(c) = c eq "plot " ? "1 with lines linecolor rgb '#ffffff' title 'no data'" : "NaN notitle"

set multiplot layout 3,1 title title.(n_ckpts > 0 ? " (checkpoints shaded grey)" : "")
set lmargin 10
set rmargin 10

set title "Latency (ms, log scale)"
set logscale y
set yrange [0.1:3000]
set ylabel "ms"
cmd = "plot "
if (n_app > 0) {
	cmd = cmd.sprintf("'%s' using 1:3 with steps linecolor rgb '#f0b090' title 'app max per second', ", app)
	cmd = cmd.sprintf("'%s' using 1:2 with steps lw 2 linecolor rgb '#d8683b' title 'app p99 per second', ", app)
}
if (n_probes > 0) {
	cmd = cmd.sprintf("'%s' using 1:2 with points pt 7 ps 0.4 linecolor rgb '#3b7dd8' title 'commit probe', ", probes)
	cmd = cmd.sprintf("'%s' using 1:3 with lines lw 2 linecolor rgb '#1b3d88' title 'probe p90 (what the pace follows)', ", probes)
}
if (budget > 0) { cmd = cmd.sprintf("%g with lines dt 2 lw 2 linecolor rgb '#555555' title 'max_commit_latency', ", budget) }
if (baseline > 0) { cmd = cmd.sprintf("%g with lines dt 3 linecolor rgb '#3b9d5d' title 'app p99 alone', ", baseline) }
cmd = cmd.finish(cmd)
eval cmd
unset logscale y

set title "The job's pace (percent of the time it writes; 100 = full speed)"
set yrange [0:105]
set ylabel "pace %"
cmd = "plot "
if (n_batches > 0) {
	cmd = cmd.sprintf("'%s' using 1:2 with steps lw 2 linecolor rgb '#3b7dd8' title 'pace at each batch', ", batches)
}
cmd = cmd.finish(cmd)
eval cmd

set title "The server's writes: MB of buffers written since the start, and the kernel's dirty memory"
set yrange [0:*]
set ylabel "MB written"
set y2label "MB"
set y2range [0:*]
set y2tics
set xlabel "seconds from the strategy's start"
cmd = "plot "
if (n_samples > 0) {
	cmd = cmd.sprintf("'%s' using 1:2 with lines lw 2 linecolor rgb '#d8683b' title 'by backends (evictions, new pages)', ", samples)
	cmd = cmd.sprintf("'%s' using 1:3 with lines linecolor rgb '#3b9d5d' title 'by the background writer', ", samples)
	cmd = cmd.sprintf("'%s' using 1:4 with lines linecolor rgb '#888888' title 'by the checkpointer', ", samples)
	cmd = cmd.sprintf("'%s' using 1:5 axes x1y2 with lines dt 2 linecolor rgb '#7b3bd8' title 'kernel Dirty MB (right)', ", samples)
	cmd = cmd.sprintf("'%s' using 1:6 axes x1y2 with lines dt 3 linecolor rgb '#d83b9d' title 'kernel Writeback MB (right)', ", samples)
}
cmd = cmd.finish(cmd)
eval cmd
unset multiplot
