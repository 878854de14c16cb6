/*
 * window.c - daily window arithmetic in local minutes (see window.h for the promises).
 *
 * A window is two minutes of the day; everything else follows from "start inclusive, end
 * exclusive, wrapping at midnight". The text for reasons is the one the operator wrote
 * (bf_window.text), or rebuilt from the minutes for a window made in code.
 */
#include "backfilld/window.h"

#include <stdio.h>

#define DAY BF_WINDOW_MINUTES_PER_DAY

static int minute_mod(int m)
{
	m %= DAY;
	return m < 0 ? m + DAY : m;
}

bool bf_window_open(const bf_window *w, int minute_of_day)
{
	if (w == NULL || !w->set)
		return true;
	int start = minute_mod(w->start_min);
	int end = minute_mod(w->end_min);
	int m = minute_mod(minute_of_day);

	if (start == end)
		return true;
	if (start < end)
		return m >= start && m < end;
	return m >= start || m < end; /* wraps midnight */
}

int64_t bf_window_ms_until_open(const bf_window *w, const struct tm *local_now)
{
	int m = minute_mod(local_now->tm_hour * 60 + local_now->tm_min);
	int sec = local_now->tm_sec;

	if (bf_window_open(w, m))
		return 0;
	if (sec < 0)
		sec = 0;
	if (sec > 59) /* a leap second */
		sec = 59;
	/* closed, so m != start and the start is 1..1439 minutes ahead */
	int ahead = minute_mod(w->start_min - m);
	return (int64_t)ahead * 60000 - (int64_t)sec * 1000;
}

char *bf_window_reason(const bf_window *w, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	if (w == NULL || !w->set) {
		snprintf(buf, len, "outside window (none)");
	} else if (w->text[0] != '\0') {
		snprintf(buf, len, "outside window %.*s", (int)sizeof(w->text), w->text);
	} else {
		int start = minute_mod(w->start_min);
		int end = minute_mod(w->end_min);
		if (end == 0 && start != 0)
			end = DAY; /* midnight as an end reads 24:00 */
		snprintf(buf, len, "outside window %02d:%02d-%02d:%02d", start / 60, start % 60,
		         end / 60, end % 60);
	}
	return buf;
}
