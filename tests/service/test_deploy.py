"""Deployment artefacts: the configuration reference is current, compose and the systemd
unit hold what the service needs (health-gated start, secrets from files, a stop timeout
longer than the graceful-shutdown bound), the image's healthcheck works, the wheel ships
its migrations, and replicas starting together migrate once."""

from __future__ import annotations

import configparser
import importlib.util
import subprocess
import sys
import threading
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from syncd.config import SECRET_FIELDS, Settings
from syncd.config.sources import TomlFile, TomlSource, reading
from syncd.context import AppContext
from syncd.db import make_engine
from syncd.migrate import current_revision, head_revision, upgrade
from syncd.service.app import create_app
from tests.service.conftest import REPO, free_port, served

SHUTDOWN_BOUND = Settings.model_fields["shutdown_timeout_seconds"].default


def _seconds(value: str) -> float:
    return float(value.removesuffix("s"))


def _settings_reference() -> Any:
    spec = importlib.util.spec_from_file_location(
        "settings_reference", REPO / "scripts" / "settings_reference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_in_operations_doc_is_current() -> None:
    module = _settings_reference()

    assert module.main(["--check"]) == 0, "run: python scripts/settings_reference.py"


def test_configuration_reference_names_each_setting_as_the_file_sets_it(
        tmp_path: Path) -> None:
    path = tmp_path / "syncd.toml"
    path.write_text('database_url = "sqlite://"\n[http]\nport = 8080\n'
                    '[lists.newsletter]\npurpose = "newsletter"\n'
                    '[[targets]]\nname = "news"\n', encoding="utf-8")
    with reading(TomlFile(path)) as toml:
        TomlSource(Settings)()

    module = _settings_reference()

    assert {name: module._toml_name(name) for name in toml.origins} == toml.origins


def test_compose_starts_syncd_after_a_healthy_database_and_the_migration() -> None:
    compose: dict[str, Any] = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())
    services = compose["services"]

    assert services["syncd"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"}}
    assert "healthcheck" in services["postgres"]
    assert services["migrate"]["command"] == ["syncd", "db", "upgrade"]
    assert _seconds(services["syncd"]["stop_grace_period"]) > SHUTDOWN_BOUND


def test_compose_hands_every_secret_over_as_a_file() -> None:
    compose: dict[str, Any] = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())
    env = compose["services"]["syncd"]["environment"]

    assert {f"SYNCD_{name.upper()}_FILE" for name in SECRET_FIELDS} <= set(env)
    assert not {f"SYNCD_{name.upper()}" for name in SECRET_FIELDS} & set(env)


def test_systemd_unit_is_hardened_and_outwaits_the_graceful_stop() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    text_ = (REPO / "deploy" / "syncd.service").read_text()
    unit.read_string(text_)
    service = unit["Service"]

    assert _seconds(service["TimeoutStopSec"]) > SHUTDOWN_BOUND
    assert (service["ProtectSystem"], service["NoNewPrivileges"], service["Restart"]) == (
        "strict", "yes", "on-failure")
    for name in SECRET_FIELDS:
        assert f"LoadCredential={name}:" in text_
        assert f"Environment=SYNCD_{name.upper()}_FILE=%d/{name}" in text_


def test_dockerfile_runs_serve_as_a_non_root_user_with_a_healthcheck() -> None:
    lines = (REPO / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    instructions = [line.split(maxsplit=1) for line in lines
                    if line.strip() and not line.startswith("#")]
    by_name: dict[str, list[str]] = {}
    for name, rest in instructions:
        by_name.setdefault(name, []).append(rest)

    assert by_name["FROM"] == ["python:3.11-slim AS build", "python:3.11-slim"]
    assert by_name["USER"][-1].split(":")[0] not in ("root", "0")
    assert by_name["CMD"] == ['["syncd", "serve", "--host", "0.0.0.0"]']
    assert by_name["EXPOSE"] == ["8080"]
    assert "syncd.service.healthcheck" in by_name["HEALTHCHECK"][0]


def test_image_healthcheck_passes_while_healthz_answers(app_context: AppContext) -> None:
    with served(create_app(app_context, webhooks=False)) as url:
        port = url.rsplit(":", 1)[1]
        result = subprocess.run([sys.executable, "-m", "syncd.service.healthcheck"],
                                env={"SYNCD_HTTP_PORT": port, "PATH": "/usr/bin:/bin"},
                                cwd=REPO, capture_output=True, timeout=30, check=False)

    assert result.returncode == 0, result.stderr


def test_image_healthcheck_fails_when_nothing_answers() -> None:
    result = subprocess.run([sys.executable, "-m", "syncd.service.healthcheck"],
                            env={"SYNCD_HTTP_PORT": str(free_port()), "PATH": "/usr/bin:/bin"},
                            cwd=REPO, capture_output=True, timeout=30, check=False)

    assert result.returncode == 1


@pytest.mark.slow
def test_wheel_ships_the_migrations(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(REPO)], check=True, timeout=300, capture_output=True)
    (wheel,) = tmp_path.glob("syncd-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    migrations = {p.relative_to(REPO).as_posix()
                  for p in (REPO / "syncd" / "migrations").rglob("*.py")
                  if "__pycache__" not in p.parts}
    assert migrations <= names
    assert "syncd/service/healthcheck.py" in names


@pytest.fixture
def fresh_postgres(postgres_server_url: str) -> Iterator[str]:
    name = f"syncd_fresh_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_replicas_upgrading_a_fresh_postgres_together_all_succeed(fresh_postgres: str) -> None:
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def replica() -> None:
        engine = make_engine(fresh_postgres)
        try:
            start.wait()
            upgrade(engine)
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=replica) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    engine = make_engine(fresh_postgres)
    assert current_revision(engine) == head_revision()
    engine.dispose()
