#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run in the guest by scripts/mm-mutants, once per mutant kernel: the
# KUnit suite (loaded as a module, so it runs on this very kernel) and the
# kselftest, installed on the host. $1 is the kselftest_install directory.
# Each part's kernel log is printed after it, so a report (BUG, WARNING,
# "Bad rss-counter state") is seen next to the part that caused it. The
# host side parses the lines starting with "=== ".

ksft=$1

echo "=== kunit"
dmesg -C
modprobe mmap_buf_kunit
echo "=== status $?"
echo "=== dmesg kunit"
dmesg
rmmod mmap_buf_kunit mmap_buf 2>/dev/null

echo "=== kselftest"
dmesg -C
(cd "$ksft" && ./run_kselftest.sh)
echo "=== status $?"
# mmap_buf.sh unloads the module it loaded.
rmmod mmap_buf 2>/dev/null
echo "=== dmesg kselftest"
dmesg
echo "=== end"
