"""What the HTTP server is allowed to do: limits, the deadline, the keys (pure, no I/O but
reading a key file)."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llmcat.errors import ConfigError

#: the environment variable that holds the API keys, comma-separated
KEYS_VARIABLE = "LLMCAT_API_KEYS"


@dataclass(frozen=True)
class ApiConfig:
    """The server's limits. A request waits at most ``deadline`` seconds (queueing included);
    at most ``max_pending`` products are admitted and unanswered at once (more: 503 with
    ``Retry-After``); a list holds at most ``max_items`` products and a body at most
    ``max_body_bytes`` bytes (413)."""

    deadline: float = 10.0
    max_pending: int = 1024
    max_items: int = 64
    max_body_bytes: int = 1_000_000
    retry_after: int = 1
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.deadline > 0:
            raise ConfigError(f"the deadline must be above 0 seconds, not {self.deadline}")
        for name in ("max_pending", "max_items", "max_body_bytes", "retry_after"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.max_items > self.max_pending:
            raise ConfigError(
                f"max_items ({self.max_items}) above max_pending ({self.max_pending}): "
                "a full list could never be admitted"
            )


def load_keys(environ: Mapping[str, str], key_file: Path | None = None) -> tuple[str, ...]:
    """The API keys: ``LLMCAT_API_KEYS`` (comma-separated) and ``key_file`` (one per line,
    ``#`` starts a comment). A key holds no blank; an empty setting means no keys."""
    keys = [k.strip() for k in environ.get(KEYS_VARIABLE, "").split(",")]
    if key_file is not None:
        try:
            text = key_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the API key file {key_file}: {exc}") from None
        keys += [line.split("#", 1)[0].strip() for line in text.splitlines()]
    found = tuple(dict.fromkeys(k for k in keys if k))
    for n, key in enumerate(found, 1):
        if any(c.isspace() for c in key):
            raise ConfigError(f"API key {n} holds a blank; keys are single words")
    return found


def authorised(header: str | None, keys: Sequence[str]) -> bool:
    """Whether an ``Authorization`` header carries one of ``keys`` as a bearer token. Every key
    is compared, each in constant time, so the time taken says nothing about which matched."""
    scheme, _, token = (header or "").partition(" ")
    given = token.strip().encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key.encode())
    return matched and scheme.lower() == "bearer"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only takes connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
