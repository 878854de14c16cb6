#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_30_lag_archive: a cluster of its own with archive_mode on. While a job runs with
# max_archive_backlog 4, archive_command starts failing and six segments are completed: the
# job is throttled ("archive backlog N segments > 4", read from pg_stat_archiver) and stays
# still; once archive_command works again the archiver catches up and the job resumes by
# itself and ends done.
. "$BF_ROOT/tests/lib/test.sh"

pg_start arch "archive_mode = on" "archive_command = 'true'"
pg_use arch postgres # job, job_state, psql_q: the archiving cluster from here on
conninfo=$(pg_conninfo arch postgres)

archive_command() {
	psql_q "ALTER SYSTEM SET archive_command = '$1'" >/dev/null
	psql_q "SELECT pg_reload_conf()" >/dev/null # the reload also wakes the archiver
}
# every completed segment archived: nothing .ready in pg_wal/archive_status
archive_caught_up() {
	[[ $(psql_q "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'") == 0 ]]
}

lag_items 60000
wait_for "the archiver keeps up at first" 10 archive_caught_up
lag_conf "$BF_TMPDIR/bf.yaml" "$conninfo" <<YAML
max_archive_backlog: 4
resume_below: 50%
check_interval: 250ms
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
wait_for "the job is under way" 30 rows_done_at_least fill 2000
assert_eq "running while the archiver keeps up" running "$(job_state fill)"

archive_command false
for _ in 1 2 3 4 5 6; do
	psql_q "SELECT pg_logical_emit_message(true, 'x', 'segment'), pg_switch_wal()" >/dev/null
done
wait_for "throttled by the archive backlog" 5 job_is fill throttled
reason=$(job state_reason fill)
assert_match "the reason counts the segments" '^archive backlog [0-9]+ segments > 4$' "$reason"
n=${reason#archive backlog }
n=${n%% *}
assert_le "no more segments than are waiting (.ready files)" "$n" \
	"$(psql_q "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name ~ '^[0-9A-F]{24}[.]ready$'")"
assert_match "the archiver did fail" '^[1-9][0-9]*$' \
	"$(psql_q "SELECT failed_count FROM pg_stat_archiver")"
r=$(job rows_done fill)
sleep 2 # the assertion is about these 2 seconds: no batch may commit while throttled
assert_eq "no batch commits while the archive lags" "$r" "$(job rows_done fill)"

archive_command true
wait_for "the archiver catches up" 15 archive_caught_up
wait_for "running again once archived" 5 job_is fill running
daemon_wait 120
assert_eq "exit status" 0 "$DAEMON_RC"
assert_eq "done" "done" "$(job_state fill)"
assert_eq "rows_done" 60000 "$(job rows_done fill)"
assert_eq "every row exactly once" "1 1" "$(psql_q "SELECT min(n), max(n) FROM items" -F ' ')"
test_finish
