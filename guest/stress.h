/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The stress test of /dev/mmap_buf, whose design the comment at the top of
 * stress.c describes, is in three files:
 *
 *  - stress.c: main(), which parses the options, forks the processes,
 *    reaps them and prints the summary and TAP; proc_main(), a process:
 *    its shared buffer, the tail's setup and window, its threads and the
 *    final checks; thread_main(), a thread's loop, and teardown();
 *  - stress-model.c: the shadow model and the checks against it: catching
 *    the expected SIGBUS (fatal_signal(), probe()), the random numbers,
 *    violation() and expect(), checking bytes (check_bytes(), verify_fd(),
 *    verify_map(), expect_sigbus()) and sizes (size_ok(), resync()),
 *    picking buffers, mappings and byte ranges, and which pages of a
 *    mapping are live or dead;
 *  - stress-ops.c: the operations, do_open() to do_fork(), with the table
 *    of their names and weights, the resizes of private buffers and of the
 *    shared tail, and the fork child; the threads call pick_op() and
 *    do_op().
 *
 * This header has what more than one of them uses: the types, the globals
 * and the functions that are not static.
 */
#ifndef MMAP_BUF_GUEST_STRESS_H
#define MMAP_BUF_GUEST_STRESS_H

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

/*
 * stress.c: the page size, the device, its default size and max_size
 * parameter (0: unknown), what the thread does (for fatal_signal()), and
 * the process's stats (NULL in the top process).
 */
extern size_t pg;
extern const char *dev;
extern uint64_t default_size, max_size;
extern __thread const char *cur_op;
extern struct stats *proc_stats;

/* stress-model.c: the address of the SIGBUS that probe() caught. */
extern __thread void *volatile bus_addr;

void fatal_signal(int sig, siginfo_t *si, void *uc);
bool probe(unsigned char *addr, bool write, unsigned char *val);
uint64_t splitmix64(uint64_t *s);
uint64_t rnd(struct thr *t);
uint64_t rnd_below(struct thr *t, uint64_t n);
void fill(unsigned char *p, size_t len, uint64_t s);
unsigned char tail_pat(uint64_t x);
uint64_t min_u64(uint64_t a, uint64_t b);
uint64_t max_u64(uint64_t a, uint64_t b);
const char *ename(int err);
void __attribute__((format(printf, 2, 3)))
violation(struct thr *t, const char *fmt, ...);
bool expect(struct thr *t, long ret, int err, long exp, int exp_err);
void check_bytes(struct thr *t, const char *op, struct buf *b,
		 uint64_t off, const unsigned char *got, size_t len);
void verify_fd(struct thr *t, const char *op, struct buf *b,
	       uint64_t a, uint64_t e);
int set_size(int fd, uint64_t size);
bool size_probe(int fd, uint64_t size);
uint64_t dead_from(const struct thr *t, const struct buf *b);
bool size_ok(struct thr *t, struct buf *b, const char *op);
void resync(struct buf *b);
size_t rnd_len(struct thr *t, size_t max);
void pick_range(struct thr *t, struct buf *b, uint64_t *off, size_t *len);
struct buf *pick_buf(struct thr *t, bool priv, bool need_fd,
		     bool need_mapped);
struct map *pick_map(struct thr *t, bool writable, size_t min_pages);
struct map *free_map(struct thr *t);
bool present_run(struct thr *t, struct map *m, size_t *first,
		 size_t *nr, size_t max, bool live);
bool pick_dead(struct thr *t, struct map *m, size_t *page);
bool map_range(struct thr *t, struct map *m, uint64_t *off, size_t *len,
	       size_t max);
unsigned char *map_addr(struct map *m, uint64_t off);
int unmap_pages(struct map *m, size_t first, size_t nr);
void free_buf(struct buf *b);
void drop_map(struct map *m);
void verify_map(struct thr *t, const char *op, struct map *m);
void expect_sigbus(struct thr *t, const char *op, struct map *m, size_t p);

/* stress-ops.c: the operations' names, for the summary too. */
extern const char *const op_names[NR_OPS];

void tail_verify(struct thr *t, const char *op, uint64_t a, uint64_t e,
		 bool zero);
void tail_write(struct thr *t, uint64_t a, uint64_t e);
bool do_op(struct thr *t, enum op op);
enum op pick_op(struct thr *t);

#endif /* MMAP_BUF_GUEST_STRESS_H */
