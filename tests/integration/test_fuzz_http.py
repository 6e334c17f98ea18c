"""Structure-aware fuzzing of the three webhooks and the operator API, over real loopback HTTP
into the real service on a real SQLite file (issue 14).

Each case is a realistic body, valid or with one leaf broken (tests/fuzz/strategies.py), and
`tests/fuzz/oracle.py` holds every answer to the rules: never a 5xx, every 4xx an errorModel,
a refusal stores nothing, an acceptance round-trips and keeps no bad number. A few hundred
cases here; `python tests/bench/fuzz.py` runs 10,000+ and prints the counts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import oracle
from tests.fuzz.live import LiveService
from tests.fuzz.strategies import VALID, Case, mutated

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with LiveService(tmp_path_factory.mktemp("fuzz")) as service:
        oracle.prepare(service)
        yield service


def valid_or_broken(kind: str) -> st.SearchStrategy[Case]:
    return st.one_of(VALID[kind], mutated(VALID[kind]), mutated(VALID[kind]))


def _holds(live: LiveService, case: Case) -> None:
    outcome = oracle.run(live, case)
    assert not outcome.problems, (case.kind, case.leaf, case.mutation, outcome)


@FUZZ
@given(case=valid_or_broken("order-submit"))
def test_order_submit_fuzz(live: LiveService, case: Case) -> None:
    _holds(live, case)


@FUZZ
@given(case=valid_or_broken("return-request-update"))
def test_return_request_update_fuzz(live: LiveService, case: Case) -> None:
    _holds(live, case)


@FUZZ
@given(case=valid_or_broken("return-request-validation"))
def test_return_request_validation_fuzz(live: LiveService, case: Case) -> None:
    _holds(live, case)


@FUZZ
@given(case=valid_or_broken("operator"))
def test_operator_api_fuzz(live: LiveService, case: Case) -> None:
    _holds(live, case)


def test_the_oracle_catches_a_stored_bad_number(live: LiveService) -> None:
    """The oracle itself can fail: a view with a negative quantity is reported."""
    assert oracle.negative_numbers({"items": [{"quantity": -2, "amount": "1.00"}]}) == [
        "$.items[0].quantity=-2"
    ]
    assert oracle.negative_numbers({"refund": {"total": "NaN"}, "maximumRefundAmount": -1}) == [
        "$.refund.total='NaN'"
    ]
