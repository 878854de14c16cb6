/*
 * lagmon.h - the lag monitor of one server: replication, slot and archive signals.
 *
 * Owns a connection of its own to the server (application_name "backfilld lag") and a
 * repeating probe, one query per check interval, of pg_stat_replication, pg_replication_slots
 * and pg_stat_archiver, turned into a bf_lag_sample for the pure decision in pressure.h. It
 * reconnects with backoff by itself and never blocks the loop.
 *
 * Promises:
 * - Fail closed: before the first probe completes, while the connection is down, while the
 *   probe fails, while the server is in recovery (a standby has no pg_current_wal_lsn()), and
 *   while the role cannot see the standbys' positions (it needs pg_monitor), the sample says
 *   ok = false with the reason in words.
 * - Only transitions are logged: the probe failing (once, with why) and readable again.
 * - Before anything was read or failed, the sample's taken_ms is 0 (a job may wait briefly
 *   for the first probe instead of throttling at once).
 */
#ifndef BACKFILLD_LAGMON_H
#define BACKFILLD_LAGMON_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "backfilld/gate.h"
#include "backfilld/pressure.h"

typedef struct bf_lagmon bf_lagmon;

/* A monitor of the server behind `database` (a conninfo), probing every interval_ms from the
 * loop. Starts connecting at once. */
bf_lagmon *bf_lagmon_new(struct ev_loop *loop, const char *database, int64_t interval_ms);
void bf_lagmon_free(bf_lagmon *m);
const char *bf_lagmon_database(const bf_lagmon *m);

/* For the metrics: the latest lag sample (ok = false while unreadable; valid as said at
 * bf_lagmon_readings), and whether the monitor's connection is up now. */
const bf_lag_sample *bf_lagmon_sample(const bf_lagmon *m);
bool bf_lagmon_connected(const bf_lagmon *m);

/* Use the smallest check_interval of the jobs that share this monitor for the lag probe;
 * `commits`: some job has a max_commit_latency (the commit probe then runs every 200 ms);
 * `wal_rate`: the smallest max_wal_rate among them (0: none). */
void bf_lagmon_set_interval(bf_lagmon *m, int64_t interval_ms, bool commits, int64_t wal_rate);

/* A batch on this server ended with the server's WAL insert position at `lsn` ("X/Y"): the
 * WAL written since the last one the monitor heard of (by any job of the server, and by
 * whatever else wrote meanwhile) is charged to the server's WAL bucket. */
void bf_lagmon_wal(bf_lagmon *m, const char *lsn);

/* The gate's readings of this server for `job`, as of now: every signal the monitor reads,
 * the job's throttle_query among them (the gate decides on them; a job only hands them
 * over). The lag sample is owned by the monitor and
 * valid until the next loop iteration that delivers a new probe result. Before the first
 * probe completes, or while the connection is down or the probe query fails: ok = false with
 * error text (fail closed). taken_ms is on bf_mono_ms()'s clock (util.h). */
void bf_lagmon_readings(const bf_lagmon *m, const bf_job_config *job, bf_gate_readings *out);

/* The throttle_query texts of the jobs on this server (distinct), run after each commit
 * probe; a text kept from the last list keeps its reading. */
void bf_lagmon_set_queries(bf_lagmon *m, const char *const *sqls, size_t n);

/* A job's batch on this server begins (true) or ends (false): a commit probe taken while
 * none is in flight measures the server's idle commit latency (the baseline). */
void bf_lagmon_batch(bf_lagmon *m, bool begins);

#endif
