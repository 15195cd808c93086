"""Normalisation layers: ``batchnorm``, ``groupnorm``, ``layernorm``,
``instancenorm``.

Spec fields: ``affine`` (default true; instancenorm: false, as in PyTorch),
``groups`` (groupnorm), ``features`` (batchnorm: ``channels``, default, or
``frame`` — one statistic per element of a frame, the ``BatchNorm1d`` over
the flattened ``M·V·C`` joint features that opens ST-GCN, AGCN and S-TR:
params ``2·C·H·W``).

* params = ``2·C`` when affine (weight and bias; running statistics are
  buffers, not parameters)
* work: one normalisation per element, tagged by the norm and whether it is
  affine (ptflops counts 2 per element for an affine batch/group/instance
  norm, 1 for LayerNorm — its hook reads ``module.affine``, which LayerNorm
  lacks; fvcore 2 / 1 for batch norm at inference, 5 / 4 for the others)
* state 0, delay 0.  ``batchnorm`` at inference and ``layernorm`` over the
  channels act on each frame alone (continual models wrap them with
  ``co.forward_stepping``); ``groupnorm`` and ``instancenorm`` normalise with
  statistics over time, so they have no frame-by-frame form.
"""
from __future__ import annotations

from comem.errors import ComemError
from comem.layers.base import LayerKind
from comem.layers.conv import positive


class Norm(LayerKind):
    framewise = True
    fields = ("affine",)

    def __init__(self, name, summary, affine_default=True, over_time=False):
        self.name = name
        self.summary = summary
        self.affine_default = affine_default
        #: statistics over time: no continual (frame-by-frame) form
        self.over_time = over_time
        if name == "groupnorm":
            self.fields = ("affine", "groups")
            self.required = ("groups",)
        if name == "batchnorm":
            self.fields = ("affine", "features")
            self.text_fields = ("features",)
        #: what an imported module needs of its input's layout
        self.torch_layout = {"batchnorm": "channels_first", "layernorm": "channels_last"}.get(name, "canonical")

    def configure(self, raw, evaluate, c_in, dims=3):
        affine = evaluate("affine", self.affine_default)
        if not isinstance(affine, bool):
            raise ComemError(f"{self.name} 'affine' must be true or false, got {affine!r}")
        cfg = {"affine": affine, "c": c_in, "dims": dims}
        if self.name == "batchnorm":
            feats = evaluate("features", "channels")
            if feats not in ("channels", "frame"):
                raise ComemError(f"batchnorm 'features' must be 'channels' or 'frame', got {feats!r}")
            cfg["features"] = feats
        if self.name == "groupnorm":
            g = positive(evaluate("groups", None), "groupnorm 'groups'")
            if isinstance(g, int) and isinstance(c_in, int) and c_in % g:
                raise ComemError(f"groupnorm groups={g} must divide its {c_in} channels")
            cfg["groups"] = g
        return cfg

    def op(self, cfg):
        return self.name if cfg["affine"] else f"{self.name}_noaffine"

    def params(self, cfg, x):
        if not cfg["affine"]:
            return 0
        return 2 * x.frame if cfg.get("features") == "frame" else 2 * cfg["c"]

    def work(self, cfg, x, y, step, knobs):
        return {self.op(cfg): x.frame if step else x.numel}

    def held(self, cfg, x):
        """A batch norm also holds its running mean and variance (C each) and
        an int64 ``num_batches_tracked``."""
        h = super().held(cfg, x)
        if self.name == "batchnorm":
            c = x.frame if cfg.get("features") == "frame" else cfg["c"]
            h.update(buffers=2 * c, int64=1)
        return h

    def torch_tensors(self, cfg, x, continual=False):
        """weight and bias when affine; a batch norm also keeps running mean
        and variance (C each) and an int64 ``num_batches_tracked``."""
        c = x.frame if cfg.get("features") == "frame" else cfg["c"]
        out = [(c, False), (c, False)] if cfg["affine"] else []
        if self.name == "batchnorm":
            out += [(c, False), (c, False), (1, True)]
        return out

    def continual_ok(self, cfg):
        if self.over_time:
            return f"{self.name} normalises with statistics over time, which has no frame-by-frame form"
        return None

    def op_class(self, cfg, x, y):
        return "norm"

    def op_calls(self, cfg, step):
        """A frame batch norm and a channels-last layer norm reshape around
        the norm (3 calls)."""
        return 3 if cfg.get("features") == "frame" or self.name == "layernorm" else 1

    def torch_module(self, cfg, x, kit, continual, knobs):
        nn, d, c = kit.nn, cfg.get("dims", 3), cfg["c"]
        if self.name == "batchnorm" and cfg.get("features") == "frame":
            m = kit.FrameBatchNorm(x.c, x.h * x.w, cfg["affine"])
        elif self.name == "batchnorm":
            m = getattr(nn, f"BatchNorm{d}d")(c, affine=cfg["affine"])
        elif self.name == "layernorm":
            m = kit.ChannelsLastLayerNorm(c, cfg["affine"])
        elif self.name == "groupnorm":
            m = nn.GroupNorm(cfg["groups"], c, affine=cfg["affine"])
        else:
            m = getattr(nn, f"InstanceNorm{d}d")(c, affine=cfg["affine"])
        return kit.framewise(m) if continual else m

    def torch_types(self, kit):
        nn = kit.nn
        return {"batchnorm": (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d), "layernorm": (nn.LayerNorm,),
                "groupnorm": (nn.GroupNorm,),
                "instancenorm": (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)}[self.name]

    @staticmethod
    def _frame_features(layout) -> bool:
        """``(batch, M·V·C, T)``: the joint features of a frame flattened
        with the channels (continual-skeletons' ``data_bn``)."""
        return len(layout) == 3 and layout[0] == "B" and layout[2] == "T" and "C" in layout[1] and \
            len(layout[1]) > 1 and not set(layout[1]) & {"B", "T"}

    def torch_fields(self, module, dims, layout):
        raw = self.from_torch(module, dims)
        if self.name == "batchnorm" and self._frame_features(layout):
            raw["features"] = "frame"
        return raw

    def torch_output_layout(self, module, layout, canon):
        if self.name == "batchnorm" and self._frame_features(layout):
            return tuple(layout)
        return super().torch_output_layout(module, layout, canon)

    def from_torch(self, m, dims):
        raw = {"kind": self.name}
        affine = getattr(m, "affine", getattr(m, "elementwise_affine", True))
        if affine != self.affine_default:
            raw["affine"] = bool(affine)
        if self.name == "groupnorm":
            raw["groups"] = m.num_groups
        if self.name == "layernorm" and len(m.normalized_shape) != 1:
            raise ComemError(f"LayerNorm over {tuple(m.normalized_shape)}: comem reads a LayerNorm over the "
                             "channels only")
        if self.name == "instancenorm" and getattr(m, "track_running_stats", False):
            raise ComemError("InstanceNorm with running statistics is a batch norm at inference; use BatchNorm")
        return raw

    def published_step_count(self, cfg, x, y, work_step):
        """ptflops ≤ 0.6.9 has no LayerNorm hook (0); the others as the
        default (counted twice per step, ``co.forward_stepping``)."""
        return 0 if self.name == "layernorm" else super().published_step_count(cfg, x, y, work_step)

    def published_clip_count(self, cfg, x, y, work_clip):
        return 0 if self.name == "layernorm" else super().published_clip_count(cfg, x, y, work_clip)

    def torch_work(self, m, inp, out):
        x = inp[0] if isinstance(inp, tuple) else inp
        affine = getattr(m, "affine", getattr(m, "elementwise_affine", False))
        return {self.name if affine else f"{self.name}_noaffine": x.numel()}


BATCHNORM = Norm("batchnorm", "batch norm (frame-wise, stateless)")
LAYERNORM = Norm("layernorm", "layer norm over the channels (frame-wise, stateless)")
GROUPNORM = Norm("groupnorm", "group norm (statistics over time: regular models only)", over_time=True)
INSTANCENORM = Norm("instancenorm", "instance norm (statistics over time: regular models only)",
                    affine_default=False, over_time=True)
