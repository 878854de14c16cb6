/*
 * walk.c - a job walking its pass (job_internal.h): the batches, and the closing read after
 * the pass with what its verdict means for the job.
 *
 * A batch is one statement that locks, updates and checkpoints its range (sql.h); two
 * prepared forms, the fast path and the SKIP LOCKED one. Its result moves the cursor, feeds
 * the batch-size controller, the rate, the gate's bucket and the closing read's record of
 * the pass. The closing read's decisions are closing.c's; here they are sent, logged and
 * turned into the job's state: done, failed (rows it cannot change), or a sweep pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfilld/job_internal.h"
#include "backfilld/lagmon.h"
#include "backfilld/log.h"
#include "backfilld/pace.h"
#include "backfilld/util.h"

#define SKIP_LOCKED_STREAK 10 /* batches with SKIP LOCKED after the fast path met a lock */

/* The two prepared forms of a batch (see sql.h): the fast path, a plain UPDATE of the range
 * under a short lock_timeout, and the SKIP LOCKED form it falls back to. The first batch of
 * a pass has no cursor and goes unprepared: it runs once per pass. */
static const char *const stmt_names[2] = {"bf_fast", "bf_skip"};

static enum bf_ckpt ckpt_of(const bf_job *j)
{
	return j->parent ? BF_CKPT_SLICE : BF_CKPT_JOB;
}

void bf_walk_prepare(bf_job *j)
{
	char err[BF_JOB_ERR_LEN];
	char *sql;

	/* the fast path's rows stay locked while it waits for a row the application holds: no
	 * longer than the budget (pace.h), as for a batch's time; prepared once per connection,
	 * so a reloaded budget applies from the next one */
	j->target->fast_lock_ms =
	        bf_pace_batch_target_ms(BF_FAST_LOCK_MS, j->cfg->max_commit_latency_ms);
	sql = bf_sql_batch(j->target, false, j->prepared == 0, ckpt_of(j));

	j->phase = PH_PREPARE;
	if (bf_conn_send_prepare(j->conn, stmt_names[j->prepared], sql, err, sizeof(err)) != 0)
		bf_job_send_failed(j, err);
	free(sql);
}

void bf_walk_batch(bf_job *j)
{
	size_t n = j->target->n_key;
	const char **v = bf_xcalloc(4 + 2 * n, sizeof(*v));
	char batch[32], rate[32], pass[16];
	size_t k = 0;
	char err[BF_JOB_ERR_LEN];
	int rc;

	j->batch_keys = bf_gate_batch_keys(&j->gate, j->cfg, j->batch_size, j->cfg->min_batch_size);
	snprintf(batch, sizeof(batch), "%lld", (long long)j->batch_keys);
	/* a slice writes its own rate, and its slice number as $4 */
	snprintf(rate, sizeof(rate), "%.3f",
	         j->parent ? bf_rate_per_second(&j->rate, bf_mono_ms())
	                   : bf_slices_rate(j, bf_mono_ms()));
	snprintf(pass, sizeof(pass), "%d", j->parent ? j->slice : j->pass);
	v[k++] = j->cfg->name;
	v[k++] = batch;
	v[k++] = rate;
	v[k++] = pass;
	for (size_t i = 0; j->cursor && i < n; i++)
		v[k++] = j->cursor[i];
	for (size_t i = 0; i < n; i++)
		v[k++] = j->high[i];
	j->phase = PH_BATCH;
	bf_job_batch_begins(j);
	/* the fast path, unless it met a lock lately: then SKIP LOCKED for a while, since the
	 * application is busy with these rows and each failed try would cost a batch. Sweeps
	 * are SKIP LOCKED: they look for rows that were held, and the form tells the rows it
	 * locked from those it changed (closing.h: rows the UPDATE leaves unchanged) */
	j->fast = j->skip_locked == 0 && j->pass == 1 && j->target->qbackup == NULL;
	if (j->skip_locked > 0)
		j->skip_locked--;
	if (j->cursor) {
		rc = bf_conn_send_prepared(j->conn, stmt_names[j->fast ? 0 : 1], (int)k, v, err,
		                           sizeof(err));
	} else {
		char *sql = bf_sql_batch(j->target, true, j->fast, ckpt_of(j));

		rc = bf_conn_send_params(j->conn, sql, (int)k, v, err, sizeof(err));
		free(sql);
	}
	free(v);
	if (rc != 0)
		bf_job_send_failed(j, err);
}

/* The session's plans and statement_timeout for `plan` (see closing.c): the batches keep
 * the session bf_sql_session set up. */
static void send_plan(bf_job *j, bf_plan plan)
{
	int64_t ms = plan == BF_PLAN_ONE_SCAN ? bf_closing_one_scan_ms(j->cfg->statement_timeout_ms)
	                                      : j->cfg->statement_timeout_ms;
	char timeout[32];
	const char *v[2] = {plan == BF_PLAN_RANGES ? "true" : "false", timeout};

	snprintf(timeout, sizeof(timeout), "%lld", (long long)ms);
	j->plan_sent = plan;
	bf_job_send(j, PH_PLAN, bf_sql_plan(), 2, v);
}

/* "after (a, b) up to (c, d)": a batch's keys, from the cursor (NULL: the first key) to the
 * batch's last key as the result gives it (columns 4..). */
static char *key_range(char *const *cursor, const PGresult *res, size_t n)
{
	bf_sbuf sb = {0};

	bf_sbuf_append(&sb, cursor ? "after (" : "from the first key");
	for (size_t i = 0; cursor && i < n; i++)
		bf_sbuf_printf(&sb, "%s%s", i ? ", " : "", cursor[i]);
	bf_sbuf_append(&sb, cursor ? ") up to (" : " up to (");
	for (size_t i = 0; i < n; i++)
		bf_sbuf_printf(&sb, "%s%s", i ? ", " : "", PQgetvalue(res, 0, 4 + (int)i));
	bf_sbuf_append(&sb, ")");
	return bf_sbuf_steal(&sb);
}

/* A batch's time tells the controller the cost of its keys (a full range only; a batch the
 * pace made short teaches it nothing: batchsize.h). */
static void adapt_batch_size(bf_job *j)
{
	j->batch_size = bf_batchsize_observe(&j->ctl, j->batch_keys, j->last_batch_ms);
	if (bf_batchsize_floor_news(&j->ctl))
		bf_log(BF_LOG_WARN, j->cfg->name,
		       "batch size at its floor and batches still take longer than the target",
		       "batch=%lld ms=%lld target_ms=%lld", (long long)j->batch_size,
		       (long long)j->last_batch_ms, (long long)j->cfg->target_batch_time_ms);
}

void bf_walk_take_batch(bf_job *j, const PGresult *res)
{
	size_t n = j->target->n_key;
	int64_t now = bf_mono_ms();
	int64_t rows, unchanged;
	char *range = NULL;

	if (PQntuples(res) != 1 && j->parent) {
		/* the slice's row or its leaf is gone: its registration tells which */
		j->registered = false;
		return;
	}
	if (PQntuples(res) != 1) {
		bf_job_fail_with(
		        j,
		        "the job's row disappeared from the control table (reset while running?)");
		return;
	}
	rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	unchanged = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
	j->last_batch_ms = now - j->batch_sent_ms;
	bf_job_counts_batch(&(j->parent ? j->parent : j)->counts, j->last_batch_ms);
	j->rows_done += rows;
	j->rows_new += rows;
	j->retries = 0;
	bf_rate_add(&j->rate, now, rows);
	j->pass_end = PQgetvalue(res, 0, 1)[0] == 't';
	bf_job_take_requested(j, res, 2);
	if (unchanged > 0)
		range = key_range(j->cursor, res, n);
	bf_strv_free(j->cursor, n);
	j->cursor = bf_job_values(res, 4, n);
	bf_closing_batch(&j->closing, j->cursor, j->batch_keys, rows, unchanged, range,
	                 j->pass_end);
	free(range);
	bf_gate_took(&j->gate, now, rows, j->last_batch_ms);
	if (j->lagmon)
		bf_lagmon_wal(j->lagmon, PQgetvalue(res, 0, 4 + (int)n));
	if (j->target->qbackup)
		(j->parent ? j->parent : j)->backup_bytes =
		        strtoll(PQgetvalue(res, 0, 5 + (int)n), NULL, 10);
	if (!j->pass_end)
		adapt_batch_size(j);
	if (j->state == BF_JOB_RUNNING && j->reason)
		bf_job_set_state(j, BF_JOB_RUNNING, NULL); /* a retry succeeded */
	bf_log(BF_LOG_DEBUG, j->cfg->name, "batch", "rows=%lld ms=%lld batch=%lld pass=%d pace=%d",
	       (long long)rows, (long long)j->last_batch_ms, (long long)j->batch_size, j->pass,
	       bf_pace_percent(&j->gate.pace));
}

/* Rows that match `where`, that no other session holds, and that the UPDATE leaves as they
 * are, sweep after sweep: not a lock to wait for. Fails the job, naming the likely cause. */
static void fail_stuck(bf_job *j)
{
	char msg[BF_JOB_ERR_LEN * 2];
	const char *triggers = j->target->triggers;

	snprintf(msg, sizeof(msg),
	         "%lld rows match where, no other session holds them, and the UPDATE leaves them "
	         "unchanged (last seen in the keys %s): %s%s",
	         (long long)j->closing.pass_unchanged,
	         j->closing.stuck_range ? j->closing.stuck_range : "",
	         triggers ? "a BEFORE UPDATE trigger returning NULL for them? BEFORE UPDATE "
	                    "triggers: "
	                  : "no BEFORE UPDATE trigger on the table",
	         triggers ? triggers : "");
	bf_job_fail_with(j, msg);
}

void bf_walk_take_closing(bf_job *j, const PGresult *res)
{
	size_t n = j->target->n_key;
	char **end = PQnfields(res) >= 2 + (int)n ? bf_job_values(res, 2, n) : NULL;
	int64_t now = bf_mono_ms();
	bf_closing_result r =
	        bf_closing_take(&j->closing, strtoll(PQgetvalue(res, 0, 0), NULL, 10),
	                        PQnfields(res) > 1 && PQgetvalue(res, 0, 1)[0] == 't', end);
	char reason[128];
	const char *plus = r.all_counted ? "" : "+";

	bf_strv_free(end, n);
	j->retries = 0;
	bf_gate_took(&j->gate, now, 0, now - j->batch_sent_ms); /* the pace pauses after it */
	if (r.locating)
		bf_log(BF_LOG_INFO, j->cfg->name, "rows left after the pass, locating them",
		       "remaining=%lld mode=%s", (long long)r.left, bf_closing_mode(&j->closing));
	if (r.verdict == BF_CLOSING_NEXT)
		return;
	j->pass_end = false;
	if (r.verdict == BF_CLOSING_DONE) {
		bf_log(BF_LOG_INFO, j->cfg->name, "no row left to do",
		       "rows=%lld passes=%d read=%s", (long long)j->rows_done, j->pass, r.how);
		bf_finish_begin(j, NULL);
		return;
	}
	if (r.verdict == BF_CLOSING_STUCK) {
		fail_stuck(j);
		return;
	}
	/* rows skipped because others held them: sweep again from the first range that has
	 * some, waiting longer each time a whole pass found nothing it could lock */
	snprintf(reason, sizeof(reason), "waiting for %lld%s rows locked by other sessions",
	         (long long)r.left, plus);
	bf_job_set_state(j, BF_JOB_RUNNING, reason);
	j->pass++;
	j->rewind = true;
	bf_log(BF_LOG_INFO, j->cfg->name, "sweep pass", "pass=%d remaining=%lld%s from_start=%s",
	       j->pass, (long long)r.left, plus, j->closing.pass_from ? "false" : "true");
}

/* After a pass, the closing read, statement by statement, each under the session plan it
 * needs; between passes the session goes back to the batches' plan. Its statements wait for
 * the gate as batches do, and count for the pace as batches: a read writes no row, but it
 * sets the hint bits of every row the pass wrote, so it dirties each page again (and writes
 * each one's image to the WAL after a checkpoint when the cluster has checksums), which
 * replicas and the application's commits feel. Under a commit-latency budget the read goes
 * range by range from the start: one scan would do all of that at once, unpaced. */
bool bf_walk_closing(bf_job *j, int64_t wait)
{
	bf_closing_query q;

	if (!j->pass_end) {
		if (j->plan == BF_PLAN_BATCH)
			return false;
		send_plan(j, BF_PLAN_BATCH);
		return true;
	}
	if (wait > 0) {
		bf_job_arm_timer(j, wait);
		return true;
	}
	if (bf_closing_begin(&j->closing, j->cfg->max_commit_latency_ms == 0))
		bf_log(BF_LOG_INFO, j->cfg->name, "pass done, reading what is left",
		       "pass=%d from_start=%s mode=%s", j->pass,
		       j->closing.pass_from ? "false" : "true", bf_closing_mode(&j->closing));
	bf_closing_next(&j->closing, j->target, j->high, &q);
	if (j->plan != q.plan) {
		send_plan(j, q.plan);
	} else {
		bf_job_batch_begins(j);
		bf_job_send(j, PH_CLOSING, q.sql, q.n_values, q.values);
	}
	bf_closing_query_free(&q);
	return true;
}

void bf_walk_fast_path_locked(bf_job *j)
{
	bf_log(BF_LOG_DEBUG, j->cfg->name, "fast path met a lock, redoing with SKIP LOCKED", NULL);
	j->skip_locked = SKIP_LOCKED_STREAK;
}
