"""Streaming a grid's rows: CSV lines, or one JSON document written block by
block, so memory stays bounded whatever the number of points.  The blocks are
:class:`comem.analyses.grid.SweepResult` objects (anything with ``headers()``,
``text_rows(fmt)``, ``reasons`` and ``notes``)."""
from __future__ import annotations

import json


def write_blocks(blocks, fmt: str, out, on_block=lambda block: None) -> None:
    """Write ``blocks`` to the text stream ``out`` as ``csv`` or ``json``;
    ``on_block`` is called after each (progress)."""
    first = True
    reasons: list = []
    notes: list = []
    for r in blocks:
        if first:
            if fmt == "csv":
                out.write(",".join(r.headers()) + "\n")
            else:
                head = {"model": r.model, "profile": r.profile, "convention": r.convention, "columns": r.headers()}
                out.write(json.dumps(head)[:-1] + ', "rows": [\n')
        text = r.text_rows(fmt)
        if text:
            if fmt == "json" and not first:
                out.write(",\n")
            out.write(text)
            if fmt == "csv":
                out.write("\n")
        first = False
        reasons.extend(x for x in r.reasons if x not in reasons)
        notes.extend(x for x in r.notes if x not in notes)
        on_block(r)
    if fmt == "json":
        out.write("\n], " + json.dumps({"invalid_reasons": reasons, "notes": notes})[1:] + "\n")
    out.flush()
