#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_00_harness: the harness itself. The runner's cluster is reachable as a superuser in the
# test's own database with wal_level=logical; the assertions and wait_for report as promised;
# pg_start_standby streams from `main`; and a test's clusters and files are cleaned up whether
# it stops them, fails under set -e or is killed with SIGTERM (the runner's timeout).
set -euo pipefail
. "$BF_ROOT/tests/lib/pg.sh"
. "$BF_ROOT/tests/lib/assert.sh"

# proc_gone PID: no such process, or only a zombie (a container's PID 1 may not reap).
proc_gone() {
	[[ ! -e /proc/$1 ]] || grep -q '^[^)]*) Z' "/proc/$1/stat" 2>/dev/null
}

repl_state() {
	psql_q "SELECT state FROM pg_stat_replication WHERE application_name = '$1'"
}

not_replicating() {
	[[ -z $(repl_state "$1") ]]
}

# --- the primary the runner gave us ---
assert_true "server reachable" pg_isready -q
assert_eq "connected as a superuser" on "$(psql_q 'SHOW is_superuser')"
assert_eq "current database is the test's own" "$BF_TEST_DB" "$(psql_q 'SELECT current_database()')"
assert_eq "test database named after the test" t_00_harness "$BF_TEST_DB"
assert_eq "wal_level is logical" logical "$(psql_q 'SHOW wal_level')"
assert_eq "fsync is off" off "$(psql_q 'SHOW fsync')"
assert_eq "synchronous_commit keeps its default" on "$(psql_q 'SHOW synchronous_commit')"
assert_eq "listening on 127.0.0.1 only" 127.0.0.1 "$(psql_q 'SHOW listen_addresses')"
assert_eq "the primary is main" main "$BF_PG_PRIMARY"
assert_eq "PGPORT is main's" "$BF_PG_PORT_MAIN" "$PGPORT"
assert_eq "pg_conninfo main" \
	"host=127.0.0.1 port=$BF_PG_PORT_MAIN user=postgres dbname=$BF_TEST_DB" "$(pg_conninfo main)"
assert_true "pg_hba allows replication from 127.0.0.1" grep -qE \
	'^host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' \
	"$BF_PG_DATA_MAIN/pg_hba.conf"
assert_true "BF_BIN and BF_CTL are set" test -n "$BF_BIN" -a -n "$BF_CTL"
psql_q "SELECT pg_create_logical_replication_slot('t00_slot', 'test_decoding')" >/dev/null
assert_eq "a logical slot can be created" t00_slot \
	"$(psql_q "SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'logical'")"
psql_q "SELECT pg_drop_replication_slot('t00_slot')" >/dev/null

# --- the assertion library ---
rc=0
out=$(wait_for "nothing" 0.3 false) || rc=$?
assert_eq "wait_for returns 1 on timeout" 1 "$rc"
assert_match "wait_for says what it waited for" '^timeout after 0\.3s waiting for nothing' "$out"
assert_true "wait_for returns 0 once the command succeeds" wait_for "true" 1 true
out=$(
	BF_ASSERT_LOG=""
	assert_eq "inner" a b
	assert_ge "inner ge" 1 2
	assert_match "inner match" '^x' y
	echo "fails=$BF_FAILS"
)
assert_match "a failed assert_eq prints not ok with both values" \
	"not ok - inner \(expected 'a', got 'b'\)" "$out"
assert_match "a failed assert_ge says why" 'not ok - inner ge \(expected >= 2, got 1\)' "$out"
assert_match "failures are counted" 'fails=3$' "$out"
assert_ge "assert_ge accepts equal" 5 5
assert_le "assert_le" 4 5

# --- a streaming standby of main ---
pg_start_standby main standby1
assert_eq "standby1 streams" streaming "$(repl_state standby1)"
assert_eq "standby1 is in recovery" t "$(psql_on standby1 'SELECT pg_is_in_recovery()')"
assert_match "standby1 lives in this test's own directory" "^$BF_TMPDIR/standby1\$" "$BF_PG_DIR_STANDBY1"
assert_match "the test's directory is below the runner's" "/t_00_harness\.[^/]+\$" "$BF_TMPDIR"
assert_true "standby1 has its own port" test "$BF_PG_PORT_STANDBY1" != "$BF_PG_PORT_MAIN"

psql_q "CREATE TABLE harness (id int PRIMARY KEY, v text); INSERT INTO harness VALUES (1, 'hello')"
row_on_standby() {
	[[ $(psql_on standby1 'SELECT v FROM harness WHERE id = 1') == hello ]]
}
wait_for "the row to reach standby1" 30 row_on_standby
assert_eq "a row inserted on main is visible on standby1" hello \
	"$(psql_on standby1 'SELECT v FROM harness WHERE id = 1')"

sb_pid=$(head -n 1 "$BF_PG_DATA_STANDBY1/postmaster.pid")
pg_stop standby1
assert_false "standby1 no longer accepts connections" \
	pg_isready -q -h 127.0.0.1 -p "$BF_PG_PORT_STANDBY1"
assert_true "standby1's postmaster is gone" proc_gone "$sb_pid"
wait_for "standby1 to leave pg_stat_replication" 10 not_replicating standby1
assert_eq "standby1 left pg_stat_replication" "" "$(repl_state standby1)"

# --- cleanup when a test fails under set -e ---
rc=0
out=$(BF_KEEP_TMP=0 bash -c '
	set -euo pipefail
	. "$BF_ROOT/tests/lib/pg.sh"
	pg_start_standby main standby2
	echo "$BF_TMPDIR $(head -n 1 "$BF_PG_DATA_STANDBY2/postmaster.pid")"
	false
	echo unreachable' 2>&1) || rc=$?
assert_eq "a child failing under set -e exits 1" 1 "$rc"
read -r child_tmp child_pid <<<"$(tail -n 1 <<<"$out")"
assert_match "the child's directory was below ours" "^$BF_TMPDIR/t_00_harness\." "$child_tmp"
assert_false "the child's directory was removed" test -e "$child_tmp"
assert_true "the child's standby was stopped" proc_gone "$child_pid"
assert_true "our own directory survived" test -d "$BF_TMPDIR"
wait_for "standby2 to leave pg_stat_replication" 10 not_replicating standby2

# --- cleanup when a test is killed (SIGTERM, as the runner's timeout does) ---
info=$BF_TMPDIR/child3.info
BF_KEEP_TMP=0 bash -c '
	. "$BF_ROOT/tests/lib/pg.sh"
	pg_start_standby main standby3 || exit 9
	sleep 300 &
	bf_defer kill $!
	echo "$BF_TMPDIR $(head -n 1 "$BF_PG_DATA_STANDBY3/postmaster.pid") $!" >"$1.tmp"
	mv "$1.tmp" "$1"
	wait' child3 "$info" >/dev/null 2>&1 &
child=$!
wait_for "the killable child to start standby3" 30 test -s "$info"
read -r child_tmp child_pid sleep_pid <"$info"
kill -TERM "$child"
rc=0
wait "$child" || rc=$?
assert_eq "a child killed with SIGTERM exits 143" 143 "$rc"
assert_false "its directory was removed" test -e "$child_tmp"
assert_true "its standby was stopped" proc_gone "$child_pid"
assert_true "its deferred command ran (bf_defer)" proc_gone "$sleep_pid"
wait_for "standby3 to leave pg_stat_replication" 10 not_replicating standby3

test_finish
