#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_45_steps_control: a job whose then: step waits for a lock (a session holds the table)
#   - is paused by backfillctl between two attempts: state paused, no attempt while paused,
#     and finishing again on resume;
#   - SIGTERM while it waits: exit 0, the row stays finishing ("daemon stopped");
#   - the next start resumes at that step, without walking the table again, and ends done once
#     the table is free.
. "$BF_ROOT/tests/lib/test.sh"

psql_q "CREATE TABLE items (id int PRIMARY KEY, x int NOT NULL, y int)"
psql_q "INSERT INTO items (id, x) SELECT g, g FROM generate_series(1, 5000) g"
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: fill
    table: items
    set: "y = x"
    where: "y IS NULL"
    lock_timeout: 200ms
    then:
      - not_null: y
YAML

# A session that reads the table and keeps its transaction open until the test ends it.
psql_q "BEGIN; SELECT count(*) FROM items WHERE id = 1; SELECT pg_sleep(300); COMMIT" >/dev/null 2>&1 &
bf_defer kill $!
held() { [[ $(psql_q "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(300)%' AND pid <> pg_backend_pid()") == 1 ]]; }
wait_for "the table is held" 10 held
attempts() { psql_q "SELECT coalesce(max(attempts), 0) FROM backfill.steps WHERE job = 'fill'"; }
attempted() { (($(attempts) >= $1)); }

daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log"
wait_for "the step waits for its lock, attempt after attempt" 60 attempted 2

"$BF_CTL" -d "$BF_DB_CONNINFO" pause fill >/dev/null
wait_for "paused between two attempts" 10 job_is fill paused
a=$(attempts)
sleep 3 # the assertion is about these 3 seconds: no attempt while paused (back-off: 1 s, 2 s, ...)
assert_eq "no attempt while paused" "$a" "$(attempts)"
assert_eq "no transaction of the job left open while paused" 0 \
	"$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'backfilld%' AND state = 'idle in transaction'")"

"$BF_CTL" -d "$BF_DB_CONNINFO" resume fill >/dev/null
wait_for "finishing again on resume" 10 job_is fill finishing
wait_for "and trying again" 30 attempted $((a + 1))

kill -TERM "$DAEMON_PID"
daemon_wait 30
assert_eq "SIGTERM while a step waits: exit 0" 0 "$DAEMON_RC"
assert_eq "the row stays finishing" "finishing daemon stopped" \
	"$(psql_q "SELECT state || ' ' || state_reason FROM backfill.jobs WHERE name = 'fill'")"
assert_eq "the step is not done" pending "$(psql_q "SELECT state FROM backfill.steps WHERE job = 'fill' AND position = 1")"

psql_q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(300)%' AND pid <> pg_backend_pid()" >/dev/null
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/again.log" --exit-when-done
daemon_wait 60
cat "$BF_TMPDIR/again.log"
assert_eq "exit 0" 0 "$DAEMON_RC"
assert_eq "done" "done" "$(job_state fill)"
assert_false "no pass over the table again" grep -q 'msg="pass done' "$BF_TMPDIR/again.log"
assert_true "it went on with the step it stopped at" grep -q 'msg="then step" step=1/4' "$BF_TMPDIR/again.log"
assert_eq "NOT NULL set" t "$(psql_q "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'y'")"
assert_eq "every step done" "done:4" \
	"$(psql_q "SELECT string_agg(state || ':' || n, ' ') FROM (SELECT state, count(*) n FROM backfill.steps GROUP BY state) s")"
test_finish
