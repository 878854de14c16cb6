/*
 * lagmon.c - the lag monitor of one server, a state machine on its own connection:
 * connecting -> idle -> probing -> idle ..., and a backoff timer whenever the connection is
 * lost. A repeating timer starts a probe every interval unless one is still in flight.
 *
 * The probe is one query on the primary. Per standby, the byte lag
 * pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) is the reliable signal (never NULL while
 * connected, rises at each commit); replay_lag is a second opinion (NULL when idle, frozen
 * while a WAL receiver is stuck); now() - reply_time shows a stalled standby. Per slot, the
 * WAL it retains from restart_lsn. The archiver backlog counts the .ready files, and is only
 * read when archive_mode is on (the directory listing needs pg_monitor).
 */
#include "backfilld/lagmon.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfilld/conn.h"
#include "backfilld/log.h"
#include "backfilld/util.h"

#define CONNECT_TIMEOUT_MS 10000
#define RETRY_MAX_MS       30000

static const char probe_sql[] =
        "SELECT 'standby' AS kind, application_name::text, state::text,\n"
        "  pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,\n"
        "  (extract(epoch FROM replay_lag) * 1000)::bigint,\n"
        "  (extract(epoch FROM now() - reply_time) * 1000)::bigint, NULL::bool, NULL::text\n"
        "FROM pg_stat_replication\n"
        "UNION ALL\n"
        "SELECT 'slot', slot_name::text, slot_type,\n"
        "  pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, NULL, NULL, active,\n"
        "  wal_status\n"
        "FROM pg_replication_slots\n"
        "UNION ALL\n"
        "SELECT 'archive', NULL, NULL,\n"
        "  CASE WHEN current_setting('archive_mode') = 'off' THEN -1\n"
        "       ELSE (SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready')\n"
        "  END, NULL, NULL, NULL, NULL";

enum lmstate { LM_CONNECTING, LM_IDLE, LM_PROBING, LM_BACKOFF };

struct bf_lagmon {
	struct ev_loop *loop;
	char *database;
	bf_conn *conn;
	enum lmstate state;
	ev_timer tick;
	ev_timer retry;
	int64_t interval_ms;
	int64_t retry_ms;
	bool failing; /* the last probe could not be read (logged once) */
	bf_lag_sample sample;
	bf_lag_standby *standbys;
	bf_lag_slot *slots;
	char **strings; /* every string the sample points to */
	size_t n_strings;
	char error[512];
};

static void start(bf_lagmon *m);

static void clear_sample(bf_lagmon *m)
{
	for (size_t i = 0; i < m->n_strings; i++)
		free(m->strings[i]);
	free(m->strings);
	free(m->standbys);
	free(m->slots);
	m->strings = NULL;
	m->n_strings = 0;
	m->standbys = NULL;
	m->slots = NULL;
	m->sample = (bf_lag_sample){.archive_backlog = -1};
}

/* The sample says "unreadable" from now on (fail closed), with why. */
static void unreadable(bf_lagmon *m, const char *why)
{
	clear_sample(m);
	snprintf(m->error, sizeof(m->error), "%s", why);
	while (strlen(m->error) > 0 && m->error[strlen(m->error) - 1] == '\n')
		m->error[strlen(m->error) - 1] = '\0';
	m->sample.ok = false;
	m->sample.error = m->error;
	m->sample.taken_ms = bf_mono_ms();
	if (!m->failing) {
		char q[600];

		bf_log(BF_LOG_WARN, NULL, "lag signals unreadable: jobs on this server throttle",
		       "error=%s", bf_log_q(q, sizeof(q), m->error));
		m->failing = true;
	}
}

static const char *keep(bf_lagmon *m, const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	m->strings = bf_xrealloc(m->strings, (m->n_strings + 1) * sizeof(*m->strings));
	m->strings[m->n_strings] = bf_xstrdup(PQgetvalue(res, row, col));
	return m->strings[m->n_strings++];
}

static int64_t num(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? -1 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void take_sample(bf_lagmon *m, const PGresult *res)
{
	int n = PQntuples(res);

	clear_sample(m);
	m->standbys = bf_xcalloc((size_t)n + 1, sizeof(*m->standbys));
	m->slots = bf_xcalloc((size_t)n + 1, sizeof(*m->slots));
	for (int i = 0; i < n; i++) {
		const char *kind = PQgetvalue(res, i, 0);

		if (strcmp(kind, "standby") == 0) {
			m->standbys[m->sample.n_standbys++] = (bf_lag_standby){
			        .name = keep(m, res, i, 1),
			        .state = keep(m, res, i, 2),
			        .replay_bytes = num(res, i, 3),
			        .replay_lag_ms = num(res, i, 4),
			        .reply_age_ms = num(res, i, 5),
			};
		} else if (strcmp(kind, "slot") == 0) {
			m->slots[m->sample.n_slots++] = (bf_lag_slot){
			        .name = keep(m, res, i, 1),
			        .type = keep(m, res, i, 2),
			        .retained_bytes = num(res, i, 3),
			        .active = PQgetvalue(res, i, 6)[0] == 't',
			        .wal_status = keep(m, res, i, 7),
			};
		} else {
			m->sample.archive_backlog = num(res, i, 3);
		}
	}
	m->sample.standbys = m->standbys;
	m->sample.slots = m->slots;
	m->sample.ok = true;
	m->sample.taken_ms = bf_mono_ms();
	if (m->failing) {
		bf_log(BF_LOG_INFO, NULL, "lag signals readable again", NULL);
		m->failing = false;
	}
}

static void backoff(bf_lagmon *m, const char *why)
{
	bf_conn_close(m->conn);
	unreadable(m, why);
	m->retry_ms = m->retry_ms ? m->retry_ms * 2 : 500;
	if (m->retry_ms > RETRY_MAX_MS)
		m->retry_ms = RETRY_MAX_MS;
	m->state = LM_BACKOFF;
	ev_timer_set(&m->retry, (double)m->retry_ms / 1000.0, 0.0);
	ev_timer_start(m->loop, &m->retry);
}

static void probe(bf_lagmon *m)
{
	char err[256];

	m->state = LM_PROBING;
	if (bf_conn_send_simple(m->conn, probe_sql, err, sizeof(err)) != 0)
		backoff(m, err);
}

static void conn_cb(bf_conn *conn, void *owner, bf_conn_event ev, const PGresult *res,
                    const char *err, const PGnotify *notify)
{
	bf_lagmon *m = owner;

	(void)conn;
	(void)notify;
	switch (ev) {
	case BF_CONN_CONNECTED:
		m->retry_ms = 0;
		probe(m);
		break;
	case BF_CONN_RESULT:
		m->state = LM_IDLE;
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			take_sample(m, res);
		else
			unreadable(m, PQresultErrorMessage(res));
		break;
	case BF_CONN_LOST:
		backoff(m, err ? err : "connection lost");
		break;
	case BF_CONN_NOTIFY:
		break;
	}
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	bf_lagmon *m = w->data;

	(void)loop;
	(void)revents;
	switch (m->state) {
	case LM_IDLE:
		probe(m);
		break;
	case LM_PROBING:
		/* the previous probe is still out: a slow answer is an answer, wait for it, but
		 * a stale sample fails closed in the decision (pressure.h) */
	case LM_CONNECTING:
	case LM_BACKOFF:
		break;
	default:
		bf_log(BF_LOG_ERROR, NULL, "lag monitor in an unknown state; reconnecting",
		       "state=%d", (int)m->state);
		backoff(m, "internal: unknown state");
		break;
	}
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	start(w->data);
}

static void start(bf_lagmon *m)
{
	char err[256];

	m->state = LM_CONNECTING;
	if (bf_conn_connect(m->conn, m->database, "backfilld lag", CONNECT_TIMEOUT_MS, err,
	                    sizeof(err)) != 0)
		backoff(m, err);
}

bf_lagmon *bf_lagmon_new(struct ev_loop *loop, const char *database, int64_t interval_ms)
{
	bf_lagmon *m = bf_xcalloc(1, sizeof(*m));

	m->loop = loop;
	m->database = bf_xstrdup(database);
	m->conn = bf_conn_new(loop, "lag", conn_cb, m);
	m->interval_ms = interval_ms;
	ev_init(&m->retry, retry_cb);
	m->retry.data = m;
	ev_timer_init(&m->tick, tick_cb, (double)interval_ms / 1000.0,
	              (double)interval_ms / 1000.0);
	m->tick.data = m;
	ev_timer_start(loop, &m->tick);
	clear_sample(m);
	m->sample.error = "no lag probe has completed yet";
	start(m);
	return m;
}

void bf_lagmon_free(bf_lagmon *m)
{
	if (m == NULL)
		return;
	ev_timer_stop(m->loop, &m->tick);
	ev_timer_stop(m->loop, &m->retry);
	bf_conn_free(m->conn);
	clear_sample(m);
	free(m->database);
	free(m);
}

const char *bf_lagmon_database(const bf_lagmon *m)
{
	return m->database;
}

void bf_lagmon_set_interval(bf_lagmon *m, int64_t interval_ms)
{
	if (interval_ms == m->interval_ms)
		return;
	m->interval_ms = interval_ms;
	ev_timer_stop(m->loop, &m->tick);
	ev_timer_set(&m->tick, (double)interval_ms / 1000.0, (double)interval_ms / 1000.0);
	ev_timer_start(m->loop, &m->tick);
}

const bf_lag_sample *bf_lagmon_sample(const bf_lagmon *m)
{
	return &m->sample;
}
