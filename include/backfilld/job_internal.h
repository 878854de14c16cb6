/*
 * job_internal.h - the inside of a job, shared by the files that make it up; nothing else
 * includes it.
 *
 *   job.c       the life cycle, the public controls (job.h), step() and its stages, where
 *               results land, errors and reconnects, and the batches themselves;
 *   jobsetup.c  what a fresh connection sets up before a batch: session settings, grants,
 *               control schema, advisory lock, the table, the estimate, the job's (or a
 *               slice's) row and the high-water mark;
 *   walk.c      the batches of a pass, and the closing read after it;
 *   slices.c    the slices of a parallel or partitioned first pass: cut or read, started,
 *               followed, and their figures added to the job's;
 *   finish.c    once the data is done (state finishing): the verify walk, the then: steps;
 *   undo.c      backfillctl undo (state undoing): the backup's old values put back.
 * The decisions they share live in pure modules: closing.h (the closing read and sweeps),
 * gate.h (may a batch run now), batchsize.h, rate.h.
 */
#ifndef BACKFILLD_JOB_INTERNAL_H
#define BACKFILLD_JOB_INTERNAL_H

#include <ev.h>
#include <libpq-fe.h>

#include "backfilld/autopar.h"
#include "backfilld/batchsize.h"
#include "backfilld/closing.h"
#include "backfilld/conn.h"
#include "backfilld/gate.h"
#include "backfilld/job.h"
#include "backfilld/rate.h"
#include "backfilld/sql.h"

#define BF_JOB_ERR_LEN 512

/* What the job waits for: a connection, the result of one query, or a timer. Results land
 * in one switch (job.c on_result) whose default logs and reconnects. */
enum job_phase {
	PH_IDLE,       /* nothing in flight: step() decides */
	PH_CONNECT,    /* waiting for BF_CONN_CONNECTED */
	PH_SESSION,    /* session settings */
	PH_SCHEMA,     /* control schema */
	PH_LOCK,       /* pg_try_advisory_lock */
	PH_RESOLVE,    /* catalog lookup */
	PH_ESTIMATE,   /* TABLESAMPLE estimate */
	PH_REGISTER,   /* insert or read the job's (or the slice's) row */
	PH_HIGH,       /* high-water mark */
	PH_PREPARE,    /* the two batch statements */
	PH_STATE,      /* a state change */
	PH_BATCH,      /* a batch */
	PH_CLOSING,    /* a statement of the closing read */
	PH_TXN,        /* BEGIN or ROLLBACK around a dry-run batch */
	PH_PLAN,       /* the session's plans and statement_timeout for the closing read, or back */
	PH_CLOCK,      /* the server's local wall time, for the window */
	PH_SLICES,     /* the slices of a parallel first pass, read or cut */
	PH_GRANTS,     /* what the role lacks for the control schema */
	PH_FAIL_ROW,   /* the failed row of a job that failed before it registered */
	PH_STEP,       /* a statement of the then: steps (finish.c; which one: step_sub) */
	PH_DUAL_WRITE, /* the dual-write trigger's function, then the trigger */
	PH_BACKUP,     /* the backup table, created when missing (backup: true) */
	PH_UNDO,       /* a statement of the undo (undo.c; which one: undo_sub) */
	PH_TIMER,      /* sleep, backoff or lock retry */
	PH_FINISHED,   /* the connection is closed for good */
};

/* The statement of the then: steps in flight (finish.c). */
enum step_sub {
	STEP_SESSION,  /* statement_timeout off for this connection */
	STEP_LOAD,     /* the steps' rows written, the first one not done read */
	STEP_INDEX,    /* the index of a CREATE INDEX CONCURRENTLY looked up */
	STEP_DROP,     /* its INVALID leftover dropped */
	STEP_BEGIN,    /* the step's transaction */
	STEP_RUN,      /* the step's statement */
	STEP_RECORD,   /* its row: done, or this attempt's error */
	STEP_COMMIT,   /* the step and its row */
	STEP_ROLLBACK, /* a failed step's transaction */
	VERIFY_RESET,  /* a fresh verify walk */
	VERIFY_READ,   /* where the walk is (a restart) */
	VERIFY_RANGE,  /* one range of it */
};

/* The statement of the undo in flight (undo.c). */
enum undo_sub {
	UNDO_BEGIN, /* the row marked undoing, where the undo is read */
	UNDO_RANGE, /* one range of the backup put back */
};

/* Why a state change is being written, so that its result knows what follows. */
enum after_state { AFTER_NOTHING, AFTER_NEW_PASS };

struct bf_job {
	bf_job_env env;
	bf_job_config *cfg;
	bf_conn *conn;
	char *log_name;
	enum job_phase phase;
	ev_timer timer;

	/* what the current connection carries; all false after a reconnect */
	bool session_ok, grants_ok, schema_ok, locked;
	bool fail_row_sent; /* a failure before registration was written, or tried once */
	int prepared;       /* how many of the two batch statements are prepared */
	bool in_txn;        /* a dry-run batch's transaction is open */
	bf_plan plan;       /* what the session is set up for */
	bf_plan plan_sent;  /* what the PH_PLAN in flight sets it up for */

	/* what the job knows from the database */
	bf_sql_target *target;
	char *table_name; /* nsp.rel for the jobs row */
	bool estimated, registered, high_known;
	bool has_row; /* registered once: the row exists, even while it is being read again */
	int64_t estimate;
	char **cursor; /* NULL when the pass starts at the first key */
	char **high;   /* NULL when the table was empty at the first start */
	int pass;
	int64_t rows_done;
	bool pass_end;  /* the last batch reached the high-water mark */
	bool sleep_due; /* the pause between batches comes before the next one */
	bf_closing closing;

	/* states: `db` as last written, `state` as step() should write it next */
	bf_job_state db_state, state;
	char *reason;
	char *db_reason;
	char *last_error; /* to write with the next state change, then NULL */
	/* errors to count: one is to count while they differ (a state write counts one, however
	 * many came since the last) */
	uint64_t error_gen, db_error_gen;
	/* what the state write in flight carries: its result records that as written, not what
	 * the job became meanwhile (a slice can fail its parent while `running` is on the wire) */
	bf_job_state state_sent;
	char *reason_sent;
	uint64_t error_gen_sent;
	bool rewind; /* the next state change rewinds the cursor (a new pass) */
	enum after_state after;

	bool started, stopping, finished;
	const char *stop_reason;  /* the reason written when stopping leaves the job pending */
	char *pause_reason;       /* set while paused by the daemon (a signal) */
	char *requested;          /* requested_state from the control table */
	bool poke;                /* re-read requested_state before the next batch */
	int64_t batch_size;       /* keys per batch now, from the controller */
	int64_t batch_keys;       /* keys the batch in flight asked for (batch_size, paced) */
	bool fast;                /* the batch in flight is the plain-UPDATE fast path */
	int64_t skip_locked;      /* batches left to run straight with SKIP LOCKED */
	bf_batchsize ctl;         /* adapts batch_size toward target_batch_time */
	bf_gate gate;             /* window, lag, rate cap */
	struct bf_lagmon *lagmon; /* the server's lag signals, shared, owned by the daemon */
	int64_t retries;          /* consecutive transient errors */
	int64_t reconnects;       /* consecutive failed connection attempts */
	char *down_reason;        /* why the connection went, until it is back */
	int64_t batch_sent_ms;    /* monotonic, for the batch's round-trip time */
	bool in_batch;            /* a batch is in flight: its monitor counts it (busy) */
	bool paced;               /* the state's reason is the pace's (pace.h) */
	int64_t last_batch_ms;
	bf_rate rate;
	bf_job_counts counts; /* for the metrics; a slice counts into its job's */
	int dual_write_step;  /* dual_write: 0 its function next, 1 its trigger, 2 in place */
	bool backup_ok;       /* the backup table is there (checked on this connection) */
	int64_t backup_bytes; /* its size, as the last batch (or the undo's start) read it */

	/* backfillctl undo (undo.c) */
	bool undoing;      /* the backup's old values go back: no batch, no step */
	bool undo_to_null; /* ... or, without a backup, NULL (undo --to-null) */
	bool refused;      /* an undo asked for cannot run: the job stays as it was */
	bool undo_known;   /* begun (or resumed) on this connection */
	bool undo_over;    /* the backup is walked */
	enum undo_sub undo_sub;
	char **undo_cursor; /* the last backup key put back; NULL: from the first */
	int64_t undo_rows, undo_skipped;
	char *undo_keys; /* the first keys skipped */

	/* the then: steps, once the data is done (finish.c) */
	bool finishing;             /* the data is done: the steps run, no batch */
	struct bf_step_stmt *steps; /* the statements, for this job's table */
	size_t n_steps, step_at;    /* step_at: the statement in hand (0-based) */
	enum step_sub step_sub;     /* what is in flight in PH_STEP */
	bool step_session;          /* this connection runs without statement_timeout */
	bool steps_loaded;          /* the rows are written and step_at read, on this connection */
	bool step_txn;              /* the statement's transaction is open */
	bool step_checked;          /* its index was looked up */
	bool step_invalid;          /* ... and an INVALID one is to drop first */
	bool step_ran, step_recorded; /* the statement succeeded; its row says so */
	char *step_error;             /* the statement failed: its row says why next */
	bool step_retry;              /* ... and it is tried again (a lock, a conflict) */
	int64_t step_retry_at;        /* ... not before then (monotonic ms) */
	/* verify: true, before the steps */
	bool verify_fresh;    /* the walk starts over (a new end of the data) */
	bool verify_known;    /* where it is was read, or reset */
	bool verify_over;     /* over (verified when nothing differed) */
	char **verify_cursor; /* the last key read; NULL: from the first */
	int64_t verify_rows, verify_bad;
	char *verify_keys; /* the first keys that differ */
	int64_t step_sent_ms;
	bf_hold hold; /* what holds this walker back now (bf_job_hold) */
	int64_t hold_since;
	bool logged_waiting_lock;
	bool resumed; /* "resuming from the checkpoint" said once */

	/* A parallel or partitioned first pass (slices.c). A slice job has `parent` set. */
	bf_job *parent;
	int slice; /* 1.. for a slice job */
	bf_job **slices;
	size_t n_slices, slices_live;
	int *pending; /* slices not done and not started yet, in order */
	size_t n_pending, next_pending;
	size_t walkers;           /* how many slices walk at once (the rate cap's share) */
	bf_autopar autopar;       /* ... under parallel: auto */
	bool slices_known;        /* read (or cut) since the last registration */
	int64_t rows_new;         /* rows updated by this object's batches */
	int64_t rows_at_register; /* the slices' rows_new when this job last registered */
};

/* job.c, for its siblings */
bf_job *bf_job_create(const bf_job_env *env, const bf_job_config *cfg, char *log_name);
void bf_job_set_state(bf_job *j, bf_job_state s, const char *reason);
/* The same state with a new reason, a figure of progress: written with the next state write,
 * not logged. */
void bf_job_set_reason(bf_job *j, const char *reason);
void bf_job_fail_with(bf_job *j, const char *msg); /* also the last_error, counted */
void bf_job_finish(bf_job *j);
void bf_job_stop_for(bf_job *j, const char *why);
/* What holds this walker back from `now` (BF_HOLD_NONE: nothing); the hold that ends is
 * counted in its job's throttled time. A job whose slices walk is not held itself. */
void bf_job_hold(bf_job *j, bf_hold h, int64_t now);
void bf_job_arm_timer(bf_job *j, int64_t ms);
/* A batch (or an undo's range) is sent: its round trip starts, and its server's monitor leaves
 * it out of the idle baseline until it is over. */
void bf_job_batch_begins(bf_job *j);
/* requested_state from column `col` of row 0 (none when there is no row, or NULL). */
void bf_job_take_requested(bf_job *j, const PGresult *res, int col);
void bf_job_send(bf_job *j, enum job_phase ph, const char *sql, int n, const char *const *v);
void bf_job_send_simple(bf_job *j, enum job_phase ph, const char *sql);
/* A statement could not be sent for a reason of ours (not a lost connection): fail, let go. */
void bf_job_send_failed(bf_job *j, const char *err);
void bf_job_forget_checkpoint(bf_job *j);
/* n values of row 0 from column `first` on, copied. */
char **bf_job_values(const PGresult *res, int first, size_t n);

/* jobsetup.c: send the next statement a fresh connection needs before batches; false when
 * there is none left. */
bool bf_setup_next(bf_job *j);
/* The result of a setup statement; false when `ph` is not one. */
bool bf_setup_take(bf_job *j, enum job_phase ph, const PGresult *res);
/* The high-water mark when it is not known yet; false when it is. */
bool bf_setup_high(bf_job *j);
/* A job that failed before it had a row: its failed row, when it can be written. */
bool bf_setup_fail_row(bf_job *j);
/* The control schema as the job uses it (pg_temp in a dry run), quoted; NULL after failing
 * the job. */
char *bf_setup_quoted_schema(bf_job *j);
/* The job's set as `column = expression` items, the columns quoted for this connection, for
 * what evaluates set again (the dual-write trigger, verify). False after failing the job (and
 * arming its timer, so that it lets go). */
typedef struct bf_quoted_set {
	struct bf_set_item *items;
	char **qcols;
	const char **exprs;
	size_t n;
} bf_quoted_set;
bool bf_setup_quoted_set(bf_job *j, bf_quoted_set *out);
void bf_quoted_set_free(bf_quoted_set *q);

/* finish.c: the then: steps */
/* The data is done: the verify walk and the steps next (state finishing), or done (with
 * done_reason, may be NULL) when there are none. */
void bf_finish_begin(bf_job *j, const char *done_reason);
/* Inside a step's transaction, or after its statement failed: what comes next before
 * anything else may run (a pause never holds a step's locks); false when not midway. */
bool bf_finish_midway(bf_job *j);
/* The next statement of a finishing job (after `wait`, the gate's, between statements);
 * false when the job is not finishing. */
bool bf_finish_next(bf_job *j, int64_t wait);
void bf_finish_take(bf_job *j, const PGresult *res);
/* A step's statement failed: true when the steps handle it (retried or failing the job). */
bool bf_finish_error(bf_job *j, enum job_phase ph, const char *code, const char *text);
/* The connection went: what it carried (session, transaction) is gone. */
void bf_finish_forget(bf_job *j);
void bf_finish_free(bf_job *j); /* and the statements, at the job's end */

/* undo.c */
/* The next statement of an undoing job (after `wait`, the gate's, between ranges); false when
 * the job is not undoing. */
bool bf_undo_next(bf_job *j, int64_t wait);
void bf_undo_take(bf_job *j, const PGresult *res);
void bf_undo_forget(bf_job *j); /* the connection went */
void bf_undo_free(bf_job *j);

/* walk.c */
void bf_walk_prepare(bf_job *j); /* the next of the two batch statements */
void bf_walk_batch(bf_job *j);   /* one batch from the cursor */
void bf_walk_take_batch(bf_job *j, const PGresult *res);
void bf_walk_fast_path_locked(bf_job *j); /* the fast path met a lock: SKIP LOCKED a while */
/* At the end of a pass: the closing read's next statement, or its plan, after the gate's
 * `wait` as a batch; between passes the session's plan back to the batches'. False when there
 * is nothing to send. */
bool bf_walk_closing(bf_job *j, int64_t wait);
void bf_walk_take_closing(bf_job *j, const PGresult *res);

/* slices.c */
void bf_slices_free(bf_job *j);
/* A slice's configuration: the job's, its rate cap shared among n walkers. */
bf_job_config *bf_slices_config(const bf_job_config *cfg, size_t n);
/* Read or cut the slices of a first pass, start them, follow them; true when it sent,
 * armed or waits for something (step() stops there). */
bool bf_slices_next(bf_job *j);
void bf_slices_take(bf_job *j, const PGresult *res);
/* Rows of the job's row when it was read, plus what its slices did since. */
int64_t bf_slices_rows(const bf_job *j);
double bf_slices_rate(bf_job *j, int64_t now);
/* The slice whose batch size shows (the first still walking), or the job. */
const bf_job *bf_slices_walker(const bf_job *j);
/* The job registered: its row counts what the slices did so far. */
void bf_slices_registered(bf_job *j);

#endif
