/*
 * listener.c - the control connection of one database, as a small state machine:
 * connecting -> LISTEN sent -> listening, and back to a backoff timer when the connection
 * goes. Notifications arrive through bf_conn's BF_CONN_NOTIFY event.
 *
 * The style of every asynchronous actor (job.c says why): an explicit state, and one switch
 * over it where the connection's events land, whose fall-through logs and reconnects.
 */
#include "backfilld/listener.h"

#include <stdlib.h>

#include "backfilld/conn.h"
#include "backfilld/log.h"
#include "backfilld/util.h"

#define CHANNEL            "backfilld"
#define CONNECT_TIMEOUT_MS 10000
#define RETRY_FIRST_MS     1000
#define RETRY_MAX_MS       30000

enum lstate { LS_CONNECTING, LS_LISTEN_SENT, LS_LISTENING, LS_BACKOFF };

struct bf_listener {
	struct ev_loop *loop;
	char *database;
	bf_listener_cb cb;
	void *owner;
	bf_conn *conn;
	enum lstate state;
	ev_timer retry;
};

static void start(bf_listener *l);

/* The connection went (or could not be made): wait the connection's pause, then again. */
static void backoff(bf_listener *l, const char *why)
{
	char q[512];
	int64_t ms = bf_conn_drop(l->conn, why);
	bool for_good = bf_conn_down_for_good(l->conn);

	/* refused for good (the jobs on it fail for that): only a reload with another conninfo
	 * mends it, which makes another listener; this one knocks at the slowest pace */
	bf_log(for_good ? BF_LOG_ERROR : BF_LOG_WARN, NULL,
	       for_good ? "control connection refused, retrying will not mend it"
	                : "control connection lost, will retry",
	       "error=%s retry_ms=%lld", bf_log_q(q, sizeof(q), why), (long long)ms);
	l->state = LS_BACKOFF;
	ev_timer_set(&l->retry, (double)ms / 1000.0, 0.0);
	ev_timer_start(l->loop, &l->retry);
}

static const char *const state_names[] = {
        [LS_CONNECTING] = "connecting",
        [LS_LISTEN_SENT] = "listen sent",
        [LS_LISTENING] = "listening",
        [LS_BACKOFF] = "backoff",
};

/* The state machine: every event of the connection lands here. A lost connection and a
 * notification mean the same in any state; the others are expected in one state each, and
 * anywhere else they are logged and the connection made again. */
static void conn_cb(bf_conn *conn, void *owner, bf_conn_event ev, const PGresult *res,
                    const char *err, const PGnotify *notify)
{
	bf_listener *l = owner;
	char e[256];

	(void)conn;
	if (ev == BF_CONN_LOST) {
		backoff(l, err ? err : "connection lost");
		return;
	}
	if (ev == BF_CONN_NOTIFY) {
		l->cb(l, l->database, notify->extra, l->owner);
		return;
	}
	switch (l->state) {
	case LS_CONNECTING:
		if (ev != BF_CONN_CONNECTED)
			break;
		l->state = LS_LISTEN_SENT;
		if (bf_conn_send_simple(l->conn, "LISTEN " CHANNEL, e, sizeof(e)) != 0)
			backoff(l, e);
		return;
	case LS_LISTEN_SENT:
		if (ev != BF_CONN_RESULT)
			break;
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			backoff(l, PQresultErrorMessage(res));
			return;
		}
		l->state = LS_LISTENING;
		bf_log(BF_LOG_DEBUG, NULL, "listening for backfillctl", "channel=" CHANNEL);
		return;
	case LS_LISTENING:
	case LS_BACKOFF:
		break;
	}
	bf_log(BF_LOG_ERROR, NULL, "control connection: unexpected event, reconnecting",
	       "state=%s event=%d", state_names[l->state], (int)ev);
	backoff(l, "internal: unexpected event");
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	start(w->data);
}

static void start(bf_listener *l)
{
	char err[256];

	l->state = LS_CONNECTING;
	if (bf_conn_connect(l->conn, l->database, "backfilld control", CONNECT_TIMEOUT_MS, err,
	                    sizeof(err)) != 0)
		backoff(l, err);
}

bf_listener *bf_listener_new(struct ev_loop *loop, const char *database, bf_listener_cb cb,
                             void *owner)
{
	bf_listener *l = bf_xcalloc(1, sizeof(*l));

	l->loop = loop;
	l->database = bf_xstrdup(database);
	l->cb = cb;
	l->owner = owner;
	l->conn = bf_conn_new(loop, "control", conn_cb, l);
	ev_init(&l->retry, retry_cb);
	l->retry.data = l;
	bf_conn_set_retry(l->conn, RETRY_FIRST_MS, RETRY_MAX_MS);
	start(l);
	return l;
}

void bf_listener_free(bf_listener *l)
{
	if (l == NULL)
		return;
	ev_timer_stop(l->loop, &l->retry);
	bf_conn_free(l->conn);
	free(l->database);
	free(l);
}

const char *bf_listener_database(const bf_listener *l)
{
	return l->database;
}
