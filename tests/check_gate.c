/*
 * check_gate.c - may the next batch run now: the window by the server's clock, the lag with
 * its hysteresis, the rate cap, and their order.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "backfilld/gate.h"
#include "backfilld/window.h"
#include "suites.h"

#define NOW  INT64_C(5000000)
#define HOUR INT64_C(3600000)
#define MB   (INT64_C(1024) * 1024)

/* A job with nothing that holds it back. */
static bf_job_config plain(void)
{
	bf_job_config c = {.batch_size = 1000};

	c.lag.resume_below = 0.5;
	c.lag.check_interval_ms = 1000;
	return c;
}

static void window(bf_job_config *c, int start_h, int end_h)
{
	c->window = (bf_window){.set = true, .start_min = start_h * 60, .end_min = end_h * 60};
	strcpy(c->window.text, start_h == 1 ? "01:00-06:00" : "window");
}

START_TEST(test_open)
{
	bf_job_config c = plain();
	bf_gate g;
	bf_gate_readings r = {0};
	bf_gate_verdict v;

	bf_gate_init(&g, &c, NOW);
	ck_assert(!bf_gate_wants_clock(&g, &c, NOW)); /* no window: no clock needed */
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_GO);
	ck_assert_int_eq(v.wait_ms, 0);
}
END_TEST

START_TEST(test_window)
{
	bf_job_config c = plain();
	bf_gate g;
	bf_gate_readings r = {0};
	bf_gate_verdict v;

	window(&c, 1, 6);
	bf_gate_init(&g, &c, NOW);
	ck_assert(bf_gate_wants_clock(&g, &c, NOW));
	/* the server's wall clock reads 07:00 (local): closed until 01:00 */
	bf_gate_set_clock(&g, 7 * HOUR, NOW);
	ck_assert(!bf_gate_wants_clock(&g, &c, NOW + BF_WINDOW_RECHECK_MS - 1));
	ck_assert(bf_gate_wants_clock(&g, &c, NOW + BF_WINDOW_RECHECK_MS));
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_THROTTLED);
	ck_assert_int_eq(v.hold, BF_HOLD_WINDOW);
	ck_assert_str_eq(v.reason, "outside window 01:00-06:00");
	/* never longer than a recheck: the clock is read again before it opens */
	ck_assert_int_eq(v.wait_ms, BF_WINDOW_RECHECK_MS);
	/* 00:59:30 by that reading plus our own clock: 30 s to go */
	v = bf_gate_decide(&g, &c, &r, NOW + 17 * HOUR + 59 * 60000 + 30000, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_THROTTLED);
	ck_assert_int_eq(v.wait_ms, 30000);
	/* 03:00: open */
	bf_gate_set_clock(&g, 3 * HOUR, NOW);
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_GO);
}
END_TEST

static bf_lag_standby standby(int64_t bytes)
{
	return (bf_lag_standby){.name = "s1",
	                        .state = "streaming",
	                        .replay_bytes = bytes,
	                        .replay_lag_ms = -1,
	                        .reply_age_ms = 0};
}

static bf_lag_sample sample(const bf_lag_standby *sb)
{
	return (bf_lag_sample){.ok = true,
	                       .taken_ms = NOW,
	                       .standbys = sb,
	                       .n_standbys = 1,
	                       .archive_backlog = -1};
}

START_TEST(test_lag)
{
	bf_job_config c = plain();
	bf_gate g;
	bf_lag_standby sb = standby(81 * MB);
	bf_lag_sample s = sample(&sb);
	bf_lag_sample none = {0};
	bf_gate_readings r = {.lag = &s};
	bf_gate_verdict v;

	c.lag.max_replay_bytes = 64 * MB;
	bf_gate_init(&g, &c, NOW);
	/* the monitor has no sample yet: ask again soon, the state as it is */
	r.lag = &none;
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_UNKNOWN);
	ck_assert_int_eq(v.wait_ms, BF_GATE_FIRST_SAMPLE_MS);
	r.lag = &s;
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_THROTTLED);
	ck_assert_str_eq(v.reason, "replay lag 81MB > 64MB on s1");
	ck_assert_int_eq(v.hold, BF_HOLD_REPLAY_LAG);
	ck_assert_int_eq(v.wait_ms, 1000);
	/* below the limit but above resume_below of it: still held (hysteresis) */
	sb.replay_bytes = 40 * MB;
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_THROTTLED);
	sb.replay_bytes = 20 * MB;
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_GO);
	/* and from running, 40MB goes on */
	sb.replay_bytes = 40 * MB;
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_GO);
	/* without limits, a lagging standby holds nothing, nor a monitor with no sample yet */
	c.lag.max_replay_bytes = 0;
	c.lag.stall_after_ms = 0;
	sb.replay_bytes = 81 * MB;
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_GO);
	r.lag = &none;
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_GO);
}
END_TEST

START_TEST(test_window_before_lag)
{
	bf_job_config c = plain();
	bf_gate g;
	bf_lag_standby sb = standby(81 * MB);
	bf_lag_sample s = sample(&sb);
	bf_gate_readings r = {.lag = &s};
	bf_gate_verdict v;

	c.lag.max_replay_bytes = 64 * MB;
	window(&c, 1, 6);
	bf_gate_init(&g, &c, NOW);
	bf_gate_set_clock(&g, 3 * HOUR, NOW);
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_str_eq(v.reason, "replay lag 81MB > 64MB on s1");
	/* the window closes: its reason, and the lag's hysteresis starts over when it opens */
	bf_gate_set_clock(&g, 7 * HOUR, NOW);
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_str_eq(v.reason, "outside window 01:00-06:00");
	ck_assert(!g.lag_throttled);
	bf_gate_set_clock(&g, 3 * HOUR, NOW);
	sb.replay_bytes = 40 * MB; /* under the limit, over resume_below: goes, not throttled */
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_GO);
}
END_TEST

START_TEST(test_rate_cap)
{
	bf_job_config c = plain();
	bf_gate g;
	bf_gate_readings r = {0};
	bf_gate_verdict v;

	c.max_rows_per_second = 1000;
	bf_gate_init(&g, &c, NOW);
	bf_gate_took(&g, NOW, 2000, 100);
	/* spaced, never throttled: a wait with the state left running */
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_GO);
	ck_assert_int_gt(v.wait_ms, 1000);
	ck_assert_int_eq(v.hold, BF_HOLD_RATE);
	ck_assert_str_eq(v.reason, "");
	/* the server's WAL bucket spaces batches too, for a job with max_wal_rate only */
	c.max_rows_per_second = 0;
	bf_gate_retune(&g, &c, NOW);
	r.wal_wait_ms = 300;
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.wait_ms, 0);
	c.max_wal_rate = 3 * MB;
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_GO);
	ck_assert_int_eq(v.wait_ms, 300);
	ck_assert_int_eq(v.hold, BF_HOLD_WAL_RATE);
	ck_assert_str_eq(v.reason, "");
	r.wal_wait_ms = 0;
	c.max_rows_per_second = 1000;
	bf_gate_retune(&g, &c, NOW);
	bf_gate_took(&g, NOW, 2000, 100);
	/* a reload lifts the cap */
	c.max_rows_per_second = 0;
	bf_gate_retune(&g, &c, NOW);
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.wait_ms, 0);
}
END_TEST

/* A commit reading: probe number seq with a p90 of ms. */
static bf_commit_reading commit(uint64_t seq, int64_t p90_ms)
{
	return (bf_commit_reading){.ok = true,
	                           .seq = seq,
	                           .n = BF_COMMIT_PROBES,
	                           .p90_us = p90_ms * 1000,
	                           .taken_ms = NOW};
}

START_TEST(test_commit_latency)
{
	bf_job_config c = plain();
	bf_gate g;
	bf_commit_reading cr = {.error = "no commit probe has completed yet"};
	bf_gate_readings r = {.commit = &cr};
	bf_gate_verdict v;

	c.max_commit_latency_ms = 10;
	bf_gate_init(&g, &c, NOW);
	/* no probe yet: ask again soon */
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_UNKNOWN);
	/* a failing probe fails closed, saying why */
	cr.taken_ms = NOW;
	cr.error = "commit probe: cannot execute in a read-only transaction";
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_THROTTLED);
	ck_assert_str_eq(v.reason, "commit latency unreadable: commit probe: cannot execute in a "
	                           "read-only transaction");
	ck_assert_int_eq(v.hold, BF_HOLD_COMMIT_LATENCY);
	/* under the budget: full pace, no reason, no pause */
	cr = commit(1, 2);
	bf_gate_took(&g, NOW, 1000, 100);
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_GO);
	ck_assert_str_eq(v.reason, "");
	ck_assert_int_eq(v.wait_ms, 0);
	/* over it: slower, a pause after each batch (a batch of 100 ms at 80%: 25 ms) */
	cr = commit(2, 12);
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_GO);
	ck_assert_str_eq(v.reason, "commit latency 12ms > 10ms: pace 80%");
	ck_assert_int_eq(v.wait_ms, 25);
	/* and smaller batches: less WAL for each application commit to wait for */
	ck_assert_int_eq(bf_gate_batch_keys(&g, &c, 1000, 100), 800);
	ck_assert_int_eq(bf_gate_batch_keys(&g, &c, 110, 100), 100);
	ck_assert_int_eq(bf_gate_batch_keys(&g, &c, 50, 100), 50);
	/* the same reading again does not slow it twice; the pause counts from the batch's end */
	v = bf_gate_decide(&g, &c, &r, NOW + 10, 1000);
	ck_assert_str_eq(v.reason, "commit latency 12ms > 10ms: pace 80%");
	ck_assert_int_eq(v.wait_ms, 15);
	cr = commit(3, 12);
	v = bf_gate_decide(&g, &c, &r, NOW + 100, 1000);
	ck_assert_str_eq(v.reason, "commit latency 12ms > 10ms: pace 64%");
	ck_assert_int_eq(v.wait_ms, 0); /* 56 ms after a 100 ms batch: passed */
	/* back under the budget: the pace climbs again, then the reason goes */
	cr = commit(4, 3);
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_str_eq(v.reason, "commit latency 3.0ms <= 10ms: pace 74%");
	for (uint64_t seq = 5; seq < 9; seq++) {
		cr = commit(seq, 3);
		v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	}
	ck_assert_str_eq(v.reason, "");
	ck_assert_int_eq(v.kind, BF_GATE_GO);
	ck_assert_int_eq(bf_gate_batch_keys(&g, &c, 1000, 100), 1000); /* full pace: as asked */
	/* past BF_PACE_CRITICAL times the budget it stops, once enough probes say so */
	cr = commit(9, 45);
	cr.n = BF_COMMIT_MIN - 1;
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_GO);
	cr.n = BF_COMMIT_MIN;
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_THROTTLED);
	ck_assert_str_eq(v.reason, "commit latency 45ms > 10ms");
	/* off: no reading matters */
	c.max_commit_latency_ms = 0;
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_GO);
	ck_assert_str_eq(v.reason, "");
}
END_TEST

START_TEST(test_throttle_query)
{
	bf_job_config c = plain();
	bf_gate g;
	bf_query_reading q = {.error = "it has not run yet"};
	bf_gate_readings r = {.query = &q};
	bf_gate_verdict v;

	c.throttle_query = "SELECT p99 FROM app";
	c.throttle_above = 50;
	bf_gate_init(&g, &c, NOW);
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_UNKNOWN);
	q = (bf_query_reading){.ok = true, .value = 80, .taken_ms = NOW};
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_THROTTLED);
	ck_assert_str_eq(v.reason, "throttle_query 80 > 50");
	ck_assert_int_eq(v.hold, BF_HOLD_THROTTLE_QUERY);
	ck_assert_int_eq(v.wait_ms, 1000);
	q.value = 50; /* at the limit is not above it */
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_GO);
	ck_assert_str_eq(v.reason, "");
	q.value = 0.25;
	c.throttle_above = 0.2;
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_str_eq(v.reason, "throttle_query 0.25 > 0.2");
	q = (bf_query_reading){.error = "relation \"app\" does not exist", .taken_ms = NOW};
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_THROTTLED); /* fail closed */
	ck_assert_str_eq(v.reason, "throttle_query failed: relation \"app\" does not exist");
	c.throttle_query = NULL; /* a job without one ignores the reading */
	v = bf_gate_decide(&g, &c, &r, NOW, 1000);
	ck_assert_int_eq(v.kind, BF_GATE_GO);
}
END_TEST

Suite *gate_suite(void)
{
	Suite *s = suite_create("gate");
	TCase *tc = tcase_create("gate");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_open);
	tcase_add_test(tc, test_window);
	tcase_add_test(tc, test_lag);
	tcase_add_test(tc, test_window_before_lag);
	tcase_add_test(tc, test_rate_cap);
	tcase_add_test(tc, test_commit_latency);
	tcase_add_test(tc, test_throttle_query);
	suite_add_tcase(s, tc);
	return s;
}
