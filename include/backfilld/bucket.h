/*
 * bucket.h - the token bucket behind max_rows_per_second, across the batches of one job.
 *
 * Owns the row budget of a job: rows are earned at `rate` per second and spent when a batch
 * commits. Pure arithmetic on times the caller passes in (monotonic milliseconds, e.g.
 * bf_mono_ms()); no clock, no I/O.
 *
 * Promises:
 * - rate 0 is "no cap": bf_bucket_wait_ms() is always 0.
 * - A batch of `rows` may start when the balance covers it; bf_bucket_wait_ms() says how long
 *   until then, and asking again after exactly that long gives 0 (integer arithmetic in
 *   thousandths of a row, so no rounding drift).
 * - Idle time is not hoarded: the balance never grows beyond one second of rate, or the batch
 *   at hand when that is larger (so a batch bigger than the rate can still start).
 * - A new bucket starts full (one second of rate), so N rows take at least
 *   (N - rate) / rate seconds: 20,000 rows at 2,000/s take at least 9 s.
 * - The actual rows of a committed batch are charged even when the caller did not wait (the
 *   balance goes into debt, and the next wait pays it back).
 * - A clock that goes backwards earns nothing and loses nothing.
 */
#ifndef BACKFILLD_BUCKET_H
#define BACKFILLD_BUCKET_H

#include <stdint.h>

/* Rates and row counts beyond these are treated as these (no overflow anywhere). */
#define BF_BUCKET_RATE_MAX INT64_C(1000000000000)
#define BF_BUCKET_ROWS_MAX INT64_C(1000000000000)

/* One job's bucket; the fields are private to bucket.c. */
typedef struct bf_bucket {
	int64_t rate;    /* rows per second; 0 = no cap */
	int64_t balance; /* thousandths of a row at last_ms; negative = debt */
	int64_t last_ms; /* when balance was brought up to date */
} bf_bucket;

/* A bucket earning `rate_per_s` rows per second (0 = no cap), full at now_ms. */
void bf_bucket_init(bf_bucket *b, int64_t rate_per_s, int64_t now_ms);

/* How many milliseconds from now_ms until a batch of `rows` may start (0 = now). */
int64_t bf_bucket_wait_ms(const bf_bucket *b, int64_t now_ms, int64_t rows);

/* A batch committed at now_ms having updated `rows` rows: charge them. */
void bf_bucket_take(bf_bucket *b, int64_t now_ms, int64_t rows);

/* A reload changed max_rows_per_second; applies to the time from now_ms on. Turning the cap
 * on starts a full bucket; lowering the rate drops a balance above one second of the new
 * rate; a debt is kept (those rows were done) and is paid back at the new rate. */
void bf_bucket_set_rate(bf_bucket *b, int64_t rate_per_s, int64_t now_ms);

#endif
