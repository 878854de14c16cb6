/*
 * state.c - the names of a job's states and of what holds it back (state.h).
 */
#include "backfilld/state.h"

#include <string.h>

#include "backfilld/util.h"

static const char *const state_names[] = {
        [BF_JOB_PENDING] = "pending",     [BF_JOB_RUNNING] = "running",
        [BF_JOB_THROTTLED] = "throttled", [BF_JOB_PAUSED] = "paused",
        [BF_JOB_DONE] = "done",           [BF_JOB_FAILED] = "failed",
        [BF_JOB_CANCELLED] = "cancelled", [BF_JOB_FINISHING] = "finishing",
        [BF_JOB_UNDOING] = "undoing",     [BF_JOB_UNDONE] = "undone",
};

const char *bf_job_state_name(bf_job_state s)
{
	return (size_t)s < BF_ARRAY_LEN(state_names) ? state_names[s] : "unknown";
}

int bf_job_state_from_name(const char *name)
{
	for (size_t i = 0; i < BF_ARRAY_LEN(state_names); i++)
		if (strcmp(state_names[i], name) == 0)
			return (int)i;
	return -1;
}

static const char *const hold_names[] = {
        [BF_HOLD_NONE] = "none",
        [BF_HOLD_REPLAY_LAG] = "replay_lag",
        [BF_HOLD_SLOT] = "slot",
        [BF_HOLD_ARCHIVE] = "archive",
        [BF_HOLD_LAG_PROBE] = "lag_probe",
        [BF_HOLD_WINDOW] = "window",
        [BF_HOLD_RATE] = "rate",
        [BF_HOLD_WAL_RATE] = "wal_rate",
        [BF_HOLD_COMMIT_LATENCY] = "commit_latency",
        [BF_HOLD_THROTTLE_QUERY] = "throttle_query",
        [BF_HOLD_PAUSED] = "paused",
};

const char *bf_hold_name(bf_hold h)
{
	return (size_t)h < BF_ARRAY_LEN(hold_names) ? hold_names[h] : "unknown";
}

bool bf_job_state_terminal(bf_job_state s)
{
	return s == BF_JOB_DONE || s == BF_JOB_FAILED || s == BF_JOB_CANCELLED ||
	       s == BF_JOB_UNDONE;
}
