/*
 * obj_s3_xml.c - a small XML reader for S3 responses.
 *
 * S3 answers with short, flat documents (ListBucketResult, Error,
 * InitiateMultipartUploadResult, DeleteResult, ...). This reader turns one
 * into a tree of elements and nothing more. It trusts nothing: bytes come
 * from the network, so every malformed construct is an -EINVAL, never an
 * assert, and the work done is linear in the input.
 *
 * WHAT IS ACCEPTED
 *   - an optional UTF-8 byte-order mark, XML declaration, processing
 *     instructions and comments anywhere between elements (skipped);
 *   - exactly one root element; elements nest at most
 *     OBJ_S3_XML_MAX_DEPTH deep; every end tag must match its start tag;
 *   - attributes (name="v" or name='v'), checked for shape and skipped;
 *   - character data with the five predefined entities and numeric
 *     character references (&#10; &#x1F600;), decoded to UTF-8; CDATA
 *     sections;
 *   - element names of the usual name characters; a namespace prefix
 *     ("s3:Key") is dropped, leaving the local name.
 * WHAT IS REFUSED
 *   DOCTYPE declarations (so no entity expansion exists to abuse), other
 *   named entities, a raw '<' or '&' out of place, text outside the root,
 *   NUL bytes, unterminated anything, input over OBJ_S3_XML_MAX_INPUT.
 *
 * STORAGE
 *   Nodes live in one growable array and refer to each other by index;
 *   names and texts live in one growable string arena and are referred to
 *   by offset, and are turned into pointers only when parsing is over (the
 *   arrays may move while they grow). An element's text is the character
 *   data of an element without child elements: when a first child
 *   arrives, text gathered so far is dropped, and later text is ignored.
 */
#include "objstore/obj_s3_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

struct obj_s3_xml_node {
	const char *name;                 /* set when parsing ends */
	const char *text;                 /* set when parsing ends */
	const struct obj_s3_xml_node *child_p, *next_p;   /* set when parsing ends */
	size_t name_off;                  /* offsets into the arena while parsing */
	size_t text_off, text_len;
	int has_child;
	long parent, first_child, last_child, next;   /* indices, -1 = none */
};

struct obj_s3_xml {
	struct obj_s3_xml_node *nodes;
	size_t nnodes, cap;
	struct obj_s3_buf arena;          /* NUL-separated names and texts */
};

/* The parser's cursor. */
struct obj_s3_xml_p {
	const char *s;
	size_t len, pos;
	struct obj_s3_xml *x;
	long cur;                         /* innermost open element, -1 = none */
	int depth;
	int seen_root;
};

static int obj_s3_xml_starts(const struct obj_s3_xml_p *p, const char *lit)
{
	size_t n = strlen(lit);
	return p->len - p->pos >= n && !memcmp(p->s + p->pos, lit, n);
}

/* Advance past the next occurrence of `lit`; -EINVAL when absent. */
static int obj_s3_xml_skip_past(struct obj_s3_xml_p *p, const char *lit)
{
	size_t n = strlen(lit);
	while (p->len - p->pos >= n) {
		if (!memcmp(p->s + p->pos, lit, n)) {
			p->pos += n;
			return 0;
		}
		if (p->s[p->pos] == '\0')
			return -EINVAL;
		p->pos++;
	}
	return -EINVAL;
}

static int obj_s3_xml_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int obj_s3_xml_is_name_start(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' || c >= 0x80;
}

static int obj_s3_xml_is_name_char(unsigned char c)
{
	return obj_s3_xml_is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* Read a name at the cursor into (*start, *n). */
static int obj_s3_xml_read_name(struct obj_s3_xml_p *p, size_t *start, size_t *n)
{
	*start = p->pos;
	if (p->pos >= p->len || !obj_s3_xml_is_name_start((unsigned char)p->s[p->pos]))
		return -EINVAL;
	while (p->pos < p->len && obj_s3_xml_is_name_char((unsigned char)p->s[p->pos]))
		p->pos++;
	*n = p->pos - *start;
	return 0;
}

static void obj_s3_xml_skip_space(struct obj_s3_xml_p *p)
{
	while (p->pos < p->len && obj_s3_xml_is_space(p->s[p->pos]))
		p->pos++;
}

/* Append code point cp as UTF-8. */
static int obj_s3_xml_put_utf8(struct obj_s3_buf *b, unsigned long cp)
{
	char u[4];
	size_t n;

	if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return -EINVAL;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	obj_s3_buf_add(b, u, n);
	return b->err;
}

/* Decode the reference at the cursor ('&' ... ';') into b. */
static int obj_s3_xml_entity(struct obj_s3_xml_p *p, struct obj_s3_buf *b)
{
	static const struct { const char *name; char c; } named[] = {
		{ "lt;", '<' }, { "gt;", '>' }, { "amp;", '&' }, { "quot;", '"' }, { "apos;", '\'' },
	};
	size_t i;

	p->pos++; /* '&' */
	if (p->pos < p->len && p->s[p->pos] == '#') {
		unsigned long cp = 0;
		int hex = 0, digits = 0;
		p->pos++;
		if (p->pos < p->len && p->s[p->pos] == 'x') {
			hex = 1;
			p->pos++;
		}
		for (; p->pos < p->len && p->s[p->pos] != ';'; p->pos++) {
			char c = p->s[p->pos];
			unsigned d;
			if (c >= '0' && c <= '9')
				d = (unsigned)(c - '0');
			else if (hex && c >= 'a' && c <= 'f')
				d = (unsigned)(c - 'a' + 10);
			else if (hex && c >= 'A' && c <= 'F')
				d = (unsigned)(c - 'A' + 10);
			else
				return -EINVAL;
			cp = cp * (hex ? 16 : 10) + d;
			if (cp > 0x10FFFF || ++digits > 8)
				return -EINVAL;
		}
		if (p->pos >= p->len || !digits)
			return -EINVAL;
		p->pos++; /* ';' */
		return obj_s3_xml_put_utf8(b, cp);
	}
	for (i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		if (obj_s3_xml_starts(p, named[i].name)) {
			p->pos += strlen(named[i].name);
			obj_s3_buf_add(b, &named[i].c, 1);
			return b->err;
		}
	}
	return -EINVAL;
}

/* Append raw (already decoded) text to the current element, following the
 * text rule in the header comment. */
static int obj_s3_xml_add_text(struct obj_s3_xml_p *p, const char *t, size_t n)
{
	struct obj_s3_xml_node *cur;

	if (p->cur < 0) {
		for (size_t i = 0; i < n; i++)
			if (!obj_s3_xml_is_space(t[i]))
				return -EINVAL;
		return 0;
	}
	cur = &p->x->nodes[p->cur];
	if (cur->has_child || n == 0)
		return 0;
	/* The current element's text always sits at the arena's tail: nothing
	 * else is appended between its start tag and its first child. */
	if (cur->text_len == 0)
		cur->text_off = p->x->arena.len;
	obj_s3_buf_add(&p->x->arena, t, n);
	if (p->x->arena.err)
		return p->x->arena.err;
	cur->text_len += n;
	return 0;
}

/* Character data up to the next '<'. Decoded pieces go through a small
 * scratch buffer so the arena only ever grows at the current element. */
static int obj_s3_xml_text_run(struct obj_s3_xml_p *p)
{
	struct obj_s3_buf dec = { 0 };
	int rc = 0;

	while (p->pos < p->len && p->s[p->pos] != '<') {
		size_t start = p->pos;
		while (p->pos < p->len && p->s[p->pos] != '<' && p->s[p->pos] != '&') {
			if (p->s[p->pos] == '\0') {
				rc = -EINVAL;
				goto out;
			}
			p->pos++;
		}
		if ((rc = obj_s3_xml_add_text(p, p->s + start, p->pos - start)))
			goto out;
		if (p->pos < p->len && p->s[p->pos] == '&') {
			dec.len = 0;
			if ((rc = obj_s3_xml_entity(p, &dec)))
				goto out;
			if ((rc = obj_s3_xml_add_text(p, dec.p, dec.len)))
				goto out;
		}
	}
out:
	obj_s3_buf_free(&dec);
	return rc;
}

static int obj_s3_xml_new_node(struct obj_s3_xml_p *p, const char *name, size_t n)
{
	struct obj_s3_xml *x = p->x;
	struct obj_s3_xml_node *nd;
	const char *colon;
	long idx;

	if (x->nnodes == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 16;
		struct obj_s3_xml_node *nn = realloc(x->nodes, cap * sizeof(*nn));
		if (!nn)
			return -ENOMEM;
		x->nodes = nn;
		x->cap = cap;
	}
	/* Drop a namespace prefix: keep what follows the last ':'. */
	colon = memrchr(name, ':', n);
	if (colon) {
		n -= (size_t)(colon + 1 - name);
		name = colon + 1;
		if (n == 0)
			return -EINVAL;
	}
	idx = (long)x->nnodes++;
	nd = &x->nodes[idx];
	memset(nd, 0, sizeof(*nd));
	nd->parent = p->cur;
	nd->first_child = nd->last_child = nd->next = -1;
	nd->name_off = x->arena.len;
	obj_s3_buf_add(&x->arena, name, n);
	obj_s3_buf_add(&x->arena, "", 1); /* keep the NUL in the arena */
	if (x->arena.err)
		return x->arena.err;
	if (p->cur >= 0) {
		struct obj_s3_xml_node *par = &x->nodes[p->cur];
		par->has_child = 1;
		par->text_len = 0;
		if (par->last_child >= 0)
			x->nodes[par->last_child].next = idx;
		else
			par->first_child = idx;
		par->last_child = idx;
	}
	p->cur = idx;
	return 0;
}

/* A start tag at the cursor ('<' already consumed). */
static int obj_s3_xml_start_tag(struct obj_s3_xml_p *p)
{
	size_t start, n;
	int rc;

	if (p->cur < 0 && p->seen_root)
		return -EINVAL; /* a second root */
	if ((rc = obj_s3_xml_read_name(p, &start, &n)))
		return rc;
	if (++p->depth > OBJ_S3_XML_MAX_DEPTH)
		return -EINVAL;
	if ((rc = obj_s3_xml_new_node(p, p->s + start, n)))
		return rc;
	p->seen_root = 1;
	for (;;) {
		size_t as, an;
		char q;
		int sp = p->pos < p->len && obj_s3_xml_is_space(p->s[p->pos]);

		obj_s3_xml_skip_space(p);
		if (p->pos >= p->len)
			return -EINVAL;
		if (p->s[p->pos] == '>') {
			p->pos++;
			return 0;
		}
		if (obj_s3_xml_starts(p, "/>")) {
			p->pos += 2;
			p->cur = p->x->nodes[p->cur].parent;
			p->depth--;
			return 0;
		}
		/* An attribute: name = 'value' | "value"; needs a space before. */
		if (!sp || (rc = obj_s3_xml_read_name(p, &as, &an)))
			return -EINVAL;
		obj_s3_xml_skip_space(p);
		if (p->pos >= p->len || p->s[p->pos] != '=')
			return -EINVAL;
		p->pos++;
		obj_s3_xml_skip_space(p);
		if (p->pos >= p->len || (p->s[p->pos] != '"' && p->s[p->pos] != '\''))
			return -EINVAL;
		q = p->s[p->pos++];
		while (p->pos < p->len && p->s[p->pos] != q) {
			if (p->s[p->pos] == '<' || p->s[p->pos] == '\0')
				return -EINVAL;
			p->pos++;
		}
		if (p->pos >= p->len)
			return -EINVAL;
		p->pos++;
	}
}

/* An end tag at the cursor ("</" already consumed). */
static int obj_s3_xml_end_tag(struct obj_s3_xml_p *p)
{
	size_t start, n;
	const char *name, *colon, *open;
	int rc;

	if (p->cur < 0)
		return -EINVAL;
	if ((rc = obj_s3_xml_read_name(p, &start, &n)))
		return rc;
	name = p->s + start;
	colon = memrchr(name, ':', n);
	if (colon) {
		n -= (size_t)(colon + 1 - name);
		name = colon + 1;
	}
	open = p->x->arena.p + p->x->nodes[p->cur].name_off;
	if (strlen(open) != n || memcmp(open, name, n))
		return -EINVAL;
	obj_s3_xml_skip_space(p);
	if (p->pos >= p->len || p->s[p->pos] != '>')
		return -EINVAL;
	p->pos++;
	p->cur = p->x->nodes[p->cur].parent;
	p->depth--;
	return 0;
}

static int obj_s3_xml_run(struct obj_s3_xml_p *p)
{
	int rc;

	if (obj_s3_xml_starts(p, "\xEF\xBB\xBF"))
		p->pos += 3;
	while (p->pos < p->len) {
		if (p->s[p->pos] != '<') {
			if ((rc = obj_s3_xml_text_run(p)))
				return rc;
			continue;
		}
		if (obj_s3_xml_starts(p, "<?")) {
			if ((rc = obj_s3_xml_skip_past(p, "?>")))
				return rc;
		} else if (obj_s3_xml_starts(p, "<!--")) {
			p->pos += 4;
			if ((rc = obj_s3_xml_skip_past(p, "-->")))
				return rc;
		} else if (obj_s3_xml_starts(p, "<![CDATA[")) {
			size_t start;
			if (p->cur < 0)
				return -EINVAL;
			p->pos += 9;
			start = p->pos;
			if ((rc = obj_s3_xml_skip_past(p, "]]>")))
				return rc;
			if ((rc = obj_s3_xml_add_text(p, p->s + start, p->pos - 3 - start)))
				return rc;
		} else if (obj_s3_xml_starts(p, "<!")) {
			return -EINVAL; /* DOCTYPE and friends */
		} else if (obj_s3_xml_starts(p, "</")) {
			p->pos += 2;
			if ((rc = obj_s3_xml_end_tag(p)))
				return rc;
		} else {
			p->pos++;
			if ((rc = obj_s3_xml_start_tag(p)))
				return rc;
		}
	}
	if (p->cur >= 0 || !p->seen_root)
		return -EINVAL;
	return 0;
}

int obj_s3_xml_parse(struct obj_s3_xml **out, const char *data, size_t len)
{
	struct obj_s3_xml_p p = { .s = data, .len = len, .cur = -1 };
	struct obj_s3_xml *x;
	int rc;

	*out = NULL;
	if (len > OBJ_S3_XML_MAX_INPUT || (!data && len))
		return -EINVAL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	p.x = x;
	/* A small document gets its whole arena at once (names and texts, and
	 * the texts' terminated copies and their NULs, fit in three times its size): it never
	 * moves, so obj_s3_xml_free_secret leaves no stale copy behind. */
	if (len <= OBJ_S3_XML_SMALL && (rc = obj_s3_buf_reserve(&x->arena, 3 * len + 64)))
		goto fail;
	if ((rc = obj_s3_xml_run(&p)))
		goto fail;
	/* Terminate texts: each one sits in the arena followed by whatever was
	 * appended next, so copy texts out to the tail with their NULs. */
	for (size_t i = 0; i < x->nnodes; i++) {
		struct obj_s3_xml_node *nd = &x->nodes[i];
		if (nd->has_child || nd->text_len == 0) {
			nd->text_off = SIZE_MAX;
			continue;
		}
		size_t off = x->arena.len;
		if ((rc = obj_s3_buf_reserve(&x->arena, nd->text_len + 1)))
			goto fail;
		obj_s3_buf_add(&x->arena, x->arena.p + nd->text_off, nd->text_len);
		obj_s3_buf_add(&x->arena, "", 1);
		nd->text_off = off;
	}
	if ((rc = x->arena.err))
		goto fail;
	for (size_t i = 0; i < x->nnodes; i++) {
		struct obj_s3_xml_node *nd = &x->nodes[i];
		nd->name = x->arena.p + nd->name_off;
		nd->text = nd->text_off == SIZE_MAX ? "" : x->arena.p + nd->text_off;
		nd->child_p = nd->first_child >= 0 ? &x->nodes[nd->first_child] : NULL;
		nd->next_p = nd->next >= 0 ? &x->nodes[nd->next] : NULL;
	}
	*out = x;
	return 0;
fail:
	obj_s3_xml_free(x);
	return rc == -EOVERFLOW ? -EINVAL : rc;
}

void obj_s3_xml_free(struct obj_s3_xml *x)
{
	if (!x)
		return;
	free(x->nodes);
	obj_s3_buf_free(&x->arena);
	free(x);
}

void obj_s3_xml_free_secret(struct obj_s3_xml *x)
{
	if (x && x->arena.p)
		OPENSSL_cleanse(x->arena.p, x->arena.cap);
	obj_s3_xml_free(x);
}

const struct obj_s3_xml_node *obj_s3_xml_root(const struct obj_s3_xml *x)
{
	return x && x->nnodes ? &x->nodes[0] : NULL;
}

const char *obj_s3_xml_name(const struct obj_s3_xml_node *n)
{
	return n ? n->name : "";
}

const char *obj_s3_xml_text(const struct obj_s3_xml_node *n)
{
	return n ? n->text : "";
}

static const struct obj_s3_xml_node *obj_s3_xml_match(const struct obj_s3_xml_node *n,
						       const char *name)
{
	for (; n; n = n->next_p)
		if (!name || !strcmp(n->name, name))
			return n;
	return NULL;
}

const struct obj_s3_xml_node *obj_s3_xml_child(const struct obj_s3_xml_node *n, const char *name)
{
	return n ? obj_s3_xml_match(n->child_p, name) : NULL;
}

const struct obj_s3_xml_node *obj_s3_xml_next(const struct obj_s3_xml_node *n, const char *name)
{
	return n ? obj_s3_xml_match(n->next_p, name) : NULL;
}

const char *obj_s3_xml_child_text(const struct obj_s3_xml_node *n, const char *name)
{
	const struct obj_s3_xml_node *c = obj_s3_xml_child(n, name);
	return c ? c->text : NULL;
}

void obj_s3_xml_escape(struct obj_s3_buf *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': obj_s3_buf_adds(out, "&lt;"); break;
		case '>': obj_s3_buf_adds(out, "&gt;"); break;
		case '&': obj_s3_buf_adds(out, "&amp;"); break;
		case '"': obj_s3_buf_adds(out, "&quot;"); break;
		case '\'': obj_s3_buf_adds(out, "&apos;"); break;
		default: obj_s3_buf_add(out, s, 1); break;
		}
	}
}
