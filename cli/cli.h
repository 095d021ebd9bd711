/*
 * cli.h - the `shalefs` command (shalefs(1)): the command line, parsed
 * into options, and the subcommands that open a store and act on it
 * (mount, stats, checkpoint, fsck). The filesystem itself (fs/fs.h)
 * knows nothing of argv or URLs; this module turns them into an
 * obj_config, a kv_config and an fs_config.
 *
 * ERRORS
 *   cli_opts_parse returns 0 or a negative errno; cli_main returns the
 *   process exit code, having printed one line naming the cause.
 */
#ifndef SHALE_CLI_H
#define SHALE_CLI_H

#include <stddef.h>
#include <stdint.h>

/*
 * The `shalefs` command line as options (shalefs(1); cli_opts.c lists
 * what is accepted). Filled in by cli_opts_parse; the strings are the
 * struct's (cli_opts_free).
 */
struct cli_opts {
	char *store;               /* first positional argument */
	char *mountpoint;          /* second positional argument (SECOND) */
	int n_nonopt;              /* positional arguments seen */
	int foreground;            /* -f, --foreground, -d */
	int debug;                 /* -d, -o debug */
	int ro;                    /* ro, -r (checkpoint= implies it) */
	unsigned flush_interval_ms;
	unsigned cache_mb;         /* 0 = the engine's default */
	unsigned write_buffer_mb;
	unsigned memtable_mb;      /* 0 = the engine's default */
	unsigned data_min_kb;      /* values this big go to data tables; 0 = off */
	unsigned data_rewrite_pct; /* copy out of data tables less live than this; 0 = never */
	unsigned wal_bypass_mb;    /* 0 = never */
	unsigned wal_bypass_quiet_ms;
	unsigned inode_cache;
	unsigned gc_interval_s;     /* 0 = the engine's default */
	unsigned gc_min_age_s;     /* 0 = the engine's default */
	int reserve_set;           /* reserve_mb= given (0 then means none) */
	unsigned reserve_mb;
	unsigned table_mb;         /* 0 = the engine's default */
	unsigned poll_interval_ms; /* poll_interval_ms=: a follower's poll; 0 = the engine's default */
	uint64_t price_put_nusd;   /* price_put=: per request of the PUT class (objstore.h) */
	uint64_t price_get_nusd;   /* price_get=: per request of the GET class */
	uint64_t price_gib_month_nusd; /* price_gb_month=: per GiB stored for a month */
	double attr_timeout;       /* seconds */
	double entry_timeout;      /* seconds */
	char *checkpoint;          /* never "" after a successful parse */
	char *endpoint;
	char *region;
	char *profile;
	char *credentials_file;    /* credentials_file=: absolute path; replaces the AWS chain */
	int no_sign_request;       /* send S3 requests unsigned (public buckets) */
	int path_style;
	int insecure_tls;
	int sign_payload;          /* hash every body, even over https/loopback */
	int single_writer_unsafe;
	int no_writeback;          /* no_writeback_cache */
	int help;                  /* -h, --help */
	unsigned lease_wait_s;     /* lease_wait=: wait for a live holder on this host */
	unsigned unmount_timeout_s; /* unmount_timeout=: give up storing after this */
	unsigned store_timeout_s;  /* store_timeout=: retry one request this long; 0 = default */
	int takeover;              /* takeover: take the store from any writer */
	unsigned flags;            /* CLI_F_*: the subcommands' --flags seen */
	char *expire;              /* --expire DURATION (checkpoint create) */
	unsigned watch_s;          /* --watch N (stats): seconds between lines */
	unsigned jobs;             /* --jobs N (fsck --scrub): objects read at once */
	char *log_file;            /* log_file=: absolute path (mount only) */
	int log_level;             /* log_level=: an enum util_log_level; -1 not given */
	char *metrics_addr;        /* metrics=: numeric IPv4/IPv6 address to serve
				    * Prometheus metrics on (mount only); NULL off */
	unsigned metrics_port;     /* metrics=: its TCP port, 1..65535 */
	char *metrics_file;        /* metrics_file=: absolute path (mount only) */
	uint64_t size_bytes;       /* size=: quota on the files' bytes; 0 = none */
	char *cache_dir;           /* cache_dir=: absolute path of the disk cache; NULL default */
	int cache_size_set;        /* cache_size= given (0 then turns the cache off) */
	uint64_t cache_size;       /* cache_size=: bytes */
	char *key_file;            /* key_file=: absolute path of the master key */
	char *passphrase_file;     /* passphrase_file=: absolute path of a passphrase */
	char *new_key_file;        /* rekey --new-key-file=: absolute path */
	char *new_passphrase_file; /* rekey --new-passphrase-file=: absolute path */
	char *fuse_opts;           /* FUSE/kernel options passed through: comma-
				    * separated, each escaped (fuse_opt_add_opt_escaped) */
};

/* Subcommand flags (cli_opts.flags); each command accepts only its own. */
#define CLI_F_FORCE  0x01          /* --force */
#define CLI_F_JSON   0x02          /* --json */
#define CLI_F_REPAIR 0x04          /* --repair */
#define CLI_F_LAZY   0x08          /* --lazy */
#define CLI_F_EXPIRE 0x10          /* --expire DURATION */
#define CLI_F_RAW    0x20          /* --raw */
#define CLI_F_WATCH  0x40          /* --watch N */
#define CLI_F_SCRUB  0x80          /* --scrub (fsck) */
#define CLI_F_JOBS   0x200         /* --jobs N (fsck --scrub) */
#define CLI_F_ENCRYPT 0x400        /* --encrypt (format) */
#define CLI_F_NEWKEY 0x800         /* --new-key-file / --new-passphrase-file (rekey) */
#define CLI_F_YES    0x1000        /* --yes (fsck --scrub --repair: carry it out) */
#define CLI_F_DRYRUN 0x2000        /* --dry-run (fsck --scrub --repair: the default) */
#define CLI_DFLT_LEASE_WAIT_S 60
/* data_min_kb= (kv_ref.c): whole 64 KiB chunks of file data go to data
 * tables; smaller values stay in the tables (docs/kv-format.md, "Data
 * tables", says why). */
#define CLI_DFLT_DATA_MIN_KB 64
/* data_rewrite_pct= (the engine's own default, KV_DFLT_DATA_REWRITE_PCT). */
#define CLI_DFLT_DATA_REWRITE_PCT 50
#define CLI_DFLT_UNMOUNT_TIMEOUT_S 60
/* The disk cache (docs/cache.md): on by default for s3:// stores, with
 * this cap, lowered to CLI_DFLT_CACHE_FREE_PCT % of the room on the
 * cache's filesystem. */
#define CLI_DFLT_CACHE_SIZE ((uint64_t)1 << 30)
#define CLI_DFLT_CACHE_FREE_PCT 25
#define CLI_DFLT_METRICS_ADDR "127.0.0.1" /* metrics=PORT binds loopback only */

/*
 * cli_opts_parse - parse a shalefs command line: argv[0] is a program
 * name, then options, -o lists and positional arguments in any order
 * (STORE, and SECOND when second names it, e.g. "MOUNTPOINT"). Defaults
 * are set first. No I/O, no output, no global state; thread-safe.
 * *o is always filled in, on failure too: the caller cli_opts_free()s
 * it. On failure err (errlen bytes, may be 0) holds one line naming the
 * option and the cause (no "shalefs:" prefix).
 * Returns 0, 1 (--help: nothing else was checked), -EINVAL (bad command
 * line) or -ENOMEM.
 */
int cli_opts_parse(struct cli_opts *o, int argc, char **argv, const char *second,
		   char *err, size_t errlen);

/* Free o's strings and zero it. NULL is a no-op. */
void cli_opts_free(struct cli_opts *o);

/* The `shalefs` command: argv as main() got it. Returns the exit code. */
int cli_main(int argc, char **argv);

#endif /* SHALE_CLI_H */
