/*
 * conformance.h - the objstore contract suite, shared by every backend's
 * test program (tests/objstore/check_obj_*.c).
 */
#ifndef SHALE_TESTS_CONFORMANCE_H
#define SHALE_TESTS_CONFORMANCE_H

#include <check.h>

#include "objstore/objstore.h"

/* A suite of every contract test against the store at `url`. */
Suite *obj_conformance_suite(const char *suite_name, const char *url);

#endif
