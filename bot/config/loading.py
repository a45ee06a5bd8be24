"""Reading a config file: YAML into plain data, and the problems found in it rendered as
"key path: message" lines.

Kept apart from the models in bot.config.models so that those read as the key reference. Nothing here
knows the models: `validation_problems` only renders what pydantic reported against the input.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


class ConfigError(Exception):
    """An invalid config file; the message lists every problem, one per line."""


class _Loader(yaml.SafeLoader):
    """Floats become Decimals from their source text; duplicate keys are an error."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "").lower()
    if text.lstrip("+-") in (".inf", ".nan"):
        raise yaml.constructor.ConstructorError(None, None, f"{text} is not a usable number", node.start_mark)
    return Decimal(text)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The file's top-level mapping; ConfigError naming the file (and line) if it is unreadable,
    not YAML, empty or not a mapping."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{source}: {where}{exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if data is None:
        raise ConfigError(f"{source}: the file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, not {type(data).__name__}")
    return data


# ---------------------------------------------------------------- problems

_SECRET_KEY = re.compile(r"api_?key|secret|password|passphrase|token|private_?key|webhook|listen_?key")


def inline_secrets(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(key path, message) for every secret-looking key holding a literal value."""
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            name = str(key).lower().replace("-", "_")
            is_reference = name.endswith(("_env", "_file"))
            # A notification URL carries its destination's token (alerts.notify[].url).
            secret_name = bool(_SECRET_KEY.search(name)) or (name == "url" and "notify[" in path)
            if secret_name and not is_reference and value is not None and not isinstance(value, dict):
                hint = (
                    "{env: NAME} or {file: path}"
                    if name in ("token", "webhook", "url")
                    else f"{key}_env: NAME or {key}_file: path"
                )
                yield (
                    sub,
                    (
                        "inline secrets are refused; keep the value in an environment variable or a "
                        f"credentials file and reference it ({hint})"
                    ),
                )
            else:
                yield from inline_secrets(value, sub)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from inline_secrets(item, f"{path}[{i}]")


def validation_problems(data: Any, exc: ValidationError, secret_paths: set[str]) -> list[tuple[str, str]]:
    """(key path, message) for pydantic's errors on `data`, leaving out those below a key already
    refused as an inline secret."""
    problems: list[tuple[str, str]] = []
    found = [(_key_path(data, err["loc"]), err) for err in exc.errors()]
    reported = secret_paths | {path for path, _ in found}
    for key_path, err in found:
        if _is_under(key_path, secret_paths):
            continue
        # pydantic also reports a too-short list when its only items are invalid: noise.
        if err["type"] == "too_short" and any(p != key_path and _is_under(p, {key_path}) for p in reported):
            continue
        problems.append((key_path, _message(err)))
    return problems


def _is_under(path: str, parents: set[str]) -> bool:
    return any(path == p or path.startswith((p + ".", p + "[")) for p in parents)


def _key_path(data: Any, loc: tuple[int | str, ...]) -> str:
    """Render pydantic's loc against the input, dropping union-branch tags that are not keys."""
    out = ""
    node = data
    for i, part in enumerate(loc):
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            out += f"[{part}]"
            node = node[part]
        elif isinstance(node, dict) and part in node:
            out += f".{part}" if out else str(part)
            node = node[part]
        elif isinstance(node, dict) and i == len(loc) - 1:  # a missing key
            out += f".{part}" if out else str(part)
        else:
            node = None  # a union tag; nothing below it is a key of the input
    return out


def _message(err: Any) -> str:
    kind, msg = err["type"], str(err["msg"])
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if msg.startswith("Value error, "):
        return msg.removeprefix("Value error, ")
    if msg.startswith("Input should be "):
        return "must be " + msg.removeprefix("Input should be ")
    return msg
