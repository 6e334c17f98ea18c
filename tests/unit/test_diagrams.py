"""Diagrams are drawn from the machine classes: every state and transition, nothing else."""

from __future__ import annotations

import re

import pytest

from domain.machines import states_of, transition_table
from service.diagrams import render


@pytest.mark.parametrize("machine", ["return", "return_item", "lifecycle"])
def test_a_diagram_has_every_state_and_every_transition_of_its_machine(machine: str) -> None:
    svg = render(machine, None)
    assert set(re.findall(r'data-state="([A-Z_]+)"', svg)) == set(states_of(machine))
    edges = set(re.findall(r'data-from="([A-Z_]+)" data-to="([A-Z_]+)"', svg))
    assert edges == {(src, dst) for _, src, dst in transition_table(machine)}
    for trigger, _, _ in transition_table(machine):
        assert trigger in svg


def test_the_current_state_and_the_transitions_taken_are_marked() -> None:
    svg = render("return", "FULL_RETURN", {("PENDING_CUSTOMER_ACTION", "FULL_RETURN")})
    assert re.findall(r'class="state ([a-z ]+)" data-state="FULL_RETURN"', svg) == ["current"]
    assert 'class="state visited initial" data-state="PENDING_CUSTOMER_ACTION"' in svg
    assert re.findall(r'class="edge taken" data-from="([A-Z_]+)" data-to="([A-Z_]+)"', svg) == [
        ("PENDING_CUSTOMER_ACTION", "FULL_RETURN")
    ]
    assert 'class="state final" data-state="COMPLETE"' in svg


def test_names_are_escaped_and_boxes_never_overlap() -> None:
    svg = render("return", None, title="<script>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    boxes = [tuple(map(int, m)) for m in re.findall(r'<rect x="(\d+)" y="(\d+)"', svg)]
    assert len(set(boxes)) == len(boxes) == len(states_of("return"))
