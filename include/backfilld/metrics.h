/*
 * metrics.h - the optional Prometheus endpoint (`metrics_listen: HOST:PORT`).
 *
 * Owns a listening TCP socket on the daemon's loop and the connections of its scrapers. Each
 * connection sends one HTTP/1.x request; `GET /metrics` is answered with the text exposition
 * format, `GET /healthz` with 200 "ok" (the loop turns: it answered), anything else with 404,
 * and the connection is closed after the answer (no keep-alive). The figures come from the
 * daemon at the time of the request, through the callback: the endpoint keeps no state of its
 * own about jobs.
 *
 * Also the words of the page (Prometheus naming: counters end in _total, units in the name),
 * and what a job counts for it (bf_job_counts: batches, errors by class, held-back time by
 * reason, the batch-duration histogram), since the daemon started.
 *
 * Promises:
 * - Never blocks the loop: the socket and its connections are non-blocking; a client that
 *   sends nothing or reads nothing is dropped after BF_METRICS_TIMEOUT_MS; at most
 *   BF_METRICS_MAX_CLIENTS connections are held at once: a new one then takes the place of
 *   the oldest that has not sent its request yet (so idle connections never lock a scrape
 *   out), and is closed at once only when every connection is being answered.
 * - bf_metrics_render() is pure (the Check suite tests it): one HELP/TYPE block per metric
 *   family, every family always there (a family without series is only its HELP and TYPE),
 *   label values escaped as the format requires (\\, \", \n), no two series with the same
 *   labels.
 */
#ifndef BACKFILLD_METRICS_H
#define BACKFILLD_METRICS_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backfilld/pressure.h"
#include "backfilld/state.h"

#define BF_METRICS_TIMEOUT_MS  5000
#define BF_METRICS_MAX_CLIENTS 16

/* The upper bounds of backfilld_batch_duration_seconds's buckets, in ms (+Inf follows). */
#define BF_METRICS_N_BUCKETS 12
extern const int64_t bf_metrics_bucket_ms[BF_METRICS_N_BUCKETS];

/* The classes of backfilld_errors_total{class=...}. */
typedef enum bf_error_class {
	BF_ERR_LOCK_TIMEOUT,      /* 55P03: a row or lock the application held */
	BF_ERR_STATEMENT_TIMEOUT, /* 57014 */
	BF_ERR_CONFLICT,          /* 40001, 40P01: serialization failure, deadlock */
	BF_ERR_CONNECTION,        /* the connection failed or went */
	BF_ERR_OTHER,             /* anything else the server said */
} bf_error_class;

#define BF_ERR_N (BF_ERR_OTHER + 1)

/* The class of a server error by its SQLSTATE. */
bf_error_class bf_metrics_error_class(const char *sqlstate);

/* What a job counted since the daemon started (its slices count into it). */
typedef struct bf_job_counts {
	int64_t batches;                       /* committed */
	int64_t batch_ms_sum;                  /* their round trips */
	int64_t buckets[BF_METRICS_N_BUCKETS]; /* batches per bucket, not cumulative */
	int64_t errors[BF_ERR_N];
	int64_t held_ms[BF_HOLD_N]; /* time held back, per reason (state.h); NONE unused */
} bf_job_counts;

/* A batch committed after a round trip of `ms`. */
void bf_job_counts_batch(bf_job_counts *c, int64_t ms);

/* What one job shows, as of now (filled by bf_job_figures_of). */
typedef struct bf_job_figures {
	const char *name;
	bf_job_state state;
	int64_t rows_done;
	int64_t rows_estimate;
	double rows_per_second; /* over the last minute */
	int64_t batch_size;
	int64_t last_batch_ms;
	int pass;
	double pace;           /* 0.05..1 (pace.h) */
	int64_t commit_p90_us; /* the server's commit probes; 0 when none */
	int64_t backup_bytes;  /* backup: true, its table's size as last read; 0 when none */
	int64_t undo_rows, undo_skipped; /* backfillctl undo: rows put back, rows left */
	bf_job_counts counts;            /* held_ms includes the holds still going on */
} bf_job_figures;

/* What one server shows: database is "host:port/dbname" (no password); lag is its lag
 * monitor's latest sample, NULL when the server has no monitor. */
typedef struct bf_server_figures {
	const char *database;
	bool up; /* every connection to it that should be open is */
	const bf_lag_sample *lag;
} bf_server_figures;

typedef struct bf_metrics_page {
	const bf_job_figures *jobs;
	size_t n_jobs;
	const bf_server_figures *servers; /* distinct databases */
	size_t n_servers;
} bf_metrics_page;

/* The exposition text of this page; the caller frees it. */
char *bf_metrics_render(const bf_metrics_page *page);

/* The request head of one scraper as it arrives, in pieces, and what to answer once it is
 * whole. Pure (fuzzed: tests/fuzz). A head ends at its blank line; one longer than
 * BF_METRICS_HEAD_MAX is not read further. */
#define BF_METRICS_HEAD_MAX 4096
typedef struct bf_metrics_head {
	char buf[BF_METRICS_HEAD_MAX];
	size_t len;
} bf_metrics_head;

typedef enum bf_metrics_verdict {
	BF_METRICS_MORE,      /* not whole yet: read on */
	BF_METRICS_SCRAPE,    /* GET /metrics: 200 with the figures */
	BF_METRICS_HEALTH,    /* GET /healthz: 200 "ok" */
	BF_METRICS_NOT_FOUND, /* any other request: 404 */
	BF_METRICS_TOO_LARGE, /* no blank line within BF_METRICS_HEAD_MAX bytes: 400 */
} bf_metrics_verdict;

/* Add the n bytes that arrived (any bytes, NUL included) and say what is known now. */
bf_metrics_verdict bf_metrics_head_feed(bf_metrics_head *h, const char *data, size_t n);

typedef struct bf_metrics bf_metrics;

/* The body of a 200 answer (malloc'd; the endpoint frees it). */
typedef char *(*bf_metrics_body_cb)(void *owner);

/* Listen on `address` ("HOST:PORT", "[V6]:PORT", ":PORT" for every address). NULL with a message in
 * err when the address does not parse or cannot be bound. */
bf_metrics *bf_metrics_new(struct ev_loop *loop, const char *address, bf_metrics_body_cb cb,
                           void *owner, char *err, size_t errlen);
void bf_metrics_free(bf_metrics *m);

#endif
