/*
 * sql.h - the text of every statement backfilld sends, built from a resolved job.
 *
 * Owns the SQL: the control schema, the catalog lookup that resolves a job's table and key,
 * and the statements of a job's life (register, high-water mark, estimate, batch, closing
 * read, state changes). Pure string building, no I/O, so Check tests the text and the
 * integration tests check what the server makes of it (plans, results).
 *
 * Promises:
 *   - identifiers arrive already quoted by libpq (bf_conn_quote_ident) and are used as given;
 *     every value (job name, cursor, high-water mark, sizes) is a parameter ($n), never text;
 *   - the operator's `set` and `where` are embedded once each in parentheses and the result
 *     is one statement, so the extended protocol refuses anything that tries to add another;
 *   - the batch statement is one statement doing lock, update and checkpoint together, so a
 *     crash at any moment loses nothing and counts nothing twice.
 *
 * Parameter layouts are documented at each builder; key values travel as text and are cast
 * with the column's own type (format_type), so any key type with a text form works.
 */
#ifndef BACKFILLD_SQL_H
#define BACKFILLD_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A job's table and key as resolved against the catalog, with quoted identifiers. */
typedef struct bf_sql_target {
	char *qschema; /* control schema, quoted */
	char *qtable;  /* "nsp"."rel", quoted */
	char *nsp;     /* the table's schema, relation and first key column, unquoted: values */
	char *rel;     /* for catalog lookups (pg_stats), always sent as parameters */
	char *key1;
	size_t n_key;
	char **qkey;     /* key columns, quoted, in index order */
	char **key_type; /* their types as format_type() writes them */
	char *set;       /* the operator's SET list */
	char *where;     /* the operator's predicate */
	char *triggers;  /* the BEFORE UPDATE row triggers that may skip a row, or NULL */
	char *oid;       /* the job's table, as the decimal text of its pg_class oid */
	long long pages; /* its size now (every partition's), in pages */
	/* A partitioned table: a ctid names a row only together with its partition, so a
	 * statement on the parent pairs the two (tableoid, ctid). Its first pass is walked leaf
	 * by leaf (bf_sql_partition_slices), each leaf as a plain table. */
	bool partitioned;
	/* Set on the target of a slice that walks one leaf partition: qtable, nsp and rel are
	 * the leaf's, and its batches do nothing once the leaf is no longer in the job's table
	 * (detached or dropped): the slice then reads its row again and ends. */
	char *leaf_oid;
	/* backup: true (NULL when not): the job's backup table in the control schema
	 * ("schema"."<job>_backup") and its key index's name, both quoted, and the columns it
	 * keeps besides the key (those set assigns), quoted. Each batch of the SKIP LOCKED form
	 * writes there the old values of the rows it changes, in the same statement. */
	char *qbackup;
	char *qbackup_index;
	char **qbcols;
	size_t n_bcols;
	/* How long the fast path's batch waits for a row another session holds before the
	 * range is redone with SKIP LOCKED, in ms (0: BF_FAST_LOCK_MS). Its rows stay locked
	 * meanwhile, so a commit-latency budget shortens it (walk.c). */
	int64_t fast_lock_ms;
} bf_sql_target;

void bf_sql_target_free(bf_sql_target *t);

/* SQLSTATE raised by the batch when an updated row still satisfies `where`. */
#define BF_SQLSTATE_SET_KEEPS_WHERE "BF001"

/* Current version of the control schema, and the script that creates or upgrades it to that
 * version. Additive only (CREATE ... IF NOT EXISTS, ADD COLUMN IF NOT EXISTS, CREATE OR
 * REPLACE of the view and functions with unchanged signatures), serialized by a transaction
 * advisory lock, so it is safe to run while older daemons use the schema. For the simple
 * protocol: several statements, no parameters. */
#define BF_SCHEMA_VERSION 5
char *bf_sql_schema(const char *qschema);

/* What the role lacks to keep its books in the control schema, before the script runs.
 * $1 the control schema's name (unquoted), $2 lag limits on (t/f). Column 0: the control
 * schema's problem (NULL: none): it does not exist and the role may not create it, or it
 * exists and belongs to a role the daemon's role is not a member of (the daemon would run
 * that role's functions and trust its tables); column 1: pg_monitor missing while lag
 * limits are on (NULL: none). */
const char *bf_sql_grants(void);

/* The failed row of a job that failed before it registered (its table is missing, ...), so
 * that the progress view shows every job of the configuration. A finished row is left as
 * it is. $1 name, $2 table as configured, $3 definition_hash, $4 the reason. */
char *bf_sql_fail_unregistered(const char *qschema);

/* The same objects in the session's temporary schema (pg_temp), for --dry-run: they vanish
 * with the session and leave the real control schema untouched. */
char *bf_sql_schema_temp(void);

/* Catalog lookup. $1 table as written (resolved with to_regclass), $2 key columns as a text
 * array literal or NULL for the primary key. One row per key column, in key order, columns:
 *   0 nspname, 1 relname, 2 relkind, 3 may_update (t/f: SELECT and UPDATE), 4 unique_index (t/f: a
 * valid, non-partial unique index on exactly these columns in this order), 5 attname, 6 type (empty
 * when the column does not exist), 7 notnull (t/f), 8 key_given (t/f), 9 oid, and what makes the
 * table unsafe to walk, NULL when nothing does (for the table and, when partitioned, every
 * partition): 10 the relations whose row-level security the role does not bypass, with their
 * policies; 11 UPDATE rules; 12 inheritance children (a ctid and the key are unique per child
 * only); 13 foreign-table partitions; and 14 the BEFORE UPDATE row triggers (NULL: none), named
 * when rows do not change; 15 the table's size now in pages (its partitions' for a partitioned
 * table). No row at all: no such table. One row with a NULL attname: no primary key. */
const char *bf_sql_resolve(void);

/* Register the job or find its row. $1 name, $2 table_name, $3 definition_hash, $4 batch
 * size, $5 owner, $6 rows_estimate-to-be (may be NULL). Columns: 0 definition_hash, 1 state,
 * 2 requested_state, 3 pass, 4 rows_done (with its slices'), 5 has_cursor (t/f), 6 has_high (t/f),
 * 7 rows_estimate, 8.. cursor[1..n], then high_key[1..n], then (8 + 2n) whether the job has
 * rows of then: steps (its data is done: finishing), (9 + 2n) whether it has begun an undo,
 * (10 + 2n) whether the undo is to NULL (undo --to-null). */
char *bf_sql_register(const bf_sql_target *t);

/* Record the high-water mark if not yet recorded. $1 name. Columns: 0 has_high (t/f),
 * 1.. high_key[1..n]. */
char *bf_sql_high_water(const bf_sql_target *t);

/* The rows matching `where`, estimated by counting them in a sample of the table's pages
 * (TABLESAMPLE SYSTEM) scaled up: the planner's estimate is no use on a column added after
 * the last ANALYZE (no statistics: it guesses half a percent of the table), which is the
 * usual case of a backfill. $1 the sample's percent (bf_sql_sample_percent). Column 0: the
 * estimate (bigint). */
char *bf_sql_estimate(const bf_sql_target *t);

/* The percent of `pages` to sample so that about BF_SQL_SAMPLE_PAGES pages are read: all of
 * a small table (an exact count), a few MB of a big one. */
#define BF_SQL_SAMPLE_PAGES 2000
double bf_sql_sample_percent(long long pages);

/* What a batch's checkpoint advances. BF_CKPT_JOB: the job's row (cursor, counters, pass).
 * BF_CKPT_SLICE: the row of one slice of a parallel first pass in <schema>.slices (its cursor,
 * counters and rate); $4 is then the slice number, not the pass. The job's row is only read
 * (requested_state), so slices never wait for one another, whatever their commits cost. */
enum bf_ckpt { BF_CKPT_JOB, BF_CKPT_SLICE };

/* One batch, in one statement: the rows of the next key range that match `where` get `set`,
 * the cursor and the counters advance. The range is (cursor, hi] where hi is the key $2 keys
 * further on, or the high-water mark when fewer remain; `first` starts at the table's first
 * key instead.
 *   plain: the fast path. The range is updated in place with a plain UPDATE under a
 *          transaction-local lock_timeout of fast_lock_ms: no row-lock pass and no
 *          row-lock WAL record. When it meets a row the application holds it fails with
 *          55P03 and the caller redoes the same range with the other form.
 *   else:  the rows are locked FOR UPDATE SKIP LOCKED in key order, then updated by ctid
 *          (by tableoid and ctid on a partitioned table).
 * Both give the same result on rows nobody holds, so the contract (lock only what you
 * update, never wait for the application) holds; SPEC.md, "How a job runs".
 * Parameters: $1 name, $2 batch size, $3 recent rows/s (float8), $4 pass, then, unless
 * `first`, the cursor's n values, then the high-water mark's n values.
 * Columns: 0 rows updated, 1 pass_end (t/f: hi is the high-water mark), 2 requested_state,
 * 3 unchanged: rows the SKIP LOCKED form locked (so no other session held them) that the
 * UPDATE still did not change, as a BEFORE trigger returning NULL does (0 on the fast path),
 * 4.. hi[1..n], then the server's WAL insert position as the batch ends (text, "0/16B3748":
 * the WAL it wrote, for max_wal_rate), then with a backup (qbackup) the backup's size in
 * bytes. An updated row that still satisfies `where` raises
 * BF001. No row: the job's
 * or slice's row is gone, or the slice's leaf left the table (see bf_sql_target.leaf_oid). */
#define BF_FAST_LOCK_MS 50
char *bf_sql_batch(const bf_sql_target *t, bool first, bool plain, enum bf_ckpt ckpt);

/* backup: true. The backup table is "<job>_backup" in the control schema (the job's name cut
 * to BF_BACKUP_NAME_CUT characters, so that its index's name "<job>_backup_key" fits the
 * server's 63 bytes; the progress view finds it the same way): the key's columns, the old
 * values of the columns set assigns (same names and types as in the table), and
 * BF_BACKUP_WRITTEN, the md5 (as a uuid) of the text of the row of those columns as the job
 * wrote them. The batch (SKIP LOCKED form) inserts a row per row it changes; a row changed
 * again keeps its first old values and takes the latest written hash. */
#define BF_BACKUP_NAME_CUT "52"
#define BF_BACKUP_WRITTEN  "backfilld_written"
char *bf_sql_backup_name(const char *job);
char *bf_sql_backup_index_name(const char *job);
/* Create it when missing, and its unique index on the key: several statements, simple
 * protocol, each a no-op when done already. */
char *bf_sql_backup_create(const bf_sql_target *t);

/* The undo, a walk of the backup in key order. Begin (or resume) it: the row's undo_cursor
 * becomes '{}' when NULL (the job is undoing from then on, whatever its state shows), and an
 * `undo` request is taken. $1 name, $2 the backup table as text (qbackup; NULL without).
 * Columns: 0 the backup exists or the undo is to NULL (t/f), 1 undo_rows, 2 undo_skipped, 3 the
 * first keys skipped ("k1, k2; ..."), 4 requested_state, 5 has a cursor (t/f), 6.. cursor[1..n],
 * then the backup's size (bytes, indexes included). */
char *bf_sql_undo_begin(const bf_sql_target *t);
/* One range: the next $2 rows of the backup after the cursor ($3.., unless `first`); each
 * table row whose assigned columns still hash to what the job wrote gets its old values
 * back, the others are skipped and counted (the first BF_UNDO_KEYS keys kept); the job's row
 * records it all in the same statement. Columns: 0 backup rows read (fewer than $2: the walk
 * is over), 1 undo_rows, 2 undo_skipped, 3 the first keys skipped, 4 requested_state,
 * 5.. the cursor (the range's last key). */
#define BF_UNDO_KEYS "10"
char *bf_sql_undo_range(const bf_sql_target *t, bool first);
/* undo --to-null, for a job without a backup whose where was `column IS NULL` (its one
 * column was NULL before it): the next $2 rows of the table after the cursor ($3.., unless
 * `first`) whose column is not NULL; those whose column is still what set gives (`expr`) get
 * NULL back, the others (the application wrote them) are skipped and counted. Columns as
 * bf_sql_undo_range's. qcol quoted. */
char *bf_sql_undo_null_range(const bf_sql_target *t, bool first, const char *qcol,
                             const char *expr);

/* The slices of a job's parallel first pass: those recorded, or, when none are and the pass is
 * fresh, new ones cut from the key's histogram (pg_stats of the first key column, as ANALYZE
 * left it), each end moved to a real key with an index lookup, so slices hold about the same
 * number of keys without a scan of the table. The first slice starts at the first key, the
 * last ends at the high-water mark; fewer than asked when keys repeat in the histogram, none
 * without statistics. In one statement, so slices are recorded whole or not at all.
 * $1 name, $2 slices wanted (int), $3 nsp, $4 rel, $5 first key column (unquoted), $6 the
 * high-water mark as a text[] literal, $7 may cut new ones (t/f: a fresh first pass).
 * Columns: 0 slice (1..), 1 done (t/f: its cursor reached its end). */
char *bf_sql_slices(const bf_sql_target *t);

/* The slices of a partitioned table's first pass: one per leaf partition (any depth, the
 * default partition included), recorded once, when the pass is fresh, each from the first
 * key of its leaf to the job's high-water mark. $1 name, $2 the table's oid, $3 the
 * high-water mark as a text[] literal, $4 may cut new ones (t/f). Columns as bf_sql_slices.
 * A partition attached later has no slice: the closing read of the whole table finds its
 * rows and the sweep takes them. */
char *bf_sql_partition_slices(const bf_sql_target *t);

/* One slice's checkpoint. $1 name, $2 slice, $3 the job's table's oid. Columns:
 * 0 has_cursor (t/f), 1 the job's requested_state, 2 the leaf's schema, 3 its name (both
 * NULL for a key-range slice), 4 its oid, 5 still in the job's table (t/f; always t for a
 * key-range slice), 6.. cursor[1..n], then the slice's end [1..n]. A leaf no longer in the
 * table (detached or dropped) has its slice ended in the same statement (cursor = end): the
 * rows it had not reached left the job with it. No row: the slice is gone (reset). */
char *bf_sql_slice_register(const bf_sql_target *t);

/* The closing read at the end of a pass (closing.h), not locking anything, one chunk of
 * keys at a time so that no statement scans the whole table (at 1B rows it would outlast any
 * statement_timeout and hold its snapshot for as long). $1 chunk size (keys), then, unless `first`,
 * the n values the chunk starts after, then the high-water mark's n values. Columns: 0 rows of the
 * chunk still matching `where`, 1 last (t/f: the chunk reached the high-water mark), 2.. the
 * chunk's last key (NULL when the chunk is empty). */
char *bf_sql_remaining(const bf_sql_target *t, bool first);

/* The same read over a key range known in advance (batch boundaries the pass recorded): a
 * plain range count, which the planner can serve with a bitmap scan that reads each heap
 * page once (the ordered walk above fetches the heap row by row, and a freshly updated table
 * has a dead index entry per row: measured ~5x slower). $1.. the n values the range starts
 * after (unless `first`), then the n values it ends at (inclusive). Column 0: rows still
 * matching `where`, at most BF_SQL_COUNT_MAX when `capped`. Uncapped, a count over the whole
 * table can be planned as a parallel sequential scan (a LIMIT makes the planner expect to
 * stop early, and it keeps to one process). */
#define BF_SQL_COUNT_MAX 10000
char *bf_sql_remaining_in(const bf_sql_target *t, bool first, bool capped);

/* For --check: the first and the last key of the relation a target walks, as text: columns
 * first[1..n], then last[1..n]; no row when the relation is empty. No parameters. */
char *bf_sql_key_ends(const bf_sql_target *t);

/* For --check: the leaf partition of a partitioned table with the most rows (as ANALYZE
 * counted), the one whose plan is shown. $1 the table's oid. Columns: 0 schema, 1 name,
 * 2 oid, 3 how many leaves the table has. */
const char *bf_sql_biggest_leaf(void);

/* A text[] input literal of n values, each double-quoted with " and \ escaped: the cursor
 * written as one parameter. */
char *bf_sql_text_array(const char *const *v, size_t n);

/* Record a state change. $1 name, $2 state, $3 reason (may be NULL), $4 last_error (NULL
 * keeps the old one), $5 owner (NULL clears it), $6 count an error (t/f), $7 pass (NULL
 * keeps it), $8 rewind cursor (t/f), $9 batch size (NULL keeps it), $10 the cursor to rewind
 * to (a text[] literal; NULL: the first key). Sets finished_at for a
 * terminal state and clears requested_state when the new state honours it (an undo asked for
 * is cleared by a final state: the undo was refused). Column 0: the requested_state after
 * the change. */
char *bf_sql_set_state(const char *qschema);

/* Take the job's session advisory lock without waiting. $1 schema name, $2 job name
 * (unquoted text). Column 0: t/f. */
const char *bf_sql_try_lock(void);

/* The session settings of a job's connection: $1 lock_timeout, $2 statement_timeout (both
 * in ms as text), $3 synchronous_commit. Also jit off: every statement is short, and a
 * range the planner misjudges as large would spend more compiling (~60 ms) than running. */
const char *bf_sql_session(void);

/* The session's plans and statement_timeout for what comes next (the closing read runs
 * other statements than the batches): $1 true = plain index and sequential scans off, false =
 * both back to the session's defaults (reset_val); $2 statement_timeout in ms. */
const char *bf_sql_plan(void);

/* The server's local wall time now, for the job's `window` ("server-local time"): in the time
 * zone the session had before bf_sql_session set UTC (the server's or database's TimeZone,
 * or the client's PGTZ), as milliseconds since 1970-01-01 00:00 of that wall clock, so that
 * gmtime_r() of it gives the local broken-down time. Column 0: bigint. */
const char *bf_sql_server_clock(void);

/* A job's then: steps (steps.h), in the control schema's steps table. */
/* $1 job, $2 its statements as a text[] literal, in order: the rows are written (a row not
 * done yet takes the statement as it is now; rows past the last are deleted) and the one
 * column is the first position not done (NULL: every step is done). */
char *bf_sql_steps_load(const char *qschema);
/* One attempt at step $2 of job $1: done when $3 (the error) is NULL; else pending again when
 * $4 (t: a lock or a conflict, retried), failed when not. */
char *bf_sql_step_record(const char *qschema);
/* $1 an index's name, $2 its table: one row (indisvalid) when it exists, none when not. */
const char *bf_sql_step_index(void);

/* dual_write: trigger. The function applies the job's set to a row the application writes
 * when `where` is true for the new row (a row still to do, or a new one), or, for an UPDATE,
 * when the old row's assigned columns are what set gives for it (a row already filled: it
 * follows its sources). Otherwise the row is left as written. Every piece quoted already. */
typedef struct bf_sql_dual_write {
	const char *qfunction;    /* schema.name */
	const char *qalias;       /* the table's name, so that `set` may name it */
	char *const *qcols;       /* the assigned columns */
	const char *const *exprs; /* their expressions (sqltext.h bf_sqltext_set_items) */
	size_t n;
	const char *where;
} bf_sql_dual_write;
char *bf_sql_dual_write_function(const bf_sql_dual_write *dw);
/* The name of a job's trigger and of its function: "<job>_dual_write", the job's part cut so
 * that the whole fits the server's 63 bytes (the daemon and backfillctl agree on it). */
char *bf_sql_dual_write_name(const char *job);
/* BEFORE INSERT OR UPDATE, each row; CREATE OR REPLACE: installing it again changes nothing. */
char *bf_sql_dual_write_trigger(const char *qtrigger, const char *qtable, const char *qfunction);

/* verify: the walk that counts the rows whose assigned columns differ from what set gives
 * now, the whole table in key order (rows written after the high-water mark too), where it
 * is kept in the job's row so that it resumes there. $1 is the job's name in each. */
/* A fresh walk: the row's verify columns back to the start. */
char *bf_sql_verify_reset(const char *qschema);
/* Where the walk is: 0 verified (done, nothing differed), 1 rows read, 2 rows that differ,
 * 3 the first keys that do ("k1, k2; ..."), 4.. the cursor (NULL: none yet). */
char *bf_sql_verify_read(const bf_sql_target *t);
/* One range: $2 keys from the cursor ($3.., unless `first`), the row updated with it.
 * Columns: 0 the keys read (0: the walk is over), then 1.. as bf_sql_verify_read's. qcols
 * quoted; exprs the expressions assigned to them (sqltext.h). */
char *bf_sql_verify_range(const bf_sql_target *t, bool first, char *const *qcols,
                          const char *const *exprs, size_t n);

#endif
