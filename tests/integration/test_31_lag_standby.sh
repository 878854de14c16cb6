#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_31_lag_standby: standbys: [standby1]. The standby stopped: throttled ("standby1 not
# streaming"); started again: resumes. Its WAL receiver frozen with SIGSTOP (still listed in
# pg_stat_replication, its replies stop): throttled once stall_after passes; SIGCONT: resumes.
. "$BF_ROOT/tests/lib/test.sh"

pg_start_standby main standby1
psql_q "CREATE TABLE items (id int PRIMARY KEY, y int)"
psql_q "INSERT INTO items (id) SELECT g FROM generate_series(1, 200000) g"
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: fill
    table: items
    set: "y = id"
    where: "y IS NULL"
    batch_size: 200
    min_batch_size: 100
    target_batch_time: 0
    sleep: 50ms
    lag:
      standbys: [standby1]
      stall_after: 2s
      check_interval: 250ms
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
wait_for "the job is under way" 30 rows_done_at_least fill 1000

pg_stop standby1
wait_for "throttled with the standby gone" 5 job_is fill throttled
assert_match "the reason names the standby" '^standby1 not streaming' "$(job state_reason fill)"
pg_restart standby1
wait_for "running again once the standby streams" 30 job_is fill running

pid=$(psql_on standby1 "SELECT pid FROM pg_stat_wal_receiver" -d postgres)
assert_match "the WAL receiver's pid" '^[0-9]+$' "$pid"
bf_defer kill -CONT "$pid"
kill -STOP "$pid"
stopped_at=${EPOCHREALTIME/./}
wait_for "throttled once its replies are older than stall_after" 10 job_is fill throttled
waited_ms=$(((${EPOCHREALTIME/./} - stopped_at) / 1000))
# its last reply came at most a moment before SIGSTOP (the job's WAL keeps it replying)
assert_ge "not throttled before stall_after (2s) passed: ${waited_ms}ms" "$waited_ms" 1500
assert_match "the reason says stalled" '^standby1 stalled: last reply' "$(job state_reason fill)"
assert_eq "still listed in pg_stat_replication" 1 \
	"$(psql_q "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'standby1'")"
kill -CONT "$pid"
wait_for "running again after SIGCONT" 15 job_is fill running
kill -TERM "$DAEMON_PID"
daemon_wait 30
assert_eq "exit status" 0 "$DAEMON_RC"
assert_eq "rows_done matches the table" \
	"$(psql_q "SELECT count(*) FROM items WHERE y IS NOT NULL")" "$(job rows_done fill)"
test_finish
