"""`comem import` takes every option of `comem MODEL`: one option group
(comem/cli/options.py ``analysis_options``) declares them for both commands."""
import json

import click
import pytest

MODEL_PY = '''
import torch
from torch import nn


def make(width=4, classes=5):
    return nn.Sequential(
        nn.Conv3d(3, width, 3, padding=1, bias=False), nn.BatchNorm3d(width), nn.ReLU(),
        nn.Conv3d(width, width, (3, 1, 1), padding=(1, 0, 0)), nn.ReLU(),
        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(width, classes))
'''


def _options(command):
    return {p.name: (tuple(p.opts), tuple(p.secondary_opts), type(p.type).__name__, p.type.name, p.default,
                     p.multiple, p.help) for p in command.params if isinstance(p, click.Option)}


def test_import_declares_every_option_of_analyze_identically():
    from comem.cli.analyze import analyze_cmd
    from comem.cli.import_model import import_cmd

    analyze, imported = _options(analyze_cmd), _options(import_cmd)
    for name in ("top", "depth", "runtime", "device", "view", "fmt", "clip", "size", "profile", "knobs", "params",
                 "dtype", "batch", "convention"):
        assert name in analyze
    missing = {name: decl for name, decl in analyze.items() if imported.get(name) != decl}
    assert not missing, f"comem import lacks or differs in: {sorted(missing)}"


@pytest.mark.validation
def test_import_with_top_depth_and_runtime_prints_what_analyze_prints(cli, tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "net.py"
    path.write_text(MODEL_PY)
    spec = tmp_path / "net.toml"
    rc, out, err = cli("import", f"{path}:make", "--input", "3x8x16x16", "--name", "net", "-o", spec)
    assert rc == 0, err
    options = ["--clip", "12", "--size", "20", "--profile", "continual-inference", "--runtime", "pytorch",
               "--device", "cpu", "-f", "json"]
    rc, out, err = cli("import", f"{path}:make", "--input", "3x8x16x16", "--name", "net", *options)
    assert rc == 0, err
    imported = json.loads(out)
    rc, out, err = cli(spec, *options)
    assert rc == 0, err
    assert imported == json.loads(out)
    assert imported["runtime"]["device"] == "cpu" and imported["peak_allocated_bytes"]["regular"] > 0
    # params against the module itself
    ns = {}
    exec(compile(MODEL_PY, "net.py", "exec"), ns)
    assert imported["params"] == sum(p.numel() for p in ns["make"]().parameters() if p.requires_grad)
    # --top and --depth shape the table as they do for `comem MODEL`
    for extra in (["--view", "layers", "--top", "2"], ["--depth", "1"]):
        rc, out_import, err = cli("import", f"{path}:make", "--input", "3x8x16x16", "--name", "net", *extra)
        assert rc == 0, err
        rc, out_spec, err = cli(spec, *extra)
        assert rc == 0, err
        assert out_import == out_spec
    rc, out, err = cli("import", f"{path}:make", "--input", "3x8x16x16", "--view", "layers", "--top", "2",
                       "-f", "json")
    assert rc == 0, err
    assert len(json.loads(out)["top_layers"]) == 2
    del torch
