# cli module: the `shalefs` command (cli/libcli.a, the program cli/shalefs),
# its man page and the mount(8) helpers. Links fs, kv, objstore, util, and
# libmicrohttpd (the metrics endpoint, cli_metrics.c) into the program only.
noinst_LIBRARIES += cli/libcli.a
cli_libcli_a_CPPFLAGS = $(AM_CPPFLAGS) $(FUSE_CFLAGS) $(MHD_CFLAGS)
cli_libcli_a_SOURCES = cli/cli.h cli/cli_int.h cli/cli_main.c cli/cli_common.c cli/cli_open.c \
	cli/cli_mount.c cli/cli_stats.c cli/cli_stats_sample.c cli/cli_stats_show.c \
	cli/cli_checkpoint.c cli/cli_fsck.c cli/cli_scrub.c cli/cli_opts.c cli/cli_ctl.c \
	cli/cli_admin.c cli/cli_rekey.c cli/cli_metrics.c
CLI_LIBS = cli/libcli.a $(FS_LIBS)

bin_PROGRAMS += cli/shalefs
cli_shalefs_SOURCES = cli/shalefs.c
cli_shalefs_LDADD = $(CLI_LIBS) $(MHD_LIBS)

# mount(8) runs mount.shalefs (-t shalefs) or mount.fuse.shalefs
# (-t fuse.shalefs): both are links to shalefs, which looks at argv[0].
dist_man1_MANS = cli/shalefs.1
install-exec-hook: install-cli-mount-helpers
install-cli-mount-helpers:
	$(MKDIR_P) '$(DESTDIR)$(sbindir)'
	ln -sf '$(bindir)/shalefs' '$(DESTDIR)$(sbindir)/mount.shalefs'
	ln -sf '$(bindir)/shalefs' '$(DESTDIR)$(sbindir)/mount.fuse.shalefs'
uninstall-hook: uninstall-cli-mount-helpers
uninstall-cli-mount-helpers:
	rm -f '$(DESTDIR)$(sbindir)/mount.shalefs' '$(DESTDIR)$(sbindir)/mount.fuse.shalefs'
.PHONY: install-cli-mount-helpers uninstall-cli-mount-helpers
