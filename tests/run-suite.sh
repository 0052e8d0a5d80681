#!/bin/sh
# run-suite.sh SUITE [PYTEST ARGS...] - one pytest suite of the tree
# (tests/integration, tests/security) as one automake test; the suites'
# run.sh call it with their own directory.  make check sets SBXRUN
# (absolute path of the built binary) and TOP_SRCDIR; by hand:
#   SBXRUN=$PWD/src/sbxrun tests/integration/run.sh [PYTEST ARGS...]
# e.g. `tests/integration/run.sh -k spec -x`.  Exit status is pytest's (0 when
# everything passed), or 77 (automake SKIP) when pytest is not installed.
set -eu

TOP_SRCDIR=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
SBXRUN=${SBXRUN:-$TOP_SRCDIR/src/sbxrun}
# Debian's interpreter: the python3 first on PATH may be a pyenv without pytest.
PYTHON=${PYTHON:-/usr/bin/python3}
export TOP_SRCDIR SBXRUN
# The source tree is read-only under `make distcheck`: no bytecode, no cache.
export PYTHONDONTWRITEBYTECODE=1

suite=$1
shift
if ! "$PYTHON" -c 'import pytest' 2>/dev/null; then
	echo "run-suite.sh: $PYTHON has no pytest (apt-get install python3-pytest); skipping" >&2
	exit 77
fi
if [ ! -x "$SBXRUN" ]; then
	echo "run-suite.sh: SBXRUN=$SBXRUN is not an executable; build first" >&2
	exit 1
fi

cd "$TOP_SRCDIR"
exec "$PYTHON" -m pytest -q -ra -p no:cacheprovider "$suite" "$@"
