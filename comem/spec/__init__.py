"""Architectures are data: TOML specs, their schema, loading and the built-in registry.

``schema`` holds the data classes, ``load`` parses and validates a TOML file,
``registry`` finds the built-in specs by name or alias, ``errata`` applies the
published numbers that disagree with the equations."""
from comem.spec.load import INPUT_NAMES, load_spec, spec_from_dict
from comem.spec.registry import all_aliases, builtin_names, builtin_spec_dir, resolve
from comem.spec.schema import Block, Erratum, Spec, Stage

__all__ = ["Block", "Erratum", "INPUT_NAMES", "Spec", "Stage", "all_aliases", "builtin_names", "builtin_spec_dir",
           "load_spec", "resolve", "spec_from_dict"]
