#!/bin/sh
# run.sh - the security regression suite (real exploits against the built
# binary; see tests/run-suite.sh).  By hand:
#   SBXRUN=$PWD/src/sbxrun tests/security/run.sh [PYTEST ARGS...]
exec "$(dirname "$0")/../run-suite.sh" tests/security "$@"
