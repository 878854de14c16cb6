#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_30_lag_slot: a logical replication slot that nobody consumes, created while a job runs
# with max_slot_retained 1MB, retains the WAL written after it: the job is throttled with the
# slot's name in the reason and stays still; dropping the slot resumes it by itself, and it
# ends done with every row written once. No standby needed: slots live on the primary.
. "$BF_ROOT/tests/lib/test.sh"

slot=stuck_cdc
slot_gone() {
	[[ $(psql_q "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot'") == 0 ]]
}

lag_items 60000
lag_conf "$BF_TMPDIR/bf.yaml" "$BF_DB_CONNINFO" <<YAML
max_slot_retained: 1MB
resume_below: 50%
check_interval: 250ms
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
wait_for "the job is under way" 30 rows_done_at_least fill 2000
assert_eq "running while no slot holds WAL back" running "$(job_state fill)"

# Slots are cluster-wide: never leave this one behind for the next tests.
bf_defer psql_q "SELECT pg_drop_replication_slot('$slot') FROM pg_replication_slots WHERE slot_name = '$slot'"
psql_q "SELECT pg_create_logical_replication_slot('$slot', 'test_decoding')" >/dev/null
# 2 MiB that the slot must retain, whatever the job's own pace
psql_q "SELECT pg_logical_emit_message(true, 'x', repeat('x', 1048576))" >/dev/null
psql_q "SELECT pg_logical_emit_message(true, 'x', repeat('x', 1048576))" >/dev/null
wait_for "throttled by the slot" 5 job_is fill throttled
assert_match "the reason names the slot and the limit" \
	"^slot $slot retains [0-9.]+[kMG]?B > 1MB\$" "$(job state_reason fill)"
r=$(job rows_done fill)
sleep 2 # the assertion is about these 2 seconds: no batch may commit while throttled
assert_eq "no batch commits while the slot holds WAL" "$r" "$(job rows_done fill)"
assert_match "the progress view shows it" "^throttled slot $slot retains" \
	"$(psql_q "SELECT state || ' ' || state_reason FROM backfill.progress WHERE name = 'fill'")"

psql_q "SELECT pg_drop_replication_slot('$slot')" >/dev/null
assert_true "the slot is gone" slot_gone
wait_for "running again once the slot is dropped" 5 job_is fill running
daemon_wait 120
assert_eq "exit status" 0 "$DAEMON_RC"
assert_eq "done" "done" "$(job_state fill)"
assert_eq "rows_done" 60000 "$(job rows_done fill)"
assert_eq "every row exactly once" "1 1" "$(psql_q "SELECT min(n), max(n) FROM items" -F ' ')"
assert_true "the throttle was logged with the slot" \
	grep -q "state=throttled from=running reason=\"slot $slot retains" "$BF_TMPDIR/daemon.log"
test_finish
