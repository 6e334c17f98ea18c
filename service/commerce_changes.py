"""What the sync saw at Commerce that someone else set, recorded as theirs (SPEC section 8).

The sync's GET before a PUT may find a return in a state neither we nor a webhook
put it in (an agent, no webhook yet). The PUT leaves it alone; this records it as a
`CommerceOverridden` by `commerce:agent`, so the history, the console and the next
operator action all start from what Commerce holds.
"""

from __future__ import annotations

from functools import partial

from projections.commerce_bodies import UPDATE_RETURN_REQUEST, CommerceCall
from projections.commerce_merge import Conflict
from projections.sync import ConflictHandler
from service import operations
from service.writer import Writer


def record_commerce_changes(writer: Writer) -> ConflictHandler:
    async def record(call: CommerceCall, conflicts: list[Conflict]) -> None:
        if call.endpoint != UPDATE_RETURN_REQUEST:
            return
        for conflict in conflicts:
            if conflict.field == "state" and isinstance(conflict.theirs, str):
                await writer.submit_async(
                    partial(
                        operations.commerce_changed_state,
                        return_id=call.subject,
                        state=conflict.theirs,
                        ours=str(conflict.ours),
                        cause=f"sync: GET {call.path} before {call.operation}",
                    )
                )

    return record
