/*
 * cli_metrics.c - the mount daemon's counters for Prometheus:
 *   -o metrics=[ADDR:]PORT   text exposition format 0.0.4 over HTTP at
 *                            http://ADDR:PORT/metrics (404 elsewhere)
 *   -o metrics_file=PATH     the same text written to PATH.tmp and renamed
 *                            to PATH every CLI_METRICS_FILE_PERIOD_S seconds
 *                            and once more at unmount (node_exporter's
 *                            textfile collector)
 * The filesystem knows nothing of HTTP: this file reads the counters through
 * fs_stats, kv_stats and obj_stats, the same ones `shalefs stats` prints.
 *
 * NAMES
 *   cli_metrics_defs maps each known key to a Prometheus name (prefixed
 *   "shalefs_"), a type and a unit. Following Prometheus' conventions,
 *   counters end in _total, byte quantities in _bytes, durations are
 *   converted to seconds (_seconds), wall-clock times to
 *   _timestamp_seconds. Keys of a regular shape become one family with a
 *   label (cli_metrics_labelled):
 *     objstore_<op>_requests      shalefs_objstore_requests_total{op="<op>"}
 *     objstore_<op>_errors        shalefs_objstore_errors_total{op="<op>"}
 *     objstore_<op>_retries       shalefs_objstore_retries_total{op="<op>"}
 *     objstore_<op>_latency_us_*  shalefs_objstore_latency_{min,avg,max}_seconds
 *     s3_requests_<method>        shalefs_s3_requests_total{method="<method>"}
 *     <thread>_runs, _failures, _consecutive_failures, _last_success_unix_ms
 *                                 shalefs_background_*{thread="<thread>"}
 *     purpose_<p>_<class>_requests
 *                                 shalefs_store_<class>_requests_total{purpose="<p>"}
 *                                 (class: put_class, get_class, delete)
 *     purpose_<p>_put_bytes, _get_bytes
 *                                 shalefs_store_purpose_{put,get}_bytes_total{purpose}
 *     cost_<p>_nusd               shalefs_cost_requests_dollars_total{purpose="<p>"}
 *   Money is in dollars (the stats count nano-dollars: _nusd). The sums
 *   class_*_requests and cost_requests_nusd are not exported, for the
 *   reason below.
 *   The store's sums objstore_requests, objstore_errors and objstore_retries
 *   are not exported: each is exactly the sum over op of a labelled family, and a
 *   metric holding both a sum and its parts would be counted twice by any
 *   sum(). A key the table does not know is exported as a gauge named
 *   shalefs_<key> with a generic HELP, so a counter added later still
 *   appears (and can be given a proper entry here).
 *
 * HISTOGRAMS
 *   Two latency families follow the counters, as Prometheus histograms
 *   (cumulative _bucket{le=...} with the fixed bounds of util_hist, then
 *   _sum in seconds and _count):
 *     shalefs_objstore_request_duration_seconds{op,status}  (obj_latency)
 *     shalefs_fuse_request_duration_seconds{op}             (fs_latency)
 *   The objstore one counts what objstore_requests_total counts, split by
 *   status class as well: its _count summed over status is that counter.
 *
 * DESIGN
 *   The HTTP server is libmicrohttpd with its own thread
 *   (MHD_USE_INTERNAL_POLLING_THREAD) on a socket this file binds, so that
 *   a bind failure names its cause; at most CLI_METRICS_MAX_CONN
 *   connections, each dropped after CLI_METRICS_CONN_TIMEOUT_S idle. Every
 *   request renders a fresh snapshot (the stats functions are thread-safe).
 *   The file is written by one thread that waits on a condition variable
 *   between writes; its mutex only guards `stop` and is never held across
 *   I/O. Both start once the mount is up and stop after the filesystem's
 *   last flush, before the engine closes (cli_mount.c). Both threads are
 *   created with SIGHUP blocked, like every thread of the daemon.
 */
#include "cli/cli_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#define CLI_METRICS_FILE_PERIOD_S 15
#define CLI_METRICS_MAX_CONN 8
#define CLI_METRICS_CONN_TIMEOUT_S 10
#define CLI_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- the table ---------------------------------------------------------------- */

enum cli_metrics_type { CLI_M_GAUGE, CLI_M_COUNTER };

/* How a stats value becomes the sample's value. */
enum cli_metrics_scale {
	CLI_M_ONE,                 /* as is */
	CLI_M_MS,                  /* milliseconds -> seconds */
	CLI_M_US,                  /* microseconds -> seconds */
	CLI_M_NANO,                /* nano-dollars -> dollars */
	CLI_M_SKIP,                /* not exported (see NAMES above) */
};

struct cli_metrics_def {
	const char *key;           /* the stats key (a suffix in the labelled tables) */
	const char *name;          /* the Prometheus name without "shalefs_" */
	enum cli_metrics_type type;
	enum cli_metrics_scale scale;
	const char *help;
};

#define G CLI_M_GAUGE
#define C CLI_M_COUNTER
static const struct cli_metrics_def cli_metrics_defs[] = {
	/* fs_stats */
	{ "fs_daemon_pid", "fs_daemon_pid", G, CLI_M_ONE, "Process id of the mount daemon." },
	{ "fs_format", "fs_format_version", G, CLI_M_ONE, "Filesystem format version of the store." },
	{ "fs_readonly", "fs_readonly", G, CLI_M_ONE,
	  "1 when the mount refuses changes (mounted ro, fenced, or the engine failed)." },
	{ "fs_started_unix_ms", "fs_start_timestamp_seconds", G, CLI_M_MS,
	  "When the filesystem started (Unix time)." },
	{ "fs_inodes", "fs_inodes", G, CLI_M_ONE, "Inodes in the filesystem (files, directories, links)." },
	{ "fs_logical_bytes", "fs_logical_bytes", G, CLI_M_ONE,
	  "Sum of the sizes of regular files (as counted by this mount)." },
	{ "fs_inodes_cached", "fs_inodes_cached", G, CLI_M_ONE, "Inodes in the daemon's inode table." },
	{ "fs_inode_ghosts", "fs_inode_ghosts", G, CLI_M_ONE,
	  "Inodes the kernel knows whose objects were freed past inode_cache= (lookup counts kept)." },
	{ "fs_inodes_evicted", "fs_inodes_evicted_total", C, CLI_M_ONE,
	  "Inode objects freed past inode_cache=." },
	{ "fs_write_buffer_bytes", "fs_write_buffer_bytes", G, CLI_M_ONE,
	  "Written data buffered in the daemon, not yet handed to the engine." },
	{ "fs_write_buffer_cap", "fs_write_buffer_capacity_bytes", G, CLI_M_ONE,
	  "Size of the write buffer (write_buffer_mb=)." },
	{ "fs_lookups", "fs_lookups_total", C, CLI_M_ONE, "FUSE lookups served." },
	{ "fs_creates", "fs_creates_total", C, CLI_M_ONE, "Files, directories, links and nodes created." },
	{ "fs_unlinks", "fs_unlinks_total", C, CLI_M_ONE, "Unlinks and rmdirs." },
	{ "fs_renames", "fs_renames_total", C, CLI_M_ONE, "Renames." },
	{ "fs_reads", "fs_reads_total", C, CLI_M_ONE, "FUSE read requests." },
	{ "fs_writes", "fs_writes_total", C, CLI_M_ONE, "FUSE write requests." },
	{ "fs_fsyncs", "fs_fsyncs_total", C, CLI_M_ONE, "fsync and fsyncdir requests." },
	{ "fs_readdirs", "fs_readdirs_total", C, CLI_M_ONE, "readdir and readdirplus requests." },
	{ "fs_bytes_read", "fs_read_bytes_total", C, CLI_M_ONE, "Bytes returned by reads." },
	{ "fs_bytes_written", "fs_written_bytes_total", C, CLI_M_ONE, "Bytes accepted by writes." },
	{ "fs_flush_batches", "fs_flush_batches_total", C, CLI_M_ONE,
	  "Batches of buffered data handed to the engine." },
	{ "fs_flush_chunks", "fs_flush_chunks_total", C, CLI_M_ONE,
	  "Data chunks handed to the engine." },
	{ "fs_write_waits", "fs_write_waits_total", C, CLI_M_ONE,
	  "Writes that waited for room in the write buffer." },
	{ "fs_flusher_runs", "fs_flusher_runs_total", C, CLI_M_ONE,
	  "Runs of the background write-buffer flusher." },
	{ "fs_orphans_reclaimed", "fs_orphans_reclaimed_total", C, CLI_M_ONE,
	  "Unlinked-but-open files whose data was reclaimed." },
	{ "fs_erofs_errors", "fs_erofs_errors_total", C, CLI_M_ONE,
	  "Changes refused with EROFS (read-only or fenced mount)." },
	/* kv_stats */
	{ "state", "engine_state", G, CLI_M_ONE,
	  "Engine state: 0 ok, 1 fenced by a newer writer, 2 failed." },
	{ "readonly", "engine_readonly", G, CLI_M_ONE, "1 when the engine refuses writes." },
	{ "memtable_bytes", "memtable_bytes", G, CLI_M_ONE, "Bytes in the active memtable." },
	{ "memtable_entries", "memtable_entries", G, CLI_M_ONE, "Entries in the active memtable." },
	{ "frozen_memtables", "frozen_memtables", G, CLI_M_ONE,
	  "Memtables frozen and waiting to be flushed to L0." },
	{ "frozen_memtable_bytes", "frozen_memtable_bytes", G, CLI_M_ONE,
	  "Bytes in frozen memtables." },
	{ "memtable_pool_bytes", "memtable_pool_bytes", G, CLI_M_ONE,
	  "Memtable memory kept for reuse (part of RSS)." },
	{ "wal_spare_bytes", "wal_spare_bytes", G, CLI_M_ONE, "WAL buffer memory kept for reuse." },
	{ "l0_count", "l0_tables", G, CLI_M_ONE, "Tables in level 0." },
	{ "l0_compact_trigger", "l0_compact_trigger_tables", G, CLI_M_ONE,
	  "L0 tables that start a compaction." },
	{ "l0_bulk_trigger", "l0_bulk_trigger_tables", G, CLI_M_ONE,
	  "L0 tables at which a bulk load holds compaction back." },
	{ "l0_max", "l0_max_tables", G, CLI_M_ONE, "L0 tables at which writes stall." },
	{ "sorted_runs", "sorted_runs", G, CLI_M_ONE, "Sorted runs below L0." },
	{ "sorted_run_ssts", "sorted_run_tables", G, CLI_M_ONE, "Tables in the sorted runs." },
	{ "l0_bytes", "l0_bytes", G, CLI_M_ONE, "Bytes of the tables in level 0." },
	{ "sst_bytes", "table_bytes", G, CLI_M_ONE,
	  "Bytes of all tables the current manifest names (L0 and sorted runs)." },
	{ "data_tables", "data_tables", G, CLI_M_ONE,
	  "Data tables (file data kept out of compaction) the current tables reference." },
	{ "data_table_bytes", "data_table_bytes", G, CLI_M_ONE, "Bytes of those data tables." },
	{ "data_table_bytes_written", "data_table_written_bytes_total", C, CLI_M_ONE,
	  "Bytes of data tables memtable flushes wrote." },
	{ "data_rewrite_bytes", "data_rewrite_bytes_total", C, CLI_M_ONE,
	  "Value bytes compactions copied out of mostly dead data tables (data_rewrite_pct=)." },
	{ "manifest_id", "manifest_id", G, CLI_M_ONE, "Id of the current manifest." },
	{ "writer_epoch", "writer_epoch", G, CLI_M_ONE, "Writer epoch of this mount." },
	{ "lease_gen", "lease_generation", G, CLI_M_ONE, "Generation of the writer lease." },
	{ "store_failing", "store_failing", G, CLI_M_ONE,
	  "1 while writes to the object store fail (the engine keeps retrying)." },
	{ "store_error_errno", "store_error_errno", G, CLI_M_ONE,
	  "errno of the current store failure, 0 when none." },
	{ "store_failing_since_unix_ms", "store_failing_since_timestamp_seconds", G, CLI_M_MS,
	  "When the current store failure began (Unix time), 0 when none." },
	{ "store_write_failures", "store_write_failures_total", C, CLI_M_ONE,
	  "Store write failures the engine saw (each outage counts once per failed attempt)." },
	{ "checkpoint_deleted", "checkpoint_deleted", G, CLI_M_ONE,
	  "1 when the checkpoint this mount reads was deleted." },
	{ "wal_replay_after", "wal_replay_after", G, CLI_M_ONE,
	  "WAL objects up to this id are in tables: recovery replays the later ones." },
	{ "wal_next_id", "wal_next_id", G, CLI_M_ONE, "Id of the next WAL object." },
	{ "last_seq", "last_sequence", G, CLI_M_ONE, "Sequence number of the last write." },
	{ "durable_seq", "durable_sequence", G, CLI_M_ONE,
	  "Sequence number up to which writes are durable in the store." },
	{ "wal_buffered_bytes", "wal_buffered_bytes", G, CLI_M_ONE,
	  "WAL bytes buffered or in flight, not yet durable." },
	{ "wal_objects_written", "wal_objects_written_total", C, CLI_M_ONE, "WAL objects written." },
	{ "wal_bytes_written", "wal_written_bytes_total", C, CLI_M_ONE, "WAL bytes written." },
	{ "l0_flushes", "l0_flushes_total", C, CLI_M_ONE, "Memtables flushed to L0 tables." },
	{ "l0_versions_dropped", "l0_versions_dropped_total", C, CLI_M_ONE,
	  "Overwritten versions dropped while flushing memtables." },
	{ "l0_prebuilt", "l0_prebuilt_total", C, CLI_M_ONE,
	  "Memtable flushes whose table was built while the previous one uploaded." },
	{ "l0_bytes_written", "l0_written_bytes_total", C, CLI_M_ONE, "Bytes of L0 tables written." },
	{ "manifest_writes", "manifest_writes_total", C, CLI_M_ONE, "Manifests written." },
	{ "unlogged_batches", "unlogged_batches_total", C, CLI_M_ONE,
	  "Batches that bypassed the WAL (wal_bypass_mb=)." },
	{ "unlogged_bytes", "unlogged_bytes_total", C, CLI_M_ONE, "Bytes that bypassed the WAL." },
	{ "wal_holds", "wal_holds_total", C, CLI_M_ONE, "Times WAL uploads were held back." },
	{ "write_stalls", "write_stalls_total", C, CLI_M_ONE,
	  "Writes that stalled waiting for flushes or compaction." },
	{ "write_stall_ms", "write_stall_seconds_total", C, CLI_M_MS, "Time writes spent stalled." },
	{ "compactor_running", "compactor_running", G, CLI_M_ONE, "1 while a compaction runs." },
	{ "compaction_pending", "compaction_pending", G, CLI_M_ONE,
	  "1 when the tree wants a compaction." },
	{ "compactions_completed", "compactions_completed_total", C, CLI_M_ONE,
	  "Compactions completed." },
	{ "compactions_failed", "compactions_failed_total", C, CLI_M_ONE, "Compactions that failed." },
	{ "compactions_retried", "compactions_retried_total", C, CLI_M_ONE, "Compactions retried." },
	{ "compaction_bytes_in", "compaction_read_bytes_total", C, CLI_M_ONE,
	  "Bytes read by compactions." },
	{ "compaction_bytes_out", "compaction_written_bytes_total", C, CLI_M_ONE,
	  "Bytes written by compactions." },
	{ "compaction_quarantined_ssts", "compaction_quarantined_tables", G, CLI_M_ONE,
	  "Corrupt tables that are never compacted again." },
	{ "compaction_bulk_holds", "compaction_bulk_holds_total", C, CLI_M_ONE,
	  "Times compaction was held back for a bulk load." },
	{ "gc_passes", "gc_passes_total", C, CLI_M_ONE,
	  "Garbage collection passes (they run on events, never on a timer)." },
	{ "gc_deleted_ssts", "gc_deleted_tables_total", C, CLI_M_ONE,
	  "Unreferenced tables deleted by garbage collection." },
	{ "gc_deleted_wals", "gc_deleted_wal_objects_total", C, CLI_M_ONE,
	  "WAL objects deleted by garbage collection." },
	{ "gc_deleted_manifests", "gc_deleted_manifests_total", C, CLI_M_ONE,
	  "Manifests deleted by garbage collection." },
	{ "follower_polls", "follower_polls_total", C, CLI_M_ONE,
	  "Polls of the store by a read-only mount following the writer." },
	{ "follower_lag_ms", "follower_lag_seconds", G, CLI_M_MS,
	  "How far a read-only mount is behind the writer." },
	{ "block_cache_hits", "block_cache_hits_total", C, CLI_M_ONE, "Block cache hits." },
	{ "block_cache_misses", "block_cache_misses_total", C, CLI_M_ONE, "Block cache misses." },
	{ "block_cache_bytes", "block_cache_bytes", G, CLI_M_ONE, "Bytes in the block cache." },
	{ "block_cache_cap", "block_cache_capacity_bytes", G, CLI_M_ONE,
	  "Size of the block cache (cache_mb=)." },
	{ "readahead_spans", "readahead_spans_total", C, CLI_M_ONE, "Read-ahead spans fetched." },
	{ "readahead_spans_foreground", "readahead_spans_foreground_total", C, CLI_M_ONE,
	  "Read-ahead spans fetched by the reader itself." },
	{ "readahead_guesses", "readahead_guesses_total", C, CLI_M_ONE,
	  "Sequential reads detected (read-ahead started)." },
	{ "readahead_blocks", "readahead_blocks_total", C, CLI_M_ONE, "Blocks read ahead." },
	{ "readahead_warm_bytes", "readahead_warm_bytes_total", C, CLI_M_ONE,
	  "Bytes of tables read at random fetched whole for the disk cache." },
	{ "readahead_waits", "readahead_waits_total", C, CLI_M_ONE,
	  "Reads that waited for read-ahead in flight." },
	/* obj_stats: the metrics layer (the per-op keys are in cli_metrics_op_defs) */
	{ "objstore_requests", NULL, C, CLI_M_SKIP, NULL },
	{ "objstore_errors", NULL, C, CLI_M_SKIP, NULL },
	{ "objstore_bytes_put", "objstore_put_bytes_total", C, CLI_M_ONE,
	  "Bytes sent to the object store by put requests." },
	{ "objstore_bytes_got", "objstore_get_bytes_total", C, CLI_M_ONE,
	  "Bytes received from the object store by get requests." },
	/* by purpose and class: the sums (the parts are in cli_metrics_purpose_defs) */
	{ "class_put_class_requests", NULL, C, CLI_M_SKIP, NULL },
	{ "class_get_class_requests", NULL, C, CLI_M_SKIP, NULL },
	{ "class_delete_requests", NULL, C, CLI_M_SKIP, NULL },
	/* the cost estimate (obj_cost_stats) */
	{ "cost_requests_nusd", NULL, C, CLI_M_SKIP, NULL },
	{ "cost_price_put_nusd", "cost_price_put_dollars", G, CLI_M_NANO,
	  "Price of one PUT, COPY, POST or LIST request (price_put= is per 1,000)." },
	{ "cost_price_get_nusd", "cost_price_get_dollars", G, CLI_M_NANO,
	  "Price of one GET or HEAD request (price_get= is per 1,000)." },
	{ "cost_price_gib_month_nusd", "cost_price_gib_month_dollars", G, CLI_M_NANO,
	  "Price of storing 1 GiB for a month (price_gb_month=)." },
	{ "cost_requests_nusd_per_hour", "cost_requests_dollars_per_hour", G, CLI_M_NANO,
	  "Estimated request cost per hour: the mean since the mount." },
	{ "cost_stored_bytes", "cost_stored_bytes", G, CLI_M_ONE,
	  "Bytes the storage estimate is made on: the tables of the current manifest." },
	{ "cost_storage_nusd_per_hour", "cost_storage_dollars_per_hour", G, CLI_M_NANO,
	  "Estimated storage cost per hour of cost_stored_bytes." },
	{ "cost_nusd_per_hour", "cost_estimated_dollars_per_hour", G, CLI_M_NANO,
	  "Estimated cost per hour: requests (mean since the mount) plus storage." },
	/* the retry layer (the per-op retries are in cli_metrics_op_defs) */
	{ "objstore_retries", NULL, C, CLI_M_SKIP, NULL },
	{ "objstore_failures", "objstore_failures_total", C, CLI_M_ONE,
	  "Store request attempts that failed." },
	{ "objstore_gave_up", "objstore_gave_up_total", C, CLI_M_ONE,
	  "Store requests given up after the retry budget (store_timeout=)." },
	{ "objstore_conflicts_resolved_by_token", "objstore_conflicts_resolved_by_token_total", C,
	  CLI_M_ONE, "Conditional writes found already done by an earlier attempt." },
	/* the disk cache (obj_dcache.c, docs/cache.md) */
	{ "dcache_hits", "dcache_hits_total", C, CLI_M_ONE,
	  "Chunks read from the local disk cache." },
	{ "dcache_hit_bytes", "dcache_hit_bytes_total", C, CLI_M_ONE,
	  "Bytes read from the local disk cache." },
	{ "dcache_misses", "dcache_misses_total", C, CLI_M_ONE,
	  "Chunks the disk cache fetched from the store." },
	{ "dcache_fetches", "dcache_fetches_total", C, CLI_M_ONE,
	  "GET requests the disk cache sent for its misses." },
	{ "dcache_fetch_bytes", "dcache_fetch_bytes_total", C, CLI_M_ONE,
	  "Bytes the disk cache fetched from the store." },
	{ "dcache_corrupt", "dcache_corrupt_total", C, CLI_M_ONE,
	  "Disk cache entries dropped because they failed to verify or were missing." },
	{ "dcache_write_errors", "dcache_write_errors_total", C, CLI_M_ONE,
	  "Disk cache entries that could not be written." },
	{ "dcache_writes", "dcache_writes_total", C, CLI_M_ONE, "Disk cache entries written." },
	{ "dcache_writethrough_bytes", "dcache_writethrough_bytes_total", C, CLI_M_ONE,
	  "Bytes of freshly written tables put into the disk cache." },
	{ "dcache_evictions", "dcache_evictions_total", C, CLI_M_ONE,
	  "Disk cache entries evicted under the cap." },
	{ "dcache_entries", "dcache_entries", G, CLI_M_ONE, "Entries in the disk cache." },
	{ "dcache_bytes", "dcache_bytes", G, CLI_M_ONE,
	  "Bytes the disk cache's entries use (whole 4 KiB blocks)." },
	{ "dcache_cap", "dcache_capacity_bytes", G, CLI_M_ONE,
	  "Byte cap of the disk cache (cache_size=)." },
	/* S3 */
	{ "s3_bytes_in", "s3_received_bytes_total", C, CLI_M_ONE, "Bytes received from S3." },
	{ "s3_bytes_out", "s3_sent_bytes_total", C, CLI_M_ONE, "Bytes sent to S3." },
	{ "s3_http_4xx", "s3_http_4xx_responses_total", C, CLI_M_ONE, "HTTP 4xx responses from S3." },
	{ "s3_http_5xx", "s3_http_5xx_responses_total", C, CLI_M_ONE, "HTTP 5xx responses from S3." },
	{ "s3_transport_errors", "s3_transport_errors_total", C, CLI_M_ONE,
	  "S3 requests that failed below HTTP (connect, TLS, timeout)." },
	{ "s3_connections_new", "s3_connections_new_total", C, CLI_M_ONE, "S3 connections opened." },
	{ "s3_connections_reused", "s3_connections_reused_total", C, CLI_M_ONE,
	  "S3 requests that reused a connection." },
	{ "s3_pool_waits", "s3_pool_waits_total", C, CLI_M_ONE,
	  "S3 requests that waited for a free connection." },
	{ "s3_multipart_uploads", "s3_multipart_uploads_total", C, CLI_M_ONE,
	  "S3 multipart uploads." },
	{ "s3_multipart_aborts", "s3_multipart_aborts_total", C, CLI_M_ONE,
	  "S3 multipart uploads aborted." },
	/* mem:// and the fault injector (tests) */
	{ "mem_objects", "mem_objects", G, CLI_M_ONE, "Objects in a mem:// store." },
	{ "mem_bytes", "mem_bytes", G, CLI_M_ONE, "Bytes in a mem:// store." },
	{ "faults_injected", "faults_injected_total", C, CLI_M_ONE, "Faults injected (tests)." },
	{ "faults_injected_after_success", "faults_injected_after_success_total", C, CLI_M_ONE,
	  "Faults injected after the request took effect (tests)." },
	{ "fault_layer_ops", "fault_layer_ops_total", C, CLI_M_ONE,
	  "Requests through the fault injector (tests)." },
};

/* objstore_<op><suffix>: one family per suffix, labelled op="<op>". */
static const struct cli_metrics_def cli_metrics_op_defs[] = {
	{ "_requests", "objstore_requests_total", C, CLI_M_ONE,
	  "Requests that reached the object store (each retry counts), by operation." },
	{ "_errors", "objstore_errors_total", C, CLI_M_ONE,
	  "Store requests that failed, by operation (a missing object or a lost "
	  "put-if-absent race is not an error)." },
	{ "_retries", "objstore_retries_total", C, CLI_M_ONE,
	  "Store requests retried by the retry layer, by operation." },
	{ "_latency_us_min", "objstore_latency_min_seconds", G, CLI_M_US,
	  "Fastest store request since the mount, by operation." },
	{ "_latency_us_avg", "objstore_latency_avg_seconds", G, CLI_M_US,
	  "Mean store request time since the mount, by operation." },
	{ "_latency_us_max", "objstore_latency_max_seconds", G, CLI_M_US,
	  "Slowest store request since the mount, by operation." },
};

/* purpose_<p><suffix>: one family per suffix, labelled purpose="<p>". */
static const char *const cli_metrics_purposes[] = {
	"wal", "flush", "compaction", "segment", "gc", "read", "manifest", "other",
};
static const struct cli_metrics_def cli_metrics_purpose_defs[] = {
	{ "_put_class_requests", "store_put_class_requests_total", C, CLI_M_ONE,
	  "Store requests billed as PUT (PUT, COPY, POST, LIST), by purpose." },
	{ "_get_class_requests", "store_get_class_requests_total", C, CLI_M_ONE,
	  "Store requests billed as GET (GET, HEAD), by purpose." },
	{ "_delete_requests", "store_delete_requests_total", C, CLI_M_ONE,
	  "Store delete requests (free on AWS S3), by purpose." },
	{ "_put_bytes", "store_purpose_put_bytes_total", C, CLI_M_ONE,
	  "Bytes sent to the store, by purpose." },
	{ "_get_bytes", "store_purpose_get_bytes_total", C, CLI_M_ONE,
	  "Bytes received from the store, by purpose." },
};
static const struct cli_metrics_def cli_metrics_cost_def = {
	"_nusd", "cost_requests_dollars_total", CLI_M_COUNTER, CLI_M_NANO,
	"Estimated cost of the store requests since the mount, by purpose.",
};

/* s3_requests_<method>: labelled method="<method>" (get, put, post, ...). */
static const struct cli_metrics_def cli_metrics_s3_req_def = {
	"s3_requests_", "s3_requests_total", CLI_M_COUNTER, CLI_M_ONE,
	"HTTP requests sent to S3 (each retry counts), by HTTP method.",
};

/* <thread><suffix>: the engine's background threads (kv_stats_health),
 * labelled thread="<thread>". The longer suffix comes first. */
static const char *const cli_metrics_threads[] = {
	"wal_writer", "memtable_flusher", "compactor", "gc", "follower",
};
static const struct cli_metrics_def cli_metrics_thread_defs[] = {
	{ "_consecutive_failures", "background_consecutive_failures", G, CLI_M_ONE,
	  "Failed runs of a background thread since its last success." },
	{ "_last_success_unix_ms", "background_last_success_timestamp_seconds", G, CLI_M_MS,
	  "When a background thread last succeeded (Unix time), 0 never." },
	{ "_failures", "background_failures_total", C, CLI_M_ONE,
	  "Failed runs of a background thread." },
	{ "_runs", "background_runs_total", C, CLI_M_ONE, "Runs of a background thread." },
};
#undef G
#undef C

#define CLI_METRICS_N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- rendering ----------------------------------------------------------------- */

struct cli_metrics_family {
	char name[128];
	char help[192];
	enum cli_metrics_type type;
};

struct cli_metrics_sample {
	size_t family;             /* index into cli_metrics_snap.fam */
	const char *label;         /* label name, NULL for none */
	char label_value[64];
	char value[32];
};

/* One snapshot being rendered: grown by cli_metrics_emit. */
struct cli_metrics_snap {
	struct cli_metrics_family *fam;
	size_t n_fam, cap_fam;
	struct cli_metrics_sample *smp;
	size_t n_smp, cap_smp;
	int err;                   /* -ENOMEM once an allocation failed */
};

/* Does key end with suffix, after at least one character? Returns the
 * length of what precedes the suffix, or 0. */
static size_t cli_metrics_suffix(const char *key, const char *suffix)
{
	size_t k = strlen(key), s = strlen(suffix);

	return k > s && strcmp(key + k - s, suffix) == 0 ? k - s : 0;
}

/*
 * Find key's definition: an exact entry, or a labelled family (then
 * *label and lval, lvlen bytes, are set). Returns NULL for an unknown key.
 */
static const struct cli_metrics_def *cli_metrics_lookup(const char *key, const char **label,
							  char *lval, size_t lvlen)
{
	size_t n;

	*label = NULL;
	for (size_t i = 0; i < CLI_METRICS_N(cli_metrics_defs); i++)
		if (strcmp(key, cli_metrics_defs[i].key) == 0)
			return &cli_metrics_defs[i];
	if (strncmp(key, "objstore_", 9) == 0) {
		for (size_t i = 0; i < CLI_METRICS_N(cli_metrics_op_defs); i++) {
			n = cli_metrics_suffix(key + 9, cli_metrics_op_defs[i].key);
			if (n && n < lvlen) {
				memcpy(lval, key + 9, n);
				lval[n] = '\0';
				*label = "op";
				return &cli_metrics_op_defs[i];
			}
		}
	}
	for (size_t p = 0; p < CLI_METRICS_N(cli_metrics_purposes); p++) {
		const char *pn = cli_metrics_purposes[p];
		size_t pl = strlen(pn);
		if (strncmp(key, "purpose_", 8) == 0 && strncmp(key + 8, pn, pl) == 0) {
			for (size_t i = 0; i < CLI_METRICS_N(cli_metrics_purpose_defs); i++) {
				if (strcmp(key + 8 + pl, cli_metrics_purpose_defs[i].key) == 0 &&
				    pl < lvlen) {
					strcpy(lval, pn);
					*label = "purpose";
					return &cli_metrics_purpose_defs[i];
				}
			}
		}
		if (strncmp(key, "cost_", 5) == 0 && strncmp(key + 5, pn, pl) == 0 &&
		    strcmp(key + 5 + pl, cli_metrics_cost_def.key) == 0 && pl < lvlen) {
			strcpy(lval, pn);
			*label = "purpose";
			return &cli_metrics_cost_def;
		}
	}
	if (strncmp(key, "s3_requests_", 12) == 0 && key[12] && strlen(key + 12) < lvlen) {
		strcpy(lval, key + 12);
		*label = "method";
		return &cli_metrics_s3_req_def;
	}
	for (size_t i = 0; i < CLI_METRICS_N(cli_metrics_thread_defs); i++) {
		n = cli_metrics_suffix(key, cli_metrics_thread_defs[i].key);
		for (size_t t = 0; n && t < CLI_METRICS_N(cli_metrics_threads); t++) {
			if (strlen(cli_metrics_threads[t]) == n &&
			    strncmp(key, cli_metrics_threads[t], n) == 0 && n < lvlen) {
				memcpy(lval, key, n);
				lval[n] = '\0';
				*label = "thread";
				return &cli_metrics_thread_defs[i];
			}
		}
	}
	return NULL;
}

/* value in the definition's unit, as exact decimal text. */
static void cli_metrics_value(char *buf, size_t len, uint64_t v, enum cli_metrics_scale scale)
{
	if (scale == CLI_M_NANO)
		snprintf(buf, len, "%" PRIu64 ".%09" PRIu64, v / 1000000000u, v % 1000000000u);
	else if (scale == CLI_M_MS)
		snprintf(buf, len, "%" PRIu64 ".%03" PRIu64, v / 1000, v % 1000);
	else if (scale == CLI_M_US)
		snprintf(buf, len, "%" PRIu64 ".%06" PRIu64, v / 1000000, v % 1000000);
	else
		snprintf(buf, len, "%" PRIu64, v);
}

/* The family named name, added with type and help when new. Returns its
 * index, or -1 (out of memory, recorded). */
static long cli_metrics_family(struct cli_metrics_snap *s, const char *name,
			       enum cli_metrics_type type, const char *help)
{
	struct cli_metrics_family *f;

	for (size_t i = 0; i < s->n_fam; i++)
		if (strcmp(s->fam[i].name, name) == 0)
			return (long)i;
	if (s->n_fam == s->cap_fam) {
		size_t nc = s->cap_fam ? s->cap_fam * 2 : 128;
		f = realloc(s->fam, nc * sizeof(*f));
		if (!f) {
			s->err = -ENOMEM;
			return -1;
		}
		s->fam = f;
		s->cap_fam = nc;
	}
	f = &s->fam[s->n_fam];
	snprintf(f->name, sizeof(f->name), "%s", name);
	snprintf(f->help, sizeof(f->help), "%s", help);
	f->type = type;
	return (long)s->n_fam++;
}

/* The emit callback of fs_stats, kv_stats and obj_stats: one sample. */
static void cli_metrics_emit(void *arg, const char *key, uint64_t value)
{
	struct cli_metrics_snap *s = arg;
	const struct cli_metrics_def *d;
	struct cli_metrics_sample *x;
	const char *label;
	char lval[64], name[128], help[192], *p;
	enum cli_metrics_type type = CLI_M_GAUGE;
	enum cli_metrics_scale scale = CLI_M_ONE;
	long fam;

	if (s->err)
		return;
	d = cli_metrics_lookup(key, &label, lval, sizeof(lval));
	if (d && d->scale == CLI_M_SKIP)
		return;
	if (d) {
		snprintf(name, sizeof(name), "shalefs_%s", d->name);
		snprintf(help, sizeof(help), "%s", d->help);
		type = d->type;
		scale = d->scale;
	} else {
		/* Metric names allow [a-zA-Z0-9_:]; ':' is for recording rules. */
		snprintf(name, sizeof(name), "shalefs_%s", key);
		for (p = name; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || *p == '_'))
				*p = '_';
		snprintf(help, sizeof(help), "The counter '%.100s' of shalefs stats "
			 "(no description here yet).", key);
	}
	/* A label value in the exposition format escapes \, " and newline;
	 * the stats keys are lower_snake_case, so refuse anything else. */
	if (label && lval[strspn(lval, "abcdefghijklmnopqrstuvwxyz0123456789_")] != '\0')
		return;
	fam = cli_metrics_family(s, name, type, help);
	if (fam < 0)
		return;
	for (size_t i = 0; i < s->n_smp; i++)
		if (s->smp[i].family == (size_t)fam &&
		    (label ? s->smp[i].label && !strcmp(s->smp[i].label_value, lval) : 1))
			return;        /* the same series twice: the first wins */
	if (s->n_smp == s->cap_smp) {
		size_t nc = s->cap_smp ? s->cap_smp * 2 : 256;
		x = realloc(s->smp, nc * sizeof(*x));
		if (!x) {
			s->err = -ENOMEM;
			return;
		}
		s->smp = x;
		s->cap_smp = nc;
	}
	x = &s->smp[s->n_smp++];
	x->family = (size_t)fam;
	x->label = label;
	snprintf(x->label_value, sizeof(x->label_value), "%s", label ? lval : "");
	cli_metrics_value(x->value, sizeof(x->value), value, scale);
}

struct cli_metrics_buf {
	char *s;
	size_t len, cap;
	int err;
};

static void cli_metrics_printf(struct cli_metrics_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void cli_metrics_printf(struct cli_metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = -EINVAL;
		return;
	}
	if (!b->s || b->len + (size_t)n + 1 > b->cap) {
		size_t nc = (b->cap ? b->cap * 2 : 16384) + (size_t)n + 1;
		char *t = realloc(b->s, nc);
		if (!t) {
			b->err = -ENOMEM;
			return;
		}
		b->s = t;
		b->cap = nc;
		va_start(ap, fmt);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

/* ---- histograms ------------------------------------------------------------------ */

/* ns as exact decimal seconds, without trailing zeros ("0.000025", "10"). */
static void cli_metrics_seconds(char *buf, size_t len, uint64_t ns)
{
	size_t n;

	snprintf(buf, len, "%" PRIu64 ".%09" PRIu64, ns / 1000000000u, ns % 1000000000u);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
}

/* One histogram series: labels is 'op="get",status="ok"' (no braces). */
static void cli_metrics_hist(struct cli_metrics_buf *b, const char *name, const char *labels,
			     const struct util_hist_snap *h)
{
	char le[32];
	uint64_t cum = 0;

	for (unsigned i = 0; i < UTIL_HIST_BOUNDS; i++) {
		cum += h->bucket[i];
		cli_metrics_seconds(le, sizeof(le), util_hist_bounds_ns[i]);
		cli_metrics_printf(b, "%s_bucket{%s,le=\"%s\"} %" PRIu64 "\n", name, labels, le,
				   cum);
	}
	cum += h->bucket[UTIL_HIST_BOUNDS];
	cli_metrics_printf(b, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, labels, cum);
	cli_metrics_printf(b, "%s_sum{%s} %" PRIu64 ".%09" PRIu64 "\n", name, labels,
			   h->sum_ns / 1000000000u, h->sum_ns % 1000000000u);
	cli_metrics_printf(b, "%s_count{%s} %" PRIu64 "\n", name, labels, cum);
}

#define CLI_METRICS_OBJ_HIST "shalefs_objstore_request_duration_seconds"
#define CLI_METRICS_FUSE_HIST "shalefs_fuse_request_duration_seconds"

static void cli_metrics_obj_hist(void *arg, const char *op, const char *status,
				 const struct util_hist_snap *h)
{
	char labels[96];

	snprintf(labels, sizeof(labels), "op=\"%s\",status=\"%s\"", op, status);
	cli_metrics_hist(arg, CLI_METRICS_OBJ_HIST, labels, h);
}

static void cli_metrics_fuse_hist(void *arg, const char *op, const struct util_hist_snap *h)
{
	char labels[64];

	snprintf(labels, sizeof(labels), "op=\"%s\"", op);
	cli_metrics_hist(arg, CLI_METRICS_FUSE_HIST, labels, h);
}

/* The running exporter (cli_metrics_start). */
struct cli_metrics {
	struct fs *fs;             /* borrowed: all three outlive us */
	struct kv_db *db;
	struct obj_backend *store;
	struct MHD_Daemon *httpd;  /* NULL without metrics= */
	char *file;                /* metrics_file=, NULL without */
	char *tmp;                 /* file + ".tmp" */
	pthread_t writer;
	int writer_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;         /* CLOCK_MONOTONIC */
	int stop;                  /* protected by mu */
	int file_err;              /* the last write's result (writer thread, then stop) */
};

/*
 * The exposition text of every counter now, HELP and TYPE before each
 * family. On success *out is malloc'd (the caller's, free) and *len its
 * length without the NUL. Thread-safe. Returns 0 or -ENOMEM.
 */
static int cli_metrics_render(struct cli_metrics *m, char **out, size_t *len)
{
	struct cli_metrics_snap s = { .err = 0 };
	struct cli_metrics_buf b = { .err = 0 };

	fs_stats(m->fs, cli_metrics_emit, &s);
	kv_stats(m->db, cli_metrics_emit, &s);
	obj_stats(m->store, cli_metrics_emit, &s);
	obj_cost_stats(m->store, kv_table_bytes(m->db), cli_metrics_emit, &s);
	b.err = s.err;
	for (size_t f = 0; f < s.n_fam; f++) {
		const struct cli_metrics_family *fam = &s.fam[f];
		cli_metrics_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help,
				   fam->name, fam->type == CLI_M_COUNTER ? "counter" : "gauge");
		for (size_t i = 0; i < s.n_smp; i++) {
			const struct cli_metrics_sample *x = &s.smp[i];
			if (x->family != f)
				continue;
			if (x->label)
				cli_metrics_printf(&b, "%s{%s=\"%s\"} %s\n", fam->name, x->label,
						   x->label_value, x->value);
			else
				cli_metrics_printf(&b, "%s %s\n", fam->name, x->value);
		}
	}
	cli_metrics_printf(&b, "# HELP %s %s\n# TYPE %s histogram\n", CLI_METRICS_OBJ_HIST,
			   "Time of the requests that reached the object store (each retry "
			   "counts), by operation and status class (ok, not_found, conflict, "
			   "error).", CLI_METRICS_OBJ_HIST);
	obj_latency(m->store, cli_metrics_obj_hist, &b);
	cli_metrics_printf(&b, "# HELP %s %s\n# TYPE %s histogram\n", CLI_METRICS_FUSE_HIST,
			   "Time the filesystem took to answer FUSE requests, by operation.",
			   CLI_METRICS_FUSE_HIST);
	fs_latency(m->fs, cli_metrics_fuse_hist, &b);
	free(s.fam);
	free(s.smp);
	if (b.err || !b.s) {
		free(b.s);
		return b.err ? b.err : -ENOMEM;
	}
	*out = b.s;
	*len = b.len;
	return 0;
}

/* ---- HTTP ---------------------------------------------------------------------- */

static enum MHD_Result cli_metrics_reply(struct MHD_Connection *conn, unsigned status,
					 const char *type, char *body, size_t len,
					 enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* MHD's request handler (its thread): GET /metrics, 404 elsewhere. */
static enum MHD_Result cli_metrics_http(void *cls, struct MHD_Connection *conn, const char *url,
					const char *method, const char *version,
					const char *upload, size_t *upload_len, void **req)
{
	static char not_found[] = "not found: the metrics are at /metrics\n";
	static char not_allowed[] = "only GET and HEAD\n";
	static char no_memory[] = "out of memory\n";
	struct cli_metrics *m = cls;
	char *text;
	size_t len;

	(void)version;
	(void)upload;
	(void)upload_len;
	(void)req;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return cli_metrics_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
					 not_allowed, strlen(not_allowed), MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics") != 0)
		return cli_metrics_reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", not_found,
					 strlen(not_found), MHD_RESPMEM_PERSISTENT);
	if (cli_metrics_render(m, &text, &len) != 0)
		return cli_metrics_reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
					 no_memory, strlen(no_memory), MHD_RESPMEM_PERSISTENT);
	return cli_metrics_reply(conn, MHD_HTTP_OK, CLI_METRICS_CONTENT_TYPE, text, len,
				 MHD_RESPMEM_MUST_FREE);
}

/* libmicrohttpd's own messages: into the daemon's log. */
static void cli_metrics_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	util_vlog(UTIL_LOG_WARN, "metrics", fmt, ap);
}

/* A listening TCP socket on addr:port (numeric, as cli_opts checked).
 * Returns the fd, or -errno. */
static int cli_metrics_listen(const char *addr, unsigned port)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr *sa;
	socklen_t salen;
	int fd, one = 1, rc;

	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		sa = (struct sockaddr *)&sin;
		salen = sizeof(sin);
	} else if (inet_pton(AF_INET6, addr, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)port);
		sa = (struct sockaddr *)&sin6;
		salen = sizeof(sin6);
	} else {
		return -EINVAL;
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A restarted daemon must not wait out TIME_WAIT of its predecessor. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (sa->sa_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
	    bind(fd, sa, salen) != 0 || listen(fd, 32) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* ---- the file ------------------------------------------------------------------ */

/* Write the text to m->tmp and rename it to m->file, so that a reader
 * sees the old or the new file whole. Returns 0 or -errno. */
static int cli_metrics_file_write(struct cli_metrics *m)
{
	char *text = NULL;
	size_t len = 0, off = 0;
	ssize_t n;
	int fd, rc;

	rc = cli_metrics_render(m, &text, &len);
	if (rc)
		return rc;
	fd = open(m->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	while (off < len) {
		n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		off += (size_t)n;
	}
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(m->tmp, m->file) != 0)
		rc = -errno;
	if (rc)
		(void)unlink(m->tmp);
out:
	free(text);
	return rc;
}

/* Write, and log a failure once, not every period, and the recovery. */
static void cli_metrics_file_update(struct cli_metrics *m)
{
	int rc = cli_metrics_file_write(m);

	if (rc && rc != m->file_err)
		UTIL_WARN(CLI_LOG, "metrics file %s: %s (retrying every %d s)", m->file,
			  util_strerror(-rc), CLI_METRICS_FILE_PERIOD_S);
	else if (!rc && m->file_err)
		UTIL_INFO(CLI_LOG, "metrics file %s: written again", m->file);
	m->file_err = rc;
}

static void *cli_metrics_writer_main(void *arg)
{
	struct cli_metrics *m = arg;
	struct timespec t;

	util_thread_setup("shalefs-metrics", 1);
	CHECK_RETURN(pthread_mutex_lock(&m->mu));
	while (!m->stop) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		t.tv_sec += CLI_METRICS_FILE_PERIOD_S;
		while (!m->stop && pthread_cond_timedwait(&m->cv, &m->mu, &t) != ETIMEDOUT)
			;
		if (m->stop)
			break;
		CHECK_RETURN(pthread_mutex_unlock(&m->mu));
		cli_metrics_file_update(m);
		CHECK_RETURN(pthread_mutex_lock(&m->mu));
	}
	CHECK_RETURN(pthread_mutex_unlock(&m->mu));
	return NULL;
}

/* ---- lifecycle ----------------------------------------------------------------- */

int cli_metrics_start(struct cli_metrics **out, const struct cli_opts *o, struct fs *fs,
		      struct kv_db *db, struct obj_backend *store)
{
	struct cli_metrics *m;
	pthread_condattr_t ca;
	int rc, fd;

	*out = NULL;
	if (!o->metrics_addr && !o->metrics_file)
		return 0;
	m = calloc(1, sizeof(*m));
	if (!m) {
		cli_err("out of memory");
		return -1;
	}
	m->fs = fs;
	m->db = db;
	m->store = store;
	CHECK_RETURN(pthread_mutex_init(&m->mu, NULL));
	CHECK_RETURN(pthread_condattr_init(&ca));
	CHECK_RETURN(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC));
	CHECK_RETURN(pthread_cond_init(&m->cv, &ca));
	CHECK_RETURN(pthread_condattr_destroy(&ca));
	*out = m;                  /* from here cli_metrics_stop undoes it all */

	if (o->metrics_file) {
		m->file = strdup(o->metrics_file);
		if (!m->file || asprintf(&m->tmp, "%s.tmp", o->metrics_file) < 0) {
			m->tmp = NULL;
			cli_err("out of memory");
			return -1;
		}
		/* The first write now, so that a path that cannot be written
		 * fails the mount with one line instead of a log entry. */
		rc = cli_metrics_file_write(m);
		if (rc) {
			cli_err("metrics file %s: %s", m->file, util_strerror(-rc));
			m->file_err = rc;
			return -1;
		}
		rc = pthread_create(&m->writer, NULL, cli_metrics_writer_main, m);
		if (rc) {
			cli_err("cannot start the metrics file writer: %s", util_strerror(rc));
			return -1;
		}
		m->writer_started = 1;
	}
	if (o->metrics_addr) {
		int v6 = strchr(o->metrics_addr, ':') != NULL;
		fd = cli_metrics_listen(o->metrics_addr, o->metrics_port);
		if (fd < 0) {
			cli_err("metrics=: cannot listen on %s%s%s:%u: %s", v6 ? "[" : "",
				o->metrics_addr, v6 ? "]" : "", o->metrics_port,
				util_strerror(-fd));
			return -1;
		}
		m->httpd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
					    (v6 ? MHD_USE_IPv6 : 0),
					    0, NULL, NULL, cli_metrics_http, m,
					    /* first, so that it sees every message */
					    MHD_OPTION_EXTERNAL_LOGGER, cli_metrics_mhd_log, NULL,
					    MHD_OPTION_LISTEN_SOCKET, fd,
					    MHD_OPTION_CONNECTION_LIMIT, (unsigned)CLI_METRICS_MAX_CONN,
					    MHD_OPTION_CONNECTION_TIMEOUT,
					    (unsigned)CLI_METRICS_CONN_TIMEOUT_S,
					    MHD_OPTION_END);
		if (!m->httpd) {
			close(fd);
			cli_err("metrics=: cannot start the HTTP server on %s%s%s:%u (see the "
				"daemon's log)", v6 ? "[" : "", o->metrics_addr, v6 ? "]" : "",
				o->metrics_port);
			return -1;
		}
		UTIL_INFO(CLI_LOG, "serving metrics at http://%s%s%s:%u/metrics", v6 ? "[" : "",
			  o->metrics_addr, v6 ? "]" : "", o->metrics_port);
	}
	return 0;
}

void cli_metrics_stop(struct cli_metrics *m)
{
	if (!m)
		return;
	if (m->httpd)
		MHD_stop_daemon(m->httpd);          /* closes the listening socket */
	if (m->writer_started) {
		CHECK_RETURN(pthread_mutex_lock(&m->mu));
		m->stop = 1;
		CHECK_RETURN(pthread_cond_signal(&m->cv));
		CHECK_RETURN(pthread_mutex_unlock(&m->mu));
		CHECK_RETURN(pthread_join(m->writer, NULL));
		/* The last word: the counters after the final flush. */
		cli_metrics_file_update(m);
	}
	CHECK_RETURN(pthread_cond_destroy(&m->cv));
	CHECK_RETURN(pthread_mutex_destroy(&m->mu));
	free(m->file);
	free(m->tmp);
	free(m);
}
