/*
 * conn.c - an asynchronous libpq connection on a libev loop.
 *
 * A small state machine (closed, connecting, idle, busy) around one PGconn. The io watcher
 * is re-armed from PQsocket() every time it changes, because the descriptor can change during
 * connect (another host, a retry without SSL) and libev must hear of a closed-then-reused
 * number ("the special problem of disappearing file descriptors"). EV_WRITE is armed only
 * while libpq has unsent data, otherwise the loop would spin on an always-writable socket.
 * See STYLE.md, "libev + libpq: known traps".
 */
#include "backfilld/conn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backfilld/log.h"
#include "backfilld/util.h"

enum conn_state { CS_CLOSED, CS_CONNECTING, CS_IDLE, CS_BUSY };

struct bf_conn {
	struct ev_loop *loop;
	char *label;
	bf_conn_cb cb;
	void *owner;
	PGconn *pg;
	enum conn_state state;
	ev_io io;
	int io_fd;
	int io_events;
	ev_timer connect_timer; /* one host's time to answer (see host_timeout_cb) */
	ev_timer deferred;      /* delivers a send failure as BF_CONN_LOST from the loop */
	/* the attempt in progress: its conninfo, the hosts of its list, the first one this
	 * attempt started at, and each host's time to answer */
	char *conninfo, *app_name;
	char *hosts, *ports; /* its host (else hostaddr) and port lists, NULL when not given */
	int n_hosts, host_at;
	double host_timeout_s;
	/* the reconnect policy (conn.h): the outage in progress, recorded once, with whether
	 * it is for good and the pause before the next attempt; how long the last one took */
	bf_conn_retry retry;
	bool recorded, for_good;
	int64_t next_try_ms, down_ms;
	char *deferred_err;
	PGresult *held; /* the result that will be delivered when the query completes */
	unsigned gen;   /* bumped at every close: a callback that closed or reconnected shows */
	int in_cb;
	bool free_pending;
};

static void io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void connect_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void deferred_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void defer_lost(bf_conn *c, const char *why);

bf_conn *bf_conn_new(struct ev_loop *loop, const char *label, bf_conn_cb cb, void *owner)
{
	bf_conn *c = bf_xcalloc(1, sizeof(*c));

	c->loop = loop;
	c->label = bf_xstrdup(label);
	c->cb = cb;
	c->owner = owner;
	c->state = CS_CLOSED;
	c->io_fd = -1;
	ev_init(&c->io, io_cb);
	c->io.data = c;
	ev_init(&c->connect_timer, connect_timeout_cb);
	c->connect_timer.data = c;
	ev_init(&c->deferred, deferred_cb);
	c->deferred.data = c;
	c->retry =
	        (bf_conn_retry){.first_ms = 500, .max_ms = 30000, .seed = (uint32_t)(uintptr_t)c};
	return c;
}

static void really_free(bf_conn *c)
{
	bf_conn_close(c);
	free(c->label);
	free(c->conninfo);
	free(c->app_name);
	free(c->hosts);
	free(c->ports);
	free(c);
}

void bf_conn_free(bf_conn *c)
{
	if (c == NULL)
		return;
	if (c->in_cb > 0) {
		/* freed from its own callback: finish when the callback returns */
		bf_conn_close(c);
		c->free_pending = true;
		return;
	}
	really_free(c);
}

void bf_conn_close(bf_conn *c)
{
	if (c == NULL)
		return;
	ev_io_stop(c->loop, &c->io);
	ev_timer_stop(c->loop, &c->connect_timer);
	ev_timer_stop(c->loop, &c->deferred);
	c->io_fd = -1;
	c->io_events = 0;
	if (c->held) {
		PQclear(c->held);
		c->held = NULL;
	}
	free(c->deferred_err);
	c->deferred_err = NULL;
	if (c->pg) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	if (c->state != CS_CLOSED)
		c->gen++;
	c->state = CS_CLOSED;
}

/* Call the owner. Returns false when the connection was closed, reconnected or freed by the
 * callback, so the caller must not touch it any more. */
static bool dispatch(bf_conn *c, bf_conn_event ev, const PGresult *res, const char *err,
                     const PGnotify *notify)
{
	unsigned gen = c->gen;

	c->in_cb++;
	c->cb(c, c->owner, ev, res, err, notify);
	c->in_cb--;
	if (c->free_pending && c->in_cb == 0) {
		really_free(c);
		return false;
	}
	return c->gen == gen && !c->free_pending;
}

/* An outage begins (once per outage, whoever noticed it): whether it is for good, and the
 * pause before the next attempt. */
static void record_down(bf_conn *c, const char *why, bool for_good)
{
	if (c->recorded)
		return;
	c->recorded = true;
	c->for_good = for_good || bf_conn_error_permanent(why);
	if (c->for_good)
		c->retry.pause_ms = c->retry.max_ms; /* knock, if at all, at the slowest pace */
	c->next_try_ms = bf_conn_retry_down(&c->retry, bf_mono_ms());
}

/* The connection is gone: close it, then tell the owner. */
static void lost(bf_conn *c, const char *why)
{
	char msg[512];
	char *masked = bf_masked(why && *why ? why : "connection lost");

	snprintf(msg, sizeof(msg), "%s", masked);
	free(masked);
	/* libpq messages end with a newline; one log line each */
	size_t n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	bf_conn_close(c);
	record_down(c, msg, false);
	dispatch(c, BF_CONN_LOST, NULL, msg, NULL);
}

/* Arm the io watcher for `events` on the current socket (STYLE.md trap 1). While connecting
 * it is registered anew every time, even with the same number and events: walking a host
 * list, libpq closes one socket and opens the next host's, which the kernel hands back under
 * the same number, and epoll forgot the old one when it was closed ("the special problem of
 * disappearing file descriptors" in libev's manual); the watcher would wait for nothing and
 * a failover through the host list would never complete. */
static void watch(bf_conn *c, int events)
{
	int fd = PQsocket(c->pg);

	if (c->state != CS_CONNECTING && fd == c->io_fd && events == c->io_events &&
	    ev_is_active(&c->io))
		return;
	ev_io_stop(c->loop, &c->io);
	c->io_fd = fd;
	c->io_events = events;
	if (fd < 0)
		return;
	ev_io_set(&c->io, fd, events);
	ev_io_start(c->loop, &c->io);
}

static void notice_receiver(void *arg, const PGresult *res)
{
	bf_conn *c = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	char q[512], l[128];
	int level = sev && strcmp(sev, "WARNING") == 0 ? BF_LOG_WARN : BF_LOG_DEBUG;

	bf_log(level, NULL, "server notice", "conn=%s severity=%s notice=%s",
	       bf_log_q(l, sizeof(l), c->label), sev ? sev : "NOTICE",
	       bf_log_q(q, sizeof(q), msg ? msg : ""));
}

/* The number of items of a comma-separated conninfo list (libpq's host, hostaddr, port). */
static int items(const char *list)
{
	int n = 1;

	for (const char *p = list; *p; p++)
		n += *p == ',';
	return n;
}

/* The items of `list` from the index `first` on, when it has one per host; as it is when it
 * has a single item (a port for every host). */
static const char *from_item(const char *list, int first, int n_hosts)
{
	if (items(list) != n_hosts)
		return list;
	for (; first > 0 && list; first--) {
		list = strchr(list, ',');
		if (list)
			list++;
	}
	return list ? list : "";
}

/* Start an attempt at the hosts of the conninfo from the index `first` on. Our keys come
 * first, so that the operator's conninfo overrides them. Every connection of the daemon
 * wants the primary (batches write; the lag signals and backfillctl's NOTIFY are the
 * primary's): with a list of hosts libpq skips standbys, and a lone standby is refused
 * ("session is read-only") and retried, until a promotion. 0, or -1 with err filled when
 * libpq cannot parse the conninfo. */
static int start_attempt(bf_conn *c, int first, char *err, size_t errlen)
{
	static const char *const ours[][2] = {
	        {"keepalives", "1"},
	        {"keepalives_idle", "10"},
	        {"keepalives_interval", "5"},
	        {"keepalives_count", "3"},
	        {"target_session_attrs", "read-write"},
	};
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(c->conninfo, &msg);
	size_t n = 0, k = 0;
	const char **keys, **vals;

	if (opts == NULL) {
		char *masked = bf_masked(msg ? msg : "out of memory parsing the conninfo");

		snprintf(err, errlen, "%s", masked);
		free(masked);
		PQfreemem(msg);
		n = strlen(err);
		while (n > 0 && err[n - 1] == '\n')
			err[--n] = '\0';
		return -1;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		n++;
	keys = bf_xcalloc(n + BF_ARRAY_LEN(ours) + 2, sizeof(*keys));
	vals = bf_xcalloc(n + BF_ARRAY_LEN(ours) + 2, sizeof(*vals));
	for (size_t i = 0; i < BF_ARRAY_LEN(ours); i++, k++) {
		keys[k] = ours[i][0];
		vals[k] = ours[i][1];
	}
	keys[k] = "fallback_application_name";
	vals[k++] = c->app_name;
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		bool list = strcmp(o->keyword, "host") == 0 ||
		            strcmp(o->keyword, "hostaddr") == 0 || strcmp(o->keyword, "port") == 0;

		if (o->val == NULL)
			continue;
		keys[k] = o->keyword;
		vals[k++] = list ? from_item(o->val, first, c->n_hosts) : o->val;
	}
	c->host_at = first;
	c->pg = PQconnectStartParams(keys, vals, 0);
	free(keys);
	free(vals);
	PQconninfoFree(opts);
	if (c->pg == NULL) {
		snprintf(err, errlen, "out of memory starting a connection");
		return -1;
	}
	c->state = CS_CONNECTING;
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		/* anything that fails at once (a Unix socket file missing while the server is
		 * down, a name that does not resolve) is a failed attempt like a refused TCP
		 * connect, reported as lost from the loop and retried by the owner */
		char *why = bf_xstrdup(PQerrorMessage(c->pg));

		PQfinish(c->pg);
		c->pg = NULL;
		defer_lost(c, why);
		free(why);
		return 0;
	}
	watch(c, EV_WRITE);
	ev_timer_set(&c->connect_timer, c->host_timeout_s, 0.0);
	ev_timer_start(c->loop, &c->connect_timer);
	return 0;
}

/* libpq takes a bare word for a database name ("app"): as a conninfo, dbname='app'. */
static char *bare_dbname(const char *conninfo)
{
	bf_sbuf sb = {0};

	if (strchr(conninfo, '=') || strncmp(conninfo, "postgresql://", 13) == 0 ||
	    strncmp(conninfo, "postgres://", 11) == 0)
		return bf_xstrdup(conninfo);
	bf_sbuf_append(&sb, "dbname='");
	for (const char *p = conninfo; *p; p++)
		bf_sbuf_printf(&sb, "%s%c", *p == '\'' || *p == '\\' ? "\\" : "", *p);
	bf_sbuf_append(&sb, "'");
	return bf_sbuf_steal(&sb);
}

/* A conninfo (or a bare database name) as libpq parses it; NULL when it does not. */
static PQconninfoOption *parse(const char *conninfo)
{
	char *msg = NULL, *c = bare_dbname(conninfo);
	PQconninfoOption *opts = PQconninfoParse(c, &msg);

	PQfreemem(msg);
	free(c);
	return opts;
}

/* The value given for `key` in parsed options, or NULL. */
static const char *opt(const PQconninfoOption *opts, const char *key)
{
	for (const PQconninfoOption *o = opts; o && o->keyword; o++)
		if (o->val && strcmp(o->keyword, key) == 0)
			return o->val;
	return NULL;
}

static char *dup_opt(const char *s)
{
	return s ? bf_xstrdup(s) : NULL;
}

int bf_conn_connect(bf_conn *c, const char *conninfo, const char *application_name,
                    int connect_timeout_ms, char *err, size_t errlen)
{
	PQconninfoOption *opts = parse(conninfo); /* start_attempt says what does not parse */
	const char *hosts = opt(opts, "host") ? opt(opts, "host") : opt(opts, "hostaddr");
	const char *timeout = opt(opts, "connect_timeout");

	bf_conn_close(c);
	free(c->conninfo);
	free(c->app_name);
	free(c->hosts);
	free(c->ports);
	c->conninfo = bare_dbname(conninfo);
	c->app_name = bf_xstrdup(application_name);
	c->hosts = dup_opt(hosts);
	c->ports = dup_opt(opt(opts, "port"));
	c->recorded = false;
	c->n_hosts = hosts ? items(hosts) : 1;
	/* libpq's own rule for connect_timeout (per host, at least 2 s), which it applies to
	 * blocking connects only */
	c->host_timeout_s = (double)connect_timeout_ms / 1000.0;
	if (timeout && atoi(timeout) > 0)
		c->host_timeout_s = atoi(timeout) < 2 ? 2.0 : (double)atoi(timeout);
	PQconninfoFree(opts);
	if (start_attempt(c, 0, err, errlen) != 0) {
		record_down(c, err, true); /* a conninfo libpq cannot parse: no retry mends it */
		return -1;
	}
	return 0;
}

static void connect_poll(bf_conn *c)
{
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		watch(c, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		watch(c, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		ev_timer_stop(c->loop, &c->connect_timer);
		if (PQsetnonblocking(c->pg, 1) != 0) {
			lost(c, PQerrorMessage(c->pg));
			return;
		}
		PQsetNoticeReceiver(c->pg, notice_receiver, c);
		c->down_ms = bf_conn_retry_up(&c->retry, bf_mono_ms());
		c->recorded = false;
		c->state = CS_IDLE;
		watch(c, EV_READ);
		dispatch(c, BF_CONN_CONNECTED, NULL, NULL, NULL);
		return;
	case PGRES_POLLING_FAILED:
	default:
		lost(c, PQerrorMessage(c->pg));
		return;
	}
}

/* The index in the host list of the host libpq is trying now, from where this attempt
 * started; host_at when it cannot tell. */
static int current_host(bf_conn *c)
{
	const char *host = PQhost(c->pg), *port = PQport(c->pg);

	for (int i = c->host_at; host && c->hosts && i < c->n_hosts; i++) {
		const char *h = from_item(c->hosts, i, c->n_hosts);
		const char *p = c->ports ? from_item(c->ports, i, c->n_hosts) : NULL;
		size_t hl = strcspn(h, ",");

		if (strlen(host) == hl && strncmp(h, host, hl) == 0 &&
		    (p == NULL || port == NULL || strncmp(p, port, strcspn(p, ",")) == 0))
			return i;
	}
	return c->host_at;
}

/* A host did not answer within its time (libpq applies connect_timeout to blocking connects
 * only): go on with the next host of the list, as a blocking connect would; after the last,
 * the attempt has failed. */
static void connect_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	bf_conn *c = w->data;
	int next = current_host(c) + 1;
	char err[512], q[128];

	(void)loop;
	(void)revents;
	if (next >= c->n_hosts) {
		lost(c, "timed out while connecting");
		return;
	}
	bf_log(BF_LOG_WARN, NULL, "a host did not answer in time: trying the next of the list",
	       "conn=%s host=%s timeout=%.0fs", bf_log_q(q, sizeof(q), c->label),
	       PQhost(c->pg) ? PQhost(c->pg) : "?", c->host_timeout_s);
	ev_io_stop(c->loop, &c->io);
	c->io_fd = -1;
	PQfinish(c->pg);
	c->pg = NULL;
	if (start_attempt(c, next, err, sizeof(err)) != 0)
		lost(c, err);
}

/* Report `why` as BF_CONN_LOST from the loop, not from inside the owner's call: the owner
 * hears of every failed attempt or send the same way, through its callback. */
static void defer_lost(bf_conn *c, const char *why)
{
	free(c->deferred_err);
	c->deferred_err = bf_xstrdup(why);
	ev_io_stop(c->loop, &c->io);
	ev_timer_set(&c->deferred, 0.0, 0.0);
	ev_timer_start(c->loop, &c->deferred);
}

static void deferred_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	bf_conn *c = w->data;
	char msg[512];

	(void)loop;
	(void)revents;
	snprintf(msg, sizeof(msg), "%s", c->deferred_err ? c->deferred_err : "send failed");
	lost(c, msg);
}

/* Drain the notifications libpq has read. Returns false when the owner closed us. */
static bool drain_notifies(bf_conn *c)
{
	PGnotify *n;

	while (c->pg && (n = PQnotifies(c->pg)) != NULL) {
		bool alive = dispatch(c, BF_CONN_NOTIFY, NULL, NULL, n);
		PQfreemem(n);
		if (!alive)
			return false;
	}
	return true;
}

/* Collect results while libpq can give them without blocking; deliver at the end. */
static void read_results(bf_conn *c)
{
	while (!PQisBusy(c->pg)) {
		PGresult *r = PQgetResult(c->pg);
		if (r == NULL) {
			PGresult *done = c->held;
			c->held = NULL;
			c->state = CS_IDLE;
			watch(c, EV_READ);
			dispatch(c, BF_CONN_RESULT, done, NULL, NULL);
			PQclear(done);
			return;
		}
		ExecStatusType st = PQresultStatus(r);
		bool is_error = st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE;
		bool held_error = c->held && (PQresultStatus(c->held) == PGRES_FATAL_ERROR ||
		                              PQresultStatus(c->held) == PGRES_BAD_RESPONSE);
		if (held_error && !is_error) {
			PQclear(r); /* the first error wins */
		} else {
			PQclear(c->held);
			c->held = r;
		}
	}
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	bf_conn *c = w->data;

	(void)loop;
	if (c->state == CS_CONNECTING) {
		connect_poll(c);
		return;
	}
	if (c->state == CS_CLOSED)
		return;
	if (revents & EV_WRITE) {
		int f = PQflush(c->pg);
		if (f < 0) {
			lost(c, PQerrorMessage(c->pg));
			return;
		}
		watch(c, f == 1 ? EV_READ | EV_WRITE : EV_READ);
	}
	if (revents & EV_READ) {
		if (!PQconsumeInput(c->pg) || PQstatus(c->pg) == CONNECTION_BAD) {
			lost(c, PQerrorMessage(c->pg));
			return;
		}
		if (!drain_notifies(c))
			return;
		if (c->state == CS_BUSY)
			read_results(c);
	}
}

/* After PQsend*: mark busy and flush what libpq could not write yet. */
static int after_send(bf_conn *c, int ok)
{
	/* A dead connection shows here first: report it the one way owners expect. */
	c->state = CS_BUSY;
	if (!ok) {
		defer_lost(c, PQerrorMessage(c->pg));
		return 0;
	}
	int f = PQflush(c->pg);
	if (f < 0) {
		defer_lost(c, PQerrorMessage(c->pg));
		return 0;
	}
	watch(c, f == 1 ? EV_READ | EV_WRITE : EV_READ);
	return 0;
}

static int check_idle(bf_conn *c, char *err, size_t errlen)
{
	if (c->state != CS_IDLE) {
		snprintf(err, errlen, "connection %s is not ready for a query", c->label);
		return -1;
	}
	return 0;
}

int bf_conn_send_simple(bf_conn *c, const char *sql, char *err, size_t errlen)
{
	if (check_idle(c, err, errlen) < 0)
		return -1;
	return after_send(c, PQsendQuery(c->pg, sql));
}

int bf_conn_send_params(bf_conn *c, const char *sql, int nparams, const char *const *values,
                        char *err, size_t errlen)
{
	if (check_idle(c, err, errlen) < 0)
		return -1;
	return after_send(c, PQsendQueryParams(c->pg, sql, nparams, NULL, values, NULL, NULL, 0));
}

int bf_conn_send_prepare(bf_conn *c, const char *name, const char *sql, char *err, size_t errlen)
{
	if (check_idle(c, err, errlen) < 0)
		return -1;
	return after_send(c, PQsendPrepare(c->pg, name, sql, 0, NULL));
}

int bf_conn_send_prepared(bf_conn *c, const char *name, int nparams, const char *const *values,
                          char *err, size_t errlen)
{
	if (check_idle(c, err, errlen) < 0)
		return -1;
	return after_send(c, PQsendQueryPrepared(c->pg, name, nparams, values, NULL, NULL, 0));
}

void bf_conn_cancel(bf_conn *c)
{
	char errbuf[256], l[128];
	pid_t pid;

	if (c->state != CS_BUSY || c->pg == NULL)
		return;
	PGcancel *cancel = PQgetCancel(c->pg);
	if (cancel == NULL)
		return;
	/* libpq 15's cancel blocks (a connection to the server and an answer): a child sends
	 * it, so the loop goes on and the shutdown deadline holds even when the server does not
	 * answer. The child touches only the cancel object, never the PGconn (PQcancel is made
	 * for signal handlers), and exits; the default loop reaps it. */
	pid = fork();
	if (pid == 0) {
		if (!PQcancel(cancel, errbuf, sizeof(errbuf)))
			bf_log(BF_LOG_WARN, NULL, "cancel request failed", "conn=%s error=%s",
			       bf_log_q(l, sizeof(l), c->label), errbuf);
		_exit(0);
	}
	if (pid < 0 && !PQcancel(cancel, errbuf, sizeof(errbuf)))
		bf_log(BF_LOG_WARN, NULL, "cancel request failed", "conn=%s",
		       bf_log_q(l, sizeof(l), c->label));
	PQfreeCancel(cancel);
}

bool bf_conn_is_ready(const bf_conn *c)
{
	return c->state == CS_IDLE;
}

bool bf_conn_is_busy(const bf_conn *c)
{
	return c->state == CS_BUSY;
}

bool bf_conn_is_open(const bf_conn *c)
{
	return c->state != CS_CLOSED;
}

int bf_conn_backend_pid(const bf_conn *c)
{
	return c->pg && c->state != CS_CONNECTING ? PQbackendPID(c->pg) : 0;
}

PGconn *bf_conn_pg(bf_conn *c)
{
	return c->state == CS_IDLE || c->state == CS_BUSY ? c->pg : NULL;
}

bool bf_conn_error_permanent(const char *err)
{
	static const char *const permanent[] = {
	        "password authentication failed", /* 28P01 */
	        "authentication failed for user", /* ident, peer, ... (28000) */
	        "no pg_hba.conf entry",           /* 28000 */
	        "does not exist",                 /* database (3D000) or role (28000) */
	        "invalid connection option",      /* a key libpq does not know */
	        "invalid integer value",          /* port=abc, connect_timeout=x, ... */
	        "invalid port number",
	};

	for (size_t i = 0; err && i < BF_ARRAY_LEN(permanent); i++)
		if (strstr(err, permanent[i]) != NULL)
			return true;
	return false;
}

bf_conn_fate bf_conn_sqlstate_fate(const char *sqlstate)
{
	static const char *const transient[] = {"55P03", "57014", "40P01", "40001"};

	if (sqlstate == NULL)
		return BF_FATE_FATAL;
	for (size_t i = 0; i < BF_ARRAY_LEN(transient); i++)
		if (strcmp(sqlstate, transient[i]) == 0)
			return BF_FATE_TRANSIENT;
	if (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57P", 3) == 0 ||
	    strcmp(sqlstate, "53300") == 0)
		return BF_FATE_LOST;
	return BF_FATE_FATAL;
}

const char *bf_conn_transient_name(const char *sqlstate)
{
	if (strcmp(sqlstate, "55P03") == 0)
		return "lock_timeout";
	if (strcmp(sqlstate, "57014") == 0)
		return "statement_timeout";
	if (strcmp(sqlstate, "40P01") == 0)
		return "deadlock";
	return "serialization failure";
}

char *bf_conn_error_text(const PGresult *res)
{
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (msg == NULL)
		return bf_xstrdup(PQresultErrorMessage(res));
	return bf_xasprintf("%s (SQLSTATE %s)%s%s%s%s", msg, code ? code : "?",
	                    detail ? "; detail: " : "", detail ? detail : "",
	                    hint ? "; hint: " : "", hint ? hint : "");
}

int bf_conn_result_number(const PGresult *res, double *out, char *why, size_t len)
{
	char *end = NULL;
	double v;

	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

		snprintf(why, len, "%s", msg ? msg : res ? PQresultErrorMessage(res) : "no result");
		return -1;
	}
	if (PQntuples(res) != 1 || PQnfields(res) != 1 || PQgetisnull(res, 0, 0)) {
		snprintf(why, len, "it must return one number, got %d rows of %d columns%s",
		         PQntuples(res), PQnfields(res),
		         PQntuples(res) == 1 && PQnfields(res) == 1 ? " (NULL)" : "");
		return -1;
	}
	v = strtod(PQgetvalue(res, 0, 0), &end);
	if (end == PQgetvalue(res, 0, 0) || *end != '\0' || !isfinite(v)) {
		snprintf(why, len, "it must return a number, got \"%.60s\"", PQgetvalue(res, 0, 0));
		return -1;
	}
	*out = v;
	return 0;
}

int64_t bf_conn_retry_down(bf_conn_retry *r, int64_t now_ms)
{
	int64_t jitter;

	if (r->down_since_ms == 0)
		r->down_since_ms = now_ms > 0 ? now_ms : 1;
	r->pause_ms = r->pause_ms == 0 ? r->first_ms : r->pause_ms * 2;
	if (r->pause_ms > r->max_ms)
		r->pause_ms = r->max_ms;
	r->seed = r->seed * 1664525U + 1013904223U; /* a small LCG: spread, not secrecy */
	jitter = (int64_t)((r->seed >> 8) % 1024) * (r->pause_ms / 4) / 1024;
	return r->pause_ms - jitter;
}

int64_t bf_conn_retry_up(bf_conn_retry *r, int64_t now_ms)
{
	int64_t down = r->down_since_ms ? now_ms - r->down_since_ms : 0;

	r->pause_ms = 0;
	r->down_since_ms = 0;
	return down;
}

/* "host|hostaddr|port" of a conninfo, each after the PG* default; NULL when it does not
 * parse. */
static char *server_of(const char *conninfo)
{
	PQconninfoOption *opts = parse(conninfo);
	const char *host = opt(opts, "host") ? opt(opts, "host") : getenv("PGHOST");
	const char *addr = opt(opts, "hostaddr") ? opt(opts, "hostaddr") : getenv("PGHOSTADDR");
	const char *port = opt(opts, "port") ? opt(opts, "port") : getenv("PGPORT");
	char *key;

	if (opts == NULL)
		return NULL;
	key = bf_xasprintf("%s|%s|%s", host ? host : "", addr ? addr : "", port ? port : "5432");
	PQconninfoFree(opts);
	return key;
}

bool bf_conn_same_server(const char *a, const char *b)
{
	char *ka, *kb;
	bool same;

	if (strcmp(a, b) == 0)
		return true;
	ka = server_of(a);
	kb = server_of(b);
	same = ka && kb && strcmp(ka, kb) == 0;
	free(ka);
	free(kb);
	return same;
}

void bf_conn_set_retry(bf_conn *c, int64_t first_ms, int64_t max_ms)
{
	c->retry.first_ms = first_ms;
	c->retry.max_ms = max_ms;
}

int64_t bf_conn_drop(bf_conn *c, const char *why)
{
	char *masked = bf_masked(why && *why ? why : "connection lost");

	bf_conn_close(c);
	record_down(c, masked, false);
	free(masked);
	return c->next_try_ms;
}

bool bf_conn_down_for_good(const bf_conn *c)
{
	return c->recorded && c->for_good;
}

int64_t bf_conn_down_ms(const bf_conn *c)
{
	return c->down_ms;
}

char *bf_conn_describe(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	const char *host = NULL, *port = NULL, *db = NULL;
	bf_sbuf sb = {0};

	if (opts == NULL)
		return bf_xstrdup("(unparsable conninfo)");
	for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0 ||
		    (strcmp(o->keyword, "hostaddr") == 0 && !host))
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
	}
	bf_sbuf_append(&sb, host ? host : "default");
	if (port)
		bf_sbuf_printf(&sb, ":%s", port);
	if (db)
		bf_sbuf_printf(&sb, "/%s", db);
	PQconninfoFree(opts);
	return bf_sbuf_steal(&sb);
}
