#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_38_schedule_cap: more jobs than max_parallel_jobs, some failing at once (a missing
# table, a conninfo libpq refuses before connecting, which fails inside the start itself,
# first in the list, so inside the scheduler's first round),
# the others walking: at no moment do more than max_parallel_jobs jobs hold a connection.
# Read two ways: from the daemon's log, each start and each let-go replayed in order (a job
# finishing inside the scheduler and starting another from there would show as one too
# many), and from the server, the job advisory locks held, sampled while it runs.
. "$BF_ROOT/tests/lib/test.sh"

MAX=2
{
	cat <<YAML
database: "$BF_DB_CONNINFO"
max_parallel_jobs: $MAX
log_level: debug
defaults:
  batch_size: 500
  sleep: 20ms
jobs:
  - name: bad_conninfo
    database: "no_such_option=1"
    table: t1
    set: "y = x"
    where: "y IS NULL"
YAML
	for n in 1 2 3 4; do
		psql_q "CREATE TABLE t$n (id int PRIMARY KEY, x int NOT NULL, y int)" >&2
		psql_q "INSERT INTO t$n (id, x) SELECT g, g FROM generate_series(1, 10000) g" >&2
		cat <<YAML
  - name: missing_$n
    table: no_such_table_$n
    set: "y = 1"
    where: "y IS NULL"
  - name: fill_$n
    table: t$n
    set: "y = x"
    where: "y IS NULL"
YAML
	done
} >"$BF_TMPDIR/bf.yaml"

daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
max_locks=0
deadline=$((SECONDS + 120))
while ! _bf_daemon_gone "$DAEMON_PID" && ((SECONDS < deadline)); do
	locks=$(psql_q "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
	if ((locks > max_locks)); then max_locks=$locks; fi
	sleep 0.05 # a sampling period, not a wait for a condition
done
daemon_wait 120

# replay the log: +1 at each start, -1 at each let-go, never above MAX
replay=$(awk -v max="$MAX" '
	/msg=starting / { n++; if (n > peak) peak = n; if (n > max) over++ }
	/msg="job let go of its connection"/ { n-- }
	END { printf "%d %d %d\n", peak, over + 0, n }' "$BF_TMPDIR/daemon.log")
read -r peak over left <<<"$replay"
assert_eq "never more than max_parallel_jobs started at once (log replay)" 0 "$over"
assert_eq "the cap was reached (the test means something)" "$MAX" "$peak"
assert_eq "every started job let go" 0 "$left"
assert_le "never more job locks than max_parallel_jobs (server, sampled)" "$max_locks" "$MAX"
assert_ge "the server saw jobs holding their locks" "$max_locks" 1
assert_eq "all 9 jobs were started" 9 "$(grep -c 'msg=starting ' "$BF_TMPDIR/daemon.log")"
assert_eq "exit status 3: some jobs failed" 3 "$DAEMON_RC"
for n in 1 2 3 4; do
	assert_eq "fill_$n done" "done" "$(job_state "fill_$n")"
	assert_eq "fill_$n rows" 10000 "$(job rows_done "fill_$n")"
	assert_eq "missing_$n failed" failed "$(job_state "missing_$n")"
	assert_eq "t$n filled" 0 "$(psql_q "SELECT count(*) FROM t$n WHERE y IS DISTINCT FROM x")"
done
assert_true "the bad conninfo is named" grep -q 'job=bad_conninfo.*bad database conninfo' \
	"$BF_TMPDIR/daemon.log"
test_finish
