# shellcheck shell=bash
# tests/lib/daemon.sh - run backfilld from an integration test and look at its jobs.
#
# API
#   bf_conf FILE                  write a configuration from stdin, with $BF_DB_CONNINFO
#                                 available to the here-document (the test's database)
#   daemon_start CONF LOG [ARG...] start $BF_BIN -c CONF ARG... in the background, logging to
#                                 LOG; sets DAEMON_PID; killed at cleanup if still running
#   daemon_wait TIMEOUT            wait for DAEMON_PID to exit; sets DAEMON_RC (124 on timeout)
#   daemon_run TIMEOUT CONF LOG [ARG...]  run $BF_BIN -c CONF ARG... in the foreground, stderr
#                                 to LOG, killed after TIMEOUT seconds; sets DAEMON_RC (124:
#                                 it was still running)
#   job COL NAME                   one column of the job's row in backfill.jobs
#   job_state NAME                 its state
#   job_is NAME STATE              true when the job is in STATE (for wait_for)
#   rows_done_at_least NAME N      true when rows_done >= N (for wait_for)
#   test_role SUFFIX               a login role for the test: ROLE, ROLE_CONNINFO; dropped at the end
#   items_table ROWS               items(id, old_col, new_col, n_set), ROWS rows, analyzed
#   items_conf FILE CONNINFO       a configuration with its job items_fill, more keys from stdin
#   hold_row TABLE ID SECONDS      another session holds the row FOR UPDATE; release_rows ends it
#   lag_items ROWS                 the lag tests' table items(id, filler, y, n)
#   lag_conf FILE CONNINFO         their job `fill`, its lag: keys from stdin
#   metrics_get PORT PATH          the whole HTTP answer of the endpoint on 127.0.0.1:PORT to
#                                 GET PATH
#   metric PAGE SERIES             the value of one series (its name and labels exactly as
#                                 the page writes them) on a page; empty when absent

BF_DB_CONNINFO=$(pg_conninfo "$BF_PG_PRIMARY" "$BF_TEST_DB")
export BF_DB_CONNINFO

bf_conf() {
	cat >"$1"
}

daemon_start() {
	local conf=$1 log=$2
	shift 2
	"$BF_BIN" -c "$conf" "$@" >"$log" 2>&1 &
	DAEMON_PID=$!
	bf_defer kill -9 "$DAEMON_PID"
}

# daemon_wait TIMEOUT: polls (no sleep-as-synchronisation) until the process is gone.
daemon_wait() {
	local timeout=$1 rc=0
	if ! wait_for "backfilld (pid $DAEMON_PID) exits" "$timeout" _bf_daemon_gone "$DAEMON_PID"; then
		DAEMON_RC=124
		return 0
	fi
	wait "$DAEMON_PID" || rc=$?
	DAEMON_RC=$rc
}

daemon_run() {
	local timeout=$1 conf=$2 log=$3 rc=0
	shift 3
	timeout "$timeout" "$BF_BIN" -c "$conf" "$@" 2>"$log" || rc=$?
	# shellcheck disable=SC2034 # read by the test that sources this file
	DAEMON_RC=$rc
}

_bf_daemon_gone() {
	[[ ! -e /proc/$1 ]] || grep -q '^[^)]*) Z' "/proc/$1/stat" 2>/dev/null
}

job() {
	psql_q "SELECT $1 FROM backfill.jobs WHERE name = '$2'"
}

job_state() {
	job state "$1"
}

job_is() {
	[[ $(job_state "$1" 2>/dev/null) == "$2" ]]
}

rows_done_at_least() {
	local n
	n=$(job rows_done "$1" 2>/dev/null)
	[[ -n $n && $n -ge $2 ]]
}

# test_role SUFFIX: a login role named after the test (roles are cluster-wide), ${BF_TEST_DB}_SUFFIX,
# in ROLE, with a conninfo for it to the test's database in ROLE_CONNINFO; it and what it owns
# are dropped at the end.
test_role() {
	ROLE=${BF_TEST_DB}_$1
	# shellcheck disable=SC2034 # read by the test that sources this file
	ROLE_CONNINFO=${BF_DB_CONNINFO/user=postgres/user=$ROLE}
	psql_q "CREATE ROLE $ROLE LOGIN"
	bf_defer psql_q "DROP OWNED BY $ROLE; DROP ROLE $ROLE"
}

# items_table ROWS: items(id bigint, old_col, new_col, n_set) with ROWS rows, analyzed; a job
# setting new_col = upper(old_col), n_set = n_set + 1 shows by n_set that it updated each row once.
items_table() {
	psql_q "CREATE TABLE items (id bigint PRIMARY KEY, old_col text NOT NULL, new_col text,
	                            n_set int NOT NULL DEFAULT 0)"
	psql_q "INSERT INTO items (id, old_col) SELECT g, 'v' || g FROM generate_series(1, $1) g"
	psql_q "VACUUM ANALYZE items"
}

# items_conf FILE CONNINFO: a configuration whose job items_fill fills items_table's table
# (new_col = upper(old_col), n_set = n_set + 1); its further keys from stdin, one
# "key: value" per line (nested keys indented further).
items_conf() {
	{
		cat <<YAML
database: "$2"
jobs:
  - name: items_fill
    table: items
    set: "new_col = upper(old_col), n_set = n_set + 1"
    where: "new_col IS NULL"
YAML
		sed 's/^/    /'
	} >"$1"
}

# hold_row TABLE ID SECONDS: another session locks the row FOR UPDATE for SECONDS (in the
# background, HOLDER its pid); returns once the lock is held. Its query is marked with
# "bf_hold_row" so release_rows can end it early.
hold_row() {
	psql_q "BEGIN; SELECT 1 FROM $1 WHERE id = $2 FOR UPDATE; SELECT 'bf_hold_row', pg_sleep($3);
	        COMMIT;" >/dev/null 2>&1 &
	HOLDER=$!
	bf_defer kill "$HOLDER"
	wait_for "row $2 of $1 is held" 10 _bf_row_held
}

_bf_row_held() {
	[[ $(psql_q "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
	             WHERE l.locktype = 'transactionid' AND a.query LIKE '%bf_hold_row%'
	               AND a.pid <> pg_backend_pid()") -ge 1 ]]
}

# release_rows: end every session hold_row started (its locks go with it).
release_rows() {
	psql_q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	        WHERE query LIKE '%bf_hold_row%' AND pid <> pg_backend_pid()" >/dev/null
}

# lag_items ROWS: the table the lag tests fill, items(id, filler, y, n), ROWS rows of ~150 bytes.
lag_items() {
	psql_q "CREATE TABLE items (id int PRIMARY KEY, filler text, y int, n int NOT NULL DEFAULT 0)"
	psql_q "INSERT INTO items (id, filler) SELECT g, repeat('x', 150) FROM generate_series(1, $1) g"
}

# lag_conf FILE CONNINFO: one slow job `fill` on items (batch 500, fixed size, sleep 50ms: a
# batch commits about every 60 ms), whose lag: keys are read from stdin, one "key: value" per line.
lag_conf() {
	{
		cat <<YAML
database: "$2"
jobs:
  - name: fill
    table: items
    set: "y = id, n = n + 1"
    where: "y IS NULL"
    batch_size: 500
    target_batch_time: 0
    sleep: 50ms
    lag:
YAML
		sed 's/^/      /'
	} >"$1"
}

metrics_get() {
	local fd out
	exec {fd}<>"/dev/tcp/127.0.0.1/$1"
	printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$2" >&"$fd"
	out=$(cat <&"$fd")
	exec {fd}>&-
	printf '%s\n' "$out"
}

metric() {
	printf '%s\n' "$1" | tr -d '\r' | awk -v s="$2" '$1 == s { print $2 }'
}
