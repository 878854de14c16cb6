#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_33_window: `window` is in the database server's local time, not the daemon host's. The
# test database's TimeZone is UTC+12 while the daemon runs with TZ=UTC: a window open around
# the server's wall clock (and 12 hours away from UTC) lets its job run to done; a window open
# around UTC (so closed on the server's clock) keeps its job throttled with "outside window".
. "$BF_ROOT/tests/lib/test.sh"

server_zone='Etc/GMT-12' # POSIX sign: 12 hours east of UTC
psql_q "ALTER DATABASE \"$BF_TEST_DB\" SET timezone = '$server_zone'"
for t in on_server on_daemon; do
	psql_q "CREATE TABLE $t (id int PRIMARY KEY, y int)"
	psql_q "INSERT INTO $t (id) SELECT g FROM generate_series(1, 1000) g"
done
# hh:mm of (now + OFFSET) on the clock of ZONE: each window spans now-1h .. now+2h on its clock,
# so it is closed on the other clock, 12 hours away, by at least 9 hours
at() {
	psql_q "SELECT to_char((now() AT TIME ZONE '$1') + interval '$2', 'HH24:MI')"
}
server_window="$(at "$server_zone" '-1 hour')-$(at "$server_zone" '2 hours')"
daemon_window="$(at UTC '-1 hour')-$(at UTC '2 hours')"
echo "server clock window $server_window, daemon clock (UTC) window $daemon_window"
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: on_server
    table: on_server
    set: "y = id"
    where: "y IS NULL"
    sleep: 0
    window: "$server_window"
  - name: on_daemon
    table: on_daemon
    set: "y = id"
    where: "y IS NULL"
    sleep: 0
    window: "$daemon_window"
YAML
TZ=UTC daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log"
wait_for "on_server done" 30 job_is on_server "done"
wait_for "on_daemon throttled" 30 job_is on_daemon throttled
assert_eq "rows filled inside the server's window" 1000 "$(job rows_done on_server)"
assert_eq "reason of the job outside the server's window" "outside window $daemon_window" \
	"$(job state_reason on_daemon)"
assert_eq "no row filled outside it" 0 \
	"$(psql_q "SELECT count(*) FROM on_daemon WHERE y IS NOT NULL")"
kill -TERM "$DAEMON_PID"
daemon_wait 30
assert_eq "daemon exit status after SIGTERM" 0 "$DAEMON_RC"
test_finish
