/*
 * units.c - PostgreSQL's units for durations and sizes, both ways.
 *
 * Parsing follows postgresql.conf: a non-negative integer, optional blanks, then a unit whose
 * case matters ("kB", not "KB"; "min", not "m", which would be ambiguous with months in
 * other tools). A bare integer is milliseconds or bytes. Leading and trailing blanks are
 * ignored. Anything else - a sign, a fraction, an unknown unit, a value beyond int64 - is
 * refused, so the caller can tell the operator exactly which value is wrong.
 *
 * Formatting is for people reading logs and status lines: values are truncated, never
 * rounded up, so a shown value is never larger than the real one.
 */
#include "backfilld/units.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct unit {
	const char *name;
	int64_t factor;
};

static const struct unit duration_units[] = {
        {.name = "ms", .factor = 1},
        {.name = "s", .factor = 1000},
        {.name = "min", .factor = 60 * 1000},
        {.name = "h", .factor = 60 * 60 * 1000},
        {.name = "d", .factor = 24 * 60 * 60 * 1000},
};

static const struct unit size_units[] = {
        {.name = "B", .factor = 1},
        {.name = "kB", .factor = INT64_C(1) << 10},
        {.name = "MB", .factor = INT64_C(1) << 20},
        {.name = "GB", .factor = INT64_C(1) << 30},
        {.name = "TB", .factor = INT64_C(1) << 40},
};

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads the digits at *p into *out, advancing *p. Fails on no digits or int64 overflow. */
static int read_uint(const char **p, int64_t *out)
{
	const char *s = *p;
	int64_t v = 0;

	if (!is_digit(*s))
		return -1;
	for (; is_digit(*s); s++) {
		int d = *s - '0';
		if (v > (INT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return 0;
}

/* "<digits> [blanks] [unit]" with blanks around; the unit from the table, or `bare` when none. */
static int parse_with_units(const char *text, const struct unit *units, size_t n_units,
                            int64_t bare, int64_t *out)
{
	const char *p = text;
	int64_t v;

	if (text == NULL)
		return -1;
	while (is_blank(*p))
		p++;
	if (read_uint(&p, &v) < 0)
		return -1;
	while (is_blank(*p))
		p++;
	const char *u = p;
	while (*p && !is_blank(*p))
		p++;
	size_t ulen = (size_t)(p - u);
	while (is_blank(*p))
		p++;
	if (*p != '\0')
		return -1;

	int64_t factor = bare;
	if (ulen > 0) {
		factor = 0;
		for (size_t i = 0; i < n_units; i++) {
			if (strlen(units[i].name) == ulen && strncmp(units[i].name, u, ulen) == 0) {
				factor = units[i].factor;
				break;
			}
		}
		if (factor == 0)
			return -1;
	}
	if (v > INT64_MAX / factor)
		return -1;
	*out = v * factor;
	return 0;
}

int bf_units_parse_duration(const char *text, int64_t *ms_out)
{
	return parse_with_units(text, duration_units,
	                        sizeof(duration_units) / sizeof(duration_units[0]), 1, ms_out);
}

int bf_units_parse_size(const char *text, int64_t *bytes_out)
{
	return parse_with_units(text, size_units, sizeof(size_units) / sizeof(size_units[0]), 1,
	                        bytes_out);
}

int bf_units_parse_percent(const char *text, double *fraction_out)
{
	const char *p = text;

	if (text == NULL)
		return -1;
	while (is_blank(*p))
		p++;
	const char *num = p;
	if (!is_digit(*p))
		return -1;
	while (is_digit(*p))
		p++;
	if (*p == '.') {
		p++;
		if (!is_digit(*p))
			return -1;
		while (is_digit(*p))
			p++;
	}
	size_t nlen = (size_t)(p - num);
	while (is_blank(*p))
		p++;
	if (*p != '%')
		return -1;
	p++;
	while (is_blank(*p))
		p++;
	if (*p != '\0' || nlen > 32)
		return -1;

	/* The text is validated above, so strtod sees only digits and one dot. */
	char buf[40];
	memcpy(buf, num, nlen);
	buf[nlen] = '\0';
	double v = strtod(buf, NULL);
	if (!(v >= 0.0 && v <= 100.0))
		return -1;
	*fraction_out = v / 100.0;
	return 0;
}

char *bf_units_format_duration(int64_t ms, char *buf, size_t len)
{
	const char *sign = ms < 0 ? "-" : "";
	unsigned long long u = ms < 0 ? 0ULL - (unsigned long long)ms : (unsigned long long)ms;

	if (len == 0)
		return buf;
	if (u < 1000ULL) {
		snprintf(buf, len, "%s%llums", sign, u);
	} else if (u < 60ULL * 1000) {
		unsigned long long tenths = (u % 1000) / 100;
		if (tenths)
			snprintf(buf, len, "%s%llu.%llus", sign, u / 1000, tenths);
		else
			snprintf(buf, len, "%s%llus", sign, u / 1000);
	} else if (u < 60ULL * 60 * 1000) {
		snprintf(buf, len, "%s%llum%02llus", sign, u / 60000, (u / 1000) % 60);
	} else if (u < 24ULL * 60 * 60 * 1000) {
		snprintf(buf, len, "%s%lluh%02llum", sign, u / 3600000, (u / 60000) % 60);
	} else {
		snprintf(buf, len, "%s%llud%02lluh", sign, u / 86400000, (u / 3600000) % 24);
	}
	return buf;
}

char *bf_units_format_size(int64_t bytes, char *buf, size_t len)
{
	const size_t n_units = sizeof(size_units) / sizeof(size_units[0]);
	const char *sign = bytes < 0 ? "-" : "";
	unsigned long long u =
	        bytes < 0 ? 0ULL - (unsigned long long)bytes : (unsigned long long)bytes;
	size_t i = 0;

	if (len == 0)
		return buf;
	while (i + 1 < n_units && u >= (unsigned long long)size_units[i + 1].factor)
		i++;
	unsigned long long f = (unsigned long long)size_units[i].factor;
	unsigned long long whole = u / f;
	/* tenths without overflow: the remainder is below 2^40, so times 10 fits */
	unsigned long long tenth = (u % f) * 10 / f;

	if (i > 0 && whole < 10 && tenth > 0)
		snprintf(buf, len, "%s%llu.%llu%s", sign, whole, tenth, size_units[i].name);
	else
		snprintf(buf, len, "%s%llu%s", sign, whole, size_units[i].name);
	return buf;
}
