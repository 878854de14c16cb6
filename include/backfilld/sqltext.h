/*
 * sqltext.h - the operator's SQL fragments (`set`, `where`) read the way the server's lexer
 * reads them, before any of it reaches a server.
 *
 * Owns two promises about the text the daemon embeds in its own statements (sql.h):
 *   - a fragment stays one piece of the statement around it: its parentheses balance at the
 *     top level and never close one the daemon opened, and it has no statement separator, no
 *     comment (a `--` would swallow what the daemon appends after it) and no `$n` parameter
 *     (it would bind to the daemon's own values). `x IS NULL) OR (true`, refused here, would
 *     otherwise turn a batch into an UPDATE of every row of the table;
 *   - the columns a `set` list assigns, so that two jobs writing one column are refused.
 * Quoted strings ('', E'' with backslashes, U&''), quoted identifiers and dollar-quoted
 * strings are skipped whole, so a ';' or '--' inside them is data. Pure: no I/O.
 */
#ifndef BACKFILLD_SQLTEXT_H
#define BACKFILLD_SQLTEXT_H

#include <stdbool.h>
#include <stddef.h>

/* NULL when `s` is one fragment; else a malloc'ed phrase saying what is wrong and where
 * ("one SQL fragment: ')' at character 10 closes a parenthesis it did not open"). */
char *bf_sqltext_problem(const char *s);

/* The columns a SET list assigns, in order, each as the server names it (unquoted ones in
 * lower case, quoted ones as written), with *n their count; subscripts and fields of a
 * column count as the column. NULL (and *n = 0) when bf_sqltext_problem() refuses `set`
 * or an item assigns nothing. Free with bf_sqltext_free(). */
char **bf_sqltext_set_columns(const char *set, size_t *n);
void bf_sqltext_free(char **cols, size_t n);

/* A SET list as its items, each a column (as the server names it) and the expression
 * assigned to it (the text as written, trimmed), for what evaluates them again one column at
 * a time (the dual-write trigger). NULL with a malloc'ed *why (and *n = 0) when `set` is not
 * one fragment or an item is not `column = expression`: a row assignment, a subscript or a
 * field works in `set`, not there. Free with bf_sqltext_items_free(). */
typedef struct bf_set_item {
	char *column;
	char *expr;
} bf_set_item;
bf_set_item *bf_sqltext_set_items(const char *set, size_t *n, char **why);
void bf_sqltext_items_free(bf_set_item *items, size_t n);

/* Is `where` exactly `column IS NULL` (any case and spacing, the column plain or quoted,
 * in one pair of parentheses or none) for `column` as the server names it? What makes a job
 * undone by setting its column back to NULL: every row it changed had NULL there. */
bool bf_sqltext_is_null_test(const char *where, const char *column);

/* The lexer's pieces, for the modules that read SQL further (steps.c): a character that may
 * start an unquoted identifier, or continue one ('$' too); just past the quoted piece that
 * the quote s[i] opens ('...' or "...", doubled quotes inside, backslash escapes too when
 * `backslash`: E'...'); the length of the $tag$ starting at s[i] (0: none); just past the
 * dollar-quoted string whose tag (of length n) starts at s[i]. The two "just past" give 0 for
 * a piece that is not closed. */
bool bf_sqltext_ident_start(char c);
bool bf_sqltext_ident_char(char c);
size_t bf_sqltext_past_quote(const char *s, size_t i, bool backslash);
size_t bf_sqltext_dollar_tag(const char *s, size_t i);
size_t bf_sqltext_past_dollar(const char *s, size_t i, size_t n);

#endif
