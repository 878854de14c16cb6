/*
 * sql.c - the statements of backfilld, as text.
 *
 * The batch is the heart of the product, so its shape is explained here once:
 *
 *   hi   the key N rows further on, found by an index-only walk from the cursor (OFFSET N-1
 *        LIMIT 1), or the high-water mark when fewer remain. It bounds the range so that the
 *        locking scan below never reads past it: pass 1 is linear, each batch starts where
 *        the previous one ended and no batch rescans what an earlier one passed.
 *   todo the rows of (cursor, hi] that still match `where`, locked FOR UPDATE SKIP LOCKED in
 *        key order: a row the application holds is skipped, never waited for.
 *   upd  `set` applied to exactly those rows by ctid (a TID scan, no second index lookup);
 *        RETURNING tells whether a row still matches `where` after `set`.
 *   the final UPDATE of the jobs row moves the cursor to hi and adds the counts, in the same
 *        transaction as the data. assert_batch() raises BF001 when a row still matched, so
 *        the whole batch rolls back and the job fails instead of looping.
 *
 * Upper bounds use scalar subqueries on hi, which the planner turns into init-plan
 * parameters of a row comparison: an index condition on the key, not a filter.
 */
#include "backfilld/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfilld/util.h"

void bf_sql_target_free(bf_sql_target *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n_key; i++) {
		free(t->qkey[i]);
		free(t->key_type[i]);
	}
	free(t->qkey);
	free(t->key_type);
	free(t->qschema);
	free(t->qtable);
	free(t->nsp);
	free(t->rel);
	free(t->key1);
	free(t->set);
	free(t->where);
	free(t->triggers);
	free(t->oid);
	free(t->leaf_oid);
	free(t->qbackup);
	free(t->qbackup_index);
	bf_strv_free(t->qbcols, t->n_bcols);
	free(t);
}

static char *schema_script(const char *s, bool temp)
{
	bf_sbuf sb = {0};

	if (!temp)
		bf_sbuf_printf(&sb,
		               "SELECT pg_advisory_xact_lock(hashtext('backfilld schema'));\n"
		               /* CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when
		                * the schema is there: a schema made for the role in advance must do
		                * without it. The name is an identifier of [a-z0-9_] (config.c), so
		                * it sits in the string literals as it is. */
		               "DO $bf$ BEGIN\n"
		               "  IF to_regnamespace('%s') IS NULL THEN\n"
		               "    EXECUTE 'CREATE SCHEMA %s';\n"
		               "  END IF;\n"
		               "END $bf$;\n",
		               s, s);
	bf_sbuf_printf(&sb,
	               "CREATE TABLE IF NOT EXISTS %s.schema_version (\n"
	               "  version int PRIMARY KEY,\n"
	               "  applied_at timestamptz NOT NULL DEFAULT now());\n",
	               s);
	bf_sbuf_printf(
	        &sb,
	        "CREATE TABLE IF NOT EXISTS %s.jobs (\n"
	        "  name text PRIMARY KEY,\n"
	        "  table_name text NOT NULL,\n"
	        "  definition_hash text NOT NULL,\n"
	        "  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running',\n"
	        "    'throttled', 'paused', 'done', 'failed', 'cancelled', 'finishing', "
	        "'undoing',\n"
	        "    'undone')),\n"
	        "  state_reason text,\n"
	        "  requested_state text CHECK (requested_state IN ('paused', 'running', "
	        "'cancelled')),\n"
	        "  pass int NOT NULL DEFAULT 1,\n"
	        "  cursor text[],\n"
	        "  high_key text[],\n"
	        "  rows_done bigint NOT NULL DEFAULT 0,\n"
	        "  rows_estimate bigint,\n"
	        "  batches_done bigint NOT NULL DEFAULT 0,\n"
	        "  batch_size int,\n"
	        "  rows_per_second double precision,\n"
	        "  last_batch_ms int,\n"
	        "  errors bigint NOT NULL DEFAULT 0,\n"
	        "  last_error text,\n"
	        "  owner text,\n"
	        "  started_at timestamptz,\n"
	        "  updated_at timestamptz NOT NULL DEFAULT now(),\n"
	        "  finished_at timestamptz);\n",
	        s);
	/* version 2: the slices of a parallel first pass, gone with their job's row */
	bf_sbuf_printf(&sb,
	               "CREATE TABLE IF NOT EXISTS %s.slices (\n"
	               "  job text NOT NULL REFERENCES %s.jobs (name) ON DELETE CASCADE,\n"
	               "  slice int NOT NULL,\n"
	               "  cursor text[],\n"
	               "  high_key text[] NOT NULL,\n"
	               "  rows_done bigint NOT NULL DEFAULT 0,\n"
	               "  batches_done bigint NOT NULL DEFAULT 0,\n"
	               "  rows_per_second double precision,\n"
	               "  batch_size int,\n"
	               "  PRIMARY KEY (job, slice));\n",
	               s, s);
	/* version 3: the leaf partition a slice of a partitioned table walks (NULL: a key
	 * range of the job's table) */
	bf_sbuf_printf(&sb, "ALTER TABLE %s.slices ADD COLUMN IF NOT EXISTS relation oid;\n", s);
	/* version 4: the statements of a job's then: steps, and the states finishing (they run),
	 * undoing and undone. The state check only widens (an older daemon never writes the
	 * new states), once: the one place the script changes what exists. */
	bf_sbuf_printf(
	        &sb,
	        "CREATE TABLE IF NOT EXISTS %s.steps (\n"
	        "  job text NOT NULL REFERENCES %s.jobs (name) ON DELETE CASCADE,\n"
	        "  position int NOT NULL,\n"
	        "  statement text NOT NULL,\n"
	        "  state text NOT NULL DEFAULT 'pending'\n"
	        "    CHECK (state IN ('pending', 'done', 'failed')),\n"
	        "  attempts int NOT NULL DEFAULT 0,\n"
	        "  last_error text,\n"
	        "  started_at timestamptz,\n"
	        "  finished_at timestamptz,\n"
	        "  PRIMARY KEY (job, position));\n"
	        "DO $bf$ BEGIN\n"
	        "  IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = '%s.jobs'::regclass\n"
	        "      AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%%finishing%%') THEN\n"
	        "    ALTER TABLE %s.jobs DROP CONSTRAINT jobs_state_check;\n"
	        "    ALTER TABLE %s.jobs ADD CONSTRAINT jobs_state_check CHECK (state IN (\n"
	        "      'pending', 'running', 'throttled', 'paused', 'done', 'failed',\n"
	        "      'cancelled', 'finishing', 'undoing', 'undone'));\n"
	        "  END IF;\n"
	        "END $bf$;\n",
	        s, s, s, s, s);
	/* and where a job's verify walk is, so that it resumes there */
	bf_sbuf_printf(&sb,
	               "ALTER TABLE %s.jobs ADD COLUMN IF NOT EXISTS verify_cursor text[],\n"
	               "  ADD COLUMN IF NOT EXISTS verify_rows bigint NOT NULL DEFAULT 0,\n"
	               "  ADD COLUMN IF NOT EXISTS verify_bad bigint NOT NULL DEFAULT 0,\n"
	               "  ADD COLUMN IF NOT EXISTS verify_keys text[],\n"
	               "  ADD COLUMN IF NOT EXISTS verified boolean NOT NULL DEFAULT false;\n",
	               s);
	/* version 5: undo (backup: true). Where the undo's walk of the backup is and what it
	 * did, and the request that starts it; the request check widens once, as above. */
	bf_sbuf_printf(
	        &sb,
	        "ALTER TABLE %s.jobs ADD COLUMN IF NOT EXISTS undo_cursor text[],\n"
	        "  ADD COLUMN IF NOT EXISTS undo_rows bigint NOT NULL DEFAULT 0,\n"
	        "  ADD COLUMN IF NOT EXISTS undo_skipped bigint NOT NULL DEFAULT 0,\n"
	        "  ADD COLUMN IF NOT EXISTS undo_keys text[],\n"
	        "  ADD COLUMN IF NOT EXISTS undo_to_null boolean NOT NULL DEFAULT false;\n"
	        "DO $bf$ BEGIN\n"
	        "  IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = '%s.jobs'::regclass\n"
	        "      AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%%''undo''%%') THEN\n"
	        "    ALTER TABLE %s.jobs DROP CONSTRAINT jobs_requested_state_check;\n"
	        "    ALTER TABLE %s.jobs ADD CONSTRAINT jobs_requested_state_check CHECK (\n"
	        "      requested_state IN ('paused', 'running', 'cancelled', 'undo'));\n"
	        "  END IF;\n"
	        "END $bf$;\n",
	        s, s, s, s);
	bf_sbuf_printf(
	        &sb,
	        "CREATE OR REPLACE FUNCTION %s.assert_batch(still bigint) RETURNS boolean\n"
	        "LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $bf$\n"
	        "BEGIN\n"
	        "  IF still > 0 THEN\n"
	        "    RAISE EXCEPTION 'set does not make where false: %% updated rows still match "
	        "where', still\n"
	        "      USING ERRCODE = '" BF_SQLSTATE_SET_KEEPS_WHERE "',\n"
	        "            HINT = 'change set or where so that an updated row no longer matches "
	        "where';\n"
	        "  END IF;\n"
	        "  RETURN true;\n"
	        "END $bf$;\n",
	        s);
	/* percent: the estimate grows to at least rows_done, so it never passes 100, and only a
	 * done job shows 100 (rows left to a sweep are not in the estimate). eta from
	 * the recent rate, kept while throttled or paused, gone once the job is over. A parallel
	 * first pass counts in its slices' rows (the job's own row counts its own batches):
	 * rows_done adds them up, and the rate is theirs while they walk. */
	bf_sbuf_printf(
	        &sb,
	        "CREATE OR REPLACE VIEW %s.progress AS\n"
	        "SELECT name, table_name, state, state_reason, rows_done,\n"
	        "  CASE WHEN rows_estimate IS NOT NULL THEN greatest(rows_estimate, rows_done) "
	        "END\n"
	        "    AS rows_estimate,\n"
	        "  CASE WHEN state IN ('done', 'undone') THEN 100.0\n"
	        "       WHEN state = 'undoing' THEN least(round(100.0 * (undo_rows + "
	        "undo_skipped)\n"
	        "            / greatest(rows_done, 1), 1), 99.9)\n"
	        "       WHEN rows_estimate IS NULL THEN NULL\n"
	        "       WHEN greatest(rows_estimate, rows_done) > 0\n"
	        "       THEN least(round(100.0 * rows_done / greatest(rows_estimate, rows_done), "
	        "1),\n"
	        "                  99.9)\n"
	        "       ELSE 0.0 END::numeric(4,1) AS percent,\n"
	        "  round(rows_per_second::numeric, 1) AS rows_per_second,\n"
	        "  CASE WHEN state IN ('done', 'failed', 'cancelled', 'undoing', 'undone') THEN "
	        "NULL\n"
	        "       WHEN rows_per_second > 0\n"
	        "       THEN make_interval(secs => round(greatest(greatest(rows_estimate, "
	        "rows_done)\n"
	        "            - rows_done, 0) / rows_per_second)) END AS eta,\n"
	        "  batch_size, pass, errors, last_error, started_at, updated_at, finished_at, "
	        "steps,\n"
	        "  backup_bytes, undo_rows, undo_skipped\n"
	        "FROM (\n"
	        "  SELECT j.name, j.table_name, j.state, j.state_reason,\n"
	        "    (j.rows_done + coalesce(s.rows_done, 0))::bigint AS rows_done, "
	        "j.rows_estimate,\n"
	        "    CASE WHEN s.walking THEN s.rows_per_second ELSE j.rows_per_second END\n"
	        "      AS rows_per_second,\n"
	        "    CASE WHEN s.walking THEN s.batch_size ELSE j.batch_size END AS batch_size,\n"
	        "    j.pass, j.errors, j.last_error, j.started_at, j.updated_at,\n"
	        "    j.finished_at,\n"
	        "    (SELECT CASE WHEN count(*) > 0 THEN format('%%s/%%s done',\n"
	        "        count(*) FILTER (WHERE st.state = 'done'), count(*)) END\n"
	        "     FROM %s.steps st WHERE st.job = j.name) AS steps,\n"
	        /* the backup table's name as bf_sql_backup_name() writes it; the schema's
	         * name is [a-z0-9_] (config.c), so it sits in the literal as it is */
	        "    pg_total_relation_size(to_regclass('%s.'\n"
	        "      || quote_ident(left(j.name, " BF_BACKUP_NAME_CUT ") || '_backup'))) AS "
	        "backup_bytes,\n"
	        "    j.undo_rows, j.undo_skipped\n"
	        "  FROM %s.jobs j LEFT JOIN LATERAL (\n"
	        "    SELECT sum(rows_done) AS rows_done,\n"
	        "      sum(rows_per_second) FILTER (WHERE cursor IS DISTINCT FROM high_key)\n"
	        "        AS rows_per_second,\n"
	        "      max(batch_size) FILTER (WHERE cursor IS DISTINCT FROM high_key) AS "
	        "batch_size,\n"
	        "      bool_or(cursor IS DISTINCT FROM high_key) AS walking\n"
	        "    FROM %s.slices WHERE job = j.name) s ON true) AS j;\n",
	        s, s, s, s, s);
	bf_sbuf_printf(&sb,
	               "INSERT INTO %s.schema_version (version) VALUES (%d) "
	               "ON CONFLICT DO NOTHING;\n",
	               s, BF_SCHEMA_VERSION);
	return bf_sbuf_steal(&sb);
}

char *bf_sql_schema(const char *qschema)
{
	return schema_script(qschema, false);
}

char *bf_sql_schema_temp(void)
{
	return schema_script("pg_temp", true);
}

const char *bf_sql_grants(void)
{
	return "SELECT CASE\n"
	       "    WHEN n.oid IS NULL AND NOT has_database_privilege(current_database(), "
	       "'CREATE')\n"
	       "    THEN format('the role lacks CREATE on database %s (to create the control '\n"
	       "                'schema %s): GRANT CREATE ON DATABASE %I TO %I, or create the '\n"
	       "                'schema for it', current_database(), $1, current_database(), "
	       "current_user)\n"
	       "    WHEN n.oid IS NOT NULL AND NOT pg_has_role(n.nspowner, 'MEMBER')\n"
	       "    THEN format('the control schema %s is owned by %s, a role %s is not a member "
	       "'\n"
	       "                'of: the daemon would run its functions; use a schema owned by '\n"
	       "                'the daemon''s role (control_schema)', $1, n.nspowner::regrole, "
	       "current_user)\n"
	       "  END,\n"
	       "  CASE WHEN $2::bool AND NOT pg_has_role('pg_monitor', 'MEMBER')\n"
	       "    THEN format('the role lacks pg_monitor, which the lag limits need (GRANT '\n"
	       "                'pg_monitor TO %I)', current_user) END\n"
	       "FROM (SELECT 1) AS one LEFT JOIN pg_namespace n ON n.nspname = $1";
}

char *bf_sql_fail_unregistered(const char *qschema)
{
	return bf_xasprintf(
	        "INSERT INTO %s.jobs AS j (name, table_name, definition_hash, state, "
	        "state_reason,\n"
	        "  last_error, errors, finished_at)\n"
	        "VALUES ($1, $2, $3, 'failed', $4, $4, 1, now())\n"
	        "ON CONFLICT (name) DO UPDATE SET state = 'failed', state_reason = $4,\n"
	        "  last_error = $4, errors = j.errors + 1, owner = NULL, finished_at = now(),\n"
	        "  updated_at = now()\n"
	        "WHERE j.state NOT IN ('done', 'cancelled')",
	        qschema);
}

const char *bf_sql_resolve(void)
{
	return "WITH rel AS (\n"
	       "  SELECT c.oid, n.nspname::text AS nspname, c.relname::text AS relname,\n"
	       "         c.relkind::text AS relkind\n"
	       "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace\n"
	       "  WHERE c.oid = to_regclass($1)),\n"
	       "pk AS (\n"
	       "  SELECT array_agg(a.attname::text ORDER BY k.i) AS cols\n"
	       "  FROM rel JOIN pg_index x ON x.indrelid = rel.oid AND x.indisprimary\n"
	       "  CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, i)\n"
	       "  JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attnum = k.attnum),\n"
	       "keycols AS (\n"
	       "  SELECT k.name, k.i, a.attnum, format_type(a.atttypid, a.atttypmod) AS type,\n"
	       "         coalesce(a.attnotnull, false) AS notnull\n"
	       "  FROM rel CROSS JOIN LATERAL unnest(coalesce($2::text[], (SELECT cols FROM pk)))\n"
	       "       WITH ORDINALITY AS k(name, i)\n"
	       "  LEFT JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attname = k.name\n"
	       "       AND a.attnum > 0 AND NOT a.attisdropped),\n"
	       "uniq AS (\n"
	       "  SELECT EXISTS (SELECT 1 FROM rel JOIN pg_index x ON x.indrelid = rel.oid\n"
	       "    WHERE x.indisunique AND x.indisvalid AND x.indpred IS NULL\n"
	       "      AND x.indexprs IS NULL\n"
	       "      AND x.indnkeyatts = (SELECT count(*) FROM keycols)\n"
	       "      AND (x.indkey::int2[])[0:x.indnkeyatts - 1]\n"
	       "          = (SELECT array_agg(attnum ORDER BY i) FROM keycols)) AS ok),\n"
	       /* the table and, when partitioned, every relation of its tree */
	       "tree AS (\n"
	       "  SELECT oid FROM rel UNION SELECT t.relid FROM rel, pg_partition_tree(rel.oid) "
	       "t),\n"
	       "unsafe AS (\n"
	       "  SELECT (SELECT string_agg(c.oid::regclass::text || coalesce(' (policies: '\n"
	       "            || (SELECT string_agg(p.polname::text, ', ' ORDER BY p.polname)\n"
	       "                FROM pg_policy p WHERE p.polrelid = c.oid) || ')',\n"
	       "            ' (no policy: every row hidden)'), '; ' ORDER BY c.oid)\n"
	       "          FROM tree JOIN pg_class c ON c.oid = tree.oid\n"
	       "          WHERE row_security_active(c.oid)) AS rls,\n"
	       "    (SELECT string_agg(r.rulename || ' on ' || r.ev_class::regclass::text, ', '\n"
	       "            ORDER BY r.rulename)\n"
	       "     FROM tree JOIN pg_rewrite r ON r.ev_class = tree.oid\n"
	       "     WHERE r.ev_type = '2') AS rules,\n"
	       "    (SELECT string_agg(i.inhrelid::regclass::text, ', ' ORDER BY i.inhrelid)\n"
	       "     FROM rel JOIN pg_inherits i ON i.inhparent = rel.oid\n"
	       "     WHERE rel.relkind = 'r') AS children,\n"
	       "    (SELECT string_agg(c.oid::regclass::text, ', ' ORDER BY c.oid)\n"
	       "     FROM tree JOIN pg_class c ON c.oid = tree.oid WHERE c.relkind = 'f')\n"
	       "      AS foreign_parts,\n"
	       /* row (1), before (2), update (16); a partition's clone of a trigger once */
	       "    (SELECT string_agg(g.tgname || ' on ' || g.tgrelid::regclass::text, ', '\n"
	       "            ORDER BY g.tgname)\n"
	       "     FROM tree JOIN pg_trigger g ON g.tgrelid = tree.oid\n"
	       "     WHERE NOT g.tgisinternal AND g.tgparentid = 0 AND g.tgenabled <> 'D'\n"
	       "       AND g.tgtype & 19 = 19) AS triggers)\n"
	       "SELECT rel.nspname, rel.relname, rel.relkind,\n"
	       "       has_table_privilege(rel.oid, 'SELECT') AND has_table_privilege(rel.oid, "
	       "'UPDATE'),\n"
	       "       uniq.ok, keycols.name,\n"
	       "       coalesce(keycols.type, ''), keycols.notnull, $2::text[] IS NOT NULL,\n"
	       "       rel.oid::text, unsafe.rls, unsafe.rules, unsafe.children,\n"
	       "       unsafe.foreign_parts, unsafe.triggers,\n"
	       "       (SELECT sum(pg_relation_size(tree.oid)) / "
	       "current_setting('block_size')::bigint\n"
	       "        FROM tree)::bigint\n"
	       "FROM rel CROSS JOIN uniq CROSS JOIN unsafe LEFT JOIN keycols ON true\n"
	       "ORDER BY keycols.i";
}

/* "ARRAY[a::text, b::text]" or the elements "x[1], x[2]" of a text[] column. */
static void key_list(bf_sbuf *sb, const bf_sql_target *t, const char *prefix)
{
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(sb, "%s%s%s", i ? ", " : "", prefix, t->qkey[i]);
}

/* "a DESC, b DESC": the key in reverse order (the last key first). */
static void key_list_desc(bf_sbuf *sb, const bf_sql_target *t)
{
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(sb, "%s%s DESC", i ? ", " : "", t->qkey[i]);
}

static void elements(bf_sbuf *sb, const bf_sql_target *t, const char *col)
{
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(sb, ", %s[%zu]", col, i + 1);
}

/* "($first::type1, $first+1::type2)": key values as typed parameters. */
static void params(bf_sbuf *sb, const bf_sql_target *t, int first)
{
	bf_sbuf_append(sb, "(");
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(sb, "%s$%d::%s", i ? ", " : "", first + (int)i, t->key_type[i]);
	bf_sbuf_append(sb, ")");
}

static void key_row(bf_sbuf *sb, const bf_sql_target *t)
{
	bf_sbuf_append(sb, "(");
	key_list(sb, t, "");
	bf_sbuf_append(sb, ")");
}

/* "(key) > ($lo..) AND (key) <= (": the lower bound unless `first`; the caller closes
 * the upper bound with its own values. */
static void lower_and_upper(bf_sbuf *sb, const bf_sql_target *t, bool first, int lo)
{
	if (!first) {
		key_row(sb, t);
		bf_sbuf_append(sb, " > ");
		params(sb, t, lo);
		bf_sbuf_append(sb, " AND ");
	}
	key_row(sb, t);
	bf_sbuf_append(sb, " <= ");
}

/* "(key) > ($lo..) AND (key) <= ($hi..)": a range between parameters. */
static void param_range(bf_sbuf *sb, const bf_sql_target *t, bool first, int lo, int hi)
{
	lower_and_upper(sb, t, first, lo);
	params(sb, t, hi);
}

char *bf_sql_register(const bf_sql_target *t)
{
	bf_sbuf sb = {0};

	bf_sbuf_printf(&sb,
	               "INSERT INTO %s.jobs AS j (name, table_name, definition_hash, batch_size,\n"
	               "  owner, rows_estimate)\n"
	               "VALUES ($1, $2, $3, $4, $5, $6)\n"
	               "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,\n"
	               "  updated_at = now()\n"
	               "RETURNING j.definition_hash, j.state, j.requested_state, j.pass,\n"
	               "  j.rows_done + coalesce((SELECT sum(s.rows_done) FROM %s.slices s\n"
	               "    WHERE s.job = j.name), 0),\n"
	               "  j.cursor IS NOT NULL, j.high_key IS NOT NULL, j.rows_estimate",
	               t->qschema, t->qschema);
	elements(&sb, t, "j.cursor");
	elements(&sb, t, "j.high_key");
	bf_sbuf_printf(&sb,
	               ",\n  EXISTS (SELECT FROM %s.steps st WHERE st.job = j.name),\n"
	               "  j.undo_cursor IS NOT NULL, j.undo_to_null",
	               t->qschema);
	return bf_sbuf_steal(&sb);
}

char *bf_sql_high_water(const bf_sql_target *t)
{
	bf_sbuf sb = {0};

	bf_sbuf_printf(&sb, "UPDATE %s.jobs SET high_key = (SELECT ARRAY[", t->qschema);
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(&sb, "%s%s::text", i ? ", " : "", t->qkey[i]);
	bf_sbuf_printf(&sb, "] FROM %s ORDER BY ", t->qtable);
	key_list_desc(&sb, t);
	bf_sbuf_append(&sb, " LIMIT 1),\n"
	                    "  started_at = coalesce(started_at, now()), updated_at = now()\n"
	                    "WHERE name = $1\n"
	                    "RETURNING high_key IS NOT NULL");
	elements(&sb, t, "high_key");
	return bf_sbuf_steal(&sb);
}

char *bf_sql_estimate(const bf_sql_target *t)
{
	return bf_xasprintf("SELECT round(count(*) * 100.0 / $1::float8)::bigint\n"
	                    "FROM %s TABLESAMPLE SYSTEM ($1::float8) WHERE (%s)",
	                    t->qtable, t->where);
}

double bf_sql_sample_percent(long long pages)
{
	double p =
	        pages > BF_SQL_SAMPLE_PAGES ? 100.0 * BF_SQL_SAMPLE_PAGES / (double)pages : 100.0;

	return p < 0.0001 ? 0.0001 : p;
}

/* "key > (cursor) AND key <= (hi)": the batch's range, bounded on the key index. */
static void range(bf_sbuf *sb, const bf_sql_target *t, bool first, int cur)
{
	lower_and_upper(sb, t, first, cur);
	bf_sbuf_append(sb, "(");
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(sb, "%s(SELECT bf_hi_%zu FROM hi)", i ? ", " : "", i + 1);
	bf_sbuf_append(sb, ")");
}

/* "ARRAY[hi.bf_hi_1::text, ...]": the batch's last key as a cursor. */
static void hi_array(bf_sbuf *sb, const bf_sql_target *t)
{
	bf_sbuf_append(sb, "ARRAY[");
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(sb, "%shi.bf_hi_%zu::text", i ? ", " : "", i + 1);
	bf_sbuf_append(sb, "]");
}

/* The batch's last columns: its last key, then the WAL position once its rows and its
 * checkpoint are written (the returned row is formed after both), then with a backup its size
 * (the names in it are [a-z0-9_] and quoted: config.c, so they sit in the literal as they
 * are). */
static void hi_columns(bf_sbuf *sb, const bf_sql_target *t)
{
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(sb, ", hi.bf_hi_%zu::text", i + 1);
	bf_sbuf_append(sb, ", pg_current_wal_insert_lsn()::text");
	if (t->qbackup)
		bf_sbuf_printf(sb, ", pg_total_relation_size('%s'::regclass)", t->qbackup);
}

/* The end of a resumable walk's statement (verify, undo): the row's <walk>_cursor moved to the
 * range's last key (`last`), kept when the range was empty (`agg.n` = 0), from `agg`. */
static void walk_cursor(bf_sbuf *sb, const bf_sql_target *t, const char *walk)
{
	bf_sbuf_printf(sb, "  %s_cursor = CASE WHEN agg.n = 0 THEN j.%s_cursor ELSE ARRAY[", walk,
	               walk);
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(sb, "%s(SELECT %s::text FROM last)", i ? ", " : "", t->qkey[i]);
	bf_sbuf_append(sb, "] END,\n"
	                   "  updated_at = now()\n"
	                   "FROM agg WHERE j.name = $1\n");
}

/* ---- backup: true, and undo ---- */

char *bf_sql_backup_name(const char *job)
{
	return bf_xasprintf("%." BF_BACKUP_NAME_CUT "s_backup", job);
}

char *bf_sql_backup_index_name(const char *job)
{
	return bf_xasprintf("%." BF_BACKUP_NAME_CUT "s_backup_key", job);
}

/* "k1, k2, c1, c2": the backup's columns but the written hash, from `prefix`. */
static void backup_list(bf_sbuf *sb, const bf_sql_target *t, const char *prefix)
{
	key_list(sb, t, prefix);
	for (size_t i = 0; i < t->n_bcols; i++)
		bf_sbuf_printf(sb, ", %s%s", prefix, t->qbcols[i]);
}

char *bf_sql_backup_create(const bf_sql_target *t)
{
	bf_sbuf sb = {0};

	bf_sbuf_printf(&sb, "CREATE TABLE IF NOT EXISTS %s AS SELECT ", t->qbackup);
	backup_list(&sb, t, "");
	bf_sbuf_printf(&sb,
	               " FROM %s WITH NO DATA;\n"
	               "ALTER TABLE %s ADD COLUMN IF NOT EXISTS " BF_BACKUP_WRITTEN " uuid;\n"
	               "CREATE UNIQUE INDEX IF NOT EXISTS %s ON %s (",
	               t->qtable, t->qbackup, t->qbackup_index, t->qbackup);
	key_list(&sb, t, "");
	bf_sbuf_append(&sb, ");\n");
	return bf_sbuf_steal(&sb);
}

/* md5 of the row of the assigned columns (of `alias`, or unqualified) as the session writes
 * it, as a uuid: what a batch wrote, for the undo to tell a row still as the job left it. */
static void written_hash(bf_sbuf *sb, const bf_sql_target *t, const char *alias)
{
	bf_sbuf_append(sb, "md5(ROW(");
	for (size_t i = 0; i < t->n_bcols; i++)
		bf_sbuf_printf(sb, "%s%s%s%s", i ? ", " : "", alias ? alias : "", alias ? "." : "",
		               t->qbcols[i]);
	bf_sbuf_append(sb, ")::text)::uuid");
}

/* ", k1 AS bf_k1, ...": the key (of `alias`) under names no table column has. */
static void key_as(bf_sbuf *sb, const bf_sql_target *t, const char *alias)
{
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(sb, ", %s%s%s AS bf_k%zu", alias ? alias : "", alias ? "." : "",
		               t->qkey[i], i + 1);
}

/* "(a.bf_k1, a.bf_k2) = (b.bf_k1, b.bf_k2)", or with b's own key names when `b_plain`. */
static void key_match(bf_sbuf *sb, const bf_sql_target *t, const char *a, const char *b,
                      bool b_plain)
{
	bf_sbuf_append(sb, "(");
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(sb, "%s%s.bf_k%zu", i ? ", " : "", a, i + 1);
	bf_sbuf_append(sb, ") = (");
	for (size_t i = 0; i < t->n_key; i++) {
		if (b_plain)
			bf_sbuf_printf(sb, "%s%s.%s", i ? ", " : "", b, t->qkey[i]);
		else
			bf_sbuf_printf(sb, "%s%s.bf_k%zu", i ? ", " : "", b, i + 1);
	}
	bf_sbuf_append(sb, ")");
}

/* The batch's pieces that keep the backup (see bf_sql_batch). */
static void backup_todo(bf_sbuf *sb, const bf_sql_target *t)
{
	key_as(sb, t, NULL);
	for (size_t i = 0; i < t->n_bcols; i++)
		bf_sbuf_printf(sb, ", %s AS bf_o%zu", t->qbcols[i], i + 1);
}

static void backup_returning(bf_sbuf *sb, const bf_sql_target *t)
{
	key_as(sb, t, t->qtable);
	bf_sbuf_append(sb, ", ");
	written_hash(sb, t, t->qtable);
	bf_sbuf_append(sb, " AS bf_w");
}

/* The first old value of a row stays (a sweep that changes a row again does not replace
 * it); what the job wrote is always the latest. */
static void backup_insert(bf_sbuf *sb, const bf_sql_target *t)
{
	bf_sbuf_printf(sb, "bk AS (\n  INSERT INTO %s (", t->qbackup);
	backup_list(sb, t, "");
	bf_sbuf_append(sb, ", " BF_BACKUP_WRITTEN ")\n  SELECT ");
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(sb, "%stodo.bf_k%zu", i ? ", " : "", i + 1);
	for (size_t i = 0; i < t->n_bcols; i++)
		bf_sbuf_printf(sb, ", todo.bf_o%zu", i + 1);
	bf_sbuf_append(sb, ", upd.bf_w\n  FROM upd JOIN todo ON ");
	key_match(sb, t, "upd", "todo", false);
	bf_sbuf_append(sb, "\n  ON CONFLICT (");
	key_list(sb, t, "");
	bf_sbuf_append(sb, ") DO UPDATE SET " BF_BACKUP_WRITTEN " = excluded." BF_BACKUP_WRITTEN
	                   "),\n");
}

char *bf_sql_undo_begin(const bf_sql_target *t)
{
	bf_sbuf sb = {0};

	bf_sbuf_printf(
	        &sb,
	        "UPDATE %s.jobs SET undo_cursor = coalesce(undo_cursor, '{}'),\n"
	        "  requested_state = CASE WHEN requested_state = 'undo' THEN NULL\n"
	        "                         ELSE requested_state END,\n"
	        "  updated_at = now()\n"
	        "WHERE name = $1\n"
	        "RETURNING to_regclass($2) IS NOT NULL OR undo_to_null, undo_rows, undo_skipped,\n"
	        "  array_to_string(undo_keys, '; '), requested_state,\n"
	        "  cardinality(undo_cursor) > 0",
	        t->qschema);
	elements(&sb, t, "undo_cursor");
	bf_sbuf_append(&sb, ", pg_total_relation_size(to_regclass($2))");
	return bf_sbuf_steal(&sb);
}

/* "p.bf_k1 s, p.bf_k2 s": the key under its bf_ names (key_as), from `prefix`. */
static void bf_keys(bf_sbuf *sb, const bf_sql_target *t, const char *prefix, const char *suffix)
{
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(sb, "%s%sbf_k%zu%s", i ? ", " : "", prefix, i + 1, suffix);
}

/* The rest of an undo range's statement, after the CTEs `b` (the range read, its key as
 * bf_k1..) and `upd` (the rows put back, their key as bf_k1..): the rows skipped, the counts,
 * the first keys skipped and the cursor, written to the job's row. */
static void undo_tail(bf_sbuf *sb, const bf_sql_target *t)
{
	bf_sbuf_append(sb, "sk AS (\n  SELECT ");
	bf_keys(sb, t, "b.", "");
	bf_sbuf_append(sb, " FROM b WHERE NOT EXISTS (SELECT 1 FROM upd WHERE ");
	key_match(sb, t, "upd", "b", false);
	bf_sbuf_append(sb, ")),\nlast AS (SELECT ");
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(sb, "%sbf_k%zu AS %s", i ? ", " : "", i + 1, t->qkey[i]);
	bf_sbuf_append(sb, " FROM b ORDER BY ");
	bf_keys(sb, t, "", " DESC");
	bf_sbuf_append(sb, " LIMIT 1),\n"
	                   "agg AS (SELECT (SELECT count(*) FROM b) AS n,\n"
	                   "  (SELECT count(*) FROM upd) AS done, (SELECT count(*) FROM sk) AS "
	                   "skipped,\n"
	                   "  ARRAY(SELECT concat_ws(', ', ");
	bf_keys(sb, t, "", "::text");
	bf_sbuf_append(sb, ") FROM sk ORDER BY ");
	bf_keys(sb, t, "", "");
	bf_sbuf_printf(sb,
	               " LIMIT " BF_UNDO_KEYS ") AS keys)\n"
	               "UPDATE %s.jobs j SET undo_rows = j.undo_rows + agg.done,\n"
	               "  undo_skipped = j.undo_skipped + agg.skipped,\n"
	               "  undo_keys = (coalesce(j.undo_keys, '{}') || agg.keys)[1:" BF_UNDO_KEYS
	               "],\n",
	               t->qschema);
	walk_cursor(sb, t, "undo");
	bf_sbuf_append(sb, "RETURNING agg.n, j.undo_rows, j.undo_skipped,\n"
	                   "  array_to_string(j.undo_keys, '; '), j.requested_state");
	elements(sb, t, "j.undo_cursor");
}

/* "WHERE c IS NOT NULL AND (key) > ($3..) ORDER BY key LIMIT $2": the range after the cursor
 * (`cond` ANDed, may be NULL). */
static void range_after(bf_sbuf *sb, const bf_sql_target *t, bool first, const char *cond)
{
	if (cond || !first)
		bf_sbuf_append(sb, "\n  WHERE ");
	if (cond)
		bf_sbuf_append(sb, cond);
	if (!first) {
		bf_sbuf_append(sb, cond ? " AND " : "");
		key_row(sb, t);
		bf_sbuf_append(sb, " > ");
		params(sb, t, 3);
	}
	bf_sbuf_append(sb, "\n  ORDER BY ");
	key_list(sb, t, "");
	bf_sbuf_append(sb, " LIMIT $2),\n");
}

char *bf_sql_undo_range(const bf_sql_target *t, bool first)
{
	bf_sbuf sb = {0};

	bf_sbuf_append(&sb, "WITH b AS (\n  SELECT " BF_BACKUP_WRITTEN);
	key_as(&sb, t, NULL);
	for (size_t i = 0; i < t->n_bcols; i++)
		bf_sbuf_printf(&sb, ", %s", t->qbcols[i]);
	bf_sbuf_printf(&sb, " FROM %s", t->qbackup);
	range_after(&sb, t, first, NULL);
	/* a row is put back only while it is what the job wrote: one the application changed
	 * since is left as it is, and counted */
	bf_sbuf_printf(&sb, "upd AS (\n  UPDATE %s AS bf_t SET ", t->qtable);
	for (size_t i = 0; i < t->n_bcols; i++)
		bf_sbuf_printf(&sb, "%s%s = b.%s", i ? ", " : "", t->qbcols[i], t->qbcols[i]);
	bf_sbuf_append(&sb, "\n  FROM b WHERE (");
	key_list(&sb, t, "bf_t.");
	bf_sbuf_append(&sb, ") = (");
	bf_keys(&sb, t, "b.", "");
	bf_sbuf_append(&sb, ")\n    AND ");
	written_hash(&sb, t, "bf_t");
	bf_sbuf_append(&sb, " = b." BF_BACKUP_WRITTEN "\n  RETURNING ");
	bf_keys(&sb, t, "b.", "");
	bf_sbuf_append(&sb, "),\n");
	undo_tail(&sb, t);
	return bf_sbuf_steal(&sb);
}

char *bf_sql_undo_null_range(const bf_sql_target *t, bool first, const char *qcol, const char *expr)
{
	bf_sbuf sb = {0};
	char *not_null = bf_xasprintf("%s IS NOT NULL", qcol);

	/* the rows of the range whose column is set, locked by nothing yet; a row is named by
	 * its ctid (with its partition on a partitioned table), as a batch names it */
	bf_sbuf_printf(&sb, "WITH b AS (\n  SELECT %sctid AS bf_ctid",
	               t->partitioned ? "tableoid AS bf_rel, " : "");
	key_as(&sb, t, NULL);
	bf_sbuf_printf(&sb, ", %s IS NOT DISTINCT FROM (%s) AS bf_mine FROM %s", qcol, expr,
	               t->qtable);
	range_after(&sb, t, first, not_null);
	/* NULL again only while the column is what set gives: a value the application wrote
	 * since (checked again on the row as it is when locked) is left, and counted */
	if (t->partitioned)
		bf_sbuf_printf(
		        &sb,
		        "upd AS (\n  UPDATE %s SET %s = NULL FROM b\n"
		        "  WHERE %s.tableoid = b.bf_rel AND %s.ctid = b.bf_ctid AND b.bf_mine\n"
		        "    AND %s.%s IS NOT DISTINCT FROM (%s)\n  RETURNING 1 AS bf_one",
		        t->qtable, qcol, t->qtable, t->qtable, t->qtable, qcol, expr);
	else
		bf_sbuf_printf(&sb,
		               "upd AS (\n  UPDATE %s SET %s = NULL\n"
		               "  WHERE ctid = ANY (ARRAY(SELECT bf_ctid FROM b WHERE bf_mine))\n"
		               "    AND %s IS NOT DISTINCT FROM (%s)\n  RETURNING 1 AS bf_one",
		               t->qtable, qcol, qcol, expr);
	key_as(&sb, t, t->qtable);
	bf_sbuf_append(&sb, "),\n");
	undo_tail(&sb, t);
	free(not_null);
	return bf_sbuf_steal(&sb);
}

char *bf_sql_batch(const bf_sql_target *t, bool first, bool plain, enum bf_ckpt ckpt)
{
	bf_sbuf sb = {0};
	const char *unchanged;
	int cur = 5;
	int high = first ? 5 : 5 + (int)t->n_key;

	/* the fast path has no row-lock pass to read the old values from: with a backup every
	 * batch is the SKIP LOCKED form */
	if (t->qbackup)
		plain = false;
	unchanged = plain ? "0::bigint" : "(SELECT count(*) FROM todo) - n.rows";
	/* hi: the key $2 rows on, or the high-water mark when fewer remain (keys are NOT
	 * NULL, so a NULL here means "no such row"). */
	bf_sbuf_append(&sb, "WITH hi AS (\n  SELECT s.bf_found IS NULL AS bf_last");
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(&sb, ",\n    coalesce(s.%s, $%d::%s) AS bf_hi_%zu", t->qkey[i],
		               high + (int)i, t->key_type[i], i + 1);
	/* the fast path waits at most fast_lock_ms for a row lock (transaction-local, set
	 * before the range is scanned); the SKIP LOCKED form never waits for rows */
	if (plain)
		bf_sbuf_printf(
		        &sb,
		        "\n  FROM (SELECT set_config('lock_timeout', '%lldms', true)) AS one "
		        "LEFT JOIN (\n    SELECT ",
		        (long long)(t->fast_lock_ms > 0 ? t->fast_lock_ms : BF_FAST_LOCK_MS));
	else
		bf_sbuf_append(&sb, "\n  FROM (SELECT 1) AS one LEFT JOIN (\n    SELECT ");
	key_list(&sb, t, "");
	bf_sbuf_printf(&sb, ", true AS bf_found FROM %s\n    WHERE ", t->qtable);
	param_range(&sb, t, first, cur, high);
	bf_sbuf_append(&sb, "\n    ORDER BY ");
	key_list(&sb, t, "");
	bf_sbuf_append(&sb, " OFFSET $2::int - 1 LIMIT 1) AS s ON true");
	/* a leaf detached from the job's table is no longer the job's: no hi, no rows, and
	 * the statement returns none (the oids are digits from the catalog) */
	if (t->leaf_oid)
		bf_sbuf_printf(
		        &sb,
		        "\n  WHERE EXISTS (SELECT 1 FROM pg_partition_ancestors(%s::oid::regclass) "
		        "a\n    WHERE a.relid = %s::oid)",
		        t->leaf_oid, t->oid);
	bf_sbuf_append(&sb, "),\n");

	if (plain) {
		/* the fast path: the range updated in place, no row-lock pass (see sql.h) */
		bf_sbuf_printf(&sb, "upd AS (\n  UPDATE %s SET %s\n  WHERE ", t->qtable, t->set);
		range(&sb, t, first, cur);
		bf_sbuf_printf(&sb, "\n    AND (%s)\n  RETURNING (%s) IS TRUE AS bf_still),\n",
		               t->where, t->where);
	} else {
		/* todo: lock the matching rows of the range, skipping those others hold; on a
		 * partitioned table a ctid is unique per partition only, so a row is named by
		 * its partition and ctid together */
		bf_sbuf_printf(&sb, "todo AS (\n  SELECT %sctid AS bf_ctid",
		               t->partitioned ? "tableoid AS bf_rel, " : "");
		if (t->qbackup)
			backup_todo(&sb, t);
		bf_sbuf_printf(&sb, " FROM %s\n  WHERE ", t->qtable);
		range(&sb, t, first, cur);
		bf_sbuf_printf(&sb, "\n    AND (%s)\n  ORDER BY ", t->where);
		key_list(&sb, t, "");
		bf_sbuf_append(&sb, "\n  FOR UPDATE SKIP LOCKED),\n");
		if (t->partitioned)
			bf_sbuf_printf(
			        &sb,
			        "upd AS (\n  UPDATE %s SET %s\n  FROM todo\n"
			        "  WHERE %s.tableoid = todo.bf_rel AND %s.ctid = todo.bf_ctid\n"
			        "  RETURNING (%s) IS TRUE AS bf_still",
			        t->qtable, t->set, t->qtable, t->qtable, t->where);
		else
			bf_sbuf_printf(&sb,
			               "upd AS (\n  UPDATE %s SET %s\n"
			               "  WHERE ctid = ANY (ARRAY(SELECT bf_ctid FROM todo))\n"
			               "  RETURNING (%s) IS TRUE AS bf_still",
			               t->qtable, t->set, t->where);
		if (t->qbackup)
			backup_returning(&sb, t);
		bf_sbuf_append(&sb, "),\n");
		if (t->qbackup)
			backup_insert(&sb, t);
	}
	bf_sbuf_append(&sb, "n AS (SELECT count(*) AS rows, count(*) FILTER (WHERE bf_still) AS "
	                    "still FROM upd)");

	if (ckpt == BF_CKPT_SLICE) {
		/* the slice's own row only: slices never wait for each other, and the job's
		 * row is read (for requested_state), not locked */
		bf_sbuf_printf(&sb,
		               ",\nsl AS (\n  UPDATE %s.slices AS s SET cursor = ", t->qschema);
		hi_array(&sb, t);
		bf_sbuf_printf(
		        &sb,
		        ",\n  rows_done = s.rows_done + n.rows, batches_done = s.batches_done + "
		        "1,\n"
		        "  rows_per_second = $3, batch_size = $2\n"
		        "  FROM hi, n\n"
		        "  WHERE s.job = $1 AND s.slice = $4 AND %s.assert_batch(n.still)\n"
		        "  RETURNING 1)\n"
		        "SELECT n.rows, hi.bf_last, j.requested_state, %s",
		        t->qschema, unchanged);
		hi_columns(&sb, t);
		bf_sbuf_printf(&sb,
		               "\nFROM hi, n, %s.jobs AS j\n"
		               "WHERE j.name = $1 AND EXISTS (SELECT 1 FROM sl)",
		               t->qschema);
		return bf_sbuf_steal(&sb);
	}
	bf_sbuf_printf(&sb, "\nUPDATE %s.jobs AS j SET cursor = ", t->qschema);
	hi_array(&sb, t);
	bf_sbuf_printf(&sb,
	               ",\n"
	               "  rows_done = j.rows_done + n.rows, batches_done = j.batches_done + 1,\n"
	               "  batch_size = $2, rows_per_second = $3, pass = $4,\n"
	               "  last_batch_ms = (extract(epoch FROM clock_timestamp() - "
	               "statement_timestamp()) * 1000)::int,\n"
	               "  updated_at = now()\n"
	               "FROM hi, n\n"
	               "WHERE j.name = $1 AND %s.assert_batch(n.still)\n"
	               "RETURNING n.rows, hi.bf_last, j.requested_state, %s",
	               t->qschema, unchanged);
	hi_columns(&sb, t);
	return bf_sbuf_steal(&sb);
}

char *bf_sql_slices(const bf_sql_target *t)
{
	bf_sbuf sb = {0};

	bf_sbuf_printf(&sb,
	               "WITH old AS (\n"
	               "  SELECT slice, cursor IS NOT DISTINCT FROM high_key AS done\n"
	               "  FROM %s.slices WHERE job = $1),\n"
	               "h AS (\n"
	               "  SELECT s.histogram_bounds::text::text[] AS b FROM pg_stats s\n"
	               "  WHERE s.schemaname = $3 AND s.tablename = $4 AND s.attname = $5\n"
	               "    AND $7::bool AND NOT EXISTS (SELECT 1 FROM old)\n"
	               "  ORDER BY s.inherited LIMIT 1),\n",
	               t->qschema);
	/* cut i of $2: the histogram's bound at i/$2, moved down to the last key at or
	 * below it (a backward index scan), below the high-water mark */
	bf_sbuf_append(&sb,
	               "cut AS (\n  SELECT i, x.k FROM h, generate_series(1, $2::int - 1) AS i,\n"
	               "  LATERAL (SELECT ARRAY[");
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(&sb, "%s%s::text", i ? ", " : "", t->qkey[i]);
	bf_sbuf_printf(&sb,
	               "] AS k FROM %s\n"
	               "    WHERE %s <= (h.b[1 + i * (cardinality(h.b) - 1) / $2::int])::%s\n"
	               "      AND ",
	               t->qtable, t->qkey[0], t->key_type[0]);
	key_row(&sb, t);
	bf_sbuf_append(&sb, " <= (");
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(&sb, "%s($6::text[])[%zu]::%s", i ? ", " : "", i + 1,
		               t->key_type[i]);
	bf_sbuf_append(&sb, ")\n    ORDER BY ");
	key_list_desc(&sb, t);
	bf_sbuf_printf(&sb,
	               " LIMIT 1) AS x\n"
	               "  WHERE x.k <> $6::text[]),\n"
	               "ends AS (\n"
	               "  SELECT k, min(i) AS i FROM cut GROUP BY k\n"
	               "  UNION ALL SELECT $6::text[], $2::int WHERE EXISTS (SELECT 1 FROM cut)),\n"
	               "ins AS (\n"
	               "  INSERT INTO %s.slices (job, slice, cursor, high_key)\n"
	               "  SELECT $1, row_number() OVER (ORDER BY i), lag(k) OVER (ORDER BY i), k "
	               "FROM ends\n"
	               "  RETURNING slice, false AS done)\n"
	               "SELECT slice, done FROM old UNION ALL SELECT slice, done FROM ins "
	               "ORDER BY slice",
	               t->qschema);
	return bf_sbuf_steal(&sb);
}

char *bf_sql_partition_slices(const bf_sql_target *t)
{
	return bf_xasprintf(
	        "WITH old AS (\n"
	        "  SELECT slice, cursor IS NOT DISTINCT FROM high_key AS done\n"
	        "  FROM %s.slices WHERE job = $1),\n"
	        "ins AS (\n"
	        "  INSERT INTO %s.slices (job, slice, cursor, high_key, relation)\n"
	        "  SELECT $1, row_number() OVER (ORDER BY t.relid::regclass::text), NULL,\n"
	        "    $3::text[], t.relid\n"
	        "  FROM pg_partition_tree($2::oid::regclass) t\n"
	        "  WHERE t.isleaf AND $4::bool AND NOT EXISTS (SELECT 1 FROM old)\n"
	        "  RETURNING slice, false AS done)\n"
	        "SELECT slice, done FROM old UNION ALL SELECT slice, done FROM ins ORDER BY slice",
	        t->qschema, t->qschema);
}

char *bf_sql_slice_register(const bf_sql_target *t)
{
	bf_sbuf sb = {0};

	bf_sbuf_printf(&sb,
	               "WITH s AS (\n"
	               "  SELECT s.cursor IS NOT NULL AS has_cursor, j.requested_state,\n"
	               "    n.nspname::text AS nsp, c.relname::text AS rel, s.relation::text AS "
	               "leaf,\n"
	               "    s.relation IS NULL OR EXISTS (SELECT 1\n"
	               "      FROM pg_partition_ancestors(c.oid::regclass) a WHERE a.relid = "
	               "$3::oid)\n"
	               "      AS attached, s.cursor, s.high_key\n"
	               "  FROM %s.slices s JOIN %s.jobs j ON j.name = s.job\n"
	               "  LEFT JOIN pg_class c ON c.oid = s.relation\n"
	               "  LEFT JOIN pg_namespace n ON n.oid = c.relnamespace\n"
	               "  WHERE s.job = $1 AND s.slice = $2),\n"
	               "gone AS (\n"
	               "  UPDATE %s.slices SET cursor = high_key\n"
	               "  WHERE job = $1 AND slice = $2 AND NOT (SELECT attached FROM s)\n"
	               "  RETURNING 1)\n"
	               "SELECT has_cursor, requested_state, nsp, rel, leaf, attached",
	               t->qschema, t->qschema, t->qschema);
	elements(&sb, t, "cursor");
	elements(&sb, t, "high_key");
	bf_sbuf_append(&sb, "\nFROM s");
	return bf_sbuf_steal(&sb);
}

char *bf_sql_remaining(const bf_sql_target *t, bool first)
{
	bf_sbuf sb = {0};
	int high = first ? 2 : 2 + (int)t->n_key;

	/* one ordered walk of the chunk on the key index: the rows still matching and the
	 * chunk's last key come from the same scan */
	bf_sbuf_append(&sb, "WITH s AS MATERIALIZED (\n  SELECT ");
	key_list(&sb, t, "");
	bf_sbuf_printf(&sb, ", (%s) IS TRUE AS bf_match FROM %s\n  WHERE ", t->where, t->qtable);
	param_range(&sb, t, first, 2, high);
	bf_sbuf_append(&sb, "\n  ORDER BY ");
	key_list(&sb, t, "");
	bf_sbuf_append(&sb, " LIMIT $1::int)\n"
	                    "SELECT (SELECT count(*) FROM s WHERE bf_match),\n"
	                    "  (SELECT count(*) FROM s) < $1::int");
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(&sb, ", l.%s::text", t->qkey[i]);
	bf_sbuf_append(&sb, "\nFROM (SELECT 1) AS one LEFT JOIN (SELECT ");
	key_list(&sb, t, "");
	bf_sbuf_append(&sb, " FROM s ORDER BY ");
	key_list_desc(&sb, t);
	bf_sbuf_append(&sb, " LIMIT 1) AS l ON true");
	return bf_sbuf_steal(&sb);
}

char *bf_sql_remaining_in(const bf_sql_target *t, bool first, bool capped)
{
	bf_sbuf sb = {0};

	bf_sbuf_printf(&sb, "SELECT count(*) FROM %s%s WHERE ", capped ? "(SELECT 1 FROM " : "",
	               t->qtable);
	param_range(&sb, t, first, 1, first ? 1 : 1 + (int)t->n_key);
	bf_sbuf_printf(&sb, " AND (%s)", t->where);
	if (capped)
		bf_sbuf_printf(&sb, " LIMIT %d) AS s", BF_SQL_COUNT_MAX);
	return bf_sbuf_steal(&sb);
}

char *bf_sql_key_ends(const bf_sql_target *t)
{
	bf_sbuf sb = {0};

	bf_sbuf_append(&sb, "SELECT ");
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(&sb, "%sa.%s::text", i ? ", " : "", t->qkey[i]);
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(&sb, ", b.%s::text", t->qkey[i]);
	bf_sbuf_append(&sb, "\nFROM (SELECT ");
	key_list(&sb, t, "");
	bf_sbuf_printf(&sb, " FROM %s ORDER BY ", t->qtable);
	key_list(&sb, t, "");
	bf_sbuf_append(&sb, " LIMIT 1) AS a,\n  (SELECT ");
	key_list(&sb, t, "");
	bf_sbuf_printf(&sb, " FROM %s ORDER BY ", t->qtable);
	key_list_desc(&sb, t);
	bf_sbuf_append(&sb, " LIMIT 1) AS b");
	return bf_sbuf_steal(&sb);
}

const char *bf_sql_biggest_leaf(void)
{
	return "SELECT n.nspname, c.relname, c.oid::text, count(*) OVER ()\n"
	       "FROM pg_partition_tree($1::oid::regclass) t\n"
	       "JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace\n"
	       "WHERE t.isleaf ORDER BY c.reltuples DESC, c.oid LIMIT 1";
}

char *bf_sql_text_array(const char *const *v, size_t n)
{
	bf_sbuf sb = {0};

	bf_sbuf_append(&sb, "{");
	for (size_t i = 0; i < n; i++) {
		bf_sbuf_append(&sb, i ? ",\"" : "\"");
		for (const char *c = v[i]; *c; c++)
			bf_sbuf_printf(&sb, "%s%c", *c == '"' || *c == '\\' ? "\\" : "", *c);
		bf_sbuf_append(&sb, "\"");
	}
	bf_sbuf_append(&sb, "}");
	return bf_sbuf_steal(&sb);
}

char *bf_sql_set_state(const char *qschema)
{
	return bf_xasprintf(
	        "UPDATE %s.jobs SET state = $2, state_reason = $3,\n"
	        "  last_error = coalesce($4, last_error), owner = $5,\n"
	        "  errors = errors + CASE WHEN $6::bool THEN 1 ELSE 0 END,\n"
	        "  pass = coalesce($7::int, pass),\n"
	        "  cursor = CASE WHEN $8::bool THEN $10::text[] ELSE cursor END,\n"
	        "  batch_size = coalesce($9::int, batch_size),\n"
	        "  finished_at = CASE WHEN $2 NOT IN ('done', 'failed', 'cancelled', 'undone') "
	        "THEN NULL\n"
	        "                     WHEN state IN ('done', 'failed', 'cancelled', 'undone') "
	        "THEN finished_at\n"
	        "                     ELSE now() END,\n"
	        "  requested_state = CASE WHEN requested_state = 'cancelled' AND $2 = 'cancelled'\n"
	        "                         OR requested_state = 'running' AND $2 <> 'paused'\n"
	        "                         OR requested_state = 'undo' AND $2 IN ('done', "
	        "'failed',\n"
	        "                           'cancelled', 'undone')\n"
	        "                         THEN NULL ELSE requested_state END,\n"
	        "  updated_at = now()\n"
	        "WHERE name = $1\n"
	        "RETURNING requested_state",
	        qschema);
}

const char *bf_sql_try_lock(void)
{
	return "SELECT pg_try_advisory_lock(hashtext($1), hashtext($2))";
}

const char *bf_sql_session(void)
{
	return "SELECT set_config('lock_timeout', $1, false),\n"
	       "  set_config('statement_timeout', $2, false),\n"
	       "  set_config('synchronous_commit', $3, false),\n"
	       "  set_config('jit', 'off', false),\n"
	       "  set_config('DateStyle', 'ISO, YMD', false),\n"
	       "  set_config('IntervalStyle', 'postgres', false),\n"
	       "  set_config('TimeZone', 'UTC', false),\n"
	       "  set_config('extra_float_digits', '3', false)";
}

const char *bf_sql_plan(void)
{
	return "SELECT set_config(name, CASE WHEN $1::bool THEN 'off' ELSE reset_val END, false)\n"
	       "FROM pg_settings WHERE name IN ('enable_indexscan', 'enable_seqscan')\n"
	       "UNION ALL SELECT set_config('statement_timeout', $2, false)";
}

const char *bf_sql_server_clock(void)
{
	return "SELECT (extract(epoch FROM statement_timestamp() AT TIME ZONE reset_val) * 1000)"
	       "::bigint\n"
	       "FROM pg_settings WHERE name = 'TimeZone'";
}

char *bf_sql_steps_load(const char *qschema)
{
	return bf_xasprintf(
	        "WITH want AS (\n"
	        "  SELECT w.statement, w.position::int AS position\n"
	        "  FROM unnest($2::text[]) WITH ORDINALITY AS w(statement, position)),\n"
	        "gone AS (\n"
	        "  DELETE FROM %s.steps WHERE job = $1 AND position > cardinality($2::text[])),\n"
	        "kept AS (\n"
	        "  INSERT INTO %s.steps AS st (job, position, statement)\n"
	        "  SELECT $1, position, statement FROM want\n"
	        "  ON CONFLICT (job, position) DO UPDATE\n"
	        "    SET statement = excluded.statement, state = 'pending'\n"
	        "    WHERE st.state <> 'done'\n"
	        "  RETURNING st.position)\n"
	        "SELECT min(position) FROM kept",
	        qschema, qschema);
}

char *bf_sql_step_record(const char *qschema)
{
	return bf_xasprintf("UPDATE %s.steps SET attempts = attempts + 1,\n"
	                    "  state = CASE WHEN $3::text IS NULL THEN 'done'\n"
	                    "               WHEN $4::bool THEN 'pending' ELSE 'failed' END,\n"
	                    "  last_error = $3, started_at = coalesce(started_at, now()),\n"
	                    "  finished_at = CASE WHEN $3::text IS NULL THEN now() END\n"
	                    "WHERE job = $1 AND position = $2",
	                    qschema);
}

const char *bf_sql_step_index(void)
{
	return "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid\n"
	       "WHERE c.relname = $1 AND i.indrelid = $2::regclass";
}

/* A dollar-quote tag that appears in none of the texts: "$bf$", else "$bf1$", ... */
static void body_tag(char *tag, size_t len, const char *const *texts, size_t n)
{
	for (unsigned k = 0;; k++) {
		bool used = false;

		if (k == 0)
			snprintf(tag, len, "$bf$");
		else
			snprintf(tag, len, "$bf%u$", k);
		for (size_t i = 0; i < n && !used; i++)
			used = strstr(texts[i], tag) != NULL;
		if (!used)
			return;
	}
}

char *bf_sql_dual_write_function(const bf_sql_dual_write *dw)
{
	bf_sbuf sb = {0};
	const char **texts = bf_xcalloc(dw->n + 1, sizeof(*texts));
	char tag[32];

	for (size_t i = 0; i < dw->n; i++)
		texts[i] = dw->exprs[i];
	texts[dw->n] = dw->where;
	body_tag(tag, sizeof(tag), texts, dw->n + 1);
	free(texts);
	/* `where` and the expressions read the row's columns by name (and by the table's name)
	 * from a one-row subquery of NEW or OLD; the columns win over PL/pgSQL's own variables */
	bf_sbuf_printf(&sb,
	               "CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS %s\n"
	               "#variable_conflict use_column\n"
	               "DECLARE bf_due boolean;\n"
	               "BEGIN\n"
	               "  SELECT (%s) INTO bf_due FROM (SELECT NEW.*) AS %s;\n"
	               "  IF NOT coalesce(bf_due, false) AND TG_OP = 'UPDATE' THEN\n"
	               "    SELECT ",
	               dw->qfunction, tag, dw->where, dw->qalias);
	for (size_t i = 0; i < dw->n; i++)
		bf_sbuf_printf(&sb, "%s%s IS NOT DISTINCT FROM (%s)", i ? " AND " : "",
		               dw->qcols[i], dw->exprs[i]);
	bf_sbuf_printf(&sb, "\n      INTO bf_due FROM (SELECT OLD.*) AS %s;\n", dw->qalias);
	bf_sbuf_append(&sb, "  END IF;\n"
	                    "  IF coalesce(bf_due, false) THEN\n"
	                    "    SELECT ");
	for (size_t i = 0; i < dw->n; i++)
		bf_sbuf_printf(&sb, "%s(%s)", i ? ", " : "", dw->exprs[i]);
	bf_sbuf_append(&sb, "\n      INTO ");
	for (size_t i = 0; i < dw->n; i++)
		bf_sbuf_printf(&sb, "%sNEW.%s", i ? ", " : "", dw->qcols[i]);
	bf_sbuf_printf(&sb,
	               " FROM (SELECT NEW.*) AS %s;\n"
	               "  END IF;\n"
	               "  RETURN NEW;\n"
	               "END %s",
	               dw->qalias, tag);
	return bf_sbuf_steal(&sb);
}

char *bf_sql_dual_write_trigger(const char *qtrigger, const char *qtable, const char *qfunction)
{
	return bf_xasprintf("CREATE OR REPLACE TRIGGER %s BEFORE INSERT OR UPDATE ON %s\n"
	                    "FOR EACH ROW EXECUTE FUNCTION %s()",
	                    qtrigger, qtable, qfunction);
}

char *bf_sql_dual_write_name(const char *job)
{
	return bf_xasprintf("%.52s_dual_write", job);
}

char *bf_sql_verify_reset(const char *qschema)
{
	return bf_xasprintf(
	        "UPDATE %s.jobs SET verify_cursor = NULL, verify_rows = 0, verify_bad = 0,"
	        "\n  verify_keys = NULL, verified = false WHERE name = $1",
	        qschema);
}

char *bf_sql_verify_read(const bf_sql_target *t)
{
	bf_sbuf sb = {0};

	bf_sbuf_append(&sb, "SELECT verified, verify_rows, verify_bad,\n"
	                    "  array_to_string(verify_keys, '; ')");
	elements(&sb, t, "verify_cursor");
	bf_sbuf_printf(&sb, "\nFROM %s.jobs WHERE name = $1", t->qschema);
	return bf_sbuf_steal(&sb);
}

char *bf_sql_verify_range(const bf_sql_target *t, bool first, char *const *qcols,
                          const char *const *exprs, size_t n)
{
	bf_sbuf sb = {0};

	bf_sbuf_append(&sb, "WITH r AS (\n  SELECT ");
	key_list(&sb, t, "");
	bf_sbuf_append(&sb, ", ");
	for (size_t i = 0; i < n; i++)
		bf_sbuf_printf(&sb, "%s%s IS DISTINCT FROM (%s)", i ? " OR " : "", qcols[i],
		               exprs[i]);
	bf_sbuf_printf(&sb, " AS bf_bad\n  FROM %s", t->qtable);
	if (!first) {
		bf_sbuf_append(&sb, " WHERE ");
		key_row(&sb, t);
		bf_sbuf_append(&sb, " > ");
		params(&sb, t, 3);
	}
	bf_sbuf_append(&sb, "\n  ORDER BY ");
	key_list(&sb, t, "");
	bf_sbuf_append(&sb, " LIMIT $2),\nlast AS (SELECT * FROM r ORDER BY ");
	key_list_desc(&sb, t);
	bf_sbuf_append(&sb, " LIMIT 1),\n"
	                    "agg AS (SELECT count(*) AS n, count(*) FILTER (WHERE bf_bad) AS bad,\n"
	                    "  (array_agg(concat_ws(', '");
	for (size_t i = 0; i < t->n_key; i++)
		bf_sbuf_printf(&sb, ", %s::text", t->qkey[i]);
	bf_sbuf_append(&sb, ") ORDER BY ");
	key_list(&sb, t, "");
	bf_sbuf_printf(&sb,
	               ") FILTER (WHERE bf_bad))[1:5] AS keys\n"
	               "  FROM r)\n"
	               "UPDATE %s.jobs j SET verify_rows = j.verify_rows + agg.n,\n"
	               "  verify_bad = j.verify_bad + agg.bad,\n"
	               "  verify_keys = (coalesce(j.verify_keys, '{}') || coalesce(agg.keys, "
	               "'{}'))[1:5],\n"
	               "  verified = agg.n = 0 AND j.verify_bad = 0,\n",
	               t->qschema);
	walk_cursor(&sb, t, "verify");
	bf_sbuf_append(&sb, "RETURNING agg.n, j.verify_rows, j.verify_bad,\n"
	                    "  array_to_string(j.verify_keys, '; ')");
	elements(&sb, t, "j.verify_cursor");
	return bf_sbuf_steal(&sb);
}
