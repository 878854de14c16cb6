/*
 * check_closing.c - the closing read and the sweeps: every decision the engine's integration
 * tests (10, 11, 16, 17, 18) rely on, without a server.
 *
 * Keys are one integer column, written as text as the server returns them; the high-water
 * mark is 100. Boundaries are recorded every 10 keys (chunk_keys), so a few batches make a
 * few ranges.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "backfilld/closing.h"
#include "suites.h"

static char *keys1[] = {"\"id\""};
static char *types1[] = {"integer"};
static char *high[] = {"100"};

static bf_sql_target target(void)
{
	return (bf_sql_target){
	        .qschema = "\"backfill\"",
	        .qtable = "\"public\".\"items\"",
	        .n_key = 1,
	        .qkey = keys1,
	        .key_type = types1,
	        .set = "y = x",
	        .where = "y IS NULL",
	};
}

/* A batch of `keys` keys ending at key `end`, `rows` updated. */
static void batch(bf_closing *c, int end, int64_t keys, int64_t rows, bool last)
{
	char text[16];
	char *cursor[] = {text};

	snprintf(text, sizeof(text), "%d", end);
	bf_closing_batch(c, cursor, keys, rows, 0, NULL, last);
}

/* A pass of batches of 4 keys from the first key to 100, each updating 4 rows. */
static void pass(bf_closing *c)
{
	for (int end = 4; end <= 100; end += 4)
		batch(c, end, 4, 4, end == 100);
}

/* The next statement, checked: its plan and its parameters joined with '|'. */
static void expect_next(bf_closing *c, bf_plan plan, const char *values)
{
	bf_sql_target t = target();
	bf_closing_query q;
	char got[256] = "";

	bf_closing_next(c, &t, high, &q);
	for (int i = 0; i < q.n_values; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? "|" : "",
		         q.values[i]);
	ck_assert_int_eq(q.plan, plan);
	ck_assert_str_eq(got, values);
	ck_assert_ptr_nonnull(q.sql);
	/* a statement with a chunk size walks ordered chunks (a LIMIT); the others count a
	 * range with known ends */
	ck_assert_int_eq(strstr(q.sql, "LIMIT $1") != NULL, plan == BF_PLAN_BATCH);
	bf_closing_query_free(&q);
}

static bf_closing_result take(bf_closing *c, int64_t left)
{
	return bf_closing_take(c, left, false, NULL);
}

static bf_closing fresh(void)
{
	bf_closing c;

	bf_closing_init(&c, 1, 10);
	bf_closing_registered(&c, true);
	return c;
}

START_TEST(test_ranges_recorded)
{
	bf_closing c = fresh();

	pass(&c);
	/* every 12 keys (the first batch boundary at or past 10 keys since the last), never
	 * the pass's last batch */
	ck_assert_uint_eq(c.n_bounds, 8);
	ck_assert_str_eq(c.bounds[0][0], "12");
	ck_assert_str_eq(c.bounds[1][0], "24");
	ck_assert_str_eq(c.bounds[7][0], "96");
	ck_assert_int_eq(c.pass_rows, 100);
	bf_closing_reset(&c);
	/* a boundary as soon as chunk_keys keys were walked, not one batch later */
	c = fresh();
	for (int end = 5; end <= 20; end += 5)
		batch(&c, end, 5, 5, false);
	ck_assert_uint_eq(c.n_bounds, 2);
	ck_assert_str_eq(c.bounds[0][0], "10");
	ck_assert_str_eq(c.bounds[1][0], "20");
	bf_closing_reset(&c);
}
END_TEST

START_TEST(test_one_scan_clean)
{
	bf_closing c = fresh();
	bf_closing_result r;

	pass(&c);
	ck_assert(bf_closing_begin(&c, true));
	ck_assert(!bf_closing_begin(&c, true)); /* once per read */
	ck_assert_str_eq(bf_closing_mode(&c), "ranges");
	/* from the first key up to the high-water mark, in one scan */
	expect_next(&c, BF_PLAN_ONE_SCAN, "100");
	r = take(&c, 0);
	ck_assert_int_eq(r.verdict, BF_CLOSING_DONE);
	ck_assert_str_eq(r.how, "scan");
	ck_assert(r.all_counted);
	ck_assert(!c.reading);
	bf_closing_reset(&c);
}
END_TEST

START_TEST(test_ranges_walk)
{
	bf_closing c = fresh();
	bf_closing_result r;
	char want[16];

	pass(&c);
	bf_closing_begin(&c, true);
	r = take(&c, 3); /* the single scan found rows: locate the first of them */
	ck_assert_int_eq(r.verdict, BF_CLOSING_NEXT);
	ck_assert(r.locating);
	ck_assert_int_eq(r.left, 3);
	expect_next(&c, BF_PLAN_RANGES, "12");
	for (size_t i = 0; i + 1 < c.n_bounds; i++) {
		r = take(&c, 0);
		ck_assert_int_eq(r.verdict, BF_CLOSING_NEXT);
		ck_assert(!r.locating);
		snprintf(want, sizeof(want), "%s|%s", c.bounds[i][0], c.bounds[i + 1][0]);
		expect_next(&c, BF_PLAN_RANGES, want);
	}
	r = take(&c, 0);
	ck_assert_int_eq(r.verdict, BF_CLOSING_NEXT);
	expect_next(&c, BF_PLAN_RANGES, "96|100"); /* the last range ends at the mark */
	r = take(&c, 0);
	ck_assert_int_eq(r.verdict, BF_CLOSING_DONE);
	ck_assert_str_eq(r.how, "ranges");
	bf_closing_reset(&c);
}
END_TEST

/* A job under a commit-latency budget reads range by range from the start: no single scan,
 * a clean table is done at the last range, and rows in a range start the sweep there. */
START_TEST(test_ranges_from_start)
{
	bf_closing c = fresh();
	bf_closing_result r;

	pass(&c);
	ck_assert(bf_closing_begin(&c, false));
	expect_next(&c, BF_PLAN_RANGES, "12");
	for (size_t i = 0; i < c.n_bounds; i++) {
		r = take(&c, 0);
		ck_assert_int_eq(r.verdict, BF_CLOSING_NEXT);
		ck_assert(!r.locating);
		if (i + 1 < c.n_bounds) {
			char want[16];

			snprintf(want, sizeof(want), "%s|%s", c.bounds[i][0], c.bounds[i + 1][0]);
			expect_next(&c, BF_PLAN_RANGES, want);
		}
	}
	expect_next(&c, BF_PLAN_RANGES, "96|100");
	r = take(&c, 0);
	ck_assert_int_eq(r.verdict, BF_CLOSING_DONE);
	ck_assert_str_eq(r.how, "ranges");
	ck_assert(r.all_counted);

	bf_closing_reset(&c);

	/* rows in the second range: the sweep starts at its first key */
	c = fresh();
	pass(&c);
	ck_assert(bf_closing_begin(&c, false));
	expect_next(&c, BF_PLAN_RANGES, "12");
	take(&c, 0);
	expect_next(&c, BF_PLAN_RANGES, "12|24");
	r = take(&c, 2);
	ck_assert_int_eq(r.verdict, BF_CLOSING_SWEEP);
	ck_assert_str_eq(c.pass_from[0], "12");
	bf_closing_reset(&c);
}
END_TEST

START_TEST(test_sweep_from_range)
{
	bf_closing c = fresh();
	bf_closing_result r;

	pass(&c);
	bf_closing_begin(&c, true);
	take(&c, 2);
	take(&c, 0);     /* first range clean */
	r = take(&c, 2); /* the second has the rows */
	ck_assert_int_eq(r.verdict, BF_CLOSING_SWEEP);
	ck_assert(!r.all_counted); /* rows of later ranges were not counted */
	ck_assert_str_eq(c.pass_from[0], "12");
	ck_assert(!c.reading);
	ck_assert_int_eq(bf_closing_new_pass(&c), 0); /* the pass updated rows: no back-off */
	/* the sweep's registration reads the rewound cursor back: it records ranges again */
	bf_closing_registered(&c, false);
	ck_assert(c.bounds_ok);
	ck_assert_uint_eq(c.n_bounds, 0);
	batch(&c, 30, 18, 2, false);
	ck_assert_uint_eq(c.n_bounds, 1);
	batch(&c, 100, 70, 0, true);
	/* the next read starts where the sweep started: the keys before were read clean */
	ck_assert(bf_closing_begin(&c, true));
	expect_next(&c, BF_PLAN_ONE_SCAN, "12|100");
	bf_closing_reset(&c);
}
END_TEST

START_TEST(test_last_range_counts_all)
{
	bf_closing c = fresh();
	bf_closing_result r;

	batch(&c, 100, 100, 100, true); /* one batch: no range recorded */
	bf_closing_begin(&c, true);
	r = take(&c, 5);
	ck_assert(r.locating);
	expect_next(&c, BF_PLAN_RANGES, "100");
	r = take(&c, 5);
	ck_assert_int_eq(r.verdict, BF_CLOSING_SWEEP);
	ck_assert(r.all_counted);
	ck_assert_ptr_null(c.pass_from); /* the sweep starts at the first key */
	bf_closing_reset(&c);
}
END_TEST

START_TEST(test_restart_reads_chunks)
{
	bf_closing c;
	bf_closing_result r;
	char *end40[] = {"40"};

	/* a process that registered in the middle of a pass saw no boundary of it */
	bf_closing_init(&c, 1, 10);
	bf_closing_registered(&c, false);
	for (int end = 52; end <= 100; end += 4)
		batch(&c, end, 4, 4, end == 100);
	ck_assert_uint_eq(c.n_bounds, 0);
	bf_closing_begin(&c, true);
	ck_assert_str_eq(bf_closing_mode(&c), "chunks");
	expect_next(&c, BF_PLAN_ONE_SCAN, "100");
	take(&c, 1);
	/* ordered chunks of chunk_keys keys, each finding its own end */
	expect_next(&c, BF_PLAN_BATCH, "10|100");
	r = bf_closing_take(&c, 0, false, end40);
	ck_assert_int_eq(r.verdict, BF_CLOSING_NEXT);
	expect_next(&c, BF_PLAN_BATCH, "10|40|100");
	r = bf_closing_take(&c, 0, true, end40);
	ck_assert_int_eq(r.verdict, BF_CLOSING_DONE);
	ck_assert_str_eq(r.how, "chunks");
	bf_closing_reset(&c);
}
END_TEST

START_TEST(test_registration_restarts_read)
{
	bf_closing c = fresh();

	pass(&c);
	bf_closing_begin(&c, true);
	take(&c, 4);
	take(&c, 0);
	/* a reconnect in the middle of the read: the read starts over, with its one scan, and
	 * the pass's boundaries kept */
	bf_closing_registered(&c, false);
	ck_assert(!c.reading);
	ck_assert_uint_eq(c.n_bounds, 8);
	ck_assert(bf_closing_begin(&c, true));
	expect_next(&c, BF_PLAN_ONE_SCAN, "100");
	bf_closing_reset(&c);
}
END_TEST

START_TEST(test_scan_timeout)
{
	bf_closing c = fresh();

	ck_assert(!bf_closing_scan_timeout(&c)); /* no read: an error like any other */
	pass(&c);
	bf_closing_begin(&c, true);
	ck_assert(bf_closing_scan_timeout(&c));
	expect_next(&c, BF_PLAN_RANGES, "12");
	ck_assert(!bf_closing_scan_timeout(&c)); /* a range's timeout is not the scan's */
	ck_assert_int_eq(bf_closing_one_scan_ms(0), BF_CLOSING_ONE_SCAN_MS);
	ck_assert_int_eq(bf_closing_one_scan_ms(3600000), BF_CLOSING_ONE_SCAN_MS);
	ck_assert_int_eq(bf_closing_one_scan_ms(2000), 2000);
	bf_closing_reset(&c);
}
END_TEST

/* One sweep that updated `rows` and met `unchanged` rows it could not change, read with
 * rows left. */
static bf_closing_verdict sweep(bf_closing *c, int64_t rows, int64_t unchanged)
{
	char *cursor[] = {"100"};

	bf_closing_registered(c, false);
	bf_closing_batch(c, cursor, 100, rows, unchanged,
	                 unchanged ? "from the first key up to (100)" : NULL, true);
	bf_closing_begin(c, true);
	ck_assert(take(c, 1).locating); /* the single scan */
	return bf_closing_take(c, 1, true, NULL).verdict;
}

START_TEST(test_sweep_backoff)
{
	bf_closing c = fresh();

	ck_assert_int_eq(sweep(&c, 5, 0), BF_CLOSING_SWEEP);
	ck_assert_int_eq(bf_closing_new_pass(&c), 0);
	/* sweeps that lock nothing wait longer each time: rows held by others */
	ck_assert_int_eq(sweep(&c, 0, 0), BF_CLOSING_SWEEP);
	ck_assert_int_eq(bf_closing_new_pass(&c), 1000);
	ck_assert_int_eq(sweep(&c, 0, 0), BF_CLOSING_SWEEP);
	ck_assert_int_eq(bf_closing_new_pass(&c), 2000);
	for (int i = 0; i < 10; i++)
		sweep(&c, 0, 0);
	ck_assert_int_eq(bf_closing_new_pass(&c), 30000);
	/* one that updated rows starts the next at once */
	ck_assert_int_eq(sweep(&c, 1, 0), BF_CLOSING_SWEEP);
	ck_assert_int_eq(bf_closing_new_pass(&c), 0);
	bf_closing_reset(&c);
}
END_TEST

START_TEST(test_stuck)
{
	bf_closing c = fresh();

	/* rows no one holds that the UPDATE leaves unchanged, sweep after sweep */
	ck_assert_int_eq(sweep(&c, 0, 3), BF_CLOSING_SWEEP);
	ck_assert_int_eq(sweep(&c, 0, 3), BF_CLOSING_STUCK);
	ck_assert_int_eq(c.pass_unchanged, 3);
	ck_assert_str_eq(c.stuck_range, "from the first key up to (100)");
	bf_closing_reset(&c);
	c = fresh();
	/* a sweep that updated rows in between is progress, not stuck */
	ck_assert_int_eq(sweep(&c, 0, 3), BF_CLOSING_SWEEP);
	ck_assert_int_eq(sweep(&c, 2, 3), BF_CLOSING_SWEEP);
	ck_assert_int_eq(sweep(&c, 0, 3), BF_CLOSING_SWEEP);
	ck_assert_int_eq(sweep(&c, 0, 3), BF_CLOSING_STUCK);
	bf_closing_reset(&c);
	c = fresh();
	/* rows only held by others (none unchanged) are waited for, never stuck */
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(sweep(&c, 0, 0), BF_CLOSING_SWEEP);
	bf_closing_reset(&c);
}
END_TEST

START_TEST(test_sliced_pass)
{
	bf_closing c = fresh();
	bf_closing_result r;

	pass(&c);
	/* the slices walked the pass, each on its own connection: no boundaries of it here */
	bf_closing_sliced_pass(&c, 500);
	ck_assert_uint_eq(c.n_bounds, 0);
	bf_closing_begin(&c, true);
	ck_assert_str_eq(bf_closing_mode(&c), "chunks");
	take(&c, 1);
	r = bf_closing_take(&c, 1, true, NULL);
	ck_assert_int_eq(r.verdict, BF_CLOSING_SWEEP);
	ck_assert_int_eq(bf_closing_new_pass(&c), 0); /* the slices updated rows */
	bf_closing_reset(&c);
}
END_TEST

Suite *closing_suite(void)
{
	Suite *s = suite_create("closing");
	TCase *tc = tcase_create("closing");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_ranges_recorded);
	tcase_add_test(tc, test_one_scan_clean);
	tcase_add_test(tc, test_ranges_walk);
	tcase_add_test(tc, test_ranges_from_start);
	tcase_add_test(tc, test_sweep_from_range);
	tcase_add_test(tc, test_last_range_counts_all);
	tcase_add_test(tc, test_restart_reads_chunks);
	tcase_add_test(tc, test_registration_restarts_read);
	tcase_add_test(tc, test_scan_timeout);
	tcase_add_test(tc, test_sweep_backoff);
	tcase_add_test(tc, test_stuck);
	tcase_add_test(tc, test_sliced_pass);
	suite_add_tcase(s, tc);
	return s;
}
