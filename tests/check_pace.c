/*
 * check_pace.c - commit-latency readings (p90, idle baseline) and the pace controller:
 * multiplicative decrease over the budget, additive increase under it, the floor, one step
 * per probe, the pause of the duty cycle.
 */
#include <check.h>
#include <stdint.h>

#include "backfilld/pace.h"
#include "suites.h"

START_TEST(test_stats)
{
	static bf_commit_stats s;

	ck_assert_int_eq(bf_commit_stats_p90(&s), 0);
	ck_assert_int_eq(bf_commit_stats_baseline(&s), 0);
	/* 1..20 ms, the even ones taken while no batch ran */
	for (int64_t i = 20; i >= 1; i--)
		bf_commit_stats_add(&s, i * 1000, i % 2 == 0);
	ck_assert_int_eq(bf_commit_stats_p90(&s), 18000);      /* the 18th of 20 */
	ck_assert_int_eq(bf_commit_stats_baseline(&s), 10000); /* median of 2, 4, ... 20 */
	ck_assert_uint_eq(s.seq, 20);
	/* only the last BF_COMMIT_PROBES count: 18 fast probes bring the p90 down */
	for (int i = 0; i < 18; i++)
		bf_commit_stats_add(&s, 500, false);
	ck_assert_int_eq(bf_commit_stats_p90(&s), 500);
	ck_assert_int_eq(bf_commit_stats_baseline(&s), 10000); /* no new idle probe */
	bf_commit_stats_add(&s, 100000, false); /* one slow commit does not move the p90 */
	ck_assert_int_eq(bf_commit_stats_p90(&s), 500);
	bf_commit_stats_add(&s, 100000, false); /* nor two of twenty (the p90's 18th of 20) */
	ck_assert_int_eq(bf_commit_stats_p90(&s), 500);
	bf_commit_stats_add(&s, 100000, false); /* three do */
	ck_assert_int_eq(bf_commit_stats_p90(&s), 100000);
}
END_TEST

static bf_commit_reading reading(uint64_t seq, int64_t p90_us)
{
	return (bf_commit_reading){.ok = true, .seq = seq, .n = BF_COMMIT_PROBES, .p90_us = p90_us};
}

START_TEST(test_controller)
{
	bf_pace p;
	bf_commit_reading r;
	uint64_t seq = 0;

	bf_pace_init(&p);
	ck_assert_int_eq(bf_pace_percent(&p), 100);
	r = reading(++seq, 20000);
	ck_assert(bf_pace_observe(&p, &r, 10000));
	ck_assert_int_eq(bf_pace_percent(&p), 80);
	ck_assert(!bf_pace_observe(&p, &r, 10000)); /* the same probe: no second step */
	ck_assert_int_eq(bf_pace_percent(&p), 80);
	r = reading(++seq, 20000);
	r.n = BF_COMMIT_MIN - 1; /* too few probes behind the p90: no step */
	ck_assert(!bf_pace_observe(&p, &r, 10000));
	ck_assert_int_eq(bf_pace_percent(&p), 80);
	r.ok = false; /* a failed probe is not a reading */
	r.seq = ++seq;
	ck_assert(!bf_pace_observe(&p, &r, 10000));
	for (int i = 0; i < 40; i++) {
		r = reading(++seq, 20000);
		bf_pace_observe(&p, &r, 10000);
	}
	ck_assert_int_eq(bf_pace_percent(&p), 5); /* never below the floor */
	r = reading(++seq, 10000);                /* at the budget is within it */
	bf_pace_observe(&p, &r, 10000);
	ck_assert_int_eq(bf_pace_percent(&p), 15);
	for (int i = 0; i < 20; i++) {
		r = reading(++seq, 1000);
		bf_pace_observe(&p, &r, 10000);
	}
	ck_assert_int_eq(bf_pace_percent(&p), 100); /* never above 100% */
}
END_TEST

START_TEST(test_pause)
{
	bf_pace p;

	bf_pace_init(&p);
	ck_assert_int_eq(bf_pace_pause_ms(&p, 100), 0);
	p.pace = 0.5;
	ck_assert_int_eq(bf_pace_pause_ms(&p, 100), 100);
	p.pace = 0.25;
	ck_assert_int_eq(bf_pace_pause_ms(&p, 100), 300);
	p.pace = BF_PACE_FLOOR;
	ck_assert_int_eq(bf_pace_pause_ms(&p, 100), 1900);
	ck_assert_int_eq(bf_pace_pause_ms(&p, 10000000), BF_PACE_PAUSE_MAX);
}
END_TEST

START_TEST(test_format)
{
	char b[32];

	ck_assert_str_eq(bf_pace_format_us(1234, b, sizeof(b)), "1.2ms");
	ck_assert_str_eq(bf_pace_format_us(9999, b, sizeof(b)), "9.9ms");
	ck_assert_str_eq(bf_pace_format_us(34400, b, sizeof(b)), "34ms");
	ck_assert_str_eq(bf_pace_format_us(0, b, sizeof(b)), "0.0ms");
}
END_TEST

/* A budget caps how long a batch may hold its rows; 0 on either side changes nothing. */
START_TEST(test_batch_target)
{
	ck_assert_int_eq(bf_pace_batch_target_ms(50, 10), 10);
	ck_assert_int_eq(bf_pace_batch_target_ms(50, 80), 50);
	ck_assert_int_eq(bf_pace_batch_target_ms(50, 0), 50);
	ck_assert_int_eq(bf_pace_batch_target_ms(0, 10), 0);
}
END_TEST

Suite *pace_suite(void)
{
	Suite *s = suite_create("pace");
	TCase *tc = tcase_create("pace");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_controller);
	tcase_add_test(tc, test_pause);
	tcase_add_test(tc, test_format);
	tcase_add_test(tc, test_batch_target);
	suite_add_tcase(s, tc);
	return s;
}
