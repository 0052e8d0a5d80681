#!/bin/sh
# run.sh - the security regression suite (real exploits against the built
# binary) as one automake test.  By hand:
#   SBXRUN=$PWD/src/sbxrun tests/security/run.sh [PYTEST ARGS...]
# Exit status is pytest's, or 77 (automake SKIP) without pytest.
set -eu

TOP_SRCDIR=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
SBXRUN=${SBXRUN:-$TOP_SRCDIR/src/sbxrun}
PYTHON=${PYTHON:-/usr/bin/python3}
export TOP_SRCDIR SBXRUN
export PYTHONDONTWRITEBYTECODE=1

if ! "$PYTHON" -c 'import pytest' 2>/dev/null; then
	echo "run.sh: $PYTHON has no pytest (apt-get install python3-pytest); skipping" >&2
	exit 77
fi
if [ ! -x "$SBXRUN" ]; then
	echo "run.sh: SBXRUN=$SBXRUN is not an executable; build first" >&2
	exit 1
fi

cd "$TOP_SRCDIR"
exec "$PYTHON" -m pytest -q -ra -p no:cacheprovider tests/security "$@"
