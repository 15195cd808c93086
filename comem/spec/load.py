"""Architecture specs: TOML files that describe a network as data.

A spec has five parts (see ``README.md`` → *Writing a spec*):

``[model]``
    name, aliases, default ``clip`` and ``size``, input channels, references,
    and whether a continual form exists.
``[params]``
    named scalars (width factors, block counts…) that layer fields refer to
    by name; they can be overridden (``--set``) or made symbolic
    (``comem formula --symbol``).
``[blocks.NAME]``
    reusable block templates: a ``sequence`` of layers or a ``residual``
    block (``main`` layers, a ``shortcut``, a merge).
``[[stages]]``
    the network, in order: each stage is a list of ``layers`` or a
    ``block`` repeated ``repeat`` times, with per-block overrides
    (``first``) and cycling arguments (``cycle``).
``[[errata]]``
    published numbers that disagree with the equations, with a citation.
``[[constraints]]``
    inputs the network cannot take, as a ``rule`` over its parameters and
    ``clip``, ``height``, ``width`` (``size``: the height) with the
    ``message`` a user sees (SlowFast: the clip is a multiple of alpha).

Loading validates every key and type and reports the first problem as a
one-line :class:`~comem.errors.ComemError` naming the file and the place.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from comem.errors import ComemError, suggest
from comem.core.expr import Expression, to_exact
from comem.core.vocab import Align, BlockType, Merge, Shortcut, parse as parse_word
from comem.spec.schema import Block, Erratum, Spec, Stage

MAX_SPEC_BYTES = 1_000_000

# ---------------------------------------------------------------------------
# validation helpers

_MODEL_KEYS = {"name", "title", "aliases", "description", "references", "clip", "size",
               "in_channels", "continual", "continual_note", "family", "dims"}
_TOP_KEYS = {"model", "params", "domains", "blocks", "stages", "errata", "constraints", "extends"}
#: names a constraint may use besides the spec's parameters
INPUT_NAMES = ("clip", "size", "height", "width")
_BLOCK_KEYS = {"type", "args", "layers", "main", "shortcut", "merge", "label", "branches", "align"}
_STAGE_KEYS = {"name", "layers", "block", "repeat", "args", "first", "cycle", "label",
               "stream", "source", "merge", "merge_into"}
_ERRATUM_KEYS = {"id", "source", "note", "when", "stage", "layer", "quantity", "printed", "consistent",
                 "equation"}
_PARAM_NAME_RESERVED = {"c_in", "index", "True", "False"}


class _Ctx:
    def __init__(self, path: str):
        self.path = path

    def fail(self, where: str, msg: str):
        loc = f"{self.path}: {where}: " if where else f"{self.path}: "
        raise ComemError(f"spec {loc}{msg}")

    def check_keys(self, table, allowed, where):
        if not isinstance(table, dict):
            self.fail(where, f"expected a table, got {type(table).__name__}")
        for k in table:
            if k not in allowed:
                self.fail(where, f"unknown key {k!r}{suggest(k, allowed)}; allowed keys: {', '.join(sorted(allowed))}")

    def want(self, table, key, types, where, required=True, default=None):
        if key not in table:
            if required:
                self.fail(where, f"missing key {key!r}")
            return default
        v = table[key]
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in _as_tuple(types)):
            names = "/".join(t.__name__ for t in _as_tuple(types))
            self.fail(where, f"{key!r} must be {names}, got {type(v).__name__} {v!r}"[:200])
        return v

    def word(self, vocab, text, where, what, allowed=None):
        """``text`` as a member of the vocabulary ``vocab`` (comem.core.vocab)."""
        try:
            return parse_word(vocab, text, what, allowed)
        except ComemError as exc:
            self.fail(where, str(exc))


def _as_tuple(t):
    return t if isinstance(t, tuple) else (t,)


def _check_name(ctx, name, where, what="name"):
    if not isinstance(name, str) or not name or len(name) > 80:
        ctx.fail(where, f"{what} must be a non-empty string of at most 80 characters")
    if not all(ch.isalnum() or ch in "_-." for ch in name):
        ctx.fail(where, f"{what} {name!r} may only contain letters, digits, '_', '-' and '.'")


def _check_value(ctx, v, where):
    """A field value: number, bool, expression string or list of those."""
    if isinstance(v, bool):
        return
    if isinstance(v, (int, float)):
        to_exact(v)
        return
    if isinstance(v, str):
        try:
            Expression(v)
        except ComemError as exc:
            ctx.fail(where, str(exc))
        return
    if isinstance(v, list):
        for x in v:
            _check_value(ctx, x, where)
        return
    ctx.fail(where, f"expected a number, boolean or expression string, got {type(v).__name__}")


def _check_layers(ctx, layers, where):
    if not isinstance(layers, list):
        ctx.fail(where, f"layers must be an array of tables, got {type(layers).__name__}")
    from comem.layers import KINDS  # local import: layers import spec helpers

    for i, layer in enumerate(layers):
        w = f"{where}[{i}]"
        if not isinstance(layer, dict):
            ctx.fail(w, f"expected a table like {{ kind = \"conv\", ... }}, got {type(layer).__name__}")
        if "block" in layer:
            ctx.check_keys(layer, {"block", "args", "name", "label", "when"}, w)
            ctx.want(layer, "block", str, w)
            _check_args(ctx, layer.get("args", {}), w + ".args")
            continue
        kind = ctx.want(layer, "kind", str, w)
        if kind not in KINDS:
            ctx.fail(w, f"unknown layer kind {kind!r}{suggest(kind, KINDS)}; known kinds: {', '.join(sorted(KINDS))}")
        k = KINDS[kind]
        allowed = {"kind", "name", "label", "when", "functional"} | set(k.fields)
        ctx.check_keys(layer, allowed, w + f" ({kind})")
        if "name" in layer:
            _check_name(ctx, layer["name"], w)
        for f in k.required:
            if f not in layer:
                ctx.fail(w + f" ({kind})", f"missing key {f!r}")
        for key, val in layer.items():
            if key in ("kind", "name", "label", "functional"):
                if key == "label" and not isinstance(val, str):
                    ctx.fail(w, "'label' must be a string")
                if key == "functional" and not (isinstance(val, bool) or val == "regular"):
                    ctx.fail(w, "'functional' must be true or false (a call like F.relu rather than a module), "
                                "or \"regular\" (a call in the regular model, a module in the continual one)")
                continue
            if key in k.nested:
                if isinstance(val, str):
                    continue
                _check_layers(ctx, val, f"{w}.{key}")
                continue
            if key in k.nested_lists:
                if not isinstance(val, list) or not all(isinstance(v, list) for v in val):
                    ctx.fail(w, f"{key!r} must be a list of layer lists, e.g. [[{{ kind = \"conv\", ... }}], []]")
                for j, branch in enumerate(val):
                    _check_layers(ctx, branch, f"{w}.{key}[{j}]")
                continue
            if key in k.text_fields:
                if not isinstance(val, str):
                    ctx.fail(w, f"{key!r} must be a string")
                continue
            _check_value(ctx, val, f"{w}.{key}")


def _check_args(ctx, args, where):
    if not isinstance(args, dict):
        ctx.fail(where, f"expected a table of name = value, got {type(args).__name__}")
    for k, v in args.items():
        _check_name(ctx, k, where, "argument name")
        _check_value(ctx, v, f"{where}.{k}")


# ---------------------------------------------------------------------------
# loading

def _read_toml(path: Path, ctx: _Ctx) -> dict:
    try:
        if path.is_dir():
            raise ComemError(f"{path} is a directory, not a spec file; pass a .toml file")
        size = path.stat().st_size
    except FileNotFoundError:
        raise ComemError(f"spec file {path} does not exist; check the path or run 'comem list'") from None
    except PermissionError:
        raise ComemError(f"spec file {path} cannot be read (permission denied)") from None
    except OSError as exc:
        raise ComemError(f"spec file {path} cannot be read: {exc.strerror or exc}") from None
    if size > MAX_SPEC_BYTES:
        raise ComemError(f"spec file {path} is {size} bytes; specs are limited to {MAX_SPEC_BYTES} bytes")
    try:
        raw = path.read_bytes()
    except PermissionError:
        raise ComemError(f"spec file {path} cannot be read (permission denied)") from None
    except OSError as exc:
        raise ComemError(f"spec file {path} cannot be read: {exc.strerror or exc}") from None
    if not raw.strip():
        raise ComemError(f"spec file {path} is empty; a spec needs at least [model] and [[stages]]")
    if b"\x00" in raw:
        raise ComemError(f"spec file {path} is binary, not a TOML text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ComemError(f"spec file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ComemError(f"spec file {path} is not valid TOML: {exc}") from None


def spec_from_dict(data: dict, where: str = "<imported model>") -> Spec:
    """Validate a spec given as a dict (the parsed TOML: what ``comem
    import`` writes) into a :class:`Spec`, with the same checks as a file."""
    ctx = _Ctx(where)
    ctx.check_keys(data, _TOP_KEYS - {"extends"}, "top level")
    return _build(data, ctx, None)


def load_spec(path, _seen=None) -> Spec:
    """Load, resolve ``extends`` and validate one spec file."""
    path = Path(path)
    ctx = _Ctx(str(path))
    data = _read_toml(path, ctx)
    _seen = set(_seen or ())
    key = str(path.resolve())
    if key in _seen:
        ctx.fail("extends", "specs extend each other in a cycle; remove one 'extends'")
    _seen.add(key)
    ctx.check_keys(data, _TOP_KEYS, "top level")
    base = None
    if "extends" in data:
        parent = data["extends"]
        if not isinstance(parent, str):
            ctx.fail("extends", "'extends' must be the name of another spec or a path")
        base = _resolve_parent(parent, path, ctx, _seen)
    return _build(data, ctx, base)


def _resolve_parent(parent: str, path: Path, ctx: _Ctx, seen) -> Spec:
    from comem.spec.registry import builtin_spec_dir

    candidates = [path.parent / parent, path.parent / f"{parent}.toml", builtin_spec_dir() / f"{parent}.toml"]
    for c in candidates:
        if c.is_file():
            return load_spec(c, seen)
    ctx.fail("extends", f"cannot find spec {parent!r} to extend")


def _merge_model(base: Spec | None, table: dict) -> dict:
    if base is None:
        return dict(table)
    merged = {
        "name": base.name, "title": base.title, "aliases": [], "description": base.description,
        "references": list(base.references), "clip": base.clip,
        "size": base.size if (base.dims == 1 or (base.dims == 3 and base.width == base.size)
                              or (base.dims == 2 and base.width == 1)) else [base.size, base.width],
        "dims": base.dims,
        "in_channels": base.in_channels, "continual": base.continual,
        "continual_note": base.continual_note, "family": base.family,
    }
    merged.update(table)
    return merged


def _build(data: dict, ctx: _Ctx, base: Spec | None) -> Spec:
    model = data.get("model")
    if model is None and base is None:
        ctx.fail("", "missing [model] table (name, clip, size)")
    model = model if model is not None else {}
    ctx.check_keys(model, _MODEL_KEYS, "[model]")
    m = _merge_model(base, model)
    name = ctx.want(m, "name", str, "[model]")
    _check_name(ctx, name, "[model]", "model name")
    aliases = ctx.want(m, "aliases", list, "[model]", required=False, default=[])
    for a in aliases:
        _check_name(ctx, a, "[model].aliases", "alias")
    clip = ctx.want(m, "clip", int, "[model]")
    dims = ctx.want(m, "dims", int, "[model]", required=False, default=3)
    if dims not in (1, 2, 3):
        ctx.fail("[model]", f"dims must be 1 (C, T), 2 (C, T, V) or 3 (C, T, H, W), got {dims}")
    raw_size = ctx.want(m, "size", (int, list), "[model]", required=dims != 1, default=1)
    if isinstance(raw_size, list):
        if dims == 1 or len(raw_size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                                     for v in raw_size):
            ctx.fail("[model]", "size must be one number, or [height, width] for a video model (dims = 3), "
                                "[joints, bodies] for a skeleton model (dims = 2)")
        size, width = raw_size
    else:
        size, width = raw_size, (raw_size if dims == 3 else 1)
    if dims == 1 and size != 1:
        ctx.fail("[model]", "a 1D model (dims = 1, input C x T) has no frame size; drop 'size'")
    in_ch = ctx.want(m, "in_channels", (int, str), "[model]", required=False, default=3)
    if isinstance(in_ch, str):  # a parameter (features = 3072): checked when the graph is built
        _check_value(ctx, in_ch, "[model].in_channels")
    for key, v in (("clip", clip), ("size", size), ("width", width)) + \
            ((("in_channels", in_ch),) if isinstance(in_ch, int) else ()):
        if v < 1:
            ctx.fail("[model]", f"{key} must be a positive integer, got {v}")
        if v > 1_000_000:
            ctx.fail("[model]", f"{key} = {v} is absurdly large")
    refs = ctx.want(m, "references", list, "[model]", required=False, default=[])
    if not all(isinstance(r, str) for r in refs):
        ctx.fail("[model]", "'references' must be a list of strings")
    continual = ctx.want(m, "continual", bool, "[model]", required=False, default=True)
    note = ctx.want(m, "continual_note", str, "[model]", required=False, default="")
    title = ctx.want(m, "title", str, "[model]", required=False, default=name)
    desc = ctx.want(m, "description", str, "[model]", required=False, default="")
    family = ctx.want(m, "family", str, "[model]", required=False, default="")

    params = dict(base.params) if base else {}
    raw_params = data.get("params", {})
    if not isinstance(raw_params, dict):
        ctx.fail("[params]", "expected a table of name = value")
    for k, v in raw_params.items():
        _check_name(ctx, k, "[params]", "parameter name")
        if k in _PARAM_NAME_RESERVED:
            ctx.fail("[params]", f"{k!r} is a reserved name; rename the parameter")
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            ctx.fail(f"[params].{k}", f"expected a number or expression string, got {type(v).__name__}")
        _check_value(ctx, v, f"[params].{k}")
        params[k] = v

    from comem.spec.domain import load_domains

    domains = load_domains(data.get("domains", {}), params, dict(base.domains) if base else {}, ctx.fail)

    blocks = dict(base.blocks) if base else {}
    raw_blocks = data.get("blocks", {})
    if not isinstance(raw_blocks, dict):
        ctx.fail("[blocks]", "expected tables [blocks.NAME]")
    for bname, b in raw_blocks.items():
        w = f"[blocks.{bname}]"
        _check_name(ctx, bname, w, "block name")
        ctx.check_keys(b, _BLOCK_KEYS, w)
        btype = ctx.word(BlockType, ctx.want(b, "type", str, w, required=False, default="sequence"), w, "type")
        args = ctx.want(b, "args", dict, w, required=False, default={})
        _check_args(ctx, args, w + ".args")
        if btype == BlockType.PARALLEL:
            if "layers" in b or "main" in b or "shortcut" in b:
                ctx.fail(w, "a parallel block lists its 'branches' (a list of layer lists)")
            layers = ctx.want(b, "branches", list, w)
            if len(layers) < 2 or not all(isinstance(x, list) for x in layers):
                ctx.fail(w, "'branches' must be a list of at least two layer lists ([] is the identity)")
            for j, branch in enumerate(layers):
                _check_layers(ctx, branch, f"{w}.branches[{j}]")
        elif btype == BlockType.SEQUENCE:
            if "main" in b or "shortcut" in b:
                ctx.fail(w, "'main'/'shortcut' belong to type = 'residual' blocks; use 'layers'")
            layers = ctx.want(b, "layers", list, w)
            _check_layers(ctx, layers, w + ".layers")
        else:
            if "layers" in b:
                ctx.fail(w, "a residual block lists its branch under 'main', not 'layers'")
            layers = ctx.want(b, "main", list, w)
            _check_layers(ctx, layers, w + ".main")
        shortcut = b.get("shortcut", "auto")
        if isinstance(shortcut, str):
            if shortcut not in set(Shortcut):
                ctx.fail(w, f"shortcut must be 'auto', 'identity', 'projection' or a list of layers, got {shortcut!r}")
            shortcut = Shortcut(shortcut)
        else:
            _check_layers(ctx, shortcut, w + ".shortcut")
        merge = ctx.word(Merge, ctx.want(b, "merge", str, w, required=False, default="sum"), w, "merge")
        label = ctx.want(b, "label", str, w, required=False)
        align = ctx.word(Align, ctx.want(b, "align", str, w, required=False, default="delay"), w, "align")
        if align != Align.DELAY and btype != BlockType.RESIDUAL:
            ctx.fail(w, "'align' applies to type = 'residual' blocks")
        blocks[bname] = Block(bname, btype, args, layers, shortcut, merge, label, align)

    if "stages" in data:
        raw_stages = data["stages"]
        if not isinstance(raw_stages, list) or not raw_stages:
            ctx.fail("[[stages]]", "expected a non-empty array of [[stages]] tables")
        stages = [_build_stage(ctx, s, i, blocks) for i, s in enumerate(raw_stages)]
    elif base is not None:
        stages = base.stages
    else:
        ctx.fail("", "missing [[stages]]: a spec needs at least one stage")
    names = [s.name for s in stages]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        ctx.fail("[[stages]]", f"stage names must be unique; repeated: {', '.join(sorted(dup))}")

    _check_block_refs(ctx, blocks, stages)

    # errata belong to a network: a spec that extends another without changing
    # its parameters (X3D-XS/S of X3D-M) is the same network and inherits them
    errata = list(base.errata) if (base and "errata" not in data and params == base.params) else []
    for i, e in enumerate(data.get("errata", []) or []):
        errata.append(_build_erratum(ctx, e, f"[[errata]][{i}]"))

    constraints = list(base.constraints) if base else []
    raw_constraints = data.get("constraints", [])
    if not isinstance(raw_constraints, list):
        ctx.fail("[[constraints]]", "expected an array of [[constraints]] tables")
    for i, c in enumerate(raw_constraints):
        w = f"[[constraints]][{i}]"
        ctx.check_keys(c, {"rule", "message"}, w)
        rule = ctx.want(c, "rule", str, w)
        message = ctx.want(c, "message", str, w)
        _check_value(ctx, rule, w + ".rule")
        unknown = Expression(rule).names - set(params) - set(INPUT_NAMES)
        if unknown:
            ctx.fail(w, f"rule {rule!r} uses unknown names {', '.join(sorted(unknown))}; it may use the "
                        f"parameters and {', '.join(INPUT_NAMES)}")
        constraints.append((rule, message))

    return Spec(name=name, title=title, path=ctx.path, aliases=list(aliases), description=desc,
                references=list(refs), clip=clip, size=size, in_channels=in_ch, continual=continual,
                continual_note=note, params=params, blocks=blocks, stages=stages, errata=errata,
                family=family, constraints=constraints, width=width, dims=dims, domains=domains)


def _build_erratum(ctx, e, w) -> Erratum:
    from comem.accounting.profiles import KNOBS

    ctx.check_keys(e, _ERRATUM_KEYS, w)
    eid = ctx.want(e, "id", str, w)
    src = ctx.want(e, "source", str, w)
    note = ctx.want(e, "note", str, w)
    when = ctx.want(e, "when", dict, w, required=False, default={})
    for k, v in when.items():
        if k not in KNOBS or v not in KNOBS[k]:
            ctx.fail(w + ".when", f"{k} = {v!r} is not a knob value; knobs: {', '.join(KNOBS)}")
    quantity = ctx.want(e, "quantity", str, w, required=False, default="state")
    if quantity not in ("state", "transient", "label"):
        ctx.fail(w, f"quantity must be 'state', 'transient' or 'label', got {quantity!r}")
    printed = ctx.want(e, "printed", str, w, required=False)
    consistent = ctx.want(e, "consistent", str, w, required=False)
    if quantity == "state" and printed is not None:
        _check_value(ctx, printed, w + ".printed")
    if quantity == "transient":
        for key, rule in (("printed", printed), ("consistent", consistent)):
            if rule not in KNOBS["transient"]:
                ctx.fail(w, f"a transient erratum's {key!r} must be a transient rule "
                            f"({', '.join(KNOBS['transient'])}), got {rule!r}")
    return Erratum(eid, src, note, dict(when), e.get("stage"), e.get("layer"), quantity, printed, consistent,
                   e.get("equation"))


def _build_stage(ctx, s, i, blocks) -> Stage:
    w = f"[[stages]][{i}]"
    ctx.check_keys(s, _STAGE_KEYS, w)
    name = ctx.want(s, "name", str, w)
    _check_name(ctx, name, w, "stage name")
    w = f"stage {name!r}"
    has_layers = "layers" in s
    has_block = "block" in s
    if has_layers == has_block and not s.get("merge"):
        ctx.fail(w, "give either 'layers' or 'block' (a block template name)")
    st = Stage(name=name, index=i, label=s.get("label"))
    if has_layers:
        _check_layers(ctx, s["layers"], w + ".layers")
        st.layers = s["layers"]
        for k in ("repeat", "first", "cycle"):
            if k in s:
                ctx.fail(w, f"{k!r} only applies to a stage with 'block'")
    if has_block:
        st.block = ctx.want(s, "block", str, w)
        st.repeat = s.get("repeat", 1)
        _check_value(ctx, st.repeat, w + ".repeat")
    st.args = ctx.want(s, "args", dict, w, required=False, default={})
    _check_args(ctx, st.args, w + ".args")
    st.first = ctx.want(s, "first", dict, w, required=False, default={})
    _check_args(ctx, st.first, w + ".first")
    cyc = ctx.want(s, "cycle", list, w, required=False, default=[])
    for j, c in enumerate(cyc):
        _check_args(ctx, c, f"{w}.cycle[{j}]")
    st.cycle = cyc
    st.stream = ctx.want(s, "stream", str, w, required=False, default="main")
    src = s.get("source")
    if src is not None and not (isinstance(src, str) or (isinstance(src, list) and all(isinstance(x, str) for x in src))):
        ctx.fail(w, "'source' must be a stream name or a list of stream names")
    st.source = src
    st.merge = ctx.want(s, "merge", str, w, required=False)
    if st.merge is not None:
        st.merge = ctx.word(Merge, st.merge, w, "merge", (Merge.SUM, Merge.CONCAT))
    st.merge_into = ctx.want(s, "merge_into", str, w, required=False)
    if st.merge_into and not st.merge:
        ctx.fail(w, "'merge_into' needs 'merge' ('concat' or 'sum')")
    if st.label is not None and not isinstance(st.label, str):
        ctx.fail(w, "'label' must be a string")
    return st


def _check_block_refs(ctx, blocks, stages):
    """Every referenced block exists and block templates do not nest in a cycle."""
    def refs_of(layers):
        out = []
        for layer in layers or []:
            if isinstance(layer, dict):
                if "block" in layer:
                    out.append(layer["block"])
                for key in ("main", "shortcut", "layers"):
                    v = layer.get(key)
                    if isinstance(v, list):
                        out.extend(refs_of(v))
                for branch in layer.get("branches") or []:
                    if isinstance(branch, list):
                        out.extend(refs_of(branch))
        return out

    graph = {}
    for b in blocks.values():
        sc = b.shortcut if isinstance(b.shortcut, list) else []
        lists = b.layers if b.type == BlockType.PARALLEL else [b.layers]
        graph[b.name] = [r for layers in lists for r in refs_of(layers)] + refs_of(sc)
    for s in stages:
        used = ([s.block] if s.block else []) + refs_of(s.layers)
        for u in used:
            if u not in blocks:
                ctx.fail(f"stage {s.name!r}", f"block {u!r} is not defined{suggest(u, blocks)}; add [blocks.{u}]")
    for bname, children in graph.items():
        for c in children:
            if c not in blocks:
                ctx.fail(f"[blocks.{bname}]", f"block {c!r} is not defined{suggest(c, blocks)}")
    state = {}

    def visit(n, trail):
        if state.get(n) == 1:
            ctx.fail(f"[blocks.{n}]", f"block templates refer to each other in a cycle: {' -> '.join(trail + [n])}")
        if state.get(n) == 2:
            return
        state[n] = 1
        for c in graph.get(n, []):
            visit(c, trail + [n])
        state[n] = 2

    for n in graph:
        visit(n, [])


