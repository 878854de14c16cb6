#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_39_commit_latency: the job keeps the server's commit latency within its budget. A
# cluster of its own with fsync on (commit_delay only delays real flushes). The job runs at
# full pace while the monitor's commit probes are fast; commit_delay = 40ms (every flush
# waits, as under a checkpoint's or the backfill's own I/O) puts them over the 20ms budget:
# the pace comes down to its floor and stays there, the job still moving, the reason saying
# "commit latency 41ms > 20ms: pace 5%"; at 100ms (past 4x the budget) the job stops,
# throttled; with commit_delay back to 0 the pace climbs to 100% ("full pace again"). Every
# row is updated once and counted once.
. "$BF_ROOT/tests/lib/test.sh"

pg_start commits "fsync = on"
pg_use commits postgres
conninfo=$(pg_conninfo commits postgres)

commit_delay() {
	psql_q "ALTER SYSTEM SET commit_siblings = 0" >/dev/null
	psql_q "ALTER SYSTEM SET commit_delay = $1" >/dev/null
	psql_q "SELECT pg_reload_conf()" >/dev/null
}
reason() { job state_reason fill; }
reason_is() { [[ $(reason) =~ $1 ]]; }
full_pace() { [[ $(job_state fill) == running && -z $(reason) ]]; }

N=1500000
psql_q "CREATE TABLE items (id int PRIMARY KEY, y int, n int NOT NULL DEFAULT 0)"
psql_q "INSERT INTO items (id) SELECT g FROM generate_series(1, $N) g"
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$conninfo"
log_level: debug
jobs:
  - name: fill
    table: items
    set: "y = id, n = n + 1"
    where: "y IS NULL"
    batch_size: 500
    target_batch_time: 0
    sleep: 0
    max_commit_latency: 20ms
    lag:
      check_interval: 200ms
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
wait_for "the job is under way" 30 rows_done_at_least fill 2000
assert_true "full pace while commits are fast" full_pace
assert_true "the monitor measured an idle baseline" \
	grep -q 'msg="commit probe".*idle=true' "$BF_TMPDIR/daemon.log"

commit_delay 40000
wait_for "the pace comes down to its floor" 30 reason_is '^commit latency [0-9.]+ms > 20ms: pace 5%$'
assert_eq "slowed, not stopped" running "$(job_state fill)"
at_floor=$(job rows_done fill)
wait_for "the job still moves at its floor" 30 rows_done_at_least fill $((at_floor + 500))
assert_true "still at the floor, never below" reason_is 'pace 5%$'

commit_delay 100000
wait_for "past 4x the budget the job stops" 30 job_is fill throttled
assert_match "the reason names the latency and the budget" '^commit latency [0-9]+ms > 20ms$' \
	"$(reason)"

commit_delay 0
full_pace_again() { grep -q 'job=fill msg="full pace again"' "$BF_TMPDIR/daemon.log"; }
wait_for "back to full pace once commits are fast again" 60 full_pace_again
daemon_wait 120
assert_eq "daemon exit status" 0 "$DAEMON_RC"
# the pace's figures change with every probe: logged when pacing starts (twice here: at the
# slowdown, and coming back from the throttle), not at each change
assert_le "pace changes logged when they start, not at every probe" \
	"$(grep -c 'msg=state state=running .*reason="commit latency' "$BF_TMPDIR/daemon.log")" 3
assert_eq "done" "done" "$(job_state fill)"
assert_eq "rows_done" "$N" "$(job rows_done fill)"
assert_eq "every row updated once" 0 "$(psql_q "SELECT count(*) FROM items WHERE y IS DISTINCT FROM id OR n <> 1")"
grep 'msg="commit probe"' "$BF_TMPDIR/daemon.log" | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^us=/) print substr($i, 4)}' |
	sort -n | awk '{a[NR] = $1} END {if (NR) printf "commit probe us: min %d median %d max %d (%d probes)\n", a[1], a[int((NR + 1) / 2)], a[NR], NR}'
test_finish
