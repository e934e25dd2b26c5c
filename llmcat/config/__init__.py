"""Configuration: typed options (one model per concern), settings from arguments and the
environment, keyword overrides, and the flags generated from options."""

from llmcat.config.options import ClassifyOptions, CopyLimits, CopyOptions, RetryOptions
from llmcat.config.settings import Settings

__all__ = ["ClassifyOptions", "CopyLimits", "CopyOptions", "RetryOptions", "Settings"]
