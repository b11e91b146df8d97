// SPDX-License-Identifier: GPL-2.0
/*
 * Lifetime, leak and security checks of /dev/mmap_buf, run as root in the
 * guest by scripts/guest-tests. One subcommand per section; each prints KTAP
 * and exits 0 only if every check passed:
 *
 *   reliability lifetime [CYCLES]
 *	The last munmap() of a buffer whose file is closed frees it without
 *	holding mmap_lock. The module cannot be unloaded while a file is
 *	open, nor while only a mapping remains (that mapping keeps working),
 *	and can be once the last mapping is gone. Then CYCLES (100) load /
 *	open / map / touch / unload cycles.
 *   reliability leak [CYCLES] [--report-only]
 *	A buffer survives drop_caches and compaction. Then CYCLES (10000)
 *	open / resize / mmap / touch / resize while mapped / munmap / close
 *	cycles in a memory cgroup of their own; the cgroup's charge, and
 *	MemFree (plus the pages on the per-CPU free lists), Slab and
 *	VmallocUsed from /proc/meminfo, must come back to where they were.
 *	--report-only prints the deltas without judging them (under KASAN,
 *	whose quarantine holds freed objects back).
 *   reliability security
 *	The device node is root's and 0600, other users cannot open it,
 *	memory reaches user space zeroed (a new buffer, a grown one, and
 *	what a shrink and grow shows through a mapping that stayed), and a
 *	buffer is charged to its opener's memory cgroup, as file memory.
 *
 * The module is loaded by modprobe(8) with the parameters the caller gives.
 *
 * v2 of the driver: the buffer is the page cache of an inode of its own,
 * charged to the memory cgroup as file pages (memory.stat "file"; v1's were
 * kernel memory, "kernel"); it is freed when the last file reference goes,
 * at the last close() or munmap(). It can be resized while mapped: the leak
 * cycles and the security checks do that too. The helpers (TAP output,
 * the ioctl) are in common.h.
 */
#define _GNU_SOURCE
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#include "common.h"

#define CG	CGROOT "/mmap_buf_reliability"

static size_t ps;

/* --- lifetime -------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

#define PROBES	(1 << 20)

/* A thread that times mmap() + munmap() of an anonymous page, in a loop. */
struct prober {
	pthread_t thread;
	int stop, running;			/* __atomic */
	size_t n;
	uint64_t t[PROBES][2];			/* start, end of each call pair */
};

static void *prober_fn(void *arg)
{
	struct prober *pr = arg;

	__atomic_store_n(&pr->running, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&pr->stop, __ATOMIC_ACQUIRE) && pr->n < PROBES) {
		uint64_t t0 = now_ns();
		void *q = mmap(NULL, ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (q != MAP_FAILED)
			munmap(q, ps);
		pr->t[pr->n][0] = t0;
		pr->t[pr->n][1] = now_ns();
		pr->n++;
	}
	return NULL;
}

#define MAX_FOLIO_ORDER	"/sys/module/" MODULE "/parameters/max_folio_order"

static long param_read(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/module/%s/parameters/%s", MODULE, name);
	return (long)read_ll(path);
}

/*
 * The last reference to a buffer can be its last mapping, after close():
 * munmap() then frees it. munmap() holds mmap_lock while it removes the
 * VMAs and calls their ->close, so a buffer freed from there (as v1 freed
 * its pages and vunmap()ed them in the last ->close) stalls every other
 * thread of the process that wants mmap_lock for as long as the free takes.
 * The free must happen after mmap_lock is dropped (the file's last fput()).
 *
 * A buffer as large as max_size allows (up to 256 MiB), of single pages
 * (max_folio_order=0 while it is opened: freeing PMD-sized folios can take
 * under the 5 ms this needs to tell, and did), mapped by one page: the
 * munmap() zaps one PTE and frees every page of the buffer. Meanwhile another thread
 * maps and unmaps an anonymous page in a loop; its longest call that
 * overlaps the munmap() must take under half the munmap()'s time.
 */
static void free_outside_mmap_lock(void)
{
	uint64_t start, end, worst = 0, size;
	char order[32];
	struct prober *pr;
	unsigned char *p;
	long max_size, max_order;
	size_t i, overlapping = 0;
	int fd;

	max_size = param_read("max_size");
	size = max_size > 256L << 20 ? 256ULL << 20 : (uint64_t)max_size;
	pr = calloc(1, sizeof(*pr));
	max_order = param_read("max_folio_order");
	if (max_order < 0 || write_str(MAX_FOLIO_ORDER, "0")) {
		check(0, "free outside mmap_lock: max_folio_order=0: %s", strerror(errno));
		free(pr);
		return;
	}
	fd = open(DEV, O_RDWR);
	snprintf(order, sizeof(order), "%ld", max_order);
	if (write_str(MAX_FOLIO_ORDER, order))
		check(0, "free outside mmap_lock: max_folio_order=%s back: %s", order,
		      strerror(errno));
	if (!pr || fd < 0 || max_size <= 0 || set_size(fd, size)) {
		check(0, "free outside mmap_lock: set up a %" PRIu64 " MiB buffer: %s",
		      size >> 20, strerror(errno));
		goto out;
	}
	p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		check(0, "free outside mmap_lock: mmap: %s", strerror(errno));
		goto out;
	}
	p[0] = 1;
	close(fd);
	fd = -1;
	if (pthread_create(&pr->thread, NULL, prober_fn, pr)) {
		check(0, "free outside mmap_lock: pthread_create");
		munmap(p, ps);
		goto out;
	}
	while (!__atomic_load_n(&pr->running, __ATOMIC_ACQUIRE))
		usleep(1000);
	usleep(20000);
	start = now_ns();
	munmap(p, ps);
	end = now_ns();
	usleep(20000);
	__atomic_store_n(&pr->stop, 1, __ATOMIC_RELEASE);
	pthread_join(pr->thread, NULL);

	for (i = 0; i < pr->n; i++) {
		if (pr->t[i][1] < start || pr->t[i][0] > end)
			continue;
		overlapping++;
		if (pr->t[i][1] - pr->t[i][0] > worst)
			worst = pr->t[i][1] - pr->t[i][0];
	}
	diag("munmap() freeing %" PRIu64 " MiB took %.1f ms; the other thread's longest mmap()+munmap() during it %.1f ms (%zu calls overlapped)",
	     size >> 20, (end - start) / 1e6, worst / 1e6, overlapping);
	if (end - start < 5000000) {
		skip("the last munmap() frees the buffer outside mmap_lock: the free took under 5 ms, too fast to tell");
		goto out;
	}
	check(overlapping > 0 && worst < (end - start) / 2,
	      "the last munmap() frees the buffer outside mmap_lock: another thread's mmap() waited %.1f ms of the %.1f ms",
	      worst / 1e6, (end - start) / 1e6);
out:
	if (fd >= 0)
		close(fd);
	free(pr);
}

static int lifetime(int cycles)
{
	unsigned char *p;
	int fd, err, r, i, bad = 0, first_bad = -1;

	if (!module_loaded() && load())
		return fprintf(stderr, "cannot load %s\n", MODULE), 2;

	free_outside_mmap_lock();

	fd = open(DEV, O_RDWR);
	check(fd >= 0, "open %s", DEV);
	if (fd < 0)
		return finish();
	r = unload();
	err = errno;
	check(r == -1 && err == EWOULDBLOCK,
	      "unload with a file open fails with EWOULDBLOCK, i.e. EAGAIN (got %s)",
	      r ? strerrorname_np(err) : "success");

	p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	check(p != MAP_FAILED, "map a page");
	if (p == MAP_FAILED)
		return finish();
	p[0] = 0x42;
	close(fd);
	r = unload();
	err = errno;
	check(r == -1 && err == EWOULDBLOCK,
	      "unload with only a mapping left fails with EWOULDBLOCK, i.e. EAGAIN (got %s)",
	      r ? strerrorname_np(err) : "success");
	check(module_loaded(), "the module is still loaded");
	p[ps - 1] = 0x43;
	check(p[0] == 0x42 && p[ps - 1] == 0x43 && is_zero(p + 1, ps - 2),
	      "the mapping still works");

	/* A forked child's copy of the mapping pins the module as well. */
	if (fork() == 0) {
		usleep(300000);
		_exit(p[0] == 0x42 ? 0 : 1);
	}
	munmap(p, ps);
	r = unload();
	err = errno;
	check(r == -1 && err == EWOULDBLOCK,
	      "unload while only a child maps it fails with EWOULDBLOCK, i.e. EAGAIN (got %s)",
	      r ? strerrorname_np(err) : "success");
	wait(&r);
	check(WIFEXITED(r) && WEXITSTATUS(r) == 0, "the child read the buffer");

	r = unload();
	check(r == 0 && !module_loaded(), "unload after the last unmap succeeds%s%s",
	      r ? ": " : "", r ? strerror(errno) : "");

	for (i = 0; i < cycles; i++) {
		int ok = 0;

		if (load())
			goto cycle_done;
		fd = open(DEV, O_RDWR);
		if (fd < 0)
			goto cycle_done;
		p = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p != MAP_FAILED) {
			ok = is_zero(p, 2 * ps);
			p[ps] = (unsigned char)i;
			ok &= pread(fd, p, 1, ps) == 1 && p[0] == (unsigned char)i;
			munmap(p, 2 * ps);
		}
		close(fd);
		ok &= unload() == 0 && !module_loaded();
cycle_done:
		if (!ok) {
			bad++;
			if (first_bad < 0)
				first_bad = i;
		}
	}
	check(!bad, "%d load/open/map/touch/unload cycles: %d failed%s", cycles, bad,
	      first_bad >= 0 ? " (first failure logged below)" : "");
	if (first_bad >= 0)
		diag("first failed cycle: %d (%s)", first_bad, strerror(errno));
	if (!module_loaded())
		load();
	return finish();
}

/* --- leak ------------------------------------------------------------ */

struct snap {
	long long memfree, slab, sunreclaim, vmalloc, pagetables;	/* KiB */
	long long memcg;						/* bytes */
	long long pcp;		/* KiB on per-CPU free lists, in MemFree's "used" */
};

/*
 * The pages on the per-CPU free lists of every zone (the "count:" lines of
 * /proc/zoneinfo's pagesets), in KiB. They are free, but MemFree counts them
 * as used, and nothing user space can call drains them; their limit is
 * tuned at run time to several MiB a CPU (and a THP kernel keeps PMD-order
 * pages there too), which would drown a leak of a page per ten cycles.
 */
static long long pcp_kib(void)
{
	char line[256];
	long long n = 0, v;
	FILE *f = fopen("/proc/zoneinfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " count: %lld", &v) == 1)
			n += v;
	fclose(f);
	return n * (long long)sysconf(_SC_PAGESIZE) / 1024;
}

static long long meminfo(const char *buf, const char *key)
{
	const char *p = strstr(buf, key);

	return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

static void settle(void)
{
	/* Let RCU-deferred frees and per-CPU caches drain. */
	sync();
	write_str("/proc/sys/vm/drop_caches", "3");
	usleep(500000);
	write_str("/proc/sys/vm/drop_caches", "3");
	write_str("/proc/sys/vm/compact_memory", "1");
	usleep(500000);
}

static void take(struct snap *s, int have_cg)
{
	char buf[8192];
	int fd = open("/proc/meminfo", O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	s->memfree = meminfo(buf, "MemFree:");
	s->pcp = pcp_kib();
	s->slab = meminfo(buf, "Slab:");
	s->sunreclaim = meminfo(buf, "SUnreclaim:");
	s->vmalloc = meminfo(buf, "VmallocUsed:");
	s->pagetables = meminfo(buf, "PageTables:");
	s->memcg = have_cg ? read_ll(CG "/memory.current") : -1;
}

/*
 * One cycle; 0 if every step did what it should. v2: the buffer is shrunk
 * and grown back while mapped, so that the cycle also frees pages that are
 * mapped (the truncation of a live mapping) and adds pages under it.
 */
static int leak_cycle(unsigned int *seed)
{
	size_t pages = 1 + rand_r(seed) % 64, keep = 1 + rand_r(seed) % pages, i;
	unsigned char *p;
	int fd, ok;

	fd = open(DEV, O_RDWR);
	if (fd < 0)
		return -1;
	ok = !set_size(fd, pages * ps);
	p = mmap(NULL, pages * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED) {
		for (i = 0; i < pages; i++) {
			ok &= p[i * ps] == 0;
			p[i * ps + i % ps] = 1;
		}
		/* Pages from keep on are cut, then come back zeroed. */
		if (keep < pages)
			ok &= !set_size(fd, keep * ps) && !set_size(fd, pages * ps);
		for (i = 0; i < pages; i++)
			ok &= p[i * ps + i % ps] == (i < keep ? 1 : 0);
		munmap(p, pages * ps);
	} else {
		ok = 0;
	}
	close(fd);
	return ok ? 0 : -1;
}

/* 0 if a patterned 64-page buffer comes out of settle() unchanged. */
static int keeps_contents(void)
{
	size_t len = 64 * ps, i;
	unsigned char *p, *q;
	int fd, ok;

	fd = open(DEV, O_RDWR);
	if (fd < 0)
		return -1;
	q = malloc(len);
	p = set_size(fd, len) ? MAP_FAILED :
		mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ok = q && p != MAP_FAILED;
	if (ok) {
		for (i = 0; i < len; i++)
			p[i] = (unsigned char)(i * 7 + i / ps + 1);
		settle();
		ok = pread(fd, q, len, 0) == (ssize_t)len && !memcmp(p, q, len);
		for (i = 0; ok && i < len; i++)
			ok = p[i] == (unsigned char)(i * 7 + i / ps + 1);
	}
	if (p != MAP_FAILED)
		munmap(p, len);
	free(q);
	close(fd);
	return ok ? 0 : -1;
}

static int leak(int cycles, int report_only)
{
	unsigned int seed = 1;
	struct snap a, b;
	int have_cg, i, bad = 0;
	struct timespec t0, t1;
	double secs;

	if (!module_loaded() && load())
		return fprintf(stderr, "cannot load %s\n", MODULE), 2;
	have_cg = enter_cgroup(CG);
	if (!have_cg)
		diag("no cgroup v2 memory controller: MemFree, Slab and VmallocUsed only");

	/*
	 * v2: the buffer is page cache, but dirty and unevictable: dropping
	 * the caches (as settle() does) and compaction must not lose it.
	 */
	check(!keeps_contents(), "a buffer keeps its contents across drop_caches and compaction");

	/* Warm up: slab caches, page tables and vmap areas reach their size. */
	for (i = 0; i < 500; i++)
		bad += !!leak_cycle(&seed);
	settle();
	take(&a, have_cg);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < cycles; i++)
		bad += !!leak_cycle(&seed);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	settle();
	take(&b, have_cg);

	check(!bad, "%d open/resize/mmap/touch/resize-while-mapped/munmap/close cycles (1-64 pages) in %.1f s: %d failed",
	      cycles, secs, bad);
	diag("deltas over %d cycles: MemFree %+lld KiB (per-CPU free lists %+lld KiB), Slab %+lld KiB (SUnreclaim %+lld), VmallocUsed %+lld KiB, PageTables %+lld KiB, memcg %+lld bytes",
	     cycles, b.memfree - a.memfree, b.pcp - a.pcp, b.slab - a.slab,
	     b.sunreclaim - a.sunreclaim,
	     b.vmalloc - a.vmalloc, b.pagetables - a.pagetables,
	     have_cg ? b.memcg - a.memcg : 0);
	printf("# figure: leak cycles=%d memfree_kib=%lld pcp_kib=%lld slab_kib=%lld sunreclaim_kib=%lld vmalloc_kib=%lld pagetables_kib=%lld memcg_bytes=%lld seconds=%.1f\n",
	       cycles, b.memfree - a.memfree, b.pcp - a.pcp, b.slab - a.slab,
	       b.sunreclaim - a.sunreclaim,
	       b.vmalloc - a.vmalloc, b.pagetables - a.pagetables,
	       have_cg ? b.memcg - a.memcg : 0, secs);
	if (report_only) {
		diag("--report-only: deltas not judged");
	} else {
		/*
		 * Noise: per-CPU free page lists, and memcg's per-CPU charge
		 * batches (64 pages a CPU). Every cycle allocates 1 to 64
		 * page cache pages (and again up to 63 after the shrink), an
		 * inode and the xarray nodes of its page cache, and, since no
		 * other buffer exists meanwhile, mounts the driver's pseudo
		 * file system (a super block and a mount) and unmounts it at
		 * the close: a leak of any of them in one cycle out of ten
		 * shows. The driver allocates nothing with vmalloc any more;
		 * VmallocUsed must not grow all the same.
		 */
		long long lim_pages = (long long)cycles / 10 * (long long)ps;

		long long fell = (a.memfree + a.pcp) - (b.memfree + b.pcp);

		check(fell < lim_pages / 1024,
		      "MemFree, with the per-CPU free lists, fell by less than a page per 10 cycles (%+lld KiB)",
		      -fell);
		check(b.slab - a.slab < cycles * 32 / 10 / 1024 + 64,
		      "Slab grew by less than 32 bytes per 10 cycles, plus 64 KiB (%+lld KiB)",
		      b.slab - a.slab);
		check(b.vmalloc - a.vmalloc < (long long)ps / 1024 * 4,
		      "VmallocUsed grew by less than 4 pages (%+lld KiB)", b.vmalloc - a.vmalloc);
		if (have_cg)
			check(b.memcg - a.memcg < lim_pages,
			      "the memory cgroup's charge grew by less than a page per 10 cycles (%+lld bytes)",
			      b.memcg - a.memcg);
	}
	if (have_cg)
		leave_cgroup(CG);
	return finish();
}

/* --- security -------------------------------------------------------- */

static long long memstat(const char *key)
{
	return keyed_ll(CG "/memory.stat", key);
}

static int security(void)
{
	const uint64_t big = 64ULL << 20;
	unsigned char *p, *q;
	struct stat st;
	int fd, r, pfd[2];
	char c = 0;

	if (!module_loaded() && load())
		return fprintf(stderr, "cannot load %s\n", MODULE), 2;

	r = stat(DEV, &st);
	check(!r && S_ISCHR(st.st_mode) && (st.st_mode & 07777) == 0600 &&
	      st.st_uid == 0 && st.st_gid == 0,
	      "%s is a character device owned by root:root with mode 0600 (mode %o uid %d gid %d)",
	      DEV, r ? 0 : st.st_mode & 07777, r ? -1 : (int)st.st_uid, r ? -1 : (int)st.st_gid);

	/* Another user, without capabilities. */
	if (pipe(pfd))
		return 2;
	if (fork() == 0) {
		int e = 0;

		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			e = -1;
		else if (open(DEV, O_RDWR) >= 0)
			e = 0;
		else
			e = errno;
		c = (char)e;
		if (write(pfd[1], &c, 1) != 1)
			_exit(2);
		_exit(0);
	}
	wait(&r);
	if (read(pfd[0], &c, 1) != 1)
		c = -1;
	check(c == EACCES, "uid 65534 cannot open it: %s", c > 0 ? strerrorname_np(c) : c ? "setuid failed" : "it opened");
	if (fork() == 0) {
		int e;

		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(100);
		e = open(DEV, O_RDONLY) >= 0 ? 0 : errno;
		_exit(e);
	}
	wait(&r);
	check(WIFEXITED(r) && WEXITSTATUS(r) == EACCES, "nor for reading only");
	close(pfd[0]);
	close(pfd[1]);

	/* Fill a buffer with a secret, free it; a new one must be zero. */
	fd = open(DEV, O_RDWR);
	check(fd >= 0 && !set_size(fd, 16ULL << 20), "open and resize to 16 MiB");
	if (fd < 0)
		return finish();
	p = mmap(NULL, 16 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED) {
		memset(p, 0xa5, 16 << 20);
		munmap(p, 16 << 20);
	}
	close(fd);
	fd = open(DEV, O_RDWR);
	p = fd < 0 || set_size(fd, 16ULL << 20) ? MAP_FAILED :
		mmap(NULL, 16 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	check(p != MAP_FAILED && is_zero(p, 16 << 20),
	      "a new buffer, after a freed one full of 0xa5, maps as zeroes");
	q = malloc(16 << 20);
	check(q && pread(fd, q, 16 << 20, 0) == 16 << 20 && is_zero(q, 16 << 20),
	      "and reads as zeroes");
	if (p != MAP_FAILED) {
		memset(p, 0x5a, 16 << 20);
		munmap(p, 16 << 20);
	}
	check(!set_size(fd, ps) && !set_size(fd, 16ULL << 20) &&
	      pread(fd, q, 16 << 20, 0) == 16 << 20 && q[0] == 0x5a &&
	      is_zero(q + ps, (16 << 20) - ps),
	      "after shrinking to a page and growing back, all but that page reads as zeroes");
	free(q);

	/*
	 * v2: the same while mapped. The mapping stays, and must show the
	 * new, zeroed pages: never the freed ones, which held the secret.
	 */
	p = mmap(NULL, 16 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED)
		memset(p, 0xa5, 16 << 20);
	check(p != MAP_FAILED && !set_size(fd, ps) && !set_size(fd, 16ULL << 20) &&
	      p[0] == (unsigned char)0xa5 && is_zero(p + ps, (16 << 20) - ps),
	      "shrinking to a page and growing back while mapped: the mapping shows zeroes past that page");
	if (p != MAP_FAILED)
		munmap(p, 16 << 20);
	close(fd);

	/* The memory is charged to the opener's memory cgroup. */
	if (!enter_cgroup(CG)) {
		skip("the memory cgroup's charge: no cgroup v2 memory controller");
		return finish();
	} else {
		long long c0 = read_ll(CG "/memory.current"), f0 = memstat("file"),
			  k0 = memstat("kernel"), c1, f1, k1, c2, f2;

		/*
		 * v2: page cache of the buffer's own inode, charged as file
		 * memory (v1: "kernel"). Dropped at the last reference to the
		 * file: here the close(), since nothing maps it.
		 */
		fd = open(DEV, O_RDWR);
		r = fd >= 0 ? set_size(fd, big) : -1;
		c1 = read_ll(CG "/memory.current");
		f1 = memstat("file");
		k1 = memstat("kernel");
		close(fd);
		/*
		 * The last pages added to the page cache may still sit in a
		 * per-CPU LRU batch, which holds a reference: they are freed,
		 * and uncharged, once it drains (drop_caches drains them all).
		 */
		write_str("/proc/sys/vm/drop_caches", "1");
		c2 = read_ll(CG "/memory.current");
		f2 = memstat("file");
		diag("memcg memory.current: %lld before, %lld with a 64 MiB buffer, %lld after close; memory.stat file %+lld then %+lld, kernel %+lld",
		     c0, c1, c2, f1 - f0, f2 - f1, k1 - k0);
		check(!r && c1 - c0 >= (long long)big && f1 - f0 >= (long long)big,
		      "a 64 MiB buffer raises the cgroup's memory.current and file by 64 MiB or more (%+lld, %+lld)",
		      c1 - c0, f1 - f0);
		/*
		 * Every file page is uncharged at once; the kernel objects of
		 * the buffer (inode, xarray nodes) may be freed later (RCU,
		 * KASAN's quarantine), hence the slack on memory.current.
		 */
		check(c1 - c2 >= (long long)big - (1 << 20) && f1 - f2 >= (long long)big,
		      "closing the file uncharges it (%+lld, file %+lld)", c2 - c1, f2 - f1);
		leave_cgroup(CG);
	}
	return finish();
}

/* --- memory limits --------------------------------------------------- */

#define CGM	CGROOT "/mmap_buf_memlimit"

/* The counts of the child that works in the limited cgroup, shared. */
static struct ksft_count *shared_counts;

static void share_counts(void)
{
	*shared_counts = ksft_cnt;
}

static long long cgm(const char *file)
{
	char path[128];

	snprintf(path, sizeof(path), CGM "/%s", file);
	return read_ll(path);
}

static int cgm_set(const char *file, long long v)
{
	char path[128], val[32];

	snprintf(path, sizeof(path), CGM "/%s", file);
	if (v < 0)
		snprintf(val, sizeof(val), "max");
	else
		snprintf(val, sizeof(val), "%lld", v);
	return write_str(path, val);
}

/*
 * The buffers' pages in the cgroup, with the per-CPU LRU batches drained:
 * they are its only unevictable ones ("file" also counts what the process
 * happens to read of other files).
 */
static long long cgm_buffers(void)
{
	return settled_stat(CGM "/memory.stat", "unevictable");
}

static void fill_pattern(unsigned char *p, size_t len, unsigned char seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 13 + seed);
}

static int holds_pattern(int fd, size_t len, unsigned char seed)
{
	unsigned char *b = malloc(len);
	int ok = b && pread(fd, b, len, 0) == (ssize_t)len;

	for (size_t i = 0; ok && i < len; i++)
		ok = b[i] == (unsigned char)(i * 13 + seed);
	free(b);
	return ok;
}

struct reader {
	int fd;
	pthread_barrier_t go;
	uint64_t start_ns, end_ns;
	ssize_t r;
};

/* Fault in more stack than the calls below this frame use. */
static void __attribute__((noinline)) prefault_stack(void)
{
	volatile char pad[32 << 10];
	size_t i;

	for (i = 0; i < sizeof(pad); i += 1024)
		pad[i] = 0;
}

static void *reader_fn(void *arg)
{
	struct reader *rd = arg;
	char b[64];

	/*
	 * Charge what this thread touches before memory.high is lowered:
	 * a page it charged over memory.high would throttle it too, on its
	 * way back to user space, and its read() would start seconds late,
	 * after the grow (seen in the debug guest: the stack's first pages).
	 * The first wait: touched; the second: memory.high is set.
	 */
	prefault_stack();
	memset(b, 0, sizeof(b));
	pthread_barrier_wait(&rd->go);
	pthread_barrier_wait(&rd->go);
	/* Well into the grow, which takes seconds when throttled. */
	usleep(300000);
	rd->start_ns = now_ns();
	rd->r = pread(rd->fd, b, sizeof(b), 0);
	rd->end_ns = now_ns();
	return NULL;
}

/*
 * In the cgroup, as a child process of its own: the limits bite it, and an
 * OOM kill, which must not happen, would end it and not the test.
 */
static void memlimit_child(size_t base)
{
	const size_t big = 32 << 20;
	long long file0, file1, high0, high1;
	struct reader rd = { 0 };
	uint64_t t0, t1;
	unsigned char *p;
	pthread_t th;
	int fd, fd2, r, e, started;

	fd = open(DEV, O_RDWR);
	check(fd >= 0 && buf_size(fd) == base,
	      "open() in a cgroup with memory.max at 8 MiB: a buffer of default_size (%zu KiB)",
	      base >> 10);
	share_counts();
	if (fd < 0)
		_exit(1);
	p = mmap(NULL, base, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		_exit(1);
	fill_pattern(p, base, 3);
	lseek(fd, 77, SEEK_SET);

	file0 = cgm_buffers();
	r = set_size(fd, big);
	e = errno;
	file1 = cgm_buffers();
	check(r == -1 && e == ENOMEM,
	      "growing it to 32 MiB, over memory.max, fails with ENOMEM (got %s)",
	      r ? strerrorname_np(e) : "success");
	check(buf_size(fd) == base && lseek(fd, 0, SEEK_CUR) == 77 &&
	      holds_pattern(fd, base, 3) && p[base - 1] == (unsigned char)((base - 1) * 13 + 3),
	      "and leaves the buffer as it was: size, position, contents, mapping");
	check(file1 == file0,
	      "the pages it added before the limit hit are uncharged (unevictable %+lld bytes)",
	      file1 - file0);
	share_counts();

	/* A grow that fits still works after that. */
	r = set_size(fd, 4 << 20);
	check(!r && holds_pattern(fd, base, 3),
	      "growing to 4 MiB, under the limit, then succeeds%s%s",
	      r ? ": " : "", r ? strerror(errno) : "");
	set_size(fd, base);
	share_counts();

	/* open() when the cgroup cannot take its default size. */
	cgm_set("memory.max", cgm("memory.current") + (256 << 10));
	fd2 = open(DEV, O_RDWR);
	e = errno;
	check(fd2 < 0 && e == ENOMEM,
	      "open() with 256 KiB left under memory.max fails with ENOMEM (got %s)",
	      fd2 >= 0 ? "success" : strerrorname_np(e));
	if (fd2 >= 0)
		close(fd2);
	cgm_set("memory.max", 8 << 20);
	share_counts();

	/*
	 * memory.high: a grow over it is throttled (the charge reclaims and
	 * sleeps, with the buffer's locks held), but it must finish, and a
	 * read() of the buffer that waits for it too.
	 */
	rd.fd = fd;
	pthread_barrier_init(&rd.go, NULL, 2);
	started = !pthread_create(&th, NULL, reader_fn, &rd);
	if (started)
		pthread_barrier_wait(&rd.go);
	cgm_set("memory.max", -1);
	cgm_set("memory.high", cgm("memory.current") + (1 << 20));
	high0 = keyed_ll(CGM "/memory.events", "high");
	if (started)
		pthread_barrier_wait(&rd.go);
	t0 = now_ns();
	r = set_size(fd, base + (2 << 20));
	e = errno;
	t1 = now_ns();
	if (started)
		pthread_join(th, NULL);
	pthread_barrier_destroy(&rd.go);
	high1 = keyed_ll(CGM "/memory.events", "high");
	diag("a grow by 2 MiB, 1 MiB over memory.high, took %.1f s; a read() started %.1f s into it took %.1f s; memory.events high %+lld",
	     (t1 - t0) / 1e9, started ? (rd.start_ns - t0) / 1e9 : -1.0,
	     started ? (rd.end_ns - rd.start_ns) / 1e9 : -1.0, high1 - high0);
	diag("figure: memlimit grow_s=%.1f read_s=%.1f memory_events_high=%lld",
	     (t1 - t0) / 1e9, started ? (rd.end_ns - rd.start_ns) / 1e9 : -1.0,
	     high1 - high0);
	check(started && !r && high1 > high0 && rd.r == (ssize_t)64 && rd.start_ns < t1,
	      "a grow over memory.high is throttled, not refused, and finishes, as does a read() that waited for it (%s)",
	      !started ? "no reader thread" : r ? strerrorname_np(e) : "ok");
	set_size(fd, ps);
	cgm_set("memory.high", -1);
	share_counts();

	munmap(p, base);
	close(fd);
	_exit(0);
}

static int memlimit(void)
{
	long long oom0, oom1, cg_oom0, cg_kill0, file_end;
	size_t base;
	char pid[32];
	pid_t child;
	int st;

	if (!module_loaded() && load())
		return fprintf(stderr, "cannot load %s\n", MODULE), 2;
	if (!enter_cgroup(CGM)) {
		check(0, "a cgroup v2 memory controller");
		return finish();
	}
	leave_cgroup(CGM);
	if (mkdir(CGM, 0755) && errno != EEXIST)
		return 2;
	shared_counts = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared_counts == MAP_FAILED)
		return 2;
	base = (size_t)param_read("default_size");
	base = (base + ps - 1) / ps * ps;
	cgm_set("memory.max", 8 << 20);
	cgm_set("memory.high", -1);
	oom0 = keyed_ll("/proc/vmstat", "oom_kill");
	cg_oom0 = keyed_ll(CGM "/memory.events", "oom");
	cg_kill0 = keyed_ll(CGM "/memory.events", "oom_kill");
	share_counts();
	fflush(stdout);
	child = fork();
	if (child == 0) {
		snprintf(pid, sizeof(pid), "%d", getpid());
		if (write_str(CGM "/cgroup.procs", pid))
			_exit(2);
		memlimit_child(base);
	}
	waitpid(child, &st, 0);
	ksft_cnt = *shared_counts;
	oom1 = keyed_ll("/proc/vmstat", "oom_kill");
	check(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "the process in the cgroup finished (%s %d)",
	      WIFSIGNALED(st) ? "killed by signal" : "exit status",
	      WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	check(keyed_ll(CGM "/memory.events", "oom") == cg_oom0 &&
	      keyed_ll(CGM "/memory.events", "oom_kill") == cg_kill0 && oom1 == oom0,
	      "no OOM in the cgroup and no OOM kill anywhere (memory.events oom %+lld oom_kill %+lld, /proc/vmstat oom_kill %+lld)",
	      keyed_ll(CGM "/memory.events", "oom") - cg_oom0,
	      keyed_ll(CGM "/memory.events", "oom_kill") - cg_kill0, oom1 - oom0);
	file_end = cgm_buffers();
	check(file_end == 0, "the cgroup holds no buffer page once its process is gone (unevictable %lld bytes)",
	      file_end);
	rmdir(CGM);
	return finish();
}

int main(int argc, char **argv)
{
	ps = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	ksft_print_header();
	if (argc >= 2 && !strcmp(argv[1], "lifetime"))
		return lifetime(argc > 2 ? atoi(argv[2]) : 100);
	if (argc >= 2 && !strcmp(argv[1], "leak"))
		return leak(argc > 2 && argv[2][0] != '-' ? atoi(argv[2]) : 10000,
			    !strcmp(argv[argc - 1], "--report-only"));
	if (argc == 2 && !strcmp(argv[1], "security"))
		return security();
	if (argc == 2 && !strcmp(argv[1], "memlimit"))
		return memlimit();
	fprintf(stderr, "usage: %s lifetime [CYCLES] | leak [CYCLES] [--report-only] | security | memlimit\n",
		argv[0]);
	return 2;
}
