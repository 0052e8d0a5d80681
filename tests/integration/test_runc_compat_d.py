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



# --------------------------------------------------------------- stdio owner

REOPEN = ("stat -L -c %u /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2 > /proc/self/fd/1; "
          "echo via-reopen > /proc/self/fd/1; echo err-reopen > /proc/self/fd/2; "
          "read line < /proc/self/fd/0 && echo \"in:$line\"")


def _as_user(b, uid, script=REOPEN):
    with b.edit() as c:
        c["process"]["args"] = ["sh", "-c", script]
        c["process"]["user"] = {"uid": uid, "gid": uid}


def _piped(argv, text="hello\n"):
    """Run ARGV with fresh pipes as stdin, stdout and stderr."""
    cp = subprocess.run([str(a) for a in argv], input=text, capture_output=True, text=True, timeout=60)
    return cp


def _in_pipes(call_argv, b, cid, mode):
    """[the run, or the create whose pipes the container got (its output
    read once start has run it), start]"""
    if mode == "run":
        return [_piped([*call_argv, "run", "--bundle", b, cid])]
    p = subprocess.Popen([str(a) for a in [*call_argv, "create", "--bundle", b, cid]], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        p.wait(timeout=60)
        start = subprocess.run([str(a) for a in [*call_argv, "start", cid]], capture_output=True, text=True,
                               timeout=60)
        out, err = p.communicate("hello\n", timeout=60)
    finally:
        p.kill()
    return [subprocess.CompletedProcess(p.args, p.returncode, out, err), start]


@pytest.mark.parametrize("mode", ["run", "create"])
def test_stdio_pipes_belong_to_the_user_like_runc(runc, sbx, bundle, tmp_path, mode):
    """process.user 1000 with pipes as stdio: it can reopen
    /proc/self/fd/0..2 (the pipes are its own), under runc and sbxrun."""
    from test_runc_compat import RUNC
    seen = {}
    for name, argv in (("runc", [RUNC, "--root", tmp_path / "runc-root"]), ("sbxrun", sbx.argv())):
        b = bundle(name=f"stdio-{name}-{mode}")
        _as_user(b, 1000)
        cid = f"stdio-{name}-{mode}"
        cps = _in_pipes(argv, b, cid, mode)
        for cp in cps:
            assert cp.returncode == 0, describe(cp)
        if mode == "create":
            (runc if name == "runc" else sbx)("delete", "--force", cid)
        seen[name] = (cps[0].stdout.split(), cps[0].stderr.split())
    assert seen["sbxrun"] == seen["runc"]
    assert seen["sbxrun"] == (["1000", "1000", "1000", "via-reopen", "in:hello"], ["err-reopen"])


def test_stdio_pipes_belong_to_the_user_in_a_user_namespace(sbx, public_bundle):
    """In a user namespace (0 -> 100000): the pipes go to the host uid that
    process.user.uid 1000 maps to, 101000, which the process sees as 1000."""
    b = public_bundle()
    _as_user(b, 1000)
    with b.edit() as c:
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cp = _piped(sbx.argv("run", "--bundle", b, sbx.new_id()))
    assert cp.returncode == 0, describe(cp)
    assert (cp.stdout.split(), cp.stderr.split()) == (["1000", "1000", "1000", "via-reopen", "in:hello"],
                                                       ["err-reopen"])


def test_stdio_files_are_not_chowned(sbx, bundle, tmp_path):
    """A regular file as stdout stays the caller's (runc would chown it):
    the process cannot reopen it, and the host file keeps its owner."""
    out = tmp_path / "out"
    b = bundle(["sh", "-c", "echo direct; echo reopened > /proc/self/fd/1"])
    _as_user(b, 1000, "echo direct; (echo reopened > /proc/self/fd/1) 2>/dev/null || echo refused")
    with open(out, "w") as f:
        cp = subprocess.run(sbx.argv("run", "--bundle", b, sbx.new_id()), stdout=f, stdin=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert out.read_text().split() == ["direct", "refused"]
    assert out.stat().st_uid == 0


def test_exec_stdio_pipes_belong_to_the_user(sbx, bundle):
    """exec --user 1000 with pipes as stdio: the exec'd process can reopen
    them (runc's exec gives its stdio to the user as well)."""
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", bundle(["sleep", "600"]), cid)
    cp = _piped(sbx.argv("exec", "--user", "1000:1000", cid, "sh", "-c", REOPEN))
    sbx.ok("delete", "--force", cid)
    assert cp.returncode == 0, describe(cp)
    assert (cp.stdout.split(), cp.stderr.split()) == (["1000", "1000", "1000", "via-reopen", "in:hello"],
                                                       ["err-reopen"])


def _propagation(mountinfo, dest):
    """The propagation tags of mount point DEST ("shared", "master", or
    nothing: private) in a mountinfo text."""
    for line in mountinfo.splitlines():
        f = line.split()
        if len(f) > 6 and f[4] == dest:
            return sorted(t.split(":")[0] for t in f[6:f.index("-")])
    raise AssertionError(f"{dest} not mounted:\n{mountinfo}")


def _propagation_bundle(make, src, name, userns):
    b = make(["cat", "/proc/self/mountinfo"], **({"name": name} if name else {}))
    with b.edit() as c:
        for d, opt in (("/sh", "rshared"), ("/sl", "rslave"), ("/pr", "rprivate")):
            (b.rootfs / d[1:]).mkdir(exist_ok=True)
            c["mounts"].append({"destination": d, "type": "bind", "source": str(src), "options": ["rbind", opt]})
        if userns:
            c["linux"]["namespaces"].append({"type": "user"})
            c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
            c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    return b


# what runc 1.1.5 gives for a shared host source (its default rslave keeps
# the link): the mounts' own settings on top
PROPAGATION = {"/sh": ["master", "shared"], "/sl": ["master"], "/pr": []}


@pytest.fixture
def shared_src(tmp_path):
    src = tmp_path / "shared-src"
    src.mkdir(mode=0o755)
    subprocess.run(["mount", "--bind", str(src), str(src)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(src)], check=True)
        yield src
    finally:
        subprocess.run(["umount", "-l", str(src)], check=False)


def test_mount_propagation_like_runc(runc, sbx, bundle, shared_src):
    """A mount's rshared/rslave/rprivate is what the container gets, also
    under the default rootfsPropagation (the mounts' own settings used to
    be lost under rprivate, which breaks Kubernetes' HostToContainer and
    Bidirectional volumes): the source is a shared mount of the host."""
    seen = {}
    for name, call in both(runc, sbx):
        cp = call("run", "--bundle", _propagation_bundle(bundle, shared_src, f"prop-{name}", False), f"prop-{name}")
        assert cp.returncode == 0, describe(cp)
        seen[name] = {d: _propagation(cp.stdout, d) for d in PROPAGATION}
    assert seen["sbxrun"] == seen["runc"] == PROPAGATION, seen


def test_mount_propagation_in_a_user_namespace(sbx, public_bundle, shared_src):
    """The same inside a user namespace (runc cannot run this bundle's
    layout there).  rslave still receives the host's mounts; an rshared
    mount is a peer group of the container's own (a less privileged mount
    namespace never propagates back to the host)."""
    cp = sbx("run", "--bundle", _propagation_bundle(public_bundle, shared_src, None, True), sbx.new_id())
    assert cp.returncode == 0, describe(cp)
    got = {d: _propagation(cp.stdout, d) for d in PROPAGATION}
    assert "shared" in got["/sh"] and got["/sl"] == ["master"] and got["/pr"] == [], got
