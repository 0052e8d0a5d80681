#!/bin/sh
# check_layers.sh - contrib/check-layers.py passes on the tree, and fails on
# a copy with an include cycle between folders and on a copy where a folder
# includes another's *_internal.h (so the check can fail at all).
set -eu

TOP_SRCDIR=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
PYTHON=${PYTHON:-/usr/bin/python3}
check="$TOP_SRCDIR/contrib/check-layers.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$PYTHON" "$check" "$TOP_SRCDIR/src/libsbx"

# expect_fail NAME FILE LINE MESSAGE: add LINE to FILE of a fresh copy; the
# check must exit 1 and say MESSAGE.
expect_fail () {
	rm -rf "$tmp/libsbx"
	cp -R "$TOP_SRCDIR/src/libsbx" "$tmp/libsbx"
	echo "$3" >> "$tmp/libsbx/$2"
	if "$PYTHON" "$check" "$tmp/libsbx" 2> "$tmp/err"; then
		echo "check_layers.sh: $1: check-layers.py passed" >&2
		exit 1
	fi
	if ! grep -q "$4" "$tmp/err"; then
		echo "check_layers.sh: $1: no \`$4\` in:" >&2
		cat "$tmp/err" >&2
		exit 1
	fi
	echo "ok: $1: $(head -n 1 "$tmp/err")"
}

expect_fail cycle core/utils.c '#include "container/container.h"' 'include cycle: .*core'
expect_fail private state/state.c '#include "cgroup/cgroup_internal.h"' 'state/state.c includes the private cgroup/cgroup_internal.h'
