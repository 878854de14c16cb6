/*
 * check_window.c - the daily window: open or not, how long until it opens, and its words.
 *
 * The edges (start inclusive, end exclusive), windows that wrap midnight, "always" windows
 * (unset, start == end, 00:00-24:00), seconds within the minute, and out-of-range inputs.
 */
#include <check.h>
#include <string.h>
#include <time.h>

#include "backfilld/window.h"
#include "suites.h"

#define MIN(h, m) ((h)*60 + (m))

static bf_window win(int start, int end, const char *text)
{
	bf_window w = {.set = true, .start_min = start, .end_min = end};

	if (text)
		strcpy(w.text, text);
	return w;
}

static struct tm at(int h, int m, int s)
{
	struct tm t = {.tm_year = 126, .tm_mon = 10, .tm_mday = 25};

	t.tm_hour = h;
	t.tm_min = m;
	t.tm_sec = s;
	return t;
}

static int64_t until(const bf_window *w, int h, int m, int s)
{
	struct tm t = at(h, m, s);

	return bf_window_ms_until_open(w, &t);
}

START_TEST(test_unset_and_always)
{
	bf_window none = {0};
	bf_window same = win(MIN(5, 0), MIN(5, 0), "05:00-05:00");
	bf_window full = win(0, 0, "00:00-24:00"); /* 24:00 is stored as 0 */

	for (int m = 0; m < BF_WINDOW_MINUTES_PER_DAY; m += 7) {
		ck_assert(bf_window_open(&none, m));
		ck_assert(bf_window_open(&same, m));
		ck_assert(bf_window_open(&full, m));
	}
	ck_assert(bf_window_open(NULL, 0));
	ck_assert_int_eq(until(&none, 3, 0, 0), 0);
	ck_assert_int_eq(until(&same, 4, 59, 59), 0);
}
END_TEST

START_TEST(test_edges)
{
	bf_window w = win(MIN(1, 0), MIN(6, 0), "01:00-06:00");

	ck_assert(!bf_window_open(&w, MIN(0, 59)));
	ck_assert(bf_window_open(&w, MIN(1, 0))); /* start inclusive */
	ck_assert(bf_window_open(&w, MIN(3, 30)));
	ck_assert(bf_window_open(&w, MIN(5, 59)));
	ck_assert(!bf_window_open(&w, MIN(6, 0))); /* end exclusive */
	ck_assert(!bf_window_open(&w, MIN(23, 59)));
	ck_assert(!bf_window_open(&w, 0));
	/* minutes outside 0..1439 are taken modulo a day */
	ck_assert(bf_window_open(&w, MIN(1, 0) + BF_WINDOW_MINUTES_PER_DAY));
	ck_assert(bf_window_open(&w, MIN(1, 0) - BF_WINDOW_MINUTES_PER_DAY));
	ck_assert(!bf_window_open(&w, -1));
}
END_TEST

START_TEST(test_wrap)
{
	bf_window w = win(MIN(22, 0), MIN(6, 0), "22:00-06:00");
	bf_window late = win(MIN(22, 0), 0, "22:00-24:00");

	ck_assert(!bf_window_open(&w, MIN(21, 59)));
	ck_assert(bf_window_open(&w, MIN(22, 0)));
	ck_assert(bf_window_open(&w, MIN(23, 59)));
	ck_assert(bf_window_open(&w, 0));
	ck_assert(bf_window_open(&w, MIN(5, 59)));
	ck_assert(!bf_window_open(&w, MIN(6, 0)));
	ck_assert(!bf_window_open(&w, MIN(12, 0)));

	ck_assert(!bf_window_open(&late, MIN(21, 59)));
	ck_assert(bf_window_open(&late, MIN(22, 0)));
	ck_assert(bf_window_open(&late, MIN(23, 59)));
	ck_assert(!bf_window_open(&late, 0));
}
END_TEST

START_TEST(test_ms_until_open)
{
	bf_window w = win(MIN(1, 0), MIN(6, 0), "01:00-06:00");

	ck_assert_int_eq(until(&w, 1, 0, 0), 0);
	ck_assert_int_eq(until(&w, 5, 59, 59), 0);
	ck_assert_int_eq(until(&w, 0, 59, 0), 60000);
	ck_assert_int_eq(until(&w, 0, 59, 30), 30000); /* seconds within the minute count */
	ck_assert_int_eq(until(&w, 0, 59, 59), 1000);
	ck_assert_int_eq(until(&w, 0, 59, 60), 1000); /* a leap second is the 59th */
	ck_assert_int_eq(until(&w, 0, 0, 0), 3600000);
	/* after the end: until tomorrow's start */
	ck_assert_int_eq(until(&w, 6, 0, 0), 19 * 3600000);
	ck_assert_int_eq(until(&w, 6, 0, 1), 19 * 3600000 - 1000);
	ck_assert_int_eq(until(&w, 23, 59, 59), 3600000 + 1000);
	/* every closed second is 1 s .. 24 h ahead, every open one 0 */
	for (int m = 0; m < BF_WINDOW_MINUTES_PER_DAY; m++) {
		int64_t ms = until(&w, m / 60, m % 60, 17);
		if (bf_window_open(&w, m)) {
			ck_assert_int_eq(ms, 0);
		} else {
			ck_assert_int_ge(ms, 1000);
			ck_assert_int_le(ms, 24 * 3600000);
			/* and that many ms later it is open */
			int64_t later = MIN(m / 60, m % 60) * 60 + 17 + ms / 1000;
			ck_assert(bf_window_open(&w, (int)(later / 60)));
		}
	}
}
END_TEST

START_TEST(test_ms_until_open_wrap)
{
	bf_window w = win(MIN(22, 0), MIN(6, 0), "22:00-06:00");
	bf_window none = {0};

	ck_assert_int_eq(until(&w, 23, 0, 0), 0);
	ck_assert_int_eq(until(&w, 3, 0, 0), 0);
	ck_assert_int_eq(until(&w, 6, 0, 0), 16 * 3600000);
	ck_assert_int_eq(until(&w, 21, 59, 59), 1000);
	ck_assert_int_eq(until(&none, 12, 0, 0), 0);
	/* a struct tm with hours beyond the day still names a minute of the day */
	ck_assert_int_eq(until(&w, 24 + 21, 59, 0), 60000);
	ck_assert_int_eq(until(&w, 21, 59, -5), 60000); /* negative seconds read as 0 */
}
END_TEST

START_TEST(test_reason)
{
	char buf[64];
	bf_window w = win(MIN(1, 0), MIN(6, 0), "01:00-06:00");
	bf_window coded = win(MIN(22, 30), 0, NULL);
	bf_window coded2 = win(MIN(1, 5), MIN(6, 0), NULL);
	bf_window none = {0};

	ck_assert_str_eq(bf_window_reason(&w, buf, sizeof(buf)), "outside window 01:00-06:00");
	ck_assert_str_eq(bf_window_reason(&coded, buf, sizeof(buf)), "outside window 22:30-24:00");
	ck_assert_str_eq(bf_window_reason(&coded2, buf, sizeof(buf)), "outside window 01:05-06:00");
	ck_assert_str_eq(bf_window_reason(&none, buf, sizeof(buf)), "outside window (none)");
	ck_assert_str_eq(bf_window_reason(NULL, buf, sizeof(buf)), "outside window (none)");
	bf_window zero = win(0, 0, NULL);
	ck_assert_str_eq(bf_window_reason(&zero, buf, sizeof(buf)), "outside window 00:00-00:00");
	ck_assert_str_eq(bf_window_reason(&w, buf, 8), "outside");
	buf[0] = 'x';
	ck_assert_ptr_eq(bf_window_reason(&w, buf, 0), buf);
	ck_assert_int_eq(buf[0], 'x');
}
END_TEST

Suite *window_suite(void)
{
	Suite *s = suite_create("window");
	TCase *tc = tcase_create("window");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_unset_and_always);
	tcase_add_test(tc, test_edges);
	tcase_add_test(tc, test_wrap);
	tcase_add_test(tc, test_ms_until_open);
	tcase_add_test(tc, test_ms_until_open_wrap);
	tcase_add_test(tc, test_reason);
	suite_add_tcase(s, tc);
	return s;
}
