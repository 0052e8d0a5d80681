"""Behaviours engines and images rely on (issue 13): HOME from the image's
/etc/passwd, a missing cwd made, sysctls that contradict hostname and
domainname refused, exec'd processes leading their own process group, and
the crun annotations podman uses (run.oci.keep_original_groups,
run.oci.hooks.stdout/stderr, run.oci.seccomp_fail_unknown_syscall).  Each is
observed from inside the container or in the files it writes."""

import json
import os

import pytest

from conftest import describe, sbxrun

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_cmd("run", "create", "delete", "exec"),
              pytest.mark.usefixtures("seccomp_cache_cleanup")]


@pytest.fixture
def bundle(fast_bundle):
    return fast_bundle


def run_out(sbx, b, script, **kw):
    b.args = ["sh", "-c", script]
    cp = sbx("run", "--bundle", b, sbx.new_id(), **kw)
    assert cp.returncode == 0, describe(cp)
    return cp.stdout


def no_home(c):
    c["process"]["env"] = [e for e in c["process"]["env"] if not e.startswith("HOME=")]


PASSWD = "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n"


@pytest.mark.parametrize("uid, env, want", [
    (0, None, "/root"), (1000, None, "/home/u"), (4242, None, "/"), (1000, "HOME=/elsewhere", "/elsewhere"),
])
def test_home_from_the_images_passwd(sbx, bundle, uid, env, want):
    b = bundle()
    (b.rootfs / "etc/passwd").write_text(PASSWD)
    with b.edit() as c:
        no_home(c)
        if env:
            c["process"]["env"].append(env)
        c["process"]["user"] = {"uid": uid, "gid": uid}
    # what execve got: /proc/self/environ of the program itself
    assert run_out(sbx, b, "tr '\\0' '\\n' < /proc/$$/environ | grep ^HOME=").strip() == f"HOME={want}"


def test_home_for_exec(sbx, bundle, tmp_path):
    b = bundle(["sleep", "100"])
    (b.rootfs / "etc/passwd").write_text(PASSWD)
    with b.edit() as c:
        no_home(c)
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    cp = sbx.ok("exec", "--user", "1000:1000", cid, "sh", "-c", "echo $HOME")
    assert cp.stdout.strip() == "/home/u"


def test_home_with_a_hostile_passwd(sbx, bundle):
    """A fifo at /etc/passwd must not hang the runtime: HOME falls back to /."""
    b = bundle()
    (b.rootfs / "etc/passwd").unlink()
    os.mkfifo(b.rootfs / "etc/passwd")
    with b.edit() as c:
        no_home(c)
    assert run_out(sbx, b, "echo $HOME", timeout=20).strip() == "/"


def test_missing_cwd_is_created(sbx, bundle):
    b = bundle()
    with b.edit() as c:
        c["root"]["readonly"] = False
        c["process"]["cwd"] = "/does/not/exist"
    assert run_out(sbx, b, "pwd; stat -c %F /does/not/exist").split() == ["/does/not/exist", "directory"]
    # a read-only root is not written to: the missing cwd is an error
    with b.edit() as c:
        c["root"]["readonly"] = True
        c["process"]["cwd"] = "/not/there"
    cid = sbx.new_id()
    cp = sbx.fail("create", "--bundle", b, cid)
    assert "process.cwd `/not/there`" in cp.stderr, describe(cp)
    assert not (b.rootfs / "not").exists()


def test_missing_cwd_through_a_link_stays_in_the_rootfs(sbx, bundle, tmp_path):
    outside = tmp_path / "outside"
    b = bundle()
    (b.rootfs / "escape").symlink_to(outside)
    with b.edit() as c:
        c["root"]["readonly"] = False
        c["process"]["cwd"] = "/escape/dir"
    run_out(sbx, b, "true")
    assert not outside.exists(), "the cwd was made outside the rootfs"
    assert (b.rootfs / str(outside).lstrip("/") / "dir").is_dir()


@pytest.mark.parametrize("key, field", [("kernel.hostname", "hostname"), ("kernel.domainname", "domainname")])
def test_sysctl_contradicting_names_is_refused(sbx, bundle, key, field):
    b = bundle()
    with b.edit() as c:
        c[field] = "one"
        c["linux"]["sysctl"] = {key: "two"}
    cid = sbx.new_id()
    cp = sbx.fail("create", "--bundle", b, cid)
    assert key in cp.stderr and f"conflicts with {field} `one`" in cp.stderr, describe(cp)
    assert cid not in sbx.list_ids()
    # the same value twice is no conflict
    with b.edit() as c:
        c["linux"]["sysctl"] = {key: "one"}
    assert run_out(sbx, b, f"cat /proc/sys/kernel/{field}").strip() == "one"


def test_sysctl_of_a_namespace_not_owned_is_refused(sbx, bundle):
    b = bundle()
    with b.edit() as c:
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
        c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    cid = sbx.new_id()
    cp = sbx.fail("create", "--bundle", b, cid)
    assert "net.ipv4.ip_forward" in cp.stderr and "network namespace" in cp.stderr, describe(cp)
    assert cid not in sbx.list_ids()


def test_exec_leads_its_own_process_group(sbx, bundle):
    b = bundle(["sleep", "100"])
    cid = sbx.new_id()
    sbx.ok("run", "--detach", "--bundle", b, cid)
    # /proc/PID/stat field 5 is the process group
    cp = sbx.ok("exec", cid, "sh", "-c", "echo $$; cut -d' ' -f5 /proc/$$/stat")
    pid, pgrp = cp.stdout.split()
    assert pid == pgrp, cp.stdout


# ---- podman's annotations


def test_keep_original_groups(sbx, bundle):
    b = bundle()
    with b.edit() as c:
        c["annotations"] = {"run.oci.keep_original_groups": "1"}
        c["process"]["user"] = {"uid": 0, "gid": 0, "additionalGids": [4321]}
    out = run_out(sbx, b, "grep ^Groups: /proc/self/status", extra_groups=[1234, 5678])
    assert sorted(map(int, out.split()[1:])) == [1234, 4321, 5678], out
    # without it: exactly additionalGids
    with b.edit() as c:
        c["annotations"] = {}
    out = run_out(sbx, b, "grep ^Groups: /proc/self/status", extra_groups=[1234, 5678])
    assert out.split()[1:] == ["4321"], out


def test_hooks_stdout_and_stderr(sbx, bundle, tmp_path):
    out, err = tmp_path / "hooks.out", tmp_path / "hooks.err"
    err.write_text("before\n")
    b = bundle()
    hook = {"path": "/bin/sh", "args": ["sh", "-c", "echo out-$0; echo err-$0 >&2"]}
    with b.edit() as c:
        c["annotations"] = {"run.oci.hooks.stdout": str(out), "run.oci.hooks.stderr": str(err)}
        c["hooks"] = {k: [dict(hook, args=hook["args"] + [k])]
                      for k in ("prestart", "createRuntime", "createContainer", "poststart", "poststop")}
    cp = sbx("run", "--bundle", b, sbx.new_id())
    assert cp.returncode == 0, describe(cp)
    kinds = ("prestart", "createRuntime", "createContainer", "poststart", "poststop")
    assert out.read_text().split() == [f"out-{k}" for k in kinds]
    assert err.read_text().split() == ["before"] + [f"err-{k}" for k in kinds]  # appended to
    assert "out-" not in cp.stdout and "err-" not in cp.stderr, describe(cp)
    assert oct(out.stat().st_mode & 0o777) == "0o600"


SECCOMP = {"defaultAction": "SCMP_ACT_ALLOW",
           "syscalls": [{"names": ["no_such_syscall_at_all", "getpid"], "action": "SCMP_ACT_ALLOW"},
                        {"names": ["mknodat"], "action": "SCMP_ACT_ERRNO"}]}


def test_seccomp_fail_unknown_syscall(sbx, bundle):
    b = bundle()
    with b.edit() as c:
        c["linux"]["seccomp"] = SECCOMP
    assert run_out(sbx, b, "echo ran").strip() == "ran"  # skipped by default
    with b.edit() as c:
        c["annotations"] = {"run.oci.seccomp_fail_unknown_syscall": "1"}
    cid = sbx.new_id()
    cp = sbx.fail("create", "--bundle", b, cid)
    assert "no_such_syscall_at_all" in cp.stderr and "linux.seccomp.syscalls[0].names[0]" in cp.stderr, describe(cp)
    assert cid not in sbx.list_ids()


def test_features_lists_the_annotations():
    cp = sbxrun("features")
    assert cp.returncode == 0, describe(cp)
    ann = json.loads(cp.stdout)["annotations"]
    for k in ("run.oci.keep_original_groups", "run.oci.hooks.stdout", "run.oci.hooks.stderr",
              "run.oci.seccomp_fail_unknown_syscall"):
        assert k in ann, ann


# ---- tmpfs mounts and user namespaces


def test_tmpfs_without_mode_takes_the_mount_points_mode(sbx, bundle):
    b = bundle()
    (b.rootfs / "scratch").mkdir()
    os.chmod(b.rootfs / "scratch", 0o1731)
    (b.rootfs / "given").mkdir()
    with b.edit() as c:
        c["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]})
        c["mounts"].append({"destination": "/given", "type": "tmpfs", "source": "tmpfs", "options": ["mode=700"]})
    out = run_out(sbx, b, "stat -c %a /scratch /given; grep ' /scratch ' /proc/self/mountinfo")
    lines = out.splitlines()
    assert lines[:2] == ["1731", "700"], out
    assert "tmpfs" in lines[2], out


def test_tmpcopyup(sbx, bundle):
    b = bundle()
    d = b.rootfs / "etc/app"
    (d / "sub").mkdir(parents=True)
    (d / "conf").write_text("from the image\n")
    (d / "sub/deep").write_text("deep\n")
    (d / "link").symlink_to("/etc/passwd")
    os.chown(d / "conf", 123, 456)
    os.chmod(d / "conf", 0o640)
    os.chmod(d, 0o751)
    with b.edit() as c:
        c["mounts"].append({"destination": "/etc/app", "type": "tmpfs", "source": "tmpfs",
                            "options": ["tmpcopyup", "nosuid"]})
    out = run_out(sbx, b, "cat /etc/app/conf /etc/app/sub/deep; readlink /etc/app/link; "
                          "stat -c '%a %u %g' /etc/app/conf /etc/app; echo new > /etc/app/conf; "
                          "grep ' /etc/app ' /proc/self/mountinfo | grep -c tmpfs")
    assert out.splitlines() == ["from the image", "deep", "/etc/passwd", "640 123 456", "751 0 0", "1"], out
    # the image itself is unchanged
    assert (d / "conf").read_text() == "from the image\n"
    # read-only: copied first, then made read-only
    with b.edit() as c:
        c["mounts"][-1]["options"] = ["tmpcopyup", "ro"]
    out = run_out(sbx, b, "cat /etc/app/conf; echo x > /etc/app/conf 2>/dev/null || echo refused")
    assert out.split() == ["from", "the", "image", "refused"], out


def test_user_namespace_without_mappings_maps_the_caller_to_root(sbx, bundle):
    b = bundle()
    with b.edit() as c:
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"].pop("uidMappings", None)
        c["linux"].pop("gidMappings", None)
        for m in c["mounts"]:  # only gid 0 exists in there
            m["options"] = [o for o in m.get("options", []) if o != "gid=5"]
    out = run_out(sbx, b, "cat /proc/self/uid_map /proc/self/gid_map; id -u")
    maps = [ln.split() for ln in out.splitlines()[:2]]
    assert maps == [["0", str(os.geteuid()), "1"], ["0", str(os.getegid()), "1"]], out
    assert out.splitlines()[2] == "0"
