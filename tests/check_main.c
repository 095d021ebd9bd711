/*
 * check_main.c - the runner behind CHECK_MAIN (tests/check_main.h).
 */
#include "tests/check_main.h"

#include <stdlib.h>

int check_main_run(Suite *const *suites, size_t n)
{
	SRunner *sr = srunner_create(suites[0]);
	int failed;

	for (size_t i = 1; i < n; i++)
		srunner_add_suite(sr, suites[i]);
	/* CK_ENV: CK_VERBOSITY chooses the output, normal when unset. */
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
