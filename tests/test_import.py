"""Any model in: PyTorch / continual-inference models read into specs.

Every number asserted here is measured on the very module that was imported
(parameters counted by torch, per-clip work by ptflops and fvcore run on it,
state by ``get_state()`` after warm-up, delay and receptive field from
continual-inference, per-step work by forward hooks) or derived by hand in
the test.
"""
import json
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("continual")

import comem  # noqa: E402
from comem.pytorch.importer.check import compare  # noqa: E402
from comem.pytorch.importer.emit import to_toml  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import zoo  # noqa: E402

pytestmark = pytest.mark.validation

# (factory, [input shapes without the batch]) — one square, one not
ZOO = {
    "x3d": (zoo.X3DLike, [(3, 8, 64, 64), (3, 6, 48, 80)]),
    "i3d": (zoo.I3DLike, [(3, 8, 64, 64), (3, 6, 64, 96)]),
    "r2plus1d": (zoo.R2Plus1DLike, [(3, 8, 64, 64), (3, 8, 48, 80)]),
    "c3d": (zoo.C3DLike, [(3, 8, 64, 64), (3, 8, 48, 80)]),
    "slowfast": (zoo.SlowFastLike, [(3, 16, 64, 64), (3, 8, 64, 96)]),
    "stgcn-2d": (zoo.stgcn_like, [(3, 16, 25), (3, 12, 18)]),
    "co-composition": (zoo.continual_composition, [(3, 8, 32, 32), (3, 8, 32, 48)]),
    "tcn-1d": (zoo.continual_tcn, [(6, 16), (6, 11)]),
}
CASES = [(name, shape) for name, (_, shapes) in ZOO.items() for shape in shapes]


@pytest.mark.parametrize("name,shape", CASES, ids=[f"{n}-{'x'.join(map(str, s))}" for n, s in CASES])
def test_imported_spec_matches_the_module(name, shape):
    module = ZOO[name][0]()
    spec = comem.from_module(module, shape)
    rows = compare(module, shape, spec)
    quantities = {q for q, _, _ in rows}
    assert {"params", "per-clip ops (ptflops)"} <= quantities
    if spec.continual and name not in ("x3d", "i3d", "r2plus1d", "c3d"):
        assert {"state floats", "delay (frames)", "receptive field (frames)", "per-step ops (macs)"} <= quantities
    bad = [r for r in rows if r[1] != r[2]]
    assert not bad, bad


def test_continuality_is_read_from_the_structure():
    # SlowFast's lateral connections fork and merge outside any block
    assert not comem.from_module(zoo.SlowFastLike(), (3, 16, 64, 64)).continual
    assert comem.from_module(zoo.X3DLike(), (3, 8, 64, 64)).continual
    assert comem.from_module(zoo.continual_tcn(), (6, 16)).continual


def test_tcn_delay_and_receptive_field_by_hand():
    # conv k1 | residual(conv k3 p1, conv k5 p2): 2+4 frames of lag, aligned |
    # maxpool k2 s1: 1 | conv k3 p0: 2 | residual again: 2+4 | avgpool k6: 5
    r = comem.analyze(comem.from_module(zoo.continual_tcn(), (6, 16)), clip=16, profile="continual-inference")
    assert r.receptive_field == 1 + (2 + 4) + 1 + 2 + (2 + 4) + 5
    assert r.delay == (1 + 2) + 1 + 2 + (1 + 2) + 5   # k-1-p per conv, k-1 per pool


@pytest.mark.parametrize("name", list(ZOO))
def test_toml_round_trip(tmp_path, name):
    """The written TOML, loaded back, is the module: the numbers measured on it."""
    make, shapes = ZOO[name]
    module, shape = make(), shapes[1]
    spec, data = comem.pytorch.importer.spec_from_module(module, shape)
    path = tmp_path / f"{name}.toml"
    path.write_text(to_toml(data, "imported in a test"))
    loaded = comem.load_spec(path)
    rows = compare(module, shape, loaded)
    bad = [r for r in rows if r[1] != r[2]]
    assert not bad, bad
    assert loaded.continual == spec.continual


def test_imported_spec_builds_back_into_continual_inference():
    """The imported I3D spec, built by comem's own builder into a continual
    model at a frame the import never saw, matches comem's numbers."""
    from comem.pytorch.validate import validate

    spec = comem.from_module(zoo.I3DLike(), (3, 8, 64, 64))
    v = validate(spec, clip=6, size=(48, 80), use_ptflops=False, per_layer=False)
    assert not v.failures, [(c.quantity, c.analytic, c.measured) for c in v.failures][:5]


def test_unsupported_modules_listed_in_one_line():
    from torch import nn

    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(3, 8, 3, padding=1)
            self.up = nn.Upsample(scale_factor=2)
            self.tconv = nn.ConvTranspose3d(8, 8, 2)
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(self.tconv(self.up(self.conv(x))).mean((2, 3, 4)))

    with pytest.raises(comem.ComemError) as e:
        comem.from_module(Odd(), (3, 4, 16, 16))
    msg = str(e.value)
    assert "\n" not in msg
    assert "up (Upsample)" in msg and "tconv (ConvTranspose3d)" in msg and "2 unsupported" in msg


def test_bad_inputs_to_from_module():
    from torch import nn

    with pytest.raises(comem.ComemError, match="without the batch"):
        comem.from_module(nn.Conv3d(3, 4, 1), (1, 3, 8, 16, 16, 2))
    with pytest.raises(comem.ComemError, match="torch.nn.Module"):
        comem.from_module(lambda x: x, (3, 8, 16, 16))
    with pytest.raises(comem.ComemError, match="failed"):
        comem.from_module(nn.Conv3d(4, 4, 1), (3, 8, 16, 16))   # wrong channels


# -- the command line ------------------------------------------------------------

MODELS_PY = textwrap.dedent('''
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self, classes=10, width=8):
            super().__init__()
            self.stem = nn.Conv3d(3, width, (3, 3, 3), (1, 2, 2), (1, 1, 1), bias=False)
            self.bn = nn.BatchNorm3d(width)
            self.res = nn.Sequential(nn.Conv3d(width, width, (3, 1, 1), padding=(1, 0, 0)), nn.ReLU())
            self.fc = nn.Linear(width, classes)

        def forward(self, x):
            x = torch.relu(self.bn(self.stem(x)))
            x = x + self.res(x)
            return self.fc(x.mean((2, 3, 4)))

    def make(classes=10, width=8):
        return Tiny(classes, width)

    def broken():
        raise RuntimeError("no weights here")
''')


@pytest.fixture
def models_py(tmp_path):
    path = tmp_path / "models.py"
    path.write_text(MODELS_PY)
    return path


def _tiny_by_hand(classes, width, t, h, w):
    """Params and continual-inference state of Tiny, derived by hand."""
    params = 3 * width * 27 + 2 * width + (width * width * 3 + width) + (width * classes + classes)
    h2, w2 = (h + 2 - 3) // 2 + 1, (w + 2 - 3) // 2 + 1
    # continual-inference 1.2.4 allocates, per module (init_state):
    #   co.Conv3d, k_T = 3:  a (k_T-1, B, C_out, k_T-1, H, W) buffer of partial outputs
    #   co.Delay of the residual's skip, 1 frame (k_T-1-p_T of the branch):  (1, B, C, H, W)
    #   co.AdaptiveAvgPool3d(kernel_size=t):  (t, B, C, 1, 1) pooled frames
    stem = 2 * 2 * width * h2 * w2
    branch = 2 * 2 * width * h2 * w2
    skip = 1 * width * h2 * w2
    pool = t * width
    return params, stem + branch + skip + pool


def test_cli_import_analyses_and_checks(cli, models_py):
    rc, out, err = cli("import", f"{models_py}:make", "--input", "3x8x32x48", "--arg", "classes=5", "--arg",
                       "width=6", "-f", "json", "--profile", "continual-inference")
    assert rc == 0, err
    d = json.loads(out)
    params, state = _tiny_by_hand(5, 6, 8, 32, 48)
    assert d["params"] == params
    assert d["state_floats"] == state
    assert (d["height"], d["width"], d["clip"]) == (32, 48, 8)
    rc, out, err = cli("import", f"{models_py}:make", "--input", "3x8x32x48", "--check")
    assert rc == 0, err
    assert "✗" not in out and out.count("✓") == 3   # params, ptflops and fvcore per clip


def test_cli_import_writes_a_spec(cli, models_py, tmp_path):
    out_path = tmp_path / "tiny.toml"
    rc, out, err = cli("import", f"{models_py}:make", "--input", "3x8x32x32", "--name", "tiny", "-o", out_path)
    assert rc == 0, err
    assert "wrote" in out and out_path.exists()
    text = out_path.read_text()
    assert text.startswith("#") and 'name = "tiny"' in text
    rc, out, err = cli(out_path, "--clip", "16", "--size", "40x56", "-f", "json", "--profile", "continual-inference")
    assert rc == 0, err
    d = json.loads(out)
    assert d["state_floats"] == _tiny_by_hand(10, 8, 16, 40, 56)[1]


@pytest.mark.parametrize("args,needle", [
    (["nowhere.py:make", "--input", "3x8x32x32"], "does not exist"),
    (["{m}", "--input", "3x8x32x32"], "FILE.py:CALLABLE"),
    (["{m}:nothing", "--input", "3x8x32x32"], "no callable 'nothing'"),
    (["{m}:broken", "--input", "3x8x32x32"], "no weights here"),
    (["{m}:make", "--input", "3x8xbig"], "--input"),
    (["{m}:make", "--input", "4x8x32x32"], "check the input shape"),
    (["{m}:make", "--input", "3x8x32x32", "--arg", "classes"], "NAME=VALUE"),
])
def test_cli_import_errors_are_one_line(cli, models_py, args, needle):
    rc, out, err = cli("import", *[a.replace("{m}", str(models_py)) for a in args])
    assert rc == 2, (out, err)
    assert "Traceback" not in err and err.strip().count("\n") == 0, err
    assert needle in err, err


def test_cli_import_unsupported_exit_2(cli, tmp_path):
    path = tmp_path / "odd.py"
    path.write_text(textwrap.dedent('''
        from torch import nn
        def make():
            return nn.Sequential(nn.Conv3d(3, 4, 1), nn.Upsample(scale_factor=2), nn.Conv3d(4, 4, 1),
                                 nn.ConvTranspose3d(4, 4, 2))
    '''))
    rc, out, err = cli("import", f"{path}:make", "--input", "3x4x8x8")
    assert rc == 2
    assert err.strip().count("\n") == 0 and "1 (Upsample)" in err and "3 (ConvTranspose3d)" in err, err


def test_groupnorm_model_has_per_clip_numbers_only():
    from torch import nn

    m = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU(), nn.AdaptiveAvgPool3d(1),
                      nn.Flatten(), nn.Linear(8, 2))
    spec = comem.from_module(m, (3, 4, 16, 16))
    assert not spec.continual and "groupnorm" in spec.continual_note
    rows = compare(m, (3, 4, 16, 16), spec)
    assert all(a == b for _, a, b in rows), rows
    with pytest.raises(comem.ComemError, match="no continual form"):
        comem.analyze(spec, profile="continual-inference")


def test_functional_ops_weigh_zero_under_ptflops_only():
    from comem.accounting.conventions import CONVENTIONS, FUNCTIONAL_FACTOR, weigh

    assert set(FUNCTIONAL_FACTOR) == set(CONVENTIONS)
    work = {"relu@functional": 10, "relu": 5}
    assert weigh(work, "ptflops") == 5          # ptflops' hooks see the module, not the call
    assert weigh(work, "fvcore") == 0           # fvcore has no ReLU handle either way
    assert weigh({"batchnorm@functional": 3}, "fvcore") == 6
    with pytest.raises(comem.ComemError, match="does not weigh"):
        weigh({"bogus@functional": 1}, "macs")


def test_imported_spec_works_everywhere_a_builtin_does():
    """sweep, solve, compare and closed forms on an imported spec agree with
    its point analyses (and the spec is a comem.Spec)."""
    import sympy

    from comem.analyses.compare import compare as compare_models
    from comem.analyses.solve import solve
    from comem.analyses.sweep import sweep
    from comem.analyses.symbolic import closed_forms

    spec = comem.from_module(zoo.X3DLike(), (3, 8, 64, 64))
    assert isinstance(spec, comem.Spec)
    point = comem.analyze(spec, clip=16, size=96)
    sw = sweep(spec, [8, 16], [64, 96])
    assert int(sw.columns["state_floats"][1, 1, 0, 0]) == point.state_floats   # clip 16, size 96
    forms = closed_forms(spec)
    sym = forms["_symbols"]
    assert forms["state_floats"].subs({sym["clip"]: 16, sym["size"]: 96}) == sympy.Integer(point.state_floats)
    best = solve(spec, "size", budget_bytes=point.total_bytes, clip=16)
    assert best["value"] >= 96 and best["cost"] <= point.total_bytes
    reports = compare_models([spec, "x3d-xs"], {"clip": 16, "size": 96})
    assert reports[0][1].state_floats == point.state_floats


def test_cli_import_input_too_small_is_one_line_without_torch_log(cli, tmp_path):
    """The issue's case: an input too small for the model's pools.  torch logs
    the failed shape check (and its traceback) through its logger; none of it
    reaches the terminal — one line naming the module that refused the input."""
    path = tmp_path / "net.py"
    path.write_text(textwrap.dedent('''
        from torch import nn
        def make():
            return nn.Sequential(nn.Conv3d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool3d(2), nn.Conv3d(8, 16, 3, padding=1),
                                 nn.MaxPool3d(2), nn.MaxPool3d(2), nn.MaxPool3d(2), nn.Flatten(), nn.Linear(128, 10))
    '''))
    rc, out, err = cli("import", f"{path}:make", "--input", "3x16x8x8")
    assert rc == 2, (out, err)
    assert err.strip().count("\n") == 0 and "Traceback" not in err and "fake_tensor" not in err, err
    assert "6 (MaxPool3d)" in err and "too small" in err, err
