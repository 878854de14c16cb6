/*
 * pressure.h - the lag decision: do the replicas, slots and archiver hold a job back, and why.
 *
 * Owns the rules of the `lag:` keys of a job (config.h, bf_lag_config) applied to one sample
 * of replication state that the lag monitor read from the primary (bf_lag_sample below), with
 * hysteresis, and the words of the reason an operator reads in state_reason and the log.
 * Pure: no clock, no I/O; the monitor fills the sample, the gate (gate.h) asks.
 *
 * Promises:
 * - Fail closed: no sample yet, a sample marked unreadable (its query failed, its connection
 *   is down) or a sample older than BF_PRESSURE_STALE_CHECKS check intervals throttles with
 *   "lag signal unreadable: <why>".
 * - A job that is running throttles as soon as ANY signal exceeds its limit (a limit of 0 is
 *   off; "exceeds" is strictly greater). A throttled job resumes only when EVERY numeric
 *   signal is below ceil(resume_below * limit) and every yes/no signal is clear. In between
 *   (the hysteresis band) it stays throttled and the reason says what it waits for:
 *   "replay lag 40MB, resuming below 32MB on standby1".
 * - The signals and their reasons, for each walsender of pg_stat_replication except base
 *   backups (state "backup"), each slot, and each name of `standbys`:
 *       replay lag 81MB > 64MB on standby1                  replay_bytes vs max_replay_bytes
 *       replay time 12s > 10s on standby1                   replay_lag vs max_replay_time
 *       standby1 stalled: last reply 45s ago > 30s          reply age vs stall_after
 *       slot cdc_slot retains 3.1GB > 2GB                   retained WAL vs max_slot_retained
 *       archive backlog 80 segments > 64                    vs max_archive_backlog
 *       standby1 not streaming (state catchup)              a `standbys` name, listed but not
 *                                                           streaming
 *       standby1 not streaming (not connected)              a `standbys` name, not listed...
 *       standby1 not streaming (not connected; slot standby1 retains 81MB)
 *                                                           ...with a slot of its name: the
 *                                                           slot's retained WAL is a lower
 *                                                           bound of its replay lag
 *       1 streaming standbys < min_standbys 2               count of state "streaming"
 * - A NULL measurement (-1 in the sample) is "not measured": it never throttles and never
 *   holds a throttled job back. replay_lag is NULL while a standby is idle or caught up, so
 *   reading NULL as lag would keep a throttled job (which writes nothing) throttled forever;
 *   reading it as "no lag" is not done either (it is never shown as 0).
 * - A required standby that is missing or not streaming throttles at once, without a grace
 *   period: a reconnect costs the job one check interval, and a standby that is really gone
 *   costs nothing more.
 * - The reason names the worst signal: a yes/no signal (not streaming, too few standbys) first,
 *   in that order and in the order of `standbys`; then the numeric signal furthest above its
 *   limit (value / limit); while only the band holds the job, the one furthest above its resume
 *   threshold. A value that would print the same as its limit ("64MB > 64MB") is printed
 *   exactly ("67108865B > 64MB").
 */
#ifndef BACKFILLD_PRESSURE_H
#define BACKFILLD_PRESSURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backfilld/config.h"
#include "backfilld/state.h"

/* A sample older than this many check intervals (and at least 1 s) counts as unreadable. */
#define BF_PRESSURE_STALE_CHECKS 3

/* One row of pg_stat_replication. */
typedef struct bf_lag_standby {
	const char *name;      /* application_name */
	const char *state;     /* "streaming", "catchup", "startup", "backup", "stopping" */
	int64_t replay_bytes;  /* pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn); -1 = NULL */
	int64_t replay_lag_ms; /* replay_lag; -1 = NULL (not measured) */
	int64_t reply_age_ms;  /* now() - reply_time; -1 = NULL */
} bf_lag_standby;

/* One row of pg_replication_slots. */
typedef struct bf_lag_slot {
	const char *name;       /* slot_name */
	const char *type;       /* slot_type: "physical" or "logical" (for logs; not decided on) */
	bool active;            /* for logs; an inactive slot retains WAL all the same */
	int64_t retained_bytes; /* pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn); -1 = NULL */
	const char *wal_status; /* "reserved", "extended", "unreserved", "lost"; NULL = unknown */
} bf_lag_slot;

/* What the lag monitor read from a primary at one check. The monitor owns the arrays and
 * strings; they must stay valid while bf_pressure_decide() runs. */
typedef struct bf_lag_sample {
	bool ok;                        /* false: the probe failed; nothing below is read */
	const char *error;              /* why, when !ok ("connection refused"); may be NULL */
	int64_t taken_ms;               /* when the result arrived: the clock of now_ms below */
	const bf_lag_standby *standbys; /* every row of pg_stat_replication */
	size_t n_standbys;
	const bf_lag_slot *slots; /* every row of pg_replication_slots */
	size_t n_slots;
	int64_t archive_backlog; /* WAL segments waiting for archive_command; -1 = archiving off */
} bf_lag_sample;

/* Does this configuration watch anything at all? When not, the job needs no lag monitor and
 * bf_pressure_decide() always says "go". */
bool bf_pressure_enabled(const bf_lag_config *cfg);

/* Should the job be throttled now? `sample` is the monitor's latest (NULL when there is
 * none yet); `throttled` is whether the job is throttled by back-pressure now (it selects the
 * resume rule); `now_ms` is on the clock of sample->taken_ms (bf_mono_ms()). Returns the class
 * of the signal that throttles (BF_HOLD_REPLAY_LAG, _SLOT, _ARCHIVE, or _LAG_PROBE when the
 * sample is unreadable), with the reason in `reason` (NUL-terminated, truncated to len; may
 * be NULL when len is 0); returns BF_HOLD_NONE (0) with reason "" to go. */
bf_hold bf_pressure_decide(const bf_lag_config *cfg, const bf_lag_sample *sample, bool throttled,
                           int64_t now_ms, char *reason, size_t len);

#endif
