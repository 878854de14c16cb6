/*
 * metrics.h - the optional Prometheus endpoint (`metrics_listen: HOST:PORT`).
 *
 * Owns a listening TCP socket on the daemon's loop and the connections of its scrapers. Each
 * connection sends one HTTP/1.x request; `GET /metrics` is answered with the text exposition
 * format, anything else with 404, and the connection is closed after the answer (no
 * keep-alive). The figures come from the daemon at the time of the request, through the
 * callback: the endpoint keeps no state of its own about jobs.
 *
 * Promises:
 * - Never blocks the loop: the socket and its connections are non-blocking; a client that
 *   sends nothing or reads nothing is dropped after BF_METRICS_TIMEOUT_MS; at most
 *   BF_METRICS_MAX_CLIENTS connections are served at once (more are closed at once).
 * - bf_metrics_render() is pure (the Check suite tests it): one HELP/TYPE block per metric,
 *   label values escaped as the format requires (\\, \", \n).
 */
#ifndef BACKFILLD_METRICS_H
#define BACKFILLD_METRICS_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "backfilld/state.h"

#define BF_METRICS_TIMEOUT_MS  5000
#define BF_METRICS_MAX_CLIENTS 16

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
} bf_job_figures;

/* The exposition text for these jobs; the caller frees it. */
char *bf_metrics_render(const bf_job_figures *jobs, size_t n);

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
	BF_METRICS_NOT_FOUND, /* any other request: 404 */
	BF_METRICS_TOO_LARGE, /* no blank line within BF_METRICS_HEAD_MAX bytes: 400 */
} bf_metrics_verdict;

/* Add the n bytes that arrived (any bytes, NUL included) and say what is known now. */
bf_metrics_verdict bf_metrics_head_feed(bf_metrics_head *h, const char *data, size_t n);

typedef struct bf_metrics bf_metrics;

/* The body of a 200 answer (malloc'd; the endpoint frees it). */
typedef char *(*bf_metrics_body_cb)(void *owner);

/* Listen on `address` ("HOST:PORT", "[V6]:PORT"). NULL with a message in err when the address
 * does not parse or cannot be bound. */
bf_metrics *bf_metrics_new(struct ev_loop *loop, const char *address, bf_metrics_body_cb cb,
                           void *owner, char *err, size_t errlen);
void bf_metrics_free(bf_metrics *m);

#endif
