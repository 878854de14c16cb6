#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_48_backup_forms: backup: true with the set forms a backfill takes, on a partitioned
# table with quoted names and a BEFORE UPDATE trigger:
#   - a row assignment of two quoted columns, nested parentheses, and a string holding '='
#     and ',': --check lists exactly those three columns, the backup has exactly them;
#   - every leaf walked (one slice each) writes into the one backup, one row per row changed;
#   - backfillctl undo puts the table back byte for byte (md5 of the ordered rows), the
#     trigger's own column included (the trigger fires on the undo too, as on any update),
#     a row the application holds meanwhile waited for and retried, not skipped;
#   - drop-backup drops it (a job that does not exist is refused);
#   - undo without a backup (a job with backup: false) is refused, with what to do instead.
. "$BF_ROOT/tests/lib/test.sh"

psql_q "CREATE TABLE \"Ev\" (id bigint NOT NULL, \"Day\" date NOT NULL, \"First Name\" text,
          tag int NOT NULL, note text, touched int NOT NULL DEFAULT 0,
          PRIMARY KEY (id, \"Day\")) PARTITION BY RANGE (\"Day\")"
psql_q "CREATE TABLE \"Ev_a\" PARTITION OF \"Ev\" FOR VALUES FROM ('2024-01-01') TO ('2024-02-01')"
psql_q "CREATE TABLE \"Ev_b\" PARTITION OF \"Ev\" FOR VALUES FROM ('2024-02-01') TO ('2024-03-01')"
psql_q "CREATE TABLE \"Ev_rest\" PARTITION OF \"Ev\" DEFAULT"
psql_q "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS
          \$\$ BEGIN NEW.touched := OLD.touched + 1; RETURN NEW; END \$\$"
psql_q "CREATE TRIGGER touch BEFORE UPDATE ON \"Ev\" FOR EACH ROW EXECUTE FUNCTION touch()"
psql_q "INSERT INTO \"Ev\" (id, \"Day\", \"First Name\", tag, note)
        SELECT g, date '2024-01-01' + (g % 90), CASE WHEN g % 7 = 0 THEN NULL ELSE 'name ' || g END,
               g % 5, CASE WHEN g % 2 = 0 THEN 'n' || g END
        FROM generate_series(1, 20000) g"
sum_sql="SELECT md5(string_agg(e::text, '|' ORDER BY id, \"Day\")) FROM \"Ev\" e"
BEFORE=$(psql_q "$sum_sql")

bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: forms
    table: '"Ev"'
    set: '("First Name", tag) = (upper(coalesce("First Name", (''none''))), (tag + 1) * 2), note = ''a = b, c'''
    where: 'note IS DISTINCT FROM ''a = b, c'''
    backup: true
    batch_size: 700
    sleep: 0
    lock_timeout: 300ms
  - name: plain
    table: '"Ev"'
    set: 'touched = touched'
    where: 'false'
YAML
"$BF_BIN" --check -c "$BF_TMPDIR/bf.yaml" >"$BF_TMPDIR/check.out" 2>&1 || true
assert_true "--check lists the three assigned columns" \
	grep -qF 'backup: "First Name", "tag", "note" (old values, by key) into "backfill"."forms_backup"' "$BF_TMPDIR/check.out"

daemon_run 120 "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/up.log" --exit-when-done
assert_eq "exit 0" 0 "$DAEMON_RC"
assert_eq "done" "done" "$(job_state forms)"
assert_eq "every leaf walked in its own slice" 3 "$(grep -c 'job=forms msg="walking a partition"' "$BF_TMPDIR/up.log")"
assert_eq "rows_done: every row" 20000 "$(psql_q "SELECT rows_done FROM backfill.progress WHERE name = 'forms'")"
assert_eq "the backup's columns: the key's, the assigned ones, the written hash" \
	"id,Day,First Name,tag,note,backfilld_written" \
	"$(psql_q "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
	           WHERE attrelid = 'backfill.forms_backup'::regclass AND attnum > 0")"
assert_eq "one backup row per row changed, each with its old values" 20000 \
	"$(psql_q "SELECT count(*) FROM backfill.forms_backup b JOIN \"Ev\" e USING (id, \"Day\")
	           WHERE b.tag * 2 + 2 = e.tag AND b.note IS DISTINCT FROM 'a = b, c'")"

# a row the application holds during the undo: its range waits lock_timeout, is retried
# (smaller) until the row is free, and the row is put back, not skipped
# (held until the undo has met it: a hold of a few seconds could end before the undo gets there
# on a busy machine)
"$BF_CTL" -d "$BF_DB_CONNINFO" undo forms >/dev/null
hold_row '"Ev"' 15000 120
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/down.log" --exit-when-done
retried() { grep -q 'job=forms msg=state state=undoing .*reason="lock_timeout: retrying with batch' "$BF_TMPDIR/down.log"; }
wait_for "the undo meets the held row and retries" 60 retried
release_rows
daemon_wait 120
assert_eq "exit 0 after the undo" 0 "$DAEMON_RC"
assert_eq "undone" undone "$(job_state forms)"
assert_eq "nothing skipped: the held row was not changed, only locked" 0 "$(job undo_skipped forms)"
assert_eq "the trigger counted the job's update and the undo's" "2 2" \
	"$(psql_q "SELECT min(touched), max(touched) FROM \"Ev\"" -F ' ')"
psql_q "ALTER TABLE \"Ev\" DISABLE TRIGGER touch"
psql_q "UPDATE \"Ev\" SET touched = 0"
assert_eq "the table is as before the job" "$BEFORE" "$(psql_q "$sum_sql")"

"$BF_CTL" -d "$BF_DB_CONNINFO" drop-backup forms >"$BF_TMPDIR/drop.out"
assert_true "drop-backup says what it freed" grep -q 'its backup is dropped (.* freed)' "$BF_TMPDIR/drop.out"
assert_eq "the backup is gone" "" "$(psql_q "SELECT to_regclass('backfill.forms_backup')")"
assert_false "drop-backup of a job that does not exist is refused" \
	"$BF_CTL" -d "$BF_DB_CONNINFO" drop-backup nosuch
assert_eq "the other job is done" "done" "$(job_state plain)"
assert_false "undo of a job without a backup is refused" \
	"$BF_CTL" -d "$BF_DB_CONNINFO" undo plain 2>"$BF_TMPDIR/refused.err"
assert_true "and says what to do instead" grep -q 'has no backup.*setting the column back to NULL' "$BF_TMPDIR/refused.err"
test_finish
