"""Secrets: API credentials and single secret values (API token, webhook URL), read from
environment variables or owner-only files, never from the config file itself.

Every value resolved here is added to a process-wide registry that the log redactor
(bot.core.redaction) scrubs from every log line, so a secret that slips into an exception text or a URL is
still never written out.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, model_validator

from bot.core.redaction import register_secret
from bot.core.types import Credentials


class SecretError(Exception):
    """A secret could not be resolved. The message names where it was asked for, never its value."""


class _Ref(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CredentialsRef(_Ref):
    """Where an account's API credentials live: each part from an env var or a file."""

    api_key_env: str | None = None
    api_key_file: str | None = None
    secret_env: str | None = None
    secret_file: str | None = None
    password_env: str | None = None
    password_file: str | None = None

    @model_validator(mode="after")
    def _one_source_each(self) -> CredentialsRef:
        problems = []
        for part in ("api_key", "secret"):
            if (getattr(self, f"{part}_env") is None) == (getattr(self, f"{part}_file") is None):
                problems.append(f"set exactly one of {part}_env or {part}_file")
        if self.password_env is not None and self.password_file is not None:
            problems.append("set at most one of password_env or password_file")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class SecretRef(_Ref):
    """Where a single secret value lives: `{env: NAME}` or `{file: path}`."""

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("set exactly one of env or file")
        return self


def _from_env(name: str, *, where: str, env: Mapping[str, str]) -> str:
    value = env.get(name)
    if value is None:
        raise SecretError(f"{where}: environment variable {name} is not set")
    value = value.strip()
    if not value:
        raise SecretError(f"{where}: environment variable {name} is empty")
    return value


def _file_path(name: str, *, env: Mapping[str, str], base_dir: Path | None) -> Path:
    path = Path(name).expanduser()
    if path.is_absolute():
        return path
    # systemd's LoadCredential= hands secrets over in $CREDENTIALS_DIRECTORY.
    credentials_dir = env.get("CREDENTIALS_DIRECTORY")
    if credentials_dir:
        return Path(credentials_dir) / path
    return (base_dir or Path.cwd()) / path


def _from_file(name: str, *, where: str, env: Mapping[str, str], base_dir: Path | None) -> str:
    path = _file_path(name, env=env, base_dir=base_dir)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise SecretError(f"{where}: cannot read credentials file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise SecretError(f"{where}: credentials file {path} is not a regular file")
    if mode & 0o077:
        raise SecretError(
            f"{where}: credentials file {path} is readable by group or others "
            f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
        )
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretError(f"{where}: cannot read credentials file {path}: {exc.strerror}") from None
    if not value:
        raise SecretError(f"{where}: credentials file {path} is empty")
    return value


def _one(
    env_name: str | None,
    file_name: str | None,
    *,
    where: str,
    field: str,
    env: Mapping[str, str],
    base_dir: Path | None,
) -> str | None:
    if env_name is not None:
        value = _from_env(env_name, where=f"{where}.{field}_env", env=env)
    elif file_name is not None:
        value = _from_file(file_name, where=f"{where}.{field}_file", env=env, base_dir=base_dir)
    else:
        return None
    register_secret(value)
    return value


def resolve(
    ref: CredentialsRef,
    *,
    where: str,
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Credentials:
    """Read an account's credentials. `where` names the config location for error messages
    (e.g. "followers[f1].credentials"); relative files resolve against $CREDENTIALS_DIRECTORY,
    else `base_dir` (the config file's folder), else the working directory."""
    source = os.environ if env is None else env

    def part(field: str, env_name: str | None, file_name: str | None) -> str | None:
        return _one(env_name, file_name, where=where, field=field, env=source, base_dir=base_dir)

    api_key = part("api_key", ref.api_key_env, ref.api_key_file)
    secret = part("secret", ref.secret_env, ref.secret_file)
    password = part("password", ref.password_env, ref.password_file)
    if api_key is None or secret is None:  # the model validator makes this unreachable
        raise SecretError(f"{where}: api_key and secret are both required")
    return Credentials(api_key=api_key, secret=secret, password=password)


def resolve_token(
    ref: SecretRef,
    *,
    where: str,
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> str:
    """Read a single secret value (API token, webhook URL) from `{env:}` or `{file:}`."""
    source = os.environ if env is None else env
    if ref.env is not None:
        value = _from_env(ref.env, where=f"{where}.env", env=source)
    elif ref.file is not None:
        value = _from_file(ref.file, where=f"{where}.file", env=source, base_dir=base_dir)
    else:
        raise SecretError(f"{where}: set exactly one of env or file")
    register_secret(value)
    return value


def register_url_parts(url: str) -> None:
    """A notification URL holds its token in the user info, the path or the query
    (tgram://TOKEN/CHAT, discord://ID/TOKEN, mailto://user:PASSWORD@host): register each part that
    could be one, so a library that logs a piece of the URL still has it scrubbed."""
    parts = urlsplit(url)
    pieces = [parts.username, parts.password, parts.netloc, *parts.path.split("/")]
    pieces += [value for _, value in parse_qsl(parts.query)]
    for piece in pieces:
        if piece and len(piece) >= 6:  # short pieces (ports, "json", "chat") would mask ordinary words
            register_secret(piece)
