#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_21_reload: SIGHUP with a broken file keeps the daemon and its job running and logs every
# error with line:column; SIGHUP with a new job starts it; a smaller batch_size applies from
# the next batch; a changed `database` string (the same server) is a reconnect: the job goes
# on from its checkpoint, one control connection left, the job once in /metrics; jobs the
# reloads took out leave /metrics once they have let go; a changed `set` fails that job with a
# message telling to reset or rename.
. "$BF_ROOT/tests/lib/test.sh"

psql_q "CREATE TABLE a (id int PRIMARY KEY, y int)"
psql_q "INSERT INTO a (id) SELECT g FROM generate_series(1, 200000) g"
psql_q "CREATE TABLE b (id int PRIMARY KEY, y int)"
psql_q "INSERT INTO b (id) SELECT g FROM generate_series(1, 5000) g"
conf=$BF_TMPDIR/bf.yaml
PORT=$(_bf_free_port)
job_a() { # $1 set, $2 batch_size, $3 more conninfo
	cat <<YAML
database: "$BF_DB_CONNINFO${3:-}"
metrics_listen: "127.0.0.1:$PORT"
jobs:
  - name: job_a
    table: a
    set: "$1"
    where: "y IS NULL"
    batch_size: $2
    target_batch_time: 0
    sleep: 100ms
YAML
}
job_a "y = id" 400 >"$conf"
daemon_start "$conf" "$BF_TMPDIR/daemon.log" -v
batch_is() { [[ $(job batch_size job_a) == "$1" ]] && rows_done_at_least job_a 1; }
wait_for "job_a runs with batch 400" 30 batch_is 400

# a broken file: three mistakes, all reported, nothing changes
cat >"$conf" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: job_a
    table: a
    set: "y = id"
    where: "y IS NULL"
    batch_size: abc
    sleep: forever
    colour: blue
YAML
kill -HUP "$DAEMON_PID"
logged_failure() { grep -q 'reload failed' "$BF_TMPDIR/daemon.log"; }
wait_for "the bad reload is logged" 10 logged_failure
assert_true "batch_size error with line:col" grep -q 'bf.yaml:7:[0-9]*: jobs\[0\].batch_size' "$BF_TMPDIR/daemon.log"
assert_true "sleep error with line:col" grep -q 'bf.yaml:8:[0-9]*: jobs\[0\].sleep' "$BF_TMPDIR/daemon.log"
assert_true "unknown key with line:col" grep -q 'bf.yaml:9:[0-9]*: jobs\[0\].colour' "$BF_TMPDIR/daemon.log"
assert_true "the daemon is still alive" kill -0 "$DAEMON_PID"
r=$(job rows_done job_a)
progressed() { rows_done_at_least job_a $((r + 1)); }
wait_for "job_a keeps running on the old configuration" 10 progressed

# a good file: smaller batch for job_a, a new job_b
{
	job_a "y = id" 150
	cat <<YAML
  - name: job_b
    table: b
    set: "y = -id"
    where: "y IS NULL"
    sleep: 0
YAML
} >"$conf"
kill -HUP "$DAEMON_PID"
wait_for "job_a's next batches use batch 150" 10 batch_is 150
# -v outlives a reload: debug lines (each batch) go on after it
debug_after_reload() { sed -n '/msg="configuration reloaded"/,$p' "$BF_TMPDIR/daemon.log" | grep -q 'job=job_a msg=batch '; }
wait_for "-v still holds after the reload (debug batch lines)" 10 debug_after_reload
wait_for "the new job_b ran to the end" 30 job_is job_b "done"
assert_eq "job_b correct" 0 "$(psql_q "SELECT count(*) FROM b WHERE y IS DISTINCT FROM -id")"
assert_eq "job_a still running" running "$(job_state job_a)"

# lag limits and the commit-latency budget switched off by a reload: the monitor and its
# connection go
lag_sessions() {
	psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'backfilld lag'"
}
assert_eq "one lag monitor while the jobs have lag limits" 1 "$(lag_sessions)"
# a job on the same server spelt as a URI: still one monitor (lag signals are the server's)
psql_q "CREATE TABLE c (id int PRIMARY KEY, y int)"
psql_q "INSERT INTO c (id) SELECT g FROM generate_series(1, 5000) g"
{
	job_a "y = id" 150
	cat <<YAML
  - name: job_c
    database: "postgresql://postgres@127.0.0.1:$PGPORT/$BF_TEST_DB?connect_timeout=9"
    table: c
    set: "y = id"
    where: "y IS NULL"
    batch_size: 100
    min_batch_size: 10
    target_batch_time: 0
    sleep: 200ms
YAML
} >"$conf"
kill -HUP "$DAEMON_PID"
wait_for "job_c under way" 20 rows_done_at_least job_c 1
assert_eq "two spellings of one server, one lag monitor" 1 "$(lag_sessions)"
{
	job_a "y = id" 150
	cat <<YAML
    max_commit_latency: off
    lag:
      max_replay_bytes: 0
      max_replay_time: 0
      max_slot_retained: 0
      max_archive_backlog: 0
      stall_after: 0
YAML
} >"$conf"
kill -HUP "$DAEMON_PID"
no_lag_session() { [[ $(lag_sessions) == 0 ]]; }
wait_for "the unused lag monitor disconnected" 10 no_lag_session
assert_eq "job_a runs on without lag limits" running "$(job_state job_a)"
# the jobs the reloads took out leave /metrics once they have let go
series() { metrics_get "$PORT" /metrics | grep -c "^backfilld_rows_done_total{job=\"$1\"" || true; }
removed_gone() { [[ $(series job_b) == 0 && $(series job_c) == 0 ]]; }
wait_for "job_b and job_c, removed, leave /metrics" 10 removed_gone
assert_eq "job_a stays on it" 1 "$(series job_a)"

# a changed conninfo for the same server (a new option, as a rotated password would be): the
# job goes on through it, from its checkpoint; the old control connection goes
job_a "y = id" 150 " connect_timeout=7" >"$conf"
kill -HUP "$DAEMON_PID"
moved() { grep -q 'job=job_a msg="database or dual_write changed: the job goes on through a new connection"' "$BF_TMPDIR/daemon.log"; }
wait_for "the reload is logged" 10 moved
r=$(job rows_done job_a)
wait_for "job_a goes on through the new conninfo" 30 progressed
assert_eq "job_a running, not failed" running "$(job_state job_a)"
one_listener() { [[ $(psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'backfilld control'") == 1 ]]; }
wait_for "one control connection left" 10 one_listener
assert_eq "/metrics: job_a once, not also the job the new conninfo replaced" 1 "$(series job_a)"
assert_eq "every row changed was counted once (one snapshot: data and checkpoint commit together)" t \
	"$(psql_q "SELECT (SELECT count(*) FROM a WHERE y = id) = rows_done FROM backfill.jobs WHERE name = 'job_a'")"

# a changed definition of a running job fails it, with what to do
job_a "y = id + 1" 150 " connect_timeout=7" >"$conf"
kill -HUP "$DAEMON_PID"
wait_for "job_a failed on its changed definition" 10 job_is job_a failed
assert_match "the reason says reset or rename" "reset.*rename" "$(job last_error job_a)"
assert_true "the daemon is still alive" kill -0 "$DAEMON_PID"

kill -TERM "$DAEMON_PID"
daemon_wait 30
assert_eq "exit status after SIGTERM" 0 "$DAEMON_RC"
test_finish
