/*
 * check_metrics.c - the Prometheus text of metrics.c: every metric once with HELP and TYPE,
 * a series per job, label values escaped, the state as 0/1 series.
 */
#include <stdlib.h>
#include <string.h>

#include "backfilld/metrics.h"
#include "suites.h"

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

START_TEST(test_two_jobs)
{
	bf_job_figures f[2] = {
	        {.name = "users_email",
	         .state = BF_JOB_RUNNING,
	         .rows_done = 345000,
	         .rows_estimate = 1000000,
	         .rows_per_second = 86228.5,
	         .batch_size = 5000,
	         .last_batch_ms = 48,
	         .pass = 1,
	         .pace = 0.4,
	         .commit_p90_us = 12300},
	        {.name = "orders", .state = BF_JOB_FAILED, .rows_done = 7, .pass = 2},
	};
	char *t = bf_metrics_render(f, 2);

	ck_assert_int_eq(count(t, "# TYPE backfilld_rows_done counter\n"), 1);
	ck_assert_int_eq(count(t, "# HELP backfilld_rows_done "), 1);
	ck_assert_ptr_nonnull(strstr(t, "backfilld_rows_done{job=\"users_email\"} 345000\n"));
	ck_assert_ptr_nonnull(strstr(t, "backfilld_rows_done{job=\"orders\"} 7\n"));
	ck_assert_ptr_nonnull(strstr(t, "backfilld_rows_estimate{job=\"users_email\"} 1000000\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "backfilld_rows_per_second{job=\"users_email\"} 86228.5\n"));
	ck_assert_ptr_nonnull(strstr(t, "backfilld_batch_size{job=\"users_email\"} 5000\n"));
	ck_assert_ptr_nonnull(strstr(t, "backfilld_last_batch_seconds{job=\"users_email\"} 0.048"));
	ck_assert_ptr_nonnull(strstr(t, "backfilld_pass{job=\"orders\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(t, "backfilld_pace_ratio{job=\"users_email\"} 0.4"));
	ck_assert_ptr_nonnull(
	        strstr(t, "backfilld_commit_latency_seconds{job=\"users_email\"} 0.0123"));
	/* one 0/1 series per state and job, exactly one 1 per job */
	ck_assert_int_eq(count(t, "backfilld_job_state{job=\"users_email\","), 7);
	ck_assert_ptr_nonnull(
	        strstr(t, "backfilld_job_state{job=\"users_email\",state=\"running\"} 1\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "backfilld_job_state{job=\"users_email\",state=\"paused\"} 0\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "backfilld_job_state{job=\"orders\",state=\"failed\"} 1\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "backfilld_job_state{job=\"users_email\",state=\"failed\"} 0\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "backfilld_job_state{job=\"orders\",state=\"running\"} 0\n"));
	free(t);
}
END_TEST

START_TEST(test_label_escaping)
{
	bf_job_figures f = {.name = "a\"b\\c\nd", .state = BF_JOB_PENDING};
	char *t = bf_metrics_render(&f, 1);

	ck_assert_ptr_nonnull(strstr(t, "backfilld_rows_done{job=\"a\\\"b\\\\c\\nd\"} 0\n"));
	free(t);
}
END_TEST

START_TEST(test_no_jobs)
{
	char *t = bf_metrics_render(NULL, 0);

	/* the families are still described, with no series */
	ck_assert_int_eq(count(t, "# TYPE "), 9);
	ck_assert_ptr_null(strstr(t, "{job="));
	free(t);
}
END_TEST

/* The request head in pieces: the verdict comes with the blank line, wherever it is cut. */
START_TEST(test_request_head)
{
	static bf_metrics_head h;
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	char big[BF_METRICS_HEAD_MAX + 10];

	for (size_t cut = 1; cut < sizeof(req) - 1; cut++) {
		memset(&h, 0, sizeof(h));
		ck_assert_int_eq(bf_metrics_head_feed(&h, req, cut), BF_METRICS_MORE);
		ck_assert_int_eq(bf_metrics_head_feed(&h, req + cut, sizeof(req) - 1 - cut),
		                 BF_METRICS_SCRAPE);
	}
	memset(&h, 0, sizeof(h));
	ck_assert_int_eq(bf_metrics_head_feed(&h, "GET /metrics?x=1\n\n", 19), BF_METRICS_SCRAPE);
	memset(&h, 0, sizeof(h));
	ck_assert_int_eq(bf_metrics_head_feed(&h, "GET /other HTTP/1.0\r\n\r\n", 24),
	                 BF_METRICS_NOT_FOUND);
	/* bytes a string function would stop at are data */
	memset(&h, 0, sizeof(h));
	ck_assert_int_eq(bf_metrics_head_feed(&h, "GET /metrics \0\n\n", 16), BF_METRICS_SCRAPE);
	memset(&h, 0, sizeof(h));
	ck_assert_int_eq(bf_metrics_head_feed(&h, "GET", 3), BF_METRICS_MORE);
	ck_assert_int_eq(bf_metrics_head_feed(&h, "\n\n", 2), BF_METRICS_NOT_FOUND);
	/* no blank line in the first BF_METRICS_HEAD_MAX bytes: 400, never read past */
	memset(&h, 0, sizeof(h));
	memset(big, 'a', sizeof(big));
	ck_assert_int_eq(bf_metrics_head_feed(&h, big, BF_METRICS_HEAD_MAX - 1), BF_METRICS_MORE);
	ck_assert_int_eq(bf_metrics_head_feed(&h, big, sizeof(big)), BF_METRICS_TOO_LARGE);
	ck_assert_uint_eq(h.len, BF_METRICS_HEAD_MAX);
}
END_TEST

Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_add_test(tc, test_two_jobs);
	tcase_add_test(tc, test_request_head);
	tcase_add_test(tc, test_label_escaping);
	tcase_add_test(tc, test_no_jobs);
	suite_add_tcase(s, tc);
	return s;
}
