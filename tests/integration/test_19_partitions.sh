#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_19_partitions: partitioned tables are walked leaf by leaf, each leaf as a plain table,
# `parallel` leaves at a time, and a ctid never names a row across partitions.
#   ev: range-partitioned on created_at, key (id, created_at), with a default partition;
#   hp: hash-partitioned on id, one partition itself range-partitioned (two levels).
# Some rows were already written by the application (they keep their value, and `where` is
# false for them); two rows of each table, in different partitions, are held FOR UPDATE by
# other sessions. The first pass skips them; the closing read of the whole table finds them;
# one is released, the sweep (a statement on the parent, where the same ctid exists in every
# partition) takes exactly that row; then the other. In the end every row the application
# wrote kept its value, every other row was updated exactly once, and rows_done is exact.
# `--check` shows the statements a leaf's slice sends, each planned as an index range scan on
# that one leaf. A leaf detached while it is walked, or before its turn, ends its slice (its
# rows left the job's table with it); a leaf attached during the job with rows below the
# high-water mark is found by the closing read and done by the sweep.
. "$BF_ROOT/tests/lib/test.sh"

N=30000
psql_q "CREATE TABLE ev (id bigint NOT NULL, created_at date NOT NULL, v text NOT NULL,
                         new_col text, n_set int NOT NULL DEFAULT 0, PRIMARY KEY (id, created_at))
        PARTITION BY RANGE (created_at)"
psql_q "CREATE TABLE ev_2024 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"
psql_q "CREATE TABLE ev_2025 PARTITION OF ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')"
psql_q "CREATE TABLE ev_other PARTITION OF ev DEFAULT"
psql_q "INSERT INTO ev (id, created_at, v)
        SELECT g, date '2023-07-01' + (g % 1000), 'v' || g FROM generate_series(1, $N) g"
psql_q "CREATE TABLE hp (id bigint PRIMARY KEY, v text NOT NULL, new_col text,
                         n_set int NOT NULL DEFAULT 0) PARTITION BY HASH (id)"
for r in 0 1 2; do
	psql_q "CREATE TABLE hp$r PARTITION OF hp FOR VALUES WITH (MODULUS 4, REMAINDER $r)"
done
psql_q "CREATE TABLE hp3 PARTITION OF hp FOR VALUES WITH (MODULUS 4, REMAINDER 3)
        PARTITION BY RANGE (id)"
psql_q "CREATE TABLE hp3_low PARTITION OF hp3 FOR VALUES FROM (MINVALUE) TO (10000)"
psql_q "CREATE TABLE hp3_high PARTITION OF hp3 FOR VALUES FROM (10000) TO (MAXVALUE)"
psql_q "INSERT INTO hp (id, v) SELECT g, 'v' || g FROM generate_series(1, $N) g"
# the application already wrote some rows: they are not the job's to change
for t in ev hp; do
	psql_q "UPDATE $t SET new_col = 'app' || id WHERE id % 97 = 0"
done
psql_q "ANALYZE"
todo_ev=$(psql_q "SELECT count(*) FROM ev WHERE new_col IS NULL")
todo_hp=$(psql_q "SELECT count(*) FROM hp WHERE new_col IS NULL")

# hold ROWS of TABLE (ids), each in its own session, until released by hold_end
hold() {
	psql_q "BEGIN; SELECT 1 FROM $1 WHERE id = $2 FOR UPDATE; SELECT 'bf_hold_row $1 $2', pg_sleep(300);
	        COMMIT;" >/dev/null 2>&1 &
	bf_defer kill $!
}
holding() { [[ $(psql_q "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
             WHERE l.locktype = 'transactionid' AND a.query LIKE '%bf_hold_row%'
               AND a.pid <> pg_backend_pid()") == "$1" ]]; }
hold_end() {
	psql_q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	        WHERE query LIKE '%bf_hold_row $1 $2''%' AND pid <> pg_backend_pid()" >/dev/null
}
partition_of() { psql_q "SELECT tableoid::regclass FROM $1 WHERE id = $2"; }
# rows in two different partitions, and with the same ctid as rows of other partitions
first_in() { psql_q "SELECT min(id) FROM $1 WHERE id % 97 <> 0 AND id > $2"; }
EV_A=$(first_in ev_2024 3000) EV_B=$(first_in ev_other 20000)
HP_A=$(first_in hp2 100) HP_B=$(first_in hp3_high 25000)
assert_eq "ev's held rows are in different partitions" "ev_2024 ev_other" \
	"$(partition_of ev "$EV_A") $(partition_of ev "$EV_B")"
assert_eq "hp's held rows are in different partitions" "hp2 hp3_high" \
	"$(partition_of hp "$HP_A") $(partition_of hp "$HP_B")"
assert_eq "their ctids exist in other partitions too" "t" "$(psql_q "
	SELECT count(DISTINCT tableoid) > 1 FROM hp WHERE ctid = (SELECT ctid FROM hp WHERE id = $HP_A)")"
hold ev "$EV_A"
hold ev "$EV_B"
hold hp "$HP_A"
hold hp "$HP_B"
wait_for "four rows held" 10 holding 4

bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: ev_fill
    table: ev
    set: "new_col = upper(v), n_set = n_set + 1"
    where: "new_col IS NULL"
    batch_size: 500
    target_batch_time: 0
    sleep: 0
  - name: hp_fill
    table: hp
    set: "new_col = upper(v), n_set = n_set + 1"
    where: "new_col IS NULL"
    batch_size: 500
    target_batch_time: 0
    sleep: 0
    parallel: 2
YAML
"$BF_BIN" -c "$BF_TMPDIR/bf.yaml" --check >"$BF_TMPDIR/check.out"
cat "$BF_TMPDIR/check.out"
# plans JOB: the plan lines --check printed for JOB
plans() { awk -v job="job $1 " 'index($0, job) == 1 {on = 1} on && /^job / && index($0, job) != 1 {on = 0}
	on && /^    / {print}' "$BF_TMPDIR/check.out"; }
for j in ev_fill:ev_2024 hp_fill:hp1; do
	job=${j%%:*} leaf=${j#*:}
	assert_eq "$job: shown on its biggest leaf (most rows)" "$leaf" "$(psql_q "
		SELECT c.relname FROM pg_partition_tree('${job%_fill}') t JOIN pg_class c ON c.oid = t.relid
		WHERE t.isleaf ORDER BY c.reltuples DESC, c.oid LIMIT 1")"
	assert_true "$job: --check says so" grep -q "shown on the biggest, \"public\".\"$leaf\"" \
		"$BF_TMPDIR/check.out"
	p=$(plans "$job")
	assert_ge "$job: two plans, each with two range scans on the leaf's key index (hi, rows)" \
		"$(grep -cE "(Index Only Scan using|Index Scan using|Bitmap Index Scan on) ${leaf}_pkey" <<<"$p")" 4
	assert_eq "$job: each bounded below by the cursor" "$(grep -c "Index Cond: ((ROW(id, created_at) > ROW\|Index Cond: ((id > " <<<"$p")" \
		"$(grep -cE "(Index Only Scan using|Index Scan using|Bitmap Index Scan on) ${leaf}_pkey" <<<"$p")"
	assert_eq "$job: no sequential scan of a table, no other partition" "" \
		"$(grep -E "Seq Scan on (ev|hp)|on (ev|hp)[a-z0-9_]*" <<<"$p" | grep -v " on $leaf" || true)"
done
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
waiting() { [[ $(job state_reason "$1" 2>/dev/null) =~ ^"waiting for $2"\+?" rows locked by other sessions"$ ]]; }
wait_for "ev: the closing read found its 2 held rows" 60 waiting ev_fill 2 || cat "$BF_TMPDIR/daemon.log"
wait_for "hp: the closing read found its 2 held rows" 60 waiting hp_fill 2 || cat "$BF_TMPDIR/daemon.log"
assert_true "ev walked its 3 partitions" \
	grep -q 'job=ev_fill msg="first pass partition by partition" partitions=3 left=3 at_once=1' \
	"$BF_TMPDIR/daemon.log"
assert_true "hp walked its 5 leaves (two levels), 2 at once" \
	grep -q 'job=hp_fill msg="first pass partition by partition" partitions=5 left=5 at_once=2' \
	"$BF_TMPDIR/daemon.log"
assert_true "one slice per leaf" grep -q 'msg="walking a partition" slice=5 partition=public.hp3_low' \
	"$BF_TMPDIR/daemon.log"
assert_eq "every leaf of hp has its slice, walked to its end" "5 5" "$(psql_q "
	SELECT count(*), count(*) FILTER (WHERE cursor = high_key) FROM backfill.slices
	WHERE job = 'hp_fill'" -F ' ')"
assert_eq "no row updated twice, none the application wrote" "0 0" "$(psql_q "
	SELECT (SELECT count(*) FROM ev WHERE n_set > 1 OR (new_col LIKE 'app%' AND n_set > 0)),
	       (SELECT count(*) FROM hp WHERE n_set > 1 OR (new_col LIKE 'app%' AND n_set > 0))" -F ' ')"

# one held row of each table let go: the sweep, on the parent, takes exactly that one
hold_end ev "$EV_A"
hold_end hp "$HP_A"
row_done() { [[ $(psql_q "SELECT new_col FROM $1 WHERE id = $2") == "V$2" ]]; }
wait_for "ev's released row done" 60 row_done ev "$EV_A"
wait_for "hp's released row done" 60 row_done hp "$HP_A"
assert_eq "the other rows of ev are untouched by the sweep" "0" \
	"$(psql_q "SELECT count(*) FROM ev WHERE n_set > 1 OR (new_col LIKE 'app%' AND n_set > 0)")"
assert_eq "the other rows of hp are untouched by the sweep" "0" \
	"$(psql_q "SELECT count(*) FROM hp WHERE n_set > 1 OR (new_col LIKE 'app%' AND n_set > 0)")"
assert_eq "the other held rows are still to do" "" \
	"$(psql_q "SELECT new_col FROM ev WHERE id = $EV_B")$(psql_q "SELECT new_col FROM hp WHERE id = $HP_B")"
hold_end ev "$EV_B"
hold_end hp "$HP_B"
daemon_wait 90
cat "$BF_TMPDIR/daemon.log"
assert_eq "exit status" 0 "$DAEMON_RC"
for t in ev hp; do
	assert_eq "$t: job done" "done" "$(job_state "${t}_fill")"
	assert_eq "$t: the rows the application wrote kept their value, n_set 0" "$(psql_q "
		SELECT count(*) FROM $t WHERE id % 97 = 0")" "$(psql_q "
		SELECT count(*) FROM $t WHERE new_col = 'app' || id AND n_set = 0")"
	assert_eq "$t: every other row updated exactly once, right" "$(psql_q "
		SELECT count(*) FROM $t WHERE id % 97 <> 0")" "$(psql_q "
		SELECT count(*) FROM $t WHERE new_col = upper(v) AND n_set = 1")"
done
assert_eq "ev: rows_done is the rows there were to do" "$todo_ev" \
	"$(psql_q "SELECT rows_done FROM backfill.progress WHERE name = 'ev_fill'")"
assert_eq "hp: rows_done is the rows there were to do" "$todo_hp" \
	"$(psql_q "SELECT rows_done FROM backfill.progress WHERE name = 'hp_fill'")"

# a leaf detached while its slice walks it, one detached before its turn, one attached
psql_q "CREATE TABLE dt (id bigint PRIMARY KEY, v text NOT NULL, new_col text,
                         n_set int NOT NULL DEFAULT 0) PARTITION BY RANGE (id)"
psql_q "CREATE TABLE dt_a PARTITION OF dt FOR VALUES FROM (1) TO (10001)"
psql_q "CREATE TABLE dt_b PARTITION OF dt FOR VALUES FROM (10001) TO (20001)"
psql_q "CREATE TABLE dt_c PARTITION OF dt FOR VALUES FROM (20001) TO (30001)"
psql_q "INSERT INTO dt (id, v) SELECT g, 'v' || g FROM generate_series(1, 30000) g"
psql_q "ANALYZE dt"
bf_conf "$BF_TMPDIR/dt.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: dt_fill
    table: dt
    set: "new_col = upper(v), n_set = n_set + 1"
    where: "new_col IS NULL"
    batch_size: 200
    target_batch_time: 0
    sleep: 0
    max_rows_per_second: 2000
YAML
daemon_start "$BF_TMPDIR/dt.yaml" "$BF_TMPDIR/dt.log" --exit-when-done
slice_moved() { [[ $(psql_q "SELECT rows_done FROM backfill.slices WHERE job = 'dt_fill' AND slice = 1") -gt 0 ]]; }
wait_for "the first leaf is being walked" 30 slice_moved
psql_q "ALTER TABLE dt DETACH PARTITION dt_a"
psql_q "ALTER TABLE dt DETACH PARTITION dt_c"
psql_q "CREATE TABLE dt_c2 (LIKE dt INCLUDING DEFAULTS)"
psql_q "INSERT INTO dt_c2 (id, v) SELECT g, 'v' || g FROM generate_series(20001, 25000) g"
psql_q "ALTER TABLE dt ATTACH PARTITION dt_c2 FOR VALUES FROM (20001) TO (30001)"
daemon_wait 60
cat "$BF_TMPDIR/dt.log"
assert_eq "dt: exit status" 0 "$DAEMON_RC"
assert_eq "dt: done" "done" "$(job_state dt_fill)"
assert_true "the walked leaf's slice ended when it left the table" \
	grep -q 'msg="a partition left the table (detached or dropped): its slice ends" slice=1' "$BF_TMPDIR/dt.log"
assert_true "so did the slice of the leaf detached before its turn" \
	grep -q 'msg="a partition left the table (detached or dropped): its slice ends" slice=3' "$BF_TMPDIR/dt.log"
part_a=$(psql_q "SELECT count(*) FROM dt_a WHERE n_set = 1")
assert_eq "dt_a was left part done: every row once or not at all" "t 10000" \
	"$(psql_q "SELECT $part_a BETWEEN 1 AND 9999, count(*) FILTER (WHERE n_set = 0 AND new_col IS NULL
	           OR n_set = 1 AND new_col = upper(v)) FROM dt_a" -F ' ')"
assert_eq "dt_c, detached before its turn, is untouched" "10000" \
	"$(psql_q "SELECT count(*) FROM dt_c WHERE n_set = 0 AND new_col IS NULL")"
assert_eq "every row now in dt (dt_b and the attached dt_c2) done once" "15000 15000" \
	"$(psql_q "SELECT count(*), count(*) FILTER (WHERE n_set = 1 AND new_col = upper(v)) FROM dt" -F ' ')"
assert_eq "rows_done counts what was updated while in the table" "$((part_a + 15000))" \
	"$(psql_q "SELECT rows_done FROM backfill.progress WHERE name = 'dt_fill'")"
test_finish
