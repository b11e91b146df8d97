#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The guest's side of every test run: the one list of sections, and what
# each runs. scripts/guest-tests starts it in the x86_64 guests (virtme-ng,
# on the host's root file system), guest/initramfs/init in the initramfs
# guests (arm64, Debian's kernel; busybox sh). Plain POSIX sh for both.
#
# Each section prints "=== section NAME START", its KTAP (the KUnit
# section: the kernel log of the suite's run, for kunit.py parse), then
# "=== status RC END" (START and END in seconds since the epoch). Each
# runs under its timeout from the file settings next to this one. The run
# ends with the kernel log ("=== dmesg"), where the host looks for
# warnings and oopses; with --debug, kmemleak's report comes before it.
# The host counts the cases (count_sections in scripts/lib.sh).
#
# This stream is not KTAP itself, and does not tally its sections with
# kselftest's ktap_helpers.sh: it carries the sections' output as the
# programs print it (kselftest.h's TAP, the kselftest runner's nested KTAP,
# the kernel log that kunit.py parses, make's output) and the kernel log
# after them, which the host needs verbatim; nested under a KTAP plan of
# sections, every line would have to be re-prefixed, in busybox sh too,
# and a section cut off by a hang would lose what a line buffer held. The
# host writes the run's KTAP (CONF.ktap: one case per case of a section,
# and a failed case for a section that failed, hung or never ran) with
# ktap_helpers.sh (ktap_write in scripts/lib.sh), once.

usage() {
	cat <<EOF
Usage: run.sh [--bin DIR] [--sections S,...] [--debug] [--stress SECS]
              [--fuzz SECS] [--leak-cycles N] [--kselftest DIR]
              [--kselftest-32 DIR] [--tree DIR --build DIR [--path PATH]]
       run.sh --list CONFIG

Sections (each loads the module it tests and unloads it):
  smoke             smoke: two mappings, read and write agree
  bad-input         badinput: every argument class of every entry point,
                    the module loaded with max_size=16 MiB
  bad-input-32      the same built for 32-bit user space (DIR/32/badinput)
  lifetime          reliability lifetime 100: no unload while a file or
                    only a mapping is left, load/unload cycles
  leak              reliability leak N: meminfo, slab, vmalloc and memcg
                    deltas over N cycles (with --debug: reported only)
  security          reliability security: 0600, other users, zeroed
                    memory, memcg charging
  memlimit          reliability memlimit: open and grow in a memory
                    cgroup below the request
  stress            stress -d SECS: random operations, 0 violations
  kunit             the KUnit suite loaded as a module (mmap_buf_kunit);
                    prints the suite's kernel log
  make-kselftest    'make kselftest TARGETS=mmap_buf' in --tree with
                    O=--build (built there on the host: it runs the test)
  run_kselftest.sh  the installed kselftest (--kselftest DIR)
  run_kselftest.sh-32
                    the same built for 32-bit user space (--kselftest-32)
  inject            inject: fault injection at each entry point (debug)
  gup               gup: the mapping's GUP users (debug)
  trinity           trinity.sh (next to run.sh): trinity on /dev/mmap_buf
                    for SECS (debug)

Options:
  --bin DIR         the programs (default: this script's directory)
  --sections S,...  the sections to run, in order (default: all of
                    --list x86_64)
  --list CONFIG     print the sections of a configuration, one a line:
                    x86_64, x86_64-debug, arm64, arm64-64k, debian
  --debug           a debug kernel: leak only reports, kmemleak at the end
  --stress SECS     length of the stress section (default: $stress)
  --fuzz SECS       length of the trinity section (default: $fuzz)
  --leak-cycles N   cycles of the leak section (default: $leak)
  --kselftest DIR   kselftest-install's output (default: DIR/kselftest_install)
  --kselftest-32 DIR
                    its 32-bit build (default: DIR/32/kselftest_install)
  --tree DIR, --build DIR
                    the kernel tree and its build, for make-kselftest
  --path PATH       the PATH the kernel was built with, for make-kselftest:
                    the tools kbuild finds on it (a rustc) enter the
                    configuration, so another PATH makes it sync that
                    again, under TCG (default: the guest's)
EOF
}

# The sections of each configuration: where they can run (32-bit user
# space needs IA32_EMULATION or COMPAT, and arm64's COMPAT 4 KiB pages;
# Debian's kernel has no KUnit and lacks patch 2, which the kselftest's
# large folios need), and what the debug kernel adds. The host may drop
# one it cannot build, with a warning.
list() {
	case $1 in
	x86_64)
		l="smoke bad-input bad-input-32 lifetime leak security memlimit"
		l="$l stress kunit make-kselftest run_kselftest.sh run_kselftest.sh-32" ;;
	x86_64-debug)
		l="smoke bad-input bad-input-32 lifetime leak security memlimit"
		l="$l stress kunit run_kselftest.sh inject gup trinity" ;;
	arm64)
		l="smoke bad-input bad-input-32 kunit run_kselftest.sh run_kselftest.sh-32" ;;
	arm64-64k)
		l="smoke bad-input kunit run_kselftest.sh" ;;
	debian)
		l="smoke bad-input bad-input-32" ;;
	*)
		echo "run.sh: unknown configuration $1" >&2
		return 2 ;;
	esac
	# shellcheck disable=SC2086 # one word a section
	printf '%s\n' $l
}

here=$(cd "$(dirname "$0")" && pwd)
bin=$here
sections=
debug=0
stress=30
fuzz=180
leak=10000
ksft=
ksft32=
tree=
build=
path=$PATH
while [ $# -gt 0 ]; do
	case $1 in
	-h | --help) usage; exit 0 ;;
	--list) [ $# -ge 2 ] || { usage >&2; exit 2; }; list "$2"; exit ;;
	--debug) debug=1; shift ;;
	--bin | --sections | --stress | --fuzz | --leak-cycles | --kselftest | \
	--kselftest-32 | --tree | --build | --path)
		[ $# -ge 2 ] || { usage >&2; exit 2; }
		case $1 in
		--bin) bin=$2 ;;
		--sections) sections=$2 ;;
		--stress) stress=$2 ;;
		--fuzz) fuzz=$2 ;;
		--leak-cycles) leak=$2 ;;
		--kselftest) ksft=$2 ;;
		--kselftest-32) ksft32=$2 ;;
		--tree) tree=$2 ;;
		--build) build=$2 ;;
		--path) path=$2 ;;
		esac
		shift 2 ;;
	*) usage >&2; exit 2 ;;
	esac
done
[ -n "$sections" ] || sections=$(list x86_64 | tr '\n' ,)
ksft=${ksft:-$bin/kselftest_install}
ksft32=${ksft32:-$bin/32/kselftest_install}
# The kernel log of the sections before KUnit's, which that one clears.
klog=${TMPDIR:-/tmp}/mmap_buf-dmesg
: >"$klog"
leak_args=$leak
[ $debug -eq 0 ] || leak_args="$leak --report-only"

# The section's timeout (settings): its own, or the default; for stress
# and trinity on top of their length.
settings=$here/settings
tmo_of() {
	t=$(sed -n "s/^$1=//p" "$settings" 2>/dev/null)
	[ -n "$t" ] || t=$(sed -n 's/^timeout=//p' "$settings" 2>/dev/null)
	case $1 in
	stress) t=$((${t:-300} + stress)) ;;
	trinity) t=$((${t:-300} + fuzz)) ;;
	esac
	echo "${t:-300}"
}
# Run a section's command under the section's timeout; say so when it hit
# it (GNU timeout exits 124, or 137 after SIGKILL; busybox's with the
# signal's 128 + 15).
run() {
	timeout -k 10 "$tmo" "$@"
	r=$?
	case $r in
	124 | 137 | 143) echo "# $sec: stopped after its timeout, $tmo s (guest/settings)" ;;
	esac
	return $r
}
section() { echo "=== section $1 $(date +%s)"; }
done_() { echo "=== status $1 $(date +%s)"; }
# Unload what a section loaded; a module already gone is no failure (the
# kselftest and inject unload it themselves).
unload() { rmmod "$@" 2>/dev/null || true; }

for sec in $(echo "$sections" | tr , ' '); do
	tmo=$(tmo_of "$sec")
	section "$sec"
	case $sec in
	smoke)
		modprobe mmap_buf && ls -l /dev/mmap_buf && run "$bin/smoke"; done_ $?
		unload mmap_buf ;;
	bad-input)
		modprobe mmap_buf max_size=16777216 && run "$bin/badinput"; done_ $?
		unload mmap_buf ;;
	bad-input-32)
		modprobe mmap_buf max_size=16777216 && run "$bin/32/badinput"; done_ $?
		unload mmap_buf ;;
	lifetime)
		# It loads and unloads the module itself.
		run "$bin/reliability" lifetime 100; done_ $?
		unload mmap_buf ;;
	leak)
		# $leak_args is two words with --debug.
		# shellcheck disable=SC2086
		modprobe mmap_buf && run "$bin/reliability" leak $leak_args; done_ $?
		unload mmap_buf ;;
	security | memlimit)
		modprobe mmap_buf && run "$bin/reliability" "$sec"; done_ $?
		unload mmap_buf ;;
	stress)
		modprobe mmap_buf && run "$bin/stress" -d "$stress"; done_ $?
		unload mmap_buf ;;
	kunit)
		# The suite's log alone goes to kunit.py; what came before is
		# kept for the dump at the end.
		dmesg -c >>"$klog"
		run modprobe mmap_buf_kunit; r=$?; dmesg; done_ $r
		unload mmap_buf_kunit mmap_buf ;;
	make-kselftest)
		# With the compiler the kernel was built with, so that kbuild
		# does not rebuild its host tools under TCG.
		(cd "$tree" && export PATH="$path" CCACHE_DISABLE=1 &&
			run make O="$build" CC="ccache gcc" HOSTCC="ccache gcc" \
				kselftest TARGETS=mmap_buf); done_ $?
		unload mmap_buf ;;
	run_kselftest.sh)
		(cd "$ksft" && run ./run_kselftest.sh); done_ $?
		unload mmap_buf ;;
	run_kselftest.sh-32)
		(cd "$ksft32" && run ./run_kselftest.sh); done_ $?
		unload mmap_buf ;;
	inject)
		modprobe mmap_buf && run "$bin/inject"; done_ $?
		unload mmap_buf ;;
	gup)
		modprobe mmap_buf && run "$bin/gup"; done_ $?
		unload mmap_buf brd ;;
	trinity)
		modprobe mmap_buf && run sh "$here/trinity.sh" --secs "$fuzz" \
			--smoke "$bin/smoke"; done_ $?
		unload mmap_buf ;;
	*)
		echo "Bail out! no section $sec"; done_ 2 ;;
	esac
done

if [ $debug -eq 1 ]; then
	# kmemleak reports an object once it has been unreferenced for two
	# scans in a row.
	echo "=== checkers"
	mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
	echo scan >/sys/kernel/debug/kmemleak
	sleep 5
	echo scan >/sys/kernel/debug/kmemleak
	echo "=== kmemleak"
	cat /sys/kernel/debug/kmemleak
fi
echo "=== dmesg"
cat "$klog"
dmesg
