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


def test_names_of_0_1_stay_as_aliases_for_one_release(cli):
    """``count`` became ``convention`` and ``macs_per_*`` became ``ops_per_*``
    (they hold counts under any convention); the old JSON keys, API keywords
    and CLI options still work, with the same values."""
    import comem

    rc, out, err = cli("x3d-m", "-f", "json")
    d = json.loads(out)
    for old, new in (("count", "convention"), ("macs_per_step", "ops_per_step"), ("macs_per_clip", "ops_per_clip"),
                     ("macs_per_frame_avg", "ops_per_frame_avg")):
        assert d[old] == d[new], old
    for layer in d["layers"]:
        assert layer["count"] == layer["multiplicity"]
        assert layer["macs_per_clip"] == layer["ops_per_clip"]
    for stage in d["stages"]:
        assert stage["macs_per_step"] == stage["ops_per_step"]
    r_old = comem.analyze("x3d-m", count="fvcore")
    r_new = comem.analyze("x3d-m", convention="fvcore")
    assert r_old.convention == "fvcore" and r_old.ops_per_step == r_new.ops_per_step == r_new.macs_per_step
    assert r_new.macs("macs") == r_new.ops("macs")
    rc1, out1, _ = cli("x3d-m", "--count", "macs", "-f", "json")
    rc2, out2, _ = cli("x3d-m", "--convention", "macs", "-f", "json")
    assert rc1 == rc2 == 0 and json.loads(out1)["ops_per_step"] == json.loads(out2)["ops_per_step"]
