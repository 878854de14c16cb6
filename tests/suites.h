/* suites.h - the Check suites gathered by check_main.c, one per pure module. */
#ifndef BACKFILLD_TEST_SUITES_H
#define BACKFILLD_TEST_SUITES_H

#include <check.h>

Suite *units_suite(void);
Suite *config_suite(void);
Suite *batchsize_suite(void);
Suite *bucket_suite(void);
Suite *window_suite(void);
Suite *pressure_suite(void);
Suite *log_suite(void);
Suite *ctl_suite(void);
Suite *sql_suite(void);
Suite *metrics_suite(void);
Suite *sqltext_suite(void);
Suite *conn_suite(void);
Suite *closing_suite(void);
Suite *gate_suite(void);
Suite *rate_suite(void);
Suite *pace_suite(void);
Suite *autopar_suite(void);
Suite *manpage_suite(void);
Suite *steps_suite(void);

#endif
