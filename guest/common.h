/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the guest programs of scripts/guest-tests share: their KTAP output,
 * which is kselftest.h's (check() a case, diag() a "# " line, finish() the
 * plan, which only the end knows, and kselftest's totals), the module's
 * loading, the buffer's ioctl and small /proc and /sys readers. Every
 * function is static inline, so that a program that does not use one is
 * not warned about it.
 *
 * The ioctl header is the driver's private one, included by its path in
 * the kernel tree, and kselftest.h is the tree's: compile with
 * -I<kernel tree> -I<kernel tree>/tools/testing/selftests.
 */
#ifndef MMAP_BUF_GUEST_COMMON_H
#define MMAP_BUF_GUEST_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drivers/misc/mmap_buf/mmap_buf_uapi.h"
#include "kselftest.h"

#define DEV	"/dev/mmap_buf"
#define MODULE	"mmap_buf"
#define CGROOT	"/sys/fs/cgroup"

/* One case: "ok N what" or "not ok N what". */
static inline void __attribute__((format(printf, 2, 3)))
check(int ok, const char *fmt, ...)
{
	char what[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	ksft_test_result(ok, "%s\n", what);
	fflush(stdout);
}

/* A case that cannot run here: "ok N # SKIP why". */
static inline void __attribute__((format(printf, 1, 2)))
skip(const char *fmt, ...)
{
	char why[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	ksft_test_result_skip("%s\n", why);
	fflush(stdout);
}

/* A diagnostic line, "# ...". */
static inline void __attribute__((format(printf, 1, 2)))
diag(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ksft_print_msg("%s\n", msg);
	fflush(stdout);
}

/*
 * The plan, last (how many cases run is known only at the end), and
 * kselftest's totals; the exit status: KSFT_FAIL if a case failed.
 */
static inline int finish(void)
{
	ksft_set_plan(ksft_test_num());
	ksft_print_cnts();
	return ksft_get_fail_cnt() ? KSFT_FAIL : KSFT_PASS;
}

static inline int module_loaded(void)
{
	return access("/sys/module/" MODULE, F_OK) == 0;
}

static inline int unload(void)
{
	return syscall(SYS_delete_module, MODULE, O_NONBLOCK);
}

static inline int load(void)
{
	int st = system("modprobe " MODULE);

	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static inline int is_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static inline int set_size(int fd, uint64_t size)
{
	return ioctl(fd, MMAP_BUF_SET_SIZE, &size);
}

/* The buffer's size, lseek(fd, 0, SEEK_END), the file position kept. */
static inline uint64_t buf_size(int fd)
{
	off_t pos = lseek(fd, 0, SEEK_CUR), end = lseek(fd, 0, SEEK_END);

	lseek(fd, pos, SEEK_SET);
	return end < 0 ? 0 : (uint64_t)end;
}

static inline long long read_ll(const char *path)
{
	long long v = -1;
	FILE *f = fopen(path, "r");

	if (f) {
		if (fscanf(f, "%lld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static inline int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), r;

	if (fd < 0)
		return -1;
	r = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
	close(fd);
	return r;
}

/* The value of KEY in a "key value" file such as memory.stat or memory.events. */
static inline long long keyed_ll(const char *path, const char *key)
{
	char line[256];
	long long v = -1;
	FILE *f = fopen(path, "r");
	size_t n = strlen(key);

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ' ')
			v = strtoll(line + n + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

/*
 * KEY of a memory cgroup's memory.stat, exact: the pages in the per-CPU LRU
 * batches put on the LRU (drop_caches drains them), and the per-CPU stat
 * deltas flushed, which memory.stat only does past a threshold of pending
 * updates, but the periodic flush does every 2 seconds.
 */
static inline long long settled_stat(const char *path, const char *key)
{
	write_str("/proc/sys/vm/drop_caches", "1");
	sleep(3);
	return keyed_ll(path, key);
}

/*
 * A cgroup v2 child of the root, with the memory controller, and this
 * process in it; 0 if there is none.
 */
static inline int enter_cgroup(const char *cg)
{
	char pid[32], path[256];

	if (access(CGROOT "/cgroup.controllers", F_OK) &&
	    mount("none", CGROOT, "cgroup2", 0, NULL))
		return 0;
	write_str(CGROOT "/cgroup.subtree_control", "+memory");
	if (mkdir(cg, 0755) && errno != EEXIST)
		return 0;
	snprintf(pid, sizeof(pid), "%d", getpid());
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	if (write_str(path, pid))
		return 0;
	snprintf(path, sizeof(path), "%s/memory.current", cg);
	return access(path, F_OK) == 0;
}

static inline void leave_cgroup(const char *cg)
{
	char pid[32];

	snprintf(pid, sizeof(pid), "%d", getpid());
	write_str(CGROOT "/cgroup.procs", pid);
	rmdir(cg);
}

#endif /* MMAP_BUF_GUEST_COMMON_H */
