#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_34_primary_only: the daemon's connections want the primary. A `database` listing a real
# streaming standby first and the primary second (a failover-ready conninfo) runs the job on the
# primary to done; a `database` naming only the standby is refused as read-only, said in the
# log, and retried (the job never fails for it: a promotion would let it go on).
. "$BF_ROOT/tests/lib/test.sh"

pg_start_standby main standby1
primary_port=$(_bf_var PORT main)
standby_port=$(_bf_var PORT standby1)
psql_q "CREATE TABLE t (id int PRIMARY KEY, y int)"
psql_q "INSERT INTO t (id) SELECT g FROM generate_series(1, 5000) g"

bf_conf "$BF_TMPDIR/both.yaml" <<YAML
database: "host=127.0.0.1,127.0.0.1 port=$standby_port,$primary_port user=postgres dbname=$BF_TEST_DB"
jobs:
  - name: fill
    table: t
    set: "y = id"
    where: "y IS NULL"
    sleep: 0
YAML
"$BF_BIN" -c "$BF_TMPDIR/both.yaml" --check >"$BF_TMPDIR/check.out" 2>&1 || true
assert_true "--check, too, checks on the primary of the list (the unit's ExecStartPre)" \
	grep -q "backfilld --check: 1 job ok" "$BF_TMPDIR/check.out"
daemon_run 60 "$BF_TMPDIR/both.yaml" "$BF_TMPDIR/both.log" --exit-when-done
assert_eq "daemon exit status (124: still running after 60 s)" 0 "$DAEMON_RC"
assert_eq "job done through the primary of the list" "done" "$(job_state fill)"
assert_eq "every row filled" 0 "$(psql_q "SELECT count(*) FROM t WHERE y IS NULL")"

bf_conf "$BF_TMPDIR/standby.yaml" <<YAML
database: "$(pg_conninfo standby1 "$BF_TEST_DB")"
jobs:
  - name: on_standby
    table: t
    set: "y = id"
    where: "y IS NULL"
    sleep: 0
YAML
refused_twice() {
	(($(grep -c 'job=on_standby msg="database unreachable, will retry".*session is read-only' \
		"$BF_TMPDIR/standby.log") >= 2))
}
daemon_start "$BF_TMPDIR/standby.yaml" "$BF_TMPDIR/standby.log"
wait_for "a second refused attempt of the job" 30 refused_twice
assert_true "the daemon keeps retrying" test -e "/proc/$DAEMON_PID"
assert_eq "no job row written anywhere for it" 0 \
	"$(psql_q "SELECT count(*) FROM backfill.jobs WHERE name = 'on_standby'")"
kill -TERM "$DAEMON_PID"
daemon_wait 30
assert_eq "daemon exit status after SIGTERM" 0 "$DAEMON_RC"
test_finish
