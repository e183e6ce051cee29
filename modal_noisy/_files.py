"""Writing files that a reader (an expert, a browser, a second run) may open at any moment."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_text_atomic"]


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and an atomic rename.

    A reader sees the old file or the whole new one, never a truncated or half-written one, and the
    file's modification time is set once. The parent folder is created when missing. Line endings are
    written as they are in ``text`` (no translation), so CSV text keeps its own.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)
    return path
