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

# patches/ is the only input. series_tree applies it onto $BASE_REF in
# SERIES_TREE, a worktree of $TREE, and keeps it there: the commits are
# kept under a ref named by the content hash of the base and the patches,
# so the tree is re-applied only when patches/ or the base changed, and
# only the files that differ are touched (kbuild rebuilds only those). Its
# builds live in SERIES_BUILD:
#   guest      gcc, configs/guest.config: check's W=1/sparse build, the guest
#   debug      clang, guest.config + debug.config: check's clang build, the
#              debug guest
#   arm64, arm64-64k   the arm64 builds and guests
#   kunit-um   UML for kunit.py: the KUnit mutants, then the suite itself
# (The paths are v1's check-tree and build/check, kept so that existing
# builds and their ccache entries stay valid.)
SERIES_TREE=$CACHE_DIR/check-tree
SERIES_BUILD=$CACHE_DIR/build/check
SERIES_REFS=refs/mmap_buf/series

# The tree every command builds and tests (SRC) and the parent of its build
# directories (BUILD_DIR): the series tree and its builds, unless SRC_TREE
# or BUILD_DIR say otherwise (scripts/run --branch: the work branch checked
# out in $TREE, built in $CACHE_DIR/build, so the series' builds stay).
SRC=${SRC_TREE:-$SERIES_TREE}
BUILD_DIR=${BUILD_DIR:-$SERIES_BUILD}

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
sgit() { git -C "$SERIES_TREE" "$@"; }

# The key of patches/ on the base: a hash of the base commit and of the
# patch files (the cover letter changes no file of the tree).
series_key() {
	local patches
	mapfile -t patches < <(series_patches)
	{
		tgit rev-parse "$BASE_REF^{commit}"
		[[ ${#patches[@]} -eq 0 ]] || cat "${patches[@]}"
	} | sha256sum | cut -c1-16
}

# Bring SERIES_TREE to patches/ applied onto $BASE_REF: nothing to do when
# it is there and clean; a checkout of the key's ref when patches/ was
# applied before; else 'git am' of each patch onto a detached base, which
# names the patch that fails and leaves no ref. Uncommitted edits in the
# series tree (a mutant left by an interrupted run) are discarded: the tree
# is the scripts', never edited by hand. Prints nothing when up to date.
series_tree() {
	local key ref patches p n base amlog
	require_tree
	mapfile -t patches < <(series_patches)
	[[ ${#patches[@]} -gt 0 ]] || die "no patches in $PATCH_DIR"
	# The base as $TREE names it (BASE_REF=HEAD is $TREE's HEAD).
	base=$(tgit rev-parse "$BASE_REF^{commit}")
	key=$(series_key)
	ref=$SERIES_REFS/$key
	if [[ ! -e $SERIES_TREE/.git ]]; then
		rm -rf "$SERIES_TREE"
		tgit worktree prune
		tgit worktree add -q --detach "$SERIES_TREE" "$base"
	fi
	sgit am --abort >/dev/null 2>&1 || true
	if ! tgit rev-parse -q --verify "$ref^{commit}" >/dev/null; then
		log "applying patches/ (${#patches[@]} patches) onto $BASE_REF in $SERIES_TREE"
		sgit checkout -q -f --detach "$base"
		for p in "${patches[@]}"; do
			if ! amlog=$(sgit am -q --whitespace=nowarn "$p" 2>&1); then
				sgit am --abort >/dev/null 2>&1 || true
				printf '%s\n' "$amlog" | tail -n 20 >&2
				die "$(basename "$p") does not apply onto $BASE_REF"
			fi
		done
		# One ref: the one of today's patches/.
		tgit for-each-ref --format='%(refname)' "$SERIES_REFS/" |
			while read -r p; do tgit update-ref -d "$p"; done
		sgit update-ref "$ref" HEAD
	fi
	if [[ $(sgit rev-parse HEAD) != "$(tgit rev-parse "$ref")" ]] ||
		[[ -n $(sgit status --porcelain --untracked-files=no) ]]; then
		sgit checkout -q -f --detach "$ref"
	fi
	n=$(sgit rev-list --count "$base..HEAD")
	[[ $n -eq ${#patches[@]} ]] || die "$SERIES_TREE: $n commits for ${#patches[@]} patches"
}

# What differs between patches/ and what 'scripts/export' would write from
# the work branch (and uncommitted edits in the branch's worktrees), said
# a line a difference; returns 1 if anything does.
series_compare() {
	local rc=0 wt dirty tmp f b
	# Edits in any worktree of the kernel repository that is on a branch;
	# the series tree and the scratch trees are detached.
	while read -r wt; do
		git -C "$wt" symbolic-ref -q HEAD >/dev/null || continue
		dirty=$(git -C "$wt" status --porcelain --untracked-files=normal -- \
			drivers/misc lib/Kconfig.debug mm tools/testing/selftests Documentation MAINTAINERS 2>/dev/null | head -20)
		if [[ -n $dirty ]]; then
			printf 'uncommitted changes in %s:\n%s\n' "$wt" "$dirty"
			rc=1
		fi
	done < <(tgit worktree list --porcelain | sed -n 's/^worktree //p')
	tmp=$(mktemp -d)
	format_series "$tmp"
	# The "From <commit>" line changes whenever commits are re-created (git
	# am, rebase); the patches are the same if everything else is.
	for f in "$tmp"/*.patch; do
		b=$(basename "$f")
		if [[ ! -f $PATCH_DIR/$b ]]; then
			echo "patches/$b is missing"
			rc=1
		elif ! cmp -s <(sed '1{/^From [0-9a-f]\{40\} /d}' "$f") \
			<(sed '1{/^From [0-9a-f]\{40\} /d}' "$PATCH_DIR/$b"); then
			echo "patches/$b differs from $WORK_BRANCH"
			rc=1
		fi
	done
	for f in "$PATCH_DIR"/*.patch; do
		[[ -e $f && ! -f $tmp/$(basename "$f") ]] || continue
		echo "patches/$(basename "$f") is not in $WORK_BRANCH"
		rc=1
	done
	rm -rf "$tmp"
	return $rc
}

# Record that patches/ and the work branch are the same series now
# (scripts/apply, scripts/export): the key of patches/ and the branch's
# commit, in the kernel repository's config.
series_record() {
	tgit config mmap-buf.synced "$(series_key) $(tgit rev-parse "refs/heads/$WORK_BRANCH")"
}

# Which side moved since the record: none (no work branch), same, branch
# (commits or edits patches/ lacks), patches (patches/ changed, the branch
# did not), both, or unknown (they differ and there is no record).
series_state() {
	local rec key0 tip0 diffs branch_moved=0 patches_moved=0
	if [[ ! -e $TREE/.git ]] || ! tgit rev-parse -q --verify "refs/heads/$WORK_BRANCH" >/dev/null; then
		echo none
		return 0
	fi
	if diffs=$(series_compare); then
		series_record
		echo same
		return 0
	fi
	rec=$(tgit config mmap-buf.synced || true)
	if [[ -z $rec ]]; then
		echo unknown
		return 0
	fi
	read -r key0 tip0 <<<"$rec"
	[[ $(series_key) == "$key0" ]] || patches_moved=1
	[[ $(tgit rev-parse "refs/heads/$WORK_BRANCH") == "$tip0" ]] || branch_moved=1
	# Uncommitted edits are the branch's too.
	[[ $diffs != *uncommitted* ]] || branch_moved=1
	case $patches_moved$branch_moved in
	10) echo patches ;;
	11) echo both ;;
	*) echo branch ;;
	esac
}

# Verdicts: a check that passed is not run again while none of its inputs
# changed, as make does not rebuild an object whose sources did not. A
# verdict's key hashes what the check reads: the caller's arguments (the
# git tree ids of the sources checked, the patch, the options), the files
# it names (its own script), lib.sh and configs/, every installed Debian
# package with its version (the compilers, perl, codespell, Sphinx),
# ~/.checkpatch.conf, and the environment variables that kbuild, Sphinx,
# python and these scripts read. Not in it: tools installed outside dpkg
# (pip --user, /usr/local); after installing one, --recheck. A key that
# is not stored runs the check; a pass is stored, a failure drops what
# was stored. MMAP_BUF_RECHECK=1 (scripts/test and scripts/check
# --recheck) runs every check and stores its pass anew.
VERDICT_DIR=$CACHE_DIR/verdicts
VERDICT_MACHINE=
# The part of every key that is the machine's: once a command (call it
# outside $(...) to keep it).
verdict_machine() {
	[[ -z $VERDICT_MACHINE ]] || return 0
	VERDICT_MACHINE=$({
		cd "$PROJECT_DIR" && sha256sum scripts/lib.sh configs/*
		dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Architecture} ${Version}\n'
		cat "$HOME/.checkpatch.conf" 2>/dev/null || true
		env | grep -E '^(ARCH|SUBARCH|CROSS_COMPILE|LLVM|LLVM_IAS|CC|HOSTCC|LD|KCFLAGS|KCPPFLAGS|KAFLAGS|KRUSTFLAGS|KBUILD_[A-Z_]*|W|C|CHECK|CF|EXTRA_CHECK|SPHINX[A-Z_]*|PYTHON[A-Z_]*|KERNEL_TREE|BASE_REF|SERIES_[A-Z_]*|MAIL_[A-Z_]*|LLVM_SUFFIX|LANG|LANGUAGE|LC_[A-Z_]*|MAKEFLAGS|GIT_CONFIG[A-Z_]*)=' | sort || true
		echo "$LLVM_SUFFIX"
	} | sha256sum | cut -c1-64)
}
# verdict_key [--file FILE]... [WORD]...: the key of those inputs.
verdict_key() {
	verdict_machine
	{
		echo "$VERDICT_MACHINE"
		while [[ $# -gt 0 ]]; do
			if [[ $1 == --file ]]; then
				sha256sum <"$2"
				shift
			else
				# Its length first: no two lists of words hash alike.
				printf '%d:%s\n' "${#1}" "$1"
			fi
			shift
		done
	} | sha256sum | cut -c1-32
}
# verdict_get KEY: print the verdict stored under KEY (its first line says
# when it passed); false if there is none, or MMAP_BUF_RECHECK=1. A
# verdict used is kept 30 days more.
verdict_get() {
	[[ ${MMAP_BUF_RECHECK:-0} != 1 && -f $VERDICT_DIR/$1 ]] || return 1
	touch "$VERDICT_DIR/$1"
	[[ ! -f $VERDICT_DIR/$1.files ]] || touch "$VERDICT_DIR/$1.files"
	cat "$VERDICT_DIR/$1"
}
# verdict_put KEY: store standard input as the verdict of KEY, after a
# first line that says when. Verdicts unused for over 30 days are
# dropped. A verdict that cannot be stored is only a warning.
verdict_put() {
	local tmp
	if ! mkdir -p "$VERDICT_DIR" 2>/dev/null; then
		cat >/dev/null
		warn "cannot store verdict $1"
		return 0
	fi
	find "$VERDICT_DIR" -type f -mtime +30 -delete 2>/dev/null || true
	tmp=$(mktemp "$VERDICT_DIR/.new.XXXXXX") &&
		{ echo "passed $(date -u '+%Y-%m-%d %H:%M UTC')"; cat; } >"$tmp" &&
		mv -f "$tmp" "$VERDICT_DIR/$1" ||
		{ rm -f "$tmp"; warn "cannot store verdict $1"; }
}
# verdict_drop KEY: a failure; the check runs again next time.
verdict_drop() { rm -f "$VERDICT_DIR/$1" "$VERDICT_DIR/$1".*; }
# The git tree id of the clean worktree $1, or nothing when it has changes
# that are not committed, or files git does not track but does not ignore
# (which no tree id names).
clean_tree_id() {
	[[ -z $(git -C "$1" status --porcelain --untracked-files=normal 2>/dev/null) ]] || return 0
	git -C "$1" rev-parse -q --verify 'HEAD^{tree}' 2>/dev/null || true
}

# One command at a time on the series tree and its builds (scripts/run,
# scripts/test): a lock held until the command ends.
lock_series() {
	mkdir -p "$CACHE_DIR"
	exec 8>"$CACHE_DIR/series.lock"
	flock -n 8 || die "another scripts/run or scripts/test uses $SERIES_TREE (lock $CACHE_DIR/series.lock)"
}

# Make the tree under test ready: by default the series tree, brought to
# patches/ (series_tree); a tree given (SRC_TREE, which the commands' -t
# sets and exports, e.g. a mutated tree handed to scripts/build-kernel) is
# taken as it is.
need_src() {
	if [[ -z ${SRC_TREE:-} ]]; then
		series_tree
	else
		[[ -f $SRC_TREE/Makefile ]] || die "no kernel tree at $SRC_TREE"
	fi
}

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

# What the stages hand to scripts/test: files in RESULTS_DIR, one set a
# stage, which test adds up (it empties the folder first, or takes one of
# its own: --output):
#   NAME.ktap        the cases of a guest run (x86_64, x86_64-debug, arm64,
#                    arm64-64k, debian) or of the mm mutants: flat KTAP
#                    as kselftest's ktap_helpers.sh prints it, "ok N
#                    section: case" (a reason on a "# " line before its
#                    case), ending with "# Totals: pass:P fail:F xfail:0
#                    xpass:0 skip:S error:0" and "# expected skips: N"
#                    (guest/expected-skips)
#   NAME-kunit.json  the KUnit section of that guest run, as kunit.py parse
#                    --json writes it (KernelCI's format; its cases are not
#                    in NAME.ktap)
#   kunit-ARCH.json  scripts/kunit's runs, kunit.py run --json
#   NAME-dmesg.txt   the kernel log that guest run ended with
RESULTS_DIR=${MMAP_BUF_RESULTS:-$CACHE_DIR/results}

# The counts of a kunit.py JSON result $1 (run or parse --json=FILE) as
# "P F S", from its top group's totals, crashed cases counted as failed.
# Fails when the file is missing, not kunit.py's, or holds no case (no
# KTAP found: kunit.py counts that as a parser error only).
kunit_json_counts() {
	python3 - "$1" 2>/dev/null <<'EOF2'
import json, sys
m = json.load(open(sys.argv[1]))["misc"]
if m["tests"] == 0:
    sys.exit(1)
print(m["passed"], m["failed"] + m["crashed"], m["skipped"])
EOF2
}

# The cases of a stage, written to a flat KTAP file by ktap_write.
KTAP_CASES=() KTAP_NAMES=() KTAP_WHYS=()
KTAP_PASS=0 KTAP_FAIL=0 KTAP_SKIP=0 KTAP_XSKIP=0
# ktap_case ok|not ok|skip NAME [REASON]
ktap_case() {
	KTAP_CASES+=("$1") KTAP_NAMES+=("$2") KTAP_WHYS+=("${3:-}")
	case $1 in
	ok) KTAP_PASS=$((KTAP_PASS + 1)) ;;
	skip) KTAP_SKIP=$((KTAP_SKIP + 1)) ;;
	*) KTAP_FAIL=$((KTAP_FAIL + 1)) ;;
	esac
}
# ktap_write FILE: the cases, their totals and the expected skips, printed
# by kselftest's ktap_helpers.sh (of the tree under test, $SRC). It puts
# a case's reason on a line of its own, before the case.
ktap_helpers() { echo "$SRC/tools/testing/selftests/kselftest/ktap_helpers.sh"; }
# need_ktap: fail early, before a stage runs, in a tree without it.
need_ktap() {
	[[ -f $(ktap_helpers) ]] || die "$SRC has no kselftest/ktap_helpers.sh (Linux 6.9 and later)"
}
ktap_write() {
	local helpers i
	helpers=$(ktap_helpers)
	mkdir -p "$(dirname "$1")"
	(
		# Its echo takes the names unquoted: no file name expansion.
		set -f +u
		# shellcheck source=/dev/null
		. "$helpers"
		ktap_print_header
		ktap_set_plan "${#KTAP_CASES[@]}"
		for i in "${!KTAP_CASES[@]}"; do
			[[ -z ${KTAP_WHYS[i]} ]] || ktap_print_msg "${KTAP_NAMES[i]}: ${KTAP_WHYS[i]}"
			case ${KTAP_CASES[i]} in
			ok) ktap_test_pass "${KTAP_NAMES[i]}" ;;
			skip) ktap_test_skip "${KTAP_NAMES[i]}" ;;
			*) ktap_test_fail "${KTAP_NAMES[i]}" ;;
			esac
		done
		ktap_print_totals
		ktap_print_msg "expected skips: $KTAP_XSKIP"
	) >"$1"
}
# The totals of KTAP file $1 as "P F S X" (X: the expected skips); fails
# without a Totals line.
ktap_counts() {
	local p f s x
	read -r p f s < <(sed -nE 's/^# Totals: pass:([0-9]+) fail:([0-9]+) xfail:[0-9]+ xpass:[0-9]+ skip:([0-9]+) error:[0-9]+$/\1 \2 \3/p' "$1") ||
		return 1
	x=$(sed -nE 's/^# expected skips: ([0-9]+)$/\1/p' "$1")
	echo "$p $f $s ${x:-0}"
}

# The kernel log of a guest run ($GUEST_LOG) is divided into sections:
# "=== section NAME START", the section's output, "=== status RC END"
# (guest/run.sh, started by scripts/guest-tests and guest/initramfs/init).
# Print the part of section $1.
section_body() {
	awk -v s="$1" '$1 == "===" && $2 == "section" && $3 == s { on = 1; next }
		on && /^=== (section|status)/ { exit } on' "$GUEST_LOG"
}

# The sections' table, a row a section (count_sections), which the guest
# scripts print at the end of a run: section_row NAME P F S SECONDS, then
# section_table.
SECTION_ROWS=()
section_row() { SECTION_ROWS+=("$(printf '%-22s %7s %7s %7s %9s' "$@")"); }
section_table() {
	printf '%-22s %7s %7s %7s %9s\n' section passed failed skipped seconds
	printf '%s\n' "${SECTION_ROWS[@]}"
}

# Count the cases of each section of $GUEST_LOG, print a line a section,
# and add them to the caller's tp, tf and ts (passed, failed, skipped);
# set bad=1 on a section that failed without a failed case. Each case
# goes to the stage's KTAP (ktap_case), "SECTION: NAME"; the KUnit
# section to $RESULTS_DIR/$5-kunit.json. $1: the kernel tree (its kunit.py
# parses the KUnit section), $2: the guest's timeout, $3: the guest's exit
# status, $4: the sections expected, one a line, $5: the run's name.
count_sections() {
	local tree=$1 tmo=$2 grc=$3 expected=$4 name=$5 sec body status secs parsed
	local p f s prefix cases why line rest json

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
			json=$RESULTS_DIR/$name-kunit.json
			mkdir -p "$RESULTS_DIR"
			rm -f "$json"
			parsed=$(python3 "$tree/tools/testing/kunit/kunit.py" parse --json="$json" <<<"$body" 2>&1 || true)
			grep -E '\[(PASSED|FAILED|SKIPPED|CRASHED)\]' <<<"$parsed" | sed 's/^/  /' || true
			# No case: the section "reported no case" below, its one
			# failed case; the file would count it again.
			read -r p f s < <(kunit_json_counts "$json") || { p=0 f=0 s=0; rm -f "$json"; }
		else
			prefix=
			[[ $sec != *kselftest* ]] || prefix='# '
			cases=$(grep -E "^$prefix(not )?ok [0-9]+" <<<"$body" || true)
			p=$(grep -E "^${prefix}ok " <<<"$cases" | grep -vc '# SKIP' || true)
			s=$(grep -E "^${prefix}ok .*# SKIP" -c <<<"$cases" || true)
			f=$(grep -cE "^${prefix}not ok " <<<"$cases" || true)
			[[ -n $cases ]] && sed 's/^/  /' <<<"$cases"
			while IFS= read -r line; do
				[[ -n $line ]] || continue
				line=${line#"$prefix"}
				rest=$(sed -E 's/^(not )?ok [0-9]+( -)? *//' <<<"$line")
				if [[ $line == not\ ok* ]]; then
					ktap_case "not ok" "$sec: $rest"
				elif [[ $rest == *'# SKIP'* ]]; then
					# "name # SKIP why", or kselftest.h's "# SKIP why".
					why=${rest%%# SKIP*}
					why=${why% }
					ktap_case skip "$sec${why:+: $why}" "$(sed -E 's/.*# SKIP ?//' <<<"$rest")"
					why=
				else
					ktap_case ok "$sec: $rest"
				fi
			done <<<"$cases"
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
			ktap_case "not ok" "$sec" "$why"
			f=$((f + 1)) bad=1
		fi
		printf 'section %s: %d passed, %d failed, %d skipped (status %s, %ss in the guest)\n' \
			"$sec" "$p" "$f" "$s" "${status:-none}" "${secs:-?}"
		section_row "$sec" "$p" "$f" "$s" "${secs:-?}"
		tp=$((tp + p)) tf=$((tf + f)) ts=$((ts + s))
	done < <(awk '$1 == "===" && $2 == "section" { print $3 }' "$GUEST_LOG")

	# A section the guest never started (it died, hung or timed out before)
	# is a failed case of its own, named.
	while read -r sec; do
		grep -qE "^=== section $sec( |\$)" "$GUEST_LOG" && continue
		warn "section $sec never ran (the guest stopped before it: exit status $grc)"
		printf 'section %s: 0 passed, 1 failed, 0 skipped (never ran)\n' "$sec"
		section_row "$sec" 0 1 0 "never ran"
		ktap_case "not ok" "$sec" "never ran: the guest stopped before it (exit status $grc)"
		tf=$((tf + 1)) bad=1
	done <<<"$expected"
}

# What the kernel log guest/run.sh prints at its end must not hold: any
# kernel's reports, and the debug kernel's checkers' too. The one list of
# them: the guest runs fail on these, and scripts/mm-mutants names what
# caught a mutant with them. The mm core's state checks print "BUG: Bad
# page state", "BUG: Bad page map", "BUG: Bad rss-counter state".
KLOG_REPORTS='BUG:|WARNING:|Oops|Unable to handle|general protection|Kernel panic'
KLOG_REPORTS_DEBUG="$KLOG_REPORTS|KASAN|KFENCE|UBSAN|possible circular locking"
KLOG_REPORTS_DEBUG+="|possible recursive locking|inconsistent lock state"
KLOG_REPORTS_DEBUG+="|sleeping function called|unreferenced object"

# The distinct reports of the kernel log on stdin, one a line, each by its
# words up to the first '[' (a WARNING's "at mm/memory.c:123 func+0x../.."),
# without the process, pfn or mm pointer that make each instance differ.
klog_reports() {
	grep -oE "($KLOG_REPORTS)[^[]*" |
		sed -E 's/ +pfn:[0-9a-f]+//; s/ in process .*//; s/(Bad rss-counter state).*/\1/; s/ +$//' |
		sort -u || true
}

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

# Fetch Debian's kernel once, and build mmap_buf.ko for it from $SRC when
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
	key=$({ echo "$DEBIAN_KERNEL"; cat "$SRC"/drivers/misc/mmap_buf/{Makefile,*.[ch]}; } |
		sha256sum | cut -d' ' -f1)
	if [[ ! -f $d/modules/mmap_buf.ko || $(cat "$d/modules/.key" 2>/dev/null) != "$key" ]]; then
		"$PROJECT_DIR/scripts/debian-module" -t "$SRC" -o "$d/modules"
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
# must match a rule and every rule a skip. Prints "expected skips: N" and
# counts them in KTAP_XSKIP for the stage's KTAP (scripts/test fails a
# run on any other skip); sets bad=1 on a mismatch.
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
				KTAP_XSKIP=$((KTAP_XSKIP + 1))
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
	echo "expected skips: $n"
}
