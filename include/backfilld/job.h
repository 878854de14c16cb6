/*
 * job.h - one backfill job: its own connection and the state machine that walks its table.
 *
 * Owns the job's connection, its session advisory lock, its in-memory view of the checkpoint
 * (always re-read from the control table after a reconnect, never trusted across one), the
 * timers for sleeps and backoff, and every write to its row of <schema>.jobs. A job walks its
 * table in passes: the first from the first key to the high-water mark (a partitioned table
 * leaf by leaf, or a plain one in `parallel` key slices, each slice a job of its own on its
 * own connection, owned by the job); after each pass a closing read counts, without locking,
 * the rows still to do (rows others held), and a sweep pass takes them, until none is left.
 * The daemon owns the jobs, starts them (max_parallel_jobs), tells them to pause, resume or
 * stop, and hears back once, when a job is finished (done, failed, cancelled or stopped).
 *
 * Promises: never blocks the loop; every batch commits its data and its checkpoint together;
 * a lost connection or an unreachable server is retried with backoff from the checkpoint; an
 * SQL or permission error fails this job only; state changes are logged once with a reason
 * and written to the control table. The inside is job_internal.h's.
 */
#ifndef BACKFILLD_JOB_H
#define BACKFILLD_JOB_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "backfilld/config.h"
#include "backfilld/metrics.h"
#include "backfilld/state.h"

typedef struct bf_job bf_job;

/* Called once when the job has let go of its connection for good: finished (done, failed,
 * cancelled) or stopped by bf_job_stop(). */
typedef void (*bf_job_finished_cb)(bf_job *job, void *owner);

typedef struct bf_job_env {
	struct ev_loop *loop;
	const char *control_schema; /* unquoted */
	const char *owner_id;       /* "host:pid" */
	bool dry_run;               /* roll back every batch, write nothing */
	bf_job_finished_cb finished;
	void *owner;
} bf_job_env;

/* A job for `cfg` (copied), idle until bf_job_start(). */
bf_job *bf_job_new(const bf_job_env *env, const bf_job_config *cfg);
void bf_job_free(bf_job *job);

void bf_job_start(bf_job *job);

/* Stop scheduling: the in-flight batch commits, the state is recorded, the connection closed,
 * then the finished callback runs. */
void bf_job_stop(bf_job *job);

/* The same for a job removed from the configuration by a reload. */
void bf_job_remove(bf_job *job);

/* Fail the job with `msg` (a changed definition on reload): written after the in-flight
 * batch, then the job lets go. */
void bf_job_fail(bf_job *job, const char *msg);

/* Cancel the in-flight query (blocking cancel request: shutdown path only). */
void bf_job_abort(bf_job *job);

/* Pause after the in-flight batch (reason as given) / resume what that paused. */
void bf_job_pause(bf_job *job, const char *reason);
void bf_job_resume(bf_job *job);

/* Look at the control table now (a NOTIFY arrived): pause, resume or cancel on request. */
void bf_job_poke(bf_job *job);

/* Replace the tuning (batch size limits, sleep, timeouts, ...) from the next batch on. The
 * definition (table, key, set, where) must be unchanged: the daemon checks that. */
void bf_job_retune(bf_job *job, const bf_job_config *cfg);

/* The lag monitor of the job's server (borrowed; NULL when the job has no lag limits). */
struct bf_lagmon;
void bf_job_set_lagmon(bf_job *job, struct bf_lagmon *m);
struct bf_lagmon *bf_job_lagmon(const bf_job *job);

const char *bf_job_name(const bf_job *job);
const bf_job_config *bf_job_config_of(const bf_job *job);
bf_job_state bf_job_get_state(const bf_job *job);
bool bf_job_is_started(const bf_job *job);
bool bf_job_is_finished(const bf_job *job);
/* Why the job cannot reach its database now (it retries), or NULL while it can. */
const char *bf_job_unreachable(const bf_job *job);

/* One logfmt progress line for this job, when it is running or throttled. */
void bf_job_log_progress(bf_job *job);
/* Its figures now; `name` points into the job. */
void bf_job_figures_of(bf_job *job, bf_job_figures *out);

#endif
