/*
 * util.c - checked allocation, string buffers, error lists, clocks, hashing.
 *
 * The helpers every other module leans on. Allocation failure aborts (see util.h): the
 * daemon's memory is a few kilobytes per job, so running out means the machine is already lost.
 */
#include "backfilld/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void out_of_memory(size_t n)
{
	fprintf(stderr, "level=error msg=\"out of memory\" bytes=%zu\n", n);
	abort();
}

void *bf_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		out_of_memory(n);
	return p;
}

void *bf_xcalloc(size_t count, size_t n)
{
	void *p = calloc(count ? count : 1, n ? n : 1);

	if (p == NULL)
		out_of_memory(count * n);
	return p;
}

void *bf_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		out_of_memory(n);
	return q;
}

bool bf_streq_opt(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

char *bf_xstrdup(const char *s)
{
	return bf_xstrndup(s, strlen(s));
}

char *bf_xstrndup(const char *s, size_t n)
{
	char *p = bf_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *bf_xasprintf(const char *fmt, ...)
{
	bf_sbuf sb = {0};
	va_list ap;

	va_start(ap, fmt);
	bf_sbuf_vprintf(&sb, fmt, ap);
	va_end(ap);
	return bf_sbuf_steal(&sb);
}

/* Room for `extra` more bytes and the NUL: afterwards sb->data is never NULL. */
static void sbuf_reserve(bf_sbuf *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;

	if (sb->data != NULL && need <= sb->cap)
		return;
	size_t cap = sb->cap ? sb->cap : 64;
	while (cap < need)
		cap *= 2;
	sb->data = bf_xrealloc(sb->data, cap);
	sb->cap = cap;
}

void bf_sbuf_appendn(bf_sbuf *sb, const char *s, size_t n)
{
	sbuf_reserve(sb, n);
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

void bf_sbuf_append(bf_sbuf *sb, const char *s)
{
	bf_sbuf_appendn(sb, s, strlen(s));
}

void bf_sbuf_vprintf(bf_sbuf *sb, const char *fmt, va_list ap)
{
	va_list copy;

	va_copy(copy, ap);
	/* the analyzer does not model va_copy from a parameter: `copy` is initialized above */
	int n = vsnprintf(NULL, 0, fmt, copy); // NOLINT(clang-analyzer-valist.Uninitialized)
	va_end(copy);
	if (n < 0)
		return;
	sbuf_reserve(sb, (size_t)n);
	vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
}

void bf_sbuf_printf(bf_sbuf *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	bf_sbuf_vprintf(sb, fmt, ap);
	va_end(ap);
}

void bf_sbuf_reset(bf_sbuf *sb)
{
	sb->len = 0;
	if (sb->data)
		sb->data[0] = '\0';
}

char *bf_sbuf_steal(bf_sbuf *sb)
{
	char *s = sb->data ? sb->data : bf_xstrdup("");

	sb->data = NULL;
	sb->len = sb->cap = 0;
	return s;
}

void bf_sbuf_free(bf_sbuf *sb)
{
	free(sb->data);
	sb->data = NULL;
	sb->len = sb->cap = 0;
}

void bf_errors_add(bf_errors *e, const char *fmt, ...)
{
	bf_sbuf sb = {0};
	va_list ap;

	va_start(ap, fmt);
	bf_sbuf_vprintf(&sb, fmt, ap);
	va_end(ap);
	e->msgs = bf_xrealloc(e->msgs, (e->n + 1) * sizeof(*e->msgs));
	e->msgs[e->n++] = bf_sbuf_steal(&sb);
}

void bf_errors_clear(bf_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->msgs[i]);
	free(e->msgs);
	e->msgs = NULL;
	e->n = 0;
}

char *bf_errors_join(const bf_errors *e)
{
	bf_sbuf sb = {0};

	for (size_t i = 0; i < e->n; i++) {
		if (i)
			bf_sbuf_append(&sb, "\n");
		bf_sbuf_append(&sb, e->msgs[i]);
	}
	return bf_sbuf_steal(&sb);
}

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bf_now_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

int64_t bf_mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

uint64_t bf_fnv1a64(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = seed ? seed : 14695981039346656037ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* The end of a conninfo value starting at v: a quoted one ends after its closing quote. */
static const char *value_end(const char *v)
{
	if (*v == '\'') {
		for (v++; *v && *v != '\''; v++)
			if (*v == '\\' && v[1])
				v++;
		return *v ? v + 1 : v;
	}
	while (*v && *v != ' ' && *v != '\t' && *v != '\n' && *v != '"')
		v++;
	return v;
}

char *bf_masked(const char *s)
{
	static const char token[] = "percent-encoded token: \"";
	bf_sbuf sb = {0};

	for (const char *p = s; *p;) {
		const char *from = NULL, *to = NULL;

		if (strncmp(p, "://", 3) == 0) {
			/* user:password@ up to the first '@' before any '/' */
			const char *end = p + 3 + strcspn(p + 3, "@/ \"");
			const char *colon = memchr(p + 3, ':', (size_t)(end - p - 3));

			if (*end == '@' && colon) {
				from = colon + 1;
				to = end;
			}
		} else if (strncmp(p, "password=", 9) == 0 &&
		           (p == s || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'))) {
			from = p + 9;
			to = value_end(from);
		} else if (strncmp(p, token, sizeof(token) - 1) == 0) {
			from = p + sizeof(token) - 1;
			to = from + strcspn(from, "\"");
		}
		if (from == NULL) {
			bf_sbuf_appendn(&sb, p++, 1);
			continue;
		}
		bf_sbuf_appendn(&sb, p, (size_t)(from - p));
		bf_sbuf_append(&sb, "***");
		p = to;
	}
	return sb.data ? bf_sbuf_steal(&sb) : bf_xstrdup("");
}

int64_t bf_backoff_ms(int64_t attempt, int64_t min_ms, int64_t max_ms)
{
	int64_t ms = min_ms;

	for (int64_t i = 1; i < attempt && ms < max_ms; i++)
		ms *= 2;
	return ms < max_ms ? ms : max_ms;
}

void bf_strv_free(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

char **bf_strv_copy(char *const *v, size_t n)
{
	char **c;

	if (v == NULL)
		return NULL;
	c = bf_xcalloc(n, sizeof(*c));
	for (size_t i = 0; i < n; i++)
		c[i] = bf_xstrdup(v[i]);
	return c;
}

char *bf_strv_literal(char *const *v, size_t n)
{
	bf_sbuf sb = {0};

	bf_sbuf_append(&sb, "{");
	for (size_t i = 0; i < n; i++) {
		bf_sbuf_append(&sb, i ? ",\"" : "\"");
		for (const char *p = v[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				bf_sbuf_append(&sb, "\\");
			bf_sbuf_appendn(&sb, p, 1);
		}
		bf_sbuf_append(&sb, "\"");
	}
	bf_sbuf_append(&sb, "}");
	return bf_sbuf_steal(&sb);
}
