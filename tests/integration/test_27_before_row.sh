#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_27_before_row: a job that fails before it has its row in the control table fails for
# good and visibly, and never keeps the daemon up.
#   - no CREATE on the database (the control schema cannot be made): --check names the grant;
#     --exit-when-done exits 3 within seconds; without it, SIGTERM ends the daemon within a
#     second, and the log stays short (no line repeated in a loop);
#   - a control schema owned by a role the daemon's role is not a member of: refused by
#     --check and the daemon (it would run that role's functions); one made for the daemon's
#     role in advance serves without CREATE on the database;
#   - a missing table, with the control schema reachable: the failed row is written, so
#     backfill.progress shows every job of the configuration;
#   - a job whose row is done keeps it done when its definition changes (reset to rerun).
. "$BF_ROOT/tests/lib/test.sh"

test_role app
psql_q "REVOKE CREATE ON DATABASE $BF_TEST_DB FROM PUBLIC"
psql_q "CREATE TABLE items (id int PRIMARY KEY, y int)"
psql_q "INSERT INTO items (id) SELECT g FROM generate_series(1, 1000) g"
psql_q "GRANT SELECT, UPDATE ON items TO $ROLE"
bf_conf "$BF_TMPDIR/app.yaml" <<YAML
database: "$ROLE_CONNINFO"
jobs:
  - name: fill
    table: items
    set: "y = id"
    where: "y IS NULL"
YAML

rc=0
"$BF_BIN" -c "$BF_TMPDIR/app.yaml" --check >"$BF_TMPDIR/out" 2>"$BF_TMPDIR/err" || rc=$?
cat "$BF_TMPDIR/out" "$BF_TMPDIR/err"
assert_eq "--check: exit 1" 1 "$rc"
assert_match "--check names the grant" \
	"jobs.fill: the role lacks CREATE on database $BF_TEST_DB \(to create the control schema backfill\)" \
	"$(cat "$BF_TMPDIR/err")"
assert_match "and pg_monitor, which the lag limits (on by default) need" \
	"; the role lacks pg_monitor, which the lag limits need \(GRANT pg_monitor TO $ROLE\)" \
	"$(cat "$BF_TMPDIR/err")"

start=$EPOCHREALTIME
daemon_run 30 "$BF_TMPDIR/app.yaml" "$BF_TMPDIR/exit.log" --exit-when-done
cat "$BF_TMPDIR/exit.log"
assert_eq "--exit-when-done: exit 3" 3 "$DAEMON_RC"
assert_eq "within seconds" 1 "$(awk "BEGIN { print ($EPOCHREALTIME - $start) < 5 }")"
assert_match "the log says what failed" \
	"job=fill msg=state state=failed from=pending reason=\"the role lacks CREATE on database $BF_TEST_DB" \
	"$(cat "$BF_TMPDIR/exit.log")"

daemon_start "$BF_TMPDIR/app.yaml" "$BF_TMPDIR/term.log"
failed_logged() { grep -q 'state=failed' "$BF_TMPDIR/term.log"; }
wait_for "the failure is logged" 10 failed_logged
kill -TERM "$DAEMON_PID"
daemon_wait 2
cat "$BF_TMPDIR/term.log"
assert_eq "SIGTERM ends it within a second or two, exit 0" 0 "$DAEMON_RC"
assert_le "the log stays short" "$(wc -l <"$BF_TMPDIR/term.log")" 20

# a control schema owned by someone else
psql_q "GRANT CREATE ON DATABASE $BF_TEST_DB TO $ROLE"
psql_q "CREATE ROLE ${ROLE}_other; CREATE SCHEMA backfill AUTHORIZATION ${ROLE}_other"
bf_defer psql_q "DROP SCHEMA IF EXISTS backfill CASCADE; DROP ROLE ${ROLE}_other"
psql_q "GRANT USAGE, CREATE ON SCHEMA backfill TO $ROLE"
rc=0
"$BF_BIN" -c "$BF_TMPDIR/app.yaml" --check >"$BF_TMPDIR/out" 2>"$BF_TMPDIR/err" || rc=$?
cat "$BF_TMPDIR/err"
assert_eq "--check refuses a control schema owned by another role" 1 "$rc"
assert_match "and says whose" "jobs.fill: the control schema backfill is owned by ${ROLE}_other" \
	"$(cat "$BF_TMPDIR/err")"
daemon_run 30 "$BF_TMPDIR/app.yaml" "$BF_TMPDIR/owner.log" --exit-when-done
cat "$BF_TMPDIR/owner.log"
assert_eq "the daemon refuses it too: exit 3" 3 "$DAEMON_RC"
assert_eq "and made nothing in it" 0 "$(psql_q "SELECT count(*) FROM pg_class WHERE relnamespace = 'backfill'::regnamespace")"
assert_eq "no row changed" 0 "$(psql_q "SELECT count(*) FROM items WHERE y IS NOT NULL")"
psql_q "DROP SCHEMA backfill"

# a control schema made for the role in advance: no CREATE on the database needed
psql_q "REVOKE CREATE ON DATABASE $BF_TEST_DB FROM $ROLE; GRANT pg_monitor TO $ROLE"
psql_q "CREATE SCHEMA backfill AUTHORIZATION $ROLE"
rc=0
"$BF_BIN" -c "$BF_TMPDIR/app.yaml" --check >"$BF_TMPDIR/out" 2>"$BF_TMPDIR/err" || rc=$?
cat "$BF_TMPDIR/err"
assert_eq "--check accepts a schema the role owns, without CREATE on the database" 0 "$rc"
daemon_run 60 "$BF_TMPDIR/app.yaml" "$BF_TMPDIR/premade.log" --exit-when-done
cat "$BF_TMPDIR/premade.log"
assert_eq "the job runs in it: exit 0" 0 "$DAEMON_RC"
assert_eq "every row" 0 "$(psql_q "SELECT count(*) FROM items WHERE y IS NULL")"
assert_eq "done, in the schema made for it" done "$(job_state fill)"
psql_q "DROP SCHEMA backfill CASCADE; UPDATE items SET y = NULL"
psql_q "GRANT CREATE ON DATABASE $BF_TEST_DB TO $ROLE; REVOKE pg_monitor FROM $ROLE"

# a missing table: the failed row is written next to the good job's
bf_conf "$BF_TMPDIR/missing.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: fill
    table: items
    set: "y = id"
    where: "y IS NULL"
  - name: ghost
    table: no_such_table
    set: "y = 1"
    where: "y IS NULL"
YAML
daemon_run 30 "$BF_TMPDIR/missing.yaml" "$BF_TMPDIR/missing.log" --exit-when-done
cat "$BF_TMPDIR/missing.log"
assert_eq "a job failed: exit 3" 3 "$DAEMON_RC"
assert_eq "backfill.progress shows both jobs" "fill|done|
ghost|failed|table no_such_table does not exist" \
	"$(psql_q "SELECT name, state, last_error FROM backfill.progress ORDER BY name")"

# a conninfo libpq cannot parse fails its job inside its start, before the loop runs:
# --exit-when-done still exits, 3; so does a role that does not exist (no retry mends it)
bf_conf "$BF_TMPDIR/unparsable.yaml" <<YAML
database: "host='unterminated"
jobs:
  - name: bad_conninfo
    table: items
    set: "y = id"
    where: "y IS NULL"
  - name: no_role
    database: "$(pg_conninfo "$BF_PG_PRIMARY" "$BF_TEST_DB") user=${ROLE}_nobody"
    table: items
    set: "y = id"
    where: "y IS NULL"
  - name: bad_uri
    database: "postgresql://postgres:s3cr%zzt@127.0.0.1/x"
    table: items
    set: "y = id"
    where: "y IS NULL"
YAML
daemon_run 10 "$BF_TMPDIR/unparsable.yaml" "$BF_TMPDIR/unparsable.log" --exit-when-done
cat "$BF_TMPDIR/unparsable.log"
assert_eq "a conninfo that does not parse: exit 3 (124: it hung)" 3 "$DAEMON_RC"
assert_match "and the log says why" 'job=bad_conninfo .*state=failed .*bad database conninfo: unterminated quoted string' \
	"$(cat "$BF_TMPDIR/unparsable.log")"
assert_match "libpq's echo of the URI is masked" 'job=bad_uri .*state=failed .*invalid percent-encoded token: \\"\*\*\*\\"' \
	"$(cat "$BF_TMPDIR/unparsable.log")"
assert_false "the password is in no log line" grep -q 's3cr' "$BF_TMPDIR/unparsable.log"
assert_match "a role that does not exist fails its job at once, not retried" \
	"job=no_role .*state=failed .*cannot connect, and retrying will not mend it: .*role .*${ROLE}_nobody.* does not exist" \
	"$(cat "$BF_TMPDIR/unparsable.log")"

# a done job whose definition changed stays done
sed -i 's/set: "y = id"/set: "y = id + 1"/' "$BF_TMPDIR/missing.yaml"
daemon_run 30 "$BF_TMPDIR/missing.yaml" "$BF_TMPDIR/changed.log" --exit-when-done
cat "$BF_TMPDIR/changed.log"
assert_eq "the done job is still done" "done" "$(job_state fill)"
assert_match "the log says to reset it" \
	'job=fill msg="already finished; its definition changed since: reset it to run it again' \
	"$(cat "$BF_TMPDIR/changed.log")"
test_finish
