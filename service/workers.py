"""`returnflow serve --workers N`: N processes answering on one listening socket.

Python runs one thread of Python at a time, so a bigger machine is used by more
processes, not more threads. The parent binds the socket once, forks the
workers (before it starts any thread or event loop of its own), and only
supervises: a worker that dies is started again, and SIGTERM/SIGINT are passed
on so each worker finishes its requests. The kernel hands each connection to
whichever worker accepts first, so a busy worker takes fewer. Workers share
nothing in memory: each has its own store connection, writer and caches, and
they learn of each other's writes as separate processes do (the change notice
on SQLite, the notification log on PostgreSQL).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

import structlog

log = structlog.get_logger(__name__)

RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)
"""Waits before starting a worker again that died soon after its start (a crash loop)."""

Worker = Callable[[socket.socket, int], None]
PR_SET_PDEATHSIG = 1


def listen(host: str, port: int) -> socket.socket:
    sock = socket.create_server((host, port), backlog=1024)
    sock.set_inheritable(True)
    return sock


def _die_with(parent: int) -> None:
    """A worker ends (SIGTERM) when its supervisor does, however it ends: a SIGKILLed `serve`
    must not leave workers holding the port, the store and the single-process duties."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("worker_parent_death_signal_unavailable", errno=ctypes.get_errno())
    if os.getppid() != parent:
        os._exit(0)


class Supervisor:
    def __init__(self, sock: socket.socket, count: int, worker: Worker) -> None:
        self.sock = sock
        self.count = count
        self.worker = worker
        self.children: dict[int, tuple[int, float]] = {}
        """pid -> (worker index, start time)"""
        self.restarts = 0
        self._stopping = False

    def run(self) -> int:
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self.count):
                self._start(index)
            while self.children:
                self._reap()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.sock.close()
        return 0

    def _start(self, index: int) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, signal.SIG_DFL)
                _die_with(parent)
                self.worker(self.sock, index)
                code = 0
            except BaseException:
                log.exception("worker_failed", worker=index)
            finally:
                os._exit(code)
        self.children[pid] = (index, time.monotonic())
        log.info("worker_started", worker=index, pid=pid)

    def _reap(self) -> None:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            self.children.clear()
            return
        except InterruptedError:
            return
        index, started = self.children.pop(pid, (-1, 0.0))
        if self._stopping or index < 0:
            return
        lived = time.monotonic() - started
        log.error(
            "worker_died",
            worker=index,
            pid=pid,
            status=os.waitstatus_to_exitcode(status),
            lived_s=round(lived, 1),
        )
        if lived < 10:
            time.sleep(RESTART_BACKOFF_S[min(self.restarts, len(RESTART_BACKOFF_S) - 1)])
        self.restarts += 1
        if not self._stopping:
            self._start(index)

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
