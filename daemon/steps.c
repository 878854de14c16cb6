/*
 * steps.c - the lint and the expansion of a job's `then:` steps.
 *
 * The text of a step first passes bf_sqltext_problem() (one fragment: quotes closed, no ';',
 * comment or $n), so the tokenizer below only has to cut it into words: it skips quoted
 * pieces the way sqltext.c does ('...', E'...' with backslashes, U&'...', "...", $tag$...$tag$)
 * and folds unquoted words to lower case, as the server does. The rules then read the
 * statement's shape from its first words (CREATE INDEX, ALTER TABLE, VACUUM, ...), and for
 * ALTER TABLE each action between top-level commas on its own. A rule looks only at words,
 * never at quoted identifiers: "type" is a column, TYPE a keyword.
 */
#include "backfilld/steps.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfilld/sqltext.h"
#include "backfilld/util.h"

/* NAMEDATALEN - 1: the server cuts longer identifiers to this many bytes. */
#define IDENT_MAX 63
#define NOWHERE   SIZE_MAX

enum tok_kind {
	TK_WORD,   /* an unquoted word, folded to lower case: a keyword or a name */
	TK_QUOTED, /* a "quoted identifier", quotes removed and "" undone */
	TK_STRING, /* a string constant of any form */
	TK_NUMBER,
	TK_PUNCT, /* one character of anything else */
};

struct tok {
	enum tok_kind kind;
	int depth;    /* parentheses and brackets around it; a '(' is at the depth outside it */
	char punct;   /* TK_PUNCT: the character */
	bool uescape; /* TK_QUOTED written U&"...", whose escapes are not undone */
	char *text;   /* TK_WORD and TK_QUOTED: the name as the server reads it; TK_NUMBER: as
	               * written */
};

struct toks {
	struct tok *v;
	size_t n, cap;
};

/* ----- the tokenizer ------------------------------------------------------------------- */

/* Just past the piece the quote s[i] opens, or the end of s when it is not closed (the lint
 * has refused that text already). */
static size_t past_quote(const char *s, size_t i, bool backslash)
{
	size_t end = bf_sqltext_past_quote(s, i, backslash);

	return end ? end : strlen(s);
}

static struct tok *push(struct toks *t, enum tok_kind kind, int depth)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 32;
		t->v = bf_xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	t->v[t->n] = (struct tok){.kind = kind, .depth = depth};
	return &t->v[t->n++];
}

/* The identifier quoted at s[i..end), its doubled quotes undone. */
static char *unquote(const char *s, size_t i, size_t end)
{
	bf_sbuf sb = {0};

	for (size_t k = i + 1; k + 1 < end; k++) {
		bf_sbuf_appendn(&sb, s + k, 1);
		k += s[k] == '"';
	}
	return bf_sbuf_steal(&sb);
}

static char *fold(const char *s, size_t len)
{
	char *w = bf_xstrndup(s, len);

	for (char *p = w; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return w;
}

/* One word, string or identifier starting at s[i] (an identifier character); returns the
 * end. A lone E, B, X or N before a quote prefixes a string, U& a string or an identifier. */
static size_t word(const char *s, size_t i, int depth, struct toks *t)
{
	size_t k = i, end;
	struct tok *tk;
	char c = (char)tolower((unsigned char)s[i]);

	while (bf_sqltext_ident_char(s[k]))
		k++;
	if (k == i + 1 && s[k] == '\'' && strchr("ebxn", c)) {
		push(t, TK_STRING, depth);
		return past_quote(s, k, c == 'e');
	}
	if (k == i + 1 && c == 'u' && s[k] == '&' && (s[k + 1] == '\'' || s[k + 1] == '"')) {
		end = past_quote(s, k + 1, false);
		if (s[k + 1] == '\'') {
			push(t, TK_STRING, depth);
		} else {
			tk = push(t, TK_QUOTED, depth);
			tk->uescape = true;
			tk->text = unquote(s, k + 1, end);
		}
		return end;
	}
	push(t, TK_WORD, depth)->text = fold(s + i, k - i);
	return k;
}

/* The tokens of s, which bf_sqltext_problem() accepted. */
static void tokenize(const char *s, struct toks *t)
{
	int depth = 0;
	size_t tag;

	for (size_t i = 0; s[i];) {
		char c = s[i];

		if (isspace((unsigned char)c)) {
			i++;
		} else if (bf_sqltext_ident_start(c)) {
			i = word(s, i, depth, t);
		} else if (isdigit((unsigned char)c)) {
			size_t k = i;

			while (bf_sqltext_ident_char(s[k]) || s[k] == '.')
				k++;
			push(t, TK_NUMBER, depth)->text = bf_xstrndup(s + i, k - i);
			i = k;
		} else if (c == '\'') {
			push(t, TK_STRING, depth);
			i = past_quote(s, i, false);
		} else if (c == '"') {
			size_t end = past_quote(s, i, false);

			push(t, TK_QUOTED, depth)->text = unquote(s, i, end);
			i = end;
		} else if (c == '$' && (tag = bf_sqltext_dollar_tag(s, i)) > 0) {
			push(t, TK_STRING, depth);
			i = bf_sqltext_past_dollar(s, i, tag);
			if (i == 0)
				i = strlen(s);
		} else {
			depth -= c == ')' || c == ']';
			push(t, TK_PUNCT, depth)->punct = c;
			depth += c == '(' || c == '[';
			i++;
		}
	}
}

static void toks_free(struct toks *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].text);
	free(t->v);
	*t = (struct toks){0};
}

/* ----- reading tokens ------------------------------------------------------------------ */

static bool word_at(const struct toks *t, size_t i, const char *w)
{
	return i < t->n && t->v[i].kind == TK_WORD && strcmp(t->v[i].text, w) == 0;
}

static bool punct_at(const struct toks *t, size_t i, char c)
{
	return i < t->n && t->v[i].kind == TK_PUNCT && t->v[i].punct == c;
}

static bool name_at(const struct toks *t, size_t i)
{
	return i < t->n && (t->v[i].kind == TK_WORD || t->v[i].kind == TK_QUOTED);
}

/* The words of `phrase` (separated by one space) at t[i], t[i + 1], ... */
static bool phrase_at(const struct toks *t, size_t i, const char *phrase)
{
	while (*phrase) {
		size_t len = strcspn(phrase, " ");

		if (!(i < t->n && t->v[i].kind == TK_WORD && strlen(t->v[i].text) == len &&
		      strncmp(t->v[i].text, phrase, len) == 0))
			return false;
		i++;
		phrase += len;
		phrase += *phrase == ' ';
	}
	return true;
}

/* Where `phrase` starts in t[from..to) at depth `depth` (any depth when negative), or
 * NOWHERE. */
static size_t find(const struct toks *t, size_t from, size_t to, int depth, const char *phrase)
{
	for (size_t i = from; i < to && i < t->n; i++)
		if ((depth < 0 || t->v[i].depth == depth) && phrase_at(t, i, phrase))
			return i;
	return NOWHERE;
}

/* An option word anywhere in t (VACUUM FULL, VACUUM (FULL), REINDEX (CONCURRENTLY)), unless
 * a parenthesized option list switches it off with false, off or 0. */
static bool option(const struct toks *t, const char *w)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct tok *next = i + 1 < t->n ? &t->v[i + 1] : NULL;
		bool off = t->v[i].depth > 0 && next &&
		           (word_at(t, i + 1, "false") || word_at(t, i + 1, "off") ||
		            (next->kind == TK_NUMBER && strcmp(next->text, "0") == 0));

		if (word_at(t, i, w) && !off)
			return true;
	}
	return false;
}

/* ----- the rules ----------------------------------------------------------------------- */

#define INDEX_FORM "CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON ..."
#define NOT_VALID  "add it NOT VALID, then VALIDATE CONSTRAINT in a step of its own"
#define NEW_COLUMN "add the column without a default and backfill it"

/* Statements refused by their first words alone, unless an option makes them safe. */
static const struct {
	const char *starts; /* the statement's first words */
	const char *with;   /* an option that must be there for the rule to apply, or NULL */
	const char *unless; /* an option that makes the statement safe, or NULL */
	const char *why;
} statement_rules[] = {
        {.starts = "vacuum",
         .with = "full",
         .why = "VACUUM FULL rewrites the table under ACCESS EXCLUSIVE, blocking reads and "
                "writes for the whole copy: use plain VACUUM (pg_repack can compact a table "
                "without the lock, outside backfilld)"},
        {.starts = "cluster",
         .why = "CLUSTER rewrites the table under ACCESS EXCLUSIVE, blocking reads and writes "
                "for the whole copy: leave it out (pg_repack can reorder a table without the "
                "lock, outside backfilld)"},
        {.starts = "lock",
         .why = "LOCK TABLE takes ACCESS EXCLUSIVE unless told otherwise and holds it to the "
                "end of the transaction, stopping the application behind it: leave it out, "
                "each statement takes the lock it needs"},
        {.starts = "truncate",
         .why = "TRUNCATE takes ACCESS EXCLUSIVE and empties the table under the "
                "application: leave it out of then: and run it by hand if you mean it"},
        {.starts = "reindex",
         .unless = "concurrently",
         .why = "REINDEX without CONCURRENTLY blocks every write to the table, and every "
                "query that would use the index, for the whole rebuild: write REINDEX ... "
                "CONCURRENTLY"},
        {.starts = "refresh materialized view",
         .unless = "concurrently",
         .why = "REFRESH MATERIALIZED VIEW without CONCURRENTLY takes ACCESS EXCLUSIVE on the "
                "view, blocking every read of it for the whole refresh: write REFRESH "
                "MATERIALIZED VIEW CONCURRENTLY (the view needs a unique index)"},
};

/* Words followed by '(' that are syntax, not a function of pg_proc. */
static const char *const not_calls[] = {
        "and",     "or",      "not",     "in",      "exists",  "any",       "all",      "some",
        "is",      "between", "like",    "ilike",   "similar", "case",      "when",     "then",
        "else",    "as",      "array",   "row",     "cast",    "coalesce",  "nullif",   "greatest",
        "least",   "values",  "default", "varchar", "char",    "varying",   "nchar",    "numeric",
        "decimal", "dec",     "bit",     "float",   "time",    "timestamp", "interval",
};

/* The functions a DEFAULT may call: stable, one value for the whole statement, so adding the
 * column writes no row. */
static const char *const stable_calls[] = {
        "now",
        "current_timestamp",
        "current_date",
        "localtimestamp",
        "statement_timestamp",
        "transaction_timestamp",
};

static const char *const serial_types[] = {
        "smallserial", "serial", "bigserial", "serial2", "serial4", "serial8",
};

static bool in_list(const char *w, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(w, list[i]) == 0)
			return true;
	return false;
}

/* Whether t starts CREATE [UNIQUE] INDEX; *after is then the token after INDEX. */
static bool create_index_at(const struct toks *t, size_t *after)
{
	size_t i = 1;

	if (!word_at(t, 0, "create"))
		return false;
	i += word_at(t, i, "unique");
	if (!word_at(t, i, "index"))
		return false;
	*after = i + 1;
	return true;
}

/* The name the server gives an identifier it reads as `name`: cut to IDENT_MAX bytes, never
 * inside a UTF-8 character. */
static char *server_name(const char *name)
{
	size_t len = strlen(name);

	if (len > IDENT_MAX) {
		len = IDENT_MAX;
		while (len > 0 && ((unsigned char)name[len] & 0xC0) == 0x80)
			len--;
	}
	return bf_xstrndup(name, len);
}

/* The CREATE [UNIQUE] INDEX of t, whose INDEX is followed by t[i]: NULL when it has the form
 * INDEX_FORM, with *name (when name is not NULL) the index's name as the server reads it;
 * else why not. */
static char *index_form(const struct toks *t, size_t i, char **name)
{
	const char *what = word_at(t, 1, "unique") ? "CREATE UNIQUE INDEX" : "CREATE INDEX";

	if (!word_at(t, i, "concurrently"))
		return bf_xasprintf(
		        "%s without CONCURRENTLY blocks every write to the table for the "
		        "whole build: write %s CONCURRENTLY (an index: step)",
		        what, what);
	i++;
	if (phrase_at(t, i, "if not exists"))
		i += 3;
	if (word_at(t, i, "on"))
		return bf_xasprintf(
		        "%s CONCURRENTLY ... ON names no index, and the runner must find "
		        "a failed build's INVALID index by name (to drop it before the "
		        "next attempt): write %s CONCURRENTLY name ON ...",
		        what, what);
	if (!name_at(t, i) || !word_at(t, i + 1, "on") || i + 2 >= t->n)
		return bf_xstrdup("expected " INDEX_FORM);
	if (t->v[i].uescape)
		return bf_xstrdup("expected the index name as a plain or \"quoted\" identifier, "
		                  "not U&\"...\": the runner looks a failed build up by that name");
	if (name)
		*name = server_name(t->v[i].text);
	return NULL;
}

/* The first function that the DEFAULT expression t[from..to) calls and that may be
 * volatile, or NOWHERE. Casts' type modifiers (::numeric(10, 2)) are not calls. */
static size_t volatile_call(const struct toks *t, size_t from, size_t to)
{
	for (size_t k = from; k < to; k++) {
		const struct tok *tk = &t->v[k];
		bool qualified = k >= 2 && punct_at(t, k - 1, '.');

		if (!punct_at(t, k + 1, '(') || !name_at(t, k))
			continue;
		if (tk->kind == TK_WORD && in_list(tk->text, not_calls, BF_ARRAY_LEN(not_calls)))
			continue;
		if (k >= 2 && punct_at(t, k - 1, ':') && punct_at(t, k - 2, ':'))
			continue;
		if (k >= 1 && word_at(t, k - 1, "as"))
			continue;
		if (in_list(tk->text, stable_calls, BF_ARRAY_LEN(stable_calls)) &&
		    (!qualified || word_at(t, k - 2, "pg_catalog")))
			continue;
		return qualified && name_at(t, k - 2) ? k - 2 : k;
	}
	return NOWHERE;
}

/* ADD [COLUMN] [IF NOT EXISTS] name type ... in t[j..end). */
static char *lint_add_column(const struct toks *t, size_t j, size_t end)
{
	size_t k;

	if (word_at(t, j, "column"))
		j++;
	if (phrase_at(t, j, "if not exists"))
		j += 3;
	if ((k = find(t, j, end, 0, "references")) != NOWHERE ||
	    (k = find(t, j, end, 0, "check")) != NOWHERE)
		return bf_xasprintf(
		        "ALTER TABLE ... ADD COLUMN ... %s takes ACCESS EXCLUSIVE and "
		        "validates every row under the lock, and a column constraint has "
		        "no NOT VALID form: add the column alone, then the constraint "
		        "with ADD CONSTRAINT: " NOT_VALID "%s",
		        word_at(t, k, "check") ? "CHECK" : "REFERENCES",
		        word_at(t, k, "check") ? ", or use a check: step" : "");
	if (find(t, j, end, 0, "unique") != NOWHERE || find(t, j, end, 0, "primary key") != NOWHERE)
		return bf_xstrdup(
		        "ALTER TABLE ... ADD COLUMN ... UNIQUE or PRIMARY KEY builds its "
		        "index under ACCESS EXCLUSIVE: add the column, CREATE UNIQUE INDEX "
		        "CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING INDEX");
	if (j + 1 < end && t->v[j + 1].kind == TK_WORD &&
	    in_list(t->v[j + 1].text, serial_types, BF_ARRAY_LEN(serial_types)))
		return bf_xasprintf("ALTER TABLE ... ADD COLUMN ... %s has the default nextval(), "
		                    "and a volatile default writes every row under ACCESS "
		                    "EXCLUSIVE: " NEW_COLUMN,
		                    t->v[j + 1].text);
	if (find(t, j, end, 0, "generated") != NOWHERE) {
		if (find(t, j, end, 0, "identity") != NOWHERE)
			return bf_xstrdup(
			        "ALTER TABLE ... ADD COLUMN ... GENERATED AS IDENTITY numbers "
			        "every row, and a volatile default writes every row under "
			        "ACCESS EXCLUSIVE: " NEW_COLUMN);
		if (find(t, j, end, 0, "stored") != NOWHERE)
			return bf_xstrdup(
			        "ALTER TABLE ... ADD COLUMN ... GENERATED ALWAYS AS (...) "
			        "STORED rewrites the table under ACCESS EXCLUSIVE to compute "
			        "every row: add a plain column and backfill it");
	}
	if ((k = find(t, j, end, 0, "default")) != NOWHERE &&
	    (k = volatile_call(t, k + 1, end)) != NOWHERE) {
		bf_sbuf fn = {0};
		char *why;

		for (; !punct_at(t, k, '('); k++)
			bf_sbuf_append(&fn, t->v[k].kind == TK_PUNCT ? "." : t->v[k].text);
		why = bf_xasprintf("ALTER TABLE ... ADD COLUMN ... DEFAULT %s() may be "
		                   "volatile, and a volatile default writes every row under "
		                   "ACCESS EXCLUSIVE: " NEW_COLUMN,
		                   fn.data);
		bf_sbuf_free(&fn);
		return why;
	}
	return NULL;
}

/* ADD ... in t[j..end), j just past ADD. */
static char *lint_add(const struct toks *t, size_t j, size_t end)
{
	bool check;

	if (word_at(t, j, "constraint"))
		j += 2;
	else if (!word_at(t, j, "check") && !word_at(t, j, "foreign") && !word_at(t, j, "unique") &&
	         !word_at(t, j, "primary") && !word_at(t, j, "exclude"))
		return lint_add_column(t, j, end);
	check = word_at(t, j, "check");
	if ((check || word_at(t, j, "foreign")) && find(t, j, end, 0, "not valid") == NOWHERE)
		return bf_xasprintf(
		        "ALTER TABLE ... ADD %s without NOT VALID takes %s and validates "
		        "every row under the lock: " NOT_VALID "%s",
		        check ? "CHECK" : "FOREIGN KEY",
		        check ? "ACCESS EXCLUSIVE" : "SHARE ROW EXCLUSIVE on both tables",
		        check ? ", or use a check: step" : "");
	if ((word_at(t, j, "unique") || word_at(t, j, "primary")) &&
	    find(t, j, end, 0, "using index") == NOWHERE) {
		const char *form = word_at(t, j, "unique") ? "UNIQUE" : "PRIMARY KEY";

		return bf_xasprintf(
		        "ALTER TABLE ... ADD %s without USING INDEX builds its index "
		        "under ACCESS EXCLUSIVE: CREATE UNIQUE INDEX CONCURRENTLY first, "
		        "then ADD CONSTRAINT ... %s USING INDEX",
		        form, form);
	}
	return NULL;
}

/* One action of ALTER TABLE, t[i..end). */
static char *lint_action(const struct toks *t, size_t i, size_t end)
{
	if (word_at(t, i, "add"))
		return lint_add(t, i + 1, end);
	if (!word_at(t, i, "alter") || word_at(t, i + 1, "constraint"))
		return NULL;
	i += 1 + word_at(t, i + 1, "column");
	if (i + 1 < end && name_at(t, i) &&
	    (word_at(t, i + 1, "type") || phrase_at(t, i + 1, "set data type")))
		return bf_xstrdup(
		        "ALTER TABLE ... ALTER COLUMN ... TYPE may rewrite the table under "
		        "ACCESS EXCLUSIVE: add a new column and backfill it");
	return NULL;
}

static char *lint_alter_table(const struct toks *t)
{
	size_t i = 2, end;
	char *why = NULL;

	if (find(t, 0, t->n, -1, "set not null") != NOWHERE)
		return bf_xstrdup(
		        "ALTER TABLE ... SET NOT NULL scans the whole table under ACCESS "
		        "EXCLUSIVE unless a validated CHECK (col IS NOT NULL) exists: use a "
		        "not_null: step");
	if (phrase_at(t, i, "if exists"))
		i += 2;
	i += word_at(t, i, "only");
	if (name_at(t, i))
		for (i++; punct_at(t, i, '.') && name_at(t, i + 1); i += 2)
			;
	i += punct_at(t, i, '*');
	for (; why == NULL && i < t->n; i = end + 1) {
		for (end = i; end < t->n && !(punct_at(t, end, ',') && t->v[end].depth == 0); end++)
			;
		why = lint_action(t, i, end);
	}
	return why;
}

static char *lint_statement(const struct toks *t)
{
	size_t i;

	if (create_index_at(t, &i))
		return index_form(t, i, NULL);
	if (phrase_at(t, 0, "alter table"))
		return lint_alter_table(t);
	for (i = 0; i < BF_ARRAY_LEN(statement_rules); i++)
		if (phrase_at(t, 0, statement_rules[i].starts) &&
		    (statement_rules[i].with == NULL || option(t, statement_rules[i].with)) &&
		    (statement_rules[i].unless == NULL || !option(t, statement_rules[i].unless)))
			return bf_xstrdup(statement_rules[i].why);
	return NULL;
}

/* A plain identifier ([A-Za-z_][A-Za-z0-9_$]*) or a "quoted" one, s[0..n), nothing else. */
static bool one_identifier(const char *s, size_t n)
{
	if (n >= 2 && s[0] == '"') {
		for (size_t k = 1; k < n; k++) {
			if (s[k] != '"')
				continue;
			if (k == n - 1)
				return n > 2;
			if (s[k + 1] != '"')
				return false;
			k++;
		}
		return false;
	}
	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_') || (unsigned char)s[0] >= 0x80)
		return false;
	for (size_t k = 1; k < n; k++)
		if (!(isalnum((unsigned char)s[k]) || s[k] == '_' || s[k] == '$') ||
		    (unsigned char)s[k] >= 0x80)
			return false;
	return true;
}

/* s without the white space around it and, for a statement, one trailing ';': the span
 * s[*from..*to). */
static void body(const char *s, bool statement, size_t *from, size_t *to)
{
	size_t b = 0, e = strlen(s);

	while (e > 0 && isspace((unsigned char)s[e - 1]))
		e--;
	if (statement && e > 0 && s[e - 1] == ';')
		for (e--; e > 0 && isspace((unsigned char)s[e - 1]); e--)
			;
	while (b < e && isspace((unsigned char)s[b]))
		b++;
	*from = b;
	*to = e;
}

static const char *const expected[] = {
        [BF_STEP_SQL] = "a SQL statement",
        [BF_STEP_NOT_NULL] = "a column name",
        [BF_STEP_CHECK] = "a boolean expression",
        [BF_STEP_INDEX] = "CREATE [UNIQUE] INDEX CONCURRENTLY",
};

char *bf_steps_lint(const bf_step_config *step)
{
	bool statement = step->kind == BF_STEP_SQL || step->kind == BF_STEP_INDEX;
	struct toks t = {0};
	char *text = NULL, *why = NULL;
	size_t from, to, i;

	if ((size_t)step->kind >= BF_ARRAY_LEN(expected))
		return bf_xasprintf("unknown step kind %d", (int)step->kind);
	body(step->text ? step->text : "", statement, &from, &to);
	if (from == to)
		return bf_xasprintf("expected %s, got an empty step", expected[step->kind]);
	/* the text up to its end, leading white space kept so that positions match the text */
	text = bf_xstrndup(step->text, to);
	if ((why = bf_sqltext_problem(text)) != NULL) {
		char *phrase = why;

		why = bf_xasprintf("expected %s", phrase);
		free(phrase);
		goto out;
	}
	tokenize(text, &t);
	switch (step->kind) {
	case BF_STEP_SQL:
		why = lint_statement(&t);
		break;
	case BF_STEP_NOT_NULL:
		if (!one_identifier(text + from, to - from))
			why = bf_xasprintf("expected one column name, a plain identifier (letters, "
			                   "digits, _ and $) or a \"quoted\" one, got \"%s\"",
			                   text + from);
		break;
	case BF_STEP_CHECK:
		break;
	case BF_STEP_INDEX:
		if (create_index_at(&t, &i))
			why = index_form(&t, i, NULL);
		else
			why = bf_xstrdup("expected " INDEX_FORM " in an index: step (other "
			                 "statements go in sql: steps)");
		break;
	}
out:
	toks_free(&t);
	free(text);
	return why;
}

/* ----- the expansion ------------------------------------------------------------------- */

/* The step's text as it runs: trimmed, one trailing ';' removed for a statement. */
static char *trimmed(const bf_step_config *step)
{
	size_t from, to;

	body(step->text, step->kind == BF_STEP_SQL || step->kind == BF_STEP_INDEX, &from, &to);
	return bf_xstrndup(step->text + from, to - from);
}

/* The index a CREATE INDEX CONCURRENTLY statement builds, as the server names it; NULL for
 * any other statement. */
static char *index_name(const char *sql)
{
	struct toks t = {0};
	char *name = NULL, *why = NULL;
	size_t i;

	tokenize(sql, &t);
	if (create_index_at(&t, &i) && word_at(&t, i, "concurrently"))
		why = index_form(&t, i, &name);
	free(why);
	toks_free(&t);
	return name;
}

/* The constraint <job>_<position>_<what>, as an identifier: the job part shortened when the
 * name would pass IDENT_MAX (the server would cut the position off), quoted when the job
 * starts with a digit. */
static char *constraint_name(const char *job, size_t position, const char *what)
{
	char tail[64];
	size_t len = strlen(job), room;
	bool quote = !((job[0] >= 'a' && job[0] <= 'z') || job[0] == '_');

	snprintf(tail, sizeof(tail), "_%zu_%s", position, what);
	room = IDENT_MAX - strlen(tail);
	if (len > room)
		len = room;
	return bf_xasprintf("%s%.*s%s%s", quote ? "\"" : "", (int)len, job, tail,
	                    quote ? "\"" : "");
}

bf_step_stmt *bf_steps_expand(const bf_step_config *steps, size_t n, const char *job,
                              const char *qtable, size_t *n_out)
{
	bf_step_stmt *out = bf_xcalloc(4 * n + 1, sizeof(*out)); /* at most 4 per step */
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		char *text = trimmed(&steps[i]), *name = NULL;

		switch (steps[i].kind) {
		case BF_STEP_SQL:
		case BF_STEP_INDEX:
			out[k].index = index_name(text);
			out[k++].sql = text;
			text = NULL;
			break;
		case BF_STEP_NOT_NULL:
			name = constraint_name(job, i + 1, "not_null");
			out[k++].sql = bf_xasprintf(
			        "ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID",
			        qtable, name, text);
			out[k++].sql =
			        bf_xasprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", qtable, name);
			out[k++].sql = bf_xasprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL",
			                            qtable, text);
			out[k++].sql =
			        bf_xasprintf("ALTER TABLE %s DROP CONSTRAINT %s", qtable, name);
			break;
		case BF_STEP_CHECK:
			name = constraint_name(job, i + 1, "check");
			out[k++].sql = bf_xasprintf(
			        "ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s) NOT VALID", qtable,
			        name, text);
			out[k++].sql =
			        bf_xasprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", qtable, name);
			break;
		}
		free(name);
		free(text);
	}
	*n_out = k;
	if (k == 0) {
		free(out);
		return NULL;
	}
	return out;
}

void bf_steps_free(bf_step_stmt *stmts, size_t n)
{
	if (stmts == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(stmts[i].sql);
		free(stmts[i].index);
	}
	free(stmts);
}
