/*
 * slices.c - the slices of a job's first pass, each walked by a slice job on its own
 * connection (job_internal.h).
 *
 * A plain table with `parallel: N` has its keys cut into N ranges from the first key
 * column's histogram (all walked at once); a partitioned table has one slice per leaf,
 * `parallel` at a time. With `parallel: auto` a plain table's keys are cut into
 * BF_AUTOPAR_MAX ranges, and how many slices walk at once follows the signals (autopar.h):
 * a walker taken away stops after its batch and its slice waits for its turn again. The
 * slices are recorded in <schema>.slices at a fresh first pass, in one statement (whole or
 * not at all), and read back after any restart. Meanwhile the job keeps its advisory lock,
 * shows the state (its own gate, the signals the slices see) and waits; once every slice is
 * done it runs the closing read over the whole table, as after any pass. A slice job has
 * `parent` set and its own advisory lock; it walks its slice's keys, checkpointing in its
 * slice's row only, obeys the job's requests, and never writes a state: its parent hears how
 * it finished and acts on it, from its own step.
 */
#include <stdio.h>
#include <stdlib.h>

#include "backfilld/autopar.h"
#include "backfilld/job_internal.h"
#include "backfilld/log.h"
#include "backfilld/util.h"

#define SLICE_WATCH_MS 1000 /* how often a job waiting for its slices shows its state */

/* A slice's tuning: the job's, with its rate cap shared among the slices. */
bf_job_config *bf_slices_config(const bf_job_config *cfg, size_t n)
{
	bf_job_config *sc = bf_job_config_dup(cfg);
	int64_t k = (int64_t)n;

	if (sc->max_rows_per_second > 0)
		sc->max_rows_per_second = (sc->max_rows_per_second + k - 1) / k;
	return sc;
}

void bf_slices_free(bf_job *j)
{
	for (size_t i = 0; i < j->n_slices; i++) {
		j->rows_at_register -=
		        j->slices[i]->rows_new; /* keeps the job's rows as they were */
		bf_job_free(j->slices[i]);
	}
	free(j->slices);
	free(j->pending);
	j->slices = NULL;
	j->pending = NULL;
	j->n_slices = j->n_pending = j->next_pending = 0;
}

/* A slice stopped before its end (parallel: auto took its walker away) waits for its turn
 * again, from its cursor. */
static void requeue(bf_job *j, int slice)
{
	j->pending = bf_xrealloc(j->pending, (j->n_pending + 1) * sizeof(*j->pending));
	j->pending[j->n_pending++] = slice;
}

/* A slice job finished (done, failed, cancelled or stopped). Its parent acts from its own
 * step, never from inside the slice's call stack: a timer of 0 when nothing is in flight. */
static void slice_finished(bf_job *s, void *owner)
{
	bf_job *j = owner;

	j->slices_live--;
	if (!bf_job_state_terminal(j->state) && !j->stopping) {
		if (!bf_job_state_terminal(s->state) && s->stopping)
			requeue(j, s->slice);
		if (s->state == BF_JOB_FAILED) {
			char msg[BF_JOB_ERR_LEN + 32];

			snprintf(msg, sizeof(msg), "slice %d: %s", s->slice,
			         s->reason ? s->reason : "failed");
			bf_job_fail_with(j, msg);
		} else if (s->state == BF_JOB_CANCELLED) {
			bf_job_set_state(j, BF_JOB_CANCELLED, s->reason);
		} else if (j->slices_live == 0 && j->next_pending == j->n_pending) {
			/* every slice let go: read the job's row (its counts) and the slices again
			 */
			j->registered = false;
			j->slices_known = false;
		}
	}
	if (j->phase == PH_TIMER || j->phase == PH_IDLE)
		bf_job_arm_timer(j, 0);
}

static void start_slice(bf_job *j, int n)
{
	bf_job_env env = j->env;
	bf_job_config *sc = bf_slices_config(j->cfg, j->walkers);
	bf_job *s;

	env.finished = slice_finished;
	env.owner = j;
	s = bf_job_create(&env, sc, bf_xasprintf("job=%s slice=%d", j->cfg->name, n));
	bf_job_config_free(sc);
	s->parent = j;
	s->slice = n;
	s->lagmon = j->lagmon;
	if (j->pause_reason)
		s->pause_reason = bf_xstrdup(j->pause_reason);
	/* a slice started again (parallel: auto) is a new object: the old one keeps its rows */
	j->slices = bf_xrealloc(j->slices, (j->n_slices + 1) * sizeof(*j->slices));
	j->slices[j->n_slices++] = s;
	j->slices_live++;
	bf_job_start(s);
}

/* Start the slices waiting for their turn, while fewer than `walkers` walk. */
static void start_pending(bf_job *j)
{
	while (j->slices_live < j->walkers && j->next_pending < j->n_pending && !j->stopping &&
	       !bf_job_state_terminal(j->state))
		start_slice(j, j->pending[j->next_pending++]);
}

/* The slices of the first pass, read or cut: a partitioned table's are its leaves, a plain
 * table's are key ranges when `parallel` asks for them. New ones only on a fresh pass. */
static void send_slices(bf_job *j)
{
	char *high = bf_sql_text_array((const char *const *)j->high, j->target->n_key);
	const char *fresh = j->cursor == NULL ? "t" : "f";
	char n[16];
	char *sql;

	if (j->target->partitioned) {
		const char *v[4] = {j->cfg->name, j->target->oid, high, fresh};

		sql = bf_sql_partition_slices(j->target);
		bf_job_send(j, PH_SLICES, sql, 4, v);
	} else {
		const char *v[7] = {j->cfg->name,    n,    j->target->nsp, j->target->rel,
		                    j->target->key1, high, fresh};

		snprintf(n, sizeof(n), "%lld",
		         (long long)(j->cfg->parallel ? j->cfg->parallel : BF_AUTOPAR_MAX));
		sql = bf_sql_slices(j->target);
		bf_job_send(j, PH_SLICES, sql, 7, v);
	}
	free(sql);
	free(high);
}

/* Does every walker run unthrottled at full pace? */
static bool room(const bf_job *j)
{
	for (size_t i = 0; i < j->n_slices; i++) {
		const bf_job *s = j->slices[i];

		if (s->finished || s->stopping)
			continue;
		if (s->state != BF_JOB_RUNNING || s->hold != BF_HOLD_NONE ||
		    s->gate.pace.pace < 1.0)
			return false;
	}
	return true;
}

/* parallel: auto: the walkers the signals leave room for, the extra ones stopped (the latest
 * started first), the rate cap's share told to those that walk on. */
static void auto_walkers(bf_job *j)
{
	size_t before = j->walkers, live = 0;
	size_t left = j->slices_live + (j->n_pending - j->next_pending);
	bool ok = room(j);

	if (j->state != BF_JOB_RUNNING && j->state != BF_JOB_THROTTLED)
		return; /* paused, or writing its state: nothing to learn */
	j->walkers = bf_autopar_decide(&j->autopar, ok, left, bf_mono_ms());
	if (j->walkers != before) {
		const char *why = !ok                   ? "a walker is held back or paced"
		                  : j->walkers > before ? "every walker at full pace"
		                                        : "fewer slices left";

		bf_log(BF_LOG_INFO, j->cfg->name, "parallel: auto",
		       "walkers=%zu from=%zu why=\"%s\"", j->walkers, before, why);
		for (size_t i = 0; i < j->n_slices; i++) {
			bf_job_config *sc = bf_slices_config(j->cfg, j->walkers);

			if (!j->slices[i]->finished && !j->slices[i]->stopping)
				bf_job_retune(j->slices[i], sc);
			bf_job_config_free(sc);
		}
	}
	for (size_t i = j->n_slices; i-- > 0;) {
		bf_job *s = j->slices[i];

		if (s->finished || s->stopping)
			continue;
		if (++live > j->walkers)
			bf_job_stop_for(s, "parallel: auto, fewer walkers");
	}
}

bool bf_slices_next(bf_job *j)
{
	if (j->parent == NULL && !j->env.dry_run && j->pass == 1 && !j->slices_known) {
		/* asked whatever `parallel` says now: slices cut earlier are walked to their end */
		send_slices(j);
		return true;
	}
	if (j->cfg->parallel == 0 && j->slices_live > 0)
		auto_walkers(j);
	start_pending(j);
	if (j->slices_live == 0)
		return false;
	/* read the row again each time: a request backfillctl made while the notification was
	 * lost still reaches the job, as it reaches the slices */
	j->poke = true;
	bf_job_arm_timer(j, SLICE_WATCH_MS);
	return true;
}

void bf_slices_take(bf_job *j, const PGresult *res)
{
	int rows = PQntuples(res);
	size_t left = 0;

	j->slices_known = true;
	bf_slices_free(j);
	if (rows == 0) {
		if (j->cursor == NULL && j->cfg->parallel != 1)
			bf_log(BF_LOG_WARN, j->cfg->name,
			       "cannot cut the key into slices (no statistics on it: ANALYZE the "
			       "table; or too few keys): one walker",
			       "parallel=%lld", (long long)j->cfg->parallel);
		return;
	}
	for (int i = 0; i < rows; i++)
		left += PQgetvalue(res, i, 1)[0] != 't';
	if (left == 0) {
		/* every slice is done: the pass is over, read from the first key; it did update
		 * rows (a sweep after it starts without the idle backoff) */
		j->pass_end = true;
		bf_closing_sliced_pass(&j->closing, j->rows_done);
		return;
	}
	/* a plain table's key slices all walk at once (they were cut for `parallel`); a
	 * partitioned table's leaves `parallel` at a time; with auto, one to begin with */
	j->walkers = j->target->partitioned && (size_t)j->cfg->parallel < left
	                     ? (size_t)j->cfg->parallel
	                     : left;
	if (j->cfg->parallel == 0) {
		bf_autopar_init(&j->autopar, bf_mono_ms());
		j->walkers = 1;
	}
	if (j->target->partitioned)
		bf_log(BF_LOG_INFO, j->cfg->name, "first pass partition by partition",
		       "partitions=%d left=%zu at_once=%zu", rows, left, j->walkers);
	else
		bf_log(BF_LOG_INFO, j->cfg->name, "first pass in slices, one connection each",
		       "slices=%d left=%zu at_once=%zu%s", rows, left, j->walkers,
		       j->cfg->parallel ? "" : " parallel=auto");
	j->pending = bf_xcalloc(left, sizeof(*j->pending));
	for (int i = 0; i < rows; i++)
		if (PQgetvalue(res, i, 1)[0] != 't')
			j->pending[j->n_pending++] = atoi(PQgetvalue(res, i, 0));
}

static int64_t rows_new(const bf_job *j)
{
	int64_t rows = 0;

	for (size_t i = 0; i < j->n_slices; i++)
		rows += j->slices[i]->rows_new;
	return rows;
}

void bf_slices_registered(bf_job *j)
{
	j->rows_at_register = rows_new(j);
	if (j->slices_live == 0)
		j->slices_known = false; /* read again unless some walk */
}

int64_t bf_slices_rows(const bf_job *j)
{
	return j->rows_done - j->rows_at_register + rows_new(j);
}

double bf_slices_rate(bf_job *j, int64_t now)
{
	double rate = bf_rate_per_second(&j->rate, now);

	for (size_t i = 0; i < j->n_slices; i++)
		rate += bf_rate_per_second(&j->slices[i]->rate, now);
	return rate;
}

const bf_job *bf_slices_walker(const bf_job *j)
{
	for (size_t i = 0; i < j->n_slices; i++)
		if (!j->slices[i]->finished)
			return j->slices[i];
	return j;
}
