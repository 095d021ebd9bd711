/*
 * fuzz_url.c - fuzz target for the store-URL and fault-spec parsers
 * (objstore/obj_url.c obj_url_parse, objstore/obj_fault.c's spec parser
 * reached through obj_fault_create).
 *
 * The input is split at its first NUL byte: the part before is a store
 * URL, the part after a SHALEFS_FAULTS spec. Both parsers must return 0
 * or -EINVAL (with a message), never crash; a parsed URL must satisfy the
 * documented shape (file: absolute path; s3: prefix "" or ending in '/').
 *
 *   libFuzzer:  scripts/fuzz SECONDS url
 *   replay (default): linked with tests/fuzz/replay_main.c, run over
 *   tests/fuzz/corpus/url by `make check`.
 */
#include "objstore/objstore.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t ulen = nul ? (size_t)(nul - data) : size;
	char *url = malloc(ulen + 1), *spec = NULL;
	struct obj_url u;
	struct obj_backend *mem = NULL, *w = NULL;
	int rc;

	if (!url)
		return 0;
	memcpy(url, data, ulen);
	url[ulen] = '\0';
	rc = obj_url_parse(&u, url);
	if (rc == 0) {
		if (u.scheme == OBJ_SCHEME_FILE && (!u.path || u.path[0] != '/'))
			__builtin_trap();
		if (u.scheme == OBJ_SCHEME_S3 && (!u.bucket || !u.prefix ||
		    (u.prefix[0] && u.prefix[strlen(u.prefix) - 1] != '/')))
			__builtin_trap();
		obj_url_free(&u);
	} else if (rc != -EINVAL && rc != -ENOMEM) {
		__builtin_trap();
	}
	if (nul) {
		size_t slen = size - ulen - 1;
		spec = malloc(slen + 1);
		if (spec && obj_mem_create(&mem, "fuzz-url") == 0) {
			memcpy(spec, nul + 1, slen);
			spec[slen] = '\0';
			rc = obj_fault_create(&w, mem, spec);
			if (rc == 0)
				obj_close(w);       /* frees mem too */
			else if (rc != -EINVAL && rc != -ENOMEM)
				__builtin_trap();
			else
				obj_close(mem);
		}
		free(spec);
	}
	free(url);
	return 0;
}
