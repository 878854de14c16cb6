/*
 * autopar.h - `parallel: auto`: how many slices of a job's first pass walk at once.
 *
 * A job with `parallel: auto` has its first pass cut into BF_AUTOPAR_MAX slices (key ranges,
 * or a partitioned table's leaves) and starts with one walker. The controller looks once a
 * second at whether every walker has room: each runs unthrottled at full pace (no signal,
 * replica or application, holds it back and the commit-latency pace is 100%). After
 * BF_AUTOPAR_GROW_MS of room without a break it adds a walker (additive increase), up to
 * BF_AUTOPAR_MAX and the slices left; at the first look without room it halves the walkers
 * (multiplicative decrease), at most once per BF_AUTOPAR_SETTLE_MS so that the signals see
 * the change before the next. So a job on an idle server at night uses its idle cores, and
 * the same job during the day comes back to what the application tolerates, without an
 * operator. A walker taken away stops after its batch; its slice keeps its cursor and waits
 * for its turn again.
 *
 * Pure: times in milliseconds, given by the caller.
 */
#ifndef BACKFILLD_AUTOPAR_H
#define BACKFILLD_AUTOPAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BF_AUTOPAR_MAX       4    /* slices cut for auto, and the most walkers */
#define BF_AUTOPAR_GROW_MS   2000 /* room without a break before one more walker */
#define BF_AUTOPAR_SETTLE_MS 3000 /* at least this long between two decreases */

typedef struct bf_autopar {
	size_t walkers;
	int64_t room_since; /* when the current stretch of room began; < 0: no room now */
	int64_t changed_at; /* the last change of walkers */
} bf_autopar;

/* One walker, from `now`. */
void bf_autopar_init(bf_autopar *a, int64_t now);

/* One look: `room` when every walker runs unthrottled at full pace, `left` the slices not
 * done. The walkers wanted from now (1..min(BF_AUTOPAR_MAX, left), at least 1). */
size_t bf_autopar_decide(bf_autopar *a, bool room, size_t left, int64_t now);

#endif
