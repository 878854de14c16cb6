#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_49_parallel_auto: parallel: auto on a cluster of its own with fsync on (commit_delay
# only delays real flushes). The first pass is cut into 4 key slices and starts with one
# walker; while commits stay fast it adds walkers (1 -> 2 -> ...); commit_delay = 40ms puts
# the monitor's probes over the 20ms budget and the walkers come back to one (the other
# slices stop after their batch, from their cursors); with commit_delay back to 0 they grow
# again. Every row is updated once and counted once, whatever the walkers did.
. "$BF_ROOT/tests/lib/test.sh"

pg_start autopar "fsync = on"
pg_use autopar postgres
conninfo=$(pg_conninfo autopar postgres)

commit_delay() {
	psql_q "ALTER SYSTEM SET commit_siblings = 0" >/dev/null
	psql_q "ALTER SYSTEM SET commit_delay = $1" >/dev/null
	psql_q "SELECT pg_reload_conf()" >/dev/null
}
# the walkers' sessions: the job's own connection and one per walking slice
sessions() { psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'backfilld'"; }
walkers_are() { [[ $(sessions) == $(($1 + 1)) ]]; }
changed_to() { # WALKERS FROM: the log says so (after line $2 of the log)
	tail -n +"$3" "$BF_TMPDIR/daemon.log" | grep -q "job=fill msg=\"parallel: auto\" walkers=$1 from=$2"
}
log_lines() { wc -l <"$BF_TMPDIR/daemon.log"; }

N=900000
psql_q "CREATE TABLE items (id int PRIMARY KEY, y int, n int NOT NULL DEFAULT 0)"
psql_q "INSERT INTO items (id) SELECT g FROM generate_series(1, $N) g"
psql_q "ANALYZE items"
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$conninfo"
jobs:
  - name: fill
    table: items
    set: "y = id, n = n + 1"
    where: "y IS NULL"
    parallel: auto
    batch_size: 1000
    max_batch_size: 1000
    target_batch_time: 0
    sleep: 50ms
    max_commit_latency: 20ms
    lag:
      check_interval: 200ms
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
wait_for "the first pass is cut into 4 slices, one walking" 30 \
	grep -q 'job=fill msg="first pass in slices, one connection each" slices=4 left=4 at_once=1 parallel=auto' \
	"$BF_TMPDIR/daemon.log"
assert_true "one walker at first" walkers_are 1
wait_for "a second walker while commits are fast" 30 changed_to 2 1 1
wait_for "its session" 10 walkers_are 2
wait_for "a third" 30 changed_to 3 2 1

at=$(log_lines)
commit_delay 40000
wait_for "slow commits: the walkers come back to one" 30 changed_to 1 '[0-9]' "$at"
wait_for "the others stopped after their batch" 30 walkers_are 1
assert_eq "still running, slowed" running "$(job_state fill)"

at=$(log_lines)
commit_delay 0
wait_for "fast commits again: a second walker" 60 changed_to 2 1 "$at"
daemon_wait 180
assert_eq "daemon exit status" 0 "$DAEMON_RC"
assert_eq "done" done "$(job_state fill)"
assert_eq "rows_done: every row" "$N" "$(psql_q "SELECT rows_done FROM backfill.progress WHERE name = 'fill'")"
assert_eq "every row updated once" 0 "$(psql_q "SELECT count(*) FROM items WHERE y IS DISTINCT FROM id OR n <> 1")"
test_finish
