/*
 * target.c - from the catalog lookup to a quoted, typed target.
 *
 * The key must be NOT NULL with a valid unique index on exactly its columns in order: that
 * is what makes "key > cursor" a total order the index serves, so a batch never sees a row
 * twice and never misses one between two batches.
 */
#include "backfilld/target.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfilld/sqltext.h"

char *bf_quote_ident(PGconn *pg, const char *ident, char *err, size_t errlen)
{
	char *q, *copy;

	if (pg == NULL) {
		snprintf(err, errlen, "not connected");
		return NULL;
	}
	q = PQescapeIdentifier(pg, ident, strlen(ident));
	if (q == NULL) {
		snprintf(err, errlen, "cannot quote identifier: %s", PQerrorMessage(pg));
		return NULL;
	}
	copy = bf_xstrdup(q);
	PQfreemem(q);
	return copy;
}

char *bf_target_key_literal(const bf_job_config *c)
{
	return c->n_key == 0 ? NULL : bf_strv_literal(c->key, c->n_key);
}

static void BF_PRINTF(2, 3) problem(bf_sbuf *sb, const char *fmt, ...)
{
	va_list ap;

	if (sb->len)
		bf_sbuf_append(sb, "; ");
	va_start(ap, fmt);
	bf_sbuf_vprintf(sb, fmt, ap);
	va_end(ap);
}

/* What would make the walk wrong on this table, whatever the key: rows the role cannot see
 * or update (row-level security it does not bypass: the closing read would call the job
 * done with rows left), an UPDATE rule (the statement would not be what runs), children
 * that share ctids and keys, and partitions on another server. */
static void unsafe(const PGresult *res, const bf_job_config *cfg, bf_sbuf *p)
{
	static const struct {
		int col;
		const char *what, *advice;
	} checks[] = {
	        {10, "row-level security the role does not bypass",
	         "run the job as the table's owner (without FORCE ROW LEVEL SECURITY) or as a "
	         "role with BYPASSRLS"},
	        {11, "an UPDATE rule, so the batch would not run as written", NULL},
	        {12, "inheritance children, whose ctids and keys are unique per table only",
	         "give each table its own job"},
	        {13, "foreign-table partitions, which backfilld cannot walk", NULL},
	};

	for (size_t i = 0; i < BF_ARRAY_LEN(checks); i++)
		if (!PQgetisnull(res, 0, checks[i].col))
			problem(p, "%s has %s: %s%s%s", cfg->table, checks[i].what,
			        PQgetvalue(res, 0, checks[i].col), checks[i].advice ? "; " : "",
			        checks[i].advice ? checks[i].advice : "");
}

/* The problems of the lookup, none when the job can run on this table. */
static void check_catalog(const PGresult *res, const bf_job_config *cfg, bf_sbuf *p)
{
	int n = PQntuples(res);
	const char *kind;

	if (n == 0) {
		problem(p, "table %s does not exist", cfg->table);
		return;
	}
	kind = PQgetvalue(res, 0, 2);
	if (strcmp(kind, "r") != 0 && strcmp(kind, "p") != 0) {
		problem(p, "%s is not a table", cfg->table);
		return;
	}
	if (PQgetisnull(res, 0, 5)) {
		problem(p, "table %s has no primary key: give the job a key", cfg->table);
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *col = PQgetvalue(res, i, 5);

		if (PQgetvalue(res, i, 6)[0] == '\0')
			problem(p, "key column %s does not exist in %s", col, cfg->table);
		else if (PQgetvalue(res, i, 7)[0] != 't')
			problem(p, "key column %s of %s is nullable: key columns must be NOT NULL",
			        col, cfg->table);
	}
	if (p->len == 0 && PQgetvalue(res, 0, 4)[0] != 't')
		problem(p,
		        "key of %s is not unique: no valid unique index on exactly its columns in "
		        "key order",
		        cfg->table);
	if (PQgetvalue(res, 0, 3)[0] != 't')
		problem(p,
		        "the role lacks SELECT or UPDATE on %s (GRANT SELECT, UPDATE ON %s TO ...)",
		        cfg->table, cfg->table);
	unsafe(res, cfg, p);
}

/* backup: true: the backup table's quoted names and the columns it keeps (backup_columns,
 * else those set assigns), none of them a key column (a row is kept by its key, which the
 * job must not change). 0, or -1 with the problem appended. */
static int resolve_backup(PGconn *pg, const PGresult *res, const bf_job_config *cfg,
                          bf_sql_target *t, bf_sbuf *p)
{
	char err[256] = "";
	size_t n = 0;
	char **cols = cfg->n_backup_columns
	                      ? bf_strv_copy(cfg->backup_columns, cfg->n_backup_columns)
	                      : bf_sqltext_set_columns(cfg->set, &n);
	char *name = bf_sql_backup_name(cfg->name), *index = bf_sql_backup_index_name(cfg->name);
	char *qname = bf_quote_ident(pg, name, err, sizeof(err));
	char *qindex = qname ? bf_quote_ident(pg, index, err, sizeof(err)) : NULL;
	int rc = -1;

	if (cfg->n_backup_columns)
		n = cfg->n_backup_columns;
	if (qindex == NULL) {
		problem(p, "%s", err);
		goto out;
	}
	if (cols == NULL) {
		problem(p, "backup: true cannot tell which columns set assigns: list them in "
		           "backup_columns");
		goto out;
	}
	t->qbcols = bf_xcalloc(n, sizeof(*t->qbcols));
	for (size_t i = 0; i < n; i++) {
		for (int k = 0; k < PQntuples(res); k++)
			if (strcmp(cols[i], PQgetvalue(res, k, 5)) == 0) {
				problem(p,
				        "backup: true keeps each row by its key, and set assigns "
				        "the key "
				        "column %s",
				        cols[i]);
				goto out;
			}
		if (strcmp(cols[i], BF_BACKUP_WRITTEN) == 0) {
			problem(p, "backup: true needs the column name %s for itself",
			        BF_BACKUP_WRITTEN);
			goto out;
		}
		if ((t->qbcols[i] = bf_quote_ident(pg, cols[i], err, sizeof(err))) == NULL) {
			problem(p, "%s", err);
			goto out;
		}
		t->n_bcols++;
	}
	t->qbackup = bf_xasprintf("%s.%s", t->qschema, qname);
	t->qbackup_index = qindex;
	qindex = NULL;
	rc = 0;
out:
	bf_strv_free(cols, n);
	free(name);
	free(index);
	free(qname);
	free(qindex);
	return rc;
}

bf_sql_target *bf_target_resolve(PGconn *pg, const PGresult *res, const bf_job_config *cfg,
                                 const char *control_schema, char **table_name, bf_sbuf *problems)
{
	bf_sql_target *t = NULL;
	char err[256] = "";
	char *qn = NULL, *qr = NULL;
	int n = PQntuples(res);
	size_t before = problems->len;

	check_catalog(res, cfg, problems);
	if (problems->len != before)
		return NULL;
	t = bf_xcalloc(1, sizeof(*t));
	t->qkey = bf_xcalloc((size_t)n, sizeof(char *));
	t->key_type = bf_xcalloc((size_t)n, sizeof(char *));
	t->set = bf_xstrdup(cfg->set);
	t->where = bf_xstrdup(cfg->where);
	t->qschema = bf_quote_ident(pg, control_schema, err, sizeof(err));
	qn = bf_quote_ident(pg, PQgetvalue(res, 0, 0), err, sizeof(err));
	qr = bf_quote_ident(pg, PQgetvalue(res, 0, 1), err, sizeof(err));
	if (t->qschema == NULL || qn == NULL || qr == NULL)
		goto error;
	t->qtable = bf_xasprintf("%s.%s", qn, qr);
	t->nsp = bf_xstrdup(PQgetvalue(res, 0, 0));
	t->rel = bf_xstrdup(PQgetvalue(res, 0, 1));
	t->key1 = bf_xstrdup(PQgetvalue(res, 0, 5));
	t->oid = bf_xstrdup(PQgetvalue(res, 0, 9));
	t->pages = atoll(PQgetvalue(res, 0, 15));
	if (!PQgetisnull(res, 0, 14))
		t->triggers = bf_xstrdup(PQgetvalue(res, 0, 14));
	t->partitioned = strcmp(PQgetvalue(res, 0, 2), "p") == 0;
	for (int i = 0; i < n; i++, t->n_key++) {
		t->qkey[i] = bf_quote_ident(pg, PQgetvalue(res, i, 5), err, sizeof(err));
		if (t->qkey[i] == NULL)
			goto error;
		t->key_type[i] = bf_xstrdup(PQgetvalue(res, i, 6));
	}
	if (cfg->backup && resolve_backup(pg, res, cfg, t, problems) != 0) {
		free(qn);
		free(qr);
		bf_sql_target_free(t);
		return NULL;
	}
	*table_name = bf_xasprintf("%s.%s", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	free(qn);
	free(qr);
	return t;
error:
	problem(problems, "%s", err);
	free(qn);
	free(qr);
	bf_sql_target_free(t);
	return NULL;
}

int bf_target_to_leaf(PGconn *pg, bf_sql_target *t, const char *nsp, const char *rel,
                      const char *oid, char *err, size_t errlen)
{
	char *qn = bf_quote_ident(pg, nsp, err, errlen);
	char *qr = qn ? bf_quote_ident(pg, rel, err, errlen) : NULL;

	if (qr == NULL) {
		free(qn);
		return -1;
	}
	free(t->qtable);
	free(t->nsp);
	free(t->rel);
	free(t->leaf_oid);
	t->qtable = bf_xasprintf("%s.%s", qn, qr);
	t->nsp = bf_xstrdup(nsp);
	t->rel = bf_xstrdup(rel);
	t->leaf_oid = bf_xstrdup(oid);
	t->partitioned = false;
	free(qn);
	free(qr);
	return 0;
}
