/*
 * rate.h - the recent rate of a walker: rows of its batches over the last minute.
 *
 * Owns a ring of the last BF_RATE_SLOTS batches (when, how many rows). Pure: times are
 * given (bf_mono_ms()); a batch older than BF_RATE_WINDOW_MS no longer counts. The rate of a
 * walker that began less than a minute ago is over the time since it began (at least a
 * second), so a fresh start does not show a minute's average of a few seconds' work.
 */
#ifndef BACKFILLD_RATE_H
#define BACKFILLD_RATE_H

#include <stddef.h>
#include <stdint.h>

#define BF_RATE_WINDOW_MS 60000
#define BF_RATE_SLOTS     512

typedef struct bf_rate {
	int64_t since_ms; /* when the walker began */
	struct {
		int64_t at_ms;
		int64_t rows;
	} slot[BF_RATE_SLOTS];
	size_t head, len;
} bf_rate;

void bf_rate_start(bf_rate *r, int64_t now);
void bf_rate_add(bf_rate *r, int64_t now, int64_t rows);
/* Rows per second now. */
double bf_rate_per_second(bf_rate *r, int64_t now);

#endif
