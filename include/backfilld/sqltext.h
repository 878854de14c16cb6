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

#endif
