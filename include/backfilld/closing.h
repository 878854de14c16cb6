/*
 * closing.h - the closing read at the end of each pass, and the sweeps it decides.
 *
 * A pass ends when its batches reach the high-water mark, but rows other sessions held were
 * skipped (SKIP LOCKED) and may still match `where`. The closing read counts them without
 * locking anything: first every key left in one scan, then, when that scan runs out of time
 * or finds rows, range by range to find where the first of them is. Clean: the job is done.
 * Rows left: a sweep pass starts at the first range that has some (the keys before it were
 * read clean), after a back-off that grows while sweeps find nothing they can lock. Rows that
 * no other session holds and that the UPDATE still leaves unchanged, sweep after sweep, are
 * not a lock to wait for: the job fails (a BEFORE trigger returning NULL).
 *
 * Owns, for one job: the batch boundaries recorded while a pass runs (about `chunk_keys` keys
 * apart), where the read is, where the next pass starts, and the counts of the pass it
 * judges. It decides what to send next (plan, SQL, parameters) and what a result means.
 * Promises: no I/O and no logging (the job logs what it is told); keys are copied in and
 * owned here; a process that did not see a pass start has no boundaries for it and reads by
 * ordered chunks, which find their own ends: a restart costs time, never a row.
 */
#ifndef BACKFILLD_CLOSING_H
#define BACKFILLD_CLOSING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backfilld/sql.h"

/* The longest the single scan may take (its statement_timeout), so that on a big table it
 * neither holds a snapshot for long nor costs more than that before the ranges take over. */
#define BF_CLOSING_ONE_SCAN_MS 10000
/* Keys per statement of the read by ranges or chunks. */
#define BF_CLOSING_CHUNK_KEYS 100000
/* Sweeps in a row that met only rows the UPDATE leaves unchanged before the job fails. */
#define BF_CLOSING_STUCK_PASSES 2

/* What the session must be set up for (bf_sql_plan): the batches' own plans, the single
 * scan (its shorter statement_timeout), or ranges (bitmap scans: see closing.c).
 * BF_PLAN_UNKNOWN: the session settings were sent again over a closing read's plan. */
typedef enum bf_plan { BF_PLAN_BATCH, BF_PLAN_ONE_SCAN, BF_PLAN_RANGES, BF_PLAN_UNKNOWN } bf_plan;

typedef struct bf_closing {
	size_t n_key;
	int64_t chunk_keys;
	/* boundaries of the pass, recorded only when this process saw it start (bounds_ok) */
	char ***bounds;
	size_t n_bounds, cap_bounds;
	bool bounds_ok;
	int64_t since_bound; /* keys walked since the last boundary */
	bool rewound;        /* a new pass was written: its first registration reads it back */
	/* the keys a pass starts after: those before were read clean (NULL: the first key) */
	char **pass_from;
	/* the read in progress */
	bool reading;
	char **at; /* the next statement reads after this key (NULL: the first key) */
	bool one_scan;
	bool ranges; /* by recorded boundaries (else by ordered chunks) */
	size_t range_i;
	/* the pass being judged */
	int64_t pass_rows, pass_unchanged;
	char *stuck_range; /* keys of the last batch that met rows it left unchanged */
	int64_t stuck_passes;
	int64_t idle_sweeps; /* sweeps in a row that updated nothing */
} bf_closing;

/* One statement of the read: what the session must be set up for, the SQL (malloc'd) and
 * its parameters (borrowed from the bf_closing and the high-water mark; valid until the
 * next call on it). */
typedef struct bf_closing_query {
	bf_plan plan;
	char *sql;
	const char **values;
	int n_values;
	char chunk[24];
} bf_closing_query;

typedef enum bf_closing_verdict {
	BF_CLOSING_NEXT,  /* read on: send the next statement */
	BF_CLOSING_DONE,  /* no row left: the job is done */
	BF_CLOSING_SWEEP, /* rows left: a new pass from pass_from (bf_closing_new_pass) */
	BF_CLOSING_STUCK, /* rows left that sweeps cannot change: fail the job */
} bf_closing_verdict;

/* What a result taught, for the job's log line and state. */
typedef struct bf_closing_result {
	bf_closing_verdict verdict;
	int64_t left;     /* rows the statement counted */
	bool all_counted; /* left counts every row left (not only the first range's) */
	bool locating;    /* the single scan found rows: the ranges locate the first of them */
	const char *how;  /* "scan", "ranges" or "chunks": what settled it */
} bf_closing_result;

void bf_closing_init(bf_closing *c, size_t n_key, int64_t chunk_keys);
/* Free what it holds and start over (a new target, a freed job). */
void bf_closing_reset(bf_closing *c);

/* The job registered, at the first key of a pass or elsewhere: a pass seen from its first
 * batch (or one this process rewound) may record boundaries; elsewhere (a restart in the
 * middle of a pass) those already recorded in this process stay. */
void bf_closing_registered(bf_closing *c, bool at_first_key);

/* A batch committed: `keys` keys up to `cursor` (copied), `rows` updated, `unchanged` rows it
 * locked itself and left as they were (range: its keys as text, copied). `last`: it reached
 * the high-water mark. */
void bf_closing_batch(bf_closing *c, char *const *cursor, int64_t keys, int64_t rows,
                      int64_t unchanged, const char *range, bool last);

/* A first pass walked in slices ended, `rows` updated: the read starts at the first key,
 * by chunks (no boundaries of the slices' walks). */
void bf_closing_sliced_pass(bf_closing *c, int64_t rows);

/* Start the read when none is in progress; true when this call started it. `one_scan`: first
 * count every key left in one statement; false: range by range from the start, statements of
 * about chunk_keys keys each that the job's gate spaces (a job under a commit-latency budget:
 * one scan reads the whole table at once, and sets the hint bits of every row the pass wrote,
 * dirtying every page in a few seconds that no pace can slow). */
bool bf_closing_begin(bf_closing *c, bool one_scan);

/* The next statement of the read in progress, over the target and its high-water mark.
 * Free it with bf_closing_query_free(). */
void bf_closing_next(bf_closing *c, const bf_sql_target *t, char *const *high, bf_closing_query *q);
void bf_closing_query_free(bf_closing_query *q);

/* The statement's result: column 0 rows left; for a chunk, column 1 (last) and its last key
 * (chunk_end, NULL unless chunked). */
bf_closing_result bf_closing_take(bf_closing *c, int64_t left, bool chunk_last,
                                  char *const *chunk_end);

/* The single scan ran out of its statement_timeout: the walk takes over. False when no
 * single scan was in flight (the timeout is an error like any other). */
bool bf_closing_scan_timeout(bf_closing *c);

/* A sweep's new pass was written: its first registration reads it back (and may record
 * boundaries). Returns how long to wait before its first batch: 0, or a back-off growing
 * while sweeps find nothing they can lock. */
int64_t bf_closing_new_pass(bf_closing *c);

/* The statement_timeout of the single scan under the job's own. */
int64_t bf_closing_one_scan_ms(int64_t statement_timeout_ms);

/* "ranges" or "chunks": how the read walks once the single scan does not settle it. */
const char *bf_closing_mode(const bf_closing *c);

#endif
