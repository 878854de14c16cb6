/*
 * rate.c - rows per second over the last minute (rate.h).
 */
#include "backfilld/rate.h"

void bf_rate_start(bf_rate *r, int64_t now)
{
	r->since_ms = now;
	r->head = r->len = 0;
}

void bf_rate_add(bf_rate *r, int64_t now, int64_t rows)
{
	size_t i = (r->head + r->len) % BF_RATE_SLOTS;

	if (r->len == BF_RATE_SLOTS) {
		r->head = (r->head + 1) % BF_RATE_SLOTS;
		r->len--;
	}
	r->slot[i].at_ms = now;
	r->slot[i].rows = rows;
	r->len++;
}

double bf_rate_per_second(bf_rate *r, int64_t now)
{
	int64_t rows = 0, span;

	while (r->len > 0 && r->slot[r->head].at_ms < now - BF_RATE_WINDOW_MS) {
		r->head = (r->head + 1) % BF_RATE_SLOTS;
		r->len--;
	}
	for (size_t k = 0; k < r->len; k++)
		rows += r->slot[(r->head + k) % BF_RATE_SLOTS].rows;
	span = now - r->since_ms;
	if (span > BF_RATE_WINDOW_MS)
		span = BF_RATE_WINDOW_MS;
	if (span < 1000)
		span = 1000;
	return (double)rows * 1000.0 / (double)span;
}
