"""comem — analytic memory and FLOP calculator for continual 3D CNNs.

    >>> import comem
    >>> r = comem.analyze("x3d-m", clip=64)
    >>> print(r)                       # Appendix-A-style breakdown + totals
    >>> r.to_dict()["state_floats"]
    4792368
    >>> spec = comem.from_module(my_model, (3, 16, 224, 224))   # any PyTorch model
    >>> comem.analyze(spec, clip=64, size=(224, 398))

Everything heavy (numpy, sympy, torch) is imported lazily by the functions
that need it.
"""
__version__ = "0.2.0"

__all__ = ["analyze", "Report", "ComemError", "load_spec", "list_models", "profiles", "get_profile",
           "from_module", "Spec", "__version__"]


def __getattr__(name):
    if name == "analyze":
        from .api import analyze

        return analyze
    if name == "Report":
        from .report import Report

        return Report
    if name == "ComemError":
        from .errors import ComemError

        return ComemError
    if name == "Spec":
        from .spec import Spec

        return Spec
    if name == "load_spec":
        from .spec import load_spec

        return load_spec
    if name == "list_models":
        from .spec import builtin_names

        return builtin_names
    if name == "get_profile":
        from .profiles import get_profile

        return get_profile
    if name == "from_module":
        from .importer import from_module

        return from_module
    if name == "profiles":
        from . import profiles

        return profiles
    raise AttributeError(f"module 'comem' has no attribute {name!r}")
