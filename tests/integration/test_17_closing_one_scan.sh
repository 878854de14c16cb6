#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_17_closing_one_scan: the closing read first counts every key left in one statement,
# under a statement_timeout of its own. On a clean table that one scan ends the job (read=scan).
# When it runs out of time, the walk range by range takes over (each range is short), and the
# job still ends done, with no error counted and every row updated once: on the ranges the pass
# recorded, and on ordered chunks after a restart (kill -9 in the middle of the pass).
# The slow table is made slow for reads of finished rows only: its `where` calls slow_after(id),
# which sleeps 1.5 s on ids 100000, 200000 and 300000 once y is set. The single scan meets all
# three (4.5 s > its 4 s statement_timeout); each ~100,000-key range meets one (1.5 s: a margin
# of 2.5 s for a busy machine, where 1 s of it was once too little).
# The single scan is for jobs without a commit-latency budget; a job under one (the default)
# reads range by range from the start, each statement paced as a batch (job paced).
. "$BF_ROOT/tests/lib/test.sh"

for t in clean paced; do
	psql_q "CREATE TABLE $t (id int PRIMARY KEY, y int)"
	psql_q "INSERT INTO $t (id) SELECT g FROM generate_series(1, 20000) g"
done
for t in slow slow_restarted; do
	psql_q "CREATE TABLE $t (id int PRIMARY KEY, y int, n_set int NOT NULL DEFAULT 0)"
	psql_q "INSERT INTO $t (id) SELECT g FROM generate_series(1, 300000) g"
done
psql_q "CREATE FUNCTION slow_after(i int) RETURNS bool LANGUAGE sql VOLATILE AS
        'SELECT false FROM (SELECT pg_sleep(CASE WHEN i % 100000 = 0 THEN 1.5 ELSE 0 END)) s'"

bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: clean
    table: clean
    set: "y = id"
    where: "y IS NULL"
    max_commit_latency: "off"
    sleep: 0
  - name: paced
    table: paced
    set: "y = id"
    where: "y IS NULL"
    sleep: 0
  - name: slow
    table: slow
    set: "y = id, n_set = n_set + 1"
    where: "y IS NULL OR slow_after(id)"
    batch_size: 5000
    max_batch_size: 10000
    statement_timeout: 4s
    max_commit_latency: "off"
    sleep: 0
YAML
daemon_run 120 "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
assert_eq "daemon exit status (124: still running after 120 s)" 0 "$DAEMON_RC"

assert_eq "clean: done" "done" "$(job_state clean)"
assert_match "clean: the one scan found no row left" \
	'job=clean msg="no row left to do" rows=20000 passes=1 read=scan$' \
	"$(grep 'job=clean msg="no row left to do"' "$BF_TMPDIR/daemon.log")"

assert_eq "paced: done" "done" "$(job_state paced)"
assert_match "paced: read by ranges from the start, no single scan" \
	'job=paced msg="no row left to do" rows=20000 passes=1 read=ranges$' \
	"$(grep 'job=paced msg="no row left to do"' "$BF_TMPDIR/daemon.log")"

assert_match "slow: the single scan ran out of time and the walk took over" \
	'job=slow msg="the closing read.s single scan took too long, going on range by range" statement_timeout=4000ms mode=ranges' \
	"$(grep 'job=slow msg="the closing read' "$BF_TMPDIR/daemon.log")"
assert_match "slow: the ranges found no row left" \
	'job=slow msg="no row left to do" rows=300000 passes=1 read=ranges$' \
	"$(grep 'job=slow msg="no row left to do"' "$BF_TMPDIR/daemon.log")"
assert_eq "slow: done" "done" "$(job_state slow)"
assert_eq "slow: no error counted" 0 "$(job errors slow)"
assert_eq "slow: every row updated exactly once" 0 \
	"$(psql_q "SELECT count(*) FROM slow WHERE n_set <> 1 OR y IS DISTINCT FROM id")"

# the same job on another table, its daemon killed in the middle of the pass: the next one
# did not see the pass start, so the walk after the single scan is by ordered chunks
sed -e '/^  - name: clean/,/^  - name: slow/{/^  - name: slow/!d}' -e 's/\bslow\b/slow_restarted/g' \
	"$BF_TMPDIR/bf.yaml" >"$BF_TMPDIR/restarted.yaml"
daemon_start "$BF_TMPDIR/restarted.yaml" "$BF_TMPDIR/first.log"
wait_for "the pass under way" 60 rows_done_at_least slow_restarted 50000
kill -9 "$DAEMON_PID"
daemon_wait 30
daemon_run 120 "$BF_TMPDIR/restarted.yaml" "$BF_TMPDIR/second.log" --exit-when-done
assert_eq "restarted: daemon exit status (124: still running after 120 s)" 0 "$DAEMON_RC"
assert_true "restarted: the single scan ran out of time, chunks took over" \
	grep -q 'msg="the closing read.s single scan took too long, going on range by range".*mode=chunks' \
	"$BF_TMPDIR/second.log"
assert_true "restarted: the chunks found no row left" \
	grep -q 'job=slow_restarted msg="no row left to do" rows=300000 passes=1 read=chunks$' \
	"$BF_TMPDIR/second.log"
assert_eq "restarted: no error counted" 0 "$(job errors slow_restarted)"
assert_eq "restarted: every row updated exactly once" 0 \
	"$(psql_q "SELECT count(*) FROM slow_restarted WHERE n_set <> 1 OR y IS DISTINCT FROM id")"
test_finish
