"""Listing copy as data: the JSON schema of one piece of copy, parsing a model's answer (also a
fenced or truncated one), word counting that understands CJK, and length limits checked and
enforced. Pure functions; ``Describer`` puts them to work.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pydantic_core
from pydantic import BaseModel, ConfigDict

from llmcat.config.options import CopyLimits
from llmcat.errors import ConfigError, OutputError

if TYPE_CHECKING:
    from pydantic import JsonValue


class ListingCopy(BaseModel):
    """One piece of listing copy: what the model wrote (``parse_copy``), cut to the limits
    (``enforce_limits``) or composed from the product's fields (``compose_copy``)."""

    model_config = ConfigDict(frozen=True)

    title: str
    bullets: tuple[str, ...]
    body: str

    def as_record(self) -> dict[str, JsonValue]:
        """``{"title", "bullets", "body"}`` as a result record holds it (``rejected_copy``)."""
        return {"title": self.title, "bullets": list(self.bullets), "body": self.body}


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def count_words(text: str) -> float:
    """Words in ``text``; each CJK character counts 0.5 (a Chinese word is about two)."""
    cjk = len(_CJK.findall(text))
    latin = len(_CJK.sub(" ", text).split())
    return latin + cjk / 2


def cut_to_words(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` words at a word boundary."""
    if count_words(text) <= limit:
        return text
    if _CJK.search(text):
        out = ""
        for ch in text:
            if count_words(out + ch) > limit:
                break
            out += ch
        return out.rstrip()
    return " ".join(text.split()[:limit]).rstrip(",;:-")


def copy_schema(limits: CopyLimits, language: str) -> dict[str, JsonValue]:
    """The JSON schema for one piece of copy; maxLength bounds the words (about 8 characters each)."""
    chars = 4 if language == "zh" else 8
    title_max = limits.title_chars or limits.title_words * chars
    bullet_max = limits.bullet_chars or limits.bullet_words * chars
    body_max = limits.body_chars or limits.body_words * chars
    return {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": title_max},
            "bullets": {
                "type": "array",
                "items": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": bullet_max,
                },
                "minItems": limits.bullets,
                "maxItems": limits.bullets,
            },
            "body": {"type": "string", "minLength": 1, "maxLength": body_max},
        },
        "required": ["title", "bullets", "body"],
        "additionalProperties": False,
    }


def close_truncated_json(text: str) -> JsonValue:
    """The object in ``text`` when generation stopped mid-way (``max_tokens``): pydantic-core's
    partial JSON keeps every complete value and the open string at the end. None when nothing
    parses."""
    try:
        value: JsonValue = pydantic_core.from_json(text, allow_partial="trailing-strings")
        return value
    except ValueError:
        return None


def parse_copy(text: str) -> ListingCopy:
    """The JSON object in the model's answer (also inside a ```json fence); OutputError if none."""
    candidate = text.strip()
    fence = re.search(r"```(?:json)?\s*(\{.*\})\s*```", candidate, re.S)
    if fence:
        candidate = fence.group(1)
    elif not candidate.startswith("{") and "{" in candidate:
        candidate = candidate[candidate.find("{") : candidate.rfind("}") + 1]
    try:
        data = json.loads(candidate)
    except ValueError:
        # A model that loops until max_tokens leaves an unterminated object; keep what it wrote.
        data = close_truncated_json(candidate) if candidate.startswith("{") else None
        if data is None:
            raise OutputError("the answer is not a JSON object", raw=text) from None
    if not isinstance(data, dict):
        raise OutputError("the answer is not a JSON object", raw=text)
    bullets = data.get("bullets", [])
    if isinstance(bullets, str):
        bullets = [b.strip("-• ").strip() for b in bullets.splitlines() if b.strip()]
    if not isinstance(data.get("title"), str) or not isinstance(data.get("body", ""), str):
        raise OutputError("'title' and 'body' must be strings", raw=text)
    if not isinstance(bullets, list) or not all(isinstance(b, str) for b in bullets):
        raise OutputError("'bullets' must be a list of strings", raw=text)
    return ListingCopy(
        title=data["title"].strip(),
        bullets=tuple(b.strip() for b in bullets),
        body=data.get("body", "").strip(),
    )


def field_limits(limits: CopyLimits) -> dict[str, tuple[int, int | None]]:
    """Per field kind: (word limit, character limit or None)."""
    return {
        "title": (limits.title_words, limits.title_chars),
        "bullet": (limits.bullet_words, limits.bullet_chars),
        "body": (limits.body_words, limits.body_chars),
    }


def within(text: str, words: int, chars: int | None) -> bool:
    """True when ``text`` respects both limits."""
    return count_words(text) <= words and (chars is None or len(text) <= chars)


def limit_problems(copy: ListingCopy, limits: CopyLimits) -> list[str]:
    """Human-readable limit violations, for the re-ask."""
    problems = []
    lim = field_limits(limits)

    def describe_limit(kind: str) -> str:
        words, chars = lim[kind]
        return f"{words} words" + (f" or {chars} characters" if chars else "")

    if not copy.title:
        problems.append("the title is empty")
    if not within(copy.title, *lim["title"]):
        problems.append(f"the title is longer than {describe_limit('title')}")
    if len(copy.bullets) != limits.bullets:
        problems.append(f"write exactly {limits.bullets} bullets, not {len(copy.bullets)}")
    for i, bullet in enumerate(copy.bullets, 1):
        if not within(bullet, *lim["bullet"]):
            problems.append(f"bullet {i} is longer than {describe_limit('bullet')}")
    if not within(copy.body, *lim["body"]):
        problems.append(f"the body is longer than {describe_limit('body')}")
    return problems


def cut_to_limits(text: str, words: int, chars: int | None) -> str:
    """``text`` cut at a word boundary to fit the word and character limits."""
    text = cut_to_words(text, words)
    if chars is None or len(text) <= chars:
        return text
    cut = text[:chars]
    if not _CJK.search(cut) and " " in cut and not text[chars : chars + 1].isspace():
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:-")


def enforce_limits(copy: ListingCopy, limits: CopyLimits) -> ListingCopy:
    """Cut every field to its limits and drop surplus bullets."""
    lim = field_limits(limits)
    return ListingCopy(
        title=cut_to_limits(copy.title, *lim["title"]),
        bullets=tuple(cut_to_limits(b, *lim["bullet"]) for b in copy.bullets[: limits.bullets]),
        body=cut_to_limits(copy.body, *lim["body"]),
    )


def copy_fields(copy: ListingCopy | Mapping[str, object]) -> dict[str, str]:
    """Field name -> text, for the grounding check; ``copy`` may also be a result record's
    title, bullets and body (the evals read them from a run's records)."""
    listing = copy if isinstance(copy, ListingCopy) else ListingCopy.model_validate(dict(copy))
    fields = {"title": listing.title, "body": listing.body}
    fields.update({f"bullet {i}": b for i, b in enumerate(listing.bullets, 1)})
    return fields


STYLES = {"marketplace": "describe.j2", "seo": "describe_seo.j2", "concise": "describe_concise.j2"}


def style_template(style: str) -> str:
    """The template file of a style: the built-in ones, or ``describe_<style>.j2`` of your own."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", style):
        raise ConfigError(f"invalid style name {style!r}")
    return STYLES.get(style, f"describe_{style}.j2")
