"""A token beside the SQLite store that every writer replaces after each commit.

A process that answers from a cache (the validation role) must see every
write another process acknowledged before the question arrived. Asking SQLite
(`MAX(rowid)`, a read transaction) before each question cost about a fifth of
the validation webhook's time; comparing eight mapped bytes costs nothing.

A writer commits, then writes a fresh random token, then acknowledges. So a
reader that finds the token it saw at its last look at the store knows nothing
acknowledged since then has escaped it. The token is only a hint that something
changed: the store stays the authority. Tokens are random rather than counted,
so a write that tears against another, or a read that tears against a write,
yields a value no reader has seen (a counter could tear back into an old one),
and writers need no lock.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

TOKEN_BYTES = 8


def notice_path(database: str) -> Path:
    """`<store file>-changes`, the way SQLite names its `-wal` and `-shm` beside it."""
    return Path(f"{database}-changes")


class ChangeNotice:
    """The mapped token file; shared by every process on the host that opens the same store."""

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < TOKEN_BYTES:
                os.ftruncate(fd, TOKEN_BYTES)
            self._map = mmap.mmap(fd, TOKEN_BYTES)
        finally:
            os.close(fd)

    @classmethod
    def beside(cls, database: str) -> ChangeNotice | None:
        """None where the token cannot be shared (a read-only directory): readers then ask the store."""
        try:
            return cls(notice_path(database))
        except OSError:
            return None

    def token(self) -> bytes:
        return self._map[:TOKEN_BYTES]

    def announce(self) -> None:
        """After a commit, before it is acknowledged."""
        self._map[:TOKEN_BYTES] = os.urandom(TOKEN_BYTES)

    def close(self) -> None:
        self._map.close()
