// SPDX-License-Identifier: GPL-2.0
/*
 * The stress test's operations (stress.c has the design, stress.h says
 * what is where): their names and weights, each operation and its checks,
 * the resizes of private buffers and of the shared tail, the fork child,
 * and do_op() and pick_op(), which the threads call.
 */
#include "stress.h"

const char *const op_names[NR_OPS] = {
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
void tail_verify(struct thr *t, const char *op, uint64_t a, uint64_t e,
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
void tail_write(struct thr *t, uint64_t a, uint64_t e)
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

bool do_op(struct thr *t, enum op op)
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

enum op pick_op(struct thr *t)
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
