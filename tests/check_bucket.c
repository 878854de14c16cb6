/*
 * check_bucket.c - the token bucket of max_rows_per_second.
 *
 * Off means no wait; a new bucket holds one second of rate; waiting exactly the time asked
 * is enough; idle time is not hoarded beyond one second (or one batch); debts are paid; a
 * reload changes the rate from then on; and the run of issue 4 (20,000 rows at 2,000/s in
 * batches of 1,000) takes at least 9 s of simulated time. Nothing sleeps: the clock is a
 * number the tests advance.
 */
#include <check.h>
#include <stdint.h>

#include "backfilld/bucket.h"
#include "suites.h"

/* Run `total` rows in batches of `batch` rows, each taking `batch_ms`, starting at t0, each
 * batch waiting as long as the bucket says; returns the time the last batch committed. */
static int64_t run(bf_bucket *b, int64_t t0, int64_t total, int64_t batch, int64_t batch_ms)
{
	int64_t now = t0;

	for (int64_t done = 0; done < total; done += batch) {
		int64_t rows = total - done < batch ? total - done : batch;
		int64_t w = bf_bucket_wait_ms(b, now, rows);
		ck_assert_int_ge(w, 0);
		now += w;
		ck_assert_int_eq(bf_bucket_wait_ms(b, now, rows), 0);
		now += batch_ms;
		bf_bucket_take(b, now, rows);
	}
	return now;
}

START_TEST(test_off)
{
	bf_bucket b;

	bf_bucket_init(&b, 0, 1000);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 1000, 1000000), 0);
	bf_bucket_take(&b, 1000, 1000000);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 1000, 1000000), 0);
	bf_bucket_init(&b, -5, 0); /* negative is off too */
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 0, 10), 0);
}
END_TEST

START_TEST(test_starts_full)
{
	bf_bucket b;

	bf_bucket_init(&b, 2000, 0);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 0, 2000), 0);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 0, 2001), 1); /* one row at 2000/s: 0.5 ms, up */
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 0, 4000), 1000);
	bf_bucket_take(&b, 0, 2000);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 0, 1000), 500);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 250, 1000), 250);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 500, 1000), 0);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 0, 0), 0);
}
END_TEST

START_TEST(test_exact_wait)
{
	bf_bucket b;

	/* 7 rows a second: 1000/7 ms a row does not divide; waiting the time said suffices */
	bf_bucket_init(&b, 7, 0);
	bf_bucket_take(&b, 0, 7);
	int64_t now = 0;
	for (int i = 0; i < 50; i++) {
		int64_t w = bf_bucket_wait_ms(&b, now, 3);
		ck_assert_int_gt(w, 0);
		ck_assert_int_gt(bf_bucket_wait_ms(&b, now + w - 1, 3), 0);
		now += w;
		ck_assert_int_eq(bf_bucket_wait_ms(&b, now, 3), 0);
		bf_bucket_take(&b, now, 3);
	}
	/* 150 rows after the first 7 at 7/s: 150/7 s, within the rounding of each wait */
	ck_assert_int_ge(now, 150 * 1000 / 7);
	ck_assert_int_le(now, 150 * 1000 / 7 + 50);
}
END_TEST

/* Issue 4: max_rows_per_second 2000 on 20,000 rows takes at least 9 seconds. */
START_TEST(test_issue_run)
{
	bf_bucket b;

	bf_bucket_init(&b, 2000, 5000);
	int64_t end = run(&b, 5000, 20000, 1000, 40);
	ck_assert_int_ge(end - 5000, 9000);
	ck_assert_int_le(end - 5000, 9000 + 40 + 100);
	/* with instant batches the bound is exact */
	bf_bucket_init(&b, 2000, 0);
	ck_assert_int_eq(run(&b, 0, 20000, 1000, 0), 9000);
	/* slow batches are not made to wait more: 50 batches of 1000 rows at 1 s each */
	bf_bucket_init(&b, 2000, 0);
	ck_assert_int_eq(run(&b, 0, 50000, 1000, 1000), 50000);
}
END_TEST

START_TEST(test_no_hoarding)
{
	bf_bucket b;

	bf_bucket_init(&b, 2000, 0);
	bf_bucket_take(&b, 0, 2000);
	/* an hour idle earns one second of rate, not an hour */
	int64_t t0 = 3600 * 1000;
	ck_assert_int_eq(bf_bucket_wait_ms(&b, t0, 2000), 0);
	bf_bucket_take(&b, t0, 2000);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, t0, 1), 1);
	ck_assert_int_eq(run(&b, t0, 20000, 1000, 0) - t0, 10000);
	/* or one batch, when the batch is larger than the rate: that one batch only */
	bf_bucket_init(&b, 2000, 0);
	bf_bucket_take(&b, 0, 2000);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, t0, 3000), 0);
	bf_bucket_take(&b, t0, 3000);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, t0, 1000), 500);
}
END_TEST

START_TEST(test_batch_above_rate)
{
	bf_bucket b;

	/* 5000-row batches at 2000/s: the balance may reach one batch, so they run, at the rate */
	bf_bucket_init(&b, 2000, 0);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 0, 5000), 1500);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 1500, 5000), 0);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 100000, 5000), 0);
	bf_bucket_take(&b, 1500, 5000);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 1500, 5000), 2500);
	bf_bucket_init(&b, 2000, 0);
	ck_assert_int_eq(run(&b, 0, 20000, 5000, 0), 9000);
	/* but a 5000-row balance does not last beyond the batch that needed it */
	bf_bucket_init(&b, 2000, 0);
	bf_bucket_take(&b, 0, 2000);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 100000, 5000), 0);
	bf_bucket_take(&b, 100000, 100);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 100000, 2000), 50);
}
END_TEST

START_TEST(test_debt)
{
	bf_bucket b;

	/* rows done without waiting are charged: the next batch pays the debt first */
	bf_bucket_init(&b, 1000, 0);
	bf_bucket_take(&b, 0, 3000);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 0, 0), 2000);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 0, 500), 2500);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 2500, 500), 0);
	/* negative rows and absurd counts are clamped, not overflowed */
	bf_bucket_init(&b, 1000, 0);
	bf_bucket_take(&b, 0, -10);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 0, 1000), 0);
	bf_bucket_take(&b, 0, INT64_MAX);
	bf_bucket_take(&b, 0, INT64_MAX);
	ck_assert_int_gt(bf_bucket_wait_ms(&b, 0, INT64_MAX), 0);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, INT64_MAX / 2, INT64_MAX), 0); /* paid, at last */
	/* a debt has a floor far beyond any real one, so nothing can overflow */
	bf_bucket_init(&b, 1000, 0);
	for (int i = 0; i < 1100; i++)
		bf_bucket_take(&b, 0, BF_BUCKET_ROWS_MAX);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 0, 0), BF_BUCKET_ROWS_MAX * 1000);
	bf_bucket_init(&b, INT64_MAX, 0);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 0, BF_BUCKET_ROWS_MAX), 0);
	bf_bucket_take(&b, 0, BF_BUCKET_ROWS_MAX);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 0, 1), 1);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 1000, BF_BUCKET_ROWS_MAX), 0);
}
END_TEST

START_TEST(test_clock_backwards)
{
	bf_bucket b;

	bf_bucket_init(&b, 1000, 10000);
	bf_bucket_take(&b, 10000, 1000);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 9000, 1000), 1000); /* earns nothing */
	bf_bucket_take(&b, 9000, 0);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 10500, 1000), 500); /* and loses nothing */
}
END_TEST

START_TEST(test_set_rate)
{
	bf_bucket b;

	bf_bucket_init(&b, 2000, 0);
	bf_bucket_take(&b, 0, 2000);
	/* half a second earned at 2000/s (1000 rows), then the rate drops to 500/s */
	bf_bucket_set_rate(&b, 500, 500);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 500, 500), 0);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 500, 1000), 1000); /* capped at 1 s of 500/s */
	bf_bucket_take(&b, 500, 500);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 500, 500), 1000);
	ck_assert_int_eq(run(&b, 500, 5000, 500, 0) - 500, 10000);
	/* raising it: faster from then on, the balance kept */
	bf_bucket_init(&b, 500, 0);
	bf_bucket_take(&b, 0, 500);
	bf_bucket_set_rate(&b, 4000, 1000); /* 500 rows earned at the old rate */
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 1000, 500), 0);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 1000, 1000), 125);
	/* a debt survives a rate change and is paid at the new rate */
	bf_bucket_init(&b, 1000, 0);
	bf_bucket_take(&b, 0, 3000);
	bf_bucket_set_rate(&b, 4000, 0);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 0, 0), 500);
	/* off, then on again: a fresh, full bucket */
	bf_bucket_set_rate(&b, 0, 0);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 0, 1000000), 0);
	bf_bucket_take(&b, 0, 1000000);
	bf_bucket_set_rate(&b, 100, 10);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 10, 100), 0);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 10, 200), 1000);
	/* the same rate again changes nothing */
	bf_bucket_take(&b, 10, 100);
	bf_bucket_set_rate(&b, 100, 510);
	ck_assert_int_eq(bf_bucket_wait_ms(&b, 510, 100), 500);
}
END_TEST

Suite *bucket_suite(void)
{
	Suite *s = suite_create("bucket");
	TCase *tc = tcase_create("bucket");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_off);
	tcase_add_test(tc, test_starts_full);
	tcase_add_test(tc, test_exact_wait);
	tcase_add_test(tc, test_issue_run);
	tcase_add_test(tc, test_no_hoarding);
	tcase_add_test(tc, test_batch_above_rate);
	tcase_add_test(tc, test_debt);
	tcase_add_test(tc, test_clock_backwards);
	tcase_add_test(tc, test_set_rate);
	suite_add_tcase(s, tc);
	return s;
}
