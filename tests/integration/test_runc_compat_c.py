"""Differential tests against runc (issue 13): the environment of a hook
given no `env`, a failing poststart hook, and the owner of the process's
stdio for a non-root process.user.  Skipped where runc is not installed."""

import json
import os
import subprocess
import time

import pytest

from conftest import add_bind, describe, pid_alive, wait_for

pytestmark = [pytest.mark.needs_root, pytest.mark.usefixtures("seccomp_cache_cleanup")]

from test_runc_compat import runc  # noqa: E402,F401  (a fixture)


def both(runc, sbx):
    return (("runc", runc), ("sbxrun", sbx))


def _env_of(path):
    """The variables of a /proc/PID/environ dump, without PWD (which the
    shell sets from its cwd: runc's create runs in the bundle)."""
    return sorted(e for e in path.read_text().split("\0") if e and not e.startswith("PWD="))


def test_hook_without_env_gets_the_runtime_environment_like_runc(runc, sbx, bundle, tmp_path):
    seen = {}
    for name, call in both(runc, sbx):
        out = tmp_path / f"env-{name}"
        b = bundle(["true"], name=f"henv-{name}")
        with b.edit() as c:
            c["hooks"] = {"createRuntime": [{"path": "/bin/sh",
                                             "args": ["sh", "-c", f"cat /proc/self/environ > {out}"]}]}
        cid = f"henv-{name}"
        cp = call("create", "--bundle", b, cid, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                                   "SBX_PROBE": "from-caller"})
        assert cp.returncode == 0, describe(cp)
        call("delete", "--force", cid)
        seen[name] = _env_of(out)
    assert "PATH=/usr/sbin:/usr/bin:/sbin:/bin" in seen["runc"] and "SBX_PROBE=from-caller" in seen["runc"]
    assert seen["sbxrun"] == seen["runc"]


def test_start_container_hook_without_env_like_runc(runc, sbx, bundle, tmp_path):
    """A startContainer hook runs in the container: given no `env`, it gets
    what runc gives it (not the caller's variables)."""
    seen = {}
    for name, call in both(runc, sbx):
        d = tmp_path / f"out-{name}"
        d.mkdir()
        b = bundle(["true"], name=f"hsenv-{name}")
        add_bind(b, d, "/out")
        with b.edit() as c:
            c["process"]["env"] = ["PATH=/bin:/sbin", "FROM_PROCESS=1"]
            c["hooks"] = {"startContainer": [{"path": "/bin/sh",
                                              "args": ["sh", "-c", "cat /proc/self/environ > /out/env"]}]}
        cid = f"hsenv-{name}"
        cp = call("run", "--bundle", b, cid, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                                "SBX_PROBE": "from-caller"})
        assert cp.returncode == 0, describe(cp)
        seen[name] = _env_of(d / "env")
    assert seen["sbxrun"] == seen["runc"]

