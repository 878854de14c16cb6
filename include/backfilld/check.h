/*
 * check.h - `backfilld --check`: every job against its live database, changing nothing.
 *
 * Owns the one-shot validation: connect to each job's database, resolve the table and key,
 * compile the real batch statement (set and where included) inside a transaction that is
 * rolled back, so even a control schema that does not exist yet is only created in that
 * transaction; print each job's batch SQL and the planner's estimate. Blocking libpq is fine
 * here: nothing else runs in this mode.
 */
#ifndef BACKFILLD_CHECK_H
#define BACKFILLD_CHECK_H

#include "backfilld/config.h"

/* Prints the report on stdout and the problems on stderr; returns the exit status: 0 when
 * every job can run, 1 otherwise. */
int bf_check_run(const bf_config *cfg);

#endif
