"""Settings: the SPEC variables, the development-mode guard, the policy file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.cli import main
from service.config import ConfigError, Settings, load_policy


def test_variables_and_overrides() -> None:
    env = {
        "RETURNFLOW_STORE": "memory:",
        "RETURNFLOW_PORT": "9000",
        "RETURNFLOW_WEBHOOK_SECRETS": "YQ==, Yg==",
        "RETURNFLOW_API_TOKEN": "tok-SECRET",
        "RETURNFLOW_HOST": "0.0.0.0",
        "RETURNFLOW_COMMERCE_URL": "https://commerce.example",
    }
    settings = Settings.from_env(env, port=9100)
    assert (settings.store, settings.port, settings.webhook_secrets) == ("memory:", 9100, ("YQ==", "Yg=="))
    settings.check()
    assert "tok-SECRET" not in repr(settings) and "YQ==" not in repr(settings), "secrets stay out of logs"


def test_projections_file_is_beside_a_sqlite_store_unless_named() -> None:
    assert (
        Settings.from_env({"RETURNFLOW_STORE": "sqlite:///data/rf.db"}).projections_database
        == "data/rf.projections.db"
    )
    named = Settings.from_env(
        {"RETURNFLOW_STORE": "postgresql://u@db/rf", "RETURNFLOW_PROJECTIONS": "/shared/projections.db"}
    )
    assert named.projections_database == "/shared/projections.db"
    assert (
        Settings.from_env({"RETURNFLOW_STORE": "postgresql://u@db/rf"}).projections_database
        == "postgresql://u@db/rf"
    ), "with PostgreSQL everything shared lives in its database"


@pytest.mark.parametrize("missing", ["RETURNFLOW_WEBHOOK_SECRETS", "RETURNFLOW_API_TOKEN"])
def test_development_mode_refuses_non_loopback(missing: str) -> None:
    env = {"RETURNFLOW_WEBHOOK_SECRETS": "YQ==", "RETURNFLOW_API_TOKEN": "t", "RETURNFLOW_HOST": "0.0.0.0"}
    del env[missing]
    with pytest.raises(ConfigError, match="refusing to serve"):
        Settings.from_env(env).check()
    Settings.from_env({**env, "RETURNFLOW_HOST": "127.0.0.1"}).check()


def test_serve_exits_2_instead_of_binding_openly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RETURNFLOW_WEBHOOK_SECRETS", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--store", "memory:"]) == 2
    assert "refusing to serve on 0.0.0.0" in capsys.readouterr().err


def test_policy_file_unknown_key_is_a_start_error(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('return_window_days = 14\nrefund_shiping = "always"\n')
    with pytest.raises(ConfigError, match="refund_shiping"):
        load_policy(str(path))
    path.write_text('return_window_days = 14\nreturn_fee = "10%"\n')
    assert load_policy(str(path)).return_window_days == 14
    with pytest.raises(ConfigError, match="No such file"):
        load_policy(str(tmp_path / "missing.toml"))


def test_workers_default_to_the_cores_on_postgresql_only_and_memory_stores_refuse_several() -> None:
    assert Settings.from_env({"RETURNFLOW_STORE": "sqlite:///rf.db"}).worker_count == 1
    pg = Settings.from_env({"RETURNFLOW_STORE": "postgresql://u@h/db"})
    assert pg.worker_count == (os.cpu_count() or 1)
    assert Settings.from_env({"RETURNFLOW_WORKERS": "3"}).worker_count == 3
    with pytest.raises(ConfigError, match="memory"):
        Settings(store="memory:", workers=2).check()
    with pytest.raises(ConfigError, match="WORKERS"):
        Settings.from_env({"RETURNFLOW_WORKERS": "many"})


def test_commerce_flavour_is_a_variable_and_a_flag_and_checked() -> None:
    assert Settings.from_env({}).flavour == "classic"
    assert Settings.from_env({"RETURNFLOW_COMMERCE_FLAVOUR": "op"}).flavour == "op"
    assert (
        Settings.from_env({"RETURNFLOW_COMMERCE_FLAVOUR": "op"}, commerce_flavour="classic").flavour
        == "classic"
    )
    with pytest.raises(ConfigError, match="RETURNFLOW_COMMERCE_FLAVOUR"):
        Settings.from_env({"RETURNFLOW_COMMERCE_FLAVOUR": "ReceiveReturns"}).check()
