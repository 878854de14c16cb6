#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_43_then_steps: a job's then: steps on a table the application reads and writes.
#   - not_null, check and a unique index CONCURRENTLY run once the data is done (state
#     finishing), while a session holds the table (ACCESS SHARE) until the test has seen the
#     steps retry (seconds; under valgrind, longer): the first ALTER
#     times out on its lock and is retried, never queueing the application behind it (no
#     application query waits on a lock longer than lock_timeout + 100 ms); then attnotnull is
#     set (its temporary check gone), the check is validated;
#   - a duplicate makes the unique index build fail: the job fails naming the index, which is
#     left INVALID; once the duplicate is gone, the next start drops the INVALID index and
#     builds it again: valid, the job done, each step's row done;
#   - --check shows the steps; the forms that lock the table are refused when the file is
#     read, with the safe form.
. "$BF_ROOT/tests/lib/test.sh"

N=20000
psql_q "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, email_lower text)"
psql_q "INSERT INTO users (id, email) SELECT g, 'User' || g || '@Example.org' FROM generate_series(1, $N) g"
# a second address for user 1, in other letters: the unique index cannot be built
psql_q "INSERT INTO users (id, email) VALUES ($((N + 1)), 'USER1@example.ORG')"
psql_q "VACUUM ANALYZE users"

bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: users_email
    table: users
    set: "email_lower = lower(email)"
    where: "email_lower IS NULL"
    batch_size: 2000
    lock_timeout: 300ms
    then:
      - not_null: email_lower
      - check: "email_lower = lower(email)"
      - index: "CREATE UNIQUE INDEX CONCURRENTLY users_email_lower ON users (email_lower)"
YAML

# The application: reads and writes rows of the table all along.
cat >"$BF_TMPDIR/app.sql" <<SQL
\set id random(1, $N)
SELECT email FROM users WHERE id = :id;
UPDATE users SET email = email WHERE id = :id;
SQL
pgbench -n -c 2 -j 2 -T 120 -f "$BF_TMPDIR/app.sql" >"$BF_TMPDIR/pgbench.log" 2>&1 &
APP=$!
bf_defer kill "$APP"

# The longest lock wait of an application query, sampled every 50 ms while the job runs.
echo 0 >"$BF_TMPDIR/maxwait"
(
	max=0
	while true; do
		w=$(psql_q "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - query_start) * 1000), 0)::int
		            FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'pgbench'") || w=0
		((w > max)) && max=$w && echo "$max" >"$BF_TMPDIR/maxwait"
		sleep 0.05 # the sampling period of the poll, not a synchronisation
	done
) &
bf_defer kill $!

# A session that reads the table and keeps its transaction open (ended by the test below).
psql_q "BEGIN; SELECT count(*) FROM users WHERE id = 1; SELECT pg_sleep(120); COMMIT" >/dev/null 2>&1 &
HOLDER=$!
bf_defer kill "$HOLDER"
held() { [[ $(psql_q "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.relation = 'users'::regclass AND l.mode = 'AccessShareLock' AND a.query LIKE '%pg_sleep(120)%'") == 1 ]]; }
wait_for "the table is held" 10 held

daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
wait_for "the job is finishing" 60 job_is users_email finishing
retrying() { (($(grep -c 'msg="then step could not take its lock, will retry" step=1/' "$BF_TMPDIR/daemon.log") >= 2)); }
wait_for "the first ALTER times out on the held table and will retry, twice" 30 retrying
waiting() { [[ $(job state_reason users_email) =~ ^step\ 1/7\ waiting\ for\ a\ lock\ \(attempt\ [0-9]+\):\ ALTER\ TABLE\ \"public\"\.\"users\"\ ADD\ CONSTRAINT\ users_email_1_not_null ]]; }
wait_for "the state says which step and what it waits for" 5 waiting
assert_eq "the data is all done meanwhile" 0 "$(psql_q "SELECT count(*) FROM users WHERE email_lower IS NULL")"
psql_q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()" >/dev/null
daemon_wait 120
cat "$BF_TMPDIR/daemon.log"
assert_eq "the duplicate fails the job: exit 3" 3 "$DAEMON_RC"
assert_eq "failed" failed "$(job_state users_email)"
assert_match "the error names the index" 'then step 7/7 failed \(the data is backfilled\): .*"users_email_lower"' \
	"$(job last_error users_email)"
assert_eq "the failed build left the index INVALID" f \
	"$(psql_q "SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_email_lower'::regclass")"
assert_eq "NOT NULL is set" t "$(psql_q "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'email_lower'")"
assert_eq "its temporary check is gone, the check constraint is validated" "users_email_2_check t" \
	"$(psql_q "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'users'::regclass AND contype = 'c'" -F ' ')"
assert_eq "each step's row: 6 done, the index failed once" "done:6 failed:1" \
	"$(psql_q "SELECT string_agg(state || ':' || n, ' ' ORDER BY state) FROM (SELECT state, count(*) n FROM backfill.steps GROUP BY state) s")"
assert_true "the first step took more than one attempt" \
	test "$(psql_q "SELECT attempts FROM backfill.steps WHERE job = 'users_email' AND position = 1")" -gt 1
maxwait=$(cat "$BF_TMPDIR/maxwait")
assert_le "no application query waited on a lock longer than lock_timeout + 100 ms (${maxwait} ms)" \
	"$maxwait" 400
assert_match "the progress view counts the steps" '^failed 6/7 done$' \
	"$(psql_q "SELECT state || ' ' || steps FROM backfill.progress")"

# the duplicate goes; the next start builds the index again, after dropping the INVALID one
psql_q "DELETE FROM users WHERE id = $((N + 1))"
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/again.log" --exit-when-done
daemon_wait 120
cat "$BF_TMPDIR/again.log"
assert_eq "exit 0" 0 "$DAEMON_RC"
assert_eq "done" "done" "$(job_state users_email)"
assert_true "the INVALID index was dropped first" \
	grep -q 'msg="an INVALID index is left from a failed build: dropping it" index=users_email_lower' \
	"$BF_TMPDIR/again.log"
assert_false "no batch ran again: only the failed step" grep -q 'msg=progress' "$BF_TMPDIR/again.log"
assert_eq "the index is valid and unique" "t t" \
	"$(psql_q "SELECT indisvalid, indisunique FROM pg_index WHERE indexrelid = 'users_email_lower'::regclass" -F ' ')"
assert_eq "every step's row is done" "done:7" \
	"$(psql_q "SELECT string_agg(state || ':' || n, ' ') FROM (SELECT state, count(*) n FROM backfill.steps GROUP BY state) s")"
assert_eq "the progress view" "done 7/7 done" "$(psql_q "SELECT state || ' ' || steps FROM backfill.progress")"

rc=0
"$BF_BIN" -c "$BF_TMPDIR/bf.yaml" --check >"$BF_TMPDIR/check.out" 2>&1 || rc=$?
assert_eq "--check: exit 0" 0 "$rc"
assert_match "--check shows the steps and what they expand to" \
	'then: 3 steps \(7 statements\), each under lock_timeout 300ms:.*    not_null: email_lower' \
	"$(tr '\n' ' ' <"$BF_TMPDIR/check.out")"

# the forms that would lock the table: refused when the file is read, with the safe form
refused() {
	local step=$1 want=$2 rc=0
	bf_conf "$BF_TMPDIR/bad.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: bad
    table: users
    set: "email_lower = lower(email)"
    where: "email_lower IS NULL"
    then:
      - "$step"
YAML
	"$BF_BIN" -c "$BF_TMPDIR/bad.yaml" --check >"$BF_TMPDIR/bad.out" 2>&1 || rc=$?
	assert_eq "refused: $step" 1 "$rc"
	assert_match "with the safe form: $want" "bad.yaml:8:[0-9]+: jobs\[0\]\.then\[0\]: .*$want" \
		"$(cat "$BF_TMPDIR/bad.out")"
}
refused "CREATE INDEX users_e ON users (email)" "CONCURRENTLY"
refused "ALTER TABLE users ALTER COLUMN email SET NOT NULL" "not_null"
refused "ALTER TABLE users ADD CONSTRAINT c CHECK (id > 0)" "NOT VALID"
refused "ALTER TABLE users ALTER COLUMN id TYPE bigint" "new column"
refused "ALTER TABLE users ADD COLUMN t uuid DEFAULT gen_random_uuid()" "without a default"
test_finish
