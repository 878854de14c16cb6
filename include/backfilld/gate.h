/*
 * gate.h - may the next batch run now? One decision over the latest readings of every
 * signal that can hold a job back.
 *
 * The signals, in the order they are asked: the job's `window` (in the server's local time,
 * from a reading of the server's clock), the lag limits (the server's lag monitor's latest
 * sample), the job's own throttle_query (the number it returned, against throttle_above),
 * the commit latency (the monitor's commit probes, through the job's pace: pace.h), the WAL
 * rate (max_wal_rate, a bucket of the server's, shared by its jobs and their slices), the rate
 * cap (a token bucket). The window, the lag and the throttle_query stop a job (throttled); the
 * commit latency slows it (a pause after each batch) and stops it only past BF_PACE_CRITICAL times
 * its budget; the rate cap spaces its batches. Each reading is refreshed by whoever owns the
 * connection it comes from (the job reads the server's clock on its own connection, the lag
 * monitor probes on its own) and handed in; the gate keeps only what its decisions need to
 * remember (the clock reading, the lag hysteresis, the bucket).
 *
 * A new signal is a field of bf_gate_readings, a rule in bf_gate_decide(), its key in
 * config.c and its reader (a signal of the server: the lag monitor, which fills the
 * readings, bf_lagmon_readings): the job, which only hands the readings over, does not
 * change.
 *
 * Promises: no I/O; times are bf_mono_ms(); a reason is given for every throttle.
 */
#ifndef BACKFILLD_GATE_H
#define BACKFILLD_GATE_H

#include <stdbool.h>
#include <stdint.h>

#include "backfilld/bucket.h"
#include "backfilld/config.h"
#include "backfilld/pace.h"
#include "backfilld/pressure.h"
#include "backfilld/state.h"

/* How long to wait for a lag monitor's first sample before asking again. */
#define BF_GATE_FIRST_SAMPLE_MS 50

typedef struct bf_gate {
	/* the server's wall clock in ms (see bf_sql_server_clock) as read at clock_at */
	int64_t clock_ms, clock_at;
	bool clock_known;
	bool lag_throttled;             /* the last lag decision throttled (its hysteresis input) */
	bf_bucket bucket;               /* max_rows_per_second */
	bf_pace pace;                   /* max_commit_latency */
	int64_t batch_end_ms, batch_ms; /* the last batch: when it ended, how long it took */
} bf_gate;

/* The latest number a job's throttle_query returned. ok = false: it failed, with `error`
 * (taken_ms 0: it has not run yet). */
typedef struct bf_query_reading {
	bool ok;
	const char *error;
	double value;
	int64_t taken_ms;
} bf_query_reading;

/* The latest readings handed in at each decision (NULL: no such signal for this job). */
typedef struct bf_gate_readings {
	const bf_lag_sample *lag;
	const bf_commit_reading *commit;
	const bf_query_reading *query;
	int64_t wal_wait_ms; /* the server's WAL bucket: how long until the next batch's WAL fits */
} bf_gate_readings;

typedef enum bf_gate_kind {
	BF_GATE_GO,        /* not held back: run after wait_ms (the rate cap's or the pace's,
	                    * often 0); a reason when the pace slows the job */
	BF_GATE_THROTTLED, /* held back for `reason`: ask again after wait_ms */
	BF_GATE_UNKNOWN,   /* a reading is not there yet: ask again after wait_ms, state as is */
} bf_gate_kind;

typedef struct bf_gate_verdict {
	bf_gate_kind kind;
	int64_t wait_ms;
	bf_hold hold; /* what holds the job back (throttled, or a wait > 0), for the metrics */
	char reason[512];
} bf_gate_verdict;

void bf_gate_init(bf_gate *g, const bf_job_config *cfg, int64_t now);
/* The configuration was reloaded: the rate cap follows. */
void bf_gate_retune(bf_gate *g, const bf_job_config *cfg, int64_t now);

/* Does the window need a fresh reading of the server's clock (none yet, or older than
 * BF_WINDOW_RECHECK_MS, so that a daylight saving change shows within a minute)? */
bool bf_gate_wants_clock(const bf_gate *g, const bf_job_config *cfg, int64_t now);
void bf_gate_set_clock(bf_gate *g, int64_t server_ms, int64_t now);

/* The decision for a batch of `rows` keys now. */
bf_gate_verdict bf_gate_decide(bf_gate *g, const bf_job_config *cfg, const bf_gate_readings *r,
                               int64_t now, int64_t rows);

/* The keys the next batch asks for: the controller's `batch_size`, scaled down by the pace
 * (WAL per batch: an application commit waits for the WAL written before it), not below
 * `min` (the batch's own overhead). */
int64_t bf_gate_batch_keys(const bf_gate *g, const bf_job_config *cfg, int64_t batch_size,
                           int64_t min);

/* A batch that took `ms` updated `rows`: the rate cap counts them, the pace pauses after it. */
void bf_gate_took(bf_gate *g, int64_t now, int64_t rows, int64_t ms);

#endif
