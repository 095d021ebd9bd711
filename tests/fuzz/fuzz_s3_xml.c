/*
 * fuzz_s3_xml.c - fuzz entry point for the S3 XML reader.
 *
 * Built two ways:
 *   - with libFuzzer (clang -fsanitize=fuzzer,address -DSHALE_LIBFUZZER (or the older -DSHALE_FUZZ_LIBFUZZER)
 *     tests/fuzz/fuzz_s3_xml.c objstore/obj_s3_xml.c objstore/obj_s3_sign.c
 *     util/util_misc.c util/util_log.c -I. -include build/config.h -lcrypto), which supplies main();
 *   - as a plain program (the default, run by `make check`) that replays
 *     every file of a corpus directory through the same entry point: with
 *     arguments, each argument is a file or directory; without, the
 *     committed corpus $SHALE_SRCDIR/tests/fuzz/corpus/s3_xml.
 * The property checked: the parser never crashes, never reads outside its
 * input (ASan), and on success yields a tree whose every name and text is
 * a proper string, reachable by the navigation functions.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "objstore/obj_s3_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t fuzz_walk(const struct obj_s3_xml_node *n, int depth)
{
	size_t count = 0;
	/* Only a node counts: a leaf at the limit has an empty (NULL) child
	 * list one level down (the harness itself once aborted on that). */
	if (n && depth > OBJ_S3_XML_MAX_DEPTH)
		abort(); /* the parser promised a depth limit */
	for (; n; n = obj_s3_xml_next(n, NULL)) {
		/* Touch every byte of the strings. */
		volatile size_t k = strlen(obj_s3_xml_name(n)) + strlen(obj_s3_xml_text(n));
		(void)k;
		if (!*obj_s3_xml_name(n))
			abort(); /* names are never empty */
		if (obj_s3_xml_child(n, NULL) && *obj_s3_xml_text(n))
			abort(); /* containers have no text */
		count += 1 + fuzz_walk(obj_s3_xml_child(n, NULL), depth + 1);
	}
	return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct obj_s3_xml *x = NULL;
	int rc = obj_s3_xml_parse(&x, (const char *)data, size);
	if (rc == 0) {
		if (!x || !obj_s3_xml_root(x))
			abort();
		/* One root, so the root has no siblings. */
		if (obj_s3_xml_next(obj_s3_xml_root(x), NULL))
			abort();
		(void)fuzz_walk(obj_s3_xml_root(x), 1);
		obj_s3_xml_free(x);
	} else if (rc != -EINVAL && rc != -ENOMEM) {
		abort();
	} else if (x) {
		abort();
	}
	return 0;
}

#if !defined(SHALE_LIBFUZZER) && !defined(SHALE_FUZZ_LIBFUZZER)
static int fuzz_replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f) {
		fprintf(stderr, "fuzz_s3_xml: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		fclose(f);
		return -1;
	}
	/* An exact-size heap copy, so ASan sees any read past the end. */
	buf = malloc(n ? (size_t)n : 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	/* Every prefix too: truncated documents are the common failure. */
	for (long k = 0; k < n; k++) {
		uint8_t *p = malloc(k ? (size_t)k : 1);
		if (!p)
			break;
		memcpy(p, buf, (size_t)k);
		LLVMFuzzerTestOneInput(p, (size_t)k);
		free(p);
	}
	free(buf);
	return 0;
}

static int fuzz_replay(const char *path, int *count)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (stat(path, &st)) {
		fprintf(stderr, "fuzz_s3_xml: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return fuzz_replay_file(path);
	}
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char sub[4096];
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (fuzz_replay(sub, count))
			rc = -1;
	}
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	char dflt[4096];
	int count = 0, rc = 0;

	if (argc < 2) {
		const char *src = getenv("SHALE_SRCDIR");
		snprintf(dflt, sizeof(dflt), "%s/tests/fuzz/corpus/s3_xml", src ? src : ".");
		rc = fuzz_replay(dflt, &count);
	}
	for (int i = 1; i < argc; i++)
		if (fuzz_replay(argv[i], &count))
			rc = -1;
	printf("fuzz_s3_xml: replayed %d inputs (and their prefixes)\n", count);
	return rc || count == 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
#endif
