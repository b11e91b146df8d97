// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark of /dev/mmap_buf against memfd and anonymous memory, run in the
 * guest by scripts/bench. Writes one CSV row per measurement; scripts/bench
 * turns the rows into tables of ratios and a plot. Progress goes to stderr.
 *
 * Under QEMU/TCG absolute times are distorted and drift, so within each
 * repeat every variant of a benchmark is measured once, side by side, in an
 * order that rotates from repeat to repeat: compare variants by their ratio
 * within one repeat, not by absolute numbers.
 *
 * Benchmarks (column "benchmark"):
 *   touch_read, touch_write  first touch of every page of a mapping, one
 *                    load or one store per page; only the touch is timed,
 *                    and for the +populate variants mmap(MAP_POPULATE) too
 *   map_unmap        mmap() + munmap(), no touch (+populate: populated)
 *   map_touch_unmap  mmap() + one store per page + munmap()
 *   read_bw, write_bw  pread()/pwrite() of the driver (its ->read_iter and
 *                    ->write_iter, as for read()/write()) and of a memfd
 *                    whose pages exist, and memcpy() in user space
 *   fault_threads    one store per page of one mapping, by one thread or by
 *                    two threads on disjoint halves (wall time); variant
 *                    cpu_loop: a loop of arithmetic per page and no memory
 *                    access, for how well two vCPUs run in parallel at all
 *   fork             fork() (the parent's call; the child exits at once) of
 *                    this process with a mapping of every page touched, of
 *                    mmap_buf, memfd_filled (shared) or anon_private, and
 *                    without one (variant "none"): fork() copies a
 *                    mapping's page table entries only where it must
 *                    (anonymous pages, VM_MIXEDMAP and the other
 *                    VM_COPY_ON_FORK flags); for a plain shared file
 *                    mapping the child faults afresh
 *
 * Variants of the page benchmarks:
 *   mmap_buf       /dev/mmap_buf resized with MMAP_BUF_SET_SIZE: its pages
 *                  exist (in its page cache, in folios up to PMD size) from
 *                  the resize on; mmap(NULL, ...) is PMD-aligned where the
 *                  size allows, and a fault maps a whole folio, with a PMD
 *                  where it is PMD-sized, or with the kernel's fault-around
 *   mmap_buf_misaligned  the same buffer mapped one page off PMD
 *                  alignment: no PMD can map it, page table entries do
 *   mmap_buf_pages the same with the module parameter max_folio_order=0
 *                  while it is opened: single pages, as v2 of the driver
 *   mmap_buf_1pg   the same with the kernel's fault-around off (debugfs
 *                  fault_around_bytes set to one page, for all file
 *                  mappings, while this variant runs): one page per fault.
 *                  Only where /sys/kernel/debug/fault_around_bytes exists
 *                  (CONFIG_DEBUG_FS; debugfs is mounted if it is not); else
 *                  the variant has no rows
 *   memfd_filled   memfd, ftruncate() and pwrite() of zeroes to every page
 *                  before mmap(): the pages are in its page cache
 *   memfd_fresh    memfd, ftruncate() only: a fault allocates the page
 *   anon_private   MAP_PRIVATE | MAP_ANONYMOUS: a read fault maps the
 *                  shared zero page, a write fault allocates a page
 *                  (THP is set to "madvise" while the benchmark runs)
 *   memfd_thp      memfd filled and mapped as memfd_filled while
 *                  shmem_enabled is "always": its pages exist, in PMD-sized
 *                  folios, and mappings are PMD-aligned (shmem's
 *                  get_unmapped_area() aligns only while THP is allowed)
 *   hugetlb        memfd_create(MFD_HUGETLB), fallocate()d: PMD-sized huge
 *                  pages that exist, from a pool the benchmark reserves
 *                  (vm.nr_hugepages); rows only where the pool holds them
 *   anon_thp       anon_private with MADV_HUGEPAGE: a fault allocates and
 *                  zeroes a PMD-sized folio (a load maps the huge zero page)
 * and the first four of them with +populate (MAP_POPULATE).
 *
 * Mappings smaller than MIN_PAGES pages are measured in batches of several
 * objects of that size, each set up and mapped before the clock starts, so
 * that a measurement covers at least MIN_PAGES pages.
 *
 * Every measurement checks something cheap: loads see zeroes, stores are
 * seen through the file (pread()) or the mapping, transfers move the bytes
 * expected. A failed check ends the program with status 1.
 *
 * v2 of the driver: the size is lseek(fd, 0, SEEK_END) (no GET_SIZE), and
 * there is no fault_around_pages parameter: the driver's mappings are served
 * by the page cache's fault path, whose fault-around is the kernel's global
 * one. The CSV columns are those of v1. The ioctl header is the driver's
 * private one, included by its path in the kernel tree (compile with
 * -I<kernel tree>).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drivers/misc/mmap_buf/mmap_buf_uapi.h"

#define KIB		1024ULL
#define MIB		(1024 * KIB)
#define GIB		(1024 * MIB)
#define MIN_PAGES	256		/* pages per measurement, at least */
#define BW_MIN_BYTES	(8 * MIB)	/* bytes per bandwidth measurement */

enum kind {
	K_MMAP_BUF, K_MEMFD_FILLED, K_MEMFD_FRESH, K_ANON,
	K_MMAP_BUF_PAGES, K_MEMFD_THP, K_HUGETLB, K_ANON_THP, NR_KINDS
};

static const char * const kind_name[NR_KINDS] = {
	[K_MMAP_BUF]	   = "mmap_buf",
	[K_MEMFD_FILLED]   = "memfd_filled",
	[K_MEMFD_FRESH]	   = "memfd_fresh",
	[K_ANON]	   = "anon_private",
	[K_MMAP_BUF_PAGES] = "mmap_buf_pages",
	[K_MEMFD_THP]	   = "memfd_thp",
	[K_HUGETLB]	   = "hugetlb",
	[K_ANON_THP]	   = "anon_thp",
};

struct variant {
	const char *name;
	enum kind kind;
	bool populate;
	/* The kernel's fault-around for this variant, in pages; 0: as booted. */
	unsigned int fault_around;
	/* Mapped one page off PMD alignment. */
	bool misalign;
};

static const struct variant variants[] = {
	{ "mmap_buf",			K_MMAP_BUF,	false,	0, false },
	/* One page per fault: the demand faulting that fault-around saves. */
	{ "mmap_buf_1pg",		K_MMAP_BUF_PAGES, false, 1, false },
	{ "mmap_buf_misaligned",	K_MMAP_BUF,	false,	0, true },
	{ "mmap_buf_pages",		K_MMAP_BUF_PAGES, false, 0, false },
	{ "memfd_filled",		K_MEMFD_FILLED,	false,	0, false },
	{ "memfd_fresh",		K_MEMFD_FRESH,	false,	0, false },
	{ "anon_private",		K_ANON,		false,	0, false },
	{ "memfd_thp",			K_MEMFD_THP,	false,	0, false },
	{ "hugetlb",			K_HUGETLB,	false,	0, false },
	{ "anon_thp",			K_ANON_THP,	false,	0, false },
	{ "mmap_buf+populate",		K_MMAP_BUF,	true,	0, false },
	{ "memfd_filled+populate",	K_MEMFD_FILLED,	true,	0, false },
	{ "memfd_fresh+populate",	K_MEMFD_FRESH,	true,	0, false },
	{ "anon_private+populate",	K_ANON,		true,	0, false },
};

#define NR_VARIANTS	(sizeof(variants) / sizeof(variants[0]))

struct obj {
	int fd;			/* -1 for anonymous memory */
	unsigned char *p;	/* the mapping, or NULL */
	size_t size;
	enum kind kind;
	unsigned char *area;	/* what a misaligned mapping was put in */
	size_t area_size;
};

static const char *dev_path = "/dev/mmap_buf";
/* The kernel's fault-around, for all file mappings (mm/memory.c). */
#define DEBUGFS		"/sys/kernel/debug"
static const char *fa_path = DEBUGFS "/fault_around_bytes";
static unsigned int fa_default;	/* bytes, as booted; 0: no such file */
static unsigned int fa_now;	/* bytes, what it is set to now */
static FILE *csv;
static size_t page_size;
static uint64_t start_ns;
static unsigned int tag_seq;
static int ncpus;
static unsigned char zeroes[MIB];
static size_t pmd_size;		/* 0: no THP */
static size_t hugetlb_pages;	/* in the pool the benchmark reserved */
static size_t hugetlb_page_size;

#define PRINTF(f, a)	__attribute__((format(printf, f, a)))

static PRINTF(1, 2) void die(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	fprintf(stderr, "bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	fprintf(stderr, "\n");
	exit(1);
}

/* A check failed: the mapping or the copy is broken, no number is valid. */
static PRINTF(1, 2) void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench: CHECK FAILED: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static PRINTF(1, 2) void progress(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[%7.1fs] ", (now_ns() - start_ns) / 1e9);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

/* A byte value different from the previous one, never 0. */
static unsigned char next_tag(void)
{
	return tag_seq++ % 255 + 1;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p)
		die("calloc");
	return p;
}

/* "4K", "64M", "1G" or bytes. */
static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		die("bad size '%s'", s);
	switch (*end) {
	case 'k': case 'K':
		v *= KIB;
		end++;
		break;
	case 'm': case 'M':
		v *= MIB;
		end++;
		break;
	case 'g': case 'G':
		v *= GIB;
		end++;
		break;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end)
		die("bad size '%s'", s);
	return v;
}

static const char *size_str(uint64_t size)
{
	static char buf[4][24];
	static int n;
	char *s = buf[n++ % 4];

	if (size >= GIB && !(size % GIB))
		snprintf(s, sizeof(buf[0]), "%lluG", (unsigned long long)(size / GIB));
	else if (size >= MIB && !(size % MIB))
		snprintf(s, sizeof(buf[0]), "%lluM", (unsigned long long)(size / MIB));
	else
		snprintf(s, sizeof(buf[0]), "%lluK", (unsigned long long)(size / KIB));
	return s;
}

/*
 * One CSV row. @pages, when non-zero, gives ns_per_page; @bytes, when
 * non-zero, gives bytes_per_s.
 */
static void row(const char *bench, const char *variant, uint64_t size,
		int rep, unsigned long ops, unsigned long pages, uint64_t ns,
		uint64_t bytes)
{
	if (!ns)
		ns = 1;
	fprintf(csv, "%s,%s,%llu,%d,%lu,%lu,%llu,%.1f,", bench, variant,
		(unsigned long long)size, rep, ops, pages,
		(unsigned long long)ns, (double)ns / ops);
	if (pages)
		fprintf(csv, "%.2f", (double)ns / pages);
	fprintf(csv, ",");
	if (bytes)
		fprintf(csv, "%.0f", bytes * 1e9 / ns);
	fprintf(csv, "\n");
	fflush(csv);
}

static void pin_to_cpu(int cpu)
{
	cpu_set_t set;

	if (ncpus < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity");
}

#define THP_DIR		"/sys/kernel/mm/transparent_hugepage/"
#define THP_ENABLED	THP_DIR "enabled"
#define SHMEM_ENABLED	THP_DIR "shmem_enabled"
#define MAX_FOLIO_ORDER	"/sys/module/mmap_buf/parameters/max_folio_order"
#define NR_HUGEPAGES	"/proc/sys/vm/nr_hugepages"

/* Settings as found, put back at exit. */
static char thp_enabled[32], shmem_enabled[32], max_folio_order[16];
static char nr_hugepages[32];

static void write_sysfs(const char *path, const char *val)
{
	FILE *f = fopen(path, "w");

	if (!f || fprintf(f, "%s\n", val) < 0 || fclose(f))
		die("cannot write %s to %s", val, path);
}

/*
 * Read @path into @buf: the selected value of a "[x] y z" list, or the
 * whole line. Return false if there is no such file.
 */
static bool read_sysfs(const char *path, char *buf, size_t len)
{
	char line[256], *b, *e;
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	b = strchr(line, '[');
	e = b ? strchr(b, ']') : NULL;
	if (b && e) {
		*e = '\0';
		snprintf(buf, len, "%s", b + 1);
	} else {
		snprintf(buf, len, "%s", line);
	}
	return true;
}

static void restore_settings(void)
{
	if (thp_enabled[0])
		write_sysfs(THP_ENABLED, thp_enabled);
	if (shmem_enabled[0])
		write_sysfs(SHMEM_ENABLED, shmem_enabled);
	if (nr_hugepages[0])
		write_sysfs(NR_HUGEPAGES, nr_hugepages);
}

/*
 * THP for anonymous memory only where asked for (anon_thp), so that
 * anon_private stays in pages; a hugetlb pool for the largest size.
 */
static void setup_settings(size_t max_size)
{
	char buf[32];
	FILE *f;

	if (read_sysfs(THP_DIR "hpage_pmd_size", buf, sizeof(buf)))
		pmd_size = strtoull(buf, NULL, 10);
	read_sysfs(MAX_FOLIO_ORDER, max_folio_order, sizeof(max_folio_order));
	if (pmd_size) {
		read_sysfs(THP_ENABLED, thp_enabled, sizeof(thp_enabled));
		read_sysfs(SHMEM_ENABLED, shmem_enabled, sizeof(shmem_enabled));
		write_sysfs(THP_ENABLED, "madvise");
	}
	f = fopen("/proc/meminfo", "r");
	if (f) {
		char line[128];
		unsigned long kb;

		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "Hugepagesize: %lu kB", &kb) == 1)
				hugetlb_page_size = kb * KIB;
		fclose(f);
	}
	if (hugetlb_page_size && read_sysfs(NR_HUGEPAGES, nr_hugepages,
					    sizeof(nr_hugepages))) {
		snprintf(buf, sizeof(buf), "%zu", max_size / hugetlb_page_size + 1);
		write_sysfs(NR_HUGEPAGES, buf);
		read_sysfs(NR_HUGEPAGES, buf, sizeof(buf));
		hugetlb_pages = strtoull(buf, NULL, 10);
	}
	atexit(restore_settings);
}

static void fill_zeroes(int fd, size_t size)
{
	size_t off, n;

	for (off = 0; off < size; off += n) {
		n = size - off < sizeof(zeroes) ? size - off : sizeof(zeroes);
		if (pwrite(fd, zeroes, n, off) != (ssize_t)n)
			die("pwrite memfd");
	}
}

static void obj_init(struct obj *o, enum kind kind, size_t size)
{
	__u64 sz = size;
	off_t end;

	o->fd = -1;
	o->p = NULL;
	o->area = NULL;
	o->size = size;
	o->kind = kind;
	switch (kind) {
	case K_MMAP_BUF:
	case K_MMAP_BUF_PAGES:
		/* The order is read at open(): single pages for this one. */
		if (kind == K_MMAP_BUF_PAGES)
			write_sysfs(MAX_FOLIO_ORDER, "0");
		o->fd = open(dev_path, O_RDWR | O_CLOEXEC);
		if (kind == K_MMAP_BUF_PAGES)
			write_sysfs(MAX_FOLIO_ORDER, max_folio_order);
		if (o->fd < 0)
			die("open %s", dev_path);
		if (ioctl(o->fd, MMAP_BUF_SET_SIZE, &sz))
			die("MMAP_BUF_SET_SIZE %s", size_str(size));
		/* The size; and the position back to 0 (pread/pwrite only). */
		end = lseek(o->fd, 0, SEEK_END);
		if (end != (off_t)size || lseek(o->fd, 0, SEEK_SET))
			fail("lseek(SEEK_END) gives %lld, not %zu",
			     (long long)end, size);
		break;
	case K_MEMFD_FILLED:
	case K_MEMFD_FRESH:
		o->fd = memfd_create("bench", MFD_CLOEXEC);
		if (o->fd < 0)
			die("memfd_create");
		if (ftruncate(o->fd, size))
			die("ftruncate memfd %s", size_str(size));
		if (kind == K_MEMFD_FILLED)
			fill_zeroes(o->fd, size);
		break;
	case K_MEMFD_THP:
		/* Huge folios for what is filled now; only this memfd. */
		write_sysfs(SHMEM_ENABLED, "always");
		o->fd = memfd_create("bench", MFD_CLOEXEC);
		if (o->fd < 0 || ftruncate(o->fd, size))
			die("memfd %s", size_str(size));
		fill_zeroes(o->fd, size);
		write_sysfs(SHMEM_ENABLED, shmem_enabled);
		break;
	case K_HUGETLB:
		o->fd = memfd_create("bench", MFD_CLOEXEC | MFD_HUGETLB);
		if (o->fd < 0 || ftruncate(o->fd, size) ||
		    fallocate(o->fd, 0, 0, size))
			die("hugetlb memfd %s", size_str(size));
		break;
	default:
		break;
	}
}

static void obj_map_misaligned(struct obj *o, bool populate)
{
	int flags = MAP_SHARED | MAP_FIXED | (populate ? MAP_POPULATE : 0);
	unsigned char *want;
	size_t pmd = pmd_size ? pmd_size : 2 * MIB;
	void *p;

	o->area_size = o->size + 2 * pmd;
	o->area = mmap(NULL, o->area_size, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (o->area == MAP_FAILED)
		die("mmap area");
	want = (unsigned char *)(((uintptr_t)o->area + pmd - 1) / pmd * pmd) + page_size;
	p = mmap(want, o->size, PROT_READ | PROT_WRITE, flags, o->fd, 0);
	if (p != want)
		die("mmap %s %s misaligned", kind_name[o->kind], size_str(o->size));
	o->p = p;
}

static void obj_map_v(struct obj *o, bool populate, bool misalign)
{
	int flags = o->fd < 0 ? MAP_PRIVATE | MAP_ANONYMOUS : MAP_SHARED;
	void *p;

	if (misalign)
		return obj_map_misaligned(o, populate);
	if (populate)
		flags |= MAP_POPULATE;
	/* shmem places a mapping PMD-aligned only while it may use THPs. */
	if (o->kind == K_MEMFD_THP)
		write_sysfs(SHMEM_ENABLED, "always");
	p = mmap(NULL, o->size, PROT_READ | PROT_WRITE, flags, o->fd, 0);
	if (o->kind == K_MEMFD_THP)
		write_sysfs(SHMEM_ENABLED, shmem_enabled);
	if (p == MAP_FAILED)
		die("mmap %s %s", kind_name[o->kind], size_str(o->size));
	if (o->kind == K_ANON_THP && madvise(p, o->size, MADV_HUGEPAGE))
		die("MADV_HUGEPAGE");
	o->p = p;
}

static void obj_map(struct obj *o, bool populate)
{
	obj_map_v(o, populate, false);
}

static void obj_unmap(struct obj *o)
{
	if (o->area) {
		if (munmap(o->area, o->area_size))
			die("munmap");
		o->area = NULL;
	} else if (munmap(o->p, o->size)) {
		die("munmap");
	}
	o->p = NULL;
}

static void obj_fini(struct obj *o)
{
	if (o->p)
		obj_unmap(o);
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
}

/* Byte @off holds @want: read through the file, else through the mapping. */
static void check_byte(const struct obj *o, size_t off, unsigned char want,
		       const char *what)
{
	unsigned char got;

	if (o->fd >= 0) {
		if (pread(o->fd, &got, 1, off) != 1)
			die("pread %s", kind_name[o->kind]);
	} else {
		got = ((volatile unsigned char *)o->p)[off];
	}
	if (got != want)
		fail("%s: %s %s byte %zu is %#x, not %#x", what,
		     kind_name[o->kind], size_str(o->size), off, got, want);
}

static unsigned int touch_read(const unsigned char *p, size_t npages)
{
	const volatile unsigned char *v = p;
	unsigned int acc = 0;
	size_t i;

	for (i = 0; i < npages; i++)
		acc |= v[i * page_size];
	return acc;
}

static void touch_write(unsigned char *p, size_t npages, unsigned char tag)
{
	volatile unsigned char *v = p;
	size_t i;

	for (i = 0; i < npages; i++)
		v[i * page_size] = tag;
}

/*
 * The same number of threads and pages with no memory access at all: shows
 * how much two threads can run in parallel in this (emulated) machine.
 */
static void cpu_loop(unsigned char *p, size_t npages, unsigned char tag)
{
	unsigned int x = tag;
	size_t i, j;

	for (i = 0; i < npages; i++)
		for (j = 0; j < 512; j++)
			x = x * 1103515245 + 12345;
	asm volatile("" : : "r" (x));
	(void)p;
}

static void write_fault_around(unsigned int n)
{
	char val[16];

	snprintf(val, sizeof(val), "%u", n);
	write_sysfs(fa_path, val);
	fa_now = n;
}

/*
 * Set the kernel's fault-around for variant @v, outside the timed part. It
 * applies to every file mapping, memfd too: only the variant that asks for
 * another value runs with it, the others with the value as booted.
 */
static void set_fault_around(const struct variant *v)
{
	unsigned int n = v->fault_around ? v->fault_around * page_size : fa_default;

	if (!fa_default || n == fa_now)
		return;
	write_fault_around(n);
}

/* At exit, even after a failed check: the value as booted. */
static void restore_fault_around(void)
{
	if (fa_default && fa_now != fa_default) {
		FILE *f = fopen(fa_path, "w");

		if (f) {
			fprintf(f, "%u\n", fa_default);
			fclose(f);
		}
	}
}

/* The kernel's fault_around_bytes, mounting debugfs if need be; 0 if none. */
static unsigned int read_fault_around(void)
{
	unsigned int v = 0;
	FILE *f;

	if (access(fa_path, F_OK))
		mount("debugfs", DEBUGFS, "debugfs", 0, NULL);
	f = fopen(fa_path, "r");
	if (f) {
		if (fscanf(f, "%u", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static bool variant_runs(const struct variant *v, size_t size)
{
	switch (v->kind) {
	case K_MEMFD_THP:
	case K_ANON_THP:
		return pmd_size;
	case K_HUGETLB:
		return hugetlb_page_size && size % hugetlb_page_size == 0 &&
		       size / hugetlb_page_size <= hugetlb_pages;
	case K_MMAP_BUF_PAGES:
		return max_folio_order[0] && (!v->fault_around || fa_default);
	default:
		return !v->fault_around || fa_default;
	}
}

static size_t batch_for(size_t npages)
{
	return npages >= MIN_PAGES ? 1 : (MIN_PAGES + npages - 1) / npages;
}

/* touch_read / touch_write of variant @v, objects of @size bytes. */
static void measure_touch(const struct variant *v, size_t size, bool write,
			  int rep)
{
	size_t npages = size / page_size, nobj = batch_for(npages), i;
	struct obj *objs = xcalloc(nobj, sizeof(*objs));
	unsigned char tag = next_tag();
	unsigned int acc = 0;
	uint64_t t0, t1;

	set_fault_around(v);
	for (i = 0; i < nobj; i++) {
		obj_init(&objs[i], v->kind, size);
		if (!v->populate)
			obj_map_v(&objs[i], false, v->misalign);
	}
	t0 = now_ns();
	for (i = 0; i < nobj; i++) {
		if (v->populate)
			obj_map_v(&objs[i], true, v->misalign);
		if (write)
			touch_write(objs[i].p, npages, tag);
		else
			acc |= touch_read(objs[i].p, npages);
	}
	t1 = now_ns();

	if (acc)
		fail("touch_read %s %s: a load saw %#x, not 0", v->name,
		     size_str(size), acc);
	if (write) {
		check_byte(&objs[0], 0, tag, "touch_write");
		check_byte(&objs[nobj - 1], size - page_size, tag,
			   "touch_write");
	}
	for (i = 0; i < nobj; i++)
		obj_fini(&objs[i]);
	free(objs);
	row(write ? "touch_write" : "touch_read", v->name, size, rep, nobj,
	    nobj * npages, t1 - t0, 0);
}

/* map_unmap (@touch false) or map_touch_unmap of variant @v. */
static void measure_map(const struct variant *v, size_t size, bool touch,
			int rep)
{
	size_t npages = size / page_size, nobj = batch_for(npages), i;
	size_t last = size - page_size;
	struct obj *objs = xcalloc(nobj, sizeof(*objs));
	unsigned char tag = next_tag();
	unsigned int bad = 0;
	uint64_t t0, t1;

	set_fault_around(v);
	for (i = 0; i < nobj; i++)
		obj_init(&objs[i], v->kind, size);
	t0 = now_ns();
	for (i = 0; i < nobj; i++) {
		obj_map_v(&objs[i], v->populate, v->misalign);
		if (touch)
			touch_write(objs[i].p, npages, tag);
		/* Mapped already: no fault. */
		if (touch || v->populate)
			bad |= objs[i].p[last] ^ (touch ? tag : 0);
		obj_unmap(&objs[i]);
	}
	t1 = now_ns();

	if (bad)
		fail("%s %s %s: the last page read back wrong",
		     touch ? "map_touch_unmap" : "map_unmap", v->name,
		     size_str(size));
	/* What was stored through the mapping outlives it in the file. */
	if (touch && objs[0].fd >= 0) {
		check_byte(&objs[0], 0, tag, "map_touch_unmap");
		check_byte(&objs[nobj - 1], last, tag, "map_touch_unmap");
	}
	for (i = 0; i < nobj; i++)
		obj_fini(&objs[i]);
	free(objs);
	row(touch ? "map_touch_unmap" : "map_unmap", v->name, size, rep, nobj,
	    touch || v->populate ? nobj * npages : 0, t1 - t0, 0);
}

static int reps_for(size_t size, int reps, int big_reps)
{
	return size > 64 * MIB ? big_reps : reps;
}

static void bench_pages(const size_t *sizes, int nsizes, int reps,
			int big_reps, bool do_touch, bool do_map)
{
	int s, r, nr;
	size_t i;

	for (s = 0; s < nsizes; s++) {
		nr = reps_for(sizes[s], reps, big_reps);
		for (r = 0; r < nr; r++) {
			progress("%s%s%s %s repeat %d/%d",
				 do_touch ? "touch" : "",
				 do_touch && do_map ? "+" : "",
				 do_map ? "map" : "", size_str(sizes[s]),
				 r + 1, nr);
			for (i = 0; i < NR_VARIANTS; i++) {
				const struct variant *v;

				v = &variants[(i + r) % NR_VARIANTS];
				if (!variant_runs(v, sizes[s]))
					continue;
				if (do_touch) {
					measure_touch(v, sizes[s], false, r);
					measure_touch(v, sizes[s], true, r);
				}
				if (do_map) {
					measure_map(v, sizes[s], false, r);
					measure_map(v, sizes[s], true, r);
				}
			}
		}
	}
}

/* read_bw and write_bw: the driver, a memfd, memcpy(). */
enum bw_kind { BW_MMAP_BUF, BW_MEMFD, BW_MEMCPY, NR_BW };

static const char * const bw_name[NR_BW] = {
	"mmap_buf", "memfd", "memcpy"
};

static void measure_bw(enum bw_kind k, bool write, int fd, unsigned char *src,
		       unsigned char *dst, size_t size, int rep)
{
	unsigned long ops = size >= BW_MIN_BYTES ? 1 : BW_MIN_BYTES / size;
	unsigned char tag = next_tag(), got[2];
	uint64_t t0, t1;
	unsigned long i;

	/* The bytes that must arrive: first and last of the transfer. */
	if (k != BW_MEMCPY && !write) {
		if (pwrite(fd, &tag, 1, 0) != 1 ||
		    pwrite(fd, &tag, 1, size - 1) != 1)
			die("pwrite %s", bw_name[k]);
	} else {
		src[0] = tag;
		src[size - 1] = tag;
	}
	dst[0] = 0;
	dst[size - 1] = 0;

	t0 = now_ns();
	for (i = 0; i < ops; i++) {
		ssize_t n = 0;

		if (k == BW_MEMCPY) {
			memcpy(dst, src, size);
			asm volatile("" : : "r" (dst) : "memory");
			continue;
		}
		if (write)
			n = pwrite(fd, src, size, 0);
		else
			n = pread(fd, dst, size, 0);
		if (n != (ssize_t)size)
			die("%s %s %zu bytes: %zd", write ? "pwrite" : "pread",
			    bw_name[k], size, n);
	}
	t1 = now_ns();

	if (k != BW_MEMCPY && write) {
		if (pread(fd, &got[0], 1, 0) != 1 ||
		    pread(fd, &got[1], 1, size - 1) != 1)
			die("pread %s", bw_name[k]);
	} else {
		got[0] = dst[0];
		got[1] = dst[size - 1];
	}
	if (got[0] != tag || got[1] != tag)
		fail("%s %s %s: bytes %#x %#x, not %#x",
		     write ? "write_bw" : "read_bw", bw_name[k],
		     size_str(size), got[0], got[1], tag);
	row(write ? "write_bw" : "read_bw", bw_name[k], size, rep, ops,
	    0, t1 - t0, (uint64_t)ops * size);
}

/*
 * Under TCG, a copy runs several times slower when its source and
 * destination pages collide in QEMU's direct-mapped software TLB, which
 * depends on the virtual addresses on both sides: so every repeat uses
 * new files (new page cache pages) and user buffers at another page
 * offset, and the median is over address combinations.
 */
#define BW_SLACK_PAGES	16

static void bench_bw(const size_t *sizes, int nsizes, int reps)
{
	unsigned char *src_area, *dst_area, *src, *dst;
	size_t slack = BW_SLACK_PAGES * page_size;
	struct obj dev, mfd;
	int s, r, i;

	for (s = 0; s < nsizes; s++) {
		size_t size = sizes[s];

		src_area = aligned_alloc(page_size, size + slack);
		dst_area = aligned_alloc(page_size, size + slack);
		if (!src_area || !dst_area)
			die("aligned_alloc %s", size_str(size));
		memset(src_area, 0x11, size + slack);
		memset(dst_area, 0x22, size + slack);
		for (r = 0; r < reps; r++) {
			progress("bw %s repeat %d/%d", size_str(size), r + 1,
				 reps);
			obj_init(&dev, K_MMAP_BUF, size);
			obj_init(&mfd, K_MEMFD_FILLED, size);
			src = src_area + (r * 5 % BW_SLACK_PAGES) * page_size;
			dst = dst_area + (r * 3 % BW_SLACK_PAGES) * page_size;
			for (i = 0; i < NR_BW; i++) {
				enum bw_kind k = (i + r) % NR_BW;
				int fd = k == BW_MMAP_BUF ? dev.fd : mfd.fd;

				measure_bw(k, false, fd, src, dst, size, r);
				measure_bw(k, true, fd, src, dst, size, r);
			}
			obj_fini(&dev);
			obj_fini(&mfd);
		}
		free(src_area);
		free(dst_area);
	}
}

/* fault_threads: one thread, or two on disjoint halves. */
struct worker {
	void (*fn)(unsigned char *p, size_t npages, unsigned char tag);
	pthread_barrier_t *bar;
	unsigned char *p;
	size_t npages;
	unsigned char tag;
};

static void *worker_fn(void *arg)
{
	struct worker *w = arg;

	pin_to_cpu(1);
	pthread_barrier_wait(w->bar);
	w->fn(w->p, w->npages, w->tag);
	pthread_barrier_wait(w->bar);
	return NULL;
}

/* @kind NR_KINDS: cpu_loop() instead of stores to a fresh mapping. */
static void measure_threads(enum kind kind, int nthreads, size_t size,
			    int rep)
{
	void (*fn)(unsigned char *p, size_t npages, unsigned char tag);
	size_t npages = size / page_size, half = npages / 2;
	unsigned char tag = next_tag();
	pthread_barrier_t bar;
	struct worker w;
	pthread_t thread;
	uint64_t t0, t1;
	struct obj o;
	char name[64];
	int err;

	fn = kind == NR_KINDS ? cpu_loop : touch_write;
	obj_init(&o, kind == NR_KINDS ? K_ANON : kind, size);
	obj_map(&o, false);
	pin_to_cpu(0);
	if (nthreads == 1) {
		t0 = now_ns();
		fn(o.p, npages, tag);
		t1 = now_ns();
	} else {
		pthread_barrier_init(&bar, NULL, 2);
		w.fn = fn;
		w.bar = &bar;
		w.p = o.p + half * page_size;
		w.npages = npages - half;
		w.tag = tag;
		err = pthread_create(&thread, NULL, worker_fn, &w);
		if (err) {
			errno = err;
			die("pthread_create");
		}
		pthread_barrier_wait(&bar);
		t0 = now_ns();
		fn(o.p, half, tag);
		pthread_barrier_wait(&bar);
		t1 = now_ns();
		pthread_join(thread, NULL);
		pthread_barrier_destroy(&bar);
	}
	if (kind != NR_KINDS) {
		check_byte(&o, 0, tag, "fault_threads");
		check_byte(&o, half * page_size, tag, "fault_threads");
		check_byte(&o, size - page_size, tag, "fault_threads");
	}
	obj_fini(&o);
	snprintf(name, sizeof(name), "%s_%dt",
		 kind == NR_KINDS ? "cpu_loop" : kind_name[kind], nthreads);
	row("fault_threads", name, size, rep, 1, npages, t1 - t0, 0);
}

static void bench_threads(size_t size, int reps)
{
	static const enum kind kinds[] = {
		K_MMAP_BUF, K_MMAP_BUF_PAGES, K_MEMFD_FILLED, K_MEMFD_FRESH,
		K_ANON, NR_KINDS,
	};
	static const struct variant as_loaded = { .kind = K_MMAP_BUF };
	int r, i, n = 2 * (int)(sizeof(kinds) / sizeof(kinds[0]));

	set_fault_around(&as_loaded);

	if (ncpus < 2)
		progress("fault_threads: only %d CPU, two threads share it",
			 ncpus);
	for (r = 0; r < reps; r++) {
		progress("threads %s repeat %d/%d", size_str(size), r + 1,
			 reps);
		for (i = 0; i < n; i++) {
			int j = (i + r) % n;

			measure_threads(kinds[j / 2], j % 2 + 1, size, r);
		}
	}
	pin_to_cpu(0);
}

#define FORKS		10	/* fork() calls per measurement */

/* fork with a touched mapping of @kind, or none for @kind NR_KINDS. */
static void measure_fork(enum kind kind, size_t size, int rep)
{
	size_t npages = size / page_size;
	unsigned char tag = next_tag();
	uint64_t t0, t1, total = 0;
	int i, status;
	struct obj o;
	pid_t pid;

	if (kind != NR_KINDS) {
		obj_init(&o, kind, size);
		obj_map(&o, false);
		touch_write(o.p, npages, tag);
	}
	for (i = 0; i < FORKS; i++) {
		t0 = now_ns();
		pid = fork();
		if (!pid)
			_exit(kind == NR_KINDS || (o.p[0] == tag && o.p[size - 1] == 0) ? 0 : 1);
		t1 = now_ns();
		if (pid < 0)
			die("fork");
		if (waitpid(pid, &status, 0) != pid)
			die("waitpid");
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			fail("fork: the child of %s does not see the parent's data",
			     kind_name[kind]);
		total += t1 - t0;
	}
	if (kind != NR_KINDS)
		obj_fini(&o);
	row("fork", kind == NR_KINDS ? "none" : kind_name[kind], size, rep,
	    FORKS, 0, total, 0);
}

static void bench_fork(const size_t *sizes, int nsizes, int reps)
{
	static const enum kind kinds[] = {
		NR_KINDS, K_MMAP_BUF, K_MMAP_BUF_PAGES, K_MEMFD_FILLED, K_ANON,
	};
	static const struct variant as_loaded = { .kind = K_MMAP_BUF };
	int r, i, k, n = sizeof(kinds) / sizeof(kinds[0]);

	set_fault_around(&as_loaded);
	for (i = 0; i < nsizes; i++) {
		for (r = 0; r < reps; r++) {
			progress("fork %s repeat %d/%d", size_str(sizes[i]), r + 1,
				 reps);
			for (k = 0; k < n; k++)
				measure_fork(kinds[(k + r) % n], sizes[i], r);
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: bench [options]\n"
		"  -o, --out FILE        CSV output (default: stdout)\n"
		"  -m, --max-size SIZE   largest mapping (default: 1G)\n"
		"  -r, --repeats N       repeats up to 64M (default: 5)\n"
		"  -R, --big-repeats N   repeats above 64M (default: (N+1)/2)\n"
		"  -b, --bw-max SIZE     largest read/write transfer (default: 64M)\n"
		"  -t, --threads-size SIZE  fault_threads mapping (default: 64M)\n"
		"  -f, --fork-size SIZE  largest fork mapping (default: 256M)\n"
		"  -O, --only LIST       of touch,map,bw,threads,fork (default: all)\n"
		"  -d, --dev PATH        device (default: /dev/mmap_buf)\n"
		"SIZE: bytes or with K, M, G (binary).\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out",	  required_argument, NULL, 'o' },
		{ "max-size",	  required_argument, NULL, 'm' },
		{ "repeats",	  required_argument, NULL, 'r' },
		{ "big-repeats",  required_argument, NULL, 'R' },
		{ "bw-max",	  required_argument, NULL, 'b' },
		{ "threads-size", required_argument, NULL, 't' },
		{ "fork-size",	  required_argument, NULL, 'f' },
		{ "only",	  required_argument, NULL, 'O' },
		{ "dev",	  required_argument, NULL, 'd' },
		{ "help",	  no_argument,	     NULL, 'h' },
		{ }
	};
	uint64_t max_size = GIB, bw_max = 64 * MIB, threads_size = 64 * MIB;
	uint64_t fork_max = 256 * MIB;
	const char *out = NULL, *only = "touch,map,bw,threads,fork";
	size_t sizes[16], bw_sizes[16], fork_sizes[2];
	int reps = 5, big_reps = 0, nsizes = 0, nbw = 0, nfork = 0, c;
	unsigned long long drv_max = 0;
	struct utsname uts;
	uint64_t size;
	FILE *f;

	while ((c = getopt_long(argc, argv, "o:m:r:R:b:t:f:O:d:h", opts,
				NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'm':
			max_size = parse_size(optarg);
			break;
		case 'r':
			reps = atoi(optarg);
			break;
		case 'R':
			big_reps = atoi(optarg);
			break;
		case 'b':
			bw_max = parse_size(optarg);
			break;
		case 't':
			threads_size = parse_size(optarg);
			break;
		case 'f':
			fork_max = parse_size(optarg);
			break;
		case 'O':
			only = optarg;
			break;
		case 'd':
			dev_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || reps < 1 || big_reps < 0) {
		usage(stderr);
		return 2;
	}
	if (!big_reps)
		big_reps = (reps + 1) / 2;

	start_ns = now_ns();
	page_size = sysconf(_SC_PAGESIZE);
	ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	f = fopen("/sys/module/mmap_buf/parameters/max_size", "r");
	if (f) {
		if (fscanf(f, "%llu", &drv_max) != 1)
			drv_max = 0;
		fclose(f);
	}
	fa_default = fa_now = read_fault_around();
	if (fa_default)
		atexit(restore_fault_around);
	else
		progress("no %s (CONFIG_DEBUG_FS=n?): no mmap_buf_1pg rows", fa_path);
	if (drv_max && max_size > drv_max) {
		progress("mmap_buf max_size is %s: --max-size lowered to it",
			 size_str(drv_max));
		max_size = drv_max;
	}
	setup_settings(max_size);
	for (size = 4 * KIB; size <= max_size && nsizes < 16; size *= 4)
		sizes[nsizes++] = size;
	for (size = 4 * KIB; size <= bw_max && size <= max_size && nbw < 16;
	     size *= 4)
		bw_sizes[nbw++] = size;
	if (threads_size > max_size)
		threads_size = max_size;
	/* A quarter of the largest, and the largest (256M: 65,536 pages). */
	if (fork_max > max_size)
		fork_max = max_size;
	if (fork_max / 4 >= page_size)
		fork_sizes[nfork++] = fork_max / 4 / page_size * page_size;
	fork_sizes[nfork++] = fork_max / page_size * page_size;

	csv = stdout;
	if (out) {
		csv = fopen(out, "w");
		if (!csv)
			die("%s", out);
	}
	uname(&uts);
	progress("kernel %s, %d CPUs, page %zu, mmap_buf max_size %llu, fault_around_bytes %u",
		 uts.release, ncpus, page_size, drv_max, fa_default);
	progress("PMD %zu, THP enabled was [%s], shmem [%s]; hugetlb pool %zu pages of %zu",
		 pmd_size, thp_enabled, shmem_enabled, hugetlb_pages, hugetlb_page_size);
	progress("sizes %s..%s, repeats %d (above 64M: %d)", size_str(sizes[0]),
		 size_str(sizes[nsizes - 1]), reps, big_reps);
	fprintf(csv, "benchmark,variant,size_bytes,repeat,ops,pages,ns_total,%s\n",
		"ns_per_op,ns_per_page,bytes_per_s");

	if (strstr(only, "touch"))
		bench_pages(sizes, nsizes, reps, big_reps, true, false);
	if (strstr(only, "map"))
		bench_pages(sizes, nsizes, reps, big_reps, false, true);
	if (strstr(only, "bw"))
		bench_bw(bw_sizes, nbw, reps);
	if (strstr(only, "threads"))
		bench_threads(threads_size, reps);
	if (strstr(only, "fork"))
		bench_fork(fork_sizes, nfork, reps);

	if (fa_default) {
		/* Back to the kernel's setting as booted. */
		static const struct variant reset = { .kind = K_MMAP_BUF };

		set_fault_around(&reset);
	}
	progress("done");
	if (csv != stdout && fclose(csv))
		die("%s", out);
	return 0;
}
