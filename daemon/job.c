/*
 * job.c - one backfill job as a state machine on its own asynchronous connection.
 *
 * `phase` says what the job is waiting for: a connection, the result of one query, or a
 * timer. Every result lands in on_result(), whose switch on the phase records what the query
 * taught; then step() decides what to send next from what the job knows (connected? locked?
 * registered? prepared? paused? at the end of a pass?). So there is one place that decides,
 * and a lost connection only has to forget what the connection carried (session settings,
 * the advisory lock, prepared statements, the checkpoint) for step() to rebuild it.
 *
 * The checkpoint lives in the control table only: after any reconnect the job registers
 * again and continues from the cursor the database committed, so a batch whose commit was
 * lost with the connection is neither redone blindly nor counted twice.
 */
#include "backfilld/job.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backfilld/batchsize.h"
#include "backfilld/bucket.h"
#include "backfilld/conn.h"
#include "backfilld/lagmon.h"
#include "backfilld/log.h"
#include "backfilld/sql.h"
#include "backfilld/target.h"
#include "backfilld/units.h"
#include "backfilld/util.h"
#include "backfilld/window.h"

#define CONNECT_TIMEOUT_MS  10000
#define BACKOFF_MIN_MS      500
#define BACKOFF_MAX_MS      30000
#define LOCK_RETRY_MS       5000
#define RATE_WINDOW_MS      60000
#define RATE_SLOTS          512
#define ERR_LEN             512
#define FIRST_PROBE_WAIT_MS 50
#define SKIP_LOCKED_STREAK  10     /* batches with SKIP LOCKED after the fast path met a lock */
#define CHECK_KEYS          100000 /* keys per statement of the end-of-pass check */
#define ONE_SCAN_MS         10000  /* the longest the check's single scan may take */
#define SLICE_WATCH_MS      1000   /* how often a job waiting for its slices shows its state */
#define STUCK_PASSES        2      /* sweeps that only met rows the UPDATE leaves unchanged */

enum phase {
	PH_IDLE,     /* nothing in flight: step() decides */
	PH_CONNECT,  /* waiting for BF_CONN_CONNECTED */
	PH_SESSION,  /* session settings */
	PH_SCHEMA,   /* control schema */
	PH_LOCK,     /* pg_try_advisory_lock */
	PH_RESOLVE,  /* catalog lookup */
	PH_ESTIMATE, /* EXPLAIN */
	PH_REGISTER, /* insert or read the jobs row */
	PH_HIGH,     /* high-water mark */
	PH_PREPARE,  /* the two batch statements */
	PH_STATE,    /* a state change */
	PH_BATCH,    /* a batch */
	PH_REMAIN,   /* the non-locking check at the end of a pass */
	PH_TXN,      /* BEGIN or ROLLBACK around a dry-run batch */
	PH_PLAN,     /* the session's plans and statement_timeout for the check, or back */
	PH_CLOCK,    /* the server's local wall time, for the window */
	PH_SLICES,   /* the slices of a parallel first pass, read or cut */
	PH_GRANTS,   /* what the role lacks for the control schema */
	PH_FAIL_ROW, /* the failed row of a job that failed before it registered */
	PH_TIMER,    /* sleep, backoff or lock retry */
	PH_FINISHED, /* the connection is closed for good */
};

/* What the session is set up to run (see send_plan). PLAN_UNKNOWN: the session settings were
 * sent again (a reload changed a timeout) over a check's plan, whose statement_timeout they
 * replaced: the plan is sent again before the next statement. */
enum plan { PLAN_BATCH, PLAN_ONE_SCAN, PLAN_RANGES, PLAN_UNKNOWN };

/* Why a state change is being written, so that its result knows what follows. */
enum after_state { AFTER_NOTHING, AFTER_NEW_PASS, AFTER_CLOSE };

struct rate_slot {
	int64_t at_ms;
	int64_t rows;
};

struct bf_job {
	bf_job_env env;
	bf_job_config *cfg;
	bf_conn *conn;
	char *log_name;
	enum phase phase;
	ev_timer timer;

	/* what the current connection carries; all false after a reconnect */
	bool session_ok, grants_ok, schema_ok, locked;
	bool fail_row_sent; /* a failure before registration was written, or tried once */
	int prepared;       /* how many of the two batch statements are prepared */
	bool in_txn;        /* a dry-run batch's transaction is open */
	bool sleep_due;     /* the pause between batches comes before the next one */
	/* what the job knows from the database */
	bf_sql_target *target;
	char *table_name; /* nsp.rel for the jobs row */
	bool estimated, registered, high_known;
	bool has_row; /* registered once: the row exists, even while it is being read again */
	int64_t estimate;
	char **cursor; /* NULL when the pass starts at the first key */
	char **high;   /* NULL when the table was empty at the first start */
	int pass;
	int64_t rows_done;
	int64_t pass_rows; /* rows updated in the current pass */
	/* Rows a sweep's batches locked themselves (no other session held them) and the UPDATE
	 * still did not change: a BEFORE trigger returning NULL. In this pass, in how many
	 * passes in a row, and the key range of the last batch that met some. */
	int64_t pass_unchanged;
	int64_t stuck_passes;
	char *stuck_range;
	bool pass_end; /* the last batch reached the high-water mark */
	/* The end-of-pass check walks chunks from where the pass started: keys before it were
	 * found clean by an earlier check. In memory only; after a restart the check starts
	 * at the first key, which costs time, never a row. NULL = the first key. */
	char **pass_from;
	char **check_at; /* the key the check's next chunk starts after */
	bool checking;   /* check_at is set (NULL in it means the first key) */
	/* Batch boundaries about CHECK_KEYS keys apart, recorded while the pass runs in this
	 * process, so the check can count known ranges (see bf_sql_remaining_in). They cover
	 * the pass only when this process saw it start (bounds_ok); otherwise the check walks
	 * ordered chunks, which find their own ends. */
	char ***bounds;
	size_t n_bounds, cap_bounds;
	bool bounds_ok;
	bool rewound;        /* the next registration reads a pass's first cursor back */
	int64_t since_bound; /* keys walked since the last boundary */
	bool one_scan;       /* the check's first statement: every key left in one scan */
	bool check_ranges;   /* the check in progress counts bounds[check_i - 1..] ranges */
	size_t check_i;      /* the bound the next range ends at (n_bounds: high) */
	enum plan plan;      /* what the session is set up for */
	enum plan plan_sent; /* what the PH_PLAN in flight sets it up for */

	/* states: `db` as last written, `want` as step() should write it next */
	bf_job_state db_state, state;
	char *reason;
	char *db_reason;
	char *last_error; /* to write with the next state change, then NULL */
	bool count_error;
	bool rewind; /* the next state change rewinds the cursor (a new pass) */
	enum after_state after;

	bool started, stopping, finished;
	const char *stop_reason; /* the reason written when stopping leaves the job pending */
	char *pause_reason;      /* set while paused by the daemon (a signal) */
	char *requested;         /* requested_state from the control table */
	bool poke;               /* re-read requested_state before the next batch */
	int64_t batch_size;      /* keys per batch now, from the controller */
	bool fast;               /* the batch in flight is the plain-UPDATE fast path */
	int64_t skip_locked;     /* batches left to run straight with SKIP LOCKED */
	bf_batchsize ctl;        /* adapts batch_size toward target_batch_time */
	bf_bucket bucket;        /* max_rows_per_second */
	bf_lagmon *lagmon;       /* the server's lag signals, shared, owned by the daemon */
	/* The window is in the server's local time: its wall clock in ms (see
	 * bf_sql_server_clock) as read at clock_at (bf_mono_ms), asked again every
	 * BF_WINDOW_RECHECK_MS so that a daylight saving change shows within a minute. */
	int64_t server_clock_ms, clock_at;
	bool clock_known;
	bool lag_throttled;    /* the last lag decision throttled (its hysteresis input) */
	int64_t retries;       /* consecutive transient errors */
	int64_t reconnects;    /* consecutive failed connection attempts */
	char *down_reason;     /* why the connection went, until it is back */
	int64_t sweep_idle;    /* consecutive passes that updated nothing */
	int64_t batch_sent_ms; /* monotonic, for the batch's round-trip time */
	int64_t running_since; /* monotonic, when batches began in this process */
	int64_t last_batch_ms;
	struct rate_slot rate[RATE_SLOTS];
	size_t rate_head, rate_len;
	bool logged_waiting_lock;
	bool resumed; /* "resuming from the checkpoint" said once */

	/* A parallel first pass (cfg->parallel > 1): the job cuts its keys into slices
	 * (<schema>.slices) and starts a slice job for each one not done, owned here, each on
	 * its own connection. Meanwhile this job keeps the advisory lock, shows the state (its
	 * own gate, the same signals the slices see) and waits; once every slice is done it
	 * runs the end-of-pass check over the whole table, as after any pass. A slice job has
	 * `parent` set and its own advisory lock: it walks its slice's keys, checkpointing in
	 * its slice's row only (cursor, counts, rate), obeys the job's requests, and never
	 * writes a state: its parent hears how it finished and acts on it. */
	bf_job *parent;
	int slice; /* 1.. for a slice job */
	bf_job **slices;
	size_t n_slices, slices_live;
	int *pending; /* slices not done and not started yet, in order */
	size_t n_pending, next_pending;
	size_t walkers;           /* how many slices walk at once (the rate cap's share) */
	bool slices_known;        /* read (or cut) since the last registration */
	int64_t rows_new;         /* rows updated by this object's batches */
	int64_t rows_at_register; /* the slices' rows_new when this job last registered */
};

static void step(bf_job *j);
static void stop(bf_job *j, const char *why);
static void conn_cb(bf_conn *conn, void *owner, bf_conn_event ev, const PGresult *res,
                    const char *err, const PGnotify *notify);
static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

static const char *const state_names[] = {
        [BF_JOB_PENDING] = "pending",     [BF_JOB_RUNNING] = "running",
        [BF_JOB_THROTTLED] = "throttled", [BF_JOB_PAUSED] = "paused",
        [BF_JOB_DONE] = "done",           [BF_JOB_FAILED] = "failed",
        [BF_JOB_CANCELLED] = "cancelled",
};

const char *bf_job_state_name(bf_job_state s)
{
	return (size_t)s < BF_ARRAY_LEN(state_names) ? state_names[s] : "unknown";
}

bool bf_job_state_terminal(bf_job_state s)
{
	return s == BF_JOB_DONE || s == BF_JOB_FAILED || s == BF_JOB_CANCELLED;
}

static bf_job_state state_from_name(const char *s)
{
	for (size_t i = 0; i < BF_ARRAY_LEN(state_names); i++)
		if (strcmp(state_names[i], s) == 0)
			return (bf_job_state)i;
	return BF_JOB_PENDING;
}

static void free_list(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* A copy of n key values, or NULL for NULL. */
static char **copy_list(char *const *v, size_t n)
{
	char **c;

	if (v == NULL)
		return NULL;
	c = bf_xcalloc(n, sizeof(*c));
	for (size_t i = 0; i < n; i++)
		c[i] = bf_xstrdup(v[i]);
	return c;
}

static void clear_bounds(bf_job *j)
{
	for (size_t i = 0; i < j->n_bounds; i++)
		free_list(j->bounds[i], j->target->n_key);
	j->n_bounds = 0;
	j->since_bound = 0;
}

/* A batch of `keys` keys committed and moved the cursor: maybe a boundary for the check. */
static void record_bound(bf_job *j, int64_t keys)
{
	if (!j->bounds_ok || j->pass_end || j->cursor == NULL)
		return;
	j->since_bound += keys;
	if (j->since_bound < CHECK_KEYS)
		return;
	if (j->n_bounds == j->cap_bounds) {
		j->cap_bounds = j->cap_bounds ? 2 * j->cap_bounds : 64;
		j->bounds = bf_xrealloc(j->bounds, j->cap_bounds * sizeof(*j->bounds));
	}
	j->bounds[j->n_bounds++] = copy_list(j->cursor, j->target->n_key);
	j->since_bound = 0;
}

static char *dup_opt(const char *s)
{
	return s ? bf_xstrdup(s) : NULL;
}

/* ---- life cycle ---- */

static bf_job *job_new(const bf_job_env *env, const bf_job_config *cfg, char *log_name)
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
	bf_batchsize_init(&j->ctl, cfg->batch_size, cfg->min_batch_size, cfg->max_batch_size,
	                  cfg->target_batch_time_ms);
	j->batch_size = bf_batchsize_size(&j->ctl);
	bf_bucket_init(&j->bucket, cfg->max_rows_per_second, bf_mono_ms());
	j->state = j->db_state = BF_JOB_PENDING;
	bf_conn_set_retry(j->conn, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
	return j;
}

bf_job *bf_job_new(const bf_job_env *env, const bf_job_config *cfg)
{
	return job_new(env, cfg, bf_xasprintf("job=%s", cfg->name));
}

static void free_slices(bf_job *j)
{
	for (size_t i = 0; i < j->n_slices; i++) {
		j->rows_at_register -= j->slices[i]->rows_new; /* keeps rows_now() as it was */
		bf_job_free(j->slices[i]);
	}
	free(j->slices);
	free(j->pending);
	j->slices = NULL;
	j->pending = NULL;
	j->n_slices = j->n_pending = j->next_pending = 0;
}

static void forget_checkpoint(bf_job *j)
{
	size_t n = j->target ? j->target->n_key : 0;

	free_list(j->cursor, n);
	free_list(j->high, n);
	free_list(j->check_at, n);
	j->cursor = j->high = j->check_at = NULL;
	j->checking = false;
}

void bf_job_free(bf_job *j)
{
	if (j == NULL)
		return;
	free_slices(j);
	ev_timer_stop(j->env.loop, &j->timer);
	bf_conn_free(j->conn);
	forget_checkpoint(j);
	free_list(j->pass_from, j->target ? j->target->n_key : 0);
	if (j->target)
		clear_bounds(j);
	free(j->bounds);
	bf_sql_target_free(j->target);
	free(j->table_name);
	free(j->reason);
	free(j->db_reason);
	free(j->last_error);
	free(j->stuck_range);
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
	j->lagmon = m;
	for (size_t i = 0; i < j->n_slices; i++)
		j->slices[i]->lagmon = m;
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
static void set_state(bf_job *j, bf_job_state s, const char *reason)
{
	bool same_reason = (reason == NULL && j->reason == NULL) ||
	                   (reason && j->reason && strcmp(reason, j->reason) == 0);
	char q[512];

	if (s == j->state && same_reason)
		return;
	/* a throttle's reason changes with every reading (81MB, 90MB...): logged when it
	 * starts and when it ends, shown fresh in the control table meanwhile */
	if (j->parent == NULL && (s != j->state || (reason && s != BF_JOB_THROTTLED)))
		bf_log(s == BF_JOB_FAILED ? BF_LOG_ERROR : BF_LOG_INFO, j->cfg->name, "state",
		       "state=%s from=%s%s%s", bf_job_state_name(s), bf_job_state_name(j->state),
		       reason ? " reason=" : "", reason ? bf_log_q(q, sizeof(q), reason) : "");
	j->state = s;
	free(j->reason);
	j->reason = dup_opt(reason);
}

static void fail(bf_job *j, const char *msg)
{
	free(j->last_error);
	j->last_error = bf_xstrdup(msg);
	j->count_error = true;
	set_state(j, BF_JOB_FAILED, msg);
}

static void arm_timer(bf_job *j, int64_t ms)
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

static int64_t backoff_ms(int64_t attempt)
{
	int64_t ms = BACKOFF_MIN_MS;

	for (int64_t i = 1; i < attempt && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

/* Forget what the connection carried; the checkpoint is re-read on the next one. */
static void drop_connection(bf_job *j)
{
	bf_conn_close(j->conn);
	j->session_ok = j->grants_ok = j->schema_ok = j->locked = j->in_txn = false;
	j->plan = PLAN_BATCH;
	j->prepared = 0;
	j->registered = false;
	forget_checkpoint(j);
	j->high_known = false;
	j->phase = PH_IDLE;
}

static void finish(bf_job *j)
{
	drop_connection(j);
	/* the slices let go first, each after its batch; the last one to finish brings the
	 * job back here (slice_finished) */
	for (size_t i = 0; i < j->n_slices; i++)
		stop(j->slices[i], j->stop_reason);
	if (j->slices_live > 0)
		return;
	ev_timer_stop(j->env.loop, &j->timer);
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
	j->running_since = bf_mono_ms();
	step(j);
}

static void wake(bf_job *j)
{
	if (j->phase == PH_TIMER && j->state != BF_JOB_RUNNING) {
		ev_timer_stop(j->env.loop, &j->timer);
		j->phase = PH_IDLE;
	}
	if (j->started && j->phase == PH_IDLE)
		step(j);
}

static void stop(bf_job *j, const char *why)
{
	if (j->finished)
		return;
	j->stopping = true;
	j->stop_reason = why;
	if (!j->started) {
		j->started = true;
		finish(j);
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
	stop(j, "daemon stopped");
}

void bf_job_remove(bf_job *j)
{
	stop(j, "removed from the configuration");
}

void bf_job_fail(bf_job *j, const char *msg)
{
	if (j->finished || bf_job_state_terminal(j->state))
		return;
	fail(j, msg);
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

/* ---- slices of a parallel first pass ---- */

/* A slice's tuning: the job's, with its rate cap shared among the slices. */
static bf_job_config *slice_config(const bf_job_config *cfg, size_t n)
{
	bf_job_config *sc = bf_job_config_dup(cfg);
	int64_t k = (int64_t)n;

	if (sc->max_rows_per_second > 0)
		sc->max_rows_per_second = (sc->max_rows_per_second + k - 1) / k;
	return sc;
}

/* A slice job finished (done, failed, cancelled or stopped). Its parent acts from its own
 * step, never from inside the slice's call stack: a timer of 0 when nothing is in flight. */
static void slice_finished(bf_job *s, void *owner)
{
	bf_job *j = owner;

	j->slices_live--;
	if (!bf_job_state_terminal(j->state) && !j->stopping) {
		if (s->state == BF_JOB_FAILED) {
			char msg[ERR_LEN + 32];

			snprintf(msg, sizeof(msg), "slice %d: %s", s->slice,
			         s->reason ? s->reason : "failed");
			fail(j, msg);
		} else if (s->state == BF_JOB_CANCELLED) {
			set_state(j, BF_JOB_CANCELLED, s->reason);
		} else if (j->slices_live == 0 && j->next_pending == j->n_pending) {
			/* every slice let go: read the job's row (its counts) and the slices again
			 */
			j->registered = false;
			j->slices_known = false;
		}
	}
	if (j->phase == PH_TIMER || j->phase == PH_IDLE)
		arm_timer(j, 0);
}

/* Start a slice job for slice `n`. */
static void start_slice(bf_job *j, int n)
{
	bf_job_env env = j->env;
	bf_job_config *sc = slice_config(j->cfg, j->walkers);
	bf_job *s;

	env.finished = slice_finished;
	env.owner = j;
	s = job_new(&env, sc, bf_xasprintf("job=%s slice=%d", j->cfg->name, n));
	bf_job_config_free(sc);
	s->parent = j;
	s->slice = n;
	s->lagmon = j->lagmon;
	if (j->pause_reason)
		s->pause_reason = bf_xstrdup(j->pause_reason);
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

/* The job's figures with those of its slices: the rows its row counted when last read
 * plus what the slices did since, the recent rate, a slice's batch size while they walk. */
static int64_t slice_rows(const bf_job *j)
{
	int64_t rows = 0;

	for (size_t i = 0; i < j->n_slices; i++)
		rows += j->slices[i]->rows_new;
	return rows;
}

static int64_t rows_now(const bf_job *j)
{
	return j->rows_done - j->rows_at_register + slice_rows(j);
}

static double rate_now(bf_job *j, int64_t now);

static double rate_all(bf_job *j, int64_t now)
{
	double rate = rate_now(j, now);

	for (size_t i = 0; i < j->n_slices; i++)
		rate += rate_now(j->slices[i], now);
	return rate;
}

static const bf_job *walker(const bf_job *j)
{
	for (size_t i = 0; i < j->n_slices; i++)
		if (!j->slices[i]->finished)
			return j->slices[i];
	return j;
}

void bf_job_retune(bf_job *j, const bf_job_config *cfg)
{
	bf_job_config *old = j->cfg;

	for (size_t i = 0; i < j->n_slices; i++) {
		bf_job_config *sc = slice_config(cfg, j->walkers);

		bf_job_retune(j->slices[i], sc);
		bf_job_config_free(sc);
	}

	j->cfg = bf_job_config_dup(cfg);
	bf_batchsize_set_limits(&j->ctl, cfg->batch_size, cfg->min_batch_size, cfg->max_batch_size,
	                        cfg->target_batch_time_ms);
	j->batch_size = bf_batchsize_size(&j->ctl);
	bf_bucket_set_rate(&j->bucket, cfg->max_rows_per_second, bf_mono_ms());
	/* timeouts are session settings: send them again before the next batch */
	if (cfg->lock_timeout_ms != old->lock_timeout_ms ||
	    cfg->statement_timeout_ms != old->statement_timeout_ms ||
	    strcmp(cfg->synchronous_commit, old->synchronous_commit) != 0)
		j->session_ok = false;
	bf_job_config_free(old);
	if (j->parent == NULL)
		bf_log(BF_LOG_INFO, j->cfg->name, "tuning reloaded", "batch=%lld sleep_ms=%lld",
		       (long long)j->batch_size, (long long)j->cfg->sleep_ms);
}

/* ---- the recent rate: rows of the batches of the last minute ---- */

static void rate_add(bf_job *j, int64_t now, int64_t rows)
{
	size_t i = (j->rate_head + j->rate_len) % RATE_SLOTS;

	if (j->rate_len == RATE_SLOTS) {
		j->rate_head = (j->rate_head + 1) % RATE_SLOTS;
		j->rate_len--;
	}
	j->rate[i] = (struct rate_slot){.at_ms = now, .rows = rows};
	j->rate_len++;
}

static double rate_now(bf_job *j, int64_t now)
{
	int64_t rows = 0, span;

	while (j->rate_len > 0 && j->rate[j->rate_head].at_ms < now - RATE_WINDOW_MS) {
		j->rate_head = (j->rate_head + 1) % RATE_SLOTS;
		j->rate_len--;
	}
	for (size_t k = 0; k < j->rate_len; k++)
		rows += j->rate[(j->rate_head + k) % RATE_SLOTS].rows;
	span = now - j->running_since;
	if (span > RATE_WINDOW_MS)
		span = RATE_WINDOW_MS;
	if (span < 1000)
		span = 1000;
	return (double)rows * 1000.0 / (double)span;
}

void bf_job_log_progress(bf_job *j)
{
	char eta[32] = "", q[512];
	int64_t rows = rows_now(j);
	double rate;
	double pct = 0;
	int64_t est = j->estimate > rows ? j->estimate : rows;

	if (j->finished || (j->state != BF_JOB_RUNNING && j->state != BF_JOB_THROTTLED))
		return;
	rate = rate_all(j, bf_mono_ms());
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
	       (long long)walker(j)->batch_size, j->pass, bf_job_state_name(j->state),
	       j->state == BF_JOB_THROTTLED ? " reason=" : "",
	       j->state == BF_JOB_THROTTLED ? bf_log_q(q, sizeof(q), j->reason) : "");
}

void bf_job_figures_of(bf_job *j, bf_job_figures *out)
{
	int64_t rows = rows_now(j);

	*out = (bf_job_figures){
	        .name = j->cfg->name,
	        .state = j->state,
	        .rows_done = rows,
	        .rows_estimate = j->estimate > rows ? j->estimate : rows,
	        .rows_per_second = rate_all(j, bf_mono_ms()),
	        .batch_size = walker(j)->batch_size,
	        .last_batch_ms = walker(j)->last_batch_ms,
	        .pass = j->pass,
	};
}

/* ---- sending ---- */

static void send_failed(bf_job *j, const char *err)
{
	/* the connection reports BF_CONN_LOST for a failed send; anything else is a bug of
	 * ours in building the query, and the job cannot go on */
	fail(j, err);
	drop_connection(j);
	finish(j);
}

static void send_params(bf_job *j, enum phase ph, const char *sql, int n, const char *const *v)
{
	char err[ERR_LEN];

	j->phase = ph;
	if (bf_conn_send_params(j->conn, sql, n, v, err, sizeof(err)) != 0)
		send_failed(j, err);
}

static void send_simple(bf_job *j, enum phase ph, const char *sql)
{
	char err[ERR_LEN];

	j->phase = ph;
	if (bf_conn_send_simple(j->conn, sql, err, sizeof(err)) != 0)
		send_failed(j, err);
}

/* The end-of-pass check first counts every key left in one statement (PLAN_ONE_SCAN): the
 * planner's choice, a sequential scan through a small ring of buffers (parallel where the
 * server allows), is the cheapest read of a whole table, and one snapshot sees every row.
 * Measured on a freshly filled 10M-row table (4 GB): 3.0 s, against 4.5-5.4 s range by range.
 * Its statement_timeout is capped at ONE_SCAN_MS so that on a big table it neither holds a
 * snapshot for long nor costs more than that before the walk range by range takes over.
 * That walk (PLAN_RANGES) is planned as bitmap scans, which read each heap page of a range
 * once. A plain index scan visits every row twice after the pass (a dead index entry per
 * updated row) and fetches the heap row by row; a sequential scan, which the planner picks
 * when a range is a tenth of the table, reads all of it for each range. Measured on 100,000
 * keys of a freshly filled 1M-row table: bitmap 23 ms, index 87 ms, sequential 223 ms.
 * PLAN_BATCH is the session as bf_sql_session set it: the batches keep their plans. */
/* How the check walks when its single scan does not settle it: on the ranges the pass
 * recorded, or on ordered chunks when this process did not see the pass start. */
static const char *walk_mode(const bf_job *j)
{
	return j->check_ranges ? "ranges" : "chunks";
}

static int64_t one_scan_ms(const bf_job *j)
{
	int64_t ms = j->cfg->statement_timeout_ms;

	return ms == 0 || ms > ONE_SCAN_MS ? ONE_SCAN_MS : ms;
}

static void send_plan(bf_job *j, enum plan plan)
{
	int64_t ms = plan == PLAN_ONE_SCAN ? one_scan_ms(j) : j->cfg->statement_timeout_ms;
	char timeout[32];
	const char *v[2] = {plan == PLAN_RANGES ? "true" : "false", timeout};

	snprintf(timeout, sizeof(timeout), "%lld", (long long)ms);
	j->plan_sent = plan;
	send_params(j, PH_PLAN, bf_sql_plan(), 2, v);
}

static void connect_db(bf_job *j)
{
	char err[ERR_LEN];

	j->phase = PH_CONNECT;
	if (bf_conn_connect(j->conn, j->cfg->database, "backfilld", CONNECT_TIMEOUT_MS, err,
	                    sizeof(err)) != 0) {
		/* a conninfo libpq cannot parse will not get better by retrying */
		char msg[ERR_LEN + 64];

		snprintf(msg, sizeof(msg), "bad database conninfo: %s", err);
		j->phase = PH_IDLE;
		set_state(j, BF_JOB_FAILED, msg);
		finish(j);
	}
}

static void send_session(bf_job *j)
{
	char lock[32], stmt[32];
	const char *v[3] = {lock, stmt, j->cfg->synchronous_commit};

	snprintf(lock, sizeof(lock), "%lld", (long long)j->cfg->lock_timeout_ms);
	snprintf(stmt, sizeof(stmt), "%lld", (long long)j->cfg->statement_timeout_ms);
	send_params(j, PH_SESSION, bf_sql_session(), 3, v);
}

/* The control schema; a dry run keeps its bookkeeping in the session's temporary schema, so
 * neither the table nor the real control schema changes. */
static const char *schema_name(const bf_job *j)
{
	return j->env.dry_run ? "pg_temp" : j->env.control_schema;
}

static char *quoted_schema(bf_job *j)
{
	char err[ERR_LEN];
	char *q = bf_quote_ident(bf_conn_pg(j->conn), schema_name(j), err, sizeof(err));

	if (q == NULL)
		fail(j, err);
	return q;
}

static void send_grants(bf_job *j)
{
	const char *v[2] = {j->env.control_schema, bf_pressure_enabled(&j->cfg->lag) ? "t" : "f"};

	send_params(j, PH_GRANTS, bf_sql_grants(), 2, v);
}

static void on_grants(bf_job *j, const PGresult *res)
{
	if (!PQgetisnull(res, 0, 1))
		bf_log(BF_LOG_WARN, j->cfg->name, "the lag limits cannot be read", "problem=%s",
		       PQgetvalue(res, 0, 1));
	if (!PQgetisnull(res, 0, 0)) {
		fail(j, PQgetvalue(res, 0, 0));
		return;
	}
	j->grants_ok = true;
}

/* A job that failed before it registered leaves its failed row (once) when the control
 * schema is there and the job's lock held; otherwise the log and STATUS= say it. */
static bool send_fail_row(bf_job *j)
{
	char hash[17];
	char *qs, *sql;
	const char *v[4] = {j->cfg->name, j->cfg->table, hash, j->reason};

	if (j->fail_row_sent || j->state != BF_JOB_FAILED || !j->schema_ok || !j->locked ||
	    j->env.dry_run || j->parent)
		return false;
	j->fail_row_sent = true;
	qs = quoted_schema(j);
	if (qs == NULL)
		return false;
	bf_job_config_hash(j->cfg, hash);
	sql = bf_sql_fail_unregistered(qs);
	send_params(j, PH_FAIL_ROW, sql, 4, v);
	free(sql);
	free(qs);
	return true;
}

static void send_schema(bf_job *j)
{
	char *qs = quoted_schema(j);
	char *sql;

	if (qs == NULL) {
		finish(j);
		return;
	}
	sql = j->env.dry_run ? bf_sql_schema_temp() : bf_sql_schema(qs);
	send_simple(j, PH_SCHEMA, sql);
	free(sql);
	free(qs);
}

/* The job's session advisory lock: two daemons never run a job at once. A slice has its
 * own ("name:N", a name no job can have), so that a slice still walking for a daemon whose
 * job connection was lost, and with it the job's lock, is never walked twice at once when
 * another daemon takes the job over. */
static void send_lock(bf_job *j)
{
	char *name = j->parent ? bf_xasprintf("%s:%d", j->cfg->name, j->slice)
	                       : bf_xstrdup(j->cfg->name);
	const char *v[2] = {j->env.control_schema, name};

	send_params(j, PH_LOCK, bf_sql_try_lock(), 2, v);
	free(name);
}

static void send_resolve(bf_job *j)
{
	char *keys = bf_target_key_literal(j->cfg);
	const char *v[2] = {j->cfg->table, keys};

	send_params(j, PH_RESOLVE, bf_sql_resolve(), 2, v);
	free(keys);
}

static void send_estimate(bf_job *j)
{
	char *sql = bf_sql_estimate(j->target);
	char pct[32];
	const char *v[1] = {pct};

	snprintf(pct, sizeof(pct), "%.6f", bf_sql_sample_percent(j->target->pages));
	send_params(j, PH_ESTIMATE, sql, 1, v);
	free(sql);
}

static void send_register(bf_job *j)
{
	char hash[17], batch[32], est[32];
	char *sql = bf_sql_register(j->target);
	const char *v[6] = {j->cfg->name, j->table_name, hash, batch, j->env.owner_id, est};

	bf_job_config_hash(j->cfg, hash);
	snprintf(batch, sizeof(batch), "%lld", (long long)j->batch_size);
	snprintf(est, sizeof(est), "%lld", (long long)j->estimate);
	send_params(j, PH_REGISTER, sql, 6, v);
	free(sql);
}

static void send_slice_register(bf_job *j)
{
	char *sql = bf_sql_slice_register(j->target);
	char n[16];
	const char *v[3] = {j->cfg->name, n, j->target->oid};

	snprintf(n, sizeof(n), "%d", j->slice);
	send_params(j, PH_REGISTER, sql, 3, v);
	free(sql);
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
		send_params(j, PH_SLICES, sql, 4, v);
	} else {
		const char *v[7] = {j->cfg->name,    n,    j->target->nsp, j->target->rel,
		                    j->target->key1, high, fresh};

		snprintf(n, sizeof(n), "%lld", (long long)j->cfg->parallel);
		sql = bf_sql_slices(j->target);
		send_params(j, PH_SLICES, sql, 7, v);
	}
	free(sql);
	free(high);
}

static void send_high(bf_job *j)
{
	char *sql = bf_sql_high_water(j->target);
	const char *v[1] = {j->cfg->name};

	send_params(j, PH_HIGH, sql, 1, v);
	free(sql);
}

/* The two prepared forms of a batch (see sql.h): the fast path, a plain UPDATE of the range
 * under a short lock_timeout, and the SKIP LOCKED form it falls back to. The first batch of
 * a pass has no cursor and goes unprepared: it runs once per pass. */
static const char *const stmt_names[2] = {"bf_fast", "bf_skip"};

static enum bf_ckpt ckpt_of(const bf_job *j)
{
	return j->parent ? BF_CKPT_SLICE : BF_CKPT_JOB;
}

static void send_prepare(bf_job *j)
{
	char err[ERR_LEN];
	bool plain = j->prepared == 0;
	char *sql = bf_sql_batch(j->target, false, plain, ckpt_of(j));

	j->phase = PH_PREPARE;
	if (bf_conn_send_prepare(j->conn, stmt_names[j->prepared], sql, err, sizeof(err)) != 0)
		send_failed(j, err);
	free(sql);
}

static void send_state(bf_job *j, enum after_state after)
{
	char *qs = quoted_schema(j);
	char *sql;
	char pass[16], batch[32];
	bool terminal = bf_job_state_terminal(j->state);
	const char *owner = terminal || j->stopping ? NULL : j->env.owner_id;
	char *from =
	        j->rewind && j->pass_from
	                ? bf_sql_text_array((const char *const *)j->pass_from, j->target->n_key)
	                : NULL;
	const char *v[10] = {
	        j->cfg->name, bf_job_state_name(j->state),
	        j->reason,    j->last_error,
	        owner,        j->count_error ? "t" : "f",
	        pass,         j->rewind ? "t" : "f",
	        batch,        from,
	};

	if (qs == NULL) {
		free(from);
		finish(j);
		return;
	}
	snprintf(pass, sizeof(pass), "%d", j->pass);
	snprintf(batch, sizeof(batch), "%lld", (long long)j->batch_size);
	sql = bf_sql_set_state(qs);
	j->after = after;
	send_params(j, PH_STATE, sql, 10, v);
	free(sql);
	free(qs);
	free(from);
}

static void send_batch(bf_job *j)
{
	size_t n = j->target->n_key;
	const char **v = bf_xcalloc(4 + 2 * n, sizeof(*v));
	char batch[32], rate[32], pass[16];
	size_t k = 0;
	char err[ERR_LEN];
	int rc;

	snprintf(batch, sizeof(batch), "%lld", (long long)j->batch_size);
	/* a slice writes its own rate, and its slice number as $4 */
	snprintf(rate, sizeof(rate), "%.3f",
	         j->parent ? rate_now(j, bf_mono_ms()) : rate_all(j, bf_mono_ms()));
	snprintf(pass, sizeof(pass), "%d", j->parent ? j->slice : j->pass);
	v[k++] = j->cfg->name;
	v[k++] = batch;
	v[k++] = rate;
	v[k++] = pass;
	if (j->cursor)
		for (size_t i = 0; i < n; i++)
			v[k++] = j->cursor[i];
	for (size_t i = 0; i < n; i++)
		v[k++] = j->high[i];
	j->phase = PH_BATCH;
	j->batch_sent_ms = bf_mono_ms();
	/* the fast path, unless it met a lock lately: then SKIP LOCKED for a while, since the
	 * application is busy with these rows and each failed try would cost a batch. Sweeps
	 * are SKIP LOCKED: they look for rows that were held, and the form tells the rows it
	 * locked from those it changed (see stuck_passes) */
	j->fast = j->skip_locked == 0 && j->pass == 1;
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
		send_failed(j, err);
}

static void send_remaining(bf_job *j)
{
	size_t n = j->target->n_key, k = 0;
	const char **v = bf_xcalloc(1 + 2 * n, sizeof(*v));
	bool in = j->one_scan || j->check_ranges; /* a range with known ends */
	char **end = !j->one_scan && j->check_ranges && j->check_i < j->n_bounds
	                     ? j->bounds[j->check_i]
	                     : j->high;
	char keys[32];
	char *sql = in ? bf_sql_remaining_in(j->target, j->check_at == NULL, !j->one_scan)
	               : bf_sql_remaining(j->target, j->check_at == NULL);

	snprintf(keys, sizeof(keys), "%d", CHECK_KEYS);
	if (!in)
		v[k++] = keys;
	if (j->check_at)
		for (size_t i = 0; i < n; i++)
			v[k++] = j->check_at[i];
	for (size_t i = 0; i < n; i++)
		v[k++] = end[i];
	send_params(j, PH_REMAIN, sql, (int)k, v);
	free(sql);
	free(v);
}

/* ---- deciding ---- */

/* Pause and cancel requests: a signal (pause_reason) or backfillctl (requested). */
static void apply_requests(bf_job *j)
{
	if (bf_job_state_terminal(j->state))
		return;
	if (j->requested && strcmp(j->requested, "cancelled") == 0) {
		set_state(j, BF_JOB_CANCELLED, "cancelled by backfillctl");
		return;
	}
	if (j->requested && strcmp(j->requested, "paused") == 0) {
		set_state(j, BF_JOB_PAUSED, "paused by backfillctl");
		return;
	}
	if (j->pause_reason) {
		set_state(j, BF_JOB_PAUSED, j->pause_reason);
		return;
	}
	if (j->state == BF_JOB_PAUSED || j->state == BF_JOB_PENDING)
		set_state(j, BF_JOB_RUNNING, NULL);
}

/* Back-pressure before the next batch: the window, the lag signals, the rate cap. Sets the
 * state (throttled with why, or running again) and returns how long to wait; 0 = go. */
static int64_t gate(bf_job *j)
{
	int64_t now = bf_mono_ms();
	char reason[512];

	if (j->cfg->window.set) {
		/* the server's wall clock now: as read, plus the time since on our own clock */
		time_t t = (time_t)((j->server_clock_ms + now - j->clock_at) / 1000);
		struct tm lt;
		int64_t wait;

		gmtime_r(&t, &lt);
		wait = bf_window_ms_until_open(&j->cfg->window, &lt);
		if (wait > 0) {
			set_state(j, BF_JOB_THROTTLED,
			          bf_window_reason(&j->cfg->window, reason, sizeof(reason)));
			j->lag_throttled = false;
			return wait < BF_WINDOW_RECHECK_MS ? wait : BF_WINDOW_RECHECK_MS;
		}
	}
	if (j->lagmon && bf_pressure_enabled(&j->cfg->lag)) {
		const bf_lag_sample *sample = bf_lagmon_sample(j->lagmon);

		if (!sample->ok && sample->taken_ms == 0)
			return FIRST_PROBE_WAIT_MS; /* the monitor has just started: no throttle */
		j->lag_throttled = bf_pressure_decide(&j->cfg->lag, sample, j->lag_throttled, now,
		                                      reason, sizeof(reason));
		if (j->lag_throttled) {
			set_state(j, BF_JOB_THROTTLED, reason);
			return j->cfg->lag.check_interval_ms;
		}
	}
	if (j->state == BF_JOB_THROTTLED)
		set_state(j, BF_JOB_RUNNING, NULL);
	return bf_bucket_wait_ms(&j->bucket, now, j->batch_size);
}

/* What to do next, from what the job knows. Called whenever nothing is in flight. */
static void step(bf_job *j)
{
	int64_t wait = 0;

	if (j->phase != PH_IDLE || j->finished)
		return;
	if (!bf_conn_is_open(j->conn)) {
		/* a final state decided while the connection was down (a slice failed, a reload
		 * failed the job) is written once it is back, like any other state */
		bool unwritten = bf_job_state_terminal(j->state) && j->state != j->db_state &&
		                 j->has_row && j->parent == NULL && !j->env.dry_run;

		if (j->stopping || (bf_job_state_terminal(j->state) && !unwritten)) {
			finish(j);
			return;
		}
		connect_db(j);
		return;
	}
	if (!j->has_row && (j->stopping || bf_job_state_terminal(j->state))) {
		/* stopped or failed before it had a row (no such table, no control schema, ...):
		 * its failed row when it can be written, else the log says why */
		if (!send_fail_row(j))
			finish(j);
		return;
	}
	if (!j->session_ok) {
		send_session(j);
		return;
	}
	if (!j->grants_ok && j->parent == NULL && !j->env.dry_run) {
		send_grants(j);
		return;
	}
	if (!j->schema_ok && j->parent == NULL) {
		send_schema(j);
		return;
	}
	if (j->in_txn) {
		send_simple(j, PH_TXN, "ROLLBACK");
		return;
	}
	if (j->poke) {
		/* backfillctl asked something: read the row again before going on */
		j->poke = false;
		j->registered = false;
	}
	if (!j->locked) {
		send_lock(j);
		return;
	}
	if (j->target == NULL) {
		send_resolve(j);
		return;
	}
	if (!j->estimated && j->parent == NULL) {
		send_estimate(j);
		return;
	}
	if (!j->registered) {
		if (j->parent)
			send_slice_register(j);
		else
			send_register(j);
		return;
	}
	/* the state to show: a terminal one is written, then the job lets go */
	if (j->stopping && !bf_job_state_terminal(j->state) && j->state != BF_JOB_PAUSED)
		set_state(j, BF_JOB_PENDING, j->stop_reason);
	else
		apply_requests(j);
	if (j->cfg->window.set && (j->state == BF_JOB_RUNNING || j->state == BF_JOB_THROTTLED) &&
	    (!j->clock_known || bf_mono_ms() - j->clock_at >= BF_WINDOW_RECHECK_MS)) {
		send_params(j, PH_CLOCK, bf_sql_server_clock(), 0, NULL);
		return;
	}
	if (j->state == BF_JOB_RUNNING || j->state == BF_JOB_THROTTLED)
		wait = gate(j);
	if (j->state != j->db_state || !bf_streq_opt(j->reason, j->db_reason) || j->rewind ||
	    j->count_error) {
		if (j->parent == NULL) {
			send_state(j, j->rewind ? AFTER_NEW_PASS : AFTER_NOTHING);
			return;
		}
		/* a slice's state is its parent's to show */
		j->db_state = j->state;
		free(j->db_reason);
		j->db_reason = dup_opt(j->reason);
		j->count_error = false;
	}
	if (bf_job_state_terminal(j->state) || j->stopping) {
		finish(j);
		return;
	}
	if (j->state == BF_JOB_PAUSED)
		return; /* resumed by bf_job_resume() or a poke */
	if (!j->high_known) {
		send_high(j);
		return;
	}
	if (j->parent == NULL && !j->env.dry_run && j->pass == 1 && !j->slices_known) {
		/* asked whatever `parallel` says now: slices cut earlier are walked to their end */
		send_slices(j);
		return;
	}
	start_pending(j);
	if (j->slices_live > 0) {
		/* read the row again each time: a request backfillctl made while the
		 * notification was lost still reaches the job, as it reaches the slices */
		j->poke = true;
		arm_timer(j, SLICE_WATCH_MS);
		return;
	}
	if (j->prepared < 2) {
		send_prepare(j);
		return;
	}
	if (j->pass_end && j->env.dry_run) {
		/* rolled back, every row is still to do: a dry run ends after one pass */
		set_state(j, BF_JOB_DONE, "dry run: one pass done, every batch rolled back");
		step(j);
		return;
	}
	if (j->pass_end && j->parent) {
		set_state(j, BF_JOB_DONE, NULL);
		finish(j);
		return;
	}
	if (j->plan != PLAN_BATCH && !j->pass_end) {
		send_plan(j, PLAN_BATCH);
		return;
	}
	if (j->pass_end) {
		enum plan want;

		if (!j->checking) {
			j->checking = true;
			j->check_at = copy_list(j->pass_from, j->target->n_key);
			j->one_scan = true;
			j->check_ranges = j->bounds_ok;
			j->check_i = 0;
			bf_log(BF_LOG_INFO, j->cfg->name, "pass done, checking that no row is left",
			       "pass=%d from_start=%s mode=%s", j->pass,
			       j->check_at ? "false" : "true", walk_mode(j));
		}
		want = j->one_scan ? PLAN_ONE_SCAN : j->check_ranges ? PLAN_RANGES : PLAN_BATCH;
		if (j->plan != want) {
			send_plan(j, want);
			return;
		}
		send_remaining(j);
		return;
	}
	if (j->sleep_due) {
		j->sleep_due = false;
		arm_timer(j, j->cfg->sleep_ms);
		return;
	}
	if (wait > 0) {
		arm_timer(j, wait);
		return;
	}
	if (j->env.dry_run) {
		send_simple(j, PH_TXN, "BEGIN");
		return;
	}
	send_batch(j);
}

/* ---- results ---- */

static bool is_transient(const char *sqlstate)
{
	static const char *const codes[] = {"55P03", "57014", "40P01", "40001"};

	for (size_t i = 0; i < BF_ARRAY_LEN(codes); i++)
		if (strcmp(sqlstate, codes[i]) == 0)
			return true;
	return false;
}

static bool is_connection_error(const char *sqlstate)
{
	return strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57P", 3) == 0 ||
	       strcmp(sqlstate, "53300") == 0;
}

static const char *transient_name(const char *sqlstate)
{
	if (strcmp(sqlstate, "55P03") == 0)
		return "lock_timeout";
	if (strcmp(sqlstate, "57014") == 0)
		return "statement_timeout";
	if (strcmp(sqlstate, "40P01") == 0)
		return "deadlock";
	return "serialization failure";
}

/* One line from a server error: the primary message, and the detail (which key a unique
 * violation hit, ...) and hint when given. */
static char *error_text(const PGresult *res)
{
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (msg == NULL)
		return bf_xstrdup(PQresultErrorMessage(res));
	return bf_xasprintf("%s (SQLSTATE %s)%s%s%s%s", msg, code ? code : "?",
	                    detail ? "; detail: " : "", detail ? detail : "",
	                    hint ? "; hint: " : "", hint ? hint : "");
}

/* The connection failed or went: try again after the policy's pause (conn.h), or, when no
 * retry can mend it (authentication, no such database or role), fail the job: its row cannot
 * be written without a connection, so the log and STATUS= say it. */
static void schedule_reconnect(bf_job *j, const char *why)
{
	char q[ERR_LEN + 32];
	int64_t ms = bf_conn_drop(j->conn, why);
	char d[32];

	drop_connection(j);
	if (j->stopping) {
		finish(j);
		return;
	}
	if (bf_conn_down_for_good(j->conn)) {
		char msg[ERR_LEN + 64];

		snprintf(msg, sizeof(msg), "cannot connect, and retrying will not mend it: %s",
		         why);
		fail(j, msg);
		finish(j);
		return;
	}
	j->reconnects++;
	free(j->down_reason);
	j->down_reason = bf_xstrdup(why);
	bf_units_format_duration(ms, d, sizeof(d));
	bf_log(BF_LOG_WARN, j->cfg->name, "database unreachable, will retry",
	       "error=%s retry_in=%s attempt=%lld", bf_log_q(q, sizeof(q), why), d,
	       (long long)j->reconnects);
	arm_timer(j, ms);
}

static void on_error(bf_job *j, const PGresult *res)
{
	const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	char *text = error_text(res);
	enum phase ph = j->phase;

	j->phase = PH_IDLE;
	if (code == NULL)
		code = "";
	if (ph == PH_BATCH && j->fast && strcmp(code, "55P03") == 0 && !j->stopping) {
		/* the fast path met a row the application holds: redo this range with SKIP
		 * LOCKED at once; not an error, the contract's path */
		bf_log(BF_LOG_DEBUG, j->cfg->name, "fast path met a lock, redoing with SKIP LOCKED",
		       NULL);
		j->skip_locked = SKIP_LOCKED_STREAK;
		free(text);
		step(j);
		return;
	}
	if (ph == PH_REMAIN && j->one_scan && strcmp(code, "57014") == 0 && !j->stopping) {
		/* the single scan of the check ran out of its time (ONE_SCAN_MS): a big table;
		 * the walk range by range takes over, each statement short */
		bf_log(BF_LOG_INFO, j->cfg->name,
		       "the check's single scan took too long, going on range by range",
		       "statement_timeout=%lldms mode=%s", (long long)one_scan_ms(j), walk_mode(j));
		j->one_scan = false;
		free(text);
		step(j);
		return;
	}
	if (is_connection_error(code)) {
		schedule_reconnect(j, text);
	} else if (j->stopping) {
		/* a batch cancelled at shutdown: record the state and go */
		bf_log(BF_LOG_WARN, j->cfg->name, "query ended at shutdown", "error=%s", code);
		step(j);
	} else if (is_transient(code) && ++j->retries <= j->cfg->max_retries) {
		char reason[128];
		int64_t ms = backoff_ms(j->retries);

		if (ph == PH_BATCH)
			j->batch_size = bf_batchsize_on_timeout(&j->ctl);
		snprintf(reason, sizeof(reason), "%s: retrying with batch %lld",
		         transient_name(code), (long long)j->batch_size);
		free(j->last_error);
		j->last_error = bf_xstrdup(text);
		j->count_error = true;
		set_state(j, BF_JOB_RUNNING, reason);
		/* the state change is written after the backoff, with the retry */
		arm_timer(j, ms);
	} else if (is_transient(code)) {
		char msg[ERR_LEN + 64];

		snprintf(msg, sizeof(msg), "%lld consecutive transient errors, last: %s",
		         (long long)j->retries - 1, text);
		fail(j, msg);
		step(j);
	} else if (ph == PH_STATE) {
		/* the control row cannot be written: nothing more this job can do safely */
		bf_log(BF_LOG_ERROR, j->cfg->name, "cannot record the job's state", "error=%s",
		       code);
		set_state(j, BF_JOB_FAILED, text);
		finish(j);
	} else {
		/* SQL, permission and BF001 ("set does not make where false") errors: the
		 * server's message says what; this job stops, the others go on */
		fail(j, text);
		step(j);
	}
	free(text);
}

static void on_resolve(bf_job *j, const PGresult *res)
{
	bf_sbuf problems = {0};

	j->target = bf_target_resolve(bf_conn_pg(j->conn), res, j->cfg, schema_name(j),
	                              &j->table_name, &problems);
	if (j->target == NULL)
		fail(j, problems.data ? problems.data : "cannot resolve the table");
	bf_sbuf_free(&problems);
}

static char **get_values(const PGresult *res, int first, size_t n)
{
	char **v = bf_xcalloc(n, sizeof(*v));

	for (size_t i = 0; i < n; i++)
		v[i] = bf_xstrdup(PQgetvalue(res, 0, first + (int)i));
	return v;
}

/* Registered on a fresh connection: after a failure, the trace an operator can query
 * (last_error, written with the next state) and one log line. */
static void reconnected(bf_job *j)
{
	int64_t down = bf_conn_down_ms(j->conn);
	char d[32], q[ERR_LEN + 32];

	j->reconnects = 0;
	if (down == 0 || j->down_reason == NULL)
		return;
	bf_units_format_duration(down, d, sizeof(d));
	bf_log(BF_LOG_INFO, j->cfg->name, "reconnected", "after=%s error=%s", d,
	       bf_log_q(q, sizeof(q), j->down_reason));
	if (j->parent == NULL && !bf_job_state_terminal(j->state)) {
		free(j->last_error);
		j->last_error = bf_xasprintf("reconnected after %s: %s", d, j->down_reason);
	}
	free(j->down_reason);
	j->down_reason = NULL;
}

static void on_register(bf_job *j, const PGresult *res)
{
	char hash[17];
	size_t n = j->target->n_key;
	const char *state = PQgetvalue(res, 0, 1);

	bf_job_config_hash(j->cfg, hash);
	free(j->requested);
	j->requested = PQgetisnull(res, 0, 2) ? NULL : bf_xstrdup(PQgetvalue(res, 0, 2));
	j->db_state = state_from_name(state);
	j->pass = atoi(PQgetvalue(res, 0, 3));
	j->rows_done = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
	forget_checkpoint(j);
	if (!PQgetisnull(res, 0, 7))
		j->estimate = strtoll(PQgetvalue(res, 0, 7), NULL, 10);
	if (PQgetvalue(res, 0, 5)[0] == 't')
		j->cursor = get_values(res, 8, n);
	j->high_known = PQgetvalue(res, 0, 6)[0] == 't';
	if (j->high_known)
		j->high = get_values(res, 8 + (int)n, n);
	j->registered = j->has_row = true;
	j->pass_end = false;
	reconnected(j);
	/* the row counts what the slices did so far; slices are read again unless some walk */
	j->rows_at_register = slice_rows(j);
	if (j->slices_live == 0)
		j->slices_known = false;
	/* a pass seen from its first batch: its boundaries can be recorded (a reconnect in
	 * the middle of a pass keeps those already recorded) */
	if (j->cursor == NULL || j->rewound) {
		clear_bounds(j);
		j->bounds_ok = true;
		j->rewound = false;
	}

	if (j->db_state == BF_JOB_DONE || j->db_state == BF_JOB_CANCELLED) {
		bool changed = strcmp(PQgetvalue(res, 0, 0), hash) != 0;

		bf_log(changed ? BF_LOG_WARN : BF_LOG_INFO, j->cfg->name,
		       changed ? "already finished; its definition changed since: reset it to run "
		                 "it again (backfillctl reset)"
		               : "already finished",
		       "state=%s", state);
		j->state = j->db_state;
		free(j->reason);
		j->reason = NULL;
		j->db_reason = NULL;
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 0), hash) != 0) {
		char msg[256];

		snprintf(msg, sizeof(msg),
		         "definition changed (table, key, set or where) since the job was "
		         "registered: reset it (backfillctl reset %s) or rename it",
		         j->cfg->name);
		fail(j, msg);
		return;
	}
	/* the row may say running or throttled after a crash: ours to take over */
	if (j->db_state == BF_JOB_FAILED)
		bf_log(BF_LOG_INFO, j->cfg->name, "restarting a failed job from its checkpoint",
		       "rows=%lld", (long long)j->rows_done);
	else if (!j->resumed && (j->rows_done > 0 || j->cursor))
		bf_log(BF_LOG_INFO, j->cfg->name, "resuming from the checkpoint",
		       "rows=%lld pass=%d", (long long)j->rows_done, j->pass);
	j->resumed = true;
	/* make step() write the state this process shows, a failure not yet written included
	 * (a job object never registers again after writing one: it lets go) */
	free(j->db_reason);
	j->db_reason = bf_xstrdup("(registered)");
}

/* A slice of a partitioned table walks its leaf as a plain table: the target becomes the
 * leaf's (its batches check that the leaf is still in the table). */
static int walk_leaf(bf_job *j, const PGresult *res)
{
	char err[ERR_LEN];
	bool first = j->target->leaf_oid == NULL;

	if (bf_target_to_leaf(bf_conn_pg(j->conn), j->target, PQgetvalue(res, 0, 2),
	                      PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4), err,
	                      sizeof(err)) != 0) {
		fail(j, err);
		return -1;
	}
	if (first)
		bf_log(BF_LOG_INFO, j->cfg->name, "walking a partition", "slice=%d partition=%s.%s",
		       j->slice, j->target->nsp, j->target->rel);
	return 0;
}

static void on_slice_register(bf_job *j, const PGresult *res)
{
	size_t n = j->target->n_key;

	if (PQntuples(res) != 1) {
		fail(j,
		     "the slice's row disappeared from the control table (reset while running?)");
		return;
	}
	free(j->requested);
	j->requested = PQgetisnull(res, 0, 1) ? NULL : bf_xstrdup(PQgetvalue(res, 0, 1));
	forget_checkpoint(j);
	if (PQgetvalue(res, 0, 5)[0] != 't') {
		/* the statement ended the slice: its rows not reached left the job's table */
		bf_log(BF_LOG_WARN, j->cfg->name,
		       "a partition left the table (detached or dropped): its slice ends",
		       "slice=%d partition=%s", j->slice,
		       PQgetisnull(res, 0, 3) ? PQgetvalue(res, 0, 4) : PQgetvalue(res, 0, 3));
		set_state(j, BF_JOB_DONE, NULL);
		j->registered = true;
		return;
	}
	if (!PQgetisnull(res, 0, 4) && walk_leaf(j, res) != 0)
		return;
	if (PQgetvalue(res, 0, 0)[0] == 't')
		j->cursor = get_values(res, 6, n);
	j->high = get_values(res, 6 + (int)n, n);
	j->high_known = true;
	j->registered = true;
	j->pass_end = false;
	reconnected(j);
}

static void on_slices(bf_job *j, const PGresult *res)
{
	int rows = PQntuples(res);
	size_t left = 0;

	j->slices_known = true;
	free_slices(j);
	if (rows == 0) {
		if (j->cursor == NULL && j->cfg->parallel > 1)
			bf_log(BF_LOG_WARN, j->cfg->name,
			       "cannot cut the key into slices (no statistics on it: ANALYZE the "
			       "table; or too few keys): one walker",
			       "parallel=%lld", (long long)j->cfg->parallel);
		return;
	}
	for (int i = 0; i < rows; i++)
		left += PQgetvalue(res, i, 1)[0] != 't';
	if (left == 0) {
		/* every slice is done: the pass is over, checked from the first key; it did
		 * update rows (a sweep after it starts without the idle backoff) */
		j->pass_end = true;
		j->pass_rows = j->rows_done;
		clear_bounds(j);
		j->bounds_ok = false;
		return;
	}
	/* a plain table's key slices all walk at once (they were cut for `parallel`); a
	 * partitioned table's leaves `parallel` at a time */
	j->walkers = j->target->partitioned && (size_t)j->cfg->parallel < left
	                     ? (size_t)j->cfg->parallel
	                     : left;
	if (j->target->partitioned)
		bf_log(BF_LOG_INFO, j->cfg->name, "first pass partition by partition",
		       "partitions=%d left=%zu at_once=%zu", rows, left, j->walkers);
	else
		bf_log(BF_LOG_INFO, j->cfg->name, "first pass in slices, one connection each",
		       "slices=%d left=%zu", rows, left);
	j->slices = bf_xcalloc(left, sizeof(*j->slices));
	j->pending = bf_xcalloc(left, sizeof(*j->pending));
	for (int i = 0; i < rows; i++)
		if (PQgetvalue(res, i, 1)[0] != 't')
			j->pending[j->n_pending++] = atoi(PQgetvalue(res, i, 0));
}

static void on_high(bf_job *j, const PGresult *res)
{
	j->high_known = true;
	if (PQgetvalue(res, 0, 0)[0] != 't') {
		/* an empty table at the first start: nothing up to the mark, done */
		bf_log(BF_LOG_INFO, j->cfg->name, "table was empty at the first start", NULL);
		set_state(j, BF_JOB_DONE, "table was empty");
		return;
	}
	j->high = get_values(res, 1, j->target->n_key);
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

/* Rows that match `where`, that no other session holds, and that the UPDATE leaves as they
 * are, sweep after sweep: not a lock to wait for. Fails the job, naming the likely cause. */
static bool stuck(bf_job *j)
{
	char msg[ERR_LEN * 2];

	j->stuck_passes = j->pass_rows == 0 && j->pass_unchanged > 0 ? j->stuck_passes + 1 : 0;
	if (j->stuck_passes < STUCK_PASSES)
		return false;
	snprintf(msg, sizeof(msg),
	         "%lld rows match where, no other session holds them, and the UPDATE leaves them "
	         "unchanged (last seen in the keys %s): %s%s",
	         (long long)j->pass_unchanged, j->stuck_range ? j->stuck_range : "",
	         j->target->triggers ? "a BEFORE UPDATE trigger returning NULL for them? "
	                               "BEFORE UPDATE triggers: "
	                             : "no BEFORE UPDATE trigger on the table",
	         j->target->triggers ? j->target->triggers : "");
	fail(j, msg);
	return true;
}

static void on_batch(bf_job *j, const PGresult *res)
{
	size_t n = j->target->n_key;
	int64_t now = bf_mono_ms();
	int64_t rows, unchanged;

	if (PQntuples(res) != 1 && j->parent) {
		/* the slice's row or its leaf is gone: its registration tells which */
		j->registered = false;
		return;
	}
	if (PQntuples(res) != 1) {
		fail(j, "the job's row disappeared from the control table (reset while running?)");
		return;
	}
	rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	unchanged = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
	if (unchanged > 0) {
		j->pass_unchanged += unchanged;
		free(j->stuck_range);
		free(j->down_reason);
		j->stuck_range = key_range(j->cursor, res, n);
	}
	j->last_batch_ms = now - j->batch_sent_ms;
	j->rows_done += rows;
	j->rows_new += rows;
	j->pass_rows += rows;
	j->retries = 0;
	rate_add(j, now, rows);
	j->pass_end = PQgetvalue(res, 0, 1)[0] == 't';
	free(j->requested);
	j->requested = PQgetisnull(res, 0, 2) ? NULL : bf_xstrdup(PQgetvalue(res, 0, 2));
	free_list(j->cursor, n);
	j->cursor = get_values(res, 4, n);
	record_bound(j, j->batch_size);
	bf_bucket_take(&j->bucket, now, rows);
	if (!j->pass_end) {
		/* a full range of batch_size keys: its time tells the controller the cost */
		j->batch_size = bf_batchsize_observe(&j->ctl, j->batch_size, j->last_batch_ms);
		if (bf_batchsize_floor_news(&j->ctl))
			bf_log(BF_LOG_WARN, j->cfg->name,
			       "batch size at its floor and batches still take longer than the "
			       "target",
			       "batch=%lld ms=%lld target_ms=%lld", (long long)j->batch_size,
			       (long long)j->last_batch_ms,
			       (long long)j->cfg->target_batch_time_ms);
	}
	if (j->state == BF_JOB_RUNNING && j->reason) {
		/* a retry succeeded: the reason no longer holds */
		set_state(j, BF_JOB_RUNNING, NULL);
	}
	bf_log(BF_LOG_DEBUG, j->cfg->name, "batch", "rows=%lld ms=%lld batch=%lld pass=%d",
	       (long long)rows, (long long)j->last_batch_ms, (long long)j->batch_size, j->pass);
}

static void on_remaining(bf_job *j, const PGresult *res)
{
	size_t n = j->target->n_key;
	int64_t left = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	bool last = j->one_scan ||
	            (j->check_ranges ? j->check_i >= j->n_bounds : PQgetvalue(res, 0, 1)[0] == 't');
	char reason[128];
	const char *how = j->one_scan ? "scan" : walk_mode(j);

	j->retries = 0;
	if (j->one_scan) {
		j->one_scan = false;
		if (left > 0) {
			/* the sweep should start where the first of them is, not at the pass's
			 * start: find it, range by range */
			bf_log(BF_LOG_INFO, j->cfg->name, "rows left after the pass, locating them",
			       "remaining=%lld mode=%s", (long long)left, walk_mode(j));
			return;
		}
	}
	if (left == 0 && !last) {
		/* this chunk is clean: the next one starts after its last key */
		free_list(j->check_at, n);
		if (j->check_ranges)
			j->check_at = copy_list(j->bounds[j->check_i++], n);
		else
			j->check_at = get_values(res, 2, n);
		return;
	}
	j->pass_end = false;
	if (left == 0) {
		bf_log(BF_LOG_INFO, j->cfg->name, "no row left to do",
		       "rows=%lld passes=%d check=%s", (long long)j->rows_done, j->pass, how);
		set_state(j, BF_JOB_DONE, NULL);
		return;
	}
	if (stuck(j))
		return;
	/* rows skipped because others held them: sweep again from this chunk (the keys before
	 * it were found clean), waiting longer each time a whole pass found nothing it could
	 * lock */
	j->sweep_idle = j->pass_rows == 0 ? j->sweep_idle + 1 : 0;
	snprintf(reason, sizeof(reason), "waiting for %lld%s rows locked by other sessions",
	         (long long)left, last ? "" : "+");
	set_state(j, BF_JOB_RUNNING, reason);
	free_list(j->pass_from, n);
	j->pass_from = j->check_at;
	j->check_at = NULL;
	j->checking = false;
	j->pass++;
	j->pass_rows = 0;
	j->pass_unchanged = 0;
	j->rewind = true;
	bf_log(BF_LOG_INFO, j->cfg->name, "sweep pass", "pass=%d remaining=%lld%s from_start=%s",
	       j->pass, (long long)left, last ? "" : "+", j->pass_from ? "false" : "true");
}

static void after_result(bf_job *j, enum phase ph)
{
	if (ph == PH_STATE) {
		j->db_state = j->state;
		free(j->db_reason);
		j->db_reason = dup_opt(j->reason);
		free(j->last_error);
		j->last_error = NULL;
		j->count_error = false;
		if (j->after == AFTER_NEW_PASS) {
			j->rewind = false;
			j->rewound = true;
			forget_checkpoint(j);
			j->registered = false; /* read the rewound row back */
			if (j->sweep_idle > 0) {
				arm_timer(j, backoff_ms(j->sweep_idle + 1));
				return;
			}
		}
	}
	if (ph == PH_BATCH)
		j->sleep_due = j->cfg->sleep_ms > 0 && !j->pass_end;
	if (ph == PH_TXN && j->in_txn) {
		send_batch(j);
		return;
	}
	step(j);
}

static void on_result(bf_job *j, const PGresult *res)
{
	enum phase ph = j->phase;
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		on_error(j, res);
		return;
	}
	j->phase = PH_IDLE;
	switch (ph) {
	case PH_SESSION:
		j->session_ok = true;
		if (j->plan != PLAN_BATCH)
			j->plan = PLAN_UNKNOWN;
		break;
	case PH_SCHEMA:
		j->schema_ok = true;
		break;
	case PH_LOCK:
		if (PQgetvalue(res, 0, 0)[0] != 't') {
			if (!j->logged_waiting_lock)
				bf_log(BF_LOG_WARN, j->cfg->name,
				       "another daemon runs this job; waiting to take over", NULL);
			j->logged_waiting_lock = true;
			arm_timer(j, LOCK_RETRY_MS);
			return;
		}
		j->locked = true;
		j->logged_waiting_lock = false;
		break;
	case PH_RESOLVE:
		on_resolve(j, res);
		break;
	case PH_ESTIMATE: {
		j->estimate = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		j->estimated = true;
		break;
	}
	case PH_REGISTER:
		if (j->parent)
			on_slice_register(j, res);
		else
			on_register(j, res);
		break;
	case PH_SLICES:
		on_slices(j, res);
		break;
	case PH_GRANTS:
		on_grants(j, res);
		break;
	case PH_FAIL_ROW:
		break;
	case PH_HIGH:
		on_high(j, res);
		break;
	case PH_PREPARE:
		j->prepared++;
		break;
	case PH_TXN:
		j->in_txn = strcmp(PQcmdStatus((PGresult *)res), "BEGIN") == 0;
		break;
	case PH_PLAN:
		j->plan = j->plan_sent;
		break;
	case PH_CLOCK:
		j->server_clock_ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		j->clock_at = bf_mono_ms();
		j->clock_known = true;
		break;
	case PH_STATE:
		free(j->requested);
		j->requested = PQntuples(res) && !PQgetisnull(res, 0, 0)
		                       ? bf_xstrdup(PQgetvalue(res, 0, 0))
		                       : NULL;
		break;
	case PH_BATCH:
		on_batch(j, res);
		break;
	case PH_REMAIN:
		on_remaining(j, res);
		break;
	default:
		bf_log(BF_LOG_ERROR, j->cfg->name, "result in an unexpected phase; reconnecting",
		       "phase=%d", (int)ph);
		schedule_reconnect(j, "internal: unexpected result");
		return;
	}
	after_result(j, ph);
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
