"""``python -m evals``: llmcat's regression harness for classification and listing copy."""
