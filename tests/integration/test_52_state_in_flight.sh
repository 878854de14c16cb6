#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_52_state_in_flight: a state write records what it carried, not what the job became while
# it was on the wire. A job walks in two slices; paused (SIGUSR1), then its row in backfill.jobs
# is locked by another session and the job resumed (SIGUSR2): its `running` write waits for the
# lock while the slices go on, and the second slice meets a division by zero, failing the job.
# Released, the daemon must write `failed` too, with the slice's error, and exit 3; it used to
# take the `running` it had written for the `failed` it had become and exit, the row left
# `running` without an error.
. "$BF_ROOT/tests/lib/test.sh"

psql_q "CREATE TABLE items (id int PRIMARY KEY, z int NOT NULL DEFAULT 1, y int)"
psql_q "INSERT INTO items (id) SELECT g FROM generate_series(1, 4000) g"
psql_q "UPDATE items SET z = 0 WHERE id = 4000"
psql_q "VACUUM ANALYZE items"
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: fill
    table: items
    set: "y = 10 / z"
    where: "y IS NULL"
    parallel: 2
    batch_size: 100
    target_batch_time: 0
    sleep: 100ms
    lock_timeout: 60s
    statement_timeout: 60s
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
slices_walk() { [[ $(psql_q "SELECT coalesce(sum(rows_done), 0) FROM backfill.slices") -ge 200 ]]; }
wait_for "both slices under way" 30 slices_walk
kill -USR1 "$DAEMON_PID"
wait_for "paused" 10 job_is fill paused
left=$(psql_q "SELECT count(*) FROM items WHERE y IS NULL")
assert_ge "the failing row is still ahead (rows left)" "$left" 1000

psql_q "BEGIN; SELECT 1 FROM backfill.jobs WHERE name = 'fill' FOR UPDATE;
        SELECT 'bf_hold_row', pg_sleep(120); COMMIT;" >/dev/null 2>&1 &
bf_defer kill "$!"
wait_for "the job's row is locked by another session" 10 _bf_row_held
kill -USR2 "$DAEMON_PID"
failed_in_log() { grep -q 'job=fill msg=state state=failed' "$BF_TMPDIR/daemon.log"; }
wait_for "the second slice fails the job while its 'running' waits" 60 failed_in_log
assert_eq "the row still says paused: the write waits for the lock" paused "$(job_state fill)"
release_rows
daemon_wait 30
assert_eq "exit status: a job failed" 3 "$DAEMON_RC"
assert_eq "the row says failed" failed "$(job_state fill)"
assert_match "with the slice's error" '^slice 2: division by zero' "$(job last_error fill)"
assert_eq "the error counted once" 1 "$(job errors fill)"
test_finish
