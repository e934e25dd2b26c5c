"""Serving open models for llmcat: vLLM's OpenAI-compatible server (``llmcat serve``). The
GGUF-to-Hugging-Face conversion it uses lives in ``llmcat.llm.modelfiles``, below this package and
``llmcat.backends`` alike."""

from llmcat.serve.server import VLLMServer, free_port, server_command

__all__ = ["VLLMServer", "free_port", "server_command"]
