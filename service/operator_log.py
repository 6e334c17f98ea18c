"""One log line per operator action (API or console), with who acted: the audit trail in the
logs, beside the events' own `actor`."""

from __future__ import annotations

import structlog

log = structlog.get_logger("returnflow.operator")

SERVICE_ACTOR = "service:api"
"""Who acts through the API without naming an operator: the service credential
(RETURNFLOW_API_TOKEN, SPEC section 10), never an anonymous `operator:…`."""


def record(actor: str, action: str, subject: str, *, refused: str | None = None) -> None:
    """`refused`: the error code when the action was turned away (nothing recorded)."""
    if refused is None:
        log.info("operator_action", actor=actor, action=action, subject=subject, outcome="done")
    else:
        log.info(
            "operator_action", actor=actor, action=action, subject=subject, outcome="refused", error=refused
        )
