"""Deterministic checks that listing copy is worth publishing, beside the grounding check. Pure.

Grounding (``grounding.py``) asks whether the copy says anything the product data does not.
These checks ask whether it says enough, once, in the right language:

- ``repetition``: a word said twice in a row ("Nike Nike"), a phrase of three words said twice in
  one field (four characters for Chinese), or two bullets that are the same.
- ``restated_title``: a bullet or the body that holds no word beyond the title and the brand.
- ``short_body``: a body shorter than the floor (``body_floor``: the configured minimum, but
  never more than half the words of the product data, so a sparse product is not asked to pad).
- ``missing_attribute``: one of the first given attributes (short values only) is not mentioned.
- ``boilerplate``: the shop's words instead of the product's: a price, a link, a shop's name,
  "Buy ... online", "Free shipping", "Genuine products" (``llmcat.listing.boilerplate``).
- ``thin``: the product data holds nothing beyond the title and the brand, so there is nothing
  to write; the copy is flagged for a person to add facts rather than padded.
- ``wrong_language``: the words the copy adds to the product data are in another script, or in
  another language by their function words (values copied from the input do not count: a
  Chinese listing may keep "Nike" or "UK 9" as given).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from llmcat.config.options import LANGUAGES
from llmcat.listing.boilerplate import boilerplate_in
from llmcat.listing.schema import count_words
from llmcat.types import Finding

_CJK_CHAR = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_DEVANAGARI = re.compile(r"[\u0900-\u097f]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+(?:['’][A-Za-z]+)?")
_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W_]+", re.UNICODE)

# Function words that tell Latin-script languages apart (only words no other list here has).
FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        ["the", "and", "with", "for", "this", "your", "is", "of", "are", "from", "that", "it"]
    ),
    "de": frozenset(
        [
            "der",
            "die",
            "das",
            "und",
            "mit",
            "für",
            "ist",
            "ein",
            "eine",
            "ihr",
            "auf",
            "nicht",
            "sich",
        ]
    ),
    "fr": frozenset(
        ["les", "et", "avec", "pour", "est", "une", "des", "du", "votre", "au", "sur", "qui"]
    ),
    "es": frozenset(["el", "los", "las", "y", "con", "para", "del", "su", "muy", "sus", "está"]),
    "it": frozenset(
        ["il", "gli", "con", "per", "è", "della", "di", "delle", "sono", "nel", "alla"]
    ),
    "pt": frozenset(["os", "com", "para", "é", "um", "uma", "do", "da", "seu", "em", "não"]),
}
# Words too common to make a phrase repeated or a bullet new.
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "our",
        "that",
        "the",
        "this",
        "to",
        "with",
        "your",
        "you",
    ]
)
_CLAUSE = re.compile(r"[.,;:!?·|/()\[\]，。；：！？、]+")
_YES_NO = frozenset(["yes", "no", "true", "false", "y", "n", "none", "na", "n/a"])


def tokens(text: str) -> list[str]:
    """Lower-case words; each CJK character is a token of its own."""
    return [t.lower() for t in _TOKEN.findall(text)]


def content_words(words: Iterable[str]) -> set[str]:
    """The words of ``words`` that carry content: no stop word, no bare number."""
    return {w for w in words if w not in STOP_WORDS and not w.isdigit()}


def repetitions(text: str, known: frozenset[str] = frozenset(), given: str = "") -> list[str]:
    """Phrases said twice within ``text``: a word twice in a row, or a three-word phrase (four
    CJK characters) with a content word in it said twice anywhere. A phrase made only of the
    product data's words (``known``) may be said twice (the name in an opening sentence and a
    specification list), not three times. A word twice in a row that ``given`` (the product
    data) has twice in a row is the merchant's, kept as given."""
    given_pairs = " " + " ".join(tokens(given)) + " "
    found: list[str] = []
    words = [t for t in tokens(text) if not _CJK_CHAR.fullmatch(t)]
    # A word twice in a row within one clause ("Nike Nike"); "Damaged Hair; Hair Type" is two.
    for clause in _CLAUSE.split(text):
        clause_words = [t for t in tokens(clause) if not _CJK_CHAR.fullmatch(t)]
        for a, b in itertools.pairwise(clause_words):
            if a == b and not a.isdigit() and len(a) > 1 and f" {a} {b} " not in given_pairs:
                found.append(f"{a} {b}")

    def allowed(gram: Sequence[str]) -> int:
        return 2 if all(part in known for part in gram) else 1

    trigrams = Counter(
        tuple(words[i : i + 3])
        for i in range(len(words) - 2)
        if content_words(words[i : i + 3]) and len(set(words[i : i + 3])) > 1
    )
    found += [" ".join(g) for g, n in trigrams.items() if n > allowed(g)]
    cjk_runs = re.findall(r"[\u3400-\u9fff\uf900-\ufaff]{4,}", text)
    quads = Counter(run[i : i + 4] for run in cjk_runs for i in range(len(run) - 3))
    found += [q for q, n in quads.items() if n > allowed(q)]
    return list(dict.fromkeys(found))


def restates(text: str, title_words: set[str], attributes: Mapping[str, str] | None = None) -> bool:
    """True when ``text`` has no content word outside ``title_words`` and states no attribute
    by name and value ("Fold: one-hand" is a specification even when the title says it)."""
    words = tokens(text)
    if content_words(words) - title_words:
        return False
    present = set(words)
    return not any(
        set(tokens(name)) <= present and set(tokens(value)) <= present and tokens(value)
        for name, value in (attributes or {}).items()
    )


def body_floor(minimum: int, body_words: int, product_text: str, title: str = "") -> int:
    """The shortest body worth publishing for this product: ``minimum``, but at most half the
    body limit and half the words the product data has beyond its ``title`` (a body need not
    say the title again)."""
    beyond = max(0.0, count_words(product_text) - count_words(title))
    return max(1, min(minimum, body_words // 2, int(beyond // 2)))


def attributes_to_mention(attributes: Mapping[str, str], count: int) -> list[str]:
    """The values of the first ``count`` attributes worth naming: short values (five words and
    40 characters at most) that are not yes/no."""
    chosen = []
    for value in attributes.values():
        value = " ".join(value.split())
        if not value or value.lower() in _YES_NO or len(value) > 40 or len(value.split()) > 5:
            continue
        chosen.append(value)
        if len(chosen) == count:
            break
    return chosen


def _script_words(text: str) -> dict[str, float]:
    """Words per script: CJK characters count half a word, as ``count_words`` does."""
    return {
        "cjk": len(_CJK_CHAR.findall(text)) / 2,
        "kana": len(_KANA.findall(text)) / 2,
        "devanagari": len(re.findall(r"[\u0900-\u097f]+", text)),
        "latin": len(_LATIN_WORD.findall(text)),
    }


def _new_text(text: str, source: str) -> str:
    """``text`` without the words and characters that the product data already has."""
    known = set(tokens(source))
    return " ".join(t for t in tokens(text) if t not in known)


def language_problem(text: str, source: str, language: str) -> str | None:
    """Why the words ``text`` adds to ``source`` are not in ``language``; None when they are
    (or when too few words are added to tell)."""
    own_script = {"zh": _CJK_CHAR, "ja": _KANA, "hi": _DEVANAGARI}.get(language)
    if own_script is not None and not own_script.search(text):
        return f"it has no {language_name(language)} at all"
    new = _new_text(text, source)
    words = _script_words(new)
    total = sum(words.values())
    if total < 3:
        return None
    if language in ("zh", "ja"):
        asian = words["cjk"] + words["kana"]
        if asian < total / 2:
            return f"most of the words it adds are not {language_name(language)}"
        if language == "ja" and words["kana"] == 0:
            return "it has no kana: not Japanese"
        if language == "zh" and words["kana"] > words["cjk"] / 5:
            return "it has kana: Japanese, not Chinese"
        return None
    if language == "hi":
        if words["devanagari"] < total / 2:
            return "most of the words it adds are not in Devanagari"
        return None
    if words["latin"] < total / 2:
        return f"most of the words it adds are not in the Latin script of {language_name(language)}"
    counts = {
        lang: sum(t in vocabulary for t in tokens(new))
        for lang, vocabulary in FUNCTION_WORDS.items()
    }
    best = max(counts, key=lambda lang: counts[lang])
    if (
        language in counts
        and best != language
        and counts[best] >= 3
        and counts[language] * 2 < counts[best]
    ):
        return f"its function words are {language_name(best)}, not {language_name(language)}"
    return None


def language_name(code: str) -> str:
    """The language's name for a message (the code when unknown)."""
    return LANGUAGES.get(code, code)


def degenerate_findings(
    fields: Mapping[str, str],
    *,
    title: str,
    brand: str,
    source: str,
    language: str,
    attributes: Sequence[str] = (),
    given: Mapping[str, str] | None = None,
    min_body_words: int = 25,
    body_words: int = 120,
) -> list[Finding]:
    """Findings for generated ``fields`` (``title``, ``bullet N``, ``body``) of a product with
    this ``title`` and ``brand``; ``source`` is all its input text, ``attributes`` the values
    the copy has to name and ``given`` the product's attributes (name -> value)."""
    findings: list[Finding] = []
    known = frozenset(tokens(source))
    for name, text in fields.items():
        for phrase in repetitions(text, known, source):
            findings.append(Finding(kind="repetition", text=phrase, field=name))
    bullets = [(name, text) for name, text in fields.items() if name.startswith("bullet")]
    seen: dict[str, str] = {}
    for name, text in bullets:
        key = " ".join(tokens(text))
        if key and key in seen:
            findings.append(Finding(kind="repetition", text=f"same as {seen[key]}", field=name))
        seen.setdefault(key, name)
    title_words = content_words(tokens(title) + tokens(brand) + tokens(fields.get("title", "")))
    # Restating the title is a finding only when the product data had more to say.
    more_to_say = bool(content_words(tokens(source)) - title_words)
    if not more_to_say:
        # Nothing to write about: said once, and no demand to pad a body
        findings.append(Finding(kind="thin", text="nothing in the product data beyond its title"))
    # The merchant's own title or brand may hold such words ("Buy Clues" is a brand).
    named = " ".join(tokens(f"{title} {brand}"))
    for name, text in fields.items():
        for phrase in boilerplate_in(text):
            if " ".join(tokens(phrase)) not in named:
                findings.append(Finding(kind="boilerplate", text=phrase[:80], field=name))
                break
    for name, text in [*bullets, ("body", fields.get("body", ""))]:
        if text and more_to_say and restates(text, title_words, given):
            findings.append(Finding(kind="restated_title", text=text[:80], field=name))
    floor = body_floor(min_body_words, body_words, source, title)
    body = fields.get("body", "")
    if count_words(body) < floor and more_to_say:
        findings.append(
            Finding(
                kind="short_body", text=f"{count_words(body):g} words, under {floor}", field="body"
            )
        )
    everything = " ".join(" ".join(fields.values()).lower().split())
    for value in attributes:
        if value.lower() not in everything:
            findings.append(Finding(kind="missing_attribute", text=value))
    problem = language_problem(" ".join(fields.values()), source, language)
    if problem:
        findings.append(Finding(kind="wrong_language", text=problem))
    return findings
