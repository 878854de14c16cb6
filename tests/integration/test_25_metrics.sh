#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_25_metrics: metrics_listen serves the Prometheus text at /metrics (the job's figures as
# the control table has them), 404 elsewhere; a scraper that sends nothing does not hold up
# the next one; a port already taken stops the daemon at start with exit 1 and says so.
. "$BF_ROOT/tests/lib/test.sh"

psql_q "CREATE TABLE items (id int PRIMARY KEY, x int NOT NULL, y int)"
psql_q "INSERT INTO items (id, x) SELECT g, g FROM generate_series(1, 20000) g"
PORT=$(_bf_free_port)
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
metrics_listen: "127.0.0.1:$PORT"
jobs:
  - name: "m"
    table: items
    set: "y = x * 2"
    where: "y IS NULL"
    sleep: 0
YAML

# scrape PATH: the whole HTTP answer to GET PATH.
scrape() {
	local out
	exec 3<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$1" >&3
	out=$(cat <&3)
	exec 3>&-
	printf '%s\n' "$out"
}

daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log"
listening() { grep -q 'msg="metrics endpoint listening"' "$BF_TMPDIR/daemon.log"; }
wait_for "the endpoint listens" 10 listening
wait_for "the job is done" 30 job_is m "done"

# an idle scraper holds a connection open without a request
exec 4<>"/dev/tcp/127.0.0.1/$PORT"
page=$(scrape /metrics)
exec 4>&-
assert_match "200 answer" '^HTTP/1.0 200 OK' "$page"
assert_match "content type of the text format" 'Content-Type: text/plain; version=0.0.4' "$page"
assert_match "rows_done as the control table says" \
	"backfilld_rows_done\{job=\"m\"\} $(job rows_done m)"$'\r?\n' "$page"
assert_match "the state series" 'backfilld_job_state\{job="m",state="done"\} 1' "$page"
assert_match "the other states are 0" 'backfilld_job_state\{job="m",state="running"\} 0' "$page"
assert_match "TYPE lines" '# TYPE backfilld_rows_done counter' "$page"
assert_match "elsewhere: 404" '^HTTP/1.0 404 Not Found' "$(scrape /)"

# the same port again: a second daemon refuses to start
bf_conf "$BF_TMPDIR/bf2.yaml" <"$BF_TMPDIR/bf.yaml"
rc=0
"$BF_BIN" -c "$BF_TMPDIR/bf2.yaml" >"$BF_TMPDIR/daemon2.log" 2>&1 || rc=$?
cat "$BF_TMPDIR/daemon2.log"
assert_eq "a taken port: exit 1" 1 "$rc"
assert_true "the message names the key, the address and the reason" \
	grep -q "metrics_listen \\\\\"127.0.0.1:$PORT\\\\\": Address already in use" \
	"$BF_TMPDIR/daemon2.log"

kill -TERM "$DAEMON_PID"
daemon_wait 30
assert_eq "daemon exit status after SIGTERM" 0 "$DAEMON_RC"
test_finish
