/*
 * lagmon.c - the lag monitor of one server: a state machine on a connection of its own.
 *
 *     CONNECTING --connected--> PROBING --> COMMITTING --> QUERYING --> IDLE --tick--> ...
 *         ^                        (lag)      (commit)      (throttle_    |
 *         |                                                  queries)     |
 *         +---- retry timer ---- BACKOFF <--lost------------------------+-- (or connect
 *                                                              failed, a statement overdue)
 *
 * A round starts at a tick from IDLE: the lag probe (every check_interval), then the commit
 * probe (pace.h: a tiny transaction committed with synchronous_commit on and timed, the
 * reading of the application's side; every COMMIT_PROBE_MS while a job of the server has a
 * budget: the tick then runs at that pace and most rounds are a commit probe alone), then,
 * after a lag probe, each distinct throttle_query of the server's jobs, one number each.
 * Steps a round does not need are skipped.
 * The style of every asynchronous actor (job.c says why): an explicit state, one switch.
 * One handler, handle(), switches on the state and then on the event (the connection's
 * events, the repeating probe tick, the retry timer); a pair it does not expect is logged and
 * the monitor starts over from BACKOFF. The tick starts a probe only from IDLE, so a probe
 * still in flight makes the next tick a no-op; a probe with no answer after PROBE_TIMEOUT
 * (or three intervals, whichever is longer) drops the connection and reconnects. A first
 * connection still pending after FIRST_PROBE_GRACE_MS fails closed ("still connecting").
 *
 * The probe is one query on the primary (probe_sql below). Measured facts it respects:
 * - pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) is the reliable per-standby signal;
 *   pg_current_wal_lsn() is read once per probe (a MATERIALIZED CTE), so every row compares
 *   against the same position;
 * - replay_lag is NULL while a standby is idle or caught up: NULL stays "not measured" (-1);
 * - reply_time is stamped by the standby's clock: a standby whose clock runs ahead gives a
 *   negative age, read as 0 here (never as -1, which would mean "not measured");
 * - without pg_read_all_stats (pg_monitor has it), pg_stat_replication shows the walsenders'
 *   application_name but NULL for everything else: that is reported as unreadable, not as
 *   "no lag";
 * - pg_current_wal_lsn() fails in recovery: the CTE does not call it there, and the sample
 *   says the server is a standby (a job cannot write there anyway; after a promotion the
 *   next probe reads normally);
 * - the archive backlog is computed from pg_stat_archiver, which any role may read: the
 *   segments between the one being written and the last archived one (or, when nothing was
 *   archived since the statistics were reset, the last failed one, which the archiver retries
 *   first). Counting .ready files would need pg_ls_archive_statusdir(), i.e. pg_monitor.
 *   -1 when archive_mode is off, or when nothing was archived or failed yet (not measured).
 */
#include "backfilld/lagmon.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "backfilld/bucket.h"
#include "backfilld/conn.h"
#include "backfilld/log.h"
#include "backfilld/util.h"

#define CONNECT_TIMEOUT_MS   10000
#define PROBE_TIMEOUT_MS     10000 /* a probe still unanswered after this: reconnect */
#define RETRY_FIRST_MS       250
#define RETRY_MAX_MS         10000 /* short: every second of it keeps jobs throttled */
#define MIN_INTERVAL_MS      10
#define COMMIT_PROBE_MS      200  /* the commit probe's cadence, when a job has a budget */
#define FIRST_PROBE_GRACE_MS 1000 /* taken_ms stays 0 ("just started") this long at most */

/* One row per server ("server": recovery or primary, the archive backlog), per walsender
 * ("standby") and per slot ("slot"), in the columns read by take_sample(). */
static const char probe_sql[] =
        "WITH r AS MATERIALIZED (\n"
        "  SELECT pg_is_in_recovery() AS recovery,\n"
        "         pg_size_bytes(current_setting('wal_segment_size')) AS seg_size),\n"
        "s AS MATERIALIZED (\n"
        "  SELECT recovery, seg_size,\n"
        "         CASE WHEN NOT recovery THEN pg_current_wal_lsn() END AS lsn\n"
        "  FROM r),\n"
        "arch AS (\n"
        "  SELECT CASE WHEN last_archived_wal ~ '^[0-9A-F]{24}'\n"
        "              THEN ('x' || substr(last_archived_wal, 9, 8))::bit(32)::bigint\n"
        "                   * (4294967296 / s.seg_size)\n"
        "                   + ('x' || substr(last_archived_wal, 17, 8))::bit(32)::bigint\n"
        "         END AS done,\n"
        "         CASE WHEN last_failed_wal ~ '^[0-9A-F]{24}'\n"
        "              THEN ('x' || substr(last_failed_wal, 9, 8))::bit(32)::bigint\n"
        "                   * (4294967296 / s.seg_size)\n"
        "                   + ('x' || substr(last_failed_wal, 17, 8))::bit(32)::bigint\n"
        "         END AS failed,\n"
        "         floor(pg_wal_lsn_diff(s.lsn, '0/0') / s.seg_size)::bigint AS writing\n"
        "  FROM s, pg_stat_archiver)\n"
        "SELECT 'server' AS kind, current_user::text AS name,\n"
        "       CASE WHEN s.recovery THEN 'recovery' ELSE 'primary' END AS state,\n"
        "       CASE WHEN current_setting('archive_mode') <> 'off'\n"
        "            THEN a.writing - 1 - coalesce(a.done, a.failed - 1) END AS bytes,\n"
        "       NULL::bigint AS lag_ms, NULL::bigint AS age_ms, NULL::bool AS active,\n"
        "       NULL::text AS wal_status\n"
        "FROM s, arch a\n"
        "UNION ALL\n"
        "SELECT 'standby', w.application_name::text, w.state::text,\n"
        "       pg_wal_lsn_diff(s.lsn, w.replay_lsn)::bigint,\n"
        "       (extract(epoch FROM w.replay_lag) * 1000)::bigint,\n"
        "       (extract(epoch FROM now() - w.reply_time) * 1000)::bigint, NULL, NULL\n"
        "FROM s, pg_stat_replication w\n"
        "UNION ALL\n"
        "SELECT 'slot', l.slot_name::text, l.slot_type::text,\n"
        "       pg_wal_lsn_diff(s.lsn, l.restart_lsn)::bigint, NULL, NULL, l.active,\n"
        "       l.wal_status\n"
        "FROM s, pg_replication_slots l";

enum col { C_KIND, C_NAME, C_STATE, C_BYTES, C_LAG_MS, C_AGE_MS, C_ACTIVE, C_WAL_STATUS, N_COLS };

enum lm_state { LM_CONNECTING, LM_IDLE, LM_PROBING, LM_COMMITTING, LM_QUERYING, LM_BACKOFF };

enum lm_event { LE_CONNECTED, LE_RESULT, LE_LOST, LE_TICK, LE_RETRY };

static const char *const state_names[] = {
        [LM_CONNECTING] = "connecting", [LM_IDLE] = "idle",         [LM_PROBING] = "probing",
        [LM_COMMITTING] = "committing", [LM_QUERYING] = "querying", [LM_BACKOFF] = "backoff",
};

static const char *const event_names[] = {
        [LE_CONNECTED] = "connected", [LE_RESULT] = "result", [LE_LOST] = "lost",
        [LE_TICK] = "tick",           [LE_RETRY] = "retry",
};

/* A job's throttle_query (jobs with the same text share it) and its latest reading. */
struct query {
	char *sql;
	bf_query_reading reading;
	char error[512];
};

struct bf_lagmon {
	struct ev_loop *loop;
	char *database;
	char *server; /* host:port/dbname for logs (no password) */
	bf_conn *conn;
	enum lm_state state;
	ev_timer tick;
	ev_timer retry;
	int64_t interval_ms; /* the lag probe's (the smallest check_interval of its jobs) */
	bool commits_wanted; /* a job on this server has a max_commit_latency */
	bool lag_round;      /* the round in flight began with a lag probe */
	int64_t lag_sent_ms; /* when the last lag probe went out */
	int64_t probe_sent_ms;
	int64_t started_ms;
	bool failing;             /* the sample is unreadable and that was logged */
	int64_t failing_ms;       /* since when */
	bf_lag_sample sample;     /* the lag reading bf_lagmon_readings() hands out */
	bf_lag_standby *standbys; /* the sample's arrays and strings, freed at the next sample */
	bf_lag_slot *slots;
	char *strings;
	char error[512];
	/* the commit probe (pace.h): its readings, and whether a batch of the server's jobs
	 * was in flight or sent while it ran (then it does not count toward the baseline) */
	bf_commit_stats commits;
	bf_commit_reading commit;
	int64_t commit_sent_us;
	int busy;        /* batches in flight on this server (bf_lagmon_batch) */
	bool batch_seen; /* a batch was sent since the commit probe was */
	char commit_error[512];
	/* the throttle_query of the jobs on this server, each run after the commit probe */
	struct query *queries;
	size_t n_queries, qi;
	bool discard; /* the list changed while a query ran: its result is not for the new one */
	/* max_wal_rate: the WAL the server's batches wrote, metered in one bucket */
	bf_bucket wal;
	int64_t wal_rate;      /* its rate: the smallest max_wal_rate of the server's jobs */
	uint64_t wal_lsn;      /* the last WAL position a batch reported (0: none yet) */
	int64_t wal_per_batch; /* what the last batch wrote: the next is expected to write as much
	                        */
};

static void clear_sample(bf_lagmon *m)
{
	free(m->standbys);
	free(m->slots);
	free(m->strings);
	m->standbys = NULL;
	m->slots = NULL;
	m->strings = NULL;
	m->sample = (bf_lag_sample){.archive_backlog = -1};
}

/* A server message on one line: the lines libpq or the server wrote, joined with "; ", the
 * indented hints ("\tIs the server running...") left out. */
static void one_line(char *out, size_t len, const char *msg)
{
	size_t n = 0;

	out[0] = '\0';
	for (const char *p = msg; *p != '\0' && n + 1 < len;) {
		size_t l = strcspn(p, "\n");
		if (p[0] != '\t' && p[0] != ' ' && l > 0) {
			int w = snprintf(out + n, len - n, "%s%.*s", n ? "; " : "", (int)l, p);
			n += w < 0 ? 0 : (size_t)w;
			if (n >= len)
				n = len - 1;
		}
		p += l;
		if (*p == '\n')
			p++;
	}
	out[n] = '\0';
}

/* The sample says "unreadable" from now on (fail closed), with why; logged when it starts. */
static void unreadable(bf_lagmon *m, const char *why)
{
	char q[300], e[600];

	clear_sample(m);
	one_line(m->error, sizeof(m->error), why && why[0] ? why : "unknown error");
	m->sample.ok = false;
	m->sample.error = m->error;
	m->sample.taken_ms = bf_mono_ms();
	if (m->failing) {
		bf_log(BF_LOG_DEBUG, NULL, "lag probe still failing", "server=%s error=%s",
		       bf_log_q(q, sizeof(q), m->server), bf_log_q(e, sizeof(e), m->error));
		return;
	}
	m->failing = true;
	m->failing_ms = m->sample.taken_ms;
	bf_log(BF_LOG_WARN, NULL, "lag probe failing, jobs on this server throttle",
	       "server=%s error=%s", bf_log_q(q, sizeof(q), m->server),
	       bf_log_q(e, sizeof(e), m->error));
}

/* A bigint column: -1 for NULL ("not measured"); a negative value (a clock ahead, an LSN
 * race) is 0. */
static int64_t num(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return -1;
	long long v = strtoll(PQgetvalue(res, row, col), NULL, 10);
	return v < 0 ? 0 : (int64_t)v;
}

/* Copy a text column into the arena (NULL stays NULL). */
static const char *copy(char **at, const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	const char *s = *at;
	size_t n = (size_t)PQgetlength(res, row, col);

	memcpy(*at, PQgetvalue(res, row, col), n);
	(*at)[n] = '\0';
	*at += n + 1;
	return s;
}

static bool is_kind(const PGresult *res, int row, const char *kind)
{
	return strcmp(PQgetvalue(res, row, C_KIND), kind) == 0;
}

/* Turn the probe's rows into the sample; anything that makes the signals unreliable is
 * reported as unreadable instead. */
static void take_sample(bf_lagmon *m, const PGresult *res)
{
	char why[300];
	int n = PQntuples(res);
	int server = -1;
	size_t n_standbys = 0, n_slots = 0, bytes = 0;

	if (PQnfields(res) != N_COLS) {
		unreadable(m, "the lag probe returned unexpected columns");
		return;
	}
	for (int i = 0; i < n; i++) {
		if (is_kind(res, i, "server"))
			server = i;
		else if (is_kind(res, i, "standby"))
			n_standbys++;
		else if (is_kind(res, i, "slot"))
			n_slots++;
		for (int c = 0; c < N_COLS; c++)
			bytes += (size_t)PQgetlength(res, i, c) + 1;
	}
	if (server < 0) {
		unreadable(m, "the lag probe returned no server row");
		return;
	}
	if (strcmp(PQgetvalue(res, server, C_STATE), "recovery") == 0) {
		unreadable(m,
		           "the server is a standby (in recovery): lag is measured on the primary");
		return;
	}
	for (int i = 0; i < n; i++) {
		if (is_kind(res, i, "standby") && PQgetisnull(res, i, C_STATE)) {
			snprintf(why, sizeof(why),
			         "role %s cannot see the standbys in pg_stat_replication "
			         "(grant it pg_monitor)",
			         PQgetvalue(res, server, C_NAME));
			unreadable(m, why);
			return;
		}
	}

	clear_sample(m);
	m->standbys = bf_xcalloc(n_standbys + 1, sizeof(*m->standbys));
	m->slots = bf_xcalloc(n_slots + 1, sizeof(*m->slots));
	m->strings = bf_xmalloc(bytes + 1);
	char *at = m->strings;
	for (int i = 0; i < n; i++) {
		if (is_kind(res, i, "standby")) {
			m->standbys[m->sample.n_standbys++] = (bf_lag_standby){
			        .name = copy(&at, res, i, C_NAME),
			        .state = copy(&at, res, i, C_STATE),
			        .replay_bytes = num(res, i, C_BYTES),
			        .replay_lag_ms = num(res, i, C_LAG_MS),
			        .reply_age_ms = num(res, i, C_AGE_MS),
			};
		} else if (is_kind(res, i, "slot")) {
			m->slots[m->sample.n_slots++] = (bf_lag_slot){
			        .name = copy(&at, res, i, C_NAME),
			        .type = copy(&at, res, i, C_STATE),
			        .active = strcmp(PQgetvalue(res, i, C_ACTIVE), "t") == 0,
			        .retained_bytes = num(res, i, C_BYTES),
			        .wal_status = copy(&at, res, i, C_WAL_STATUS),
			};
		}
	}
	m->sample.standbys = m->standbys;
	m->sample.slots = m->slots;
	m->sample.archive_backlog = num(res, server, C_BYTES);
	m->sample.ok = true;
	m->sample.error = NULL;
	m->sample.taken_ms = bf_mono_ms();
	if (m->failing) {
		char q[300];

		bf_log(BF_LOG_INFO, NULL, "lag probe readable again",
		       "server=%s failed_for_ms=%lld", bf_log_q(q, sizeof(q), m->server),
		       (long long)(m->sample.taken_ms - m->failing_ms));
		m->failing = false;
	}
}

static void commit_failed(bf_lagmon *m, const char *why);
static void query_failed(struct query *q, const char *why);

/* Drop the connection, fail closed, and try again after the connection's pause (conn.h: a
 * refusal for good knocks at the slowest pace; the jobs on this conninfo fail for it). */
static void backoff(bf_lagmon *m, const char *why)
{
	int64_t ms = bf_conn_drop(m->conn, why);

	unreadable(m, why);
	commit_failed(m, why);
	for (size_t i = 0; i < m->n_queries; i++)
		query_failed(&m->queries[i], why);
	m->state = LM_BACKOFF;
	ev_timer_stop(m->loop, &m->retry);
	ev_timer_set(&m->retry, (double)ms / 1000.0, 0.0);
	ev_timer_start(m->loop, &m->retry);
}

static void connect_db(bf_lagmon *m)
{
	char err[256];

	m->state = LM_CONNECTING;
	if (bf_conn_connect(m->conn, m->database, "backfilld lag", CONNECT_TIMEOUT_MS, err,
	                    sizeof(err)) != 0)
		backoff(m, err);
}

static void send_probe(bf_lagmon *m)
{
	char err[256];

	m->state = LM_PROBING;
	m->probe_sent_ms = bf_mono_ms();
	m->lag_sent_ms = m->probe_sent_ms;
	m->lag_round = true;
	if (bf_conn_send_simple(m->conn, probe_sql, err, sizeof(err)) != 0)
		backoff(m, err);
}

static void got_result(bf_lagmon *m, const PGresult *res)
{
	m->state = LM_IDLE;
	if (res == NULL) {
		unreadable(m, "the lag probe returned no result");
	} else if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		char why[400];

		snprintf(why, sizeof(why), "lag probe: %s", msg ? msg : PQresultErrorMessage(res));
		unreadable(m, why);
	} else {
		take_sample(m, res);
	}
}

/* While the connection is down, the failure is a current fact, not an old sample: keep it
 * fresh so that jobs show the connection's error rather than "last sample 5s old". Before
 * the first attempt ended, taken_ms stays 0 ("just started"). */
static void still_unreadable(bf_lagmon *m)
{
	if (!m->sample.ok && m->sample.taken_ms != 0)
		m->sample.taken_ms = bf_mono_ms();
}

/* The tick's period: the lag probe's interval, or the commit probe's cadence when that is
 * shorter and wanted. */
static int64_t tick_ms(const bf_lagmon *m)
{
	return m->commits_wanted && m->interval_ms > COMMIT_PROBE_MS ? COMMIT_PROBE_MS
	                                                             : m->interval_ms;
}

/* Is a lag probe due at this tick (else only the commit probe goes)? Half a tick early
 * counts: ticks do not land exactly. */
static bool lag_due(const bf_lagmon *m)
{
	return !m->commits_wanted ||
	       bf_mono_ms() - m->lag_sent_ms >= m->interval_ms - tick_ms(m) / 2;
}

static int64_t probe_timeout_ms(const bf_lagmon *m)
{
	return 3 * m->interval_ms > PROBE_TIMEOUT_MS ? 3 * m->interval_ms : PROBE_TIMEOUT_MS;
}

/* The commit probe: one statement whose implicit transaction writes a WAL record and commits
 * with synchronous_commit on, so its commit waits for the flush of all WAL before it, as an
 * application commit does. pg_logical_emit_message needs no table, no grant, any wal_level. */
static const char commit_sql[] =
        "SELECT pg_logical_emit_message(true, 'backfilld', 'commit probe') "
        "FROM (SELECT set_config('synchronous_commit', 'on', true)) s";

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void commit_failed(bf_lagmon *m, const char *why)
{
	one_line(m->commit_error, sizeof(m->commit_error), why && why[0] ? why : "unknown error");
	m->commit.ok = false;
	m->commit.error = m->commit_error;
	m->commit.taken_ms = bf_mono_ms();
}

static void send_commit(bf_lagmon *m)
{
	char err[256];

	m->state = LM_COMMITTING;
	m->commit_sent_us = now_us();
	m->probe_sent_ms = bf_mono_ms();
	m->batch_seen = m->busy > 0;
	if (bf_conn_send_simple(m->conn, commit_sql, err, sizeof(err)) != 0)
		backoff(m, err);
}

static void got_commit(bf_lagmon *m, const PGresult *res)
{
	int64_t us = now_us() - m->commit_sent_us;
	bool idle = !m->batch_seen && m->busy == 0;
	char q[300], why[600];

	m->state = LM_IDLE;
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		char *text = res ? bf_conn_error_text(res) : bf_xstrdup("no result");

		snprintf(why, sizeof(why), "commit probe: %s", text);
		free(text);
		commit_failed(m, why);
		return;
	}
	bf_commit_stats_add(&m->commits, us, idle);
	m->commit = (bf_commit_reading){
	        .ok = true,
	        .seq = m->commits.seq,
	        .n = m->commits.n,
	        .p90_us = bf_commit_stats_p90(&m->commits),
	        .baseline_us = bf_commit_stats_baseline(&m->commits),
	        .taken_ms = bf_mono_ms(),
	};
	bf_log(BF_LOG_DEBUG, NULL, "commit probe",
	       "server=%s us=%lld idle=%s p90_us=%lld baseline_us=%lld",
	       bf_log_q(q, sizeof(q), m->server), (long long)us, idle ? "true" : "false",
	       (long long)m->commit.p90_us, (long long)m->commit.baseline_us);
}

static void query_failed(struct query *q, const char *why)
{
	one_line(q->error, sizeof(q->error), why && why[0] ? why : "unknown error");
	q->reading = (bf_query_reading){.error = q->error, .taken_ms = bf_mono_ms()};
}

/* The next throttle_query, through the extended protocol (one statement, as the operator's
 * SQL always runs), or back to idle after the last. */
static void send_query(bf_lagmon *m)
{
	char err[256];

	if (m->qi >= m->n_queries) {
		m->state = LM_IDLE;
		return;
	}
	m->state = LM_QUERYING;
	if (bf_conn_send_params(m->conn, m->queries[m->qi].sql, 0, NULL, err, sizeof(err)) != 0)
		backoff(m, err);
}

/* One row, one column, a number: the reading; anything else fails it, saying what came. */
static void got_query(bf_lagmon *m, const PGresult *res)
{
	struct query *q;
	char why[400];
	double v = 0;

	if (m->discard || m->qi >= m->n_queries) {
		m->discard = false;
		m->state = LM_IDLE;
		return;
	}
	q = &m->queries[m->qi++];
	if (bf_conn_result_number(res, &v, why, sizeof(why)) != 0)
		query_failed(q, why);
	else
		q->reading = (bf_query_reading){.ok = true, .value = v, .taken_ms = bf_mono_ms()};
	send_query(m);
}

/* A statement of the round is in flight at a tick: one with no answer after the probe
 * timeout drops the connection (meanwhile its reading ages, and fails closed if it must). */
static void check_overdue(bf_lagmon *m, const char *what)
{
	char why[128];
	int64_t out = bf_mono_ms() - m->probe_sent_ms;

	if (out <= probe_timeout_ms(m))
		return;
	snprintf(why, sizeof(why), "the %s got no answer in %lld ms", what, (long long)out);
	backoff(m, why);
}

/* The state machine: every event of the monitor goes through here. A lost connection means
 * the same in every state that has one. */
static void handle(bf_lagmon *m, enum lm_event ev, const PGresult *res, const char *err)
{
	if (ev == LE_LOST && m->state != LM_BACKOFF) {
		backoff(m, err);
		return;
	}
	switch (m->state) {
	case LM_CONNECTING:
		if (ev == LE_CONNECTED) {
			send_probe(m);
			return;
		}
		if (ev == LE_TICK) {
			/* the probe goes out as soon as we are connected; a first connection
			 * that takes long (a host that drops packets: up to the connect timeout)
			 * throttles with that reason meanwhile */
			if (m->sample.taken_ms == 0 &&
			    bf_mono_ms() - m->started_ms >= FIRST_PROBE_GRACE_MS)
				unreadable(m, "the lag monitor is still connecting");
			still_unreadable(m);
			return;
		}
		break;
	case LM_IDLE:
		if (ev == LE_TICK && lag_due(m)) {
			send_probe(m);
			return;
		}
		if (ev == LE_TICK) {
			m->lag_round = false;
			send_commit(m);
			return;
		}
		break;
	case LM_PROBING:
		if (ev == LE_RESULT) {
			got_result(m, res);
			if (m->commits_wanted) {
				send_commit(m);
			} else {
				m->qi = 0;
				send_query(m);
			}
			return;
		}
		if (ev == LE_TICK) {
			check_overdue(m, "lag probe");
			return;
		}
		break;
	case LM_COMMITTING:
		if (ev == LE_RESULT) {
			got_commit(m, res);
			/* the operator's queries run at the lag probe's pace, not the commit's */
			m->qi = m->lag_round ? 0 : m->n_queries;
			send_query(m);
			return;
		}
		if (ev == LE_TICK) {
			/* a slow commit is a reading in itself, counted when it ends */
			check_overdue(m, "commit probe");
			return;
		}
		break;
	case LM_QUERYING:
		if (ev == LE_RESULT) {
			got_query(m, res);
			return;
		}
		if (ev == LE_TICK) {
			check_overdue(m, "throttle_query");
			return;
		}
		break;
	case LM_BACKOFF:
		if (ev == LE_RETRY) {
			connect_db(m);
			return;
		}
		if (ev == LE_TICK) {
			still_unreadable(m);
			return;
		}
		break;
	default:
		bf_log(BF_LOG_ERROR, NULL, "lag monitor in an unknown state, reconnecting",
		       "state=%d event=%s", (int)m->state, event_names[ev]);
		backoff(m, "lag monitor in an unknown state");
		return;
	}
	bf_log(BF_LOG_ERROR, NULL, "lag monitor got an unexpected event, reconnecting",
	       "state=%s event=%s", state_names[m->state], event_names[ev]);
	backoff(m, "lag monitor got an unexpected event");
}

static void conn_cb(bf_conn *conn, void *owner, bf_conn_event ev, const PGresult *res,
                    const char *err, const PGnotify *notify)
{
	bf_lagmon *m = owner;

	(void)conn;
	(void)notify;
	switch (ev) {
	case BF_CONN_CONNECTED:
		handle(m, LE_CONNECTED, NULL, NULL);
		break;
	case BF_CONN_RESULT:
		handle(m, LE_RESULT, res, NULL);
		break;
	case BF_CONN_LOST:
		handle(m, LE_LOST, NULL, err ? err : "connection lost");
		break;
	case BF_CONN_NOTIFY:
		break; /* the monitor listens to nothing */
	}
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	handle(w->data, LE_TICK, NULL, NULL);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	handle(w->data, LE_RETRY, NULL, NULL);
}

static double seconds(int64_t ms)
{
	return (double)(ms < MIN_INTERVAL_MS ? MIN_INTERVAL_MS : ms) / 1000.0;
}

bf_lagmon *bf_lagmon_new(struct ev_loop *loop, const char *database, int64_t interval_ms)
{
	bf_lagmon *m = bf_xcalloc(1, sizeof(*m));

	m->loop = loop;
	m->database = bf_xstrdup(database);
	m->server = bf_conn_describe(database);
	m->conn = bf_conn_new(loop, "lag", conn_cb, m);
	m->interval_ms = interval_ms < MIN_INTERVAL_MS ? MIN_INTERVAL_MS : interval_ms;
	ev_init(&m->retry, retry_cb);
	m->retry.data = m;
	bf_conn_set_retry(m->conn, RETRY_FIRST_MS, RETRY_MAX_MS);
	ev_timer_init(&m->tick, tick_cb, seconds(m->interval_ms), seconds(m->interval_ms));
	m->tick.data = m;
	ev_timer_start(loop, &m->tick);
	m->started_ms = bf_mono_ms();
	clear_sample(m);
	/* taken_ms stays 0 until a probe answers or fails: "just started" */
	snprintf(m->error, sizeof(m->error), "no lag probe has completed yet");
	m->sample.error = m->error;
	snprintf(m->commit_error, sizeof(m->commit_error), "no commit probe has completed yet");
	m->commit.error = m->commit_error;
	connect_db(m);
	return m;
}

static void free_queries(bf_lagmon *m)
{
	for (size_t i = 0; i < m->n_queries; i++)
		free(m->queries[i].sql);
	free(m->queries);
	m->queries = NULL;
	m->n_queries = 0;
}

void bf_lagmon_free(bf_lagmon *m)
{
	if (m == NULL)
		return;
	ev_timer_stop(m->loop, &m->tick);
	ev_timer_stop(m->loop, &m->retry);
	bf_conn_free(m->conn);
	clear_sample(m);
	free_queries(m);
	free(m->server);
	free(m->database);
	free(m);
}

const char *bf_lagmon_database(const bf_lagmon *m)
{
	return m->database;
}

const bf_lag_sample *bf_lagmon_sample(const bf_lagmon *m)
{
	return &m->sample;
}

bool bf_lagmon_connected(const bf_lagmon *m)
{
	return m->state != LM_CONNECTING && m->state != LM_BACKOFF;
}

void bf_lagmon_set_interval(bf_lagmon *m, int64_t interval_ms, bool commits, int64_t wal_rate)
{
	int64_t before = tick_ms(m);

	if (wal_rate != m->wal_rate) {
		bf_bucket_set_rate(&m->wal, wal_rate, bf_mono_ms());
		m->wal_rate = wal_rate;
		m->wal_lsn = 0; /* metered from the next batch on */
	}

	if (interval_ms < MIN_INTERVAL_MS)
		interval_ms = MIN_INTERVAL_MS;
	m->interval_ms = interval_ms;
	m->commits_wanted = commits;
	if (tick_ms(m) == before)
		return;
	ev_timer_stop(m->loop, &m->tick);
	ev_timer_set(&m->tick, seconds(tick_ms(m)), seconds(tick_ms(m)));
	ev_timer_start(m->loop, &m->tick);
}

/* "16/B374D848" as a 64-bit position; 0 for anything else. */
static uint64_t parse_lsn(const char *s)
{
	unsigned int hi, lo;

	if (s == NULL || sscanf(s, "%X/%X", &hi, &lo) != 2)
		return 0;
	return (uint64_t)hi << 32 | lo;
}

void bf_lagmon_wal(bf_lagmon *m, const char *lsn)
{
	uint64_t at;

	if (m->wal_rate == 0)
		return; /* no job of this server has a WAL budget: nothing to meter */
	at = parse_lsn(lsn);
	if (at == 0)
		return;
	if (m->wal_lsn != 0 && at > m->wal_lsn) {
		m->wal_per_batch = (int64_t)(at - m->wal_lsn);
		bf_bucket_take(&m->wal, bf_mono_ms(), m->wal_per_batch);
	}
	if (at > m->wal_lsn)
		m->wal_lsn = at;
}

void bf_lagmon_readings(const bf_lagmon *m, const bf_job_config *job, bf_gate_readings *out)
{
	out->lag = &m->sample;
	out->commit = &m->commit;
	out->wal_wait_ms = bf_bucket_wait_ms(&m->wal, bf_mono_ms(), m->wal_per_batch);
	out->query = NULL;
	for (size_t i = 0; job->throttle_query && i < m->n_queries; i++)
		if (strcmp(m->queries[i].sql, job->throttle_query) == 0)
			out->query = &m->queries[i].reading;
}

void bf_lagmon_set_queries(bf_lagmon *m, const char *const *sqls, size_t n)
{
	struct query *next = bf_xcalloc(n ? n : 1, sizeof(*next));

	for (size_t i = 0; i < n; i++) {
		next[i].sql = bf_xstrdup(sqls[i]);
		snprintf(next[i].error, sizeof(next[i].error), "it has not run yet");
		next[i].reading.error = next[i].error;
		for (size_t k = 0; k < m->n_queries; k++)
			if (strcmp(m->queries[k].sql, sqls[i]) == 0) {
				/* a query kept across a reload keeps its reading */
				memcpy(next[i].error, m->queries[k].error, sizeof(next[i].error));
				next[i].reading = m->queries[k].reading;
				next[i].reading.error = next[i].error;
			}
	}
	free_queries(m);
	m->queries = next;
	m->n_queries = n;
	/* a query in flight was one of the old list: its result goes, the next round runs
	 * the new list */
	m->discard = m->state == LM_QUERYING;
	m->qi = 0;
}

void bf_lagmon_batch(bf_lagmon *m, bool begins)
{
	if (begins) {
		m->busy++;
		m->batch_seen = true;
	} else if (m->busy > 0) {
		m->busy--;
	}
}
