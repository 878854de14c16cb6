#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_15_plan: pass 1 is linear. The batch statement that `backfilld --check` prints (the one
# the daemon prepares) is planned with the key index bounded below by the cursor, for a
# single-column and a composite key, so no batch rescans what an earlier batch passed.
. "$BF_ROOT/tests/lib/test.sh"

psql_q "CREATE TABLE items (id bigint PRIMARY KEY, old_col text NOT NULL, new_col text)"
psql_q "INSERT INTO items (id, old_col) SELECT g, 'v' || g FROM generate_series(1, 100000) g"
psql_q "CREATE TABLE comp (tenant_id int, id bigint, v text, PRIMARY KEY (tenant_id, id))"
psql_q "INSERT INTO comp SELECT g % 10, g FROM generate_series(1, 100000) g"
psql_q "ANALYZE"
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: items_fill
    table: items
    set: "new_col = upper(old_col)"
    where: "new_col IS NULL"
  - name: comp_fill
    table: comp
    set: "v = 'x'"
    where: "v IS NULL"
YAML
"$BF_BIN" -c "$BF_TMPDIR/bf.yaml" --check >"$BF_TMPDIR/check.out"
# the control schema the statement refers to (--check itself writes nothing)
"$BF_BIN" -c "$BF_TMPDIR/bf.yaml" --exit-when-done 2>"$BF_TMPDIR/daemon.log"

# batch_sql JOB: the SKIP LOCKED statement --check prints for JOB (up to its plan)
batch_sql() {
	awk -v job="job $1 " 'index($0, job) == 1 {on = 1} on && /batch statement \(SKIP LOCKED/ {take = 1; next}
		take && /^  plan/ {exit} take {print}' "$BF_TMPDIR/check.out"
}

# plan JOB ARGS: EXPLAIN of the prepared batch with a cursor in the middle of the table
plan() {
	local sql
	sql=$(batch_sql "$1")
	psql -X -qAt -v ON_ERROR_STOP=1 <<SQL
PREPARE b AS $sql;
EXPLAIN (COSTS OFF) EXECUTE b($2);
SQL
}

assert_true "the fast path waits for a row lock no longer than the default 10ms budget" \
	grep -qF "batch statement (fast path: a plain UPDATE of the range under a 10ms lock_timeout)" \
	"$BF_TMPDIR/check.out"
assert_true "its statement says so" grep -qF "set_config('lock_timeout', '10ms', true)" "$BF_TMPDIR/check.out"

nl=$'\n'
p=$(plan items_fill "'items_fill', 1000, 0, 1, '50000', '100000'")
echo "$p"
assert_match "hi walks the key index from the cursor" \
	"Index Only Scan using items_pkey on items[^${nl}]*${nl}[^${nl}]*Index Cond: \(\(id > '50000'::bigint\)" "$p"
assert_match "the locking scan is bounded below by the cursor, on the key index" \
	"(Index|Bitmap Index) Scan (using|on) items_pkey[^${nl}]*${nl}[^${nl}]*Index Cond: \(\(id > '50000'::bigint\) AND \(id <= \\$" "$p"
assert_false "no sequential scan" grep -q "Seq Scan" <<<"$p"

p=$(plan comp_fill "'comp_fill', 1000, 0, 1, '3', '500', '9', '99999'")
echo "$p"
assert_match "composite: hi walks the index from the cursor as a row value" \
	"Index Cond: \(\(ROW\(tenant_id, id\) > ROW\(3, '500'::bigint\)\)" "$p"
assert_match "composite: the locking scan is bounded by row values on the index" \
	"Index Cond: \(\(ROW\(tenant_id, id\) > ROW\(3, '500'::bigint\)\) AND \(ROW\(tenant_id, id\) <= ROW\(\\$" "$p"
assert_false "composite: no sequential scan" grep -q "Seq Scan" <<<"$p"
test_finish
