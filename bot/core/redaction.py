"""Secret redaction: the process-wide registry of secret values and the scrubber that removes them,
and secret-looking substrings, from any text (log lines, journal reasons, API answers).

Every value bot.config.secrets resolves is registered here; the log processor (bot.service.logs) and
the journal (bot.journal) run their free text through `redact_text`.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import quote

# Shorter values are not worth hiding and would shred every log line they happen to occur in.
MIN_REGISTERED_LENGTH = 4

MASK = "***"

# Keys whose values are secrets whatever they hold; matched on the lowercased key without - and _.
SECRET_KEY = re.compile(r"apikey|secret|signature|token|password|passphrase|listenkey|authorization")

_PATTERNS = (
    # signature=<hex> in a signed query string or form body
    (re.compile(r"(signature=)[^&\s'\"]+", re.IGNORECASE), r"\1" + MASK),
    # X-MBX-APIKEY: value / 'X-MBX-APIKEY': 'value' / "Authorization": "Bearer x"
    (
        re.compile(
            r"""((?:x-mbx-apikey|authorization)['"]?\s*[:=]\s*['"]?)(?:bearer\s+)?[^'"\s,}&]+""", re.I
        ),
        r"\1" + MASK,
    ),
    # listenKey in a websocket URL (path or query) or a JSON body
    (re.compile(r"""(listenkey['"]?\s*[=:/]\s*['"]?)[A-Za-z0-9]{16,}""", re.IGNORECASE), r"\1" + MASK),
    (re.compile(r"(/ws/)[A-Za-z0-9]{40,}"), r"\1" + MASK),
    # a long run of key-like characters with both letters and digits (API keys, HMACs, tokens)
    (
        re.compile(
            r"(?<![A-Za-z0-9+/=_-])(?=[A-Za-z0-9+/=_-]*\d)(?=[A-Za-z0-9+/=_-]*[A-Za-z])[A-Za-z0-9+/=_-]{40,}"
        ),
        MASK,
    ),
)

_registry_lock = threading.Lock()
_registry: set[str] = set()
_registry_version = 0


def register_secret(value: str) -> None:
    """Add a value (and its URL-encoded form) to the set the log redactor scrubs."""
    global _registry_version
    if len(value) < MIN_REGISTERED_LENGTH:
        return
    forms = {value, quote(value, safe="")}
    with _registry_lock:
        if not forms <= _registry:
            _registry.update(forms)
            _registry_version += 1


def known_secrets() -> frozenset[str]:
    with _registry_lock:
        return frozenset(_registry)


def registry_version() -> int:
    """Bumped on every change, so the redactor can cache its compiled pattern."""
    return _registry_version


def clear_secrets() -> None:
    """Forget every registered value (tests only: a running bot never forgets a secret)."""
    global _registry_version
    with _registry_lock:
        _registry.clear()
        _registry_version += 1


_known: tuple[int, re.Pattern[str] | None] = (-1, None)


def _known_pattern() -> re.Pattern[str] | None:
    """One alternation of every registered secret, longest first, rebuilt only on change."""
    global _known
    version = registry_version()
    if _known[0] != version:
        values = sorted(known_secrets(), key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(v) for v in values)) if values else None
        _known = (version, pattern)
    return _known[1]


def redact_text(text: str) -> str:
    """Scrub registered secrets and secret-looking substrings from one string."""
    known = _known_pattern()
    if known is not None:
        text = known.sub(MASK, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
