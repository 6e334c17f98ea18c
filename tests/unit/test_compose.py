"""Issue 23 item 2: `docker-compose.yml` is a valid Compose file (the specification's JSON Schema,
vendored in schema/, since CI has no Docker engine for `docker compose config`) and keeps its
production promises: data in named volumes, no secret with a working default, nothing but the
service published, the tests' Kafka, health checks and restart policies, locked dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SECRETS = (
    "POSTGRES_PASSWORD",
    "RETURNFLOW_WEBHOOK_SECRETS",
    "RETURNFLOW_API_TOKEN",
    "RETURNFLOW_COMMERCE_APP_KEY",
    "RETURNFLOW_COMMERCE_URL",
)
ONE_SHOT = {"kafka-topics"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8")))


def long_running(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if name not in ONE_SHOT}


def test_the_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = orjson.loads((ROOT / "schema" / "compose-spec.json").read_bytes())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(compose)
    ]
    assert errors == []


def test_the_schema_rejects_what_compose_would(compose: dict[str, Any]) -> None:
    """The check can fail: a misspelt key is refused."""
    schema = orjson.loads((ROOT / "schema" / "compose-spec.json").read_bytes())
    broken = {
        **compose,
        "services": {**compose["services"], "kafka": {**compose["services"]["kafka"], "helthcheck": {}}},
    }
    assert not jsonschema.Draft7Validator(schema).is_valid(broken)


def test_postgres_and_kafka_keep_their_data_in_named_volumes(compose: dict[str, Any]) -> None:
    named = set(compose.get("volumes") or {})
    mounts = {
        name: {
            str(v).split(":")[1]
            for v in compose["services"][name].get("volumes", [])
            if str(v).split(":")[0] in named
        }
        for name in ("postgres", "kafka")
    }
    assert mounts["postgres"] == {"/var/lib/postgresql/data"}
    assert mounts["kafka"] == {compose["services"]["kafka"]["environment"]["KAFKA_LOG_DIRS"]}


def test_only_the_service_is_published(compose: dict[str, Any]) -> None:
    for name in ("postgres", "kafka", "kafka-topics", "relay", "sync"):
        assert "ports" not in compose["services"][name], name
    published = " ".join(str(p) for s in compose["services"].values() for p in s.get("ports", []))
    assert "5432" not in published and "9092" not in published


def test_no_secret_has_a_default(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"(:?[-?+])?", text)
        assert uses, f"{name} is taken from the environment"
        assert set(uses) == {":?"}, f"{name} must be required (${{{name}:?…}}), never defaulted"
    for service in compose["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN|APP_KEY|STORE", key):
                assert re.search(r"\$\{\w+:\?", str(value)), f"{key} has a literal value"


def test_every_service_restarts_and_reports_its_health(compose: dict[str, Any]) -> None:
    for name, service in long_running(compose).items():
        assert service.get("restart") in ("always", "unless-stopped"), name
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), name
    assert compose["services"]["kafka-topics"]["restart"] == "on-failure"


def test_kafka_is_the_version_the_tests_run(compose: dict[str, Any]) -> None:
    pom = (ROOT / "tests" / "kafka" / "pom.xml").read_text(encoding="utf-8")
    tested = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert tested is not None
    images = {compose["services"][name]["image"] for name in ("kafka", "kafka-topics")}
    assert images == {f"apache/kafka:{tested.group(1)}"}


def test_topic_partitions_and_replication_are_variables() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert '--partitions "$${KAFKA_PARTITIONS}"' in text
    assert '--replication-factor "$${KAFKA_REPLICATION_FACTOR}"' in text
    for name in ("KAFKA_PARTITIONS", "KAFKA_REPLICATION_FACTOR"):
        assert "${" + name + ":-" in text


def test_the_image_is_non_root_and_installs_exactly_the_lock() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:[\d.]+-slim$", dockerfile, re.M)
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and not user[-1].startswith(("root", "0"))
    assert "pip install --require-hashes --no-deps -r requirements.lock" in dockerfile
    assert "pip install --no-deps ." in dockerfile


def test_the_lock_pins_every_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["postgres"]
    names = {re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in wanted}
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    pinned = {m.group(1).lower().replace("_", "-") for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==", lock, re.M)}
    assert names <= pinned, names - pinned
    assert all("--hash=sha256:" in block for block in lock.split("==")[1:])
