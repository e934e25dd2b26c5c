from pathlib import Path

import pytest

from llmcat import ConfigError, Product
from llmcat.llm.prompts import PromptTemplate


def test_classify_template_puts_labels_before_the_product() -> None:
    t = PromptTemplate("classify.j2")
    messages = t.render(
        {
            "product": Product(title="Red mug", brand="Acme"),
            "labels": ["Mugs", "Plates"],
            "description_chars": 100,
            "attribute_limit": 10,
        }
    )
    assert [m.role for m in messages] == ["system", "user"]
    assert "- Mugs" in messages[0].content and "Red mug" not in messages[0].content
    assert "Title: Red mug" in messages[1].content and "Brand: Acme" in messages[1].content
    assert len(t.version) == 12


def test_strict_undefined_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="undefined"):
        PromptTemplate("classify.j2").render({"product": Product(title="x")})


def test_user_template_dir_overrides_and_changes_version(tmp_path: Path) -> None:
    (tmp_path / "classify.j2").write_text(
        "{% block system %}Pick one of {{ labels|join(', ') }}{% endblock %}{% block user %}{{ product.title }}{% endblock %}"
    )
    custom = PromptTemplate("classify.j2", tmp_path)
    assert custom.version != PromptTemplate("classify.j2").version
    messages = custom.render({"product": Product(title="Mug"), "labels": ["A", "B"]})
    assert messages[0].content == "Pick one of A, B"


def test_missing_template_and_missing_blocks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        PromptTemplate("nope.j2", tmp_path)
    (tmp_path / "bad.j2").write_text("no blocks")
    with pytest.raises(ConfigError, match="lacks block"):
        PromptTemplate("bad.j2", tmp_path)


def test_sandbox_blocks_attribute_escapes(tmp_path: Path) -> None:
    (tmp_path / "evil.j2").write_text(
        "{% block system %}{{ product.__class__.__mro__ }}{% endblock %}{% block user %}x{% endblock %}"
    )
    with pytest.raises(Exception, match=r"unsafe|not safely|access"):
        PromptTemplate("evil.j2", tmp_path).render({"product": Product(title="x")})
