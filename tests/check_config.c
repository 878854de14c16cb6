/*
 * check_config.c - the YAML configuration of SPEC.md: every key, its default, its units, the
 * defaults: mapping, ${ENV}, include: and the operator's error messages.
 *
 * Messages are compared whole, in the form "FILE:LINE:COL: path: message", because the line
 * and column are the product here: an operator with a 300-line file must land on the mistake.
 * Files under tests/data/config are found through BF_TEST_DATA_DIR when it is set, else
 * relative to the repository root, where `make unit` runs the binary.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backfilld/config.h"
#include "backfilld/log.h"
#include "suites.h"

#ifndef BF_TEST_DATA_DIR
#define BF_TEST_DATA_DIR "tests/data/config"
#endif

/* A valid job; keys added after it are on line 7, at column 5. */
#define HEAD                                                                                       \
	"database: x\n"                                                                            \
	"jobs:\n"                                                                                  \
	"  - name: a\n"                                                                            \
	"    table: t\n"                                                                           \
	"    set: \"x = 1\"\n"                                                                     \
	"    where: \"x IS NULL\"\n"

static char *data_path(const char *name)
{
	const char *dir = getenv("BF_TEST_DATA_DIR");

	return bf_xasprintf("%s/%s", dir && *dir ? dir : BF_TEST_DATA_DIR, name);
}

/* Parses text that must load; fails the test with every message otherwise. */
static bf_config *parse_ok(const char *text)
{
	bf_config *cfg = NULL;
	bf_errors errs = {0};
	int rc = bf_config_parse_string("t.yaml", text, &cfg, &errs);
	char *all = bf_errors_join(&errs);

	ck_assert_msg(rc == 0, "refused:\n%s\n--- text:\n%s", all, text);
	ck_assert_ptr_nonnull(cfg);
	ck_assert_uint_eq(errs.n, 0);
	free(all);
	return cfg;
}

static bf_config *load_ok(const char *name)
{
	char *path = data_path(name);
	bf_config *cfg = NULL;
	bf_errors errs = {0};
	int rc = bf_config_load(path, &cfg, &errs);
	char *all = bf_errors_join(&errs);

	ck_assert_msg(rc == 0, "%s refused:\n%s", path, all);
	ck_assert_ptr_nonnull(cfg);
	free(all);
	free(path);
	return cfg;
}

/* Asserts a refused load whose messages are exactly `want` (NULL-terminated), in order. */
static void expect_messages(int rc, bf_config *cfg, bf_errors *errs, const char *const *want,
                            const char *what)
{
	char *all = bf_errors_join(errs);
	size_t n = 0;

	while (want[n])
		n++;
	ck_assert_msg(rc == -1, "accepted: %s", what);
	ck_assert_msg(cfg == NULL, "a config was returned for a refused file");
	ck_assert_msg(errs->n == n, "%zu messages instead of %zu for %s:\n%s", errs->n, n, what,
	              all);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(strcmp(errs->msgs[i], want[i]) == 0,
		              "message %zu:\n  got  %s\n  want %s\nall:\n%s", i, errs->msgs[i],
		              want[i], all);
	free(all);
	bf_errors_clear(errs);
}

static void fails_with(const char *text, const char *const *want)
{
	bf_config *cfg = NULL;
	bf_errors errs = {0};
	int rc = bf_config_parse_string("t.yaml", text, &cfg, &errs);

	expect_messages(rc, cfg, &errs, want, text);
}

/* One job key after HEAD (line 7) that must be refused with exactly `msg`. */
static void job_key_fails(const char *line, const char *msg)
{
	char *text = bf_xasprintf(HEAD "%s\n", line);
	const char *want[] = {msg, NULL};

	fails_with(text, want);
	free(text);
}

/* One job key after HEAD that must be accepted; returns the config (caller frees). */
static bf_config *job_key_ok(const char *line)
{
	char *text = bf_xasprintf(HEAD "%s\n", line);
	bf_config *cfg = parse_ok(text);

	free(text);
	ck_assert_uint_eq(cfg->n_jobs, 1);
	return cfg;
}

/* A `set` or `where` that would not stay one fragment of the daemon's statement, and two
 * jobs writing one column of one table, are configuration errors, said where they are. */
START_TEST(test_set_where_guards)
{
	const char *const paren[] = {
	        "t.yaml:5:12: jobs[0].where: expected a single SQL fragment (here ')' closing a "
	        "parenthesis the fragment did not open at character 10), got \"x IS NULL) OR "
	        "(true\"",
	        NULL};
	const char *const semi[] = {
	        "t.yaml:4:10: jobs[0].set: expected a single SQL fragment (here a statement "
	        "separator ';' at character 6), got \"x = 1; DELETE FROM t\"",
	        NULL};
	const char *const shared[] = {
	        "t.yaml:8: jobs.b: set assigns column \"x\" of T, which job a (t.yaml:3) sets "
	        "too: the two jobs would overwrite each other",
	        NULL};
	bf_config *cfg;

	fails_with("database: x\njobs:\n  - name: a\n    table: t\n"
	           "    where: \"x IS NULL) OR (true\"\n    set: \"x = 1\"\n",
	           paren);
	fails_with("database: x\njobs:\n  - name: a\n    set: \"x = 1; DELETE FROM t\"\n"
	           "    table: t\n    where: \"x IS NULL\"\n",
	           semi);
	fails_with(HEAD "    sleep: 0\n"
	                "  - name: b\n    table: T\n    set: \"y = 2, \\\"x\\\" = 3\"\n"
	                "    where: \"y IS NULL\"\n",
	           shared);
	/* the same column of other tables, or other columns of the same table: fine */
	cfg = parse_ok(HEAD "  - name: b\n    table: u\n    set: \"x = 2\"\n    where: \"x IS "
	                    "NULL\"\n  - name: c\n    table: t\n    set: \"y = 2\"\n"
	                    "    where: \"y IS NULL\"\n");
	ck_assert_uint_eq(cfg->n_jobs, 3);
	bf_config_free(cfg);
}
END_TEST

static void assert_builtin_job_defaults(const bf_job_config *j)
{
	ck_assert_int_eq(j->batch_size, 1000);
	ck_assert_int_eq(j->min_batch_size, 100);
	ck_assert_int_eq(j->max_batch_size, 20000);
	ck_assert_int_eq(j->target_batch_time_ms, 50);
	ck_assert_int_eq(j->sleep_ms, 100);
	ck_assert_int_eq(j->max_rows_per_second, 0);
	ck_assert_int_eq(j->lock_timeout_ms, 1000);
	ck_assert_int_eq(j->statement_timeout_ms, 30000);
	ck_assert_str_eq(j->synchronous_commit, "off");
	ck_assert_int_eq(j->max_retries, 10);
	ck_assert_int_eq(j->parallel, 1);
	ck_assert(!j->window.set);
	ck_assert_uint_eq(j->n_key, 0);
	ck_assert_ptr_null(j->key);
	ck_assert_int_eq(j->lag.max_replay_bytes, INT64_C(64) << 20);
	ck_assert_int_eq(j->lag.max_replay_time_ms, 10000);
	ck_assert_int_eq(j->lag.max_slot_retained, INT64_C(2) << 30);
	ck_assert_int_eq(j->lag.max_archive_backlog, 64);
	ck_assert_int_eq(j->lag.min_standbys, 0);
	ck_assert_uint_eq(j->lag.n_standbys, 0);
	ck_assert_ptr_null(j->lag.standbys);
	ck_assert_int_eq(j->lag.stall_after_ms, 30000);
	ck_assert_double_eq_tol(j->lag.resume_below, 0.5, 1e-12);
	ck_assert_int_eq(j->lag.check_interval_ms, 1000);
}

/* --- keys and defaults --------------------------------------------------------------- */

START_TEST(test_builtin_defaults)
{
	bf_config *cfg = parse_ok(HEAD);

	ck_assert_str_eq(cfg->file, "t.yaml");
	ck_assert_str_eq(cfg->database, "x");
	ck_assert_str_eq(cfg->control_schema, "backfill");
	ck_assert_int_eq(cfg->max_parallel_jobs, 4);
	ck_assert_int_eq(cfg->log_level, BF_LOG_INFO);
	ck_assert_int_eq(cfg->progress_interval_ms, 10000);
	ck_assert_int_eq(cfg->shutdown_timeout_ms, 30000);
	ck_assert_ptr_null(cfg->metrics_listen);
	ck_assert_ptr_null(cfg->include);
	ck_assert_uint_eq(cfg->n_jobs, 1);

	const bf_job_config *j = &cfg->jobs[0];
	ck_assert_str_eq(j->name, "a");
	ck_assert_str_eq(j->database, "x"); /* the top-level one */
	ck_assert_str_eq(j->table, "t");
	ck_assert_str_eq(j->set, "x = 1");
	ck_assert_str_eq(j->where, "x IS NULL");
	ck_assert_str_eq(j->file, "t.yaml");
	ck_assert_int_eq(j->line, 3);
	assert_builtin_job_defaults(j);
	bf_config_free(cfg);
}
END_TEST

/* A job's copy owns every value: it survives the config it came from (a reload frees it). */
START_TEST(test_job_config_dup)
{
	bf_config *cfg = load_ok("full.yaml");
	bf_job_config *copy = bf_job_config_dup(&cfg->jobs[0]);
	char before[17], after[17];

	bf_job_config_hash(&cfg->jobs[0], before);
	ck_assert_ptr_ne(copy->name, cfg->jobs[0].name);
	ck_assert_ptr_ne(copy->key, cfg->jobs[0].key);
	ck_assert_ptr_ne(copy->lag.standbys, cfg->jobs[0].lag.standbys);
	bf_config_free(cfg);
	bf_job_config_hash(copy, after);
	ck_assert_str_eq(after, before);
	ck_assert_str_eq(copy->name, "users_email_lower");
	ck_assert_str_eq(copy->database, "dbname=other");
	ck_assert_uint_eq(copy->n_key, 2);
	ck_assert_str_eq(copy->key[1], "id");
	ck_assert_str_eq(copy->synchronous_commit, "remote_apply");
	ck_assert_uint_eq(copy->lag.n_standbys, 2);
	ck_assert_str_eq(copy->lag.standbys[1], "standby2");
	ck_assert_str_eq(copy->window.text, "22:00-06:00");
	ck_assert_int_eq(copy->batch_size, 2000);
	bf_job_config_free(copy);
	bf_job_config_free(NULL);
}
END_TEST

START_TEST(test_every_key)
{
	bf_config *cfg = load_ok("full.yaml");
	char *path = data_path("full.yaml");

	ck_assert_str_eq(cfg->file, path);
	ck_assert_str_eq(cfg->database, "postgresql://backfill@127.0.0.1:5432/app");
	ck_assert_str_eq(cfg->control_schema, "bf_ctl");
	ck_assert_int_eq(cfg->max_parallel_jobs, 8);
	ck_assert_int_eq(cfg->log_level, BF_LOG_DEBUG);
	ck_assert_int_eq(cfg->progress_interval_ms, 120000);
	ck_assert_int_eq(cfg->shutdown_timeout_ms, 45000);
	ck_assert_str_eq(cfg->metrics_listen, "127.0.0.1:9187");
	ck_assert_str_eq(cfg->include, "inc/*.yaml");
	ck_assert_uint_eq(cfg->n_jobs, 3);

	const bf_job_config *j = bf_config_find_job(cfg, "users_email_lower");
	ck_assert_ptr_eq(j, &cfg->jobs[0]);
	ck_assert_str_eq(j->database, "dbname=other");
	ck_assert_str_eq(j->table, "public.users");
	ck_assert_uint_eq(j->n_key, 2);
	ck_assert_str_eq(j->key[0], "tenant_id");
	ck_assert_str_eq(j->key[1], "id");
	ck_assert_str_eq(j->set, "email_lower = lower(email)");
	ck_assert_str_eq(j->where, "email_lower IS NULL");
	ck_assert_int_eq(j->batch_size, 2000);
	ck_assert_int_eq(j->min_batch_size, 200);
	ck_assert_int_eq(j->max_batch_size, 40000);
	ck_assert_int_eq(j->target_batch_time_ms, 1000);
	ck_assert_int_eq(j->sleep_ms, 250); /* its own, over defaults: 50ms */
	ck_assert_int_eq(j->max_rows_per_second, 5000);
	ck_assert_int_eq(j->lock_timeout_ms, 2000);
	ck_assert_int_eq(j->statement_timeout_ms, 60000);
	ck_assert_str_eq(j->synchronous_commit, "remote_apply");
	ck_assert_int_eq(j->lag.max_replay_bytes, INT64_C(128) << 20);
	ck_assert_int_eq(j->lag.max_replay_time_ms, 20000);
	ck_assert_int_eq(j->lag.max_slot_retained, INT64_C(1) << 40);
	ck_assert_int_eq(j->lag.max_archive_backlog, 32);
	ck_assert_int_eq(j->lag.min_standbys, 1);
	ck_assert_uint_eq(j->lag.n_standbys, 2);
	ck_assert_str_eq(j->lag.standbys[0], "standby1");
	ck_assert_str_eq(j->lag.standbys[1], "standby2");
	ck_assert_int_eq(j->lag.stall_after_ms, 3600000);
	ck_assert_double_eq_tol(j->lag.resume_below, 0.75, 1e-12);
	ck_assert_int_eq(j->lag.check_interval_ms, 500);
	ck_assert(j->window.set);
	ck_assert_int_eq(j->window.start_min, 22 * 60);
	ck_assert_int_eq(j->window.end_min, 6 * 60);
	ck_assert_str_eq(j->window.text, "22:00-06:00");
	ck_assert_int_eq(j->max_retries, 3);
	ck_assert_str_eq(j->file, path);
	ck_assert_int_eq(j->line, 14);

	/* the second job: everything from the built-in defaults but sleep, from defaults: */
	j = bf_config_find_job(cfg, "orders_total");
	ck_assert_ptr_eq(j, &cfg->jobs[1]);
	ck_assert_str_eq(j->database, "postgresql://backfill@127.0.0.1:5432/app");
	ck_assert_str_eq(j->table, "orders");
	ck_assert_int_eq(j->sleep_ms, 50);
	ck_assert_int_eq(j->line, 41);
	ck_assert_int_eq(j->batch_size, 1000);
	ck_assert_str_eq(j->synchronous_commit, "off");
	ck_assert_int_eq(j->lag.max_replay_bytes, INT64_C(64) << 20);

	/* from inc/extra.yaml, found relative to full.yaml, not to the current directory */
	j = bf_config_find_job(cfg, "extra_job");
	ck_assert_ptr_eq(j, &cfg->jobs[2]);
	ck_assert_str_eq(j->table, "extra");
	ck_assert_int_eq(j->sleep_ms, 50); /* the main file's defaults: reach included jobs */
	ck_assert_str_eq(j->database, "postgresql://backfill@127.0.0.1:5432/app");
	ck_assert_int_eq(j->line, 3);
	ck_assert_ptr_nonnull(strstr(j->file, "inc/extra.yaml"));

	ck_assert_ptr_null(bf_config_find_job(cfg, "nope"));
	ck_assert_ptr_null(bf_config_find_job(cfg, NULL));
	ck_assert_ptr_null(bf_config_find_job(NULL, "extra_job"));
	free(path);
	bf_config_free(cfg);
}
END_TEST

START_TEST(test_top_level_keys)
{
	bf_config *cfg = parse_ok("database: \"host=/tmp dbname=app\"\n"
	                          "control_schema: _ops2\n"
	                          "max_parallel_jobs: 1000\n"
	                          "log_level: WARNING\n"
	                          "progress_interval: 1\n"
	                          "shutdown_timeout: 0\n"
	                          "metrics_listen: \":9187\"\n"
	                          "include: ~\n"
	                          "defaults: ~\n"
	                          "jobs: ~\n");

	ck_assert_str_eq(cfg->database, "host=/tmp dbname=app");
	ck_assert_str_eq(cfg->control_schema, "_ops2");
	ck_assert_int_eq(cfg->max_parallel_jobs, 1000);
	ck_assert_int_eq(cfg->log_level, BF_LOG_WARN);
	ck_assert_int_eq(cfg->progress_interval_ms, 1);
	ck_assert_int_eq(cfg->shutdown_timeout_ms, 0);
	ck_assert_str_eq(cfg->metrics_listen, ":9187");
	ck_assert_ptr_null(cfg->include);
	ck_assert_uint_eq(cfg->n_jobs, 0);
	bf_config_free(cfg);

	static const struct {
		const char *text;
		int level;
	} levels[] = {
	        {"debug", BF_LOG_DEBUG}, {"info", BF_LOG_INFO},   {"warn", BF_LOG_WARN},
	        {"error", BF_LOG_ERROR}, {"Error", BF_LOG_ERROR}, {"warning", BF_LOG_WARN},
	};
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		char *text = bf_xasprintf("log_level: %s\n", levels[i].text);
		cfg = parse_ok(text);
		ck_assert_int_eq(cfg->log_level, levels[i].level);
		bf_config_free(cfg);
		free(text);
	}
	ck_assert_str_eq(bf_log_level_name(BF_LOG_DEBUG), "debug");
	ck_assert_str_eq(bf_log_level_name(BF_LOG_INFO), "info");
	ck_assert_str_eq(bf_log_level_name(BF_LOG_WARN), "warn");
	ck_assert_str_eq(bf_log_level_name(BF_LOG_ERROR), "error");
	ck_assert_str_eq(bf_log_level_name(42), "unknown");

	/* an empty file is a daemon with nothing to do, not an error */
	cfg = parse_ok("");
	ck_assert_uint_eq(cfg->n_jobs, 0);
	ck_assert_str_eq(cfg->control_schema, "backfill");
	bf_config_free(cfg);
}
END_TEST

START_TEST(test_top_level_errors)
{
	const char *const want[] = {
	        "t.yaml:1:20: max_parallel_jobs: expected a positive integer, got \"0\"",
	        "t.yaml:2:1: max_parallel_jobs: duplicate key (first at line 1)",
	        "t.yaml:3:12: log_level: expected one of debug, info, warn, error, got \"loud\"",
	        "t.yaml:4:17: control_schema: expected an identifier of up to 63 characters a-z, "
	        "0-9 or _, not starting with a digit, got \"1abc\"",
	        "t.yaml:5:20: progress_interval: expected a duration greater than 0, got \"0s\"",
	        "t.yaml:6:19: shutdown_timeout: expected a duration such as 250ms, 5s, 2min, got "
	        "\"soon\"",
	        "t.yaml:7:17: metrics_listen: expected host:port such as 127.0.0.1:9187, got "
	        "\"localhost\"",
	        "t.yaml:8:10: include: expected a non-empty string, got \"\"",
	        "t.yaml:9:11: database: expected a string, got a list",
	        "t.yaml:12:1: batch_size: unknown key (job keys go in a job or under "
	        "\"defaults:\")",
	        "t.yaml:13:1: max_paralel_jobs: unknown key (did you mean \"max_parallel_jobs\"?)",
	        "t.yaml:14:1: colour: unknown key",
	        /* defaults: and jobs: are walked after the top-level keys */
	        "t.yaml:10:11: defaults: expected a mapping",
	        "t.yaml:11:7: jobs: expected a list of jobs",
	        NULL,
	};
	fails_with("max_parallel_jobs: 0\n"
	           "max_parallel_jobs: 2\n"
	           "log_level: loud\n"
	           "control_schema: 1abc\n"
	           "progress_interval: 0s\n"
	           "shutdown_timeout: soon\n"
	           "metrics_listen: localhost\n"
	           "include: \"\"\n"
	           "database: [a, b]\n"
	           "defaults: 7\n"
	           "jobs: 5\n"
	           "batch_size: 5\n"
	           "max_paralel_jobs: 4\n"
	           "colour: blue\n",
	           want);

	const char *const big[] = {
	        "t.yaml:1:20: max_parallel_jobs: expected a positive integer no larger than 1000, "
	        "got \"1001\"",
	        "t.yaml:2:17: metrics_listen: expected host:port such as 127.0.0.1:9187, got "
	        "\"[::1]:65536\"",
	        NULL,
	};
	fails_with("max_parallel_jobs: 1001\nmetrics_listen: \"[::1]:65536\"\n", big);
	const char *const brackets[] = {
	        "t.yaml:1:17: metrics_listen: expected host:port such as 127.0.0.1:9187, got "
	        "\"[]:9187\"",
	        NULL,
	};
	fails_with("metrics_listen: \"[]:9187\"\n", brackets);

	const char *const root[] = {"t.yaml:1:1: expected a mapping", NULL};
	fails_with("- a\n- b\n", root);
}
END_TEST

START_TEST(test_job_keys_one_by_one)
{
	bf_config *cfg;

	cfg = job_key_ok("    database: \"dbname=own\"");
	ck_assert_str_eq(cfg->jobs[0].database, "dbname=own");
	ck_assert_str_eq(cfg->database, "x");
	bf_config_free(cfg);

	cfg = job_key_ok("    key: id");
	ck_assert_uint_eq(cfg->jobs[0].n_key, 1);
	ck_assert_str_eq(cfg->jobs[0].key[0], "id");
	bf_config_free(cfg);

	cfg = job_key_ok("    key:\n      - tenant_id\n      - id");
	ck_assert_uint_eq(cfg->jobs[0].n_key, 2);
	ck_assert_str_eq(cfg->jobs[0].key[0], "tenant_id");
	ck_assert_str_eq(cfg->jobs[0].key[1], "id");
	bf_config_free(cfg);

	cfg = job_key_ok("    key: ~");
	ck_assert_uint_eq(cfg->jobs[0].n_key, 0);
	bf_config_free(cfg);

	cfg = job_key_ok(
	        "    batch_size: 5000\n    min_batch_size: 1\n    max_batch_size: 100000000");
	ck_assert_int_eq(cfg->jobs[0].batch_size, 5000);
	ck_assert_int_eq(cfg->jobs[0].min_batch_size, 1);
	ck_assert_int_eq(cfg->jobs[0].max_batch_size, 100000000);
	bf_config_free(cfg);

	cfg = job_key_ok("    target_batch_time: 0");
	ck_assert_int_eq(cfg->jobs[0].target_batch_time_ms, 0);
	bf_config_free(cfg);

	cfg = job_key_ok("    sleep: 0\n    max_rows_per_second: 250\n    max_retries: 0");
	ck_assert_int_eq(cfg->jobs[0].sleep_ms, 0);
	ck_assert_int_eq(cfg->jobs[0].max_rows_per_second, 250);
	ck_assert_int_eq(cfg->jobs[0].max_retries, 0);
	bf_config_free(cfg);

	cfg = job_key_ok("    lock_timeout: 50ms\n    statement_timeout: 2h");
	ck_assert_int_eq(cfg->jobs[0].lock_timeout_ms, 50);
	ck_assert_int_eq(cfg->jobs[0].statement_timeout_ms, 7200000);
	bf_config_free(cfg);

	cfg = job_key_ok("    window: \"01:00-06:00\"");
	ck_assert(cfg->jobs[0].window.set);
	ck_assert_int_eq(cfg->jobs[0].window.start_min, 60);
	ck_assert_int_eq(cfg->jobs[0].window.end_min, 360);
	ck_assert_str_eq(cfg->jobs[0].window.text, "01:00-06:00");
	bf_config_free(cfg);

	/* 24:00 ends at midnight; start == end means always */
	cfg = job_key_ok("    window: \"18:30-24:00\"");
	ck_assert_int_eq(cfg->jobs[0].window.start_min, 18 * 60 + 30);
	ck_assert_int_eq(cfg->jobs[0].window.end_min, 0);
	bf_config_free(cfg);
	cfg = job_key_ok("    window: \"00:00-00:00\"");
	ck_assert(cfg->jobs[0].window.set);
	ck_assert_int_eq(cfg->jobs[0].window.start_min, cfg->jobs[0].window.end_min);
	bf_config_free(cfg);

	/* the five values of synchronous_commit, any case, and YAML 1.1's booleans */
	static const struct {
		const char *text, *stored;
	} modes[] = {
	        {"on", "on"},
	        {"off", "off"},
	        {"local", "local"},
	        {"remote_write", "remote_write"},
	        {"remote_apply", "remote_apply"},
	        {"OFF", "off"},
	        {"true", "on"},
	        {"yes", "on"},
	        {"false", "off"},
	        {"no", "off"},
	        {"\"on\"", "on"},
	};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char *line = bf_xasprintf("    synchronous_commit: %s", modes[i].text);
		cfg = job_key_ok(line);
		ck_assert_str_eq(cfg->jobs[0].synchronous_commit, modes[i].stored);
		bf_config_free(cfg);
		free(line);
	}
}
END_TEST

START_TEST(test_lag_keys)
{
	bf_config *cfg = job_key_ok("    lag:\n"
	                            "      max_replay_bytes: 1GB\n"
	                            "      max_replay_time: 2min\n"
	                            "      max_slot_retained: 0\n"
	                            "      max_archive_backlog: 0\n"
	                            "      min_standbys: 2\n"
	                            "      standbys:\n"
	                            "        - replica_a\n"
	                            "        - replica_b\n"
	                            "      stall_after: 45s\n"
	                            "      resume_below: 12.5%\n"
	                            "      check_interval: 250ms");
	const bf_lag_config *lag = &cfg->jobs[0].lag;

	ck_assert_int_eq(lag->max_replay_bytes, INT64_C(1) << 30);
	ck_assert_int_eq(lag->max_replay_time_ms, 120000);
	ck_assert_int_eq(lag->max_slot_retained, 0);
	ck_assert_int_eq(lag->max_archive_backlog, 0);
	ck_assert_int_eq(lag->min_standbys, 2);
	ck_assert_uint_eq(lag->n_standbys, 2);
	ck_assert_str_eq(lag->standbys[0], "replica_a");
	ck_assert_str_eq(lag->standbys[1], "replica_b");
	ck_assert_int_eq(lag->stall_after_ms, 45000);
	ck_assert_double_eq_tol(lag->resume_below, 0.125, 1e-12);
	ck_assert_int_eq(lag->check_interval_ms, 250);
	bf_config_free(cfg);

	/* only some lag keys: the others keep their defaults */
	cfg = job_key_ok("    lag: {max_replay_time: 1s, standbys: []}");
	lag = &cfg->jobs[0].lag;
	ck_assert_int_eq(lag->max_replay_time_ms, 1000);
	ck_assert_int_eq(lag->max_replay_bytes, INT64_C(64) << 20);
	ck_assert_uint_eq(lag->n_standbys, 0);
	ck_assert_double_eq_tol(lag->resume_below, 0.5, 1e-12);
	bf_config_free(cfg);

	/* an empty lag: (every line commented out) is the same as none */
	cfg = job_key_ok("    lag:\n    #  max_replay_bytes: 1GB");
	ck_assert_int_eq(cfg->jobs[0].lag.max_replay_bytes, INT64_C(64) << 20);
	bf_config_free(cfg);
}
END_TEST

START_TEST(test_defaults_inheritance)
{
	bf_config *cfg = parse_ok("database: top\n"
	                          "defaults:\n"
	                          "  database: from_defaults\n"
	                          "  key: id\n"
	                          "  batch_size: 500\n"
	                          "  sleep: 1s\n"
	                          "  synchronous_commit: local\n"
	                          "  window: \"01:00-05:00\"\n"
	                          "  max_retries: 99\n"
	                          "  lag:\n"
	                          "    max_replay_bytes: 1MB\n"
	                          "    standbys: [s1]\n"
	                          "jobs:\n"
	                          "  - name: inherits\n"
	                          "    table: t1\n"
	                          "    set: \"a = 1\"\n"
	                          "    where: \"a IS NULL\"\n"
	                          "  - name: overrides\n"
	                          "    database: ~\n"
	                          "    table: t2\n"
	                          "    key: [k1, k2]\n"
	                          "    set: \"b = 1\"\n"
	                          "    where: \"b IS NULL\"\n"
	                          "    batch_size: 700\n"
	                          "    synchronous_commit: \"on\"\n"
	                          "    window: ~\n"
	                          "    lag:\n"
	                          "      max_replay_time: 3s\n"
	                          "      standbys: ~\n");
	ck_assert_uint_eq(cfg->n_jobs, 2);

	const bf_job_config *a = &cfg->jobs[0];
	ck_assert_str_eq(a->database, "from_defaults");
	ck_assert_uint_eq(a->n_key, 1);
	ck_assert_str_eq(a->key[0], "id");
	ck_assert_int_eq(a->batch_size, 500);
	ck_assert_int_eq(a->sleep_ms, 1000);
	ck_assert_str_eq(a->synchronous_commit, "local");
	ck_assert(a->window.set);
	ck_assert_str_eq(a->window.text, "01:00-05:00");
	ck_assert_int_eq(a->max_retries, 99);
	ck_assert_int_eq(a->lag.max_replay_bytes, INT64_C(1) << 20);
	ck_assert_int_eq(a->lag.max_replay_time_ms, 10000);
	ck_assert_uint_eq(a->lag.n_standbys, 1);
	ck_assert_str_eq(a->lag.standbys[0], "s1");
	/* what neither defaults: nor the job sets stays built in */
	ck_assert_int_eq(a->min_batch_size, 100);
	ck_assert_int_eq(a->lock_timeout_ms, 1000);

	const bf_job_config *b = &cfg->jobs[1];
	ck_assert_str_eq(b->database, "top"); /* "database: ~" undoes the default */
	ck_assert_uint_eq(b->n_key, 2);
	ck_assert_str_eq(b->key[0], "k1");
	ck_assert_str_eq(b->key[1], "k2");
	ck_assert_int_eq(b->batch_size, 700);
	ck_assert_int_eq(b->sleep_ms, 1000); /* not overridden */
	ck_assert_str_eq(b->synchronous_commit, "on");
	ck_assert(!b->window.set);
	ck_assert_int_eq(b->max_retries, 99);
	/* lag: merges key by key with defaults: */
	ck_assert_int_eq(b->lag.max_replay_bytes, INT64_C(1) << 20);
	ck_assert_int_eq(b->lag.max_replay_time_ms, 3000);
	ck_assert_uint_eq(b->lag.n_standbys, 0);
	bf_config_free(cfg);

	/* required keys may come from defaults: (all but name) */
	cfg = parse_ok("database: x\n"
	               "defaults:\n"
	               "  table: shared\n"
	               "  where: \"v IS NULL\"\n"
	               "jobs:\n"
	               "  - name: j1\n"
	               "    set: \"v = 1\"\n"
	               "  - name: j2\n"
	               "    set: \"w = 2\"\n");
	ck_assert_str_eq(cfg->jobs[1].table, "shared");
	ck_assert_str_eq(cfg->jobs[1].where, "v IS NULL");
	ck_assert_str_eq(cfg->jobs[1].set, "w = 2");
	bf_config_free(cfg);

	/* a database only in defaults: serves jobs when there is no top-level one */
	cfg = parse_ok("defaults:\n"
	               "  database: dbname=d\n"
	               "jobs:\n"
	               "  - name: j1\n"
	               "    table: t\n"
	               "    set: \"v = 1\"\n"
	               "    where: \"v IS NULL\"\n");
	ck_assert_ptr_null(cfg->database);
	ck_assert_str_eq(cfg->jobs[0].database, "dbname=d");
	bf_config_free(cfg);
}
END_TEST

START_TEST(test_defaults_errors)
{
	/* a mistake in defaults: is reported once, under "defaults.", however many jobs */
	const char *const want[] = {
	        "t.yaml:2:3: defaults.name: not allowed in defaults: (each job has its own)",
	        "t.yaml:3:15: defaults.batch_size: expected a positive integer, got \"-1\"",
	        "t.yaml:4:3: defaults.slep: unknown key (did you mean \"sleep\"?)",
	        NULL,
	};
	fails_with("defaults:\n"
	           "  name: x\n"
	           "  batch_size: -1\n"
	           "  slep: 1s\n"
	           "database: x\n"
	           "jobs:\n"
	           "  - name: a\n"
	           "    table: t\n"
	           "    set: s\n"
	           "    where: w\n"
	           "  - name: b\n"
	           "    table: t\n"
	           "    set: s\n"
	           "    where: w\n",
	           want);

	/* a job's batch sizes are checked after the merge with defaults: */
	const char *const merged[] = {
	        "t.yaml:6:5: jobs[0]: batch_size 50 is below min_batch_size 100",
	        NULL,
	};
	fails_with("database: x\n"
	           "defaults:\n"
	           "  batch_size: 50\n"
	           "  min_batch_size: 100\n"
	           "jobs:\n"
	           "  - name: a\n"
	           "    table: t\n"
	           "    set: s\n"
	           "    where: w\n",
	           merged);
}
END_TEST

/* --- units ----------------------------------------------------------------------------- */

START_TEST(test_duration_units)
{
	static const struct {
		const char *text;
		int64_t ms;
	} cases[] = {
	        {"250ms", 250},   {"5s", 5000},       {"2min", 120000}, {"1h", 3600000},
	        {"1d", 86400000}, {"750", 750},       {"0", 0},         {"\"3 s\"", 3000},
	        {"0ms", 0},       {"90min", 5400000},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *line = bf_xasprintf("    sleep: %s\n    lag:\n      stall_after: %s",
		                          cases[i].text, cases[i].text);
		bf_config *cfg = job_key_ok(line);
		ck_assert_int_eq(cfg->jobs[0].sleep_ms, cases[i].ms);
		ck_assert_int_eq(cfg->jobs[0].lag.stall_after_ms, cases[i].ms);
		bf_config_free(cfg);
		free(line);
	}
}
END_TEST

START_TEST(test_size_units)
{
	static const struct {
		const char *text;
		int64_t bytes;
	} cases[] = {
	        {"100B", 100},
	        {"512kB", 512 * 1024},
	        {"64MB", INT64_C(64) << 20},
	        {"2GB", INT64_C(2) << 30},
	        {"1TB", INT64_C(1) << 40},
	        {"4096", 4096},
	        {"0", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *line = bf_xasprintf(
		        "    lag:\n      max_replay_bytes: %s\n      max_slot_retained: %s",
		        cases[i].text, cases[i].text);
		bf_config *cfg = job_key_ok(line);
		ck_assert_int_eq(cfg->jobs[0].lag.max_replay_bytes, cases[i].bytes);
		ck_assert_int_eq(cfg->jobs[0].lag.max_slot_retained, cases[i].bytes);
		bf_config_free(cfg);
		free(line);
	}
}
END_TEST

START_TEST(test_percent_unit)
{
	static const struct {
		const char *text;
		double fraction;
	} cases[] = {{"50%", 0.5}, {"100%", 1.0}, {"1%", 0.01}, {"33.3%", 0.333}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *line = bf_xasprintf("    lag:\n      resume_below: \"%s\"", cases[i].text);
		bf_config *cfg = job_key_ok(line);
		ck_assert_double_eq_tol(cfg->jobs[0].lag.resume_below, cases[i].fraction, 1e-9);
		bf_config_free(cfg);
		free(line);
	}
}
END_TEST

START_TEST(test_bad_units)
{
	const char *dur = "a duration such as 250ms, 5s, 2min";
	const char *sz = "a size such as 512kB, 64MB, 2GB";
	static const struct {
		const char *key, *value;
		bool lag, size;
	} cases[] = {
	        {"sleep", "5m", false, false},
	        {"sleep", "1.5s", false, false},
	        {"sleep", "-1s", false, false},
	        {"sleep", "5 seconds", false, false},
	        {"target_batch_time", "500MS", false, false},
	        {"statement_timeout", "fast", false, false},
	        {"max_replay_time", "10sec", true, false},
	        {"stall_after", "1w", true, false},
	        {"check_interval", "", true, false},
	        {"max_replay_bytes", "64 MiB", true, true},
	        {"max_replay_bytes", "64mb", true, true},
	        {"max_slot_retained", "1KB", true, true},
	        {"max_slot_retained", "2.5GB", true, true},
	        {"max_slot_retained", "1PB", true, true},
	        {"max_slot_retained", "99999999999999999999", true, true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *line, *msg;
		if (cases[i].lag) {
			line = bf_xasprintf("    lag:\n      %s: \"%s\"", cases[i].key,
			                    cases[i].value);
			msg = bf_xasprintf("t.yaml:8:%zu: jobs[0].lag.%s: expected %s, got \"%s\"",
			                   strlen(cases[i].key) + 9, cases[i].key,
			                   cases[i].size ? sz : dur, cases[i].value);
		} else {
			line = bf_xasprintf("    %s: \"%s\"", cases[i].key, cases[i].value);
			msg = bf_xasprintf("t.yaml:7:%zu: jobs[0].%s: expected %s, got \"%s\"",
			                   strlen(cases[i].key) + 7, cases[i].key, dur,
			                   cases[i].value);
		}
		job_key_fails(line, msg);
		free(line);
		free(msg);
	}

	/* limits of a key beyond its unit */
	job_key_fails("    lock_timeout: 0",
	              "t.yaml:7:19: jobs[0].lock_timeout: expected a duration greater than 0, got "
	              "\"0\"");
	job_key_fails("    statement_timeout: 30d",
	              "t.yaml:7:24: jobs[0].statement_timeout: expected a duration of at most "
	              "2147483647ms, got \"30d\"");
	/* every duration has that bound: sums of them never overflow */
	job_key_fails(
	        "    sleep: 9999999h",
	        "t.yaml:7:12: jobs[0].sleep: expected a duration of at most 2147483647ms, got "
	        "\"9999999h\"");
	job_key_fails("    lag:\n      stall_after: 25d",
	              "t.yaml:8:20: jobs[0].lag.stall_after: expected a duration of at most "
	              "2147483647ms, got \"25d\"");
	job_key_fails(
	        "    lag:\n      check_interval: 0ms",
	        "t.yaml:8:23: jobs[0].lag.check_interval: expected a duration greater than 0, "
	        "got \"0ms\"");
	job_key_fails("    lag:\n      resume_below: 0%",
	              "t.yaml:8:21: jobs[0].lag.resume_below: expected a percentage above 0%, got "
	              "\"0%\"");
	job_key_fails(
	        "    lag:\n      resume_below: 50",
	        "t.yaml:8:21: jobs[0].lag.resume_below: expected a percentage such as 50%, got "
	        "\"50\"");
	job_key_fails(
	        "    lag:\n      resume_below: 150%",
	        "t.yaml:8:21: jobs[0].lag.resume_below: expected a percentage such as 50%, got "
	        "\"150%\"");
}
END_TEST

/* --- ${ENV} -------------------------------------------------------------------------- */

START_TEST(test_env_substitution)
{
	ck_assert_int_eq(setenv("BF_TEST_DB", "postgresql://u@db:5432/app", 1), 0);
	ck_assert_int_eq(setenv("BF_TEST_SCHEMA", "public", 1), 0);
	ck_assert_int_eq(setenv("BF_TEST_BATCH", "2500", 1), 0);
	ck_assert_int_eq(setenv("BF_TEST_EMPTY", "", 1), 0);

	bf_config *cfg = parse_ok("database: \"${BF_TEST_DB}\"\n"
	                          "jobs:\n"
	                          "  - name: a\n"
	                          "    table: ${BF_TEST_SCHEMA}.users${BF_TEST_EMPTY}\n"
	                          "    set: \"x = '$HOME' || '$'\"\n"
	                          "    where: \"x IS NULL\"\n"
	                          "    batch_size: ${BF_TEST_BATCH}\n"
	                          "    lag:\n"
	                          "      standbys: [\"${BF_TEST_SCHEMA}_standby\"]\n");
	ck_assert_str_eq(cfg->database, "postgresql://u@db:5432/app");
	ck_assert_str_eq(cfg->jobs[0].database, "postgresql://u@db:5432/app");
	ck_assert_str_eq(cfg->jobs[0].table, "public.users");
	ck_assert_str_eq(cfg->jobs[0].set, "x = '$HOME' || '$'"); /* only ${...} is expanded */
	ck_assert_int_eq(cfg->jobs[0].batch_size, 2500);
	ck_assert_str_eq(cfg->jobs[0].lag.standbys[0], "public_standby");
	bf_config_free(cfg);

	/* an unset variable is an error that names it */
	ck_assert_int_eq(unsetenv("BF_TEST_UNSET_VAR"), 0);
	const char *const unset[] = {
	        "t.yaml:1:11: database: environment variable \"BF_TEST_UNSET_VAR\" is not set",
	        NULL,
	};
	fails_with("database: ${BF_TEST_UNSET_VAR}\n", unset);

	const char *const two[] = {
	        "t.yaml:7:12: jobs[0].table: environment variable \"BF_TEST_UNSET_VAR\" is not "
	        "set",
	        "t.yaml:7:12: jobs[0].table: environment variable \"BF_TEST_UNSET_2\" is not set",
	        NULL,
	};
	fails_with("database: x\n"
	           "jobs:\n"
	           "  - name: a\n"
	           "    set: \"x = 1\"\n"
	           "    where: \"x IS NULL\"\n"
	           "\n"
	           "    table: \"${BF_TEST_UNSET_VAR}.${BF_TEST_UNSET_2}\"\n",
	           two);

	/* the expanded value goes through the key's own check */
	ck_assert_int_eq(setenv("BF_TEST_BATCH", "many", 1), 0);
	job_key_fails("    batch_size: ${BF_TEST_BATCH}",
	              "t.yaml:7:17: jobs[0].batch_size: expected a positive integer, got \"many\"");
	job_key_fails("    sleep: \"${1BAD}\"",
	              "t.yaml:7:12: jobs[0].sleep: invalid environment variable name \"1BAD\"");
	job_key_fails("    sleep: \"${}\"",
	              "t.yaml:7:12: jobs[0].sleep: invalid environment variable name \"\"");
	job_key_fails("    sleep: \"${BF_TEST_BATCH\"",
	              "t.yaml:7:12: jobs[0].sleep: unterminated \"${\": write ${NAME}");
}
END_TEST

/* --- include: ------------------------------------------------------------------------ */

START_TEST(test_include_relative_to_main_file)
{
	char *rel = data_path("full.yaml");
	char *abs = realpath(rel, NULL);
	char *cwd = getcwd(NULL, 0);
	bf_config *cfg = NULL;
	bf_errors errs = {0};

	ck_assert_ptr_nonnull(abs);
	ck_assert_ptr_nonnull(cwd);
	/* from another directory, full.yaml still finds its inc/ next to it */
	ck_assert_int_eq(chdir("/tmp"), 0);
	int rc = bf_config_load(abs, &cfg, &errs);
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(cfg->n_jobs, 3);
	ck_assert_str_eq(cfg->jobs[2].name, "extra_job");
	ck_assert_ptr_nonnull(strstr(cfg->jobs[2].file, "/tests/data/config/inc/extra.yaml"));
	ck_assert_ptr_eq(bf_config_find_job(cfg, "extra_job"), &cfg->jobs[2]);
	bf_config_free(cfg);

	/* a glob that matches nothing (an empty jobs.d/) is fine */
	cfg = parse_ok(HEAD "include: /nonexistent-bf-dir/*.yaml\n");
	ck_assert_str_eq(cfg->include, "/nonexistent-bf-dir/*.yaml");
	ck_assert_uint_eq(cfg->n_jobs, 1);
	bf_config_free(cfg);
	free(cwd);
	free(abs);
	free(rel);
}
END_TEST

START_TEST(test_include_errors)
{
	char *main_file = data_path("bad_include.yaml");
	char *broken = data_path("inc_bad/broken.yaml");
	char *syntax = data_path("inc_bad/syntax.yaml");
	bf_config *cfg = NULL;
	bf_errors errs = {0};
	int rc = bf_config_load(main_file, &cfg, &errs);

	/* mistakes in an included file name that file, with its own lines; a duplicate job
	 * name points at the first one in the main file */
	char *w0 = bf_xasprintf("%s:2:1: log_level: not allowed in an included file (only "
	                        "\"jobs:\" is)",
	                        broken);
	char *w1 = bf_xasprintf("%s:4:11: jobs[0].name: duplicate job name \"main_job\" (first "
	                        "at %s:6:11)",
	                        broken, main_file);
	char *w2 = bf_xasprintf(
	        "%s:11:17: jobs[1].batch_size: expected a positive integer, got \"lots\"", broken);
	char *w3 = bf_xasprintf("%s:8:5: jobs[1]: missing required key \"where\"", broken);
	char *w4 = bf_xasprintf("%s:4:1: YAML syntax error: did not find expected ',' or ']' "
	                        "(while parsing a flow sequence started at 3:11)",
	                        syntax);
	const char *const want[] = {w0, w1, w2, w3, w4, NULL};
	expect_messages(rc, cfg, &errs, want, main_file);

	/* a named file (no glob characters) that is not there is a mistake */
	const char *const missing[] = {
	        "t.yaml:7:10: include: cannot read \"/nonexistent-bf-dir/jobs.yaml\": no such file",
	        NULL,
	};
	fails_with(HEAD "include: /nonexistent-bf-dir/jobs.yaml\n", missing);

	free(w0);
	free(w1);
	free(w2);
	free(w3);
	free(w4);
	free(syntax);
	free(broken);
	free(main_file);
}
END_TEST

START_TEST(test_load_missing_file)
{
	bf_config *cfg = (bf_config *)&cfg; /* must stay untouched */
	bf_errors errs = {0};

	ck_assert_int_eq(bf_config_load("/nonexistent-bf-dir/backfilld.yaml", &cfg, &errs), -1);
	ck_assert_ptr_eq(cfg, (bf_config *)&cfg);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_str_eq(errs.msgs[0], "/nonexistent-bf-dir/backfilld.yaml: cannot read: No such "
	                               "file or directory");
	bf_errors_clear(&errs);

	/* a directory is not a configuration file */
	char *dir = data_path("inc");
	ck_assert_int_eq(bf_config_load(dir, &cfg, &errs), -1);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_ptr_nonnull(strstr(errs.msgs[0], ": cannot read: "));
	bf_errors_clear(&errs);
	free(dir);
	bf_config_free(NULL); /* a no-op */
}
END_TEST

/* --- errors ---------------------------------------------------------------------------- */

START_TEST(test_three_mistakes)
{
	char *path = data_path("three_mistakes.yaml");
	bf_config *cfg = NULL;
	bf_errors errs = {0};
	int rc = bf_config_load(path, &cfg, &errs);
	char *w0 = bf_xasprintf("%s:15:5: jobs[0].sleeep: unknown key (did you mean \"sleep\"?)",
	                        path);
	char *w1 = bf_xasprintf("%s:21:25: jobs[1].lag.max_replay_bytes: expected a size such as "
	                        "512kB, 64MB, 2GB, got \"64 MiB\"",
	                        path);
	char *w2 = bf_xasprintf(
	        "%s:26:17: jobs[2].batch_size: expected a positive integer, got \"abc\"", path);
	const char *const want[] = {w0, w1, w2, NULL};

	expect_messages(rc, cfg, &errs, want, path);
	free(w0);
	free(w1);
	free(w2);
	free(path);
}
END_TEST

START_TEST(test_unknown_keys)
{
	const char *const want[] = {
	        "t.yaml:7:5: jobs[0].bogus: unknown key",
	        "t.yaml:8:5: jobs[0].windw: unknown key (did you mean \"window\"?)",
	        "t.yaml:9:5: jobs[0].max_replay_bytes: unknown key (did you mean "
	        "\"lag.max_replay_bytes\"?)",
	        "t.yaml:11:7: jobs[0].lag.max_replay_byte: unknown key (did you mean "
	        "\"max_replay_bytes\"?)",
	        "t.yaml:12:7: jobs[0].lag.sleep: unknown key",
	        "t.yaml:13:5: jobs[0].lag: duplicate key (first at line 10)",
	        NULL,
	};
	fails_with(HEAD "    bogus: 1\n"
	                "    windw: \"01:00-02:00\"\n"
	                "    max_replay_bytes: 1MB\n"
	                "    lag:\n"
	                "      max_replay_byte: 1\n"
	                "      sleep: 1s\n"
	                "    lag: {}\n",
	           want);
}
END_TEST

START_TEST(test_wrong_types)
{
	const char *const want[] = {
	        "t.yaml:7:17: jobs[0].batch_size: expected a positive integer, got \"abc\"",
	        "t.yaml:8:21: jobs[0].min_batch_size: expected a positive integer, got \"0\"",
	        "t.yaml:9:21: jobs[0].max_batch_size: expected a positive integer no larger than "
	        "100000000, got \"100000001\"",
	        "t.yaml:10:26: jobs[0].max_rows_per_second: expected a non-negative integer, got "
	        "\"1.5\"",
	        "t.yaml:11:18: jobs[0].max_retries: expected a non-negative integer, got \"-1\"",
	        "t.yaml:12:25: jobs[0].synchronous_commit: expected one of on, off, local, "
	        "remote_write, remote_apply, got \"maybe\"",
	        "t.yaml:13:13: jobs[0].window: expected a window such as 01:00-06:00, got "
	        "\"25:00-01:00\"",
	        "t.yaml:14:10: jobs[0].lag: expected a mapping",
	        "t.yaml:15:15: jobs[0].database: expected a string, got a mapping",
	        "t.yaml:16:12: jobs[0].sleep: expected a duration such as 250ms, 5s, 2min, got a "
	        "list",
	        "t.yaml:17:15: jobs[0].parallel: expected a positive integer no larger than 16, "
	        "got \"17\"",
	        NULL,
	};
	fails_with(HEAD "    batch_size: abc\n"
	                "    min_batch_size: 0\n"
	                "    max_batch_size: 100000001\n"
	                "    max_rows_per_second: 1.5\n"
	                "    max_retries: -1\n"
	                "    synchronous_commit: maybe\n"
	                "    window: \"25:00-01:00\"\n"
	                "    lag: 5\n"
	                "    database: {a: 1}\n"
	                "    sleep: [1s]\n"
	                "    parallel: 17\n",
	           want);

	/* windows: the form HH:MM-HH:MM, a real time, 24:00 only as an end */
	static const char *const windows[] = {"1:00-6:00",   "01:00-06:0",  "01:60-06:00",
	                                      "24:00-06:00", "01:00-24:01", "01:00 06:00",
	                                      "always",      "01:00-06:00x"};
	for (size_t i = 0; i < sizeof(windows) / sizeof(windows[0]); i++) {
		char *line = bf_xasprintf("    window: \"%s\"", windows[i]);
		char *msg = bf_xasprintf("t.yaml:7:13: jobs[0].window: expected a window such as "
		                         "01:00-06:00, got \"%s\"",
		                         windows[i]);
		job_key_fails(line, msg);
		free(msg);
		free(line);
	}

	/* key: one column or a list of distinct, non-empty ones */
	job_key_fails("    key: {a: 1}", "t.yaml:7:10: jobs[0].key: expected a column name or a "
	                                 "list of column names, got a mapping");
	job_key_fails("    key: []", "t.yaml:7:10: jobs[0].key: expected at least one key column");
	job_key_fails("    key: [id, id]",
	              "t.yaml:7:15: jobs[0].key[1]: duplicate key column \"id\"");
	job_key_fails("    key: [id, [a]]", "t.yaml:7:15: jobs[0].key[1]: expected a string, got "
	                                    "a list");
	job_key_fails("    key: [id, \"\"]", "t.yaml:7:15: jobs[0].key[1]: expected a non-empty "
	                                     "string, got \"\"");
	job_key_fails("    key: \"\"", "t.yaml:7:10: jobs[0].key: expected a column name or a list "
	                               "of column names, got \"\"");
	job_key_fails("    lag:\n      standbys: s1", "t.yaml:8:17: jobs[0].lag.standbys: "
	                                              "expected a list of strings, got \"s1\"");
	job_key_fails("    lag:\n      standbys: [a, ~]", "t.yaml:8:21: jobs[0].lag.standbys[1]: "
	                                                  "expected a non-empty string, got null");
	job_key_fails("  - 5", "t.yaml:7:5: jobs[1]: expected a mapping");
}
END_TEST

START_TEST(test_null_values)
{
	/* "table: ~" is a missing value, not a table named "~" */
	const char *const want[] = {
	        "t.yaml:3:12: jobs[0].table: expected a non-empty string, got null",
	        "t.yaml:4:10: jobs[0].set: expected a non-empty string, got null",
	        "t.yaml:5:11: jobs[0].where: expected a non-empty string, got null",
	        "t.yaml:6:17: jobs[0].batch_size: expected a positive integer, got null",
	        "t.yaml:7:11: jobs[0].name: expected a job name of 1 to 63 characters a-z, 0-9 or "
	        "_, got null",
	        NULL,
	};
	fails_with("database: x\n"
	           "jobs:\n"
	           "  - table: ~\n"
	           "    set: null\n"
	           "    where:\n"
	           "    batch_size: ~\n"
	           "    name: NULL\n",
	           want);

	/* quoted, they are strings like any other */
	bf_config *cfg = job_key_ok("    key: \"~\"");
	ck_assert_str_eq(cfg->jobs[0].key[0], "~");
	bf_config_free(cfg);
}
END_TEST

START_TEST(test_missing_required_keys)
{
	const char *const want[] = {
	        "t.yaml:3:5: jobs[0]: missing required key \"name\"",
	        "t.yaml:3:5: jobs[0]: missing required key \"table\"",
	        "t.yaml:3:5: jobs[0]: missing required key \"set\"",
	        "t.yaml:3:5: jobs[0]: missing required key \"where\"",
	        "t.yaml:4:5: jobs[1]: missing required key \"where\"",
	        NULL,
	};
	fails_with("database: x\n"
	           "jobs:\n"
	           "  - batch_size: 10\n"
	           "  - name: b\n"
	           "    table: t\n"
	           "    set: s\n",
	           want);

	const char *const no_db[] = {
	        "t.yaml:2:5: jobs[0]: no database: set \"database\" in the job, in defaults: or at "
	        "the top level",
	        NULL,
	};
	fails_with("jobs:\n"
	           "  - name: a\n"
	           "    table: t\n"
	           "    set: s\n"
	           "    where: w\n",
	           no_db);
}
END_TEST

START_TEST(test_job_names)
{
	char name63[64], name64[65];

	memset(name63, 'a', 63);
	name63[63] = '\0';
	memset(name64, 'b', 64);
	name64[64] = '\0';

	static const char *const good[] = {"a", "users_email_lower", "2024_fix", "_x_"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *text = bf_xasprintf("database: x\njobs:\n  - name: %s\n    table: t\n"
		                          "    set: s\n    where: w\n",
		                          good[i]);
		bf_config *cfg = parse_ok(text);
		ck_assert_str_eq(cfg->jobs[0].name, good[i]);
		bf_config_free(cfg);
		free(text);
	}
	char *text = bf_xasprintf("database: x\njobs:\n  - name: %s\n    table: t\n"
	                          "    set: s\n    where: w\n",
	                          name63);
	bf_config *cfg = parse_ok(text);
	ck_assert_uint_eq(strlen(cfg->jobs[0].name), 63);
	bf_config_free(cfg);
	free(text);

	const char *const expect = "a job name of 1 to 63 characters a-z, 0-9 or _";
	static const char *const bad[] = {"Users", "users-email", "users email",
	                                  "\"\"",  "é",           "a.b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		text = bf_xasprintf("database: x\njobs:\n  - name: %s\n    table: t\n"
		                    "    set: s\n    where: w\n",
		                    bad[i]);
		char *shown =
		        bad[i][0] == '"' ? bf_xstrdup(bad[i]) : bf_xasprintf("\"%s\"", bad[i]);
		char *msg = bf_xasprintf("t.yaml:3:11: jobs[0].name: expected %s, got %s", expect,
		                         shown);
		const char *const want[] = {msg, NULL};
		fails_with(text, want);
		free(msg);
		free(shown);
		free(text);
	}

	/* 64 characters: refused, and the echo is cut at 60 */
	text = bf_xasprintf("database: x\njobs:\n  - name: %s\n    table: t\n"
	                    "    set: s\n    where: w\n",
	                    name64);
	char *msg = bf_xasprintf("t.yaml:3:11: jobs[0].name: expected %s, got \"%.60s...\"", expect,
	                         name64);
	const char *const want64[] = {msg, NULL};
	fails_with(text, want64);
	free(msg);
	free(text);
}
END_TEST

START_TEST(test_duplicate_job_names)
{
	const char *const want[] = {
	        "t.yaml:11:11: jobs[2].name: duplicate job name \"a\" (first at t.yaml:3:11)",
	        NULL,
	};
	fails_with(HEAD "  - name: b\n"
	                "    table: t\n"
	                "    set: s\n"
	                "    where: w\n"
	                "  - name: a\n"
	                "    table: t2\n"
	                "    set: s\n"
	                "    where: w\n",
	           want);

	/* across files: a main-file job named like an included one */
	char *dir = data_path("");
	char *text = bf_xasprintf("database: x\n"
	                          "include: %sinc/*.yaml\n"
	                          "jobs:\n"
	                          "  - name: extra_job\n"
	                          "    table: t\n"
	                          "    set: s\n"
	                          "    where: w\n",
	                          dir);
	char *msg = bf_xasprintf("%sinc/extra.yaml:3:11: jobs[0].name: duplicate job name "
	                         "\"extra_job\" (first at t.yaml:4:11)",
	                         dir);
	const char *const across[] = {msg, NULL};
	fails_with(text, across);
	free(msg);
	free(text);
	free(dir);
}
END_TEST

START_TEST(test_batch_size_relations)
{
	job_key_fails("    batch_size: 50", "t.yaml:3:5: jobs[0]: batch_size 50 is below "
	                                    "min_batch_size 100");
	job_key_fails("    batch_size: 30000", "t.yaml:3:5: jobs[0]: batch_size 30000 is above "
	                                       "max_batch_size 20000");
	job_key_fails("    min_batch_size: 500\n    max_batch_size: 400",
	              "t.yaml:3:5: jobs[0]: min_batch_size 500 is above max_batch_size 400");

	bf_config *cfg = job_key_ok("    batch_size: 10\n    min_batch_size: 10\n"
	                            "    max_batch_size: 10");
	ck_assert_int_eq(cfg->jobs[0].batch_size, 10);
	bf_config_free(cfg);
}
END_TEST

START_TEST(test_app_signals)
{
	bf_config *cfg = job_key_ok("    max_commit_latency: 25ms");

	ck_assert_int_eq(cfg->jobs[0].max_commit_latency_ms, 25);
	bf_config_free(cfg);
	cfg = job_key_ok("    max_commit_latency: off");
	ck_assert_int_eq(cfg->jobs[0].max_commit_latency_ms, 0);
	bf_config_free(cfg);
	cfg = job_key_ok("");
	ck_assert_int_eq(cfg->jobs[0].max_commit_latency_ms, 10); /* on by default */
	ck_assert_ptr_null(cfg->jobs[0].throttle_query);
	bf_config_free(cfg);
	job_key_fails("    max_commit_latency: soon",
	              "t.yaml:7:25: jobs[0].max_commit_latency: expected a duration such as 250ms, "
	              "5s, 2min, or off, got \"soon\"");

	cfg = job_key_ok("    max_wal_rate: 30MB");
	ck_assert_int_eq(cfg->jobs[0].max_wal_rate, 30 * 1024 * 1024);
	bf_config_free(cfg);
	cfg = job_key_ok("    throttle_query: \"SELECT count(*) FROM pg_stat_activity\"\n"
	                 "    throttle_above: 0.5");
	ck_assert_str_eq(cfg->jobs[0].throttle_query, "SELECT count(*) FROM pg_stat_activity");
	ck_assert(cfg->jobs[0].throttle_above > 0.49 && cfg->jobs[0].throttle_above < 0.51);
	bf_config_free(cfg);
	job_key_fails("    throttle_query: \"SELECT 1\"",
	              "t.yaml:3:5: jobs[0]: throttle_query needs throttle_above (the value that "
	              "throttles)");
	job_key_fails("    throttle_above: 5",
	              "t.yaml:3:5: jobs[0]: throttle_above without throttle_query does nothing");
	job_key_fails("    throttle_query: \"SELECT 1; SELECT 2\"\n    throttle_above: 1",
	              "t.yaml:7:21: jobs[0].throttle_query: expected a single SQL fragment (here a "
	              "statement separator ';' at character 9), got \"SELECT 1; SELECT 2\"");
	job_key_fails("    throttle_query: \"SELECT 1\"\n    throttle_above: many",
	              "t.yaml:8:21: jobs[0].throttle_above: expected a number such as 100 or 0.25, "
	              "got \"many\"");
}
END_TEST

START_TEST(test_yaml_syntax_errors)
{
	static const struct {
		const char *text, *msg;
	} cases[] = {
	        {"database: x\njobs:\n  - name: a\n    table: [t\n",
	         "t.yaml:5:1: YAML syntax error: did not find expected ',' or ']' (while parsing a "
	         "flow sequence started at 4:12)"},
	        {"database: x\n  bad: indent\n",
	         "t.yaml:2:6: YAML syntax error: mapping values are not allowed in this context"},
	        {"database: \"x\njobs: []\n",
	         "t.yaml:3:1: YAML syntax error: found unexpected end of stream (while scanning a "
	         "quoted scalar started at 1:11)"},
	        {"jobs:\n  - name: a\n\ttable: t\n",
	         "t.yaml:3:1: YAML syntax error: found a tab character that violates indentation "
	         "(while scanning a plain scalar started at 2:11)"},
	        {"database: x\n---\njobs: []\n",
	         "t.yaml:2:1: only one YAML document is allowed per file"},
	        {"database: x\xff\n",
	         "t.yaml:1:12: YAML syntax error: invalid leading UTF-8 octet"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const want[] = {cases[i].msg, NULL};
		fails_with(cases[i].text, want);
	}
}
END_TEST

START_TEST(test_errors_leave_output_alone)
{
	bf_config *cfg = (bf_config *)&cfg;
	bf_errors errs = {0};

	ck_assert_int_eq(bf_config_parse_string("t.yaml", HEAD "    batch_size: x\n", &cfg, &errs),
	                 -1);
	ck_assert_ptr_eq(cfg, (bf_config *)&cfg);
	ck_assert_uint_eq(errs.n, 1);
	/* errors accumulate: a second failed load adds to the list */
	ck_assert_int_eq(bf_config_parse_string("u.yaml", "colour: x\n", &cfg, &errs), -1);
	ck_assert_uint_eq(errs.n, 2);
	ck_assert_str_eq(errs.msgs[1], "u.yaml:1:1: colour: unknown key");
	bf_errors_clear(&errs);
}
END_TEST

/* --- definition hash ------------------------------------------------------------------- */

static void job_hash(const char *extra, char out[17])
{
	char *text = bf_xasprintf(HEAD "%s", extra);
	bf_config *cfg = parse_ok(text);

	bf_job_config_hash(&cfg->jobs[0], out);
	bf_config_free(cfg);
	free(text);
}

START_TEST(test_job_hash)
{
	char base[17], other[17];
	bf_job_config j = {.table = "public.users",
	                   .set = "email_lower = lower(email)",
	                   .where = "email_lower IS NULL"};
	char *key[] = {"tenant_id", "id"};

	/* FNV-1a 64 over "table\0key...\0set\0where\0": the same on every build and machine
	 * (the expected values were computed apart from the code under test) */
	bf_job_config_hash(&j, base);
	ck_assert_str_eq(base, "28ea15263ee153aa");
	j.key = key;
	j.n_key = 2;
	bf_job_config_hash(&j, base);
	ck_assert_str_eq(base, "0cae7ab203982ca3");

	job_hash("", base);
	ck_assert_uint_eq(strlen(base), 16);
	ck_assert_uint_eq(strspn(base, "0123456789abcdef"), 16);
	job_hash("", other);
	ck_assert_str_eq(base, other);

	/* what decides the rows and how they are walked changes it */
	static const char *const changes[] = {
	        "    table: t2\n",
	        "    key: id\n",
	        "    key: [id, tenant_id]\n",
	        "    set: \"x = 2\"\n",
	        "    where: \"x IS DISTINCT FROM 1\"\n",
	};
	/* tuning does not */
	static const char *const tuning[] = {
	        "    batch_size: 5000\n    max_batch_size: 50000\n",
	        "    min_batch_size: 1\n    target_batch_time: 2s\n",
	        "    sleep: 1s\n    max_rows_per_second: 10\n",
	        "    lock_timeout: 5s\n    statement_timeout: 1h\n",
	        "    synchronous_commit: \"on\"\n    max_retries: 1\n",
	        "    lag:\n      max_replay_bytes: 1GB\n      standbys: [s1]\n",
	        "    window: \"01:00-02:00\"\n    database: other\n",
	};
	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		/* HEAD already has table, set and where: build the job whole instead */
		const char *table = strstr(changes[i], "table:") ? "t2" : "t";
		const char *set = strstr(changes[i], "set:") ? "\"x = 2\"" : "\"x = 1\"";
		const char *where =
		        strstr(changes[i], "where:") ? "\"x IS DISTINCT FROM 1\"" : "\"x IS NULL\"";
		const char *k = strstr(changes[i], "key:") ? changes[i] : "";
		char *text = bf_xasprintf("database: x\njobs:\n  - name: a\n    table: %s\n"
		                          "    set: %s\n    where: %s\n%s",
		                          table, set, where, k);
		bf_config *cfg = parse_ok(text);
		bf_job_config_hash(&cfg->jobs[0], other);
		ck_assert_msg(strcmp(base, other) != 0, "same hash after %s", changes[i]);
		bf_config_free(cfg);
		free(text);
	}
	for (size_t i = 0; i < sizeof(tuning) / sizeof(tuning[0]); i++) {
		job_hash(tuning[i], other);
		ck_assert_msg(strcmp(base, other) == 0, "hash changed by %s", tuning[i]);
	}

	/* the order of key columns matters; the job's name does not */
	char ab[17], ba[17];
	job_hash("    key: [a, b]\n", ab);
	job_hash("    key: [b, a]\n", ba);
	ck_assert_str_ne(ab, ba);
	char *renamed = bf_xasprintf("database: x\njobs:\n  - name: renamed\n    table: t\n"
	                             "    set: \"x = 1\"\n    where: \"x IS NULL\"\n");
	bf_config *cfg = parse_ok(renamed);
	bf_job_config_hash(&cfg->jobs[0], other);
	ck_assert_str_eq(base, other);
	bf_config_free(cfg);
	free(renamed);
}
END_TEST

/* --- what a change means on reload (the key table's reload classes) ------------------- */

/* The reload classes between HEAD and HEAD with `extra` job keys. */
static unsigned changes(const char *base_extra, const char *extra)
{
	char *ta = bf_xasprintf(HEAD "%s", base_extra);
	char *tb = bf_xasprintf(HEAD "%s", extra);
	bf_config *a = parse_ok(ta);
	bf_config *b = parse_ok(tb);
	unsigned c = bf_job_config_changes(&a->jobs[0], &b->jobs[0]);

	bf_config_free(a);
	bf_config_free(b);
	free(ta);
	free(tb);
	return c;
}

START_TEST(test_reload_classes)
{
	char keys[256];
	bf_config *a, *b;

	static const struct {
		const char *before, *after;
		unsigned want;
	} cases[] = {
	        {"", "", 0},
	        {"", "    batch_size: 5000\n", BF_RELOAD_TUNING},
	        {"", "    sleep: 1s\n", BF_RELOAD_TUNING},
	        {"", "    lag:\n      max_replay_bytes: 1GB\n", BF_RELOAD_TUNING},
	        {"", "    lag:\n      standbys: [s1]\n", BF_RELOAD_TUNING},
	        {"", "    lag:\n      resume_below: 20%\n", BF_RELOAD_TUNING},
	        {"", "    window: \"01:00-02:00\"\n", BF_RELOAD_TUNING},
	        {"    window: \"01:00-02:00\"\n", "    window: \"01:00-03:00\"\n",
	         BF_RELOAD_TUNING},
	        {"", "    lock_timeout: 5s\n", BF_RELOAD_SESSION},
	        {"", "    statement_timeout: 1h\n", BF_RELOAD_SESSION},
	        {"", "    synchronous_commit: \"on\"\n", BF_RELOAD_SESSION},
	        {"", "    database: other\n", BF_RELOAD_CONNECTION},
	        {"", "    key: id\n", BF_RELOAD_DEFINITION},
	        {"    key: [a, b]\n", "    key: [b, a]\n", BF_RELOAD_DEFINITION},
	        {"    key: [a, b]\n", "    key: [a]\n", BF_RELOAD_DEFINITION},
	        {"", "    lock_timeout: 5s\n    sleep: 1s\n    key: id\n",
	         BF_RELOAD_SESSION | BF_RELOAD_TUNING | BF_RELOAD_DEFINITION},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(changes(cases[i].before, cases[i].after) == cases[i].want,
		              "%s -> %s: got %u, want %u", cases[i].before, cases[i].after,
		              changes(cases[i].before, cases[i].after), cases[i].want);

	/* top-level keys taken only at a restart are named */
	a = parse_ok("metrics_listen: \"127.0.0.1:9187\"\n" HEAD);
	b = parse_ok("metrics_listen: \"127.0.0.1:9188\"\nmax_parallel_jobs: 9\n" HEAD);
	bf_config_restart_changes(a, b, keys, sizeof(keys));
	ck_assert_str_eq(keys, "metrics_listen");
	bf_config_restart_changes(a, a, keys, sizeof(keys));
	ck_assert_str_eq(keys, "");
	bf_config_free(a);
	bf_config_free(b);
	/* and a reload keeps their values: the control schema too */
	a = parse_ok("metrics_listen: \"127.0.0.1:9187\"\n" HEAD);
	b = parse_ok("metrics_listen: \":9188\"\ncontrol_schema: other\n" HEAD);
	bf_config_restart_changes(a, b, keys, sizeof(keys));
	ck_assert_str_eq(keys, "control_schema,metrics_listen");
	bf_config_keep_restart_keys(b, a);
	ck_assert_str_eq(b->metrics_listen, "127.0.0.1:9187");
	ck_assert_str_eq(b->control_schema, "backfill");
	bf_config_free(a);
	bf_config_free(b);
}
END_TEST

START_TEST(test_lag_limited)
{
	bf_lag_config lag = {.resume_below = 0.5, .check_interval_ms = 1000};
	char *names[] = {"s1"};

	/* the keys flagged as limits decide whether a job needs a lag monitor */
	ck_assert(!bf_lag_config_limited(&lag));
	lag.stall_after_ms = 30000;
	ck_assert(bf_lag_config_limited(&lag));
	lag.stall_after_ms = 0;
	lag.standbys = names;
	lag.n_standbys = 1;
	ck_assert(bf_lag_config_limited(&lag));
	lag.n_standbys = 0;
	lag.max_archive_backlog = 64;
	ck_assert(bf_lag_config_limited(&lag));
}
END_TEST

/* then:, dual_write and verify: the forms read, each step linted where it is written, the
 * keys that need set one column at a time refused with a row assignment. */
START_TEST(test_after_the_data)
{
	bf_config *cfg = parse_ok(HEAD "    dual_write: trigger\n"
	                               "    verify: yes\n"
	                               "    then:\n"
	                               "      - \"ALTER TABLE t VALIDATE CONSTRAINT c\"\n"
	                               "      - not_null: x\n"
	                               "      - check: \"x > 0\"\n"
	                               "      - index: \"CREATE INDEX CONCURRENTLY i ON t (x)\"\n"
	                               "      - sql: \"ANALYZE t\"\n");
	const bf_job_config *j = &cfg->jobs[0];

	ck_assert_int_eq(j->dual_write, 1);
	ck_assert_int_eq(j->verify, 1);
	ck_assert_uint_eq(j->n_then, 5);
	ck_assert_int_eq(j->then[0].kind, BF_STEP_SQL);
	ck_assert_str_eq(j->then[0].text, "ALTER TABLE t VALIDATE CONSTRAINT c");
	ck_assert_int_eq(j->then[1].kind, BF_STEP_NOT_NULL);
	ck_assert_str_eq(j->then[1].text, "x");
	ck_assert_int_eq(j->then[2].kind, BF_STEP_CHECK);
	ck_assert_int_eq(j->then[3].kind, BF_STEP_INDEX);
	ck_assert_int_eq(j->then[4].kind, BF_STEP_SQL);
	/* a copy owns its steps, and compares equal */
	bf_job_config *copy = bf_job_config_dup(j);
	ck_assert_uint_eq(bf_job_config_changes(j, copy), 0);
	copy->then[4].kind = BF_STEP_CHECK;
	ck_assert_uint_ne(bf_job_config_changes(j, copy), 0);
	bf_job_config_free(copy);
	bf_config_free(cfg);

	const char *const bad[] = {
	        "t.yaml:8:9: jobs[0].then[0]: CREATE INDEX without CONCURRENTLY blocks every "
	        "write to the table for the whole build: write CREATE INDEX CONCURRENTLY (an "
	        "index: step)",
	        "t.yaml:9:9: jobs[0].then[1]: unknown step form (expected sql:, not_null:, "
	        "check:, index:)",
	        "t.yaml:10:9: jobs[0].then[2]: expected one of sql:, not_null:, check:, index:",
	        NULL,
	};
	fails_with(HEAD "    then:\n"
	                "      - \"CREATE INDEX i ON t (x)\"\n"
	                "      - nut_null: x\n"
	                "      - {check: \"x > 0\", index: \"y\"}\n",
	           bad);
	const char *const rows[] = {
	        "t.yaml:3:5: jobs[0]: verify: true needs set's item 1 to be `column = expression` "
	        "(a row assignment, a subscript or a field cannot be evaluated again one column "
	        "at a time)",
	        NULL,
	};
	fails_with("database: x\n"
	           "jobs:\n"
	           "  - name: a\n"
	           "    table: t\n"
	           "    set: \"(x, y) = (1, 2)\"\n"
	           "    where: \"x IS NULL\"\n"
	           "    verify: true\n",
	           rows);
}
END_TEST

/* backup: true needs to know the columns set assigns; backup_columns says them, and means
 * nothing alone. Both are part of the definition, and a job without them keeps its hash. */
START_TEST(test_backup_keys)
{
	char base[17], other[17], cols[17];
	const char *const unclear[] = {
	        "t.yaml:3:5: jobs[0]: backup: true cannot tell which columns set assigns: list "
	        "them in backup_columns",
	        NULL,
	};
	const char *const alone[] = {
	        "t.yaml:3:5: jobs[0]: backup_columns without backup: true does nothing",
	        NULL,
	};
	bf_config *cfg;

	fails_with("database: x\njobs:\n  - name: a\n    table: t\n    set: \"f(x)\"\n"
	           "    where: \"x IS NULL\"\n    backup: true\n",
	           unclear);
	fails_with(HEAD "    backup_columns: [x]\n", alone);
	cfg = parse_ok("database: x\njobs:\n  - name: a\n    table: t\n    set: \"f(x)\"\n"
	               "    where: \"x IS NULL\"\n    backup: true\n    backup_columns: [x, y]\n");
	ck_assert_int_eq(cfg->jobs[0].backup, 1);
	ck_assert_uint_eq(cfg->jobs[0].n_backup_columns, 2);
	ck_assert_str_eq(cfg->jobs[0].backup_columns[1], "y");
	bf_config_free(cfg);

	job_hash("", base);
	job_hash("    backup: false\n", other);
	ck_assert_str_eq(base, other);
	job_hash("    backup: true\n", other);
	ck_assert_str_ne(base, other);
	job_hash("    backup: true\n    backup_columns: [x]\n", cols);
	ck_assert_str_ne(cols, other);
	ck_assert_str_ne(cols, base);
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *keys = tcase_create("keys");
	TCase *units = tcase_create("units");
	TCase *env = tcase_create("env_include");
	TCase *errors = tcase_create("errors");
	TCase *hash = tcase_create("hash");

	tcase_set_timeout(keys, 10);
	tcase_add_test(keys, test_builtin_defaults);
	tcase_add_test(keys, test_every_key);
	tcase_add_test(keys, test_job_config_dup);
	tcase_add_test(keys, test_top_level_keys);
	tcase_add_test(keys, test_job_keys_one_by_one);
	tcase_add_test(keys, test_lag_keys);
	tcase_add_test(keys, test_defaults_inheritance);
	suite_add_tcase(s, keys);

	tcase_set_timeout(units, 10);
	tcase_add_test(units, test_duration_units);
	tcase_add_test(units, test_size_units);
	tcase_add_test(units, test_percent_unit);
	tcase_add_test(units, test_bad_units);
	suite_add_tcase(s, units);

	tcase_set_timeout(env, 10);
	tcase_add_test(env, test_env_substitution);
	tcase_add_test(env, test_include_relative_to_main_file);
	tcase_add_test(env, test_include_errors);
	tcase_add_test(env, test_load_missing_file);
	suite_add_tcase(s, env);

	tcase_set_timeout(errors, 10);
	tcase_add_test(errors, test_three_mistakes);
	tcase_add_test(errors, test_top_level_errors);
	tcase_add_test(errors, test_defaults_errors);
	tcase_add_test(errors, test_unknown_keys);
	tcase_add_test(errors, test_wrong_types);
	tcase_add_test(errors, test_null_values);
	tcase_add_test(errors, test_missing_required_keys);
	tcase_add_test(errors, test_job_names);
	tcase_add_test(errors, test_duplicate_job_names);
	tcase_add_test(errors, test_batch_size_relations);
	tcase_add_test(errors, test_app_signals);
	tcase_add_test(errors, test_yaml_syntax_errors);
	tcase_add_test(errors, test_set_where_guards);
	tcase_add_test(errors, test_errors_leave_output_alone);
	suite_add_tcase(s, errors);

	tcase_set_timeout(hash, 10);
	tcase_add_test(hash, test_job_hash);
	tcase_add_test(hash, test_backup_keys);
	tcase_add_test(hash, test_reload_classes);
	tcase_add_test(hash, test_lag_limited);
	tcase_add_test(keys, test_after_the_data);
	suite_add_tcase(s, hash);
	return s;
}
