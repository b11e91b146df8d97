// SPDX-License-Identifier: GPL-2.0
/*
 * The driver's failure paths, made to run: every allocation and user copy
 * that a call reaches is failed once, one after the other, the systematic
 * way syzkaller does it. Run as root in the debug guest by
 * scripts/guest-tests (section inject); prints KTAP (kselftest.h), one case an entry
 * point, and exits 0 only if every check passed.
 *
 * For each entry point (open, resizes of each direction and size class,
 * a fault on a folio of each order, read, write, mmap, the last close and
 * the last munmap) and n = 1, 2, ...: the n-th slab allocation, page
 * allocation or user copy of the call fails (/proc/thread-self/fail-nth,
 * with FAILSLAB, FAIL_PAGE_ALLOC and FAULT_INJECTION_USERCOPY told to fail
 * sleeping, highmem and order-0 allocations too), until the call makes
 * fewer than n of them three times in a row (how many a call makes varies
 * a little: slab refills, KASAN's and kmemleak's own allocations). After
 * each:
 *
 *  - the call succeeded, or failed with its documented errno: ENOMEM, or
 *    EFAULT where a user copy failed (open()'s copy of the path, the
 *    ioctl's argument, read() and write(), which may also return a short
 *    count); a shrink fails only for want of its argument;
 *  - the buffer's size, contents and file position are what that result
 *    says (a failed resize changed nothing; a short read or write moved the
 *    position by its count and wrote only that much);
 *  - the device still works (a new buffer is zeroed and keeps what is
 *    written to it).
 *
 * At the end, every allocation site of the driver must have been failed at
 * least once: where each injected failure was comes from a kretprobe on
 * should_fail_ex() with a stack trace (tracefs), since the driver's own
 * allocations pass __GFP_NOWARN, which silences the fault injection's
 * report. The sites are printed. Then the buffers' pages in the memory
 * cgroup (its unevictable ones) must be back where they were, and the
 * module must unload (no buffer, mount or reference leaked); kmemleak and
 * the kernel log are judged by scripts/guest-tests after the last section.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <signal.h>
#include <sys/mman.h>

#include "common.h"

#define DEBUGFS		"/sys/kernel/debug"
#define TRACEFS		"/sys/kernel/tracing"
#define CG		CGROOT "/mmap_buf_inject"
#define EVENT		"mmap_buf_inject/fail"
#define MARK		"mmap_buf_inject case "
#define MAX_NTH		2000	/* no call of ours comes near */

static size_t ps;
static int nth_fd = -1;
static long long cases, injected_total;

/* --- fail-nth -------------------------------------------------------- */

/* The calling thread's fail-nth, opened once: arming it is one write(). */
static int nth_open(void)
{
	if (nth_fd >= 0)
		close(nth_fd);
	nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	return nth_fd;
}

static void arm(int n)
{
	char b[16];
	int len = snprintf(b, sizeof(b), "%d", n);

	if (pwrite(nth_fd, b, len, 0) != len)
		abort();
}

/*
 * Disarm; whether the failure was injected. fail-nth reads as what is left
 * of the count: 0 once the n-th point failed. Reading it is itself a user
 * copy, which a count of 1 left would fail (EFAULT): not injected either.
 */
static int disarm(void)
{
	char b[16] = "";
	ssize_t r = pread(nth_fd, b, sizeof(b) - 1, 0);
	int tries;

	/*
	 * Writing takes a user copy too, which a count of 1 left now fails;
	 * the count is 0 then, and the next write gets through.
	 */
	for (tries = 0; pwrite(nth_fd, "0", 1, 0) != 1; tries++)
		if (errno != EFAULT || tries == 2)
			abort();
	return r > 0 && atoi(b) == 0;
}

/* --- where the failures were ----------------------------------------- */

static void mark(const char *entry, int n)
{
	char b[256];

	snprintf(b, sizeof(b), MARK "%s n=%d\n", entry, n);
	write_str(TRACEFS "/trace_marker", b);
}

/* Append @s to a tracefs file (kprobe_events takes a definition so). */
static int append_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_APPEND), r;

	if (fd < 0)
		return -1;
	r = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
	close(fd);
	return r;
}

static void trace_teardown(void)
{
	write_str(TRACEFS "/tracing_on", "0");
	write_str(TRACEFS "/options/stacktrace", "0");
	if (!access(TRACEFS "/events/" EVENT, F_OK)) {
		write_str(TRACEFS "/events/" EVENT "/enable", "0");
		append_str(TRACEFS "/kprobe_events", "-:" EVENT "\n");
	}
	write_str(TRACEFS "/buffer_size_kb", "1408");
}

/*
 * A kretprobe on should_fail_ex() that records only the calls that
 * returned true, each with the stack it was called from. It fires on
 * every slab allocation of the machine: room for 64 at once.
 */
static int trace_setup(void)
{
	int fd;

	if (access(TRACEFS "/kprobe_events", F_OK) &&
	    mount("tracefs", TRACEFS, "tracefs", 0, NULL))
		return -1;
	trace_teardown();	/* a run before this one */
	write_str(TRACEFS "/buffer_size_kb", "16384");
	if (append_str(TRACEFS "/kprobe_events",
		       "r64:" EVENT " should_fail_ex ret=$retval:u8\n"))
		return -1;
	/* Opened with O_TRUNC, the trace empties. */
	fd = open(TRACEFS "/trace", O_WRONLY | O_TRUNC);
	if (fd < 0)
		return -1;
	close(fd);
	if (write_str(TRACEFS "/events/" EVENT "/filter", "ret == 1") ||
	    write_str(TRACEFS "/options/stacktrace", "1") ||
	    write_str(TRACEFS "/events/" EVENT "/enable", "1"))
		return -1;
	return write_str(TRACEFS "/tracing_on", "1");
}

/* The kretprobe's misses (kprobe_profile: event, hits, misses). */
static long long trace_misses(void)
{
	char line[256], name[128];
	long long hits, misses = -1;
	FILE *f = fopen(TRACEFS "/kprobe_profile", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%127s %lld %lld", name, &hits, &misses) == 3 &&
		    strstr(name, "fail"))
			break;
	if (f)
		fclose(f);
	return misses;
}

/* The fault injection and allocator frames above the caller that matters. */
static int internal_frame(const char *f)
{
	static const char *const prefixes[] = {
		"should_fail", "__should_fail", "slab_", "__slab_",
		"kmem_cache_alloc", "__kmem_cache_alloc", "kmalloc", "__kmalloc",
		"__do_kmalloc", "kzalloc", "kvmalloc", "__kvmalloc", "krealloc",
		"alloc_pages", "__alloc_pages", "alloc_frozen_pages",
		"__alloc_frozen_pages", "prepare_alloc_pages", "folio_alloc",
		"__folio_alloc", "filemap_alloc_folio", "alloc_slab", "new_slab",
		"allocate_slab", "___slab_alloc", "__slab_alloc", "copy_to_user",
		"_copy_to_user", "copy_from_user", "_copy_from_user",
		"__copy_from_user", "copyout", "copyin", "_copy_to_iter",
		"_copy_from_iter", "copy_to_iter", "copy_from_iter",
		"copy_page_to_iter", "copy_page_from_iter", "copy_folio_",
		"__copy_", "iterate_", "kretprobe", "__kretprobe", "arch_rethook",
		"rethook", "xas_alloc", "xas_nomem", "kstrtou", "strncpy_from_user",
		"memdup_user", "simple_read_from_buffer",
	};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(f, prefixes[i], strlen(prefixes[i])))
			return 1;
	return 0;
}

#define MAX_SITES	256
#define MAX_FRAMES	48

static struct site {
	char key[320];
	char entries[256];
	int hits;
} sites[MAX_SITES];
static int nsites;

/* What a failure's stack shows of the driver's allocation sites. */
enum { S_MOUNT, S_INODE, S_FOLIO, S_SLOT, S_READ, S_WRITE, S_NR };
static const char *const driver_site_name[S_NR] = {
	"the pseudo file system's mount (simple_pin_fs)",
	"the buffer's inode (alloc_anon_inode)",
	"a folio of the buffer (filemap_alloc_folio)",
	"its page cache slot (filemap_add_folio)",
	"read()'s copy to user space (mmap_buf_read_iter)",
	"write()'s copy from user space (mmap_buf_write_iter)",
};
static int driver_site_hits[S_NR];

static int has_frame(char frames[][128], int nf, const char *name)
{
	for (int i = 0; i < nf; i++)
		if (!strncmp(frames[i], name, strlen(name)))
			return 1;
	return 0;
}

static int add_failure(const char *entry, char frames[][128], int nf)
{
	char key[320] = "";
	int i, first = -1, drv = -1, syscall_frame = -1, shown = 0, in_driver, slab, page;

	/*
	 * disarm()'s own read or write of fail-nth, when the call left a
	 * count of 1 or 2: not a failure of the call.
	 */
	if (has_frame(frames, nf, "proc_fail_nth_read") ||
	    has_frame(frames, nf, "proc_fail_nth_write"))
		return 0;

	for (i = 0; i < nf; i++) {
		if (first < 0 && !internal_frame(frames[i]))
			first = i;
		if (drv < 0 && !strncmp(frames[i], "mmap_buf_", 9))
			drv = i;
		if (syscall_frame < 0 && (!strncmp(frames[i], "__x64_sys_", 10) ||
					  !strncmp(frames[i], "__do_sys_", 9)))
			syscall_frame = i;
	}
	if (first < 0)
		first = 0;
	/* The first caller outside the allocator, its caller, then the driver. */
	for (i = first; i < nf && shown < 3; i++, shown++) {
		if (shown)
			strncat(key, " < ", sizeof(key) - strlen(key) - 1);
		strncat(key, frames[i], sizeof(key) - strlen(key) - 1);
		if (i == drv)
			break;
	}
	if (drv >= i + 1 || (drv < 0 && syscall_frame >= i + 1)) {
		strncat(key, " < ... < ", sizeof(key) - strlen(key) - 1);
		strncat(key, frames[drv >= 0 ? drv : syscall_frame],
			sizeof(key) - strlen(key) - 1);
	}

	in_driver = drv >= 0;
	slab = has_frame(frames, nf, "kmem_cache_alloc") || has_frame(frames, nf, "__kmalloc") ||
	       has_frame(frames, nf, "kmalloc") || has_frame(frames, nf, "new_slab") ||
	       has_frame(frames, nf, "allocate_slab") || has_frame(frames, nf, "should_failslab");
	page = has_frame(frames, nf, "__alloc_frozen_pages") ||
	       has_frame(frames, nf, "prepare_alloc_pages") ||
	       has_frame(frames, nf, "__folio_alloc") || has_frame(frames, nf, "folio_alloc") ||
	       has_frame(frames, nf, "alloc_pages") || has_frame(frames, nf, "should_fail_alloc_page");
	if (has_frame(frames, nf, "mmap_buf_read_iter"))
		driver_site_hits[S_READ]++;
	else if (has_frame(frames, nf, "mmap_buf_write_iter"))
		driver_site_hits[S_WRITE]++;
	else if (has_frame(frames, nf, "simple_pin_fs"))
		driver_site_hits[S_MOUNT]++;
	else if (in_driver && has_frame(frames, nf, "alloc_anon_inode"))
		driver_site_hits[S_INODE]++;
	else if (in_driver && has_frame(frames, nf, "filemap_add_folio"))
		driver_site_hits[S_SLOT]++;
	else if (in_driver && page && !slab && !strncmp(frames[first], "mmap_buf_", 9))
		driver_site_hits[S_FOLIO]++;

	for (i = 0; i < nsites; i++)
		if (!strcmp(sites[i].key, key))
			break;
	if (i == nsites) {
		if (nsites == MAX_SITES)
			return 1;
		snprintf(sites[i].key, sizeof(sites[i].key), "%s", key);
		nsites++;
	}
	sites[i].hits++;
	if (!strstr(sites[i].entries, entry) &&
	    strlen(sites[i].entries) + strlen(entry) + 3 < sizeof(sites[i].entries)) {
		if (sites[i].entries[0])
			strcat(sites[i].entries, "; ");
		strcat(sites[i].entries, entry);
	}
	return 1;
}

/*
 * Read the trace: the marker of each case, then each injected failure of
 * it as the event line and its "<stack trace>" lines (" => function").
 */
static int trace_collect(void)
{
	char line[512], entry[200] = "", frames[MAX_FRAMES][128];
	int nf = -1, event = 0, failures = 0;
	FILE *f;

	write_str(TRACEFS "/tracing_on", "0");
	f = fopen(TRACEFS "/trace", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p;

		if (line[0] == '#')
			continue;
		p = strstr(line, " => ");
		if (p && nf >= 0) {
			if (nf < MAX_FRAMES) {
				p += 4;
				p[strcspn(p, "+ \n")] = 0;
				snprintf(frames[nf++], sizeof(frames[0]), "%s", p);
			}
			continue;
		}
		/* The stack of a failure ended. */
		if (nf > 0)
			failures += add_failure(entry, frames, nf);
		nf = -1;
		p = strstr(line, MARK);
		if (p) {
			p += strlen(MARK);
			p[strcspn(p, "\n")] = 0;
			/* The entry point, without " n=N". */
			if (strrchr(p, ' '))
				*strrchr(p, ' ') = 0;
			snprintf(entry, sizeof(entry), "%s", p);
			event = 0;
		} else if (strstr(line, ": fail: (")) {
			event = 1;
		} else if (strstr(line, "<stack trace>")) {
			/* Only the stack that follows a failure's event. */
			if (event)
				nf = 0;
			event = 0;
		}
	}
	if (nf > 0)
		failures += add_failure(entry, frames, nf);
	fclose(f);
	return failures;
}

/* --- the model ------------------------------------------------------- */

static unsigned char pat(uint64_t i, unsigned int seed)
{
	return (unsigned char)(i * 31 + i / 4096 + seed);
}

static int fill(int fd, uint64_t len, unsigned int seed)
{
	unsigned char *b = malloc(len);
	int ok;

	if (!b)
		return -1;
	for (uint64_t i = 0; i < len; i++)
		b[i] = pat(i, seed);
	ok = pwrite(fd, b, len, 0) == (ssize_t)len;
	free(b);
	return ok ? 0 : -1;
}

/* Whether bytes [off, off + len) read back as pattern @seed (or zeroes if < 0). */
static int holds(int fd, uint64_t off, uint64_t len, int seed)
{
	unsigned char *b = malloc(len ? len : 1);
	int ok;

	if (!b)
		return 0;
	ok = pread(fd, b, len, off) == (ssize_t)len;
	for (uint64_t i = 0; ok && i < len; i++)
		ok = b[i] == (seed < 0 ? 0 : pat(off + i, seed));
	free(b);
	return ok;
}

/* A new buffer of @size bytes holding pattern @seed; its fd, or -1 and @why. */
static int new_buffer(uint64_t size, unsigned int seed, char *why, size_t len)
{
	int fd = open(DEV, O_RDWR);

	if (fd < 0) {
		snprintf(why, len, "set up: open: %s", strerror(errno));
		return -1;
	}
	if ((size != buf_size(fd) && set_size(fd, size)) || fill(fd, size, seed)) {
		snprintf(why, len, "set up a %" PRIu64 "-byte buffer: %s", size, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* A new buffer: zeroed, keeps what is written, and maps. */
static int device_works(void)
{
	unsigned char *p;
	int fd = open(DEV, O_RDWR), ok;

	if (fd < 0)
		return 0;
	ok = !set_size(fd, 4 * ps) && holds(fd, 0, 4 * ps, -1) && !fill(fd, 4 * ps, 7);
	p = mmap(NULL, 4 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ok &= p != MAP_FAILED;
	if (p != MAP_FAILED) {
		ok &= p[3 * ps + 5] == pat(3 * ps + 5, 7);
		munmap(p, 4 * ps);
	}
	close(fd);
	return ok;
}

/*
 * An entry point. One case of it: @run sets up (disarmed), calls arm(n),
 * makes the call, calls disarm() right after it, then checks the result
 * against the model. It returns 0 if the model held, and sets *injected;
 * @why gets the violation. @from, @to (sizes: bytes, or PAGES(n)) and
 * @how are its parameters.
 */
struct entry;
typedef int (*run_fn)(const struct entry *e, int n, int *injected, char *why, size_t len);

struct entry {
	const char *name;
	run_fn run;
	long long from, to;
	int how;
};

#define PAGES(n)	(-(long long)(n))

static uint64_t bytes(long long size)
{
	return size < 0 ? (uint64_t)-size * ps : (uint64_t)size;
}

/* n = 1, 2, ... until three calls in a row reach fewer than n points. */
static void entry_point(const struct entry *e)
{
	const char *name = e->name;
	int n, injected, bad = 0, first_bad = 0, dead = 0, inj = 0, misses = 0;
	char why[256] = "", w[256];

	for (n = 1; n <= MAX_NTH; n++) {
		injected = 0;
		w[0] = 0;
		mark(name, n);
		if (e->run(e, n, &injected, w, sizeof(w))) {
			if (!bad++) {
				first_bad = n;
				snprintf(why, sizeof(why), "%s", w);
			}
		}
		cases++;
		if (!device_works()) {
			dead++;
			if (!bad++) {
				first_bad = n;
				snprintf(why, sizeof(why), "the device stopped working");
			}
		}
		if (injected) {
			inj++;
			misses = 0;
		} else if (++misses == 3) {
			break;
		}
	}
	injected_total += inj;
	if (n > MAX_NTH)
		snprintf(why, sizeof(why), "still failing at n=%d", MAX_NTH), bad++;
	check(!bad, "%s: n=1..%d, %d injected failures, the model held after each",
	      name, n > MAX_NTH ? MAX_NTH : n, inj);
	if (bad)
		diag("%s: %d violations, the first at n=%d: %s%s", name, bad, first_bad, why,
		     dead ? "; the device stopped working" : "");
}

#define FAIL(...) do { snprintf(why, len, __VA_ARGS__); return -1; } while (0)

/* --- the entry points ------------------------------------------------ */

static uint64_t default_size;
static int holder = -1;		/* another open buffer, or -1 */

#define MAX_ORDER_PARAM	"/sys/module/" MODULE "/parameters/max_folio_order"

/*
 * @how 1: another buffer is open meanwhile (the pseudo file system is
 * mounted); 2: the buffer is made of single pages (max_folio_order=0), so
 * that a failed allocation of one fails the open(), where a larger folio's
 * falls back to a smaller order.
 */
static int open_case(const struct entry *en, int n, int *injected, char *why, size_t len)
{
	char order[16] = "";
	uint64_t size;
	int fd, e, zeroed;
	off_t pos;

	if (en->how == 1) {
		holder = open(DEV, O_RDWR);
		if (holder < 0)
			FAIL("cannot open the other buffer: %s", strerror(errno));
	}
	if (en->how == 2) {
		snprintf(order, sizeof(order), "%lld", read_ll(MAX_ORDER_PARAM));
		if (write_str(MAX_ORDER_PARAM, "0"))
			FAIL("cannot set max_folio_order: %s", strerror(errno));
	}
	arm(n);
	fd = open(DEV, O_RDWR);
	e = errno;
	*injected = disarm();
	if (holder >= 0) {
		close(holder);
		holder = -1;
	}
	if (order[0])
		write_str(MAX_ORDER_PARAM, order);
	if (fd < 0) {
		/* EFAULT: the copy of the path (strncpy_from_user()) failed. */
		if (e != ENOMEM && e != EFAULT)
			FAIL("open() failed with %s, not ENOMEM or EFAULT", strerrorname_np(e));
		return 0;
	}
	size = buf_size(fd);
	pos = lseek(fd, 0, SEEK_CUR);
	zeroed = holds(fd, 0, default_size, -1);
	close(fd);
	if (size != default_size || pos != 0 || !zeroed)
		FAIL("open() succeeded with size %" PRIu64 ", position %lld%s", size,
		     (long long)pos, zeroed ? "" : ", not zeroed");
	return 0;
}

/* Resize from @from to @to; @how: a mapping of the old size stays. */
static int resize_case(const struct entry *en, int n, int *injected, char *why, size_t len)
{
	uint64_t from = bytes(en->from), to = bytes(en->to), size;
	uint64_t keep = from < to ? from : to;
	int mapped = en->how;
	unsigned char *p = MAP_FAILED;
	int fd, r, e, ok;

	fd = new_buffer(from, n, why, len);
	if (fd < 0)
		return -1;
	if (lseek(fd, 123, SEEK_SET) != 123) {
		close(fd);
		FAIL("lseek: %s", strerror(errno));
	}
	if (mapped) {
		p = mmap(NULL, from, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			close(fd);
			FAIL("mmap: %s", strerror(errno));
		}
		/* Every page mapped, so that a shrink has PTEs or a PMD to zap. */
		for (uint64_t i = 0; i < from; i += ps)
			(void)*(volatile unsigned char *)(p + i);
	}
	arm(n);
	r = set_size(fd, to);
	e = errno;
	*injected = disarm();
	size = buf_size(fd);
	ok = 1;
	/*
	 * A grow fails for want of memory; either fails for want of its
	 * argument, the copy of which can fail too (EFAULT).
	 */
	if (r && e != EFAULT && (e != ENOMEM || to < from)) {
		snprintf(why, len, "failed with %s, not %s", strerrorname_np(e),
			 to < from ? "EFAULT" : "ENOMEM or EFAULT");
		ok = 0;
	} else if (size != (r ? from : to)) {
		snprintf(why, len, "%s, and the size is %" PRIu64 ", not %" PRIu64,
			 r ? "failed" : "succeeded", size, r ? from : to);
		ok = 0;
	} else if (!holds(fd, 0, r ? from : keep, n)) {
		snprintf(why, len, "%s, and the contents changed", r ? "failed" : "succeeded");
		ok = 0;
	} else if (!r && to > from && !holds(fd, from, to - from, -1)) {
		snprintf(why, len, "succeeded, and the new pages are not zeroed");
		ok = 0;
	} else if (lseek(fd, 0, SEEK_CUR) != 123) {
		snprintf(why, len, "the file position moved");
		ok = 0;
	} else if (mapped) {
		/* What the mapping still covers shows the contents. */
		uint64_t seen = r ? from : keep;

		for (uint64_t i = 0; ok && i < seen; i += ps / 2)
			ok = p[i] == pat(i, n);
		if (!ok)
			snprintf(why, len, "the mapping no longer shows the contents");
	}
	if (mapped)
		munmap(p, from);
	close(fd);
	return ok ? 0 : -1;
}

#define MiB	(1ULL << 20)

/*
 * A fault on a folio of order @how, in a child. A buffer shrunk to a page
 * and grown to 2 << order pages gets its folios from page 1 on, each as
 * large as its index's alignment allows: the one at page 1 << order is of
 * that order (if the page allocator had one: they are asked for once).
 */
static int fault_case(const struct entry *e, int n, int *injected, char *why, size_t len)
{
	uint64_t size = ps << (e->how + 1);
	int fd, st;
	pid_t pid;

	fd = open(DEV, O_RDWR);
	if (fd < 0)
		FAIL("open: %s", strerror(errno));
	if (set_size(fd, ps) || set_size(fd, size) || fill(fd, size, n)) {
		close(fd);
		FAIL("set up the buffer: %s", strerror(errno));
	}
	pid = fork();
	if (pid == 0) {
		unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		uint64_t off = size / 2 + size / 4 + 77;
		unsigned char v;
		int inj;

		if (p == MAP_FAILED || nth_open() < 0)
			_exit(10);
		arm(n);
		v = *(volatile unsigned char *)(p + off);	/* the fault */
		inj = disarm();
		if (v != pat(off, n))
			_exit(11);
		p[size - 1] = 0x5a;
		if (pread(fd, &v, 1, size - 1) == 1 && v == 0x5a)
			_exit(inj ? 0 : 1);
		_exit(12);
	}
	waitpid(pid, &st, 0);
	close(fd);
	*injected = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	if (WIFSIGNALED(st))
		FAIL("the faulting process died of signal %s", sigabbrev_np(WTERMSIG(st)));
	if (!WIFEXITED(st) || WEXITSTATUS(st) > 1)
		FAIL("the faulting process exited with %d (10: set-up, 11: wrong value read, 12: a store not seen by read())",
		     WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}

#define IO_OFF	100
#define IO_LEN	(16 * ps + 300)

/* read() (@how 0) or write() (@how 1) of 16 pages and 300 bytes at 100. */
static int io_case(const struct entry *en, int n, int *injected, char *why, size_t len)
{
	int writing = en->how;
	uint64_t size = 32 * ps;
	unsigned char *ubuf;
	ssize_t r;
	int fd, e, ok = 1;
	off_t pos;

	ubuf = malloc(IO_LEN);
	fd = open(DEV, O_RDWR);
	if (!ubuf || fd < 0 || set_size(fd, size) || fill(fd, size, n) ||
	    lseek(fd, IO_OFF, SEEK_SET) != IO_OFF) {
		snprintf(why, len, "set up: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		free(ubuf);
		return -1;
	}
	/* Faulted in now: only the driver's copy is in the call. */
	for (size_t i = 0; i < IO_LEN; i++)
		ubuf[i] = pat(i, n + 1);
	arm(n);
	r = writing ? write(fd, ubuf, IO_LEN) : read(fd, ubuf, IO_LEN);
	e = errno;
	*injected = disarm();
	pos = lseek(fd, 0, SEEK_CUR);
	if (r < 0 && e != EFAULT) {
		snprintf(why, len, "failed with %s, not EFAULT", strerrorname_np(e));
		ok = 0;
	} else if (pos != IO_OFF + (r > 0 ? r : 0)) {
		snprintf(why, len, "returned %zd, but the position is %lld", r, (long long)pos);
		ok = 0;
	} else if (r == 0) {
		snprintf(why, len, "returned 0");
		ok = 0;
	} else if (!writing && r < 0) {
		/*
		 * An error only when nothing was copied: once some bytes are,
		 * read() returns their count (its position would not move).
		 */
		for (size_t i = 0; ok && i < IO_LEN; i++)
			ok = ubuf[i] == pat(i, n + 1);
		if (!ok)
			snprintf(why, len, "failed with EFAULT after copying some bytes");
	} else if (!writing) {
		for (ssize_t i = 0; ok && i < r; i++)
			ok = ubuf[i] == pat(IO_OFF + i, n);
		if (!ok)
			snprintf(why, len, "returned %zd, but not the buffer's bytes", r);
		ok = ok && holds(fd, 0, size, n);
		if (!ok && !why[0])
			snprintf(why, len, "the buffer changed");
	} else {
		unsigned char *b = malloc(size);

		ok = b && pread(fd, b, size, 0) == (ssize_t)size;
		for (uint64_t i = 0; ok && i < size; i++) {
			int written = r > 0 && i >= IO_OFF && i < IO_OFF + (uint64_t)r;

			ok = b[i] == (written ? pat(i - IO_OFF, n + 1) : pat(i, n));
		}
		free(b);
		if (!ok)
			snprintf(why, len, "returned %zd, but the buffer holds something else", r);
	}
	close(fd);
	free(ubuf);
	return ok ? 0 : -1;
}

/* Whether /proc/self/maps has a mapping of the device at @p. */
static int mapped_at(void *p)
{
	char line[512], want[32];
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;

	snprintf(want, sizeof(want), "%lx-", (unsigned long)p);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, want, strlen(want)) && strstr(line, DEV))
			found = 1;
	if (f)
		fclose(f);
	return found;
}

static int fixed_lost;

/* mmap(), or with @how mmap(MAP_FIXED) over a mapping of the buffer. */
static int mmap_case(const struct entry *en, int n, int *injected, char *why, size_t len)
{
	int fixed = en->how;
	unsigned char *old = NULL, *p;
	int fd, e, ok = 1;

	fd = new_buffer(default_size, n, why, len);
	if (fd < 0)
		return -1;
	if (fixed) {
		old = mmap(NULL, default_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (old == MAP_FAILED) {
			close(fd);
			FAIL("the first mmap: %s", strerror(errno));
		}
	}
	arm(n);
	p = mmap(old, default_size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | (fixed ? MAP_FIXED : 0), fd, 0);
	e = errno;
	*injected = disarm();
	if (p == MAP_FAILED) {
		if (e != ENOMEM) {
			snprintf(why, len, "failed with %s, not ENOMEM", strerrorname_np(e));
			ok = 0;
		} else if (fixed && !mapped_at(old)) {
			/* The core unmapped the old range before it failed. */
			fixed_lost++;
		} else if (fixed) {
			ok = old[default_size - 1] == pat(default_size - 1, n);
			if (!ok)
				snprintf(why, len, "failed, and the old mapping shows something else");
		}
	} else {
		ok = p[default_size / 2] == pat(default_size / 2, n) && (!fixed || p == old);
		if (!ok)
			snprintf(why, len, "succeeded, but the mapping does not show the buffer");
	}
	if (p != MAP_FAILED)
		munmap(p, default_size);
	else if (fixed)
		munmap(old, default_size);
	close(fd);
	return ok ? 0 : -1;
}

/*
 * The last reference to a buffer: close() with no mapping (the driver's
 * release runs), close() with a mapping left (it does not), and the last
 * munmap() after close() (the release runs from there).
 */
enum last_ref { CLOSE_UNMAPPED, CLOSE_MAPPED, MUNMAP_CLOSED };

static int last_ref_case(const struct entry *en, int n, int *injected, char *why, size_t len)
{
	enum last_ref how = en->how;
	unsigned char *p = MAP_FAILED;
	int fd, r, e, ok = 1;

	fd = new_buffer(default_size, n, why, len);
	if (fd < 0)
		return -1;
	if (how != CLOSE_UNMAPPED) {
		p = mmap(NULL, default_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			close(fd);
			FAIL("mmap: %s", strerror(errno));
		}
		p[0] = pat(0, n);
	}
	if (how == MUNMAP_CLOSED)
		close(fd);
	arm(n);
	r = how == MUNMAP_CLOSED ? munmap(p, default_size) : close(fd);
	e = errno;
	*injected = disarm();
	/* munmap() may need memory to change the VMA tree. */
	if (r && !(how == MUNMAP_CLOSED && e == ENOMEM)) {
		snprintf(why, len, "failed with %s", strerrorname_np(e));
		ok = 0;
	}
	if (p != MAP_FAILED && (how == CLOSE_MAPPED || r)) {
		/* The mapping left still works. */
		ok &= p[default_size - 1] == pat(default_size - 1, n);
		if (!ok && !why[0])
			snprintf(why, len, "the mapping left no longer shows the buffer");
		munmap(p, default_size);
	}
	return ok ? 0 : -1;
}

/* --- main ------------------------------------------------------------ */

static int setup_fault_injection(void)
{
	if (access(DEBUGFS "/failslab", F_OK) &&
	    mount("debugfs", DEBUGFS, "debugfs", 0, NULL))
		return -1;
	/* Sleeping, highmem and order-0 allocations fail too; no reports. */
	if (write_str(DEBUGFS "/failslab/ignore-gfp-wait", "N") ||
	    write_str(DEBUGFS "/failslab/verbose", "0") ||
	    write_str(DEBUGFS "/fail_page_alloc/ignore-gfp-wait", "N") ||
	    write_str(DEBUGFS "/fail_page_alloc/ignore-gfp-highmem", "N") ||
	    write_str(DEBUGFS "/fail_page_alloc/min-order", "0") ||
	    write_str(DEBUGFS "/fail_page_alloc/verbose", "0") ||
	    write_str(DEBUGFS "/fail_usercopy/verbose", "0"))
		return -1;
	return 0;
}

static const struct entry entries[] = {
	{ "open, the first buffer (mounts the pseudo file system)", open_case, 0, 0, 0 },
	{ "open, another buffer open", open_case, 0, 0, 1 },
	{ "open, single pages (max_folio_order=0)", open_case, 0, 0, 2 },
	{ "grow 1 page to 2", resize_case, PAGES(1), PAGES(2), 0 },
	{ "grow 1 page to 64", resize_case, PAGES(1), PAGES(64), 0 },
	{ "grow 1 page to 1 MiB", resize_case, PAGES(1), MiB, 0 },
	{ "grow 2 MiB to 8 MiB (PMD-sized folios)", resize_case, 2 * MiB, 8 * MiB, 0 },
	{ "grow 1 page to 1 MiB while mapped", resize_case, PAGES(1), MiB, 1 },
	{ "grow 2 MiB to 6 MiB while mapped", resize_case, 2 * MiB, 6 * MiB, 1 },
	{ "shrink 4 MiB to 2 MiB (at a folio's end)", resize_case, 4 * MiB, 2 * MiB, 0 },
	{ "shrink 4 MiB to 1 page (splits a 1 MiB folio)", resize_case, 4 * MiB, PAGES(1), 0 },
	{ "shrink 4 MiB to 3 MiB + 1 page while mapped (splits a mapped folio)",
	  resize_case, 4 * MiB, 3 * MiB + 4096, 1 },
	{ "shrink 64 pages to 3 while mapped", resize_case, PAGES(64), PAGES(3), 1 },
	{ "read() of 16 pages and 300 bytes", io_case, 0, 0, 0 },
	{ "write() of 16 pages and 300 bytes", io_case, 0, 0, 1 },
	{ "mmap()", mmap_case, 0, 0, 0 },
	{ "mmap(MAP_FIXED) over a mapping of the buffer", mmap_case, 0, 0, 1 },
	{ "the last close(), no mapping (frees the buffer)", last_ref_case, 0, 0,
	  CLOSE_UNMAPPED },
	{ "the last close(), with a mapping left", last_ref_case, 0, 0, CLOSE_MAPPED },
	{ "the last munmap(), after close() (frees the buffer)", last_ref_case, 0, 0,
	  MUNMAP_CLOSED },
};

int main(int argc, char **argv)
{
	/* inject [TEXT]: only the entry points whose name has TEXT. */
	const char *only = argc > 1 ? argv[1] : NULL;
	long long unev0, unev1, misses;
	int r, e;
	int have_cg, failures, max_order, i;
	char name[96];

	ps = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	ksft_print_header();
	if (!module_loaded() && load())
		return fprintf(stderr, "cannot load %s\n", MODULE), 2;
	if (setup_fault_injection() || nth_open() < 0) {
		check(0, "fault injection: no fail-nth, failslab, fail_page_alloc or fail_usercopy (CONFIG_FAULT_INJECTION_DEBUG_FS, FAILSLAB, FAIL_PAGE_ALLOC, FAULT_INJECTION_USERCOPY)");
		return finish();
	}
	if (trace_setup()) {
		check(0, "tracefs: no kretprobe on should_fail_ex() (CONFIG_KPROBE_EVENTS)");
		return finish();
	}
	default_size = read_ll("/sys/module/" MODULE "/parameters/default_size");
	default_size = (default_size + ps - 1) / ps * ps;
	max_order = (int)read_ll("/sys/module/" MODULE "/parameters/max_folio_order");
	have_cg = enter_cgroup(CG);
	unev0 = have_cg ? settled_stat(CG "/memory.stat", "unevictable") : -1;

	for (i = 0; i < (int)(sizeof(entries) / sizeof(entries[0])); i++)
		if (!only || strstr(entries[i].name, only))
			entry_point(&entries[i]);
	for (i = 0; i <= max_order; i++) {
		struct entry fault = { name, fault_case, 0, 0, i };

		snprintf(name, sizeof(name), "a fault on a folio of order %d", i);
		if (!only || strstr(name, only))
			entry_point(&fault);
	}
	failures = trace_collect();
	misses = trace_misses();
	trace_teardown();

	diag("figure: inject cases=%lld failures=%lld sites=%d kretprobe_misses=%lld mmap_fixed_lost_the_old_mapping=%d",
	     cases, injected_total, nsites, misses, fixed_lost);
	for (i = 0; i < nsites; i++)
		diag("site: %s: %d failures (%s)", sites[i].key, sites[i].hits, sites[i].entries);
	check(failures == injected_total,
	      "the trace recorded every injected failure with its stack (%d of %lld)",
	      failures, injected_total);
	for (i = 0; i < S_NR; i++)
		check(driver_site_hits[i] > 0, "the driver's allocation site was failed: %s (%d times)",
		      driver_site_name[i], driver_site_hits[i]);

	if (have_cg) {
		unev1 = settled_stat(CG "/memory.stat", "unevictable");
		check(unev1 == unev0,
		      "the cgroup holds no more buffer pages than before (unevictable %+lld bytes)",
		      unev1 - unev0);
		leave_cgroup(CG);
	} else {
		check(0, "no cgroup v2 memory controller to count the charge in");
	}
	r = unload();
	e = errno;
	check(r == 0 && !module_loaded(),
	      "the module unloads: no buffer, mount or module reference left%s%s",
	      r ? ": " : "", r ? strerror(e) : "");
	return finish();
}
