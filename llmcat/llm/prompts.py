"""Prompt templates: Jinja2 files rendered into chat messages by one strict, sandboxed environment.

A template defines ``{% block system %}`` and ``{% block user %}``; each block becomes one message.
The stable part (instructions, label list) belongs in ``system`` so servers with prefix caching
reuse it across products. A template's version is the sha256 of its source, first 12 hex digits,
and is recorded with every result.

Lookup order: the caller's ``template_dir`` (a file there overrides the built-in one of the same
name), then the templates shipped in the wheel (``llmcat/prompts``), then ``prompts/`` of a source
checkout.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from llmcat.errors import ConfigError
from llmcat.llm.completions import Message

ROLES = ("system", "user", "assistant")


def builtin_template_dirs() -> list[Path]:
    """Where the shipped templates are: inside the wheel, or at the checkout's top level."""
    package = Path(__file__).resolve().parents[1]
    return [d for d in (package / "prompts", package.parent / "prompts") if d.is_dir()]


@lru_cache(maxsize=16)
def _environment(search_path: tuple[str, ...]) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(list(search_path)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _version(env: jinja2.Environment, name: str) -> str:
    """sha256 over the template's source and every template it includes or extends (static
    names, recursively), so editing a shared piece changes the version of all that use it."""
    assert env.loader is not None
    digest = hashlib.sha256()
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        source, _, _ = env.loader.get_source(env, current)
        digest.update(current.encode() + b"\0" + source.encode() + b"\0")
        pending += [ref for ref in meta.find_referenced_templates(env.parse(source)) if ref]
    return digest.hexdigest()[:12]


class PromptTemplate:
    """One template file, loaded and versioned."""

    def __init__(self, name: str, template_dir: str | Path | None = None) -> None:
        if template_dir is not None and not Path(template_dir).is_dir():
            raise ConfigError(f"template folder {template_dir} does not exist or is not a folder")
        dirs = [str(Path(template_dir))] if template_dir is not None else []
        dirs += [str(d) for d in builtin_template_dirs()]
        if not dirs:
            raise ConfigError(
                "no prompt templates found: pass template_dir=... (or --template-dir)"
            )
        self.name = name
        env = _environment(tuple(dirs))
        try:
            self._template = env.get_template(name)
            # Includes and extends are resolved here too: a missing or out-of-folder one ("../x",
            # "/etc/x") fails now, as a ConfigError, not later inside a batch.
            self.version = _version(env, name)
        except jinja2.TemplateNotFound as exc:
            used_by = f" (used by {name!r})" if exc.name != name else ""
            raise ConfigError(
                f"prompt template {exc.name!r}{used_by} not found in {', '.join(dirs)}; "
                "templates are looked up only inside these folders"
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"prompt template {name!r} line {exc.lineno}: {exc.message}") from exc
        lacking = [b for b in ("system", "user") if b not in self._template.blocks]
        if lacking:
            raise ConfigError(f"prompt template {name!r} lacks block(s): {', '.join(lacking)}")

    def render(self, variables: Mapping[str, object]) -> list[Message]:
        """The chat messages, one per non-empty role block, in role order."""
        context = self._template.new_context(dict(variables))
        messages = []
        try:
            for role in ROLES:
                block = self._template.blocks.get(role)
                if block is None:
                    continue
                text = "".join(block(context)).strip()
                if text:
                    messages.append(Message.model_validate({"role": role, "content": text}))
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"prompt template {self.name!r}: {exc.message}") from exc
        except jinja2.TemplateError as exc:  # a dynamic include that is missing, a sandbox refusal
            raise ConfigError(f"prompt template {self.name!r}: {exc}") from exc
        return messages
