#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_14_keys: a composite (tenant_id, id) key, a uuid key, a text key and a timestamptz key
# each backfill every row exactly once; the composite key's cursor holds both columns.
. "$BF_ROOT/tests/lib/test.sh"

psql_q "CREATE TABLE comp (tenant_id int NOT NULL, id bigint NOT NULL, v text, n int DEFAULT 0,
                           PRIMARY KEY (tenant_id, id))"
psql_q "INSERT INTO comp (tenant_id, id) SELECT g % 7, g FROM generate_series(1, 30000) g"
psql_q "CREATE TABLE uu (u uuid PRIMARY KEY DEFAULT gen_random_uuid(), v text, n int DEFAULT 0)"
psql_q "INSERT INTO uu (n) SELECT 0 FROM generate_series(1, 30000)"
psql_q "CREATE TABLE tx (code text NOT NULL, v text, n int DEFAULT 0)"
psql_q "CREATE UNIQUE INDEX tx_code ON tx (code)"
psql_q "INSERT INTO tx (code) SELECT 'c ''q\" ' || g FROM generate_series(1, 20000) g"
psql_q "CREATE TABLE ts (at timestamptz PRIMARY KEY, v text, n int DEFAULT 0)"
psql_q "INSERT INTO ts (at) SELECT '2024-01-01'::timestamptz + g * interval '1.5 ms'
        FROM generate_series(1, 20000) g"
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
defaults:
  batch_size: 700
  sleep: 0
jobs:
  - name: comp_fill
    table: comp
    key: [tenant_id, id]
    set: "v = tenant_id || '/' || id, n = n + 1"
    where: "v IS NULL"
  - name: uu_fill
    table: uu
    set: "v = u::text, n = n + 1"
    where: "v IS NULL"
  - name: tx_fill
    table: tx
    key: code
    set: "v = code, n = n + 1"
    where: "v IS NULL"
  - name: ts_fill
    table: ts
    set: "v = at::text, n = n + 1"
    where: "v IS NULL"
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
daemon_wait 120
cat "$BF_TMPDIR/daemon.log"
assert_eq "daemon exit status" 0 "$DAEMON_RC"
for t in comp uu tx ts; do
	total=$(psql_q "SELECT count(*) FROM $t")
	assert_eq "${t}_fill done" "done" "$(job_state ${t}_fill)"
	assert_eq "${t}_fill rows_done" "$total" "$(job rows_done ${t}_fill)"
	assert_eq "$t: every row updated exactly once" "1 1" \
		"$(psql_q "SELECT min(n), max(n) FROM $t" -F ' ')"
done
assert_eq "the composite cursor holds both columns" 2 \
	"$(psql_q "SELECT cardinality(cursor) FROM backfill.jobs WHERE name = 'comp_fill'")"
assert_eq "the composite high-water mark is the last key" \
	"$(psql_q "SELECT ARRAY[tenant_id::text, id::text] FROM comp ORDER BY tenant_id DESC, id DESC LIMIT 1")" \
	"$(job high_key comp_fill)"
test_finish
