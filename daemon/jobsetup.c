/*
 * jobsetup.c - what a job's fresh connection sets up before its first batch
 * (job_internal.h): session settings, the grants it needs, the control schema, the job's
 * advisory lock, the table and key, the estimate, the job's (or slice's) row, and the
 * high-water mark. Each is one statement, sent by bf_setup_next() in that order while it is
 * missing, its result taken by bf_setup_take(). A reconnect forgets what the connection
 * carried (job.c drop_connection), and the same order rebuilds it.
 *
 * The checkpoint lives in the control table only: after any reconnect the job registers
 * again and continues from the cursor the database committed, so a batch whose commit was
 * lost with the connection is neither redone blindly nor counted twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfilld/job_internal.h"
#include "backfilld/log.h"
#include "backfilld/pressure.h"
#include "backfilld/sqltext.h"
#include "backfilld/target.h"
#include "backfilld/units.h"
#include "backfilld/util.h"

#define LOCK_RETRY_MS 5000

/* The control schema; a dry run keeps its bookkeeping in the session's temporary schema, so
 * neither the table nor the real control schema changes. */
static const char *schema_name(const bf_job *j)
{
	return j->env.dry_run ? "pg_temp" : j->env.control_schema;
}

char *bf_setup_quoted_schema(bf_job *j)
{
	char err[BF_JOB_ERR_LEN];
	char *q = bf_quote_ident(bf_conn_pg(j->conn), schema_name(j), err, sizeof(err));

	if (q == NULL)
		bf_job_fail_with(j, err);
	return q;
}

static void send_session(bf_job *j)
{
	char lock[32], stmt[32];
	const char *v[3] = {lock, stmt, j->cfg->synchronous_commit};

	snprintf(lock, sizeof(lock), "%lld", (long long)j->cfg->lock_timeout_ms);
	snprintf(stmt, sizeof(stmt), "%lld", (long long)j->cfg->statement_timeout_ms);
	bf_job_send(j, PH_SESSION, bf_sql_session(), 3, v);
}

static void send_grants(bf_job *j)
{
	const char *v[2] = {j->env.control_schema, bf_pressure_enabled(&j->cfg->lag) ? "t" : "f"};

	bf_job_send(j, PH_GRANTS, bf_sql_grants(), 2, v);
}

static void on_grants(bf_job *j, const PGresult *res)
{
	if (!PQgetisnull(res, 0, 1))
		bf_log(BF_LOG_WARN, j->cfg->name, "the lag limits cannot be read", "problem=%s",
		       PQgetvalue(res, 0, 1));
	if (!PQgetisnull(res, 0, 0)) {
		bf_job_fail_with(j, PQgetvalue(res, 0, 0));
		return;
	}
	j->grants_ok = true;
}

bool bf_setup_fail_row(bf_job *j)
{
	char hash[17];
	char *qs, *sql;
	const char *v[4] = {j->cfg->name, j->cfg->table, hash, j->reason};

	if (j->fail_row_sent || j->state != BF_JOB_FAILED || !j->schema_ok || !j->locked ||
	    j->env.dry_run || j->parent)
		return false;
	j->fail_row_sent = true;
	qs = bf_setup_quoted_schema(j);
	if (qs == NULL)
		return false;
	bf_job_config_hash(j->cfg, hash);
	sql = bf_sql_fail_unregistered(qs);
	bf_job_send(j, PH_FAIL_ROW, sql, 4, v);
	free(sql);
	free(qs);
	return true;
}

static void send_schema(bf_job *j)
{
	char *qs = bf_setup_quoted_schema(j);
	char *sql;

	if (qs == NULL) {
		bf_job_finish(j);
		return;
	}
	sql = j->env.dry_run ? bf_sql_schema_temp() : bf_sql_schema(qs);
	bf_job_send_simple(j, PH_SCHEMA, sql);
	free(sql);
	free(qs);
}

/* The job's session advisory lock: two daemons never run a job at once. A slice has its
 * own ("name:N", a name no job can have), so that a slice still walking for a daemon whose
 * job connection was lost, and with it the job's lock, is never walked twice at once when
 * another daemon takes the job over. */
static void send_lock(bf_job *j)
{
	char *name = j->parent ? bf_xasprintf("%s:%d", j->cfg->name, j->slice)
	                       : bf_xstrdup(j->cfg->name);
	const char *v[2] = {j->env.control_schema, name};

	bf_job_send(j, PH_LOCK, bf_sql_try_lock(), 2, v);
	free(name);
}

static void on_lock(bf_job *j, const PGresult *res)
{
	if (PQgetvalue(res, 0, 0)[0] != 't') {
		if (!j->logged_waiting_lock)
			bf_log(BF_LOG_WARN, j->cfg->name,
			       "another daemon runs this job; waiting to take over", NULL);
		j->logged_waiting_lock = true;
		bf_job_arm_timer(j, LOCK_RETRY_MS);
		return;
	}
	j->locked = true;
	j->logged_waiting_lock = false;
}

static void send_resolve(bf_job *j)
{
	char *keys = bf_target_key_literal(j->cfg);
	const char *v[2] = {j->cfg->table, keys};

	bf_job_send(j, PH_RESOLVE, bf_sql_resolve(), 2, v);
	free(keys);
}

static void on_resolve(bf_job *j, const PGresult *res)
{
	bf_sbuf problems = {0};

	j->target = bf_target_resolve(bf_conn_pg(j->conn), res, j->cfg, schema_name(j),
	                              &j->table_name, &problems);
	if (j->target == NULL)
		bf_job_fail_with(j, problems.data ? problems.data : "cannot resolve the table");
	else
		bf_closing_init(&j->closing, j->target->n_key, BF_CLOSING_CHUNK_KEYS);
	bf_sbuf_free(&problems);
}

static void send_estimate(bf_job *j)
{
	char *sql = bf_sql_estimate(j->target);
	char pct[32];
	const char *v[1] = {pct};

	snprintf(pct, sizeof(pct), "%.6f", bf_sql_sample_percent(j->target->pages));
	bf_job_send(j, PH_ESTIMATE, sql, 1, v);
	free(sql);
}

static void send_register(bf_job *j)
{
	char hash[17], batch[32], est[32];
	char *sql = bf_sql_register(j->target);
	const char *v[6] = {j->cfg->name, j->table_name, hash, batch, j->env.owner_id, est};

	bf_job_config_hash(j->cfg, hash);
	snprintf(batch, sizeof(batch), "%lld", (long long)j->batch_size);
	snprintf(est, sizeof(est), "%lld", (long long)j->estimate);
	bf_job_send(j, PH_REGISTER, sql, 6, v);
	free(sql);
}

static void send_slice_register(bf_job *j)
{
	char *sql = bf_sql_slice_register(j->target);
	char n[16];
	const char *v[3] = {j->cfg->name, n, j->target->oid};

	snprintf(n, sizeof(n), "%d", j->slice);
	bf_job_send(j, PH_REGISTER, sql, 3, v);
	free(sql);
}

/* Registered on a fresh connection: after a failure, the trace an operator can query
 * (last_error, written with the next state) and one log line. */
static void reconnected(bf_job *j)
{
	int64_t down = bf_conn_down_ms(j->conn);
	char d[32], q[BF_JOB_ERR_LEN + 32];

	j->reconnects = 0;
	if (down == 0 || j->down_reason == NULL)
		return;
	bf_units_format_duration(down, d, sizeof(d));
	bf_log(BF_LOG_INFO, j->cfg->name, "reconnected", "after=%s error=%s", d,
	       bf_log_q(q, sizeof(q), j->down_reason));
	if (j->parent == NULL && !bf_job_state_terminal(j->state)) {
		free(j->last_error);
		j->last_error = bf_xasprintf("reconnected after %s: %s", d, j->down_reason);
	}
	free(j->down_reason);
	j->down_reason = NULL;
}

/* The job stays as its row says (it is over), with `reason` to write (NULL: none): step()
 * writes it when it differs, then lets go. */
static void stay_as_registered(bf_job *j, const char *reason)
{
	j->state = j->db_state;
	bf_job_set_reason(j, reason);
	free(j->db_reason);
	j->db_reason = NULL;
}

/* The row of a finished job, or of one whose definition changed: nothing to walk. False
 * when the job goes on. */
static bool registered_finished(bf_job *j, const PGresult *res, const char *hash)
{
	bool changed = strcmp(PQgetvalue(res, 0, 0), hash) != 0;
	char msg[256];

	if (!j->undoing && (j->db_state == BF_JOB_DONE || j->db_state == BF_JOB_CANCELLED ||
	                    j->db_state == BF_JOB_UNDONE)) {
		bf_log(changed ? BF_LOG_WARN : BF_LOG_INFO, j->cfg->name,
		       changed ? "already finished; its definition changed since: reset it to run "
		                 "it again (backfillctl reset)"
		               : "already finished",
		       "state=%s", PQgetvalue(res, 0, 1));
		stay_as_registered(j, NULL);
		return true;
	}
	if (!changed)
		return false;
	j->undoing = false; /* it needs this definition's backup and set */
	snprintf(msg, sizeof(msg),
	         "definition changed (table, key, set or where) since the job was registered: "
	         "reset it (backfillctl reset %s) or rename it",
	         j->cfg->name);
	bf_job_fail_with(j, msg);
	return true;
}

/* Why an undo asked for cannot run on this job (NULL: it can): to NULL, its `where` must
 * have been `column IS NULL` of the one column set assigns (every row it changed had NULL
 * there); else it needs its backup. */
static char *undo_refusal(const bf_job *j)
{
	size_t n = 0;
	char *why = NULL;
	bf_set_item *items;
	bool ok;

	if (!j->undo_to_null)
		return j->target->qbackup
		               ? NULL
		               : bf_xstrdup(
		                         "undo refused: the job keeps no backup (backup: true), so "
		                         "the values it overwrote are gone");
	if (j->target->qbackup)
		return bf_xstrdup(
		        "undo --to-null refused: the job keeps a backup; a plain undo puts "
		        "back the values it overwrote");
	items = bf_sqltext_set_items(j->cfg->set, &n, &why);
	ok = items && n == 1 && bf_sqltext_is_null_test(j->cfg->where, items[0].column);
	bf_sqltext_items_free(items, n);
	free(why);
	if (ok)
		return NULL;
	return bf_xasprintf(
	        "undo --to-null refused: set must assign one column and where be "
	        "`that column IS NULL` (where: %s), else its rows did not all have NULL "
	        "there",
	        j->cfg->where);
}

/* Is the job undoing: an undo begun (its row says so: `begun`) and not cancelled since, or one
 * asked for on a job that is over (a cancelled undo resumes so)? One that cannot run leaves
 * the job as it was, saying why (the request is cleared with the state written). */
static bool undo_wanted(bf_job *j, bool begun)
{
	bool over = j->db_state == BF_JOB_DONE || j->db_state == BF_JOB_FAILED ||
	            j->db_state == BF_JOB_CANCELLED;
	char *why;

	if (j->parent || j->env.dry_run || j->db_state == BF_JOB_UNDONE)
		return false;
	if (begun && j->db_state != BF_JOB_CANCELLED)
		return true;
	if (!bf_streq_opt(j->requested, "undo") || !over)
		return false;
	if ((why = undo_refusal(j)) == NULL)
		return true;
	bf_log(BF_LOG_WARN, j->cfg->name, why, NULL);
	stay_as_registered(j, why);
	j->refused = true;
	free(why);
	return false;
}

static void on_register(bf_job *j, const PGresult *res)
{
	char hash[17];
	size_t n = j->target->n_key;

	bf_job_config_hash(j->cfg, hash);
	bf_job_take_requested(j, res, 2);
	{
		int db = bf_job_state_from_name(PQgetvalue(res, 0, 1));

		j->db_state = db < 0 ? BF_JOB_PENDING : (bf_job_state)db;
	}
	j->pass = atoi(PQgetvalue(res, 0, 3));
	j->rows_done = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
	bf_job_forget_checkpoint(j);
	if (!PQgetisnull(res, 0, 7))
		j->estimate = strtoll(PQgetvalue(res, 0, 7), NULL, 10);
	if (PQgetvalue(res, 0, 5)[0] == 't')
		j->cursor = bf_job_values(res, 8, n);
	j->high_known = PQgetvalue(res, 0, 6)[0] == 't';
	if (j->high_known)
		j->high = bf_job_values(res, 8 + (int)n, n);
	j->registered = j->has_row = true;
	j->pass_end = false;
	/* its steps' rows exist, or it was finishing: the data is done, only steps are left */
	if (j->db_state == BF_JOB_FINISHING || PQgetvalue(res, 0, 8 + 2 * (int)n)[0] == 't')
		j->finishing = j->parent == NULL && (j->cfg->n_then > 0 || j->cfg->verify) &&
		               !j->env.dry_run;
	j->undo_to_null = PQgetvalue(res, 0, 10 + 2 * (int)n)[0] == 't';
	j->undoing = undo_wanted(j, PQgetvalue(res, 0, 9 + 2 * (int)n)[0] == 't');
	if (j->undoing)
		j->finishing = false;
	reconnected(j);
	bf_slices_registered(j);
	bf_closing_registered(&j->closing, j->cursor == NULL);
	if (j->refused || registered_finished(j, res, hash))
		return;
	/* the row may say running or throttled after a crash: ours to take over (an undo says
	 * where it is itself: undo.c) */
	if (j->db_state == BF_JOB_FAILED && !j->undoing)
		bf_log(BF_LOG_INFO, j->cfg->name, "restarting a failed job from its checkpoint",
		       "rows=%lld", (long long)j->rows_done);
	else if (!j->resumed && !j->undoing && (j->rows_done > 0 || j->cursor))
		bf_log(BF_LOG_INFO, j->cfg->name, "resuming from the checkpoint",
		       "rows=%lld pass=%d", (long long)j->rows_done, j->pass);
	j->resumed = true;
	/* make step() write the state this process shows, a failure not yet written included
	 * (a job object never registers again after writing one: it lets go) */
	free(j->db_reason);
	j->db_reason = bf_xstrdup("(registered)");
}

/* A slice of a partitioned table walks its leaf as a plain table: the target becomes the
 * leaf's (its batches check that the leaf is still in the table). */
static int walk_leaf(bf_job *j, const PGresult *res)
{
	char err[BF_JOB_ERR_LEN];
	bool first = j->target->leaf_oid == NULL;

	if (bf_target_to_leaf(bf_conn_pg(j->conn), j->target, PQgetvalue(res, 0, 2),
	                      PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4), err,
	                      sizeof(err)) != 0) {
		bf_job_fail_with(j, err);
		return -1;
	}
	if (first)
		bf_log(BF_LOG_INFO, j->cfg->name, "walking a partition", "slice=%d partition=%s.%s",
		       j->slice, j->target->nsp, j->target->rel);
	return 0;
}

static void on_slice_register(bf_job *j, const PGresult *res)
{
	size_t n = j->target->n_key;

	if (PQntuples(res) != 1) {
		bf_job_fail_with(j, "the slice's row disappeared from the control table (reset "
		                    "while running?)");
		return;
	}
	bf_job_take_requested(j, res, 1);
	bf_job_forget_checkpoint(j);
	if (PQgetvalue(res, 0, 5)[0] != 't') {
		/* the statement ended the slice: its rows not reached left the job's table */
		bf_log(BF_LOG_WARN, j->cfg->name,
		       "a partition left the table (detached or dropped): its slice ends",
		       "slice=%d partition=%s", j->slice,
		       PQgetisnull(res, 0, 3) ? PQgetvalue(res, 0, 4) : PQgetvalue(res, 0, 3));
		bf_job_set_state(j, BF_JOB_DONE, NULL);
		j->registered = true;
		return;
	}
	if (!PQgetisnull(res, 0, 4) && walk_leaf(j, res) != 0)
		return;
	if (PQgetvalue(res, 0, 0)[0] == 't')
		j->cursor = bf_job_values(res, 6, n);
	j->high = bf_job_values(res, 6 + (int)n, n);
	j->high_known = true;
	j->registered = true;
	j->pass_end = false;
	reconnected(j);
}

static void send_high(bf_job *j)
{
	char *sql = bf_sql_high_water(j->target);
	const char *v[1] = {j->cfg->name};

	bf_job_send(j, PH_HIGH, sql, 1, v);
	free(sql);
}

static void on_high(bf_job *j, const PGresult *res)
{
	j->high_known = true;
	if (PQgetvalue(res, 0, 0)[0] != 't') {
		/* an empty table at the first start: nothing up to the mark, done */
		bf_log(BF_LOG_INFO, j->cfg->name, "table was empty at the first start", NULL);
		bf_finish_begin(j, "table was empty");
		return;
	}
	j->high = bf_job_values(res, 1, j->target->n_key);
}

bool bf_setup_quoted_set(bf_job *j, bf_quoted_set *out)
{
	char err[BF_JOB_ERR_LEN] = "", *why = NULL;
	size_t n = 0;
	bf_set_item *items = bf_sqltext_set_items(j->cfg->set, &n, &why);

	*out = (bf_quoted_set){.items = items, .n = n};
	out->qcols = bf_xcalloc(out->n ? out->n : 1, sizeof(*out->qcols));
	out->exprs = bf_xcalloc(out->n ? out->n : 1, sizeof(*out->exprs));
	for (size_t i = 0; out->items && i < out->n; i++) {
		out->exprs[i] = out->items[i].expr;
		out->qcols[i] =
		        bf_quote_ident(bf_conn_pg(j->conn), out->items[i].column, err, sizeof(err));
		if (out->qcols[i] == NULL)
			break;
	}
	if (out->items && (out->n == 0 || out->qcols[out->n - 1])) {
		free(why);
		return true;
	}
	bf_job_fail_with(j, why ? why : err);
	bf_job_arm_timer(j, 0); /* nothing sent: step() again, which lets go */
	free(why);
	bf_quoted_set_free(out);
	return false;
}

void bf_quoted_set_free(bf_quoted_set *q)
{
	bf_strv_free(q->qcols, q->n);
	free(q->exprs);
	bf_sqltext_items_free(q->items, q->n);
	*q = (bf_quoted_set){0};
}

/* The dual-write trigger's two statements, quoted for this connection: its function (in the
 * control schema, named for the job), then the trigger on the table. Before the high-water
 * mark is taken, so that no row the application writes after it goes without. */
static void send_dual_write(bf_job *j)
{
	char err[BF_JOB_ERR_LEN] = "";
	char *name = bf_sql_dual_write_name(j->cfg->name);
	char *qs = bf_setup_quoted_schema(j);
	char *qname = qs ? bf_quote_ident(bf_conn_pg(j->conn), name, err, sizeof(err)) : NULL;
	char *qalias = qname ? bf_quote_ident(bf_conn_pg(j->conn), j->target->rel, err, sizeof(err))
	                     : NULL;
	bf_quoted_set set;

	free(name);
	if (qalias == NULL) {
		if (qs) /* else failed already */
			bf_job_fail_with(j, err);
		bf_job_arm_timer(j, 0); /* nothing sent: step() again, which lets go */
	} else if (bf_setup_quoted_set(j, &set)) {
		char *qfunction = bf_xasprintf("%s.%s", qs, qname);
		bf_sql_dual_write dw = {.qfunction = qfunction,
		                        .qalias = qalias,
		                        .qcols = set.qcols,
		                        .exprs = set.exprs,
		                        .n = set.n,
		                        .where = j->cfg->where};
		char *sql =
		        j->dual_write_step == 0
		                ? bf_sql_dual_write_function(&dw)
		                : bf_sql_dual_write_trigger(qname, j->target->qtable, qfunction);

		bf_job_send(j, PH_DUAL_WRITE, sql, 0, NULL);
		free(sql);
		free(qfunction);
		bf_quoted_set_free(&set);
	}
	free(qalias);
	free(qname);
	free(qs);
}

/* The backup table (backup: true), before the first batch that writes to it. */
static void send_backup(bf_job *j)
{
	char *sql = bf_sql_backup_create(j->target);

	bf_job_send_simple(j, PH_BACKUP, sql);
	free(sql);
}

bool bf_setup_next(bf_job *j)
{
	bool own_row = j->parent == NULL; /* a slice's job set up the schema and grants */

	if (!j->session_ok)
		send_session(j);
	else if (!j->grants_ok && own_row && !j->env.dry_run)
		send_grants(j);
	else if (!j->schema_ok && own_row)
		send_schema(j);
	else if (!j->locked)
		send_lock(j);
	else if (j->target == NULL)
		send_resolve(j);
	else if (!j->estimated && own_row)
		send_estimate(j);
	else if (!j->registered && own_row)
		send_register(j);
	else if (!j->registered)
		send_slice_register(j);
	else if (own_row && j->cfg->dual_write && j->dual_write_step < 2 && !j->env.dry_run &&
	         !bf_job_state_terminal(j->state) && !j->undoing)
		send_dual_write(j);
	else if (own_row && j->target->qbackup && !j->backup_ok &&
	         !bf_job_state_terminal(j->state) && !j->undoing)
		send_backup(j);
	else
		return false;
	return true;
}

bool bf_setup_high(bf_job *j)
{
	if (j->high_known)
		return false;
	send_high(j);
	return true;
}

bool bf_setup_take(bf_job *j, enum job_phase ph, const PGresult *res)
{
	switch (ph) {
	case PH_SESSION:
		j->session_ok = true;
		if (j->plan != BF_PLAN_BATCH)
			j->plan = BF_PLAN_UNKNOWN; /* the settings replaced a closing read's */
		return true;
	case PH_GRANTS:
		on_grants(j, res);
		return true;
	case PH_SCHEMA:
		j->schema_ok = true;
		return true;
	case PH_FAIL_ROW:
		return true;
	case PH_LOCK:
		on_lock(j, res);
		return true;
	case PH_RESOLVE:
		on_resolve(j, res);
		return true;
	case PH_ESTIMATE:
		j->estimate = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		j->estimated = true;
		return true;
	case PH_REGISTER:
		if (j->parent)
			on_slice_register(j, res);
		else
			on_register(j, res);
		return true;
	case PH_HIGH:
		on_high(j, res);
		return true;
	case PH_BACKUP:
		j->backup_ok = true;
		return true;
	case PH_DUAL_WRITE:
		if (++j->dual_write_step == 2)
			bf_log(BF_LOG_INFO, j->cfg->name,
			       "dual-write trigger in place: rows the application writes get set",
			       NULL);
		return true;
	default:
		return false;
	}
}
