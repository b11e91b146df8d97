// SPDX-License-Identifier: GPL-2.0
/*
 * Smoke test of /dev/mmap_buf, the smoke section of guest/run.sh: one
 * open file mapped twice; what is written through one mapping is seen
 * through the other and by read(); what write() writes is seen by both.
 * Prints KTAP with kselftest.h (compile with
 * -I<kernel tree>/tools/testing/selftests); exits 0 only if every check
 * passed.
 *
 * v2 of the driver: the size is lseek(fd, 0, SEEK_END) (MMAP_BUF_GET_SIZE is
 * gone). This program uses no ioctl, so it needs no mmap_buf header.
 *
 * The full user-space assertions are the kselftest in the series
 * (tools/testing/selftests/mmap_buf); this is the quick "does it run" check.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest.h"

static void check(int ok, const char *what)
{
	ksft_test_result(ok, "%s\n", what);
}

int main(int argc, char **argv)
{
	const char *dev = argc > 1 ? argv[1] : "/dev/mmap_buf";
	char *a, *b, buf[64];
	off_t end;
	size_t off, size;
	int fd;

	ksft_print_header();
	ksft_set_plan(7);
	fd = open(dev, O_RDWR);
	if (fd < 0)
		ksft_exit_fail_msg("open %s: %s\n", dev, strerror(errno));
	/* The size is where SEEK_END puts the position; put it back to 0. */
	end = lseek(fd, 0, SEEK_END);
	check(end >= 2 * 4096 && end % 4096 == 0 && lseek(fd, 0, SEEK_SET) == 0,
	      "lseek(SEEK_END) reports a multi-page buffer");
	if (end < 2 * 4096)
		ksft_exit_fail_msg("buffer size %lld\n", (long long)end);
	size = end;

	a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED || b == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	check(a != b, "two mappings of one file are at different addresses");

	/* The last page, so a fault handler that ignores pgoff is caught. */
	off = size - 4096 + 123;
	strcpy(a + off, "through mapping a");
	check(strcmp(b + off, "through mapping a") == 0,
	      "a write through one mapping is seen through the other");

	memset(buf, 0, sizeof(buf));
	check(pread(fd, buf, sizeof(buf), off) == sizeof(buf) &&
	      strcmp(buf, "through mapping a") == 0,
	      "read() returns what was written through a mapping");

	check(pwrite(fd, "through write()", 16, 4096 + 7) == 16 &&
	      strcmp(a + 4096 + 7, "through write()") == 0 &&
	      strcmp(b + 4096 + 7, "through write()") == 0,
	      "write() is seen through both mappings");

	check(a[0] == 0 && b[size - 1] == 0 && a[4096] == 0,
	      "untouched bytes read as zero");

	close(fd);
	a[1] = 'x';
	check(b[1] == 'x', "the mappings stay coherent after close()");
	munmap(a, size);
	munmap(b, size);
	ksft_finished();
}
