#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_26_unsafe_tables: tables on which a walk would be wrong are refused, and rows that no
# UPDATE changes fail the job instead of being swept forever.
#   - row-level security, for a role that is not the owner and has no BYPASSRLS: --check
#     exits 1 naming the policy; the daemon fails the job at its start and changes nothing
#     (the batches and the closing read would see only the policy's rows);
#   - an UPDATE rule, inheritance children, UPDATE without SELECT: refused by --check, named;
#   - a BEFORE UPDATE trigger returning NULL for some rows: the job fails within a minute,
#     naming the trigger and where the rows are; every other row is done.
. "$BF_ROOT/tests/lib/test.sh"

test_role app
psql_q "GRANT CREATE ON DATABASE $BF_TEST_DB TO $ROLE; GRANT pg_monitor TO $ROLE"
psql_q "CREATE TABLE sec (id int PRIMARY KEY, tenant int NOT NULL, y int)"
psql_q "INSERT INTO sec (id, tenant) SELECT g, g % 3 FROM generate_series(1, 3000) g"
psql_q "ALTER TABLE sec ENABLE ROW LEVEL SECURITY"
psql_q "CREATE POLICY tenant_zero ON sec FOR ALL USING (tenant = 0)"
psql_q "GRANT SELECT, UPDATE ON sec TO $ROLE"
psql_q "CREATE TABLE ruled (id int PRIMARY KEY, y int)"
psql_q "CREATE RULE keep_y AS ON UPDATE TO ruled DO INSTEAD NOTHING"
psql_q "CREATE TABLE parent (id int PRIMARY KEY, y int)"
psql_q "CREATE TABLE child (extra int) INHERITS (parent)"
psql_q "GRANT SELECT, UPDATE ON ruled, parent TO $ROLE"
psql_q "CREATE TABLE blind (id int PRIMARY KEY, y int)"
psql_q "GRANT UPDATE ON blind TO $ROLE" # no SELECT: where and the closing read cannot read it

bf_conf "$BF_TMPDIR/unsafe.yaml" <<YAML
database: "$ROLE_CONNINFO"
jobs:
  - name: sec_fill
    table: sec
    set: "y = id"
    where: "y IS NULL"
  - name: ruled_fill
    table: ruled
    set: "y = id"
    where: "y IS NULL"
  - name: parent_fill
    table: parent
    set: "y = id"
    where: "y IS NULL"
  - name: blind_fill
    table: blind
    set: "y = id"
    where: "y IS NULL"
YAML
rc=0
"$BF_BIN" -c "$BF_TMPDIR/unsafe.yaml" --check >"$BF_TMPDIR/out" 2>"$BF_TMPDIR/err" || rc=$?
cat "$BF_TMPDIR/out" "$BF_TMPDIR/err"
err=$(cat "$BF_TMPDIR/err")
assert_eq "--check exit status" 1 "$rc"
assert_match "RLS: the table and its policy" \
	'jobs.sec_fill: sec has row-level security the role does not bypass: sec \(policies: tenant_zero\); run the job as the table.s owner' "$err"
assert_match "the UPDATE rule, named" 'jobs.ruled_fill: ruled has an UPDATE rule, so the batch would not run as written: keep_y on ruled' "$err"
assert_match "inheritance children, named" 'jobs.parent_fill: parent has inheritance children, whose ctids and keys are unique per table only: child' "$err"
assert_match "UPDATE without SELECT, named with its grant" \
	'jobs.blind_fill: the role lacks SELECT or UPDATE on blind \(GRANT SELECT, UPDATE ON blind TO ...\)' "$err"
assert_match "every job refused" "4 of 4 jobs cannot run" "$err"

daemon_run 60 "$BF_TMPDIR/unsafe.yaml" "$BF_TMPDIR/unsafe.log" --exit-when-done
cat "$BF_TMPDIR/unsafe.log"
assert_eq "the daemon: jobs failed" 3 "$DAEMON_RC"
assert_match "it says why" 'job=sec_fill .*state=failed .*row-level security' "$(cat "$BF_TMPDIR/unsafe.log")"
assert_eq "no row changed" 0 "$(psql_q "SELECT count(*) FROM sec WHERE y IS NOT NULL")"
psql_q "ALTER TABLE sec OWNER TO $ROLE"
"$BF_BIN" -c "$BF_TMPDIR/unsafe.yaml" --check >"$BF_TMPDIR/out" 2>"$BF_TMPDIR/err" || true
assert_false "the owner (RLS not forced) may walk it" grep -q 'jobs.sec_fill' "$BF_TMPDIR/err"

# a BEFORE trigger that skips every tenth row: no lock anywhere, yet those rows never change
psql_q "CREATE TABLE trg (id int PRIMARY KEY, y int)"
psql_q "INSERT INTO trg (id) SELECT g FROM generate_series(1, 5000) g"
psql_q "CREATE FUNCTION skip_tenth() RETURNS trigger LANGUAGE plpgsql AS
        \$\$BEGIN IF NEW.id % 10 = 0 THEN RETURN NULL; END IF; RETURN NEW; END\$\$"
psql_q "CREATE TRIGGER skip_tenth BEFORE UPDATE ON trg FOR EACH ROW EXECUTE FUNCTION skip_tenth()"
bf_conf "$BF_TMPDIR/trg.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: trg_fill
    table: trg
    set: "y = id"
    where: "y IS NULL"
    sleep: 0
YAML
daemon_run 60 "$BF_TMPDIR/trg.yaml" "$BF_TMPDIR/trg.log" --exit-when-done
cat "$BF_TMPDIR/trg.log"
assert_eq "exit status: the job failed (not swept for ever)" 3 "$DAEMON_RC"
assert_eq "failed" failed "$(job_state trg_fill)"
assert_match "the reason names the trigger and where the rows are" \
	'^500 rows match where, no other session holds them, and the UPDATE leaves them unchanged \(last seen in the keys .*\): a BEFORE UPDATE trigger returning NULL for them\? BEFORE UPDATE triggers: skip_tenth on trg' \
	"$(job last_error trg_fill)"
assert_eq "every other row was done" "4500 0" \
	"$(psql_q "SELECT count(*) FILTER (WHERE y = id), count(*) FILTER (WHERE y IS NULL AND id % 10 <> 0) FROM trg" -F ' ')"
test_finish
