/*
 * finish.c - what a job does once its data is done (job_internal.h): the verify walk, then
 * its then: steps (the statements come from steps.h, their rows live in the control schema's
 * steps table).
 *
 * verify: true walks the whole table in key ranges, counting the rows whose assigned columns
 * differ from what set gives now; where it is stays in the job's row (one statement per range
 * reads the range and updates the row), so a restart resumes it. Any such row fails the job.
 *
 * The job is `finishing` while they run, on its own connection, one statement at a time:
 *   - a statement that may run in a transaction runs in one with its row's update (BEGIN;
 *     the statement; the row marked done; COMMIT): a crash never leaves a step done without
 *     its row saying so, nor the reverse;
 *   - CREATE INDEX CONCURRENTLY cannot: before each attempt the index is looked up by name,
 *     a valid one counts as built, an INVALID one (a failed or cancelled build) is dropped
 *     with DROP INDEX CONCURRENTLY first;
 *   - every statement runs under the job's lock_timeout and without statement_timeout (a
 *     VALIDATE or an index build takes as long as the table needs, holding only locks that
 *     let the application read and write); a lock timeout rolls back and the step is tried
 *     again after a back-off, as many times as it takes, never queueing behind traffic;
 *     another error fails the job with it, the data left backfilled.
 * Between statements the job's state stage runs as between batches: pause, cancel, the
 * window and the lag limits hold steps back as they hold batches. Inside a step's
 * transaction nothing else runs: a pause waits for its COMMIT or ROLLBACK, so no lock the
 * statement took is held while paused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfilld/job_internal.h"
#include "backfilld/log.h"
#include "backfilld/sqltext.h"
#include "backfilld/steps.h"
#include "backfilld/target.h"
#include "backfilld/util.h"

#define STEP_BACKOFF_MIN_MS 1000
#define STEP_BACKOFF_MAX_MS 60000

void bf_finish_begin(bf_job *j, const char *done_reason)
{
	if ((j->cfg->n_then == 0 && !j->cfg->verify) || j->env.dry_run) {
		bf_job_set_state(j, BF_JOB_DONE, done_reason);
		return;
	}
	j->finishing = true;
	j->verify_fresh = true; /* a new end of the data: verified from the first key */
	j->verify_known = j->verify_over = false;
	bf_log(BF_LOG_INFO, j->cfg->name, "data done, finishing", "verify=%s steps=%zu",
	       j->cfg->verify ? "true" : "false", j->cfg->n_then);
	bf_job_set_state(j, BF_JOB_FINISHING, j->cfg->verify ? "verify next" : "then: steps next");
}

void bf_finish_free(bf_job *j)
{
	bf_finish_forget(j);
	bf_strv_free(j->verify_cursor, j->target ? j->target->n_key : 0);
	j->verify_cursor = NULL;
	free(j->verify_keys);
	j->verify_keys = NULL;
	bf_steps_free(j->steps, j->n_steps);
	j->steps = NULL;
	j->n_steps = 0;
}

void bf_finish_forget(bf_job *j)
{
	j->step_session = j->steps_loaded = false;
	j->step_txn = j->step_checked = j->step_invalid = j->step_ran = j->step_recorded = false;
	free(j->step_error);
	j->step_error = NULL;
}

/* Does the state say which step is in hand? */
static bool shown(const bf_job *j)
{
	char head[48];

	snprintf(head, sizeof(head), "step %zu/%zu", j->step_at + 1, j->n_steps);
	return j->state == BF_JOB_FINISHING && j->reason &&
	       strncmp(j->reason, head, strlen(head)) == 0 &&
	       (j->reason[strlen(head)] == ':' || j->reason[strlen(head)] == ' ');
}

/* "step 2/4: ALTER TABLE ..." (the statement cut short), with what it waits for. */
static void show(bf_job *j, const char *waiting)
{
	char reason[256];

	snprintf(reason, sizeof(reason), "step %zu/%zu%s%s: %.160s", j->step_at + 1, j->n_steps,
	         waiting ? " " : "", waiting ? waiting : "", j->steps[j->step_at].sql);
	bf_job_set_state(j, BF_JOB_FINISHING, reason);
}

static void send_load(bf_job *j)
{
	char *qs = bf_setup_quoted_schema(j);
	char **texts = bf_xcalloc(j->n_steps ? j->n_steps : 1, sizeof(*texts));
	char *list, *sql;
	const char *v[2];

	if (qs == NULL) { /* the job failed: step() again, which lets go */
		free(texts);
		bf_job_arm_timer(j, 0);
		return;
	}
	for (size_t i = 0; i < j->n_steps; i++)
		texts[i] = j->steps[i].sql;
	list = bf_strv_literal(texts, j->n_steps);
	sql = bf_sql_steps_load(qs);
	v[0] = j->cfg->name;
	v[1] = list;
	j->step_sub = STEP_LOAD;
	bf_job_send(j, PH_STEP, sql, 2, v);
	free(sql);
	free(list);
	free(texts);
	free(qs);
}

/* Step step_at's row: done (error NULL), or this attempt's error. */
static void send_record(bf_job *j, const char *error, bool retried)
{
	char *qs = bf_setup_quoted_schema(j);
	char *sql, pos[24];
	const char *v[4];

	if (qs == NULL) { /* the job failed: step() again, which lets go */
		bf_job_arm_timer(j, 0);
		return;
	}
	snprintf(pos, sizeof(pos), "%zu", j->step_at + 1);
	v[0] = j->cfg->name;
	v[1] = pos;
	v[2] = error;
	v[3] = retried ? "t" : "f";
	sql = bf_sql_step_record(qs);
	j->step_sub = STEP_RECORD;
	bf_job_send(j, PH_STEP, sql, 4, v);
	free(sql);
	free(qs);
}

static void send_index_lookup(bf_job *j)
{
	const char *v[2] = {j->steps[j->step_at].index, j->target->qtable};

	j->step_sub = STEP_INDEX;
	bf_job_send(j, PH_STEP, bf_sql_step_index(), 2, v);
}

/* The INVALID index a failed build left, dropped without blocking the table. */
static void send_drop_invalid(bf_job *j)
{
	char err[BF_JOB_ERR_LEN];
	char *qnsp = bf_quote_ident(bf_conn_pg(j->conn), j->target->nsp, err, sizeof(err));
	char *qidx = qnsp ? bf_quote_ident(bf_conn_pg(j->conn), j->steps[j->step_at].index, err,
	                                   sizeof(err))
	                  : NULL;
	char *sql;

	if (qidx == NULL) {
		free(qnsp);
		bf_job_fail_with(j, err);
		bf_job_arm_timer(j, 0);
		return;
	}
	bf_log(BF_LOG_WARN, j->cfg->name,
	       "an INVALID index is left from a failed build: dropping it", "index=%s",
	       j->steps[j->step_at].index);
	sql = bf_xasprintf("DROP INDEX CONCURRENTLY IF EXISTS %s.%s", qnsp, qidx);
	j->step_sub = STEP_DROP;
	bf_job_send_simple(j, PH_STEP, sql);
	free(sql);
	free(qidx);
	free(qnsp);
}

static void send_statement(bf_job *j)
{
	const bf_step_stmt *st = &j->steps[j->step_at];
	char q[512];

	bf_log(BF_LOG_INFO, j->cfg->name, "then step", "step=%zu/%zu sql=%s", j->step_at + 1,
	       j->n_steps, bf_log_q(q, sizeof(q), st->sql));
	j->step_sent_ms = bf_mono_ms();
	j->step_sub = STEP_RUN;
	/* the operator's SQL: the extended protocol, one statement */
	bf_job_send(j, PH_STEP, st->sql, 0, NULL);
}

/* Statement step_at is done and recorded: the next one. */
static void advance(bf_job *j)
{
	j->step_at++;
	j->retries = 0;
	j->step_checked = j->step_invalid = j->step_ran = j->step_recorded = false;
}

/* The next statement's turn (or the job done, after the last), after `wait`. */
static void next_statement(bf_job *j, int64_t wait)
{
	const bf_step_stmt *st;

	if (j->steps == NULL || j->step_at >= j->n_steps) {
		bf_log(BF_LOG_INFO, j->cfg->name, "then: steps done", "steps=%zu", j->n_steps);
		j->finishing = false;
		bf_job_set_state(j, BF_JOB_DONE, NULL);
		bf_job_arm_timer(j, 0); /* the state written first, then the job lets go */
		return;
	}
	st = &j->steps[j->step_at];
	if (j->step_ran) {
		if (!j->step_recorded) {
			send_record(j, NULL, false);
		} else { /* inside the step's transaction: its row with it */
			j->step_sub = STEP_COMMIT;
			bf_job_send_simple(j, PH_STEP, "COMMIT");
		}
		return;
	}
	if (!j->step_txn && bf_mono_ms() < j->step_retry_at)
		wait = j->step_retry_at - bf_mono_ms(); /* the back-off after a lock timeout */
	if (wait > 0 && !j->step_txn) {
		bf_job_arm_timer(j, wait); /* or the gate's pace or rate, between statements */
		return;
	}
	if (!j->step_txn && !j->step_checked && !shown(j)) {
		/* the state says which step runs before it runs: a VALIDATE may take hours */
		show(j, NULL);
		bf_job_arm_timer(j, 0);
		return;
	}
	if (st->index) {
		if (!j->step_checked)
			send_index_lookup(j);
		else if (j->step_invalid)
			send_drop_invalid(j);
		else
			send_statement(j);
		return;
	}
	if (!j->step_txn) {
		j->step_sub = STEP_BEGIN;
		bf_job_send_simple(j, PH_STEP, "BEGIN");
		return;
	}
	send_statement(j);
}

/* The verify walk's next statement: where it is, a range, or its verdict. */
static void verify_next(bf_job *j, int64_t wait)
{
	char *sql, *qs, lim[24], msg[BF_JOB_ERR_LEN];
	size_t nk = j->target->n_key;
	bf_quoted_set set;
	const char **v;

	if (!j->verify_known) {
		const char *name[1] = {j->cfg->name};

		qs = bf_setup_quoted_schema(j);
		if (qs == NULL) { /* the job failed: step() again, which lets go */
			bf_job_arm_timer(j, 0);
			return;
		}
		sql = j->verify_fresh ? bf_sql_verify_reset(qs) : bf_sql_verify_read(j->target);
		j->step_sub = j->verify_fresh ? VERIFY_RESET : VERIFY_READ;
		bf_job_send(j, PH_STEP, sql, 1, name);
		free(sql);
		free(qs);
		return;
	}
	if (j->verify_over) {
		snprintf(msg, sizeof(msg),
		         "verify: %lld of %lld rows differ from what set gives now (first keys: %s)"
		         "; the data is left as it is",
		         (long long)j->verify_bad, (long long)j->verify_rows,
		         j->verify_keys ? j->verify_keys : "");
		bf_job_fail_with(j, msg);
		bf_job_arm_timer(j, 0);
		return;
	}
	if (wait > 0) {
		bf_job_arm_timer(j, wait);
		return;
	}
	if (!bf_setup_quoted_set(j, &set))
		return;
	v = bf_xcalloc(2 + nk, sizeof(*v));
	snprintf(lim, sizeof(lim), "%lld", (long long)j->cfg->max_batch_size);
	v[0] = j->cfg->name;
	v[1] = lim;
	for (size_t i = 0; j->verify_cursor && i < nk; i++)
		v[2 + i] = j->verify_cursor[i];
	sql = bf_sql_verify_range(j->target, j->verify_cursor == NULL, set.qcols, set.exprs, set.n);
	j->step_sub = VERIFY_RANGE;
	bf_job_send(j, PH_STEP, sql, j->verify_cursor ? 2 + (int)nk : 2, v);
	free(v);
	free(sql);
	bf_quoted_set_free(&set);
}

/* Where the walk is, from its row (columns 1.., sql.h bf_sql_verify_read). */
static void verify_take(bf_job *j, const PGresult *res)
{
	size_t nk = j->target->n_key;
	char reason[160];

	j->verify_rows = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	j->verify_bad = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	free(j->verify_keys);
	j->verify_keys = PQgetisnull(res, 0, 3) ? NULL : bf_xstrdup(PQgetvalue(res, 0, 3));
	bf_strv_free(j->verify_cursor, nk);
	j->verify_cursor = PQgetisnull(res, 0, 4) ? NULL : bf_job_values(res, 4, nk);
	snprintf(reason, sizeof(reason), "verifying: %lld rows read, %lld differ",
	         (long long)j->verify_rows, (long long)j->verify_bad);
	if (j->state == BF_JOB_FINISHING)
		bf_job_set_reason(j, reason); /* logged when it starts and ends, not each range */
	else
		bf_job_set_state(j, BF_JOB_FINISHING, reason);
}

bool bf_finish_midway(bf_job *j)
{
	return j->finishing && (j->step_txn || j->step_error) && bf_finish_next(j, 0);
}

bool bf_finish_next(bf_job *j, int64_t wait)
{
	if (!j->finishing)
		return false;
	if (j->steps == NULL && j->n_steps == 0)
		j->steps = bf_steps_expand(j->cfg->then, j->cfg->n_then, j->cfg->name,
		                           j->target->qtable, &j->n_steps);
	if (j->step_error) {
		/* a failed statement: out of its transaction first, then its row says why */
		if (j->step_txn) {
			j->step_sub = STEP_ROLLBACK;
			bf_job_send_simple(j, PH_STEP, "ROLLBACK");
		} else {
			send_record(j, j->step_error, j->step_retry);
		}
		return true;
	}
	if (j->cfg->verify && !(j->verify_over && j->verify_bad == 0)) {
		verify_next(j, wait);
		return true;
	}
	if (!j->step_session) {
		j->step_sub = STEP_SESSION;
		bf_job_send_simple(j, PH_STEP, "SET statement_timeout = 0");
		return true;
	}
	if (!j->steps_loaded) {
		send_load(j);
		return true;
	}
	next_statement(j, wait);
	return true;
}

/* A failed attempt recorded: again after a back-off, or the job fails. */
static void attempt_recorded(bf_job *j)
{
	char msg[BF_JOB_ERR_LEN + 64], waiting[64];

	if (!j->step_retry) {
		snprintf(msg, sizeof(msg), "then step %zu/%zu failed (the data is backfilled): %s",
		         j->step_at + 1, j->n_steps, j->step_error);
		bf_job_fail_with(j, msg);
		free(j->step_error);
		j->step_error = NULL;
		return;
	}
	j->retries++;
	snprintf(waiting, sizeof(waiting), "waiting for a lock (attempt %lld)",
	         (long long)j->retries + 1);
	show(j, waiting); /* written at once; the statement goes again after the back-off */
	free(j->step_error);
	j->step_error = NULL;
	j->step_checked = j->step_invalid = j->step_ran = false;
	j->step_retry_at =
	        bf_mono_ms() +
	        (j->stopping ? 0
	                     : bf_backoff_ms(j->retries, STEP_BACKOFF_MIN_MS, STEP_BACKOFF_MAX_MS));
}

void bf_finish_take(bf_job *j, const PGresult *res)
{
	switch (j->step_sub) {
	case STEP_SESSION:
		j->step_session = true;
		break;
	case STEP_LOAD:
		j->steps_loaded = true;
		j->step_at = PQgetisnull(res, 0, 0)
		                     ? j->n_steps
		                     : (size_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10) - 1;
		break;
	case STEP_INDEX:
		j->step_checked = true;
		j->step_invalid = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] != 't';
		/* a valid index of that name on the table: built by an earlier attempt */
		j->step_ran = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
		break;
	case STEP_DROP:
		j->step_invalid = false;
		break;
	case STEP_BEGIN:
		j->step_txn = true;
		break;
	case STEP_RUN:
		j->step_ran = true;
		bf_log(BF_LOG_INFO, j->cfg->name, "then step done", "step=%zu/%zu ms=%lld",
		       j->step_at + 1, j->n_steps, (long long)(bf_mono_ms() - j->step_sent_ms));
		break;
	case STEP_RECORD:
		if (j->step_error) {
			attempt_recorded(j);
			break;
		}
		j->step_recorded = true;
		if (!j->step_txn)
			advance(j);
		break;
	case STEP_COMMIT:
		j->step_txn = false;
		advance(j);
		break;
	case STEP_ROLLBACK:
		j->step_txn = false;
		break;
	case VERIFY_RESET:
		j->verify_known = true;
		j->verify_fresh = false;
		j->verify_rows = j->verify_bad = 0;
		bf_strv_free(j->verify_cursor, j->target->n_key);
		j->verify_cursor = NULL;
		free(j->verify_keys);
		j->verify_keys = NULL;
		break;
	case VERIFY_READ:
		j->verify_known = true;
		verify_take(j, res);
		j->verify_over = PQgetvalue(res, 0, 0)[0] == 't'; /* over, and nothing differed */
		break;
	case VERIFY_RANGE:
		verify_take(j, res);
		if (strtoll(PQgetvalue(res, 0, 0), NULL, 10) > 0)
			break;
		j->verify_over = true;
		if (j->verify_bad == 0)
			bf_log(BF_LOG_INFO, j->cfg->name, "verify: every row is what set gives",
			       "rows=%lld", (long long)j->verify_rows);
		break;
	}
}

bool bf_finish_error(bf_job *j, enum job_phase ph, const char *code, const char *text)
{
	if (ph != PH_STEP || j->step_sub == STEP_ROLLBACK)
		return false;
	if (j->step_sub == STEP_SESSION || j->step_sub == STEP_LOAD || j->step_sub == STEP_RECORD ||
	    j->step_sub == STEP_COMMIT)
		return false; /* our own statements: as any other error of the job */
	free(j->step_error);
	j->step_error = bf_xstrdup(text);
	/* a lock the statement could not take within lock_timeout, or a conflict: nothing was
	 * done and nothing waits behind it; again later (a statement cancelled at shutdown:
	 * again at the next start) */
	j->step_retry = strcmp(code, "55P03") == 0 || strcmp(code, "40P01") == 0 ||
	                strcmp(code, "40001") == 0 || j->stopping;
	if (j->step_retry)
		bf_log(BF_LOG_INFO, j->cfg->name, "then step could not take its lock, will retry",
		       "step=%zu/%zu attempt=%lld", j->step_at + 1, j->n_steps,
		       (long long)j->retries + 1);
	return true;
}
