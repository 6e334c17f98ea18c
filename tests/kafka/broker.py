"""The real Kafka broker under test: a thin Python handle on tests/kafka/broker.sh.

The shell script owns installing, formatting, starting and stopping (so CI, a developer's
shell and pytest run the very same broker); this module adds what only a client can check:
that the broker answers a real metadata request, not merely that its port is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

SCRIPT = Path(__file__).with_name("broker.sh")


class BrokerError(RuntimeError):
    """broker.sh failed; the message carries its output so the reason is visible in the test run."""


def free_port() -> int:
    """A port the kernel just handed out on loopback: free now, and unlikely to be taken next."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*args: str, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    """Run broker.sh; raise BrokerError with its stdout+stderr if it fails."""
    try:
        done = subprocess.run(
            ["bash", str(SCRIPT), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired as exc:
        raise BrokerError(f"broker.sh {' '.join(args)} timed out after {timeout}s") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        raise BrokerError(f"broker.sh {' '.join(args)} failed (exit {done.returncode}):\n{output}")
    return done.stdout


class KafkaBroker:
    """One single-node KRaft broker kept in `directory`; stop/start keeps its data and port."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = Path(directory)
        self.port = port or free_port()
        self._may_move = port is None  # our own pick may be taken before the JVM binds it

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / "broker.log"

    @staticmethod
    def install() -> None:
        """Fetch the jars once (seconds from Maven Central, instant once cached)."""
        _run("install")

    def start(self, timeout: float = 60) -> None:
        """Start (or restart on the same data) and return once a metadata request succeeds.

        Synchronous on purpose (it runs its own event loop for the readiness check): from
        async tests call it via `asyncio.to_thread`.
        """
        for attempt in range(3):
            try:
                _run(
                    "start",
                    str(self.directory),
                    str(self.port),
                    timeout=timeout + 30,
                    env={"RETURNFLOW_KAFKA_START_TIMEOUT": str(max(1, round(timeout)))},
                )
                break
            except BrokerError as exc:
                # free_port() races with every other process picking ports: before the first
                # successful start, move to fresh ports instead of failing the whole session.
                if not self._may_move or attempt == 2 or "in use" not in str(exc):
                    raise
                self.port = free_port()
                (self.directory / "controller.port").unlink(missing_ok=True)
        self._may_move = False
        try:
            asyncio.run(self.wait_ready(timeout))
        except BrokerError:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop by the recorded PID (SIGTERM, then SIGKILL); the data stays for a restart."""
        _run("stop", str(self.directory), timeout=120)

    def restart(self) -> None:
        """A clean stop and start on the same data, port and controller port."""
        self.stop()
        self.start()

    def is_running(self) -> bool:
        """Whether the recorded PID is alive and is this directory's broker."""
        try:
            _run("status", str(self.directory), timeout=30)
        except BrokerError:
            return False
        return True

    def log_tail(self, lines: int = 40) -> str:
        """The end of broker.log, for error messages."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def wait_ready(self, timeout: float = 60) -> None:
        """Ready means the broker answers a metadata request, not just that its port accepts."""
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
            try:
                await admin.start()
                await admin.list_topics()
                return
            except (TimeoutError, KafkaError, OSError) as exc:
                last = exc
                await asyncio.sleep(0.2)
            finally:
                with contextlib.suppress(Exception):
                    await admin.close()
        raise BrokerError(
            f"Kafka at {self.bootstrap} did not answer metadata within {timeout}s: "
            f"{last!r}\n{self.log_tail()}"
        )

    async def create_topics(self, names: Iterable[str], partitions: int = 3, timeout: float = 30) -> None:
        """Create topics (auto-creation is off) and wait until every partition has a leader.

        Existing topics are left as they are. CreateTopics reports errors per topic instead of
        raising, and a topic is only usable once its leaders show up in metadata.
        """
        wanted = list(dict.fromkeys(names))
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=15_000)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            new = [
                NewTopic(name, num_partitions=partitions, replication_factor=1)
                for name in wanted
                if name not in existing
            ]
            if new:
                response = await admin.create_topics(new)
                for topic, code, *rest in response.topic_errors:
                    if code not in (0, TopicAlreadyExistsError.errno):
                        raise for_code(code)(f"creating topic {topic!r}: {rest[0] if rest else ''}")
            deadline = time.monotonic() + timeout
            while True:
                described = await admin.describe_topics(wanted)
                if all(
                    t["error_code"] == 0
                    and t["partitions"]
                    and all(p["leader"] >= 0 for p in t["partitions"])
                    for t in described
                ):
                    return
                if time.monotonic() > deadline:
                    raise BrokerError(f"topics {wanted} have no leaders after {timeout}s: {described}")
                await asyncio.sleep(0.1)
        finally:
            await admin.close()


def environment_says_ci() -> bool:
    """CI must never silently skip the Kafka tests."""
    return os.environ.get("CI", "").lower() in {"true", "1", "yes"}
