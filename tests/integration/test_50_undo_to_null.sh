#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_50_undo_to_null: undo for jobs without a backup.
#   - a job that filled NULLs (where: email_lower IS NULL): a plain undo is refused and names
#     --to-null; undo --to-null sets the column back to NULL where it is still what set gives,
#     and leaves (and counts) the 50 values the application wrote since;
#   - a job that rewrote values (where is not `column IS NULL`): undo --to-null is refused by
#     the daemon, which says why in the job's reason and leaves the job done and the table as
#     it was, the request cleared.
. "$BF_ROOT/tests/lib/test.sh"

N=20000
psql_q "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL, email_lower text,
          nick text NOT NULL)"
psql_q "INSERT INTO accounts SELECT g, 'User' || g || '@Example.com', NULL, 'Nick' || g
        FROM generate_series(1, $N) g"
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: fill
    table: accounts
    set: "email_lower = lower(email)"
    where: "email_lower IS NULL"
    batch_size: 1000
    sleep: 0
  - name: norm
    table: accounts
    set: "nick = lower(nick)"
    where: "nick <> lower(nick)"
    sleep: 0
YAML
daemon_run 120 "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/up.log" --exit-when-done
assert_eq "both done" "done done" "$(job_state fill) $(job_state norm)"
psql_q "UPDATE accounts SET email_lower = 'custom' WHERE id % 400 = 0"
NORMED=$(psql_q "SELECT md5(string_agg(nick, ',' ORDER BY id)) FROM accounts")

assert_false "a plain undo without a backup is refused" \
	"$BF_CTL" -d "$BF_DB_CONNINFO" undo fill 2>"$BF_TMPDIR/plain.err"
assert_true "and names --to-null" grep -q 'backfillctl undo --to-null fill' "$BF_TMPDIR/plain.err"
"$BF_CTL" -d "$BF_DB_CONNINFO" undo --to-null fill >"$BF_TMPDIR/fill.out"
assert_true "undo --to-null is requested" grep -q 'undo to NULL requested (state done)' "$BF_TMPDIR/fill.out"
"$BF_CTL" -d "$BF_DB_CONNINFO" undo --to-null norm >/dev/null
daemon_run 120 "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/down.log" --exit-when-done
assert_eq "exit 0" 0 "$DAEMON_RC"

assert_eq "fill: undone" undone "$(job_state fill)"
assert_eq "fill: NULL again where the job's value was, the application's 50 left" "$((N - 50)) 50" \
	"$(job "undo_rows || ' ' || undo_skipped" fill)"
assert_eq "fill: the table's column" "$((N - 50)) 50" \
	"$(psql_q "SELECT count(*) FILTER (WHERE email_lower IS NULL) || ' ' ||
	                  count(*) FILTER (WHERE email_lower = 'custom') FROM accounts")"
assert_match "fill: the reason lists the first keys left" 'undone: 19950 rows put back, 50 skipped .*first keys: 400; 800' \
	"$(job state_reason fill)"

assert_eq "norm: refused, still done" done "$(job_state norm)"
assert_match "norm: the reason says why" '^undo --to-null refused: set must assign one column and where be `that column IS NULL`' \
	"$(job state_reason norm)"
assert_eq "norm: the request is cleared" "" "$(job requested_state norm)"
assert_eq "norm: the table as it was" "$NORMED" "$(psql_q "SELECT md5(string_agg(nick, ',' ORDER BY id)) FROM accounts")"
test_finish
