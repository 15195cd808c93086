"""A catalogue of bad inputs: each gets exit status 2, one line on stderr
naming the problem (and the fix), no traceback, nothing on stdout."""
import os

import pytest

import comem
from comem.errors import ComemError

GOOD_HEAD = '[model]\nname = "x"\nclip = 4\nsize = 32\n'


def spec(body, head=GOOD_HEAD):
    return head + body


def stage(layers):
    return f'[[stages]]\nname = "s"\nlayers = [{layers}]\n'


ONE_D = '[model]\nname = "x"\ndims = 1\nclip = 6\nin_channels = 16\n'
TWO_D = '[model]\nname = "x"\ndims = 2\nclip = 40\nsize = [25, 2]\nin_channels = 3\n'


SPEC_FILES = {
    "toml-syntax": ("[model\nname = 'x'", "not valid TOML"),
    "unknown-top-key": (spec(stage('{kind = "relu"}') + "colour = 3\n"), "unknown key 'colour'"),
    "unknown-layer-key": (spec(stage('{kind = "conv", out = 8, kernal = [3, 3, 3]}')), "did you mean 'kernel'"),
    "unknown-stage-key": (spec('[[stages]]\nname = "s"\nlayerz = []\n'), "unknown key 'layerz'"),
    "unknown-kind": (spec(stage('{kind = "conv3d", out = 8}')), "unknown layer kind"),
    "missing-size": ('[model]\nname = "x"\nclip = 4\n' + stage('{kind = "relu"}'), "missing key 'size'"),
    "missing-kernel": (spec(stage('{kind = "conv", out = 8}')), "missing key 'kernel'"),
    "missing-stages": (GOOD_HEAD, "missing [[stages]]"),
    "wrong-type-clip": ('[model]\nname = "x"\nclip = "four"\nsize = 32\n' + stage('{kind = "relu"}'), "'clip' must be int"),
    "wrong-type-layers": (spec('[[stages]]\nname = "s"\nlayers = "conv"\n'), "array of tables"),
    "wrong-type-kernel": (spec(stage('{kind = "conv", out = 8, kernel = [3, 3]}')), "a list [T, H, W], got 2 values"),
    "negative-channels": (spec(stage('{kind = "conv", out = -8, kernel = 3}')), "must be positive"),
    "fractional-channels": (spec(stage('{kind = "conv", out = 8.5, kernel = 3}')), "whole number"),
    "absurd-channels": (spec(stage('{kind = "conv", out = 100000000000, kernel = 3}')), "absurdly large"),
    "negative-padding": (spec(stage('{kind = "conv", out = 8, kernel = 3, padding = -1}')), "non-negative"),
    "kernel-larger-than-input": (spec(stage('{kind = "conv", out = 8, kernel = [3, 99, 3]}')), "larger than its"),
    "groups-do-not-divide": (spec(stage('{kind = "conv", out = 8, kernel = 3, groups = 5}')), "must divide"),
    "undefined-block": (spec('[[stages]]\nname = "s"\nblock = "zz"\n'), "'zz' is not defined"),
    "cyclic-blocks": (spec('[blocks.a]\nlayers = [{block = "b"}]\n[blocks.b]\nlayers = [{block = "a"}]\n'
                           '[[stages]]\nname = "s"\nblock = "a"\n'), "cycle"),
    "self-extends": ('extends = "self-extends"\n' + spec(stage('{kind = "relu"}')), "cycle"),
    "missing-parent": ('extends = "no-such-spec"\n' + spec(stage('{kind = "relu"}')), "cannot find spec"),
    "repeat-zero": (spec('[blocks.b]\nlayers = [{kind = "relu"}]\n[[stages]]\nname = "s"\nblock = "b"\nrepeat = 0\n'),
                    "at least 1"),
    "duplicate-stages": (spec(stage('{kind = "relu"}') + stage('{kind = "relu"}')), "unique"),
    "unknown-function": (spec(stage('{kind = "conv", out = "__import__(1)", kernel = 3}')), "unknown function"),
    "attribute-access": (spec(stage('{kind = "conv", out = "a.b", kernel = 3}')), "not allowed"),
    "huge-power": (spec(stage('{kind = "conv", out = "2**100000", kernel = 3}')), "exponents"),
    "division-by-zero": (spec('[params]\nz = 0\n' + stage('{kind = "conv", out = "8 // z", kernel = 3}')), "divides by zero"),
    "unknown-name": (spec(stage('{kind = "conv", out = "width", kernel = 3}')), "unknown name 'width'"),
    "bad-source-stream": (spec('[[stages]]\nname = "s"\nsource = ["a"]\nmerge = "concat"\n'), "not produced"),
    "empty-file": ("", "is empty"),
    "heads-do-not-divide": (spec(stage('{kind = "attention", heads = 5}'), ONE_D), "must divide"),
    "attention-mode": (spec(stage('{kind = "attention", heads = 4, mode = "sideways"}'), ONE_D),
                       "must be one of"),
    "attention-in-video": (spec(stage('{kind = "attention", heads = 4}')), "1D model"),
    "encoder-activation": (spec(stage('{kind = "transformer_encoder", heads = 4, ff = 8, activation = "tanh"}'),
                                ONE_D), "'relu' or 'gelu'"),
    "encoder-split-bias": (spec(stage('{kind = "transformer_encoder", heads = 4, ff = 8, bias = false, '
                                      'out_bias = true}'), ONE_D), "out_bias = bias"),
    "too-few-positions": (spec(stage('{kind = "positional_encoding", embeddings = 4}'), ONE_D), "positions"),
    "lstm-without-hidden": (spec(stage('{kind = "lstm"}'), ONE_D), "missing key 'hidden'"),
    "graph-conv-in-video": (spec(stage('{kind = "graph_conv", out = 8}')), "2D model"),
    "spatial-attention-heads": (spec(stage('{kind = "spatial_attention", out = 12, heads = 8}'), TWO_D),
                                "multiple of heads"),
    "align-sideways": (spec('[blocks.b]\ntype = "residual"\nalign = "left"\nmain = [{kind = "relu"}]\n'
                            '[[stages]]\nname = "s"\nblock = "b"\n', TWO_D), "'delay' or 'centre'"),
    "in-channels-unknown": (spec(stage('{kind = "relu"}'), ONE_D.replace("in_channels = 16",
                                                                         'in_channels = "features"')),
                            "unknown name 'features'"),
    "skeleton-size-3": (spec(stage('{kind = "relu"}'), TWO_D.replace("[25, 2]", "[25, 2, 1]")), "[joints, bodies]"),
}


@pytest.fixture
def write(tmp_path):
    def _write(name, text):
        p = tmp_path / name
        p.write_text(text, encoding="utf-8")
        return str(p)
    return _write


def _one_line_error(rc, out, err, needle):
    assert rc == 2, (rc, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("comem: error: ")
    assert "Traceback" not in err
    assert needle.lower() in err.lower(), (needle, err)


@pytest.mark.parametrize("case", sorted(SPEC_FILES))
def test_bad_spec_files(cli, write, case):
    text, needle = SPEC_FILES[case]
    path = write(f"{case}.toml", text)
    _one_line_error(*cli(path), needle)
    with pytest.raises(ComemError):
        comem.analyze(path)


def test_binary_non_utf8_directory_missing(cli, tmp_path):
    (tmp_path / "bin.toml").write_bytes(bytes(range(256)))
    _one_line_error(*cli(str(tmp_path / "bin.toml")), "binary")
    (tmp_path / "latin.toml").write_bytes(b'[model]\nname = "caf\xe9"\n')
    _one_line_error(*cli(str(tmp_path / "latin.toml")), "not UTF-8")
    _one_line_error(*cli(str(tmp_path)), "directory")
    _one_line_error(*cli(str(tmp_path / "nope.toml")), "does not exist")
    (tmp_path / "huge.toml").write_text("#" * 1_100_000)
    _one_line_error(*cli(str(tmp_path / "huge.toml")), "limited to")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(cli, tmp_path):
    p = tmp_path / "locked.toml"
    p.write_text(spec(stage('{kind = "relu"}')))
    p.chmod(0)
    _one_line_error(*cli(str(p)), "permission denied")


ARGS = [
    (["x3d-q"], "unknown model"),
    (["x3d_mm"], "did you mean"),
    ([""], "empty"),
    (["x3d-m", "--profile", "papr"], "unknown profile"),
    (["x3d-m", "--profile", ""], "unknown profile"),
    (["x3d-m", "--format", "yaml"], "unknown format"),
    (["x3d-m", "--dtype", "fp8"], "unknown dtype"),
    (["x3d-m", "--dtype", ""], "unknown dtype"),
    (["x3d-m", "--count", "flopz"], "unknown counting convention"),
    (["x3d-m", "--clip", "0"], "at least 1"),
    (["x3d-m", "--clip", "-3"], "at least 1"),
    (["x3d-m", "--clip", "2.5"], "whole number"),
    (["x3d-m", "--clip", "1000000000"], "absurdly large"),
    (["x3d-m", "--size", "0"], "at least 1"),
    (["x3d-m", "--size", "-224"], "at least 1"),
    (["x3d-m", "--size", "1e9"], "whole number"),
    (["x3d-m", "--size", "1000000000"], "absurdly large"),
    (["x3d-m", "--size", "16"], "total spatial stride"),
    (["i3d-r50", "--clip", "1"], "total temporal stride"),
    (["x3d-m", "--batch", "0"], "at least 1"),
    (["x3d-m", "--knob", "conv_sate=library-buffer"], "unknown knob"),
    (["x3d-m", "--knob", "conv_state=huge"], "has no value"),
    (["x3d-m", "--knob", "conv_state"], "NAME=VALUE"),
    (["x3d-m", "--set", "depth=3"], "no parameter"),
    (["x3d-m", "--set", "depth_factor=abc"], "not a number"),
    (["x3d-m", "--set", "depth_factor=0"], "outside its domain"),
    (["x3d-m", "--view", "nope"], "unknown view"),
    (["x3d-m", "--top", "0"], "--top"),
    (["x3d-m", "--clipp", "3"], "no such option"),
    (["slowfast-8x8-r50", "--profile", "continual-inference"], "no continual form"),
    (["formula", "x3d-m", "--symbol", "nope"], "no parameter"),
    (["sweep", "x3d-m", "--clip", "5..1"], "empty"),
    (["sweep", "x3d-m", "--clip", "4..64:0"], "step"),
    (["sweep", "x3d-m", "--clip", "__import__('os')"], "not a number or a range"),
    (["sweep", "x3d-m", "--size", "10..20"], "no point of the grid is valid"),
    (["solve", "x3d-m", "--for", "size"], "exactly one budget"),
    (["solve", "x3d-m", "--for", "size", "--budget", "8 parsecs"], "unknown unit"),
    (["solve", "x3d-m", "--for", "size", "--budget", "-5MiB"], "must be positive"),
    (["solve", "x3d-m", "--for", "size", "--budget", "1KiB"], "nothing fits"),
    (["solve", "x3d-m", "--for", "depth", "--budget", "1GiB"], "not size, clip, batch or a parameter"),
    (["compare", "x3d-m:clipp=3"], "unknown key"),
    (["compare", "x3d-m", "--each-profile", "--profile", "paper"], "drop --profile"),
    (["paper", "--paper", "cost-gcn", "--table", "1"], "has tables 2, 3"),
    (["cooadtr-b1", "--clip", "65"], "positions"),
    (["cooadtr-b1", "--size", "12"], "no frame size"),
    (["compare", "x3d-m:clip"], "key=value"),
    (["validate", "x3d-q"], "unknown model"),
    (["plot", "stages", "x3d-m", "-o", "out.gif"], ".png or .svg"),
    (["nonsense-command"], "unknown model"),
    (["nonsense-command", "--x"], "no such option"),
]


@pytest.mark.parametrize("args,needle", ARGS, ids=[" ".join(a) or "empty" for a, _ in ARGS])
def test_bad_arguments(cli, args, needle):
    _one_line_error(*cli(*args), needle)


@pytest.mark.parametrize("kwargs", [
    {"model": "x3d-q"}, {"model": 42}, {"clip": 0}, {"clip": True}, {"clip": "2.5"}, {"size": 10 ** 9},
    {"profile": "nope"}, {"dtype": "fp8"}, {"count": "x"}, {"batch": -1}, {"knobs": {"x": "y"}},
    {"params": {"depth_factor": "1/0"}},
])
def test_api_raises_comem_error(kwargs):
    kw = {"model": "x3d-m", **kwargs}
    with pytest.raises(ComemError):
        comem.analyze(**kw)


# ---------------------------------------------------------------------------
# issue 21: a new round of bad or odd inputs.  Each gives one line and exit 2
# naming the problem, or (ODD_BUT_FINE below) a correct answer.

NEW_ARGS = [
    # parameter domains, declared in the spec and enforced by every command (21.1)
    (["x3d-m", "--set", "width_factor=-1"], "outside its domain"),
    (["x3d-m", "--set", "width_factor=0"], "outside its domain"),
    (["x3d-m", "--set", "width_factor=-0"], "outside its domain"),
    (["x3d-m", "--set", "width_factor=1e9"], "outside its domain"),
    (["x3d-m", "--set", "se_ratio=2"], "(0, 1]"),
    (["x3d-m", "--set", "stem_kt=2.5"], "whole number"),
    (["x3d-m", "--set", "classes=-5"], "outside its domain"),
    (["st-gcn", "--set", "adaptive=0.5"], "one of {0, 1}"),
    (["s-tr", "--set", "key_factor=1.5"], "outside its domain"),
    (["sweep", "x3d-m", "--set", "width_factor=-1..1:0.5"], "outside its domain"),
    (["sweep", "x3d-m", "--set", "width_factor=0,1"], "outside its domain"),
    (["pareto", "x3d-m", "--set", "width_factor=-1..2:0.5"], "outside its domain"),
    (["solve", "x3d-m", "--for", "width_factor", "--budget", "8MiB", "--min", "-1"], "outside its domain"),
    (["solve", "x3d-m", "--for", "width_factor", "--budget", "8MiB", "--min", "0"], "outside its domain"),
    (["solve", "x3d-m", "--for", "width_factor", "--budget", "8MiB", "--max", "1e9"], "outside its domain"),
    (["compare", "x3d-m:set.width_factor=-1"], "outside its domain"),
    (["formula", "x3d-m", "--set", "width_factor=-1"], "outside its domain"),
    # not numbers at all
    (["x3d-m", "--set", "width_factor=nan"], "not a number"),
    (["x3d-m", "--set", "width_factor=inf"], "not a number"),
    (["x3d-m", "--set", "width_factor="], "not a number"),
    (["x3d-m", "--set", "width_factor=1/0"], "not a number"),
    (["x3d-m", "--set", "width_factor=0x10"], "not a number"),
    (["x3d-m", "--set", "width_factor=1e999"], "not a number"),
    (["x3d-m", "--set", "width_factor=1..2"], "takes one value"),
    # budgets (21.7)
    (["solve", "x3d-m", "--for", "size", "--ops-budget", "0"], "ops budget '0' must be positive"),
    (["solve", "x3d-m", "--for", "size", "--ops-budget", "-1G"], "ops budget '-1G' must be positive"),
    (["solve", "x3d-m", "--for", "size", "--budget", "-8MiB"], "must be positive"),
    (["solve", "x3d-m", "--for", "size", "--budget", "0"], "must be positive"),
    (["solve", "x3d-m", "--for", "size", "--budget", "0.1"], "less than one"),
    (["solve", "x3d-m", "--for", "clip", "--budget", "nanMiB"], "not a number"),
    (["solve", "x3d-m", "--for", "size", "--budget", "8MiB", "--ops-budget", "1G"], "exactly one budget"),
    (["solve", "x3d-m", "--for", "size", "--budget", "8MiB", "--size", "160"], "drop --size"),
    (["solve", "x3d-m", "--for", "clip", "--budget", "8MiB", "--clip", "4"], "drop --clip"),
    (["solve", "x3d-m", "--for", "width_factor", "--budget", "8MiB", "--step", "0"], "--step must be positive"),
    (["solve", "x3d-m", "--for", "width_factor", "--budget", "8MiB", "--min", "3", "--max", "1"], "is empty"),
    # options given twice silently kept the last one
    (["x3d-m", "--set", "width_factor=2", "--set", "width_factor=3"], "given twice"),
    (["x3d-m", "--knob", "errata=consistent", "--knob", "errata=printed"], "given twice"),
    (["formula", "x3d-m", "--symbol", "width_factor", "--set", "width_factor=2"], "both symbolic"),
    (["compare", "x3d-m:clip=16,clip=32"], "clip is given twice"),
    (["compare", "x3d-m:set.width_factor=1,set.width_factor=2"], "given twice"),
    # grids
    (["sweep", "x3d-m", "--dtype", ","], "names no dtype"),
    (["sweep", "x3d-m", "--set", "width_factor=1..2:0"], "step must be positive"),
    (["sweep", "x3d-m", "--set", "width_factor=2..1"], "is empty"),
    (["sweep", "x3d-m", "--set", "nope=1,2"], "no parameter 'nope'"),
    (["sweep", "x3d-m", "--clip", "1e3"], "not a number or a range"),
    (["pareto", "x3d-m", "--set", "width_factor=1..2:0.5", "--minimize", "nope"], "not a column"),
    (["pareto", "x3d-m", "--set", "width_factor=1..2:0.5", "--maximize", "total_bytes", "--minimize", "total_bytes"],
     "both minimised and maximised"),
    (["pareto", "x3d-m", "--set", "width_factor=1..2:0.5", "--minimize", "total_bytes,total_bytes"], "given twice"),
    # frame sizes and other options
    (["x3d-m", "--size", "224x"], "whole number"),
    (["x3d-m", "--size", "224x224x3"], "HEIGHTxWIDTH"),
    (["x3d-m", "--size", "224x0"], "at least 1"),
    (["x3d-m", "--batch", "1.5"], "whole number"),
    (["oadtr", "--size", "2"], "no frame size"),
    (["formula", "x3d-m", "-f", "yaml"], "unknown format"),
    (["paper", "--table", "99"], "is not one of"),
]


@pytest.mark.parametrize("args,needle", NEW_ARGS, ids=[" ".join(a) for a, _ in NEW_ARGS])
def test_new_bad_arguments(cli, args, needle):
    _one_line_error(*cli(*args), needle)


def _json(cli, *args):
    import json

    rc, out, err = cli(*args, "-f", "json")
    assert rc == 0, err
    return json.loads(out)


@pytest.mark.parametrize("odd,plain", [
    (["x3d-m", "--set", "classes=1e3"], ["x3d-m", "--set", "classes=1000"]),
    (["x3d-m", "--set", "width_factor=+2"], ["x3d-m", "--set", "width_factor=2"]),
    (["x3d-m", "--set", "width_factor=4/2"], ["x3d-m", "--set", "width_factor=2.0"]),
    (["x3d-m", "--dtype", "FP16"], ["x3d-m", "--dtype", "fp16"]),
    (["sweep", "x3d-m", "--set", "width_factor=1e0,2e0"], ["sweep", "x3d-m", "--set", "width_factor=1,2"]),
])
def test_odd_inputs_give_the_plain_answer(cli, odd, plain):
    """Odd spellings of good inputs answer exactly like the plain ones."""
    assert _json(cli, *odd) == _json(cli, *plain)


def test_domains_hold_in_the_api():
    """The same check guards the Python API: analyze, the grid and solve."""
    from comem.analyses.solve import solve_param
    from comem.analyses.sweep import design_sweep

    for bad in (-1, 0, 0.0, float("nan"), float("inf"), True, None, "abc"):
        with pytest.raises(ComemError):
            comem.analyze("x3d-m", params={"width_factor": bad})
    with pytest.raises(ComemError, match="outside its domain"):
        design_sweep("x3d-m", {"width_factor": [1, 0]})
    with pytest.raises(ComemError, match="outside its domain"):
        solve_param("x3d-m", "se_ratio", 8 << 20, lo=0)
    # a domain's edge is in it: X3D's SE ratio may be 1 (the whole width)
    assert comem.analyze("x3d-m", params={"se_ratio": 1}).params > comem.analyze("x3d-m").params


DOMAIN_SPECS = {
    "domain-not-a-param": (spec('[params]\nw = 2.0\n[domains]\nx = "(0, 3]"\n' + stage('{kind = "relu"}')),
                           "'x' is not a parameter"),
    "domain-syntax": (spec('[params]\nw = 2.0\n[domains]\nw = "0 to 3"\n' + stage('{kind = "relu"}')),
                      "is not an interval"),
    "domain-empty": (spec('[params]\nw = 2.0\n[domains]\nw = "(3, 1)"\n' + stage('{kind = "relu"}')), "is empty"),
    "domain-excludes-default": (spec('[params]\nw = 2.0\n[domains]\nw = "(0, 1]"\n' + stage('{kind = "relu"}')),
                                "the default w = 2.0 is outside its domain (0, 1]"),
    "domain-not-a-string": (spec('[params]\nw = 2.0\n[domains]\nw = 3\n' + stage('{kind = "relu"}')),
                            "expected a string"),
    "domain-closed-infinity": (spec('[params]\nw = 2\n[domains]\nw = "[1, inf]"\n' + stage('{kind = "relu"}')),
                               "infinite bound is open"),
}


@pytest.mark.parametrize("case", sorted(DOMAIN_SPECS))
def test_bad_domain_tables(cli, write, case):
    text, needle = DOMAIN_SPECS[case]
    _one_line_error(*cli(write(f"{case}.toml", text)), needle)


def test_a_declared_domain_and_the_default_one(cli, write):
    """A spec's own domain is enforced; a whole-number parameter without one
    takes whole numbers >= 0, a decimal one numbers > 0."""
    path = write("d.toml", spec('[params]\nw = 2.0\nn = 8\nk = 0.5\n[domains]\nw = "[1, 4]"\n'
                                + stage('{kind = "conv", out = "n", kernel = 1}')))
    assert cli(path, "--set", "w=4")[0] == 0
    _one_line_error(*cli(path, "--set", "w=0.5"), "w of x must be a number in [1, 4]")
    _one_line_error(*cli(path, "--set", "n=2.5"), "a whole number in [0, 1000000]")
    _one_line_error(*cli(path, "--set", "k=0"), "a number in (0, 1000000]")


def test_a_default_outside_its_types_domain_means_no_guess(cli, write):
    """A parameter whose own default is negative (an offset) is not held to
    the positive default domain: it takes what its spec's formulas accept."""
    path = write("off.toml", spec('[params]\noff = -1\nn = 8\n' + stage('{kind = "conv", out = "n + off + 1", kernel = 1}')))
    rc, out, err = cli(path, "--set", "off=-3", "-f", "json")
    assert rc == 0, err
    assert __import__("json").loads(out)["params"] == 6 * 3 + 6  # a 1x1x1 conv 3 -> 6 channels with bias
    _one_line_error(*cli(path, "--set", "n=-3"), "outside its domain")
