/*
 * cli_checkpoint.c - `shalefs checkpoint`.
 *
 *   shalefs checkpoint create [-o ...] [--expire DURATION] STORE|MOUNTPOINT NAME
 *   shalefs checkpoint list [-o ...] STORE
 *   shalefs checkpoint delete [-o ...] [--force] STORE NAME
 *
 * A checkpoint holds everything written before `create`, also files
 * closed a moment before and still in a daemon's buffers: given a mount
 * point, or a store whose writer runs on this host, `create` goes through
 * that daemon's ctl file (it syncs, then creates). With the writer on
 * another host it says that writes not yet flushed there are missing.
 * `delete` refuses a checkpoint that a reader may still have mounted
 * (readers/, docs/lease.md) unless --force.
 *
 * Exit codes: 0 success, 1 failure (one line on stderr naming the cause).
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void cli_ckpt_time(uint64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;

	snprintf(buf, len, "?");
	if (gmtime_r(&t, &tm))
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int cli_ckpt_print(void *arg, const struct kv_checkpoint_info *c)
{
	char when[64], exp[80] = "";

	(void)arg;
	cli_ckpt_time(c->created_ns, when, sizeof(when));
	if (c->expire_ns) {
		memcpy(exp, "\texpires=", 10);
		cli_ckpt_time(c->expire_ns, exp + 9, sizeof(exp) - 9);
	}
	printf("%s\tcreated=%s\tmanifest=%" PRIu64 "\twal=%" PRIu64 "%s\n", c->name, when,
	       c->manifest_id, c->wal_id, exp);
	return 0;
}

/* "90", "90s", "15m", "12h", "7d", "2w" -> ns. Returns 0 or -1. */
static int cli_ckpt_duration(const char *s, uint64_t *ns)
{
	char *end;
	unsigned long long v;
	uint64_t unit = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case '\0': case 's': unit = 1; break;
	case 'm': unit = 60; break;
	case 'h': unit = 3600; break;
	case 'd': unit = 86400; break;
	case 'w': unit = 7 * 86400; break;
	default: return -1;
	}
	if (*end && end[1])
		return -1;
	if (v == 0 || v > UINT64_MAX / 1000000000u / unit)
		return -1;
	*ns = (uint64_t)v * unit * 1000000000u;
	return 0;
}

/* Create through the daemon serving mp. Returns 0 or -1 (printed). */
static int cli_ckpt_via_mount(const char *mp, const char *name, uint64_t expire)
{
	char cmd[600], reply[512];
	int rc;

	snprintf(cmd, sizeof(cmd), "checkpoint %s %" PRIu64 "\n", name, expire);
	rc = cli_ctl_command(mp, cmd, reply, sizeof(reply));
	if (rc == 0)
		return 0;
	if (rc == -ENOENT)
		cli_err("%s is not a ShaleFS mount point (no %s/ctl)", mp, FS_CTL_NAME);
	else if (rc == -ENOTCONN)
		cli_err_stale(mp);
	else if (rc == -EROFS)
		cli_err("%s is a read-only mount: create checkpoints through the writer's mount "
			"point or the store", mp);
	else
		cli_err("checkpoint create on %s failed: %s", mp,
			reply[0] ? reply + (strncmp(reply, "error: ", 7) ? 0 : 7) : strerror(-rc));
	return -1;
}

/* The writer of store, if it runs on this host and its mount answers:
 * its mount point in mp. Returns 1 (use it), 0 (create from the store;
 * a notice was printed if writes may be missing), -1 (printed error). */
static int cli_ckpt_find_writer(const struct cli_opts *o, struct obj_backend *store,
				char *mp, size_t len)
{
	struct kv_lease_info l;
	char who[1400];
	uint64_t pid = 0;
	int rc = kv_lease_read(store, &l);

	if (rc == -ENOENT)
		return 0;
	if (rc) {
		cli_err("store %s: reading its lease failed: %s", o->store, kv_strerror(rc));
		return -1;
	}
	if (!l.held || kv_lease_liveness(&l) == KV_LEASE_DEAD)
		return 0;
	kv_lease_describe(&l, who, sizeof(who));
	if (kv_lease_liveness(&l) == KV_LEASE_LIVE && l.mountpoint[0] &&
	    cli_ctl_stat(l.mountpoint, "fs_daemon_pid", &pid) == 0 && (int64_t)pid == l.who.pid) {
		snprintf(mp, len, "%s", l.mountpoint);
		return 1;
	}
	cli_err("note: store %s is mounted read-write by %s, which this command cannot reach: "
		"writes it has not flushed yet are not in the checkpoint (run `shalefs "
		"checkpoint create MOUNTPOINT NAME` there to include them)", o->store, who);
	return 0;
}

static int cli_ckpt_create(const struct cli_opts *o, struct obj_backend *store)
{
	const char *name = cli_opts_second(o);
	uint64_t expire = 0;
	char mp[1024];
	int rc;

	if (o->expire) {
		if (cli_ckpt_duration(o->expire, &expire)) {
			cli_err("invalid --expire '%s': a duration like 90s, 30m, 12h, 7d or 2w",
				o->expire);
			return -1;
		}
		expire += util_wall_ns();
	}
	if (!strstr(cli_opts_store(o), "://"))
		return cli_ckpt_via_mount(cli_opts_store(o), name, expire);
	rc = cli_ckpt_find_writer(o, store, mp, sizeof(mp));
	if (rc)
		return rc > 0 ? cli_ckpt_via_mount(mp, name, expire) : -1;
	rc = kv_checkpoint_create(store, name, expire);
	if (rc == -EEXIST)
		cli_err("checkpoint '%s' already exists in %s", name, o->store);
	else if (rc == -EINVAL)
		cli_err("invalid checkpoint name '%s': 1-255 characters of [A-Za-z0-9._-]", name);
	else if (rc == -ENOENT)
		cli_err("store %s is empty: nothing to checkpoint", o->store);
	else if (rc)
		cli_err("checkpoint create on %s failed: %s", o->store,
			*obj_last_error() ? obj_last_error() : kv_strerror(rc));
	return rc ? -1 : 0;
}

struct cli_ckpt_readers {
	struct obj_backend *store;
	const char *name;
	int force;
	int in_use;                       /* readers that may be alive */
	char who[1400];                   /* the first of them */
};

static int cli_ckpt_reader(void *arg, const struct kv_lease_info *r)
{
	struct cli_ckpt_readers *c = arg;

	if (strcmp(r->checkpoint, c->name) != 0)
		return 0;
	if (kv_lease_liveness(r) == KV_LEASE_DEAD) {
		(void)kv_reader_forget(c->store, r);        /* a crashed reader's leftover */
		return 0;
	}
	if (!c->in_use++)
		kv_lease_describe(r, c->who, sizeof(c->who));
	return 0;
}

static int cli_ckpt_delete(const struct cli_opts *o, struct obj_backend *store)
{
	struct cli_ckpt_readers c = { .store = store, .name = cli_opts_second(o),
				      .force = (o->flags & CLI_F_FORCE) != 0 };
	int rc = kv_readers_list(store, cli_ckpt_reader, &c);

	if (rc) {
		cli_err("store %s: listing its readers failed: %s", o->store, kv_strerror(rc));
		return -1;
	}
	if (c.in_use && !c.force) {
		cli_err("checkpoint '%s' is mounted by %s%s; unmount it first, or delete with "
			"--force (reads of that mount then fail)", c.name, c.who,
			c.in_use > 1 ? " and others" : "");
		return -1;
	}
	rc = kv_checkpoint_delete(store, c.name);
	if (rc == -ENOENT) {
		cli_err("no checkpoint named '%s' in %s", c.name, o->store);
		return -1;
	}
	if (rc) {
		cli_err("checkpoint delete on %s failed: %s", o->store,
			*obj_last_error() ? obj_last_error() : kv_strerror(rc));
		return -1;
	}
	if (c.in_use)
		cli_err("note: checkpoint '%s' was deleted while mounted by %s: that mount's "
			"reads fail once its tables are collected", c.name, c.who);
	return 0;
}

int cli_checkpoint(int argc, char **argv)
{
	struct cli_opts *o = NULL;
	struct obj_backend *store = NULL;
	const char *verb;
	int rc, code = 1;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return cli_parse_store_args(2, argv, NULL, &o) > 0 ? 0 : 1;
	if (argc < 2) {
		cli_err("usage: shalefs checkpoint create|list|delete [-o ...] STORE [NAME] "
			"(see shalefs checkpoint --help)");
		return 1;
	}
	verb = argv[1];
	if (strcmp(verb, "create") && strcmp(verb, "list") && strcmp(verb, "delete")) {
		cli_err("unknown checkpoint command '%s' (expected create, list or delete)", verb);
		return 1;
	}
	argv[1] = "checkpoint";           /* so that --help names the command */
	rc = cli_parse_store_args(argc - 1, argv + 1, strcmp(verb, "list") ? "NAME" : NULL,
				  &o);
	if (rc)
		return rc > 0 ? 0 : 1;
	if (cli_only_flags(o, !strcmp(verb, "create") ? CLI_F_EXPIRE :
			   !strcmp(verb, "delete") ? CLI_F_FORCE : 0, "checkpoint"))
		goto out;
	if (strstr(cli_opts_store(o), "://")) {
		if (cli_open_store_only(o, &store) || cli_check_store(o, store, 0))
			goto out;
	} else if (strcmp(verb, "create")) {
		cli_err("checkpoint %s takes a store URL (file:///abs/dir or s3://bucket[/prefix]), "
			"not '%s'", verb, cli_opts_store(o));
		goto out;
	}
	if (!strcmp(verb, "list")) {
		rc = kv_checkpoint_list(store, cli_ckpt_print, NULL);
		if (rc == -ENOENT)
			rc = 0;
		if (rc) {
			cli_err("checkpoint list on %s failed: %s", o->store, kv_strerror(rc));
			goto out;
		}
	} else if (!strcmp(verb, "create")) {
		if (cli_ckpt_create(o, store))
			goto out;
	} else if (cli_ckpt_delete(o, store)) {
		goto out;
	}
	code = fflush(stdout) == 0 ? 0 : 1;
out:
	obj_close(store);
	cli_opts_release(o);
	return code;
}
