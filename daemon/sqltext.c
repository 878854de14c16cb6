/*
 * sqltext.c - a lexer for the operator's SQL fragments, just deep enough to know where a
 * fragment's pieces begin and end.
 *
 * It follows the server's lexical rules for what can hide a ';', a '--' or a parenthesis:
 * '...' strings (a doubled quote inside), E'...' strings (backslash escapes too), "..."
 * identifiers, $tag$...$tag$ strings; '$' inside an identifier (a$b) is a letter there.
 * Everything else is read a character at a time: only parentheses, ',' and '=' at the top
 * level matter to the callers.
 */
#include "backfilld/sqltext.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backfilld/util.h"

/* Called for each character outside quotes and comments, with the depth of parentheses and
 * brackets it is at (a '(' is at the depth outside it). */
typedef void (*visit_fn)(void *arg, size_t at, int depth);

bool bf_sqltext_ident_start(char c)
{
	return isalpha((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

bool bf_sqltext_ident_char(char c)
{
	return bf_sqltext_ident_start(c) || isdigit((unsigned char)c) || c == '$';
}

size_t bf_sqltext_past_quote(const char *s, size_t i, bool backslash)
{
	char q = s[i];

	for (size_t k = i + 1; s[k]; k++) {
		if (backslash && s[k] == '\\' && s[k + 1]) {
			k++;
		} else if (s[k] == q) {
			if (s[k + 1] != q)
				return k + 1;
			k++;
		}
	}
	return 0;
}

size_t bf_sqltext_dollar_tag(const char *s, size_t i)
{
	size_t k = i + 1;

	if (s[k] != '$' && !bf_sqltext_ident_start(s[k]))
		return 0;
	for (; s[k] != '$'; k++)
		if (!bf_sqltext_ident_char(s[k]))
			return 0;
	return k - i + 1;
}

size_t bf_sqltext_past_dollar(const char *s, size_t i, size_t n)
{
	for (const char *p = strchr(s + i + n, '$'); p; p = strchr(p + 1, '$'))
		if (strncmp(p, s + i, n) == 0)
			return (size_t)(p - s) + n;
	return 0;
}

static char *refuse(const char *what, size_t i)
{
	return bf_xasprintf("a single SQL fragment (here %s at character %zu)", what, i + 1);
}

/* The skipped length of a quoted piece at s[i] (0: none there), or a problem in *why. */
static size_t quoted(const char *s, size_t i, char **why)
{
	size_t end = 0, tag;

	if (s[i] == '\'') {
		bool e = i > 0 && (s[i - 1] == 'E' || s[i - 1] == 'e') &&
		         !(i > 1 && bf_sqltext_ident_char(s[i - 2]));

		end = bf_sqltext_past_quote(s, i, e);
		if (end == 0)
			*why = refuse("a quoted string that is not closed", i);
	} else if (s[i] == '"') {
		end = bf_sqltext_past_quote(s, i, false);
		if (end == 0)
			*why = refuse("a quoted identifier that is not closed", i);
	} else if (s[i] == '$' && !(i > 0 && bf_sqltext_ident_char(s[i - 1])) &&
	           (tag = bf_sqltext_dollar_tag(s, i))) {
		end = bf_sqltext_past_dollar(s, i, tag);
		if (end == 0)
			*why = refuse("a dollar-quoted string that is not closed", i);
	}
	return end == 0 ? 0 : end - i;
}

static char *lex(const char *s, visit_fn visit, void *arg)
{
	int depth = 0, brackets = 0; /* brackets hold commas too (ARRAY[1, 2]); the server
	                              * checks their balance */
	char *why = NULL;

	for (size_t i = 0; s[i];) {
		size_t skip = quoted(s, i, &why);

		if (why)
			return why;
		if (skip) {
			i += skip;
			continue;
		}
		if (s[i] == '$' && isdigit((unsigned char)s[i + 1]) &&
		    !(i > 0 && bf_sqltext_ident_char(s[i - 1])))
			return refuse("a parameter $n, which would take the daemon's own values",
			              i);
		if ((s[i] == '-' && s[i + 1] == '-') || (s[i] == '/' && s[i + 1] == '*'))
			return refuse(
			        "a comment, which would swallow what the daemon writes after it",
			        i);
		if (s[i] == ';')
			return refuse("a statement separator ';'", i);
		if (s[i] == ')' && --depth < 0)
			return refuse("')' closing a parenthesis the fragment did not open", i);
		brackets -= s[i] == ']';
		if (visit)
			visit(arg, i, depth + brackets);
		depth += s[i] == '(';
		brackets += s[i] == '[';
		i++;
	}
	if (depth > 0)
		return bf_xasprintf("a single SQL fragment (here %d %s not closed)", depth,
		                    depth == 1 ? "parenthesis" : "parentheses");
	return NULL;
}

char *bf_sqltext_problem(const char *s)
{
	return lex(s, NULL, NULL);
}

/* Where the top-level ',' and '=' of a SET list are. */
struct marks {
	size_t *at;
	size_t n, cap;
	const char *s;
};

static void mark(void *arg, size_t at, int depth)
{
	struct marks *m = arg;

	if (depth != 0 || (m->s[at] != ',' && m->s[at] != '='))
		return;
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 16;
		m->at = bf_xrealloc(m->at, m->cap * sizeof(*m->at));
	}
	m->at[m->n++] = at;
}

/* One column name from s[from..to): the name as the server folds it; a subscript or a field
 * after it ("col[1]", "col.f") is the same column. NULL when there is no name. */
static char *column(const char *s, size_t from, size_t to)
{
	bf_sbuf sb = {0};

	while (from < to && isspace((unsigned char)s[from]))
		from++;
	if (from < to && s[from] == '"') {
		for (size_t k = from + 1; k < to; k++) {
			if (s[k] == '"' && (k + 1 >= to || s[k + 1] != '"'))
				break;
			if (s[k] == '"')
				k++;
			bf_sbuf_appendn(&sb, s + k, 1);
		}
	} else {
		for (size_t k = from; k < to && bf_sqltext_ident_char(s[k]); k++) {
			char c = (char)tolower((unsigned char)s[k]);

			bf_sbuf_appendn(&sb, &c, 1);
		}
	}
	if (sb.len == 0) {
		bf_sbuf_free(&sb);
		return NULL;
	}
	return bf_sbuf_steal(&sb);
}

/* The columns of one target, s[from..to): a column, or a parenthesized list of them. */
static int targets(const char *s, size_t from, size_t to, char ***cols, size_t *n)
{
	while (from < to && isspace((unsigned char)s[from]))
		from++;
	if (from < to && s[from] == '(') {
		size_t close = to;

		while (close > from && s[close - 1] != ')')
			close--;
		if (close <= from + 1)
			return -1;
		to = close - 1;
		from++;
	}
	for (size_t k = from, start = from; k <= to; k++) {
		size_t skip;
		char *why = NULL;
		char *c;

		if (k < to && (skip = quoted(s, k, &why)) > 0) {
			k += skip - 1;
			continue;
		}
		free(why);
		if (k < to && s[k] != ',')
			continue;
		c = column(s, start, k);
		if (c == NULL)
			return -1;
		*cols = bf_xrealloc(*cols, (*n + 1) * sizeof(**cols));
		(*cols)[(*n)++] = c;
		start = k + 1;
	}
	return 0;
}

char **bf_sqltext_set_columns(const char *set, size_t *n)
{
	struct marks m = {.s = set};
	char **cols = NULL;
	char *why = lex(set, mark, &m);
	size_t item = 0; /* where the current item starts */
	bool assigned = false;

	*n = 0;
	if (why)
		goto error;
	for (size_t k = 0; k <= m.n; k++) {
		size_t at = k < m.n ? m.at[k] : strlen(set);
		bool comma = k == m.n || set[at] == ',';

		if (!comma && !assigned) {
			if (targets(set, item, at, &cols, n) != 0)
				goto error;
			assigned = true;
		} else if (comma) {
			if (!assigned)
				goto error;
			item = at + 1;
			assigned = false;
		}
	}
	free(m.at);
	return cols;
error:
	free(why);
	free(m.at);
	bf_sqltext_free(cols, *n);
	*n = 0;
	return NULL;
}

void bf_sqltext_free(char **cols, size_t n)
{
	if (cols == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(cols[i]);
	free(cols);
}

/* s[from..to) without the white space around it, malloc'ed. */
static char *trimmed(const char *s, size_t from, size_t to)
{
	char *t;

	while (from < to && isspace((unsigned char)s[from]))
		from++;
	while (to > from && isspace((unsigned char)s[to - 1]))
		to--;
	t = bf_xmalloc(to - from + 1);
	memcpy(t, s + from, to - from);
	t[to - from] = '\0';
	return t;
}

/* s[from..to) trimmed is exactly one column name, plain or quoted: the name, else NULL. */
static char *one_column(const char *s, size_t from, size_t to)
{
	size_t end;

	while (from < to && isspace((unsigned char)s[from]))
		from++;
	while (to > from && isspace((unsigned char)s[to - 1]))
		to--;
	if (from == to)
		return NULL;
	if (s[from] == '"') {
		char *why = NULL;
		size_t skip = quoted(s, from, &why);

		free(why);
		end = from + skip;
	} else {
		if (!bf_sqltext_ident_start(s[from]))
			return NULL;
		for (end = from; end < to && bf_sqltext_ident_char(s[end]); end++)
			;
	}
	return end == to && end > from ? column(s, from, to) : NULL;
}

bf_set_item *bf_sqltext_set_items(const char *set, size_t *n, char **why)
{
	struct marks m = {.s = set};
	bf_set_item *items = NULL;
	size_t item = 0, eq = 0, len = strlen(set);
	bool assigned = false;

	*n = 0;
	*why = lex(set, mark, &m);
	for (size_t k = 0; *why == NULL && k <= m.n; k++) {
		size_t at = k < m.n ? m.at[k] : len;
		char *col;

		if (k < m.n && set[at] == '=') {
			if (!assigned)
				eq = at;
			assigned = true;
			continue;
		}
		col = assigned ? one_column(set, item, eq) : NULL;
		if (col == NULL) {
			*why = bf_xasprintf(
			        "set's item %zu to be `column = expression` (a row "
			        "assignment, a subscript or a field cannot be evaluated "
			        "again one column at a time)",
			        *n + 1);
			break;
		}
		items = bf_xrealloc(items, (*n + 1) * sizeof(*items));
		items[*n].column = col;
		items[*n].expr = trimmed(set, eq + 1, at);
		(*n)++;
		item = at + 1;
		assigned = false;
	}
	free(m.at);
	if (*why) {
		bf_sqltext_items_free(items, *n);
		*n = 0;
		return NULL;
	}
	return items;
}

void bf_sqltext_items_free(bf_set_item *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++) {
		free(items[i].column);
		free(items[i].expr);
	}
	free(items);
}

/* s[from..to) ends with the word `w` (any case) after white space: where that white space
 * starts, else 0. */
static size_t before_word(const char *s, size_t from, size_t to, const char *w)
{
	size_t n = strlen(w);

	while (to > from && isspace((unsigned char)s[to - 1]))
		to--;
	if (to < from + n + 1 || strncasecmp(s + to - n, w, n) != 0 ||
	    !isspace((unsigned char)s[to - n - 1]))
		return 0;
	return to - n;
}

bool bf_sqltext_is_null_test(const char *where, const char *column)
{
	size_t from = 0, to = strlen(where), at;
	char *c;
	bool ok;

	while (from < to && isspace((unsigned char)where[from]))
		from++;
	while (to > from && isspace((unsigned char)where[to - 1]))
		to--;
	if (to - from > 2 && where[from] == '(' && where[to - 1] == ')') {
		from++;
		to--;
	}
	at = before_word(where, from, to, "null");
	at = at ? before_word(where, from, at, "is") : 0;
	c = at ? one_column(where, from, at) : NULL;
	ok = c && strcmp(c, column) == 0;
	free(c);
	return ok;
}
