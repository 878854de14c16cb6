/*
 * check_rate.c - the recent rate: a minute's batches, a young walker's shorter span, the
 * ring's bound.
 */
#include <check.h>
#include <stdint.h>

#include "backfilld/rate.h"
#include "suites.h"

#define T0 INT64_C(1000000)

START_TEST(test_rate)
{
	static bf_rate r;

	bf_rate_start(&r, T0);
	ck_assert_double_eq(bf_rate_per_second(&r, T0), 0);
	/* a walker younger than a second counts over one second */
	bf_rate_add(&r, T0 + 100, 500);
	ck_assert_double_eq(bf_rate_per_second(&r, T0 + 200), 500);
	/* ten seconds in: over those ten seconds */
	bf_rate_add(&r, T0 + 9000, 500);
	ck_assert_double_eq(bf_rate_per_second(&r, T0 + 10000), 100);
	/* two minutes in: over the last minute, the old batches gone */
	bf_rate_add(&r, T0 + 119000, 6000);
	ck_assert_double_eq(bf_rate_per_second(&r, T0 + 120000), 100);
	ck_assert_uint_eq(r.len, 1);
}
END_TEST

START_TEST(test_ring_bound)
{
	static bf_rate r;

	bf_rate_start(&r, T0);
	/* more batches in a minute than the ring holds: the oldest drop out */
	for (int i = 0; i < BF_RATE_SLOTS + 10; i++)
		bf_rate_add(&r, T0 + 60000 + i, 60);
	ck_assert_uint_eq(r.len, BF_RATE_SLOTS);
	ck_assert_double_eq(bf_rate_per_second(&r, T0 + 60000 + BF_RATE_SLOTS + 10),
	                    BF_RATE_SLOTS * 60 / 60.0);
}
END_TEST

Suite *rate_suite(void)
{
	Suite *s = suite_create("rate");
	TCase *tc = tcase_create("rate");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_rate);
	tcase_add_test(tc, test_ring_bound);
	suite_add_tcase(s, tc);
	return s;
}
