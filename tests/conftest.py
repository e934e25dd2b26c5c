"""Shared fixtures. Every test gets a private cache dir and a clean environment, and real model
requests are blocked unless the test is marked ``allow_model_requests``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import llmcat.backends
from llmcat.backends.openai import _answered, _servers

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SHARED = Path(os.environ.get("LLMCAT_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))


def require(condition: bool, why: str) -> None:
    """Skip a test whose component is missing - but fail it in CI, where nothing may be missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true and a required component is missing: {why}")
    pytest.skip(why)


#: read by Settings as well as LLMCAT_*: a developer's own values must not leak into tests
OPENAI_VARIABLES = ("OPENAI_API_KEY", "OPENAI_BASE_URL")


@pytest.fixture(autouse=True)
def _isolated(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[None]:
    for name in list(os.environ):
        if (name.startswith("LLMCAT_") and name != "LLMCAT_SHARED_DIR") or name in OPENAI_VARIABLES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLMCAT_CACHE_DIR", str(tmp_path / "cache"))
    allowed = request.node.get_closest_marker("allow_model_requests") is not None
    monkeypatch.setattr(llmcat.backends, "ALLOW_MODEL_REQUESTS", allowed)
    _servers.clear()  # what a server is, as probed: per process, so per test here
    _answered.clear()  # which servers answered: per process too
    yield
    _servers.clear()
    _answered.clear()


@pytest.fixture
def shared_dir() -> Path:
    require(SHARED.is_dir(), f"the shared data folder {SHARED} (set LLMCAT_SHARED_DIR)")
    return SHARED
