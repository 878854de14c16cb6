/*
 * pressure.c - the lag decision with hysteresis (see pressure.h for the rules and the words).
 *
 * One pass over the sample considers every signal once. Each signal either exceeds its limit
 * ("over"), or sits in the hysteresis band (at or above its resume threshold, not over the
 * limit), or is clear. The worst "over" signal throttles in any case; the worst "band" signal
 * keeps an already throttled job throttled. Only the winner is turned into words, at the end.
 */
#include "backfilld/pressure.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backfilld/units.h"

enum signal {
	SIG_NOT_STREAMING,
	SIG_MIN_STANDBYS,
	SIG_REPLAY_BYTES,
	SIG_REPLAY_TIME,
	SIG_STALL,
	SIG_SLOT,
	SIG_ARCHIVE,
};

enum unit { U_BYTES, U_MS, U_COUNT };

/* One offending signal: enough to write its reason. */
struct offense {
	bool set;
	enum signal sig;
	double severity;         /* value / limit (or threshold); HUGE_VAL for yes/no signals */
	const char *name;        /* the standby or slot */
	const char *detail;      /* a standby's state, a slot's wal_status */
	const bf_lag_slot *slot; /* the slot of a missing standby */
	int64_t value;
	int64_t limit; /* the limit when over, the resume threshold in the band */
};

struct verdict {
	double resume_below;
	struct offense over; /* the worst signal above its limit */
	struct offense band; /* the worst signal in the hysteresis band */
};

static const char *str(const char *s)
{
	return s ? s : "";
}

static const char *who(const char *name)
{
	return name && name[0] ? name : "(unnamed)";
}

/* Keep the worse of two offenses; on a tie the first one seen stays. */
static void consider(struct offense *best, const struct offense *o)
{
	if (!best->set || o->severity > best->severity)
		*best = *o;
}

static void yes_no(struct verdict *v, enum signal sig, const char *name, const char *detail,
                   const bf_lag_slot *slot, int64_t value, int64_t limit)
{
	struct offense o = {.set = true,
	                    .sig = sig,
	                    .severity = HUGE_VAL,
	                    .name = name,
	                    .detail = detail,
	                    .slot = slot,
	                    .value = value,
	                    .limit = limit};
	consider(&v->over, &o);
}

/* The resume threshold of a limit: ceil(limit * resume_below), so "value < threshold" is
 * "value < limit * resume_below" for integer values. With limit >= 1 and resume_below in
 * [0.01, 1] it is at least 1 (a value of 0 always resumes) and at most the limit. */
static int64_t threshold(int64_t limit, double resume_below)
{
	double t = (double)limit * resume_below;

	t = ceil(t - t * 1e-12); /* 10000 * 0.3 must give 3000, not 3001 */
	return t >= (double)limit ? limit : (int64_t)t;
}

/* A numeric signal: off when limit <= 0, not measured when value < 0. */
static void numeric(struct verdict *v, enum signal sig, const char *name, const char *detail,
                    int64_t value, int64_t limit)
{
	if (limit <= 0 || value < 0)
		return;
	struct offense o = {.set = true, .sig = sig, .name = name, .detail = detail};
	if (value > limit) {
		o.value = value;
		o.limit = limit;
		o.severity = (double)value / (double)limit;
		consider(&v->over, &o);
		return;
	}
	int64_t thr = threshold(limit, v->resume_below);
	if (value >= thr) {
		o.value = value;
		o.limit = thr;
		o.severity = (double)value / (double)thr;
		consider(&v->band, &o);
	}
}

static bool is_streaming(const bf_lag_standby *sb)
{
	return strcmp(str(sb->state), "streaming") == 0;
}

/* Each name of `standbys` must be listed and streaming. */
static void check_required(struct verdict *v, const bf_lag_config *cfg, const bf_lag_sample *s)
{
	for (size_t i = 0; i < cfg->n_standbys; i++) {
		const char *name = str(cfg->standbys[i]);
		const bf_lag_standby *listed = NULL;
		bool streaming = false;

		for (size_t j = 0; j < s->n_standbys && !streaming; j++) {
			const bf_lag_standby *sb = &s->standbys[j];
			if (strcmp(str(sb->name), name) != 0)
				continue;
			/* name the state of the standby, not of a base backup under its name */
			if (listed == NULL || strcmp(str(listed->state), "backup") == 0)
				listed = sb;
			streaming = is_streaming(sb);
		}
		if (streaming)
			continue;
		if (listed != NULL) {
			yes_no(v, SIG_NOT_STREAMING, name, str(listed->state), NULL, 0, 0);
			continue;
		}
		const bf_lag_slot *slot = NULL;
		for (size_t j = 0; j < s->n_slots && slot == NULL; j++) {
			if (strcmp(str(s->slots[j].name), name) == 0 &&
			    s->slots[j].retained_bytes >= 0)
				slot = &s->slots[j];
		}
		yes_no(v, SIG_NOT_STREAMING, name, NULL, slot, 0, 0);
	}
}

static void check_min_standbys(struct verdict *v, const bf_lag_config *cfg, const bf_lag_sample *s)
{
	int64_t n = 0;

	if (cfg->min_standbys <= 0)
		return;
	for (size_t j = 0; j < s->n_standbys; j++)
		n += is_streaming(&s->standbys[j]);
	if (n < cfg->min_standbys)
		yes_no(v, SIG_MIN_STANDBYS, NULL, NULL, NULL, n, cfg->min_standbys);
}

static void check_standbys(struct verdict *v, const bf_lag_config *cfg, const bf_lag_sample *s)
{
	for (size_t j = 0; j < s->n_standbys; j++) {
		const bf_lag_standby *sb = &s->standbys[j];
		if (strcmp(str(sb->state), "backup") == 0)
			continue; /* a base backup replays nothing */
		numeric(v, SIG_REPLAY_BYTES, sb->name, NULL, sb->replay_bytes,
		        cfg->max_replay_bytes);
		numeric(v, SIG_REPLAY_TIME, sb->name, NULL, sb->replay_lag_ms,
		        cfg->max_replay_time_ms);
		numeric(v, SIG_STALL, sb->name, NULL, sb->reply_age_ms, cfg->stall_after_ms);
	}
}

static void check_slots(struct verdict *v, const bf_lag_config *cfg, const bf_lag_sample *s)
{
	for (size_t j = 0; j < s->n_slots; j++) {
		const bf_lag_slot *sl = &s->slots[j];
		numeric(v, SIG_SLOT, sl->name, sl->wal_status, sl->retained_bytes,
		        cfg->max_slot_retained);
	}
}

/* A value in words: rounded for reading ("81MB", "12.5s"), or exact ("67108865B"). */
static void format(enum unit u, int64_t x, bool exact, char *buf, size_t len)
{
	switch (u) {
	case U_BYTES:
		if (exact)
			snprintf(buf, len, "%" PRId64 "B", x);
		else
			bf_units_format_size(x, buf, len);
		break;
	case U_MS:
		if (exact)
			snprintf(buf, len, "%" PRId64 "ms", x);
		else
			bf_units_format_duration(x, buf, len);
		break;
	case U_COUNT:
		snprintf(buf, len, "%" PRId64, x);
		break;
	}
}

/* A value and its limit in words; the value exactly when rounding would make them equal. */
static void format_pair(enum unit u, int64_t value, int64_t limit, char *vbuf, char *lbuf,
                        size_t len)
{
	format(u, value, false, vbuf, len);
	format(u, limit, false, lbuf, len);
	if (value != limit && strcmp(vbuf, lbuf) == 0)
		format(u, value, true, vbuf, len);
}

static void write_reason(const struct offense *o, bool over, char *out, size_t len)
{
	static const enum unit units[] = {
	        [SIG_NOT_STREAMING] = U_COUNT,
	        [SIG_MIN_STANDBYS] = U_COUNT,
	        [SIG_REPLAY_BYTES] = U_BYTES,
	        [SIG_REPLAY_TIME] = U_MS,
	        [SIG_STALL] = U_MS,
	        [SIG_SLOT] = U_BYTES,
	        [SIG_ARCHIVE] = U_COUNT,
	};
	char val[32], lim[32], extra[32];
	const char *sep = over ? " > " : ", resuming below ";

	format_pair(units[o->sig], o->value, o->limit, val, lim, sizeof(val));
	switch (o->sig) {
	case SIG_NOT_STREAMING:
		if (o->detail != NULL) {
			snprintf(out, len, "%s not streaming (state %s)", o->name,
			         o->detail[0] ? o->detail : "unknown");
		} else if (o->slot != NULL) {
			bf_units_format_size(o->slot->retained_bytes, extra, sizeof(extra));
			snprintf(out, len, "%s not streaming (not connected; slot %s retains %s)",
			         o->name, str(o->slot->name), extra);
		} else {
			snprintf(out, len, "%s not streaming (not connected)", o->name);
		}
		break;
	case SIG_MIN_STANDBYS:
		snprintf(out, len, "%s streaming standbys < min_standbys %s", val, lim);
		break;
	case SIG_REPLAY_BYTES:
		snprintf(out, len, "replay lag %s%s%s on %s", val, sep, lim, who(o->name));
		break;
	case SIG_REPLAY_TIME:
		snprintf(out, len, "replay time %s%s%s on %s", val, sep, lim, who(o->name));
		break;
	case SIG_STALL:
		snprintf(out, len, "%s stalled: last reply %s ago%s%s", who(o->name), val, sep,
		         lim);
		break;
	case SIG_SLOT:
		snprintf(out, len, "slot %s retains %s%s%s%s", who(o->name), val, sep, lim,
		         o->detail && strcmp(o->detail, "unreserved") == 0
		                 ? " (wal_status unreserved)"
		                 : "");
		break;
	case SIG_ARCHIVE:
		snprintf(out, len, "archive backlog %s segments%s%s", val, sep, lim);
		break;
	}
}

/* The class of an offending signal, for the metrics (state.h). */
static bf_hold hold_of(enum signal sig)
{
	switch (sig) {
	case SIG_SLOT:
		return BF_HOLD_SLOT;
	case SIG_ARCHIVE:
		return BF_HOLD_ARCHIVE;
	case SIG_NOT_STREAMING:
	case SIG_MIN_STANDBYS:
	case SIG_REPLAY_BYTES:
	case SIG_REPLAY_TIME:
	case SIG_STALL:
		break;
	}
	return BF_HOLD_REPLAY_LAG;
}

/* Fail closed: throttle because the signal cannot be read. */
static bf_hold unreadable(char *reason, size_t len, const char *why)
{
	if (reason != NULL && len > 0)
		snprintf(reason, len, "lag signal unreadable: %s", why);
	return BF_HOLD_LAG_PROBE;
}

bool bf_pressure_enabled(const bf_lag_config *cfg)
{
	return bf_lag_config_limited(cfg);
}

bf_hold bf_pressure_decide(const bf_lag_config *cfg, const bf_lag_sample *s, bool throttled,
                           int64_t now_ms, char *reason, size_t len)
{
	struct verdict v = {.resume_below = cfg->resume_below};
	int64_t stale_after = cfg->check_interval_ms * BF_PRESSURE_STALE_CHECKS;

	if (reason != NULL && len > 0)
		reason[0] = '\0';
	if (!bf_pressure_enabled(cfg))
		return BF_HOLD_NONE;
	if (s == NULL)
		return unreadable(reason, len, "no sample yet");
	if (!s->ok)
		return unreadable(reason, len,
		                  s->error && s->error[0] ? s->error : "unknown error");
	if (stale_after < 1000)
		stale_after = 1000;
	if (now_ms - s->taken_ms > stale_after) {
		char age[32], why[64];
		bf_units_format_duration(now_ms - s->taken_ms, age, sizeof(age));
		snprintf(why, sizeof(why), "last sample %s old", age);
		return unreadable(reason, len, why);
	}
	if (!(v.resume_below > 0.01)) /* also NaN */
		v.resume_below = 0.01;
	if (v.resume_below > 1)
		v.resume_below = 1;

	check_required(&v, cfg, s);
	check_min_standbys(&v, cfg, s);
	check_standbys(&v, cfg, s);
	check_slots(&v, cfg, s);
	numeric(&v, SIG_ARCHIVE, NULL, NULL, s->archive_backlog, cfg->max_archive_backlog);

	const struct offense *o = v.over.set ? &v.over : throttled && v.band.set ? &v.band : NULL;
	if (o == NULL)
		return BF_HOLD_NONE;
	if (reason != NULL && len > 0)
		write_reason(o, o == &v.over, reason, len);
	return hold_of(o->sig);
}
