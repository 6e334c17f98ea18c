"""A validation process never answers from state older than a write already acknowledged."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import free_port
from tests.integration import stale_answers


async def test_validation_answers_follow_the_other_process_writes(tmp_path: Path) -> None:
    """Issue 18's scenario on the README's deployment: `serve` + `serve --role validation`."""
    db = tmp_path / "rf.db"
    main_port, validation_port = free_port(), free_port()
    with (
        stale_answers.serve(db, main_port, tmp_path / "main.log"),
        stale_answers.serve(db, validation_port, tmp_path / "validation.log", "--role", "validation"),
    ):
        outcome = await stale_answers.run(
            f"http://127.0.0.1:{main_port}", f"http://127.0.0.1:{validation_port}", checks=150
        )
    assert outcome.background_questions > outcome.checks, "B was busy meanwhile"
    assert outcome.stale == 0, f"{outcome.stale} of {outcome.checks} stale: {outcome.examples}"
