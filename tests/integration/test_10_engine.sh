#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_10_engine: a 200,000-row backfill while the application updates and locks random rows
# (pgbench, two clients), one row stays locked for seconds and rows are inserted past the
# high-water mark. The job ends done, rows_done equals the rows that changed, no row matching
# `where` remains up to the high-water mark, the inserted rows are untouched, and the locked
# row was caught by a sweep pass. Batches that meet a locked row fall back from the plain-UPDATE
# fast path to SKIP LOCKED.
. "$BF_ROOT/tests/lib/test.sh"

N=200000
psql_q "CREATE TABLE items (id bigint PRIMARY KEY, old_col text NOT NULL, new_col text,
                            filler text, n_set int NOT NULL DEFAULT 0);
        INSERT INTO items (id, old_col, filler)
          SELECT g, 'v' || g, repeat('f', 100) FROM generate_series(1, $N) g"
psql_q "VACUUM ANALYZE items"

# The application: lock a random row, hold it a little, update another column.
cat >"$BF_TMPDIR/app.sql" <<SQL
\set id random(1, $N)
BEGIN;
SELECT 1 FROM items WHERE id = :id FOR UPDATE;
SELECT pg_sleep(0.002);
UPDATE items SET filler = 'app' WHERE id = :id;
COMMIT;
SQL
pgbench -n -c 2 -j 2 -T 120 -f "$BF_TMPDIR/app.sql" >"$BF_TMPDIR/pgbench.log" 2>&1 &
APP=$!
bf_defer kill "$APP"

# One row held until the first pass has gone past it: the pass must skip it and a sweep must
# come back for it.
hold_row items 150000 120

bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
progress_interval: 1s
jobs:
  - name: items_fill
    table: public.items
    set: "new_col = upper(old_col), n_set = n_set + 1"
    where: "new_col IS NULL"
    batch_size: 2000
    sleep: 20ms
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done -v

# Rows inserted once the high-water mark is recorded are the application's, not the job's.
has_high() { [[ $(job "high_key IS NOT NULL" items_fill 2>/dev/null) == t ]]; }
wait_for "high-water mark recorded" 20 has_high
psql_q "INSERT INTO items (id, old_col) SELECT g, 'new' || g FROM generate_series($N + 1, $N + 500) g"
past_held() { [[ $(job "pass > 1 OR cursor[1]::bigint > 150000" items_fill 2>/dev/null) == t ]]; }
wait_for "the first pass has gone past the held row" 60 past_held
release_rows

daemon_wait 120
kill "$APP" 2>/dev/null || true
wait "$APP" 2>/dev/null || true
grep -v "msg=batch" "$BF_TMPDIR/daemon.log"

assert_eq "daemon exit status" 0 "$DAEMON_RC"
assert_eq "job state" "done" "$(job_state items_fill)"
assert_eq "high-water mark" "{$N}" "$(job high_key items_fill)"
assert_eq "no row up to the high-water mark still matches where" 0 \
	"$(psql_q "SELECT count(*) FROM items WHERE id <= $N AND new_col IS NULL")"
assert_eq "rows_done equals the rows that changed" \
	"$(psql_q "SELECT count(*) FROM items WHERE n_set > 0")" "$(job rows_done items_fill)"
assert_eq "no row updated twice" 1 "$(psql_q "SELECT max(n_set) FROM items")"
assert_eq "every row got the right value" 0 \
	"$(psql_q "SELECT count(*) FROM items WHERE id <= $N AND new_col IS DISTINCT FROM upper(old_col)")"
assert_eq "rows inserted during the job are untouched" 500 \
	"$(psql_q "SELECT count(*) FROM items WHERE id > $N AND new_col IS NULL AND n_set = 0")"
assert_ge "a sweep pass came back for the locked row" "$(job pass items_fill)" 2
assert_true "the fast path met the application's locks and fell back to SKIP LOCKED" \
	grep -q 'msg="fast path met a lock, redoing with SKIP LOCKED"' "$BF_TMPDIR/daemon.log"
assert_true "the wait for the locked row was explained" \
	grep -q 'reason="waiting for [0-9]*+* rows locked by other sessions"' "$BF_TMPDIR/daemon.log"
assert_ge "the application really updated rows alongside" \
	"$(psql_q "SELECT count(*) FROM items WHERE filler = 'app'")" 10
assert_true "progress lines were logged" grep -q 'msg=progress rows=' "$BF_TMPDIR/daemon.log"
assert_eq "progress view shows 100 percent" 100.0 \
	"$(psql_q "SELECT percent FROM backfill.progress WHERE name = 'items_fill'")"
test_finish
