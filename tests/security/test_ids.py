"""Container IDs cannot name a path outside the state root."""

import os

import pytest

from conftest import describe


@pytest.mark.needs_root
@pytest.mark.parametrize("cid", ["../escape", "..", "a/../../escape", "/tmp/escape", ".hidden", "a/b"])
def test_id_traversal_refused(sbx, bundle, tmp_path, cid):
    b = bundle(["true"])
    # The primitive: a naive runtime joins root and ID into a path.
    target = os.path.normpath(os.path.join(str(sbx.root), cid))
    cp = sbx("create", "--bundle", b, cid)
    assert cp.returncode != 0, describe(cp)
    assert "id" in cp.stderr.lower(), describe(cp)
    if not target.startswith(str(sbx.root) + "/"):
        assert not os.path.exists(os.path.join(target, "status.json")), target
    assert not (tmp_path / "escape").exists()
    for cmd in (["state", cid], ["delete", "-f", cid], ["kill", cid, "KILL"]):
        cp = sbx(*cmd)
        assert cp.returncode != 0, describe(cp)
