/*
 * check_main.c - the one runner for every Check suite of the pure modules.
 *
 * Each module's test file exports `Suite *<module>_suite(void)`; adding a suite is adding a
 * line to the table below. Runs in fork mode so a crash fails one test, not the run.
 */
#include <check.h>
#include <stdlib.h>

#include "suites.h"

static Suite *(*const suites[])(void) = {
        units_suite,   config_suite,   log_suite,     batchsize_suite, bucket_suite,
        window_suite,  pressure_suite, ctl_suite,     sql_suite,       metrics_suite,
        sqltext_suite, conn_suite,     closing_suite, gate_suite,      rate_suite,
        pace_suite,    manpage_suite,  steps_suite,   autopar_suite,
};

int main(void)
{
	SRunner *sr = srunner_create(NULL);

	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		srunner_add_suite(sr, suites[i]());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
