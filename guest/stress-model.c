// SPDX-License-Identifier: GPL-2.0
/*
 * The stress test's shadow model and the checks against it (stress.c has
 * the design, stress.h says what is where): catching SIGBUS, the random
 * numbers, reporting violations, checking bytes and sizes against the
 * shadow, picking buffers, mappings and byte ranges, and which pages of a
 * mapping are live or dead.
 */
#include "stress.h"

/* An expected SIGBUS: armed around one access, per thread. */
static __thread sigjmp_buf bus_env;
static __thread volatile sig_atomic_t bus_armed;
__thread void *volatile bus_addr;

/*
 * SIGBUS where it is expected goes back to probe(). Otherwise: a driver that
 * maps the wrong pages, or none, kills us: say where.
 */
void fatal_signal(int sig, siginfo_t *si, void *uc)
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
bool probe(unsigned char *addr, bool write, unsigned char *val)
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

uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t rnd(struct thr *t)
{
	return splitmix64(&t->rng);
}

uint64_t rnd_below(struct thr *t, uint64_t n)
{
	return n ? rnd(t) % n : 0;
}

void fill(unsigned char *p, size_t len, uint64_t s)
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
unsigned char tail_pat(uint64_t x)
{
	return (unsigned char)((x * 131 + (x >> 12) * 7) | 1);
}

uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

const char *ename(int err)
{
	const char *s = strerrorname_np(err);

	return s ? s : "E?";
}

/* With write(2), not stdio: a fork child must not take stdio's locks. */
void __attribute__((format(printf, 2, 3)))
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
bool expect(struct thr *t, long ret, int err, long exp, int exp_err)
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
void check_bytes(struct thr *t, const char *op, struct buf *b,
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
void verify_fd(struct thr *t, const char *op, struct buf *b,
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

int set_size(int fd, uint64_t size)
{
	__u64 v = size;

	return ioctl(fd, MMAP_BUF_SET_SIZE, &v);
}

/* Whether @fd's buffer is @size bytes: a byte at size - 1, none at size. */
bool size_probe(int fd, uint64_t size)
{
	unsigned char c;

	return size && pread(fd, &c, 1, size - 1) == 1 && pread(fd, &c, 1, size) == 0;
}

/*
 * Where pages of @b's mappings are dead for sure: past the size of a private
 * buffer, past the largest tail of the shared one.
 */
uint64_t dead_from(const struct thr *t, const struct buf *b)
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
bool size_ok(struct thr *t, struct buf *b, const char *op)
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
void resync(struct buf *b)
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

size_t rnd_len(struct thr *t, size_t max)
{
	static const size_t caps[] = { 16, 4096, 4 * 4096, IO_MAX };
	size_t cap = caps[rnd_below(t, 4)];

	if (cap > max)
		cap = max;
	return 1 + rnd_below(t, cap);
}

/* A random byte range of the bytes that @b's thread owns. */
void pick_range(struct thr *t, struct buf *b, uint64_t *off, size_t *len)
{
	uint64_t span = b->hi - b->lo;

	*len = rnd_len(t, min_u64(span, IO_MAX));
	*off = b->lo + rnd_below(t, span - *len + 1);
}

struct buf *pick_buf(struct thr *t, bool priv, bool need_fd,
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

struct map *pick_map(struct thr *t, bool writable, size_t min_pages)
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

struct map *free_map(struct thr *t)
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
bool present_run(struct thr *t, struct map *m, size_t *first,
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
bool pick_dead(struct thr *t, struct map *m, size_t *page)
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
bool map_range(struct thr *t, struct map *m, uint64_t *off, size_t *len,
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

unsigned char *map_addr(struct map *m, uint64_t off)
{
	return m->addr + (off - m->off);
}

/*
 * munmap() the pages of [first, first + nr) of @m that are still mapped:
 * its holes may hold other mappings by now, of this or another thread.
 */
int unmap_pages(struct map *m, size_t first, size_t nr)
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

void free_buf(struct buf *b)
{
	free(b->shadow);
	memset(b, 0, sizeof(*b));
	b->fd = -1;
}

void drop_map(struct map *m)
{
	struct buf *b = m->b;

	free(m->present);
	memset(m, 0, sizeof(*m));
	if (!--b->nmaps && b->fd < 0 && !b->shared)
		free_buf(b);
}

/* Check every owned byte that @m still maps, on its live pages. */
void verify_map(struct thr *t, const char *op, struct map *m)
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
void expect_sigbus(struct thr *t, const char *op, struct map *m, size_t p)
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
