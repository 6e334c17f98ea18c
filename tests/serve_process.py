"""`returnflow serve` as a process of its own, for the tests that need real processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a `serve --workers N` supervisor and its workers)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            found += process_tree(int(child))
    return found


@contextlib.contextmanager
def serve_process(store: str, port: int, log: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """Development mode (no RETURNFLOW_* from the caller: unsigned webhooks, an open API), JSON
    logs to `log`; stopped with SIGTERM at the end, killed if it will not stop."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNFLOW_")}
    argv = [
        sys.executable,
        "-m",
        "service.cli",
        "serve",
        "--store",
        store,
        "--port",
        str(port),
        "--log-format",
        "json",
        *extra,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out, env=env)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
