/*
 * util_misc.c - clocks, thread names and priority, the seeded PRNG,
 * CRC32C, checked arithmetic.
 */
#include "util/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#ifdef __linux__
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define UTIL_BACKGROUND_NICE 10

void util_thread_setup(const char *name, int background)
{
#ifdef __linux__
	char n[16];
	snprintf(n, sizeof(n), "%s", name);
	(void)pthread_setname_np(pthread_self(), n);
	/* Linux keeps a nice value per thread: PRIO_PROCESS with a thread id
	 * changes only that thread (and the threads it creates later). */
	if (background)
		(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), UTIL_BACKGROUND_NICE);
#else
	(void)name;
	(void)background;
#endif
}

struct timespec util_wall_after_ns(uint64_t ns)
{
	uint64_t wall = util_wall_ns() + ns;
	return (struct timespec){ (time_t)(wall / 1000000000ull), (long)(wall % 1000000000ull) };
}

uint64_t util_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t util_wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void util_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void util_rand_seed(struct util_rand *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t util_rand_next(struct util_rand *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t util_rand_below(struct util_rand *r, uint64_t n)
{
	/* Lemire's multiply-shift; the tiny bias is irrelevant for tests. */
	return (uint64_t)(((unsigned __int128)util_rand_next(r) * n) >> 64);
}

double util_rand_unit(struct util_rand *r)
{
	return (double)(util_rand_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

int util_random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

uint64_t util_rand_os_seed(void)
{
	uint64_t s = 0;
	if (util_random_bytes(&s, sizeof(s)) != 0)
		s = util_wall_ns() ^ util_now_ns();
	return s ? s : 1;
}

/* CRC32C, slicing-by-8 tables built once. The polynomial is Castagnoli's
 * (reflected 0x82F63B78), the one used by iSCSI, ext4 and LevelDB. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

#if defined(__x86_64__)
/* SSE4.2 has a CRC32C instruction: ~10x the table's speed on the checksum
 * every block read and every WAL record pays. Chosen once, at run time. */
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = ~crc;
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return ~c32;
}

static atomic_int crc_hw = -1;      /* -1 unknown, 0 table, 1 SSE4.2 */
#endif

uint32_t util_crc32c(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;
#if defined(__x86_64__)
	int hw = atomic_load_explicit(&crc_hw, memory_order_relaxed);
	if (hw < 0) {
		hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
		atomic_store_explicit(&crc_hw, hw, memory_order_relaxed);
	}
	if (hw)
		return crc32c_hw(crc, p, len);
#endif
	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len >= 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		      crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

int util_size_add(size_t *out, size_t a, size_t b)
{
	if (__builtin_add_overflow(a, b, out))
		return -EOVERFLOW;
	return 0;
}

int util_size_mul(size_t *out, size_t a, size_t b)
{
	if (__builtin_mul_overflow(a, b, out))
		return -EOVERFLOW;
	return 0;
}

const char *util_strerror(int err)
{
	static _Thread_local char buf[96];
	if (err < 0)
		err = -err;
	/* GNU strerror_r returns a pointer that may or may not be buf. */
	return strerror_r(err, buf, sizeof(buf));
}

int util_grow(void *vp, size_t *cap, size_t n, size_t elem)
{
	void **v = vp;
	size_t want, bytes;
	void *p;

	if (n < *cap)
		return 0;
	want = *cap ? 2 * *cap : 16;
	if (want < *cap || util_size_mul(&bytes, want, elem))
		return -ENOMEM;
	if (!(p = realloc(*v, bytes)))
		return -ENOMEM;
	*v = p;
	*cap = want;
	return 0;
}

void *util_big_alloc(size_t n)
{
	const size_t huge = (size_t)2 << 20;
	void *p;

	if (n < UTIL_BIG_ALLOC || n > SIZE_MAX - huge)
		return malloc(n ? n : 1);
	if (!(p = aligned_alloc(huge, (n + huge - 1) & ~(huge - 1))))
		return NULL;
	/* Advice only: without THP (or with it off) the buffer is as malloc's. */
	(void)madvise(p, (n + huge - 1) & ~(huge - 1), MADV_HUGEPAGE);
	return p;
}
