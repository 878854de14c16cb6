/*
 * backfillctl.c - the operator's tool (SPEC.md, "Command line"): look at backfilld's jobs and
 * steer them through the control table only, from any host that reaches the database.
 *
 *   status [--json] [--watch] [JOB]   the rows of <schema>.progress, as a table or JSON
 *   pause JOB|--all, resume JOB|--all, cancel JOB
 *                                     set requested_state and NOTIFY backfilld in one
 *                                     transaction; the daemon acts within a second
 *   reset JOB                         delete the job's row (and its backup) so that it
 *                                     starts over, refused while a daemon holds the job's
 *                                     advisory lock
 *   undo [--to-null] JOB              ask for the undo of a job that kept a backup (or,
 *                                     to NULL, of one that filled NULLs)
 *   drop-backup JOB                   drop a job's backup
 *
 * Commands are rows of commands[] (what arguments they take, what they write); adding one is
 * adding a row. A CLI may block, so this is plain blocking libpq, one connection, made like
 * psql's: -d takes a conninfo or URI (expand_dbname), the PG* environment fills the rest.
 * Identifiers are quoted by libpq, values travel as parameters. Errors are values: every step
 * returns 0 or -1 with the message in ctl.err, printed once by main(); exit status 0 or 1.
 * The text of the output (table, bars, logfmt, JSON) is built by the pure module ctl.c.
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "backfilld/ctl.h"
#include "backfilld/sql.h"
#include "backfilld/util.h"
#include "backfilld/version.h"

#define DEFAULT_SCHEMA    "backfill"
#define NOTIFY_CHANNEL    "backfilld" /* the daemon LISTENs here; payload: job name or "*" */
#define WATCH_INTERVAL_MS 1000
#define BAR_WIDTH         20
#define ERR_LEN           1024
#define TRY_HELP          "Try \"backfillctl --help\" for more information.\n"

/* What a command takes besides its options. */
enum job_arg {
	JOB_OPTIONAL, /* status [JOB] */
	JOB_REQUIRED, /* cancel JOB */
	JOB_OR_ALL,   /* pause JOB|--all */
};

/* Options a command accepts (the global -d and --schema go with every command). */
enum { ACCEPT_JSON = 1u << 0, ACCEPT_WATCH = 1u << 1, ACCEPT_TO_NULL = 1u << 2 };

struct ctl {
	const char *conninfo; /* -d, or NULL for the PG* environment */
	const char *schema;   /* --schema, as given (the daemon hashes this text for its lock) */
	const char *job;      /* the JOB argument, or NULL */
	bool all, json, watch, to_null;
	PGconn *conn;
	char *qschema; /* schema quoted by libpq */
	char err[ERR_LEN];
};

struct command;
typedef int (*command_fn)(struct ctl *c, const struct command *cmd);

struct command {
	const char *name;
	const char *args; /* for the usage text */
	const char *help;
	enum job_arg job;
	unsigned accepts;
	/* pause/resume/cancel: the requested_state written, the word for what was done, and an
	 * optional SQL condition on the row (columns state, requested_state) without which
	 * there is nothing to do, with the words saying so */
	const char *request;
	const char *done;
	const char *only_if;
	const char *only_if_not;
	command_fn run;
};

static int cmd_status(struct ctl *c, const struct command *cmd);
static int cmd_request(struct ctl *c, const struct command *cmd);
static int cmd_reset(struct ctl *c, const struct command *cmd);
static int cmd_finish(struct ctl *c, const struct command *cmd);
static int cmd_undo(struct ctl *c, const struct command *cmd);
static int cmd_drop_backup(struct ctl *c, const struct command *cmd);

static const struct command commands[] = {
        {
                .name = "status",
                .args = "[--json] [--watch] [JOB]",
                .help = "progress of every job (or JOB): a table, or a JSON array with --json;\n"
                        "--watch redraws it every second until interrupted",
                .job = JOB_OPTIONAL,
                .accepts = ACCEPT_JSON | ACCEPT_WATCH,
                .run = cmd_status,
        },
        {
                .name = "pause",
                .args = "JOB|--all",
                .help = "pause a job (or every unfinished job) after its in-flight batch",
                .job = JOB_OR_ALL,
                .request = "paused",
                .done = "pause requested",
                .run = cmd_request,
        },
        {
                .name = "resume",
                .args = "JOB|--all",
                .help = "resume a job (or every job) paused by backfillctl",
                .job = JOB_OR_ALL,
                .request = "running",
                .done = "resume requested",
                .only_if = "state = 'paused' OR requested_state = 'paused'",
                .only_if_not = "is not paused",
                .run = cmd_request,
        },
        {
                .name = "cancel",
                .args = "JOB",
                .help = "stop a job for good (state cancelled; reset runs it again)",
                .job = JOB_REQUIRED,
                .request = "cancelled",
                .done = "cancel requested",
                .run = cmd_request,
        },
        {
                .name = "reset",
                .args = "JOB",
                .help = "delete a job's row (and its steps, dual-write trigger and backup) so\n"
                        "that it starts over; refused while a daemon runs it",
                .job = JOB_REQUIRED,
                .run = cmd_reset,
        },
        {
                .name = "finish",
                .args = "JOB",
                .help = "remove a job's dual-write trigger, once the application writes the\n"
                        "column itself",
                .job = JOB_REQUIRED,
                .run = cmd_finish,
        },
        {
                .name = "undo",
                .args = "[--to-null] JOB",
                .help = "put back the values a job with backup: true overwrote (state undoing,\n"
                        "then undone); rows changed since it wrote them are left and counted;\n"
                        "the job must be over (done, failed or cancelled); --to-null, for a job\n"
                        "without a backup whose where was `column IS NULL`: NULL again where\n"
                        "the column is still what set gives",
                .job = JOB_REQUIRED,
                .accepts = ACCEPT_TO_NULL,
                .run = cmd_undo,
        },
        {
                .name = "drop-backup",
                .args = "JOB",
                .help = "drop a job's backup table (no undo is possible after it)",
                .job = JOB_REQUIRED,
                .run = cmd_drop_backup,
        },
};

/* States a job never leaves on its own: pause/resume/cancel have nothing to act on. */
#define TERMINAL_SQL "('done', 'failed', 'cancelled', 'undone')"

/* ---- errors and statements ---- */

static int fail(struct ctl *c, const char *fmt, ...) BF_PRINTF(2, 3);

static int fail(struct ctl *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* libpq's messages end in a newline (and may have more lines): keep them, minus the end. */
static int fail_pg(struct ctl *c, const char *what, const char *msg)
{
	char *masked = bf_masked(msg); /* libpq echoes a conninfo it cannot parse */
	size_t n = strlen(masked);
	int rc;

	while (n > 0 && (masked[n - 1] == '\n' || masked[n - 1] == ' '))
		n--;
	rc = fail(c, "%s: %.*s", what, (int)n, masked);
	free(masked);
	return rc;
}

/* Run one statement with text parameters. 0 and the result in *res_out (the caller clears
 * it; pass NULL to discard it), or -1 with the server's message. */
static int run_sql(struct ctl *c, const char *sql, int n, const char *const *params,
                   PGresult **res_out)
{
	PGresult *res = PQexecParams(c->conn, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

		if (primary)
			fail(c, "%s", primary);
		else
			fail_pg(c, "query failed", PQerrorMessage(c->conn));
		PQclear(res);
		return -1;
	}
	if (res_out)
		*res_out = res;
	else
		PQclear(res);
	return 0;
}

/* After a failure inside a transaction: end it, keeping the first error's message. */
static void rollback(struct ctl *c)
{
	PGresult *res = PQexec(c->conn, "ROLLBACK");

	PQclear(res);
}

/* BEGIN, then the job's row read and locked by `select` (FOR UPDATE): 0 inside the
 * transaction with the row in *row; -1, rolled back, when that failed or there is no such job
 * (*row, when set, is the caller's to clear). */
static int begin_on_job(struct ctl *c, const char *select, int n, const char *const *params,
                        PGresult **row)
{
	if (run_sql(c, "BEGIN", 0, NULL, NULL) != 0)
		return -1;
	if (run_sql(c, select, n, params, row) != 0)
		goto error;
	if (PQntuples(*row) == 0) {
		fail(c, "no job named %s in schema %s", c->job, c->schema);
		goto error;
	}
	return 0;
error:
	rollback(c);
	return -1;
}

static bool is_terminal(const char *state)
{
	return strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 ||
	       strcmp(state, "cancelled") == 0 || strcmp(state, "undone") == 0;
}

/* ---- connection ---- */

/* Output settings that do not depend on the user's defaults: ISO timestamps, intervals in
 * PostgreSQL's own style. Run again after a reconnect. */
static int setup_session(struct ctl *c)
{
	if (run_sql(c,
	            "SELECT set_config('DateStyle', 'ISO, YMD', false),\n"
	            "  set_config('IntervalStyle', 'postgres', false)",
	            0, NULL, NULL) != 0)
		return -1;
	if (c->json && PQsetClientEncoding(c->conn, "UTF8") != 0)
		return fail_pg(c, "cannot set client_encoding UTF8", PQerrorMessage(c->conn));
	return 0;
}

static int connect_db(struct ctl *c)
{
	const char *const keywords[] = {"dbname", "fallback_application_name", NULL};
	const char *const values[] = {c->conninfo, "backfillctl", NULL};
	const char *params[1] = {c->schema};
	PGresult *res = NULL;
	int rc = -1;

	c->conn = PQconnectdbParams(keywords, values, 1);
	if (c->conn == NULL)
		return fail(c, "cannot connect: out of memory");
	if (PQstatus(c->conn) != CONNECTION_OK)
		return fail_pg(c, "cannot connect", PQerrorMessage(c->conn));
	c->qschema = PQescapeIdentifier(c->conn, c->schema, strlen(c->schema));
	if (c->qschema == NULL)
		return fail_pg(c, "bad schema name", PQerrorMessage(c->conn));
	if (setup_session(c) != 0)
		goto out;
	if (run_sql(c, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", 1, params,
	            &res) != 0)
		goto out;
	if (PQgetvalue(res, 0, 0)[0] != 't') {
		fail(c, "no backfill jobs in this database (schema %s does not exist)", c->schema);
		goto out;
	}
	rc = 0;
out:
	PQclear(res);
	return rc;
}

/* ---- status ---- */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int64_t int_or(const PGresult *res, int row, int col, int64_t none)
{
	return PQgetisnull(res, row, col) ? none : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static double real_or(const PGresult *res, int row, int col, double none)
{
	return PQgetisnull(res, row, col) ? none : strtod(PQgetvalue(res, row, col), NULL);
}

/* The rows of the view (for JSON: every column, whatever the schema version adds; for the
 * table: the columns it shows, eta in milliseconds). No row while JOB is given: an error. */
static int query_progress(struct ctl *c, PGresult **res_out)
{
	const char *params[1] = {c->job};
	char *sql =
	        c->json ? bf_xasprintf("SELECT * FROM %s.progress\n"
	                               "WHERE $1::text IS NULL OR name = $1 ORDER BY name",
	                               c->qschema)
	                : bf_xasprintf(
	                          "SELECT name, state, state_reason, rows_done, "
	                          "rows_estimate, percent,\n"
	                          "  rows_per_second, (extract(epoch FROM eta) * 1000)::bigint, "
	                          "batch_size, backup_bytes\n"
	                          "FROM %s.progress WHERE $1::text IS NULL OR name = $1 "
	                          "ORDER BY name",
	                          c->qschema);
	PGresult *res = NULL;
	int rc = -1;

	if (run_sql(c, sql, 1, params, &res) != 0)
		goto out;
	if (c->job && PQntuples(res) == 0) {
		fail(c, "no job named %s in schema %s", c->job, c->schema);
		goto out;
	}
	*res_out = res;
	res = NULL;
	rc = 0;
out:
	PQclear(res);
	free(sql);
	return rc;
}

static void render_json(const PGresult *res, bool pretty, bf_sbuf *out)
{
	int nf = PQnfields(res), nt = PQntuples(res);
	const char **names = bf_xcalloc((size_t)nf + 1, sizeof(*names));
	const char **values = bf_xcalloc((size_t)nf + 1, sizeof(*values));
	bf_ctl_json_kind *kinds = bf_xcalloc((size_t)nf + 1, sizeof(*kinds));

	for (int f = 0; f < nf; f++) {
		names[f] = PQfname(res, f);
		kinds[f] = bf_ctl_json_kind_of(PQftype(res, f));
	}
	bf_sbuf_append(out, "[");
	for (int t = 0; t < nt; t++) {
		if (pretty)
			bf_sbuf_append(out, t ? ",\n  " : "\n  ");
		else if (t)
			bf_sbuf_append(out, ",");
		for (int f = 0; f < nf; f++)
			values[f] = PQgetisnull(res, t, f) ? NULL : PQgetvalue(res, t, f);
		bf_ctl_json_object(out, (size_t)nf, names, kinds, values, pretty);
	}
	bf_sbuf_append(out, pretty && nt ? "\n]\n" : "]\n");
	free(kinds);
	free(values);
	free(names);
}

/* The jobs of a table_sql result; strings borrowed from res. */
static bf_ctl_job *jobs_of(const PGresult *res)
{
	int nt = PQntuples(res);
	bf_ctl_job *jobs = bf_xcalloc((size_t)nt + 1, sizeof(*jobs));

	for (int t = 0; t < nt; t++) {
		jobs[t] = (bf_ctl_job){
		        .name = PQgetvalue(res, t, 0),
		        .state = PQgetvalue(res, t, 1),
		        .reason = PQgetisnull(res, t, 2) ? NULL : PQgetvalue(res, t, 2),
		        .rows_done = int_or(res, t, 3, 0),
		        .rows_estimate = int_or(res, t, 4, -1),
		        .percent = real_or(res, t, 5, 0),
		        .rate = real_or(res, t, 6, -1),
		        .eta_ms = int_or(res, t, 7, -1),
		        .batch_size = int_or(res, t, 8, -1),
		        .backup_bytes = int_or(res, t, 9, 0),
		};
	}
	return jobs;
}

/* Now, local: "2024-05-01 10:00:00" for people, "2024-05-01T10:00:00+0200" for lines. */
static void local_time(char *buf, size_t len, bool iso)
{
	time_t now = time(NULL);
	struct tm tm;
	size_t n = 0;

	if (localtime_r(&now, &tm) != NULL)
		n = iso ? strftime(buf, len, "%Y-%m-%dT%H:%M:%S%z", &tm)
		        : strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	if (n == 0)
		snprintf(buf, len, "?");
}

enum view { VIEW_JSON, VIEW_TABLE, VIEW_TTY, VIEW_LINES };

/* One picture of the jobs into out: the whole output of a plain `status`, or one frame of
 * --watch. */
static int status_frame(struct ctl *c, enum view view, bf_sbuf *out)
{
	PGresult *res = NULL;
	bf_ctl_job *jobs = NULL;
	char now[64];
	int n;

	if (query_progress(c, &res) != 0)
		return -1;
	n = PQntuples(res);
	switch (view) {
	case VIEW_JSON:
		render_json(res, !c->watch, out);
		break;
	case VIEW_TABLE:
		jobs = jobs_of(res);
		bf_ctl_format_table(out, jobs, (size_t)n, 0);
		break;
	case VIEW_TTY:
		jobs = jobs_of(res);
		local_time(now, sizeof(now), false);
		bf_sbuf_printf(out,
		               "backfillctl status: schema %s, every %ds, %s (Ctrl-C to stop)\n\n",
		               c->schema, WATCH_INTERVAL_MS / 1000, now);
		bf_ctl_format_table(out, jobs, (size_t)n, BAR_WIDTH);
		break;
	case VIEW_LINES:
	default:
		jobs = jobs_of(res);
		local_time(now, sizeof(now), true);
		for (int t = 0; t < n; t++)
			bf_ctl_format_line(out, now, &jobs[t]);
		break;
	}
	free(jobs);
	PQclear(res);
	return 0;
}

/* Write a frame over the previous one: home, each line cleared to its end, then the rest of
 * the screen cleared (no flicker from a full clear). */
static void draw_tty(const bf_sbuf *frame)
{
	bf_sbuf screen = {0};

	bf_sbuf_append(&screen, "\033[H");
	for (const char *p = frame->data, *nl; p && *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl == NULL) {
			bf_sbuf_append(&screen, p);
			break;
		}
		bf_sbuf_appendn(&screen, p, (size_t)(nl - p));
		bf_sbuf_append(&screen, "\033[K\n");
	}
	bf_sbuf_append(&screen, "\033[J");
	fputs(screen.data, stdout);
	bf_sbuf_free(&screen);
}

/* Sleep until `deadline` (monotonic ms) or a signal. */
static void sleep_until(int64_t deadline)
{
	int64_t left;

	while (!interrupted && (left = deadline - bf_mono_ms()) > 0) {
		struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000};
		if (nanosleep(&ts, NULL) != 0)
			continue; /* EINTR: the loop condition decides */
	}
}

/* --watch: a frame a second until SIGINT/SIGTERM (exit 0). The first frame fails like a plain
 * status (no schema, no such job: exit 1); later failures (the server restarting, the job
 * reset meanwhile) are shown and retried, reconnecting when the connection is gone. A second
 * Ctrl-C kills at once (SA_RESETHAND), should a blocking reconnect hang. */
static int watch(struct ctl *c, enum view view)
{
	struct sigaction sa = {.sa_handler = on_interrupt, .sa_flags = SA_RESETHAND};
	bf_sbuf frame = {0};
	int rc = -1;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (view == VIEW_TTY)
		fputs("\033[H\033[2J", stdout);
	for (long tick = 0; !interrupted; tick++) {
		int64_t deadline = bf_mono_ms() + WATCH_INTERVAL_MS;

		bf_sbuf_reset(&frame);
		if (status_frame(c, view, &frame) != 0) {
			if (tick == 0)
				goto out;
			if (view == VIEW_TTY) {
				bf_sbuf_printf(&frame, "backfillctl status: %s (retrying)\n",
				               c->err);
			} else {
				fprintf(stderr, "backfillctl: %s (retrying)\n", c->err);
				fflush(stderr);
			}
			if (PQstatus(c->conn) == CONNECTION_BAD) {
				PQreset(c->conn);
				if (PQstatus(c->conn) == CONNECTION_OK)
					setup_session(c);
			}
		}
		if (view == VIEW_TTY)
			draw_tty(&frame);
		else
			fputs(frame.data ? frame.data : "", stdout);
		fflush(stdout);
		sleep_until(deadline);
	}
	rc = 0;
out:
	bf_sbuf_free(&frame);
	return rc;
}

static int cmd_status(struct ctl *c, const struct command *cmd)
{
	bool tty = isatty(STDOUT_FILENO) == 1;
	enum view view;
	bf_sbuf out = {0};

	(void)cmd;
	if (c->json)
		view = VIEW_JSON;
	else if (c->watch)
		view = tty ? VIEW_TTY : VIEW_LINES;
	else
		view = VIEW_TABLE;
	if (c->watch)
		return watch(c, view);
	if (status_frame(c, view, &out) != 0)
		return -1;
	fputs(out.data, stdout);
	bf_sbuf_free(&out);
	return 0;
}

/* ---- pause, resume, cancel ---- */

/* Who acts on the request: the daemon that runs the job (its owner column), or nobody yet.
 * `alive` comes from pg_locks: some session holds the job's advisory lock. */
static const char *who(const char *owner, bool alive, char *buf, size_t len)
{
	if (alive)
		snprintf(buf, len, "daemon %s acts within a second", owner && *owner ? owner : "?");
	else
		snprintf(buf, len, "no daemon runs it now; applies when one starts it");
	return buf;
}

/* Is some session holding the job's advisory lock ($1 schema, $2 job)? The same key as the
 * daemon's pg_try_advisory_lock(hashtext(schema), hashtext(name)), read without taking it. */
#define DAEMON_ALIVE_SQL                                                                           \
	"EXISTS (SELECT 1 FROM pg_locks l\n"                                                       \
	"  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2\n"                       \
	"    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())\n"  \
	"    AND l.classid = hashtext($1)::oid AND l.objid = hashtext($2)::oid)"

static int request_one(struct ctl *c, const struct command *cmd)
{
	const char *params[3] = {c->schema, c->job, cmd->request};
	char *select = NULL, *update = NULL, note[256];
	PGresult *res = NULL;
	const char *state, *requested;
	int rc = -1;

	select = bf_xasprintf("SELECT state, requested_state, owner, " DAEMON_ALIVE_SQL ",\n"
	                      "  %s\n"
	                      "FROM %s.jobs WHERE name = $2 FOR UPDATE",
	                      cmd->only_if ? cmd->only_if : "true", c->qschema);
	update = bf_xasprintf("UPDATE %s.jobs SET requested_state = $2, updated_at = now()\n"
	                      "WHERE name = $1",
	                      c->qschema);
	if (begin_on_job(c, select, 2, params, &res) != 0)
		goto out;
	state = PQgetvalue(res, 0, 0);
	requested = PQgetisnull(res, 0, 1) ? "" : PQgetvalue(res, 0, 1);
	if (is_terminal(state)) {
		fail(c, "job %s is already %s: nothing to %s (reset it to run it again)", c->job,
		     state, cmd->name);
		goto error;
	}
	if (strcmp(requested, "cancelled") == 0 && strcmp(cmd->request, "cancelled") != 0) {
		fail(c, "job %s is being cancelled (state %s): cannot %s it", c->job, state,
		     cmd->name);
		goto error;
	}
	if (PQgetvalue(res, 0, 4)[0] != 't') {
		printf("job %s %s (state %s): nothing to %s\n", c->job, cmd->only_if_not, state,
		       cmd->name);
		rollback(c);
		rc = 0;
		goto out;
	}
	if (run_sql(c, update, 2, params + 1, NULL) != 0)
		goto error;
	if (run_sql(c, "SELECT pg_notify('" NOTIFY_CHANNEL "', $1)", 1, params + 1, NULL) != 0)
		goto error;
	if (run_sql(c, "COMMIT", 0, NULL, NULL) != 0)
		goto out;
	printf("job %s: %s (state %s; %s)\n", c->job, cmd->done, state,
	       who(PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2),
	           PQgetvalue(res, 0, 3)[0] == 't', note, sizeof(note)));
	rc = 0;
	goto out;
error:
	rollback(c);
out:
	PQclear(res);
	free(update);
	free(select);
	return rc;
}

/* --all: every job not in a terminal state (and not being cancelled: a pause must not undo a
 * cancel), one NOTIFY with payload "*". Nothing to do is not an error. */
static int request_all(struct ctl *c, const struct command *cmd)
{
	const char *params[1] = {cmd->request};
	char *sql = NULL;
	PGresult *res = NULL;
	int rc = -1, n;

	sql = bf_xasprintf("WITH u AS (\n"
	                   "  UPDATE %s.jobs SET requested_state = $1, updated_at = now()\n"
	                   "  WHERE state NOT IN " TERMINAL_SQL "\n"
	                   "    AND requested_state IS DISTINCT FROM 'cancelled' AND (%s)\n"
	                   "  RETURNING name, state)\n"
	                   "SELECT name, state FROM u ORDER BY name",
	                   c->qschema, cmd->only_if ? cmd->only_if : "true");
	if (run_sql(c, "BEGIN", 0, NULL, NULL) != 0)
		goto out;
	if (run_sql(c, sql, 1, params, &res) != 0)
		goto error;
	n = PQntuples(res);
	if (n > 0 && run_sql(c, "SELECT pg_notify('" NOTIFY_CHANNEL "', '*')", 0, NULL, NULL) != 0)
		goto error;
	if (run_sql(c, "COMMIT", 0, NULL, NULL) != 0)
		goto out;
	for (int t = 0; t < n; t++)
		printf("job %s: %s (state %s)\n", PQgetvalue(res, t, 0), cmd->done,
		       PQgetvalue(res, t, 1));
	if (n == 0)
		printf("no job to %s in schema %s\n", cmd->name, c->schema);
	rc = 0;
	goto out;
error:
	rollback(c);
out:
	PQclear(res);
	free(sql);
	return rc;
}

static int cmd_request(struct ctl *c, const struct command *cmd)
{
	return c->all ? request_all(c, cmd) : request_one(c, cmd);
}

/* ---- reset ---- */

/* In one transaction: the row (locked, so no daemon writes it meanwhile), then the job's
 * advisory lock and each of its slices' ("name:N") as transaction locks: refused when a
 * daemon holds one as a session lock (a slice may still walk for a daemon that lost its
 * job's connection); taken, they also keep a daemon from starting the job until the row is
 * gone. */
/* Inside a transaction: the job's dual-write trigger and its function dropped, each table's
 * ACCESS EXCLUSIVE lock waited for at most 2 s (the application's queries queue behind it).
 * How many triggers went (0: none was there), or -1. */
static int drop_dual_write(struct ctl *c)
{
	char *name = bf_sql_dual_write_name(c->job);
	const char *params[1] = {name};
	char *qname = PQescapeIdentifier(c->conn, name, strlen(name));
	char *drop_fn =
	        qname ? bf_xasprintf("DROP FUNCTION IF EXISTS %s.%s()", c->qschema, qname) : NULL;
	PGresult *drops = NULL;
	int n = -1;

	if (qname == NULL) {
		fail_pg(c, "quoting the trigger's name", PQerrorMessage(c->conn));
		goto out;
	}
	if (run_sql(c, "SET LOCAL lock_timeout = '2s'", 0, NULL, NULL) != 0 ||
	    run_sql(c, "SET LOCAL client_min_messages = warning", 0, NULL, NULL) != 0 ||
	    run_sql(c,
	            "SELECT format('DROP TRIGGER %I ON %s', tgname, tgrelid::regclass)\n"
	            "FROM pg_trigger WHERE tgname = $1 AND NOT tgisinternal",
	            1, params, &drops) != 0)
		goto out;
	for (int i = 0; i < PQntuples(drops); i++)
		if (run_sql(c, PQgetvalue(drops, i, 0), 0, NULL, NULL) != 0)
			goto out;
	if (run_sql(c, drop_fn, 0, NULL, NULL) != 0)
		goto out;
	n = PQntuples(drops);
out:
	PQclear(drops);
	PQfreemem(qname);
	free(drop_fn);
	free(name);
	return n;
}

static int cmd_finish(struct ctl *c, const struct command *cmd)
{
	int n;

	(void)cmd;
	if (run_sql(c, "BEGIN", 0, NULL, NULL) != 0)
		return -1;
	if ((n = drop_dual_write(c)) < 0) {
		rollback(c);
		return -1;
	}
	if (run_sql(c, "COMMIT", 0, NULL, NULL) != 0)
		return -1;
	if (n == 0)
		printf("job %s has no dual-write trigger: nothing to remove\n", c->job);
	else
		printf("job %s finished: its dual-write trigger is removed; the application writes "
		       "the column from now on\n",
		       c->job);
	return 0;
}

/* ---- undo and the backup ---- */

/* The job's backup table, "schema"."<job>_backup" (sql.h), quoted; NULL after failing. */
static char *backup_qname(struct ctl *c)
{
	char *name = bf_sql_backup_name(c->job);
	char *q = PQescapeIdentifier(c->conn, name, strlen(name));
	char *out = q ? bf_xasprintf("%s.%s", c->qschema, q) : NULL;

	if (q == NULL)
		fail_pg(c, "quoting the backup's name", PQerrorMessage(c->conn));
	PQfreemem(q);
	free(name);
	return out;
}

/* Inside a transaction: the backup dropped, its size before (pretty) in `size` ("" when
 * there was none). 0 or -1. */
static int drop_backup(struct ctl *c, char *size, size_t len)
{
	char *qbackup = backup_qname(c);
	const char *params[1] = {qbackup};
	char *drop = qbackup ? bf_xasprintf("DROP TABLE IF EXISTS %s", qbackup) : NULL;
	PGresult *res = NULL;
	int rc = -1;

	if (qbackup == NULL ||
	    run_sql(c, "SELECT pg_size_pretty(pg_total_relation_size(to_regclass($1)))", 1, params,
	            &res) != 0 ||
	    run_sql(c, drop, 0, NULL, NULL) != 0)
		goto out;
	snprintf(size, len, "%s", PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
	rc = 0;
out:
	PQclear(res);
	free(drop);
	free(qbackup);
	return rc;
}

/* The undo is the daemon's (undo.c): here, the checks an operator deserves an answer to at
 * once, the dual-write trigger dropped (it would apply set again to the rows put back), and
 * the request, in one transaction. */
static int cmd_undo(struct ctl *c, const struct command *cmd)
{
	const char *params[2] = {c->job, NULL};
	const char *request[2] = {c->job, c->to_null ? "t" : "f"};
	char *qbackup = backup_qname(c), *select = NULL, *update = NULL;
	PGresult *row = NULL;
	const char *state;
	int rc = -1, dropped;

	(void)cmd;
	if (qbackup == NULL)
		return -1;
	params[1] = qbackup;
	select = bf_xasprintf("SELECT state, undo_cursor IS NOT NULL,\n"
	                      "  pg_size_pretty(pg_total_relation_size(to_regclass($2)))\n"
	                      "FROM %s.jobs WHERE name = $1 FOR UPDATE",
	                      c->qschema);
	update = bf_xasprintf("UPDATE %s.jobs SET requested_state = 'undo', undo_to_null = $2,\n"
	                      "  updated_at = now()\n"
	                      "WHERE name = $1",
	                      c->qschema);
	if (begin_on_job(c, select, 2, params, &row) != 0)
		goto out;
	state = PQgetvalue(row, 0, 0);
	if (strcmp(state, "undone") == 0 || strcmp(state, "undoing") == 0 ||
	    (PQgetvalue(row, 0, 1)[0] == 't' && !is_terminal(state))) {
		fail(c, "job %s is %s already: nothing to undo", c->job,
		     strcmp(state, "undone") == 0 ? "undone" : "undoing");
		goto error;
	}
	if (!is_terminal(state)) {
		fail(c,
		     "job %s is %s: an undo runs on a job that is over; cancel it first "
		     "(backfillctl cancel %s), then undo",
		     c->job, state, c->job);
		goto error;
	}
	if (PQgetisnull(row, 0, 2) && !c->to_null) {
		fail(c,
		     "job %s has no backup (%s): it ran without backup: true, or the backup was "
		     "dropped, so the values it overwrote are gone. A job that only filled NULLs "
		     "(where: col IS NULL) is undone by setting the column back to NULL: "
		     "backfillctl "
		     "undo --to-null %s; any other needs a forward fix",
		     c->job, qbackup, c->job);
		goto error;
	}
	if (!PQgetisnull(row, 0, 2) && c->to_null) {
		fail(c, "job %s has a backup (%s): a plain undo puts back the values it overwrote",
		     c->job, qbackup);
		goto error;
	}
	if ((dropped = drop_dual_write(c)) < 0 || run_sql(c, update, 2, request, NULL) != 0 ||
	    run_sql(c, "SELECT pg_notify('" NOTIFY_CHANNEL "', $1)", 1, params, NULL) != 0)
		goto error;
	if (run_sql(c, "COMMIT", 0, NULL, NULL) != 0)
		goto out;
	if (c->to_null)
		printf("job %s: undo to NULL requested (state %s)", c->job, state);
	else
		printf("job %s: undo requested (state %s; backup %s, %s)", c->job, state, qbackup,
		       PQgetvalue(row, 0, 2));
	printf("%s; a daemon with the job in its configuration starts it within a second, or "
	       "when it starts%s\n",
	       dropped > 0 ? "; its dual-write trigger is removed" : "",
	       c->to_null ? " (it checks that where was `column IS NULL`)" : "");
	rc = 0;
	goto out;
error:
	rollback(c);
out:
	PQclear(row);
	free(update);
	free(select);
	free(qbackup);
	return rc;
}

static int cmd_drop_backup(struct ctl *c, const struct command *cmd)
{
	const char *params[1] = {c->job};
	char *select = bf_xasprintf("SELECT state, requested_state = 'undo' FROM %s.jobs\n"
	                            "WHERE name = $1 FOR UPDATE",
	                            c->qschema);
	PGresult *row = NULL;
	char size[64] = "";
	int rc = -1;

	(void)cmd;
	if (begin_on_job(c, select, 1, params, &row) != 0)
		goto out;
	if ((strcmp(PQgetvalue(row, 0, 0), "undoing") == 0 || PQgetvalue(row, 0, 1)[0] == 't')) {
		fail(c,
		     "job %s is undoing (or asked to): its backup is in use; cancel the undo "
		     "first",
		     c->job);
		goto error;
	}
	if (drop_backup(c, size, sizeof(size)) != 0)
		goto error;
	if (run_sql(c, "COMMIT", 0, NULL, NULL) != 0)
		goto out;
	if (size[0])
		printf("job %s: its backup is dropped (%s freed); it can no longer be undone\n",
		       c->job, size);
	else
		printf("job %s has no backup: nothing to drop\n", c->job);
	rc = 0;
	goto out;
error:
	rollback(c);
out:
	PQclear(row);
	free(select);
	return rc;
}

static int cmd_reset(struct ctl *c, const struct command *cmd)
{
	const char *params[2] = {c->schema, c->job};
	char *select = NULL, *delete = NULL, *locks = NULL;
	PGresult *row = NULL, *lock = NULL;
	char backup[64] = "";
	int rc = -1;

	(void)cmd;
	select = bf_xasprintf("SELECT state, owner, rows_done + coalesce((SELECT sum(s.rows_done) "
	                      "FROM %s.slices s WHERE s.job = j.name), 0)\n"
	                      "FROM %s.jobs j WHERE name = $1 FOR UPDATE OF j",
	                      c->qschema, c->qschema);
	locks = bf_xasprintf("SELECT pg_try_advisory_xact_lock(hashtext($1), hashtext($2)),\n"
	                     "  (SELECT coalesce(string_agg(slice::text, ', ' ORDER BY slice)\n"
	                     "     FILTER (WHERE NOT pg_try_advisory_xact_lock(hashtext($1),\n"
	                     "       hashtext($2 || ':' || slice))), '')\n"
	                     "   FROM %s.slices WHERE job = $2)",
	                     c->qschema);
	delete = bf_xasprintf("DELETE FROM %s.jobs WHERE name = $1", c->qschema);
	if (begin_on_job(c, select, 1, params + 1, &row) != 0)
		goto out;
	if (run_sql(c, locks, 2, params, &lock) != 0)
		goto error;
	if (PQgetvalue(lock, 0, 1)[0] != '\0') {
		fail(c,
		     "reset refused: slices %s of job %s are walked by a running daemon (owner %s, "
		     "state %s); stop that daemon, then reset",
		     PQgetvalue(lock, 0, 1), c->job,
		     PQgetisnull(row, 0, 1) ? "unknown" : PQgetvalue(row, 0, 1),
		     PQgetvalue(row, 0, 0));
		goto error;
	}
	if (PQgetvalue(lock, 0, 0)[0] != 't') {
		fail(c,
		     "reset refused: job %s is owned by a running daemon (owner %s, state %s); "
		     "stop that daemon, or remove the job from its configuration and reload it, "
		     "then reset",
		     c->job, PQgetisnull(row, 0, 1) ? "unknown" : PQgetvalue(row, 0, 1),
		     PQgetvalue(row, 0, 0));
		goto error;
	}
	if (drop_dual_write(c) < 0 || drop_backup(c, backup, sizeof(backup)) != 0 ||
	    run_sql(c, delete, 1, params + 1, NULL) != 0)
		goto error;
	if (run_sql(c, "COMMIT", 0, NULL, NULL) != 0)
		goto out;
	printf("job %s reset: its row is deleted (it was %s with %s rows done)%s%s%s; the next "
	       "daemon to run it starts over\n",
	       c->job, PQgetvalue(row, 0, 0), PQgetvalue(row, 0, 2),
	       backup[0] ? " and its backup dropped (" : "", backup, backup[0] ? ")" : "");
	rc = 0;
	goto out;
error:
	rollback(c);
out:
	PQclear(lock);
	PQclear(row);
	free(delete);
	free(select);
	free(locks);
	return rc;
}

/* ---- command line ---- */

static void usage(FILE *out)
{
	fprintf(out, "usage: backfillctl [-d CONNINFO] [--schema NAME] COMMAND [ARGS]\n\n"
	             "Commands:\n");
	for (size_t i = 0; i < BF_ARRAY_LEN(commands); i++) {
		const char *h = commands[i].help;

		fprintf(out, "  %s %s\n", commands[i].name, commands[i].args);
		for (const char *nl; (nl = strchr(h, '\n')) != NULL; h = nl + 1)
			fprintf(out, "      %.*s\n", (int)(nl - h), h);
		fprintf(out, "      %s\n", h);
	}
	fprintf(out,
	        "\nOptions:\n"
	        "  -d, --dbname CONNINFO  database (a conninfo string or a URI); otherwise the "
	        "PG*\n"
	        "                         environment, as for psql\n"
	        "  --schema NAME          the daemon's control_schema (default " DEFAULT_SCHEMA
	        ")\n"
	        "  --version, --help\n"
	        "\nExit status: 0 done, 1 usage error or failure (no such job, job already over, "
	        "...).\n");
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < BF_ARRAY_LEN(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Does the command take what was given? 0, or -1 with the reason. */
static int check_args(struct ctl *c, const struct command *cmd)
{
	if (c->json && !(cmd->accepts & ACCEPT_JSON))
		return fail(c, "%s does not take --json", cmd->name);
	if (c->watch && !(cmd->accepts & ACCEPT_WATCH))
		return fail(c, "%s does not take --watch", cmd->name);
	if (c->to_null && !(cmd->accepts & ACCEPT_TO_NULL))
		return fail(c, "%s does not take --to-null", cmd->name);
	if (c->all && cmd->job != JOB_OR_ALL)
		return fail(c, "%s does not take --all", cmd->name);
	switch (cmd->job) {
	case JOB_OPTIONAL:
		return 0;
	case JOB_REQUIRED:
		return c->job ? 0 : fail(c, "%s needs a JOB", cmd->name);
	case JOB_OR_ALL:
		if (c->job && c->all)
			return fail(c, "%s takes a JOB or --all, not both", cmd->name);
		return c->job || c->all ? 0 : fail(c, "%s needs a JOB or --all", cmd->name);
	default:
		return fail(c, "%s: unknown argument kind", cmd->name);
	}
}

int main(int argc, char **argv)
{
	enum { OPT_SCHEMA = 256, OPT_JSON, OPT_WATCH, OPT_ALL, OPT_TO_NULL, OPT_VERSION, OPT_HELP };
	static const struct option longopts[] = {
	        {"dbname", required_argument, NULL, 'd'},
	        {"schema", required_argument, NULL, OPT_SCHEMA},
	        {"json", no_argument, NULL, OPT_JSON},
	        {"watch", no_argument, NULL, OPT_WATCH},
	        {"all", no_argument, NULL, OPT_ALL},
	        {"to-null", no_argument, NULL, OPT_TO_NULL},
	        {"version", no_argument, NULL, OPT_VERSION},
	        {"help", no_argument, NULL, OPT_HELP},
	        {NULL, 0, NULL, 0},
	};
	struct ctl c = {.schema = DEFAULT_SCHEMA};
	const struct command *cmd;
	int opt, rc = 1;

	while ((opt = getopt_long(argc, argv, "d:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			c.conninfo = optarg;
			break;
		case OPT_SCHEMA:
			c.schema = optarg;
			break;
		case OPT_JSON:
			c.json = true;
			break;
		case OPT_WATCH:
			c.watch = true;
			break;
		case OPT_ALL:
			c.all = true;
			break;
		case OPT_TO_NULL:
			c.to_null = true;
			break;
		case OPT_VERSION:
			printf("backfillctl %s\n", BF_VERSION);
			return 0;
		case OPT_HELP:
			usage(stdout);
			return 0;
		default: /* getopt said what was wrong */
			fputs(TRY_HELP, stderr);
			return 1;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 1;
	}
	cmd = find_command(argv[optind]);
	if (cmd == NULL) {
		fprintf(stderr, "backfillctl: unknown command \"%s\"\n" TRY_HELP, argv[optind]);
		return 1;
	}
	if (optind + 1 < argc)
		c.job = argv[optind + 1];
	if (optind + 2 < argc) {
		fprintf(stderr, "backfillctl: unexpected argument \"%s\"\n" TRY_HELP,
		        argv[optind + 2]);
		return 1;
	}
	if (c.schema[0] == '\0') {
		fprintf(stderr, "backfillctl: --schema needs a name\n");
		return 1;
	}
	if (check_args(&c, cmd) != 0) {
		fprintf(stderr, "backfillctl: %s\nusage: backfillctl %s %s\n", c.err, cmd->name,
		        cmd->args);
		return 1;
	}
	if (connect_db(&c) == 0 && cmd->run(&c, cmd) == 0)
		rc = 0;
	else
		fprintf(stderr, "backfillctl: %s\n", c.err);
	PQfreemem(c.qschema);
	PQfinish(c.conn);
	return rc;
}
