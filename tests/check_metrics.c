/*
 * check_metrics.c - the Prometheus text of metrics.c: every metric once with HELP and TYPE,
 * a series per job, label values escaped, the state as 0/1 series, counters by class and
 * reason, the batch histogram, the servers' gauges; the request head's verdicts.
 */
#include <stdlib.h>
#include <string.h>

#include "backfilld/metrics.h"
#include "backfilld/version.h"
#include "suites.h"

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static char *render(const bf_job_figures *jobs, size_t n, const bf_server_figures *sv, size_t m)
{
	bf_metrics_page page = {.jobs = jobs, .n_jobs = n, .servers = sv, .n_servers = m};

	return bf_metrics_render(&page);
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
	char *t = render(f, 2, NULL, 0);

	ck_assert_int_eq(count(t, "# TYPE backfilld_rows_done_total counter\n"), 1);
	ck_assert_int_eq(count(t, "# HELP backfilld_rows_done_total "), 1);
	ck_assert_ptr_nonnull(strstr(t, "backfilld_rows_done_total{job=\"users_email\"} 345000\n"));
	ck_assert_ptr_nonnull(strstr(t, "backfilld_rows_done_total{job=\"orders\"} 7\n"));
	ck_assert_ptr_nonnull(strstr(t, "backfilld_build_info{version=\"" BF_VERSION "\"} 1\n"));
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
	ck_assert_int_eq(count(t, "backfilld_job_state{job=\"users_email\","), BF_JOB_N_STATES);
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
	bf_server_figures sv = {.database = "h\"x:5432/db", .up = true};
	char *t = render(&f, 1, &sv, 1);

	ck_assert_ptr_nonnull(strstr(t, "backfilld_rows_done_total{job=\"a\\\"b\\\\c\\nd\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(t, "backfilld_up{database=\"h\\\"x:5432/db\"} 1\n"));
	free(t);
}
END_TEST

START_TEST(test_no_jobs)
{
	char *t = render(NULL, 0, NULL, 0);

	/* the families are still described, with no series */
	ck_assert_int_eq(count(t, "# TYPE "), 22);
	ck_assert_ptr_null(strstr(t, "{job="));
	ck_assert_ptr_null(strstr(t, "{database="));
	free(t);
}
END_TEST

/* Counters by class and reason, every class and reason present; the histogram cumulative,
 * +Inf equal to _count. */
START_TEST(test_counters_and_histogram)
{
	bf_job_figures f = {.name = "j", .state = BF_JOB_RUNNING};
	char *t;

	bf_job_counts_batch(&f.counts, 3);     /* le 0.005 */
	bf_job_counts_batch(&f.counts, 10);    /* le 0.01: a bound is inclusive */
	bf_job_counts_batch(&f.counts, 400);   /* le 0.5 */
	bf_job_counts_batch(&f.counts, 60000); /* above the last bound: +Inf only */
	f.counts.errors[bf_metrics_error_class("55P03")] += 2;
	f.counts.errors[bf_metrics_error_class("08006")]++;
	f.counts.held_ms[BF_HOLD_REPLAY_LAG] = 12500;
	t = render(&f, 1, NULL, 0);
	ck_assert_ptr_nonnull(strstr(t, "# TYPE backfilld_batch_duration_seconds histogram\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "backfilld_batch_duration_seconds_bucket{job=\"j\",le=\"0.005\"} 1\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "backfilld_batch_duration_seconds_bucket{job=\"j\",le=\"0.01\"} 2\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "backfilld_batch_duration_seconds_bucket{job=\"j\",le=\"0.25\"} 2\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "backfilld_batch_duration_seconds_bucket{job=\"j\",le=\"0.5\"} 3\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "backfilld_batch_duration_seconds_bucket{job=\"j\",le=\"30\"} 3\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "backfilld_batch_duration_seconds_bucket{job=\"j\",le=\"+Inf\"} 4\n"));
	ck_assert_ptr_nonnull(strstr(t, "backfilld_batch_duration_seconds_count{job=\"j\"} 4\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "backfilld_batch_duration_seconds_sum{job=\"j\"} 60.413\n"));
	ck_assert_ptr_nonnull(strstr(t, "backfilld_batches_total{job=\"j\"} 4\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "backfilld_errors_total{job=\"j\",class=\"lock_timeout\"} 2\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "backfilld_errors_total{job=\"j\",class=\"connection\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(t, "backfilld_errors_total{job=\"j\",class=\"other\"} 0\n"));
	ck_assert_int_eq(count(t, "backfilld_errors_total{job=\"j\","), BF_ERR_N);
	ck_assert_ptr_nonnull(strstr(
	        t, "backfilld_throttled_seconds_total{job=\"j\",reason=\"replay_lag\"} 12.500\n"));
	ck_assert_ptr_nonnull(strstr(
	        t, "backfilld_throttled_seconds_total{job=\"j\",reason=\"paused\"} 0.000\n"));
	ck_assert_int_eq(count(t, "backfilld_throttled_seconds_total{job=\"j\","), BF_HOLD_N - 1);
	ck_assert_ptr_null(strstr(t, "reason=\"none\""));
	free(t);
}
END_TEST

START_TEST(test_error_classes)
{
	ck_assert_int_eq(bf_metrics_error_class("55P03"), BF_ERR_LOCK_TIMEOUT);
	ck_assert_int_eq(bf_metrics_error_class("57014"), BF_ERR_STATEMENT_TIMEOUT);
	ck_assert_int_eq(bf_metrics_error_class("40001"), BF_ERR_CONFLICT);
	ck_assert_int_eq(bf_metrics_error_class("40P01"), BF_ERR_CONFLICT);
	ck_assert_int_eq(bf_metrics_error_class("08006"), BF_ERR_CONNECTION);
	ck_assert_int_eq(bf_metrics_error_class("57P01"), BF_ERR_CONNECTION);
	ck_assert_int_eq(bf_metrics_error_class("42703"), BF_ERR_OTHER);
	ck_assert_int_eq(bf_metrics_error_class(""), BF_ERR_OTHER);
	ck_assert_int_eq(bf_metrics_error_class(NULL), BF_ERR_OTHER);
}
END_TEST

/* The servers' gauges from the lag sample: NULL measurements and repeated names left out,
 * nothing from an unreadable sample but lag_probe_ok 0, no lag gauges without a monitor. */
START_TEST(test_servers)
{
	bf_lag_standby sb[] = {{.name = "s1", .replay_bytes = 4096},
	                       {.name = "s1", .replay_bytes = 1},
	                       {.name = "s2", .replay_bytes = -1}};
	bf_lag_slot sl[] = {{.name = "cdc", .retained_bytes = 123}};
	bf_lag_sample ok = {.ok = true,
	                    .standbys = sb,
	                    .n_standbys = 3,
	                    .slots = sl,
	                    .n_slots = 1,
	                    .archive_backlog = 7};
	bf_lag_sample bad = {.ok = false, .standbys = sb, .n_standbys = 3, .archive_backlog = 7};
	bf_server_figures sv[] = {{.database = "a:5432/x", .up = true, .lag = &ok},
	                          {.database = "b/y", .up = false, .lag = &bad},
	                          {.database = "c/z", .up = true}};
	char *t = render(NULL, 0, sv, 3);

	ck_assert_ptr_nonnull(strstr(t, "backfilld_up{database=\"a:5432/x\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(t, "backfilld_up{database=\"b/y\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(t, "backfilld_up{database=\"c/z\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(t, "backfilld_lag_probe_ok{database=\"a:5432/x\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(t, "backfilld_lag_probe_ok{database=\"b/y\"} 0\n"));
	ck_assert_ptr_null(strstr(t, "backfilld_lag_probe_ok{database=\"c/z\"}"));
	ck_assert_ptr_nonnull(strstr(
	        t, "backfilld_replay_lag_bytes{database=\"a:5432/x\",standby=\"s1\"} 4096\n"));
	ck_assert_int_eq(count(t, "backfilld_replay_lag_bytes{"), 1);
	ck_assert_ptr_nonnull(strstr(
	        t, "backfilld_slot_retained_bytes{database=\"a:5432/x\",slot=\"cdc\"} 123\n"));
	ck_assert_ptr_nonnull(
	        strstr(t, "backfilld_archive_backlog_segments{database=\"a:5432/x\"} 7\n"));
	ck_assert_int_eq(count(t, "backfilld_archive_backlog_segments{"), 1);
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
	memset(&h, 0, sizeof(h));
	ck_assert_int_eq(bf_metrics_head_feed(&h, "GET /healthz HTTP/1.0\r\n\r\n", 26),
	                 BF_METRICS_HEALTH);
	memset(&h, 0, sizeof(h));
	ck_assert_int_eq(bf_metrics_head_feed(&h, "GET /metricsx HTTP/1.0\r\n\r\n", 27),
	                 BF_METRICS_NOT_FOUND);
	memset(&h, 0, sizeof(h));
	ck_assert_int_eq(bf_metrics_head_feed(&h, "POST /metrics HTTP/1.0\r\n\r\n", 27),
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
	tcase_add_test(tc, test_counters_and_histogram);
	tcase_add_test(tc, test_error_classes);
	tcase_add_test(tc, test_servers);
	suite_add_tcase(s, tc);
	return s;
}
