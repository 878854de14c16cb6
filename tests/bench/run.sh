#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer
# shellcheck disable=SC2016 # backquotes in Markdown text
# tests/bench/run.sh - `make bench`: backfilld against the single UPDATE and the hand-written loops,
# side by side, on one throwaway PostgreSQL 15 server (tests/lib/pg.sh), in one invocation.
#
# 1. Starts a server with bench settings (fsync and full_page_writes ON, unlike the tests: a
#    realistic commit and checkpoint cost), generates items(id bigint primary key, old_col text not
#    null, new_col text, filler text) with BENCH_ROWS rows (~100-byte filler) in a template
#    database, VACUUM ANALYZE. Every strategy runs on a fresh copy of it (CREATE DATABASE ...
#    TEMPLATE), after a CHECKPOINT, so each starts equal.
# 2. Strategies, each setting new_col = upper(old_col) where new_col IS NULL:
#      single       one UPDATE (locks every row until it commits)           sql/single.sql
#      seed-loop    DO loop, UPDATE ... WHERE id IN (SELECT ... LIMIT 1000 FOR UPDATE SKIP LOCKED),
#                   COMMIT per batch, no sleep, bounded by BENCH_LOOP_TIMEOUT  sql/seed_loop.sql
#      keyset-loop  DO loop over id ranges of BENCH_KEYSET_BATCH, plain UPDATE, COMMIT per range,
#                   synchronous_commit BENCH_KEYSET_SYNC                      sql/keyset_loop.sql
#      backfilld    $BF_ROOT/backfilld -c YAML --exit-when-done, default tuning (max_commit_latency
#                   10ms included) and sleep: 0
#      backfilld-fast  the same with `max_commit_latency: off` and `parallel: BENCH_BF_PARALLEL`
#                   (first pass in slices): as fast as it goes
#      backfilld-backup  the defaults with `backup: true`: what keeping the old values costs
#                   (time, WAL per row, the backup's size per row) next to backfilld
#      backfilld-2x, -4x, -8x  the defaults with max_commit_latency at 2, 4, 8 times the
#                   application's baseline p99 (needs the application load): the curve of the
#                   application's p99 and the backfill's rows/s by budget
# 3. For each: wall seconds, rows/s, WAL bytes per row (pg_current_wal_lsn difference less the WAL
#    of the application's own statements, from pg_stat_statements), ratio to single and to
#    keyset-loop; for backfilld its peak RSS (VmHWM, polled) and CPU seconds (getrusage of its
#    reaped process: no GNU time needed). Then a correctness check: no new_col IS NULL left, and
#    new_col = upper(old_col) on every row, else WRONG (and its database is kept for inspection).
# 4. Application impact: pgbench (-c 4 -j 2; half UPDATE filler, half SELECT, random id) runs on
#    the strategy's database during each strategy and alone as a baseline: TPS, p50, p99, max
#    latency and failed transactions, from its per-transaction log, for transactions scheduled
#    inside the strategy's interval (with -R the latency counts from the scheduled start, so a
#    request queued behind a lock counts all of its wait).
# 5. Writes tests/bench/results/latest.{csv,md,png}, prints the Markdown table and PASS/MISS lines
#    for the targets of the bench issue (informational); with two budgets or more, also the
#    budget's curve, latest-budgets.png (curve.gp): the application's p99 beside the promise
#    (1.25 x the budget) and the backfill's rows/s, by budget.
# 6. The timeline of each strategy, latest-timeline-NAME.png (timeline.gp) beside its data
#    (latest-timeline-NAME.*.tsv): second by second, the application's p99 and max, the daemon's
#    commit probes and their p90, the job's pace, the server's buffer writes so far (by backends:
#    evictions and new pages; by the background writer; by checkpoints: pg_stat_bgwriter, every
#    0.5 s), the kernel's Dirty and Writeback memory, and checkpoints (the server log): where the
#    application's latency comes from, and whether the probe saw it.
# Exit status: 0 when the bench ran (targets missed or not); 1 when it broke: a strategy left wrong
# data (WRONG), the daemon failed, or a step of the bench itself failed.
#
# Knobs (environment):
#   BENCH_ROWS=1000000          rows in items
#   BENCH_STRATEGIES="single seed-loop keyset-loop backfilld"   a subset (spaces or commas)
#   BENCH_REPEAT=1              rounds: each runs every strategy once, in order, on a fresh copy;
#                               the report shows, per strategy, its round of median wall time
#                               (the lower median for an even count) and notes every round's
#                               time, so one noisy round does not decide a ratio
#   BENCH_KEEP=1                keep the temporary directory (server and strategy logs, pgbench logs)
#   BENCH_LOOP_TIMEOUT=SECONDS  bound for seed-loop and backfilld (default 20x the single time,
#                               at least 60 s; without single: BENCH_ROWS/5000 s, at least 60 s)
#   BENCH_APP=0                 no application load (no baseline, no app columns)
#   BENCH_APP_RATE=400          the application's total rate in transactions/s (pgbench -R);
#                               0 = as fast as it can (saturates a small machine)
#   BENCH_BASELINE_SECONDS=15   how long the application runs alone for the baseline
#   BENCH_KEYSET_BATCH=1000     rows per range of keyset-loop
#   BENCH_KEYSET_SYNC=off       synchronous_commit of keyset-loop's session (on|off)
#   BENCH_BF_TUNING="k: v; k: v"  job keys added to backfilld's job (default: none, its defaults)
#   BENCH_BF_PARALLEL=auto      `parallel` of backfilld-fast
#   BENCH_AUTOVACUUM=off        autovacuum on items during the strategies (on: the server's)
#   BENCH_FSYNC=on              fsync and full_page_writes of the server (on|off)
#   BENCH_SHARED_BUFFERS=MB     default: a quarter of RAM, at most 2048 (the issue's 2GB)
#   BENCH_MAX_WAL_SIZE=8GB      max_wal_size (the issue's figure); a checkpoint started during a
#                               strategy (WAL past ~max_wal_size/1.9) is counted and noted
#   BENCH_WARM_WAL=1            fill pg_wal with recycled segments before the strategies (0: a
#                               fresh cluster's empty pg_wal, the first writer zero-fills each file)
#   BENCH_BF_LOG_LEVEL=debug    the daemon's log_level (debug: a line per batch and per commit probe,
#                               which the timeline charts read; kept with BENCH_KEEP)
#   BENCH_SERVER_SETTINGS="k = v; k = v"  extra postgresql.conf lines (they win over the above)
#   BENCH_RESULTS=DIR           where latest.* go (default tests/bench/results)
#   BF_PG_BIN                   PostgreSQL 15 binaries (default /usr/lib/postgresql/15/bin)

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
BF_ROOT=$(cd "$BENCH_DIR/../.." && pwd -P)
cd "$BF_ROOT"

die() {
	printf 'bench: error: %s\n' "$*" >&2
	exit 1
}
say() {
	printf 'bench: %s\n' "$*"
}
warn() {
	printf 'bench: warning: %s\n' "$*" >&2
}

# --- knobs -------------------------------------------------------------------------------------

ALL_STRATEGIES=(single seed-loop keyset-loop backfilld backfilld-backup backfilld-fast backfilld-2x
	backfilld-4x backfilld-8x)
ROWS=${BENCH_ROWS:-1000000}
APP=${BENCH_APP:-1}
APP_RATE=${BENCH_APP_RATE:-400}
BASELINE_S=${BENCH_BASELINE_SECONDS:-15}
KEYSET_BATCH=${BENCH_KEYSET_BATCH:-1000}
KEYSET_SYNC=${BENCH_KEYSET_SYNC:-off}
FSYNC=${BENCH_FSYNC:-on}
MAX_WAL=${BENCH_MAX_WAL_SIZE:-8GB}
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results}
LOOP_TIMEOUT=${BENCH_LOOP_TIMEOUT:-}
REPEAT=${BENCH_REPEAT:-1}
BF_PARALLEL=${BENCH_BF_PARALLEL:-auto}
AUTOVACUUM=${BENCH_AUTOVACUUM:-off}

is_uint() {
	[[ $1 =~ ^[0-9]+$ ]]
}
# need_uint NAME VALUE MIN: die unless VALUE is an integer >= MIN.
need_uint() {
	if ! is_uint "$2" || (($2 < $3)); then
		die "$1 must be an integer >= $3, got '$2'"
	fi
}
need_uint BENCH_ROWS "$ROWS" 1000
need_uint BENCH_APP_RATE "$APP_RATE" 0
need_uint BENCH_BASELINE_SECONDS "$BASELINE_S" 1
need_uint BENCH_KEYSET_BATCH "$KEYSET_BATCH" 1
need_uint BENCH_REPEAT "$REPEAT" 1
[[ -z $LOOP_TIMEOUT ]] || need_uint BENCH_LOOP_TIMEOUT "$LOOP_TIMEOUT" 1
[[ $APP == 0 || $APP == 1 ]] || die "BENCH_APP must be 0 or 1, got '$APP'"
[[ $KEYSET_SYNC == on || $KEYSET_SYNC == off ]] ||
	die "BENCH_KEYSET_SYNC must be on or off, got '$KEYSET_SYNC'"
[[ $FSYNC == on || $FSYNC == off ]] || die "BENCH_FSYNC must be on or off, got '$FSYNC'"
[[ $MAX_WAL =~ ^[0-9]+(kB|MB|GB|TB)?$ ]] ||
	die "BENCH_MAX_WAL_SIZE must be a PostgreSQL size like 8GB, got '$MAX_WAL'"

RAM_KB=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
if [[ -n ${BENCH_SHARED_BUFFERS-} ]]; then
	SB_MB=$BENCH_SHARED_BUFFERS
	need_uint "BENCH_SHARED_BUFFERS (MB)" "$SB_MB" 16
else
	SB_MB=$((RAM_KB / 1024 / 4))
	((SB_MB <= 2048)) || SB_MB=2048
	((SB_MB >= 128)) || SB_MB=128
fi

# The strategies to run, in the canonical order.
wanted=" $(tr ',' ' ' <<<"${BENCH_STRATEGIES-${ALL_STRATEGIES[*]}}") "
for w in $wanted; do
	[[ " ${ALL_STRATEGIES[*]} " == *" $w "* ]] ||
		die "BENCH_STRATEGIES: unknown strategy '$w' (known: ${ALL_STRATEGIES[*]})"
done
STRATEGIES=()
for s in "${ALL_STRATEGIES[@]}"; do
	[[ $wanted == *" $s "* ]] && STRATEGIES+=("$s")
done
if ((APP == 0)); then # the budgets are multiples of the application's baseline p99
	for i in "${!STRATEGIES[@]}"; do
		[[ ${STRATEGIES[i]} != backfilld-*x ]] || unset 'STRATEGIES[i]'
	done
	STRATEGIES=("${STRATEGIES[@]}")
fi
((${#STRATEGIES[@]})) || die "BENCH_STRATEGIES names no strategy (known: ${ALL_STRATEGIES[*]})"

# --- prerequisites ------------------------------------------------------------------------------

# Start clean: harness state inherited from a caller's environment would be misread as ours.
unset BF_TMPDIR BF_PG_PRIMARY BF_TEST_DB BF_TEST_NAME
for v in $(compgen -v BF_PG_PORT_) $(compgen -v BF_PG_DATA_) $(compgen -v BF_PG_DIR_); do
	unset "$v"
done
if [[ ${BENCH_KEEP-} == 1 ]]; then
	export BF_KEEP_TMP=1
else
	unset BF_KEEP_TMP
fi

# shellcheck source=tests/lib/pg.sh
. tests/lib/pg.sh

pg_require_bins || die "cannot run the bench without PostgreSQL 15"
[[ -x $BF_PG_BIN/pgbench ]] || ((APP == 0)) ||
	die "pgbench not found in $BF_PG_BIN (postgresql-15 ships it; or set BENCH_APP=0)"
command -v gnuplot >/dev/null || die "gnuplot not found (package gnuplot-nox: run 'make deps' as root)"
TERM_PNG=png
gnuplot -e 'set terminal' 2>&1 | grep -qw pngcairo && TERM_PNG=pngcairo
BF_BIN=$BF_ROOT/backfilld
if [[ " ${STRATEGIES[*]} " == *" backfilld"* ]]; then
	[[ -x $BF_BIN ]] ||
		die "$BF_BIN is not built: run 'make all' (or leave backfilld out of BENCH_STRATEGIES)"
	"$BF_BIN" --help >/dev/null 2>&1 || die "$BF_BIN --help fails: is the daemon complete?"
fi

# --- small helpers ------------------------------------------------------------------------------

now_us() {
	printf '%s\n' "${EPOCHREALTIME/./}"
}

# calc FORMAT EXPR: evaluate an awk expression, print it with a printf FORMAT. (The parentheses
# keep a > in EXPR a comparison, not printf's output redirection.)
calc() {
	awk "BEGIN { printf \"$1\", ($2) }"
}

# io_scheduler: "; I/O scheduler of vda: mq-deadline" for the disk under the work directory (it
# orders the application's WAL flushes against the kernel's writeback); nothing when the disk
# cannot be told (a container without /sys).
io_scheduler() {
	local src dev sched
	src=$(findmnt -n -o SOURCE --target "${BF_TMPDIR:-/tmp}" 2>/dev/null) || return 0
	dev=$(lsblk -n -o PKNAME "$src" 2>/dev/null | head -1 || true)
	[[ -n $dev ]] || dev=${src##*/} # a whole disk has no parent
	[[ -r /sys/block/$dev/queue/scheduler ]] || return 0
	sched=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "/sys/block/$dev/queue/scheduler")
	printf '; I/O scheduler of %s: %s' "$dev" "${sched:-none}"
}

# kill_ours PID NAME: on cleanup, stop a background process we started if it still runs (checks
# its command line so a recycled pid is left alone).
kill_ours() {
	local pid=$1 name=$2 cmd
	[[ -r /proc/$pid/cmdline ]] || return 0
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
	[[ $cmd == *"$name"* ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
}

# bench_psql DB [PSQL_ARG...]: psql on the bench server, database DB, tuples only.
bench_psql() {
	local db=$1
	shift
	psql -X -qAt -v ON_ERROR_STOP=1 -d "$db" "$@"
}

# run_sql DB FILE LOG [PSQL_ARG...]: run a strategy's SQL file; on error show its log and fail.
run_sql() {
	local db=$1 file=$2 log=$3
	shift 3
	if ! psql -X -q -v ON_ERROR_STOP=1 -d "$db" -o /dev/null -f "$BENCH_DIR/sql/$file" "$@" \
		>>"$log" 2>&1; then
		printf -- '--- %s ---\n' "$log" >&2
		tail -n 20 "$log" >&2
		die "$file failed on database $db"
	fi
}

# --- the server and the template ----------------------------------------------------------------

bf_tmpdir_init
WORK=$BF_TMPDIR
mkdir -p "$WORK/logs" "$WORK/app"

IFS=';' read -ra EXTRA_SETTINGS <<<"${BENCH_SERVER_SETTINGS-}"
say "starting PostgreSQL 15: shared_buffers=${SB_MB}MB max_wal_size=$MAX_WAL fsync=$FSYNC" \
	"full_page_writes=$FSYNC checkpoint_timeout=1h"
pg_start bench \
	"fsync = $FSYNC" \
	"full_page_writes = $FSYNC" \
	"synchronous_commit = on" \
	"wal_level = replica" \
	"shared_buffers = ${SB_MB}MB" \
	"max_wal_size = $MAX_WAL" \
	"min_wal_size = 1GB" \
	"checkpoint_timeout = 1h" \
	"log_checkpoints = on" \
	"shared_preload_libraries = 'pg_stat_statements'" \
	"pg_stat_statements.track = top" \
	"track_io_timing = on" \
	"${EXTRA_SETTINGS[@]}" ||
	die "could not start the bench server (BENCH_KEEP=1 keeps its log)"
PORT=$BF_PG_PORT_BENCH
PG_VERSION=$(bench_psql postgres -c 'SHOW server_version')
bench_psql postgres -c 'CREATE EXTENSION pg_stat_statements' >/dev/null

say "generating items with $ROWS rows in the template database"
gen_start=$(now_us)
bench_psql postgres -c 'CREATE DATABASE bench_template' >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d bench_template -v rows="$ROWS" -f "$BENCH_DIR/sql/schema.sql" \
	>"$WORK/logs/schema.log" 2>&1 || {
	cat "$WORK/logs/schema.log" >&2
	die "generating the table failed"
}
# Autovacuum on items, off unless BENCH_AUTOVACUUM=on. A DO loop or a single UPDATE reports its
# dead rows to the statistics only when its one statement ends, so autovacuum never starts during
# it; a client that commits statement by statement (backfilld, any job runner) reports them as it
# goes, and autovacuum then vacuums the 4 GB table during its run, on the same 2 cores (measured:
# in every backfilld round of a 10M run, in no round of the loops). Off, no strategy pays for it.
if [[ $AUTOVACUUM != on ]]; then
	bench_psql bench_template -c 'ALTER TABLE items SET (autovacuum_enabled = false)' >/dev/null
fi
# No connections (autovacuum included) to the template: copies need it idle.
bench_psql postgres -c 'ALTER DATABASE bench_template WITH IS_TEMPLATE true ALLOW_CONNECTIONS false' \
	>/dev/null
TABLE_SIZE=$(bench_psql postgres -c \
	"SELECT pg_size_pretty(pg_database_size('bench_template'))")
say "template ready in $(calc '%.1f' "($(now_us) - $gen_start) / 1e6") s ($TABLE_SIZE)"

# A server in steady state has recycled WAL files ready in pg_wal; a fresh cluster has none, and
# every new 16 MB file is zero-filled and fsynced under WALWriteLock, stalling every commit of the
# application ~40 ms per file. Without this the first strategy pays those stalls and the later ones
# (which reuse the files recycled after it) do not: the order would decide the latency figures.
# Write as much WAL as the costliest strategy (~800 B/row) once, keep it as recycled files.
if ((${BENCH_WARM_WAL-1})); then
	max_wal_mb=$(bench_psql postgres -c "SELECT pg_size_bytes('$MAX_WAL') / 1048576")
	warm_mb=$((ROWS * 800 / 1048576 + 64))
	((warm_mb <= max_wal_mb)) || warm_mb=$max_wal_mb
	say "warming pg_wal: ${warm_mb} MB of recycled WAL files (min_wal_size ${warm_mb}MB)"
	bench_psql postgres -c "ALTER SYSTEM SET min_wal_size = '${warm_mb}MB'" -c 'SELECT pg_reload_conf()' \
		>/dev/null
	bench_psql postgres -c "SELECT count(pg_logical_emit_message(false, 'bench', repeat('x', 1048576)))
		FROM generate_series(1, $warm_mb)" >/dev/null
	bench_psql postgres -c 'CHECKPOINT' >/dev/null
	WARM_NOTE="pg_wal warmed with ${warm_mb} MB of recycled WAL files (min_wal_size ${warm_mb}MB)"
else
	WARM_NOTE="pg_wal not warmed: new WAL files are zero-filled during the first strategies"
fi

# quiesce DB: a checkpoint, then every dirty page of the kernel written (sync), so that each run
# (and the baseline) starts with an idle disk: the writes
# of the warm-up or of the previous strategy, flushed by the kernel in bursts for up to half a
# minute after them, made the baseline's p99 vary from 1.4 to 23 ms.
quiesce() {
	bench_psql "$1" -c 'CHECKPOINT' >/dev/null
	sync
}

# new_db NAME: a fresh copy of the template (FILE_COPY: a file copy, not the whole database
# written to the WAL as the default WAL_LOG strategy would).
new_db() {
	bench_psql postgres -c "CREATE DATABASE $1 TEMPLATE bench_template STRATEGY FILE_COPY" >/dev/null
}
drop_db() {
	bench_psql postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
}

# --- the application (pgbench) ------------------------------------------------------------------

APP_PID=""
APP_DIR=""

# app_start NAME DB: pgbench on DB in the background until app_stop; logs in $WORK/app/NAME.
app_start() {
	local name=$1 db=$2
	local -a args=(-n -c 4 -j 2 -T 86400 -D "n=$ROWS" -l --log-prefix="$WORK/app/$name/log"
		-f "$BENCH_DIR/app_update.sql@1" -f "$BENCH_DIR/app_select.sql@1")
	((APP_RATE == 0)) || args+=(-R "$APP_RATE")
	APP_DIR=$WORK/app/$name
	mkdir -p "$APP_DIR"
	pgbench "${args[@]}" "$db" >"$APP_DIR/out" 2>"$APP_DIR/err" &
	APP_PID=$!
	bf_defer kill_ours "$APP_PID" pgbench
	sleep 1 # connect and settle
	if ! kill -0 "$APP_PID" 2>/dev/null; then
		cat "$APP_DIR/out" "$APP_DIR/err" >&2
		die "pgbench (the application load) exited at once"
	fi
}

# app_complete_lines: every complete line of the pgbench logs (a killed pgbench leaves a partial
# last line in its stdio buffer).
app_complete_lines() {
	local f
	for f in "$APP_DIR"/log.*; do
		[[ -f $f ]] || continue
		if [[ -n $(tail -c 1 "$f") ]]; then
			sed '$d' "$f"
		else
			cat "$f"
		fi
	done
}

# app_covered T1_US: true when each of the 4 clients has logged a transaction scheduled after T1:
# a client runs its transactions in order, so all it started before T1 are then in the log.
app_covered() {
	local t1=$1 f
	for f in "$APP_DIR"/log.*; do
		[[ -f $f ]] || continue
		tail -n 4000 "$f"
	done | awk -v t1="$t1" '
		NF >= 6 && $3 ~ /^[0-9]+$/ && $5 ~ /^[0-9]+$/ && $6 ~ /^[0-9]+$/ {
			if ($5 * 1000000 + $6 - $3 > t1 && !($1 in seen)) { seen[$1] = 1; n++ }
		}
		END { exit !(n == 4) }'
}

# app_stop T1_US: wait (60 s at most) until the logs cover the interval, then stop pgbench (it
# has no clean stop: SIGTERM; its unflushed log tail lies past T1). Sets APP_TSTOP.
app_stop() {
	local t1=$1 deadline
	deadline=$(($(now_us) + 60000000))
	until app_covered "$t1"; do
		if ! kill -0 "$APP_PID" 2>/dev/null; then
			warn "pgbench ended before the interval was covered (see $APP_DIR/err)"
			break
		fi
		if (($(now_us) > deadline)); then
			warn "pgbench's log does not cover the interval after 60 s; latency figures may miss" \
				"late transactions"
			break
		fi
		sleep 0.2
	done
	APP_TSTOP=$(now_us)
	kill -TERM "$APP_PID" 2>/dev/null || true
	wait "$APP_PID" 2>/dev/null || true
	APP_PID=""
}

# app_latencies T0_US T1_US: "scheduled_start_us latency_us" of each transaction scheduled in
# [T0, T1], from the pgbench logs.
app_latencies() {
	app_complete_lines | awk -v t0="$1" -v t1="$2" '
		NF >= 6 && $3 ~ /^[0-9]+$/ && $5 ~ /^[0-9]+$/ && $6 ~ /^[0-9]+$/ {
			start = $5 * 1000000 + $6 - $3
			if (start >= t0 && start <= t1) printf "%.0f %s\n", start, $3
		}'
}

# app_stats KEY T0_US T1_US: the application's figures for transactions scheduled in [T0, T1]
# into A_TPS, A_P50, A_P99, A_MAX (ms), A_FAILED (failed transactions + aborted clients), A_N.
declare -A A_TPS A_P50 A_P99 A_MAX A_FAILED A_N
app_stats() {
	local key=$1 t0=$2 t1=$3 stats failed aborted
	stats=$(app_latencies "$t0" "$t1" | cut -d' ' -f2 | sort -n | awk -v secs="$(calc '%.6f' "($t1 - $t0) / 1e6")" '
		{ a[NR] = $1 }
		function pct(p,  i) { i = int(p * NR); if (i < p * NR) i++; if (i < 1) i = 1; return a[i] }
		END {
			if (NR == 0) { print "0 - - - 0"; exit }
			printf "%.1f %.3f %.3f %.3f %d\n", NR / secs, pct(0.50) / 1000, pct(0.99) / 1000,
				a[NR] / 1000, NR
		}')
	failed=$(app_complete_lines | awk -v t0="$t0" -v t2="$APP_TSTOP" '
		NF >= 6 && $3 == "failed" && $5 * 1000000 + $6 >= t0 && $5 * 1000000 + $6 <= t2 { n++ }
		END { print n + 0 }')
	aborted=$(grep -c 'aborted' "$APP_DIR/err" || true)
	read -r "A_TPS[$key]" "A_P50[$key]" "A_P99[$key]" "A_MAX[$key]" "A_N[$key]" <<<"$stats"
	A_FAILED[$key]=$((failed + aborted))
	((aborted == 0)) || warn "$key: $aborted pgbench client(s) aborted: $(grep -m1 aborted "$APP_DIR/err")"
}

# app_statements NAME DB: what the application's statements on DB did since the last
# pg_stat_statements_reset() (its queries are the only ones that mention filler): the WAL they
# wrote, in APP_WAL; and a note of the shared buffers they wrote out themselves (a backend that
# needs a buffer and finds only dirty ones writes one first: evictions) and read, with the time
# of each: waits that no commit probe sees.
app_statements() {
	local w wt r rt
	read -r APP_WAL w wt r rt < <(bench_psql postgres -F ' ' -c "SELECT
		coalesce(sum(s.wal_bytes), 0)::bigint,
		coalesce(sum(s.shared_blks_written), 0)::bigint, round(coalesce(sum(s.blk_write_time), 0))::bigint,
		coalesce(sum(s.shared_blks_read), 0)::bigint, round(coalesce(sum(s.blk_read_time), 0))::bigint
		FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname = '$2' AND s.query LIKE '%filler%'")
	NOTES+=("$1: the application's statements wrote $w buffers themselves (evictions; $wt ms writing) and read $r ($rt ms reading)")
}

# --- the timeline -------------------------------------------------------------------------------
# What the application felt second by second, beside what may have caused it: the daemon's commit
# probes and pace (its debug log), the server's buffer writes (pg_stat_bgwriter: by backends, that
# is evictions and new pages; by the background writer; by checkpoints), the kernel's dirty and
# writeback memory, and checkpoints (the server log). One chart per strategy.

SAMPLER_PID=""

# sampler_start NAME: every 0.5 s, "epoch_us backend clean checkpoint dirty_kB writeback_kB".
sampler_start() {
	mkdir -p "$WORK/timeline"
	(
		while :; do
			b=$(bench_psql postgres -F ' ' -c 'SELECT buffers_backend, buffers_clean,
				buffers_checkpoint FROM pg_stat_bgwriter' 2>/dev/null) || b="- - -"
			printf '%s %s %s\n' "${EPOCHREALTIME/./}" "$b" \
				"$(awk '/^Dirty:/ { d = $2 } /^Writeback:/ { w = $2 } END { print d + 0, w + 0 }' \
					/proc/meminfo)"
			sleep 0.5
		done
	) >"$WORK/timeline/$1.samples" &
	SAMPLER_PID=$!
	bf_defer kill_ours "$SAMPLER_PID" run.sh
}

sampler_stop() {
	kill -TERM "$SAMPLER_PID" 2>/dev/null || true
	wait "$SAMPLER_PID" 2>/dev/null || true
	SAMPLER_PID=""
}

# stamped: tab-separated lines whose first field is a log's timestamp (the daemon's ISO one or
# the server's), the same lines with it in epoch microseconds (GNU date, one call for all).
stamped() {
	local raw
	raw=$(cat)
	[[ -n $raw ]] || return 0
	paste <(cut -f1 <<<"$raw" | date -u -f - +%s%6N) <(cut -f2- <<<"$raw")
}

# timeline_write NAME FILE T0_US T1_US: the timeline of NAME's run, seconds from T0, into
# FILE.{app,samples,probes,batches,checkpoints}.tsv, then its chart FILE.png. Only what falls
# in [T0, T1]: the chart's x range (gnuplot refuses a plot whose points all lie outside it).
timeline_write() {
	local name=$1 out=$2 t0=$3 t1=$4 dlog=$WORK/logs/$1-daemon.log
	local slog=$BF_PG_DIR_BENCH/server.log budget_ms
	# the application: p99 and max of the transactions scheduled in each second
	if ((APP)); then
		app_latencies "$t0" "$t1" | awk -v t0="$t0" '{ print int(($1 - t0) / 1000000), $2 / 1000 }' |
			sort -k1,1n -k2,2g | awk '
			function flush(  i) { i = int(0.99 * n); if (i < 0.99 * n) i++; if (i < 1) i = 1
				printf "%d\t%.3f\t%.3f\n", sec, a[i], a[n] }
			NR > 1 && $1 != sec { flush(); n = 0 }
			{ sec = $1; a[++n] = $2 }
			END { if (n) flush() }' >"$out.app.tsv"
	else
		: >"$out.app.tsv"
	fi
	# the server's buffer writes since the start (MB; cumulative, since the server reports them
	# in bursts: a backend's when the checkpointer absorbs its requests) and the kernel's dirty
	# memory (MB)
	awk -v t0="$t0" -v t1="$t1" 'NF == 6 && $2 ~ /^[0-9]+$/ && $1 >= t0 && $1 <= t1 {
			if (!have) { have = 1; b = $2; c = $3; k = $4 }
			printf "%.2f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\n", ($1 - t0) / 1e6, ($2 - b) / 128,
				($3 - c) / 128, ($4 - k) / 128, $5 / 1024, $6 / 1024
		}' "$WORK/timeline/$name.samples" >"$out.samples.tsv"
	# the daemon's commit probes (each reading and its p90: none without a budget) and its
	# batches' pace
	: >"$out.probes.tsv"
	: >"$out.batches.tsv"
	if [[ -f $dlog ]]; then
		{ grep 'msg="commit probe"' "$dlog" || true; } |
			sed -n 's/^ts=\([^ ]*\) .* us=\([0-9]*\) .* p90_us=\([0-9]*\) .*/\1\t\2\t\3/p' |
			stamped | awk -v t0="$t0" -v t1="$t1" 'NF == 3 && $1 >= t0 && $1 <= t1 {
				printf "%.2f\t%.3f\t%.3f\n", ($1 - t0) / 1e6, $2 / 1000, $3 / 1000 }' >"$out.probes.tsv"
		{ grep ' msg=batch ' "$dlog" || true; } |
			sed -n 's/^ts=\([^ ]*\) .* pace=\([0-9]*\).*/\1\t\2/p' |
			stamped | awk -v t0="$t0" -v t1="$t1" 'NF == 2 && $1 >= t0 && $1 <= t1 {
				printf "%.2f\t%s\n", ($1 - t0) / 1e6, $2 }' >"$out.batches.tsv"
	fi
	# checkpoints: "start end" in seconds (a checkpoint still running at T1 ends there)
	sed -n 's/^\([0-9-]* [0-9:.]*\) UTC .*LOG:  checkpoint \(starting\|complete\).*/\1 UTC\t\2/p' "$slog" |
		stamped | awk -v t0="$t0" -v t1="$t1" '
			$2 == "starting" { s = $1 }
			$2 == "complete" && s != "" {
				if ($1 >= t0 && s <= t1) printf "%.2f\t%.2f\n", (s - t0) / 1e6, ($1 - t0) / 1e6
				s = ""
			}
			END { if (s != "" && s <= t1) printf "%.2f\t%.2f\n", (s - t0) / 1e6, (t1 - t0) / 1e6 }' \
		>"$out.checkpoints.tsv"
	budget_ms=$(budget_ms "$name")
	gnuplot -e "term='$TERM_PNG'; base='$out'; out='$out.png.tmp'; budget=$budget_ms;
		duration=$(calc '%.2f' "($t1 - $t0) / 1e6");
		baseline=${A_P99[baseline]:-0}; title='$name: $ROWS rows, second by second'" \
		"$BENCH_DIR/timeline.gp" >>"$WORK/logs/gnuplot.log" 2>&1 ||
		die "gnuplot failed to draw $out.png: $(tail -n 5 "$WORK/logs/gnuplot.log")"
	mv "$out.png.tmp" "$out.png"
}

# --- the daemon ---------------------------------------------------------------------------------

# run_daemon DB TIMEOUT_S: backfilld --exit-when-done on DB. Sets D_RC, D_TIMED_OUT, D_RSS_KB
# (peak RSS: VmHWM, polled every 0.1 s, so a rise in its last 0.1 s would be missed) and D_CPU_S
# (user + system time from the getrusage of the subshell that reaped it: exact).
run_daemon() {
	local name=$1 db=$2 timeout_s=$3 extra=$4 yaml=$WORK/$1.yaml log=$WORK/logs/$1-daemon.log
	local pidf=$WORK/backfilld.pid timesf=$WORK/backfilld.times sub dpid="" deadline k v _
	local rc=0
	cat >"$yaml" <<EOF
database: "host=127.0.0.1 port=$PORT user=postgres dbname=$db"
log_level: ${BENCH_BF_LOG_LEVEL:-debug}
jobs:
  - name: bench
    table: items
    set: "new_col = upper(old_col)"
    where: "new_col IS NULL"
    sleep: 0
EOF
	local kv
	IFS=';' read -ra kv <<<"${BENCH_BF_TUNING-}${extra:+;$extra}"
	for k in "${kv[@]}"; do
		if [[ $k =~ [^[:space:]] ]]; then
			printf '    %s\n' "${k#"${k%%[![:space:]]*}"}" >>"$yaml"
		fi
	done
	rm -f "$pidf" "$timesf"
	(
		"$BF_BIN" -c "$yaml" --exit-when-done </dev/null >"$log" 2>&1 &
		echo $! >"$pidf"
		r=0
		wait $! || r=$?
		times >"$timesf"
		exit "$r"
	) &
	sub=$!
	D_RSS_KB=0
	D_TIMED_OUT=0
	deadline=$(($(now_us) + timeout_s * 1000000))
	while kill -0 "$sub" 2>/dev/null; do
		if [[ -z $dpid && -s $pidf ]]; then
			dpid=$(<"$pidf")
			bf_defer kill_ours "$dpid" backfilld
		fi
		if [[ -n $dpid ]]; then
			while read -r k v _; do
				if [[ $k == VmHWM: ]]; then
					((v <= D_RSS_KB)) || D_RSS_KB=$v
					break
				fi
			done <"/proc/$dpid/status" 2>/dev/null || true
			if ((D_TIMED_OUT == 0 && $(now_us) > deadline)); then
				warn "backfilld still runs after ${timeout_s}s (BENCH_LOOP_TIMEOUT): sending SIGTERM"
				D_TIMED_OUT=1
				kill -TERM "$dpid" 2>/dev/null || true
				deadline=$(($(now_us) + 60000000))
			elif ((D_TIMED_OUT == 1 && $(now_us) > deadline)); then
				warn "backfilld ignores SIGTERM for 60 s: SIGKILL"
				D_TIMED_OUT=2
				kill -KILL "$dpid" 2>/dev/null || true
			fi
		fi
		sleep 0.1
	done
	wait "$sub" || rc=$?
	D_RC=$rc
	# times: the shell's own user/system line, then its children's (the daemon) line.
	D_CPU_S=$(awk 'NR == 2 {
			split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.3f", u[1] * 60 + u[2] + s[1] * 60 + s[2]
		}' "$timesf" 2>/dev/null || true)
	[[ -n $D_CPU_S ]] || D_CPU_S=-
}

# --- one strategy -------------------------------------------------------------------------------

declare -A R_STATUS R_WALL R_ROWS R_WAL R_APPWAL R_RSS R_CPU R_CKPT R_BACKUP
NOTES=()
BROKEN=0

# checkpoints: how many checkpoints the server has started (timed or requested).
checkpoints() {
	bench_psql postgres -c 'SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter'
}

# loop_timeout: the bound for seed-loop and backfilld.
loop_timeout() {
	if [[ -n $LOOP_TIMEOUT ]]; then
		echo "$LOOP_TIMEOUT"
	elif [[ ${R_STATUS[single]-} == ok ]]; then
		calc '%d' "(t = 20 * ${R_WALL[single]}) < 60 ? 60 : int(t) + 1"
	else
		calc '%d' "(t = $ROWS / 5000) < 60 ? 60 : int(t)"
	fi
}

# daemon_keys NAME: the job keys a backfilld strategy adds to its defaults.
daemon_keys() {
	case $1 in
	backfilld-fast) echo "max_commit_latency: off; parallel: $BF_PARALLEL" ;;
	backfilld-backup) echo "backup: true" ;;
	backfilld-*x) echo "max_commit_latency: $(($(budget_us "$1") / 1000))ms" ;;
	esac
}

# budget_ms NAME: the strategy's max_commit_latency in ms: backfilld-Kx's, the default job's
# (10ms, its default), 0 for the others (none, or off).
budget_ms() {
	case $1 in
	backfilld) echo 10 ;;
	backfilld-*x) calc '%.3f' "$(budget_us "$1") / 1000" ;;
	*) echo 0 ;;
	esac
}

# budget_us NAME: backfilld-Kx's budget, K times the baseline p99 of the application, in whole
# milliseconds (the key's unit), at least 1.
budget_us() {
	local k=${1#backfilld-}
	calc '%d' "(ms = int(${k%x} * ${A_P99[baseline]} + 0.5)) < 1 ? 1000 : ms * 1000"
}

run_strategy() {
	local name=$1 db=bench_${1//-/_} log=$WORK/logs/$1.log lsn0 lsn1 t0 t1 wal appwal=0
	local timeout_s total nulls wrong ckpt0 ckpt1 autovac extra=""
	local status=ok
	: >"$log"
	new_db "$db"
	((APP == 0)) || app_start "$name" "$db"
	quiesce "$db"
	sampler_start "$name"
	bench_psql postgres -c 'SELECT pg_stat_statements_reset()' >/dev/null
	ckpt0=$(checkpoints)
	lsn0=$(bench_psql postgres -c 'SELECT pg_current_wal_lsn()')
	say "$name: running"
	t0=$(now_us)
	case $name in
	single)
		run_sql "$db" single.sql "$log"
		;;
	seed-loop)
		timeout_s=$(loop_timeout)
		run_sql "$db" seed_loop.sql "$log" -v timeout_s="$timeout_s"
		if grep -q 'stopped by its timeout' "$log"; then
			status="did not finish"
			NOTES+=("seed-loop stopped by its ${timeout_s}s timeout (BENCH_LOOP_TIMEOUT)")
		fi
		;;
	keyset-loop)
		run_sql "$db" keyset_loop.sql "$log" -v batch="$KEYSET_BATCH" -v sync="$KEYSET_SYNC"
		;;
	backfilld*)
		timeout_s=$(loop_timeout)
		extra=$(daemon_keys "$name")
		run_daemon "$name" "$db" "$timeout_s" "$extra"
		R_RSS[$name]=$D_RSS_KB
		R_CPU[$name]=$D_CPU_S
		if ((D_TIMED_OUT)); then
			status="did not finish"
			NOTES+=("$name stopped by the ${timeout_s}s timeout (BENCH_LOOP_TIMEOUT)")
		elif ((D_RC != 0)); then
			status="FAILED (exit $D_RC)"
			BROKEN=1
			printf -- '--- last lines of %s ---\n' "$WORK/logs/$name-daemon.log" >&2
			tail -n 20 "$WORK/logs/$name-daemon.log" >&2
		fi
		;;
	esac
	t1=$(now_us)
	sampler_stop
	lsn1=$(bench_psql postgres -c 'SELECT pg_current_wal_lsn()')
	wal=$(bench_psql postgres -c "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')::bigint")
	ckpt1=$(checkpoints)
	if ((APP)); then
		app_statements "$name" "$db"
		appwal=$APP_WAL
		app_stop "$t1"
		app_stats "$name" "$t0" "$t1"
	fi
	timeline_write "$name" "$WORK/timeline/latest-timeline-$name$( ((REPEAT == 1)) || echo "-r$round")" \
		"$t0" "$t1"

	# Correctness: every row done, and done right.
	IFS='|' read -r total nulls wrong < <(bench_psql "$db" -c "SELECT count(*),
		count(*) FILTER (WHERE new_col IS NULL),
		count(*) FILTER (WHERE new_col IS DISTINCT FROM upper(old_col) AND new_col IS NOT NULL)
		FROM items")
	if ((total != ROWS || wrong != 0)) || [[ $nulls != 0 && $status == ok ]]; then
		NOTES+=("$name: WRONG: $total rows (expected $ROWS), $nulls still NULL, $wrong with a wrong value")
		status=WRONG
		BROKEN=1
	fi
	R_CKPT[$name]=$((ckpt1 - ckpt0))
	if ((ckpt1 > ckpt0)); then
		NOTES+=("$name: $((ckpt1 - ckpt0)) checkpoint(s) started during the run (max_wal_size $MAX_WAL)")
	fi
	autovac=$(bench_psql "$db" -c "SELECT autovacuum_count + autoanalyze_count FROM pg_stat_user_tables
		WHERE relname = 'items'")
	if ((autovac > 0)); then
		NOTES+=("$name: autovacuum/autoanalyze ran $autovac time(s) on items during the run")
	fi
	if [[ $name == backfilld* ]]; then
		local job
		job=$(bench_psql "$db" -c "SELECT format('state %s, %s rows in %s batches (%s slices), last batch size %s, %s errors%s',
				j.state, j.rows_done + coalesce(s.r, 0), j.batches_done + coalesce(s.b, 0), coalesce(s.n, 0),
				j.batch_size, j.errors,
				CASE WHEN j.last_error IS NOT NULL THEN ', last error: ' || j.last_error END)
			FROM backfill.jobs j LEFT JOIN LATERAL (SELECT sum(rows_done) AS r, sum(batches_done) AS b,
				count(*) AS n FROM backfill.slices WHERE job = j.name) s ON true
			WHERE j.name = 'bench'" 2>&1) || job="(backfill.jobs unreadable: $job)"
		NOTES+=("$name tuning: sleep 0${BENCH_BF_TUNING:+; $BENCH_BF_TUNING}${extra:+; $extra}, the rest its defaults")
		if [[ $name == backfilld-backup ]]; then
			R_BACKUP[$name]=$(bench_psql "$db" -c "SELECT coalesce(pg_total_relation_size(
				to_regclass('backfill.bench_backup')), 0)")
		fi
		NOTES+=("$name job: ${job:-no row in backfill.jobs}; peak RSS ${D_RSS_KB} kB, CPU ${D_CPU_S} s, exit $D_RC")
	fi

	R_STATUS[$name]=$status
	R_WALL[$name]=$(calc '%.3f' "($t1 - $t0) / 1e6")
	R_ROWS[$name]=$((ROWS - nulls))
	R_WAL[$name]=$((wal > appwal ? wal - appwal : 0))
	R_APPWAL[$name]=$appwal
	local app_txt=""
	((APP == 0)) ||
		app_txt="; app p99 ${A_P99[$name]} ms, max ${A_MAX[$name]} ms, failed ${A_FAILED[$name]}"
	say "$name: $status in ${R_WALL[$name]} s, $(calc '%.0f' "${R_ROWS[$name]} / ${R_WALL[$name]}")" \
		"rows/s, $(wal_per_row "$name") WAL bytes/row$app_txt"
	if [[ $status == WRONG ]]; then
		warn "$name produced wrong data: keeping database $db for inspection"
	else
		drop_db "$db"
	fi
}

# wal_per_row NAME: WAL bytes per row the strategy updated.
wal_per_row() {
	calc '%.1f' "${R_ROWS[$1]} > 0 ? ${R_WAL[$1]} / ${R_ROWS[$1]} : 0"
}

run_baseline() {
	local db=bench_baseline t0 t1
	new_db "$db"
	app_start baseline "$db"
	quiesce "$db"
	bench_psql postgres -c 'SELECT pg_stat_statements_reset()' >/dev/null
	say "baseline: the application alone for ${BASELINE_S}s"
	t0=$(now_us)
	sleep "$BASELINE_S"
	t1=$(now_us)
	app_statements baseline "$db"
	app_stop "$t1"
	app_stats baseline "$t0" "$t1"
	say "baseline: ${A_TPS[baseline]} TPS, p50 ${A_P50[baseline]} ms, p99 ${A_P99[baseline]} ms," \
		"max ${A_MAX[baseline]} ms, failed ${A_FAILED[baseline]}"
	drop_db "$db"
}

# --- run ----------------------------------------------------------------------------------------

# Every figure a strategy's run leaves, by strategy name (R_* above, A_* of app_stats).
RESULT_ARRAYS=(R_STATUS R_WALL R_ROWS R_WAL R_APPWAL R_RSS R_CPU R_CKPT R_BACKUP A_TPS A_P50 A_P99
	A_MAX A_FAILED A_N)

# keep_round NAME ROUND: file the figures of NAME's run as NAME@ROUND.
keep_round() {
	local a
	for a in "${RESULT_ARRAYS[@]}"; do
		# shellcheck disable=SC2178 # a nameref to each associative array in turn
		local -n arr=$a
		[[ -z ${arr[$1]+set} ]] || arr[$1@$2]=${arr[$1]}
	done
}

# by_round_p99 NAME: "; app p99 ms by round: A, B, C" when the application ran (a budget's
# promise is judged on the median round; the others belong in the notes).
by_round_p99() {
	local r
	[[ -n ${A_P99[$1@1]-} ]] || return 0
	printf '; app p99 ms by round: '
	for ((r = 1; r <= REPEAT; r++)); do
		printf '%s' "${A_P99[$1@$r]-}"
		((r == REPEAT)) || printf ', '
	done
}

# use_median NAME: NAME's figures become those of its round of median wall time; the rounds'
# times go to the notes.
use_median() {
	local r a walls=() pick
	for ((r = 1; r <= REPEAT; r++)); do
		walls+=("${R_WALL[$1@$r]} $r")
	done
	pick=$(printf '%s\n' "${walls[@]}" | sort -n | sed -n "$(((REPEAT + 1) / 2))p" | cut -d' ' -f2)
	for a in "${RESULT_ARRAYS[@]}"; do
		# shellcheck disable=SC2178 # a nameref to each associative array in turn
		local -n arr=$a
		[[ -z ${arr[$1@$pick]+set} ]] || arr[$1]=${arr[$1@$pick]}
	done
	NOTES+=("$1: wall s by round: $(for ((r = 1; r <= REPEAT; r++)); do
		printf '%s%s' "${R_WALL[$1@$r]}" "$([[ ${R_STATUS[$1@$r]} == ok ]] || echo " (${R_STATUS[$1@$r]})")"
		((r == REPEAT)) || printf ', '
	done)$(by_round_p99 "$1"); the table shows round $pick (median)")
}

((APP == 0)) || run_baseline
for ((round = 1; round <= REPEAT; round++)); do
	((REPEAT == 1)) || say "round $round of $REPEAT"
	for s in "${STRATEGIES[@]}"; do
		n_notes=${#NOTES[@]}
		run_strategy "$s"
		keep_round "$s" "$round"
		if ((REPEAT > 1)); then
			for ((i = n_notes; i < ${#NOTES[@]}; i++)); do
				NOTES[i]="round $round: ${NOTES[i]}"
			done
		fi
	done
done
if ((REPEAT > 1)); then
	for s in "${STRATEGIES[@]}"; do
		use_median "$s"
	done
fi

# --- report -------------------------------------------------------------------------------------

mkdir -p "$RESULTS"
CSV=$RESULTS/latest.csv
MD=$RESULTS/latest.md
PNG=$RESULTS/latest.png

rate() { # rows/s of a strategy, empty if it did not run
	[[ -n ${R_WALL[$1]-} ]] && calc '%.1f' "${R_ROWS[$1]} / ${R_WALL[$1]}"
	return 0
}
ratio() { # rows/s of $1 over rows/s of $2, when both ran and $2 finished
	[[ -n ${R_WALL[$1]-} && ${R_STATUS[$2]-} == ok ]] && calc '%.2f' "$(rate "$1") / $(rate "$2")"
	return 0
}

# The rows: key|label, baseline first.
KEYS=()
((APP == 0)) || KEYS+=(baseline)
KEYS+=("${STRATEGIES[@]}")

{
	echo "strategy,status,wall_s,rows_done,rows_per_s,wal_bytes,wal_bytes_per_row,x_single,x_keyset_loop,app_wal_bytes,app_tps,app_p50_ms,app_p99_ms,app_max_ms,app_failed,app_txns,rss_kb,cpu_s,cpu_pct,checkpoints"
	for k in "${KEYS[@]}"; do
		if [[ $k == baseline ]]; then
			printf 'baseline,ok,%s,,,,,,,,%s,%s,%s,%s,%s,%s,,,,\n' "$BASELINE_S" \
				"${A_TPS[$k]}" "${A_P50[$k]}" "${A_P99[$k]}" "${A_MAX[$k]}" "${A_FAILED[$k]}" "${A_N[$k]}"
			continue
		fi
		cpu_pct=""
		[[ ${R_CPU[$k]-} == [0-9]* ]] && cpu_pct=$(calc '%.2f' "100 * ${R_CPU[$k]} / ${R_WALL[$k]}")
		printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$k" "${R_STATUS[$k]}" \
			"${R_WALL[$k]}" "${R_ROWS[$k]}" "$(rate "$k")" "${R_WAL[$k]}" \
			"$(wal_per_row "$k")" "$(ratio "$k" single)" "$(ratio "$k" keyset-loop)" \
			"$( ((APP)) && echo "${R_APPWAL[$k]}")" \
			"${A_TPS[$k]-}" "${A_P50[$k]-}" "${A_P99[$k]-}" "${A_MAX[$k]-}" "${A_FAILED[$k]-}" \
			"${A_N[$k]-}" "${R_RSS[$k]-}" "${R_CPU[$k]-}" "$cpu_pct" "${R_CKPT[$k]}"
	done
} >"$CSV.tmp"
mv "$CSV.tmp" "$CSV"

# --- targets (the bench issue's; informational) ---
TARGETS=()
target() { # NAME OK(1/0/"") DETAIL
	local verdict=SKIP
	[[ $2 == 1 ]] && verdict=PASS
	[[ $2 == 0 ]] && verdict=MISS
	TARGETS+=("$verdict $1: $3")
}
check_ge() { # awk condition -> 1/0
	calc '%d' "($1) ? 1 : 0"
}
targets_of() { # NAME: the targets of the bench issue for one backfilld strategy
	local b=$1 bf_rate
	if [[ ${R_STATUS[$b]-} == ok ]]; then
		bf_rate=$(rate "$b")
		if [[ ${R_STATUS[single]-} == ok ]]; then
			target "$b: throughput >= 1.2x single" "$(check_ge "$bf_rate >= 1.2 * $(rate single)")" \
				"$(ratio "$b" single)x ($bf_rate vs $(rate single) rows/s)"
		else
			target "$b: throughput >= 1.2x single" "" "single did not run or finish"
		fi
		if [[ ${R_STATUS[keyset-loop]-} == ok ]]; then
			target "$b: throughput >= 0.9x keyset-loop" "$(check_ge "$bf_rate >= 0.9 * $(rate keyset-loop)")" \
				"$(ratio "$b" keyset-loop)x ($bf_rate vs $(rate keyset-loop) rows/s)"
		else
			target "$b: throughput >= 0.9x keyset-loop" "" "keyset-loop did not run or finish"
		fi
		if ((APP)) && [[ ${A_P99[$b]} != - && ${A_P99[baseline]} != - ]]; then
			target "$b: app p99 <= 1.2x baseline" \
				"$(check_ge "${A_P99[$b]} <= 1.2 * ${A_P99[baseline]}")" \
				"${A_P99[$b]} ms vs ${A_P99[baseline]} ms ($(calc '%.2f' "${A_P99[$b]} / ${A_P99[baseline]}")x)"
			target "$b: no app transaction > 200 ms" "$(check_ge "${A_MAX[$b]} <= 200")" \
				"max ${A_MAX[$b]} ms"
		else
			target "$b: app p99 <= 1.2x baseline" "" "no application load (BENCH_APP=0)"
			target "$b: no app transaction > 200 ms" "" "no application load (BENCH_APP=0)"
		fi
		if ((APP)); then
			target "$b: no failed app transaction" "$(check_ge "${A_FAILED[$b]} == 0")" \
				"${A_FAILED[$b]} failed"
		else
			target "$b: no failed app transaction" "" "no application load (BENCH_APP=0)"
		fi
		target "$b: peak RSS <= 10 MB" "$(check_ge "${R_RSS[$b]} <= 10240")" \
			"$(calc '%.1f' "${R_RSS[$b]} / 1024") MB"
		if [[ ${R_CPU[$b]} == [0-9]* ]]; then
			target "$b: CPU <= 5% of wall" "$(check_ge "${R_CPU[$b]} <= 0.05 * ${R_WALL[$b]}")" \
				"${R_CPU[$b]} s of ${R_WALL[$b]} s ($(calc '%.1f' "100 * ${R_CPU[$b]} / ${R_WALL[$b]}")%)"
		else
			target "$b: CPU <= 5% of wall" "" "CPU time not measured"
		fi
		target "$b: 10M time <= 11x 1M time" "" "needs two runs (BENCH_ROWS=1000000 and 10000000)"
	else
		target "$b: all backfilld targets" "" "$b $([[ -n ${R_STATUS[$b]-} ]] &&
			echo "result: ${R_STATUS[$b]}" || echo "not in BENCH_STRATEGIES")"
	fi
}
targets_of backfilld
targets_of backfilld-fast
budget_targets() { # NAME: the commit-latency budget's promise, at the 1M size of the issue
	local b=$1
	[[ ${R_STATUS[$b]-} == ok ]] || return 0
	target "$b: app p99 <= 1.25x its budget ($(calc '%.2f' "$(budget_us "$b") / 1000") ms)" \
		"$(check_ge "${A_P99[$b]} <= 1.25 * $(budget_us "$b") / 1000")" "app p99 ${A_P99[$b]} ms"
	target "$b: no app transaction > 200 ms" "$(check_ge "${A_MAX[$b]} <= 200")" "max ${A_MAX[$b]} ms"
	if [[ ${R_STATUS[backfilld-fast]-} == ok ]]; then
		target "$b: rows/s >= 20% of backfilld-fast" \
			"$(check_ge "$(rate "$b") >= 0.2 * $(rate backfilld-fast)")" \
			"$(rate "$b") vs $(rate backfilld-fast) rows/s ($(ratio "$b" backfilld-fast)x)"
	fi
}
for b in backfilld-2x backfilld-4x backfilld-8x; do
	budget_targets "$b"
done
# What backup: true costs, next to the same job without it (issue 17: reported, no target).
if [[ ${R_STATUS[backfilld-backup]-} == ok && ${R_STATUS[backfilld]-} == ok ]]; then
	NOTES+=("backup: true costs $(calc '%.2f' "${R_WALL[backfilld-backup]} / ${R_WALL[backfilld]}")x the time of backfilld (${R_WALL[backfilld-backup]} s vs ${R_WALL[backfilld]} s), $(wal_per_row backfilld-backup) vs $(wal_per_row backfilld) WAL bytes per row; the backup table holds $(calc '%.1f' "${R_BACKUP[backfilld-backup]} / 1048576") MB, $(calc '%.1f' "${R_BACKUP[backfilld-backup]} / ${R_ROWS[backfilld-backup]}") bytes per row (index included)")
fi

# --- Markdown ---
dash() { # a value or an en dash
	if [[ -n ${1-} ]]; then printf '%s' "$1"; else printf '–'; fi
}
CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[[ -n $CPU_MODEL ]] || CPU_MODEL=$(uname -m)
GIT_REV=$(git -C "$BF_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$BF_ROOT" diff --quiet HEAD -- . ':!tests/bench/results' 2>/dev/null || GIT_REV="$GIT_REV (with uncommitted changes)"
BF_VERSION="backfilld (not built)"
[[ -x $BF_BIN ]] && BF_VERSION=$("$BF_BIN" --version 2>/dev/null | head -n 1 || echo "backfilld (no --version)")
if ((APP_RATE == 0)); then app_rate_txt="as fast as it can"; else app_rate_txt="$APP_RATE TPS (-R)"; fi
{
	printf '# backfilld bench: %s rows\n\n' "$ROWS"
	printf -- '- Date: %s; machine: %s cores (`nproc`), %s GiB RAM, %s; PostgreSQL %s\n' \
		"$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" "$(calc '%.1f' "$RAM_KB / 1048576")" \
		"$CPU_MODEL" "$PG_VERSION"
	printf -- '- %s, commit %s\n' "$BF_VERSION" "$GIT_REV"
	printf -- '- Server: shared_buffers=%sMB, max_wal_size=%s, checkpoint_timeout=1h, fsync=%s,' \
		"$SB_MB" "$MAX_WAL" "$FSYNC"
	printf ' full_page_writes=%s, synchronous_commit=on (keyset-loop: %s), a CHECKPOINT and a sync before each;' \
		"$FSYNC" "$KEYSET_SYNC"
	printf ' %s%s\n' "$WARM_NOTE" "${BENCH_SERVER_SETTINGS:+; also: $BENCH_SERVER_SETTINGS}"
	# when the kernel writes the page cache's dirty data back decides when commits stall
	printf -- '- Kernel writeback: %s\n' "$(for k in dirty_background_ratio dirty_background_bytes \
		dirty_ratio dirty_bytes dirty_expire_centisecs; do
		printf 'vm.%s=%s ' "$k" "$(cat "/proc/sys/vm/$k" 2>/dev/null || echo '?')"
	done)$(io_scheduler)"
	printf -- '- Table: items, %s rows, %s with its index; each strategy on a fresh copy; autovacuum %s on it\n' \
		"$ROWS" "$TABLE_SIZE" "$AUTOVACUUM"
	if ((APP)); then
		printf -- '- Application: pgbench -c 4 -j 2 at %s, half `UPDATE items SET filler` and half' \
			"$app_rate_txt"
		printf ' `SELECT` of a random id; baseline: alone for %s s' "$BASELINE_S"
		((APP_RATE == 0)) || printf '; latency counts from the scheduled start'
		printf '.\n  WAL per row excludes the WAL of the application'"'"'s statements (pg_stat_statements)\n'
	else
		printf -- '- No application load (BENCH_APP=0)\n'
	fi
	printf '\n| strategy | result | wall s | rows/s | WAL B/row | x single | x keyset-loop |'
	printf ' app TPS | app p50 ms | app p99 ms | app max ms | app failed | RSS MB | CPU s | CPU %% |\n'
	printf '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n'
	for k in "${KEYS[@]}"; do
		if [[ $k == baseline ]]; then
			printf '| baseline (app alone) | ok | %s | – | – | – | – | %s | %s | %s | %s | %s | – | – | – |\n' \
				"$BASELINE_S" "${A_TPS[$k]}" "${A_P50[$k]}" "${A_P99[$k]}" "${A_MAX[$k]}" "${A_FAILED[$k]}"
			continue
		fi
		rss="" cpu="" pct=""
		if [[ -n ${R_RSS[$k]-} ]]; then
			rss=$(calc '%.1f' "${R_RSS[$k]} / 1024")
			cpu=${R_CPU[$k]}
			[[ $cpu == [0-9]* ]] && pct=$(calc '%.1f' "100 * $cpu / ${R_WALL[$k]}")
		fi
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
			"$k" "${R_STATUS[$k]}" "$(calc '%.2f' "${R_WALL[$k]}")" \
			"$(calc '%.0f' "$(rate "$k")")" "$(wal_per_row "$k")" \
			"$(dash "$(ratio "$k" single)")" "$(dash "$(ratio "$k" keyset-loop)")" \
			"$(dash "${A_TPS[$k]-}")" "$(dash "${A_P50[$k]-}")" "$(dash "${A_P99[$k]-}")" \
			"$(dash "${A_MAX[$k]-}")" "$(dash "${A_FAILED[$k]-}")" \
			"$(dash "$rss")" "$(dash "$cpu")" "$(dash "$pct")"
	done
	printf '\nTargets (bench issue, informational):\n\n'
	for t in "${TARGETS[@]}"; do
		printf -- '- %s\n' "$t"
	done
	if ((${#NOTES[@]})); then
		printf '\nNotes:\n\n'
		for n in "${NOTES[@]}"; do
			printf -- '- %s\n' "$n"
		done
	fi
	printf '\n![rows/s and application p99 per strategy](latest.png)\n'
} >"$MD.tmp"
mv "$MD.tmp" "$MD"

# --- chart ---
{
	printf '# strategy\trows_per_s\n'
	for k in "${STRATEGIES[@]}"; do
		printf '%s\t%s\n' "$k" "$(rate "$k")"
	done
} >"$WORK/chart_rates.tsv"
{
	printf '# label\tapp_p99_ms\n'
	for k in "${KEYS[@]}"; do
		p99=${A_P99[$k]:--}
		[[ $p99 != 0 && $p99 != 0.000 ]] || p99=- # a log scale has no place for 0
		printf '%s\t%s\n' "$k" "$p99"
	done
} >"$WORK/chart_p99.tsv"
p99s=$WORK/chart_p99.tsv
((APP)) || p99s=""
if ! gnuplot -e "term='$TERM_PNG'; rates='$WORK/chart_rates.tsv'; p99s='$p99s'; out='$PNG.tmp';
		title='backfilld bench: $ROWS rows, $(nproc) cores, PostgreSQL $PG_VERSION'" \
	"$BENCH_DIR/chart.gp" >"$WORK/logs/gnuplot.log" 2>&1; then
	cat "$WORK/logs/gnuplot.log" >&2
	die "gnuplot failed to draw $PNG"
fi
mv "$PNG.tmp" "$PNG"

# The timelines: a chart per strategy (and round), beside the data it was drawn from.
rm -f "$RESULTS"/latest-timeline-*
cp "$WORK"/timeline/latest-timeline-* "$RESULTS"/
for f in "$RESULTS"/latest-timeline-*.png; do
	[[ -f $f ]] || continue
	f=${f##*/}
	t=${f#latest-timeline-}
	printf '\n![%s second by second: app latency, commit probes, pace, writes](%s)\n' "${t%.png}" "$f" >>"$MD"
done

# The budget's curve: each budget that ran, and the default job (its 10ms), by budget.
CURVE_PNG=${PNG%.png}-budgets.png
if ((APP)); then
	{
		printf '# budget_ms\tapp_p99_ms\trows_per_s\tlabel\n'
		for b in backfilld-2x backfilld-4x backfilld-8x backfilld; do
			[[ ${R_STATUS[$b]-} == ok && ${A_P99[$b]-} != - ]] || continue
			ms=$(budget_ms "$b")
			printf '%s\t%s\t%s\t%s\n' "$ms" "${A_P99[$b]}" "$(rate "$b")" "$b"
		done | sort -g
	} >"$WORK/chart_curve.tsv"
	fast=0
	[[ ${R_STATUS[backfilld-fast]-} != ok ]] || fast=$(rate backfilld-fast)
	if (($(grep -vc '^#' "$WORK/chart_curve.tsv") >= 2)); then
		gnuplot -e "term='$TERM_PNG'; curve='$WORK/chart_curve.tsv'; base=${A_P99[baseline]};
			fast=$fast; out='$CURVE_PNG.tmp';
			title='max_commit_latency: $ROWS rows, baseline p99 ${A_P99[baseline]} ms'" \
			"$BENCH_DIR/curve.gp" >>"$WORK/logs/gnuplot.log" 2>&1 ||
			die "gnuplot failed to draw $CURVE_PNG: $(cat "$WORK/logs/gnuplot.log")"
		mv "$CURVE_PNG.tmp" "$CURVE_PNG"
		printf '\n![the budget curve: application p99 and rows/s by budget](%s)\n' \
			"${CURVE_PNG##*/}" >>"$MD"
		say "wrote $CURVE_PNG"
	fi
fi

echo
cat "$MD"
echo
for t in "${TARGETS[@]}"; do
	echo "$t"
done
echo
say "wrote $CSV, $MD, $PNG"
if ((BROKEN)); then
	say "FAILED: a strategy produced wrong data or the daemon failed (see above)"
	exit 1
fi
