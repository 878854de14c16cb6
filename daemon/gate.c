/*
 * gate.c - the decision whether the next batch may run (gate.h).
 *
 * The window comes first: outside it nothing runs, whatever the lag says, and its wait is
 * capped at BF_WINDOW_RECHECK_MS so the server's clock is read again before the window
 * opens. The lag comes next, with its hysteresis (bf_pressure_decide), then the job's own
 * throttle_query: the signals that stop a job. The commit latency slows it (the pace, which
 * stops it only past BF_PACE_CRITICAL times the budget). The WAL budget and the rate cap come
 * last: they never throttle, they only space the batches.
 */
#include "backfilld/gate.h"

#include <stdio.h>
#include <time.h>

#include "backfilld/window.h"

void bf_gate_init(bf_gate *g, const bf_job_config *cfg, int64_t now)
{
	*g = (bf_gate){0};
	bf_bucket_init(&g->bucket, cfg->max_rows_per_second, now);
	bf_pace_init(&g->pace);
}

void bf_gate_retune(bf_gate *g, const bf_job_config *cfg, int64_t now)
{
	bf_bucket_set_rate(&g->bucket, cfg->max_rows_per_second, now);
}

bool bf_gate_wants_clock(const bf_gate *g, const bf_job_config *cfg, int64_t now)
{
	return cfg->window.set && (!g->clock_known || now - g->clock_at >= BF_WINDOW_RECHECK_MS);
}

void bf_gate_set_clock(bf_gate *g, int64_t server_ms, int64_t now)
{
	g->clock_ms = server_ms;
	g->clock_at = now;
	g->clock_known = true;
}

/* Milliseconds until the window opens, by the server's wall clock now: as read, plus the
 * time since on our own clock. */
static int64_t window_wait(const bf_gate *g, const bf_window *w, int64_t now)
{
	time_t t = (time_t)((g->clock_ms + now - g->clock_at) / 1000);
	struct tm lt;

	gmtime_r(&t, &lt);
	return bf_window_ms_until_open(w, &lt);
}

/* The job's own signal: its throttle_query's number against throttle_above; a query that
 * fails or has not run yet holds the job (fail closed). */
static bool query_throttles(const bf_job_config *cfg, const bf_query_reading *q, bf_gate_verdict *v)
{
	if (!q->ok && q->taken_ms == 0) {
		v->kind = BF_GATE_UNKNOWN;
		v->wait_ms = BF_GATE_FIRST_SAMPLE_MS;
		return true;
	}
	v->kind = BF_GATE_THROTTLED;
	v->hold = BF_HOLD_THROTTLE_QUERY;
	v->wait_ms = cfg->lag.check_interval_ms;
	if (!q->ok) {
		snprintf(v->reason, sizeof(v->reason), "throttle_query failed: %s",
		         q->error ? q->error : "unknown error");
		return true;
	}
	if (q->value > cfg->throttle_above) {
		snprintf(v->reason, sizeof(v->reason), "throttle_query %g > %g", q->value,
		         cfg->throttle_above);
		return true;
	}
	v->kind = BF_GATE_GO;
	v->hold = BF_HOLD_NONE;
	v->wait_ms = 0;
	return false;
}

/* The commit latency against the budget: true when it decides alone (no reading yet, a
 * failing probe, a critical latency); else the pace's pause after the last batch and, while
 * the pace is below 100%, its reason. */
static bool commit_latency(bf_gate *g, const bf_job_config *cfg, const bf_commit_reading *c,
                           int64_t now, bf_gate_verdict *v)
{
	int64_t budget_us = cfg->max_commit_latency_ms * 1000;
	char p90[32], budget[32];
	int64_t until;

	if (!c->ok && c->taken_ms == 0) {
		v->kind = BF_GATE_UNKNOWN; /* the monitor has just started */
		v->wait_ms = BF_GATE_FIRST_SAMPLE_MS;
		return true;
	}
	if (!c->ok) {
		v->kind = BF_GATE_THROTTLED; /* fail closed, as the lag signals do */
		v->hold = BF_HOLD_COMMIT_LATENCY;
		v->wait_ms = cfg->lag.check_interval_ms;
		snprintf(v->reason, sizeof(v->reason), "commit latency unreadable: %s",
		         c->error ? c->error : "unknown error");
		return true;
	}
	bf_pace_observe(&g->pace, c, budget_us);
	bf_pace_format_us(c->p90_us, p90, sizeof(p90));
	bf_pace_format_us(budget_us, budget, sizeof(budget));
	if (c->n >= BF_COMMIT_MIN && c->p90_us > BF_PACE_CRITICAL * budget_us) {
		v->kind = BF_GATE_THROTTLED;
		v->hold = BF_HOLD_COMMIT_LATENCY;
		v->wait_ms = cfg->lag.check_interval_ms;
		snprintf(v->reason, sizeof(v->reason), "commit latency %s > %s", p90, budget);
		return true;
	}
	if (bf_pace_percent(&g->pace) >= 100)
		return false;
	snprintf(v->reason, sizeof(v->reason), "commit latency %s %s %s: pace %d%%", p90,
	         c->p90_us > budget_us ? ">" : "<=", budget, bf_pace_percent(&g->pace));
	until = g->batch_end_ms + bf_pace_pause_ms(&g->pace, g->batch_ms);
	v->wait_ms = until > now ? until - now : 0;
	v->hold = v->wait_ms > 0 ? BF_HOLD_COMMIT_LATENCY : BF_HOLD_NONE;
	return false;
}

bf_gate_verdict bf_gate_decide(bf_gate *g, const bf_job_config *cfg, const bf_gate_readings *r,
                               int64_t now, int64_t rows)
{
	bf_gate_verdict v = {.kind = BF_GATE_GO};

	if (cfg->window.set) {
		int64_t wait = window_wait(g, &cfg->window, now);

		if (wait > 0) {
			v.kind = BF_GATE_THROTTLED;
			v.hold = BF_HOLD_WINDOW;
			v.wait_ms = wait < BF_WINDOW_RECHECK_MS ? wait : BF_WINDOW_RECHECK_MS;
			bf_window_reason(&cfg->window, v.reason, sizeof(v.reason));
			g->lag_throttled = false;
			return v;
		}
	}
	if (r->lag && bf_pressure_enabled(&cfg->lag)) {
		if (!r->lag->ok && r->lag->taken_ms == 0) {
			/* the monitor has just started: no throttle yet */
			v.kind = BF_GATE_UNKNOWN;
			v.wait_ms = BF_GATE_FIRST_SAMPLE_MS;
			return v;
		}
		v.hold = bf_pressure_decide(&cfg->lag, r->lag, g->lag_throttled, now, v.reason,
		                            sizeof(v.reason));
		g->lag_throttled = v.hold != BF_HOLD_NONE;
		if (g->lag_throttled) {
			v.kind = BF_GATE_THROTTLED;
			v.wait_ms = cfg->lag.check_interval_ms;
			return v;
		}
	}
	if (cfg->throttle_query && r->query && query_throttles(cfg, r->query, &v))
		return v;
	if (r->commit && cfg->max_commit_latency_ms > 0 &&
	    commit_latency(g, cfg, r->commit, now, &v))
		return v;
	if (cfg->max_wal_rate > 0 && r->wal_wait_ms > v.wait_ms) {
		v.wait_ms = r->wal_wait_ms; /* metered, not throttled: spaced as the rate cap */
		v.hold = BF_HOLD_WAL_RATE;
	}
	if (bf_bucket_wait_ms(&g->bucket, now, rows) > v.wait_ms) {
		v.wait_ms = bf_bucket_wait_ms(&g->bucket, now, rows);
		v.hold = BF_HOLD_RATE;
	}
	return v;
}

void bf_gate_took(bf_gate *g, int64_t now, int64_t rows, int64_t ms)
{
	bf_bucket_take(&g->bucket, now, rows);
	g->batch_end_ms = now;
	g->batch_ms = ms;
}

int64_t bf_gate_batch_keys(const bf_gate *g, const bf_job_config *cfg, int64_t batch_size,
                           int64_t min)
{
	int64_t keys;

	if (cfg->max_commit_latency_ms == 0 || g->pace.pace >= 1.0)
		return batch_size;
	keys = (int64_t)((double)batch_size * g->pace.pace + 0.5);
	if (keys < min)
		keys = min < batch_size ? min : batch_size;
	return keys;
}
