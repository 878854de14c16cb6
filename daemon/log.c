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

const char *bf_log_level_name(int level)
{
	static const char *const names[] = {
	        [BF_LOG_DEBUG] = "debug",
	        [BF_LOG_INFO] = "info",
	        [BF_LOG_WARN] = "warn",
	        [BF_LOG_ERROR] = "error",
	};

	return level >= 0 && (size_t)level < BF_ARRAY_LEN(names) ? names[level] : "unknown";
}

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

/* Append s as a logfmt value: bare when it can be, else quoted. */
static void append_value(bf_sbuf *sb, const char *s)
{
	if (s == NULL)
		s = "";
	if (is_bare(s))
		bf_sbuf_append(sb, s);
	else
		append_quoted(sb, s);
}

const char *bf_log_q(char *buf, size_t len, const char *s)
{
	bf_sbuf sb = {0};

	if (len == 0)
		return buf;
	append_value(&sb, s);
	if (sb.len < len || len < 8) {
		snprintf(buf, len, "%s", sb.data);
	} else {
		/* too long: cut it between two escapes, say so, and close the quote it opened,
		 * so that the line still parses */
		bool quoted = sb.data[0] == '"';
		size_t keep = quoted, room = len - (quoted ? 5 : 4); /* "...", quote, NUL */

		for (size_t i = quoted; i < sb.len;) {
			size_t step = sb.data[i] != '\\' ? 1 : sb.data[i + 1] == 'u' ? 6 : 2;

			if (i + step > room)
				break;
			i += step;
			keep = i;
		}
		snprintf(buf, len, "%.*s...%s", (int)keep, sb.data, quoted ? "\"" : "");
	}
	bf_sbuf_free(&sb);
	return buf;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes the four hex digits of a "\u" escape at s into UTF-8 in val. Returns false, writing
 * nothing, when s does not start with four hex digits. */
static bool append_unicode(bf_sbuf *val, const char *s)
{
	unsigned cp = 0;
	char out[3];
	size_t n;

	for (int i = 0; i < 4; i++) {
		int d = hex_digit(s[i]);
		if (d < 0)
			return false;
		cp = cp * 16 + (unsigned)d;
	}
	if (cp < 0x80) {
		out[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	}
	bf_sbuf_appendn(val, out, n);
	return true;
}

/* The character a logfmt backslash escape stands for ("n" for a newline). */
static char unescape(char c)
{
	switch (c) {
	case 'n':
		return '\n';
	case 't':
		return '\t';
	case 'r':
		return '\r';
	default:
		return c;
	}
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
				if (*s == '\\' && s[1] == 'u' && append_unicode(val, s + 2)) {
					/* the \u0001 that bf_log_q writes for a control byte */
					s += 5;
				} else if (*s == '\\' && s[1]) {
					s++;
					char c = unescape(*s);
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
	/* floor division, so a time before 1970 still has milliseconds 0..999 */
	int64_t ms = ts_ms % 1000;
	if (ms < 0)
		ms += 1000;
	time_t secs = (time_t)((ts_ms - ms) / 1000);
	struct tm tm;

	if (gmtime_r(&secs, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03dZ", (int)ms);
}

char *bf_log_render(enum bf_log_format format, bool journal, int64_t ts_ms, int level,
                    const char *job, const char *msg, const char *kvs)
{
	bf_sbuf sb = {0};
	char ts[40];
	const char *lvl = bf_log_level_name(level);

	if (level < BF_LOG_DEBUG)
		level = BF_LOG_DEBUG;
	if (level > BF_LOG_ERROR)
		level = BF_LOG_ERROR;
	if (msg == NULL)
		msg = "";
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
		if (!journal)
			bf_sbuf_printf(&sb, "ts=%s ", ts);
		bf_sbuf_printf(&sb, "level=%s", lvl);
		if (job) {
			bf_sbuf_append(&sb, " job=");
			append_value(&sb, job);
		}
		/* appended whole: a fixed buffer would cut a long message and its closing quote */
		bf_sbuf_append(&sb, " msg=");
		append_value(&sb, msg);
		if (kvs && *kvs)
			bf_sbuf_printf(&sb, " %s", kvs);
		bf_sbuf_append(&sb, "\n");
	}
	return bf_sbuf_steal(&sb);
}

static uint64_t key_hash(const char *job, const char *msg)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (const char *p = job ? job : ""; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ 0xffU) * 1099511628211ULL;
	for (const char *p = msg; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h ? h : 1;
}

bool bf_log_limit_pass(bf_log_limiter *l, const char *job, const char *msg, int64_t now_ms,
                       int64_t *suppressed)
{
	uint64_t key = key_hash(job, msg);
	size_t i = BF_LOG_LIMIT_KEYS, oldest = key % BF_LOG_LIMIT_KEYS;

	/* its slot, else a free one, else the one idle the longest (its count is lost: it has
	 * been quiet for the longest, so it is the least likely to be flooding) */
	for (size_t k = 0; k < BF_LOG_LIMIT_KEYS && i == BF_LOG_LIMIT_KEYS; k++) {
		size_t at = (key + k) % BF_LOG_LIMIT_KEYS;

		if (l->slot[at].key == key || l->slot[at].key == 0)
			i = at;
		else if (l->slot[at].window_ms < l->slot[oldest].window_ms)
			oldest = at;
	}
	if (i == BF_LOG_LIMIT_KEYS)
		i = oldest;
	if (l->slot[i].key != key) {
		l->slot[i].key = key;
		l->slot[i].window_ms = now_ms;
		l->slot[i].count = 0;
		l->slot[i].suppressed = 0;
	}
	if (now_ms - l->slot[i].window_ms >= 1000) {
		l->slot[i].window_ms = now_ms;
		l->slot[i].count = 0;
	}
	if (l->slot[i].count >= BF_LOG_BURST) {
		l->slot[i].suppressed++;
		return false;
	}
	l->slot[i].count++;
	*suppressed = l->slot[i].suppressed;
	l->slot[i].suppressed = 0;
	return true;
}

void bf_log(int level, const char *job, const char *msg, const char *kvfmt, ...)
{
	static bf_log_limiter limiter;
	bf_sbuf kvs = {0};
	int64_t suppressed = 0;

	if (!bf_log_enabled(level) ||
	    !bf_log_limit_pass(&limiter, job, msg, bf_mono_ms(), &suppressed))
		return;
	if (kvfmt) {
		va_list ap;
		va_start(ap, kvfmt);
		bf_sbuf_vprintf(&kvs, kvfmt, ap);
		va_end(ap);
	}
	if (suppressed > 0)
		bf_sbuf_printf(&kvs, "%ssuppressed=%lld", kvs.len ? " " : "",
		               (long long)suppressed);
	char *line = bf_log_render(log_state.format, log_state.journal, bf_now_ms(), level, job,
	                           msg, kvs.data);
	size_t len = strlen(line);
	/* One write per line; a short write to a pipe of a crashed reader is not worth a retry. */
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
	free(line);
	bf_sbuf_free(&kvs);
}
