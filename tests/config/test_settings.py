"""Settings from arguments and the environment (pydantic-settings): which wins, which variables
are read, and what a bad value says."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmcat import Settings
from llmcat.config.settings import default_cache_dir
from llmcat.errors import ConfigError


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


def test_a_flag_left_out_leaves_the_setting_to_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from llmcat.cli import build_parser
    from llmcat.cli._common import settings_from as _settings

    monkeypatch.setenv("LLMCAT_BASE_URL", "http://vllm:8000/v1")
    monkeypatch.setenv("LLMCAT_TIMEOUT", "5")
    parse = build_parser().parse_args
    s = _settings(parse(["classify", "shoe", "--labels", "a,b"])).resolved()
    assert (s.base_url, s.timeout, s.backend) == ("http://vllm:8000/v1", 5.0, "openai")
    # Typed flags win, also one typed at its default value.
    typed = parse(
        ["classify", "shoe", "--labels", "a,b", "--timeout", "60", "--base-url", "http://x:1/v1"]
    )
    s = _settings(typed).resolved()
    assert (s.base_url, s.timeout) == ("http://x:1/v1", 60.0)


def test_the_eval_harness_reads_the_environment_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmcat.config.flags import given
    from llmcat.evals.commands import build_parser as evals_parser

    monkeypatch.setenv("LLMCAT_TIMEOUT", "7")
    args = evals_parser("evals").parse_args(["run", "--out", "o"])
    assert Settings(**given(args, Settings)).timeout == 7.0
    args = evals_parser("evals").parse_args(["run", "--out", "o", "--timeout", "9"])
    assert Settings(**given(args, Settings)).timeout == 9.0


def test_quiet_turns_the_progress_bar_off_unless_progress_is_typed() -> None:
    from llmcat.cli import build_parser
    from llmcat.cli._common import settings_from as _settings
    from llmcat.cli.main import _quiet_means_no_progress

    for top, sub, expected in (
        (["-q"], [], False),
        (["-q"], ["--progress"], True),
        ([], [], None),
    ):
        args = build_parser().parse_args([*top, "classify", "shoe", "--labels", "a,b", *sub])
        _quiet_means_no_progress(args)
        assert _settings(args).progress is expected, (top, sub)


def test_repr_never_shows_the_key_or_url_credentials() -> None:
    """Issue 41: repr(Classifier(...).settings) showed api_key in clear."""
    from llmcat import Classifier

    key, password = "sk-test-abcdef0123456789", "pw-0123456789"
    url = f"http://user:{password}@127.0.0.1:9/v1"
    settings = Classifier(["A", "B"], backend="fake", api_key=key, base_url=url).settings
    for shown in (repr(settings), str(settings), f"{settings!r}"):
        assert key not in shown and password not in shown and "api_key='***'" in shown
    assert settings.api_key == key and settings.model_dump()["api_key"] == key  # still usable
