/*
 * check_batchsize.c - the adaptive batch size controller.
 *
 * Each rule of batchsize.h on its own (clamping, fixed size, growth cap, dead band, median,
 * fast cut, short and empty batches, timeouts, floor news, reload), then simulations: a row
 * costs k ms plus a fixed overhead per batch, and the batch time must settle within +-30% of
 * the target after a few batches and stay there, for costs over three orders of magnitude,
 * with noise, and across step changes of the cost. Time is simulated: nothing sleeps.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>

#include "backfilld/batchsize.h"
#include "suites.h"

#define TARGET 500

/* The simulated time of a batch: a fixed overhead plus k ms per row, times a noise factor. */
static int64_t batch_ms(double k, double overhead, int64_t rows, double noise)
{
	return llround((overhead + k * (double)rows) * noise);
}

/* A deterministic noise factor in [1 - amp, 1 + amp]. */
static double noise(uint32_t *seed, double amp)
{
	*seed = *seed * 1664525u + 1013904223u;
	return 1 + amp * ((double)(*seed >> 8) / (double)(1u << 24) * 2 - 1);
}

static bool within(int64_t ms, double share)
{
	return fabs((double)ms - TARGET) <= TARGET * share;
}

/* Run batches of cost k until the batch time is within +-30% of the target; returns how many
 * batches that took (the settled one included), or -1 after `limit`. */
static int settle(bf_batchsize *c, double k, double overhead, int limit)
{
	for (int i = 1; i <= limit; i++) {
		int64_t ms = batch_ms(k, overhead, bf_batchsize_size(c), 1);
		bf_batchsize_observe(c, bf_batchsize_size(c), ms);
		if (within(ms, 0.3))
			return i;
	}
	return -1;
}

START_TEST(test_init_clamps)
{
	bf_batchsize c;

	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_size(&c), 1000);
	ck_assert(!bf_batchsize_floor_news(&c));
	bf_batchsize_init(&c, 10, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_size(&c), 100);
	bf_batchsize_init(&c, 50000, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_size(&c), 20000);
	/* nonsense made safe */
	bf_batchsize_init(&c, 0, 0, 0, -5);
	ck_assert_int_eq(bf_batchsize_size(&c), 1);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1, 100000), 1); /* fixed: target < 0 is 0 */
	bf_batchsize_init(&c, 500, 300, 200, TARGET);
	ck_assert_int_eq(bf_batchsize_size(&c), 300); /* max below min becomes min */
}
END_TEST

START_TEST(test_fixed_size)
{
	bf_batchsize c;

	bf_batchsize_init(&c, 1000, 100, 20000, 0);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 1), 1000);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 100000), 1000);
	ck_assert_int_eq(bf_batchsize_observe(&c, 10, 1), 1000);
	/* a timeout halves it; committed batches bring it back at most 1.5x per batch */
	ck_assert_int_eq(bf_batchsize_on_timeout(&c), 500);
	ck_assert_int_eq(bf_batchsize_on_timeout(&c), 250);
	ck_assert_int_eq(bf_batchsize_observe(&c, 0, 10), 250); /* an empty batch is no proof */
	ck_assert_int_eq(bf_batchsize_observe(&c, 250, 10), 375);
	ck_assert_int_eq(bf_batchsize_observe(&c, 375, 10), 563);
	ck_assert_int_eq(bf_batchsize_observe(&c, 563, 10), 845);
	ck_assert_int_eq(bf_batchsize_observe(&c, 845, 10), 1000);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 10), 1000);
	ck_assert(!bf_batchsize_floor_news(&c));
}
END_TEST

START_TEST(test_growth_capped)
{
	bf_batchsize c;

	bf_batchsize_init(&c, 1000, 100, 5000, TARGET);
	/* 1000 rows in 10 ms: the target would allow 50x; growth is 1.5x per step */
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 10), 1500);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1500, 15), 2250);
	ck_assert_int_eq(bf_batchsize_observe(&c, 2250, 22), 3375);
	ck_assert_int_eq(bf_batchsize_observe(&c, 3375, 34), 5000); /* the ceiling */
	ck_assert_int_eq(bf_batchsize_observe(&c, 5000, 50), 5000);
}
END_TEST

START_TEST(test_zero_elapsed)
{
	bf_batchsize c;

	/* below the clock's resolution: cheap, grow; no division by zero */
	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 0), 1500);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1500, -3), 2250);
}
END_TEST

START_TEST(test_dead_band)
{
	bf_batchsize c;

	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 540), 1000); /* +8%: stay */
	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 460), 1000); /* -8%: stay */
	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 550), 1000); /* +10%: the edge */
	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 400), 1250); /* -20%: proportional */
	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 625), 800); /* +25%: proportional */
}
END_TEST

START_TEST(test_median_ignores_outlier)
{
	bf_batchsize c;

	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 500), 1000);
	/* one batch at 2.5x (below the fast cut): a checkpoint, not a new cost */
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 1250), 1000);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 500), 1000);
	/* one suspiciously fast batch does not grow it either */
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 50), 1000);
	/* but three slow ones in the last five (the 2.5x one is still there) are the new
	 * cost: a proportional cut */
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 1000), 1000);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 1000), 500);
}
END_TEST

START_TEST(test_median_even_count)
{
	bf_batchsize c;

	/* two samples: 1.0 and 0.5 ms/row, median 0.75: the size for 500 ms is 667 */
	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 1000), 500);
	ck_assert_int_eq(bf_batchsize_observe(&c, 500, 250), 667);
}
END_TEST

START_TEST(test_fast_cut)
{
	bf_batchsize c;

	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	for (int i = 0; i < 4; i++)
		bf_batchsize_observe(&c, 1000, 500);
	/* 3x the target: cut at once to what this batch's cost fits in the target */
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 1500), 333);
	/* the cheap history is forgotten: a batch on target does not pull the size back up */
	ck_assert_int_eq(bf_batchsize_observe(&c, 333, 500), 333);
	ck_assert_int_eq(bf_batchsize_observe(&c, 333, 500), 333);

	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 10000), 100); /* 20x: floor */
	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 1499), 334); /* proportional: 500/1.499 */
}
END_TEST

START_TEST(test_short_batches)
{
	bf_batchsize c;

	/* the end of the table: 100 of 1000 rows in 20 ms says nothing about 1000 rows */
	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_observe(&c, 100, 20), 1000);
	ck_assert_int_eq(bf_batchsize_observe(&c, 499, 500), 1000);
	/* exactly half is not short: measured and followed */
	ck_assert_int_eq(bf_batchsize_observe(&c, 500, 100), 1500);
	/* a short batch over the target may shrink the size */
	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_observe(&c, 400, 800), 250);
	/* but never grow it, even when the median of cheap batches would */
	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 100), 1500);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1500, 150), 2250);
	ck_assert_int_eq(bf_batchsize_observe(&c, 600, 700), 2250); /* median 0.1 ms/row */
	/* and a short batch at 3x the target is a fast cut like any other */
	ck_assert_int_eq(bf_batchsize_observe(&c, 100, 2000), 100);
	/* empty batches change nothing */
	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_observe(&c, 0, 5000), 1000);
	ck_assert_int_eq(bf_batchsize_observe(&c, -1, 5000), 1000);
	ck_assert(!bf_batchsize_floor_news(&c));
}
END_TEST

START_TEST(test_timeout_halves)
{
	bf_batchsize c;

	bf_batchsize_init(&c, 1001, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_on_timeout(&c), 500);
	ck_assert_int_eq(bf_batchsize_size(&c), 500);
	ck_assert_int_eq(bf_batchsize_on_timeout(&c), 250);
	ck_assert_int_eq(bf_batchsize_on_timeout(&c), 125);
	ck_assert_int_eq(bf_batchsize_on_timeout(&c), 100);
	ck_assert_int_eq(bf_batchsize_on_timeout(&c), 100);
	ck_assert(!bf_batchsize_floor_news(&c));
	/* the measured costs survive a timeout: a cheap job climbs back 1.5x per batch */
	ck_assert_int_eq(bf_batchsize_observe(&c, 100, 5), 150);
}
END_TEST

START_TEST(test_floor_news)
{
	bf_batchsize c;

	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	/* 10 ms a row: even 100 rows take 2x the target */
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 10000), 100);
	ck_assert(bf_batchsize_floor_news(&c));
	ck_assert_msg(bf_batchsize_floor_news(&c), "asking twice must not consume the news");
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(bf_batchsize_observe(&c, 100, 1000), 100);
		ck_assert_msg(!bf_batchsize_floor_news(&c), "repeated at batch %d", i);
	}
	/* still at the floor but back on target: no news, and the episode is not over */
	ck_assert_int_eq(bf_batchsize_observe(&c, 100, 500), 100);
	ck_assert(!bf_batchsize_floor_news(&c));
	ck_assert_int_eq(bf_batchsize_observe(&c, 100, 1000), 100);
	ck_assert(!bf_batchsize_floor_news(&c));
	/* the cost drops (three cheap batches to move the median): the size leaves the floor */
	ck_assert_int_eq(bf_batchsize_observe(&c, 100, 50), 100);
	ck_assert_int_eq(bf_batchsize_observe(&c, 100, 50), 100);
	ck_assert(!bf_batchsize_floor_news(&c));
	ck_assert_int_eq(bf_batchsize_observe(&c, 100, 50), 150);
	ck_assert(!bf_batchsize_floor_news(&c));
	/* and comes back: the news again, once */
	ck_assert_int_eq(bf_batchsize_observe(&c, 150, 3000), 100);
	ck_assert(bf_batchsize_floor_news(&c));
	ck_assert_int_eq(bf_batchsize_observe(&c, 100, 3000), 100);
	ck_assert(!bf_batchsize_floor_news(&c));
	/* a timeout clears the flag of the last observation */
	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	bf_batchsize_observe(&c, 1000, 10000);
	ck_assert(bf_batchsize_floor_news(&c));
	bf_batchsize_on_timeout(&c);
	ck_assert(!bf_batchsize_floor_news(&c));
}
END_TEST

START_TEST(test_floor_without_news)
{
	bf_batchsize c;

	/* a proportional cut (below the fast cut) onto the floor is news too */
	bf_batchsize_init(&c, 200, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_observe(&c, 200, 1000), 100);
	ck_assert(bf_batchsize_floor_news(&c));
	/* one slow batch that the median overrules is not at the floor: no news */
	bf_batchsize_init(&c, 200, 100, 20000, TARGET);
	for (int i = 0; i < 2; i++)
		bf_batchsize_observe(&c, 200, 500);
	ck_assert_int_eq(bf_batchsize_observe(&c, 200, 1400), 200);
	ck_assert(!bf_batchsize_floor_news(&c));
	/* "over target" means beyond the dead band: 650 ms is, 540 ms is not */
	bf_batchsize_init(&c, 110, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_observe(&c, 110, 540), 110);
	ck_assert(!bf_batchsize_floor_news(&c));
	ck_assert_int_eq(bf_batchsize_observe(&c, 110, 650), 100);
	ck_assert(bf_batchsize_floor_news(&c));
	/* sitting at the floor on target is no news; going over it there is */
	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	bf_batchsize_set_limits(&c, 1000, 1000, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 500), 1000);
	ck_assert(!bf_batchsize_floor_news(&c));
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 540), 1000);
	ck_assert(!bf_batchsize_floor_news(&c));
	ck_assert_int_eq(bf_batchsize_observe(&c, 1000, 1000), 1000);
	ck_assert(bf_batchsize_floor_news(&c));
}
END_TEST

START_TEST(test_set_limits)
{
	bf_batchsize c;

	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	for (int i = 0; i < 3; i++)
		bf_batchsize_observe(&c, 1000, 500); /* 0.5 ms a row */
	/* narrower limits clamp the current size */
	bf_batchsize_set_limits(&c, 1000, 100, 800, TARGET);
	ck_assert_int_eq(bf_batchsize_size(&c), 800);
	bf_batchsize_set_limits(&c, 1000, 900, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_size(&c), 900);
	/* a new target keeps the measured cost: 0.5 ms a row fits 500 rows in 250 ms */
	bf_batchsize_set_limits(&c, 1000, 100, 20000, 250);
	ck_assert_int_eq(bf_batchsize_size(&c), 900);
	ck_assert_int_eq(bf_batchsize_observe(&c, 900, 450), 500);
	ck_assert_int_eq(bf_batchsize_observe(&c, 500, 250), 500);
	/* target 0: the size is batch_size from the next batch on */
	bf_batchsize_set_limits(&c, 3000, 100, 20000, 0);
	ck_assert_int_eq(bf_batchsize_size(&c), 3000);
	ck_assert_int_eq(bf_batchsize_observe(&c, 3000, 60000), 3000);
	/* and back to adaptive: from the current size, with no stale history */
	bf_batchsize_set_limits(&c, 1000, 100, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_size(&c), 3000);
	ck_assert_int_eq(bf_batchsize_observe(&c, 3000, 1000), 1500);
	/* raising the floor above a floored size leaves the floor news episode alone */
	bf_batchsize_init(&c, 1000, 100, 20000, TARGET);
	bf_batchsize_observe(&c, 1000, 10000);
	ck_assert(bf_batchsize_floor_news(&c));
	bf_batchsize_set_limits(&c, 1000, 100, 20000, TARGET);
	ck_assert(!bf_batchsize_floor_news(&c));
	bf_batchsize_observe(&c, 100, 1000);
	ck_assert_msg(!bf_batchsize_floor_news(&c), "a reload must not repeat the news");
	/* lowering the floor lets the size leave it: the news may come again later */
	bf_batchsize_set_limits(&c, 1000, 10, 20000, TARGET);
	ck_assert_int_eq(bf_batchsize_size(&c), 100);
	ck_assert_int_eq(bf_batchsize_observe(&c, 100, 1000), 50);
	ck_assert(!bf_batchsize_floor_news(&c));
	ck_assert_int_eq(bf_batchsize_observe(&c, 50, 5000), 10);
	ck_assert(bf_batchsize_floor_news(&c));
}
END_TEST

/* The simulation of issue 4: for costs from 5 us to 8 ms a row, plus 5 ms of overhead, the
 * batch time is within +-30% of the target after a few batches and stays there, and the size
 * stops moving (no oscillation). */
START_TEST(test_sim_settles)
{
	static const double costs[] = {0.005, 0.02, 0.1, 0.5, 2, 8};
	/* growth from 1000 rows is capped at 1.5x a batch; a cut takes one batch */
	static const int max_steps[] = {13, 10, 6, 1, 2, 2};

	for (size_t i = 0; i < sizeof(costs) / sizeof(costs[0]); i++) {
		double k = costs[i];
		bf_batchsize c;
		bf_batchsize_init(&c, 1000, 10, 200000, TARGET);

		int steps = settle(&c, k, 5, 30);
		ck_assert_msg(steps > 0 && steps <= max_steps[i], "k=%g settled after %d batches",
		              k, steps);
		int64_t prev = bf_batchsize_size(&c);
		int moves = 0;
		for (int b = 0; b < 100; b++) {
			int64_t size = bf_batchsize_size(&c);
			int64_t ms = batch_ms(k, 5, size, 1);
			ck_assert_msg(within(ms, 0.3), "k=%g batch %d: %lld ms for %lld rows", k, b,
			              (long long)ms, (long long)size);
			bf_batchsize_observe(&c, size, ms);
			moves += bf_batchsize_size(&c) != prev;
			prev = bf_batchsize_size(&c);
		}
		ck_assert_msg(moves <= 2, "k=%g: the size moved %d times once settled", k, moves);
	}
}
END_TEST

/* The same with +-10% noise on every batch: every batch stays within +-30% once settled. */
START_TEST(test_sim_noise)
{
	static const double costs[] = {0.01, 0.1, 1};
	uint32_t seed = 42;

	for (size_t i = 0; i < sizeof(costs) / sizeof(costs[0]); i++) {
		double k = costs[i];
		bf_batchsize c;
		bf_batchsize_init(&c, 1000, 10, 200000, TARGET);
		ck_assert_int_gt(settle(&c, k, 5, 20), 0);
		for (int b = 0; b < 8; b++) /* let the median fill with settled batches */
			bf_batchsize_observe(&c, bf_batchsize_size(&c),
			                     batch_ms(k, 5, bf_batchsize_size(&c), 1));
		int64_t lo = INT64_MAX, hi = 0;
		for (int b = 0; b < 300; b++) {
			int64_t size = bf_batchsize_size(&c);
			int64_t ms = batch_ms(k, 5, size, noise(&seed, 0.1));
			ck_assert_msg(within(ms, 0.3), "k=%g batch %d: %lld ms", k, b,
			              (long long)ms);
			bf_batchsize_observe(&c, size, ms);
			lo = size < lo ? size : lo;
			hi = size > hi ? size : hi;
		}
		ck_assert_msg((double)hi <= (double)lo * 1.3, "k=%g: size wandered %lld..%lld", k,
		              (long long)lo, (long long)hi);
	}
}
END_TEST

/* The cost of a row changes under a settled job: doubled (below the fast cut), five times
 * (a fast cut), and a quarter (growth again). */
START_TEST(test_sim_step_change)
{
	bf_batchsize c;
	int64_t ms = 0;

	bf_batchsize_init(&c, 1000, 10, 200000, TARGET);
	ck_assert_int_gt(settle(&c, 0.1, 5, 20), 0);
	for (int b = 0; b < 10; b++)
		bf_batchsize_observe(&c, bf_batchsize_size(&c),
		                     batch_ms(0.1, 5, bf_batchsize_size(&c), 1));

	/* 2x: the median follows after three batches, then a proportional cut */
	int steps = settle(&c, 0.2, 5, 20);
	ck_assert_msg(steps > 0 && steps <= 5, "2x settled after %d batches", steps);
	for (int b = 0; b < 20; b++) {
		ms = batch_ms(0.2, 5, bf_batchsize_size(&c), 1);
		ck_assert_msg(within(ms, 0.3), "2x batch %d: %lld ms", b, (long long)ms);
		bf_batchsize_observe(&c, bf_batchsize_size(&c), ms);
	}

	/* 5x: one slow batch, then on target at once */
	ms = batch_ms(1.0, 5, bf_batchsize_size(&c), 1);
	ck_assert_int_ge(ms, 3 * TARGET);
	bf_batchsize_observe(&c, bf_batchsize_size(&c), ms);
	for (int b = 0; b < 20; b++) {
		ms = batch_ms(1.0, 5, bf_batchsize_size(&c), 1);
		ck_assert_msg(within(ms, 0.3), "5x batch %d: %lld ms", b, (long long)ms);
		bf_batchsize_observe(&c, bf_batchsize_size(&c), ms);
	}

	/* a quarter: growth in steps of at most 1.5x, then settled again */
	int64_t before = bf_batchsize_size(&c);
	bf_batchsize_observe(&c, before, batch_ms(0.25, 5, before, 1));
	ck_assert_int_le(bf_batchsize_size(&c), before * 3 / 2 + 1);
	steps = settle(&c, 0.25, 5, 20);
	ck_assert_msg(steps > 0 && steps <= 8, "1/4 settled after %d batches", steps);
	for (int b = 0; b < 20; b++) {
		ms = batch_ms(0.25, 5, bf_batchsize_size(&c), 1);
		ck_assert_msg(within(ms, 0.3), "1/4 batch %d: %lld ms", b, (long long)ms);
		bf_batchsize_observe(&c, bf_batchsize_size(&c), ms);
	}
}
END_TEST

Suite *batchsize_suite(void)
{
	Suite *s = suite_create("batchsize");
	TCase *rules = tcase_create("rules");
	TCase *sim = tcase_create("simulation");

	tcase_set_timeout(rules, 10);
	tcase_add_test(rules, test_init_clamps);
	tcase_add_test(rules, test_fixed_size);
	tcase_add_test(rules, test_growth_capped);
	tcase_add_test(rules, test_zero_elapsed);
	tcase_add_test(rules, test_dead_band);
	tcase_add_test(rules, test_median_ignores_outlier);
	tcase_add_test(rules, test_median_even_count);
	tcase_add_test(rules, test_fast_cut);
	tcase_add_test(rules, test_short_batches);
	tcase_add_test(rules, test_timeout_halves);
	tcase_add_test(rules, test_floor_news);
	tcase_add_test(rules, test_floor_without_news);
	tcase_add_test(rules, test_set_limits);
	suite_add_tcase(s, rules);

	tcase_set_timeout(sim, 10);
	tcase_add_test(sim, test_sim_settles);
	tcase_add_test(sim, test_sim_noise);
	tcase_add_test(sim, test_sim_step_change);
	suite_add_tcase(s, sim);
	return s;
}
