/*
 * shalefs.c - main() of the `shalefs` command (and of mount.shalefs,
 * a link to it). Everything is in fs_cli*.c; this file only exists so that
 * main() is the one place allowed to end the process.
 */
#include "fs/fs.h"

#include <stdlib.h>

int main(int argc, char **argv)
{
	return fs_cli_main(argc, argv);
}
