"""The architecture rules of comem, checked.

* every layer kind owns its formulas: the walker, reports and validators
  name no kind, and a new kind is one module plus one ``register`` line —
  shown here by a kind written in this file and validated against the
  instrumented library;
* nothing counts zero in silence: an op a convention does not weigh is an
  error, and a spec key nothing reads is rejected;
* the state formula is written once and rendered from that one text.
"""
import ast
import re
from pathlib import Path

import pytest

import comem
from comem.accounting import conventions
from comem.errors import ComemError
from comem.core.expr import parse
from comem.layers import KINDS

ROOT = Path(comem.__file__).parent


def _kinds_named(path):
    """Layer-kind names a module compares a kind with or looks up
    (``row.kind.name == "conv"``, ``kind in ("avgpool", "maxpool")``,
    ``KINDS["delay"]``).  A literal compared with something that is not a kind
    (an aten op ``name == "mean"``, a quantity ``key in ("delay", ...)``) is
    not a kind's name."""
    tree = ast.parse(path.read_text())
    found = set()

    def consts(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return set().union(*(consts(e) for e in node.elts)) if node.elts else set()
        return set()

    for n in ast.walk(tree):
        if isinstance(n, ast.Compare):
            sides = [n.left] + n.comparators
            if any("kind" in ast.unparse(s).lower() for s in sides if not consts(s)):
                for side in sides:
                    found |= consts(side)
        elif isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id == "KINDS":
            found |= consts(n.slice)
    return found & set(KINDS)


MODULES = sorted(str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)
OUTSIDE_LAYERS = [m for m in MODULES if not m.startswith("layers/")]
#: modules still naming kinds, each a debt to pay (strict: the test fails once one is clean, so it leaves this list)
KIND_DEBT: set = set()


@pytest.mark.parametrize("module", [pytest.param(m, marks=pytest.mark.xfail(strict=True, reason="names kinds"))
                                    if m in KIND_DEBT else m for m in OUTSIDE_LAYERS])
def test_no_module_outside_layers_names_a_layer_kind(module):
    named = _kinds_named(ROOT / module)
    assert not named, f"{module} names layer kinds {sorted(named)}; their formulas belong in comem/layers/"
    assert not re.search(r"kind(\.name)?\s*==", (ROOT / module).read_text())


def test_the_kind_name_check_catches_what_it_is_for(tmp_path):
    f = tmp_path / "m.py"
    f.write_text('if row.kind.name == "conv": pass\nif kind in ("avgpool", "maxpool"): pass\nx = KINDS["delay"]\n'
                 'if name == "mean" or key in ("delay", "clip"): pass\n')
    assert _kinds_named(f) == {"conv", "avgpool", "maxpool", "delay"}


#: the package tree, ground first: a module imports only from its own level or below
LEVELS = [{"errors", "_compat", "core"}, {"accounting"}, {"layers"}, {"spec"}, {"model", "results"}, {"api"},
          {"analyses", "pytorch"}, {"device"}, {"reproduce"}, {"plot"}, {"cli"}]
LEVEL = {area: i for i, areas in enumerate(LEVELS) for area in areas}


def _area(module: str) -> str:
    """``comem.model.walk`` -> ``model``; ``comem.api`` -> ``api``."""
    return module.split(".")[1]


def _comem_imports(path):
    """Every comem module a file imports, at module level or inside a function."""
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.ImportFrom) and n.module and n.level == 0 and n.module.startswith("comem"):
            if n.module == "comem":
                yield from (f"comem.{a.name}" for a in n.names)
            else:
                yield n.module
        elif isinstance(n, ast.Import):
            yield from (a.name for a in n.names if a.name.startswith("comem"))
        elif isinstance(n, ast.ImportFrom) and n.level:
            yield f"relative import in {path.name}"


def test_every_folder_has_a_level():
    areas = {m.split("/")[0].removesuffix(".py") for m in MODULES} - {"__init__", "__main__"}
    assert areas <= set(LEVEL), f"folders without a place in the import order: {sorted(areas - set(LEVEL))}"


@pytest.mark.parametrize("module", [m for m in MODULES if m not in ("__init__.py", "__main__.py")])
def test_each_folder_imports_in_one_direction(module):
    mine = LEVEL[module.split("/")[0].removesuffix(".py")]
    for imported in _comem_imports(ROOT / module):
        assert not imported.startswith("relative"), f"{module}: use absolute comem.* imports ({imported})"
        if imported == "comem.__version__":
            continue
        assert LEVEL[_area(imported)] <= mine, (
            f"{module} imports {imported}: {_area(imported)} sits above {module.split('/')[0]} in the tree")


def test_torch_is_imported_at_module_level_only_in_pytorch():
    for module in MODULES:
        if module.startswith("pytorch/"):
            continue
        tree = ast.parse((ROOT / module).read_text())
        for n in tree.body:
            names = [a.name for a in n.names] if isinstance(n, ast.Import) else (
                [n.module] if isinstance(n, ast.ImportFrom) and n.module else [])
            heavy = [x for x in names if x.split(".")[0] in ("torch", "continual", "numpy", "sympy", "onnx",
                                                              "onnxruntime", "matplotlib")]
            assert not heavy, f"{module} imports {heavy} at module level; import it inside the function"


def test_an_op_no_convention_weighs_is_an_error_not_a_zero():
    with pytest.raises(ComemError, match="does not weigh the op 'softsign'.*ptflops|ptflops.*'softsign'"):
        conventions.weigh({"conv_mac": 10, "softsign": 5}, "ptflops")
    # every op every built-in model reports is weighed by every convention (explicit zeros included)
    for model in comem.list_models():
        r = comem.analyze(model)
        ops = {op.removesuffix("@functional") for op in list(r.work_clip) + list(r.work_step or {})}
        for conv in conventions.CONVENTIONS:
            assert ops <= set(conventions.CONVENTIONS[conv]), (model, conv)
            conventions.weigh(r.work_clip, conv)


def test_spec_key_nothing_reads_is_rejected(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[model]\nname = "s"\nclip = 4\nsize = 32\n[[stages]]\nname = "a"\n'
                    'layers = [ { kind = "conv", out = 8, kernel = [1, 1, 1], stage_output = true } ]\n')
    with pytest.raises(ComemError, match="unknown key 'stage_output'"):
        comem.analyze(str(spec))


def test_state_formula_is_written_once_and_rendered_from_it():
    conv = KINDS["conv"]
    text = conv.state_formulas["partial-outputs"]
    # the symbolic and the numbers-in texts both come from that one formula
    assert parse(text).render() == "d_T×(k_T−1)×c_O×n_H×n_W"
    r = comem.analyze("x3d-m")
    row = next(x for x in r.rows if x.path == "res3.block1.res.b")
    assert row.state_text == ("d_T×(k_T−1)×c_O×n_H×n_W", "(3−1)×108×28×28")
    assert row.state == (3 - 1) * 108 * 28 * 28  # Eq. (5), by hand
    # an erratum replaces the formula; its printed text renders from the erratum's own formula
    err = next(x for x in r.rows if x.erratum)
    assert err.state_text[1] == "(3−1−1)×54×56×56" and err.consistent_text == "(3−1)×54×56×56"


def test_renderer_writes_formulas_as_the_paper_prints_them():
    e = parse("(d_T * (w - 1) + 1) * C * n_H * n_W")
    assert e.render() == "(d_T×(w−1)+1)×C×n_H×n_W"
    # symbols worth 1 leave a product, worth 0 leave a sum; compound factors and literals stay
    assert e.render({"d_T": 1, "w": 16, "C": 432, "n_H": 1, "n_W": 1}) == "(16−1+1)×432"
    assert parse("r_T - 1 - p_T").render({"r_T": 3, "p_T": 1}) == "3−1−1"
    assert parse("r_T - 1 - p_T").render({"r_T": 16, "p_T": 0}) == "16−1"
    assert parse("(k_T - 1)**2 * c_O").render({"k_T": 3, "c_O": 54}) == "(3−1)²×54"
    assert parse("a - (b - c)").render() == "a−(b−c)" and parse("(a - b) - c").render() == "a−b−c"


# ---------------------------------------------------------------------------
# a new kind: one module (this class) + one register line

def _softsign_kind():
    from comem.layers.activation import Activation

    class Softsign(Activation):
        op_weights = {"softsign": {"ptflops": 0, "macs": 0, "flops": 0, "fvcore": 0, "executed": 0}}

    return Softsign("softsign", "softsign", "softsign, element-wise", lambda kit, cfg: kit.nn.Softsign())


@pytest.fixture
def softsign_kind():
    from comem.layers import register, unregister

    kind = register(_softsign_kind())
    yield kind
    unregister("softsign")
    assert "softsign" not in conventions.CONVENTIONS["ptflops"]


def test_registries_refuse_duplicates(softsign_kind):
    from comem.layers import register

    with pytest.raises(ComemError, match="'softsign' is already registered"):
        register(_softsign_kind())
    clash = _softsign_kind()
    clash.name = "softsign2"
    clash.op_weights = {"softsign": dict(clash.op_weights["softsign"], flops=3)}
    with pytest.raises(ComemError, match="op 'softsign' already weighs 0 under flops, not 3"):
        register(clash)
    assert "softsign2" not in KINDS and conventions.CONVENTIONS["flops"]["softsign"] == 0


def test_a_kind_class_is_checked_when_it_is_defined():
    from comem.layers.base import LayerKind

    with pytest.raises(TypeError, match="required fields \\['k'\\] are not in fields"):
        type("Bad", (LayerKind,), {"fields": ("a",), "required": ("k",)})
    with pytest.raises(TypeError, match="fields must be a tuple"):
        type("Bad", (LayerKind,), {"fields": ["a"]})
    with pytest.raises(TypeError, match="needs state_knob or state_field"):
        type("Bad", (LayerKind,), {"state_formulas": {"a": "1"}})
    with pytest.raises(TypeError, match="params\\(cfg\\) must take 2 arguments"):
        type("Bad", (LayerKind,), {"params": lambda self, cfg: 0})


TANH_SPEC = """
[model]
name = "softsign-net"
clip = 6
size = 24
[[stages]]
name = "body"
layers = [
  { kind = "conv", out = 8, kernel = [3, 3, 3], padding = [1, 1, 1], bias = false },
  { kind = "softsign" },
  { kind = "conv", out = 8, kernel = [3, 1, 1], bias = true },
  { kind = "softsign" },
]
"""


def test_a_new_kind_in_one_module_and_one_registry_line(softsign_kind, tmp_path):
    spec = tmp_path / "softsign-net.toml"
    spec.write_text(TANH_SPEC)
    r = comem.analyze(str(spec), profile="continual-inference")
    # by hand: two softsign layers, one op per element per step (8 x 24 x 24 each)
    assert r.work_step["softsign"] == 2 * 8 * 24 * 24
    assert r.ops_per_step == r.ops("ptflops", step=True)


@pytest.mark.validation
def test_a_new_kind_is_validated_against_the_library(softsign_kind, tmp_path):
    pytest.importorskip("continual")
    from comem.pytorch.validate import validate

    spec = tmp_path / "softsign-net.toml"
    spec.write_text(TANH_SPEC)
    v = validate(str(spec), 6, 24)
    assert v.ok, [(c.group, c.quantity, c.analytic, c.measured) for c in v.failures]
    assert any(c.group.endswith("softsign1") and c.quantity == "per-step work" and c.analytic == {"softsign": 8 * 24 * 24}
               for c in v.checks)


def test_a_resolved_spec_cannot_be_mutated_behind_a_cached_analysis():
    spec = comem.resolve("x3d-m")
    before = comem.analyze(spec, clip=64).state_floats
    with pytest.raises(TypeError):
        spec.params["width_factor"] = 3.0
    with pytest.raises(AttributeError):
        spec.clip = 4
    assert comem.resolve("x3d-m").params["width_factor"] == 2.0  # X3D-M's width factor (Feichtenhofer 2020)
    wider = comem.analyze(spec, clip=64, params={"width_factor": 3.0}).state_floats
    assert wider > before == comem.analyze("x3d-m", clip=64).state_floats


def test_an_erratum_note_names_its_own_equation(tmp_path):
    spec = tmp_path / "e.toml"
    spec.write_text('[model]\nname = "e"\nclip = 8\nsize = 16\n[[stages]]\nname = "a"\n'
                    'layers = [ { name = "conv", kind = "conv", out = 4, kernel = [3, 1, 1], bias = false } ]\n'
                    '[[errata]]\nid = "X.1"\nsource = "a paper"\nstage = "a"\nlayer = "conv"\nquantity = "state"\n'
                    'printed = "c_O * n_H * n_W"\nequation = "Eq. (9): (k_T - 1) c_O n_H n_W"\nnote = "n"\n'
                    'when = { conv_state = "partial-outputs" }\n')
    text = comem.analyze(str(spec)).render("table")
    # by hand: printed 4 x 16 x 16 = 1,024; Eq. (9) (3 - 1) x 4 x 16 x 16 = 2,048
    assert "⚠ X.1: Eq. (9) gives (3−1)×4×16×16 = 2,048" in text and "Eq. (5)" not in text


def test_the_0_1_names_live_in_one_module():
    """Every 0.1 compatibility name is declared in comem/_compat.py (with its removal version), and
    each is only a copy of the current name."""
    from comem import _compat

    assert _compat.REMOVED_IN == "0.4"
    offenders = []
    for module in MODULES:
        if module == "_compat.py":
            continue
        text = (ROOT / module).read_text()
        for name in ('"macs_per_step"', '"macs_per_clip"', '"macs_per_frame_avg"', '"--macs-budget"', '"--count"',
                     "LEGACY_"):
            if name in text:
                offenders.append((module, name))
    assert not offenders
    r = comem.analyze("x3d-m")
    d = r.to_dict()
    assert d["macs_per_step"] == d["ops_per_step"] == r.macs_per_step and d["count"] == r.count == "ptflops"
    assert all(row["count"] == row["multiplicity"] for row in d["layers"])
