/*
 * check_steps.c - the `then:` steps: the forms the lint refuses on a live table (each with
 * its reason and safe form), the forms it lets through, and the statements each step expands
 * to.
 */
#include <stdlib.h>
#include <string.h>

#include "backfilld/steps.h"
#include "suites.h"

static void fine(bf_step_kind kind, const char *text)
{
	bf_step_config step = {kind, (char *)text};
	char *why = bf_steps_lint(&step);

	ck_assert_msg(why == NULL, "refused %s: %s", text, why);
}

static void refused(bf_step_kind kind, const char *text, const char *want)
{
	bf_step_config step = {kind, (char *)text};
	char *why = bf_steps_lint(&step);

	ck_assert_msg(why != NULL, "accepted %s", text);
	ck_assert_msg(strstr(why, want) != NULL, "%s:\n  got  %s\n  want ...%s...", text, why,
	              want);
	free(why);
}

#define SQL(text, want)      refused(BF_STEP_SQL, text, want)
#define INDEX(text, want)    refused(BF_STEP_INDEX, text, want)
#define NOT_NULL(text, want) refused(BF_STEP_NOT_NULL, text, want)
#define CHECK(text, want)    refused(BF_STEP_CHECK, text, want)

#define NO_CIC       "without CONCURRENTLY blocks every write to the table for the whole build"
#define NO_NAME      "names no index, and the runner must find a failed build's INVALID index by name"
#define SET_NOT_NULL "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE unless a validated"
#define NOT_VALID                                                                                  \
	"validates every row under the lock: add it NOT VALID, then VALIDATE CONSTRAINT in a "     \
	"step of its own"
#define USING_INDEX                                                                                \
	"builds its index under ACCESS EXCLUSIVE: CREATE UNIQUE INDEX CONCURRENTLY first, then "   \
	"ADD CONSTRAINT ..."
#define TYPE "may rewrite the table under ACCESS EXCLUSIVE: add a new column and backfill it"
#define VOLATILE                                                                                   \
	"a volatile default writes every row under ACCESS EXCLUSIVE: add the column without a "    \
	"default and backfill it"

START_TEST(test_create_index_refused)
{
	SQL("CREATE INDEX users_email ON users (email)",
	    "CREATE INDEX without CONCURRENTLY blocks every write to the table for the whole "
	    "build: "
	    "write CREATE INDEX CONCURRENTLY (an index: step)");
	SQL("create unique index users_email on users (email)",
	    "CREATE UNIQUE INDEX " NO_CIC ": write CREATE UNIQUE INDEX CONCURRENTLY");
	SQL("CREATE INDEX IF NOT EXISTS i ON t (x)", NO_CIC);
	SQL("CREATE INDEX CONCURRENTLY ON users (email)",
	    "CREATE INDEX CONCURRENTLY ... ON " NO_NAME);
	SQL("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ON users (email)", NO_NAME);
	INDEX("CREATE INDEX users_email ON users (email);", NO_CIC);
	INDEX("CREATE INDEX CONCURRENTLY ON users (email)", NO_NAME);
	INDEX("DROP INDEX CONCURRENTLY users_email",
	      "expected CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON ... in an "
	      "index: step");
	INDEX("ALTER TABLE t ADD COLUMN c int", "expected CREATE [UNIQUE] INDEX CONCURRENTLY");
	INDEX("CREATE INDEX CONCURRENTLY s.i ON t (x)", "expected CREATE [UNIQUE] INDEX");
	INDEX("CREATE INDEX CONCURRENTLY i ON", "expected CREATE [UNIQUE] INDEX");
	INDEX("CREATE INDEX CONCURRENTLY U&\"d\\0061t\" ON t (x)",
	      "expected the index name as a plain or \"quoted\" identifier");
}
END_TEST

START_TEST(test_alter_table_refused)
{
	SQL("ALTER TABLE users ALTER COLUMN email SET NOT NULL",
	    "ALTER TABLE ... SET NOT NULL scans the whole table under ACCESS EXCLUSIVE unless a "
	    "validated CHECK (col IS NOT NULL) exists: use a not_null: step");
	SQL("alter table only public.users alter email set not null", SET_NOT_NULL);
	/* CHECK, FOREIGN KEY and REFERENCES without NOT VALID */
	SQL("ALTER TABLE t ADD CONSTRAINT c CHECK (x > 0)",
	    "ALTER TABLE ... ADD CHECK without NOT VALID takes ACCESS EXCLUSIVE and " NOT_VALID
	    ", or use a check: step");
	SQL("ALTER TABLE t ADD CHECK (x > 0)", NOT_VALID);
	SQL("ALTER TABLE t ADD CONSTRAINT c CHECK (NOT valid)", NOT_VALID); /* a column `valid` */
	SQL("ALTER TABLE t ADD CONSTRAINT \"C\" FOREIGN KEY (o_id) REFERENCES o (id)",
	    "ADD FOREIGN KEY without NOT VALID takes SHARE ROW EXCLUSIVE on both tables "
	    "and " NOT_VALID);
	SQL("ALTER TABLE t ADD FOREIGN KEY (o_id) REFERENCES o (id) ON DELETE CASCADE", NOT_VALID);
	SQL("ALTER TABLE t ADD COLUMN o_id int REFERENCES o (id)",
	    "ALTER TABLE ... ADD COLUMN ... REFERENCES takes ACCESS EXCLUSIVE and validates every "
	    "row under the lock, and a column constraint has no NOT VALID form: add the column "
	    "alone, then the constraint with ADD CONSTRAINT: add it NOT VALID, then VALIDATE "
	    "CONSTRAINT in a step of its own");
	SQL("ALTER TABLE t ADD c int CHECK (c > 0)",
	    "ADD COLUMN ... CHECK takes ACCESS EXCLUSIVE and validates every row under the lock");
	SQL("ALTER TABLE t ADD COLUMN a int, ADD CONSTRAINT c CHECK (a > 0)", NOT_VALID);
	/* UNIQUE and PRIMARY KEY without USING INDEX */
	SQL("ALTER TABLE t ADD CONSTRAINT u UNIQUE (email)",
	    "ALTER TABLE ... ADD UNIQUE without USING INDEX " USING_INDEX " UNIQUE USING INDEX");
	SQL("ALTER TABLE t ADD PRIMARY KEY (id)",
	    "ADD PRIMARY KEY without USING INDEX " USING_INDEX " PRIMARY KEY USING INDEX");
	SQL("ALTER TABLE t ADD COLUMN code text UNIQUE", "UNIQUE USING INDEX");
	/* a type change */
	SQL("ALTER TABLE t ALTER COLUMN id TYPE bigint",
	    "ALTER TABLE ... ALTER COLUMN ... TYPE " TYPE);
	SQL("ALTER TABLE t ALTER id SET DATA TYPE bigint", TYPE);
	SQL("ALTER TABLE t ALTER COLUMN \"Id\" TYPE bigint USING \"Id\"::bigint", TYPE);
	SQL("ALTER TABLE t ALTER COLUMN type TYPE text", TYPE); /* a column named type */
	SQL("ALTER TABLE t ALTER \"type\" TYPE text", TYPE);
	SQL("ALTER TABLE t ADD COLUMN a int, ALTER COLUMN b TYPE bigint", TYPE);
	/* a default that may be volatile */
	SQL("ALTER TABLE t ADD COLUMN token uuid DEFAULT gen_random_uuid()",
	    "ALTER TABLE ... ADD COLUMN ... DEFAULT gen_random_uuid() may be volatile, "
	    "and " VOLATILE);
	SQL("ALTER TABLE t ADD r float8 DEFAULT random()", "DEFAULT random() may be");
	SQL("ALTER TABLE t ADD COLUMN at timestamptz DEFAULT clock_timestamp()", VOLATILE);
	SQL("ALTER TABLE t ADD COLUMN n bigint DEFAULT nextval('s')", "DEFAULT nextval()");
	SQL("ALTER TABLE t ADD COLUMN at timestamptz DEFAULT (now() + random() * interval '1 s')",
	    "DEFAULT random()");
	SQL("ALTER TABLE t ADD COLUMN at timestamptz DEFAULT app.now()", "DEFAULT app.now()");
	SQL("ALTER TABLE t ADD COLUMN c text DEFAULT md5(random()::text)", "DEFAULT md5()");
	SQL("ALTER TABLE t ADD COLUMN id bigserial",
	    "bigserial has the default nextval(), and " VOLATILE);
	SQL("ALTER TABLE t ADD COLUMN id int GENERATED BY DEFAULT AS IDENTITY", VOLATILE);
	SQL("ALTER TABLE t ADD COLUMN d int GENERATED ALWAYS AS (x * 2) STORED",
	    "STORED rewrites the table under ACCESS EXCLUSIVE");
}
END_TEST

START_TEST(test_statements_refused)
{
	SQL("VACUUM FULL users", "VACUUM FULL rewrites the table under ACCESS EXCLUSIVE");
	SQL("vacuum (full, analyze) users", "VACUUM FULL rewrites");
	SQL("VACUUM (FULL 1) users", "VACUUM FULL rewrites");
	SQL("CLUSTER users USING users_pkey", "CLUSTER rewrites the table under ACCESS EXCLUSIVE");
	SQL("LOCK TABLE users", "LOCK TABLE takes ACCESS EXCLUSIVE");
	SQL("lock users in share mode", "LOCK TABLE takes");
	SQL("TRUNCATE users", "TRUNCATE takes ACCESS EXCLUSIVE");
	SQL("REINDEX INDEX users_email", "REINDEX without CONCURRENTLY blocks every write");
	SQL("REINDEX (VERBOSE) TABLE users", "REINDEX without CONCURRENTLY");
	SQL("REINDEX (CONCURRENTLY off) TABLE users", "REINDEX without CONCURRENTLY");
	SQL("REFRESH MATERIALIZED VIEW totals",
	    "REFRESH MATERIALIZED VIEW without CONCURRENTLY takes ACCESS EXCLUSIVE on the view");
}
END_TEST

START_TEST(test_text_refused)
{
	SQL("ALTER TABLE t VALIDATE CONSTRAINT c; DROP TABLE t",
	    "expected a single SQL fragment (here a statement separator ';' at character 36)");
	SQL("ANALYZE t;;", "a statement separator ';' at character 10");
	SQL("ANALYZE t -- now", "a comment");
	SQL(" ; ", "expected a SQL statement, got an empty step");
	SQL("", "expected a SQL statement, got an empty step");
	SQL("COMMENT ON TABLE t IS 'open", "a quoted string that is not closed");
	INDEX("", "expected CREATE [UNIQUE] INDEX CONCURRENTLY, got an empty step");
	CHECK("  ", "expected a boolean expression, got an empty step");
	CHECK("x > 0) OR (true", "expected a single SQL fragment (here ')' closing a parenthesis");
	CHECK("x > 0;", "a statement separator ';'");
	CHECK("x > $1", "a parameter $n");
	NOT_NULL("", "expected a column name, got an empty step");
	NOT_NULL("email lower", "expected one column name, a plain identifier (letters, digits, _ "
	                        "and $) or a \"quoted\" one, got \"email lower\"");
	NOT_NULL("lower(email)", "expected one column name");
	NOT_NULL("t.email", "expected one column name");
	NOT_NULL("1email", "expected one column name");
	NOT_NULL("\"\"", "expected one column name");
	NOT_NULL("\"a\"b", "expected one column name");
	NOT_NULL("\"a\" \"b\"", "expected one column name");
	NOT_NULL("\"Email", "a quoted identifier that is not closed");
	NOT_NULL("email;", "a statement separator");
}
END_TEST

START_TEST(test_accepted)
{
	static const char *const sql[] = {
	        "ALTER TABLE t VALIDATE CONSTRAINT c",
	        "ALTER TABLE t ADD CONSTRAINT c CHECK (x > 0) NOT VALID",
	        "alter table t add check (x > 0) not valid;",
	        "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (o_id) REFERENCES o (id) NOT VALID",
	        "ALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX i",
	        "ALTER TABLE t ADD CONSTRAINT pk PRIMARY KEY USING INDEX i",
	        "ALTER TABLE t ADD COLUMN c int DEFAULT 0",
	        "ALTER TABLE t ADD COLUMN c timestamptz DEFAULT now()",
	        "ALTER TABLE t ADD COLUMN c timestamptz DEFAULT pg_catalog.now()",
	        "ALTER TABLE t ADD COLUMN c timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP",
	        "ALTER TABLE t ADD COLUMN c timestamp(0) DEFAULT localtimestamp",
	        "ALTER TABLE t ADD COLUMN c timestamptz DEFAULT current_timestamp(3)",
	        "ALTER TABLE t ADD COLUMN c date DEFAULT current_date",
	        "ALTER TABLE t ADD COLUMN c timestamptz DEFAULT statement_timestamp()",
	        "ALTER TABLE t ADD COLUMN c timestamptz DEFAULT transaction_timestamp()",
	        "ALTER TABLE t ADD COLUMN c numeric(10, 2) DEFAULT 0::numeric(10, 2)",
	        "ALTER TABLE t ADD COLUMN c varchar(10) DEFAULT CAST('x' AS character varying(10))",
	        "ALTER TABLE t ADD COLUMN c text DEFAULT 'random()'",
	        "ALTER TABLE t ADD COLUMN c int[] DEFAULT ARRAY[1, 2]",
	        "ALTER TABLE t ADD COLUMN IF NOT EXISTS c bigint",
	        "ALTER TABLE t ALTER COLUMN c SET DEFAULT random()",
	        "ALTER TABLE t ALTER COLUMN c DROP NOT NULL",
	        "ALTER TABLE t ALTER COLUMN \"type\" SET DEFAULT 'a'",
	        "ALTER TABLE t ALTER COLUMN type SET DEFAULT 'a'",
	        "ALTER TABLE t ALTER retype SET STATISTICS 500",
	        "ALTER TABLE t RENAME COLUMN \"type\" TO kind",
	        "ALTER TABLE t ADD COLUMN \"type\" text, ADD COLUMN \"check\" int",
	        "ALTER TABLE t DROP CONSTRAINT users_fill_1_not_null",
	        "ALTER TABLE t ALTER CONSTRAINT f DEFERRABLE",
	        "CREATE INDEX CONCURRENTLY i ON t (x)",
	        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"I\" ON t (lower(x));",
	        "DROP INDEX CONCURRENTLY i",
	        "ANALYZE t",
	        "VACUUM (ANALYZE) t",
	        "VACUUM (FULL false) t",
	        "REINDEX INDEX CONCURRENTLY i",
	        "REINDEX (CONCURRENTLY, VERBOSE) TABLE t",
	        "REFRESH MATERIALIZED VIEW CONCURRENTLY totals",
	        "REFRESH MATERIALIZED VIEW CONCURRENTLY off", /* a view named off */
	        "COMMENT ON TABLE t IS 'CREATE INDEX here'",
	        "COMMENT ON COLUMN t.c IS E'VACUUM FULL, \\'TRUNCATE\\''",
	        "COMMENT ON TABLE t IS $x$ALTER TABLE t ALTER c TYPE int$x$",
	        "COMMENT ON TABLE \"lock\" IS U&'TRUNCATE'",
	        "GRANT SELECT ON \"truncate\" TO app",
	        "UPDATE t SET \"cluster\" = 1 WHERE lock_id = 2",
	};

	for (size_t i = 0; i < BF_ARRAY_LEN(sql); i++)
		fine(BF_STEP_SQL, sql[i]);
	fine(BF_STEP_INDEX, "CREATE INDEX CONCURRENTLY i ON t (x)");
	fine(BF_STEP_INDEX, " create unique index concurrently if not exists \"My i\" on t (x) ; ");
	fine(BF_STEP_NOT_NULL, "email");
	fine(BF_STEP_NOT_NULL, " _a$1 ");
	fine(BF_STEP_NOT_NULL, "\"Email\"");
	fine(BF_STEP_NOT_NULL, "\"we\"\"ird; col\"");
	fine(BF_STEP_CHECK, "email = lower(email)");
	fine(BF_STEP_CHECK, "x IS NOT NULL AND y > 0");
}
END_TEST

/* The statements `steps` expand to for job users_fill on "public"."users": want[] holds
 * pairs of SQL and index name (NULL for none), ending with NULL. */
static void expands(const bf_step_config *steps, size_t n, const char *job, const char *const *want)
{
	size_t n_out = 99, k = 0;
	bf_step_stmt *st = bf_steps_expand(steps, n, job, "\"public\".\"users\"", &n_out);

	while (want[2 * k])
		k++;
	ck_assert_msg(n_out == k, "%zu statements, want %zu", n_out, k);
	for (size_t i = 0; i < n_out; i++) {
		ck_assert_msg(strcmp(st[i].sql, want[2 * i]) == 0,
		              "statement %zu:\n  got  %s\n  want %s", i, st[i].sql, want[2 * i]);
		if (want[2 * i + 1] == NULL)
			ck_assert_msg(st[i].index == NULL, "statement %zu: index %s", i,
			              st[i].index);
		else
			ck_assert_msg(st[i].index && strcmp(st[i].index, want[2 * i + 1]) == 0,
			              "statement %zu: index %s, want %s", i, st[i].index,
			              want[2 * i + 1]);
	}
	bf_steps_free(st, n_out);
}

#define T "ALTER TABLE \"public\".\"users\" "

START_TEST(test_expand_each_kind)
{
	const bf_step_config steps[] = {
	        {BF_STEP_SQL, "  ALTER TABLE users VALIDATE CONSTRAINT c ;  \n"},
	        {BF_STEP_NOT_NULL, " \"Email\" "},
	        {BF_STEP_CHECK, "email = lower(email)"},
	        {BF_STEP_INDEX, "CREATE INDEX CONCURRENTLY IdX ON public.users (email);"},
	        {BF_STEP_SQL,
	         "create unique index concurrently if not exists \"IdX\" on users (a)"},
	        {BF_STEP_NOT_NULL, "email_lower"},
	        {BF_STEP_INDEX, "CREATE UNIQUE INDEX CONCURRENTLY users_a ON users (a)"},
	};
	const char *const want[] = {
	        "ALTER TABLE users VALIDATE CONSTRAINT c",
	        NULL,
	        T "ADD CONSTRAINT users_fill_2_not_null CHECK (\"Email\" IS NOT NULL) NOT VALID",
	        NULL,
	        T "VALIDATE CONSTRAINT users_fill_2_not_null",
	        NULL,
	        T "ALTER COLUMN \"Email\" SET NOT NULL",
	        NULL,
	        T "DROP CONSTRAINT users_fill_2_not_null",
	        NULL,
	        T "ADD CONSTRAINT users_fill_3_check CHECK (email = lower(email)) NOT VALID",
	        NULL,
	        T "VALIDATE CONSTRAINT users_fill_3_check",
	        NULL,
	        "CREATE INDEX CONCURRENTLY IdX ON public.users (email)",
	        "idx",
	        "create unique index concurrently if not exists \"IdX\" on users (a)",
	        "IdX",
	        T "ADD CONSTRAINT users_fill_6_not_null CHECK (email_lower IS NOT NULL) NOT VALID",
	        NULL,
	        T "VALIDATE CONSTRAINT users_fill_6_not_null",
	        NULL,
	        T "ALTER COLUMN email_lower SET NOT NULL",
	        NULL,
	        T "DROP CONSTRAINT users_fill_6_not_null",
	        NULL,
	        "CREATE UNIQUE INDEX CONCURRENTLY users_a ON users (a)",
	        "users_a",
	        NULL,
	};

	expands(steps, BF_ARRAY_LEN(steps), "users_fill", want);
}
END_TEST

START_TEST(test_expand_names)
{
	const bf_step_config quoted[] = {
	        {BF_STEP_INDEX, "CREATE INDEX CONCURRENTLY \"a\"\"b\" ON t (x)"},
	        {BF_STEP_SQL, "CREATE INDEX CONCURRENTLY IF NOT EXISTS Users_Email ON t (x);"},
	        {BF_STEP_SQL, "CREATE INDEX CONCURRENTLY "
	                      "a123456789b123456789c123456789d123456789e123456789f123456789gXYZ "
	                      "ON t (x)"},
	};
	const char *const want_quoted[] = {
	        "CREATE INDEX CONCURRENTLY \"a\"\"b\" ON t (x)",
	        "a\"b",
	        "CREATE INDEX CONCURRENTLY IF NOT EXISTS Users_Email ON t (x)",
	        "users_email",
	        "CREATE INDEX CONCURRENTLY "
	        "a123456789b123456789c123456789d123456789e123456789f123456789gXYZ ON t (x)",
	        "a123456789b123456789c123456789d123456789e123456789f123456789gxy",
	        NULL,
	};
	/* a job that starts with a digit is quoted; a long one is shortened so that the
	 * position survives the server's 63 bytes */
	const bf_step_config check[] = {{BF_STEP_CHECK, "x > 0"}};
	const char *const want_digit[] = {
	        T "ADD CONSTRAINT \"2024_fill_1_check\" CHECK (x > 0) NOT VALID",
	        NULL,
	        T "VALIDATE CONSTRAINT \"2024_fill_1_check\"",
	        NULL,
	        NULL,
	};
	const char *const want_long[] = {
	        T "ADD CONSTRAINT a123456789b123456789c123456789d123456789e123456789f1234_1_check "
	          "CHECK (x > 0) NOT VALID",
	        NULL,
	        T "VALIDATE CONSTRAINT "
	          "a123456789b123456789c123456789d123456789e123456789f1234_1_check",
	        NULL,
	        NULL,
	};
	const char *const none[] = {NULL};

	expands(quoted, BF_ARRAY_LEN(quoted), "j", want_quoted);
	expands(check, 1, "2024_fill", want_digit);
	expands(check, 1, "a123456789b123456789c123456789d123456789e123456789f123456789g",
	        want_long);
	expands(NULL, 0, "j", none);
	ck_assert_ptr_null(bf_steps_expand(NULL, 0, "j", "t", &(size_t){1}));
	bf_steps_free(NULL, 0);
}
END_TEST

Suite *steps_suite(void)
{
	Suite *s = suite_create("steps");
	TCase *lint = tcase_create("lint");
	TCase *expand = tcase_create("expand");

	tcase_set_timeout(lint, 10);
	tcase_add_test(lint, test_create_index_refused);
	tcase_add_test(lint, test_alter_table_refused);
	tcase_add_test(lint, test_statements_refused);
	tcase_add_test(lint, test_text_refused);
	tcase_add_test(lint, test_accepted);
	suite_add_tcase(s, lint);
	tcase_set_timeout(expand, 10);
	tcase_add_test(expand, test_expand_each_kind);
	tcase_add_test(expand, test_expand_names);
	suite_add_tcase(s, expand);
	return s;
}
