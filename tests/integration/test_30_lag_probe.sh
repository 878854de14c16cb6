#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_30_lag_probe: the lag probe as an operator would run it, as a role that is not a
# superuser, and its fail-closed promise. Without pg_monitor, pg_stat_replication hides the
# standby's positions: the job is throttled, saying so, instead of reading "no lag"; granted
# pg_monitor it runs. The monitor's connection lost and not coming back (the role's connection
# limit): throttled with the connection error; allowed again: the monitor reconnects by itself
# and the job resumes and ends done. Each failing episode is logged once, however many probes.
. "$BF_ROOT/tests/lib/test.sh"

pg_start_standby main standby1
test_role lag
psql_q "GRANT CREATE ON DATABASE $BF_TEST_DB TO $ROLE"
lag_items 60000
psql_q "ALTER TABLE items OWNER TO $ROLE"

monitor_sessions() {
	psql_q "SELECT count(*) FROM pg_stat_activity
	        WHERE application_name = 'backfilld lag' AND usename = '$ROLE'"
}
reason_matches() {
	[[ $(job state_reason fill) =~ $1 ]]
}
monitor_connected() {
	[[ $(monitor_sessions) == 1 ]]
}

lag_conf "$BF_TMPDIR/bf.yaml" "host=127.0.0.1 port=$BF_PG_PORT_MAIN user=$ROLE dbname=$BF_TEST_DB" <<YAML
max_replay_bytes: 64MB
check_interval: 250ms
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
wait_for "throttled: the standby's positions are hidden from the role" 10 job_is fill throttled
assert_eq "the reason says what to grant" \
	"lag signal unreadable: role $ROLE cannot see the standbys in pg_stat_replication (grant it pg_monitor)" \
	"$(job state_reason fill)"
assert_eq "nothing written while unreadable" 0 "$(job rows_done fill)"

psql_q "GRANT pg_monitor TO $ROLE"
wait_for "running once the role has pg_monitor" 5 job_is fill running
wait_for "the job is under way" 30 rows_done_at_least fill 2000

# The monitor's connection goes and cannot come back: fail closed, with the libpq error.
psql_q "ALTER ROLE $ROLE CONNECTION LIMIT 0"
bf_defer psql_q "ALTER ROLE $ROLE CONNECTION LIMIT -1"
assert_eq "the monitor's own session, by its application_name" 1 "$(monitor_sessions)"
psql_q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE application_name = 'backfilld lag' AND usename = '$ROLE'" >/dev/null
wait_for "throttled while the monitor cannot connect" 5 job_is fill throttled
# first "server closed the connection", then each reconnect's own error
wait_for "the reason is the reconnect's error" 5 reason_matches \
	"^lag signal unreadable: connection to server .* too many connections for role \"$ROLE\""
assert_eq "still throttled" throttled "$(job_state fill)"
r=$(job rows_done fill)
sleep 2 # the assertion is about these 2 seconds: no batch may commit while unreadable
assert_eq "no batch commits while the signal is unreadable" "$r" "$(job rows_done fill)"

psql_q "ALTER ROLE $ROLE CONNECTION LIMIT -1"
wait_for "the monitor reconnects by itself (backoff)" 15 monitor_connected
wait_for "running again" 5 job_is fill running
daemon_wait 120
assert_eq "exit status" 0 "$DAEMON_RC"
assert_eq "done" "done" "$(job_state fill)"
assert_eq "rows_done" 60000 "$(job rows_done fill)"
assert_eq "every row exactly once" "1 1" "$(psql_q "SELECT min(n), max(n) FROM items" -F ' ')"
assert_eq "each failing episode logged once" 2 \
	"$(grep -c 'msg="lag probe failing' "$BF_TMPDIR/daemon.log")"
assert_eq "each recovery logged once" 2 \
	"$(grep -c 'msg="lag probe readable again"' "$BF_TMPDIR/daemon.log")"
test_finish
