/*
 * conn.h - one asynchronous libpq connection driven by a libev loop.
 *
 * Owns a PGconn and its watchers: the non-blocking connect (PQconnectStart/PQconnectPoll with
 * a timer, since libpq's connect_timeout does not apply to polling), sending one query at a
 * time, flushing, reading, draining notifications, and noticing a lost connection. It never
 * blocks the loop (bf_conn_cancel() sends libpq 15's blocking cancel from a child process).
 *
 * Contract with the owner (the role that uses it, a job or a monitor):
 *   - every event arrives through the one callback given to bf_conn_new();
 *   - BF_CONN_RESULT hands the query's result, borrowed: valid until the callback returns,
 *     cleared by the connection. Of several results the first error wins, else the last;
 *   - BF_CONN_LOST says the connection is gone (connect failed, timed out or dropped); the
 *     connection is closed already and the owner decides when to bf_conn_connect() again;
 *   - the callback may send the next query, close, reconnect or even free the connection:
 *     the connection notices and stops touching itself.
 */
#ifndef BACKFILLD_CONN_H
#define BACKFILLD_CONN_H

#include <ev.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct bf_conn bf_conn;

typedef enum bf_conn_event {
	BF_CONN_CONNECTED, /* ready for queries */
	BF_CONN_RESULT,    /* res holds the result of the last query sent */
	BF_CONN_LOST,      /* err says why; the connection is closed */
	BF_CONN_NOTIFY,    /* res is NULL; notify holds a LISTEN notification */
} bf_conn_event;

typedef void (*bf_conn_cb)(bf_conn *conn, void *owner, bf_conn_event ev, const PGresult *res,
                           const char *err, const PGnotify *notify);

/* A closed connection; `label` names it in logs ("job=x", "lag=db"). */
bf_conn *bf_conn_new(struct ev_loop *loop, const char *label, bf_conn_cb cb, void *owner);
void bf_conn_free(bf_conn *conn);

/* Start connecting to `conninfo` (a key=value string or a URI) with TCP keepalives and
 * application_name; the owner's settings win where it sets the same keys. Returns 0 when the
 * attempt started (BF_CONN_CONNECTED or BF_CONN_LOST follows: an attempt that fails at once,
 * such as a Unix socket of a stopped server, is a BF_CONN_LOST from the loop too), -1 with
 * err filled only when libpq cannot parse the conninfo, which no retry mends.
 * connect_timeout_ms bounds the whole attempt. */
int bf_conn_connect(bf_conn *conn, const char *conninfo, const char *application_name,
                    int connect_timeout_ms, char *err, size_t errlen);

/* Send one query; exactly one BF_CONN_RESULT (or BF_CONN_LOST) follows. Only when ready and
 * idle. `simple` sends through the simple protocol (several statements of our own SQL); the
 * others use the extended protocol, which allows one statement only. Return 0 or -1 with err. */
int bf_conn_send_simple(bf_conn *conn, const char *sql, char *err, size_t errlen);
int bf_conn_send_params(bf_conn *conn, const char *sql, int nparams, const char *const *values,
                        char *err, size_t errlen);
int bf_conn_send_prepare(bf_conn *conn, const char *name, const char *sql, char *err,
                         size_t errlen);
int bf_conn_send_prepared(bf_conn *conn, const char *name, int nparams, const char *const *values,
                          char *err, size_t errlen);

/* Close now (no event follows); a no-op when closed. */
void bf_conn_close(bf_conn *conn);

/* Ask the server to cancel the running query, from a short-lived child process (libpq 15's
 * cancel blocks), so the loop never waits for it. Needs the default loop (it reaps). */
void bf_conn_cancel(bf_conn *conn);

bool bf_conn_is_ready(const bf_conn *conn); /* connected and no query in flight */
bool bf_conn_is_busy(const bf_conn *conn);  /* a query in flight */
bool bf_conn_is_open(const bf_conn *conn);  /* connecting or connected */

/* The server's process id, for logs; 0 when closed. */
int bf_conn_backend_pid(const bf_conn *conn);

/* The libpq connection once connected (for PQescapeIdentifier, which needs its encoding),
 * else NULL. Borrowed: never send or read on it directly. */
PGconn *bf_conn_pg(bf_conn *conn);

/* The connection's reconnect policy (below): each outage is recorded once, whoever notices it
 * (the connection: BF_CONN_LOST; its owner: bf_conn_drop), with whether no retry can mend it
 * and the pause before the next attempt; the owner arms its own timer with that pause and
 * calls bf_conn_connect() again. Pauses start at first_ms and double up to max_ms
 * (default 500 ms and 30 s). */
void bf_conn_set_retry(bf_conn *conn, int64_t first_ms, int64_t max_ms);

/* Let the connection go (close it if open) because of `why`, or after BF_CONN_LOST or a
 * failed bf_conn_connect() (the outage already recorded then): the pause before the next
 * attempt. One call for every way a connection goes. */
int64_t bf_conn_drop(bf_conn *conn, const char *why);

/* Whether the outage in progress is permanent (bf_conn_error_permanent, or a conninfo that
 * does not parse): the owner fails what depends on it rather than retrying. */
bool bf_conn_down_for_good(const bf_conn *conn);

/* How long the outage that the last BF_CONN_CONNECTED ended lasted (0: there was none). */
int64_t bf_conn_down_ms(const bf_conn *conn);

/* Whether two conninfos name the same server: the same hosts, addresses and ports once
 * libpq has parsed them and the PG* defaults apply, whatever else differs (key=value or URI,
 * database, user, options). Lag signals are the server's: one monitor serves both. Two
 * names for one host (localhost and 127.0.0.1) still count as two. */
bool bf_conn_same_server(const char *a, const char *b);

/* "host:port/dbname" of a conninfo, as far as it says (the environment may fill the rest;
 * "default" for no host), never its password: for logs and metrics labels. Caller frees. */
char *bf_conn_describe(const char *conninfo);

/* The one reconnect policy of every connection of the daemon (jobs, slices, lag monitors,
 * control listeners), as pgqd's pgs_reconnect: what is permanent, and how long to wait.
 *
 * Permanent: a conninfo libpq cannot parse (bf_conn_connect returns -1), a failed
 * authentication, no pg_hba.conf entry, a database or role that does not exist: no retry
 * mends them, an operator must (a reload with the new conninfo does). Everything else (a
 * socket missing, a refused or dropped connection, DNS, starting up, shutting down, a
 * read-only server after a failover) is transient. The server words its refusals in its
 * lc_messages language: in another language than English they count as transient, which
 * keeps retrying rather than giving up. */
bool bf_conn_error_permanent(const char *err);

/* What a query's SQLSTATE says of the query's fate. Transient: lock_timeout, a cancel
 * (statement_timeout), a deadlock or a serialization failure: the same statement may
 * succeed if sent again later. Lost: the connection or the server went (08xxx, 57Pxx, too
 * many connections): reconnect. Anything else is the statement's own fault. */
typedef enum bf_conn_fate { BF_FATE_FATAL, BF_FATE_TRANSIENT, BF_FATE_LOST } bf_conn_fate;
bf_conn_fate bf_conn_sqlstate_fate(const char *sqlstate);
/* "lock_timeout", "statement_timeout", "deadlock" or "serialization failure". */
const char *bf_conn_transient_name(const char *sqlstate);
/* One line from a server error (malloc'd): the primary message with its SQLSTATE, and the
 * detail (which key a unique violation hit, ...) and hint when given. */
char *bf_conn_error_text(const PGresult *res);

/* The one number a query returned (a throttle_query): 0 and *out, or -1 with why (the
 * server's error, or what came instead of one row of one numeric column). */
int bf_conn_result_number(const PGresult *res, double *out, char *why, size_t len);

typedef struct bf_conn_retry {
	int64_t first_ms, max_ms; /* the first pause, and the cap of the doubling */
	int64_t pause_ms;         /* the last pause given, before jitter; 0 while up */
	int64_t down_since_ms;    /* monotonic; 0 while up */
	uint32_t seed;            /* the jitter's generator state */
} bf_conn_retry;

/* An attempt failed or the connection was lost at now_ms: the pause before the next attempt,
 * first_ms doubled at each failure in a row up to max_ms, less up to a quarter at random,
 * so that the connections of many daemons do not knock in step on a server coming back. */
int64_t bf_conn_retry_down(bf_conn_retry *r, int64_t now_ms);

/* Connected at now_ms: how long the connection was down (0: it was not), and the next
 * failure starts from first_ms again. */
int64_t bf_conn_retry_up(bf_conn_retry *r, int64_t now_ms);

#endif
