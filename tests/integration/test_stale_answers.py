"""A validation process never answers from state older than a write already acknowledged."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration import stale_answers


@pytest.mark.parametrize(
    ("backend", "beside"),
    [("sqlite", ["--role", "validation"]), ("postgresql", ["--role", "validation"]), ("postgresql", [])],
    ids=["sqlite-validation-role", "postgresql-validation-role", "postgresql-two-serve"],
)
async def test_validation_answers_follow_the_other_process_writes(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str, beside: list[str]
) -> None:
    """Issue 18's scenario: the README's deployment (`serve` + `serve --role validation`) on
    SQLite and PostgreSQL, and two plain `serve` replicas on PostgreSQL. On PostgreSQL the
    lifecycle steps come every 20 ms rather than every 2: each rewrites the order, and over the
    network the other process's Return Request Update, which must write the same order to link
    the return, would mostly be answered 503 (contended), which is sent again as Commerce does."""
    if backend == "sqlite":
        db: Path | str = tmp_path / "rf.db"
    else:
        from tests.postgres.plugin import new_database

        db = new_database(request.getfixturevalue("postgres_server"))
    main_port, other_port = free_port(), free_port()
    with (
        stale_answers.serve(db, main_port, tmp_path / "main.log"),
        stale_answers.serve(db, other_port, tmp_path / "other.log", *beside),
    ):
        outcome = await stale_answers.run(
            f"http://127.0.0.1:{main_port}",
            f"http://127.0.0.1:{other_port}",
            checks=150,
            lifecycle_pause_s=0.002 if backend == "sqlite" else 0.02,
        )
    assert not outcome.background_errors, outcome.background_errors
    assert outcome.background_questions > outcome.checks, f"the other process was busy: {outcome}"
    assert outcome.stale == 0, f"{outcome.stale} of {outcome.checks} stale: {outcome.examples}"
