"""Beyond continual-inference's CNNs: MoViNet's stream buffers.

The expected state is MoViNet's own definition, transcribed here from
tensorflow/models official/projects/movinet/modeling/movinet.py
(``Movinet._get_initial_state_shapes`` for conv_type '3d', se_type '3d', no
positional encoding) and its BLOCK_SPECS — independent of comem's specs and
formulas.
"""
import json
import math

import pytest

import comem

from movinet_tf import BLOCK_SPECS  # noqa: E402  (tensorflow/models' table, transcribed)


def movinet_state_shapes(model_id, height, width, batch=1):
    """``_get_initial_state_shapes``: name -> shape (B, T, H, W, C)."""
    stem, blocks, project = BLOCK_SPECS[model_id]
    states, downsamples = {}, 0

    def divide(n, k):
        return math.ceil(n / 2 ** k)

    filters, kernel, _ = stem
    if kernel[0] > 1:  # none of A0-A2: 1x3x3
        states["state_stem_stream_buffer"] = (batch, kernel[0] - 1, divide(height, 0), divide(width, 0), filters)
    downsamples += 1
    for b, (_, expands, kernels, strides) in enumerate(blocks):
        for i, (e, k, s) in enumerate(zip(expands, kernels, strides)):
            prefix = f"state_block{b}_layer{i}"
            if k[0] > 1:
                states[f"{prefix}_stream_buffer"] = (batch, k[0] - 1, divide(height, downsamples),
                                                     divide(width, downsamples), e)
            states[f"{prefix}_pool_buffer"] = (batch, 1, 1, 1, e)      # + an int32 frame count
            if tuple(s[1:3]) != (1, 1):
                downsamples += 1                                        # 3D kernels: after the buffer
    states["state_head_pool_buffer"] = (batch, 1, 1, 1, project)
    return states


@pytest.mark.parametrize("model_id,size", [("a0", 172), ("a1", 172), ("a2", 224), ("a0", 171), ("a2", (200, 355))])
def test_stream_state_equals_movinet_definition(model_id, size):
    h, w = (size, size) if isinstance(size, int) else size
    expected = movinet_state_shapes(model_id, h, w)
    r = comem.analyze(f"movinet-{model_id}", size=size, profile="stream-buffer")
    total = sum(math.prod(shape) for shape in expected.values())
    assert r.state_floats == total
    # layer by layer: each depthwise conv's buffer and each SE pool's running sum
    by_layer = {}
    for row in r.rows:
        if row.state:
            by_layer[row.path] = row.state * row.multiplicity
    for name, shape in expected.items():
        parts = name.split("_")
        if name.startswith("state_head"):
            path = "head.pool"
        else:
            path = f"{parts[1]}.{parts[2]}." + ("dw" if "stream" in name else "se.pool")
        assert by_layer.get(path) == math.prod(shape), (name, path, by_layer.get(path), shape)
    assert len(by_layer) == len(expected)


def test_stream_buffer_profile_is_causal_with_no_delay():
    r = comem.analyze("movinet-a0", profile="stream-buffer")
    assert r.delay == 0
    # regular clip under causal padding keeps every frame: the head pools 50 frames
    block4 = next(s for s in r.stages if s["stage"] == "block4")
    assert block4["output"] == [104, 50, 6, 6]          # 50 frames in, 50 out (172 -> 86 -> 43 -> 22 -> 11 -> 6)
    # every conv/linear MAC of the clip is some frame's: the clip costs 50 steps' MACs (the classifier runs once)
    w_step, w_clip = r.work_step, r.work_clip
    assert w_clip["conv_mac"] == 50 * w_step["conv_mac"]
    x3d = {p: comem.analyze("x3d-m", profile=p) for p in ("paper", "continual-inference", "stream-buffer")}
    assert x3d["stream-buffer"].delay == 0 < x3d["paper"].delay
    # conv_1's 5x1x1 temporal conv caches 4 input frames of its 24x112x112 input (its input = its output here)
    conv_t = next(row for row in x3d["stream-buffer"].rows if row.path == "conv_1.conv_t")
    assert conv_t.state == 4 * 24 * 112 * 112


def test_three_conventions_side_by_side(cli):
    rc, out, err = cli("compare", "x3d-m:profile=paper", "x3d-m:profile=continual-inference",
                       "x3d-m:profile=stream-buffer")
    assert rc == 0, err
    assert "4,771,632" in out and "11,695,104" in out


def test_each_profile_expands_one_item_into_the_three_conventions(cli):
    rc, out, err = cli("compare", "x3d-m", "--each-profile", "-f", "json")
    assert rc == 0, err
    d = json.loads(out)
    assert sorted(d) == ["x3d-m:profile=continual-inference", "x3d-m:profile=paper", "x3d-m:profile=stream-buffer"]
    assert d["x3d-m:profile=paper"]["state_floats"] == 4_771_632   # Appendix A, Table 4
