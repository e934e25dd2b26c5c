"""Model access: the wire-neutral request (``completions``), prompts, the engine, calls with
cache and retries, model files, images and labels."""
