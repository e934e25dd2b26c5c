"""Every exception llmcat raises on purpose.

    LlmcatError
    ├── ConfigError            the caller's setup is wrong (unknown backend, missing model, bad option)
    │   ├── TaxonomyError      a taxonomy file or label set cannot be used
    │   └── EndpointError      the server refused the setup: 401/403 (credentials), 404 (unknown
    │                          model or path), it does not speak the OpenAI API, or nothing listens
    │                          at the URL (refused before it ever answered); status_code
    ├── InputError             one product cannot be classified or described (empty title, ...)
    ├── BackendError           the model or its server failed; carries retryable/status_code/original
    │   ├── TransportError     connection refused, reset, timed out (retryable)
    │   ├── RateLimitError     HTTP 429 (retryable; retry_after in seconds when the server said)
    │   └── ServerError        any other non-2xx answer (5xx retryable, 4xx not)
    │       └── ImagesRejected a 4xx saying the model takes no images (the request is sent
    │                          again without them, once)
    └── OutputError            the model answered but not in the required shape, even after a re-ask

Caller mistakes (ConfigError and below) are raised at once, and stop a batch at the first item
that proves them: the same mistake would fail every item. Inside a batch, InputError,
BackendError and OutputError become an ``ErrorRecord`` on that item's result and the batch goes
on. Messages never carry a configured API key or URL credentials (``llmcat.redact``).
"""

from __future__ import annotations


class LlmcatError(Exception):
    """Root of every error llmcat raises on purpose."""


class ConfigError(LlmcatError):
    """The caller's configuration is wrong; fix the call, do not retry."""


class TaxonomyError(ConfigError):
    """A taxonomy cannot be built or used (empty, duplicate ids, unknown category)."""


class EndpointError(ConfigError):
    """The server refused llmcat's setup (credentials, model, path) or is not OpenAI-compatible;
    retrying cannot help, fixing the configuration can. ``status_code`` is the HTTP status."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retryable = False


class InputError(LlmcatError):
    """One product is unusable, e.g. its title is empty after cleaning. ``product_id`` names it
    when its record had an id (a duplicate id, say), for its error record."""

    def __init__(self, message: str = "", *, product_id: str | None = None) -> None:
        super().__init__(message)
        self.product_id = product_id


class BackendError(LlmcatError):
    """The model or its server failed.

    ``retryable`` tells the transport retry layer whether to try again; ``status_code`` is the HTTP
    status when there was one; ``original`` is the SDK exception this was translated from.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        status_code: int | None = None,
        original: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code
        self.original = original


class TransportError(BackendError):
    """The request did not get an answer: connection error or timeout."""

    def __init__(self, message: str, *, original: BaseException | None = None) -> None:
        super().__init__(message, retryable=True, original=original)


class RateLimitError(BackendError):
    """HTTP 429. ``retry_after`` holds the server's Retry-After in seconds, if it sent one."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        original: BaseException | None = None,
    ) -> None:
        super().__init__(message, retryable=True, status_code=429, original=original)
        self.retry_after = retry_after


class ServerError(BackendError):
    """A non-2xx answer other than 429; 5xx, 408 and 409 are retryable, other 4xx are not."""


class OutputError(LlmcatError):
    """The model's answer does not fit the required shape (unknown label, invalid JSON)."""

    def __init__(self, message: str, *, raw: str | None = None) -> None:
        super().__init__(message)
        self.raw = raw


class ImagesRejected(ServerError):
    """The server refused a request because of its images (a model without vision); llmcat
    sends it again without them and stops sending images to that backend."""
