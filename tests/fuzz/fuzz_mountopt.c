/*
 * fuzz_mountopt.c - fuzz target for the `shalefs` command-line parser
 * (cli/cli_opts.c cli_opts_parse: the -o option list, flags and
 * positional arguments of `shalefs mount`).
 *
 * The input is split at NUL bytes: the first part is the -o list, each
 * further part (at most 8) one more argv word after it, so flags, repeated
 * -o and stray positionals are fuzzed too. The command line is then
 *     shalefs -o PART0 s3://bucket/prefix /mnt PART1 PART2 ...
 * and parsed with a mount point required. The parser must return 0, 1
 * (help), -EINVAL or -ENOMEM, never crash or leak; on an error the message
 * is non-empty and terminated; on success what it kept obeys its contract:
 *   - STORE and the mount point are set, numbers are in their documented
 *     ranges, timeouts are numbers in 0..1 year;
 *   - checkpoint= is never empty and implies ro;
 *   - the pass-through FUSE options parse again to exactly themselves
 *     (escaping is stable, and none is a refused credential option).
 *
 *   libFuzzer:  scripts/fuzz SECONDS mountopt
 *   replay (default): linked with tests/fuzz/replay_main.c, run over
 *   tests/fuzz/corpus/mountopt by `make check`.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_log.h>

#define FUZZ_MAX_WORDS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libfuse logs malformed argument lists itself; millions of those lines
 * would drown libFuzzer's output. */
static void fuzz_mountopt_nolog(enum fuse_log_level level, const char *fmt, va_list ap)
{
}

static void fuzz_mountopt_check(const struct cli_opts *o)
{
	char *argv[4], err[1024];
	struct cli_opts again;
	int rc;

	if (!o->store || !o->mountpoint || o->n_nonopt != 2 || o->help)
		__builtin_trap();
	if (o->flush_interval_ms < 1 || o->flush_interval_ms > 3600000)
		__builtin_trap();
	if (o->cache_mb > (1u << 20) || o->memtable_mb > (1u << 20))
		__builtin_trap();
	if (o->write_buffer_mb < 1 || o->write_buffer_mb > (1u << 20))
		__builtin_trap();
	if (!(o->attr_timeout >= 0 && o->attr_timeout <= 86400.0 * 365) ||
	    !(o->entry_timeout >= 0 && o->entry_timeout <= 86400.0 * 365))
		__builtin_trap();
	if (o->checkpoint && (!o->checkpoint[0] || !o->ro))
		__builtin_trap();
	if (o->debug && !o->foreground)
		__builtin_trap();
	if (!o->fuse_opts)
		return;
	argv[0] = "shalefs";
	argv[1] = "-o";
	argv[2] = o->fuse_opts;
	argv[3] = "file:///s";
	rc = cli_opts_parse(&again, 4, argv, NULL, err, sizeof(err));
	if (rc == 0 && (!again.fuse_opts || strcmp(again.fuse_opts, o->fuse_opts)))
		__builtin_trap();
	if (rc != 0 && rc != -ENOMEM)
		__builtin_trap();
	cli_opts_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *argv[5 + FUZZ_MAX_WORDS], err[1024];
	struct cli_opts o;
	int argc = 0, rc;
	size_t i = 0;

	if (!copy)
		return 0;
	fuse_set_log_func(fuzz_mountopt_nolog);
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[argc++] = "shalefs";
	argv[argc++] = "-o";
	argv[argc++] = copy;
	argv[argc++] = "s3://bucket/prefix";
	argv[argc++] = "/mnt";
	for (i = strlen(copy); i < size && argc < 5 + FUZZ_MAX_WORDS; i += strlen(copy + i)) {
		i++;                    /* skip the NUL */
		if (i >= size)
			break;
		argv[argc++] = copy + i;
	}
	memset(err, 'x', sizeof(err));
	rc = cli_opts_parse(&o, argc, argv, "MOUNTPOINT", err, sizeof(err));
	if (rc == 0)
		fuzz_mountopt_check(&o);
	else if (rc == 1 && !o.help)
		__builtin_trap();
	else if (rc < 0 && rc != -EINVAL && rc != -ENOMEM)
		__builtin_trap();
	else if (rc < 0 && (err[0] == '\0' || !memchr(err, '\0', sizeof(err))))
		__builtin_trap();
	else if (rc != 0 && rc != 1 && rc >= 0)
		__builtin_trap();
	cli_opts_free(&o);
	free(copy);
	return 0;
}
