/*
 * gen_manifest_corpus.c - writes a few valid manifests (empty, with L0
 * tables, runs and checkpoints) as the seed corpus of fuzz_manifest:
 *   gen_manifest_corpus DIR
 */
#include "kv/kv_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void meta(struct kv_sst_meta *s, int i)
{
	memset(s, 0, sizeof(*s));
	for (int k = 0; k < 16; k++)
		s->id.b[k] = (uint8_t)(i * 31 + k);
	s->size = 4096u * (unsigned)(i + 1);
	s->entries = 10u + (unsigned)i;
	s->min_seq = 1;
	s->max_seq = 100u + (unsigned)i;
	s->smallest_len = s->largest_len = 12;
	s->smallest = calloc(1, 12);
	s->largest = malloc(12);
	memset(s->largest, 0xff, 12);
	s->smallest[0] = (uint8_t)i;
}

static void emit(const char *dir, const char *name, const struct kv_manifest *m)
{
	struct kv_buf b = { 0 };
	char path[512];
	if (kv_manifest_encode(m, &b))
		exit(1);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(b.data, 1, b.len, f) != b.len)
		exit(1);
	fclose(f);
	kv_buf_free(&b);
}

int main(int argc, char **argv)
{
	struct kv_manifest m = { .id = 1, .next_run_id = 1 };
	if (argc != 2)
		return 2;
	emit(argv[1], "empty", &m);
	struct kv_sst_meta l0[3], r0[2];
	for (int i = 0; i < 3; i++)
		meta(&l0[i], i);
	for (int i = 0; i < 2; i++)
		meta(&r0[i], 10 + i);
	struct kv_run run = { .run_id = 7, .ssts = r0, .n = 2 };
	struct kv_checkpoint ck = { .name = "nightly-1", .manifest_id = 5, .wal_id = 9,
				    .created_ns = 123, .expire_ns = 0 };
	m = (struct kv_manifest){ .id = 42, .writer_epoch = 3, .compactor_epoch = 2,
				  .wal_replay_after = 17, .last_seq = 999, .next_run_id = 8,
				  .l0 = l0, .n_l0 = 3, .runs = &run, .n_runs = 1,
				  .ckpts = &ck, .n_ckpt = 1 };
	emit(argv[1], "full", &m);
	m.n_ckpt = 0;
	emit(argv[1], "no-checkpoints", &m);
	return 0;
}
