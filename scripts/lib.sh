# SPDX-License-Identifier: GPL-2.0
# Shared by the scripts in this directory: paths, logging, the kernel tree.
# Sourced, never run. Every variable here can be overridden from the
# environment; `scripts/<cmd> --help` shows the ones a command uses.

PROJECT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PATCH_DIR="$PROJECT_DIR/patches"

# Everything large lives outside the repository and is reused across runs.
CACHE_DIR=${MMAP_BUF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmap_buf}

# The Debian package that provides the default base tree.
LINUX_PKG=${LINUX_PKG:-linux-source-7.2}
LINUX_PKG_SUITE=${LINUX_PKG_SUITE:-unstable}

# KERNEL_TREE: a git tree of the user's own; BASE_REF: the commit the series
# applies to there. Without them, the tree unpacked from $LINUX_PKG is used.
if [[ -n ${KERNEL_TREE:-} ]]; then
	TREE=$KERNEL_TREE
	BASE_REF=${BASE_REF:-HEAD}
	TREE_IS_OURS=0
else
	TREE=$CACHE_DIR/linux
	BASE_REF=${BASE_REF:-mmap_buf-base}
	TREE_IS_OURS=1
fi
WORK_BRANCH=${WORK_BRANCH:-mmap_buf}
BUILD_DIR=${BUILD_DIR:-$CACHE_DIR/build}

# scripts/check applies patches/ in CHECK_TREE and builds it in CHECK_BUILD;
# scripts/test then runs KUnit and both guests from those very builds:
#   guest     gcc, configs/guest.config: check's W=1/sparse build, the guest
#   debug     clang, guest.config + debug.config: check's clang build, the
#             debug guest
#   kunit-um  UML for kunit.py: the KUnit mutants, then the suite itself
CHECK_TREE=$CACHE_DIR/check-tree
CHECK_BUILD=$CACHE_DIR/build/check

# The identity the series is written under: a role, not a person. The mail
# command re-signs the series with the user's own git identity.
SERIES_NAME=${SERIES_NAME:-mmap_buf maintainers}
SERIES_EMAIL=${SERIES_EMAIL:-mmap-buf@kernel.invalid}
# The version of the series: its mails say [PATCH vN m/n] from v2 on.
SERIES_VERSION=4
# Kernel identifiers that codespell takes for misspellings (iput(),
# folio_test_uptodate()): scripts/docs-check and scripts/mail leave them be.
CODESPELL_IGNORE=(iput uptodate)
# The series' entry in MAINTAINERS, which scripts/mail checks.
MAINTAINERS_ENTRY="MMAP_BUF TEST FIXTURE"

JOBS=${JOBS:-$(nproc)}
# 7.2 needs LLVM >= 17; bookworm's newest is 19 (clang-19, lld-19, llvm-19).
LLVM_SUFFIX=${LLVM_SUFFIX:--19}

# The compiler arguments of every kernel build, by compiler: the same for
# scripts/check and scripts/build-kernel, so a build directory of one is
# reused by the other. ccache everywhere, one cache for all builds. One
# argument a line: mapfile -t args < <(kbuild_cc_args gcc).
# gcc-arm64 cross-builds for arm64 with Debian's gcc-aarch64-linux-gnu.
kbuild_cc_args() {
	case $1 in
	gcc) printf '%s\n' 'CC=ccache gcc' 'HOSTCC=ccache gcc' ;;
	gcc-arm64) printf '%s\n' ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- \
		'CC=ccache aarch64-linux-gnu-gcc' 'HOSTCC=ccache gcc' ;;
	clang) printf '%s\n' "LLVM=$LLVM_SUFFIX" "CC=ccache clang$LLVM_SUFFIX" "HOSTCC=ccache clang$LLVM_SUFFIX" ;;
	*) die "unknown compiler $1" ;;
	esac
}
export CCACHE_DIR=${CCACHE_DIR:-$CACHE_DIR/ccache}
# Paths below the cache become relative in ccache's hashes.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$CACHE_DIR}

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# Run "$@" with its output in a log file; show the tail only if it fails.
quiet() {
	local logf
	logf=$(mktemp "${TMPDIR:-/tmp}/mmap_buf.XXXXXX")
	local rc=0
	"$@" >"$logf" 2>&1 || rc=$?
	if [[ $rc -eq 0 ]]; then
		rm -f "$logf"
		return 0
	fi
	printf 'error: command failed (exit %d): %s\n' "$rc" "$*" >&2
	tail -n 60 "$logf" >&2
	printf '(full log: %s)\n' "$logf" >&2
	return "$rc"
}

# Seconds since $1 (a `date +%s` value), for phase timing.
since() { echo $(($(date +%s) - $1)); }

# Phase timing: `phase NAME` starts one; the end of the previous one is logged.
PHASE_NAME=
PHASE_START=0
PHASE_TIMES=()
phase() {
	phase_end
	PHASE_NAME=$1
	PHASE_START=$(date +%s)
	log "$PHASE_NAME"
}
phase_end() {
	[[ -n $PHASE_NAME ]] || return 0
	PHASE_TIMES+=("$PHASE_NAME: $(since "$PHASE_START")s")
	PHASE_NAME=
}
phase_report() {
	phase_end
	local p
	for p in "${PHASE_TIMES[@]}"; do
		printf 'time: %s\n' "$p"
	done
}

need_root() {
	[[ $(id -u) -eq 0 ]] || die "$1 needs root (apt-get install); run as root or install by hand: ${*:2}"
}

# Install Debian packages that are missing. Bookworm's own packages only.
apt_install() {
	local missing=() p
	for p in $(printf '%s\n' "$@" | sort -u); do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing+=("$p")
	done
	[[ ${#missing[@]} -eq 0 ]] && return 0
	need_root "installing packages" "${missing[@]}"
	log "installing ${missing[*]}"
	if [[ ! -f $CACHE_DIR/.apt-updated ]] ||
		[[ -n $(find "$CACHE_DIR/.apt-updated" -mmin +720) ]]; then
		quiet apt-get update
		mkdir -p "$CACHE_DIR" && touch "$CACHE_DIR/.apt-updated"
	fi
	DEBIAN_FRONTEND=noninteractive quiet apt-get install -y --no-install-recommends "${missing[@]}"
}

# Every Debian package the commands use, by what needs it. apt_install
# passes --no-install-recommends, so a package's Recommends that a command
# relies on are named here too (git-email's Mail::Address is one: without
# libmailtools-perl, 'git send-email' dies). scripts/check-deps proves the
# list complete in a pristine Debian chroot; add a new tool here, then run it.
# Building a kernel (x86_64 guests, UML for KUnit) and the guest programs.
PKGS_BUILD=(build-essential flex bison bc libelf-dev libssl-dev ccache cpio
	rsync kmod xz-utils python3 git)
# scripts/check: checkpatch's spdxcheck.py (python3-ply, python3-git), the
# clang build, and sparse, which is built from Debian's source package
# (dpkg-source).
PKGS_CHECK=(perl python3-ply python3-git codespell dpkg-dev
	"clang$LLVM_SUFFIX" "lld$LLVM_SUFFIX" "llvm$LLVM_SUFFIX")
# scripts/docs-check: make htmldocs (Sphinx 5.3 and its YAML reader).
PKGS_DOCS=(python3-sphinx python3-yaml codespell)
# scripts/mail: git send-email and what git-email only recommends.
PKGS_MAIL=(git-email libmailtools-perl libemail-valid-perl libauthen-sasl-perl
	libio-socket-ssl-perl libnet-smtp-ssl-perl)
# scripts/boot-guest: QEMU, and virtme-ng's Depends from bookworm (vng itself
# is unpacked from unstable into the cache, see vng_setup), procps for the
# watchdog, udev for the guest's virtio-serial port names, unshare and
# mount (util-linux) for scripts/kunit's hidden /dev/kvm.
PKGS_GUEST=(qemu-system-x86 busybox-static python3-argcomplete python3-requests
	file iproute2 kbd util-linux util-linux-extra procps udev)
# The portable configurations (scripts/initramfs-guest): the arm64 cross
# compiler and its libc (static test programs), QEMU's arm64 machine, 32-bit
# arm user space for the arm64 guest (armhf), and 32-bit x86 user space
# (-m32). gcc-12-multilib rather than gcc-multilib:
# Debian's cross compilers conflict with the latter, not the former.
PKGS_PORT=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-system-arm
	gcc-arm-linux-gnueabihf libc6-dev-armhf-cross gcc-12-multilib
	debootstrap debian-archive-keyring)
# The debug guest's fuzzing section, and scripts/bench's plot.
PKGS_FUZZ=(trinity)
PKGS_BENCH=(gnuplot-nox)
# Everything: what scripts/install-deps, scripts/run and scripts/test install.
ALL_PACKAGES=("${PKGS_BUILD[@]}" "${PKGS_CHECK[@]}" "${PKGS_DOCS[@]}"
	"${PKGS_MAIL[@]}" "${PKGS_GUEST[@]}" "${PKGS_PORT[@]}" "${PKGS_FUZZ[@]}"
	"${PKGS_BENCH[@]}")

# The first Debian mirror the system's apt configuration uses for its own
# release, so no host name is written anywhere in this project.
debian_mirror() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] || continue
		uri=$(awk '/^URIs:/ { u = $2 } /^Suites:/ && u && $0 !~ /security/ { print u; exit }' "$f")
		[[ -n $uri ]] && { echo "${uri%/}"; return 0; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f $f ]] || continue
		uri=$(awk '$1 == "deb" && $0 !~ /security/ {
			for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; exit } }' "$f")
		[[ -n $uri ]] && { echo "${uri%/}"; return 0; }
	done
	return 1
}

# Download Debian package $1 from suite $2 into directory $3 without touching
# the system's apt state: a private sources list and private state dirs.
# APT_FETCH_ARCH=arm64 fetches that architecture's package instead of the
# machine's (a static arm64 busybox for the arm64 guests).
apt_fetch_pkg() {
	local pkg=$1 suite=$2 dest=$3 mirror root arch=${APT_FETCH_ARCH:-}
	mirror=$(debian_mirror) || die "no Debian mirror found in /etc/apt; install $pkg by hand or set KERNEL_TREE"
	root=$CACHE_DIR/apt-$suite${arch:+-$arch}
	mkdir -p "$root"/{lists/partial,archives/partial,etc/preferences.d} "$dest"
	cat >"$root/etc/sources.list" <<-EOF
		deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main
		deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main
	EOF
	: >"$root/status"
	local opts=(-o "Dir::Etc::SourceList=$root/etc/sources.list"
		-o "Dir::Etc::SourceParts=/nonexistent"
		-o "Dir::Etc::Preferences=/nonexistent"
		-o "Dir::Etc::PreferencesParts=$root/etc/preferences.d"
		-o "Dir::State=$root" -o "Dir::State::Lists=$root/lists"
		-o "Dir::State::status=$root/status"
		-o "Dir::Cache=$root" -o "Dir::Cache::archives=$root/archives"
		-o "APT::Sandbox::User=root" -o "Debug::NoLocking=1")
	[[ -z $arch ]] || opts+=(-o "APT::Architecture=$arch" -o "APT::Architectures=$arch")
	local hint="set KERNEL_TREE to a git tree of your own"
	[[ $pkg == "$LINUX_PKG" ]] || hint="$pkg is needed from $suite"
	quiet apt-get "${opts[@]}" update ||
		die "could not read the $suite suite from $mirror; $hint"
	if [[ ${APT_FETCH_SOURCE:-0} -eq 1 ]]; then
		(cd "$dest" && quiet apt-get "${opts[@]}" source --download-only "$pkg") ||
			die "source package $pkg is not in $suite"
	else
		(cd "$dest" && quiet apt-get "${opts[@]}" download "$pkg") ||
			die "package $pkg is not in $suite; $hint"
	fi
}

# A sparse new enough for 7.2 (it needs __typeof_unqual__, which bookworm's
# 0.6.4 lacks), built once from Debian's unstable source package into the
# cache. Prints the path of the sparse binary.
sparse_path() {
	local dir=$CACHE_DIR/sparse bin
	bin=$(ls "$dir"/sparse-*/sparse 2>/dev/null | head -n 1 || true)
	if [[ -z $bin ]]; then
		apt_install build-essential dpkg-dev
		rm -rf "$dir"
		mkdir -p "$dir"
		log "building sparse from Debian's unstable source package"
		APT_FETCH_SOURCE=1 apt_fetch_pkg sparse unstable "$dir"
		(cd "$dir" && quiet dpkg-source -x ./*.dsc) || die "cannot unpack sparse's source"
		local src
		src=$(ls -d "$dir"/sparse-*/ | head -n 1)
		# Debian's packaging pins a gcc version bookworm does not have.
		quiet make -C "$src" -j"$JOBS" CC=gcc sparse || die "cannot build sparse"
		bin=${src}sparse
	fi
	echo "$bin"
}

# The kernel tree must exist and be a git repository with $BASE_REF.
require_tree() {
	[[ -e $TREE/.git ]] || die "no kernel tree at $TREE; run scripts/fetch-tree (or set KERNEL_TREE)"
	git -C "$TREE" rev-parse -q --verify "$BASE_REF^{commit}" >/dev/null ||
		die "$TREE has no $BASE_REF; run scripts/fetch-tree or set BASE_REF"
}

tgit() { git -C "$TREE" "$@"; }

# The series' commits on the work branch, oldest first.
series_commits() { tgit rev-list --reverse "$BASE_REF..$WORK_BRANCH"; }

# virtme-ng (vng) boots a built kernel on the host's file system. Bookworm
# has no package of it; the one from $VNG_SUITE is pure Python (arch all), so
# it is unpacked into the cache, never installed, and run with bookworm's
# /usr/bin/python3. Debian's package ships no Rust virtme-ng-init, so the
# guest always runs vng's bash init (virtme-init).
VNG_SUITE=${VNG_SUITE:-unstable}
VNG_DIR=$CACHE_DIR/virtme-ng
VNG_ROOT=$VNG_DIR/root

# Fetch and unpack virtme-ng once, install what it needs from bookworm, and
# put it on PATH and PYTHONPATH: vng starts virtme-run and
# virtme-prep-kdir-mods through PATH.
vng_setup() {
	# The package's Depends, from bookworm, plus QEMU (a Recommends), procps
	# (boot-guest's timeout), and udev: virtme-init runs the host's udevd in
	# the guest to name the virtio-serial ports (/dev/virtio-ports/virtme.*)
	# that carry the command's output and exit status.
	apt_install "${PKGS_GUEST[@]}" kmod
	if [[ ! -x $VNG_ROOT/usr/bin/vng ]]; then
		log "fetching virtme-ng from $VNG_SUITE"
		rm -rf "$VNG_DIR"
		apt_fetch_pkg virtme-ng "$VNG_SUITE" "$VNG_DIR"
		dpkg-deb -x "$(ls "$VNG_DIR"/virtme-ng_*.deb)" "$VNG_DIR/unpack"
		mv "$VNG_DIR/unpack" "$VNG_ROOT"
		log "virtme-ng $(vng_version) ready in $VNG_ROOT"
	fi
	export PATH="$VNG_ROOT/usr/bin:$PATH"
	export PYTHONPATH="$VNG_ROOT/usr/lib/python3/dist-packages${PYTHONPATH:+:$PYTHONPATH}"
}

# Run vng (after vng_setup).
vng() { /usr/bin/python3 "$VNG_ROOT/usr/bin/vng" "$@"; }

# The unpacked package's version, e.g. "1.41-1".
vng_version() { dpkg-deb -f "$(ls "$VNG_DIR"/virtme-ng_*.deb)" Version; }

# The series' patch files, cover letter excluded, in order.
series_patches() {
	local p
	for p in "$PATCH_DIR"/[0-9][0-9][0-9][0-9]-*.patch; do
		[[ -e $p && $(basename "$p") != 0000-cover-letter.patch ]] && echo "$p"
	done
	return 0
}

# git format-patch of BASE..BRANCH in git repository REPO into directory OUT,
# the way the series is always written: the cover letter's subject and text
# from series/cover-letter (as the branch description), the head commit's
# date on the cover letter, 12-digit ids, no signature. Further arguments go
# to format-patch (--zero-commit, --thread, --to ...).
series_format_patch() {
	local repo=$1 branch=$2 base=$3 out=$4 desc date prefix
	shift 4
	desc=$(cat "$PROJECT_DIR/series/cover-letter")
	prefix=PATCH
	[[ $SERIES_VERSION -le 1 ]] || prefix+=" v$SERIES_VERSION"
	date=$(git -C "$repo" log -1 --format=%aD "$branch")
	GIT_COMMITTER_DATE=$date git -C "$repo" -c "branch.$branch.description=$desc" \
		-c core.abbrev=12 -c diff.renames=true -c format.coverFromDescription=subject \
		format-patch -q --cover-letter --base="$base" --no-signature \
		--subject-prefix="$prefix" "$@" -o "$out" "$base..$branch" >/dev/null
}

# patches/ as scripts/export writes it into directory $1: zeroed commit ids,
# so the files are the same bytes whenever the commits are.
format_series() {
	series_format_patch "$TREE" "$WORK_BRANCH" "$BASE_REF" "$1" --zero-commit
}

# The counts of kunit.py's (run or parse) summary line on stdin, "Testing
# complete. Ran N tests: passed: P[, failed: F][, crashed: C][, skipped:
# S]", as "P F S" with crashed cases counted as failed; fails without one.
kunit_counts() {
	local line p f c s
	line=$(grep -E 'Testing complete\. Ran [0-9]+ tests?' | tail -n 1 || true)
	[[ -n $line ]] || return 1
	p=$(sed -nE 's/.*passed: ([0-9]+).*/\1/p' <<<"$line")
	f=$(sed -nE 's/.*failed: ([0-9]+).*/\1/p' <<<"$line")
	c=$(sed -nE 's/.*crashed: ([0-9]+).*/\1/p' <<<"$line")
	s=$(sed -nE 's/.*skipped: ([0-9]+).*/\1/p' <<<"$line")
	echo "${p:-0} $((${f:-0} + ${c:-0})) ${s:-0}"
}

# The kernel log of a guest run ($GUEST_LOG) is divided into sections:
# "=== section NAME START", the section's output, "=== status RC END"
# (guest/run.sh, started by scripts/guest-tests and guest/initramfs/init).
# Print the part of section $1.
section_body() {
	awk -v s="$1" '$1 == "===" && $2 == "section" && $3 == s { on = 1; next }
		on && /^=== (section|status)/ { exit } on' "$GUEST_LOG"
}

# Count the cases of each section of $GUEST_LOG, print a line a section,
# and add them to the caller's tp, tf and ts (passed, failed, skipped);
# set bad=1 on a section that failed without a failed case. $1: the kernel
# tree (its kunit.py parses the KUnit section), $2: the guest's timeout,
# $3: the guest's exit status, $4: the sections expected, one a line.
count_sections() {
	local tree=$1 tmo=$2 grc=$3 expected=$4 sec body status secs parsed
	local p f s prefix cases why

	# Count the cases of each section. Our programs print top-level TAP
	# ("ok N - name"); a kselftest's cases are nested one level under its
	# runner ("# ok N name", "# not ok N name", "# ok N name # SKIP why"); the
	# KUnit section is the kernel log of the module's load, which kunit.py
	# parses.
	while IFS= read -r sec; do
		body=$(section_body "$sec")
		# "status RC END" after "section NAME START".
		read -r status secs < <(awk -v s="$sec" '
			$1 == "===" && $2 == "section" && $3 == s { on = 1; t = $4; next }
			on && /^=== status / { print $3, $4 - t; exit }' "$GUEST_LOG") || true
		if [[ $sec == kunit ]]; then
			parsed=$(python3 "$tree/tools/testing/kunit/kunit.py" parse <<<"$body" 2>&1 || true)
			grep -E '\[(PASSED|FAILED|SKIPPED|CRASHED)\]' <<<"$parsed" | sed 's/^/  /' || true
			read -r p f s < <(kunit_counts <<<"$parsed") || p=0 f=0 s=0
		else
			prefix=
			[[ $sec != *kselftest* ]] || prefix='# '
			cases=$(grep -E "^$prefix(not )?ok [0-9]+" <<<"$body" || true)
			p=$(grep -E "^${prefix}ok " <<<"$cases" | grep -vc '# SKIP' || true)
			s=$(grep -E "^${prefix}ok .*# SKIP" -c <<<"$cases" || true)
			f=$(grep -cE "^${prefix}not ok " <<<"$cases" || true)
			[[ -n $cases ]] && sed 's/^/  /' <<<"$cases"
			# Diagnostics of our programs (figures, reasons of failures),
			# not kselftest_harness.h's progress and totals.
			[[ -n $prefix ]] || grep -E '^# ' <<<"$body" |
				grep -vE '^# +(RUN|OK|FAIL|SKIP|XFAIL|XPASS) |^# (Starting|PASSED:|FAILED:|Totals:|[0-9]+ skipped)' |
				sed 's/^/  /' | head -n 40 || true
		fi
		# A section that never finished, reported no case, or failed
		# without a failed case: one failed case more, said plainly.
		why=
		if [[ -z $status ]]; then
			why="started but never finished: the guest stopped, or was stopped after --timeout $tmo s, during it"
		elif [[ $((p + s + f)) -eq 0 ]]; then
			why="reported no case (exit status $status)"
		elif [[ $status -ne 0 && $f -eq 0 ]]; then
			why="exit status $status, but no case failed"
		fi
		if [[ -n $why ]]; then
			warn "section $sec $why"
			f=$((f + 1)) bad=1
		fi
		printf 'section %s: %d passed, %d failed, %d skipped (status %s, %ss in the guest)\n' \
			"$sec" "$p" "$f" "$s" "${status:-none}" "${secs:-?}"
		tp=$((tp + p)) tf=$((tf + f)) ts=$((ts + s))
	done < <(awk '$1 == "===" && $2 == "section" { print $3 }' "$GUEST_LOG")

	# A section the guest never started (it died, hung or timed out before)
	# is a failed case of its own, named.
	while read -r sec; do
		grep -qE "^=== section $sec( |\$)" "$GUEST_LOG" && continue
		warn "section $sec never ran (the guest stopped before it: exit status $grc)"
		printf 'section %s: 0 passed, 1 failed, 0 skipped (never ran)\n' "$sec"
		tf=$((tf + 1)) bad=1
	done <<<"$expected"
}

# What the kernel log guest/run.sh prints at its end must not hold: any
# kernel's reports, and the debug kernel's checkers' too.
KLOG_REPORTS='BUG:|WARNING:|Oops|Unable to handle|general protection'
KLOG_REPORTS_DEBUG="$KLOG_REPORTS|KASAN|KFENCE|UBSAN|possible circular locking"
KLOG_REPORTS_DEBUG+="|possible recursive locking|inconsistent lock state"
KLOG_REPORTS_DEBUG+="|sleeping function called|unreferenced object"

# Look for the reports $2 (an ERE; $3 names them) in $GUEST_LOG from its
# line $1 (a whole line: "=== dmesg", or "=== kmemleak" to take kmemleak's
# report too) on; print them, or that there are none. Sets bad=1 when the
# guest never printed its log, or when it holds one.
check_kernel_log() {
	local from=$1 pattern=$2 what=$3 reports
	if ! grep -qx '=== dmesg' "$GUEST_LOG"; then
		warn "the guest did not reach the kernel log dump"
		bad=1
		return 0
	fi
	reports=$(sed -n "/^$from\$/,\$p" "$GUEST_LOG" | grep -E "$pattern" || true)
	if [[ -n $reports ]]; then
		warn "the kernel reported problems:"
		printf '%s\n' "$reports" | head -n 40 >&2
		bad=1
	else
		echo "kernel log: no $what"
	fi
}

# Debian's own kernel, for scripts/initramfs-guest --target debian: the
# image and the modules the kselftest uses from linux-binary-* and
# linux-modules-*, and mmap_buf.ko built against its headers
# (scripts/debian-module, in a chroot of its suite).
DEBIAN_KERNEL=${DEBIAN_KERNEL:-7.2.13+deb14-amd64}
DEBIAN_SUITE=${DEBIAN_SUITE:-unstable}
DEBIAN_DIR=$CACHE_DIR/debian-kernel/$DEBIAN_KERNEL
DEBIAN_CHROOT=$CACHE_DIR/debian-$DEBIAN_SUITE

# Fetch Debian's kernel once, and build mmap_buf.ko for it from $TREE when
# the driver's sources changed.
debian_prepare() {
	local d=$DEBIAN_DIR pkg key
	if [[ ! -f $d/vmlinuz ]]; then
		rm -rf "$d"
		mkdir -p "$d/modules"
		for pkg in linux-binary linux-modules; do
			apt_fetch_pkg "$pkg-$DEBIAN_KERNEL" "$DEBIAN_SUITE" "$d/deb"
		done
		for pkg in "$d"/deb/*.deb; do
			dpkg-deb -x "$pkg" "$d/x"
		done
		# The soft-offline test of the kselftest unpoisons with it.
		xz -dc "$d/x/usr/lib/modules/$DEBIAN_KERNEL/kernel/mm/hwpoison-inject.ko.xz" \
			>"$d/modules/hwpoison-inject.ko"
		mv "$d/x/usr/lib/modules/$DEBIAN_KERNEL/vmlinuz" "$d/vmlinuz"
		rm -rf "$d/x" "$d/deb"
	fi
	key=$({ echo "$DEBIAN_KERNEL"; cat "$TREE"/drivers/misc/mmap_buf/{Makefile,*.[ch]}; } |
		sha256sum | cut -d' ' -f1)
	if [[ ! -f $d/modules/mmap_buf.ko || $(cat "$d/modules/.key" 2>/dev/null) != "$key" ]]; then
		"$PROJECT_DIR/scripts/debian-module" -t "$TREE" -o "$d/modules"
		echo "$key" >"$d/modules/.key"
	fi
}

# A static busybox for the arm64 guests: bookworm's busybox-static arm64
# package, fetched and unpacked once. Prints its path.
arm64_busybox() {
	local dir=$CACHE_DIR/busybox-arm64 suite
	if [[ ! -x $dir/root/bin/busybox ]]; then
		rm -rf "$dir"
		suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
		APT_FETCH_ARCH=arm64 apt_fetch_pkg busybox-static "$suite" "$dir"
		dpkg-deb -x "$(ls "$dir"/busybox-static_*.deb)" "$dir/root"
	fi
	echo "$dir/root/bin/busybox"
}

# Check the skipped kselftest cases of $GUEST_LOG against the rules of
# configuration $1 in guest/expected-skips: every skip, with its reason,
# must match a rule and every rule a skip. Prints "SKIPS EXPECTED: N" for
# scripts/test, which fails a run on any other skip; sets bad=1 on a
# mismatch.
check_expected_skips() {
	local conf=$1 rules sec skipped name why c s pat reason matched n=0
	rules=$(grep -vE '^[[:space:]]*(#|$)' "$PROJECT_DIR/guest/expected-skips")
	for sec in $(awk '$1 == "===" && $2 == "section" && $3 ~ /kselftest/ { print $3 }' "$GUEST_LOG"); do
		# "NAME<tab>REASON" for each skipped case.
		skipped=$(section_body "$sec" |
			sed -nE 's/^# ok [0-9]+ ([^ ]+) # SKIP ?(.*)$/\1\t\2/p')
		while IFS=$'\t' read -r name why; do
			[[ -n $name ]] || continue
			matched=0
			while read -r c s pat reason; do
				# shellcheck disable=SC2053
				[[ $c == "$conf" && $s == "$sec" && $name == $pat && $why == $reason ]] &&
					matched=1
			done <<<"$rules"
			if [[ $matched -eq 1 ]]; then
				n=$((n + 1))
			else
				warn "$sec: $name skipped ($why), which guest/expected-skips does not expect of $conf"
				bad=1
			fi
		done <<<"$skipped"
		while read -r c s pat reason; do
			[[ $c == "$conf" && $s == "$sec" ]] || continue
			matched=0
			while IFS=$'\t' read -r name why; do
				# shellcheck disable=SC2053
				[[ -n $name && $name == $pat && $why == $reason ]] && matched=1
			done <<<"$skipped"
			if [[ $matched -eq 0 ]]; then
				warn "$sec: guest/expected-skips expects $pat to skip on $conf ($reason), and nothing did"
				bad=1
			fi
		done <<<"$rules"
	done
	echo "SKIPS EXPECTED: $n"
}
