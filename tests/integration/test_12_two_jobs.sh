#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_12_two_jobs: two jobs on two tables, one daemon process, at the same time (their
# running intervals overlap), each correct.
. "$BF_ROOT/tests/lib/test.sh"

for t in a b; do
	psql_q "CREATE TABLE $t (id int PRIMARY KEY, x int NOT NULL, y int)"
	psql_q "INSERT INTO $t (id, x) SELECT g, g FROM generate_series(1, 40000) g"
done
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
max_parallel_jobs: 2
defaults:
  batch_size: 500
  sleep: 20ms
jobs:
  - name: fill_a
    table: a
    set: "y = x * 2"
    where: "y IS NULL"
  - name: fill_b
    table: b
    set: "y = x * 3"
    where: "y IS NULL"
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
both_running() {
	[[ $(psql_q "SELECT count(*) FROM backfill.jobs WHERE state = 'running' AND rows_done > 0") == 2 ]]
}
wait_for "both jobs run at the same time" 30 both_running
daemon_wait 120
cat "$BF_TMPDIR/daemon.log"
assert_eq "daemon exit status" 0 "$DAEMON_RC"
assert_eq "one daemon process owned both" 1 \
	"$(grep -c 'msg=started' "$BF_TMPDIR/daemon.log")"
for t in a b; do
	assert_eq "fill_$t done" "done" "$(job_state fill_$t)"
	assert_eq "fill_$t rows_done" 40000 "$(job rows_done fill_$t)"
done
assert_eq "a filled right" 0 "$(psql_q "SELECT count(*) FROM a WHERE y IS DISTINCT FROM x * 2")"
assert_eq "b filled right" 0 "$(psql_q "SELECT count(*) FROM b WHERE y IS DISTINCT FROM x * 3")"
test_finish
