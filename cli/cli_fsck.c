/*
 * cli_fsck.c - `shalefs fsck`: check the filesystem graph of a store
 * (fs_fsck), also while a writer runs, and repair what a crash leaves.
 *
 *   shalefs fsck [-o ...] [--json] [--repair] STORE
 *
 * A LIVE STORE
 *   The lease (docs/lease.md) says whether a writer holds the store. With
 *   one that is alive, or on another host, files it has unlinked while
 *   open have orphan keys: fs_fsck counts them as open files, not damage.
 *   If the writer moves on while fsck reads (a table it read is collected,
 *   a WAL object replaced), the read fails as corrupt: fsck reads a fresh
 *   view, a few times, before it reports that it could not run.
 *
 * --repair opens a writer (taking the lease; refused while any other
 * process holds it), whose start reclaims the orphans a crash left, and
 * checks again. With --scrub, --repair mends what the engine can without
 * a guess (kv_repair.c: a WAL cut at its last valid record, unreferenced
 * objects removed): it lists the plan and changes nothing unless --yes is
 * given (--dry-run, the default, says so explicitly); it is refused while
 * a writer holds the lease.
 *
 * DAMAGE
 *   Reading the graph reads every key, so a damaged object the engine
 *   meets is reported as a problem (exit 4) naming it; --scrub
 *   (cli_scrub.c) reads every byte of every object, goes on past damage
 *   and names the paths it costs.
 *
 * EXIT CODES (fsck(8))
 *   0 clean, 1 problems corrected (--repair), 4 problems left,
 *   8 could not run (bad arguments, no store, store or engine errors).
 *
 * OUTPUT
 *   Text: "problem: ..." lines, then "fsck: N keys, ..." and, with a live
 *   writer, a line about its open files. --json: one object,
 *   {"store","live_writer","keys","inodes","entries","open_files",
 *    "problems":[text...],"corrected","exit_code"}.
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLI_FSCK_CLEAN 0
#define CLI_FSCK_CORRECTED 1
#define CLI_FSCK_LEFT 4
#define CLI_FSCK_ERROR 8
/* Fresh views fsck reads of a live store before it gives up. */
#define CLI_FSCK_LIVE_TRIES 4

struct cli_fsck_run {
	int json;
	char **problems;                  /* --json: the texts, printed at the end */
	size_t n;
};

static void cli_fsck_problem(void *arg, const char *text)
{
	struct cli_fsck_run *r = arg;
	char **v;

	if (!r->json) {
		printf("problem: %s\n", text);
		return;
	}
	v = realloc(r->problems, (r->n + 1) * sizeof(*v));
	if (!v)
		return;
	r->problems = v;
	if ((v[r->n] = strdup(text)) != NULL)
		r->n++;
}

static void cli_fsck_forget(struct cli_fsck_run *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->problems[i]);
	free(r->problems);
	r->problems = NULL;
	r->n = 0;
}

/* One pass: open read-only, check. Returns 0 (ran) or a negative error. */
static int cli_fsck_pass(const struct cli_opts *o, struct obj_backend *store, int live,
			 struct cli_fsck_run *r, struct fs_fsck_summary *sum)
{
	struct fs_fsck_conf conf = { .live = live, .problem = cli_fsck_problem, .arg = r };
	struct kv_config kc = KV_CONFIG_INIT;
	struct kv_db *db = NULL;
	int rc;

	kc.mode = KV_OPEN_READONLY;
	kc.no_background = 1;
	if (o->cache_mb)
		kc.block_cache_bytes = (size_t)o->cache_mb << 20;
	cli_quiet(1);
	rc = kv_open(&db, store, &kc);
	cli_quiet(0);
	if (rc == 0)
		rc = fs_fsck(db, &conf, sum);
	if (db)
		(void)kv_close(db);
	return rc;
}

int cli_fsck(int argc, char **argv)
{
	struct cli_opts *o = NULL;
	struct obj_backend *store = NULL;
	struct cli_fsck_run r = { 0 };
	struct fs_fsck_summary sum = { 0 };
	struct kv_lease_info l;
	char who[1400] = "";
	uint64_t corrected = 0;
	int rc, code = CLI_FSCK_ERROR, live = 0;

	rc = cli_parse_store_args(argc, argv, NULL, &o);
	if (rc)
		return rc > 0 ? 0 : CLI_FSCK_ERROR;
	r.json = (o->flags & CLI_F_JSON) != 0;
	if (cli_only_flags(o, CLI_F_JSON | CLI_F_REPAIR | CLI_F_SCRUB | CLI_F_JOBS | CLI_F_YES |
			   CLI_F_DRYRUN, "fsck"))
		goto out;
	if ((o->flags & (CLI_F_YES | CLI_F_DRYRUN)) &&
	    (o->flags & (CLI_F_SCRUB | CLI_F_REPAIR)) != (CLI_F_SCRUB | CLI_F_REPAIR)) {
		cli_err("options '--yes' and '--dry-run' apply to fsck --scrub --repair only");
		goto cant;
	}
	if ((o->flags & CLI_F_YES) && (o->flags & CLI_F_DRYRUN)) {
		cli_err("options '--yes' and '--dry-run' contradict each other: give one");
		goto cant;
	}
	if (cli_open_store_only(o, &store) || cli_check_store(o, store, 0)) {
		cli_err("fsck of %s could not run (the line above says why)", o->store);
		goto cant;
	}
	rc = kv_lease_read(store, &l);
	if (rc && rc != -ENOENT) {
		cli_err("fsck of %s could not run: reading its lease failed: %s", o->store,
			kv_strerror(rc));
		goto cant;
	}
	if (rc == 0 && l.held && kv_lease_liveness(&l) != KV_LEASE_DEAD) {
		live = 1;
		kv_lease_describe(&l, who, sizeof(who));
	}
	if (live && (o->flags & CLI_F_REPAIR)) {
		cli_err("fsck --repair of %s could not run: it is mounted read-write by %s; "
			"unmount it first", o->store, who);
		goto cant;
	}
	if (o->flags & CLI_F_SCRUB) {
		code = cli_fsck_scrub(o, store, live ? who : NULL);
		goto out;
	}
	if (o->flags & CLI_F_JOBS) {
		cli_err("option '--jobs' applies to fsck --scrub only");
		goto cant;
	}
	for (int i = 0; i < (live ? CLI_FSCK_LIVE_TRIES : 1); i++) {
		cli_fsck_forget(&r);
		rc = cli_fsck_pass(o, store, live, &r, &sum);
		if (rc != KV_ECORRUPT)
			break;
	}
	if (rc == 0 && sum.problems && (o->flags & CLI_F_REPAIR)) {
		uint64_t before = sum.problems;
		if (cli_writer_pass(o, store, "repairing")) {
			cli_err("fsck --repair of %s could not run (the line above says why)",
				o->store);
			goto cant;
		}
		cli_fsck_forget(&r);
		if (!r.json)
			printf("fsck: --repair: reclaimed what the last writer left; checking again\n");
		rc = cli_fsck_pass(o, store, 0, &r, &sum);
		if (rc == 0 && sum.problems < before)
			corrected = before - sum.problems;
	}
	if (rc == -ENOENT) {
		cli_err("fsck of %s could not run: the store holds no filesystem", o->store);
		goto cant;
	}
	if (rc == KV_ECORRUPT) {
		/* Damage, not a failure to run: name it, and the way to all of it. */
		struct kv_corrupt_info ci;
		char text[512];
		kv_corrupt_last(&ci);
		snprintf(text, sizeof(text), "%s is damaged: %s (`shalefs fsck --scrub %s` "
			 "finds every damaged object and the paths it costs)", ci.object,
			 ci.reason, o->store);
		cli_fsck_problem(&r, text);
		sum.problems = 1;
		rc = 0;
	}
	if (rc) {
		cli_err("fsck of %s could not run: %s", o->store,
			*obj_last_error() ? obj_last_error() : kv_strerror(rc));
		goto cant;
	}
	code = sum.problems ? CLI_FSCK_LEFT : corrected ? CLI_FSCK_CORRECTED : CLI_FSCK_CLEAN;
	if (r.json) {
		printf("{\"store\":");
		cli_json_str(o->store);
		printf(",\"live_writer\":");
		if (live)
			cli_json_str(who);
		else
			printf("null");
		printf(",\"keys\":%" PRIu64 ",\"inodes\":%" PRIu64 ",\"entries\":%" PRIu64
		       ",\"open_files\":%" PRIu64 ",\"problems\":[", sum.keys, sum.inodes,
		       sum.entries, sum.open_orphans);
		for (size_t i = 0; i < r.n; i++) {
			if (i)
				putchar(',');
			cli_json_str(r.problems[i]);
		}
		printf("],\"problems_total\":%" PRIu64 ",\"corrected\":%" PRIu64
		       ",\"exit_code\":%d}\n", sum.problems, corrected, code);
	} else {
		printf("fsck: %" PRIu64 " keys, %" PRIu64 " inodes, %" PRIu64 " entries, %" PRIu64
		       " problem%s\n", sum.keys, sum.inodes, sum.entries, sum.problems,
		       sum.problems == 1 ? "" : "s");
		if (live)
			printf("fsck: %" PRIu64 " open files of the live writer %s (unlinked while "
			       "open: not damage)\n", sum.open_orphans, who);
		if (corrected)
			printf("fsck: %" PRIu64 " problem%s corrected\n", corrected,
			       corrected == 1 ? "" : "s");
		if (sum.problems && !(o->flags & CLI_F_REPAIR))
			printf("fsck: orphans left by a crash are reclaimed by `shalefs fsck --repair "
			       "%s` or by the next read-write mount\n", o->store);
	}
	goto out;
cant:
	code = CLI_FSCK_ERROR;
	if (r.json) {
		printf("{\"store\":");
		cli_json_str(o->store);
		printf(",\"exit_code\":%d}\n", code);
	}
out:
	cli_fsck_forget(&r);
	obj_close(store);
	cli_opts_release(o);
	fflush(stdout);
	return code;
}
