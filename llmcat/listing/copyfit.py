"""Whether a model is worth asking for listing copy: copy fits, measured and shipped. Pure.

A model whose copy almost never passes the checks (grounding, repetition, language, limits)
costs a model call per product and returns composed copy anyway. A copy fit records how often
a model's copy was kept on a labelled suite (``llmcat/fits/copy/*.json``); ``auto`` asks the
model only where no fit says its copy is kept for under ``MIN_KEPT_SHARE`` of the products.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field

COPY_FITS_DIR = Path(__file__).resolve().parents[1] / "fits" / "copy"
#: below this share of products with its copy kept, a model is not asked (``auto``): a call
#: that four times in five ends in composed copy is not worth its time (a choice, not a fit)
MIN_KEPT_SHARE = 0.2


class CopyFit(BaseModel):
    """How often one model's copy passed every check on a suite."""

    models: list[str] = Field(description="Model names as the backends report them.")
    items: int = Field(gt=0, description="Products the model wrote copy for.")
    kept: int = Field(ge=0, description="Of them, the copy that passed every check.")
    style: str = "describe"
    prompt_version: str = ""
    fitted_on: str = ""

    @property
    def share(self) -> float:
        """The share of products whose copy was kept."""
        return self.kept / self.items


@lru_cache(maxsize=1)
def shipped_copy_fits() -> tuple[CopyFit, ...]:
    """The copy fits shipped with llmcat."""
    if not COPY_FITS_DIR.is_dir():
        return ()
    files = sorted(COPY_FITS_DIR.glob("*.json"))
    return tuple(CopyFit.model_validate_json(f.read_text(encoding="utf-8")) for f in files)


def copy_fit_for(model: str) -> CopyFit | None:
    """The shipped copy fit of ``model`` (by the name its backend reports), if any."""
    return next((fit for fit in shipped_copy_fits() if model in fit.models), None)


def model_copy_decision(setting: str, model: str) -> tuple[bool, str]:
    """Whether to ask ``model`` for copy under ``CopyOptions.ask_model``, and why."""
    if setting == "never":
        return False, "ask_model='never': copy is composed from the product's fields"
    if setting == "always":
        return True, f"ask_model='always': {model} is asked"
    fit = copy_fit_for(model)
    if fit is None:
        return True, f"no copy fit ships for {model}: it is asked, its copy checked"
    measured = (
        f"its copy passed the checks for {fit.kept} of {fit.items} products ({fit.fitted_on})"
    )
    if fit.share < MIN_KEPT_SHARE:
        return False, (
            f"{model} is not asked: {measured}; the copy is composed from the product's fields "
            "(--ask-model always asks it anyway)"
        )
    return True, f"{model} is asked: {measured}"


__all__ = ["MIN_KEPT_SHARE", "CopyFit", "copy_fit_for", "model_copy_decision"]
