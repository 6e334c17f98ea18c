"""Shared bench plumbing: start servers in their own processes, drive them with wrk."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.serve_process import process_tree

SECRET = base64.b64encode(b"bench-secret").decode()
API_TOKEN = "bench-token"
HERE = Path(__file__).resolve().parent
_PIDS: dict[str, int] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sign(body: bytes) -> str:
    return base64.b64encode(hmac.new(base64.b64decode(SECRET), body, hashlib.sha512).digest()).decode()


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


@contextmanager
def process(
    argv: Sequence[str], port: int, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[None]:
    """`cwd`: where `python -m` finds the code (the working directory comes before PYTHONPATH)."""
    log_path = Path(tempfile.gettempdir()) / f"bench-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, env={**os.environ, **(env or {})}, cwd=cwd)
        _PIDS[local_url(port)] = proc.pid
        try:
            wait_for_port(port)
            yield
        finally:
            _PIDS.pop(local_url(port), None)
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def local_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def cpu_seconds(url: str) -> float:
    """CPU time (user + system, all threads) the server behind `url` has used so far, with
    its worker processes (`serve --workers N`)."""
    return sum(_process_cpu(pid) for pid in process_tree(_PIDS[url]))


def _process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def naive_server(store: str) -> Iterator[str]:
    port = free_port()
    with process([sys.executable, str(HERE / "naive_server.py"), str(port), store], port):
        yield local_url(port)


@contextmanager
def echo_server() -> Iterator[str]:
    port = free_port()
    with process([sys.executable, str(HERE / "echo_server.py"), str(port)], port):
        yield local_url(port)


@contextmanager
def returnflow_server(
    store_dir: Path,
    extra_env: dict[str, str] | None = None,
    nice: int = 0,
    store: str | None = None,
    workers: int = 1,
) -> Iterator[str]:
    """`nice`: run at a lower CPU priority (what `cpu_shares` does in docker-compose).
    `store`: a RETURNFLOW_STORE URL (default a SQLite file in `store_dir`)."""
    port = free_port()
    argv = [
        *(["nice", "-n", str(nice)] if nice else []),
        sys.executable,
        "-m",
        "service.cli",
        "serve",
        "--port",
        str(port),
        "--store",
        store or f"sqlite:///{store_dir / 'bench.db'}",
        "--webhook-secrets",
        SECRET,
        "--api-token",
        API_TOKEN,
        "--log-format",
        "json",
        "--workers",
        str(workers),
    ]
    with process(argv, port, extra_env):
        yield local_url(port)


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    total: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def write_requests(path: Path, requests: Sequence[tuple[str, bytes]]) -> None:
    """One request per line for wrk's Lua script: path, signature, body (no newlines in JSON)."""
    with path.open("wb") as f:
        for url_path, body in requests:
            f.write(url_path.encode() + b"\t" + sign(body).encode() + b"\t" + body + b"\n")


def wrk(url: str, requests_file: Path, *, seconds: int, connections: int, threads: int = 1) -> WrkResult:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the benchmarks: apt-get install -y wrk")
    env = {**os.environ, "REQUESTS_FILE": str(requests_file)}
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(HERE / "replay_requests.lua"),
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)\s*$", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)\s*$", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return WrkResult(rps, p50, p99, int(bad.group(1)) if bad else 0, total)
