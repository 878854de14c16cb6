#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_20_signals: SIGUSR1 pauses every job after its in-flight batch (state paused, reason
# "paused by SIGUSR1"; rows_done and the table stay still for 3 seconds); SIGUSR2 resumes and
# the job finishes correctly; SIGTERM in the middle of a job exits 0 and records the state.
. "$BF_ROOT/tests/lib/test.sh"

N=60000
psql_q "CREATE TABLE items (id int PRIMARY KEY, x int NOT NULL, y int, n int NOT NULL DEFAULT 0)"
psql_q "INSERT INTO items (id, x) SELECT g, g FROM generate_series(1, $N) g"
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: slow
    table: items
    set: "y = x, n = n + 1"
    where: "y IS NULL"
    batch_size: 500
    target_batch_time: 0
    sleep: 50ms
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
wait_for "the job is under way" 30 rows_done_at_least slow 5000

before=$(job rows_done slow)
kill -USR1 "$DAEMON_PID"
wait_for "paused after SIGUSR1" 5 job_is slow paused
at_pause=$(job rows_done slow)
assert_eq "reason" "paused by SIGUSR1" "$(job state_reason slow)"
assert_le "at most the in-flight batch committed after the signal" "$at_pause" $((before + 1000))
changed=$(psql_q "SELECT count(*) FROM items WHERE n > 0")
sleep 3 # the assertion is about these 3 seconds: nothing may commit while paused
assert_eq "rows_done still while paused" "$at_pause" "$(job rows_done slow)"
assert_eq "the table still while paused" "$changed" "$(psql_q "SELECT count(*) FROM items WHERE n > 0")"
assert_eq "still paused" paused "$(job_state slow)"

kill -USR2 "$DAEMON_PID"
wait_for "running again after SIGUSR2" 5 job_is slow running
daemon_wait 120
assert_eq "exit status" 0 "$DAEMON_RC"
assert_eq "done" "done" "$(job_state slow)"
assert_eq "rows_done" "$N" "$(job rows_done slow)"
assert_eq "every row exactly once" "1 1" "$(psql_q "SELECT min(n), max(n) FROM items" -F ' ')"

# SIGTERM: in-flight batch commits, state recorded, exit 0; a restart finishes the job.
psql_q "UPDATE items SET y = NULL"
psql_q "DELETE FROM backfill.jobs"
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon2.log" --exit-when-done
wait_for "the job is under way again" 30 rows_done_at_least slow 5000
kill -TERM "$DAEMON_PID"
daemon_wait 30
cat "$BF_TMPDIR/daemon2.log"
assert_eq "SIGTERM exit status" 0 "$DAEMON_RC"
assert_eq "state recorded at SIGTERM" "pending daemon stopped" \
	"$(psql_q "SELECT state || ' ' || state_reason FROM backfill.jobs WHERE name = 'slow'")"
assert_eq "owner cleared" "" "$(job owner slow)"
assert_eq "rows_done matches the table after SIGTERM" \
	"$(psql_q "SELECT count(*) FROM items WHERE y IS NOT NULL")" "$(job rows_done slow)"

# SIGTERM while the job waits between sweeps for a row the application holds: recorded the same
hold_row items "$N" 120 # not reached yet: the pass ends at it
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon3.log" --exit-when-done
sweeping() { [[ $(job state_reason slow 2>/dev/null) == "waiting for 1 rows locked by other sessions" ]]; }
wait_for "sweeping for the held row" 60 sweeping
kill -TERM "$DAEMON_PID"
daemon_wait 30
cat "$BF_TMPDIR/daemon3.log"
assert_eq "SIGTERM during a sweep: exit status" 0 "$DAEMON_RC"
assert_eq "SIGTERM during a sweep: pending, no owner" "pending daemon stopped " \
	"$(psql_q "SELECT state || ' ' || state_reason || ' ' || coalesce(owner, '') FROM backfill.jobs WHERE name = 'slow'")"
release_rows
test_finish
