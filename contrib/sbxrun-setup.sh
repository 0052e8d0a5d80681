#!/bin/bash
# sbxrun-setup.sh - prepare a Debian 12 machine for sbxrun and either run a
# demo container or the whole test suite.
#
#   sudo ./contrib/sbxrun-setup.sh demo   install deps, build, run a busybox container
#   sudo ./contrib/sbxrun-setup.sh test   install deps, build with -Werror, make check
#                                         (+ make distcheck), exit non-zero on failure
#
# Both modes are idempotent and may be started from any directory.  The apt
# step is skipped when every package is already installed, so repeat runs only
# rebuild what changed.
#
# Environment:
#   SBXRUN_DISTCHECK=0     test mode: skip `make distcheck`
#   SBXRUN_DEMO_DIR=DIR    demo mode: bundle location (default /var/tmp/sbxrun-demo)
#   JOBS=N                 parallel make jobs (default: number of CPUs)
set -Eeuo pipefail

usage() {
	sed -n '2,16s/^# \{0,1\}//p' "$0"
}

MODE=${1:-}
case "$MODE" in
demo | test) ;;
-h | --help | help)
	usage
	exit 0
	;;
*)
	usage >&2
	exit 2
	;;
esac

TOP=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$TOP"

JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
START=$(date +%s)
LOGDIR=$(mktemp -d /tmp/sbxrun-setup.XXXXXX)
trap 'rm -rf "$LOGDIR"' EXIT

say() { printf '\n==> %s\n' "$*"; }
die() {
	printf '\n==> sbxrun-setup %s: FAILED: %s\n' "$MODE" "$*" >&2
	exit 1
}
trap 'die "unexpected error at line $LINENO (exit status $?)"' ERR
elapsed() { echo "$(($(date +%s) - START))s"; }

# Run a command with its output in a log file; show the log only on failure.
quietly() {
	local log="$LOGDIR/$1"
	shift
	if ! "$@" >"$log" 2>&1; then
		cat "$log" >&2
		die "command failed: $*"
	fi
}

[ "$(id -u)" -eq 0 ] || die "run this as root (e.g. sudo $0 $MODE): it installs packages and starts containers"

# ---- packages -------------------------------------------------------------

BUILD_DEPS=(autoconf automake libtool pkg-config gcc make m4
	libyajl-dev libseccomp-dev libcap-dev libmnl-dev libnftnl-dev libsystemd-dev
	go-md2man busybox-static)
DEMO_DEPS=(jq iproute2 nftables)
TEST_DEPS=(uidmap libcmocka-dev valgrind python3 python3-pytest runc crun podman criu slirp4netns dbus-user-session
	iproute2 nftables jq time util-linux xz-utils strace
	libc6-dev clang libclang-rt-14-dev golang-github-opencontainers-specs-dev
	qemu-system-x86 linux-image-amd64 systemd containerd)

install_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "packages: all ${#} already installed, skipping apt"
		return
	fi
	command -v apt-get >/dev/null || die "apt-get not found: this script targets Debian 12"
	say "packages: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	quietly apt-update.log apt-get update -qq
	quietly apt-install.log apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# ---- build ----------------------------------------------------------------

# Build in the source tree.  configure only runs when there is no Makefile or,
# with --exact, when the tree was configured with other flags; the generated
# Makefile re-runs autoconf/automake/config.status by itself when their inputs
# change.
build() {
	local exact=no want have=""
	if [ "${1:-}" = --exact ]; then
		exact=yes
		shift
	fi
	want="$*"
	if [ ! -x configure ] || [ ! -f Makefile.in ]; then
		say "autoreconf -fi"
		quietly autoreconf.log autoreconf -fi
	fi
	if [ -x config.status ] && [ -f Makefile ]; then
		have=$(./config.status --config | tr -d "'")
		[ "$exact" = yes ] || want=$have
	fi
	if [ ! -f Makefile ] || [ "$have" != "$want" ]; then
		say "./configure $want"
		quietly configure.log ./configure "$@"
	fi
	say "make -j$JOBS"
	if ! make -j"$JOBS" >"$LOGDIR/make.log" 2>&1; then
		cat "$LOGDIR/make.log" >&2
		die "build failed"
	fi
	grep -E 'warning:|error:' "$LOGDIR/make.log" || true
	./src/sbxrun --version
}

# ---- demo -----------------------------------------------------------------

SBX="$TOP/src/sbxrun"
DEMO_DIR=${SBXRUN_DEMO_DIR:-/var/tmp/sbxrun-demo}
DEMO_ID=sbxrun-demo

# A minimal root filesystem: Debian's static busybox plus one symlink per applet.
make_busybox_rootfs() {
	local rootfs=$1 a
	mkdir -p "$rootfs"/{bin,etc,proc,sys,dev,tmp,root,run,var/tmp,usr}
	chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
	cp /bin/busybox "$rootfs/bin/busybox"
	for a in $("$rootfs/bin/busybox" --list); do
		[ -e "$rootfs/bin/$a" ] || ln -s busybox "$rootfs/bin/$a"
	done
	ln -sfn bin "$rootfs/sbin"
	ln -sfn ../bin "$rootfs/usr/bin"
	ln -sfn ../bin "$rootfs/usr/sbin"
	cat >"$rootfs/etc/passwd" <<-'EOF'
		root:x:0:0:root:/root:/bin/sh
		nobody:x:65534:65534:nobody:/nonexistent:/bin/false
	EOF
	cat >"$rootfs/etc/group" <<-'EOF'
		root:x:0:
		nogroup:x:65534:
	EOF
	echo "$DEMO_ID" >"$rootfs/etc/hostname"
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$rootfs/etc/hosts"
	: >"$rootfs/etc/resolv.conf"
}

# What the demo container runs (/bin/hello in the rootfs): who and where it
# is, and what it can see.
demo_hello() {
	cat <<-'EOF'
		#!/bin/sh
		echo "hello from sbxrun"
		echo "uname:    $(uname -srm)"
		echo "id:       $(id)"
		echo "hostname: $(hostname)"
		echo "network:  $(ls /sys/class/net | tr '\n' ' ')(a network namespace of its own)"
		echo "rootfs:   read-only: $(touch /x 2>/dev/null && echo no || echo yes); $(wc -l </proc/mounts) mounts in its own mount namespace"
		echo "processes (a pid namespace of its own: this script is pid 1):"
		ps -o pid,user,comm
		exit 0
	EOF
}

# Remove what an interrupted demo may have left: the container (its state and
# cgroups) and nothing else.
demo_cleanup() {
	if [ -x "$SBX" ] && "$SBX" state "$DEMO_ID" >/dev/null 2>&1; then
		"$SBX" delete --force "$DEMO_ID" >/dev/null 2>&1 || true
	fi
}

# The container's cgroup directories, in every hierarchy.
demo_cgroups() {
	find /sys/fs/cgroup -type d -name "$DEMO_ID" -prune 2>/dev/null || true
}

demo_wait_status() {
	local want=$1 _
	for _ in $(seq 100); do
		[ "$("$SBX" state "$DEMO_ID" 2>/dev/null | jq -r .status)" = "$want" ] && return 0
		sleep 0.05
	done
	die "container $DEMO_ID did not reach status $want"
}

# Print a command line, then run it.
demo_show() {
	printf '$ sbxrun %s\n' "$*"
	"$SBX" "$@"
}

# `sbxrun state`, reduced to the fields named by the jq filter $1.
demo_state() {
	printf '$ sbxrun state %s | jq -c %s\n' "$DEMO_ID" "'$1'"
	"$SBX" state "$DEMO_ID" | jq -c "$1"
}

demo() {
	install_packages "${BUILD_DEPS[@]}" "${DEMO_DEPS[@]}"
	build
	trap 'demo_cleanup; rm -rf "$LOGDIR"' EXIT

	say "bundle: $DEMO_DIR"
	demo_cleanup
	rm -rf "$DEMO_DIR"
	mkdir -p "$DEMO_DIR"
	make_busybox_rootfs "$DEMO_DIR/rootfs"
	demo_hello >"$DEMO_DIR/rootfs/bin/hello"
	chmod 755 "$DEMO_DIR/rootfs/bin/hello"
	"$SBX" spec --bundle "$DEMO_DIR"
	jq --arg host "$DEMO_ID" '
		.process.terminal = false
		| .process.args = ["/bin/hello"]
		| .hostname = $host' \
		"$DEMO_DIR/config.json" >"$DEMO_DIR/config.json.new"
	mv "$DEMO_DIR/config.json.new" "$DEMO_DIR/config.json"
	jq '.process.args = ["sh", "-c", "exit 3"]' "$DEMO_DIR/config.json" >"$DEMO_DIR/config-exit3.json"
	jq '.process.args = ["sleep", "600"]' "$DEMO_DIR/config.json" >"$DEMO_DIR/config-sleep.json"
	echo "rootfs: busybox $("$DEMO_DIR/rootfs/bin/busybox" --help 2>&1 |
		sed -n '1s/^BusyBox \(v[^ ]*\).*/\1/p'), $(find "$DEMO_DIR/rootfs/bin" -type l | wc -l) applets"
	jq -r '"config: \(.linux.namespaces | map(.type) | join(", ")) namespaces, " +
		"\(.mounts | length) mounts, \(.process.capabilities.bounding | length) capabilities, " +
		"seccomp \(if .linux.seccomp then "on" else "off" end), cgroup <own cgroup>/sbxrun/'"$DEMO_ID"'"' \
		"$DEMO_DIR/config.json"

	local rc=0
	say "sbxrun run --bundle $DEMO_DIR $DEMO_ID"
	"$SBX" run --bundle "$DEMO_DIR" "$DEMO_ID" </dev/null || rc=$?
	[ "$rc" -eq 0 ] || die "sbxrun run exited with status $rc"

	say "exit status: run exits with the container's (128+N when killed by signal N)"
	"$SBX" run --bundle "$DEMO_DIR" --config "$DEMO_DIR/config-exit3.json" "$DEMO_ID" </dev/null || rc=$?
	echo "container: sh -c 'exit 3'  ->  sbxrun run exited with $rc"
	[ "$rc" -eq 3 ] || die "expected exit status 3, got $rc"

	say "life cycle: create, start, state, exec, ps, kill, delete"
	demo_show create --bundle "$DEMO_DIR" --config "$DEMO_DIR/config-sleep.json" "$DEMO_ID" </dev/null
	demo_state '{id, status, pid}'
	demo_show start "$DEMO_ID"
	demo_state '{id, status, pid}'
	demo_show exec "$DEMO_ID" ps -o pid,args
	demo_show ps "$DEMO_ID"
	local cgroups
	cgroups=$(demo_cgroups)
	[ -n "$cgroups" ] || die "no cgroup named $DEMO_ID under /sys/fs/cgroup"
	echo "cgroups: $(echo "$cgroups" | wc -l) directories, e.g. $(echo "$cgroups" | head -n 1)"
	demo_show kill "$DEMO_ID" KILL
	demo_wait_status stopped
	demo_state '{id, status}'
	demo_show delete "$DEMO_ID"

	# Nothing may be left: no state, no cgroup.
	! "$SBX" state "$DEMO_ID" >/dev/null 2>&1 || die "container $DEMO_ID still exists after delete"
	local left
	left=$(echo "$cgroups" | while read -r d; do [ ! -e "$d" ] || echo "$d"; done)
	[ -z "$left" ] || die "cgroups left after delete: $left"
	echo "cleaned up: the container's state and its $(echo "$cgroups" | wc -l) cgroup directories are gone"

	say "demo finished in $(elapsed); the bundle stays in $DEMO_DIR: sudo $SBX run --bundle $DEMO_DIR demo2"
}

# ---- test -----------------------------------------------------------------

# The integration suite may exit 77 (automake SKIP) when pytest is missing; in
# this script that would hide the suite, so require a real PASS.
check_integration_ran() {
	local trs=tests/integration/run.sh.trs
	[ -f "$trs" ] || die "integration suite did not run ($trs missing)"
	grep -q '^:test-result: PASS' "$trs" || die "integration suite result: $(grep '^:test-result' "$trs")"
}

# The rootless tests run as this user. Made here, before make check starts
# the host suite and the guests side by side: a guest whose read-only view of
# the host's /etc was taken while the host suite was adding the user saw the
# group but not the passwd entry.
ensure_test_user() {
	local u=sbxtest f
	if ! getent passwd "$u" >/dev/null; then
		if getent group "$u" >/dev/null; then
			useradd -m -g "$u" "$u"
		else
			useradd -m -U "$u"
		fi
	fi
	for f in /etc/subuid /etc/subgid; do
		grep -q "^$u:" "$f" 2>/dev/null || echo "$u:300000:65536" >>"$f"
	done
}

test_mode() {
	local t0 check_s dist_s=-
	install_packages "${BUILD_DEPS[@]}" "${TEST_DEPS[@]}"
	build --exact --enable-werror
	ensure_test_user

	say "make check"
	t0=$(date +%s)
	if ! make -j"$JOBS" check; then
		[ ! -f test-suite.log ] || cat test-suite.log
		die "make check failed"
	fi
	check_s=$(($(date +%s) - t0))
	echo "---- tests/integration/run.sh.log"
	cat tests/integration/run.sh.log
	check_integration_ran

	if [ "${SBXRUN_DISTCHECK:-1}" != 0 ]; then
		say "make distcheck"
		# EXTRA_DIST ships tests/integration whole: keep the results of the
		# check above (and any bytecode) out of the tarball, or the VPATH
		# build finds them in the source tree and takes them as up to date.
		rm -rf tests/integration/*.log tests/integration/*.trs \
			tests/integration/__pycache__ tests/bench/__pycache__
		t0=$(date +%s)
		if ! make -j"$JOBS" distcheck >"$LOGDIR/distcheck.log" 2>&1; then
			tail -n 200 "$LOGDIR/distcheck.log" >&2
			die "make distcheck failed"
		fi
		grep -E '^(PASS|SKIP|FAIL|XFAIL|XPASS|ERROR):|^# [A-Z]+:|archives ready|^sbxrun-.*\.tar' \
			"$LOGDIR/distcheck.log" || true
		dist_s=$(($(date +%s) - t0))
	fi

	say "RESULT: PASS  (make check ${check_s}s, make distcheck ${dist_s}s, total $(elapsed))"
}

case "$MODE" in
demo) demo ;;
test) test_mode ;;
esac
