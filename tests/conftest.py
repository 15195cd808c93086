"""Shared fixtures, and the rules that keep the suite honest.

* Every test that needs PyTorch, continual-inference, ptflops or fvcore
  carries the ``validation`` marker: a module that imports one of them at
  its top is marked whole; a test elsewhere that imports one (or comem's
  PyTorch side) without the marker fails collection.
* The slow full-resolution validations run with ``--slow`` or
  ``COMEM_SLOW=1`` (``.ci/run``), or when ``-m`` selects; by default they
  are deselected.
* ``COMEM_REQUIRE_VALIDATION=1`` (or ``--require-validation``; ``.ci/run``
  sets it) turns every skip of a validation test, and every test module
  skipped at import, into a failure: CI cannot pass with the instrumented
  evidence missing.
"""
import inspect
import io
import os
import re
import subprocess
import sys
import traceback
import types

import pytest

# One intra-op thread for torch (here and in the CLI subprocesses): the instrumented runs are small, and
# a second OpenMP thread spin-waiting beside other processes on a 2-core machine slows them many times over.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: the suite runs the engine, never comem's output cache (tests/test_cli_cache.py tests the cache itself)
os.environ["COMEM_CACHE"] = "0"

#: the libraries of the ``validate`` extra
HEAVY = ("torch", "continual", "ptflops", "fvcore")
_HEAVY_SOURCE = re.compile(
    r"""importorskip\(\s*["'](?:torch|continual|ptflops|fvcore)"""
    r"""|^\s*(?:import|from)\s+(?:torch|continual|ptflops|fvcore)\b"""
    r"""|\bcomem\.(?:pytorch|validate)\.(?:build|builder|measure|runtime|instrument|modules|kit|compare|validate)\b""",
    re.M)


def run_cli(*args, input_text=None, cwd=None, timeout=120):
    """Run the CLI's entry point (``comem.cli.run``, what ``python -m comem``
    runs) on ``args``; returns (exit status, stdout, stderr).  In this process
    by default (a fresh interpreter per call cost the suite minutes); in a
    subprocess under ``COMEM_TEST_SUBPROCESS=1``."""
    if os.environ.get("COMEM_TEST_SUBPROCESS", "") == "1":
        return _run_cli_subprocess(*args, input_text=input_text, cwd=cwd, timeout=timeout)
    return _run_cli_here([str(a) for a in args], input_text, cwd)


def _run_cli_subprocess(*args, input_text=None, cwd=None, timeout=120):
    env = dict(os.environ)
    env.pop("COMEM_DEBUG", None)
    if cwd is not None:  # away from the checkout: the comem under test stays importable
        env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-m", "comem", *map(str, args)], capture_output=True, text=True,
                          env=env, input=input_text, timeout=timeout, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


def _stream():
    """A text stream with a byte buffer underneath, as sys.stdout has."""
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace", newline="")


def _text(stream):
    stream.flush()
    return stream.buffer.getvalue().decode("utf-8", errors="replace").replace("\r\n", "\n")


def _run_cli_here(argv, input_text, cwd):
    from comem.cli import run

    out, err = _stream(), _stream()
    stdin = io.TextIOWrapper(io.BytesIO((input_text or "").encode()), encoding="utf-8")
    saved = sys.stdin, sys.stdout, sys.stderr, sys.argv, os.getcwd(), os.environ.pop("COMEM_DEBUG", None)
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        sys.stdin, sys.stdout, sys.stderr, sys.argv = stdin, out, err, ["comem", *argv]
        try:
            run(argv)
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:                    # sys.exit("message"): Python prints it and exits 1
                print(exc.code, file=err)
                code = 1
        except Exception:           # an uncaught error: Python prints the traceback and exits 1
            traceback.print_exc(file=err)
            code = 1
    finally:
        sys.stdin, sys.stdout, sys.stderr, sys.argv = saved[:4]
        os.chdir(saved[4])
        if saved[5] is not None:
            os.environ["COMEM_DEBUG"] = saved[5]
    return code, _text(out), _text(err)


@pytest.fixture
def cli():
    return run_cli


def pytest_addoption(parser):
    parser.addoption("--require-validation", action="store_true", default=False,
                     help="fail, not skip, a validation test that cannot run (also COMEM_REQUIRE_VALIDATION=1)")
    parser.addoption("--slow", action="store_true", default=False,
                     help="also run the slow full-resolution validations (also COMEM_SLOW=1; or select with -m)")


def _run_slow(config) -> bool:
    return config.getoption("--slow") or os.environ.get("COMEM_SLOW", "") == "1" or bool(config.getoption("-m"))


def _require(config) -> bool:
    return config.getoption("--require-validation") or os.environ.get("COMEM_REQUIRE_VALIDATION", "") == "1"


def _imports_heavy(module) -> bool:
    return any(isinstance(v, types.ModuleType) and v.__name__.split(".")[0] in HEAVY for v in vars(module).values())


def pytest_collection_modifyitems(config, items):
    if not _run_slow(config):   # fast by default: the slow validations run with --slow / COMEM_SLOW=1 (CI)
        slow = [item for item in items if item.get_closest_marker("slow")]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [item for item in items if not item.get_closest_marker("slow")]
    unmarked = []
    for item in items:
        if item.get_closest_marker("validation"):
            continue
        module = getattr(item, "module", None)
        if module is not None and _imports_heavy(module):
            item.add_marker(pytest.mark.validation)   # the whole module needs the extra
            continue
        fn = getattr(item, "function", None)
        try:
            src = inspect.getsource(fn) if fn is not None else ""
        except (OSError, TypeError):
            src = ""
        if _HEAVY_SOURCE.search(src):
            unmarked.append(item.nodeid)
    if unmarked:
        raise pytest.UsageError("tests that need the validate extra (torch, continual-inference, ptflops, fvcore) "
                                "must carry @pytest.mark.validation: " + ", ".join(unmarked))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and item.get_closest_marker("validation") and _require(item.config) \
            and not hasattr(rep, "wasxfail"):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"validation test skipped under COMEM_REQUIRE_VALIDATION=1: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and isinstance(collector, pytest.Module) and _require(collector.config):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = f"{collector.nodeid} skipped at import under COMEM_REQUIRE_VALIDATION=1: {reason}"
