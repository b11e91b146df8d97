// SPDX-License-Identifier: GPL-2.0
/*
 * Bad input for /dev/mmap_buf (v2 of the driver), table-driven, run in the
 * guest by scripts/guest-tests.
 *
 * What it checks: every entry point of the device (mmap, mremap, mprotect,
 * the ioctl, read/write and their positional and vector forms, lseek, the
 * module parameters), each with one class of argument per case, and the
 * exact result of that one call: a return value, or -1 and an errno.
 *
 * Every case gets a fresh open file whose buffer is NPAGES pages filled with
 * a pattern. A model of the buffer follows what the case did: the bytes (the
 * pattern, plus what a successful call wrote, and nothing where the errno
 * says nothing was written), the size and the file position. The model also
 * follows the v2 resize rules: a shrink cuts the bytes past the new size
 * (even while mapped; the cut pages raise SIGBUS through every mapping), and
 * a grow adds zeroes (also seen through the mappings that cover them), so
 * bytes of the model at or past the size are always zero. After each case
 * the test unmaps what the case mapped and checks the file position, the
 * size (lseek(SEEK_END)) and every byte of the buffer against the model.
 * Then, with nothing mapped any more, it shrinks the buffer to one page and
 * grows it back to one page more than it had: both must succeed, page 0 must
 * be kept and everything after it must read as zeroes, through read() and
 * through a new mapping, so that no case leaves a page behind in the
 * buffer's page cache that a later grow would find or show. (v1 checked
 * here that no mapping count leaked through a refused resize, EBUSY; v2 has
 * no such count and no EBUSY.)
 *
 * The ioctl header is the driver's private one, included by its path in the
 * kernel tree (compile with -I<kernel tree>). v1's MMAP_BUF_GET_SIZE is gone:
 * its number now gets ENOTTY and the size is lseek(fd, 0, SEEK_END);
 * MMAP_BUF_SET_SIZE needs the file open for writing (EBADF otherwise).
 *
 * Project-side rather than in the kselftest, although it uses the kselftest
 * harness: most of these results are those of the VFS and mm layers in front
 * of the driver (access_ok(), the mmap() and lseek() argument checks,
 * rw_verify_area()), which a driver's kselftest should not pin down. The
 * errnos the driver itself defines are asserted by
 * tools/testing/selftests/mmap_buf in the series.
 *
 * The last cases look at the module's parameters in sysfs and try to write
 * them.
 *
 * The program uses the kselftest harness, kselftest_harness.h (compile with
 * -I<kernel tree>/tools/testing/selftests too). Each row of the table is a
 * variant of one fixture, named after the row's function, and the harness
 * runs each variant as a test in a process of its own: a row that crashes
 * fails alone, and the rows after it still run. A row's setup opens the
 * device and fills the buffer, its test makes the row's call and checks the
 * result and the buffer, its teardown closes the file. What the rows share
 * is found once, in main(), before the harness forks: the page size, the
 * module's max_size and the largest max_folio_order (probed before any row
 * writes that parameter). If max_size cannot be read (the module is not
 * loaded), every row is skipped.
 *
 * The harness owns the command line (-h lists its options, -l the rows, -v
 * NAME runs the row NAME); the device is always /dev/mmap_buf. It prints
 * TAP: one "ok" or "not ok" line per row, where a failed row's line says
 * what the row checks and what went wrong. It exits 0 only if no row failed.
 */
#define _GNU_SOURCE
/* 64-bit file offsets also in a 32-bit build (-m32, the compat paths). */
#define _FILE_OFFSET_BITS 64
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <inttypes.h>

#include "drivers/misc/mmap_buf/mmap_buf_uapi.h"
#include "kselftest_harness.h"

#define NPAGES		4
#define MAX_MAPS	4
/* The model covers this many pages; past them, and past the size, zeroes. */
#define MODEL_PAGES	(4 * NPAGES)

/*
 * A count past what any buffer holds. In a 32-bit build it is 16 MiB, so
 * that the range still ends inside the 4 GiB address space from a mapping
 * near its top.
 */
#if SIZE_MAX > 0xffffffffUL
#define HUGE_COUNT		((size_t)1 << 40)
#define HUGE_COUNT_NAME		"1 TiB"
/*
 * A count of SIZE_MAX (or above SSIZE_MAX) from a stack address runs past
 * the top of the 64-bit user address space: access_ok() refuses it, EFAULT.
 * From a 32-bit process it stays below that top, which is what access_ok()
 * checks under a 64-bit kernel (not the process's 4 GiB; x86_64 and arm64
 * alike): the call copies what the buffer holds, so those cases give it a
 * buffer that size. The 32-bit expectations are those of a compat task: a
 * native 32-bit kernel's access_ok() refuses such a range.
 */
#define USER_64BIT
#else
#define HUGE_COUNT		((size_t)16 << 20)
#define HUGE_COUNT_NAME		"16 MiB"
#endif

/* The ioctl type of the driver, and v1's MMAP_BUF_GET_SIZE, which is gone. */
#define MMAP_BUF_IOC_TYPE	_IOC_TYPE(MMAP_BUF_SET_SIZE)
#define V1_GET_SIZE		_IOR(MMAP_BUF_IOC_TYPE, 0x00, __u64)

static const char *const dev = "/dev/mmap_buf";
static size_t ps, size, mcap;	/* mcap: bytes the model covers */
static uint64_t max_size;
static bool have_max_size;	/* false: every row is skipped */
/* What a case's own check found wrong, for its "not ok" line; "" if nothing. */
static char note[160];

/* What a case works on; reset before each. */
struct fx {
	int fd;
	unsigned char *model;	/* what the buffer must hold afterwards (mcap bytes) */
	off_t pos;		/* the file position it must have afterwards */
	uint64_t size;		/* and its size */
	void *maps[MAX_MAPS];	/* mappings to undo before the checks */
	size_t lens[MAX_MAPS];
	int nmaps;
	void *scratch;		/* 2 pages: read/write, then PROT_NONE */
	unsigned char seed;
};

static unsigned char pat(unsigned char seed, size_t i)
{
	return (unsigned char)(i * 131 + seed + (i >> 12));
}

static void fill(unsigned char *p, size_t n, unsigned char seed, size_t from)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pat(seed, from + i);
}

/*
 * The buffer is now @sz bytes (a multiple of the page size): a shrink cuts
 * the model, so that the bytes at or past the size stay zero and a later
 * grow reads as zeroes, as the driver's does.
 */
static void model_resize(struct fx *f, uint64_t sz)
{
	if (sz < f->size && sz < mcap)
		memset(f->model + sz, 0, (f->size < mcap ? f->size : mcap) - sz);
	f->size = sz;
}

/*
 * MMAP_BUF_SET_SIZE: 0, or -1 with errno set. On success the model follows,
 * to @sz rounded up to pages, as the driver rounds it.
 */
static long set_size(struct fx *f, uint64_t sz)
{
	long r = ioctl(f->fd, MMAP_BUF_SET_SIZE, &sz);

	if (!r)
		model_resize(f, (sz + ps - 1) / ps * ps);
	return r;
}

/*
 * The size of @fd's buffer: where lseek(SEEK_END) puts the position, which
 * is then put back (-1 if it cannot be: a shrink left it past the end).
 */
static off_t buf_size(int fd)
{
	off_t pos = lseek(fd, 0, SEEK_CUR), end;

	if (pos < 0)
		return -1;
	end = lseek(fd, 0, SEEK_END);
	if (end < 0 || lseek(fd, pos, SEEK_SET) != pos)
		return -1;
	return end;
}

/*
 * SIGBUS, caught where a case expects it (past the end of the buffer, as
 * past the end of a truncated file); anywhere else it kills the program.
 */
static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_armed;
static void *volatile bus_addr;

static void bus_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!bus_armed) {
		/* Not expected: die of it, as without a handler. */
		signal(sig, SIG_DFL);
		return;
	}
	bus_addr = si->si_addr;
	siglongjmp(bus_jmp, 1);
}

/*
 * Installed by each row's setup, in the row's own process: the harness's
 * processes keep the default action, so that when a row dies of a SIGBUS
 * it did not expect, the harness reports the signal and fails the row.
 */
static int catch_sigbus(void)
{
	struct sigaction sa = { 0 };

	sa.sa_sigaction = bus_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGBUS, &sa, NULL);
}

/* Whether reading, or writing, the byte at @p raises SIGBUS for @p itself. */
static bool raises_sigbus(unsigned char *p, bool write)
{
	bus_addr = NULL;
	if (sigsetjmp(bus_jmp, 1)) {
		bus_armed = 0;
		if (bus_addr != p)
			snprintf(note, sizeof(note), "SIGBUS at %p, not %p", bus_addr, (void *)p);
		return bus_addr == p;
	}
	bus_armed = 1;
	if (write)
		*(volatile unsigned char *)p = 0x5a;
	else
		(void)*(volatile unsigned char *)p;
	bus_armed = 0;
	snprintf(note, sizeof(note), "%s %p past the end raised no SIGBUS",
		 write ? "writing" : "reading", (void *)p);
	return false;
}

static void keep_map(struct fx *f, void *p, size_t len)
{
	if (p == MAP_FAILED || f->nmaps == MAX_MAPS)
		return;
	f->maps[f->nmaps] = p;
	f->lens[f->nmaps++] = len;
}

static long do_map(struct fx *f, size_t len, int prot, int flags, off_t off)
{
	void *p = mmap(NULL, len, prot, flags, f->fd, off);

	if (p == MAP_FAILED)
		return -1;
	keep_map(f, p, len);
	return 0;
}

/* A successful mapping must show the model's bytes at its offset. */
static long map_and_compare(struct fx *f, size_t len, off_t off)
{
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
				f->fd, off);
	size_t n = (len + ps - 1) / ps * ps;

	if (p == MAP_FAILED)
		return -1;
	keep_map(f, p, len);
	if (memcmp(p, f->model + off, n))
		return -2;
	/* And a store through it reaches the buffer. */
	p[n - 1] ^= 0x5a;
	f->model[off + n - 1] ^= 0x5a;
	return 0;
}

/* --- mmap ------------------------------------------------------------ */
static long mmap_len0(struct fx *f) { return do_map(f, 0, PROT_READ, MAP_SHARED, 0); }
static long mmap_len1(struct fx *f) { return map_and_compare(f, 1, 0); }
static long mmap_len_unaligned(struct fx *f) { return map_and_compare(f, size - ps + 7, 0); }
static long mmap_whole(struct fx *f) { return map_and_compare(f, size, 0); }
static long mmap_last_page(struct fx *f) { return map_and_compare(f, ps, size - ps); }
static long mmap_one_byte_past(struct fx *f) { return do_map(f, size + 1, PROT_READ, MAP_SHARED, 0); }
static long mmap_one_page_past(struct fx *f) { return do_map(f, size + ps, PROT_READ, MAP_SHARED, 0); }
static long mmap_off_end(struct fx *f) { return do_map(f, ps, PROT_READ, MAP_SHARED, size); }
static long mmap_off_shifted(struct fx *f) { return do_map(f, size, PROT_READ, MAP_SHARED, ps); }
static long mmap_off_unaligned(struct fx *f) { return do_map(f, ps, PROT_READ, MAP_SHARED, 1); }
static long mmap_off_huge(struct fx *f) { return do_map(f, ps, PROT_READ, MAP_SHARED, (off_t)1 << 40); }
static long mmap_off_max(struct fx *f)
{
	return do_map(f, 2 * ps, PROT_READ, MAP_SHARED, (off_t)(LLONG_MAX & ~(long long)(ps - 1)));
}
static long mmap_off_negative(struct fx *f) { return do_map(f, 2 * ps, PROT_READ, MAP_SHARED, -(off_t)ps); }
static long mmap_len_1g(struct fx *f) { return do_map(f, (size_t)1 << 30, PROT_READ, MAP_SHARED, 0); }
/* Above any TASK_SIZE (x86_64's 128 TiB, arm64's 256 TiB or 4 PiB, 4 GiB). */
static long mmap_len_huge(struct fx *f) { return do_map(f, SIZE_MAX & ~(ps - 1), PROT_READ, MAP_SHARED, 0); }
static long mmap_len_overflow(struct fx *f) { return do_map(f, SIZE_MAX - ps + 2, PROT_READ, MAP_SHARED, 0); }
static long mmap_private(struct fx *f) { return do_map(f, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, 0); }
static long mmap_private_ro(struct fx *f) { return do_map(f, ps, PROT_READ, MAP_PRIVATE, 0); }
static long mmap_exec(struct fx *f) { return do_map(f, ps, PROT_READ | PROT_EXEC, MAP_SHARED, 0); }
static long mmap_exec_only(struct fx *f) { return do_map(f, ps, PROT_EXEC, MAP_SHARED, 0); }
static long mmap_prot_none(struct fx *f) { return do_map(f, size, PROT_NONE, MAP_SHARED, 0); }
static long mmap_validate_unknown(struct fx *f)
{
	return do_map(f, ps, PROT_READ, MAP_SHARED_VALIDATE | 0x200000, 0);
}
static long mmap_validate_sync(struct fx *f)
{
	return do_map(f, ps, PROT_READ, MAP_SHARED_VALIDATE | MAP_SYNC, 0);
}
static long mmap_validate_ok(struct fx *f)
{
	return do_map(f, ps, PROT_READ, MAP_SHARED_VALIDATE, 0);
}

/* MAP_FIXED over an anonymous mapping replaces it with the buffer. */
static long mmap_fixed_over_anon(struct fx *f)
{
	unsigned char *a, *p;

	a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return -2;
	memset(a, 0xee, size);
	p = mmap(a, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, f->fd, 0);
	if (p == MAP_FAILED) {
		munmap(a, size);
		return -1;
	}
	keep_map(f, p, size);
	return p == a && !memcmp(p, f->model, size) ? 0 : -2;
}

/* ... and over another mapping of the same buffer, at another offset. */
static long mmap_fixed_over_self(struct fx *f)
{
	unsigned char *a, *p;

	a = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	if (a == MAP_FAILED)
		return -2;
	keep_map(f, a, 2 * ps);
	p = mmap(a, 2 * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, f->fd, 2 * ps);
	if (p == MAP_FAILED)
		return -1;
	return p == a && !memcmp(p, f->model + 2 * ps, 2 * ps) ? 0 : -2;
}

static long mmap_fixed_noreplace(struct fx *f)
{
	void *a = mmap(NULL, ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *p;

	if (a == MAP_FAILED)
		return -2;
	keep_map(f, a, ps);
	p = mmap(a, ps, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, f->fd, 0);
	if (p == MAP_FAILED)
		return -1;
	keep_map(f, p, ps);
	return 0;
}

static long mmap_fixed_unaligned(struct fx *f)
{
	void *a = mmap(NULL, 2 * ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *p;

	if (a == MAP_FAILED)
		return -2;
	keep_map(f, a, 2 * ps);
	p = mmap((char *)a + 1, ps, PROT_READ, MAP_SHARED | MAP_FIXED, f->fd, 0);
	if (p == MAP_FAILED)
		return -1;
	return 0;
}

static long mprotect_exec(struct fx *f)
{
	void *p = mmap(NULL, ps, PROT_READ, MAP_SHARED, f->fd, 0);

	if (p == MAP_FAILED)
		return -2;
	keep_map(f, p, ps);
	return mprotect(p, ps, PROT_READ | PROT_EXEC);
}

/* v2: no VM_DONTEXPAND, so a mapping can grow (v1: EFAULT). */
static long mremap_grow(struct fx *f)
{
	unsigned char *p = mmap(NULL, ps, PROT_READ, MAP_SHARED, f->fd, 0), *q;

	if (p == MAP_FAILED)
		return -2;
	q = mremap(p, ps, 2 * ps, MREMAP_MAYMOVE);
	keep_map(f, q == MAP_FAILED ? p : q, q == MAP_FAILED ? ps : 2 * ps);
	if (q == MAP_FAILED)
		return -1;
	/* Both pages, the one it had and the one it grew by, are the buffer's. */
	return memcmp(q, f->model, 2 * ps) ? -2 : 0;
}

/* Past the end of the buffer, the grown part raises SIGBUS when touched. */
static long mremap_grow_past_end(struct fx *f)
{
	unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0), *q;

	if (p == MAP_FAILED)
		return -2;
	q = mremap(p, size, size + ps, MREMAP_MAYMOVE);
	keep_map(f, q == MAP_FAILED ? p : q, q == MAP_FAILED ? size : size + ps);
	if (q == MAP_FAILED)
		return -1;
	if (memcmp(q, f->model, size))
		return -2;
	return raises_sigbus(q + size, false) && raises_sigbus(q + size + ps - 1, true) ? 0 : -2;
}

/* ... until the buffer grows under it: then it shows the zeroed new page. */
static long mremap_grow_then_resize(struct fx *f)
{
	unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0), *q;

	if (p == MAP_FAILED)
		return -2;
	q = mremap(p, size, size + ps, MREMAP_MAYMOVE);
	keep_map(f, q == MAP_FAILED ? p : q, q == MAP_FAILED ? size : size + ps);
	if (q == MAP_FAILED)
		return -2;
	if (set_size(f, size + ps))
		return -1;
	if (memcmp(q, f->model, size + ps))
		return -2;
	/* And a store there reaches the buffer. */
	q[size + 7] = 0x77;
	f->model[size + 7] = 0x77;
	return 0;
}

/*
 * v2: a resize is allowed while mapped (v1: EBUSY). The shrink cuts pages
 * that the mapping no longer covers; what it still maps is kept.
 */
static long mremap_shrink_then_resize(struct fx *f)
{
	unsigned char *p = mmap(NULL, size, PROT_READ, MAP_SHARED, f->fd, 0), *q;
	long r;

	if (p == MAP_FAILED)
		return -2;
	q = mremap(p, size, ps, 0);
	if (q == MAP_FAILED) {
		keep_map(f, p, size);
		return -2;
	}
	keep_map(f, q, ps);
	r = set_size(f, 2 * ps);
	if (r)
		return r;
	return memcmp(q, f->model, ps) ? -2 : 0;
}

/* v2: mmap() checks the range against the current size, after a shrink too. */
static long mmap_past_shrunk_end(struct fx *f)
{
	if (set_size(f, 2 * ps))
		return -2;
	return do_map(f, size, PROT_READ, MAP_SHARED, 0);
}

/* What a grow adds, while mapped, can be mapped and reads as zeroes. */
static long mmap_grown_part(struct fx *f)
{
	if (do_map(f, size, PROT_READ, MAP_SHARED, 0) || set_size(f, 2 * size))
		return -2;
	return map_and_compare(f, size, size);
}

/*
 * Another open file of the device, with other access modes: it has a buffer
 * of its own, so the fixture's buffer must come out untouched.
 */
static long on_other_file(int flags, int prot, int op)
{
	int fd = open(dev, flags), err;
	char c = 1;
	long r;
	void *p;

	if (fd < 0)
		return -2;
	switch (op) {
	case 0:
		p = mmap(NULL, ps, prot, MAP_SHARED, fd, 0);
		r = p == MAP_FAILED ? -1 : 0;
		err = errno;
		if (!r)
			munmap(p, ps);
		break;
	case 1:
		r = read(fd, &c, 1);
		err = errno;
		break;
	default:
		r = write(fd, &c, 1);
		err = errno;
		break;
	}
	close(fd);
	errno = err;
	return r;
}

static long mmap_wronly(struct fx *f) { (void)f; return on_other_file(O_WRONLY, PROT_WRITE, 0); }
static long mmap_rdonly_write(struct fx *f) { (void)f; return on_other_file(O_RDONLY, PROT_READ | PROT_WRITE, 0); }
static long mmap_rdonly_read(struct fx *f) { (void)f; return on_other_file(O_RDONLY, PROT_READ, 0); }
static long read_wronly(struct fx *f) { (void)f; return on_other_file(O_WRONLY, 0, 1); }
static long write_rdonly(struct fx *f) { (void)f; return on_other_file(O_RDONLY, 0, 2); }

/* --- ioctl ----------------------------------------------------------- */
static void *ro_page(struct fx *f)
{
	uint64_t *p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	keep_map(f, p, ps);
	*p = size;
	mprotect(p, ps, PROT_READ);
	return p;
}

static long ioc_unknown_nr(struct fx *f) { return ioctl(f->fd, _IO(MMAP_BUF_IOC_TYPE, 0x02), 0); }
static long ioc_unknown_type(struct fx *f)
{
	uint64_t v;

	return ioctl(f->fd, _IOR('x', 0x00, uint64_t), &v);
}
static long ioc_wrong_dir(struct fx *f)
{
	uint64_t v = size;

	return ioctl(f->fd, _IOW(MMAP_BUF_IOC_TYPE, 0x00, uint64_t), &v);
}
static long ioc_wrong_size(struct fx *f)
{
	uint32_t v;

	return ioctl(f->fd, _IOR(MMAP_BUF_IOC_TYPE, 0x00, uint32_t), &v);
}
static long ioc_zero(struct fx *f) { return ioctl(f->fd, 0, 0); }
static long ioc_fionread(struct fx *f)
{
	int v;

	return ioctl(f->fd, FIONREAD, &v);
}
/* v1's GET_SIZE is an unknown command now, and must not write its argument. */
static long get_size_gone(struct fx *f)
{
	uint64_t v = 0x5a5a5a5a5a5a5a5aULL;
	long r = ioctl(f->fd, V1_GET_SIZE, &v);
	int err = errno;

	if (v != 0x5a5a5a5a5a5a5a5aULL) {
		snprintf(note, sizeof(note), "it wrote %#llx", (unsigned long long)v);
		return -2;
	}
	errno = err;
	return r;
}
static long get_size_gone_null(struct fx *f) { return ioctl(f->fd, V1_GET_SIZE, NULL); }
static long set_null(struct fx *f) { return ioctl(f->fd, MMAP_BUF_SET_SIZE, NULL); }
static long set_unmapped(struct fx *f)
{
	return ioctl(f->fd, MMAP_BUF_SET_SIZE, (char *)f->scratch + ps);
}
static long set_kernel_addr(struct fx *f)
{
	return ioctl(f->fd, MMAP_BUF_SET_SIZE, (void *)0xffff888000000000UL);
}
static long set_ro_same(struct fx *f)
{
	void *p = ro_page(f);

	return p ? ioctl(f->fd, MMAP_BUF_SET_SIZE, p) : -2;
}
static long set_zero(struct fx *f) { return set_size(f, 0); }
static long set_cap_plus_1(struct fx *f) { return set_size(f, max_size + 1); }
static long set_cap_plus_page(struct fx *f) { return set_size(f, max_size + ps); }
static long set_u64_max(struct fx *f) { return set_size(f, UINT64_MAX); }
static long set_u64_max_aligned(struct fx *f) { return set_size(f, UINT64_MAX - ps + 2); }
static long set_bit63(struct fx *f) { return set_size(f, 1ULL << 63); }
static long set_bit32(struct fx *f) { return set_size(f, (1ULL << 32) + max_size); }
static long set_same(struct fx *f) { return set_size(f, size); }

/* Shrinks keep the start; growing back adds zeroes, never old bytes. */
static long set_one(struct fx *f) { return set_size(f, 1); }
static long set_shrink_grow(struct fx *f)
{
	long r = set_size(f, ps);

	return r ? r : set_size(f, size);
}
static long set_cap(struct fx *f)
{
	long r = set_size(f, max_size);

	/* Back to NPAGES pages for the content check. */
	return r ? r : set_size(f, size);
}
static long set_cap_minus_1(struct fx *f)
{
	long r = set_size(f, max_size - 1);
	off_t v;

	if (r)
		return r;
	v = buf_size(f->fd);
	if (v != (off_t)max_size) {
		snprintf(note, sizeof(note), "lseek(SEEK_END) says %lld", (long long)v);
		return -2;
	}
	return set_size(f, size);
}
/* The size from an unaligned address, which get_user() reads as well. */
static long set_unaligned(struct fx *f)
{
	unsigned char *p = f->scratch;
	uint64_t v = size + ps;
	long r;

	memcpy(p + 3, &v, sizeof(v));
	r = ioctl(f->fd, MMAP_BUF_SET_SIZE, p + 3);
	if (!r)
		model_resize(f, size + ps);
	return r;
}

/*
 * v2: resizing while mapped is allowed (v1: EBUSY). A grow leaves what is
 * mapped as it was; a mapping of the last page still shows it.
 */
static long set_while_mapped(struct fx *f)
{
	unsigned char *p = mmap(NULL, ps, PROT_READ, MAP_SHARED, f->fd, 3 * ps);
	long r;

	if (p == MAP_FAILED)
		return -2;
	keep_map(f, p, ps);
	r = set_size(f, 2 * size);
	if (r)
		return r;
	return memcmp(p, f->model + 3 * ps, ps) ? -2 : 0;
}
static long set_same_while_mapped(struct fx *f)
{
	unsigned char *p = mmap(NULL, ps, PROT_READ, MAP_SHARED, f->fd, 0);
	long r;

	if (p == MAP_FAILED)
		return -2;
	keep_map(f, p, ps);
	r = set_size(f, size);
	if (r)
		return r;
	return memcmp(p, f->model, ps) ? -2 : 0;
}
static long set_while_prot_none_mapped(struct fx *f)
{
	if (do_map(f, size, PROT_NONE, MAP_SHARED, 0))
		return -2;
	return set_size(f, ps);
}
/*
 * The whole buffer mapped, every page touched, so that a resize has to
 * unmap what it cuts; NULL if mmap() fails.
 */
static unsigned char *map_all_touched(struct fx *f)
{
	unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);

	if (p == MAP_FAILED)
		return NULL;
	keep_map(f, p, size);
	for (size_t i = 0; i < size; i += ps)
		(void)*(volatile unsigned char *)(p + i);
	return p;
}

/* A shrink unmaps the cut pages from the mapping: touching them is SIGBUS. */
static long set_shrink_while_mapped_sigbus(struct fx *f)
{
	unsigned char *p = map_all_touched(f);
	long r;

	if (!p)
		return -2;
	r = set_size(f, 2 * ps);
	if (r)
		return r;
	if (memcmp(p, f->model, 2 * ps))
		return -2;
	return raises_sigbus(p + 2 * ps, false) && raises_sigbus(p + size - 1, true) ? 0 : -2;
}
/* Shrink and grow back under a mapping: it shows zeroes, not the old bytes. */
static long set_shrink_grow_while_mapped(struct fx *f)
{
	unsigned char *p = map_all_touched(f);
	long r;

	if (!p)
		return -2;
	r = set_size(f, ps);
	if (!r)
		r = set_size(f, size);
	if (r)
		return r;
	if (memcmp(p, f->model, size))
		return -2;
	p[size - 1] = 0x99;
	f->model[size - 1] = 0x99;
	return 0;
}
/*
 * A shrink does not move the file position: past the end now, where read()
 * returns 0 and write() fails with ENOSPC.
 */
static long set_shrink_below_position(struct fx *f)
{
	char c = 1;
	long r;

	if (lseek(f->fd, size - 1, SEEK_SET) != (off_t)size - 1)
		return -2;
	f->pos = size - 1;
	r = set_size(f, ps);
	if (r)
		return r;
	if (lseek(f->fd, 0, SEEK_CUR) != f->pos) {
		snprintf(note, sizeof(note), "the position moved");
		return -2;
	}
	if (read(f->fd, &c, 1) != 0 || write(f->fd, &c, 1) != -1 || errno != ENOSPC) {
		snprintf(note, sizeof(note), "read() or write() past the end did not fail");
		return -2;
	}
	return 0;
}

/*
 * v2: SET_SIZE needs the file open for writing, as write() does (v1 allowed
 * it on an O_RDONLY file). Another file, with a buffer of its own: it must
 * come out as it was.
 */
static long set_on_other_file(int flags, const void *arg)
{
	off_t before, after;
	uint64_t head = 1;
	long r;
	int fd = open(dev, flags), err;

	if (fd < 0)
		return -2;
	before = lseek(fd, 0, SEEK_END);
	r = ioctl(fd, MMAP_BUF_SET_SIZE, arg);
	err = errno;
	after = lseek(fd, 0, SEEK_END);
	if (r) {
		/* Nothing changed: the size, and the (zeroed) contents. */
		if (after != before || (flags != O_WRONLY &&
		    (pread(fd, &head, sizeof(head), 0) != sizeof(head) || head))) {
			snprintf(note, sizeof(note), "size %lld, was %lld; first bytes %#llx",
				 (long long)after, (long long)before, (unsigned long long)head);
			r = -2;
		}
	} else if (after != 2 * (off_t)ps) {
		snprintf(note, sizeof(note), "size %lld after SET_SIZE to 2 pages", (long long)after);
		r = -2;
	}
	close(fd);
	errno = err;
	return r;
}
static long set_rdonly_fd(struct fx *f)
{
	uint64_t sz = 2 * ps;

	(void)f;
	return set_on_other_file(O_RDONLY, &sz);
}
/* EBADF comes first: the argument is not even read. */
static long set_rdonly_null(struct fx *f) { (void)f; return set_on_other_file(O_RDONLY, NULL); }
/* Open for writing is enough: reading is not needed. */
static long set_wronly_fd(struct fx *f)
{
	uint64_t sz = 2 * ps;

	(void)f;
	return set_on_other_file(O_WRONLY, &sz);
}

/* --- read/write ------------------------------------------------------ */
static long rd(struct fx *f, void *p, size_t n)
{
	/* Raw system calls: the point is to pass what libc would warn about. */
	ssize_t r = syscall(SYS_read, f->fd, p, n);

	if (r > 0)
		f->pos += r;
	return r;
}

static long wr(struct fx *f, const void *p, size_t n, const unsigned char *model_src)
{
	ssize_t r = syscall(SYS_write, f->fd, p, n);

	if (r > 0) {
		if (model_src)
			memcpy(f->model + f->pos, model_src, r);
		f->pos += r;
	}
	return r;
}

static long read_null(struct fx *f) { return rd(f, NULL, 1); }
static long read_null_zero(struct fx *f) { return rd(f, NULL, 0); }
static long read_unmapped(struct fx *f) { return rd(f, (char *)f->scratch + ps, ps); }
static long read_kernel_addr(struct fx *f) { return rd(f, (void *)0xffff888000000000UL, 16); }
static long read_ro(struct fx *f)
{
	void *p = ro_page(f);

	return p ? rd(f, p, 16) : -2;
}
static long read_prot_none_mapping(struct fx *f)
{
	unsigned char *p = mmap(NULL, ps, PROT_NONE, MAP_SHARED, f->fd, 0);

	if (p == MAP_FAILED)
		return -2;
	keep_map(f, p, ps);
	return rd(f, p, ps);
}
/* Into a read-only mapping of the buffer itself: nothing may change. */
static long read_ro_self_mapping(struct fx *f)
{
	unsigned char *p = mmap(NULL, size, PROT_READ, MAP_SHARED, f->fd, 0);

	if (p == MAP_FAILED)
		return -2;
	keep_map(f, p, size);
	lseek(f->fd, ps, SEEK_SET);
	f->pos = ps;
	return rd(f, p, ps);
}
/* Into a writable mapping of the buffer: page 0 is copied to page 1. */
static long read_into_self_mapping(struct fx *f)
{
	unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	long r;

	if (p == MAP_FAILED)
		return -2;
	keep_map(f, p, size);
	r = rd(f, p + ps, ps);
	if (r == (long)ps)
		memcpy(f->model + ps, f->model, ps);
	return r;
}
/*
 * @len bytes (whole pages) just before an inaccessible page: a driver that
 * copies more than the buffer holds hits that page (EFAULT, or a short
 * count) instead of the heap. Free with munmap(p, len + ps).
 */
static unsigned char *guarded(size_t len)
{
	unsigned char *p = mmap(NULL, len + ps, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + len, ps, PROT_NONE)) {
		munmap(p, len + ps);
		return NULL;
	}
	return p;
}

/* A count beyond what the buffer holds returns what it holds. */
static long read_count(struct fx *f, size_t count)
{
	unsigned char *p = guarded(size);
	long r;

	if (!p)
		return -2;
	r = rd(f, p, count);
	if (r > 0 && memcmp(p, f->model, r))
		r = -2;
	munmap(p, size + ps);
	return r;
}
static long read_huge_count(struct fx *f) { return read_count(f, HUGE_COUNT); }
#ifdef USER_64BIT
static long read_size_max(struct fx *f)
{
	char c;

	return rd(f, &c, SIZE_MAX);
}
static long read_ssize_max(struct fx *f)
{
	char c;

	return rd(f, &c, (size_t)SSIZE_MAX + 1);
}
#else
static long read_size_max(struct fx *f) { return read_count(f, SIZE_MAX); }
static long read_ssize_max(struct fx *f) { return read_count(f, (size_t)SSIZE_MAX + 1); }
#endif
static long readv_second_unmapped(struct fx *f)
{
	unsigned char *p = f->scratch;
	struct iovec iov[2] = {
		{ .iov_base = p, .iov_len = 100 },
		{ .iov_base = p + ps, .iov_len = 100 },
	};
	ssize_t r = readv(f->fd, iov, 2);

	if (r > 0)
		f->pos += r;
	if (r > 0 && memcmp(p, f->model, r))
		return -2;
	return r;
}
static long pread_negative(struct fx *f)
{
	char c;

	return pread(f->fd, &c, 1, -1);
}
static long pread_at_end(struct fx *f)
{
	char c;

	return pread(f->fd, &c, 1, size);
}
static long pread_across_end(struct fx *f)
{
	unsigned char c[16];
	long r = pread(f->fd, c, sizeof(c), size - 1);

	return r == 1 && c[0] != f->model[size - 1] ? -2 : r;
}
static long pread_huge_pos(struct fx *f)
{
	char c;

	return pread(f->fd, &c, 1, (off_t)1 << 62);
}
static long pread_pos_overflow(struct fx *f)
{
	char c[2];

	return pread(f->fd, c, 2, LLONG_MAX);
}

static long write_null(struct fx *f) { return wr(f, NULL, 1, NULL); }
static long write_null_zero(struct fx *f) { return wr(f, NULL, 0, NULL); }
static long write_unmapped(struct fx *f) { return wr(f, (char *)f->scratch + ps, ps, NULL); }
static long write_kernel_addr(struct fx *f) { return wr(f, (void *)0xffff888000000000UL, 16, NULL); }
/* From a read-only mapping: reading it is all a write needs. */
static long write_from_ro(struct fx *f)
{
	unsigned char *p = ro_page(f);

	if (!p)
		return -2;
	return wr(f, p, ps, p);
}
static long write_partly_unmapped(struct fx *f)
{
	unsigned char *p = f->scratch;

	fill(p, ps, 77, 0);
	/* The last 100 bytes of the readable page, then the unmapped one. */
	return wr(f, p + ps - 100, 200, p + ps - 100);
}
static long write_count(struct fx *f, size_t count)
{
	unsigned char *p = guarded(size);
	long r;

	if (!p)
		return -2;
	fill(p, size, 99, 0);
	r = wr(f, p, count, p);
	munmap(p, size + ps);
	return r;
}
static long write_huge_count(struct fx *f) { return write_count(f, HUGE_COUNT); }
#ifdef USER_64BIT
static long write_size_max(struct fx *f)
{
	char c = 1;

	return wr(f, &c, SIZE_MAX, NULL);
}
#else
static long write_size_max(struct fx *f) { return write_count(f, SIZE_MAX); }
#endif
static long write_at_end(struct fx *f)
{
	char c = 1;

	lseek(f->fd, size, SEEK_SET);
	f->pos = size;
	return wr(f, &c, 1, NULL);
}
static long write_across_end(struct fx *f)
{
	unsigned char c[16];

	fill(c, sizeof(c), 55, 0);
	lseek(f->fd, size - 3, SEEK_SET);
	f->pos = size - 3;
	return wr(f, c, sizeof(c), c);
}
static long pwrite_negative(struct fx *f)
{
	char c = 1;

	return pwrite(f->fd, &c, 1, -1);
}
static long pwrite_huge_pos(struct fx *f)
{
	char c = 1;

	return pwrite(f->fd, &c, 1, (off_t)1 << 62);
}
static long pwrite_pos_overflow(struct fx *f)
{
	char c[2] = { 1, 2 };

	return pwrite(f->fd, c, 2, LLONG_MAX);
}
/* From a mapping of the buffer itself: page 2 is copied onto page 0. */
static long pwrite_from_self_mapping(struct fx *f)
{
	unsigned char *p = mmap(NULL, size, PROT_READ, MAP_SHARED, f->fd, 0);
	long r;

	if (p == MAP_FAILED)
		return -2;
	keep_map(f, p, size);
	r = pwrite(f->fd, p + 2 * ps, ps, 0);
	if (r == (long)ps)
		memcpy(f->model, f->model + 2 * ps, ps);
	return r;
}

/* --- lseek ----------------------------------------------------------- */
static long seek(struct fx *f, off_t off, int whence)
{
	off_t r = lseek(f->fd, off, whence);

	if (r >= 0)
		f->pos = r;
	return r;
}

static long seek_set_end(struct fx *f) { return seek(f, size, SEEK_SET); }
static long seek_set_past(struct fx *f) { return seek(f, size + 1, SEEK_SET); }
static long seek_set_neg(struct fx *f) { return seek(f, -1, SEEK_SET); }
static long seek_set_max(struct fx *f) { return seek(f, LLONG_MAX, SEEK_SET); }
static long seek_cur_back_past_0(struct fx *f)
{
	seek(f, ps, SEEK_SET);
	return seek(f, -(off_t)ps - 1, SEEK_CUR);
}
static long seek_cur_overflow(struct fx *f)
{
	seek(f, ps, SEEK_SET);
	return seek(f, LLONG_MAX, SEEK_CUR);
}
static long seek_cur_zero(struct fx *f)
{
	seek(f, 5, SEEK_SET);
	return seek(f, 0, SEEK_CUR);
}
static long seek_end_0(struct fx *f) { return seek(f, 0, SEEK_END); }
/* The size, in v2: lseek(SEEK_END), mapped or not, after a resize too. */
static long seek_end_while_mapped(struct fx *f)
{
	if (do_map(f, size, PROT_READ, MAP_SHARED, 0))
		return -2;
	return seek(f, 0, SEEK_END);
}
static long seek_end_after_resize_while_mapped(struct fx *f)
{
	if (do_map(f, size, PROT_READ, MAP_SHARED, 0) || set_size(f, 2 * ps))
		return -2;
	return seek(f, 0, SEEK_END);
}
static long seek_end_back(struct fx *f) { return seek(f, -(off_t)ps, SEEK_END); }
static long seek_end_past(struct fx *f) { return seek(f, 1, SEEK_END); }
static long seek_end_before_0(struct fx *f) { return seek(f, -(off_t)size - 1, SEEK_END); }
static long seek_data(struct fx *f) { return seek(f, 10, SEEK_DATA); }
static long seek_data_end(struct fx *f) { return seek(f, size, SEEK_DATA); }
static long seek_hole(struct fx *f) { return seek(f, 10, SEEK_HOLE); }
static long seek_hole_end(struct fx *f) { return seek(f, size, SEEK_HOLE); }
static long seek_whence_5(struct fx *f) { return seek(f, 0, 5); }
static long seek_whence_neg(struct fx *f) { return seek(f, 0, -1); }
static long seek_whence_big(struct fx *f) { return seek(f, 0, 0x10000); }

/* --- module parameters (sysfs) -------------------------------------- */
#define PARAMS	"/sys/module/mmap_buf/parameters/"

static long param_write(const char *name, const char *val)
{
	char path[128];
	int fd, err;
	ssize_t r;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	r = write(fd, val, strlen(val));
	err = errno;
	close(fd);
	errno = err;
	return r < 0 ? -1 : 0;
}

/*
 * v2 has two parameters, default_size and max_size, both read-only (0444);
 * v1's fault_around_pages is gone. v3 adds max_folio_order, which root can
 * write (0644).
 */
static long params_list(struct fx *f)
{
	int found = 0, other = 0;
	struct dirent *d;
	struct stat st;
	char path[300];
	DIR *dir;

	(void)f;
	dir = opendir(PARAMS);
	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), PARAMS "%s", d->d_name);
		if (!strcmp(d->d_name, "max_folio_order") && !stat(path, &st) &&
		    (st.st_mode & 0777) == 0644) {
			found++;
		} else if (stat(path, &st) || (st.st_mode & 0777) != 0444) {
			snprintf(note, sizeof(note), "%.64s: mode %o", d->d_name,
				 (unsigned int)(st.st_mode & 0777));
			other++;
		} else if (!strcmp(d->d_name, "default_size") || !strcmp(d->d_name, "max_size")) {
			found++;
		} else {
			snprintf(note, sizeof(note), "unexpected parameter %.64s", d->d_name);
			other++;
		}
	}
	closedir(dir);
	return found == 3 && !other ? 0 : -2;
}
static long max_size_write(struct fx *f) { (void)f; return param_write("max_size", "4096"); }
static long default_size_write(struct fx *f) { (void)f; return param_write("default_size", "4096"); }

/* Read parameter @name into @buf, without its newline; -1 if it cannot be. */
static int param_read(const char *name, char *buf, size_t len)
{
	char path[128];
	FILE *pf;
	int ret;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	pf = fopen(path, "r");
	if (!pf)
		return -1;
	ret = fgets(buf, len, pf) ? 0 : -1;
	fclose(pf);
	buf[strcspn(buf, "\n")] = '\0';
	return ret;
}

/*
 * Write @val to max_folio_order and put back what was there; the value
 * read back afterwards must be the old one if the write failed.
 */
static long folio_order_write(const char *val)
{
	char old[32] = "", now[32] = "";
	long ret;
	int err;

	if (param_read("max_folio_order", old, sizeof(old)))
		return -2;
	ret = param_write("max_folio_order", val);
	err = errno;
	if (param_read("max_folio_order", now, sizeof(now)))
		return -2;
	if (ret == 0) {
		if (strtoul(now, NULL, 0) != strtoul(val, NULL, 0)) {
			snprintf(note, sizeof(note), "wrote %.16s, reads %.16s", val, now);
			ret = -2;
		}
		param_write("max_folio_order", old);
	} else if (strcmp(now, old)) {
		snprintf(note, sizeof(note), "failed write changed %.16s to %.16s", old, now);
		ret = -2;
	}
	errno = err;
	return ret;
}

/*
 * The largest max_folio_order the module accepts (the page cache's largest
 * folio order): found by writing the values above the current one until
 * one is refused, then the current one back. The module may have been
 * loaded with a smaller value (scripts/initramfs-guest --target debian
 * loads it with 0).
 */
static unsigned long folio_order_limit(void)
{
	static unsigned long limit = ULONG_MAX;
	char old[32] = "", val[24];
	unsigned long n;

	if (limit != ULONG_MAX)
		return limit;
	if (param_read("max_folio_order", old, sizeof(old)))
		return limit = 0;
	for (n = strtoul(old, NULL, 0); n < 64; n++) {
		snprintf(val, sizeof(val), "%lu", n + 1);
		if (param_write("max_folio_order", val))
			break;
	}
	if (param_write("max_folio_order", old))
		return limit = 0;
	return limit = n;
}
static long folio_order_n(unsigned long n)
{
	char val[24];

	snprintf(val, sizeof(val), "%lu", n);
	return folio_order_write(val);
}
static long folio_order_0(struct fx *f) { (void)f; return folio_order_write("0"); }
static long folio_order_max(struct fx *f) { (void)f; return folio_order_n(folio_order_limit()); }
static long folio_order_above(struct fx *f) { (void)f; return folio_order_n(folio_order_limit() + 1); }
static long folio_order_neg(struct fx *f) { (void)f; return folio_order_write("-1"); }
static long folio_order_text(struct fx *f) { (void)f; return folio_order_write("huge"); }
static long folio_order_huge(struct fx *f) { (void)f; return folio_order_write("99999999999"); }

/* --- the table ------------------------------------------------------- */

enum { EXACT, SHORT };	/* SHORT: 0 < result <= ret, the model says which bytes */

/* What a row works on: its setup's open file and the model of its buffer. */
FIXTURE(badinput) {
	struct fx f;
};

/* A row of the table. */
FIXTURE_VARIANT(badinput) {
	const char *desc;	/* what the row checks, in words */
	long (*run)(struct fx *f);
	long ret;		/* -1 for an error; SIZE/PS_* are resolved below */
	int err;
	int kind;
	unsigned int index;	/* the row's place in the table, for its pattern */
};

/* Results that depend on the page size. */
#define R_PS		(-100)
#define R_SIZE		(-101)
#define R_SIZE_M_PS	(-102)
#define R_2PS		(-103)

/*
 * Each row is a variant named after its function, so that the harness runs
 * it as a test of its own, in a process of its own. The names are unique in
 * each build: where a row has #ifdef alternatives, only one is compiled.
 * __COUNTER__ numbers the rows in the order of the table.
 */
enum { ROW_BASE = __COUNTER__ + 1 };
#define ROW(desc_, fn, ret_, err_, kind_)				\
	FIXTURE_VARIANT_ADD(badinput, fn) {				\
		.desc = desc_, .run = fn, .ret = ret_, .err = err_,	\
		.kind = kind_, .index = __COUNTER__ - ROW_BASE,		\
	}

/* Succeeds and returns @r; fails with @e; returns 1..@r bytes. */
#define RET(name, fn, r)	ROW(name, fn, r, 0, EXACT)
#define ERR(name, fn, e)	ROW(name, fn, -1, e, EXACT)
#define SHORT(name, fn, r)	ROW(name, fn, r, 0, SHORT)

ERR("mmap: length 0", mmap_len0, EINVAL);
RET("mmap: length 1 maps the first page", mmap_len1, 0);
RET("mmap: unaligned length rounds up", mmap_len_unaligned, 0);
RET("mmap: the whole buffer", mmap_whole, 0);
RET("mmap: the last page", mmap_last_page, 0);
ERR("mmap: length one byte past the end", mmap_one_byte_past, EINVAL);
ERR("mmap: length one page past the end", mmap_one_page_past, EINVAL);
ERR("mmap: offset at the end", mmap_off_end, EINVAL);
ERR("mmap: whole length from offset one page", mmap_off_shifted, EINVAL);
ERR("mmap: unaligned offset", mmap_off_unaligned, EINVAL);
ERR("mmap: offset 1 TiB", mmap_off_huge, EINVAL);
ERR("mmap: offset LLONG_MAX rounded down", mmap_off_max, EINVAL);
#ifdef USER_64BIT
ERR("mmap: offset -PAGE_SIZE (overflows)", mmap_off_negative, EOVERFLOW);
#else
/*
 * mmap2() takes 32 bits of pages: libc refuses an offset >= 2^44
 * with EINVAL before the kernel sees it.
 */
ERR("mmap: offset -PAGE_SIZE (not 32-bit mmap2()'s)", mmap_off_negative, EINVAL);
#endif
ERR("mmap: length 1 GiB", mmap_len_1g, EINVAL);
ERR("mmap: largest page-aligned length (above TASK_SIZE)", mmap_len_huge, ENOMEM);
ERR("mmap: length near SIZE_MAX", mmap_len_overflow, ENOMEM);
ERR("mmap: MAP_PRIVATE read-write", mmap_private, EINVAL);
ERR("mmap: MAP_PRIVATE read-only", mmap_private_ro, EINVAL);
ERR("mmap: PROT_EXEC", mmap_exec, EPERM);
ERR("mmap: PROT_EXEC alone", mmap_exec_only, EPERM);
RET("mmap: PROT_NONE", mmap_prot_none, 0);
ERR("mmap: MAP_SHARED_VALIDATE with an unknown flag", mmap_validate_unknown, EOPNOTSUPP);
ERR("mmap: MAP_SHARED_VALIDATE with MAP_SYNC", mmap_validate_sync, EOPNOTSUPP);
RET("mmap: MAP_SHARED_VALIDATE", mmap_validate_ok, 0);
RET("mmap: MAP_FIXED over anonymous memory", mmap_fixed_over_anon, 0);
RET("mmap: MAP_FIXED over a mapping of the buffer", mmap_fixed_over_self, 0);
ERR("mmap: MAP_FIXED_NOREPLACE over a mapping", mmap_fixed_noreplace, EEXIST);
ERR("mmap: MAP_FIXED at an unaligned address", mmap_fixed_unaligned, EINVAL);
ERR("mmap: PROT_WRITE on an O_WRONLY file", mmap_wronly, EACCES);
ERR("mmap: PROT_WRITE on an O_RDONLY file", mmap_rdonly_write, EACCES);
RET("mmap: PROT_READ on an O_RDONLY file", mmap_rdonly_read, 0);
ERR("mprotect: add PROT_EXEC", mprotect_exec, EACCES);
ERR("mmap: the old size after a shrink (past the current end)", mmap_past_shrunk_end, EINVAL);
RET("mmap: what a grow while mapped added reads as zeroes", mmap_grown_part, 0);
RET("mremap: grow within the buffer", mremap_grow, 0);
RET("mremap: grow past the end; touching that part raises SIGBUS", mremap_grow_past_end, 0);
RET("mremap: grow past the end, then SET_SIZE covers it: zeroes", mremap_grow_then_resize, 0);
RET("mremap: shrink, then resize while still mapped", mremap_shrink_then_resize, 0);

ERR("ioctl: unknown number", ioc_unknown_nr, ENOTTY);
ERR("ioctl: unknown type", ioc_unknown_type, ENOTTY);
ERR("ioctl: v1 GET_SIZE's number with _IOW", ioc_wrong_dir, ENOTTY);
ERR("ioctl: v1 GET_SIZE's number with a 4-byte size", ioc_wrong_size, ENOTTY);
ERR("ioctl: command 0", ioc_zero, ENOTTY);
ERR("ioctl: FIONREAD", ioc_fionread, ENOTTY);
ERR("ioctl: v1's GET_SIZE is gone, its argument untouched", get_size_gone, ENOTTY);
ERR("ioctl: v1's GET_SIZE with NULL", get_size_gone_null, ENOTTY);
ERR("SET_SIZE: NULL", set_null, EFAULT);
ERR("SET_SIZE: unmapped address", set_unmapped, EFAULT);
ERR("SET_SIZE: kernel address", set_kernel_addr, EFAULT);
RET("SET_SIZE: from a read-only page", set_ro_same, 0);
RET("SET_SIZE: from an unaligned address", set_unaligned, 0);
ERR("SET_SIZE: 0", set_zero, EINVAL);
RET("SET_SIZE: 1 byte rounds up to a page", set_one, 0);
RET("SET_SIZE: shrink then grow reads zeroes", set_shrink_grow, 0);
RET("SET_SIZE: the same size", set_same, 0);
RET("SET_SIZE: max_size", set_cap, 0);
RET("SET_SIZE: max_size - 1 rounds up to max_size", set_cap_minus_1, 0);
ERR("SET_SIZE: max_size + 1", set_cap_plus_1, EINVAL);
ERR("SET_SIZE: max_size + PAGE_SIZE", set_cap_plus_page, EINVAL);
ERR("SET_SIZE: 2^32 + max_size", set_bit32, EINVAL);
ERR("SET_SIZE: 2^63", set_bit63, EINVAL);
ERR("SET_SIZE: U64_MAX", set_u64_max, EINVAL);
ERR("SET_SIZE: U64_MAX - PAGE_SIZE + 2 (wraps when aligned)", set_u64_max_aligned, EINVAL);
RET("SET_SIZE: grow while mapped", set_while_mapped, 0);
RET("SET_SIZE: the same size while mapped", set_same_while_mapped, 0);
RET("SET_SIZE: shrink while mapped PROT_NONE", set_while_prot_none_mapped, 0);
RET("SET_SIZE: shrink while mapped; the cut pages raise SIGBUS", set_shrink_while_mapped_sigbus, 0);
RET("SET_SIZE: shrink and grow back while mapped; the mapping reads zeroes", set_shrink_grow_while_mapped, 0);
RET("SET_SIZE: shrink below the file position leaves it there", set_shrink_below_position, 0);
ERR("SET_SIZE: on an O_RDONLY file (its own buffer)", set_rdonly_fd, EBADF);
ERR("SET_SIZE: on an O_RDONLY file, NULL argument", set_rdonly_null, EBADF);
RET("SET_SIZE: on an O_WRONLY file (its own buffer)", set_wronly_fd, 0);

ERR("read: NULL", read_null, EFAULT);
RET("read: NULL, count 0", read_null_zero, 0);
ERR("read: unmapped destination", read_unmapped, EFAULT);
ERR("read: kernel address", read_kernel_addr, EFAULT);
ERR("read: read-only destination", read_ro, EFAULT);
ERR("read: PROT_NONE mapping of the buffer", read_prot_none_mapping, EFAULT);
ERR("read: read-only mapping of the buffer", read_ro_self_mapping, EFAULT);
RET("read: into a mapping of the buffer", read_into_self_mapping, R_PS);
RET("read: count " HUGE_COUNT_NAME " returns the buffer", read_huge_count, R_SIZE);
#ifdef USER_64BIT
ERR("read: count SIZE_MAX", read_size_max, EFAULT);
ERR("read: count SSIZE_MAX + 1", read_ssize_max, EFAULT);
#else
RET("read: count SIZE_MAX returns the buffer", read_size_max, R_SIZE);
RET("read: count SSIZE_MAX + 1 returns the buffer", read_ssize_max, R_SIZE);
#endif
ERR("read: O_WRONLY file", read_wronly, EBADF);
RET("readv: second iovec unmapped is short", readv_second_unmapped, 100);
ERR("pread: negative position", pread_negative, EINVAL);
RET("pread: at the end", pread_at_end, 0);
RET("pread: across the end is short", pread_across_end, 1);
RET("pread: position 2^62", pread_huge_pos, 0);
ERR("pread: position + count overflows", pread_pos_overflow, EINVAL);
ERR("write: NULL", write_null, EFAULT);
RET("write: NULL, count 0", write_null_zero, 0);
ERR("write: unmapped source", write_unmapped, EFAULT);
ERR("write: kernel address", write_kernel_addr, EFAULT);
RET("write: from a read-only page", write_from_ro, R_PS);
SHORT("write: source runs into an unmapped page", write_partly_unmapped, 100);
RET("write: count " HUGE_COUNT_NAME " writes the buffer", write_huge_count, R_SIZE);
#ifdef USER_64BIT
ERR("write: count SIZE_MAX", write_size_max, EFAULT);
#else
RET("write: count SIZE_MAX writes the buffer", write_size_max, R_SIZE);
#endif
ERR("write: at the end", write_at_end, ENOSPC);
RET("write: across the end is short", write_across_end, 3);
ERR("write: O_RDONLY file", write_rdonly, EBADF);
ERR("pwrite: negative position", pwrite_negative, EINVAL);
ERR("pwrite: position 2^62", pwrite_huge_pos, ENOSPC);
ERR("pwrite: position + count overflows", pwrite_pos_overflow, EINVAL);
RET("pwrite: from a mapping of the buffer", pwrite_from_self_mapping, R_PS);

RET("lseek: SEEK_SET to the end", seek_set_end, R_SIZE);
ERR("lseek: SEEK_SET past the end", seek_set_past, EINVAL);
ERR("lseek: SEEK_SET -1", seek_set_neg, EINVAL);
ERR("lseek: SEEK_SET LLONG_MAX", seek_set_max, EINVAL);
ERR("lseek: SEEK_CUR before 0", seek_cur_back_past_0, EINVAL);
ERR("lseek: SEEK_CUR overflowing", seek_cur_overflow, EINVAL);
RET("lseek: SEEK_CUR 0", seek_cur_zero, 5);
RET("lseek: SEEK_END 0", seek_end_0, R_SIZE);
RET("lseek: SEEK_END 0 while mapped", seek_end_while_mapped, R_SIZE);
RET("lseek: SEEK_END 0 after a shrink while mapped", seek_end_after_resize_while_mapped, R_2PS);
RET("lseek: SEEK_END back a page", seek_end_back, R_SIZE_M_PS);
ERR("lseek: SEEK_END + 1", seek_end_past, EINVAL);
ERR("lseek: SEEK_END before 0", seek_end_before_0, EINVAL);
ERR("lseek: SEEK_DATA", seek_data, EINVAL);
ERR("lseek: SEEK_DATA at the end", seek_data_end, EINVAL);
ERR("lseek: SEEK_HOLE", seek_hole, EINVAL);
ERR("lseek: SEEK_HOLE at the end", seek_hole_end, EINVAL);
ERR("lseek: whence 5", seek_whence_5, EINVAL);
ERR("lseek: whence -1", seek_whence_neg, EINVAL);
ERR("lseek: whence 0x10000", seek_whence_big, EINVAL);

RET("module parameters: default_size, max_size (0444), max_folio_order (0644)",
	params_list, 0);
ERR("max_size: read-only once loaded", max_size_write, EACCES);
ERR("default_size: read-only once loaded", default_size_write, EACCES);
RET("max_folio_order: 0 (single pages)", folio_order_0, 0);
RET("max_folio_order: the page cache's largest", folio_order_max, 0);
ERR("max_folio_order: one above that", folio_order_above, EINVAL);
ERR("max_folio_order: -1", folio_order_neg, EINVAL);
ERR("max_folio_order: not a number", folio_order_text, EINVAL);
ERR("max_folio_order: beyond unsigned int", folio_order_huge, ERANGE);

static long resolve(long ret)
{
	switch (ret) {
	case R_PS: return ps;
	case R_SIZE: return size;
	case R_SIZE_M_PS: return size - ps;
	case R_2PS: return 2 * ps;
	}
	return ret;
}

static int nonzero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 1;
	return 0;
}

/* What the model says byte @i of the buffer holds. */
static unsigned char expected(const struct fx *f, size_t i)
{
	return i < mcap ? f->model[i] : 0;
}

/* Everything a case must leave as the model says; "" if it did. */
static const char *verify(struct fx *f, char *why, size_t len)
{
	unsigned char *p, *m;
	uint64_t sz, grown;
	off_t pos, end;
	size_t i;

	for (i = 0; i < (size_t)f->nmaps; i++)
		munmap(f->maps[i], f->lens[i]);
	f->nmaps = 0;

	/* The position first: lseek(SEEK_END), for the size, moves it. */
	pos = lseek(f->fd, 0, SEEK_CUR);
	if (pos != f->pos) {
		snprintf(why, len, "position %lld, expected %lld", (long long)pos, (long long)f->pos);
		return why;
	}
	end = lseek(f->fd, 0, SEEK_END);
	if (end < 0 || (uint64_t)end != f->size) {
		snprintf(why, len, "size (lseek SEEK_END) %lld, expected %llu", (long long)end,
			 (unsigned long long)f->size);
		return why;
	}
	sz = end;
	grown = sz + ps;
	p = malloc(grown);
	if (!p)
		return "out of memory";
	if (pread(f->fd, p, sz, 0) != (ssize_t)sz) {
		snprintf(why, len, "pread of the whole buffer: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < sz; i++)
		if (p[i] != expected(f, i))
			break;
	if (i < sz) {
		snprintf(why, len, "byte %zu is %#x, expected %#x", i, p[i], expected(f, i));
		goto out;
	}
	/*
	 * No mapping is left. Down to one page and up to one page more than
	 * before: page 0 is kept, and the rest is new and zeroed, both for
	 * read() and for a new mapping.
	 */
	if (set_size(f, ps) || set_size(f, grown)) {
		snprintf(why, len, "shrink to a page and grow to %llu once unmapped: %s",
			 (unsigned long long)grown, strerror(errno));
		goto out;
	}
	memset(p, 0xff, grown);
	if (pread(f->fd, p, grown, 0) != (ssize_t)grown) {
		snprintf(why, len, "pread after the shrink and grow: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < ps; i++)
		if (p[i] != expected(f, i))
			break;
	if (i < ps) {
		snprintf(why, len, "after a shrink to one page and a grow, byte %zu is %#x, expected %#x",
			 i, p[i], expected(f, i));
		goto out;
	}
	if (nonzero(p + ps, grown - ps)) {
		snprintf(why, len, "after a shrink to one page and a grow, the grown part is not zeroed");
		goto out;
	}
	m = mmap(NULL, grown, PROT_READ, MAP_SHARED, f->fd, 0);
	if (m == MAP_FAILED) {
		snprintf(why, len, "mmap after the shrink and grow: %s", strerror(errno));
		goto out;
	}
	i = memcmp(m, p, grown);
	munmap(m, grown);
	if (i) {
		snprintf(why, len, "after a shrink to one page and a grow, a new mapping differs from read()");
		goto out;
	}
	why = NULL;
out:
	free(p);
	return why ? why : "";
}

static int setup(struct fx *f, unsigned char seed)
{
	uint64_t sz = size;

	memset(f, 0, sizeof(*f));
	f->fd = open(dev, O_RDWR);
	if (f->fd < 0)
		return -1;
	if (ioctl(f->fd, MMAP_BUF_SET_SIZE, &sz))
		return -1;
	/* The pattern, then zeroes: what a grow would add. */
	f->model = calloc(1, mcap);
	if (!f->model)
		return -1;
	fill(f->model, size, seed, 0);
	if (pwrite(f->fd, f->model, size, 0) != (ssize_t)size)
		return -1;
	f->size = size;
	f->seed = seed;
	/* Page 0 readable and writable, page 1 unmapped. */
	f->scratch = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (f->scratch == MAP_FAILED)
		return -1;
	munmap((char *)f->scratch + ps, ps);
	return 0;
}

static void teardown(struct fx *f)
{
	munmap(f->scratch, ps);
	free(f->model);
	close(f->fd);
}

/*
 * A row that fails says what it checks and what went wrong on its
 * "not ok" line, as the harness's SKIP() does for a skip.
 */
#define ROW_FAIL(fmt, ...) do {						\
	snprintf(_metadata->results->reason,				\
		 sizeof(_metadata->results->reason), "%s: " fmt,	\
		 variant->desc, ##__VA_ARGS__);				\
	_metadata->exit_code = KSFT_FAIL;				\
} while (0)

FIXTURE_SETUP(badinput)
{
	if (!have_max_size)
		SKIP(return, "mmap_buf's max_size parameter is not readable");
	if (catch_sigbus() ||
	    setup(&self->f, (unsigned char)(variant->index * 7 + 1)))
		ROW_FAIL("setup: %s", strerror(errno));
}

FIXTURE_TEARDOWN(badinput)
{
	teardown(&self->f);
}

TEST_F(badinput, check)
{
	long want = resolve(variant->ret), got;
	struct fx *f = &self->f;
	char why[200] = "";
	const char *bad = why;
	int err;

	f->pos = 0;
	note[0] = 0;
	errno = 0;
	got = variant->run(f);
	err = errno;
	if (got == -2)
		snprintf(why, sizeof(why), "the case's own check failed (errno %s)%s%s",
			 strerrorname_np(err) ?: "0", *note ? ": " : "", note);
	else if (variant->kind == SHORT ? !(got > 0 && got <= want) : got != want)
		snprintf(why, sizeof(why), "returned %ld (%s), expected %s%ld %s",
			 got, got < 0 ? strerrorname_np(err) : "",
			 variant->kind == SHORT ? "1.." : "", want,
			 want == -1 ? strerrorname_np(variant->err) : "");
	else if (want == -1 && err != variant->err)
		snprintf(why, sizeof(why), "errno %s, expected %s",
			 strerrorname_np(err), strerrorname_np(variant->err));
	else
		bad = verify(f, why, sizeof(why));
	if (*bad)
		ROW_FAIL("%s", bad);
}

/*
 * What every row needs, found once before the harness forks them: the page
 * size, max_size, and the largest max_folio_order, probed before any row
 * writes that parameter.
 */
int main(int argc, char **argv)
{
	FILE *pf;

	ps = sysconf(_SC_PAGESIZE);
	size = NPAGES * ps;
	mcap = MODEL_PAGES * ps;
	pf = fopen("/sys/module/mmap_buf/parameters/max_size", "r");
	if (pf) {
		have_max_size = fscanf(pf, "%" SCNu64, &max_size) == 1;
		fclose(pf);
	}
	if (have_max_size) {
		max_size &= ~(uint64_t)(ps - 1);
		folio_order_limit();
	}
	return test_harness_run(argc, argv);
}
