/*
 * obj_s3_cred_io.c - the two ways a credential source reaches the outside:
 * one small HTTP exchange (STS, the ECS agent, EC2 instance metadata) and
 * running a profile's credential_process.
 *
 * Both return what they got in a buffer the caller wipes and frees
 * (obj_s3_cred_io_wipe): it holds secrets. Neither logs. Error texts name
 * the URL or say "credential_process", never a header value or the body.
 *
 * HTTP: a fresh easy handle per exchange (refreshes are minutes apart, so
 * a pool buys nothing), no redirects, http/https only, the caller's
 * timeouts. Link-local endpoints (ECS, IMDS) bypass any proxy configured
 * in the environment, as the AWS SDKs do.
 *
 * PROCESSES: /bin/sh -c COMMAND, stdin from /dev/null, stdout into a pipe,
 * stderr inherited (the command's own complaints reach the daemon's
 * stderr or log). The command is the profile's text; no secret is in its
 * argv or environment. Output beyond 64 KiB, or a command still running
 * after the timeout, is a failure (the child is killed by its pid).
 */
#include "objstore/obj_s3_int.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#define OBJ_S3_CRED_IO_MAX ((size_t)64 << 10)

extern char **environ;

void obj_s3_cred_io_wipe(struct obj_s3_buf *b)
{
	if (b->p)
		OPENSSL_cleanse(b->p, b->cap);
	obj_s3_buf_free(b);
}

struct obj_s3_cred_io_rx {
	struct obj_s3_buf *out;
	int overflow;
};

static size_t obj_s3_cred_io_on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct obj_s3_cred_io_rx *rx = arg;
	size_t n = size * nmemb;

	if (n > OBJ_S3_CRED_IO_MAX || rx->out->len > OBJ_S3_CRED_IO_MAX - n) {
		rx->overflow = 1;
		return 0;
	}
	/* Reserve the whole maximum once: a realloc would leave a copy of
	 * the secret behind unwiped. */
	if (!rx->out->p && obj_s3_buf_reserve(rx->out, OBJ_S3_CRED_IO_MAX))
		return 0;
	obj_s3_buf_add(rx->out, ptr, n);
	return rx->out->err ? 0 : n;
}

int obj_s3_cred_io_http(const struct obj_s3_cred_http *h, long *status, struct obj_s3_buf *out,
			char *err, size_t errlen)
{
	struct obj_s3_cred_io_rx rx = { out, 0 };
	struct curl_slist *sl = NULL, *n;
	char curl_err[CURL_ERROR_SIZE] = "";
	CURL *c;
	CURLcode cc;
	int rc = 0;

	*status = 0;
	c = curl_easy_init();
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; h->headers && h->headers[i]; i++) {
		n = curl_slist_append(sl, h->headers[i]);
		if (!n) {
			rc = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		sl = n;
	}
	n = curl_slist_append(sl, "Expect:");
	if (!n) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	sl = n;
	curl_easy_setopt(c, CURLOPT_URL, h->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, sl);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "shalefs/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, h->insecure_tls ? 0L : 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, h->insecure_tls ? 0L : 2L);
	if (h->ca_bundle)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_bundle);
	if (h->no_proxy)
		curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, obj_s3_cred_io_on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &rx);
	if (!strcmp(h->method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, h->body ? h->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(h->body ? strlen(h->body) : 0));
	} else if (!strcmp(h->method, "PUT")) {
		/* IMDSv2's token request: a PUT without a body. */
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	if (cc != CURLE_OK) {
		if (rx.overflow) {
			snprintf(err, errlen, "%s: response larger than %zu bytes", h->url, OBJ_S3_CRED_IO_MAX);
			rc = -EIO;
		} else if (out->err) {
			snprintf(err, errlen, "out of memory");
			rc = -ENOMEM;
		} else {
			snprintf(err, errlen, "%s: %s", h->url, curl_err[0] ? curl_err : curl_easy_strerror(cc));
			rc = cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
			   : cc == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -EIO;
		}
		goto out;
	}
	/* A body-less answer still leaves an (empty) string. */
	obj_s3_buf_adds(out, "");
	if (out->err) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
	}
out:
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_easy_cleanup(c);
	curl_slist_free_all(sl);
	if (rc)
		obj_s3_cred_io_wipe(out);
	return rc;
}

int obj_s3_cred_io_process(const char *command, unsigned timeout_ms, struct obj_s3_buf *out,
			   char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	int pfd[2] = { -1, -1 }, status = 0, rc = 0, have_fa = 0;
	char *argv[] = { "sh", "-c", (char *)command, NULL };
	uint64_t deadline = util_now_ns() + (uint64_t)timeout_ms * 1000000u;
	pid_t pid = -1;

	if (pipe2(pfd, O_CLOEXEC)) {
		rc = -errno;
		snprintf(err, errlen, "credential_process: pipe: %s", util_strerror(rc));
		return rc;
	}
	if ((rc = -posix_spawn_file_actions_init(&fa)))
		goto spawn_fail;
	have_fa = 1;
	if ((rc = -posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) ||
	    (rc = -posix_spawn_file_actions_adddup2(&fa, pfd[1], 1)))
		goto spawn_fail;
	rc = -posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
	if (rc)
		goto spawn_fail;
	close(pfd[1]);
	pfd[1] = -1;
	if (obj_s3_buf_reserve(out, OBJ_S3_CRED_IO_MAX)) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto kill;
	}
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		uint64_t now = util_now_ns();
		ssize_t n;
		int pr;

		if (now >= deadline) {
			rc = -ETIMEDOUT;
			snprintf(err, errlen, "credential_process did not finish within %u s", timeout_ms / 1000);
			goto kill;
		}
		pr = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			rc = -errno;
			snprintf(err, errlen, "credential_process: poll: %s", util_strerror(rc));
			goto kill;
		}
		if (pr == 0)
			continue;
		if (out->len >= OBJ_S3_CRED_IO_MAX) {
			rc = -EIO;
			snprintf(err, errlen, "credential_process wrote more than %zu bytes", OBJ_S3_CRED_IO_MAX);
			goto kill;
		}
		n = read(pfd[0], out->p + out->len, OBJ_S3_CRED_IO_MAX - out->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			snprintf(err, errlen, "credential_process: read: %s", util_strerror(rc));
			goto kill;
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
		out->p[out->len] = '\0';
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			rc = -errno;
			snprintf(err, errlen, "credential_process: waitpid: %s", util_strerror(rc));
			goto out;
		}
	}
	pid = -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		rc = -EACCES;
		if (WIFEXITED(status))
			snprintf(err, errlen, "credential_process exited with status %d", WEXITSTATUS(status));
		else
			snprintf(err, errlen, "credential_process was killed by signal %d", WTERMSIG(status));
	}
	goto out;

spawn_fail:
	snprintf(err, errlen, "credential_process: cannot run /bin/sh: %s", util_strerror(rc));
	goto out;
kill:
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pid = -1;
out:
	if (have_fa)
		posix_spawn_file_actions_destroy(&fa);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (rc)
		obj_s3_cred_io_wipe(out);
	return rc;
}
