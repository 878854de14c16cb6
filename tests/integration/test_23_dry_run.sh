#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_23_dry_run: --dry-run runs every batch and rolls it back: it reports progress, exits 0,
# and the table and the control schema are byte-for-byte as before.
. "$BF_ROOT/tests/lib/test.sh"

psql_q "CREATE TABLE t (id int PRIMARY KEY, y int)"
psql_q "INSERT INTO t (id) SELECT g FROM generate_series(1, 30000) g"
psql_q "CREATE TABLE other (id int PRIMARY KEY, y int)"
psql_q "INSERT INTO other (id) SELECT g FROM generate_series(1, 100) g"
# a control schema that already holds a finished job
bf_conf "$BF_TMPDIR/other.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: other_fill
    table: other
    set: "y = id"
    where: "y IS NULL"
YAML
"$BF_BIN" -c "$BF_TMPDIR/other.yaml" --exit-when-done 2>/dev/null
snapshot() {
	psql_q "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM t"
	psql_q "SELECT md5(string_agg(j::text, ',' ORDER BY name)) FROM backfill.jobs j"
	psql_q "SELECT md5(string_agg(v::text, ',' ORDER BY version)) FROM backfill.schema_version v"
	psql_q "SELECT count(*) FROM pg_class WHERE relnamespace = 'backfill'::regnamespace"
}
before=$(snapshot)
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
progress_interval: 1s
jobs:
  - name: t_fill
    table: t
    set: "y = id"
    where: "y IS NULL"
    batch_size: 500
    target_batch_time: 0
    sleep: 50ms
YAML
rc=0
"$BF_BIN" -c "$BF_TMPDIR/bf.yaml" --dry-run --exit-when-done 2>"$BF_TMPDIR/daemon.log" || rc=$?
cat "$BF_TMPDIR/daemon.log"
assert_eq "exit status" 0 "$rc"
assert_true "progress was reported" grep -q 'job=t_fill msg=progress rows=[1-9]' "$BF_TMPDIR/daemon.log"
assert_true "the pass ended as a dry run" grep -q 'state=done.*dry run' "$BF_TMPDIR/daemon.log"
assert_eq "table and control schema unchanged" "$before" "$(snapshot)"
assert_eq "no row changed" 30000 "$(psql_q "SELECT count(*) FROM t WHERE y IS NULL")"
test_finish
