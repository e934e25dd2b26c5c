"""Serving open models for llmcat: vLLM's OpenAI-compatible server (``llmcat serve``) and the
GGUF-to-Hugging-Face conversion that lets vLLM run the embedded SmolLM2."""

from .convert import embedded_model_dir, gguf_to_hf
from .server import VLLMServer, free_port, server_command

__all__ = ["VLLMServer", "embedded_model_dir", "free_port", "gguf_to_hf", "server_command"]
