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
 * The code is in three files, which share stress.h: this one, with main(),
 * the processes and their threads; stress-model.c, the shadow model and
 * the checks against it; stress-ops.c, the operations.
 *
 * Build with the driver's private header, from the kernel tree:
 *	gcc -O2 -Wall -Wextra -Werror -pthread -I<kernel tree> \
 *		-o stress stress.c stress-model.c stress-ops.c
 * Add -DSTRESS_SELFTEST_CORRUPT to check that the test can fail: the first
 * thread then corrupts its shadow once, which must be reported.
 */
#include "stress.h"

/* The run. Those that are not static are described in stress.h. */
size_t pg;
const char *dev = "/dev/mmap_buf";
uint64_t default_size, max_size;
static int nprocs = 2, nthreads = 4;
static unsigned int duration = 20;
static uint64_t seed = 0x6d6d61705f627566ULL;	/* "mmap_buf" */
static struct timespec t_start, t_end;
__thread const char *cur_op = "setup";
struct stats *proc_stats;

static bool time_up(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t_end.tv_sec ||
	       (now.tv_sec == t_end.tv_sec && now.tv_nsec >= t_end.tv_nsec);
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

/*
 * What the kernel did for the run's allocations (/proc/vmstat): direct
 * compaction and reclaim, and migration. A run far slower than another
 * is told apart by them from one slowed by something else.
 */
static const char *const vm_keys[] = {
	"compact_stall", "compact_fail", "compact_success", "allocstall_normal",
	"allocstall_movable", "pgscan_direct", "pgmigrate_success",
};

/* The counters of vm_keys; -1 for one this kernel does not have. */
static void vm_counts(long long *v)
{
	char key[64];
	long long n;
	size_t i;
	FILE *f;

	for (i = 0; i < ARRAY_SIZE(vm_keys); i++)
		v[i] = -1;
	f = fopen("/proc/vmstat", "r");
	if (!f)
		return;
	while (fscanf(f, "%63s %lld", key, &n) == 2) {
		for (i = 0; i < ARRAY_SIZE(vm_keys); i++)
			if (!strcmp(key, vm_keys[i]))
				v[i] = n;
	}
	fclose(f);
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
	long long vm0[ARRAY_SIZE(vm_keys)], vm1[ARRAY_SIZE(vm_keys)];
	uint64_t ops = 0;
	pid_t *pids;
	size_t k;
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
	vm_counts(vm0);
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
	vm_counts(vm1);

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
	/* A counter this kernel does not have is left out. */
	printf("# figure: stress-vm");
	for (k = 0; k < ARRAY_SIZE(vm_keys); k++)
		if (vm0[k] >= 0 && vm1[k] >= 0)
			printf(" %s=%lld", vm_keys[k], vm1[k] - vm0[k]);
	printf("\n");
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
