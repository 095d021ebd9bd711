# fs module: the filesystem (fs/libfs.a) and the `shalefs` command.
noinst_LIBRARIES += fs/libfs.a
fs_libfs_a_CPPFLAGS = $(AM_CPPFLAGS) $(FUSE_CFLAGS)
fs_libfs_a_SOURCES = fs/fs.h fs/fs_int.h fs/fs_key.c fs/fs_inode.c fs/fs_data.c \
	fs/fs_dir.c fs/fs_ops.c fs/fs_ctl.c fs/fs_fsck.c cli/cli_main.c cli/cli_stats.c \
	cli/cli_opts.c

bin_PROGRAMS += fs/shalefs
fs_shalefs_SOURCES = cli/shalefs.c
fs_shalefs_CPPFLAGS = $(AM_CPPFLAGS) $(FUSE_CFLAGS)
fs_shalefs_LDADD = fs/libfs.a $(KV_LIBS) $(FUSE_LIBS)
FS_LIBS = fs/libfs.a $(KV_LIBS) $(FUSE_LIBS)

# mount(8) runs mount.shalefs (-t shalefs) or mount.fuse.shalefs
# (-t fuse.shalefs): both are links to shalefs, which looks at argv[0].
dist_man1_MANS = cli/shalefs.1
install-exec-hook: install-fs-mount-helpers
install-fs-mount-helpers:
	$(MKDIR_P) '$(DESTDIR)$(sbindir)'
	ln -sf '$(bindir)/shalefs' '$(DESTDIR)$(sbindir)/mount.shalefs'
	ln -sf '$(bindir)/shalefs' '$(DESTDIR)$(sbindir)/mount.fuse.shalefs'
uninstall-hook: uninstall-fs-mount-helpers
uninstall-fs-mount-helpers:
	rm -f '$(DESTDIR)$(sbindir)/mount.shalefs' '$(DESTDIR)$(sbindir)/mount.fuse.shalefs'
.PHONY: install-fs-mount-helpers uninstall-fs-mount-helpers
