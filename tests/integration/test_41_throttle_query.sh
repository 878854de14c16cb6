#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_41_throttle_query: a job throttled by a signal only its operator knows: a query of the
# application's own (here the p99 in a table the application keeps), run on the server's
# monitor every check interval, one number, against throttle_above. Over it: throttled,
# saying "throttle_query 80 > 50"; under it: running again. A query that fails (its table
# dropped) throttles with the server's error as the reason (fail closed); fixed, the job goes
# on. Every row is updated once.
. "$BF_ROOT/tests/lib/test.sh"

psql_q "CREATE TABLE app_latency (p99_ms int NOT NULL)"
psql_q "INSERT INTO app_latency VALUES (5)"
psql_q "CREATE TABLE items (id int PRIMARY KEY, y int, n int NOT NULL DEFAULT 0)"
psql_q "INSERT INTO items (id) SELECT g FROM generate_series(1, 150000) g"
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: fill
    table: items
    set: "y = id, n = n + 1"
    where: "y IS NULL"
    batch_size: 200
    target_batch_time: 0
    sleep: 0
    max_rows_per_second: 5000
    throttle_query: "SELECT max(p99_ms) FROM app_latency"
    throttle_above: 50
    lag:
      check_interval: 200ms
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
wait_for "the job is under way" 30 rows_done_at_least fill 1000
assert_eq "running while the application is fine" running "$(job_state fill)"

psql_q "UPDATE app_latency SET p99_ms = 80"
wait_for "throttled by the application's own figure" 10 job_is fill throttled
assert_eq "the reason gives the number and the limit" "throttle_query 80 > 50" \
	"$(job state_reason fill)"
psql_q "UPDATE app_latency SET p99_ms = 20"
wait_for "running again under the limit" 10 job_is fill running

psql_q "ALTER TABLE app_latency RENAME TO app_latency_gone"
wait_for "a failing query throttles (fail closed)" 10 job_is fill throttled
assert_match "with the server's error" '^throttle_query failed: relation "app_latency" does not exist' \
	"$(job state_reason fill)"
psql_q "ALTER TABLE app_latency_gone RENAME TO app_latency"
wait_for "running again once the query works" 10 job_is fill running

daemon_wait 120
assert_eq "daemon exit status" 0 "$DAEMON_RC"
assert_eq "done" "done" "$(job_state fill)"
assert_eq "rows_done" 150000 "$(job rows_done fill)"
assert_eq "every row updated once" 0 \
	"$(psql_q "SELECT count(*) FROM items WHERE y IS DISTINCT FROM id OR n <> 1")"
test_finish
