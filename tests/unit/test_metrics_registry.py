"""The metrics API: one instrument per name and registry, however often it is asked for."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from projections.metrics import counter, gauge, histogram


def test_asking_again_answers_the_same_instrument_and_a_clash_is_refused() -> None:
    registry = CollectorRegistry()
    first = counter("returnflow_test_things", "Things.", ["kind"], registry=registry)
    assert counter("returnflow_test_things", "Things.", ["kind"], registry=registry) is first
    with pytest.raises(TypeError):
        gauge("returnflow_test_things", "Things.", registry=registry)
    first.labels("a").inc(2)
    assert b'returnflow_test_things_total{kind="a"} 2.0' in generate_latest(registry)


def test_a_new_registry_gets_its_own_instruments_even_where_an_old_ones_id_is_reused() -> None:
    seen = set()
    for _ in range(20):
        registry = CollectorRegistry()
        seen.add(id(registry))
        histogram("returnflow_test_seconds", "Seconds.", registry=registry).observe(0.1)
        assert b"returnflow_test_seconds_count 1.0" in generate_latest(registry)
        del registry
    assert len(seen) < 20, "ids were reused, as CPython does once an object is freed"
