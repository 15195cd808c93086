"""`comem import --pathways` and `--layout`: the importer's feeds from the command line."""
import json
import textwrap

import pytest

pytestmark = pytest.mark.validation

TWO_PATHWAYS = textwrap.dedent('''
    import torch
    from torch import nn

    class TwoPathways(nn.Module):
        """Takes [slow, fast] as pytorchvideo's SlowFast does."""

        def __init__(self):
            super().__init__()
            self.slow = nn.Conv3d(3, 8, (1, 3, 3), padding=(0, 1, 1), bias=False)
            self.fast = nn.Conv3d(3, 4, (3, 3, 3), padding=(1, 1, 1), bias=False)
            self.pool = nn.AdaptiveAvgPool3d(1)
            self.head = nn.Linear(12, 5)

        def forward(self, x):
            slow, fast = x
            y = torch.cat([self.pool(self.slow(slow)).flatten(1), self.pool(self.fast(fast)).flatten(1)], 1)
            return self.head(y)

    def make():
        return TwoPathways()
''')


def test_pathways_from_the_command_line(cli, tmp_path):
    (tmp_path / "net.py").write_text(TWO_PATHWAYS)
    code, out, err = cli("import", "net.py:make", "--input", "3x8x16x16", "--pathways", "4,1", "-f", "json",
                         cwd=tmp_path)
    assert code == 0, err
    d = json.loads(out)
    # by hand: slow conv 8*3*1*3*3 = 216, fast conv 4*3*3*3*3 = 324, head 12*5 + 5 = 65
    assert d["params"] == 216 + 324 + 65
    # --check measures the live module fed the same way (params, ptflops and fvcore per clip): every row agrees
    code, out, err = cli("import", "net.py:make", "--input", "3x8x16x16", "--pathways", "4,1", "--check",
                         cwd=tmp_path)
    assert code == 0 and "✗" not in out and out.count("✓") >= 3, out + err
    code, out, err = cli("import", "net.py:make", "--input", "3x8x16x16", "--pathways", "four", cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1 and "--pathways 'four'" in err


def test_layout_is_checked_against_the_input(cli, tmp_path):
    (tmp_path / "net.py").write_text(TWO_PATHWAYS)
    code, out, err = cli("import", "net.py:make", "--input", "3x8x16x16", "--layout", "CTVM", "--pathways", "4,1",
                         cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1
