/*
 * check_conn.c - the reconnect policy shared by every connection (conn.h): what is permanent,
 * and the pauses between attempts.
 */
#include <ev.h>
#include <string.h>

#include "backfilld/conn.h"
#include "suites.h"

START_TEST(test_permanent_or_transient)
{
	static const char *const permanent[] = {
	        "connection to server at \"10.0.0.5\", port 5432 failed: FATAL:  password "
	        "authentication failed for user \"backfill\"",
	        "FATAL:  no pg_hba.conf entry for host \"10.0.0.9\", user \"x\", database \"app\"",
	        "FATAL:  database \"app\" does not exist",
	        "FATAL:  role \"backfill\" does not exist",
	        "FATAL:  Peer authentication failed for user \"backfill\"",
	        "invalid integer value \"abc\" for connection option \"port\"",
	        "invalid port number: \"99999\"",
	};
	static const char *const transient[] = {
	        "connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: No such "
	        "file or directory",
	        "connection to server at \"127.0.0.1\", port 5432 failed: Connection refused",
	        "could not translate host name \"db1\" to address: Name or service not known",
	        "FATAL:  the database system is starting up",
	        "FATAL:  the database system is shutting down",
	        "FATAL:  terminating connection due to administrator command",
	        "session is read-only",
	        "timed out while connecting",
	        "server closed the connection unexpectedly",
	};

	for (size_t i = 0; i < sizeof(permanent) / sizeof(*permanent); i++)
		ck_assert_msg(bf_conn_error_permanent(permanent[i]), "transient? %s", permanent[i]);
	for (size_t i = 0; i < sizeof(transient) / sizeof(*transient); i++)
		ck_assert_msg(!bf_conn_error_permanent(transient[i]), "permanent? %s",
		              transient[i]);
	ck_assert(!bf_conn_error_permanent(NULL));
}
END_TEST

/* Doubling from the first pause to the cap, each less at most a quarter (jitter), from the
 * first pause again once up; the time down is measured from the first failure. */
START_TEST(test_pauses)
{
	bf_conn_retry r = {.first_ms = 500, .max_ms = 30000, .seed = 7};
	int64_t base = 500, ms, distinct = 0, last = -1;

	for (int i = 0; i < 12; i++) {
		ms = bf_conn_retry_down(&r, 1000 + i);
		ck_assert_int_le(ms, base);
		ck_assert_int_ge(ms, base - base / 4);
		distinct += ms != last;
		last = ms;
		base = base * 2 > 30000 ? 30000 : base * 2;
	}
	ck_assert_int_ge(distinct, 8); /* jittered, not the same pause again and again */
	ck_assert_int_eq(bf_conn_retry_up(&r, 13000), 12000);
	ck_assert_int_le(bf_conn_retry_down(&r, 20000), 500);
	ck_assert_int_eq(bf_conn_retry_up(&r, 20030), 30); /* down since its first failure */
	ck_assert_int_eq(bf_conn_retry_up(&r, 25000), 0);  /* was not down */
}
END_TEST

/* Lag signals are the server's: conninfos naming one server share a monitor. */
START_TEST(test_same_server)
{
	ck_assert(bf_conn_same_server("host=127.0.0.1 port=5433 dbname=a user=x",
	                              "postgresql://y@127.0.0.1:5433/b?connect_timeout=3"));
	ck_assert(bf_conn_same_server("host=h1,h2 port=1,2 dbname=a",
	                              "dbname=b host=h1,h2 port=1,2"));
	ck_assert(bf_conn_same_server("dbname=a", "b")); /* a bare name, defaults for the rest */
	ck_assert(!bf_conn_same_server("host=127.0.0.1 port=5433", "host=127.0.0.1 port=5434"));
	ck_assert(!bf_conn_same_server("host=h1 port=1", "host=h2 port=1"));
	ck_assert(!bf_conn_same_server("host='unterminated", "host=x"));
	ck_assert(bf_conn_same_server("host='unterminated", "host='unterminated"));
}
END_TEST

static void ignore(bf_conn *c, void *o, bf_conn_event ev, const PGresult *r, const char *e,
                   const PGnotify *n)
{
	(void)c, (void)o, (void)ev, (void)r, (void)e, (void)n;
}

/* A connection records each outage once, whoever notices it, with its class and pause. */
START_TEST(test_outages_recorded_once)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	bf_conn *c = bf_conn_new(loop, "t", ignore, NULL);
	char err[256];
	int64_t first;

	bf_conn_set_retry(c, 100, 1000);
	first = bf_conn_drop(c, "Connection refused");
	ck_assert_int_le(first, 100);
	ck_assert_int_ge(first, 75);
	ck_assert(!bf_conn_down_for_good(c));
	/* the same outage told again (the owner after BF_CONN_LOST): the same pause */
	ck_assert_int_eq(bf_conn_drop(c, "connection lost"), first);
	/* a new attempt that fails: a new outage, a longer pause */
	ck_assert_int_eq(
	        bf_conn_connect(c, "host=127.0.0.1 port=1 dbname=x", "t", 1000, err, sizeof(err)),
	        0);
	ck_assert_int_ge(bf_conn_drop(c, "Connection refused"), 150);
	/* a conninfo that does not parse: for good, at the slowest pace */
	ck_assert_int_eq(bf_conn_connect(c, "host='open", "t", 1000, err, sizeof(err)), -1);
	ck_assert(bf_conn_down_for_good(c));
	ck_assert_int_ge(bf_conn_drop(c, err), 750);
	ck_assert_int_eq(bf_conn_down_ms(c), 0); /* never connected */
	bf_conn_free(c);
	ev_loop_destroy(loop);
}
END_TEST

Suite *conn_suite(void)
{
	Suite *s = suite_create("conn");
	TCase *tc = tcase_create("policy");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_permanent_or_transient);
	tcase_add_test(tc, test_pauses);
	tcase_add_test(tc, test_same_server);
	tcase_add_test(tc, test_outages_recorded_once);
	suite_add_tcase(s, tc);
	return s;
}
