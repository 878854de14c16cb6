/*
 * check_manpage.c - backfilld.yaml(5) against the parser's key tables (config.c).
 *
 * The page is the users' reference, so it must list every key the parser accepts, and
 * nothing the parser would refuse. A key's entry is a line ".It Cm KEY", followed by the end
 * of the line or a blank (then the form of its value), with nested keys written "lag.KEY", as
 * bf_config_key_name() names them. A mention in prose (".Cm KEY", the word in a sentence)
 * does not count. The page keeps ".It Cm" for keys only.
 *
 * The first example of its EXAMPLES section must load as a configuration: an operator copies
 * it. Its include: line is left out, since it would read the files of the machine.
 *
 * The page is daemon/backfilld.yaml.5 relative to the repository root, where `make unit`
 * runs the binary, or the file BF_TEST_MANPAGE names (to try the tests on an altered copy).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfilld/config.h"
#include "backfilld/util.h"
#include "suites.h"

#ifndef BF_TEST_MANPAGE
#define BF_TEST_MANPAGE "daemon/backfilld.yaml.5"
#endif

#define ENTRY "It Cm "

/* The page's lines, without their newlines; *n their count. */
static char **read_page(const char **path_out, size_t *n)
{
	const char *env = getenv("BF_TEST_MANPAGE");
	const char *path = env && *env ? env : BF_TEST_MANPAGE;
	FILE *f = fopen(path, "r");
	char **lines = NULL;
	char buf[4096];

	ck_assert_msg(f != NULL, "cannot read %s: %s (run from the repository root)", path,
	              strerror(errno));
	*n = 0;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		buf[strcspn(buf, "\n")] = '\0';
		lines = bf_xrealloc(lines, (*n + 1) * sizeof(*lines));
		lines[(*n)++] = bf_xstrdup(buf);
	}
	fclose(f);
	*path_out = path;
	return lines;
}

static void free_page(char **lines, size_t n)
{
	bf_strv_free(lines, n);
}

/* The key a line is the entry of (malloc'ed), or NULL when it is not ".It Cm KEY ...". */
static char *entry_key(const char *line)
{
	size_t len;

	if (line[0] != '.' || strncmp(line + 1, ENTRY, strlen(ENTRY)) != 0)
		return NULL;
	line += 1 + strlen(ENTRY);
	len = strcspn(line, " \t");
	return len ? bf_xstrndup(line, len) : NULL;
}

static bool has_entry(char **lines, size_t n, const char *key)
{
	bool found = false;

	for (size_t i = 0; i < n && !found; i++) {
		char *k = entry_key(lines[i]);

		found = k && strcmp(k, key) == 0;
		free(k);
	}
	return found;
}

static bool is_key(const char *name)
{
	char buf[128];

	for (size_t i = 0; bf_config_key_name(i, buf, sizeof(buf)); i++)
		if (strcmp(buf, name) == 0)
			return true;
	return false;
}

START_TEST(test_key_names)
{
	char buf[128];
	size_t n = 0;
	bool lag = false, nested = false, top = false;

	/* the tables as the page expects them: top-level, nested with a dot, no empty name */
	for (; bf_config_key_name(n, buf, sizeof(buf)); n++) {
		ck_assert_msg(buf[0] != '\0', "key %zu has no name", n);
		lag = lag || strcmp(buf, "lag") == 0;
		nested = nested || strcmp(buf, "lag.max_replay_bytes") == 0;
		top = top || strcmp(buf, "control_schema") == 0;
	}
	ck_assert(lag && nested && top);
	ck_assert_ptr_null(bf_config_key_name(n, buf, sizeof(buf)));
	ck_assert_ptr_null(bf_config_key_name(n + 100, buf, sizeof(buf)));
	/* truncated to fit, still a string */
	ck_assert_ptr_nonnull(bf_config_key_name(1, buf, 4));
	ck_assert_uint_le(strlen(buf), 3);
}
END_TEST

START_TEST(test_every_key_has_an_entry)
{
	const char *path;
	size_t n, missing = 0;
	char **lines = read_page(&path, &n);
	bf_sbuf names = {0};
	char key[128];

	for (size_t i = 0; bf_config_key_name(i, key, sizeof(key)); i++) {
		if (has_entry(lines, n, key))
			continue;
		bf_sbuf_printf(&names, "%s%s", missing++ ? ", " : "", key);
	}
	ck_assert_msg(missing == 0,
	              "%s: no entry \".It Cm KEY\" for %zu key%s the parser accepts: %s", path,
	              missing, missing == 1 ? "" : "s", names.data);
	bf_sbuf_free(&names);
	free_page(lines, n);
}
END_TEST

START_TEST(test_every_entry_is_a_key)
{
	const char *path;
	size_t n, wrong = 0;
	char **lines = read_page(&path, &n);
	bf_sbuf names = {0};

	for (size_t i = 0; i < n; i++) {
		char *k = entry_key(lines[i]);

		if (k && !is_key(k))
			bf_sbuf_printf(&names, "%s%s (line %zu)", wrong++ ? ", " : "", k, i + 1);
		free(k);
	}
	ck_assert_msg(wrong == 0, "%s: entries for what the parser does not accept: %s", path,
	              names.data);
	bf_sbuf_free(&names);
	free_page(lines, n);
}
END_TEST

/* A line of a literal display as the reader sees it: "\&" is nothing, "\e" a backslash. */
static void append_literal(bf_sbuf *sb, const char *line)
{
	for (const char *p = line; *p; p++) {
		if (p[0] == '\\' && p[1] == '&') {
			p++;
		} else if (p[0] == '\\' && p[1] == 'e') {
			bf_sbuf_append(sb, "\\");
			p++;
		} else {
			bf_sbuf_appendn(sb, p, 1);
		}
	}
	bf_sbuf_append(sb, "\n");
}

START_TEST(test_first_example_loads)
{
	const char *path;
	size_t n, i = 0;
	char **lines = read_page(&path, &n);
	bf_sbuf yaml = {0};
	bf_config *cfg = NULL;
	bf_errors errs = {0};
	int rc;

	while (i < n && strcmp(lines[i], ".Sh EXAMPLES") != 0)
		i++;
	while (i < n && strncmp(lines[i], ".Bd -literal", 12) != 0)
		i++;
	ck_assert_msg(i < n, "%s: no literal display in EXAMPLES", path);
	for (i++; i < n && strcmp(lines[i], ".Ed") != 0; i++)
		if (strncmp(lines[i], "include:", 8) != 0)
			append_literal(&yaml, lines[i]);
	ck_assert_msg(i < n, "%s: the first example has no .Ed", path);
	rc = bf_config_parse_string("EXAMPLES", yaml.data, &cfg, &errs);
	ck_assert_msg(rc == 0, "%s: the first example does not load: %s", path,
	              errs.n ? errs.msgs[0] : "?");
	ck_assert_uint_ge(cfg->n_jobs, 1);
	bf_config_free(cfg);
	bf_errors_clear(&errs);
	bf_sbuf_free(&yaml);
	free_page(lines, n);
}
END_TEST

Suite *manpage_suite(void)
{
	Suite *s = suite_create("manpage");
	TCase *keys = tcase_create("config_keys");

	tcase_set_timeout(keys, 10);
	tcase_add_test(keys, test_key_names);
	tcase_add_test(keys, test_every_key_has_an_entry);
	tcase_add_test(keys, test_every_entry_is_a_key);
	tcase_add_test(keys, test_first_example_loads);
	suite_add_tcase(s, keys);
	return s;
}
