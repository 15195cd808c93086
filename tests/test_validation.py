"""comem's continual-inference profile against instrumented models.

The numbers on the 'measured' side come from real PyTorch models built with
continual-inference 1.2.4 and torch: get_state() after warm-up, forward
hooks, ptflops, the library's delay/receptive_field, and a live-tensor
tracker.  Every check must be an exact equality.
"""
import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("continual")

from comem.pytorch.validate import validate  # noqa: E402

pytestmark = pytest.mark.validation

SMALL = [
    ("x3d-xs", 4, 64), ("x3d-s", 13, 64), ("x3d-m", 16, 64), ("x3d-m", 7, 75), ("x3d-l", 16, 64),
    ("i3d-r50", 8, 64), ("i3d-r50", 6, 96), ("slow-8x8-r50", 8, 64), ("slow-8x8-r50", 3, 33),
]


def _assert_exact(v):
    bad = [(c.group, c.quantity, c.analytic, c.measured) for c in v.failures]
    assert not bad, bad[:10]


@pytest.mark.parametrize("model,clip,size", SMALL)
def test_continual_inference_profile_matches_library(model, clip, size):
    v = validate(model, clip, size)
    _assert_exact(v)
    # the continual-inference accounting every paper-profile report shows is what the library holds
    measured_state = next(c.measured for c in v.checks if (c.group, c.quantity) == ("model", "state floats"))
    import comem

    assert comem.analyze(model, clip=clip, size=size).accountings["continual-inference"]["state_floats"] == \
        measured_state
    quantities = {c.quantity for c in v.checks}
    for q in ("state floats", "delay (frames)", "receptive field (frames)", "params", "per-step ptflops",
              "transient peak of one step (bytes, fp32)", "per-clip ptflops (ptflops itself)"):
        assert q in quantities


@pytest.mark.slow
@pytest.mark.parametrize("model", ["x3d-xs", "x3d-s", "x3d-m", "x3d-l", "i3d-r50", "slow-8x8-r50"])
def test_paper_default_configurations(model):
    v = validate(model)  # the spec's own clip and size (e.g. X3D-M 16x224^2, X3D-L 16x312^2)
    _assert_exact(v)


def test_validator_detects_a_wrong_formula():
    # Eq. (5)'s state is not what the library allocates: the validator must say so.
    v = validate("x3d-xs", 4, 64, knobs={"conv_state": "partial-outputs"})
    assert not v.ok
    assert any(c.quantity == "state floats" for c in v.failures)


def test_validate_cli_pass_and_fail(cli):
    rc, out, err = cli("validate", "x3d-xs", "--clip", "4", "--size", "64", "-f", "json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["ok"] and all(c["ok"] for c in d["checks"])
    rc, out, err = cli("validate", "x3d-xs", "--clip", "4", "--size", "64", "--knob", "pool_state=k-1")
    assert rc == 1 and "FAIL" in out


def test_validate_without_extra_says_how_to_install(tmp_path, cli):
    import os
    import subprocess
    import sys

    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "comem", "validate", "x3d-m"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 2
    assert "pip install 'comem[validate]'" in p.stderr and len(p.stderr.strip().splitlines()) == 1
