"""The console's sign-in, CSRF and refusals over real HTTP (the browser tests show the pages)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession, CookieJar

from tests.conftest import API_TOKEN, RunningService
from tests.integration.test_operator_api import get, return_update, shipped_order, validation, webhook


@pytest.fixture
async def browser(service: RunningService) -> AsyncIterator[ClientSession]:
    """A client that keeps cookies for 127.0.0.1, as a browser does."""
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        yield http


async def sign_in(service: RunningService, http: ClientSession, token: str = API_TOKEN) -> int:
    async with http.post(
        service.url + "/console/login", data={"operator": "erin", "token": token}, allow_redirects=False
    ) as r:
        return r.status


async def csrf_of(service: RunningService, http: ClientSession, path: str) -> str:
    async with http.get(service.url + path) as r:
        assert r.status == 200
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', await r.text())
    assert found
    return found.group(1)


async def a_return(service: RunningService) -> None:
    await shipped_order(service)
    for context in ("Initiate_Return", "CalculateRefund_Return", "Submit_Return"):
        assert (await webhook(service, "return-request-validation", validation(context, 2)))[0] == 200
    assert (await webhook(service, "return-request-update", return_update("R1")))[0] == 200


async def test_signed_out_the_console_asks_who_you_are(
    service: RunningService, browser: ClientSession
) -> None:
    async with browser.get(service.url + "/console/returns/R1", allow_redirects=False) as r:
        assert (r.status, r.headers["Location"]) == (303, "/console/login")
    async with browser.get(service.url + "/console") as r:
        assert r.status == 200 and str(r.url).endswith("/console/login")
    assert await sign_in(service, browser, token="wrong") == 401
    assert not browser.cookie_jar.filter_cookies(service.url + "/console/")


async def test_the_session_cookie_is_httponly_strict_and_no_token_in_a_url(
    service: RunningService, browser: ClientSession
) -> None:
    async with browser.post(
        service.url + "/console/login", data={"operator": "erin", "token": API_TOKEN}, allow_redirects=False
    ) as r:
        assert r.status == 303 and API_TOKEN not in r.headers["Location"]
        cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console/" in cookie
    assert API_TOKEN not in cookie


async def test_a_form_without_its_csrf_token_records_nothing(
    service: RunningService, browser: ClientSession
) -> None:
    await a_return(service)
    await sign_in(service, browser)
    before = len((await get(service, "/returns/R1/history"))["events"])
    async with browser.post(
        service.url + "/console/returns/R1/authorize", data={"rma": "X"}, allow_redirects=False
    ) as r:
        assert r.status == 403
    assert len((await get(service, "/returns/R1/history"))["events"]) == before


async def test_a_disallowed_action_posted_anyway_is_refused_and_records_nothing(
    service: RunningService, browser: ClientSession
) -> None:
    await a_return(service)
    await sign_in(service, browser)
    csrf = await csrf_of(service, browser, "/console/returns/R1")
    before = len((await get(service, "/returns/R1/history"))["events"])
    async with browser.post(service.url + "/console/returns/R1/refund_settle", data={"csrf": csrf}) as r:
        page = await r.text()
    assert "not allowed in state PENDING_CUSTOMER_ACTION" in page
    assert len((await get(service, "/returns/R1/history"))["events"]) == before


async def test_the_return_page_shows_the_validation_answers_and_the_order_page_links_it(
    service: RunningService, browser: ClientSession
) -> None:
    await a_return(service)
    await sign_in(service, browser)
    async with browser.get(service.url + "/console/returns/R1") as r:
        page = await r.text()
    answers = page[page.index('id="answers"') : page.index('id="calls"')]
    for context in ("Initiate_Return", "CalculateRefund_Return", "Submit_Return"):
        assert context in answers
    assert "REFUND_CALCULATED -&gt; RETURN_SUBMITTED" in answers and "returnable" in answers
    async with browser.get(service.url + "/console/?q=o20005") as r:
        assert str(r.url).endswith("/console/orders/o20005")
        assert 'href="/console/returns/R1"' in await r.text()
