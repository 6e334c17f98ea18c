"""Issue 23 item 3: the CLI finds the store from configuration, never the working directory;
a read-only command never creates a store; every start-up problem is one line, no traceback.
Item 2: an unset Commerce URL is refused where calls matter, unless a dry run is asked for."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.cli import main
from service.config import ConfigError, Settings

SECURED = {"RETURNFLOW_WEBHOOK_SECRETS": "YQ==", "RETURNFLOW_API_TOKEN": "t", "RETURNFLOW_HOST": "0.0.0.0"}


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty working directory and an empty data home, nothing configured."""
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("RETURNFLOW_HOME", str(home))
    for name in ("RETURNFLOW_STORE", "RETURNFLOW_PROJECTIONS", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def test_the_default_store_does_not_depend_on_the_working_directory(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = Settings.from_env().store
    monkeypatch.chdir(elsewhere)
    assert Settings.from_env().store == first == f"sqlite:///{elsewhere / 'home' / 'returnflow.db'}"
    assert Settings.from_env({"XDG_DATA_HOME": "/data"}).store == "sqlite:////data/returnflow/returnflow.db"


@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "100003"],
        ["audit", "--all"],
        ["replay", "--verify"],
        ["replay"],
        ["reconcile", "--commerce-url", "http://127.0.0.1:9"],
    ],
)
def test_a_read_only_command_refuses_in_words_and_creates_nothing(
    elsewhere: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("returnflow: no event store at ") and "RETURNFLOW_STORE" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert files_under(elsewhere) == []


def test_audit_reads_the_store_serve_wrote_from_any_directory(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.store import open_store

    open_store(Settings.from_env().store).close()
    monkeypatch.chdir(elsewhere)
    assert main(["audit", "100003"]) == 1
    assert "no return or order" in capsys.readouterr().err
    assert not list(elsewhere.glob("*.db")), "nothing created in the working directory"


def test_a_busy_port_is_one_line(elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--store", "memory:", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"returnflow: cannot listen on 127.0.0.1:{port}: Address already in use" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["serve", "--store", "mysql://x/y"], "unsupported RETURNFLOW_STORE"),
        (["serve", "--store", "memory:", "--policy", "missing.toml"], "RETURNFLOW_POLICY missing.toml"),
        (["serve", "--store", "postgresql://u:p@127.0.0.1:9/db"], "cannot reach the PostgreSQL store"),
        (
            ["relay", "--store", "postgresql://u:p@127.0.0.1:9/db", "--kafka-bootstrap", "k:9092"],
            "cannot reach",
        ),
        (["sync", "--store", "memory:", "--kafka-bootstrap", "k:9092"], "needs RETURNFLOW_COMMERCE_URL"),
    ],
)
def test_start_up_problems_are_one_line(
    elsewhere: Path,
    argv: list[str],
    says: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RETURNFLOW_COMMERCE_URL", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("returnflow: ") and says in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_an_unset_commerce_url_is_refused_unless_a_dry_run_is_asked_for() -> None:
    with pytest.raises(ConfigError, match="RETURNFLOW_COMMERCE_URL"):
        Settings.from_env(SECURED).check()
    Settings.from_env({**SECURED, "RETURNFLOW_COMMERCE_DRY_RUN": "true"}).check()
    Settings.from_env({**SECURED, "RETURNFLOW_COMMERCE_URL": "https://commerce.example"}).check()
    Settings.from_env({**SECURED, "RETURNFLOW_KAFKA_BOOTSTRAP": "k:9092"}).check(), "sync runs apart"
    Settings.from_env({**SECURED, "RETURNFLOW_HOST": "127.0.0.1"}).check(), "the development default"
    with pytest.raises(ConfigError, match="--dry-run"):
        Settings.from_env({}).require_commerce("returnflow sync")
    Settings.from_env({}, commerce_dry_run=True).require_commerce("returnflow sync")
