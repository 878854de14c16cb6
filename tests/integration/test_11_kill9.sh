#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_11_kill9: kill -9 the daemon in the middle of a job, then start it again. It resumes
# from the checkpoint, ends done, and rows_done equals the rows that changed: every row was
# updated exactly once (n_set = 1), nothing skipped, nothing counted twice.
. "$BF_ROOT/tests/lib/test.sh"

N=150000
items_table "$N"

items_conf "$BF_TMPDIR/bf.yaml" "$BF_DB_CONNINFO" <<YAML
batch_size: 1000
sleep: 10ms
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon1.log" --exit-when-done
wait_for "the job is a third through" 60 rows_done_at_least items_fill $((N / 3))
kill -9 "$DAEMON_PID"
daemon_wait 10
assert_eq "first daemon died of SIGKILL" 137 "$DAEMON_RC"
# its server session may still finish (commit or roll back) the batch in flight
no_session() { [[ $(psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'backfilld'") == 0 ]]; }
wait_for "the killed daemon's sessions are gone" 30 no_session
before=$(job rows_done items_fill)
assert_eq "the row still says running after the crash" running "$(job_state items_fill)"
assert_eq "rows_done at the crash equals the rows changed so far" \
	"$(psql_q "SELECT count(*) FROM items WHERE n_set > 0")" "$before"

daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon2.log" --exit-when-done
daemon_wait 120
cat "$BF_TMPDIR/daemon2.log"
assert_eq "second daemon exit status" 0 "$DAEMON_RC"
assert_true "it resumed from the checkpoint" grep -q 'msg="resuming from the checkpoint"' \
	"$BF_TMPDIR/daemon2.log"
assert_true "its check would walk ordered chunks (it did not see the pass start)" \
	grep -q 'msg="pass done, reading what is left".*mode=chunks' "$BF_TMPDIR/daemon2.log"
# under the default commit-latency budget the read goes chunk by chunk from the start, each
# statement paced as a batch, not one scan of the whole table
assert_true "its chunks found no row left" \
	grep -q 'msg="no row left to do".*read=chunks$' "$BF_TMPDIR/daemon2.log"
assert_eq "job state" "done" "$(job_state items_fill)"
assert_eq "rows_done equals the table" "$N" "$(job rows_done items_fill)"
assert_eq "every row updated exactly once" "1 1 $N" \
	"$(psql_q "SELECT min(n_set), max(n_set), count(*) FROM items" -F ' ')"
assert_eq "no row left" 0 "$(psql_q "SELECT count(*) FROM items WHERE new_col IS NULL")"
test_finish
