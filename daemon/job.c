/*
 * job.c - one backfill job as a state machine on its own asynchronous connection.
 *
 * The style, the same in job.c, lagmon.c and listener.c (STYLE.md 5): an explicit enum says
 * what is in flight (`phase` here), and every result lands in one switch over it whose
 * default logs and reconnects (pgqd's handler). The job adds one thing the monitor and the
 * listener do not need: what to send next depends on a dozen facts at once (what the
 * connection carries, the requests, the gate, the pass), which as states of their own would
 * multiply into hundreds; so it is decided in one place, step(), only when nothing is in
 * flight, from what the job knows. A lost connection then only has to forget what the
 * connection carried for step() to rebuild it. step() runs its stages in order, each
 * returning true when it sent or armed something (pgbouncer's per_loop_*):
 *
 *   connection  open it, write a failure that came before the job's row, roll back;
 *   setup       session, grants, schema, lock, table, estimate, row (jobsetup.c);
 *   state       requests (signals, backfillctl), the gate (gate.h), the state written;
 *   pass        high-water mark, slices (slices.c), prepared statements, a pass's end;
 *   closing     the closing read after a pass, and the sweep it decides (walk.c);
 *   batch       the sleep, the gate's wait, then one batch (walk.c).
 *
 * The checkpoint lives in the control table only (see jobsetup.c).
 */
#include "backfilld/job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfilld/job_internal.h"
#include "backfilld/lagmon.h"
#include "backfilld/log.h"
#include "backfilld/pace.h"
#include "backfilld/units.h"
#include "backfilld/util.h"

#define CONNECT_TIMEOUT_MS 10000
#define BACKOFF_MIN_MS     500
#define BACKOFF_MAX_MS     30000

static void step(bf_job *j);
static void conn_cb(bf_conn *conn, void *owner, bf_conn_event ev, const PGresult *res,
                    const char *err, const PGnotify *notify);
static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

char **bf_job_values(const PGresult *res, int first, size_t n)
{
	char **v = bf_xcalloc(n, sizeof(*v));

	for (size_t i = 0; i < n; i++)
		v[i] = bf_xstrdup(PQgetvalue(res, 0, first + (int)i));
	return v;
}

static char *dup_opt(const char *s)
{
	return s ? bf_xstrdup(s) : NULL;
}

static size_t n_key(const bf_job *j)
{
	return j->target ? j->target->n_key : 0;
}

/* ---- life cycle ---- */

bf_job *bf_job_create(const bf_job_env *env, const bf_job_config *cfg, char *log_name)
{
	bf_job *j = bf_xcalloc(1, sizeof(*j));

	j->env = *env;
	j->env.control_schema = bf_xstrdup(env->control_schema);
	j->env.owner_id = bf_xstrdup(env->owner_id);
	j->cfg = bf_job_config_dup(cfg);
	j->log_name = log_name;
	j->conn = bf_conn_new(env->loop, j->log_name, conn_cb, j);
	ev_init(&j->timer, timer_cb);
	j->timer.data = j;
	j->phase = PH_IDLE;
	j->pass = 1;
	bf_batchsize_init(
	        &j->ctl, cfg->batch_size, cfg->min_batch_size, cfg->max_batch_size,
	        bf_pace_batch_target_ms(cfg->target_batch_time_ms, cfg->max_commit_latency_ms));
	j->batch_size = bf_batchsize_size(&j->ctl);
	bf_gate_init(&j->gate, cfg, bf_mono_ms());
	j->state = j->db_state = BF_JOB_PENDING;
	bf_conn_set_retry(j->conn, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
	return j;
}

bf_job *bf_job_new(const bf_job_env *env, const bf_job_config *cfg)
{
	return bf_job_create(env, cfg, bf_xasprintf("job=%s", cfg->name));
}

void bf_job_forget_checkpoint(bf_job *j)
{
	bf_strv_free(j->cursor, n_key(j));
	bf_strv_free(j->high, n_key(j));
	j->cursor = j->high = NULL;
}

void bf_job_free(bf_job *j)
{
	if (j == NULL)
		return;
	bf_slices_free(j);
	bf_finish_free(j);
	bf_undo_free(j);
	ev_timer_stop(j->env.loop, &j->timer);
	bf_conn_free(j->conn);
	bf_job_forget_checkpoint(j);
	bf_closing_reset(&j->closing);
	bf_sql_target_free(j->target);
	free(j->table_name);
	free(j->reason);
	free(j->db_reason);
	free(j->reason_sent);
	free(j->last_error);
	free(j->down_reason);
	free(j->pause_reason);
	free(j->requested);
	free(j->log_name);
	free((char *)j->env.control_schema);
	free((char *)j->env.owner_id);
	bf_job_config_free(j->cfg);
	free(j);
}

void bf_job_set_lagmon(bf_job *j, bf_lagmon *m)
{
	if (m != j->lagmon)
		j->in_batch = false; /* the old monitor may be gone: its count is not ours now */
	j->lagmon = m;
	for (size_t i = 0; i < j->n_slices; i++)
		j->slices[i]->lagmon = m;
}

struct bf_lagmon *bf_job_lagmon(const bf_job *j)
{
	return j->lagmon;
}

const char *bf_job_name(const bf_job *j)
{
	return j->cfg->name;
}

const bf_job_config *bf_job_config_of(const bf_job *j)
{
	return j->cfg;
}

bf_job_state bf_job_get_state(const bf_job *j)
{
	return j->state;
}

bool bf_job_is_started(const bf_job *j)
{
	return j->started;
}

bool bf_job_is_finished(const bf_job *j)
{
	return j->finished;
}

const char *bf_job_unreachable(const bf_job *j)
{
	return j->finished ? NULL : j->down_reason;
}

/* Decide the state to show and why; logged once here, written by step(). */
void bf_job_set_state(bf_job *j, bf_job_state s, const char *reason)
{
	bool same_reason = bf_streq_opt(reason, j->reason);
	char q[512];

	if (s == j->state && same_reason)
		return;
	/* a throttle's or the pace's reason changes with every reading (81MB, 90MB...):
	 * logged when it starts and when it ends, shown fresh in the control table meanwhile */
	if (j->parent == NULL && (s != j->state || (reason && s != BF_JOB_THROTTLED && !j->paced)))
		bf_log(s == BF_JOB_FAILED ? BF_LOG_ERROR : BF_LOG_INFO, j->cfg->name, "state",
		       "state=%s from=%s%s%s", bf_job_state_name(s), bf_job_state_name(j->state),
		       reason ? " reason=" : "", reason ? bf_log_q(q, sizeof(q), reason) : "");
	j->state = s;
	free(j->reason);
	j->reason = dup_opt(reason);
}

void bf_job_set_reason(bf_job *j, const char *reason)
{
	free(j->reason);
	j->reason = dup_opt(reason);
}

void bf_job_fail_with(bf_job *j, const char *msg)
{
	free(j->last_error);
	j->last_error = bf_xstrdup(msg);
	j->error_gen++;
	bf_job_set_state(j, BF_JOB_FAILED, msg);
}

void bf_job_arm_timer(bf_job *j, int64_t ms)
{
	ev_timer_stop(j->env.loop, &j->timer);
	ev_timer_set(&j->timer, (double)ms / 1000.0, 0.0);
	ev_timer_start(j->env.loop, &j->timer);
	j->phase = PH_TIMER;
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	bf_job *j = w->data;

	(void)loop;
	(void)revents;
	if (j->phase == PH_TIMER)
		j->phase = PH_IDLE;
	step(j);
}

void bf_job_batch_begins(bf_job *j)
{
	j->batch_sent_ms = bf_mono_ms();
	j->in_batch = true;
	if (j->lagmon)
		bf_lagmon_batch(j->lagmon, true);
}

void bf_job_take_requested(bf_job *j, const PGresult *res, int col)
{
	free(j->requested);
	j->requested = PQntuples(res) > 0 && !PQgetisnull(res, 0, col)
	                       ? bf_xstrdup(PQgetvalue(res, 0, col))
	                       : NULL;
}

/* The batch in flight is over, however it ended. */
static void batch_over(bf_job *j)
{
	if (j->in_batch && j->lagmon)
		bf_lagmon_batch(j->lagmon, false);
	j->in_batch = false;
}

/* Forget what the connection carried; the checkpoint is re-read on the next one. */
static void drop_connection(bf_job *j)
{
	batch_over(j);
	bf_conn_close(j->conn);
	bf_finish_forget(j);
	bf_undo_forget(j);
	j->backup_ok = false;
	j->session_ok = j->grants_ok = j->schema_ok = j->locked = j->in_txn = false;
	j->plan = BF_PLAN_BATCH;
	j->prepared = 0;
	j->registered = false;
	bf_job_forget_checkpoint(j);
	j->high_known = false;
	j->phase = PH_IDLE;
}

void bf_job_finish(bf_job *j)
{
	drop_connection(j);
	/* the slices let go first, each after its batch; the last one to finish brings the
	 * job back here (slices.c slice_finished) */
	for (size_t i = 0; i < j->n_slices; i++)
		bf_job_stop_for(j->slices[i], j->stop_reason);
	if (j->slices_live > 0)
		return;
	ev_timer_stop(j->env.loop, &j->timer);
	bf_job_hold(j, BF_HOLD_NONE, bf_mono_ms());
	j->phase = PH_FINISHED;
	j->finished = true;
	if (j->env.finished)
		j->env.finished(j, j->env.owner);
}

void bf_job_start(bf_job *j)
{
	if (j->started)
		return;
	j->started = true;
	bf_rate_start(&j->rate, bf_mono_ms());
	step(j);
}

/* Look again now: a timer that only waits (not a running job's sleep) is cut short. */
static void wake(bf_job *j)
{
	if (j->phase == PH_TIMER && j->state != BF_JOB_RUNNING) {
		ev_timer_stop(j->env.loop, &j->timer);
		j->phase = PH_IDLE;
	}
	if (j->started && j->phase == PH_IDLE)
		step(j);
}

void bf_job_stop_for(bf_job *j, const char *why)
{
	if (j->finished)
		return;
	j->stopping = true;
	j->stop_reason = why;
	if (!j->started) {
		j->started = true;
		bf_job_finish(j);
		return;
	}
	if (j->phase == PH_TIMER) {
		ev_timer_stop(j->env.loop, &j->timer);
		j->phase = PH_IDLE;
	}
	if (j->phase == PH_IDLE)
		step(j);
}

void bf_job_stop(bf_job *j)
{
	bf_job_stop_for(j, "daemon stopped");
}

void bf_job_remove(bf_job *j)
{
	bf_job_stop_for(j, "removed from the configuration");
}

void bf_job_fail(bf_job *j, const char *msg)
{
	if (j->finished || bf_job_state_terminal(j->state))
		return;
	bf_job_fail_with(j, msg);
	wake(j);
}

void bf_job_abort(bf_job *j)
{
	for (size_t i = 0; i < j->n_slices; i++)
		bf_job_abort(j->slices[i]);
	if (j->finished || !bf_conn_is_busy(j->conn))
		return;
	bf_log(BF_LOG_WARN, j->cfg->name, "cancelling the in-flight query",
	       "reason=shutdown_timeout");
	bf_conn_cancel(j->conn);
}

void bf_job_pause(bf_job *j, const char *reason)
{
	free(j->pause_reason);
	j->pause_reason = bf_xstrdup(reason);
	for (size_t i = 0; i < j->n_slices; i++)
		bf_job_pause(j->slices[i], reason);
	wake(j);
}

void bf_job_resume(bf_job *j)
{
	free(j->pause_reason);
	j->pause_reason = NULL;
	for (size_t i = 0; i < j->n_slices; i++)
		bf_job_resume(j->slices[i]);
	wake(j);
}

void bf_job_poke(bf_job *j)
{
	for (size_t i = 0; i < j->n_slices; i++)
		bf_job_poke(j->slices[i]);
	j->poke = true;
	/* a sleep or a backoff between batches must not delay a pause or cancel request */
	if (j->phase == PH_TIMER && j->registered && bf_conn_is_ready(j->conn)) {
		ev_timer_stop(j->env.loop, &j->timer);
		j->phase = PH_IDLE;
	}
	wake(j);
}

void bf_job_retune(bf_job *j, const bf_job_config *cfg)
{
	bf_job_config *old = j->cfg;

	for (size_t i = 0; i < j->n_slices; i++) {
		bf_job_config *sc = bf_slices_config(cfg, j->walkers);

		bf_job_retune(j->slices[i], sc);
		bf_job_config_free(sc);
	}
	j->cfg = bf_job_config_dup(cfg);
	bf_batchsize_set_limits(
	        &j->ctl, cfg->batch_size, cfg->min_batch_size, cfg->max_batch_size,
	        bf_pace_batch_target_ms(cfg->target_batch_time_ms, cfg->max_commit_latency_ms));
	j->batch_size = bf_batchsize_size(&j->ctl);
	bf_gate_retune(&j->gate, cfg, bf_mono_ms());
	/* session settings are sent again before the next batch */
	if (bf_job_config_changes(old, cfg) & BF_RELOAD_SESSION)
		j->session_ok = false;
	bf_job_config_free(old);
	if (j->parent == NULL)
		bf_log(BF_LOG_INFO, j->cfg->name, "tuning reloaded", "batch=%lld sleep_ms=%lld",
		       (long long)j->batch_size, (long long)j->cfg->sleep_ms);
}

/* ---- what it shows ---- */

void bf_job_log_progress(bf_job *j)
{
	char eta[32] = "", q[512];
	int64_t rows = bf_slices_rows(j);
	double rate;
	double pct = 0;
	int64_t est = j->estimate > rows ? j->estimate : rows;

	if (j->finished || (j->state != BF_JOB_RUNNING && j->state != BF_JOB_THROTTLED))
		return;
	rate = bf_slices_rate(j, bf_mono_ms());
	if (est > 0)
		pct = 100.0 * (double)rows / (double)est;
	if (pct > 99.9)
		pct = 99.9; /* as in the progress view: only a done job is at 100% */
	if (rate > 0)
		bf_units_format_duration((int64_t)((double)(est - rows) * 1000.0 / rate), eta,
		                         sizeof(eta));
	bf_log(BF_LOG_INFO, j->cfg->name, "progress",
	       "rows=%lld estimate=%lld percent=%.1f rate=%.0f eta=%s batch=%lld pass=%d "
	       "state=%s%s%s",
	       (long long)rows, (long long)est, pct, rate, eta[0] ? eta : "unknown",
	       (long long)bf_slices_walker(j)->batch_size, j->pass, bf_job_state_name(j->state),
	       j->state == BF_JOB_THROTTLED ? " reason=" : "",
	       j->state == BF_JOB_THROTTLED ? bf_log_q(q, sizeof(q), j->reason) : "");
}

void bf_job_hold(bf_job *j, bf_hold h, int64_t now)
{
	bf_job *owner = j->parent ? j->parent : j;

	if (j->slices_live > 0)
		h = BF_HOLD_NONE;
	if (h == j->hold)
		return;
	if (j->hold != BF_HOLD_NONE)
		owner->counts.held_ms[j->hold] += now - j->hold_since;
	j->hold = h;
	j->hold_since = now;
}

/* The time of a hold still going on, added to its counts. */
static void add_open_hold(const bf_job *w, bf_job_counts *c, int64_t now)
{
	if (w->hold != BF_HOLD_NONE)
		c->held_ms[w->hold] += now - w->hold_since;
}

void bf_job_figures_of(bf_job *j, bf_job_figures *out)
{
	int64_t rows = bf_slices_rows(j);
	int64_t now = bf_mono_ms();
	bf_gate_readings r = {0};

	if (j->lagmon)
		bf_lagmon_readings(j->lagmon, j->cfg, &r);

	*out = (bf_job_figures){
	        .name = j->cfg->name,
	        .state = j->state,
	        .rows_done = rows,
	        .rows_estimate = j->estimate > rows ? j->estimate : rows,
	        .rows_per_second = bf_slices_rate(j, now),
	        .batch_size = bf_slices_walker(j)->batch_size,
	        .last_batch_ms = bf_slices_walker(j)->last_batch_ms,
	        .pass = j->pass,
	        .pace = bf_slices_walker(j)->gate.pace.pace,
	        .commit_p90_us = r.commit && r.commit->ok && j->cfg->max_commit_latency_ms > 0
	                                 ? r.commit->p90_us
	                                 : 0,
	        .backup_bytes = j->backup_bytes,
	        .undo_rows = j->undo_rows,
	        .undo_skipped = j->undo_skipped,
	        .counts = j->counts,
	};
	add_open_hold(j, &out->counts, now);
	for (size_t i = 0; i < j->n_slices; i++)
		add_open_hold(j->slices[i], &out->counts, now);
}

/* ---- sending ---- */

void bf_job_send_failed(bf_job *j, const char *err)
{
	/* the connection reports BF_CONN_LOST for a failed send; anything else is a bug of
	 * ours in building the query, and the job cannot go on */
	bf_job_fail_with(j, err);
	drop_connection(j);
	bf_job_finish(j);
}

void bf_job_send(bf_job *j, enum job_phase ph, const char *sql, int n, const char *const *v)
{
	char err[BF_JOB_ERR_LEN];

	j->phase = ph;
	if (bf_conn_send_params(j->conn, sql, n, v, err, sizeof(err)) != 0)
		bf_job_send_failed(j, err);
}

void bf_job_send_simple(bf_job *j, enum job_phase ph, const char *sql)
{
	char err[BF_JOB_ERR_LEN];

	j->phase = ph;
	if (bf_conn_send_simple(j->conn, sql, err, sizeof(err)) != 0)
		bf_job_send_failed(j, err);
}

static void connect_db(bf_job *j)
{
	char err[BF_JOB_ERR_LEN];

	j->phase = PH_CONNECT;
	if (bf_conn_connect(j->conn, j->cfg->database, "backfilld", CONNECT_TIMEOUT_MS, err,
	                    sizeof(err)) != 0) {
		/* a conninfo libpq cannot parse will not get better by retrying */
		char msg[BF_JOB_ERR_LEN + 64];

		snprintf(msg, sizeof(msg), "bad database conninfo: %s", err);
		j->phase = PH_IDLE;
		bf_job_set_state(j, BF_JOB_FAILED, msg);
		bf_job_finish(j);
	}
}

static void send_state(bf_job *j, enum after_state after)
{
	char *qs = bf_setup_quoted_schema(j);
	char *sql;
	char pass[16], batch[32];
	const char *owner = bf_job_state_terminal(j->state) || j->stopping ? NULL : j->env.owner_id;
	char **from = j->closing.pass_from;
	char *from_text = j->rewind && from
	                          ? bf_sql_text_array((const char *const *)from, j->target->n_key)
	                          : NULL;
	const char *v[10] = {
	        j->cfg->name, bf_job_state_name(j->state),
	        j->reason,    j->last_error,
	        owner,        j->error_gen != j->db_error_gen ? "t" : "f",
	        pass,         j->rewind ? "t" : "f",
	        batch,        from_text,
	};

	if (qs == NULL) {
		free(from_text);
		bf_job_finish(j);
		return;
	}
	snprintf(pass, sizeof(pass), "%d", j->pass);
	snprintf(batch, sizeof(batch), "%lld", (long long)j->batch_size);
	sql = bf_sql_set_state(qs);
	j->after = after;
	j->state_sent = j->state;
	free(j->reason_sent);
	j->reason_sent = dup_opt(j->reason);
	j->error_gen_sent = j->error_gen;
	bf_job_send(j, PH_STATE, sql, 10, v);
	free(sql);
	free(qs);
	free(from_text);
}

/* ---- deciding: step() and its stages ---- */

static bool running(const bf_job *j)
{
	return j->state == BF_JOB_RUNNING || j->state == BF_JOB_THROTTLED ||
	       j->state == BF_JOB_FINISHING || j->state == BF_JOB_UNDOING;
}

/* The state of a job that goes on: running its batches, finishing its steps, or undoing. */
static bf_job_state go_state(const bf_job *j)
{
	if (j->undoing)
		return BF_JOB_UNDOING;
	return j->finishing ? BF_JOB_FINISHING : BF_JOB_RUNNING;
}

/* Does the state show the pace? Not while the job finishes or undoes: it shows what it is
 * at (the pace still spaces its statements). */
static bool shows_pace(const bf_job *j)
{
	return !j->finishing && !j->undoing;
}

/* The connection: opened (again); a final state decided before the job had its row written
 * as its failed row; a dry run's aborted transaction rolled back. */
static bool stage_connection(bf_job *j)
{
	if (!bf_conn_is_open(j->conn)) {
		/* a final state decided while the connection was down (a slice failed, a reload
		 * failed the job) is written once it is back, like any other state */
		bool unwritten = bf_job_state_terminal(j->state) && j->state != j->db_state &&
		                 j->has_row && j->parent == NULL && !j->env.dry_run;

		if (j->stopping || (bf_job_state_terminal(j->state) && !unwritten))
			bf_job_finish(j);
		else
			connect_db(j);
		return true;
	}
	if (!j->has_row && (j->stopping || bf_job_state_terminal(j->state))) {
		/* stopped or failed before it had a row (no such table, no control schema, ...):
		 * its failed row when it can be written, else the log says why */
		if (!bf_setup_fail_row(j))
			bf_job_finish(j);
		return true;
	}
	if (j->in_txn) {
		bf_job_send_simple(j, PH_TXN, "ROLLBACK");
		return true;
	}
	return false;
}

static bool stage_setup(bf_job *j)
{
	if (j->poke) {
		/* backfillctl asked something: read the row again before going on */
		j->poke = false;
		j->registered = false;
	}
	return bf_setup_next(j);
}

/* Pause and cancel requests: a signal (pause_reason) or backfillctl (requested). Stopping
 * leaves a job that is not paused pending, for whoever runs it next. */
static void apply_requests(bf_job *j)
{
	if (bf_job_state_terminal(j->state))
		return;
	if (j->stopping && j->state != BF_JOB_PAUSED)
		bf_job_set_state(j, shows_pace(j) ? BF_JOB_PENDING : go_state(j), j->stop_reason);
	else if (bf_streq_opt(j->requested, "cancelled"))
		bf_job_set_state(j, BF_JOB_CANCELLED, "cancelled by backfillctl");
	else if (bf_streq_opt(j->requested, "paused"))
		bf_job_set_state(j, BF_JOB_PAUSED, "paused by backfillctl");
	else if (j->pause_reason)
		bf_job_set_state(j, BF_JOB_PAUSED, j->pause_reason);
	else if (j->state == BF_JOB_PAUSED || j->state == BF_JOB_PENDING)
		bf_job_set_state(j, go_state(j), NULL);
}

/* The gate's verdict as the job's state (throttled with why, or running again); returns how
 * long to wait before the next batch. */
static int64_t gate(bf_job *j)
{
	bf_gate_readings r = {0};
	bf_gate_verdict v;
	int64_t now = bf_mono_ms();

	/* the server's signals, as its monitor read them */
	if (j->lagmon)
		bf_lagmon_readings(j->lagmon, j->cfg, &r);
	v = bf_gate_decide(
	        &j->gate, j->cfg, &r, now,
	        bf_gate_batch_keys(&j->gate, j->cfg, j->batch_size, j->cfg->min_batch_size));

	if (v.kind == BF_GATE_THROTTLED) {
		bf_job_set_state(j, BF_JOB_THROTTLED, v.reason);
	} else if (v.kind == BF_GATE_GO && v.reason[0] && shows_pace(j)) {
		bf_job_set_state(j, BF_JOB_RUNNING, v.reason);
	} else if (v.kind == BF_GATE_GO && (j->state == BF_JOB_THROTTLED || j->paced)) {
		if (j->paced && j->parent == NULL)
			bf_log(BF_LOG_INFO, j->cfg->name, "full pace again",
			       "max_commit_latency=%lldms",
			       (long long)j->cfg->max_commit_latency_ms);
		bf_job_set_state(j, go_state(j), NULL);
	}
	if (v.kind != BF_GATE_UNKNOWN)
		j->paced = v.kind == BF_GATE_GO && v.reason[0] && shows_pace(j);
	bf_job_hold(j, v.kind == BF_GATE_THROTTLED || v.wait_ms > 0 ? v.hold : BF_HOLD_NONE, now);
	return v.wait_ms;
}

/* The state to show, decided and written; *wait is the gate's. */
static bool stage_state(bf_job *j, int64_t *wait)
{
	apply_requests(j);
	if (running(j) && bf_gate_wants_clock(&j->gate, j->cfg, bf_mono_ms())) {
		bf_job_send(j, PH_CLOCK, bf_sql_server_clock(), 0, NULL);
		return true;
	}
	*wait = running(j) ? gate(j) : 0;
	if (!running(j))
		bf_job_hold(j, j->state == BF_JOB_PAUSED ? BF_HOLD_PAUSED : BF_HOLD_NONE,
		            bf_mono_ms());
	if (j->state != j->db_state || !bf_streq_opt(j->reason, j->db_reason) || j->rewind ||
	    j->error_gen != j->db_error_gen) {
		if (j->parent == NULL) {
			send_state(j, j->rewind ? AFTER_NEW_PASS : AFTER_NOTHING);
			return true;
		}
		/* a slice's state is its parent's to show */
		j->db_state = j->state;
		free(j->db_reason);
		j->db_reason = dup_opt(j->reason);
		j->db_error_gen = j->error_gen;
	}
	if (bf_job_state_terminal(j->state) || j->stopping) {
		bf_job_finish(j);
		return true;
	}
	return j->state == BF_JOB_PAUSED; /* resumed by bf_job_resume() or a poke */
}

/* What a pass needs before its batches, and the end of a pass that has no closing read. */
static bool stage_pass(bf_job *j)
{
	if (bf_setup_high(j) || bf_slices_next(j))
		return true;
	if (j->prepared < 2) {
		bf_walk_prepare(j);
		return true;
	}
	if (j->pass_end && j->env.dry_run) {
		/* rolled back, every row is still to do: a dry run ends after one pass */
		bf_job_set_state(j, BF_JOB_DONE, "dry run: one pass done, every batch rolled back");
		step(j);
		return true;
	}
	if (j->pass_end && j->parent) {
		bf_job_set_state(j, BF_JOB_DONE, NULL);
		bf_job_finish(j);
		return true;
	}
	return false;
}

static void stage_batch(bf_job *j, int64_t wait)
{
	if (j->sleep_due) {
		j->sleep_due = false;
		bf_job_arm_timer(j, j->cfg->sleep_ms);
	} else if (wait > 0) {
		bf_job_arm_timer(j, wait);
	} else if (j->env.dry_run) {
		bf_job_send_simple(j, PH_TXN, "BEGIN");
	} else {
		bf_walk_batch(j);
	}
}

/* What to do next, from what the job knows. Called whenever nothing is in flight. */
static void step(bf_job *j)
{
	int64_t wait = 0;

	if (j->phase != PH_IDLE || j->finished)
		return;
	if (stage_connection(j) || stage_setup(j) || bf_finish_midway(j) || stage_state(j, &wait) ||
	    bf_undo_next(j, wait) || bf_finish_next(j, wait) || stage_pass(j) ||
	    bf_walk_closing(j, wait))
		return;
	stage_batch(j, wait);
}

/* ---- results ---- */

/* The connection failed or went: try again after the policy's pause (conn.h), or, when no
 * retry can mend it (authentication, no such database or role), fail the job: its row cannot
 * be written without a connection, so the log and STATUS= say it. */
static void schedule_reconnect(bf_job *j, const char *why)
{
	char q[BF_JOB_ERR_LEN + 32];
	int64_t ms = bf_conn_drop(j->conn, why);
	char d[32];

	drop_connection(j);
	if (j->stopping) {
		bf_job_finish(j);
		return;
	}
	if (bf_conn_down_for_good(j->conn)) {
		char msg[BF_JOB_ERR_LEN + 64];

		snprintf(msg, sizeof(msg), "cannot connect, and retrying will not mend it: %s",
		         why);
		bf_job_fail_with(j, msg);
		bf_job_finish(j);
		return;
	}
	j->reconnects++;
	(j->parent ? j->parent : j)->counts.errors[BF_ERR_CONNECTION]++;
	free(j->down_reason);
	j->down_reason = bf_xstrdup(why);
	bf_units_format_duration(ms, d, sizeof(d));
	bf_log(BF_LOG_WARN, j->cfg->name, "database unreachable, will retry",
	       "error=%s retry_in=%s attempt=%lld", bf_log_q(q, sizeof(q), why), d,
	       (long long)j->reconnects);
	bf_job_arm_timer(j, ms);
}

/* A transient error (a lock, a timeout, a deadlock): the same statement again after a
 * back-off, a batch smaller; too many in a row fail the job. */
static void retry_later(bf_job *j, enum job_phase ph, const char *code, const char *text)
{
	char reason[128];
	char msg[BF_JOB_ERR_LEN + 64];

	if (++j->retries > j->cfg->max_retries) {
		snprintf(msg, sizeof(msg), "%lld consecutive transient errors, last: %s",
		         (long long)j->retries - 1, text);
		bf_job_fail_with(j, msg);
		step(j);
		return;
	}
	/* a batch (or an undo's range) is retried smaller; any other statement (the closing
	 * read, a setup statement such as the dual-write trigger's) as it was */
	if (ph == PH_BATCH || ph == PH_UNDO) {
		j->batch_size = bf_batchsize_on_timeout(&j->ctl);
		snprintf(reason, sizeof(reason), "%s: retrying with batch %lld",
		         bf_conn_transient_name(code), (long long)j->batch_size);
	} else {
		snprintf(reason, sizeof(reason), "%s: retrying", bf_conn_transient_name(code));
	}
	free(j->last_error);
	j->last_error = bf_xstrdup(text);
	j->error_gen++;
	j->paced = false; /* the retry's reason replaces the pace's, and is logged */
	bf_job_set_state(j, go_state(j), reason);
	/* the state change is written after the backoff, with the retry */
	bf_job_arm_timer(j, bf_backoff_ms(j->retries, BACKOFF_MIN_MS, BACKOFF_MAX_MS));
}

/* Errors the job expects on its way, not failures: true when handled. */
static bool expected_error(bf_job *j, enum job_phase ph, const char *code)
{
	if (j->stopping)
		return false;
	if (ph == PH_BATCH && j->fast && strcmp(code, "55P03") == 0) {
		/* the fast path met a row the application holds: redo this range with SKIP
		 * LOCKED at once; not an error, the contract's path */
		bf_walk_fast_path_locked(j);
		return true;
	}
	if (ph == PH_CLOSING && strcmp(code, "57014") == 0 &&
	    bf_closing_scan_timeout(&j->closing)) {
		/* the single scan ran out of its time: a big table; the walk range by range
		 * takes over, each statement short */
		bf_log(BF_LOG_INFO, j->cfg->name,
		       "the closing read's single scan took too long, going on range by range",
		       "statement_timeout=%lldms mode=%s",
		       (long long)bf_closing_one_scan_ms(j->cfg->statement_timeout_ms),
		       bf_closing_mode(&j->closing));
		return true;
	}
	return false;
}

static void on_error(bf_job *j, const PGresult *res)
{
	const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *code = sqlstate ? sqlstate : "";
	char *text = bf_conn_error_text(res);
	enum job_phase ph = j->phase;
	bf_conn_fate fate = bf_conn_sqlstate_fate(code);
	bool expected;

	j->phase = PH_IDLE;
	batch_over(j);
	expected = expected_error(j, ph, code);
	if (!expected && fate != BF_FATE_LOST) /* a lost connection counts where it is retried */
		(j->parent ? j->parent : j)->counts.errors[bf_metrics_error_class(code)]++;
	if (expected) {
		step(j);
	} else if (fate == BF_FATE_LOST) {
		schedule_reconnect(j, text);
	} else if (bf_finish_error(j, ph, code, text)) {
		step(j);
	} else if (j->stopping) {
		/* a batch cancelled at shutdown: record the state and go */
		bf_log(BF_LOG_WARN, j->cfg->name, "query ended at shutdown", "error=%s", code);
		step(j);
	} else if (fate == BF_FATE_TRANSIENT) {
		retry_later(j, ph, code, text);
	} else if (ph == PH_STATE) {
		/* the control row cannot be written: nothing more this job can do safely */
		bf_log(BF_LOG_ERROR, j->cfg->name, "cannot record the job's state", "error=%s",
		       code);
		bf_job_set_state(j, BF_JOB_FAILED, text);
		bf_job_finish(j);
	} else {
		/* SQL, permission and BF001 ("set does not make where false") errors: the
		 * server's message says what; this job stops, the others go on */
		bf_job_fail_with(j, text);
		step(j);
	}
	free(text);
}

/* A state change was written: what it carried is no longer to write (what changed while it
 * was on the wire still is). A new pass reads its rewound row back, after the closing read's
 * back-off. */
static bool state_written(bf_job *j)
{
	j->db_state = j->state_sent;
	free(j->db_reason);
	j->db_reason = j->reason_sent;
	j->reason_sent = NULL;
	j->db_error_gen = j->error_gen_sent;
	if (j->error_gen == j->error_gen_sent) {
		free(j->last_error);
		j->last_error = NULL;
	}
	if (j->after == AFTER_NEW_PASS) {
		int64_t wait = bf_closing_new_pass(&j->closing);

		j->rewind = false;
		bf_job_forget_checkpoint(j);
		j->registered = false; /* read the rewound row back */
		if (wait > 0) {
			bf_job_arm_timer(j, wait);
			return false;
		}
	}
	return true;
}

static void on_result(bf_job *j, const PGresult *res)
{
	enum job_phase ph = j->phase;
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		on_error(j, res);
		return;
	}
	j->phase = PH_IDLE;
	switch (ph) {
	case PH_PREPARE:
		j->prepared++;
		break;
	case PH_TXN:
		j->in_txn = strcmp(PQcmdStatus((PGresult *)res), "BEGIN") == 0;
		if (j->in_txn) {
			bf_walk_batch(j);
			return;
		}
		break;
	case PH_PLAN:
		j->plan = j->plan_sent;
		break;
	case PH_CLOCK:
		bf_gate_set_clock(&j->gate, strtoll(PQgetvalue(res, 0, 0), NULL, 10), bf_mono_ms());
		break;
	case PH_STATE:
		bf_job_take_requested(j, res, 0);
		if (!state_written(j))
			return;
		break;
	case PH_BATCH:
		batch_over(j);
		bf_walk_take_batch(j, res);
		j->sleep_due = j->cfg->sleep_ms > 0 && !j->pass_end;
		break;
	case PH_CLOSING:
		batch_over(j);
		bf_walk_take_closing(j, res);
		break;
	case PH_SLICES:
		bf_slices_take(j, res);
		break;
	case PH_STEP:
		bf_finish_take(j, res);
		break;
	case PH_UNDO:
		batch_over(j);
		bf_undo_take(j, res);
		break;
	default:
		if (bf_setup_take(j, ph, res))
			break;
		bf_log(BF_LOG_ERROR, j->cfg->name, "result in an unexpected phase; reconnecting",
		       "phase=%d", (int)ph);
		schedule_reconnect(j, "internal: unexpected result");
		return;
	}
	step(j);
}

static void conn_cb(bf_conn *conn, void *owner, bf_conn_event ev, const PGresult *res,
                    const char *err, const PGnotify *notify)
{
	bf_job *j = owner;

	(void)conn;
	(void)notify;
	switch (ev) {
	case BF_CONN_CONNECTED:
		j->phase = PH_IDLE;
		step(j);
		break;
	case BF_CONN_RESULT:
		on_result(j, res);
		break;
	case BF_CONN_LOST:
		schedule_reconnect(j, err ? err : "connection lost");
		break;
	case BF_CONN_NOTIFY:
		break;
	}
}
