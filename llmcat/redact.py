"""One redaction step for everything llmcat writes about a failure: error messages, error
records, logs and reports. It removes the API keys llmcat was configured with (registered when
settings are resolved or a backend is built), ``Authorization`` values, bearer and basic
credentials, values of ``api_key``-like fields a server may echo, credentials in URLs (the
userinfo, and query parameters such as ``?key=`` and ``&token=``). Pure, apart from the
process-wide set of registered keys.
"""

from __future__ import annotations

import base64
import re
import threading
from urllib.parse import unquote, urlsplit

MASK = "***"
_secrets: set[str] = set()
_lock = threading.Lock()

# userinfo up to the last "@" before the host: a password may hold an "@" of its own
_URL_CREDENTIALS = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^\s/?#]*@")
# query parameters that carry credentials (?key=, &token=, ?api_key=, ?sig=, ...)
_QUERY_SECRETS = re.compile(
    r"([?&;](?:key|token|api[_-]?key|apikey|access[_-]?token|auth|code|sig|signature|secret|"
    r"password|pass|pwd)=)[^&\s#\"'<>]+",
    re.I,
)
# HTTP Basic credentials: base64, so a multiple of 4 characters with a digit or an inner capital
# ("Basic dXNlcjpwYXNz"), never product words such as "Basic Cotton"
_BASIC = re.compile(r"\b(Basic\s+)([A-Za-z0-9+/]{8,}={0,2})(?![A-Za-z0-9+/=])")
_AUTHORIZATION = re.compile(r"(\bauthorization\b[\"']?\s*[:=]\s*[\"']?)[^\"',}\r\n]+", re.I)
_BEARER = re.compile(r"(\bbearer\s+)[A-Za-z0-9._~+/=-]+", re.I)
_KEY_FIELDS = re.compile(
    r"(\b(?:api[_-]?key|x-api-key|access[_-]?token|secret|password)\b[\"']?\s*[:=]\s*[\"']?)"
    r"[^\"'\s,}&]+",
    re.I,
)


def register_secret(value: str | None) -> None:
    """Remember a key so that ``redact`` removes it wherever it shows up (4+ characters; the
    placeholder ``EMPTY`` that keyless servers get is not a secret)."""
    if value and len(value) >= 4 and value != "EMPTY":
        with _lock:
            _secrets.add(value)


def register_url_credentials(url: str | None) -> None:
    """Remember the credentials a URL carries (``http://user:key@host/v1``): the password, and
    ``user:password`` in the base64 an HTTP client sends as Basic auth, so that a server that
    echoes the Authorization value in any form (a bare token, a JSON field) never shows them."""
    if not url:
        return
    try:
        parsed = urlsplit(url)
        user, password = parsed.username, parsed.password
    except ValueError:
        return
    if password is None:
        return  # a bare user name is not a secret
    register_secret(password)
    register_secret(unquote(password))
    for pair in {f"{user or ''}:{password}", f"{unquote(user or '')}:{unquote(password)}"}:
        encoded = pair.encode("utf-8")
        for token in (base64.b64encode(encoded), base64.urlsafe_b64encode(encoded)):
            register_secret(token.decode("ascii"))
            register_secret(token.decode("ascii").rstrip("="))


def redact(text: str) -> str:
    """``text`` without registered keys, authorization values, key fields or URL credentials."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    text = _URL_CREDENTIALS.sub(rf"\1{MASK}@", text)
    text = _QUERY_SECRETS.sub(rf"\1{MASK}", text)
    text = _AUTHORIZATION.sub(rf"\1{MASK}", text)
    text = _BEARER.sub(rf"\1{MASK}", text)
    text = _BASIC.sub(_mask_basic, text)
    return _KEY_FIELDS.sub(rf"\1{MASK}", text)


def _mask_basic(match: re.Match[str]) -> str:
    token = match.group(2)
    looks_encoded = len(token) % 4 == 0 and bool(re.search(r"[0-9+/=]|.[A-Z]", token))
    return match.group(1) + MASK if looks_encoded else match.group(0)


__all__ = ["MASK", "redact", "register_secret", "register_url_credentials"]
