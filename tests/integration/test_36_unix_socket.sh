#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_36_unix_socket: the daemon on the database host, connected over the Unix socket. Started
# while the server is stopped (the socket file is missing: libpq fails at once, before any
# asynchronous connect), it stays up and retries, the job neither failed nor written; once the
# server starts, the job runs. The server then stops for 3 seconds mid-job (a minor upgrade's
# restart) and starts again: the job ends done, rows_done exact, every row updated once. A host
# name that does not resolve is retried the same way, never a failed job. A failure decided
# while the server is down (a reload changing the job's `set`) is written once it is back. A
# first host of a list that accepts connections and never answers costs its connect_timeout,
# then the next host serves.
. "$BF_ROOT/tests/lib/test.sh"

pg_start sk # a server of this test's own: it is stopped and started
pg_use sk postgres
N=100000
items_table "$N"
pg_stop sk
sock_dir=$(_bf_var DIR sk)
items_conf "$BF_TMPDIR/bf.yaml" "host=$sock_dir port=$(_bf_var PORT sk) user=postgres dbname=postgres" <<YAML
batch_size: 1000
target_batch_time: 0
sleep: 0
max_rows_per_second: 20000
lag:
  max_replay_bytes: 0
YAML
# systemd's notification socket, as a datagram listener that writes what it hears
python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])
out = open(sys.argv[2], "a")
while True:
    out.write(s.recv(4096).decode() + "\n"); out.flush()' "$BF_TMPDIR/notify.sock" "$BF_TMPDIR/notify.log" &
bf_defer kill $!
notify_ready() { [[ -S $BF_TMPDIR/notify.sock ]]; }
wait_for "the notification socket" 10 notify_ready
NOTIFY_SOCKET=$BF_TMPDIR/notify.sock daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
retried() { (($(grep -c 'job=items_fill msg="database unreachable, will retry".*No such file or directory' \
	"$BF_TMPDIR/daemon.log") >= 3)); }
wait_for "three retries while the server is down" 30 retried
assert_true "the daemon is still up" test -e "/proc/$DAEMON_PID"
assert_false "the job did not fail" grep -q 'state=failed' "$BF_TMPDIR/daemon.log"
status_says() { grep -q '^STATUS=.*; 1 waiting for their database (items_fill: connection to server on socket .* failed: No such file or directory' "$BF_TMPDIR/notify.log"; }
wait_for "STATUS= says which job waits for its database, and why (it has no row to show it)" 15 status_says
# a reload says RELOADING=1, then READY=1 and the summary again at once (not "reloading" until
# the next progress_interval, 10 s)
kill -HUP "$DAEMON_PID"
summary_after_reload() {
	awk '/^RELOADING=1/ { r = 1; next } r && /^STATUS=[0-9]+ running/ { ok = 1 } END { exit !ok }' \
		"$BF_TMPDIR/notify.log"
}
wait_for "STATUS= is the summary again right after a reload" 3 summary_after_reload
pg_start_again sk
wait_for "the job under way once the server is up" 60 rows_done_at_least items_fill $((N / 4))
pg_stop sk fast
stopped_at=$EPOCHREALTIME
while (($(awk "BEGIN { print ($EPOCHREALTIME - $stopped_at) < 3 }"))); do
	sleep 0.2 # the outage itself: three seconds with no server
done
pg_start_again sk
daemon_wait 90
cat "$BF_TMPDIR/daemon.log"
assert_eq "exit status" 0 "$DAEMON_RC"
assert_eq "done" "done" "$(job_state items_fill)"
assert_eq "rows_done is exact" "$N" "$(psql_q "SELECT rows_done FROM backfill.progress")"
assert_match "the outage left its trace in last_error" '^reconnected after [0-9.]+m?s: ' \
	"$(job last_error items_fill)"
assert_eq "every row updated exactly once, right" "1 1 $N" \
	"$(psql_q "SELECT min(n_set), max(n_set), count(*) FILTER (WHERE new_col = upper(old_col)) FROM items" -F ' ')"

# the server goes down mid-job; meanwhile a reload changes `set`, which fails the job: the
# failure is written once the server is back (it was lost: the row stayed running)
psql_q "UPDATE items SET new_col = NULL, n_set = 0"
psql_q "DELETE FROM backfill.jobs"
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/down.log" --exit-when-done
wait_for "the job under way again" 60 rows_done_at_least items_fill 1000
pg_stop sk fast
reconnecting() { grep -q 'job=items_fill msg="database unreachable, will retry"' "$BF_TMPDIR/down.log"; }
wait_for "the daemon is reconnecting" 30 reconnecting
sed -i 's/set: "new_col = upper(old_col), n_set = n_set + 1"/set: "new_col = lower(old_col), n_set = n_set + 1"/' \
	"$BF_TMPDIR/bf.yaml"
kill -HUP "$DAEMON_PID"
failed_in_memory() { grep -q 'job=items_fill msg=state state=failed' "$BF_TMPDIR/down.log"; }
wait_for "the reload failed the job" 10 failed_in_memory
pg_start_again sk
daemon_wait 60
cat "$BF_TMPDIR/down.log"
assert_eq "--exit-when-done: a job failed, exit 3" 3 "$DAEMON_RC"
assert_eq "the failure was written once the server was back" "failed" "$(job_state items_fill)"
assert_match "with its reason" "definition changed" "$(job last_error items_fill)"
assert_eq "no owner left" "" "$(job owner items_fill)"

# a hung first host: accepts TCP connections (the kernel's backlog) and never answers
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True); time.sleep(300)' >"$BF_TMPDIR/hung.port" &
bf_defer kill $!
hung_listening() { [[ -s $BF_TMPDIR/hung.port ]]; }
wait_for "the hung host listens" 10 hung_listening
psql_q "UPDATE items SET new_col = NULL, n_set = 0"
psql_q "DELETE FROM backfill.jobs"
items_conf "$BF_TMPDIR/hung.yaml" \
	"host=127.0.0.1,127.0.0.1 port=$(cat "$BF_TMPDIR/hung.port"),$(_bf_var PORT sk) user=postgres dbname=postgres connect_timeout=2" <<YAML
sleep: 0
lag:
  max_replay_bytes: 0
YAML
t0=$EPOCHREALTIME
daemon_run 60 "$BF_TMPDIR/hung.yaml" "$BF_TMPDIR/hung.log" --exit-when-done
echo "with a hung first host: $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $t0 }")s"
cat "$BF_TMPDIR/hung.log"
assert_eq "a hung first host: the next host serves, exit 0" 0 "$DAEMON_RC"
assert_true "after the hung one's connect_timeout" \
	grep -q 'msg="a host did not answer in time: trying the next of the list".*timeout=2s' "$BF_TMPDIR/hung.log"
assert_eq "done, exact" "done $N" "$(psql_q "SELECT state, rows_done FROM backfill.jobs" -F ' ')"

bf_conf "$BF_TMPDIR/dns.yaml" <<YAML
database: "host=no-such-host.invalid user=postgres dbname=postgres"
jobs:
  - name: nowhere
    table: items
    set: "new_col = old_col"
    where: "new_col IS NULL"
YAML
daemon_start "$BF_TMPDIR/dns.yaml" "$BF_TMPDIR/dns.log"
dns_retried() { (($(grep -c 'job=nowhere msg="database unreachable, will retry".*could not translate host name' \
	"$BF_TMPDIR/dns.log") >= 2)); }
wait_for "a name that does not resolve is retried" 30 dns_retried
assert_false "and the job did not fail" grep -q 'state=failed' "$BF_TMPDIR/dns.log"
kill -TERM "$DAEMON_PID"
daemon_wait 10
assert_eq "SIGTERM while retrying: exit 0" 0 "$DAEMON_RC"
test_finish
