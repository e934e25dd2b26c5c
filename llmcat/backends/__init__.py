"""Backends by name. Each is imported on first use, so ``import llmcat`` stays light."""

from __future__ import annotations

import importlib

from llmcat.backends.base import Backend
from llmcat.config.settings import Settings
from llmcat.errors import ConfigError

#: Unit tests set this to False (see tests/conftest.py) so that no test reaches a real model or
#: server by accident; real backends check it before every request.
ALLOW_MODEL_REQUESTS = True


def check_allowed(backend_name: str) -> None:
    """ConfigError when real model requests are switched off."""
    if not ALLOW_MODEL_REQUESTS:
        raise ConfigError(
            f"model requests are blocked (llmcat.backends.ALLOW_MODEL_REQUESTS is False); the "
            f"{backend_name} backend was about to be called - use FakeBackend in unit tests"
        )


# name -> "module:Class"; the module is imported only when the backend is asked for.
REGISTRY: dict[str, str] = {
    "openai": "llmcat.backends.openai:OpenAIBackend",
    "local": "llmcat.backends.local:LocalBackend",
    "vllm": "llmcat.backends.vllm:VLLMBackend",
    "fake": "llmcat.backends.fake:FakeBackend",
}


def backend_class(name: str) -> type[Backend]:
    """The class registered under ``name``; ConfigError for an unknown name."""
    try:
        target = REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError(f"unknown backend {name!r}; known backends: {known}") from None
    module_name, class_name = target.split(":")
    cls: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return cls


def create_backend(settings: Settings) -> Backend:
    """The backend named by resolved settings, built by its own ``from_settings``."""
    s = settings.resolved()
    assert s.backend is not None
    return backend_class(s.backend).from_settings(s)


__all__ = [
    "ALLOW_MODEL_REQUESTS",
    "REGISTRY",
    "Backend",
    "backend_class",
    "check_allowed",
    "create_backend",
]
