/*
 * shalefs.c - main() of the `shalefs` command (and of mount.shalefs,
 * a link to it). Everything is in cli_*.c; this file only exists so that
 * main() is the one place allowed to end the process, and to set the
 * process-wide allocator policy below.
 */
#include "cli/cli.h"

#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/*
 * glibc's malloc raises its mmap threshold to the size of every mmapped
 * block freed (up to 32 MiB). After the first memtable chunk (1 MiB) or
 * SST buffer is freed, all later ones come from the per-thread arenas
 * instead, and an arena keeps what was freed in its middle: over a dozen
 * arenas, the daemon's RSS in a long sequential write grows far past what
 * the engine and the write buffer hold. A fixed threshold
 * (which turns the adjustment off) sends every allocation of 128 KiB or
 * more to mmap, returned to the kernel on free; what stays in arenas is
 * smaller, and capped arenas bound the fragmentation of that. Environment
 * MALLOC_* settings still override these.
 */
static void cli_malloc_policy(void)
{
#ifdef __GLIBC__
	if (!getenv("MALLOC_MMAP_THRESHOLD_"))
		(void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	if (!getenv("MALLOC_ARENA_MAX"))
		(void)mallopt(M_ARENA_MAX, 4);
#endif
}

int main(int argc, char **argv)
{
	cli_malloc_policy();
	return cli_main(argc, argv);
}
