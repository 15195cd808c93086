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

# The public API: name -> (module, attribute); resolved lazily on first use, so
# ``import comem`` stays cheap (no numpy, sympy or torch).  An attribute of None
# is the module itself (``comem.sweep.sweep(...)``).
_PUBLIC = {
    "analyze": ("comem.api", "analyze"),
    "Report": ("comem.results.report", "Report"),
    "ComemError": ("comem.errors", "ComemError"),
    "Spec": ("comem.spec.schema", "Spec"),
    "load_spec": ("comem.spec.load", "load_spec"),
    "resolve": ("comem.spec.registry", "resolve"),
    "list_models": ("comem.spec.registry", "builtin_names"),
    "get_profile": ("comem.accounting.profiles", "get_profile"),
    "profiles": ("comem.accounting.profiles", None),
    "from_module": ("comem.pytorch.importer", "from_module"),
    "sweep": ("comem.analyses.sweep", None),
    "solve": ("comem.analyses.solve", None),
    "symbolic": ("comem.analyses.symbolic", None),
    "plot": ("comem.plot", None),
}

__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name):
    try:
        module, attr = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'comem' has no attribute {name!r}") from None
    import importlib

    value = importlib.import_module(module)
    return value if attr is None else getattr(value, attr)


from comem import _compat  # noqa: E402  (0.2 module paths, e.g. ``from comem.sweep import sweep``)

_compat.install()
