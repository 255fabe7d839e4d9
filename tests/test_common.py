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


def test_a_finished_command_leaves_without_teardown_but_loses_nothing(tmp_path):
    """common.cli ends a finished command with os._exit (skipping 1-3 s of TensorFlow's teardown): its output,
    its atexit handlers and a non-daemon thread still at work all complete; an error still exits 2."""
    import subprocess
    import sys
    from pathlib import Path
    script = tmp_path / "finished_command.py"
    script.write_text(f'''import atexit, sys, threading, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from common.cli import cli_main
from common.errors import UserError

def main(argv):
    if argv[1:] == ["bad"]:
        raise UserError("bad input")
    atexit.register(lambda: open({str(tmp_path / "atexit")!r}, "w").write("ran"))
    for _ in range(1000):
        print("x" * 10, end="")                        # the last of it still in stdout's buffer (not a tty)
    if argv[1:] == ["thread"]:
        def work():
            time.sleep(1)
            open({str(tmp_path / "thread")!r}, "w").write("done")
        threading.Thread(target=work).start()
    return 0

cli_main(main)
''')
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    for mode in ("plain", "thread"):
        r = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0 and r.stdout == "x" * 10000, r.stderr
        assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "done"
    r = subprocess.run([sys.executable, str(script), "bad"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr == "error: bad input\n"
