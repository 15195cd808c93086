"""Any frame shape: non-square frames through the API, the CLI, sweeps and
the instrumented models.  The numbers are derived by hand in the tests
(conv output sizes, Eq. (5) of the paper) or measured."""
import csv
import io
import json

import pytest

import comem


def _out(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def test_x3d_m_conv_t_state_at_224x398(cli):
    rc, out, err = cli("x3d-m", "--size", "224x398", "-f", "json")
    assert rc == 0, err
    d = json.loads(out)
    assert (d["height"], d["width"]) == (224, 398)
    # conv_1's 1x3x3 stride-2 pad-1 spatial conv, then the 5x1x1 temporal conv keeps
    # (k_T - 1) x c x H' x W' partial outputs (Eq. 5), c = 24
    h, w = _out(224, 3, 2, 1), _out(398, 3, 2, 1)
    assert (h, w) == (112, 199)
    conv_t = next(layer for layer in d["layers"] if layer["path"] == "conv_1.conv_t")
    assert conv_t["state_floats"] == (5 - 1) * 24 * h * w
    assert conv_t["output"] == [24, 16, h, w]
    # the last stage's map: four more stride-2 stages
    for _ in range(4):
        h, w = _out(h, 3, 2, 1), _out(w, 3, 2, 1)
    res5 = next(s for s in d["stages"] if s["stage"] == "res5")
    assert res5["output"] == [192, 16, h, w] == [192, 16, 7, 13]


def test_square_and_non_square_agree_when_equal(cli):
    a = comem.analyze("x3d-m", size=160).to_dict()
    b = comem.analyze("x3d-m", size=(160, 160)).to_dict()
    c = comem.analyze("x3d-m", size="160x160").to_dict()
    for key in ("state_floats", "transient_floats", "ops_per_step", "ops_per_clip"):
        assert a[key] == b[key] == c[key]


def test_width_only_changes_spatial_terms():
    # every layer's state and work is linear in n_W when the width stays a
    # multiple of the total spatial stride (32): doubling W doubles every map
    r1 = comem.analyze("x3d-m", size=(160, 192), profile="paper", knobs={"errata": "consistent"})
    r2 = comem.analyze("x3d-m", size=(160, 384), profile="paper", knobs={"errata": "consistent"})
    pool = (16 - 1) * 432   # the pool's state holds pooled (1x1) frames, independent of W
    assert r2.state_floats - pool == 2 * (r1.state_floats - pool)


def test_sweep_with_hxw_items(cli):
    rc, out, err = cli("sweep", "x3d-m", "-S", "224x398,160", "-T", "16", "-f", "csv")
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["height"], r["width"]) for r in rows] == [("224", "398"), ("160", "160")]
    one = comem.analyze("x3d-m", clip=16, size=(224, 398)).to_dict()
    assert int(rows[0]["state_floats"]) == one["state_floats"]


@pytest.mark.parametrize("args,needle", [
    (["x3d-m", "--size", "224x"], "size"),
    (["x3d-m", "--size", "0x224"], "size"),
    (["x3d-m", "--size", "224x398x3"], "size"),
    (["solve", "x3d-m", "--size", "224x398", "--for", "size", "--budget", "10MB"], "drop --size"),
])
def test_bad_frame_sizes(cli, args, needle):
    rc, out, err = cli(*args)
    assert rc == 2, (out, err)
    assert err.strip().count("\n") == 0 and needle in err and "Traceback" not in err


@pytest.mark.validation
@pytest.mark.parametrize("model,clip,size", [("x3d-m", 7, (48, 80)), ("i3d-r50", 6, (64, 96)),
                                             ("slow-8x8-r50", 3, (33, 65))])
def test_non_square_against_instrumented_models(model, clip, size):
    pytest.importorskip("torch")
    pytest.importorskip("continual")
    from comem.pytorch.validate import validate

    v = validate(model, clip=clip, size=size, use_ptflops=True, per_layer=True)
    assert not v.failures, [(c.group, c.quantity, c.analytic, c.measured) for c in v.failures][:8]
