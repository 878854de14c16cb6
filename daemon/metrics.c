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

/* ---- the exposition text (pure) ---- */

enum mvalue {
	MV_ROWS_DONE,
	MV_ROWS_ESTIMATE,
	MV_RATE,
	MV_BATCH,
	MV_LAST_BATCH,
	MV_PASS,
	MV_PACE,
	MV_COMMIT,
};

static const struct metric {
	const char *name;
	const char *type;
	const char *help;
	enum mvalue value;
} metrics[] = {
        {.name = "backfilld_rows_done",
         .type = "counter",
         .help = "Rows the job has updated, all passes.",
         .value = MV_ROWS_DONE},
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
};

static double value_of(const bf_job_figures *f, enum mvalue v)
{
	switch (v) {
	case MV_ROWS_DONE:
		return (double)f->rows_done;
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

char *bf_metrics_render(const bf_job_figures *jobs, size_t n)
{
	bf_sbuf sb = {0};

	for (size_t m = 0; m < BF_ARRAY_LEN(metrics); m++) {
		bf_sbuf_printf(&sb, "# HELP %s %s\n# TYPE %s %s\n", metrics[m].name,
		               metrics[m].help, metrics[m].name, metrics[m].type);
		for (size_t i = 0; i < n; i++) {
			bf_sbuf_printf(&sb, "%s{job=", metrics[m].name);
			label(&sb, jobs[i].name);
			bf_sbuf_printf(&sb, "} %.17g\n", value_of(&jobs[i], metrics[m].value));
		}
	}
	/* the state as a set of 0/1 series, so an alert can say state="failed" == 1 */
	bf_sbuf_append(&sb, "# HELP backfilld_job_state 1 for the state the job is in.\n"
	                    "# TYPE backfilld_job_state gauge\n");
	for (size_t i = 0; i < n; i++)
		for (int s = BF_JOB_PENDING; s <= BF_JOB_CANCELLED; s++) {
			bf_sbuf_append(&sb, "backfilld_job_state{job=");
			label(&sb, jobs[i].name);
			bf_sbuf_printf(&sb, ",state=\"%s\"} %d\n",
			               bf_job_state_name((bf_job_state)s),
			               jobs[i].state == (bf_job_state)s);
		}
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
			return h->len >= 13 && (memcmp(h->buf, "GET /metrics ", 13) == 0 ||
			                        memcmp(h->buf, "GET /metrics?", 13) == 0)
			               ? BF_METRICS_SCRAPE
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

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	bf_metrics *m = w->data;
	struct client *c;
	int fd;

	(void)revents;
	while ((fd = accept(m->fd, NULL, NULL)) >= 0) {
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

/* "host:port" or "[v6]:port" into host and port; false when it does not parse. */
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
	}
	if (n == 0 || n >= hostlen)
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
	rc = getaddrinfo(host, port, &hints, &ai);
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
