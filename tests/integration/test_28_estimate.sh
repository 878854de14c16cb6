#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_28_estimate: the README's flow, ANALYZE and then the schema tool adds the column, leaves
# no statistics on it (the planner guesses half a percent of the table for `new_col IS NULL`).
# The job's estimate comes from a sample of the table's pages instead: --check shows it close to
# the truth, and backfill.progress never shows more than the true share + 10 points while the
# job runs, nor 100% before the job is done.
. "$BF_ROOT/tests/lib/test.sh"

N=300000
psql_q "CREATE TABLE items (id bigint PRIMARY KEY, old_col text NOT NULL)"
psql_q "INSERT INTO items (id, old_col) SELECT g, 'v' || g || repeat('x', 200) FROM generate_series(1, $N) g"
psql_q "ANALYZE items"
psql_q "ALTER TABLE items ADD COLUMN new_col text"
planner=$(psql_q "EXPLAIN SELECT 1 FROM items WHERE new_col IS NULL" | head -1 | sed 's/.*rows=\([0-9]*\).*/\1/')
echo "planner's estimate: $planner"
assert_le "the planner cannot know (the case this test is about)" "$planner" $((N / 10))
assert_ge "the table is bigger than the sample" "$(psql_q "SELECT pg_relation_size('items') / 8192")" 4000
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: fill
    table: items
    set: "new_col = upper(old_col)"
    where: "new_col IS NULL"
    sleep: 0
    max_rows_per_second: 50000
YAML
"$BF_BIN" -c "$BF_TMPDIR/bf.yaml" --check >"$BF_TMPDIR/check.out"
est=$(sed -n 's/.*estimated rows to do: \([0-9]*\).*/\1/p' "$BF_TMPDIR/check.out")
echo "--check estimate: $est"
assert_ge "--check: the sampled estimate is within 10% of the truth (low)" "$est" $((N * 9 / 10))
assert_le "--check: the sampled estimate is within 10% of the truth (high)" "$est" $((N * 11 / 10))

daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
# sample the view while the job runs (a measurement, not a synchronisation): every sample's
# percent against the true share of rows done at that moment
worst=-100 samples=0 early_100=0
while ! _bf_daemon_gone "$DAEMON_PID"; do
	row=$(psql_q "SELECT percent, rows_done, state FROM backfill.progress WHERE name = 'fill'" -F ' ' 2>/dev/null || true)
	if [[ -n $row && ${row%% *} != "" ]]; then
		read -r pct rows state <<<"$row"
		over=$(awk "BEGIN { printf \"%d\", $pct - 100.0 * $rows / $N }")
		((over > worst)) && worst=$over
		[[ $pct == 100.0 && $state != "done" ]] && early_100=$((early_100 + 1))
		samples=$((samples + 1))
	fi
	sleep 0.2
done
daemon_wait 10
cat "$BF_TMPDIR/daemon.log"
echo "samples=$samples worst excess over the true share=$worst points"
assert_eq "exit status" 0 "$DAEMON_RC"
assert_ge "the view was sampled while the job ran" "$samples" 10
assert_le "progress never ahead of the truth by more than 10 points" "$worst" 10
assert_eq "never 100% before done" 0 "$early_100"
assert_eq "100% once done" "100.0 done" "$(psql_q "SELECT percent, state FROM backfill.progress" -F ' ')"
test_finish
