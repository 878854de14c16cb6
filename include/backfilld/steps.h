/*
 * steps.h - a job's `then:` list: the schema changes that finish an expand-contract migration
 * once the backfill is done, checked before they reach a server and turned into statements.
 *
 * Owns two things:
 *   - the lint: a step may run against a live table only in a form that does not hold a lock
 *     the application waits behind for the length of a scan, a rewrite or an index build.
 *     The refused forms are CREATE [UNIQUE] INDEX without CONCURRENTLY (or with it but no
 *     name); in ALTER TABLE: SET NOT NULL, ADD CHECK / FOREIGN KEY / REFERENCES without NOT
 *     VALID, ADD UNIQUE / PRIMARY KEY without USING INDEX, ALTER COLUMN ... TYPE or SET DATA
 *     TYPE, ADD COLUMN with a DEFAULT that calls a function other than now(),
 *     current_timestamp, current_date, localtimestamp, statement_timestamp() and
 *     transaction_timestamp() (or with a serial type, an identity or a stored generated
 *     expression); VACUUM FULL, CLUSTER, LOCK, TRUNCATE, REINDEX without CONCURRENTLY and
 *     REFRESH MATERIALIZED VIEW without CONCURRENTLY. Each refusal names the form, the lock
 *     and the safe form to write instead;
 *   - the expansion of the playbook's steps into the statements the runner sends, one at a
 *     time (a CREATE INDEX CONCURRENTLY cannot run inside a transaction block):
 *     a not_null: step adds a CHECK (col IS NOT NULL) NOT VALID, validates it (SHARE UPDATE
 *     EXCLUSIVE only), sets NOT NULL (PostgreSQL 12+ skips the scan thanks to the validated
 *     check) and drops the check; a check: step adds its CHECK NOT VALID and validates it.
 *
 * Promises: pure (no I/O, no libpq); keywords are matched case-insensitively as whole words
 * outside strings ('', E'', U&''), "quoted identifiers" and $tag$ strings, so a word inside
 * them or inside a longer name (`retype`) triggers nothing; the operator's text is used as
 * written, only trimmed of surrounding white space and of one trailing ';'; the constraints
 * a step adds are named <job>_<position>_not_null and <job>_<position>_check (position from
 * 1 in `then:`; the job part shortened when the name would pass the server's 63 bytes, and
 * the name quoted when the job starts with a digit), so a second job or step never meets
 * them. What the lint cannot see: statements hidden in a DO block or a function body.
 */
#ifndef BACKFILLD_STEPS_H
#define BACKFILLD_STEPS_H

#include <stddef.h>

#include "backfilld/config.h"

typedef struct bf_step_stmt {
	char *sql;   /* one statement, no trailing ';' */
	char *index; /* for CREATE INDEX CONCURRENTLY: the index's name as the server folds it
	              * (unquoted: lower case; "Quoted": as written, quotes removed; cut to 63
	              * bytes as the server cuts it) - the runner checks for an INVALID leftover
	              * of that name and drops it before each attempt; NULL for other statements */
} bf_step_stmt;

/* NULL when the step may run on a live table; else a malloc'ed sentence saying what lock the
 * form would take and the safe form to use instead ("CREATE INDEX without CONCURRENTLY
 * blocks every write to the table for the whole build: write CREATE INDEX CONCURRENTLY (an
 * index: step)"), or what the text should have been ("expected a single SQL fragment (here
 * ...)"). */
char *bf_steps_lint(const bf_step_config *step);

/* The statements the steps run, in order, for job `job` ([a-z0-9_]) on table `qtable`
 * (already quoted and schema-qualified, e.g. "public"."users"), with *n_out their count;
 * NULL when there are none. Every step must have passed bf_steps_lint(). Free with
 * bf_steps_free(). */
bf_step_stmt *bf_steps_expand(const bf_step_config *steps, size_t n, const char *job,
                              const char *qtable, size_t *n_out);
/* Frees the n statements and the array; NULL is a no-op. */
void bf_steps_free(bf_step_stmt *stmts, size_t n);

#endif
