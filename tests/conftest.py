import os
import subprocess
import sys

import pytest


def run_cli(*args, input_text=None):
    """Run the installed CLI in a subprocess; returns (rc, stdout, stderr)."""
    env = dict(os.environ)
    env.pop("COMEM_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "comem", *map(str, args)], capture_output=True, text=True,
                          env=env, input=input_text, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def cli():
    return run_cli
