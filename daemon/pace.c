/*
 * pace.c - commit-latency readings and the pace a job keeps under its budget (pace.h).
 *
 * The p90 of the last BF_COMMIT_PROBES probes (4 s at the monitor's 200 ms cadence) ignores
 * the odd slow commit and follows a slowdown within three probes. The decrease is
 * multiplicative so that a job far over its budget comes down in a few probes (x0.8: from
 * 100% to the floor in 14 probes, under 3 s), the increase additive so that it finds the room again
 * without overshooting (GitLab's batched migrations use the same +10% / -20%).
 */
#include "backfilld/pace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The value at fraction q (0..1) of n sorted copies of v (nearest rank). */
static int64_t quantile(const int64_t *v, size_t n, double q)
{
	int64_t sorted[BF_COMMIT_PROBES > BF_COMMIT_IDLE ? BF_COMMIT_PROBES : BF_COMMIT_IDLE];
	size_t rank;

	if (n == 0)
		return 0;
	memcpy(sorted, v, n * sizeof(*v));
	qsort(sorted, n, sizeof(*sorted), cmp_i64);
	rank = (size_t)(q * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	return sorted[rank - 1];
}

void bf_commit_stats_add(bf_commit_stats *s, int64_t us, bool idle)
{
	s->us[s->head] = us;
	s->head = (s->head + 1) % BF_COMMIT_PROBES;
	if (s->n < BF_COMMIT_PROBES)
		s->n++;
	if (idle) {
		s->idle_us[s->idle_head] = us;
		s->idle_head = (s->idle_head + 1) % BF_COMMIT_IDLE;
		if (s->n_idle < BF_COMMIT_IDLE)
			s->n_idle++;
	}
	s->seq++;
}

int64_t bf_commit_stats_p90(const bf_commit_stats *s)
{
	return quantile(s->us, s->n, 0.9);
}

int64_t bf_commit_stats_baseline(const bf_commit_stats *s)
{
	return quantile(s->idle_us, s->n_idle, 0.5);
}

void bf_pace_init(bf_pace *p)
{
	*p = (bf_pace){.pace = 1.0};
}

bool bf_pace_observe(bf_pace *p, const bf_commit_reading *r, int64_t budget_us)
{
	if (!r->ok || r->seq == 0 || r->seq == p->seen_seq || r->n < BF_COMMIT_MIN)
		return false;
	p->seen_seq = r->seq;
	if (r->p90_us > budget_us)
		p->pace *= BF_PACE_DECREASE;
	else
		p->pace += BF_PACE_STEP_UP;
	if (p->pace < BF_PACE_FLOOR)
		p->pace = BF_PACE_FLOOR;
	if (p->pace > 1.0)
		p->pace = 1.0;
	return true;
}

int64_t bf_pace_pause_ms(const bf_pace *p, int64_t batch_ms)
{
	double ms = (double)batch_ms * (1.0 - p->pace) / p->pace;

	return ms > BF_PACE_PAUSE_MAX ? BF_PACE_PAUSE_MAX : (int64_t)(ms + 0.5);
}

int bf_pace_percent(const bf_pace *p)
{
	return (int)(p->pace * 100.0 + 0.5);
}

char *bf_pace_format_us(int64_t us, char *buf, size_t len)
{
	if (us < 10000)
		snprintf(buf, len, "%lld.%lldms", (long long)(us / 1000),
		         (long long)(us % 1000 / 100));
	else
		snprintf(buf, len, "%lldms", (long long)((us + 500) / 1000));
	return buf;
}

int64_t bf_pace_batch_target_ms(int64_t target_ms, int64_t budget_ms)
{
	if (target_ms == 0 || budget_ms == 0 || budget_ms >= target_ms)
		return target_ms;
	return budget_ms;
}
