/*
 * cli_scrub.c - `shalefs fsck --scrub`: read every byte the store still
 * needs, name each damaged object and every path whose reads fail.
 *
 *   shalefs fsck --scrub [--jobs N] [--json] [--repair [--dry-run|--yes]] [-o ...] STORE
 *
 * Two passes. kv_scrub reads every live object (N at a time, default 4)
 * and reports each damaged stretch: the object, its kind, the byte range,
 * the checkpoints that share it. Then, unless the damage keeps the
 * filesystem from opening at all, fs_scrub reads every path the way
 * reads through a mount do and names those that fail, with the object
 * each one met and, for file data, the byte ranges lost. An object with
 * damage but no path that fails costs no data (a WAL object whose
 * records are in tables, a block of versions newer data shadows); it is
 * still reported, so that it can be replaced.
 *
 * OUTPUT
 *   Text: "damaged: OBJECT (KIND) bytes A-B: REASON[; also in checkpoints
 *   X,Y]" per stretch; "lost: PATH: WHAT [bytes A-B, ...] (OBJECT)" per
 *   path; then per damaged object how many paths it costs, and a summary.
 *   --json: one object {"store", "objects", "bytes", "seconds",
 *   "filesystem_opens", "damage":[{"object","kind","offset","length",
 *   "reason","in_filesystem","checkpoints":[...],"paths_lost","no_data_lost"}],
 *   "paths":[{"path","what","object","ranges":[[off,len]...]}],
 *   "exit_code"}.
 *   On a terminal (and not --json) a progress line on stderr: objects,
 *   bytes, rate, ETA.
 * REPAIR
 *   --repair then lists what kv_repair can mend without guessing ("repair:
 *   would ..." lines; --json: "repairs":[{"action","object","bytes",
 *   "keep_records","keep_bytes","drop_records","saved_as","done","error"}],
 *   "repair_notes":[text...], "repair_applied"). Nothing changes unless
 *   --yes: a repair that rewrites WAL objects loses the records past the
 *   cut, and the administrator should see which first.
 * EXIT (fsck(8)): 0 clean, 1 every damaged object repaired (--yes), 4
 *   damage found (and left), 8 could not run.
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct cli_scrub_obj {
	char *object;
	enum kv_scrub_kind kind;
	char *checkpoint;
	uint64_t off, len;
	char *reason;
	int in_latest, in_tables;
	char *checkpoints;
	uint64_t paths;                   /* paths whose reads met it */
	int repaired;                     /* --repair --yes replaced or removed it */
};

struct cli_scrub {
	const struct cli_opts *o;
	int json, tty;
	struct cli_scrub_obj *dmg;
	size_t n_dmg, cap_dmg;
	struct fs_scrub_range *skip;      /* SST damage key ranges (owned copies) */
	size_t n_skip, cap_skip;
	uint64_t paths;
	uint64_t start_ns, last_progress_ns;
	int nomem;
	int apply;                        /* --repair --yes */
	uint64_t repairs;                 /* actions reported */
	uint64_t failed;                  /* ... that failed */
	char **notes;                     /* --json: repair notes, printed at the end */
	size_t n_notes, cap_notes;
};

static const char *cli_scrub_kind(enum kv_scrub_kind k)
{
	switch (k) {
	case KV_SCRUB_MANIFEST: return "manifest";
	case KV_SCRUB_CHECKPOINT: return "checkpoint manifest";
	case KV_SCRUB_SST: return "table";
	case KV_SCRUB_WAL: return "WAL";
	}
	return "object";
}

static uint8_t *cli_scrub_dup(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

static int cli_scrub_damage(void *arg, const struct kv_scrub_damage *d)
{
	struct cli_scrub *s = arg;

	if (util_grow(&s->dmg, &s->cap_dmg, s->n_dmg, sizeof(*s->dmg)))
		return -ENOMEM;
	struct cli_scrub_obj *c = &s->dmg[s->n_dmg];
	memset(c, 0, sizeof(*c));
	c->object = strdup(d->object);
	c->kind = d->kind;
	c->checkpoint = d->checkpoint ? strdup(d->checkpoint) : NULL;
	c->off = d->off;
	c->len = d->len;
	c->reason = strdup(d->reason ? d->reason : "");
	c->in_latest = d->in_latest;
	c->in_tables = d->in_tables;
	c->checkpoints = strdup(d->checkpoints ? d->checkpoints : "");
	s->n_dmg++;
	if (!c->object || !c->reason || !c->checkpoints)
		return -ENOMEM;
	if (d->keys_known && d->hi) {
		if (util_grow(&s->skip, &s->cap_skip, s->n_skip, sizeof(*s->skip)))
			return -ENOMEM;
		struct fs_scrub_range *r = &s->skip[s->n_skip];
		memset(r, 0, sizeof(*r));
		if (!(r->hi = cli_scrub_dup(d->hi, d->hi_len)))
			return -ENOMEM;
		r->hi_len = d->hi_len;
		if (d->lo) {
			r->lo = cli_scrub_dup(d->lo, d->lo_len);
			r->lo_len = d->lo_len;
		}
		s->n_skip++;
	}
	return 0;
}

static void cli_scrub_progress(void *arg, const struct kv_scrub_summary *sum, uint64_t planned)
{
	struct cli_scrub *s = arg;
	uint64_t now = util_now_ns();

	if (!s->tty || now - s->last_progress_ns < 250000000u)
		return;
	s->last_progress_ns = now;
	double secs = (double)(now - s->start_ns) / 1e9;
	double rate = secs > 0 ? (double)sum->bytes / secs : 0;
	double left = sum->planned_bytes > sum->bytes && rate > 0 ?
		      (double)(sum->planned_bytes - sum->bytes) / rate : 0;
	dprintf(cli_stderr_fd(), "\rscrub: %" PRIu64 "/%" PRIu64 " objects, %.1f/%.1f MiB, "
		"%.0f MiB/s, ETA %d:%02d ", sum->objects, planned,
		(double)sum->bytes / 1048576.0, (double)sum->planned_bytes / 1048576.0,
		rate / 1048576.0, (int)left / 60, (int)left % 60);
}

static struct cli_scrub_obj *cli_scrub_find(struct cli_scrub *s, const char *object)
{
	for (size_t i = 0; i < s->n_dmg; i++)
		if (!strcmp(s->dmg[i].object, object))
			return &s->dmg[i];
	return NULL;
}

static void cli_scrub_path(void *arg, const struct fs_scrub_path *p)
{
	struct cli_scrub *s = arg;
	struct cli_scrub_obj *c = p->object && *p->object ? cli_scrub_find(s, p->object) : NULL;

	if (c)
		c->paths++;
	if (s->json) {
		printf("%s{\"path\":", s->paths ? "," : "");
		cli_json_str(p->path);
		printf(",\"inode\":%" PRIu64 ",\"what\":", p->ino);
		cli_json_str(p->what);
		printf(",\"object\":");
		cli_json_str(p->object ? p->object : "");
		printf(",\"ranges\":[");
		for (size_t i = 0; i < p->n_ranges; i++)
			printf("%s[%" PRIu64 ",%" PRIu64 "]", i ? "," : "", p->ranges[i][0],
			       p->ranges[i][1]);
		printf("]}");
	} else {
		printf("lost: %s: %s", p->path, p->what);
		for (size_t i = 0; i < p->n_ranges; i++)
			printf("%s%" PRIu64 "-%" PRIu64, i ? ", " : " bytes ", p->ranges[i][0],
			       p->ranges[i][0] + p->ranges[i][1] - 1);
		if (!strcmp(p->what, "unreachable"))
			printf(" (a directory above it is damaged)");
		else if (p->object && *p->object)
			printf(" (%s)", p->object);
		putchar('\n');
	}
	s->paths++;
}

/* The walk over the live filesystem (fs_scrub). 0 or an error. */
static int cli_scrub_walk(struct cli_scrub *s, struct obj_backend *store,
			  struct fs_scrub_summary *fsum)
{
	struct fs_scrub_conf fc = { .skip = s->skip, .n_skip = s->n_skip,
				    .path = cli_scrub_path, .arg = s };
	struct kv_config kc = KV_CONFIG_INIT;
	struct kv_db *db = NULL;
	int rc;

	kc.mode = KV_OPEN_READONLY;
	kc.no_background = 1;
	if (s->o->cache_mb)
		kc.block_cache_bytes = (size_t)s->o->cache_mb << 20;
	rc = kv_open(&db, store, &kc);
	if (rc == 0)
		rc = fs_scrub(db, &fc, fsum);
	if (db)
		(void)kv_close(db);
	return rc;
}

static void cli_scrub_print_damage(struct cli_scrub *s, int fs_opens)
{
	for (size_t i = 0; i < s->n_dmg; i++) {
		const struct cli_scrub_obj *c = &s->dmg[i];
		int free_of_loss = fs_opens && c->paths == 0;
		if (s->json) {
			printf("%s{\"object\":", i ? "," : "");
			cli_json_str(c->object);
			printf(",\"kind\":");
			cli_json_str(cli_scrub_kind(c->kind));
			printf(",\"offset\":%" PRIu64 ",\"length\":%" PRIu64 ",\"reason\":", c->off,
			       c->len);
			cli_json_str(c->len ? c->reason : "missing");
			printf(",\"in_filesystem\":%s,\"checkpoints\":[", c->in_latest ? "true" : "false");
			const char *p = c->checkpoints;
			for (int first = 1; *p; first = 0) {
				const char *e = strchr(p, ',');
				size_t n = e ? (size_t)(e - p) : strlen(p);
				char name[256];
				snprintf(name, sizeof(name), "%.*s", (int)n, p);
				printf("%s", first ? "" : ",");
				cli_json_str(name);
				p += n + (e ? 1 : 0);
			}
			printf("],\"paths_lost\":%" PRIu64 ",\"no_data_lost\":%s}", c->paths,
			       free_of_loss && !*c->checkpoints ? "true" : "false");
			continue;
		}
		printf("damaged: %s (%s", c->object, cli_scrub_kind(c->kind));
		if (c->checkpoint)
			printf(" of checkpoint %s", c->checkpoint);
		if (c->len)
			printf(") bytes %" PRIu64 "-%" PRIu64 ": %s", c->off, c->off + c->len - 1,
			       c->reason);
		else
			printf("): %s", c->reason);
		if (*c->checkpoints && c->kind != KV_SCRUB_CHECKPOINT)
			printf("; also in checkpoint%s %s", strchr(c->checkpoints, ',') ? "s" : "",
			       c->checkpoints);
		putchar('\n');
		if (c->kind == KV_SCRUB_WAL && c->in_tables)
			printf("damaged: %s: its records are already in tables: no data lost%s\n",
			       c->object, *c->checkpoints ? " in the live filesystem" : "");
		else if (!c->in_latest)
			printf("damaged: %s: not used by the live filesystem\n", c->object);
		else if (free_of_loss)
			printf("damaged: %s: no path reads it: no data lost\n", c->object);
		else if (fs_opens)
			printf("damaged: %s: %" PRIu64 " path%s lost\n", c->object, c->paths,
			       c->paths == 1 ? "" : "s");
	}
}

static const char *cli_scrub_action(enum kv_repair_kind k)
{
	switch (k) {
	case KV_REPAIR_CUT_WAL: return "cut_wal";
	case KV_REPAIR_EMPTY_WAL: return "empty_wal";
	case KV_REPAIR_REMOVE_TABLE: return "remove_table";
	case KV_REPAIR_REMOVE_WAL: return "remove_wal";
	}
	return "?";
}

static int cli_scrub_repair_action(void *arg, const struct kv_repair_action *a)
{
	struct cli_scrub *s = arg;
	const char *saved = a->saved_as && *a->saved_as ? a->saved_as : NULL;

	if (a->err)
		s->failed++;
	struct cli_scrub_obj *c = a->done ? cli_scrub_find(s, a->object) : NULL;
	if (c)
		c->repaired = 1;
	if (s->json) {
		printf("%s{\"action\":\"%s\",\"object\":", s->repairs ? "," : "",
		       cli_scrub_action(a->kind));
		cli_json_str(a->object);
		printf(",\"bytes\":%" PRIu64 ",\"keep_records\":%" PRIu64 ",\"keep_bytes\":%" PRIu64
		       ",\"drop_records\":%" PRIu64 ",\"saved_as\":", a->bytes, a->keep_records,
		       a->keep_bytes, a->drop_records);
		if (saved)
			cli_json_str(saved);
		else
			printf("null");
		printf(",\"done\":%s,\"error\":", a->done ? "true" : "false");
		if (a->err)
			cli_json_str(kv_strerror(a->err));
		else
			printf("null");
		printf("}");
		s->repairs++;
		return 0;
	}
	const char *verb = a->err ? "FAILED to " : s->apply ? "" : "would ";
	switch (a->kind) {
	case KV_REPAIR_CUT_WAL:
		if (a->missing)
			printf("repair: %s%s %s: it is missing; the WAL ends before it\n", verb,
			       s->apply && !a->err ? "wrote empty" : "write empty", a->object);
		else
			printf("repair: %scut %s at byte %" PRIu64 ": keep %" PRIu64 " record%s%s, "
			       "drop the %" PRIu64 " bytes after\n", verb, a->object, a->keep_bytes,
			       a->keep_records, a->keep_records == 1 ? "" : "s",
			       a->keep_records ? "" : " (none is valid)", a->bytes);
		break;
	case KV_REPAIR_EMPTY_WAL:
		printf("repair: %s%s %s: drop its %" PRIu64 " record%s (%" PRIu64 " bytes), written "
		       "after the cut\n", verb, s->apply && !a->err ? "emptied" : "empty", a->object,
		       a->drop_records, a->drop_records == 1 ? "" : "s", a->bytes);
		break;
	case KV_REPAIR_REMOVE_TABLE:
		printf("repair: %s%s %s: no manifest references it (%" PRIu64 " bytes)\n", verb,
		       s->apply && !a->err ? "removed" : "remove", a->object, a->bytes);
		break;
	case KV_REPAIR_REMOVE_WAL:
		printf("repair: %s%s %s: its records are in every manifest's tables (%" PRIu64
		       " bytes)\n", verb, s->apply && !a->err ? "removed" : "remove", a->object,
		       a->bytes);
		break;
	}
	if (a->err)
		printf("repair: %s: %s\n", a->object, kv_strerror(a->err));
	else if (saved)
		printf("repair: %s: its old bytes are kept as %s\n", a->object, saved);
	s->repairs++;
	return 0;
}

static void cli_scrub_repair_note(void *arg, const char *text)
{
	struct cli_scrub *s = arg;

	if (!s->json) {
		printf("repair: left: %s\n", text);
		return;
	}
	if (util_grow(&s->notes, &s->cap_notes, s->n_notes, sizeof(*s->notes)))
		return;
	if ((s->notes[s->n_notes] = strdup(text)) != NULL)
		s->n_notes++;
}

/*
 * --repair: the plan (or, with --yes, the work) after the scrub's report.
 * Returns the exit code: 1 when every damaged object was mended, else
 * `code`; 8 when the repair could not run.
 */
static int cli_scrub_repair(struct cli_scrub *s, struct obj_backend *store, int code)
{
	struct kv_repair_conf rc_conf = { .apply = s->apply, .min_age_ms = 0,
					  .action = cli_scrub_repair_action,
					  .note = cli_scrub_repair_note, .arg = s };
	struct kv_repair_summary sum;
	char lost[64];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(lost, sizeof(lost), "lost+found/%Y%m%dT%H%M%SZ/", &tm);
	rc_conf.lost_prefix = lost;
	if (s->json)
		printf(",\"repairs\":[");
	cli_quiet(1);
	int rc = kv_repair(store, &rc_conf, &sum);
	cli_quiet(0);
	if (s->json) {
		printf("],\"repair_notes\":[");
		for (size_t i = 0; i < s->n_notes; i++) {
			printf("%s", i ? "," : "");
			cli_json_str(s->notes[i]);
		}
		printf("],\"repair_applied\":%s", s->apply ? "true" : "false");
	}
	if (rc) {
		cli_err("fsck --scrub --repair of %s could not finish: %s%s", s->o->store,
			*obj_last_error() ? obj_last_error() : kv_strerror(rc),
			s->apply ? " (the repairs listed as done stand)" : "");
		return 8;
	}
	if (!s->json) {
		if (!sum.planned)
			printf("repair: nothing to repair without guessing\n");
		else if (!s->apply)
			printf("repair: %" PRIu64 " action%s planned, nothing changed (a dry run); "
			       "`shalefs fsck --scrub --repair --yes %s` carries them out\n",
			       sum.planned, sum.planned == 1 ? "" : "s", s->o->store);
		else
			printf("repair: %" PRIu64 " of %" PRIu64 " action%s done; `shalefs fsck "
			       "--scrub %s` checks the result\n", sum.done, sum.planned,
			       sum.planned == 1 ? "" : "s", s->o->store);
	}
	if (!s->apply || s->failed || code == 0)
		return code;
	/* Corrected only if every damaged object is one the repair replaced. */
	for (size_t i = 0; i < s->n_dmg; i++)
		if (!s->dmg[i].repaired)
			return code;
	return 1;
}

static void cli_scrub_free(struct cli_scrub *s)
{
	for (size_t i = 0; i < s->n_notes; i++)
		free(s->notes[i]);
	free(s->notes);
	for (size_t i = 0; i < s->n_dmg; i++) {
		free(s->dmg[i].object);
		free(s->dmg[i].checkpoint);
		free(s->dmg[i].reason);
		free(s->dmg[i].checkpoints);
	}
	free(s->dmg);
	for (size_t i = 0; i < s->n_skip; i++) {
		free((void *)s->skip[i].lo);
		free((void *)s->skip[i].hi);
	}
	free(s->skip);
}

int cli_fsck_scrub(const struct cli_opts *o, struct obj_backend *store, const char *live_who)
{
	struct cli_scrub s = { .o = o, .json = (o->flags & CLI_F_JSON) != 0,
			       .apply = (o->flags & CLI_F_YES) != 0 };
	struct kv_scrub_conf kc = { .jobs = o->jobs, .damage = cli_scrub_damage,
				    .progress = cli_scrub_progress, .arg = &s };
	struct kv_scrub_summary sum;
	struct fs_scrub_summary fsum = { 0 };
	int rc, code, fs_opens = 0;

	s.tty = !s.json && isatty(cli_stderr_fd());
	s.start_ns = util_now_ns();
	if (s.json) {
		printf("{\"store\":");
		cli_json_str(o->store);
		printf(",\"paths\":[");
	} else if (live_who && *live_who) {
		printf("scrub: %s is mounted read-write by %s: what it changes meanwhile may be "
		       "reported missing; run again to confirm\n", o->store, live_who);
	}
	cli_quiet(1);
	rc = kv_scrub(store, &kc, &sum);
	if (s.tty)
		dprintf(cli_stderr_fd(), "\r\033[K");
	if (rc == 0 && !sum.latest_unreadable && !s.n_skip) {
		fs_opens = 1;                   /* every block a read could meet is sound */
	} else if (rc == 0 && !sum.latest_unreadable) {
		rc = cli_scrub_walk(&s, store, &fsum);
		fs_opens = rc == 0;
		if (rc == KV_ECORRUPT) {
			struct kv_corrupt_info ci;
			kv_corrupt_last(&ci);
			if (!s.json)
				printf("scrub: the filesystem cannot be opened: %s: %s\n", ci.object,
				       ci.reason);
			rc = 0;
		}
	}
	cli_quiet(0);
	double secs = (double)(util_now_ns() - s.start_ns) / 1e9;
	if (rc) {
		if (s.json)
			printf("],\"exit_code\":8}\n");
		cli_err("fsck --scrub of %s could not run: %s", o->store,
			rc == -ENOENT ? "the store holds no filesystem" :
			*obj_last_error() ? obj_last_error() : kv_strerror(rc));
		code = 8;
		goto out;
	}
	code = sum.damaged ? 4 : 0;
	if (s.json) {
		printf("],\"damage\":[");
		cli_scrub_print_damage(&s, fs_opens);
		printf("],\"objects\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"seconds\":%.3f,"
		       "\"filesystem_opens\":%s,\"entries\":%" PRIu64, sum.objects, sum.bytes, secs,
		       fs_opens ? "true" : "false", fsum.entries);
		if (o->flags & CLI_F_REPAIR)
			code = cli_scrub_repair(&s, store, code);
		printf(",\"exit_code\":%d}\n", code);
		goto out;
	}
	cli_scrub_print_damage(&s, fs_opens);
	if (sum.damaged && !fs_opens)
		printf("scrub: every path is lost until the damage above is repaired: the "
		       "filesystem cannot be opened\n");
	printf("scrub: %" PRIu64 " objects, %.1f MiB read in %.1f s (%.0f MiB/s); %" PRIu64
	       " entries checked; %zu damaged stretch%s, %" PRIu64 " path%s lost\n", sum.objects,
	       (double)sum.bytes / 1048576.0, secs, secs > 0 ? (double)sum.bytes / 1048576.0 / secs : 0,
	       fsum.entries, s.n_dmg, s.n_dmg == 1 ? "" : "es", s.paths, s.paths == 1 ? "" : "s");
	if (o->flags & CLI_F_REPAIR)
		code = cli_scrub_repair(&s, store, code);
out:
	fflush(stdout);
	cli_scrub_free(&s);
	return code;
}
