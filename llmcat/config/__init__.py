"""Configuration: typed options (one model per concern), settings from arguments and the
environment, keyword overrides, and the flags generated from options."""
