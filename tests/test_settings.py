"""Settings from arguments and the environment (pydantic-settings): which wins, which variables
are read, and what a bad value says."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmcat import Settings
from llmcat.errors import ConfigError
from llmcat.settings import default_cache_dir


def test_an_argument_beats_llmcat_variables_which_beat_openai_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://openai-proxy:9000/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    s = Settings().resolved()
    assert s.base_url == "http://openai-proxy:9000/v1" and s.api_key == "sk-openai"
    assert s.backend == "openai"  # a base URL from anywhere means the wire backend
    monkeypatch.setenv("LLMCAT_BASE_URL", "http://vllm:8000/v1")
    monkeypatch.setenv("LLMCAT_API_KEY", "sk-llmcat")
    s = Settings().resolved()
    assert s.base_url == "http://vllm:8000/v1" and s.api_key == "sk-llmcat"
    assert Settings(base_url="http://given:1/v1").resolved().base_url == "http://given:1/v1"


def test_unrelated_variables_are_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASE_URL", "http://somebody-else:1")
    monkeypatch.setenv("API_KEY", "not-ours")
    monkeypatch.setenv("LLMCAT_SHARED_DIR", "/data")  # ours, but not a setting
    s = Settings().resolved()
    assert s.base_url is None and s.api_key is None and s.backend == "local"


def test_every_field_has_its_llmcat_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMCAT_TIMEOUT", "12.5")
    monkeypatch.setenv("LLMCAT_CONCURRENCY", "3")
    monkeypatch.setenv("LLMCAT_RETRY", '{"attempts": 7}')
    s = Settings(concurrency=5)
    assert (s.timeout, s.concurrency, s.retry.attempts) == (12.5, 5, 7)


def test_a_bad_variable_is_a_config_error_that_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMCAT_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match=r"environment variable LLMCAT_TIMEOUT='soon'"):
        Settings()
    with pytest.raises(ConfigError, match=r"invalid settings option timeout"):
        Settings(timeout="later")
    monkeypatch.setenv("LLMCAT_BASE_URL", "localhost:8000")
    monkeypatch.delenv("LLMCAT_TIMEOUT")
    with pytest.raises(ConfigError, match="not an http"):
        Settings().resolved()


def test_the_cache_folder_is_the_variable_else_the_platforms(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert default_cache_dir() == tmp_path / "cache"  # the test fixture's LLMCAT_CACHE_DIR
    monkeypatch.delenv("LLMCAT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "llmcat"  # Linux: XDG, via platformdirs
    assert Settings().resolved().cache_dir == tmp_path / "xdg" / "llmcat"
