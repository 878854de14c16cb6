/*
 * batchsize.c - the adaptive batch size controller (see batchsize.h for the promises).
 *
 * The statistic is the cost of a row, not the time of a batch: a batch's time depends on the
 * size it was asked for, the cost of a row does not (to first order), so batches of different
 * sizes can share one median. With a fixed overhead per batch (round trips, commit) the cost
 * per row of a small batch overstates the cost at a larger size, so growth converges from
 * below and never overshoots: the size after a step is target / (k + o/size), a contraction
 * toward the fixed point as long as the overhead o is below the target.
 *
 * Why each rule exists:
 * - median of the last 5: one slow batch (a checkpoint, a lock wait, autovacuum) must not
 *   halve the size, and one fast batch (cached pages) must not grow it;
 * - growth cap 1.5x: the estimate at a new size is an extrapolation, so it is tested in steps;
 * - fast cut at 3x: a real cost change (an index appeared, the disk is saturated) must not
 *   wait three batches for the median to follow; the history is dropped because it describes
 *   the old cost and would pull the size straight back up;
 * - dead band +-10%: inside it, the size does not move at all, so measurement noise does not
 *   turn into a size that hunts around the target;
 * - short batches: the last batches of a pass, or those that met locked rows, are fast
 *   because they are small; read naively, they would tell the controller to grow.
 */
#include "backfilld/batchsize.h"

#include <math.h>

#define GROWTH_MAX 1.5  /* at most this factor per step */
#define FAST_CUT   3    /* a batch this many times the target cuts at once */
#define DEAD_BAND  0.10 /* no change while the predicted time is within +-10% */
#define MIN_MS     0.5  /* a batch measured at 0 ms took less than 1 ms */

static int64_t clamp(const bf_batchsize *c, int64_t v)
{
	if (v < c->min)
		return c->min;
	if (v > c->max)
		return c->max;
	return v;
}

/* A double size, rounded, into [min, max]; huge values (a near-zero cost) saturate. */
static int64_t clamp_d(const bf_batchsize *c, double v)
{
	if (!(v < (double)c->max)) /* also NaN */
		return c->max;
	if (v < (double)c->min)
		return c->min;
	return clamp(c, llround(v));
}

static void set_limits(bf_batchsize *c, int64_t initial, int64_t min, int64_t max,
                       int64_t target_ms)
{
	c->min = min < 1 ? 1 : min;
	c->max = max < c->min ? c->min : max;
	c->target_ms = target_ms < 0 ? 0 : target_ms;
	c->fixed = clamp(c, initial);
}

static void forget_costs(bf_batchsize *c)
{
	c->n_cost = 0;
	c->next_cost = 0;
}

static void push_cost(bf_batchsize *c, double ms_per_row)
{
	c->cost[c->next_cost] = ms_per_row;
	c->next_cost = (c->next_cost + 1) % BF_BATCHSIZE_WINDOW;
	if (c->n_cost < BF_BATCHSIZE_WINDOW)
		c->n_cost++;
}

/* The median of the recorded costs (the mean of the middle two for an even count); only
 * called after a cost was recorded. */
static double median_cost(const bf_batchsize *c)
{
	double v[BF_BATCHSIZE_WINDOW] = {0};
	int n = c->n_cost;

	for (int i = 0; i < n; i++) {
		double x = c->cost[i];
		int j = i;
		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The floor news of the observation just made: the size is at min, the batch was over the
 * target, and it was not said yet since the size last came to the floor. */
static void update_floor(bf_batchsize *c, bool over_target)
{
	if (c->size > c->min) {
		c->floor_reported = false;
	} else if (over_target && !c->floor_reported) {
		c->floor_reported = true;
		c->floor_news = true;
	}
}

void bf_batchsize_init(bf_batchsize *c, int64_t initial, int64_t min, int64_t max,
                       int64_t target_ms)
{
	*c = (bf_batchsize){0};
	set_limits(c, initial, min, max, target_ms);
	c->size = c->fixed;
}

int64_t bf_batchsize_observe(bf_batchsize *c, int64_t rows, int64_t elapsed_ms)
{
	int64_t asked = c->size;

	c->floor_news = false;
	if (rows <= 0)
		return c->size; /* nothing was learned about the cost of a row */
	if (c->target_ms == 0) {
		/* fixed size: only climb back after a timeout halved it */
		if (asked < c->fixed)
			c->size = clamp_d(c, fmin((double)asked * GROWTH_MAX, (double)c->fixed));
		return c->size;
	}

	double target = (double)c->target_ms;
	double elapsed = elapsed_ms < 1 ? MIN_MS : (double)elapsed_ms;
	double ms_per_row = elapsed / (double)rows;
	bool short_batch = rows < asked - asked / 2; /* fewer than half of what was asked */
	bool over_target = elapsed > target * (1 + DEAD_BAND);
	double next;

	if (short_batch && elapsed <= target)
		return c->size;

	if (elapsed >= FAST_CUT * target) {
		forget_costs(c);
		push_cost(c, ms_per_row);
		next = target / ms_per_row;
	} else {
		push_cost(c, ms_per_row);
		double m = median_cost(c);
		double predicted = (double)asked * m;
		if (fabs(predicted - target) <= target * DEAD_BAND)
			next = (double)asked;
		else
			next = fmin(target / m, (double)asked * GROWTH_MAX);
	}
	if (short_batch && next > (double)asked)
		next = (double)asked;
	c->size = clamp_d(c, next);
	update_floor(c, over_target);
	return c->size;
}

int64_t bf_batchsize_on_timeout(bf_batchsize *c)
{
	c->floor_news = false;
	c->size = clamp(c, c->size / 2);
	return c->size;
}

void bf_batchsize_set_limits(bf_batchsize *c, int64_t initial, int64_t min, int64_t max,
                             int64_t target_ms)
{
	bool was_fixed = c->target_ms == 0;

	set_limits(c, initial, min, max, target_ms);
	c->floor_news = false;
	if (c->target_ms == 0) {
		c->size = c->fixed;
		forget_costs(c);
	} else {
		if (was_fixed)
			forget_costs(c);
		c->size = clamp(c, c->size);
	}
	if (c->size > c->min)
		c->floor_reported = false;
}

int64_t bf_batchsize_size(const bf_batchsize *c)
{
	return c->size;
}

bool bf_batchsize_floor_news(const bf_batchsize *c)
{
	return c->floor_news;
}
