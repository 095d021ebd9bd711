/*
 * cli_common.c - what every `shalefs` command shares short of the store:
 * its error lines (cli_err, and cli_quiet, which silences the libraries'
 * own lines while a command opens things), the usage text, and the
 * parsing of a command's arguments into a struct cli_opts (cli_opts.c
 * does the option table).
 *
 * The bottom of cli/ with cli_opts.c: the command files, cli_open.c and
 * cli_main.c call it, and it calls none of them.
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where cli_err writes: stderr, or the saved stderr while the
 * libraries' own log lines are silenced (cli_quiet). */
static int cli_errfd = 2;
static int cli_saved_fd = -1;

void cli_err(const char *fmt, ...)
{
	va_list ap;
	char line[1024];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	dprintf(cli_errfd, "shalefs: %s\n", line);
}

void cli_err_stale(const char *mp)
{
	cli_err("%s: the mount is stale (its daemon is gone: transport endpoint is not "
		"connected); run `fusermount3 -u %s` to remove it", mp, mp);
}

void cli_json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/*
 * While opening the store, the engine and the filesystem, the libraries
 * log failures themselves; the command prints one line that repeats the
 * cause (obj_last_error, fs_last_error). So their lines are dropped during
 * that phase unless SHALEFS_LOG asks for info or debug output.
 */
int cli_stderr_fd(void)
{
	return cli_errfd;
}

void cli_quiet(int on)
{
	if (on && cli_saved_fd < 0 && util_log_get_level() < UTIL_LOG_INFO) {
		int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
		cli_saved_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
		if (nul < 0 || cli_saved_fd < 0) {
			if (nul >= 0)
				close(nul);
			if (cli_saved_fd >= 0)
				close(cli_saved_fd);
			cli_saved_fd = -1;
			return;
		}
		fflush(stderr);
		dup2(nul, 2);
		close(nul);
		cli_errfd = cli_saved_fd;
	} else if (!on && cli_saved_fd >= 0) {
		fflush(stderr);
		dup2(cli_saved_fd, 2);
		close(cli_saved_fd);
		cli_saved_fd = -1;
		cli_errfd = 2;
	}
}

/* ---- options (parsed in cli_opts.c) --------------------------------------- */

/* Each command's synopsis and one line of what it does (shalefs(1)). */
static const struct {
	const char *name, *synopsis, *what;
} cli_cmds[] = {
	{ "mount", "mount [-f] [-d] [-o OPT[,OPT...]] STORE MOUNTPOINT",
	  "mount a store (waits up to lease_wait= for an unmount of it on this host)" },
	{ "umount", "umount [--lazy] MOUNTPOINT",
	  "unmount; returns once the daemon has flushed everything and exited" },
	{ "sync", "sync MOUNTPOINT", "make everything written to the mount so far durable" },
	{ "format", "format [-o OPT,...] [--force] [--encrypt] STORE",
	  "create a store in an empty location (--force: one holding other objects;\n"
	  "--encrypt: encrypted with -o key_file= or passphrase_file=)" },
	{ "rekey", "rekey -o key_file=OLD|passphrase_file=OLD --new-key-file=NEW|"
	  "--new-passphrase-file=NEW STORE",
	  "wrap an encrypted store's data key with a new master key" },
	{ "checkpoint", "checkpoint create [-o OPT,...] [--expire DURATION] STORE|MOUNTPOINT NAME\n"
	  "       shalefs checkpoint list [-o OPT,...] STORE\n"
	  "       shalefs checkpoint delete [-o OPT,...] [--force] STORE NAME",
	  "named, read-only snapshots (mount one with -o checkpoint=NAME)" },
	{ "stats", "stats [-o OPT,...] [--watch N | --json | --raw] MOUNTPOINT|STORE",
	  "what is mounted, its state, sizes, request rates and last error (--watch N: one\n"
	  "line of rates every N seconds until Ctrl-C; --json: all of it and every counter as\n"
	  "one JSON object; --raw: the counters as \"key: value\" lines)" },
	{ "fsck", "fsck [-o OPT,...] [--json] [--repair] STORE\n"
	  "       shalefs fsck --scrub [--jobs N] [--json] [--repair [--dry-run|--yes]] STORE",
	  "check a store (exit 0 clean, 1 corrected, 4 problems left, 8 could not run);\n"
	  "--scrub reads every byte and names the paths damage costs; --scrub --repair lists\n"
	  "what it can mend without guessing, and does it with --yes" },
};
#define CLI_N_CMDS (sizeof(cli_cmds) / sizeof(cli_cmds[0]))

void cli_usage(FILE *f, const char *cmd)
{
	for (size_t i = 0; i < CLI_N_CMDS; i++) {
		if (cmd && !strcmp(cmd, cli_cmds[i].name)) {
			fprintf(f, "usage: shalefs %s\n%s.\n", cli_cmds[i].synopsis,
				cli_cmds[i].what);
			if (strcmp(cmd, "mount") != 0 && strcmp(cmd, "umount") != 0 &&
			    strcmp(cmd, "sync") != 0)
				fprintf(f, "STORE is file:///abs/dir or s3://bucket[/prefix]; the -o "
					"options that reach it are those of mount.\n");
			fprintf(f, "See shalefs(1).\n");
			if (strcmp(cmd, "mount") != 0)
				return;
			break;
		}
	}
	if (!cmd || strcmp(cmd, "mount") != 0) {
		fprintf(f, "usage: shalefs COMMAND ...\n");
		for (size_t i = 0; i < CLI_N_CMDS; i++)
			fprintf(f, "       shalefs %s\n", cli_cmds[i].synopsis);
		fprintf(f, "       shalefs --version | --help | COMMAND --help\n");
	}
	fprintf(f,
		"STORE is file:///abs/dir or s3://bucket[/prefix]. Options:\n"
		"  ro, allow_other, flush_interval_ms=N, cache_mb=N, write_buffer_mb=N, memtable_mb=N,\n"
		"  data_min_kb=N, data_rewrite_pct=N, wal_bypass_mb=N, wal_bypass_quiet_ms=N, inode_cache=N, attr_timeout=S,\n"
		"  entry_timeout=S, gc_interval=S, gc_min_age=S, reserve_mb=N, table_mb=N,\n"
		"  poll_interval_ms=N, price_put=$ price_get=$ (per 1,000), price_gb_month=$,\n"
		"  checkpoint=NAME, lease_wait=S, takeover, unmount_timeout=S, store_timeout=S,\n"
		"  endpoint=URL, region=R, profile=P, credentials_file=/ABS/PATH, no_sign_request,\n"
		"  key_file=/ABS/PATH, passphrase_file=/ABS/PATH (an encrypted store's key),\n"
		"  path_style, insecure_tls, sign_payload,\n"
		"  single_writer_unsafe, no_writeback_cache, size=SIZE (a quota, e.g. 10G),\n"
		"  log_file=/ABS/PATH (the daemon's log; SIGHUP reopens it),\n"
		"  log_level=error|warn|info|debug (default warn, or SHALEFS_LOG),\n"
		"  metrics=[ADDR:]PORT (Prometheus text at http://ADDR:PORT/metrics; ADDR\n"
		"  defaults to 127.0.0.1), metrics_file=/ABS/PATH (the same text, rewritten\n"
		"  every 15 s, for node_exporter's textfile collector),\n"
		"  and the usual FUSE mount options.\n"
		"Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws only.\n"
		"See shalefs(1).\n");
}

int cli_only_flags(const struct cli_opts *o, unsigned allowed, const char *cmd)
{
	static const struct {
		unsigned flag;
		const char *name;
	} names[] = { { CLI_F_FORCE, "--force" }, { CLI_F_JSON, "--json" },
		      { CLI_F_REPAIR, "--repair" }, { CLI_F_LAZY, "--lazy" },
		      { CLI_F_EXPIRE, "--expire" }, { CLI_F_RAW, "--raw" },
		      { CLI_F_WATCH, "--watch" }, { CLI_F_ENCRYPT, "--encrypt" },
		      { CLI_F_NEWKEY, "--new-key-file/--new-passphrase-file" } };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((o->flags & names[i].flag) && !(allowed & names[i].flag)) {
			cli_err("shalefs %s does not take %s (see shalefs %s --help)", cmd,
				names[i].name, cmd);
			return -1;
		}
	return 0;
}

/* Parse argv (without the subcommand) into o; print the usage for --help,
 * the error line otherwise. Returns 0, 1 (--help) or -1 (printed); o is
 * the caller's either way (cli_opts_free). */
int cli_parse(int argc, char **argv, struct cli_opts *o, const char *second)
{
	char err[1024];
	int rc = cli_opts_parse(o, argc, argv, second, err, sizeof(err));

	if (rc == 1) {
		cli_usage(stdout, strcmp(argv[0], "shalefs") && strncmp(argv[0], "mount.", 6) ?
			  argv[0] : "mount");
		return 1;
	}
	if (rc) {
		cli_err("%s", err);
		return -1;
	}
	/* log_level= wins over SHALEFS_LOG, for every command. */
	if (o->log_level >= 0)
		util_log_set_level((enum util_log_level)o->log_level);
	return 0;
}

/* ---- the options of stats, checkpoint, fsck, format ---------------------------- */

int cli_parse_store_args(int argc, char **argv, const char *second,
			 struct cli_opts **out)
{
	struct cli_opts *o = calloc(1, sizeof(*o));
	int rc;

	*out = NULL;
	if (!o) {
		cli_err("out of memory");
		return -1;
	}
	rc = cli_parse(argc, argv, o, second);
	if (rc == 0 && o->log_file) {
		cli_err("option 'log_file=' applies to shalefs mount only (the other commands "
			"log to stderr)");
		rc = -1;
	}
	if (rc == 0 && (o->metrics_addr || o->metrics_file)) {
		cli_err("options 'metrics=' and 'metrics_file=' apply to shalefs mount only");
		rc = -1;
	}
	if (rc) {
		cli_opts_free(o);
		free(o);
		return rc;
	}
	*out = o;
	return 0;
}

void cli_opts_release(struct cli_opts *o)
{
	if (o) {
		cli_opts_free(o);
		free(o);
	}
}

const char *cli_opts_store(const struct cli_opts *o)
{
	return o->store;
}

const char *cli_opts_second(const struct cli_opts *o)
{
	return o->mountpoint;
}
