/*
 * check_log.c - the log line: logfmt quoting, the logfmt-to-JSON conversion, the journal's
 * "<N>" prefix without a timestamp, and level filtering.
 *
 * Lines are compared whole: a log line is read by programs (journalctl -o json, Loki, jq) as
 * much as by people, so one stray quote is a bug. bf_log itself is checked by pointing
 * stderr at a temporary file for the length of one test.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backfilld/log.h"
#include "suites.h"

/* 2023-11-14T22:13:20.123Z */
#define TS INT64_C(1700000000123)

static void render_is(enum bf_log_format format, bool journal, int level, const char *job,
                      const char *msg, const char *kvs, const char *want)
{
	char *line = bf_log_render(format, journal, TS, level, job, msg, kvs);

	ck_assert_ptr_nonnull(line);
	ck_assert_msg(strcmp(line, want) == 0, "\n  got  %s  want %s", line, want);
	free(line);
}

static void q_is(const char *in, const char *want)
{
	char buf[256];

	memset(buf, 'Z', sizeof(buf));
	ck_assert_ptr_eq(bf_log_q(buf, sizeof(buf), in), buf);
	ck_assert_msg(strcmp(buf, want) == 0, "bf_log_q(%s): got [%s], want [%s]", in ? in : "NULL",
	              buf, want);
}

START_TEST(test_q_bare_words)
{
	q_is("users_email_lower", "users_email_lower");
	q_is("1234", "1234");
	q_is("-1.5", "-1.5");
	q_is("public.users", "public.users");
	q_is("127.0.0.1:5432/app", "127.0.0.1:5432/app");
	q_is("3m14s", "3m14s");
}
END_TEST

START_TEST(test_q_quoting)
{
	q_is("two words", "\"two words\"");
	q_is(" lead", "\" lead\"");
	q_is("say \"hi\"", "\"say \\\"hi\\\"\"");
	q_is("a=b", "\"a=b\"");
	q_is("email_lower = lower(email)", "\"email_lower = lower(email)\"");
	q_is("", "\"\"");
	q_is(NULL, "\"\"");
	q_is("line1\nline2", "\"line1\\nline2\"");
	q_is("a\tb\rc", "\"a\\tb\\rc\"");
	q_is("C:\\dir", "\"C:\\\\dir\"");
	q_is("bell\x07", "\"bell\\u0007\"");
	q_is("\x1b[31m", "\"\\u001b[31m\"");
	q_is("caf\xc3\xa9", "\"caf\xc3\xa9\""); /* UTF-8 kept as is, but quoted */

	/* truncated to the buffer, always terminated */
	char small[5];
	ck_assert_str_eq(bf_log_q(small, sizeof(small), "two words"), "\"two");
	/* a long value is cut between escapes, marked, and its quote closed */
	char mid[16];
	ck_assert_str_eq(bf_log_q(mid, sizeof(mid), "a b c d e f g h i j"), "\"a b c d e ...\"");
	ck_assert_str_eq(bf_log_q(mid, sizeof(mid), "abcdefgh\x01\x02 x"), "\"abcdefgh...\"");
	ck_assert_str_eq(bf_log_q(mid, sizeof(mid), "abcdefghijklmnopqrstu"), "abcdefghijkl...");
	char none[1] = {'x'};
	ck_assert_ptr_eq(bf_log_q(none, 0, "abc"), none);
	ck_assert_int_eq(none[0], 'x');
}
END_TEST

START_TEST(test_render_text)
{
	char q[64];
	char *kvs = bf_xasprintf("rows=%d state=%s reason=%s", 1234000,
	                         bf_log_q(q, sizeof(q), "running"), "\"replay lag 80MB > 64MB\"");

	render_is(BF_LOG_TEXT, false, BF_LOG_INFO, "users_email_lower", "progress", kvs,
	          "ts=2023-11-14T22:13:20.123Z level=info job=users_email_lower msg=progress "
	          "rows=1234000 state=running reason=\"replay lag 80MB > 64MB\"\n");
	free(kvs);

	/* no job, no pairs; the message quoted when it must be */
	render_is(BF_LOG_TEXT, false, BF_LOG_WARN, NULL, "database unreachable", NULL,
	          "ts=2023-11-14T22:13:20.123Z level=warn msg=\"database unreachable\"\n");
	render_is(BF_LOG_TEXT, false, BF_LOG_ERROR, "a b", "", "",
	          "ts=2023-11-14T22:13:20.123Z level=error job=\"a b\" msg=\"\"\n");
	render_is(BF_LOG_TEXT, false, BF_LOG_DEBUG, NULL, "x=\"1\"\n", "k=v",
	          "ts=2023-11-14T22:13:20.123Z level=debug msg=\"x=\\\"1\\\"\\n\" k=v\n");
}
END_TEST

START_TEST(test_render_long_message)
{
	/* a message longer than any fixed buffer keeps its closing quote and every byte */
	size_t n = 5000;
	char *msg = bf_xmalloc(n + 1);
	memset(msg, 'x', n);
	msg[n] = '\0';
	msg[7] = ' ';

	char *line = bf_log_render(BF_LOG_TEXT, true, 0, BF_LOG_ERROR, NULL, msg, "k=v");
	ck_assert_str_eq(line + strlen(line) - 8, "xx\" k=v\n");
	ck_assert_uint_eq(strlen(line), strlen("<3>level=error msg=\"\" k=v\n") + n);
	free(line);

	char *job = bf_xstrdup(msg);
	line = bf_log_render(BF_LOG_TEXT, true, 0, BF_LOG_ERROR, job, "m", NULL);
	ck_assert_uint_eq(strlen(line), strlen("<3>level=error job=\"\" msg=m\n") + n);
	free(line);
	line = bf_log_render(BF_LOG_JSON, true, 0, BF_LOG_ERROR, job, msg, NULL);
	ck_assert_uint_eq(strlen(line),
	                  strlen("<3>{\"level\":\"error\",\"job\":\"\",\"msg\":\"\"}\n") + 2 * n);
	free(line);
	free(job);
	free(msg);
}
END_TEST

START_TEST(test_render_json)
{
	render_is(BF_LOG_JSON, false, BF_LOG_INFO, "users_email_lower", "progress",
	          "rows=1234000 estimate=10000000 percent=12.3 rate=45210 eta=3m14s batch=2000 "
	          "pass=1",
	          "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"level\":\"info\",\"job\":\"users_email_"
	          "lower\",\"msg\":\"progress\",\"rows\":1234000,\"estimate\":10000000,\"percent\":"
	          "12.3,\"rate\":45210,\"eta\":\"3m14s\",\"batch\":2000,\"pass\":1}\n");

	/* numbers: unquoted only when they are JSON numbers as written and were not quoted */
	render_is(BF_LOG_JSON, false, BF_LOG_WARN, NULL, "m",
	          "a=0 b=-7 c=0.5 d=007 e=1e5 f=12. g=.5 h=\"42\" i=- j=1.2.3 k=-0",
	          "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"level\":\"warn\",\"msg\":\"m\",\"a\":0,"
	          "\"b\":-7,\"c\":0.5,\"d\":\"007\",\"e\":\"1e5\",\"f\":\"12.\",\"g\":\".5\",\"h\":"
	          "\"42\",\"i\":\"-\",\"j\":\"1.2.3\",\"k\":-0}\n");

	/* strings escaped; logfmt escapes decoded first, so JSON gets the original text */
	char q1[128], q2[128], q3[128];
	char *kvs = bf_xasprintf("sql=%s err=%s ctl=%s empty= flag path=%s",
	                         bf_log_q(q1, sizeof(q1), "SET a = \"b\"\\c"),
	                         bf_log_q(q2, sizeof(q2), "line1\nline2\ttab"),
	                         bf_log_q(q3, sizeof(q3), "x\x01y\x1f"), "/a/b");
	render_is(BF_LOG_JSON, false, BF_LOG_ERROR, "j\"1", "say \"hi\"\n", kvs,
	          "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"level\":\"error\",\"job\":\"j\\\"1\","
	          "\"msg\":\"say \\\"hi\\\"\\n\",\"sql\":\"SET a = \\\"b\\\"\\\\c\",\"err\":"
	          "\"line1\\nline2\\ttab\",\"ctl\":\"x\\u0001y\\u001f\",\"empty\":\"\",\"flag\":"
	          "\"\",\"path\":\"/a/b\"}\n");
	free(kvs);

	/* no pairs at all, and an empty message */
	render_is(BF_LOG_JSON, false, BF_LOG_DEBUG, NULL, "", NULL,
	          "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"level\":\"debug\",\"msg\":\"\"}\n");
	render_is(BF_LOG_JSON, false, BF_LOG_DEBUG, NULL, "m", "   ",
	          "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"level\":\"debug\",\"msg\":\"m\"}\n");
}
END_TEST

START_TEST(test_render_journal)
{
	/* syslog priorities: debug 7, info 6, warning 4, err 3; no timestamp */
	render_is(BF_LOG_TEXT, true, BF_LOG_DEBUG, NULL, "tick", NULL, "<7>level=debug msg=tick\n");
	render_is(BF_LOG_TEXT, true, BF_LOG_INFO, "j", "started", "batch=1000",
	          "<6>level=info job=j msg=started batch=1000\n");
	render_is(BF_LOG_TEXT, true, BF_LOG_WARN, NULL, "lag", NULL, "<4>level=warn msg=lag\n");
	render_is(BF_LOG_TEXT, true, BF_LOG_ERROR, NULL, "failed", "",
	          "<3>level=error msg=failed\n");
	render_is(BF_LOG_JSON, true, BF_LOG_WARN, "j", "lag", "bytes=83886080",
	          "<4>{\"level\":\"warn\",\"job\":\"j\",\"msg\":\"lag\",\"bytes\":83886080}\n");

	/* a level outside the enum still renders, at the most severe priority */
	render_is(BF_LOG_TEXT, true, 42, NULL, "m", NULL, "<3>level=unknown msg=m\n");
	render_is(BF_LOG_TEXT, true, -1, NULL, "m", NULL, "<7>level=unknown msg=m\n");
}
END_TEST

START_TEST(test_timestamps)
{
	char *line = bf_log_render(BF_LOG_TEXT, false, 0, BF_LOG_INFO, NULL, "m", NULL);
	ck_assert_str_eq(line, "ts=1970-01-01T00:00:00.000Z level=info msg=m\n");
	free(line);
	line = bf_log_render(BF_LOG_TEXT, false, INT64_C(1700000000005), BF_LOG_INFO, NULL, "m",
	                     NULL);
	ck_assert_str_eq(line, "ts=2023-11-14T22:13:20.005Z level=info msg=m\n");
	free(line);
	/* before 1970 the milliseconds stay 0..999 */
	line = bf_log_render(BF_LOG_JSON, false, -1, BF_LOG_INFO, NULL, "m", NULL);
	ck_assert_str_eq(
	        line, "{\"ts\":\"1969-12-31T23:59:59.999Z\",\"level\":\"info\",\"msg\":\"m\"}\n");
	free(line);
}
END_TEST

/* Runs fn with stderr sent to a temporary file; returns what was written (caller frees). */
static char *capture_stderr(void (*fn)(void))
{
	FILE *tmp = tmpfile();
	ck_assert_ptr_nonnull(tmp);
	int saved = dup(STDERR_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fileno(tmp), STDERR_FILENO), 0);
	fn();
	ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
	close(saved);

	bf_sbuf sb = {0};
	char buf[512];
	size_t n;
	rewind(tmp);
	while ((n = fread(buf, 1, sizeof(buf), tmp)) > 0)
		bf_sbuf_appendn(&sb, buf, n);
	fclose(tmp);
	return bf_sbuf_steal(&sb);
}

static void log_all_levels(void)
{
	bf_log(BF_LOG_DEBUG, "j", "d", "n=%d", 1);
	bf_log(BF_LOG_INFO, "j", "i", "n=%d", 2);
	bf_log(BF_LOG_WARN, "j", "w", "n=%d", 3);
	bf_log(BF_LOG_ERROR, NULL, "e", NULL);
}

START_TEST(test_level_filter)
{
	bf_log_setup(BF_LOG_WARN, BF_LOG_TEXT, true);
	ck_assert(!bf_log_enabled(BF_LOG_DEBUG));
	ck_assert(!bf_log_enabled(BF_LOG_INFO));
	ck_assert(bf_log_enabled(BF_LOG_WARN));
	ck_assert(bf_log_enabled(BF_LOG_ERROR));

	char *out = capture_stderr(log_all_levels);
	ck_assert_str_eq(out, "<4>level=warn job=j msg=w n=3\n<3>level=error msg=e\n");
	free(out);

	bf_log_set_level(BF_LOG_DEBUG);
	ck_assert(bf_log_enabled(BF_LOG_DEBUG));
	out = capture_stderr(log_all_levels);
	ck_assert_str_eq(out, "<7>level=debug job=j msg=d n=1\n<6>level=info job=j msg=i n=2\n"
	                      "<4>level=warn job=j msg=w n=3\n<3>level=error msg=e\n");
	free(out);

	bf_log_set_level(BF_LOG_ERROR);
	ck_assert(!bf_log_enabled(BF_LOG_WARN));
	out = capture_stderr(log_all_levels);
	ck_assert_str_eq(out, "<3>level=error msg=e\n");
	free(out);

	/* outside the journal: JSON with a timestamp, one line per event */
	bf_log_setup(BF_LOG_INFO, BF_LOG_JSON, false);
	out = capture_stderr(log_all_levels);
	char *second = strchr(out, '\n');
	ck_assert_ptr_nonnull(second);
	ck_assert(strncmp(out, "{\"ts\":\"", 7) == 0);
	ck_assert_ptr_nonnull(
	        strstr(out, "\"level\":\"info\",\"job\":\"j\",\"msg\":\"i\",\"n\":2}\n"));
	ck_assert_ptr_null(strstr(out, "\"msg\":\"d\""));
	ck_assert_ptr_nonnull(strstr(out, "\"level\":\"error\",\"msg\":\"e\"}\n"));
	size_t lines = 0;
	for (const char *p = out; *p; p++)
		lines += *p == '\n';
	ck_assert_uint_eq(lines, 3);
	free(out);
	bf_log_setup(BF_LOG_INFO, BF_LOG_TEXT, false);
}
END_TEST

/* What libpq echoes of a conninfo it cannot parse never carries the password on. */
static void masked_is(const char *in, const char *want)
{
	char *got = bf_masked(in);

	ck_assert_msg(strcmp(got, want) == 0, "bf_masked(%s):\n  got  %s\n  want %s", in, got,
	              want);
	free(got);
}

START_TEST(test_passwords_masked)
{
	masked_is("invalid percent-encoded token: \"s3cr%zzt\"\n",
	          "invalid percent-encoded token: \"***\"\n");
	masked_is("end of string reached when looking for matching \"]\" in IPv6 host address in "
	          "URI: \"postgresql://u:secret@[::1/db\"",
	          "end of string reached when looking for matching \"]\" in IPv6 host address in "
	          "URI: \"postgresql://u:***@[::1/db\"");
	masked_is("bad: host=x password='a b\\' c' port=1 and password=plain",
	          "bad: host=x password=*** port=1 and password=***");
	/* nothing secret: as it was */
	masked_is("postgresql://u@h/db and postgresql://h:5432/db", "postgresql://u@h/db and "
	                                                            "postgresql://h:5432/db");
	masked_is("no_password=1 x", "no_password=1 x");
	masked_is("", "");
}
END_TEST

/* A line repeated in a loop: BF_LOG_BURST a second get through, the rest are counted on the
 * next one written; other lines are not held back by it. */
START_TEST(test_repeats_limited)
{
	static bf_log_limiter l;
	int64_t sup = -1;
	int written = 0;

	for (int k = 0; k < 3000; k++)
		written +=
		        bf_log_limit_pass(&l, "j", "query ended at shutdown", 100 + k / 10, &sup);
	ck_assert_int_eq(written, BF_LOG_BURST);
	ck_assert(bf_log_limit_pass(&l, "j", "another line", 399, &sup));
	ck_assert(bf_log_limit_pass(&l, "k", "query ended at shutdown", 399, &sup));
	ck_assert_int_eq(sup, 0);
	/* a second later the loop's line is written again, with the count held back */
	ck_assert(bf_log_limit_pass(&l, "j", "query ended at shutdown", 1100, &sup));
	ck_assert_int_eq(sup, 3000 - BF_LOG_BURST);
	ck_assert(bf_log_limit_pass(&l, "j", "query ended at shutdown", 1101, &sup));
	ck_assert_int_eq(sup, 0);
	/* more keys than slots: each still gets its lines through */
	for (int k = 0; k < 3 * BF_LOG_LIMIT_KEYS; k++) {
		char msg[32];

		snprintf(msg, sizeof(msg), "line %d", k);
		ck_assert(bf_log_limit_pass(&l, NULL, msg, 2000, &sup));
	}
}
END_TEST

Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *quote = tcase_create("quote");
	TCase *render = tcase_create("render");
	TCase *filter = tcase_create("filter");

	tcase_set_timeout(quote, 10);
	tcase_add_test(quote, test_q_bare_words);
	tcase_add_test(quote, test_passwords_masked);
	tcase_add_test(quote, test_repeats_limited);
	tcase_add_test(quote, test_q_quoting);
	suite_add_tcase(s, quote);

	tcase_set_timeout(render, 10);
	tcase_add_test(render, test_render_text);
	tcase_add_test(render, test_render_long_message);
	tcase_add_test(render, test_render_json);
	tcase_add_test(render, test_render_journal);
	tcase_add_test(render, test_timestamps);
	suite_add_tcase(s, render);

	tcase_set_timeout(filter, 10);
	tcase_add_test(filter, test_level_filter);
	suite_add_tcase(s, filter);
	return s;
}
