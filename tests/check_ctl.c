/*
 * check_ctl.c - backfillctl's output: the status table, progress bars, logfmt lines, JSON.
 *
 * The exact text is the contract an operator's eyes and scripts rely on: columns aligned,
 * unknown values as "-", no trailing blanks, and JSON that parses whatever a job's reason or
 * error message contains.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "backfilld/ctl.h"
#include "suites.h"

static const bf_ctl_job running = {
        .name = "users_email_lower",
        .state = "running",
        .reason = NULL,
        .rows_done = 1234000,
        .rows_estimate = 10000000,
        .percent = 12.3,
        .rate = 45210.4,
        .eta_ms = 194000,
        .batch_size = 2000,
};

static const bf_ctl_job pending = {
        .name = "orders_total",
        .state = "throttled",
        .reason = "replay lag 80MB > 64MB",
        .rows_done = 0,
        .rows_estimate = -1,
        .percent = 0,
        .rate = 2.5,
        .eta_ms = 0,
        .batch_size = -1,
};

static char *table(const bf_ctl_job *jobs, size_t n, int bar)
{
	bf_sbuf sb = {0};

	bf_ctl_format_table(&sb, jobs, n, bar);
	return bf_sbuf_steal(&sb);
}

START_TEST(test_table)
{
	bf_ctl_job jobs[2] = {running, pending};
	char *t = table(jobs, 2, 0);

	ck_assert_str_eq(
	        t, "NAME               STATE      ROWS DONE/ESTIMATE   DONE  ROWS/S    ETA  BATCH  "
	           "REASON\n"
	           "users_email_lower  running      1234000/10000000  12.3%   45210  3m14s   2000\n"
	           "orders_total       throttled                 0/-   0.0%     2.5     0s      -  "
	           "replay lag 80MB > 64MB\n");
	free(t);
}
END_TEST

START_TEST(test_table_empty)
{
	char *t = table(NULL, 0, 0);

	ck_assert_str_eq(t, "NAME  STATE  ROWS DONE/ESTIMATE  DONE  ROWS/S  ETA  BATCH  REASON\n"
	                    "(no jobs)\n");
	free(t);
}
END_TEST

START_TEST(test_table_no_eta)
{
	bf_ctl_job j = running;
	char *t;

	j.rate = -1;
	j.eta_ms = -1;
	j.reason = "";
	t = table(&j, 1, 0);
	ck_assert_str_eq(
	        t, "NAME               STATE    ROWS DONE/ESTIMATE   DONE  ROWS/S  ETA  BATCH  "
	           "REASON\n"
	           "users_email_lower  running    1234000/10000000  12.3%       -    -   2000\n");
	free(t);
}
END_TEST

START_TEST(test_table_one_line_per_job)
{
	bf_ctl_job j = pending;
	char *t;

	j.reason = "two\nlines\tand a tab";
	t = table(&j, 1, 0);
	ck_assert_ptr_nonnull(strstr(t, "  two lines and a tab\n"));
	ck_assert_ptr_null(strchr(strchr(t, '\n') + 1, '\t'));
	ck_assert_ptr_eq(strchr(strchr(t, '\n') + 1, '\n'), t + strlen(t) - 1);
	free(t);
}
END_TEST

START_TEST(test_table_with_bar)
{
	char *t = table(&running, 1, 10);

	ck_assert_str_eq(t, "NAME               STATE    ROWS DONE/ESTIMATE                 DONE  "
	                    "ROWS/S    ETA  BATCH  REASON\n"
	                    "users_email_lower  running    1234000/10000000  [#.........]  12.3%   "
	                    "45210  3m14s   2000\n");
	free(t);
}
END_TEST

/* The BACKUP column is there when some job keeps a backup, "-" for the others. */
START_TEST(test_table_with_backup)
{
	bf_ctl_job jobs[2] = {running, running};
	char *t;

	jobs[1].name = "fix";
	jobs[1].state = "undoing";
	jobs[1].reason = "undoing: 10 rows put back, 0 skipped";
	jobs[1].backup_bytes = 3 * 1024 * 1024;
	t = table(jobs, 2, 0);
	ck_assert_str_eq(t,
	                 "NAME               STATE    ROWS DONE/ESTIMATE   DONE  ROWS/S    ETA  "
	                 "BATCH  BACKUP  REASON\n"
	                 "users_email_lower  running    1234000/10000000  12.3%   45210  3m14s   "
	                 "2000       -\n"
	                 "fix                undoing    1234000/10000000  12.3%   45210  3m14s   "
	                 "2000     3MB  undoing: 10 rows put back, 0 skipped\n");
	free(t);
}
END_TEST

static char *bar(double percent, int width)
{
	bf_sbuf sb = {0};

	bf_ctl_format_bar(&sb, percent, width);
	return bf_sbuf_steal(&sb);
}

START_TEST(test_bar)
{
	const struct {
		double percent;
		int width;
		const char *want;
	} cases[] = {
	        {0, 4, "[....]"},           {24.9, 4, "[....]"}, {25, 4, "[#...]"},
	        {99.9, 10, "[#########.]"}, {100, 4, "[####]"},  {250, 4, "[####]"},
	        {-3, 4, "[....]"},          {50, 1, "[.]"},      {100, 1, "[#]"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *b = bar(cases[i].percent, cases[i].width);
		ck_assert_msg(strcmp(b, cases[i].want) == 0, "%g%% x %d: got %s, want %s",
		              cases[i].percent, cases[i].width, b, cases[i].want);
		free(b);
	}
	char *none = bar(50, 0);
	ck_assert_str_eq(none, "");
	free(none);
}
END_TEST

static char *line(const char *time, const bf_ctl_job *j)
{
	bf_sbuf sb = {0};

	bf_ctl_format_line(&sb, time, j);
	return bf_sbuf_steal(&sb);
}

START_TEST(test_line)
{
	char *a = line("2024-05-01T10:00:00+0000", &running);
	char *b = line(NULL, &pending);

	ck_assert_str_eq(a, "time=2024-05-01T10:00:00+0000 job=users_email_lower state=running "
	                    "rows=1234000 estimate=10000000 percent=12.3 rate=45210 eta=3m14s "
	                    "batch=2000\n");
	ck_assert_str_eq(b, "job=orders_total state=throttled rows=0 percent=0.0 rate=2.5 eta=0s "
	                    "reason=\"replay lag 80MB > 64MB\"\n");
	free(a);
	free(b);
}
END_TEST

static char *logfmt(const char *v)
{
	bf_sbuf sb = {0};

	bf_ctl_logfmt_value(&sb, v);
	return bf_sbuf_steal(&sb);
}

START_TEST(test_logfmt_value)
{
	const char *cases[][2] = {
	        {"running", "running"},
	        {"", "\"\""},
	        {"a b", "\"a b\""},
	        {"x=1", "\"x=1\""},
	        {"say \"hi\"", "\"say \\\"hi\\\"\""},
	        {"back\\slash", "\"back\\\\slash\""},
	        {"two\nlines\ttab", "\"two\\nlines\\ttab\""},
	        {"bell\a", "\"bell\\x07\""},
	        {"caf\xc3\xa9", "caf\xc3\xa9"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *v = logfmt(cases[i][0]);
		ck_assert_str_eq(v, cases[i][1]);
		free(v);
	}
}
END_TEST

START_TEST(test_json_kind)
{
	ck_assert_int_eq(bf_ctl_json_kind_of(20), BF_CTL_JSON_NUMBER);   /* int8 */
	ck_assert_int_eq(bf_ctl_json_kind_of(23), BF_CTL_JSON_NUMBER);   /* int4 */
	ck_assert_int_eq(bf_ctl_json_kind_of(1700), BF_CTL_JSON_NUMBER); /* numeric */
	ck_assert_int_eq(bf_ctl_json_kind_of(701), BF_CTL_JSON_NUMBER);  /* float8 */
	ck_assert_int_eq(bf_ctl_json_kind_of(16), BF_CTL_JSON_BOOL);
	ck_assert_int_eq(bf_ctl_json_kind_of(25), BF_CTL_JSON_STRING);   /* text */
	ck_assert_int_eq(bf_ctl_json_kind_of(1184), BF_CTL_JSON_STRING); /* timestamptz */
	ck_assert_int_eq(bf_ctl_json_kind_of(1186), BF_CTL_JSON_STRING); /* interval */
}
END_TEST

START_TEST(test_json_number)
{
	const char *good[] = {"0", "-0", "12", "-12.5", "12.30", "1e10", "1E-3", "2.5e+7"};
	const char *bad[] = {"",    "-",        "01",        "1.", ".5", "+1",   "1e",
	                     "NaN", "Infinity", "-Infinity", "1 ", " 1", "0x10", "1.2.3"};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(bf_ctl_json_is_number(good[i]), "\"%s\" refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!bf_ctl_json_is_number(bad[i]), "\"%s\" accepted", bad[i]);
}
END_TEST

static char *json_value(bf_ctl_json_kind kind, const char *text)
{
	bf_sbuf sb = {0};

	bf_ctl_json_value(&sb, kind, text);
	return bf_sbuf_steal(&sb);
}

START_TEST(test_json_values)
{
	const struct {
		bf_ctl_json_kind kind;
		const char *text, *want;
	} cases[] = {
	        {BF_CTL_JSON_NUMBER, "42", "42"},
	        {BF_CTL_JSON_NUMBER, "12.5", "12.5"},
	        {BF_CTL_JSON_NUMBER, NULL, "null"},
	        {BF_CTL_JSON_NUMBER, "NaN", "\"NaN\""},
	        {BF_CTL_JSON_NUMBER, "Infinity", "\"Infinity\""},
	        {BF_CTL_JSON_BOOL, "t", "true"},
	        {BF_CTL_JSON_BOOL, "f", "false"},
	        {BF_CTL_JSON_BOOL, NULL, "null"},
	        {BF_CTL_JSON_STRING, "00:03:14", "\"00:03:14\""},
	        {BF_CTL_JSON_STRING, "", "\"\""},
	        {BF_CTL_JSON_STRING, NULL, "null"},
	        {BF_CTL_JSON_STRING, "a\"b\\c", "\"a\\\"b\\\\c\""},
	        {BF_CTL_JSON_STRING, "l1\nl2\r\t\b\f", "\"l1\\nl2\\r\\t\\b\\f\""},
	        {BF_CTL_JSON_STRING, "\x01\x1f", "\"\\u0001\\u001f\""},
	        {BF_CTL_JSON_STRING, "caf\xc3\xa9 /", "\"caf\xc3\xa9 /\""},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *v = json_value(cases[i].kind, cases[i].text);
		ck_assert_msg(strcmp(v, cases[i].want) == 0, "case %zu: got %s, want %s", i, v,
		              cases[i].want);
		free(v);
	}
}
END_TEST

START_TEST(test_json_object)
{
	const char *names[] = {"name", "rows_done", "eta", "last_error"};
	const bf_ctl_json_kind kinds[] = {BF_CTL_JSON_STRING, BF_CTL_JSON_NUMBER,
	                                  BF_CTL_JSON_STRING, BF_CTL_JSON_STRING};
	const char *values[] = {"job_a", "17", NULL, "ERROR: \"x\""};
	bf_sbuf sb = {0};

	bf_ctl_json_object(&sb, 4, names, kinds, values, true);
	ck_assert_str_eq(sb.data, "{\"name\": \"job_a\", \"rows_done\": 17, \"eta\": null, "
	                          "\"last_error\": \"ERROR: \\\"x\\\"\"}");
	bf_sbuf_reset(&sb);
	bf_ctl_json_object(&sb, 2, names, kinds, values, false);
	ck_assert_str_eq(sb.data, "{\"name\":\"job_a\",\"rows_done\":17}");
	bf_sbuf_reset(&sb);
	bf_ctl_json_object(&sb, 0, names, kinds, values, true);
	ck_assert_str_eq(sb.data, "{}");
	bf_sbuf_free(&sb);
}
END_TEST

Suite *ctl_suite(void)
{
	Suite *s = suite_create("ctl");
	TCase *text = tcase_create("text");
	TCase *json = tcase_create("json");

	tcase_set_timeout(text, 10);
	tcase_add_test(text, test_table);
	tcase_add_test(text, test_table_empty);
	tcase_add_test(text, test_table_no_eta);
	tcase_add_test(text, test_table_one_line_per_job);
	tcase_add_test(text, test_table_with_backup);
	tcase_add_test(text, test_table_with_bar);
	tcase_add_test(text, test_bar);
	tcase_add_test(text, test_line);
	tcase_add_test(text, test_logfmt_value);
	suite_add_tcase(s, text);

	tcase_set_timeout(json, 10);
	tcase_add_test(json, test_json_kind);
	tcase_add_test(json, test_json_number);
	tcase_add_test(json, test_json_values);
	tcase_add_test(json, test_json_object);
	suite_add_tcase(s, json);
	return s;
}
