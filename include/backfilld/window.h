/*
 * window.h - the daily time window of a job (`window: "01:00-06:00"`), in the database
 * server's local wall time (the job engine reads it from the server: bf_sql_server_clock).
 *
 * Owns the arithmetic on a bf_window (config.h): is it open at a minute of the day, how long
 * until it opens, and the words for state_reason. Pure functions over a broken-down local
 * time the caller obtains; no clock, no time zone lookups, no I/O.
 *
 * Promises:
 * - An unset window, or one whose start equals its end ("00:00-24:00", "05:00-05:00"), is
 *   always open.
 * - The start minute is inside, the end minute is not: "01:00-06:00" is open from 01:00:00
 *   to 05:59:59. A window whose end is before its start wraps midnight: "22:00-06:00" is open
 *   from 22:00 to 05:59:59.
 * - bf_window_ms_until_open() is 0 exactly when the window is open, and otherwise counts to
 *   the start minute from the given second (sub-second parts are not in a struct tm, so the
 *   result may be up to 999 ms early; asking again then gives the remainder).
 * - It counts wall-clock minutes: across a daylight saving change the real wait differs from
 *   the count by the shift. The caller should wake at least every BF_WINDOW_RECHECK_MS and ask
 *   again rather than sleep the whole count.
 */
#ifndef BACKFILLD_WINDOW_H
#define BACKFILLD_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "backfilld/config.h"

#define BF_WINDOW_MINUTES_PER_DAY (24 * 60)
/* The longest a closed window's waiter should sleep before it looks at the clock again. */
#define BF_WINDOW_RECHECK_MS INT64_C(60000)

/* Is the window open at `minute_of_day` (0..1439, minutes after local midnight; other values
 * are taken modulo a day)? */
bool bf_window_open(const bf_window *w, int minute_of_day);

/* Milliseconds from local_now until the window opens; 0 when it is open now. */
int64_t bf_window_ms_until_open(const bf_window *w, const struct tm *local_now);

/* The state_reason of a job waiting for its window: "outside window 01:00-06:00". Always
 * NUL-terminates (truncating to len); returns buf. */
char *bf_window_reason(const bf_window *w, char *buf, size_t len);

#endif
