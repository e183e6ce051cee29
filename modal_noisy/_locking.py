"""An exclusive, non-blocking advisory lock on a file: one run per journal, one run per report folder.

The lock belongs to the open lock file, so a process that dies, however abruptly, releases it, and the
lock file left behind is harmless. It is keyed by the lock file's resolved real path: a journal or a
folder reached through a symbolic link is locked under the same name as its target. Advisory, and
only where :mod:`fcntl` exists (POSIX); elsewhere it does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks there
    fcntl = None

__all__ = ["LockHeld", "exclusive_lock"]


class LockHeld(RuntimeError):
    """Another open lock holds the file (another process, or another run in this one)."""


@contextmanager
def exclusive_lock(lock_path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created when missing) for the block.

    Parameters
    ----------
    lock_path : path-like
        The lock file; its folder must exist.
    what : str
        What the lock protects, for the message (e.g. ``"journal 'run/journal.jsonl'"``).

    Raises
    ------
    LockHeld
        At once, when another open lock holds it; the message names the holder's process id.
    """
    if fcntl is None:
        yield
        return
    path = Path(lock_path).resolve()
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise LockHeld(
                f"{what} is in use by another run (process {holder}); wait for it to finish, or use "
                "another path"
            ) from None
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
