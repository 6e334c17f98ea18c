"""The real Kafka broker under test, driven through broker.sh."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

SCRIPT = Path(__file__).with_name("broker.sh")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class KafkaBroker:
    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @staticmethod
    def install() -> None:
        subprocess.run(["bash", str(SCRIPT), "install"], check=True)

    def start(self, timeout: float = 60) -> None:
        subprocess.run(["bash", str(SCRIPT), "start", str(self.directory), str(self.port)],
                       check=True)
        asyncio.run(self.wait_ready(timeout))

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop", str(self.directory)], check=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    async def wait_ready(self, timeout: float = 60) -> None:
        """Ready means a metadata request answers, not just an open port."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
            try:
                await admin.start()
                await admin.list_topics()
                return
            except (KafkaError, OSError) as exc:
                last = exc
                await asyncio.sleep(0.3)
            finally:
                await admin.close()
        raise RuntimeError(f"Kafka at {self.bootstrap} not ready: {last!r}")

    async def create_topics(self, names: list[str], partitions: int = 3) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
            )
        except TopicAlreadyExistsError:
            pass
        finally:
            await admin.close()
