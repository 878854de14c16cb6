/*
 * check_sqltext.c - the lexer that keeps the operator's `set` and `where` one fragment each,
 * and the columns a SET list assigns.
 */
#include <stdlib.h>
#include <string.h>

#include "backfilld/sqltext.h"
#include "suites.h"

static void fine(const char *s)
{
	char *why = bf_sqltext_problem(s);

	ck_assert_msg(why == NULL, "refused %s: %s", s, why);
}

static void refused(const char *s, const char *want)
{
	char *why = bf_sqltext_problem(s);

	ck_assert_msg(why != NULL, "accepted %s", s);
	ck_assert_msg(strcmp(why, want) == 0, "%s:\n  got  %s\n  want %s", s, why, want);
	free(why);
}

START_TEST(test_fragments_that_stay_one)
{
	fine("email_lower IS NULL");
	fine("f(x, (y)) > 0 AND z IN (1, 2)");
	/* a ';', '--' or parenthesis inside quotes is data */
	fine("x = 'a;b--c)/*'");
	fine("x = 'it''s' OR y = 'a\\' OR z");
	fine("x = E'it\\'s; (' ");
	fine("\"we;ird)\" IS NULL");
	fine("x = $$;--)$$ AND y = $tag$ $$ ) $tag$");
	/* '$' inside an identifier is a letter */
	fine("a$b = 1 AND c$1 = 2");
	fine("x = ARRAY[1, 2] AND y <> -1");
}
END_TEST

START_TEST(test_fragments_refused)
{
	refused("x IS NULL) OR (true",
	        "a single SQL fragment (here ')' closing a parenthesis the fragment did not open "
	        "at character 10)");
	refused("x IS NULL; DROP TABLE t",
	        "a single SQL fragment (here a statement separator ';' at character 10)");
	refused("x IS NULL -- and the rest",
	        "a single SQL fragment (here a comment, which would swallow what the daemon "
	        "writes after it at character 11)");
	refused("x /* c */ IS NULL", "a single SQL fragment (here a comment, which would swallow "
	                             "what the daemon writes after it at character 3)");
	refused("(x IS NULL", "a single SQL fragment (here 1 parenthesis not closed)");
	refused("((x", "a single SQL fragment (here 2 parentheses not closed)");
	refused("x = 'abc",
	        "a single SQL fragment (here a quoted string that is not closed at character 5)");
	refused("x = E'abc\\'",
	        "a single SQL fragment (here a quoted string that is not closed at character 6)");
	refused("\"x = 1", "a single SQL fragment (here a quoted identifier that is not closed at "
	                   "character 1)");
	refused("x = $q$abc$", "a single SQL fragment (here a dollar-quoted string that is not "
	                       "closed at character 5)");
	refused("id = $1", "a single SQL fragment (here a parameter $n, which would take the "
	                   "daemon's own values at character 6)");
}
END_TEST

static void columns(const char *set, const char *const *want)
{
	size_t n = 0, k = 0;
	char **cols = bf_sqltext_set_columns(set, &n);

	while (want[k])
		k++;
	ck_assert_msg(n == k, "%s: %zu columns, want %zu", set, n, k);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(strcmp(cols[i], want[i]) == 0, "%s: column %zu is %s, want %s", set,
		              i, cols[i], want[i]);
	bf_sqltext_free(cols, n);
}

START_TEST(test_set_columns)
{
	const char *const one[] = {"email_lower", NULL};
	const char *const many[] = {"a", "B", "c", "d", "e", "F g", NULL};
	const char *const exprs[] = {"x", "z", "w", NULL};
	size_t n = 7;

	columns("email_lower = lower(email)", one);
	/* folded as the server folds them; subscripts and fields are their column */
	columns("A = 1, \"B\" = lower(x), c[1] = 2, d.f = 3, (e, \"F g\") = (1, 2)", many);
	/* an '=' or ',' inside an expression is not an assignment */
	columns("x = CASE WHEN y = 1 THEN 2 END, z = ARRAY[1, 2], w = f(a, b = c)", exprs);
	ck_assert_ptr_null(bf_sqltext_set_columns("x", &n));
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(bf_sqltext_set_columns("x = 1, ", &n));
	ck_assert_ptr_null(bf_sqltext_set_columns("x = 1; y = 2", &n));
}
END_TEST

/* What backup: true keeps: the columns of the forms a backfill's set takes. */
START_TEST(test_backup_columns)
{
	const char *const quoted[] = {"Email", NULL};
	const char *const two[] = {"email", "name", NULL};
	const char *const row[] = {"a", "B c", "d", NULL};
	const char *const strings[] = {"note", "tag", NULL};
	const char *const doubled[] = {"we\"ird", NULL};

	columns("\"Email\" = lower(\"Email\")", quoted);
	columns("email = lower(email), Name = initcap(name)", two);
	/* a row assignment, nested parentheses, a sub-select and ROW() */
	columns("(a, \"B c\") = (f(x, (y + 1)), (SELECT max(z) FROM t WHERE t.k = (k))), "
	        "d = ROW(1, 2)",
	        row);
	/* '=' and ',' inside strings, E'' with an escaped quote, dollar quotes */
	columns("note = 'a = b, c', tag = E'x\\', y = z' || $q$, w = v$q$", strings);
	columns("\"we\"\"ird\" = 1", doubled);
}
END_TEST

/* undo --to-null: only a where that is exactly `column IS NULL` of the one assigned column. */
START_TEST(test_is_null_test)
{
	ck_assert(bf_sqltext_is_null_test("email_lower IS NULL", "email_lower"));
	ck_assert(bf_sqltext_is_null_test("  Email_Lower  is\n  null ", "email_lower"));
	ck_assert(bf_sqltext_is_null_test("(\"Email\" IS NULL)", "Email"));
	ck_assert(!bf_sqltext_is_null_test("\"Email\" IS NULL", "email"));
	ck_assert(!bf_sqltext_is_null_test("email IS NULL", "email_lower"));
	ck_assert(!bf_sqltext_is_null_test("email_lower IS NOT NULL", "email_lower"));
	ck_assert(!bf_sqltext_is_null_test("email_lower IS NULL OR x", "email_lower"));
	ck_assert(!bf_sqltext_is_null_test("x = 1 AND email_lower IS NULL", "email_lower"));
	ck_assert(!bf_sqltext_is_null_test("email_lower <> lower(email)", "email_lower"));
	ck_assert(!bf_sqltext_is_null_test("email_lowerIS NULL", "email_lower"));
	ck_assert(!bf_sqltext_is_null_test("IS NULL", "email_lower"));
}
END_TEST

/* Items for the dual-write trigger: each column with its expression as written. */
START_TEST(test_set_items)
{
	size_t n = 9;
	char *why = NULL;
	bf_set_item *it = bf_sqltext_set_items(" A = lower(x) ,\"Email\"= coalesce(y, 'a,b = c'), "
	                                       "z = CASE WHEN q >= 1 THEN 2 END ",
	                                       &n, &why);

	ck_assert_ptr_nonnull(it);
	ck_assert_ptr_null(why);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(it[0].column, "a");
	ck_assert_str_eq(it[0].expr, "lower(x)");
	ck_assert_str_eq(it[1].column, "Email");
	ck_assert_str_eq(it[1].expr, "coalesce(y, 'a,b = c')");
	ck_assert_str_eq(it[2].column, "z");
	ck_assert_str_eq(it[2].expr, "CASE WHEN q >= 1 THEN 2 END");
	bf_sqltext_items_free(it, n);

	/* what cannot be evaluated again one column at a time, named by its position */
	ck_assert_ptr_null(bf_sqltext_set_items("a = 1, (b, c) = (2, 3)", &n, &why));
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_nonnull(strstr(why, "set's item 2 to be `column = expression`"));
	free(why);
	ck_assert_ptr_null(bf_sqltext_set_items("c[1] = 2", &n, &why));
	free(why);
	ck_assert_ptr_null(bf_sqltext_set_items("d.f = 3", &n, &why));
	free(why);
	ck_assert_ptr_null(bf_sqltext_set_items("x", &n, &why));
	free(why);
	ck_assert_ptr_null(bf_sqltext_set_items("x = 1; y = 2", &n, &why));
	ck_assert_ptr_nonnull(strstr(why, "statement separator"));
	free(why);
}
END_TEST

Suite *sqltext_suite(void)
{
	Suite *s = suite_create("sqltext");
	TCase *tc = tcase_create("lexer");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_fragments_that_stay_one);
	tcase_add_test(tc, test_fragments_refused);
	tcase_add_test(tc, test_set_columns);
	tcase_add_test(tc, test_backup_columns);
	tcase_add_test(tc, test_is_null_test);
	tcase_add_test(tc, test_set_items);
	suite_add_tcase(s, tc);
	return s;
}
