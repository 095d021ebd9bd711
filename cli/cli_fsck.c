/*
 * cli_fsck.c - `shalefs fsck`: check the filesystem graph of a store
 * without a live writer (fs_fsck), problems listed one per line on stdout.
 *
 *   shalefs fsck [-o ...] STORE
 */
#include "cli/cli_int.h"

#include <stdio.h>

/* shalefs fsck [-o ...] STORE: exit 0 clean, 1 problems (listed), 2 could
 * not run. */
int cli_fsck(int argc, char **argv)
{
	struct cli_opts *o = NULL;
	struct obj_backend *store = NULL;
	struct kv_db *db = NULL;
	unsigned long problems = 0;
	int rc, code = 2;

	rc = cli_parse_store_args(argc, argv, NULL, &o);
	if (rc)
		return rc > 0 ? 0 : 2;
	if (cli_open_readonly(o, &store, &db))
		goto out;
	rc = fs_fsck(db, stdout, &problems);
	if (rc) {
		cli_err("fsck of %s could not run: %s", cli_opts_store(o), kv_strerror(rc));
		goto out;
	}
	code = problems ? 1 : 0;
out:
	if (db)
		(void)kv_close(db);
	obj_close(store);
	cli_opts_release(o);
	fflush(stdout);
	return code;
}
