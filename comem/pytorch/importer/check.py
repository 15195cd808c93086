"""Measure the very module a spec was imported from and compare it with
comem's analysis of that spec (``comem import --check``, the zoo tests).

* every model: its parameters; its per-clip count under ptflops (the
  ``pytorch`` backend, ``count_functional=False``) and fvcore, run on it — for
  a continual-inference model the per-clip operations come from forward
  hooks instead, since ptflops miscounts ``co.Linear(channel_dim=1)``
  (the quirk behind the paper's published counts, :mod:`comem.reproduce.co3d`);
* a continual-inference model, warmed up through its receptive field: the
  floats its modules keep (``get_state()``), its delay and receptive field,
  and the operations of one step (forward hooks, each module once).
"""
from __future__ import annotations

import logging
import warnings


def measure_module(module, input_shape, spec, with_fvcore=True, pathways=None) -> dict:
    """What the instruments read off ``module`` at ``input_shape`` (no batch);
    a model of pathways (``pathways``, or as :func:`comem.from_module` finds
    them) is fed from one clip as its ``PackPathway`` transform does."""
    from comem.pytorch import require_extra

    require_extra()
    import torch

    from comem.pytorch.modules import kit

    k = kit()
    shape = tuple(input_shape)
    # trainable parameters, as ptflops and the papers count them
    out = {"params": sum(p.numel() for p in module.parameters() if p.requires_grad)}
    continual = any(isinstance(m, k.co.CoModule) for m in module.modules())
    module.eval()
    if continual:
        module.clean_state()
        out.update(_continual_counts(module, shape, spec, k))
    else:
        out.update(_clip_counts(packed(module, shape, pathways), shape, with_fvcore))
    del torch
    return out


def packed(module, shape, pathways=None):
    """``module``, or — for a model fed a list of pathways — the module behind
    the ``PackPathway`` feed (every ``f``-th frame by ``torch.index_select``,
    which no counter counts), taking one clip."""
    from comem.layers import KINDS
    from comem.pytorch.importer.trace import Tracer
    from comem.pytorch.modules import kit

    if pathways is None:
        pathways = Tracer(module, shape, KINDS, kit()).run().fed
    if pathways is None:
        return module
    import torch

    class PackPathway(torch.nn.Module):
        def __init__(self, net, factors, t):
            super().__init__()
            self.net, self.factors, self.t = net, factors, t

        def forward(self, x):
            t = x.shape[2]
            return self.net([x if f == 1 else torch.index_select(x, 2, torch.linspace(0, t - 1, t // f).long())
                             for f in self.factors])

    return PackPathway(module, tuple(pathways), shape[1]).eval()


def _clip_counts(module, shape, with_fvcore) -> dict:
    import torch
    from ptflops import get_model_complexity_info

    out = {}
    with torch.no_grad():
        macs, _ = get_model_complexity_info(module, shape, as_strings=False, print_per_layer_stat=False,
                                            backend="pytorch", backend_specific_config={"count_functional": False},
                                            verbose=False)
    out["ptflops_clip"] = int(macs)
    if with_fvcore:
        from fvcore.nn import FlopCountAnalysis

        logging.disable(logging.WARNING)
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                fa = FlopCountAnalysis(module, (torch.randn((1,) + shape),))
                fa.unsupported_ops_warnings(False)
                fa.uncalled_modules_warnings(False)
                out["fvcore_clip"] = int(fa.total())
        finally:
            logging.disable(logging.NOTSET)
    return out


def _continual_counts(module, shape, spec, k) -> dict:
    from comem.accounting.conventions import weigh
    from comem.layers import KINDS
    from comem.pytorch.build import RowMap
    from comem.pytorch.validate import total_work
    from comem.pytorch.instrument import measure_continual, measure_regular
    from comem.pytorch.importer.trace import Tracer

    finder = Tracer(module, shape, KINDS, k)
    rows = RowMap()
    for name, m in module.named_modules():
        kind = finder.kind_of(m)
        if kind is not None and not any(name.startswith(p + ".") for p in rows.kinds):
            rows.add(name or "model", kind, m)
    from comem import api

    graph = api.get_graph(spec)
    from comem.accounting.profiles import get_profile
    from comem.model.walk import evaluate_graph

    dims = spec.dims  # a skeleton model's (C, T, V, M) is 2D, of V x M frames
    height = shape[2] if dims >= 2 else 1
    width = shape[3] if len(shape) > 3 else 1
    t = evaluate_graph(graph, shape[1], height, get_profile("continual-inference"), record=False, width=width)
    mr = measure_regular(module, rows, shape[0], shape[1], height, use_ptflops=False, width=width, dims=dims)
    mc = measure_continual(module, rows, shape[0], height, stride=t.stride, width=width, dims=dims)
    module.clean_state()
    return {"ptflops_clip": weigh(total_work(mr.work_clip.values()), "ptflops"),
            "state_floats": sum(mc.state.values()) + mc.unmapped_state, "delay": mc.delay,
            "receptive_field": mc.receptive_field, "work_step": total_work(mc.work_step.values())}


def compare(module, input_shape, spec, pathways=None) -> list:
    """[(quantity, comem, measured)] for the module and comem's analysis of
    ``spec`` at ``input_shape`` (continual-inference accounting)."""
    from comem.api import analyze

    from comem.accounting.conventions import weigh
    from comem.pytorch.validate import hookable

    shape = tuple(input_shape)
    measured = measure_module(module, shape, spec, pathways=pathways)
    size = None if len(shape) == 2 else (shape[2] if len(shape) == 3 else (shape[2], shape[3]))
    continual = "state_floats" in measured
    r = analyze(spec, clip=shape[1], size=size, profile="continual-inference" if continual else None)
    rows = [("params", r.params, measured["params"]),
            ("per-clip ops (ptflops)", weigh(hookable(r.work_clip), "ptflops") if continual else r.ops("ptflops"),
             measured["ptflops_clip"])]
    if "fvcore_clip" in measured:
        rows.append(("per-clip ops (fvcore)", r.ops("fvcore"), measured["fvcore_clip"]))
    if continual:
        rows += [("state floats", r.state_floats, measured["state_floats"]),
                 ("delay (frames)", r.delay, measured["delay"]),
                 ("receptive field (frames)", r.receptive_field, measured["receptive_field"])]
        analytic = hookable(r.work_step)
        for conv in ("ptflops", "macs", "fvcore"):
            rows.append((f"per-step ops ({conv})", weigh(analytic, conv), weigh(measured["work_step"], conv)))
    return rows
