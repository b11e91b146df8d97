// SPDX-License-Identifier: GPL-2.0
/*
 * Stress test of /dev/mmap_buf, v2 of the driver: PROCS processes of THREADS
 * threads each do random operations on the device for a bounded time and
 * check, after every one, that the device still behaves as its ioctl header
 * (drivers/misc/mmap_buf/mmap_buf_uapi.h) and documentation say.
 *
 * Every thread keeps a shadow copy of the bytes it alone writes:
 *
 *  - a slice of a buffer that all threads of its process share (one open
 *    file per process; the slices are disjoint and page aligned), used with
 *    pread(), pwrite() and mappings only, since the file position is shared;
 *  - up to three buffers of its own (private open files), with which it
 *    does everything: read(), write(), lseek(), resizes, mremap(), close().
 *
 * So every byte read back, through read(), pread() or any mapping, must be
 * the byte the shadow holds.
 *
 * The v2 rules, and how the checks stay exact:
 *
 *  - A resize always succeeds, mapped or not (ENOMEM is allowed and
 *    counted; a size of 0 or above max_size is EINVAL). It keeps the
 *    contents up to the smaller size, and what it grows by reads as
 *    zeroes, through read() and through every mapping that covers it. A
 *    shrink unmaps the cut pages from every mapping: touching them raises
 *    SIGBUS, as does touching a page that mremap() grew a mapping by past
 *    the end of the buffer (v1 refused the mremap() with EFAULT). The size
 *    is lseek(fd, 0, SEEK_END) (v1's GET_SIZE is gone).
 *
 *  - A private buffer is resized only by the thread that owns it, the only
 *    thread that touches it or its mappings, so that thread always knows
 *    its size. A page of one of its mappings is "live" while it lies below
 *    the size, "dead" (past the end) otherwise. Loads, stores and checks
 *    through mappings only touch live pages; a dead page is touched on
 *    purpose only, by the "access past the end" operation and right after
 *    a shrink that cut a mapped page, and that must raise SIGBUS for that
 *    very address. The thread catches it with sigsetjmp()/siglongjmp(),
 *    armed around that one access; a SIGBUS or SIGSEGV anywhere else is a
 *    violation that ends the process.
 *
 *  - The shared buffer's slices lie below its base size and nothing ever
 *    shrinks it below that, so the slices are exact whatever happens above.
 *    Above the base lies a tail of up to TAIL_PAGES pages, which each
 *    process maps once (the "window") before its threads start, and which
 *    any thread may resize while the other threads use their slices and
 *    the window. Resizes of the tail go one at a time (tail_lock, taken
 *    for writing), so the resizing thread knows the size and checks its
 *    results exactly: the grown part reads zeroes (it then fills it with a
 *    fixed pattern, tail_pat()), a cut page raises SIGBUS through the
 *    window, the rest keeps the pattern. Other threads read the window
 *    meanwhile, racing with those resizes, under a sequence count that the
 *    resizer makes odd before its SET_SIZE and even again once the size is
 *    stable and every byte below it holds the pattern. A reader that saw
 *    the same even count before and after its access raced with no resize:
 *    below the size it must read the pattern without SIGBUS, past it it
 *    must get SIGBUS. One that overlapped a resize may get SIGBUS, a zero
 *    or the pattern, nothing else. Resizes to the current size, which
 *    change nothing, run concurrently with each other (tail_lock taken for
 *    reading) and must all succeed.
 *
 *  - Forked children copy every mapping of the process. They check the
 *    mappings and files they inherit, write through them as planned by the
 *    parent, and resize a buffer they map to the size it has (which must
 *    succeed). The parent may unmap its own mappings of one of its buffers
 *    first and resize that buffer while only the child maps it (v1: EBUSY);
 *    it tells the child the new size, and the child checks its mappings of
 *    it: the kept part, and SIGBUS past the new end. A child touches only
 *    what the forking thread owns, which nobody else resizes meanwhile (the
 *    forking thread waits for the child); other threads' resizes unmap
 *    pages from the child's copies of their mappings too, which the child
 *    does not touch. (v1 kept forks and resizes apart with a lock: a fork
 *    child made every resize of the process fail with EBUSY.)
 *
 * Violations are printed to stderr; a summary and TAP go to stdout. The
 * exit status is 0 only if there was no violation, every process and
 * thread finished, and every kind of operation was done at least once.
 *
 * Build with the driver's private header, from the kernel tree:
 *	gcc -O2 -Wall -Wextra -Werror -pthread -I<kernel tree> \
 *		-o stress stress.c
 * Add -DSTRESS_SELFTEST_CORRUPT to check that the test can fail: the first
 * thread then corrupts its shadow once, which must be reported.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drivers/misc/mmap_buf/mmap_buf_uapi.h"
#include "kselftest.h"

#define MAX_BUFS	4	/* per thread: [0] is its shared slice */
#define MAX_MAPS	8	/* mappings per thread */
#define IO_MAX		(64 * 1024)
#define MAX_PRIV_SIZE	(4 << 20)
#define MAX_PLAN	3	/* writes a fork child does */
#define MAX_REPORTS	40	/* violations printed per thread */
#define TAIL_PAGES	16	/* the shared buffer's resizable tail, at most */
#define PEEKS		4	/* racing loads per "load (racing a resize)" */
#define GRACE_SECS	180	/* after the duration, before stragglers die */

enum op {
	OP_OPEN, OP_CLOSE, OP_MMAP, OP_MMAP_BAD, OP_MUNMAP, OP_MUNMAP_PART,
	OP_MREMAP, OP_MREMAP_GROW, OP_MADVISE, OP_FORK, OP_FORK_RESIZE,
	OP_READ, OP_PREAD, OP_WRITE, OP_PWRITE, OP_LOAD, OP_STORE, OP_LSEEK,
	OP_SIZE, OP_RESIZE, OP_RESIZE_MAPPED, OP_RESIZE_EINVAL,
	OP_RESIZE_SHARED, OP_RESIZE_SAME, OP_SIGBUS, OP_TAIL_PEEK, NR_OPS
};

static const char *const op_names[NR_OPS] = {
	[OP_OPEN] = "open",
	[OP_CLOSE] = "close",
	[OP_MMAP] = "mmap",
	[OP_MMAP_BAD] = "mmap (refused)",
	[OP_MUNMAP] = "munmap (whole)",
	[OP_MUNMAP_PART] = "munmap (partial)",
	[OP_MREMAP] = "mremap (shrink)",
	[OP_MREMAP_GROW] = "mremap (grow)",
	[OP_MADVISE] = "madvise(DONTNEED)",
	[OP_FORK] = "fork",
	[OP_FORK_RESIZE] = "resize while child maps",
	[OP_READ] = "read",
	[OP_PREAD] = "pread",
	[OP_WRITE] = "write",
	[OP_PWRITE] = "pwrite",
	[OP_LOAD] = "load (mapping)",
	[OP_STORE] = "store (mapping)",
	[OP_LSEEK] = "lseek",
	[OP_SIZE] = "size (SEEK_END)",
	[OP_RESIZE] = "SET_SIZE (ok)",
	[OP_RESIZE_MAPPED] = "SET_SIZE (ok, mapped)",
	[OP_RESIZE_EINVAL] = "SET_SIZE (EINVAL)",
	[OP_RESIZE_SHARED] = "SET_SIZE (shared tail)",
	[OP_RESIZE_SAME] = "SET_SIZE (shared, same)",
	[OP_SIGBUS] = "past the end (SIGBUS)",
	[OP_TAIL_PEEK] = "load (racing a resize)",
};

/* The operations a thread picks from, and how often. */
static const struct {
	enum op op;
	unsigned int weight;
} op_weights[] = {
	{ OP_OPEN, 2 }, { OP_CLOSE, 2 }, { OP_MMAP, 6 }, { OP_MUNMAP, 3 },
	{ OP_MUNMAP_PART, 3 }, { OP_MREMAP, 2 }, { OP_MREMAP_GROW, 2 },
	{ OP_MADVISE, 3 }, { OP_FORK, 1 }, { OP_READ, 6 }, { OP_PREAD, 8 },
	{ OP_WRITE, 6 }, { OP_PWRITE, 8 }, { OP_LOAD, 10 }, { OP_STORE, 10 },
	{ OP_LSEEK, 5 }, { OP_SIZE, 3 }, { OP_RESIZE, 6 },
	{ OP_RESIZE_SHARED, 3 }, { OP_SIGBUS, 2 }, { OP_TAIL_PEEK, 4 },
};

/* Shared with the top process: what the threads of one process did. */
struct stats {
	uint64_t ops[NR_OPS];
	uint64_t violations;
	uint64_t enomem;
	unsigned int threads_done;
};

struct buf {
	bool used;
	bool shared;		/* this thread's slice of the shared buffer */
	int fd;			/* -1 once closed: only mappings are left */
	unsigned int id;	/* 0 for the shared buffer */
	uint64_t size;		/* private: the size; shared: the base size */
	uint64_t lo, hi;	/* the bytes this thread owns */
	unsigned char *shadow;	/* their expected contents, from lo */
	uint64_t pos;		/* file position (private buffers) */
	int nmaps;		/* entries in maps[] that map it */
};

struct map {
	bool used;
	bool writable;
	struct buf *b;
	unsigned char *addr;
	uint64_t off;		/* buffer offset that addr maps */
	size_t npages;
	unsigned char *present;	/* per page: still mapped */
};

struct proc {
	int idx;
	int sfd;		/* the shared buffer */
	uint64_t ssize, slice;	/* ssize: the base size, never cut */
	/*
	 * The tail: [ssize, ssize + tail_max) of the shared buffer, mapped
	 * at window; its first tail_size bytes exist and hold tail_pat().
	 * tail_lock: writers resize it, one at a time; readers need a size
	 * that does not change. tail_seq: odd while a resize is under way.
	 */
	uint64_t tail_max;
	unsigned char *window;
	pthread_rwlock_t tail_lock;
	uint64_t tail_size;
	uint64_t tail_seq;
	struct stats *st;
};

struct thr {
	struct proc *p;
	int idx;
	pthread_t tid;
	uint64_t rng;
	struct buf bufs[MAX_BUFS];
	struct map maps[MAX_MAPS];
	unsigned char *io;
	uint64_t ops[NR_OPS];
	uint64_t violations;
	uint64_t enomem;
	unsigned int next_id;
	pid_t child;		/* non-zero in a fork child */
	char what[160];
};

struct plan {
	struct buf *b;
	struct map *m;		/* NULL: pwrite() through b->fd */
	uint64_t off;
	size_t len;
	uint64_t seed;
};

/* From a parent to its fork child: the buffer it resized, if any. */
struct fork_msg {
	int idx;		/* in bufs[]; -1: none */
	uint64_t size;		/* its size now */
	uint64_t cap;		/* the bytes its shadow has room for */
};

static size_t pg;
static const char *dev = "/dev/mmap_buf";
static uint64_t default_size, max_size;
static int nprocs = 2, nthreads = 4;
static unsigned int duration = 20;
static uint64_t seed = 0x6d6d61705f627566ULL;	/* "mmap_buf" */
static struct timespec t_start, t_end;
static __thread const char *cur_op = "setup";
static struct stats *proc_stats;

/* An expected SIGBUS: armed around one access, per thread. */
static __thread sigjmp_buf bus_env;
static __thread volatile sig_atomic_t bus_armed;
static __thread void *volatile bus_addr;

/*
 * SIGBUS where it is expected goes back to probe(). Otherwise: a driver that
 * maps the wrong pages, or none, kills us: say where.
 */
static void fatal_signal(int sig, siginfo_t *si, void *uc)
{
	char msg[200];
	int n;

	(void)uc;
	if (sig == SIGBUS && bus_armed) {
		bus_armed = 0;
		bus_addr = si->si_addr;
		siglongjmp(bus_env, 1);
	}
	if (proc_stats)
		__atomic_add_fetch(&proc_stats->violations, 1, __ATOMIC_RELAXED);
	n = snprintf(msg, sizeof(msg),
		     "stress: pid %d: VIOLATION: %s at address %p during %s\n",
		     (int)getpid(), strsignal(sig), si->si_addr, cur_op);
	if (write(STDERR_FILENO, msg, n) < 0)
		n = 0;
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Read the byte at @addr into *@val, or write *@val there. Return true if
 * that raised SIGBUS; bus_addr then says for which address.
 */
static bool probe(unsigned char *addr, bool write, unsigned char *val)
{
	bus_addr = NULL;
	if (sigsetjmp(bus_env, 1)) {
		bus_armed = 0;
		return true;
	}
	bus_armed = 1;
	if (write)
		*(volatile unsigned char *)addr = *val;
	else
		*val = *(volatile unsigned char *)addr;
	bus_armed = 0;
	return false;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd(struct thr *t)
{
	return splitmix64(&t->rng);
}

static uint64_t rnd_below(struct thr *t, uint64_t n)
{
	return n ? rnd(t) % n : 0;
}

static void fill(unsigned char *p, size_t len, uint64_t s)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if (!(i & 7))
			v = splitmix64(&s);
		p[i] = v;
		v >>= 8;
	}
}

/* What byte @x of the shared buffer's tail holds while it exists: never 0. */
static unsigned char tail_pat(uint64_t x)
{
	return (unsigned char)((x * 131 + (x >> 12) * 7) | 1);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static const char *ename(int err)
{
	const char *s = strerrorname_np(err);

	return s ? s : "E?";
}

static bool time_up(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t_end.tv_sec ||
	       (now.tv_sec == t_end.tv_sec && now.tv_nsec >= t_end.tv_nsec);
}

/* With write(2), not stdio: a fork child must not take stdio's locks. */
static void __attribute__((format(printf, 2, 3)))
violation(struct thr *t, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	__atomic_add_fetch(&t->p->st->violations, 1, __ATOMIC_RELAXED);
	if (++t->violations > MAX_REPORTS)
		return;
	if (t->child)
		n = snprintf(msg, sizeof(msg), "stress: p%d t%d child %d: VIOLATION: ",
			     t->p->idx, t->idx, (int)t->child);
	else
		n = snprintf(msg, sizeof(msg), "stress: p%d t%d: VIOLATION: ",
			     t->p->idx, t->idx);
	va_start(ap, fmt);
	n += vsnprintf(msg + n, sizeof(msg) - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(msg) - 2)
		n = sizeof(msg) - 2;
	msg[n++] = '\n';
	if (write(STDERR_FILENO, msg, n) < 0)
		t->violations++;
}

/*
 * Was @what's result @ret (with errno @err) the expected one, @exp, or -1
 * with errno @exp_err?
 */
static bool expect(struct thr *t, long ret, int err, long exp, int exp_err)
{
	if (ret == exp && (exp != -1 || err == exp_err))
		return true;
	if (exp == -1)
		violation(t, "%s: expected -1 %s, got %ld%s%s", t->what,
			  ename(exp_err), ret, ret == -1 ? " " : "",
			  ret == -1 ? ename(err) : "");
	else
		violation(t, "%s: expected %ld, got %ld%s%s", t->what, exp,
			  ret, ret == -1 ? " " : "", ret == -1 ? ename(err) : "");
	return false;
}

/*
 * Compare @len bytes at buffer offset @off of @b, as read into @got, with
 * the shadow. On a mismatch, report it and take what was read as the new
 * shadow, so that one fault is reported once.
 */
static void check_bytes(struct thr *t, const char *op, struct buf *b,
			uint64_t off, const unsigned char *got, size_t len)
{
	unsigned char *exp = b->shadow + (off - b->lo);
	size_t i, first = 0, n = 0;

	if (!memcmp(exp, got, len))
		return;
	for (i = 0; i < len; i++) {
		if (exp[i] != got[i] && !n++)
			first = i;
	}
	violation(t, "%s: buffer %u offset %" PRIu64 ": expected 0x%02x, got 0x%02x (%zu of %zu bytes differ)",
		  op, b->id, off + first, exp[first], got[first], n, len);
	memcpy(exp, got, len);
}

/* pread() [@a, @e) of @b and compare it with the shadow. */
static void verify_fd(struct thr *t, const char *op, struct buf *b,
		      uint64_t a, uint64_t e)
{
	while (a < e) {
		size_t len = min_u64(e - a, IO_MAX);
		ssize_t n = pread(b->fd, t->io, len, a);

		if (n != (ssize_t)len) {
			violation(t, "%s: pread(buffer %u, %zu bytes at %" PRIu64 ") returned %zd%s%s, expected %zu",
				  op, b->id, len, a, n, n < 0 ? " " : "",
				  n < 0 ? ename(errno) : "", len);
			return;
		}
		check_bytes(t, op, b, a, t->io, len);
		a += len;
	}
}

static int set_size(int fd, uint64_t size)
{
	__u64 v = size;

	return ioctl(fd, MMAP_BUF_SET_SIZE, &v);
}

/* Whether @fd's buffer is @size bytes: a byte at size - 1, none at size. */
static bool size_probe(int fd, uint64_t size)
{
	unsigned char c;

	return size && pread(fd, &c, 1, size - 1) == 1 && pread(fd, &c, 1, size) == 0;
}

/*
 * Where pages of @b's mappings are dead for sure: past the size of a private
 * buffer, past the largest tail of the shared one.
 */
static uint64_t dead_from(const struct thr *t, const struct buf *b)
{
	return b->shared ? t->p->ssize + t->p->tail_max : b->size;
}

/*
 * Is @b's size the one its thread knows? lseek(SEEK_END) says, but it moves
 * the file position, which is put back: so only where the position is the
 * thread's own, and not past the end (where a shrink may have left it, and
 * where SEEK_SET cannot put it back). Otherwise (the shared file, a fork
 * child, whose position is its parent's, or a position past the end) two
 * pread() probes tell: a byte at size - 1, none at size. The shared
 * buffer's exact size is its base plus the tail, which only a thread that
 * holds tail_lock knows; a fork child, which must not take that lock (a
 * thread it does not have may hold it), checks the range the size stays in.
 */
static bool size_ok(struct thr *t, struct buf *b, const char *op)
{
	struct proc *p = t->p;
	uint64_t size = b->size;
	unsigned char c;
	bool ok;
	off_t ret;

	if (b->shared && t->child) {
		ok = pread(b->fd, &c, 1, p->ssize - 1) == 1 &&
		     pread(b->fd, &c, 1, p->ssize + p->tail_max) == 0;
		if (!ok)
			violation(t, "%s: the shared buffer is not between %" PRIu64 " and %" PRIu64 " bytes",
				  op, p->ssize, p->ssize + p->tail_max);
		return ok;
	}
	if (b->shared) {
		pthread_rwlock_rdlock(&p->tail_lock);
		size = p->ssize + __atomic_load_n(&p->tail_size, __ATOMIC_SEQ_CST);
		ok = size_probe(b->fd, size);
		pthread_rwlock_unlock(&p->tail_lock);
		if (!ok)
			violation(t, "%s: the shared buffer is not %" PRIu64 " bytes", op, size);
		return ok;
	}
	if (t->child || b->pos > size) {
		ok = size_probe(b->fd, size);
		if (!ok)
			violation(t, "%s: buffer %u is not %" PRIu64 " bytes (pread at the end)",
				  op, b->id, size);
		return ok;
	}
	ret = lseek(b->fd, 0, SEEK_END);
	snprintf(t->what, sizeof(t->what), "%s: lseek(buffer %u, 0, SEEK_END)", op, b->id);
	ok = expect(t, ret, errno, size, 0);
	ret = lseek(b->fd, b->pos, SEEK_SET);
	snprintf(t->what, sizeof(t->what), "%s: lseek(buffer %u) back to %" PRIu64,
		 op, b->id, b->pos);
	if (!expect(t, ret, errno, b->pos, 0)) {
		ok = false;
		ret = lseek(b->fd, 0, SEEK_CUR);
		if (ret >= 0)
			b->pos = ret;
	}
	return ok;
}

/*
 * After a violation that may have changed @b's size: believe the device.
 * That may move the file position to the end.
 */
static void resync(struct buf *b)
{
	off_t pos, end;
	uint64_t a;

	if (b->fd < 0)
		return;
	if (!b->shared) {
		pos = lseek(b->fd, 0, SEEK_CUR);
		end = lseek(b->fd, 0, SEEK_END);
		if (end > 0 && (uint64_t)end != b->size && end <= 1LL << 30) {
			unsigned char *s = realloc(b->shadow, end);

			if (s) {
				b->shadow = s;
				b->size = b->hi = end;
			}
		}
		if (pos >= 0 && end >= 0) {
			if (pos <= end && lseek(b->fd, pos, SEEK_SET) == pos)
				b->pos = pos;
			else
				b->pos = end;
		}
	}
	for (a = b->lo; a < b->hi; a += IO_MAX) {
		size_t len = min_u64(b->hi - a, IO_MAX);

		if (pread(b->fd, b->shadow + (a - b->lo), len, a) != (ssize_t)len)
			break;
	}
}

static size_t rnd_len(struct thr *t, size_t max)
{
	static const size_t caps[] = { 16, 4096, 4 * 4096, IO_MAX };
	size_t cap = caps[rnd_below(t, 4)];

	if (cap > max)
		cap = max;
	return 1 + rnd_below(t, cap);
}

/* A random byte range of the bytes that @b's thread owns. */
static void pick_range(struct thr *t, struct buf *b, uint64_t *off, size_t *len)
{
	uint64_t span = b->hi - b->lo;

	*len = rnd_len(t, min_u64(span, IO_MAX));
	*off = b->lo + rnd_below(t, span - *len + 1);
}

static struct buf *pick_buf(struct thr *t, bool priv, bool need_fd,
			    bool need_mapped)
{
	int cand[MAX_BUFS], n = 0, i;

	for (i = 0; i < MAX_BUFS; i++) {
		struct buf *b = &t->bufs[i];

		if (!b->used || (priv && b->shared) ||
		    (need_fd && b->fd < 0) || (need_mapped && !b->nmaps))
			continue;
		cand[n++] = i;
	}
	return n ? &t->bufs[cand[rnd_below(t, n)]] : NULL;
}

static struct map *pick_map(struct thr *t, bool writable, size_t min_pages)
{
	int cand[MAX_MAPS], n = 0, i;

	for (i = 0; i < MAX_MAPS; i++) {
		struct map *m = &t->maps[i];

		if (!m->used || (writable && !m->writable) ||
		    m->npages < min_pages)
			continue;
		cand[n++] = i;
	}
	return n ? &t->maps[cand[rnd_below(t, n)]] : NULL;
}

static struct map *free_map(struct thr *t)
{
	int i;

	for (i = 0; i < MAX_MAPS; i++) {
		if (!t->maps[i].used)
			return &t->maps[i];
	}
	return NULL;
}

/*
 * Page @p of @m is live: still mapped, and below the end of the bytes the
 * thread may touch (the size of a private buffer, the base of the shared
 * one). Only live pages are loaded from, stored to and checked.
 */
static bool page_live(const struct map *m, size_t p)
{
	return m->present[p] && m->off + (p + 1) * pg <= m->b->size;
}

/* Page @p of @m is still mapped and dead for sure: touching it is SIGBUS. */
static bool page_dead(const struct thr *t, const struct map *m, size_t p)
{
	return m->present[p] && m->off + p * pg >= dead_from(t, m->b);
}

static bool page_ok(const struct map *m, size_t p, bool live)
{
	return live ? page_live(m, p) : m->present[p];
}

/*
 * Pages [*first, *first + *nr) of @m: a run of mapped pages, live ones only
 * if @live, at most @max.
 */
static bool present_run(struct thr *t, struct map *m, size_t *first,
			size_t *nr, size_t max, bool live)
{
	size_t p = rnd_below(t, m->npages), q, i;

	for (i = 0; i < m->npages; i++, p = (p + 1) % m->npages) {
		if (page_ok(m, p, live))
			break;
	}
	if (!page_ok(m, p, live))
		return false;
	for (q = p + 1; q < m->npages && page_ok(m, q, live) && q - p < max; q++)
		;
	*first = p;
	*nr = q - p;
	return true;
}

/* A random dead page of @m, if it has one. */
static bool pick_dead(struct thr *t, struct map *m, size_t *page)
{
	size_t p = rnd_below(t, m->npages), i;

	for (i = 0; i < m->npages; i++, p = (p + 1) % m->npages) {
		if (page_dead(t, m, p)) {
			*page = p;
			return true;
		}
	}
	return false;
}

/* A random byte range that @m maps, live, and that its thread owns. */
static bool map_range(struct thr *t, struct map *m, uint64_t *off, size_t *len,
		      size_t max)
{
	int tries;

	for (tries = 0; tries < 4; tries++) {
		size_t p, nr;
		uint64_t a, e;

		if (!present_run(t, m, &p, &nr, IO_MAX / pg, true))
			return false;
		a = max_u64(m->off + p * pg, m->b->lo);
		e = min_u64(m->off + (p + nr) * pg, m->b->hi);
		if (a >= e)
			continue;
		*len = rnd_len(t, min_u64(e - a, max));
		*off = a + rnd_below(t, e - a - *len + 1);
		return true;
	}
	return false;
}

static unsigned char *map_addr(struct map *m, uint64_t off)
{
	return m->addr + (off - m->off);
}

/*
 * munmap() the pages of [first, first + nr) of @m that are still mapped:
 * its holes may hold other mappings by now, of this or another thread.
 */
static int unmap_pages(struct map *m, size_t first, size_t nr)
{
	size_t p = first, q;
	int ret = 0;

	while (p < first + nr) {
		if (!m->present[p]) {
			p++;
			continue;
		}
		for (q = p; q < first + nr && m->present[q]; q++)
			;
		if (munmap(m->addr + p * pg, (q - p) * pg))
			ret = -1;
		memset(m->present + p, 0, q - p);
		p = q;
	}
	return ret;
}

static void free_buf(struct buf *b)
{
	free(b->shadow);
	memset(b, 0, sizeof(*b));
	b->fd = -1;
}

static void drop_map(struct map *m)
{
	struct buf *b = m->b;

	free(m->present);
	memset(m, 0, sizeof(*m));
	if (!--b->nmaps && b->fd < 0 && !b->shared)
		free_buf(b);
}

/* Check every owned byte that @m still maps, on its live pages. */
static void verify_map(struct thr *t, const char *op, struct map *m)
{
	size_t p;

	for (p = 0; p < m->npages; p++) {
		uint64_t a = max_u64(m->off + p * pg, m->b->lo);
		uint64_t e = min_u64(m->off + (p + 1) * pg, m->b->hi);

		if (page_live(m, p) && a < e)
			check_bytes(t, op, m->b, a, map_addr(m, a), e - a);
	}
}

/*
 * Touch a random byte of page @p of @m, which is dead: that must raise
 * SIGBUS, for that very address.
 */
static void expect_sigbus(struct thr *t, const char *op, struct map *m, size_t p)
{
	unsigned char *addr = m->addr + p * pg + rnd_below(t, pg), v = 0x5a;
	bool write = m->writable && rnd_below(t, 2);
	uint64_t off = m->off + (addr - m->addr);

	t->ops[OP_SIGBUS]++;
	if (!probe(addr, write, &v))
		violation(t, "%s: %s buffer %u at offset %" PRIu64 ", past its end (%" PRIu64 "), through a mapping raised no SIGBUS",
			  op, write ? "writing" : "reading", m->b->id, off, dead_from(t, m->b));
	else if (bus_addr != addr)
		violation(t, "%s: SIGBUS for %p, not for %p (buffer %u offset %" PRIu64 ")",
			  op, bus_addr, (void *)addr, m->b->id, off);
}

static bool do_open(struct thr *t)
{
	struct buf *b = NULL;
	int i, fd;

	for (i = 1; i < MAX_BUFS && !b; i++) {
		if (!t->bufs[i].used)
			b = &t->bufs[i];
	}
	if (!b)
		return false;
	t->ops[OP_OPEN]++;
	fd = open(dev, O_RDWR);
	if (fd < 0) {
		if (errno == ENOMEM) {
			t->enomem++;
			return true;
		}
		violation(t, "open %s: %s", dev, ename(errno));
		return true;
	}
	b->shadow = calloc(1, default_size);
	if (!b->shadow) {
		violation(t, "open: out of memory for the shadow");
		close(fd);
		return true;
	}
	b->used = true;
	b->fd = fd;
	b->id = ++t->next_id;
	b->size = b->hi = default_size;
	b->lo = 0;
	b->pos = 0;
	/* A new buffer has the default size and is zeroed. */
	if (size_ok(t, b, "open"))
		verify_fd(t, "open (new buffer is zeroed)", b, 0, b->size);
	else
		resync(b);
	return true;
}

static bool do_close(struct thr *t)
{
	struct buf *b = pick_buf(t, true, true, false);
	int ret;

	if (!b)
		return false;
	t->ops[OP_CLOSE]++;
	ret = close(b->fd);
	snprintf(t->what, sizeof(t->what), "close(buffer %u)", b->id);
	expect(t, ret, errno, 0, 0);
	b->fd = -1;
	if (!b->nmaps)
		free_buf(b);
	return true;
}

/*
 * A mapping that must be refused. The range checks are against the size at
 * the time of the mmap(): for the shared buffer, whose tail other threads
 * resize, past the largest tail.
 */
static void do_mmap_bad(struct thr *t, struct buf *b)
{
	int prot = PROT_READ | PROT_WRITE, flags = MAP_SHARED, exp = EINVAL;
	uint64_t off = 0, end = dead_from(t, b);
	size_t len = pg;
	void *p;

	switch (rnd_below(t, 4)) {
	case 0:
		flags = MAP_PRIVATE;
		break;
	case 1:
		off = end;
		break;
	case 2:
		off = end - pg;
		len = 2 * pg;
		break;
	default:
		prot = PROT_READ | PROT_EXEC;
		exp = EPERM;
		break;
	}
	t->ops[OP_MMAP_BAD]++;
	p = mmap(NULL, len, prot, flags, b->fd, off);
	snprintf(t->what, sizeof(t->what),
		 "mmap(buffer %u of %" PRIu64 " bytes, %zu bytes at %" PRIu64 ", prot %#x, flags %#x)",
		 b->id, end, len, off, prot, flags);
	if (p != MAP_FAILED) {
		expect(t, 0, 0, -1, exp);
		munmap(p, len);
		return;
	}
	expect(t, -1, errno, -1, exp);
}

static bool do_mmap(struct thr *t)
{
	struct buf *b = pick_buf(t, false, true, false);
	struct map *m = free_map(t);
	size_t np, pgoff, cnt;
	bool writable;
	void *p;

	if (!b || !m)
		return false;
	if (!rnd_below(t, 10)) {
		do_mmap_bad(t, b);
		return true;
	}
	np = b->size / pg;
	if (rnd_below(t, 2)) {
		pgoff = 0;
		cnt = np;
	} else {
		if (b->shared && rnd_below(t, 4))
			pgoff = (b->lo + rnd_below(t, b->hi - b->lo)) / pg;
		else
			pgoff = rnd_below(t, np);
		cnt = 1 + rnd_below(t, min_u64(np - pgoff, 64));
	}
	writable = rnd_below(t, 8);
	t->ops[OP_MMAP]++;
	p = mmap(NULL, cnt * pg, writable ? PROT_READ | PROT_WRITE : PROT_READ,
		 MAP_SHARED, b->fd, pgoff * pg);
	if (p == MAP_FAILED) {
		snprintf(t->what, sizeof(t->what),
			 "mmap(buffer %u of %" PRIu64 " bytes, %zu pages at page %zu)",
			 b->id, b->size, cnt, pgoff);
		expect(t, -1, errno, 0, 0);
		return true;
	}
	m->present = malloc(cnt);
	if (!m->present) {
		violation(t, "mmap: out of memory");
		munmap(p, cnt * pg);
		return true;
	}
	memset(m->present, 1, cnt);
	m->used = true;
	m->writable = writable;
	m->b = b;
	m->addr = p;
	m->off = pgoff * pg;
	m->npages = cnt;
	b->nmaps++;
	return true;
}

static bool do_munmap(struct thr *t)
{
	struct map *m = pick_map(t, false, 1);
	int ret;

	if (!m)
		return false;
	t->ops[OP_MUNMAP]++;
	ret = unmap_pages(m, 0, m->npages);
	snprintf(t->what, sizeof(t->what), "munmap(%zu pages of buffer %u)",
		 m->npages, m->b->id);
	expect(t, ret, errno, 0, 0);
	drop_map(m);
	return true;
}

static bool do_munmap_part(struct thr *t)
{
	struct map *m = pick_map(t, false, 2);
	size_t first, nr, p;
	int ret;

	if (!m)
		return false;
	first = rnd_below(t, m->npages);
	nr = 1 + rnd_below(t, m->npages - first);
	if (nr == m->npages)
		nr--;
	t->ops[OP_MUNMAP_PART]++;
	ret = unmap_pages(m, first, nr);
	snprintf(t->what, sizeof(t->what),
		 "munmap(pages %zu-%zu of a %zu-page mapping of buffer %u)",
		 first, first + nr - 1, m->npages, m->b->id);
	expect(t, ret, errno, 0, 0);
	for (p = 0; p < m->npages; p++) {
		if (m->present[p])
			break;
	}
	if (p == m->npages) {
		drop_map(m);
	} else if (!rnd_below(t, 4)) {
		/* The rest is still mapped, and still shows the buffer. */
		verify_map(t, "munmap (partial): rest of the mapping", m);
	}
	return true;
}

static bool do_mremap(struct thr *t)
{
	struct map *m = pick_map(t, false, 2);
	size_t first, nr, keep;
	void *old, *p;

	if (!m || !present_run(t, m, &first, &nr, m->npages, false) || nr < 2)
		return false;
	old = m->addr + first * pg;
	keep = 1 + rnd_below(t, nr - 1);
	t->ops[OP_MREMAP]++;
	p = mremap(old, nr * pg, keep * pg, 0);
	snprintf(t->what, sizeof(t->what),
		 "mremap(shrink %zu to %zu pages of buffer %u)", nr, keep,
		 m->b->id);
	if (p != old) {
		expect(t, p == MAP_FAILED ? -1 : 1, errno, 0, 0);
		return true;
	}
	memset(m->present + first + keep, 0, nr - keep);
	if (!rnd_below(t, 2))
		verify_map(t, "mremap (shrink): what is left", m);
	return true;
}

/*
 * v2: a mapping can grow (no VM_DONTEXPAND), past the end of the buffer
 * too; what lies past the end is dead (SIGBUS), what lies below it shows the
 * buffer. A run of the mapping's pages grows by 1 to 4 pages, in place or
 * moved: a mapping of its own then, unless it was the whole mapping.
 */
static bool do_mremap_grow(struct thr *t)
{
	struct map *m = pick_map(t, false, 1), *n;
	size_t first, nr, extra;
	unsigned char *present;
	bool whole;
	void *old, *q;

	if (!m || !present_run(t, m, &first, &nr, m->npages, false))
		return false;
	whole = first == 0 && nr == m->npages;
	n = whole ? m : free_map(t);
	if (!n)
		return false;
	extra = 1 + rnd_below(t, 4);
	present = malloc(nr + extra);
	if (!present) {
		violation(t, "mremap: out of memory");
		return true;
	}
	memset(present, 1, nr + extra);
	old = m->addr + first * pg;
	t->ops[OP_MREMAP_GROW]++;
	q = mremap(old, nr * pg, (nr + extra) * pg, MREMAP_MAYMOVE);
	snprintf(t->what, sizeof(t->what),
		 "mremap(grow %zu to %zu pages at page %zu of a mapping of buffer %u at offset %" PRIu64 ")",
		 nr, nr + extra, first, m->b->id, m->off);
	if (q == MAP_FAILED) {
		expect(t, -1, errno, 0, 0);
		free(present);
		return true;
	}
	if (whole) {
		free(m->present);
		m->present = present;
		m->addr = q;
		m->npages = nr + extra;
	} else {
		n->used = true;
		n->writable = m->writable;
		n->b = m->b;
		n->addr = q;
		n->off = m->off + first * pg;
		n->npages = nr + extra;
		n->present = present;
		n->b->nmaps++;
		/* Those pages of m moved (or became n in place). */
		memset(m->present + first, 0, nr);
		for (first = 0; first < m->npages && !m->present[first]; first++)
			;
		if (first == m->npages)
			drop_map(m);
	}
	if (!rnd_below(t, 2))
		verify_map(t, "mremap (grow): the grown mapping", n);
	return true;
}

static bool do_madvise(struct thr *t)
{
	struct map *m = pick_map(t, false, 1);
	size_t first, nr, p;
	int ret;

	if (!m || !present_run(t, m, &first, &nr, 64, true))
		return false;
	t->ops[OP_MADVISE]++;
	ret = madvise(m->addr + first * pg, nr * pg, MADV_DONTNEED);
	snprintf(t->what, sizeof(t->what),
		 "madvise(DONTNEED, %zu pages of buffer %u)", nr, m->b->id);
	expect(t, ret, errno, 0, 0);
	/* The data is in the buffer, not in the page tables. */
	for (p = first; p < first + nr; p++) {
		uint64_t a = max_u64(m->off + p * pg, m->b->lo);
		uint64_t e = min_u64(m->off + (p + 1) * pg, m->b->hi);

		if (a < e)
			check_bytes(t, "madvise(DONTNEED): refault", m->b, a,
				    map_addr(m, a), e - a);
	}
	return true;
}

static bool do_load(struct thr *t)
{
	struct map *m = pick_map(t, false, 1);
	uint64_t off;
	size_t len;

	if (!m || !map_range(t, m, &off, &len, IO_MAX))
		return false;
	t->ops[OP_LOAD]++;
	check_bytes(t, "load through mapping", m->b, off, map_addr(m, off), len);
	return true;
}

static bool do_store(struct thr *t)
{
	struct map *m = pick_map(t, true, 1);
	uint64_t off;
	size_t len;

	if (!m || !map_range(t, m, &off, &len, IO_MAX))
		return false;
	t->ops[OP_STORE]++;
	fill(t->io, len, rnd(t));
	memcpy(map_addr(m, off), t->io, len);
	memcpy(m->b->shadow + (off - m->b->lo), t->io, len);
	return true;
}

/*
 * pread() or read(): @positional selects, @b is private for read(). Past
 * the end of the shared buffer means past its largest tail.
 */
static void do_read_common(struct thr *t, struct buf *b, bool positional)
{
	const char *op = positional ? "pread" : "read";
	uint64_t off, avail;
	size_t len;
	ssize_t n;
	long exp;

	if (!positional) {
		off = b->pos;
		len = rnd_len(t, IO_MAX);
	} else {
		switch (rnd_below(t, 10)) {
		case 0:		/* at or after the end: 0 */
			off = dead_from(t, b) + rnd_below(t, 3) * (rnd_below(t, 2) ? pg : 1);
			len = rnd_len(t, IO_MAX);
			break;
		case 1:		/* bad user memory: EFAULT */
			pick_range(t, b, &off, &len);
			n = pread(b->fd, NULL, len, off);
			snprintf(t->what, sizeof(t->what),
				 "pread(buffer %u, NULL, %zu, %" PRIu64 ")",
				 b->id, len, off);
			expect(t, n, errno, -1, EFAULT);
			return;
		case 2:		/* across the end: short */
			if (!b->shared) {
				len = 2 + rnd_below(t, 2 * pg);
				off = b->size - min_u64(b->size, 1 + rnd_below(t, len - 1));
				break;
			}
			/* fall through */
		default:
			pick_range(t, b, &off, &len);
			break;
		}
	}
	avail = off >= b->size ? 0 : b->size - off;
	exp = min_u64(len, avail);
	n = positional ? pread(b->fd, t->io, len, off) : read(b->fd, t->io, len);
	snprintf(t->what, sizeof(t->what),
		 "%s(buffer %u of %" PRIu64 " bytes, %zu bytes at %" PRIu64 ")",
		 op, b->id, b->size, len, off);
	if (!expect(t, n, errno, exp, 0)) {
		if (n < 0)
			return;
		if (!positional)
			b->pos += n;
		exp = min_u64(n, avail);
	} else if (!positional) {
		b->pos += n;
	}
	/* Only the bytes this thread owns can be checked. */
	if (exp > 0) {
		uint64_t a = max_u64(off, b->lo), e = min_u64(off + exp, b->hi);

		if (a < e)
			check_bytes(t, op, b, a, t->io + (a - off), e - a);
	}
}

static void do_write_common(struct thr *t, struct buf *b, bool positional)
{
	const char *op = positional ? "pwrite" : "write";
	uint64_t off;
	size_t len;
	ssize_t n;
	long exp;
	int err;

	if (!positional) {
		off = b->pos;
		len = rnd_len(t, IO_MAX);
		if (!rnd_below(t, 20))
			len = 0;
	} else {
		switch (rnd_below(t, 10)) {
		case 0:		/* at or after the end: ENOSPC */
			off = dead_from(t, b) + rnd_below(t, 3) * (rnd_below(t, 2) ? pg : 1);
			len = rnd_len(t, IO_MAX);
			break;
		case 1:		/* bad user memory: EFAULT, nothing written */
			pick_range(t, b, &off, &len);
			n = pwrite(b->fd, NULL, len, off);
			snprintf(t->what, sizeof(t->what),
				 "pwrite(buffer %u, NULL, %zu, %" PRIu64 ")",
				 b->id, len, off);
			expect(t, n, errno, -1, EFAULT);
			return;
		case 2:		/* nothing, anywhere: 0 */
			off = rnd_below(t, b->size + 2 * pg);
			len = 0;
			break;
		case 3:		/* across the end: short */
			if (!b->shared) {
				len = 2 + rnd_below(t, 2 * pg);
				off = b->size - min_u64(b->size, 1 + rnd_below(t, len - 1));
				break;
			}
			/* fall through */
		default:
			pick_range(t, b, &off, &len);
			break;
		}
	}
	if (!len)
		exp = 0;
	else if (off >= b->size)
		exp = -1;
	else
		exp = min_u64(len, b->size - off);
	fill(t->io, len, rnd(t));
	n = positional ? pwrite(b->fd, t->io, len, off) : write(b->fd, t->io, len);
	err = errno;
	snprintf(t->what, sizeof(t->what),
		 "%s(buffer %u of %" PRIu64 " bytes, %zu bytes at %" PRIu64 ")",
		 op, b->id, b->size, len, off);
	if (!expect(t, n, err, exp, ENOSPC)) {
		resync(b);
		if (!positional && n > 0)
			b->pos += n;
		return;
	}
	if (n > 0) {
		memcpy(b->shadow + (off - b->lo), t->io, n);
		if (!positional)
			b->pos += n;
	}
}

/*
 * read/pread/write/pwrite: the positional forms may use the shared slice
 * (the file position of the shared file is not this thread's alone).
 */
static bool do_io(struct thr *t, int op, bool write, bool positional)
{
	struct buf *b = pick_buf(t, !positional, true, false);

	if (!b)
		return false;
	t->ops[op]++;
	if (write)
		do_write_common(t, b, positional);
	else
		do_read_common(t, b, positional);
	return true;
}

static bool do_lseek(struct thr *t)
{
	struct buf *b = pick_buf(t, true, true, false);
	int64_t size, pos, off, exp;
	struct proc *p = t->p;
	int whence;
	off_t ret;

	if (!b || rnd_below(t, 8) == 0) {
		/*
		 * The shared buffer: only what does not need its position,
		 * with a size that does not change meanwhile.
		 */
		b = &t->bufs[0];
		t->ops[OP_LSEEK]++;
		pthread_rwlock_rdlock(&p->tail_lock);
		size = p->ssize + __atomic_load_n(&p->tail_size, __ATOMIC_SEQ_CST);
		ret = lseek(b->fd, 0, SEEK_END);
		snprintf(t->what, sizeof(t->what), "lseek(shared, 0, SEEK_END)");
		expect(t, ret, errno, size, 0);
		ret = lseek(b->fd, size + 1, SEEK_SET);
		snprintf(t->what, sizeof(t->what), "lseek(shared, size + 1, SEEK_SET)");
		expect(t, ret, errno, -1, EINVAL);
		pthread_rwlock_unlock(&p->tail_lock);
		return true;
	}
	t->ops[OP_LSEEK]++;
	size = b->size;
	pos = b->pos;
	/* The target: mostly inside, often near or at the end, or outside. */
	switch (rnd_below(t, 10)) {
	case 0:
		exp = size;
		break;
	case 1:
	case 2:
		exp = size - min_u64(size, rnd_below(t, 2 * pg));
		break;
	case 3:
		exp = size + 1 + rnd_below(t, pg);
		break;
	case 4:
		exp = -1 - (int64_t)rnd_below(t, pg);
		break;
	default:
		exp = rnd_below(t, size);
		break;
	}
	switch (rnd_below(t, 8)) {
	case 0:
	case 1:
		whence = SEEK_SET;
		off = exp;
		break;
	case 2:
	case 3:
		whence = SEEK_CUR;
		off = exp - pos;
		if (!rnd_below(t, 8))
			off = 0;
		break;
	case 4:
	case 5:
		whence = SEEK_END;
		off = exp - size;
		break;
	case 6:
		whence = rnd_below(t, 2) ? SEEK_DATA : SEEK_HOLE;
		off = exp;
		break;
	default:
		whence = 5 + rnd_below(t, 100);
		off = exp;
		break;
	}
	if (whence == SEEK_CUR && !off)
		exp = pos;	/* even past the end after a shrink */
	else if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END)
		exp = -1;
	else if (exp < 0 || exp > size)
		exp = -1;
	ret = lseek(b->fd, off, whence);
	snprintf(t->what, sizeof(t->what),
		 "lseek(buffer %u of %" PRId64 " bytes at %" PRId64 ", %" PRId64 ", whence %d)",
		 b->id, size, pos, off, whence);
	if (expect(t, ret, errno, exp, EINVAL)) {
		if (ret >= 0)
			b->pos = ret;
	} else {
		ret = lseek(b->fd, 0, SEEK_CUR);
		if (ret >= 0)
			b->pos = ret;
	}
	ret = lseek(b->fd, 0, SEEK_CUR);
	snprintf(t->what, sizeof(t->what),
		 "lseek(buffer %u, 0, SEEK_CUR) after a seek", b->id);
	if (!expect(t, ret, errno, b->pos, 0) && ret >= 0)
		b->pos = ret;
	return true;
}

/* The size, as lseek(SEEK_END) gives it (v1: GET_SIZE). */
static bool do_size(struct thr *t)
{
	struct buf *b = pick_buf(t, false, true, false);

	if (!b)
		return false;
	t->ops[OP_SIZE]++;
	size_ok(t, b, "size");
	return true;
}

static uint64_t round_up_pg(uint64_t v)
{
	return (v + pg - 1) / pg * pg;
}

/* A new size for a private buffer of @old bytes: anything, often nearby. */
static uint64_t pick_size(struct thr *t, uint64_t old)
{
	uint64_t want;

	switch (rnd_below(t, 5)) {
	case 0:
	case 1:
		want = pg * (1 + rnd_below(t, MAX_PRIV_SIZE / pg));
		break;
	case 2:
		want = 1 + rnd_below(t, MAX_PRIV_SIZE);
		break;
	case 3:
		want = old;
		break;
	default:
		want = rnd_below(t, 2) || old == pg ? old + pg : old - pg;
		break;
	}
	if (max_size && want > max_size)
		want = max_size;
	return want;
}

/*
 * What @b's mappings show after its thread resized it from @old bytes (the
 * shadow is resized already): what it grew by reads as zeroes, a page it
 * kept as it was, and a mapped page it cut raises SIGBUS.
 */
static void check_maps_after_resize(struct thr *t, struct buf *b, uint64_t old,
				    const char *op)
{
	uint64_t keep = min_u64(old, b->size);
	int i;

	for (i = 0; i < MAX_MAPS; i++) {
		struct map *m = &t->maps[i];
		size_t p, q, cut = SIZE_MAX, kept = SIZE_MAX;

		if (!m->used || m->b != b)
			continue;
		p = rnd_below(t, m->npages);
		for (q = 0; q < m->npages; q++, p = (p + 1) % m->npages) {
			uint64_t a = m->off + p * pg;

			if (!m->present[p])
				continue;
			if (a >= b->size && a < old)
				cut = p;
			else if (a >= old && a < b->size)
				check_bytes(t, op, b, a, m->addr + p * pg, pg);
			else if (a + pg <= keep)
				kept = p;
		}
		if (kept != SIZE_MAX)
			check_bytes(t, op, b, m->off + kept * pg, m->addr + kept * pg, pg);
		if (cut != SIZE_MAX)
			expect_sigbus(t, op, m, cut);
	}
}

/*
 * A resize of private buffer @b, mapped or not: it must succeed (v1: EBUSY
 * while mapped), but for ENOMEM, or fail with EINVAL for a bad size.
 */
static void resize_private(struct thr *t, struct buf *b)
{
	uint64_t old = b->size, want, size, keep;
	bool mapped = b->nmaps > 0;
	const char *op = mapped ? "SET_SIZE (ok, mapped)" : "SET_SIZE (ok)";
	unsigned char *s;
	int ret, err;

	if (!rnd_below(t, 10)) {
		const uint64_t bad[] = { 0, UINT64_MAX, max_size + 1 };

		want = bad[rnd_below(t, max_size ? 3 : 2)];
		t->ops[OP_RESIZE_EINVAL]++;
		ret = set_size(b->fd, want);
		snprintf(t->what, sizeof(t->what),
			 "SET_SIZE(buffer %u to %" PRIu64 " bytes)", b->id, want);
		if (!expect(t, ret, errno, -1, EINVAL))
			resync(b);
		size_ok(t, b, "SET_SIZE (EINVAL)");
		return;
	}
	want = pick_size(t, old);
	size = round_up_pg(want);
	t->ops[mapped ? OP_RESIZE_MAPPED : OP_RESIZE]++;
	ret = set_size(b->fd, want);
	err = errno;
	snprintf(t->what, sizeof(t->what),
		 "SET_SIZE(buffer %u from %" PRIu64 " to %" PRIu64 " bytes), %s",
		 b->id, old, want, mapped ? "mapped" : "unmapped");
	if (ret && err == ENOMEM) {
		t->enomem++;
		size_ok(t, b, "SET_SIZE (ENOMEM)");
		return;
	}
	if (!expect(t, ret, err, 0, 0)) {
		resync(b);
		return;
	}
	s = realloc(b->shadow, size);
	if (!s) {
		violation(t, "resize: out of memory for the shadow");
		exit(1);
	}
	if (size > old)
		memset(s + old, 0, size - old);
	b->shadow = s;
	b->size = b->hi = size;
	if (!size_ok(t, b, op)) {
		resync(b);
		return;
	}
	/* The grown part is zero; the kept part is what it was. */
	keep = min_u64(old, size);
	if (size > old)
		verify_fd(t, "SET_SIZE (ok): grown part", b, old, size);
	verify_fd(t, "SET_SIZE (ok): last kept page", b, keep - pg, keep);
	if (keep > IO_MAX) {
		uint64_t a = rnd_below(t, keep - IO_MAX) & ~(uint64_t)(pg - 1);

		verify_fd(t, "SET_SIZE (ok): kept part", b, a, a + IO_MAX);
	} else {
		verify_fd(t, "SET_SIZE (ok): kept part", b, 0, keep);
	}
	if (mapped)
		check_maps_after_resize(t, b, old, op);
}

static bool do_resize(struct thr *t)
{
	struct buf *b = pick_buf(t, true, true, false);

	if (!b)
		return false;
	resize_private(t, b);
	return true;
}

/* pread() tail bytes [a, e) of the shared buffer: zeroes, or the pattern. */
static void tail_verify(struct thr *t, const char *op, uint64_t a, uint64_t e,
			bool zero)
{
	struct proc *p = t->p;

	while (a < e) {
		size_t len = min_u64(e - a, IO_MAX), i;
		ssize_t n = pread(p->sfd, t->io, len, p->ssize + a);

		if (n != (ssize_t)len) {
			violation(t, "%s: pread(shared buffer, %zu bytes at %" PRIu64 ") returned %zd%s%s",
				  op, len, p->ssize + a, n, n < 0 ? " " : "",
				  n < 0 ? ename(errno) : "");
			return;
		}
		for (i = 0; i < len; i++) {
			unsigned char want = zero ? 0 : tail_pat(a + i);

			if (t->io[i] != want) {
				violation(t, "%s: shared buffer offset %" PRIu64 ": expected 0x%02x, got 0x%02x",
					  op, p->ssize + a + i, want, t->io[i]);
				return;
			}
		}
		a += len;
	}
}

/* Write the pattern to tail bytes [a, e), by pwrite() or through the window. */
static void tail_write(struct thr *t, uint64_t a, uint64_t e)
{
	struct proc *p = t->p;
	uint64_t x;

	if (rnd_below(t, 2)) {
		for (x = a; x < e; x++)
			p->window[x] = tail_pat(x);
		return;
	}
	while (a < e) {
		size_t len = min_u64(e - a, IO_MAX);
		ssize_t n;

		for (x = 0; x < len; x++)
			t->io[x] = tail_pat(a + x);
		n = pwrite(p->sfd, t->io, len, p->ssize + a);
		snprintf(t->what, sizeof(t->what),
			 "pwrite(shared buffer, %zu bytes at %" PRIu64 ") of the grown tail",
			 len, p->ssize + a);
		if (!expect(t, n, errno, len, 0))
			return;
		a += len;
	}
}

/*
 * Resize the shared buffer's tail, while the other threads use their
 * slices and read the window: one such resize at a time (tail_lock for
 * writing), so that this thread knows the size and checks exactly. The
 * sequence count is odd from before the SET_SIZE until the size is stable
 * and every byte below it holds the pattern again.
 */
static void resize_tail(struct thr *t)
{
	struct proc *p = t->p;
	uint64_t base = p->ssize, old, new, x;
	unsigned char v;
	off_t end;
	int ret, err;

	pthread_rwlock_wrlock(&p->tail_lock);
	old = p->tail_size;
	new = rnd_below(t, p->tail_max / pg + 1) * pg;
	t->ops[OP_RESIZE_SHARED]++;
	__atomic_add_fetch(&p->tail_seq, 1, __ATOMIC_SEQ_CST);
	ret = set_size(p->sfd, base + new);
	err = errno;
	snprintf(t->what, sizeof(t->what),
		 "SET_SIZE(shared buffer from %" PRIu64 " to %" PRIu64 " bytes), mapped by every thread",
		 base + old, base + new);
	if (ret && err == ENOMEM) {
		t->enomem++;
		new = old;
	} else if (!expect(t, ret, err, 0, 0)) {
		new = old;
	}
	/* The size, exactly: nobody else changes it now. */
	end = lseek(p->sfd, 0, SEEK_END);
	snprintf(t->what, sizeof(t->what), "lseek(shared buffer, 0, SEEK_END) after a resize of its tail");
	if (!expect(t, end, errno, base + new, 0) && end >= (off_t)base &&
	    end <= (off_t)(base + p->tail_max) && !((end - base) % pg))
		new = end - base;	/* carry on with what the device says */
	if (new > old) {
		/* What it grew by is zeroed, for read() and through the window. */
		tail_verify(t, "SET_SIZE (shared tail): grown part", old, new, true);
		for (x = old; x < new; x += pg) {
			uint64_t y = x + rnd_below(t, pg);

			v = 0xff;
			if (probe(p->window + y, false, &v))
				violation(t, "SET_SIZE (shared tail): grown to %" PRIu64 ", SIGBUS at offset %" PRIu64 " through the window",
					  base + new, base + y);
			else if (v)
				violation(t, "SET_SIZE (shared tail): grown part at offset %" PRIu64 " reads 0x%02x through the window",
					  base + y, v);
		}
		tail_write(t, old, new);
	} else if (new < old) {
		/* A page it cut raises SIGBUS through the window. */
		x = new + rnd_below(t, old - new);
		v = 0x5a;
		t->ops[OP_SIGBUS]++;
		if (!probe(p->window + x, rnd_below(t, 2), &v))
			violation(t, "SET_SIZE (shared tail): shrunk to %" PRIu64 ", offset %" PRIu64 " raised no SIGBUS through the window",
				  base + new, base + x);
		else if (bus_addr != p->window + x)
			violation(t, "SET_SIZE (shared tail): SIGBUS for %p, not %p",
				  bus_addr, (void *)(p->window + x));
	}
	/* What is left holds the pattern. */
	tail_verify(t, "SET_SIZE (shared tail): the rest", 0, new, false);
	__atomic_store_n(&p->tail_size, new, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&p->tail_seq, 1, __ATOMIC_SEQ_CST);
	pthread_rwlock_unlock(&p->tail_lock);
}

/* Resizes of the shared buffer: its tail, or to no effect. */
static bool do_resize_shared(struct thr *t)
{
	struct proc *p = t->p;
	uint64_t size, want;
	int ret;

	if (!p->tail_max)
		return false;
	switch (rnd_below(t, 8)) {
	case 0: {
		/* A bad size: EINVAL, whatever other threads resize. */
		const uint64_t bad[] = { 0, UINT64_MAX, max_size + 1 };

		want = bad[rnd_below(t, max_size ? 3 : 2)];
		t->ops[OP_RESIZE_EINVAL]++;
		ret = set_size(p->sfd, want);
		snprintf(t->what, sizeof(t->what),
			 "SET_SIZE(shared buffer to %" PRIu64 " bytes)", want);
		expect(t, ret, errno, -1, EINVAL);
		size_ok(t, &t->bufs[0], "SET_SIZE (EINVAL, shared)");
		return true;
	}
	case 1:
	case 2:
		/*
		 * The size it has: nothing changes, so any number of threads
		 * do this at once (tail_lock for reading), and all succeed.
		 */
		pthread_rwlock_rdlock(&p->tail_lock);
		size = p->ssize + __atomic_load_n(&p->tail_size, __ATOMIC_SEQ_CST);
		t->ops[OP_RESIZE_SAME]++;
		ret = set_size(p->sfd, size);
		snprintf(t->what, sizeof(t->what),
			 "SET_SIZE(shared buffer to its size, %" PRIu64 " bytes), concurrently",
			 size);
		expect(t, ret, errno, 0, 0);
		if (!size_probe(p->sfd, size))
			violation(t, "SET_SIZE (shared, same): the shared buffer is not %" PRIu64 " bytes any more",
				  size);
		pthread_rwlock_unlock(&p->tail_lock);
		return true;
	default:
		resize_tail(t);
		return true;
	}
}

/*
 * Loads from the window, racing with resizes of the tail by other threads.
 * With the same even sequence count before and after, no resize overlapped
 * the load: below the size it must see the pattern, past it SIGBUS. Else
 * it may see SIGBUS, zero (a grown page before the pattern is written) or
 * the pattern, and nothing else: never another buffer's bytes, a freed
 * page's or a stale one's.
 */
static bool do_tail_peek(struct thr *t)
{
	struct proc *p = t->p;
	int i;

	if (!p->tail_max)
		return false;
	t->ops[OP_TAIL_PEEK]++;
	for (i = 0; i < PEEKS; i++) {
		uint64_t x = rnd_below(t, p->tail_max), s1, s2, size;
		unsigned char *addr = p->window + x, v = 0;
		bool bus;

		s1 = __atomic_load_n(&p->tail_seq, __ATOMIC_SEQ_CST);
		size = __atomic_load_n(&p->tail_size, __ATOMIC_SEQ_CST);
		bus = probe(addr, false, &v);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		s2 = __atomic_load_n(&p->tail_seq, __ATOMIC_SEQ_CST);
		if (bus && bus_addr != addr)
			violation(t, "load (racing a resize): SIGBUS for %p, not %p", bus_addr, (void *)addr);
		else if (!(s1 & 1) && s1 == s2 && x < size && bus)
			violation(t, "load (racing a resize): offset %" PRIu64 " of a %" PRIu64 "-byte shared buffer raised SIGBUS",
				  p->ssize + x, p->ssize + size);
		else if (!(s1 & 1) && s1 == s2 && x < size && v != tail_pat(x))
			violation(t, "load (racing a resize): offset %" PRIu64 " of a %" PRIu64 "-byte shared buffer: expected 0x%02x, got 0x%02x",
				  p->ssize + x, p->ssize + size, tail_pat(x), v);
		else if (!(s1 & 1) && s1 == s2 && x >= size && !bus)
			violation(t, "load (racing a resize): offset %" PRIu64 " of a %" PRIu64 "-byte shared buffer raised no SIGBUS",
				  p->ssize + x, p->ssize + size);
		else if (!bus && v && v != tail_pat(x))
			violation(t, "load (racing a resize): offset %" PRIu64 " of the shared buffer, during a resize: expected 0 or 0x%02x, got 0x%02x",
				  p->ssize + x, tail_pat(x), v);
	}
	return true;
}

/* Touch a dead page of one of this thread's mappings: SIGBUS. */
static bool do_sigbus(struct thr *t)
{
	int cand[MAX_MAPS], n = 0, i;
	struct map *m;
	size_t page;

	for (i = 0; i < MAX_MAPS; i++) {
		if (t->maps[i].used && pick_dead(t, &t->maps[i], &page))
			cand[n++] = i;
	}
	if (!n)
		return false;
	m = &t->maps[cand[rnd_below(t, n)]];
	if (!pick_dead(t, m, &page))
		return false;
	expect_sigbus(t, "access past the end", m, page);
	return true;
}

static void __attribute__((noreturn))
child_main(struct thr *t, int rfd, const struct plan *plan, int nplan)
{
	struct fork_msg msg;
	uint64_t off;
	size_t len, page;
	ssize_t n;
	int i;

	t->child = getpid();
	t->violations = 0;
	if (read(rfd, &msg, sizeof(msg)) != sizeof(msg))
		_exit(3);
	/*
	 * The parent resized this buffer while only this child mapped it:
	 * the child's mappings show what it kept, and SIGBUS past its end.
	 * (The shadow has room: the parent made it so before the fork.)
	 */
	if (msg.idx >= 0 && msg.idx < MAX_BUFS && msg.size <= msg.cap) {
		struct buf *b = &t->bufs[msg.idx];

		if (msg.size > b->size)
			memset(b->shadow + b->size, 0, msg.size - b->size);
		b->size = b->hi = msg.size;
		for (i = 0; i < MAX_MAPS; i++) {
			struct map *m = &t->maps[i];

			if (!m->used || m->b != b)
				continue;
			verify_map(t, "fork child: mapping of the buffer the parent resized", m);
			if (pick_dead(t, m, &page))
				expect_sigbus(t, "fork child: past the end the parent resized the buffer to",
					      m, page);
		}
	}
	/* What it inherited is the same as the parent's. */
	for (i = 0; i < MAX_MAPS; i++) {
		struct map *m = &t->maps[i];

		if (m->used && map_range(t, m, &off, &len, IO_MAX))
			check_bytes(t, "fork child: load through inherited mapping",
				    m->b, off, map_addr(m, off), len);
	}
	for (i = 0; i < MAX_BUFS; i++) {
		struct buf *b = &t->bufs[i];
		int ret;

		if (!b->used || b->fd < 0)
			continue;
		pick_range(t, b, &off, &len);
		verify_fd(t, "fork child: pread through inherited file", b, off,
			  off + len);
		size_ok(t, b, "fork child");
		if (b->shared || !b->nmaps)
			continue;
		/* The child maps it too: resizing it to its size succeeds (v1: EBUSY). */
		ret = set_size(b->fd, b->size);
		snprintf(t->what, sizeof(t->what),
			 "fork child: SET_SIZE(buffer %u to its size, %" PRIu64 " bytes), mapped by parent and child",
			 b->id, b->size);
		expect(t, ret, errno, 0, 0);
		size_ok(t, b, "fork child: SET_SIZE to the same size");
	}
	for (i = 0; i < nplan; i++) {
		const struct plan *pl = &plan[i];

		fill(t->io, pl->len, pl->seed);
		if (pl->m) {
			memcpy(map_addr(pl->m, pl->off), t->io, pl->len);
			continue;
		}
		n = pwrite(pl->b->fd, t->io, pl->len, pl->off);
		snprintf(t->what, sizeof(t->what),
			 "fork child: pwrite(buffer %u, %zu bytes at %" PRIu64 ")",
			 pl->b->id, pl->len, pl->off);
		expect(t, n, errno, pl->len, 0);
	}
	_exit(t->violations ? 1 : 0);
}

/*
 * Resize @busy while only a fork child maps it: the parent unmaps its own
 * mappings of it first. To @want; the shadow has room for it already.
 */
static void resize_busy(struct thr *t, struct buf *busy, uint64_t want)
{
	uint64_t old = busy->size, size = round_up_pg(want);
	int i, ret, err;

	for (i = 0; i < MAX_MAPS; i++) {
		struct map *m = &t->maps[i];

		if (m->used && m->b == busy) {
			if (unmap_pages(m, 0, m->npages))
				violation(t, "fork: munmap: %s", ename(errno));
			drop_map(m);
		}
	}
	t->ops[OP_FORK_RESIZE]++;
	ret = set_size(busy->fd, want);
	err = errno;
	snprintf(t->what, sizeof(t->what),
		 "SET_SIZE(buffer %u from %" PRIu64 " to %" PRIu64 " bytes) while only a fork child maps it",
		 busy->id, old, want);
	if (ret && err == ENOMEM) {
		t->enomem++;
	} else if (expect(t, ret, err, 0, 0)) {
		if (size > old)
			memset(busy->shadow + old, 0, size - old);
		busy->size = busy->hi = size;
	} else {
		resync(busy);
	}
	if (!size_ok(t, busy, "SET_SIZE while only a fork child maps it"))
		return;
	if (busy->size > old)
		verify_fd(t, "SET_SIZE while only a fork child maps it: grown part",
			  busy, old, busy->size);
	verify_fd(t, "SET_SIZE while only a fork child maps it: last kept page",
		  busy, min_u64(old, busy->size) - pg, min_u64(old, busy->size));
}

static bool do_fork(struct thr *t)
{
	struct fork_msg msg = { .idx = -1 };
	struct plan plan[MAX_PLAN];
	int nplan = 0, i, pfd[2], status;
	struct buf *busy = NULL;
	uint64_t want = 0;
	pid_t pid;

	/*
	 * A buffer to resize while only the child maps it, and its new size:
	 * its shadow gets room for that before the fork, so that the child
	 * can follow the resize without allocating.
	 */
	if (rnd_below(t, 2))
		busy = pick_buf(t, true, true, true);
	if (busy) {
		uint64_t cap;
		unsigned char *s;

		want = pick_size(t, busy->size);
		cap = max_u64(busy->size, round_up_pg(want));
		s = realloc(busy->shadow, cap);

		if (!s) {
			violation(t, "fork: out of memory for the shadow");
			exit(1);
		}
		busy->shadow = s;
		msg.cap = cap;
	}
	/* What the child is to write, for the parent to know: not to busy. */
	for (i = 0; i < MAX_PLAN; i++) {
		struct plan *pl = &plan[nplan];

		if (rnd_below(t, 2)) {
			struct map *m = pick_map(t, true, 1);

			if (!m || m->b == busy ||
			    !map_range(t, m, &pl->off, &pl->len, IO_MAX))
				continue;
			pl->m = m;
			pl->b = m->b;
		} else {
			pl->m = NULL;
			pl->b = pick_buf(t, false, true, false);
			if (pl->b == busy)
				continue;
			pick_range(t, pl->b, &pl->off, &pl->len);
		}
		pl->seed = rnd(t);
		nplan++;
	}
	if (pipe(pfd)) {
		violation(t, "fork: pipe: %s", ename(errno));
		return true;
	}
	t->ops[OP_FORK]++;
	pid = fork();
	if (pid < 0) {
		violation(t, "fork: %s", ename(errno));
		close(pfd[0]);
		close(pfd[1]);
		return true;
	}
	if (!pid) {
		close(pfd[1]);
		child_main(t, pfd[0], plan, nplan);
	}
	close(pfd[0]);

	/* Unmapped here but mapped in the child: the resize succeeds. */
	if (busy) {
		resize_busy(t, busy, want);
		msg.idx = busy - t->bufs;
		msg.size = busy->size;
	}
	if (write(pfd[1], &msg, sizeof(msg)) != sizeof(msg))
		violation(t, "fork: write to pipe: %s", ename(errno));
	close(pfd[1]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			violation(t, "fork: waitpid: %s", ename(errno));
			status = 0;
			break;
		}
	}
	if (WIFSIGNALED(status))
		violation(t, "fork: child %d killed by signal %d (%s)", (int)pid,
			  WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (WEXITSTATUS(status))
		violation(t, "fork: child %d exited with status %d (its violations above)",
			  (int)pid, WEXITSTATUS(status));

	/* The child's writes are in the parent's buffers. */
	for (i = 0; i < nplan; i++) {
		fill(t->io, plan[i].len, plan[i].seed);
		memcpy(plan[i].b->shadow + (plan[i].off - plan[i].b->lo), t->io,
		       plan[i].len);
	}
	for (i = 0; i < nplan; i++) {
		const struct plan *pl = &plan[i];

		if (pl->b->fd >= 0)
			verify_fd(t, "fork: what the child wrote", pl->b, pl->off,
				  pl->off + pl->len);
		else
			check_bytes(t, "fork: what the child wrote", pl->b, pl->off,
				    map_addr(pl->m, pl->off), pl->len);
	}
	return true;
}

static bool do_op(struct thr *t, enum op op)
{
	cur_op = op_names[op];
	switch (op) {
	case OP_OPEN: return do_open(t);
	case OP_CLOSE: return do_close(t);
	case OP_MMAP: return do_mmap(t);
	case OP_MUNMAP: return do_munmap(t);
	case OP_MUNMAP_PART: return do_munmap_part(t);
	case OP_MREMAP: return do_mremap(t);
	case OP_MREMAP_GROW: return do_mremap_grow(t);
	case OP_MADVISE: return do_madvise(t);
	case OP_FORK: return do_fork(t);
	case OP_READ: return do_io(t, OP_READ, false, false);
	case OP_PREAD: return do_io(t, OP_PREAD, false, true);
	case OP_WRITE: return do_io(t, OP_WRITE, true, false);
	case OP_PWRITE: return do_io(t, OP_PWRITE, true, true);
	case OP_LOAD: return do_load(t);
	case OP_STORE: return do_store(t);
	case OP_LSEEK: return do_lseek(t);
	case OP_SIZE: return do_size(t);
	case OP_RESIZE: return do_resize(t);
	case OP_RESIZE_SHARED: return do_resize_shared(t);
	case OP_SIGBUS: return do_sigbus(t);
	case OP_TAIL_PEEK: return do_tail_peek(t);
	default: return false;
	}
}

static enum op pick_op(struct thr *t)
{
	unsigned int total = 0, r;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(op_weights); i++)
		total += op_weights[i].weight;
	r = rnd_below(t, total);
	for (i = 0; r >= op_weights[i].weight; i++)
		r -= op_weights[i].weight;
	return op_weights[i].op;
}

/* Check everything once more, unmap and close. */
static void teardown(struct thr *t)
{
	int i;

	for (i = 0; i < MAX_MAPS; i++) {
		struct map *m = &t->maps[i];

		if (!m->used)
			continue;
		verify_map(t, "final check through mapping", m);
		if (unmap_pages(m, 0, m->npages))
			violation(t, "final munmap: %s", ename(errno));
		drop_map(m);
	}
	for (i = 0; i < MAX_BUFS; i++) {
		struct buf *b = &t->bufs[i];

		if (!b->used)
			continue;
		if (b->fd >= 0) {
			size_ok(t, b, "final check");
			verify_fd(t, "final check with pread", b, b->lo, b->hi);
			if (!b->shared)
				close(b->fd);
		}
		free_buf(b);
	}
}

static void *thread_main(void *arg)
{
	struct thr *t = arg;
	struct stats *st = t->p->st;
	uint64_t n = 0;
	int i;

	while (!time_up()) {
		if (!do_op(t, pick_op(t)))
			continue;
		n++;
#ifdef STRESS_SELFTEST_CORRUPT
		if (t->p->idx == 0 && t->idx == 0 && n == 100) {
			struct buf *b = &t->bufs[0];

			b->shadow[pg + 7] ^= 0x5a;
			fprintf(stderr, "stress: selftest: p0 t0 corrupts its shadow of buffer 0 at offset %" PRIu64 "\n",
				b->lo + pg + 7);
		}
#endif
	}
	cur_op = "teardown";
	teardown(t);
	for (i = 0; i < NR_OPS; i++)
		__atomic_add_fetch(&st->ops[i], t->ops[i], __ATOMIC_RELAXED);
	__atomic_add_fetch(&st->enomem, t->enomem, __ATOMIC_RELAXED);
	__atomic_add_fetch(&st->threads_done, 1, __ATOMIC_RELAXED);
	return NULL;
}

/*
 * The shared buffer's tail: grow it to its largest, map it (the window),
 * fill it with the pattern. Nothing of it exists if max_size leaves no room.
 */
static void setup_tail(struct thr *setup, struct proc *p)
{
	uint64_t tail = TAIL_PAGES * pg;
	void *w;

	if (max_size && p->ssize + tail > max_size)
		tail = max_size > p->ssize ? (max_size - p->ssize) / pg * pg : 0;
	if (!tail) {
		violation(setup, "max_size %" PRIu64 " leaves no room for a tail above %" PRIu64 " bytes",
			  max_size, p->ssize);
		return;
	}
	if (set_size(p->sfd, p->ssize + tail)) {
		violation(setup, "SET_SIZE of the shared buffer to %" PRIu64 ": %s",
			  p->ssize + tail, ename(errno));
		return;
	}
	w = mmap(NULL, tail, PROT_READ | PROT_WRITE, MAP_SHARED, p->sfd, p->ssize);
	if (w == MAP_FAILED) {
		violation(setup, "mmap of the shared buffer's tail: %s", ename(errno));
		set_size(p->sfd, p->ssize);
		return;
	}
	p->window = w;
	p->tail_max = tail;
	p->tail_size = tail;
	setup->rng = seed ^ ((uint64_t)p->idx << 32 | 0xffff);
	tail_write(setup, 0, tail);
	tail_verify(setup, "setup of the shared buffer's tail", 0, tail, false);
}

static void __attribute__((noreturn)) proc_main(int idx, struct stats *st)
{
	pthread_rwlockattr_t attr;
	struct proc p = { .idx = idx, .st = st };
	struct thr *thr, setup = { .p = &p, .idx = -1 };
	uint64_t size;
	off_t end;
	int i, ret;

	proc_stats = st;
	setup.io = malloc(IO_MAX);
	thr = calloc(nthreads, sizeof(*thr));
	if (!setup.io || !thr) {
		fprintf(stderr, "stress: p%d: out of memory\n", idx);
		exit(1);
	}
	p.sfd = open(dev, O_RDWR);
	end = p.sfd < 0 ? -1 : lseek(p.sfd, 0, SEEK_END);
	if (end < 0) {
		fprintf(stderr, "stress: p%d: open %s: %s\n", idx, dev,
			strerror(errno));
		exit(1);
	}
	size = end;
	if (size != default_size)
		violation(&setup, "open: size %" PRIu64 " (lseek SEEK_END), expected the default %" PRIu64,
			  size, default_size);
	/* At least four pages per thread. */
	p.slice = size / nthreads / pg * pg;
	if (p.slice < 4 * pg) {
		p.slice = 4 * pg;
		size = p.slice * nthreads;
		if (set_size(p.sfd, size))
			violation(&setup, "SET_SIZE of an unmapped buffer to %" PRIu64 ": %s",
				  size, ename(errno));
	}
	p.ssize = size;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
				      PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&p.tail_lock, &attr);
	setup_tail(&setup, &p);

	for (i = 0; i < nthreads; i++) {
		struct thr *t = &thr[i];
		struct buf *b = &t->bufs[0];
		int j;

		t->p = &p;
		t->idx = i;
		t->rng = seed ^ ((uint64_t)idx << 32 | (uint64_t)i << 16);
		splitmix64(&t->rng);
		t->io = malloc(IO_MAX);
		for (j = 0; j < MAX_BUFS; j++)
			t->bufs[j].fd = -1;
		b->used = true;
		b->shared = true;
		b->fd = p.sfd;
		b->size = p.ssize;
		b->lo = i * p.slice;
		b->hi = b->lo + p.slice;
		b->shadow = calloc(1, p.slice);
		if (!t->io || !b->shadow) {
			fprintf(stderr, "stress: p%d: out of memory\n", idx);
			exit(1);
		}
		/* A new buffer is zeroed. */
		verify_fd(t, "open (new shared buffer is zeroed)", b, b->lo, b->hi);
	}
	for (i = 0; i < nthreads; i++) {
		ret = pthread_create(&thr[i].tid, NULL, thread_main, &thr[i]);
		if (ret) {
			fprintf(stderr, "stress: p%d: pthread_create: %s\n", idx,
				strerror(ret));
			exit(1);
		}
	}
	for (i = 0; i < nthreads; i++)
		pthread_join(thr[i].tid, NULL);

	cur_op = "final check";
	/* Nobody wrote past the last slice, below the base. */
	{
		struct buf gap = {
			.fd = p.sfd, .lo = p.slice * nthreads, .hi = p.ssize,
			.size = p.ssize,
		};

		gap.shadow = calloc(1, gap.hi - gap.lo + 1);
		if (gap.shadow)
			verify_fd(&setup, "final check of the unowned gap", &gap,
				  gap.lo, gap.hi);
		free(gap.shadow);
	}
	/* The tail: its size, its pattern, and SIGBUS past it. */
	if (p.tail_max) {
		end = lseek(p.sfd, 0, SEEK_END);
		snprintf(setup.what, sizeof(setup.what), "final lseek(shared buffer, 0, SEEK_END)");
		expect(&setup, end, errno, p.ssize + p.tail_size, 0);
		tail_verify(&setup, "final check of the shared buffer's tail", 0, p.tail_size, false);
		if (p.tail_size < p.tail_max) {
			unsigned char v;

			if (!probe(p.window + p.tail_max - 1, false, &v))
				violation(&setup, "final check: the window raised no SIGBUS past the tail (%" PRIu64 " bytes)",
					  p.tail_size);
		}
		munmap(p.window, p.tail_max);
	}
	close(p.sfd);
	exit(0);
}

static uint64_t read_param(const char *name)
{
	char path[128];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/mmap_buf/parameters/%s", name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Usage: %s [-p PROCS] [-t THREADS] [-d SECONDS] [-s SEED] [DEVICE]\n"
		"Stress DEVICE (default /dev/mmap_buf) with PROCS processes (2) of\n"
		"THREADS threads (4) for SECONDS (20), from SEED (%#" PRIx64 ").\n"
		"Prints TAP; exits 0 only if no invariant was violated.\n",
		prog, seed);
}

static double elapsed(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) + (b->tv_nsec - a->tv_nsec) / 1e9;
}

int main(int argc, char **argv)
{
	struct stats total = { 0 }, *st;
	struct sigaction sa = { 0 };
	int opt, i, j, fd, live, finished = 0, threads_done = 0;
	bool all_ran = true;
	struct timespec now;
	uint64_t ops = 0;
	pid_t *pids;
	off_t size;
	double secs;
	char *end;

	while ((opt = getopt(argc, argv, "p:t:d:s:h")) != -1) {
		switch (opt) {
		case 'p':
			nprocs = strtol(optarg, &end, 0);
			if (*end || nprocs < 1 || nprocs > 64)
				goto bad;
			break;
		case 't':
			nthreads = strtol(optarg, &end, 0);
			if (*end || nthreads < 1 || nthreads > 64)
				goto bad;
			break;
		case 'd':
			duration = strtoul(optarg, &end, 0);
			if (*end || duration < 1 || duration > 86400)
				goto bad;
			break;
		case 's':
			seed = strtoull(optarg, &end, 0);
			if (*end)
				goto bad;
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind < argc - 1)
		goto bad;
	if (optind == argc - 1)
		dev = argv[optind];
	pg = sysconf(_SC_PAGESIZE);
	/* SIGBUS: caught where expected (SA_NODEFER: again and again). */
	sa.sa_sigaction = fatal_signal;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);

	ksft_print_header();
	ksft_set_plan(4);
	fd = open(dev, O_RDWR);
	size = fd < 0 ? -1 : lseek(fd, 0, SEEK_END);
	if (size <= 0) {
		printf("Bail out! %s: %s\n", dev, strerror(errno));
		return 1;
	}
	close(fd);
	default_size = size;
	max_size = read_param("max_size");
	printf("# stress: %s, %d processes x %d threads, %u s, seed %#" PRIx64 "\n",
	       dev, nprocs, nthreads, duration, seed);
	printf("# buffer: default size %" PRIu64 " bytes, max_size %" PRIu64 "%s\n",
	       default_size, max_size, max_size ? "" : " (unknown)");
	fflush(stdout);

	st = mmap(NULL, nprocs * sizeof(*st), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pids = calloc(nprocs, sizeof(*pids));
	if (st == MAP_FAILED || !pids) {
		printf("Bail out! out of memory\n");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t_start);
	t_end = t_start;
	t_end.tv_sec += duration;
	for (i = 0; i < nprocs; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			printf("Bail out! fork: %s\n", strerror(errno));
			break;
		}
		if (!pids[i])
			proc_main(i, &st[i]);
	}

	/* Reap them; kill those still running long after the end. */
	for (live = i; live > 0;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid > 0) {
			live--;
			for (j = 0; j < nprocs && pids[j] != pid; j++)
				;
			if (j < nprocs)
				pids[j] = 0;
			if (j < nprocs && WIFEXITED(status) && !WEXITSTATUS(status)) {
				finished++;
			} else if (j < nprocs) {
				printf("# process %d: %s %d\n", j,
				       WIFSIGNALED(status) ? "killed by signal" : "exit status",
				       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			}
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > t_end.tv_sec + GRACE_SECS) {
			printf("# processes still running %d s after the end: killed\n",
			       GRACE_SECS);
			for (j = 0; j < nprocs; j++) {
				if (pids[j] > 0)
					kill(pids[j], SIGKILL);
			}
			t_end.tv_sec += 3600;
		}
		usleep(50000);
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	secs = elapsed(&t_start, &now);

	for (i = 0; i < nprocs; i++) {
		for (j = 0; j < NR_OPS; j++)
			total.ops[j] += st[i].ops[j];
		total.violations += st[i].violations;
		total.enomem += st[i].enomem;
		threads_done += st[i].threads_done;
	}
	for (j = 0; j < NR_OPS; j++)
		ops += total.ops[j];

	printf("# duration %.1f s, %" PRIu64 " operations, %.0f ops/s\n", secs,
	       ops, secs > 0 ? ops / secs : 0);
	for (j = 0; j < NR_OPS; j++) {
		printf("#   %-24s %10" PRIu64 "\n", op_names[j], total.ops[j]);
		if (!total.ops[j])
			all_ran = false;
	}
	if (total.enomem)
		printf("# ENOMEM (allowed, not a violation): %" PRIu64 "\n",
		       total.enomem);
	printf("# violations: %" PRIu64 "\n", total.violations);
	printf("# figure: stress seconds=%.1f operations=%" PRIu64
	       " ops_per_s=%.0f violations=%" PRIu64 "\n", secs, ops,
	       secs > 0 ? ops / secs : 0, total.violations);
	printf("# processes finished: %d of %d, threads: %d of %d\n", finished,
	       nprocs, threads_done, nprocs * nthreads);

	ksft_test_result(!total.violations, "0 invariant violations\n");
	ksft_test_result(finished == nprocs && threads_done == nprocs * nthreads,
			 "every process and thread finished\n");
	ksft_test_result(ops && secs > 0, "ops/s > 0\n");
	ksft_test_result(all_ran, "every kind of operation ran at least once\n");
	ksft_print_cnts();
	return ksft_get_fail_cnt() ? KSFT_FAIL : KSFT_PASS;
bad:
	usage(stderr, argv[0]);
	return 2;
}
