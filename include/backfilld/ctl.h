/*
 * ctl.h - what backfillctl prints, as text: the status table, the progress bar, the plain
 * lines of `status --watch` into a pipe, and JSON values.
 *
 * Owns the presentation of `<schema>.progress` rows. Pure functions appending to a bf_sbuf,
 * no I/O and no libpq, so Check tests the exact text; backfillctl.c turns query results into
 * bf_ctl_job rows and writes what these functions build.
 *
 * Promises:
 *   - the table has one header line and one line per job, columns padded to their widest
 *     value, the free-text reason last so that it never pushes the other columns around;
 *     a control character in a cell (a newline in a reason) is shown as a space;
 *   - an unknown value (no estimate, no rate yet, no ETA) shows as "-", never as 0;
 *   - plain lines are logfmt, like the daemon's log, so a pipe into a log shipper reads them;
 *   - JSON output is valid JSON whatever the text: strings are escaped (control characters as
 *     \u00XX), numbers that JSON cannot write (NaN, Infinity) become strings.
 */
#ifndef BACKFILLD_CTL_H
#define BACKFILLD_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backfilld/util.h"

/* One job as the status table shows it. Strings are borrowed (e.g. from a PGresult). */
typedef struct bf_ctl_job {
	const char *name;
	const char *state;
	const char *reason; /* state_reason; NULL or "" when there is none */
	int64_t rows_done;
	int64_t rows_estimate; /* < 0: unknown */
	double percent;        /* 0..100 */
	double rate;           /* rows per second; < 0: unknown */
	int64_t eta_ms;        /* < 0: none (no rate yet, or the job is over) */
	int64_t batch_size;    /* < 0: unknown */
	int64_t backup_bytes;  /* the backup's size (backup: true); 0: none (a table has pages) */
} bf_ctl_job;

/* Append the status table of `n` jobs: a header, then one line per job, each ending in "\n".
 * The BACKUP column (before the reason) is there when some job has a backup.
 * With bar_width > 0 the percent column also shows a progress bar of that many cells
 * (the --watch view on a terminal). No jobs: the header and "(no jobs)". */
void bf_ctl_format_table(bf_sbuf *out, const bf_ctl_job *jobs, size_t n, int bar_width);

/* Append "[#####.....]": `width` cells between brackets, filled in proportion to percent
 * (clamped to 0..100; a cell is filled only once its share is reached, so 99.9% is not
 * drawn full). */
void bf_ctl_format_bar(bf_sbuf *out, double percent, int width);

/* Append one logfmt line for a job (the --watch output into a pipe), ending in "\n":
 * `time=TIME job=NAME state=STATE rows=N estimate=N percent=P rate=R eta=E batch=B
 * backup_bytes=N reason="..."`. Unknown values are left out (backup_bytes without a backup);
 * `time` is left out when NULL. */
void bf_ctl_format_line(bf_sbuf *out, const char *time, const bf_ctl_job *j);

/* Append `value` as a logfmt value: bare when it is non-empty and has no space, '"', '=' or
 * control character, else double-quoted with \" \\ \n \t escapes. */
void bf_ctl_logfmt_value(bf_sbuf *out, const char *value);

/* How a column's value is written in JSON. */
typedef enum bf_ctl_json_kind {
	BF_CTL_JSON_STRING, /* text, timestamps, intervals, anything else */
	BF_CTL_JSON_NUMBER, /* integers, numeric, floating point */
	BF_CTL_JSON_BOOL,   /* PostgreSQL's "t" / "f" */
} bf_ctl_json_kind;

/* The JSON kind of a PostgreSQL type, by its OID (PQftype): int2/4/8, oid, float4/8 and
 * numeric are numbers, bool is a boolean, every other type a string. */
bf_ctl_json_kind bf_ctl_json_kind_of(unsigned type_oid);

/* True when `text` is a number as JSON writes it (RFC 8259: -?int frac? exp?). */
bool bf_ctl_json_is_number(const char *text);

/* Append `s` as a JSON string, quotes included. Bytes >= 0x80 pass through (the connection
 * is UTF-8 when JSON is asked for); control characters are escaped. */
void bf_ctl_json_string(bf_sbuf *out, const char *s);

/* Append one value in PostgreSQL's text form: NULL as null, a number as is (or as a string
 * when JSON cannot write it), a boolean as true/false, anything else as a string. */
void bf_ctl_json_value(bf_sbuf *out, bf_ctl_json_kind kind, const char *text);

/* Append one JSON object of `n` columns: {"name": value, ...}. values[i] NULL is null. With
 * `pretty`, a space after each ':' and ','; otherwise compact. */
void bf_ctl_json_object(bf_sbuf *out, size_t n, const char *const *names,
                        const bf_ctl_json_kind *kinds, const char *const *values, bool pretty);

#endif
