/*
 * log.c - logfmt and JSON lines on stderr.
 *
 * The rendering is pure (bf_log_render) so Check can test quoting and the logfmt-to-JSON
 * conversion; bf_log() adds the clock and the single write(2) per line, which keeps lines
 * whole when several processes share a journal stream.
 */
#include "backfilld/log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
	int min_level;
	enum bf_log_format format;
	bool journal;
} log_state = {BF_LOG_INFO, BF_LOG_TEXT, false};

/* syslog priorities for the journal's "<N>" prefix, by bf_log_level */
static const int journal_priority[] = {
	[BF_LOG_DEBUG] = 7,
	[BF_LOG_INFO] = 6,
	[BF_LOG_WARN] = 4,
	[BF_LOG_ERROR] = 3,
};

void bf_log_setup(int min_level, enum bf_log_format format, bool journal)
{
	log_state.min_level = min_level;
	log_state.format = format;
	log_state.journal = journal;
}

void bf_log_set_level(int min_level)
{
	log_state.min_level = min_level;
}

bool bf_log_enabled(int level)
{
	return level >= log_state.min_level;
}

static bool is_bare(const char *s)
{
	if (*s == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p >= 0x7f)
			return false;
	return true;
}

/* Append s quoted and escaped; the same escapes serve logfmt and JSON. */
static void append_quoted(bf_sbuf *sb, const char *s)
{
	bf_sbuf_append(sb, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			bf_sbuf_append(sb, "\\\"");
			break;
		case '\\':
			bf_sbuf_append(sb, "\\\\");
			break;
		case '\n':
			bf_sbuf_append(sb, "\\n");
			break;
		case '\t':
			bf_sbuf_append(sb, "\\t");
			break;
		case '\r':
			bf_sbuf_append(sb, "\\r");
			break;
		default:
			if (*p < 0x20)
				bf_sbuf_printf(sb, "\\u%04x", *p);
			else
				bf_sbuf_appendn(sb, (const char *)p, 1);
		}
	}
	bf_sbuf_append(sb, "\"");
}

const char *bf_log_q(char *buf, size_t len, const char *s)
{
	bf_sbuf sb = {0};

	if (len == 0)
		return buf;
	if (s == NULL)
		s = "";
	if (is_bare(s))
		bf_sbuf_append(&sb, s);
	else
		append_quoted(&sb, s);
	snprintf(buf, len, "%s", sb.data);
	bf_sbuf_free(&sb);
	return buf;
}

/* Read one logfmt pair from *p: key into `key`, value (unquoted, unescaped) into `val`.
 * Returns false at the end of the text. `quoted` tells whether the value was quoted, so
 * JSON keeps "007" a string. */
static bool next_pair(const char **p, bf_sbuf *key, bf_sbuf *val, bool *quoted)
{
	const char *s = *p;

	bf_sbuf_reset(key);
	bf_sbuf_reset(val);
	while (*s == ' ')
		s++;
	if (*s == '\0')
		return false;
	const char *k = s;
	while (*s && *s != '=' && *s != ' ')
		s++;
	bf_sbuf_appendn(key, k, (size_t)(s - k));
	*quoted = false;
	if (*s == '=') {
		s++;
		if (*s == '"') {
			*quoted = true;
			s++;
			while (*s && *s != '"') {
				if (*s == '\\' && s[1]) {
					s++;
					char c = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s == 'r' ? '\r' : *s;
					bf_sbuf_appendn(val, &c, 1);
				} else {
					bf_sbuf_appendn(val, s, 1);
				}
				s++;
			}
			if (*s == '"')
				s++;
		} else {
			const char *v = s;
			while (*s && *s != ' ')
				s++;
			bf_sbuf_appendn(val, v, (size_t)(s - v));
		}
	}
	*p = s;
	return true;
}

/* A JSON number exactly as logfmt wrote it: -?digits(.digits)? with no leading zero. */
static bool is_json_number(const char *s)
{
	const char *p = s;

	if (*p == '-')
		p++;
	if (!isdigit((unsigned char)*p) || (*p == '0' && isdigit((unsigned char)p[1])))
		return false;
	while (isdigit((unsigned char)*p))
		p++;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return *p == '\0';
}

static void format_time(int64_t ts_ms, char *buf, size_t len)
{
	time_t secs = (time_t)(ts_ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03dZ", (int)(ts_ms % 1000));
}

char *bf_log_render(enum bf_log_format format, bool journal, int64_t ts_ms, int level,
		    const char *job, const char *msg, const char *kvs)
{
	bf_sbuf sb = {0};
	char ts[40];
	const char *lvl = bf_log_level_name(level);

	if (journal)
		bf_sbuf_printf(&sb, "<%d>", journal_priority[level]);
	format_time(ts_ms, ts, sizeof(ts));
	if (format == BF_LOG_JSON) {
		bf_sbuf key = {0}, val = {0};
		bool quoted;
		const char *p = kvs ? kvs : "";

		bf_sbuf_append(&sb, "{");
		if (!journal)
			bf_sbuf_printf(&sb, "\"ts\":\"%s\",", ts);
		bf_sbuf_printf(&sb, "\"level\":\"%s\"", lvl);
		if (job) {
			bf_sbuf_append(&sb, ",\"job\":");
			append_quoted(&sb, job);
		}
		bf_sbuf_append(&sb, ",\"msg\":");
		append_quoted(&sb, msg);
		while (next_pair(&p, &key, &val, &quoted)) {
			bf_sbuf_append(&sb, ",");
			append_quoted(&sb, key.data);
			bf_sbuf_append(&sb, ":");
			if (!quoted && val.data && is_json_number(val.data))
				bf_sbuf_append(&sb, val.data);
			else
				append_quoted(&sb, val.data ? val.data : "");
		}
		bf_sbuf_append(&sb, "}\n");
		bf_sbuf_free(&key);
		bf_sbuf_free(&val);
	} else {
		char q[1024];

		if (!journal)
			bf_sbuf_printf(&sb, "ts=%s ", ts);
		bf_sbuf_printf(&sb, "level=%s", lvl);
		if (job)
			bf_sbuf_printf(&sb, " job=%s", bf_log_q(q, sizeof(q), job));
		bf_sbuf_printf(&sb, " msg=%s", bf_log_q(q, sizeof(q), msg));
		if (kvs && *kvs)
			bf_sbuf_printf(&sb, " %s", kvs);
		bf_sbuf_append(&sb, "\n");
	}
	return bf_sbuf_steal(&sb);
}

void bf_log(int level, const char *job, const char *msg, const char *kvfmt, ...)
{
	bf_sbuf kvs = {0};

	if (!bf_log_enabled(level))
		return;
	if (kvfmt) {
		va_list ap;
		va_start(ap, kvfmt);
		bf_sbuf_vprintf(&kvs, kvfmt, ap);
		va_end(ap);
	}
	char *line = bf_log_render(log_state.format, log_state.journal, bf_now_ms(), level, job,
				   msg, kvs.data);
	size_t len = strlen(line);
	/* One write per line; a short write to a pipe of a crashed reader is not worth a retry. */
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
	free(line);
	bf_sbuf_free(&kvs);
}
