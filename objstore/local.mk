# objstore: the storage contract, its backends and wrappers.
noinst_LIBRARIES += objstore/libobjstore.a
objstore_libobjstore_a_CPPFLAGS = $(AM_CPPFLAGS) $(CURL_CFLAGS) $(CRYPTO_CFLAGS)
objstore_libobjstore_a_SOURCES = objstore/objstore.h
OBJ_LIBS = objstore/libobjstore.a util/libutil.a $(CURL_LIBS) $(CRYPTO_LIBS) $(PTHREAD_LIBS)
