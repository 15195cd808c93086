"""What a user gives comem, made sane: parameter overrides (the layer tree
they build, cached on the spec), the frame size, the clip."""
from __future__ import annotations


from comem.errors import ComemError, arg
from comem.model.build import build_graph
from comem.spec.schema import Spec
from comem.core.units import MAX_CLIP, MAX_SIZE, check_int


def get_graph(spec: Spec, params: dict | None = None):
    """Phase 1 for ``spec`` with parameter overrides, cached on the spec."""
    from comem.spec.domain import param_value

    values = {k: param_value(spec, k, v) for k, v in (params or {}).items()}
    key = tuple(sorted((k, str(v)) for k, v in values.items()))
    graph = spec.graphs.get(key)
    if graph is None:
        graph = build_graph(spec, values)
        if len(spec.graphs) < 64:
            spec.graphs[key] = graph
    return graph


def frame_size(spec: Spec, size) -> tuple:
    """``(height, width)`` of one input frame: the spec's, or ``size`` — one
    number (square), ``"HxW"`` or ``(H, W)`` for video; the joints ``V`` of
    a 2D model, or ``"VxM"`` joints x bodies (one number keeps the spec's
    bodies); nothing for a 1D model (1 x 1)."""
    if size is None:
        return spec.size, spec.width or spec.size
    if isinstance(size, str) and "x" in size.lower():
        parts = size.lower().replace(" ", "").split("x")
        if len(parts) != 2:
            raise ComemError(f"size {size!r} is not HEIGHTxWIDTH; write e.g. 224x398")
        size = tuple(parts)
    if isinstance(size, (tuple, list)):
        if len(size) != 2:
            raise ComemError(f"size must be one number or (height, width), got {len(size)} values")
        h = check_int(size[0], "height (pixels)", 1, MAX_SIZE)
        w = check_int(size[1], "width (pixels)", 1, MAX_SIZE)
        if spec.dims == 1 and (h, w) != (1, 1):
            raise ComemError(f"{spec.name} is a 1D model (input C x T): it has no frame size; drop {arg('size')}")
        return h, w
    if spec.dims == 1:
        raise ComemError(f"{spec.name} is a 1D model (input C x T): it has no frame size; drop {arg('size')}")
    s = check_int(size, "size (pixels)" if spec.dims == 3 else "size (joints)", 1, MAX_SIZE)
    return (s, s) if spec.dims == 3 else (s, spec.width or 1)


def check_clip_size(spec: Spec, clip, size):
    """The spec's defaults, or user values checked to be sane whole numbers:
    ``(clip, height, width)``."""
    clip = spec.clip if clip is None else check_int(clip, "clip (frames)", 1, MAX_CLIP)
    return (clip,) + frame_size(spec, size)
