"""The three state machines, written to read like SPEC section 3's tables.

Machines are transient: an aggregate restores one from its stored state, fires a
trigger with the facts the guards need, and records the outcome as an event. So
the machine decides, the event remembers, and replay never needs the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from statemachine import State, StateMachine
from statemachine.exceptions import TransitionNotAllowed

from domain.errors import DomainError


class IllegalTransition(DomainError):
    """A trigger that the current state (or a guard) does not allow."""

    def __init__(self, machine: str, trigger: str, state: str, allowed: list[str]) -> None:
        self.machine = machine
        self.trigger = trigger
        self.state = state
        self.allowed = allowed
        super().__init__(
            f"{machine}: '{trigger}' is not allowed in state {state}"
            f" (allowed now: {', '.join(allowed) or 'none'})",
            code="ILLEGAL_TRANSITION",
        )


class NoRefundOwed(IllegalTransition):
    """A refund action on an exchange that credits nothing (SPEC section 9): refused with why."""

    def __init__(self, reason: str, state: str, allowed: list[str]) -> None:
        self.machine, self.trigger, self.state, self.allowed = "return", "refund", state, allowed
        DomainError.__init__(self, reason, code="NO_REFUND_OWED")


class _Facts(StateMachine):
    """Guards read the facts passed with the trigger; absent facts are false."""

    def __init__(self, model: Any, facts: dict[str, Any]) -> None:
        self.facts = facts
        super().__init__(model=model)

    def fact(self, name: str) -> bool:
        return bool(self.facts.get(name, False))


class ReturnMachine(_Facts):
    pending_customer_action = State(value="PENDING_CUSTOMER_ACTION", initial=True)
    partial_return = State(value="PARTIAL_RETURN")
    full_return = State(value="FULL_RETURN")
    pending_refund = State(value="PENDING_REFUND")
    manual_refund = State(value="MANUAL_REFUND")
    complete = State(value="COMPLETE", final=True)
    incomplete = State(value="INCOMPLETE", final=True)

    receive = (
        pending_customer_action.to(full_return, cond="all_received")
        | partial_return.to(full_return, cond="all_received")
        | pending_customer_action.to(partial_return, cond="some_received")
        | partial_return.to.itself(cond="some_received")
    )
    initiate_refund = (
        full_return.to(pending_refund, cond="refund_known")
        | partial_return.to(pending_refund, cond="refund_known")
        | pending_customer_action.to(pending_refund, cond=["refund_known", "nothing_to_ship"])
    )
    require_manual_refund = (
        pending_refund.to(manual_refund) | full_return.to(manual_refund) | partial_return.to(manual_refund)
    )
    settle_refund = pending_refund.to(complete, cond="refund_recorded") | manual_refund.to(
        complete, cond="refund_recorded"
    )
    close_incomplete = pending_customer_action.to(incomplete) | partial_return.to(incomplete)
    complete_exchange = full_return.to(complete, cond="nothing_owed")
    """An exchange that credits nothing (even, or the shopper owes) completes once its goods
    are all in (SPEC section 9): there is no refund to initiate or settle."""

    def all_received(self) -> bool:
        return self.fact("all_received")

    def some_received(self) -> bool:
        return self.fact("some_received") and not self.fact("all_received")

    def refund_known(self) -> bool:
        return self.fact("refund_known")

    def nothing_to_ship(self) -> bool:
        return self.fact("nothing_to_ship")

    def refund_recorded(self) -> bool:
        return self.fact("refund_recorded")

    def nothing_owed(self) -> bool:
        return self.fact("nothing_owed")


class ReturnItemMachine(_Facts):
    initial = State(value="INITIAL", initial=True)
    awaiting_return = State(value="AWAITING_RETURN")
    return_not_required = State(value="RETURN_NOT_REQUIRED", final=True)
    partial_return = State(value="PARTIAL_RETURN")
    returned = State(value="RETURNED", final=True)

    approve = initial.to(awaiting_return, cond="shipment_required") | initial.to(
        return_not_required, unless="shipment_required"
    )
    receive = (
        awaiting_return.to(returned, cond="fully_received")
        | partial_return.to(returned, cond="fully_received")
        | awaiting_return.to(partial_return, unless="fully_received")
        | partial_return.to.itself(unless="fully_received")
    )

    def shipment_required(self) -> bool:
        return self.fact("shipment_required")

    def fully_received(self) -> bool:
        return self.fact("fully_received")


class LifecycleMachine(_Facts):
    """Per order: which validation context may follow which (SPEC section 3).

    Initiate is never refused by the lifecycle: Commerce calls it just to decide
    whether to show a Return button, and a shopper may start over at any time.
    """

    idle = State(value="IDLE", initial=True)
    return_initiated = State(value="RETURN_INITIATED")
    refund_calculated = State(value="REFUND_CALCULATED")
    return_submitted = State(value="RETURN_SUBMITTED")
    exchange_initiated = State(value="EXCHANGE_INITIATED")
    exchange_submitted = State(value="EXCHANGE_SUBMITTED")
    exchange_processed = State(value="EXCHANGE_PROCESSED")

    initiate_return = return_initiated.from_.any()
    calculate_refund = return_initiated.to(refund_calculated) | refund_calculated.to.itself()
    submit_return = refund_calculated.to(return_submitted) | return_submitted.to.itself()
    initiate_exchange = exchange_initiated.from_.any()
    submit_exchange = exchange_initiated.to(exchange_submitted) | exchange_submitted.to.itself()
    process_exchange = exchange_submitted.to(
        exchange_processed, cond="goods_received"
    ) | exchange_processed.to.itself(cond="goods_received")
    custom = (
        idle.to.itself()
        | return_initiated.to.itself()
        | refund_calculated.to.itself()
        | return_submitted.to.itself()
        | exchange_initiated.to.itself()
        | exchange_submitted.to.itself()
        | exchange_processed.to.itself()
    )

    def goods_received(self) -> bool:
        return self.fact("goods_received")


CONTEXT_TRIGGERS: dict[str, str] = {
    "Initiate_Return": "initiate_return",
    "CalculateRefund_Return": "calculate_refund",
    "Submit_Return": "submit_return",
    "Custom_Return": "custom",
    "Initiate_Exchange": "initiate_exchange",
    "Submit_Exchange": "submit_exchange",
    "Process_Exchange": "process_exchange",
}


@dataclass
class _Holder:
    state: str


@dataclass(frozen=True)
class Step:
    """What firing a trigger did: the audit trail's unit."""

    trigger: str
    source: str
    target: str


MACHINES: dict[str, type[_Facts]] = {
    "return": ReturnMachine,
    "return_item": ReturnItemMachine,
    "lifecycle": LifecycleMachine,
}


def fire(machine: str, state: str, trigger: str, **facts: Any) -> Step:
    """Fire `trigger` from `state`; raise IllegalTransition and change nothing if refused.

    The outcome depends only on the machine, the state, the trigger and the
    (boolean) facts, so it is remembered: building a machine costs ~200 us,
    and the validation webhook fires one per question.
    """
    key = (machine, state, trigger, tuple(sorted((k, bool(v)) for k, v in facts.items())))
    outcome = _OUTCOMES.get(key)
    if outcome is None:
        outcome = _OUTCOMES[key] = _fire(machine, state, trigger, facts)
    if isinstance(outcome, IllegalTransition):
        raise IllegalTransition(outcome.machine, outcome.trigger, outcome.state, outcome.allowed)
    return outcome


_OUTCOMES: dict[tuple[Any, ...], Step | IllegalTransition] = {}


def _fire(machine: str, state: str, trigger: str, facts: dict[str, Any]) -> Step | IllegalTransition:
    cls = MACHINES[machine]
    holder = _Holder(state)
    sm = cls(model=holder, facts=facts)
    try:
        sm.send(trigger)
    except TransitionNotAllowed:
        return IllegalTransition(machine, trigger, state, allowed_triggers(machine, state))
    return Step(trigger=trigger, source=state, target=holder.state)


def allowed_triggers(machine: str, state: str) -> list[str]:
    """Triggers with a transition out of `state`, whatever their guards say."""
    cls = MACHINES[machine]
    return sorted(_TRIGGERS_BY_STATE[cls].get(state, set()))


def triggers_to(machine: str, source: str, target: str) -> list[str]:
    """Triggers that can move `source` to `target`: maps a state Commerce reports to a trigger."""
    cls = MACHINES[machine]
    return sorted(_EDGES[cls].get((source, target), set()))


def transition_table(machine: str) -> list[tuple[str, str, str]]:
    """(trigger, source, target) for every declared transition, for docs and tests."""
    cls = MACHINES[machine]
    return sorted((trigger, src, dst) for (src, dst), triggers in _EDGES[cls].items() for trigger in triggers)


def states_of(machine: str) -> list[str]:
    return [str(s.value) for s in MACHINES[machine].states]


def _index(cls: type[_Facts]) -> tuple[dict[str, set[str]], dict[tuple[str, str], set[str]]]:
    by_state: dict[str, set[str]] = {}
    edges: dict[tuple[str, str], set[str]] = {}
    for state in cls.states:
        for transition in state.transitions:
            src, dst = str(transition.source.value), str(transition.target.value)
            for trigger in transition.events:
                name = str(trigger)
                by_state.setdefault(src, set()).add(name)
                edges.setdefault((src, dst), set()).add(name)
    return by_state, edges


_TRIGGERS_BY_STATE: dict[type[_Facts], dict[str, set[str]]] = {}
_EDGES: dict[type[_Facts], dict[tuple[str, str], set[str]]] = {}
for _cls in MACHINES.values():
    _TRIGGERS_BY_STATE[_cls], _EDGES[_cls] = _index(_cls)
