"""Which vLLM constraint fields a server version takes (pure)."""

from __future__ import annotations

import pytest

from llmcat.backends.openai import vllm_mode


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.10.2", "vllm"),
        ("0.10.1.1", "vllm-guided"),
        ("0.6.3.post1", "vllm-guided"),
        ("0.32.0", "vllm"),
        ("1.0.0rc1", "vllm"),
        ("0.11.0+cpu", "vllm"),
        ("dev", "vllm"),
        (None, "vllm"),
        ("", "vllm"),
    ],
)
def test_vllm_mode_from_version(version: str | None, expected: str) -> None:
    assert vllm_mode(version) == expected
