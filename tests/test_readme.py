"""The README cannot drift from the program.

Every ``comem ...`` command in the README's ``bash`` and ``console`` blocks
is run here, in a scratch folder holding the files the README tells a
reader to create (``models.py`` from its worked example, ``path/to/my-net.toml``
from *Writing a spec*).  A command must succeed; the numbers a command's
comment claims (``# 168/168 checks``, ``# 44,583,912 floats of state``)
must appear in what it prints; a ``console`` block's output must be what the
command prints, line for line, where a line ``...`` stands for any number of
lines (an explicit elision).  Commands that need the ``validate`` extra
(``import``, ``validate``, ``bench``, and those reading the spec ``import``
writes) are validation tests; ``--device cuda`` without a GPU must say so in
one line.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import run_cli

README = Path(__file__).resolve().parent.parent / "README.md"


@dataclass
class Command:
    line: int
    argv: list
    comment: str = ""
    shown: list | None = None           # a console block's output lines
    marks: list = field(default_factory=list)

    @property
    def id(self):
        text = " ".join(self.argv)
        return f"L{self.line}:{text[:70]}"


def _blocks(text):
    """(language, first line number, lines) of each fenced block."""
    out, lang, start, buf = [], None, 0, None
    for i, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            if buf is None:
                lang, start, buf = line[3:].strip(), i + 1, []
            else:
                out.append((lang, start, buf))
                buf = None
        elif buf is not None:
            buf.append(line)
    return out


def _split(command_text):
    """argv and the trailing comment of one shell command line."""
    lex = shlex.shlex(command_text, posix=True, punctuation_chars=False)
    lex.whitespace_split = True
    lex.commenters = ""
    argv, comment = [], ""
    m = re.search(r"\s#\s?(.*)$", command_text)
    body = command_text
    if m and command_text[:m.start()].count("'") % 2 == 0 and command_text[:m.start()].count('"') % 2 == 0:
        body, comment = command_text[:m.start()], m.group(1).strip()
    argv = shlex.split(body)
    return argv, comment


def readme_commands(text=None):
    text = README.read_text(encoding="utf-8") if text is None else text
    cmds = []
    for lang, start, lines in _blocks(text):
        if lang == "bash":
            joined, first = "", None
            for j, line in enumerate(lines):
                first = start + j if first is None else first
                if line.rstrip().endswith("\\"):
                    joined += line.rstrip()[:-1] + " "
                    continue
                joined += line
                for part in joined.split("&&"):
                    part = part.strip()
                    if part.startswith("comem "):
                        argv, comment = _split(part)
                        cmds.append(Command(first, argv, comment))
                joined, first = "", None
        elif lang == "console":
            current = None
            for j, line in enumerate(lines):
                if line.startswith("$ "):
                    argv, comment = _split(line[2:])
                    current = Command(start + j, argv, comment, []) if argv[0] == "comem" else None
                    if current is not None:
                        cmds.append(current)
                elif current is not None:
                    current.shown.append(line)
    return cmds


def matches_with_elisions(shown, actual):
    """``shown`` (lines, ``...`` eliding any number of lines) against ``actual``."""
    shown = [s.rstrip() for s in shown]
    actual = [a.rstrip() for a in actual]
    while shown and not shown[-1]:
        shown.pop()
    while actual and not actual[-1]:
        actual.pop()
    segments, seg = [], []
    for s in shown:
        if s == "...":
            segments.append(seg)
            seg = []
        else:
            seg.append(s)
    segments.append(seg)
    pos = 0
    for k, seg in enumerate(segments):
        if not seg:
            continue
        anchored = k == 0
        found = None
        for start in ([pos] if anchored else range(pos, len(actual) - len(seg) + 1)):
            if actual[start:start + len(seg)] == seg:
                found = start
                break
        if found is None:
            return False, seg
        pos = found + len(seg)
    if segments[-1] and pos != len(actual):
        return False, ["(more output than shown, and no trailing '...')"]
    return True, None


#: what a comment claims: numbers (44,583,912 / 12/12 / 1.61 / 4.71) and a verdict (PASS, FAIL)
_CLAIM = re.compile(r"\d{1,3}(?:,\d{3})+|\d+/\d+|\d+\.\d+|\bPASS\b|\bFAIL\b")

NEEDS_TORCH = {"import", "validate", "bench", "calibrate"}


def _needs_torch(cmd):
    return cmd.argv[1] in NEEDS_TORCH or any("tiny-x3d.toml" in a or "this-machine.toml" in a for a in cmd.argv) \
        or "--check" in cmd.argv


def _params():
    out = []
    for cmd in readme_commands():
        marks = []
        if _needs_torch(cmd):
            marks.append(pytest.mark.validation)
        if cmd.argv[1] == "bench" and "--size" not in cmd.argv and "cuda" not in cmd.argv:
            marks.append(pytest.mark.slow)   # a default-size benchmark
        if cmd.argv[1] == "calibrate" or any("this-machine.toml" in a for a in cmd.argv[2:]):
            marks.append(pytest.mark.slow)   # timing this machine, and what reads its profile
        out.append(pytest.param(cmd, marks=marks, id=cmd.id))
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A scratch folder with the files the README asks a reader to write."""
    d = tmp_path_factory.mktemp("readme")
    blocks = _blocks(README.read_text(encoding="utf-8"))
    (models,) = [b for lang, _, b in blocks if lang == "python" and any("def make_model" in ln for ln in b)]
    (d / "models.py").write_text("\n".join(models) + "\n")
    (spec,) = [b for lang, _, b in blocks if lang == "toml" and any('name = "tiny-c3d"' in ln for ln in b)]
    (d / "path" / "to").mkdir(parents=True)
    (d / "path" / "to" / "my-net.toml").write_text("\n".join(spec) + "\n")
    return d


@pytest.fixture(scope="module")
def tiny_spec(workdir):
    """tiny-x3d.toml, written the way the README writes it (its own import command)."""
    _validate_extra()
    (cmd,) = [c for c in readme_commands() if c.argv[1] == "import" and "-o" in c.argv]
    rc, out, err = run_cli(*cmd.argv[1:], cwd=workdir)
    assert rc == 0, err
    return workdir / "tiny-x3d.toml"


def test_the_readme_shows_commands_and_elides_explicitly():
    cmds = readme_commands()
    assert len(cmds) > 40
    shown = [c for c in cmds if c.shown is not None]
    assert shown and all(c.shown for c in shown)


def test_elisions_match_only_what_they_say():
    assert matches_with_elisions(["a", "...", "d"], ["a", "b", "c", "d"])[0]
    assert not matches_with_elisions(["a", "d"], ["a", "b", "c", "d"])[0]
    assert not matches_with_elisions(["a", "...", "x"], ["a", "b"])[0]
    assert matches_with_elisions(["a", "..."], ["a", "b"])[0]
    assert not matches_with_elisions(["b", "..."], ["a", "b"])[0]


def _validate_extra():
    """Skip (a failure under COMEM_REQUIRE_VALIDATION=1) without the validate extra."""
    for name in ("torch", "continual", "ptflops", "fvcore"):
        pytest.importorskip(name)


@pytest.mark.parametrize("cmd", _params())
def test_readme_command(cmd, workdir, request):
    if _needs_torch(cmd):
        _validate_extra()
        if any("tiny-x3d.toml" in a for a in cmd.argv) and "-o" not in cmd.argv:
            request.getfixturevalue("tiny_spec")
    rc, out, err = run_cli(*cmd.argv[1:], cwd=workdir, timeout=600)
    if "cuda" in cmd.argv and rc == 2 and "no CUDA device" in err:
        assert len(err.strip().splitlines()) == 1   # a machine without a GPU: one line that says so
        return
    assert rc == 0, (cmd.argv, err)
    text = out + err
    for claim in _CLAIM.findall(cmd.comment):
        assert claim in text, f"README line {cmd.line} claims {claim!r}; the command printed:\n{out[-2000:]}"
    if cmd.shown is not None:
        ok, missing = matches_with_elisions(cmd.shown, out.splitlines())
        assert ok, (f"README line {cmd.line}: the shown output differs from the real one at:\n" + "\n".join(missing)
                    + "\n--- the command printed:\n" + out[:4000])
