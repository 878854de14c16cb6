#!/usr/bin/env bash
# tests/static/test_rules.sh - static checks of the monitoring files, no daemon, no database:
#   conf/backfilld-alerts.yml     `promtool check rules`, the alerts every deployment relies on
#                                 (each with for:, severity, summary, description, runbook),
#                                 and `promtool test rules` on synthetic series: they fire when
#                                 they should, and not for a job making progress, a job done,
#                                 a job that has just started or was throttled;
#   conf/backfilld-dashboard.json valid JSON (jq), the datasource and job variables, every panel
#                                 with a datasource of ${datasource} and a PromQL target that
#                                 parses (promtool, the variables replaced);
#   both                          every backfilld_* metric name they mention is one of the
#                                 metrics contract (CONTRACT below; the histogram also as
#                                 _bucket/_sum/_count), and the dashboard shows every one.
# Prints `ok - DESC` / `not ok - DESC` (with the tool's output, indented) per check and ends with
# `test_rules: N passed, N failed`; exits 1 if any failed, or at once when promtool or jq is
# missing. Needs promtool (Debian package `prometheus`) and jq. Run from anywhere.
#
# The unit tests pin the rendered annotations (promtool compares them whole): change them here
# when you change the wording in the rules.

set -euo pipefail
cd "$(dirname "$0")/../.."

RULES=conf/backfilld-alerts.yml
DASHBOARD=conf/backfilld-dashboard.json

# The metrics contract: every series backfilld exports (the histogram by its base name).
CONTRACT=(
	backfilld_rows_done_total
	backfilld_batches_total
	backfilld_errors_total
	backfilld_throttled_seconds_total
	backfilld_batch_duration_seconds
	backfilld_rows_estimate
	backfilld_rows_per_second
	backfilld_batch_size
	backfilld_last_batch_seconds
	backfilld_pass
	backfilld_pace_ratio
	backfilld_commit_latency_seconds
	backfilld_job_state
	backfilld_up
	backfilld_lag_probe_ok
	backfilld_replay_lag_bytes
	backfilld_slot_retained_bytes
	backfilld_archive_backlog_segments
	backfilld_build_info
)
HISTOGRAMS=(backfilld_batch_duration_seconds)
REQUIRED_ALERTS=(BackfillJobFailed BackfillThrottledLong BackfillNoProgress
	BackfillLagProbeFailing BackfilldDown)

for tool in promtool jq; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		case $tool in
		promtool) how="the Debian package prometheus: apt-get install --no-install-recommends prometheus" ;;
		jq) how="the Debian package jq: apt-get install jq" ;;
		esac
		printf 'test_rules: FAIL: %s not found in PATH (it comes with %s)\n' "$tool" "$how" >&2
		exit 1
	fi
done

passed=0
failed=0
ok() {
	passed=$((passed + 1))
	printf 'ok - %s\n' "$1"
}
not_ok() {
	failed=$((failed + 1))
	printf 'not ok - %s\n' "$1"
	if [[ -n ${2-} ]]; then
		printf '%s\n' "$2" | sed 's/^/    /'
	fi
}
# check DESC CMD...: ok when CMD exits 0; its output is shown when it does not.
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		not_ok "$desc" "$out"
	fi
}
# check_empty DESC TEXT: ok when TEXT (the problems found) is empty.
check_empty() {
	if [[ -z $2 ]]; then
		ok "$1"
	else
		not_ok "$1" "$2"
	fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- the rules ----

check "promtool check rules $RULES" promtool check rules "$RULES"

problems=""
if ! grep -Eq '^  - name: "?backfilld"?[[:space:]]*$' "$RULES"; then
	problems+="no group named backfilld"$'\n'
fi
for alert in "${REQUIRED_ALERTS[@]}"; do
	if ! grep -Eq "^[[:space:]]*- alert: \"?$alert\"?[[:space:]]*$" "$RULES"; then
		problems+="alert $alert missing"$'\n'
	fi
done
# Each alert's block (from its `- alert:` to the next rule) needs for:, severity and the three
# annotations.
problems+=$(awk '
	function flush() {
		if (name == "")
			return
		if (!has["for"]) print "alert " name ": no for:"
		if (!has["severity"]) print "alert " name ": no severity label"
		if (!has["summary"]) print "alert " name ": no summary annotation"
		if (!has["description"]) print "alert " name ": no description annotation"
		if (!has["runbook"]) print "alert " name ": no runbook annotation"
	}
	/^[[:space:]]*- (alert|record):/ {
		flush()
		delete has
		name = ($2 == "alert:") ? $3 : ""
		next
	}
	/^[[:space:]]*(for|severity|summary|description|runbook):/ {
		key = $1
		sub(/:$/, "", key)
		has[key] = 1
	}
	END { flush() }
' "$RULES")
check_empty "every required alert is there, each with for:, severity, summary, description, runbook" "$problems"

# The unit tests: synthetic series at 1m, the rules evaluated every minute.
cp "$RULES" "$tmp/backfilld-alerts.yml"
cat >"$tmp/tests.yml" <<'YAML'
rule_files: [backfilld-alerts.yml]
evaluation_interval: 1m
tests:
  - name: failed and no progress
    interval: 1m
    input_series:
      # failed from minute 2 (for: 1m): firing from minute 3
      - series: 'backfilld_job_state{instance="bf1:9187",job="broken",state="failed"}'
        values: '0 0 1x30'
      - series: 'backfilld_rows_done_total{instance="bf1:9187",job="broken"}'
        values: '5000x30'
      - series: 'backfilld_job_state{instance="bf1:9187",job="fine",state="failed"}'
        values: '0x30'
      # running, the counter flat: no progress from minute 15, firing from minute 16
      - series: 'backfilld_job_state{instance="bf1:9187",job="stuck",state="running"}'
        values: '1x40'
      - series: 'backfilld_rows_done_total{instance="bf1:9187",job="stuck"}'
        values: '1000x40'
      - series: 'backfilld_pass{instance="bf1:9187",job="stuck"}'
        values: '2x40'
      # running and moving
      - series: 'backfilld_job_state{instance="bf1:9187",job="moving",state="running"}'
        values: '1x40'
      - series: 'backfilld_rows_done_total{instance="bf1:9187",job="moving"}'
        values: '0+100x40'
      # done at minute 6, the counter flat since
      - series: 'backfilld_job_state{instance="bf1:9187",job="finished",state="running"}'
        values: '1x5 0x35'
      - series: 'backfilld_job_state{instance="bf1:9187",job="finished",state="done"}'
        values: '0x5 1x35'
      - series: 'backfilld_rows_done_total{instance="bf1:9187",job="finished"}'
        values: '0+100x5 500x35'
      # throttled until minute 10, running since (10 minutes at minute 20, not 15)
      - series: 'backfilld_job_state{instance="bf1:9187",job="was_throttled",state="running"}'
        values: '0x10 1x30'
      - series: 'backfilld_rows_done_total{instance="bf1:9187",job="was_throttled"}'
        values: '300x40'
      # first seen at minute 10 (10 minutes old at minute 20, not 15)
      - series: 'backfilld_job_state{instance="bf1:9187",job="young",state="running"}'
        values: '_x10 1x30'
      - series: 'backfilld_rows_done_total{instance="bf1:9187",job="young"}'
        values: '_x10 0x30'
    alert_rule_test:
      - eval_time: 2m
        alertname: BackfillJobFailed
      - eval_time: 5m
        alertname: BackfillJobFailed
        exp_alerts:
          - exp_labels: {severity: critical, instance: "bf1:9187", job: broken, state: failed}
            exp_annotations:
              summary: "Backfill job broken failed"
              description: "Backfill job broken on backfilld bf1:9187 is in state failed after 5000 rows; it will not resume on its own."
              runbook: "Run `backfillctl status broken` (its state_reason and last_error say why, as backfill.progress does) and `journalctl -u backfilld --grep job=broken`; fix the cause (the set or where expression, a trigger, grants, the conninfo), then run the job again with `backfillctl reset broken` (if a daemon still owns the job, reset says so: remove the job from the configuration, reload with SIGHUP, reset, and put it back); rows already filled no longer match where and are skipped."
      - eval_time: 14m
        alertname: BackfillNoProgress
      - eval_time: 20m
        alertname: BackfillNoProgress
        exp_alerts:
          - exp_labels: {severity: warning, instance: "bf1:9187", job: stuck}
            exp_annotations:
              summary: "Backfill job stuck is running but has done no row for 15 minutes"
              description: "Backfill job stuck on backfilld bf1:9187 has been running for 15 minutes without updating a row (still 1000 rows done, pass 2)."
              runbook: "Run `backfillctl status stuck` (pass, batch_size, errors, last_error) and `journalctl -u backfilld --grep job=stuck` for repeated lock or statement timeouts; look at the backfill's session in pg_stat_activity (wait_event, the query) and at who holds locks on the table (pg_locks); a long transaction of the application blocking the rows is the usual cause."

  - name: throttled for an hour
    interval: 1m
    input_series:
      # held back all the time (1 s/s)
      - series: 'backfilld_throttled_seconds_total{instance="bf1:9187",job="lagging",reason="replay_lag"}'
        values: '0+60x90'
      # all the time, by two reasons
      - series: 'backfilld_throttled_seconds_total{instance="bf1:9187",job="mixed",reason="lag_probe"}'
        values: '0+40x90'
      - series: 'backfilld_throttled_seconds_total{instance="bf1:9187",job="mixed",reason="archive"}'
        values: '0+20x90'
      # by design or by the operator: outside the window, paused, at its rate budget
      - series: 'backfilld_throttled_seconds_total{instance="bf1:9187",job="windowed",reason="window"}'
        values: '0+60x90'
      - series: 'backfilld_throttled_seconds_total{instance="bf1:9187",job="budget",reason="rate"}'
        values: '0+50x90'
      - series: 'backfilld_throttled_seconds_total{instance="bf1:9187",job="budget",reason="paused"}'
        values: '0+10x90'
      # half of the time
      - series: 'backfilld_throttled_seconds_total{instance="bf1:9187",job="half",reason="slot"}'
        values: '0+30x90'
    alert_rule_test:
      - eval_time: 50m
        alertname: BackfillThrottledLong
      - eval_time: 65m
        alertname: BackfillThrottledLong
        exp_alerts:
          - exp_labels: {severity: warning, instance: "bf1:9187", job: lagging}
            exp_annotations:
              summary: "Backfill job lagging has been throttled for an hour"
              description: "Backfill job lagging on backfilld bf1:9187 was held back 100% of the last hour, mostly by replay_lag: it is making little or no progress."
              runbook: "Run `backfillctl status lagging` and read state_reason (the limit and the reading, e.g. replay lag of a standby, a slot's retained WAL, commit latency, throttle_query); fix the cause on the database side (a slow or broken standby, an abandoned replication slot, the archiver) or, if the limit is too strict, raise it in the job's YAML and reload with SIGHUP; `journalctl -u backfilld` shows when each throttle started."
          - exp_labels: {severity: warning, instance: "bf1:9187", job: mixed}
            exp_annotations:
              summary: "Backfill job mixed has been throttled for an hour"
              description: "Backfill job mixed on backfilld bf1:9187 was held back 100% of the last hour, mostly by lag_probe: it is making little or no progress."
              runbook: "Run `backfillctl status mixed` and read state_reason (the limit and the reading, e.g. replay lag of a standby, a slot's retained WAL, commit latency, throttle_query); fix the cause on the database side (a slow or broken standby, an abandoned replication slot, the archiver) or, if the limit is too strict, raise it in the job's YAML and reload with SIGHUP; `journalctl -u backfilld` shows when each throttle started."

  - name: a throttled job that ends
    interval: 1m
    input_series:
      - series: 'backfilld_throttled_seconds_total{instance="bf1:9187",job="ended",reason="commit_latency"}'
        values: '0+60x70 4200x20'
      - series: 'backfilld_job_state{instance="bf1:9187",job="ended",state="done"}'
        values: '0x70 1x20'
    alert_rule_test:
      - eval_time: 65m
        alertname: BackfillThrottledLong
        exp_alerts:
          - exp_labels: {severity: warning, instance: "bf1:9187", job: ended}
            exp_annotations:
              summary: "Backfill job ended has been throttled for an hour"
              description: "Backfill job ended on backfilld bf1:9187 was held back 100% of the last hour, mostly by commit_latency: it is making little or no progress."
              runbook: "Run `backfillctl status ended` and read state_reason (the limit and the reading, e.g. replay lag of a standby, a slot's retained WAL, commit latency, throttle_query); fix the cause on the database side (a slow or broken standby, an abandoned replication slot, the archiver) or, if the limit is too strict, raise it in the job's YAML and reload with SIGHUP; `journalctl -u backfilld` shows when each throttle started."
      - eval_time: 75m
        alertname: BackfillThrottledLong

  - name: servers and targets
    interval: 1m
    # per-server series: job is the scrape job's name (honor_labels: true, no job of their own)
    input_series:
      # failing from minute 2 (for: 5m): firing from minute 7
      - series: 'backfilld_lag_probe_ok{instance="bf1:9187",job="backfilld",database="10.0.0.5:5432/app"}'
        values: '1 1 0x10'
      - series: 'backfilld_lag_probe_ok{instance="bf1:9187",job="backfilld",database="10.0.0.6:5432/app"}'
        values: '1x12'
      # failing every other minute: never 5 minutes in a row
      - series: 'backfilld_lag_probe_ok{instance="bf1:9187",job="backfilld",database="10.0.0.7:5432/app"}'
        values: '0 1 0 1 0 1 0 1 0 1 0 1'
      - series: 'backfilld_up{instance="bf1:9187",job="backfilld",database="10.0.0.5:5432/app"}'
        values: '1 0x11'
      - series: 'backfilld_up{instance="bf1:9187",job="backfilld",database="10.0.0.6:5432/app"}'
        values: '1x12'
      - series: 'up{instance="bf1:9187",job="backfilld"}'
        values: '1x12'
      - series: 'up{instance="bf2:9187",job="backfilld"}'
        values: '1 1 0x10'
    alert_rule_test:
      - eval_time: 5m
        alertname: BackfillLagProbeFailing
      - eval_time: 8m
        alertname: BackfillLagProbeFailing
        exp_alerts:
          - exp_labels: {severity: warning, instance: "bf1:9187", job: backfilld, database: "10.0.0.5:5432/app"}
            exp_annotations:
              summary: "backfilld cannot read the replication lag of 10.0.0.5:5432/app"
              description: "The lag probe of backfilld bf1:9187 on 10.0.0.5:5432/app has been failing for 5 minutes; every job there with lag limits is held back (fails closed) until it succeeds."
              runbook: "Read the probe's error in `journalctl -u backfilld` and in the state_reason of `backfillctl status`; usually the daemon's role lacks pg_monitor (`GRANT pg_monitor TO <role>` on the primary) or a standby/slot named in the job's lag settings no longer exists (fix the job's YAML and reload with SIGHUP)."
      - eval_time: 8m
        alertname: BackfilldDown
        exp_alerts:
          - exp_labels: {severity: warning, instance: "bf1:9187", job: backfilld, database: "10.0.0.5:5432/app"}
            exp_annotations:
              summary: "backfilld cannot query 10.0.0.5:5432/app"
              description: "backfilld bf1:9187 has failed to query 10.0.0.5:5432/app for 5 minutes; its jobs on that server wait and retry."
              runbook: "Look for `database unreachable, will retry` and its reason in `journalctl -u backfilld`; check that the server is up and accepts writes (a failover the conninfo does not list the new primary of?), pg_hba.conf, the role and max_connections; `backfillctl status` from another host shows what the jobs last recorded."
      - eval_time: 8m
        alertname: BackfilldTargetDown
        exp_alerts:
          - exp_labels: {severity: critical, instance: "bf2:9187", job: backfilld}
            exp_annotations:
              summary: "Prometheus cannot scrape backfilld at bf2:9187"
              description: "The scrape of bf2:9187 (scrape job backfilld) has failed for 5 minutes: the daemon is down or its metrics_listen is unreachable, and no backfill it runs is monitored."
              runbook: "Run `systemctl status backfilld` and `journalctl -u backfilld -n 100` on that host (a config error at start, a port already in use: exit 1); start it again with `systemctl start backfilld` (jobs resume from their checkpoints) and check `backfillctl status`."
YAML
check "promtool test rules: BackfillJobFailed, BackfillNoProgress (not for a job moving, done, just started or just unthrottled), BackfillThrottledLong (not for window/paused/rate, nor once done), BackfillLagProbeFailing, BackfilldDown, BackfilldTargetDown" \
	promtool test rules "$tmp/tests.yml"

# ---- the dashboard ----

dash_valid=0
if out=$(jq empty "$DASHBOARD" 2>&1); then
	ok "$DASHBOARD is valid JSON"
	dash_valid=1
else
	not_ok "$DASHBOARD is valid JSON (its other checks are skipped)" "$out"
fi

if ((dash_valid)); then
	problems=$(jq -r '
		def leaves: [.panels[]? | if .type == "row" then (.panels // [])[] else . end];
		def ds_ok: type == "object" and .uid == "${datasource}";
		(if (.schemaVersion | type) == "number" and .schemaVersion >= 36 then empty
		 else "schemaVersion \(.schemaVersion) (want >= 36)" end),
		(if has("__inputs") then "__inputs present (the dashboard uses ${datasource})" else empty end),
		(if any(.templating.list[]?; .name == "datasource" and .type == "datasource"
		        and .query == "prometheus") then empty
		 else "no variable datasource of type datasource for prometheus" end),
		(if any(.templating.list[]?; .name == "job" and .type == "query"
		        and ((.query | if type == "object" then .query else . end) // "" | tostring
		             | test("label_values\\(\\s*backfilld_job_state\\s*,\\s*job\\s*\\)"))
		        and (.datasource | ds_ok)) then empty
		 else "no variable job = label_values(backfilld_job_state, job) on ${datasource}" end),
		(.templating.list[]? | select(.type == "query") | select(.datasource | ds_ok | not)
		 | "variable \(.name): datasource is not ${datasource}"),
		(if (leaves | length) == 0 then "no panels" else empty end),
		([.panels[]?, (.panels[]? | .panels[]?) | .id] | group_by(.) | map(select(length > 1))[]
		 | "panel id \(.[0]) used \(length) times"),
		(leaves[] | . as $p | "panel \(.id) \"\(.title)\"" as $n |
			(if .gridPos | type == "object" then empty else "\($n): no gridPos" end),
			(if .datasource | ds_ok then empty else "\($n): panel datasource is not ${datasource}" end),
			(if (.targets | type) == "array" and (.targets | length) > 0 then empty
			 else "\($n): no targets" end),
			(.targets[]? |
				(if (.expr | type) == "string" and (.expr | test("\\S")) then empty
				 else "\($n): target \(.refId) without expr" end),
				(if .datasource | ds_ok then empty
				 else "\($n): target \(.refId) datasource is not ${datasource}" end))),
		(if (tostring | test("\\$\\{DS_")) then "an import-time ${DS_...} uid (use ${datasource})"
		 else empty end)
	' "$DASHBOARD" 2>&1) || true
	check_empty "dashboard: schemaVersion, datasource and job variables, every panel with a \${datasource} target and an expr" "$problems"

	# Every expr as a recording rule, the variables replaced by what Grafana would send, so that
	# promtool parses them.
	# shellcheck disable=SC2016 # the $ are Grafana's variables, literally
	{
		printf 'groups:\n  - name: dashboard\n    rules:\n'
		jq -r '[.panels[]? | if .type == "row" then (.panels // [])[] else . end
		        | .targets[]? | .expr // empty] | to_entries[]
		       | "      - record: dashboard:expr_\(.key)\n        expr: \(.value | tojson)"' \
			"$DASHBOARD" |
			sed -e 's/\$__rate_interval/1m/g; s/\$__interval/1m/g; s/\$__range/1h/g' \
				-e 's/\${\{0,1\}\(instance\|job\)}\{0,1\}/.*/g'
	} >"$tmp/dashboard-exprs.yml"
	check "dashboard: every expr parses (promtool check rules, variables replaced)" \
		promtool check rules "$tmp/dashboard-exprs.yml"
fi

# ---- metric names against the contract ----

allowed=" ${CONTRACT[*]} "
for h in "${HISTOGRAMS[@]}"; do
	allowed+="${h}_bucket ${h}_sum ${h}_count "
done
# The exprs of the rules: `expr: X` on one line, or `expr: |` and the lines indented under it.
rule_exprs=$(awk '
	function indent(s) { match(s, /^ */); return RLENGTH }
	inexpr && (NF == 0 || indent($0) > ind) { print; next }
	{ inexpr = 0 }
	/^[[:space:]]*expr:/ {
		ind = indent($0)
		line = $0
		sub(/^[[:space:]]*expr:[[:space:]]*/, "", line)
		if (line ~ /^[|>]/) inexpr = 1; else print line
	}
' "$RULES")
wheres=(rules)
dash_exprs=""
if ((dash_valid)); then
	wheres+=(dashboard)
	dash_exprs=$(jq -r '.. | objects | (.expr?, .definition?, (.query? | if type == "object" then .query else . end)) | strings' "$DASHBOARD")
fi
names() { grep -oE 'backfilld_[a-z0-9_]+' | sort -u || true; }
problems=""
for where in "${wheres[@]}"; do
	if [[ $where == rules ]]; then
		exprs=$rule_exprs
		file=$RULES
	else
		exprs=$dash_exprs
		file=$DASHBOARD
	fi
	used=$(names <<<"$exprs")
	if [[ -z $used ]]; then
		problems+="$where: no backfilld_ metric found in its exprs (extraction broken?)"$'\n'
	fi
	# the exprs, and the rest of the file too (annotation queries, descriptions, comments)
	for name in $used $(names <"$file"); do
		if [[ $allowed != *" $name "* ]]; then
			problems+="$where: $name is not a metric of the contract"$'\n'
		fi
	done
	for h in "${HISTOGRAMS[@]}"; do
		if grep -qx "$h" <<<"$used"; then
			problems+="$where: histogram $h queried without _bucket/_sum/_count"$'\n'
		fi
	done
done
what="rules"
if ((dash_valid)); then
	what="rules and the dashboard"
fi
check_empty "every backfilld_* metric in the $what is one of the contract's ${#CONTRACT[@]}" \
	"$(sort -u <<<"$problems")"

if ((dash_valid)); then
	problems=""
	dash_used=" $(names <<<"$dash_exprs" | tr '\n' ' ') "
	for name in "${CONTRACT[@]}"; do
		found=0
		for variant in "$name" "${name}_bucket" "${name}_sum" "${name}_count"; do
			if [[ $dash_used == *" $variant "* ]]; then
				found=1
			fi
		done
		if ((found == 0)); then
			problems+="$name is not shown"$'\n'
		fi
	done
	check_empty "the dashboard shows every metric of the contract" "$problems"
fi

printf 'test_rules: %d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
