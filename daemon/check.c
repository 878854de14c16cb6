/*
 * check.c - `backfilld --check`, like `nginx -t` for backfill jobs.
 *
 * Each job runs in its own transaction that is always rolled back: the control schema script
 * (so the batch statement can be compiled against it), PREPARE of the batch, EXPLAIN for the
 * estimate. Nothing survives the ROLLBACK, and the connection is only read from otherwise.
 */
#include "backfilld/check.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfilld/autopar.h"
#include "backfilld/conn.h"
#include "backfilld/pace.h"
#include "backfilld/pressure.h"
#include "backfilld/sql.h"
#include "backfilld/steps.h"
#include "backfilld/target.h"
#include "backfilld/units.h"
#include "backfilld/util.h"

/* Take a result: on error append "what: message" to problems, clear it and return -1; else
 * hand it to *out (or clear it when out is NULL) and return 0. */
static int checked(PGconn *pg, PGresult *res, PGresult **out, const char *what, bf_sbuf *problems)
{
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);

		bf_sbuf_printf(problems, "%s%s: %s%s%s", problems->len ? "; " : "", what,
		               msg ? msg : PQerrorMessage(pg), detail ? " (detail: " : "",
		               detail ? detail : "");
		if (detail)
			bf_sbuf_append(problems, ")");
		PQclear(res);
		return -1;
	}
	if (out)
		*out = res;
	else
		PQclear(res);
	return 0;
}

/* Run a statement (n < 0: simple protocol, several statements) through checked(). */
static int run(PGconn *pg, const char *sql, int n, const char *const *v, PGresult **out,
               const char *what, bf_sbuf *problems)
{
	PGresult *res = n >= 0 ? PQexecParams(pg, sql, n, NULL, v, NULL, NULL, 0) : PQexec(pg, sql);

	return checked(pg, res, out, what, problems);
}

/* Whether the plan reads `t`'s relation whole: a sequential scan on it, where a batch should
 * be an index range scan on the key. EXPLAIN quotes a name only when it must. */
static bool reads_whole(const PGresult *plan, const bf_sql_target *t)
{
	char *bare = bf_xasprintf("Seq Scan on %s", t->rel);
	char *quoted = bf_xasprintf("Seq Scan on \"%s\"", t->rel);
	bool whole = false;

	for (int i = 0; i < PQntuples(plan) && !whole; i++) {
		const char *line = PQgetvalue(plan, i, 0);
		const char *p = strstr(line, bare);

		whole = (p && (p[strlen(bare)] == ' ' || p[strlen(bare)] == '\0')) ||
		        strstr(line, quoted) != NULL;
	}
	free(bare);
	free(quoted);
	return whole;
}

/* EXPLAIN of the prepared statement `name` for a typical batch: from the relation's first key
 * (row 0 of `ends`, first n columns) up to the next batch_size keys, below its last key. */
static int explain(PGconn *pg, const char *name, const bf_job_config *job, const bf_sql_target *t,
                   const PGresult *ends, PGresult **out, bf_sbuf *problems)
{
	bf_sbuf sql = {0};
	int rc = -1;
	char batch[32];
	/* the batch's parameters (sql.h): name, batch size, rate, pass or slice, then the
	 * cursor (the first key) and the high-water mark (the last key) */
	const char *lead[4] = {job->name, batch, "0", "1"};

	snprintf(batch, sizeof(batch), "%lld", (long long)job->batch_size);
	bf_sbuf_printf(&sql, "EXPLAIN (COSTS OFF) EXECUTE %s(", name);
	for (int i = 0; i < 4 + 2 * (int)t->n_key; i++) {
		const char *v = i < 4 ? lead[i] : PQgetvalue(ends, 0, i - 4);
		char *lit = PQescapeLiteral(pg, v, strlen(v));

		if (lit == NULL) {
			bf_sbuf_printf(problems, "%splan: %s", problems->len ? "; " : "",
			               PQerrorMessage(pg));
			goto out;
		}
		bf_sbuf_printf(&sql, "%s%s", i ? ", " : "", lit);
		PQfreemem(lit);
	}
	bf_sbuf_append(&sql, ")");
	rc = run(pg, sql.data, -1, NULL, out, "plan", problems);
out:
	bf_sbuf_free(&sql);
	return rc;
}

/* The two forms of the batch, prepared under these names by compile(). */
static const char *const names[2] = {"bf_check_skip", "bf_check_fast"};

/* Both forms of the batch as the job sends them, compiled (set and where included). */
static int compile(PGconn *pg, const bf_sql_target *t, enum bf_ckpt ckpt, bf_sbuf *problems)
{
	for (int plain = 0; plain < 2; plain++) {
		char *sql = bf_sql_batch(t, false, plain, ckpt);
		int rc = checked(pg, PQprepare(pg, names[plain], sql, 0, NULL), NULL,
		                 "set or where do not compile", problems);

		free(sql);
		if (rc != 0)
			return -1;
	}
	return 0;
}

/* One form of the batch, printed with its plan for a typical batch, and a warning when the
 * walked relation is read whole. */
static int show_batch(PGconn *pg, const bf_job_config *job, const bf_sql_target *t, bool plain,
                      enum bf_ckpt ckpt, const PGresult *ends, bf_sbuf *problems)
{
	char *sql = bf_sql_batch(t, false, plain, ckpt);
	PGresult *plan = NULL;
	int rc = -1;

	if (plain)
		printf("  batch statement (fast path: a plain UPDATE of the range under a %lldms "
		       "lock_timeout):\n%s\n",
		       (long long)t->fast_lock_ms, sql);
	else
		printf("  batch statement (SKIP LOCKED: the same range when the fast path meets a "
		       "row lock):\n%s\n",
		       sql);
	if (PQntuples(ends) == 0) {
		printf("  plan: none, %s is empty\n\n", t->qtable);
		rc = 0;
		goto out;
	}
	if (explain(pg, names[plain], job, t, ends, &plan, problems) != 0)
		goto out;
	printf("  plan of a batch from the first key:\n");
	for (int i = 0; i < PQntuples(plan); i++)
		printf("    %s\n", PQgetvalue(plan, i, 0));
	if (reads_whole(plan, t))
		printf("  warning: this plan reads all of %s for each batch (Seq Scan), where it "
		       "should be a range scan on the key's index: ANALYZE the table, or check "
		       "that the key's index is valid\n",
		       t->qtable);
	printf("\n");
	rc = 0;
out:
	PQclear(plan);
	free(sql);
	return rc;
}

/* A partitioned table is walked leaf by leaf, each leaf as a plain table: make `t` the
 * target of its biggest leaf, whose statements are those a slice sends. */
static int to_biggest_leaf(PGconn *pg, bf_sql_target *t, long long *leaves, bf_sbuf *problems)
{
	const char *v[1] = {t->oid};
	PGresult *res = NULL;
	char err[256];
	int rc = -1;

	if (run(pg, bf_sql_biggest_leaf(), 1, v, &res, "partitions", problems) != 0)
		return -1;
	if (PQntuples(res) == 0) {
		bf_sbuf_printf(problems, "%s%s has no partition", problems->len ? "; " : "",
		               t->qtable);
		goto out;
	}
	if (bf_target_to_leaf(pg, t, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
	                      PQgetvalue(res, 0, 2), err, sizeof(err)) != 0) {
		bf_sbuf_printf(problems, "%s%s", problems->len ? "; " : "", err);
		goto out;
	}
	*leaves = atoll(PQgetvalue(res, 0, 3));
	rc = 0;
out:
	PQclear(res);
	return rc;
}

/* What the role lacks for the control schema and the lag limits, each named with its grant. */
static int grants(PGconn *pg, const bf_config *cfg, const bf_job_config *job, bf_sbuf *problems)
{
	const char *v[2] = {cfg->control_schema, bf_pressure_enabled(&job->lag) ? "t" : "f"};
	PGresult *res = NULL;
	size_t before = problems->len;

	if (run(pg, bf_sql_grants(), 2, v, &res, "grants", problems) != 0)
		return -1;
	for (int c = 0; c < 2; c++)
		if (!PQgetisnull(res, 0, c))
			bf_sbuf_printf(problems, "%s%s", problems->len ? "; " : "",
			               PQgetvalue(res, 0, c));
	PQclear(res);
	return problems->len == before ? 0 : -1;
}

/* The job's throttle_query, run once as the monitor will run it (extended protocol): its
 * number now, or why it cannot throttle anything. */
static int throttle_query(PGconn *pg, const bf_job_config *job, bf_sbuf *problems)
{
	PGresult *res;
	char why[400];
	double v;

	if (job->throttle_query == NULL)
		return 0;
	res = PQexecParams(pg, job->throttle_query, 0, NULL, NULL, NULL, NULL, 0);
	if (bf_conn_result_number(res, &v, why, sizeof(why)) != 0) {
		bf_sbuf_printf(problems, "%sthrottle_query: %s", problems->len ? "; " : "", why);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	printf("  throttle_query: %g now (throttle_above %g: %s)\n", v, job->throttle_above,
	       v > job->throttle_above ? "it would be throttled" : "it would run");
	return 0;
}

/* What the job does once its data is done (the file's lint has passed every step). */
static void show_after(const bf_job_config *job)
{
	static const char *const forms[] = {[BF_STEP_SQL] = "sql",
	                                    [BF_STEP_NOT_NULL] = "not_null",
	                                    [BF_STEP_CHECK] = "check",
	                                    [BF_STEP_INDEX] = "index"};
	size_t n = 0;
	bf_step_stmt *st = bf_steps_expand(job->then, job->n_then, job->name, "t", &n);
	char lt[32];

	bf_steps_free(st, n);
	if (job->dual_write)
		printf("  dual_write: a trigger applies set to the rows the application writes, "
		       "from before the first batch until backfillctl finish\n");
	if (job->verify)
		printf("  verify: every row checked against set once the data is done\n");
	if (job->n_then == 0)
		return;
	bf_units_format_duration(job->lock_timeout_ms, lt, sizeof(lt));
	printf("  then: %zu step%s (%zu statement%s), each under lock_timeout %s:\n", job->n_then,
	       job->n_then == 1 ? "" : "s", n, n == 1 ? "" : "s", lt);
	for (size_t i = 0; i < job->n_then; i++)
		printf("    %s: %s\n", forms[job->then[i].kind], job->then[i].text);
}

static int check_job(PGconn *pg, const bf_config *cfg, const bf_job_config *job, bf_sbuf *problems)
{
	PGresult *res = NULL, *ends = NULL;
	bf_sql_target *t = NULL;
	char *table_name = NULL, *keys = bf_target_key_literal(job);
	char *schema_sql = NULL, *estimate = NULL, *ends_sql = NULL, *backup_sql = NULL;
	const char *v[2] = {job->table, keys};
	enum bf_ckpt ckpt = BF_CKPT_JOB;
	long long rows = -1, leaves = 0;
	char pct[32];
	const char *pv[1] = {pct};
	int rc = -1;

	if (run(pg, "BEGIN READ WRITE", -1, NULL, NULL, "begin", problems) != 0)
		goto out;
	if (run(pg, bf_sql_resolve(), 2, v, &res, "catalog", problems) != 0)
		goto out;
	t = bf_target_resolve(pg, res, job, cfg->control_schema, &table_name, problems);
	PQclear(res);
	res = NULL;
	if (t == NULL)
		goto out;
	if (grants(pg, cfg, job, problems) != 0)
		goto out;
	schema_sql = bf_sql_schema(t->qschema);
	estimate = bf_sql_estimate(t);
	if (run(pg, schema_sql, -1, NULL, NULL, "control schema", problems) != 0)
		goto out;
	snprintf(pct, sizeof(pct), "%.6f", bf_sql_sample_percent(t->pages));
	if (run(pg, estimate, 1, pv, &res, "estimate", problems) != 0)
		goto out;
	rows = atoll(PQgetvalue(res, 0, 0));
	if (t->partitioned) {
		if (to_biggest_leaf(pg, t, &leaves, problems) != 0)
			goto out;
		ckpt = BF_CKPT_SLICE;
	}
	ends_sql = bf_sql_key_ends(t);
	t->fast_lock_ms = bf_pace_batch_target_ms(BF_FAST_LOCK_MS, job->max_commit_latency_ms);
	if (t->qbackup) {
		/* the batches name it: made here, gone with the rollback like the schema */
		backup_sql = bf_sql_backup_create(t);
		if (run(pg, backup_sql, -1, NULL, NULL, "backup table", problems) != 0)
			goto out;
	}
	if (compile(pg, t, ckpt, problems) != 0 ||
	    run(pg, ends_sql, 0, NULL, &ends, "first and last key", problems) != 0)
		goto out;
	printf("job %s (%s:%d): ok\n  table: %s\n  key: ", job->name, job->file, job->line,
	       table_name);
	for (size_t i = 0; i < t->n_key; i++)
		printf("%s%s %s", i ? ", " : "", t->qkey[i], t->key_type[i]);
	printf("\n  estimated rows to do: %lld (counted in a %.4g%% sample of the table)\n", rows,
	       bf_sql_sample_percent(t->pages));
	if (leaves > 0)
		printf("  walk: partition by partition, one slice per leaf (%lld leaves, %s%lld at "
		       "once); shown on the biggest, %s\n",
		       leaves, job->parallel ? "" : "auto: 1 to ",
		       (long long)(job->parallel ? job->parallel : BF_AUTOPAR_MAX), t->qtable);
	if (t->qbackup) {
		printf("  backup: ");
		for (size_t i = 0; i < t->n_bcols; i++)
			printf("%s%s", i ? ", " : "", t->qbcols[i]);
		printf(" (old values, by key) into %s, in each batch's statement; every batch "
		       "takes the SKIP LOCKED form\n",
		       t->qbackup);
	}
	if ((t->qbackup == NULL && show_batch(pg, job, t, true, ckpt, ends, problems) != 0) ||
	    show_batch(pg, job, t, false, ckpt, ends, problems) != 0 ||
	    throttle_query(pg, job, problems) != 0)
		goto out;
	show_after(job);
	rc = 0;
out:
	PQclear(res);
	PQclear(ends);
	PQclear(PQexec(pg, "ROLLBACK"));
	PQclear(PQexec(pg, "DEALLOCATE ALL"));
	bf_sql_target_free(t);
	free(table_name);
	free(keys);
	free(schema_sql);
	free(estimate);
	free(ends_sql);
	free(backup_sql);
	return rc;
}

int bf_check_run(const bf_config *cfg)
{
	int failed = 0;

	for (size_t i = 0; i < cfg->n_jobs; i++) {
		const bf_job_config *job = &cfg->jobs[i];
		/* like the daemon's connections (conn.c): the primary of a host list, and the
		 * operator's conninfo, expanded from dbname after them, wins */
		const char *keys[] = {"target_session_attrs", "connect_timeout", "dbname",
		                      "application_name", NULL};
		const char *vals[] = {"read-write", "10", job->database, "backfilld --check", NULL};
		PGconn *pg = PQconnectdbParams(keys, vals, 1);
		bf_sbuf problems = {0};

		if (PQstatus(pg) != CONNECTION_OK) {
			char *masked = bf_masked(PQerrorMessage(pg));

			bf_sbuf_printf(&problems, "cannot connect: %s", masked);
			free(masked);
			while (problems.len && problems.data[problems.len - 1] == '\n')
				problems.data[--problems.len] = '\0';
		} else {
			PQclear(PQexec(pg,
			               "SET statement_timeout = '30s'; SET lock_timeout = '1s'"));
			check_job(pg, cfg, job, &problems);
		}
		if (problems.len) {
			fprintf(stderr, "%s:%d: jobs.%s: %s\n", job->file, job->line, job->name,
			        problems.data);
			failed++;
		}
		bf_sbuf_free(&problems);
		PQfinish(pg);
	}
	if (failed) {
		fprintf(stderr, "backfilld --check: %d of %zu job%s cannot run\n", failed,
		        cfg->n_jobs, cfg->n_jobs == 1 ? "" : "s");
		return 1;
	}
	printf("backfilld --check: %zu job%s ok\n", cfg->n_jobs, cfg->n_jobs == 1 ? "" : "s");
	return 0;
}
