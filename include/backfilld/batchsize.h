/*
 * batchsize.h - the adaptive batch size of one job: how many rows the next batch asks for.
 *
 * Owns the controller that steers the batch size toward target_batch_time between
 * min_batch_size and max_batch_size, and the "stuck at the floor" news. Pure arithmetic: no
 * clock, no I/O; the job engine measures and calls in.
 *
 * Promises:
 * - The size is always within [min, max] (after init, every observation, timeout and reload).
 * - It follows a robust statistic: the median cost per row (ms/row) of the last
 *   BF_BATCHSIZE_WINDOW measured batches. The next size is target / median (a full
 *   proportional step), but never more than 1.5 times the current size, so growth is smooth.
 * - Dead band: while the median predicts a batch time within +-10% of the target, the size
 *   does not move, so it settles instead of hunting around the target.
 * - Fast cut: one batch that takes 3 times the target or more cuts the size at once to what
 *   that batch's own cost per row fits in the target, and forgets the older (cheaper) history.
 *   A single slower batch below that line (a checkpoint, a lock wait) moves nothing: the median
 *   ignores it.
 * - A short batch (fewer than half the rows asked: the end of the key range, rows skipped by
 *   SKIP LOCKED) that stayed within the target is ignored (its time says nothing about a full
 *   batch); a short batch that ran over the target may shrink the size but never grows it.
 *   An empty batch changes nothing.
 * - target_ms == 0 keeps the size fixed at `initial` (batch_size); a timeout halves it for the
 *   retries, and committed batches bring it back at most 1.5x per batch.
 * - The floor news is true for exactly one observation: the one after which the size sits at
 *   min while that batch still took more than the target (+10%). It is not repeated while the
 *   size stays at the floor, and can come again only after the size has left the floor.
 */
#ifndef BACKFILLD_BATCHSIZE_H
#define BACKFILLD_BATCHSIZE_H

#include <stdbool.h>
#include <stdint.h>

/* How many recent batches the median looks at. */
#define BF_BATCHSIZE_WINDOW 5

/* One job's controller. Fill it with bf_batchsize_init(); read it with the functions below.
 * The fields are private to batchsize.c. */
typedef struct bf_batchsize {
	int64_t size;      /* rows the next batch asks for */
	int64_t fixed;     /* batch_size as configured: the size when target_ms == 0 */
	int64_t min;       /* min_batch_size */
	int64_t max;       /* max_batch_size */
	int64_t target_ms; /* target_batch_time; 0 = fixed size */
	double cost[BF_BATCHSIZE_WINDOW]; /* ms per row of recent batches, a ring */
	int n_cost;                       /* how many of cost[] hold a value */
	int next_cost;                    /* where the next value goes */
	bool floor_reported;              /* the floor news was given, the size has not left it */
	bool floor_news;                  /* the last observation was that news */
} bf_batchsize;

/* Start a controller: the first batch asks for `initial` (clamped into [min, max]). Values
 * the configuration already validated are taken as they are; nonsense is made safe (min < 1
 * becomes 1, max < min becomes min, a negative target becomes 0). */
void bf_batchsize_init(bf_batchsize *c, int64_t initial, int64_t min, int64_t max,
                       int64_t target_ms);

/* After each committed batch: it updated `rows` rows and took `elapsed_ms` of the batch's own
 * time (its round trips to the server; never sleep, throttle or reconnect time). Returns the
 * size of the next batch (also bf_batchsize_size()). */
int64_t bf_batchsize_observe(bf_batchsize *c, int64_t rows, int64_t elapsed_ms);

/* After a batch failed with lock_timeout or statement_timeout (or a deadlock or
 * serialization failure): halve the size (not below min). Returns the new size. */
int64_t bf_batchsize_on_timeout(bf_batchsize *c);

/* A reload changed the job's tuning; applies from the next batch. With target_ms == 0 the
 * size becomes `initial`; otherwise the current size is kept (clamped into the new limits)
 * along with the measured costs, which do not depend on the target. */
void bf_batchsize_set_limits(bf_batchsize *c, int64_t initial, int64_t min, int64_t max,
                             int64_t target_ms);

/* The size of the next batch. */
int64_t bf_batchsize_size(const bf_batchsize *c);

/* True when the last bf_batchsize_observe() put the job at its floor while its batches are
 * still slower than the target: say so (once) in the log and state_reason. */
bool bf_batchsize_floor_news(const bf_batchsize *c);

#endif
