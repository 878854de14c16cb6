#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through bf_defer / wait_for
# test_40_backfillctl: the operator tool against a real control schema. Usage errors exit 1; a
# database without the schema says so; `status --json` parses and matches backfill.progress
# column by column (numbers as numbers, nulls as null); the table and both --watch outputs
# show the jobs and stop cleanly on SIGINT; pause/resume/cancel set requested_state (one job
# or --all, never undoing a cancel, never touching a finished job) and NOTIFY backfilld;
# reset is refused while the job's advisory lock is held (by psql, then by a live daemon in
# another control schema) and deletes the row once it is free. The daemon's reaction to
# requests is not tested here.
. "$BF_ROOT/tests/lib/test.sh"

# ctl ARG...: run backfillctl; OUT gets stdout and stderr, RC the exit status.
ctl() {
	RC=0
	OUT=$("$BF_CTL" "$@" 2>&1) || RC=$?
}

requested() {
	psql_q "SELECT coalesce(requested_state, '-') FROM ${2:-backfill}.jobs WHERE name = '$1'"
}

# --- the command line ---
version=$(sed -n 's/^#define BF_VERSION "\(.*\)"$/\1/p' "$BF_ROOT/include/backfilld/version.h")
ctl --version
assert_eq "--version exits 0" 0 "$RC"
assert_eq "--version prints the version" "backfillctl $version" "$OUT"
ctl --help
assert_eq "--help exits 0" 0 "$RC"
assert_match "--help lists the commands" 'status \[--json\] \[--watch\] \[JOB\].*pause JOB\|--all.*reset JOB' \
	"$(tr '\n' ' ' <<<"$OUT")"
for args in "" "frobnicate" "pause" "resume" "cancel" "reset" "cancel --all" "status --all" \
	"pause j --all" "pause j --json" "status a b" "--schema= status" "--bogus status"; do
	read -r -a argv <<<"$args"
	ctl "${argv[@]}"
	assert_eq "'backfillctl $args' is a usage error (exit 1)" 1 "$RC"
done
ctl frobnicate
assert_match "an unknown command is named" 'unknown command "frobnicate"' "$OUT"
ctl pause
assert_match "pause without a job says what it needs" 'pause needs a JOB or --all' "$OUT"

# --- a database without the control schema ---
ctl status
assert_eq "status without the schema exits 1" 1 "$RC"
assert_eq "status without the schema says so" \
	"backfillctl: no backfill jobs in this database (schema backfill does not exist)" "$OUT"
ctl pause some_job
assert_eq "pause without the schema exits 1" 1 "$RC"
assert_match "pause without the schema says so" 'schema backfill does not exist' "$OUT"
ctl --schema other status --json
assert_match "--schema names the schema it looked for" 'schema other does not exist' "$OUT"
ctl -d "host=127.0.0.1 port=1 dbname=x connect_timeout=5" status
assert_eq "an unreachable server exits 1" 1 "$RC"
assert_match "an unreachable server is reported" '^backfillctl: cannot connect: ' "$OUT"

# --- a daemon creates the schema and finishes a small job ---
psql_q "CREATE TABLE small (id int PRIMARY KEY, x int NOT NULL, y int);
        INSERT INTO small (id, x) SELECT g, g FROM generate_series(1, 1000) g"
bf_conf "$BF_TMPDIR/bf.yaml" <<YAML
database: "$BF_DB_CONNINFO"
jobs:
  - name: fill_small
    table: small
    set: "y = x"
    where: "y IS NULL"
    batch_size: 500
    sleep: 0
YAML
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon.log" --exit-when-done
daemon_wait 60
assert_eq "the daemon finished" 0 "$DAEMON_RC"
assert_eq "fill_small is done" "done" "$(job_state fill_small)"

# Jobs in every other state, written as a daemon would (no daemon runs them): a running one
# with a rate (ETA 15s), a paused, a pending, a throttled and a failed one whose reason and
# error hold what JSON must escape.
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
INSERT INTO backfill.jobs (name, table_name, definition_hash, state, state_reason,
  requested_state, rows_done, rows_estimate, batch_size, rows_per_second, errors, last_error,
  started_at) VALUES
 ('j_running', 'public.t1', 'h1', 'running', NULL, NULL, 500, 2000, 1000, 100, 0, NULL, now()),
 ('j_paused', 'public.t2', 'h2', 'paused', 'paused by backfillctl', 'paused', 100, 1000, 500,
  NULL, 0, NULL, now()),
 ('j_pending', 'public.t3', 'h3', 'pending', NULL, NULL, 0, NULL, NULL, NULL, 0, NULL, NULL),
 ('j_throttled', 'public.t4', 'h4', 'throttled', 'replay lag 80MB > 64MB', NULL, 250, 1000,
  800, 12.5, 2, 'canceling statement due to lock timeout', now()),
 ('j_failed', 'public.t5', 'h5', 'failed',
  E'set does not make where false: "quoted" back\\slash\ttab\nnewline ' || chr(233), NULL,
  10, 100, 100, 3.25, 1, E'ERROR:  \x01 control and \u00e9', now());
SQL

# --- status --json matches the view ---
ctl status --json
assert_eq "status --json exits 0" 0 "$RC"
printf '%s\n' "$OUT" >"$BF_TMPDIR/status.json"
PGCLIENTENCODING=UTF8 psql -X -q --csv -P 'null=\N' \
	-c "SELECT * FROM backfill.progress ORDER BY name" >"$BF_TMPDIR/progress.csv"
psql_q "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
        WHERE attrelid = 'backfill.progress'::regclass AND attnum > 0 ORDER BY attnum" \
	>"$BF_TMPDIR/progress.types"
cat >"$BF_TMPDIR/compare.py" <<'PY'
import csv, json, sys
got = json.load(open(sys.argv[1], encoding="utf-8"))
with open(sys.argv[2], newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f))
header, rows = rows[0], rows[1:]
types = dict(line.rstrip("\n").split("|", 1) for line in open(sys.argv[3]))
numeric = ("bigint", "integer", "smallint", "double precision", "real", "numeric")
problems = []
if not isinstance(got, list):
    problems.append("not an array")
elif len(got) != len(rows):
    problems.append(f"{len(got)} objects, {len(rows)} rows")
else:
    for obj, row in zip(got, rows):
        if list(obj.keys()) != header:
            problems.append(f"keys {list(obj.keys())} != columns {header}")
            continue
        for col, text in zip(header, row):
            v = obj[col]
            if text == r"\N":
                ok = v is None
            elif types[col].startswith(numeric):
                ok = isinstance(v, (int, float)) and not isinstance(v, bool) \
                    and float(v) == float(text)
            else:
                ok = v == text
            if not ok:
                problems.append(f"{obj.get('name')}.{col}: json {v!r}, view {text!r}")
print("\n".join(problems) if problems else "match")
PY
assert_eq "status --json parses and matches SELECT * FROM backfill.progress" match \
	"$(python3 "$BF_TMPDIR/compare.py" "$BF_TMPDIR/status.json" "$BF_TMPDIR/progress.csv" \
		"$BF_TMPDIR/progress.types" 2>&1)"
assert_eq "six jobs in the JSON" 6 "$(jq length "$BF_TMPDIR/status.json")"
assert_eq "rows_done is a JSON number" number \
	"$(jq -r '.[] | select(.name == "j_running") | .rows_done | type' "$BF_TMPDIR/status.json")"
assert_eq "a NULL eta is null" null \
	"$(jq -r '.[] | select(.name == "j_pending") | .eta | type' "$BF_TMPDIR/status.json")"
assert_eq "an interval is a string" '"00:00:15"' \
	"$(jq -c '.[] | select(.name == "j_running") | .eta' "$BF_TMPDIR/status.json")"
ctl status --json j_running
assert_eq "status --json JOB: one object" '["j_running"]' "$(jq -c '[.[].name]' <<<"$OUT")"

# --- the status table ---
ctl status
assert_eq "status exits 0" 0 "$RC"
printf '%s\n' "$OUT" >"$BF_TMPDIR/status.txt"
assert_match "the table has a header" '^NAME +STATE +ROWS DONE/ESTIMATE +DONE +ROWS/S +ETA +BATCH +REASON' \
	"$OUT"
assert_true "the running job: rows, percent, rate, ETA, batch" \
	grep -Eq '^j_running +running +500/2000 +25\.0% +100 +15s +1000$' "$BF_TMPDIR/status.txt"
assert_true "the done job" grep -Eq '^fill_small +done +1000/1000 +100\.0% ' "$BF_TMPDIR/status.txt"
assert_true "the throttled job with its reason" \
	grep -Eq '^j_throttled +throttled +250/1000 +25\.0% +12\.5 +1m00s +800 +replay lag 80MB > 64MB$' \
	"$BF_TMPDIR/status.txt"
assert_true "the pending job: unknown values as -" \
	grep -Eq '^j_pending +pending +0/- +0\.0% +- +- +-$' "$BF_TMPDIR/status.txt"
assert_eq "one line per job and the header" 7 "$(wc -l <"$BF_TMPDIR/status.txt")"
ctl status j_paused
assert_eq "status JOB exits 0" 0 "$RC"
assert_eq "status JOB shows that job only" 2 "$(wc -l <<<"$OUT")"
assert_match "status JOB shows its state and reason" 'j_paused +paused .*paused by backfillctl$' "$OUT"
ctl status nosuch
assert_eq "status of a missing job exits 1" 1 "$RC"
assert_eq "status of a missing job says so" "backfillctl: no job named nosuch in schema backfill" "$OUT"

# -d takes a conninfo or a URI, without any PG* variable.
nopg=(env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE)
RC=0
OUT=$("${nopg[@]}" "$BF_CTL" -d "$BF_DB_CONNINFO" status fill_small 2>&1) || RC=$?
assert_eq "-d CONNINFO works" 0 "$RC"
assert_match "-d CONNINFO reaches the test database" '^fill_small +done' "$(tail -n 1 <<<"$OUT")"
RC=0
OUT=$("${nopg[@]}" "$BF_CTL" status --dbname "postgresql://postgres@127.0.0.1:$PGPORT/$BF_TEST_DB" \
	--json fill_small 2>&1) || RC=$?
assert_eq "--dbname URI works (options after the command too)" 0 "$RC"
assert_eq "--dbname URI reaches the test database" fill_small "$(jq -r '.[0].name' <<<"$OUT")"

# --- status --watch ---
# Into a file: logfmt lines, one per job per second; SIGINT ends it with status 0.
"$BF_CTL" status --watch j_running >"$BF_TMPDIR/watch.out" 2>&1 &
WATCH=$!
bf_defer kill "$WATCH"
two_frames() {
	[[ $(grep -c '^time=[^ ]* job=j_running state=running rows=500 estimate=2000 percent=25.0 rate=100 eta=15s batch=1000$' \
		"$BF_TMPDIR/watch.out") -ge 2 ]]
}
wait_for "two frames of status --watch" 10 two_frames
kill -INT "$WATCH"
rc=0
wait "$WATCH" || rc=$?
assert_eq "status --watch stops on SIGINT with status 0" 0 "$rc"
assert_eq "status --watch wrote nothing else" 0 "$(grep -vc '^time=' "$BF_TMPDIR/watch.out" || true)"
# On a terminal: the table with a progress bar, redrawn in place.
script -qec "timeout --preserve-status -s INT 2.5 '$BF_CTL' status --watch; echo \"rc=\$?\"" \
	/dev/null >"$BF_TMPDIR/tty.out" 2>&1 || true
assert_true "on a terminal: a progress bar (25% of 20 cells)" \
	grep -q 'j_running  *running .*\[#####\.\.\.\.\.\.\.\.\.\.\.\.\.\.\.\]  25\.0%' "$BF_TMPDIR/tty.out"
assert_true "on a terminal: redrawn from the top" grep -q $'\033\\[H' "$BF_TMPDIR/tty.out"
assert_true "on a terminal: SIGINT ends it with status 0" grep -q 'rc=0' "$BF_TMPDIR/tty.out"
# --json --watch: one compact JSON array per line and second.
RC=0
timeout --preserve-status -s INT 2.5 "$BF_CTL" status --json --watch j_running \
	>"$BF_TMPDIR/watch.json" 2>&1 || RC=$?
assert_eq "status --json --watch stops on SIGINT with status 0" 0 "$RC"
assert_ge "status --json --watch wrote a line per second" "$(wc -l <"$BF_TMPDIR/watch.json")" 2
assert_eq "each line is a JSON array of the job" "" \
	"$(jq -c '.[].name' "$BF_TMPDIR/watch.json" | grep -v '^"j_running"$' || true)"
ctl status --watch nosuch
assert_eq "status --watch of a missing job exits 1 at once" 1 "$RC"

# --- pause, resume, cancel ---
# listen CMD...: run backfillctl CMD in a psql session that LISTENs on backfilld; prints what
# psql prints, notifications included.
listen() {
	psql -X -q <<SQL 2>&1
LISTEN backfilld;
\! $(printf '%q ' "$BF_CTL" "$@")
SELECT 'after';
SQL
}
out=$(listen pause j_running)
assert_match "pause JOB says what it did" 'job j_running: pause requested \(state running; no daemon runs it now' "$out"
assert_match "pause JOB notifies backfilld with the job name" \
	'Asynchronous notification "backfilld" with payload "j_running" received' "$out"
assert_eq "pause JOB sets requested_state" paused "$(requested j_running)"
assert_eq "pause JOB bumps updated_at" t \
	"$(psql_q "SELECT updated_at > started_at FROM backfill.jobs WHERE name = 'j_running'")"
ctl resume j_running
assert_eq "resume JOB exits 0" 0 "$RC"
assert_eq "resume JOB sets requested_state running" running "$(requested j_running)"
ctl resume j_paused
assert_eq "resume of a paused job sets requested_state running" running "$(requested j_paused)"
ctl resume j_throttled
assert_eq "resume of a job that is not paused exits 0" 0 "$RC"
assert_match "resume of a job that is not paused says so" 'j_throttled is not paused' "$OUT"
assert_eq "resume of a job that is not paused changes nothing" - "$(requested j_throttled)"
ctl pause fill_small
assert_eq "pause of a done job exits 1" 1 "$RC"
assert_match "pause of a done job says so" 'job fill_small is already done' "$OUT"
assert_eq "pause of a done job changes nothing" - "$(requested fill_small)"
ctl cancel j_failed
assert_eq "cancel of a failed job exits 1" 1 "$RC"
ctl pause nosuch
assert_eq "pause of a missing job exits 1" 1 "$RC"
assert_match "pause of a missing job says so" 'no job named nosuch' "$OUT"
out=$(listen cancel j_throttled)
assert_match "cancel notifies backfilld" 'payload "j_throttled" received' "$out"
assert_eq "cancel sets requested_state" cancelled "$(requested j_throttled)"
ctl pause j_throttled
assert_eq "pause of a job being cancelled exits 1" 1 "$RC"
assert_eq "pause does not undo a cancel" cancelled "$(requested j_throttled)"

states() {
	psql_q "SELECT string_agg(name || '=' || coalesce(requested_state, '-'), ' ' ORDER BY name)
	        FROM backfill.jobs"
}
out=$(listen pause --all)
assert_match "pause --all notifies backfilld with *" 'payload "\*" received' "$out"
assert_eq "pause --all names the three jobs it paused" 3 "$(grep -c 'pause requested' <<<"$out")"
assert_eq "pause --all: unfinished jobs only, cancel kept" \
	"fill_small=- j_failed=- j_paused=paused j_pending=paused j_running=paused j_throttled=cancelled" \
	"$(states)"
ctl resume --all
assert_eq "resume --all exits 0" 0 "$RC"
assert_eq "resume --all: the paused ones" \
	"fill_small=- j_failed=- j_paused=running j_pending=running j_running=running j_throttled=cancelled" \
	"$(states)"

# --- reset ---
lock_held() {
	[[ $(psql_q "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
	             AND classid = hashtext('${2:-backfill}')::oid AND objid = hashtext('$1')::oid
	             AND objsubid = 2") == 1 ]]
}
psql_q "UPDATE backfill.jobs SET owner = 'otherhost:4242' WHERE name = 'j_pending'"
psql -X -q -c "SELECT pg_advisory_lock(hashtext('backfill'), hashtext('j_pending'))" \
	-c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
HOLDER=$!
bf_defer kill "$HOLDER"
wait_for "another session holds the job's advisory lock" 10 lock_held j_pending
ctl reset j_pending
assert_eq "reset while the lock is held exits 1" 1 "$RC"
assert_match "reset refused names the owner" \
	'reset refused: job j_pending is owned by a running daemon \(owner otherhost:4242' "$OUT"
assert_eq "reset refused keeps the row" 1 \
	"$(psql_q "SELECT count(*) FROM backfill.jobs WHERE name = 'j_pending'")"
ctl pause j_pending
assert_match "pause of an owned job names the daemon" \
	'job j_pending: pause requested \(state pending; daemon otherhost:4242 acts within a second\)' "$OUT"
psql_q "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'
        AND classid = hashtext('backfill')::oid AND objid = hashtext('j_pending')::oid" >/dev/null
wait "$HOLDER" 2>/dev/null || true
lock_free() { ! lock_held "$@"; }
wait_for "the advisory lock is free" 10 lock_free j_pending
# a slice's lock held (a slice walking for a daemon that lost its job's connection)
psql_q "INSERT INTO backfill.slices (job, slice, high_key) VALUES ('j_pending', 2, '{9}')"
psql -X -q -c "SELECT pg_advisory_lock(hashtext('backfill'), hashtext('j_pending:2'))" \
	-c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
HOLDER=$!
bf_defer kill "$HOLDER"
wait_for "another session holds slice 2's advisory lock" 10 lock_held j_pending:2
ctl reset j_pending
assert_eq "reset while a slice's lock is held exits 1" 1 "$RC"
assert_match "and names the slice" 'reset refused: slices 2 of job j_pending are walked by a running daemon' "$OUT"
psql_q "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'
        AND classid = hashtext('backfill')::oid AND objid = hashtext('j_pending:2')::oid" >/dev/null
wait "$HOLDER" 2>/dev/null || true
wait_for "the slice's lock is free" 10 lock_free j_pending:2
ctl reset j_pending
assert_eq "reset of a free job exits 0" 0 "$RC"
assert_match "reset says what it did" '^job j_pending reset' "$OUT"
assert_eq "reset deletes the row" 0 \
	"$(psql_q "SELECT count(*) FROM backfill.jobs WHERE name = 'j_pending'")"
ctl reset j_pending
assert_eq "reset of a missing job exits 1" 1 "$RC"
assert_match "reset of a missing job says so" 'no job named j_pending' "$OUT"

# reset of a finished job: the next daemon registers it again.
ctl reset fill_small
assert_eq "reset of a done job exits 0" 0 "$RC"
daemon_start "$BF_TMPDIR/bf.yaml" "$BF_TMPDIR/daemon2.log" --exit-when-done
daemon_wait 60
assert_eq "the next daemon registers the reset job again" "done" "$(job_state fill_small)"

# A live daemon, in another control schema, owns its job: reset is refused until it stops.
psql_q "CREATE TABLE slow (id int PRIMARY KEY, x int NOT NULL, y int);
        INSERT INTO slow (id, x) SELECT g, g FROM generate_series(1, 1000) g"
bf_conf "$BF_TMPDIR/slow.yaml" <<YAML
database: "$BF_DB_CONNINFO"
control_schema: bf_other
jobs:
  - name: slow_fill
    table: slow
    set: "y = x"
    where: "y IS NULL"
    batch_size: 10
    min_batch_size: 10
    target_batch_time: 0
    sleep: 1s
YAML
daemon_start "$BF_TMPDIR/slow.yaml" "$BF_TMPDIR/daemon3.log"
wait_for "the daemon holds slow_fill's lock" 30 lock_held slow_fill bf_other
ctl --schema bf_other reset slow_fill
assert_eq "reset of a job a live daemon runs exits 1" 1 "$RC"
owner=$(psql_q "SELECT owner FROM bf_other.jobs WHERE name = 'slow_fill'")
assert_match "reset refused names the daemon's owner column" "\\(owner ${owner:-NONE}, state " "$OUT"
ctl --schema bf_other status slow_fill
assert_match "status --schema shows the live job" '^slow_fill ' "$(tail -n 1 <<<"$OUT")"
kill -TERM "$DAEMON_PID"
daemon_wait 30
assert_eq "the daemon stopped" 0 "$DAEMON_RC"
ctl --schema bf_other reset slow_fill
assert_eq "reset once the daemon is gone exits 0" 0 "$RC"
assert_eq "and deletes the row" 0 "$(psql_q "SELECT count(*) FROM bf_other.jobs")"

test_finish
