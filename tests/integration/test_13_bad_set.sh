#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_13_bad_set: a job whose set does not make where false fails at its first batch with a
# clear message (instead of looping), changes nothing, and does not stop the other job. A set
# that breaks a unique index fails its job with the server's detail (the key it hit).
. "$BF_ROOT/tests/lib/test.sh"

psql_q "CREATE TABLE t (id int PRIMARY KEY, x int NOT NULL, y int)"
psql_q "INSERT INTO t (id, x) SELECT g, g FROM generate_series(1, 5000) g"
psql_q "CREATE TABLE ok (id int PRIMARY KEY, y int)"
psql_q "INSERT INTO ok (id) SELECT g FROM generate_series(1, 5000) g"
psql_q "CREATE TABLE uq (id int PRIMARY KEY, u int UNIQUE)"
psql_q "INSERT INTO uq (id) SELECT g FROM generate_series(1, 100) g"
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: loops_forever
    table: t
    set: "x = x + 1"
    where: "y IS NULL"
  - name: fine
    table: ok
    set: "y = id"
    where: "y IS NULL"
    sleep: 0
  - name: clash
    table: uq
    set: "u = id % 50"
    where: "u IS NULL"
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
daemon_wait 60
cat "$BF_TMPDIR/daemon.log"
assert_eq "exit status 3: a job failed" 3 "$DAEMON_RC"
assert_eq "the job failed" failed "$(job_state loops_forever)"
assert_match "last_error says why" "set does not make where false" "$(job last_error loops_forever)"
assert_true "the log says why" grep -q 'state=failed.*set does not make where false' \
	"$BF_TMPDIR/daemon.log"
assert_eq "the failed batch changed nothing" 0 "$(psql_q "SELECT count(*) FROM t WHERE x <> id")"
assert_eq "nothing counted" 0 "$(job rows_done loops_forever)"
assert_eq "the other job went on to the end" "done" "$(job_state fine)"
assert_match "a unique violation names its key" \
	'^duplicate key value violates unique constraint "uq_u_key" \(SQLSTATE 23505\); detail: Key \(u\)=\([0-9]+\) already exists\.' \
	"$(job last_error clash)"
test_finish
