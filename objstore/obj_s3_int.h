/*
 * obj_s3_int.h - internals of the S3 backend, shared by its files and its
 * unit tests, never included from outside objstore/ and tests/objstore/.
 *
 * Sections follow the defining files:
 *   obj_s3_sign.c   growable text buffers, hashes, URI encoding, SigV4
 *   obj_s3_xml.c    a small, strict XML reader for S3 responses
 *   obj_s3_conf.c   endpoint, region, profile and option resolution
 *   obj_s3_json.c   a tiny JSON reader for credential answers
 *   obj_s3_cred.c   the current credentials, snapshots and their refresh
 *   obj_s3_cred_src.c  the credential chain: sources, fetching, order
 *   obj_s3_cred_parse.c  the sources' answers and files
 *   obj_s3_cred_io.c   HTTP exchanges and credential_process for sources
 *   obj_s3.c        the backend (see objstore.h for the public contract)
 */
#ifndef SHALE_OBJ_S3_INT_H
#define SHALE_OBJ_S3_INT_H

#include <stddef.h>
#include <stdint.h>

#include <pthread.h>
#include <stdatomic.h>

#include <curl/curl.h>

#include "objstore/objstore.h"

/* ======================================================================
 * Functions from file obj_s3_sign.c
 * ====================================================================== */

/*
 * A growable NUL-terminated byte buffer with a sticky error: after the
 * first failed append (-ENOMEM, -EOVERFLOW) every later append is a no-op
 * and obj_s3_buf_err() reports it, so a builder can append freely and
 * check once at the end. An all-zero struct is an empty buffer.
 */
struct obj_s3_buf {
	char *p;                          /* NULL until the first append */
	size_t len;                       /* bytes used, excluding the NUL */
	size_t cap;                       /* bytes allocated */
	int err;                          /* 0 or the first -errno */
};
int obj_s3_buf_reserve(struct obj_s3_buf *b, size_t extra);
void obj_s3_buf_add(struct obj_s3_buf *b, const void *data, size_t len);
void obj_s3_buf_adds(struct obj_s3_buf *b, const char *s);
void obj_s3_buf_addf(struct obj_s3_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline int obj_s3_buf_err(const struct obj_s3_buf *b) { return b->err; }
/* Take ownership of the text (never NULL on success: "" for an empty
 * buffer); the buffer is left empty. Returns NULL on a sticky error. */
char *obj_s3_buf_take(struct obj_s3_buf *b);
void obj_s3_buf_free(struct obj_s3_buf *b);

/* Format a message into err[errlen] (an error out-parameter of the S3
 * configuration and credential code); a NULL or empty err is left alone. */
void obj_s3_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define OBJ_S3_SHA256_HEX_LEN 64
/* SHA-256 of the empty string, the payload hash of bodiless requests. */
#define OBJ_S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* Bodies of this size and up go UNSIGNED-PAYLOAD over https (obj_s3.c). */
#define OBJ_S3_UNSIGNED_MIN ((size_t)64 << 10)

/* Lower-case hex SHA-256 of data into out[65]. Returns 0 or -ENOMEM/-EIO. */
int obj_s3_sha256_hex(const void *data, size_t len, char out[OBJ_S3_SHA256_HEX_LEN + 1]);
/* Base64 MD5 of data into out[25] (the Content-MD5 header). */
int obj_s3_md5_base64(const void *data, size_t len, char out[25]);

/*
 * Percent-encode s[0..len) the way SigV4 wants: the unreserved set
 * A-Z a-z 0-9 - . _ ~ stays, every other byte becomes %XX (upper-case
 * hex), and '/' stays when keep_slash. Appends to out.
 */
void obj_s3_uri_encode(struct obj_s3_buf *out, const char *s, size_t len, int keep_slash);

/* One request header and one query parameter as given by the caller,
 * neither encoded nor canonicalised. A query value of NULL is a bare key
 * ("?uploads"), signed as "uploads=". */
struct obj_s3_header {
	const char *name;
	const char *value;
};
struct obj_s3_query {
	const char *key;
	const char *value;
};

/*
 * What SigV4 signs. `path` is the canonical URI, already encoded (S3 paths
 * are encoded once, segment by segment, keeping '/': obj_s3_uri_encode
 * with keep_slash). `headers` must include host and x-amz-date; every
 * header given is signed. Names may be in any case and order; values are
 * trimmed and runs of spaces collapsed as the algorithm requires.
 */
struct obj_s3_sign_input {
	const char *method;               /* "GET", "PUT", ... */
	const char *path;                 /* canonical URI, encoded */
	const struct obj_s3_query *query;
	size_t nquery;
	const struct obj_s3_header *headers;
	size_t nheaders;
	const char *payload_hash;         /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
	const char *amz_date;             /* "20150830T123600Z", same as the x-amz-date header */
	const char *region;
	const char *service;              /* "s3" */
	const char *access_key;
	const char *secret_key;
};

/*
 * obj_s3_sign - compute the SigV4 Authorization header value.
 * On success *authorization is a malloc'd string owned by the caller;
 * *query_out (when query_out is not NULL) is the canonical query string,
 * which is also a correct URL query; *canonical_out (when not NULL) is
 * the canonical request (tests and SHALE_S3_DEBUG_SIGNING builds only:
 * it holds no secret, but the caller must still not log the result of
 * this function). Returns 0, -ENOMEM, -EINVAL (missing host/date header).
 * Thread-safe.
 */
int obj_s3_sign(const struct obj_s3_sign_input *in, char **authorization, char **query_out,
		char **canonical_out);

/* ======================================================================
 * Functions from file obj_s3_xml.c
 * ====================================================================== */

/*
 * A parsed XML document: a tree of elements, each with a local name
 * (namespace prefix removed) and, for elements without child elements,
 * their decoded character data. Attributes, comments, processing
 * instructions and the XML declaration are skipped; DOCTYPE is refused.
 * Mixed content (text beside child elements) keeps only the children.
 */
struct obj_s3_xml;
struct obj_s3_xml_node;

/* Limits that make hostile input cheap to refuse. */
#define OBJ_S3_XML_MAX_DEPTH 64
#define OBJ_S3_XML_MAX_INPUT (64u << 20)

/*
 * obj_s3_xml_parse - parse data[0..len) (need not be NUL-terminated).
 * On success *out is the caller's (obj_s3_xml_free). Returns 0, -EINVAL
 * (malformed, too deep, too large), -ENOMEM. Never reads outside the
 * input. Thread-safe.
 */
int obj_s3_xml_parse(struct obj_s3_xml **out, const char *data, size_t len);
void obj_s3_xml_free(struct obj_s3_xml *x);
/* Free a tree that holds secrets (an STS answer), wiping its text first.
 * Documents up to OBJ_S3_XML_SMALL bytes are parsed without moving their
 * text, so nothing of them is left behind. */
#define OBJ_S3_XML_SMALL (64u << 10)
void obj_s3_xml_free_secret(struct obj_s3_xml *x);

/* Navigation. Returned pointers are borrowed until obj_s3_xml_free. A
 * NULL node argument yields NULL, so lookups chain without checks. */
const struct obj_s3_xml_node *obj_s3_xml_root(const struct obj_s3_xml *x);
const char *obj_s3_xml_name(const struct obj_s3_xml_node *n);
/* Text of n ("" when it has none or has children). */
const char *obj_s3_xml_text(const struct obj_s3_xml_node *n);
/* First child named `name` (NULL name: any). */
const struct obj_s3_xml_node *obj_s3_xml_child(const struct obj_s3_xml_node *n, const char *name);
/* Next sibling after n named `name` (NULL name: any). */
const struct obj_s3_xml_node *obj_s3_xml_next(const struct obj_s3_xml_node *n, const char *name);
/* Text of the first child named `name`, or NULL when there is none. */
const char *obj_s3_xml_child_text(const struct obj_s3_xml_node *n, const char *name);

/* Append s with the five XML special characters escaped. */
void obj_s3_xml_escape(struct obj_s3_buf *out, const char *s);

/* ======================================================================
 * Functions from file obj_s3_conf.c
 * ====================================================================== */

/* Named defaults (STYLE rule 15). */
#define OBJ_S3_DFLT_REGION              "us-east-1"
#define OBJ_S3_DFLT_CONNECT_TIMEOUT_MS  5000u
#define OBJ_S3_DFLT_REQUEST_TIMEOUT_MS  30000u
#define OBJ_S3_DFLT_MULTIPART_THRESHOLD ((size_t)16 << 20)
#define OBJ_S3_DFLT_PART_SIZE           ((size_t)8 << 20)
#define OBJ_S3_DFLT_MAX_CONNECTIONS     32u
#define OBJ_S3_MIN_PART_SIZE            ((size_t)5 << 20)
#define OBJ_S3_MAX_PART_SIZE            ((size_t)5 << 30)
#define OBJ_S3_MAX_PARTS                10000u
#define OBJ_S3_MAX_SINGLE_PUT           ((size_t)5 << 30)

/*
 * Everything the backend needs but the credentials (obj_s3_cred.c),
 * resolved once at create time from (in order) the obj_s3_config fields,
 * the AWS_* environment and the ~/.aws/{credentials,config} files. All
 * strings are malloc'd and owned by the struct (obj_s3_settings_clear).
 */
struct obj_s3_settings {
	char *profile;                    /* conf->profile, AWS_PROFILE or "default" */
	char *cred_file;                  /* the shared credentials file; NULL: no home */
	char *config_file;                /* the shared config file; NULL: no home */
	char *region;
	char *scheme;                     /* "http" or "https" */
	char *host;                       /* "s3.amazonaws.com", "127.0.0.1", "[::1]" */
	unsigned port;                    /* 0 = the scheme's default */
	int path_style;                   /* 1 path-style, 0 virtual-hosted */
	int explicit_endpoint;            /* endpoint came from options/env/files */
	char *ca_bundle;                  /* AWS_CA_BUNDLE, NULL = system CAs */
	int insecure_tls;
	unsigned connect_timeout_ms;
	unsigned request_timeout_ms;
	size_t multipart_threshold;
	size_t part_size;
	unsigned max_connections;
	int unsigned_payload;             /* big bodies UNSIGNED-PAYLOAD (resolved) */
};

/*
 * obj_s3_settings_resolve - fill *out for `bucket` from conf (may be NULL),
 * the environment and the AWS files. On failure a one-line reason (never
 * containing a secret) is written to err[0..errlen). Returns 0, -EINVAL
 * (malformed endpoint, bad option), -ENOMEM. Reads the process
 * environment: not safe against a concurrent setenv().
 */
int obj_s3_settings_resolve(struct obj_s3_settings *out, const struct obj_s3_config *conf,
			    const char *bucket, char *err, size_t errlen);
void obj_s3_settings_clear(struct obj_s3_settings *s);

/*
 * obj_s3_endpoint_parse - split "http[s]://host[:port][/]" into its parts
 * (malloc'd, caller frees). Userinfo, paths, queries and fragments are
 * refused. Returns 0, -EINVAL (reason in err), -ENOMEM.
 */
int obj_s3_endpoint_parse(const char *url, char **scheme, char **host, unsigned *port,
			  char *err, size_t errlen);

/* 1 when host is an IPv4/IPv6 literal or localhost (then path-style is
 * the automatic choice). */
int obj_s3_host_is_local_or_ip(const char *host);

/* 1 when host is 127.0.0.0/8, [::1] or localhost: bodies sent there need
 * no payload hash (no network path to protect). */
int obj_s3_host_is_loopback(const char *host);

/*
 * obj_s3_ini_get - value of `key` in section `section` of the INI file
 * `path` into *out (malloc'd, the caller's; wipe it if it may be a
 * secret), or NULL when the file, section or key is missing. "s3.KEY"
 * looks inside a nested "s3 =" block. Returns 0, -ENOMEM, -EINVAL (file
 * too large or unreadable).
 */
int obj_s3_ini_get(const char *path, const char *section, const char *key, char **out);

/* ======================================================================
 * Functions from file obj_s3_json.c
 * ====================================================================== */

/*
 * obj_s3_json_strings - the values of the top-level members keys[0..n)
 * of the JSON object data[0..len) into vals[0..n): strings decoded,
 * numbers/true/false as their text, NULL when absent or null. Each
 * vals[i] is malloc'd and the caller's (wipe before free: secrets).
 * Returns 0, -EINVAL (not one JSON object, or a requested name twice),
 * -ENOMEM; on failure every vals[i] is NULL. Thread-safe.
 */
int obj_s3_json_strings(const char *data, size_t len, const char *const *keys, size_t n,
			char **vals);

/* ======================================================================
 * Functions from file obj_s3_creds.c
 * ====================================================================== */

/*
 * One set of credentials, immutable once made. Shared between the
 * provider and the requests signing with it by a count protected by the
 * provider's lock; obj_s3_creds_free wipes every string.
 */
struct obj_s3_creds {
	char *access_key;
	char *secret_key;                 /* never logged, never in a message */
	char *session_token;              /* NULL when none */
	int64_t expires;                  /* Unix time; 0 = does not expire */
	unsigned refs;                    /* protected by the obj_s3_cred's mu */
};
/* A new set with one reference (copies of the strings; an empty token is
 * none). Returns 0 or -ENOMEM. */
int obj_s3_creds_new(struct obj_s3_creds **out, const char *access_key, const char *secret_key,
		     const char *session_token, int64_t expires);
void obj_s3_creds_free(struct obj_s3_creds *c);

/* ISO 8601 ("2024-05-01T12:00:00Z", fractions and +hh:mm offsets too)
 * into Unix seconds. Returns 0 or -EINVAL. */
int obj_s3_time_parse(const char *s, int64_t *out);

/* ======================================================================
 * Functions from file obj_s3_cred.c
 * ====================================================================== */

/*
 * The backend's credentials provider (see the DESIGN of obj_s3_cred.c).
 *
 * obj_s3_cred_create - run the chain (obj_s3_cred_src_chain) for `bucket`
 * and start the refresher when the credentials expire; with
 * conf->no_sign_request, a provider of no credentials (requests go
 * unsigned). On success *out is the caller's (obj_s3_cred_free). Returns
 * 0, -EACCES (nothing found, or a source failed: err says which),
 * -EINVAL, -ENOMEM.
 *
 * obj_s3_cred_get - pin the current set into *snap for one request (NULL
 * when requests go unsigned); the caller unpins it with obj_s3_cred_put.
 * Never hands out an expired set: waits for a refresh instead, and
 * returns -EAGAIN (reason in err) when that fails. Thread-safe.
 *
 * obj_s3_cred_expired - the store refused `used` (ExpiredToken,
 * InvalidAccessKeyId, ...). For temporary credentials, makes sure a
 * refresh happened after `used` was current (one for all callers) and
 * returns 1 when a different set is now current (retry once), else 0.
 * Thread-safe; blocks up to a minute.
 *
 * obj_s3_cred_free - stop the refresher and free; no request may be in
 * progress.
 */
struct obj_s3_cred;
int obj_s3_cred_create(struct obj_s3_cred **out, const struct obj_s3_settings *set,
		       const struct obj_s3_config *conf, const char *bucket, char *err, size_t errlen);
int obj_s3_cred_get(struct obj_s3_cred *c, struct obj_s3_creds **snap, char *err, size_t errlen);
void obj_s3_cred_put(struct obj_s3_cred *c, struct obj_s3_creds *snap);
int obj_s3_cred_expired(struct obj_s3_cred *c, const struct obj_s3_creds *used);
/* The chosen source's name, for the log (borrowed until free). */
const char *obj_s3_cred_source(const struct obj_s3_cred *c);
/* s3_cred_refreshes, s3_cred_refresh_failures, s3_cred_auth_retries. */
void obj_s3_cred_stats(struct obj_s3_cred *c, obj_stat_emit_fn emit, void *arg);
void obj_s3_cred_free(struct obj_s3_cred *c);

/* ======================================================================
 * Functions from file obj_s3_cred_src.c
 * ====================================================================== */

/* One configured source (environment, a profile's credential_process,
 * STS, ECS, IMDS, ...); it can be fetched any number of times. */
struct obj_s3_cred_src;

/*
 * obj_s3_cred_src_chain - walk the chain (order in obj_s3_cred_src.c) and
 * return the first configured source in *out and its first credentials
 * in *first (both the caller's). Returns 0, -EACCES (err lists what was
 * tried, or names the source that failed), -ENOMEM. Reads the
 * environment; may block on the network or a child process.
 */
int obj_s3_cred_src_chain(struct obj_s3_cred_src **out, struct obj_s3_creds **first,
			  const struct obj_s3_settings *set, const struct obj_s3_config *conf,
			  const char *bucket, char *err, size_t errlen);
/* Fetch fresh credentials from s into *out (the caller's). Returns 0,
 * -EACCES, -EINVAL, -ENOMEM, with the reason in err. Not reentrant for
 * one s: the refresher is its only caller after creation. */
int obj_s3_cred_src_fetch(struct obj_s3_cred_src *s, struct obj_s3_creds **out, char *err,
			  size_t errlen);
const char *obj_s3_cred_src_name(const struct obj_s3_cred_src *s);
void obj_s3_cred_src_free(struct obj_s3_cred_src *s);

/* ======================================================================
 * Functions from file obj_s3_cred_parse.c
 * ====================================================================== */

/* Parsers of the sources' answers (pure: no I/O but the files named). Each
 * returns 0 with *out the caller's, -EACCES (malformed or an error
 * answer; err says why, never quoting a secret), -ENOMEM. */
/* credential_process output: JSON with "Version": 1. */
int obj_s3_cred_parse_process(const char *data, size_t len, struct obj_s3_creds **out,
			      char *err, size_t errlen);
/* ECS / EC2 instance metadata JSON (Token, optional Code "Success"). */
int obj_s3_cred_parse_container(const char *data, size_t len, struct obj_s3_creds **out,
				const char *what, char *err, size_t errlen);
/* STS AssumeRole / AssumeRoleWithWebIdentity XML (or its ErrorResponse). */
int obj_s3_cred_parse_sts(const char *data, size_t len, struct obj_s3_creds **out, char *err,
			  size_t errlen);
/* An s3fs-style credentials file (-o credentials_file=), refused when
 * group or others may access it. */
int obj_s3_cred_parse_passwd(const char *path, const char *bucket, struct obj_s3_creds **out,
			     char *err, size_t errlen);

/* The largest secret file read (credentials file, token files). */
#define OBJ_S3_SECRET_FILE_MAX 65536
/*
 * Read fd (the file what path) to its end, at most OBJ_S3_SECRET_FILE_MAX
 * bytes, into a new NUL-terminated buffer *out of OBJ_S3_SECRET_FILE_MAX
 * + 1 bytes with the length in *len. The buffer is the caller's: it holds
 * a secret, so OPENSSL_cleanse all of it before free(). Returns 0,
 * -ENOMEM or -EACCES (a failed read), with the reason in err and *out
 * NULL. fd stays open.
 */
int obj_s3_cred_parse_read_fd(int fd, const char *what, const char *path, char **out,
			      size_t *len, char *err, size_t errlen);

/* A profile's credential settings, credentials file first, key by key. */
enum {
	OBJ_S3_PROFILE_ACCESS_KEY, OBJ_S3_PROFILE_SECRET_KEY, OBJ_S3_PROFILE_SESSION_TOKEN,
	OBJ_S3_PROFILE_ROLE_ARN, OBJ_S3_PROFILE_SOURCE_PROFILE, OBJ_S3_PROFILE_CREDENTIAL_SOURCE,
	OBJ_S3_PROFILE_CREDENTIAL_PROCESS, OBJ_S3_PROFILE_WEB_IDENTITY_TOKEN_FILE,
	OBJ_S3_PROFILE_ROLE_SESSION_NAME, OBJ_S3_PROFILE_EXTERNAL_ID, OBJ_S3_PROFILE_DURATION,
	OBJ_S3_PROFILE__N
};
struct obj_s3_profile {
	char *v[OBJ_S3_PROFILE__N];       /* NULL when unset; wiped by clear */
};
/* Returns 0, -ENOMEM, -EINVAL (a file too large or unreadable). Missing
 * files and profiles leave every value NULL. */
int obj_s3_profile_load(struct obj_s3_profile *p, const char *cred_file, const char *config_file,
			const char *name);
void obj_s3_profile_clear(struct obj_s3_profile *p);

/* ======================================================================
 * Functions from file obj_s3_cred_io.c
 * ====================================================================== */

/* One HTTP exchange of a credential source. */
struct obj_s3_cred_http {
	const char *method;               /* "GET", "PUT" (no body), "POST" */
	const char *url;
	const char *const *headers;       /* "Name: value" lines, NULL-terminated; may be NULL */
	const char *body;                 /* POST only */
	unsigned connect_timeout_ms;
	unsigned timeout_ms;
	int no_proxy;                     /* link-local endpoints: never via a proxy */
	int insecure_tls;
	const char *ca_bundle;
};
/* Perform h; *status is the HTTP status and *out the body (at most 64 KiB,
 * NUL-terminated; wipe it with obj_s3_cred_io_wipe). Returns 0 whatever
 * the status, or -ECONNREFUSED/-ETIMEDOUT/-EIO/-ENOMEM for a transport
 * failure (reason in err). Thread-safe. */
int obj_s3_cred_io_http(const struct obj_s3_cred_http *h, long *status, struct obj_s3_buf *out,
			char *err, size_t errlen);
/* Run /bin/sh -c command and collect its stdout into *out (wipe it).
 * Returns 0 when it exited 0, -EACCES (non-zero exit, signal), -ETIMEDOUT,
 * -EIO (output over 64 KiB), -ENOMEM, -errno. Thread-safe. */
int obj_s3_cred_io_process(const char *command, unsigned timeout_ms, struct obj_s3_buf *out,
			   char *err, size_t errlen);
/* Wipe and free a buffer that held a secret. */
void obj_s3_cred_io_wipe(struct obj_s3_buf *b);


/* ---- the backend's handle and one request (obj_s3.c, obj_s3_req.c) ------ */

#define OBJ_S3_MOD "objstore.s3"
#define OBJ_S3_TOKEN_HEADER "x-amz-meta-shalefs-token"
/* Largest error or listing body accepted. */
#define OBJ_S3_MAX_SMALL_BODY ((size_t)16 << 20)
/* Worker threads per multipart upload (also bounded by max_connections). */
#define OBJ_S3_PART_THREADS 4u
/* DeleteObjects takes at most this many keys per request. */
#define OBJ_S3_DELETE_BATCH 1000u
/* ListObjectsV2 returns at most this many keys per request. */
#define OBJ_S3_LIST_MAX 1000u

enum obj_s3_verb {
	OBJ_S3_V_GET,
	OBJ_S3_V_HEAD,
	OBJ_S3_V_PUT,
	OBJ_S3_V_POST,
	OBJ_S3_V_DELETE,
	OBJ_S3_V_LIST,
	OBJ_S3_V__N
};

struct obj_s3 {
	struct obj_backend base;          /* must be first */
	char *bucket;
	char *prefix;                     /* "" or ends with '/' */
	struct obj_s3_settings set;
	struct obj_s3_cred *cred;         /* the credentials; thread-safe */
	char *host_hdr;                   /* value of the Host header */
	char *url_base;                   /* "http://host:port" (vhost: with the bucket) */
	char *path_base;                  /* "/bucket" for path-style, "" otherwise */

	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cv;
	CURL **pool_free;                 /* protected by pool_mu: idle handles */
	unsigned pool_nfree;              /* protected by pool_mu */
	unsigned pool_created;            /* protected by pool_mu: handles in existence */

	/* Counters; relaxed atomics, read only by stats(). */
	atomic_uint_fast64_t st_req[OBJ_S3_V__N];
	atomic_uint_fast64_t st_bytes_in, st_bytes_out;
	atomic_uint_fast64_t st_http_4xx, st_http_5xx, st_transport_err;
	atomic_uint_fast64_t st_conn_new, st_conn_reused, st_pool_waits;
	atomic_uint_fast64_t st_multipart, st_multipart_aborts;
};

/* One HTTP exchange: what to send, and what came back. */
struct obj_s3_req {
	/* in */
	const char *method;               /* "GET", "HEAD", "PUT", "POST", "DELETE" */
	enum obj_s3_verb verb;
	const char *key;                  /* full S3 key; NULL for bucket requests */
	struct obj_s3_query query[4];
	size_t nquery;
	struct obj_s3_header hdr[4];      /* extra signed headers */
	size_t nhdr;
	const void *body;
	size_t body_len;
	size_t max_resp;                  /* largest response body accepted */
	uint64_t expect_len;              /* expected response bytes, for the timeout; 0 = unknown */

	/* out */
	CURLcode cc;
	long status;
	int os_errno;
	long hdr_status;                  /* status of the response being received */
	struct obj_s3_buf resp;           /* response body */
	int resp_overflow;
	char etag[80];                    /* ETag header as sent (quotes kept) */
	char token[OBJ_TOKEN_MAX];
	int have_token;
	uint64_t content_length;
	int have_content_length;
	uint64_t range_total;             /* from Content-Range: bytes a-b/TOTAL */
	int have_range_total;
	uint8_t *dst;                     /* when set, the body goes here (fixed size) */
	size_t dst_cap, dst_len;
	int64_t mtime_ns;
	size_t upload_pos;
	char curl_err[CURL_ERROR_SIZE];
	char code[64];                    /* S3's <Error><Code>, "" when none */
	char msg[320];                    /* the failure, when rc != 0 */
};
extern const char *const obj_s3_verb_names[OBJ_S3_V__N];

static inline struct obj_s3 *obj_s3_of(struct obj_backend *b)
{
	return (struct obj_s3 *)b;
}

/* Free a request's response buffers. */
void obj_s3_req_free(struct obj_s3_req *r);
/* Copy src into dst (n bytes) with control characters replaced, for messages. */
void obj_s3_sanitize(char *dst, size_t n, const char *src);
/* The log level a failure with this errno deserves. */
int obj_s3_level(int rc);
/* Log "op name: msg" at the level rc deserves; returns rc. */
int obj_s3_fail(int rc, const char *op, const char *name, const char *msg);
/* The S3 key (prefix + name, checked) of object `name` into *out (malloc'd). */
int obj_s3_key(struct obj_s3 *s, const char *name, char **out, const char *op);
/* The one switch: the errno of a failed exchange, with r->msg filled. */
int obj_s3_map_error(struct obj_s3 *s, struct obj_s3_req *r);
/* Sign and perform r (one refresh-and-resend on an expired key); 0 on a
 * 2xx answer, else obj_s3_map_error's errno. */
int obj_s3_perform(struct obj_s3 *s, struct obj_s3_req *r);

#endif /* SHALE_OBJ_S3_INT_H */
