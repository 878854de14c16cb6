#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_16_closing_chunks: the closing read at the end of a pass (non-locking) walks the table
# in ranges of ~100,000 keys (batch boundaries the pass recorded) and, when a range still has
# rows to do (one row held by another session), the sweep pass starts at that chunk, not at the first key: the cursor never goes back below
# it while the row is held. Once released, the row is done and every row was updated once.
. "$BF_ROOT/tests/lib/test.sh"

psql_q "CREATE TABLE items (id int PRIMARY KEY, x int NOT NULL, y int, n_set int NOT NULL DEFAULT 0)"
psql_q "INSERT INTO items (id, x) SELECT g, g FROM generate_series(1, 250000) g"

# Row 245000 (third range: boundaries come every 100,000-110,000 keys), held until released.
hold_row items 245000 600

bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: chunks
    table: items
    set: "y = x * 2, n_set = n_set + 1"
    where: "y IS NULL"
    batch_size: 5000
    max_batch_size: 10000
    sleep: 0
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done

sweeping() {
	[[ $(job "state_reason LIKE 'waiting for 1 rows locked%'" chunks) == t ]] &&
		grep -q 'msg="sweep pass".*from_start=false' "$BF_TMPDIR/daemon.log"
}
wait_for "a sweep pass for the held row" 60 sweeping
# Only row 245000 is left: the first two ranges were clean, so the sweep starts past 200000.
low=$(job 'cursor[1]::int' chunks)
assert_ge "the sweep's cursor stays in the held row's chunk" "${low:-0}" 200000
assert_eq "the first pass did everything but the held row" 249999 "$(job rows_done chunks)"

release_rows
daemon_wait 60
cat "$BF_TMPDIR/daemon.log"
assert_eq "daemon exit status" 0 "$DAEMON_RC"
assert_eq "job done" "done" "$(job_state chunks)"
assert_eq "rows_done counts every row once" 250000 "$(job rows_done chunks)"
assert_eq "every row updated exactly once" 0 \
	"$(psql_q "SELECT count(*) FROM items WHERE n_set <> 1 OR y IS DISTINCT FROM x * 2")"
assert_eq "no sweep pass went back to the first key" 0 \
	"$(grep -c 'msg="sweep pass".*from_start=true' "$BF_TMPDIR/daemon.log" || true)"
assert_match "the last check started at the held row's chunk, on recorded ranges" \
	'msg="pass done, reading what is left".*from_start=false mode=ranges' \
	"$(grep 'pass done, reading' "$BF_TMPDIR/daemon.log" | tail -n 1)"
test_finish
