/*
 * pace.h - the application's side of back-pressure: how long a commit takes on the server
 * now, and the pace a job keeps so that it stays within the job's budget.
 *
 * What an application commit waits for is the WAL unflushed when it commits (the backfill's
 * included) and the I/O the server does at that moment (checkpoints, evictions). The lag
 * monitor of each server commits a tiny transaction that must be flushed, every check
 * interval, and times it (a probe); bf_commit_stats keeps the last probes and gives a robust
 * recent figure (p90) and an idle baseline (the median of the probes taken while no batch of
 * the server's jobs was in flight).
 *
 * bf_pace is one job's controller over those readings: additive increase (+10 points per
 * probe under the budget, up to 100%), multiplicative decrease (x0.8 per probe over it), never
 * below BF_PACE_FLOOR. The pace is a duty cycle: at pace p a batch that took t ms is followed
 * by a pause of t(1-p)/p ms, so the job writes WAL p of the time. It only slows a job; a probe
 * above BF_PACE_CRITICAL times the budget stops it (the gate throttles) until it is back.
 *
 * Pure: times in microseconds or milliseconds as named, given by the caller.
 */
#ifndef BACKFILLD_PACE_H
#define BACKFILLD_PACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BF_COMMIT_PROBES  20   /* probes kept for the p90 */
#define BF_COMMIT_IDLE    20   /* idle probes kept for the baseline */
#define BF_COMMIT_MIN     5    /* probes before the p90 means anything (the pace waits) */
#define BF_PACE_FLOOR     0.05 /* the slowest pace: 5% of the time */
#define BF_PACE_STEP_UP   0.10
#define BF_PACE_DECREASE  0.80
#define BF_PACE_CRITICAL  4 /* times the budget: throttle instead of slowing */
#define BF_PACE_PAUSE_MAX 60000

/* The commit probes of one server. */
typedef struct bf_commit_stats {
	int64_t us[BF_COMMIT_PROBES]; /* ring of the last probes */
	size_t n, head;
	int64_t idle_us[BF_COMMIT_IDLE]; /* ring of the idle ones */
	size_t n_idle, idle_head;
	uint64_t seq; /* probes taken so far: a new one is a new reading */
} bf_commit_stats;

/* What a job's gate reads (filled by the monitor). ok = false: the last probe failed, with
 * `error` (taken_ms 0: none has ended yet); seq counts the probes. */
typedef struct bf_commit_reading {
	bool ok;
	const char *error;
	uint64_t seq;
	size_t n; /* probes behind the p90 (the last BF_COMMIT_PROBES at most) */
	int64_t p90_us;
	int64_t baseline_us; /* 0 while no idle probe was taken */
	int64_t taken_ms;    /* when the last probe ended or failed; 0: none has yet */
} bf_commit_reading;

/* A probe took `us`; `idle`: no batch of the server's jobs was in flight meanwhile. */
void bf_commit_stats_add(bf_commit_stats *s, int64_t us, bool idle);
int64_t bf_commit_stats_p90(const bf_commit_stats *s);
int64_t bf_commit_stats_baseline(const bf_commit_stats *s);

typedef struct bf_pace {
	double pace;       /* 0 < pace <= 1 */
	uint64_t seen_seq; /* the last reading taken into account */
} bf_pace;

void bf_pace_init(bf_pace *p);
/* A reading (once per new probe: seq tells): the pace moves toward the budget. Returns true
 * when the reading was new and stood on BF_COMMIT_MIN probes at least (a first probe or two,
 * slow while the server warms up, decide nothing). */
bool bf_pace_observe(bf_pace *p, const bf_commit_reading *r, int64_t budget_us);
/* The pause after a batch of `batch_ms` at the current pace. */
int64_t bf_pace_pause_ms(const bf_pace *p, int64_t batch_ms);

/* How long a batch may hold its rows under a commit-latency budget: no longer than the budget,
 * since an application transaction that meets one of them waits for the whole batch, and the
 * probe does not see that wait. For the batch-size controller's target, and for the fast
 * path's wait for a row lock. `target_ms` 0 (a fixed batch size) and `budget_ms` 0 (off)
 * leave the target as it is. */
int64_t bf_pace_batch_target_ms(int64_t target_ms, int64_t budget_ms);
/* The pace as a whole percentage (5..100). */
int bf_pace_percent(const bf_pace *p);

/* "1.2ms", "34ms": a latency in microseconds for a reason or a log line. */
char *bf_pace_format_us(int64_t us, char *buf, size_t len);

#endif
