/*
 * kv_lease.c - who may write a store: the writer lease, and the readers'
 * registrations (docs/lease.md has the state machine and the rules).
 *
 * Fencing (kv_db.c) makes a second writer safe for the data: the older
 * one turns read-only and never corrupts anything. But what the older
 * one still held in memory is then lost, so fencing is the last line,
 * not the way in. The lease decides who opens a writer at all:
 *
 *   holder      live, this host      wait up to wait_ms for its release
 *                                    (the unmount-then-mount case), then
 *                                    refuse with -EBUSY
 *               dead, this host      take over (crash recovery), logged
 *               another host         refuse with -EBUSY naming it, unless
 *                                    takeover is set (then the manifest
 *                                    epoch fences it, as any older writer)
 *   released / none                  take it
 *
 * LEASE OBJECTS
 *   lease/<20-digit gen>, each written once with put_if_absent; the
 *   highest gen is the lease's state. Taking it writes gen+1 "held";
 *   releasing writes gen+1 "released". Two processes that both try gen+1
 *   cannot both succeed, so at most one believes it holds the lease, and
 *   a holder whose release meets -EEXIST knows it was taken over. The
 *   taker deletes objects below the previous gen, so a handful remain.
 *
 * READER OBJECTS
 *   readers/<20-digit start ns>-<16 hex random>: one per read-only or
 *   checkpoint open, written with put at open and deleted at close. A
 *   crashed reader leaves one behind; kv_readers_list reports whether each
 *   is alive as far as this host can tell (util_proc_state).
 *
 * RECORD FORMAT (both kinds; text, so an administrator can read one)
 *   "shalefs-lease 1\n" then one "key value\n" line each, in this order:
 *     gen N            lease generation (0 in a reader record)
 *     state S          held | released | reader
 *     clean 0|1        released: 1 when everything written was durable
 *     host NAME        host name
 *     host_id ID       machine id ([A-Za-z0-9-], may be empty)
 *     boot_id ID       boot id (likewise)
 *     pid_ns N         pid namespace inode
 *     pid N            process id
 *     start N          process start time, ticks since boot
 *     since N          wall-clock ns when the holder opened the store
 *     epoch N          writer epoch the holder claims (manifest's + 1)
 *     checkpoint NAME  readers at a checkpoint ("" otherwise)
 *     mountpoint PATH  rest of the line (newlines replaced by '?')
 *     crc X            CRC32C of every byte before this line, 8 hex digits
 *   Unknown keys are an error (a newer format): the reader refuses rather
 *   than guess who holds the store.
 *
 * DELETED CHECKPOINTS
 *   A reader at a checkpoint that someone deletes (checkpoint delete
 *   --force) loses its tables to GC. kv_db_checkpoint_check, called by
 *   kv_db.c when a read fails as corrupt, looks for the checkpoint in the
 *   latest manifest (at most every KV_CKPT_CHECK_NS) and says once that it
 *   is gone.
 *
 * THREADING
 *   Called from kv_open/kv_close and the CLI, one thread at a time per db;
 *   kv_db_checkpoint_check from any reading thread (atomics only).
 */
#include "kv/kv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KV_LEASE_PREFIX "lease/"
#define KV_READERS_PREFIX "readers/"
#define KV_LEASE_MAGIC "shalefs-lease 1\n"
/* How often a waiter checks its local holder's pid, and re-reads the
 * lease (a holder may release and keep running for a moment). */
#define KV_LEASE_POLL_NS (50ull * 1000000)
#define KV_LEASE_REREAD_NS (1000ull * 1000000)

static const char *kv_lease_state_name(const struct kv_lease_info *l)
{
	return l->reader ? "reader" : l->held ? "held" : "released";
}

/* Encode l (see RECORD FORMAT). Returns 0 or -ENOMEM; *out is malloc'd. */
static int kv_lease_encode(const struct kv_lease_info *l, char **out, size_t *len)
{
	char mp[sizeof(l->mountpoint)];
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);
	uint32_t crc;

	if (!f)
		return -ENOMEM;
	snprintf(mp, sizeof(mp), "%s", l->mountpoint);
	for (char *p = mp; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = '?';
	fprintf(f, "%sgen %" PRIu64 "\nstate %s\nclean %d\nhost %s\nhost_id %s\nboot_id %s\n"
		"pid_ns %" PRIu64 "\npid %" PRId64 "\nstart %" PRIu64 "\nsince %" PRIu64 "\n"
		"epoch %" PRIu64 "\ncheckpoint %s\nmountpoint %s\n",
		KV_LEASE_MAGIC, l->gen, kv_lease_state_name(l), l->clean ? 1 : 0, l->who.host,
		l->who.host_id, l->who.boot_id, l->who.pid_ns, l->who.pid, l->who.start,
		l->since_ns, l->epoch, l->checkpoint, mp);
	if (fflush(f) != 0) {
		fclose(f);
		free(s);
		return -ENOMEM;
	}
	crc = util_crc32c(0, s, n);
	fprintf(f, "crc %08" PRIx32 "\n", crc);
	if (fclose(f) != 0) {
		free(s);
		return -ENOMEM;
	}
	*out = s;
	*len = n;
	return 0;
}

/* Copy a decoded value into a field; 0, or -1 when it does not fit. */
static int kv_lease_field(char *dst, size_t dstlen, const char *val)
{
	size_t n = strlen(val);
	if (n >= dstlen)
		return -1;
	memcpy(dst, val, n + 1);
	return 0;
}

static int kv_lease_bad(const char *name, const char *why)
{
	return KV_CORRUPT(name, KV_CORRUPT_NO_OFFSET, "not a valid lease record (%s)", why);
}

/* Decode the record read from object `name`. Returns 0 or KV_ECORRUPT. */
static int kv_lease_decode(const char *name, const char *buf, size_t len,
			   struct kv_lease_info *l)
{
	size_t ml = strlen(KV_LEASE_MAGIC);
	const char *p, *end = buf + len, *crc_line = NULL;
	char state[16] = "";
	int fit = 0;

	memset(l, 0, sizeof(*l));
	snprintf(l->object, sizeof(l->object), "%s", name);
	if (len < ml || memcmp(buf, KV_LEASE_MAGIC, ml) != 0)
		return kv_lease_bad(name, "no 'shalefs-lease 1' header");
	for (p = buf + ml; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *sp;
		char key[16], val[1100];
		size_t kl, vl;

		if (!nl)
			return kv_lease_bad(name, "truncated");
		sp = memchr(p, ' ', (size_t)(nl - p));
		if (!sp)
			return kv_lease_bad(name, "a line without a value");
		kl = (size_t)(sp - p);
		vl = (size_t)(nl - sp - 1);
		if (kl >= sizeof(key) || vl >= sizeof(val))
			return kv_lease_bad(name, "a line too long");
		memcpy(key, p, kl);
		key[kl] = '\0';
		memcpy(val, sp + 1, vl);
		val[vl] = '\0';
		if (!strcmp(key, "crc")) {
			crc_line = p;
			unsigned long want = strtoul(val, NULL, 16);
			if (util_crc32c(0, buf, (size_t)(crc_line - buf)) != (uint32_t)want)
				return kv_lease_bad(name, "checksum mismatch");
			if (nl + 1 != end)
				return kv_lease_bad(name, "bytes after the checksum");
			break;
		}
		if (!strcmp(key, "gen"))
			l->gen = strtoull(val, NULL, 10);
		else if (!strcmp(key, "state"))
			fit |= kv_lease_field(state, sizeof(state), val);
		else if (!strcmp(key, "clean"))
			l->clean = atoi(val) != 0;
		else if (!strcmp(key, "host"))
			fit |= kv_lease_field(l->who.host, sizeof(l->who.host), val);
		else if (!strcmp(key, "host_id"))
			fit |= kv_lease_field(l->who.host_id, sizeof(l->who.host_id), val);
		else if (!strcmp(key, "boot_id"))
			fit |= kv_lease_field(l->who.boot_id, sizeof(l->who.boot_id), val);
		else if (!strcmp(key, "pid_ns"))
			l->who.pid_ns = strtoull(val, NULL, 10);
		else if (!strcmp(key, "pid"))
			l->who.pid = strtoll(val, NULL, 10);
		else if (!strcmp(key, "start"))
			l->who.start = strtoull(val, NULL, 10);
		else if (!strcmp(key, "since"))
			l->since_ns = strtoull(val, NULL, 10);
		else if (!strcmp(key, "epoch"))
			l->epoch = strtoull(val, NULL, 10);
		else if (!strcmp(key, "checkpoint"))
			fit |= kv_lease_field(l->checkpoint, sizeof(l->checkpoint), val);
		else if (!strcmp(key, "mountpoint"))
			fit |= kv_lease_field(l->mountpoint, sizeof(l->mountpoint), val);
		else
			return kv_lease_bad(name, "an unknown field (written by a newer shalefs?)");
		p = nl + 1;
	}
	if (!crc_line)
		return kv_lease_bad(name, "no checksum line");
	if (fit)
		return kv_lease_bad(name, "a value too long");
	if (!strcmp(state, "held"))
		l->held = 1;
	else if (!strcmp(state, "reader"))
		l->reader = 1;
	else if (strcmp(state, "released") != 0)
		return kv_lease_bad(name, "unknown state");
	return 0;
}

static int kv_lease_get(struct obj_backend *store, const char *name, struct kv_lease_info *l)
{
	void *buf = NULL;
	size_t len = 0;
	int rc = kv_obj_get(store, name, 0, OBJ_WHOLE, &buf, &len);
	if (rc)
		return rc;
	rc = kv_lease_decode(name, buf, len, l);
	obj_buf_free(buf);
	return rc;
}

struct kv_lease_scan {
	uint64_t max, min;
	char name[64];
};

static int kv_lease_scan_cb(void *arg, const char *name, uint64_t size)
{
	struct kv_lease_scan *s = arg;
	const char *d = name + strlen(KV_LEASE_PREFIX);
	char *end;
	uint64_t gen;

	(void)size;
	gen = strtoull(d, &end, 10);
	if (end - d != 20 || *end)
		return 0;                       /* not ours: ignored */
	if (gen > s->max) {
		s->max = gen;
		snprintf(s->name, sizeof(s->name), "%s", name);
	}
	if (!s->min || gen < s->min)
		s->min = gen;
	return 0;
}

static void kv_lease_name(uint64_t gen, char *buf, size_t len)
{
	snprintf(buf, len, KV_LEASE_PREFIX "%020" PRIu64, gen);
}

/* The newest lease record. Returns 0, -ENOENT (never held), or an error.
 * *min is the lowest gen present (for the clean-up). */
static int kv_lease_latest(struct obj_backend *store, struct kv_lease_info *out, uint64_t *min)
{
	struct kv_lease_scan s = { 0 };
	int rc = obj_list_each(store, KV_LEASE_PREFIX, 0, kv_lease_scan_cb, &s);

	if (rc)
		return rc;
	if (min)
		*min = s.min;
	if (!s.max)
		return -ENOENT;
	rc = kv_lease_get(store, s.name, out);
	if (rc == -ENOENT)                      /* deleted under us: a taker's clean-up */
		return -EAGAIN;
	if (rc == 0 && out->gen != s.max)
		return kv_lease_bad(s.name, "its gen does not match its name");
	return rc;
}

int kv_lease_read(struct obj_backend *store, struct kv_lease_info *out)
{
	int rc;
	for (int i = 0; i < 10; i++) {
		rc = kv_lease_latest(store, out, NULL);
		if (rc != -EAGAIN)
			return rc;
	}
	return rc;
}

enum kv_lease_liveness kv_lease_liveness(const struct kv_lease_info *l)
{
	if (!l->held && !l->reader)
		return KV_LEASE_FREE;
	switch (util_proc_state(&l->who)) {
	case UTIL_PROC_ALIVE:
		return KV_LEASE_LIVE;
	case UTIL_PROC_DEAD:
		return KV_LEASE_DEAD;
	default:
		return KV_LEASE_REMOTE;
	}
}

size_t kv_lease_describe(const struct kv_lease_info *l, char *buf, size_t len)
{
	char when[32] = "?";
	time_t t = (time_t)(l->since_ns / 1000000000u);
	struct tm tm;
	int n;

	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(buf, len, "%s (pid %" PRId64 ", since %s%s%s)", l->who.host[0] ?
		     l->who.host : "an unknown host", l->who.pid, when,
		     l->mountpoint[0] ? ", on " : "", l->mountpoint);
	return n < 0 ? 0 : (size_t)n;
}

/* Fill the parts of a record that describe this process. */
static void kv_lease_self(struct kv_lease_info *l, const struct kv_lease_conf *lc,
			  uint64_t since)
{
	memset(l, 0, sizeof(*l));
	util_proc_self(&l->who);
	l->since_ns = since;
	if (lc && lc->mountpoint)
		snprintf(l->mountpoint, sizeof(l->mountpoint), "%s", lc->mountpoint);
}

static int kv_lease_put(struct obj_backend *store, struct kv_lease_info *l, const char *name,
			int create_only)
{
	char *buf = NULL;
	size_t len = 0;
	int rc = kv_lease_encode(l, &buf, &len);
	if (rc)
		return rc;
	rc = create_only ? obj_put_if_absent(store, name, buf, len) : obj_put(store, name, buf, len);
	free(buf);
	return rc;
}

/* Delete lease objects in [min, below). Best effort: a leftover costs a
 * few bytes and the next taker tries again. */
static void kv_lease_trim(struct obj_backend *store, uint64_t min, uint64_t below)
{
	char name[64];
	for (uint64_t g = min ? min : 1; g < below; g++) {
		kv_lease_name(g, name, sizeof(name));
		if (obj_delete(store, name) != 0)
			return;
	}
}

int kv_lease_acquire(struct kv_db *db, uint64_t epoch)
{
	struct kv_lease_conf *lc = db->conf.lease;
	struct kv_lease_info cur, me;
	uint64_t start = util_now_ns(), last_read = 0, min = 0;
	int told = 0, took = 0, rc;
	char who[1400], name[64];

	for (;;) {
		rc = kv_lease_latest(db->store, &cur, &min);
		last_read = util_now_ns();
		if (rc == -EAGAIN)
			continue;
		if (rc == -ENOENT) {
			memset(&cur, 0, sizeof(cur));
		} else if (rc) {
			return rc;
		}
		if (cur.held) {
			enum kv_lease_liveness lv = kv_lease_liveness(&cur);
			kv_lease_describe(&cur, who, sizeof(who));
			if (lv == KV_LEASE_DEAD) {
				UTIL_WARN("kv", "taking over the store's lease from %s: that "
					  "process is gone (crash recovery)", who);
				took = 1;
			} else if (lc->takeover) {
				took = 2;
				UTIL_WARN("kv", "taking over the store's lease from %s "
					  "(takeover requested): it is fenced and turns read-only",
					  who);
			} else if (lv == KV_LEASE_LIVE &&
				   util_now_ns() - start < (uint64_t)lc->wait_ms * 1000000) {
				if (!told && lc->waiting)
					lc->waiting(lc->arg, &cur);
				told = 1;
				/* Poll the pid cheaply; re-read the lease when it is
				 * gone, or now and then. */
				while (kv_lease_liveness(&cur) == KV_LEASE_LIVE &&
				       util_now_ns() - last_read < KV_LEASE_REREAD_NS &&
				       util_now_ns() - start < (uint64_t)lc->wait_ms * 1000000)
					util_sleep_ns(KV_LEASE_POLL_NS);
				continue;
			} else {
				if (lc->holder)
					*lc->holder = cur;
				return -EBUSY;
			}
		}
		kv_lease_self(&me, lc, util_wall_ns());
		me.gen = cur.gen + 1;
		me.held = 1;
		me.epoch = epoch;
		kv_lease_name(me.gen, name, sizeof(name));
		rc = kv_lease_put(db->store, &me, name, 1);
		if (rc == -EEXIST)
			continue;                       /* someone else moved first: look again */
		if (rc)
			return rc;
		db->lease = me;
		lc->took_over = cur.held ? took : 0;
		if (lc->took_over && lc->holder)
			*lc->holder = cur;
		if (cur.gen > 1)
			kv_lease_trim(db->store, min, cur.gen);
		UTIL_INFO("kv", "took the store's writer lease (%s)", name);
		return 0;
	}
}

void kv_lease_release(struct kv_db *db, int clean)
{
	struct kv_lease_info rel = db->lease;
	char name[64];
	int rc;

	if (!rel.gen)
		return;
	rel.gen++;
	rel.held = 0;
	rel.clean = clean;
	kv_lease_name(rel.gen, name, sizeof(name));
	rc = kv_lease_put(db->store, &rel, name, 1);
	if (rc == -EEXIST)
		UTIL_WARN("kv", "the store's lease was taken over while we held it; not releasing");
	else if (rc)
		UTIL_ERROR("kv", "releasing the store's lease (%s) failed: %s; the next writer "
			   "on this host takes it over once this process has exited", name,
			   kv_strerror(rc));
	db->lease.gen = 0;
}

int kv_reader_register(struct kv_db *db)
{
	const struct kv_lease_conf *lc = db->conf.lease;
	struct kv_lease_info me;
	uint64_t rnd = util_rand_os_seed();
	int rc;

	kv_lease_self(&me, lc, util_wall_ns());
	me.reader = 1;
	if (db->conf.mode == KV_OPEN_CHECKPOINT && db->conf.checkpoint)
		snprintf(me.checkpoint, sizeof(me.checkpoint), "%s", db->conf.checkpoint);
	snprintf(db->reader_obj, sizeof(db->reader_obj), KV_READERS_PREFIX "%020" PRIu64 "-%016"
		 PRIx64, me.since_ns, rnd);
	rc = kv_lease_put(db->store, &me, db->reader_obj, 0);
	if (rc)
		db->reader_obj[0] = '\0';
	return rc;
}

void kv_reader_unregister(struct kv_db *db)
{
	if (!db->reader_obj[0])
		return;
	if (obj_delete(db->store, db->reader_obj) != 0)
		UTIL_WARN("kv", "could not remove %s: checkpoint delete will ask for --force "
			  "until it is gone", db->reader_obj);
	db->reader_obj[0] = '\0';
}

struct kv_readers_ctx {
	struct obj_backend *store;
	kv_reader_fn fn;
	void *arg;
};

static int kv_readers_cb(void *arg, const char *name, uint64_t size)
{
	struct kv_readers_ctx *c = arg;
	struct kv_lease_info r;
	int rc;

	(void)size;
	rc = kv_lease_get(c->store, name, &r);
	if (rc == -ENOENT)
		return 0;                       /* closed meanwhile */
	if (rc == KV_ECORRUPT)
		return 0;                       /* logged; not a reader we can name */
	if (rc)
		return rc;
	return c->fn(c->arg, &r);
}

int kv_readers_list(struct obj_backend *store, kv_reader_fn fn, void *arg)
{
	struct kv_readers_ctx c = { store, fn, arg };
	return obj_list_each(store, KV_READERS_PREFIX, 0, kv_readers_cb, &c);
}

int kv_reader_forget(struct obj_backend *store, const struct kv_lease_info *r)
{
	if (!r->reader || strncmp(r->object, KV_READERS_PREFIX, strlen(KV_READERS_PREFIX)))
		return -EINVAL;
	return obj_delete(store, r->object);
}

/* How often failed reads may look for a deleted checkpoint. */
#define KV_CKPT_CHECK_NS (5ull * 1000000000)

void kv_db_checkpoint_check(struct kv_db *db)
{
	struct kv_manifest *m = NULL;
	uint64_t now = util_now_ns(), last;

	if (db->conf.mode != KV_OPEN_CHECKPOINT || atomic_load(&db->ckpt_deleted))
		return;
	last = atomic_load(&db->ckpt_checked_ns);
	if ((last && now - last < KV_CKPT_CHECK_NS) ||
	    !atomic_compare_exchange_strong(&db->ckpt_checked_ns, &last, now))
		return;
	if (kv_manifest_load_latest(db->store, &m) != 0)
		return;
	if (!kv_manifest_find_ckpt(m, db->conf.checkpoint)) {
		atomic_store(&db->ckpt_deleted, 1);
		UTIL_ERROR("kv", "checkpoint '%s' was deleted from the store while mounted here "
			   "(checkpoint delete --force): its tables are being removed and reads "
			   "of them fail; unmount this checkpoint", db->conf.checkpoint);
	}
	kv_manifest_free(m);
}
