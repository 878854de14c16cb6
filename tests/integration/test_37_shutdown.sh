#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_37_shutdown: SIGTERM with a batch in flight that outlasts shutdown_timeout (a `set` that
# sleeps on one row). At shutdown_timeout (1s) the batch is cancelled: the daemon exits 0
# within about a second and a round trip, the server shows no backfilld query left, the batch
# rolled back with its checkpoint (rows_done is the rows changed, the slow row not among them),
# and the job is pending with no owner. A restart finishes the job.
. "$BF_ROOT/tests/lib/test.sh"

psql_q "CREATE TABLE t (id int PRIMARY KEY, y int)"
psql_q "INSERT INTO t (id) SELECT g FROM generate_series(1, 20000) g"
psql_q "CREATE TABLE knob (slow bool NOT NULL); INSERT INTO knob VALUES (true)"
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
shutdown_timeout: 1s
jobs:
  - name: slow
    table: t
    set: "y = CASE WHEN id = 15000 AND (SELECT slow FROM knob) THEN (SELECT id FROM pg_sleep(600)) ELSE id END"
    where: "y IS NULL"
    batch_size: 1000
    target_batch_time: 0
    sleep: 0
    statement_timeout: 5min
    lag:
      max_replay_bytes: 0
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
sleeping() { [[ $(psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'backfilld'
                          AND wait_event = 'PgSleep'") == 1 ]]; }
wait_for "the batch with the slow row is in flight" 60 sleeping
t0=$EPOCHREALTIME
kill -TERM "$DAEMON_PID"
daemon_wait 10
took=$(awk "BEGIN { printf \"%.2f\", $EPOCHREALTIME - $t0 }")
cat "$BF_TMPDIR/daemon.log"
echo "SIGTERM to exit: ${took}s"
assert_eq "exit status" 0 "$DAEMON_RC"
assert_eq "within shutdown_timeout and a round trip" 1 "$(awk "BEGIN { print $took < 2.5 }")"
assert_true "the batch was cancelled at shutdown_timeout" \
	grep -q 'msg="shutdown_timeout reached: cancelling in-flight batches" active=1' "$BF_TMPDIR/daemon.log"
assert_eq "no backfilld query left on the server" 0 \
	"$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'backfilld'")"
assert_eq "the slow row was rolled back" "" "$(psql_q "SELECT y FROM t WHERE id = 15000")"
assert_eq "the checkpoint is the last committed batch: rows_done = rows changed" \
	"$(psql_q "SELECT count(*) FROM t WHERE y IS NOT NULL")" "$(job rows_done slow)"
assert_eq "pending, no owner" "pending daemon stopped " \
	"$(psql_q "SELECT state || ' ' || state_reason || ' ' || coalesce(owner, '') FROM backfill.jobs")"

psql_q "UPDATE knob SET slow = false"
daemon_run 60 "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/again.log" --exit-when-done
assert_eq "a restart finishes the job" "0 done 20000" \
	"$(psql_q "SELECT (SELECT count(*) FROM t WHERE y IS DISTINCT FROM id), state, rows_done FROM backfill.jobs" -F ' ')"
test_finish
