"""Settings come from LEANGUARD_* variables; secrets never show."""

from __future__ import annotations

import pytest

from plugin.settings import Settings, SettingsError


def test_defaults_are_the_embedded_service() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.redis_url == ""
    assert settings.effective_database_url().startswith("sqlite:///")
    assert settings.effective_database_url().endswith("/instance/leanguard.db")
    assert settings.linear_api_url == "https://api.linear.app/graphql"
    assert settings.connect_allowed_hosts == "*.atlassian.net,*.jira.com"


def test_every_variable_is_read_with_its_prefix() -> None:
    settings = Settings.from_env(
        {
            "LEANGUARD_PORT": "9000",
            "LEANGUARD_DATABASE_URL": "postgresql+psycopg://db/leanguard",
            "LEANGUARD_JIRA_URL": "https://acme.atlassian.net",
            "LEANGUARD_JIRA_EMAIL": "bot@acme.test",
            "LEANGUARD_JIRA_API_TOKEN": "t0ken",
        }
    )
    assert settings.port == 9000
    assert settings.effective_database_url() == "postgresql+psycopg://db/leanguard"
    assert settings.jira_email == "bot@acme.test"


def test_bad_values_are_refused_with_the_variable_name() -> None:
    with pytest.raises(SettingsError, match="LEANGUARD_PORT must be a whole number"):
        Settings.from_env({"LEANGUARD_PORT": "eighty"})
    with pytest.raises(SettingsError, match="LEANGUARD_JIRA_API_TOKEN is not"):
        Settings.from_env({"LEANGUARD_JIRA_EMAIL": "bot@acme.test"})
    with pytest.raises(SettingsError, match="LEANGUARD_RESOLVED_CARD"):
        Settings.from_env({"LEANGUARD_RESOLVED_CARD": "archive"})


def test_secrets_are_masked_in_repr_and_public_view() -> None:
    settings = Settings.from_env(
        {"LEANGUARD_JIRA_API_TOKEN": "s3cr3t-token", "LEANGUARD_ADMIN_TOKEN": "adm1n"}
    )
    assert "s3cr3t-token" not in repr(settings)
    public = settings.public()
    assert public["jira_api_token"] == "(set)"
    assert public["linear_api_key"] == "(unset)"
    assert "adm1n" not in str(public)


def test_missing_secret_key_is_random_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.from_env({})
    first, second = settings.effective_secret_key(), settings.effective_secret_key()
    assert first != second and len(first) >= 32
    assert "LEANGUARD_SECRET_KEY is not set" in caplog.text


def test_a_lease_must_outlast_a_job_and_the_sweeper_must_run() -> None:
    settings = Settings.from_env({"LEANGUARD_LEASE_S": "30", "LEANGUARD_JOB_TIMEOUT_S": "20"})
    assert (settings.lease_s, settings.sweep_interval_s) == (30, 10)
    with pytest.raises(SettingsError, match="LEANGUARD_LEASE_S"):
        Settings.from_env({"LEANGUARD_LEASE_S": "120"})
    with pytest.raises(SettingsError, match="LEANGUARD_SWEEP_INTERVAL_S"):
        Settings.from_env({"LEANGUARD_SWEEP_INTERVAL_S": "0"})
