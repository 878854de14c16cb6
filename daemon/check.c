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

#include "backfilld/sql.h"
#include "backfilld/target.h"
#include "backfilld/util.h"

/* Take a result: on error append "what: message" to problems, clear it and return -1; else
 * hand it to *out (or clear it when out is NULL) and return 0. */
static int checked(PGconn *pg, PGresult *res, PGresult **out, const char *what, bf_sbuf *problems)
{
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		bf_sbuf_printf(problems, "%s%s: %s", problems->len ? "; " : "", what,
		               msg ? msg : PQerrorMessage(pg));
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

static int check_job(PGconn *pg, const bf_config *cfg, const bf_job_config *job, bf_sbuf *problems)
{
	PGresult *res = NULL;
	bf_sql_target *t = NULL;
	char *table_name = NULL, *keys = bf_target_key_literal(job);
	char *schema_sql = NULL, *batch = NULL, *estimate = NULL;
	const char *v[2] = {job->table, keys};
	long long rows = -1;
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
	schema_sql = bf_sql_schema(t->qschema);
	batch = bf_sql_batch(t, false, false, BF_CKPT_JOB);
	estimate = bf_sql_estimate(t);
	if (run(pg, schema_sql, -1, NULL, NULL, "control schema", problems) != 0)
		goto out;
	if (checked(pg, PQprepare(pg, "bf_check", batch, 0, NULL), NULL,
	            "set or where do not compile", problems) != 0)
		goto out;
	if (run(pg, estimate, 0, NULL, &res, "estimate", problems) != 0)
		goto out;
	if (PQntuples(res) > 0) {
		const char *p = strstr(PQgetvalue(res, 0, 0), "rows=");

		rows = p ? atoll(p + 5) : -1;
	}
	printf("job %s (%s:%d): ok\n  table: %s\n  key: ", job->name, job->file, job->line,
	       table_name);
	for (size_t i = 0; i < t->n_key; i++)
		printf("%s%s %s", i ? ", " : "", t->qkey[i], t->key_type[i]);
	printf("\n  estimated rows to do: %lld\n  batch statement:\n%s\n\n", rows, batch);
	rc = 0;
out:
	PQclear(res);
	PQclear(PQexec(pg, "ROLLBACK"));
	PQclear(PQexec(pg, "DEALLOCATE ALL"));
	bf_sql_target_free(t);
	free(table_name);
	free(keys);
	free(schema_sql);
	free(batch);
	free(estimate);
	return rc;
}

int bf_check_run(const bf_config *cfg)
{
	int failed = 0;

	for (size_t i = 0; i < cfg->n_jobs; i++) {
		const bf_job_config *job = &cfg->jobs[i];
		const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
		const char *vals[] = {job->database, "backfilld --check", "10", NULL};
		PGconn *pg = PQconnectdbParams(keys, vals, 1);
		bf_sbuf problems = {0};

		if (PQstatus(pg) != CONNECTION_OK) {
			bf_sbuf_printf(&problems, "cannot connect: %s", PQerrorMessage(pg));
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
