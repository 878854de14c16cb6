/*
 * target.h - a job's table and key, resolved against the live catalog.
 *
 * Owns the step from the catalog lookup (bf_sql_resolve) to a bf_sql_target with quoted
 * identifiers, and the problems an operator must fix: no such table, not a table, no
 * primary key and no key given, a missing or nullable key column, no unique index on exactly
 * the key, no UPDATE privilege. Shared by the job (asynchronous) and --check (blocking).
 */
#ifndef BACKFILLD_TARGET_H
#define BACKFILLD_TARGET_H

#include <libpq-fe.h>

#include "backfilld/config.h"
#include "backfilld/sql.h"
#include "backfilld/util.h"

/* PQescapeIdentifier into a malloc'ed string; NULL with err filled on failure. */
char *bf_quote_ident(PGconn *pg, const char *ident, char *err, size_t errlen);

/* $2 of bf_sql_resolve(): the job's key as a text[] literal, or NULL for the primary key. */
char *bf_target_key_literal(const bf_job_config *cfg);

/* From the lookup's result: the target (and "nsp.rel" in *table_name), or NULL with every
 * problem appended to `problems` as "; "-separated sentences. */
bf_sql_target *bf_target_resolve(PGconn *pg, const PGresult *res, const bf_job_config *cfg,
                                 const char *control_schema, char **table_name, bf_sbuf *problems);

/* Make `t` the target of one leaf partition (schema nsp, name rel, oid as text) of its
 * partitioned table: its statements are then those of a plain table, each batch checking
 * that the leaf is still in the job's table (sql.h, leaf_oid). 0, or -1 with err filled. */
int bf_target_to_leaf(PGconn *pg, bf_sql_target *t, const char *nsp, const char *rel,
                      const char *oid, char *err, size_t errlen);

#endif
