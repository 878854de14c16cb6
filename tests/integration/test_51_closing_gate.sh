#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_51_closing_gate: the closing read waits for the gate as the batches do. Under its
# commit-latency budget (the default) a job reads what is left range by range, not in one scan;
# here each ~100,000-key range takes a second (slow_after, as in test_17: its `where` sleeps 1 s
# on ids 100000, 200000, 300000 and 400000 once y is set). Throttled by its throttle_query while
# it reads, it sends no further statement: for 4 s, more than its ranges left would take, it
# stays throttled and not done. Released, it ends done, every row updated once.
. "$BF_ROOT/tests/lib/test.sh"

psql_q "CREATE TABLE gate (closed int NOT NULL)"
psql_q "INSERT INTO gate VALUES (0)"
psql_q "CREATE TABLE items (id int PRIMARY KEY, y int, n_set int NOT NULL DEFAULT 0)"
psql_q "INSERT INTO items (id) SELECT g FROM generate_series(1, 400000) g"
psql_q "CREATE FUNCTION slow_after(i int) RETURNS bool LANGUAGE sql VOLATILE AS
        'SELECT false FROM (SELECT pg_sleep(CASE WHEN i % 100000 = 0 THEN 1 ELSE 0 END)) s'"

bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: fill
    table: items
    set: "y = id, n_set = n_set + 1"
    where: "y IS NULL OR slow_after(id)"
    batch_size: 5000
    max_batch_size: 10000
    sleep: 0
    throttle_query: "SELECT max(closed) FROM gate"
    throttle_above: 0
    lag:
      check_interval: 200ms
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
reading() { grep -q 'job=fill msg="pass done, reading what is left"' "$BF_TMPDIR/daemon.log"; }
wait_for "the pass is over, the closing read begins" 60 reading
psql_q "UPDATE gate SET closed = 1"
wait_for "throttled while it reads" 10 job_is fill throttled
assert_eq "the reason is the throttle_query's" "throttle_query 1 > 0" "$(job state_reason fill)"
# three ranges or more were left, a second each: a read that ignored the gate would be done
stays_throttled=ok
for _ in $(seq 40); do
	[[ $(job_state fill) == throttled ]] || stays_throttled="$(job_state fill)"
	sleep 0.1
done
assert_eq "it stays throttled for 4 s, no statement sent" ok "$stays_throttled"
assert_false "not done while throttled" \
	grep -q 'job=fill msg="no row left to do"' "$BF_TMPDIR/daemon.log"

psql_q "UPDATE gate SET closed = 0"
daemon_wait 60
assert_eq "daemon exit status" 0 "$DAEMON_RC"
assert_eq "done" "done" "$(job_state fill)"
assert_match "read by ranges" 'job=fill msg="no row left to do" rows=400000 passes=1 read=ranges$' \
	"$(grep 'job=fill msg="no row left to do"' "$BF_TMPDIR/daemon.log")"
assert_eq "every row updated once" 0 \
	"$(psql_q "SELECT count(*) FROM items WHERE y IS DISTINCT FROM id OR n_set <> 1")"
test_finish
