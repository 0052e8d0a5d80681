#!/bin/sh
# run.sh - build the libFuzzer harnesses of tests/fuzz and fuzz each one for a
# bounded time.  One automake test (TESTS in Makefile.am) and `make fuzz`.
#
#   tests/fuzz/run.sh [TARGET...]        TARGET: seccomp, caps (default: both)
#
# Environment:
#   FUZZ_SECONDS   seconds per target (default 30); 0 only replays the seeds
#   CLANG          the compiler (default: first of clang, clang-19 ... clang-14)
#   TOP_SRCDIR     source tree (default: two levels up from this script)
#   TOP_BUILDDIR   build tree holding config.h (default: TOP_SRCDIR)
#   FUZZ_CFLAGS / FUZZ_LIBS   override what pkg-config finds for yajl,
#                  libseccomp and libcap
#
# The harnesses are compiled together with the runtime's own sources
# (libocispec/json.c, ocispec.c, src/libsbx/core/error.c, core/utils.c, core/sha256.c,
# security/seccomp.c, security/seccomp_cache.c, security/seccomp_notify.c,
# security/caps.c, core/unix.c, core/procfs.c) using -fsanitize=fuzzer,address,undefined, into
# $TOP_BUILDDIR/tests/fuzz/build.  Seeds: tests/fuzz/corpus/<target>,
# tests/data/valid and tests/data/invalid, read-only; what the fuzzer learns
# goes to build/corpus-<target>, which later runs start from.
#
# Exit status: 0 when no target crashed, 1 on a crash (sanitizer report,
# abort, leak, timeout or out-of-memory: the reproducer is copied to
# $TOP_BUILDDIR/tests/fuzz/crashes/ and its path printed) or a build failure,
# 77 (automake SKIP) when clang or its libFuzzer runtime is missing.
# Replay a reproducer with: tests/fuzz/build/fuzz_<target> FILE
set -eu

TOP_SRCDIR=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
TOP_BUILDDIR=${TOP_BUILDDIR:-$TOP_SRCDIR}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
FUZZ_DIR=$TOP_SRCDIR/tests/fuzz
WORK=$TOP_BUILDDIR/tests/fuzz/build
CRASHES=$TOP_BUILDDIR/tests/fuzz/crashes
TARGETS=${*:-seccomp caps}

say() { echo "fuzz/run.sh: $*" >&2; }
skip() {
	say "$*; skipping"
	exit 77
}

case $FUZZ_SECONDS in
'' | *[!0-9]*) say "FUZZ_SECONDS=$FUZZ_SECONDS is not a number of seconds"; exit 1 ;;
esac
for t in $TARGETS; do
	[ -f "$FUZZ_DIR/fuzz_$t.c" ] || { say "unknown target \`$t\` (have: seccomp caps)"; exit 1; }
done

# ---- a compiler with libFuzzer and the sanitizers

if [ -z "${CLANG:-}" ]; then
	for c in clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14; do
		if command -v "$c" >/dev/null 2>&1; then
			CLANG=$c
			break
		fi
	done
fi
[ -n "${CLANG:-}" ] || skip "no clang (apt-get install clang libclang-rt-14-dev)"
mkdir -p "$WORK"
SAN="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void) d; (void) n; return 0; }\n' \
	>"$WORK/probe.c"
if ! "$CLANG" $SAN -o "$WORK/probe" "$WORK/probe.c" >"$WORK/probe.log" 2>&1; then
	cat "$WORK/probe.log" >&2
	skip "$CLANG cannot link -fsanitize=fuzzer (apt-get install libclang-rt-14-dev)"
fi

[ -f "$TOP_BUILDDIR/config.h" ] || { say "no $TOP_BUILDDIR/config.h: run ./configure first"; exit 1; }

if [ -z "${FUZZ_LIBS:-}" ]; then
	command -v pkg-config >/dev/null 2>&1 || { say "pkg-config missing (or set FUZZ_CFLAGS/FUZZ_LIBS)"; exit 1; }
	FUZZ_CFLAGS=$(pkg-config --cflags libseccomp libcap)
	FUZZ_LIBS=$(pkg-config --libs libseccomp libcap)
	if pkg-config --exists yajl; then
		FUZZ_CFLAGS="$FUZZ_CFLAGS $(pkg-config --cflags yajl)"
		FUZZ_LIBS="$FUZZ_LIBS $(pkg-config --libs yajl)"
	else
		FUZZ_LIBS="$FUZZ_LIBS -lyajl"
	fi
fi

# ---- build (objects are rebuilt only when a source or header changed)

CFLAGS="-g -O1 -fno-omit-frame-pointer -std=gnu11 -Wall -Wextra -Wno-unused-parameter"
CPPFLAGS="-DHAVE_CONFIG_H -I$TOP_BUILDDIR -I$TOP_SRCDIR/libocispec -iquote $TOP_SRCDIR/src/libsbx \
-I$TOP_SRCDIR/src ${FUZZ_CFLAGS:-}"
LIB_SOURCES="libocispec/json.c libocispec/ocispec.c src/libsbx/core/error.c src/libsbx/core/utils.c \
src/libsbx/core/sha256.c src/libsbx/security/seccomp.c src/libsbx/security/seccomp_cache.c src/libsbx/security/seccomp_notify.c \
src/libsbx/security/caps.c src/libsbx/core/unix.c src/libsbx/core/procfs.c"
HEADERS="$TOP_BUILDDIR/config.h $(ls "$TOP_SRCDIR"/libocispec/*.h "$TOP_SRCDIR"/libocispec/spec.def \
	"$TOP_SRCDIR"/src/libsbx/*/*.h "$FUZZ_DIR"/*.h)"

newer() { # newer FILE DEP...: true when FILE is missing or older than a DEP
	_file=$1
	shift
	[ -e "$_file" ] || return 0
	for _dep in "$@"; do
		[ "$_dep" -nt "$_file" ] && return 0
	done
	return 1
}

start=$(date +%s)
objs=
for src in $LIB_SOURCES; do
	obj=$WORK/$(echo "$src" | tr / _ | sed 's/\.c$/.o/')
	objs="$objs $obj"
	if newer "$obj" "$TOP_SRCDIR/$src" $HEADERS "$0"; then
		# the library part gets coverage instrumentation, not libFuzzer's main
		"$CLANG" $CFLAGS $CPPFLAGS -fsanitize=fuzzer-no-link,address,undefined \
			-fno-sanitize-recover=all -c -o "$obj" "$TOP_SRCDIR/$src" ||
			{ say "build of $src failed"; exit 1; }
	fi
done
for t in $TARGETS; do
	bin=$WORK/fuzz_$t
	if newer "$bin" "$FUZZ_DIR/fuzz_$t.c" $objs $HEADERS "$0"; then
		"$CLANG" $CFLAGS $CPPFLAGS $SAN -o "$bin" "$FUZZ_DIR/fuzz_$t.c" $objs $FUZZ_LIBS ||
			{ say "build of fuzz_$t failed"; exit 1; }
	fi
done
say "built with $CLANG in $(($(date +%s) - start)) s"

# ---- fuzz

# Leaks count as crashes; UBSan reports stop the run with a stack.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS UBSAN_OPTIONS

status=0
for t in $TARGETS; do
	corpus=$WORK/corpus-$t
	artifacts=$WORK/artifacts-$t
	rm -rf "$artifacts"
	mkdir -p "$corpus" "$artifacts"
	dict=
	[ -f "$FUZZ_DIR/$t.dict" ] && dict=-dict=$FUZZ_DIR/$t.dict
	if [ "$FUZZ_SECONDS" -eq 0 ]; then
		limit=-runs=0 # (-max_total_time=0 would mean no limit)
		say "replaying the $t seeds"
	else
		limit=-max_total_time=$FUZZ_SECONDS
		say "fuzzing $t for ${FUZZ_SECONDS}s"
	fi
	log=$WORK/fuzz_$t.log
	rc=0
	# -timeout: one input taking 10 s is a hang; -rss_limit_mb: an OOM is a bug
	"$WORK/fuzz_$t" "$limit" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$artifacts/" $dict \
		"$corpus" "$FUZZ_DIR/corpus/$t" "$TOP_SRCDIR/tests/data/valid" \
		"$TOP_SRCDIR/tests/data/invalid" >"$log" 2>&1 || rc=$?
	grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" >&2 || true
	found=$(ls "$artifacts")
	if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
		status=1
		say "$t: the fuzzer stopped with status $rc; its report:"
		sed -n '/^==[0-9]*==ERROR\|runtime error\|^==[0-9]*== ERROR\|deadly signal\|ERROR: libFuzzer/,$p' \
			"$log" | head -n 80 >&2
		if [ -n "$found" ]; then
			mkdir -p "$CRASHES"
			for f in $found; do
				cp "$artifacts/$f" "$CRASHES/$t-$f"
				say "reproducer: $CRASHES/$t-$f (replay: $WORK/fuzz_$t $CRASHES/$t-$f)"
			done
		fi
		say "full log: $log"
	fi
done
exit $status
