/*
 * obj_s3_cred_parse.c - reading what the credential sources answer, and
 * the files they are configured in: the JSON of credential_process (AWS's
 * format, "Version": 1), of the ECS agent and of EC2 instance metadata;
 * the XML of STS AssumeRole / AssumeRoleWithWebIdentity (or its
 * ErrorResponse); an s3fs-style credentials file; a profile's credential
 * keys in the shared credentials and config files.
 *
 * Pure functions of bytes and files: no network, no process, no global
 * state. Every answer may hold secrets: the values taken from it go into
 * a struct obj_s3_creds (wiped when freed), the scratch buffers are wiped
 * here, and messages never quote a value (an error answer's Code and
 * Message are kept, sanitised to printable ASCII).
 */
#include "objstore/obj_s3_int.h"
#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

static void obj_s3_src_wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* Copy src into dst[0..n) keeping printable ASCII only (server text). */
static void obj_s3_src_sanitize(char *dst, size_t n, const char *src)
{
	size_t o = 0;
	for (; src && *src && o + 1 < n; src++)
		dst[o++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
	if (n)
		dst[o] = '\0';
}

/* Build creds from the fields of an answer; `what` names it in messages. */
static int obj_s3_src_make(struct obj_s3_creds **out, const char *ak, const char *sk, const char *tok,
			   const char *expiration, const char *what, char *err, size_t errlen)
{
	int64_t exp = 0;
	int rc;

	if (!ak || !*ak || !sk || !*sk) {
		obj_s3_errf(err, errlen, "%s: the answer lacks AccessKeyId or SecretAccessKey", what);
		return -EACCES;
	}
	if (expiration && *expiration && obj_s3_time_parse(expiration, &exp)) {
		char e[40];
		obj_s3_src_sanitize(e, sizeof(e), expiration);
		obj_s3_errf(err, errlen, "%s: malformed Expiration '%s' (expected ISO 8601)", what, e);
		return -EACCES;
	}
	rc = obj_s3_creds_new(out, ak, sk, tok, exp);
	if (rc)
		obj_s3_errf(err, errlen, "out of memory");
	return rc;
}

static void obj_s3_src_vals_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		obj_s3_src_wipe_free(v[i]);
}

int obj_s3_cred_parse_process(const char *data, size_t len, struct obj_s3_creds **out, char *err,
			      size_t errlen)
{
	static const char *const keys[] = { "Version", "AccessKeyId", "SecretAccessKey", "SessionToken",
					    "Expiration" };
	char *v[5];
	int rc;

	*out = NULL;
	rc = obj_s3_json_strings(data, len, keys, 5, v);
	if (rc) {
		obj_s3_errf(err, errlen, rc == -ENOMEM ? "out of memory"
					     : "credential_process: output is not a JSON object");
		return rc == -ENOMEM ? rc : -EACCES;
	}
	if (!v[0] || strcmp(v[0], "1")) {
		obj_s3_errf(err, errlen, "credential_process: output has no \"Version\": 1");
		rc = -EACCES;
	} else {
		rc = obj_s3_src_make(out, v[1], v[2], v[3], v[4], "credential_process", err, errlen);
	}
	obj_s3_src_vals_free(v, 5);
	return rc;
}

int obj_s3_cred_parse_container(const char *data, size_t len, struct obj_s3_creds **out,
				const char *what, char *err, size_t errlen)
{
	static const char *const keys[] = { "Code", "AccessKeyId", "SecretAccessKey", "Token",
					    "Expiration", "Message" };
	char *v[6];
	int rc;

	*out = NULL;
	rc = obj_s3_json_strings(data, len, keys, 6, v);
	if (rc) {
		obj_s3_errf(err, errlen, rc == -ENOMEM ? "out of memory" : "%s: answer is not a JSON object",
				what);
		return rc == -ENOMEM ? rc : -EACCES;
	}
	if (v[0] && strcmp(v[0], "Success")) {
		char c[64], m[160];
		obj_s3_src_sanitize(c, sizeof(c), v[0]);
		obj_s3_src_sanitize(m, sizeof(m), v[5]);
		obj_s3_errf(err, errlen, "%s: %s%s%s", what, c, m[0] ? ": " : "", m);
		rc = -EACCES;
	} else {
		rc = obj_s3_src_make(out, v[1], v[2], v[3], v[4], what, err, errlen);
	}
	obj_s3_src_vals_free(v, 6);
	return rc;
}

int obj_s3_cred_parse_sts(const char *data, size_t len, struct obj_s3_creds **out, char *err,
			  size_t errlen)
{
	struct obj_s3_xml *x = NULL;
	const struct obj_s3_xml_node *root, *res, *cr;
	int rc;

	*out = NULL;
	if ((rc = obj_s3_xml_parse(&x, data, len))) {
		obj_s3_errf(err, errlen, rc == -ENOMEM ? "out of memory" : "STS: malformed XML answer");
		return rc == -ENOMEM ? rc : -EACCES;
	}
	root = obj_s3_xml_root(x);
	if (!strcmp(obj_s3_xml_name(root), "ErrorResponse") || !strcmp(obj_s3_xml_name(root), "Error")) {
		const struct obj_s3_xml_node *e = obj_s3_xml_child(root, "Error");
		char c[64], m[200];
		if (!e)
			e = root;
		obj_s3_src_sanitize(c, sizeof(c), obj_s3_xml_child_text(e, "Code"));
		obj_s3_src_sanitize(m, sizeof(m), obj_s3_xml_child_text(e, "Message"));
		obj_s3_errf(err, errlen, "STS: %s%s%s", c[0] ? c : "error", m[0] ? ": " : "", m);
		rc = -EACCES;
		goto out;
	}
	/* <AssumeRole[WithWebIdentity]Response><...Result><Credentials> */
	res = obj_s3_xml_child(root, NULL);
	while (res && strcmp(obj_s3_xml_name(res), "AssumeRoleResult") &&
	       strcmp(obj_s3_xml_name(res), "AssumeRoleWithWebIdentityResult"))
		res = obj_s3_xml_next(res, NULL);
	cr = obj_s3_xml_child(res, "Credentials");
	if (!cr) {
		obj_s3_errf(err, errlen, "STS: the answer has no Credentials");
		rc = -EACCES;
		goto out;
	}
	rc = obj_s3_src_make(out, obj_s3_xml_child_text(cr, "AccessKeyId"),
			     obj_s3_xml_child_text(cr, "SecretAccessKey"),
			     obj_s3_xml_child_text(cr, "SessionToken"),
			     obj_s3_xml_child_text(cr, "Expiration"), "STS", err, errlen);
out:
	obj_s3_xml_free_secret(x); /* its text holds the secret */
	return rc;
}

int obj_s3_cred_parse_read_fd(int fd, const char *what, const char *path, char **out,
			      size_t *len, char *err, size_t errlen)
{
	char *buf;
	size_t n = 0;
	ssize_t r;

	*out = NULL;
	*len = 0;
	buf = malloc(OBJ_S3_SECRET_FILE_MAX + 1);
	if (!buf) {
		obj_s3_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	while (n < OBJ_S3_SECRET_FILE_MAX && (r = read(fd, buf + n, OBJ_S3_SECRET_FILE_MAX - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			obj_s3_errf(err, errlen, "%s %s: %s", what, path, util_strerror(-errno));
			OPENSSL_cleanse(buf, OBJ_S3_SECRET_FILE_MAX + 1);
			free(buf);
			return -EACCES;
		}
		n += (size_t)r;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

int obj_s3_cred_parse_passwd(const char *path, const char *bucket, struct obj_s3_creds **out,
			     char *err, size_t errlen)
{
	struct stat st;
	char *data = NULL, *line, *save = NULL, *any_k = NULL, *any_s = NULL;
	char *b_k = NULL, *b_s = NULL;
	size_t n = 0;
	int fd, rc = 0, lineno = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		obj_s3_errf(err, errlen, "credentials file %s: %s", path, util_strerror(-errno));
		return -EACCES;
	}
	if (fstat(fd, &st)) {
		rc = -errno;
		obj_s3_errf(err, errlen, "credentials file %s: %s", path, util_strerror(rc));
		close(fd);
		return -EACCES;
	}
	if (!S_ISREG(st.st_mode)) {
		obj_s3_errf(err, errlen, "credentials file %s is not a regular file", path);
		close(fd);
		return -EACCES;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		obj_s3_errf(err, errlen,
				"credentials file %s is accessible by group or others (mode %04o): "
				"refused; chmod 600 %s", path, (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return -EACCES;
	}
	rc = obj_s3_cred_parse_read_fd(fd, "credentials file", path, &data, &n, err, errlen);
	if (rc) {
		close(fd);
		return rc;
	}
	for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[3], *e;
		int nf = 0;

		lineno++;
		while (*line == ' ' || *line == '\t')
			line++;
		e = line + strlen(line);
		while (e > line && isspace((unsigned char)e[-1]))
			*--e = '\0';
		if (!*line || *line == '#')
			continue;
		f[nf++] = line;
		for (char *p = line; *p && nf <= 3; p++) {
			if (*p == ':') {
				*p = '\0';
				if (nf == 3) {
					nf = 4;
					break;
				}
				f[nf++] = p + 1;
			}
		}
		if (nf < 2 || nf > 3 || !*f[nf - 2] || !*f[nf - 1]) {
			obj_s3_errf(err, errlen,
					"credentials file %s line %d: expected ACCESS_KEY_ID:SECRET_ACCESS_KEY "
					"or BUCKET:ACCESS_KEY_ID:SECRET_ACCESS_KEY", path, lineno);
			rc = -EACCES;
			goto out;
		}
		if (nf == 3) {
			if (!b_k && bucket && !strcmp(f[0], bucket)) {
				b_k = f[1];
				b_s = f[2];
			}
		} else if (!any_k) {
			any_k = f[0];
			any_s = f[1];
		}
	}
	if (b_k) {
		any_k = b_k;
		any_s = b_s;
	}
	if (!any_k) {
		obj_s3_errf(err, errlen, "credentials file %s holds no key for bucket '%s'", path,
				bucket ? bucket : "");
		rc = -EACCES;
		goto out;
	}
	if ((rc = obj_s3_creds_new(out, any_k, any_s, NULL, 0)))
		obj_s3_errf(err, errlen, "out of memory");
out:
	OPENSSL_cleanse(data, OBJ_S3_SECRET_FILE_MAX + 1);
	free(data);
	close(fd);
	return rc;
}

/* ---- the profile ------------------------------------------------------------------ */

static const char *const obj_s3_profile_keys[OBJ_S3_PROFILE__N] = {
	"aws_access_key_id", "aws_secret_access_key", "aws_session_token", "role_arn",
	"source_profile", "credential_source", "credential_process", "web_identity_token_file",
	"role_session_name", "external_id", "duration_seconds",
};

void obj_s3_profile_clear(struct obj_s3_profile *p)
{
	for (int i = 0; i < OBJ_S3_PROFILE__N; i++)
		obj_s3_src_wipe_free(p->v[i]);
	memset(p, 0, sizeof(*p));
}

int obj_s3_profile_load(struct obj_s3_profile *p, const char *cred_file, const char *config_file,
			const char *name)
{
	char *section;
	size_t n = strlen(name) + 9;
	int rc = 0;

	memset(p, 0, sizeof(*p));
	section = malloc(n);
	if (!section)
		return -ENOMEM;
	if (strcmp(name, "default"))
		snprintf(section, n, "profile %s", name);
	else
		snprintf(section, n, "default");
	/* The credentials file wins key by key; then the config file. */
	for (int i = 0; i < OBJ_S3_PROFILE__N && !rc; i++) {
		rc = obj_s3_ini_get(cred_file, name, obj_s3_profile_keys[i], &p->v[i]);
		if (!rc && !p->v[i])
			rc = obj_s3_ini_get(config_file, section, obj_s3_profile_keys[i], &p->v[i]);
		if (!rc && p->v[i] && !*p->v[i]) {
			free(p->v[i]);
			p->v[i] = NULL;
		}
	}
	free(section);
	if (rc)
		obj_s3_profile_clear(p);
	return rc;
}

