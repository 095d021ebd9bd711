# Tests of the objstore module: the backends and wrappers over the shared
# conformance suite, and the S3 backend.
OBJ_TEST_LIBS = $(TEST_COMMON_LIB) $(OBJ_LIBS) $(TEST_CHECK_LIBS)
OBJSTORE_CHECKS = tests/objstore/check_obj_local tests/objstore/check_obj_mem \
	tests/objstore/check_obj_retry tests/objstore/check_obj_fault tests/objstore/check_obj_url \
	tests/objstore/check_obj_dcache \
	tests/objstore/check_obj_crypt tests/objstore/check_obj_cost
check_PROGRAMS += $(OBJSTORE_CHECKS)
CONFORMANCE = tests/objstore/conformance.c tests/objstore/conformance.h
tests_objstore_check_obj_local_SOURCES = tests/objstore/check_obj_local.c $(CONFORMANCE)
tests_objstore_check_obj_local_CPPFLAGS = $(TEST_CPPFLAGS)
tests_objstore_check_obj_local_LDADD = $(OBJ_TEST_LIBS)
tests_objstore_check_obj_mem_SOURCES = tests/objstore/check_obj_mem.c $(CONFORMANCE)
tests_objstore_check_obj_mem_CPPFLAGS = $(TEST_CPPFLAGS)
tests_objstore_check_obj_mem_LDADD = $(OBJ_TEST_LIBS)
tests_objstore_check_obj_retry_CPPFLAGS = $(TEST_CPPFLAGS)
tests_objstore_check_obj_retry_LDADD = $(OBJ_TEST_LIBS)
tests_objstore_check_obj_fault_CPPFLAGS = $(TEST_CPPFLAGS)
tests_objstore_check_obj_fault_LDADD = $(OBJ_TEST_LIBS)
tests_objstore_check_obj_crypt_CPPFLAGS = $(TEST_CPPFLAGS)
tests_objstore_check_obj_crypt_LDADD = $(OBJ_TEST_LIBS)
tests_objstore_check_obj_url_CPPFLAGS = $(TEST_CPPFLAGS)
tests_objstore_check_obj_url_LDADD = $(OBJ_TEST_LIBS)
tests_objstore_check_obj_dcache_CPPFLAGS = $(TEST_CPPFLAGS)
tests_objstore_check_obj_dcache_LDADD = $(OBJ_TEST_LIBS)
tests_objstore_check_obj_cost_CPPFLAGS = $(TEST_CPPFLAGS)
tests_objstore_check_obj_cost_LDADD = $(OBJ_TEST_LIBS) $(PTHREAD_LIBS)
TESTS += $(OBJSTORE_CHECKS)

# The S3 backend. Unit tests (SigV4 vectors, XML reader, config
# resolution, the credential chain and its refresh; the XML fuzz corpus is in tests/fuzz/local.mk) always run;
# check_obj_s3 and s3_outage.sh talk to a real S3 (tests/rig/rgw-start)
# when SHALE_S3_ENDPOINT is set, skip otherwise, and fail when
# SHALE_REQUIRE_S3=1 and it is not.
S3_TEST_LIBS = objstore/libobjstore.a util/libutil.a $(CURL_LIBS) $(CRYPTO_LIBS) \
	$(ZSTD_LIBS) $(CHECK_LIBS) $(PTHREAD_LIBS)
S3_TEST_CPPFLAGS = $(AM_CPPFLAGS) $(CURL_CFLAGS) $(CRYPTO_CFLAGS) $(CHECK_CFLAGS)

S3_UNIT_TESTS = tests/objstore/check_obj_s3_sign tests/objstore/check_obj_s3_xml \
	tests/objstore/check_obj_s3_conf tests/objstore/check_obj_s3_cred
check_PROGRAMS += $(S3_UNIT_TESTS) tests/objstore/check_obj_s3 tests/objstore/s3_outage_run
TESTS += $(S3_UNIT_TESTS) tests/objstore/check_obj_s3 tests/objstore/s3_outage.sh
dist_check_SCRIPTS += tests/objstore/s3_outage.sh

tests_objstore_check_obj_s3_sign_SOURCES = tests/objstore/check_obj_s3_sign.c
tests_objstore_check_obj_s3_sign_CPPFLAGS = $(S3_TEST_CPPFLAGS)
tests_objstore_check_obj_s3_sign_LDADD = $(TEST_COMMON_LIB) $(S3_TEST_LIBS)
tests_objstore_check_obj_s3_xml_SOURCES = tests/objstore/check_obj_s3_xml.c
tests_objstore_check_obj_s3_xml_CPPFLAGS = $(S3_TEST_CPPFLAGS)
tests_objstore_check_obj_s3_xml_LDADD = $(TEST_COMMON_LIB) $(S3_TEST_LIBS)
tests_objstore_check_obj_s3_conf_SOURCES = tests/objstore/check_obj_s3_conf.c
tests_objstore_check_obj_s3_conf_CPPFLAGS = $(S3_TEST_CPPFLAGS)
tests_objstore_check_obj_s3_conf_LDADD = $(TEST_COMMON_LIB) $(S3_TEST_LIBS)
tests_objstore_check_obj_s3_cred_SOURCES = tests/objstore/check_obj_s3_cred.c
tests_objstore_check_obj_s3_cred_CPPFLAGS = $(S3_TEST_CPPFLAGS)
tests_objstore_check_obj_s3_cred_LDADD = $(TEST_COMMON_LIB) $(S3_TEST_LIBS)
tests_objstore_check_obj_s3_SOURCES = tests/objstore/check_obj_s3.c $(CONFORMANCE)
tests_objstore_check_obj_s3_CPPFLAGS = $(S3_TEST_CPPFLAGS)
tests_objstore_check_obj_s3_LDADD = $(TEST_COMMON_LIB) $(S3_TEST_LIBS)
tests_objstore_s3_outage_run_SOURCES = tests/objstore/s3_outage_run.c
tests_objstore_s3_outage_run_CPPFLAGS = $(S3_TEST_CPPFLAGS)
tests_objstore_s3_outage_run_LDADD = $(S3_TEST_LIBS)
