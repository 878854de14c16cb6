/*
 * metrics.c - the Prometheus endpoint (see metrics.h for the promises).
 *
 * One ev_io on the listening socket; each accepted connection is a small state machine with
 * its own ev_io and timeout: reading the request head, then writing the answer, then closed.
 * The answer is built when the head is complete, so a scrape sees the jobs as they are then.
 */
#include "backfilld/metrics.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backfilld/log.h"
#include "backfilld/util.h"
#include "backfilld/version.h"

/* ---- the exposition text (pure) ---- */

const int64_t bf_metrics_bucket_ms[BF_METRICS_N_BUCKETS] = {5,   10,   25,   50,   100,   250,
                                                            500, 1000, 2500, 5000, 10000, 30000};

static const char *const error_names[] = {
        [BF_ERR_LOCK_TIMEOUT] = "lock_timeout",
        [BF_ERR_STATEMENT_TIMEOUT] = "statement_timeout",
        [BF_ERR_CONFLICT] = "conflict",
        [BF_ERR_CONNECTION] = "connection",
        [BF_ERR_OTHER] = "other",
};

bf_error_class bf_metrics_error_class(const char *sqlstate)
{
	if (sqlstate == NULL)
		return BF_ERR_OTHER;
	if (strcmp(sqlstate, "55P03") == 0)
		return BF_ERR_LOCK_TIMEOUT;
	if (strcmp(sqlstate, "57014") == 0)
		return BF_ERR_STATEMENT_TIMEOUT;
	if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0)
		return BF_ERR_CONFLICT;
	/* class 08: connection exception; 57P01-57P03: the server shuts down or starts */
	if (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57P0", 4) == 0)
		return BF_ERR_CONNECTION;
	return BF_ERR_OTHER;
}

void bf_job_counts_batch(bf_job_counts *c, int64_t ms)
{
	size_t b = 0;

	while (b < BF_METRICS_N_BUCKETS && ms > bf_metrics_bucket_ms[b])
		b++;
	if (b < BF_METRICS_N_BUCKETS)
		c->buckets[b]++;
	c->batches++;
	c->batch_ms_sum += ms;
}

enum mvalue {
	MV_ROWS_DONE,
	MV_BATCHES,
	MV_ROWS_ESTIMATE,
	MV_RATE,
	MV_BATCH,
	MV_LAST_BATCH,
	MV_PASS,
	MV_PACE,
	MV_COMMIT,
	MV_BACKUP,
	MV_UNDO_ROWS,
	MV_UNDO_SKIPPED,
};

/* The families with one series per job. */
static const struct metric {
	const char *name;
	const char *type;
	const char *help;
	enum mvalue value;
} metrics[] = {
        {.name = "backfilld_rows_done_total",
         .type = "counter",
         .help = "Rows the job has updated, all passes (the control table's rows_done).",
         .value = MV_ROWS_DONE},
        {.name = "backfilld_batches_total",
         .type = "counter",
         .help = "Batches the job committed since the daemon started.",
         .value = MV_BATCHES},
        {.name = "backfilld_rows_estimate",
         .type = "gauge",
         .help = "Rows the job expects to update (the planner's estimate, at least rows_done).",
         .value = MV_ROWS_ESTIMATE},
        {.name = "backfilld_rows_per_second",
         .type = "gauge",
         .help = "Rows updated per second over the last minute.",
         .value = MV_RATE},
        {.name = "backfilld_batch_size",
         .type = "gauge",
         .help = "Keys per batch now (adapted toward target_batch_time).",
         .value = MV_BATCH},
        {.name = "backfilld_last_batch_seconds",
         .type = "gauge",
         .help = "How long the last batch took, round trip included.",
         .value = MV_LAST_BATCH},
        {.name = "backfilld_pass",
         .type = "gauge",
         .help = "The pass the job is in (sweep passes come back for rows others held).",
         .value = MV_PASS},
        {.name = "backfilld_pace_ratio",
         .type = "gauge",
         .help = "Share of the time the job may spend in batches (1: full pace; lower while "
                 "commits on its server are over max_commit_latency).",
         .value = MV_PACE},
        {.name = "backfilld_commit_latency_seconds",
         .type = "gauge",
         .help = "p90 of the last commit probes on the job's server (0: none yet, or off).",
         .value = MV_COMMIT},
        {.name = "backfilld_backup_bytes",
         .type = "gauge",
         .help = "Size of the job's backup table, indexes included, as its last batch read it "
                 "(0: no backup).",
         .value = MV_BACKUP},
        {.name = "backfilld_undo_rows",
         .type = "gauge",
         .help = "Rows backfillctl undo has put back.",
         .value = MV_UNDO_ROWS},
        {.name = "backfilld_undo_skipped_rows",
         .type = "gauge",
         .help = "Rows backfillctl undo left as they are: the application changed them since "
                 "the job wrote them.",
         .value = MV_UNDO_SKIPPED},
};

static double value_of(const bf_job_figures *f, enum mvalue v)
{
	switch (v) {
	case MV_ROWS_DONE:
		return (double)f->rows_done;
	case MV_BATCHES:
		return (double)f->counts.batches;
	case MV_ROWS_ESTIMATE:
		return (double)f->rows_estimate;
	case MV_RATE:
		return f->rows_per_second;
	case MV_BATCH:
		return (double)f->batch_size;
	case MV_LAST_BATCH:
		return (double)f->last_batch_ms / 1000.0;
	case MV_PASS:
		return (double)f->pass;
	case MV_PACE:
		return f->pace;
	case MV_COMMIT:
		return (double)f->commit_p90_us / 1e6;
	case MV_BACKUP:
		return (double)f->backup_bytes;
	case MV_UNDO_ROWS:
		return (double)f->undo_rows;
	case MV_UNDO_SKIPPED:
		return (double)f->undo_skipped;
	}
	return 0;
}

/* A label value as the text format wants it: \ " and newline escaped. */
static void label(bf_sbuf *sb, const char *v)
{
	bf_sbuf_append(sb, "\"");
	for (const char *c = v; *c; c++) {
		if (*c == '\\' || *c == '"')
			bf_sbuf_printf(sb, "\\%c", *c);
		else if (*c == '\n')
			bf_sbuf_append(sb, "\\n");
		else
			bf_sbuf_appendn(sb, c, 1);
	}
	bf_sbuf_append(sb, "\"");
}

static void family(bf_sbuf *sb, const char *name, const char *type, const char *help)
{
	bf_sbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* `name{key="value"` of a series: the caller adds further labels, `}` and the value. */
static void series(bf_sbuf *sb, const char *name, const char *key, const char *value)
{
	bf_sbuf_printf(sb, "%s{%s=", name, key);
	label(sb, value);
}

static void job_families(bf_sbuf *sb, const bf_job_figures *jobs, size_t n)
{
	for (size_t m = 0; m < BF_ARRAY_LEN(metrics); m++) {
		family(sb, metrics[m].name, metrics[m].type, metrics[m].help);
		for (size_t i = 0; i < n; i++) {
			series(sb, metrics[m].name, "job", jobs[i].name);
			bf_sbuf_printf(sb, "} %.17g\n", value_of(&jobs[i], metrics[m].value));
		}
	}
	family(sb, "backfilld_errors_total", "counter",
	       "Errors the job met since the daemon started, by class (each retried or fatal).");
	for (size_t i = 0; i < n; i++)
		for (int c = 0; c < BF_ERR_N; c++) {
			series(sb, "backfilld_errors_total", "job", jobs[i].name);
			bf_sbuf_printf(sb, ",class=\"%s\"} %lld\n", error_names[c],
			               (long long)jobs[i].counts.errors[c]);
		}
	family(sb, "backfilld_throttled_seconds_total", "counter",
	       "Time the job was held back since the daemon started, by reason (a job walked in "
	       "slices counts each slice's).");
	for (size_t i = 0; i < n; i++)
		for (int h = BF_HOLD_NONE + 1; h < BF_HOLD_N; h++) {
			series(sb, "backfilld_throttled_seconds_total", "job", jobs[i].name);
			bf_sbuf_printf(sb, ",reason=\"%s\"} %.3f\n", bf_hold_name((bf_hold)h),
			               (double)jobs[i].counts.held_ms[h] / 1000.0);
		}
	family(sb, "backfilld_batch_duration_seconds", "histogram",
	       "Round trip of each committed batch since the daemon started.");
	for (size_t i = 0; i < n; i++) {
		const bf_job_counts *c = &jobs[i].counts;
		int64_t below = 0;

		for (size_t b = 0; b < BF_METRICS_N_BUCKETS; b++) {
			below += c->buckets[b];
			series(sb, "backfilld_batch_duration_seconds_bucket", "job", jobs[i].name);
			bf_sbuf_printf(sb, ",le=\"%g\"} %lld\n",
			               (double)bf_metrics_bucket_ms[b] / 1000.0, (long long)below);
		}
		series(sb, "backfilld_batch_duration_seconds_bucket", "job", jobs[i].name);
		bf_sbuf_printf(sb, ",le=\"+Inf\"} %lld\n", (long long)c->batches);
		series(sb, "backfilld_batch_duration_seconds_sum", "job", jobs[i].name);
		bf_sbuf_printf(sb, "} %.3f\n", (double)c->batch_ms_sum / 1000.0);
		series(sb, "backfilld_batch_duration_seconds_count", "job", jobs[i].name);
		bf_sbuf_printf(sb, "} %lld\n", (long long)c->batches);
	}
	/* the state as a set of 0/1 series, so an alert can say state="failed" == 1 */
	family(sb, "backfilld_job_state", "gauge", "1 for the state the job is in.");
	for (size_t i = 0; i < n; i++)
		for (int s = BF_JOB_PENDING; s < BF_JOB_N_STATES; s++) {
			series(sb, "backfilld_job_state", "job", jobs[i].name);
			bf_sbuf_printf(sb, ",state=\"%s\"} %d\n",
			               bf_job_state_name((bf_job_state)s),
			               jobs[i].state == (bf_job_state)s);
		}
}

/* One series per name of the server's standbys or slots: `names[k]` with `values[k]` (a
 * negative value is NULL: left out). pg_stat_replication may list two walsenders with the
 * same application_name; one series per name keeps the page valid (the first, as the lag
 * decision reads them in order). */
static void named_gauges(bf_sbuf *sb, const char *metric, const char *label_name,
                         const char *database, const char *const *names, const int64_t *values,
                         size_t n)
{
	for (size_t k = 0; k < n; k++) {
		bool seen = false;

		for (size_t e = 0; e < k && !seen; e++)
			seen = strcmp(names[e], names[k]) == 0;
		if (values[k] < 0 || seen)
			continue;
		series(sb, metric, "database", database);
		bf_sbuf_printf(sb, ",%s=", label_name);
		label(sb, names[k]);
		bf_sbuf_printf(sb, "} %lld\n", (long long)values[k]);
	}
}

/* The standbys' replay lag (standbys true) or the slots' retained WAL of a readable sample. */
static void lag_gauges(bf_sbuf *sb, const char *database, const bf_lag_sample *s, bool standbys)
{
	size_t n = standbys ? s->n_standbys : s->n_slots;
	const char **names = bf_xcalloc(n ? n : 1, sizeof(*names));
	int64_t *values = bf_xcalloc(n ? n : 1, sizeof(*values));

	for (size_t k = 0; k < n; k++) {
		const char *name = standbys ? s->standbys[k].name : s->slots[k].name;

		names[k] = name ? name : "";
		values[k] = standbys ? s->standbys[k].replay_bytes : s->slots[k].retained_bytes;
	}
	if (standbys)
		named_gauges(sb, "backfilld_replay_lag_bytes", "standby", database, names, values,
		             n);
	else
		named_gauges(sb, "backfilld_slot_retained_bytes", "slot", database, names, values,
		             n);
	free(values);
	free(names);
}

static void server_families(bf_sbuf *sb, const bf_server_figures *sv, size_t n)
{
	family(sb, "backfilld_up", "gauge",
	       "1 while every connection the daemon keeps to the database is up.");
	for (size_t i = 0; i < n; i++) {
		series(sb, "backfilld_up", "database", sv[i].database);
		bf_sbuf_printf(sb, "} %d\n", sv[i].up);
	}
	family(sb, "backfilld_lag_probe_ok", "gauge",
	       "1 when the lag monitor's last probe of the server succeeded (0: jobs with lag "
	       "limits are throttled, fail closed).");
	for (size_t i = 0; i < n; i++)
		if (sv[i].lag) {
			series(sb, "backfilld_lag_probe_ok", "database", sv[i].database);
			bf_sbuf_printf(sb, "} %d\n", sv[i].lag->ok);
		}
	family(sb, "backfilld_replay_lag_bytes", "gauge",
	       "WAL a standby has not replayed yet, as the last lag probe read it.");
	for (size_t i = 0; i < n; i++)
		if (sv[i].lag && sv[i].lag->ok)
			lag_gauges(sb, sv[i].database, sv[i].lag, true);
	family(sb, "backfilld_slot_retained_bytes", "gauge",
	       "WAL a replication slot retains, as the last lag probe read it.");
	for (size_t i = 0; i < n; i++)
		if (sv[i].lag && sv[i].lag->ok)
			lag_gauges(sb, sv[i].database, sv[i].lag, false);
	family(sb, "backfilld_archive_backlog_segments", "gauge",
	       "WAL segments waiting for archive_command (absent while archiving is off).");
	for (size_t i = 0; i < n; i++) {
		const bf_lag_sample *s = sv[i].lag;

		if (s && s->ok && s->archive_backlog >= 0) {
			series(sb, "backfilld_archive_backlog_segments", "database",
			       sv[i].database);
			bf_sbuf_printf(sb, "} %lld\n", (long long)s->archive_backlog);
		}
	}
}

char *bf_metrics_render(const bf_metrics_page *page)
{
	bf_sbuf sb = {0};

	family(&sb, "backfilld_build_info", "gauge", "1, with the daemon's version as a label.");
	bf_sbuf_append(&sb, "backfilld_build_info{version=\"" BF_VERSION "\"} 1\n");
	job_families(&sb, page->jobs, page->n_jobs);
	server_families(&sb, page->servers, page->n_servers);
	return bf_sbuf_steal(&sb);
}

/* ---- the server ---- */

struct client {
	bf_metrics *m;
	int fd;
	ev_io io;
	ev_timer timeout;
	bf_metrics_head head;
	char *out; /* the answer, once the head is complete */
	size_t out_len, out_done;
	struct client *next;
};

struct bf_metrics {
	struct ev_loop *loop;
	int fd;
	ev_io accept_io;
	bf_metrics_body_cb cb;
	void *owner;
	struct client *clients;
	int n_clients;
};

static void client_close(struct client *c)
{
	bf_metrics *m = c->m;

	for (struct client **p = &m->clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	m->n_clients--;
	ev_io_stop(m->loop, &c->io);
	ev_timer_stop(m->loop, &c->timeout);
	close(c->fd);
	free(c->out);
	free(c);
}

/* Does the request line ask GET for `path` (a query string allowed)? */
static bool path_is(const bf_metrics_head *h, const char *path)
{
	size_t n = strlen(path);

	return h->len > 4 + n && memcmp(h->buf, "GET ", 4) == 0 &&
	       memcmp(h->buf + 4, path, n) == 0 && (h->buf[4 + n] == ' ' || h->buf[4 + n] == '?');
}

bf_metrics_verdict bf_metrics_head_feed(bf_metrics_head *h, const char *data, size_t n)
{
	size_t room = sizeof(h->buf) - h->len;
	size_t from = h->len > 3 ? h->len - 3 : 0; /* a blank line may straddle two pieces */

	if (n > room)
		n = room;
	memcpy(h->buf + h->len, data, n);
	h->len += n;
	for (size_t i = from; i < h->len; i++) {
		bool crlf = i + 4 <= h->len && memcmp(h->buf + i, "\r\n\r\n", 4) == 0;
		bool lf = i + 2 <= h->len && memcmp(h->buf + i, "\n\n", 2) == 0;

		if (crlf || lf)
			return path_is(h, "/metrics")   ? BF_METRICS_SCRAPE
			       : path_is(h, "/healthz") ? BF_METRICS_HEALTH
			                                : BF_METRICS_NOT_FOUND;
	}
	return h->len == sizeof(h->buf) ? BF_METRICS_TOO_LARGE : BF_METRICS_MORE;
}

static void answer(struct client *c, bf_metrics_verdict v)
{
	bf_sbuf sb = {0};
	char *body = NULL;
	const char *status = "404 Not Found";

	if (v == BF_METRICS_TOO_LARGE) {
		status = "400 Bad Request";
	} else if (v == BF_METRICS_SCRAPE) {
		status = "200 OK";
		body = c->m->cb(c->m->owner);
	} else if (v == BF_METRICS_HEALTH) {
		status = "200 OK";
		body = bf_xstrdup("ok\n");
	}
	bf_sbuf_printf(&sb,
	               "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
	               "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
	               status, body ? strlen(body) : 0, body ? body : "");
	free(body);
	c->out = bf_sbuf_steal(&sb);
	c->out_len = strlen(c->out);
	ev_io_stop(c->m->loop, &c->io);
	ev_io_set(&c->io, c->fd, EV_WRITE);
	ev_io_start(c->m->loop, &c->io);
}

static void client_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct client *c = w->data;
	ssize_t r;

	(void)loop;
	(void)revents;
	if (c->out == NULL) {
		char piece[1024];
		bf_metrics_verdict v;

		r = read(c->fd, piece, sizeof(piece));
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0) {
			client_close(c);
			return;
		}
		v = bf_metrics_head_feed(&c->head, piece, (size_t)r);
		if (v != BF_METRICS_MORE)
			answer(c, v);
		return;
	}
	r = write(c->fd, c->out + c->out_done, c->out_len - c->out_done);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r < 0) {
		client_close(c);
		return;
	}
	c->out_done += (size_t)r;
	if (c->out_done == c->out_len) {
		shutdown(c->fd, SHUT_WR);
		client_close(c);
	}
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	client_close(w->data);
}

/* Every place is taken: the oldest connection that has not sent its request yet gives its
 * place up (a scraper sends its request at once; one that has not is idle or slow). The
 * list is newest first. */
static void make_room(bf_metrics *m)
{
	struct client *oldest = NULL;

	for (struct client *c = m->clients; c != NULL; c = c->next)
		if (c->out == NULL)
			oldest = c;
	if (oldest)
		client_close(oldest);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	bf_metrics *m = w->data;
	struct client *c;
	int fd;

	(void)revents;
	while ((fd = accept(m->fd, NULL, NULL)) >= 0) {
		if (m->n_clients >= BF_METRICS_MAX_CLIENTS)
			make_room(m);
		if (m->n_clients >= BF_METRICS_MAX_CLIENTS ||
		    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
			close(fd);
			continue;
		}
		c = bf_xcalloc(1, sizeof(*c));
		c->m = m;
		c->fd = fd;
		ev_io_init(&c->io, client_cb, fd, EV_READ);
		c->io.data = c;
		ev_timer_init(&c->timeout, timeout_cb, BF_METRICS_TIMEOUT_MS / 1000.0, 0.0);
		c->timeout.data = c;
		ev_io_start(loop, &c->io);
		ev_timer_start(loop, &c->timeout);
		c->next = m->clients;
		m->clients = c;
		m->n_clients++;
	}
}

/* "host:port", "[v6]:port" or ":port" into host ("" for none) and port; false when it does
 * not parse. */
static bool split_address(const char *address, char *host, size_t hostlen, char *port,
                          size_t portlen)
{
	const char *colon = strrchr(address, ':');
	const char *h = address;
	size_t n;

	if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) >= portlen)
		return false;
	n = (size_t)(colon - address);
	if (n >= 2 && address[0] == '[' && address[n - 1] == ']') {
		h = address + 1;
		n -= 2;
		if (n == 0)
			return false;
	}
	if (n >= hostlen)
		return false;
	memcpy(host, h, n);
	host[n] = '\0';
	memcpy(port, colon + 1, strlen(colon + 1) + 1);
	return true;
}

bf_metrics *bf_metrics_new(struct ev_loop *loop, const char *address, bf_metrics_body_cb cb,
                           void *owner, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	char host[256], port[16];
	int fd = -1, one = 1, rc;
	bf_metrics *m;

	if (!split_address(address, host, sizeof(host), port, sizeof(port))) {
		snprintf(err, errlen, "metrics_listen \"%s\": expected HOST:PORT", address);
		return NULL;
	}
	/* ":PORT": every address of the machine, as the operator asked */
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "metrics_listen \"%s\": %s", address, gai_strerror(rc));
		return NULL;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, BF_METRICS_MAX_CLIENTS) != 0)
		goto error;
	freeaddrinfo(ai);
	m = bf_xcalloc(1, sizeof(*m));
	m->loop = loop;
	m->fd = fd;
	m->cb = cb;
	m->owner = owner;
	ev_io_init(&m->accept_io, accept_cb, fd, EV_READ);
	m->accept_io.data = m;
	ev_io_start(loop, &m->accept_io);
	ev_unref(loop); /* the endpoint alone does not keep the daemon running */
	return m;

error:
	snprintf(err, errlen, "metrics_listen \"%s\": %s", address, strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return NULL;
}

void bf_metrics_free(bf_metrics *m)
{
	if (m == NULL)
		return;
	for (struct client *c = m->clients, *next; c != NULL; c = next) {
		next = c->next;
		client_close(c);
	}
	ev_ref(m->loop);
	ev_io_stop(m->loop, &m->accept_io);
	close(m->fd);
	free(m);
}
