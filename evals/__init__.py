"""``python -m evals`` in a checkout: the harness itself is ``llmcat.evals`` (in the wheel too).

This folder holds what the harness reads: ``datasets/`` (the golden suite, shipped in the wheel as
``llmcat/evals/datasets``) and ``baselines/`` (the committed gate baselines, shipped likewise).
"""
