#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_53_backup_sweep: backup: true on a row the job writes twice, and an undo run like a job.
#   - the application changes five rows after the job's pass wrote them; the closing read
#     finds them and updates them again: their backup keeps the first old value (what the row
#     held before the job), and the undo puts that back;
#   - backup_columns names what the backup keeps: --check lists it, the backup table has
#     exactly those columns;
#   - the undo obeys the gate as the job's batches do: paused by backfillctl (state paused,
#     no row put back meanwhile) and resumed, throttled by throttle_query (the same) and let
#     go; its progress shows meanwhile (backfillctl status, the progress view's percent);
#   - the 100 rows the application changed during the undo keep its values, and the first keys
#     the undo lists as skipped are among them; every other row, the five included, is as
#     before the job (md5).
. "$BF_ROOT/tests/lib/test.sh"

N=20000
psql_q "CREATE TABLE \"Things\" (id bigint PRIMARY KEY, v text, w int NOT NULL)"
psql_q "INSERT INTO \"Things\" SELECT g, 'thing ' || g, g FROM generate_series(1, $N) g"
psql_q "CREATE TABLE orig AS TABLE \"Things\""
psql_q "CREATE TABLE knob (v int NOT NULL)"
psql_q "INSERT INTO knob VALUES (0)"
sum_sql() { echo "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM $1 t WHERE ${2:-true}"; }

bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: shout
    table: '"Things"'
    set: "v = upper(v), w = w + 1"
    where: "v <> upper(v)"
    backup: true
    backup_columns: [v, w]
    batch_size: 200
    max_batch_size: 200
    sleep: 30ms
    throttle_query: "SELECT v FROM knob"
    throttle_above: 0
    lag:
      check_interval: 200ms
YAML
"$BF_BIN" --check -c "$BF_TMPDIR/bf.yaml" >"$BF_TMPDIR/check.out" 2>&1 || true
assert_true "--check lists the backup's columns" grep -q 'backup: "v", "w" ' "$BF_TMPDIR/check.out"

# up: five rows written by the pass are changed by the application, then swept
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/up.log" --exit-when-done
wait_for "the pass is halfway" 60 rows_done_at_least shout $((N / 2))
psql_q "UPDATE \"Things\" SET v = 'again ' || id WHERE id <= 5"
daemon_wait 120
assert_eq "the job ends done" "0 done" "$DAEMON_RC $(job_state shout)"
assert_eq "rows_done counts the five rows' second update" $((N + 5)) "$(job rows_done shout)"
assert_eq "the sweep wrote them again" 5 \
	"$(psql_q "SELECT count(*) FROM \"Things\" WHERE id <= 5 AND v = 'AGAIN ' || id AND w = id + 2")"
assert_eq "the backup table has the key and backup_columns" "id v w backfilld_written" \
	"$(psql_q "SELECT string_agg(attname, ' ' ORDER BY attnum) FROM pg_attribute
	           WHERE attrelid = 'backfill.shout_backup'::regclass AND attnum > 0")"
assert_eq "the backup holds every row once" "$N" "$(psql_q "SELECT count(*) FROM backfill.shout_backup")"
assert_eq "each with its value from before the job, the five included" 0 \
	"$(psql_q "SELECT count(*) FROM backfill.shout_backup b JOIN orig o USING (id)
	           WHERE (b.v, b.w) IS DISTINCT FROM (o.v, o.w)")"

# down, paused and throttled on the way, the application writing meanwhile
"$BF_CTL" -d "$BF_DB_CONNINFO" undo shout >/dev/null
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/down.log" --exit-when-done
undone_at_least() { (($(job undo_rows shout) >= $1)); }
wait_for "the undo is under way" 30 undone_at_least 1000
assert_match "backfillctl status shows the undo" 'shout +undoing ' \
	"$("$BF_CTL" -d "$BF_DB_CONNINFO" status shout)"
"$BF_CTL" -d "$BF_DB_CONNINFO" pause shout >/dev/null
wait_for "the undo is paused" 10 job_is shout paused
at_pause=$(job undo_rows shout)
assert_true "the progress view shows the undo's percent" test \
	"$(psql_q "SELECT percent > 0 AND percent < 100 FROM backfill.progress WHERE name = 'shout'")" = t
psql_q "UPDATE \"Things\" SET v = 'app ' || id WHERE id > $N - 100"
sleep 1 # a window to watch, not a synchronisation: nothing may happen in it
assert_eq "paused: no row put back" "paused $at_pause" "$(job "state || ' ' || undo_rows" shout)"
"$BF_CTL" -d "$BF_DB_CONNINFO" resume shout >/dev/null
wait_for "undoing again" 10 undone_at_least $((at_pause + 1000))
psql_q "UPDATE knob SET v = 1"
wait_for "throttled by throttle_query" 10 job_is shout throttled
assert_eq "the reason says so" "throttle_query 1 > 0" "$(job state_reason shout)"
at_throttle=$(job undo_rows shout)
sleep 1 # a window to watch, as above
assert_eq "throttled: no row put back" "throttled $at_throttle" "$(job "state || ' ' || undo_rows" shout)"
psql_q "UPDATE knob SET v = 0"
daemon_wait 120
assert_eq "the undo ends" "0 undone" "$DAEMON_RC $(job_state shout)"
assert_eq "100 rows skipped, the others put back" "$((N - 100)) 100" \
	"$(job "undo_rows || ' ' || undo_skipped" shout)"
keys=$(job "array_to_string(undo_keys, ' ')" shout)
assert_ge "some first keys are listed" "$(wc -w <<<"$keys")" 2
for k in $keys; do
	assert_ge "listed key $k is a row the application changed" "$k" $((N - 99))
done
assert_eq "the application's rows keep its values" 100 \
	"$(psql_q "SELECT count(*) FROM \"Things\" WHERE v = 'app ' || id")"
assert_eq "every other row is as before the job, the five written twice included" \
	"$(psql_q "$(sum_sql orig "id <= $N - 100")")" "$(psql_q "$(sum_sql '"Things"' "id <= $N - 100")")"
test_finish
