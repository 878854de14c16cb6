#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_32_rate_batch: max_rows_per_second 2000 on a 20,000-row table takes at least 9 seconds;
# with target_batch_time 200ms on rows that cost a known amount of work (pg_sleep per row),
# the logged batch times settle within +-30% of the target after a few batches (nine in ten);
# the same rows with max_commit_latency 40ms: the budget caps the target, the batches settle
# near 40 ms (an application transaction meeting a batch's row waits no longer).
. "$BF_ROOT/tests/lib/test.sh"

psql_q "CREATE TABLE capped (id int PRIMARY KEY, y int)"
psql_q "INSERT INTO capped (id) SELECT g FROM generate_series(1, 20000) g"
# 0.5 ms of work per row: a batch of 400 rows takes about 200 ms
psql_q "CREATE FUNCTION slow_id(i int) RETURNS int LANGUAGE sql VOLATILE AS
        'SELECT i FROM (SELECT pg_sleep(0.0005)) s'"
psql_q "CREATE TABLE costly (id int PRIMARY KEY, y int)"
psql_q "INSERT INTO costly (id) SELECT g FROM generate_series(1, 12000) g"
psql_q "CREATE TABLE budget (id int PRIMARY KEY, y int)"
psql_q "INSERT INTO budget (id) SELECT g FROM generate_series(1, 4000) g"
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: capped
    table: capped
    set: "y = id"
    where: "y IS NULL"
    batch_size: 1000
    sleep: 0
    max_rows_per_second: 2000
  - name: costly
    table: costly
    set: "y = slow_id(id)"
    where: "y IS NULL"
    batch_size: 100
    min_batch_size: 10
    target_batch_time: 200ms
    max_commit_latency: off  # a budget caps target_batch_time (10ms by default)
    sleep: 0
  - name: budget
    table: budget
    set: "y = slow_id(id)"
    where: "y IS NULL"
    batch_size: 100
    min_batch_size: 10
    target_batch_time: 200ms
    max_commit_latency: 40ms
    sleep: 0
YAML
start=$EPOCHREALTIME
"$BF_BIN" -c "$BF_TMPDIR/bf.yaml" --exit-when-done -v 2>"$BF_TMPDIR/daemon.log"
secs=$(job "round(extract(epoch FROM finished_at - started_at))" capped)
echo "capped job took ${secs}s (whole run $(awk "BEGIN { print $EPOCHREALTIME - $start }")s)"
assert_eq "capped done" "done" "$(job_state capped)"
assert_ge "20,000 rows at 2000/s take at least 9 s" "$secs" 9
assert_eq "costly done" "done" "$(job_state costly)"
# batch times of the costly job, in order; after the first 6 they sit near the 200 ms target
grep 'job=costly msg=batch' "$BF_TMPDIR/daemon.log" | sed 's/.* ms=\([0-9]*\) .*/\1/' >"$BF_TMPDIR/ms"
n=$(wc -l <"$BF_TMPDIR/ms")
echo "costly batch times (ms): $(tr '\n' ' ' <"$BF_TMPDIR/ms")"
assert_ge "enough batches to judge" "$n" 12
settled=$(tail -n +7 "$BF_TMPDIR/ms" | head -n -1)
outside=$(awk '$1 < 140 || $1 > 260' <<<"$settled" | wc -l)
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
median=$(median <<<"$settled")
# the controller's promise is where batches settle, not that no batch is ever slow: the three
# jobs share two cores with the server, and a run of batches may meet a busy machine (one in ten
# outside +-30% failed a CI run with 7 of 63, all in one stretch), so: the median within 10%, and
# four batches in five within 30%
assert_ge "settled batches' median at least 180 ms (got $median)" "$median" 180
assert_le "settled batches' median at most 220 ms (got $median)" "$median" 220
assert_le "settled batches within +-30% of 200 ms, but for one in five ($outside outside)" \
	"$outside" $(($(wc -l <<<"$settled") / 5))
assert_eq "budget done" "done" "$(job_state budget)"
grep 'job=budget msg=batch' "$BF_TMPDIR/daemon.log" | sed 's/.* ms=\([0-9]*\) .*/\1/' | tail -n +7 | head -n -1 >"$BF_TMPDIR/bms"
echo "budget batch times (ms): $(tr '\n' ' ' <"$BF_TMPDIR/bms")"
assert_le "under a 40ms budget the batches settle near 40 ms, not 200 (median)" \
	"$(median <"$BF_TMPDIR/bms")" 60
test_finish
