#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_35_failover: a primary and its streaming standby, the job's database a host list
# (host=127.0.0.1,127.0.0.1 port=P1,P2). Mid-job the primary is stopped with -m immediate and
# the standby promoted: the daemon finds the new primary through the list (libpq walks the
# hosts inside one asynchronous connect, closing one socket and opening the next, often under
# the same descriptor number, which the event loop must watch anew), and the job ends done on
# it, rows_done exact, every row updated exactly once: a batch the old primary committed but
# did not send is gone with its checkpoint, and is done again.
. "$BF_ROOT/tests/lib/test.sh"

# a primary of this test's own: the shared one serves the other tests
pg_start pri
pg_start_standby pri sb
pri_port=$(_bf_var PORT pri)
sb_port=$(_bf_var PORT sb)
pg_use pri postgres
N=200000
items_table "$N"

items_conf "$BF_TMPDIR/bf.yaml" \
	"host=127.0.0.1,127.0.0.1 port=$pri_port,$sb_port user=postgres dbname=postgres" <<YAML
batch_size: 1000
target_batch_time: 0
sleep: 0
max_rows_per_second: 40000
lag:
  max_replay_bytes: 0
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
wait_for "a fifth of the rows on the first primary" 60 rows_done_at_least items_fill $((N / 5))
pg_stop pri immediate
psql_on sb "SELECT pg_promote(true, 30)" >/dev/null
promoted=$EPOCHREALTIME
pg_use sb postgres
daemon_wait 90
cat "$BF_TMPDIR/daemon.log"
took=$(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $promoted }")
echo "from the promotion to the end of the job: ${took}s"
assert_eq "exit status" 0 "$DAEMON_RC"
assert_true "the daemon lost the first primary and retried" \
	grep -q 'msg="database unreachable, will retry"' "$BF_TMPDIR/daemon.log"
assert_eq "the job is done on the new primary" "done" "$(job_state items_fill)"
assert_eq "rows_done is exact" "$N" "$(psql_q "SELECT rows_done FROM backfill.progress")"
assert_eq "every row updated exactly once" "1 1 $N" \
	"$(psql_q "SELECT min(n_set), max(n_set), count(*) FROM items" -F ' ')"
# the rest of the table at 40,000 rows/s is at most 4 s; the reconnect is the rest
assert_le "done within 20 s of the promotion" "${took%.*}" 20
test_finish
