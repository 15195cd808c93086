"""The state manifest (`comem state`, ``Report.state_tensors``) against hand
derivations, the paper's Table 4, and tensorflow/models' MoViNet state
names (reproduced below from ``official/projects/movinet/modeling/
movinet.py``).  The ONNX and ``get_state()`` checks are in
tests/test_onnx_export.py."""
import csv
import io
import json
import math
import shutil
import subprocess

import pytest

import comem

CONTINUAL = ["x3d-xs", "x3d-s", "x3d-m", "x3d-l", "i3d-r50", "slow-8x8-r50", "st-gcn", "st-gcn-star", "agcn",
             "agcn-star", "s-tr", "s-tr-star", "cooadtr-b1", "cooadtr-b2", "movinet-a0-stream",
             "movinet-a1-stream", "movinet-a2-stream"]


def _state(model, profile, **kw):
    r = comem.analyze(model, profile=profile, **kw)
    return r, r.state_tensors


# -- totals ----------------------------------------------------------------------

@pytest.mark.parametrize("model", CONTINUAL)
def test_float_tensors_sum_to_the_reports_state_in_every_profile(model):
    for profile in ("continual-inference", "paper", "stream-buffer"):
        r = comem.analyze(model, profile=profile, knobs={"errata": "consistent"})
        m = r.state_tensors
        assert sum(t.elements for t in m.tensors if t.is_float) == r.state_floats, (model, profile)
        # indices and counters are integers, never floats
        assert all(t.dtype in ("int64", "int32") for t in m.tensors if not t.is_float)
        assert m.totals()["bytes"] == r.state_bytes + sum(t.bytes for t in m.tensors if not t.is_float)


def test_batch_grows_only_the_batch_axis():
    one = comem.analyze("x3d-xs", clip=4, size=32, profile="continual-inference").state_tensors
    three = comem.analyze("x3d-xs", clip=4, size=32, profile="continual-inference", batch=3).state_tensors
    assert [t.name for t in one.tensors] == [t.name for t in three.tensors]
    for a, b in zip(one.tensors, three.tensors):
        if a.batch_axis is None:
            assert b.shape == a.shape == ()
            continue
        expect = list(a.shape)
        expect[a.batch_axis] *= 3
        assert list(b.shape) == expect and b.elements == 3 * a.elements


# -- continual-inference: hand derivations of the library's buffers ------------------

def test_x3d_xs_library_tensors_by_hand():
    # X3D-XS at 4 x 32^2: the stem's 1x3x3 stride-2 conv gives 24 x 16 x 16; conv_t is a depthwise 5x1x1
    # conv, padding 2.  co.Conv3d.init_state: the (k-1)-frame partial output (B, 24, 4, 16, 16) repeated
    # k-1 = 4 times -> (4, B, 24, 4, 16, 16); state_index 0; stride_index = stride - (k-1) - 1 + padding = -2.
    m = comem.analyze("x3d-xs", clip=4, size=32, profile="continual-inference").state_tensors
    t0, t1, t2 = m.tensors[:3]
    assert (t0.name, t0.output_name, t0.path, t0.shape, t0.dtype, t0.init) == \
        ("s0", "ns0", "conv_1.conv_t", (4, 1, 24, 4, 16, 16), "float32", 0)
    assert t0.bytes == 4 * 24 * 4 * 16 * 16 * 4 and t0.batch_axis == 1
    assert (t1.tensor, t1.role, t1.shape, t1.dtype, t1.init, t1.bytes) == ("state_index", "index", (), "int64", 0, 8)
    assert (t2.tensor, t2.role, t2.init) == ("stride_index", "counter", 1 - 4 - 1 + 2)
    # pool_5: co.AvgPool3d((4, 1, 1), stride 1) over 432 channels keeps its whole window of 4 pooled
    # frames (_PoolNd.init_state: d(k-1)+1), stride_index = 1 - 4 + 0
    *_, buf, idx, sidx = [t for t in m.tensors if t.path.startswith("pool_5")]
    assert (buf.tensor, buf.shape, buf.role) == ("state_buffer", (4, 1, 432, 1, 1), "pool-window")
    assert (idx.init, sidx.init) == (0, -3)
    # names are the exporter's: s0..sN in, ns0..nsN out
    assert [t.name for t in m.tensors] == [f"s{i}" for i in range(len(m.tensors))]


def test_residual_delay_comes_first_and_a_projection_delay_after_its_branch():
    # co.Residual(main) is BroadcastReduce(Delay, main): the delay's two tensors precede the branch's;
    # co.BroadcastReduce(projection, main, auto_delay) wraps the projection as Sequential(projection, Delay)
    m = comem.analyze("x3d-xs", clip=4, size=32, profile="continual-inference").state_tensors
    block2 = [t for t in m.tensors if t.path.startswith("res2.block2.")]
    assert [t.tensor for t in block2[:2]] == ["state_buffer", "state_index"] and block2[0].role == "delay-line"
    # a delay of one frame: (1, B, 24, 8, 8), its index starting at -1
    assert block2[0].shape == (1, 1, 24, 8, 8) and block2[1].init == -1


def test_two_d_models_fold_their_bodies_into_the_batch():
    # ST-GCN over 25 joints x 2 bodies: the library's step tensor is (N*M, C, V); the first temporal conv
    # (9 frames, padding 4, 64 channels) keeps (k-1, N*M, 64, k-1, V) = (8, 2, 64, 8, 25)
    m = comem.analyze("st-gcn", profile="continual-inference").state_tensors
    t = next(t for t in m.tensors if t.path == "layer1.tcn.t_conv")
    assert t.shape == (8, 2, 64, 8, 25) and t.batch_axis == 1 and t.elements == 8 * 2 * 64 * 8 * 25


# -- paper: Table 4 -------------------------------------------------------------------

def test_paper_profile_lists_eq5_partial_sums():
    # Appendix A Table 4 (X3D-M, 16 x 224^2): conv_1 keeps 4 x 24 x 112 x 112 = 1,204,224 floats and
    # pool_5 (16 - 1) x 432 = 6,480
    m = comem.analyze("x3d-m", profile="paper", knobs={"errata": "consistent"}).state_tensors
    first, last = m.tensors[0], m.tensors[-1]
    assert (first.name, first.shape, first.elements, first.role) == \
        ("conv_1.conv_t.partial_outputs", (1, 24, 4, 112, 112), 1_204_224, "partial-sums")
    assert (last.path, last.elements, last.role) == ("pool_5.pool", 15 * 432, "pool-window")
    assert all(t.is_float for t in m.tensors) and m.naming == "path"


# -- stream-buffer: tensorflow/models' MoViNet state names --------------------------------

K13, K15, K33, K53 = (1, 3, 3), (1, 5, 5), (3, 3, 3), (5, 3, 3)
S11, S12 = (1, 1, 1), (1, 2, 2)
#: BLOCK_SPECS['a0'] of movinet.py: stem (filters, kernel, strides), blocks (base, expand, kernels, strides), head
A0 = {"stem": (8, K13, S12),
      "blocks": [(8, (24,), (K15,), (S12,)),
                 (32, (80, 80, 80), (K33, K33, K33), (S12, S11, S11)),
                 (56, (184, 112, 184), (K53, K33, K33), (S12, S11, S11)),
                 (56, (184, 184, 184, 184), (K53, K33, K33, K33), (S11, S11, S11, S11)),
                 (104, (384, 280, 280, 344), (K53, K15, K15, K15), (S12, S11, S11, S11))],
      "head": 480}


def movinet_initial_state_shapes(spec, input_shape):
    """Movinet._get_initial_state_shapes for conv_type '3d', se_type '3d', no
    positional encoding, rewritten here: {name: (shape, dtype)} in order."""
    def divide(n, k):
        return math.ceil(n / 2 ** k)

    states, down = {}, 0
    f, k, s = spec["stem"]
    if k[0] > 1:
        states["state_stem_stream_buffer"] = ((input_shape[0], input_shape[1], divide(input_shape[2], down),
                                               divide(input_shape[3], down), f), "float32")
    down += 1
    for b, (_, expand, kernels, strides) in enumerate(spec["blocks"]):
        for layer, (e, k, s) in enumerate(zip(expand, kernels, strides)):
            prefix = f"state_block{b}_layer{layer}"
            if k[0] > 1:
                states[f"{prefix}_stream_buffer"] = ((input_shape[0], k[0] - 1, divide(input_shape[2], down),
                                                      divide(input_shape[3], down), e), "float32")
            states[f"{prefix}_pool_buffer"] = ((input_shape[0], 1, 1, 1, e), "float32")
            states[f"{prefix}_pool_frame_count"] = ((1,), "int32")
            if tuple(s[1:3]) != (1, 1):
                down += 1
    states["state_head_pool_buffer"] = ((input_shape[0], 1, 1, 1, spec["head"]), "float32")
    states["state_head_pool_frame_count"] = ((1,), "int32")
    return states


@pytest.mark.parametrize("size,batch", [(172, 1), (64, 2), (97, 1)])
def test_stream_buffer_names_and_shapes_are_movinets(size, batch):
    expected = movinet_initial_state_shapes(A0, (batch, 8, size, size, 3))
    m = comem.analyze("movinet-a0-stream", clip=8, size=size, batch=batch, profile="stream-buffer").state_tensors
    got = {t.name: (t.shape, t.dtype) for t in m.tensors}
    assert list(got) == list(expected)
    assert got == expected
    assert all(t.init == 0 for t in m.tensors)


# -- formats and the CLI ------------------------------------------------------------------

def test_every_format(cli):
    args = ("state", "x3d-xs", "--clip", "4", "--size", "32")
    rc, out, err = cli(*args, "-f", "json")
    assert rc == 0, err
    d = json.loads(out)
    assert set(d) == {"model", "profile", "naming", "clip", "size", "width", "batch", "dtype", "bytes_per_float",
                      "tensors", "totals"}
    t0 = d["tensors"][0]
    assert set(t0) == {"index", "name", "output_name", "path", "row", "kind", "tensor", "role", "shape",
                       "batch_axis", "dtype", "elements", "bytes", "init"}
    assert t0["shape"] == [4, 1, 24, 4, 16, 16] and isinstance(t0["elements"], int)
    assert d["totals"]["state_floats"] == sum(t["elements"] for t in d["tensors"] if t["dtype"] == "float32")
    rc, out, _ = cli(*args, "-f", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    header = rows[0]
    first = dict(zip(header, rows[1]))
    assert first["shape"] == "4;1;24;4;16;16" and first["elements"] == str(4 * 24 * 4 * 16 * 16)
    for fmt, marker in (("table", "s0"), ("markdown", "| s0"), ("latex", "\\begin{tabular}"), ("html", "<table")):
        rc, out, err = cli(*args, "-f", fmt)
        assert rc == 0 and marker in out, (fmt, err)


def test_c_header_compiles_and_agrees_with_json(cli, tmp_path):
    args = ("state", "x3d-xs", "--clip", "4", "--size", "32")
    rc, header, err = cli(*args, "-f", "c-header")
    assert rc == 0, err
    d = json.loads(cli(*args, "-f", "json")[1])
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        assert "#define X3D_XS_STATE_TENSORS 181" in header
        return
    (tmp_path / "state.h").write_text(header)
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "state.h"\nint main(void){long long f=0,n=0;int i;\n'
        "for(i=0;i<X3D_XS_STATE_TENSORS;i++){if(x3d_xs_state[i].dtype==1)f+=x3d_xs_state[i].bytes;"
        "n+=x3d_xs_state[i].rank;}\n"
        'printf("%d %lld %lld %lld\\n", X3D_XS_STATE_TENSORS, f, X3D_XS_STATE_BYTES, n);return 0;}\n')
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-o", str(tmp_path / "m"), str(tmp_path / "main.c")],
                   check=True)
    n, floats, macro, ranks = map(int, subprocess.run([str(tmp_path / "m")], capture_output=True, text=True,
                                                      check=True).stdout.split())
    assert n == len(d["tensors"]) and floats == macro == d["totals"]["state_bytes"]
    assert ranks == sum(len(t["shape"]) for t in d["tensors"])


@pytest.mark.parametrize("args,needle", [
    (("state", "r2plus1d-18"), "no continual form"),
    (("state", "x3d-xs", "-f", "yaml"), "format"),
    (("state", "x3d-xs", "--profile", "paper", "--check"), "continual-inference"),
])
def test_bad_requests_are_one_line_errors(cli, args, needle):
    rc, out, err = cli(*args)
    assert rc == 2 and needle in err and "Traceback" not in err
