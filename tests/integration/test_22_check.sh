#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_22_check: --check names each problem (a missing table, a non-unique key, a set
# referring to a missing column, a throttle_query that returns no number), exits 1, prints the batch SQL and estimate of the good
# jobs, exits 0 on a good file, and leaves the database as it was (no control schema).
. "$BF_ROOT/tests/lib/test.sh"

psql_q "CREATE TABLE good (id int PRIMARY KEY, y int)"
psql_q "INSERT INTO good (id) SELECT g FROM generate_series(1, 1000) g"
psql_q "ANALYZE good"
psql_q "CREATE TABLE dup (k int NOT NULL, y int)"
psql_q "CREATE TABLE other (id int PRIMARY KEY, y int)"
snapshot() {
	psql_q "SELECT md5(string_agg(c.relname::text || c.relkind::text, ',' ORDER BY c.relname))
	        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
	psql_q "SELECT md5(string_agg(id || ':' || coalesce(y::text, ''), ',' ORDER BY id)) FROM good"
}
before=$(snapshot)
bf_conf "$BF_TMPDIR/bad.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: no_table
    table: missing_table
    set: "y = 1"
    where: "y IS NULL"
  - name: not_unique
    table: dup
    key: k
    set: "y = 1"
    where: "y IS NULL"
  - name: bad_set
    table: good
    set: "no_such_column = 1"
    where: "y IS NULL"
  - name: fine
    table: good
    set: "y = id"
    where: "y IS NULL"
    throttle_query: "SELECT count(*) FROM good WHERE id <= 7"
    throttle_above: 5
  - name: bad_throttle
    table: other
    set: "y = id"
    where: "y IS NULL"
    throttle_query: "SELECT 'busy'::text"
    throttle_above: 5
YAML
rc=0
"$BF_BIN" -c "$BF_TMPDIR/bad.yaml" --check >"$BF_TMPDIR/out" 2>"$BF_TMPDIR/err" || rc=$?
cat "$BF_TMPDIR/out" "$BF_TMPDIR/err"
assert_eq "exit status on a bad file" 1 "$rc"
err=$(cat "$BF_TMPDIR/err")
assert_match "the missing table" "bad.yaml:3: jobs.no_table: table missing_table does not exist" "$err"
assert_match "the non-unique key" "bad.yaml:7: jobs.not_unique: key of dup is not unique" "$err"
assert_match "the missing column" 'bad.yaml:12: jobs.bad_set: set or where do not compile: column "no_such_column"' "$err"
assert_match "a throttle_query that returns no number" \
	"jobs.bad_throttle: throttle_query: it must return a number, got \"busy\"" "$err"
assert_match "the count" "4 of 5 jobs cannot run" "$err"
assert_match "the good job's throttle_query, run once" \
	"throttle_query: 7 now \(throttle_above 5: it would be throttled\)" "$(cat "$BF_TMPDIR/out")"
assert_match "the good job's batch SQL" 'job fine .*UPDATE "public"."good" SET y = id' "$(tr '\n' ' ' <"$BF_TMPDIR/out")"
assert_match "the good job's estimate" "estimated rows to do: 1000" "$(cat "$BF_TMPDIR/out")"

bf_conf "$BF_TMPDIR/good.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: fine
    table: good
    set: "y = id"
    where: "y IS NULL"
YAML
rc=0
"$BF_BIN" -c "$BF_TMPDIR/good.yaml" --check >"$BF_TMPDIR/out" 2>&1 || rc=$?
assert_eq "exit status on a good file" 0 "$rc"
assert_eq "the database is unchanged" "$before" "$(snapshot)"
assert_eq "no control schema was left behind" f \
	"$(psql_q "SELECT to_regnamespace('backfill') IS NOT NULL")"

# set or where that would not stay one fragment of the daemon's statement: refused before any
# connection (the first would make a batch an UPDATE of every row), nothing changed
bf_conf "$BF_TMPDIR/fragments.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: paren
    table: good
    set: "y = id"
    where: "y IS NULL) OR (true"
  - name: semi
    table: good
    set: "y = id; DELETE FROM good"
    where: "y IS NULL"
  - name: comment
    table: good
    set: "y = id"
    where: "y IS NULL --"
YAML
for mode in --check --exit-when-done; do
	rc=0
	"$BF_BIN" -c "$BF_TMPDIR/fragments.yaml" $mode >"$BF_TMPDIR/out" 2>"$BF_TMPDIR/err" || rc=$?
	err=$(cat "$BF_TMPDIR/err")
	assert_eq "$mode: a configuration error, exit 1" 1 "$rc"
	assert_match "$mode: the parenthesis, where it is" \
		"fragments.yaml:6:12: jobs\[0\].where: expected a single SQL fragment \(here '\)' closing a parenthesis the fragment did not open at character 10\)" "$err"
	assert_match "$mode: the separator" "jobs\[1\].set: expected a single SQL fragment \(here a statement separator ';'" "$err"
	assert_match "$mode: the comment" "jobs\[2\].where: expected a single SQL fragment \(here a comment" "$err"
done
assert_eq "nothing changed" "$before" "$(snapshot)"
test_finish
