/*
 * daemon.c - the event loop and what hangs on it.
 *
 * Periodic duties, all from one repeating timer (tick_cb, once a second):
 *   - a progress line per running job every progress_interval;
 *   - the systemd STATUS= summary;
 *   - WATCHDOG=1 when systemd asks for it (from the loop, so a stuck loop is noticed);
 *   - every 5 s, paused jobs read their row (a resume whose NOTIFY was lost still lands).
 * Two one-shot timers: reap (a finished job is acted on from the loop) and deadline
 * (stopping: cancel at shutdown_timeout, exit a second later).
 * Signals (pgbouncer's conventions) are ev_signal watchers: they run from the loop, never
 * inside a raw handler, so they may start and stop jobs directly.
 */
#include "backfilld/daemon.h"

#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backfilld/conn.h"
#include "backfilld/job.h"
#include "backfilld/lagmon.h"
#include "backfilld/listener.h"
#include "backfilld/metrics.h"
#include "backfilld/log.h"
#include "backfilld/notify.h"
#include "backfilld/util.h"

struct bf_daemon {
	bf_daemon_opts opts;
	struct ev_loop *loop;
	bf_config *cfg;
	bf_job **jobs;
	size_t n_jobs;
	bf_listener **listeners; /* one per database, for backfillctl's NOTIFY */
	size_t n_listeners;
	bf_lagmon **lagmons; /* one per database whose jobs have lag limits */
	size_t n_lagmons;
	bf_metrics *metrics; /* metrics_listen, NULL when off */
	int64_t next_poll_ms;
	char owner_id[300];
	ev_signal sig_term, sig_int, sig_usr1, sig_usr2, sig_hup;
	ev_timer tick;
	ev_timer reap;     /* a job finished: acted on from the loop (job_finished) */
	ev_timer deadline; /* stopping: cancel at shutdown_timeout, exit a second later */
	int64_t next_progress_ms;
	bool stopping, aborted, paused_by_signal;
	int exit_code;
};

static void schedule(bf_daemon *d);
static void status_line(bf_daemon *d);
static void reap_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void reap_removed(bf_daemon *d);
static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents);

#define POLL_INTERVAL_MS 5000

static void reap_soon(bf_daemon *d);
static bf_job_env job_env(bf_daemon *d);

/* A job that is over and still in the configuration: a request for it by name (backfillctl
 * undo) starts it again. */
static bool restartable(const bf_daemon *d, const bf_job *job)
{
	return bf_job_is_finished(job) && bf_job_state_terminal(bf_job_get_state(job)) &&
	       bf_config_find_job(d->cfg, bf_job_name(job)) != NULL;
}

/* A request from backfillctl: the named job (or every job, "*") of that database looks at
 * its row now; one that is over starts again (from the loop: reap_cb schedules it), and its
 * row says what it is to do. */
static void on_notify(bf_listener *l, const char *database, const char *payload, void *owner)
{
	bf_daemon *d = owner;

	(void)l;
	for (size_t i = 0; i < d->n_jobs && !d->stopping; i++) {
		const bf_job_config *jc = bf_job_config_of(d->jobs[i]);

		if (strcmp(jc->database, database) != 0)
			continue;
		if (strcmp(payload, jc->name) == 0 && restartable(d, d->jobs[i])) {
			bf_job_env env = job_env(d);
			bf_job *fresh = bf_job_new(&env, jc);

			bf_log(BF_LOG_INFO, jc->name, "asked for again: starting it", NULL);
			bf_job_free(d->jobs[i]);
			d->jobs[i] = fresh;
			reap_soon(d);
		} else if (strcmp(payload, "*") == 0 || strcmp(payload, jc->name) == 0) {
			bf_job_poke(d->jobs[i]);
		}
	}
}

/* Each monitor runs the distinct throttle_query texts of its jobs (of[i]: job i's monitor,
 * NULL for a finished job). */
static void set_queries(bf_daemon *d, bf_lagmon *const *of)
{
	const char **sqls = bf_xcalloc(d->n_jobs ? d->n_jobs : 1, sizeof(*sqls));

	for (size_t k = 0; k < d->n_lagmons; k++) {
		size_t n = 0;

		for (size_t i = 0; i < d->n_jobs; i++) {
			const char *q = bf_job_config_of(d->jobs[i])->throttle_query;
			bool seen = false;

			if (of[i] != d->lagmons[k] || q == NULL)
				continue;
			for (size_t x = 0; x < n && !seen; x++)
				seen = strcmp(sqls[x], q) == 0;
			if (!seen)
				sqls[n++] = q;
		}
		bf_lagmon_set_queries(d->lagmons[k], sqls, n);
	}
	free(sqls);
}

/* A monitor for every server with a job that watches it (lag limits, a commit-latency budget,
 * a WAL budget, a throttle_query: bf_job_config_watches_server), however its conninfo is
 * spelt, probing at the smallest check_interval among them; each such job gets its monitor. */
static void ensure_lagmons(bf_daemon *d)
{
	/* each job's monitor, found among the few monitors (one per server), never by
	 * comparing job with job: a configuration may hold thousands */
	bf_lagmon **of = bf_xcalloc(d->n_jobs ? d->n_jobs : 1, sizeof(*of));

	for (size_t i = 0; i < d->n_jobs; i++) {
		const bf_job_config *jc = bf_job_config_of(d->jobs[i]);

		if (!bf_job_config_watches_server(jc) || bf_job_is_finished(d->jobs[i]))
			continue;
		for (size_t k = 0; k < d->n_lagmons && of[i] == NULL; k++)
			if (bf_conn_same_server(bf_lagmon_database(d->lagmons[k]), jc->database))
				of[i] = d->lagmons[k];
		if (of[i] == NULL) {
			of[i] = bf_lagmon_new(d->loop, jc->database, jc->lag.check_interval_ms);
			d->lagmons =
			        bf_xrealloc(d->lagmons, (d->n_lagmons + 1) * sizeof(*d->lagmons));
			d->lagmons[d->n_lagmons++] = of[i];
		}
	}
	/* each monitor probes at the smallest check_interval of its jobs; one no unfinished
	 * job uses any more (a reload removed its jobs or their limits) goes, with its
	 * connection */
	for (size_t k = 0; k < d->n_lagmons;) {
		int64_t interval = INT64_MAX, wal_rate = 0;
		bool commits = false;

		for (size_t i = 0; i < d->n_jobs; i++) {
			const bf_job_config *jc = bf_job_config_of(d->jobs[i]);

			if (of[i] != d->lagmons[k])
				continue;
			if (jc->lag.check_interval_ms < interval)
				interval = jc->lag.check_interval_ms;
			commits = commits || jc->max_commit_latency_ms > 0;
			if (jc->max_wal_rate > 0 && (wal_rate == 0 || jc->max_wal_rate < wal_rate))
				wal_rate = jc->max_wal_rate;
		}
		if (interval != INT64_MAX) {
			bf_lagmon_set_interval(d->lagmons[k++], interval, commits, wal_rate);
			continue;
		}
		bf_lagmon_free(d->lagmons[k]);
		d->lagmons[k] = d->lagmons[--d->n_lagmons];
	}
	for (size_t i = 0; i < d->n_jobs; i++)
		bf_job_set_lagmon(d->jobs[i], of[i]);
	set_queries(d, of);
	free(of);
}

/* Does the job want backfillctl's requests: it runs, or it is over and may be asked for
 * again (restartable)? */
static bool listens(const bf_daemon *d, const bf_job *job)
{
	return !bf_job_is_finished(job) || restartable(d, job);
}

/* A control connection for every database a job that listens runs in; one no such job uses
 * any more (a reload removed its jobs or moved them to another conninfo) goes. */
static void ensure_listeners(bf_daemon *d)
{
	for (size_t k = 0; k < d->n_listeners;) {
		bool used = false;

		for (size_t i = 0; i < d->n_jobs && !used; i++)
			used = listens(d, d->jobs[i]) &&
			       strcmp(bf_job_config_of(d->jobs[i])->database,
			              bf_listener_database(d->listeners[k])) == 0;
		if (used) {
			k++;
			continue;
		}
		bf_listener_free(d->listeners[k]);
		d->listeners[k] = d->listeners[--d->n_listeners];
	}
	for (size_t i = 0; i < d->n_jobs; i++) {
		const char *db = bf_job_config_of(d->jobs[i])->database;
		bool have = !listens(d, d->jobs[i]);

		for (size_t k = 0; k < d->n_listeners && !have; k++)
			have = strcmp(bf_listener_database(d->listeners[k]), db) == 0;
		if (have)
			continue;
		d->listeners =
		        bf_xrealloc(d->listeners, (d->n_listeners + 1) * sizeof(*d->listeners));
		d->listeners[d->n_listeners++] = bf_listener_new(d->loop, db, on_notify, d);
	}
}

static size_t count_active(const bf_daemon *d)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n_jobs; i++)
		if (bf_job_is_started(d->jobs[i]) && !bf_job_is_finished(d->jobs[i]))
			n++;
	return n;
}

static bool all_finished(const bf_daemon *d)
{
	for (size_t i = 0; i < d->n_jobs; i++)
		if (!bf_job_is_finished(d->jobs[i]))
			return false;
	return true;
}

/* The exit status of --exit-when-done: 3 when a job failed. */
static int outcome(const bf_daemon *d)
{
	for (size_t i = 0; i < d->n_jobs; i++)
		if (bf_job_get_state(d->jobs[i]) == BF_JOB_FAILED)
			return 3;
	return 0;
}

/* A job let go of its connection. The daemon acts from the loop, never inside the call that
 * finished the job: a job can finish inside bf_job_start() itself (a conninfo libpq cannot
 * parse), and acting there would start jobs from within schedule() (one more than
 * max_parallel_jobs) or break a loop that has not started yet (ev_run forgets that break, and
 * --exit-when-done never exited). */
static void reap_soon(bf_daemon *d)
{
	if (!ev_is_active(&d->reap)) {
		ev_timer_set(&d->reap, 0.0, 0.0);
		ev_timer_start(d->loop, &d->reap);
	}
}

static void job_finished(bf_job *job, void *owner)
{
	bf_daemon *d = owner;

	bf_log(BF_LOG_DEBUG, bf_job_name(job), "job let go of its connection", "state=%s",
	       bf_job_state_name(bf_job_get_state(job)));
	reap_soon(d);
}

static void reap_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	bf_daemon *d = w->data;

	(void)loop;
	(void)revents;
	if (d->stopping) {
		if (count_active(d) == 0)
			ev_break(d->loop, EVBREAK_ALL);
		return;
	}
	if (d->opts.exit_when_done && all_finished(d)) {
		d->exit_code = outcome(d);
		bf_log(BF_LOG_INFO, NULL, "every job finished, exiting", "exit=%d", d->exit_code);
		ev_break(d->loop, EVBREAK_ALL);
		return;
	}
	reap_removed(d);
	ensure_lagmons(d); /* a finished job's monitor or listener may have no user left */
	ensure_listeners(d);
	schedule(d);
}

/* Start jobs in configuration order, at most max_parallel_jobs at once. */
static void schedule(bf_daemon *d)
{
	size_t active = count_active(d);

	for (size_t i = 0; i < d->n_jobs && !d->stopping; i++) {
		if (active >= (size_t)d->cfg->max_parallel_jobs)
			break;
		if (bf_job_is_started(d->jobs[i]))
			continue;
		if (d->paused_by_signal)
			bf_job_pause(d->jobs[i], "paused by SIGUSR1");
		active++;
		bf_log(BF_LOG_INFO, bf_job_name(d->jobs[i]), "starting",
		       "active=%zu max_parallel_jobs=%lld", active,
		       (long long)d->cfg->max_parallel_jobs);
		bf_job_start(d->jobs[i]);
	}
}

static void begin_stop(bf_daemon *d, const char *why)
{
	if (d->stopping)
		return;
	d->stopping = true;
	ev_timer_set(&d->deadline, (double)d->cfg->shutdown_timeout_ms / 1000.0, 0.0);
	ev_timer_start(d->loop, &d->deadline);
	bf_notify("STOPPING=1\nSTATUS=stopping (%s)", why);
	bf_log(BF_LOG_INFO, NULL, "stopping: in-flight batches finish, then the daemon exits",
	       "signal=%s active=%zu", why, count_active(d));
	for (size_t i = 0; i < d->n_jobs; i++)
		bf_job_stop(d->jobs[i]);
	if (count_active(d) == 0)
		ev_break(d->loop, EVBREAK_ALL);
}

static void pause_all(bf_daemon *d, bool pause)
{
	d->paused_by_signal = pause;
	bf_log(BF_LOG_INFO, NULL, pause ? "pausing every job" : "resuming every job", "signal=%s",
	       pause ? "SIGUSR1" : "SIGUSR2");
	for (size_t i = 0; i < d->n_jobs; i++) {
		if (pause)
			bf_job_pause(d->jobs[i], "paused by SIGUSR1");
		else
			bf_job_resume(d->jobs[i]);
	}
}

static bf_job *find_job(bf_daemon *d, const char *name)
{
	for (size_t i = 0; i < d->n_jobs; i++)
		if (strcmp(bf_job_name(d->jobs[i]), name) == 0)
			return d->jobs[i];
	return NULL;
}

/* Out of the list, in order: jobs start in configuration order, and find_job finds the job a
 * reload put in place of another of the same name before the one it replaced. */
static void remove_job(bf_daemon *d, const bf_job *job)
{
	for (size_t i = 0; i < d->n_jobs; i++)
		if (d->jobs[i] == job) {
			memmove(&d->jobs[i], &d->jobs[i + 1],
			        (d->n_jobs - i - 1) * sizeof(*d->jobs));
			d->n_jobs--;
			return;
		}
}

/* Free the jobs a reload took out once they have let go: those no longer in the file, and
 * those replaced by a job of the same name (a new conninfo). Kept, a removed job's last
 * figures stayed in /metrics (a failed one alerting) and its state in the exit status. */
static void reap_removed(bf_daemon *d)
{
	for (size_t i = 0; i < d->n_jobs;) {
		bf_job *job = d->jobs[i];
		const char *name = bf_job_name(job);

		if (bf_job_is_finished(job) &&
		    (bf_config_find_job(d->cfg, name) == NULL || find_job(d, name) != job)) {
			remove_job(d, job);
			bf_job_free(job);
		} else {
			i++;
		}
	}
}

/* The server figures of a job's database: its entry in sv (added when new; the label is the
 * key, so two conninfos of one database are one entry). */
static bf_server_figures *server_of(const bf_job *job, bf_server_figures *sv, size_t *n)
{
	char *label = bf_conn_describe(bf_job_config_of(job)->database);
	const bf_lagmon *m = bf_job_lagmon(job); /* NULL for a finished job */
	size_t k = 0;

	while (k < *n && strcmp(sv[k].database, label) != 0)
		k++;
	if (k == *n)
		sv[(*n)++] = (bf_server_figures){.database = label, .up = true};
	else
		free(label);
	if (m && sv[k].lag == NULL) {
		sv[k].lag = bf_lagmon_sample(m);
		sv[k].up = bf_lagmon_connected(m);
	}
	return &sv[k];
}

/* The metrics endpoint's answer: every job the daemon holds and every database they are on,
 * as they are now; a job a reload replaced shows as its successor until it lets go (the
 * same series twice would fail the scrape). */
static char *metrics_body(void *owner)
{
	bf_daemon *d = owner;
	size_t room = d->n_jobs ? d->n_jobs : 1;
	bf_job_figures *f = bf_xcalloc(room, sizeof(*f));
	bf_server_figures *sv = bf_xcalloc(room, sizeof(*sv));
	bf_metrics_page page = {.jobs = f, .servers = sv};
	char *body;

	for (size_t i = 0; i < d->n_jobs; i++) {
		bf_server_figures *s;

		if (find_job(d, bf_job_name(d->jobs[i])) != d->jobs[i])
			continue;
		s = server_of(d->jobs[i], sv, &page.n_servers);
		bf_job_figures_of(d->jobs[i], &f[page.n_jobs++]);
		if (bf_job_unreachable(d->jobs[i]))
			s->up = false;
	}
	body = bf_metrics_render(&page);
	for (size_t k = 0; k < page.n_servers; k++)
		free((char *)sv[k].database);
	free(sv);
	free(f);
	return body;
}

/* SIGHUP: all or nothing. A bad file changes nothing; a good one starts new jobs, stops
 * removed ones after their batch and retunes the rest. */
static void reload(bf_daemon *d)
{
	bf_config *next = NULL;
	bf_errors errs = {0};
	bf_job **jobs;
	size_t n = 0;
	char restart_only[256];

	bf_notify("RELOADING=1\nSTATUS=reloading %s", d->opts.config_path);
	if (bf_config_load(d->opts.config_path, &next, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			bf_log(BF_LOG_ERROR, NULL, errs.msgs[i], NULL);
		bf_log(BF_LOG_ERROR, NULL, "reload failed: keeping the running configuration",
		       "errors=%zu", errs.n);
		bf_errors_clear(&errs);
		bf_notify("READY=1");
		status_line(d); /* not "reloading" until the next summary */
		return;
	}
	jobs = bf_xcalloc(next->n_jobs + d->n_jobs, sizeof(*jobs));
	for (size_t i = 0; i < next->n_jobs; i++) {
		const bf_job_config *jc = &next->jobs[i];
		bf_job *old = find_job(d, jc->name);
		bf_job_env env = job_env(d);

		if (old != NULL && bf_job_is_finished(old) &&
		    !bf_job_state_terminal(bf_job_get_state(old))) {
			/* removed by an earlier reload and back now: a fresh start */
			remove_job(d, old);
			bf_job_free(old);
			old = NULL;
		}
		if (old == NULL) {
			bf_log(BF_LOG_INFO, jc->name, "new job", NULL);
			jobs[n++] = bf_job_new(&env, jc);
		} else if (bf_job_config_changes(bf_job_config_of(old), jc) &
		           BF_RELOAD_DEFINITION) {
			bf_job_fail(old, "definition changed (table, key, set or where) in the "
			                 "reloaded configuration: reset the job or rename it");
			jobs[n++] = old;
		} else if (bf_job_config_changes(bf_job_config_of(old), jc) &
		           BF_RELOAD_CONNECTION) {
			/* a new password, host list or option: the job goes on through the new
			 * conninfo. The old one lets go after its batch (its state written, its
			 * advisory lock released); the new one takes that lock, then the row, and
			 * resumes from the checkpoint (or starts, on another database) */
			bf_log(BF_LOG_INFO, jc->name,
			       "database or dual_write changed: the job goes on through a new "
			       "connection",
			       NULL);
			bf_job_remove(old);
			jobs[n++] = bf_job_new(&env, jc); /* first: find_job() finds it */
			jobs[n++] = old;
		} else {
			bf_job_retune(old, jc);
			jobs[n++] = old;
		}
	}
	/* jobs no longer in the file: stop after their batch, freed when they let go */
	for (size_t i = 0; i < d->n_jobs; i++) {
		bool kept = false;

		for (size_t k = 0; k < n && !kept; k++)
			kept = jobs[k] == d->jobs[i];
		if (!kept) {
			bf_log(BF_LOG_INFO, bf_job_name(d->jobs[i]),
			       "removed from the configuration", NULL);
			bf_job_remove(d->jobs[i]);
			jobs[n++] = d->jobs[i];
		}
	}
	free(d->jobs);
	d->jobs = jobs;
	d->n_jobs = n;
	bf_config_restart_changes(d->cfg, next, restart_only, sizeof(restart_only));
	if (restart_only[0])
		bf_log(BF_LOG_WARN, NULL, "some keys change only at a restart: kept as they were",
		       "keys=%s", restart_only);
	bf_config_keep_restart_keys(next, d->cfg);
	bf_config_free(d->cfg);
	d->cfg = next;
	bf_log_set_level(d->opts.verbose ? BF_LOG_DEBUG : d->cfg->log_level);
	bf_log(BF_LOG_INFO, NULL, "configuration reloaded", "jobs=%zu", d->cfg->n_jobs);
	bf_notify("READY=1");
	ensure_listeners(d);
	ensure_lagmons(d);
	schedule(d);
	status_line(d); /* not "reloading" until the next summary */
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	bf_daemon *d = w->data;

	(void)loop;
	(void)revents;
	switch (w->signum) {
	case SIGTERM:
		begin_stop(d, "SIGTERM");
		break;
	case SIGINT:
		begin_stop(d, "SIGINT");
		break;
	case SIGUSR1:
		pause_all(d, true);
		break;
	case SIGUSR2:
		pause_all(d, false);
		break;
	case SIGHUP:
		if (!d->stopping)
			reload(d);
		break;
	default:
		bf_log(BF_LOG_WARN, NULL, "unexpected signal", "signal=%d", w->signum);
		break;
	}
}

/* The STATUS= summary: jobs by state, and those that cannot reach their database (which a
 * job without its row yet can show nowhere else), the first one named with why. */
static void status_line(bf_daemon *d)
{
	size_t counts[BF_JOB_N_STATES] = {0};
	size_t unreachable = 0;
	const bf_job *first = NULL;
	char why[512] = "", undo[64] = "";

	for (size_t i = 0; i < d->n_jobs; i++) {
		counts[bf_job_get_state(d->jobs[i])]++;
		if (bf_job_unreachable(d->jobs[i]) && unreachable++ == 0)
			first = d->jobs[i];
	}
	if (first)
		snprintf(why, sizeof(why), "; %zu waiting for their database (%s: %s)", unreachable,
		         bf_job_name(first), bf_job_unreachable(first));
	for (char *p = why; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' '; /* STATUS= is one line */
	if (counts[BF_JOB_UNDOING] + counts[BF_JOB_UNDONE] > 0)
		snprintf(undo, sizeof(undo), ", %zu undoing, %zu undone", counts[BF_JOB_UNDOING],
		         counts[BF_JOB_UNDONE]);
	bf_notify("STATUS=%zu running, %zu throttled, %zu paused, %zu pending, %zu finishing, "
	          "%zu done, %zu failed%s%s",
	          counts[BF_JOB_RUNNING], counts[BF_JOB_THROTTLED], counts[BF_JOB_PAUSED],
	          counts[BF_JOB_PENDING], counts[BF_JOB_FINISHING], counts[BF_JOB_DONE],
	          counts[BF_JOB_FAILED], undo, why);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	bf_daemon *d = w->data;
	int64_t now = bf_mono_ms();

	(void)loop;
	(void)revents;
	if (bf_notify_watchdog_ms() > 0)
		bf_notify("WATCHDOG=1");
	if (now >= d->next_progress_ms) {
		d->next_progress_ms = now + d->cfg->progress_interval_ms;
		for (size_t i = 0; i < d->n_jobs; i++)
			bf_job_log_progress(d->jobs[i]);
		status_line(d);
	}
	if (!d->stopping && now >= d->next_poll_ms) {
		/* the fallback for a NOTIFY lost with a control connection: a paused job has no
		 * batch that would read its row */
		d->next_poll_ms = now + POLL_INTERVAL_MS;
		for (size_t i = 0; i < d->n_jobs; i++)
			if (bf_job_get_state(d->jobs[i]) == BF_JOB_PAUSED)
				bf_job_poke(d->jobs[i]);
	}
}

/* Stopping takes at most shutdown_timeout and a second: at shutdown_timeout the in-flight
 * batches are cancelled (each rolls back, its checkpoint with it, and the job records its
 * state); a second later the daemon exits whatever is left (a server that does not answer):
 * the sessions end with the process, and their advisory locks with them. */
static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	bf_daemon *d = w->data;

	(void)revents;
	if (!d->aborted) {
		d->aborted = true;
		bf_log(BF_LOG_WARN, NULL, "shutdown_timeout reached: cancelling in-flight batches",
		       "active=%zu", count_active(d));
		for (size_t i = 0; i < d->n_jobs; i++)
			bf_job_abort(d->jobs[i]);
		ev_timer_set(w, 1.0, 0.0);
		ev_timer_start(loop, w);
		return;
	}
	bf_log(BF_LOG_ERROR, NULL,
	       "jobs still busy a second after their cancel: exiting without them", "active=%zu",
	       count_active(d));
	ev_break(loop, EVBREAK_ALL);
}

static bf_job_env job_env(bf_daemon *d)
{
	return (bf_job_env){
	        .loop = d->loop,
	        .control_schema = d->cfg->control_schema,
	        .owner_id = d->owner_id,
	        .dry_run = d->opts.dry_run,
	        .finished = job_finished,
	        .owner = d,
	};
}

bf_daemon *bf_daemon_new(const bf_daemon_opts *opts, bf_config *cfg)
{
	bf_daemon *d = bf_xcalloc(1, sizeof(*d));
	char host[256] = "localhost";
	struct {
		ev_signal *w;
		int signum;
	} sigs[] = {
	        {&d->sig_term, SIGTERM}, {&d->sig_int, SIGINT}, {&d->sig_usr1, SIGUSR1},
	        {&d->sig_usr2, SIGUSR2}, {&d->sig_hup, SIGHUP},
	};

	d->opts = *opts;
	d->cfg = cfg;
	d->loop = ev_default_loop(EVFLAG_AUTO);
	gethostname(host, sizeof(host) - 1);
	snprintf(d->owner_id, sizeof(d->owner_id), "%s:%ld", host, (long)getpid());
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < BF_ARRAY_LEN(sigs); i++) {
		ev_signal_init(sigs[i].w, signal_cb, sigs[i].signum);
		sigs[i].w->data = d;
		ev_signal_start(d->loop, sigs[i].w);
		ev_unref(d->loop); /* signals alone do not keep the loop alive */
	}
	ev_timer_init(&d->tick, tick_cb, 1.0, 1.0);
	d->tick.data = d;
	ev_init(&d->reap, reap_cb);
	d->reap.data = d;
	ev_init(&d->deadline, deadline_cb);
	d->deadline.data = d;
	d->jobs = bf_xcalloc(cfg->n_jobs ? cfg->n_jobs : 1, sizeof(*d->jobs));
	for (size_t i = 0; i < cfg->n_jobs; i++) {
		bf_job_env env = job_env(d);

		d->jobs[d->n_jobs++] = bf_job_new(&env, &cfg->jobs[i]);
	}
	return d;
}

void bf_daemon_free(bf_daemon *d)
{
	ev_signal *sigs[] = {&d->sig_term, &d->sig_int, &d->sig_usr1, &d->sig_usr2, &d->sig_hup};

	if (d == NULL)
		return;
	for (size_t i = 0; i < BF_ARRAY_LEN(sigs); i++) {
		ev_ref(d->loop);
		ev_signal_stop(d->loop, sigs[i]);
	}
	ev_timer_stop(d->loop, &d->tick);
	ev_timer_stop(d->loop, &d->reap);
	ev_timer_stop(d->loop, &d->deadline);
	bf_metrics_free(d->metrics);
	for (size_t i = 0; i < d->n_jobs; i++)
		bf_job_free(d->jobs[i]);
	free(d->jobs);
	for (size_t i = 0; i < d->n_listeners; i++)
		bf_listener_free(d->listeners[i]);
	free(d->listeners);
	for (size_t i = 0; i < d->n_lagmons; i++)
		bf_lagmon_free(d->lagmons[i]);
	free(d->lagmons);
	bf_config_free(d->cfg);
	ev_loop_destroy(d->loop);
	free(d);
}

int bf_daemon_run(bf_daemon *d)
{
	d->next_progress_ms = bf_mono_ms() + d->cfg->progress_interval_ms;
	if (d->cfg->metrics_listen) {
		char err[512];

		d->metrics = bf_metrics_new(d->loop, d->cfg->metrics_listen, metrics_body, d, err,
		                            sizeof(err));
		if (d->metrics == NULL) {
			bf_log(BF_LOG_ERROR, NULL, err, NULL);
			return 1;
		}
		bf_log(BF_LOG_INFO, NULL, "metrics endpoint listening", "address=%s path=/metrics",
		       d->cfg->metrics_listen);
	}
	ev_timer_start(d->loop, &d->tick);
	bf_log(BF_LOG_INFO, NULL, "started", "config=%s jobs=%zu max_parallel_jobs=%lld%s",
	       d->opts.config_path, d->n_jobs, (long long)d->cfg->max_parallel_jobs,
	       d->opts.dry_run ? " dry_run=true" : "");
	bf_notify("READY=1\nSTATUS=started with %zu jobs", d->n_jobs);
	if (d->opts.exit_when_done && d->n_jobs == 0) {
		bf_log(BF_LOG_INFO, NULL, "no job to run, exiting", NULL);
		return 0;
	}
	ensure_listeners(d);
	ensure_lagmons(d);
	schedule(d);
	ev_run(d->loop, 0);
	bf_log(BF_LOG_INFO, NULL, "stopped", "exit=%d", d->exit_code);
	return d->exit_code;
}
