/*
 * s3_outage_run.c - helper of s3_outage.sh: writes objects through the
 * retry wrapper over the S3 backend while the script stops and restarts
 * radosgw, then reads every object back and compares.
 *
 *   s3_outage_run PREFIX COUNT SIZE
 *
 * Writes PREFIX/objNNNNN (COUNT of them, SIZE bytes each, seeded content;
 * every third one with put_if_absent) from 4 threads, printing a progress
 * line per 10 objects so the script can time the outage, then verifies
 * all of them. Exit 0 when every object reads back intact.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objstore/objstore.h"
#include "util/util.h"

static struct obj_backend *stack;
static const char *pfx;
static int count;
static size_t size;
static int next_obj;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int failures;

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	struct util_rand r;
	util_rand_seed(&r, seed);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)util_rand_next(&r);
}

static void *writer(void *arg)
{
	uint8_t *buf = malloc(size ? size : 1);
	(void)arg;
	for (;;) {
		char name[256];
		int i, rc;
		pthread_mutex_lock(&mu);
		i = next_obj++;
		pthread_mutex_unlock(&mu);
		if (i >= count)
			break;
		snprintf(name, sizeof(name), "%sobj%05d", pfx, i);
		fill(buf, size, (uint64_t)i + 1);
		rc = i % 3 == 0 ? obj_put_if_absent(stack, name, buf, size) : obj_put(stack, name, buf, size);
		if (rc) {
			fprintf(stderr, "s3_outage_run: put %s: %s (%s)\n", name, util_strerror(rc),
				obj_last_error());
			pthread_mutex_lock(&mu);
			failures++;
			pthread_mutex_unlock(&mu);
		}
		if (i % 10 == 0) {
			printf("progress %d\n", i);
			fflush(stdout);
		}
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	struct obj_config conf = OBJ_CONFIG_INIT;
	pthread_t th[4];
	uint8_t *want;
	char url[512];
	int bad = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: s3_outage_run PREFIX COUNT SIZE\n");
		return 2;
	}
	pfx = argv[1];
	count = atoi(argv[2]);
	size = (size_t)strtoull(argv[3], NULL, 10);
	if (!getenv("SHALE_S3_BUCKET") || !getenv("SHALE_S3_ENDPOINT")) {
		fprintf(stderr, "s3_outage_run: SHALE_S3_BUCKET and SHALE_S3_ENDPOINT must be set\n");
		return 2;
	}
	setenv("AWS_ENDPOINT_URL_S3", getenv("SHALE_S3_ENDPOINT"), 1);
	snprintf(url, sizeof(url), "s3://%s", getenv("SHALE_S3_BUCKET"));
	/* Short timeouts so an outage is noticed quickly; retry for up to
	 * two minutes in all. */
	conf.s3.connect_timeout_ms = 1000;
	conf.s3.request_timeout_ms = 5000;
	conf.retry.base_ms = 50;
	conf.retry.cap_ms = 1000;
	conf.retry.max_total_ms = 120000;
	int rc = obj_open(&stack, url, &conf);
	if (rc) {
		fprintf(stderr, "s3_outage_run: open %s: %s\n", url, obj_last_error());
		return 1;
	}
	for (int t = 0; t < 4; t++)
		pthread_create(&th[t], NULL, writer, NULL);
	for (int t = 0; t < 4; t++)
		pthread_join(th[t], NULL);
	printf("written %d (failures %d)\n", count, failures);

	want = malloc(size ? size : 1);
	for (int i = 0; i < count; i++) {
		char name[256];
		void *out = NULL;
		size_t n = 0;
		snprintf(name, sizeof(name), "%sobj%05d", pfx, i);
		fill(want, size, (uint64_t)i + 1);
		rc = obj_get(stack, name, 0, OBJ_WHOLE, &out, &n);
		if (rc || n != size || memcmp(out, want, size)) {
			fprintf(stderr, "s3_outage_run: %s: %s\n", name,
				rc ? obj_last_error() : "content differs");
			bad++;
		}
		obj_buf_free(out);
		obj_delete(stack, name);
	}
	free(want);
	obj_close(stack);
	printf("verified %d objects, %d bad, %d put failures\n", count, bad, failures);
	return bad || failures ? 1 : 0;
}
