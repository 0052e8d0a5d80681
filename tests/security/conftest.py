"""Fixtures of the security regression suite.

The suite shares the integration suite's fixtures and helpers (sbx, bundle,
cgroup_parent, busybox_rootfs, run_cmd, ...): tests/integration/conftest.py
is loaded here under another module name and re-exported, so test modules
write `from conftest import ...` as in tests/integration.

Added here:
  exploit(name)  compiles tests/security/exploits/NAME.c statically (once per
                 session) and returns the path of the binary, to be copied
                 into a rootfs.
  host_marker    a path on the host that an escaped exploit would create;
                 tests assert it never appears.

Every test first shows that its attack is meaningful (the primitive works
against a deliberately weakened setup, or the thing attacked is reachable),
then that sbxrun stops it.
"""

import hashlib
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

_shared = Path(__file__).resolve().parents[1] / "integration" / "conftest.py"
_spec = importlib.util.spec_from_file_location("sbx_integration_conftest", _shared)
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
globals().update({k: v for k, v in vars(_mod).items() if not k.startswith("__")})

EXPLOITS = Path(__file__).resolve().parent / "exploits"


@pytest.fixture(scope="session")
def exploit(tmp_path_factory):
    """exploit("name") -> Path of tests/security/exploits/name.c, built static."""
    built = {}

    def build(name, *extra):
        if name not in built:
            cc = shutil.which("gcc") or shutil.which("cc")
            if cc is None:
                pytest.skip("no C compiler to build the exploits")
            out = tmp_path_factory.mktemp("exploit") / name
            cp = subprocess.run([cc, "-static", "-O1", "-o", str(out), str(EXPLOITS / f"{name}.c"), *extra],
                                capture_output=True, text=True)
            if cp.returncode != 0:
                pytest.fail(f"building exploit {name}: {cp.stderr}")
            built[name] = out
        return built[name]

    return build


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def host_marker(tmp_path):
    """A host path that only an escape could create (checked absent)."""
    p = tmp_path / "ESCAPED"
    yield p
    assert not p.exists(), f"the exploit reached the host: {p} exists"


@pytest.fixture
def sbxrun_copy(tmp_path):
    """A private copy of the sbxrun binary, so an exploit that succeeds
    against a weakened setup cannot damage the binary under test."""
    dst = tmp_path / "sbxrun-copy"
    shutil.copy2(_mod.SBXRUN, dst)
    os.chmod(dst, 0o755)
    return dst
