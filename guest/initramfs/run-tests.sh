#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The sections of an initramfs guest (scripts/initramfs-guest), in the
# format scripts/guest-tests uses: "=== section NAME START", the section's
# TAP, "=== status RC END". ./sections lists the ones to run, one a line;
# the host writes it for the target (no KUnit module in Debian's kernel,
# 32-bit programs only where the kernel runs them).
#
#   smoke             guest/smoke.c
#   bad-input         guest/badinput.c, the module loaded with max_size=16 MiB
#   kunit             the KUnit suite loaded as a module; the kernel log
#                     of its run, parsed on the host by kunit.py parse
#   run_kselftest.sh  the installed kselftest (kselftest-install)
#   bad-input-32, run_kselftest.sh-32
#                     the same built for 32-bit user space (compat)
section() { echo "=== section $1 $(date +%s)"; }
done_() { echo "=== status $1 $(date +%s)"; }
t=/opt/mmap_buf

# The sections from fd 3: the tests' stdin stays the console's.
while read -r sec <&3; do
	section "$sec"
	case $sec in
	smoke)
		modprobe mmap_buf && ls -l /dev/mmap_buf && $t/smoke; done_ $?
		rmmod mmap_buf ;;
	bad-input)
		modprobe mmap_buf max_size=16777216 && $t/badinput; done_ $?
		rmmod mmap_buf ;;
	bad-input-32)
		modprobe mmap_buf max_size=16777216 && $t/32/badinput; done_ $?
		rmmod mmap_buf ;;
	kunit)
		# Only the suite's own log to kunit.py; the rest is kept for
		# the dump at the end.
		dmesg -c >>/tmp/dmesg
		modprobe mmap_buf_kunit; r=$?; dmesg; done_ $r
		rmmod mmap_buf_kunit mmap_buf ;;
	run_kselftest.sh)
		(cd $t/kselftest_install && ./run_kselftest.sh); done_ $?
		rmmod mmap_buf 2>/dev/null ;;
	run_kselftest.sh-32)
		(cd $t/32/kselftest_install && ./run_kselftest.sh); done_ $?
		rmmod mmap_buf 2>/dev/null ;;
	*)
		echo "Bail out! no section $sec"; done_ 2 ;;
	esac
done 3<"$t/sections"
# A warning or oops while the sections ran (the console shows them too).
echo "=== dmesg"
cat /tmp/dmesg 2>/dev/null
dmesg
