/*
 * cli_checkpoint.c - `shalefs checkpoint`.
 *
 *   shalefs checkpoint create|list|delete [-o ...] STORE [NAME]
 *
 * Exit codes: 0 success, 1 failure (one line on stderr naming the cause).
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int cli_ckpt_print(void *arg, const struct kv_checkpoint_info *c)
{
	char when[64] = "?";
	time_t t = (time_t)(c->created_ns / 1000000000u);
	struct tm tm;

	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s\tcreated=%s\tmanifest=%" PRIu64 "\twal=%" PRIu64 "%s\n", c->name, when,
	       c->manifest_id, c->wal_id, c->expire_ns ? "\texpires" : "");
	return 0;
}

int cli_checkpoint(int argc, char **argv)
{
	struct cli_opts *o = NULL;
	struct obj_backend *store = NULL;
	const char *verb;
	int rc, code = 1;

	if (argc < 2) {
		cli_err("usage: shalefs checkpoint create|list|delete [-o ...] STORE [NAME]");
		return 1;
	}
	verb = argv[1];
	if (strcmp(verb, "create") && strcmp(verb, "list") && strcmp(verb, "delete")) {
		cli_err("unknown checkpoint command '%s' (expected create, list or delete)", verb);
		return 1;
	}
	rc = cli_parse_store_args(argc - 1, argv + 1, strcmp(verb, "list") ? "NAME" : NULL,
				  &o);
	if (rc)
		return rc > 0 ? 0 : 1;
	if (cli_open_store_only(o, &store))
		goto out;
	if (!strcmp(verb, "list")) {
		rc = kv_checkpoint_list(store, cli_ckpt_print, NULL);
		if (rc == -ENOENT)
			rc = 0;
	} else if (!strcmp(verb, "create")) {
		rc = kv_checkpoint_create(store, cli_opts_second(o), 0);
		if (rc == -EEXIST) {
			cli_err("checkpoint '%s' already exists in %s", cli_opts_second(o),
				cli_opts_store(o));
			goto out;
		}
		if (rc == -EINVAL) {
			cli_err("invalid checkpoint name '%s': 1-255 characters of "
				"[A-Za-z0-9._-]", cli_opts_second(o));
			goto out;
		}
		if (rc == -ENOENT) {
			cli_err("store %s is empty: nothing to checkpoint", cli_opts_store(o));
			goto out;
		}
	} else {
		rc = kv_checkpoint_delete(store, cli_opts_second(o));
		if (rc == -ENOENT) {
			cli_err("no checkpoint named '%s' in %s", cli_opts_second(o),
				cli_opts_store(o));
			goto out;
		}
	}
	if (rc) {
		const char *why = obj_last_error();
		cli_err("checkpoint %s on %s failed: %s", verb, cli_opts_store(o),
			why && *why ? why : kv_strerror(rc));
		goto out;
	}
	code = fflush(stdout) == 0 ? 0 : 1;
out:
	obj_close(store);
	cli_opts_release(o);
	return code;
}
