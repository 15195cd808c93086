"""The output cache: a repeated ``comem MODEL ...`` analysis answered without
importing the engine.

An analysis is a pure function of comem's code, its built-in specs, the
command line and the few environment settings the output depends on; its
text is kept under ``$XDG_CACHE_HOME/comem`` (``~/.cache/comem``), keyed by a
hash of all of them (every source and spec file's size and modification
time included), and replayed byte for byte.  Only the main job of a built-in
model is cached (never a spec file, which may extend others, and never a
command that measures, writes files or runs user code); only a run that
succeeded with nothing on stderr is stored.  ``COMEM_CACHE=0`` turns it off.
This module imports nothing beyond the standard library's basics: a hit
costs a directory scan and one read.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys

#: entries kept at most (the oldest are removed)
MAX_ENTRIES = 256
#: environment settings an analysis's text depends on
_ENV = ("NO_COLOR", "COLUMNS", "TERM", "COMEM_DEBUG")


def _enabled() -> bool:
    return os.environ.get("COMEM_CACHE", "1") not in ("0", "false", "no", "off")


def _cacheable(args: list) -> bool:
    """The main job of a built-in model by name: ``comem NAME [options]``."""
    from comem.cli import COMMANDS

    if not args or not _enabled():
        return False
    model = args[0]
    if model.startswith("-") or model in COMMANDS:
        return False
    if "/" in model or os.sep in model or model.endswith(".toml") or os.path.exists(model):
        return False
    return not any(a in ("-h", "--help", "--version") or a.startswith("--out") or a == "-o" for a in args)


def _tree_signature(h) -> None:
    """Size and modification time of every file of comem's code and specs."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    roots = [package]
    outside = os.path.join(os.path.dirname(package), "specs")  # a source checkout's specs/
    if not os.path.isdir(os.path.join(package, "specs")) and os.path.isdir(outside):
        roots.append(outside)
    for root in roots:
        stack = [root]
        while stack:
            folder = stack.pop()
            with os.scandir(folder) as entries:
                for e in sorted(entries, key=lambda e: e.name):
                    if e.is_dir(follow_symlinks=False):
                        if e.name != "__pycache__":
                            stack.append(e.path)
                    elif e.name.endswith((".py", ".toml")):
                        st = e.stat()
                        h.update(f"{e.path}:{st.st_size}:{st.st_mtime_ns}\n".encode())


def _path(args: list) -> str | None:
    from comem import __version__

    h = hashlib.sha256()
    h.update(f"{__version__}\n{sys.version}\n".encode())
    h.update("\0".join(args).encode() + b"\n")
    h.update(repr([(k, os.environ.get(k)) for k in _ENV]).encode())
    h.update(f"tty={sys.stdout.isatty()}\n".encode())
    _tree_signature(h)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "comem", h.hexdigest()[:40] + ".out")


def replay(args: list) -> bool:
    """Write the cached output of ``args`` and say whether there was one."""
    if not _cacheable(args):
        return False
    try:
        path = _path(args)
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    out = sys.stdout
    out.flush()
    (out.buffer if hasattr(out, "buffer") else out).write(data)
    out.flush()
    return True


class _Tee(io.TextIOBase):
    """stdout that also keeps what was written."""

    def __init__(self, stream):
        self.stream, self.parts = stream, []

    def write(self, text):
        written = self.stream.write(text)  # bytes raise here as on any text stream (click probes with b"")
        self.parts.append(text)
        return written

    def flush(self):
        self.stream.flush()

    def isatty(self):
        return self.stream.isatty()

    @property
    def encoding(self):
        return self.stream.encoding

    def fileno(self):
        return self.stream.fileno()


@contextlib.contextmanager
def recording(args: list):
    """Run the command; store its output if it is cacheable and succeeded
    with nothing written to stderr."""
    if not _cacheable(args):
        yield
        return
    out, err = sys.stdout, sys.stderr
    tee, err_tee = _Tee(out), _Tee(err)
    sys.stdout, sys.stderr = tee, err_tee
    ok = False
    try:
        yield
        ok = True
    except SystemExit as exc:
        ok = exc.code in (None, 0)
        raise
    finally:
        sys.stdout, sys.stderr = out, err
        if ok and not "".join(err_tee.parts):
            _store(args, "".join(tee.parts))


def _store(args: list, text: str) -> None:
    try:
        path = _path(args)
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding=sys.stdout.encoding or "utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
        entries = sorted((e for e in os.scandir(folder) if e.name.endswith(".out")), key=lambda e: e.stat().st_mtime)
        for e in entries[:-MAX_ENTRIES]:
            os.unlink(e.path)
    except OSError:
        pass  # a cache that cannot be written is no cache, not an error
