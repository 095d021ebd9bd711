/*
 * cli_int.h - internals of the cli module, sectioned by defining file.
 * Never included from outside cli/.
 */
#ifndef SHALE_CLI_INT_H
#define SHALE_CLI_INT_H

#include "cli/cli.h"
#include "fs/fs.h"
#include "kv/kv.h"
#include "objstore/objstore.h"
#include "util/util.h"

#define CLI_LOG "cli"

/* ======================= cli_main.c: dispatch and shared helpers ======================= */

/* Print "shalefs: <msg>" to stderr (one line). */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Silence (1) or restore (0) the libraries' log lines on stderr. */
void cli_quiet(int on);
/* Parse argv (without the subcommand) into o; print the usage for --help,
 * the error line otherwise. Returns 0, 1 (--help) or -1 (printed); o is
 * the caller's either way (cli_opts_free). */
int cli_parse(int argc, char **argv, struct cli_opts *o, const char *second);
/* Check the URL's syntax (no I/O). On success u is the caller's
 * (obj_url_free). Returns 0 or -1 (printed). */
int cli_check_url(const char *url, struct obj_url *u);
/* Open the store behind o->store (writer: also probe conditional writes).
 * On success *out is the caller's (obj_close). Returns 0 or -1 (printed). */
int cli_open_store(const struct cli_opts *o, int writer, struct obj_backend **out);
/* Open the engine. On success *out is the caller's (kv_close). Returns 0
 * or -1 (printed). */
int cli_open_kv(const struct cli_opts *o, struct obj_backend *store, enum kv_open_mode mode,
		struct kv_db **out);
/* Parse "[-o OPT,...] STORE [SECOND]" for stats/checkpoint. On success *out is the
 * caller's (cli_opts_release). Returns 0, 1 (--help printed), -1 (error
 * printed). */
int cli_parse_store_args(int argc, char **argv, const char *second, struct cli_opts **out);
/* The second positional argument (second != NULL above), borrowed. */
const char *cli_opts_second(const struct cli_opts *o);
void cli_opts_release(struct cli_opts *o);
const char *cli_opts_store(const struct cli_opts *o);
/* Open the store (and engine, read-only). Returns 0 or -1 (printed). */
int cli_open_readonly(const struct cli_opts *o, struct obj_backend **store, struct kv_db **db);
int cli_open_store_only(const struct cli_opts *o, struct obj_backend **store);

/* ======================= cli_mount.c: shalefs mount ======================= */

int cli_mount(int argc, char **argv, const char *prog);

/* ======================= cli_stats.c: shalefs stats ======================= */

int cli_stats(int argc, char **argv);

/* ======================= cli_checkpoint.c: shalefs checkpoint ======================= */

int cli_checkpoint(int argc, char **argv);

/* ======================= cli_fsck.c: shalefs fsck ======================= */

int cli_fsck(int argc, char **argv);

#endif /* SHALE_CLI_INT_H */
