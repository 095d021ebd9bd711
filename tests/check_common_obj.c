/*
 * check_common_obj.c - the store helpers of tests/check_common.h: mem://
 * stores and their fixture, fault-injecting stores, obj_stats lookups.
 */
#include "tests/check_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "objstore/objstore.h"

struct obj_backend *check_store;
char check_store_url[64];

struct obj_backend *check_mem_open(const char *name)
{
	struct obj_backend *b = NULL;
	char url[128];

	snprintf(url, sizeof(url), "mem://%s", name);
	obj_mem_destroy(name);
	ck_assert_msg(obj_open(&b, url, NULL) == 0, "%s: %s", url, obj_last_error());
	return b;
}

void check_mem_close(struct obj_backend *b, const char *name)
{
	obj_close(b);
	obj_mem_destroy(name);
}

void check_mem_setup(void)
{
	static int seq;

	snprintf(check_store_url, sizeof(check_store_url), "mem://check-%d-%d", (int)getpid(),
		 seq++);
	check_store = check_mem_open(check_store_url + strlen("mem://"));
}

void check_mem_teardown(void)
{
	check_mem_close(check_store, check_store_url + strlen("mem://"));
	check_store = NULL;
	check_store_url[0] = '\0';
}

struct obj_backend *check_fault_open(const char *name, const char *spec)
{
	struct obj_backend *base = NULL, *f = NULL;

	obj_mem_destroy(name);
	ck_assert_msg(obj_mem_create(&base, name) == 0, "mem://%s: %s", name, obj_last_error());

	ck_assert_msg(obj_fault_create(&f, base, spec) == 0, "fault spec %s: %s", spec,
		      obj_last_error());
	return f;
}

struct obj_backend *check_store_open(const char *url, const char *faults)
{
	struct obj_config c = OBJ_CONFIG_INIT;
	struct obj_backend *b = NULL;
	int rc;

	c.faults = faults;
	c.retry.base_ms = 1;
	c.retry.cap_ms = 4;
	rc = obj_open(&b, url, &c);
	ck_assert_msg(rc == 0, "open %s: %d %s", url, rc, obj_last_error());
	return b;
}

uint64_t check_obj_stat(struct obj_backend *b, const char *key)
{
	struct check_stat s = { key, 0, 0 };

	obj_stats(b, check_stat_emit, &s);
	ck_assert_msg(s.seen, "no %s in obj_stats", key);
	return s.value;
}
