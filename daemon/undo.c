/*
 * undo.c - backfillctl undo (job_internal.h): the old values a job with `backup: true` kept,
 * put back by the job itself, as a walk of its backup table in key order.
 *
 * An undo is asked for in the job's row (requested_state 'undo', on a job that is over:
 * done, failed or cancelled; undo_to_null for a job without a backup whose where was `column
 * IS NULL`: its rows get NULL back where the column is still what set gives) and begins when
 * the job registers (jobsetup.c checks it can run): its first statement marks the
 * row (undo_cursor, never NULL again) and takes the request, so a job that is undoing stays
 * so across restarts, pauses and failures, whatever its state shows. Each range is one
 * statement that puts back the rows still as the job wrote them, counts those the application
 * changed since (and keeps their first keys) and moves the undo's cursor, together: a crash
 * loses nothing and counts nothing twice. Between ranges the job's state stage runs as between
 * batches (pause, cancel, window, lag, pace). The job is `undoing` meanwhile and `undone`
 * once the backup is walked; the backup stays until backfillctl reset or drop-backup.
 */
#include <stdio.h>
#include <stdlib.h>

#include "backfilld/job_internal.h"
#include "backfilld/log.h"
#include "backfilld/util.h"

void bf_undo_forget(bf_job *j)
{
	j->undo_known = false;
}

void bf_undo_free(bf_job *j)
{
	bf_strv_free(j->undo_cursor, j->target ? j->target->n_key : 0);
	j->undo_cursor = NULL;
	free(j->undo_keys);
	j->undo_keys = NULL;
}

/* What the job's row says of the undo: rows put back, rows skipped and their first keys
 * (columns from `col` on). */
static void take_counts(bf_job *j, const PGresult *res, int col)
{
	char reason[BF_JOB_ERR_LEN];

	j->undo_rows = strtoll(PQgetvalue(res, 0, col), NULL, 10);
	j->undo_skipped = strtoll(PQgetvalue(res, 0, col + 1), NULL, 10);
	free(j->undo_keys);
	j->undo_keys = PQgetisnull(res, 0, col + 2) || PQgetvalue(res, 0, col + 2)[0] == '\0'
	                       ? NULL
	                       : bf_xstrdup(PQgetvalue(res, 0, col + 2));
	snprintf(reason, sizeof(reason), "undoing: %lld rows put back, %lld skipped",
	         (long long)j->undo_rows, (long long)j->undo_skipped);
	if (j->state == BF_JOB_UNDOING)
		bf_job_set_reason(j, reason); /* a figure of progress, not logged */
}

static void send_begin(bf_job *j)
{
	char *sql = bf_sql_undo_begin(j->target);
	const char *v[2] = {j->cfg->name, j->target->qbackup};

	j->undo_sub = UNDO_BEGIN;
	bf_job_send(j, PH_UNDO, sql, 2, v);
	free(sql);
}

/* The statement of the next range: from the backup, or (undo --to-null) from the table,
 * NULL where the one column set assigns is still what set gives. NULL after failing the job. */
static char *range_sql(bf_job *j)
{
	bf_quoted_set set;
	char *sql;

	if (!j->undo_to_null)
		return bf_sql_undo_range(j->target, j->undo_cursor == NULL);
	if (!bf_setup_quoted_set(j, &set))
		return NULL;
	sql = bf_sql_undo_null_range(j->target, j->undo_cursor == NULL, set.qcols[0], set.exprs[0]);
	bf_quoted_set_free(&set);
	return sql;
}

static void send_range(bf_job *j)
{
	size_t nk = j->target->n_key;
	const char **v;
	char lim[24];
	char *sql = range_sql(j);

	if (sql == NULL)
		return; /* the job failed, its timer armed: step() again, which lets go */
	v = bf_xcalloc(2 + nk, sizeof(*v));
	j->batch_keys = bf_gate_batch_keys(&j->gate, j->cfg, j->batch_size, j->cfg->min_batch_size);
	snprintf(lim, sizeof(lim), "%lld", (long long)j->batch_keys);
	v[0] = j->cfg->name;
	v[1] = lim;
	for (size_t i = 0; j->undo_cursor && i < nk; i++)
		v[2 + i] = j->undo_cursor[i];
	j->undo_sub = UNDO_RANGE;
	bf_job_batch_begins(j); /* its monitor's idle baseline leaves it out, as a batch */
	bf_job_send(j, PH_UNDO, sql, j->undo_cursor ? 2 + (int)nk : 2, v);
	free(sql);
	free(v);
}

/* The backup is walked: undone, with what was skipped. */
static void over(bf_job *j)
{
	char reason[BF_JOB_ERR_LEN], q[256];

	if (j->undo_skipped > 0)
		snprintf(reason, sizeof(reason),
		         "undone: %lld rows put back, %lld skipped (changed since the job wrote "
		         "them; first keys: %s)",
		         (long long)j->undo_rows, (long long)j->undo_skipped,
		         j->undo_keys ? j->undo_keys : "");
	else
		snprintf(reason, sizeof(reason), "undone: %lld rows put back",
		         (long long)j->undo_rows);
	bf_log(BF_LOG_INFO, j->cfg->name, "undo done", "restored=%lld skipped=%lld keys=%s",
	       (long long)j->undo_rows, (long long)j->undo_skipped,
	       bf_log_q(q, sizeof(q), j->undo_keys ? j->undo_keys : "-"));
	j->undoing = false;
	bf_job_set_state(j, BF_JOB_UNDONE, reason);
	bf_job_arm_timer(j, 0); /* the state written first, then the job lets go */
}

bool bf_undo_next(bf_job *j, int64_t wait)
{
	if (!j->undoing)
		return false;
	if (!j->undo_known)
		send_begin(j);
	else if (j->undo_over)
		over(j);
	else if (j->sleep_due && j->cfg->sleep_ms > 0)
		bf_job_arm_timer(j, j->cfg->sleep_ms);
	else if (wait > 0)
		bf_job_arm_timer(j, wait);
	else
		send_range(j);
	j->sleep_due = false;
	return true;
}

void bf_undo_take(bf_job *j, const PGresult *res)
{
	size_t nk = j->target->n_key;
	int64_t read;
	char msg[BF_JOB_ERR_LEN], q[256];

	if (j->undo_sub == UNDO_BEGIN) {
		if (PQntuples(res) != 1 || PQgetvalue(res, 0, 0)[0] != 't') {
			/* the daemon checked it at registration: dropped since */
			snprintf(
			        msg, sizeof(msg),
			        "undo: the backup table %s is gone (dropped?): nothing to put back",
			        j->target->qbackup);
			j->undoing = false;
			bf_job_fail_with(j, msg);
			return;
		}
		j->undo_known = true;
		take_counts(j, res, 1);
		bf_job_take_requested(j, res, 4);
		bf_strv_free(j->undo_cursor, nk);
		j->undo_cursor = PQgetvalue(res, 0, 5)[0] == 't' ? bf_job_values(res, 6, nk) : NULL;
		j->backup_bytes = strtoll(PQgetvalue(res, 0, 6 + (int)nk), NULL, 10);
		j->undo_over = false;
		bf_log(BF_LOG_INFO, j->cfg->name,
		       j->undo_cursor ? "undo resumes from its checkpoint" : "undo begins",
		       "from=%s restored=%lld skipped=%lld",
		       bf_log_q(q, sizeof(q), j->undo_to_null ? "null" : j->target->qbackup),
		       (long long)j->undo_rows, (long long)j->undo_skipped);
		return;
	}
	j->last_batch_ms = bf_mono_ms() - j->batch_sent_ms;
	if (PQntuples(res) != 1) {
		bf_job_fail_with(j, "undo: the job's row disappeared from the control table (reset "
		                    "while undoing?)");
		return;
	}
	read = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	take_counts(j, res, 1);
	bf_job_take_requested(j, res, 4);
	j->retries = 0;
	j->batch_size = bf_batchsize_observe(&j->ctl, j->batch_keys, j->last_batch_ms);
	bf_gate_took(&j->gate, bf_mono_ms(), read, j->last_batch_ms);
	if (read > 0) {
		bf_strv_free(j->undo_cursor, nk);
		j->undo_cursor = bf_job_values(res, 5, nk);
	}
	j->undo_over = read < j->batch_keys;
	j->sleep_due = !j->undo_over;
}
