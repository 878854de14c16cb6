/*
 * log.h - one line per event on stderr, as logfmt (default) or JSON.
 *
 * Owns the process-wide log settings (level, format, journal mode) and the rendering of a
 * line. Every line carries level, an optional job and a message, then key=value pairs that the
 * caller formats as logfmt; JSON output is derived from those pairs, so call sites write one
 * format only. Under systemd (JOURNAL_STREAM set) lines carry a "<N>" syslog priority prefix
 * and no timestamp, since the journal stamps them itself.
 *
 * Rule of the project: log once, where the decision is made.
 */
#ifndef BACKFILLD_LOG_H
#define BACKFILLD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backfilld/util.h"

enum bf_log_level { BF_LOG_DEBUG = 0, BF_LOG_INFO, BF_LOG_WARN, BF_LOG_ERROR };

/* "debug", "info", "warn" or "error" ("unknown" out of range). */
const char *bf_log_level_name(int level);

enum bf_log_format { BF_LOG_TEXT = 0, BF_LOG_JSON };

void bf_log_setup(int min_level, enum bf_log_format format, bool journal);
void bf_log_set_level(int min_level);
bool bf_log_enabled(int level);

/* Log an event. `job` may be NULL; `kvfmt` (may be NULL) is printf-formatted into logfmt
 * pairs such as "rows=%lld batch=%d"; values that may hold spaces, quotes or '=' must go
 * through bf_log_q() first. */
void bf_log(int level, const char *job, const char *msg, const char *kvfmt, ...) BF_PRINTF(4, 5);

/* A logfmt value: `s` as it is when it is a bare word, else double-quoted with '"' and '\'
 * escaped and control characters written as \n, \t or \u with four hex digits. Writes into buf
 * (truncating to len) and returns buf. */
const char *bf_log_q(char *buf, size_t len, const char *s);

/* Repeats: a line of one (job, msg) is written at most BF_LOG_BURST times a second; those
 * past it are counted, and the next one written carries suppressed=N. No loop can flood the
 * journal, and nothing it said is hidden without a count. */
#define BF_LOG_BURST      5
#define BF_LOG_LIMIT_KEYS 64
typedef struct bf_log_limiter {
	struct {
		uint64_t key;      /* hash of job and msg, 0 = free slot */
		int64_t window_ms; /* start of its one-second window */
		int count;         /* lines written in that window */
		int64_t suppressed;
	} slot[BF_LOG_LIMIT_KEYS];
} bf_log_limiter;

/* Whether a line of (job, msg) at now_ms is to be written; if so, *suppressed says how many
 * of its kind were held back since the last one written. Pure: the tests drive the clock. */
bool bf_log_limit_pass(bf_log_limiter *l, const char *job, const char *msg, int64_t now_ms,
                       int64_t *suppressed);

/* Render one line without writing it (the pure part, for tests): the line, newline included,
 * in a fresh string. ts_ms is wall-clock milliseconds; it is left out in journal mode. */
char *bf_log_render(enum bf_log_format format, bool journal, int64_t ts_ms, int level,
                    const char *job, const char *msg, const char *kvs);

#endif
