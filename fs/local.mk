# fs module: the filesystem (fs/libfs.a).
noinst_LIBRARIES += fs/libfs.a
fs_libfs_a_CPPFLAGS = $(AM_CPPFLAGS) $(FUSE_CFLAGS)
fs_libfs_a_SOURCES = fs/fs.h fs/fs_int.h fs/fs_key.c fs/fs_inode.c fs/fs_data.c \
	fs/fs_orphan.c fs/fs_mount.c fs/fs_reply.c fs/fs_ctl.c fs/fs_dir.c fs/fs_rename.c \
	fs/fs_ops.c fs/fs_optime.c fs/fs_fsck.c fs/fs_scrub.c
FS_LIBS = fs/libfs.a $(KV_LIBS) $(FUSE_LIBS)
