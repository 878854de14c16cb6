/*
 * config.h - the YAML configuration of SPEC.md, parsed with libyaml into plain structs.
 *
 * Owns: the bf_config tree and everything it points to; the table of known keys with their
 * types, defaults and validators; ${ENV} substitution; include: globs; the error messages an
 * operator sees ("FILE:LINE:COL: jobs[2].batch_size: expected a positive integer, got \"abc\"").
 * Promises: a file is either loaded whole and valid or rejected with every problem listed;
 * nothing here touches a database or the network. A reload builds a new bf_config and swaps
 * it in only when it loaded, so a bad file never disturbs the running one.
 */
#ifndef BACKFILLD_CONFIG_H
#define BACKFILLD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backfilld/util.h"

#define BF_JOB_NAME_MAX 63

/* Back-pressure limits of one job. A limit of 0 is off. */
typedef struct bf_lag_config {
	int64_t max_replay_bytes;    /* WAL written by the primary, not yet replayed by a standby */
	int64_t max_replay_time_ms;  /* replay_lag of a standby (a second opinion only) */
	int64_t max_slot_retained;   /* WAL bytes held by any replication slot */
	int64_t max_archive_backlog; /* WAL segments waiting for archive_command */
	int64_t min_standbys;        /* fewer streaming standbys than this counts as lag */
	char **standbys;             /* application_names that must be streaming */
	size_t n_standbys;
	int64_t stall_after_ms;    /* a standby whose last reply is older counts as lagging */
	double resume_below;       /* 0..1: resume when every signal is below this share */
	int64_t check_interval_ms; /* how often the lag monitor looks */
} bf_lag_config;

/* A daily window in server-local time; start == end means "always". May wrap midnight. */
typedef struct bf_window {
	bool set;
	int start_min; /* minutes after midnight */
	int end_min;
	char text[16]; /* as written, "01:00-06:00", for reasons and logs */
} bf_window;

/* One item of a job's `then:` list, as written (steps.h expands and checks it). */
typedef enum bf_step_kind {
	BF_STEP_SQL,      /* "SQL" or {sql: "SQL"}: one statement */
	BF_STEP_NOT_NULL, /* {not_null: COLUMN} */
	BF_STEP_CHECK,    /* {check: "EXPRESSION"} */
	BF_STEP_INDEX,    /* {index: "CREATE [UNIQUE] INDEX CONCURRENTLY NAME ON ..."} */
} bf_step_kind;

typedef struct bf_step_config {
	bf_step_kind kind;
	char *text; /* the statement, the column, the expression or the CREATE INDEX */
} bf_step_config;

typedef struct bf_job_config {
	char *name;
	char *database; /* the job's own conninfo, else the top-level one (never NULL once loaded)
	                 */
	char *table;    /* as written: "public.users" or "users" */
	char **key;     /* key columns; n_key == 0 means "the primary key" */
	size_t n_key;
	char *set;   /* SQL SET list */
	char *where; /* rows still to do */
	int64_t batch_size;
	int64_t min_batch_size;
	int64_t max_batch_size;
	int64_t target_batch_time_ms; /* 0 = batch size fixed */
	int64_t sleep_ms;
	int64_t max_rows_per_second; /* 0 = no cap */
	int64_t lock_timeout_ms;
	int64_t statement_timeout_ms;
	char *synchronous_commit; /* on | off | local | remote_write | remote_apply */
	bf_lag_config lag;
	bf_window window;
	int64_t max_commit_latency_ms; /* the server's commit probe p90 budget; 0 = off (pace.h) */
	int64_t max_wal_rate;  /* WAL bytes per second the server's jobs may share; 0 = no cap */
	char *throttle_query;  /* one SELECT run on the server's monitor, NULL when none */
	double throttle_above; /* the job throttles while that query's number is above it */
	int64_t max_retries;
	int64_t parallel; /* slices of the first pass walked at once, each on its own connection;
	                   * 0: auto (autopar.h) */
	int dual_write;   /* 1: a trigger applies set to the rows the application writes */
	int verify;       /* 1: once the data is done, count the rows set would change now */
	int backup;       /* 1: each batch keeps the old values it overwrites (undo) */
	char **backup_columns; /* the columns to keep, when set's cannot be told (n: 0: set's) */
	size_t n_backup_columns;
	bf_step_config *then; /* steps run once the data is done, in order; NULL when none */
	size_t n_then;
	char *file; /* where the job was defined, for messages */
	int line;
} bf_job_config;

typedef struct bf_config {
	char *file;
	char *database;
	char *control_schema;
	int64_t max_parallel_jobs;
	int log_level; /* enum bf_log_level (log.h) */
	int64_t progress_interval_ms;
	int64_t shutdown_timeout_ms;
	char *metrics_listen; /* NULL when off */
	char *include;        /* glob, NULL when absent */
	bf_job_config *jobs;
	size_t n_jobs;
} bf_config;

/* Load and validate a file (and its include: files). On success returns 0 and *out owns a new
 * config; on failure returns -1, *out is untouched and errs holds every problem, each prefixed
 * "FILE:LINE:COL: path: " where a position is known. */
int bf_config_load(const char *path, bf_config **out, bf_errors *errs);

/* The same from text in memory; `name` stands for the file name in messages. include: globs
 * are resolved relative to the current directory. */
int bf_config_parse_string(const char *name, const char *text, bf_config **out, bf_errors *errs);

/* Free a config; NULL is a no-op. */
void bf_config_free(bf_config *cfg);

/* A deep copy of one job (a job outlives the bf_config it came from across reloads), and its
 * free; NULL is a no-op. */
bf_job_config *bf_job_config_dup(const bf_job_config *job);
void bf_job_config_free(bf_job_config *job);

/* The job of that name, or NULL. */
const bf_job_config *bf_config_find_job(const bf_config *cfg, const char *name);

/* The definition hash of a job: 16 lowercase hex digits over table, key, set and where. Two
 * jobs with the same hash walk the same rows the same way; tuning keys do not enter it. */
void bf_job_config_hash(const bf_job_config *job, char out[17]);

/* What a key's change means on reload, from the key table (each key has one):
 *   TUNING      taken from the next batch on (most keys);
 *   SESSION     a session setting (timeouts, synchronous_commit): sent again first;
 *   DEFINITION  which rows and how (table, key, set, where; the definition hash): a running
 *               job fails (reset it or rename it);
 *   CONNECTION  the job's conninfo: it goes on through a new connection;
 *   RESTART     taken only at a restart (a warning says so). */
enum {
	BF_RELOAD_TUNING = 1 << 0,
	BF_RELOAD_SESSION = 1 << 1,
	BF_RELOAD_DEFINITION = 1 << 2,
	BF_RELOAD_CONNECTION = 1 << 3,
	BF_RELOAD_RESTART = 1 << 4,
};

/* The BF_RELOAD_* classes of the keys whose values differ between a and b (0: the same). */
unsigned bf_job_config_changes(const bf_job_config *a, const bf_job_config *b);

/* The top-level keys that differ and take effect only at a restart, comma-separated in out
 * ("" when none). */
void bf_config_restart_changes(const bf_config *a, const bf_config *b, char *out, size_t len);
/* Give `next` the values those keys have in `old`: a reload keeps them until a restart. */
void bf_config_keep_restart_keys(bf_config *next, const bf_config *old);

/* Does the job need its server's monitor (a lag limit, a commit-latency budget, a
 * throttle_query)? */
bool bf_job_config_watches_server(const bf_job_config *job);

/* Does any lag limit hold a value (the keys flagged as limits in the table)? Then the job
 * needs a lag monitor. */
bool bf_lag_config_limited(const bf_lag_config *lag);

/* The i-th key the parser accepts (i from 0), straight from the key tables, for what must
 * list them all (the test that keeps backfilld.yaml(5) complete): the top-level keys, then
 * the job keys (those of defaults: too), each mapping's keys right after it, named with the
 * mapping's name and a dot ("lag", "lag.max_replay_bytes"), then the keys of an included
 * file. A name comes once per table that holds it: "database" at the top level and in a
 * job, "jobs" in the main file and in an included one. The name is written into buf
 * (truncated to fit, NUL-terminated when len > 0), which is returned; NULL once i is past
 * the last key. Pure: no allocation, no state. */
const char *bf_config_key_name(size_t i, char *buf, size_t len);

#endif
