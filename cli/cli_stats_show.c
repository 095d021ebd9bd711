/*
 * cli_stats_show.c - what `shalefs stats` prints from the samples of
 * cli_stats_sample.c: the summary, the JSON object (--json) and the lines
 * of --watch. cli_stats.c calls it; it calls only the sampler.
 *
 * STATES BY NAME
 *   The counters hold states as numbers (engine "state" 0/1/2,
 *   store_failing, lease_gen, ...). cli_stats_states turns them into
 *   names once, for all three outputs; --json gives both.
 *     lease   held (a writer with lease generation N), lost (fenced by a
 *             newer writer), none (a read-only or checkpoint mount, or a
 *             store opened by this command)
 *     engine  ok, fenced, failed
 *     store   ok, failing (since when, with the errno)
 *     mode    read-write, read-only, checkpoint
 *
 * RATES
 *   Per class, requests/s and bytes/s between two samples. The summary
 *   of a mount takes its second sample CLI_STATS_GAP_MS after the first;
 *   a store opened by this command has nothing running, so its rates are
 *   since its open (the "one sample" case: since fs_started_unix_ms).
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define CLI_STATS_GAP_MS 1000
#define CLI_STATS_SCREEN_DFLT 24      /* rows when stdout is not a terminal */

/* ---- rate classes ------------------------------------------------------- */

struct cli_stats_class {
	const char *name;          /* JSON key and summary label */
	const char *req[3];        /* counters summed for requests */
	const char *bytes;         /* counter of bytes, NULL none */
};

static const struct cli_stats_class cli_stats_classes[] = {
	{ "read", { "fs_reads" }, "fs_bytes_read" },
	{ "write", { "fs_writes" }, "fs_bytes_written" },
	{ "metadata", { "fs_lookups", "fs_creates", "fs_unlinks" }, NULL },
	{ "fsync", { "fs_fsyncs" }, NULL },
	{ "store_get", { "objstore_get_requests" }, "objstore_bytes_got" },
	{ "store_put", { "objstore_put_requests", "objstore_put_if_absent_requests" },
	  "objstore_bytes_put" },
	{ "store_other", { "objstore_head_requests", "objstore_list_requests",
			   "objstore_delete_requests" }, NULL },
};
#define CLI_STATS_N_CLASSES (sizeof(cli_stats_classes) / sizeof(cli_stats_classes[0]))

struct cli_stats_rate {
	double req_s, bytes_s;
};

/* A counter's growth from a to b (0 when it went down: another daemon). */
static uint64_t cli_stats_delta(const struct cli_stats_snap *a, const struct cli_stats_snap *b,
				const char *key)
{
	uint64_t x = a ? cli_stats_u(a, key) : 0, y = cli_stats_u(b, key);

	return y > x ? y - x : 0;
}

/* Rates of every class from a to b; a NULL: since the start. *secs gets
 * the interval. */
static void cli_stats_rates(const struct cli_stats_snap *a, const struct cli_stats_snap *b,
			    struct cli_stats_rate *r, double *secs)
{
	double s;

	if (a) {
		s = (double)(b->at_ns - a->at_ns) / 1e9;
	} else {
		uint64_t start_ms = cli_stats_u(b, "fs_started_unix_ms");
		s = start_ms && b->wall_ns / 1000000u > start_ms ?
			    (double)(b->wall_ns / 1000000u - start_ms) / 1e3 : 0;
	}
	*secs = s;
	for (size_t i = 0; i < CLI_STATS_N_CLASSES; i++) {
		const struct cli_stats_class *c = &cli_stats_classes[i];
		uint64_t n = 0;
		for (size_t k = 0; k < 3 && c->req[k]; k++)
			n += cli_stats_delta(a, b, c->req[k]);
		if (!strcmp(c->name, "metadata"))
			n += cli_stats_delta(a, b, "fs_renames") + cli_stats_delta(a, b, "fs_readdirs");
		r[i].req_s = s > 0 ? (double)n / s : 0;
		r[i].bytes_s = s > 0 && c->bytes ? (double)cli_stats_delta(a, b, c->bytes) / s : 0;
	}
}

/* ---- states by name ------------------------------------------------------ */

struct cli_stats_states {
	char mode[32];
	const char *lease;         /* held, lost, none */
	uint64_t lease_gen;
	const char *lease_why;     /* for none: why */
	const char *engine;        /* ok, fenced, failed */
	uint64_t engine_state;
	const char *store;         /* ok, failing */
	uint64_t store_failing;
	const char *checkpoint;    /* "" (live), ok, deleted */
	int64_t store_errno;
	uint64_t store_since_ms;
};

static void cli_stats_states(const struct cli_stats_src *src, const struct cli_stats_snap *s,
			     struct cli_stats_states *st)
{
	char buf[64];
	const char *mode = cli_stats_info(s, "mode", buf, sizeof(buf));

	memset(st, 0, sizeof(*st));
	if (src->fs)
		mode = src->checkpoint ? "checkpoint" : "read-only";
	else if (!mode)
		mode = cli_stats_u(s, "fs_readonly") ? "read-only" : "read-write";
	snprintf(st->mode, sizeof(st->mode), "%s", mode);
	st->engine_state = cli_stats_u(s, "state");
	st->engine = st->engine_state == 0 ? "ok" : st->engine_state == 1 ? "fenced" : "failed";
	st->lease_gen = cli_stats_u(s, "lease_gen");
	if (st->engine_state == 1) {
		st->lease = "lost";
		st->lease_why = "fenced by a newer writer";
	} else if (st->lease_gen) {
		st->lease = "held";
	} else {
		st->lease = "none";
		st->lease_why = src->fs ? "store opened read-only by this command" :
				!strcmp(st->mode, "checkpoint") ? "checkpoint mount" :
				!strcmp(st->mode, "read-only") ? "read-only mount" :
				"writer without a lease (single_writer_unsafe)";
	}
	st->store_failing = cli_stats_u(s, "store_failing");
	st->store = st->store_failing ? "failing" : "ok";
	st->store_errno = (int64_t)cli_stats_u(s, "store_error_errno");
	st->store_since_ms = cli_stats_u(s, "store_failing_since_unix_ms");
	st->checkpoint = strcmp(st->mode, "checkpoint") ? "" :
			 cli_stats_u(s, "checkpoint_deleted") ? "deleted" : "ok";
}

/* ---- formatting ---------------------------------------------------------- */

static void cli_stats_bytes(char *buf, size_t len, double v)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f %s", v, unit[u]);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
}

static void cli_stats_duration(char *buf, size_t len, uint64_t s)
{
	if (s >= 86400)
		snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(buf, len, "%" PRIu64 "s", s);
}

/* Unix ms as "2026-01-02T03:04:05Z". */
static void cli_stats_time(char *buf, size_t len, uint64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- the summary --------------------------------------------------------- */

/* Nano-dollars as "$0.000123". */
static void cli_stats_usd(char *buf, size_t len, uint64_t nusd)
{
	snprintf(buf, len, "$%.6f", (double)nusd / 1e9);
}

/* The cost lines: the estimate per hour, the price list, and the requests
 * by purpose and class (obj_cost_stats, objstore.h). Nothing when the
 * daemon reports no prices (an older one). */
static void cli_stats_cost(const struct cli_stats_snap *b)
{
	static const char *const purposes[] = { "wal", "flush", "compaction", "segment", "gc",
						"read", "manifest", "other" };
	char t1[64], t2[64], t3[64], key[96];
	uint64_t pp = cli_stats_u(b, "cost_price_put_nusd"), pg = cli_stats_u(b, "cost_price_get_nusd");
	uint64_t pm = cli_stats_u(b, "cost_price_gib_month_nusd");

	uint64_t have;

	if (cli_stats_get(b, "cost_price_put_nusd", &have))
		return;
	cli_stats_usd(t1, sizeof(t1), cli_stats_u(b, "cost_nusd_per_hour"));
	cli_stats_usd(t2, sizeof(t2), cli_stats_u(b, "cost_requests_nusd_per_hour"));
	cli_stats_usd(t3, sizeof(t3), cli_stats_u(b, "cost_storage_nusd_per_hour"));
	printf("cost:         %s/h estimated: requests %s/h (mean since the mount), storage %s/h",
	       t1, t2, t3);
	cli_stats_bytes(t1, sizeof(t1), (double)cli_stats_u(b, "cost_stored_bytes"));
	printf(" (%s of tables)\n", t1);
	printf("  prices: $%.6g per 1,000 PUT/COPY/POST/LIST, $%.6g per 1,000 GET/HEAD, "
	       "$%.6g per GB-month; DELETE free\n", (double)pp * 1000 / 1e9,
	       (double)pg * 1000 / 1e9, (double)pm / 1e9);
	printf("  %-12s %10s %10s %8s %11s %11s %11s\n", "purpose", "put-class", "get-class",
	       "deletes", "bytes put", "bytes got", "cost");
	for (size_t i = 0; i < sizeof(purposes) / sizeof(purposes[0]); i++) {
		uint64_t n[3], bp, bg;
		static const char *const cls[] = { "put_class", "get_class", "delete" };
		for (int c = 0; c < 3; c++) {
			snprintf(key, sizeof(key), "purpose_%s_%s_requests", purposes[i], cls[c]);
			n[c] = cli_stats_u(b, key);
		}
		snprintf(key, sizeof(key), "purpose_%s_put_bytes", purposes[i]);
		bp = cli_stats_u(b, key);
		snprintf(key, sizeof(key), "purpose_%s_get_bytes", purposes[i]);
		bg = cli_stats_u(b, key);
		if (!n[0] && !n[1] && !n[2])
			continue;
		snprintf(key, sizeof(key), "cost_%s_nusd", purposes[i]);
		cli_stats_bytes(t1, sizeof(t1), (double)bp);
		cli_stats_bytes(t2, sizeof(t2), (double)bg);
		cli_stats_usd(t3, sizeof(t3), cli_stats_u(b, key));
		printf("  %-12s %10" PRIu64 " %10" PRIu64 " %8" PRIu64 " %11s %11s %11s\n",
		       purposes[i], n[0], n[1], n[2], t1, t2, t3);
	}
	cli_stats_usd(t3, sizeof(t3), cli_stats_u(b, "cost_requests_nusd"));
	printf("  %-12s %10" PRIu64 " %10" PRIu64 " %8" PRIu64 " %11s %11s %11s\n", "total",
	       cli_stats_u(b, "class_put_class_requests"), cli_stats_u(b, "class_get_class_requests"),
	       cli_stats_u(b, "class_delete_requests"), "", "", t3);
}

static void cli_stats_summary(const struct cli_stats_src *src, const struct cli_stats_snap *a,
			      const struct cli_stats_snap *b)
{
	struct cli_stats_states st;
	struct cli_stats_rate r[CLI_STATS_N_CLASSES];
	char t1[64], t2[64], t3[64], store[1024], lvl[16], msg[1024];
	uint64_t start_ms = cli_stats_u(b, "fs_started_unix_ms"), now_ms = b->wall_ns / 1000000u;
	uint64_t hits = cli_stats_u(b, "block_cache_hits"), misses = cli_stats_u(b, "block_cache_misses");
	uint64_t err_ms;
	double secs;

	cli_stats_states(src, b, &st);
	cli_stats_duration(t1, sizeof(t1), start_ms && now_ms > start_ms ? (now_ms - start_ms) / 1000 : 0);
	if (src->mp)
		printf("mount:        %s (pid %" PRIu64 ", up %s)\n", src->mp,
		       cli_stats_u(b, "fs_daemon_pid"), t1);
	else
		printf("mount:        none (store opened read-only by this command)\n");
	if (src->fs)
		snprintf(store, sizeof(store), "%s", src->store_url);
	else if (!cli_stats_info(b, "store", store, sizeof(store)) || !store[0])
		snprintf(store, sizeof(store), "(not reported by this daemon)");
	printf("store:        %s\n", store);
	if (!strcmp(st.mode, "checkpoint")) {
		char name[256];
		if (src->fs)
			snprintf(name, sizeof(name), "%s", src->checkpoint);
		else if (!cli_stats_info(b, "checkpoint", name, sizeof(name)))
			name[0] = '\0';
		printf("mode:         checkpoint %s%s\n", name,
		       !strcmp(st.checkpoint, "deleted") ? " (deleted since the mount)" : "");
	} else {
		printf("mode:         %s\n", st.mode);
	}
	if (!strcmp(st.lease, "held"))
		printf("lease:        held (generation %" PRIu64 ")\n", st.lease_gen);
	else
		printf("lease:        %s (%s)\n", st.lease, st.lease_why);
	printf("engine:       %s\n", st.engine);
	if (st.store_failing) {
		cli_stats_time(t2, sizeof(t2), st.store_since_ms);
		printf("store health: failing since %s: %s\n", t2,
		       util_strerror((int)st.store_errno));
	} else if (cli_stats_u(b, "room_short")) {
		printf("store health: ok, but short of room: the reserve is spent, and writes "
		       "other than deletes get ENOSPC until there is room for it again\n");
	} else {
		printf("store health: ok\n");
	}

	cli_stats_bytes(t1, sizeof(t1), (double)cli_stats_u(b, "fs_logical_bytes"));
	printf("files:        %s in %" PRIu64 " inodes\n", t1, cli_stats_u(b, "fs_inodes"));
	cli_stats_bytes(t1, sizeof(t1), (double)cli_stats_u(b, "sst_bytes"));
	cli_stats_bytes(t2, sizeof(t2), (double)cli_stats_u(b, "l0_bytes"));
	printf("store bytes:  %s in tables (L0: %" PRIu64 " tables, %s; %" PRIu64
	       " sorted runs)\n", t1, cli_stats_u(b, "l0_count"), t2,
	       cli_stats_u(b, "sorted_runs"));
	cli_stats_bytes(t1, sizeof(t1), (double)cli_stats_u(b, "data_table_bytes"));
	cli_stats_bytes(t2, sizeof(t2), (double)cli_stats_u(b, "data_rewrite_bytes"));
	printf("              %s in %" PRIu64 " data tables (file data; %s copied out of "
	       "mostly dead ones)\n", t1, cli_stats_u(b, "data_tables"), t2);
	cli_stats_bytes(t1, sizeof(t1), (double)cli_stats_u(b, "memtable_bytes"));
	cli_stats_bytes(t2, sizeof(t2), (double)cli_stats_u(b, "frozen_memtable_bytes"));
	cli_stats_bytes(t3, sizeof(t3), (double)cli_stats_u(b, "fs_write_buffer_bytes"));
	printf("memory:       memtable %s, frozen %s (%" PRIu64 "), write buffer %s\n", t1, t2,
	       cli_stats_u(b, "frozen_memtables"), t3);
	cli_stats_bytes(t1, sizeof(t1), (double)cli_stats_u(b, "block_cache_bytes"));
	cli_stats_bytes(t2, sizeof(t2), (double)cli_stats_u(b, "block_cache_cap"));
	if (hits + misses)
		printf("cache:        %s of %s, hit ratio %.1f%% (%" PRIu64 " hits, %" PRIu64
		       " misses)\n", t1, t2, 100.0 * (double)hits / (double)(hits + misses),
		       hits, misses);
	else
		printf("cache:        %s of %s, no lookups yet\n", t1, t2);

	cli_stats_rates(a, b, r, &secs);
	if (secs < 1)
		printf("rates:        none yet (less than a second of counting)\n");
	else
		printf("rates:        %s %.1f s\n", a ? "over the last" : "since the start,", secs);
	if (secs >= 1)
		printf("  %-12s %12s %14s\n", "class", "requests/s", "bytes/s");
	for (size_t i = 0; secs >= 1 && i < CLI_STATS_N_CLASSES; i++) {
		if (cli_stats_classes[i].bytes)
			cli_stats_bytes(t1, sizeof(t1), r[i].bytes_s);
		else
			snprintf(t1, sizeof(t1), "-");
		printf("  %-12s %12.1f %14s\n", cli_stats_classes[i].name, r[i].req_s, t1);
	}

	printf("compaction:   %" PRIu64 " L0 tables (compacts at %" PRIu64 ", writes stall at %" PRIu64
	       "), %s, %s; %" PRIu64 " done, %" PRIu64 " failed\n", cli_stats_u(b, "l0_count"),
	       cli_stats_u(b, "l0_compact_trigger"), cli_stats_u(b, "l0_max"),
	       cli_stats_u(b, "compaction_pending") ? "pending" : "nothing pending",
	       cli_stats_u(b, "compactor_running") ? "running" : "idle",
	       cli_stats_u(b, "compactions_completed"), cli_stats_u(b, "compactions_failed"));
	cli_stats_duration(t1, sizeof(t1), cli_stats_u(b, "write_stall_ms") / 1000);
	printf("write stalls: %" PRIu64 " (%s stalled in all)\n", cli_stats_u(b, "write_stalls"), t1);
	if (!src->fs)                    /* not this command's own requests */
		cli_stats_cost(b);
	err_ms = 0;
	if (cli_stats_info(b, "last_error_unix_ms", t1, sizeof(t1)))
		err_ms = strtoull(t1, NULL, 10);
	if (src->fs) {
		enum util_log_level l;
		uint64_t ns = util_log_last_problem(&l, msg, sizeof(msg));
		err_ms = ns / 1000000u;
		snprintf(lvl, sizeof(lvl), "%s", l == UTIL_LOG_ERROR ? "error" : "warn");
	} else {
		if (!cli_stats_info(b, "last_error_level", lvl, sizeof(lvl)))
			lvl[0] = '\0';
		if (!cli_stats_info(b, "last_error", msg, sizeof(msg)))
			msg[0] = '\0';
	}
	if (err_ms) {
		cli_stats_time(t1, sizeof(t1), err_ms);
		printf("last error:   %s %s: %s\n", t1, lvl, msg);
	} else {
		printf("last error:   none\n");
	}
}

/* ---- JSON ---------------------------------------------------------------- */

/* "key": "value" from info (or the given fallback); first: no comma. */
static void cli_stats_json_kv(const char *key, const char *value, int comma)
{
	printf("%s\n  ", comma ? "," : "");
	cli_json_str(key);
	printf(": ");
	cli_json_str(value);
}

static void cli_stats_json(const struct cli_stats_src *src, const struct cli_stats_snap *a,
			   const struct cli_stats_snap *b)
{
	struct cli_stats_states st;
	struct cli_stats_rate r[CLI_STATS_N_CLASSES];
	char buf[1024], lvl[16] = "";
	uint64_t start_ms = cli_stats_u(b, "fs_started_unix_ms"), now_ms = b->wall_ns / 1000000u;
	uint64_t hits = cli_stats_u(b, "block_cache_hits"), misses = cli_stats_u(b, "block_cache_misses");
	uint64_t err_ms = 0, have;
	double secs;
	const char *p;

	cli_stats_states(src, b, &st);
	printf("{");
	cli_stats_json_kv("mountpoint", src->mp ? src->mp : "", 0);
	cli_stats_json_kv("store", src->fs ? src->store_url :
			  cli_stats_info(b, "store", buf, sizeof(buf)) ? buf : "", 1);
	cli_stats_json_kv("mode", st.mode, 1);
	cli_stats_json_kv("checkpoint", src->fs ? (src->checkpoint ? src->checkpoint : "") :
			  cli_stats_info(b, "checkpoint", buf, sizeof(buf)) ? buf : "", 1);
	printf(",\n  \"pid\": %" PRIu64, src->mp ? cli_stats_u(b, "fs_daemon_pid") : (uint64_t)getpid());
	printf(",\n  \"uptime_s\": %" PRIu64,
	       start_ms && now_ms > start_ms ? (now_ms - start_ms) / 1000 : 0);
	printf(",\n  \"states\": {\n");
	printf("    \"lease\": {\"name\": \"%s\", \"generation\": %" PRIu64 "},\n", st.lease,
	       st.lease_gen);
	printf("    \"engine\": {\"name\": \"%s\", \"value\": %" PRIu64 "},\n", st.engine,
	       st.engine_state);
	printf("    \"store\": {\"name\": \"%s\", \"value\": %" PRIu64 ", \"errno\": %" PRId64
	       ", \"since_unix_ms\": %" PRIu64 "},\n", st.store, st.store_failing, st.store_errno,
	       st.store_since_ms);
	printf("    \"mode\": {\"name\": \"%s\", \"value\": %d},\n", st.mode,
	       !strcmp(st.mode, "read-write") ? 0 : !strcmp(st.mode, "read-only") ? 1 : 2);
	printf("    \"checkpoint\": {\"name\": \"%s\", \"value\": %" PRIu64 "}\n  }", st.checkpoint,
	       cli_stats_u(b, "checkpoint_deleted"));
	if (hits + misses)
		printf(",\n  \"cache_hit_ratio\": %.6f", (double)hits / (double)(hits + misses));
	else
		printf(",\n  \"cache_hit_ratio\": null");
	cli_stats_rates(a, b, r, &secs);
	printf(",\n  \"rates\": {\n    \"interval_s\": %.3f,\n    \"since_start\": %s", secs,
	       a ? "false" : "true");
	for (size_t i = 0; i < CLI_STATS_N_CLASSES; i++)
		printf(",\n    \"%s\": {\"requests_per_s\": %.3f, \"bytes_per_s\": %.1f}",
		       cli_stats_classes[i].name, r[i].req_s, r[i].bytes_s);
	printf("\n  }");
	if (!src->fs && cli_stats_get(b, "cost_price_put_nusd", &have) == 0) {
		static const char *const purposes[] = { "wal", "flush", "compaction", "segment",
							"gc", "read", "manifest", "other" };
		char key[64];
		printf(",\n  \"cost\": {\"usd_per_hour\": %.9f, \"requests_usd_per_hour\": %.9f, "
		       "\"storage_usd_per_hour\": %.9f, \"stored_bytes\": %" PRIu64
		       ", \"requests_usd\": %.9f,\n    \"by_purpose_usd\": {",
		       (double)cli_stats_u(b, "cost_nusd_per_hour") / 1e9,
		       (double)cli_stats_u(b, "cost_requests_nusd_per_hour") / 1e9,
		       (double)cli_stats_u(b, "cost_storage_nusd_per_hour") / 1e9,
		       cli_stats_u(b, "cost_stored_bytes"),
		       (double)cli_stats_u(b, "cost_requests_nusd") / 1e9);
		for (size_t i = 0; i < sizeof(purposes) / sizeof(purposes[0]); i++) {
			snprintf(key, sizeof(key), "cost_%s_nusd", purposes[i]);
			printf("%s\"%s\": %.9f", i ? ", " : "", purposes[i],
			       (double)cli_stats_u(b, key) / 1e9);
		}
		printf("}}");
	}
	if (src->fs) {
		enum util_log_level l;
		err_ms = util_log_last_problem(&l, buf, sizeof(buf)) / 1000000u;
		snprintf(lvl, sizeof(lvl), "%s", l == UTIL_LOG_ERROR ? "error" : "warn");
	} else if (cli_stats_info(b, "last_error_unix_ms", buf, sizeof(buf))) {
		err_ms = strtoull(buf, NULL, 10);
		if (!cli_stats_info(b, "last_error_level", lvl, sizeof(lvl)))
			lvl[0] = '\0';
		if (!cli_stats_info(b, "last_error", buf, sizeof(buf)))
			buf[0] = '\0';
	}
	if (err_ms) {
		printf(",\n  \"last_error\": {\"unix_ms\": %" PRIu64 ", \"level\": ", err_ms);
		cli_json_str(lvl);
		printf(", \"message\": ");
		cli_json_str(buf);
		printf("}");
	} else {
		printf(",\n  \"last_error\": null");
	}
	/* Every counter, as --raw has it. */
	printf(",\n  \"counters\": {");
	p = b->stats;
	for (int first = 1; p && *p;) {
		const char *e = strchr(p, '\n'), *c = strstr(p, ": ");
		if (c && (!e || c < e)) {
			printf("%s\n    \"%.*s\": %" PRIu64, first ? "" : ",", (int)(c - p), p,
			       (uint64_t)strtoull(c + 2, NULL, 10));
			first = 0;
		}
		p = e ? e + 1 : NULL;
	}
	printf("\n  }\n}\n");
}

/* Set by SIGINT and SIGTERM during --watch. */
static volatile sig_atomic_t cli_stats_stop;

static void cli_stats_on_signal(int sig)
{
	(void)sig;
	cli_stats_stop = 1;
}

/* Sleep ms unless a stop signal comes; returns 1 when one came. */
static int cli_stats_nap(uint64_t ms)
{
	uint64_t end = util_now_ns() + ms * 1000000u;

	while (!cli_stats_stop) {
		uint64_t now = util_now_ns();
		struct timespec ts;
		if (now >= end)
			return 0;
		ts.tv_sec = (time_t)((end - now) / 1000000000u);
		ts.tv_nsec = (long)((end - now) % 1000000000u);
		(void)nanosleep(&ts, NULL);        /* EINTR: the loop looks at the flag */
	}
	return 1;
}

int cli_stats_show(struct cli_stats_src *src, int json)
{
	struct cli_stats_snap a, b;
	int two = src->mp != NULL;

	if (cli_stats_sample(src, &a))
		return 1;
	if (two) {
		util_sleep_ns((uint64_t)CLI_STATS_GAP_MS * 1000000u);
		if (cli_stats_sample(src, &b)) {
			cli_stats_snap_free(&a);
			return 1;
		}
	}
	if (json)
		cli_stats_json(src, two ? &a : NULL, two ? &b : &a);
	else
		cli_stats_summary(src, two ? &a : NULL, two ? &b : &a);
	cli_stats_snap_free(&a);
	if (two)
		cli_stats_snap_free(&b);
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}

/* ---- --watch ------------------------------------------------------------- */

static void cli_stats_watch_header(void)
{
	printf("%-8s %8s %9s %8s %9s %7s %7s %7s %9s %7s %9s %6s %4s %7s %s\n", "time", "read/s",
	       "read B/s", "write/s", "write B/s", "meta/s", "fsync/s", "get/s", "get B/s",
	       "put/s", "put B/s", "hit%", "L0", "stalls", "state");
}

/* A short unit-suffixed rate: "12.3M". */
static void cli_stats_short(char *buf, size_t len, double v)
{
	static const char sfx[] = " KMGTP";
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u)
		snprintf(buf, len, "%.1f%c", v, sfx[u]);
	else
		snprintf(buf, len, "%.0f", v);
}

static void cli_stats_watch_line(const struct cli_stats_src *src, const struct cli_stats_snap *a,
				 const struct cli_stats_snap *b)
{
	struct cli_stats_rate r[CLI_STATS_N_CLASSES];
	struct cli_stats_states st;
	char when[16], rb[16], wb[16], gb[16], pb[16], hit[16], state[64];
	uint64_t hits = cli_stats_delta(a, b, "block_cache_hits");
	uint64_t misses = cli_stats_delta(a, b, "block_cache_misses");
	time_t t = (time_t)(b->wall_ns / 1000000000u);
	struct tm tm;
	double secs;

	cli_stats_rates(a, b, r, &secs);
	cli_stats_states(src, b, &st);
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	cli_stats_short(rb, sizeof(rb), r[0].bytes_s);
	cli_stats_short(wb, sizeof(wb), r[1].bytes_s);
	cli_stats_short(gb, sizeof(gb), r[4].bytes_s);
	cli_stats_short(pb, sizeof(pb), r[5].bytes_s);
	if (hits + misses)
		snprintf(hit, sizeof(hit), "%.1f", 100.0 * (double)hits / (double)(hits + misses));
	else
		snprintf(hit, sizeof(hit), "-");
	snprintf(state, sizeof(state), "%s%s%s", st.engine,
		 st.store_failing ? ",store-failing" : "",
		 !strcmp(st.lease, "lost") ? ",lease-lost" : "");
	printf("%-8s %8.1f %9s %8.1f %9s %7.1f %7.1f %7.1f %9s %7.1f %9s %6s %4" PRIu64
	       " %7" PRIu64 " %s\n", when, r[0].req_s, rb, r[1].req_s, wb, r[2].req_s, r[3].req_s,
	       r[4].req_s, gb, r[5].req_s, pb, hit, cli_stats_u(b, "l0_count"),
	       cli_stats_delta(a, b, "write_stalls"), state);
}

/* Rows of the terminal on stdout, or CLI_STATS_SCREEN_DFLT. */
static unsigned cli_stats_rows(void)
{
	struct winsize ws;

	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 2)
		return ws.ws_row;
	return CLI_STATS_SCREEN_DFLT;
}

int cli_stats_watch(struct cli_stats_src *src, unsigned period_s)
{
	struct sigaction sa;
	struct cli_stats_snap prev, cur;
	unsigned lines = 0;
	int code = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cli_stats_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (cli_stats_sample(src, &prev))
		return 1;
	while (!cli_stats_nap((uint64_t)period_s * 1000u)) {
		if (cli_stats_sample(src, &cur)) {
			code = 1;
			break;
		}
		if (lines % (cli_stats_rows() - 1) == 0)
			cli_stats_watch_header();
		cli_stats_watch_line(src, &prev, &cur);
		lines++;
		cli_stats_snap_free(&prev);
		prev = cur;
		if (fflush(stdout) != 0) {
			code = 1;
			break;
		}
	}
	cli_stats_snap_free(&prev);
	return code;
}
