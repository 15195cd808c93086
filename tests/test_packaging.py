"""The wheel holds every package: discovery, never a hand-written list.

CI (.ci/run) also builds the wheel and runs `comem import` and the Python API from a
non-editable install; this test catches the drift earlier, without building."""
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _packages_setup_declares():
    out = subprocess.run(
        [sys.executable, "-c",
         "import setuptools, runpy; seen = {};"
         "setuptools.setup = lambda **kw: seen.update(kw);"
         "runpy.run_path('setup.py'); print('\\n'.join(seen['packages']))"],
        cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_every_code_folder_is_a_package_of_the_wheel():
    declared = _packages_setup_declares()
    on_disk = {".".join(p.parent.relative_to(ROOT).parts)
               for p in (ROOT / "comem").rglob("*.py") if "__pycache__" not in p.parts}
    assert on_disk <= declared, f"not in the wheel: {sorted(on_disk - declared)}"


def test_every_spec_folder_ships_with_its_toml_files():
    declared = _packages_setup_declares()
    folders = {p.parent for p in (ROOT / "specs").rglob("*.toml")}
    for folder in folders:
        name = ".".join(("comem", *folder.relative_to(ROOT).parts))
        assert name in declared, f"{folder} is not shipped"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools_cfg = pyproject["tool"]["setuptools"]
    assert "packages" not in setuptools_cfg, "packages are discovered by setup.py, not listed"
    assert "*.toml" in setuptools_cfg["package-data"]["*"]
