#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_25_metrics: metrics_listen (":PORT": every address) serves the Prometheus text at
# /metrics, which a strict parser (promtool check metrics) accepts during the job and after it,
# with the job's figures as the
# control table has them (rows_done_total = rows_done; the histogram's count = batches_total);
# /healthz answers 200, anything else 404; 200 idle connections neither lock a scrape out nor
# take the daemon's descriptors, and the job goes on meanwhile; a port already taken stops the
# daemon at start with exit 1 and says so.
. "$BF_ROOT/tests/lib/test.sh"

if ! command -v promtool >/dev/null; then
	echo "promtool (Debian package prometheus) is needed to parse the page strictly"
	exit 1
fi

psql_q "CREATE TABLE items (id int PRIMARY KEY, x int NOT NULL, y int)"
psql_q "INSERT INTO items (id, x) SELECT g, g FROM generate_series(1, 60000) g"
PORT=$(_bf_free_port)
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
metrics_listen: ":$PORT"
jobs:
  - name: "m"
    table: items
    set: "y = x * 2"
    where: "y IS NULL"
    batch_size: 500
    target_batch_time: 0
    sleep: 100ms
YAML

# strict PAGE DESC: promtool's parser and linter accept the page's body (it says what not).
promtool_accepts() { printf '%s\n' "$1" | tr -d '\r' | sed '1,/^$/d' | promtool check metrics; }
strict() { assert_true "$2: promtool check metrics accepts the page" promtool_accepts "$1"; }

daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log"
listening() { grep -q 'msg="metrics endpoint listening"' "$BF_TMPDIR/daemon.log"; }
wait_for "the endpoint listens" 10 listening
wait_for "the job is under way" 30 rows_done_at_least m 2000

page=$(metrics_get "$PORT" /metrics)
assert_match "200 answer" '^HTTP/1.0 200 OK' "$page"
assert_match "content type of the text format" 'Content-Type: text/plain; version=0.0.4' "$page"
strict "$page" "during the job"
assert_eq "running, as a 0/1 series" 1 "$(metric "$page" 'backfilld_job_state{job="m",state="running"}')"
assert_match "the build" 'backfilld_build_info\{version="[0-9.]+"\} 1' "$page"
assert_eq "the database is up" 1 "$(metric "$page" "backfilld_up{database=\"127.0.0.1:$BF_PG_PORT_MAIN/$BF_TEST_DB\"}")"

health=$(metrics_get "$PORT" /healthz)
assert_match "healthz: 200" '^HTTP/1.0 200 OK' "$health"
assert_match "healthz: ok" $'\r\n\r\nok$' "$health"
assert_match "elsewhere: 404" '^HTTP/1.0 404 Not Found' "$(metrics_get "$PORT" /)"

# 200 clients that connect and send nothing
fds_before=$(find "/proc/$DAEMON_PID/fd" -mindepth 1 | wc -l)
idle=()
for ((i = 0; i < 200; i++)); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
	idle+=("$fd")
done
page=$(metrics_get "$PORT" /metrics)
assert_match "a scrape behind 200 idle connections is answered" '^HTTP/1.0 200 OK' "$page"
strict "$page" "behind idle connections"
fds=$(find "/proc/$DAEMON_PID/fd" -mindepth 1 | wc -l)
assert_true "the daemon holds at most 16 client connections ($fds descriptors, $fds_before before)" \
	test "$fds" -le $((fds_before + 16))
r=$(job rows_done m)
assert_eq "still running" running "$(job_state m)"
wait_for "the job goes on meanwhile" 30 rows_done_at_least m $((r + 500))
for fd in "${idle[@]}"; do exec {fd}>&-; done

wait_for "the job is done" 120 job_is m "done"
page=$(metrics_get "$PORT" /metrics)
strict "$page" "after the job"
rows=$(job rows_done m)
assert_eq "rows_done_total as the control table says" "$rows" \
	"$(metric "$page" 'backfilld_rows_done_total{job="m"}')"
assert_eq "every row" 60000 "$rows"
batches=$(metric "$page" 'backfilld_batches_total{job="m"}')
assert_true "batches counted ($batches)" test "$batches" -ge 120
assert_eq "the histogram counts every batch" "$batches" \
	"$(metric "$page" 'backfilld_batch_duration_seconds_count{job="m"}')"
assert_eq "its +Inf bucket too" "$batches" \
	"$(metric "$page" 'backfilld_batch_duration_seconds_bucket{job="m",le="+Inf"}')"
assert_eq "done, as a 0/1 series" 1 "$(metric "$page" 'backfilld_job_state{job="m",state="done"}')"
assert_eq "no error" 0 "$(metric "$page" 'backfilld_errors_total{job="m",class="other"}')"
assert_match "TYPE lines" '# TYPE backfilld_rows_done_total counter' "$page"

# the same port again: a second daemon refuses to start
bf_conf "$BF_TMPDIR/bf2.yaml" <"$BF_TMPDIR/bf.yaml"
rc=0
"$BF_BIN" -c "$BF_TMPDIR/bf2.yaml" >"$BF_TMPDIR/daemon2.log" 2>&1 || rc=$?
cat "$BF_TMPDIR/daemon2.log"
assert_eq "a taken port: exit 1" 1 "$rc"
assert_true "the message names the key, the address and the reason" \
	grep -q "metrics_listen \\\\\":$PORT\\\\\": Address already in use" \
	"$BF_TMPDIR/daemon2.log"

kill -TERM "$DAEMON_PID"
daemon_wait 30
assert_eq "daemon exit status after SIGTERM" 0 "$DAEMON_RC"
test_finish
