/*
 * check_obj_s3_xml.c - the S3 XML reader (objstore/obj_s3_xml.c): the
 * documents S3 and RGW really send, entity decoding, and refusal of
 * malformed or hostile input.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objstore/obj_s3_int.h"
#include "tests/check_main.h"

static struct obj_s3_xml *parse_ok(const char *doc)
{
	struct obj_s3_xml *x = NULL;
	ck_assert_int_eq(obj_s3_xml_parse(&x, doc, strlen(doc)), 0);
	ck_assert_ptr_nonnull(x);
	return x;
}

static int parse_rc(const char *doc)
{
	struct obj_s3_xml *x = NULL;
	int rc = obj_s3_xml_parse(&x, doc, strlen(doc));
	obj_s3_xml_free(x);
	return rc;
}

START_TEST(test_obj_s3_xml__list_bucket_result)
{
	const char *doc =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Name>b</Name><Prefix></Prefix><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>"
		"<Contents><Key>a b+c&#x01;\xC3\xA9</Key><Size>4096</Size>"
		"<ETag>&quot;26f9&quot;</ETag></Contents>"
		"<Contents><Key>x&amp;y&lt;z</Key><Size>0</Size></Contents>"
		"</ListBucketResult>";
	struct obj_s3_xml *x = parse_ok(doc);
	const struct obj_s3_xml_node *r = obj_s3_xml_root(x), *c;
	ck_assert_str_eq(obj_s3_xml_name(r), "ListBucketResult");
	ck_assert_str_eq(obj_s3_xml_child_text(r, "IsTruncated"), "true");
	ck_assert_str_eq(obj_s3_xml_child_text(r, "Prefix"), "");
	ck_assert_ptr_null(obj_s3_xml_child_text(r, "Missing"));
	c = obj_s3_xml_child(r, "Contents");
	ck_assert_str_eq(obj_s3_xml_child_text(c, "Key"), "a b+c\x01\xC3\xA9");
	ck_assert_str_eq(obj_s3_xml_child_text(c, "ETag"), "\"26f9\"");
	c = obj_s3_xml_next(c, "Contents");
	ck_assert_str_eq(obj_s3_xml_child_text(c, "Key"), "x&y<z");
	ck_assert_str_eq(obj_s3_xml_child_text(c, "Size"), "0");
	ck_assert_ptr_null(obj_s3_xml_next(c, "Contents"));
	/* A container has no text of its own. */
	ck_assert_str_eq(obj_s3_xml_text(r), "");
	obj_s3_xml_free(x);
}
END_TEST

START_TEST(test_obj_s3_xml__error_document)
{
	const char *doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SignatureDoesNotMatch</Code>"
			  "<Message></Message><RequestId>tx0</RequestId></Error>";
	struct obj_s3_xml *x = parse_ok(doc);
	const struct obj_s3_xml_node *r = obj_s3_xml_root(x);
	ck_assert_str_eq(obj_s3_xml_name(r), "Error");
	ck_assert_str_eq(obj_s3_xml_child_text(r, "Code"), "SignatureDoesNotMatch");
	ck_assert_str_eq(obj_s3_xml_child_text(r, "Message"), "");
	obj_s3_xml_free(x);
}
END_TEST

START_TEST(test_obj_s3_xml__comments_cdata_namespaces_attributes)
{
	const char *doc = "\xEF\xBB\xBF<!-- hi --><s3:R a='1' b = \"x>y\"><?pi x?>"
			  "<s3:K><![CDATA[<raw> & ]]>tail&#65;&#x1F600;</s3:K><E/><F a=\"q\" /></s3:R>\n";
	struct obj_s3_xml *x = parse_ok(doc);
	const struct obj_s3_xml_node *r = obj_s3_xml_root(x);
	ck_assert_str_eq(obj_s3_xml_name(r), "R");
	ck_assert_str_eq(obj_s3_xml_child_text(r, "K"), "<raw> & tailA\xF0\x9F\x98\x80");
	ck_assert_str_eq(obj_s3_xml_child_text(r, "E"), "");
	ck_assert_ptr_nonnull(obj_s3_xml_child(r, "F"));
	obj_s3_xml_free(x);
}
END_TEST

START_TEST(test_obj_s3_xml__mixed_content_keeps_children)
{
	struct obj_s3_xml *x = parse_ok("<a>before<b>in</b>after</a>");
	const struct obj_s3_xml_node *r = obj_s3_xml_root(x);
	ck_assert_str_eq(obj_s3_xml_text(r), "");
	ck_assert_str_eq(obj_s3_xml_child_text(r, "b"), "in");
	obj_s3_xml_free(x);
}
END_TEST

START_TEST(test_obj_s3_xml__malformed_is_einval)
{
	static const char *const bad[] = {
		"", "   ", "text", "<a>", "<a></b>", "<a><b></a></b>", "</a>", "<a/><b/>",
		"<a>x</a>junk", "<a>&bogus;</a>", "<a>&#0;</a>", "<a>&#xD800;</a>", "<a>&#x110000;</a>",
		"<a>&#;</a>", "<a>&amp</a>", "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
		"<a b=c></a>", "<a b=\"c></a>", "<a b=\"<\"></a>", "<a<b></a>", "<1a></1a>",
		"<a><!-- unterminated </a>", "<a><![CDATA[x</a>", "<?xml", "<a>x", "<a:></a:>",
		"<abc", "<a\x01></a>", "<a bc></a>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(parse_rc(bad[i]) == -EINVAL, "accepted: %s", bad[i]);
	/* An embedded NUL. */
	struct obj_s3_xml *x = NULL;
	ck_assert_int_eq(obj_s3_xml_parse(&x, "<a>\0</a>", 8), -EINVAL);
}
END_TEST

START_TEST(test_obj_s3_xml__depth_limit)
{
	char doc[4096];
	size_t o = 0;
	for (int i = 0; i < OBJ_S3_XML_MAX_DEPTH + 1; i++)
		o += (size_t)snprintf(doc + o, sizeof(doc) - o, "<a>");
	for (int i = 0; i < OBJ_S3_XML_MAX_DEPTH + 1; i++)
		o += (size_t)snprintf(doc + o, sizeof(doc) - o, "</a>");
	ck_assert_int_eq(parse_rc(doc), -EINVAL);
	/* Exactly the limit is fine. */
	o = 0;
	for (int i = 0; i < OBJ_S3_XML_MAX_DEPTH; i++)
		o += (size_t)snprintf(doc + o, sizeof(doc) - o, "<a>");
	for (int i = 0; i < OBJ_S3_XML_MAX_DEPTH; i++)
		o += (size_t)snprintf(doc + o, sizeof(doc) - o, "</a>");
	ck_assert_int_eq(parse_rc(doc), 0);
}
END_TEST

START_TEST(test_obj_s3_xml__not_nul_terminated)
{
	/* The parser must stop at len, even when the bytes after it would
	 * complete the document. */
	const char *doc = "<a>xy</a>";
	struct obj_s3_xml *x = NULL;
	ck_assert_int_eq(obj_s3_xml_parse(&x, doc, 8), -EINVAL);
	ck_assert_int_eq(obj_s3_xml_parse(&x, doc, 9), 0);
	ck_assert_str_eq(obj_s3_xml_text(obj_s3_xml_root(x)), "xy");
	obj_s3_xml_free(x);
}
END_TEST

START_TEST(test_obj_s3_xml__many_nodes)
{
	/* A big listing: 20,000 entries, each found in order. */
	struct obj_s3_buf b = { 0 };
	obj_s3_buf_adds(&b, "<L>");
	for (int i = 0; i < 20000; i++)
		obj_s3_buf_addf(&b, "<C><K>k%05d</K></C>", i);
	obj_s3_buf_adds(&b, "</L>");
	struct obj_s3_xml *x = parse_ok(b.p);
	int i = 0;
	for (const struct obj_s3_xml_node *c = obj_s3_xml_child(obj_s3_xml_root(x), "C"); c;
	     c = obj_s3_xml_next(c, "C"), i++) {
		char want[16];
		snprintf(want, sizeof(want), "k%05d", i);
		ck_assert_str_eq(obj_s3_xml_child_text(c, "K"), want);
	}
	ck_assert_int_eq(i, 20000);
	obj_s3_xml_free(x);
	obj_s3_buf_free(&b);
}
END_TEST

START_TEST(test_obj_s3_xml__escape_round_trip)
{
	struct obj_s3_buf b = { 0 };
	obj_s3_buf_adds(&b, "<K>");
	obj_s3_xml_escape(&b, "a<b>&\"c'");
	obj_s3_buf_adds(&b, "</K>");
	struct obj_s3_xml *x = parse_ok(b.p);
	ck_assert_str_eq(obj_s3_xml_text(obj_s3_xml_root(x)), "a<b>&\"c'");
	obj_s3_xml_free(x);
	obj_s3_buf_free(&b);
}
END_TEST

static Suite *obj_s3_xml_suite(void)
{
	Suite *s = suite_create("obj_s3_xml");
	TCase *t = tcase_create("documents");
	tcase_add_test(t, test_obj_s3_xml__list_bucket_result);
	tcase_add_test(t, test_obj_s3_xml__error_document);
	tcase_add_test(t, test_obj_s3_xml__comments_cdata_namespaces_attributes);
	tcase_add_test(t, test_obj_s3_xml__mixed_content_keeps_children);
	tcase_add_test(t, test_obj_s3_xml__many_nodes);
	tcase_add_test(t, test_obj_s3_xml__escape_round_trip);
	suite_add_tcase(s, t);
	t = tcase_create("hostile");
	tcase_add_test(t, test_obj_s3_xml__malformed_is_einval);
	tcase_add_test(t, test_obj_s3_xml__depth_limit);
	tcase_add_test(t, test_obj_s3_xml__not_nul_terminated);
	suite_add_tcase(s, t);
	return s;
}

CHECK_MAIN(obj_s3_xml_suite)
