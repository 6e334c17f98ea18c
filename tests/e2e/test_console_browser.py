"""The console in a real browser: Debian's Chromium, driven by Playwright, against `returnflow serve`.

One `returnflow serve` process and one browser for the module; each test signs in as its
own operator. Where Chromium is not installed the tests skip, except under CI=true
(`.ci/run` installs it), so a green CI run always means they ran.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.commerce_sim.webhook_sender import sign
from tests.conftest import free_port
from tests.kafka.broker import environment_says_ci

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("RETURNFLOW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "Y29uc29sZS10ZXN0LXNlY3JldA=="
TOKEN = "console-test-token"


class Server:
    def __init__(self, url: str) -> None:
        self.url = url

    def call(
        self, method: str, path: str, body: Any = None, operator: str | None = None, webhook: bool = False
    ) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if webhook:
            headers["X-Oracle-CC-WebHook-Signature"] = sign(data or b"", SECRET)
        else:
            headers["Authorization"] = f"Bearer {TOKEN}"
        if operator:
            headers["X-Operator"] = operator
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


def _example(name: str) -> Any:
    return json.loads((ROOT / "docs" / "examples" / f"{name}.json").read_text())


def another_return(number: str) -> Any:
    """The README's example return again, under another authorization number."""
    document = copy.deepcopy(_example("return-request-update"))
    document["return"]["authorizationNumber"] = number
    for item in document["return"]["returnItemList"]:
        item["id"] = number
    return document


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`returnflow serve` with the README's "Try it" data loaded."""
    work = tmp_path_factory.mktemp("console")
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
        "--api-token",
        TOKEN,
        "--webhook-secrets",
        SECRET,
        "--log-format",
        "json",
    ]
    with (work / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=ROOT, stdout=log, stderr=log, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
    running = Server(f"http://127.0.0.1:{port}")
    try:
        _wait_until_up(running, process)
        running.call("POST", "/webhooks/order-submit", _example("order-submit"), webhook=True)
        running.call(
            "POST", "/webhooks/return-request-update", _example("return-request-update"), webhook=True
        )
        yield running
    finally:
        process.terminate()
        process.wait(20)


def _wait_until_up(server: Server, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"returnflow serve exited with {process.returncode}")
        try:
            server.call("GET", "/healthz")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise RuntimeError("returnflow serve did not come up")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module (the only one that needs it): Playwright's sync API keeps an
    event loop running in this thread while it is open, which the asyncio tests after this
    module must not find."""
    if not shutil.which(CHROMIUM):
        if environment_says_ci():
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    yield context.new_page()
    context.close()


def sign_in(page: Any, server: Server, name: str) -> None:
    page.goto(server.url + "/console/")
    assert page.url.endswith("/console/login"), "signed out, the console asks who you are"
    page.fill("input[name=operator]", name)
    page.fill("input[name=token]", TOKEN)
    page.click("button.primary")
    assert page.inner_text("#operator") == name


def offered(page: Any) -> set[str]:
    return {form.get_attribute("data-action") for form in page.query_selector_all("form.action")}


def test_the_seed_scenario_shows_its_states_and_timeline(server: Server, page: Any, tmp_path: Path) -> None:
    server.call("POST", "/returns/100003/authorize", {"rma": "RMA-100003"}, operator="alice")
    for _ in range(2):
        server.call(
            "POST",
            "/returns/100003/receive",
            {"items": [{"returnItemId": "100003", "quantity": 1}]},
            operator="warehouse",
        )
    server.call(
        "POST",
        "/returns/100003/refund",
        {"action": "initiate", "amounts": {"paymentGroups": {"pg30412": "80.41"}}},
        operator="bob",
    )
    server.call("POST", "/returns/100003/refund", {"action": "settle"}, operator="bob")
    sign_in(page, server, "carol")
    page.fill("header input[name=q]", "100003")
    page.press("header input[name=q]", "Enter")
    page.wait_for_url("**/console/returns/100003")

    assert page.inner_text("#return-state") == "COMPLETE"
    machine = "svg[data-machine=return]"
    assert page.get_attribute(f"{machine} .state.current", "data-state") == "COMPLETE"
    taken = {
        (e.get_attribute("data-from"), e.get_attribute("data-to"))
        for e in page.query_selector_all(f"{machine} .edge.taken")
    }
    assert taken == {
        ("PENDING_CUSTOMER_ACTION", "PARTIAL_RETURN"),
        ("PARTIAL_RETURN", "FULL_RETURN"),
        ("FULL_RETURN", "PENDING_REFUND"),
        ("PENDING_REFUND", "COMPLETE"),
    }
    assert page.get_attribute("svg[data-machine=return_item] .state.current", "data-state") == "RETURNED"
    rows = page.query_selector_all("#timeline tr.event")
    assert [r.query_selector("td.actor").inner_text() for r in rows] == [
        "commerce-webhook",
        "operator:alice",
        "operator:warehouse",
        "operator:warehouse",
        "operator:bob",
        "operator:bob",
    ]
    assert "Received" in rows[0].inner_text() and "RefundSettled" in rows[-1].inner_text()
    assert "ItemsReceived" in rows[2].inner_text() and "+1 (1 received)" in rows[2].inner_text()
    assert offered(page) == set() and page.is_visible("#no-actions"), "nothing is allowed now"
    assert page.query_selector_all("#calls tr")[1:], "Commerce calls listed"
    page.screenshot(path=str(tmp_path / "console-return.png"), full_page=True)
    if os.environ.get("RETURNFLOW_SCREENSHOT_DIR"):
        page.screenshot(
            path=str(Path(os.environ["RETURNFLOW_SCREENSHOT_DIR"]) / "console-return.png"), full_page=True
        )

    page.click("#as-of-picker a[href='?version=3']")
    assert page.inner_text("#return-state") == "PARTIAL_RETURN"
    assert page.is_visible("#as-of")
    assert len(page.query_selector_all("#timeline tr.event")) == 3


def test_an_allowed_action_is_recorded_with_the_operators_name(server: Server, page: Any) -> None:
    server.call("POST", "/webhooks/return-request-update", another_return("100004"), webhook=True)
    sign_in(page, server, "dana")
    page.goto(server.url + "/console/returns/100004")
    assert page.inner_text("#return-state") == "PENDING_CUSTOMER_ACTION"
    assert offered(page) == {"authorize", "receive", "close"}, "no refund before the goods arrive"

    page.fill("form[data-action=authorize] input[name=rma]", "RMA-DANA")
    page.click("form[data-action=authorize] button")
    assert "Authorize: recorded as operator:dana" in page.inner_text("#done")
    last = page.query_selector_all("#timeline tr.event")[-1]
    assert last.query_selector("td.actor").inner_text() == "operator:dana"
    history = server.call("GET", "/returns/100004/history")["events"]
    assert (history[-1]["trigger"], history[-1]["actor"]) == ("authorize", "operator:dana")
    assert server.call("GET", "/returns/100004")["rma"] == "RMA-DANA"
    assert "refund_settle" not in offered(page)

    page.fill("form[data-action=receive] input[name='qty:100004']", "2")
    page.click("form[data-action=receive] button")
    assert page.inner_text("#return-state") == "FULL_RETURN"
    assert server.call("GET", "/returns/100004/history")["events"][-1]["actor"] == "operator:dana"
    assert offered(page) == {"refund_initiate", "refund_manual"}, "received in full: refund only"

    page.fill("form[data-action=refund_initiate] input[name='amount:pg30412']", "20.00")
    page.click("form[data-action=refund_initiate] button")
    assert page.inner_text("#return-state") == "PENDING_REFUND"
    assert "refund 20.00 USD to pg30412 20.00" in page.inner_text("#timeline")
    page.click("form[data-action=refund_settle] button")
    assert page.inner_text("#return-state") == "COMPLETE" and offered(page) == set()
    actors = [e["actor"] for e in server.call("GET", "/returns/100004/history")["events"]]
    assert actors == ["commerce-webhook"] + ["operator:dana"] * 4
