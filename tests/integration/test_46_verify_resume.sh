#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_46_verify_resume: the verify walk keeps where it is in the job's row: a daemon killed
# (kill -9) halfway through it leaves the row finishing with the rows read so far; the next
# start resumes the walk there, without walking the table again, and counts every row exactly
# once (verify_rows = the table's rows).
. "$BF_ROOT/tests/lib/test.sh"

N=60000
psql_q "CREATE TABLE items (id int PRIMARY KEY, x int NOT NULL, y int)"
psql_q "INSERT INTO items (id, x) SELECT g, g FROM generate_series(1, $N) g"
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: fill
    table: items
    set: "y = x"
    where: "y IS NULL"
    batch_size: 100
    min_batch_size: 10
    max_batch_size: 100
    target_batch_time: 0
    sleep: 0
    verify: true
YAML
verify_rows() { psql_q "SELECT verify_rows FROM backfill.jobs WHERE name = 'fill'"; }
halfway() { local r; r=$(verify_rows 2>/dev/null) && ((r > 0 && r < N / 2)); }

daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/first.log"
wait_for "the verify walk is under way" 120 halfway
kill -9 "$DAEMON_PID"
daemon_wait 10
read_before=$(verify_rows)
assert_true "killed halfway through the walk ($read_before of $N rows read)" \
	test "$read_before" -lt "$N"
assert_eq "the row stays finishing" finishing "$(job_state fill)"

daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/again.log" --exit-when-done
daemon_wait 120
cat "$BF_TMPDIR/again.log"
assert_eq "exit 0" 0 "$DAEMON_RC"
assert_eq "done" "done" "$(job_state fill)"
assert_false "no pass over the table again" grep -q 'msg="pass done' "$BF_TMPDIR/again.log"
assert_false "the walk did not start over" grep -q 'msg="data done, finishing"' \
	"$BF_TMPDIR/again.log"
assert_eq "every row read once, the first half before the kill" "$N t" \
	"$(psql_q "SELECT verify_rows, verified FROM backfill.jobs WHERE name = 'fill'" -F ' ')"
test_finish
