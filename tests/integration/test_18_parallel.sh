#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_18_parallel: `parallel: 4` cuts the first pass into 4 slices of about the same number of
# keys (from the key's histogram) and walks them at once, one connection each, under the job's
# lock. SIGUSR1 pauses every slice (nothing commits for 2 s); kill -9 in the middle, then a
# second daemon resumes each slice from its own cursor; a row the application holds is left to
# the sweep after the check. In the end every row was updated exactly once and the job's
# rows_done counts each row once.
. "$BF_ROOT/tests/lib/test.sh"

N=200000
items_table "$N"

conf() { # $1: extra job keys, one "key: value" per line
	items_conf "$BF_TMPDIR/bf.yaml" "$BF_DB_CONNINFO" <<YAML
batch_size: 1000
target_batch_time: 0
sleep: 0
parallel: 4
$1
YAML
}
sessions() { psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'backfilld'"; }
slices_moved() { [[ $(psql_q "SELECT count(*) FROM backfill.slices WHERE rows_done > 0") == "$1" ]]; }
slice_rows() { psql_q "SELECT sum(rows_done) FROM backfill.slices"; }
# the job's count: its own batches (backfill.jobs) and its slices', added up by the view
view_rows() { psql_q "SELECT rows_done FROM backfill.progress WHERE name = 'items_fill'"; }
view_rows_at_least() { [[ $(view_rows) -ge $1 ]]; }

# 20,000 rows/s shared by 4 slices: about 10 s for the table, time to look at it
conf "max_rows_per_second: 20000"
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon1.log" --exit-when-done
wait_for "all four slices moved" 30 slices_moved 4
assert_eq "the job's lock holder and one connection per slice" 5 "$(sessions)"
assert_eq "each holds its own advisory lock (the job's, one per slice)" 5 \
	"$(psql_q "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")"
assert_eq "each slice records its batch size, which the view shows" "4 1000" "$(psql_q "
	SELECT count(*) FILTER (WHERE batch_size = 1000),
	       (SELECT batch_size FROM backfill.progress) FROM backfill.slices" -F ' ')"
assert_true "the log says it" grep -q 'msg="first pass in slices, one connection each" slices=4 left=4' \
	"$BF_TMPDIR/daemon1.log"
assert_eq "the last slice ends at the high-water mark" "t" "$(psql_q "
	SELECT s.high_key = j.high_key FROM backfill.slices s JOIN backfill.jobs j ON j.name = s.job
	WHERE s.slice = 4")"
assert_eq "slice ends increase" "t" "$(psql_q "
	SELECT bool_and(e > coalesce(p, 0)) FROM (SELECT high_key[1]::bigint AS e,
	  lag(high_key[1]::bigint) OVER (ORDER BY slice) AS p FROM backfill.slices) x")"

kill -USR1 "$DAEMON_PID"
wait_for "paused after SIGUSR1" 10 job_is items_fill paused
idle() { [[ $(psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'backfilld'
                       AND state <> 'idle'") == 0 ]]; }
wait_for "every slice's batch committed" 10 idle
at_pause=$(slice_rows)
sleep 2 # the assertion is about these 2 seconds: no slice may commit while paused
assert_eq "no slice moved while paused" "$at_pause" "$(slice_rows)"
kill -USR2 "$DAEMON_PID"
wait_for "running again" 10 job_is items_fill running
wait_for "a third of the rows" 60 view_rows_at_least $((N / 3))
kill -9 "$DAEMON_PID"
daemon_wait 10
assert_eq "first daemon died of SIGKILL" 137 "$DAEMON_RC"
no_session() { [[ $(sessions) == 0 ]]; }
wait_for "the killed daemon's sessions are gone" 30 no_session
psql_q "SELECT slice, cursor, high_key, rows_done FROM backfill.slices ORDER BY slice"
changed=$(psql_q "SELECT count(*) FROM items WHERE n_set > 0")
assert_eq "rows_done at the crash equals the rows changed" "$changed" "$(view_rows)"
assert_eq "all of them the slices'" "$changed" "$(slice_rows)"
assert_le "not done yet" "$changed" $((N - 1))

# the application holds a row of the last slice: the slices skip it, the sweep takes it
HELD=$((N - 10)) # near the end of the last slice, far from where it stands now
hold_row items "$HELD" 120
assert_eq "the held row is still to do" "" "$(psql_q "SELECT new_col FROM items WHERE id = $HELD")"
conf ""
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon2.log" --exit-when-done
waiting() { [[ $(job state_reason items_fill 2>/dev/null) =~ ^"waiting for 1"\+?" rows locked by other sessions"$ ]]; }
wait_for "the closing read found the held row" 60 waiting || cat "$BF_TMPDIR/daemon2.log"
assert_eq "the held row is left to the sweep" "" "$(psql_q "SELECT new_col FROM items WHERE id = $HELD")"
release_rows
daemon_wait 60
cat "$BF_TMPDIR/daemon2.log"
assert_eq "second daemon exit status" 0 "$DAEMON_RC"
assert_true "it resumed the slices left" grep -q 'msg="first pass in slices, one connection each" slices=4' \
	"$BF_TMPDIR/daemon2.log"
assert_true "the closing read ran over the whole table" \
	grep -q 'msg="pass done, reading what is left" pass=1 from_start=true mode=chunks' \
	"$BF_TMPDIR/daemon2.log"
assert_eq "job state" "done" "$(job_state items_fill)"
assert_eq "every slice reached its end" 4 \
	"$(psql_q "SELECT count(*) FROM backfill.slices WHERE cursor = high_key")"
assert_eq "rows_done equals the table" "$N" "$(view_rows)"
assert_eq "the job's own batches did the held row" 1 "$(job rows_done items_fill)"
assert_eq "every row updated exactly once" "1 1 $N" \
	"$(psql_q "SELECT min(n_set), max(n_set), count(*) FROM items" -F ' ')"
assert_eq "about a quarter of the keys per slice" "t" "$(psql_q "
	SELECT bool_and(rows_done BETWEEN $N / 8 AND $N / 2) FROM backfill.slices")"
assert_eq "progress shows 100%" "100.0" "$(psql_q "SELECT percent FROM backfill.progress")"
psql_q "SELECT * FROM backfill.slices ORDER BY slice"

# an SQL error in one slice fails the job, with the slice named, and the other slices stop
psql_q "CREATE TABLE other (id bigint PRIMARY KEY, v text, w text)"
psql_q "INSERT INTO other (id, v) SELECT g, 'v' || g FROM generate_series(1, 40000) g"
psql_q "VACUUM ANALYZE other"
bf_conf "$BF_TMPDIR/bad.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: other_fill
    table: other
    set: "w = CASE WHEN id = 35000 THEN (1 / (id - 35000))::text ELSE upper(v) END"
    where: "w IS NULL"
    sleep: 0
    parallel: 4
YAML
daemon_run 60 "$BF_TMPDIR/bad.yaml" "$BF_TMPDIR/bad.log" --exit-when-done
cat "$BF_TMPDIR/bad.log"
assert_eq "exit status: a job failed" 3 "$DAEMON_RC"
assert_eq "the job failed" failed "$(job_state other_fill)"
assert_match "its error names the slice and the server's message" \
	'^slice 4: division by zero' "$(job last_error other_fill)"
assert_eq "no session left" 0 "$(sessions)"
test_finish
