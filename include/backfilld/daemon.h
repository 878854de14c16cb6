/*
 * daemon.h - the process: one libev loop, the configuration, the jobs and the signals.
 *
 * Owns the loop, the running bf_config (swapped whole on a good reload, kept on a bad one),
 * every bf_job, the scheduling of at most max_parallel_jobs at once, the periodic duties
 * (progress lines, systemd status and watchdog) and the signal watchers, which only record
 * what was asked; the work happens from the loop.
 */
#ifndef BACKFILLD_DAEMON_H
#define BACKFILLD_DAEMON_H

#include <stdbool.h>

#include "backfilld/config.h"

typedef struct bf_daemon bf_daemon;

typedef struct bf_daemon_opts {
	const char *config_path;
	bool exit_when_done;
	bool dry_run;
	bool verbose; /* -v: debug logs, whatever log_level a reload reads */
} bf_daemon_opts;

/* A daemon running `cfg`, which it takes over (freed by bf_daemon_free). */
bf_daemon *bf_daemon_new(const bf_daemon_opts *opts, bf_config *cfg);
void bf_daemon_free(bf_daemon *d);

/* Run the loop until stopped by a signal (returns 0) or, with exit_when_done, until every
 * job is done or failed (0, or 3 when one failed). */
int bf_daemon_run(bf_daemon *d);

#endif
