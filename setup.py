"""Package discovery for comem (metadata lives in pyproject.toml).

Every package under ``comem/`` is found by ``find_packages``, so a new sub-package
cannot be left out of the wheel; the architecture specs under ``specs/`` (and each
folder below it: ``published/``, ``devices/``) ship as ``comem.specs``.
"""

from setuptools import find_namespace_packages, find_packages, setup

CODE = find_packages(include=["comem", "comem.*"])
SPECS = ["comem.specs"] + [f"comem.specs.{sub}" for sub in find_namespace_packages(where="specs")]

setup(packages=CODE + SPECS)
