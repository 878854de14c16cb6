/*
 * units.h - durations and sizes written with PostgreSQL's units.
 *
 * Owns the text <-> number conversions of the configuration: "250ms", "5s", "2min", "1h",
 * "1d" or a bare integer of milliseconds; "512kB", "64MB", "2GB", "1TB" or bare bytes
 * (1kB = 1024 bytes, as in postgresql.conf); "50%" for shares. Pure functions, no I/O.
 */
#ifndef BACKFILLD_UNITS_H
#define BACKFILLD_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Parse a duration into milliseconds. Returns 0, or -1 when the text is not a non-negative
 * integer followed by an optional unit (ms, s, min, h, d) or overflows. */
int bf_units_parse_duration(const char *text, int64_t *ms_out);

/* Parse a size into bytes. Returns 0, or -1 as above (units B, kB, MB, GB, TB). */
int bf_units_parse_size(const char *text, int64_t *bytes_out);

/* Parse a share "50%" (0..100, integer or with decimals) into a fraction 0.0..1.0. */
int bf_units_parse_percent(const char *text, double *fraction_out);

/* Write a duration the way an operator reads it: "850ms", "12.5s", "3m14s", "2h05m",
 * "3d04h". Always NUL-terminates; returns buf. */
char *bf_units_format_duration(int64_t ms, char *buf, size_t len);

/* Write a size with the largest unit that keeps a value >= 1: "512B", "81MB", "2.1GB". */
char *bf_units_format_size(int64_t bytes, char *buf, size_t len);

#endif
