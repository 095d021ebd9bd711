/*
 * obj_s3_conf.c - where the S3 backend's endpoint, region, addressing
 * style and profile come from. (Credentials: obj_s3_cred_src.c, which
 * reads the same files through obj_s3_ini_get.)
 *
 * RESOLUTION ORDER (first found wins, per setting)
 *   profile      conf->profile, AWS_PROFILE, "default"
 *   files        AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials),
 *                AWS_CONFIG_FILE (default ~/.aws/config)
 *   region       conf->region, AWS_REGION, AWS_DEFAULT_REGION, config file
 *                `region`, "us-east-1"
 *   endpoint     conf->endpoint, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL,
 *                config file `s3 = / endpoint_url` then `endpoint_url`,
 *                else https://s3.REGION.amazonaws.com
 *   path style   conf->path_style when 0 or 1; else config file
 *                `s3 = / addressing_style` (path|virtual); else automatic:
 *                path-style when the endpoint is explicit and its host is an
 *                IP literal or localhost, or when the bucket name cannot be
 *                a DNS label; virtual-hosted otherwise
 *   TLS          certificate verification on unless conf->insecure_tls;
 *                AWS_CA_BUNDLE names a CA file to use instead of the system's
 *
 * THE AWS FILES
 *   INI-style: "[section]" lines, "key = value" lines, comments starting
 *   with '#' or ';'. The config file names profiles "[profile NAME]" (and
 *   "[default]"); the credentials file names them "[NAME]". A key with an
 *   empty value ("s3 =") opens a nested block whose indented lines belong
 *   to it; they are looked up here as "s3.KEY". Files larger than 1 MiB
 *   are refused.
 *
 * Nothing here logs, and no message built here contains a secret: errors
 * name the file or variable, never the value.
 */
#include "objstore/obj_s3_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define OBJ_S3_INI_MAX (1u << 20)

static int obj_s3_strdup(char **out, const char *s)
{
	*out = NULL;
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static const char *obj_s3_env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* ---- INI files ------------------------------------------------------------ */

/* obj_s3_ini_get: see obj_s3_int.h. */
int obj_s3_ini_get(const char *path, const char *section, const char *key, char **out)
{
	FILE *f = NULL;
	char *data = NULL;
	size_t n = 0;
	char *line, *save = NULL;
	int in_section = 0, rc = 0;
	char nested[64] = "";

	*out = NULL;
	if (!path)
		return 0;
	f = fopen(path, "re");
	if (!f)
		return 0; /* a missing file simply holds nothing */
	data = malloc(OBJ_S3_INI_MAX + 1);
	if (!data) {
		rc = -ENOMEM;
		goto out;
	}
	n = fread(data, 1, OBJ_S3_INI_MAX + 1, f);
	if (ferror(f) || n > OBJ_S3_INI_MAX) {
		rc = -EINVAL;
		goto out;
	}
	data[n] = '\0';

	for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int indented = line[0] == ' ' || line[0] == '\t';
		char *s = line, *e, *eq, *k, *v;

		while (*s == ' ' || *s == '\t')
			s++;
		e = s + strlen(s);
		while (e > s && isspace((unsigned char)e[-1]))
			*--e = '\0';
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');
			if (!close)
				continue;
			*close = '\0';
			s++;
			while (*s == ' ' || *s == '\t')
				s++;
			e = s + strlen(s);
			while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
				*--e = '\0';
			in_section = !strcmp(s, section);
			nested[0] = '\0';
			continue;
		}
		if (!in_section)
			continue;
		eq = strchr(s, '=');
		if (!eq)
			continue;
		*eq = '\0';
		k = s;
		e = eq;
		while (e > k && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		v = eq + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		if (!indented)
			nested[0] = '\0';
		if (!*v && !indented) {
			snprintf(nested, sizeof(nested), "%s", k);
			continue;
		}
		if (indented && nested[0]) {
			char full[160];
			snprintf(full, sizeof(full), "%s.%s", nested, k);
			if (strcmp(full, key))
				continue;
		} else if (strcmp(k, key)) {
			continue;
		}
		if (*out) /* a repeated key: the last wins; the value may be a secret */
			OPENSSL_cleanse(*out, strlen(*out));
		free(*out);
		if ((rc = obj_s3_strdup(out, v)))
			goto out;
	}
out:
	if (data) {
		OPENSSL_cleanse(data, n < OBJ_S3_INI_MAX ? n : OBJ_S3_INI_MAX);
		free(data);
	}
	if (f)
		fclose(f);
	if (rc) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

static int obj_s3_home_path(char **out, const char *env, const char *rel)
{
	const char *home, *v = obj_s3_env(env);
	struct passwd pw, *res = NULL;
	char pwbuf[1024];
	size_t n;

	*out = NULL;
	if (v)
		return obj_s3_strdup(out, v);
	home = obj_s3_env("HOME");
	if (!home && getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res)
		home = res->pw_dir;
	if (!home)
		return 0;
	n = strlen(home) + strlen(rel) + 2;
	*out = malloc(n);
	if (!*out)
		return -ENOMEM;
	snprintf(*out, n, "%s/%s", home, rel);
	return 0;
}

/* ---- endpoints ------------------------------------------------------------ */

int obj_s3_host_is_local_or_ip(const char *host)
{
	unsigned char a[16];
	size_t n = strlen(host);

	if (!strcasecmp(host, "localhost"))
		return 1;
	if (n > 10 && !strcasecmp(host + n - 10, ".localhost"))
		return 1;
	if (inet_pton(AF_INET, host, a) == 1)
		return 1;
	return host[0] == '[';
}

/*
 * A loopback host: 127.0.0.0/8, [::1] or the name localhost. Traffic to it
 * never leaves the kernel, so no one on a network path can alter a body
 * sent to it; whoever could alter it on this host can read the credentials
 * too. That is why plain http to a loopback endpoint skips payload hashing
 * as https does (obj_s3_settings_resolve). Names other than localhost
 * (even *.localhost) are not trusted to resolve to loopback.
 */
int obj_s3_host_is_loopback(const char *host)
{
	unsigned char a[4];

	if (!strcasecmp(host, "localhost"))
		return 1;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	return !strcmp(host, "[::1]");
}

int obj_s3_endpoint_parse(const char *url, char **scheme, char **host, unsigned *port,
			  char *err, size_t errlen)
{
	const char *p, *h, *he;
	size_t slen;
	unsigned long pn = 0;

	*scheme = *host = NULL;
	*port = 0;
	if (!url || !*url) {
		obj_s3_errf(err, errlen, "S3 endpoint URL is empty");
		return -EINVAL;
	}
	if (strchr(url, '@')) {
		/* Do not echo it: userinfo may be a password. */
		obj_s3_errf(err, errlen, "S3 endpoint URL must not contain credentials (user@host)");
		return -EINVAL;
	}
	if (!strncasecmp(url, "http://", 7))
		slen = 4;
	else if (!strncasecmp(url, "https://", 8))
		slen = 5;
	else {
		obj_s3_errf(err, errlen,
			    "malformed S3 endpoint URL '%.200s': expected http://HOST[:PORT] or https://HOST[:PORT]",
			    url);
		return -EINVAL;
	}
	h = url + slen + 3;
	if (*h == '[') {
		he = strchr(h, ']');
		if (!he || he == h + 1)
			goto bad;
		for (p = h + 1; p < he; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				goto bad;
		he++;
	} else {
		for (he = h; *he && *he != ':' && *he != '/'; he++)
			if (!isalnum((unsigned char)*he) && *he != '.' && *he != '-' && *he != '_')
				goto bad;
		if (he == h || *h == '.' || *h == '-')
			goto bad;
	}
	p = he;
	if (*p == ':') {
		char *end;
		p++;
		if (!isdigit((unsigned char)*p))
			goto bad;
		pn = strtoul(p, &end, 10);
		if (pn == 0 || pn > 65535)
			goto bad;
		p = end;
	}
	if (*p == '/')
		p++;
	if (*p)
		goto bad; /* a path, query or fragment */

	*scheme = strndup(url, slen);
	*host = strndup(h, (size_t)(he - h));
	if (!*scheme || !*host) {
		free(*scheme);
		free(*host);
		*scheme = *host = NULL;
		return -ENOMEM;
	}
	for (char *c = *scheme; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	for (char *c = *host; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	*port = (unsigned)pn;
	return 0;
bad:
	obj_s3_errf(err, errlen,
		    "malformed S3 endpoint URL '%.200s': expected http[s]://HOST[:PORT] with no path",
		    url);
	return -EINVAL;
}

/* A bucket name usable as a DNS label in a virtual-hosted URL. */
static int obj_s3_bucket_dns_ok(const char *bucket, int https)
{
	size_t n = strlen(bucket);
	if (n < 3 || n > 63)
		return 0;
	for (const char *c = bucket; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-')
			continue;
		if (*c == '.' && !https)
			continue; /* dots break wildcard certificates */
		return 0;
	}
	return bucket[0] != '-' && bucket[n - 1] != '-';
}

/* ---- resolution ----------------------------------------------------------- */

void obj_s3_settings_clear(struct obj_s3_settings *s)
{
	free(s->profile);
	free(s->cred_file);
	free(s->config_file);
	free(s->region);
	free(s->scheme);
	free(s->host);
	free(s->ca_bundle);
	memset(s, 0, sizeof(*s));
}

int obj_s3_settings_resolve(struct obj_s3_settings *out, const struct obj_s3_config *conf,
			    const char *bucket, char *err, size_t errlen)
{
	static const struct obj_s3_config empty = { .path_style = -1 };
	char *cfg_section = NULL;
	char *endpoint = NULL, *style = NULL;
	const char *profile, *v;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!conf)
		conf = &empty;
	if (err && errlen)
		err[0] = '\0';

	profile = conf->profile && *conf->profile ? conf->profile : obj_s3_env("AWS_PROFILE");
	if (!profile)
		profile = "default";
	if ((rc = obj_s3_strdup(&out->profile, profile)) ||
	    (rc = obj_s3_home_path(&out->cred_file, "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials")) ||
	    (rc = obj_s3_home_path(&out->config_file, "AWS_CONFIG_FILE", ".aws/config")))
		goto fail;
	{
		size_t n = strlen(profile) + 9;
		cfg_section = malloc(n);
		if (!cfg_section) {
			rc = -ENOMEM;
			goto fail;
		}
		if (strcmp(profile, "default"))
			snprintf(cfg_section, n, "profile %s", profile);
		else
			snprintf(cfg_section, n, "default");
	}

	/* Region. */
	v = conf->region && *conf->region ? conf->region : obj_s3_env("AWS_REGION");
	if (!v)
		v = obj_s3_env("AWS_DEFAULT_REGION");
	if (v) {
		if ((rc = obj_s3_strdup(&out->region, v)))
			goto fail;
	} else if ((rc = obj_s3_ini_get(out->config_file, cfg_section, "region", &out->region))) {
		goto fail_file;
	}
	if (!out->region && (rc = obj_s3_strdup(&out->region, OBJ_S3_DFLT_REGION)))
		goto fail;
	for (const char *c = out->region; *c; c++) {
		if (!isalnum((unsigned char)*c) && *c != '-') {
			obj_s3_errf(err, errlen, "invalid S3 region '%.64s'", out->region);
			rc = -EINVAL;
			goto fail;
		}
	}

	/* Endpoint. */
	v = conf->endpoint && *conf->endpoint ? conf->endpoint : obj_s3_env("AWS_ENDPOINT_URL_S3");
	if (!v)
		v = obj_s3_env("AWS_ENDPOINT_URL");
	if (v) {
		if ((rc = obj_s3_strdup(&endpoint, v)))
			goto fail;
	} else {
		if ((rc = obj_s3_ini_get(out->config_file, cfg_section, "s3.endpoint_url", &endpoint)))
			goto fail_file;
		if (!endpoint && (rc = obj_s3_ini_get(out->config_file, cfg_section, "endpoint_url", &endpoint)))
			goto fail_file;
	}
	if (endpoint) {
		out->explicit_endpoint = 1;
		if ((rc = obj_s3_endpoint_parse(endpoint, &out->scheme, &out->host, &out->port, err,
						errlen)))
			goto fail;
	} else {
		size_t n = strlen(out->region) + 32;
		rc = -ENOMEM;
		if (!(out->scheme = strdup("https")) || !(out->host = malloc(n)))
			goto fail;
		snprintf(out->host, n, "s3.%s.amazonaws.com", out->region);
	}

	/* Addressing style. */
	if (conf->path_style == 0 || conf->path_style == 1) {
		out->path_style = conf->path_style;
	} else {
		if ((rc = obj_s3_ini_get(out->config_file, cfg_section, "s3.addressing_style", &style)))
			goto fail_file;
		if (style && !strcmp(style, "path"))
			out->path_style = 1;
		else if (style && !strcmp(style, "virtual"))
			out->path_style = 0;
		else
			out->path_style = (out->explicit_endpoint && obj_s3_host_is_local_or_ip(out->host));
	}
	if (!out->path_style && !obj_s3_bucket_dns_ok(bucket, !strcmp(out->scheme, "https")))
		out->path_style = 1;

	/* TLS, timeouts, sizes. */
	out->insecure_tls = conf->insecure_tls ? 1 : 0;
	out->unsigned_payload = conf->unsigned_payload > 0 ||
				(conf->unsigned_payload == 0 && (!strcmp(out->scheme, "https") ||
								  obj_s3_host_is_loopback(out->host)));
	if ((rc = obj_s3_strdup(&out->ca_bundle, obj_s3_env("AWS_CA_BUNDLE"))))
		goto fail;
	out->connect_timeout_ms = conf->connect_timeout_ms ? conf->connect_timeout_ms : OBJ_S3_DFLT_CONNECT_TIMEOUT_MS;
	out->request_timeout_ms = conf->request_timeout_ms ? conf->request_timeout_ms : OBJ_S3_DFLT_REQUEST_TIMEOUT_MS;
	out->multipart_threshold = conf->multipart_threshold ? conf->multipart_threshold : OBJ_S3_DFLT_MULTIPART_THRESHOLD;
	out->part_size = conf->part_size ? conf->part_size : OBJ_S3_DFLT_PART_SIZE;
	if (out->part_size < OBJ_S3_MIN_PART_SIZE)
		out->part_size = OBJ_S3_MIN_PART_SIZE; /* S3 refuses smaller non-last parts */
	if (out->part_size > OBJ_S3_MAX_PART_SIZE)
		out->part_size = OBJ_S3_MAX_PART_SIZE;
	if (out->multipart_threshold < out->part_size)
		out->multipart_threshold = out->part_size;
	if (out->multipart_threshold > OBJ_S3_MAX_SINGLE_PUT)
		out->multipart_threshold = OBJ_S3_MAX_SINGLE_PUT; /* S3's single-PUT limit */
	out->max_connections = conf->max_connections ? conf->max_connections : OBJ_S3_DFLT_MAX_CONNECTIONS;
	rc = 0;
	goto out;

fail_file:
	if (rc == -EINVAL)
		obj_s3_errf(err, errlen, "cannot read AWS configuration file (too large or unreadable)");
fail:
	obj_s3_settings_clear(out);
out:
	free(cfg_section);
	free(endpoint);
	free(style);
	return rc;
}
