"""A token beside the SQLite store that every writer replaces after each commit.

A process that answers from a cache (the validation role) must see every
write another process acknowledged before the question arrived. Asking SQLite
(`MAX(rowid)`, a read transaction) before each question cost about a fifth of
the validation webhook's time; reading eight bytes of a file costs little.

A writer commits, then writes a fresh random token, then acknowledges. So a
reader that finds the token it saw at its last look at the store knows nothing
acknowledged since then has escaped it. The token is only a hint that something
changed: the store stays the authority. Tokens are random rather than counted,
so a write that tears against another, or a read that tears against a write,
yields a value no reader has seen (a counter could tear back into an old one),
and writers need no lock. Plain reads and writes, not a mapping: a file
truncated under a mapping would kill every process that maps it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

TOKEN_BYTES = 8


class ChangeNoticeError(OSError):
    """The token file cannot be shared: writes would go unannounced to other processes."""


def notice_path(database: str) -> Path:
    """`<store file>-changes` beside the real file (symlinks resolved), as SQLite's `-wal`."""
    return Path(os.path.realpath(database) + "-changes")


class ChangeNotice:
    """The token file; shared by every process on the host that opens the same store."""

    def __init__(self, path: Path, mode: int = 0o644) -> None:
        """`mode`: for a file this creates (give it the database's, as SQLite does its own)."""
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            self._fd = os.open(path, os.O_RDWR)
        else:
            os.fchmod(self._fd, mode)
            self.announce()

    @classmethod
    def beside(cls, database: str) -> ChangeNotice:
        path = notice_path(database)
        try:
            try:
                mode = stat.S_IMODE(os.stat(database).st_mode) & 0o666
            except FileNotFoundError:
                mode = 0o644
            return cls(path, mode)
        except OSError as exc:
            raise ChangeNoticeError(
                f"cannot open {path} for reading and writing ({exc.strerror}); every process "
                "writing the store must, to tell the others what it committed: give it the "
                "store file's owner and permissions"
            ) from exc

    def token(self) -> bytes:
        return os.pread(self._fd, TOKEN_BYTES, 0)

    def announce(self) -> None:
        """After a commit, before it is acknowledged."""
        os.pwrite(self._fd, os.urandom(TOKEN_BYTES), 0)

    def close(self) -> None:
        os.close(self._fd)
