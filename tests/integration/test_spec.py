"""`sbxrun spec` and `sbxrun features`: the documents the runtime writes."""

import json
import os
import shutil
import tempfile

import pytest

from conftest import describe, run_cmd, sbxrun, SBXRUN

NOBODY = 65534


def spec_version():
    for line in sbxrun("--version").stdout.splitlines():
        if line.startswith("spec: "):
            return line.split()[1]
    pytest.fail("no `spec:` line in --version")


def vtuple(v):
    return tuple(int(x) for x in v.split("-")[0].split(".")[:3])


def make_spec(directory, *args, **kw):
    cp = sbxrun("spec", *args, **kw)
    assert cp.returncode == 0, describe(cp)
    return json.loads((directory / "config.json").read_text())


def ns_types(config):
    return [n["type"] for n in config["linux"]["namespaces"]]


def test_spec_defaults(tmp_path):
    c = make_spec(tmp_path, cwd=tmp_path)  # no --bundle: the current directory
    assert c["ociVersion"] == spec_version()
    assert c["root"]["path"] == "rootfs"
    p = c["process"]
    assert p["args"] == ["sh"]
    assert p["terminal"] is True
    assert p["cwd"] == "/"
    assert p["user"]["uid"] == 0 and p["user"]["gid"] == 0
    assert any(e.startswith("PATH=") for e in p["env"])
    assert "CAP_SYS_ADMIN" not in p["capabilities"]["bounding"]
    assert "CAP_KILL" in p["capabilities"]["bounding"]
    assert isinstance(c.get("hostname"), str)

    types = ns_types(c)
    assert len(types) == len(set(types)), types
    assert {"pid", "network", "ipc", "uts", "mount"} <= set(types)
    assert "user" not in types

    dests = [m["destination"] for m in c["mounts"]]
    for d in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"):
        assert d in dests
    assert dests.index("/dev") < dests.index("/dev/pts")
    for m in c["mounts"]:
        assert m["destination"].startswith("/")
        assert "type" in m and "source" in m

    for path in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"):
        assert path in c["linux"]["maskedPaths"]
    for path in ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"):
        assert path in c["linux"]["readonlyPaths"]


def test_spec_output_ends_with_single_newline(tmp_path):
    make_spec(tmp_path, "--bundle", tmp_path)
    assert (tmp_path / "config.json").read_text().endswith("}\n")


@pytest.mark.parametrize("flag", ["--bundle", "-b"])
def test_spec_bundle_option(tmp_path, flag):
    make_spec(tmp_path, flag, tmp_path)
    assert oct((tmp_path / "config.json").stat().st_mode & 0o777) == oct(0o644)


def test_spec_refuses_to_overwrite(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text("keep me\n")
    cp = sbxrun("spec", "--bundle", tmp_path)
    assert cp.returncode != 0
    assert "config.json" in cp.stderr and "exists" in cp.stderr, cp.stderr
    assert cfg.read_text() == "keep me\n"


def test_spec_refuses_to_overwrite_dangling_symlink(tmp_path):
    (tmp_path / "config.json").symlink_to(tmp_path / "elsewhere.json")
    assert sbxrun("spec", "--bundle", tmp_path).returncode != 0
    assert not (tmp_path / "elsewhere.json").exists()


def test_spec_missing_bundle_directory(tmp_path):
    cp = sbxrun("spec", "--bundle", tmp_path / "nonexistent")
    assert cp.returncode != 0
    assert "nonexistent" in cp.stderr


def test_spec_rejects_extra_arguments(tmp_path):
    cp = sbxrun("spec", "--bundle", tmp_path, "extra")
    assert cp.returncode != 0
    assert not (tmp_path / "config.json").exists()


def check_rootless(c, uid, gid):
    types = ns_types(c)
    assert "user" in types
    assert "network" not in types
    assert c["linux"]["uidMappings"] == [{"containerID": 0, "hostID": uid, "size": 1}]
    assert c["linux"]["gidMappings"] == [{"containerID": 0, "hostID": gid, "size": 1}]


def test_spec_rootless(tmp_path):
    c = make_spec(tmp_path, "--rootless", "--bundle", tmp_path)
    check_rootless(c, os.getuid(), os.getgid())
    # everything but the namespaces and mappings matches the default
    d = tmp_path / "default"
    d.mkdir()
    default = make_spec(d, "--bundle", d)
    assert c["process"]["args"] == default["process"]["args"]
    assert c["root"] == default["root"]


def test_spec_rootless_as_unprivileged_user():
    """Run as `nobody`: the mappings name that user's uid and gid."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to switch to an unprivileged user")
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    if run_cmd([*as_nobody, SBXRUN, "--version"]).returncode != 0:
        pytest.skip(f"{SBXRUN} is not executable by uid {NOBODY}")
    top = tempfile.mkdtemp(prefix=f"sbxrun-rootless-{os.getpid()}-")
    try:
        os.chmod(top, 0o755)
        os.chown(top, NOBODY, NOBODY)
        cp = run_cmd([*as_nobody, SBXRUN, "spec", "--rootless", "--bundle", top])
        assert cp.returncode == 0, describe(cp)
        with open(os.path.join(top, "config.json")) as f:
            check_rootless(json.load(f), NOBODY, NOBODY)
    finally:
        shutil.rmtree(top)


def test_features():
    cp = sbxrun("features")
    assert cp.returncode == 0, describe(cp)
    f = json.loads(cp.stdout)
    assert vtuple(f["ociVersionMin"]) <= vtuple(f["ociVersionMax"])
    assert f["ociVersionMin"].startswith("1.")
    assert f["ociVersionMax"] == spec_version()
    for key in ("hooks", "mountOptions"):
        if key in f:
            assert isinstance(f[key], list)
    if "linux" in f:
        assert isinstance(f["linux"], dict)


def test_features_rejects_arguments():
    assert sbxrun("features", "extra").returncode != 0


def test_spec_is_accepted_by_features_range(tmp_path):
    c = make_spec(tmp_path, "--bundle", tmp_path)
    f = json.loads(sbxrun("features").stdout)
    assert vtuple(f["ociVersionMin"]) <= vtuple(c["ociVersion"]) <= vtuple(f["ociVersionMax"])

