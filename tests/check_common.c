/*
 * check_common.c - the helpers of tests/check_common.h that need only libc
 * and check: temporary directories, stderr redirection, the stats
 * callback.
 */
#include "tests/check_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char check_dir[CHECK_PATH_MAX];
char check_dir_url[CHECK_PATH_MAX + 8];

int check_tmpdir_create(char *dir, size_t size, const char *tag)
{
	int n = snprintf(dir, size, "/tmp/shale-%s-XXXXXX", tag);

	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	if (!mkdtemp(dir))
		return -errno;
	return 0;
}

void check_tmpdir_remove(const char *dir)
{
	char cmd[CHECK_PATH_MAX + 16];

	if (!dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

void check_dir_setup(void)
{
	int rc = check_tmpdir_create(check_dir, sizeof(check_dir), "check");

	ck_assert_msg(rc == 0, "mkdtemp %s: %s", check_dir, strerror(-rc));
	snprintf(check_dir_url, sizeof(check_dir_url), "file://%s", check_dir);
}

void check_dir_teardown(void)
{
	check_tmpdir_remove(check_dir);
	check_dir[0] = '\0';
	check_dir_url[0] = '\0';
}

int check_stderr_quiet(void)
{
	int saved = dup(2);
	int fd = open("/dev/null", O_WRONLY);

	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(fd, 0);
	dup2(fd, 2);
	close(fd);
	return saved;
}

int check_stderr_capture(FILE **f)
{
	int saved = dup(2);

	*f = tmpfile();
	ck_assert_int_ge(saved, 0);
	ck_assert_ptr_nonnull(*f);
	/* Whatever stdio holds for the old fd 2 goes there first. */
	fflush(stderr);
	dup2(fileno(*f), 2);
	return saved;
}

void check_stderr_restore(int saved)
{
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
}

void check_stat_emit(void *arg, const char *key, uint64_t value)
{
	struct check_stat *s = arg;

	if (!strcmp(key, s->key)) {
		s->value = value;
		s->seen = 1;
	}
}
