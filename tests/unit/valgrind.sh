#!/bin/sh
# LOG_COMPILER for `make check`.  Unit test programs (compiled, named test_*)
# run under valgrind, where any memory error or leak fails the test;
# everything else (tests/integration/run.sh, *_live programs, python checks)
# is executed as it is.
#   SBX_NO_VALGRIND=1       run the unit tests without valgrind
#   SBX_VALGRIND_SKIP=LIST  names of test programs valgrind cannot run
#                           faithfully, e.g. because it lacks seccomp(2)
#   VALGRIND_OPTS=...       extra options, read by valgrind itself
if [ $# -lt 1 ]; then
  echo "usage: $0 TEST [ARG...]" >&2
  exit 99
fi

name=${1##*/}
magic=$(od -An -c -N4 "$1" 2>/dev/null | tr -d ' \n')
case $name in
  test_*) ;;
  *.py) [ -x "$1" ] || exec /usr/bin/python3 "$@"; exec "$@" ;;
  *.sh) [ -x "$1" ] || exec /bin/sh "$@"; exec "$@" ;;
  *) exec "$@" ;;
esac
if [ "$magic" != "177ELF" ] || [ -n "$SBX_NO_VALGRIND" ]; then
  exec "$@"
fi
for skip in $SBX_VALGRIND_SKIP; do
  if [ "$skip" = "$name" ]; then
    echo "valgrind.sh: $name runs without valgrind (listed in SBX_VALGRIND_SKIP)"
    exec "$@"
  fi
done
if ! command -v valgrind >/dev/null 2>&1; then
  echo "valgrind.sh: valgrind not installed, running $name without it" >&2
  exec "$@"
fi
exec valgrind --quiet --error-exitcode=1 --leak-check=full \
  --show-leak-kinds=definite,indirect,possible \
  --errors-for-leak-kinds=definite,indirect,possible \
  --num-callers=30 "$@"
