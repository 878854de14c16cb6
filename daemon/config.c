/*
 * config.c - the YAML configuration: libyaml's document tree, walked through key tables.
 *
 * The whole file is loaded as a libyaml document first, so every node keeps its position and
 * every message can say FILE:LINE:COL. Then three tables of known keys (top level, job, lag)
 * drive the walk: each row gives a key's name, type, place in the struct (offsetof), built-in
 * default (written as an operator would write it, and parsed by the same code) and limits.
 * Adding a key is adding a row: defaults, parsing, messages, suggestions for misspellings and
 * freeing all follow from the tables.
 *
 * Nothing stops at the first problem: every problem is reported and counted, and only a
 * file without any is returned. A job is built from the built-in defaults, then the
 * defaults: mapping (whose problems are reported once, under "defaults."), then its own keys;
 * required keys and the cross-key rules are checked after that merge.
 *
 * Decisions worth knowing:
 * - A YAML null (an empty value, ~ or null, unquoted) clears an optional key (database, key,
 *   window, metrics_listen, include, standbys): "window: ~" in a job undoes a default window.
 *   For every other key it is a wrong value, except that an empty lag:, defaults: or jobs:
 *   (every entry commented out) is the same as an absent one.
 * - ${NAME} is expanded in every scalar value the configuration reads, numbers included.
 * - A window "HH:MM-HH:MM" may wrap midnight; 24:00 is accepted as an end; start == end
 *   means always (see config.h).
 * - synchronous_commit accepts true/yes/false/no for on/off (YAML 1.1 habits); enums match
 *   without regard to case; log_level also accepts "warning".
 * - An include: glob that matches the main file itself skips it, so "*.yaml" next to the
 *   main file works. A glob that matches nothing is fine (an empty jobs.d/); a path without
 *   glob characters that names no file is an error.
 */
#include "backfilld/config.h"

#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <math.h>
#include <yaml.h>

#include "backfilld/log.h"
#include "backfilld/sqltext.h"
#include "backfilld/steps.h"
#include "backfilld/units.h"

enum key_type {
	KT_STRING,      /* char *, heap-owned */
	KT_INT,         /* int64_t within [min, max] */
	KT_DURATION,    /* int64_t milliseconds within [min, max] */
	KT_SIZE,        /* int64_t bytes */
	KT_PERCENT,     /* double 0..1; min 1 means "above 0%" */
	KT_NUMBER,      /* double, any finite number */
	KT_ENUM,        /* int, one of choices */
	KT_ENUM_STRING, /* char *, the canonical name of one of choices */
	KT_STRING_LIST, /* char ** at offset, size_t at count_offset */
	KT_KEY,         /* as KT_STRING_LIST, but a single string is a list of one */
	KT_WINDOW,      /* bf_window */
	KT_STEPS,       /* bf_step_config * at offset, size_t at count_offset (then:) */
	KT_MAPPING,     /* a nested struct at offset, described by sub */
	KT_NODE,        /* a known key the caller handles itself (defaults, jobs) */
};

enum key_flags {
	KF_REQUIRED = 1 << 0,    /* a job must have it, from itself or from defaults */
	KF_NULLABLE = 1 << 1,    /* a YAML null clears it */
	KF_NOT_DEFAULT = 1 << 2, /* refused inside defaults: */
	KF_LIMIT = 1 << 3,       /* a lag limit: set (non-zero), the job needs a lag monitor */
	KF_OFF = 1 << 4,         /* a duration that also takes the word off (stored as 0) */
	KF_AUTO = 1 << 5,        /* an integer that also takes the word auto (stored as 0) */
};

struct choice {
	const char *name;
	int value;
	bool alias; /* accepted but not listed nor stored: the first name with the value is */
};

struct key_def {
	const char *name;
	enum key_type type;
	size_t offset;
	size_t count_offset;
	const char *def; /* built-in default as text, NULL for none */
	int64_t min;
	int64_t max; /* 0: no upper bound */
	unsigned flags;
	const struct choice *choices; /* ended by a NULL name */
	bool (*check)(const char *text);
	const char *expect; /* what check wants, for "expected %s, got ..." */
	/* a string's problem, as "expected <this>, got ..." (malloc'ed), or NULL when fine */
	char *(*explain)(const char *text);
	const struct key_def *sub;
	size_t n_sub;
	/* what a change of it means on reload (config.h BF_RELOAD_*); 0 = BF_RELOAD_TUNING */
	unsigned reload;
};

static bool is_job_name(const char *s);
static bool is_identifier(const char *s);
static bool is_host_port(const char *s);
static bool is_nonempty(const char *s);

static const struct choice log_levels[] = {
        {.name = "debug", .value = BF_LOG_DEBUG},
        {.name = "info", .value = BF_LOG_INFO},
        {.name = "warn", .value = BF_LOG_WARN},
        {.name = "error", .value = BF_LOG_ERROR},
        {.name = "warning", .value = BF_LOG_WARN, .alias = true},
        {.name = NULL},
};

static const struct choice booleans[] = {
        {.name = "false", .value = 0},
        {.name = "true", .value = 1},
        {.name = "off", .value = 0, .alias = true},
        {.name = "on", .value = 1, .alias = true},
        {.name = "no", .value = 0, .alias = true},
        {.name = "yes", .value = 1, .alias = true},
        {.name = NULL},
};

static const struct choice dual_write_modes[] = {
        {.name = "off", .value = 0},
        {.name = "trigger", .value = 1},
        {.name = NULL},
};

static const struct choice sync_commit_modes[] = {
        {.name = "on", .value = 1},
        {.name = "off", .value = 0},
        {.name = "local", .value = 2},
        {.name = "remote_write", .value = 3},
        {.name = "remote_apply", .value = 4},
        {.name = "true", .value = 1, .alias = true},
        {.name = "yes", .value = 1, .alias = true},
        {.name = "false", .value = 0, .alias = true},
        {.name = "no", .value = 0, .alias = true},
        {.name = NULL},
};

#define NONEMPTY     .check = is_nonempty, .expect = "a non-empty string"
#define LAG(f)       offsetof(bf_lag_config, f)
#define JOB(f)       offsetof(bf_job_config, f)
#define TOP(f)       offsetof(bf_config, f)
#define PG_INT_MAX   INT64_C(2147483647) /* lock_timeout and statement_timeout are int ms */
#define BATCH_MAX    INT64_C(100000000)
#define PARALLEL_MAX 16 /* connections per job: a server has a few hundred at most */

static const struct key_def lag_keys[] = {
        {.name = "max_replay_bytes",
         .flags = KF_LIMIT,
         .type = KT_SIZE,
         .offset = LAG(max_replay_bytes),
         .def = "64MB"},
        {.name = "max_replay_time",
         .flags = KF_LIMIT,
         .type = KT_DURATION,
         .offset = LAG(max_replay_time_ms),
         .def = "10s"},
        {.name = "max_slot_retained",
         .flags = KF_LIMIT,
         .type = KT_SIZE,
         .offset = LAG(max_slot_retained),
         .def = "2GB"},
        {.name = "max_archive_backlog",
         .flags = KF_LIMIT,
         .type = KT_INT,
         .offset = LAG(max_archive_backlog),
         .def = "64"},
        {.name = "min_standbys",
         .flags = KF_LIMIT,
         .type = KT_INT,
         .offset = LAG(min_standbys),
         .def = "0"},
        {.name = "standbys",
         .type = KT_STRING_LIST,
         .offset = LAG(standbys),
         .count_offset = LAG(n_standbys),
         .flags = KF_NULLABLE | KF_LIMIT},
        {.name = "stall_after",
         .flags = KF_LIMIT,
         .type = KT_DURATION,
         .offset = LAG(stall_after_ms),
         .def = "30s"},
        {.name = "resume_below",
         .type = KT_PERCENT,
         .offset = LAG(resume_below),
         .def = "50%",
         .min = 1},
        {.name = "check_interval",
         .type = KT_DURATION,
         .offset = LAG(check_interval_ms),
         .def = "1s",
         .min = 1},
};

static const struct key_def job_keys[] = {
        {.name = "name",
         .type = KT_STRING,
         .offset = JOB(name),
         .flags = KF_REQUIRED | KF_NOT_DEFAULT,
         .check = is_job_name,
         .expect = "a job name of 1 to 63 characters a-z, 0-9 or _"},
        {.name = "database",
         .type = KT_STRING,
         .offset = JOB(database),
         .flags = KF_NULLABLE,
         .reload = BF_RELOAD_CONNECTION},
        {.name = "table",
         .type = KT_STRING,
         .offset = JOB(table),
         .flags = KF_REQUIRED,
         NONEMPTY,
         .reload = BF_RELOAD_DEFINITION},
        {.name = "key",
         .type = KT_KEY,
         .offset = JOB(key),
         .count_offset = JOB(n_key),
         .flags = KF_NULLABLE,
         NONEMPTY,
         .reload = BF_RELOAD_DEFINITION},
        {.name = "set",
         .type = KT_STRING,
         .offset = JOB(set),
         .flags = KF_REQUIRED,
         NONEMPTY,
         .explain = bf_sqltext_problem,
         .reload = BF_RELOAD_DEFINITION},
        {.name = "where",
         .type = KT_STRING,
         .offset = JOB(where),
         .flags = KF_REQUIRED,
         NONEMPTY,
         .explain = bf_sqltext_problem,
         .reload = BF_RELOAD_DEFINITION},
        {.name = "batch_size",
         .type = KT_INT,
         .offset = JOB(batch_size),
         .def = "1000",
         .min = 1,
         .max = BATCH_MAX},
        {.name = "min_batch_size",
         .type = KT_INT,
         .offset = JOB(min_batch_size),
         .def = "100",
         .min = 1,
         .max = BATCH_MAX},
        {.name = "max_batch_size",
         .type = KT_INT,
         .offset = JOB(max_batch_size),
         .def = "20000",
         .min = 1,
         .max = BATCH_MAX},
        {.name = "target_batch_time",
         .type = KT_DURATION,
         .offset = JOB(target_batch_time_ms),
         .def = "50ms"},
        {.name = "sleep", .type = KT_DURATION, .offset = JOB(sleep_ms), .def = "100ms"},
        {.name = "max_rows_per_second",
         .type = KT_INT,
         .offset = JOB(max_rows_per_second),
         .def = "0"},
        {.name = "lock_timeout",
         .type = KT_DURATION,
         .offset = JOB(lock_timeout_ms),
         .reload = BF_RELOAD_SESSION,
         .def = "1s",
         .min = 1,
         .max = PG_INT_MAX},
        {.name = "statement_timeout",
         .type = KT_DURATION,
         .offset = JOB(statement_timeout_ms),
         .reload = BF_RELOAD_SESSION,
         .def = "30s",
         .min = 1,
         .max = PG_INT_MAX},
        {.name = "synchronous_commit",
         .type = KT_ENUM_STRING,
         .offset = JOB(synchronous_commit),
         .reload = BF_RELOAD_SESSION,
         .def = "off",
         .choices = sync_commit_modes},
        {.name = "max_commit_latency",
         .type = KT_DURATION,
         .offset = JOB(max_commit_latency_ms),
         .flags = KF_OFF,
         .def = "10ms"},
        {.name = "max_wal_rate", .type = KT_SIZE, .offset = JOB(max_wal_rate), .def = "0"},
        {.name = "throttle_query",
         .type = KT_STRING,
         .offset = JOB(throttle_query),
         .flags = KF_NULLABLE,
         NONEMPTY,
         .explain = bf_sqltext_problem},
        {.name = "throttle_above", .type = KT_NUMBER, .offset = JOB(throttle_above), .def = "0"},
        {.name = "max_retries", .type = KT_INT, .offset = JOB(max_retries), .def = "10"},
        {.name = "parallel",
         .type = KT_INT,
         .flags = KF_AUTO,
         .offset = JOB(parallel),
         .def = "1",
         .min = 1,
         .max = PARALLEL_MAX},
        {.name = "window", .type = KT_WINDOW, .offset = JOB(window), .flags = KF_NULLABLE},
        {.name = "dual_write",
         .type = KT_ENUM,
         .offset = JOB(dual_write),
         .def = "off",
         .choices = dual_write_modes,
         .reload = BF_RELOAD_CONNECTION},
        {.name = "verify",
         .type = KT_ENUM,
         .offset = JOB(verify),
         .def = "false",
         .choices = booleans},
        {.name = "backup",
         .type = KT_ENUM,
         .offset = JOB(backup),
         .def = "false",
         .choices = booleans,
         .reload = BF_RELOAD_DEFINITION},
        {.name = "backup_columns",
         .type = KT_STRING_LIST,
         .offset = JOB(backup_columns),
         .count_offset = JOB(n_backup_columns),
         .flags = KF_NULLABLE,
         .reload = BF_RELOAD_DEFINITION},
        {.name = "then",
         .type = KT_STEPS,
         .offset = JOB(then),
         .count_offset = JOB(n_then),
         .flags = KF_NULLABLE | KF_NOT_DEFAULT},
        {.name = "lag",
         .type = KT_MAPPING,
         .offset = JOB(lag),
         .sub = lag_keys,
         .n_sub = BF_ARRAY_LEN(lag_keys)},
};

static const struct key_def top_keys[] = {
        {.name = "database", .type = KT_STRING, .offset = TOP(database), .flags = KF_NULLABLE},
        {.name = "control_schema",
         .type = KT_STRING,
         .offset = TOP(control_schema),
         .reload = BF_RELOAD_RESTART,
         .def = "backfill",
         .check = is_identifier,
         .expect = "an identifier of up to 63 characters a-z, 0-9 or _, not starting with a digit"},
        {.name = "max_parallel_jobs",
         .type = KT_INT,
         .offset = TOP(max_parallel_jobs),
         .def = "4",
         .min = 1,
         .max = 1000},
        {.name = "log_level",
         .type = KT_ENUM,
         .offset = TOP(log_level),
         .def = "info",
         .choices = log_levels},
        {.name = "progress_interval",
         .type = KT_DURATION,
         .offset = TOP(progress_interval_ms),
         .def = "10s",
         .min = 1},
        {.name = "shutdown_timeout",
         .type = KT_DURATION,
         .offset = TOP(shutdown_timeout_ms),
         .def = "30s"},
        {.name = "metrics_listen",
         .type = KT_STRING,
         .offset = TOP(metrics_listen),
         .reload = BF_RELOAD_RESTART,
         .flags = KF_NULLABLE,
         .check = is_host_port,
         .expect = "host:port such as 127.0.0.1:9187"},
        {.name = "include",
         .type = KT_STRING,
         .offset = TOP(include),
         .flags = KF_NULLABLE,
         NONEMPTY},
        {.name = "defaults", .type = KT_NODE},
        {.name = "jobs", .type = KT_NODE},
};

/* An included file holds a jobs: list and nothing else. */
static const struct key_def include_keys[] = {
        {.name = "jobs", .type = KT_NODE},
};

struct name_pos {
	size_t line, col; /* 1-based, of the job's name */
};

/* The state of one bf_config_load / bf_config_parse_string. */
struct loader {
	bf_config *cfg;
	bf_errors *errs;
	size_t problems;        /* every problem found, reported or muted */
	int quiet;              /* > 0: re-applying defaults, whose problems were reported once */
	bool in_defaults;       /* walking defaults:, where "name" is refused */
	struct src *main;       /* the main file: its defaults: node serves every job */
	yaml_node_t *defaults;  /* NULL when absent or not a mapping */
	bool database_given;    /* the main file has a non-null top-level database */
	struct name_pos *names; /* parallel to cfg->jobs, for "first at" */
	size_t *by_name;        /* open addressing on job names: index + 1, 0 = free */
	size_t by_name_cap;     /* a power of two, at least twice the jobs */
	const char *base_dir;   /* relative include: globs start here; NULL: the cwd */
	const struct stat *main_st; /* the main file, skipped if an include matches it */
};

/* One YAML file: its name for messages, its text and its document. */
struct src {
	const char *file;
	const char *text;
	size_t len;
	yaml_document_t doc;
	bool loaded;
	struct loader *L;
};

static void apply_mapping(struct src *s, const struct key_def *table, size_t n, void *base,
                          yaml_node_t *map, const char *path);

/* --- validators ---------------------------------------------------------------------- */

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool is_job_name(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > BF_JOB_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_lower_alnum(s[i]))
			return false;
	return true;
}

static bool is_identifier(const char *s)
{
	return is_job_name(s) && !(s[0] >= '0' && s[0] <= '9');
}

/* "host:port" with a port 1..65535; the host may be empty (every interface) or "[::1]". */
static bool is_host_port(const char *s)
{
	const char *colon = strrchr(s, ':');
	long port = 0;

	if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) > 5)
		return false;
	/* "[v6]:port": the brackets hold a host (":port" alone is every address) */
	if (s[0] == '[' && (colon - s < 3 || colon[-1] != ']'))
		return false;
	for (const char *p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		port = port * 10 + (*p - '0');
	}
	return port >= 1 && port <= 65535;
}

static bool is_nonempty(const char *s)
{
	return s[0] != '\0';
}

/* A non-negative decimal integer, digits only. */
static int parse_int(const char *s, int64_t *out)
{
	int64_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		int d = *s - '0';
		if (v > (INT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int parse_hhmm(const char *p, bool end, int *minutes)
{
	for (int i = 0; i < 5; i++) {
		if (i == 2 ? p[i] != ':' : (p[i] < '0' || p[i] > '9'))
			return -1;
	}
	int h = (p[0] - '0') * 10 + (p[1] - '0');
	int m = (p[3] - '0') * 10 + (p[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && (m != 0 || !end)))
		return -1;
	*minutes = (h * 60 + m) % (24 * 60);
	return 0;
}

/* "HH:MM-HH:MM"; the end may be 24:00 (stored as 0, midnight). */
static int parse_window(const char *text, bf_window *w)
{
	bf_window v = {.set = true};

	if (strlen(text) != 11 || text[5] != '-')
		return -1;
	if (parse_hhmm(text, false, &v.start_min) < 0 || parse_hhmm(text + 6, true, &v.end_min) < 0)
		return -1;
	memcpy(v.text, text, 12);
	*w = v;
	return 0;
}

/* --- messages ------------------------------------------------------------------------ */

/* A value as it appears in a message: quoted, escaped, at most 60 bytes of it. */
static char *quote(const char *s)
{
	bf_sbuf sb = {0};
	size_t n = 0;

	bf_sbuf_append(&sb, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++) {
		if (n >= 60 && (*p & 0xC0) != 0x80) {
			bf_sbuf_append(&sb, "...");
			break;
		}
		if (*p == '"' || *p == '\\')
			bf_sbuf_printf(&sb, "\\%c", *p);
		else if (*p == '\n')
			bf_sbuf_append(&sb, "\\n");
		else if (*p == '\t')
			bf_sbuf_append(&sb, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			bf_sbuf_printf(&sb, "\\x%02x", *p);
		else
			bf_sbuf_appendn(&sb, (const char *)p, 1);
	}
	bf_sbuf_append(&sb, "\"");
	return bf_sbuf_steal(&sb);
}

static void vreport(struct src *s, const yaml_mark_t *mark, const char *path, const char *fmt,
                    va_list ap) BF_PRINTF(4, 0);

static void vreport(struct src *s, const yaml_mark_t *mark, const char *path, const char *fmt,
                    va_list ap)
{
	bf_sbuf sb = {0};

	s->L->problems++;
	if (s->L->quiet)
		return;
	bf_sbuf_append(&sb, s->file);
	if (mark)
		bf_sbuf_printf(&sb, ":%zu:%zu", mark->line + 1, mark->column + 1);
	bf_sbuf_append(&sb, ": ");
	if (path && *path)
		bf_sbuf_printf(&sb, "%s: ", path);
	bf_sbuf_vprintf(&sb, fmt, ap);
	bf_errors_add(s->L->errs, "%s", sb.data);
	bf_sbuf_free(&sb);
}

/* Reports "FILE:LINE:COL: PATH: message" at a mark (NULL: "FILE: PATH: message"). */
static void BF_PRINTF(4, 5)
        report_at(struct src *s, const yaml_mark_t *mark, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(s, mark, path, fmt, ap);
	va_end(ap);
}

/* Reports at the start of a node (NULL: no position). */
static void BF_PRINTF(4, 5)
        report(struct src *s, const yaml_node_t *node, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(s, node ? &node->start_mark : NULL, path, fmt, ap);
	va_end(ap);
}

static char *join_path(const char *path, const char *key)
{
	return path && *path ? bf_xasprintf("%s.%s", path, key) : bf_xstrdup(key);
}

/* What a key of this row wants, as in "expected <this>, got ...". */
static char *expected_phrase(const struct key_def *d)
{
	bf_sbuf sb = {0};

	switch (d->type) {
	case KT_STRING:
		bf_sbuf_append(&sb, d->expect ? d->expect : "a string");
		break;
	case KT_INT:
		bf_sbuf_append(&sb, d->min > 0 ? "a positive integer" : "a non-negative integer");
		if (d->flags & KF_AUTO)
			bf_sbuf_append(&sb, ", or auto");
		break;
	case KT_DURATION:
		bf_sbuf_append(&sb, d->flags & KF_OFF ? "a duration such as 250ms, 5s, 2min, or off"
		                                      : "a duration such as 250ms, 5s, 2min");
		break;
	case KT_SIZE:
		bf_sbuf_append(&sb, "a size such as 512kB, 64MB, 2GB");
		break;
	case KT_PERCENT:
		bf_sbuf_append(&sb, "a percentage such as 50%");
		break;
	case KT_NUMBER:
		bf_sbuf_append(&sb, "a number such as 100 or 0.25");
		break;
	case KT_ENUM:
	case KT_ENUM_STRING:
		bf_sbuf_append(&sb, "one of ");
		for (const struct choice *c = d->choices; c->name; c++) {
			if (c->alias)
				continue;
			bf_sbuf_printf(&sb, "%s%s", c == d->choices ? "" : ", ", c->name);
		}
		break;
	case KT_WINDOW:
		bf_sbuf_append(&sb, "a window such as 01:00-06:00");
		break;
	case KT_KEY:
		bf_sbuf_append(&sb, "a column name or a list of column names");
		break;
	case KT_STRING_LIST:
		bf_sbuf_append(&sb, "a list of strings");
		break;
	case KT_STEPS:
		bf_sbuf_append(&sb, "a list of steps, each a SQL statement or one of sql:, "
		                    "not_null:, check:, index:");
		break;
	case KT_MAPPING:
	case KT_NODE:
		bf_sbuf_append(&sb, "a mapping");
		break;
	}
	return bf_sbuf_steal(&sb);
}

static const char *kind_name(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return "a scalar";
	}
}

/* --- YAML nodes ---------------------------------------------------------------------- */

static yaml_node_t *node_at(struct src *s, int id)
{
	return yaml_document_get_node(&s->doc, id);
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* An unquoted empty value, ~ or null. */
static bool is_null(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = scalar(n);
	return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	       strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* The value of `key` in a mapping node, or NULL. */
static yaml_node_t *lookup(struct src *s, yaml_node_t *map, const char *key)
{
	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node_at(s, p->key);
		if (k->type == YAML_SCALAR_NODE && strcmp(scalar(k), key) == 0)
			return node_at(s, p->value);
	}
	return NULL;
}

static bool is_env_name(const char *name, size_t n)
{
	if (n == 0 || (name[0] >= '0' && name[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

/* The text of a scalar with ${NAME} replaced by the environment; NULL after reporting why. */
static char *expand(struct src *s, const yaml_node_t *node, const char *path)
{
	const char *v = scalar(node);
	bf_sbuf sb = {0};
	bool ok = true;

	if (strlen(v) != node->data.scalar.length) {
		report(s, node, path, "a NUL character is not allowed");
		return NULL;
	}
	bf_sbuf_append(&sb, "");
	for (const char *p = v; *p;) {
		if (!(p[0] == '$' && p[1] == '{')) {
			bf_sbuf_appendn(&sb, p++, 1);
			continue;
		}
		const char *name = p + 2;
		const char *close = strchr(name, '}');
		if (close == NULL) {
			report(s, node, path, "unterminated \"${\": write ${NAME}");
			ok = false;
			break;
		}
		size_t n = (size_t)(close - name);
		char *var = bf_xstrndup(name, n);
		if (!is_env_name(name, n)) {
			char *q = quote(var);
			report(s, node, path, "invalid environment variable name %s", q);
			free(q);
			ok = false;
		} else {
			const char *val = getenv(var);
			if (val == NULL) {
				report(s, node, path, "environment variable \"%s\" is not set",
				       var);
				ok = false;
			} else {
				bf_sbuf_append(&sb, val);
			}
		}
		free(var);
		p = close + 1;
	}
	if (!ok) {
		bf_sbuf_free(&sb);
		return NULL;
	}
	return bf_sbuf_steal(&sb);
}

/* --- storing values ------------------------------------------------------------------ */

static void set_list(const struct key_def *d, void *base, char **v, size_t n)
{
	char ***field = (char ***)((char *)base + d->offset);
	size_t *count = (size_t *)((char *)base + d->count_offset);

	bf_strv_free(*field, *count);
	*field = v;
	*count = n;
}

static void free_steps(bf_step_config *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].text);
	free(v);
}

static void set_steps(const struct key_def *d, void *base, bf_step_config *v, size_t n)
{
	bf_step_config **field = (bf_step_config **)(void *)((char *)base + d->offset);
	size_t *count = (size_t *)(void *)((char *)base + d->count_offset);

	free_steps(*field, *count);
	*field = v;
	*count = n;
}

/* Puts a key back to "not set". */
static void clear_value(const struct key_def *d, void *base)
{
	char *field = (char *)base + d->offset;

	switch (d->type) {
	case KT_STRING:
	case KT_ENUM_STRING:
		free(*(char **)field);
		*(char **)field = NULL;
		break;
	case KT_STRING_LIST:
	case KT_KEY:
		set_list(d, base, NULL, 0);
		break;
	case KT_WINDOW:
		memset(field, 0, sizeof(bf_window));
		break;
	case KT_STEPS:
		set_steps(d, base, NULL, 0);
		break;
	default:
		break;
	}
}

static const struct choice *find_choice(const struct choice *choices, const char *text)
{
	const struct choice *c;

	for (c = choices; c->name; c++)
		if (strcasecmp(c->name, text) == 0)
			break;
	if (c->name == NULL)
		return NULL;
	/* the canonical name: the first row with that value */
	for (const struct choice *first = choices; first->name; first++)
		if (first->value == c->value && !first->alias)
			return first;
	return c;
}

/* Stores `text` as the value of row d. Returns NULL, or what was expected (heap) for the
 * message "expected <that>, got <text>". */
static char *store_scalar(const struct key_def *d, void *base, const char *text)
{
	char *field = (char *)base + d->offset;
	int64_t max = d->max ? d->max : INT64_MAX;
	int64_t v = 0;

	switch (d->type) {
	case KT_STRING: {
		char *why = d->explain ? d->explain(text) : NULL;

		if (why)
			return why;
		if (d->check && !d->check(text))
			return expected_phrase(d);
		free(*(char **)field);
		*(char **)field = bf_xstrdup(text);
		return NULL;
	}
	case KT_INT:
		if ((d->flags & KF_AUTO) && strcmp(text, "auto") == 0) {
			*(int64_t *)field = 0;
			return NULL;
		}
		if (parse_int(text, &v) < 0 || v < d->min)
			return expected_phrase(d);
		if (v > max)
			return bf_xasprintf(
			        "%s no larger than %" PRId64,
			        d->min > 0 ? "a positive integer" : "a non-negative integer", max);
		*(int64_t *)field = v;
		return NULL;
	case KT_DURATION:
		if ((d->flags & KF_OFF) && strcmp(text, "off") == 0) {
			*(int64_t *)field = 0;
			return NULL;
		}
		/* every duration is bounded, so no sum of them (deadlines, backoffs, sleeps
		 * added to a clock) can overflow: PostgreSQL's own limit for its timeouts */
		if (d->max == 0)
			max = PG_INT_MAX;
		if (bf_units_parse_duration(text, &v) < 0)
			return expected_phrase(d);
		if (v < d->min)
			return bf_xstrdup("a duration greater than 0");
		if (v > max)
			return bf_xasprintf("a duration of at most %" PRId64 "ms", max);
		*(int64_t *)field = v;
		return NULL;
	case KT_SIZE:
		if (bf_units_parse_size(text, &v) < 0)
			return expected_phrase(d);
		*(int64_t *)field = v;
		return NULL;
	case KT_NUMBER: {
		char *end;
		double f = strtod(text, &end);

		if (end == text || *end != '\0' || !isfinite(f))
			return expected_phrase(d);
		memcpy(field, &f, sizeof(f));
		return NULL;
	}
	case KT_PERCENT: {
		double f;
		if (bf_units_parse_percent(text, &f) < 0)
			return expected_phrase(d);
		if (d->min > 0 && f <= 0.0)
			return bf_xstrdup("a percentage above 0%");
		memcpy(field, &f, sizeof(f)); /* field is a byte offset into the struct */
		return NULL;
	}
	case KT_ENUM:
	case KT_ENUM_STRING: {
		const struct choice *c = find_choice(d->choices, text);
		if (c == NULL)
			return expected_phrase(d);
		if (d->type == KT_ENUM) {
			*(int *)field = c->value;
		} else {
			free(*(char **)field);
			*(char **)field = bf_xstrdup(c->name);
		}
		return NULL;
	}
	case KT_WINDOW:
		if (parse_window(text, (bf_window *)field) < 0)
			return expected_phrase(d);
		return NULL;
	case KT_KEY: {
		if (d->check && !d->check(text))
			return expected_phrase(d);
		char **one = bf_xcalloc(1, sizeof(*one));
		one[0] = bf_xstrdup(text);
		set_list(d, base, one, 1);
		return NULL;
	}
	case KT_STRING_LIST:
	case KT_STEPS:
	case KT_MAPPING:
	case KT_NODE:
		break;
	}
	return expected_phrase(d);
}

/* Sets every key of a table to its built-in default. */
static void init_defaults(const struct key_def *table, size_t n, void *base)
{
	for (size_t i = 0; i < n; i++) {
		const struct key_def *d = &table[i];
		if (d->type == KT_MAPPING) {
			init_defaults(d->sub, d->n_sub, (char *)base + d->offset);
		} else if (d->def) {
			char *exp = store_scalar(d, base, d->def);
			if (exp) {
				/* a wrong row in a table above: a bug, not a mistake in a file */
				fprintf(stderr, "config.c: bad built-in default %s for %s\n",
				        d->def, d->name);
				abort();
			}
		}
	}
}

/* Frees what a table's keys own in base (not base itself). */
static void free_values(const struct key_def *table, size_t n, void *base)
{
	for (size_t i = 0; i < n; i++) {
		const struct key_def *d = &table[i];
		if (d->type == KT_MAPPING)
			free_values(d->sub, d->n_sub, (char *)base + d->offset);
		else
			clear_value(d, base);
	}
}

static void apply_list(struct src *s, const struct key_def *d, void *base, yaml_node_t *node,
                       const char *path)
{
	if (node->type == YAML_SCALAR_NODE && (d->flags & KF_NULLABLE) && is_null(node)) {
		clear_value(d, base);
		return;
	}
	if (node->type == YAML_SCALAR_NODE && d->type == KT_KEY) {
		char *text = expand(s, node, path);
		if (text == NULL)
			return;
		char *exp = store_scalar(d, base, text);
		if (exp) {
			char *q = quote(text);
			report(s, node, path, "expected %s, got %s", exp, q);
			free(q);
			free(exp);
		}
		free(text);
		return;
	}
	if (node->type != YAML_SEQUENCE_NODE) {
		char *exp = expected_phrase(d);
		char *got = node->type == YAML_SCALAR_NODE ? quote(scalar(node))
		                                           : bf_xstrdup(kind_name(node));
		report(s, node, path, "expected %s, got %s", exp, got);
		free(got);
		free(exp);
		return;
	}

	yaml_node_item_t *start = node->data.sequence.items.start;
	size_t n_items = (size_t)(node->data.sequence.items.top - start);
	char **v = bf_xcalloc(n_items, sizeof(*v));
	size_t n = 0;
	bool failed = false;

	for (size_t i = 0; i < n_items; i++) {
		yaml_node_t *item = node_at(s, start[i]);
		char *ipath = bf_xasprintf("%s[%zu]", path, i);
		char *text = NULL;
		if (item->type != YAML_SCALAR_NODE) {
			report(s, item, ipath, "expected a string, got %s", kind_name(item));
			failed = true;
		} else if (is_null(item)) {
			report(s, item, ipath, "expected a non-empty string, got null");
			failed = true;
		} else if ((text = expand(s, item, ipath)) == NULL) {
			failed = true;
		} else if (text[0] == '\0') {
			report(s, item, ipath, "expected a non-empty string, got \"\"");
			failed = true;
		} else {
			for (size_t j = 0; j < n && d->type == KT_KEY; j++) {
				if (strcmp(v[j], text) == 0) {
					report(s, item, ipath, "duplicate key column \"%s\"", text);
					failed = true;
				}
			}
		}
		if (text)
			v[n++] = text;
		free(ipath);
	}
	if (!failed && n == 0 && d->type == KT_KEY) {
		report(s, node, path, "expected at least one key column");
		failed = true;
	}
	if (failed) {
		bf_strv_free(v, n);
		return;
	}
	set_list(d, base, v, n);
}

/* One step of then: a statement, or a mapping of one form to its text. */
static bool read_step(struct src *s, yaml_node_t *item, const char *ipath, bf_step_config *out)
{
	static const struct {
		const char *name;
		bf_step_kind kind;
	} forms[] = {{"sql", BF_STEP_SQL},
	             {"not_null", BF_STEP_NOT_NULL},
	             {"check", BF_STEP_CHECK},
	             {"index", BF_STEP_INDEX}};
	yaml_node_t *value = item;
	char *problem;

	out->kind = BF_STEP_SQL;
	if (item->type == YAML_MAPPING_NODE) {
		yaml_node_pair_t *pair = item->data.mapping.pairs.start;
		yaml_node_t *k;
		size_t f = 0;

		if (item->data.mapping.pairs.top - pair != 1) {
			report(s, item, ipath, "expected one of sql:, not_null:, check:, index:");
			return false;
		}
		k = node_at(s, pair->key);
		while (f < BF_ARRAY_LEN(forms) &&
		       (k->type != YAML_SCALAR_NODE || strcmp(scalar(k), forms[f].name) != 0))
			f++;
		if (f == BF_ARRAY_LEN(forms)) {
			report(s, k, ipath,
			       "unknown step form (expected sql:, not_null:, check:, index:)");
			return false;
		}
		out->kind = forms[f].kind;
		value = node_at(s, pair->value);
	}
	if (value->type != YAML_SCALAR_NODE || is_null(value)) {
		report(s, value, ipath,
		       "expected a SQL statement or one of sql:, not_null:, check:, "
		       "index:, got %s",
		       value->type == YAML_SCALAR_NODE ? "null" : kind_name(value));
		return false;
	}
	if ((out->text = expand(s, value, ipath)) == NULL)
		return false;
	problem = bf_steps_lint(out);
	if (problem) {
		report(s, value, ipath, "%s", problem);
		free(problem);
		free(out->text);
		return false;
	}
	return true;
}

static void apply_steps(struct src *s, const struct key_def *d, void *base, yaml_node_t *node,
                        const char *path)
{
	yaml_node_item_t *start;
	bf_step_config *v;
	size_t n = 0, n_items;
	bool failed = false;

	if (node->type == YAML_SCALAR_NODE && is_null(node)) {
		clear_value(d, base);
		return;
	}
	if (node->type != YAML_SEQUENCE_NODE) {
		char *exp = expected_phrase(d);

		report(s, node, path, "expected %s, got %s", exp, kind_name(node));
		free(exp);
		return;
	}
	start = node->data.sequence.items.start;
	n_items = (size_t)(node->data.sequence.items.top - start);
	v = bf_xcalloc(n_items ? n_items : 1, sizeof(*v));
	for (size_t i = 0; i < n_items; i++) {
		char *ipath = bf_xasprintf("%s[%zu]", path, i);

		if (read_step(s, node_at(s, start[i]), ipath, &v[n]))
			n++;
		else
			failed = true;
		free(ipath);
	}
	if (failed) {
		free_steps(v, n);
		return;
	}
	set_steps(d, base, v, n);
}

static void apply_value(struct src *s, const struct key_def *d, void *base, yaml_node_t *node,
                        const char *path)
{
	switch (d->type) {
	case KT_NODE:
		return;
	case KT_MAPPING:
		if (is_null(node))
			return;
		if (node->type != YAML_MAPPING_NODE) {
			report(s, node, path, "expected a mapping");
			return;
		}
		apply_mapping(s, d->sub, d->n_sub, (char *)base + d->offset, node, path);
		return;
	case KT_STEPS:
		apply_steps(s, d, base, node, path);
		return;
	case KT_STRING_LIST:
	case KT_KEY:
		apply_list(s, d, base, node, path);
		return;
	default:
		break;
	}

	if (node->type != YAML_SCALAR_NODE) {
		char *exp = expected_phrase(d);
		report(s, node, path, "expected %s, got %s", exp, kind_name(node));
		free(exp);
		return;
	}
	if (is_null(node)) {
		/* "table: ~" is no table, not a table named "~" */
		if (d->flags & KF_NULLABLE) {
			clear_value(d, base);
		} else {
			char *exp = expected_phrase(d);
			report(s, node, path, "expected %s, got null", exp);
			free(exp);
		}
		return;
	}
	char *text = expand(s, node, path);
	if (text == NULL)
		return;
	char *exp = store_scalar(d, base, text);
	if (exp) {
		char *q = quote(text);
		report(s, node, path, "expected %s, got %s", exp, q);
		free(q);
		free(exp);
	}
	free(text);
}

/* --- unknown keys -------------------------------------------------------------------- */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[65];

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static const struct key_def *find_key(const struct key_def *table, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

/* The row whose name is within two edits of `name` (and closer than its length), or NULL. */
static const struct key_def *closest_key(const struct key_def *table, size_t n, const char *name)
{
	const struct key_def *best = NULL;
	size_t best_d = 3;

	for (size_t i = 0; i < n; i++) {
		size_t dist = edit_distance(name, table[i].name);
		if (dist < best_d && dist < strlen(name)) {
			best = &table[i];
			best_d = dist;
		}
	}
	return best;
}

static void report_unknown(struct src *s, const struct key_def *table, size_t n,
                           const yaml_node_t *key, const char *path, const char *name)
{
	const struct key_def *near = closest_key(table, n, name);

	if (near)
		report(s, key, path, "unknown key (did you mean \"%s\"?)", near->name);
	else if (table == job_keys && (near = closest_key(lag_keys, BF_ARRAY_LEN(lag_keys), name)))
		report(s, key, path, "unknown key (did you mean \"lag.%s\"?)", near->name);
	else if (table == top_keys && find_key(job_keys, BF_ARRAY_LEN(job_keys), name))
		report(s, key, path, "unknown key (job keys go in a job or under \"defaults:\")");
	else if (table == include_keys && find_key(top_keys, BF_ARRAY_LEN(top_keys), name))
		report(s, key, path, "not allowed in an included file (only \"jobs:\" is)");
	else
		report(s, key, path, "unknown key");
}

/* Applies every pair of a mapping node to base through a key table. */
static void apply_mapping(struct src *s, const struct key_def *table, size_t n, void *base,
                          yaml_node_t *map, const char *path)
{
	yaml_node_pair_t *start = map->data.mapping.pairs.start;

	for (yaml_node_pair_t *p = start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node_at(s, p->key);
		yaml_node_t *v = node_at(s, p->value);

		if (k->type != YAML_SCALAR_NODE) {
			report(s, k, path, "expected a key name, got %s", kind_name(k));
			continue;
		}
		const char *name = scalar(k);
		char *kpath = join_path(path, name);
		const yaml_node_t *first = NULL;
		for (yaml_node_pair_t *q = start; q < p && first == NULL; q++) {
			yaml_node_t *qk = node_at(s, q->key);
			if (qk->type == YAML_SCALAR_NODE && strcmp(scalar(qk), name) == 0)
				first = qk;
		}
		const struct key_def *d = find_key(table, n, name);
		if (first)
			report(s, k, kpath, "duplicate key (first at line %zu)",
			       first->start_mark.line + 1);
		else if (d == NULL)
			report_unknown(s, table, n, k, kpath, name);
		else if ((d->flags & KF_NOT_DEFAULT) && s->L->in_defaults)
			report(s, k, kpath, "not allowed in defaults: (each job has its own)");
		else
			apply_value(s, d, base, v, kpath);
		free(kpath);
	}
}

/* --- files, jobs, includes ------------------------------------------------------------ */

static void report_yaml_error(struct src *s, const yaml_parser_t *p)
{
	yaml_mark_t mark = p->problem_mark;
	const char *problem = p->problem ? p->problem : "cannot parse";

	if (p->error == YAML_MEMORY_ERROR)
		problem = "out of memory";
	if (p->error == YAML_READER_ERROR) {
		/* the reader gives a byte offset only */
		mark.line = mark.column = 0;
		for (size_t i = 0; i < p->problem_offset && i < s->len; i++) {
			if (s->text[i] == '\n') {
				mark.line++;
				mark.column = 0;
			} else {
				mark.column++;
			}
		}
	}
	if (p->context)
		report_at(s, &mark, NULL, "YAML syntax error: %s (%s started at %zu:%zu)", problem,
		          p->context, p->context_mark.line + 1, p->context_mark.column + 1);
	else
		report_at(s, &mark, NULL, "YAML syntax error: %s", problem);
}

/* Loads s->text as one YAML document. Returns 0, or -1 after reporting. */
static int parse_document(struct src *s)
{
	yaml_parser_t p;
	yaml_document_t extra;
	int rc = 0;

	if (!yaml_parser_initialize(&p)) {
		report(s, NULL, NULL, "cannot initialize the YAML parser");
		return -1;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)s->text, s->len);
	if (!yaml_parser_load(&p, &s->doc)) {
		report_yaml_error(s, &p);
		rc = -1;
		goto out;
	}
	s->loaded = true;
	if (!yaml_parser_load(&p, &extra)) {
		report_yaml_error(s, &p);
		rc = -1;
		goto out;
	}
	if (yaml_document_get_root_node(&extra))
		report_at(s, &extra.start_mark, NULL, "only one YAML document is allowed per file");
	yaml_document_delete(&extra);
out:
	yaml_parser_delete(&p);
	return rc;
}

static int read_file(const char *path, char **text, size_t *len)
{
	FILE *f = fopen(path, "rb");
	bf_sbuf sb = {0};
	char buf[8192];
	size_t n;

	if (f == NULL)
		return -1;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		bf_sbuf_appendn(&sb, buf, n);
	if (ferror(f)) {
		int e = errno ? errno : EIO;
		fclose(f);
		bf_sbuf_free(&sb);
		errno = e;
		return -1;
	}
	fclose(f);
	*len = sb.len;
	*text = bf_sbuf_steal(&sb);
	return 0;
}

/* Present with a non-null value, in the job or in defaults:. */
static bool job_gives(struct src *s, yaml_node_t *job, const char *key)
{
	struct loader *L = s->L;
	yaml_node_t *v = lookup(s, job, key);

	if (v == NULL && L->defaults)
		v = lookup(L->main, L->defaults, key);
	return v != NULL && !is_null(v);
}

static bool job_has(struct src *s, yaml_node_t *job, const char *key)
{
	return lookup(s, job, key) != NULL ||
	       (s->L->defaults && lookup(s->L->main, s->L->defaults, key) != NULL);
}

static void check_batch_sizes(struct src *s, yaml_node_t *node, const char *path,
                              const bf_job_config *j)
{
	if (j->min_batch_size > j->max_batch_size)
		report(s, node, path, "min_batch_size %" PRId64 " is above max_batch_size %" PRId64,
		       j->min_batch_size, j->max_batch_size);
	else if (j->batch_size < j->min_batch_size)
		report(s, node, path, "batch_size %" PRId64 " is below min_batch_size %" PRId64,
		       j->batch_size, j->min_batch_size);
	else if (j->batch_size > j->max_batch_size)
		report(s, node, path, "batch_size %" PRId64 " is above max_batch_size %" PRId64,
		       j->batch_size, j->max_batch_size);
}

/* Keys that only make sense together, checked once every key loaded. */
static void check_pairs(struct src *s, yaml_node_t *node, const char *path, const bf_job_config *j)
{
	check_batch_sizes(s, node, path, j);
	if (j->throttle_query && !job_gives(s, node, "throttle_above"))
		report(s, node, path,
		       "throttle_query needs throttle_above (the value that throttles)");
	else if (!j->throttle_query && job_gives(s, node, "throttle_above"))
		report(s, node, path, "throttle_above without throttle_query does nothing");
	if (j->n_backup_columns > 0 && !j->backup)
		report(s, node, path, "backup_columns without backup: true does nothing");
	if (j->backup && j->n_backup_columns == 0 && j->set) {
		size_t n;
		char **cols = bf_sqltext_set_columns(j->set, &n);

		if (cols == NULL)
			report(s, node, path,
			       "backup: true cannot tell which columns set assigns: list them in "
			       "backup_columns");
		bf_sqltext_free(cols, n);
	}
	if ((j->dual_write || j->verify) && j->set) {
		size_t n;
		char *why = NULL;
		bf_set_item *items = bf_sqltext_set_items(j->set, &n, &why);

		if (items == NULL)
			report(s, node, path, "%s needs %s",
			       j->dual_write ? "dual_write: trigger" : "verify: true", why);
		bf_sqltext_items_free(items, n);
		free(why);
	}
}

static size_t name_hash(const char *name)
{
	size_t h = 5381;

	for (const char *p = name; *p; p++)
		h = h * 33 + (unsigned char)*p;
	return h;
}

/* The index of the job already named `name`, or SIZE_MAX after recording it as job `index`.
 * A hash index: a file of many jobs is not compared pair by pair. */
static size_t name_index(struct loader *L, const char *name, size_t index)
{
	size_t mask, at;

	if (2 * (index + 1) > L->by_name_cap) {
		size_t cap = L->by_name_cap ? 2 * L->by_name_cap : 64;
		size_t *slots = bf_xcalloc(cap, sizeof(*slots));

		for (size_t k = 0; k < L->by_name_cap; k++) {
			size_t v = L->by_name[k];

			if (v == 0)
				continue;
			for (at = name_hash(L->cfg->jobs[v - 1].name) & (cap - 1); slots[at];
			     at = (at + 1) & (cap - 1))
				;
			slots[at] = v;
		}
		free(L->by_name);
		L->by_name = slots;
		L->by_name_cap = cap;
	}
	mask = L->by_name_cap - 1;
	for (at = name_hash(name) & mask; L->by_name[at]; at = (at + 1) & mask)
		if (strcmp(L->cfg->jobs[L->by_name[at] - 1].name, name) == 0)
			return L->by_name[at] - 1;
	L->by_name[at] = index + 1;
	return SIZE_MAX;
}

static void load_job(struct src *s, yaml_node_t *node, size_t index)
{
	struct loader *L = s->L;
	bf_config *cfg = L->cfg;
	char *path = bf_xasprintf("jobs[%zu]", index);
	bf_job_config job = {0};

	if (node->type != YAML_MAPPING_NODE) {
		report(s, node, path, "expected a mapping");
		free(path);
		return;
	}
	size_t before = L->problems;
	init_defaults(job_keys, BF_ARRAY_LEN(job_keys), &job);
	if (L->defaults) {
		L->quiet++;
		apply_mapping(L->main, job_keys, BF_ARRAY_LEN(job_keys), &job, L->defaults,
		              "defaults");
		L->quiet--;
	}
	apply_mapping(s, job_keys, BF_ARRAY_LEN(job_keys), &job, node, path);
	job.file = bf_xstrdup(s->file);
	job.line = (int)node->start_mark.line + 1;

	for (size_t i = 0; i < BF_ARRAY_LEN(job_keys); i++) {
		if ((job_keys[i].flags & KF_REQUIRED) && !job_has(s, node, job_keys[i].name))
			report(s, node, path, "missing required key \"%s\"", job_keys[i].name);
	}
	if (job.database == NULL) {
		if (cfg->database)
			job.database = bf_xstrdup(cfg->database);
		else if (!L->database_given && !job_gives(s, node, "database"))
			report(s, node, path,
			       "no database: set \"database\" in the job, in defaults: or at the "
			       "top level");
	}

	yaml_node_t *name_node = lookup(s, node, "name");
	struct name_pos pos = {job.line, node->start_mark.column + 1};
	if (name_node) {
		pos.line = name_node->start_mark.line + 1;
		pos.col = name_node->start_mark.column + 1;
	}
	size_t first = job.name ? name_index(L, job.name, cfg->n_jobs) : SIZE_MAX;
	if (first != SIZE_MAX) {
		char *npath = join_path(path, "name");
		report(s, name_node, npath, "duplicate job name \"%s\" (first at %s:%zu:%zu)",
		       job.name, cfg->jobs[first].file, L->names[first].line, L->names[first].col);
		free(npath);
	}
	if (L->problems == before)
		check_pairs(s, node, path, &job);

	cfg->jobs = bf_xrealloc(cfg->jobs, (cfg->n_jobs + 1) * sizeof(*cfg->jobs));
	L->names = bf_xrealloc(L->names, (cfg->n_jobs + 1) * sizeof(*L->names));
	cfg->jobs[cfg->n_jobs] = job;
	L->names[cfg->n_jobs] = pos;
	cfg->n_jobs++;
	free(path);
}

static void load_jobs(struct src *s, yaml_node_t *jobs)
{
	if (jobs == NULL || is_null(jobs))
		return;
	if (jobs->type != YAML_SEQUENCE_NODE) {
		report(s, jobs, "jobs", "expected a list of jobs");
		return;
	}
	yaml_node_item_t *start = jobs->data.sequence.items.start;
	size_t n = (size_t)(jobs->data.sequence.items.top - start);
	for (size_t i = 0; i < n; i++)
		load_job(s, node_at(s, start[i]), i);
}

static void load_include_file(struct loader *L, const char *path)
{
	struct src inc = {.file = path, .L = L};
	char *text = NULL;

	if (read_file(path, &text, &inc.len) < 0) {
		report(&inc, NULL, NULL, "cannot read: %s", strerror(errno));
		return;
	}
	inc.text = text;
	if (parse_document(&inc) == 0) {
		yaml_node_t *root = yaml_document_get_root_node(&inc.doc);
		if (root == NULL) {
			report(&inc, NULL, NULL, "missing required key \"jobs\"");
		} else if (root->type != YAML_MAPPING_NODE) {
			report(&inc, root, NULL, "expected a mapping with a \"jobs:\" list");
		} else {
			apply_mapping(&inc, include_keys, BF_ARRAY_LEN(include_keys), NULL, root,
			              NULL);
			yaml_node_t *jobs = lookup(&inc, root, "jobs");
			if (jobs == NULL)
				report(&inc, root, NULL, "missing required key \"jobs\"");
			else
				load_jobs(&inc, jobs);
		}
	}
	if (inc.loaded)
		yaml_document_delete(&inc.doc);
	free(text);
}

/* A directory name with glob's special characters escaped. */
static void append_glob_escaped(bf_sbuf *sb, const char *s)
{
	for (; *s; s++) {
		if (strchr("*?[]\\", *s))
			bf_sbuf_append(sb, "\\");
		bf_sbuf_appendn(sb, s, 1);
	}
}

static void load_includes(struct src *s, yaml_node_t *node)
{
	struct loader *L = s->L;
	const char *pattern = L->cfg->include;
	bf_sbuf full = {0};
	glob_t g;

	if (pattern[0] != '/' && L->base_dir) {
		append_glob_escaped(&full, L->base_dir);
		if (full.len == 0 || full.data[full.len - 1] != '/')
			bf_sbuf_append(&full, "/");
	}
	bf_sbuf_append(&full, pattern);

	int rc = glob(full.data, 0, NULL, &g);
	if (rc == GLOB_NOMATCH && strpbrk(pattern, "*?[") == NULL) {
		/* an empty jobs.d/ is fine; a named file that is not there is a typo */
		char *q = quote(full.data);
		report(s, node, "include", "cannot read %s: no such file", q);
		free(q);
	} else if (rc != 0 && rc != GLOB_NOMATCH) {
		char *q = quote(full.data);
		report(s, node, "include", "cannot expand %s: %s", q,
		       rc == GLOB_ABORTED ? "a directory cannot be read" : "out of memory");
		free(q);
	}
	for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++) {
		struct stat st;
		const char *path = g.gl_pathv[i];
		if (L->main_st && stat(path, &st) == 0 && st.st_dev == L->main_st->st_dev &&
		    st.st_ino == L->main_st->st_ino)
			continue;
		load_include_file(L, path);
	}
	globfree(&g);
	bf_sbuf_free(&full);
}

static void load_main(struct src *s, yaml_node_t *root)
{
	struct loader *L = s->L;

	apply_mapping(s, top_keys, BF_ARRAY_LEN(top_keys), L->cfg, root, NULL);
	yaml_node_t *db = lookup(s, root, "database");
	L->database_given = db && !is_null(db);
	L->main = s;

	yaml_node_t *defaults = lookup(s, root, "defaults");
	if (defaults && !is_null(defaults)) {
		if (defaults->type != YAML_MAPPING_NODE) {
			report(s, defaults, "defaults", "expected a mapping");
		} else {
			/* walked once here, with messages; muted when applied to each job */
			bf_job_config scratch = {0};
			init_defaults(job_keys, BF_ARRAY_LEN(job_keys), &scratch);
			L->in_defaults = true;
			apply_mapping(s, job_keys, BF_ARRAY_LEN(job_keys), &scratch, defaults,
			              "defaults");
			L->in_defaults = false;
			free_values(job_keys, BF_ARRAY_LEN(job_keys), &scratch);
			L->defaults = defaults;
		}
	}
	load_jobs(s, lookup(s, root, "jobs"));
	if (L->cfg->include)
		load_includes(s, lookup(s, root, "include"));
}

/* One column a job's set assigns, for finding two jobs that write the same one. */
struct assigned {
	const bf_job_config *job;
	char *col;
};

static int cmp_assigned(const void *pa, const void *pb)
{
	const struct assigned *a = pa, *b = pb;
	int c = strcmp(a->job->database ? a->job->database : "",
	               b->job->database ? b->job->database : "");

	if (c == 0)
		c = strcasecmp(a->job->table, b->job->table);
	if (c == 0)
		c = strcmp(a->col, b->col);
	if (c == 0)
		c = a->job < b->job ? -1 : a->job > b->job;
	return c;
}

/* Two jobs on one table (as written, in one database) whose set assign the same column would
 * overwrite each other's values, in whichever order their batches come: refused, each pair
 * once. Sorted, so a file of many jobs is not compared pair by pair. */
static void check_shared_columns(struct loader *L)
{
	const bf_config *cfg = L->cfg;
	struct assigned *a = NULL;
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_jobs; i++) {
		size_t nc = 0;
		char **cols = bf_sqltext_set_columns(cfg->jobs[i].set, &nc);

		a = bf_xrealloc(a, (n + nc + 1) * sizeof(*a));
		for (size_t k = 0; k < nc; k++)
			a[n++] = (struct assigned){.job = &cfg->jobs[i], .col = cols[k]};
		free(cols);
	}
	if (n > 1)
		qsort(a, n, sizeof(*a), cmp_assigned);
	for (size_t i = 1; i < n; i++) {
		const struct assigned *p = &a[i - 1], *q = &a[i];

		if (p->job == q->job || strcmp(p->col, q->col) != 0 ||
		    strcasecmp(p->job->table, q->job->table) != 0 ||
		    !bf_streq_opt(p->job->database, q->job->database))
			continue;
		L->problems++;
		bf_errors_add(
		        L->errs,
		        "%s:%d: jobs.%s: set assigns column \"%s\" of %s, which job %s (%s:%d) "
		        "sets too: the two jobs would overwrite each other",
		        q->job->file, q->job->line, q->job->name, q->col, q->job->table,
		        p->job->name, p->job->file, p->job->line);
	}
	for (size_t i = 0; i < n; i++)
		free(a[i].col);
	free(a);
}

static int load_text(const char *name, const char *text, size_t len, const char *base_dir,
                     const struct stat *main_st, bf_config **out, bf_errors *errs)
{
	bf_config *cfg = bf_xcalloc(1, sizeof(*cfg));
	struct loader L = {.cfg = cfg, .errs = errs, .base_dir = base_dir, .main_st = main_st};
	struct src top = {.file = name, .text = text, .len = len, .L = &L};
	int rc = -1;

	cfg->file = bf_xstrdup(name);
	init_defaults(top_keys, BF_ARRAY_LEN(top_keys), cfg);
	if (parse_document(&top) == 0) {
		yaml_node_t *root = yaml_document_get_root_node(&top.doc);
		if (root && root->type != YAML_MAPPING_NODE)
			report(&top, root, NULL, "expected a mapping");
		else if (root)
			load_main(&top, root);
	}
	if (L.problems == 0)
		check_shared_columns(&L);
	if (L.problems == 0) {
		*out = cfg;
		cfg = NULL;
		rc = 0;
	}
	if (top.loaded)
		yaml_document_delete(&top.doc);
	free(L.names);
	free(L.by_name);
	bf_config_free(cfg);
	return rc;
}

/* --- public -------------------------------------------------------------------------- */

int bf_config_parse_string(const char *name, const char *text, bf_config **out, bf_errors *errs)
{
	return load_text(name, text, strlen(text), NULL, NULL, out, errs);
}

int bf_config_load(const char *path, bf_config **out, bf_errors *errs)
{
	char *text = NULL;
	char *dir = NULL;
	size_t len = 0;
	struct stat st;

	if (read_file(path, &text, &len) < 0) {
		bf_errors_add(errs, "%s: cannot read: %s", path, strerror(errno));
		return -1;
	}
	const char *slash = strrchr(path, '/');
	if (slash)
		dir = bf_xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
	bool have_st = stat(path, &st) == 0;
	int rc = load_text(path, text, len, dir, have_st ? &st : NULL, out, errs);
	free(dir);
	free(text);
	return rc;
}

/* Make the heap-owned values of `base` (a shallow copy) its own, from the same table that
 * frees them, so a copy can never miss a field the parser fills. */
static void own_values(const struct key_def *table, size_t n, void *base)
{
	for (size_t i = 0; i < n; i++) {
		const struct key_def *d = &table[i];
		char *field = (char *)base + d->offset;

		switch (d->type) {
		case KT_STRING:
		case KT_ENUM_STRING:
			if (*(char **)field)
				*(char **)field = bf_xstrdup(*(char **)field);
			break;
		case KT_STRING_LIST:
		case KT_KEY: {
			char **v = *(char ***)field;
			size_t count = *(size_t *)((char *)base + d->count_offset);
			char **copy = count ? bf_xcalloc(count, sizeof(*copy)) : NULL;

			for (size_t k = 0; k < count; k++)
				copy[k] = bf_xstrdup(v[k]);
			*(char ***)field = copy;
			break;
		}
		case KT_STEPS: {
			bf_step_config *v = *(bf_step_config **)(void *)field;
			size_t count = *(size_t *)(void *)((char *)base + d->count_offset);
			bf_step_config *copy = count ? bf_xcalloc(count, sizeof(*copy)) : NULL;

			for (size_t k = 0; k < count; k++)
				copy[k] = (bf_step_config){v[k].kind, bf_xstrdup(v[k].text)};
			*(bf_step_config **)(void *)field = copy;
			break;
		}
		case KT_MAPPING:
			own_values(d->sub, d->n_sub, field);
			break;
		default:
			break;
		}
	}
}

bf_job_config *bf_job_config_dup(const bf_job_config *job)
{
	bf_job_config *copy = bf_xmalloc(sizeof(*copy));

	*copy = *job;
	own_values(job_keys, BF_ARRAY_LEN(job_keys), copy);
	copy->file = job->file ? bf_xstrdup(job->file) : NULL;
	return copy;
}

void bf_job_config_free(bf_job_config *job)
{
	if (job == NULL)
		return;
	free_values(job_keys, BF_ARRAY_LEN(job_keys), job);
	free(job->file);
	free(job);
}

void bf_config_free(bf_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->n_jobs; i++) {
		free_values(job_keys, BF_ARRAY_LEN(job_keys), &cfg->jobs[i]);
		free(cfg->jobs[i].file);
	}
	free(cfg->jobs);
	free_values(top_keys, BF_ARRAY_LEN(top_keys), cfg);
	free(cfg->file);
	free(cfg);
}

const bf_job_config *bf_config_find_job(const bf_config *cfg, const char *name)
{
	for (size_t i = 0; cfg && name && i < cfg->n_jobs; i++)
		if (cfg->jobs[i].name && strcmp(cfg->jobs[i].name, name) == 0)
			return &cfg->jobs[i];
	return NULL;
}

static uint64_t hash_field(uint64_t h, const char *s)
{
	if (s == NULL)
		s = "";
	return bf_fnv1a64(s, strlen(s) + 1, h); /* the NUL separates fields */
}

void bf_job_config_hash(const bf_job_config *job, char out[17])
{
	uint64_t h = 0;

	/* the definition keys in table order (table, key, set, where): hashes written by
	 * earlier versions stay the same */
	for (size_t i = 0; i < BF_ARRAY_LEN(job_keys); i++) {
		const struct key_def *d = &job_keys[i];
		const char *base = (const char *)job;

		if (d->reload != BF_RELOAD_DEFINITION)
			continue;
		if (d->type == KT_ENUM) {
			/* a switch of the definition (backup) counts when on: the hashes of
			 * jobs without it stay what they were */
			if (*(const int *)(const void *)(base + d->offset))
				h = hash_field(h, d->name);
			continue;
		}
		if (d->type == KT_KEY || d->type == KT_STRING_LIST) {
			char *const *v = *(char *const *const *)(const void *)(base + d->offset);
			size_t n = *(const size_t *)(const void *)(base + d->count_offset);

			for (size_t k = 0; k < n; k++)
				h = hash_field(h, v[k]);
		} else {
			h = hash_field(h, *(char *const *)(const void *)(base + d->offset));
		}
	}
	snprintf(out, 17, "%016" PRIx64, h);
}

/* Do two structs hold the same value of key d? */
static bool same_value(const struct key_def *d, const void *a, const void *b);

static unsigned changes_in(const struct key_def *table, size_t n, const void *a, const void *b)
{
	unsigned changes = 0;

	for (size_t i = 0; i < n; i++) {
		const struct key_def *d = &table[i];

		if (d->type == KT_MAPPING)
			changes |= changes_in(d->sub, d->n_sub, (const char *)a + d->offset,
			                      (const char *)b + d->offset);
		else if (!same_value(d, a, b))
			changes |= d->reload ? d->reload : BF_RELOAD_TUNING;
	}
	return changes;
}

#define FIELD(T, base, d) (*(const T *)(const void *)((const char *)(base) + (d)->offset))

static bool same_value(const struct key_def *d, const void *a, const void *b)
{
	switch (d->type) {
	case KT_STRING:
	case KT_ENUM_STRING:
		return bf_streq_opt(FIELD(char *, a, d), FIELD(char *, b, d));
	case KT_INT:
	case KT_DURATION:
	case KT_SIZE:
		return FIELD(int64_t, a, d) == FIELD(int64_t, b, d);
	case KT_PERCENT:
	case KT_NUMBER:
		return FIELD(double, a, d) <= FIELD(double, b, d) &&
		       FIELD(double, a, d) >= FIELD(double, b, d);
	case KT_ENUM:
		return FIELD(int, a, d) == FIELD(int, b, d);
	case KT_STRING_LIST:
	case KT_KEY: {
		size_t na = *(const size_t *)(const void *)((const char *)a + d->count_offset);
		size_t nb = *(const size_t *)(const void *)((const char *)b + d->count_offset);

		for (size_t k = 0; na == nb && k < na; k++)
			if (strcmp(FIELD(char **, a, d)[k], FIELD(char **, b, d)[k]) != 0)
				return false;
		return na == nb;
	}
	case KT_STEPS: {
		size_t na = *(const size_t *)(const void *)((const char *)a + d->count_offset);
		size_t nb = *(const size_t *)(const void *)((const char *)b + d->count_offset);
		const bf_step_config *sa = FIELD(bf_step_config *, a, d);
		const bf_step_config *sb = FIELD(bf_step_config *, b, d);

		for (size_t k = 0; na == nb && k < na; k++)
			if (sa[k].kind != sb[k].kind || strcmp(sa[k].text, sb[k].text) != 0)
				return false;
		return na == nb;
	}
	case KT_WINDOW:
		return FIELD(bf_window, a, d).set == FIELD(bf_window, b, d).set &&
		       FIELD(bf_window, a, d).start_min == FIELD(bf_window, b, d).start_min &&
		       FIELD(bf_window, a, d).end_min == FIELD(bf_window, b, d).end_min;
	case KT_MAPPING:
		return changes_in(d->sub, d->n_sub, (const char *)a + d->offset,
		                  (const char *)b + d->offset) == 0;
	case KT_NODE:
		return true;
	}
	return false;
}

unsigned bf_job_config_changes(const bf_job_config *a, const bf_job_config *b)
{
	return changes_in(job_keys, BF_ARRAY_LEN(job_keys), a, b);
}

void bf_config_restart_changes(const bf_config *a, const bf_config *b, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < BF_ARRAY_LEN(top_keys); i++) {
		const struct key_def *d = &top_keys[i];

		if (d->reload == BF_RELOAD_RESTART && !same_value(d, a, b) && used < len)
			used += (size_t)snprintf(out + used, len - used, "%s%s", used ? "," : "",
			                         d->name);
	}
}

void bf_config_keep_restart_keys(bf_config *next, const bf_config *old)
{
	for (size_t i = 0; i < BF_ARRAY_LEN(top_keys); i++) {
		const struct key_def *d = &top_keys[i];
		char **to = (char **)((char *)next + d->offset);
		char *const *from = (char *const *)((const char *)old + d->offset);

		if (d->reload != BF_RELOAD_RESTART || d->type != KT_STRING)
			continue;
		free(*to);
		*to = *from ? bf_xstrdup(*from) : NULL;
	}
}

bool bf_lag_config_limited(const bf_lag_config *lag)
{
	bf_lag_config none = {0};

	for (size_t i = 0; i < BF_ARRAY_LEN(lag_keys); i++)
		if ((lag_keys[i].flags & KF_LIMIT) && !same_value(&lag_keys[i], lag, &none))
			return true;
	return false;
}

/* The (*i)-th key of a table and of the mappings in it, depth first, each named after its
 * mapping ("lag.check_interval"): true with the name in buf, else false with *i reduced by
 * the keys the table holds. */
static bool nth_key(const struct key_def *table, size_t n, const char *prefix, size_t *i, char *buf,
                    size_t len)
{
	for (size_t k = 0; k < n; k++) {
		const struct key_def *d = &table[k];
		char name[128];

		snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "." : "", d->name);
		if (*i == 0) {
			if (len > 0)
				snprintf(buf, len, "%s", name);
			return true;
		}
		(*i)--;
		if (d->type == KT_MAPPING && nth_key(d->sub, d->n_sub, name, i, buf, len))
			return true;
	}
	return false;
}

const char *bf_config_key_name(size_t i, char *buf, size_t len)
{
	static const struct {
		const struct key_def *keys;
		size_t n;
	} tables[] = {
	        {.keys = top_keys, .n = BF_ARRAY_LEN(top_keys)},
	        {.keys = job_keys, .n = BF_ARRAY_LEN(job_keys)},
	        {.keys = include_keys, .n = BF_ARRAY_LEN(include_keys)},
	};

	for (size_t t = 0; t < BF_ARRAY_LEN(tables); t++)
		if (nth_key(tables[t].keys, tables[t].n, "", &i, buf, len))
			return buf;
	return NULL;
}

bool bf_job_config_watches_server(const bf_job_config *job)
{
	return bf_lag_config_limited(&job->lag) || job->max_commit_latency_ms > 0 ||
	       job->max_wal_rate > 0 || job->throttle_query != NULL;
}
