/*
 * util.h - the small pieces every module shares: checked allocation, a growable string
 * buffer for building SQL and log lines, and an error list that collects every problem of an
 * operation (a configuration file reports all its mistakes, not only the first).
 *
 * Allocation failure is the one error not returned as a value: bf_xmalloc() and friends log
 * and abort, because a daemon that cannot allocate a few bytes cannot report anything sane.
 */
#ifndef BACKFILLD_UTIL_H
#define BACKFILLD_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define BF_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BF_PRINTF(f, a)
#endif

#define BF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

void *bf_xmalloc(size_t n);
void *bf_xcalloc(size_t count, size_t n);
void *bf_xrealloc(void *p, size_t n);
char *bf_xstrdup(const char *s);
/* Equal strings, or both NULL. */
bool bf_streq_opt(const char *a, const char *b);
char *bf_xstrndup(const char *s, size_t n);
char *bf_xasprintf(const char *fmt, ...) BF_PRINTF(1, 2);

/* n strings in a malloc'ed array: freed (NULL is a no-op), or copied (NULL for NULL). */
void bf_strv_free(char **v, size_t n);
char **bf_strv_copy(char *const *v, size_t n);
/* The text[] literal of n strings ({"a","b \"c\""}), to send as one parameter. */
char *bf_strv_literal(char *const *v, size_t n);

/* A NUL-terminated string that grows as text is appended. A zeroed bf_sbuf is empty and
 * valid; bf_sbuf_free() releases it and leaves it empty again. */
typedef struct bf_sbuf {
	char *data;
	size_t len;
	size_t cap;
} bf_sbuf;

void bf_sbuf_append(bf_sbuf *sb, const char *s);
void bf_sbuf_appendn(bf_sbuf *sb, const char *s, size_t n);
void bf_sbuf_printf(bf_sbuf *sb, const char *fmt, ...) BF_PRINTF(2, 3);
void bf_sbuf_vprintf(bf_sbuf *sb, const char *fmt, va_list ap) BF_PRINTF(2, 0);
void bf_sbuf_reset(bf_sbuf *sb);
/* Hands the text to the caller (never NULL; "" when empty) and leaves sb empty. */
char *bf_sbuf_steal(bf_sbuf *sb);
void bf_sbuf_free(bf_sbuf *sb);

/* Every problem of one operation, each a complete sentence such as
 * "conf/a.yaml:12:5: jobs[2].batch_size: expected a positive integer, got \"abc\"". */
typedef struct bf_errors {
	char **msgs;
	size_t n;
} bf_errors;

void bf_errors_add(bf_errors *e, const char *fmt, ...) BF_PRINTF(2, 3);
void bf_errors_clear(bf_errors *e);
/* Lines joined with "\n" into a fresh string (for tests and for a log line). */
char *bf_errors_join(const bf_errors *e);

/* Wall-clock and monotonic time in milliseconds. */
int64_t bf_now_ms(void);
int64_t bf_mono_ms(void);

/* An exponential back-off: min_ms for attempt 1 (or less), doubling with each attempt, at
 * most max_ms. */
int64_t bf_backoff_ms(int64_t attempt, int64_t min_ms, int64_t max_ms);

/* 64-bit FNV-1a, for the job definition hash: stable across builds and machines. */
uint64_t bf_fnv1a64(const void *data, size_t len, uint64_t seed);

/* `s` (a message from libpq, which echoes a conninfo it cannot parse) with what could be a
 * password replaced by "***": the password of a URI's user info (scheme://user:PASSWORD@),
 * a password=VALUE pair, and the token libpq quotes when its percent-encoding is bad (it
 * lies in the user info as often as not). A new string. */
char *bf_masked(const char *s);

#endif
