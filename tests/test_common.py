"""The base package: atomic files keep nothing half-written and get ordinary permissions; output checks."""
from __future__ import annotations

import os

import pytest

from common.errors import UserError
from common.files import atomic_path, atomic_write, check_output_dir


def test_atomic_write_is_complete_or_absent_with_ordinary_permissions(tmp_path):
    target = tmp_path / "a" / "rows.json"
    with atomic_write(target) as f:
        f.write("complete\n")
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_text() == "complete\n" and (target.stat().st_mode & 0o777) == 0o666 & ~umask
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed halfway")
    assert target.read_text() == "complete\n"                         # the old file is untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["rows.json"]   # and no temporary is left


def test_check_output_dir(tmp_path):
    check_output_dir(tmp_path / "new" / "deeper", "--outdir")          # creatable: fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        check_output_dir(tmp_path / "file", "--outdir")
    with pytest.raises(UserError, match="cannot be written"):
        check_output_dir("/proc/self/out", "--outdir")
