/*
 * check_sql.c - the text of the statements: what each form promises, checked without a
 * database (the integration tests check what the server makes of it).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "backfilld/sql.h"
#include "suites.h"

static char *keys1[] = {"\"id\""};
static char *types1[] = {"bigint"};
static char *keys2[] = {"\"tenant_id\"", "\"id\""};
static char *types2[] = {"integer", "uuid"};

static bf_sql_target target(size_t n)
{
	return (bf_sql_target){
	        .qschema = "\"backfill\"",
	        .qtable = "\"public\".\"users\"",
	        .n_key = n,
	        .qkey = n == 1 ? keys1 : keys2,
	        .key_type = n == 1 ? types1 : types2,
	        .set = "email_lower = lower(email)",
	        .where = "email_lower IS NULL",
	};
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

START_TEST(test_batch_skip_locked)
{
	bf_sql_target t = target(1);
	char *sql = bf_sql_batch(&t, false, false, BF_CKPT_JOB);

	/* the range starts after the cursor ($5) and ends at hi, bounded by the mark ($6) */
	ck_assert_ptr_nonnull(strstr(sql, "(\"id\") > ($5::bigint)"));
	ck_assert_ptr_nonnull(strstr(sql, "(\"id\") <= ($6::bigint)"));
	ck_assert_ptr_nonnull(strstr(sql, "OFFSET $2::int - 1 LIMIT 1"));
	ck_assert_ptr_nonnull(strstr(sql, "FOR UPDATE SKIP LOCKED"));
	ck_assert_ptr_nonnull(strstr(sql, "ctid = ANY (ARRAY(SELECT bf_ctid FROM todo))"));
	ck_assert_ptr_null(strstr(sql, "set_config"));
	/* set once, where in the lock scan and in RETURNING, always in parentheses */
	ck_assert_int_eq(count(sql, "SET email_lower = lower(email)"), 1);
	ck_assert_int_eq(count(sql, "(email_lower IS NULL)"), 2);
	/* the checkpoint in the same statement, guarded by the where check */
	ck_assert_ptr_nonnull(strstr(sql, "UPDATE \"backfill\".jobs AS j SET cursor = ARRAY["));
	ck_assert_ptr_nonnull(strstr(sql, "\"backfill\".assert_batch(n.still)"));
	/* rows it locked itself that the UPDATE did not change: a trigger, never a lock */
	ck_assert_ptr_nonnull(strstr(sql, "RETURNING n.rows, hi.bf_last, j.requested_state, "
	                                  "(SELECT count(*) FROM todo) - n.rows"));
	ck_assert_ptr_null(strchr(sql, ';'));
	free(sql);
}
END_TEST

START_TEST(test_batch_fast_path)
{
	bf_sql_target t = target(1);
	char *sql = bf_sql_batch(&t, false, true, BF_CKPT_JOB);

	ck_assert_ptr_null(strstr(sql, "FOR UPDATE"));
	ck_assert_ptr_nonnull(strstr(sql, "set_config('lock_timeout', '50ms', true)"));
	free(sql);
	/* shorter under a commit-latency budget */
	t.fast_lock_ms = 4;
	sql = bf_sql_batch(&t, false, true, BF_CKPT_JOB);
	ck_assert_ptr_nonnull(strstr(sql, "set_config('lock_timeout', '4ms', true)"));
	ck_assert_ptr_nonnull(strstr(sql, "UPDATE \"public\".\"users\" SET email_lower"));
	ck_assert_ptr_nonnull(strstr(sql, "(\"id\") > ($5::bigint) AND (\"id\") <= ((SELECT "
	                                  "bf_hi_1 FROM hi))"));
	ck_assert_int_eq(count(sql, "(email_lower IS NULL)"), 2);
	/* the fast path cannot tell its rows from others': it reports none unchanged */
	ck_assert_ptr_nonnull(strstr(sql, "j.requested_state, 0::bigint"));
	free(sql);
}
END_TEST

START_TEST(test_batch_first_has_no_cursor)
{
	bf_sql_target t = target(1);
	char *sql = bf_sql_batch(&t, true, false, BF_CKPT_JOB);

	ck_assert_ptr_null(strstr(sql, " > ("));
	/* the high-water mark moves to $5 when there is no cursor */
	ck_assert_ptr_nonnull(strstr(sql, "(\"id\") <= ($5::bigint)"));
	ck_assert_ptr_null(strstr(sql, "$6"));
	free(sql);
}
END_TEST

START_TEST(test_batch_composite_row_values)
{
	bf_sql_target t = target(2);
	char *sql = bf_sql_batch(&t, false, false, BF_CKPT_JOB);

	ck_assert_ptr_nonnull(strstr(sql, "(\"tenant_id\", \"id\") > ($5::integer, $6::uuid)"));
	ck_assert_ptr_nonnull(strstr(sql, "(\"tenant_id\", \"id\") <= ($7::integer, $8::uuid)"));
	ck_assert_ptr_nonnull(strstr(sql, "((SELECT bf_hi_1 FROM hi), (SELECT bf_hi_2 FROM hi))"));
	ck_assert_ptr_nonnull(strstr(sql, "ORDER BY \"tenant_id\", \"id\""));
	ck_assert_ptr_nonnull(strstr(sql, "hi.bf_hi_1::text, hi.bf_hi_2::text"));
	free(sql);
}
END_TEST

START_TEST(test_batch_slice_checkpoint)
{
	bf_sql_target t = target(1);
	char *sql = bf_sql_batch(&t, false, true, BF_CKPT_SLICE);

	/* the slice's cursor and counters move, guarded by the where check */
	ck_assert_ptr_nonnull(strstr(sql, "UPDATE \"backfill\".slices AS s SET cursor = ARRAY["));
	ck_assert_ptr_nonnull(strstr(sql, "rows_done = s.rows_done + n.rows"));
	ck_assert_ptr_nonnull(strstr(sql, "s.job = $1 AND s.slice = $4 AND "
	                                  "\"backfill\".assert_batch(n.still)"));
	/* the job's row is read, never locked: no slice waits for another */
	ck_assert_ptr_nonnull(strstr(sql, "FROM hi, n, \"backfill\".jobs AS j\n"
	                                  "WHERE j.name = $1 AND EXISTS (SELECT 1 FROM sl)"));
	ck_assert_ptr_null(strstr(sql, "UPDATE \"backfill\".jobs"));
	ck_assert_ptr_null(strstr(sql, "FOR UPDATE"));
	ck_assert_ptr_null(strchr(sql, ';'));
	free(sql);
}
END_TEST

static char *bcols[] = {"\"Email\"", "\"name\""};

static bf_sql_target backed_up(size_t n)
{
	bf_sql_target t = target(n);

	t.qbackup = "\"backfill\".\"job_backup\"";
	t.qbackup_index = "\"job_backup_key\"";
	t.qbcols = bcols;
	t.n_bcols = 2;
	return t;
}

/* backup: true: the old values of the rows the batch changes, in the same statement, from
 * the rows it locked; never the fast path. */
START_TEST(test_batch_keeps_backup)
{
	bf_sql_target t = backed_up(2);
	char *sql = bf_sql_batch(&t, false, true, BF_CKPT_JOB);

	ck_assert_ptr_null(strstr(sql, "set_config('lock_timeout'"));
	ck_assert_ptr_nonnull(strstr(sql, "FOR UPDATE SKIP LOCKED"));
	ck_assert_ptr_nonnull(strstr(sql, "SELECT ctid AS bf_ctid, \"tenant_id\" AS bf_k1, "
	                                  "\"id\" AS bf_k2, \"Email\" AS bf_o1, \"name\" AS "
	                                  "bf_o2 FROM"));
	ck_assert_ptr_nonnull(strstr(sql, "md5(ROW(\"public\".\"users\".\"Email\", "
	                                  "\"public\".\"users\".\"name\")::text)::uuid AS bf_w"));
	ck_assert_ptr_nonnull(strstr(sql, "INSERT INTO \"backfill\".\"job_backup\" (\"tenant_id\", "
	                                  "\"id\", \"Email\", \"name\", backfilld_written)"));
	ck_assert_ptr_nonnull(strstr(sql, "FROM upd JOIN todo ON (upd.bf_k1, upd.bf_k2) = "
	                                  "(todo.bf_k1, todo.bf_k2)"));
	/* a row changed again keeps its first old values */
	ck_assert_ptr_nonnull(strstr(sql, "ON CONFLICT (\"tenant_id\", \"id\") DO UPDATE SET "
	                                  "backfilld_written = excluded.backfilld_written)"));
	ck_assert_ptr_null(strchr(sql, ';'));
	free(sql);
}
END_TEST

START_TEST(test_backup_and_undo)
{
	bf_sql_target t = backed_up(1);
	char *create = bf_sql_backup_create(&t);
	char *first = bf_sql_undo_range(&t, true);
	char *next = bf_sql_undo_range(&t, false);
	char *name = bf_sql_backup_name(
	        "a_job_name_of_sixty_three_characters_which_is_the_longest_allowed");
	char *index = bf_sql_backup_index_name(
	        "a_job_name_of_sixty_three_characters_which_is_the_longest_allowed");

	/* every statement a no-op when done already */
	ck_assert_ptr_nonnull(strstr(create,
	                             "CREATE TABLE IF NOT EXISTS \"backfill\".\"job_backup\" AS "
	                             "SELECT \"id\", \"Email\", \"name\" FROM "
	                             "\"public\".\"users\" WITH NO DATA;"));
	ck_assert_ptr_nonnull(strstr(create, "ADD COLUMN IF NOT EXISTS backfilld_written uuid;"));
	ck_assert_ptr_nonnull(
	        strstr(create, "CREATE UNIQUE INDEX IF NOT EXISTS \"job_backup_key\""));
	ck_assert_uint_le(strlen(index), 63);
	ck_assert_str_eq(name + strlen(name) - 7, "_backup");
	/* the undo walks the backup from its cursor ($3) and puts back only rows still as the
	 * job wrote them */
	ck_assert_ptr_null(strstr(first, "$3"));
	ck_assert_ptr_nonnull(strstr(first,
	                             "WITH b AS (\n  SELECT backfilld_written, \"id\" AS bf_k1, "
	                             "\"Email\", \"name\" FROM \"backfill\".\"job_backup\"\n  "
	                             "ORDER BY \"id\" LIMIT $2),"));
	/* the range's rows are named by their key under bf_ names, given back its own for the
	 * cursor */
	ck_assert_ptr_nonnull(strstr(next, "FROM b WHERE (bf_t.\"id\") = (b.bf_k1)"));
	ck_assert_ptr_nonnull(strstr(next, "RETURNING b.bf_k1),"));
	ck_assert_ptr_nonnull(strstr(next, "last AS (SELECT bf_k1 AS \"id\" FROM b ORDER BY bf_k1 "
	                                   "DESC LIMIT 1)"));
	ck_assert_ptr_nonnull(strstr(next, "WHERE (\"id\") > ($3::bigint)"));
	ck_assert_ptr_nonnull(strstr(next, "ORDER BY \"id\" LIMIT $2"));
	ck_assert_ptr_nonnull(strstr(next, "SET \"Email\" = b.\"Email\", \"name\" = b.\"name\""));
	ck_assert_ptr_nonnull(strstr(next,
	                             "AND md5(ROW(bf_t.\"Email\", bf_t.\"name\")::text)::uuid = "
	                             "b.backfilld_written"));
	/* counts, keys and cursor in the same statement */
	ck_assert_ptr_nonnull(strstr(next, "undo_skipped = j.undo_skipped + agg.skipped"));
	ck_assert_ptr_nonnull(strstr(next, "[1:" BF_UNDO_KEYS "]"));
	ck_assert_int_eq(count(next, "UPDATE \"backfill\".jobs j SET undo_rows"), 1);
	free(create);
	free(first);
	free(next);
	free(name);
	free(index);
}
END_TEST

/* undo --to-null: the table's rows whose column is set, NULL again only where it is still
 * what set gives (checked again in the UPDATE, on the row as it is when locked). */
START_TEST(test_undo_to_null)
{
	bf_sql_target t = target(1);
	char *plain = bf_sql_undo_null_range(&t, false, "\"email_lower\"", "lower(email)");
	char *parted;

	ck_assert_ptr_nonnull(strstr(plain,
	                             "\"email_lower\" IS NOT DISTINCT FROM (lower(email)) AS "
	                             "bf_mine FROM \"public\".\"users\"\n  WHERE "
	                             "\"email_lower\" IS NOT NULL AND (\"id\") > ($3::bigint)"));
	ck_assert_ptr_nonnull(strstr(plain,
	                             "UPDATE \"public\".\"users\" SET \"email_lower\" = NULL\n"
	                             "  WHERE ctid = ANY (ARRAY(SELECT bf_ctid FROM b WHERE "
	                             "bf_mine))\n    AND \"email_lower\" IS NOT DISTINCT FROM "
	                             "(lower(email))"));
	ck_assert_ptr_nonnull(strstr(plain, "undo_skipped = j.undo_skipped + agg.skipped"));
	t.partitioned = true;
	parted = bf_sql_undo_null_range(&t, true, "\"email_lower\"", "lower(email)");
	ck_assert_ptr_null(strstr(parted, "$3"));
	ck_assert_ptr_nonnull(strstr(parted, "SELECT tableoid AS bf_rel, ctid AS bf_ctid"));
	ck_assert_ptr_nonnull(strstr(parted,
	                             "\"public\".\"users\".tableoid = b.bf_rel AND "
	                             "\"public\".\"users\".ctid = b.bf_ctid AND b.bf_mine"));
	free(plain);
	free(parted);
}
END_TEST

START_TEST(test_slices_cut_from_histogram)
{
	bf_sql_target t = target(2);
	char *sql = bf_sql_slices(&t);
	char *reg = bf_sql_slice_register(&t);

	/* statistics by name as values, never as text */
	ck_assert_ptr_nonnull(strstr(sql, "s.schemaname = $3 AND s.tablename = $4 AND "
	                                  "s.attname = $5"));
	/* a cut is a real key at or below the histogram's bound, below the mark */
	ck_assert_ptr_nonnull(strstr(sql, "WHERE \"tenant_id\" <= (h.b[1 + i * (cardinality(h.b) "
	                                  "- 1) / $2::int])::integer"));
	ck_assert_ptr_nonnull(strstr(sql, "(\"tenant_id\", \"id\") <= (($6::text[])[1]::integer, "
	                                  "($6::text[])[2]::uuid)"));
	ck_assert_ptr_nonnull(strstr(sql, "ORDER BY \"tenant_id\" DESC, \"id\" DESC LIMIT 1"));
	/* new slices only on a fresh pass with none recorded */
	ck_assert_ptr_nonnull(strstr(sql, "$7::bool AND NOT EXISTS (SELECT 1 FROM old)"));
	ck_assert_ptr_nonnull(strstr(sql, "INSERT INTO \"backfill\".slices"));
	ck_assert_ptr_null(strchr(sql, ';'));
	ck_assert_ptr_nonnull(strstr(reg, "attached, cursor[1], cursor[2], high_key[1], "
	                                  "high_key[2]\nFROM s"));
	ck_assert_ptr_nonnull(strstr(reg, "WHERE s.job = $1 AND s.slice = $2"));
	free(sql);
	free(reg);
}
END_TEST

START_TEST(test_estimate_by_sample)
{
	bf_sql_target t = target(1);
	char *sql = bf_sql_estimate(&t);

	/* a count of where in a page sample, scaled up by the sample's share */
	ck_assert_ptr_nonnull(strstr(sql, "round(count(*) * 100.0 / $1::float8)::bigint"));
	ck_assert_ptr_nonnull(strstr(sql, "TABLESAMPLE SYSTEM ($1::float8) WHERE (email_lower IS "
	                                  "NULL)"));
	free(sql);
	/* all of a small table, about BF_SQL_SAMPLE_PAGES pages of a big one */
	ck_assert(bf_sql_sample_percent(0) == 100.0);
	ck_assert(bf_sql_sample_percent(BF_SQL_SAMPLE_PAGES) == 100.0);
	ck_assert(bf_sql_sample_percent(4 * BF_SQL_SAMPLE_PAGES) == 25.0);
	ck_assert(bf_sql_sample_percent(1LL << 40) == 0.0001);
}
END_TEST

START_TEST(test_partitioned_parent_pairs_ctid_with_partition)
{
	bf_sql_target t = target(1);
	char *sql;

	t.partitioned = true;
	sql = bf_sql_batch(&t, false, false, BF_CKPT_JOB);
	/* a ctid names a row only within its partition: locked rows are named by both */
	ck_assert_ptr_nonnull(strstr(sql, "SELECT tableoid AS bf_rel, ctid AS bf_ctid FROM "));
	ck_assert_ptr_nonnull(strstr(sql, "FROM todo\n  WHERE \"public\".\"users\".tableoid = "
	                                  "todo.bf_rel AND \"public\".\"users\".ctid = "
	                                  "todo.bf_ctid"));
	ck_assert_ptr_null(strstr(sql, "ctid = ANY"));
	ck_assert_ptr_null(strchr(sql, ';'));
	free(sql);
}
END_TEST

START_TEST(test_leaf_slice_stops_once_detached)
{
	bf_sql_target t = target(1);
	char *fast, *skip, *parts;

	t.oid = "16400";
	t.leaf_oid = "16420";
	fast = bf_sql_batch(&t, false, true, BF_CKPT_SLICE);
	skip = bf_sql_batch(&t, true, false, BF_CKPT_SLICE);
	parts = bf_sql_partition_slices(&t);
	/* both forms compute no range once the leaf is out of the job's table */
	ck_assert_ptr_nonnull(strstr(fast,
	                             "WHERE EXISTS (SELECT 1 FROM pg_partition_ancestors("
	                             "16420::oid::regclass) a\n    WHERE a.relid = 16400::oid)"));
	ck_assert_ptr_nonnull(strstr(skip, "pg_partition_ancestors(16420::oid::regclass)"));
	/* a leaf is a plain table: its rows are named by ctid alone */
	ck_assert_ptr_nonnull(strstr(skip, "ctid = ANY (ARRAY(SELECT bf_ctid FROM todo))"));
	/* one slice per leaf, any depth, only on a fresh pass with none recorded */
	ck_assert_ptr_nonnull(strstr(parts, "FROM pg_partition_tree($2::oid::regclass) t\n"
	                                    "  WHERE t.isleaf AND $4::bool AND NOT EXISTS"));
	ck_assert_ptr_nonnull(strstr(parts, "$3::text[], t.relid"));
	ck_assert_ptr_null(strchr(parts, ';'));
	free(fast);
	free(skip);
	free(parts);
}
END_TEST

START_TEST(test_remaining_and_high_water)
{
	bf_sql_target t = target(2);
	char *rem = bf_sql_remaining(&t, false);
	char *rem1 = bf_sql_remaining(&t, true);
	char *in = bf_sql_remaining_in(&t, false, true);
	char *in1 = bf_sql_remaining_in(&t, true, true);
	char *all = bf_sql_remaining_in(&t, true, false);
	char *high = bf_sql_high_water(&t);
	char *reg = bf_sql_register(&t);

	/* a chunk of $1 keys after the check's cursor, up to the high-water mark */
	ck_assert_ptr_nonnull(strstr(rem, "(\"tenant_id\", \"id\") > ($2::integer, $3::uuid) AND "
	                                  "(\"tenant_id\", \"id\") <= ($4::integer, $5::uuid)"));
	ck_assert_ptr_nonnull(strstr(rem, "(email_lower IS NULL) IS TRUE AS bf_match"));
	ck_assert_ptr_nonnull(strstr(rem, "ORDER BY \"tenant_id\", \"id\" LIMIT $1::int)"));
	ck_assert_ptr_nonnull(strstr(rem, "l.\"tenant_id\"::text, l.\"id\"::text"));
	ck_assert_ptr_nonnull(strstr(rem, "ORDER BY \"tenant_id\" DESC, \"id\" DESC LIMIT 1"));
	/* the first chunk has no lower bound and its high-water mark comes right after $1 */
	ck_assert_ptr_null(strstr(rem1, " > ("));
	ck_assert_ptr_nonnull(
	        strstr(rem1, "WHERE (\"tenant_id\", \"id\") <= ($2::integer, $3::uuid)"));
	ck_assert_ptr_null(strstr(rem1, "$4"));
	/* a range known in advance: a plain count between two keys */
	ck_assert_str_eq(in, "SELECT count(*) FROM (SELECT 1 FROM \"public\".\"users\" WHERE "
	                     "(\"tenant_id\", \"id\") > ($1::integer, $2::uuid) AND "
	                     "(\"tenant_id\", \"id\") <= ($3::integer, $4::uuid) AND "
	                     "(email_lower IS NULL) LIMIT 10000) AS s");
	ck_assert_str_eq(in1, "SELECT count(*) FROM (SELECT 1 FROM \"public\".\"users\" WHERE "
	                      "(\"tenant_id\", \"id\") <= ($1::integer, $2::uuid) AND "
	                      "(email_lower IS NULL) LIMIT 10000) AS s");
	/* the check's single scan: uncapped, so the planner may scan in parallel */
	ck_assert_str_eq(all, "SELECT count(*) FROM \"public\".\"users\" WHERE "
	                      "(\"tenant_id\", \"id\") <= ($1::integer, $2::uuid) AND "
	                      "(email_lower IS NULL)");
	ck_assert_ptr_nonnull(strstr(high, "ORDER BY \"tenant_id\" DESC, \"id\" DESC LIMIT 1"));
	ck_assert_ptr_nonnull(
	        strstr(high, "RETURNING high_key IS NOT NULL, high_key[1], high_key[2]"));
	ck_assert_ptr_nonnull(
	        strstr(reg, "j.cursor[1], j.cursor[2], j.high_key[1], j.high_key[2]"));
	ck_assert_ptr_nonnull(strstr(reg, "ON CONFLICT (name) DO UPDATE"));
	free(rem);
	free(rem1);
	free(in);
	free(in1);
	free(all);
	free(high);
	free(reg);
}
END_TEST

START_TEST(test_text_array)
{
	const char *plain[] = {"42", "a b"};
	const char *nasty[] = {"say \"hi\"", "C:\\dir", "{,}", ""};
	char *a = bf_sql_text_array(plain, 2);
	char *b = bf_sql_text_array(nasty, 4);
	char *c = bf_sql_text_array(NULL, 0);

	ck_assert_str_eq(a, "{\"42\",\"a b\"}");
	ck_assert_str_eq(b, "{\"say \\\"hi\\\"\",\"C:\\\\dir\",\"{,}\",\"\"}");
	ck_assert_str_eq(c, "{}");
	free(a);
	free(b);
	free(c);
}
END_TEST

START_TEST(test_schema_script)
{
	char *s = bf_sql_schema("\"bf\"");
	char *tmp = bf_sql_schema_temp();

	ck_assert_ptr_nonnull(strstr(s, "pg_advisory_xact_lock"));
	/* created only when missing: a schema made for the role needs no CREATE on the database */
	ck_assert_ptr_nonnull(strstr(s, "IF to_regnamespace('\"bf\"') IS NULL THEN"));
	ck_assert_ptr_nonnull(strstr(s, "EXECUTE 'CREATE SCHEMA \"bf\"';"));
	ck_assert_ptr_nonnull(strstr(s, "CREATE TABLE IF NOT EXISTS \"bf\".jobs"));
	ck_assert_ptr_nonnull(strstr(s, "CREATE OR REPLACE VIEW \"bf\".progress"));
	ck_assert_ptr_nonnull(strstr(s, "ERRCODE = '" BF_SQLSTATE_SET_KEEPS_WHERE "'"));
	ck_assert_ptr_nonnull(strstr(s, "ON CONFLICT DO NOTHING"));
	/* additive only: nothing is ever dropped, but the state check that version 4 widens
	 * and the request check that version 5 widens, each once */
	ck_assert_ptr_nonnull(strstr(s, "pg_get_constraintdef(oid) LIKE '%finishing%') THEN"));
	ck_assert_ptr_nonnull(strstr(s, "pg_get_constraintdef(oid) LIKE '%''undo''%') THEN"));
	ck_assert_ptr_nonnull(strstr(s, "DROP CONSTRAINT jobs_state_check;"));
	ck_assert_ptr_nonnull(strstr(s, "DROP CONSTRAINT jobs_requested_state_check;"));
	ck_assert_ptr_null(strstr(strstr(strstr(s, "DROP ") + 1, "DROP ") + 1, "DROP "));
	ck_assert_ptr_nonnull(strstr(s, "CREATE TABLE IF NOT EXISTS \"bf\".steps"));
	ck_assert_ptr_null(strstr(tmp, "CREATE SCHEMA"));
	ck_assert_ptr_nonnull(strstr(tmp, "CREATE TABLE IF NOT EXISTS pg_temp.jobs"));
	free(s);
	free(tmp);
}
END_TEST

Suite *sql_suite(void)
{
	Suite *s = suite_create("sql");
	TCase *tc = tcase_create("statements");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_batch_skip_locked);
	tcase_add_test(tc, test_batch_fast_path);
	tcase_add_test(tc, test_batch_first_has_no_cursor);
	tcase_add_test(tc, test_batch_composite_row_values);
	tcase_add_test(tc, test_batch_slice_checkpoint);
	tcase_add_test(tc, test_batch_keeps_backup);
	tcase_add_test(tc, test_backup_and_undo);
	tcase_add_test(tc, test_undo_to_null);
	tcase_add_test(tc, test_slices_cut_from_histogram);
	tcase_add_test(tc, test_partitioned_parent_pairs_ctid_with_partition);
	tcase_add_test(tc, test_estimate_by_sample);
	tcase_add_test(tc, test_leaf_slice_stops_once_detached);
	tcase_add_test(tc, test_remaining_and_high_water);
	tcase_add_test(tc, test_text_array);
	tcase_add_test(tc, test_schema_script);
	suite_add_tcase(s, tc);
	return s;
}
