/*
 * cli_main.c - the `shalefs` command: which command argv asks for, and
 * --help and --version.
 *
 *   shalefs mount [-f] [-d] [-o OPT[,OPT...]] STORE MOUNTPOINT
 *   shalefs STORE MOUNTPOINT [-o ...]         (as mount.fuse runs it)
 *   mount.shalefs STORE MOUNTPOINT [-o ...]   (as mount(8) runs it)
 *   shalefs umount|sync|format ...            (cli_admin.c)
 *   shalefs rekey ...                         (cli_rekey.c)
 *   shalefs stats|checkpoint|fsck ...         (cli_stats.c, cli_checkpoint.c,
 *                                             cli_fsck.c)
 *
 * `shalefs mount` itself is in cli_mount.c. This file only dispatches: the
 * helpers the commands share are in cli_common.c (errors, usage, option
 * parsing) and cli_open.c (store and engine), which never call back here.
 *
 * Credentials never come from argv: AWS_* variables or ~/.aws only.
 */
#include "cli/cli_int.h"

#include <stdio.h>
#include <string.h>

/* ---- dispatch ----------------------------------------------------------------- */

int cli_main(int argc, char **argv)
{
	char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];

	if (strcmp(base, "mount.shalefs") == 0 || strcmp(base, "mount.fuse.shalefs") == 0)
		return cli_mount(argc, argv, base);
	if (argc < 2) {
		cli_err("missing command: usage: shalefs mount|umount|sync|format|rekey|checkpoint|"
			"stats|fsck ... (see shalefs --help)");
		return 1;
	}
	if (strcmp(argv[1], "mount") == 0)
		return cli_mount(argc - 1, argv + 1, "shalefs mount");
	if (strcmp(argv[1], "umount") == 0 || strcmp(argv[1], "unmount") == 0)
		return cli_umount(argc - 1, argv + 1);
	if (strcmp(argv[1], "sync") == 0)
		return cli_sync(argc - 1, argv + 1);
	if (strcmp(argv[1], "format") == 0)
		return cli_format(argc - 1, argv + 1);
	if (strcmp(argv[1], "rekey") == 0)
		return cli_rekey(argc - 1, argv + 1);
	if (strcmp(argv[1], "stats") == 0)
		return cli_stats(argc - 1, argv + 1);
	if (strcmp(argv[1], "checkpoint") == 0)
		return cli_checkpoint(argc - 1, argv + 1);
	if (strcmp(argv[1], "fsck") == 0)
		return cli_fsck(argc - 1, argv + 1);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		cli_usage(stdout, argc > 2 ? argv[2] : NULL);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("shalefs %s (filesystem format %u)\n", PACKAGE_VERSION, FS_FORMAT_VERSION);
		return 0;
	}
	if (strstr(argv[1], "://"))     /* mount.fuse runs "shalefs STORE MOUNTPOINT -o ..." */
		return cli_mount(argc, argv, "shalefs");
	cli_err("unknown command '%s' (expected mount, umount, sync, format, rekey, checkpoint, "
		"stats or fsck; see shalefs --help)", argv[1]);
	return 1;
}
