#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_47_backup_undo: a job that rewrites existing values ("Email" = lower("Email")) with
# backup: true, the daemon killed (-9) twice during it:
#   - the backup holds exactly the rows the job changed, each with its old value, and
#     rows_done is exact;
#   - backfillctl undo, run by the next daemon: the table is byte-identical to before the job
#     (md5 of the ordered rows), undone, every row put back, none skipped;
#   - up -> down -> up: reset (which drops the backup) and the job again gives the same table
#     as the first run, and the same rows_done;
#   - an undo asked of a running daemon (the job is over in it: it starts it again), during
#     which the application changes 100 rows and the daemon is killed (-9): those rows keep
#     the application's values and are counted (100 skipped, their first keys listed) and
#     every other row is as before the job, nothing counted twice across the crash;
#   - a cancelled undo stays cancelled across a restart, and an undo asked again resumes it.
. "$BF_ROOT/tests/lib/test.sh"

N=60000
psql_q "CREATE TABLE users (id bigint PRIMARY KEY, \"Email\" text, name text NOT NULL)"
# two rows in three have upper-case letters; a few have no e-mail at all
psql_q "INSERT INTO users SELECT g,
          CASE WHEN g % 97 = 0 THEN NULL WHEN g % 3 = 0 THEN 'user' || g || '@example.com'
               ELSE 'User' || g || '@Example.COM' END, 'n' || g
        FROM generate_series(1, $N) g"
psql_q "CREATE TABLE orig AS TABLE users"
sum_sql() { echo "SELECT md5(string_agg(u::text, '|' ORDER BY id)) FROM $1 u"; }
BEFORE=$(psql_q "$(sum_sql users)")
CHANGED=$(psql_q "SELECT count(*) FROM users WHERE \"Email\" <> lower(\"Email\")")
assert_ge "the table has rows to rewrite" "$CHANGED" 30000

PORT=$(_bf_free_port)
conf() {
	bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
metrics_listen: "127.0.0.1:$PORT"
jobs:
  - name: lower_email
    table: users
    set: '"Email" = lower("Email")'
    where: '"Email" <> lower("Email")'
    backup: true
    batch_size: $1
    max_batch_size: $1
    sleep: $2
YAML
}
conf 500 10ms
"$BF_BIN" --check -c "$BF_TMPDIR/bf.yaml" >"$BF_TMPDIR/check.out" 2>&1 || true
assert_true "--check lists the backup's columns" grep -q 'backup: "Email"' "$BF_TMPDIR/check.out"

no_session() { [[ $(psql_q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'backfilld'") == 0 ]]; }
for third in 1 2; do
	daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/up$third.log" --exit-when-done
	wait_for "the job is $third third(s) through" 60 rows_done_at_least lower_email $((CHANGED * third / 3))
	kill -9 "$DAEMON_PID"
	daemon_wait 10
	assert_eq "daemon $third died of SIGKILL" 137 "$DAEMON_RC"
	wait_for "the killed daemon's sessions are gone" 30 no_session
	so_far=$(psql_q "SELECT count(*) FROM users u JOIN orig o USING (id) WHERE u.\"Email\" <> o.\"Email\"")
	assert_eq "after kill $third: rows_done is the rows changed so far" "$so_far" "$(job rows_done lower_email)"
	assert_eq "after kill $third: the backup holds exactly those rows, with their old values" "$so_far" \
		"$(psql_q "SELECT count(*) FROM backfill.lower_email_backup b JOIN orig o USING (id) JOIN users u USING (id)
		           WHERE b.\"Email\" = o.\"Email\" AND u.\"Email\" <> o.\"Email\"")"
	assert_eq "after kill $third: and no other" "$so_far" "$(psql_q "SELECT count(*) FROM backfill.lower_email_backup")"
done
daemon_run 120 "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/up3.log" --exit-when-done
assert_eq "the job ends done" "done" "$(job_state lower_email)"
assert_eq "rows_done is exact" "$CHANGED" "$(job rows_done lower_email)"
assert_eq "the backup holds exactly the rows the job changed" "$CHANGED" \
	"$(psql_q "SELECT count(*) FROM backfill.lower_email_backup")"
assert_eq "each with its old value" 0 \
	"$(psql_q "SELECT count(*) FROM backfill.lower_email_backup b JOIN orig o USING (id) WHERE b.\"Email\" IS DISTINCT FROM o.\"Email\" OR o.\"Email\" = lower(o.\"Email\")")"
assert_eq "the data is what set gives" 0 \
	"$(psql_q "SELECT count(*) FROM users u JOIN orig o USING (id) WHERE u.\"Email\" IS DISTINCT FROM lower(o.\"Email\")")"
UP1=$(psql_q "$(sum_sql users)")
assert_true "the progress view shows the backup's size" test "$(psql_q "SELECT backup_bytes > 0 FROM backfill.progress WHERE name = 'lower_email'")" = t
assert_match "backfillctl status shows it" 'BATCH +BACKUP +REASON.*lower_email +done .* [0-9.]+MB' \
	"$("$BF_CTL" -d "$BF_DB_CONNINFO" status | tr '\n' ' ')"

# down
"$BF_CTL" -d "$BF_DB_CONNINFO" undo lower_email >"$BF_TMPDIR/undo1.out"
assert_true "undo says it is requested" grep -q 'undo requested (state done; backup' "$BF_TMPDIR/undo1.out"
assert_eq "the row asks for it" undo "$(job requested_state lower_email)"
daemon_run 120 "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/down1.log" --exit-when-done
assert_eq "the daemon exits 0 after the undo" 0 "$DAEMON_RC"
assert_eq "undone" undone "$(job_state lower_email)"
assert_eq "every row put back, none skipped" "$CHANGED 0" "$(job "undo_rows || ' ' || undo_skipped" lower_email)"
assert_eq "the table is byte-identical to before the job" "$BEFORE" "$(psql_q "$(sum_sql users)")"
assert_eq "the backup is kept" "$CHANGED" "$(psql_q "SELECT count(*) FROM backfill.lower_email_backup")"
assert_false "undo of an undone job is refused" "$BF_CTL" -d "$BF_DB_CONNINFO" undo lower_email

# up again
"$BF_CTL" -d "$BF_DB_CONNINFO" reset lower_email >"$BF_TMPDIR/reset.out"
assert_true "reset drops the backup" grep -q 'its backup dropped' "$BF_TMPDIR/reset.out"
assert_eq "the backup is gone" "" "$(psql_q "SELECT to_regclass('backfill.lower_email_backup')")"
daemon_run 120 "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/up4.log" --exit-when-done
assert_eq "up again: done" "done" "$(job_state lower_email)"
assert_eq "up again: rows_done is exact" "$CHANGED" "$(job rows_done lower_email)"
assert_eq "up again: the same table as the first run" "$UP1" "$(psql_q "$(sum_sql users)")"

# down again, asked of a running daemon, slowly, the application writing meanwhile
conf 200 50ms
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/down2.log"
wait_for "the daemon has found the job done" 30 grep -q 'already finished' "$BF_TMPDIR/down2.log"
"$BF_CTL" -d "$BF_DB_CONNINFO" undo lower_email >/dev/null
undone_at_least() { (($(job undo_rows lower_email) >= $1)); }
wait_for "the running daemon undoes" 30 undone_at_least 2000
assert_eq "the state says undoing" undoing "$(job_state lower_email)"
page=$(metrics_get "$PORT" /metrics)
assert_ge "/metrics: the undo's rows put back" "$(metric "$page" 'backfilld_undo_rows{job="lower_email"}')" 2000
assert_ge "/metrics: the backup's size" "$(metric "$page" 'backfilld_backup_bytes{job="lower_email"}')" 1000000
# 100 rows the job changed, far ahead of the undo's cursor
psql_q "UPDATE users SET \"Email\" = 'app-' || id WHERE id IN (
          SELECT id FROM backfill.lower_email_backup ORDER BY id DESC LIMIT 100)"
kill -9 "$DAEMON_PID"
daemon_wait 10
wait_for "the killed daemon's sessions are gone" 30 no_session
# a cancelled undo stays cancelled across a restart, and resumes when asked again
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/down3.log"
wait_for "undoing again after the crash" 30 job_is lower_email undoing
"$BF_CTL" -d "$BF_DB_CONNINFO" cancel lower_email >/dev/null
wait_for "the undo is cancelled" 10 job_is lower_email cancelled
kill -TERM "$DAEMON_PID"
daemon_wait 30
at_cancel=$(job undo_rows lower_email)
daemon_run 60 "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/down4.log" --exit-when-done
assert_eq "a restart leaves a cancelled undo cancelled" "cancelled $at_cancel" "$(job "state || ' ' || undo_rows" lower_email)"
"$BF_CTL" -d "$BF_DB_CONNINFO" undo lower_email >/dev/null
daemon_run 120 "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/down5.log" --exit-when-done
assert_eq "exit 0" 0 "$DAEMON_RC"
assert_true "the undo resumed from its checkpoint" grep -q 'msg="undo resumes from its checkpoint"' "$BF_TMPDIR/down5.log"
assert_eq "undone" undone "$(job_state lower_email)"
assert_eq "100 rows skipped, the others put back, nothing counted twice" "$((CHANGED - 100)) 100" \
	"$(job "undo_rows || ' ' || undo_skipped" lower_email)"
assert_match "the result lists the first keys skipped" "100 skipped .*first keys: [0-9]+; [0-9]+" \
	"$(job state_reason lower_email)"
assert_eq "the keys listed are rows the application changed" 0 \
	"$(psql_q "SELECT count(*) FROM users u JOIN backfill.jobs j ON u.id = ANY (j.undo_keys::bigint[])
	           WHERE j.name = 'lower_email' AND u.\"Email\" NOT LIKE 'app-%'")"
assert_eq "the application's rows keep its values" 100 "$(psql_q "SELECT count(*) FROM users WHERE \"Email\" LIKE 'app-%'")"
assert_eq "every other row is as before the job" 0 \
	"$(psql_q "SELECT count(*) FROM users u JOIN orig o USING (id) WHERE u.\"Email\" IS DISTINCT FROM o.\"Email\" AND u.\"Email\" NOT LIKE 'app-%'")"
test_finish
