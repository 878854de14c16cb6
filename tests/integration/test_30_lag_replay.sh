#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_30_lag_replay: a real streaming standby (pg_basebackup -R). Replay paused on it during a
# running job with max_replay_bytes 1MB: the job is throttled within two check intervals, no
# batch commits while throttled, the reason names the byte lag and the standby; after
# pg_wal_replay_resume() it resumes by itself and ends done with the right result. The
# metrics say it: throttled seconds with reason replay_lag grow while it is held, the standby's
# replay lag in bytes is there, the lag probe works.
. "$BF_ROOT/tests/lib/test.sh"

pg_start_standby main standby1
on_standby() { psql_on standby1 "$1" -d postgres; }

lag_items 100000
lag_conf "$BF_TMPDIR/bf.yaml" "$BF_DB_CONNINFO" <<YAML
max_replay_bytes: 1MB
resume_below: 50%
check_interval: 250ms
standbys: [standby1]
YAML
PORT=$(_bf_free_port)
echo "metrics_listen: \"127.0.0.1:$PORT\"" >>"$BF_TMPDIR/bf.yaml"
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
wait_for "the job is under way" 30 rows_done_at_least fill 2000
assert_eq "running while the standby keeps up" running "$(job_state fill)"

on_standby "SELECT pg_wal_replay_pause()" >/dev/null
# a bounded amount of WAL the standby cannot replay, whatever the job's speed
psql_q "SELECT pg_logical_emit_message(true, 'x', repeat('x', 1048576))" >/dev/null
psql_q "SELECT pg_logical_emit_message(true, 'x', repeat('x', 1048576))" >/dev/null
wait_for "throttled once replay stopped" 5 job_is fill throttled
assert_match "the reason names the byte lag and the standby" \
	'^replay lag [0-9.]+[kMG]?B > 1MB on standby1$' "$(job state_reason fill)"
r=$(job rows_done fill)
changed=$(psql_q "SELECT count(*) FROM items WHERE n > 0")
held=$(metric "$(metrics_get "$PORT" /metrics)" 'backfilld_throttled_seconds_total{job="fill",reason="replay_lag"}')
sleep 3 # the assertion is about these 3 seconds: no batch may commit while throttled
page=$(metrics_get "$PORT" /metrics)
assert_true "throttled_seconds_total{reason=replay_lag} grew by the 3 s ($held, then $(metric "$page" 'backfilld_throttled_seconds_total{job="fill",reason="replay_lag"}'))" \
	awk -v a="$held" -v b="$(metric "$page" 'backfilld_throttled_seconds_total{job="fill",reason="replay_lag"}')" \
	'BEGIN { exit !(b - a >= 2.9 && b - a < 10) }'
assert_eq "no other reason counted" 0.000 \
	"$(metric "$page" 'backfilld_throttled_seconds_total{job="fill",reason="rate"}')"
lag_bytes=$(metric "$page" "backfilld_replay_lag_bytes{database=\"127.0.0.1:$BF_PG_PORT_MAIN/$BF_TEST_DB\",standby=\"standby1\"}")
assert_true "the standby's replay lag in bytes ($lag_bytes)" test "${lag_bytes:-0}" -ge 1048576
assert_eq "the lag probe works" 1 \
	"$(metric "$page" "backfilld_lag_probe_ok{database=\"127.0.0.1:$BF_PG_PORT_MAIN/$BF_TEST_DB\"}")"
assert_eq "no batch commits while throttled" "$r" "$(job rows_done fill)"
assert_eq "the table still while throttled" "$changed" \
	"$(psql_q "SELECT count(*) FROM items WHERE n > 0")"
assert_eq "still throttled" throttled "$(job_state fill)"
assert_match "the progress view shows it" "throttled" \
	"$(psql_q "SELECT state || ' ' || state_reason FROM backfill.progress WHERE name = 'fill'")"

on_standby "SELECT pg_wal_replay_resume()" >/dev/null
wait_for "running again by itself" 10 job_is fill running
daemon_wait 120
assert_eq "exit status" 0 "$DAEMON_RC"
assert_eq "done" "done" "$(job_state fill)"
assert_eq "rows_done" 100000 "$(job rows_done fill)"
assert_eq "every row exactly once" "1 1" "$(psql_q "SELECT min(n), max(n) FROM items" -F ' ')"
assert_true "the throttle was logged" grep -q 'state=throttled from=running reason="replay lag' \
	"$BF_TMPDIR/daemon.log"
assert_true "the resume was logged" grep -q 'state=running from=throttled' "$BF_TMPDIR/daemon.log"

test_finish
