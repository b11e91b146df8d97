#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The trinity section of guest/run.sh (debug guest): Debian's trinity on
# /dev/mmap_buf alone for SECS seconds, then the smoke program, to show the
# device still works. Prints TAP and the figure
# "# figure: fuzz syscalls=N seconds=S".
#
# trinity runs as root (--dangerous), since the device is 0600, on the
# device alone: "pseudo" is its provider of file fds, which -V limits to
# /dev/mmap_buf; the other providers are off. The system calls are those
# that reach the driver or its mappings. SIGINT makes it print its totals.
# Its scratch files go to /tmp.

usage() {
	echo "Usage: trinity.sh [--secs SECS] [--smoke PROGRAM]" >&2
	exit 2
}
secs=180
smoke=$(dirname "$0")/smoke
while [ $# -gt 0 ]; do
	[ $# -ge 2 ] || usage
	case $1 in
	--secs) secs=$2 ;;
	--smoke) smoke=$2 ;;
	*) usage ;;
	esac
	shift 2
done

syscalls="mmap munmap mremap madvise mprotect msync mlock munlock mincore
	remap_file_pages read write pread64 pwrite64 readv writev preadv
	pwritev lseek ioctl fcntl dup splice sendfile"
set -- --dangerous -q -l off -a 64 -C 2 -V /dev/mmap_buf \
	--disable-fds=sockets,pipes,perf,epoll,eventfd,timerfd,testfile,memfd,drm,inotify,userfaultfd,fanotify,bpf \
	--stats
for c in $syscalls; do
	set -- "$@" -c "$c"
done

cd /tmp || exit 1
echo 1..2
start=$(date +%s)
timeout -s INT -k 30 "$secs" trinity "$@" >/tmp/trinity.log 2>&1
end=$(date +%s)
grep -E 'Ran [0-9]+ syscalls|Operation not permitted|Invalid argument|attempted' \
	/tmp/trinity.log | sed 's/^/# /'
n=$(sed -nE 's/.*Ran ([0-9]+) syscalls.*/\1/p' /tmp/trinity.log | tail -n 1)
rc=0
if [ -n "$n" ] && [ "$n" -gt 0 ]; then
	echo "ok 1 - trinity ran $n system calls on /dev/mmap_buf in $((end - start)) s"
	echo "# figure: fuzz syscalls=$n seconds=$((end - start))"
else
	echo "not ok 1 - trinity ran no system call"
	tail -n 20 /tmp/trinity.log | sed 's/^/# /'
	rc=1
fi
if "$smoke" >/dev/null; then
	echo "ok 2 - the device still works after fuzzing"
else
	echo "not ok 2 - the device still works after fuzzing"
	rc=1
fi
exit $rc
