"""The output cache (comem/cli/cache.py): a repeated analysis of a built-in
model is replayed byte for byte; nothing else is cached."""
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _comem(args, cache_home, enabled=True, cwd=None):
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_home), COMEM_CACHE="1" if enabled else "0")
    return subprocess.run([sys.executable, "-m", "comem", *args], capture_output=True, text=True, env=env, cwd=cwd)


def test_a_repeated_analysis_is_replayed_and_equals_the_computed_one(tmp_path):
    first = _comem(["x3d-m", "--clip", "8"], tmp_path)
    entries = list((tmp_path / "comem").glob("*.out"))
    assert first.returncode == 0 and len(entries) == 1
    assert entries[0].read_text() == first.stdout
    computed = _comem(["x3d-m", "--clip", "8"], tmp_path, enabled=False)
    assert computed.stdout == first.stdout
    # the second run reads the entry (changed here to prove it), the disabled run does not
    entries[0].write_text("replayed\n")
    assert _comem(["x3d-m", "--clip", "8"], tmp_path).stdout == "replayed\n"
    assert _comem(["x3d-m", "--clip", "8"], tmp_path, enabled=False).stdout == computed.stdout
    # other arguments, another entry
    assert _comem(["x3d-m", "--clip", "9"], tmp_path).stdout != "replayed\n"


@pytest.mark.parametrize("args", [["x3d-m", "--clip", "0"], ["nope"], ["list"], ["x3d-m", "--help"]])
def test_failures_commands_and_help_are_not_cached(tmp_path, args):
    _comem(args, tmp_path)
    assert not list((tmp_path / "comem").glob("*.out")) if (tmp_path / "comem").exists() else True


def test_a_spec_file_is_never_cached(tmp_path):
    spec = Path(__file__).resolve().parent.parent / "specs" / "x3d-s.toml"
    assert _comem([str(spec)], tmp_path).returncode == 0
    assert not (tmp_path / "comem").exists()
