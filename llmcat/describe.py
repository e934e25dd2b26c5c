"""``Describer``: listing copy (title, bullets, body) that states only facts from the input.

Flow for one product: render the style template, ask for JSON constrained by a schema built from
the length limits, validate, run the grounding check. Invalid JSON, broken limits or grounding
findings trigger one re-ask with the problems listed. After that, over-long fields are cut at a
word boundary (so limits always hold) and remaining grounding findings set ``flagged``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from .backends import Backend
from .backends.base import Completion, CompletionRequest, JsonConstraint, Sampling
from .classify import ProductLike
from .engine import Engine, error_record
from .errors import ConfigError, InputError, LlmcatError, OutputError
from .grounding import check_copy, input_text, used_attributes
from .inputs import coerce_product
from .prompts import PromptTemplate
from .settings import Settings
from .types import Description, Finding, Product, Usage

LANGUAGES = {
    "en": "English",
    "zh": "Simplified Chinese",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "ja": "Japanese",
    "hi": "Hindi",
}

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


class CopyLimits(BaseModel):
    """Length limits per field: words (a CJK character counts as half a word) and, optionally,
    characters (a channel's hard limit)."""

    title_words: int = Field(default=15, ge=1)
    bullets: int = Field(default=3, ge=0, le=10)
    bullet_words: int = Field(default=16, ge=1)
    body_words: int = Field(default=120, ge=1)
    title_chars: int | None = Field(default=None, ge=10)
    bullet_chars: int | None = Field(default=None, ge=10)
    body_chars: int | None = Field(default=None, ge=10)


_LIMIT_OPTIONS = {
    "title_words": "title_words",
    "bullets": "bullets",
    "bullet_words": "bullet_words",
    "max_words": "body_words",
    "title_chars": "title_chars",
    "bullet_chars": "bullet_chars",
    "body_chars": "body_chars",
}


def copy_options(options: Mapping[str, Any]) -> tuple[CopyLimits, dict[str, Any]]:
    """Split describe options into limits and prompt options; ConfigError on unknown ones."""
    rest = dict(options)
    try:
        limits = CopyLimits(
            **{_LIMIT_OPTIONS[k]: rest.pop(k) for k in list(rest) if k in _LIMIT_OPTIONS}
        )
    except ValueError as exc:
        raise ConfigError(f"invalid length limit: {exc}") from None
    category = rest.pop("category", None)
    if category is not None and not isinstance(category, str):
        path = getattr(category, "path", None)  # a Classification
        category = " > ".join(path) if path else None
    opts = {
        "tone": rest.pop("tone", "clear and factual"),
        "language": rest.pop("language", "en"),
        "keywords": list(rest.pop("keywords", ())),
        "category": category,
        "must_mention": list(rest.pop("must_mention", ())),
    }
    if rest:
        raise ConfigError(f"unknown describe option(s): {', '.join(sorted(rest))}")
    return limits, opts


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


def copy_schema(limits: CopyLimits, language: str) -> dict[str, Any]:
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


def close_truncated_json(text: str) -> Any:
    """The object in ``text`` when generation stopped mid-way (``max_tokens``): an open string and
    the open containers are closed, or the text is cut back to its last complete value. None when
    nothing parses."""
    stack: list[str] = []
    in_string = escaped = False
    last_complete: tuple[int, list[str]] | None = None
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                last_complete = (i + 1, list(stack))
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
            last_complete = (i + 1, list(stack))
    attempts = []
    if in_string and not escaped:
        attempts.append(text + '"' + "".join(reversed(stack)))
    elif not in_string:
        attempts.append(text.rstrip().rstrip(",") + "".join(reversed(stack)))
    if last_complete is not None:
        end, open_at = last_complete
        attempts.append(text[:end] + "".join(reversed(open_at)))
    for attempt in attempts:
        try:
            return json.loads(attempt)
        except ValueError:
            continue
    return None


def parse_copy(text: str) -> dict[str, Any]:
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
    return {
        "title": data["title"].strip(),
        "bullets": [b.strip() for b in bullets],
        "body": data.get("body", "").strip(),
    }


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


def limit_problems(copy: Mapping[str, Any], limits: CopyLimits) -> list[str]:
    """Human-readable limit violations, for the re-ask."""
    problems = []
    lim = field_limits(limits)

    def describe_limit(kind: str) -> str:
        words, chars = lim[kind]
        return f"{words} words" + (f" or {chars} characters" if chars else "")

    if not copy["title"]:
        problems.append("the title is empty")
    if not within(copy["title"], *lim["title"]):
        problems.append(f"the title is longer than {describe_limit('title')}")
    if len(copy["bullets"]) != limits.bullets:
        problems.append(f"write exactly {limits.bullets} bullets, not {len(copy['bullets'])}")
    for i, bullet in enumerate(copy["bullets"], 1):
        if not within(bullet, *lim["bullet"]):
            problems.append(f"bullet {i} is longer than {describe_limit('bullet')}")
    if not within(copy["body"], *lim["body"]):
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


def enforce_limits(copy: dict[str, Any], limits: CopyLimits) -> dict[str, Any]:
    """Cut every field to its limits and drop surplus bullets."""
    lim = field_limits(limits)
    return {
        "title": cut_to_limits(copy["title"], *lim["title"]),
        "bullets": [cut_to_limits(b, *lim["bullet"]) for b in copy["bullets"][: limits.bullets]],
        "body": cut_to_limits(copy["body"], *lim["body"]),
    }


def copy_fields(copy: Mapping[str, Any]) -> dict[str, str]:
    """Field name -> text, for the grounding check."""
    fields = {"title": copy["title"], "body": copy["body"]}
    fields.update({f"bullet {i}": b for i, b in enumerate(copy["bullets"], 1)})
    return fields


STYLES = {"marketplace": "describe.j2", "seo": "describe_seo.j2", "concise": "describe_concise.j2"}


def style_template(style: str) -> str:
    """The template file of a style: the built-in ones, or ``describe_<style>.j2`` of your own."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", style):
        raise ConfigError(f"invalid style name {style!r}")
    return STYLES.get(style, f"describe_{style}.j2")


class Describer:
    """Write listing copy for products. Backend selection works as for ``Classifier``."""

    def __init__(
        self,
        *,
        backend: Backend | str | None = None,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        settings: Settings | None = None,
        cache: bool | None = None,
        concurrency: int | None = None,
        template_dir: str | Path | None = None,
        style: str = "marketplace",
        template: str | None = None,
        known_brands: Sequence[str] = (),
        description_chars: int = 1500,
    ) -> None:
        self.engine = Engine(
            backend=backend,
            settings=settings,
            overrides={
                "base_url": base_url,
                "model": model,
                "api_key": api_key,
                "cache": cache,
                "concurrency": concurrency,
            },
        )
        self.style = style
        self.template = PromptTemplate(template or style_template(style), template_dir)
        self.known_brands = list(known_brands)
        self.description_chars = description_chars

    @property
    def backend(self) -> Backend:
        return self.engine.backend

    async def adescribe(self, product: ProductLike, **options: Any) -> Description:
        """Copy for one product; failures come back as a Description with ``error`` set.

        Options: ``language`` ("en"), ``tone``, ``bullets`` (3), ``max_words`` (body, 120),
        ``title_words`` (15), ``bullet_words`` (16), ``title_chars`` / ``bullet_chars`` /
        ``body_chars`` (character limits, e.g. a channel's), ``keywords``, ``category`` (a path
        string or a ``Classification``), ``must_mention`` (values the copy has to contain).
        """
        limits, opts = copy_options(options)
        return await self._describe_item(product, 0, limits, opts)

    def describe(self, product: ProductLike, **options: Any) -> Description:
        """Blocking ``adescribe``; takes the same keyword options."""
        return self.engine.run(self.adescribe(product, **options))

    async def aiter_describe(
        self,
        products: Iterable[ProductLike | InputError],
        *,
        progress: bool | None = None,
        **options: Any,
    ) -> AsyncIterator[Description]:
        """One Description per input, in order, with bounded concurrency."""
        from .batch import map_ordered

        limits, opts = copy_options(options)
        total = len(products) if isinstance(products, Sequence) else None
        bar = self.engine.progress(total, "describe", progress)

        async def one(item: ProductLike | InputError, index: int) -> Description:
            return await self._describe_item(item, index, limits, opts)

        try:
            async for result in map_ordered(one, products, concurrency=self.engine.concurrency):
                bar.update(error=result.error is not None, cached=result.cached)
                yield result
        finally:
            bar.close()

    async def adescribe_many(
        self,
        products: Iterable[ProductLike | InputError],
        *,
        progress: bool | None = None,
        **options: Any,
    ) -> list[Description]:
        """Copy for every product; one result (or error record) per input, in order."""
        return [d async for d in self.aiter_describe(products, progress=progress, **options)]

    def describe_many(
        self,
        products: Iterable[ProductLike | InputError],
        *,
        progress: bool | None = None,
        **options: Any,
    ) -> list[Description]:
        """Blocking ``adescribe_many``."""
        return self.engine.run(self.adescribe_many(products, progress=progress, **options))

    async def _describe_item(
        self,
        item: ProductLike | InputError,
        index: int,
        limits: CopyLimits,
        options: Mapping[str, Any],
    ) -> Description:
        language = options["language"]
        product_id = str(index)
        try:
            if isinstance(item, InputError):
                raise item
            if language not in LANGUAGES:
                raise ConfigError(
                    f"unsupported language {language!r}; use one of {', '.join(LANGUAGES)}"
                )
            product = coerce_product(item, index)
            product_id = product.id
            return await self._describe_product(product, limits, options)
        except ConfigError:
            raise
        except LlmcatError as exc:
            error = exc
        except Exception as exc:  # a batch never dies because of one item
            error = exc  # type: ignore[assignment]
        return Description(
            product_id=product_id,
            language=language,
            model=self.backend.model,
            prompt_version=self.template.version,
            error=error_record(error),
        )

    async def _describe_product(
        self, product: Product, limits: CopyLimits, options: Mapping[str, Any]
    ) -> Description:
        language = options["language"]
        schema = copy_schema(limits, language)
        source = input_text(
            {"title": product.title, "brand": product.brand, "description": product.description},
            product.attributes,
        )
        findings_text: list[str] = []
        usage = Usage()
        cached = True

        def check(candidate: Mapping[str, Any]) -> list[Finding]:
            return check_copy(
                copy_fields(candidate),
                source,
                must_mention=options["must_mention"],
                known_brands=self.known_brands,
            )

        copy: dict[str, Any] | None = None
        best_score = 0
        last_error: OutputError | None = None
        model = self.backend.model
        for _attempt in range(2):
            messages = self.template.render(
                {
                    "product": product,
                    "language_name": LANGUAGES[language],
                    "tone": options["tone"],
                    "limits": limits,
                    "keywords": options["keywords"],
                    "category": options["category"],
                    "findings": findings_text,
                    "description_chars": self.description_chars,
                    "attribute_limit": 60,
                }
            )
            request = CompletionRequest(
                messages=messages,
                constraint=JsonConstraint(name="listing_copy", json_schema=schema),
                sampling=Sampling(temperature=0.0, max_tokens=_max_copy_tokens(limits)),
                prompt_version=self.template.version,
            )
            completion = await self.engine.call(request, _parses)
            model = completion.model or model
            usage = usage + Usage(
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                calls=0 if completion.cached else 1,
            )
            cached = cached and completion.cached
            try:
                candidate = parse_copy(completion.text)
            except OutputError as exc:
                last_error = exc
                findings_text = [f"{exc}: answer with one JSON object only"]
                continue
            problems = limit_problems(candidate, limits)
            found = check(candidate)
            # Keep the better of the answers so far: a re-ask that breaks the JSON or adds
            # problems must not throw away a usable first answer.
            if copy is None or len(problems) + len(found) <= best_score:
                copy, best_score = candidate, len(problems) + len(found)
            if not problems and not found:
                break
            findings_text = problems + [_explain(f) for f in found]
        if copy is None:
            raise last_error or OutputError("the model gave no JSON object")
        copy = enforce_limits(copy, limits)
        findings = check(copy)
        return Description(
            product_id=product.id,
            title=copy["title"],
            bullets=copy["bullets"],
            body=copy["body"],
            language=language,
            used_attributes=used_attributes(copy_fields(copy), product.attributes),
            findings=findings,
            flagged=bool(findings),
            model=model,
            prompt_version=self.template.version,
            usage=usage,
            cached=cached,
        )

    async def aclose(self) -> None:
        """Close the backend's connections and the cache."""
        await self.backend.aclose()
        if self.engine.cache is not None:
            self.engine.cache.close()


def _parses(completion: Completion) -> bool:
    try:
        parse_copy(completion.text)
    except OutputError:
        return False
    return True


def _explain(finding: Finding) -> str:
    if finding.kind == "missing_attribute":
        return f"mention {finding.text!r}"
    where = f" in the {finding.field}" if finding.field else ""
    return f"{finding.text!r}{where} is not in the product data: remove it"


def _max_copy_tokens(limits: CopyLimits) -> int:
    words = limits.title_words + limits.bullets * limits.bullet_words + limits.body_words
    return int(words * 2.2) + 64
