"""Instrumented validation against real PyTorch / continual-inference models.

Needs the optional extra: ``pip install 'comem[validate]'`` (torch==2.13.0,
continual-inference==1.2.4, ptflops, fvcore).  Nothing here is imported by
the plain analysis path.
"""
from comem.errors import MissingExtraError

INSTALL_HINT = ("pip install 'comem[validate]'  (torch==2.13.0, continual-inference==1.2.4, ptflops, "
                "fvcore)")


def require_extra():
    """Import torch and continual, or raise a one-line install hint."""
    import importlib
    import logging

    try:
        importlib.import_module("torch")
        importlib.import_module("continual")

        # continual-inference warns on every temporally strided module it builds
        logging.getLogger("continual").setLevel(logging.ERROR)
        for name in list(logging.root.manager.loggerDict):
            if name.startswith("continual"):
                logging.getLogger(name).setLevel(logging.ERROR)
    except ImportError as exc:
        raise MissingExtraError(f"validation needs PyTorch and continual-inference ({exc.name} is missing); "
                                f"install them with: {INSTALL_HINT}") from None
