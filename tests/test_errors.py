"""Error messages name inputs in the caller's terms: Python arguments for the
API, options for the CLI (issue: library messages named CLI flags)."""
import pytest

import comem
from comem.errors import ComemError, arg


def test_a_message_names_the_python_argument_or_the_option():
    e = ComemError(f"drop {arg('size')}; or give {arg('budget_bytes', '--budget')}")
    assert str(e) == "drop size; or give budget_bytes"
    assert e.cli_message() == "drop --size; or give --budget"
    # quoted inside another error, both forms survive
    outer = ComemError(f"x3d-m at clip 4: {e}")
    assert str(outer) == "x3d-m at clip 4: drop size; or give budget_bytes"
    assert outer.cli_message() == "x3d-m at clip 4: drop --size; or give --budget"


def test_the_api_and_the_cli_word_one_error_each_their_way(cli):
    from comem.analyses.solve import solve

    with pytest.raises(ComemError) as exc:
        solve("x3d-m", "size")
    assert "--" not in str(exc.value) and "budget_bytes" in str(exc.value)
    code, out, err = cli("solve", "x3d-m", "--for", "size")
    assert code == 2 and "--budget" in err and "budget_bytes" not in err
    with pytest.raises(ComemError, match="drop size$"):
        comem.analyze("oadtr", size=16)
