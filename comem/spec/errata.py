"""Errata: where a publication's printed numbers disagree with its own
equations (``[[errata]]`` in a spec).

One rule decides where an erratum applies, whatever the model is called:

* it belongs to the **network** of the spec that declares it — a spec that
  extends it without changing a parameter (X3D-XS and X3D-S of X3D-M) is the
  same network and carries it; changing a parameter (X3D-L, ``--set``, a
  symbolic parameter) makes another network without it;
* it applies at every clip and frame size (it is a formula, not a number);
* it applies only under the accounting the publication used (its ``when``
  knob values, e.g. ``conv_state = partial-outputs``);
* the ``errata`` knob alone then decides: ``printed`` reports the
  publication's formula, ``consistent`` the equations.  No other knob turns
  an erratum on or off, so a what-if delta contains only what was changed.
"""
from __future__ import annotations


def matching(spec, graph, knobs) -> list:
    """The spec's errata that describe this network under these knobs
    (whether they are reported as printed is the ``errata`` knob's choice)."""
    if graph.changed_params:
        return []
    return [e for e in spec.errata if all(knobs.get(k) == v for k, v in e.when.items())]


def printed_state(errata, knobs) -> list:
    """State errata whose printed formula replaces the kind's formula."""
    if knobs["errata"] != "printed":
        return []
    return [e for e in errata if e.quantity == "state" and e.printed]


def transient_rule(errata, knobs) -> str:
    """The ``transient`` knob's rule, corrected by a transient erratum under
    ``errata = consistent``."""
    rule = knobs["transient"]
    if knobs["errata"] == "consistent":
        for e in errata:
            if e.quantity == "transient" and e.consistent:
                rule = e.consistent
    return rule


def consistent_transient_rule(errata, knobs) -> str:
    """The rule ``errata = consistent`` would use (for the consistent totals)."""
    return transient_rule(errata, dict(knobs, errata="consistent"))
