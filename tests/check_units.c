/*
 * check_units.c - durations, sizes and percentages, parsed and formatted.
 *
 * The parsers accept exactly PostgreSQL's units (case matters) and refuse everything else,
 * including values that would overflow int64; the formatters truncate and keep one decimal
 * only where it carries information.
 */
#include <check.h>
#include <stdint.h>

#include "backfilld/units.h"
#include "suites.h"

static int64_t dur(const char *s)
{
	int64_t v = -12345;

	ck_assert_msg(bf_units_parse_duration(s, &v) == 0, "duration \"%s\" refused", s);
	return v;
}

static int64_t size(const char *s)
{
	int64_t v = -12345;

	ck_assert_msg(bf_units_parse_size(s, &v) == 0, "size \"%s\" refused", s);
	return v;
}

START_TEST(test_duration_units)
{
	ck_assert_int_eq(dur("250ms"), 250);
	ck_assert_int_eq(dur("5s"), 5000);
	ck_assert_int_eq(dur("2min"), 120000);
	ck_assert_int_eq(dur("1h"), 3600000);
	ck_assert_int_eq(dur("1d"), 86400000);
	ck_assert_int_eq(dur("750"), 750);
	ck_assert_int_eq(dur("0"), 0);
	ck_assert_int_eq(dur("0s"), 0);
	ck_assert_int_eq(dur("30 s"), 30000);
	ck_assert_int_eq(dur("  10min  "), 600000);
	ck_assert_int_eq(dur("9223372036854775807"), INT64_MAX);
}
END_TEST

START_TEST(test_duration_rejects)
{
	static const char *const bad[] = {
	        "",
	        "   ",
	        "fast",
	        "-5s",
	        "+5s",
	        "5x",
	        "5m",
	        "5S",
	        "5MS",
	        "1.5s",
	        "s",
	        "5s5",
	        "5 s s",
	        "5min x",
	        "9223372036854775808",
	        "9223372036854775807s",
	        "106751991167301d",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t v = 77;
		ck_assert_msg(bf_units_parse_duration(bad[i], &v) == -1, "accepted \"%s\"", bad[i]);
		ck_assert_int_eq(v, 77);
	}
	int64_t v = 0;
	/* trailing blanks are ignored, like leading ones */
	ck_assert_int_eq(bf_units_parse_duration("5 ", &v), 0);
	ck_assert_int_eq(v, 5);
	ck_assert_int_eq(bf_units_parse_duration(NULL, &v), -1);
	/* the largest number of days that fits ("106751991167301d" above does not) */
	ck_assert_int_eq(bf_units_parse_duration("106751991167d", &v), 0);
	ck_assert_int_eq(v, INT64_C(106751991167) * 86400000);
}
END_TEST

START_TEST(test_size_units)
{
	ck_assert_int_eq(size("100B"), 100);
	ck_assert_int_eq(size("512kB"), 512 * 1024);
	ck_assert_int_eq(size("64MB"), INT64_C(64) << 20);
	ck_assert_int_eq(size("2GB"), INT64_C(2) << 30);
	ck_assert_int_eq(size("1TB"), INT64_C(1) << 40);
	ck_assert_int_eq(size("4096"), 4096);
	ck_assert_int_eq(size("0"), 0);
	ck_assert_int_eq(size("8 kB"), 8192);
}
END_TEST

START_TEST(test_size_rejects)
{
	static const char *const bad[] = {
	        "",
	        "big",
	        "-1MB",
	        "1KB",
	        "1mb",
	        "1 MiB",
	        "1.5GB",
	        "kB",
	        "1PB",
	        "8388608TB",
	        "99999999999999999999",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t v = 77;
		ck_assert_msg(bf_units_parse_size(bad[i], &v) == -1, "accepted \"%s\"", bad[i]);
		ck_assert_int_eq(v, 77);
	}
	int64_t v;
	ck_assert_int_eq(bf_units_parse_size("8388607TB", &v), 0);
	ck_assert_int_eq(v, INT64_C(8388607) << 40);
}
END_TEST

START_TEST(test_percent)
{
	double f = -1;

	ck_assert_int_eq(bf_units_parse_percent("50%", &f), 0);
	ck_assert_double_eq_tol(f, 0.5, 1e-12);
	ck_assert_int_eq(bf_units_parse_percent("0%", &f), 0);
	ck_assert_double_eq_tol(f, 0.0, 1e-12);
	ck_assert_int_eq(bf_units_parse_percent("100%", &f), 0);
	ck_assert_double_eq_tol(f, 1.0, 1e-12);
	ck_assert_int_eq(bf_units_parse_percent("12.5%", &f), 0);
	ck_assert_double_eq_tol(f, 0.125, 1e-12);
	ck_assert_int_eq(bf_units_parse_percent("75 %", &f), 0);
	ck_assert_double_eq_tol(f, 0.75, 1e-12);

	static const char *const bad[] = {"",       "50",   "%",    "-5%",  "100.1%",
	                                  "101%",   "1e2%", ".5%",  "5.%",  "50%%",
	                                  "fifty%", "nan%", "inf%", "0x10%"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		f = 7;
		ck_assert_msg(bf_units_parse_percent(bad[i], &f) == -1, "accepted \"%s\"", bad[i]);
		ck_assert_double_eq(f, 7);
	}
}
END_TEST

START_TEST(test_format_duration)
{
	static const struct {
		int64_t ms;
		const char *text;
	} cases[] = {
	        {0, "0ms"},         {850, "850ms"},       {999, "999ms"},      {1000, "1s"},
	        {12500, "12.5s"},   {12000, "12s"},       {12099, "12s"},      {59999, "59.9s"},
	        {60000, "1m00s"},   {194000, "3m14s"},    {3599999, "59m59s"}, {3600000, "1h00m"},
	        {7500000, "2h05m"}, {86399999, "23h59m"}, {86400000, "1d00h"}, {273600000, "3d04h"},
	        {-1500, "-1.5s"},
	};
	char buf[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_str_eq(bf_units_format_duration(cases[i].ms, buf, sizeof(buf)),
		                 cases[i].text);
	/* never more than asked for, always terminated */
	char small[4];
	ck_assert_str_eq(bf_units_format_duration(273600000, small, sizeof(small)), "3d0");
	/* the extremes do not overflow */
	ck_assert_ptr_nonnull(bf_units_format_duration(INT64_MIN, buf, sizeof(buf)));
	ck_assert_str_eq(buf, "-106751991167d07h");
}
END_TEST

START_TEST(test_format_size)
{
	static const struct {
		int64_t bytes;
		const char *text;
	} cases[] = {
	        {0, "0B"},
	        {512, "512B"},
	        {1023, "1023B"},
	        {1024, "1kB"},
	        {1536, "1.5kB"},
	        {10 * 1024 + 900, "10kB"},
	        {(INT64_C(81) << 20) + (INT64_C(900) << 10), "81MB"},
	        {(INT64_C(21) << 30) / 10 + 1, "2.1GB"},
	        {INT64_C(2) << 30, "2GB"},
	        {(INT64_C(64) << 20), "64MB"},
	        {INT64_C(3) << 40, "3TB"},
	        {INT64_C(5000) << 40, "5000TB"},
	        {-2048, "-2kB"},
	};
	char buf[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_str_eq(bf_units_format_size(cases[i].bytes, buf, sizeof(buf)),
		                 cases[i].text);
	ck_assert_str_eq(bf_units_format_size(INT64_MAX, buf, sizeof(buf)), "8388607TB");
}
END_TEST

START_TEST(test_round_trip)
{
	static const char *const durations[] = {"850ms", "12s"};
	static const char *const sizes[] = {"512B", "81MB", "2GB"};
	char buf[32];
	int64_t v;

	/* what the formatter writes for whole units parses back to the same value */
	ck_assert_int_eq(bf_units_parse_duration(durations[0], &v), 0);
	ck_assert_str_eq(bf_units_format_duration(v, buf, sizeof(buf)), durations[0]);
	ck_assert_int_eq(bf_units_parse_duration(durations[1], &v), 0);
	ck_assert_str_eq(bf_units_format_duration(v, buf, sizeof(buf)), durations[1]);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(bf_units_parse_size(sizes[i], &v), 0);
		ck_assert_str_eq(bf_units_format_size(v, buf, sizeof(buf)), sizes[i]);
	}
}
END_TEST

Suite *units_suite(void)
{
	Suite *s = suite_create("units");
	TCase *parse = tcase_create("parse");
	TCase *format = tcase_create("format");

	tcase_set_timeout(parse, 10);
	tcase_add_test(parse, test_duration_units);
	tcase_add_test(parse, test_duration_rejects);
	tcase_add_test(parse, test_size_units);
	tcase_add_test(parse, test_size_rejects);
	tcase_add_test(parse, test_percent);
	suite_add_tcase(s, parse);

	tcase_set_timeout(format, 10);
	tcase_add_test(format, test_format_duration);
	tcase_add_test(format, test_format_size);
	tcase_add_test(format, test_round_trip);
	suite_add_tcase(s, format);
	return s;
}
