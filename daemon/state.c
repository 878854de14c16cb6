/*
 * state.c - the names of a job's states (state.h).
 */
#include "backfilld/state.h"

#include <string.h>

#include "backfilld/util.h"

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

int bf_job_state_from_name(const char *name)
{
	for (size_t i = 0; i < BF_ARRAY_LEN(state_names); i++)
		if (strcmp(state_names[i], name) == 0)
			return (int)i;
	return -1;
}

bool bf_job_state_terminal(bf_job_state s)
{
	return s == BF_JOB_DONE || s == BF_JOB_FAILED || s == BF_JOB_CANCELLED;
}
