/*
 * state.h - the states of a job, as SPEC.md names them and <schema>.jobs.state holds them.
 *
 * Shared by the job (which moves between them), the metrics (one series per state) and the
 * daemon's summaries. Pure.
 *
 * Also what holds a running job back (bf_hold): the class of a throttle's reason or of a
 * metered wait, the words the metrics' `reason` label uses. The reason's text says more
 * (which standby, by how much); the class is what an alert can count on.
 */
#ifndef BACKFILLD_STATE_H
#define BACKFILLD_STATE_H

#include <stdbool.h>

typedef enum bf_job_state {
	BF_JOB_PENDING = 0,
	BF_JOB_RUNNING,
	BF_JOB_THROTTLED,
	BF_JOB_PAUSED,
	BF_JOB_DONE,
	BF_JOB_FAILED,
	BF_JOB_CANCELLED,
	BF_JOB_FINISHING, /* the data is done; its then: steps run */
	BF_JOB_UNDOING,   /* the old values go back from the backup (backfillctl undo) */
	BF_JOB_UNDONE,    /* ... and are back: the job is over */
} bf_job_state;

#define BF_JOB_N_STATES (BF_JOB_UNDONE + 1)

typedef enum bf_hold {
	BF_HOLD_NONE = 0,       /* not held: a batch may go */
	BF_HOLD_REPLAY_LAG,     /* a standby: replay lag, stalled, not streaming, too few */
	BF_HOLD_SLOT,           /* a replication slot's retained WAL */
	BF_HOLD_ARCHIVE,        /* the archiver's backlog */
	BF_HOLD_LAG_PROBE,      /* the lag monitor cannot read the server (fail closed) */
	BF_HOLD_WINDOW,         /* outside the job's window */
	BF_HOLD_RATE,           /* max_rows_per_second spaces the batches */
	BF_HOLD_WAL_RATE,       /* max_wal_rate spaces the batches */
	BF_HOLD_COMMIT_LATENCY, /* max_commit_latency: the pace's pause, or its throttle */
	BF_HOLD_THROTTLE_QUERY, /* the job's throttle_query */
	BF_HOLD_PAUSED,         /* paused by the operator or a signal */
} bf_hold;

#define BF_HOLD_N (BF_HOLD_PAUSED + 1)

/* "replay_lag", "slot", ...; "none" for BF_HOLD_NONE, "unknown" out of range. */
const char *bf_hold_name(bf_hold h);

/* "pending", "running", ...; "unknown" for a value out of range. */
const char *bf_job_state_name(bf_job_state s);
/* The state named so, or -1. */
int bf_job_state_from_name(const char *name);
/* done, failed, cancelled or undone: the job has let go for good. */
bool bf_job_state_terminal(bf_job_state s);

#endif
