"""A real PostgreSQL server under test: Debian's `postgresql`, a private cluster on a free port.

Started once per test session (like the Kafka broker): `initdb` into a temporary
directory, `pg_ctl start` on 127.0.0.1, trust authentication for the role
`returnflow`. PostgreSQL refuses to run as root, so as root the cluster belongs
to the `postgres` OS user the package creates. Each test gets a database of its
own (`create_database`), which is cheap (a copy of template1). For the tests
durability is relaxed (`fsync=off`): they check behaviour, not crash safety of the
disk; benchmarks ask for a `durable` server, as SQLite's store is (synchronous=FULL).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

USER = "returnflow"


class PostgresError(RuntimeError):
    """The server could not be installed or started; the message says why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, or Debian's versioned directory."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


def install() -> Path:
    """Debian's package when the binaries are missing (as root, like the broker's Java)."""
    found = bin_dir()
    if found is not None:
        return found
    if os.geteuid() != 0:
        raise PostgresError("PostgreSQL is not installed: apt-get install -y postgresql")
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if done.returncode != 0:
            raise PostgresError(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
    found = bin_dir()
    if found is None:
        raise PostgresError("postgresql installed, but no pg_ctl was found")
    return found


class PostgresServer:
    def __init__(self, port: int | None = None, *, durable: bool = False) -> None:
        self.durable = durable
        self.bin = install()
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="returnflow-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")

    def _run(self, *argv: str, timeout: float = 60) -> str:
        kwargs: dict[str, Any] = {"user": "postgres"} if self._as_postgres else {}
        done = subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.directory,
            **kwargs,
        )
        if done.returncode != 0:
            raise PostgresError(f"{argv[0]} failed ({done.returncode}): {done.stdout}{done.stderr}")
        return done.stdout

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", USER, "-E", "UTF8", "--no-sync")
        relaxed = "" if self.durable else ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off ")
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            f"{relaxed}-c max_connections=300"
        )
        try:
            self._run(
                "pg_ctl",
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                "start",
                timeout=90,
            )
        except PostgresError as exc:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PostgresError(f"{exc}\n{tail}") from exc

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A fresh database; its URL is what RETURNFLOW_STORE takes."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def wait_ready(server: PostgresServer, timeout: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(server.url(), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
