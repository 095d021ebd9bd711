/*
 * cli_open.c - opening what a `shalefs` command works on: the store
 * behind a URL (S3: checked with a direct request first, and for a writer
 * the conditional-write probe), the check that a ShaleFS store is there,
 * the engine (with the writer lease and the lines saying who holds it),
 * and the writer pass of format and fsck --repair.
 *
 * Every failure prints one line (cli_err, cli_common.c) and returns -1:
 * the commands only choose their exit code. Called by the command files;
 * calls only cli_common.c and the libraries.
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void cli_obj_config(const struct cli_opts *o, struct obj_config *c);

/* Check the URL's syntax (no I/O), the bucket name against what o's
 * endpoint and path_style allow. Returns 0 or -1 (printed). */
int cli_check_url(const struct cli_opts *o, struct obj_url *u)
{
	const char *url = o->store;
	struct obj_config oc;
	int rc;

	cli_obj_config(o, &oc);
	rc = obj_url_parse_conf(u, url, &oc.s3);
	if (rc) {
		const char *why = obj_last_error();
		if (why && *why)
			cli_err("%s", why);      /* names the URL and the cause */
		else
			cli_err("invalid store URL '%s': expected file:///abs/dir or "
				"s3://bucket[/prefix]", url);
		return -1;
	}
	if (u->scheme == OBJ_SCHEME_MEM) {
		cli_err("store '%s': mem:// stores live inside one process and cannot be "
			"mounted; use file:// or s3://", url);
		obj_url_free(u);
		return -1;
	}
	return 0;
}

static void cli_obj_config(const struct cli_opts *o, struct obj_config *c)
{
	static const struct obj_config init = OBJ_CONFIG_INIT;
	*c = init;
	c->s3.endpoint = o->endpoint;
	c->s3.region = o->region;
	c->s3.profile = o->profile;
	c->s3.credentials_file = o->credentials_file;
	c->s3.no_sign_request = o->no_sign_request;
	c->s3.path_style = o->path_style ? 1 : -1;
	c->s3.insecure_tls = o->insecure_tls;
	c->s3.unsigned_payload = o->sign_payload ? -1 : 0;
	c->retry.max_total_ms = o->store_timeout_s * 1000u;
	c->crypt.key_file = o->key_file;
	c->crypt.passphrase_file = o->passphrase_file;
}

static const char *cli_cause(int rc)
{
	const char *why = obj_last_error();
	return why && *why ? why : kv_strerror(rc);
}

/*
 * Open the store behind o->store. For S3, first a direct request without
 * the retry wrapper (a wrong endpoint, key or bucket fails at once instead
 * of being retried), and for a writer the conditional-create probe.
 * On success *out is the caller's (obj_close). Returns 0 or -1 (printed).
 */
static int cli_open_store_ext(const struct cli_opts *o, int writer, int create, int cache,
			      struct obj_backend **out);

int cli_open_store(const struct cli_opts *o, int writer, struct obj_backend **out)
{
	return cli_open_store_ext(o, writer, 0, 1, out);
}

int cli_open_store_create(const struct cli_opts *o, struct obj_backend **out)
{
	return cli_open_store_ext(o, 1, 1, 0, out);
}

/*
 * The disk cache of a mount (docs/cache.md) into c, its directory into
 * dir (size bytes): cache_size= when given (0 = off); else on for s3://
 * with CLI_DFLT_CACHE_SIZE, capped to CLI_DFLT_CACHE_FREE_PCT % of its
 * filesystem's room, and on for file:// only when cache_dir= is given (a
 * local store is as near as a cache). The directory is cache_dir=, else
 * /var/cache/shalefs for root, else $XDG_CACHE_HOME/shalefs or
 * ~/.cache/shalefs. Leaves c off when there is no directory to use.
 */
static void cli_dcache_config(const struct cli_opts *o, const struct obj_url *u,
			      struct obj_dcache_config *c, char *dir, size_t size)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	memset(c, 0, sizeof(*c));
	if (o->cache_size_set) {
		c->size = o->cache_size;
	} else if (u->scheme == OBJ_SCHEME_S3 || o->cache_dir) {
		c->size = CLI_DFLT_CACHE_SIZE;
		c->max_free_pct = CLI_DFLT_CACHE_FREE_PCT;
	}
	if (!c->size)
		return;
	if (o->cache_dir)
		snprintf(dir, size, "%s", o->cache_dir);
	else if (geteuid() == 0)
		snprintf(dir, size, "/var/cache/shalefs");
	else if (xdg && xdg[0] == '/')
		snprintf(dir, size, "%s/shalefs", xdg);
	else if (home && home[0] == '/')
		snprintf(dir, size, "%s/.cache/shalefs", home);
	else
		dir[0] = '\0';
	c->dir = dir;
	if (!dir[0])
		c->size = 0;
}

static int cli_open_store_ext(const struct cli_opts *o, int writer, int create, int cache,
			      struct obj_backend **out)
{
	struct obj_config oc;
	struct obj_url u;
	char cache_dir[4096];
	int rc;

	*out = NULL;
	if (cli_check_url(o, &u))
		return -1;
	cli_obj_config(o, &oc);
	oc.create = create;
	if (cache)
		cli_dcache_config(o, &u, &oc.dcache, cache_dir, sizeof(cache_dir));
	/* Only format --encrypt makes a key object. */
	oc.crypt.create = create && (o->flags & CLI_F_ENCRYPT);
	if (u.scheme == OBJ_SCHEME_S3) {
		struct obj_backend *raw = NULL;
		struct obj_list *l = NULL;

		rc = obj_s3_create(&raw, u.bucket, u.prefix, &oc.s3);
		if (rc) {
			cli_err("store %s: %s", o->store, cli_cause(rc));
			goto fail;
		}
		rc = raw->list(raw, "", NULL, 1, &l);
		obj_list_free(l);
		if (rc) {
			if (rc == -ENOENT)
				cli_err("store %s: bucket '%s' does not exist", o->store, u.bucket);
			else if (rc == -EACCES)
				cli_err("store %s: access denied (%s); check the credentials "
					"(shalefs(1) CREDENTIALS)", o->store, cli_cause(rc));
			else
				cli_err("store %s: %s", o->store, cli_cause(rc));
			raw->free(raw);
			goto fail;
		}
		if (writer && !o->single_writer_unsafe) {
			rc = obj_s3_probe_conditional(raw);
			if (rc == -ENOTSUP) {
				cli_err("store %s ignores conditional writes (If-None-Match): a "
					"second writer could corrupt it, so a writer mount is refused; "
					"mount with -o ro, or with -o single_writer_unsafe if you "
					"guarantee there is only ever one writer", o->store);
				raw->free(raw);
				goto fail;
			}
			if (rc) {
				cli_err("store %s: probing conditional writes failed: %s", o->store,
					cli_cause(rc));
				raw->free(raw);
				goto fail;
			}
		}
		raw->free(raw);
	} else if (o->single_writer_unsafe) {
		cli_err("option 'single_writer_unsafe' applies to s3:// stores only");
		goto fail;
	}
	obj_url_free(&u);
	rc = obj_open(out, o->store, &oc);
	if (rc) {
		if (rc == -EKEYREJECTED)
			cli_err("wrong key for encrypted store %s (%s)", o->store, cli_cause(rc));
		else if (rc == -ENOKEY)
			cli_err("store %s is not encrypted (it has no key object, or holds no "
				"store), but %s was given: open it without key_file= and "
				"passphrase_file=", o->store,
				o->key_file ? "key_file=" : "passphrase_file=");
		else if (rc == -ENOENT)
			cli_err("store %s: does not exist (%s)", o->store, cli_cause(rc));
		else
			cli_err("store %s: cannot open: %s", o->store, cli_cause(rc));
		return -1;
	}
	{
		struct obj_prices pr = OBJ_PRICES_INIT;
		pr.put_nusd = o->price_put_nusd;
		pr.get_nusd = o->price_get_nusd;
		pr.gib_month_nusd = o->price_gib_month_nusd;
		obj_cost_set_prices(*out, &pr);
	}
	return 0;
fail:
	obj_url_free(&u);
	return -1;
}

void cli_lease_waiting(void *arg, const struct kv_lease_info *holder)
{
	char who[1400];
	const struct cli_opts *o = arg;

	kv_lease_describe(holder, who, sizeof(who));
	cli_err("store %s is mounted read-write by %s; waiting up to %u s for it to be "
		"unmounted", o->store, who, o->lease_wait_s);
}

/* Say why the lease could not be had (kv_open returned -EBUSY). */
static void cli_lease_refused(const struct cli_opts *o, const struct kv_lease_info *h)
{
	char who[1400];

	kv_lease_describe(h, who, sizeof(who));
	if (kv_lease_liveness(h) == KV_LEASE_LIVE)
		cli_err("store %s is mounted read-write by %s, still after %u s (lease_wait=); "
			"unmount it first (shalefs umount%s%s), or mount with -o takeover to "
			"cut it off", o->store, who, o->lease_wait_s, h->mountpoint[0] ? " " : "",
			h->mountpoint);
	else
		cli_err("store %s is mounted read-write by %s; unmount it there, or mount with "
			"-o takeover if %s is gone", o->store, who,
			h->who.host[0] ? h->who.host : "that host");
}

int cli_check_store(const struct cli_opts *o, struct obj_backend *store, int writer)
{
	int rc = kv_store_check(store);

	if (rc == KV_STORE_MARKED)
		return 0;
	if (rc == KV_STORE_UNMARKED) {
		/* Made before the marker existed: a writer adds it. */
		if (writer && (rc = kv_store_mark(store)) != 0)
			UTIL_WARN(CLI_LOG, "store %s: could not add its marker: %s", o->store,
				  cli_cause(rc));
		return 0;
	}
	if (rc == -ENOENT)
		cli_err("no ShaleFS store at %s; create one with `shalefs format %s`", o->store,
			o->store);
	else if (rc == -EPROTO)
		cli_err("store %s was made by a newer shalefs (store format above %u, this shalefs "
			"reads format %u); use a newer shalefs", o->store, KV_STORE_FORMAT,
			KV_STORE_FORMAT);
	else if (rc == -ENOKEY)
		cli_err("store %s is encrypted: give its key with -o key_file=PATH or -o "
			"passphrase_file=PATH", o->store);
	else if (rc == -EMEDIUMTYPE)
		cli_err("store %s is not encrypted, but a key was given: open it without "
			"key_file= and passphrase_file=", o->store);
	else if (rc == KV_ECORRUPT)
		cli_err("store %s: its marker object %s is damaged", o->store, KV_STORE_MARKER);
	else
		cli_err("store %s: %s", o->store, cli_cause(rc));
	return -1;
}

/* obj_stats callback: the disk cache's cap, if the store has one. */
static void cli_dcache_cap(void *arg, const char *key, uint64_t value)
{
	if (!strcmp(key, "dcache_cap"))
		*(uint64_t *)arg = value;
}

/* Open the engine. Returns 0 or -1 (printed). */
int cli_open_kv(const struct cli_opts *o, struct obj_backend *store, enum kv_open_mode mode,
		struct kv_lease_conf *lc, struct kv_db **out)
{
	struct kv_config kc = KV_CONFIG_INIT;
	struct kv_lease_info holder;
	int rc;

	if (cli_check_store(o, store, mode == KV_OPEN_WRITER))
		return -1;
	kc.mode = mode;
	kc.checkpoint = o->checkpoint;
	/* Half the interval for the fs buffers, half for the WAL. */
	kc.flush_interval_ms = o->flush_interval_ms / 2 ? o->flush_interval_ms / 2 : 1;
	if (o->cache_mb)
		kc.block_cache_bytes = (size_t)o->cache_mb << 20;
	if (o->memtable_mb)
		kc.memtable_bytes = (size_t)o->memtable_mb << 20;
	kc.data_min_bytes = (size_t)o->data_min_kb << 10;
	kc.data_rewrite_pct = o->data_rewrite_pct ? o->data_rewrite_pct : KV_DATA_REWRITE_NEVER;
	kc.gc_interval_ms = o->gc_interval_s * 1000u;
	kc.gc_min_age_ms = o->gc_min_age_s * 1000u;
	kc.poll_interval_ms = o->poll_interval_ms;
	if (o->table_mb)
		kc.sst_max_bytes = (size_t)o->table_mb << 20;
	kc.reserve_bytes = !o->reserve_set ? KV_DFLT_RESERVE_BYTES
			   : o->reserve_mb ? (size_t)o->reserve_mb << 20 : KV_RESERVE_NONE;
	kc.close_timeout_ms = o->unmount_timeout_s * 1000u;
	/* With a disk cache, a table read at random is fetched whole into it
	 * (kv_readahead.c, WARM) when it is at most an eighth of the cache:
	 * a few such tables never push out the rest. */
	uint64_t dcache_cap = 0;
	obj_stats(store, cli_dcache_cap, &dcache_cap);
	kc.warm_max_bytes = dcache_cap / 8;
	if (lc) {
		memset(&holder, 0, sizeof(holder));
		lc->holder = &holder;
		kc.lease = lc;
	}
	rc = kv_open(out, store, &kc);
	if (rc == 0) {
		if (lc && lc->took_over) {
			char who[1400];
			kv_lease_describe(&holder, who, sizeof(who));
			/* cli_err: the libraries' own lines are silenced here. */
			cli_err("took over store %s from %s: %s", o->store, who,
				lc->took_over == 1 ? "that process is gone (crash recovery)" :
				"-o takeover: it is fenced and turns read-only");
		}
		return 0;
	}
	if (rc == -EBUSY && lc)
		cli_lease_refused(o, &holder);
	else if (rc == -ENOENT && mode == KV_OPEN_CHECKPOINT)
		cli_err("store %s: no checkpoint named '%s' (shalefs checkpoint list %s)",
			o->store, o->checkpoint, o->store);
	else if (rc == -ENOENT)
		cli_err("no ShaleFS store at %s; create one with `shalefs format %s`", o->store,
			o->store);
	else if (rc == -EROFS)
		cli_err("store %s: a writer cannot be opened: %s", o->store, cli_cause(rc));
	else
		cli_err("store %s: opening the engine failed: %s", o->store, cli_cause(rc));
	return -1;
}

int cli_writer_pass(const struct cli_opts *o, struct obj_backend *store, const char *what)
{
	struct kv_lease_conf lease = { .wait_ms = 0 };
	struct fs_config fc = FS_CONFIG_INIT;
	struct kv_db *db = NULL;
	struct fs *fs = NULL;
	int rc;

	cli_quiet(1);
	rc = cli_open_kv(o, store, KV_OPEN_WRITER, &lease, &db);
	if (rc == 0) {
		rc = fs_alloc(&fs, &fc);
		if (rc == 0)
			rc = fs_start(fs, db, store);
		if (rc)
			cli_err("%s %s failed: %s", what, o->store,
				fs ? fs_last_error(fs) : kv_strerror(rc));
	}
	cli_quiet(0);
	if (fs && fs_stop(fs) != 0)
		rc = -EIO;
	if (db && kv_close(db) != 0)
		rc = -EIO;
	fs_free(fs);
	return rc ? -1 : 0;
}

int cli_open_readonly(const struct cli_opts *o, struct obj_backend **store,
		      struct kv_db **db)
{
	*db = NULL;
	int rc = 0;

	cli_quiet(1);
	/* No disk cache: these commands check or inspect the store itself,
	 * and a mount of it holds its cache. */
	if (cli_open_store_ext(o, 0, 0, 0, store)) {
		rc = -1;
	} else if (cli_open_kv(o, *store, KV_OPEN_READONLY, NULL, db)) {
		obj_close(*store);
		*store = NULL;
		rc = -1;
	}
	cli_quiet(0);
	return rc;
}

int cli_open_store_only(const struct cli_opts *o, struct obj_backend **store)
{
	int rc;

	cli_quiet(1);
	rc = cli_open_store_ext(o, 0, 0, 0, store);
	cli_quiet(0);
	return rc;
}
