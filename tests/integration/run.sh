#!/bin/sh
# run.sh - the integration suite (see tests/run-suite.sh).  By hand:
#   SBXRUN=$PWD/src/sbxrun tests/integration/run.sh [PYTEST ARGS...]
exec "$(dirname "$0")/../run-suite.sh" tests/integration "$@"
