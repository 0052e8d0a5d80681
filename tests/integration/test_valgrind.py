"""Memory errors and definite leaks under valgrind (memcheck) for the
commands that do not start containers, including their error paths."""

import re
import shutil

import pytest

from conftest import SBXRUN, describe, run_cmd

VALGRIND = shutil.which("valgrind")
ERROR_EXIT = 99

CASES = {
    "version": ["--version"],
    "help": ["--help"],
    "spec-help": ["spec", "--help"],
    "spec": ["spec", "--bundle", "{tmp}"],
    "spec-rootless": ["spec", "--rootless", "--bundle", "{tmp}"],
    "spec-exists": ["spec", "--bundle", "{tmp}", "--bundle", "{tmp}"],
    "features": ["features"],
    "unknown-command": ["nosuchcommand"],
    "unknown-option": ["spec", "--nosuchoption"],
    "log-json-error": ["--log", "{tmp}/log", "--log-format", "json", "nosuchcommand"],
}


@pytest.mark.parametrize("name", CASES)
def test_memcheck(name, tmp_path):
    if not VALGRIND:
        pytest.skip("valgrind is not installed (apt-get install valgrind)")
    args = [a.replace("{tmp}", str(tmp_path)) for a in CASES[name]]
    if name == "spec-exists":
        (tmp_path / "config.json").write_text("{}\n")
    cp = run_cmd([VALGRIND, "-q", "--tool=memcheck", f"--error-exitcode={ERROR_EXIT}",
                  "--leak-check=full", "--errors-for-leak-kinds=definite",
                  "--show-leak-kinds=definite", SBXRUN, *args], timeout=120)
    assert cp.returncode != ERROR_EXIT, describe(cp)
    assert not re.search(r"^==\d+==", cp.stderr, re.M), describe(cp)
