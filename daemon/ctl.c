/*
 * ctl.c - backfillctl's output as text: the status table, progress bars, logfmt lines and
 * JSON values (contracts in ctl.h).
 *
 * The table is built in two steps, cells then lines, because a column's width is its widest
 * cell. Numbers are right-aligned, words left-aligned, and the reason goes last unpadded:
 * it is free text ("replay lag 80MB > 64MB") of any length.
 */
#include "backfilld/ctl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfilld/units.h"

/* PostgreSQL type OIDs (catalog/pg_type.dat): stable since they were assigned. */
enum {
	OID_BOOL = 16,
	OID_INT8 = 20,
	OID_INT2 = 21,
	OID_INT4 = 23,
	OID_OID = 26,
	OID_FLOAT4 = 700,
	OID_FLOAT8 = 701,
	OID_NUMERIC = 1700,
};

/* ---- the table ---- */

enum col { C_NAME, C_STATE, C_ROWS, C_DONE, C_RATE, C_ETA, C_BATCH, C_BACKUP, C_REASON, N_COLS };

static const struct column {
	const char *title;
	bool right; /* right-aligned (numbers) */
} columns[N_COLS] = {
        [C_NAME] = {.title = "NAME"},
        [C_STATE] = {.title = "STATE"},
        [C_ROWS] = {.title = "ROWS DONE/ESTIMATE", .right = true},
        [C_DONE] = {.title = "DONE", .right = true},
        [C_RATE] = {.title = "ROWS/S", .right = true},
        [C_ETA] = {.title = "ETA", .right = true},
        [C_BATCH] = {.title = "BATCH", .right = true},
        [C_BACKUP] = {.title = "BACKUP", .right = true},
        [C_REASON] = {.title = "REASON"},
};

/* The cells of one line: text borrowed from the job or written into buf. */
struct line {
	const char *cell[N_COLS];
	char rows[48], done[160], rate[32], eta[32], batch[32], backup[32];
};

static void format_rate(double rate, char *buf, size_t len)
{
	if (rate < 0)
		snprintf(buf, len, "-");
	else if (rate >= 100)
		snprintf(buf, len, "%.0f", rate);
	else
		snprintf(buf, len, "%.1f", rate);
}

static void format_eta(int64_t eta_ms, char *buf, size_t len)
{
	if (eta_ms < 0)
		snprintf(buf, len, "-");
	else if (eta_ms < 1000)
		snprintf(buf, len, "0s"); /* the view rounds to seconds: "0ms" would look odd */
	else
		bf_units_format_duration(eta_ms, buf, len);
}

static void fill_line(struct line *l, const bf_ctl_job *j, int bar_width)
{
	bf_sbuf bar = {0};

	l->cell[C_NAME] = j->name ? j->name : "";
	l->cell[C_STATE] = j->state ? j->state : "";
	if (j->rows_estimate >= 0)
		snprintf(l->rows, sizeof(l->rows), "%lld/%lld", (long long)j->rows_done,
		         (long long)j->rows_estimate);
	else
		snprintf(l->rows, sizeof(l->rows), "%lld/-", (long long)j->rows_done);
	if (bar_width > 0) {
		bf_ctl_format_bar(&bar, j->percent, bar_width);
		snprintf(l->done, sizeof(l->done), "%s %5.1f%%", bar.data, j->percent);
		bf_sbuf_free(&bar);
	} else {
		snprintf(l->done, sizeof(l->done), "%.1f%%", j->percent);
	}
	format_rate(j->rate, l->rate, sizeof(l->rate));
	format_eta(j->eta_ms, l->eta, sizeof(l->eta));
	if (j->batch_size >= 0)
		snprintf(l->batch, sizeof(l->batch), "%lld", (long long)j->batch_size);
	else
		snprintf(l->batch, sizeof(l->batch), "-");
	l->cell[C_ROWS] = l->rows;
	l->cell[C_DONE] = l->done;
	l->cell[C_RATE] = l->rate;
	l->cell[C_ETA] = l->eta;
	if (j->backup_bytes > 0)
		bf_units_format_size(j->backup_bytes, l->backup, sizeof(l->backup));
	else
		snprintf(l->backup, sizeof(l->backup), "-");
	l->cell[C_BATCH] = l->batch;
	l->cell[C_BACKUP] = l->backup;
	l->cell[C_REASON] = j->reason ? j->reason : "";
}

static void pad(bf_sbuf *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bf_sbuf_append(out, " ");
}

/* A cell on one line: a control character (a reason's newline or tab) becomes a space. */
static void append_flat(bf_sbuf *out, const char *s)
{
	for (const char *p = s; *p; p++)
		bf_sbuf_appendn(out, iscntrl((unsigned char)*p) ? " " : p, 1);
}

/* One line of cells, padded to widths, without trailing blanks; a column of width 0 is left
 * out. */
static void emit_line(bf_sbuf *out, const char *const *cell, const size_t *width)
{
	size_t start = out->len;

	for (int c = 0; c < N_COLS; c++) {
		size_t len = strlen(cell[c]);

		if (width[c] == 0)
			continue;
		if (c > 0)
			bf_sbuf_append(out, "  ");
		if (columns[c].right)
			pad(out, width[c] - len);
		append_flat(out, cell[c]);
		if (!columns[c].right && c < N_COLS - 1)
			pad(out, width[c] - len);
	}
	while (out->len > start && out->data[out->len - 1] == ' ')
		out->data[--out->len] = '\0';
	bf_sbuf_append(out, "\n");
}

void bf_ctl_format_table(bf_sbuf *out, const bf_ctl_job *jobs, size_t n, int bar_width)
{
	const char *titles[N_COLS];
	size_t width[N_COLS];
	struct line *lines = n ? bf_xcalloc(n, sizeof(*lines)) : NULL;
	bool backups = false;

	for (int c = 0; c < N_COLS; c++) {
		titles[c] = columns[c].title;
		width[c] = strlen(titles[c]);
	}
	for (size_t i = 0; i < n; i++) {
		fill_line(&lines[i], &jobs[i], bar_width);
		backups |= jobs[i].backup_bytes > 0;
		for (int c = 0; c < N_COLS; c++) {
			size_t len = strlen(lines[i].cell[c]);
			if (len > width[c])
				width[c] = len;
		}
	}
	if (!backups)
		width[C_BACKUP] = 0; /* shown when some job keeps a backup */
	emit_line(out, titles, width);
	for (size_t i = 0; i < n; i++)
		emit_line(out, lines[i].cell, width);
	if (n == 0)
		bf_sbuf_append(out, "(no jobs)\n");
	free(lines);
}

void bf_ctl_format_bar(bf_sbuf *out, double percent, int width)
{
	int filled;

	if (width <= 0)
		return;
	if (!(percent > 0)) /* also NaN */
		percent = 0;
	if (percent > 100)
		percent = 100;
	filled = (int)(percent * width / 100.0);
	bf_sbuf_append(out, "[");
	for (int i = 0; i < width; i++)
		bf_sbuf_append(out, i < filled ? "#" : ".");
	bf_sbuf_append(out, "]");
}

/* ---- logfmt lines ---- */

void bf_ctl_logfmt_value(bf_sbuf *out, const char *value)
{
	bool bare = value[0] != '\0';

	for (const char *p = value; *p && bare; p++)
		if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || iscntrl((unsigned char)*p))
			bare = false;
	if (bare) {
		bf_sbuf_append(out, value);
		return;
	}
	bf_sbuf_append(out, "\"");
	for (const char *p = value; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch == '"' || ch == '\\')
			bf_sbuf_printf(out, "\\%c", ch);
		else if (ch == '\n')
			bf_sbuf_append(out, "\\n");
		else if (ch == '\t')
			bf_sbuf_append(out, "\\t");
		else if (ch == '\r')
			bf_sbuf_append(out, "\\r");
		else if (iscntrl(ch))
			bf_sbuf_printf(out, "\\x%02x", ch);
		else
			bf_sbuf_appendn(out, p, 1);
	}
	bf_sbuf_append(out, "\"");
}

static void field(bf_sbuf *out, bool *first, const char *key, const char *value)
{
	if (!*first)
		bf_sbuf_append(out, " ");
	*first = false;
	bf_sbuf_printf(out, "%s=", key);
	bf_ctl_logfmt_value(out, value);
}

void bf_ctl_format_line(bf_sbuf *out, const char *time, const bf_ctl_job *j)
{
	char buf[48];
	bool first = true;

	if (time)
		field(out, &first, "time", time);
	field(out, &first, "job", j->name ? j->name : "");
	field(out, &first, "state", j->state ? j->state : "");
	snprintf(buf, sizeof(buf), "%lld", (long long)j->rows_done);
	field(out, &first, "rows", buf);
	if (j->rows_estimate >= 0) {
		snprintf(buf, sizeof(buf), "%lld", (long long)j->rows_estimate);
		field(out, &first, "estimate", buf);
	}
	snprintf(buf, sizeof(buf), "%.1f", j->percent);
	field(out, &first, "percent", buf);
	if (j->rate >= 0) {
		format_rate(j->rate, buf, sizeof(buf));
		field(out, &first, "rate", buf);
	}
	if (j->eta_ms >= 0) {
		format_eta(j->eta_ms, buf, sizeof(buf));
		field(out, &first, "eta", buf);
	}
	if (j->batch_size >= 0) {
		snprintf(buf, sizeof(buf), "%lld", (long long)j->batch_size);
		field(out, &first, "batch", buf);
	}
	if (j->backup_bytes > 0) {
		snprintf(buf, sizeof(buf), "%lld", (long long)j->backup_bytes);
		field(out, &first, "backup_bytes", buf);
	}
	if (j->reason && j->reason[0])
		field(out, &first, "reason", j->reason);
	bf_sbuf_append(out, "\n");
}

/* ---- JSON ---- */

bf_ctl_json_kind bf_ctl_json_kind_of(unsigned type_oid)
{
	switch (type_oid) {
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
	case OID_OID:
	case OID_FLOAT4:
	case OID_FLOAT8:
	case OID_NUMERIC:
		return BF_CTL_JSON_NUMBER;
	case OID_BOOL:
		return BF_CTL_JSON_BOOL;
	default:
		return BF_CTL_JSON_STRING;
	}
}

static const char *digits(const char *p)
{
	while (*p >= '0' && *p <= '9')
		p++;
	return p;
}

bool bf_ctl_json_is_number(const char *text)
{
	const char *p = text, *q;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		p = digits(p);
	else
		return false;
	if (*p == '.') {
		q = digits(p + 1);
		if (q == p + 1)
			return false;
		p = q;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		q = digits(p);
		if (q == p)
			return false;
		p = q;
	}
	return *p == '\0';
}

void bf_ctl_json_string(bf_sbuf *out, const char *s)
{
	const char *run = s;

	bf_sbuf_append(out, "\"");
	for (const char *p = s; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		const char *esc = NULL;

		switch (ch) {
		case '"':
			esc = "\\\"";
			break;
		case '\\':
			esc = "\\\\";
			break;
		case '\n':
			esc = "\\n";
			break;
		case '\r':
			esc = "\\r";
			break;
		case '\t':
			esc = "\\t";
			break;
		case '\b':
			esc = "\\b";
			break;
		case '\f':
			esc = "\\f";
			break;
		default:
			if (ch >= 0x20)
				continue;
		}
		bf_sbuf_appendn(out, run, (size_t)(p - run));
		if (esc)
			bf_sbuf_append(out, esc);
		else
			bf_sbuf_printf(out, "\\u%04x", ch);
		run = p + 1;
	}
	bf_sbuf_append(out, run);
	bf_sbuf_append(out, "\"");
}

void bf_ctl_json_value(bf_sbuf *out, bf_ctl_json_kind kind, const char *text)
{
	if (text == NULL) {
		bf_sbuf_append(out, "null");
		return;
	}
	switch (kind) {
	case BF_CTL_JSON_NUMBER:
		if (bf_ctl_json_is_number(text)) {
			bf_sbuf_append(out, text);
			return;
		}
		break; /* NaN, Infinity: a string says what it is */
	case BF_CTL_JSON_BOOL:
		if (strcmp(text, "t") == 0 || strcmp(text, "f") == 0) {
			bf_sbuf_append(out, text[0] == 't' ? "true" : "false");
			return;
		}
		break;
	case BF_CTL_JSON_STRING:
	default:
		break;
	}
	bf_ctl_json_string(out, text);
}

void bf_ctl_json_object(bf_sbuf *out, size_t n, const char *const *names,
                        const bf_ctl_json_kind *kinds, const char *const *values, bool pretty)
{
	bf_sbuf_append(out, "{");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			bf_sbuf_append(out, pretty ? ", " : ",");
		bf_ctl_json_string(out, names[i]);
		bf_sbuf_append(out, pretty ? ": " : ":");
		bf_ctl_json_value(out, kinds[i], values[i]);
	}
	bf_sbuf_append(out, "}");
}
