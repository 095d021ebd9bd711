# Fuzz targets. Each is built as a plain program that replays a corpus
# (replay_main.c, or a main() of its own) and run by `make check` over its
# committed corpus, tests/fuzz/corpus/TARGET (tests/fuzz/replay.sh PROGRAM
# CORPUS_DIR); scripts/fuzz builds them under libFuzzer (see the header of
# each tests/fuzz/fuzz_*.c).

# The S3 XML reader (objstore): replays its corpus itself.
check_PROGRAMS += tests/fuzz/fuzz_s3_xml
TESTS += tests/fuzz/fuzz_s3_xml
EXTRA_DIST += tests/fuzz/corpus/s3_xml
tests_fuzz_fuzz_s3_xml_SOURCES = tests/fuzz/fuzz_s3_xml.c
tests_fuzz_fuzz_s3_xml_CPPFLAGS = $(S3_TEST_CPPFLAGS)
tests_fuzz_fuzz_s3_xml_LDADD = $(S3_TEST_LIBS)

# Store-URL and fault-spec parser (objstore).
check_PROGRAMS += tests/fuzz/fuzz_url
tests_fuzz_fuzz_url_SOURCES = tests/fuzz/fuzz_url.c tests/fuzz/replay_main.c
tests_fuzz_fuzz_url_LDADD = $(OBJ_LIBS)
TESTS += tests/fuzz/fuzz_url_replay.sh
dist_check_SCRIPTS += tests/fuzz/fuzz_url_replay.sh
EXTRA_DIST += tests/fuzz/corpus/url

# WAL records (kv).
check_PROGRAMS += tests/fuzz/fuzz_wal
tests_fuzz_fuzz_wal_SOURCES = tests/fuzz/fuzz_wal.c tests/fuzz/replay_main.c
tests_fuzz_fuzz_wal_LDADD = $(KV_LIBS)
TESTS += tests/fuzz/fuzz_wal_replay.sh
dist_check_SCRIPTS += tests/fuzz/replay.sh tests/fuzz/fuzz_wal_replay.sh
EXTRA_DIST += tests/fuzz/corpus/wal tests/fuzz/gen_wal_corpus.c

# SSTs (kv): a main() of its own.
check_PROGRAMS += tests/fuzz/fuzz_sst
tests_fuzz_fuzz_sst_SOURCES = tests/fuzz/fuzz_sst.c
tests_fuzz_fuzz_sst_LDADD = $(KV_LIBS)
TESTS += tests/fuzz/fuzz_sst_replay.sh
dist_check_SCRIPTS += tests/fuzz/fuzz_sst_replay.sh
EXTRA_DIST += tests/fuzz/corpus/sst

# The manifest (kv).
check_PROGRAMS += tests/fuzz/fuzz_manifest
tests_fuzz_fuzz_manifest_SOURCES = tests/fuzz/fuzz_manifest.c tests/fuzz/replay_main.c
tests_fuzz_fuzz_manifest_LDADD = $(KV_LIBS)
TESTS += tests/fuzz/fuzz_manifest_replay.sh
dist_check_SCRIPTS += tests/fuzz/fuzz_manifest_replay.sh
EXTRA_DIST += tests/fuzz/corpus/manifest tests/fuzz/gen_manifest_corpus.c

# The command-line / mount-option parser (cli/cli_opts.c).
check_PROGRAMS += tests/fuzz/fuzz_mountopt
tests_fuzz_fuzz_mountopt_SOURCES = tests/fuzz/fuzz_mountopt.c tests/fuzz/replay_main.c
tests_fuzz_fuzz_mountopt_CPPFLAGS = $(AM_CPPFLAGS) $(FUSE_CFLAGS)
tests_fuzz_fuzz_mountopt_LDADD = cli/libcli.a util/libutil.a $(FUSE_LIBS) $(PTHREAD_LIBS)
TESTS += tests/fuzz/fuzz_mountopt_replay.sh
dist_check_SCRIPTS += tests/fuzz/fuzz_mountopt_replay.sh
EXTRA_DIST += tests/fuzz/corpus/mountopt

# Encrypted stores (objstore): the key object and the chunk framing.
check_PROGRAMS += tests/fuzz/fuzz_crypt
tests_fuzz_fuzz_crypt_SOURCES = tests/fuzz/fuzz_crypt.c tests/fuzz/replay_main.c
tests_fuzz_fuzz_crypt_LDADD = $(OBJ_LIBS)
TESTS += tests/fuzz/fuzz_crypt_replay.sh
dist_check_SCRIPTS += tests/fuzz/fuzz_crypt_replay.sh
EXTRA_DIST += tests/fuzz/corpus/crypt
