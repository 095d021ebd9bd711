/*
 * check_main.h - the main() of every unit test program.
 *
 * A test file builds each of its suites in a function returning Suite *
 * and ends with CHECK_MAIN(suite_fn, ...): the program runs those suites
 * in that order through one SRunner. The check framework's environment
 * works as usual: CK_RUN_SUITE and CK_RUN_CASE pick suites and test cases,
 * CK_FORK=no runs tests in-process (for a debugger), CK_VERBOSITY sets the
 * output (default normal), CK_TAP_LOG_FILE_NAME / CK_XML_LOG_FILE_NAME /
 * CK_LOG_FILE_NAME write logs, CK_DEFAULT_TIMEOUT and
 * CK_TIMEOUT_MULTIPLIER scale timeouts. The exit status is 0 when every
 * test passed, 1 otherwise.
 *
 * A program that must prepare something around the run (a directory the
 * suites are built over, a skip when a service is absent) writes its own
 * main() and calls check_main_run().
 */
#ifndef SHALE_TESTS_CHECK_MAIN_H
#define SHALE_TESTS_CHECK_MAIN_H

#include <check.h>
#include <stddef.h>

/*
 * check_main_run - run suites[0..n) (n >= 1) in one runner, taking
 * ownership of them. Returns the process exit status: EXIT_SUCCESS when
 * every test passed, EXIT_FAILURE otherwise.
 */
int check_main_run(Suite *const *suites, size_t n);

#define CHECK_MAIN(...)                                                             \
	int main(void)                                                              \
	{                                                                           \
		Suite *(*const check_main_make[])(void) = { __VA_ARGS__ };          \
		enum { N = sizeof(check_main_make) / sizeof(check_main_make[0]) };  \
		Suite *suites[N];                                                   \
		for (size_t i = 0; i < N; i++)                                      \
			suites[i] = check_main_make[i]();                           \
		return check_main_run(suites, N);                                   \
	}

#endif /* SHALE_TESTS_CHECK_MAIN_H */
