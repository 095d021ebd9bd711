/*
 * cli_opts.c - the `shalefs` command line as options: the fuse_opt
 * table, value checks, credential refusal and the FUSE pass-through list.
 * Pure parsing: no I/O, no output, no global state, so the fuzz target
 * (tests/fuzz/fuzz_mountopt.c) can call it millions of times; cli_parse
 * (cli_common.c) prints the error line, and the commands act on the result.
 *
 * WHAT IS ACCEPTED (shalefs(1))
 *   positional   STORE, then SECOND (the mount point, or a checkpoint name)
 *   -o options   flush_interval_ms=, cache_mb=, write_buffer_mb=,
 *                memtable_mb=, wal_bypass_mb=, wal_bypass_quiet_ms=,
 *                data_min_kb= (0..1024, 0 = off), data_rewrite_pct= (0..100,
 *                0 = never),
 *                inode_cache= (objects, 0 = no cap),
 *                gc_interval=, gc_min_age= (seconds), reserve_mb=, table_mb=,
 *                poll_interval_ms= (integers in range), price_put=,
 *                price_get= (dollars per 1,000 requests), price_gb_month=
 *                (dollars per GB-month), attr_timeout=,
 *                entry_timeout= (seconds, 0..1 year), checkpoint=NAME
 *                (implies ro), endpoint=, region=, profile=,
 *                credentials_file= (an absolute path), key_file=,
 *                passphrase_file= (absolute paths: the secret itself is
 *                never an option), no_sign_request,
 *                path_style, insecure_tls, sign_payload, single_writer_unsafe,
 *                no_writeback_cache, lease_wait= (seconds), takeover,
 *                unmount_timeout=, store_timeout= (seconds),
 *                size= (bytes, with K, M, G or T: powers of 1024),
 *                cache_dir= (an absolute path), cache_size= (bytes, with K,
 *                M, G or T; 0 turns the disk cache off),
 *                log_file= (an absolute path), log_level= (error, warn,
 *                info, debug), metrics=[ADDR:]PORT (a numeric IPv4
 *                address, or [IPv6]; loopback when only PORT),
 *                metrics_file= (an absolute path),
 *                ro/rw (the last wins), debug; what mount(8)/fstab add
 *                (defaults, _netdev, nofail, noauto, every x-*, ...) is
 *                ignored, however the command was called; the FUSE/kernel
 *                options of cli_opts_passthrough are collected, escaped,
 *                in fuse_opts; anything else is an error.
 *   flags        -f/--foreground, -d (debug, implies -f), -r (ro), -h/--help,
 *                and -n -s -v, -t TYPE, -N NS (mount(8)'s, ignored); the subcommands' --force,
 *                --json, --repair, --lazy, --raw, --scrub, --jobs N, --yes,
 *                --dry-run, --encrypt,
 *                --expire DURATION, --watch N, --new-key-file=PATH,
 *                --new-passphrase-file=PATH (recorded in flags; each command
 *                refuses the ones it does not take).
 *   Credentials (access_key=, secret=, token=, ...) are refused: they would
 *   show in /proc/PID/cmdline and in mount tables.
 *   A repeated option: the last value wins (strings are replaced).
 *
 * The first problem stops the parse; its one line (naming the option and
 * the cause) is the only message. libfuse itself logs a malformed
 * argument list ("missing argument after -o") through fuse_log.
 */
#include "cli/cli.h"
#include "fs/fs.h"
#include "objstore/objstore.h"
#include "util/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_opt.h>

/* Parse state: fuse_opt stores template values at offsets into this, so
 * the options come first. */
struct cli_opts_ctx {
	struct cli_opts o;
	char *err;
	size_t errlen;
	int bad;                   /* err holds the first problem */
	int nomem;
};

enum {
	KEY_FLUSH_MS, KEY_CACHE_MB, KEY_WB_MB, KEY_MEMTABLE_MB, KEY_DATA_MIN_KB, KEY_DATA_REWRITE, KEY_WAL_BYPASS_MB, KEY_WAL_QUIET_MS, KEY_INODE_CACHE,
	KEY_ATTR_TO,
	KEY_ENTRY_TO, KEY_RO, KEY_RW,
	KEY_DEBUG, KEY_HELP, KEY_IGNORE, KEY_LEASE_WAIT, KEY_TAKEOVER, KEY_UNMOUNT_TIMEOUT,
	KEY_STORE_TIMEOUT,
	KEY_F_FORCE, KEY_F_JSON, KEY_F_REPAIR, KEY_F_LAZY, KEY_F_EXPIRE, KEY_F_RAW, KEY_F_WATCH,
	KEY_F_SCRUB, KEY_F_JOBS, KEY_F_YES, KEY_F_DRYRUN,
	KEY_LOG_FILE, KEY_LOG_LEVEL, KEY_METRICS, KEY_METRICS_FILE, KEY_SIZE, KEY_CRED_FILE,
	KEY_GC_INTERVAL, KEY_GC_MIN_AGE, KEY_POLL_MS, KEY_PRICE_PUT, KEY_PRICE_GET, KEY_PRICE_GB, KEY_RESERVE_MB, KEY_TABLE_MB, KEY_CACHE_DIR, KEY_CACHE_SIZE,
	KEY_KEY_FILE, KEY_PASS_FILE, KEY_F_ENCRYPT, KEY_F_NEW_KEY, KEY_F_NEW_PASS,
};

#define CLI_OPT(t, p, v) { t, offsetof(struct cli_opts_ctx, o.p), v }

static const struct fuse_opt cli_opts_table[] = {
	FUSE_OPT_KEY("flush_interval_ms=", KEY_FLUSH_MS),
	FUSE_OPT_KEY("cache_mb=", KEY_CACHE_MB),
	FUSE_OPT_KEY("write_buffer_mb=", KEY_WB_MB),
	FUSE_OPT_KEY("memtable_mb=", KEY_MEMTABLE_MB),
	FUSE_OPT_KEY("data_min_kb=", KEY_DATA_MIN_KB),
	FUSE_OPT_KEY("data_rewrite_pct=", KEY_DATA_REWRITE),
	FUSE_OPT_KEY("wal_bypass_mb=", KEY_WAL_BYPASS_MB),
	FUSE_OPT_KEY("wal_bypass_quiet_ms=", KEY_WAL_QUIET_MS),
	FUSE_OPT_KEY("inode_cache=", KEY_INODE_CACHE),
	FUSE_OPT_KEY("gc_interval=", KEY_GC_INTERVAL),
	FUSE_OPT_KEY("gc_min_age=", KEY_GC_MIN_AGE),
	FUSE_OPT_KEY("poll_interval_ms=", KEY_POLL_MS),
	FUSE_OPT_KEY("price_put=", KEY_PRICE_PUT),
	FUSE_OPT_KEY("price_get=", KEY_PRICE_GET),
	FUSE_OPT_KEY("price_gb_month=", KEY_PRICE_GB),
	FUSE_OPT_KEY("reserve_mb=", KEY_RESERVE_MB),
	FUSE_OPT_KEY("table_mb=", KEY_TABLE_MB),
	FUSE_OPT_KEY("attr_timeout=", KEY_ATTR_TO),
	FUSE_OPT_KEY("entry_timeout=", KEY_ENTRY_TO),
	FUSE_OPT_KEY("lease_wait=", KEY_LEASE_WAIT),
	FUSE_OPT_KEY("takeover", KEY_TAKEOVER),
	FUSE_OPT_KEY("unmount_timeout=", KEY_UNMOUNT_TIMEOUT),
	FUSE_OPT_KEY("store_timeout=", KEY_STORE_TIMEOUT),
	FUSE_OPT_KEY("log_file=", KEY_LOG_FILE),
	FUSE_OPT_KEY("log_level=", KEY_LOG_LEVEL),
	FUSE_OPT_KEY("metrics=", KEY_METRICS),
	FUSE_OPT_KEY("metrics_file=", KEY_METRICS_FILE),
	FUSE_OPT_KEY("size=", KEY_SIZE),
	FUSE_OPT_KEY("cache_dir=", KEY_CACHE_DIR),
	FUSE_OPT_KEY("cache_size=", KEY_CACHE_SIZE),
	FUSE_OPT_KEY("credentials_file=", KEY_CRED_FILE),
	FUSE_OPT_KEY("key_file=", KEY_KEY_FILE),
	FUSE_OPT_KEY("passphrase_file=", KEY_PASS_FILE),
	FUSE_OPT_KEY("--encrypt", KEY_F_ENCRYPT),
	FUSE_OPT_KEY("--new-key-file=", KEY_F_NEW_KEY),
	FUSE_OPT_KEY("--new-key-file ", KEY_F_NEW_KEY),
	FUSE_OPT_KEY("--new-passphrase-file=", KEY_F_NEW_PASS),
	FUSE_OPT_KEY("--new-passphrase-file ", KEY_F_NEW_PASS),
	FUSE_OPT_KEY("--force", KEY_F_FORCE),
	FUSE_OPT_KEY("--json", KEY_F_JSON),
	FUSE_OPT_KEY("--repair", KEY_F_REPAIR),
	FUSE_OPT_KEY("--lazy", KEY_F_LAZY),
	FUSE_OPT_KEY("--raw", KEY_F_RAW),
	FUSE_OPT_KEY("--watch ", KEY_F_WATCH),
	FUSE_OPT_KEY("--watch=", KEY_F_WATCH),
	FUSE_OPT_KEY("--scrub", KEY_F_SCRUB),
	FUSE_OPT_KEY("--yes", KEY_F_YES),
	FUSE_OPT_KEY("--dry-run", KEY_F_DRYRUN),
	FUSE_OPT_KEY("--jobs ", KEY_F_JOBS),
	FUSE_OPT_KEY("--jobs=", KEY_F_JOBS),
	FUSE_OPT_KEY("--expire ", KEY_F_EXPIRE),
	FUSE_OPT_KEY("--expire=", KEY_F_EXPIRE),
	CLI_OPT("checkpoint=%s", checkpoint, 0),
	CLI_OPT("endpoint=%s", endpoint, 0),
	CLI_OPT("region=%s", region, 0),
	CLI_OPT("profile=%s", profile, 0),
	CLI_OPT("no_sign_request", no_sign_request, 1),
	CLI_OPT("path_style", path_style, 1),
	CLI_OPT("insecure_tls", insecure_tls, 1),
	CLI_OPT("sign_payload", sign_payload, 1),
	CLI_OPT("single_writer_unsafe", single_writer_unsafe, 1),
	CLI_OPT("no_writeback_cache", no_writeback, 1),
	CLI_OPT("-f", foreground, 1),
	CLI_OPT("--foreground", foreground, 1),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("-r", KEY_RO),
	FUSE_OPT_KEY("rw", KEY_RW),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	/* What mount(8) and fstab add, meaningless here. */
	FUSE_OPT_KEY("defaults", KEY_IGNORE),
	FUSE_OPT_KEY("auto", KEY_IGNORE),
	FUSE_OPT_KEY("noauto", KEY_IGNORE),
	FUSE_OPT_KEY("_netdev", KEY_IGNORE),
	FUSE_OPT_KEY("nofail", KEY_IGNORE),
	FUSE_OPT_KEY("user", KEY_IGNORE),
	FUSE_OPT_KEY("users", KEY_IGNORE),
	FUSE_OPT_KEY("nouser", KEY_IGNORE),
	FUSE_OPT_KEY("owner", KEY_IGNORE),
	FUSE_OPT_KEY("group", KEY_IGNORE),
	FUSE_OPT_KEY("comment=", KEY_IGNORE),
	/* x-* (x-systemd.automount, x-systemd.requires=..., x-gvfs-show)
	 * cannot be a template (fuse_opt matches "x-" literally): see
	 * FUSE_OPT_KEY_OPT in cli_opts_proc. */
	FUSE_OPT_KEY("-n", KEY_IGNORE),
	FUSE_OPT_KEY("-s", KEY_IGNORE),
	FUSE_OPT_KEY("-v", KEY_IGNORE),
	/* mount(8) gives helpers "-t fuse.shalefs", util-linux 2.39 "-N NS" too. */
	FUSE_OPT_KEY("-t ", KEY_IGNORE),
	FUSE_OPT_KEY("-N ", KEY_IGNORE),
	FUSE_OPT_END
};

/* FUSE/kernel mount options passed through (name, or name= prefix). */
static const char *const cli_opts_passthrough[] = {
	"allow_other", "allow_root", "auto_unmount", "default_permissions", "fsname=",
	"subtype=", "max_read=", "blksize=", "context=", "fscontext=", "defcontext=",
	"rootcontext=", "nodev", "dev", "nosuid", "suid", "noexec", "exec", "noatime", "atime",
	"nodiratime", "diratime", "relatime", "norelatime", "strictatime", "nostrictatime",
	"lazytime", "nolazytime", "sync", "async", "dirsync", NULL,
};

/* Options that look like credentials: refused with a pointer to the right way. */
static const char *const cli_opts_secret[] = {
	"access_key", "secret", "aws_access_key_id", "aws_secret_access_key", "session_token",
	"aws_session_token", "password", "key=", "token=", NULL,
};

/* Record the first problem (later ones cannot happen: the parse stops). */
static int cli_opts_fail(struct cli_opts_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int cli_opts_fail(struct cli_opts_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->bad && c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err, c->errlen, fmt, ap);
		va_end(ap);
	}
	c->bad = 1;
	return -1;
}

static int cli_opts_uint(struct cli_opts_ctx *c, const char *opt, unsigned long min,
			 unsigned long max, unsigned *out)
{
	const char *v = strchr(opt, '=');
	char *end;
	unsigned long x;

	v = v ? v + 1 : "";
	errno = 0;
	x = strtoul(v, &end, 10);
	if (*v == '\0' || *end != '\0' || errno || *v == '-' || x < min || x > max)
		return cli_opts_fail(c, "invalid value in option '%s': expected an integer "
				     "from %lu to %lu", opt, min, max);
	*out = (unsigned)x;
	return 0;
}

/* The value of "name=V" as a number in [0, max]; else the failure, whose
 * message says "expected " what. */
static int cli_opts_number(struct cli_opts_ctx *c, const char *opt, double max,
			   const char *what, double *out)
{
	const char *v = strchr(opt, '=');
	char *end;
	double x;

	v = v ? v + 1 : "";
	errno = 0;
	x = strtod(v, &end);
	if (*v == '\0' || *end != '\0' || errno || !(x >= 0) || x > max)
		return cli_opts_fail(c, "invalid value in option '%s': expected %s", opt, what);
	*out = x;
	return 0;
}

static int cli_opts_secs(struct cli_opts_ctx *c, const char *opt, double *out)
{
	return cli_opts_number(c, opt, 86400.0 * 365, "seconds (a number >= 0)", out);
}

/* A price in dollars ("0.005"; 0 to 1000) into nano-dollars per `per`
 * units (1000: a price per 1,000 requests becomes one per request). */
static int cli_opts_price(struct cli_opts_ctx *c, const char *opt, unsigned per, uint64_t *out)
{
	double x;

	if (cli_opts_number(c, opt, 1000.0, "a price in dollars (a number from 0 to 1000)", &x))
		return -1;
	*out = (uint64_t)(x * 1e9 / per + 0.5);
	return 0;
}

/* Replace *dst with a copy of v. Returns 0 or -1 (out of memory, recorded). */
static int cli_opts_set_str(struct cli_opts_ctx *c, char **dst, const char *v)
{
	char *t = strdup(v);

	if (!t) {
		c->nomem = 1;
		return cli_opts_fail(c, "out of memory");
	}
	free(*dst);
	*dst = t;
	return 0;
}

/*
 * metrics=[ADDR:]PORT: PORT alone binds CLI_DFLT_METRICS_ADDR; ADDR is a
 * numeric IPv4 address or a bracketed IPv6 one ([::1]:9567). Host names
 * are refused: resolving one would be I/O, and a name that resolves to a
 * public address is the easy way to expose the endpoint by mistake.
 */
static int cli_opts_metrics(struct cli_opts_ctx *c, const char *opt)
{
	const char *v = opt + strlen("metrics="), *port = v, *colon;
	char addr[INET6_ADDRSTRLEN + 1];
	unsigned char bin[sizeof(struct in6_addr)];
	size_t alen = 0;
	unsigned long x;
	char *end;

	strcpy(addr, CLI_DFLT_METRICS_ADDR);
	if (v[0] == '[') {
		const char *close = strchr(v, ']');
		alen = close ? (size_t)(close - v - 1) : 0;
		if (!close || close[1] != ':' || alen == 0 || alen >= sizeof(addr))
			goto bad;
		memcpy(addr, v + 1, alen);
		addr[alen] = '\0';
		if (inet_pton(AF_INET6, addr, bin) != 1)
			goto bad;
		port = close + 2;
	} else if ((colon = strrchr(v, ':')) != NULL) {
		alen = (size_t)(colon - v);
		if (alen == 0 || alen >= sizeof(addr))
			goto bad;
		memcpy(addr, v, alen);
		addr[alen] = '\0';
		if (inet_pton(AF_INET, addr, bin) != 1)
			goto bad;
		port = colon + 1;
	}
	errno = 0;
	x = strtoul(port, &end, 10);
	if (*port < '0' || *port > '9' || *end != '\0' || errno || x < 1 || x > 65535)
		goto bad;
	if (cli_opts_set_str(c, &c->o.metrics_addr, addr))
		return -1;
	c->o.metrics_port = (unsigned)x;
	return 0;
bad:
	return cli_opts_fail(c, "invalid value in option '%s': expected PORT, IPV4:PORT or "
			     "[IPV6]:PORT with a numeric address and a port from 1 to 65535 "
			     "(e.g. metrics=127.0.0.1:9567)", opt);
}

/* size=: bytes, with an optional K, M, G or T (powers of 1024), at least
 * 1 MiB (cache_size=: at least 1 MiB, or 0). */
static int cli_opts_size_min(struct cli_opts_ctx *c, const char *opt, uint64_t *out,
			     int zero_ok)
{
	const char *v = strchr(opt, '=') + 1;
	char *end;
	unsigned long long x;
	unsigned shift = 0;

	errno = 0;
	x = strtoull(v, &end, 10);
	if (*end && !end[1]) {
		switch (*end) {
		case 'K': case 'k': shift = 10; end++; break;
		case 'M': case 'm': shift = 20; end++; break;
		case 'G': case 'g': shift = 30; end++; break;
		case 'T': case 't': shift = 40; end++; break;
		default: break;
		}
	}
	if (*v == '\0' || !isdigit((unsigned char)*v) || *end != '\0' || errno ||
	    x > (UINT64_MAX >> 1) >> shift ||
	    ((x << shift) < ((uint64_t)1 << 20) && !(zero_ok && x == 0)))
		return cli_opts_fail(c, "invalid value in option '%s': expected a size of at "
				     "least 1M%s (bytes, or a number with K, M, G or T)", opt,
				     zero_ok ? ", or 0 for none" : "");
	*out = (uint64_t)x << shift;
	return 0;
}

static int cli_opts_size(struct cli_opts_ctx *c, const char *opt, uint64_t *out)
{
	return cli_opts_size_min(c, opt, out, 0);
}

/* "--flag=N" or "--flag N" (fuse_opt joins the two): N a whole number
 * from 1 to max, into *out. */
static int cli_opts_flag_uint(struct cli_opts_ctx *c, const char *arg, const char *flag,
			      unsigned long max, const char *unit, unsigned *out)
{
	const char *v = arg + strlen(flag);
	char *end;
	unsigned long n;

	while (*v == '=' || *v == ' ')
		v++;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (!*v || *end || errno || n < 1 || n > max || *v == '-' || *v == '+')
		return cli_opts_fail(c, "option '%s' needs a whole number%s from 1 to %lu", flag,
				     unit, max);
	*out = (unsigned)n;
	return 0;
}

/* A key or passphrase file option: an absolute path (the daemon runs
 * from "/"), after `skip` bytes of arg and any '=' or ' '. */
static int cli_opts_keypath(struct cli_opts_ctx *c, const char *arg, size_t skip, char **dst)
{
	const char *v = arg + skip;

	while (*v == '=' || *v == ' ')
		v++;
	if (v[0] != '/')
		return cli_opts_fail(c, "invalid value in option '%.*s': the file must be given "
				     "as an absolute path (the key itself is never an option)",
				     (int)skip, arg);
	return cli_opts_set_str(c, dst, v);
}

static int cli_opts_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct cli_opts_ctx *c = data;
	struct cli_opts *o = &c->o;

	switch (key) {
	case KEY_FLUSH_MS:
		return cli_opts_uint(c, arg, 1, 3600000, &o->flush_interval_ms);
	case KEY_CACHE_MB:
		return cli_opts_uint(c, arg, 1, 1 << 20, &o->cache_mb);
	case KEY_WB_MB:
		return cli_opts_uint(c, arg, 1, 1 << 20, &o->write_buffer_mb);
	case KEY_MEMTABLE_MB:
		return cli_opts_uint(c, arg, 1, 1 << 20, &o->memtable_mb);
	case KEY_DATA_MIN_KB:
		return cli_opts_uint(c, arg, 0, 1024, &o->data_min_kb);
	case KEY_DATA_REWRITE:
		return cli_opts_uint(c, arg, 0, 100, &o->data_rewrite_pct);
	case KEY_WAL_BYPASS_MB:
		return cli_opts_uint(c, arg, 0, 1 << 20, &o->wal_bypass_mb);
	case KEY_WAL_QUIET_MS:
		return cli_opts_uint(c, arg, 0, 3600000, &o->wal_bypass_quiet_ms);
	case KEY_INODE_CACHE:
		return cli_opts_uint(c, arg, 0, 100000000, &o->inode_cache);
	case KEY_GC_INTERVAL:
		return cli_opts_uint(c, arg, 1, 86400, &o->gc_interval_s);
	case KEY_GC_MIN_AGE:
		return cli_opts_uint(c, arg, 1, 86400 * 7, &o->gc_min_age_s);
	case KEY_POLL_MS:
		return cli_opts_uint(c, arg, 10, 3600000, &o->poll_interval_ms);
	case KEY_PRICE_PUT:
		return cli_opts_price(c, arg, 1000, &o->price_put_nusd);
	case KEY_PRICE_GET:
		return cli_opts_price(c, arg, 1000, &o->price_get_nusd);
	case KEY_PRICE_GB:
		return cli_opts_price(c, arg, 1, &o->price_gib_month_nusd);
	case KEY_TABLE_MB:
		return cli_opts_uint(c, arg, 1, 4096, &o->table_mb);
	case KEY_RESERVE_MB:
		o->reserve_set = 1;
		return cli_opts_uint(c, arg, 0, 1 << 20, &o->reserve_mb);
	case KEY_ATTR_TO:
		return cli_opts_secs(c, arg, &o->attr_timeout);
	case KEY_ENTRY_TO:
		return cli_opts_secs(c, arg, &o->entry_timeout);
	case KEY_LEASE_WAIT:
		return cli_opts_uint(c, arg, 0, 86400, &o->lease_wait_s);
	case KEY_TAKEOVER:
		o->takeover = 1;
		return 0;
	case KEY_UNMOUNT_TIMEOUT:
		return cli_opts_uint(c, arg, 1, 86400, &o->unmount_timeout_s);
	case KEY_STORE_TIMEOUT:
		return cli_opts_uint(c, arg, 1, 86400, &o->store_timeout_s);
	case KEY_SIZE:
		return cli_opts_size(c, arg, &o->size_bytes);
	case KEY_CACHE_SIZE:
		o->cache_size_set = 1;
		return cli_opts_size_min(c, arg, &o->cache_size, 1);
	case KEY_CACHE_DIR: {
		/* Absolute: the daemon runs from "/". */
		const char *v = arg + strlen("cache_dir=");
		if (v[0] != '/')
			return cli_opts_fail(c, "invalid value in option '%s': the cache directory "
					     "must be an absolute path", arg);
		return cli_opts_set_str(c, &o->cache_dir, v);
	}
	case KEY_CRED_FILE: {
		/* Absolute: the daemon runs from "/", and mount(8) from anywhere. */
		const char *v = arg + strlen("credentials_file=");
		if (v[0] != '/')
			return cli_opts_fail(c, "invalid value in option '%s': the credentials file "
					     "must be an absolute path", arg);
		free(o->credentials_file);
		o->credentials_file = strdup(v);
		if (!o->credentials_file) {
			c->nomem = 1;
			return cli_opts_fail(c, "out of memory");
		}
		return 0;
	}
	case KEY_KEY_FILE:
		return cli_opts_keypath(c, arg, strlen("key_file"), &o->key_file);
	case KEY_PASS_FILE:
		return cli_opts_keypath(c, arg, strlen("passphrase_file"), &o->passphrase_file);
	case KEY_F_ENCRYPT:
		o->flags |= CLI_F_ENCRYPT;
		return 0;
	case KEY_F_NEW_KEY:
		o->flags |= CLI_F_NEWKEY;
		return cli_opts_keypath(c, arg, strlen("--new-key-file"), &o->new_key_file);
	case KEY_F_NEW_PASS:
		o->flags |= CLI_F_NEWKEY;
		return cli_opts_keypath(c, arg, strlen("--new-passphrase-file"),
					&o->new_passphrase_file);
	case KEY_LOG_FILE: {
		const char *v = arg + strlen("log_file=");
		if (v[0] != '/')
			return cli_opts_fail(c, "invalid value in option '%s': the log file must "
					     "be an absolute path", arg);
		free(o->log_file);
		o->log_file = strdup(v);
		if (!o->log_file) {
			c->nomem = 1;
			return cli_opts_fail(c, "out of memory");
		}
		return 0;
	}
	case KEY_METRICS:
		return cli_opts_metrics(c, arg);
	case KEY_METRICS_FILE: {
		const char *v = arg + strlen("metrics_file=");
		if (v[0] != '/')
			return cli_opts_fail(c, "invalid value in option '%s': the metrics file "
					     "must be an absolute path", arg);
		return cli_opts_set_str(c, &o->metrics_file, v);
	}
	case KEY_LOG_LEVEL: {
		enum util_log_level l;
		if (util_log_level_parse(arg + strlen("log_level="), &l) != 0)
			return cli_opts_fail(c, "invalid value in option '%s': expected error, "
					     "warn, info or debug", arg);
		o->log_level = (int)l;
		return 0;
	}
	case KEY_F_FORCE:
		o->flags |= CLI_F_FORCE;
		return 0;
	case KEY_F_JSON:
		o->flags |= CLI_F_JSON;
		return 0;
	case KEY_F_REPAIR:
		o->flags |= CLI_F_REPAIR;
		return 0;
	case KEY_F_LAZY:
		o->flags |= CLI_F_LAZY;
		return 0;
	case KEY_F_RAW:
		o->flags |= CLI_F_RAW;
		return 0;
	case KEY_F_WATCH:
		o->flags |= CLI_F_WATCH;
		return cli_opts_flag_uint(c, arg, "--watch", 86400, " of seconds", &o->watch_s);
	case KEY_F_SCRUB:
		o->flags |= CLI_F_SCRUB;
		return 0;
	case KEY_F_YES:
		o->flags |= CLI_F_YES;
		return 0;
	case KEY_F_DRYRUN:
		o->flags |= CLI_F_DRYRUN;
		return 0;
	case KEY_F_JOBS:
		o->flags |= CLI_F_JOBS;
		return cli_opts_flag_uint(c, arg, "--jobs", 64, "", &o->jobs);
	case KEY_F_EXPIRE: {
		/* "--expire=D" or "--expire D" (fuse_opt joins the two). */
		const char *v = arg + strlen("--expire");
		while (*v == '=' || *v == ' ')
			v++;
		if (!*v)
			return cli_opts_fail(c, "option '--expire' needs a duration (e.g. 12h, 7d)");
		free(o->expire);
		o->expire = strdup(v);
		if (!o->expire) {
			c->nomem = 1;
			return cli_opts_fail(c, "out of memory");
		}
		o->flags |= CLI_F_EXPIRE;
		return 0;
	}
	case KEY_RO:
		o->ro = 1;
		return 0;
	case KEY_RW:
		o->ro = 0;
		return 0;
	case KEY_DEBUG:
		o->debug = 1;
		o->foreground = 1;
		return 0;
	case KEY_HELP:
		o->help = 1;
		return 0;
	case KEY_IGNORE:
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		if (o->n_nonopt == 0)
			o->store = strdup(arg);
		else if (o->n_nonopt == 1)
			o->mountpoint = strdup(arg);
		o->n_nonopt++;
		if ((o->n_nonopt == 1 && !o->store) || (o->n_nonopt == 2 && !o->mountpoint)) {
			c->nomem = 1;
			return cli_opts_fail(c, "out of memory");
		}
		return 0;
	case FUSE_OPT_KEY_OPT:
		if (arg[0] == '-')
			return cli_opts_fail(c, "unknown argument '%s' (see shalefs(1))", arg);
		/* fstab's and systemd's own options (x-systemd.automount, ...). */
		if (strncmp(arg, "x-", 2) == 0)
			return 0;
		for (int i = 0; cli_opts_secret[i]; i++)
			if (strncmp(arg, cli_opts_secret[i], strlen(cli_opts_secret[i])) == 0)
				return cli_opts_fail(c, "option '%.*s' refused: credentials are "
						     "never taken from the command line; set "
						     "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
						     "use ~/.aws/credentials (-o profile=NAME), or "
						     "-o credentials_file=/ABS/PATH",
						     (int)strcspn(arg, "="), arg);
		for (int i = 0; cli_opts_passthrough[i]; i++) {
			const char *p = cli_opts_passthrough[i];
			size_t n = strlen(p);
			if (p[n - 1] == '=' ? strncmp(arg, p, n) == 0 : strcmp(arg, p) == 0) {
				if (fuse_opt_add_opt_escaped(&o->fuse_opts, arg) != 0) {
					c->nomem = 1;
					return cli_opts_fail(c, "out of memory");
				}
				return 0;
			}
		}
		return cli_opts_fail(c, "unknown mount option '%s' (see shalefs(1))", arg);
	default:
		return 0;
	}
}

int cli_opts_parse(struct cli_opts *o, int argc, char **argv, const char *second,
		   char *err, size_t errlen)
{
	struct cli_opts_ctx c;
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	int rc;

	memset(&c, 0, sizeof(c));
	c.err = err;
	c.errlen = errlen;
	if (errlen)
		err[0] = '\0';
	c.o.flush_interval_ms = FS_DFLT_FLUSH_INTERVAL_MS;
	c.o.write_buffer_mb = (unsigned)(FS_DFLT_WRITE_BUFFER_BYTES >> 20);
	c.o.wal_bypass_mb = (unsigned)(FS_DFLT_WAL_BYPASS_BYTES >> 20);
	c.o.data_min_kb = CLI_DFLT_DATA_MIN_KB;
	c.o.data_rewrite_pct = CLI_DFLT_DATA_REWRITE_PCT;
	c.o.wal_bypass_quiet_ms = FS_DFLT_WAL_BYPASS_QUIET_MS;
	c.o.inode_cache = FS_DFLT_INODE_CACHE;
	c.o.attr_timeout = FS_DFLT_ATTR_TIMEOUT;
	c.o.entry_timeout = FS_DFLT_ENTRY_TIMEOUT;
	c.o.lease_wait_s = CLI_DFLT_LEASE_WAIT_S;
	c.o.unmount_timeout_s = CLI_DFLT_UNMOUNT_TIMEOUT_S;
	c.o.log_level = -1;
	c.o.price_put_nusd = OBJ_DFLT_PRICE_PUT_NUSD;
	c.o.price_get_nusd = OBJ_DFLT_PRICE_GET_NUSD;
	c.o.price_gib_month_nusd = OBJ_DFLT_PRICE_GIB_MONTH_NUSD;
	rc = fuse_opt_parse(&args, &c, cli_opts_table, cli_opts_proc);
	fuse_opt_free_args(&args);
	*o = c.o;                  /* the strings are the caller's from here */
	if (rc != 0) {
		if (!c.bad)
			cli_opts_fail(&c, "invalid arguments (see shalefs(1))");
		return c.nomem ? -ENOMEM : -EINVAL;
	}
	if (o->help)
		return 1;
	if (!o->store) {
		cli_opts_fail(&c, "missing STORE (file:///abs/dir or s3://bucket[/prefix])");
		return -EINVAL;
	}
	if (second && !o->mountpoint) {
		cli_opts_fail(&c, "missing %s after %s", second, o->store);
		return -EINVAL;
	}
	if (o->n_nonopt > (second ? 2 : 1)) {
		cli_opts_fail(&c, "too many arguments: expected STORE%s%s", second ? " " : "",
			      second ? second : "");
		return -EINVAL;
	}
	if (o->key_file && o->passphrase_file) {
		cli_opts_fail(&c, "options 'key_file=' and 'passphrase_file=': give one, not both");
		return -EINVAL;
	}
	if (o->new_key_file && o->new_passphrase_file) {
		cli_opts_fail(&c, "options '--new-key-file' and '--new-passphrase-file': give one, "
			      "not both");
		return -EINVAL;
	}
	if (o->checkpoint) {
		if (o->checkpoint[0] == '\0') {
			cli_opts_fail(&c, "option 'checkpoint=' needs a name");
			return -EINVAL;
		}
		o->ro = 1;
	}
	return 0;
}

void cli_opts_free(struct cli_opts *o)
{
	if (!o)
		return;
	free(o->store);
	free(o->mountpoint);
	free(o->checkpoint);
	free(o->endpoint);
	free(o->region);
	free(o->profile);
	free(o->credentials_file);
	free(o->fuse_opts);
	free(o->expire);
	free(o->log_file);
	free(o->metrics_addr);
	free(o->metrics_file);
	free(o->cache_dir);
	free(o->key_file);
	free(o->passphrase_file);
	free(o->new_key_file);
	free(o->new_passphrase_file);
	memset(o, 0, sizeof(*o));
}
