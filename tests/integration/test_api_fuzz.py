"""Schemathesis fuzzes every documented operation of a real `returnflow serve` from the OpenAPI
document: no answer may be a server error, and each must be one the document describes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from service.api_description import document
from tests.conftest import free_port
from tests.e2e.test_console_browser import ROOT, Server, _wait_until_up

schema = schemathesis.openapi.from_dict(orjson.loads(document("openapi.json")))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Development mode (loopback, unsigned webhooks, open API): the fuzzer cannot sign."""
    work = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "service.cli",
        "serve",
        "--store",
        f"sqlite:///{work / 'rf.db'}",
        "--port",
        str(port),
        "--log-format",
        "json",
    ]
    env = {
        k: v for k, v in os.environ.items() if k not in ("RETURNFLOW_API_TOKEN", "RETURNFLOW_WEBHOOK_SECRETS")
    }
    with (work / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=ROOT, stdout=log, stderr=log, env={**env, "PYTHONPATH": str(ROOT)}
        )
    running = Server(f"http://127.0.0.1:{port}")
    try:
        _wait_until_up(running, process)
        yield running
    finally:
        process.terminate()
        process.wait(20)


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_fails_or_answers_off_the_document(case: schemathesis.Case, dev_server: Server) -> None:
    case.call_and_validate(base_url=dev_server.url, checks=CHECKS)
