/*
 * check_pressure.c - the lag decision: every signal, its limit and its words, hysteresis,
 * failing closed, and which signal the reason names when several offend.
 *
 * Each test starts from a configuration with every limit off and turns on what it tests, so
 * a signal can only throttle through its own rule.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "backfilld/pressure.h"
#include "suites.h"

#define NOW INT64_C(1000000)
#define KB  INT64_C(1024)
#define MB  (KB * 1024)
#define GB  (MB * 1024)

static char reason[256];

static bf_lag_config cfg_off(void)
{
	bf_lag_config c = {.resume_below = 0.5, .check_interval_ms = 1000};

	return c;
}

static bf_lag_sample sample(const bf_lag_standby *sb, size_t n_sb, const bf_lag_slot *sl,
                            size_t n_sl)
{
	bf_lag_sample s = {.ok = true,
	                   .taken_ms = NOW,
	                   .standbys = sb,
	                   .n_standbys = n_sb,
	                   .slots = sl,
	                   .n_slots = n_sl,
	                   .archive_backlog = -1};
	return s;
}

static bf_lag_standby standby(const char *name, int64_t bytes)
{
	bf_lag_standby sb = {.name = name,
	                     .state = "streaming",
	                     .replay_bytes = bytes,
	                     .replay_lag_ms = -1,
	                     .reply_age_ms = 100};
	return sb;
}

static bf_lag_slot slot(const char *name, int64_t retained)
{
	bf_lag_slot sl = {.name = name,
	                  .type = "logical",
	                  .active = false,
	                  .retained_bytes = retained,
	                  .wal_status = "reserved"};
	return sl;
}

/* Decide into the static reason buffer, which starts dirty so a stale text shows. */
static bool decide(const bf_lag_config *cfg, const bf_lag_sample *s, bool throttled)
{
	strcpy(reason, "stale text");
	return bf_pressure_decide(cfg, s, throttled, NOW, reason, sizeof(reason));
}

/* Throttled (from either side) with exactly this reason. */
#define ASSERT_THROTTLE(cfg, s, throttled, text)                                                   \
	do {                                                                                       \
		ck_assert_msg(decide((cfg), (s), (throttled)), "not throttled, want \"%s\"",       \
		              (text));                                                             \
		ck_assert_str_eq(reason, (text));                                                  \
	} while (0)

#define ASSERT_GO(cfg, s, throttled)                                                               \
	do {                                                                                       \
		ck_assert_msg(!decide((cfg), (s), (throttled)), "throttled: %s", reason);          \
		ck_assert_str_eq(reason, "");                                                      \
	} while (0)

START_TEST(test_disabled)
{
	bf_lag_config c = cfg_off();
	bf_lag_sample bad = {.ok = false, .error = "connection refused"};

	ck_assert(!bf_pressure_enabled(&c));
	ASSERT_GO(&c, NULL, false);
	ASSERT_GO(&c, NULL, true);
	ASSERT_GO(&c, &bad, true);
}
END_TEST

START_TEST(test_enabled_by_each_key)
{
	static char *names[] = {"standby1"};
	bf_lag_config c;

	c = cfg_off(), c.max_replay_bytes = 1;
	ck_assert(bf_pressure_enabled(&c));
	c = cfg_off(), c.max_replay_time_ms = 1;
	ck_assert(bf_pressure_enabled(&c));
	c = cfg_off(), c.max_slot_retained = 1;
	ck_assert(bf_pressure_enabled(&c));
	c = cfg_off(), c.max_archive_backlog = 1;
	ck_assert(bf_pressure_enabled(&c));
	c = cfg_off(), c.min_standbys = 1;
	ck_assert(bf_pressure_enabled(&c));
	c = cfg_off(), c.stall_after_ms = 1;
	ck_assert(bf_pressure_enabled(&c));
	c = cfg_off(), c.standbys = names, c.n_standbys = 1;
	ck_assert(bf_pressure_enabled(&c));
}
END_TEST

START_TEST(test_unreadable)
{
	bf_lag_config c = cfg_off();
	bf_lag_sample s = {.ok = false, .error = "connection refused", .taken_ms = NOW};

	c.max_replay_bytes = 64 * MB;
	ASSERT_THROTTLE(&c, NULL, false, "lag signal unreadable: no sample yet");
	ASSERT_THROTTLE(&c, &s, false, "lag signal unreadable: connection refused");
	ASSERT_THROTTLE(&c, &s, true, "lag signal unreadable: connection refused");
	s.error = NULL;
	ASSERT_THROTTLE(&c, &s, false, "lag signal unreadable: unknown error");
	s.error = "";
	ASSERT_THROTTLE(&c, &s, false, "lag signal unreadable: unknown error");
	/* readable again: go */
	s = sample(NULL, 0, NULL, 0);
	ASSERT_GO(&c, &s, true);
}
END_TEST

START_TEST(test_stale_sample)
{
	bf_lag_config c = cfg_off();
	bf_lag_sample s = sample(NULL, 0, NULL, 0);

	c.max_replay_bytes = 64 * MB;
	s.taken_ms = NOW - 3000; /* three check intervals: still fresh */
	ASSERT_GO(&c, &s, false);
	s.taken_ms = NOW - 3001;
	ASSERT_THROTTLE(&c, &s, false, "lag signal unreadable: last sample 3s old");
	s.taken_ms = NOW - 90000;
	ASSERT_THROTTLE(&c, &s, true, "lag signal unreadable: last sample 1m30s old");
	s.taken_ms = NOW + 500; /* a sample "from the future" is not stale */
	ASSERT_GO(&c, &s, false);
	/* a short check interval still allows a second */
	c.check_interval_ms = 100;
	s.taken_ms = NOW - 1000;
	ASSERT_GO(&c, &s, false);
	s.taken_ms = NOW - 1001;
	ASSERT_THROTTLE(&c, &s, false, "lag signal unreadable: last sample 1s old");
}
END_TEST

START_TEST(test_replay_bytes)
{
	bf_lag_config c = cfg_off();
	bf_lag_standby sb = standby("standby1", 81 * MB);
	bf_lag_sample s = sample(&sb, 1, NULL, 0);

	c.max_replay_bytes = 64 * MB;
	ASSERT_THROTTLE(&c, &s, false, "replay lag 81MB > 64MB on standby1");
	ck_assert_int_eq(bf_pressure_decide(&c, &s, false, NOW, NULL, 0), BF_HOLD_REPLAY_LAG);
	ASSERT_THROTTLE(&c, &s, true, "replay lag 81MB > 64MB on standby1");
	sb.replay_bytes = 64 * MB; /* at the limit is not over it */
	ASSERT_GO(&c, &s, false);
	sb.replay_bytes = 64 * MB + 1; /* printed exactly where rounding would hide it */
	ASSERT_THROTTLE(&c, &s, false, "replay lag 67108865B > 64MB on standby1");
	sb.replay_bytes = 1 * GB;
	ASSERT_THROTTLE(&c, &s, false, "replay lag 1GB > 64MB on standby1");
	sb.replay_bytes = -1; /* NULL: not measured */
	ASSERT_GO(&c, &s, false);
	ASSERT_GO(&c, &s, true);
	sb.replay_bytes = 81 * MB;
	c.max_replay_bytes = 0; /* off */
	ASSERT_GO(&c, &s, false);
}
END_TEST

START_TEST(test_replay_time)
{
	bf_lag_config c = cfg_off();
	bf_lag_standby sb = standby("standby1", 0);
	bf_lag_sample s = sample(&sb, 1, NULL, 0);

	c.max_replay_time_ms = 10000;
	c.max_replay_bytes = 64 * MB;
	sb.replay_lag_ms = 12000;
	ASSERT_THROTTLE(&c, &s, false, "replay time 12s > 10s on standby1");
	sb.replay_lag_ms = 12500;
	ASSERT_THROTTLE(&c, &s, false, "replay time 12.5s > 10s on standby1");
	sb.replay_lag_ms = 10000;
	ASSERT_GO(&c, &s, false);
	sb.replay_lag_ms = 10001;
	ASSERT_THROTTLE(&c, &s, false, "replay time 10001ms > 10s on standby1");
	/* NULL while throttled (the standby caught up and idles): it does not hold the job */
	sb.replay_lag_ms = -1;
	ASSERT_GO(&c, &s, true);
	/* nor is it read as "no lag": the byte lag still decides */
	sb.replay_bytes = 40 * MB;
	ASSERT_THROTTLE(&c, &s, true, "replay lag 40MB, resuming below 32MB on standby1");
	sb.replay_lag_ms = 6000;
	ASSERT_THROTTLE(&c, &s, true, "replay lag 40MB, resuming below 32MB on standby1");
	sb.replay_bytes = 0;
	ASSERT_THROTTLE(&c, &s, true, "replay time 6s, resuming below 5s on standby1");
	sb.replay_lag_ms = 4999;
	ASSERT_GO(&c, &s, true);
}
END_TEST

START_TEST(test_stall)
{
	bf_lag_config c = cfg_off();
	bf_lag_standby sb = standby("standby1", 0);
	bf_lag_sample s = sample(&sb, 1, NULL, 0);

	c.stall_after_ms = 30000;
	sb.reply_age_ms = 45000;
	ASSERT_THROTTLE(&c, &s, false, "standby1 stalled: last reply 45s ago > 30s");
	sb.reply_age_ms = 30000;
	ASSERT_GO(&c, &s, false);
	sb.reply_age_ms = 20000;
	ASSERT_THROTTLE(&c, &s, true, "standby1 stalled: last reply 20s ago, resuming below 15s");
	sb.reply_age_ms = 15000;
	ASSERT_THROTTLE(&c, &s, true, "standby1 stalled: last reply 15s ago, resuming below 15s");
	sb.reply_age_ms = 14999;
	ASSERT_GO(&c, &s, true);
	sb.reply_age_ms = -1; /* no reply yet: not measured */
	ASSERT_GO(&c, &s, false);
	ASSERT_GO(&c, &s, true);
}
END_TEST

START_TEST(test_slots)
{
	bf_lag_config c = cfg_off();
	bf_lag_slot sl[2] = {slot("phys1", 1 * MB), slot("cdc_slot", 3328599655)};
	bf_lag_sample s = sample(NULL, 0, sl, 2);

	c.max_slot_retained = 2 * GB;
	ASSERT_THROTTLE(&c, &s, false, "slot cdc_slot retains 3.1GB > 2GB");
	ck_assert_int_eq(bf_pressure_decide(&c, &s, false, NOW, NULL, 0), BF_HOLD_SLOT);
	sl[1].active = true; /* an active slot retains all the same */
	ASSERT_THROTTLE(&c, &s, false, "slot cdc_slot retains 3.1GB > 2GB");
	sl[1].wal_status = "unreserved";
	ASSERT_THROTTLE(&c, &s, false, "slot cdc_slot retains 3.1GB > 2GB (wal_status unreserved)");
	sl[1].wal_status = NULL;
	ASSERT_THROTTLE(&c, &s, false, "slot cdc_slot retains 3.1GB > 2GB");
	sl[1].retained_bytes = 3 * GB / 2;
	ASSERT_GO(&c, &s, false);
	ASSERT_THROTTLE(&c, &s, true, "slot cdc_slot retains 1.5GB, resuming below 1GB");
	sl[1].retained_bytes = 1 * GB - 1;
	ASSERT_GO(&c, &s, true);
	sl[1].retained_bytes = -1; /* lost: restart_lsn is NULL */
	sl[1].wal_status = "lost";
	ASSERT_GO(&c, &s, false);
	/* the dropped slot is simply not in the next sample */
	s.n_slots = 1;
	ASSERT_GO(&c, &s, true);
}
END_TEST

START_TEST(test_archive)
{
	bf_lag_config c = cfg_off();
	bf_lag_sample s = sample(NULL, 0, NULL, 0);

	c.max_archive_backlog = 64;
	s.archive_backlog = 80;
	ASSERT_THROTTLE(&c, &s, false, "archive backlog 80 segments > 64");
	ck_assert_int_eq(bf_pressure_decide(&c, &s, false, NOW, NULL, 0), BF_HOLD_ARCHIVE);
	s.archive_backlog = 64;
	ASSERT_GO(&c, &s, false);
	ASSERT_THROTTLE(&c, &s, true, "archive backlog 64 segments, resuming below 32");
	s.archive_backlog = 32;
	ASSERT_THROTTLE(&c, &s, true, "archive backlog 32 segments, resuming below 32");
	s.archive_backlog = 31;
	ASSERT_GO(&c, &s, true);
	s.archive_backlog = -1; /* archiving off */
	ASSERT_GO(&c, &s, true);
	s.archive_backlog = 1000;
	c.max_archive_backlog = 0; /* limit off */
	ASSERT_GO(&c, &s, false);
}
END_TEST

START_TEST(test_required_standbys)
{
	static char *names[] = {"standby1", "standby2"};
	bf_lag_config c = cfg_off();
	bf_lag_standby sb[3] = {standby("standby1", 0), standby("standby2", 0),
	                        standby("other", 0)};
	bf_lag_slot sl[2] = {slot("cdc", 0), slot("standby2", 81 * MB)};
	bf_lag_sample s = sample(sb, 3, NULL, 0);

	c.standbys = names;
	c.n_standbys = 2;
	ASSERT_GO(&c, &s, false);
	ASSERT_GO(&c, &s, true); /* no band for yes/no signals */
	sb[1].state = "catchup";
	ASSERT_THROTTLE(&c, &s, false, "standby2 not streaming (state catchup)");
	sb[1].state = "";
	ASSERT_THROTTLE(&c, &s, false, "standby2 not streaming (state unknown)");
	sb[1].state = NULL;
	ASSERT_THROTTLE(&c, &s, false, "standby2 not streaming (state unknown)");
	/* gone from pg_stat_replication */
	sb[1].name = "standby3";
	sb[1].state = "streaming";
	ASSERT_THROTTLE(&c, &s, false, "standby2 not streaming (not connected)");
	s.slots = sl;
	s.n_slots = 2;
	ASSERT_THROTTLE(&c, &s, true,
	                "standby2 not streaming (not connected; slot standby2 retains 81MB)");
	bf_lag_slot first[2] = {slot("standby2", 5 * KB), slot("cdc", 0)};
	s.slots = first;
	ASSERT_THROTTLE(&c, &s, false,
	                "standby2 not streaming (not connected; slot standby2 retains 5kB)");
	s.slots = sl;
	sl[1].retained_bytes = -1;
	ASSERT_THROTTLE(&c, &s, false, "standby2 not streaming (not connected)");
	/* both gone: the first named is reported */
	sb[0].name = "x";
	ASSERT_THROTTLE(&c, &s, false, "standby1 not streaming (not connected)");
	/* listed twice (a base backup under the same name): one streaming entry suffices */
	bf_lag_standby dup[2] = {standby("standby1", 0), standby("standby1", 0)};
	static char *one[] = {"standby1"};
	bf_lag_sample s2 = sample(dup, 2, NULL, 0);
	c.standbys = one;
	c.n_standbys = 1;
	dup[0].state = "backup";
	ASSERT_GO(&c, &s2, false);
	dup[1].state = "startup";
	ASSERT_THROTTLE(&c, &s2, false, "standby1 not streaming (state startup)");
	dup[1].state = "backup";
	ASSERT_THROTTLE(&c, &s2, false, "standby1 not streaming (state backup)");
	dup[0].state = "catchup"; /* two standbys of one name: the first is named */
	dup[1].state = "startup";
	ASSERT_THROTTLE(&c, &s2, false, "standby1 not streaming (state catchup)");
	/* back to streaming: resumes at once */
	dup[1].state = "streaming";
	ASSERT_GO(&c, &s2, true);
}
END_TEST

START_TEST(test_min_standbys)
{
	bf_lag_config c = cfg_off();
	bf_lag_standby sb[3] = {standby("a", 0), standby("b", 0), standby("c", 0)};
	bf_lag_sample s = sample(sb, 3, NULL, 0);

	c.min_standbys = 2;
	ASSERT_GO(&c, &s, false);
	sb[1].state = "catchup";
	ASSERT_GO(&c, &s, false);
	sb[2].state = "backup"; /* a base backup is no standby */
	ASSERT_THROTTLE(&c, &s, false, "1 streaming standbys < min_standbys 2");
	ASSERT_THROTTLE(&c, &s, true, "1 streaming standbys < min_standbys 2");
	s.n_standbys = 0;
	ASSERT_THROTTLE(&c, &s, false, "0 streaming standbys < min_standbys 2");
	s.n_standbys = 3;
	sb[1].state = "streaming";
	ASSERT_GO(&c, &s, true); /* no band for a count */
}
END_TEST

START_TEST(test_base_backup_ignored)
{
	bf_lag_config c = cfg_off();
	bf_lag_standby sb = standby("pg_basebackup", 10 * GB);
	bf_lag_sample s = sample(&sb, 1, NULL, 0);

	c.max_replay_bytes = 64 * MB;
	c.max_replay_time_ms = 10000;
	c.stall_after_ms = 30000;
	sb.state = "backup";
	sb.replay_lag_ms = 100000;
	sb.reply_age_ms = 100000;
	ASSERT_GO(&c, &s, false);
	sb.state = "catchup"; /* a catching-up standby is a standby: its lag counts */
	ASSERT_THROTTLE(&c, &s, false, "replay lag 10GB > 64MB on pg_basebackup");
}
END_TEST

START_TEST(test_hysteresis)
{
	bf_lag_config c = cfg_off();
	bf_lag_standby sb = standby("standby1", 40 * MB);
	bf_lag_sample s = sample(&sb, 1, NULL, 0);

	c.max_replay_bytes = 64 * MB;
	/* in the band: a running job runs on, a throttled one stays throttled */
	ASSERT_GO(&c, &s, false);
	ASSERT_THROTTLE(&c, &s, true, "replay lag 40MB, resuming below 32MB on standby1");
	sb.replay_bytes = 32 * MB;
	ASSERT_THROTTLE(&c, &s, true, "replay lag 32MB, resuming below 32MB on standby1");
	sb.replay_bytes = 32 * MB + 1; /* rounding would print "32MB, resuming below 32MB" */
	ASSERT_THROTTLE(&c, &s, true, "replay lag 33554433B, resuming below 32MB on standby1");
	sb.replay_bytes = 32 * MB - 1;
	ASSERT_GO(&c, &s, true);
	sb.replay_bytes = 0;
	ASSERT_GO(&c, &s, true);
	/* resume_below 100%: no band, resume below the limit itself */
	c.resume_below = 1.0;
	sb.replay_bytes = 64 * MB - 1;
	ASSERT_GO(&c, &s, true);
	sb.replay_bytes = 64 * MB;
	ASSERT_THROTTLE(&c, &s, true, "replay lag 64MB, resuming below 64MB on standby1");
	ASSERT_GO(&c, &s, false);
}
END_TEST

START_TEST(test_resume_threshold)
{
	bf_lag_config c = cfg_off();
	bf_lag_standby sb = standby("s1", 0);
	bf_lag_sample s = sample(&sb, 1, NULL, 0);

	/* 30% of 10 s is 3000 ms exactly, not 3001 after floating point */
	c.max_replay_time_ms = 10000;
	c.resume_below = 0.3;
	sb.replay_lag_ms = 3000;
	ASSERT_THROTTLE(&c, &s, true, "replay time 3s, resuming below 3s on s1");
	sb.replay_lag_ms = 2999;
	ASSERT_GO(&c, &s, true);
	/* a limit of 1 segment at 50%: resume at 0 (the threshold never drops below 1) */
	c = cfg_off();
	c.max_archive_backlog = 1;
	s.archive_backlog = 1;
	ASSERT_THROTTLE(&c, &s, true, "archive backlog 1 segments, resuming below 1");
	s.archive_backlog = 0;
	ASSERT_GO(&c, &s, true);
	/* 33%: ceil(64 * 0.33) = 22 */
	c.max_archive_backlog = 64;
	c.resume_below = 0.33;
	s.archive_backlog = 22;
	ASSERT_THROTTLE(&c, &s, true, "archive backlog 22 segments, resuming below 22");
	s.archive_backlog = 21;
	ASSERT_GO(&c, &s, true);
	/* nonsense shares are made safe: above 1 is 1, below 1% (or NaN) is 1% */
	c.resume_below = 2.0;
	s.archive_backlog = 63;
	ASSERT_GO(&c, &s, true);
	c.resume_below = 0;
	s.archive_backlog = 1;
	ASSERT_THROTTLE(&c, &s, true, "archive backlog 1 segments, resuming below 1");
	s.archive_backlog = 0;
	ASSERT_GO(&c, &s, true);
	c.resume_below = NAN;
	c.max_archive_backlog = 1000;
	s.archive_backlog = 10;
	ASSERT_THROTTLE(&c, &s, true, "archive backlog 10 segments, resuming below 10");
	s.archive_backlog = 9;
	ASSERT_GO(&c, &s, true);
}
END_TEST

START_TEST(test_worst_signal)
{
	static char *names[] = {"standby2"};
	bf_lag_config c = cfg_off();
	bf_lag_standby sb[2] = {standby("standby1", 81 * MB), standby("standby2", 10 * MB)};
	bf_lag_slot sl = slot("cdc_slot", 3328599655);
	bf_lag_sample s = sample(sb, 2, &sl, 1);

	c.max_replay_bytes = 64 * MB;
	c.max_slot_retained = 2 * GB;
	c.max_archive_backlog = 64;
	/* 81/64 = 1.27 against 3.1/2 = 1.55: the slot is worse */
	ASSERT_THROTTLE(&c, &s, false, "slot cdc_slot retains 3.1GB > 2GB");
	sb[1].replay_bytes = 200 * MB;
	ASSERT_THROTTLE(&c, &s, false, "replay lag 200MB > 64MB on standby2");
	/* equal ratios: the first one seen (standbys before slots) */
	sb[1].replay_bytes = 10 * MB;
	sl.retained_bytes = 81 * (GB / 32);
	ASSERT_THROTTLE(&c, &s, false, "replay lag 81MB > 64MB on standby1");
	/* a yes/no signal beats any number */
	c.standbys = names;
	c.n_standbys = 1;
	sb[1].state = "stopping";
	ASSERT_THROTTLE(&c, &s, false, "standby2 not streaming (state stopping)");
	c.min_standbys = 3;
	ASSERT_THROTTLE(&c, &s, false, "standby2 not streaming (state stopping)");
	sb[1].state = "streaming";
	ASSERT_THROTTLE(&c, &s, false, "2 streaming standbys < min_standbys 3");
	c.min_standbys = 0;
	c.n_standbys = 0;
	/* over a limit beats the band, whatever the ratios */
	sb[0].replay_bytes = 63 * MB; /* 1.97 x its resume threshold */
	sl.retained_bytes = 0;
	s.archive_backlog = 65; /* 1.02 x its limit */
	ASSERT_THROTTLE(&c, &s, true, "archive backlog 65 segments > 64");
	/* in the band, the one furthest above its threshold */
	s.archive_backlog = 40; /* 1.25 */
	ASSERT_THROTTLE(&c, &s, true, "replay lag 63MB, resuming below 32MB on standby1");
	sb[0].replay_bytes = 33 * MB; /* 1.03 */
	ASSERT_THROTTLE(&c, &s, true, "archive backlog 40 segments, resuming below 32");
	s.archive_backlog = 0;
	sb[1].replay_bytes = 48 * MB;
	ASSERT_THROTTLE(&c, &s, true, "replay lag 48MB, resuming below 32MB on standby2");
	sb[1].replay_bytes = 0;
	sb[0].replay_bytes = 0;
	ASSERT_GO(&c, &s, true);
}
END_TEST

START_TEST(test_names_and_buffers)
{
	bf_lag_config c = cfg_off();
	bf_lag_standby sb = standby("", 81 * MB);
	bf_lag_slot sl = slot(NULL, 3 * GB);
	bf_lag_sample s = sample(&sb, 1, NULL, 0);
	char small[11];

	c.max_replay_bytes = 64 * MB;
	c.max_slot_retained = 2 * GB;
	ASSERT_THROTTLE(&c, &s, false, "replay lag 81MB > 64MB on (unnamed)");
	sb.name = NULL;
	ASSERT_THROTTLE(&c, &s, false, "replay lag 81MB > 64MB on (unnamed)");
	s = sample(NULL, 0, &sl, 1);
	ASSERT_THROTTLE(&c, &s, false, "slot (unnamed) retains 3GB > 2GB");
	/* the reason is truncated to the buffer, and may be left out */
	ck_assert(bf_pressure_decide(&c, &s, false, NOW, small, sizeof(small)));
	ck_assert_str_eq(small, "slot (unna");
	ck_assert(bf_pressure_decide(&c, &s, false, NOW, NULL, 0));
	ck_assert_int_eq(bf_pressure_decide(&c, NULL, false, NOW, NULL, 0), BF_HOLD_LAG_PROBE);
	strcpy(small, "untouched");
	ck_assert(bf_pressure_decide(&c, &s, false, NOW, small, 0));
	ck_assert_str_eq(small, "untouched");
	ck_assert(bf_pressure_decide(&c, NULL, false, NOW, small, 0));
	ck_assert_str_eq(small, "untouched");
	/* a long error text is cut, not overflowed */
	char err[600];
	memset(err, 'e', sizeof(err) - 1);
	err[sizeof(err) - 1] = '\0';
	bf_lag_sample bad = {.ok = false, .error = err};
	ck_assert(decide(&c, &bad, false));
	ck_assert_uint_eq(strlen(reason), sizeof(reason) - 1);
	ck_assert(strncmp(reason, "lag signal unreadable: eee", 26) == 0);
}
END_TEST

Suite *pressure_suite(void)
{
	Suite *s = suite_create("pressure");
	TCase *basics = tcase_create("basics");
	TCase *signals = tcase_create("signals");
	TCase *hyst = tcase_create("hysteresis");

	tcase_set_timeout(basics, 10);
	tcase_add_test(basics, test_disabled);
	tcase_add_test(basics, test_enabled_by_each_key);
	tcase_add_test(basics, test_unreadable);
	tcase_add_test(basics, test_stale_sample);
	tcase_add_test(basics, test_names_and_buffers);
	suite_add_tcase(s, basics);

	tcase_set_timeout(signals, 10);
	tcase_add_test(signals, test_replay_bytes);
	tcase_add_test(signals, test_replay_time);
	tcase_add_test(signals, test_stall);
	tcase_add_test(signals, test_slots);
	tcase_add_test(signals, test_archive);
	tcase_add_test(signals, test_required_standbys);
	tcase_add_test(signals, test_min_standbys);
	tcase_add_test(signals, test_base_backup_ignored);
	suite_add_tcase(s, signals);

	tcase_set_timeout(hyst, 10);
	tcase_add_test(hyst, test_hysteresis);
	tcase_add_test(hyst, test_resume_threshold);
	tcase_add_test(hyst, test_worst_signal);
	suite_add_tcase(s, hyst);
	return s;
}
