#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_44_dual_write: `dual_write: trigger` while an application load (pgbench) rewrites the
# source column of random rows and inserts new rows throughout the job: at the end every row is
# right (compared with a recomputation), rows the job never walked included, and `verify: true`
# finds nothing. The same job and load without the trigger leaves rows wrong: its verify
# counts them, names the first keys and fails the job, the data left as it is. After
# `backfillctl finish` no trigger or function of the job is left; a set that cannot be
# evaluated one column at a time is refused with dual_write.
. "$BF_ROOT/tests/lib/test.sh"

N=30000
for t in with_dw without_dw; do
	# new rows take their keys from a sequence, as an application's do: past the job's
	# high-water mark (rows inserted below it would keep the job sweeping)
	psql_q "CREATE TABLE $t (id int PRIMARY KEY, src text NOT NULL, dst text)"
	psql_q "INSERT INTO $t (id, src) SELECT g, md5(g::text) FROM generate_series(1, $N) g"
	psql_q "CREATE SEQUENCE ${t}_ids START $((N + 1))"
done
psql_q "VACUUM ANALYZE with_dw, without_dw"

grown() { (($(psql_q "SELECT count(*) FROM $1") > $2)); }

# run_job TABLE DUAL_WRITE RC STATE: the job on TABLE under the application's load, to its
# end, which must be exit RC and state STATE.
run_job() {
	local table=$1 dw=$2 rc=$3 state=$4 app
	bf_conf "$BF_TMPDIR/$table.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: $table
    table: $table
    set: "dst = upper(src)"
    where: "dst IS NULL"
    batch_size: 500
    target_batch_time: 0
    sleep: 30ms
    dual_write: $dw
    verify: true
YAML
	cat >"$BF_TMPDIR/app_$table.sql" <<SQL
\set id random(1, $N)
UPDATE $table SET src = md5(random()::text) WHERE id = :id;
INSERT INTO $table (id, src) VALUES (nextval('${table}_ids'), md5(random()::text));
SQL
	pgbench -n -c 2 -j 2 -T 300 -R 200 -f "$BF_TMPDIR/app_$table.sql" >"$BF_TMPDIR/pgbench_$table.log" 2>&1 &
	app=$!
	daemon_start "$BF_TMPDIR/$table.yaml" "$BF_TMPDIR/$table.log" --exit-when-done
	daemon_wait 120
	# the application goes on a moment after the job, over rows the job filled
	local after
	after=$(psql_q "SELECT count(*) FROM $table")
	wait_for "the application writes after the job" 10 grown "$table" "$((after + 20))"
	kill "$app"
	wait "$app" || true
	cat "$BF_TMPDIR/$table.log"
	assert_eq "$table: exit $rc" "$rc" "$DAEMON_RC"
	assert_eq "$table: $state" "$state" "$(job_state "$table")"
}

run_job with_dw trigger 0 "done"
assert_true "verify found every row right" \
	grep -q 'msg="verify: every row is what set gives"' "$BF_TMPDIR/with_dw.log"
assert_true "the trigger was installed before the first batch" \
	grep -q 'msg="dual-write trigger in place' "$BF_TMPDIR/with_dw.log"
assert_true "the application updated rows during the job" \
	test "$(psql_q "SELECT count(*) FROM with_dw WHERE dst IS NOT NULL AND src <> md5(id::text)")" -gt 100
assert_true "and inserted rows past the job's high-water mark" \
	test "$(psql_q "SELECT count(*) FROM with_dw WHERE id > $N")" -gt 100
assert_eq "with the trigger every row is right, new rows included" 0 \
	"$(psql_q "SELECT count(*) FROM with_dw WHERE dst IS DISTINCT FROM upper(src)")"

run_job without_dw off 3 failed
wrong=$(psql_q "SELECT count(*) FROM without_dw WHERE dst IS DISTINCT FROM upper(src)")
assert_true "without it rows are wrong ($wrong)" test "$wrong" -gt 0
assert_match "verify failed the job with the count and the first keys" \
	'^verify: [0-9]+ of [0-9]+ rows differ from what set gives now \(first keys: [0-9]+(; [0-9]+)*\); the data is left as it is$' \
	"$(job last_error without_dw)"
first=$(job last_error without_dw | sed 's/.*first keys: \([0-9]*\).*/\1/')
assert_eq "its first key is a row that differs" t \
	"$(psql_q "SELECT dst IS DISTINCT FROM upper(src) OR dst IS NULL FROM without_dw WHERE id = $first")"

# the application writes the column itself now: the trigger goes
out=$("$BF_CTL" -d "$BF_DB_CONNINFO" finish with_dw)
assert_match "finish says so" 'job with_dw finished: its dual-write trigger is removed' "$out"
assert_eq "no trigger of the job is left" 0 \
	"$(psql_q "SELECT count(*) FROM pg_trigger WHERE tgname = 'with_dw_dual_write'")"
assert_eq "nor its function" 0 "$(psql_q "SELECT count(*) FROM pg_proc WHERE proname = 'with_dw_dual_write'")"
assert_match "a second finish finds nothing" 'job with_dw has no dual-write trigger' \
	"$("$BF_CTL" -d "$BF_DB_CONNINFO" finish with_dw)"
psql_q "UPDATE with_dw SET src = 'changed' WHERE id = 1"
assert_eq "an update no longer fills dst: the trigger is gone" f \
	"$(psql_q "SELECT dst = 'CHANGED' FROM with_dw WHERE id = 1")"

# a set the trigger cannot evaluate one column at a time
bf_conf "$BF_TMPDIR/row.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: rowset
    table: with_dw
    set: "(dst, src) = (upper(src), src)"
    where: "dst IS NULL"
    dual_write: trigger
YAML
rc=0
"$BF_BIN" -c "$BF_TMPDIR/row.yaml" --check >"$BF_TMPDIR/row.out" 2>&1 || rc=$?
assert_eq "a row assignment with dual_write: refused" 1 "$rc"
assert_match "saying why" 'jobs\[0\]: dual_write: trigger needs set.s item 1 to be .column = expression.' \
	"$(cat "$BF_TMPDIR/row.out")"
test_finish
