/*
 * bucket.c - the token bucket of max_rows_per_second (see bucket.h for the promises).
 *
 * The balance is kept in thousandths of a row, so that `rate` rows per second times a number
 * of milliseconds is an exact integer: waiting exactly the time bf_bucket_wait_ms() said
 * always suffices. All inputs are clamped (bucket.h) so that no product can overflow.
 */
#include "backfilld/bucket.h"

#include <stdbool.h>

#define MILLI    INT64_C(1000)
#define DEBT_MAX (BF_BUCKET_ROWS_MAX * MILLI * 1000) /* a floor for absurd callers */

static int64_t clamp_rate(int64_t rate)
{
	if (rate < 0)
		return 0;
	return rate > BF_BUCKET_RATE_MAX ? BF_BUCKET_RATE_MAX : rate;
}

static int64_t clamp_rows(int64_t rows)
{
	if (rows < 0)
		return 0;
	return rows > BF_BUCKET_ROWS_MAX ? BF_BUCKET_ROWS_MAX : rows;
}

/* The most the balance may hold before a batch of `rows`: one second of rate, or the batch. */
static int64_t capacity(int64_t rate, int64_t rows)
{
	return (rows > rate ? rows : rate) * MILLI;
}

/* The balance at now_ms, earned since last_ms at most up to the capacity (a balance already
 * above it, from an earlier larger batch, is neither earned on nor cut). */
static int64_t balance_at(const bf_bucket *b, int64_t now_ms, int64_t cap)
{
	int64_t dt = now_ms - b->last_ms;

	if (dt <= 0 || b->balance >= cap)
		return b->balance;
	int64_t missing = cap - b->balance;
	if (dt >= missing / b->rate + 1)
		return cap;
	return b->balance + b->rate * dt; /* < cap, no overflow: rate * dt <= missing + rate */
}

void bf_bucket_init(bf_bucket *b, int64_t rate_per_s, int64_t now_ms)
{
	b->rate = clamp_rate(rate_per_s);
	b->balance = b->rate * MILLI;
	b->last_ms = now_ms;
}

int64_t bf_bucket_wait_ms(const bf_bucket *b, int64_t now_ms, int64_t rows)
{
	if (b->rate == 0)
		return 0;
	rows = clamp_rows(rows);
	int64_t need = rows * MILLI - balance_at(b, now_ms, capacity(b->rate, rows));
	if (need <= 0)
		return 0;
	return (need + b->rate - 1) / b->rate;
}

void bf_bucket_take(bf_bucket *b, int64_t now_ms, int64_t rows)
{
	if (b->rate == 0)
		return;
	rows = clamp_rows(rows);
	b->balance = balance_at(b, now_ms, capacity(b->rate, rows));
	if (now_ms > b->last_ms)
		b->last_ms = now_ms;
	b->balance -= rows * MILLI;
	if (b->balance < -DEBT_MAX)
		b->balance = -DEBT_MAX;
}

void bf_bucket_set_rate(bf_bucket *b, int64_t rate_per_s, int64_t now_ms)
{
	int64_t rate = clamp_rate(rate_per_s);

	if (b->rate == 0 || rate == 0) {
		bf_bucket_init(b, rate, now_ms);
		return;
	}
	b->balance = balance_at(b, now_ms, capacity(b->rate, 0));
	if (now_ms > b->last_ms)
		b->last_ms = now_ms;
	b->rate = rate;
	if (b->balance > rate * MILLI)
		b->balance = rate * MILLI;
}
