"""Property-based tests (hypothesis): random valid specs and settings never
crash, and the invariants of the accounting hold."""
import json

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import comem
from comem.errors import ComemError
from comem.core.expr import Expression

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def layer(draw, c_in_holder):
    kind = draw(st.sampled_from(["conv", "conv", "batchnorm", "relu", "swish", "maxpool", "residual"]))
    if kind == "conv":
        kt = draw(st.sampled_from([1, 2, 3, 5]))
        kh = draw(st.sampled_from([1, 3]))
        s = draw(st.sampled_from([1, 1, 2]))
        out = draw(st.integers(1, 12))
        dw = draw(st.booleans()) and out == c_in_holder[0]
        c_in_holder[0] = out
        return (f'{{ kind = "conv", out = {out}, kernel = [{kt}, {kh}, {kh}], stride = [1, {s}, {s}], '
                f'padding = [{kt // 2}, {kh // 2}, {kh // 2}], groups = {out if dw else 1}, '
                f'bias = {str(draw(st.booleans())).lower()} }}')
    if kind == "maxpool":
        return '{ kind = "maxpool", kernel = [1, 3, 3], stride = [1, 2, 2], padding = [0, 1, 1] }'
    if kind == "residual":
        kt = draw(st.sampled_from([1, 3]))
        s = draw(st.sampled_from([1, 2]))
        return f'{{ block = "res", args = {{ kt = {kt}, stride = {s} }} }}'
    return f'{{ kind = "{kind}" }}'


@st.composite
def random_spec(draw):
    c = [draw(st.integers(1, 4))]
    stages = []
    for i in range(draw(st.integers(1, 3))):
        layers = [draw(layer(c)) for _ in range(draw(st.integers(1, 4)))]
        stages.append(f'[[stages]]\nname = "s{i}"\nlayers = [ {", ".join(layers)} ]\n')
    head = draw(st.booleans())
    if head:
        stages.append('[[stages]]\nname = "head"\nlayers = [ { kind = "avgpool", global = true }, '
                      f'{{ kind = "linear", out = {draw(st.integers(1, 10))} }} ]\n')
    text = (f'[model]\nname = "rand"\nclip = 4\nsize = 32\nin_channels = {c[0] if False else 3}\n'
            '[blocks.res]\ntype = "residual"\nargs = { kt = 1, stride = 1 }\nmain = [\n'
            '  { kind = "conv", out = "c_in", kernel = ["kt", 3, 3], stride = [1, "stride", "stride"], '
            'padding = ["kt // 2", 1, 1], bias = false },\n  { kind = "batchnorm" },\n]\n' + "".join(stages))
    return text, head


def _analyze(path, **kw):
    try:
        return comem.analyze(path, **kw)
    except ComemError:
        return None  # an input the network cannot run at: a clean error is the right answer


@SETTINGS
@given(random_spec(), st.integers(1, 40), st.integers(1, 200),
       st.sampled_from(["paper", "continual-inference"]))
def test_random_specs_never_crash_and_invariants_hold(tmp_path_factory, spec, clip, size, profile):
    text, has_head = spec
    path = tmp_path_factory.mktemp("spec") / "rand.toml"
    path.write_text(text)
    r = _analyze(str(path), clip=clip, size=size, profile=profile)
    assume(r is not None)
    assert r.state_floats >= 0 and r.transient_floats >= 0 and r.ops_per_step >= 0 and r.params >= 0
    assert all(isinstance(v, int) for v in (r.state_floats, r.transient_floats, r.ops_per_clip, r.params))
    # continual state depends on the clip only through the final global pool: C floats per frame
    r2 = _analyze(str(path), clip=clip + 3, size=size, profile=profile)
    assert r2 is not None
    pooled = r.rows[-2].x.c if has_head else 0
    assert r2.state_floats - r.state_floats == 3 * pooled
    # memory grows with the input size
    r3 = _analyze(str(path), clip=clip, size=size + 1, profile=profile)
    assert r3 is not None and r3.total_floats >= r.total_floats
    # JSON round-trips with exact integers
    d = json.loads(r.to_json())
    assert (d["state_floats"], d["transient_floats"], d["ops_per_clip"], d["params"]) == \
        (r.state_floats, r.transient_floats, r.ops_per_clip, r.params)
    assert sum(row["state_floats"] for row in d["layers"]) == r.state_floats


MEMORY_KNOBS = [("conv_state", "library-buffer"), ("conv_state", "input-frames"), ("residual_delay", "auto"),
                ("pool_state", "k"), ("transient", "liveness"), ("transient", "largest-map")]


@SETTINGS
@given(st.sampled_from(["x3d-xs", "x3d-m", "i3d-r50", "slow-8x8-r50"]), st.integers(8, 64), st.integers(64, 320),
       st.sampled_from(MEMORY_KNOBS))
def test_knobs_change_only_what_they_say(model, clip, size, knob):
    base = comem.analyze(model, clip=clip, size=size, knobs={"errata": "consistent"})
    other = comem.analyze(model, clip=clip, size=size, knobs={"errata": "consistent", knob[0]: knob[1]})
    # no memory knob changes compute or parameters
    assert (other.ops_per_step, other.ops_per_clip, other.params) == \
        (base.ops_per_step, base.ops_per_clip, base.params)
    if knob[0] == "transient":
        assert other.state_floats == base.state_floats
    else:
        assert other.transient_floats == base.transient_floats
        # only the rows of the kind the knob is about change
        about = {"conv_state": {"conv"}, "residual_delay": {"delay"}, "pool_state": {"avgpool", "maxpool"}}[knob[0]]
        a = {row.path: row.state * row.multiplicity for row in base.rows if row.kind.name not in about}
        b = {row.path: row.state * row.multiplicity for row in other.rows if row.kind.name not in about}
        assert a == b


@SETTINGS
@given(st.lists(st.integers(1, 48), min_size=1, max_size=4, unique=True),
       st.lists(st.integers(32, 300), min_size=1, max_size=4, unique=True), st.sampled_from(["x3d-m", "i3d-r50"]))
def test_vectorised_sweep_equals_one_by_one(clips, sizes, model):
    from comem.analyses.sweep import sweep

    try:
        fast = sweep(model, clips, sizes)
    except ComemError:
        assume(False)
    headers = fast.headers()
    for row in fast.rows():
        got = dict(zip(headers, row))
        if not got["valid"]:
            continue
        one = comem.analyze(model, clip=got["clip"], size=got["size"])
        assert (got["total_floats"], got["ops_per_step"], got["regular_total_floats"]) == (
            one.total_floats, one.ops_per_step, one.regular_total_floats)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789+-*/%().,<>=! :[]'\"\\", max_size=40))
def test_expression_parser_never_crashes(text):
    try:
        e = Expression(text)
    except ComemError:
        return
    try:
        v = e.evaluate({"a": 3, "b": 0, "width": 2})
    except ComemError:
        return
    assert v is None or isinstance(v, (int, bool)) or hasattr(v, "denominator")
