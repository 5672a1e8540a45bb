"""A reader holding a file that a save by rename replaced (sed -i, vim's
writebackup, `mv tmp policy.json`) or that rm removed keeps the file it
opened, as on a local filesystem: fstat on its descriptor works and gives
the size of the bytes it reads, and the name gives the new file (or none)."""

from __future__ import annotations

import json
import os
import time

import pytest

from write_helpers import *  # noqa: F401,F403

pytestmark = pytest.mark.fresh_mount


@pytest.mark.parametrize("which", ["managed", "role_inline", "trust", "role_tags"])
def test_reader_of_a_replaced_file_keeps_its_size(wmount, fx, which):
    path = wmount.p(fx.rels()[which])
    fd = os.open(path, os.O_RDONLY)
    try:
        before = os.fstat(fd)
        old = os.read(fd, 1 << 20)
        assert len(old) == before.st_size
        doc = json.loads(old)
        if which == "role_tags":
            doc["padding"] = "x" * 200
        else:
            doc["Statement"][0]["Sid"] = "Replaced" + "x" * 300
        new = (json.dumps(doc, indent=2) + "\n").encode()
        tmp = os.path.join(os.path.dirname(path), ".replace.tmp")
        with open(tmp, "wb") as f:
            f.write(new)
        os.replace(tmp, path)
        after = os.fstat(fd)
        again = os.pread(fd, 1 << 20, 0)
        assert again == old, "the open file changed under its reader"
        assert after.st_size == len(old), (
            f"fstat says {after.st_size} bytes, the open file holds {len(old)}")
        assert after.st_ino == before.st_ino
    finally:
        os.close(fd)
    st = os.stat(path)
    assert st.st_ino != before.st_ino, "the name still means the replaced file"
    with open(path, "rb") as f:
        got = f.read()
    assert json.loads(got) == json.loads(new)
    assert st.st_size == len(got)


def test_reader_of_a_removed_file_keeps_it(wmount, wiam, fx):
    path = wmount.p(fx.rels()["role_inline"])
    fd = os.open(path, os.O_RDONLY)
    try:
        old = os.read(fd, 1 << 20)
        os.unlink(path)
        assert not os.path.exists(path)
        st = os.fstat(fd)
        assert os.pread(fd, 1 << 20, 0) == old
        assert st.st_size == len(old)
        time.sleep(3)  # past rm's grace: deleted in IAM
        assert fx.inline not in wiam.list_role_policies(RoleName=fx.role)["PolicyNames"]
        assert os.fstat(fd).st_size == len(old)
        assert os.pread(fd, 1 << 20, 0) == old
    finally:
        os.close(fd)
