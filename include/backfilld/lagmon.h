/*
 * lagmon.h - the lag monitor of one server: replication, slot and archive signals.
 *
 * Owns a connection to the primary and a repeating probe of pg_stat_replication,
 * pg_replication_slots and pg_stat_archiver, turned into a bf_lag_sample for the pure
 * decision in pressure.h. Fails closed: while the probe cannot be read the sample says so.
 */
#ifndef BACKFILLD_LAGMON_H
#define BACKFILLD_LAGMON_H

#include <ev.h>
#include <stdint.h>

#include "backfilld/pressure.h"

typedef struct bf_lagmon bf_lagmon;

/* A monitor of the server behind `database` (a conninfo), probing every interval_ms. */
bf_lagmon *bf_lagmon_new(struct ev_loop *loop, const char *database, int64_t interval_ms);
void bf_lagmon_free(bf_lagmon *m);
const char *bf_lagmon_database(const bf_lagmon *m);

/* Use the smallest check_interval of the jobs that share this monitor. */
void bf_lagmon_set_interval(bf_lagmon *m, int64_t interval_ms);

/* The latest sample, owned by the monitor, valid until the next probe result is delivered.
 * Before the first probe completes, or while the connection is down or the probe fails:
 * ok = false with the error (fail closed). Never NULL. */
const bf_lag_sample *bf_lagmon_sample(const bf_lagmon *m);

#endif
