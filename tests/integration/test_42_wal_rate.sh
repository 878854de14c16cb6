#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_42_wal_rate: max_wal_rate meters the WAL a server's backfill writes: two jobs on one
# server (one of them in two slices) share one budget of 3MB/s, so over a 20 s window in the
# middle of their run the server's WAL grows by 3MB/s within 10% (measured on the server:
# pg_current_wal_lsn). Metered, not stopped: the jobs stay running; stopped with SIGTERM,
# no row was updated twice and rows_done counts exactly the rows updated.
. "$BF_ROOT/tests/lib/test.sh"

N=200000
for t in a b; do
	psql_q "CREATE TABLE $t (id int PRIMARY KEY, filler text NOT NULL, y int, n int NOT NULL DEFAULT 0)"
	psql_q "INSERT INTO $t (id, filler) SELECT g, repeat('x', 100) FROM generate_series(1, $N) g"
	psql_q "VACUUM ANALYZE $t"
done
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
defaults:
  set: "y = id, n = n + 1"
  where: "y IS NULL"
  batch_size: 500
  target_batch_time: 0
  sleep: 0
  max_wal_rate: 3MB
jobs:
  - name: fill_a
    table: a
    parallel: 2
  - name: fill_b
    table: b
YAML
lsn() { psql_q "SELECT pg_current_wal_lsn()"; }
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
view_rows() { psql_q "SELECT rows_done FROM backfill.progress WHERE name = '$1'"; }
both_under_way() { (($(view_rows fill_a) >= 2000 && $(view_rows fill_b) >= 2000)); }
wait_for "both jobs under way" 30 both_under_way
lsn0=$(lsn)
t0=$(date +%s%N)
window_passed() { (($(date +%s%N) - t0 >= 20000000000)); } # a measurement window
wait_for "20 s of metered WAL" 30 window_passed
lsn1=$(lsn)
t1=$(date +%s%N)
rate=$(psql_q "SELECT round(pg_wal_lsn_diff('$lsn1', '$lsn0') / (($t1 - $t0) / 1e9))")
echo "WAL rate over $(((t1 - t0) / 1000000)) ms: $rate B/s (budget 3145728)"
assert_le "the WAL rate within 10% above the budget" "$rate" $((3145728 * 110 / 100))
assert_ge "and within 10% below it: the budget is used" "$rate" $((3145728 * 90 / 100))
assert_eq "fill_a metered, not throttled" running "$(job_state fill_a)"
assert_eq "fill_b metered, not throttled" running "$(job_state fill_b)"
assert_ge "fill_b moved during the window" "$(view_rows fill_b)" 4000

kill -TERM "$DAEMON_PID"
daemon_wait 60
assert_eq "stopped on SIGTERM" 0 "$DAEMON_RC"
for t in a b; do
	assert_eq "no row of $t updated twice" 0 "$(psql_q "SELECT count(*) FROM $t WHERE n > 1")"
	assert_eq "rows_done of fill_$t counts the rows updated" \
		"$(psql_q "SELECT count(*) FROM $t WHERE y IS NOT NULL")" \
		"$(view_rows "fill_$t")"
done
test_finish
