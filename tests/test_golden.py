"""Golden outputs: the README quick start and the JSON of the main job.

These files guard *formatting*: a refactor that changes a digit, a row, a
column or a key fails here loudly.  The numbers inside them are proven
elsewhere (tests/test_appendix_a.py against the paper, tests/test_validation.py
against instrumented models); when an issue changes output on purpose, the
golden file is regenerated in the same commit with
``comem x3d-m --clip 64 > tests/golden/x3d-m-clip64.txt`` and
``comem x3d-m -f json > tests/golden/x3d-m.json``.
"""
import json
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


def test_quick_start_table_is_unchanged(cli):
    rc, out, err = cli("x3d-m", "--clip", "64")
    assert rc == 0, err
    assert out == (GOLDEN / "x3d-m-clip64.txt").read_text()


def test_main_job_json_is_unchanged(cli):
    rc, out, err = cli("x3d-m", "-f", "json")
    assert rc == 0, err
    assert json.loads(out) == json.loads((GOLDEN / "x3d-m.json").read_text())
