/*
 * state.h - the states of a job, as SPEC.md names them and <schema>.jobs.state holds them.
 *
 * Shared by the job (which moves between them), the metrics (one series per state) and the
 * daemon's summaries. Pure.
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
} bf_job_state;

#define BF_JOB_N_STATES (BF_JOB_CANCELLED + 1)

/* "pending", "running", ...; "unknown" for a value out of range. */
const char *bf_job_state_name(bf_job_state s);
/* The state named so, or -1. */
int bf_job_state_from_name(const char *name);
/* done, failed or cancelled: the job has let go for good. */
bool bf_job_state_terminal(bf_job_state s);

#endif
