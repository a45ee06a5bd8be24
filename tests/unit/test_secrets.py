"""Secrets: env vars and owner-only files, errors that never show the value, and a repr that
never shows it either."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.secrets import CredentialsRef, SecretError, SecretRef, resolve, resolve_token
from bot.core.redaction import clear_secrets, known_secrets, register_secret
from bot.core.types import Credentials


@pytest.fixture(autouse=True)
def _clean_registry() -> None:
    clear_secrets()


def write_secret(path: Path, value: str, mode: int = 0o600) -> Path:
    path.write_text(value + "\n")
    path.chmod(mode)
    return path


def test_credentials_repr_and_str_hide_values() -> None:
    creds = Credentials(api_key="AKIAVALUE123", secret="supersecret99", password="pw-value")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert "AKIAVALUE123" not in text
        assert "supersecret99" not in text
        assert "pw-value" not in text
    assert "password=None" in repr(Credentials(api_key="a" * 8, secret="b" * 8))


def test_resolve_from_env_registers_values() -> None:
    ref = CredentialsRef(api_key_env="K", secret_env="S", password_env="P")
    creds = resolve(
        ref, where="leads[alpha].credentials", env={"K": " key-1234 ", "S": "sec/ret+1=", "P": "pass-123"}
    )
    assert creds == Credentials(api_key="key-1234", secret="sec/ret+1=", password="pass-123")
    secrets = known_secrets()
    assert {"key-1234", "sec/ret+1=", "pass-123"} <= secrets
    assert "sec%2Fret%2B1%3D" in secrets  # URL-encoded form, as it would appear in a query string


def test_missing_env_var_names_variable_and_where() -> None:
    ref = CredentialsRef(api_key_env="K", secret_env="FOLLOWER_SECRET")
    with pytest.raises(SecretError) as info:
        resolve(ref, where="followers[f1].credentials", env={"K": "visible-key-value"})
    assert str(info.value) == (
        "followers[f1].credentials.secret_env: environment variable FOLLOWER_SECRET is not set"
    )
    with pytest.raises(SecretError, match="FOLLOWER_SECRET is empty"):
        resolve(ref, where="w", env={"K": "abcd", "FOLLOWER_SECRET": "  "})


def test_files_relative_to_base_dir(tmp_path: Path) -> None:
    write_secret(tmp_path / "k", "file-key-1")
    write_secret(tmp_path / "s", "file-secret-1")
    ref = CredentialsRef(api_key_file="k", secret_file="s")
    creds = resolve(ref, where="w", env={}, base_dir=tmp_path)
    assert (creds.api_key, creds.secret, creds.password) == ("file-key-1", "file-secret-1", None)


def test_credentials_directory_wins_over_base_dir(tmp_path: Path) -> None:
    systemd_dir = tmp_path / "creds"
    systemd_dir.mkdir()
    write_secret(systemd_dir / "token", "from-systemd")
    write_secret(tmp_path / "token", "from-config-dir")
    value = resolve_token(
        SecretRef(file="token"),
        where="api.token",
        env={"CREDENTIALS_DIRECTORY": str(systemd_dir)},
        base_dir=tmp_path,
    )
    assert value == "from-systemd"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_group_or_world_readable_file_is_refused(tmp_path: Path, mode: int) -> None:
    path = write_secret(tmp_path / "secret", "do-not-show-me", mode)
    with pytest.raises(SecretError) as info:
        resolve_token(SecretRef(file=str(path)), where="alerts.webhook", env={})
    message = str(info.value)
    assert message.startswith(f"alerts.webhook.file: credentials file {path} is readable by group or others")
    assert f"chmod 600 {path}" in message
    assert "do-not-show-me" not in message
    assert "do-not-show-me" not in known_secrets()


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match=r"api\.token\.file: cannot read credentials file .*nope"):
        resolve_token(SecretRef(file="nope"), where="api.token", env={}, base_dir=tmp_path)
    write_secret(tmp_path / "empty", "")
    with pytest.raises(SecretError, match="is empty"):
        resolve_token(SecretRef(file="empty"), where="api.token", env={}, base_dir=tmp_path)


def test_refs_require_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one of env or file"):
        SecretRef(env="A", file="b")
    with pytest.raises(ValueError, match="exactly one of api_key_env or api_key_file"):
        CredentialsRef(api_key_env="A", api_key_file="a", secret_env="S")
    with pytest.raises(ValueError, match="at most one of password_env or password_file"):
        CredentialsRef(api_key_env="A", secret_env="S", password_env="P", password_file="p")


def test_short_values_are_not_registered() -> None:
    register_secret("abc")
    register_secret("abcd")
    assert known_secrets() == {"abcd"}
