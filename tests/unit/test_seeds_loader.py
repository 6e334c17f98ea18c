"""The seed samples come out of Oracle's prose as valid JSON, repaired but otherwise untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.commerce_sim.seeds import (
    FIXTURES,
    drop_trailing_commas,
    load_seed,
    outermost_object,
    seed_order_submit,
    seed_return_request_update,
    seeds_dir,
)

REPOSITORY = Path(__file__).resolve().parents[2]
SHARED_SEEDS = "/".join(("shared", "seeds"))
"""Spelt apart, so this test is not a reader of what it looks for."""


def test_seeds_dir_is_inside_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETURNFLOW_SEEDS_DIR", raising=False)
    assert seeds_dir() == REPOSITORY / "tests" / "fixtures" / "seeds"
    for name in ("order-submit-webhook.txt", "return-request-update-webhook.txt"):
        assert (seeds_dir() / name).is_file()
        assert (seeds_dir() / name).resolve().is_relative_to(REPOSITORY)


def test_the_fixtures_are_the_documents_samples_verbatim() -> None:
    """Cut out of Oracle's documents untouched: the repairs are the loader's, not the file's."""
    text = (FIXTURES / "order-submit-webhook.txt").read_text(encoding="utf-8")
    assert "\u00a0" in text, "the document's non-breaking spaces are kept"
    assert drop_trailing_commas(text) != text, "the document's trailing comma is kept"


def test_nothing_in_the_repository_reads_the_shared_seeds() -> None:
    """A clone with nothing beside it must be enough (issue 23); comments may cite the documents."""
    readers = [
        path.relative_to(REPOSITORY)
        for path in REPOSITORY.rglob("*")
        if path.suffix in {".py", ".sh", ".toml", ".cfg", ".ini", ".yml", ".yaml", ""}
        and path.is_file()
        and ".git" not in path.parts
        and path.name != "test_seeds_loader.py"
        and any(
            needle in line
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
            if not line.lstrip().startswith("#")
            for needle in (SHARED_SEEDS, '"shared" / ' + '"seeds"')
        )
    ]
    assert readers == []


def test_order_submit_sample() -> None:
    document = seed_order_submit()
    order = document["order"]
    assert order["id"] == "o20005"
    card = order["paymentGroups"][0]
    assert "token" in card and card["paymentMethod"] == "tokenizedCreditCard"
    assert order["shippingGroups"][0]["id"] == "sg20005"
    assert "site" in document


def test_return_request_update_sample() -> None:
    returned = seed_return_request_update()["return"]
    assert returned["authorizationNumber"] == "100003"
    assert returned["state"] == "PENDING_CUSTOMER_ACTION"
    assert returned["returnItemList"]
    assert returned["originatingOrder"]["shippingGroups"][0]["id"] == "sg40430"


def test_no_non_breaking_space_survives() -> None:
    for document in (seed_order_submit(), seed_return_request_update()):
        assert "\u00a0" not in repr(document)


def test_each_call_is_a_fresh_copy() -> None:
    first = seed_order_submit()
    first["order"]["id"] = "changed"
    first["order"]["paymentGroups"].clear()
    again = seed_order_submit()
    assert again["order"]["id"] == "o20005" and again["order"]["paymentGroups"]


def test_load_seed_by_name_with_or_without_suffix() -> None:
    assert load_seed("order-submit-webhook") == load_seed("order-submit-webhook.txt") == seed_order_submit()


def test_env_names_another_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prose = (
        "Example: the sample follows.\n\n"
        '{\n\u00a0\u00a0"order": {"id": "oX", "note": "a } and a { and \\"quoted\\" ,]",\n'
        '\u00a0\u00a0\u00a0\u00a0"items": [1, 2,\n\u00a0\u00a0],\n},\n}\nMore prose {}.'
    )
    (tmp_path / "order-submit-webhook.txt").write_text(prose, encoding="utf-8")
    monkeypatch.setenv("RETURNFLOW_SEEDS_DIR", str(tmp_path))
    assert seeds_dir() == tmp_path
    assert seed_order_submit() == {
        "order": {"id": "oX", "note": 'a } and a { and "quoted" ,]', "items": [1, 2]}
    }


def test_outermost_object_skips_braces_in_strings() -> None:
    assert outermost_object('prose {"a": "}", "b": {"c": [1]}} trailing }') == '{"a": "}", "b": {"c": [1]}}'
    with pytest.raises(ValueError):
        outermost_object('{"a": {')


def test_trailing_commas_go_but_commas_in_strings_stay() -> None:
    assert (
        drop_trailing_commas('{"a": [1, 2 , ], "b": "x, }", "c": {"d": 1,\n},}')
        == '{"a": [1, 2  ], "b": "x, }", "c": {"d": 1\n}}'
    )
