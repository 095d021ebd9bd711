/*
 * check_obj_mem.c - the mem:// backend: conformance plus named-store reuse.
 */
#include "tests/objstore/conformance.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/check_main.h"

START_TEST(test_obj_mem__named_store_survives_handle)
{
	struct obj_backend *a, *b;
	void *buf;
	size_t len;

	ck_assert_int_eq(obj_open(&a, "mem://persist", NULL), 0);
	ck_assert_int_eq(obj_put(a, "k", "v", 1), 0);
	obj_close(a);
	ck_assert_int_eq(obj_open(&b, "mem://persist", NULL), 0);
	ck_assert_int_eq(obj_get(b, "k", 0, OBJ_WHOLE, &buf, &len), 0);
	ck_assert(len == 1 && memcmp(buf, "v", 1) == 0);
	free(buf);
	obj_close(b);
	obj_mem_destroy("persist");
	ck_assert_int_eq(obj_open(&b, "mem://persist", NULL), 0);
	ck_assert_int_eq(obj_get(b, "k", 0, OBJ_WHOLE, &buf, &len), -ENOENT);
	obj_close(b);
	obj_mem_destroy("persist");
}
END_TEST

static Suite *obj_mem_suite(void)
{
	Suite *s = obj_conformance_suite("obj_mem", "mem://conformance");
	TCase *tc = tcase_create("mem");
	tcase_add_test(tc, test_obj_mem__named_store_survives_handle);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(obj_mem_suite)
