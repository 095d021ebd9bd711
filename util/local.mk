# util: logging, clocks, PRNG, CRC32C shared by every module.
noinst_LIBRARIES += util/libutil.a
util_libutil_a_SOURCES = util/util.h util/util_hist.c util/util_log.c util/util_misc.c \
	util/util_proc.c
