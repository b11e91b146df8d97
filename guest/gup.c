// SPDX-License-Identifier: GPL-2.0
/*
 * The mapping's other users: the kernel's users of user memory, handed a
 * mapping of the buffer as their user buffer. Run as root in the debug guest
 * by scripts/guest-tests (section gup); prints KTAP (kselftest.h) and exits 0 only if every
 * check passed.
 *
 * The buffer's pages are normal, refcounted page cache folios in a VMA
 * without VM_PFNMAP or VM_IO, so get_user_pages() and pin_user_pages() take
 * them like those of any shared file mapping, where the PFN mappings of UIO
 * and remap_pfn_range() drivers fail with EFAULT. Each user moves data in and
 * out of a mapping, and the data is checked from the other side:
 *
 *  - O_DIRECT write() and read() of a RAM block device (brd), also across
 *    a PMD-mapped folio's end (pin_user_pages_fast());
 *  - vmsplice() into a pipe, then splice() to a memfd (get_user_pages_fast());
 *  - process_vm_readv() and process_vm_writev() from another process
 *    (pin_user_pages_remote());
 *  - /proc/<pid>/mem read and written as a debugger does
 *    (get_user_pages_remote() with FOLL_FORCE); its write through a
 *    read-only shared mapping fails with EIO, as for any shared file;
 *  - io_uring fixed buffers (a FOLL_LONGTERM pin), used by READ_FIXED and
 *    WRITE_FIXED;
 *  - a shrink that cuts pages under an active pin (the io_uring buffer, and
 *    pages a pipe holds from vmsplice()): the pinned pages keep their data
 *    (KASAN watches for a use after free), and once unpinned the memory is
 *    uncharged from the memory cgroup.
 */
#define _GNU_SOURCE
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "common.h"

#define CG	CGROOT "/mmap_buf_gup"
#define RAM	"/dev/ram0"
#define MiB	(1UL << 20)

static size_t ps;

static unsigned char pat(size_t i, unsigned int seed)
{
	return (unsigned char)(i * 29 + i / 4096 + seed);
}

static void fill(unsigned char *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pat(i, seed);
}

/* Whether @p holds pattern @seed from pattern offset @from on. */
static int holds(const unsigned char *p, size_t len, size_t from, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != pat(from + i, seed))
			return 0;
	return 1;
}

/* A buffer of @size bytes, mapped shared; its fd in *fd. */
static unsigned char *new_mapping(size_t size, int *fd)
{
	unsigned char *p;

	*fd = open(DEV, O_RDWR);
	if (*fd < 0)
		return NULL;
	if (set_size(*fd, size)) {
		close(*fd);
		return NULL;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	if (p == MAP_FAILED) {
		close(*fd);
		return NULL;
	}
	return p;
}

/* Whether the buffer's file reads back pattern @seed at [off, off + len). */
static int file_holds(int fd, size_t off, size_t len, size_t from, unsigned int seed)
{
	unsigned char *b = malloc(len);
	int ok = b && pread(fd, b, len, off) == (ssize_t)len && holds(b, len, from, seed);

	free(b);
	return ok;
}

/* --- O_DIRECT -------------------------------------------------------- */

static void o_direct(void)
{
	const size_t size = 4 * MiB, off = MiB + 4096, len = 2 * MiB;
	unsigned char *p, *q;
	int fd, fd2, blk, st;
	ssize_t w, r;

	st = system("modprobe brd rd_nr=1 rd_size=8192");
	blk = open(RAM, O_RDWR | O_DIRECT);
	if (!WIFEXITED(st) || WEXITSTATUS(st) || blk < 0) {
		check(0, "O_DIRECT: a RAM block device (modprobe brd: %d; %s: %s)", st, RAM,
		      strerror(errno));
		return;
	}
	p = new_mapping(size, &fd);
	q = new_mapping(size, &fd2);
	if (!p || !q) {
		check(0, "O_DIRECT: two 4 MiB buffers mapped: %s", strerror(errno));
		return;
	}
	fill(p, size, 1);
	/*
	 * 2 MiB from 1 MiB + 4 KiB: from a 1 MiB folio into the PMD-mapped
	 * one at 2 MiB (the buffer's folios: 1 MiB at 0 and at 1 MiB, 2 MiB
	 * at 2 MiB).
	 */
	w = pwrite(blk, p + off, len, 0);
	r = pread(blk, q + off, len, 0);
	check(w == (ssize_t)len && r == (ssize_t)len && holds(q + off, len, off, 1) &&
	      file_holds(fd2, off, len, off, 1),
	      "O_DIRECT write() from a mapping to %s and read() back into another mapping: the data arrives, and read() of the second buffer sees it (%zd, %zd%s%s)",
	      RAM, w, r, w < 0 || r < 0 ? ": " : "", w < 0 || r < 0 ? strerror(errno) : "");
	/* Two sectors, at a sector offset within a page. */
	w = pwrite(blk, p + 3 * ps + 512, 1024, 4096);
	r = pread(blk, q + 5 * ps + 512, 1024, 4096);
	check(w == 1024 && r == 1024 && holds(q + 5 * ps + 512, 1024, 3 * ps + 512, 1),
	      "O_DIRECT of two sectors at a sector offset within a page (%zd, %zd)", w, r);
	munmap(p, size);
	munmap(q, size);
	close(fd);
	close(fd2);
	close(blk);
}

/* --- vmsplice() and splice() ------------------------------------------ */

static void splicing(void)
{
	const size_t len = 64 * 1024;
	struct iovec iov;
	unsigned char *p, *b;
	int fd, pfd[2], mfd;
	ssize_t v, s;
	loff_t moff = 0;

	p = new_mapping(MiB, &fd);
	mfd = memfd_create("mmap_buf_gup", 0);
	b = malloc(len);
	if (!p || mfd < 0 || !b || pipe(pfd)) {
		check(0, "vmsplice: set up: %s", strerror(errno));
		return;
	}
	fill(p, MiB, 2);
	iov.iov_base = p + 3 * ps;
	iov.iov_len = len;
	v = vmsplice(pfd[1], &iov, 1, 0);
	s = v > 0 ? splice(pfd[0], NULL, mfd, &moff, v, 0) : -1;
	check(v == (ssize_t)len && s == v && pread(mfd, b, len, 0) == (ssize_t)len &&
	      holds(b, len, 3 * ps, 2),
	      "vmsplice() of a mapping into a pipe, then splice() to a memfd: the data arrives (%zd, %zd)",
	      v, s);
	/* The driver's own file is no splice source or target. */
	s = splice(fd, NULL, pfd[1], NULL, 4096, 0);
	check(s == -1 && errno == EINVAL,
	      "splice() from the buffer's file fails with EINVAL, as documented (got %s)",
	      s < 0 ? strerrorname_np(errno) : "success");
	munmap(p, MiB);
	close(fd);
	close(mfd);
	close(pfd[0]);
	close(pfd[1]);
	free(b);
}

/* --- another process: process_vm_*v() and /proc/<pid>/mem ------------ */

static void remote(void)
{
	unsigned char *p, *ro;
	int fd, st;
	pid_t parent = getpid(), child;

	p = new_mapping(MiB, &fd);
	if (!p) {
		check(0, "remote access: set up: %s", strerror(errno));
		return;
	}
	ro = mmap(NULL, MiB, PROT_READ, MAP_SHARED, fd, 0);
	fill(p, MiB, 3);
	fflush(stdout);
	child = fork();
	if (child == 0) {
		/* Exit status: a bit for each failed step. */
		unsigned char *b = malloc(MiB), c = 0x77;
		struct iovec local = { b, MiB }, rem = { p, MiB };
		char path[64];
		int bad = 0, mem;

		memset(b, 0, MiB);
		if (process_vm_readv(parent, &local, 1, &rem, 1, 0) != (ssize_t)MiB ||
		    !holds(b, MiB, 0, 3))
			bad |= 1;
		fill(b, MiB, 4);
		if (process_vm_writev(parent, &local, 1, &rem, 1, 0) != (ssize_t)MiB ||
		    !holds(p, MiB, 0, 4))
			bad |= 2;
		/* The child maps the same buffer: what /proc/<pid>/mem must read. */
		fill(p, MiB, 5);
		snprintf(path, sizeof(path), "/proc/%d/mem", parent);
		mem = open(path, O_RDWR);
		if (mem < 0 || pread(mem, b, 4096, (off_t)(uintptr_t)(p + 5 * ps)) != 4096 ||
		    !holds(b, 4096, 5 * ps, 5))
			bad |= 4;
		if (mem < 0 || pwrite(mem, &c, 1, (off_t)(uintptr_t)(p + 7)) != 1 || p[7] != c)
			bad |= 8;
		/* FOLL_FORCE does not write through a read-only shared mapping. */
		if (ro == MAP_FAILED || pwrite(mem, &c, 1, (off_t)(uintptr_t)(ro + 9)) != -1 ||
		    errno != EIO || p[9] != pat(9, 5))
			bad |= 16;
		_exit(bad);
	}
	waitpid(child, &st, 0);
	st = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	check(!(st & 1), "process_vm_readv() of a mapping from another process reads the buffer");
	check(!(st & 2), "process_vm_writev() into a mapping from another process writes the buffer");
	check(!(st & 4), "a debugger's read of /proc/<pid>/mem at a mapping reads the buffer");
	check(!(st & 8) && p[7] == 0x77,
	      "a debugger's write to /proc/<pid>/mem at a mapping writes the buffer");
	check(!(st & 16),
	      "a debugger's write through a read-only shared mapping fails with EIO and writes nothing, as for any shared file");
	munmap(p, MiB);
	if (ro != MAP_FAILED)
		munmap(ro, MiB);
	close(fd);
}

/* --- io_uring fixed buffers ------------------------------------------ */

struct ring {
	int fd;
	unsigned int *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static int ring_init(struct ring *r)
{
	struct io_uring_params prm = { 0 };
	unsigned char *sq, *cq;

	r->fd = syscall(__NR_io_uring_setup, 4, &prm);
	if (r->fd < 0)
		return -1;
	sq = mmap(NULL, prm.sq_off.array + prm.sq_entries * sizeof(unsigned int),
		  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
	cq = mmap(NULL, prm.cq_off.cqes + prm.cq_entries * sizeof(struct io_uring_cqe),
		  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
	r->sqes = mmap(NULL, prm.sq_entries * sizeof(struct io_uring_sqe),
		       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED)
		return -1;
	r->sq_tail = (unsigned int *)(sq + prm.sq_off.tail);
	r->sq_mask = (unsigned int *)(sq + prm.sq_off.ring_mask);
	r->sq_array = (unsigned int *)(sq + prm.sq_off.array);
	r->cq_head = (unsigned int *)(cq + prm.cq_off.head);
	r->cq_tail = (unsigned int *)(cq + prm.cq_off.tail);
	r->cq_mask = (unsigned int *)(cq + prm.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + prm.cq_off.cqes);
	return 0;
}

/* One READ_FIXED or WRITE_FIXED of fixed buffer 0; its result. */
static int ring_rw(struct ring *r, int op, int fd, void *addr, unsigned int len, off_t off)
{
	unsigned int tail = *r->sq_tail, idx = tail & *r->sq_mask, head;
	struct io_uring_sqe *sqe = &r->sqes[idx];
	int res;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = op;
	sqe->fd = fd;
	sqe->addr = (uintptr_t)addr;
	sqe->len = len;
	sqe->off = off;
	sqe->buf_index = 0;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) != 1)
		return -errno;
	head = *r->cq_head;
	if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE))
		return -EAGAIN;
	res = r->cqes[head & *r->cq_mask].res;
	__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

/* memory.current is the page counter: exact, but for the per-CPU stock. */
static long long cg_current(void)
{
	write_str("/proc/sys/vm/drop_caches", "1");
	return read_ll(CG "/memory.current");
}

static void io_uring_and_pins(void)
{
	const size_t size = 4 * MiB, cut = 3 * MiB;
	long long before_unpin, after_unpin;
	unsigned char *p, *b;
	struct iovec iov;
	struct ring r;
	int fd, mfd, res, reg, have_cg, pfd[2];
	ssize_t v;

	have_cg = enter_cgroup(CG);
	p = new_mapping(size, &fd);
	mfd = memfd_create("mmap_buf_uring", 0);
	b = malloc(size);
	if (!p || mfd < 0 || !b || ftruncate(mfd, size) || pipe(pfd)) {
		check(0, "io_uring: set up: %s", strerror(errno));
		return;
	}
	if (ring_init(&r)) {
		check(0, "io_uring: io_uring_setup() and its rings: %s", strerror(errno));
		return;
	}
	fill(p, size, 5);
	iov.iov_base = p;
	iov.iov_len = size;
	reg = syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_BUFFERS, &iov, 1);
	check(reg == 0, "io_uring: a 4 MiB mapping registers as a fixed buffer (a FOLL_LONGTERM pin)%s%s",
	      reg ? ": " : "", reg ? strerror(errno) : "");
	if (reg)
		return;
	res = ring_rw(&r, IORING_OP_WRITE_FIXED, mfd, p + ps, 2 * MiB, 0);
	check(res == (int)(2 * MiB) && pread(mfd, b, 2 * MiB, 0) == (ssize_t)(2 * MiB) &&
	      holds(b, 2 * MiB, ps, 5),
	      "io_uring WRITE_FIXED from the fixed buffer to a memfd: the data arrives (%d)", res);
	fill(b, size, 6);
	res = pwrite(mfd, b, size, 0) == (ssize_t)size ?
		ring_rw(&r, IORING_OP_READ_FIXED, mfd, p + MiB, MiB, 0) : -1;
	check(res == (int)MiB && holds(p + MiB, MiB, 0, 6) && file_holds(fd, MiB, MiB, 0, 6),
	      "io_uring READ_FIXED from a memfd into the fixed buffer: the buffer holds the data (%d)",
	      res);
	fill(p, size, 7);

	/* Pages a pipe holds from vmsplice(), also under the shrink. */
	iov.iov_base = p + size - 16 * ps;
	iov.iov_len = 16 * ps;
	v = vmsplice(pfd[1], &iov, 1, 0);

	/* Cut the last 3 MiB under the pins: the mappings lose them. */
	res = set_size(fd, size - cut);
	check(res == 0 && buf_size(fd) == size - cut,
	      "a shrink by 3 MiB while io_uring pins the whole buffer and a pipe holds its last 16 pages succeeds");
	res = ring_rw(&r, IORING_OP_WRITE_FIXED, mfd, p + size - 2 * MiB, 2 * MiB, 0);
	check(res == (int)(2 * MiB) && pread(mfd, b, 2 * MiB, 0) == (ssize_t)(2 * MiB) &&
	      holds(b, 2 * MiB, size - 2 * MiB, 7),
	      "the pinned pages that were cut keep their data: WRITE_FIXED from them still writes it (%d)",
	      res);
	check(v == (ssize_t)(16 * ps) && read(pfd[0], b, 16 * ps) == (ssize_t)(16 * ps) &&
	      holds(b, 16 * ps, size - 16 * ps, 7),
	      "and the pipe still reads what the cut pages held (%zd)", v);
	before_unpin = have_cg ? cg_current() : -1;
	reg = syscall(__NR_io_uring_register, r.fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
	after_unpin = have_cg ? cg_current() : -1;
	diag("memory.current %lld before the unpin, %lld after (%+lld bytes)", before_unpin,
	     after_unpin, after_unpin - before_unpin);
	if (have_cg)
		check(!reg && before_unpin - after_unpin >= (long long)(cut - MiB / 2),
		      "once unpinned, the cut pages are freed: the cgroup's charge falls by about 3 MiB (%+lld bytes)",
		      after_unpin - before_unpin);
	else
		check(0, "a cgroup v2 memory controller to see the unpinned pages freed");
	close(r.fd);
	munmap(p, size);
	close(fd);
	close(mfd);
	close(pfd[0]);
	close(pfd[1]);
	free(b);
	if (have_cg)
		leave_cgroup(CG);
}

int main(void)
{
	ps = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	ksft_print_header();
	if (!module_loaded() && load())
		return fprintf(stderr, "cannot load %s\n", MODULE), 2;
	o_direct();
	splicing();
	remote();
	io_uring_and_pins();
	return finish();
}
