#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_24_ctl_daemon: backfillctl pause JOB from another process pauses only that job within
# one second while the second job keeps running; the pause survives a daemon restart; resume
# continues it; cancel ends it as cancelled.
. "$BF_ROOT/tests/lib/test.sh"

for t in a b; do
	psql_q "CREATE TABLE $t (id int PRIMARY KEY, y int)"
	psql_q "INSERT INTO $t (id) SELECT g FROM generate_series(1, 100000) g"
done
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
defaults:
  batch_size: 200
  min_batch_size: 100
  target_batch_time: 0
  sleep: 100ms
jobs:
  - name: job_a
    table: a
    set: "y = id"
    where: "y IS NULL"
  - name: job_b
    table: b
    set: "y = id"
    where: "y IS NULL"
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log"
both_under_way() {
	[[ $(psql_q "SELECT count(*) FROM backfill.jobs WHERE rows_done > 0") == 2 ]]
}
wait_for "both jobs under way" 30 both_under_way

t0=$EPOCHREALTIME
"$BF_CTL" pause job_a >/dev/null
wait_for "job_a paused within one second" 1 job_is job_a paused
echo "paused after $(awk "BEGIN { print $EPOCHREALTIME - $t0 }") s"
assert_eq "the reason names backfillctl" "paused by backfillctl" "$(job state_reason job_a)"
a=$(job rows_done job_a)
b=$(job rows_done job_b)
more_b() { rows_done_at_least job_b $((b + 1000)); }
wait_for "job_b keeps running" 10 more_b
assert_eq "job_a did not move meanwhile" "$a" "$(job rows_done job_a)"

# the pause is in the control table: it survives a restart of the daemon
kill -TERM "$DAEMON_PID"
daemon_wait 30
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon2.log"
wait_for "job_b runs again after the restart" 10 job_is job_b running
assert_eq "job_a still paused after the restart" paused "$(job_state job_a)"

"$BF_CTL" resume job_a >/dev/null
wait_for "job_a resumed within one second" 1 job_is job_a running
more_a() { rows_done_at_least job_a $((a + 200)); }
wait_for "job_a moves again" 10 more_a

"$BF_CTL" cancel job_b >/dev/null
wait_for "job_b cancelled within one second" 1 job_is job_b cancelled
assert_eq "requested_state cleared" "" "$(job requested_state job_b)"
assert_match "the reason names backfillctl" "cancelled by backfillctl" "$(job state_reason job_b)"
assert_true "the daemon is still alive" kill -0 "$DAEMON_PID"
kill -TERM "$DAEMON_PID"
daemon_wait 30
assert_eq "exit status" 0 "$DAEMON_RC"
test_finish
