"""Any model in: read a PyTorch or continual-inference model into a spec.

    >>> spec = comem.from_module(model, (3, 16, 224, 224))    # (C, T, H, W)
    >>> comem.analyze(spec, clip=64, size=(224, 398))

``input_shape`` excludes the batch: ``(C, T, H, W)`` for a video model,
``(C, T, V)`` or ``(C, T, F)`` for a model of 2D convolutions over time and
joints (or features), ``(C, T)`` for 1D, and ``(C, T, V, M)`` with
``layout="CTVM"`` for a skeleton model that folds its ``M`` bodies into the
batch (continual-skeletons' ST-GCN family).  A model that takes a list of
pathways (pytorchvideo's SlowFast) is fed from the one clip as its
``PackPathway`` transform does (``pathways``, found by itself by default).

What comem reads is asked of the layer kinds (:mod:`comem.layers`): the
module classes each stands for and the modules it recognises by what they
hold (``torch_types``, ``torch_match``), the functional calls (``aten_ops``,
``from_aten``), the input layout it needs, its strides and the shortcut a
residual builds; the importer names no kind.  Stages follow the network:
the same network nested differently gives the same spec.

The model is traced once on a fake input (shapes only,
:mod:`comem.pytorch.importer.trace`); a continual-inference model runs its regular
(clip) forward, so its ``co.Delay``s, ``co.Residual``s and
``co.BroadcastReduce``s appear as delays and parallel branches.  The graph
becomes a spec in the format of the built-in ones
(:mod:`comem.pytorch.importer.structure`, :mod:`comem.pytorch.importer.emit`), which works
everywhere a built-in does and can be written as TOML.  Anything comem
cannot map is refused with one line naming every such module or op.
"""
from __future__ import annotations

from comem.errors import ComemError

MAX_PROBLEMS_SHOWN = 12


def check_input_shape(input_shape) -> tuple:
    shape = tuple(input_shape)
    if len(shape) not in (2, 3, 4):
        raise ComemError(f"input shape {shape} must be (C, T, H, W), (C, T, V) or (C, T), without the batch")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape):
        raise ComemError(f"input shape {shape} must be positive whole numbers")
    if any(v > 100_000 for v in shape):
        raise ComemError(f"input shape {shape} is absurdly large")
    return shape


def parse_input(text: str) -> tuple:
    """``3x16x224x224`` -> (3, 16, 224, 224)."""
    parts = str(text).lower().replace(" ", "").split("x")
    try:
        return check_input_shape(tuple(int(p) for p in parts))
    except ValueError:
        raise ComemError(f"--input {text!r} is not CxTxHxW (e.g. 3x16x224x224; 3x300x25 for C x T x V)") from None


def from_module(module, input_shape, name: str | None = None, title: str | None = None, pathways=None,
                layout: str | None = None):
    """A :class:`comem.spec.Spec` for ``module`` at ``input_shape`` (no batch).

    ``layout="CTVM"``: a skeleton model's input ``(C, T, V, M)`` — joints and
    bodies, the bodies folded into the batch by the model (continual-skeletons'
    ``data_bn`` reshapes); read as a 2D model of frames ``V × M``.

    A model that takes a list of pathways (SlowFast) is fed from one clip as
    its ``PackPathway`` transform does: ``pathways`` gives each pathway's
    temporal subsampling (``(4, 1)``: every 4th frame, then every frame);
    by default comem tries ``(α, 1)`` for α = 2, 3, 4 … when the model
    refuses one tensor."""
    return spec_from_module(module, input_shape, name, title, pathways, layout)[0]


def spec_from_module(module, input_shape, name=None, title=None, pathways=None, layout=None):
    """(Spec, spec dict) for ``module``."""
    from comem.spec.load import spec_from_dict

    data = module_to_dict(module, input_shape, name, title, pathways, layout)
    try:
        return spec_from_dict(data, f"<{data['model']['name']}>"), data
    except ComemError as exc:  # comem wrote a spec it cannot read: say so about the model, not the spec
        msg = str(exc).split(": ", 1)[-1]
        raise ComemError(f"cannot import {data['model']['title']}: comem could not express it ({msg})") from None


def _continual_problem(data: dict, shape: tuple) -> str | None:
    """Why the spec has no continual form (e.g. residual blocks that stride in
    time), found by evaluating it at the import shape; None when it has."""
    from comem.model.build import build_graph
    from comem.accounting.profiles import get_profile
    from comem.spec.load import spec_from_dict
    from comem.model.walk import evaluate_graph

    spec = spec_from_dict(data, f"<{data['model']['name']}>")
    graph = build_graph(spec)
    if graph.continual_problem:
        return graph.continual_problem
    height = shape[2] if len(shape) > 2 else 1
    width = shape[3] if len(shape) > 3 else 1
    try:
        evaluate_graph(graph, shape[1], height, get_profile("paper"), record=False, continual=True, width=width)
    except ComemError as exc:
        return str(exc)
    return None


def _refuse(problems, what):
    shown = problems[:MAX_PROBLEMS_SHOWN]
    more = f" (and {len(problems) - len(shown)} more)" if len(problems) > len(shown) else ""
    raise ComemError(f"cannot import {what}: {len(problems)} unsupported module(s) or op(s): "
                     + "; ".join(shown) + more)


LAYOUTS = ("CTHW", "CTV", "CT", "CTVM")


def module_to_dict(module, input_shape, name=None, title=None, pathways=None, layout=None) -> dict:
    """The spec, as a dict in the TOML layout, of a regular or continual model."""
    from comem.layers import KINDS
    from comem.pytorch import require_extra

    require_extra()
    from comem.pytorch.modules import kit
    from comem.pytorch.importer.emit import Emitter

    shape = check_input_shape(input_shape)
    if layout is not None and (str(layout).upper() not in LAYOUTS or len(str(layout)) != len(shape)):
        raise ComemError(f"layout {layout!r} must name the {len(shape)} input axes: one of "
                         f"{', '.join(v for v in LAYOUTS if len(v) == len(shape))}")
    bodies = layout is not None and str(layout).upper() == "CTVM"
    k = kit()
    if not isinstance(module, k.nn.Module):
        raise ComemError(f"expected a torch.nn.Module, got {type(module).__name__}")
    cls = type(module).__name__
    name = _model_name(name or cls)
    dims = len(shape) - 1 - (1 if bodies else 0)
    from comem.pytorch.importer.structure import structure
    from comem.pytorch.importer.trace import Tracer

    emitter = Emitter(dims)
    if hasattr(module, "clean_state"):
        module.clean_state()  # a continual model's state from earlier inputs
    if pathways is not None:
        pathways = tuple(pathways)
        if not pathways or not all(isinstance(f, int) and not isinstance(f, bool) and 1 <= f <= shape[1]
                                   for f in pathways):
            raise ComemError(f"pathways {pathways} must be frame subsampling factors between 1 and the clip's "
                             f"{shape[1]} frames, e.g. (4, 1)")
    kept = _plain_attributes(module)
    try:
        tracer = Tracer(module, shape, KINDS, k, pathways=pathways, bodies=bodies).run()
    finally:
        _restore_attributes(kept)  # a causal model's stream buffers and counters, set by the trace
    if tracer.problems:
        _refuse(tracer.problems, cls)
    chains, _ = structure(tracer.ops, tracer.output)
    if len(chains) == 1 and not chains[0].merge:
        stages = emitter.chain_stages(chains[0].ops)
        continual, note = True, ""
    else:
        stages = emitter.stream_stages(chains)
        continual, note = False, ("its pathways fork and merge outside parallel blocks (like SlowFast's "
                                  "lateral connections); comem aligns branches in time only inside blocks")
    model = {"name": name, "title": title or cls, "description": f"imported from {cls} at input {shape}",
             "clip": shape[1], "in_channels": shape[0], "dims": dims}
    if dims == 3:
        model["size"] = shape[2] if shape[2] == shape[3] else [shape[2], shape[3]]
    elif dims == 2:
        model["size"] = [shape[2], shape[3]] if bodies else shape[2]
    if tracer.scalar_gains:  # ReZero's alpha: named, not counted
        model["description"] += (f"; {len(tracer.scalar_gains)} learnable scalar gain(s) on the data not counted "
                                 f"in params ({', '.join(tracer.scalar_gains[:3])}"
                                 f"{', ...' if len(tracer.scalar_gains) > 3 else ''}: torch counts "
                                 f"{len(tracer.scalar_gains)} more)")
    if not continual:
        model["continual"] = False
        model["continual_note"] = note
    data = {"model": model}
    if emitter.blocks:
        data["blocks"] = emitter.blocks
    data["stages"] = stages
    if continual:
        why = _continual_problem(data, shape)
        if why:
            model["continual"] = False
            model["continual_note"] = f"no frame-by-frame form: {why}"
    return data


def _plain_attributes(module) -> list:
    """Each submodule's public plain attributes (not its parameters, buffers
    or children): what a forward may set, as a causal model's stream buffers
    (``self.activation``) and frame counters do."""
    return [(m, {key: v for key, v in vars(m).items() if not key.startswith("_")}) for m in module.modules()]


def _restore_attributes(kept):
    """Leave the model as the import found it (the trace ran on fake tensors)."""
    for m, attrs in kept:
        for key in [key for key in vars(m) if not key.startswith("_") and key not in attrs]:
            delattr(m, key)
        for key, v in attrs.items():
            if vars(m).get(key, v) is not v:
                setattr(m, key, v)


def _model_name(text: str) -> str:
    import re

    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-.").lower() or "model"
    return name[:80]


def load_factory(target: str, kwargs: dict):
    """``FILE.py:CALLABLE`` -> the module the callable returns.  Importing the
    file runs its code: comem imports what you point it at, as Python does."""
    import importlib.util
    import os
    import sys

    path, sep, func = str(target).rpartition(":")
    if not sep or not path or not func:
        raise ComemError(f"{target!r} is not FILE.py:CALLABLE (e.g. models.py:make_model)")
    if not os.path.isfile(path):
        raise ComemError(f"{path} does not exist; give the path of a Python file")
    mod_name = "comem_user_" + _model_name(os.path.splitext(os.path.basename(path))[0]).replace("-", "_")
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ComemError(f"{path} is not a Python file comem can import")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ComemError(f"importing {path} failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}") \
            from None
    finally:
        sys.path.pop(0)
    factory = getattr(module, func, None)
    if factory is None or not callable(factory):
        raise ComemError(f"{path} has no callable {func!r}")
    try:
        return factory(**kwargs)
    except Exception as exc:
        raise ComemError(f"{func}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) failed: "
                         f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
